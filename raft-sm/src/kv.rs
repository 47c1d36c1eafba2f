//! The key-value state machine: ordered keys with revisions, `set`, `get`,
//! `delete`, ranges, transactions (compare-and-swap, delete-if), client
//! sessions for exactly-once writes, and a deterministic snapshot.
//!
//! Commands and snapshots use a compact binary encoding (length-prefixed fields,
//! little-endian integers) so that the replication and WAL hot paths never parse
//! JSON; the client API stays JSON in the node.
//!
//! **Revisions.** Keys are kept in byte order. The store has one revision, 0 when
//! empty, that grows by one with every command that changes something (a
//! transaction's writes all share one revision); commands that change nothing
//! (a delete of a missing key, a failed compare with an empty failure branch, an
//! error) leave it. Each key carries its `create_revision`, `mod_revision` and
//! `version` (changes since creation), as etcd's do. A delete forgets the key: a
//! later put creates it anew (version 1).
//!
//! **History and watch** ([`history`]): every change to a key is kept as a
//! [`WatchEvent`] in a bounded window, in revision order. Watchers read from it
//! ([`Query::Watch`]) from any revision after [`KvStore::compacted_revision`],
//! and ranges read at any revision from the compacted one on.
//!
//! **Leases** ([`lease`]): grant, keep-alive and revoke are commands; keys attach
//! to a lease on a put and are deleted, through the log, when it is revoked or
//! expires. Only the leader reads a clock, through [`KvStore::leader_duties`],
//! which the host calls; it proposes [`Op::LeaseExpire`] when a lease's TTL has
//! passed since its last keep-alive (or since the leader's term began).
//!
//! **Sessions.** A write may carry a [`Session`] (client id, sequence number). The
//! store remembers, per client, the highest sequence number applied and its result.
//! A command whose sequence number equals the remembered one is a retry: it is not
//! applied again and returns the first result (for a transaction: its revision,
//! whether the compares held and how many keys it deleted, not the ranges it
//! read). An older sequence number is answered [`KvError::SessionExpired`]. At most
//! `sessions_max` clients are remembered; when a new client would exceed that, the
//! client whose last write is oldest (lowest log index, then lowest id) is
//! forgotten. A forgotten client's late retry would apply again, so
//! `sessions_max` should exceed the number of concurrently active clients.

pub mod history;
mod key_map;
pub mod lease;
mod txn;

pub use history::{EventKind, SharedEvent, WatchEvent, HISTORY_BYTES_MAX_DEFAULT, HISTORY_EVENTS_MAX_DEFAULT};
pub use lease::{Lease, LEASE_EXPIRE_RETRY_MS, LEASE_TTL_S_MAX};

pub use txn::{
    prefix_end, Compare, CompareOp, CompareTarget, KeyRange, KeyValue, OpResponse, RangeRequest, RangeResult, Txn,
    TxnOp, TXN_OPS_MAX,
};

use crate::codec::{put_bytes_u32_len, put_u64, ImageWriter, Reader};
use crate::types::{Entry, LogIndex, Payload, Term};
use hashbrown::HashMap;
use history::History;
use key_map::KeyMap;
use lease::Leases;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::Arc;

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
#[non_exhaustive]
pub enum Op {
    /// Set `key` to `value`.
    Set {
        /// The key.
        key: String,
        /// The value.
        value: String,
    },
    /// Remove `key` ([`KvError::KeyNotFound`] when it is absent).
    Delete {
        /// The key.
        key: String,
    },
    /// Remove every key of a range (none is not an error).
    DeleteRange(KeyRange),
    /// A transaction.
    Txn(Txn),
    /// Set `key` to `value` attached to lease `lease` (0: none, as [`Op::Set`]).
    /// A later put without a lease detaches the key.
    Put {
        /// The key.
        key: String,
        /// The value.
        value: String,
        /// The lease ([`KvError::LeaseNotFound`] when it is not held).
        lease: u64,
    },
    /// Grant lease `id` (0: the store picks one) with a TTL of `ttl_s` seconds.
    LeaseGrant {
        /// The lease's id, or 0.
        id: u64,
        /// Time to live in seconds, 1..=[`LEASE_TTL_S_MAX`].
        ttl_s: u64,
    },
    /// Renew lease `id` for another TTL (measured by the leader's clock).
    LeaseKeepAlive {
        /// The lease.
        id: u64,
    },
    /// Revoke lease `id`: delete it and its keys.
    LeaseRevoke {
        /// The lease.
        id: u64,
    },
    /// Proposed by the leader only: lease `id` ran out of time. Applies only if
    /// the lease still has `renewals` keep-alives (none was applied since the
    /// leader decided); then it deletes the lease and its keys.
    LeaseExpire {
        /// The lease.
        id: u64,
        /// Its renewal count when the leader decided.
        renewals: u64,
        /// The leader's clock when it decided (for audits and checkers; never
        /// read by the state machine).
        decided_at_ms: u64,
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
#[non_exhaustive]
pub enum KvError {
    /// The key is empty.
    KeyEmpty,
    /// The key does not exist.
    KeyNotFound,
    /// The command's sequence number is older than the client's last applied one.
    SessionExpired,
    /// The log entry does not decode as a command.
    BadCommand,
    /// A transaction's comparisons did not all hold: its failure branch ran
    /// (this is the summary in [`ApplyResult::result`]; the branch's results are
    /// in [`ApplyResult::output`]).
    CompareFailed,
    /// The revision asked for is older than the current one; no history is kept.
    Compacted,
    /// The revision asked for is newer than the current one.
    FutureRevision,
    /// A transaction holds more than [`TXN_OPS_MAX`] comparisons and operations.
    TxnTooLarge,
    /// The lease is not held (never granted, revoked, or expired).
    LeaseNotFound,
    /// A grant asked for the id of a lease already held.
    LeaseExists,
    /// A grant's TTL is 0 or above [`LEASE_TTL_S_MAX`].
    LeaseTtlInvalid,
}

impl fmt::Display for KvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = match self {
            KvError::KeyEmpty => "key is empty",
            KvError::KeyNotFound => "key not found",
            KvError::SessionExpired => "sequence number is older than the client's last write",
            KvError::BadCommand => "log entry is not a valid command",
            KvError::CompareFailed => "the transaction's comparisons did not all hold",
            KvError::Compacted => "the revision is older than the history window (compacted)",
            KvError::FutureRevision => "the revision is newer than the current one",
            KvError::TxnTooLarge => "the transaction holds too many comparisons and operations",
            KvError::LeaseNotFound => "lease not found",
            KvError::LeaseExists => "a lease with this id is already granted",
            KvError::LeaseTtlInvalid => "the lease TTL must be between 1 second and one year",
        };
        f.write_str(text)
    }
}

impl std::error::Error for KvError {}

/// What a command did, beyond its summary result.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Applied {
    /// The store's revision after the command.
    pub revision: u64,
    /// For a transaction, whether its comparisons held (true for other commands).
    pub succeeded: bool,
    /// Keys deleted.
    pub deleted: u64,
    /// A transaction's per-operation results, in order (empty for a retry).
    pub responses: Vec<OpResponse>,
    /// For a lease grant, keep-alive or revoke: the lease's id (0 otherwise).
    pub lease_id: u64,
    /// For a lease grant or keep-alive: its TTL in seconds.
    pub ttl_s: u64,
    /// The changes this command made, one per key, in order (empty for a retry).
    pub events: Vec<SharedEvent>,
}

/// The result of applying one command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApplyResult {
    /// The summary: `Ok` when it applied (for a transaction: its comparisons
    /// held), else why not (`CompareFailed`: the failure branch ran).
    pub result: Result<(), KvError>,
    /// The command was a retry and was not applied again.
    pub duplicate: bool,
    /// The details.
    pub output: Applied,
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

/// A read served by the state machine (after ReadIndex, or locally when stale).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Query {
    /// One key's value.
    Get(String),
    /// A range.
    Range(RangeRequest),
    /// Changes from the history window.
    Watch(WatchRequest),
    /// A lease's TTL and keys.
    Lease(u64),
    /// Every lease's id, in order.
    Leases,
}

/// A [`Query`]'s answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum QueryOutput {
    /// The value, or why there is none.
    Value(Result<String, KvError>),
    /// The range, or why it could not be read.
    Range(Result<RangeResult, KvError>),
    /// The changes.
    Watch(WatchBatch),
    /// The lease, or [`KvError::LeaseNotFound`].
    Lease(Result<LeaseInfo, KvError>),
    /// The lease ids, in order, and the store's revision when read.
    Leases {
        /// The ids.
        ids: Vec<u64>,
        /// The revision.
        revision: u64,
    },
}

/// Which changes a watcher wants, from where.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct WatchRequest {
    /// The keys.
    pub range: KeyRange,
    /// The first revision wanted (0: from the next change on).
    pub start_revision: u64,
    /// About this many events at most (a revision is never split).
    pub events_max: usize,
}

/// Changes from the history window.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WatchBatch {
    /// The start revision is at or below `compact_revision`: its events are gone
    /// and `events` is empty.
    pub compacted: bool,
    /// The newest revision whose events were dropped from the window.
    pub compact_revision: u64,
    /// The matching events, in revision order.
    pub events: Vec<SharedEvent>,
    /// Where the watcher continues: every matching change before it is in
    /// `events` (or in earlier batches).
    pub next_revision: u64,
    /// The store's revision when read.
    pub revision: u64,
}

/// A lease as [`Query::Lease`] shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeaseInfo {
    /// The lease's id.
    pub id: u64,
    /// Its TTL in seconds.
    pub ttl_s: u64,
    /// Milliseconds left on the leader's clock (`None` on a follower).
    pub remaining_ms: Option<u64>,
    /// Its keys, in order.
    pub keys: Vec<String>,
    /// The store's revision when read.
    pub revision: u64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct SessionRecord {
    seq: u64,
    result: Result<(), KvError>,
    revision: u64,
    succeeded: bool,
    deleted: u64,
    lease_id: u64,
    ttl_s: u64,
    last_index: LogIndex,
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Record {
    value: String,
    create_revision: u64,
    mod_revision: u64,
    version: u64,
    lease: u64,
}

/// The replicated key-value map.
#[derive(Clone, Debug)]
pub struct KvStore {
    data: KeyMap<Record>,
    revision: u64,
    sessions: HashMap<u64, SessionRecord>,
    /// (last_index, client_id) of every session: the eviction order.
    session_age: BTreeSet<(LogIndex, u64)>,
    sessions_max: usize,
    applied_index: LogIndex,
    leases: Leases,
    history: History,
    /// Events of the command being applied (moved into its [`Applied`]).
    pending_events: Vec<SharedEvent>,
    /// The term of the last entry applied (volatile; only the
    /// `WatchSkipsAfterLeaderChange` mutant reads it).
    last_term: Term,
    /// Deliberate bugs for testing the simulator's checkers (mutants only).
    #[cfg(feature = "mutants")]
    mutant: Option<crate::Mutant>,
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
            data: KeyMap::default(),
            revision: 0,
            sessions: HashMap::new(),
            session_age: BTreeSet::new(),
            sessions_max,
            applied_index: LogIndex(0),
            leases: Leases::default(),
            history: History::default(),
            pending_events: Vec::new(),
            last_term: Term(0),
            #[cfg(feature = "mutants")]
            mutant: None,
        }
    }

    /// The same store with a deliberate bug (for the simulator's mutation suite).
    #[cfg(feature = "mutants")]
    pub fn with_mutant(mut self, mutant: Option<crate::Mutant>) -> KvStore {
        self.mutant = mutant;
        self.leases.ignore_keepalives = mutant == Some(crate::Mutant::LeaseKeepAliveIgnored);
        self
    }

    fn mutant_is(&self, _mutant: crate::Mutant) -> bool {
        #[cfg(feature = "mutants")]
        {
            self.mutant == Some(_mutant)
        }
        #[cfg(not(feature = "mutants"))]
        {
            false
        }
    }

    /// A store whose history window holds at most `events_max` events and
    /// `bytes_max` bytes (the defaults are [`HISTORY_EVENTS_MAX_DEFAULT`] and
    /// [`HISTORY_BYTES_MAX_DEFAULT`]). Every replica must use the same bounds.
    pub fn with_history_bounds(mut self, events_max: usize, bytes_max: usize) -> KvStore {
        assert!(self.history == History::default(), "set the history bounds on an empty store");
        self.history = History::new(events_max, bytes_max);
        self
    }

    /// The newest revision whose changes left the history window (0: none
    /// did): watches start after it, ranges read at it or later.
    pub fn compacted_revision(&self) -> u64 {
        self.history.compacted_revision()
    }

    /// The leases held, by id.
    pub fn leases(&self) -> &BTreeMap<u64, Lease> {
        &self.leases.table
    }

    /// The leader's duties at `now_ms`: the encoded commands it should propose
    /// (expired leases). The host calls this after every step, with the term
    /// this node leads (`None` on a follower, which then forgets every deadline).
    pub fn leader_duties(&mut self, now_ms: u64, leader_term: Option<Term>) -> Vec<Vec<u8>> {
        self.leases
            .leader_duties(now_ms, leader_term)
            .into_iter()
            .map(|due| {
                let op = Op::LeaseExpire { id: due.id, renewals: due.renewals, decided_at_ms: due.decided_at_ms };
                Command { session: None, op }.encode()
            })
            .collect()
    }

    /// When [`KvStore::leader_duties`] next has something to do.
    pub fn next_duty_ms(&self) -> Option<u64> {
        self.leases.next_duty_ms()
    }

    /// The last log index applied.
    pub fn applied_index(&self) -> LogIndex {
        self.applied_index
    }

    /// The store's revision: the number of commands that changed something.
    pub fn revision(&self) -> u64 {
        self.revision
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
        self.data.get(key).map(|record| record.value.as_str()).ok_or(KvError::KeyNotFound)
    }

    /// Reads a key with its revisions.
    pub fn get_kv(&self, key: &str) -> Option<KeyValue> {
        self.data.get(key).map(|record| key_value(key, record, false))
    }

    /// Answers a query.
    pub fn query(&self, query: &Query) -> QueryOutput {
        match query {
            Query::Get(key) => QueryOutput::Value(self.get(key).map(str::to_owned)),
            Query::Range(request) => QueryOutput::Range(self.range(request)),
            Query::Watch(request) => QueryOutput::Watch(self.watch(request)),
            Query::Lease(id) => QueryOutput::Lease(self.lease_info(*id)),
            Query::Leases => {
                QueryOutput::Leases { ids: self.leases.table.keys().copied().collect(), revision: self.revision }
            }
        }
    }

    /// Reads changes from the history window.
    pub fn watch(&self, request: &WatchRequest) -> WatchBatch {
        let compact_revision = self.history.compacted_revision();
        let start = if request.start_revision == 0 { self.revision + 1 } else { request.start_revision };
        let mut batch = WatchBatch { compact_revision, revision: self.revision, ..WatchBatch::default() };
        if start <= compact_revision {
            batch.compacted = true;
            batch.next_revision = start;
            return batch;
        }
        let range = &request.range;
        let matches = |key: &str| {
            if range.is_single() {
                key == range.key
            } else {
                key >= range.key.as_str() && range.before_end(key)
            }
        };
        let (events, cut_at) = self.history.since(start, matches, request.events_max.max(1));
        batch.events = events;
        batch.next_revision = cut_at.unwrap_or(start.max(self.revision + 1));
        batch
    }

    /// A lease's TTL, keys, and (on the leader) time left.
    pub fn lease_info(&self, id: u64) -> Result<LeaseInfo, KvError> {
        let lease = self.leases.table.get(&id).ok_or(KvError::LeaseNotFound)?;
        Ok(LeaseInfo {
            id,
            ttl_s: lease.ttl_s,
            remaining_ms: self.leases.deadline_ms(id).map(|deadline| deadline.saturating_sub(self.leases_now_ms())),
            keys: lease.keys.iter().cloned().collect(),
            revision: self.revision,
        })
    }

    fn leases_now_ms(&self) -> u64 {
        self.leases.now_ms()
    }

    /// Reads a range at the current revision, or at a past one inside the
    /// history window.
    pub fn range(&self, request: &RangeRequest) -> Result<RangeResult, KvError> {
        if request.revision > self.revision {
            return Err(KvError::FutureRevision);
        }
        if request.revision != 0 && request.revision < self.history.compacted_revision() {
            return Err(KvError::Compacted);
        }
        let range = &request.range;
        if range.is_single() && range.key.is_empty() {
            return Err(KvError::KeyEmpty);
        }
        if request.revision != 0 && request.revision < self.revision {
            return Ok(self.range_in_past(request));
        }
        let mut result = RangeResult { revision: self.revision, ..RangeResult::default() };
        let mut take = |key: &str, record: &Record| {
            result.count += 1;
            if request.count_only {
                return;
            }
            if request.limit != 0 && result.kvs.len() as u64 >= request.limit {
                result.more = true;
                return;
            }
            result.kvs.push(key_value(key, record, request.keys_only));
        };
        if range.is_single() {
            if let Some(record) = self.data.get(range.key.as_str()) {
                take(&range.key, record);
            }
        } else {
            for (key, record) in self.data.range_from(&range.key) {
                if !range.before_end(key) {
                    break;
                }
                take(key, record);
            }
        }
        Ok(result)
    }

    /// A range at a past revision: the range's keys now, with every change
    /// after the revision undone, newest first.
    fn range_in_past(&self, request: &RangeRequest) -> RangeResult {
        let range = &request.range;
        let in_range = |key: &str| {
            if range.is_single() {
                key == range.key
            } else {
                key >= range.key.as_str() && range.before_end(key)
            }
        };
        let mut view: BTreeMap<String, KeyValue> = BTreeMap::new();
        let current = RangeRequest { limit: 0, count_only: false, keys_only: false, revision: 0, ..request.clone() };
        for kv in self.range(&current).expect("validated by the caller").kvs {
            view.insert(kv.key.clone(), kv);
        }
        for event in self.history.newer_than(request.revision) {
            if !in_range(&event.kv.key) {
                continue;
            }
            match &event.prev {
                Some(prev) => view.insert(prev.key.clone(), prev.clone()),
                None => view.remove(&event.kv.key),
            };
        }
        let mut result = RangeResult { revision: request.revision, ..RangeResult::default() };
        for (_, mut kv) in view {
            result.count += 1;
            if request.count_only {
                continue;
            }
            if request.limit != 0 && result.kvs.len() as u64 >= request.limit {
                result.more = true;
                continue;
            }
            if request.keys_only {
                kv.value.clear();
            }
            result.kvs.push(kv);
        }
        result
    }

    /// All pairs, sorted by key (for tests and checkers).
    pub fn sorted_pairs(&self) -> Vec<(String, String)> {
        self.data.iter().map(|(k, r)| (k.to_owned(), r.value.clone())).collect()
    }

    /// Applies one committed log entry. Must be called for every entry, in index
    /// order; no-op entries only advance the applied index and return `None`.
    pub fn apply_entry(&mut self, entry: &Entry) -> Option<ApplyResult> {
        assert_eq!(entry.index, self.applied_index.next(), "entries must be applied in order, each exactly once");
        self.applied_index = entry.index;
        match &entry.payload {
            Payload::Noop | Payload::Membership(_) => None,
            Payload::Command(bytes) => Some(match Command::decode(bytes) {
                Ok(command) => {
                    let term_changed = entry.term != self.last_term;
                    self.last_term = entry.term;
                    let applied = self.apply_command(entry.index, command);
                    self.record_history(&applied.output.events, term_changed);
                    applied
                }
                Err(_) => ApplyResult {
                    result: Err(KvError::BadCommand),
                    duplicate: false,
                    output: Applied { revision: self.revision, ..Applied::default() },
                },
            }),
        }
    }

    fn apply_command(&mut self, index: LogIndex, mut command: Command) -> ApplyResult {
        if let Some(session) = command.session {
            if let Some(record) = self.sessions.get(&session.client_id) {
                let cas_twice = self.mutant_is(crate::Mutant::CasAppliedTwice) && matches!(command.op, Op::Txn(_));
                if session.seq == record.seq && !cas_twice {
                    let output = Applied {
                        revision: record.revision,
                        succeeded: record.succeeded,
                        deleted: record.deleted,
                        lease_id: record.lease_id,
                        ttl_s: record.ttl_s,
                        ..Applied::default()
                    };
                    return ApplyResult { result: record.result, duplicate: true, output };
                }
                if session.seq < record.seq {
                    let output = Applied { revision: self.revision, ..Applied::default() };
                    return ApplyResult { result: Err(KvError::SessionExpired), duplicate: true, output };
                }
            }
        }
        let (result, output) = self.apply_op(&mut command.op);
        if let Some(session) = command.session {
            self.remember(session, result, &output, index);
        }
        ApplyResult { result, duplicate: false, output }
    }

    /// Takes `op` mutably only to move its values into the store (the decoded
    /// command is dropped after it).
    fn apply_op(&mut self, op: &mut Op) -> (Result<(), KvError>, Applied) {
        let next = self.revision + 1;
        let mut changed = false;
        let mut output = Applied { succeeded: true, ..Applied::default() };
        let result = match op {
            Op::Set { key, value } => {
                if key.is_empty() {
                    Err(KvError::KeyEmpty)
                } else {
                    self.put(key, std::mem::take(value), 0, next);
                    changed = true;
                    Ok(())
                }
            }
            Op::Put { key, value, lease } => {
                if key.is_empty() {
                    Err(KvError::KeyEmpty)
                } else if *lease != 0 && !self.leases.table.contains_key(lease) {
                    Err(KvError::LeaseNotFound)
                } else {
                    self.put(key, std::mem::take(value), *lease, next);
                    changed = true;
                    Ok(())
                }
            }
            Op::Delete { key } => {
                if key.is_empty() {
                    Err(KvError::KeyEmpty)
                } else if self.remove(key, next) {
                    changed = true;
                    output.deleted = 1;
                    Ok(())
                } else {
                    Err(KvError::KeyNotFound)
                }
            }
            Op::LeaseGrant { id, ttl_s } => {
                let id = if *id == 0 { self.leases.next_id() } else { *id };
                if *ttl_s == 0 || *ttl_s > LEASE_TTL_S_MAX {
                    Err(KvError::LeaseTtlInvalid)
                } else if self.leases.table.contains_key(&id) {
                    Err(KvError::LeaseExists)
                } else {
                    self.leases.granted(id, *ttl_s);
                    output.lease_id = id;
                    output.ttl_s = *ttl_s;
                    Ok(())
                }
            }
            Op::LeaseKeepAlive { id } => match self.leases.table.get_mut(id) {
                Some(lease) => {
                    lease.renewals += 1;
                    output.lease_id = *id;
                    output.ttl_s = lease.ttl_s;
                    self.leases.renewed(*id, true);
                    Ok(())
                }
                None => Err(KvError::LeaseNotFound),
            },
            Op::LeaseRevoke { id } => {
                if self.leases.table.contains_key(id) {
                    output.lease_id = *id;
                    if self.mutant_is(crate::Mutant::LeaseRevokeLeavesKey) {
                        self.leave_first_key(*id);
                    }
                    output.deleted = self.drop_lease(*id, next);
                    changed = output.deleted > 0;
                    Ok(())
                } else {
                    Err(KvError::LeaseNotFound)
                }
            }
            Op::LeaseExpire { id, renewals, .. } => match self.leases.table.get(id) {
                // A keep-alive applied after the leader decided: the decision is void.
                Some(lease) if lease.renewals != *renewals => Ok(()),
                Some(_) => {
                    output.lease_id = *id;
                    output.deleted = self.drop_lease(*id, next);
                    changed = output.deleted > 0;
                    Ok(())
                }
                None => Err(KvError::LeaseNotFound),
            },
            Op::DeleteRange(range) => {
                if range.is_single() && range.key.is_empty() {
                    Err(KvError::KeyEmpty)
                } else {
                    output.deleted = self.delete_range(range, next);
                    changed = output.deleted > 0;
                    Ok(())
                }
            }
            Op::Txn(txn) => self.apply_txn(txn, next, &mut changed, &mut output),
        };
        if changed {
            self.revision = next;
        }
        output.events = std::mem::take(&mut self.pending_events);
        debug_assert!(changed || output.events.is_empty(), "an event without a new revision");
        output.revision = self.revision;
        if result.is_err() && result != Err(KvError::CompareFailed) {
            output.succeeded = false;
        }
        (result, output)
    }

    fn apply_txn(&mut self, txn: &Txn, next: u64, changed: &mut bool, output: &mut Applied) -> Result<(), KvError> {
        if txn.len() > TXN_OPS_MAX {
            return Err(KvError::TxnTooLarge);
        }
        let invalid = |op: &TxnOp| match op {
            TxnOp::Put { key, .. } => key.is_empty(),
            TxnOp::Delete(range) => range.is_single() && range.key.is_empty(),
            TxnOp::Range(request) => request.range.is_single() && request.range.key.is_empty(),
        };
        if txn.compare.iter().any(|c| c.key.is_empty()) || txn.success.iter().chain(&txn.failure).any(invalid) {
            return Err(KvError::KeyEmpty);
        }
        let bad_revision = |op: &TxnOp| match op {
            TxnOp::Range(request) => self.range_revision_error(request.revision),
            _ => None,
        };
        if let Some(error) = txn.success.iter().chain(&txn.failure).find_map(bad_revision) {
            return Err(error);
        }
        let holds = txn.compare.iter().all(|compare| self.compare(compare));
        output.succeeded = holds;
        let branch = if holds { &txn.success } else { &txn.failure };
        // Like a put outside a transaction, one to a lease not held fails;
        // checked before anything runs, so the branch changes nothing then.
        let unknown_lease = |op: &TxnOp| matches!(op, TxnOp::Put { lease, .. } if *lease != 0 && !self.leases.table.contains_key(lease));
        if branch.iter().any(unknown_lease) {
            return Err(KvError::LeaseNotFound);
        }
        for op in branch {
            let response = match op {
                TxnOp::Put { key, value, lease } => {
                    self.put(key, value.clone(), *lease, next);
                    *changed = true;
                    OpResponse::Put
                }
                TxnOp::Delete(range) => {
                    let deleted = self.delete_range(range, next);
                    *changed |= deleted > 0;
                    output.deleted += deleted;
                    OpResponse::Delete(deleted)
                }
                TxnOp::Range(request) => {
                    let mut request = request.clone();
                    request.revision = 0;
                    let mut result = self.range(&request).expect("validated above");
                    result.revision = if *changed { next } else { self.revision };
                    OpResponse::Range(result)
                }
            };
            output.responses.push(response);
        }
        if holds {
            Ok(())
        } else {
            Err(KvError::CompareFailed)
        }
    }

    fn range_revision_error(&self, revision: u64) -> Option<KvError> {
        if revision > self.revision {
            Some(KvError::FutureRevision)
        } else if revision != 0 && revision < self.revision {
            Some(KvError::Compacted)
        } else {
            None
        }
    }

    fn compare(&self, compare: &Compare) -> bool {
        let record = self.data.get(compare.key.as_str());
        let ordering = match (&compare.target, record) {
            (CompareTarget::Value(_), None) => return false,
            (CompareTarget::Value(value), Some(record)) => record.value.as_bytes().cmp(value.as_bytes()),
            (CompareTarget::Version(n), _) => record.map_or(0, |r| r.version).cmp(n),
            (CompareTarget::CreateRevision(n), _) => record.map_or(0, |r| r.create_revision).cmp(n),
            (CompareTarget::ModRevision(n), _) => record.map_or(0, |r| r.mod_revision).cmp(n),
        };
        match compare.op {
            CompareOp::Equal => ordering.is_eq(),
            CompareOp::NotEqual => ordering.is_ne(),
            CompareOp::Greater => ordering.is_gt(),
            CompareOp::Less => ordering.is_lt(),
        }
    }

    /// Every change to a key goes through `put` or `remove`: they keep the
    /// lease key sets and record the change's event.
    fn put(&mut self, key: &str, value: String, lease: u64, revision: u64) {
        // One lookup of the key: the previous state is taken out of its record
        // (the old value moves into the event, it is not copied).
        let (prev, kv) = match self.data.get_mut(key) {
            Some(record) => {
                let prev = KeyValue {
                    key: key.to_owned(),
                    value: std::mem::replace(&mut record.value, value),
                    create_revision: record.create_revision,
                    mod_revision: record.mod_revision,
                    version: record.version,
                    lease: record.lease,
                };
                record.mod_revision = revision;
                record.version += 1;
                record.lease = lease;
                (Some(prev), key_value(key, record, false))
            }
            None => {
                let record = Record { value, create_revision: revision, mod_revision: revision, version: 1, lease };
                let kv = key_value(key, &record, false);
                self.data.insert_new(key, record);
                (None, kv)
            }
        };
        let old_lease = prev.as_ref().map_or(0, |kv| kv.lease);
        if old_lease != lease {
            if let Some(old) = self.leases.table.get_mut(&old_lease) {
                old.keys.remove(key);
            }
        }
        if lease != 0 {
            if let Some(new) = self.leases.table.get_mut(&lease) {
                new.keys.insert(key.to_owned());
            }
        }
        self.pending_events.push(Arc::new(WatchEvent { kind: EventKind::Put, kv, prev }));
    }

    fn remove(&mut self, key: &str, revision: u64) -> bool {
        let Some(record) = self.data.remove(key) else {
            return false;
        };
        if let Some(lease) = self.leases.table.get_mut(&record.lease) {
            lease.keys.remove(key);
        }
        let prev = key_value(key, &record, false);
        let kv = KeyValue { key: key.to_owned(), mod_revision: revision, ..KeyValue::default() };
        self.pending_events.push(Arc::new(WatchEvent { kind: EventKind::Delete, kv, prev: Some(prev) }));
        true
    }

    /// Deletes lease `id` and its keys; returns how many keys.
    /// The `LeaseRevokeLeavesKey` mutant: detach the lease's first key, so
    /// that dropping the lease leaves it in the store.
    fn leave_first_key(&mut self, id: u64) {
        let lease = self.leases.table.get_mut(&id).expect("the caller checked");
        if let Some(key) = lease.keys.pop_first() {
            if let Some(record) = self.data.get_mut(key.as_str()) {
                record.lease = 0;
            }
        }
    }

    fn drop_lease(&mut self, id: u64, revision: u64) -> u64 {
        let lease = self.leases.table.remove(&id).expect("the caller checked");
        self.leases.removed(id);
        for key in &lease.keys {
            let removed = self.remove(key, revision);
            debug_assert!(removed, "a lease's key exists");
        }
        lease.keys.len() as u64
    }

    fn record_history(&mut self, events: &[SharedEvent], term_changed: bool) {
        for (n, event) in events.iter().enumerate() {
            if n == 0 && term_changed && self.mutant_is(crate::Mutant::WatchSkipsAfterLeaderChange) {
                continue;
            }
            self.history.push(Arc::clone(event));
        }
    }

    fn delete_range(&mut self, range: &KeyRange, revision: u64) -> u64 {
        if range.is_single() {
            return u64::from(self.remove(&range.key.clone(), revision));
        }
        let doomed: Vec<String> = self
            .data
            .range_from(&range.key)
            .map(|(key, _)| key)
            .take_while(|key| range.before_end(key))
            .map(str::to_owned)
            .collect();
        for key in &doomed {
            self.remove(key, revision);
        }
        doomed.len() as u64
    }

    fn remember(&mut self, session: Session, result: Result<(), KvError>, output: &Applied, index: LogIndex) {
        let record = SessionRecord {
            seq: session.seq,
            result,
            revision: output.revision,
            succeeded: output.succeeded,
            deleted: output.deleted,
            lease_id: output.lease_id,
            ttl_s: output.ttl_s,
            last_index: index,
        };
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

    /// Serializes the whole state (data with revisions and leases, the
    /// revision, sessions, the lease table, the history window, applied index)
    /// deterministically: equal stores give equal bytes. The leader's lease
    /// clock is not in it (a restored node is a follower; when it leads, every
    /// lease gets a fresh TTL). The format is versioned by its magic
    /// (`RKVSNAP3`); [`KvStore::restore`] also reads the earlier ones
    /// (`RKVSNAP2`: no leases, no history; `RKVSNAP1`: no revisions either).
    pub fn snapshot(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.write_snapshot(&mut out).expect("a Vec takes every byte");
        out
    }

    /// Writes [`KvStore::snapshot`]'s bytes to `sink` in chunks (see
    /// [`crate::codec::ImageWriter`]), without building the image in memory.
    pub fn write_snapshot(&self, sink: &mut dyn std::io::Write) -> std::io::Result<()> {
        let mut image = ImageWriter::new(sink);
        let out = image.buf();
        out.extend_from_slice(SNAPSHOT_MAGIC);
        put_u64(out, self.applied_index.0);
        put_u64(out, self.sessions_max as u64);
        put_u64(out, self.revision);
        put_u64(out, self.data.len() as u64);
        for (key, record) in self.data.iter() {
            let out = image.buf();
            put_bytes_u32_len(out, key.as_bytes());
            put_bytes_u32_len(out, record.value.as_bytes());
            put_u64(out, record.create_revision);
            put_u64(out, record.mod_revision);
            put_u64(out, record.version);
            put_u64(out, record.lease);
            image.record_done()?;
        }
        put_u64(image.buf(), self.sessions.len() as u64);
        for &(last_index, client_id) in &self.session_age {
            let record = &self.sessions[&client_id];
            let out = image.buf();
            put_u64(out, client_id);
            put_u64(out, record.seq);
            put_u64(out, last_index.0);
            out.push(encode_result(record.result));
            put_u64(out, record.revision);
            out.push(u8::from(record.succeeded));
            put_u64(out, record.deleted);
            put_u64(out, record.lease_id);
            put_u64(out, record.ttl_s);
            image.record_done()?;
        }
        self.leases.encode(&mut image)?;
        self.history.encode(&mut image)?;
        image.finish()
    }

    /// Rebuilds a store from [`KvStore::snapshot`] bytes. A first-format image
    /// (no revisions) gets them deterministically: its keys in order are
    /// created at revisions 1, 2, ..., each at version 1.
    pub fn restore(bytes: &[u8]) -> Result<KvStore, DecodeError> {
        let mut reader = Reader::new(bytes);
        let magic = reader.take(SNAPSHOT_MAGIC.len())?;
        let version = match magic {
            SNAPSHOT_MAGIC => 3,
            SNAPSHOT_MAGIC_V2 => 2,
            SNAPSHOT_MAGIC_V1 => 1,
            _ => return Err(DecodeError("not a kv snapshot")),
        };
        let v2 = version >= 2;
        let v3 = version >= 3;
        let applied_index = LogIndex(reader.u64()?);
        let sessions_max = reader.u64()? as usize;
        if sessions_max == 0 {
            return Err(DecodeError("sessions_max is zero"));
        }
        let mut store = KvStore::new(sessions_max);
        store.applied_index = applied_index;
        let revision = if v2 { Some(reader.u64()?) } else { None };
        let pairs = reader.u64()?;
        let mut last: Option<String> = None;
        for n in 0..pairs {
            let key = reader.string_u32_len()?;
            let value = reader.string_u32_len()?;
            let record = if v2 {
                let (create_revision, mod_revision, version) = (reader.u64()?, reader.u64()?, reader.u64()?);
                if version == 0 || create_revision > mod_revision || Some(mod_revision) > revision {
                    return Err(DecodeError("inconsistent key revisions"));
                }
                let lease = if v3 { reader.u64()? } else { 0 };
                Record { value, create_revision, mod_revision, version, lease }
            } else {
                Record { value, create_revision: n + 1, mod_revision: n + 1, version: 1, lease: 0 }
            };
            if last.as_ref().is_some_and(|last| *last >= key) {
                return Err(DecodeError("keys out of order"));
            }
            last = Some(key.clone());
            store.data.insert_new(&key, record);
        }
        store.revision = revision.unwrap_or(pairs);
        let sessions = reader.u64()?;
        for _ in 0..sessions {
            let client_id = reader.u64()?;
            let seq = reader.u64()?;
            let last_index = LogIndex(reader.u64()?);
            let result = decode_result(reader.u8()?)?;
            let (revision, succeeded, deleted) =
                if v2 { (reader.u64()?, reader.bool()?, reader.u64()?) } else { (0, result.is_ok(), 0) };
            let (lease_id, ttl_s) = if v3 { (reader.u64()?, reader.u64()?) } else { (0, 0) };
            let record = SessionRecord { seq, result, revision, succeeded, deleted, lease_id, ttl_s, last_index };
            store.sessions.insert(client_id, record);
            store.session_age.insert((last_index, client_id));
        }
        if v3 {
            store.leases = Leases::decode(&mut reader)?;
            for (key, record) in store.data.iter() {
                if record.lease == 0 {
                    continue;
                }
                let lease = store.leases.table.get_mut(&record.lease).ok_or("a key's lease is not held")?;
                lease.keys.insert(key.to_owned());
            }
            store.history = History::decode(&mut reader)?;
            if store.history.compacted_revision() > store.revision {
                return Err(DecodeError("history compacted past the revision"));
            }
        } else {
            store.history = History::starting_after(store.revision);
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

fn key_value(key: &str, record: &Record, keys_only: bool) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: if keys_only { String::new() } else { record.value.clone() },
        create_revision: record.create_revision,
        mod_revision: record.mod_revision,
        version: record.version,
        lease: record.lease,
    }
}

/// The store as the host's state machine. Its snapshot image is
/// [`KvStore::snapshot`]'s bytes, streamed to the driver's sink in 64 KiB
/// chunks ([`KvStore::write_snapshot`]); a restore reads the image whole (the
/// store itself is held in memory).
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
        self.write_snapshot(out)
    }

    fn restore_snapshot(&mut self, image: &mut dyn std::io::Read) -> Result<(), DecodeError> {
        let mut bytes = Vec::new();
        image.read_to_end(&mut bytes).map_err(|_| DecodeError("the snapshot image could not be read"))?;
        #[cfg(feature = "mutants")]
        let mutant = self.mutant;
        *self = KvStore::restore(&bytes)?;
        #[cfg(feature = "mutants")]
        {
            *self = std::mem::take(self).with_mutant(mutant);
        }
        Ok(())
    }

    fn leader_duties(&mut self, now_ms: u64, leader_term: Option<Term>) -> Vec<Vec<u8>> {
        KvStore::leader_duties(self, now_ms, leader_term)
    }

    fn next_duty_ms(&self) -> Option<u64> {
        KvStore::next_duty_ms(self)
    }
}

const SNAPSHOT_MAGIC: &[u8] = b"RKVSNAP3";
const SNAPSHOT_MAGIC_V2: &[u8] = b"RKVSNAP2";
const SNAPSHOT_MAGIC_V1: &[u8] = b"RKVSNAP1";
const OP_SET: u8 = 1;
const OP_DELETE: u8 = 2;
const OP_DELETE_RANGE: u8 = 3;
const OP_TXN: u8 = 4;
const OP_PUT_LEASE: u8 = 5;
const OP_LEASE_GRANT: u8 = 6;
const OP_LEASE_KEEPALIVE: u8 = 7;
const OP_LEASE_REVOKE: u8 = 8;
const OP_LEASE_EXPIRE: u8 = 9;

impl Command {
    /// A set without a session.
    pub fn set(key: impl Into<String>, value: impl Into<String>) -> Command {
        Command { session: None, op: Op::Set { key: key.into(), value: value.into() } }
    }

    /// A delete without a session.
    pub fn delete(key: impl Into<String>) -> Command {
        Command { session: None, op: Op::Delete { key: key.into() } }
    }

    /// A transaction without a session.
    pub fn txn(txn: Txn) -> Command {
        Command { session: None, op: Op::Txn(txn) }
    }

    /// A range delete without a session.
    pub fn delete_range(range: KeyRange) -> Command {
        Command { session: None, op: Op::DeleteRange(range) }
    }

    /// The same command stamped with a session.
    pub fn with_session(mut self, client_id: u64, seq: u64) -> Command {
        self.session = Some(Session { client_id, seq });
        self
    }

    /// A put attached to `lease` without a session.
    pub fn put(key: impl Into<String>, value: impl Into<String>, lease: u64) -> Command {
        Command { session: None, op: Op::Put { key: key.into(), value: value.into(), lease } }
    }

    /// A command of `op` without a session.
    pub fn of(op: Op) -> Command {
        Command { session: None, op }
    }

    /// The key the command writes (a range's first key; empty for a
    /// transaction or a lease command).
    pub fn key(&self) -> &str {
        match &self.op {
            Op::Set { key, .. } | Op::Delete { key } | Op::Put { key, .. } => key,
            Op::DeleteRange(range) => &range.key,
            Op::Txn(_)
            | Op::LeaseGrant { .. }
            | Op::LeaseKeepAlive { .. }
            | Op::LeaseRevoke { .. }
            | Op::LeaseExpire { .. } => "",
        }
    }

    /// Binary encoding for the log.
    pub fn encode(&self) -> Vec<u8> {
        let (tag, key) = match &self.op {
            Op::Set { key, .. } => (OP_SET, key.as_str()),
            Op::Delete { key } => (OP_DELETE, key.as_str()),
            Op::DeleteRange(range) => (OP_DELETE_RANGE, range.key.as_str()),
            Op::Txn(_) => (OP_TXN, ""),
            Op::Put { key, .. } => (OP_PUT_LEASE, key.as_str()),
            Op::LeaseGrant { .. } => (OP_LEASE_GRANT, ""),
            Op::LeaseKeepAlive { .. } => (OP_LEASE_KEEPALIVE, ""),
            Op::LeaseRevoke { .. } => (OP_LEASE_REVOKE, ""),
            Op::LeaseExpire { .. } => (OP_LEASE_EXPIRE, ""),
        };
        let mut out = Vec::with_capacity(32 + key.len());
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
        match &self.op {
            Op::Set { value, .. } => put_bytes_u32_len(&mut out, value.as_bytes()),
            Op::Delete { .. } => {}
            Op::DeleteRange(range) => put_bytes_u32_len(&mut out, &range.range_end),
            Op::Txn(txn) => txn::encode_txn(&mut out, txn),
            Op::Put { value, lease, .. } => {
                put_bytes_u32_len(&mut out, value.as_bytes());
                put_u64(&mut out, *lease);
            }
            Op::LeaseGrant { id, ttl_s } => {
                put_u64(&mut out, *id);
                put_u64(&mut out, *ttl_s);
            }
            Op::LeaseKeepAlive { id } | Op::LeaseRevoke { id } => put_u64(&mut out, *id),
            Op::LeaseExpire { id, renewals, decided_at_ms } => {
                put_u64(&mut out, *id);
                put_u64(&mut out, *renewals);
                put_u64(&mut out, *decided_at_ms);
            }
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
            OP_DELETE_RANGE => Op::DeleteRange(KeyRange { key, range_end: reader.bytes_u32_len()?.to_vec() }),
            OP_TXN if key.is_empty() => Op::Txn(txn::decode_txn(&mut reader)?),
            OP_PUT_LEASE => Op::Put { key, value: reader.string_u32_len()?, lease: reader.u64()? },
            OP_LEASE_GRANT if key.is_empty() => Op::LeaseGrant { id: reader.u64()?, ttl_s: reader.u64()? },
            OP_LEASE_KEEPALIVE if key.is_empty() => Op::LeaseKeepAlive { id: reader.u64()? },
            OP_LEASE_REVOKE if key.is_empty() => Op::LeaseRevoke { id: reader.u64()? },
            OP_LEASE_EXPIRE if key.is_empty() => {
                Op::LeaseExpire { id: reader.u64()?, renewals: reader.u64()?, decided_at_ms: reader.u64()? }
            }
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
        Err(KvError::CompareFailed) => 5,
        Err(KvError::Compacted) => 6,
        Err(KvError::FutureRevision) => 7,
        Err(KvError::TxnTooLarge) => 8,
        Err(KvError::LeaseNotFound) => 9,
        Err(KvError::LeaseExists) => 10,
        Err(KvError::LeaseTtlInvalid) => 11,
    }
}

fn decode_result(byte: u8) -> Result<Result<(), KvError>, DecodeError> {
    Ok(match byte {
        0 => Ok(()),
        1 => Err(KvError::KeyEmpty),
        2 => Err(KvError::KeyNotFound),
        3 => Err(KvError::SessionExpired),
        4 => Err(KvError::BadCommand),
        5 => Err(KvError::CompareFailed),
        6 => Err(KvError::Compacted),
        7 => Err(KvError::FutureRevision),
        8 => Err(KvError::TxnTooLarge),
        9 => Err(KvError::LeaseNotFound),
        10 => Err(KvError::LeaseExists),
        11 => Err(KvError::LeaseTtlInvalid),
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

    /// Records the size of every write it takes.
    struct WriteSizes(Vec<usize>, Vec<u8>);

    impl std::io::Write for WriteSizes {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.push(bytes.len());
            self.1.extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_snapshot_streams_in_chunks_and_equals_the_whole_image() {
        let mut kv = KvStore::default();
        let value = "v".repeat(1000);
        for index in 1..=600u64 {
            kv.apply_entry(&entry(index, &Command::set(format!("k{}", index % 300), value.as_str())));
        }
        let mut sink = WriteSizes(Vec::new(), Vec::new());
        kv.write_snapshot(&mut sink).unwrap();
        // 300 keys and ~600 history events of ~1 KB each: well over one chunk.
        assert!(sink.0.len() > 5, "{} writes", sink.0.len());
        let largest = *sink.0.iter().max().unwrap();
        assert!(largest < ImageWriter::CHUNK_BYTES + 4096, "one write of {largest} bytes");
        assert_eq!(sink.1, kv.snapshot());
        assert_eq!(KvStore::restore(&sink.1).unwrap().snapshot(), sink.1);
    }

    #[test]
    fn a_put_reports_the_previous_state_it_replaced() {
        let mut kv = KvStore::default();
        kv.apply_entry(&entry(1, &Command::set("k", "v1")));
        let applied = kv.apply_entry(&entry(2, &Command::set("k", "v2"))).unwrap();
        let event = &applied.output.events[0];
        let prev = event.prev.as_ref().expect("k existed");
        assert_eq!((prev.value.as_str(), prev.mod_revision, prev.version), ("v1", 1, 1));
        assert_eq!((event.kv.value.as_str(), event.kv.mod_revision, event.kv.version), ("v2", 2, 2));
        assert_eq!(event.kv.create_revision, 1);
    }

    #[test]
    fn a_retried_write_is_applied_once_and_returns_the_first_result() {
        let mut kv = KvStore::default();
        let first = Command::set("k", "v1").with_session(7, 1);
        let applied = kv.apply_entry(&entry(1, &first)).unwrap();
        assert_eq!((applied.result, applied.duplicate, applied.output.revision), (Ok(()), false, 1));
        let other = Command::set("k", "v2").with_session(8, 1);
        kv.apply_entry(&entry(2, &other));
        // The retry of client 7's first write lands after client 8's write: it must not undo it.
        let retry = kv.apply_entry(&entry(3, &first)).unwrap();
        assert_eq!((retry.result, retry.duplicate, retry.output.revision), (Ok(()), true, 1));
        assert_eq!(kv.revision(), 2);
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
    fn revisions_count_changes_and_keys_carry_theirs() {
        let mut kv = KvStore::default();
        kv.apply_entry(&entry(1, &Command::set("a", "1")));
        kv.apply_entry(&entry(2, &Command::set("b", "1")));
        kv.apply_entry(&entry(3, &Command::set("a", "2")));
        // A delete of a missing key changes nothing: no new revision.
        kv.apply_entry(&entry(4, &Command::delete("zz")));
        assert_eq!(kv.revision(), 3);
        let a = kv.get_kv("a").unwrap();
        assert_eq!((a.create_revision, a.mod_revision, a.version), (1, 3, 2));
        kv.apply_entry(&entry(5, &Command::delete("a")));
        kv.apply_entry(&entry(6, &Command::set("a", "3")));
        let a = kv.get_kv("a").unwrap();
        assert_eq!((a.create_revision, a.mod_revision, a.version, kv.revision()), (5, 5, 1, 5));
    }

    #[test]
    fn ranges_are_ordered_limited_and_at_the_current_revision_only() {
        let mut kv = KvStore::default();
        for (i, key) in ["b/2", "a", "b/1", "b/3", "c"].iter().enumerate() {
            kv.apply_entry(&entry(i as u64 + 1, &Command::set(*key, "v")));
        }
        let request = RangeRequest { range: KeyRange::prefix("b/"), limit: 2, ..RangeRequest::default() };
        let result = kv.range(&request).unwrap();
        let keys: Vec<_> = result.kvs.iter().map(|kv| kv.key.as_str()).collect();
        assert_eq!((keys, result.more, result.count, result.revision), (vec!["b/1", "b/2"], true, 3, 5));
        let all = RangeRequest {
            range: KeyRange { key: String::new(), range_end: vec![0] },
            keys_only: true,
            ..RangeRequest::default()
        };
        let result = kv.range(&all).unwrap();
        assert_eq!(result.kvs.len(), 5);
        assert!(result.kvs.iter().all(|kv| kv.value.is_empty()));
        let between = RangeRequest { range: KeyRange { key: "a".into(), range_end: b"b/2".to_vec() }, ..all.clone() };
        assert_eq!(kv.range(&between).unwrap().count, 2);
        let count = RangeRequest { count_only: true, ..all.clone() };
        assert_eq!((kv.range(&count).unwrap().count, kv.range(&count).unwrap().kvs.len()), (5, 0));
        assert_eq!(kv.range(&RangeRequest { revision: 4, ..all.clone() }).unwrap().count, 4);
        assert_eq!(kv.range(&RangeRequest { revision: 6, ..all.clone() }), Err(KvError::FutureRevision));
        assert_eq!(kv.range(&RangeRequest { revision: 5, ..all }).unwrap().count, 5);
        assert_eq!(kv.range(&RangeRequest::default()), Err(KvError::KeyEmpty));
        assert_eq!(kv.query(&Query::Get("c".into())), QueryOutput::Value(Ok("v".into())),);
    }

    #[test]
    fn compare_and_swap_and_delete_if() {
        let mut kv = KvStore::default();
        let create = kv.apply_entry(&entry(1, &Command::txn(Txn::cas("k", None, "1")))).unwrap();
        assert_eq!((create.result, create.output.succeeded, create.output.revision), (Ok(()), true, 1));
        let again = kv.apply_entry(&entry(2, &Command::txn(Txn::cas("k", None, "x")))).unwrap();
        assert_eq!((again.result, again.output.succeeded, kv.revision()), (Err(KvError::CompareFailed), false, 1));
        kv.apply_entry(&entry(3, &Command::txn(Txn::cas("k", Some("1"), "2"))));
        assert_eq!(kv.get("k"), Ok("2"));
        let wrong = kv.apply_entry(&entry(4, &Command::txn(Txn::delete_if("k", "1")))).unwrap();
        assert_eq!(wrong.result, Err(KvError::CompareFailed));
        let right = kv.apply_entry(&entry(5, &Command::txn(Txn::delete_if("k", "2")))).unwrap();
        assert_eq!((right.result, right.output.deleted), (Ok(()), 1));
        assert_eq!(kv.get("k"), Err(KvError::KeyNotFound));
    }

    #[test]
    fn a_transaction_applies_one_branch_atomically_at_one_revision() {
        let mut kv = KvStore::default();
        kv.apply_entry(&entry(1, &Command::set("x", "1")));
        let txn = Txn {
            compare: vec![Compare { key: "x".into(), target: CompareTarget::ModRevision(1), op: CompareOp::Equal }],
            success: vec![
                TxnOp::put("y", "2"),
                TxnOp::put("z", "3"),
                TxnOp::Range(RangeRequest { range: KeyRange::prefix(""), ..RangeRequest::default() }),
                TxnOp::Delete(KeyRange::single("x")),
            ],
            failure: vec![TxnOp::put("failed", "1")],
        };
        let applied = kv.apply_entry(&entry(2, &Command::txn(txn.clone()))).unwrap();
        assert_eq!((applied.result, applied.output.revision, applied.output.deleted), (Ok(()), 2, 1));
        let OpResponse::Range(seen) = &applied.output.responses[2] else { panic!("a range response") };
        assert_eq!((seen.count, seen.revision), (3, 2));
        assert_eq!(kv.get_kv("z").unwrap().mod_revision, 2);
        assert_eq!(kv.get_kv("y").unwrap().mod_revision, 2);
        // Now x is gone: mod_revision 0, the failure branch runs.
        let applied = kv.apply_entry(&entry(3, &Command::txn(txn.clone()))).unwrap();
        assert_eq!((applied.result, applied.output.revision), (Err(KvError::CompareFailed), 3));
        assert_eq!(kv.get("failed"), Ok("1"));
        // An empty key anywhere refuses the whole transaction, before anything applies.
        let mut bad = txn;
        bad.compare.clear();
        bad.success.push(TxnOp::put("", "v"));
        let applied = kv.apply_entry(&entry(4, &Command::txn(bad))).unwrap();
        assert_eq!((applied.result, kv.revision()), (Err(KvError::KeyEmpty), 3));
        assert_eq!(kv.get_kv("y").unwrap().mod_revision, 2);
    }

    #[test]
    fn a_first_format_snapshot_restores_with_deterministic_revisions() {
        let mut v1 = b"RKVSNAP1".to_vec();
        put_u64(&mut v1, 7);
        put_u64(&mut v1, 10);
        put_u64(&mut v1, 2);
        for (k, v) in [("a", "1"), ("b", "2")] {
            put_bytes_u32_len(&mut v1, k.as_bytes());
            put_bytes_u32_len(&mut v1, v.as_bytes());
        }
        put_u64(&mut v1, 0);
        let kv = KvStore::restore(&v1).unwrap();
        assert_eq!((kv.revision(), kv.applied_index(), kv.get_kv("b").unwrap().create_revision), (2, LogIndex(7), 2));
    }

    #[test]
    fn corrupt_bytes_are_rejected() {
        assert!(KvStore::restore(b"nope").is_err());
        assert!(Command::decode(&[9, 0, 0, 0, 0, 0]).is_err());
        let mut bytes = Command::set("a", "b").encode();
        bytes.pop();
        assert_eq!(Command::decode(&bytes), Err(DecodeError("truncated")));
    }

    #[test]
    fn a_lease_holds_its_keys_until_revoked_and_expiry_is_void_after_a_keepalive() {
        let mut kv = KvStore::default();
        let grant = kv.apply_entry(&entry(1, &Command::of(Op::LeaseGrant { id: 0, ttl_s: 5 }))).unwrap();
        assert_eq!((grant.result, grant.output.lease_id, grant.output.ttl_s), (Ok(()), 1, 5));
        let again = kv.apply_entry(&entry(2, &Command::of(Op::LeaseGrant { id: 1, ttl_s: 5 }))).unwrap();
        assert_eq!(again.result, Err(KvError::LeaseExists));
        let bad = kv.apply_entry(&entry(3, &Command::of(Op::LeaseGrant { id: 9, ttl_s: 0 }))).unwrap();
        assert_eq!(bad.result, Err(KvError::LeaseTtlInvalid));
        kv.apply_entry(&entry(4, &Command::put("a", "1", 1)));
        kv.apply_entry(&entry(5, &Command::put("b", "1", 1)));
        assert_eq!(kv.apply_entry(&entry(6, &Command::put("c", "1", 7))).unwrap().result, Err(KvError::LeaseNotFound));
        // A plain set detaches "b".
        kv.apply_entry(&entry(7, &Command::set("b", "2")));
        assert_eq!(kv.lease_info(1).unwrap().keys, vec!["a".to_owned()]);
        assert_eq!(kv.get_kv("a").unwrap().lease, 1);
        kv.apply_entry(&entry(8, &Command::of(Op::LeaseKeepAlive { id: 1 })));
        // The leader decided at 0 keep-alives; one was applied since: void.
        let stale = Op::LeaseExpire { id: 1, renewals: 0, decided_at_ms: 100 };
        assert_eq!(kv.apply_entry(&entry(9, &Command::of(stale))).unwrap().output.deleted, 0);
        assert_eq!(kv.get("a"), Ok("1"));
        let current = Op::LeaseExpire { id: 1, renewals: 1, decided_at_ms: 200 };
        let expired = kv.apply_entry(&entry(10, &Command::of(current))).unwrap();
        assert_eq!((expired.output.deleted, expired.output.events.len()), (1, 1));
        assert_eq!((kv.get("a"), kv.get("b")), (Err(KvError::KeyNotFound), Ok("2")));
        assert_eq!(kv.lease_info(1), Err(KvError::LeaseNotFound));
        let revoke = kv.apply_entry(&entry(11, &Command::of(Op::LeaseRevoke { id: 1 }))).unwrap();
        assert_eq!(revoke.result, Err(KvError::LeaseNotFound));
    }

    #[test]
    fn a_transaction_put_attaches_to_a_lease_and_an_unknown_lease_fails_the_whole_branch() {
        let mut kv = KvStore::default();
        kv.apply_entry(&entry(1, &Command::of(Op::LeaseGrant { id: 1, ttl_s: 5 })));
        let attach = Txn {
            compare: Vec::new(),
            success: vec![TxnOp::Put { key: "a".into(), value: "1".into(), lease: 1 }, TxnOp::put("b", "2")],
            failure: Vec::new(),
        };
        let applied = kv.apply_entry(&entry(2, &Command::txn(attach))).unwrap();
        assert_eq!((applied.result, kv.get_kv("a").unwrap().lease, kv.get_kv("b").unwrap().lease), (Ok(()), 1, 0));
        assert_eq!(kv.lease_info(1).unwrap().keys, vec!["a".to_owned()]);
        // A put to a lease not held refuses the branch before anything in it runs.
        let unknown = Txn {
            compare: Vec::new(),
            success: vec![TxnOp::put("c", "3"), TxnOp::Put { key: "d".into(), value: "4".into(), lease: 9 }],
            failure: Vec::new(),
        };
        let revision = kv.revision();
        let applied = kv.apply_entry(&entry(3, &Command::txn(unknown))).unwrap();
        assert_eq!((applied.result, applied.output.succeeded), (Err(KvError::LeaseNotFound), false));
        assert_eq!(
            (kv.revision(), kv.get("c"), kv.get("d")),
            (revision, Err(KvError::KeyNotFound), Err(KvError::KeyNotFound))
        );
        // The branch not taken is not checked.
        let other_branch = Txn {
            compare: vec![Compare { key: "b".into(), target: CompareTarget::Value("2".into()), op: CompareOp::Equal }],
            success: vec![TxnOp::put("e", "5")],
            failure: vec![TxnOp::Put { key: "f".into(), value: "6".into(), lease: 9 }],
        };
        assert_eq!(kv.apply_entry(&entry(4, &Command::txn(other_branch))).unwrap().result, Ok(()));
        // Revoking the lease deletes the key the transaction attached, not the other.
        let revoke = kv.apply_entry(&entry(5, &Command::of(Op::LeaseRevoke { id: 1 }))).unwrap();
        assert_eq!((revoke.output.deleted, kv.get("a"), kv.get("b")), (1, Err(KvError::KeyNotFound), Ok("2")));
    }

    #[test]
    fn transaction_puts_with_a_lease_round_trip_and_without_keep_their_old_encoding() {
        let with = Command::txn(Txn {
            compare: Vec::new(),
            success: vec![TxnOp::Put { key: "k".into(), value: "v".into(), lease: 7 }],
            failure: vec![TxnOp::put("k", "w")],
        });
        assert_eq!(Command::decode(&with.encode()), Ok(with.clone()));
        // Without a lease: tag 1, key, value, nothing more (logs written before leases in transactions).
        let plain = Command::txn(Txn { compare: Vec::new(), success: vec![TxnOp::put("k", "v")], failure: Vec::new() });
        let bytes = plain.encode();
        let mut tail = vec![1];
        put_bytes_u32_len(&mut tail, b"k");
        put_bytes_u32_len(&mut tail, b"v");
        put_u64(&mut tail, 0); // The empty failure branch.
        assert!(bytes.ends_with(&tail), "{bytes:?}");
        // A lease of 0 written with the lease tag is refused.
        let lease_tag = bytes.len() - tail.len();
        let mut odd = bytes[..lease_tag].to_vec();
        odd.push(4);
        put_bytes_u32_len(&mut odd, b"k");
        put_bytes_u32_len(&mut odd, b"v");
        put_u64(&mut odd, 0);
        put_u64(&mut odd, 0);
        assert!(Command::decode(&odd).is_err());
    }

    #[test]
    fn lease_queries_list_every_lease_and_tell_a_leases_ttl_and_keys() {
        let mut kv = KvStore::default();
        for (index, id) in [(1, 7), (2, 3)] {
            kv.apply_entry(&entry(index, &Command::of(Op::LeaseGrant { id, ttl_s: 10 })));
        }
        kv.apply_entry(&entry(3, &Command::put("k", "v", 3)));
        assert_eq!(kv.query(&Query::Leases), QueryOutput::Leases { ids: vec![3, 7], revision: 1 });
        let QueryOutput::Lease(Ok(info)) = kv.query(&Query::Lease(3)) else { panic!("lease 3 exists") };
        assert_eq!((info.id, info.ttl_s, info.keys, info.revision), (3, 10, vec!["k".to_owned()], 1));
        // A follower has no lease clock: no time left to report.
        assert_eq!(info.remaining_ms, None);
        assert_eq!(kv.query(&Query::Lease(4)), QueryOutput::Lease(Err(KvError::LeaseNotFound)));
    }

    #[test]
    fn the_leader_proposes_an_expiry_and_a_follower_never_does() {
        let mut kv = KvStore::default();
        kv.apply_entry(&entry(1, &Command::of(Op::LeaseGrant { id: 3, ttl_s: 1 })));
        assert!(kv.leader_duties(5_000, None).is_empty());
        assert!(kv.leader_duties(5_000, Some(Term(2))).is_empty());
        assert_eq!(kv.next_duty_ms(), Some(6_000));
        let due = kv.leader_duties(6_000, Some(Term(2)));
        assert_eq!(due.len(), 1);
        let command = Command::decode(&due[0]).unwrap();
        assert_eq!(command.op, Op::LeaseExpire { id: 3, renewals: 0, decided_at_ms: 6_000 });
    }

    #[test]
    fn watchers_read_every_change_in_order_and_compacted_below_the_window() {
        let mut kv = KvStore::default().with_history_bounds(4, 1 << 20);
        kv.apply_entry(&entry(1, &Command::set("w/a", "1")));
        kv.apply_entry(&entry(2, &Command::set("x", "1")));
        kv.apply_entry(&entry(3, &Command::set("w/a", "2")));
        kv.apply_entry(&entry(4, &Command::delete("w/a")));
        let request = WatchRequest { range: KeyRange::prefix("w/"), start_revision: 1, events_max: 100 };
        let batch = kv.watch(&request);
        let seen: Vec<_> = batch.events.iter().map(|e| (e.revision(), e.kind, e.kv.value.clone())).collect();
        assert_eq!(
            seen,
            vec![(1, EventKind::Put, "1".into()), (3, EventKind::Put, "2".into()), (4, EventKind::Delete, "".into())]
        );
        assert_eq!(batch.events[2].prev.as_ref().unwrap().value, "2");
        assert_eq!((batch.next_revision, batch.compacted), (5, false));
        // Two more changes push revision 1 and 2 out of a 4-event window.
        kv.apply_entry(&entry(5, &Command::set("y", "1")));
        kv.apply_entry(&entry(6, &Command::set("z", "1")));
        assert_eq!(kv.compacted_revision(), 2);
        let batch = kv.watch(&request);
        assert_eq!((batch.compacted, batch.compact_revision), (true, 2));
        let from_three = kv.watch(&WatchRequest { start_revision: 3, ..request.clone() });
        assert_eq!(from_three.events.len(), 2);
        // Starting at 0 means from the next change on.
        let from_now = kv.watch(&WatchRequest { start_revision: 0, ..request });
        assert_eq!((from_now.events.len(), from_now.next_revision), (0, 7));
    }

    #[test]
    fn a_range_at_a_past_revision_undoes_later_changes() {
        let mut kv = KvStore::default();
        kv.apply_entry(&entry(1, &Command::set("p/a", "1")));
        kv.apply_entry(&entry(2, &Command::set("p/b", "1")));
        kv.apply_entry(&entry(3, &Command::set("p/a", "2")));
        kv.apply_entry(&entry(4, &Command::delete("p/b")));
        kv.apply_entry(&entry(5, &Command::set("p/c", "1")));
        let at = |revision| {
            let request = RangeRequest { range: KeyRange::prefix("p/"), revision, ..RangeRequest::default() };
            let result = kv.range(&request).unwrap();
            assert_eq!(result.revision, if revision == 0 { 5 } else { revision });
            result.kvs.into_iter().map(|kv| (kv.key, kv.value, kv.mod_revision)).collect::<Vec<_>>()
        };
        assert_eq!(at(2), vec![("p/a".into(), "1".into(), 1), ("p/b".into(), "1".into(), 2)]);
        assert_eq!(at(3), vec![("p/a".into(), "2".into(), 3), ("p/b".into(), "1".into(), 2)]);
        assert_eq!(at(4), vec![("p/a".into(), "2".into(), 3)]);
        assert_eq!(at(0).len(), 2);
        let mut small = KvStore::default().with_history_bounds(1, 1 << 20);
        small.apply_entry(&entry(1, &Command::set("a", "1")));
        small.apply_entry(&entry(2, &Command::set("a", "2")));
        let old = RangeRequest { range: KeyRange::single("a"), revision: 0, ..RangeRequest::default() };
        assert_eq!(small.range(&RangeRequest { revision: 1, ..old.clone() }).unwrap().kvs[0].value, "1");
        small.apply_entry(&entry(3, &Command::set("a", "3")));
        assert_eq!(small.range(&RangeRequest { revision: 1, ..old }), Err(KvError::Compacted));
    }

    fn arb_command() -> impl Strategy<Value = Command> {
        let key = "[a-d]{0,2}";
        let op = prop_oneof![
            (key, "[a-z]{0,4}").prop_map(|(key, value)| Op::Set { key, value }),
            key.prop_map(|key| Op::Delete { key }),
            key.prop_map(|key| Op::DeleteRange(KeyRange::prefix(key))),
            (key, proptest::option::of("[a-z]{0,2}"), "[a-z]{0,4}", key).prop_map(|(key, expected, value, other)| {
                let mut txn = Txn::cas(key, expected.as_deref(), value);
                txn.failure.push(TxnOp::Range(RangeRequest {
                    range: KeyRange::prefix(other),
                    limit: 2,
                    ..RangeRequest::default()
                }));
                Op::Txn(txn)
            }),
            (key, "[a-z]{0,4}", 0u64..4).prop_map(|(key, value, lease)| Op::Put { key, value, lease }),
            (0u64..4, 0u64..3).prop_map(|(id, ttl_s)| Op::LeaseGrant { id, ttl_s }),
            (0u64..4, 0u64..3).prop_map(|(id, ttl_s)| Op::LeaseGrant { id: id * 1000, ttl_s }),
            (0u64..4).prop_map(|id| Op::LeaseKeepAlive { id }),
            (0u64..4).prop_map(|id| Op::LeaseRevoke { id }),
            (0u64..4, 0u64..3).prop_map(|(id, renewals)| Op::LeaseExpire { id, renewals, decided_at_ms: 7 }),
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
