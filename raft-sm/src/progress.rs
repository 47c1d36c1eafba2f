//! What a leader knows about each follower's log (Raft §5.3 nextIndex/matchIndex),
//! plus the bounded window of in-flight appends used for pipelining.

use crate::types::LogIndex;
use std::collections::VecDeque;

/// How the leader currently replicates to one follower.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum ReplicationMode {
    /// Unsure where the follower's log matches: one append at a time.
    Probe {
        /// An append is outstanding; wait for its answer or the next heartbeat.
        paused: bool,
    },
    /// The follower's log matches up to `match_index`: stream appends, up to the window.
    Replicate,
    /// The follower is behind the log base: stream the snapshot, one chunk at a time.
    Snapshot {
        /// The snapshot being sent.
        last_index: LogIndex,
        /// Bytes the follower acknowledged.
        offset: u64,
    },
}

#[derive(Clone, Debug)]
pub(crate) struct Progress {
    /// Highest index known to match the leader's log. Never decreases.
    pub(crate) match_index: LogIndex,
    /// Next index to send. Always > `match_index`.
    pub(crate) next_index: LogIndex,
    pub(crate) mode: ReplicationMode,
    /// Last index of each append in flight (Replicate mode), oldest first; bounded.
    pub(crate) inflight: VecDeque<LogIndex>,
    /// Heard from since the last quorum check (CheckQuorum).
    pub(crate) recent_active: bool,
    /// When the follower last answered, on the leader's clock (a learner is
    /// promoted only if it answered within an election timeout).
    pub(crate) last_contact_ms: Option<u64>,
    /// Highest read round the follower echoed in this term.
    pub(crate) read_round_acked: u64,
    /// `match_index` at the previous heartbeat: a full window that made no progress
    /// over a whole heartbeat interval has lost messages.
    pub(crate) match_at_heartbeat: LogIndex,
    /// The highest commit index sent to the follower, so a commit advance is
    /// announced promptly even when there is nothing new to append.
    pub(crate) commit_sent: LogIndex,
}

impl Progress {
    pub(crate) fn new(last_index: LogIndex) -> Progress {
        Progress {
            match_index: LogIndex(0),
            next_index: last_index.next(),
            mode: ReplicationMode::Probe { paused: false },
            inflight: VecDeque::new(),
            recent_active: false,
            last_contact_ms: None,
            read_round_acked: 0,
            match_at_heartbeat: LogIndex(0),
            commit_sent: LogIndex(0),
        }
    }

    /// Records an acknowledged match; returns whether it moved forward.
    pub(crate) fn maybe_update(&mut self, match_index: LogIndex) -> bool {
        let updated = match_index > self.match_index;
        if updated {
            self.match_index = match_index;
        }
        if self.next_index <= match_index {
            self.next_index = match_index.next();
        }
        while self.inflight.front().is_some_and(|&last| last <= match_index) {
            self.inflight.pop_front();
        }
        updated
    }

    pub(crate) fn become_probe(&mut self, next_index: LogIndex) {
        self.next_index = next_index.max(self.match_index.next());
        self.mode = ReplicationMode::Probe { paused: false };
        self.inflight.clear();
    }

    pub(crate) fn become_replicate(&mut self) {
        self.next_index = self.match_index.next();
        self.mode = ReplicationMode::Replicate;
        self.inflight.clear();
    }

    /// Called once per heartbeat: a full window with no acknowledged progress since
    /// the last heartbeat is presumed lost, and replication falls back to probing.
    pub(crate) fn maybe_unstick(&mut self, inflight_max: usize) -> bool {
        let stuck = self.mode == ReplicationMode::Replicate
            && self.inflight.len() >= inflight_max
            && self.match_index == self.match_at_heartbeat;
        self.match_at_heartbeat = self.match_index;
        if stuck {
            let next = self.match_index.next();
            self.become_probe(next);
        }
        stuck
    }

    pub(crate) fn is_paused(&self, inflight_max: usize) -> bool {
        match self.mode {
            ReplicationMode::Probe { paused } => paused,
            ReplicationMode::Replicate => self.inflight.len() >= inflight_max,
            ReplicationMode::Snapshot { .. } => true,
        }
    }
}
