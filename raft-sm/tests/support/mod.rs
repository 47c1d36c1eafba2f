//! A tiny in-test message pump: N nodes on virtual time, a message pool the
//! test delivers, drops, duplicates or reorders, disks that lose unsynced
//! writes on a crash, and the Raft safety checks after every step.
#![allow(dead_code)]

use raft_sm::kv::{Command, KvStore};
use raft_sm::{
    Action, Body, Config, Entry, Event, HardState, LogIndex, MemorySnapshots, Message, NodeId, Note, Output, Payload,
    PersistId, ProposalAnswer, ProposalOutcome, ReadOutcome, RestoredState, Role, SnapshotMeta, SnapshotOrigin, Term,
    TimerKind, Write,
};
use std::collections::{BTreeMap, BTreeSet};

/// What is on a node's disk.
#[derive(Clone, Debug, Default)]
pub struct Disk {
    pub hard_state: HardState,
    pub snapshots: MemorySnapshots,
    pub entries: Vec<Entry>,
}

impl Disk {
    pub fn snapshot(&self) -> Option<&SnapshotMeta> {
        self.snapshots.durable().map(|(meta, _)| meta)
    }

    fn base_index(&self) -> u64 {
        self.snapshot().map_or(0, |s| s.last_index.0)
    }

    /// Executes one of the core's writes (raft-sm's one write type).
    fn write(&mut self, write: &Write) {
        match write {
            Write::HardState(hard_state) => self.hard_state = *hard_state,
            Write::Truncate { from } => self.entries.retain(|e| e.index < *from),
            Write::Append { entries } => {
                if let Some(first) = entries.first() {
                    let expected = self.entries.last().map_or(self.base_index() + 1, |e| e.index.0 + 1);
                    assert_eq!(first.index.0, expected, "disk append must follow the last entry");
                }
                self.entries.extend(entries.iter().cloned())
            }
            Write::SnapshotChunk { .. } | Write::SaveSnapshot { .. } => {
                assert!(self.snapshots.write(write));
            }
            Write::Compact { up_to } => self.entries.retain(|e| e.index > *up_to),
            Write::Reset { .. } => self.entries.clear(),
        }
    }

    pub fn restored(&self) -> RestoredState {
        RestoredState { hard_state: self.hard_state, snapshot: self.snapshot().cloned(), entries: self.entries.clone() }
    }
}

/// One node: raft-sm's host (the core and its key-value store) and its disk.
pub struct Host {
    pub host: raft_sm::Host<KvStore>,
    pub disk: Disk,
    /// Writes not yet durable, in order.
    pub unsynced: Vec<Write>,
    pub pending_syncs: Vec<PersistId>,
    /// Every entry applied, in order, since the last restart (plus restored snapshot index).
    pub applied: Vec<Entry>,
    /// The index `applied` continues from (a restored snapshot's last index).
    pub applied_base: LogIndex,
    pub up: bool,
    pub config: Config,
}

impl Host {
    pub fn node(&self) -> &raft_sm::Node {
        self.host.node()
    }

    pub fn kv(&self) -> &KvStore {
        self.host.state_machine()
    }

    fn boot(config: &Config, restored: RestoredState, disk: &Disk) -> raft_sm::Host<KvStore> {
        let image = disk.snapshots.durable().map(|(_, image)| image);
        let mut reader = image.as_ref().map(|image| image.as_slice());
        let reader = reader.as_mut().map(|reader| reader as &mut dyn std::io::Read);
        raft_sm::Host::new(config.clone(), restored, KvStore::default(), reader).expect("valid config and state")
    }
}

/// The pump's taps into a host: the trace, applied entries and restored snapshots.
struct Tap<'a> {
    id: NodeId,
    now_ms: u64,
    trace: &'a mut Vec<String>,
    applied: Vec<Entry>,
    restored: Option<LogIndex>,
}

impl raft_sm::Observer<Option<raft_sm::kv::ApplyResult>> for Tap<'_> {
    fn on_event(&mut self, event: &Event) {
        self.trace.push(format!("{:>6} {} <- {event:?}", self.now_ms, self.id));
    }
    fn on_action(&mut self, _node: &raft_sm::Node, action: &Action) {
        self.trace.push(format!("{:>6} {} -> {action:?}", self.now_ms, self.id));
    }
    fn on_apply(&mut self, entry: &Entry, _output: &Option<raft_sm::kv::ApplyResult>) {
        self.applied.push(entry.clone());
    }
    fn on_snapshot_restored(&mut self, snapshot: &SnapshotMeta) {
        self.applied.clear();
        self.restored = Some(snapshot.last_index);
    }
}

#[derive(Default)]
pub struct Checks {
    /// term -> leader elected in it.
    pub leaders: BTreeMap<Term, NodeId>,
    /// index -> the entry first applied there, and the applier's term then. The
    /// entry was committed in some term ≤ that term (a node learns of a commit
    /// only from a leader of its own term or earlier), so every leader of a
    /// later term must hold it (leader completeness, Raft §5.4.1).
    pub applied_at: BTreeMap<LogIndex, (Entry, Term)>,
}

pub struct Pump {
    pub hosts: BTreeMap<NodeId, Host>,
    pub now_ms: u64,
    pub pool: Vec<Message>,
    pub cut: BTreeSet<(NodeId, NodeId)>,
    pub notes: Vec<(NodeId, Note)>,
    pub proposals: BTreeMap<u64, ProposalOutcome>,
    /// Results of applied proposals, by proposal id.
    pub applied_answers: BTreeMap<u64, Result<(), raft_sm::kv::KvError>>,
    pub reads: BTreeMap<u64, ReadOutcome>,
    /// Persist syncs at once when they are issued.
    pub auto_persist: bool,
    pub checks: Checks,
    pub trace: Vec<String>,
    pub sent_count: BTreeMap<&'static str, usize>,
    /// Messages matching this are lost on the wire.
    pub drop_if: Option<fn(&Message) -> bool>,
    /// Every `Write::SnapshotChunk` a host handed out: (node, offset, bytes).
    pub snapshot_chunks: Vec<(NodeId, u64, usize)>,
}

pub fn ids(n: u64) -> Vec<NodeId> {
    (1..=n).map(NodeId).collect()
}

impl Pump {
    pub fn new(n: u64) -> Pump {
        Pump::with_config(n, |_| {})
    }

    pub fn with_config(n: u64, tweak: impl Fn(&mut Config)) -> Pump {
        Pump::from_restored((0..n).map(|_| RestoredState::default()).collect(), tweak)
    }

    /// A cluster whose nodes start from the given durable states (node i+1 from `states[i]`).
    pub fn from_restored(states: Vec<RestoredState>, tweak: impl Fn(&mut Config)) -> Pump {
        Pump::from_disks(states.into_iter().map(|state| (state, None)).collect(), tweak)
    }

    /// Nodes restarted from these durable states, each with its snapshot's image.
    pub fn from_disks(states: Vec<(RestoredState, Option<Vec<u8>>)>, tweak: impl Fn(&mut Config)) -> Pump {
        let n = states.len() as u64;
        let mut pump = Pump {
            hosts: BTreeMap::new(),
            now_ms: 0,
            pool: Vec::new(),
            cut: BTreeSet::new(),
            notes: Vec::new(),
            proposals: BTreeMap::new(),
            applied_answers: BTreeMap::new(),
            reads: BTreeMap::new(),
            auto_persist: true,
            checks: Checks::default(),
            trace: Vec::new(),
            sent_count: BTreeMap::new(),
            drop_if: None,
            snapshot_chunks: Vec::new(),
        };
        for (id, (restored, image)) in ids(n).into_iter().zip(states) {
            let mut config = Config::new(id, ids(n));
            config.rng_seed = 1000 + id.0;
            tweak(&mut config);
            let snapshots = match (&restored.snapshot, image) {
                (Some(meta), Some(image)) => MemorySnapshots::with_durable(meta.clone(), image),
                (None, None) => MemorySnapshots::default(),
                _ => panic!("a snapshot comes with its image"),
            };
            let applied_base = restored.snapshot.as_ref().map_or(LogIndex(0), |s| s.last_index);
            let disk = Disk { hard_state: restored.hard_state, snapshots, entries: restored.entries.clone() };
            let host = Host {
                host: Host::boot(&config, restored, &disk),
                disk,
                unsynced: Vec::new(),
                pending_syncs: Vec::new(),
                applied: Vec::new(),
                applied_base,
                up: true,
                config,
            };
            pump.hosts.insert(id, host);
        }
        for id in ids(n) {
            pump.drive(id, |host, tap| host.start_with(0, tap));
        }
        pump
    }

    pub fn host(&mut self, id: NodeId) -> &mut Host {
        self.hosts.get_mut(&id).expect("known node")
    }

    pub fn node(&self, id: NodeId) -> &raft_sm::Node {
        self.hosts[&id].node()
    }

    pub fn step(&mut self, id: NodeId, event: Event) {
        if !self.hosts[&id].up {
            return;
        }
        let now_ms = self.now_ms;
        self.drive(id, |host, tap| host.step_batch_with(now_ms, [event], tap));
    }

    /// Fires `id`'s due timers at the current time.
    pub fn fire_timers(&mut self, id: NodeId) {
        let now_ms = self.now_ms;
        self.drive(id, |host, tap| host.handle_timeout_with(now_ms, tap));
    }

    /// The earliest timer deadline of any up node.
    pub fn next_deadline(&self) -> Option<(u64, NodeId)> {
        self.hosts.iter().filter(|(_, h)| h.up).filter_map(|(id, h)| Some((h.host.next_deadline_ms()?, *id))).min()
    }

    /// Runs `drive` on `id`'s host with the pump's taps, then executes the
    /// host's outputs in order, as a driver would.
    fn drive(&mut self, id: NodeId, drive: impl FnOnce(&mut raft_sm::Host<KvStore>, &mut Tap<'_>)) {
        self.tapped(id, drive);
        let now_ms = self.now_ms;
        let mut sync_issued = false;
        while let Some(output) = self.host(id).host.poll_output() {
            match output {
                Output::TakeSnapshot => {
                    let taken = self.tapped(id, |host, tap| {
                        let mut image = Vec::new();
                        let meta = host.take_snapshot_with(now_ms, &mut image, tap).expect("memory");
                        meta.map(|meta| (meta, image))
                    });
                    if let Some((meta, image)) = taken {
                        self.host(id).disk.snapshots.stage(&meta, image);
                    }
                }
                Output::RestoreSnapshot(meta) => {
                    let (durable, image) = self.host(id).disk.snapshots.durable().expect("installed and durable");
                    assert_eq!(*durable, meta, "the durable snapshot is the one to restore");
                    self.tapped(id, |host, tap| {
                        host.restore_snapshot_with(now_ms, &mut image.as_slice(), tap).expect("the image restores")
                    });
                }
                Output::SendSnapshotChunk(chunk) => {
                    if let Some(message) = self.host(id).disk.snapshots.chunk(chunk) {
                        self.deliver_or_lose(message);
                    }
                }
                Output::Write(write) => {
                    if let Write::SnapshotChunk { offset, data, .. } = &write {
                        self.snapshot_chunks.push((id, *offset, data.len()));
                    }
                    self.host(id).unsynced.push(write)
                }
                Output::Sync(sync) => {
                    self.host(id).pending_syncs.push(sync);
                    sync_issued = true;
                }
                Output::Send(message) => self.deliver_or_lose(message),
                Output::Proposal { id: proposal, answer } => {
                    let outcome = match answer {
                        ProposalAnswer::Accepted { index, term } => ProposalOutcome::Accepted { index, term },
                        ProposalAnswer::Rejected(rejection) => ProposalOutcome::Rejected(rejection),
                        ProposalAnswer::Dropped => ProposalOutcome::Dropped,
                        ProposalAnswer::Applied { output, .. } => {
                            self.applied_answers.insert(proposal, output.map_or(Ok(()), |applied| applied.result));
                            continue;
                        }
                        _ => unreachable!("no other answers"),
                    };
                    self.proposals.insert(proposal, outcome);
                }
                Output::Read { id: read, outcome } => {
                    self.reads.insert(read, outcome);
                }
                Output::Note(note) => self.notes.push((id, note)),
                _ => unreachable!("no other outputs"),
            }
        }
        self.check_safety();
        if sync_issued && self.auto_persist {
            self.persist(id);
        }
    }

    /// Runs `drive` on `id`'s host with the pump's taps and records what it applied.
    fn tapped<R>(&mut self, id: NodeId, drive: impl FnOnce(&mut raft_sm::Host<KvStore>, &mut Tap<'_>) -> R) -> R {
        let now_ms = self.now_ms;
        let mut tap = Tap { id, now_ms, trace: &mut self.trace, applied: Vec::new(), restored: None };
        let host = self.hosts.get_mut(&id).expect("known node");
        let result = drive(&mut host.host, &mut tap);
        let (applied, restored) = (tap.applied, tap.restored);
        if let Some(index) = restored {
            let host = self.host(id);
            host.applied.clear();
            host.applied_base = index;
        }
        for entry in applied {
            self.record_apply(id, &entry);
            self.host(id).applied.push(entry);
        }
        result
    }

    /// Puts `message` in the pool unless the link is cut or the filter drops it.
    fn deliver_or_lose(&mut self, message: Message) {
        *self.sent_count.entry(message.body.kind()).or_default() += 1;
        // Exercise the wire format.
        let json = serde_json::to_string(&message).expect("serializes");
        let message: Message = serde_json::from_str(&json).expect("deserializes");
        let lost = self.drop_if.is_some_and(|drop_if| drop_if(&message));
        if !lost && !self.cut.contains(&(message.from, message.to)) {
            self.pool.push(message);
        }
    }

    /// Makes `id`'s unsynced writes durable and acknowledges the syncs, then
    /// reports the snapshots it took itself as durable.
    pub fn persist(&mut self, id: NodeId) {
        let host = self.host(id);
        let writes = std::mem::take(&mut host.unsynced);
        let mut taken = Vec::new();
        for write in &writes {
            host.disk.write(write);
            if let Write::SaveSnapshot { meta, origin: SnapshotOrigin::Taken } = write {
                taken.push(meta.last_index);
            }
        }
        let last_sync = host.pending_syncs.drain(..).next_back();
        if let Some(last) = last_sync {
            self.step(id, Event::Persisted { id: last });
        }
        for index in taken {
            self.step(id, Event::SnapshotPersisted { index });
        }
    }

    fn record_apply(&mut self, id: NodeId, entry: &Entry) {
        let host = &self.hosts[&id];
        let previous = host.applied.last().map_or(host.applied_base, |e| e.index);
        assert_eq!(previous.next(), entry.index, "{id} applies in order, each index once");
        match self.checks.applied_at.get(&entry.index) {
            Some((first, _)) => {
                assert_eq!(first, entry, "state-machine safety: {id} applies a different entry at {}", entry.index)
            }
            None => {
                let term = host.node().term();
                self.checks.applied_at.insert(entry.index, (entry.clone(), term));
            }
        }
    }

    /// Election safety, log matching and leader completeness, on every node that is up.
    pub fn check_safety(&mut self) {
        for (id, host) in &self.hosts {
            if host.node().role() == Role::Leader {
                let term = host.node().term();
                if let Some(other) = self.checks.leaders.insert(term, *id) {
                    assert_eq!(other, *id, "election safety: two leaders in {term}");
                }
                // Leader completeness: every entry applied anywhere is in this leader's log
                // (unless compacted away into its snapshot).
                for (index, (entry, known_in)) in &self.checks.applied_at {
                    if *index > host.node().log_base().0 && *known_in < term {
                        assert_eq!(
                            host.node().entry(*index),
                            Some(entry),
                            "leader completeness: leader {id} of {term} lacks committed {index}"
                        );
                    }
                }
            }
        }
        // Log matching: same index and term ⇒ same entry (and thus same prefix).
        let nodes: Vec<&raft_sm::Node> = self.hosts.values().map(|h| h.node()).collect();
        for (i, a) in nodes.iter().enumerate() {
            for b in &nodes[i + 1..] {
                let from = a.log_base().0.max(b.log_base().0).next();
                let to = a.last_log_index().min(b.last_log_index());
                let mut index = to;
                while index >= from && index.0 > 0 {
                    if a.term_at(index) == b.term_at(index) {
                        assert_eq!(a.entry(index), b.entry(index), "log matching at {index}");
                    }
                    index = index.prev();
                }
            }
        }
    }

    /// Delivers every message in the pool (and what they cause) until quiet,
    /// at most `budget` messages.
    pub fn deliver_all(&mut self, budget: usize) {
        for _ in 0..budget {
            if self.pool.is_empty() {
                return;
            }
            let message = self.pool.remove(0);
            self.deliver(message);
        }
        panic!("message budget of {budget} exhausted");
    }

    pub fn deliver(&mut self, message: Message) {
        if self.cut.contains(&(message.from, message.to)) {
            return;
        }
        let to = message.to;
        self.step(to, Event::Message(message));
    }

    /// Advances virtual time to the earliest timer of any up node, fires it and
    /// delivers the resulting messages.
    pub fn fire_next_timer(&mut self) -> Option<NodeId> {
        let (at, id) = self.next_deadline()?;
        self.now_ms = self.now_ms.max(at);
        self.fire_timers(id);
        Some(id)
    }

    /// Runs timers and delivers messages until `until_ms`.
    pub fn run_until_ms(&mut self, until_ms: u64) {
        for _ in 0..100_000 {
            self.deliver_all(100_000);
            match self.next_deadline() {
                Some((at, _)) if at <= until_ms => {
                    self.fire_next_timer();
                }
                _ => {
                    self.now_ms = self.now_ms.max(until_ms);
                    return;
                }
            }
        }
        panic!("step budget exhausted before {until_ms} ms");
    }

    pub fn run_for(&mut self, ms: u64) {
        let until = self.now_ms + ms;
        self.run_until_ms(until);
    }

    /// Runs until some node leads and every up node agrees, within `limit_ms`.
    pub fn elect(&mut self, limit_ms: u64) -> NodeId {
        let deadline = self.now_ms + limit_ms;
        while self.now_ms < deadline {
            self.run_for(50);
            if let Some(leader) = self.stable_leader() {
                return leader;
            }
        }
        panic!("no leader within {limit_ms} ms");
    }

    pub fn stable_leader(&self) -> Option<NodeId> {
        let leaders: Vec<NodeId> =
            self.hosts.iter().filter(|(_, h)| h.up && h.node().role() == Role::Leader).map(|(id, _)| *id).collect();
        let [leader] = leaders[..] else { return None };
        let term = self.hosts[&leader].node().term();
        let connected = self
            .hosts
            .iter()
            .filter(|(id, h)| h.up && !self.cut.contains(&(leader, **id)) && !self.cut.contains(&(**id, leader)));
        connected.clone().all(|(_, h)| h.node().leader() == Some(leader) && h.node().term() == term).then_some(leader)
    }

    pub fn propose(&mut self, at: NodeId, id: u64, command: &Command) {
        self.step(at, Event::Propose { id, command: command.encode() });
    }

    pub fn isolate(&mut self, id: NodeId) {
        for other in self.hosts.keys().copied().collect::<Vec<_>>() {
            if other != id {
                self.cut.insert((id, other));
                self.cut.insert((other, id));
            }
        }
    }

    pub fn heal(&mut self) {
        self.cut.clear();
    }

    /// Crashes a node: unsynced writes are lost, pending messages to it vanish.
    pub fn crash(&mut self, id: NodeId) {
        let host = self.host(id);
        host.up = false;
        host.unsynced.clear();
        host.pending_syncs.clear();
        host.disk.snapshots.crash();
        self.pool.retain(|m| m.to != id);
    }

    /// Restarts a crashed node from its disk, as a real node would.
    pub fn restart(&mut self, id: NodeId) {
        let now_ms = self.now_ms;
        let host = self.host(id);
        let restored = host.disk.restored();
        host.applied.clear();
        host.applied_base = restored.snapshot.as_ref().map_or(LogIndex(0), |s| s.last_index);
        host.host = Host::boot(&host.config, restored, &host.disk);
        host.up = true;
        self.drive(id, |host, tap| host.start_with(now_ms, tap));
    }

    pub fn notes_of(&self, id: NodeId) -> Vec<&Note> {
        self.notes.iter().filter(|(n, _)| *n == id).map(|(_, note)| note).collect()
    }

    pub fn applied_commands(&self, id: NodeId) -> Vec<Vec<u8>> {
        self.hosts[&id]
            .applied
            .iter()
            .filter_map(|e| match &e.payload {
                Payload::Command(bytes) => Some(bytes.clone()),
                Payload::Noop | Payload::Membership(_) => None,
            })
            .collect()
    }

    pub fn followers(&self, leader: NodeId) -> Vec<NodeId> {
        self.hosts.keys().copied().filter(|&id| id != leader).collect()
    }

    pub fn count_sent(&self, kind: &str) -> usize {
        self.sent_count.get(kind).copied().unwrap_or(0)
    }

    /// Removes and returns the pooled messages matching `pick`.
    pub fn take(&mut self, pick: impl Fn(&Message) -> bool) -> Vec<Message> {
        let (taken, kept) = std::mem::take(&mut self.pool).into_iter().partition(|m| pick(m));
        self.pool = kept;
        taken
    }

    /// Fires `id`'s election timer now (moving time to its deadline).
    pub fn campaign(&mut self, id: NodeId) {
        let deadline = self.node(id).timer_deadline_ms(TimerKind::Election).expect("an election timer is armed");
        self.now_ms = self.now_ms.max(deadline);
        self.fire_timers(id);
    }

    pub fn is_vote_request(message: &Message) -> bool {
        matches!(message.body, Body::RequestVote(_))
    }
}

/// A log of `terms.len()` entries where entry i+1 has term `terms[i]`.
pub fn log_of_terms(terms: &[u64]) -> Vec<Entry> {
    terms
        .iter()
        .enumerate()
        .map(|(i, &t)| Entry {
            term: Term(t),
            index: LogIndex(i as u64 + 1),
            payload: Payload::Command(Command::set(format!("k{i}"), format!("t{t}")).encode()),
        })
        .collect()
}

pub fn restored(term: u64, terms: &[u64], commit: u64) -> RestoredState {
    RestoredState {
        hard_state: HardState { term: Term(term), voted_for: None, commit: LogIndex(commit) },
        snapshot: None,
        entries: log_of_terms(terms),
    }
}
