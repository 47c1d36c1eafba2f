//! Swarm fault suites: each seed draws its own fault mix; every run is checked
//! for safety after every step, then healed and required to converge. The
//! suites also prove they exercised the paths they exist for.

use sim::counters::COVERAGE;
use sim::explore::{run_suite, RunPlan};

#[test]
fn swarm_three_nodes() {
    let plan = RunPlan { nodes: 3, clients: 6, fault_ms: 10_000, ..RunPlan::default() };
    let counters = run_suite(&plan, 0..40, COVERAGE);
    let faults = [
        "crashes",
        "restarts",
        "pauses",
        "partitions",
        "disk_stalls",
        "torn_writes",
        "messages_lost",
        "snapshot_writes_lost",
    ];
    for fault in faults {
        assert!(counters.get(fault) > 0, "{fault} never happened:\n{counters}");
    }
}

#[test]
fn swarm_five_nodes() {
    let plan = RunPlan { nodes: 5, clients: 8, fault_ms: 10_000, ..RunPlan::default() };
    run_suite(
        &plan,
        1000..1020,
        &["elections", "leader_changes", "truncations", "snapshots_installed", "reads_served"],
    );
}
