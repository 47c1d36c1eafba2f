//! The suites have teeth: with a deliberate driver bug switched on, the same
//! fault-suite runs fail, with the right failure kind and a replay line.

use scenarios::soak::SuitePlan;
use sim::explore::run_seed;
use sim::{Failure, FailureKind, SimOptions};

/// The first failure among `seeds` under the 3-node plan with `bug` applied.
fn first_failure(seeds: std::ops::Range<u64>, bug: fn(&mut SimOptions)) -> Option<(u64, Failure)> {
    let plan = SuitePlan::new(3);
    seeds.into_iter().find_map(|seed| {
        let mut options = plan.options(seed, scenarios::replay_line("catches_bugs", seed));
        options.verbose = false;
        bug(&mut options);
        run_seed(options, plan.run.fault_ms, plan.run.liveness_ms).err().map(|failure| (seed, failure))
    })
}

/// Client reads served from whichever node they reach, without ReadIndex: the
/// linearizability check must refute some history.
#[test]
fn stale_local_reads_are_caught_by_the_linearizability_check() {
    let (seed, failure) = first_failure(0x900..0x940, |options| options.driver_bug_local_reads = true)
        .expect("40 swarm seeds with stale local reads, none caught");
    assert_eq!(failure.kind, FailureKind::Linearizability, "seed {seed:#x}: {failure}");
    assert!(failure.replay.contains("SIM_SEED="), "{failure}");
}

/// Nodes told their writes are durable before the fsync: the persistence
/// contract (or, after a crash, another safety invariant) must break.
#[test]
fn acknowledging_before_fsync_is_caught_by_the_safety_checks() {
    let (seed, failure) = first_failure(0x980..0x9c0, |options| options.driver_bug_ack_before_fsync = true)
        .expect("40 swarm seeds acknowledging before fsync, none caught");
    assert!(matches!(failure.kind, FailureKind::Safety | FailureKind::Linearizability), "seed {seed:#x}: {failure}");
}
