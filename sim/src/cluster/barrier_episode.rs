//! The churn aimed at the single-server change bug (thesis §4.4 errata;
//! Ongaro, raft-dev 2015-07): two single-voter changes in flight at once
//! across leaders. Without the barrier (a new leader changes the
//! configuration only after an entry of its term commits) this loses a
//! committed entry; random churn and faults almost never line it up, so the
//! churn steers toward it.
//!
//! The story, with four voters C0 = {L1, V, L2, W} (the only size where one
//! voter moved between the sides suffices; see `arm`):
//! 1. L1 appends C1 (one voter changed) and is cut off: C1 sits uncommitted
//!    on L1 alone.
//! 2. L2 wins an election under C0 with V's vote. At that moment V (and the
//!    learner C1 promotes, if any) are moved to L1's side, before any of L2's
//!    appends reach them, and L2 is asked at once to remove L1:
//!    C2 = C0 − L1 = {V, L2, W}.
//! 3. With the barrier, L2 refuses (`NoCommitInTerm`; its no-op cannot commit
//!    on {L2, W}, two of four) and nothing is lost. Without it C2 commits on
//!    {L2, W} (two of three), and L1, whose log is as new as V's, wins C1's
//!    majority {L1, V, (learner)} and overwrites C2: the checkers report a
//!    leader without a committed entry.
//!
//! Both sides heal when the cut ends (`back_ms`), as any other churn cut.

use super::*;
use raft_sm::{Membership, MembershipChange};

/// An armed episode: the old leader's uncommitted change, waiting for the next leader.
#[derive(Clone, Debug)]
pub(super) struct BarrierEpisode {
    /// The leader that appended C1 and was cut off.
    old_leader: NodeId,
    /// The learner C1 promotes, if any (moved to the old leader's side with V).
    reached: Vec<NodeId>,
    /// C1's entry: (index, term).
    change_at: (LogIndex, Term),
    /// Voters in both C0 and C1 (V is drawn from them).
    both_voters: Vec<NodeId>,
    /// When the cut ends.
    back_ms: u64,
}

/// How likely an eligible change arms the episode.
const ARM_CHANCE: f64 = 0.7;

/// The voter count the episode needs (see [`Cluster::barrier_episode_arm`]).
const EPISODE_VOTERS: usize = 4;

/// Of the churn's `choices` under `membership` (led by `leader`), those that
/// move the voter count toward [`EPISODE_VOTERS`] (adding and promoting
/// learners below it, removing and demoting voters above it) and, at it, the
/// single-voter changes that arm the episode. Empty when none applies.
pub(super) fn aimed_changes(
    membership: &Membership,
    leader: NodeId,
    choices: &[MembershipChange],
) -> Vec<MembershipChange> {
    let voters = membership.voters.len();
    choices
        .iter()
        .copied()
        .filter(|change| match *change {
            MembershipChange::AddLearner(_) => voters < EPISODE_VOTERS && membership.learners.is_empty(),
            MembershipChange::Promote(_) => voters <= EPISODE_VOTERS,
            MembershipChange::Remove(id) | MembershipChange::Demote(id) => {
                voters >= EPISODE_VOTERS && membership.is_voter(id) && id != leader
            }
            MembershipChange::Replace { .. } => false,
        })
        .collect()
}

impl Cluster {
    /// Before `leader` is asked for `change` under `before`: whether to start
    /// the episode; if so, the leader is cut off alone first, so that the
    /// appends carrying C1 never leave it (a learner holding C1 would count
    /// itself a voter and could win, which ends the story). The caller then
    /// calls [`Cluster::barrier_episode_arm`] if the change is accepted and
    /// reconnects the leader otherwise.
    pub(super) fn barrier_episode_cut(
        &mut self,
        leader: NodeId,
        before: &Membership,
        change: MembershipChange,
    ) -> bool {
        // C0 of four voters: L2 needs three of them (itself, W and V's vote),
        // C2 = C0 − L1 commits on {L2, W}, and C1's majority is {L1, V} plus
        // the learner C1 promotes (three of five) or {L1, V} (two of three).
        // With three voters L2 has nobody to commit with; with five, C1's
        // majority would need a second moved voter whose vote L2 also needs.
        if before.voters.len() != EPISODE_VOTERS || before.is_joint() {
            return false;
        }
        let Ok(after) = before.after(&change) else {
            return false;
        };
        if after.is_joint() || !after.is_voter(leader) || after.voters == before.voters {
            return false;
        }
        if !self.churn_rng.chance(ARM_CHANCE) {
            return false;
        }
        self.apply_fault(FaultAction::Isolate(leader));
        true
    }

    /// `leader`, cut off by [`Cluster::barrier_episode_cut`], accepted
    /// `change` at `(index, term)`: arms the episode and returns when the cut
    /// ends (the caller reconnects the leader then).
    pub(super) fn barrier_episode_arm(
        &mut self,
        leader: NodeId,
        before: &Membership,
        change: MembershipChange,
        (index, term): (LogIndex, Term),
    ) -> u64 {
        let after = before.after(&change).expect("the leader accepted it");
        let both_voters: Vec<NodeId> =
            before.voters.iter().copied().filter(|&id| id != leader && after.is_voter(id)).collect();
        let back_ms = self.now_ms + self.churn_rng.range(2_000, 5_000);
        self.membership_watch.barrier = Some(BarrierEpisode {
            old_leader: leader,
            reached: change.promotes().into_iter().collect(),
            change_at: (index, term),
            both_voters,
            back_ms,
        });
        self.counters.add("membership_barrier_episodes_armed", 1);
        back_ms
    }

    /// `id` became leader: if the episode is armed and `id` lacks C1, move a
    /// voter that voted for it to the old leader's side and ask `id` to
    /// remove the old leader at once. Returns whether the episode took the
    /// new leader (then no random change is asked of it).
    pub(super) fn barrier_episode_on_leader(&mut self, id: NodeId) -> bool {
        let Some(episode) = self.membership_watch.barrier.clone() else {
            return false;
        };
        if self.now_ms >= episode.back_ms {
            self.membership_watch.barrier = None;
            return false;
        }
        if id == episode.old_leader {
            return false;
        }
        self.membership_watch.barrier = None;
        let Some(node) = self.host(id).node() else {
            return false;
        };
        let (index, term) = episode.change_at;
        if node.entry(index).is_some_and(|entry| entry.term == term) {
            return false; // C1 reached it: nothing conflicts.
        }
        let leader_term = node.term();
        let voted_for_it: Vec<NodeId> = episode
            .both_voters
            .iter()
            .copied()
            .filter(|&voter| voter != id)
            .filter(|&voter| {
                self.host(voter).node().is_some_and(|v| v.term() == leader_term && v.voted_for() == Some(id))
            })
            .collect();
        if voted_for_it.is_empty() {
            return false;
        }
        let moved = *self.churn_rng.pick(&voted_for_it);
        // The old leader's side: it, `moved` and the learner C1 promotes (its
        // vote is C1's third of five). Applied before the new leader's first
        // appends leave (they follow its `BecameLeader` note in the same
        // step), so none reaches them.
        let mut side = episode.reached.clone();
        side.extend([episode.old_leader, moved]);
        for &node in &side {
            let peers: Vec<NodeId> = side.iter().copied().filter(|&peer| peer != node).collect();
            self.apply_fault(FaultAction::Restrict(node, peers));
            if node != episode.old_leader {
                self.queue.push(episode.back_ms, SimEvent::Fault(Box::new(FaultAction::Connect(node))));
            }
        }
        let change = MembershipChange::Remove(episode.old_leader);
        self.queue.push(self.now_ms, SimEvent::MembershipChange { at: id, change });
        self.counters.add("membership_barrier_episodes", 1);
        true
    }

    /// The episode's change, asked of `at` if it still leads.
    pub(super) fn barrier_episode_change(&mut self, at: NodeId, change: MembershipChange) {
        if !self.swarm_active || self.host(at).paused || self.host(at).node().is_none_or(|n| n.role() != Role::Leader) {
            return;
        }
        self.counters.add("membership_changes_requested", 1);
        let (_, outcome) = self.change_membership_at(at, change);
        let name = match outcome {
            ProposalOutcome::Accepted { .. } => "membership_barrier_episode_accepted",
            ProposalOutcome::Rejected(raft_sm::Rejection::NoCommitInTerm) => "membership_refused_barrier",
            _ => "membership_refused_other",
        };
        self.counters.add(name, 1);
    }
}
