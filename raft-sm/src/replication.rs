//! Log replication: the leader's appends (batched, pipelined, with fast
//! backtracking), the follower's consistency check and conflict handling, and
//! the commit rule (Raft §5.3, §5.4.2).

use crate::event::{StepDownReason, TimerKind};
use crate::message::{AppendEntries, AppendEntriesResponse, RejectHint};
use crate::mutants::Mutant;
use crate::node::Node;
use crate::progress::ReplicationMode;
use crate::types::{Entry, LogIndex, NodeId, Payload, Role};

impl Node {
    /// Appends a new entry of the current term on the leader; returns its index.
    pub(crate) fn append_as_leader(&mut self, payload: Payload) -> LogIndex {
        assert_eq!(self.role, Role::Leader);
        let index = self.log.last_index().next();
        self.append_entries_locally(vec![Entry { term: self.term, index, payload }]);
        for peer in self.peers() {
            self.mark_needs_append(peer);
        }
        index
    }

    pub(crate) fn mark_needs_append(&mut self, peer: NodeId) {
        if !self.needs_append.contains(&peer) {
            self.needs_append.push(peer);
        }
    }

    /// Sends what each marked follower can take now (one batch per step per follower
    /// at least, more while the in-flight window allows).
    pub(crate) fn flush_appends(&mut self) {
        if self.role != Role::Leader {
            self.needs_append.clear();
            return;
        }
        if self.reads.take_round_request() {
            // A new read round: every follower must echo it, so everyone gets a message.
            self.reads.round += 1;
            self.needs_append.clear();
            for peer in self.peers() {
                self.maybe_send_append(peer, true);
            }
        }
        let peers = std::mem::take(&mut self.needs_append);
        for peer in peers {
            self.maybe_send_append(peer, false);
        }
        if self.quorum.is_quorum_alone(self.config.id) {
            self.maybe_commit();
        }
    }

    /// Heartbeat: every follower hears from us, probes and snapshots are retried,
    /// and the current read round is carried along.
    pub(crate) fn on_heartbeat_timeout(&mut self) {
        if self.role != Role::Leader {
            return;
        }
        for peer in self.peers() {
            let progress = self.progress.get_mut(&peer).expect("leader tracks every peer");
            progress.maybe_unstick(self.config.inflight_appends_max);
            match &mut progress.mode {
                ReplicationMode::Probe { paused } => *paused = false,
                ReplicationMode::Snapshot { .. } => {
                    self.send_snapshot_chunk(peer);
                    continue;
                }
                ReplicationMode::Replicate => {}
            }
            self.maybe_send_append(peer, true);
        }
        self.set_timer(TimerKind::Heartbeat, Some(self.now_ms + self.config.heartbeat_interval_ms));
    }

    /// Sends appends to `peer` while its window allows; with `heartbeat` sends an
    /// empty one if nothing else went out. Returns whether anything was sent.
    pub(crate) fn maybe_send_append(&mut self, peer: NodeId, heartbeat: bool) -> bool {
        let mut sent = false;
        loop {
            let progress = &self.progress[&peer];
            if matches!(progress.mode, ReplicationMode::Snapshot { .. }) {
                return sent;
            }
            let paused = progress.is_paused(self.config.inflight_appends_max);
            let has_entries = progress.next_index <= self.log.last_index();
            let announce_commit = progress.commit_sent < self.commit_index;
            if paused || (!has_entries && (sent || !(heartbeat || announce_commit))) {
                break;
            }
            if !self.send_append(peer) {
                return true; // Switched to sending a snapshot.
            }
            sent = true;
            if !has_entries {
                break;
            }
        }
        if heartbeat && !sent {
            // The window is full: still tell the follower we lead and carry the read round.
            let progress = &self.progress[&peer];
            let prev_log_index = progress.match_index;
            if let Some(prev_log_term) = self.log.term_at(prev_log_index) {
                let heartbeat = AppendEntries {
                    prev_log_index,
                    prev_log_term,
                    entries: Vec::new(),
                    leader_commit: self.commit_index.min(prev_log_index),
                    read_round: self.reads.round,
                };
                self.send(peer, heartbeat.into());
                sent = true;
            }
        }
        sent
    }

    /// Sends one append from `next_index`; returns false if the follower needs a
    /// snapshot instead (its next entry was compacted away).
    fn send_append(&mut self, peer: NodeId) -> bool {
        let progress = &self.progress[&peer];
        let next_index = progress.next_index;
        let prev_log_index = next_index.prev();
        let Some(prev_log_term) = self.log.term_at(prev_log_index) else {
            self.start_snapshot_transfer(peer);
            return false;
        };
        let entries = self.log.slice(
            next_index,
            self.log.last_index(),
            self.config.append_entries_max,
            self.config.append_bytes_max,
        );
        let last_sent = entries.last().map_or(prev_log_index, |entry| entry.index);
        let progress = self.progress.get_mut(&peer).expect("leader tracks every peer");
        progress.commit_sent = progress.commit_sent.max(self.commit_index);
        match &mut progress.mode {
            ReplicationMode::Probe { paused } => *paused = true,
            ReplicationMode::Replicate => {
                if !entries.is_empty() {
                    progress.next_index = last_sent.next();
                    progress.inflight.push_back(last_sent);
                }
            }
            ReplicationMode::Snapshot { .. } => unreachable!("snapshots are sent elsewhere"),
        }
        let append = AppendEntries {
            prev_log_index,
            prev_log_term,
            entries,
            leader_commit: self.commit_index,
            read_round: self.reads.round,
        };
        self.send(peer, append.into());
        true
    }

    /// Follower side of AppendEntries (Raft Figure 2, receiver rules 1–5).
    pub(crate) fn on_append_entries(&mut self, leader: NodeId, append: AppendEntries) {
        let AppendEntries { mut prev_log_index, mut prev_log_term, mut entries, leader_commit, read_round } = append;
        if self.role != Role::Follower || self.leader != Some(leader) {
            let term = self.term;
            self.become_follower(term, Some(leader), StepDownReason::HeardLeader);
        }
        self.leader_contact_ms = Some(self.now_ms);
        self.reset_election_deadline();

        // Entries at or below our snapshot base are committed, hence identical: skip them.
        let base_index = self.log.base_index();
        if prev_log_index < base_index {
            let skip = entries.iter().take_while(|entry| entry.index <= base_index).count();
            entries.drain(..skip);
            prev_log_index = base_index;
            prev_log_term = self.log.base_term();
        }
        if prev_log_index > self.log.last_index() {
            let hint = RejectHint { conflict_term: None, first_index: self.log.last_index().next() };
            self.reject_append(leader, prev_log_index, hint, read_round);
            return;
        }
        let local_term = self.log.term_at(prev_log_index).expect("prev is within the log");
        if local_term != prev_log_term && !self.mutant_is(Mutant::NoPrevTermCheck) {
            let first_index = self.log.first_index_of_term(local_term, prev_log_index);
            let hint = RejectHint { conflict_term: Some(local_term), first_index };
            self.reject_append(leader, prev_log_index, hint, read_round);
            return;
        }
        let last_new_index = LogIndex(prev_log_index.0 + entries.len() as u64);
        // Truncate only at the first real conflict: a stale or duplicated append
        // whose entries all match never removes anything (Figure 2, rule 3).
        let first_new = entries.iter().position(|entry| self.log.term_at(entry.index) != Some(entry.term));
        let first_new =
            if self.mutant_is(Mutant::TruncateEveryAppend) && !entries.is_empty() { Some(0) } else { first_new };
        if let Some(position) = first_new {
            let conflict_index = entries[position].index;
            if conflict_index <= self.log.last_index() {
                self.truncate_locally(conflict_index);
            }
            let new_entries = entries.split_off(position);
            self.append_entries_locally(new_entries);
        }
        let new_commit = leader_commit.min(last_new_index);
        if new_commit > self.commit_index {
            self.commit_index = new_commit;
        }
        let response =
            AppendEntriesResponse { success: true, match_index: last_new_index, reject_hint: None, read_round };
        // The acknowledgement claims entries up to `last_new_index`: it leaves only
        // once they are durable here.
        self.send(leader, response.into());
    }

    fn reject_append(&mut self, leader: NodeId, rejected_index: LogIndex, hint: RejectHint, read_round: u64) {
        let response =
            AppendEntriesResponse { success: false, match_index: rejected_index, reject_hint: Some(hint), read_round };
        self.send(leader, response.into());
    }

    /// Leader side: record matches, back up on rejection, commit, continue.
    pub(crate) fn on_append_response(&mut self, peer: NodeId, response: AppendEntriesResponse) {
        let AppendEntriesResponse { success, match_index, reject_hint, read_round } = response;
        if self.role != Role::Leader {
            return;
        }
        let last_index = self.log.last_index();
        let (backwards_mutant, stale_mutant) =
            (self.mutant_is(Mutant::MatchIndexBackwards), self.mutant_is(Mutant::StaleAppendRejections));
        let progress = self.progress.get_mut(&peer).expect("leader tracks every peer");
        progress.recent_active = true;
        progress.last_contact_ms = Some(self.now_ms);
        progress.read_round_acked = progress.read_round_acked.max(read_round);
        if success {
            if match_index > last_index {
                return; // Cannot be: a reply from before a restart of ours. Ignore it.
            }
            let probed_at = progress.next_index.prev();
            if backwards_mutant {
                progress.match_index = match_index;
            }
            let advanced = progress.maybe_update(match_index);
            // Only an answer at (or past) the probe position proves where the logs
            // match; a heartbeat's success at an older `match_index` must not send
            // replication back to it.
            if matches!(progress.mode, ReplicationMode::Probe { .. }) && match_index >= probed_at {
                progress.become_replicate();
            }
            if advanced {
                self.maybe_commit();
                self.maybe_send_timeout_now(peer);
            }
            self.mark_needs_append(peer);
        } else if let Some(hint) = reject_hint {
            // Ignore rejections of appends we already know matched, or of old probes.
            let stale = match progress.mode {
                ReplicationMode::Replicate => match_index <= progress.match_index,
                ReplicationMode::Probe { .. } => match_index != progress.next_index.prev(),
                ReplicationMode::Snapshot { .. } => true,
            };
            if stale && !stale_mutant {
                self.confirm_reads();
                return;
            }
            let next_index = self.backtrack_next_index(match_index, hint);
            let progress = self.progress.get_mut(&peer).expect("leader tracks every peer");
            progress.become_probe(next_index);
            if stale_mutant {
                progress.next_index = next_index;
            }
            self.mark_needs_append(peer);
        }
        self.confirm_reads();
    }

    /// Where to probe next after a rejection at `rejected_index`: skip the
    /// follower's whole conflicting term in one round trip.
    fn backtrack_next_index(&self, rejected_index: LogIndex, hint: RejectHint) -> LogIndex {
        let next = match hint.conflict_term {
            Some(term) => match self.log.last_index_of_term(term, rejected_index) {
                Some(last_of_term) => last_of_term.next(),
                None => hint.first_index,
            },
            None => hint.first_index,
        };
        next.min(rejected_index).max(LogIndex(1))
    }

    /// The leader commits the highest index a majority holds, but only if it is of
    /// its own term: counting replicas of older-term entries is unsafe (§5.4.2, Figure 8).
    pub(crate) fn maybe_commit(&mut self) -> bool {
        if self.role != Role::Leader {
            return false;
        }
        // Our own log counts as far as it is durable (§5.3: "stored on a majority").
        let acked = |id: NodeId| match self.progress.get(&id) {
            Some(progress) => Some(progress.match_index),
            None => (id == self.config.id).then_some(self.durable_index),
        };
        let Some(majority_index) = self.quorum.committed_index(acked) else {
            return false;
        };
        let own_term = self.log.term_at(majority_index) == Some(self.term) || self.mutant_is(Mutant::Figure8);
        if majority_index <= self.commit_index || !own_term {
            return false;
        }
        self.commit_index = majority_index;
        for peer in self.peers() {
            self.mark_needs_append(peer);
        }
        self.on_commit_advanced();
        true
    }
}
