//! Monotonic progress: within one incarnation of a node, its term and commit
//! index never decrease; within one leader term, the match index the leader
//! tracks for each follower never decreases.

use super::Violation;
use raft_sm::{LogIndex, Node, NodeId, Role, Term};
use std::collections::BTreeMap;

#[derive(Default, Clone)]
struct Seen {
    incarnation: u64,
    term: Term,
    commit: LogIndex,
    /// (leader term, match index per follower).
    matches: Option<(Term, Vec<(NodeId, LogIndex)>)>,
}

/// The last values seen per node.
#[derive(Default)]
pub struct ProgressChecker {
    seen: BTreeMap<NodeId, Seen>,
}

impl ProgressChecker {
    /// Checks `node` (of `incarnation`) against what was seen before.
    pub fn observe(&mut self, incarnation: u64, node: &Node) -> Result<(), Violation> {
        let id = node.id();
        let previous = self.seen.get(&id).filter(|s| s.incarnation == incarnation).cloned();
        if node.role() == Role::Leader {
            if let Some((peer, match_index, next_index)) =
                node.replication_progress().into_iter().find(|&(_, match_index, next_index)| next_index <= match_index)
            {
                return Err(Violation::new(
                    "progress",
                    format!(
                        "leader {id} in {}: next index {next_index} of {peer} is not above its match {match_index}",
                        node.term()
                    ),
                ));
            }
        }
        let matches = (node.role() == Role::Leader).then(|| {
            let list = node
                .replication_progress()
                .into_iter()
                .map(|(peer, match_index, _)| (peer, match_index))
                .collect::<Vec<_>>();
            (node.term(), list)
        });
        if let Some(previous) = &previous {
            if node.term() < previous.term {
                return Err(Violation::new(
                    "monotonic term",
                    format!("{id} went from {} back to {}", previous.term, node.term()),
                ));
            }
            if node.commit_index() < previous.commit {
                return Err(Violation::new(
                    "monotonic commit",
                    format!("{id} commit went from {} back to {}", previous.commit, node.commit_index()),
                ));
            }
            if let (Some((term_before, before)), Some((term_now, now))) = (&previous.matches, &matches) {
                if term_before == term_now {
                    // By peer: membership changes add and remove followers (a
                    // follower added again starts over, as it was gone in between).
                    for (peer, is) in now {
                        let Some((_, was)) = before.iter().find(|(id, _)| id == peer) else {
                            continue;
                        };
                        if is < was {
                            return Err(Violation::new(
                                "monotonic match",
                                format!("leader {id} in {term_now}: match of {peer} went from {was} back to {is}"),
                            ));
                        }
                    }
                }
            }
        }
        self.seen.insert(id, Seen { incarnation, term: node.term(), commit: node.commit_index(), matches });
        Ok(())
    }
}
