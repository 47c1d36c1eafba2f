//! Many seeds, swarm faults, one report: failures as replay lines, coverage
//! counters, and speed (seeds/s, events/s, simulated seconds per wall second).

use crate::counters::Counters;
use crate::failure::{Failure, FailureKind};
use crate::options::{SimOptions, WireFormat};
use crate::{Cluster, RunSummary};
use std::cell::RefCell;
use std::time::Duration;

thread_local! {
    /// The failure a panicking cluster reported, for [`run_seed`] to pick up.
    static LAST_FAILURE: RefCell<Option<Failure>> = const { RefCell::new(None) };
}

thread_local! {
    /// How many faults the current run's swarm and episodes generated (for shrinking).
    static FAULTS_GENERATED: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

thread_local! {
    /// Per client id, the operations the current run's clients began (or skipped), for shrinking.
    static OPS_BEGUN: RefCell<std::collections::BTreeMap<u64, u64>> = const { RefCell::new(std::collections::BTreeMap::new()) };
}

/// Called by a client as it begins (or skips) operation `number`.
pub(crate) fn note_op_begun(client: u64, number: u64) {
    OPS_BEGUN.with(|ops| ops.borrow_mut().insert(client, number));
}

/// Per client id, how many operations the last run on this thread began or skipped.
pub fn ops_begun() -> std::collections::BTreeMap<u64, u64> {
    OPS_BEGUN.with(|ops| ops.borrow().clone())
}

/// Called by the cluster as it generates faults.
pub(crate) fn note_faults_generated(count: u64) {
    FAULTS_GENERATED.with(|cell| cell.set(count));
}

/// Faults the last run on this thread generated (for shrinking).
pub fn faults_generated() -> u64 {
    FAULTS_GENERATED.with(|cell| cell.get())
}

/// Records `failure` as the reason of the panic that follows.
pub(crate) fn record_failure(failure: &Failure) {
    LAST_FAILURE.with(|slot| *slot.borrow_mut() = Some(failure.clone()));
}

/// Which faults a run's fault phase injects.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Faults {
    /// A clean network, no faults.
    None,
    /// Swarm testing: each seed draws which fault kinds are on and how hard.
    Swarm,
    /// Every fault kind on, rates drawn per seed.
    All,
}

impl Faults {
    /// The command-line name.
    pub fn name(self) -> &'static str {
        match self {
            Faults::None => "none",
            Faults::Swarm => "swarm",
            Faults::All => "all",
        }
    }

    /// Parses a command-line name.
    pub fn parse(text: &str) -> Option<Faults> {
        [Faults::None, Faults::Swarm, Faults::All].into_iter().find(|faults| faults.name() == text)
    }
}

/// The shape of one swarm run (on the command line: [`crate::cli::RunArgs`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunPlan {
    /// Cluster size.
    pub nodes: usize,
    /// Concurrent clients.
    pub clients: usize,
    /// Length of the fault phase.
    pub fault_ms: u64,
    /// Bound of the liveness phase.
    pub liveness_ms: u64,
    /// Which faults the fault phase injects.
    pub faults: Faults,
    /// Round-trip messages through serde_json.
    pub wire: Option<WireFormat>,
    /// Hash the trace.
    pub trace_hash: bool,
    /// Require every node to serve a linearizable read after convergence.
    pub liveness_reads: bool,
    /// A planted bug (needs `--features mutants`).
    pub mutant: Option<raft_sm::Mutant>,
    /// Apply only these generated faults (see `SimOptions::keep_faults`); `None`: all.
    pub keep_faults: Option<Vec<u64>>,
    /// Membership churn during the fault phase (see [`crate::cluster::ChurnOptions`]).
    pub membership_churn: bool,
    /// Begin only these client operations (see [`crate::op_list`]); `None`: all.
    pub keep_ops: Option<crate::op_list::OpList>,
}

impl Default for RunPlan {
    fn default() -> Self {
        RunPlan {
            nodes: 3,
            clients: 8,
            fault_ms: 20_000,
            liveness_ms: 30_000,
            faults: Faults::Swarm,
            wire: None,
            trace_hash: false,
            liveness_reads: true,
            mutant: None,
            keep_faults: None,
            membership_churn: false,
            keep_ops: None,
        }
    }
}

impl RunPlan {
    /// The options of seed `seed` under this plan.
    pub fn options(&self, seed: u64) -> SimOptions {
        let mut options = if self.faults != Faults::None {
            let mut options = SimOptions::swarm(seed, self.nodes, self.clients);
            if self.faults == Faults::All {
                let mut rng = crate::rng::SimRng::derive(seed, "all-faults");
                let swarm = options.swarm.as_mut().expect("swarm options");
                swarm.partitions = true;
                swarm.crashes = true;
                swarm.pauses = true;
                swarm.disk_stalls = true;
                swarm.torn_writes = true;
                swarm.transfers = true;
                swarm.loss = rng.float(0.0, 0.3);
                swarm.duplicate = rng.float(0.0, 0.2);
                swarm.reorder = rng.float(0.0, 0.3);
                options.torn_writes = true;
                options.network = swarm.network(&options.network);
            }
            options
        } else {
            let mut options = SimOptions::new(seed, self.nodes).with_clients(self.clients);
            options.seed = seed;
            options.verbose = false;
            options
        };
        options.wire = match self.wire {
            Some(wire) => wire,
            // Test builds alternate JSON and the binary codec by seed; release runs use the binary codec.
            None if cfg!(debug_assertions) => [WireFormat::Json, WireFormat::Binary][(seed % 2) as usize],
            None => WireFormat::Binary,
        };
        options.trace_hash = self.trace_hash;
        options.liveness_reads = self.liveness_reads;
        options.mutant = self.mutant;
        // A bug in the key-value store shows only through the v2 operations.
        if self.mutant.is_some_and(raft_sm::Mutant::is_state_machine_bug) {
            options.with_kv_v2_mix();
        }
        options.keep_faults = self.keep_faults.as_ref().map(|keep| keep.iter().copied().collect());
        if self.membership_churn {
            let mut rng = crate::rng::SimRng::derive(seed, "membership-plan");
            options.initial_voters = Some(rng.range(1, self.nodes.min(3) as u64) as usize);
            options.membership_churn = Some(crate::cluster::ChurnOptions {
                voters_max: self.nodes,
                // Half the seeds steer toward the single-server change bug's setup.
                aim_barrier: rng.chance(0.5),
                ..crate::cluster::ChurnOptions::default()
            });
            // The stability and stale-candidates episodes bound how far terms rise
            // and how soon all nodes follow; a removed leader's handover and nodes
            // left out of the configuration break those bounds by design.
            options.episodes.hold = 0.0;
            // Removed nodes are kept quiet by PreVote or CheckQuorum (issue 13);
            // with both off, a removed node that a lagging member still counts
            // as a voter gets that member's vote at a higher term, and the
            // member's next answer deposes the leader, every election timeout
            // (seed 0x50 at 5 nodes, swarm: the lagging member never finishes
            // its snapshot). Correct Raft without either has no bound there.
            if !options.pre_vote && !options.check_quorum {
                options.pre_vote = true;
            }
        }
        if let Some(workload) = &mut options.workload {
            workload.keep_ops = self.keep_ops.clone();
        }
        options.replay = Some(self.replay_line(seed));
        options
    }

    /// The one line that replays seed `seed` under this plan.
    pub fn replay_line(&self, seed: u64) -> String {
        let features = if self.mutant.is_some() { " --features mutants" } else { "" };
        format!("cargo run -p sim --release{features} -- run --seed {seed:#x} {}", crate::cli::RunArgs::from_plan(self))
    }
}

/// Runs one seed: the fault phase, then [`Cluster::finish`]. Panics inside
/// (failed invariants, core assertions) are caught and reported as failures.
pub fn run_seed(options: SimOptions, fault_ms: u64, liveness_ms: u64) -> Result<RunSummary, Failure> {
    let seed = options.seed;
    let replay = options.replay.clone().unwrap_or_default();
    LAST_FAILURE.with(|slot| slot.borrow_mut().take());
    note_faults_generated(0);
    OPS_BEGUN.with(|ops| ops.borrow_mut().clear());
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
        let mut cluster = Cluster::new(options);
        cluster.run_for(fault_ms);
        cluster.finish(liveness_ms)
    }));
    match outcome {
        Ok(result) => result,
        Err(payload) => {
            if let Some(failure) = LAST_FAILURE.with(|slot| slot.borrow_mut().take()) {
                return Err(failure);
            }
            let message = payload
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "panic with a non-string payload".into());
            Err(Failure { kind: FailureKind::Crash, seed, at_ms: 0, detail: format!("panicked: {message}"), replay })
        }
    }
}

/// Runs `seed` twice with trace hashing and compares the hashes.
pub fn determinism_check(plan: &RunPlan, seed: u64) -> Result<u64, String> {
    let plan = RunPlan { trace_hash: true, ..plan.clone() };
    let first = run_seed(plan.options(seed), plan.fault_ms, plan.liveness_ms);
    let second = run_seed(plan.options(seed), plan.fault_ms, plan.liveness_ms);
    match (first, second) {
        (Ok(a), Ok(b)) if a.trace_hash == b.trace_hash && a.events == b.events => Ok(a.trace_hash),
        (Ok(a), Ok(b)) => Err(format!(
            "seed {seed:#x} is not deterministic: trace hashes {:#x} ({} events) vs {:#x} ({} events)",
            a.trace_hash, a.events, b.trace_hash, b.events
        )),
        (Err(a), Err(b)) if a.detail == b.detail => Err(format!("seed {seed:#x} fails (deterministically): {a}")),
        (a, b) => Err(format!(
            "seed {seed:#x} is not deterministic: {:?} vs {:?}",
            a.map(|s| s.trace_hash),
            b.map(|s| s.trace_hash)
        )),
    }
}

/// What an exploration found.
#[derive(Debug, Default)]
pub struct ExploreReport {
    /// Seeds run.
    pub seeds: u64,
    /// Failures, in seed order.
    pub failures: Vec<Failure>,
    /// Counters summed over passing and failing seeds.
    pub counters: Counters,
    /// Events processed.
    pub events: u64,
    /// Virtual time simulated.
    pub sim_ms: u64,
    /// Wall time spent.
    pub wall: Duration,
    /// Per coverage goal ([`crate::cluster::GOALS`]), the passing seeds that reached it.
    pub goal_seeds: std::collections::BTreeMap<&'static str, u64>,
}

impl ExploreReport {
    /// Seeds per wall second.
    pub fn seeds_per_second(&self) -> f64 {
        self.seeds as f64 / self.wall.as_secs_f64().max(1e-9)
    }
    /// Events per wall second.
    pub fn events_per_second(&self) -> f64 {
        self.events as f64 / self.wall.as_secs_f64().max(1e-9)
    }
    /// Simulated seconds per wall second.
    pub fn speedup(&self) -> f64 {
        self.sim_ms as f64 / 1000.0 / self.wall.as_secs_f64().max(1e-9)
    }
}

/// Runs seeds `start..start + count` under `plan` on one thread, in seed order;
/// `progress` is called after each. [`crate::parallel::explore_parallel`] with one job.
pub fn explore(
    plan: &RunPlan,
    start: u64,
    count: u64,
    progress: impl FnMut(u64, &Result<RunSummary, Failure>),
) -> ExploreReport {
    let seeds: Vec<u64> = (start..start + count).collect();
    crate::parallel::explore_parallel(plan, &seeds, 1, progress)
}

/// A fault suite for `cargo test`: runs `seeds` under `plan` (only `SIM_SEED`
/// when it is set), panics at the first failure with its replay line (naming
/// the calling test), then requires every counter in `required` to have been
/// hit across the seeds, so a suite that never takes a path fails instead of
/// passing vacuously. Returns the summed counters.
pub fn run_suite(plan: &RunPlan, seeds: std::ops::Range<u64>, required: &[&str]) -> Counters {
    let seeds: Vec<u64> = match std::env::var("SIM_SEED") {
        Ok(text) if !text.is_empty() => vec![crate::failure::seed_from_env(0)],
        _ => seeds.collect(),
    };
    let single = seeds.len() == 1;
    let mut counters = Counters::default();
    for seed in seeds {
        let mut options = plan.options(seed);
        options.replay = Some(crate::failure::default_replay(seed));
        let summary = run_seed(options, plan.fault_ms, plan.liveness_ms).unwrap_or_else(|failure| panic!("{failure}"));
        counters.merge(&summary.counters);
    }
    let missing = counters.missing(required);
    assert!(
        single || missing.is_empty(),
        "the suite never exercised {missing:?} across its seeds; counters:\n{counters}"
    );
    counters
}
