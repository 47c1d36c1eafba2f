//! A stand-in linearizability checker for key-value histories, used by the
//! scenarios until the simulator ships its own (`sim::linearizability`, on the
//! `lin` branch). It has the signature of `SimOptions::linearizability`.
//!
//! Model: one register per key, initially absent. `Set` writes it (answering
//! `Ok`); `Delete` removes it (`Ok` if present, `NotFound` if absent); `Get`
//! reads it. Keys are independent, so each key's sub-history is checked alone
//! with the Wing & Gong search, memoized on (linearized set, value).
//!
//! Timing: an operation that completed strictly before another was invoked is
//! linearized first (equal times count as concurrent). An operation with an
//! unknown outcome may take effect at any time after its invocation, or never;
//! an unknown `Get` constrains nothing and is dropped.

use sim::{KvOp, KvOutcome, Operation};
use std::collections::{BTreeMap, HashSet};

/// Explored states per key before giving up (reported as an error).
pub const STATES_MAX: usize = 2_000_000;

/// Checks a whole history; `Err` names the first key that has no linearization.
pub fn check(operations: &[Operation]) -> Result<(), String> {
    let mut by_key: BTreeMap<&str, Vec<&Operation>> = BTreeMap::new();
    for operation in operations {
        if matches!(operation.op, KvOp::Get { .. }) && operation.outcome == KvOutcome::Unknown {
            continue;
        }
        by_key.entry(operation.op.key()).or_default().push(operation);
    }
    for (key, operations) in by_key {
        check_key(&operations).map_err(|detail| format!("key {key:?}: {detail}"))?;
    }
    Ok(())
}

struct KeyOp<'a> {
    op: &'a KvOp,
    outcome: &'a KvOutcome,
    invoke_ms: u64,
    /// `u64::MAX` for an unknown outcome.
    complete_ms: u64,
}

struct Search<'a> {
    ops: Vec<KeyOp<'a>>,
    seen: HashSet<(Vec<u64>, Option<&'a str>)>,
    states: usize,
}

fn check_key(operations: &[&Operation]) -> Result<(), String> {
    let mut ops: Vec<KeyOp> = operations
        .iter()
        .map(|operation| KeyOp {
            op: &operation.op,
            outcome: &operation.outcome,
            invoke_ms: operation.invoke_ms,
            complete_ms: match operation.outcome {
                KvOutcome::Unknown => u64::MAX,
                _ => operation.complete_ms.unwrap_or(u64::MAX),
            },
        })
        .collect();
    ops.sort_by_key(|op| (op.invoke_ms, op.complete_ms));
    let definite = ops.iter().filter(|op| op.complete_ms != u64::MAX).count();
    let mut search = Search { ops, seen: HashSet::new(), states: 0 };
    let mut done = vec![0u64; search.ops.len().div_ceil(64)];
    match search.explore(&mut done, None, definite) {
        Some(true) => Ok(()),
        Some(false) => Err(format!("no linearization of its {} operations", search.ops.len())),
        None => Err(format!("search budget of {STATES_MAX} states exceeded ({} operations)", search.ops.len())),
    }
}

impl<'a> Search<'a> {
    /// `Some(true)`: linearizable from here; `Some(false)`: not; `None`: budget.
    fn explore(&mut self, done: &mut [u64], value: Option<&'a str>, definite_left: usize) -> Option<bool> {
        if definite_left == 0 {
            return Some(true);
        }
        if !self.seen.insert((done.to_vec(), value)) {
            return Some(false);
        }
        self.states += 1;
        if self.states > STATES_MAX {
            return None;
        }
        let is_done = |done: &[u64], i: usize| done[i / 64] & (1 << (i % 64)) != 0;
        let horizon = (0..self.ops.len()).filter(|&i| !is_done(done, i)).map(|i| self.ops[i].complete_ms).min()?;
        for i in 0..self.ops.len() {
            if is_done(done, i) {
                continue;
            }
            if self.ops[i].invoke_ms > horizon {
                break; // sorted by invocation: nothing later is eligible
            }
            let Some(next) = step(self.ops[i].op, self.ops[i].outcome, value) else {
                continue;
            };
            done[i / 64] |= 1 << (i % 64);
            let left = definite_left - usize::from(self.ops[i].complete_ms != u64::MAX);
            let result = self.explore(done, next, left);
            done[i / 64] &= !(1 << (i % 64));
            match result {
                Some(false) => {}
                other => return other,
            }
        }
        Some(false)
    }
}

/// The register after `op` with `outcome` on `value`, or `None` if the outcome
/// is impossible there.
fn step<'a>(op: &'a KvOp, outcome: &'a KvOutcome, value: Option<&'a str>) -> Option<Option<&'a str>> {
    match (op, outcome) {
        (KvOp::Set { value: new, .. }, KvOutcome::Ok | KvOutcome::Unknown) => Some(Some(new.as_str())),
        (KvOp::Delete { .. }, KvOutcome::Unknown) => Some(None),
        (KvOp::Delete { .. }, KvOutcome::Ok) => value.map(|_| None),
        (KvOp::Delete { .. }, KvOutcome::NotFound) => value.is_none().then_some(None),
        (KvOp::Get { .. }, KvOutcome::Value(read)) => (value == Some(read.as_str())).then_some(value),
        (KvOp::Get { .. }, KvOutcome::NotFound) => value.is_none().then_some(None),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(client: u64, op: KvOp, invoke_ms: u64, complete_ms: Option<u64>, outcome: KvOutcome) -> Operation {
        Operation { client, op, invoke_ms, complete_ms, outcome }
    }
    fn set(v: &str) -> KvOp {
        KvOp::Set { key: "k".into(), value: v.into() }
    }
    fn get() -> KvOp {
        KvOp::Get { key: "k".into() }
    }

    #[test]
    fn a_sequential_history_is_linearizable() {
        let history = [
            op(1, set("a"), 0, Some(10), KvOutcome::Ok),
            op(2, get(), 11, Some(12), KvOutcome::Value("a".into())),
            op(1, KvOp::Delete { key: "k".into() }, 13, Some(14), KvOutcome::Ok),
            op(2, get(), 15, Some(16), KvOutcome::NotFound),
        ];
        assert_eq!(check(&history), Ok(()));
    }

    #[test]
    fn a_stale_read_is_caught() {
        let history = [
            op(1, set("a"), 0, Some(10), KvOutcome::Ok),
            op(1, set("b"), 11, Some(20), KvOutcome::Ok),
            op(2, get(), 21, Some(22), KvOutcome::Value("a".into())),
        ];
        assert!(check(&history).is_err());
    }

    #[test]
    fn an_unknown_write_may_apply_late_or_never() {
        let late = [
            op(1, set("a"), 0, None, KvOutcome::Unknown),
            op(2, get(), 5, Some(6), KvOutcome::NotFound),
            op(2, get(), 50, Some(60), KvOutcome::Value("a".into())),
        ];
        assert_eq!(check(&late), Ok(()));
        let never = [op(1, set("a"), 0, None, KvOutcome::Unknown), op(2, get(), 50, Some(60), KvOutcome::NotFound)];
        assert_eq!(check(&never), Ok(()));
        // But it cannot take effect before it was invoked.
        let early =
            [op(2, get(), 0, Some(5), KvOutcome::Value("a".into())), op(1, set("a"), 10, None, KvOutcome::Unknown)];
        assert!(check(&early).is_err());
    }

    #[test]
    fn a_write_that_takes_effect_twice_is_caught() {
        // a, then b overwrote it, then a reappears: a applied twice.
        let history = [
            op(1, set("a"), 0, None, KvOutcome::Unknown),
            op(2, get(), 100, Some(101), KvOutcome::Value("a".into())),
            op(2, set("b"), 102, Some(103), KvOutcome::Ok),
            op(2, get(), 104, Some(105), KvOutcome::Value("a".into())),
        ];
        assert!(check(&history).is_err());
    }
}
