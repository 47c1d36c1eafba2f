//! The JSON bodies of the client API, shared by the server ([`crate::api`]) and
//! the CLI ([`crate::client_cmd`]), so both sides agree on every field name.
//!
//! Every body has `ok`. Field names are those the README documents (camelCase
//! where the predecessor used it); fields are declared in alphabetical order so
//! answers print as the README shows them.

use serde::{Deserialize, Serialize};

/// The stable, machine-readable `error` of an error answer.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ErrorCode {
    /// The request body is not the expected JSON.
    BadJson,
    /// The body or a query parameter is not valid UTF-8 (also after percent-decoding).
    BadEncoding,
    /// A query parameter has a bad value.
    BadQuery,
    /// `clientId`/`seq` are malformed or only one of them is given.
    BadSession,
    /// The client session was evicted; start a new one.
    SessionExpired,
    /// The key is the empty string.
    KeyEmpty,
    /// The `key` query parameter is missing.
    KeyMissing,
    /// The key is over the limit.
    KeyTooLarge,
    /// The value is over the limit.
    ValueTooLarge,
    /// The request body is over the limit.
    BodyTooLarge,
    /// The request target (path and query) is over the limit.
    UriTooLong,
    /// The request's headers are over the limit.
    HeadersTooLarge,
    /// The key, or the route, does not exist.
    NotFound,
    /// The route exists, the method does not.
    MethodNotAllowed,
    /// A write reached a follower; the answer names the leader.
    NotLeader,
    /// No leader is known right now.
    NoLeader,
    /// Leadership changed while a read waited.
    Retry,
    /// Leadership was lost before a write applied: it may or may not apply.
    OutcomeUnknown,
    /// The node did not answer within its request timeout.
    Timeout,
    /// Too many requests are pending.
    Busy,
    /// A leadership transfer is under way.
    TransferInProgress,
    /// The node is stopping.
    ShuttingDown,
    /// 503: this node's disk is full; it accepts no writes until there is space
    /// (another node may lead meanwhile: retry there).
    DiskFull,
    /// A bug: see the node's log.
    Internal,
    /// Raft port: missing or wrong cluster token.
    Unauthorized,
    /// Raft port: a message batch that does not decode.
    BadMessage,
    /// Raft port: a sender outside the configuration.
    UnknownNode,
    /// Raft port: `/raft/stream` without the upgrade headers.
    UpgradeRequired,
    /// Raft port: the peer names another cluster id.
    WrongCluster,
    /// Raft port: the peer's TLS certificate is not valid for the peer it claims to be.
    WrongCertificate,
    /// A request the HTTP layer refused that no other code describes.
    BadRequest,
    /// `/cas`: the key's current state is not the expected one; nothing changed.
    CompareFailed,
    /// A range or watch at a revision older than the history window.
    Compacted,
    /// A range at a revision newer than the current one.
    FutureRevision,
    /// A transaction with more comparisons and operations than the limit.
    TxnTooLarge,
    /// 404: the lease is not held (never granted, revoked, or expired).
    LeaseNotFound,
    /// 409: a grant named the id of a lease already held.
    LeaseExists,
    /// 400: a lease TTL of 0 or over a year.
    BadTtl,
    /// In a watch stream: the watcher did not read fast enough and was cut off;
    /// resume from the last revision seen + 1.
    SlowWatcher,
    /// 409, `/cluster/members`: the learner to promote is behind (or silent);
    /// retry once it has caught up.
    NotCaughtUp,
    /// 409, `/cluster/members`: another membership change has not finished.
    ChangeInProgress,
    /// 503, `/cluster/members`: a new leader has not committed an entry of its
    /// term yet (the barrier before any change); retry shortly.
    NoCommitInTerm,
    /// 404, `/cluster/members`: no member of that name.
    UnknownMember,
    /// 409, `/cluster/members`: the change does not apply (already a member,
    /// not a learner, the last voter, ...).
    InvalidChange,
    /// A code this build does not know (sent by a newer node).
    #[serde(other)]
    Unknown,
}

impl ErrorCode {
    /// The code as it appears on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::BadJson => "bad_json",
            ErrorCode::BadEncoding => "bad_encoding",
            ErrorCode::BadQuery => "bad_query",
            ErrorCode::BadSession => "bad_session",
            ErrorCode::SessionExpired => "session_expired",
            ErrorCode::KeyEmpty => "key_empty",
            ErrorCode::KeyMissing => "key_missing",
            ErrorCode::KeyTooLarge => "key_too_large",
            ErrorCode::ValueTooLarge => "value_too_large",
            ErrorCode::BodyTooLarge => "body_too_large",
            ErrorCode::UriTooLong => "uri_too_long",
            ErrorCode::HeadersTooLarge => "headers_too_large",
            ErrorCode::NotFound => "not_found",
            ErrorCode::MethodNotAllowed => "method_not_allowed",
            ErrorCode::NotLeader => "not_leader",
            ErrorCode::NoLeader => "no_leader",
            ErrorCode::Retry => "retry",
            ErrorCode::OutcomeUnknown => "outcome_unknown",
            ErrorCode::Timeout => "timeout",
            ErrorCode::Busy => "busy",
            ErrorCode::TransferInProgress => "transfer_in_progress",
            ErrorCode::ShuttingDown => "shutting_down",
            ErrorCode::DiskFull => "disk_full",
            ErrorCode::Internal => "internal",
            ErrorCode::Unauthorized => "unauthorized",
            ErrorCode::BadMessage => "bad_message",
            ErrorCode::UnknownNode => "unknown_node",
            ErrorCode::UpgradeRequired => "upgrade_required",
            ErrorCode::WrongCluster => "wrong_cluster",
            ErrorCode::WrongCertificate => "wrong_certificate",
            ErrorCode::BadRequest => "bad_request",
            ErrorCode::CompareFailed => "compare_failed",
            ErrorCode::Compacted => "compacted",
            ErrorCode::FutureRevision => "future_revision",
            ErrorCode::TxnTooLarge => "txn_too_large",
            ErrorCode::LeaseNotFound => "lease_not_found",
            ErrorCode::LeaseExists => "lease_exists",
            ErrorCode::BadTtl => "bad_ttl",
            ErrorCode::SlowWatcher => "slow_watcher",
            ErrorCode::NotCaughtUp => "not_caught_up",
            ErrorCode::ChangeInProgress => "change_in_progress",
            ErrorCode::NoCommitInTerm => "no_commit_in_term",
            ErrorCode::UnknownMember => "unknown_member",
            ErrorCode::InvalidChange => "invalid_change",
            ErrorCode::Unknown => "unknown",
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Who leads, as an error answer gives it: both fields are present (`null`
/// when unknown) on `not_leader` and `no_leader` answers, absent otherwise.
#[derive(Serialize, Deserialize, Debug, Clone, Default, PartialEq, Eq)]
pub struct LeaderHint {
    /// The leader's client URL.
    pub leader: Option<String>,
    /// The leader's node id.
    #[serde(rename = "leaderId")]
    pub leader_id: Option<String>,
}

/// The body of every error answer.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct ErrorBody {
    /// What went wrong, as a stable code.
    pub error: ErrorCode,
    /// The leader hint, on `not_leader` / `no_leader`.
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub hint: Option<LeaderHint>,
    /// What went wrong, in words.
    pub message: String,
    /// Always `false`.
    pub ok: bool,
}

impl ErrorBody {
    /// An error body without a leader hint.
    pub fn new(error: ErrorCode, message: impl Into<String>) -> ErrorBody {
        ErrorBody { error, hint: None, message: message.into(), ok: false }
    }

    /// The leader's client URL, if the answer names one.
    pub fn leader_url(&self) -> Option<&str> {
        self.hint.as_ref()?.leader.as_deref()
    }
}

/// `200` to `PUT /set` and `DELETE /delete`: the write applied at `index`.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct WriteOk {
    /// The log index the write committed at.
    pub index: u64,
    /// The key written.
    pub key: String,
    /// Always `true`.
    pub ok: bool,
}

/// `200` to `GET /get`.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct ReadOk {
    /// The key read.
    pub key: String,
    /// Always `true`.
    pub ok: bool,
    /// Its value.
    pub value: String,
}

/// `GET /health`.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Health {
    /// This node's client URL.
    pub addr: String,
    /// Applied index.
    pub applied_index: u64,
    /// Commit index.
    pub commit_index: u64,
    /// This node's id.
    pub id: String,
    /// Milliseconds since the leader was last heard (0 on the leader; `null` if never).
    pub last_heartbeat_ago_ms: Option<u64>,
    /// The leader's client URL, if known.
    pub leader: Option<String>,
    /// The leader's id, if known.
    pub leader_id: Option<String>,
    /// Always `true`.
    pub ok: bool,
    /// The peers' Raft URLs.
    pub peers: Vec<String>,
    /// How many peers.
    pub peers_count: usize,
    /// `host:port` of the Raft RPC listener.
    pub raft_addr: String,
    /// `Follower`, `PreCandidate`, `Candidate` or `Leader`.
    pub state: String,
    /// Current term.
    pub term: u64,
    /// The voters of the configuration in effect, by name (during a joint change: the incoming ones).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub voters: Vec<String>,
    /// Its learners, by name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub learners: Vec<String>,
    /// During a joint change: the outgoing voters.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub outgoing: Vec<String>,
    /// Whether a membership change is in progress (uncommitted, or joint).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub change_in_progress: bool,
}

/// The body of `PUT /set`.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct SetRequest {
    /// The key.
    pub key: String,
    /// The value.
    pub value: String,
    /// The client session's id (with `seq`).
    #[serde(default, rename = "clientId", alias = "client_id", skip_serializing_if = "Option::is_none")]
    pub client_id: Option<u64>,
    /// The request's number in its session (with `clientId`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seq: Option<u64>,
    /// Attach the key to this lease (absent or 0: none; a set without it detaches the key).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease: Option<u64>,
}

/// The body of `POST /lease/grant`.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct LeaseGrantRequest {
    /// Time to live, in seconds (1 to 31536000).
    pub ttl: u64,
    /// The lease id wanted (absent or 0: the store picks one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<u64>,
    /// The client session's id (with `seq`).
    #[serde(default, rename = "clientId", alias = "client_id", skip_serializing_if = "Option::is_none")]
    pub client_id: Option<u64>,
    /// The request's number in its session (with `clientId`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seq: Option<u64>,
}

/// The body of `POST /lease/keepalive` and `POST /lease/revoke`.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct LeaseIdRequest {
    /// The lease.
    pub id: u64,
    /// The client session's id (with `seq`).
    #[serde(default, rename = "clientId", alias = "client_id", skip_serializing_if = "Option::is_none")]
    pub client_id: Option<u64>,
    /// The request's number in its session (with `clientId`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seq: Option<u64>,
}

/// `200` to `POST /lease/grant`, `/lease/keepalive` and `/lease/revoke`.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct LeaseOk {
    /// Keys deleted with the lease (revoke only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deleted: Option<u64>,
    /// The lease.
    pub id: u64,
    /// The log index the command committed at.
    pub index: u64,
    /// Always `true`.
    pub ok: bool,
    /// The store's revision after the command.
    pub revision: u64,
    /// Its TTL in seconds (grant and keep-alive).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl: Option<u64>,
}

/// The query of `GET /lease/timetolive`.
#[derive(Serialize, Deserialize, Debug, Clone, Default, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct LeaseTtlQuery {
    /// The lease.
    pub id: u64,
    /// Also list the lease's keys.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub keys: bool,
    /// `linearizable` (default: on the leader, with the time left) or `stale`
    /// (any node, from its own state: no time left, the leader's clock decides).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consistency: Option<String>,
}

/// `200` to `GET /lease/timetolive`.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct LeaseTtlOk {
    /// The lease.
    pub id: u64,
    /// The keys attached to it (with `keys=true`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keys: Option<Vec<String>>,
    /// Always `true`.
    pub ok: bool,
    /// Milliseconds until the leader expires it unless kept alive (absent on a
    /// stale read: only the leader's clock decides).
    #[serde(default, rename = "remainingMs", skip_serializing_if = "Option::is_none")]
    pub remaining_ms: Option<u64>,
    /// The store's revision when read.
    pub revision: u64,
    /// The TTL it was granted (and is renewed to), in seconds.
    pub ttl: u64,
}

/// `200` to `GET /lease/list`.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct LeaseListOk {
    /// Every lease's id, in order.
    pub leases: Vec<u64>,
    /// Always `true`.
    pub ok: bool,
    /// The store's revision when read.
    pub revision: u64,
}

/// The query of `GET /watch`.
#[derive(Serialize, Deserialize, Debug, Clone, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct WatchQuery {
    /// One key (or the first key of `[key, end)`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// The end of the range, exclusive.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end: Option<String>,
    /// Every key with this prefix.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    /// The first revision to send (absent or 0: changes from now on).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rev: Option<u64>,
    /// Send a progress line after this many idle milliseconds (default 5000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress_ms: Option<u64>,
}

/// One change in a watch line.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct WatchEventBody {
    /// `put` or `delete`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The key after the change (for a delete: key and `modRevision` only).
    pub kv: KeyValueBody,
    /// The key before the change, if it existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prev_kv: Option<KeyValueBody>,
}

/// One line of a `GET /watch` stream (JSON lines): events, a progress note,
/// or a final error.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct WatchLine {
    /// Changes, in revision order (absent on progress and error lines).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub events: Vec<WatchEventBody>,
    /// Every matching change up to this revision has been sent (on every line).
    pub revision: u64,
    /// A progress line: nothing changed.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub progress: bool,
    /// The stream ends with this error (`compacted`, `slow_watcher`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorCode>,
    /// With `compacted`: the newest revision no longer in the history window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compact_revision: Option<u64>,
    /// With an error: what went wrong, in words.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// The query of `GET /get` and `DELETE /delete`.
#[derive(Serialize, Deserialize, Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyQuery {
    /// The key.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// `linearizable` (default) or `stale` (reads only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub consistency: Option<String>,
    /// The client session's id (deletes only, with `seq`).
    #[serde(rename = "clientId", skip_serializing_if = "Option::is_none")]
    pub client_id: Option<u64>,
    /// The request's number in its session (deletes only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seq: Option<u64>,
}

/// Which keys: exactly one of `key` alone, `key` with `end` (`[key, end)`;
/// `end` = `"\u0000"`: every key from `key` on), or `prefix` (`""`: every key).
/// The query of `GET /range`, and the key part of a transaction's `range` and `delete`.
#[derive(Serialize, Deserialize, Debug, Clone, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RangeSpec {
    /// The first key, or the only one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// The end of the range, exclusive.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end: Option<String>,
    /// Every key with this prefix.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    /// At most this many keys (0 or absent: all).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u64>,
    /// Leave the values out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keys_only: Option<bool>,
    /// Only count the keys.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count_only: Option<bool>,
    /// Read at this revision: absent or 0 for the current one, or a past one in
    /// the history window (else `compacted` / `future_revision`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<u64>,
    /// `linearizable` (default) or `stale` (`GET /range` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consistency: Option<String>,
}

/// One key of a range answer.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct KeyValueBody {
    /// The revision that created the key.
    pub create_revision: u64,
    /// The key.
    pub key: String,
    /// The revision of its last change.
    pub mod_revision: u64,
    /// Its value (absent with `keysOnly`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// Changes since its creation.
    pub version: u64,
    /// The lease it is attached to (absent: none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease: Option<u64>,
}

/// A range's result (`GET /range` adds `ok`).
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct RangeBody {
    /// Keys in the range (all of them, not only those returned).
    pub count: u64,
    /// The keys returned, in byte order.
    pub kvs: Vec<KeyValueBody>,
    /// More keys are in the range than returned (the limit cut it).
    pub more: bool,
    /// The store's revision the range was read at.
    pub revision: u64,
}

/// `200` to `GET /range`.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct RangeOk {
    /// The result.
    #[serde(flatten)]
    pub range: RangeBody,
    /// Always `true`.
    pub ok: bool,
}

/// The body of `POST /cas`: set `value` (or with `delete: true`, delete the
/// key) only if the key is as expected. At least one expectation is required.
#[derive(Serialize, Deserialize, Debug, Clone, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CasRequest {
    /// The key.
    pub key: String,
    /// The new value (not with `delete`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// Delete the key instead of setting it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub delete: bool,
    /// Expect this value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prev_value: Option<String>,
    /// Expect the key to exist (`true`) or not (`false`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prev_exist: Option<bool>,
    /// Expect this version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prev_version: Option<u64>,
    /// Expect this mod revision.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prev_mod_revision: Option<u64>,
    /// The client session's id (with `seq`).
    #[serde(default, alias = "client_id", skip_serializing_if = "Option::is_none")]
    pub client_id: Option<u64>,
    /// The request's number in its session (with `clientId`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seq: Option<u64>,
}

/// `200` to `POST /cas` (a failed expectation is `412 compare_failed`).
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct CasOk {
    /// The log index the write committed at.
    pub index: u64,
    /// The key.
    pub key: String,
    /// Always `true`.
    pub ok: bool,
    /// The store's revision after the write.
    pub revision: u64,
}

/// One comparison of `POST /txn`: the key's `value`, `version`,
/// `createRevision` or `modRevision` (exactly one) against the given one,
/// with `op` `=` (default), `!=`, `>` or `<`. A missing key has version and
/// revisions 0 and fails every value comparison.
#[derive(Serialize, Deserialize, Debug, Clone, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CompareBody {
    /// The key.
    pub key: String,
    /// `=`, `!=`, `>` or `<`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub op: Option<String>,
    /// Compare the value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// Compare the version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<u64>,
    /// Compare the create revision.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub create_revision: Option<u64>,
    /// Compare the mod revision.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mod_revision: Option<u64>,
}

/// A put of `POST /txn`.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct PutBody {
    /// The key.
    pub key: String,
    /// The value.
    pub value: String,
    /// The lease to attach the key to (0 or absent: none); a lease not held
    /// fails the transaction with `lease_not_found`.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub lease: u64,
}

fn is_zero(lease: &u64) -> bool {
    *lease == 0
}

/// One operation of a transaction branch: `{"put": {...}}`, `{"delete": {...}}` or `{"range": {...}}`.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub enum TxnOpBody {
    /// Set a key.
    Put(PutBody),
    /// Delete the keys of a range.
    Delete(RangeSpec),
    /// Read a range.
    Range(RangeSpec),
}

/// The body of `POST /txn`.
#[derive(Serialize, Deserialize, Debug, Clone, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TxnRequest {
    /// All must hold for `success` to run; else `failure` runs.
    #[serde(default)]
    pub compare: Vec<CompareBody>,
    /// Run when the comparisons hold.
    #[serde(default)]
    pub success: Vec<TxnOpBody>,
    /// Run when one does not.
    #[serde(default)]
    pub failure: Vec<TxnOpBody>,
    /// The client session's id (with `seq`).
    #[serde(default, alias = "client_id", skip_serializing_if = "Option::is_none")]
    pub client_id: Option<u64>,
    /// The request's number in its session (with `clientId`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seq: Option<u64>,
}

/// One operation's result in a `POST /txn` answer.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub enum TxnOpResult {
    /// A put: `{"put": {}}`.
    Put {},
    /// A delete: `{"delete": {"deleted": n}}`.
    Delete {
        /// Keys deleted.
        deleted: u64,
    },
    /// A range: `{"range": {...}}`.
    Range(RangeBody),
}

/// `200` to `POST /txn`.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct TxnOk {
    /// The log index the transaction committed at.
    pub index: u64,
    /// Always `true`.
    pub ok: bool,
    /// The branch's results, in order (empty when this was a retry of an applied transaction).
    pub responses: Vec<TxnOpResult>,
    /// The store's revision after it.
    pub revision: u64,
    /// Whether the comparisons held (`success` ran) or not (`failure` ran).
    pub succeeded: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    const ALL: [ErrorCode; 36] = [
        ErrorCode::BadJson,
        ErrorCode::BadEncoding,
        ErrorCode::BadQuery,
        ErrorCode::BadSession,
        ErrorCode::SessionExpired,
        ErrorCode::KeyEmpty,
        ErrorCode::KeyMissing,
        ErrorCode::KeyTooLarge,
        ErrorCode::ValueTooLarge,
        ErrorCode::BodyTooLarge,
        ErrorCode::UriTooLong,
        ErrorCode::HeadersTooLarge,
        ErrorCode::NotFound,
        ErrorCode::MethodNotAllowed,
        ErrorCode::NotLeader,
        ErrorCode::NoLeader,
        ErrorCode::Retry,
        ErrorCode::OutcomeUnknown,
        ErrorCode::Timeout,
        ErrorCode::Busy,
        ErrorCode::TransferInProgress,
        ErrorCode::ShuttingDown,
        ErrorCode::DiskFull,
        ErrorCode::Internal,
        ErrorCode::Unauthorized,
        ErrorCode::BadMessage,
        ErrorCode::UnknownNode,
        ErrorCode::UpgradeRequired,
        ErrorCode::WrongCluster,
        ErrorCode::WrongCertificate,
        ErrorCode::BadRequest,
        ErrorCode::CompareFailed,
        ErrorCode::Compacted,
        ErrorCode::FutureRevision,
        ErrorCode::TxnTooLarge,
        ErrorCode::Unknown,
    ];

    #[test]
    fn error_codes_serialize_as_their_wire_names_and_back() {
        for code in ALL {
            assert_eq!(serde_json::to_value(code).unwrap(), json!(code.as_str()));
            assert_eq!(serde_json::from_value::<ErrorCode>(json!(code.as_str())).unwrap(), code);
        }
        let documented = [
            "bad_json",
            "bad_encoding",
            "key_empty",
            "key_missing",
            "not_found",
            "not_leader",
            "no_leader",
            "retry",
            "outcome_unknown",
            "timeout",
            "busy",
            "transfer_in_progress",
            "key_too_large",
            "value_too_large",
            "body_too_large",
            "method_not_allowed",
            "bad_session",
            "session_expired",
            "disk_full",
        ];
        for name in documented {
            assert!(ALL.iter().any(|code| code.as_str() == name), "{name}");
        }
        assert_eq!(serde_json::from_value::<ErrorCode>(json!("from_the_future")).unwrap(), ErrorCode::Unknown);
    }

    #[test]
    fn error_bodies_are_the_documented_json() {
        let plain = serde_json::to_value(ErrorBody::new(ErrorCode::NotFound, "key not found")).unwrap();
        assert_eq!(plain, json!({"error": "not_found", "message": "key not found", "ok": false}));
        let hinted = ErrorBody {
            hint: Some(LeaderHint { leader: Some("http://a:1".into()), leader_id: Some("n1".into()) }),
            ..ErrorBody::new(ErrorCode::NotLeader, "go there")
        };
        let value = serde_json::to_value(&hinted).unwrap();
        assert_eq!(
            value,
            json!({"error": "not_leader", "leader": "http://a:1", "leaderId": "n1", "message": "go there", "ok": false})
        );
        let back: ErrorBody = serde_json::from_value(value).unwrap();
        assert_eq!(back.leader_url(), Some("http://a:1"));
        let unknown = ErrorBody { hint: Some(LeaderHint::default()), ..ErrorBody::new(ErrorCode::NoLeader, "none") };
        let value = serde_json::to_value(&unknown).unwrap();
        assert_eq!(value["leaderId"], Value::Null);
        assert!(value.as_object().unwrap().contains_key("leader"), "{value}");
    }

    #[test]
    fn success_bodies_are_the_documented_json() {
        let write = WriteOk { index: 5, key: "color".into(), ok: true };
        assert_eq!(serde_json::to_string(&write).unwrap(), r#"{"index":5,"key":"color","ok":true}"#);
        let read = ReadOk { key: "color".into(), ok: true, value: "blue".into() };
        assert_eq!(serde_json::to_string(&read).unwrap(), r#"{"key":"color","ok":true,"value":"blue"}"#);
        let health = Health {
            addr: "http://127.0.0.1:8080".into(),
            applied_index: 6,
            commit_index: 6,
            id: "node-8080".into(),
            last_heartbeat_ago_ms: Some(0),
            leader: Some("http://127.0.0.1:8080".into()),
            leader_id: Some("node-8080".into()),
            ok: true,
            peers: vec!["http://127.0.0.1:9081".into(), "http://127.0.0.1:9082".into()],
            peers_count: 2,
            raft_addr: "127.0.0.1:9080".into(),
            state: "Leader".into(),
            term: 1,
            voters: Vec::new(),
            learners: Vec::new(),
            outgoing: Vec::new(),
            change_in_progress: false,
        };
        // As README shows it (a node without a configuration to show leaves those fields out).
        assert_eq!(
            serde_json::to_string(&health).unwrap(),
            concat!(
                r#"{"addr":"http://127.0.0.1:8080","appliedIndex":6,"commitIndex":6,"id":"node-8080","#,
                r#""lastHeartbeatAgoMs":0,"leader":"http://127.0.0.1:8080","leaderId":"node-8080","ok":true,"#,
                r#""peers":["http://127.0.0.1:9081","http://127.0.0.1:9082"],"peersCount":2,"#,
                r#""raftAddr":"127.0.0.1:9080","state":"Leader","term":1}"#
            )
        );
    }

    #[test]
    fn queries_encode_only_what_is_set() {
        let query = KeyQuery { key: Some("a b&c".into()), consistency: Some("stale".into()), ..KeyQuery::default() };
        assert_eq!(serde_urlencoded_string(&query), "key=a+b%26c&consistency=stale");
    }

    fn serde_urlencoded_string(query: &KeyQuery) -> String {
        let url = reqwest::Client::new().get("http://x/get").query(query).build().unwrap().url().clone();
        url.query().unwrap_or_default().to_owned()
    }
}
