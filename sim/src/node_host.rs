//! One simulated machine: raft-sm's [`Host`] (the core and its key-value store,
//! the same executor the node binary runs), its simulated disk, and the taps
//! the checkers need. The only driver logic here is what the node's driver
//! does too: writes to the disk in order, fsync barriers, background snapshot
//! writes, the next wake-up, answers to clients.

use crate::checker::log::EntryDigest;
use crate::disk::{CrashDamage, Disk};
use crate::rng::SimRng;
use raft_sm::kv::{ApplyResult, KvError, KvStore};
use raft_sm::{
    Action, Config, Entry, Event, Host, LogIndex, Message, Node, NodeId, Note, Observer, Output, Payload, PersistId,
    ProposalAnswer, ReadOutcome, Rejection, Role, SnapshotMeta, Term, Write,
};
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// Events in a simulated store's history window.
pub const HISTORY_EVENTS_MAX: usize = 48;
/// Bytes of keys and values in a simulated store's history window.
pub const HISTORY_BYTES_MAX: usize = 4 << 10;

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
    /// Not accepted: it never takes effect.
    Rejected(Rejection),
    /// Dropped: outcome unknown.
    Dropped,
}

/// What executing a step produced, for the cluster to carry out and check.
#[derive(Clone, Debug)]
pub enum Effect {
    /// Put a message on the network.
    Send(Message),
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
        /// The entries as the log checker sees them (index, term, payload hash):
        /// no copy of their payloads.
        entries: Vec<EntryDigest>,
        /// Term of the entry before the first, if known.
        prev_term: Option<Term>,
        /// The last configuration entry among them, if any (for the membership check).
        membership: Option<Entry>,
    },
    /// An entry was applied to the store. The entry itself is the node's
    /// [`NodeHost::applied`] at `entry.index` (a different one there is a
    /// `Violation` effect before this one).
    Applied {
        /// The entry, as the checkers see it.
        entry: EntryDigest,
        /// A command that was a retry, not applied again.
        duplicate: bool,
        /// The store's result (None for no-ops), only when the cluster asked
        /// for results ([`NodeHost::keep_apply_results`]: watchers or lease
        /// holders check them); else `None`.
        result: Option<ApplyResult>,
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
    /// The core and its store; `None` while crashed.
    host: Option<Host<KvStore>>,
    /// What a crashed node's store reads as (empty).
    crashed_kv: KvStore,
    /// The disk.
    pub disk: Disk,
    /// Grows by one per crash; events of older incarnations are stale.
    pub incarnation: u64,
    /// Paused nodes receive nothing and fire no timers until resumed.
    pub paused: bool,
    /// The wake-up the cluster has scheduled for this node (its next deadline then).
    wake_scheduled_ms: Option<u64>,
    /// Every entry this node applied, across restarts (index → entry).
    pub applied: BTreeMap<LogIndex, Entry>,
    /// The snapshots installed from the leader, across restarts (their last
    /// indexes): what the store took in without applying entries.
    pub installed_snapshots: Vec<LogIndex>,
    /// A deliberate driver bug, for testing the checkers: report syncs as
    /// persisted at once, before the fsync.
    pub ack_before_fsync: bool,
    /// A deliberate driver bug, for testing the checkers: report a snapshot the
    /// node took as durable as soon as it is handed to the disk, before it is.
    pub snapshot_persisted_early: bool,
    /// What the last boot read back from the disk.
    pub boot_image: BootImage,
    /// Whether `Effect::Applied` carries the store's result (a clone of it).
    pub keep_apply_results: bool,
    /// An emptied effects buffer to fill next (see [`NodeHost::recycle_effects`]).
    spare_effects: Vec<Effect>,
}

/// The simulator's taps into a host: trace text, checker effects.
struct Tap<'a> {
    id: NodeId,
    effects: &'a mut Vec<Effect>,
    applied: &'a mut BTreeMap<LogIndex, Entry>,
    installed: &'a mut Vec<LogIndex>,
    keep_apply_results: bool,
    trace: Option<&'a mut String>,
    /// Whether the first event of this drive has been traced (later ones are follow-ups).
    traced_event: bool,
}

impl Observer<Option<ApplyResult>> for Tap<'_> {
    fn on_event(&mut self, event: &Event) {
        if let Some(line) = self.trace.as_deref_mut() {
            if self.traced_event {
                let _ = write!(line, " | {}", describe_event(event));
            }
        }
        self.traced_event = true;
    }

    fn on_action(&mut self, node: &Node, action: &Action) {
        if let Some(line) = self.trace.as_deref_mut() {
            let _ = write!(line, " {}", describe_action(action));
        }
        if let Action::Write(Write::Append { entries }) = action {
            let prev_term = entries.first().and_then(|first| node.term_at(first.index.prev()));
            let membership = entries.iter().rev().find(|entry| matches!(entry.payload, Payload::Membership(_)));
            self.effects.push(Effect::Appended {
                entries: entries.iter().map(EntryDigest::of).collect(),
                prev_term,
                membership: membership.cloned(),
            });
        }
    }

    fn on_apply(&mut self, entry: &Entry, result: &Option<ApplyResult>) {
        if let Some(previous) = self.applied.get(&entry.index) {
            if previous != entry {
                self.effects.push(Effect::Violation(format!(
                    "{}: re-applied {} as {:?} (term {}) after applying {:?} (term {}) there",
                    self.id, entry.index, entry.payload, entry.term, previous.payload, previous.term
                )));
            }
        } else {
            self.applied.insert(entry.index, entry.clone());
        }
        let duplicate = result.as_ref().is_some_and(|result| result.duplicate);
        let result = if self.keep_apply_results { result.clone() } else { None };
        self.effects.push(Effect::Applied { entry: EntryDigest::of(entry), duplicate, result });
    }

    fn on_snapshot_restored(&mut self, snapshot: &SnapshotMeta) {
        self.installed.push(snapshot.last_index);
    }
}

impl Tap<'_> {
    /// The store image at `index` (taken or restored), for the checker that
    /// every node's image at one index is the same.
    fn image(&mut self, index: LogIndex, image: &[u8]) {
        let digest = crate::rng::fnv1a(crate::rng::FNV_OFFSET, image);
        self.effects.push(Effect::StoreImage { index, digest });
    }
}

impl NodeHost {
    /// A brand-new node (empty disk); call [`NodeHost::boot`] next.
    pub fn new(config: Config) -> NodeHost {
        NodeHost {
            id: config.id,
            config,
            host: None,
            crashed_kv: KvStore::default(),
            disk: Disk::default(),
            incarnation: 0,
            paused: false,
            wake_scheduled_ms: None,
            applied: BTreeMap::new(),
            installed_snapshots: Vec::new(),
            ack_before_fsync: false,
            snapshot_persisted_early: false,
            boot_image: BootImage::default(),
            keep_apply_results: false,
            spare_effects: Vec::new(),
        }
    }

    /// Gives back an effects buffer the cluster has emptied, so the next step
    /// fills it instead of growing a new one (a step's effects are many
    /// messages and entries: the allocations showed in profiles).
    pub fn recycle_effects(&mut self, mut effects: Vec<Effect>) {
        effects.clear();
        if effects.capacity() > self.spare_effects.capacity() {
            self.spare_effects = effects;
        }
    }

    /// Whether the process is running (crashed nodes are not).
    pub fn is_up(&self) -> bool {
        self.host.is_some()
    }

    /// The core (`None` while crashed).
    pub fn node(&self) -> Option<&Node> {
        self.host.as_ref().map(Host::node)
    }

    /// The store (empty while crashed).
    pub fn kv(&self) -> &KvStore {
        self.host.as_ref().map_or(&self.crashed_kv, Host::state_machine)
    }

    /// The node's role (`None` while crashed).
    pub fn role(&self) -> Option<Role> {
        self.node().map(Node::role)
    }

    /// Builds the host from the disk's raw records exactly as the real node
    /// does (the core reconciles them with the snapshot) and starts it at
    /// `now_ms` with a fresh RNG seed.
    pub fn boot(&mut self, now_ms: u64, rng_seed: u64, trace: Option<&mut String>) -> Vec<Effect> {
        assert!(self.host.is_none(), "{} is already running", self.id);
        let restored = self.disk.recover();
        self.boot_image = BootImage {
            snapshot_index: restored.snapshot.as_ref().map_or(LogIndex(0), |snapshot| snapshot.last_index),
            first_log_index: restored.entries.first().map_or(LogIndex(0), |entry| entry.index),
            last_log_index: restored.entries.last().map_or(LogIndex(0), |entry| entry.index),
        };
        let mut config = self.config.clone();
        config.rng_seed = rng_seed;
        // A small history window: snapshots stay small (the swarm sends them in
        // 64-byte chunks) and watchers meet `compacted` answers.
        let store = KvStore::default().with_history_bounds(HISTORY_EVENTS_MAX, HISTORY_BYTES_MAX);
        #[cfg(feature = "mutants")]
        let store = store.with_mutant(config.mutant);
        let image = self.disk.durable().snapshot.as_ref().map(|snapshot| std::sync::Arc::clone(&snapshot.image));
        let mut reader = image.as_ref().map(|image| image.as_slice());
        let reader = reader.as_mut().map(|reader| reader as &mut dyn std::io::Read);
        let host = match Host::new(config, restored, store, reader) {
            Ok(host) => host,
            Err(error) => return vec![Effect::Violation(format!("{}: cannot restart: {error}", self.id))],
        };
        self.host = Some(host);
        self.wake_scheduled_ms = None;
        self.drive(now_ms, true, trace, |host, tap| host.start_with(now_ms, tap))
    }

    /// The process dies: volatile state is gone, unsynced writes are lost or torn.
    pub fn crash(&mut self, rng: &mut SimRng, torn_writes: bool) -> Result<CrashDamage, String> {
        self.host = None;
        self.paused = false;
        self.incarnation += 1;
        self.wake_scheduled_ms = None;
        self.disk.crash(rng, torn_writes)
    }

    /// The host's next deadline, if it differs from the wake-up already
    /// scheduled: the cluster schedules a wake-up then (and forgets the older one).
    pub fn take_new_deadline(&mut self) -> Option<u64> {
        let deadline = self.host.as_ref()?.next_deadline_ms();
        if deadline == self.wake_scheduled_ms {
            return None;
        }
        self.wake_scheduled_ms = deadline;
        deadline
    }

    /// Whether a wake-up scheduled for `deadline_ms` is still the current one.
    pub fn wake_is_current(&self, deadline_ms: u64) -> bool {
        self.is_up() && self.wake_scheduled_ms == Some(deadline_ms)
    }

    /// A scheduled wake-up: fire every due timer.
    pub fn wake(&mut self, now_ms: u64, trace: Option<&mut String>) -> Vec<Effect> {
        self.wake_scheduled_ms = None;
        self.drive(now_ms, false, trace, |host, tap| host.handle_timeout_with(now_ms, tap))
    }

    /// Steps one driver event (a message, a proposal, a read, a transfer).
    pub fn step(&mut self, now_ms: u64, event: Event, trace: Option<&mut String>) -> Vec<Effect> {
        self.drive(now_ms, false, trace, |host, tap| host.step_with(now_ms, event, tap))
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

    /// The background snapshot write `ticket` finished its delay: if it made a
    /// snapshot durable, the core is told (`SnapshotPersisted`), as the real
    /// node's snapshot thread tells its driver.
    pub fn snapshot_written(&mut self, now_ms: u64, ticket: u64, trace: Option<&mut String>) -> Vec<Effect> {
        let mut effects = match self.disk.snapshot_written(ticket) {
            Err(error) => return vec![Effect::Violation(format!("{}: {error}", self.id))],
            Ok(Some(index)) if !self.snapshot_persisted_early => {
                self.step(now_ms, Event::SnapshotPersisted { index }, trace)
            }
            Ok(_) => Vec::new(),
        };
        self.start_snapshot_write(&mut effects);
        effects
    }

    fn start_snapshot_write(&mut self, effects: &mut Vec<Effect>) {
        if let Some(ticket) = self.disk.snapshot_write_started() {
            effects.push(Effect::StartSnapshotWrite(ticket));
        }
    }

    /// Runs `drive` on the host with the taps, then carries out its outputs
    /// (`booting`: they are the first of this incarnation).
    fn drive(
        &mut self,
        now_ms: u64,
        booting: bool,
        trace: Option<&mut String>,
        drive: impl FnOnce(&mut Host<KvStore>, &mut Tap<'_>),
    ) -> Vec<Effect> {
        let mut effects = std::mem::take(&mut self.spare_effects);
        let host = self.host.as_mut().expect("driving a running node");
        let mut tap = Tap {
            id: self.id,
            effects: &mut effects,
            applied: &mut self.applied,
            installed: &mut self.installed_snapshots,
            keep_apply_results: self.keep_apply_results,
            trace,
            traced_event: false,
        };
        drive(host, &mut tap);
        let mut persisted_now = Vec::new();
        // One output at a time: answering a snapshot output adds outputs after the rest.
        while let Some(output) = host.poll_output() {
            match output {
                Output::TakeSnapshot => {
                    let mut image = Vec::new();
                    let taken = host.take_snapshot_with(now_ms, &mut image, &mut tap).expect("writing into memory");
                    if let Some(meta) = taken {
                        tap.image(meta.last_index, &image);
                        self.disk.stage_image(meta.last_index, image);
                    }
                }
                Output::RestoreSnapshot(meta) => {
                    let Some(file) = self.disk.durable_snapshot_at(meta.last_index) else {
                        let problem =
                            format!("{}: the snapshot at {} to restore is not durable", self.id, meta.last_index);
                        tap.effects.push(Effect::Violation(problem));
                        continue;
                    };
                    let image = std::sync::Arc::clone(&file.image);
                    tap.image(meta.last_index, &image);
                    if let Err(error) = host.restore_snapshot_with(now_ms, &mut image.as_slice(), &mut tap) {
                        tap.effects.push(Effect::Violation(format!("{}: {error}", self.id)));
                    }
                }
                Output::SendSnapshotChunk(chunk) => {
                    // Read from the durable snapshot; nothing if it is another one
                    // (a snapshot still being written): the leader retries.
                    let Some(file) = self.disk.durable_snapshot_at(chunk.last_index()) else {
                        continue;
                    };
                    let index = chunk.last_index();
                    match chunk.cut_from(&file.image) {
                        Some(message) => tap.effects.push(Effect::Send(message)),
                        None => {
                            let problem = format!("{}: a chunk past the end of the snapshot at {index}", self.id);
                            tap.effects.push(Effect::Violation(problem));
                        }
                    }
                }
                Output::Write(write) => {
                    if booting && matches!(write, Write::Compact { .. } | Write::Reset { .. }) {
                        tap.effects.push(Effect::RecoveryRepair);
                    }
                    if self.snapshot_persisted_early {
                        if let Write::SaveSnapshot { meta, origin: raft_sm::SnapshotOrigin::Taken } = &write {
                            persisted_now.push(Event::SnapshotPersisted { index: meta.last_index });
                        }
                    }
                    self.disk.write(write);
                }
                Output::Sync(id) => {
                    if let Some(start) = self.disk.sync(id) {
                        tap.effects.push(Effect::StartFsync(start));
                    }
                    if self.ack_before_fsync {
                        persisted_now.push(Event::Persisted { id });
                    }
                }
                Output::Send(message) => tap.effects.push(Effect::Send(message)),
                Output::Proposal { id, answer } => {
                    let answer = match answer {
                        ProposalAnswer::Accepted { index, term } => Answer::Accepted { index, term },
                        ProposalAnswer::Applied { output, .. } => {
                            Answer::Written(output.map_or(Ok(()), |applied| applied.result))
                        }
                        ProposalAnswer::Rejected(rejection) => Answer::Rejected(rejection),
                        ProposalAnswer::Dropped => Answer::Dropped,
                        other => unreachable!("no other answers: {other:?}"),
                    };
                    tap.effects.push(Effect::Answer { request: id, answer });
                }
                Output::Read { id, outcome } => {
                    let answer = match outcome {
                        ReadOutcome::Ready { read_index } => Answer::ReadReady { read_index },
                        ReadOutcome::Rejected(rejection) => Answer::Rejected(rejection),
                        ReadOutcome::Dropped => Answer::Dropped,
                    };
                    tap.effects.push(Effect::Answer { request: id, answer });
                }
                Output::Note(note) => tap.effects.push(Effect::Note(note)),
                other => unreachable!("no other outputs: {other:?}"),
            }
        }
        // The deliberate driver bugs: durability reported before it is true.
        for event in persisted_now {
            let more = self.step(now_ms, event, None);
            effects.extend(more);
        }
        effects
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
        Event::SnapshotTaken { index, size_bytes } => format!("snapshot-taken {index} ({size_bytes} bytes)"),
        Event::SnapshotPersisted { index } => format!("snapshot-persisted {index}"),
        Event::SnapshotNow => "snapshot-now".to_string(),
        Event::TransferLeadership { to } => format!("transfer-to {to}"),
        other => format!("{other:?}"),
    }
}

/// The fields of a message body that matter when reading a trace.
pub fn describe_body(body: &raft_sm::Body) -> String {
    body.fields().map_or_else(String::new, |fields| format!(" {fields}"))
}

/// A short description of an action for the trace.
pub fn describe_action(action: &Action) -> String {
    match action {
        Action::Write(write) => write.describe(),
        Action::Sync { id } => format!("sync{}", id.0),
        Action::Send(message) => {
            format!("send({}→{}{})", message.body.kind(), message.to, describe_body(&message.body))
        }
        Action::Apply { entries, .. } => {
            format!("apply({}..{})", entries.first().map_or(0, |e| e.index.0), entries.last().map_or(0, |e| e.index.0))
        }
        Action::RestoreSnapshot(s) => format!("restore-snap({})", s.last_index),
        Action::SendSnapshotChunk(chunk) => {
            format!("send-chunk(→{} {}@{}+{})", chunk.to(), chunk.last_index(), chunk.offset(), chunk.len())
        }
        Action::TakeSnapshot => "take-snap".to_string(),
        Action::ProposalResult { id, outcome } => format!("proposal#{id}={outcome:?}"),
        Action::ReadResult { id, outcome } => format!("read#{id}={outcome:?}"),
        Action::SetTimer { kind, deadline_ms } => match deadline_ms {
            Some(at) => format!("timer({kind:?}@{at})"),
            None => format!("timer({kind:?}-off)"),
        },
        Action::Note(note) => format!("note({note:?})"),
        other => format!("{other:?}"),
    }
}
