//! The client history: one [`Operation`] per client operation (not per retry),
//! with invocation time, completion time and outcome, in the types the
//! linearizability checker takes, and its JSON-lines export.
//!
//! # JSON-lines format (`--history out.json`)
//! One object per line, in invocation order:
//! ```text
//! {"client":3,"op":"set","key":"k7","value":"v3-12","invoke_ms":1200,"complete_ms":1260,"outcome":"ok"}
//! {"client":1,"op":"get","key":"k7","value":null,"invoke_ms":1210,"complete_ms":1300,"outcome":"value","result":"v3-12"}
//! {"client":2,"op":"delete","key":"k2","value":null,"invoke_ms":1220,"complete_ms":null,"outcome":"unknown"}
//! ```
//! - `op`: `set` | `get` | `delete`; `value` is the written value for `set`, else `null`.
//! - `invoke_ms` / `complete_ms`: virtual milliseconds; `complete_ms` is `null`
//!   exactly when `outcome` is `unknown`.
//! - `outcome`: `ok` (set, or delete of a present key), `not_found` (delete or get
//!   of a missing key), `value` (get; the value read is in `result`), `unknown`
//!   (timed out or dropped: the operation may or may not have taken effect, at any
//!   time after `invoke_ms`).

pub use crate::linearizability::{KvOp, KvOutcome, Operation};

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
    };
    let mut object = serde_json::json!({
        "client": operation.client,
        "op": op,
        "key": operation.op.key(),
        "value": value,
        "invoke_ms": operation.invoke_ms,
        "complete_ms": operation.complete_ms,
    });
    let outcome = match &operation.outcome {
        KvOutcome::Ok => "ok",
        KvOutcome::NotFound => "not_found",
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
    #[should_panic(expected = "completed twice")]
    fn an_operation_completes_once() {
        let mut history = History::default();
        let id = history.invoke(1, KvOp::Get { key: "k".into() }, 0);
        history.complete(id, Some(1), KvOutcome::NotFound);
        history.complete(id, Some(2), KvOutcome::NotFound);
    }
}
