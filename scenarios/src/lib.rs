//! # scenarios
//!
//! The named scenarios of the raftkv checklist (A1…H1, P1…P4, S1, X1…X4) and the
//! randomized fault suites, all on the deterministic simulator (`sim`). This
//! library holds what the scenario files share:
//!
//! - [`for_each_seed`]: runs one scenario over many seeds (`SCENARIO_SEEDS`,
//!   default [`SEEDS_DEFAULT`]) or over the one seed `SIM_SEED` names, and on a
//!   failure prints the line that replays exactly that seed.
//! - [`Run`]: one seed of one scenario; builds the options and the cluster, with
//!   the replay line wired into every simulator failure.
//! - predicates and views that make scenarios read like their story
//!   ([`one_leader_agreed`], [`all_have`], [`applied_commands`], …).

#![forbid(unsafe_code)]

pub mod soak;

use raft_sm::kv::{Command, Op};
use raft_sm::{NodeId, Note, Payload, Role, Term};
use sim::{Cluster, NodeView, SimOptions, Who, WriteAnswer};
use std::panic::{catch_unwind, AssertUnwindSafe};

/// Seeds per scenario when `SCENARIO_SEEDS` is not set.
pub const SEEDS_DEFAULT: u64 = 100;

/// Seeds of the slowest scenarios (1,000 writes, 20 s of 5-node load) when
/// `SCENARIO_SEEDS` is not set.
pub const SEEDS_SLOW: u64 = 50;

/// How many seeds each scenario runs: `SCENARIO_SEEDS`, else `default`.
pub fn seeds_count(default: u64) -> u64 {
    match std::env::var("SCENARIO_SEEDS") {
        Ok(text) if !text.trim().is_empty() => {
            text.trim().parse().unwrap_or_else(|_| panic!("SCENARIO_SEEDS={text:?} is not a number"))
        }
        _ => default,
    }
}

/// The seed `SIM_SEED` names, if set.
pub fn sim_seed() -> Option<u64> {
    match std::env::var("SIM_SEED") {
        Ok(text) if !text.trim().is_empty() => Some(
            sim::failure::parse_seed(&text)
                .unwrap_or_else(|| panic!("SIM_SEED={text:?} is not a decimal or 0x-hex u64")),
        ),
        _ => None,
    }
}

/// The one line that replays seed `seed` of scenario `name`.
pub fn replay_line(name: &str, seed: u64) -> String {
    format!("SIM_SEED={seed:#x} cargo test -p scenarios {name} -- --exact")
}

/// One seed of one scenario.
#[derive(Clone, Debug)]
pub struct Run {
    /// The scenario (the test's name).
    pub name: &'static str,
    /// The seed.
    pub seed: u64,
}

impl Run {
    /// A quiet cluster's options for this seed: `nodes` nodes, no clients, no
    /// faults, messages in JSON (even seeds) or the binary codec (odd seeds),
    /// the replay line set (the simulator's linearizability checker is on by
    /// default and runs in `check`).
    pub fn options(&self, nodes: usize) -> SimOptions {
        let mut options = SimOptions::new(self.seed, nodes);
        options.seed = self.seed;
        // Both encodings the nodes can speak: serde_json and the core's binary codec.
        options.wire = [sim::options::WireFormat::Json, sim::options::WireFormat::Binary][(self.seed % 2) as usize];
        // Quiet over many seeds; print the options when replaying one.
        options.verbose = sim_seed().is_some();
        options.replay = Some(replay_line(self.name, self.seed));
        assert!(options.linearizability.is_some(), "the final check runs the linearizability checker");
        options
    }

    /// [`Run::options`] with `clients` clients of the default workload.
    pub fn options_with_clients(&self, nodes: usize, clients: usize) -> SimOptions {
        self.options(nodes).with_clients(clients)
    }

    /// A cluster of `nodes` with quiet options.
    pub fn cluster(&self, nodes: usize) -> Cluster {
        Cluster::new(self.options(nodes))
    }

    /// A cluster of `nodes` that has elected a leader everyone follows.
    pub fn cluster_with_leader(&self, nodes: usize) -> Cluster {
        let mut cluster = self.cluster(nodes);
        wait_one_leader_agreed(&mut cluster, 10_000);
        cluster
    }

    /// The replay line of this run.
    pub fn replay(&self) -> String {
        replay_line(self.name, self.seed)
    }
}

/// A scenario failed on one seed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScenarioFailure {
    /// The scenario.
    pub name: String,
    /// The failing seed.
    pub seed: u64,
    /// The panic message.
    pub message: String,
    /// The line that replays it.
    pub replay: String,
}

impl std::fmt::Display for ScenarioFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "scenario {} failed on seed {:#x}: {}\nreplay: {}", self.name, self.seed, self.message, self.replay)
    }
}

/// The seeds a scenario runs: only `SIM_SEED` when set, else `count` seeds from `base`.
pub fn seeds(base: u64, count: u64) -> Vec<u64> {
    match sim_seed() {
        Some(seed) => vec![seed],
        None => (base..base + count).collect(),
    }
}

/// Runs `scenario` on each seed and returns the first failure (with its replay
/// line) instead of panicking. The number of seeds that ran is returned on success.
pub fn try_each_seed(
    name: &'static str,
    seeds: &[u64],
    mut scenario: impl FnMut(&Run),
) -> Result<usize, ScenarioFailure> {
    for &seed in seeds {
        let run = Run { name, seed };
        let outcome = catch_unwind(AssertUnwindSafe(|| scenario(&run)));
        if let Err(payload) = outcome {
            let message = payload
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| payload.downcast_ref::<&str>().map(|text| text.to_string()))
                .unwrap_or_else(|| "panic with a non-string payload".into());
            return Err(ScenarioFailure { name: name.into(), seed, message, replay: run.replay() });
        }
    }
    Ok(seeds.len())
}

/// Runs `scenario` over [`SEEDS_DEFAULT`] seeds starting at `base` (or
/// `SCENARIO_SEEDS` of them, or only `SIM_SEED`); panics at the first failing
/// seed with its message and the replay line
/// `SIM_SEED=0x.. cargo test -p scenarios <name> -- --exact`.
pub fn for_each_seed(name: &'static str, base: u64, scenario: impl FnMut(&Run)) {
    for_each_seed_n(name, base, SEEDS_DEFAULT, scenario);
}

/// [`for_each_seed`] with another default count (still overridden by
/// `SCENARIO_SEEDS`); the slowest scenarios run [`SEEDS_SLOW`].
pub fn for_each_seed_n(name: &'static str, base: u64, default_count: u64, scenario: impl FnMut(&Run)) {
    let seeds = seeds(base, seeds_count(default_count));
    let began = std::time::Instant::now();
    match try_each_seed(name, &seeds, scenario) {
        Ok(count) => eprintln!("{name}: {count} seeds passed in {:.2} s", began.elapsed().as_secs_f64()),
        Err(failure) => {
            eprintln!("replay: {}", failure.replay);
            panic!("{failure}");
        }
    }
}

// ----- the story helpers ------------------------------------------------------------

/// Scenario-side additions to the harness.
pub trait ClusterExt {
    /// Runs until `predicate` holds, at most `limit_ms`; panics with the
    /// simulator's failure (the unmet predicate's name, the seed and the replay
    /// line) otherwise. `run_until` for stories that cannot go on without it.
    fn wait_for(&mut self, name: &str, predicate: impl FnMut(&Cluster) -> bool, limit_ms: u64);
}

impl ClusterExt for Cluster {
    fn wait_for(&mut self, name: &str, predicate: impl FnMut(&Cluster) -> bool, limit_ms: u64) {
        if let Err(failure) = self.run_until(name, predicate, limit_ms) {
            panic!("{failure}");
        }
    }
}

// ----- predicates and views ---------------------------------------------------------

/// Exactly one node is leader, and every running node knows it as leader and
/// is in its term.
pub fn one_leader_agreed(cluster: &Cluster) -> bool {
    agreed_leader(cluster).is_some()
}

/// The leader every running node agrees on (and exactly one leader), if any.
pub fn agreed_leader(cluster: &Cluster) -> Option<(NodeId, Term)> {
    let nodes = cluster.nodes();
    let leaders: Vec<&NodeView> = nodes.iter().filter(|n| n.role() == Some(Role::Leader)).collect();
    if leaders.len() != 1 || leaders[0].is_paused() {
        return None;
    }
    let (leader, term) = (leaders[0].id(), leaders[0].term());
    nodes
        .iter()
        .filter(|n| n.is_up() && !n.is_paused())
        .all(|n| n.leader() == Some(leader) && n.term() == term)
        .then_some((leader, term))
}

/// Runs until [`one_leader_agreed`] (panicking with the replay line after `limit_ms`).
pub fn wait_one_leader_agreed(cluster: &mut Cluster, limit_ms: u64) -> (NodeId, Term) {
    cluster
        .run_until("one leader, agreed by every running node", one_leader_agreed, limit_ms)
        .unwrap_or_else(|failure| panic!("{failure}"));
    agreed_leader(cluster).expect("just held")
}

/// Every running node has `key` = `value` in its store.
pub fn all_have(cluster: &Cluster, key: &str, value: &str) -> bool {
    cluster.nodes().iter().filter(|n| n.is_up()).all(|n| n.kv_get(key).as_deref() == Some(value))
}

/// The leader has committed an entry of its own term (so its commit index
/// covers everything committed before it was elected: Raft §5.4.2, §8), and
/// every running node applied up to that commit index.
pub fn all_caught_up(cluster: &Cluster) -> bool {
    let Some(leader) = cluster.leader() else {
        return false;
    };
    let view = cluster.node(leader);
    let commit = view.commit_index();
    let Some(core) = view.core() else {
        return false;
    };
    if core.term_at(commit) != Some(core.term()) {
        return false;
    }
    cluster.nodes().iter().filter(|n| n.is_up()).all(|n| n.applied_index() == commit)
}

/// The commands a node applied (across restarts), in index order; no-ops skipped.
pub fn applied_commands(node: &NodeView) -> Vec<Command> {
    node.applied_entries()
        .into_iter()
        .filter_map(|entry| match &entry.payload {
            Payload::Noop | Payload::Membership(_) => None,
            Payload::Command(bytes) => Some(Command::decode(bytes).expect("applied entries decode")),
        })
        .collect()
}

/// The values a node applied to `key`, in order (`None` for a delete).
pub fn applied_values(node: &NodeView, key: &str) -> Vec<Option<String>> {
    applied_commands(node)
        .into_iter()
        .filter(|command| command.key() == key)
        .map(|command| match command.op {
            Op::Set { value, .. } => Some(value),
            _ => None,
        })
        .collect()
}

/// Proposes `command` at the current leader and waits for it to apply there;
/// panics with the replay line if it does not within `limit_ms`.
pub fn write_ok(cluster: &mut Cluster, command: &Command, limit_ms: u64) {
    let answer = cluster.propose_and_wait(Who::Leader, command, limit_ms);
    assert_eq!(
        answer,
        WriteAnswer::Applied(Ok(())),
        "write {command:?} at {} ms (seed {:#x})",
        cluster.now_ms(),
        cluster.seed()
    );
}

/// Writes `count` sets `key{i % keys}` = `"{tag}{i}"` through the leader, one at a
/// time, each waited for. Returns the last value written per key.
pub fn write_many(cluster: &mut Cluster, tag: &str, count: usize, keys: usize) -> Vec<(String, String)> {
    let mut last = vec![(String::new(), String::new()); keys.min(count)];
    for i in 0..count {
        let key = format!("{tag}k{}", i % keys);
        let value = format!("{tag}{i}");
        write_ok(cluster, &Command::set(key.clone(), value.clone()), 5_000);
        last[i % keys] = (key, value);
    }
    last
}

/// Proposes `count` sets at the leader without waiting (pipelined), then runs
/// until every one applied on the leader. Much faster than [`write_many`].
pub fn write_burst(cluster: &mut Cluster, tag: &str, count: usize, keys: usize, limit_ms: u64) {
    let mut sent = 0;
    while sent < count {
        let chunk = (count - sent).min(64);
        let mut last_index = raft_sm::LogIndex(0);
        for i in sent..sent + chunk {
            let command = Command::set(format!("{tag}k{}", i % keys), format!("{tag}{i}"));
            match cluster.propose(Who::Leader, &command) {
                raft_sm::ProposalOutcome::Accepted { index, .. } => last_index = index,
                other => panic!("burst write {i} answered {other:?} (seed {:#x})", cluster.seed()),
            }
        }
        let leader = cluster.resolve(Who::Leader);
        cluster.wait_for("the burst applied on the leader", |c| c.node(leader).applied_index() >= last_index, limit_ms);
        sent += chunk;
    }
}

/// A point in the stream of core notes (see [`noted_since`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NoteMark(usize);

/// Marks the notes so far: later [`noted_since`] calls look only at what comes after.
pub fn note_mark(cluster: &Cluster) -> NoteMark {
    NoteMark(cluster.notes().len())
}

/// Whether `node` (any node if `None`) emitted a core note matching
/// `predicate` after `mark`: the marks that prove a path was taken.
pub fn noted_since(cluster: &Cluster, mark: NoteMark, node: Option<NodeId>, predicate: impl Fn(&Note) -> bool) -> bool {
    cluster.notes()[mark.0..].iter().any(|(_, id, note)| node.is_none_or(|node| node == *id) && predicate(note))
}

/// The other node ids, in order.
pub fn others(cluster: &Cluster, of: &[NodeId]) -> Vec<NodeId> {
    cluster.ids().into_iter().filter(|id| !of.contains(id)).collect()
}
