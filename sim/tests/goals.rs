//! The "sometimes" coverage goals are reachable: a few dozen swarm seeds at
//! five nodes reach each of them (`sim explore` prints the counts), so a goal
//! whose detection broke (or a swarm that stopped producing the state) shows
//! up as a zero here.

use sim::cluster::GOALS;
use sim::explore::{explore, RunPlan};

#[test]
fn every_goal_is_reached_by_some_seed() {
    let plan = RunPlan { nodes: 5, ..RunPlan::default() };
    let report = explore(&plan, 0, 40, |_, _| {});
    assert!(report.failures.is_empty(), "{:?}", report.failures);
    for &(goal, meaning) in GOALS {
        let seeds = report.goal_seeds.get(goal).copied().unwrap_or(0);
        assert!(seeds > 0, "no seed reached {goal} ({meaning})");
        assert!(seeds < 40 || goal == "goal_stale_vote_reply", "{goal} is reached by every seed: not a rare state");
    }
}
