//! Compare-and-swap and ranges under the fault suite: a workload that mixes
//! them in passes the linearizability check, and a client that retries writes
//! under a fresh session (so a compare-and-swap may apply twice) is caught.

use scenarios::soak::SuitePlan;
use sim::explore::run_seed;
use sim::history::{KvOp, KvOutcome, LeaseOp};
use sim::{Cluster, Failure, FailureKind, SimOptions};

fn with_cas_and_ranges(options: &mut SimOptions) {
    let workload = options.workload.as_mut().expect("the suite runs clients");
    workload.cas_weight = 4;
    workload.range_weight = 1;
}

/// Runs `seeds` (or only `SIM_SEED`) of the 3-node suite with CAS and ranges
/// mixed in (and `tweak`); `name` is the test's, for the replay line.
fn run(name: &str, seeds: std::ops::Range<u64>, tweak: fn(&mut SimOptions)) -> Vec<(u64, Result<(), Failure>)> {
    let plan = SuitePlan::new(3);
    let seeds: Vec<u64> = match scenarios::sim_seed() {
        Some(seed) => vec![seed],
        None => seeds.collect(),
    };
    seeds
        .into_iter()
        .map(|seed| {
            let mut options = plan.options(seed, scenarios::replay_line(name, seed));
            options.verbose = false;
            with_cas_and_ranges(&mut options);
            tweak(&mut options);
            (seed, run_seed(options, plan.run.fault_ms, plan.run.liveness_ms).map(|_| ()))
        })
        .collect()
}

/// The mix really runs: swaps that succeed, swaps that fail, ranges that see keys.
#[test]
fn the_workload_issues_swaps_that_succeed_and_fail_and_ranges() {
    let plan = SuitePlan::new(3);
    let mut options = plan
        .options(0xca5, scenarios::replay_line("the_workload_issues_swaps_that_succeed_and_fail_and_ranges", 0xca5));
    options.verbose = false;
    with_cas_and_ranges(&mut options);
    let mut cluster = Cluster::new(options);
    cluster.run_for(plan.run.fault_ms);
    let ops = cluster.history().operations();
    let count = |f: &dyn Fn(&KvOp, &KvOutcome) -> bool| ops.iter().filter(|o| f(&o.op, &o.outcome)).count();
    let swapped = count(&|op, outcome| matches!((op, outcome), (KvOp::Cas { .. }, KvOutcome::Ok)));
    let refused = count(&|op, outcome| matches!((op, outcome), (KvOp::Cas { .. }, KvOutcome::CompareFailed)));
    let ranges = count(
        &|op, outcome| matches!((op, outcome), (KvOp::Range { .. }, KvOutcome::Range(pairs)) if !pairs.is_empty()),
    );
    assert!(swapped > 10 && refused > 0 && ranges > 5, "swapped {swapped}, refused {refused}, ranges {ranges}");
    cluster.finish(plan.run.liveness_ms).unwrap();
}

#[test]
fn compare_and_swap_and_ranges_stay_linearizable_under_faults() {
    let count = scenarios::seeds_count(24);
    let name = "compare_and_swap_and_ranges_stay_linearizable_under_faults";
    for (seed, result) in run(name, 0xca50..0xca50 + count, |_| {}) {
        if let Err(failure) = result {
            panic!("seed {seed:#x}: {failure}");
        }
    }
}

/// The mutant: every retry of a write carries a new sequence number, so the
/// store applies it again; a compare-and-swap applied twice answers
/// `CompareFailed` for a swap that happened, which the model refutes.
#[test]
fn a_compare_and_swap_applied_twice_is_caught() {
    let caught = run("a_compare_and_swap_applied_twice_is_caught", 0xd00..0xd40, |options| {
        let workload = options.workload.as_mut().expect("clients");
        workload.bug_fresh_seq_on_retry = true;
        // Only swaps and reads: a double apply can only show through a CAS.
        workload.set_weight = 0;
        workload.delete_weight = 0;
    })
    .into_iter()
    .find_map(|(seed, result)| result.err().map(|failure| (seed, failure)));
    let (seed, failure) = caught.expect("40 swarm seeds with double-applied retries, none caught");
    println!("seed {seed:#x}: {failure}");
    assert_eq!(failure.kind, FailureKind::Linearizability, "seed {seed:#x}: {failure}");
    assert!(failure.replay.contains("SIM_SEED="), "{failure}");
}

/// Leases and watchers under the fault suite: 4 watchers (prefixes "", "k",
/// "k1", "lease/") reconnecting across nodes, and 3 lease holders that keep
/// their lease alive for a while, then stop. The watch checker and the lease
/// checker run on every batch and every applied expiry (`sim::checker::watch`,
/// `sim::checker::lease`). `SCENARIO_SEEDS=5000` runs the long suite.
#[test]
fn leases_and_watch_hold_under_faults() {
    let count = scenarios::seeds_count(16);
    let name = "leases_and_watch_hold_under_faults";
    let failures: Vec<(u64, Failure)> = run(name, 0x1ea5e..0x1ea5e + count, SimOptions::with_kv_v2_mix)
        .into_iter()
        .filter_map(|(seed, result)| result.err().map(|failure| (seed, failure)))
        .collect();
    for (seed, failure) in &failures {
        let first = failure.detail.lines().next().unwrap_or_default();
        println!("FAILED seed {seed:#x} ({}): {first}", failure.kind);
    }
    if let Some((seed, failure)) = failures.first() {
        panic!("{} of {count} seeds failed; the first, seed {seed:#x}: {failure}", failures.len());
    }
}

/// The mix really runs: leases are granted, kept alive and expire; watchers
/// receive events and reconnect.
#[test]
fn leases_expire_and_watchers_follow_every_change() {
    let plan = SuitePlan::new(3);
    let name = "leases_expire_and_watchers_follow_every_change";
    let mut options = plan.options(0x1ea5e, scenarios::replay_line(name, 0x1ea5e));
    options.verbose = false;
    options.with_kv_v2_mix();
    let mut cluster = Cluster::new(options);
    cluster.run_for(plan.run.fault_ms);
    let (watch, lease) = cluster.kv_v2_stats();
    println!("{watch:?} {lease:?}");
    assert!(watch.events > 100 && watch.reconnects > 5, "{watch:?}");
    assert!(lease.granted >= 3 && lease.kept_alive > 10 && lease.expired >= 2, "{lease:?}");
    assert!(lease.revoked >= 1, "{lease:?}");
    // The linearizability model sees the leases: revokes, expiries and attaching puts.
    let history = cluster.checked_history();
    let count = |wanted: fn(&KvOp) -> bool| history.iter().filter(|op| wanted(&op.op)).count();
    assert!(count(|op| matches!(op, KvOp::Lease { op: LeaseOp::Revoke, .. })) >= 1);
    assert!(count(|op| matches!(op, KvOp::Lease { op: LeaseOp::Expire, .. })) >= 2);
    assert!(count(|op| matches!(op, KvOp::Put { .. })) >= 3);
    cluster.finish(plan.run.liveness_ms).unwrap();
}
