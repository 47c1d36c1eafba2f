//! The Wing & Gong / Lowe "just-in-time linearization" search over one key's
//! operations, memoized as in Porcupine, with the reductions that keep
//! high-concurrency histories near-linear (see [`Search`]).

use super::cache::{mix, Cache};
use super::events::{Events, HEAD, NIL};
use super::model::{KeyOp, State, Step, ABSENT, UNOBSERVED};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

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

/// How far the search got before failing.
#[derive(Default)]
pub(super) struct Failure {
    /// Completed operations placed in the deepest partial linearization.
    pub(super) depth: usize,
    /// Length of that partial linearization (including unknown-outcome ops).
    pub(super) len: usize,
    /// Its last few operations (local indices).
    pub(super) tail: Vec<u32>,
    /// Register value after it.
    pub(super) state: State,
    /// The completed operation whose return blocked it.
    pub(super) blocking: Option<u32>,
    /// An operation whose linearization next would have made another
    /// (the second) impossible.
    pub(super) doomed: Option<(u32, u32)>,
}

/// The verdict on one key.
pub(super) enum SearchResult {
    /// A linearization exists.
    Linearizable,
    /// None exists; how far the search got.
    NotLinearizable(Failure),
    /// Out of budget; how far the search got.
    BudgetExceeded(Failure),
}

/// Operations of the deepest partial linearization a report shows.
const TAIL_SHOWN: usize = 8;

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
                Step::CasOk { expect, new } | Step::CasAny { expect, new } => expect.max(new) as usize + 1,
                Step::CasFailed { expect } => expect as usize + 1,
                Step::DropLease { to, .. } => to as usize,
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
            // A compare-and-swap that may write counts as a writer of its value
            // and as a set (it can leave ABSENT), so that no state it could
            // bring back is declared unreachable; its own requirements are not
            // counted (that only prunes less).
            Step::CasOk { new, .. } | Step::CasAny { new, .. } => {
                add(&mut self.writers[new as usize]);
                add(&mut self.sets);
            }
            Step::CasFailed { .. } => {}
            // It may delete the key: a `NotFound` stays possible while it remains.
            Step::DropLease { .. } => add(&mut self.deletes),
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
    /// The sub-history has compare-and-swaps: an unknown-outcome operation may
    /// be needed two or more steps before the operation it enables.
    has_cas: bool,
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
            has_cas: ops.iter().any(|o| o.step.is_cas()),
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
                Some(after) => op.complete.is_some() || enabling(after) || (self.has_cas && after != self.state),
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

/// Searches a linearization of `ops`; also returns the configurations explored.
pub(super) fn search(ops: &[KeyOp], budget: Budget) -> (SearchResult, u64) {
    Search::new(ops, budget).run()
}
