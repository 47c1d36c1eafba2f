//! Plain data shared by the core, its drivers and the wire: ids, terms, indexes,
//! log entries, hard state and snapshots.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Identifies one member of the cluster. Drivers map their own names (for
/// example `node-8080`) onto these numbers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct NodeId(pub u64);

/// A Raft term. Terms only grow on a node (Raft §5.1).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Term(pub u64);

/// A position in the replicated log. Index 0 is the empty prefix; the first
/// entry has index 1. An index is a position, never a count.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct LogIndex(pub u64);

impl LogIndex {
    /// The index after this one.
    pub fn next(self) -> LogIndex {
        LogIndex(self.0 + 1)
    }
    /// The index before this one, saturating at 0.
    pub fn prev(self) -> LogIndex {
        LogIndex(self.0.saturating_sub(1))
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "n{}", self.0)
    }
}
impl fmt::Display for Term {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "t{}", self.0)
    }
}
impl fmt::Display for LogIndex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "i{}", self.0)
    }
}

/// What a log entry carries.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Payload {
    /// Appended by a new leader so that it can commit entries of its term (Raft §8).
    Noop,
    /// An opaque command for the state machine (for raftkv: an encoded `kv::Command`).
    Command(Vec<u8>),
    /// A new cluster configuration. It takes effect when appended, not when
    /// committed (see [`crate::Membership`]); the state machine skips it.
    /// Boxed: it is rare and four times the size of the other variants, and
    /// entries are moved and cloned on every hot path.
    Membership(Box<crate::membership::Membership>),
}

/// One entry of the replicated log.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Entry {
    /// The term of the leader that created the entry.
    pub term: Term,
    /// The entry's position in the log.
    pub index: LogIndex,
    /// What the entry carries.
    pub payload: Payload,
}

impl Entry {
    /// Approximate wire size in bytes, used for batching limits.
    pub fn size_bytes(&self) -> usize {
        let payload_bytes = match &self.payload {
            Payload::Noop => 0,
            Payload::Command(bytes) => bytes.len(),
            Payload::Membership(membership) => {
                let contexts: usize = membership.contexts.values().map(|context| 16 + context.len()).sum();
                8 * membership.members().len() + 24 + contexts
            }
        };
        24 + payload_bytes
    }
}

/// The state a node must persist before it answers a vote or acknowledges entries.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HardState {
    /// The latest term this node has seen.
    pub term: Term,
    /// The candidate this node voted for in `term`, if any.
    pub voted_for: Option<NodeId>,
    /// The highest index known committed. Persisting it is an optimisation (a
    /// restarted node can re-apply at once); losing an update of it is safe.
    pub commit: LogIndex,
}

/// What the core keeps of a snapshot: where it ends, who voted, how big it is.
/// Its bytes never enter the core: they live in the driver's snapshot store
/// (the node's `snapshot.bin`, the simulator's disk image), written and read as
/// a stream of chunks (see [`crate::Write::SnapshotChunk`],
/// [`crate::Output::SendSnapshotChunk`] and [`crate::Host::restore_snapshot`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotMeta {
    /// The last log index the snapshot covers.
    pub last_index: LogIndex,
    /// The term of the entry at `last_index`.
    pub last_term: Term,
    /// The configuration in effect at `last_index` (voters, learners, and the
    /// outgoing voters if it is joint).
    pub membership: crate::membership::Membership,
    /// The length of the state machine's image, in bytes.
    pub size_bytes: u64,
}

/// What a node rebuilds itself from after a restart: exactly what was durable.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RestoredState {
    /// The persisted hard state (all zero for a fresh node).
    pub hard_state: HardState,
    /// The latest durable snapshot's metadata, if any (its image is handed to
    /// [`crate::Host::new`] as a reader).
    pub snapshot: Option<SnapshotMeta>,
    /// The durable log entries after the snapshot, contiguous and in order.
    pub entries: Vec<Entry>,
}

/// A node's role in its current term.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Role {
    /// Follows a leader (or waits for one).
    Follower,
    /// Runs a PreVote round without raising its term (Raft thesis §9.6).
    PreCandidate,
    /// Runs an election in a raised term.
    Candidate,
    /// Leads the cluster in its term.
    Leader,
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            Role::Follower => "follower",
            Role::PreCandidate => "pre-candidate",
            Role::Candidate => "candidate",
            Role::Leader => "leader",
        };
        f.write_str(name)
    }
}
