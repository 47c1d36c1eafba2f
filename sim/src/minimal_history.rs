//! The first divergent step of a linearizability failure: the earliest
//! operation of a minimal non-linearizable sub-history of the offending key.
//! Delta debugging over that key's operations, with the checker as the oracle;
//! a candidate counts only if every value it reads (or compares against) is
//! written inside it, so the minimum is a real anomaly, not a read whose write
//! was cut away.

use crate::history::{KvOp, KvOutcome, Operation};
use crate::linearizability::check;
use std::collections::BTreeSet;

/// Most operations on the key for which a minimum is searched (the oracle runs
/// a linearizability search per candidate).
const KEY_OPS_MAX: usize = 2_000;

/// A minimal non-linearizable sub-history of `key` in `history`: history indices, by invocation time.
pub fn minimal_sub_history(history: &[Operation], key: &str) -> Option<Vec<usize>> {
    let indices: Vec<usize> = (0..history.len())
        .filter(|&i| history[i].op.key() == key && !matches!(history[i].op, KvOp::Range { .. }))
        .collect();
    if indices.len() > KEY_OPS_MAX {
        return None;
    }
    let fails = |subset: &[usize]| -> bool {
        let ops: Vec<Operation> = subset.iter().map(|&i| history[i].clone()).collect();
        self_contained(&ops) && check(&ops).is_err_and(|violation| violation.is_not_linearizable())
    };
    if !fails(&indices) {
        return None;
    }
    let mut minimal = crate::shrink::ddmin(indices, fails);
    minimal.sort_by_key(|&i| (history[i].invoke_ms, i));
    Some(minimal)
}

/// Every value the operations read or compare against is written by one of them.
fn self_contained(ops: &[Operation]) -> bool {
    let written: BTreeSet<&str> = ops
        .iter()
        .filter_map(|op| match &op.op {
            KvOp::Set { value, .. } | KvOp::Cas { value, .. } => Some(value.as_str()),
            _ => None,
        })
        .collect();
    ops.iter().all(|op| match (&op.op, &op.outcome) {
        (_, KvOutcome::Value(value)) => written.contains(value.as_str()),
        (KvOp::Cas { expected: Some(expected), .. }, KvOutcome::Ok) => written.contains(expected.as_str()),
        _ => true,
    })
}

/// The sentence a linearizability failure carries: the minimal sub-history's
/// size and its earliest operation.
pub fn first_divergent_operation(history: &[Operation], key: &str) -> Option<String> {
    let minimal = minimal_sub_history(history, key)?;
    let first = *minimal.first()?;
    let listed: Vec<String> = minimal.iter().map(|&i| format!("#{i} {}", history[i])).collect();
    Some(format!(
        "first divergent step: #{first} {} (the earliest of a minimal non-linearizable sub-history of {} \
         operations on key {key:?}: {})",
        history[first],
        minimal.len(),
        listed.join("; ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(client: u64, op: KvOp, invoke_ms: u64, complete_ms: u64, outcome: KvOutcome) -> Operation {
        Operation { client, op, invoke_ms, complete_ms: Some(complete_ms), outcome }
    }

    fn set(value: &str) -> KvOp {
        KvOp::Set { key: "k".into(), value: value.into() }
    }

    #[test]
    fn a_stale_read_shrinks_to_its_write_the_overwrite_and_the_read() {
        let get = || KvOp::Get { key: "k".into() };
        let mut history = vec![op(9, KvOp::Get { key: "other".into() }, 0, 1, KvOutcome::NotFound)];
        for i in 0..10 {
            history.push(op(1, set(&format!("v{i}")), 10 * i + 1, 10 * i + 2, KvOutcome::Ok));
            history.push(op(2, get(), 10 * i + 3, 10 * i + 4, KvOutcome::Value(format!("v{i}"))));
        }
        // A read of v3 long after v9 overwrote it.
        history.push(op(3, get(), 200, 201, KvOutcome::Value("v3".into())));
        let minimal = minimal_sub_history(&history, "k").expect("not linearizable");
        let values: Vec<String> = minimal.iter().map(|&i| history[i].to_string()).collect();
        assert_eq!(minimal.len(), 3, "{values:?}");
        assert_eq!(minimal[0], 7, "the write of v3 comes first: {values:?}");
        assert_eq!(*minimal.last().unwrap(), history.len() - 1);
        let sentence = first_divergent_operation(&history, "k").unwrap();
        assert!(sentence.starts_with("first divergent step: #7 client 1 [31ms..32ms] set"), "{sentence}");
        assert_eq!(minimal_sub_history(&history[..history.len() - 1], "k"), None, "linearizable without it");
    }
}
