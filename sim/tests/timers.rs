//! Timer experiments (issue: "timers finer than a millisecond or equal min/max
//! election timeouts"). The simulated clock counts whole milliseconds, as the
//! core's `now_ms` does, and the core draws an election deadline in the
//! half-open range `[min, max)` and rejects `max <= min` (a typed
//! `ConfigError::ElectionTimeoutRangeEmpty`: timeouts must be randomized in
//! production). So the experiment "every node has the same election timeout"
//! is `max = min + 1`: the only deadline is `reset + min`, on every node and
//! every reset. Sub-millisecond timers are not needed for it: what such
//! experiments test is simultaneous timeouts, and with whole milliseconds two
//! timers due in the same millisecond already fire "at once" (in queue order).

use raft_sm::{Note, TimerKind};
use sim::{Cluster, SimOptions};

fn equal_timeouts(seed: u64) -> SimOptions {
    let mut options = SimOptions::new(seed, 3);
    options.verbose = false;
    options.election_timeout_ms_min = 300;
    options.election_timeout_ms_max = 301;
    options
}

#[test]
fn a_one_millisecond_range_gives_every_node_the_same_timeout() {
    for seed in 0..5 {
        let mut cluster = Cluster::new(equal_timeouts(seed));
        for id in cluster.ids() {
            let deadline = cluster.node(id).core().and_then(|core| core.timer_deadline_ms(TimerKind::Election));
            assert_eq!(deadline, Some(300), "seed {seed}: {id} booted at 0 ms");
        }
        cluster.run_for(300);
        let started: Vec<u64> = cluster
            .notes()
            .iter()
            .filter(|(_, _, note)| matches!(note, Note::ElectionStarted { .. } | Note::PreVoteStarted { .. }))
            .map(|&(at_ms, _, _)| at_ms)
            .collect();
        assert_eq!(started, vec![300, 300, 300], "seed {seed}: all three time out in the same millisecond");
    }
}

#[test]
fn equal_min_and_max_is_rejected_with_the_cores_error() {
    let mut options = equal_timeouts(0);
    options.election_timeout_ms_max = options.election_timeout_ms_min;
    let panic = std::panic::catch_unwind(|| Cluster::new(options)).err().expect("an empty range is refused");
    let message = panic.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(message.contains("must be greater than the minimum"), "{message}");
}
