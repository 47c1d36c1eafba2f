//! Everything a run is made of, derived from one seed.

use crate::client::WorkloadOptions;
use crate::faults::SwarmOptions;
use crate::history::Operation;
use crate::network::NetworkOptions;
use crate::rng::SimRng;
use std::fmt;

/// A linearizability checker over a client history (`Err` names the violation).
pub type LinearizabilityCheck = fn(&[Operation]) -> Result<(), String>;

/// The default linearizability check: [`crate::linearizability::check`]. An
/// undecided search (budget exceeded) is reported on stderr, not failed. A
/// violation names its first divergent step: the earliest operation of a
/// minimal non-linearizable sub-history ([`crate::minimal_history`]).
pub fn check_linearizability(history: &[Operation]) -> Result<(), String> {
    match crate::linearizability::check(history) {
        Ok(()) => Ok(()),
        Err(violation) if violation.is_budget_exceeded() => {
            eprintln!("warning: {violation}");
            Ok(())
        }
        Err(violation) => {
            let text = violation.to_string();
            let divergence = violation
                .is_not_linearizable()
                .then(|| crate::minimal_history::first_divergent_operation(history, &violation.key))
                .flatten();
            Err(match (divergence, text.split_once('\n')) {
                (Some(divergence), Some((first, rest))) => format!("{first}; {divergence}\n{rest}"),
                (Some(divergence), None) => format!("{text}; {divergence}"),
                (None, _) => text,
            })
        }
    }
}

/// How messages travel between simulated nodes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WireFormat {
    /// serde_json (the default in test builds, so the serde format is exercised).
    Json,
    /// The core's compact binary codec (`raft_sm::wire`), as the node sends it.
    Binary,
    /// The `Message` value itself (fastest; no encoding exercised).
    Plain,
}

impl WireFormat {
    /// The command-line name.
    pub fn name(self) -> &'static str {
        match self {
            WireFormat::Json => "json",
            WireFormat::Binary => "binary",
            WireFormat::Plain => "plain",
        }
    }

    /// Parses a command-line name.
    pub fn parse(text: &str) -> Option<WireFormat> {
        [WireFormat::Json, WireFormat::Binary, WireFormat::Plain].into_iter().find(|format| format.name() == text)
    }
}

/// The options of one simulation.
#[derive(Clone, Debug)]
pub struct SimOptions {
    /// The seed every random choice derives from.
    pub seed: u64,
    /// Cluster size (ids `1..=nodes`).
    pub nodes: usize,
    /// Latency and message fault rates.
    pub network: NetworkOptions,
    /// Smallest fsync latency.
    pub fsync_ms_min: u64,
    /// Largest fsync latency.
    pub fsync_ms_max: u64,
    /// Crashes may keep a prefix of unsynced writes and tear the last record.
    pub torn_writes: bool,
    /// Smallest time a snapshot the node took itself takes to become durable
    /// after its fsync (the real node writes it on a background thread).
    pub snapshot_write_ms_min: u64,
    /// Largest time of a usual background snapshot write.
    pub snapshot_write_ms_max: u64,
    /// Probability that a background snapshot write is slow instead.
    pub snapshot_write_slow_chance: f64,
    /// Largest time of a slow background snapshot write (from `snapshot_write_ms_max`).
    pub snapshot_write_slow_ms_max: u64,
    /// Node config: smallest election timeout.
    pub election_timeout_ms_min: u64,
    /// Node config: largest election timeout.
    pub election_timeout_ms_max: u64,
    /// Node config: heartbeat interval.
    pub heartbeat_interval_ms: u64,
    /// Node config: snapshot after this many applied entries (0: never).
    pub snapshot_threshold_entries: u64,
    /// Node config: largest InstallSnapshot chunk.
    pub snapshot_chunk_bytes_max: usize,
    /// Node config: most entries per AppendEntries.
    pub append_entries_max: usize,
    /// Node config: most AppendEntries in flight per follower.
    pub inflight_appends_max: usize,
    /// Node config: most entries per Apply action.
    pub apply_entries_max: usize,
    /// Node config: most proposals pending on a leader (beyond: `Busy`).
    pub pending_proposals_max: usize,
    /// Node config: most reads pending on a node (beyond: `Busy`).
    pub pending_reads_max: usize,
    /// Node config: PreVote.
    pub pre_vote: bool,
    /// Node config: CheckQuorum.
    pub check_quorum: bool,
    /// Clients, if any.
    pub workload: Option<WorkloadOptions>,
    /// Random faults during the fault phase, if any.
    pub swarm: Option<SwarmOptions>,
    /// How messages travel: serde_json, the core's binary codec, or as values.
    pub wire: WireFormat,
    /// Check that every binary-encoded message decodes to itself.
    pub wire_check: bool,
    /// Hash the trace (for determinism checks); costs formatting every event.
    pub trace_hash: bool,
    /// Messages held for a paused node beyond this many are dropped.
    pub paused_backlog_max: usize,
    /// The replay line printed with failures (default: derived from the test name).
    pub replay: Option<String>,
    /// Print the options when the cluster starts.
    pub verbose: bool,
    /// The linearizability checker the final check runs, if any.
    pub linearizability: Option<LinearizabilityCheck>,
    /// Write the trace to this file (else as `SIM_TRACE` says).
    pub trace_file: Option<String>,
    /// A deliberate driver bug, for testing that the checkers catch it: nodes
    /// are told their writes are durable before the fsync completes.
    pub driver_bug_ack_before_fsync: bool,
    /// After convergence, require every node to serve a linearizable read (catches
    /// nodes left refusing reads, e.g. by leaked pending reads).
    pub liveness_reads: bool,
    /// A deliberate driver bug, for testing the linearizability check: client
    /// reads are served from the local store of whichever node they reach,
    /// without ReadIndex.
    pub driver_bug_local_reads: bool,
    /// A deliberate driver bug, for testing that breaking the core's contract is
    /// caught: a snapshot the node took is reported durable
    /// (`SnapshotPersisted`) as soon as it is written, before it is.
    pub driver_bug_snapshot_persisted_early: bool,
    /// Record each node's state, every message and the faults over time, for
    /// the HTML view ([`crate::Cluster::write_html`]).
    pub record_timeline: bool,
    /// Messages in flight on a link that goes down are lost at delivery (as a
    /// test harness that cuts a server off drops its replies too); off, they
    /// arrive as sent (they were already on the wire).
    pub drop_in_flight_on_disconnect: bool,
    /// A planted bug (`sim --features mutants` only; see [`raft_sm::Mutant`]).
    pub mutant: Option<raft_sm::Mutant>,
    /// Most events one run may process; beyond, it fails with [`crate::FailureKind::Budget`].
    pub budget_events: u64,
    /// Latest virtual time a run may reach; beyond, it fails with a budget failure.
    pub budget_sim_ms: u64,
    /// Most events queued at once (messages in flight, timers, fsyncs): the memory
    /// budget; beyond, the run fails with a budget failure.
    pub budget_queued: usize,
    /// Directed fault generators (Figure 8 episodes, vote echoes); off unless drawn by a swarm run.
    pub episodes: crate::cluster::EpisodeOptions,
    /// Apply only these of the generated faults (numbered from 1 in generation
    /// order); `None`: all. Set by `sim shrink` and `--keep-faults`.
    pub keep_faults: Option<std::collections::BTreeSet<u64>>,
    /// Membership in play: nodes `1..=initial_voters` bootstrap the cluster, the
    /// others start empty and wait to be added. `None`: every node is a voter.
    pub initial_voters: Option<usize>,
    /// Random membership changes during the fault phase of a swarm run.
    pub membership_churn: Option<crate::cluster::ChurnOptions>,
}

impl SimOptions {
    /// A quiet cluster of `nodes` with seed `seed` (overridden by `SIM_SEED`),
    /// no clients and no faults.
    pub fn new(seed: u64, nodes: usize) -> SimOptions {
        SimOptions {
            seed: crate::failure::seed_from_env(seed),
            nodes,
            network: NetworkOptions::default(),
            fsync_ms_min: 1,
            fsync_ms_max: 5,
            torn_writes: false,
            snapshot_write_ms_min: 0,
            snapshot_write_ms_max: 50,
            snapshot_write_slow_chance: 0.1,
            snapshot_write_slow_ms_max: 5_000,
            election_timeout_ms_min: 600,
            election_timeout_ms_max: 1200,
            heartbeat_interval_ms: 100,
            snapshot_threshold_entries: 10_000,
            snapshot_chunk_bytes_max: 1 << 20,
            append_entries_max: 512,
            inflight_appends_max: 32,
            apply_entries_max: 1024,
            pending_proposals_max: 65_536,
            pending_reads_max: 65_536,
            pre_vote: true,
            check_quorum: true,
            workload: None,
            swarm: None,
            wire: WireFormat::Json,
            wire_check: cfg!(debug_assertions),
            trace_hash: true,
            paused_backlog_max: 4096,
            replay: None,
            verbose: true,
            linearizability: Some(check_linearizability),
            trace_file: None,
            driver_bug_ack_before_fsync: false,
            driver_bug_local_reads: false,
            driver_bug_snapshot_persisted_early: false,
            record_timeline: false,
            drop_in_flight_on_disconnect: false,
            liveness_reads: true,
            mutant: None,
            budget_events: 50_000_000,
            budget_sim_ms: 3_600_000,
            budget_queued: 1_000_000,
            episodes: crate::cluster::EpisodeOptions::default(),
            keep_faults: None,
            initial_voters: None,
            membership_churn: None,
        }
    }

    /// Adds `clients` clients with the default workload.
    pub fn with_clients(mut self, clients: usize) -> SimOptions {
        self.workload = Some(WorkloadOptions { clients, ..WorkloadOptions::default() });
        self
    }

    /// A swarm run: the fault mix, latencies, fsync times and snapshot threshold
    /// are all drawn from `seed` (which `SIM_SEED` does not override here: the
    /// caller chose it).
    pub fn swarm(seed: u64, nodes: usize, clients: usize) -> SimOptions {
        let mut rng = SimRng::derive(seed, "options");
        let swarm = SwarmOptions::draw(&mut rng);
        let mut options = SimOptions::new(seed, nodes);
        options.seed = seed;
        options.network.latency_ms_min = rng.range(1, 5);
        options.network.latency_ms_max = options.network.latency_ms_min + rng.range(0, 40);
        options.network.reorder_delay_ms_max = rng.range(10, 200);
        options.network = swarm.network(&options.network);
        options.fsync_ms_min = rng.range(1, 5);
        options.fsync_ms_max = options.fsync_ms_min + rng.range(0, 30);
        options.torn_writes = swarm.torn_writes;
        options.snapshot_threshold_entries = *rng.pick(&[16, 50, 200, 10_000]);
        options.snapshot_chunk_bytes_max = *rng.pick(&[64, 512, 1 << 20]);
        if rng.chance(0.5) {
            // Small windows and batches: pipelining, backpressure and Busy paths.
            options.append_entries_max = *rng.pick(&[1, 4, 16, 512]);
            options.inflight_appends_max = *rng.pick(&[1, 2, 4, 32]);
            options.apply_entries_max = *rng.pick(&[1, 3, 1024]);
            options.pending_proposals_max = *rng.pick(&[2, 8, 65_536]);
            options.pending_reads_max = *rng.pick(&[2, 8, 65_536]);
        }
        options.pre_vote = rng.chance(0.75);
        options.check_quorum = rng.chance(0.75);
        if rng.chance(0.5) {
            // Tighter timing: more elections, more contention.
            options.heartbeat_interval_ms = rng.range(20, 100);
            options.election_timeout_ms_min = options.heartbeat_interval_ms * rng.range(3, 8);
            options.election_timeout_ms_max = options.election_timeout_ms_min + rng.range(50, 600);
        }
        let mut workload = WorkloadOptions { clients, keys: rng.range(1, 12) as usize, ..WorkloadOptions::default() };
        workload.set_weight = rng.range(1, 6) as u32;
        workload.get_weight = rng.range(1, 6) as u32;
        workload.delete_weight = rng.range(0, 3) as u32;
        options.workload = Some(workload);
        // Drawn last, so that the draws above are those of earlier versions.
        options.snapshot_write_ms_max = *rng.pick(&[5, 50, 200]);
        options.snapshot_write_slow_chance = *rng.pick(&[0.02, 0.1, 0.3]);
        options.snapshot_write_slow_ms_max = *rng.pick(&[1_000, 5_000, 20_000]);
        options.swarm = Some(swarm);
        options.episodes = crate::cluster::EpisodeOptions::draw(&mut SimRng::derive(seed, "episode-options"));
        options.verbose = false;
        options
    }
}

impl fmt::Display for SimOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "seed={:#x} nodes={}", self.seed, self.nodes)?;
        let n = &self.network;
        writeln!(
            f,
            "network: latency_ms={}..{} loss={:.3} duplicate={:.3} reorder={:.3} reorder_delay_ms_max={} wire={}",
            n.latency_ms_min,
            n.latency_ms_max,
            n.loss,
            n.duplicate,
            n.reorder,
            n.reorder_delay_ms_max,
            self.wire.name()
        )?;
        writeln!(
            f,
            "disk: fsync_ms={}..{} torn_writes={} snapshot_write_ms={}..{} (slow {:.2}: up to {})",
            self.fsync_ms_min,
            self.fsync_ms_max,
            self.torn_writes,
            self.snapshot_write_ms_min,
            self.snapshot_write_ms_max,
            self.snapshot_write_slow_chance,
            self.snapshot_write_slow_ms_max
        )?;
        writeln!(
            f,
            "node: election_timeout_ms={}..{} heartbeat_interval_ms={} snapshot_threshold_entries={} snapshot_chunk_bytes_max={} append_entries_max={} inflight_appends_max={} apply_entries_max={} pending_proposals_max={} pending_reads_max={} pre_vote={} check_quorum={}",
            self.election_timeout_ms_min,
            self.election_timeout_ms_max,
            self.heartbeat_interval_ms,
            self.snapshot_threshold_entries,
            self.snapshot_chunk_bytes_max,
            self.append_entries_max,
            self.inflight_appends_max,
            self.apply_entries_max,
            self.pending_proposals_max,
            self.pending_reads_max,
            self.pre_vote,
            self.check_quorum
        )?;
        match &self.workload {
            Some(w) => writeln!(
                f,
                "clients: {} keys={} mix set:get:delete={}:{}:{} value_bytes={}..{} attempt_timeout_ms={} op_timeout_ms={}",
                w.clients, w.keys, w.set_weight, w.get_weight, w.delete_weight, w.value_bytes_min, w.value_bytes_max, w.attempt_timeout_ms, w.op_timeout_ms
            )?,
            None => writeln!(f, "clients: none")?,
        }
        writeln!(
            f,
            "budgets: events={} sim_ms={} queued={}",
            self.budget_events, self.budget_sim_ms, self.budget_queued
        )?;
        let episodes = &self.episodes;
        writeln!(
            f,
            "episodes: figure8={:.2} vote_echo={:.2} hold={:.2}",
            episodes.figure8, episodes.vote_echo, episodes.hold
        )?;
        if let Some(mutant) = self.mutant {
            writeln!(f, "mutant: {mutant}")?;
        }
        match &self.swarm {
            Some(swarm) => write!(f, "swarm: {swarm}"),
            None => write!(f, "swarm: off"),
        }
    }
}
