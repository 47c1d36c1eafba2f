//! "Sometimes" coverage goals: states that precede classic Raft bugs, counted
//! when a run reaches them (counters named `goal_*`; `sim explore` prints how
//! many seeds reached each). A checker can only catch a bug on a run that gets
//! into the state the bug needs; these say how often explore does.

use super::*;
use crate::node_host::Effect;

/// Every goal: its counter and what it means.
pub const GOALS: &[(&str, &str)] = &[
    (
        "goal_old_term_entry_on_majority_at_election",
        "a new leader is elected while an uncommitted entry of an older term sits on a majority (Figure 8)",
    ),
    (
        "goal_leader_with_two_old_terms_uncommitted",
        "a new leader's log holds uncommitted entries of two or more older terms",
    ),
    ("goal_stale_vote_reply", "a vote reply (duplicated or delayed) arrives after its election ended"),
    (
        "goal_leader_crash_after_one_follower",
        "a leader crashes right after its newest, uncommitted entry reached exactly one follower",
    ),
];

/// Most log entries a goal looks at past the commit index (the goals are about a few).
const ENTRIES_LOOKED_AT_MAX: u64 = 256;

impl Cluster {
    /// Goals reached by one node step (a new leader).
    pub(super) fn goals_after_step(&mut self, index: usize, effects: &[Effect]) {
        if !effects.iter().any(|effect| matches!(effect, Effect::Note(Note::BecameLeader { .. }))) {
            return;
        }
        let Some(leader) = self.hosts[index].node() else {
            return;
        };
        let term = leader.term();
        let last = leader.last_log_index().0;
        // Uncommitted as far as any node showed (the checker's view), older terms only.
        let committed = self.checker.log.committed_max().0.max(leader.log_base().0 .0);
        let first = committed + 1;
        let older: Vec<(LogIndex, Term)> = (first..=last.min(committed + ENTRIES_LOOKED_AT_MAX))
            .filter_map(|i| leader.term_at(LogIndex(i)).filter(|&t| t < term).map(|t| (LogIndex(i), t)))
            .collect();
        let on_majority = older.iter().any(|&(at, entry_term)| {
            let holders = self
                .hosts
                .iter()
                .filter(|host| match host.node() {
                    Some(node) => node.term_at(at) == Some(entry_term),
                    None => host.disk.durable().term_at(at) == Some(entry_term),
                })
                .count();
            2 * holders > self.hosts.len()
        });
        let mut terms: Vec<Term> = older.iter().map(|&(_, t)| t).collect();
        terms.dedup();
        if on_majority {
            self.counters.add("goal_old_term_entry_on_majority_at_election", 1);
        }
        if terms.len() >= 2 {
            self.counters.add("goal_leader_with_two_old_terms_uncommitted", 1);
        }
    }

    /// Goals reached by a delivery (a vote reply after its election).
    pub(super) fn goals_on_deliver(&mut self, to: NodeId, message: &Message) {
        let raft_sm::Body::RequestVoteResponse(raft_sm::RequestVoteResponse { pre_vote: false, .. }) = message.body
        else {
            return;
        };
        let Some(node) = self.host(to).node() else {
            return;
        };
        if node.term() > message.term || node.role() != Role::Candidate {
            self.counters.add("goal_stale_vote_reply", 1);
        }
    }

    /// Goals reached by a generated crash (of a leader whose newest entry reached one follower).
    pub(super) fn goals_on_crash(&mut self, id: NodeId) {
        let Some(node) = self.host(id).node() else {
            return;
        };
        let last = node.last_log_index();
        if node.role() != Role::Leader || last <= node.commit_index() {
            return;
        }
        let holders = node.replication_progress().iter().filter(|&&(_, matched, _)| matched >= last).count();
        if holders == 1 {
            self.counters.add("goal_leader_crash_after_one_follower", 1);
        }
    }
}
