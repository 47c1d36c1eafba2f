//! The stale-candidates episode on the seeds where its old bound (a leader
//! within 3 × `election_timeout_ms_max` of the heal) tripped on the clean build:
//! split votes between the up-to-date survivor and a stale candidate, correct
//! Raft. The episode now watches the election-timer rule instead
//! (`cluster/timer_watch.rs`), which these runs keep, and which the
//! `timer-reset-on-rejected-vote` mutant breaks (`tests/mutants.rs`).

use sim::explore::{run_seed, Faults, RunPlan};
use sim::options::WireFormat;

/// (faults, seed) as `sim explore --nodes 3 --seeds 10000 [--faults all]` reported them.
const FORMER_FALSE_ALARMS: [(Faults, u64); 8] = [
    (Faults::Swarm, 0xe61),
    (Faults::Swarm, 0x10e4),
    (Faults::Swarm, 0x1bfa),
    (Faults::All, 0xe6),
    (Faults::All, 0x13e),
    (Faults::All, 0xce2),
    (Faults::All, 0xe61),
    (Faults::All, 0x20b5),
];

#[test]
fn split_votes_after_the_heal_are_not_a_liveness_failure() {
    let mut episodes = 0;
    for (faults, seed) in FORMER_FALSE_ALARMS {
        // The wire the release explore used (debug builds would alternate by seed).
        let plan = RunPlan { faults, wire: Some(WireFormat::Binary), ..RunPlan::default() };
        let summary =
            run_seed(plan.options(seed), plan.fault_ms, plan.liveness_ms).unwrap_or_else(|failure| panic!("{failure}"));
        episodes += summary.counters.get("episodes_stale_candidates");
    }
    assert!(episodes >= 8, "each of these seeds runs a stale-candidates episode; ran {episodes}");
}
