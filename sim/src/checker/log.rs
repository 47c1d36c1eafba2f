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

use super::by_index::ByIndex;
use super::{Step, Violation};
use crate::rng::{fnv1a, FNV_OFFSET};
use raft_sm::{Entry, LogIndex, Node, NodeId, Payload, Term};
use std::collections::BTreeMap;

/// A stable hash of an entry's payload.
pub fn payload_hash(payload: &Payload) -> u64 {
    match payload {
        Payload::Noop => 0,
        Payload::Command(bytes) => words_hash(FNV_OFFSET, bytes),
        Payload::Membership(membership) => fnv1a(FNV_OFFSET ^ 2, membership.to_string().as_bytes()),
    }
}

/// A 64-bit hash of `bytes` eight at a time (every entry is hashed at each
/// node's append and apply, so byte-at-a-time FNV showed in profiles). Only
/// compared with itself: any two different payloads are told apart unless
/// their 64-bit hashes collide.
fn words_hash(seed: u64, bytes: &[u8]) -> u64 {
    const MULTIPLIER: u64 = 0x9e37_79b9_7f4a_7c15;
    let mix = |hash: u64, word: u64| (hash ^ word).wrapping_mul(MULTIPLIER).rotate_left(29);
    let mut hash = mix(seed, bytes.len() as u64);
    let mut words = bytes.chunks_exact(8);
    for word in &mut words {
        hash = mix(hash, u64::from_le_bytes(word.try_into().expect("eight bytes")));
    }
    let rest = words.remainder();
    if !rest.is_empty() {
        let mut last = [0u8; 8];
        last[..rest.len()].copy_from_slice(rest);
        hash = mix(hash, u64::from_le_bytes(last));
    }
    hash ^ (hash >> 32)
}

/// An entry as the checkers see it: where, in which term, and its payload's
/// hash. The simulator hands these on instead of copies of the entries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EntryDigest {
    /// The entry's index.
    pub index: LogIndex,
    /// The entry's term.
    pub term: Term,
    /// [`payload_hash`] of its payload.
    pub hash: u64,
}

impl EntryDigest {
    /// The digest of `entry`.
    pub fn of(entry: &Entry) -> EntryDigest {
        EntryDigest { index: entry.index, term: entry.term, hash: payload_hash(&entry.payload) }
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

/// What one node wrote at one index of its log, and when.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Written {
    /// `Term(0)`: nothing recorded there (below a snapshot it installed).
    term: Term,
    hash: u64,
    step: Step,
}

#[derive(Default)]
pub struct LogChecker {
    /// By node id, by index - 1: what the node's log holds there and the step
    /// that wrote it (a truncation forgets the rest), for the first divergent step.
    writes: Vec<Vec<Written>>,
    /// (index, term) → what was appended there.
    appended: BTreeMap<(LogIndex, Term), Appended>,
    /// index → (term of the committed entry there, latest term it was committed in).
    committed: ByIndex<(Term, Term)>,
    last_commit: BTreeMap<NodeId, LogIndex>,
    /// index → the node that first showed it committed (for the first divergent step).
    committed_by: ByIndex<NodeId>,
}

impl LogChecker {
    /// Records an append by `node`.
    pub fn observe_append(
        &mut self,
        node: NodeId,
        entries: &[Entry],
        prev_term: Option<Term>,
        step: Step,
    ) -> Result<(), Violation> {
        self.observe_append_digests(node, entries.iter().map(EntryDigest::of), prev_term, step)
    }

    /// [`LogChecker::observe_append`] of the entries' digests.
    pub fn observe_append_digests(
        &mut self,
        node: NodeId,
        entries: impl IntoIterator<Item = EntryDigest>,
        prev_term: Option<Term>,
        step: Step,
    ) -> Result<(), Violation> {
        let mut prev = prev_term;
        for entry in entries {
            let hash = entry.hash;
            self.record_write(node, entry.index, entry.term, hash, step);
            let key = (entry.index, entry.term);
            match self.appended.get_mut(&key) {
                None => {
                    self.appended.insert(key, Appended { hash, prev, holders: bit(node) });
                }
                Some(Appended { hash: seen_hash, prev: seen_prev, holders }) => {
                    if *seen_hash != hash {
                        let others: Vec<u128> = (0..128).filter(|id| *holders & (1 << id) != 0).collect();
                        let mut detail = format!(
                            "{node} appended a different entry at {} in {} than the one nodes {others:?} hold",
                            entry.index, entry.term
                        );
                        let other = NodeId(others.first().copied().unwrap_or(0) as u64);
                        if let Some(divergence) = self.first_divergence(node, other) {
                            detail += &format!("; {divergence}");
                        }
                        return Err(Violation::new("log matching", detail));
                    }
                    *holders |= bit(node);
                    match (*seen_prev, prev) {
                        (Some(a), Some(b)) if a != b => {
                            let mut detail = format!(
                                "{node} holds ({}, {}) after an entry of {b}, another node after one of {a}",
                                entry.index, entry.term
                            );
                            let mask = *holders;
                            let others = (0..128u64).filter(|&id| id != node.0 && mask & (1 << id) != 0);
                            let divergence = others.filter_map(|id| self.first_divergence(node, NodeId(id))).next();
                            if let Some(divergence) = divergence {
                                detail += &format!("; {divergence}");
                            }
                            return Err(Violation::new("log matching", detail));
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

    fn record_write(&mut self, node: NodeId, index: LogIndex, term: Term, hash: u64, step: Step) {
        let at = node.0 as usize;
        if self.writes.len() <= at {
            self.writes.resize_with(at + 1, Vec::new);
        }
        let log = &mut self.writes[at];
        let slot = (index.0 as usize).saturating_sub(1);
        log.resize(slot, Written::default()); // Truncates a conflicting tail, or pads below a snapshot.
        log.push(Written { term, hash, step });
    }

    /// The first index at which the logs of `a` and `b` (as their appends wrote
    /// them) hold different entries, with the steps that wrote each: where the
    /// two nodes' histories parted.
    pub fn first_divergence(&self, a: NodeId, b: NodeId) -> Option<String> {
        let empty = Vec::new();
        let log_a = self.writes.get(a.0 as usize).unwrap_or(&empty);
        let log_b = self.writes.get(b.0 as usize).unwrap_or(&empty);
        let known = |w: &Written| w.term != Term(0);
        let (slot, (x, y)) = log_a
            .iter()
            .zip(log_b)
            .enumerate()
            .find(|(_, (x, y))| known(x) && known(y) && (x.term != y.term || x.hash != y.hash))?;
        let index = slot + 1;
        Some(format!(
            "first divergent step: i{index}, written by {a} as (i{index}, {}) at {} and by {b} as (i{index}, {}) at {}",
            x.term, x.step, y.term, y.step
        ))
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
        match self.committed.get_mut(index) {
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

    /// [`LogChecker::observe_committed_entry`] as shown by `node`; a violation
    /// names the first divergent step of its log and the first committer's.
    pub fn observe_committed_by(
        &mut self,
        node: NodeId,
        index: LogIndex,
        term: Term,
        observer_term: Term,
    ) -> Result<(), Violation> {
        if index.0 == 0 {
            return Ok(());
        }
        if !self.committed.contains(index) {
            self.committed_by.insert(index, node);
        }
        self.observe_committed_entry(index, term, observer_term).map_err(|mut violation| {
            let first = self.committed_by.get(index).copied().unwrap_or(node);
            if let Some(divergence) = self.first_divergence(node, first) {
                violation.detail += &format!(" ({node} vs {first}); {divergence}");
            }
            violation
        })
    }

    /// Records `node`'s commit index (its entry there is committed).
    pub fn observe_commit(&mut self, node: &Node) -> Result<(), Violation> {
        let commit = node.commit_index();
        let before = self.last_commit.insert(node.id(), commit);
        if before == Some(commit) {
            return Ok(());
        }
        match node.term_at(commit) {
            Some(term) => self.observe_committed_by(node.id(), commit, term, node.term()),
            None => Ok(()),
        }
    }

    /// A new leader of term T holds the newest entry committed in a term before T.
    pub fn check_leader_completeness(&self, node: &Node) -> Result<(), Violation> {
        let newest = self.committed.iter_rev().find(|(_, &(_, commit_term))| commit_term < node.term());
        let Some((index, &(term, _))) = newest else {
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
        self.committed.last_index()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_hashes_tell_payloads_apart() {
        let hash = |bytes: &[u8]| payload_hash(&Payload::Command(bytes.to_vec()));
        // Lengths around the eight-byte words, a trailing zero, one changed byte.
        let payloads: [&[u8]; 7] = [b"", b"\0", b"1234567", b"12345678", b"123456789", b"12345678\0", b"12345679"];
        for (i, a) in payloads.iter().enumerate() {
            assert_eq!(hash(a), hash(a), "stable");
            for b in &payloads[i + 1..] {
                assert_ne!(hash(a), hash(b), "{a:?} and {b:?}");
            }
        }
        assert_ne!(hash(b""), payload_hash(&Payload::Noop));
    }
}
