//! The one durable-write type. The core emits writes in [`crate::Action::Write`];
//! the host passes them on unchanged; every driver's storage (the node's
//! write-ahead log, the simulator's disk, the test pump's disk) executes this
//! type and no copy of it.
//!
//! # What a driver must do with them
//! - Execute writes **in the order given**. A write is durable once the fsync
//!   that follows it completes; the core learns that from `Event::Persisted`
//!   with the id of the [`crate::Action::Sync`] after it.
//! - Snapshot bytes never pass through the core. A snapshot the node takes
//!   itself is staged in the driver's store first (the host writes the image
//!   into the driver's sink, [`crate::Host::take_snapshot`]); a snapshot from
//!   the leader arrives as [`Write::SnapshotChunk`]s, appended in order to an
//!   incoming image (a crash discards an incomplete one: on restart the driver
//!   deletes it and the core starts the transfer over).
//! - A [`Write::SaveSnapshot`] makes the staged (taken) or incoming (installed)
//!   image the store's snapshot, atomically. One the node took itself
//!   ([`SnapshotOrigin::Taken`]) may be written later, off the write path (the
//!   log still holds every entry it covers). When it is durable the driver
//!   steps `Event::SnapshotPersisted { index }`; only then does the core emit
//!   the [`Write::Compact`] that drops the entries it covers. It must be
//!   written before any later `SaveSnapshot` lands, so that an older snapshot
//!   never replaces a newer one; a crash may lose it (the node restarts from
//!   the older snapshot and the longer log).
//! - A snapshot installed from the leader ([`SnapshotOrigin::Installed`]) is
//!   written in order, like every other write: the `Compact` or `Reset` after
//!   it relies on it being durable first.
//! - On restart, hand the core exactly what is on disk (the snapshot, the hard
//!   state and the log records as written); the core reconciles them
//!   (`recovery.rs`) and its first writes repair the disk.

use crate::types::{Entry, HardState, LogIndex, SnapshotMeta, Term};

/// Who produced a snapshot, which decides how it may be written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SnapshotOrigin {
    /// This node's state machine produced it (`Action::TakeSnapshot`): it may be
    /// written in the background; report it with `Event::SnapshotPersisted`.
    Taken,
    /// The leader sent it (InstallSnapshot): write it in order, durable at the next sync.
    Installed,
}

/// A durable write the core asks for. See the module documentation for the rules.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Write {
    /// Replace the hard state.
    HardState(HardState),
    /// Remove every log entry with index ≥ `from`.
    Truncate {
        /// First index removed.
        from: LogIndex,
    },
    /// Append entries; they follow the log's last entry directly.
    Append {
        /// The entries, contiguous.
        entries: Vec<Entry>,
    },
    /// Append a chunk of a snapshot the leader is sending to the incoming
    /// image; `offset` 0 starts a new one (discarding any other incoming image).
    SnapshotChunk {
        /// The incoming snapshot's last index.
        last_index: LogIndex,
        /// Its term at `last_index`.
        last_term: Term,
        /// Where the chunk goes: the incoming image's length so far.
        offset: u64,
        /// The bytes.
        data: Vec<u8>,
    },
    /// Make the image for `meta` (staged if taken, incoming if installed) the
    /// snapshot, atomically replacing any older one.
    SaveSnapshot {
        /// The snapshot's metadata (its bytes are in the driver's store).
        meta: SnapshotMeta,
        /// Who produced it.
        origin: SnapshotOrigin,
    },
    /// Drop log entries with index ≤ `up_to` (a durable snapshot covers them).
    Compact {
        /// Last index dropped.
        up_to: LogIndex,
    },
    /// Discard the whole log; the next entry appended follows `base_index` (a
    /// snapshot that conflicts with the log replaces it, Raft Figure 13 rule 7).
    Reset {
        /// The snapshot's last index.
        base_index: LogIndex,
    },
}

impl Write {
    /// A short description for traces, e.g. `append(4..6)`.
    pub fn describe(&self) -> String {
        match self {
            Write::HardState(hs) => {
                let vote = hs.voted_for.map_or("-".to_string(), |v| v.to_string());
                format!("hs({},{vote},{})", hs.term, hs.commit)
            }
            Write::Truncate { from } => format!("truncate({from})"),
            Write::Append { entries } => format!(
                "append({}..{})",
                entries.first().map_or(0, |e| e.index.0),
                entries.last().map_or(0, |e| e.index.0)
            ),
            Write::SnapshotChunk { last_index, offset, data, .. } => {
                format!("snap-chunk({last_index}, {offset}+{})", data.len())
            }
            Write::SaveSnapshot { meta, origin: SnapshotOrigin::Taken } => {
                format!("save-snap({}, taken)", meta.last_index)
            }
            Write::SaveSnapshot { meta, origin: SnapshotOrigin::Installed } => {
                format!("save-snap({})", meta.last_index)
            }
            Write::Compact { up_to } => format!("compact({up_to})"),
            Write::Reset { base_index } => format!("reset-log({base_index})"),
        }
    }
}
