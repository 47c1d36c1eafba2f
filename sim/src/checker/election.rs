//! Election safety (Raft §5.2): at most one leader per term; and, what it rests
//! on, at most one vote granted per node and term, across restarts.

use super::Violation;
use raft_sm::{Body, Message, Node, NodeId, Role, Term};
use std::collections::BTreeMap;

/// Leaders seen per term, votes granted per (voter, term), and each node's last role.
#[derive(Default)]
pub struct ElectionChecker {
    leaders: BTreeMap<Term, NodeId>,
    votes: BTreeMap<(NodeId, Term), NodeId>,
    last: BTreeMap<NodeId, (Term, Role)>,
}

impl ElectionChecker {
    /// Records `node`'s role; returns whether it just became leader.
    pub fn observe(&mut self, node: &Node) -> Result<bool, Violation> {
        let now = (node.term(), node.role());
        let before = self.last.insert(node.id(), now);
        if node.role() != Role::Leader {
            return Ok(false);
        }
        match self.leaders.get(&node.term()) {
            Some(&leader) if leader != node.id() => {
                return Err(Violation::new(
                    "election safety",
                    format!("two leaders in {}: {leader} and {}", node.term(), node.id()),
                ))
            }
            Some(_) => {}
            None => {
                self.leaders.insert(node.term(), node.id());
                self.check_vote_quorum(node)?;
            }
        }
        Ok(before != Some(now))
    }

    /// Records a granted (non-pre) vote carried by `message`.
    pub fn observe_vote(&mut self, message: &Message) -> Result<(), Violation> {
        let Body::RequestVoteResponse(raft_sm::RequestVoteResponse { pre_vote: false, granted: true }) = message.body
        else {
            return Ok(());
        };
        let key = (message.from, message.term);
        match self.votes.get(&key) {
            Some(&candidate) if candidate != message.to => Err(Violation::new(
                "election safety",
                format!("{} voted twice in {}: for {candidate} and for {}", message.from, message.term, message.to),
            )),
            Some(_) => Ok(()),
            None => {
                self.votes.insert(key, message.to);
                Ok(())
            }
        }
    }

    /// The leader recorded for `term`, if any.
    /// A new leader of term T must hold grants sent in T by a majority (itself
    /// included): a leader elected by stale replies or by counting a repeated
    /// grant twice has fewer.
    fn check_vote_quorum(&self, node: &Node) -> Result<(), Violation> {
        let (id, term) = (node.id(), node.term());
        // Under its configuration when it won (joint: a majority of each half).
        let membership = node.membership();
        let halves = [&membership.voters, &membership.outgoing];
        for voters in halves.into_iter().filter(|voters| !voters.is_empty()) {
            let granted: Vec<NodeId> = voters
                .iter()
                .copied()
                .filter(|&voter| voter == id || self.votes.get(&(voter, term)) == Some(&id))
                .collect();
            if granted.len() * 2 <= voters.len() {
                return Err(Violation::new(
                    "vote quorum",
                    format!(
                        "{id} leads {term} with grants sent in {term} only by {granted:?} of the voters {voters:?}"
                    ),
                ));
            }
        }
        Ok(())
    }

    pub fn leader_of(&self, term: Term) -> Option<NodeId> {
        self.leaders.get(&term).copied()
    }

    /// Number of terms that had a leader.
    pub fn terms_with_leader(&self) -> usize {
        self.leaders.len()
    }
}
