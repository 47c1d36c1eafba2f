//! The client history: one [`Operation`] per client operation (not per retry),
//! with invocation time, completion time and outcome. These are the types the
//! linearizability checker ([`crate::linearizability`]) takes; this module
//! owns them, and their JSON-lines export.
//!
//! # JSON-lines format (`--history out.json`)
//! One object per line, in invocation order:
//! ```text
//! {"client":3,"op":"set","key":"k7","value":"v3-12","invoke_ms":1200,"complete_ms":1260,"outcome":"ok"}
//! {"client":1,"op":"get","key":"k7","value":null,"invoke_ms":1210,"complete_ms":1300,"outcome":"value","result":"v3-12"}
//! {"client":2,"op":"delete","key":"k2","value":null,"invoke_ms":1220,"complete_ms":null,"outcome":"unknown"}
//! ```
//! - `op`: `set` | `get` | `delete` | `cas` | `range`; `value` is the written value for
//!   `set` and `cas`, else `null`; a `cas` also has `expected` (the value it
//!   compared with, `null`: the key must be absent); a `range`'s `key` is its
//!   prefix and its `result` the pairs it read, `[[key, value], ...]`.
//! - `invoke_ms` / `complete_ms`: virtual milliseconds; `complete_ms` is `null`
//!   exactly when `outcome` is `unknown`.
//! - `outcome`: `ok` (set, or delete of a present key), `not_found` (delete or get
//!   of a missing key), `value` (get; the value read is in `result`), `unknown`
//!   (timed out or dropped: the operation may or may not have taken effect, at any
//!   time after `invoke_ms`); `compare_failed` (a `cas` whose comparison did not
//!   hold: nothing changed); `range` (a `range`; the pairs are in `result`).
//! - Leases (lease holders, `SimOptions::lease_holders`): `put` (a `set`
//!   attached to the lease in `lease`), `lease_grant`, `lease_keepalive`,
//!   `lease_revoke` and `lease_expire` (not a client's: the leader's expiry
//!   entry, from `invoke_ms` = the leader's decision to `complete_ms` = its first
//!   apply), each with `lease`; outcome `lease_not_found` when the lease is not
//!   held. A lease operation's `key` is the lease's own register in the model
//!   (`"\u0000lease/<id>"`).

use serde::{Deserialize, Serialize};
use std::fmt;

/// One key-value operation as the client saw it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum KvOp {
    /// Write `value` under `key`.
    Set {
        /// The key written.
        key: String,
        /// The value written.
        value: String,
    },
    /// Remove `key`.
    Delete {
        /// The key removed.
        key: String,
    },
    /// Read `key`.
    Get {
        /// The key read.
        key: String,
    },
    /// Compare-and-swap: write `value` if the key holds `expected` (`None`: is absent).
    Cas {
        /// The key.
        key: String,
        /// The value compared with (`None`: the key must be absent).
        expected: Option<String>,
        /// The value written if the comparison holds.
        value: String,
    },
    /// Read every key starting with `prefix`, at one point in time.
    Range {
        /// The prefix.
        prefix: String,
    },
    /// Write `value` under `key`, attached to `lease` (fails with
    /// [`KvOutcome::LeaseNotFound`] when the lease is not held).
    Put {
        /// The key written.
        key: String,
        /// The value written.
        value: String,
        /// The lease the key is attached to.
        lease: u64,
    },
    /// A lease operation (see [`LeaseOp`]); build it with [`KvOp::lease`].
    Lease {
        /// Which one.
        op: LeaseOp,
        /// The lease.
        lease: u64,
        /// The lease's own register in the model, `"\0lease/<id>"` (outside every client prefix).
        register: String,
    },
}

/// The lease operations of [`KvOp::Lease`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum LeaseOp {
    /// Grant the lease (its id is the client's).
    Grant,
    /// Renew it.
    KeepAlive,
    /// Revoke it: delete it and its keys.
    Revoke,
    /// The leader's expiry entry took effect: the lease and its keys are gone.
    Expire,
}

impl LeaseOp {
    /// Whether it deletes the lease's keys when it takes effect.
    pub fn drops_keys(self) -> bool {
        matches!(self, LeaseOp::Revoke | LeaseOp::Expire)
    }

    fn name(self) -> &'static str {
        match self {
            LeaseOp::Grant => "lease_grant",
            LeaseOp::KeepAlive => "lease_keepalive",
            LeaseOp::Revoke => "lease_revoke",
            LeaseOp::Expire => "lease_expire",
        }
    }
}

impl KvOp {
    /// The key this operation touches.
    pub fn key(&self) -> &str {
        match self {
            KvOp::Set { key, .. }
            | KvOp::Delete { key }
            | KvOp::Get { key }
            | KvOp::Cas { key, .. }
            | KvOp::Put { key, .. } => key,
            KvOp::Range { prefix } => prefix,
            KvOp::Lease { register, .. } => register,
        }
    }

    /// The lease operation `op` on lease `lease`.
    pub fn lease(op: LeaseOp, lease: u64) -> KvOp {
        KvOp::Lease { op, lease, register: lease_register(lease) }
    }
}

/// The model's register of lease `lease`: present while the lease is held.
pub fn lease_register(lease: u64) -> String {
    format!("\0lease/{lease}")
}

impl fmt::Display for KvOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KvOp::Set { key, value } => write!(f, "set({key:?}, {value:?})"),
            KvOp::Delete { key } => write!(f, "delete({key:?})"),
            KvOp::Get { key } => write!(f, "get({key:?})"),
            KvOp::Cas { key, expected: Some(expected), value } => write!(f, "cas({key:?}, {expected:?} -> {value:?})"),
            KvOp::Cas { key, expected: None, value } => write!(f, "cas({key:?}, absent -> {value:?})"),
            KvOp::Range { prefix } => write!(f, "range({prefix:?}*)"),
            KvOp::Put { key, value, lease } => write!(f, "put({key:?}, {value:?}, lease {lease})"),
            KvOp::Lease { op, lease, .. } => write!(f, "{}({lease})", op.name()),
        }
    }
}

/// The result the client observed.
///
/// `Set` answers `Ok`; `Delete` answers `Ok` or `NotFound`; `Get` answers
/// `Value(v)` or `NotFound`. `Unknown` means the operation timed out or was
/// dropped: it may or may not have taken effect, at any time after its
/// invocation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum KvOutcome {
    /// The write or delete took effect (a delete found the key present).
    Ok,
    /// The key was absent (for `Delete` and `Get`).
    NotFound,
    /// A `Get` read this value.
    Value(String),
    /// A `Cas` whose comparison did not hold: nothing changed.
    CompareFailed,
    /// A `Range` read these pairs, in key order.
    Range(Vec<(String, String)>),
    /// A `Put` with a lease or a lease operation found the lease not held.
    LeaseNotFound,
    /// No answer: the operation may or may not have taken effect.
    Unknown,
}

impl fmt::Display for KvOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KvOutcome::Ok => f.write_str("Ok"),
            KvOutcome::NotFound => f.write_str("NotFound"),
            KvOutcome::Value(v) => write!(f, "Value({v:?})"),
            KvOutcome::CompareFailed => f.write_str("CompareFailed"),
            KvOutcome::Range(pairs) => write!(f, "Range({pairs:?})"),
            KvOutcome::LeaseNotFound => f.write_str("LeaseNotFound"),
            KvOutcome::Unknown => f.write_str("Unknown"),
        }
    }
}

/// One operation of a history: who issued it, what it was, when it was
/// invoked and completed, and what the client observed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Operation {
    /// The issuing client.
    pub client: u64,
    /// The operation.
    pub op: KvOp,
    /// When the client invoked it (simulated milliseconds).
    pub invoke_ms: u64,
    /// When the client saw the answer; `None` when the outcome is `Unknown`.
    pub complete_ms: Option<u64>,
    /// What the client saw.
    pub outcome: KvOutcome,
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.complete_ms {
            Some(c) if self.outcome != KvOutcome::Unknown => {
                write!(f, "client {} [{}ms..{}ms] {} -> {}", self.client, self.invoke_ms, c, self.op, self.outcome)
            }
            _ => write!(f, "client {} [{}ms..never] {} -> {}", self.client, self.invoke_ms, self.op, self.outcome),
        }
    }
}

/// The history of one run: operations in invocation order. Open operations
/// (invoked, not yet complete) have `complete_ms == None` and `Unknown` outcome
/// until they complete.
#[derive(Clone, Debug, Default)]
pub struct History {
    operations: Vec<Operation>,
    open: usize,
}

/// Identifies an operation in the history.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct OpId(pub usize);

impl History {
    /// Records an invocation; the operation is open until [`History::complete`].
    pub fn invoke(&mut self, client: u64, op: KvOp, invoke_ms: u64) -> OpId {
        self.operations.push(Operation { client, op, invoke_ms, complete_ms: None, outcome: KvOutcome::Unknown });
        self.open += 1;
        OpId(self.operations.len() - 1)
    }

    /// Records a completion (or `KvOutcome::Unknown` with no time when the client gave up).
    pub fn complete(&mut self, id: OpId, complete_ms: Option<u64>, outcome: KvOutcome) {
        let operation = &mut self.operations[id.0];
        assert!(operation.complete_ms.is_none(), "operation {id:?} completed twice");
        assert_eq!(
            complete_ms.is_none(),
            outcome == KvOutcome::Unknown,
            "unknown outcomes, and only they, have no completion time"
        );
        assert!(complete_ms.is_none_or(|at| at >= operation.invoke_ms));
        operation.complete_ms = complete_ms;
        operation.outcome = outcome;
        self.open -= 1;
    }

    /// All operations, in invocation order.
    pub fn operations(&self) -> &[Operation] {
        &self.operations
    }

    /// Operations invoked and not yet finished (completed or given up).
    pub fn open(&self) -> usize {
        self.open
    }

    /// Number of operations with a definite outcome.
    pub fn completed(&self) -> usize {
        self.operations.iter().filter(|op| op.complete_ms.is_some()).count()
    }

    /// The JSON-lines export (see the module docs for the format).
    pub fn to_json_lines(&self) -> String {
        let mut out = String::new();
        for operation in &self.operations {
            out.push_str(&operation_json(operation).to_string());
            out.push('\n');
        }
        out
    }
}

fn operation_json(operation: &Operation) -> serde_json::Value {
    let (op, value) = match &operation.op {
        KvOp::Set { value, .. } => ("set", Some(value.clone())),
        KvOp::Delete { .. } => ("delete", None),
        KvOp::Get { .. } => ("get", None),
        KvOp::Cas { value, .. } => ("cas", Some(value.clone())),
        KvOp::Range { .. } => ("range", None),
        KvOp::Put { value, .. } => ("put", Some(value.clone())),
        KvOp::Lease { op, .. } => (op.name(), None),
    };
    let mut object = serde_json::json!({
        "client": operation.client,
        "op": op,
        "key": operation.op.key(),
        "value": value,
        "invoke_ms": operation.invoke_ms,
        "complete_ms": operation.complete_ms,
    });
    if let KvOp::Cas { expected, .. } = &operation.op {
        object["expected"] = serde_json::json!(expected);
    }
    if let KvOp::Put { lease, .. } | KvOp::Lease { lease, .. } = &operation.op {
        object["lease"] = serde_json::json!(lease);
    }
    let outcome = match &operation.outcome {
        KvOutcome::Ok => "ok",
        KvOutcome::CompareFailed => "compare_failed",
        KvOutcome::Range(pairs) => {
            object["result"] = serde_json::json!(pairs);
            "range"
        }
        KvOutcome::NotFound => "not_found",
        KvOutcome::LeaseNotFound => "lease_not_found",
        KvOutcome::Unknown => "unknown",
        KvOutcome::Value(read) => {
            object["result"] = serde_json::Value::String(read.clone());
            "value"
        }
    };
    object["outcome"] = serde_json::Value::String(outcome.into());
    object
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_lines_carry_every_field() {
        let mut history = History::default();
        let set = history.invoke(3, KvOp::Set { key: "k".into(), value: "v".into() }, 10);
        let get = history.invoke(1, KvOp::Get { key: "k".into() }, 11);
        let delete = history.invoke(2, KvOp::Delete { key: "k".into() }, 12);
        history.complete(set, Some(20), KvOutcome::Ok);
        history.complete(get, Some(25), KvOutcome::Value("v".into()));
        assert_eq!(history.open(), 1);
        history.complete(delete, None, KvOutcome::Unknown);
        let lines: Vec<serde_json::Value> =
            history.to_json_lines().lines().map(|line| serde_json::from_str(line).unwrap()).collect();
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[0]["op"], "set");
        assert_eq!(lines[0]["value"], "v");
        assert_eq!(lines[0]["outcome"], "ok");
        assert_eq!(lines[1]["result"], "v");
        assert_eq!(lines[1]["complete_ms"], 25);
        assert_eq!(lines[2]["complete_ms"], serde_json::Value::Null);
        assert_eq!(lines[2]["outcome"], "unknown");
        assert_eq!(history.completed(), 2);
    }

    #[test]
    fn lease_operations_carry_their_lease() {
        let mut history = History::default();
        let put = history.invoke(1, KvOp::Put { key: "lease/0".into(), value: "7".into(), lease: 7 }, 1);
        let revoke = history.invoke(1, KvOp::lease(LeaseOp::Revoke, 7), 2);
        history.complete(put, Some(3), KvOutcome::Ok);
        history.complete(revoke, Some(4), KvOutcome::LeaseNotFound);
        let lines: Vec<serde_json::Value> =
            history.to_json_lines().lines().map(|line| serde_json::from_str(line).unwrap()).collect();
        assert_eq!((&lines[0]["op"], &lines[0]["lease"], &lines[0]["value"]), (&"put".into(), &7.into(), &"7".into()));
        assert_eq!((&lines[1]["op"], &lines[1]["key"]), (&"lease_revoke".into(), &"\u{0}lease/7".into()));
        assert_eq!(lines[1]["outcome"], "lease_not_found");
        assert_eq!(history.operations()[1].to_string(), "client 1 [2ms..4ms] lease_revoke(7) -> LeaseNotFound");
    }

    #[test]
    fn operations_round_trip_through_serde_json() {
        let history = vec![
            Operation {
                client: 1,
                op: KvOp::Set { key: "x".into(), value: "a".into() },
                invoke_ms: 0,
                complete_ms: Some(10),
                outcome: KvOutcome::Ok,
            },
            Operation {
                client: 2,
                op: KvOp::Set { key: "x".into(), value: "b".into() },
                invoke_ms: 20,
                complete_ms: None,
                outcome: KvOutcome::Unknown,
            },
            Operation {
                client: 3,
                op: KvOp::Delete { key: "x".into() },
                invoke_ms: 5,
                complete_ms: Some(7),
                outcome: KvOutcome::NotFound,
            },
            Operation {
                client: 4,
                op: KvOp::Get { key: "x".into() },
                invoke_ms: 8,
                complete_ms: Some(9),
                outcome: KvOutcome::Value("a".into()),
            },
        ];
        let lines: Vec<String> = history.iter().map(|o| serde_json::to_string(o).unwrap()).collect();
        let back: Vec<Operation> = lines.iter().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(back, history);
    }

    #[test]
    fn operations_display_their_interval_and_outcome() {
        let mut op = Operation {
            client: 2,
            op: KvOp::Get { key: "k".into() },
            invoke_ms: 503,
            complete_ms: Some(508),
            outcome: KvOutcome::Value("v10".into()),
        };
        assert_eq!(op.to_string(), "client 2 [503ms..508ms] get(\"k\") -> Value(\"v10\")");
        op.complete_ms = None;
        op.outcome = KvOutcome::Unknown;
        assert_eq!(op.to_string(), "client 2 [503ms..never] get(\"k\") -> Unknown");
    }

    #[test]
    #[should_panic(expected = "completed twice")]
    fn an_operation_completes_once() {
        let mut history = History::default();
        let id = history.invoke(1, KvOp::Get { key: "k".into() }, 0);
        history.complete(id, Some(1), KvOutcome::NotFound);
        history.complete(id, Some(2), KvOutcome::NotFound);
    }
}
