//! What the checker reports: [`Violation`]s, with a readable explanation and
//! the operations on the key around the problem.

use super::model::{ABSENT, UNOBSERVED};
use super::partition::SubHistory;
use super::search::{Budget, Failure};
use crate::history::{KvOutcome, Operation};
use serde::{Deserialize, Serialize};
use std::fmt;

/// Why [`check`](super::check) rejected a history.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ViolationKind {
    /// Proven: no linearization of the operations on the key exists.
    NotLinearizable,
    /// Undecided: the search ran out of its [`Budget`] before finding a
    /// linearization or proving that none exists.
    BudgetExceeded,
    /// An operation is ill-formed (e.g. a `Set` answered `NotFound`, a known
    /// outcome without a completion time, or completion before invocation).
    MalformedHistory,
}

impl fmt::Display for ViolationKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ViolationKind::NotLinearizable => "not linearizable",
            ViolationKind::BudgetExceeded => "could not decide linearizability within budget",
            ViolationKind::MalformedHistory => "malformed history",
        })
    }
}

/// A rejected history: the key concerned, a readable explanation and the
/// operations on that key around the problem (at most [`MAX_LISTED_OPS`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Violation {
    /// What kind of rejection this is.
    pub kind: ViolationKind,
    /// The key whose sub-history was rejected.
    pub key: String,
    /// Human-readable explanation, including a listing of the operations on
    /// the key around the failure point, each tagged `#i` with its index in
    /// the checked history.
    pub explanation: String,
    /// Indices (into the checked history) of the listed operations, ordered by
    /// invocation time.
    pub op_indices: Vec<usize>,
}

impl Violation {
    /// True when the history was proven not linearizable.
    pub fn is_not_linearizable(&self) -> bool {
        self.kind == ViolationKind::NotLinearizable
    }

    /// True when the checker gave up (the history may or may not be
    /// linearizable).
    pub fn is_budget_exceeded(&self) -> bool {
        self.kind == ViolationKind::BudgetExceeded
    }
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} on key {:?}: {}", self.kind, self.key, self.explanation)
    }
}

impl std::error::Error for Violation {}

/// Most operations listed in a [`Violation`].
pub const MAX_LISTED_OPS: usize = 30;

/// The operations on one key that a report lists: `indices` into `history`.
#[derive(Clone, Copy)]
pub(super) struct KeyHistory<'a> {
    /// The whole checked history (operations are named by their index in it).
    pub(super) history: &'a [Operation],
    /// The key.
    pub(super) key: &'a str,
    /// The history indices of the operations on the key.
    pub(super) indices: &'a [usize],
}

/// Builds a violation listing at most [`MAX_LISTED_OPS`] operations on the
/// key (by invocation time) around history index `anchor`, flagging `marked`.
fn violation(
    kind: ViolationKind,
    at: KeyHistory<'_>,
    anchor: Option<usize>,
    marked: &[usize],
    mut explanation: String,
) -> Violation {
    let KeyHistory { history, key, indices } = at;
    let mut sorted = indices.to_vec();
    sorted.sort_by_key(|&i| (history[i].invoke_ms, i));
    let pos = anchor.and_then(|a| sorted.iter().position(|&i| i == a)).unwrap_or(0);
    let end = (pos.saturating_sub(2 * MAX_LISTED_OPS / 3) + MAX_LISTED_OPS).min(sorted.len());
    let start = end.saturating_sub(MAX_LISTED_OPS);
    let shown = &sorted[start..end];
    explanation.push_str(&format!(
        "\nOperations on key {key:?} ({} of {}, by invocation time):",
        shown.len(),
        sorted.len()
    ));
    for &i in shown {
        let mark = if marked.contains(&i) { "  <==" } else { "" };
        explanation.push_str(&format!("\n  #{i} {}{mark}", history[i]));
    }
    Violation { kind, key: key.to_string(), explanation, op_indices: shown.to_vec() }
}

/// Operation `read` (a history index) read `value`, which nobody wrote to the key.
pub(super) fn unwritten_read(at: KeyHistory<'_>, read: usize, value: &str) -> Violation {
    let (i, o, v, key) = (read, &at.history[read], value, at.key);
    let why = format!("operation #{i} ({o}) read {v:?}, but no operation ever wrote {v:?} to key {key:?}.");
    violation(ViolationKind::NotLinearizable, at, Some(i), &[i], why)
}

/// Operation `r` read a state that operation `e` (history indices) had
/// already left for good (see `refute::stale_read`).
pub(super) fn stale_read(at: KeyHistory<'_>, r: usize, e: usize) -> Violation {
    let history = at.history;
    let why = match &history[r].outcome {
        KvOutcome::Value(v) => format!(
            "operation #{r} ({}) read {v:?}, but operation #{e} ({}) was invoked after \
             every write of {v:?} had completed and completed before #{r} was \
             invoked, and it shows that the key no longer held {v:?}.",
            history[r], history[e]
        ),
        _ => format!(
            "operation #{r} ({}) found the key absent, but operation #{e} ({}) was \
             invoked after every delete of the key had completed and completed before \
             #{r} was invoked, and it shows that the key was present.",
            history[r], history[e]
        ),
    };
    violation(ViolationKind::NotLinearizable, at, Some(r), &[r, e], why)
}

/// The search found no linearization of `sub` (or, `exceeded`, ran out of
/// `budget` after exploring `explored` configurations): how far it got and
/// what blocked it.
pub(super) fn search_failure(
    at: KeyHistory<'_>,
    sub: &SubHistory<'_>,
    failure: &Failure,
    exceeded: bool,
    explored: u64,
    budget: Budget,
) -> Violation {
    let (history, ops) = (at.history, &sub.ops);
    let total_known = ops.iter().filter(|o| o.complete.is_some()).count();
    let describe = |local: u32| {
        let i = ops[local as usize].hist;
        format!("#{i} ({})", history[i])
    };
    let state = if failure.state == ABSENT {
        "is absent".to_string()
    } else if failure.state == UNOBSERVED {
        "holds a value that no read observes".to_string()
    } else {
        format!("holds {:?}", sub.values[failure.state as usize])
    };
    let mut text = String::new();
    if exceeded {
        text.push_str(&format!(
            "gave up after exploring {explored} configurations of the {} operations on the key \
             (budget: {} configurations, {} cache bytes). ",
            ops.len(),
            budget.max_states,
            budget.max_cache_bytes
        ));
    } else {
        text.push_str(&format!(
            "no linearization exists for the {} operations on the key \
             ({explored} configurations explored). ",
            ops.len()
        ));
    }
    text.push_str(&format!(
        "The deepest partial linearization found places {} of the {total_known} completed \
         operations",
        failure.depth
    ));
    if !failure.tail.is_empty() {
        let skipped = failure.len - failure.tail.len();
        text.push_str(", ending with: ");
        if skipped > 0 {
            text.push_str(&format!("... ({skipped} earlier), "));
        }
        let tail: Vec<String> = failure.tail.iter().map(|&o| describe(o)).collect();
        text.push_str(&tail.join(", "));
    }
    text.push_str(&format!("; after it the register {state}"));
    match failure.blocking {
        Some(b) => text.push_str(&format!(
            ", and completed operation {} cannot be linearized next, nor can any \
             operation that may precede it be placed in a way that lets it be.",
            describe(b)
        )),
        None => text.push('.'),
    }
    if let Some((attempted, doomed)) = failure.doomed {
        text.push_str(&format!(
            " For instance, linearizing {} next would leave no way to linearize {} later.",
            describe(attempted),
            describe(doomed)
        ));
    }
    let kind = if exceeded { ViolationKind::BudgetExceeded } else { ViolationKind::NotLinearizable };
    let blocking = failure.blocking.map(|b| ops[b as usize].hist);
    let doomed = failure.doomed.map(|(_, d)| ops[d as usize].hist);
    let marked: Vec<usize> = blocking.into_iter().chain(doomed).collect();
    violation(kind, at, doomed.or(blocking), &marked, text)
}
