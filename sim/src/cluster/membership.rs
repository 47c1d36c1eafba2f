//! Membership in the harness: operations a scenario calls (`add_learner`,
//! `promote`, `demote`, `remove`, `replace`), the churn a swarm run adds
//! (random changes between `voters_min` and `voters_max` voters, under every
//! other fault), the invariant that a node's configuration is the latest in its
//! log, and the coverage counters that prove the interesting paths happened.
//!
//! With [`SimOptions::initial_voters`] set, nodes `1..=initial_voters`
//! bootstrap the cluster and the others start empty, joining (they wait,
//! never campaigning, until a leader adds them).

use super::*;
use raft_sm::{Entry, Membership, MembershipChange, Payload, Rejection};

/// Membership churn during the fault phase.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChurnOptions {
    /// Shortest gap between two change requests.
    pub interval_ms_min: u64,
    /// Longest gap between two change requests.
    pub interval_ms_max: u64,
    /// Never fewer voters than this.
    pub voters_min: usize,
    /// Never more voters than this.
    pub voters_max: usize,
    /// Steer the changes toward the single-server change bug's setup
    /// (`barrier_episode.rs`): toward four voters, and single-voter changes there.
    pub aim_barrier: bool,
}

impl Default for ChurnOptions {
    fn default() -> Self {
        ChurnOptions { interval_ms_min: 100, interval_ms_max: 1_500, voters_min: 1, voters_max: 7, aim_barrier: false }
    }
}

/// What the churn and the checker remember between steps.
#[derive(Clone, Debug, Default)]
pub(super) struct MembershipWatch {
    /// Nodes that installed a snapshot while they were learners (not yet promoted).
    learners_with_snapshot: std::collections::BTreeSet<NodeId>,
    /// Joint entries applied: index → term of the leader that appended it.
    joint_terms: BTreeMap<LogIndex, Term>,
    /// Leave entries already counted (so each is counted once, not once per node).
    leaves_counted: std::collections::BTreeSet<LogIndex>,
    /// The configuration applied last (by any node, in index order of first application).
    applied_through: LogIndex,
    /// The single-server change bug's setup, armed (`barrier_episode.rs`).
    pub(super) barrier: Option<super::barrier_episode::BarrierEpisode>,
}

impl Cluster {
    // ----- operations -------------------------------------------------------------------

    /// Asks the leader for `change` now; returns the request id (for
    /// [`Cluster::answer`]) and the immediate answer.
    pub fn change_membership(&mut self, change: MembershipChange) -> (u64, ProposalOutcome) {
        let leader = self.resolve(Who::Leader);
        self.change_membership_at(leader, change)
    }

    /// Asks `who` for `change` (refused unless it leads).
    pub fn change_membership_at(&mut self, who: impl Into<Who>, change: MembershipChange) -> (u64, ProposalOutcome) {
        let id = self.resolve(who);
        // The request map needs a request; a membership change is a write of nothing to the store.
        let request = self.harness_request(Request::Write(Vec::new()));
        self.step_node(id, Event::ChangeMembership { id: request, change });
        let outcome = match self.answers.get(&request) {
            Some(Answer::Accepted { index, term }) => ProposalOutcome::Accepted { index: *index, term: *term },
            Some(Answer::Rejected(rejection)) => ProposalOutcome::Rejected(rejection.clone()),
            Some(Answer::Dropped) => ProposalOutcome::Dropped,
            other => panic!("{id} answered change #{request} with {other:?}"),
        };
        (request, outcome)
    }

    /// Asks the leader for `change` and runs until the cluster no longer has a
    /// change in flight (the leader's configuration committed and not joint),
    /// retrying while the leader is busy or not yet allowed (the barrier), for
    /// at most `limit_ms`. Returns the final rejection, if the change was refused.
    pub fn change_and_wait(&mut self, change: MembershipChange, limit_ms: u64) -> Result<(), Failure> {
        let until = self.now_ms + limit_ms;
        loop {
            self.run_until("a leader without a change in flight", Cluster::membership_settled, until - self.now_ms)?;
            let (request, outcome) = self.change_membership(change);
            match outcome {
                ProposalOutcome::Accepted { .. } => {}
                ProposalOutcome::Rejected(
                    Rejection::ChangeInProgress
                    | Rejection::NoCommitInTerm
                    | Rejection::NotCaughtUp { .. }
                    | Rejection::TransferInProgress
                    | Rejection::NotLeader { .. },
                ) if self.now_ms + 100 < until => {
                    self.run_for(100);
                    continue;
                }
                other => {
                    return Err(self.failure(FailureKind::Liveness, format!("{change:?} refused: {other:?}")));
                }
            }
            let answered =
                |cluster: &Cluster| matches!(cluster.answers.get(&request), Some(Answer::Written(_) | Answer::Dropped));
            self.run_until("the change answered", answered, until.saturating_sub(self.now_ms))?;
            if matches!(self.answers.get(&request), Some(Answer::Written(_))) {
                return self.run_until(
                    "the change settled",
                    Cluster::membership_settled,
                    until.saturating_sub(self.now_ms),
                );
            }
            // Dropped: leadership changed; the change may or may not be in. Look again.
            if self.membership_has(change) {
                return self.run_until("the change settled", Cluster::membership_settled, until - self.now_ms);
            }
        }
    }

    /// Whether the leader's configuration already reflects `change`.
    fn membership_has(&self, change: MembershipChange) -> bool {
        let Some(leader) = self.leader() else {
            return false;
        };
        let membership = self.host(leader).node().expect("the leader runs").membership();
        match change {
            MembershipChange::AddLearner(id) => membership.contains(id),
            MembershipChange::Promote(id) => membership.voters.contains(&id),
            MembershipChange::Demote(id) => membership.is_learner(id),
            MembershipChange::Remove(id) => !membership.contains(id),
            MembershipChange::Replace { add, remove } => {
                membership.voters.contains(&add) && !membership.voters.contains(&remove)
            }
        }
    }

    /// Adds `id` as a learner and waits until the change settled.
    pub fn add_learner(&mut self, id: NodeId, limit_ms: u64) -> Result<(), Failure> {
        self.change_and_wait(MembershipChange::AddLearner(id), limit_ms)
    }

    /// Promotes learner `id` (retrying until it has caught up) and waits.
    pub fn promote(&mut self, id: NodeId, limit_ms: u64) -> Result<(), Failure> {
        self.change_and_wait(MembershipChange::Promote(id), limit_ms)
    }

    /// Demotes voter `id` to learner and waits.
    pub fn demote(&mut self, id: NodeId, limit_ms: u64) -> Result<(), Failure> {
        self.change_and_wait(MembershipChange::Demote(id), limit_ms)
    }

    /// Removes member `id` (the leader too) and waits.
    pub fn remove(&mut self, id: NodeId, limit_ms: u64) -> Result<(), Failure> {
        self.change_and_wait(MembershipChange::Remove(id), limit_ms)
    }

    /// Replaces voter `old` by `new`: adds `new` as a learner, then (once it
    /// caught up) promotes it and removes `old` in one joint change.
    pub fn replace(&mut self, old: NodeId, new: NodeId, limit_ms: u64) -> Result<(), Failure> {
        let until = self.now_ms + limit_ms;
        if !self.membership_has(MembershipChange::AddLearner(new)) {
            self.add_learner(new, limit_ms)?;
        }
        self.change_and_wait(MembershipChange::Replace { add: new, remove: old }, until - self.now_ms)
    }

    /// The leader's configuration (`None` without a leader).
    pub fn membership(&self) -> Option<Membership> {
        let leader = self.leader()?;
        self.host(leader).node().map(|node| node.membership().clone())
    }

    /// Whether a leader exists whose configuration is committed and not joint.
    pub fn membership_settled(&self) -> bool {
        self.leader()
            .and_then(|leader| self.host(leader).node())
            .is_some_and(|node| !node.membership_change_in_progress())
    }

    /// The nodes the liveness phase requires to converge: every node, or with
    /// membership in play, the members of the leader's configuration (a removed
    /// node is left behind by design, with whatever log it had).
    pub fn liveness_nodes(&self) -> Vec<NodeId> {
        if self.options.initial_voters.is_none() {
            return self.ids();
        }
        match self.membership() {
            Some(membership) => membership.members(),
            None => self.ids(),
        }
    }

    /// With membership in play: the leader, if `node` is not a member of its
    /// configuration (clients are sent there instead).
    pub(super) fn outside_membership(&self, node: NodeId) -> Option<NodeId> {
        self.options.initial_voters?;
        let leader = self.leader()?;
        let membership = self.host(leader).node()?.membership();
        (!membership.contains(node)).then_some(leader)
    }

    // ----- churn --------------------------------------------------------------------------

    pub(super) fn schedule_churn_tick(&mut self) {
        let Some(churn) = &self.options.membership_churn else {
            return;
        };
        let gap = self.churn_rng.range(churn.interval_ms_min, churn.interval_ms_max);
        self.queue.push(self.now_ms + gap, SimEvent::MembershipTick { chained: true });
    }

    /// One random change, if the leader can take one; a chained tick
    /// reschedules itself until the fault phase ends.
    pub(super) fn churn_tick(&mut self, chained: bool) {
        if !self.swarm_active {
            return; // The liveness phase: no more changes.
        }
        if chained {
            self.schedule_churn_tick();
        }
        let churn = self.options.membership_churn.clone().expect("churn on");
        let Some(leader) = self.leader() else {
            return;
        };
        let membership = self.host(leader).node().expect("the leader runs").membership().clone();
        let voters = membership.voters.clone();
        let outsiders: Vec<NodeId> = self.ids().into_iter().filter(|&id| !membership.contains(id)).collect();
        let mut choices: Vec<MembershipChange> = Vec::new();
        if voters.len() < churn.voters_max {
            choices.extend(outsiders.iter().map(|&id| MembershipChange::AddLearner(id)));
            choices.extend(membership.learners.iter().map(|&id| MembershipChange::Promote(id)));
        }
        for &learner in &membership.learners {
            choices.push(MembershipChange::Remove(learner));
            for &voter in &voters {
                choices.push(MembershipChange::Replace { add: learner, remove: voter });
            }
        }
        if voters.len() > churn.voters_min {
            for &voter in &voters {
                choices.push(MembershipChange::Remove(voter));
                choices.push(MembershipChange::Demote(voter));
            }
        }
        if churn.aim_barrier {
            let aimed = super::barrier_episode::aimed_changes(&membership, leader, &choices);
            if !aimed.is_empty() {
                choices = aimed;
            }
        }
        if choices.is_empty() {
            return;
        }
        let change = *self.churn_rng.pick(&choices);
        if self.host(leader).paused {
            return;
        }
        self.counters.add("membership_changes_requested", 1);
        let cut_first = self.barrier_episode_cut(leader, &membership, change);
        let (_, outcome) = self.change_membership_at(leader, change);
        let episode = match outcome {
            ProposalOutcome::Accepted { index, term } if cut_first => {
                Some(self.barrier_episode_arm(leader, &membership, change, (index, term)))
            }
            _ if cut_first => {
                self.apply_fault(FaultAction::Connect(leader));
                None
            }
            _ => None,
        };
        if let Some(back_ms) = episode {
            self.counters.add("membership_leader_cut_after_change", 1);
            self.queue.push(back_ms, SimEvent::Fault(Box::new(FaultAction::Connect(leader))));
        } else if matches!(outcome, ProposalOutcome::Accepted { .. }) && self.churn_rng.chance(0.3) {
            // Cut the leader off with its uncommitted change for a while: the
            // next leader may not have it (the single-server change bug's setup).
            self.counters.add("membership_leader_cut_after_change", 1);
            match change.promotes() {
                // It still reaches the node it promotes, which then holds the change too.
                Some(promoted) => self.apply_fault(FaultAction::Restrict(leader, vec![promoted])),
                None => self.apply_fault(FaultAction::Isolate(leader)),
            }
            let back_ms = self.now_ms + self.churn_rng.range(500, 3_000);
            self.queue.push(back_ms, SimEvent::Fault(Box::new(FaultAction::Connect(leader))));
        }
        let name = match outcome {
            ProposalOutcome::Accepted { .. } => "membership_changes_accepted",
            ProposalOutcome::Rejected(Rejection::NoCommitInTerm) => "membership_refused_barrier",
            ProposalOutcome::Rejected(Rejection::ChangeInProgress) => "membership_refused_in_progress",
            ProposalOutcome::Rejected(Rejection::NotCaughtUp { .. }) => "membership_refused_not_caught_up",
            _ => "membership_refused_other",
        };
        self.counters.add(name, 1);
    }

    // ----- checks and coverage ------------------------------------------------------------

    /// A node's configuration is the latest configuration in its log (or its
    /// snapshot's, with none after the base): configurations take effect in
    /// log order, when appended, and truncation reverts them.
    pub(super) fn check_membership(&mut self, index: usize, later: Option<&Entry>) {
        let host = &self.hosts[index];
        let Some(node) = host.node() else {
            return;
        };
        let at = node.membership_index();
        let holds = match node.entry(at) {
            Some(entry) => {
                matches!(&entry.payload, Payload::Membership(membership) if **membership == *node.membership())
            }
            None => at <= node.log_base().0,
        };
        let stale = later.is_some_and(|entry| node.entry(entry.index) == Some(entry) && entry.index > at);
        if !holds || stale {
            let detail = format!(
                "{} is in configuration {} of {at}, not the latest in its log (appended: {:?})",
                host.id,
                node.membership(),
                later.map(|entry| entry.index)
            );
            self.fail(FailureKind::Safety, format!("configurations in log order: {detail}"));
        }
    }

    /// Coverage from notes: a removed leader handed over; a learner installed a
    /// snapshot. With churn, a new leader is often asked for a change at once
    /// (the barrier refuses it until an entry of its term commits).
    pub(super) fn membership_note(&mut self, id: NodeId, note: &Note) {
        match note {
            // The episode takes the new leader, or half the time a random change.
            Note::BecameLeader { .. }
                if self.options.membership_churn.is_some()
                    && !self.barrier_episode_on_leader(id)
                    && self.churn_rng.chance(0.5) =>
            {
                self.queue.push(self.now_ms, SimEvent::MembershipTick { chained: false });
            }
            Note::SteppedDown { reason: raft_sm::StepDownReason::RemovedFromConfiguration, .. } => {
                self.counters.add("membership_leader_removed", 1);
            }
            Note::SnapshotInstalled { .. } => {
                let learner = self.host(id).node().is_some_and(|node| node.membership().is_learner(id));
                if learner {
                    self.membership_watch.learners_with_snapshot.insert(id);
                }
            }
            _ => {}
        }
    }

    /// Coverage from applied configuration entries: committed changes, a joint
    /// change finished by a later leader than the one that began it (its
    /// leader crashed or lost its term mid-joint), a learner promoted after it
    /// caught up by snapshot.
    pub(super) fn membership_applied(&mut self, entry: &Entry) {
        let Payload::Membership(membership) = &entry.payload else {
            return;
        };
        let watch = &mut self.membership_watch;
        if entry.index <= watch.applied_through {
            return; // Another node applied it first.
        }
        watch.applied_through = entry.index;
        self.counters.add("membership_changes_committed", 1);
        if membership.is_joint() {
            watch.joint_terms.insert(entry.index, entry.term);
            self.counters.add("membership_joint_committed", 1);
        } else if let Some((_, &joint_term)) = watch.joint_terms.range(..entry.index).next_back() {
            if joint_term != entry.term && watch.leaves_counted.insert(entry.index) {
                self.counters.add("membership_joint_left_by_new_leader", 1);
            }
            watch.joint_terms.clear();
        }
        let promoted: Vec<NodeId> =
            watch.learners_with_snapshot.iter().copied().filter(|&id| membership.is_voter(id)).collect();
        for id in promoted {
            watch.learners_with_snapshot.remove(&id);
            self.counters.add("membership_promoted_after_snapshot", 1);
        }
        watch.learners_with_snapshot.retain(|&id| membership.is_learner(id));
    }
}
