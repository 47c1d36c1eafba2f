//! The harness API proper: nodes by role, faults, requests, observation.

use super::*;

impl Cluster {
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
            .filter_map(|host| host.node())
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

    pub(super) fn host(&self, id: NodeId) -> &NodeHost {
        &self.hosts[(id.0 - 1) as usize]
    }

    pub(super) fn host_mut(&mut self, id: NodeId) -> &mut NodeHost {
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

    /// Cuts a node off from everyone (as [`Cluster::isolate`]) and marks it
    /// disconnected until [`Cluster::reconnect`].
    pub fn disconnect(&mut self, who: impl Into<Who>) {
        let id = self.resolve(who);
        self.disconnected.insert(id);
        self.isolate(id);
    }

    /// Relinks a disconnected node with every peer that is itself connected
    /// (not disconnected), both directions; links to disconnected peers stay
    /// down (the semantics of the MIT 6.824 Raft harness's `connect(i)`).
    pub fn reconnect(&mut self, who: impl Into<Who>) {
        let id = self.resolve(who);
        self.disconnected.remove(&id);
        let connected: Vec<NodeId> =
            self.ids().into_iter().filter(|peer| *peer != id && !self.disconnected.contains(peer)).collect();
        for peer in connected {
            self.set_link(id, peer, true);
            self.set_link(peer, id, true);
        }
    }

    /// Makes `who` take a snapshot of its store now (at its applied index),
    /// whatever the threshold; it is written in the background as any other.
    pub fn snapshot_now(&mut self, who: impl Into<Who>) {
        let id = self.resolve(who);
        self.step_node(id, Event::SnapshotNow);
    }

    /// Drops every message matching `filter` when it is sent (e.g. by kind:
    /// `|m| matches!(m.body, Body::RequestVoteResponse(_))`), until cleared with `None`.
    pub fn drop_messages(&mut self, filter: Option<fn(&Message) -> bool>) {
        self.drop_filter = filter;
    }

    /// Messages `who` has sent so far (every kind, every incarnation).
    pub fn messages_sent(&self, who: impl Into<Who>) -> u64 {
        let id = self.resolve(who);
        self.sent_by[(id.0 - 1) as usize]
    }

    /// Messages sent by all nodes so far.
    pub fn messages_sent_total(&self) -> u64 {
        self.sent_by.iter().sum()
    }

    /// Restores every link of a node, both directions.
    pub fn connect(&mut self, who: impl Into<Who>) {
        let id = self.resolve(who);
        self.disconnected.remove(&id);
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

    /// Every link up again (loss and latency settings unchanged); no node is
    /// disconnected any more.
    pub fn heal(&mut self) {
        self.disconnected.clear();
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

    /// Holds the background writes of the snapshots `who` takes itself (they
    /// stay pending, however long, as if its snapshot thread were stuck), or
    /// releases them; a write whose delay passed meanwhile completes now.
    /// Snapshots installed from the leader are not held.
    pub fn hold_snapshot_writes(&mut self, who: impl Into<Who>, held: bool) {
        let id = self.resolve(who);
        let host = self.host_mut(id);
        if let Some(ticket) = host.disk.hold_snapshot_writes(held) {
            let incarnation = host.incarnation;
            self.queue.push(self.now_ms, SimEvent::SnapshotWritten { node: id, incarnation, ticket });
        }
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
        if let Some(timeline) = &mut self.timeline {
            let nodes = match &action {
                FaultAction::Partition(_) | FaultAction::Heal | FaultAction::Network(_) => Vec::new(),
                FaultAction::Isolate(id)
                | FaultAction::Connect(id)
                | FaultAction::Restrict(id, _)
                | FaultAction::Crash(id)
                | FaultAction::Restart(id)
                | FaultAction::Pause(id)
                | FaultAction::Resume(id)
                | FaultAction::TransferLeadership(id) => vec![*id],
                FaultAction::Link { from, to, .. } => vec![*from, *to],
                FaultAction::DiskStall { node, .. } => vec![*node],
            };
            let what = match &action {
                FaultAction::Network(_) => "Network(new rates)".to_string(),
                other => format!("{other:?}"),
            };
            timeline.fault(self.now_ms, nodes, what);
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
                self.checker.log.on_crash(id, self.hosts[(id.0 - 1) as usize].disk.durable());
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
                self.sample_timeline((id.0 - 1) as usize);
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

    pub(super) fn boot(&mut self, id: NodeId) {
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
    /// Proposes `command` at `who`; returns the request id (for [`Cluster::answer`])
    /// and the immediate answer.
    pub fn propose_tracked(&mut self, who: impl Into<Who>, command: &Command) -> (u64, ProposalOutcome) {
        let request = self.next_request;
        let outcome = self.propose(who, command);
        (request, outcome)
    }

    /// The latest answer a harness request got (`Accepted` until its final one).
    pub fn answer(&self, request: u64) -> Option<Answer> {
        self.answers.get(&request).cloned()
    }

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
            return ReadAnswer::Value(self.host(id).kv().get(key).ok().map(str::to_string));
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

    pub(super) fn harness_request(&mut self, request: Request) -> u64 {
        let id = self.next_request;
        self.next_request += 1;
        self.requests.insert(id, RequestInfo { owner: Owner::Harness, request });
        id
    }

    pub(super) fn step_node(&mut self, id: NodeId, event: Event) {
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

    /// The recorded timeline (with `SimOptions::record_timeline`).
    pub fn timeline(&self) -> Option<&crate::timeline::Timeline> {
        self.timeline.as_ref()
    }

    /// Writes the HTML view of the run so far (needs `SimOptions::record_timeline`):
    /// lanes, messages, faults, client operations, and the operations a
    /// linearizability violation names, highlighted.
    pub fn write_html(&self, path: &str, title: &str) -> std::io::Result<()> {
        let empty = crate::timeline::Timeline::default();
        let timeline = self.timeline.as_ref().unwrap_or(&empty);
        let violation = crate::linearizability::check(self.history().operations()).err();
        let html = crate::html::render(title, self.now_ms, timeline, self.history(), violation.as_ref());
        std::fs::write(path, html)
    }

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
        for host in &self.hosts {
            let stats = host.disk.snapshot_stats();
            let named = [
                ("snapshot_writes", stats.written),
                ("snapshot_writes_superseded", stats.superseded),
                ("snapshot_writes_lost", stats.lost),
                ("compactions_deferred", stats.compactions_deferred),
                ("compactions_lost", stats.compactions_lost),
            ];
            for (name, value) in named.into_iter().filter(|&(_, value)| value > 0) {
                counters.add(name, value);
            }
        }
        counters
    }

    /// Every core `Note` so far: (virtual ms, node, note), in order. Scenarios use
    /// it to prove a path was taken, e.g. a CheckQuorum step-down.
    pub fn notes(&self) -> &[(u64, NodeId, Note)] {
        &self.notes
    }

    /// Whether `node` (any node if `None`) emitted a note matching `predicate`.
    pub fn saw_note(&self, node: Option<NodeId>, predicate: impl Fn(&Note) -> bool) -> bool {
        self.notes.iter().any(|(_, id, note)| node.is_none_or(|node| node == *id) && predicate(note))
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
        let commit = self.host(leader).node().map_or(LogIndex(0), Node::commit_index);
        if self.options.initial_voters.is_some() && !self.membership_settled() {
            return false; // A change in flight (a removed leader hands over once it commits).
        }
        let members = self.liveness_nodes();
        self.hosts.iter().filter(|host| members.contains(&host.id)).all(|host| match host.node() {
            Some(node) => {
                !host.paused
                    && node.leader() == Some(leader)
                    && node.commit_index() == commit
                    && host.kv().applied_index() == commit
            }
            None => false,
        })
    }
}
