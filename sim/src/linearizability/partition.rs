//! P-compositionality: keys are independent registers, so the history is
//! split by key and each key's sub-history is checked on its own. This file
//! does the split and turns a key's operations into the model's [`KeyOp`]s,
//! interning the values written.

use super::model::{KeyOp, State, Step, ABSENT, UNOBSERVED};
use crate::history::{KvOp, KvOutcome, Operation};
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// The history indices of the operations on each key, in key order (so the
/// checker's verdict never depends on hash-map order).
pub(super) fn by_key(history: &[Operation]) -> BTreeMap<&str, Vec<usize>> {
    let mut by_key: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, op) in history.iter().enumerate() {
        by_key.entry(op.op.key()).or_default().push(i);
    }
    by_key
}

/// One key's sub-history, ready for the refutations and the search.
pub(super) struct SubHistory<'a> {
    /// The operations, in history order; unknown-outcome `Get`s are left out
    /// (they cannot affect anything).
    pub(super) ops: Vec<KeyOp>,
    /// The value of each state id (`ABSENT` and `UNOBSERVED` hold `""`).
    pub(super) values: Vec<&'a str>,
}

/// The sub-history of the operations `indices` of `history` (all on one key).
///
/// With `precheck`, a read of a value nobody wrote to the key is an error
/// (`Err` holds its history index and the value); without, it gets a state of its own and
/// the search refutes it.
pub(super) fn sub_history<'a>(
    history: &'a [Operation],
    indices: &[usize],
    precheck: bool,
) -> Result<SubHistory<'a>, (usize, &'a str)> {
    // Intern written values first so that a read of a value nobody wrote can
    // be reported directly. Values that no read observes are all equivalent
    // to the model (only their presence matters), so they share one state.
    let observed: BTreeSet<&str> = indices
        .iter()
        .filter_map(|&i| match (&history[i].op, &history[i].outcome) {
            (_, KvOutcome::Value(v)) => Some(v.as_str()),
            // A compare-and-swap observes the value it compares with.
            (KvOp::Cas { expected: Some(v), .. }, _) => Some(v.as_str()),
            _ => None,
        })
        .collect();
    let mut ids: HashMap<&str, State> = HashMap::new();
    let mut values: Vec<&str> = vec!["", ""]; // ABSENT, UNOBSERVED
    for &i in indices {
        if let KvOp::Set { value, .. } | KvOp::Cas { value, .. } = &history[i].op {
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
                None if precheck => return Err((i, v)),
                None => {
                    values.push(v);
                    let id = (values.len() - 1) as State;
                    ids.insert(v, id);
                    Step::GetValue(id)
                }
            },
            (KvOp::Get { .. }, _) => Step::GetNotFound,
            (KvOp::Cas { expected, value, .. }, outcome) => {
                let expect = match expected {
                    None => ABSENT,
                    Some(v) => match ids.get(v.as_str()) {
                        Some(&id) => id,
                        None => {
                            // Nobody wrote it: a state no write reaches (a
                            // success is then refuted by the search).
                            values.push(v);
                            let id = (values.len() - 1) as State;
                            ids.insert(v, id);
                            id
                        }
                    },
                };
                let new = ids[value.as_str()];
                match outcome {
                    KvOutcome::Ok => Step::CasOk { expect, new },
                    KvOutcome::CompareFailed => Step::CasFailed { expect },
                    _ => Step::CasAny { expect, new },
                }
            }
            (KvOp::Range { .. }, _) => unreachable!("ranges are split into gets before the partition"),
        };
        ops.push(KeyOp { hist: i, step, invoke: o.invoke_ms, complete: if known { o.complete_ms } else { None } });
    }
    Ok(SubHistory { ops, values })
}
