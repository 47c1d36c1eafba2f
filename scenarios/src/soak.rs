//! The randomized fault suites: swarm runs (each seed draws its own fault mix:
//! partitions, loss, duplication, reordering, crashes and restarts, pauses,
//! disk stalls, torn writes) with a low snapshot threshold and every checker on
//! (safety after every step, linearizability at the end), followed by a
//! liveness phase. `cargo test` runs a few hundred seeds (`tests/fault_suites.rs`);
//! `cargo run -p scenarios --release -- soak --seeds N` runs as many as asked.

use sim::cli::RunArgs;
use sim::counters::Counters;
use sim::explore::{run_seed, Faults, RunPlan};
use sim::rng::SimRng;
use sim::{Failure, RunSummary, SimOptions};
use std::time::{Duration, Instant};

/// The shape of one fault-suite run: the simulator's [`RunPlan`] (nodes,
/// clients, fault and liveness phases, fault mix, wire format) plus the
/// scenarios' own choices (a low snapshot threshold, the replay line).
#[derive(Clone, Debug)]
pub struct SuitePlan {
    /// The simulator's plan. `wire: None` alternates JSON and the core's binary
    /// codec by seed in test builds and uses the binary codec in release builds.
    pub run: RunPlan,
}

impl SuitePlan {
    /// The plan the `cargo test` suites use for `nodes` nodes: swarm faults,
    /// 6 clients, 10 s of faults, 30 s liveness bound. (The soak takes the
    /// command-line defaults it shares with `sim` instead; `scenarios soak
    /// --clients 6 --fault-ms 10000` runs this plan.)
    pub fn new(nodes: usize) -> SuitePlan {
        SuitePlan {
            run: RunPlan {
                nodes,
                clients: 6,
                fault_ms: 10_000,
                liveness_ms: 30_000,
                faults: Faults::Swarm,
                wire: None,
                trace_hash: false,
                ..RunPlan::default()
            },
        }
    }

    /// The same plan with another fault mode (`Faults::All`: every kind on).
    pub fn with_faults(mut self, faults: Faults) -> SuitePlan {
        self.run.faults = faults;
        self
    }

    /// The options of seed `seed`: the simulator's draw for the plan, then a
    /// low snapshot threshold (16–200 entries) so compaction and
    /// InstallSnapshot run under faults, and `replay` as the replay line. The
    /// simulator's linearizability checker is on by default.
    pub fn options(&self, seed: u64, replay: String) -> SimOptions {
        let mut options = self.run.options(seed);
        let mut rng = SimRng::derive(seed, "scenarios/snapshots");
        options.snapshot_threshold_entries = *rng.pick(&[16, 32, 64, 200]);
        options.replay = Some(replay);
        assert!(options.linearizability.is_some(), "the fault suites check linearizability");
        options
    }

    /// The soak command that replays seed `seed` under this plan (the run
    /// options rendered by [`sim::cli::RunArgs`], as `sim`'s replay lines are).
    pub fn soak_replay(&self, seed: u64) -> String {
        format!("cargo run -p scenarios --release -- soak --seed {seed:#x} {}", RunArgs::from_plan(&self.run))
    }

    /// Runs one seed: fault phase, liveness phase, linearizability.
    pub fn run(&self, seed: u64, replay: String) -> Result<RunSummary, Failure> {
        run_seed(self.options(seed, replay), self.run.fault_ms, self.run.liveness_ms)
    }
}

/// The counters every fault suite must hit across its seeds (the paths the
/// suites exist for).
pub const SUITE_COVERAGE: &[&str] = &[
    "elections",
    "leader_changes",
    "pre_vote_rejections",
    "check_quorum_step_downs",
    "truncations",
    "snapshots_taken",
    "snapshots_sent",
    "snapshots_installed",
    "reads_served",
    "duplicates_suppressed",
    "proposals_dropped",
    "transfers_started",
    "crashes",
    "restarts",
    "pauses",
    "partitions",
    "disk_stalls",
    "torn_writes",
    "unsynced_writes_lost",
    "compactions_deferred",
    "snapshot_writes_lost",
    "messages_lost",
    "messages_duplicated",
    "messages_reordered",
    "client_retries",
];

/// A fault suite for `cargo test`: runs `seeds` (only `SIM_SEED` when set),
/// panics at the first failure with `SIM_SEED=0x.. cargo test -p scenarios <name>`,
/// then requires every counter in `required` to be non-zero across the seeds.
pub fn run_suite(name: &str, plan: &SuitePlan, seeds: &[u64], required: &[&str]) -> Counters {
    let mut counters = Counters::default();
    for &seed in seeds {
        let replay = crate::replay_line(name, seed);
        if seeds.len() == 1 {
            println!("{}\nreplay: {replay}", plan.options(seed, replay.clone()));
        }
        match plan.run(seed, replay) {
            Ok(summary) => counters.merge(&summary.counters),
            Err(failure) => panic!("{failure}"),
        }
    }
    let missing = counters.missing(required);
    assert!(
        seeds.len() == 1 || missing.is_empty(),
        "{name} never exercised {missing:?} across its {} seeds; counters:\n{counters}",
        seeds.len()
    );
    counters
}

/// What a soak found.
#[derive(Debug, Default)]
pub struct SoakReport {
    /// Seeds run.
    pub seeds: u64,
    /// Failures, in seed order.
    pub failures: Vec<Failure>,
    /// Counters summed over passing seeds.
    pub counters: Counters,
    /// Events processed.
    pub events: u64,
    /// Virtual time simulated.
    pub sim_ms: u64,
    /// Wall time.
    pub wall: Duration,
}

impl SoakReport {
    /// Seeds per wall second.
    pub fn seeds_per_second(&self) -> f64 {
        self.seeds as f64 / self.wall.as_secs_f64().max(1e-9)
    }
    /// Simulated seconds per wall second.
    pub fn speedup(&self) -> f64 {
        self.sim_ms as f64 / 1000.0 / self.wall.as_secs_f64().max(1e-9)
    }
}

/// Runs `seeds` under `plan`; `progress` sees each result.
pub fn soak(
    plan: &SuitePlan,
    seeds: impl IntoIterator<Item = u64>,
    mut progress: impl FnMut(u64, &Result<RunSummary, Failure>),
) -> SoakReport {
    let began = Instant::now();
    let mut report = SoakReport::default();
    for seed in seeds {
        let result = plan.run(seed, plan.soak_replay(seed));
        report.seeds += 1;
        progress(seed, &result);
        match result {
            Ok(summary) => {
                report.counters.merge(&summary.counters);
                report.events += summary.events;
                report.sim_ms += summary.sim_ms;
            }
            Err(failure) => report.failures.push(failure),
        }
    }
    report.wall = began.elapsed();
    report
}
