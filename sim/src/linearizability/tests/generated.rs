//! Property tests: generated sequential histories are accepted, reads of
//! unwritten values are rejected, and on tiny histories the verdict matches a
//! brute-force search over every order.

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
    (0u8..6, 0u8..3, 0u64..4, 0u64..4, 0u8..12, any::<bool>())
        .prop_map(|(kind, key, before, after, u, applied)| Draft { kind, key, before, after, unknown: u == 0, applied })
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
                4 => {
                    let expected = if d.applied { model.get(&key).cloned() } else { Some(format!("v{}", i / 2)) };
                    KvOp::Cas { key, expected, value: format!("v{i}") }
                }
                5 => KvOp::Range { prefix: "k".into() },
                _ => KvOp::Get { key },
            };
            let point = 10 * i + 5;
            let (invoke, complete) = if overlap {
                ((point - 4).saturating_sub(10 * d.before), point + 4 + 10 * d.after)
            } else {
                (point - 4, point + 4)
            };
            let outcome = if !d.unknown || d.applied { apply(&mut model, &op) } else { KvOutcome::Unknown };
            let (outcome, complete_ms) = if d.unknown { (KvOutcome::Unknown, None) } else { (outcome, Some(complete)) };
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
                KvOp::Cas { expected, value, .. } => {
                    let holds = state.as_ref() == expected.as_ref();
                    match &o.outcome {
                        KvOutcome::Ok => holds.then(|| Some(value.clone())),
                        KvOutcome::CompareFailed => (!holds).then(|| state.clone()),
                        _ => Some(if holds { Some(value.clone()) } else { state.clone() }),
                    }
                }
                KvOp::Range { .. } => unreachable!("single-key histories have no ranges"),
                KvOp::Put { .. } | KvOp::Lease { .. } => unreachable!("generated histories have no leases"),
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
    (0u8..6, 0u8..3, 0u8..6, 0u64..20, 0u64..10, 0u8..3).prop_map(|(kind, value, o, invoke, duration, client)| {
        let v = |n: u8| ["a", "b", "c"][n as usize % 3].to_string();
        let key = "x".to_string();
        let (op, outcome) = match kind {
            0 => (KvOp::Set { key, value: v(value) }, KvOutcome::Ok),
            1 => (KvOp::Delete { key }, if o % 2 == 0 { KvOutcome::Ok } else { KvOutcome::NotFound }),
            4 | 5 => {
                let expected = (o % 3 != 0).then(|| v(value + 1));
                let outcome = if o % 2 == 0 { KvOutcome::Ok } else { KvOutcome::CompareFailed };
                (KvOp::Cas { key, expected, value: v(value + kind) }, outcome)
            }
            _ => (KvOp::Get { key }, if o % 3 == 0 { KvOutcome::NotFound } else { KvOutcome::Value(v(value)) }),
        };
        let unknown = o == 5;
        Operation {
            client: u64::from(client),
            op,
            invoke_ms: invoke,
            complete_ms: (!unknown).then_some(invoke + duration),
            outcome: if unknown { KvOutcome::Unknown } else { outcome },
        }
    })
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
