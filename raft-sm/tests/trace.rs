//! Determinism, pinned: the action trace of one short fixed scenario (three
//! nodes elect a leader, one write commits everywhere) is a reviewed snapshot.
//! Any change to what the core emits shows up here as a diff.

mod support;

use raft_sm::kv::Command;
use support::Pump;

fn short_scenario() -> Vec<String> {
    let mut pump = Pump::new(3);
    let leader = pump.elect(5_000);
    pump.propose(leader, 1, &Command::set("k", "v").with_session(7, 1));
    pump.run_for(150);
    pump.trace
}

#[test]
fn the_same_inputs_give_the_same_trace() {
    assert_eq!(short_scenario(), short_scenario());
}

#[test]
fn the_trace_of_a_short_scenario_is_pinned() {
    insta::assert_snapshot!(short_scenario().join("\n"));
}
