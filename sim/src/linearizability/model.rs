//! The model: one register per key, initially absent. `Set` writes it,
//! `Delete` removes it (answering `NotFound` when it was already absent, `Ok`
//! otherwise) and `Get` reads it (`Value(v)` or `NotFound`). `Cas` writes its
//! value if the register holds its expected one (`Ok`) and otherwise leaves it
//! (`CompareFailed`). (A `Range` never reaches the model: the checker splits it
//! into one `Get` per key first.) Which outcomes an operation can have, and what
//! each [`Step`] does to the register.
//!
//! Leases: a `Put` writes its value attached to its lease, and a revoke or
//! expiry that takes effect deletes the key if the value it holds is attached
//! to that lease ([`Step::DropLease`]; a later plain `Set`, `Cas` or `Delete`
//! detaches it, as the store does). Every written value is unique, so the
//! value determines its lease: the values attached to one lease get
//! consecutive states. Each lease also has a register of its own (present
//! while held): a grant makes it present, a revoke or expiry absent, and a
//! keep-alive or attaching `Put` reads it (`Ok`: held; `LeaseNotFound`: not).

use crate::history::{KvOp, KvOutcome, LeaseOp, Operation};

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
    /// Compare-and-swap whose comparison held: the register was `expect`, now `new`.
    CasOk {
        /// The state compared with (`ABSENT`: must be absent).
        expect: State,
        /// The state written.
        new: State,
    },
    /// Compare-and-swap whose comparison failed: the register was not `expect`.
    CasFailed {
        /// The state compared with.
        expect: State,
    },
    /// Compare-and-swap with unknown outcome: writes `new` if the register is
    /// `expect` (when it takes effect at all).
    CasAny {
        /// The state compared with.
        expect: State,
        /// The state written if it held.
        new: State,
    },
    /// A lease revoked or expired: the key is deleted if its state is one of
    /// the lease's values, `from..to`; otherwise nothing changes.
    DropLease {
        /// The lease's first value state.
        from: State,
        /// One past its last.
        to: State,
    },
}

impl Step {
    /// Whether the step never changes the register.
    pub(super) fn is_read_only(self) -> bool {
        matches!(self, Step::GetValue(_) | Step::GetNotFound | Step::DeleteNotFound | Step::CasFailed { .. })
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
            Step::CasOk { expect, new } => (s == expect).then_some(new),
            Step::CasFailed { expect } => (s != expect).then_some(s),
            Step::CasAny { expect, new } => Some(if s == expect { new } else { s }),
            Step::DropLease { from, to } => Some(if (from..to).contains(&s) { ABSENT } else { s }),
        }
    }

    /// Whether the step's effect depends on the register (a compare-and-swap,
    /// or a lease drop): the search's reductions that assume unconditional
    /// writes are off then, and so are the cheap refutations.
    pub(super) fn is_cas(self) -> bool {
        matches!(self, Step::CasOk { .. } | Step::CasFailed { .. } | Step::CasAny { .. } | Step::DropLease { .. })
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
            | (KvOp::Cas { .. }, KvOutcome::Ok | KvOutcome::CompareFailed)
            | (KvOp::Range { .. }, KvOutcome::Range(_))
            | (KvOp::Put { .. }, KvOutcome::Ok | KvOutcome::LeaseNotFound)
            | (KvOp::Lease { op: LeaseOp::Grant | LeaseOp::Expire, .. }, KvOutcome::Ok)
            | (KvOp::Lease { op: LeaseOp::KeepAlive | LeaseOp::Revoke, .. }, KvOutcome::Ok | KvOutcome::LeaseNotFound)
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
