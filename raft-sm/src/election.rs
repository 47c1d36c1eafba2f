//! Elections: PreVote, votes, becoming leader, CheckQuorum (Raft §5.2, §5.4.1;
//! thesis §9.6 PreVote and §6.2 leases).

use crate::event::{Note, StepDownReason, TimerKind, VoteRefusal};
use crate::message::{Body, Message, RequestVote, RequestVoteResponse};
use crate::mutants::Mutant;
use crate::node::{HigherTerm, Node};
use crate::progress::Progress;
use crate::quorum::{VoteResult, VoteTracker};
use crate::types::{LogIndex, NodeId, Payload, Role, Term};
use std::collections::BTreeMap;

impl Node {
    pub(crate) fn on_election_timeout(&mut self) {
        if self.role == Role::Leader {
            return;
        }
        if !self.may_campaign() {
            // A learner, a node not yet added or one removed: never campaigns.
            self.reset_election_deadline();
            return;
        }
        if self.vote_held() {
            // Repaired and not caught up yet: wait for a leader instead.
            self.reset_election_deadline();
            return;
        }
        if self.config.pre_vote {
            self.become_pre_candidate();
        } else {
            self.become_candidate(false);
        }
    }

    /// Whether this node heard from a live leader within the minimum election
    /// timeout. While it does, it refuses to help depose that leader.
    pub(crate) fn in_leader_lease(&self) -> bool {
        if self.role == Role::Leader {
            return true;
        }
        match (self.leader, self.leader_contact_ms) {
            (Some(_), Some(at_ms)) => self.now_ms < at_ms + self.config.election_timeout_ms_min,
            _ => false,
        }
    }

    /// A higher term is adopted unless the message is a PreVote (which changes
    /// nothing), a PreVote grant (which carries the proposed term), or a vote
    /// request arriving while we still hear a leader (the CheckQuorum lease,
    /// or for a candidate outside our configuration [`Node::non_member_lease`]).
    pub(crate) fn higher_term_policy(&self, message: &Message) -> HigherTerm {
        match message.body {
            Body::RequestVote(RequestVote { pre_vote: true, .. }) => HigherTerm::KeepTerm,
            Body::RequestVoteResponse(RequestVoteResponse { pre_vote: true, granted: true }) => HigherTerm::KeepTerm,
            Body::RequestVote(RequestVote { pre_vote: false, transfer, .. })
                if !transfer && (self.config.check_quorum && self.in_leader_lease()) =>
            {
                HigherTerm::Drop
            }
            Body::RequestVote(RequestVote { pre_vote: false, transfer: false, .. })
                if self.non_member_lease(message.from) =>
            {
                HigherTerm::Drop
            }
            _ => HigherTerm::Adopt,
        }
    }

    /// Whether a vote request from `candidate` is refused because it is not in
    /// our configuration and a leader is alive (thesis §4.2.3: "if a server
    /// receives a RequestVote request within the minimum election timeout of
    /// hearing from a current leader, it does not update its term or grant its
    /// vote"), whatever `check_quorum` says. Without it a removed node that
    /// never learned its removal (nobody replicates to a non-member) campaigns
    /// forever with PreVote and CheckQuorum off, and each higher term deposes
    /// the leader: the churn swarm's 7-node liveness failures (seeds 0x198,
    /// 0x45e, 0x58b, 0x12bf). Members keep today's rule (the lease only with
    /// CheckQuorum), and a lagging voter still hears a non-member once no
    /// leader is heard (thesis §4.1: the candidate's newer configuration may
    /// need its vote). A leader counts as hearing a leader while a quorum of
    /// its configuration answered within the minimum election timeout (with
    /// CheckQuorum off nothing else tells a stale leader it is one).
    pub(crate) fn non_member_lease(&self, candidate: NodeId) -> bool {
        if self.membership().contains(candidate) {
            return false;
        }
        if self.role != Role::Leader {
            return self.in_leader_lease();
        }
        let since_ms = self.now_ms.saturating_sub(self.config.election_timeout_ms_min);
        let mut recent: BTreeMap<NodeId, bool> = self
            .progress
            .iter()
            .filter(|(_, progress)| progress.last_contact_ms.is_some_and(|at_ms| at_ms >= since_ms))
            .map(|(&id, _)| (id, true))
            .collect();
        recent.insert(self.config.id, true);
        self.quorum.vote_result(&recent) == VoteResult::Won
    }

    /// Whether [`crate::Config::vote_after_index`] still holds this node back
    /// from voting and campaigning (its log has not reached that index).
    pub(crate) fn vote_held(&self) -> bool {
        self.config.vote_after_index.is_some_and(|index| self.log.last_index() < index)
    }

    fn log_is_up_to_date(&self, last_log_index: LogIndex, last_log_term: Term) -> bool {
        (last_log_term, last_log_index) >= (self.log.last_term(), self.log.last_index())
    }

    pub(crate) fn become_pre_candidate(&mut self) {
        let Some(next) = self.term.next_term() else {
            return self.refuse_election();
        };
        self.role = Role::PreCandidate;
        self.leader = None;
        self.votes = VoteTracker::default();
        self.note(Note::PreVoteStarted { term: next });
        self.reset_election_deadline();
        self.request_votes(true, false);
    }

    pub(crate) fn become_candidate(&mut self, transfer: bool) {
        let Some(next) = self.term.next_term() else {
            return self.refuse_election();
        };
        self.term = next;
        self.voted_for = Some(self.config.id);
        self.role = Role::Candidate;
        self.leader = None;
        self.votes = VoteTracker::default();
        self.drop_forwarded_reads();
        self.note(Note::ElectionStarted { term: self.term });
        self.reset_election_deadline();
        self.request_votes(false, transfer);
    }

    /// At the last term there is no term to campaign in: stay put and say so.
    fn refuse_election(&mut self) {
        self.note(Note::TermLimit { from: None, term: self.term });
        self.reset_election_deadline();
    }

    fn request_votes(&mut self, pre_vote: bool, transfer: bool) {
        if pre_vote {
            // A PreVote changes no durable state: our own counts at once.
            self.votes.record(self.config.id, true);
        } else {
            // Our vote for ourselves counts only once it is durable; otherwise a
            // crash could let us lead the same term twice (§5.2, Figure 2).
            self.held_self_vote = Some(self.term);
        }
        let body = Body::RequestVote(RequestVote {
            pre_vote,
            transfer,
            last_log_index: self.log.last_index(),
            last_log_term: self.log.last_term(),
        });
        // A real vote request leaves only once our own vote is durable (§5.2):
        // the send chokepoint holds it.
        for peer in self.voter_peers() {
            self.send(peer, body.clone());
        }
        if pre_vote {
            self.tally_votes(true);
        }
    }

    /// The durable self-vote of the current election.
    pub(crate) fn count_self_vote(&mut self) {
        self.votes.record(self.config.id, true);
        self.tally_votes(false);
    }

    /// `term` is the message's: for a PreVote, the term the candidate would run in.
    pub(crate) fn on_request_vote(&mut self, candidate: NodeId, term: Term, request: RequestVote) {
        let RequestVote { pre_vote, transfer, last_log_index, last_log_term } = request;
        let up_to_date = self.log_is_up_to_date(last_log_index, last_log_term);
        let lease =
            !transfer && (self.config.check_quorum && self.in_leader_lease() || self.non_member_lease(candidate));
        if pre_vote {
            // A PreVote changes nothing here; grant only what a real vote would get.
            let held = self.vote_held();
            let grant = term > self.term && up_to_date && !lease && !held;
            if grant {
                let message = Message {
                    from: self.config.id,
                    to: candidate,
                    term,
                    body: RequestVoteResponse { pre_vote: true, granted: true }.into(),
                };
                self.send_message(message);
            } else {
                let reason = if held {
                    VoteRefusal::RepairedNotCaughtUp
                } else if lease {
                    VoteRefusal::StillHearsLeader
                } else if !up_to_date {
                    VoteRefusal::LogNotUpToDate
                } else {
                    VoteRefusal::StaleTerm
                };
                self.note(Note::VoteRejected { candidate, pre_vote: true, reason });
                self.send(candidate, RequestVoteResponse { pre_vote: true, granted: false }.into());
            }
            return;
        }
        assert_eq!(term, self.term, "the term was settled before dispatch");
        let can_vote = self.voted_for.is_none_or(|voted| voted == candidate) && !self.vote_held();
        if can_vote && up_to_date {
            self.voted_for = Some(candidate);
            self.reset_election_deadline();
            // Term and vote are durable before the grant leaves (§5.2, Figure 2).
            self.send(candidate, RequestVoteResponse { pre_vote: false, granted: true }.into());
        } else {
            let reason = if self.vote_held() {
                VoteRefusal::RepairedNotCaughtUp
            } else if !up_to_date {
                VoteRefusal::LogNotUpToDate
            } else {
                VoteRefusal::AlreadyVoted
            };
            self.note(Note::VoteRejected { candidate, pre_vote: false, reason });
            if self.mutant_is(Mutant::TimerResetOnRejectedVote) {
                self.reset_election_deadline();
            }
            self.send(candidate, RequestVoteResponse { pre_vote: false, granted: false }.into());
        }
    }

    pub(crate) fn on_vote_response(&mut self, voter: NodeId, term: Term, response: RequestVoteResponse) {
        let RequestVoteResponse { pre_vote, granted } = response;
        let expected = match (self.role, pre_vote) {
            (Role::PreCandidate, true) => Some(term) == self.term.next_term() || (!granted && term == self.term),
            (Role::Candidate, false) => term == self.term,
            _ => false,
        };
        if !expected {
            return; // A reply to an older round.
        }
        let voter = self.mutant_vote_key(voter);
        self.votes.record(voter, granted);
        self.note(Note::VoteReceived {
            from: voter,
            granted: self.votes.granted(),
            voters: self.membership().all_voters().len(),
            pre_vote,
        });
        self.tally_votes(pre_vote);
    }

    fn tally_votes(&mut self, pre_vote: bool) {
        match self.quorum.vote_result(self.votes.votes()) {
            VoteResult::Pending => {}
            VoteResult::Won if pre_vote => self.become_candidate(false),
            VoteResult::Won => self.become_leader(),
            VoteResult::Lost => {
                let term = self.term;
                self.become_follower(term, None, StepDownReason::LostElection);
            }
        }
    }

    pub(crate) fn become_leader(&mut self) {
        assert_eq!(self.role, Role::Candidate, "only a candidate becomes leader");
        self.role = Role::Leader;
        self.leader = Some(self.config.id);
        self.leader_contact_ms = Some(self.now_ms);
        self.note(Note::BecameLeader { term: self.term });
        let last_index = self.log.last_index();
        for peer in self.peers() {
            self.progress.insert(peer, Progress::new(last_index));
        }
        self.set_timer(TimerKind::Election, None);
        self.set_timer(TimerKind::QuorumCheck, Some(self.now_ms + self.config.election_timeout_ms_max));
        // A no-op of our term lets us commit everything before it (§5.4.2, §8).
        self.append_as_leader(Payload::Noop);
        self.on_heartbeat_timeout();
    }

    /// CheckQuorum: a leader that has not heard from a majority within an
    /// election timeout steps down, so clients stop waiting on it.
    pub(crate) fn on_quorum_check(&mut self) {
        if self.role != Role::Leader {
            return;
        }
        // Every follower heard from since the last check answers yes; we count ourselves.
        let mut active: BTreeMap<NodeId, bool> =
            self.progress.iter().filter(|(_, progress)| progress.recent_active).map(|(&id, _)| (id, true)).collect();
        active.insert(self.config.id, true);
        for progress in self.progress.values_mut() {
            progress.recent_active = false;
        }
        if self.config.check_quorum && self.quorum.vote_result(&active) != VoteResult::Won {
            let term = self.term;
            self.become_follower(term, None, StepDownReason::QuorumInactive);
            return;
        }
        self.set_timer(TimerKind::QuorumCheck, Some(self.now_ms + self.config.election_timeout_ms_max));
    }
}
