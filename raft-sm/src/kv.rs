//! The key-value state machine: `set`, `get`, `delete`, client sessions for
//! exactly-once writes, and a deterministic snapshot.
//!
//! Commands and snapshots use a compact binary encoding (length-prefixed fields,
//! little-endian integers) so that the replication and WAL hot paths never parse
//! JSON; the client API stays JSON in the node.
//!
//! **Sessions.** A write may carry a [`Session`] (client id, sequence number). The
//! store remembers, per client, the highest sequence number applied and its result.
//! A command whose sequence number equals the remembered one is a retry: it is not
//! applied again and returns the first result. An older sequence number is answered
//! [`KvError::SessionExpired`]. At most `sessions_max` clients are remembered; when a
//! new client would exceed that, the client whose last write is oldest (lowest log
//! index, then lowest id) is forgotten. A forgotten client's late retry would apply
//! again, so `sessions_max` should exceed the number of concurrently active clients.

use crate::codec::{put_bytes_u32_len, put_u64, Reader};
use crate::types::{Entry, LogIndex, Payload};
use hashbrown::HashMap;
use std::collections::BTreeSet;
use std::fmt;

/// A client's session stamp on a write.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Session {
    /// The client's id, unique per client.
    pub client_id: u64,
    /// Grows by one per new write of this client; a retry reuses it.
    pub seq: u64,
}

/// A write operation.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Op {
    /// Set `key` to `value`.
    Set {
        /// The key.
        key: String,
        /// The value.
        value: String,
    },
    /// Remove `key`.
    Delete {
        /// The key.
        key: String,
    },
}

/// A write command as it travels through the log.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Command {
    /// The client session, for exactly-once application of retries.
    pub session: Option<Session>,
    /// The operation.
    pub op: Op,
}

/// Errors the state machine answers with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KvError {
    /// The key is empty.
    KeyEmpty,
    /// The key does not exist.
    KeyNotFound,
    /// The command's sequence number is older than the client's last applied one.
    SessionExpired,
    /// The log entry does not decode as a command.
    BadCommand,
}

impl fmt::Display for KvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = match self {
            KvError::KeyEmpty => "key is empty",
            KvError::KeyNotFound => "key not found",
            KvError::SessionExpired => "sequence number is older than the client's last write",
            KvError::BadCommand => "log entry is not a valid command",
        };
        f.write_str(text)
    }
}

impl std::error::Error for KvError {}

/// The result of applying one command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ApplyResult {
    /// What the operation returned.
    pub result: Result<(), KvError>,
    /// The command was a retry and was not applied again.
    pub duplicate: bool,
}

/// A snapshot or command could not be decoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecodeError(pub &'static str);

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "decode error: {}", self.0)
    }
}

impl std::error::Error for DecodeError {}

impl From<&'static str> for DecodeError {
    fn from(what: &'static str) -> Self {
        DecodeError(what)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct SessionRecord {
    seq: u64,
    result: Result<(), KvError>,
    last_index: LogIndex,
}

/// The replicated key-value map.
#[derive(Clone, Debug)]
pub struct KvStore {
    data: HashMap<String, String>,
    sessions: HashMap<u64, SessionRecord>,
    /// (last_index, client_id) of every session: the eviction order.
    session_age: BTreeSet<(LogIndex, u64)>,
    sessions_max: usize,
    applied_index: LogIndex,
}

/// Default bound on remembered client sessions.
pub const SESSIONS_MAX_DEFAULT: usize = 100_000;

impl Default for KvStore {
    fn default() -> Self {
        KvStore::new(SESSIONS_MAX_DEFAULT)
    }
}

impl KvStore {
    /// An empty store remembering at most `sessions_max` client sessions.
    pub fn new(sessions_max: usize) -> KvStore {
        assert!(sessions_max > 0, "sessions_max must be at least 1");
        KvStore {
            data: HashMap::new(),
            sessions: HashMap::new(),
            session_age: BTreeSet::new(),
            sessions_max,
            applied_index: LogIndex(0),
        }
    }

    /// The last log index applied.
    pub fn applied_index(&self) -> LogIndex {
        self.applied_index
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.data.len()
    }

    /// Whether the map is empty.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// Number of remembered client sessions.
    pub fn sessions_len(&self) -> usize {
        self.sessions.len()
    }

    /// Reads a key.
    pub fn get(&self, key: &str) -> Result<&str, KvError> {
        if key.is_empty() {
            return Err(KvError::KeyEmpty);
        }
        self.data.get(key).map(String::as_str).ok_or(KvError::KeyNotFound)
    }

    /// All pairs, sorted by key (for tests and checkers).
    pub fn sorted_pairs(&self) -> Vec<(String, String)> {
        let mut pairs: Vec<_> = self.data.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        pairs.sort();
        pairs
    }

    /// Applies one committed log entry. Must be called for every entry, in index
    /// order; no-op entries only advance the applied index and return `None`.
    pub fn apply_entry(&mut self, entry: &Entry) -> Option<ApplyResult> {
        assert_eq!(entry.index, self.applied_index.next(), "entries must be applied in order, each exactly once");
        self.applied_index = entry.index;
        match &entry.payload {
            Payload::Noop => None,
            Payload::Command(bytes) => Some(match Command::decode(bytes) {
                Ok(command) => self.apply_command(entry.index, &command),
                Err(_) => ApplyResult { result: Err(KvError::BadCommand), duplicate: false },
            }),
        }
    }

    fn apply_command(&mut self, index: LogIndex, command: &Command) -> ApplyResult {
        if let Some(session) = command.session {
            if let Some(record) = self.sessions.get(&session.client_id) {
                if session.seq == record.seq {
                    return ApplyResult { result: record.result, duplicate: true };
                }
                if session.seq < record.seq {
                    return ApplyResult { result: Err(KvError::SessionExpired), duplicate: true };
                }
            }
        }
        let result = self.apply_op(&command.op);
        if let Some(session) = command.session {
            self.remember(session, result, index);
        }
        ApplyResult { result, duplicate: false }
    }

    fn apply_op(&mut self, op: &Op) -> Result<(), KvError> {
        match op {
            Op::Set { key, value } => {
                if key.is_empty() {
                    return Err(KvError::KeyEmpty);
                }
                self.data.insert(key.clone(), value.clone());
                Ok(())
            }
            Op::Delete { key } => {
                if key.is_empty() {
                    return Err(KvError::KeyEmpty);
                }
                self.data.remove(key).map(|_| ()).ok_or(KvError::KeyNotFound)
            }
        }
    }

    fn remember(&mut self, session: Session, result: Result<(), KvError>, index: LogIndex) {
        let record = SessionRecord { seq: session.seq, result, last_index: index };
        if let Some(old) = self.sessions.insert(session.client_id, record) {
            self.session_age.remove(&(old.last_index, session.client_id));
        }
        self.session_age.insert((index, session.client_id));
        while self.sessions.len() > self.sessions_max {
            let oldest = *self.session_age.iter().next().expect("ages track sessions");
            self.session_age.remove(&oldest);
            self.sessions.remove(&oldest.1);
        }
        debug_assert_eq!(self.sessions.len(), self.session_age.len());
    }

    /// Serializes the whole state (data, sessions, applied index) deterministically:
    /// equal stores give equal bytes.
    pub fn snapshot(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(64 + self.data.len() * 32);
        out.extend_from_slice(SNAPSHOT_MAGIC);
        put_u64(&mut out, self.applied_index.0);
        put_u64(&mut out, self.sessions_max as u64);
        let mut keys: Vec<&String> = self.data.keys().collect();
        keys.sort();
        put_u64(&mut out, keys.len() as u64);
        for key in keys {
            put_bytes_u32_len(&mut out, key.as_bytes());
            put_bytes_u32_len(&mut out, self.data[key].as_bytes());
        }
        put_u64(&mut out, self.sessions.len() as u64);
        for &(last_index, client_id) in &self.session_age {
            let record = self.sessions[&client_id];
            put_u64(&mut out, client_id);
            put_u64(&mut out, record.seq);
            put_u64(&mut out, last_index.0);
            out.push(encode_result(record.result));
        }
        out
    }

    /// Rebuilds a store from [`KvStore::snapshot`] bytes.
    pub fn restore(bytes: &[u8]) -> Result<KvStore, DecodeError> {
        let mut reader = Reader::new(bytes);
        if reader.take(SNAPSHOT_MAGIC.len())? != SNAPSHOT_MAGIC {
            return Err(DecodeError("not a kv snapshot"));
        }
        let applied_index = LogIndex(reader.u64()?);
        let sessions_max = reader.u64()? as usize;
        if sessions_max == 0 {
            return Err(DecodeError("sessions_max is zero"));
        }
        let mut store = KvStore::new(sessions_max);
        store.applied_index = applied_index;
        let pairs = reader.u64()?;
        for _ in 0..pairs {
            let key = reader.string_u32_len()?;
            let value = reader.string_u32_len()?;
            store.data.insert(key, value);
        }
        let sessions = reader.u64()?;
        for _ in 0..sessions {
            let client_id = reader.u64()?;
            let seq = reader.u64()?;
            let last_index = LogIndex(reader.u64()?);
            let result = decode_result(reader.u8()?)?;
            store.sessions.insert(client_id, SessionRecord { seq, result, last_index });
            store.session_age.insert((last_index, client_id));
        }
        if !reader.is_done() {
            return Err(DecodeError("trailing bytes after snapshot"));
        }
        if store.sessions.len() != store.session_age.len() {
            return Err(DecodeError("duplicate session"));
        }
        Ok(store)
    }
}

/// The store as the host's state machine. Its snapshot image is
/// [`KvStore::snapshot`]'s bytes; the store is held in memory, so it builds the
/// image in memory and writes it in one go.
impl crate::host::StateMachine for KvStore {
    type Output = Option<ApplyResult>;
    type RestoreError = DecodeError;

    fn apply(&mut self, entry: &Entry) -> Option<ApplyResult> {
        self.apply_entry(entry)
    }

    fn applied_index(&self) -> LogIndex {
        self.applied_index
    }

    fn save_snapshot(&self, out: &mut dyn std::io::Write) -> std::io::Result<()> {
        out.write_all(&self.snapshot())
    }

    fn restore_snapshot(&mut self, image: &mut dyn std::io::Read) -> Result<(), DecodeError> {
        let mut bytes = Vec::new();
        image.read_to_end(&mut bytes).map_err(|_| DecodeError("the snapshot image could not be read"))?;
        *self = KvStore::restore(&bytes)?;
        Ok(())
    }
}

const SNAPSHOT_MAGIC: &[u8] = b"RKVSNAP1";
const OP_SET: u8 = 1;
const OP_DELETE: u8 = 2;

impl Command {
    /// A set without a session.
    pub fn set(key: impl Into<String>, value: impl Into<String>) -> Command {
        Command { session: None, op: Op::Set { key: key.into(), value: value.into() } }
    }

    /// A delete without a session.
    pub fn delete(key: impl Into<String>) -> Command {
        Command { session: None, op: Op::Delete { key: key.into() } }
    }

    /// The same command stamped with a session.
    pub fn with_session(mut self, client_id: u64, seq: u64) -> Command {
        self.session = Some(Session { client_id, seq });
        self
    }

    /// The key the command writes.
    pub fn key(&self) -> &str {
        match &self.op {
            Op::Set { key, .. } | Op::Delete { key } => key,
        }
    }

    /// Binary encoding for the log.
    pub fn encode(&self) -> Vec<u8> {
        let (tag, key, value) = match &self.op {
            Op::Set { key, value } => (OP_SET, key, Some(value)),
            Op::Delete { key } => (OP_DELETE, key, None),
        };
        let mut out = Vec::with_capacity(32 + key.len() + value.map_or(0, |v| v.len()));
        out.push(tag);
        match self.session {
            None => out.push(0),
            Some(session) => {
                out.push(1);
                put_u64(&mut out, session.client_id);
                put_u64(&mut out, session.seq);
            }
        }
        put_bytes_u32_len(&mut out, key.as_bytes());
        if let Some(value) = value {
            put_bytes_u32_len(&mut out, value.as_bytes());
        }
        out
    }

    /// Decodes [`Command::encode`] bytes.
    pub fn decode(bytes: &[u8]) -> Result<Command, DecodeError> {
        let mut reader = Reader::new(bytes);
        let tag = reader.u8()?;
        let session = match reader.u8()? {
            0 => None,
            1 => Some(Session { client_id: reader.u64()?, seq: reader.u64()? }),
            _ => return Err(DecodeError("bad session flag")),
        };
        let key = reader.string_u32_len()?;
        let op = match tag {
            OP_SET => Op::Set { key, value: reader.string_u32_len()? },
            OP_DELETE => Op::Delete { key },
            _ => return Err(DecodeError("unknown operation")),
        };
        if !reader.is_done() {
            return Err(DecodeError("trailing bytes after command"));
        }
        Ok(Command { session, op })
    }
}

fn encode_result(result: Result<(), KvError>) -> u8 {
    match result {
        Ok(()) => 0,
        Err(KvError::KeyEmpty) => 1,
        Err(KvError::KeyNotFound) => 2,
        Err(KvError::SessionExpired) => 3,
        Err(KvError::BadCommand) => 4,
    }
}

fn decode_result(byte: u8) -> Result<Result<(), KvError>, DecodeError> {
    Ok(match byte {
        0 => Ok(()),
        1 => Err(KvError::KeyEmpty),
        2 => Err(KvError::KeyNotFound),
        3 => Err(KvError::SessionExpired),
        4 => Err(KvError::BadCommand),
        _ => return Err(DecodeError("bad result code")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::Term;
    use proptest::prelude::*;

    fn entry(index: u64, command: &Command) -> Entry {
        Entry { term: Term(1), index: LogIndex(index), payload: Payload::Command(command.encode()) }
    }

    #[test]
    fn set_get_delete_and_their_errors() {
        let mut kv = KvStore::default();
        assert_eq!(kv.apply_entry(&entry(1, &Command::set("a", "1"))).unwrap().result, Ok(()));
        assert_eq!(kv.get("a"), Ok("1"));
        assert_eq!(kv.get(""), Err(KvError::KeyEmpty));
        assert_eq!(kv.get("b"), Err(KvError::KeyNotFound));
        assert_eq!(kv.apply_entry(&entry(2, &Command::set("", "x"))).unwrap().result, Err(KvError::KeyEmpty));
        assert_eq!(kv.apply_entry(&entry(3, &Command::delete("b"))).unwrap().result, Err(KvError::KeyNotFound));
        assert_eq!(kv.apply_entry(&entry(4, &Command::delete("a"))).unwrap().result, Ok(()));
        assert_eq!(kv.get("a"), Err(KvError::KeyNotFound));
        assert_eq!(kv.applied_index(), LogIndex(4));
    }

    #[test]
    fn a_retried_write_is_applied_once_and_returns_the_first_result() {
        let mut kv = KvStore::default();
        let first = Command::set("k", "v1").with_session(7, 1);
        assert_eq!(kv.apply_entry(&entry(1, &first)).unwrap(), ApplyResult { result: Ok(()), duplicate: false });
        let other = Command::set("k", "v2").with_session(8, 1);
        kv.apply_entry(&entry(2, &other));
        // The retry of client 7's first write lands after client 8's write: it must not undo it.
        let retry = kv.apply_entry(&entry(3, &first)).unwrap();
        assert_eq!(retry, ApplyResult { result: Ok(()), duplicate: true });
        assert_eq!(kv.get("k"), Ok("v2"));
        let stale = Command::delete("k").with_session(8, 0);
        assert_eq!(kv.apply_entry(&entry(4, &stale)).unwrap().result, Err(KvError::SessionExpired));
        assert_eq!(kv.get("k"), Ok("v2"));
    }

    #[test]
    fn sessions_are_bounded_and_the_oldest_is_evicted() {
        let mut kv = KvStore::new(2);
        for (index, client) in [(1, 10), (2, 20), (3, 10), (4, 30)] {
            kv.apply_entry(&entry(index, &Command::set("k", "v").with_session(client, index)));
        }
        assert_eq!(kv.sessions_len(), 2);
        // Client 20 wrote last at index 2, the oldest: it was forgotten.
        assert!(!kv.sessions.contains_key(&20));
        assert!(kv.sessions.contains_key(&10) && kv.sessions.contains_key(&30));
    }

    #[test]
    fn noop_entries_only_advance_the_applied_index() {
        let mut kv = KvStore::default();
        let noop = Entry { term: Term(1), index: LogIndex(1), payload: Payload::Noop };
        assert_eq!(kv.apply_entry(&noop), None);
        assert_eq!(kv.applied_index(), LogIndex(1));
        assert!(kv.is_empty());
    }

    #[test]
    #[should_panic(expected = "in order")]
    fn applying_out_of_order_panics() {
        let mut kv = KvStore::default();
        kv.apply_entry(&entry(2, &Command::set("a", "1")));
    }

    #[test]
    fn corrupt_bytes_are_rejected() {
        assert!(KvStore::restore(b"nope").is_err());
        assert!(Command::decode(&[9, 0, 0, 0, 0, 0]).is_err());
        let mut bytes = Command::set("a", "b").encode();
        bytes.pop();
        assert_eq!(Command::decode(&bytes), Err(DecodeError("truncated")));
    }

    fn arb_command() -> impl Strategy<Value = Command> {
        let key = "[a-d]{0,2}";
        let op = prop_oneof![
            (key, "[a-z]{0,4}").prop_map(|(key, value)| Op::Set { key, value }),
            key.prop_map(|key| Op::Delete { key }),
        ];
        let session = proptest::option::of((0u64..5, 0u64..6).prop_map(|(client_id, seq)| Session { client_id, seq }));
        (session, op).prop_map(|(session, op)| Command { session, op })
    }

    proptest! {
        #[test]
        fn command_encoding_round_trips(command in arb_command()) {
            prop_assert_eq!(Command::decode(&command.encode()), Ok(command));
        }

        #[test]
        fn snapshot_restore_round_trips_and_continues_identically(
            before in proptest::collection::vec(arb_command(), 0..40),
            after in proptest::collection::vec(arb_command(), 0..20),
        ) {
            let mut original = KvStore::new(3);
            for (i, command) in before.iter().enumerate() {
                original.apply_entry(&entry(i as u64 + 1, command));
            }
            let bytes = original.snapshot();
            let mut restored = KvStore::restore(&bytes).unwrap();
            prop_assert_eq!(restored.snapshot(), bytes.clone());
            prop_assert_eq!(restored.sorted_pairs(), original.sorted_pairs());
            let base = before.len() as u64;
            for (i, command) in after.iter().enumerate() {
                let index = base + i as u64 + 1;
                let a = original.apply_entry(&entry(index, command));
                let b = restored.apply_entry(&entry(index, command));
                prop_assert_eq!(a, b);
            }
            prop_assert_eq!(restored.snapshot(), original.snapshot());
        }
    }
}
