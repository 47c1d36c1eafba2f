//! Leases in the model: a revoke or an expiry deletes the keys attached to
//! the lease at its point in the history; grants, keep-alives and attaching
//! puts are checked against the lease's own register.

use super::*;
use crate::history::LeaseOp;

const LEASE: u64 = 7;

fn op(client: u64, op: KvOp, invoke: u64, complete: Option<u64>, outcome: KvOutcome) -> Operation {
    Operation { client, op, invoke_ms: invoke, complete_ms: complete, outcome }
}

fn lease(kind: LeaseOp, invoke: u64, complete: u64, held: bool) -> Operation {
    let outcome = if held { KvOutcome::Ok } else { KvOutcome::LeaseNotFound };
    op(1, KvOp::lease(kind, LEASE), invoke, Some(complete), outcome)
}

fn put(key: &str, value: &str, invoke: u64, complete: u64, held: bool) -> Operation {
    let outcome = if held { KvOutcome::Ok } else { KvOutcome::LeaseNotFound };
    op(1, KvOp::Put { key: key.into(), value: value.into(), lease: LEASE }, invoke, Some(complete), outcome)
}

/// Granted at 0..1, `k` attached at 2..3 with value `v`.
fn granted_and_attached() -> Vec<Operation> {
    vec![lease(LeaseOp::Grant, 0, 1, OK), put("k", "v", 2, 3, OK)]
}

#[test]
fn a_read_after_the_revoke_must_not_see_the_attached_key() {
    let mut history = granted_and_attached();
    history.push(lease(LeaseOp::Revoke, 4, 5, OK));
    history.push(get(2, "k", 6, 7, None));
    assert_linearizable(&history);
    history.pop();
    history.push(get(2, "k", 6, 7, Some("v")));
    let violation = assert_not_linearizable(&history);
    assert_eq!(violation.key, "k");
}

#[test]
fn a_read_concurrent_with_the_revoke_may_see_either() {
    let mut history = granted_and_attached();
    history.push(lease(LeaseOp::Revoke, 4, 10, OK));
    history.push(get(2, "k", 5, 6, Some("v")));
    history.push(get(3, "k", 7, 8, None));
    assert_linearizable(&history);
}

#[test]
fn an_expiry_deletes_between_the_decision_and_the_first_apply() {
    let mut history = granted_and_attached();
    history.push(op(0, KvOp::lease(LeaseOp::Expire, LEASE), 10, Some(20), KvOutcome::Ok));
    history.push(get(2, "k", 12, 13, Some("v")));
    assert_linearizable(&history);
    history.push(get(2, "k", 25, 26, Some("v")));
    assert_not_linearizable(&history);
}

#[test]
fn a_put_without_the_lease_detaches_the_key() {
    let mut history = granted_and_attached();
    history.push(set(2, "k", "plain", 4, 5));
    history.push(lease(LeaseOp::Revoke, 6, 7, OK));
    history.push(get(3, "k", 8, 9, Some("plain")));
    assert_linearizable(&history);
    history.pop();
    history.push(get(3, "k", 8, 9, None));
    assert_not_linearizable(&history);
}

#[test]
fn a_revoke_leaves_keys_of_other_leases_alone() {
    let mut history = granted_and_attached();
    let other = KvOp::Put { key: "j".into(), value: "w".into(), lease: LEASE + 1 };
    history.push(op(1, KvOp::lease(LeaseOp::Grant, LEASE + 1), 0, Some(1), KvOutcome::Ok));
    history.push(op(1, other, 2, Some(3), KvOutcome::Ok));
    history.push(lease(LeaseOp::Revoke, 4, 5, OK));
    history.push(get(2, "j", 6, 7, Some("w")));
    history.push(get(2, "k", 6, 7, None));
    assert_linearizable(&history);
}

#[test]
fn create_if_absent_after_the_revoke_must_succeed() {
    // The lease holder's check after a revoke: its key is gone, so a
    // compare-and-swap from absent holds.
    let mut history = granted_and_attached();
    history.push(lease(LeaseOp::Revoke, 4, 5, OK));
    let cas = KvOp::Cas { key: "k".into(), expected: None, value: "again".into() };
    history.push(op(1, cas.clone(), 6, Some(7), KvOutcome::Ok));
    assert_linearizable(&history);
    history.pop();
    history.push(op(1, cas, 6, Some(7), KvOutcome::CompareFailed));
    assert_not_linearizable(&history);
}

#[test]
fn an_unknown_revoke_may_or_may_not_delete() {
    let mut history = granted_and_attached();
    history.push(op(1, KvOp::lease(LeaseOp::Revoke, LEASE), 4, None, KvOutcome::Unknown));
    history.push(get(2, "k", 6, 7, Some("v")));
    history.push(get(2, "k", 8, 9, None));
    assert_linearizable(&history);
    // ...but at most once: the key does not come back.
    history.push(get(2, "k", 10, 11, Some("v")));
    assert_not_linearizable(&history);
}

#[test]
fn lease_outcomes_follow_the_lease_register() {
    // A keep-alive after the revoke cannot succeed.
    let mut history = granted_and_attached();
    history.push(lease(LeaseOp::Revoke, 4, 5, OK));
    history.push(lease(LeaseOp::KeepAlive, 6, 7, OK));
    let violation = assert_not_linearizable(&history);
    assert_eq!(violation.key, crate::history::lease_register(LEASE));
    // Nor a revoke of a lease never granted, nor a put finding a held lease missing.
    assert_not_linearizable(&[lease(LeaseOp::Revoke, 0, 1, OK)]);
    assert_not_linearizable(&[lease(LeaseOp::Grant, 0, 1, OK), put("k", "v", 2, 3, NOT_FOUND)]);
    // A put racing the grant may miss it; keep-alives after the revoke find nothing.
    assert_linearizable(&[
        lease(LeaseOp::Grant, 0, 5, OK),
        put("k", "v", 1, 2, NOT_FOUND),
        lease(LeaseOp::Revoke, 6, 7, OK),
        lease(LeaseOp::KeepAlive, 8, 9, NOT_FOUND),
    ]);
}
