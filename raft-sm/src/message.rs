//! The messages nodes exchange. They are serde types; the node sends them as JSON
//! and the simulator round-trips them through serde_json in tests.

use crate::types::{Entry, LogIndex, NodeId, Term};
use serde::{Deserialize, Serialize};

/// One message between two nodes. `term` is the sender's current term, except
/// for PreVote requests and grants, which carry the term the sender would run in.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    /// The sender.
    pub from: NodeId,
    /// The receiver.
    pub to: NodeId,
    /// See the type documentation.
    pub term: Term,
    /// What the message says.
    pub body: Body,
}

/// The kinds of messages.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Body {
    /// Asks for a (pre-)vote (Raft §5.2, thesis §9.6).
    RequestVote {
        /// A PreVote round: the receiver changes no state.
        pre_vote: bool,
        /// The election was started by a leadership transfer (TimeoutNow), so the
        /// receiver must not ignore it because it still hears a leader.
        transfer: bool,
        /// Index of the candidate's last log entry.
        last_log_index: LogIndex,
        /// Term of the candidate's last log entry.
        last_log_term: Term,
    },
    /// Answers a RequestVote.
    RequestVoteResponse {
        /// Answers a PreVote request.
        pre_vote: bool,
        /// Whether the vote is granted.
        granted: bool,
    },
    /// Replicates entries, or carries none as a heartbeat (Raft §5.3).
    AppendEntries {
        /// Index of the entry before `entries`.
        prev_log_index: LogIndex,
        /// Term of the entry at `prev_log_index`.
        prev_log_term: Term,
        /// Entries to append, contiguous from `prev_log_index + 1`.
        entries: Vec<Entry>,
        /// The leader's commit index.
        leader_commit: LogIndex,
        /// The leader's read round at send time; echoed back to confirm
        /// leadership for ReadIndex reads (thesis §6.4).
        read_round: u64,
    },
    /// Answers an AppendEntries.
    AppendEntriesResponse {
        /// Whether the entries matched and were appended.
        success: bool,
        /// On success, the index of the last entry known to match the leader's log.
        match_index: LogIndex,
        /// On rejection, a hint to back up quickly: the follower's term at
        /// `prev_log_index` (if it has the entry) and the first index it holds in that
        /// term, or its last index + 1 and `None` when its log is too short.
        reject_hint: Option<RejectHint>,
        /// The `read_round` of the request, echoed.
        read_round: u64,
    },
    /// One chunk of a snapshot for a follower behind the leader's log base (Raft §7).
    InstallSnapshot {
        /// The last index the snapshot covers.
        last_index: LogIndex,
        /// The term at `last_index`.
        last_term: Term,
        /// The voters of the snapshot.
        voters: Vec<NodeId>,
        /// Byte offset of `data` within the snapshot.
        offset: u64,
        /// This chunk.
        data: Vec<u8>,
        /// Whether this is the last chunk.
        done: bool,
    },
    /// Answers an InstallSnapshot chunk.
    InstallSnapshotResponse {
        /// The snapshot the answer is about.
        last_index: LogIndex,
        /// The byte offset the follower expects next, or the full length when
        /// the snapshot is installed (or already covered).
        next_offset: u64,
        /// The follower holds the whole snapshot (installed, or covered by its commit index).
        done: bool,
    },
    /// Tells the transfer target to start an election at once (thesis §3.10).
    TimeoutNow,
    /// A follower asks the leader for a read index on behalf of one of its reads.
    ReadIndexRequest {
        /// The follower's id of the read.
        read_id: u64,
    },
    /// The leader's answer to a ReadIndexRequest.
    ReadIndexResponse {
        /// The follower's id of the read.
        read_id: u64,
        /// The confirmed read index, or `None` if the leader could not serve it.
        read_index: Option<LogIndex>,
    },
}

/// Lets a leader skip a whole conflicting term per round trip (Raft §5.3, "fast backup").
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RejectHint {
    /// The follower's term at the rejected `prev_log_index`, if it has that entry.
    pub conflict_term: Option<Term>,
    /// First index the follower holds in `conflict_term`, or its last index + 1.
    pub first_index: LogIndex,
}

impl Body {
    /// A short name for counters and traces.
    pub fn kind(&self) -> &'static str {
        match self {
            Body::RequestVote { pre_vote: true, .. } => "PreVote",
            Body::RequestVote { .. } => "RequestVote",
            Body::RequestVoteResponse { pre_vote: true, .. } => "PreVoteResponse",
            Body::RequestVoteResponse { .. } => "RequestVoteResponse",
            Body::AppendEntries { entries, .. } if entries.is_empty() => "Heartbeat",
            Body::AppendEntries { .. } => "AppendEntries",
            Body::AppendEntriesResponse { .. } => "AppendEntriesResponse",
            Body::InstallSnapshot { .. } => "InstallSnapshot",
            Body::InstallSnapshotResponse { .. } => "InstallSnapshotResponse",
            Body::TimeoutNow => "TimeoutNow",
            Body::ReadIndexRequest { .. } => "ReadIndexRequest",
            Body::ReadIndexResponse { .. } => "ReadIndexResponse",
        }
    }
}
