//! Log matching (Raft §5.3) and leader completeness (§5.4).
//!
//! Log matching is checked incrementally: every appended entry is recorded by
//! (index, term) with a hash of its payload and the term of the entry before
//! it. If no two appends ever disagree on either, then by induction any two logs
//! that share an (index, term) are identical up to it.
//!
//! Committed entries are learned from commit indexes and applies; a committed
//! index never changes its term. Leader completeness is about the term an
//! entry was *committed in* (not the entry's own term): a leader of term T must
//! hold every entry committed in a term before T. The commit term is bounded
//! from above by the term of the node that showed the commit (it learned it from
//! a leader of at most its own term), so only leaders of later terms are held to
//! it: no false alarms, and every alarm is a real violation.

use super::Violation;
use crate::rng::{fnv1a, FNV_OFFSET};
use raft_sm::{Entry, LogIndex, Node, NodeId, Payload, Term};
use std::collections::BTreeMap;

/// A stable hash of an entry's payload.
pub fn payload_hash(payload: &Payload) -> u64 {
    match payload {
        Payload::Noop => 0,
        Payload::Command(bytes) => fnv1a(FNV_OFFSET, bytes),
        Payload::Membership(membership) => fnv1a(FNV_OFFSET ^ 2, membership.to_string().as_bytes()),
    }
}

/// What appends and commits have shown so far.
struct Appended {
    hash: u64,
    /// Term of the entry before it.
    prev: Option<Term>,
    /// Bit `id` set: node `id` appended it.
    holders: u128,
}

fn bit(node: NodeId) -> u128 {
    assert!(node.0 < 128, "the checker tracks node ids below 128");
    1 << node.0
}

#[derive(Default)]
pub struct LogChecker {
    /// (index, term) → what was appended there.
    appended: BTreeMap<(LogIndex, Term), Appended>,
    /// index → (term of the committed entry there, latest term it was committed in).
    committed: BTreeMap<LogIndex, (Term, Term)>,
    last_commit: BTreeMap<NodeId, LogIndex>,
}

impl LogChecker {
    /// Records an append by `node`.
    pub fn observe_append(
        &mut self,
        node: NodeId,
        entries: &[Entry],
        prev_term: Option<Term>,
    ) -> Result<(), Violation> {
        let mut prev = prev_term;
        for entry in entries {
            let hash = payload_hash(&entry.payload);
            let key = (entry.index, entry.term);
            match self.appended.get_mut(&key) {
                None => {
                    self.appended.insert(key, Appended { hash, prev, holders: bit(node) });
                }
                Some(Appended { hash: seen_hash, prev: seen_prev, holders }) => {
                    if *seen_hash != hash {
                        let others: Vec<u128> = (0..128).filter(|id| *holders & (1 << id) != 0).collect();
                        return Err(Violation::new(
                            "log matching",
                            format!(
                                "{node} appended a different entry at {} in {} than the one nodes {others:?} hold",
                                entry.index, entry.term
                            ),
                        ));
                    }
                    *holders |= bit(node);
                    match (*seen_prev, prev) {
                        (Some(a), Some(b)) if a != b => {
                            return Err(Violation::new(
                                "log matching",
                                format!(
                                    "{node} holds ({}, {}) after an entry of {b}, another node after one of {a}",
                                    entry.index, entry.term
                                ),
                            ))
                        }
                        (None, Some(b)) => *seen_prev = Some(b),
                        _ => {}
                    }
                }
            }
            prev = Some(entry.term);
        }
        Ok(())
    }

    /// `node` crashed with `durable` on disk: entries only it ever held, and
    /// that its disk lost, no longer exist anywhere and are forgotten. (A
    /// single-node cluster may lead a term whose vote was not yet durable; after
    /// a crash it leads that term again and may append different entries.)
    pub fn on_crash(&mut self, node: NodeId, durable: &crate::disk::DurableImage) {
        let mine = bit(node);
        self.appended.retain(|&(index, term), appended| {
            let kept = index <= durable.log_base || durable.term_at(index) == Some(term);
            if appended.holders & mine != 0 && !kept {
                appended.holders &= !mine;
            }
            appended.holders != 0
        });
    }

    /// Records that the entry at `index` with `term` is committed, as seen by a
    /// node in `observer_term` (the entry was committed in that term or before).
    pub fn observe_committed_entry(
        &mut self,
        index: LogIndex,
        term: Term,
        observer_term: Term,
    ) -> Result<(), Violation> {
        if index.0 == 0 {
            return Ok(());
        }
        match self.committed.get_mut(&index) {
            Some((seen, _)) if *seen != term => {
                Err(Violation::new("state machine safety", format!("{index} committed with {seen} and with {term}")))
            }
            Some((_, commit_term)) => {
                *commit_term = (*commit_term).min(observer_term);
                Ok(())
            }
            None => {
                self.committed.insert(index, (term, observer_term));
                Ok(())
            }
        }
    }

    /// Records `node`'s commit index (its entry there is committed).
    pub fn observe_commit(&mut self, node: &Node) -> Result<(), Violation> {
        let commit = node.commit_index();
        let before = self.last_commit.insert(node.id(), commit);
        if before == Some(commit) {
            return Ok(());
        }
        match node.term_at(commit) {
            Some(term) => self.observe_committed_entry(commit, term, node.term()),
            None => Ok(()),
        }
    }

    /// A new leader of term T holds the newest entry committed in a term before T.
    pub fn check_leader_completeness(&self, node: &Node) -> Result<(), Violation> {
        let newest = self.committed.iter().rev().find(|(_, &(_, commit_term))| commit_term < node.term());
        let Some((&index, &(term, _))) = newest else {
            return Ok(());
        };
        let (base_index, _) = node.log_base();
        if index <= base_index {
            return Ok(()); // Covered by its snapshot.
        }
        match node.term_at(index) {
            Some(held) if held == term => Ok(()),
            held => Err(Violation::new(
                "leader completeness",
                format!(
                    "{} became leader of {} without committed entry ({index}, {term}); it holds {held:?} there (last index {})",
                    node.id(),
                    node.term(),
                    node.last_log_index()
                ),
            )),
        }
    }

    /// The highest index known committed.
    pub fn committed_max(&self) -> LogIndex {
        self.committed.keys().next_back().copied().unwrap_or_default()
    }
}
