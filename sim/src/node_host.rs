//! One simulated machine: a raft-sm [`Node`], its key-value store, its disk,
//! and the executor that carries out the node's actions exactly as the real
//! node driver does (writes to disk, fsync barriers, applies, snapshots, timers,
//! answers to clients).

use crate::disk::{CrashDamage, Disk, WriteOp};
use crate::rng::SimRng;
use raft_sm::kv::{ApplyResult, KvError, KvStore};
use raft_sm::{
    Action, Config, Entry, Event, LogIndex, Message, Node, NodeId, Note, PersistId, ProposalOutcome, ReadOutcome,
    Rejection, Role, Term, TimerKind,
};
use std::collections::{BTreeMap, VecDeque};
use std::fmt::Write as _;

/// The answer to a request made to a node (by a client or the harness).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Answer {
    /// The proposal was appended at `index` in `term`; its result comes later.
    Accepted {
        /// Where.
        index: LogIndex,
        /// In which term.
        term: Term,
    },
    /// The proposal was applied with this result.
    Written(Result<(), KvError>),
    /// The read may be served from this node's store now.
    ReadReady {
        /// The confirmed read index.
        read_index: LogIndex,
    },
    /// Not accepted.
    Rejected(Rejection),
    /// Dropped: outcome unknown.
    Dropped,
}

/// What executing a step produced, for the cluster to carry out and check.
#[derive(Clone, Debug)]
pub enum Effect {
    /// Put a message on the network.
    Send(Message),
    /// Schedule `Timer(kind)` at `deadline_ms`.
    Timer {
        /// Which timer.
        kind: TimerKind,
        /// When.
        deadline_ms: u64,
    },
    /// Start an fsync covering barrier `id`.
    StartFsync(PersistId),
    /// A background snapshot write started: schedule its completion (`ticket`).
    StartSnapshotWrite(u64),
    /// Answer request `request`.
    Answer {
        /// The request id.
        request: u64,
        /// The answer.
        answer: Answer,
    },
    /// Entries were appended to the log; `prev_term` is the term before the first.
    Appended {
        /// The entries.
        entries: Vec<Entry>,
        /// Term of the entry before the first, if known.
        prev_term: Option<Term>,
    },
    /// An entry was applied to the store.
    Applied {
        /// The entry.
        entry: Entry,
        /// The store's result (None for no-ops).
        result: Option<ApplyResult>,
    },
    /// The store was replaced by a snapshot.
    SnapshotRestored {
        /// The snapshot's last index.
        index: LogIndex,
    },
    /// The store's serialized image at `index` (a snapshot taken or installed).
    StoreImage {
        /// The store's applied index.
        index: LogIndex,
        /// FNV-1a of the snapshot bytes.
        digest: u64,
    },
    /// A core note.
    Note(Note),
    /// A restart found the durable log disagreeing with the durable snapshot and
    /// the core repaired it.
    RecoveryRepair,
    /// The node or the driver broke a contract (a safety failure).
    Violation(String),
}

/// What a node read back from its disk when it last booted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BootImage {
    /// The snapshot's last index (0: none).
    pub snapshot_index: LogIndex,
    /// The first and last log records' indexes (0 when the log was empty).
    pub first_log_index: LogIndex,
    /// See `first_log_index`.
    pub last_log_index: LogIndex,
}

/// One node, its store and its disk.
pub struct NodeHost {
    /// The node's id.
    pub id: NodeId,
    config: Config,
    /// The core; `None` while crashed.
    pub node: Option<Node>,
    /// The state machine.
    pub kv: KvStore,
    /// The disk.
    pub disk: Disk,
    /// Grows by one per crash; events of older incarnations are stale.
    pub incarnation: u64,
    /// Paused nodes receive nothing and fire no timers until resumed.
    pub paused: bool,
    timer_deadlines_ms: [Option<u64>; 4],
    /// Accepted proposals waiting for their entry: index → (request, term).
    proposals: BTreeMap<LogIndex, (u64, Term)>,
    /// Every entry this node applied, across restarts (index → entry).
    pub applied: BTreeMap<LogIndex, Entry>,
    /// A deliberate driver bug, for testing the checkers: report syncs as
    /// persisted at once, before the fsync.
    pub ack_before_fsync: bool,
    /// The index of the snapshot the store last produced: the core's
    /// `SaveSnapshot` of it is written in the background, as the node driver does.
    taken_snapshot: Option<LogIndex>,
    /// What the last boot read back from the disk.
    pub boot_image: BootImage,
}

fn timer_slot(kind: TimerKind) -> usize {
    TimerKind::ALL.iter().position(|&k| k == kind).expect("every kind has a slot")
}

impl NodeHost {
    /// A brand-new node (empty disk); call [`NodeHost::boot`] next.
    pub fn new(config: Config) -> NodeHost {
        NodeHost {
            id: config.id,
            config,
            node: None,
            kv: KvStore::default(),
            disk: Disk::default(),
            incarnation: 0,
            paused: false,
            timer_deadlines_ms: [None; 4],
            proposals: BTreeMap::new(),
            applied: BTreeMap::new(),
            ack_before_fsync: false,
            taken_snapshot: None,
            boot_image: BootImage::default(),
        }
    }

    /// Whether the process is running (crashed nodes are not).
    pub fn is_up(&self) -> bool {
        self.node.is_some()
    }

    /// The node's role (`None` while crashed).
    pub fn role(&self) -> Option<Role> {
        self.node.as_ref().map(Node::role)
    }

    /// Builds the node from its durable state exactly as the real node does
    /// (snapshot, then the log after it), restores the store from the snapshot
    /// and starts it at `now_ms` with a fresh RNG seed.
    pub fn boot(&mut self, now_ms: u64, rng_seed: u64, trace: Option<&mut String>) -> Vec<Effect> {
        assert!(self.node.is_none(), "{} is already running", self.id);
        let restored = self.disk.recover();
        self.boot_image = BootImage {
            snapshot_index: restored.snapshot.as_ref().map_or(LogIndex(0), |snapshot| snapshot.last_index),
            first_log_index: restored.entries.first().map_or(LogIndex(0), |entry| entry.index),
            last_log_index: restored.entries.last().map_or(LogIndex(0), |entry| entry.index),
        };
        let mut effects = Vec::new();
        self.kv = match &restored.snapshot {
            Some(snapshot) => match KvStore::restore(&snapshot.data) {
                Ok(kv) => kv,
                Err(error) => {
                    effects.push(Effect::Violation(format!("{}: durable snapshot does not restore: {error}", self.id)));
                    KvStore::default()
                }
            },
            None => KvStore::default(),
        };
        let mut config = self.config.clone();
        config.rng_seed = rng_seed;
        let mut node = Node::new(config, restored).expect("validated configuration");
        let actions = node.start(now_ms);
        if actions.iter().any(|action| matches!(action, Action::CompactLog { .. } | Action::ResetLog { .. })) {
            effects.push(Effect::RecoveryRepair);
        }
        self.node = Some(node);
        self.timer_deadlines_ms = [None; 4];
        self.run(now_ms, actions, &mut effects, trace);
        effects
    }

    /// The process dies: volatile state is gone, unsynced writes are lost or torn.
    pub fn crash(&mut self, rng: &mut SimRng, torn_writes: bool) -> Result<CrashDamage, String> {
        self.node = None;
        self.paused = false;
        self.kv = KvStore::default();
        self.incarnation += 1;
        self.timer_deadlines_ms = [None; 4];
        self.proposals.clear();
        self.taken_snapshot = None;
        self.disk.crash(rng, torn_writes)
    }

    /// Whether a timer event scheduled for `deadline_ms` is still the current one.
    pub fn timer_is_current(&self, kind: TimerKind, deadline_ms: u64) -> bool {
        self.timer_deadlines_ms[timer_slot(kind)] == Some(deadline_ms)
    }

    /// Steps one event and every follow-up event it causes (applied, snapshot
    /// taken), executing all actions in order.
    pub fn step(&mut self, now_ms: u64, event: Event, trace: Option<&mut String>) -> Vec<Effect> {
        let mut effects = Vec::new();
        if let Event::Timer(kind) = event {
            self.timer_deadlines_ms[timer_slot(kind)] = None;
        }
        let node = self.node.as_mut().expect("stepping a running node");
        let actions = node.step(now_ms, event);
        self.run(now_ms, actions, &mut effects, trace);
        effects
    }

    /// The fsync of barrier `id` completed: make it durable, tell the node, and
    /// start the next fsync if more barriers are waiting.
    pub fn fsync_done(&mut self, now_ms: u64, id: PersistId, trace: Option<&mut String>) -> Vec<Effect> {
        let next = match self.disk.fsync_done(id) {
            Ok(next) => next,
            Err(error) => return vec![Effect::Violation(format!("{}: {error}", self.id))],
        };
        let mut effects = self.step(now_ms, Event::Persisted { id }, trace);
        if let Some(next) = next {
            effects.push(Effect::StartFsync(next));
        }
        self.start_snapshot_write(&mut effects);
        effects
    }

    /// The background snapshot write `ticket` finished its delay. The core is
    /// not told (the real node does not tell it either): only the disk changes.
    pub fn snapshot_written(&mut self, ticket: u64) -> Vec<Effect> {
        if let Err(error) = self.disk.snapshot_written(ticket) {
            return vec![Effect::Violation(format!("{}: {error}", self.id))];
        }
        let mut effects = Vec::new();
        self.start_snapshot_write(&mut effects);
        effects
    }

    fn start_snapshot_write(&mut self, effects: &mut Vec<Effect>) {
        if let Some(ticket) = self.disk.snapshot_write_started() {
            effects.push(Effect::StartSnapshotWrite(ticket));
        }
    }

    fn run(&mut self, now_ms: u64, actions: Vec<Action>, effects: &mut Vec<Effect>, mut trace: Option<&mut String>) {
        let mut follow_ups: VecDeque<Event> = VecDeque::new();
        let mut actions = actions;
        loop {
            if let Some(line) = trace.as_deref_mut() {
                for action in &actions {
                    let _ = write!(line, " {}", describe_action(action));
                }
            }
            for action in actions {
                self.execute(action, effects, &mut follow_ups);
            }
            let Some(event) = follow_ups.pop_front() else {
                break;
            };
            if let Some(line) = trace.as_deref_mut() {
                let _ = write!(line, " | {}", describe_event(&event));
            }
            let node = self.node.as_mut().expect("running");
            actions = node.step(now_ms, event);
        }
    }

    fn execute(&mut self, action: Action, effects: &mut Vec<Effect>, follow_ups: &mut VecDeque<Event>) {
        match action {
            Action::PersistHardState(hard_state) => self.disk.write(WriteOp::HardState(hard_state)),
            Action::TruncateLog { from } => self.disk.write(WriteOp::Truncate(from)),
            Action::AppendLog { entries } => {
                let node = self.node.as_ref().expect("running");
                let prev_term = entries.first().and_then(|first| node.term_at(first.index.prev()));
                effects.push(Effect::Appended { entries: entries.clone(), prev_term });
                self.disk.write(WriteOp::Append(entries));
            }
            Action::SaveSnapshot(snapshot) => {
                // Any other snapshot came from the leader and is written in order.
                let background = self.taken_snapshot.take() == Some(snapshot.last_index);
                self.disk.write(WriteOp::SaveSnapshot { snapshot, background });
            }
            Action::CompactLog { up_to } => self.disk.write(WriteOp::Compact(up_to)),
            Action::ResetLog { base_index } => self.disk.write(WriteOp::Reset(base_index)),
            Action::Sync { id } => {
                if let Some(start) = self.disk.sync(id) {
                    effects.push(Effect::StartFsync(start));
                }
                if self.ack_before_fsync {
                    follow_ups.push_back(Event::Persisted { id });
                }
            }
            Action::Send(message) => effects.push(Effect::Send(message)),
            Action::Apply { entries } => {
                let Some(last) = entries.last().map(|entry| entry.index) else {
                    return;
                };
                for entry in entries {
                    self.apply(entry, effects);
                }
                follow_ups.push_back(Event::Applied { index: last });
            }
            Action::RestoreSnapshot(snapshot) => {
                match KvStore::restore(&snapshot.data) {
                    Ok(kv) => self.kv = kv,
                    Err(error) => effects.push(Effect::Violation(format!(
                        "{}: snapshot {} does not restore: {error}",
                        self.id, snapshot.last_index
                    ))),
                }
                if self.kv.applied_index() != snapshot.last_index {
                    effects.push(Effect::Violation(format!(
                        "{}: snapshot at {} holds a store applied to {}",
                        self.id,
                        snapshot.last_index,
                        self.kv.applied_index()
                    )));
                }
                let covered: Vec<LogIndex> =
                    self.proposals.range(..=snapshot.last_index).map(|(&index, _)| index).collect();
                for index in covered {
                    let (request, _) = self.proposals.remove(&index).expect("listed");
                    effects.push(Effect::Answer { request, answer: Answer::Dropped });
                }
                effects.push(Effect::SnapshotRestored { index: snapshot.last_index });
                effects.push(Effect::StoreImage {
                    index: snapshot.last_index,
                    digest: crate::rng::fnv1a(crate::rng::FNV_OFFSET, &snapshot.data),
                });
            }
            Action::TakeSnapshot => {
                let data = self.kv.snapshot();
                let index = self.kv.applied_index();
                self.taken_snapshot = Some(index);
                effects.push(Effect::StoreImage { index, digest: crate::rng::fnv1a(crate::rng::FNV_OFFSET, &data) });
                follow_ups.push_back(Event::SnapshotTaken { index, data })
            }
            Action::ProposalResult { id, outcome } => {
                let answer = match outcome {
                    ProposalOutcome::Accepted { index, term } => {
                        self.proposals.insert(index, (id, term));
                        Answer::Accepted { index, term }
                    }
                    ProposalOutcome::Rejected(rejection) => Answer::Rejected(rejection),
                    ProposalOutcome::Dropped => {
                        self.proposals.retain(|_, (request, _)| *request != id);
                        Answer::Dropped
                    }
                };
                effects.push(Effect::Answer { request: id, answer });
            }
            Action::ReadResult { id, outcome } => {
                let answer = match outcome {
                    ReadOutcome::Ready { read_index } => {
                        if self.kv.applied_index() < read_index {
                            effects.push(Effect::Violation(format!(
                                "{}: read served at {read_index} before the store applied it (applied {})",
                                self.id,
                                self.kv.applied_index()
                            )));
                        }
                        Answer::ReadReady { read_index }
                    }
                    ReadOutcome::Rejected(rejection) => Answer::Rejected(rejection),
                    ReadOutcome::Dropped => Answer::Dropped,
                };
                effects.push(Effect::Answer { request: id, answer });
            }
            Action::SetTimer { kind, deadline_ms } => {
                self.timer_deadlines_ms[timer_slot(kind)] = deadline_ms;
                if let Some(deadline_ms) = deadline_ms {
                    effects.push(Effect::Timer { kind, deadline_ms });
                }
            }
            Action::Note(note) => effects.push(Effect::Note(note)),
        }
    }

    fn apply(&mut self, entry: Entry, effects: &mut Vec<Effect>) {
        let expected = self.kv.applied_index().next();
        if entry.index != expected {
            effects.push(Effect::Violation(format!(
                "{}: Apply handed out {} but the store expects {expected} (each index once, in order)",
                self.id, entry.index
            )));
            return;
        }
        let result = self.kv.apply_entry(&entry);
        if let Some(previous) = self.applied.get(&entry.index) {
            if previous != &entry {
                effects.push(Effect::Violation(format!(
                    "{}: re-applied {} as {:?} (term {}) after applying {:?} (term {}) there",
                    self.id, entry.index, entry.payload, entry.term, previous.payload, previous.term
                )));
            }
        } else {
            self.applied.insert(entry.index, entry.clone());
        }
        if let Some((request, term)) = self.proposals.remove(&entry.index) {
            let answer =
                if term == entry.term { Answer::Written(result.map_or(Ok(()), |r| r.result)) } else { Answer::Dropped };
            effects.push(Effect::Answer { request, answer });
        }
        effects.push(Effect::Applied { entry, result });
    }
}

/// A short description of an event for the trace.
pub fn describe_event(event: &Event) -> String {
    match event {
        Event::Timer(kind) => format!("timer {kind:?}"),
        Event::Message(message) => {
            format!(
                "recv {} from {} {}{}",
                message.body.kind(),
                message.from,
                message.term,
                describe_body(&message.body)
            )
        }
        Event::Propose { id, command } => format!("propose #{id} ({} bytes)", command.len()),
        Event::Read { id } => format!("read #{id}"),
        Event::Persisted { id } => format!("persisted {}", id.0),
        Event::Applied { index } => format!("applied {index}"),
        Event::SnapshotTaken { index, data } => {
            format!("snapshot-taken {index} ({} bytes)", data.len())
        }
        Event::TransferLeadership { to } => format!("transfer-to {to}"),
    }
}

/// The fields of a message body that matter when reading a trace.
pub fn describe_body(body: &raft_sm::Body) -> String {
    body.fields().map_or_else(String::new, |fields| format!(" {fields}"))
}

/// A short description of an action for the trace.
pub fn describe_action(action: &Action) -> String {
    match action {
        Action::PersistHardState(hs) => {
            format!("hs({},{},{})", hs.term, hs.voted_for.map_or("-".to_string(), |v| v.to_string()), hs.commit)
        }
        Action::TruncateLog { from } => format!("truncate({from})"),
        Action::AppendLog { entries } => {
            format!("append({}..{})", entries.first().map_or(0, |e| e.index.0), entries.last().map_or(0, |e| e.index.0))
        }
        Action::SaveSnapshot(s) => format!("save-snap({})", s.last_index),
        Action::CompactLog { up_to } => format!("compact({up_to})"),
        Action::ResetLog { base_index } => format!("reset-log({base_index})"),
        Action::Sync { id } => format!("sync{}", id.0),
        Action::Send(message) => {
            format!("send({}→{}{})", message.body.kind(), message.to, describe_body(&message.body))
        }
        Action::Apply { entries } => {
            format!("apply({}..{})", entries.first().map_or(0, |e| e.index.0), entries.last().map_or(0, |e| e.index.0))
        }
        Action::RestoreSnapshot(s) => format!("restore-snap({})", s.last_index),
        Action::TakeSnapshot => "take-snap".to_string(),
        Action::ProposalResult { id, outcome } => format!("proposal#{id}={outcome:?}"),
        Action::ReadResult { id, outcome } => format!("read#{id}={outcome:?}"),
        Action::SetTimer { kind, deadline_ms } => match deadline_ms {
            Some(at) => format!("timer({kind:?}@{at})"),
            None => format!("timer({kind:?}-off)"),
        },
        Action::Note(note) => format!("note({note:?})"),
    }
}
