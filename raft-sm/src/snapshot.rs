//! Snapshots: asking the state machine for one past the threshold, compacting
//! the log, streaming it in bounded chunks to followers behind the log base, and
//! installing it on a follower (Raft §7, Figure 13).
//!
//! The core holds a snapshot's metadata only ([`SnapshotMeta`]); its bytes stay
//! in the driver's store. The leader names each chunk to send and the driver
//! reads it ([`Action::SendSnapshotChunk`]); a follower hands each accepted
//! chunk to the driver as a write ([`Write::SnapshotChunk`]) and keeps only the
//! count of bytes received.

use crate::event::{Action, Note, StepDownReason};
use crate::message::{Body, InstallSnapshot, InstallSnapshotResponse, SnapshotChunkToSend};
use crate::mutants::Mutant;
use crate::node::Node;
use crate::progress::ReplicationMode;
use crate::types::{LogIndex, NodeId, SnapshotMeta, Term};
use crate::write::{SnapshotOrigin, Write};

/// A snapshot being received, chunk by chunk (the bytes went to the driver).
#[derive(Clone, Debug)]
pub(crate) struct IncomingSnapshot {
    last_index: LogIndex,
    last_term: Term,
    received_bytes: u64,
}

impl Node {
    /// Past the threshold of applied entries in the log, ask for a snapshot.
    pub(crate) fn maybe_request_snapshot(&mut self) {
        let threshold = self.config.snapshot_threshold_entries;
        if threshold == 0 || self.snapshot_requested || self.taken_snapshot.is_some() {
            return;
        }
        if self.applied_index.0 - self.log.base_index().0 >= threshold {
            self.snapshot_requested = true;
            self.actions.push(Action::TakeSnapshot);
        }
    }

    /// An operator (or a test) asks for a snapshot now, whatever the threshold.
    /// Nothing happens if nothing was applied past the current snapshot, or if
    /// one is already being produced or written.
    pub(crate) fn on_snapshot_requested(&mut self) {
        if self.snapshot_requested || self.taken_snapshot.is_some() || self.applied_index <= self.log.base_index() {
            return;
        }
        self.snapshot_requested = true;
        self.actions.push(Action::TakeSnapshot);
    }

    /// The state machine produced a snapshot at `index`: save it. Both logs,
    /// durable and in memory, keep every entry it covers until the driver
    /// reports it durable ([`Node::on_snapshot_persisted`]): until then the
    /// driver's store cannot serve it, so a follower behind must still be
    /// served from the log (a leader that could do neither would leave it
    /// without heartbeats).
    pub(crate) fn on_snapshot_taken(&mut self, index: LogIndex, size_bytes: u64) {
        self.snapshot_requested = false;
        if index <= self.log.base_index() || self.taken_snapshot.is_some() {
            return; // Older than what we hold (a snapshot was installed meanwhile).
        }
        assert!(index <= self.applied_index.max(self.apply_sent_index), "snapshot beyond what was applied");
        let last_term = self.log.term_at(index).expect("snapshot index is in the log");
        let membership = self.configurations.at(index).clone();
        let meta = SnapshotMeta { last_index: index, last_term, membership, size_bytes };
        self.actions.push(Action::Write(Write::SaveSnapshot { meta: meta.clone(), origin: SnapshotOrigin::Taken }));
        self.wrote_this_step = true;
        self.taken_snapshot = Some(meta);
        self.note(Note::SnapshotTaken { index });
    }

    /// The host could not write the image it was asked for: ask again past
    /// the next threshold.
    pub(crate) fn snapshot_abandoned(&mut self) {
        self.snapshot_requested = false;
    }

    /// The snapshot at `index` that we took ourselves is durable: now, and only
    /// now, the durable log may drop the entries it covers (a crash before this
    /// restarts from the older snapshot and the longer log). A compaction below
    /// the log's base (a newer snapshot was installed meanwhile) changes nothing.
    pub(crate) fn on_snapshot_persisted(&mut self, index: LogIndex) {
        if index <= self.snapshot_compacted_index {
            return; // A duplicate, or older than a compaction already issued.
        }
        let taken = self.taken_snapshot.take();
        assert!(
            taken.as_ref().is_some_and(|snapshot| snapshot.last_index == index),
            "snapshot {index} reported durable but never taken (taken: {taken:?})"
        );
        // Now the store serves it: the in-memory log goes too.
        self.log.compact_to(index);
        self.configurations.compact_to(index);
        self.snapshot = taken;
        self.snapshot_compacted_index = index;
        self.actions.push(Action::Write(Write::Compact { up_to: index }));
        // Not needed for safety (a lost compaction is redone at restart), but a
        // sync makes it take effect now rather than at the next write.
        self.wrote_this_step = true;
    }

    pub(crate) fn start_snapshot_transfer(&mut self, peer: NodeId) {
        let Some(snapshot) = &self.snapshot else {
            panic!("follower {peer} is behind the log base but there is no snapshot");
        };
        let last_index = snapshot.last_index;
        let progress = self.progress.get_mut(&peer).expect("leader tracks every peer");
        progress.mode = ReplicationMode::Snapshot { last_index, offset: 0 };
        progress.inflight.clear();
        self.note(Note::SnapshotSent { to: peer, index: last_index });
        self.send_snapshot_chunk(peer);
    }

    /// Names the chunk at the acknowledged offset for the driver to read and
    /// send (also the retry on heartbeat).
    pub(crate) fn send_snapshot_chunk(&mut self, peer: NodeId) {
        let snapshot = self.snapshot.as_ref().expect("sending a snapshot we hold");
        let ReplicationMode::Snapshot { last_index, offset } = self.progress[&peer].mode else {
            return;
        };
        if last_index != snapshot.last_index {
            // A newer snapshot replaced the one being sent: start over with it.
            return self.start_snapshot_transfer(peer);
        }
        let start = offset.min(snapshot.size_bytes);
        let end = (start + self.config.snapshot_chunk_bytes_max as u64).min(snapshot.size_bytes);
        let chunk = InstallSnapshot {
            last_index,
            last_term: snapshot.last_term,
            membership: snapshot.membership.clone(),
            offset: start,
            data: Vec::new(),
            done: end == snapshot.size_bytes,
        };
        let message = self.message(peer, Body::InstallSnapshot(Box::new(chunk)));
        debug_assert!(!crate::node::reveals_durable_state(&message.body), "chunks are never held");
        self.actions.push(Action::SendSnapshotChunk(SnapshotChunkToSend::new(message, end - start)));
    }

    pub(crate) fn on_install_snapshot(&mut self, leader: NodeId, chunk: InstallSnapshot) {
        let InstallSnapshot { last_index, last_term, membership, offset, data, done } = chunk;
        if self.role != crate::types::Role::Follower || self.leader != Some(leader) {
            let term = self.term;
            self.become_follower(term, Some(leader), StepDownReason::HeardLeader);
        }
        self.leader_contact_ms = Some(self.now_ms);
        self.reset_election_deadline();
        if last_index <= self.commit_index {
            // We already hold everything it covers: an old or duplicated snapshot.
            let response = InstallSnapshotResponse { last_index, next_offset: offset, done: true };
            return self.send(leader, response.into());
        }
        if offset == 0 {
            self.incoming_snapshot = Some(IncomingSnapshot { last_index, last_term, received_bytes: 0 });
        }
        let expected = match &self.incoming_snapshot {
            Some(incoming) if incoming.last_index == last_index && incoming.last_term == last_term => {
                incoming.received_bytes
            }
            _ => 0,
        };
        if offset != expected {
            let response = InstallSnapshotResponse { last_index, next_offset: expected, done: false };
            return self.send(leader, response.into());
        }
        let incoming = self.incoming_snapshot.as_mut().expect("started at offset 0");
        incoming.received_bytes += data.len() as u64;
        let next_offset = incoming.received_bytes;
        // No sync of its own: only the whole image must be durable, and the
        // sync after the last chunk's `SaveSnapshot` covers every chunk.
        self.actions.push(Action::Write(Write::SnapshotChunk { last_index, last_term, offset, data }));
        if !done {
            return self.send(leader, InstallSnapshotResponse { last_index, next_offset, done: false }.into());
        }
        self.incoming_snapshot = None;
        let meta = SnapshotMeta { last_index, last_term, membership, size_bytes: next_offset };
        self.install_snapshot(meta);
        self.send(leader, InstallSnapshotResponse { last_index, next_offset, done: true }.into());
    }

    /// Replaces the state machine with the snapshot. If the log holds the
    /// snapshot's last entry, the entries after it stay; otherwise the log is
    /// discarded (Figure 13, rules 6 and 7).
    fn install_snapshot(&mut self, snapshot: SnapshotMeta) {
        let last_index = snapshot.last_index;
        assert!(last_index > self.commit_index, "only newer snapshots are installed");
        // Written in order: the compaction or reset after it relies on it being durable first.
        let origin = SnapshotOrigin::Installed;
        self.actions.push(Action::Write(Write::SaveSnapshot { meta: snapshot.clone(), origin }));
        let rule7_ignored = self.mutant_is(Mutant::SnapshotRule7Ignored) && self.log.term_at(last_index).is_some();
        if self.log.term_at(last_index) == Some(snapshot.last_term) || rule7_ignored {
            self.log.compact_to(last_index);
            self.configurations.compact_to(last_index);
            self.actions.push(Action::Write(Write::Compact { up_to: last_index }));
        } else {
            let removed = self.log.last_index().0.saturating_sub(self.log.base_index().0);
            if removed > 0 {
                self.note(Note::Truncated { from: self.log.base_index().next(), count: removed });
            }
            self.log.reset(last_index, snapshot.last_term);
            self.configurations.reset(last_index, snapshot.membership.clone());
            self.durable_index = self.durable_index.min(last_index);
            self.actions.push(Action::Write(Write::Reset { base_index: last_index }));
        }
        self.wrote_this_step = true;
        // A snapshot of our own still being written is older: it is obsolete.
        self.taken_snapshot = None;
        self.snapshot_compacted_index = self.snapshot_compacted_index.max(last_index);
        self.actions.push(Action::RestoreSnapshot(snapshot.clone()));
        self.commit_index = last_index;
        self.applied_index = last_index;
        self.apply_sent_index = last_index;
        self.snapshot = Some(snapshot);
        self.on_membership_changed();
        self.note(Note::SnapshotInstalled { index: last_index });
        self.serve_reads_up_to_applied();
    }

    pub(crate) fn on_install_snapshot_response(&mut self, peer: NodeId, response: InstallSnapshotResponse) {
        let InstallSnapshotResponse { last_index, next_offset, done } = response;
        if self.role != crate::types::Role::Leader {
            return;
        }
        let progress = self.progress.get_mut(&peer).expect("leader tracks every peer");
        progress.recent_active = true;
        progress.last_contact_ms = Some(self.now_ms);
        if done {
            if progress.maybe_update(last_index) {
                self.maybe_commit();
            }
            let progress = self.progress.get_mut(&peer).expect("leader tracks every peer");
            if matches!(progress.mode, ReplicationMode::Snapshot { .. }) {
                let next = progress.match_index.next();
                progress.become_probe(next);
            }
            self.mark_needs_append(peer);
            return;
        }
        match &mut progress.mode {
            ReplicationMode::Snapshot { last_index: sending, offset } if *sending == last_index => {
                if next_offset == *offset {
                    // A duplicate, or the answer to a stale chunk: the chunk at
                    // `offset` is already on its way (the heartbeat resends it if
                    // lost). Answering every such reply with a chunk would let
                    // duplicated messages multiply into a storm.
                    return;
                }
                *offset = next_offset;
            }
            _ => return, // A reply about a transfer we gave up.
        }
        self.send_snapshot_chunk(peer);
    }
}
