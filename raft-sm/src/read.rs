//! Linearizable reads by ReadIndex (Raft thesis §6.4): the leader records its
//! commit index, confirms it still leads with a heartbeat round, and the read is
//! served once the state machine has applied that index. Followers forward the
//! request to the leader and wait for their own apply.

use crate::event::{Action, Note, ReadOutcome, Rejection};
use crate::message::{ReadIndexRequest, ReadIndexResponse};
use crate::mutants::Mutant;
use crate::node::{read_ready, Node};
use crate::types::{LogIndex, NodeId, Role};
use std::collections::{BTreeSet, VecDeque};

/// Who asked for a read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ReadOrigin {
    /// A client of this node, by the driver's id.
    Local(u64),
    /// A follower, by its own id of the read.
    Remote { from: NodeId, read_id: u64 },
}

#[derive(Clone, Copy, Debug)]
pub(crate) struct PendingRead {
    origin: ReadOrigin,
    read_index: LogIndex,
    /// The heartbeat round that must be acknowledged by a majority.
    round: u64,
}

/// Every read waiting on this node, by what it waits for.
#[derive(Clone, Debug, Default)]
pub(crate) struct Reads {
    /// The leader's current heartbeat round, carried in every append.
    pub(crate) round: u64,
    /// A new round must be broadcast when the step ends.
    round_requested: bool,
    /// A new leader's reads wait until an entry of its term commits.
    awaiting_term_commit: VecDeque<ReadOrigin>,
    /// Reads whose round is not yet acknowledged by a majority, oldest first.
    awaiting_quorum: VecDeque<PendingRead>,
    /// Follower: reads sent to the leader, by id.
    forwarded: BTreeSet<u64>,
    /// Follower: (sent at ms, id) of forwarded reads, oldest first, to give up on
    /// those whose request or answer was lost.
    forwarded_at_ms: VecDeque<(u64, u64)>,
    /// Confirmed local reads waiting for apply: (read index, id).
    awaiting_apply: BTreeSet<(LogIndex, u64)>,
}

impl Reads {
    fn len(&self) -> usize {
        self.awaiting_term_commit.len() + self.awaiting_quorum.len() + self.forwarded.len() + self.awaiting_apply.len()
    }

    pub(crate) fn take_round_request(&mut self) -> bool {
        std::mem::take(&mut self.round_requested)
    }
}

impl Node {
    pub(crate) fn on_read(&mut self, id: u64) {
        if self.reads.len() >= self.config.pending_reads_max {
            return self.answer_read(id, ReadOutcome::Rejected(Rejection::Busy));
        }
        match (self.role, self.leader) {
            (Role::Leader, _) => self.accept_read(ReadOrigin::Local(id)),
            (Role::Follower, Some(leader)) => {
                self.reads.forwarded.insert(id);
                self.reads.forwarded_at_ms.push_back((self.now_ms, id));
                self.send(leader, ReadIndexRequest { read_id: id }.into());
            }
            _ => self.answer_read(id, ReadOutcome::Rejected(Rejection::NotLeader { leader: self.leader })),
        }
    }

    pub(crate) fn on_read_index_request(&mut self, from: NodeId, request: ReadIndexRequest) {
        let ReadIndexRequest { read_id } = request;
        if self.role != Role::Leader || self.reads.len() >= self.config.pending_reads_max {
            self.send(from, ReadIndexResponse { read_id, read_index: None }.into());
            return;
        }
        self.accept_read(ReadOrigin::Remote { from, read_id });
    }

    pub(crate) fn on_read_index_response(&mut self, response: ReadIndexResponse) {
        let ReadIndexResponse { read_id, read_index } = response;
        if !self.reads.forwarded.remove(&read_id) {
            return; // Already answered (dropped on a leader change).
        }
        match read_index {
            Some(read_index) => {
                self.reads.awaiting_apply.insert((read_index, read_id));
                self.serve_reads_up_to_applied();
            }
            None => self.answer_read(read_id, ReadOutcome::Dropped),
        }
    }

    fn accept_read(&mut self, origin: ReadOrigin) {
        if self.transfer.is_some() {
            return self.refuse_read(origin, ReadOutcome::Rejected(Rejection::TransferInProgress));
        }
        if self.log.term_at(self.commit_index) != Some(self.term) && !self.mutant_is(Mutant::ReadsBeforeTermCommit) {
            // Our commit index may lag the true one until our no-op commits (thesis §6.4 step 1).
            self.reads.awaiting_term_commit.push_back(origin);
            return;
        }
        self.start_read_round(origin);
    }

    fn start_read_round(&mut self, origin: ReadOrigin) {
        let read = PendingRead { origin, read_index: self.commit_index, round: self.reads.round + 1 };
        self.reads.awaiting_quorum.push_back(read);
        self.reads.round_requested = true;
        if self.quorum.is_quorum_alone(self.config.id) || self.mutant_is(Mutant::ReadsWithoutQuorum) {
            self.reads.round += 1;
            self.reads.round_requested = false;
            self.confirm_reads();
        }
    }

    /// Called when the leader's commit index moves: reads that waited for the
    /// first commit of the term can start their round.
    pub(crate) fn on_commit_advanced(&mut self) {
        if self.log.term_at(self.commit_index) != Some(self.term) {
            return;
        }
        while let Some(origin) = self.reads.awaiting_term_commit.pop_front() {
            self.start_read_round(origin);
        }
    }

    /// Reads whose round a majority acknowledged are confirmed: the leader was
    /// still the leader after they arrived.
    pub(crate) fn confirm_reads(&mut self) {
        if self.role != Role::Leader {
            return;
        }
        // The highest round a majority echoed; we are always at the current one.
        let acked = |id: NodeId| match self.progress.get(&id) {
            Some(progress) => Some(progress.read_round_acked),
            None => (id == self.config.id).then_some(self.reads.round),
        };
        let confirmed_round = self.quorum.committed_index(acked).unwrap_or(0);
        let confirmed_round = if self.mutant_is(Mutant::ReadsWithoutQuorum) { u64::MAX } else { confirmed_round };
        while self.reads.awaiting_quorum.front().is_some_and(|read| read.round <= confirmed_round) {
            let read = self.reads.awaiting_quorum.pop_front().expect("front exists");
            match read.origin {
                ReadOrigin::Local(id) => {
                    self.reads.awaiting_apply.insert((read.read_index, id));
                }
                ReadOrigin::Remote { from, read_id } => {
                    self.send(from, ReadIndexResponse { read_id, read_index: Some(read.read_index) }.into());
                }
            }
        }
        self.serve_reads_up_to_applied();
    }

    pub(crate) fn serve_reads_up_to_applied(&mut self) {
        while let Some(&(read_index, id)) = self.reads.awaiting_apply.first() {
            if read_index > self.applied_index {
                break;
            }
            self.reads.awaiting_apply.pop_first();
            self.note(Note::ReadServed { read_index });
            self.answer_read(id, read_ready(read_index));
        }
    }

    /// A leader stepping down answers every read that still needed its leadership.
    /// Reads already confirmed stay: their index is valid whoever leads now.
    pub(crate) fn drop_leader_reads(&mut self) {
        let unconfirmed: Vec<ReadOrigin> = self
            .reads
            .awaiting_term_commit
            .drain(..)
            .chain(self.reads.awaiting_quorum.drain(..).map(|read| read.origin))
            .collect();
        self.reads.round_requested = false;
        for origin in unconfirmed {
            self.refuse_read(origin, ReadOutcome::Dropped);
        }
    }

    /// A forwarded read unanswered for an election timeout is answered dropped:
    /// its request or answer was lost, and it must not hold a slot forever.
    pub(crate) fn expire_forwarded_reads(&mut self) {
        let timeout_ms = self.config.election_timeout_ms_max;
        while let Some(&(sent_ms, id)) = self.reads.forwarded_at_ms.front() {
            if sent_ms + timeout_ms > self.now_ms {
                break;
            }
            self.reads.forwarded_at_ms.pop_front();
            if self.reads.forwarded.remove(&id) {
                self.answer_read(id, ReadOutcome::Dropped);
            }
        }
    }

    /// A follower whose leader changed answers its forwarded reads as dropped.
    pub(crate) fn drop_forwarded_reads(&mut self) {
        self.reads.forwarded_at_ms.clear();
        let forwarded = std::mem::take(&mut self.reads.forwarded);
        for id in forwarded {
            self.answer_read(id, ReadOutcome::Dropped);
        }
    }

    fn refuse_read(&mut self, origin: ReadOrigin, outcome: ReadOutcome) {
        match origin {
            ReadOrigin::Local(id) => self.answer_read(id, outcome),
            ReadOrigin::Remote { from, read_id } => {
                self.send(from, ReadIndexResponse { read_id, read_index: None }.into());
            }
        }
    }

    fn answer_read(&mut self, id: u64, outcome: ReadOutcome) {
        self.actions.push(Action::ReadResult { id, outcome });
    }
}
