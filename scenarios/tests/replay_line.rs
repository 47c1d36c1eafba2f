//! A failing scenario prints the one line that replays it, and that line does
//! replay it. (One test function on purpose: it sets `SIM_SEED`, which every
//! scenario in the same process would read.)

use scenarios::{for_each_seed, replay_line, try_each_seed, ClusterExt};
use std::panic::{catch_unwind, AssertUnwindSafe};

/// A deliberately failing scenario: on seeds whose low bit is set it waits for
/// a leader while every node is isolated, so the simulator's `run_until` fails
/// (liveness) with the replay line; on the others it passes.
fn doomed(run: &scenarios::Run) {
    let mut cluster = run.cluster(3);
    if run.seed & 1 == 1 {
        for id in cluster.ids() {
            cluster.isolate(id);
        }
    }
    cluster.wait_for("a leader", |c| c.leader().is_some(), 3_000);
}

#[test]
fn a_failing_scenario_prints_its_replay_line() {
    // 1. The failure names the first failing seed and the exact replay command,
    //    and the simulator's own message carries the same line.
    let failure = try_each_seed("replay_line_demo", &[0x2a, 0x2b, 0x2c], doomed).unwrap_err();
    assert_eq!(failure.seed, 0x2b);
    assert_eq!(failure.replay, "SIM_SEED=0x2b cargo test -p scenarios replay_line_demo -- --exact");
    assert_eq!(failure.replay, replay_line("replay_line_demo", 0x2b));
    assert!(failure.message.contains("simulation failure (liveness)"), "{}", failure.message);
    assert!(failure.message.contains("`a leader` did not hold within 3000 ms"), "{}", failure.message);
    assert!(failure.message.contains(&failure.replay), "{}", failure.message);

    // 2. for_each_seed panics with the replay line, also for a plain assert
    //    in the scenario (not a simulator failure).
    let payload = catch_unwind(AssertUnwindSafe(|| {
        for_each_seed("replay_line_plain_assert", 0x100, |run| {
            assert!(run.seed < 0x103, "seed {:#x} is too large", run.seed);
        })
    }))
    .unwrap_err();
    let message = payload.downcast_ref::<String>().expect("a formatted panic");
    assert!(message.contains("scenario replay_line_plain_assert failed on seed 0x103"), "{message}");
    assert!(
        message.contains("replay: SIM_SEED=0x103 cargo test -p scenarios replay_line_plain_assert -- --exact"),
        "{message}"
    );

    // 3. The line replays it: with SIM_SEED set, only that seed runs, and it
    //    fails the same way (same virtual time, same detail).
    std::env::set_var("SIM_SEED", "0x2b");
    let replayed = try_each_seed("replay_line_demo", &scenarios::seeds(0x2a, 3), doomed);
    let passing = try_each_seed("replay_line_demo", &scenarios::seeds(0x2c, 1), doomed);
    std::env::remove_var("SIM_SEED");
    assert_eq!(replayed.unwrap_err(), failure, "the replay fails identically");
    assert!(passing.is_err(), "SIM_SEED overrides the scenario's own seeds");
    assert_eq!(try_each_seed("replay_line_demo", &[0x2c], doomed), Ok(1));
}
