//! The messages nodes exchange: one [`Message`] envelope (sender, receiver,
//! term) around a [`Body`], and one struct per RPC so a handler takes the
//! sender and the struct, not a list of fields.
//!
//! On the wire they travel in the compact binary encoding of [`crate::wire`]. They
//! are serde types too, for the places where readability wins (the node still
//! accepts a JSON body on its raft endpoint; the simulator can round-trip them
//! through serde_json). Each `Body` variant wraps its struct as an externally
//! tagged newtype variant, which has the same JSON shape as a struct variant:
//! `{"AppendEntries":{"prev_log_index":4,...}}`; `TimeoutNow` is `"TimeoutNow"`.
//!
//! `Display` on the structs gives the one-line summary the simulator's trace
//! prints (`prev=(i4,t2) [5..6] commit=i4`); `Display` on [`Body`] prefixes the
//! [`Body::kind`].

use crate::types::{Entry, LogIndex, NodeId, Term};
use serde::{Deserialize, Serialize};
use std::fmt;

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
    RequestVote(RequestVote),
    /// Answers a RequestVote.
    RequestVoteResponse(RequestVoteResponse),
    /// Replicates entries, or carries none as a heartbeat (Raft §5.3).
    AppendEntries(AppendEntries),
    /// Answers an AppendEntries.
    AppendEntriesResponse(AppendEntriesResponse),
    /// One chunk of a snapshot for a follower behind the leader's log base (Raft §7).
    /// Boxed: the configuration it carries makes it the largest body by far,
    /// and every message is moved through the queues.
    InstallSnapshot(Box<InstallSnapshot>),
    /// Answers an InstallSnapshot chunk.
    InstallSnapshotResponse(InstallSnapshotResponse),
    /// Tells the transfer target to start an election at once (thesis §3.10).
    TimeoutNow,
    /// A follower asks the leader for a read index on behalf of one of its reads.
    ReadIndexRequest(ReadIndexRequest),
    /// The leader's answer to a ReadIndexRequest.
    ReadIndexResponse(ReadIndexResponse),
}

/// Asks for a (pre-)vote (Raft §5.2, thesis §9.6).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestVote {
    /// A PreVote round: the receiver changes no state.
    pub pre_vote: bool,
    /// The election was started by a leadership transfer (TimeoutNow), so the
    /// receiver must not ignore it because it still hears a leader.
    pub transfer: bool,
    /// Index of the candidate's last log entry.
    pub last_log_index: LogIndex,
    /// Term of the candidate's last log entry.
    pub last_log_term: Term,
}

/// Answers a [`RequestVote`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestVoteResponse {
    /// Answers a PreVote request.
    pub pre_vote: bool,
    /// Whether the vote is granted.
    pub granted: bool,
}

/// Replicates entries, or carries none as a heartbeat (Raft §5.3).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppendEntries {
    /// Index of the entry before `entries`.
    pub prev_log_index: LogIndex,
    /// Term of the entry at `prev_log_index`.
    pub prev_log_term: Term,
    /// Entries to append, contiguous from `prev_log_index + 1`.
    pub entries: Vec<Entry>,
    /// The leader's commit index.
    pub leader_commit: LogIndex,
    /// The leader's read round at send time; echoed back to confirm
    /// leadership for ReadIndex reads (thesis §6.4).
    pub read_round: u64,
}

/// Answers an [`AppendEntries`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppendEntriesResponse {
    /// Whether the entries matched and were appended.
    pub success: bool,
    /// On success, the index of the last entry known to match the leader's log;
    /// on rejection, the rejected `prev_log_index`.
    pub match_index: LogIndex,
    /// On rejection, a hint to back up quickly: the follower's term at
    /// `prev_log_index` (if it has the entry) and the first index it holds in that
    /// term, or its last index + 1 and `None` when its log is too short. `None`
    /// on a rejection for a stale term.
    pub reject_hint: Option<RejectHint>,
    /// The `read_round` of the request, echoed.
    pub read_round: u64,
}

/// One chunk of a snapshot for a follower behind the leader's log base (Raft §7).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstallSnapshot {
    /// The last index the snapshot covers.
    pub last_index: LogIndex,
    /// The term at `last_index`.
    pub last_term: Term,
    /// The configuration in effect at `last_index`.
    pub membership: crate::membership::Membership,
    /// Byte offset of `data` within the snapshot.
    pub offset: u64,
    /// This chunk.
    pub data: Vec<u8>,
    /// Whether this is the last chunk.
    pub done: bool,
}

/// A chunk of the leader's snapshot to send ([`crate::Action::SendSnapshotChunk`]).
/// The core never holds snapshot bytes: it names the chunk (`offset`, `len`
/// bytes of the snapshot at `last_index`) and the driver reads them from its
/// durable snapshot store. If the store holds another snapshot (the one named is
/// not durable yet, or was replaced), the driver sends nothing; the leader
/// retries on its next heartbeat.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnapshotChunkToSend {
    /// The message, complete but for `data` (empty here).
    message: Message,
    /// The chunk's length in bytes.
    len: u64,
}

impl SnapshotChunkToSend {
    pub(crate) fn new(message: Message, len: u64) -> SnapshotChunkToSend {
        assert!(
            matches!(&message.body, Body::InstallSnapshot(chunk) if chunk.data.is_empty()),
            "a chunk to send is an InstallSnapshot without its bytes"
        );
        SnapshotChunkToSend { message, len }
    }

    fn chunk(&self) -> &InstallSnapshot {
        match &self.message.body {
            Body::InstallSnapshot(chunk) => chunk,
            _ => unreachable!("checked in new"),
        }
    }

    /// The follower it goes to.
    pub fn to(&self) -> NodeId {
        self.message.to
    }

    /// The snapshot's last index (which snapshot of the store to read).
    pub fn last_index(&self) -> LogIndex {
        self.chunk().last_index
    }

    /// Where the chunk starts in the snapshot's image.
    pub fn offset(&self) -> u64 {
        self.chunk().offset
    }

    /// How many bytes to read from `offset`.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether the chunk is empty (a zero-byte image).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The message to put on the wire, cut from the whole `image` (a store that
    /// holds images in memory); `None` if the image is shorter than the chunk's end.
    pub fn cut_from(self, image: &[u8]) -> Option<Message> {
        let start = usize::try_from(self.offset()).ok()?;
        let end = start.checked_add(usize::try_from(self.len).ok()?)?;
        let data = image.get(start..end)?.to_vec();
        Some(self.with_data(data))
    }

    /// The message to put on the wire, with the bytes read from the store.
    ///
    /// # Panics
    /// If `data` is not `len()` bytes long: a short read is the driver's to
    /// handle (send nothing).
    pub fn with_data(self, data: Vec<u8>) -> Message {
        assert_eq!(data.len() as u64, self.len, "the chunk is len() bytes");
        let mut message = self.message;
        if let Body::InstallSnapshot(chunk) = &mut message.body {
            chunk.data = data;
        }
        message
    }
}

/// Answers an [`InstallSnapshot`] chunk.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstallSnapshotResponse {
    /// The snapshot the answer is about.
    pub last_index: LogIndex,
    /// The byte offset the follower expects next, or the full length when
    /// the snapshot is installed (or already covered).
    pub next_offset: u64,
    /// The follower holds the whole snapshot (installed, or covered by its commit index).
    pub done: bool,
}

/// A follower asks the leader for a read index on behalf of one of its reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReadIndexRequest {
    /// The follower's id of the read.
    pub read_id: u64,
}

/// The leader's answer to a [`ReadIndexRequest`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReadIndexResponse {
    /// The follower's id of the read.
    pub read_id: u64,
    /// The confirmed read index, or `None` if the leader could not serve it.
    pub read_index: Option<LogIndex>,
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
            Body::RequestVote(request) if request.pre_vote => "PreVote",
            Body::RequestVote(_) => "RequestVote",
            Body::RequestVoteResponse(response) if response.pre_vote => "PreVoteResponse",
            Body::RequestVoteResponse(_) => "RequestVoteResponse",
            Body::AppendEntries(append) if append.entries.is_empty() => "Heartbeat",
            Body::AppendEntries(_) => "AppendEntries",
            Body::AppendEntriesResponse(_) => "AppendEntriesResponse",
            Body::InstallSnapshot(_) => "InstallSnapshot",
            Body::InstallSnapshotResponse(_) => "InstallSnapshotResponse",
            Body::TimeoutNow => "TimeoutNow",
            Body::ReadIndexRequest(_) => "ReadIndexRequest",
            Body::ReadIndexResponse(_) => "ReadIndexResponse",
        }
    }

    /// The one-line summary of the body's fields (its struct's `Display`), or
    /// `None` for a body without fields (`TimeoutNow`).
    pub fn fields(&self) -> Option<&dyn fmt::Display> {
        match self {
            Body::RequestVote(request) => Some(request),
            Body::RequestVoteResponse(response) => Some(response),
            Body::AppendEntries(append) => Some(append),
            Body::AppendEntriesResponse(response) => Some(response),
            Body::InstallSnapshot(chunk) => Some(chunk),
            Body::InstallSnapshotResponse(response) => Some(response),
            Body::TimeoutNow => None,
            Body::ReadIndexRequest(request) => Some(request),
            Body::ReadIndexResponse(response) => Some(response),
        }
    }

    /// Bytes of entry payloads or snapshot data the body carries, for sizing
    /// batches and buffers (0 for the small control messages).
    pub fn payload_bytes(&self) -> usize {
        match self {
            Body::AppendEntries(append) => append.entries.iter().map(Entry::size_bytes).sum(),
            Body::InstallSnapshot(chunk) => chunk.data.len(),
            _ => 0,
        }
    }
}

/// `kind`, then the fields: `Heartbeat prev=(i4,t2) commit=i4`.
impl fmt::Display for Body {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.kind())?;
        match self.fields() {
            Some(fields) => write!(f, " {fields}"),
            None => Ok(()),
        }
    }
}

/// `last=(i4,t2)`.
impl fmt::Display for RequestVote {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "last=({},{})", self.last_log_index, self.last_log_term)
    }
}

/// `granted=true`.
impl fmt::Display for RequestVoteResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "granted={}", self.granted)
    }
}

/// `prev=(i4,t2) [5..6] commit=i4` (no range for a heartbeat).
impl fmt::Display for AppendEntries {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "prev=({},{})", self.prev_log_index, self.prev_log_term)?;
        if let (Some(first), Some(last)) = (self.entries.first(), self.entries.last()) {
            write!(f, " [{}..{}]", first.index.0, last.index.0)?;
        }
        write!(f, " commit={}", self.leader_commit)
    }
}

/// `ok match=i6`, `reject at=i6 hint=(Some(2),i4)` or `reject (stale term)`.
impl fmt::Display for AppendEntriesResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.reject_hint {
            _ if self.success => write!(f, "ok match={}", self.match_index),
            Some(hint) => {
                write!(
                    f,
                    "reject at={} hint=({:?},{})",
                    self.match_index,
                    hint.conflict_term.map(|t| t.0),
                    hint.first_index
                )
            }
            None => f.write_str("reject (stale term)"),
        }
    }
}

/// `snap=i9 off=0 done=false`.
impl fmt::Display for InstallSnapshot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "snap={} off={} done={}", self.last_index, self.offset, self.done)
    }
}

/// `snap=i9 next=512 done=false`.
impl fmt::Display for InstallSnapshotResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "snap={} next={} done={}", self.last_index, self.next_offset, self.done)
    }
}

/// `read=7`.
impl fmt::Display for ReadIndexRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "read={}", self.read_id)
    }
}

/// `read=7 index=i4` or `read=7 refused`.
impl fmt::Display for ReadIndexResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.read_index {
            Some(index) => write!(f, "read={} index={index}", self.read_id),
            None => write!(f, "read={} refused", self.read_id),
        }
    }
}

macro_rules! into_body {
    ($($name:ident),* $(,)?) => {
        $(
            impl From<$name> for Body {
                fn from(message: $name) -> Body {
                    // `into` boxes the bodies that are boxed.
                    Body::$name(message.into())
                }
            }
        )*
    };
}

into_body!(
    RequestVote,
    RequestVoteResponse,
    AppendEntries,
    AppendEntriesResponse,
    InstallSnapshot,
    InstallSnapshotResponse,
    ReadIndexRequest,
    ReadIndexResponse,
);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::Payload;

    fn message(body: Body) -> Message {
        Message { from: NodeId(1), to: NodeId(2), term: Term(9), body }
    }

    #[test]
    fn todays_json_still_parses() {
        let timeout_now: Message = serde_json::from_str(r#"{"from":1,"to":2,"term":9,"body":"TimeoutNow"}"#).unwrap();
        assert_eq!(timeout_now, message(Body::TimeoutNow));

        let append = r#"{"from":1,"to":2,"term":9,"body":{"AppendEntries":{"prev_log_index":4,"prev_log_term":3,
            "entries":[{"term":9,"index":5,"payload":"Noop"},{"term":9,"index":6,"payload":{"Command":[1,2]}}],
            "leader_commit":4,"read_round":7}}}"#;
        let expected = message(Body::AppendEntries(AppendEntries {
            prev_log_index: LogIndex(4),
            prev_log_term: Term(3),
            entries: vec![
                Entry { term: Term(9), index: LogIndex(5), payload: Payload::Noop },
                Entry { term: Term(9), index: LogIndex(6), payload: Payload::Command(vec![1, 2]) },
            ],
            leader_commit: LogIndex(4),
            read_round: 7,
        }));
        assert_eq!(serde_json::from_str::<Message>(append).unwrap(), expected);

        let response = r#"{"from":1,"to":2,"term":9,"body":{"AppendEntriesResponse":{"success":false,
            "match_index":6,"reject_hint":{"conflict_term":2,"first_index":3},"read_round":0}}}"#;
        let Body::AppendEntriesResponse(parsed) = serde_json::from_str::<Message>(response).unwrap().body else {
            panic!("wrong variant");
        };
        assert_eq!(parsed.reject_hint, Some(RejectHint { conflict_term: Some(Term(2)), first_index: LogIndex(3) }));
    }

    #[test]
    fn json_shape_is_the_struct_variant_shape() {
        let vote = message(RequestVoteResponse { pre_vote: false, granted: true }.into());
        assert_eq!(
            serde_json::to_string(&vote).unwrap(),
            r#"{"from":1,"to":2,"term":9,"body":{"RequestVoteResponse":{"pre_vote":false,"granted":true}}}"#
        );
        let read = message(ReadIndexResponse { read_id: 3, read_index: None }.into());
        assert_eq!(
            serde_json::to_string(&read).unwrap(),
            r#"{"from":1,"to":2,"term":9,"body":{"ReadIndexResponse":{"read_id":3,"read_index":null}}}"#
        );
        assert_eq!(
            serde_json::to_string(&message(Body::TimeoutNow)).unwrap(),
            r#"{"from":1,"to":2,"term":9,"body":"TimeoutNow"}"#
        );
    }

    #[test]
    fn display_is_one_compact_line() {
        let heartbeat = Body::from(AppendEntries {
            prev_log_index: LogIndex(4),
            prev_log_term: Term(2),
            entries: Vec::new(),
            leader_commit: LogIndex(4),
            read_round: 0,
        });
        assert_eq!(heartbeat.to_string(), "Heartbeat prev=(i4,t2) commit=i4");
        let append = AppendEntries {
            entries: vec![
                Entry { term: Term(2), index: LogIndex(5), payload: Payload::Noop },
                Entry { term: Term(2), index: LogIndex(6), payload: Payload::Noop },
            ],
            ..match heartbeat {
                Body::AppendEntries(append) => append,
                _ => unreachable!(),
            }
        };
        assert_eq!(append.to_string(), "prev=(i4,t2) [5..6] commit=i4");
        let reject = AppendEntriesResponse {
            success: false,
            match_index: LogIndex(6),
            reject_hint: Some(RejectHint { conflict_term: Some(Term(2)), first_index: LogIndex(4) }),
            read_round: 0,
        };
        assert_eq!(reject.to_string(), "reject at=i6 hint=(Some(2),i4)");
        let stale = AppendEntriesResponse { reject_hint: None, ..reject };
        assert_eq!(stale.to_string(), "reject (stale term)");
        assert_eq!(AppendEntriesResponse { success: true, ..stale }.to_string(), "ok match=i6");
        let vote = RequestVote { pre_vote: true, transfer: false, last_log_index: LogIndex(3), last_log_term: Term(1) };
        assert_eq!(Body::from(vote).to_string(), "PreVote last=(i3,t1)");
        assert_eq!(Body::TimeoutNow.to_string(), "TimeoutNow");
        assert!(Body::TimeoutNow.fields().is_none());
        let chunk = InstallSnapshotResponse { last_index: LogIndex(9), next_offset: 512, done: false };
        assert_eq!(chunk.to_string(), "snap=i9 next=512 done=false");
        assert_eq!(ReadIndexResponse { read_id: 7, read_index: Some(LogIndex(4)) }.to_string(), "read=7 index=i4");
        assert_eq!(ReadIndexResponse { read_id: 7, read_index: None }.to_string(), "read=7 refused");
    }
}
