//! The final check runs the linearizability checker over the client history:
//! honest runs pass it, and a driver that serves reads from a node's local
//! store (skipping ReadIndex) is caught.

use sim::explore::{run_seed, RunPlan};
use sim::FailureKind;

#[test]
fn stale_local_reads_are_caught_as_linearizability_failures() {
    let plan = RunPlan { nodes: 3, clients: 6, fault_ms: 8_000, ..RunPlan::default() };
    let mut caught = None;
    for seed in 0..40 {
        let mut options = plan.options(seed);
        options.driver_bug_local_reads = true;
        if let Err(failure) = run_seed(options, plan.fault_ms, plan.liveness_ms) {
            caught = Some(failure);
            break;
        }
    }
    let failure = caught.expect("some seed exposes stale local reads");
    assert_eq!(failure.kind, FailureKind::Linearizability, "{failure}");
    assert!(failure.detail.contains("not linearizable"), "{failure}");
}

#[test]
fn honest_runs_are_linearizable() {
    let plan = RunPlan { nodes: 3, clients: 6, fault_ms: 8_000, ..RunPlan::default() };
    for seed in 0..10 {
        let options = plan.options(seed);
        assert!(options.linearizability.is_some(), "the default options check linearizability");
        run_seed(options, plan.fault_ms, plan.liveness_ms).unwrap_or_else(|failure| panic!("{failure}"));
    }
}
