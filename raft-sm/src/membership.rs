//! Membership changes (Raft thesis chapter 4): the configuration as data in
//! the log, joint consensus with an automatic leave, learners, and the rules a
//! leader checks before it accepts a change.
//!
//! # When a configuration takes effect
//! **When it is appended to a node's log, not when it commits** (thesis §4.1).
//! Every node, leader or follower, uses the latest configuration entry in its
//! log (or, with none after the snapshot, the snapshot's configuration; with
//! neither, the bootstrap voters of [`crate::Config::voters`]). Truncating a
//! configuration entry reverts to the one before it; restart and snapshot
//! install rebuild the same answer from the same log. [`Configurations`] is the
//! one place that keeps this.
//!
//! # One mechanism
//! A change that adds or removes at most one voter (thesis §4.2, "single-server
//! changes") is appended as the new configuration directly. A change of more
//! voters ([`MembershipChange::Replace`]) enters a joint configuration
//! (`outgoing` = the old voters) in which every decision needs a majority of
//! both, and the leader appends the leave entry itself as soon as the joint
//! entry commits (thesis §4.3). Either way at most one change is in flight:
//! a leader refuses a new one while its latest configuration is uncommitted or
//! joint, and until an entry of its own term has committed (the barrier of
//! Ongaro's 2015 raft-dev correction to the single-server algorithm: without
//! it a new leader could append a change that does not overlap an uncommitted
//! one of the previous leader, and two majorities could decide apart).

use crate::event::{Action, Note, ProposalOutcome, Rejection, StepDownReason};
use crate::message::Body;
use crate::mutants::Mutant;
use crate::node::Node;
use crate::progress::Progress;
use crate::quorum::JointConfig;
use crate::types::{LogIndex, NodeId, Payload, Role};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// A cluster configuration: who votes, who only receives the log, and while a
/// joint change is under way, the voters it comes from.
///
/// Takes effect when appended (see the module documentation). Every list is
/// sorted and free of duplicates; `learners` share no node with `voters` or
/// `outgoing`; `contexts` names members only.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Membership {
    /// The voters (during a joint change: the incoming voters).
    pub voters: Vec<NodeId>,
    /// Members that receive the log but never vote, count or campaign.
    pub learners: Vec<NodeId>,
    /// Empty, except while a joint change is under way: the outgoing voters,
    /// whose majority must agree too.
    pub outgoing: Vec<NodeId>,
    /// An opaque context per member (the node driver keeps each member's name
    /// and URLs here, so that every node can dial a member added at runtime).
    /// The core never reads it: it only carries it through changes, the log,
    /// snapshots and InstallSnapshot, and drops a member's once it leaves.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub contexts: BTreeMap<NodeId, Vec<u8>>,
}

fn sorted(ids: impl IntoIterator<Item = NodeId>) -> Vec<NodeId> {
    let mut ids: Vec<NodeId> = ids.into_iter().collect();
    ids.sort_unstable();
    ids.dedup();
    ids
}

impl Membership {
    /// A plain configuration of `voters` and no learners.
    pub fn new(voters: impl IntoIterator<Item = NodeId>) -> Membership {
        Membership { voters: sorted(voters), learners: Vec::new(), outgoing: Vec::new(), contexts: BTreeMap::new() }
    }

    /// A configuration with learners.
    pub fn with_learners(
        voters: impl IntoIterator<Item = NodeId>,
        learners: impl IntoIterator<Item = NodeId>,
    ) -> Membership {
        Membership {
            voters: sorted(voters),
            learners: sorted(learners),
            outgoing: Vec::new(),
            contexts: BTreeMap::new(),
        }
    }

    /// The same configuration with `contexts`, keeping only those of members.
    pub fn with_contexts(mut self, contexts: BTreeMap<NodeId, Vec<u8>>) -> Membership {
        self.contexts = contexts;
        self.retain_member_contexts();
        self
    }

    /// The context of member `id`, if it has one.
    pub fn context(&self, id: NodeId) -> Option<&[u8]> {
        self.contexts.get(&id).map(Vec::as_slice)
    }

    /// Drops the contexts of nodes that are no longer members.
    fn retain_member_contexts(&mut self) {
        let members = self.members();
        self.contexts.retain(|id, _| members.contains(id));
    }

    /// Whether a joint change is under way.
    pub fn is_joint(&self) -> bool {
        !self.outgoing.is_empty()
    }

    /// Whether `id` votes (in either half of a joint configuration).
    pub fn is_voter(&self, id: NodeId) -> bool {
        self.voters.contains(&id) || self.outgoing.contains(&id)
    }

    /// Whether `id` is a learner.
    pub fn is_learner(&self, id: NodeId) -> bool {
        self.learners.contains(&id)
    }

    /// Whether `id` is a member in any role.
    pub fn contains(&self, id: NodeId) -> bool {
        self.is_voter(id) || self.is_learner(id)
    }

    /// Every member, sorted: voters of both halves and learners.
    pub fn members(&self) -> Vec<NodeId> {
        sorted(self.voters.iter().chain(&self.outgoing).chain(&self.learners).copied())
    }

    /// Every voter of either half, sorted.
    pub fn all_voters(&self) -> Vec<NodeId> {
        sorted(self.voters.iter().chain(&self.outgoing).copied())
    }

    /// Who must agree, as the core asks it.
    pub(crate) fn quorum(&self) -> JointConfig {
        if self.is_joint() {
            JointConfig::joint(self.voters.iter().copied(), self.outgoing.iter().copied())
        } else {
            JointConfig::majority(self.voters.iter().copied())
        }
    }

    /// The configuration after the joint phase: the incoming voters alone.
    pub fn leave_joint(&self) -> Membership {
        let mut left = Membership {
            voters: self.voters.clone(),
            learners: self.learners.clone(),
            outgoing: Vec::new(),
            contexts: self.contexts.clone(),
        };
        left.retain_member_contexts();
        left
    }

    /// The configuration `change` leads to from this (non-joint) one: the
    /// final configuration when the change moves at most one voter, or the
    /// joint configuration to enter when it moves more.
    pub fn after(&self, change: &MembershipChange) -> Result<Membership, ChangeError> {
        if self.is_joint() {
            return Err(ChangeError::Joint);
        }
        let (mut voters, mut learners) = (self.voters.clone(), self.learners.clone());
        let remove = |list: &mut Vec<NodeId>, id: NodeId| list.retain(|&member| member != id);
        match *change {
            MembershipChange::AddLearner(id) => {
                if self.contains(id) {
                    return Err(ChangeError::AlreadyMember(id));
                }
                learners.push(id);
            }
            MembershipChange::Promote(id) => {
                if !self.is_learner(id) {
                    return Err(ChangeError::NotALearner(id));
                }
                remove(&mut learners, id);
                voters.push(id);
            }
            MembershipChange::Demote(id) => {
                if !self.is_voter(id) {
                    return Err(ChangeError::NotAVoter(id));
                }
                remove(&mut voters, id);
                learners.push(id);
            }
            MembershipChange::Remove(id) => {
                if !self.contains(id) {
                    return Err(ChangeError::NotAMember(id));
                }
                remove(&mut voters, id);
                remove(&mut learners, id);
            }
            MembershipChange::Replace { add, remove: gone } => {
                if add == gone {
                    return Err(ChangeError::ReplaceWithItself(add));
                }
                if !self.is_learner(add) {
                    return Err(ChangeError::NotALearner(add));
                }
                if !self.is_voter(gone) {
                    return Err(ChangeError::NotAVoter(gone));
                }
                remove(&mut learners, add);
                remove(&mut voters, gone);
                voters.push(add);
            }
        }
        if voters.is_empty() {
            return Err(ChangeError::NoVotersLeft);
        }
        let voters = sorted(voters);
        let moved = voters.iter().filter(|id| !self.voters.contains(id)).count()
            + self.voters.iter().filter(|id| !voters.contains(id)).count();
        let outgoing = if moved > 1 { self.voters.clone() } else { Vec::new() };
        let mut next = Membership { voters, learners: sorted(learners), outgoing, contexts: self.contexts.clone() };
        next.retain_member_contexts();
        Ok(next)
    }
}

/// `voters=(n1,n2) learners=(n4) outgoing=(n1,n2,n3)` (empty lists left out).
impl fmt::Display for Membership {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let list = |ids: &[NodeId]| ids.iter().map(ToString::to_string).collect::<Vec<_>>().join(",");
        write!(f, "voters=({})", list(&self.voters))?;
        if !self.learners.is_empty() {
            write!(f, " learners=({})", list(&self.learners))?;
        }
        if self.is_joint() {
            write!(f, " outgoing=({})", list(&self.outgoing))?;
        }
        Ok(())
    }
}

/// One membership change an operator asks the leader for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum MembershipChange {
    /// Add a new node as a learner: it receives the log, and votes only once promoted.
    AddLearner(NodeId),
    /// Make a learner a voter. Refused until it has caught up
    /// ([`crate::Config::promote_lag_entries_max`]).
    Promote(NodeId),
    /// Make a voter a learner (the leader too: it leads until the change
    /// commits, then hands over).
    Demote(NodeId),
    /// Remove a voter or a learner (the leader too, as for `Demote`).
    Remove(NodeId),
    /// Promote the caught-up learner `add` and remove the voter `remove` in one
    /// joint change.
    Replace {
        /// The learner that becomes a voter.
        add: NodeId,
        /// The voter that leaves.
        remove: NodeId,
    },
}

impl MembershipChange {
    /// The learner this change promotes, if any (it must be caught up).
    pub fn promotes(&self) -> Option<NodeId> {
        match *self {
            MembershipChange::Promote(id) | MembershipChange::Replace { add: id, .. } => Some(id),
            _ => None,
        }
    }
}

/// Why a change does not apply to the current configuration.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub enum ChangeError {
    /// The node to add is a member already.
    AlreadyMember(NodeId),
    /// The node is not a learner (only learners are promoted).
    NotALearner(NodeId),
    /// The node is not a voter.
    NotAVoter(NodeId),
    /// The node is not a member.
    NotAMember(NodeId),
    /// A node cannot replace itself.
    ReplaceWithItself(NodeId),
    /// The change would leave no voter.
    NoVotersLeft,
    /// The configuration is joint (a change is under way).
    Joint,
}

impl fmt::Display for ChangeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ChangeError::AlreadyMember(id) => write!(f, "{id} is a member already"),
            ChangeError::NotALearner(id) => write!(f, "{id} is not a learner (add it as a learner first)"),
            ChangeError::NotAVoter(id) => write!(f, "{id} is not a voter"),
            ChangeError::NotAMember(id) => write!(f, "{id} is not a member"),
            ChangeError::ReplaceWithItself(id) => write!(f, "{id} cannot replace itself"),
            ChangeError::NoVotersLeft => f.write_str("the change would leave the cluster without voters"),
            ChangeError::Joint => f.write_str("a joint change is under way"),
        }
    }
}

impl std::error::Error for ChangeError {}

/// The configurations in a node's log: the one at the log base and every
/// configuration entry after it, so the current one (the latest) is known at
/// once and truncation, compaction and snapshot install keep it right.
#[derive(Clone, Debug)]
pub(crate) struct Configurations {
    base_index: LogIndex,
    /// The configuration at `base_index` (the snapshot's, or the bootstrap one).
    base: Membership,
    /// Configuration entries after the base, in index order.
    entries: Vec<(LogIndex, Membership)>,
}

impl Configurations {
    pub(crate) fn new(base_index: LogIndex, base: Membership) -> Configurations {
        Configurations { base_index, base, entries: Vec::new() }
    }

    /// The configuration in effect: the latest appended.
    pub(crate) fn current(&self) -> &Membership {
        self.entries.last().map_or(&self.base, |(_, membership)| membership)
    }

    /// The index of the entry that holds the current configuration (the base
    /// index when it came from the snapshot or the bootstrap).
    pub(crate) fn current_index(&self) -> LogIndex {
        self.entries.last().map_or(self.base_index, |&(index, _)| index)
    }

    /// The configuration in effect at `index` (for a snapshot taken there).
    pub(crate) fn at(&self, index: LogIndex) -> &Membership {
        self.entries.iter().rev().find(|(at, _)| *at <= index).map_or(&self.base, |(_, membership)| membership)
    }

    pub(crate) fn append(&mut self, index: LogIndex, membership: Membership) {
        assert!(index > self.current_index(), "configurations are appended in log order");
        self.entries.push((index, membership));
    }

    /// Entries at or after `from` are gone: returns whether the current one changed.
    pub(crate) fn truncate_from(&mut self, from: LogIndex) -> bool {
        let before = self.entries.len();
        self.entries.retain(|&(index, _)| index < from);
        self.entries.len() != before
    }

    /// The log base moved to `up_to` (a snapshot covers it).
    pub(crate) fn compact_to(&mut self, up_to: LogIndex) {
        if up_to <= self.base_index {
            return;
        }
        self.base = self.at(up_to).clone();
        self.base_index = up_to;
        self.entries.retain(|&(index, _)| index > up_to);
    }

    /// The log was discarded for a snapshot at `base_index` holding `base`.
    pub(crate) fn reset(&mut self, base_index: LogIndex, base: Membership) {
        *self = Configurations::new(base_index, base);
    }
}

impl Node {
    /// The configuration in effect (the latest in the log; see [`Membership`]).
    pub fn membership(&self) -> &Membership {
        self.configurations.current()
    }

    /// The index of the entry holding the configuration in effect.
    pub fn membership_index(&self) -> LogIndex {
        self.configurations.current_index()
    }

    /// Whether a change is in flight: the latest configuration is not committed yet, or joint.
    pub fn membership_change_in_progress(&self) -> bool {
        self.configurations.current_index() > self.commit_index || self.membership().is_joint()
    }

    /// On a leader: when each follower last answered (the driver's clock, in
    /// ms; `None` before its first answer). Empty on other roles.
    pub fn follower_contact_ms(&self) -> Vec<(NodeId, Option<u64>)> {
        self.progress.iter().map(|(&id, progress)| (id, progress.last_contact_ms)).collect()
    }

    /// Whether this node votes in its current configuration.
    pub(crate) fn is_voter(&self) -> bool {
        self.membership().is_voter(self.config.id)
    }

    /// Whether this node may start an election: it votes in its configuration,
    /// or it voted in the one before and the latest, which left it out, is not
    /// known committed yet. Then it may still be needed (thesis §4.2.2): a
    /// leader that removed or demoted itself and lost its term before the change
    /// committed holds the longest log, so the others cannot win without it,
    /// and it must be able to win, finish the change and hand over. Learners,
    /// nodes not yet added, and nodes whose removal they know committed never
    /// campaign.
    pub(crate) fn may_campaign(&self) -> bool {
        if self.is_voter() {
            return true;
        }
        let latest = self.configurations.current_index();
        latest > self.commit_index
            && latest > LogIndex(0)
            && self.configurations.at(latest.prev()).is_voter(self.config.id)
    }

    /// The voters to ask for votes, without us.
    pub(crate) fn voter_peers(&self) -> Vec<NodeId> {
        self.membership().all_voters().into_iter().filter(|&id| id != self.config.id).collect()
    }

    /// Whether a message from `from` is heard. Members are; so is the leader we
    /// follow in this term (it may have removed itself); so are any node's
    /// AppendEntries and InstallSnapshot, which only a leader of that term sends
    /// (a node being added learns its configuration from them), and any node's
    /// vote request (thesis §4.1: our configuration may lag the candidate's,
    /// which counts our vote; refusing it can leave a new configuration without
    /// the votes it needs). Everything else from outside the configuration is
    /// dropped. A removed node cannot disrupt even so: its PreVote is refused
    /// and its vote request dropped while we hear a leader (the CheckQuorum
    /// lease, thesis §4.2.3), it never wins (its log lacks the committed entry
    /// that removed it), and it never campaigns once that entry reached it.
    pub(crate) fn hears_from(&self, from: NodeId, body: &Body) -> bool {
        self.membership().contains(from)
            || self.leader == Some(from)
            || matches!(body, Body::AppendEntries(_) | Body::InstallSnapshot(_) | Body::RequestVote(_))
    }

    /// A configuration entry was appended, truncated away or replaced by a
    /// snapshot's: recompute the quorum and, on a leader, whom it replicates to.
    pub(crate) fn on_membership_changed(&mut self) {
        self.quorum = self.membership().quorum();
        let membership = self.membership().clone();
        self.note(Note::MembershipChanged { index: self.configurations.current_index(), membership });
        if self.role != Role::Leader {
            return;
        }
        let last_index = self.log.last_index();
        let peers = self.peers();
        self.progress.retain(|id, _| peers.contains(id));
        for peer in peers {
            if let std::collections::btree_map::Entry::Vacant(slot) = self.progress.entry(peer) {
                // Never heard from yet: a learner is not promoted before it answers.
                slot.insert(Progress::new(last_index));
                self.mark_needs_append(peer);
            }
        }
        self.needs_append.retain(|id| self.progress.contains_key(id));
        if self.transfer.is_some_and(|transfer| !self.membership().is_voter(transfer.to)) {
            self.transfer = None;
        }
        // Who must agree changed: what the new quorum already holds is decided
        // now (a leader left alone has no follower whose answer would ask again).
        self.maybe_commit();
        self.confirm_reads();
    }

    /// An operator asks for a change; answered like a proposal.
    pub(crate) fn on_change_membership(&mut self, id: u64, change: MembershipChange) {
        self.on_change_membership_with(id, change, None);
    }

    /// A change that may carry the added member's context ([`crate::Event::AddMember`]).
    pub(crate) fn on_change_membership_with(&mut self, id: u64, change: MembershipChange, context: Option<Vec<u8>>) {
        let outcome = match self.check_change(&change) {
            Ok(mut membership) => {
                if let (MembershipChange::AddLearner(added), Some(context)) = (change, context) {
                    membership.contexts.insert(added, context);
                }
                let index = self.append_as_leader(Payload::Membership(Box::new(membership)));
                self.pending_proposals.push_back((index, id));
                ProposalOutcome::Accepted { index, term: self.term }
            }
            Err(rejection) => ProposalOutcome::Rejected(rejection),
        };
        self.actions.push(Action::ProposalResult { id, outcome });
    }

    /// The configuration to append for `change`, or why not.
    fn check_change(&self, change: &MembershipChange) -> Result<Membership, Rejection> {
        if self.role != Role::Leader {
            return Err(Rejection::NotLeader { leader: self.leader });
        }
        if self.transfer.is_some() {
            return Err(Rejection::TransferInProgress);
        }
        if self.pending_proposals.len() >= self.config.pending_proposals_max {
            return Err(Rejection::Busy);
        }
        let barrier = self.log.term_at(self.commit_index) == Some(self.term);
        if !barrier && !self.mutant_is(Mutant::MembershipBarrierOff) {
            return Err(Rejection::NoCommitInTerm);
        }
        if self.membership_change_in_progress() {
            return Err(Rejection::ChangeInProgress);
        }
        let membership = self.membership().after(change).map_err(Rejection::InvalidChange)?;
        if let Some(learner) = change.promotes() {
            let progress = &self.progress[&learner];
            let lag_entries = self.log.last_index().0.saturating_sub(progress.match_index.0);
            let silent_ms = progress.last_contact_ms.map(|at_ms| self.now_ms.saturating_sub(at_ms));
            let silent = silent_ms.is_none_or(|ms| ms > self.config.election_timeout_ms_max);
            // Behind the log base it can only catch up by snapshot: not yet,
            // however few entries that is.
            let needs_snapshot = progress.match_index < self.log.base_index();
            if lag_entries > self.config.promote_lag_entries_max || silent || needs_snapshot {
                return Err(Rejection::NotCaughtUp { id: learner, lag_entries, silent_ms });
            }
        }
        Ok(membership)
    }

    /// Called at the end of every step on a leader: leave a committed joint
    /// configuration, and once a configuration without us has committed, step
    /// down and hand over to the most up-to-date voter.
    pub(crate) fn maybe_advance_membership(&mut self) {
        if self.role != Role::Leader || self.configurations.current_index() > self.commit_index {
            return;
        }
        if self.membership().is_joint() {
            let leave = self.membership().leave_joint();
            self.append_as_leader(Payload::Membership(Box::new(leave)));
            return;
        }
        if self.is_voter() {
            return;
        }
        let target = self
            .voter_peers()
            .into_iter()
            .filter_map(|id| self.progress.get(&id).map(|progress| (progress.match_index, id)))
            .max()
            .filter(|&(match_index, _)| match_index == self.log.last_index())
            .map(|(_, id)| id);
        let term = self.term;
        self.become_follower(term, None, StepDownReason::RemovedFromConfiguration);
        if let Some(target) = target {
            // We still lead in the target's eyes (same term), so it takes the hint.
            self.send(target, Body::TimeoutNow);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(list: &[u64]) -> Vec<NodeId> {
        list.iter().map(|&id| NodeId(id)).collect()
    }

    #[test]
    fn one_voter_changes_are_direct_and_two_are_joint() {
        let three = Membership::with_learners(ids(&[1, 2, 3]), ids(&[4]));
        let promoted = three.after(&MembershipChange::Promote(NodeId(4))).unwrap();
        assert_eq!(promoted, Membership::new(ids(&[1, 2, 3, 4])));
        let demoted = three.after(&MembershipChange::Demote(NodeId(1))).unwrap();
        assert_eq!(demoted, Membership::with_learners(ids(&[2, 3]), ids(&[1, 4])));
        let replaced = three.after(&MembershipChange::Replace { add: NodeId(4), remove: NodeId(2) }).unwrap();
        assert_eq!(replaced.voters, ids(&[1, 3, 4]));
        assert_eq!(replaced.outgoing, ids(&[1, 2, 3]), "two voters move: joint");
        assert!(replaced.is_voter(NodeId(2)) && replaced.is_voter(NodeId(4)));
        assert_eq!(replaced.to_string(), "voters=(n1,n3,n4) outgoing=(n1,n2,n3)");
        assert_eq!(replaced.leave_joint(), Membership::new(ids(&[1, 3, 4])));
        assert_eq!(replaced.after(&MembershipChange::Remove(NodeId(1))), Err(ChangeError::Joint));
    }

    #[test]
    fn contexts_follow_their_members_through_changes() {
        let contexts = [(NodeId(1), b"one".to_vec()), (NodeId(2), b"two".to_vec()), (NodeId(4), b"four".to_vec())];
        let three = Membership::with_learners(ids(&[1, 2, 3]), ids(&[4])).with_contexts(contexts.into());
        let promoted = three.after(&MembershipChange::Promote(NodeId(4))).unwrap();
        assert_eq!(promoted.context(NodeId(4)), Some(&b"four"[..]));
        let removed = promoted.after(&MembershipChange::Remove(NodeId(2))).unwrap();
        assert_eq!(removed.context(NodeId(2)), None, "a removed member's context goes with it");
        let joint = three.after(&MembershipChange::Replace { add: NodeId(4), remove: NodeId(2) }).unwrap();
        assert_eq!(joint.context(NodeId(2)), Some(&b"two"[..]), "still an outgoing voter");
        assert_eq!(joint.leave_joint().context(NodeId(2)), None);
        assert_eq!(joint.leave_joint().context(NodeId(1)), Some(&b"one"[..]));
    }

    #[test]
    fn invalid_changes_say_why() {
        let one = Membership::with_learners(ids(&[1]), ids(&[2]));
        let cases = [
            (MembershipChange::AddLearner(NodeId(2)), ChangeError::AlreadyMember(NodeId(2))),
            (MembershipChange::Promote(NodeId(1)), ChangeError::NotALearner(NodeId(1))),
            (MembershipChange::Demote(NodeId(2)), ChangeError::NotAVoter(NodeId(2))),
            (MembershipChange::Remove(NodeId(9)), ChangeError::NotAMember(NodeId(9))),
            (MembershipChange::Remove(NodeId(1)), ChangeError::NoVotersLeft),
            (
                MembershipChange::Replace { add: NodeId(2), remove: NodeId(2) },
                ChangeError::ReplaceWithItself(NodeId(2)),
            ),
        ];
        for (change, error) in cases {
            assert_eq!(one.after(&change), Err(error), "{change:?}");
        }
        assert_eq!(ChangeError::NotALearner(NodeId(1)).to_string(), "n1 is not a learner (add it as a learner first)");
    }

    #[test]
    fn configurations_follow_append_truncate_compact_and_reset() {
        let mut configs = Configurations::new(LogIndex(0), Membership::new(ids(&[1])));
        configs.append(LogIndex(3), Membership::with_learners(ids(&[1]), ids(&[2])));
        configs.append(LogIndex(5), Membership::new(ids(&[1, 2])));
        assert_eq!(configs.current(), &Membership::new(ids(&[1, 2])));
        assert_eq!(configs.at(LogIndex(4)), &Membership::with_learners(ids(&[1]), ids(&[2])));
        assert_eq!(configs.at(LogIndex(2)), &Membership::new(ids(&[1])));
        assert!(configs.truncate_from(LogIndex(5)), "truncating a configuration entry reverts it");
        assert_eq!(configs.current_index(), LogIndex(3));
        assert!(!configs.truncate_from(LogIndex(4)));
        configs.compact_to(LogIndex(4));
        assert_eq!(
            (configs.current_index(), configs.current()),
            (LogIndex(4), &Membership::with_learners(ids(&[1]), ids(&[2])))
        );
        configs.reset(LogIndex(9), Membership::new(ids(&[7])));
        assert_eq!((configs.current_index(), configs.current()), (LogIndex(9), &Membership::new(ids(&[7]))));
    }
}
