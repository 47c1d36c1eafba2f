//! The checker's unit tests: hand-written histories that must be rejected or
//! accepted, reporting, budgets, and large generated histories; property
//! tests against a brute-force checker are in `generated`.

use super::*;
use std::collections::BTreeMap;

mod generated;
mod leases;

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
        KvOp::Cas { key, expected, value } => {
            if model.get(key) == expected.as_ref() {
                model.insert(key.clone(), value.clone());
                KvOutcome::Ok
            } else {
                KvOutcome::CompareFailed
            }
        }
        KvOp::Range { prefix } => KvOutcome::Range(
            model.iter().filter(|(k, _)| k.starts_with(prefix.as_str())).map(|(k, v)| (k.clone(), v.clone())).collect(),
        ),
        KvOp::Put { .. } | KvOp::Lease { .. } => unreachable!("generated histories have no leases"),
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
    let overwriter =
        history.iter().rposition(|o| matches!(o.op, KvOp::Set { .. }) && before(o, history[victim].invoke_ms)).unwrap();
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

// ---- compare-and-swap and ranges --------------------------------------

fn cas(client: u64, key: &str, expected: Option<&str>, value: &str, span: (u64, u64), outcome: KvOutcome) -> Operation {
    Operation {
        client,
        op: KvOp::Cas { key: key.into(), expected: expected.map(Into::into), value: value.into() },
        invoke_ms: span.0,
        complete_ms: (outcome != KvOutcome::Unknown).then_some(span.1),
        outcome,
    }
}

fn range(client: u64, prefix: &str, span: (u64, u64), pairs: &[(&str, &str)]) -> Operation {
    Operation {
        client,
        op: KvOp::Range { prefix: prefix.into() },
        invoke_ms: span.0,
        complete_ms: Some(span.1),
        outcome: KvOutcome::Range(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()),
    }
}

#[test]
fn a_chain_of_compare_and_swaps_is_accepted() {
    let history = vec![
        cas(1, "x", None, "a", (0, 10), KvOutcome::Ok),
        cas(2, "x", None, "b", (5, 12), KvOutcome::CompareFailed),
        cas(2, "x", Some("a"), "b", (20, 30), KvOutcome::Ok),
        cas(3, "x", Some("a"), "c", (25, 35), KvOutcome::CompareFailed),
        cas(3, "x", Some("b"), "c", (40, 50), KvOutcome::Unknown),
        get(1, "x", 60, 70, Some("c")),
        range(2, "", (80, 90), &[("x", "c")]),
    ];
    check(&history).unwrap();
}

#[test]
fn a_lost_update_two_swaps_from_the_same_value_is_refuted() {
    // Both succeed from `a`: one of them must have seen the other's write.
    let history = vec![
        set(1, "x", "a", 0, 5),
        cas(1, "x", Some("a"), "b", (10, 20), KvOutcome::Ok),
        cas(2, "x", Some("a"), "c", (10, 20), KvOutcome::Ok),
    ];
    let v = check(&history).unwrap_err();
    assert_eq!(v.kind, ViolationKind::NotLinearizable, "{v}");
}

#[test]
fn a_compare_and_swap_applied_twice_is_refuted() {
    // The mutant: client 1's swap a->b applied, its retry (a fresh session)
    // applied again and answered CompareFailed, yet b is what everyone sees.
    let history = vec![
        set(1, "x", "a", 0, 5),
        cas(1, "x", Some("a"), "b", (10, 40), KvOutcome::CompareFailed),
        get(2, "x", 50, 55, Some("b")),
    ];
    let v = check(&history).unwrap_err();
    assert_eq!(v.kind, ViolationKind::NotLinearizable, "{v}");
    // The same without the read: a later swap from b shows it too.
    let history = vec![
        set(1, "x", "a", 0, 5),
        cas(1, "x", Some("a"), "b", (10, 40), KvOutcome::CompareFailed),
        cas(2, "x", Some("b"), "c", (50, 55), KvOutcome::Ok),
    ];
    assert_eq!(check(&history).unwrap_err().kind, ViolationKind::NotLinearizable);
}

#[test]
fn a_range_is_checked_as_a_read_of_every_key_it_covers() {
    let ok = vec![
        set(1, "k1", "a", 0, 5),
        set(1, "k2", "b", 6, 9),
        range(2, "k", (10, 20), &[("k1", "a"), ("k2", "b")]),
        range(2, "k1", (21, 30), &[("k1", "a")]),
    ];
    check(&ok).unwrap();
    // A range missing a key written before it began is stale.
    let stale = vec![set(1, "k1", "a", 0, 5), set(1, "k2", "b", 6, 9), range(2, "k", (10, 20), &[("k1", "a")])];
    let v = check(&stale).unwrap_err();
    assert_eq!((v.kind, v.key.as_str()), (ViolationKind::NotLinearizable, "k2"), "{v}");
    assert_eq!(v.op_indices.last(), Some(&2), "the range's own index: {v}");
}
