//! The sans-IO host: the one executor of the core's actions, shared by every
//! driver (the node binary, the simulator, the test pump).
//!
//! A [`Host`] owns a [`Node`] and a [`StateMachine`]. It carries out what needs
//! no IO itself — applying committed entries, taking and restoring snapshots,
//! matching proposals and reads to their answers — and hands the driver only
//! what does, as [`Output`]s in order: durable writes and sync barriers, messages
//! to send, answers to deliver, notes. It also tells the driver when it next
//! needs to run ([`Host::next_deadline_ms`], like quinn-proto's `poll_timeout`),
//! so no driver keeps a timer table.
//!
//! # The driver's loop
//! 1. Wait for the first of: a message, a client request, a completed fsync
//!    (step [`Event::Persisted`]), a background snapshot write finished
//!    ([`Event::SnapshotPersisted`]), or `next_deadline_ms()` (call
//!    [`Host::handle_timeout`]).
//! 2. Step it (and whatever else is queued, with [`Host::step_batch`]).
//! 3. Drain [`Host::poll_output`]: send messages at once (the core holds back
//!    those that depend on durable state), execute writes in order, start an
//!    fsync for each [`Output::Sync`] (one fsync may cover several: report the
//!    last id), deliver answers.
//!
//! The rules for writes are on [`Write`].
//!
//! # Snapshots are streams
//! No snapshot is ever one buffer in the core or the host: the driver keeps the
//! bytes in its snapshot store (a file, a disk image) and the host moves them
//! between that store and the state machine as streams.
//! - [`Output::TakeSnapshot`]: call [`Host::take_snapshot`] with a sink into
//!   the store's staging area; the host writes the state machine's image into
//!   it and the core answers with a `Write::SaveSnapshot` for it.
//! - [`Output::SendSnapshotChunk`]: read the named bytes of the durable
//!   snapshot and send [`SnapshotChunkToSend::with_data`]'s message (or nothing
//!   if the store holds another snapshot; the leader retries).
//! - `Write::SnapshotChunk` / `Write::SaveSnapshot` build and commit an
//!   incoming image from the leader; once the sync after it completes the host
//!   asks for [`Output::RestoreSnapshot`]: call [`Host::restore_snapshot`] with
//!   a reader of it. Until then the host holds back everything that reads or
//!   changes the state machine (applies, reads, snapshots).

use crate::config::Config;
use crate::event::{Action, Event, Note, PersistId, ProposalOutcome, ReadOutcome, Rejection};
use crate::message::{Message, SnapshotChunkToSend};
use crate::node::Node;
use crate::recovery::StartError;
use crate::types::{Entry, LogIndex, RestoredState, SnapshotMeta, Term};
use crate::write::Write;
use std::collections::VecDeque;
use std::fmt;

/// The replicated state machine a [`Host`] applies committed entries to.
///
/// Snapshots are streamed: the state machine writes its image into a sink and
/// reads it back from a source (both the driver's, see the module docs), so one
/// kept on disk and larger than memory can stream it from file to file; the
/// core and the host only ever see its [`SnapshotMeta`].
pub trait StateMachine {
    /// What applying an entry yields; it answers the proposal that created it.
    type Output: Clone + fmt::Debug;
    /// Why a snapshot image could not be restored.
    type RestoreError: std::error::Error;

    /// Applies one committed entry. Called for every entry (no-ops included),
    /// in index order, each exactly once.
    fn apply(&mut self, entry: &Entry) -> Self::Output;

    /// The index of the last entry applied (or of the snapshot restored).
    fn applied_index(&self) -> LogIndex;

    /// Writes an image of the state at [`StateMachine::applied_index`] into `out`.
    fn save_snapshot(&self, out: &mut dyn std::io::Write) -> std::io::Result<()>;

    /// Replaces the whole state with the image read from `image`.
    fn restore_snapshot(&mut self, image: &mut dyn std::io::Read) -> Result<(), Self::RestoreError>;

    /// The leader's duties (lease expiry): called after every step with the
    /// host's clock and the term this node leads (`None` when it does not);
    /// returns encoded commands the host proposes itself. The one place a state
    /// machine sees a clock, so every driver shares it.
    fn leader_duties(&mut self, _now_ms: u64, _leader_term: Option<Term>) -> Vec<Vec<u8>> {
        Vec::new()
    }

    /// When [`StateMachine::leader_duties`] next has something to do.
    fn next_duty_ms(&self) -> Option<u64> {
        None
    }
}

/// Proposal ids from this one up are the host's own (its leader duties);
/// drivers number theirs below it and never see answers to these.
pub const HOST_PROPOSAL_ID_MIN: u64 = 1 << 63;

/// The answer to a proposal.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProposalAnswer<O> {
    /// Appended at `index` in `term`; the result follows as `Applied`.
    Accepted {
        /// Where the entry is.
        index: LogIndex,
        /// The leader's term.
        term: Term,
    },
    /// Committed and applied: the state machine's result.
    Applied {
        /// The entry's index.
        index: LogIndex,
        /// What applying it yielded.
        output: O,
    },
    /// Not accepted; nothing was appended, so it will never apply.
    Rejected(Rejection),
    /// Accepted, then leadership was lost: the outcome is unknown (it may still
    /// commit). Retrying with the same client session is safe.
    Dropped,
}

/// What a host hands its driver, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Output<O> {
    /// A durable write (rules on [`Write`]).
    Write(Write),
    /// Make every write before this durable, then step `Event::Persisted { id }`.
    Sync(PersistId),
    /// Put a message on the wire now.
    Send(Message),
    /// Call [`Host::take_snapshot`] now, with a sink into the snapshot store's
    /// staging area (the image belongs to the state machine as it is now).
    TakeSnapshot,
    /// Read `len()` bytes at `offset()` of the durable snapshot at
    /// `last_index()` and send the message [`SnapshotChunkToSend::with_data`]
    /// makes; send nothing if the store holds another snapshot.
    SendSnapshotChunk(SnapshotChunkToSend),
    /// The snapshot installed from the leader is durable: call
    /// [`Host::restore_snapshot`] now with a reader of its image. Applies and
    /// reads wait for it.
    RestoreSnapshot(SnapshotMeta),
    /// The answer to proposal `id` (a proposal gets `Accepted` and later one
    /// final answer, or a final answer at once).
    Proposal {
        /// The driver's id of the proposal.
        id: u64,
        /// What happened.
        answer: ProposalAnswer<O>,
    },
    /// The answer to read `id`. `Ready` means: read the state machine now
    /// ([`Host::state_machine`]); it has applied at least the read index.
    Read {
        /// The driver's id of the read.
        id: u64,
        /// What happened.
        outcome: ReadOutcome,
    },
    /// Something notable happened (for logs and counters).
    Note(Note),
}

/// Taps into a host's execution, for traces and checkers (the simulator's).
/// Every method has an empty default; `()` observes nothing.
pub trait Observer<O> {
    /// An event is about to be stepped (including the host's own follow-ups).
    fn on_event(&mut self, _event: &Event) {}
    /// The core returned `action`; `node` is its state after the step.
    fn on_action(&mut self, _node: &Node, _action: &Action) {}
    /// `entry` was applied with `output`.
    fn on_apply(&mut self, _entry: &Entry, _output: &O) {}
    /// The state machine wrote a snapshot image of `size_bytes` at `index`.
    fn on_snapshot_taken(&mut self, _index: LogIndex, _size_bytes: u64) {}
    /// The state machine was replaced by the image of `snapshot`.
    fn on_snapshot_restored(&mut self, _snapshot: &SnapshotMeta) {}
}

impl<O> Observer<O> for () {}

/// Why a host could not be built.
#[derive(Debug)]
#[non_exhaustive]
pub enum HostError<E> {
    /// The core refused the configuration or the durable state.
    Start(StartError),
    /// The durable snapshot does not restore.
    Restore {
        /// The snapshot's last index.
        index: LogIndex,
        /// Why.
        error: E,
    },
    /// The durable state names a snapshot but no image of it was given.
    MissingImage {
        /// The snapshot's last index.
        index: LogIndex,
    },
    /// The restored state machine is not at the snapshot's index.
    RestoredIndex {
        /// The snapshot's last index.
        snapshot_index: LogIndex,
        /// The state machine's applied index after restoring it.
        applied_index: LogIndex,
    },
}

impl<E: fmt::Display> fmt::Display for HostError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HostError::Start(error) => write!(f, "{error}"),
            HostError::Restore { index, error } => {
                write!(f, "the snapshot at index {} does not restore: {error}", index.0)
            }
            HostError::MissingImage { index } => {
                write!(f, "the snapshot at index {} has no image in the snapshot store", index.0)
            }
            HostError::RestoredIndex { snapshot_index, applied_index } => write!(
                f,
                "the snapshot at index {} holds a state machine applied to index {}",
                snapshot_index.0, applied_index.0
            ),
        }
    }
}

impl<E: fmt::Debug + fmt::Display> std::error::Error for HostError<E> {}

impl<E> From<StartError> for HostError<E> {
    fn from(error: StartError) -> HostError<E> {
        HostError::Start(error)
    }
}

/// A node and its state machine, executing the node's actions; see the module
/// documentation for the driver's side.
pub struct Host<S: StateMachine> {
    node: Node,
    state_machine: S,
    outputs: VecDeque<Output<S::Output>>,
    /// Events the host's own actions lead to (applied, snapshot taken).
    follow_ups: Vec<Event>,
    /// The next id for the host's own proposals.
    next_duty_id: u64,
    /// An installed snapshot the state machine waits for, if any.
    restore: Option<PendingRestore>,
    /// Actions that read or change the state machine, held while `restore` waits.
    held: VecDeque<Action>,
}

/// A snapshot installed from the leader, not yet restored into the state machine.
#[derive(Debug)]
struct PendingRestore {
    meta: SnapshotMeta,
    /// The sync that covers its `SaveSnapshot` (the next one after it).
    after: Option<PersistId>,
    /// Whether `Output::RestoreSnapshot` went out.
    asked: bool,
}

/// Counts the bytes written through it.
struct CountingSink<'a> {
    inner: &'a mut dyn std::io::Write,
    written_bytes: u64,
}

impl std::io::Write for CountingSink<'_> {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        let written = self.inner.write(bytes)?;
        self.written_bytes += written as u64;
        Ok(written)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

impl<S: StateMachine> Host<S> {
    /// Builds a host from exactly what was durable: `state_machine` (empty) is
    /// restored from `image`, a reader of the durable snapshot's bytes (`None`
    /// when there is no snapshot), then the core reconciles the log with it.
    /// Call [`Host::start`] next.
    pub fn new(
        config: Config,
        restored: RestoredState,
        mut state_machine: S,
        image: Option<&mut dyn std::io::Read>,
    ) -> Result<Host<S>, HostError<S::RestoreError>> {
        if let Some(snapshot) = &restored.snapshot {
            let index = snapshot.last_index;
            let image = image.ok_or(HostError::MissingImage { index })?;
            restore_into(&mut state_machine, index, image)?;
        }
        let node = Node::new(config, restored)?;
        Ok(Host {
            node,
            state_machine,
            outputs: VecDeque::new(),
            follow_ups: Vec::new(),
            next_duty_id: HOST_PROPOSAL_ID_MIN,
            restore: None,
            held: VecDeque::new(),
        })
    }

    /// Starts the node at `now_ms` (arms its first timer, re-applies what a
    /// restart must re-apply, repairs the disk if the log disagreed with the
    /// snapshot).
    pub fn start(&mut self, now_ms: u64) {
        self.start_with(now_ms, &mut ());
    }

    /// [`Host::start`] with an observer.
    pub fn start_with(&mut self, now_ms: u64, observer: &mut impl Observer<S::Output>) {
        let actions = self.node.start(now_ms);
        self.run(now_ms, actions, observer);
    }

    /// Steps one event from the driver: a message, a proposal, a read, a
    /// completed sync ([`Event::Persisted`]), a durable snapshot
    /// ([`Event::SnapshotPersisted`]) or an operator request. Timers go through
    /// [`Host::handle_timeout`]; applies and snapshots are the host's own.
    pub fn step(&mut self, now_ms: u64, event: Event) {
        self.step_with(now_ms, event, &mut ());
    }

    /// Steps several events that happened at `now_ms` as one batch: their
    /// writes share one sync, their entries one append per follower.
    pub fn step_batch(&mut self, now_ms: u64, events: impl IntoIterator<Item = Event>) {
        self.step_batch_with(now_ms, events, &mut ());
    }

    /// [`Host::step`] with an observer: [`Host::step_batch_with`] of one event,
    /// without the batch's iterator (a driver that steps one event at a time,
    /// like the simulator, moves each event once).
    pub fn step_with(&mut self, now_ms: u64, event: Event, observer: &mut impl Observer<S::Output>) {
        assert!(
            !matches!(event, Event::Applied { .. } | Event::SnapshotTaken { .. }),
            "the host applies and takes snapshots itself; drivers never step {event:?}"
        );
        observer.on_event(&event);
        let persisted = match event {
            Event::Persisted { id } => Some(id),
            _ => None,
        };
        let actions = self.node.step(now_ms, event);
        self.run(now_ms, actions, observer);
        self.after_persisted(persisted);
    }

    /// [`Host::step_batch`] with an observer.
    pub fn step_batch_with(
        &mut self,
        now_ms: u64,
        events: impl IntoIterator<Item = Event>,
        observer: &mut impl Observer<S::Output>,
    ) {
        // Each event is looked at on its way into the core (no collected copy):
        // the observer sees them in order, before any of the batch's actions.
        let mut persisted: Option<PersistId> = None;
        let events = events.into_iter().inspect(|event| {
            assert!(
                !matches!(event, Event::Applied { .. } | Event::SnapshotTaken { .. }),
                "the host applies and takes snapshots itself; drivers never step {event:?}"
            );
            observer.on_event(event);
            if let Event::Persisted { id } = event {
                persisted = persisted.max(Some(*id));
            }
        });
        let actions = self.node.step_batch(now_ms, events);
        self.run(now_ms, actions, observer);
        self.after_persisted(persisted);
    }

    /// After a step that completed sync `persisted` (the highest, if several):
    /// an installed snapshot it made durable is ready to restore.
    fn after_persisted(&mut self, persisted: Option<PersistId>) {
        if let (Some(id), Some(restore)) = (persisted, &mut self.restore) {
            if !restore.asked && restore.after.is_some_and(|after| after <= id) {
                restore.asked = true;
                self.outputs.push_back(Output::RestoreSnapshot(restore.meta.clone()));
            }
        }
    }

    /// Writes an image of the state machine into `out` (the driver's snapshot
    /// store, staging area) and tells the core, which answers with the
    /// `Write::SaveSnapshot` for it. Call it on [`Output::TakeSnapshot`].
    /// Returns the snapshot's metadata, or `None` if the core had no use for it
    /// (an installed snapshot covers it meanwhile). On an error of `out` nothing
    /// is kept: the core asks again past its next threshold.
    pub fn take_snapshot(
        &mut self,
        now_ms: u64,
        out: &mut dyn std::io::Write,
    ) -> std::io::Result<Option<SnapshotMeta>> {
        self.take_snapshot_with(now_ms, out, &mut ())
    }

    /// [`Host::take_snapshot`] with an observer.
    pub fn take_snapshot_with(
        &mut self,
        now_ms: u64,
        out: &mut dyn std::io::Write,
        observer: &mut impl Observer<S::Output>,
    ) -> std::io::Result<Option<SnapshotMeta>> {
        // (With a restore pending, the image is of the older state: the core
        // ignores it, as it is below the installed snapshot.)
        let mut sink = CountingSink { inner: out, written_bytes: 0 };
        let written = self.state_machine.save_snapshot(&mut sink).and_then(|()| std::io::Write::flush(&mut sink));
        if let Err(error) = written {
            self.node.snapshot_abandoned();
            return Err(error);
        }
        let (index, size_bytes) = (self.state_machine.applied_index(), sink.written_bytes);
        observer.on_snapshot_taken(index, size_bytes);
        let event = Event::SnapshotTaken { index, size_bytes };
        observer.on_event(&event);
        let actions = self.node.step_batch(now_ms, vec![event]);
        self.run(now_ms, actions, observer);
        Ok(self.node.taken_snapshot().filter(|meta| meta.last_index == index).cloned())
    }

    /// Rebuilds the state machine from the installed snapshot's image. Call it
    /// on [`Output::RestoreSnapshot`]; what waited for it (applies, reads) runs now.
    pub fn restore_snapshot(
        &mut self,
        now_ms: u64,
        image: &mut dyn std::io::Read,
    ) -> Result<(), HostError<S::RestoreError>> {
        self.restore_snapshot_with(now_ms, image, &mut ())
    }

    /// [`Host::restore_snapshot`] with an observer.
    pub fn restore_snapshot_with(
        &mut self,
        now_ms: u64,
        image: &mut dyn std::io::Read,
        observer: &mut impl Observer<S::Output>,
    ) -> Result<(), HostError<S::RestoreError>> {
        let restore = self.restore.take().expect("Output::RestoreSnapshot asked for it");
        assert!(restore.asked, "restore only after Output::RestoreSnapshot");
        restore_into(&mut self.state_machine, restore.meta.last_index, image)?;
        observer.on_snapshot_restored(&restore.meta);
        let held: Vec<Action> = self.held.drain(..).collect();
        self.run(now_ms, held, observer);
        Ok(())
    }

    /// Fires every timer due at `now_ms` (a no-op if none is: a driver may wake
    /// early or late).
    pub fn handle_timeout(&mut self, now_ms: u64) {
        self.handle_timeout_with(now_ms, &mut ());
    }

    /// [`Host::handle_timeout`] with an observer.
    pub fn handle_timeout_with(&mut self, now_ms: u64, observer: &mut impl Observer<S::Output>) {
        let due = self.node.due_timer_kinds(now_ms);
        if due.iter().any(Option::is_some) {
            self.step_batch_with(now_ms, due.into_iter().flatten().map(Event::Timer), observer);
        } else if self.state_machine.next_duty_ms().is_some_and(|at| at <= now_ms) {
            self.run(now_ms, Vec::new(), observer);
        }
    }

    /// When the host next needs [`Host::handle_timeout`], on the driver's clock.
    pub fn next_deadline_ms(&self) -> Option<u64> {
        match (self.node.next_deadline_ms(), self.state_machine.next_duty_ms()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The next output, in order.
    pub fn poll_output(&mut self) -> Option<Output<S::Output>> {
        self.outputs.pop_front()
    }

    /// Every output so far, in order.
    pub fn drain_outputs(&mut self) -> std::collections::vec_deque::Drain<'_, Output<S::Output>> {
        self.outputs.drain(..)
    }

    /// The core (read-only: views for status pages and checkers).
    pub fn node(&self) -> &Node {
        &self.node
    }

    /// The state machine (serve reads from it after [`Output::Read`] `Ready`).
    pub fn state_machine(&self) -> &S {
        &self.state_machine
    }

    fn run(&mut self, now_ms: u64, mut actions: Vec<Action>, observer: &mut impl Observer<S::Output>) {
        loop {
            for action in actions.drain(..) {
                observer.on_action(&self.node, &action);
                self.execute(action, observer);
            }
            self.node.recycle_actions(actions);
            if self.follow_ups.is_empty() {
                let leading = (self.node.role() == crate::Role::Leader).then(|| self.node.term());
                for command in self.state_machine.leader_duties(now_ms, leading) {
                    self.follow_ups.push(Event::Propose { id: self.next_duty_id, command });
                    self.next_duty_id += 1;
                }
            }
            if self.follow_ups.is_empty() {
                return;
            }
            for event in &self.follow_ups {
                observer.on_event(event);
            }
            // Drained, not taken: the buffer keeps its allocation for the next follow-ups.
            actions = self.node.step_batch(now_ms, self.follow_ups.drain(..));
        }
    }

    fn execute(&mut self, action: Action, observer: &mut impl Observer<S::Output>) {
        if self.restore.is_some() && touches_state_machine(&action) {
            self.held.push_back(action);
            return;
        }
        match action {
            Action::Write(write) => self.outputs.push_back(Output::Write(write)),
            Action::Sync { id } => {
                if let Some(restore) = self.restore.as_mut().filter(|restore| restore.after.is_none()) {
                    restore.after = Some(id);
                }
                self.outputs.push_back(Output::Sync(id))
            }
            Action::Send(message) => self.outputs.push_back(Output::Send(message)),
            Action::SendSnapshotChunk(chunk) => self.outputs.push_back(Output::SendSnapshotChunk(chunk)),
            Action::Apply { entries, proposals } => self.apply(entries, proposals, observer),
            Action::RestoreSnapshot(meta) => self.await_restore(meta),
            // One per request: the core asks again only after `SnapshotTaken`.
            Action::TakeSnapshot => self.outputs.push_back(Output::TakeSnapshot),
            // The host's own proposals need no answer: a duty not done is due again.
            Action::ProposalResult { id, .. } if id >= HOST_PROPOSAL_ID_MIN => {}
            Action::ProposalResult { id, outcome } => {
                let answer = match outcome {
                    ProposalOutcome::Accepted { index, term } => ProposalAnswer::Accepted { index, term },
                    ProposalOutcome::Rejected(rejection) => ProposalAnswer::Rejected(rejection),
                    ProposalOutcome::Dropped => ProposalAnswer::Dropped,
                };
                self.outputs.push_back(Output::Proposal { id, answer });
            }
            Action::ReadResult { id, outcome } => {
                if let ReadOutcome::Ready { read_index } = outcome {
                    assert!(
                        self.state_machine.applied_index() >= read_index,
                        "read {id} served at {read_index} before the state machine applied it (applied {})",
                        self.state_machine.applied_index()
                    );
                }
                self.outputs.push_back(Output::Read { id, outcome });
            }
            // The deadline is read with `next_deadline_ms`; observers see the action.
            Action::SetTimer { .. } => {}
            Action::Note(note) => self.outputs.push_back(Output::Note(note)),
        }
    }

    /// The core installed `meta`: hold what touches the state machine until the
    /// driver restores it. A newer install replaces an older one still waiting;
    /// held entries it covers are dropped (their proposals get `Dropped`: the
    /// snapshot may hold their effect, so the outcome is unknown).
    fn await_restore(&mut self, meta: SnapshotMeta) {
        let covered = meta.last_index;
        for action in &mut self.held {
            if let Action::Apply { entries, proposals } = action {
                entries.retain(|entry| entry.index > covered);
                for &(_, id) in proposals.iter().filter(|&&(index, _)| index <= covered) {
                    self.outputs.push_back(Output::Proposal { id, answer: ProposalAnswer::Dropped });
                }
                proposals.retain(|&(index, _)| index > covered);
            }
        }
        self.held.retain(|action| !matches!(action, Action::Apply { entries, .. } if entries.is_empty()));
        self.restore = Some(PendingRestore { meta, after: None, asked: false });
    }

    fn apply(&mut self, entries: Vec<Entry>, proposals: Vec<(LogIndex, u64)>, observer: &mut impl Observer<S::Output>) {
        let Some(last) = entries.last().map(|entry| entry.index) else {
            return;
        };
        let mut proposals = proposals.into_iter().peekable();
        for entry in &entries {
            let expected = self.state_machine.applied_index().next();
            assert_eq!(entry.index, expected, "Apply hands out each index once, in order");
            let output = self.state_machine.apply(entry);
            observer.on_apply(entry, &output);
            if proposals.peek().is_some_and(|&(index, _)| index == entry.index) {
                let (index, id) = proposals.next().expect("peeked");
                if id >= HOST_PROPOSAL_ID_MIN {
                    continue;
                }
                self.outputs.push_back(Output::Proposal { id, answer: ProposalAnswer::Applied { index, output } });
            }
        }
        assert!(proposals.next().is_none(), "every proposal handed out is among the entries");
        self.follow_ups.push(Event::Applied { index: last });
    }
}

/// Whether `action` reads or changes the state machine (held while a restore waits).
fn touches_state_machine(action: &Action) -> bool {
    match action {
        Action::Apply { .. } | Action::TakeSnapshot => true,
        Action::ReadResult { outcome, .. } => matches!(outcome, ReadOutcome::Ready { .. }),
        _ => false,
    }
}

/// Replaces `state_machine` with `image` and checks it is at `index`.
fn restore_into<S: StateMachine>(
    state_machine: &mut S,
    index: LogIndex,
    image: &mut dyn std::io::Read,
) -> Result<(), HostError<S::RestoreError>> {
    state_machine.restore_snapshot(image).map_err(|error| HostError::Restore { index, error })?;
    if state_machine.applied_index() != index {
        return Err(HostError::RestoredIndex { snapshot_index: index, applied_index: state_machine.applied_index() });
    }
    Ok(())
}
