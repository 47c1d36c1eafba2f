//! Cheap refutations, before any search: stale reads that real-time order
//! alone refutes. These are the common bugs, and they get a short, precise
//! explanation (see `report::stale_read`).

use super::model::{KeyOp, State, Step, ABSENT};
use std::collections::HashMap;

/// Finds a read that real-time order alone refutes, without search: a read
/// of `x` such that some completed operation `e`, invoked after every write of
/// `x` completed and completed before the read was invoked, shows a state
/// other than `x` (after `e`, `x` can never come back, yet the read must come
/// after `e`); or a `NotFound` with such an `e` invoked after every delete
/// completed that shows the key present. Returns (read, e) as local indices.
///
/// A cheap O(n log n) pass that turns the most common violations (stale
/// reads) into immediate, readable verdicts instead of exhaustive searches.
pub(super) fn stale_read(ops: &[KeyOp]) -> Option<(usize, usize)> {
    // Compare-and-swap steps carry no single label; the search judges them.
    if ops.iter().any(|o| o.step.is_cas()) {
        return None;
    }
    // What each completed operation shows about the register: the value it
    // read or left (ABSENT for deletes and `NotFound`s); only evidence that
    // holds from its linearization point on counts, so a read of a value `y`
    // shows `y` (and hence not-`x`), and a successful delete shows ABSENT.
    let label = |o: &KeyOp| match o.step {
        Step::Set(v) | Step::GetValue(v) => v,
        Step::DeleteOk | Step::DeleteNotFound | Step::GetNotFound => ABSENT,
        Step::DeleteAny => unreachable!("unknown outcomes have no completion"),
        Step::CasOk { .. } | Step::CasFailed { .. } | Step::CasAny { .. } | Step::DropLease { .. } => {
            unreachable!("left to the search")
        }
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
