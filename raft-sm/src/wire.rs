//! The binary encoding of [`Message`] and [`Entry`]: the node sends messages to
//! its peers in it and writes entries to its write-ahead log in it (a message
//! carries each entry length-prefixed, [`encode_entry`]; a log record, whose
//! framing gives the length, carries it self-delimited, [`encode_entry_record`];
//! both share the payload encoding, so a payload kind is added in one place).
//! A [`Membership`] is three id lists (voters, learners, outgoing), each a
//! count and the ids; with member contexts (payload kind 3, or trailing an
//! InstallSnapshot) a count and (id, length-prefixed bytes) pairs follow, in id
//! order. Without contexts the layout is the one from before they existed
//! (payload kind 2), so old logs read and old traces stay bit for bit. A message is a
//! version byte, sender, receiver and term, then one kind byte per [`Body`]
//! variant and that struct's fields (little-endian integers, flags packed in a
//! byte, length-prefixed byte strings; the layout is [`encode_message`]'s).
//! Decoding never panics and never allocates more than the input could hold; every
//! error says what was wrong. The serde derives on the message types are for JSON,
//! where readability wins over size (JSON writes bytes as arrays of numbers).

use crate::codec::{put_bytes_u64_len, put_u64, Reader};
use crate::membership::Membership;
use crate::message::{
    AppendEntries, AppendEntriesResponse, Body, InstallSnapshot, InstallSnapshotResponse, Message, ReadIndexRequest,
    ReadIndexResponse, RejectHint, RequestVote, RequestVoteResponse,
};
use crate::types::{Entry, LogIndex, NodeId, Payload, Term};
use std::fmt;

const VERSION: u8 = 1;

/// Bytes that do not decode.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WireError(pub &'static str);

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "malformed raft wire data: {}", self.0)
    }
}

impl std::error::Error for WireError {}

impl From<&'static str> for WireError {
    fn from(what: &'static str) -> Self {
        WireError(what)
    }
}

/// Encodes a message.
pub fn encode_message(message: &Message) -> Vec<u8> {
    let mut out = Vec::with_capacity(64 + message.body.payload_bytes());
    out.push(VERSION);
    put_u64(&mut out, message.from.0);
    put_u64(&mut out, message.to.0);
    put_u64(&mut out, message.term.0);
    match &message.body {
        Body::RequestVote(RequestVote { pre_vote, transfer, last_log_index, last_log_term }) => {
            out.push(1);
            out.push(u8::from(*pre_vote) | u8::from(*transfer) << 1);
            put_u64(&mut out, last_log_index.0);
            put_u64(&mut out, last_log_term.0);
        }
        Body::RequestVoteResponse(RequestVoteResponse { pre_vote, granted }) => {
            out.push(2);
            out.push(u8::from(*pre_vote) | u8::from(*granted) << 1);
        }
        Body::AppendEntries(AppendEntries { prev_log_index, prev_log_term, entries, leader_commit, read_round }) => {
            out.push(3);
            put_u64(&mut out, prev_log_index.0);
            put_u64(&mut out, prev_log_term.0);
            put_u64(&mut out, leader_commit.0);
            put_u64(&mut out, *read_round);
            put_u64(&mut out, entries.len() as u64);
            for entry in entries {
                encode_entry_into(&mut out, entry);
            }
        }
        Body::AppendEntriesResponse(AppendEntriesResponse { success, match_index, reject_hint, read_round }) => {
            out.push(4);
            out.push(u8::from(*success));
            put_u64(&mut out, match_index.0);
            put_u64(&mut out, *read_round);
            match reject_hint {
                None => out.push(0),
                Some(hint) => {
                    out.push(1);
                    match hint.conflict_term {
                        None => out.push(0),
                        Some(term) => {
                            out.push(1);
                            put_u64(&mut out, term.0);
                        }
                    }
                    put_u64(&mut out, hint.first_index.0);
                }
            }
        }
        Body::InstallSnapshot(chunk) => {
            let InstallSnapshot { last_index, last_term, membership, offset, data, done } = &**chunk;
            out.push(5);
            put_u64(&mut out, last_index.0);
            put_u64(&mut out, last_term.0);
            put_membership(&mut out, membership);
            put_u64(&mut out, *offset);
            put_bytes_u64_len(&mut out, data);
            // Bit 0: done; bit 1: member contexts follow (so a cut-off message never decodes).
            let has_contexts = !membership.contexts.is_empty();
            out.push(u8::from(*done) | (u8::from(has_contexts) << 1));
            if has_contexts {
                put_contexts(&mut out, membership);
            }
        }
        Body::InstallSnapshotResponse(InstallSnapshotResponse { last_index, next_offset, done }) => {
            out.push(6);
            put_u64(&mut out, last_index.0);
            put_u64(&mut out, *next_offset);
            out.push(u8::from(*done));
        }
        Body::TimeoutNow => out.push(7),
        Body::ReadIndexRequest(ReadIndexRequest { read_id }) => {
            out.push(8);
            put_u64(&mut out, *read_id);
        }
        Body::ReadIndexResponse(ReadIndexResponse { read_id, read_index }) => {
            out.push(9);
            put_u64(&mut out, *read_id);
            match read_index {
                None => out.push(0),
                Some(index) => {
                    out.push(1);
                    put_u64(&mut out, index.0);
                }
            }
        }
    }
    out
}

/// Decodes [`encode_message`] bytes.
pub fn decode_message(bytes: &[u8]) -> Result<Message, WireError> {
    let mut reader = Reader::new(bytes);
    if reader.u8()? != VERSION {
        return Err(WireError("unknown version"));
    }
    let from = NodeId(reader.u64()?);
    let to = NodeId(reader.u64()?);
    let term = Term(reader.u64()?);
    let body = match reader.u8()? {
        1 => {
            let flags = reader.u8()?;
            Body::RequestVote(RequestVote {
                pre_vote: flags & 1 != 0,
                transfer: flags & 2 != 0,
                last_log_index: LogIndex(reader.u64()?),
                last_log_term: Term(reader.u64()?),
            })
        }
        2 => {
            let flags = reader.u8()?;
            Body::RequestVoteResponse(RequestVoteResponse { pre_vote: flags & 1 != 0, granted: flags & 2 != 0 })
        }
        3 => {
            let prev_log_index = LogIndex(reader.u64()?);
            let prev_log_term = Term(reader.u64()?);
            let leader_commit = LogIndex(reader.u64()?);
            let read_round = reader.u64()?;
            let count = reader.u64()?;
            // Each entry takes at least 17 bytes: a hostile count cannot make us allocate.
            if count > (bytes.len() / 17) as u64 {
                return Err(WireError("entry count exceeds the message"));
            }
            let mut entries = Vec::with_capacity(count as usize);
            for _ in 0..count {
                entries.push(read_entry(&mut reader)?);
            }
            Body::AppendEntries(AppendEntries { prev_log_index, prev_log_term, entries, leader_commit, read_round })
        }
        4 => {
            let success = reader.bool()?;
            let match_index = LogIndex(reader.u64()?);
            let read_round = reader.u64()?;
            let reject_hint = if reader.bool()? {
                let conflict_term = if reader.bool()? { Some(Term(reader.u64()?)) } else { None };
                Some(RejectHint { conflict_term, first_index: LogIndex(reader.u64()?) })
            } else {
                None
            };
            Body::AppendEntriesResponse(AppendEntriesResponse { success, match_index, reject_hint, read_round })
        }
        5 => {
            let last_index = LogIndex(reader.u64()?);
            let last_term = Term(reader.u64()?);
            let mut membership = read_membership(&mut reader, bytes.len())?;
            let offset = reader.u64()?;
            let data = reader.bytes_u64_len()?.to_vec();
            let flags = reader.u8()?;
            if flags > 3 {
                return Err(WireError("unknown InstallSnapshot flags"));
            }
            let done = flags & 1 == 1;
            if flags & 2 != 0 {
                read_contexts(&mut reader, bytes.len(), &mut membership)?;
            }
            Body::InstallSnapshot(Box::new(InstallSnapshot { last_index, last_term, membership, offset, data, done }))
        }
        6 => Body::InstallSnapshotResponse(InstallSnapshotResponse {
            last_index: LogIndex(reader.u64()?),
            next_offset: reader.u64()?,
            done: reader.bool()?,
        }),
        7 => Body::TimeoutNow,
        8 => Body::ReadIndexRequest(ReadIndexRequest { read_id: reader.u64()? }),
        9 => {
            let read_id = reader.u64()?;
            let read_index = if reader.bool()? { Some(LogIndex(reader.u64()?)) } else { None };
            Body::ReadIndexResponse(ReadIndexResponse { read_id, read_index })
        }
        _ => return Err(WireError("unknown message kind")),
    };
    if !reader.is_done() {
        return Err(WireError("trailing bytes"));
    }
    Ok(Message { from, to, term, body })
}

/// Encodes one log entry (for a write-ahead log record).
pub fn encode_entry(entry: &Entry) -> Vec<u8> {
    let mut out = Vec::with_capacity(32 + payload_len(&entry.payload));
    encode_entry_into(&mut out, entry);
    out
}

/// Decodes [`encode_entry`] bytes.
pub fn decode_entry(bytes: &[u8]) -> Result<Entry, WireError> {
    let mut reader = Reader::new(bytes);
    let entry = read_entry(&mut reader)?;
    if !reader.is_done() {
        return Err(WireError("trailing bytes"));
    }
    Ok(entry)
}

/// Encodes one log entry self-delimited, for a record whose framing gives
/// the length (the node's write-ahead log): term, index, payload kind, then a
/// command's bytes up to the end, unprefixed. The layout of kinds 0 (no-op) and
/// 1 (command) is the one the log has always had, so old logs still read.
pub fn encode_entry_record(entry: &Entry, out: &mut Vec<u8>) {
    put_entry(out, entry, Framing::ToEnd);
}

/// Decodes [`encode_entry_record`] bytes (all of them).
pub fn decode_entry_record(bytes: &[u8]) -> Result<Entry, WireError> {
    let mut reader = Reader::new(bytes);
    let entry = take_entry(&mut reader, Framing::ToEnd, bytes.len())?;
    if !reader.is_done() {
        return Err(WireError("trailing bytes"));
    }
    Ok(entry)
}

/// How a command's bytes are delimited.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Framing {
    /// An 8-byte length first (entries inside a message).
    Prefixed,
    /// Up to the end of the input (a log record).
    ToEnd,
}

fn encode_entry_into(out: &mut Vec<u8>, entry: &Entry) {
    put_entry(out, entry, Framing::Prefixed);
}

/// The one payload encoding: kind byte, then its fields.
fn put_entry(out: &mut Vec<u8>, entry: &Entry, framing: Framing) {
    put_u64(out, entry.term.0);
    put_u64(out, entry.index.0);
    match &entry.payload {
        Payload::Noop => out.push(0),
        Payload::Command(bytes) => {
            out.push(1);
            match framing {
                Framing::Prefixed => put_bytes_u64_len(out, bytes),
                Framing::ToEnd => out.extend_from_slice(bytes),
            }
        }
        Payload::Membership(membership) if membership.contexts.is_empty() => {
            out.push(2);
            put_membership(out, membership);
        }
        Payload::Membership(membership) => {
            out.push(3);
            put_membership(out, membership);
            put_contexts(out, membership);
        }
    }
}

fn payload_len(payload: &Payload) -> usize {
    match payload {
        Payload::Noop => 0,
        Payload::Command(bytes) => bytes.len(),
        Payload::Membership(membership) => {
            let contexts: usize = membership.contexts.values().map(|context| 16 + context.len()).sum();
            24 + 8 * membership.members().len() + 8 + contexts
        }
    }
}

fn read_entry(reader: &mut Reader<'_>) -> Result<Entry, WireError> {
    take_entry(reader, Framing::Prefixed, usize::MAX)
}

fn take_entry(reader: &mut Reader<'_>, framing: Framing, input_len: usize) -> Result<Entry, WireError> {
    let term = Term(reader.u64()?);
    let index = LogIndex(reader.u64()?);
    let payload = match reader.u8()? {
        0 => Payload::Noop,
        1 => match framing {
            Framing::Prefixed => Payload::Command(reader.bytes_u64_len()?.to_vec()),
            Framing::ToEnd => Payload::Command(reader.rest().to_vec()),
        },
        2 => Payload::Membership(Box::new(read_membership(reader, input_len)?)),
        3 => {
            let mut membership = read_membership(reader, input_len)?;
            read_contexts(reader, input_len, &mut membership)?;
            Payload::Membership(Box::new(membership))
        }
        _ => return Err(WireError("unknown payload kind")),
    };
    Ok(Entry { term, index, payload })
}

fn put_membership(out: &mut Vec<u8>, membership: &Membership) {
    for list in [&membership.voters, &membership.learners, &membership.outgoing] {
        put_u64(out, list.len() as u64);
        for id in list {
            put_u64(out, id.0);
        }
    }
}

fn put_contexts(out: &mut Vec<u8>, membership: &Membership) {
    put_u64(out, membership.contexts.len() as u64);
    for (id, context) in &membership.contexts {
        put_u64(out, id.0);
        put_bytes_u64_len(out, context);
    }
}

/// Reads [`put_contexts`]' pairs into `membership`: in id order, each of a member.
fn read_contexts(reader: &mut Reader<'_>, input_len: usize, membership: &mut Membership) -> Result<(), WireError> {
    let count = reader.u64()?;
    if count > (input_len / 16) as u64 {
        return Err(WireError("context count exceeds the message"));
    }
    let mut last: Option<NodeId> = None;
    for _ in 0..count {
        let id = NodeId(reader.u64()?);
        let context = reader.bytes_u64_len()?.to_vec();
        if last.is_some_and(|last| last >= id) {
            return Err(WireError("member contexts not sorted and distinct"));
        }
        if !membership.contains(id) {
            return Err(WireError("a context of a node that is not a member"));
        }
        last = Some(id);
        membership.contexts.insert(id, context);
    }
    Ok(())
}

/// Reads [`put_membership`]'s lists; `input_len` bounds the counts, so a
/// hostile count cannot make us allocate. The lists must be sorted and
/// distinct, as [`Membership`] promises.
fn read_membership(reader: &mut Reader<'_>, input_len: usize) -> Result<Membership, WireError> {
    let mut lists: [Vec<NodeId>; 3] = Default::default();
    for list in &mut lists {
        let count = reader.u64()?;
        if count > (input_len / 8) as u64 {
            return Err(WireError("member count exceeds the message"));
        }
        *list = (0..count).map(|_| reader.u64().map(NodeId)).collect::<Result<_, _>>()?;
        if list.windows(2).any(|pair| pair[0] >= pair[1]) {
            return Err(WireError("member list not sorted and distinct"));
        }
    }
    let [voters, learners, outgoing] = lists;
    if learners.iter().any(|id| voters.contains(id) || outgoing.contains(id)) {
        return Err(WireError("a learner is also a voter"));
    }
    Ok(Membership { voters, learners, outgoing, contexts: Default::default() })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A valid membership: each of 0..8 nodes is a voter, learner, outgoing
    /// voter, both kinds of voter, or absent; with `contexts`, the even ones
    /// carry a context (of their id's length: empty for node 0).
    fn arb_membership() -> impl Strategy<Value = Membership> {
        (proptest::collection::vec(0u8..5, 8), any::<bool>()).prop_map(|(roles, contexts)| {
            let mut membership = Membership::default();
            for (id, role) in roles.into_iter().enumerate() {
                let id = NodeId(id as u64);
                match role {
                    0 => membership.voters.push(id),
                    1 => membership.learners.push(id),
                    2 => membership.outgoing.push(id),
                    3 => {
                        membership.voters.push(id);
                        membership.outgoing.push(id);
                    }
                    _ => {}
                }
            }
            if contexts {
                for id in membership.members().into_iter().filter(|id| id.0 % 2 == 0) {
                    membership.contexts.insert(id, vec![id.0 as u8; id.0 as usize]);
                }
            }
            membership
        })
    }

    fn arb_entry() -> impl Strategy<Value = Entry> {
        let payload = prop_oneof![
            Just(Payload::Noop),
            proptest::collection::vec(any::<u8>(), 0..40).prop_map(Payload::Command),
            arb_membership().prop_map(|membership| Payload::Membership(Box::new(membership))),
        ];
        (0u64..9, 1u64..1000, payload).prop_map(|(term, index, payload)| Entry {
            term: Term(term),
            index: LogIndex(index),
            payload,
        })
    }

    fn arb_body() -> impl Strategy<Value = Body> {
        prop_oneof![
            (any::<bool>(), any::<bool>(), any::<u64>(), any::<u64>()).prop_map(|(p, t, i, term)| {
                Body::RequestVote(RequestVote {
                    pre_vote: p,
                    transfer: t,
                    last_log_index: LogIndex(i),
                    last_log_term: Term(term),
                })
            }),
            (any::<bool>(), any::<bool>())
                .prop_map(|(pre_vote, granted)| Body::RequestVoteResponse(RequestVoteResponse { pre_vote, granted })),
            (any::<u64>(), any::<u64>(), proptest::collection::vec(arb_entry(), 0..4), any::<u64>(), any::<u64>())
                .prop_map(|(i, t, entries, c, r)| {
                    Body::AppendEntries(AppendEntries {
                        prev_log_index: LogIndex(i),
                        prev_log_term: Term(t),
                        entries,
                        leader_commit: LogIndex(c),
                        read_round: r,
                    })
                }),
            (
                any::<bool>(),
                any::<u64>(),
                proptest::option::of((proptest::option::of(any::<u64>()), any::<u64>())),
                any::<u64>()
            )
                .prop_map(|(success, m, hint, r)| {
                    Body::AppendEntriesResponse(AppendEntriesResponse {
                        success,
                        match_index: LogIndex(m),
                        reject_hint: hint
                            .map(|(t, f)| RejectHint { conflict_term: t.map(Term), first_index: LogIndex(f) }),
                        read_round: r,
                    })
                }),
            (
                any::<u64>(),
                any::<u64>(),
                arb_membership(),
                any::<u64>(),
                proptest::collection::vec(any::<u8>(), 0..64),
                any::<bool>()
            )
                .prop_map(|(i, t, membership, offset, data, done)| {
                    Body::InstallSnapshot(Box::new(InstallSnapshot {
                        last_index: LogIndex(i),
                        last_term: Term(t),
                        membership,
                        offset,
                        data,
                        done,
                    }))
                }),
            (any::<u64>(), any::<u64>(), any::<bool>()).prop_map(|(i, o, done)| {
                Body::InstallSnapshotResponse(InstallSnapshotResponse { last_index: LogIndex(i), next_offset: o, done })
            }),
            Just(Body::TimeoutNow),
            any::<u64>().prop_map(|read_id| Body::ReadIndexRequest(ReadIndexRequest { read_id })),
            (any::<u64>(), proptest::option::of(any::<u64>())).prop_map(|(read_id, i)| Body::ReadIndexResponse(
                ReadIndexResponse { read_id, read_index: i.map(LogIndex) }
            )),
        ]
    }

    proptest! {
        #[test]
        fn messages_round_trip(from in any::<u64>(), to in any::<u64>(), term in any::<u64>(), body in arb_body()) {
            let message = Message { from: NodeId(from), to: NodeId(to), term: Term(term), body };
            let bytes = encode_message(&message);
            prop_assert_eq!(decode_message(&bytes), Ok(message));
        }

        #[test]
        fn entries_round_trip(entry in arb_entry()) {
            prop_assert_eq!(decode_entry(&encode_entry(&entry)), Ok(entry.clone()));
            let mut record = Vec::new();
            encode_entry_record(&entry, &mut record);
            prop_assert_eq!(decode_entry_record(&record), Ok(entry));
        }

        #[test]
        fn truncated_or_garbage_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = decode_message(&bytes);
            let _ = decode_entry(&bytes);
            let _ = decode_entry_record(&bytes);
        }
    }

    #[test]
    fn every_strict_prefix_of_a_message_is_rejected() {
        let message = Message {
            from: NodeId(1),
            to: NodeId(2),
            term: Term(3),
            body: Body::AppendEntries(AppendEntries {
                prev_log_index: LogIndex(4),
                prev_log_term: Term(3),
                entries: vec![Entry { term: Term(3), index: LogIndex(5), payload: Payload::Command(vec![1, 2, 3]) }],
                leader_commit: LogIndex(4),
                read_round: 9,
            }),
        };
        let bytes = encode_message(&message);
        for len in 0..bytes.len() {
            assert!(decode_message(&bytes[..len]).is_err(), "prefix of {len} bytes decoded");
        }
    }

    #[test]
    fn a_record_keeps_the_log_layout_of_old_data_directories() {
        // term 3, index 7, kind 1, then the command's bytes without a length.
        let mut old = Vec::new();
        old.extend_from_slice(&3u64.to_le_bytes());
        old.extend_from_slice(&7u64.to_le_bytes());
        old.push(1);
        old.extend_from_slice(b"hello");
        let command = Entry { term: Term(3), index: LogIndex(7), payload: Payload::Command(b"hello".to_vec()) };
        assert_eq!(decode_entry_record(&old), Ok(command.clone()));
        let mut encoded = Vec::new();
        encode_entry_record(&command, &mut encoded);
        assert_eq!(encoded, old);
        let noop = Entry { term: Term(3), index: LogIndex(8), payload: Payload::Noop };
        let mut encoded = Vec::new();
        encode_entry_record(&noop, &mut encoded);
        assert_eq!(encoded.len(), 17, "a no-op is term, index and kind");
    }

    #[test]
    fn a_membership_that_breaks_its_promises_is_refused() {
        let bad = Membership { voters: vec![NodeId(2), NodeId(1)], ..Membership::default() };
        let mut bytes = Vec::new();
        encode_entry_record(
            &Entry { term: Term(1), index: LogIndex(1), payload: Payload::Membership(Box::new(bad)) },
            &mut bytes,
        );
        assert_eq!(decode_entry_record(&bytes), Err(WireError("member list not sorted and distinct")));
        let both = Membership { voters: vec![NodeId(1)], learners: vec![NodeId(1)], ..Membership::default() };
        let mut bytes = Vec::new();
        encode_entry_record(
            &Entry { term: Term(1), index: LogIndex(1), payload: Payload::Membership(Box::new(both)) },
            &mut bytes,
        );
        assert_eq!(decode_entry_record(&bytes), Err(WireError("a learner is also a voter")));
    }

    #[test]
    fn a_membership_without_contexts_keeps_the_old_layout_and_one_with_them_reads_back() {
        let plain = Membership::with_learners([NodeId(1), NodeId(2)], [NodeId(3)]);
        let entry = |membership: Membership| Entry {
            term: Term(1),
            index: LogIndex(1),
            payload: Payload::Membership(Box::new(membership)),
        };
        let mut old = Vec::new();
        encode_entry_record(&entry(plain.clone()), &mut old);
        assert_eq!(old[16], 2, "payload kind 2, as before contexts existed");
        assert_eq!(old.len(), 16 + 1 + 3 * 8 + 3 * 8);
        let named = plain.with_contexts([(NodeId(3), b"n3".to_vec()), (NodeId(9), b"gone".to_vec())].into());
        assert_eq!(named.contexts.len(), 1, "a non-member's context is dropped");
        let mut new = Vec::new();
        encode_entry_record(&entry(named.clone()), &mut new);
        assert_eq!(new[16], 3);
        assert_eq!(decode_entry_record(&new), Ok(entry(named)));
    }
}
