//! Record framing: `[len: u32 LE][crc32: u32 LE][kind: u8][payload]`, where `len`
//! counts the kind byte and the payload and the CRC32 covers them both. An
//! entry's payload is raft-sm's wire encoding of it ([`raft_sm::wire::encode_entry_record`]),
//! the one encoding of entries in the workspace.

use raft_sm::wire::{decode_entry_record, encode_entry_record};
use raft_sm::{Entry, HardState, LogIndex, NodeId, Term};

/// Bytes before the kind byte: length and checksum.
pub const HEADER_BYTES: usize = 8;
/// Largest framed body accepted; anything longer is damage, not data.
pub const BODY_BYTES_MAX: usize = 256 << 20;

const KIND_ENTRY: u8 = 1;
const KIND_HARD_STATE: u8 = 2;
const KIND_TRUNCATE: u8 = 3;
const KIND_RESET: u8 = 4;
const KIND_BATCH: u8 = 5;

/// What the log stores.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Record {
    /// One log entry; it follows the previous entry directly.
    Entry(Entry),
    /// The latest hard state; the last one read wins.
    HardState(HardState),
    /// Entries with index ≥ `from` written before this record are gone.
    Truncate {
        /// First index removed.
        from: LogIndex,
    },
    /// Every entry written before this record is gone; the next follows `base_index`.
    Reset {
        /// The snapshot index the log now starts after.
        base_index: LogIndex,
    },
    /// Starts the records of one write + fdatasync: `bytes` of records follow.
    /// A batch is written only after the previous one's fsync returned, so damage
    /// inside the last batch is a torn write, while an intact later batch proves the
    /// damaged one had been made durable (real corruption).
    Batch {
        /// Bytes of the records in the batch (after this record).
        bytes: u64,
    },
}

/// The result of reading one record from the front of a buffer.
#[derive(Debug, PartialEq, Eq)]
pub enum Decoded {
    /// A whole, intact record and its framed length.
    Record(Record, usize),
    /// The buffer ends inside the record (a torn write, if at the end of the log).
    Incomplete,
    /// The record is damaged: a bad length, checksum or body.
    Corrupt(&'static str),
}

/// Appends the framed record to `out`.
pub fn encode(record: &Record, out: &mut Vec<u8>) {
    let start = out.len();
    out.extend_from_slice(&[0; HEADER_BYTES]);
    match record {
        Record::Entry(entry) => {
            out.push(KIND_ENTRY);
            encode_entry_record(entry, out);
        }
        Record::HardState(hard_state) => {
            out.push(KIND_HARD_STATE);
            out.extend_from_slice(&hard_state.term.0.to_le_bytes());
            match hard_state.voted_for {
                None => out.extend_from_slice(&[0; 9]),
                Some(id) => {
                    out.push(1);
                    out.extend_from_slice(&id.0.to_le_bytes());
                }
            }
            out.extend_from_slice(&hard_state.commit.0.to_le_bytes());
        }
        Record::Truncate { from } => {
            out.push(KIND_TRUNCATE);
            out.extend_from_slice(&from.0.to_le_bytes());
        }
        Record::Batch { bytes } => {
            out.push(KIND_BATCH);
            out.extend_from_slice(&bytes.to_le_bytes());
        }
        Record::Reset { base_index } => {
            out.push(KIND_RESET);
            out.extend_from_slice(&base_index.0.to_le_bytes());
        }
    }
    let body = &out[start + HEADER_BYTES..];
    let len = u32::try_from(body.len()).expect("record shorter than 4 GiB");
    let crc = crc32fast::hash(body);
    out[start..start + 4].copy_from_slice(&len.to_le_bytes());
    out[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
}

/// Reads the record at the front of `buf`.
pub fn decode(buf: &[u8]) -> Decoded {
    if buf.len() < HEADER_BYTES {
        return Decoded::Incomplete;
    }
    let len = u32::from_le_bytes(buf[0..4].try_into().expect("4 bytes")) as usize;
    let crc = u32::from_le_bytes(buf[4..8].try_into().expect("4 bytes"));
    if len == 0 || len > BODY_BYTES_MAX {
        return Decoded::Corrupt("impossible record length");
    }
    let Some(body) = buf.get(HEADER_BYTES..HEADER_BYTES + len) else {
        return Decoded::Incomplete;
    };
    if crc32fast::hash(body) != crc {
        return Decoded::Corrupt("checksum mismatch");
    }
    match decode_body(body) {
        Some(record) => Decoded::Record(record, HEADER_BYTES + len),
        None => Decoded::Corrupt("checksum matches but the body does not decode"),
    }
}

fn u64_at(bytes: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(bytes.get(at..at + 8)?.try_into().ok()?))
}

fn decode_body(body: &[u8]) -> Option<Record> {
    let (&kind, rest) = body.split_first()?;
    match kind {
        KIND_ENTRY => decode_entry_record(rest).ok().map(Record::Entry),
        KIND_HARD_STATE if rest.len() == 25 => {
            let voted_for = match rest[8] {
                0 => None,
                1 => Some(NodeId(u64_at(rest, 9)?)),
                _ => return None,
            };
            Some(Record::HardState(HardState {
                term: Term(u64_at(rest, 0)?),
                voted_for,
                commit: LogIndex(u64_at(rest, 17)?),
            }))
        }
        KIND_TRUNCATE if rest.len() == 8 => Some(Record::Truncate { from: LogIndex(u64_at(rest, 0)?) }),
        KIND_RESET if rest.len() == 8 => Some(Record::Reset { base_index: LogIndex(u64_at(rest, 0)?) }),
        KIND_BATCH if rest.len() == 8 => Some(Record::Batch { bytes: u64_at(rest, 0)? }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use raft_sm::{Membership, Payload};

    fn samples() -> Vec<Record> {
        vec![
            Record::Entry(Entry {
                term: Term(4),
                index: LogIndex(9),
                payload: Payload::Membership(Box::new(Membership::with_learners([NodeId(1), NodeId(2)], [NodeId(3)]))),
            }),
            Record::Entry(Entry { term: Term(3), index: LogIndex(7), payload: Payload::Command(b"hello".to_vec()) }),
            Record::Entry(Entry { term: Term(3), index: LogIndex(8), payload: Payload::Noop }),
            Record::HardState(HardState { term: Term(4), voted_for: Some(NodeId(u64::MAX)), commit: LogIndex(6) }),
            Record::HardState(HardState::default()),
            Record::Truncate { from: LogIndex(5) },
            Record::Reset { base_index: LogIndex(100) },
            Record::Batch { bytes: 4096 },
        ]
    }

    #[test]
    fn records_round_trip_back_to_back() {
        let mut buf = Vec::new();
        for record in samples() {
            encode(&record, &mut buf);
        }
        let mut at = 0;
        for record in samples() {
            match decode(&buf[at..]) {
                Decoded::Record(decoded, len) => {
                    assert_eq!(decoded, record);
                    at += len;
                }
                other => panic!("expected a record, got {other:?}"),
            }
        }
        assert_eq!(at, buf.len());
    }

    #[test]
    fn every_cut_is_incomplete_and_every_flipped_bit_is_corrupt() {
        let mut buf = Vec::new();
        encode(&samples()[0], &mut buf);
        for cut in 0..buf.len() {
            assert_eq!(decode(&buf[..cut]), Decoded::Incomplete, "cut at {cut}");
        }
        for byte in 4..buf.len() {
            let mut damaged = buf.clone();
            damaged[byte] ^= 0x10;
            assert!(matches!(decode(&damaged), Decoded::Corrupt(_)), "flip in byte {byte}");
        }
    }
}
