//! The model: one register per key, initially absent. `Set` writes it,
//! `Delete` removes it (answering `NotFound` when it was already absent, `Ok`
//! otherwise) and `Get` reads it (`Value(v)` or `NotFound`). Which outcomes an
//! operation can have, and what each [`Step`] does to the register.

use crate::history::{KvOp, KvOutcome, Operation};

/// The register value: `ABSENT` or an interned value id.
pub(super) type State = u32;
/// The key holds no value.
pub(super) const ABSENT: State = 0;
/// Any value that no read of the key observes.
pub(super) const UNOBSERVED: State = 1;

/// An operation's effect on the register, with its result constraint.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Step {
    /// Write a value (known `Ok` or unknown outcome).
    Set(State),
    /// Delete that found the key present.
    DeleteOk,
    /// Delete that found the key absent.
    DeleteNotFound,
    /// Delete with unknown outcome: hit or miss.
    DeleteAny,
    /// Read that returned a value.
    GetValue(State),
    /// Read that found the key absent.
    GetNotFound,
}

impl Step {
    /// Whether the step never changes the register.
    pub(super) fn is_read_only(self) -> bool {
        matches!(self, Step::GetValue(_) | Step::GetNotFound | Step::DeleteNotFound)
    }

    /// The register after applying this step to `s`, or `None` when the
    /// observed result is impossible in state `s`.
    pub(super) fn apply(self, s: State) -> Option<State> {
        match self {
            Step::Set(v) => Some(v),
            Step::DeleteOk => (s != ABSENT).then_some(ABSENT),
            Step::DeleteNotFound | Step::GetNotFound => (s == ABSENT).then_some(ABSENT),
            Step::DeleteAny => Some(ABSENT),
            Step::GetValue(v) => (s == v).then_some(s),
        }
    }
}

/// An operation of one key's sub-history, ready for the search.
pub(super) struct KeyOp {
    /// Index in the checked history.
    pub(super) hist: usize,
    /// Its effect and result constraint.
    pub(super) step: Step,
    /// Invocation time.
    pub(super) invoke: u64,
    /// `None` for unknown outcomes (infinite completion time, optional).
    pub(super) complete: Option<u64>,
}

/// Why `op` is ill-formed, if it is.
pub(super) fn malformed(op: &Operation) -> Option<&'static str> {
    let consistent = matches!(
        (&op.op, &op.outcome),
        (_, KvOutcome::Unknown)
            | (KvOp::Set { .. }, KvOutcome::Ok)
            | (KvOp::Delete { .. }, KvOutcome::Ok | KvOutcome::NotFound)
            | (KvOp::Get { .. }, KvOutcome::Value(_) | KvOutcome::NotFound)
    );
    if !consistent {
        return Some("has an outcome this kind of operation cannot produce");
    }
    if op.outcome == KvOutcome::Unknown {
        return None;
    }
    match op.complete_ms {
        None => Some("has a known outcome but no completion time"),
        Some(c) if c < op.invoke_ms => Some("completed before it was invoked"),
        Some(_) => None,
    }
}
