//! Monotonic progress: within one incarnation of a node, its term and commit
//! index never decrease; within one leader term, the match index the leader
//! tracks for each follower never decreases.

use super::Violation;
use raft_sm::{LogIndex, Node, NodeId, Role, Term};
use std::collections::BTreeMap;

#[derive(Default, Clone)]
struct Seen {
    /// Whether anything was seen yet.
    known: bool,
    incarnation: u64,
    term: Term,
    commit: LogIndex,
    /// The leader term `matches` belongs to (`None`: not leader when last seen).
    match_term: Option<Term>,
    /// Match index per follower (a buffer reused from step to step).
    matches: Vec<(NodeId, LogIndex)>,
}

/// The last values seen per node.
#[derive(Default)]
pub struct ProgressChecker {
    seen: BTreeMap<NodeId, Seen>,
}

impl ProgressChecker {
    /// Checks `node` (of `incarnation`) against what was seen before. Runs after
    /// every step, so it updates its record in place instead of cloning it.
    pub fn observe(&mut self, incarnation: u64, node: &Node) -> Result<(), Violation> {
        let id = node.id();
        let leader = node.role() == Role::Leader;
        // Not collected: a leader's progress is read straight from the core.
        let progress = node.replication_progress_iter().filter(|_| leader);
        if let Some((peer, match_index, next_index)) =
            progress.clone().find(|&(_, match_index, next_index)| next_index <= match_index)
        {
            return Err(Violation::new(
                "progress",
                format!(
                    "leader {id} in {}: next index {next_index} of {peer} is not above its match {match_index}",
                    node.term()
                ),
            ));
        }
        let seen = self.seen.entry(id).or_default();
        if seen.known && seen.incarnation == incarnation {
            if node.term() < seen.term {
                return Err(Violation::new(
                    "monotonic term",
                    format!("{id} went from {} back to {}", seen.term, node.term()),
                ));
            }
            if node.commit_index() < seen.commit {
                return Err(Violation::new(
                    "monotonic commit",
                    format!("{id} commit went from {} back to {}", seen.commit, node.commit_index()),
                ));
            }
            if leader && seen.match_term == Some(node.term()) {
                // By peer: membership changes add and remove followers (a
                // follower added again starts over, as it was gone in between).
                for (peer, is, _) in progress.clone() {
                    let Some(&(_, was)) = seen.matches.iter().find(|(known, _)| *known == peer) else {
                        continue;
                    };
                    if is < was {
                        return Err(Violation::new(
                            "monotonic match",
                            format!("leader {id} in {}: match of {peer} went from {was} back to {is}", node.term()),
                        ));
                    }
                }
            }
        }
        seen.known = true;
        seen.incarnation = incarnation;
        seen.term = node.term();
        seen.commit = node.commit_index();
        seen.match_term = leader.then(|| node.term());
        seen.matches.clear();
        seen.matches.extend(progress.map(|(peer, match_index, _)| (peer, match_index)));
        Ok(())
    }
}
