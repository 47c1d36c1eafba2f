//! Linearizability checker for key-value histories recorded by the simulator.
//!
//! The model is one register per key, initially absent: `Set` writes it,
//! `Delete` removes it (answering `NotFound` when it was already absent, `Ok`
//! otherwise) and `Get` reads it (`Value(v)` or `NotFound`).
//!
//! `Cas` writes its value if the key holds the expected one (`Ok`), else
//! changes nothing (`CompareFailed`); an unknown `Cas` may take effect (as a
//! compare-and-swap) or not. A `Range` read at one instant is checked as one
//! `Get` per key it covers (every key of the history under its prefix), at the
//! range's times: each projection must be linearizable. That is sound but not
//! complete: that all of one range's keys were read at the *same* instant is
//! not checked.
//!
//! Leases (see `model`): a `Put` attaches its value to a lease; a revoke or
//! an expiry that took effect deletes, at its point in the history, every key
//! whose value is attached to that lease; grants, keep-alives, revokes and
//! attaching puts are checked against the lease's own register (held or not).
//!
//! Keys are independent, so the history is partitioned by key
//! (P-compositionality) and each key's sub-history is checked on its own, in
//! key order. For each key:
//!
//! 1. Cheap refutations first: a read of a value nobody wrote, and stale
//!    reads that real-time order alone refutes (an operation invoked after
//!    every write of `x` completed, and completed before a read of `x` was
//!    invoked, shows another value). These are the common bugs, and they get
//!    a short, precise explanation.
//! 2. Then the Wing & Gong / Lowe "just-in-time linearization" search,
//!    memoized as in Porcupine: the search walks the call/return events in
//!    time order, tentatively linearizing an operation whose call precedes
//!    the earliest pending return, and backtracks when that return is
//!    reached before its operation could be linearized. Configurations
//!    already explored — the exact set of linearized operations (a bitset)
//!    together with the register's value — are cached and never explored
//!    twice. On top of that, sound reductions keep high-concurrency
//!    histories near-linear: matching reads are linearized without
//!    branching, interchangeable writes are tried once, values no read
//!    observes are merged into one state, unknown-outcome operations are only
//!    tried where they enable a pending operation (with compare-and-swaps on
//!    the key: wherever they change the register, since a chain of them may be
//!    needed), and a step is refused as
//!    soon as it leaves some remaining operation impossible (see `Search` in the source).
//!
//! Timing conventions:
//!
//! * An operation that completed strictly before another was invoked must be
//!   linearized first. Equal timestamps count as concurrent (the clock has
//!   millisecond granularity, so the checker errs on the side of acceptance).
//! * An operation whose outcome is [`KvOutcome::Unknown`] (timed out, dropped)
//!   has an infinite completion time: it may take effect at any point after its
//!   invocation, or never. Its result is unconstrained (an unknown `Delete` may
//!   hit or miss). Any `complete_ms` recorded for it is ignored. An unknown
//!   `Get` cannot affect anything and is ignored by the search.
//!
//! The search is exponential in the worst case, so it runs under a [`Budget`];
//! running out is reported as a [`ViolationKind::BudgetExceeded`] violation,
//! distinct from a proven [`ViolationKind::NotLinearizable`] one. The checker
//! is deterministic: no decision depends on hash-map iteration order.
//!
//! The checker's parts, one file each: `model` (the register and each
//! operation's effect on it), `partition` (the history split by key, values
//! interned), `refute` (the cheap refutations), `search` (the memoized search,
//! over the `events` list with the `cache` of explored configurations) and
//! `report` (violations and their explanations). The history types are
//! [`crate::history`]'s, re-exported here.

mod cache;
mod events;
mod model;
mod partition;
mod refute;
mod report;
mod search;
#[cfg(test)]
mod tests;

pub use crate::history::{KvOp, KvOutcome, Operation};
pub use report::{Violation, ViolationKind, MAX_LISTED_OPS};
pub use search::Budget;

use search::SearchResult;

/// Checks that `history` is linearizable with respect to a map of
/// independent registers, using the default [`Budget`].
///
/// The order of `history` does not matter. On rejection, a
/// [`ViolationKind::NotLinearizable`] violation is preferred over a
/// [`ViolationKind::BudgetExceeded`] one on another key; ties go to the
/// smallest key. Malformed operations are reported before any search.
pub fn check(history: &[Operation]) -> Result<(), Violation> {
    check_with_budget(history, Budget::default())
}

/// [`check`] with an explicit search budget (applied per key).
pub fn check_with_budget(history: &[Operation], budget: Budget) -> Result<(), Violation> {
    check_inner(history, budget, true)
}

fn check_inner(history: &[Operation], budget: Budget, precheck: bool) -> Result<(), Violation> {
    for (i, op) in history.iter().enumerate() {
        if let Some(why) = model::malformed(op) {
            return Err(Violation {
                kind: ViolationKind::MalformedHistory,
                key: op.op.key().to_string(),
                explanation: format!("operation #{i} ({op}) {why}"),
                op_indices: vec![i],
            });
        }
    }
    let Some((split, origin)) = split_ranges(history) else {
        return check_split(history, budget, precheck);
    };
    check_split(&split, budget, precheck).map_err(|mut violation| {
        let mut indices: Vec<usize> = violation.op_indices.iter().map(|&i| origin[i]).collect();
        indices.dedup();
        violation.op_indices = indices;
        violation.explanation.push_str(" (operation numbers count each range as one get per key it covers)");
        violation
    })
}

/// Replaces every `Range` by one `Get` per key of the history it covers, at
/// its times; `None` when there is no range. Also returns, for each operation
/// of the new history, its index in `history`.
fn split_ranges(history: &[Operation]) -> Option<(Vec<Operation>, Vec<usize>)> {
    if !history.iter().any(|op| matches!(op.op, KvOp::Range { .. })) {
        return None;
    }
    let mut keys: std::collections::BTreeSet<&str> = std::collections::BTreeSet::new();
    for op in history {
        match (&op.op, &op.outcome) {
            (KvOp::Range { .. }, KvOutcome::Range(pairs)) => keys.extend(pairs.iter().map(|(k, _)| k.as_str())),
            (KvOp::Range { .. }, _) => {}
            (other, _) => {
                keys.insert(other.key());
            }
        }
    }
    let mut split = Vec::with_capacity(history.len());
    let mut origin = Vec::with_capacity(history.len());
    for (i, op) in history.iter().enumerate() {
        let (KvOp::Range { prefix }, KvOutcome::Range(pairs)) = (&op.op, &op.outcome) else {
            if !matches!(op.op, KvOp::Range { .. }) {
                split.push(op.clone());
                origin.push(i);
            }
            continue; // An unknown range affects nothing.
        };
        for &key in keys.range::<&str, _>(prefix.as_str()..).take_while(|key| key.starts_with(prefix.as_str())) {
            let outcome = match pairs.iter().find(|(k, _)| k == key) {
                Some((_, value)) => KvOutcome::Value(value.clone()),
                None => KvOutcome::NotFound,
            };
            split.push(Operation { op: KvOp::Get { key: key.to_owned() }, outcome, ..op.clone() });
            origin.push(i);
        }
    }
    Some((split, origin))
}

/// Checks a history without ranges (well-formedness was checked by `check_inner`).
fn check_split(history: &[Operation], budget: Budget, precheck: bool) -> Result<(), Violation> {
    let mut undecided = None;
    for (key, indices) in partition::by_key(history) {
        match check_key(history, key, &indices, budget, precheck) {
            Ok(()) => {}
            Err(v) if v.kind == ViolationKind::BudgetExceeded => {
                undecided.get_or_insert(v);
            }
            Err(v) => return Err(v),
        }
    }
    match undecided {
        Some(v) => Err(v),
        None => Ok(()),
    }
}

/// Checks the operations on `key` (`indices` into `history`): the cheap
/// refutations when `precheck` is on, then the search.
fn check_key(
    history: &[Operation],
    key: &str,
    indices: &[usize],
    budget: Budget,
    precheck: bool,
) -> Result<(), Violation> {
    let at = report::KeyHistory { history, key, indices };
    let sub = partition::sub_history(history, key, indices, precheck)
        .map_err(|(read, value)| report::unwritten_read(at, read, value))?;
    if precheck {
        if let Some((read, evidence)) = refute::stale_read(&sub.ops) {
            return Err(report::stale_read(at, sub.ops[read].hist, sub.ops[evidence].hist));
        }
    }
    let (result, explored) = search::search(&sub.ops, budget);
    let (failure, exceeded) = match result {
        SearchResult::Linearizable => return Ok(()),
        SearchResult::NotLinearizable(failure) => (failure, false),
        SearchResult::BudgetExceeded(failure) => (failure, true),
    };
    Err(report::search_failure(at, &sub, &failure, exceeded, explored, budget))
}
