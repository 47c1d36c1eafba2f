//! P-compositionality: keys are independent registers, so the history is
//! split by key and each key's sub-history is checked on its own. This file
//! does the split and turns a key's operations into the model's [`KeyOp`]s,
//! interning the values written.

use super::model::{KeyOp, State, Step, ABSENT, UNOBSERVED};
use crate::history::{KvOp, KvOutcome, LeaseOp, Operation};
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// The history indices of the operations on each key, in key order (so the
/// checker's verdict never depends on hash-map order). Lease operations touch
/// more than one register: a `Put` its key and its lease's register, a revoke
/// or expiry its lease's register and every key some `Put` attached to it.
/// Each projection is checked on its own, which is sound (a linearizable
/// history has linearizable projections) but does not check that one
/// operation took effect at the same instant in all of them.
pub(super) fn by_key(history: &[Operation]) -> BTreeMap<&str, Vec<usize>> {
    let mut attached: BTreeMap<u64, BTreeSet<&str>> = BTreeMap::new();
    for op in history {
        if let KvOp::Put { key, lease, .. } = &op.op {
            attached.entry(*lease).or_default().insert(key);
        }
    }
    let mut by_key: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, op) in history.iter().enumerate() {
        by_key.entry(op.op.key()).or_default().push(i);
        if let KvOp::Lease { op: lease_op, lease, .. } = &op.op {
            if lease_op.drops_keys() {
                for &key in attached.get(lease).into_iter().flatten() {
                    by_key.entry(key).or_default().push(i);
                }
            }
        }
    }
    // A put reads its lease's register: add it to that register's operations
    // (a put whose lease no lease operation names constrains nothing there).
    let registers: BTreeMap<u64, &str> = history
        .iter()
        .filter_map(|op| match &op.op {
            KvOp::Lease { lease, register, .. } => Some((*lease, register.as_str())),
            _ => None,
        })
        .collect();
    for (i, op) in history.iter().enumerate() {
        if let KvOp::Put { lease, .. } = &op.op {
            if let Some(&register) = registers.get(lease) {
                by_key.entry(register).or_default().push(i);
            }
        }
    }
    for indices in by_key.values_mut() {
        indices.sort_unstable();
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
    key: &str,
    indices: &[usize],
    precheck: bool,
) -> Result<SubHistory<'a>, (usize, &'a str)> {
    if is_lease_register(key) {
        return Ok(lease_register_history(history, indices));
    }
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
    // The values attached to each lease, consecutive from the lease's own
    // "unobserved" state: lease → its states `from..to`.
    let mut leased: BTreeMap<u64, Vec<&str>> = BTreeMap::new();
    for &i in indices {
        if let KvOp::Put { value, lease, .. } = &history[i].op {
            leased.entry(*lease).or_default().push(value);
        }
    }
    let mut lease_states: BTreeMap<u64, (State, State)> = BTreeMap::new();
    for (lease, written) in leased {
        let from = values.len() as State;
        values.push("(a value nobody read, attached to a lease)");
        for value in written {
            if ids.contains_key(value) {
                continue;
            }
            let id = if observed.contains(value) {
                values.push(value);
                (values.len() - 1) as State
            } else {
                from
            };
            ids.insert(value, id);
        }
        lease_states.insert(lease, (from, values.len() as State));
    }
    let mut ops = Vec::with_capacity(indices.len());
    for &i in indices {
        let o = &history[i];
        let known = o.outcome != KvOutcome::Unknown;
        let step = match (&o.op, &o.outcome) {
            (KvOp::Get { .. }, KvOutcome::Unknown) => continue,
            (KvOp::Put { .. }, KvOutcome::LeaseNotFound) => continue, // Nothing written.
            (KvOp::Put { value, .. }, _) => Step::Set(ids[value.as_str()]),
            (KvOp::Lease { .. }, KvOutcome::LeaseNotFound) => continue, // Nothing deleted.
            (KvOp::Lease { lease, .. }, _) => {
                let (from, to) = lease_states[lease];
                Step::DropLease { from, to }
            }
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

/// Whether `key` is a lease's register ([`crate::history::lease_register`]).
pub(super) fn is_lease_register(key: &str) -> bool {
    key.starts_with("\0lease/")
}

/// The state of a held lease in its register.
const HELD: State = 2;

/// The sub-history of a lease's register: present while the lease is held.
fn lease_register_history<'a>(history: &'a [Operation], indices: &[usize]) -> SubHistory<'a> {
    let mut ops = Vec::with_capacity(indices.len());
    for &i in indices {
        let o = &history[i];
        let known = o.outcome != KvOutcome::Unknown;
        let step = match (&o.op, &o.outcome) {
            (KvOp::Lease { op: LeaseOp::Grant, .. }, KvOutcome::Ok) => Step::CasOk { expect: ABSENT, new: HELD },
            (KvOp::Lease { op: LeaseOp::Grant, .. }, KvOutcome::Unknown) => Step::CasAny { expect: ABSENT, new: HELD },
            (KvOp::Lease { op: LeaseOp::Revoke | LeaseOp::Expire, .. }, KvOutcome::Ok) => Step::DeleteOk,
            (KvOp::Lease { op: LeaseOp::Revoke, .. }, KvOutcome::Unknown) => Step::DeleteAny,
            (KvOp::Lease { op: LeaseOp::KeepAlive, .. } | KvOp::Put { .. }, KvOutcome::Ok) => Step::GetValue(HELD),
            (KvOp::Lease { .. } | KvOp::Put { .. }, KvOutcome::LeaseNotFound) => Step::GetNotFound,
            // An unknown keep-alive or put reads nothing anyone saw.
            _ => continue,
        };
        ops.push(KeyOp { hist: i, step, invoke: o.invoke_ms, complete: if known { o.complete_ms } else { None } });
    }
    SubHistory { ops, values: vec!["", "", "held"] }
}
