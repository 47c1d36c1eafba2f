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
use raft_sm::kv::{Command, KeyRange, RangeRequest};
use raft_sm::{Config, Event, LogIndex, Message, Node, NodeId, Note, PersistId, ProposalOutcome, Role, Term};

mod api;
mod barrier_episode;
mod episodes;
mod goals;
mod liveness;
mod membership;
mod timer_watch;
mod view;

pub use episodes::EpisodeOptions;
pub use goals::GOALS;
pub use membership::ChurnOptions;
pub use view::{Consistency, NodeView, ReadAnswer, RunSummary, Who, WriteAnswer};

use std::collections::BTreeMap;

/// Something scheduled in virtual time.
#[derive(Clone, Debug)]
enum SimEvent {
    Deliver {
        from: NodeId,
        to: NodeId,
        wire: Wire,
    },
    /// A node's next deadline (as it was when scheduled): fire its due timers.
    Wake {
        node: NodeId,
        incarnation: u64,
        deadline_ms: u64,
    },
    Fsync {
        node: NodeId,
        incarnation: u64,
        id: PersistId,
    },
    SnapshotWritten {
        node: NodeId,
        incarnation: u64,
        ticket: u64,
    },
    Request {
        node: NodeId,
        request: u64,
    },
    Response {
        client: usize,
        request: u64,
        reply: Reply,
    },
    ClientWake {
        client: usize,
        token: u64,
    },
    /// Boxed: faults are rare, and the queue moves every event on each push and pop.
    Fault(Box<FaultAction>),
    SwarmTick,
    /// A membership churn change (`membership.rs`); a `chained` tick schedules the next.
    MembershipTick {
        chained: bool,
    },
    /// A given change asked of a given node (`barrier_episode.rs`).
    MembershipChange {
        at: NodeId,
        change: raft_sm::MembershipChange,
    },
    /// A watcher reads its next batch.
    WatchPoll {
        watcher: usize,
    },
    LeaseWake {
        holder: usize,
        token: u64,
    },
    LeaseResponse {
        holder: usize,
        request: u64,
        reply: Result<Result<(), raft_sm::kv::KvError>, Option<raft_sm::Rejection>>,
    },
}

impl SimEvent {
    fn target(&self) -> Option<NodeId> {
        match self {
            SimEvent::Deliver { to, .. } => Some(*to),
            SimEvent::Wake { node, .. }
            | SimEvent::Fsync { node, .. }
            | SimEvent::SnapshotWritten { node, .. }
            | SimEvent::Request { node, .. } => Some(*node),
            _ => None,
        }
    }
}

/// A message on the wire: serde_json bytes, binary wire bytes, or the value itself.
/// Each delivery owns its bytes (a duplicate copies them): most messages are
/// delivered once, so this saves a shared allocation per message.
#[derive(Clone, Debug)]
enum Wire {
    Json(Vec<u8>),
    Binary(Vec<u8>),
    Plain(Box<Message>),
}

#[derive(Clone, Debug)]
enum Owner {
    Client(usize),
    Harness,
    Lease(usize),
}

#[derive(Clone, Debug)]
struct RequestInfo {
    owner: Owner,
    request: Request,
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
    /// Background snapshot write times (a stream of its own, so that they do not
    /// shift the fsync latencies and crash damage drawn from `disk_rng`).
    snapshot_rng: SimRng,
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
    notes: Vec<(u64, NodeId, Note)>,
    /// What the run looked like over time, if recorded.
    timeline: Option<crate::timeline::Timeline>,
    /// Messages each node has sent (by node index).
    sent_by: Vec<u64>,
    /// Nodes cut off with `disconnect` and not yet `reconnect`ed.
    disconnected: std::collections::BTreeSet<NodeId>,
    /// Messages matching this are dropped when sent (`Cluster::drop_messages`).
    drop_filter: Option<fn(&Message) -> bool>,
    /// Choices of the episodes (a stream of its own, so runs without episodes draw as before).
    episode_rng: SimRng,
    figure8: episodes::Figure8,
    hold: episodes::Hold,
    /// The election-timer rule, watched during hold episodes.
    timer_watch: Option<timer_watch::TimerWatch>,
    /// Faults the swarm and the episodes generated so far.
    faults_generated: u64,
    /// Choices of the membership churn (a stream of its own).
    churn_rng: SimRng,
    membership_watch: membership::MembershipWatch,
    /// Watchers and the watch checker (`SimOptions::watchers`).
    watchers: Option<crate::checker::watch::Watchers>,
    /// Lease holders and the lease checker (`SimOptions::lease_holders`).
    leases: Option<crate::checker::lease::LeaseHolders>,
}

/// Most events one virtual millisecond may hold before the run is declared an
/// event storm (a livelock of zero-latency messages would otherwise spin forever).
const EVENTS_PER_MS_MAX: u64 = 1_000_000;

impl Cluster {
    /// Builds and starts the cluster (nodes booted, clients and swarm scheduled).
    /// Prints the seed and every derived option first when `options.verbose`.
    pub fn new(options: SimOptions) -> Cluster {
        assert!(options.nodes >= 1, "a cluster has at least one node");
        assert!(
            options.mutant.is_none() || cfg!(feature = "mutants"),
            "mutant {} needs the simulator built with `--features mutants`",
            options.mutant.map_or("", raft_sm::Mutant::name)
        );
        let seed = options.seed;
        let replay = options.replay.clone().unwrap_or_else(|| default_replay(seed));
        if options.verbose {
            println!("{options}");
            println!("replay: {replay}");
        }
        let ids: Vec<NodeId> = (1..=options.nodes as u64).map(NodeId).collect();
        // With membership in play, the first `initial_voters` bootstrap and the rest join empty.
        let bootstrap: Vec<NodeId> = ids[..options.initial_voters.unwrap_or(ids.len()).min(ids.len())].to_vec();
        let hosts = ids
            .iter()
            .map(|&id| {
                let voters = if bootstrap.contains(&id) { bootstrap.clone() } else { Vec::new() };
                let mut config = Config::new(id, voters);
                config.election_timeout_ms_min = options.election_timeout_ms_min;
                config.election_timeout_ms_max = options.election_timeout_ms_max;
                config.heartbeat_interval_ms = options.heartbeat_interval_ms;
                config.snapshot_threshold_entries = options.snapshot_threshold_entries;
                config.snapshot_chunk_bytes_max = options.snapshot_chunk_bytes_max;
                config.append_entries_max = options.append_entries_max;
                config.inflight_appends_max = options.inflight_appends_max;
                config.apply_entries_max = options.apply_entries_max;
                config.pending_proposals_max = options.pending_proposals_max;
                config.pending_reads_max = options.pending_reads_max;
                config.pre_vote = options.pre_vote;
                config.check_quorum = options.check_quorum;
                #[cfg(feature = "mutants")]
                {
                    config.mutant = options.mutant;
                }
                config.validate().unwrap_or_else(|error| panic!("node configuration: {error}"));
                let mut host = NodeHost::new(config);
                host.ack_before_fsync =
                    options.driver_bug_ack_before_fsync || options.mutant == Some(raft_sm::Mutant::AckBeforeFsync);
                host.snapshot_persisted_early = options.driver_bug_snapshot_persisted_early;
                // Only the watchers and lease holders read apply results.
                host.keep_apply_results = options.watchers > 0 || options.lease_holders > 0;
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
        let watchers = (options.watchers > 0)
            .then(|| crate::checker::watch::Watchers::new(options.watchers, &ids, SimRng::derive(seed, "watchers")));
        let leases = (options.lease_holders > 0).then(|| {
            crate::checker::lease::LeaseHolders::new(options.lease_holders, ids.clone(), SimRng::derive(seed, "leases"))
        });
        let mut cluster = Cluster {
            watchers,
            leases,
            network: Network::new(ids.clone(), options.network.clone(), SimRng::derive(seed, "network")),
            disk_rng: SimRng::derive(seed, "disk"),
            snapshot_rng: SimRng::derive(seed, "snapshot-writes"),
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
            notes: Vec::new(),
            timeline: options.record_timeline.then(|| crate::timeline::Timeline::new(&ids)),
            sent_by: vec![0; ids.len()],
            disconnected: std::collections::BTreeSet::new(),
            drop_filter: None,
            episode_rng: SimRng::derive(seed, "episodes"),
            figure8: episodes::Figure8::Idle,
            hold: episodes::Hold::Idle,
            timer_watch: None,
            faults_generated: 0,
            churn_rng: SimRng::derive(seed, "membership-churn"),
            membership_watch: membership::MembershipWatch::default(),
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
            cluster.schedule_churn_tick();
        }
        cluster.start_kv_v2_actors();
        cluster
    }

    /// First polls of the watchers and first wakes of the lease holders.
    fn start_kv_v2_actors(&mut self) {
        if let Some(watchers) = &mut self.watchers {
            for watcher in 0..watchers.len() {
                let at = watchers.poll_gap_ms();
                self.queue.push(at, SimEvent::WatchPoll { watcher });
            }
        }
        if let Some(leases) = &mut self.leases {
            let actions = leases.start(0);
            self.lease_actions(actions);
        }
    }

    fn lease_actions(&mut self, actions: Vec<crate::checker::lease::LeaseAction>) {
        use crate::checker::lease::LeaseAction;
        for action in actions {
            match action {
                LeaseAction::Send { holder, node, command } => {
                    let id = self.next_request;
                    self.next_request += 1;
                    let request = Request::Write(command);
                    self.requests.insert(id, RequestInfo { owner: Owner::Lease(holder), request });
                    self.leases.as_mut().expect("holders exist").sent(holder, id);
                    let at = self.now_ms + 1;
                    self.queue.push(at, SimEvent::Request { node, request: id });
                }
                LeaseAction::Wake { holder, at_ms, token } => {
                    self.queue.push(at_ms, SimEvent::LeaseWake { holder, token });
                }
            }
        }
    }

    /// The watchers' and lease holders' counts, for the run's counters.
    pub fn kv_v2_stats(&self) -> (crate::checker::watch::WatchStats, crate::checker::lease::LeaseStats) {
        (
            self.watchers.as_ref().map(|w| w.stats).unwrap_or_default(),
            self.leases.as_ref().map(|l| l.stats).unwrap_or_default(),
        )
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
        self.queue.push(at_ms, SimEvent::Fault(Box::new(action)));
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
                    FailureKind::Budget,
                    format!("event storm: over {EVENTS_PER_MS_MAX} events at one virtual ms"),
                );
            }
        } else {
            self.events_this_ms = 0;
        }
        self.now_ms = at_ms;
        self.events += 1;
        self.check_budgets();
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
            SimEvent::Deliver { from, to, wire } => {
                if self.options.drop_in_flight_on_disconnect && !self.network.is_connected(from, to) {
                    self.counters.add("messages_dropped_in_flight", 1);
                    return;
                }
                let message = match wire {
                    Wire::Json(bytes) => serde_json::from_slice::<Message>(&bytes)
                        .unwrap_or_else(|error| self.fail(FailureKind::Safety, format!("JSON wire decode: {error}"))),
                    Wire::Binary(bytes) => raft_sm::wire::decode_message(&bytes)
                        .unwrap_or_else(|error| self.fail(FailureKind::Safety, format!("binary wire decode: {error}"))),
                    Wire::Plain(message) => *message,
                };
                self.goals_on_deliver(to, &message);
                self.step_node(to, Event::Message(message));
            }
            SimEvent::Wake { node, incarnation, deadline_ms } => {
                let host = self.host(node);
                if host.incarnation == incarnation && host.wake_is_current(deadline_ms) {
                    let now = self.now_ms;
                    let glyph = glyph(host);
                    let mut line = self.trace.enabled().then(|| "timers →".to_string());
                    let effects = self.hosts[(node.0 - 1) as usize].wake(now, line.as_mut());
                    if let Some(line) = line {
                        self.trace.line(format_args!("{now:>8} {node} {glyph} {line}"));
                    }
                    self.after_node_step(node, effects);
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
            SimEvent::SnapshotWritten { node, incarnation, ticket } => self.snapshot_written(node, incarnation, ticket),
            SimEvent::Request { node, request } => {
                let Some(info) = self.requests.get(&request) else {
                    return;
                };
                if let Some(leader) = self.outside_membership(node) {
                    // Clients know the member list, as a real client's would be
                    // updated: a node removed from the cluster is not asked.
                    let index = (node.0 - 1) as usize;
                    let rejection = raft_sm::Rejection::NotLeader { leader: Some(leader) };
                    self.route_answer(index, request, Answer::Rejected(rejection));
                    return;
                }
                let event = match &info.request {
                    Request::Write(command) => Event::Propose { id: request, command: command.clone() },
                    Request::Read(_) | Request::Range(_) if self.options.driver_bug_local_reads => {
                        let index = (node.0 - 1) as usize;
                        self.route_answer(index, request, Answer::ReadReady { read_index: LogIndex(0) });
                        return;
                    }
                    Request::Read(_) | Request::Range(_) => Event::Read { id: request },
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
            SimEvent::Fault(action) => self.apply_fault(*action),
            SimEvent::SwarmTick => self.swarm_tick(),
            SimEvent::MembershipTick { chained } => self.churn_tick(chained),
            SimEvent::MembershipChange { at, change } => self.barrier_episode_change(at, change),
            SimEvent::WatchPoll { watcher } => {
                let ids = self.ids();
                let watchers = self.watchers.as_mut().expect("watchers exist");
                let result = watchers.poll(watcher, &self.hosts, &ids);
                let at = self.now_ms + watchers.poll_gap_ms();
                self.queue.push(at, SimEvent::WatchPoll { watcher });
                self.check_safety(result);
            }
            SimEvent::LeaseWake { holder, token } => {
                let now = self.now_ms;
                let actions = self.leases.as_mut().expect("holders exist").on_wake(now, holder, token);
                self.lease_actions(actions);
            }
            SimEvent::LeaseResponse { holder, request, reply } => {
                let now = self.now_ms;
                let result = self.leases.as_mut().expect("holders exist").on_reply(now, holder, request, reply);
                match result {
                    Ok(actions) => self.lease_actions(actions),
                    Err(violation) => self.check_safety(Err(violation)),
                }
            }
        }
        if self.episode_running() {
            self.poll_episode();
        }
    }

    /// Applies a fault the swarm or an episode generated, unless
    /// `SimOptions::keep_faults` leaves it out (shrinking): faults are numbered
    /// from 1 in the order they are generated, and every random choice is made
    /// as if all were applied, so a run keeping all of them is the original.
    pub(super) fn generated_fault(&mut self, action: FaultAction) {
        self.faults_generated += 1;
        crate::explore::note_faults_generated(self.faults_generated);
        if self.options.keep_faults.as_ref().is_some_and(|keep| !keep.contains(&self.faults_generated)) {
            self.counters.add("faults_left_out", 1);
            return;
        }
        if let FaultAction::Crash(id) = action {
            self.goals_on_crash(id);
        }
        self.apply_fault(action);
    }

    /// Ends the run with a [`FailureKind::Budget`] failure once it has used up
    /// its events, its virtual time or its queue (the memory budget).
    fn check_budgets(&mut self) {
        let options = &self.options;
        let exceeded = if self.events > options.budget_events {
            Some(format!("event budget exceeded: over {} events", options.budget_events))
        } else if self.now_ms > options.budget_sim_ms {
            Some(format!("simulated-time budget exceeded: past {} ms", options.budget_sim_ms))
        } else if self.queue.len() > options.budget_queued {
            Some(format!(
                "memory budget exceeded: over {} events queued (messages in flight, timers, fsyncs)",
                options.budget_queued
            ))
        } else {
            None
        };
        if let Some(detail) = exceeded {
            self.fail(FailureKind::Budget, detail);
        }
    }

    fn after_node_step(&mut self, id: NodeId, mut effects: Vec<Effect>) {
        let index = (id.0 - 1) as usize;
        self.watch_timers(index, &effects);
        self.goals_after_step(index, &effects);
        self.checker.step = crate::checker::Step { at_ms: self.now_ms, event: self.events };
        // The last configuration entry this step appended (for the membership check).
        let mut membership_appended = None;
        for effect in effects.drain(..) {
            match effect {
                Effect::Send(message) => self.send(index, message),
                Effect::StartFsync(persist) => {
                    let latency = self.disk_rng.range(self.options.fsync_ms_min, self.options.fsync_ms_max);
                    let host = &self.hosts[index];
                    let at = (self.now_ms + latency).max(host.disk.stalled_until_ms);
                    let incarnation = host.incarnation;
                    self.queue.push(at, SimEvent::Fsync { node: id, incarnation, id: persist });
                }
                Effect::StartSnapshotWrite(ticket) => self.schedule_snapshot_write(id, ticket),
                Effect::Answer { request, answer } => self.route_answer(index, request, answer),
                Effect::Appended { entries, prev_term, membership } => {
                    let result = self.checker.on_append(id, &entries, prev_term);
                    self.check_safety(result);
                    if membership.is_some() {
                        membership_appended = membership;
                    }
                }
                Effect::Applied { entry, duplicate, result } => {
                    if duplicate {
                        self.counters.add("duplicates_suppressed", 1);
                    }
                    self.counters.add("entries_applied", 1);
                    let term = self.hosts[index].node().map_or(Term(0), Node::term);
                    let checked = self.checker.on_apply(id, term, entry);
                    self.check_safety(checked);
                    // The entry itself is the node's record of what it applied there
                    // (a different entry there was a violation before this effect).
                    let applied = &self.hosts[index].applied[&entry.index];
                    if matches!(applied.payload, raft_sm::Payload::Membership(_)) {
                        let membership = applied.clone();
                        self.membership_applied(&membership);
                    }
                    if let Some(watchers) = &mut self.watchers {
                        let checked = watchers.on_apply(id, entry.index, &result);
                        self.check_safety(checked);
                    }
                    if let Some(leases) = &mut self.leases {
                        let checked = leases.on_apply(self.now_ms, &self.hosts[index].applied[&entry.index], &result);
                        self.check_safety(checked);
                    }
                }
                Effect::StoreImage { index: at, digest } => {
                    let result = self.checker.apply.observe_store_image(id, at, digest);
                    self.check_safety(result);
                }
                Effect::RecoveryRepair => self.counters.add("recovery_repairs", 1),
                Effect::Note(note) => {
                    self.membership_note(id, &note);
                    self.counters.note(&note);
                    self.notes.push((self.now_ms, id, note));
                }
                Effect::Violation(detail) => self.fail(FailureKind::Safety, detail),
            }
        }
        self.hosts[index].recycle_effects(effects);
        self.check_membership(index, membership_appended.as_ref());
        self.sample_timeline(index);
        if let Some(deadline_ms) = self.hosts[index].take_new_deadline() {
            let incarnation = self.hosts[index].incarnation;
            self.queue.push(deadline_ms.max(self.now_ms), SimEvent::Wake { node: id, incarnation, deadline_ms });
        }
        let result = self.checker.after_step(&self.hosts[index]);
        self.check_safety(result);
    }

    /// Records node `index`'s state in the timeline (if one is recorded).
    pub(super) fn sample_timeline(&mut self, index: usize) {
        let Some(timeline) = &mut self.timeline else {
            return;
        };
        let host = &self.hosts[index];
        let state =
            host.node().map(|node| (node.role(), node.term().0, node.commit_index().0, host.kv().applied_index().0));
        timeline.sample(self.now_ms, host.id, state);
    }

    /// A background snapshot write of `node` finished its delay (unless the disk
    /// is stalled: then it finishes when the stall ends, like an fsync).
    fn snapshot_written(&mut self, node: NodeId, incarnation: u64, ticket: u64) {
        let host = self.host(node);
        if host.incarnation != incarnation {
            return;
        }
        if host.disk.stalled_until_ms > self.now_ms {
            let at = host.disk.stalled_until_ms;
            self.queue.push(at, SimEvent::SnapshotWritten { node, incarnation, ticket });
            return;
        }
        if self.trace.enabled() {
            let glyph = glyph(host);
            self.trace.line(format_args!("{:>8} {node} {glyph} snapshot-write {ticket} done", self.now_ms));
        }
        let now = self.now_ms;
        let effects = self.hosts[(node.0 - 1) as usize].snapshot_written(now, ticket, None);
        self.after_node_step(node, effects);
    }

    /// Schedules the completion of background snapshot write `ticket` of `node`
    /// after a drawn delay: usually short, sometimes much longer (a slow disk, a
    /// large snapshot), so that crashes land while it is pending.
    fn schedule_snapshot_write(&mut self, node: NodeId, ticket: u64) {
        let options = &self.options;
        let delay_ms = if self.snapshot_rng.chance(options.snapshot_write_slow_chance) {
            self.snapshot_rng.range(options.snapshot_write_ms_max, options.snapshot_write_slow_ms_max)
        } else {
            self.snapshot_rng.range(options.snapshot_write_ms_min, options.snapshot_write_ms_max)
        };
        let host = self.host(node);
        let at = (self.now_ms + delay_ms).max(host.disk.stalled_until_ms);
        let incarnation = host.incarnation;
        self.queue.push(at, SimEvent::SnapshotWritten { node, incarnation, ticket });
    }

    fn check_safety(&mut self, result: Result<(), Violation>) {
        if let Err(violation) = result {
            self.fail(FailureKind::Safety, violation.to_string());
        }
    }

    fn send(&mut self, from_index: usize, message: Message) {
        let result = self.checker.on_send(&self.hosts[from_index], &message);
        self.check_safety(result);
        if self.drop_filter.is_some_and(|drops| drops(&message)) {
            self.counters.add("messages_filtered", 1);
            return;
        }
        let reply = matches!(
            message.body,
            raft_sm::Body::RequestVoteResponse(_)
                | raft_sm::Body::AppendEntriesResponse(_)
                | raft_sm::Body::InstallSnapshotResponse(_)
                | raft_sm::Body::ReadIndexResponse(_)
        );
        let kind = message.body.kind();
        let to = message.to;
        let echo = self.vote_echo(&message);
        let wire = match self.options.wire {
            WireFormat::Json => {
                let bytes = serde_json::to_vec(&message).expect("messages serialize");
                self.counters.message(kind, bytes.len());
                Wire::Json(bytes)
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
                Wire::Binary(bytes)
            }
            WireFormat::Plain => {
                self.counters.message(kind, approximate_size(&message));
                Wire::Plain(Box::new(message))
            }
        };
        let fate = self.network.send(self.now_ms, self.hosts[from_index].id, to, reply);
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
        let from = self.hosts[from_index].id;
        self.sent_by[from_index] += 1;
        let mut deliver_at_ms = fate.deliver_at_ms;
        if let Some((echo_at_ms, drop_on_time)) = echo.filter(|_| !fate.blocked) {
            if drop_on_time {
                deliver_at_ms.clear();
            }
            deliver_at_ms.push(echo_at_ms);
        }
        if let Some(timeline) = &mut self.timeline {
            timeline.message(self.now_ms, from, to, kind, deliver_at_ms.iter().min().copied());
        }
        // The last delivery takes the bytes; earlier ones (duplicates) copy them.
        let mut wire = Some(wire);
        let deliveries = deliver_at_ms.len();
        for (delivery, &at) in deliver_at_ms.iter().enumerate() {
            let wire = if delivery + 1 == deliveries { wire.take() } else { wire.clone() };
            self.queue.push(at, SimEvent::Deliver { from, to, wire: wire.expect("taken by the last delivery only") });
        }
    }

    fn route_answer(&mut self, index: usize, request: u64, answer: Answer) {
        let Some(info) = self.requests.get(&request) else {
            return;
        };
        let read_value = match (&answer, &info.request) {
            (Answer::ReadReady { .. }, Request::Read(key)) => {
                Some(self.hosts[index].kv().get(key).ok().map(str::to_string))
            }
            _ => None,
        };
        let range = match (&answer, &info.request) {
            (Answer::ReadReady { .. }, Request::Range(prefix)) => {
                let request = RangeRequest { range: KeyRange::prefix(prefix.clone()), ..RangeRequest::default() };
                let result = self.hosts[index].kv().range(&request).expect("a prefix range at the current revision");
                Some(result.kvs.into_iter().map(|kv| (kv.key, kv.value)).collect())
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
            Owner::Lease(holder) => {
                let reply = match answer {
                    Answer::Accepted { .. } | Answer::ReadReady { .. } => return,
                    Answer::Written(result) => Ok(result),
                    Answer::Rejected(rejection) => Err(Some(rejection)),
                    Answer::Dropped => Err(None),
                };
                self.requests.remove(&request);
                let at = self.now_ms + 1;
                self.queue.push(at, SimEvent::LeaseResponse { holder, request, reply });
            }
            Owner::Client(client) => {
                let reply = match answer {
                    Answer::Accepted { .. } => return,
                    Answer::Written(result) => Reply::Written(result),
                    Answer::ReadReady { .. } => match range {
                        Some(pairs) => Reply::Range(pairs),
                        None => Reply::Read(read_value.flatten()),
                    },
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
        if self.episode_running() || self.maybe_start_episode() {
            return self.schedule_swarm_tick();
        }
        let swarm = self.options.swarm.clone().expect("swarm on");
        if let Some(action) = next_swarm_fault(&mut self.fault_rng, &swarm, &view) {
            self.generated_fault(action);
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
    32 + message.body.payload_bytes()
}
