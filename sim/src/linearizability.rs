//! Linearizability checker for key-value histories recorded by the simulator.
//!
//! The model is one register per key, initially absent: `Set` writes it,
//! `Delete` removes it (answering `NotFound` when it was already absent, `Ok`
//! otherwise) and `Get` reads it (`Value(v)` or `NotFound`).
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
//!    tried where they enable a pending operation, and a step is refused as
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

use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::hash::{BuildHasherDefault, Hasher};

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
}

impl KvOp {
    /// The key this operation touches.
    pub fn key(&self) -> &str {
        match self {
            KvOp::Set { key, .. } | KvOp::Delete { key } | KvOp::Get { key } => key,
        }
    }
}

impl fmt::Display for KvOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KvOp::Set { key, value } => write!(f, "set({key:?}, {value:?})"),
            KvOp::Delete { key } => write!(f, "delete({key:?})"),
            KvOp::Get { key } => write!(f, "get({key:?})"),
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
    /// No answer: the operation may or may not have taken effect.
    Unknown,
}

impl fmt::Display for KvOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KvOutcome::Ok => f.write_str("Ok"),
            KvOutcome::NotFound => f.write_str("NotFound"),
            KvOutcome::Value(v) => write!(f, "Value({v:?})"),
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

/// Why [`check`] rejected a history.
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

/// Limits on the search, applied to each key separately.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Budget {
    /// Most distinct configurations (linearized set, register value) explored.
    pub max_states: u64,
    /// Most bytes held by the memoization cache.
    pub max_cache_bytes: u64,
}

impl Default for Budget {
    /// Two million explored configurations and 256 MiB of cache per key:
    /// a fraction of a second of search on typical histories, a few seconds
    /// at worst.
    fn default() -> Self {
        Budget { max_states: 2_000_000, max_cache_bytes: 256 << 20 }
    }
}

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
        if let Some(why) = malformed(op) {
            return Err(Violation {
                kind: ViolationKind::MalformedHistory,
                key: op.op.key().to_string(),
                explanation: format!("operation #{i} ({op}) {why}"),
                op_indices: vec![i],
            });
        }
    }
    let mut by_key: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, op) in history.iter().enumerate() {
        by_key.entry(op.op.key()).or_default().push(i);
    }
    let mut undecided = None;
    for (key, indices) in by_key {
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

/// Why `op` is ill-formed, if it is.
fn malformed(op: &Operation) -> Option<&'static str> {
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

/// The register value: `ABSENT` or an interned value id.
type State = u32;
const ABSENT: State = 0;
/// Any value that no read of the key observes.
const UNOBSERVED: State = 1;

/// An operation's effect on the register, with its result constraint.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Step {
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
    fn is_read_only(self) -> bool {
        matches!(self, Step::GetValue(_) | Step::GetNotFound | Step::DeleteNotFound)
    }

    /// The register after applying this step to `s`, or `None` when the
    /// observed result is impossible in state `s`.
    fn apply(self, s: State) -> Option<State> {
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
struct KeyOp {
    /// Index in the checked history.
    hist: usize,
    step: Step,
    invoke: u64,
    /// `None` for unknown outcomes (infinite completion time, optional).
    complete: Option<u64>,
}

fn check_key(
    history: &[Operation],
    key: &str,
    indices: &[usize],
    budget: Budget,
    precheck: bool,
) -> Result<(), Violation> {
    // Intern written values first so that a read of a value nobody wrote can
    // be reported directly. Values that no read observes are all equivalent
    // to the model (only their presence matters), so they share one state.
    let observed: BTreeSet<&str> = indices
        .iter()
        .filter_map(|&i| match &history[i].outcome {
            KvOutcome::Value(v) => Some(v.as_str()),
            _ => None,
        })
        .collect();
    let mut ids: HashMap<&str, State> = HashMap::new();
    let mut values: Vec<&str> = vec!["", ""]; // ABSENT, UNOBSERVED
    for &i in indices {
        if let KvOp::Set { value, .. } = &history[i].op {
            if !ids.contains_key(value.as_str()) {
                let id = if observed.contains(value.as_str()) {
                    values.push(value);
                    (values.len() - 1) as State
                } else {
                    UNOBSERVED
                };
                ids.insert(value, id);
            }
        }
    }
    let mut ops = Vec::with_capacity(indices.len());
    for &i in indices {
        let o = &history[i];
        let known = o.outcome != KvOutcome::Unknown;
        let step = match (&o.op, &o.outcome) {
            (KvOp::Get { .. }, KvOutcome::Unknown) => continue,
            (KvOp::Set { value, .. }, _) => Step::Set(ids[value.as_str()]),
            (KvOp::Delete { .. }, KvOutcome::Ok) => Step::DeleteOk,
            (KvOp::Delete { .. }, KvOutcome::NotFound) => Step::DeleteNotFound,
            (KvOp::Delete { .. }, _) => Step::DeleteAny,
            (KvOp::Get { .. }, KvOutcome::Value(v)) => match ids.get(v.as_str()) {
                Some(&id) => Step::GetValue(id),
                None if precheck => {
                    return Err(violation(
                        ViolationKind::NotLinearizable,
                        history,
                        key,
                        indices,
                        Some(i),
                        &[i],
                        format!(
                            "operation #{i} ({o}) read {v:?}, but no operation ever wrote \
                             {v:?} to key {key:?}."
                        ),
                    ));
                }
                None => {
                    values.push(v);
                    let id = (values.len() - 1) as State;
                    ids.insert(v, id);
                    Step::GetValue(id)
                }
            },
            (KvOp::Get { .. }, _) => Step::GetNotFound,
        };
        ops.push(KeyOp { hist: i, step, invoke: o.invoke_ms, complete: if known { o.complete_ms } else { None } });
    }

    if precheck {
        if let Some((read, evidence)) = stale_read(&ops) {
            let (r, e) = (ops[read].hist, ops[evidence].hist);
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
            return Err(violation(ViolationKind::NotLinearizable, history, key, indices, Some(r), &[r, e], why));
        }
    }

    let (result, explored) = search(&ops, budget);
    let (failure, exceeded) = match result {
        SearchResult::Linearizable => return Ok(()),
        SearchResult::NotLinearizable(f) => (f, false),
        SearchResult::BudgetExceeded(f) => (f, true),
    };
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
        format!("holds {:?}", values[failure.state as usize])
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
    Err(violation(kind, history, key, indices, doomed.or(blocking), &marked, text))
}

/// Finds a read that real-time order alone refutes, without search: a read
/// of `x` such that some completed operation `e`, invoked after every write of
/// `x` completed and completed before the read was invoked, shows a state
/// other than `x` (after `e`, `x` can never come back, yet the read must come
/// after `e`); or a `NotFound` with such an `e` invoked after every delete
/// completed that shows the key present. Returns (read, e) as local indices.
///
/// A cheap O(n log n) pass that turns the most common violations (stale
/// reads) into immediate, readable verdicts instead of exhaustive searches.
fn stale_read(ops: &[KeyOp]) -> Option<(usize, usize)> {
    // What each completed operation shows about the register: the value it
    // read or left (ABSENT for deletes and `NotFound`s); only evidence that
    // holds from its linearization point on counts, so a read of a value `y`
    // shows `y` (and hence not-`x`), and a successful delete shows ABSENT.
    let label = |o: &KeyOp| match o.step {
        Step::Set(v) | Step::GetValue(v) => v,
        Step::DeleteOk | Step::DeleteNotFound | Step::GetNotFound => ABSENT,
        Step::DeleteAny => unreachable!("unknown outcomes have no completion"),
    };
    let mut known: Vec<usize> = (0..ops.len()).filter(|&i| ops[i].complete.is_some()).collect();
    known.sort_by_key(|&i| (ops[i].invoke, i));
    // best[k]: the two earliest-completing operations among known[k..] with
    // distinct labels, as (complete, op).
    let mut best: Vec<[Option<(u64, usize)>; 2]> = vec![[None, None]; known.len() + 1];
    for k in (0..known.len()).rev() {
        let i = known[k];
        let entry = (ops[i].complete.unwrap_or(u64::MAX), i);
        let [a, b] = best[k + 1];
        best[k] = match a {
            None => [Some(entry), None],
            Some(a) if entry < a => {
                if label(&ops[a.1]) == label(&ops[i]) {
                    [Some(entry), b]
                } else {
                    [Some(entry), Some(a)]
                }
            }
            Some(a) => match b {
                _ if label(&ops[a.1]) == label(&ops[i]) => [Some(a), b],
                Some(b) if b <= entry => [Some(a), Some(b)],
                _ => [Some(a), Some(entry)],
            },
        };
    }
    // The earliest-completing known op invoked strictly after `after`
    // (`None`: any) whose label satisfies `wanted`.
    let evidence = |after: Option<u64>, wanted: &dyn Fn(State) -> bool| {
        let k = match after {
            None => 0,
            Some(t) => known.partition_point(|&i| ops[i].invoke <= t),
        };
        best[k].iter().flatten().find(|&&(_, i)| wanted(label(&ops[i]))).copied()
    };
    // Latest completion of the writers of each value and of the deletes;
    // u64::MAX when one has an unknown outcome (it may come at any time).
    let mut last_write: HashMap<State, u64> = HashMap::new();
    let mut last_delete: Option<u64> = None;
    for o in ops {
        let c = o.complete.unwrap_or(u64::MAX);
        match o.step {
            Step::Set(v) => {
                let t = last_write.entry(v).or_insert(c);
                *t = (*t).max(c);
            }
            Step::DeleteOk | Step::DeleteAny => last_delete = last_delete.max(Some(c)),
            _ => {}
        }
    }
    let mut reads: Vec<usize> = (0..ops.len()).collect();
    reads.sort_by_key(|&i| (ops[i].invoke, i));
    for r in reads {
        let found = match ops[r].step {
            Step::GetValue(x) => match last_write.get(&x) {
                Some(&t) if t != u64::MAX => evidence(Some(t), &|l| l != x),
                _ => None,
            },
            Step::GetNotFound | Step::DeleteNotFound => match last_delete {
                Some(u64::MAX) => None,
                after => evidence(after, &|l| l != ABSENT),
            },
            _ => None,
        };
        if let Some((complete, e)) = found {
            if complete < ops[r].invoke {
                return Some((r, e));
            }
        }
    }
    None
}

/// Builds a violation listing at most [`MAX_LISTED_OPS`] operations on `key`
/// (by invocation time) around history index `anchor`, flagging `marked`.
fn violation(
    kind: ViolationKind,
    history: &[Operation],
    key: &str,
    indices: &[usize],
    anchor: Option<usize>,
    marked: &[usize],
    mut explanation: String,
) -> Violation {
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

/// How far the search got before failing.
#[derive(Default)]
struct Failure {
    /// Completed operations placed in the deepest partial linearization.
    depth: usize,
    /// Length of that partial linearization (including unknown-outcome ops).
    len: usize,
    /// Its last few operations (local indices).
    tail: Vec<u32>,
    /// Register value after it.
    state: State,
    /// The completed operation whose return blocked it.
    blocking: Option<u32>,
    /// An operation whose linearization next would have made another
    /// (the second) impossible.
    doomed: Option<(u32, u32)>,
}

enum SearchResult {
    Linearizable,
    NotLinearizable(Failure),
    BudgetExceeded(Failure),
}

const NIL: u32 = u32::MAX;
const HEAD: u32 = 0;
const TAIL_SHOWN: usize = 8;

/// splitmix64: deterministic pseudo-random hash keys.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Passes an already well-mixed `u64` through as its own hash.
#[derive(Default)]
struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = mix(self.0 ^ u64::from(b));
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

/// Memo of explored configurations: exact (bitset, state) pairs, stored flat,
/// found through a Zobrist hash of the bitset combined with the state.
struct Cache {
    words: usize,
    heads: HashMap<u64, u32, BuildHasherDefault<IdHasher>>,
    next: Vec<u32>,
    states: Vec<State>,
    bits: Vec<u64>,
}

impl Cache {
    fn new(words: usize) -> Self {
        Cache { words, heads: HashMap::default(), next: Vec::new(), states: Vec::new(), bits: Vec::new() }
    }

    fn len(&self) -> usize {
        self.states.len()
    }

    /// Approximate memory held, in bytes.
    fn bytes(&self) -> u64 {
        (self.len() * (self.words * 8 + 8 + 16)) as u64
    }

    /// Inserts the configuration; false if it was already present.
    fn insert(&mut self, bits: &[u64], hash: u64, state: State) -> bool {
        let Cache { words, heads, next, states, bits: arena } = self;
        let w = *words;
        let new = states.len() as u32;
        let prev = match heads.get(&hash) {
            Some(&first) => {
                let mut i = first;
                while i != NIL {
                    let iu = i as usize;
                    if states[iu] == state && arena[iu * w..(iu + 1) * w] == *bits {
                        return false;
                    }
                    i = next[iu];
                }
                first
            }
            None => NIL,
        };
        heads.insert(hash, new);
        next.push(prev);
        states.push(state);
        arena.extend_from_slice(bits);
        true
    }
}

/// The doubly linked list of call/return events, in time order, with O(1)
/// removal and reinsertion of an operation's events (dancing links).
struct Events {
    prev: Vec<u32>,
    next: Vec<u32>,
    /// Local op index of each node (unused for `HEAD`).
    op: Vec<u32>,
    is_return: Vec<bool>,
    /// Return node of each op's call node, `NIL` for unknown outcomes.
    ret_of_call: Vec<u32>,
}

impl Events {
    fn new(ops: &[KeyOp]) -> Self {
        // (time, call before return at equal times, op) => equal timestamps
        // are concurrent.
        let mut evs: Vec<(u64, bool, u32)> = Vec::with_capacity(2 * ops.len());
        for (i, o) in ops.iter().enumerate() {
            evs.push((o.invoke, false, i as u32));
            if let Some(c) = o.complete {
                evs.push((c, true, i as u32));
            }
        }
        evs.sort_unstable();
        let n = evs.len() + 1;
        let mut e = Events {
            prev: (0..n as u32).map(|i| i.wrapping_sub(1)).collect(),
            next: (1..=n as u32).map(|i| if i == n as u32 { NIL } else { i }).collect(),
            op: vec![NIL; n],
            is_return: vec![false; n],
            ret_of_call: vec![NIL; n],
        };
        e.prev[0] = NIL;
        let mut call_node = vec![NIL; ops.len()];
        for (k, &(_, ret, op)) in evs.iter().enumerate() {
            let node = k + 1;
            e.op[node] = op;
            e.is_return[node] = ret;
            if ret {
                e.ret_of_call[call_node[op as usize] as usize] = node as u32;
            } else {
                call_node[op as usize] = node as u32;
            }
        }
        e
    }

    fn unlink(&mut self, n: u32) {
        let (p, x) = (self.prev[n as usize], self.next[n as usize]);
        self.next[p as usize] = x;
        if x != NIL {
            self.prev[x as usize] = p;
        }
    }

    fn relink(&mut self, n: u32) {
        let (p, x) = (self.prev[n as usize], self.next[n as usize]);
        self.next[p as usize] = n;
        if x != NIL {
            self.prev[x as usize] = n;
        }
    }

    /// Removes a call node and its return node.
    fn lift(&mut self, call: u32) {
        self.unlink(call);
        let r = self.ret_of_call[call as usize];
        if r != NIL {
            self.unlink(r);
        }
    }

    /// Undoes the matching [`Events::lift`] (lifts are undone in LIFO order).
    fn unlift(&mut self, call: u32) {
        let r = self.ret_of_call[call as usize];
        if r != NIL {
            self.relink(r);
        }
        self.relink(call);
    }
}

/// Counts of the operations not linearized yet, by what they need and
/// provide, to notice early that a configuration cannot be completed.
struct Remaining {
    /// Known-outcome operations.
    known: usize,
    /// `Set`s (any outcome) writing each state.
    writers: Vec<u32>,
    /// `Get`s that returned each state.
    readers: Vec<u32>,
    /// `Set`s of any value.
    sets: u32,
    /// `Delete`s that found the key (`Ok`) or may have (`Unknown`).
    deletes: u32,
    /// `Delete`s answering `Ok`.
    deletes_ok: u32,
    /// `Get`s and `Delete`s answering `NotFound`.
    not_found: u32,
}

impl Remaining {
    fn new(ops: &[KeyOp]) -> Self {
        let states = ops
            .iter()
            .map(|o| match o.step {
                Step::Set(v) | Step::GetValue(v) => v as usize + 1,
                _ => 0,
            })
            .max()
            .unwrap_or(0)
            .max(UNOBSERVED as usize + 1);
        let mut r = Remaining {
            known: 0,
            writers: vec![0; states],
            readers: vec![0; states],
            sets: 0,
            deletes: 0,
            deletes_ok: 0,
            not_found: 0,
        };
        for o in ops {
            r.count(o, 1);
        }
        r
    }

    fn count(&mut self, op: &KeyOp, delta: i32) {
        let add = |n: &mut u32| *n = n.wrapping_add_signed(delta);
        if op.complete.is_some() {
            self.known = self.known.wrapping_add_signed(delta as isize);
        }
        match op.step {
            Step::Set(v) => {
                add(&mut self.writers[v as usize]);
                add(&mut self.sets);
            }
            Step::GetValue(v) => add(&mut self.readers[v as usize]),
            Step::DeleteOk => {
                add(&mut self.deletes);
                add(&mut self.deletes_ok);
            }
            Step::DeleteAny => add(&mut self.deletes),
            Step::DeleteNotFound | Step::GetNotFound => add(&mut self.not_found),
        }
    }

    /// Whether, having just moved the register from `prev` to `now`, some
    /// remaining operation can never be linearized: a read of a value that
    /// was overwritten and will not be written again, a `NotFound` with the
    /// key present and no delete left, or a successful delete with the key
    /// absent and no set left.
    ///
    /// Returns the kind of operation that became impossible.
    fn doomed(&self, prev: State, now: State) -> Option<Step> {
        let p = prev as usize;
        if prev != now && prev > UNOBSERVED && self.writers[p] == 0 && self.readers[p] > 0 {
            Some(Step::GetValue(prev))
        } else if now != ABSENT && self.deletes == 0 && self.not_found > 0 {
            Some(Step::GetNotFound)
        } else if now == ABSENT && self.sets == 0 && self.deletes_ok > 0 {
            Some(Step::DeleteOk)
        } else {
            None
        }
    }
}

/// A linearized operation on the search stack.
struct Frame {
    /// Its call node.
    call: u32,
    /// The register before it.
    prev: State,
    /// Placed by the read-first rule: it has no alternatives to explore.
    forced: bool,
    /// The alternatives to it not yet tried, best last.
    untried: Vec<u32>,
}

/// Just-in-time linearization search over one key's operations, memoized on
/// (linearized set, register value).
///
/// On top of Lowe's algorithm it applies sound reductions (each preserves the
/// existence of a linearization, so verdicts are unchanged):
///
/// * Read first: an operation that does not change the register (a `Get`, or
///   a `Delete` answering `NotFound`) and whose result matches the current
///   register is linearized immediately, without branching. If any
///   linearization extends the current prefix, moving such an operation to
///   the front of the remainder yields another one: it is already allowed to
///   go next (its invocation precedes every pending return), it leaves the
///   register unchanged, and moving it earlier breaks no real-time
///   constraint.
/// * Interchangeable writes and unknown-outcome operations: see
///   [`Search::candidates`].
/// * Doomed steps: a step after which some remaining operation can never be
///   linearized is refused at once (see [`Remaining::doomed`]) instead of
///   being discovered when that operation's return is reached.
///
/// Values that no read observes share one state (see `check_key`), which lets
/// the memo merge configurations differing only in such a value.
struct Search<'a> {
    ops: &'a [KeyOp],
    budget: Budget,
    events: Events,
    zobrist: Vec<u64>,
    cache: Cache,
    bits: Vec<u64>,
    hash: u64,
    state: State,
    remaining: Remaining,
    total_known: usize,
    stack: Vec<Frame>,
    deepest: Option<Failure>,
    /// The last attempt rejected because it made some remaining operation
    /// impossible, since the last successful step: (attempted op, kind).
    last_doom: Option<(u32, Step)>,
}

impl<'a> Search<'a> {
    fn new(ops: &'a [KeyOp], budget: Budget) -> Self {
        let words = ops.len().div_ceil(64).max(1);
        let known = ops.iter().filter(|o| o.complete.is_some()).count();
        Search {
            ops,
            budget,
            events: Events::new(ops),
            zobrist: (0..ops.len() as u64).map(mix).collect(),
            cache: Cache::new(words),
            bits: vec![0; words],
            hash: 0,
            state: ABSENT,
            remaining: Remaining::new(ops),
            total_known: known,
            stack: Vec::new(),
            deepest: None,
            last_doom: None,
        }
    }

    fn toggle(&mut self, op: u32) {
        self.bits[op as usize / 64] ^= 1u64 << (op % 64);
        self.hash ^= self.zobrist[op as usize];
    }

    /// Linearizes the operation of `call` next, if its result is possible
    /// and the resulting configuration is new; otherwise hands `untried`
    /// back.
    fn try_lift(&mut self, call: u32, forced: bool, untried: Vec<u32>) -> Result<(), Vec<u32>> {
        let op = self.events.op[call as usize];
        let k = &self.ops[op as usize];
        let Some(next_state) = k.step.apply(self.state) else {
            return Err(untried);
        };
        self.toggle(op);
        let key = self.hash ^ mix(u64::from(next_state) ^ 0xA5A5_A5A5);
        if !self.cache.insert(&self.bits, key, next_state) {
            self.toggle(op);
            return Err(untried);
        }
        let prev = self.state;
        self.stack.push(Frame { call, prev, forced, untried });
        self.state = next_state;
        self.remaining.count(k, -1);
        self.events.lift(call);
        if let Some(kind) = self.remaining.doomed(prev, next_state) {
            self.last_doom = Some((op, kind));
            return Err(self.undo_top().untried);
        }
        self.last_doom = None;
        Ok(())
    }

    /// Undoes the most recent linearization step.
    fn undo_top(&mut self) -> Frame {
        let frame = self.stack.pop().expect("a linearized operation");
        let op = self.events.op[frame.call as usize];
        self.toggle(op);
        self.state = frame.prev;
        self.remaining.count(&self.ops[op as usize], 1);
        self.events.unlift(frame.call);
        frame
    }

    fn over_budget(&self) -> bool {
        self.cache.len() as u64 > self.budget.max_states || self.cache.bytes() > self.budget.max_cache_bytes
    }

    fn failure_here(&self, blocking: Option<u32>) -> Failure {
        Failure {
            depth: self.total_known - self.remaining.known,
            len: self.stack.len(),
            tail: self.stack[self.stack.len().saturating_sub(TAIL_SHOWN)..]
                .iter()
                .map(|f| self.events.op[f.call as usize])
                .collect(),
            state: self.state,
            blocking,
            doomed: self.last_doom.and_then(|(attempted, kind)| {
                // The remaining operation of that kind that must return first.
                let doomed = (0..self.ops.len() as u32)
                    .filter(|&o| self.bits[o as usize / 64] & (1 << (o % 64)) == 0)
                    .filter(|&o| {
                        let step = self.ops[o as usize].step;
                        step == kind || (kind == Step::GetNotFound && step == Step::DeleteNotFound)
                    })
                    .min_by_key(|&o| (self.ops[o as usize].complete.unwrap_or(u64::MAX), o))?;
                Some((attempted, doomed))
            }),
        }
    }

    /// Undoes linearized operations up to and including the most recent
    /// branching one; returns the alternatives to it not yet tried, or `None`
    /// when the stack ran out.
    fn backtrack(&mut self, blocking: Option<u32>) -> Option<Vec<u32>> {
        let depth = self.total_known - self.remaining.known;
        if self.deepest.as_ref().is_none_or(|d| depth > d.depth) {
            self.deepest = Some(self.failure_here(blocking));
        }
        while !self.stack.is_empty() {
            let frame = self.undo_top();
            if !frame.forced {
                return Some(frame.untried);
            }
        }
        None
    }

    /// The first candidate (a call before the earliest pending return) that
    /// leaves the register unchanged and whose result matches it.
    fn matching_read(&self) -> Option<u32> {
        let mut e = self.events.next[HEAD as usize];
        while e != NIL && !self.events.is_return[e as usize] {
            let step = self.ops[self.events.op[e as usize] as usize].step;
            if step.is_read_only() && step.apply(self.state).is_some() {
                return Some(e);
            }
            e = self.events.next[e as usize];
        }
        None
    }

    /// The earliest pending return's operation, if any.
    fn blocker(&self) -> Option<u32> {
        let mut e = self.events.next[HEAD as usize];
        while e != NIL {
            if self.events.is_return[e as usize] {
                return Some(self.events.op[e as usize]);
            }
            e = self.events.next[e as usize];
        }
        None
    }

    /// The state-changing candidates of the current configuration (calls
    /// before the earliest pending return whose result is possible now),
    /// best last.
    ///
    /// Candidates with the same effect here are interchangeable, and only
    /// the one that must return first is kept: if a linearization places
    /// another one, `b`, next and the kept one, `a`, later, swapping them
    /// gives a linearization too (same states; `a` may go now, and `b` may
    /// go where `a` was because it returns no earlier). An unknown-outcome
    /// delete has the effect of a successful one when the key is present.
    /// Together with all unobserved values sharing one state, this removes
    /// the branching over the order of writes nobody reads.
    ///
    /// An unknown-outcome operation is only a candidate when it would make
    /// possible some known-outcome candidate that is impossible now. In any
    /// linearization, an unknown-outcome operation not immediately followed
    /// by a known-outcome one it makes possible can be dropped: if what
    /// follows is a write (a `Set`, or any unknown-outcome operation, which
    /// is always possible) its effect is overwritten (a successful `Delete`
    /// that was possible before it has the same effect without it); if it is
    /// a read possible both before and after it, it changed nothing; and
    /// nothing need follow the last operation.
    ///
    /// The survivors are ordered: first those after which the earliest
    /// pending return could be linearized, then by the midpoint of their
    /// interval (unknown outcomes last), where a real system most likely
    /// linearized them.
    fn candidates(&self) -> Vec<u32> {
        let blocker = self.blocker().map(|b| self.ops[b as usize].step);
        // Known-outcome candidates impossible right now.
        let mut disabled: Vec<Step> = Vec::new();
        let mut e = self.events.next[HEAD as usize];
        while e != NIL && !self.events.is_return[e as usize] {
            let op = &self.ops[self.events.op[e as usize] as usize];
            if op.complete.is_some() && op.step.apply(self.state).is_none() {
                disabled.push(op.step);
            }
            e = self.events.next[e as usize];
        }
        // effect class -> (return time, call node)
        let mut best: BTreeMap<Step, (u64, u32)> = BTreeMap::new();
        let mut e = self.events.next[HEAD as usize];
        while e != NIL && !self.events.is_return[e as usize] {
            let op = &self.ops[self.events.op[e as usize] as usize];
            let enabling = |after: State| disabled.iter().any(|k| k.apply(after).is_some());
            let useful = match op.step.apply(self.state) {
                None => false,
                Some(_) if op.step.is_read_only() => false,
                Some(after) => op.complete.is_some() || enabling(after),
            };
            if useful {
                let class = match op.step {
                    Step::DeleteAny if self.state != ABSENT => Step::DeleteOk,
                    step => step,
                };
                let ret = op.complete.unwrap_or(u64::MAX);
                let slot = best.entry(class).or_insert((ret, e));
                if ret < slot.0 {
                    *slot = (ret, e);
                }
            }
            e = self.events.next[e as usize];
        }
        let mut found: Vec<(bool, u64, u32)> = best
            .into_values()
            .map(|(_, e)| {
                let op = &self.ops[self.events.op[e as usize] as usize];
                let unblocks = match (op.step.apply(self.state), blocker) {
                    (Some(s), Some(b)) => b.apply(s).is_some(),
                    _ => false,
                };
                let mid = match op.complete {
                    Some(c) => op.invoke / 2 + c / 2,
                    None => u64::MAX,
                };
                (!unblocks, mid, e)
            })
            .collect();
        found.sort_unstable_by(|a, b| b.cmp(a));
        found.into_iter().map(|(_, _, e)| e).collect()
    }

    fn run(mut self) -> (SearchResult, u64) {
        // `untried` holds the alternatives left in the current configuration;
        // `None` marks a configuration not yet looked at.
        let mut untried: Option<Vec<u32>> = None;
        'search: loop {
            if self.remaining.known == 0 {
                return (SearchResult::Linearizable, self.cache.len() as u64);
            }
            if self.over_budget() {
                let f = self.deepest.take().unwrap_or_else(|| self.failure_here(None));
                return (SearchResult::BudgetExceeded(f), self.cache.len() as u64);
            }
            let mut alternatives = match untried.take() {
                Some(alternatives) => alternatives,
                None => match self.matching_read() {
                    Some(read) => match self.try_lift(read, true, Vec::new()) {
                        Ok(()) => continue,
                        // Already explored from here: this configuration fails.
                        Err(none) => none,
                    },
                    None => self.candidates(),
                },
            };
            while let Some(call) = alternatives.pop() {
                match self.try_lift(call, false, alternatives) {
                    Ok(()) => continue 'search,
                    Err(rest) => alternatives = rest,
                }
            }
            // Every way to extend this configuration failed: backtrack.
            let blocking = self.blocker();
            match self.backtrack(blocking) {
                Some(rest) => untried = Some(rest),
                None => {
                    let f = self.deepest.take().unwrap_or_default();
                    return (SearchResult::NotLinearizable(f), self.cache.len() as u64);
                }
            }
        }
    }
}

fn search(ops: &[KeyOp], budget: Budget) -> (SearchResult, u64) {
    Search::new(ops, budget).run()
}

#[cfg(test)]
mod tests {
    use super::*;

    // ---- history-building helpers --------------------------------------

    fn set(client: u64, key: &str, value: &str, invoke: u64, complete: u64) -> Operation {
        Operation {
            client,
            op: KvOp::Set { key: key.into(), value: value.into() },
            invoke_ms: invoke,
            complete_ms: Some(complete),
            outcome: KvOutcome::Ok,
        }
    }

    fn set_unknown(client: u64, key: &str, value: &str, invoke: u64) -> Operation {
        Operation {
            client,
            op: KvOp::Set { key: key.into(), value: value.into() },
            invoke_ms: invoke,
            complete_ms: None,
            outcome: KvOutcome::Unknown,
        }
    }

    fn delete(client: u64, key: &str, invoke: u64, complete: u64, found: bool) -> Operation {
        Operation {
            client,
            op: KvOp::Delete { key: key.into() },
            invoke_ms: invoke,
            complete_ms: Some(complete),
            outcome: if found { KvOutcome::Ok } else { KvOutcome::NotFound },
        }
    }

    fn delete_unknown(client: u64, key: &str, invoke: u64) -> Operation {
        Operation {
            client,
            op: KvOp::Delete { key: key.into() },
            invoke_ms: invoke,
            complete_ms: None,
            outcome: KvOutcome::Unknown,
        }
    }

    fn get(client: u64, key: &str, invoke: u64, complete: u64, seen: Option<&str>) -> Operation {
        Operation {
            client,
            op: KvOp::Get { key: key.into() },
            invoke_ms: invoke,
            complete_ms: Some(complete),
            outcome: match seen {
                Some(v) => KvOutcome::Value(v.into()),
                None => KvOutcome::NotFound,
            },
        }
    }

    const OK: bool = true;
    const NOT_FOUND: bool = false;

    #[track_caller]
    fn assert_linearizable(history: &[Operation]) {
        if let Err(v) = check(history) {
            panic!("expected linearizable, got: {v}");
        }
    }

    #[track_caller]
    fn assert_not_linearizable(history: &[Operation]) -> Violation {
        match check(history) {
            Ok(()) => panic!("expected a violation, history was accepted"),
            Err(v) => {
                assert_eq!(v.kind, ViolationKind::NotLinearizable, "{v}");
                v
            }
        }
    }

    // ---- histories that must be rejected --------------------------------

    #[test]
    fn stale_read_after_completed_write_is_rejected() {
        let v = assert_not_linearizable(&[
            set(1, "x", "a", 0, 10),
            set(1, "x", "b", 20, 30),
            get(2, "x", 40, 50, Some("a")), // "b" was already in place
        ]);
        assert_eq!(v.key, "x");
        assert!(v.explanation.contains("#2"), "{v}");
    }

    #[test]
    fn stale_not_found_after_completed_write_is_rejected() {
        assert_not_linearizable(&[
            set(1, "x", "a", 0, 10),
            get(2, "x", 11, 20, None), //
        ]);
    }

    #[test]
    fn read_of_value_never_written_is_rejected() {
        let v = assert_not_linearizable(&[set(1, "x", "a", 0, 10), get(2, "x", 5, 15, Some("zzz"))]);
        assert!(v.explanation.contains("no operation ever wrote"), "{v}");
    }

    #[test]
    fn read_of_value_written_to_another_key_is_rejected() {
        assert_not_linearizable(&[
            set(1, "y", "a", 0, 10),
            get(2, "x", 5, 15, Some("a")), //
        ]);
    }

    #[test]
    fn sequential_reads_going_backwards_are_rejected() {
        assert_not_linearizable(&[
            set(1, "x", "a", 0, 10),
            set(2, "x", "b", 20, 100), // concurrent with both reads
            get(3, "x", 30, 40, Some("b")),
            get(4, "x", 50, 60, Some("a")), // after "b" was observed
        ]);
    }

    #[test]
    fn delete_reported_ok_on_absent_key_is_rejected() {
        assert_not_linearizable(&[
            delete(1, "x", 0, 10, OK), //
        ]);
        assert_not_linearizable(&[
            set(1, "x", "a", 0, 10),
            delete(1, "x", 20, 30, OK),
            delete(2, "x", 40, 50, OK), // already deleted
        ]);
    }

    #[test]
    fn delete_not_found_on_present_key_is_rejected() {
        assert_not_linearizable(&[
            set(1, "x", "a", 0, 10),
            delete(2, "x", 20, 30, NOT_FOUND), //
        ]);
    }

    #[test]
    fn read_seeing_write_invoked_after_read_completed_is_rejected() {
        assert_not_linearizable(&[
            get(1, "x", 0, 10, Some("a")),
            set(2, "x", "a", 11, 20), //
        ]);
    }

    #[test]
    fn read_seeing_unknown_write_invoked_after_read_completed_is_rejected() {
        assert_not_linearizable(&[
            get(1, "x", 0, 10, Some("a")),
            set_unknown(2, "x", "a", 11), //
        ]);
    }

    #[test]
    fn unknown_write_takes_effect_at_most_once() {
        assert_not_linearizable(&[
            set_unknown(1, "x", "a", 0),
            get(2, "x", 10, 20, Some("a")),
            set(3, "x", "b", 30, 40),
            get(2, "x", 50, 60, Some("a")), // "a" cannot come back
        ]);
    }

    #[test]
    fn value_disappearing_without_a_delete_is_rejected() {
        assert_not_linearizable(&[
            set(1, "x", "a", 0, 10),
            get(2, "x", 20, 30, Some("a")),
            delete_unknown(3, "x", 25),
            get(2, "x", 40, 50, None),      // fine: the unknown delete took effect
            get(2, "x", 60, 70, Some("a")), // but "a" cannot come back
        ]);
    }

    #[test]
    fn violation_on_one_key_is_found_among_healthy_keys() {
        let v = assert_not_linearizable(&[
            set(1, "a", "1", 0, 10),
            get(2, "a", 20, 30, Some("1")),
            set(1, "b", "1", 0, 10),
            get(2, "b", 20, 30, None), // stale
            set(1, "c", "1", 0, 10),
            get(2, "c", 20, 30, Some("1")),
        ]);
        assert_eq!(v.key, "b");
        assert_eq!(v.op_indices, vec![2, 3]);
    }

    // ---- histories that must be accepted --------------------------------

    #[test]
    fn empty_history_is_accepted() {
        assert_linearizable(&[]);
    }

    #[test]
    fn sequential_history_is_accepted() {
        assert_linearizable(&[
            get(1, "x", 0, 1, None),
            delete(1, "x", 2, 3, NOT_FOUND),
            set(1, "x", "a", 4, 5),
            get(1, "x", 6, 7, Some("a")),
            set(1, "x", "b", 8, 9),
            get(1, "x", 10, 11, Some("b")),
            delete(1, "x", 12, 13, OK),
            get(1, "x", 14, 15, None),
        ]);
    }

    #[test]
    fn concurrent_writes_with_reads_seeing_either_are_accepted() {
        // "a" and "b" race; each reader may see either order take effect...
        assert_linearizable(&[
            set(1, "x", "a", 0, 100),
            set(2, "x", "b", 0, 100),
            get(3, "x", 10, 20, Some("b")),
            get(4, "x", 30, 40, Some("a")),
            get(5, "x", 150, 160, Some("a")),
        ]);
        assert_linearizable(&[
            set(1, "x", "a", 0, 100),
            set(2, "x", "b", 0, 100),
            get(3, "x", 10, 20, Some("a")),
            get(4, "x", 30, 40, Some("b")),
            get(5, "x", 150, 160, Some("b")),
        ]);
        // ...including overlapping reads that disagree.
        assert_linearizable(&[
            set(1, "x", "a", 0, 100),
            set(2, "x", "b", 0, 100),
            get(3, "x", 10, 90, Some("a")),
            get(4, "x", 10, 90, Some("b")),
        ]);
    }

    #[test]
    fn unknown_write_that_later_appears_is_accepted() {
        assert_linearizable(&[
            set(1, "x", "a", 0, 10),
            set_unknown(2, "x", "b", 20),
            get(3, "x", 30, 40, Some("a")),     // not yet applied
            get(3, "x", 1000, 1010, Some("b")), // applied long after the client gave up
        ]);
    }

    #[test]
    fn unknown_write_that_never_appears_is_accepted() {
        assert_linearizable(&[
            set(1, "x", "a", 0, 10),
            set_unknown(2, "x", "b", 20),
            get(3, "x", 30, 40, Some("a")),
            get(3, "x", 1000, 1010, Some("a")),
        ]);
    }

    #[test]
    fn unknown_delete_may_hit_or_miss() {
        assert_linearizable(&[set(1, "x", "a", 0, 10), delete_unknown(2, "x", 20), get(3, "x", 30, 40, None)]);
        assert_linearizable(&[set(1, "x", "a", 0, 10), delete_unknown(2, "x", 20), get(3, "x", 30, 40, Some("a"))]);
        assert_linearizable(&[
            delete_unknown(2, "x", 0), // on an absent key: a miss
            get(3, "x", 30, 40, None),
        ]);
    }

    #[test]
    fn delete_not_found_concurrent_with_set_is_accepted() {
        assert_linearizable(&[
            set(1, "x", "a", 0, 100),
            delete(2, "x", 10, 20, NOT_FOUND), // before the set took effect
            get(3, "x", 200, 210, Some("a")),
        ]);
        assert_linearizable(&[
            set(1, "x", "a", 0, 100),
            delete(2, "x", 10, 20, OK), // after the set took effect
            get(3, "x", 200, 210, None),
        ]);
    }

    #[test]
    fn equal_timestamps_count_as_concurrent() {
        assert_linearizable(&[
            set(1, "x", "a", 0, 10),
            get(2, "x", 10, 20, None), // invoked the millisecond the set completed
        ]);
    }

    #[test]
    fn keys_are_checked_independently() {
        // Real-time order across keys imposes nothing.
        assert_linearizable(&[
            set(1, "x", "a", 0, 10),
            set(1, "y", "b", 20, 30),
            get(2, "y", 40, 50, Some("b")),
            get(2, "x", 60, 70, Some("a")),
        ]);
    }

    #[test]
    fn history_order_does_not_matter() {
        let history = vec![
            get(4, "x", 50, 60, Some("a")),
            set(2, "x", "b", 20, 100),
            get(3, "x", 30, 40, Some("b")),
            set(1, "x", "a", 0, 10),
        ];
        assert_not_linearizable(&history);
        let mut reversed = history.clone();
        reversed.reverse();
        assert_not_linearizable(&reversed);
    }

    #[test]
    fn unknown_get_and_late_completion_of_unknown_op_are_ignored() {
        let mut timed_out_set = set_unknown(2, "x", "b", 20);
        timed_out_set.complete_ms = Some(25); // when the client gave up
        assert_linearizable(&[
            set(1, "x", "a", 0, 10),
            timed_out_set,
            Operation {
                client: 3,
                op: KvOp::Get { key: "x".into() },
                invoke_ms: 30,
                complete_ms: None,
                outcome: KvOutcome::Unknown,
            },
            get(3, "x", 40, 50, Some("a")),
            get(3, "x", 60, 70, Some("b")),
        ]);
    }

    // ---- malformed histories, budget, reporting -------------------------

    #[test]
    fn malformed_operations_are_reported() {
        let mut bad = set(1, "x", "a", 0, 10);
        bad.outcome = KvOutcome::NotFound;
        let v = check(&[get(1, "x", 0, 1, None), bad]).unwrap_err();
        assert_eq!(v.kind, ViolationKind::MalformedHistory);
        assert_eq!(v.op_indices, vec![1]);

        let mut no_completion = get(1, "x", 0, 10, None);
        no_completion.complete_ms = None;
        assert_eq!(check(&[no_completion]).unwrap_err().kind, ViolationKind::MalformedHistory);

        let backwards = get(1, "x", 10, 5, None);
        assert_eq!(check(&[backwards]).unwrap_err().kind, ViolationKind::MalformedHistory);
    }

    #[test]
    fn exhausted_budget_is_reported_distinctly() {
        // Linearizable, but the search needs a configuration per operation.
        let history = realistic_history(7, 200, 5, 1);
        assert_linearizable(&history);

        let few_states = Budget { max_states: 50, ..Budget::default() };
        let v = check_with_budget(&history, few_states).unwrap_err();
        assert_eq!(v.kind, ViolationKind::BudgetExceeded, "{v}");
        assert!(v.is_budget_exceeded() && !v.is_not_linearizable());
        assert!(v.to_string().starts_with("could not decide"), "{v}");
        assert!(v.explanation.contains("gave up after exploring"), "{v}");

        let little_memory = Budget { max_cache_bytes: 1_000, ..Budget::default() };
        let v = check_with_budget(&history, little_memory).unwrap_err();
        assert_eq!(v.kind, ViolationKind::BudgetExceeded, "{v}");
    }

    #[test]
    fn proven_violation_wins_over_undecided_key() {
        let mut history = realistic_history(7, 200, 5, 1); // "key0": undecided
        history.push(set(1, "y", "a", 0, 10));
        history.push(get(1, "y", 20, 30, None)); // "y": stale
        let few_states = Budget { max_states: 50, ..Budget::default() };
        let v = check_with_budget(&history, few_states).unwrap_err();
        assert_eq!(v.kind, ViolationKind::NotLinearizable);
        assert_eq!(v.key, "y");

        history.truncate(200);
        let v = check_with_budget(&history, few_states).unwrap_err();
        assert_eq!(v.kind, ViolationKind::BudgetExceeded);
        assert_eq!(v.key, "key0");
    }

    #[test]
    fn violation_explains_and_lists_at_most_thirty_ops() {
        let mut history: Vec<Operation> = (0..100).map(|i| set(1, "k", &format!("v{i}"), i * 10, i * 10 + 5)).collect();
        history.push(get(2, "k", 503, 508, Some("v10"))); // v50 is in place
        let v = assert_not_linearizable(&history);
        assert!(v.op_indices.len() <= MAX_LISTED_OPS);
        assert!(v.op_indices.contains(&100), "{v}");
        let text = v.to_string();
        assert!(text.starts_with("not linearizable on key \"k\""), "{text}");
        assert!(text.contains("#100 client 2 [503ms..508ms] get(\"k\") -> Value(\"v10\")  <=="));
        assert!(text.contains("operation #11 (client 1 [110ms..115ms] set(\"k\", \"v11\") -> Ok)"), "{text}");
        assert!(text.contains("no longer held \"v10\""), "{text}");
        assert!(text.lines().count() <= MAX_LISTED_OPS + 3, "{text}");
        // Deterministic.
        assert_eq!(check(&history).unwrap_err(), v);

        // The search (without the stale-read shortcut) explains where it
        // got stuck.
        let v = check_inner(&history, Budget::default(), false).unwrap_err();
        assert_eq!(v.kind, ViolationKind::NotLinearizable);
        let text = v.to_string();
        assert!(text.contains("places 11 of the 101 completed operations"), "{text}");
        assert!(text.contains("holds \"v10\""), "{text}");
        assert!(text.contains("would leave no way to linearize #100 (client 2"), "{text}");
        assert!(v.op_indices.len() <= MAX_LISTED_OPS);
    }

    #[test]
    fn operations_round_trip_through_json_lines() {
        let history = vec![
            set(1, "x", "a", 0, 10),
            set_unknown(2, "x", "b", 20),
            delete(3, "x", 5, 7, NOT_FOUND),
            get(4, "x", 8, 9, Some("a")),
        ];
        let lines: Vec<String> = history.iter().map(|o| serde_json::to_string(o).unwrap()).collect();
        let back: Vec<Operation> = lines.iter().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(back, history);
    }

    // ---- generated histories ---------------------------------------------

    /// Deterministic xorshift generator for the large-history tests.
    struct Rng(u64);

    impl Rng {
        fn below(&mut self, n: u64) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0 % n
        }
    }

    /// `clients` clients each issue operations back to back for `ops` total
    /// operations over `keys` keys. Each operation takes effect at a random
    /// instant inside its interval; outcomes are computed by applying the
    /// operations to a model in that order. About 2% of operations time out
    /// (unknown outcome) and take effect, or not, at random.
    fn realistic_history(seed: u64, ops: usize, clients: u64, keys: u64) -> Vec<Operation> {
        let mut rng = Rng(seed | 1);
        let mut free_at = vec![0u64; clients as usize];
        // (linearization point or None, operation without outcome)
        let mut drafts: Vec<(Option<u64>, Operation)> = Vec::with_capacity(ops);
        for n in 0..ops {
            let client = rng.below(clients);
            let invoke = free_at[client as usize] + rng.below(5);
            let duration = 1 + rng.below(40);
            let complete = invoke + duration;
            free_at[client as usize] = complete;
            let key = format!("key{}", rng.below(keys));
            let op = match rng.below(10) {
                0..=3 => KvOp::Set { key, value: format!("v{n}") },
                4 => KvOp::Delete { key },
                _ => KvOp::Get { key },
            };
            let unknown = rng.below(50) == 0;
            let point = invoke * 16 + rng.below(duration * 16 + 1) + rng.below(16);
            let applied = if unknown && rng.below(2) == 0 {
                None
            } else if unknown {
                Some(point + rng.below(2_000)) // possibly long after
            } else {
                Some(point)
            };
            drafts.push((
                applied,
                Operation {
                    client,
                    op,
                    invoke_ms: invoke,
                    complete_ms: (!unknown).then_some(complete),
                    outcome: KvOutcome::Unknown,
                },
            ));
        }
        let mut order: Vec<usize> = (0..drafts.len()).filter(|&i| drafts[i].0.is_some()).collect();
        order.sort_by_key(|&i| (drafts[i].0, i));
        let mut model = BTreeMap::new();
        for i in order {
            let op = &mut drafts[i].1;
            let outcome = apply(&mut model, &op.op);
            if op.complete_ms.is_some() {
                op.outcome = outcome;
            }
        }
        drafts.into_iter().map(|(_, o)| o).collect()
    }

    fn apply(model: &mut BTreeMap<String, String>, op: &KvOp) -> KvOutcome {
        match op {
            KvOp::Set { key, value } => {
                model.insert(key.clone(), value.clone());
                KvOutcome::Ok
            }
            KvOp::Delete { key } => match model.remove(key) {
                Some(_) => KvOutcome::Ok,
                None => KvOutcome::NotFound,
            },
            KvOp::Get { key } => match model.get(key) {
                Some(v) => KvOutcome::Value(v.clone()),
                None => KvOutcome::NotFound,
            },
        }
    }

    #[test]
    fn large_history_checks_within_budget() {
        let history = realistic_history(0x5EED, 5_000, 20, 10);
        let start = std::time::Instant::now();
        let result = check(&history);
        println!("large history (5000 ops, 20 clients, 10 keys) checked in {:?}", start.elapsed());
        if let Err(v) = result {
            panic!("{v}");
        }
    }

    #[test]
    fn hot_key_history_checks_within_budget() {
        let history = realistic_history(0xC0FFEE, 3_000, 20, 1);
        let start = std::time::Instant::now();
        let result = check(&history);
        println!("hot-key history (3000 ops, 20 clients, 1 key) checked in {:?}", start.elapsed());
        if let Err(v) = result {
            panic!("{v}");
        }
    }

    #[test]
    fn hot_key_stale_read_is_rejected() {
        let mut history = realistic_history(0xC0FFEE, 3_000, 20, 1);
        // The last read returns the value of a write that was overwritten by
        // one that started after it completed and completed before the read.
        let victim = history.iter().rposition(|o| matches!(o.outcome, KvOutcome::Value(_))).unwrap();
        let before = |o: &Operation, t: u64| o.complete_ms.is_some_and(|c| c < t);
        let overwriter = history
            .iter()
            .rposition(|o| matches!(o.op, KvOp::Set { .. }) && before(o, history[victim].invoke_ms))
            .unwrap();
        let stale = history
            .iter()
            .rposition(|o| matches!(o.op, KvOp::Set { .. }) && before(o, history[overwriter].invoke_ms))
            .unwrap();
        let KvOp::Set { value, .. } = history[stale].op.clone() else { unreachable!() };
        history[victim].outcome = KvOutcome::Value(value);
        let start = std::time::Instant::now();
        let result = check(&history);
        println!("hot-key stale read rejected in {:?}", start.elapsed());
        let v = result.unwrap_err();
        assert_eq!(v.kind, ViolationKind::NotLinearizable, "{v}");
        assert!(v.op_indices.contains(&victim), "{v}");
    }

    #[test]
    fn large_history_with_one_corrupted_read_is_rejected() {
        let mut history = realistic_history(0xBAD, 5_000, 20, 10);
        let victim = history
            .iter()
            .rposition(|o| matches!(o.outcome, KvOutcome::Value(_)) && o.op.key() == "key3")
            .expect("a read on key3");
        // A value that was written to key3, but long before the read.
        let first_write = history
            .iter()
            .position(|o| matches!(&o.op, KvOp::Set { key, .. } if key == "key3") && o.complete_ms.is_some())
            .unwrap();
        let KvOp::Set { value, .. } = history[first_write].op.clone() else { unreachable!() };
        assert!(history[first_write].complete_ms.unwrap() < history[victim].invoke_ms);
        history[victim].outcome = KvOutcome::Value(value);
        let start = std::time::Instant::now();
        let result = check(&history);
        println!("corrupted large history rejected in {:?}", start.elapsed());
        let v = result.unwrap_err();
        assert_eq!(v.key, "key3");
        assert_eq!(v.kind, ViolationKind::NotLinearizable, "{v}");
    }

    mod generated {
        use super::*;
        use proptest::prelude::*;

        #[derive(Clone, Debug)]
        struct Draft {
            kind: u8,
            key: u8,
            /// Slack before / after the linearization point, in steps.
            before: u64,
            after: u64,
            unknown: bool,
            applied: bool,
        }

        fn draft() -> impl Strategy<Value = Draft> {
            (0u8..4, 0u8..3, 0u64..4, 0u64..4, 0u8..12, any::<bool>()).prop_map(
                |(kind, key, before, after, u, applied)| Draft { kind, key, before, after, unknown: u == 0, applied },
            )
        }

        /// Executes the drafts sequentially against a model, operation `i`
        /// taking effect at time `10 * i + 5`, and gives each an interval
        /// around that instant (`overlap` = 0: intervals are disjoint).
        fn sequential_history(drafts: &[Draft], overlap: bool) -> Vec<Operation> {
            let mut model = BTreeMap::new();
            drafts
                .iter()
                .enumerate()
                .map(|(i, d)| {
                    let i = i as u64;
                    let key = format!("k{}", d.key);
                    let op = match d.kind {
                        0 => KvOp::Set { key, value: format!("v{i}") },
                        1 => KvOp::Delete { key },
                        _ => KvOp::Get { key },
                    };
                    let point = 10 * i + 5;
                    let (invoke, complete) = if overlap {
                        ((point - 4).saturating_sub(10 * d.before), point + 4 + 10 * d.after)
                    } else {
                        (point - 4, point + 4)
                    };
                    let outcome = if !d.unknown || d.applied { apply(&mut model, &op) } else { KvOutcome::Unknown };
                    let (outcome, complete_ms) =
                        if d.unknown { (KvOutcome::Unknown, None) } else { (outcome, Some(complete)) };
                    Operation { client: i % 7, op, invoke_ms: invoke, complete_ms, outcome }
                })
                .collect()
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(256))]

            #[test]
            fn prop_sequentially_executed_histories_are_accepted(
                drafts in prop::collection::vec(draft(), 0..80),
                overlap in any::<bool>(),
            ) {
                let history = sequential_history(&drafts, overlap);
                if let Err(v) = check(&history) {
                    return Err(TestCaseError::fail(format!("{v}")));
                }
            }

            #[test]
            fn prop_read_of_unwritten_value_is_rejected(
                drafts in prop::collection::vec(draft(), 1..80),
                overlap in any::<bool>(),
                pick in any::<prop::sample::Index>(),
            ) {
                let mut history = sequential_history(&drafts, overlap);
                let reads: Vec<usize> = (0..history.len())
                    .filter(|&i| matches!(history[i].op, KvOp::Get { .. })
                        && history[i].outcome != KvOutcome::Unknown)
                    .collect();
                prop_assume!(!reads.is_empty());
                let victim = reads[pick.index(reads.len())];
                history[victim].outcome = KvOutcome::Value("never written".into());

                let v = check(&history).unwrap_err();
                prop_assert_eq!(v.kind, ViolationKind::NotLinearizable);
                prop_assert!(v.op_indices.contains(&victim));
                // The search alone (without the never-written shortcut) must
                // reach the same verdict.
                let v = check_inner(&history, Budget::default(), false).unwrap_err();
                prop_assert_eq!(v.kind, ViolationKind::NotLinearizable, "{}", v);
                prop_assert_eq!(v.key, history[victim].op.key());
            }
        }

        /// Exhaustive reference: tries every order of every subset of the
        /// unknown-outcome operations together with all known-outcome ones,
        /// respecting real-time order. Only for tiny single-key histories.
        fn brute_force(history: &[Operation]) -> bool {
            fn must_precede(a: &Operation, b: &Operation) -> bool {
                a.outcome != KvOutcome::Unknown && a.complete_ms.is_some_and(|c| c < b.invoke_ms)
            }
            fn rec(h: &[Operation], placed: &mut Vec<bool>, state: Option<String>) -> bool {
                let done = (0..h.len()).all(|i| placed[i] || h[i].outcome == KvOutcome::Unknown);
                if done {
                    return true;
                }
                for i in 0..h.len() {
                    if placed[i] || (0..h.len()).any(|j| !placed[j] && j != i && must_precede(&h[j], &h[i])) {
                        continue;
                    }
                    let o = &h[i];
                    let unknown = o.outcome == KvOutcome::Unknown;
                    let next = match &o.op {
                        KvOp::Set { value, .. } => Some(Some(value.clone())),
                        KvOp::Delete { .. } => {
                            let ok = match o.outcome {
                                KvOutcome::Ok => state.is_some(),
                                KvOutcome::NotFound => state.is_none(),
                                _ => unknown,
                            };
                            ok.then_some(None)
                        }
                        KvOp::Get { .. } => {
                            let ok = match &o.outcome {
                                KvOutcome::Value(v) => state.as_ref() == Some(v),
                                KvOutcome::NotFound => state.is_none(),
                                _ => unknown,
                            };
                            ok.then(|| state.clone())
                        }
                    };
                    if let Some(next) = next {
                        placed[i] = true;
                        let found = rec(h, placed, next);
                        placed[i] = false;
                        if found {
                            return true;
                        }
                    }
                }
                false
            }
            rec(history, &mut vec![false; history.len()], None)
        }

        fn arbitrary_op() -> impl Strategy<Value = Operation> {
            (0u8..4, 0u8..3, 0u8..6, 0u64..20, 0u64..10, 0u8..3).prop_map(
                |(kind, value, o, invoke, duration, client)| {
                    let v = |n: u8| ["a", "b", "c"][n as usize % 3].to_string();
                    let key = "x".to_string();
                    let (op, outcome) = match kind {
                        0 => (KvOp::Set { key, value: v(value) }, KvOutcome::Ok),
                        1 => (KvOp::Delete { key }, if o % 2 == 0 { KvOutcome::Ok } else { KvOutcome::NotFound }),
                        _ => (
                            KvOp::Get { key },
                            if o % 3 == 0 { KvOutcome::NotFound } else { KvOutcome::Value(v(value)) },
                        ),
                    };
                    let unknown = o == 5;
                    Operation {
                        client: u64::from(client),
                        op,
                        invoke_ms: invoke,
                        complete_ms: (!unknown).then_some(invoke + duration),
                        outcome: if unknown { KvOutcome::Unknown } else { outcome },
                    }
                },
            )
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(3000))]

            #[test]
            fn prop_verdict_matches_brute_force_on_tiny_histories(
                history in prop::collection::vec(arbitrary_op(), 0..9),
            ) {
                let expected = brute_force(&history);
                let got = check(&history);
                prop_assert_eq!(got.is_ok(), expected, "{:?}", got);
                let searched = check_inner(&history, Budget::default(), false);
                prop_assert_eq!(searched.is_ok(), expected, "{:?}", searched);
                if let Err(v) = got {
                    prop_assert_eq!(v.kind, ViolationKind::NotLinearizable);
                }
            }
        }
    }
}
