//! The harness: a whole cluster in one thread, driven by one seed.
//!
//! [`Cluster`] owns the event queue, the nodes (each a [`NodeHost`]: core,
//! store, disk), the network, the clients and the checkers. Scenario authors
//! use its methods to inject faults and observe nodes; every step of every node
//! is checked against the Raft safety invariants, and a safety failure panics at
//! once with the replay line.

use crate::checker::{Checker, Violation};
use crate::client::{ClientAction, Reply, Request, Workload};
use crate::counters::Counters;
use crate::failure::{default_replay, Failure, FailureKind};
use crate::faults::{next_swarm_fault, FaultAction, SwarmView};
use crate::history::History;
use crate::network::Network;
use crate::node_host::{describe_event, Answer, Effect, NodeHost};
use crate::options::{SimOptions, WireFormat};
use crate::queue::EventQueue;
use crate::rng::{derive_seed, SimRng};
use crate::trace::Trace;
use raft_sm::kv::{Command, KvError};
use raft_sm::{
    Config, Entry, Event, LogIndex, Message, Node, NodeId, PersistId, ProposalOutcome, Rejection, Role, Term, TimerKind,
};
use std::collections::BTreeMap;

/// Something scheduled in virtual time.
#[derive(Clone, Debug)]
enum SimEvent {
    Deliver { to: NodeId, wire: Wire },
    Timer { node: NodeId, incarnation: u64, kind: TimerKind, deadline_ms: u64 },
    Fsync { node: NodeId, incarnation: u64, id: PersistId },
    Request { node: NodeId, request: u64 },
    Response { client: usize, request: u64, reply: Reply },
    ClientWake { client: usize, token: u64 },
    Fault(FaultAction),
    SwarmTick,
}

impl SimEvent {
    fn target(&self) -> Option<NodeId> {
        match self {
            SimEvent::Deliver { to, .. } => Some(*to),
            SimEvent::Timer { node, .. } | SimEvent::Fsync { node, .. } | SimEvent::Request { node, .. } => Some(*node),
            _ => None,
        }
    }
}

/// A message on the wire: serde_json bytes, binary wire bytes, or the value itself.
#[derive(Clone, Debug)]
enum Wire {
    Json(std::rc::Rc<Vec<u8>>),
    Binary(std::rc::Rc<Vec<u8>>),
    Plain(Box<Message>),
}

#[derive(Clone, Debug)]
enum Owner {
    Client(usize),
    Harness,
}

#[derive(Clone, Debug)]
struct RequestInfo {
    owner: Owner,
    request: Request,
}

/// Which node a harness call is about: by role or by id.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Who {
    /// The current leader (panics if there is none).
    Leader,
    /// The n-th running follower in id order (0-based).
    Follower(usize),
    /// A node by id.
    Id(NodeId),
}

impl From<NodeId> for Who {
    fn from(id: NodeId) -> Who {
        Who::Id(id)
    }
}

impl From<u64> for Who {
    fn from(id: u64) -> Who {
        Who::Id(NodeId(id))
    }
}

/// How a harness read is served.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Consistency {
    /// ReadIndex through the core (`Event::Read`), like a client Get.
    Linearizable,
    /// Straight from the node's store, now (may be stale).
    Local,
}

/// The end of a harness read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReadAnswer {
    /// The value (`None`: not found).
    Value(Option<String>),
    /// Refused by the node.
    Rejected(Rejection),
    /// Dropped by the node (leadership changed).
    Dropped,
    /// No answer within the limit.
    TimedOut,
}

/// The end of a harness write.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WriteAnswer {
    /// Applied on the proposing node with this result.
    Applied(Result<(), KvError>),
    /// Refused by the node.
    Rejected(Rejection),
    /// Dropped (outcome unknown).
    Dropped,
    /// Not applied within the limit.
    TimedOut,
}

/// A read-only view of one node.
pub struct NodeView<'a> {
    host: &'a NodeHost,
}

impl<'a> NodeView<'a> {
    /// The id.
    pub fn id(&self) -> NodeId {
        self.host.id
    }
    /// Whether the process runs (not crashed).
    pub fn is_up(&self) -> bool {
        self.host.is_up()
    }
    /// Whether the node is paused.
    pub fn is_paused(&self) -> bool {
        self.host.paused
    }
    /// The core, while running.
    pub fn core(&self) -> Option<&'a Node> {
        self.host.node.as_ref()
    }
    /// The current term (0 while crashed).
    pub fn term(&self) -> Term {
        self.core().map_or(Term(0), Node::term)
    }
    /// The role (`None` while crashed).
    pub fn role(&self) -> Option<Role> {
        self.core().map(Node::role)
    }
    /// The leader this node knows.
    pub fn leader(&self) -> Option<NodeId> {
        self.core().and_then(Node::leader)
    }
    /// The commit index (0 while crashed).
    pub fn commit_index(&self) -> LogIndex {
        self.core().map_or(LogIndex(0), Node::commit_index)
    }
    /// The store's applied index.
    pub fn applied_index(&self) -> LogIndex {
        self.host.kv.applied_index()
    }
    /// The last log index (0 while crashed).
    pub fn last_log_index(&self) -> LogIndex {
        self.core().map_or(LogIndex(0), Node::last_log_index)
    }
    /// Every entry this node ever applied (across restarts), in index order.
    /// Entries a snapshot brought in are not listed.
    pub fn applied_entries(&self) -> Vec<&'a Entry> {
        self.host.applied.values().collect()
    }
    /// The store's pairs, sorted by key.
    pub fn kv_pairs(&self) -> Vec<(String, String)> {
        self.host.kv.sorted_pairs()
    }
    /// The store's value at `key`.
    pub fn kv_get(&self, key: &str) -> Option<String> {
        self.host.kv.get(key).ok().map(str::to_string)
    }
    /// The durable hard state on disk.
    pub fn durable_hard_state(&self) -> raft_sm::HardState {
        self.host.disk.durable().hard_state
    }
}

/// What a finished run reports.
#[derive(Clone, Debug)]
pub struct RunSummary {
    /// The seed.
    pub seed: u64,
    /// Events processed.
    pub events: u64,
    /// Virtual time at the end.
    pub sim_ms: u64,
    /// The trace hash (0 when trace hashing is off).
    pub trace_hash: u64,
    /// Coverage counters.
    pub counters: Counters,
    /// Client operations, with definite and unknown outcomes.
    pub ops_completed: usize,
    /// Client operations with unknown outcome.
    pub ops_unknown: usize,
}

/// A simulated cluster. See the crate docs for an example.
pub struct Cluster {
    options: SimOptions,
    replay: String,
    now_ms: u64,
    queue: EventQueue<SimEvent>,
    hosts: Vec<NodeHost>,
    boots: Vec<u64>,
    network: Network,
    disk_rng: SimRng,
    fault_rng: SimRng,
    workload: Option<Workload>,
    requests: BTreeMap<u64, RequestInfo>,
    answers: BTreeMap<u64, Answer>,
    read_values: BTreeMap<u64, Option<String>>,
    next_request: u64,
    checker: Checker,
    counters: Counters,
    trace: Trace,
    trace_path: Option<String>,
    backlog: Vec<Vec<SimEvent>>,
    events: u64,
    /// Events processed at the current virtual millisecond (an event storm guard).
    events_this_ms: u64,
    swarm_active: bool,
    no_history: History,
}

/// Most events one virtual millisecond may hold before the run is declared an
/// event storm (a livelock of zero-latency messages would otherwise spin forever).
const EVENTS_PER_MS_MAX: u64 = 1_000_000;

impl Cluster {
    /// Builds and starts the cluster (nodes booted, clients and swarm scheduled).
    /// Prints the seed and every derived option first when `options.verbose`.
    pub fn new(options: SimOptions) -> Cluster {
        assert!(options.nodes >= 1, "a cluster has at least one node");
        let seed = options.seed;
        let replay = options.replay.clone().unwrap_or_else(|| default_replay(seed));
        if options.verbose {
            println!("{options}");
            println!("replay: {replay}");
        }
        let ids: Vec<NodeId> = (1..=options.nodes as u64).map(NodeId).collect();
        let hosts = ids
            .iter()
            .map(|&id| {
                let mut config = Config::new(id, ids.clone());
                config.election_timeout_ms_min = options.election_timeout_ms_min;
                config.election_timeout_ms_max = options.election_timeout_ms_max;
                config.heartbeat_interval_ms = options.heartbeat_interval_ms;
                config.snapshot_threshold_entries = options.snapshot_threshold_entries;
                config.snapshot_chunk_bytes_max = options.snapshot_chunk_bytes_max;
                config.pre_vote = options.pre_vote;
                config.check_quorum = options.check_quorum;
                config.validate().unwrap_or_else(|error| panic!("node configuration: {error}"));
                let mut host = NodeHost::new(config);
                host.ack_before_fsync = options.driver_bug_ack_before_fsync;
                host
            })
            .collect();
        let sink = match &options.trace_file {
            Some(path) => crate::trace::open_sink(seed, path.clone()),
            None => crate::trace::sink_from_env(seed),
        };
        let (trace_sink, trace_path) = match sink {
            Some((path, sink)) => (Some(sink), Some(path)),
            None => (None, None),
        };
        if let Some(path) = &trace_path {
            println!("trace: {path}");
        }
        let workload = options
            .workload
            .clone()
            .map(|workload| Workload::new(workload, ids.clone(), SimRng::derive(seed, "clients")));
        let mut cluster = Cluster {
            network: Network::new(ids.clone(), options.network.clone(), SimRng::derive(seed, "network")),
            disk_rng: SimRng::derive(seed, "disk"),
            fault_rng: SimRng::derive(seed, "faults"),
            replay,
            now_ms: 0,
            queue: EventQueue::default(),
            boots: vec![0; ids.len()],
            backlog: vec![Vec::new(); ids.len()],
            hosts,
            workload,
            requests: BTreeMap::new(),
            answers: BTreeMap::new(),
            read_values: BTreeMap::new(),
            next_request: 1,
            checker: Checker::default(),
            counters: Counters::default(),
            trace: Trace::new(options.trace_hash, trace_sink),
            trace_path,
            events: 0,
            events_this_ms: 0,
            no_history: History::default(),
            swarm_active: options.swarm.is_some(),
            options,
        };
        for id in ids {
            cluster.boot(id);
        }
        if let Some(workload) = &mut cluster.workload {
            let actions = workload.start(0);
            cluster.client_actions(actions);
        }
        if cluster.swarm_active {
            cluster.schedule_swarm_tick();
        }
        cluster
    }

    // ----- time -----------------------------------------------------------------

    /// Virtual time now.
    pub fn now_ms(&self) -> u64 {
        self.now_ms
    }

    /// The seed.
    pub fn seed(&self) -> u64 {
        self.options.seed
    }

    /// The options the cluster runs with.
    pub fn options(&self) -> &SimOptions {
        &self.options
    }

    /// Events processed so far.
    pub fn events(&self) -> u64 {
        self.events
    }

    /// The hash of the trace so far.
    pub fn trace_hash(&self) -> u64 {
        self.trace.hash()
    }

    /// Runs every event due in the next `duration_ms`.
    pub fn run_for(&mut self, duration_ms: u64) {
        let until = self.now_ms + duration_ms;
        while self.queue.peek_time_ms().is_some_and(|at| at <= until) {
            self.step_one();
        }
        self.now_ms = until;
    }

    /// Runs until `predicate` holds (checked before each event), for at most
    /// `limit_ms`. The error names the predicate and carries the replay line.
    pub fn run_until(
        &mut self,
        name: &str,
        mut predicate: impl FnMut(&Cluster) -> bool,
        limit_ms: u64,
    ) -> Result<(), Failure> {
        let until = self.now_ms + limit_ms;
        loop {
            if predicate(self) {
                return Ok(());
            }
            match self.queue.peek_time_ms() {
                Some(at) if at <= until => self.step_one(),
                _ => {
                    self.now_ms = until;
                    if predicate(self) {
                        return Ok(());
                    }
                    return Err(
                        self.failure(FailureKind::Liveness, format!("`{name}` did not hold within {limit_ms} ms"))
                    );
                }
            }
        }
    }

    /// Schedules a fault (or repair) at absolute virtual time `at_ms`.
    pub fn schedule(&mut self, at_ms: u64, action: FaultAction) {
        let at_ms = at_ms.max(self.now_ms);
        self.queue.push(at_ms, SimEvent::Fault(action));
    }

    // ----- nodes by role ----------------------------------------------------------

    /// Every node id.
    pub fn ids(&self) -> Vec<NodeId> {
        self.hosts.iter().map(|host| host.id).collect()
    }

    /// The current leader: the running, unpaused leader of the highest term.
    pub fn leader(&self) -> Option<NodeId> {
        self.hosts
            .iter()
            .filter(|host| !host.paused)
            .filter_map(|host| host.node.as_ref())
            .filter(|node| node.role() == Role::Leader)
            .max_by_key(|node| node.term())
            .map(Node::id)
    }

    /// Running followers (not the leader), in id order.
    pub fn followers(&self) -> Vec<NodeId> {
        let leader = self.leader();
        self.hosts.iter().filter(|host| host.is_up() && Some(host.id) != leader).map(|host| host.id).collect()
    }

    /// Resolves a role-relative handle to an id (panics with the reason if it cannot).
    pub fn resolve(&self, who: impl Into<Who>) -> NodeId {
        match who.into() {
            Who::Id(id) => {
                assert!(
                    self.hosts.iter().any(|host| host.id == id),
                    "no node {id} in a cluster of {}",
                    self.hosts.len()
                );
                id
            }
            Who::Leader => {
                self.leader().unwrap_or_else(|| panic!("no leader at {} ms (seed {:#x})", self.now_ms, self.seed()))
            }
            Who::Follower(n) => {
                *self.followers().get(n).unwrap_or_else(|| panic!("no follower #{n} at {} ms", self.now_ms))
            }
        }
    }

    /// A view of one node.
    pub fn node(&self, who: impl Into<Who>) -> NodeView<'_> {
        let id = self.resolve(who);
        NodeView { host: self.host(id) }
    }

    /// Views of every node.
    pub fn nodes(&self) -> Vec<NodeView<'_>> {
        self.hosts.iter().map(|host| NodeView { host }).collect()
    }

    fn host(&self, id: NodeId) -> &NodeHost {
        &self.hosts[(id.0 - 1) as usize]
    }

    fn host_mut(&mut self, id: NodeId) -> &mut NodeHost {
        &mut self.hosts[(id.0 - 1) as usize]
    }

    // ----- faults -----------------------------------------------------------------

    /// Splits the network into groups (nodes in no group are isolated).
    pub fn partition(&mut self, groups: &[&[NodeId]]) {
        let groups: Vec<Vec<NodeId>> = groups.iter().map(|group| group.to_vec()).collect();
        self.apply_fault(FaultAction::Partition(groups));
    }

    /// Cuts a node off from everyone, both directions.
    pub fn isolate(&mut self, who: impl Into<Who>) {
        let id = self.resolve(who);
        self.apply_fault(FaultAction::Isolate(id));
    }

    /// Same as [`Cluster::isolate`].
    pub fn disconnect(&mut self, who: impl Into<Who>) {
        self.isolate(who);
    }

    /// Restores every link of a node, both directions.
    pub fn connect(&mut self, who: impl Into<Who>) {
        let id = self.resolve(who);
        self.apply_fault(FaultAction::Connect(id));
    }

    /// A node reaches only `peers` (both directions): partial connectivity.
    pub fn restrict(&mut self, who: impl Into<Who>, peers: &[NodeId]) {
        let id = self.resolve(who);
        self.apply_fault(FaultAction::Restrict(id, peers.to_vec()));
    }

    /// Cuts (or restores) the one-way link `from → to`.
    pub fn set_link(&mut self, from: NodeId, to: NodeId, up: bool) {
        self.apply_fault(FaultAction::Link { from, to, up });
    }

    /// Every link up again (loss and latency settings unchanged).
    pub fn heal(&mut self) {
        self.apply_fault(FaultAction::Heal);
    }

    /// Kills a node's process.
    pub fn crash(&mut self, who: impl Into<Who>) -> NodeId {
        let id = self.resolve(who);
        self.apply_fault(FaultAction::Crash(id));
        id
    }

    /// Starts a crashed node from its disk.
    pub fn restart(&mut self, who: impl Into<Who>) {
        let id = self.resolve(who);
        self.apply_fault(FaultAction::Restart(id));
    }

    /// Pauses a node: it receives nothing and fires no timers until resumed.
    pub fn pause(&mut self, who: impl Into<Who>) -> NodeId {
        let id = self.resolve(who);
        self.apply_fault(FaultAction::Pause(id));
        id
    }

    /// Resumes a paused node: everything held back is delivered now.
    pub fn resume(&mut self, who: impl Into<Who>) {
        let id = self.resolve(who);
        self.apply_fault(FaultAction::Resume(id));
    }

    /// The node's fsyncs hang for `duration_ms`.
    pub fn stall_disk(&mut self, who: impl Into<Who>, duration_ms: u64) {
        let node = self.resolve(who);
        self.apply_fault(FaultAction::DiskStall { node, duration_ms });
    }

    /// The network.
    pub fn network(&mut self) -> &mut Network {
        &mut self.network
    }

    /// Carries out one fault action now.
    pub fn apply_fault(&mut self, action: FaultAction) {
        if self.trace.enabled() {
            self.trace.line(format_args!("{:>8} ** {action:?}", self.now_ms));
        }
        match action {
            FaultAction::Partition(groups) => {
                self.counters.add("partitions", 1);
                self.network.partition(&groups);
            }
            FaultAction::Isolate(id) => {
                self.counters.add("partitions", 1);
                self.network.isolate(id);
            }
            FaultAction::Connect(id) => self.network.connect(id),
            FaultAction::Restrict(id, peers) => {
                self.counters.add("partitions", 1);
                self.network.restrict(id, &peers);
            }
            FaultAction::Link { from, to, up } => {
                if !up {
                    self.counters.add("partitions", 1);
                }
                self.network.set_link(from, to, up);
            }
            FaultAction::Heal => self.network.heal(),
            FaultAction::Crash(id) => {
                if !self.host(id).is_up() {
                    return;
                }
                let torn = self.options.torn_writes;
                let damage = {
                    let host = &mut self.hosts[(id.0 - 1) as usize];
                    host.crash(&mut self.disk_rng, torn)
                };
                match damage {
                    Ok(damage) => {
                        self.counters.add("crashes", 1);
                        if damage.torn {
                            self.counters.add("torn_writes", 1);
                        }
                        self.counters.add("unsynced_writes_lost", damage.writes_lost as u64);
                    }
                    Err(error) => self.fail(FailureKind::Safety, format!("{id} crash: {error}")),
                }
                self.backlog[(id.0 - 1) as usize].clear();
            }
            FaultAction::Restart(id) => {
                if self.host(id).is_up() {
                    return;
                }
                self.counters.add("restarts", 1);
                self.boot(id);
            }
            FaultAction::Pause(id) => {
                let host = self.host_mut(id);
                if host.is_up() && !host.paused {
                    host.paused = true;
                    self.counters.add("pauses", 1);
                }
            }
            FaultAction::Resume(id) => {
                let host = self.host_mut(id);
                if !host.paused {
                    return;
                }
                host.paused = false;
                let held = std::mem::take(&mut self.backlog[(id.0 - 1) as usize]);
                for event in held {
                    self.queue.push(self.now_ms, event);
                }
            }
            FaultAction::DiskStall { node, duration_ms } => {
                self.counters.add("disk_stalls", 1);
                let until = self.now_ms + duration_ms;
                let host = self.host_mut(node);
                host.disk.stalled_until_ms = host.disk.stalled_until_ms.max(until);
            }
            FaultAction::Network(options) => self.network.set_options(options),
            FaultAction::TransferLeadership(to) => {
                if let Some(leader) = self.leader() {
                    if leader != to {
                        self.step_node(leader, Event::TransferLeadership { to });
                    }
                }
            }
        }
    }

    fn boot(&mut self, id: NodeId) {
        let index = (id.0 - 1) as usize;
        let boot = self.boots[index];
        self.boots[index] += 1;
        let rng_seed = derive_seed(self.options.seed, &format!("node/{}/{boot}", id.0));
        let now = self.now_ms;
        let mut line = self.trace.enabled().then(String::new);
        let effects = self.hosts[index].boot(now, rng_seed, line.as_mut());
        if let Some(line) = line {
            self.trace.line(format_args!("{now:>8} {id} boot#{boot} →{line}"));
        }
        self.after_node_step(id, effects);
    }

    // ----- requests from the harness ---------------------------------------------------

    /// Proposes `command` to a node now and returns the core's immediate answer.
    pub fn propose(&mut self, who: impl Into<Who>, command: &Command) -> ProposalOutcome {
        let id = self.resolve(who);
        let request = self.harness_request(Request::Write(command.encode()));
        self.step_node(id, Event::Propose { id: request, command: command.encode() });
        match self.answers.get(&request) {
            Some(Answer::Accepted { index, term }) => ProposalOutcome::Accepted { index: *index, term: *term },
            Some(Answer::Rejected(rejection)) => ProposalOutcome::Rejected(rejection.clone()),
            Some(Answer::Dropped) => ProposalOutcome::Dropped,
            other => panic!("{id} answered proposal #{request} with {other:?}"),
        }
    }

    /// Proposes `command` and runs until the proposing node applies it (or
    /// refuses, drops, or `limit_ms` passes).
    pub fn propose_and_wait(&mut self, who: impl Into<Who>, command: &Command, limit_ms: u64) -> WriteAnswer {
        let id = self.resolve(who);
        let request = self.next_request;
        match self.propose(id, command) {
            ProposalOutcome::Accepted { .. } => {}
            ProposalOutcome::Rejected(rejection) => return WriteAnswer::Rejected(rejection),
            ProposalOutcome::Dropped => return WriteAnswer::Dropped,
        }
        let done =
            |cluster: &Cluster| matches!(cluster.answers.get(&request), Some(Answer::Written(_) | Answer::Dropped));
        let _ = self.run_until("proposal answered", done, limit_ms);
        match self.answers.get(&request) {
            Some(Answer::Written(result)) => WriteAnswer::Applied(*result),
            Some(Answer::Dropped) => WriteAnswer::Dropped,
            _ => WriteAnswer::TimedOut,
        }
    }

    /// Reads `key` at a node: linearizably through the core (running until the
    /// answer, at most 5 s), or locally from its store.
    pub fn read(&mut self, who: impl Into<Who>, key: &str, consistency: Consistency) -> ReadAnswer {
        let id = self.resolve(who);
        if consistency == Consistency::Local {
            return ReadAnswer::Value(self.host(id).kv.get(key).ok().map(str::to_string));
        }
        let request = self.harness_request(Request::Read(key.to_string()));
        self.step_node(id, Event::Read { id: request });
        let answered = |cluster: &Cluster| {
            matches!(
                cluster.answers.get(&request),
                Some(Answer::ReadReady { .. } | Answer::Rejected(_) | Answer::Dropped)
            )
        };
        let _ = self.run_until("read answered", answered, 5_000);
        match self.answers.get(&request) {
            Some(Answer::ReadReady { .. }) => ReadAnswer::Value(self.read_values.get(&request).cloned().flatten()),
            Some(Answer::Rejected(rejection)) => ReadAnswer::Rejected(rejection.clone()),
            Some(Answer::Dropped) => ReadAnswer::Dropped,
            _ => ReadAnswer::TimedOut,
        }
    }

    /// Asks the leader to hand leadership to `to`.
    pub fn transfer_leadership(&mut self, to: impl Into<Who>) {
        let to = self.resolve(to);
        let leader = self.resolve(Who::Leader);
        self.step_node(leader, Event::TransferLeadership { to });
    }

    fn harness_request(&mut self, request: Request) -> u64 {
        let id = self.next_request;
        self.next_request += 1;
        self.requests.insert(id, RequestInfo { owner: Owner::Harness, request });
        id
    }

    fn step_node(&mut self, id: NodeId, event: Event) {
        let host = self.host(id);
        assert!(host.is_up(), "{id} is crashed");
        assert!(!host.paused, "{id} is paused");
        let now = self.now_ms;
        let glyph = glyph(host);
        let mut line = self.trace.enabled().then(|| describe_event(&event) + " →");
        let effects = self.hosts[(id.0 - 1) as usize].step(now, event, line.as_mut());
        if let Some(line) = line {
            self.trace.line(format_args!("{now:>8} {id} {glyph} {line}"));
        }
        self.after_node_step(id, effects);
    }

    // ----- observation ----------------------------------------------------------------

    /// Coverage counters so far (client statistics included).
    pub fn counters(&self) -> Counters {
        let mut counters = self.counters.clone();
        if let Some(workload) = &self.workload {
            let stats = workload.stats;
            counters.add("client_timeouts", stats.timeouts);
            counters.add("client_retries", stats.retries);
            counters.add("ops_completed", stats.completed);
            counters.add("ops_unknown", stats.unknown);
        }
        counters
    }

    /// The client history (empty without clients).
    pub fn history(&self) -> &History {
        self.workload.as_ref().map_or(&self.no_history, |workload| workload.history())
    }

    /// Whether the cluster has converged: a leader that every running node
    /// follows, and every node applied up to the leader's commit index.
    pub fn converged(&self) -> bool {
        let Some(leader) = self.leader() else {
            return false;
        };
        let commit = self.host(leader).node.as_ref().map_or(LogIndex(0), Node::commit_index);
        self.hosts.iter().all(|host| match &host.node {
            Some(node) => {
                !host.paused
                    && node.leader() == Some(leader)
                    && node.commit_index() == commit
                    && host.kv.applied_index() == commit
            }
            None => false,
        })
    }

    // ----- the final check ------------------------------------------------------------

    /// Liveness phase: heals every fault (links, loss, crashes, pauses, disk
    /// stalls), stops the swarm and new client operations, then requires within
    /// `limit_ms` a leader followed by all, every node caught up, and every open
    /// client operation completed. Then all stores must be equal.
    pub fn check_liveness(&mut self, limit_ms: u64) -> Result<(), Failure> {
        self.swarm_active = false;
        self.heal_everything();
        if let Some(workload) = &mut self.workload {
            workload.drain();
        }
        let result = self.run_until(
            "converged: one leader followed by all, all caught up, no open client operation",
            |cluster| cluster.converged() && cluster.workload.as_ref().is_none_or(Workload::is_idle),
            limit_ms,
        );
        if let Err(mut failure) = result {
            failure.detail += &self.pending_report();
            return Err(failure);
        }
        let reference = self.hosts[0].kv.sorted_pairs();
        for host in &self.hosts[1..] {
            if host.kv.sorted_pairs() != reference {
                return Err(self.failure(
                    FailureKind::Safety,
                    format!("stores differ after convergence: {} vs {}", self.hosts[0].id, host.id),
                ));
            }
        }
        Ok(())
    }

    fn pending_report(&self) -> String {
        let mut out = String::from("\npending:");
        out += &format!("\n  leader: {:?}", self.leader());
        for host in &self.hosts {
            match &host.node {
                Some(node) => {
                    out += &format!(
                        "\n  {} {} {} leader={:?} commit={} applied={} last={} paused={}",
                        host.id,
                        node.role(),
                        node.term(),
                        node.leader(),
                        node.commit_index(),
                        host.kv.applied_index(),
                        node.last_log_index(),
                        host.paused
                    )
                }
                None => out += &format!("\n  {} crashed", host.id),
            }
        }
        if let Some(workload) = &self.workload {
            for line in workload.pending() {
                out += "\n  ";
                out += &line;
            }
        }
        out
    }

    /// Every fault healed: links, loss/duplication/reordering, crashed nodes
    /// restarted, paused nodes resumed, disk stalls ended.
    pub fn heal_everything(&mut self) {
        self.apply_fault(FaultAction::Heal);
        let mut network = self.network.options().clone();
        network.loss = 0.0;
        network.duplicate = 0.0;
        network.reorder = 0.0;
        self.network.set_options(network);
        for id in self.ids() {
            if !self.host(id).is_up() {
                self.apply_fault(FaultAction::Restart(id));
            }
            if self.host(id).paused {
                self.apply_fault(FaultAction::Resume(id));
            }
            self.host_mut(id).disk.stalled_until_ms = 0;
        }
    }

    /// Checks the history with the configured linearizability checker.
    pub fn check_linearizability(&self) -> Result<(), Failure> {
        let Some(check) = self.options.linearizability else {
            return Ok(());
        };
        let history = self.history();
        check(history.operations()).map_err(|detail| self.failure(FailureKind::Linearizability, detail))
    }

    /// The end of a run without panicking: liveness within `liveness_ms`, then
    /// linearizability of the client history.
    pub fn finish(&mut self, liveness_ms: u64) -> Result<RunSummary, Failure> {
        self.check_liveness(liveness_ms)?;
        self.check_linearizability()?;
        self.trace.flush();
        Ok(self.summary())
    }

    /// The end of a test: [`Cluster::finish`] with a 30 s liveness bound, panicking
    /// with the failure kind, the seed and the replay line.
    pub fn check(&mut self) -> RunSummary {
        match self.finish(30_000) {
            Ok(summary) => summary,
            Err(failure) => {
                self.trace.flush();
                crate::explore::record_failure(&failure);
                panic!("{failure}")
            }
        }
    }

    /// Counters, events and time so far.
    pub fn summary(&self) -> RunSummary {
        let history = self.history();
        RunSummary {
            seed: self.options.seed,
            events: self.events,
            sim_ms: self.now_ms,
            trace_hash: self.trace.hash(),
            counters: self.counters(),
            ops_completed: history.completed(),
            ops_unknown: history.operations().len() - history.completed(),
        }
    }

    /// Writes the history as JSON lines to `path`.
    pub fn write_history(&self, path: &str) -> std::io::Result<()> {
        std::fs::write(path, self.history().to_json_lines())
    }

    fn failure(&self, kind: FailureKind, detail: String) -> Failure {
        let mut detail = detail;
        if let Some(path) = &self.trace_path {
            detail += &format!(" (trace: {path})");
        }
        Failure { kind, seed: self.options.seed, at_ms: self.now_ms, detail, replay: self.replay.clone() }
    }

    fn fail(&mut self, kind: FailureKind, detail: String) -> ! {
        self.trace.flush();
        let failure = self.failure(kind, detail);
        crate::explore::record_failure(&failure);
        panic!("{failure}")
    }

    // ----- the event loop ---------------------------------------------------------------

    fn step_one(&mut self) {
        let Some((at_ms, event)) = self.queue.pop() else {
            return;
        };
        assert!(at_ms >= self.now_ms, "time never goes backwards");
        if at_ms == self.now_ms {
            self.events_this_ms += 1;
            if self.events_this_ms > EVENTS_PER_MS_MAX {
                self.fail(
                    FailureKind::Liveness,
                    format!("event storm: over {EVENTS_PER_MS_MAX} events at one virtual ms"),
                );
            }
        } else {
            self.events_this_ms = 0;
        }
        self.now_ms = at_ms;
        self.events += 1;
        if let Some(node) = event.target() {
            let index = (node.0 - 1) as usize;
            let host = &self.hosts[index];
            if !host.is_up() {
                return; // The process is gone; so is what was sent to it.
            }
            if host.paused {
                let backlog = &mut self.backlog[index];
                if backlog.len() < self.options.paused_backlog_max {
                    backlog.push(event);
                } else {
                    self.counters.add("paused_messages_dropped", 1);
                }
                return;
            }
        }
        match event {
            SimEvent::Deliver { to, wire } => {
                let message = match wire {
                    Wire::Json(bytes) => serde_json::from_slice::<Message>(&bytes)
                        .unwrap_or_else(|error| self.fail(FailureKind::Safety, format!("JSON wire decode: {error}"))),
                    Wire::Binary(bytes) => raft_sm::wire::decode_message(&bytes)
                        .unwrap_or_else(|error| self.fail(FailureKind::Safety, format!("binary wire decode: {error}"))),
                    Wire::Plain(message) => *message,
                };
                self.step_node(to, Event::Message(message));
            }
            SimEvent::Timer { node, incarnation, kind, deadline_ms } => {
                let host = self.host(node);
                if host.incarnation == incarnation && host.timer_is_current(kind, deadline_ms) {
                    self.step_node(node, Event::Timer(kind));
                }
            }
            SimEvent::Fsync { node, incarnation, id } => {
                let host = self.host(node);
                if host.incarnation != incarnation {
                    return;
                }
                if host.disk.stalled_until_ms > self.now_ms {
                    let at = host.disk.stalled_until_ms;
                    self.queue.push(at, SimEvent::Fsync { node, incarnation, id });
                    return;
                }
                let now = self.now_ms;
                let glyph = glyph(host);
                let mut line = self.trace.enabled().then(|| format!("fsync {} →", id.0));
                let effects = self.hosts[(node.0 - 1) as usize].fsync_done(now, id, line.as_mut());
                if let Some(line) = line {
                    self.trace.line(format_args!("{now:>8} {node} {glyph} {line}"));
                }
                self.after_node_step(node, effects);
            }
            SimEvent::Request { node, request } => {
                let Some(info) = self.requests.get(&request) else {
                    return;
                };
                let event = match &info.request {
                    Request::Write(command) => Event::Propose { id: request, command: command.clone() },
                    Request::Read(_) if self.options.driver_bug_local_reads => {
                        let index = (node.0 - 1) as usize;
                        self.route_answer(index, request, Answer::ReadReady { read_index: LogIndex(0) });
                        return;
                    }
                    Request::Read(_) => Event::Read { id: request },
                };
                self.step_node(node, event);
            }
            SimEvent::Response { client, request, reply } => {
                if self.trace.enabled() {
                    self.trace.line(format_args!("{:>8} c{} reply #{request} {reply:?}", self.now_ms, client + 1));
                }
                let now = self.now_ms;
                let actions = self.workload.as_mut().expect("clients exist").on_reply(now, client, request, reply);
                self.client_actions(actions);
            }
            SimEvent::ClientWake { client, token } => {
                let now = self.now_ms;
                let actions = self.workload.as_mut().expect("clients exist").on_wake(now, client, token);
                self.client_actions(actions);
            }
            SimEvent::Fault(action) => self.apply_fault(action),
            SimEvent::SwarmTick => self.swarm_tick(),
        }
    }

    fn after_node_step(&mut self, id: NodeId, effects: Vec<Effect>) {
        let index = (id.0 - 1) as usize;
        for effect in effects {
            match effect {
                Effect::Send(message) => self.send(index, message),
                Effect::Timer { kind, deadline_ms } => {
                    let incarnation = self.hosts[index].incarnation;
                    self.queue.push(
                        deadline_ms.max(self.now_ms),
                        SimEvent::Timer { node: id, incarnation, kind, deadline_ms },
                    );
                }
                Effect::StartFsync(persist) => {
                    let latency = self.disk_rng.range(self.options.fsync_ms_min, self.options.fsync_ms_max);
                    let host = &self.hosts[index];
                    let at = (self.now_ms + latency).max(host.disk.stalled_until_ms);
                    let incarnation = host.incarnation;
                    self.queue.push(at, SimEvent::Fsync { node: id, incarnation, id: persist });
                }
                Effect::Answer { request, answer } => self.route_answer(index, request, answer),
                Effect::Appended { entries, prev_term } => {
                    let result = self.checker.on_append(id, &entries, prev_term);
                    self.check_safety(result);
                }
                Effect::Applied { entry, result } => {
                    if result.is_some_and(|r| r.duplicate) {
                        self.counters.add("duplicates_suppressed", 1);
                    }
                    self.counters.add("entries_applied", 1);
                    let term = self.hosts[index].node.as_ref().map_or(Term(0), Node::term);
                    let result = self.checker.on_apply(id, term, &entry);
                    self.check_safety(result);
                }
                Effect::SnapshotRestored { .. } => {}
                Effect::Note(note) => self.counters.note(&note),
                Effect::Violation(detail) => self.fail(FailureKind::Safety, detail),
            }
        }
        let result = self.checker.after_step(&self.hosts[index]);
        self.check_safety(result);
    }

    fn check_safety(&mut self, result: Result<(), Violation>) {
        if let Err(violation) = result {
            self.fail(FailureKind::Safety, violation.to_string());
        }
    }

    fn send(&mut self, from_index: usize, message: Message) {
        let result = self.checker.on_send(&self.hosts[from_index], &message);
        self.check_safety(result);
        let kind = message.body.kind();
        let to = message.to;
        let wire = match self.options.wire {
            WireFormat::Json => {
                let bytes = serde_json::to_vec(&message).expect("messages serialize");
                self.counters.message(kind, bytes.len());
                Wire::Json(std::rc::Rc::new(bytes))
            }
            WireFormat::Binary => {
                let bytes = raft_sm::wire::encode_message(&message);
                self.counters.message(kind, bytes.len());
                if self.options.wire_check {
                    match raft_sm::wire::decode_message(&bytes) {
                        Ok(decoded) if decoded == message => {}
                        other => self.fail(
                            FailureKind::Safety,
                            format!("binary wire codec does not round-trip {message:?}: {other:?}"),
                        ),
                    }
                }
                Wire::Binary(std::rc::Rc::new(bytes))
            }
            WireFormat::Plain => {
                self.counters.message(kind, approximate_size(&message));
                Wire::Plain(Box::new(message))
            }
        };
        let fate = self.network.send(self.now_ms, self.hosts[from_index].id, to);
        if fate.blocked {
            self.counters.add("messages_blocked", 1);
        }
        if fate.lost {
            self.counters.add("messages_lost", 1);
        }
        if fate.reordered {
            self.counters.add("messages_reordered", 1);
        }
        if fate.deliver_at_ms.len() > 1 {
            self.counters.add("messages_duplicated", 1);
        }
        for at in fate.deliver_at_ms {
            self.queue.push(at, SimEvent::Deliver { to, wire: wire.clone() });
        }
    }

    fn route_answer(&mut self, index: usize, request: u64, answer: Answer) {
        let Some(info) = self.requests.get(&request) else {
            return;
        };
        let read_value = match (&answer, &info.request) {
            (Answer::ReadReady { .. }, Request::Read(key)) => {
                Some(self.hosts[index].kv.get(key).ok().map(str::to_string))
            }
            _ => None,
        };
        let last = !matches!(answer, Answer::Accepted { .. });
        match info.owner.clone() {
            Owner::Harness => {
                if let Some(value) = read_value {
                    self.read_values.insert(request, value);
                }
                self.answers.insert(request, answer);
            }
            Owner::Client(client) => {
                let reply = match answer {
                    Answer::Accepted { .. } => return,
                    Answer::Written(result) => Reply::Written(result),
                    Answer::ReadReady { .. } => Reply::Read(read_value.flatten()),
                    Answer::Rejected(rejection) => Reply::Rejected(rejection),
                    Answer::Dropped => Reply::Dropped,
                };
                if last {
                    self.requests.remove(&request);
                }
                let workload = self.workload.as_mut().expect("clients exist");
                let at = self.now_ms + workload.latency_ms();
                self.queue.push(at, SimEvent::Response { client, request, reply });
            }
        }
    }

    fn client_actions(&mut self, actions: Vec<ClientAction>) {
        for action in actions {
            match action {
                ClientAction::Send { client, node, request } => {
                    let id = self.next_request;
                    self.next_request += 1;
                    if self.trace.enabled() {
                        self.trace.line(format_args!(
                            "{:>8} c{} send #{id} to {node} {request:?}",
                            self.now_ms,
                            client + 1
                        ));
                    }
                    self.requests.insert(id, RequestInfo { owner: Owner::Client(client), request });
                    let workload = self.workload.as_mut().expect("clients exist");
                    workload.sent(client, id);
                    let at = self.now_ms + workload.latency_ms();
                    self.queue.push(at, SimEvent::Request { node, request: id });
                }
                ClientAction::Wake { client, at_ms, token } => {
                    self.queue.push(at_ms, SimEvent::ClientWake { client, token });
                }
            }
        }
    }

    fn schedule_swarm_tick(&mut self) {
        let swarm = self.options.swarm.as_ref().expect("swarm on");
        let gap = self.fault_rng.range(swarm.fault_interval_ms_min, swarm.fault_interval_ms_max);
        self.queue.push(self.now_ms + gap, SimEvent::SwarmTick);
    }

    fn swarm_tick(&mut self) {
        if !self.swarm_active {
            return;
        }
        let view = SwarmView {
            nodes: self.ids(),
            crashed: self.hosts.iter().filter(|h| !h.is_up()).map(|h| h.id).collect(),
            paused: self.hosts.iter().filter(|h| h.paused).map(|h| h.id).collect(),
            partitioned: self.network.links_down() > 0,
            leader: self.leader(),
        };
        let swarm = self.options.swarm.clone().expect("swarm on");
        if let Some(action) = next_swarm_fault(&mut self.fault_rng, &swarm, &view) {
            self.apply_fault(action);
        }
        self.schedule_swarm_tick();
    }
}

fn glyph(host: &NodeHost) -> char {
    if host.paused {
        return 'z';
    }
    match host.role() {
        None => '!',
        Some(Role::Leader) => 'L',
        Some(Role::Candidate) => 'C',
        Some(Role::PreCandidate) => 'P',
        Some(Role::Follower) => 'F',
    }
}

fn approximate_size(message: &Message) -> usize {
    use raft_sm::Body;
    32 + match &message.body {
        Body::AppendEntries { entries, .. } => entries.iter().map(Entry::size_bytes).sum(),
        Body::InstallSnapshot { data, .. } => data.len(),
        _ => 0,
    }
}
