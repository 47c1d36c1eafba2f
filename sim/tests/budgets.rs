//! Every run has an event, a simulated-time and a queued-event (memory) budget;
//! a run that exceeds one ends with a `budget` failure and its replay line
//! instead of hanging or growing without bound.

use sim::explore::{run_seed, RunPlan};
use sim::{FailureKind, SimOptions};

fn plan() -> RunPlan {
    RunPlan { fault_ms: 5_000, liveness_ms: 10_000, ..RunPlan::default() }
}

fn budget_failure(change: impl FnOnce(&mut SimOptions)) -> sim::Failure {
    let plan = plan();
    let mut options = plan.options(7);
    change(&mut options);
    let failure = run_seed(options, plan.fault_ms, plan.liveness_ms).expect_err("the budget is too small to pass");
    assert_eq!(failure.kind, FailureKind::Budget, "{failure}");
    assert!(failure.replay.contains("run --seed 0x7"), "{failure}");
    assert!(failure.to_string().contains("simulation failure (budget)"), "{failure}");
    failure
}

#[test]
fn the_default_budgets_pass_an_ordinary_run() {
    let plan = plan();
    let summary = run_seed(plan.options(7), plan.fault_ms, plan.liveness_ms).expect("seed 7 passes");
    let defaults = SimOptions::new(7, 3);
    assert!(summary.events < defaults.budget_events / 10, "{} events", summary.events);
}

#[test]
fn exceeding_the_event_budget_is_a_budget_failure() {
    let failure = budget_failure(|options| options.budget_events = 2_000);
    assert!(failure.detail.contains("event budget exceeded: over 2000 events"), "{failure}");
}

#[test]
fn exceeding_the_simulated_time_budget_is_a_budget_failure() {
    let failure = budget_failure(|options| options.budget_sim_ms = 3_000);
    assert!(failure.detail.contains("simulated-time budget exceeded: past 3000 ms"), "{failure}");
    assert!(failure.at_ms > 3_000 && failure.at_ms < 3_100, "{failure}");
}

/// A message storm: every message duplicated, on zero-latency links. The queue
/// of in-flight messages grows past its bound and the run stops there.
#[test]
fn a_storm_ends_with_a_memory_budget_failure() {
    let failure = budget_failure(|options| {
        options.network.duplicate = 1.0;
        options.network.latency_ms_min = 0;
        options.network.latency_ms_max = 0;
        options.budget_queued = 200;
    });
    assert!(failure.detail.contains("memory budget exceeded: over 200 events queued"), "{failure}");
}
