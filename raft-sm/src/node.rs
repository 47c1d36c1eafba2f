//! The node: its state, `step`, the dispatch by term and role, the one `send`
//! chokepoint and the invariants checked after every step.

use crate::config::Config;
use crate::event::{
    Action, Event, Note, PersistId, ProposalOutcome, ReadOutcome, Rejection, StepDownReason, TimerKind,
};
use crate::log::Log;
use crate::membership::Configurations;
use crate::message::{
    AppendEntries, AppendEntriesResponse, Body, InstallSnapshotResponse, Message, RequestVote, RequestVoteResponse,
};
use crate::mutants::Mutant;
use crate::progress::Progress;
use crate::quorum::{JointConfig, VoteTracker};
use crate::read::Reads;
use crate::recovery::StartError;
use crate::snapshot::IncomingSnapshot;
use crate::timer::Timers;
use crate::types::{Entry, HardState, LogIndex, NodeId, Payload, RestoredState, Role, SnapshotMeta, Term};
use crate::write::Write;
use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::{BTreeMap, VecDeque};

/// Something that may only happen once a sync is durable.
#[derive(Clone, Debug)]
pub(crate) enum AfterPersist {
    /// A message that reports durable state (a vote, an append acknowledgement).
    Send(Message),
    /// The local log is durable up to this index.
    LogDurable(LogIndex),
    /// A candidate's vote for itself in this term is durable: only now may it count.
    SelfVote(Term),
}

/// What a message with a higher term than ours does to our term.
pub(crate) enum HigherTerm {
    /// Adopt the term and become a follower (Raft §5.1).
    Adopt,
    /// Handle the message without changing the term (PreVote traffic).
    KeepTerm,
    /// Ignore the message entirely (a vote request while we hear a leader).
    Drop,
}

/// A leadership transfer in progress.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Transfer {
    pub(crate) to: NodeId,
    pub(crate) timeout_now_sent: bool,
}

/// A Raft node: a pure state machine driven by [`Node::step`].
///
/// Drivers normally run it through [`crate::Host`], which executes every action
/// that needs no IO (applies, snapshots, answers) and hands on the rest; the
/// contract below is what the host (or a driver using `Node` directly) keeps.
///
/// # Contract
/// - **Time is an input.** Every call passes `now_ms`, the driver's monotonic
///   clock in milliseconds; it never goes backwards. The node never reads a clock.
/// - **Events in, actions out.** [`Event`]s are timers, messages from peers,
///   client proposals and reads, acknowledgements of durable writes
///   ([`Event::Persisted`], [`Event::SnapshotPersisted`]), of application
///   ([`Event::Applied`]) and of snapshots ([`Event::SnapshotTaken`]), and
///   operator requests. `step` returns the [`Action`]s to execute, **in order**.
/// - **Persistence.** Every [`crate::Write`] is executed in order and is durable
///   once the fsync after the next `Sync { id }` completes; the driver then steps
///   `Persisted { id }` (one fsync may cover many syncs: report the last id). The
///   one exception is a snapshot this node took itself
///   ([`crate::SnapshotOrigin::Taken`]): it may be written later, in the
///   background, and the driver steps `SnapshotPersisted { index }` once it is
///   durable; the core emits the log compaction it allows only then. Messages that
///   reveal durable state (our vote request, vote grants, append and snapshot
///   acknowledgements) are held inside the node until their sync is reported, so
///   every `Send` may go on the wire at once.
/// - **Snapshot bytes stay in the driver.** The core keeps [`SnapshotMeta`]
///   only. `TakeSnapshot` asks for an image in the driver's store (then step
///   `SnapshotTaken` with its size); `SendSnapshotChunk` names a chunk of the
///   durable snapshot to read and send; a follower's accepted chunks come out as
///   `Write::SnapshotChunk`; `RestoreSnapshot` asks for the state machine to be
///   rebuilt from the installed image once it is durable.
/// - **Apply.** `Apply` hands out committed entries in index order, each once,
///   with the ids of the proposals they answer; the driver applies them and steps
///   `Applied { index }`.
/// - **Timers.** [`Node::next_deadline_ms`] is the earliest deadline; the driver
///   steps `Timer(kind)` for each kind due then ([`Node::due_timers`]). Early or
///   stale timer events are ignored, so nothing needs to tick. (`SetTimer`
///   actions report each change, for traces.)
/// - **Restart.** [`Node::new`] takes exactly what is on disk; it reconciles the
///   log with the snapshot itself and its first actions repair the disk.
/// - **Determinism.** The only randomness is a ChaCha RNG seeded from
///   [`Config::rng_seed`]: the same config, restored state and events give the same
///   actions, bit for bit.
pub struct Node {
    pub(crate) config: Config,
    /// Who must agree, built from the current configuration: the one answer to
    /// every majority question.
    pub(crate) quorum: JointConfig,
    /// The configurations in the log; the latest is in effect (`membership.rs`).
    pub(crate) configurations: Configurations,
    pub(crate) rng: ChaCha8Rng,
    pub(crate) now_ms: u64,

    // Durable state (mirrored by the driver's disk).
    pub(crate) term: Term,
    pub(crate) voted_for: Option<NodeId>,
    pub(crate) log: Log,
    pub(crate) snapshot: Option<SnapshotMeta>,
    /// A snapshot this node took that is not durable yet (at most one).
    pub(crate) taken_snapshot: Option<SnapshotMeta>,

    // Volatile state.
    pub(crate) role: Role,
    pub(crate) leader: Option<NodeId>,
    pub(crate) commit_index: LogIndex,
    /// Last index the driver reported applied.
    pub(crate) applied_index: LogIndex,
    /// Last index handed out in an `Apply` action.
    pub(crate) apply_sent_index: LogIndex,
    pub(crate) timers: Timers,
    pub(crate) votes: VoteTracker,
    /// When a leader was last heard from (for PreVote and vote leases).
    pub(crate) leader_contact_ms: Option<u64>,
    /// Whether a snapshot was asked for and not yet produced.
    pub(crate) snapshot_requested: bool,
    pub(crate) incoming_snapshot: Option<IncomingSnapshot>,
    /// The highest index a compaction was issued for after a taken snapshot
    /// became durable (or the restored snapshot's index).
    pub(crate) snapshot_compacted_index: LogIndex,

    // Leader state.
    pub(crate) progress: BTreeMap<NodeId, Progress>,
    /// Accepted proposals not yet applied: (index, driver id), in index order.
    pub(crate) pending_proposals: VecDeque<(LogIndex, u64)>,
    pub(crate) transfer: Option<Transfer>,
    pub(crate) reads: Reads,
    /// Followers that should get an append (or heartbeat) when the step ends.
    pub(crate) needs_append: Vec<NodeId>,

    // Persistence bookkeeping.
    /// The local log is durable up to here.
    pub(crate) durable_index: LogIndex,
    pub(crate) last_sync_id: PersistId,
    pub(crate) last_persisted_id: PersistId,
    /// Log or vote writes issued in this step (they need a sync).
    pub(crate) wrote_this_step: bool,
    pub(crate) hard_state_written: HardState,
    pub(crate) after_persist: VecDeque<(PersistId, AfterPersist)>,
    /// Messages of this step that wait for the step's writes.
    pub(crate) held_this_step: Vec<Message>,
    /// A self-vote of this step that counts once the step's writes are durable.
    pub(crate) held_self_vote: Option<Term>,

    pub(crate) actions: Vec<Action>,
    /// (term, vote) as of the last check: a node votes at most once per term.
    pub(crate) vote_seen: (Term, Option<NodeId>),
}

impl Node {
    /// Builds a node from its configuration and what was durable (`RestoredState::default()`
    /// for a brand-new node). Call [`Node::start`] next.
    pub fn new(config: Config, restored: RestoredState) -> Result<Node, StartError> {
        config.validate()?;
        let config = crate::mutants::effective_config(config);
        let (base_index, base_term) = match &restored.snapshot {
            Some(snapshot) => (snapshot.last_index, snapshot.last_term),
            None => (LogIndex(0), Term(0)),
        };
        let (entries, repair) = crate::recovery::reconcile_with_snapshot(base_index, base_term, restored.entries)?;
        let configurations = crate::recovery::restore_configurations(&config, restored.snapshot.as_ref(), &entries);
        let log = Log::new(base_index, base_term, entries);
        let hard_state = restored.hard_state;
        let commit_index = hard_state.commit.clamp(base_index, log.last_index());
        let durable_index = log.last_index();
        let rng = ChaCha8Rng::seed_from_u64(config.rng_seed);
        Ok(Node {
            quorum: configurations.current().quorum(),
            configurations,
            config,
            rng,
            now_ms: 0,
            term: hard_state.term,
            voted_for: hard_state.voted_for,
            log,
            snapshot: restored.snapshot,
            role: Role::Follower,
            leader: None,
            commit_index,
            applied_index: base_index,
            apply_sent_index: base_index,
            timers: Timers::default(),
            votes: VoteTracker::default(),
            leader_contact_ms: None,
            snapshot_requested: false,
            incoming_snapshot: None,
            taken_snapshot: None,
            snapshot_compacted_index: base_index,
            progress: BTreeMap::new(),
            pending_proposals: VecDeque::new(),
            transfer: None,
            reads: Reads::default(),
            needs_append: Vec::new(),
            durable_index,
            last_sync_id: PersistId(0),
            last_persisted_id: PersistId(0),
            wrote_this_step: false,
            hard_state_written: HardState {
                term: hard_state.term,
                voted_for: hard_state.voted_for,
                commit: commit_index,
            },
            after_persist: VecDeque::new(),
            held_this_step: Vec::new(),
            held_self_vote: None,
            actions: repair,
            vote_seen: (hard_state.term, hard_state.voted_for),
        })
    }

    /// Arms the first election timer and hands out committed entries that a
    /// restarted node must re-apply. If the durable log disagreed with the durable
    /// snapshot (a crash between saving a snapshot and compacting or resetting the
    /// log), the first actions repair the log on disk.
    pub fn start(&mut self, now_ms: u64) -> Vec<Action> {
        self.now_ms = now_ms;
        if !self.actions.is_empty() {
            self.wrote_this_step = true;
        }
        self.reset_election_deadline();
        self.finish_step()
    }

    /// Feeds one event at `now_ms`; returns the actions to execute in order.
    pub fn step(&mut self, now_ms: u64, event: Event) -> Vec<Action> {
        // Not through `step_batch`'s iterator: one event is moved once, not once per adapter.
        assert!(now_ms >= self.now_ms, "time went backwards: {now_ms} < {}", self.now_ms);
        self.now_ms = now_ms;
        self.dispatch(event);
        self.finish_step()
    }

    /// Feeds several events that happened at `now_ms` as one step: their writes
    /// share one `Sync` and their new entries go to each follower in one batched
    /// append. A driver uses it for group commit (e.g. all client requests that
    /// arrived during one loop turn).
    pub fn step_batch(&mut self, now_ms: u64, events: impl IntoIterator<Item = Event>) -> Vec<Action> {
        assert!(now_ms >= self.now_ms, "time went backwards: {now_ms} < {}", self.now_ms);
        self.now_ms = now_ms;
        for event in events {
            self.dispatch(event);
        }
        self.finish_step()
    }

    fn dispatch(&mut self, event: Event) {
        match event {
            Event::Timer(kind) => self.on_timer(kind),
            Event::Message(message) => self.on_message(message),
            Event::Propose { id, command } => self.on_propose(id, command),
            Event::Read { id } => self.on_read(id),
            Event::Persisted { id } => self.on_persisted(id),
            Event::Applied { index } => self.on_applied(index),
            Event::SnapshotTaken { index, size_bytes } => self.on_snapshot_taken(index, size_bytes),
            Event::SnapshotPersisted { index } => self.on_snapshot_persisted(index),
            Event::SnapshotNow => self.on_snapshot_requested(),
            Event::TransferLeadership { to } => self.on_transfer_leadership(to),
            Event::ChangeMembership { id, change } => self.on_change_membership(id, change),
            Event::AddMember { id, member, context } => self.on_change_membership_with(
                id,
                crate::membership::MembershipChange::AddLearner(member),
                Some(context),
            ),
        }
    }

    fn on_timer(&mut self, kind: TimerKind) {
        if !self.timers.is_due(kind, self.now_ms) {
            return; // Stale or early: the slot moved on.
        }
        self.timers.set(kind, None);
        match kind {
            TimerKind::Election => self.on_election_timeout(),
            TimerKind::Heartbeat => self.on_heartbeat_timeout(),
            TimerKind::QuorumCheck => self.on_quorum_check(),
            TimerKind::Transfer => self.on_transfer_timeout(),
        }
    }

    /// Term first, then role (Raft §5.1: any message with a higher term makes the
    /// receiver adopt it and become a follower).
    fn on_message(&mut self, message: Message) {
        if message.to != self.config.id
            || message.from == self.config.id
            || !self.hears_from(message.from, &message.body)
        {
            return; // Not for us, or from outside the configuration (`hears_from`).
        }
        if !self.term_acceptable(&message) {
            // A jump this far would use up the terms left for elections (or wrap).
            self.note(Note::TermLimit { from: Some(message.from), term: message.term });
            return;
        }
        if message.term > self.term {
            match self.higher_term_policy(&message) {
                HigherTerm::Drop => return,
                HigherTerm::KeepTerm => {}
                HigherTerm::Adopt => {
                    let leader = match message.body {
                        Body::AppendEntries(_) | Body::InstallSnapshot(_) => Some(message.from),
                        _ => None,
                    };
                    self.become_follower(message.term, leader, StepDownReason::HigherTerm);
                }
            }
        } else if message.term < self.term {
            self.on_lower_term_message(message.from, message.body);
            return;
        }
        let Message { from, term, body, .. } = message;
        match body {
            Body::RequestVote(request) => self.on_request_vote(from, term, request),
            Body::RequestVoteResponse(response) => self.on_vote_response(from, term, response),
            Body::AppendEntries(append) => self.on_append_entries(from, append),
            Body::AppendEntriesResponse(response) => self.on_append_response(from, response),
            Body::InstallSnapshot(chunk) => self.on_install_snapshot(from, *chunk),
            Body::InstallSnapshotResponse(response) => self.on_install_snapshot_response(from, response),
            Body::TimeoutNow => self.on_timeout_now(from),
            Body::ReadIndexRequest(request) => self.on_read_index_request(from, request),
            Body::ReadIndexResponse(response) => self.on_read_index_response(response),
        }
    }

    /// Whether a message's term may be adopted: one that cannot be advanced
    /// past (`u64::MAX`) never is, nor one more than [`Term::MAX_JUMP`] ahead.
    fn term_acceptable(&self, message: &Message) -> bool {
        message.term <= self.term
            || (message.term.next_term().is_some() && message.term.0 - self.term.0 <= Term::MAX_JUMP)
    }

    /// A message from an older term. A stale leader or candidate learns the newer
    /// term from our answer; everything else is dropped.
    fn on_lower_term_message(&mut self, from: NodeId, body: Body) {
        match body {
            Body::AppendEntries(AppendEntries { read_round, .. }) => {
                let response =
                    AppendEntriesResponse { success: false, match_index: LogIndex(0), reject_hint: None, read_round };
                self.send(from, response.into());
            }
            Body::InstallSnapshot(chunk) => {
                self.send(
                    from,
                    InstallSnapshotResponse { last_index: chunk.last_index, next_offset: 0, done: false }.into(),
                );
            }
            Body::RequestVote(RequestVote { pre_vote, .. }) => {
                self.send(from, RequestVoteResponse { pre_vote, granted: false }.into());
            }
            Body::RequestVoteResponse(response) if self.mutant_is(Mutant::StaleVoteReplies) => {
                self.on_vote_response(from, self.term, response)
            }
            _ => {}
        }
    }

    // ----- role changes ---------------------------------------------------------

    pub(crate) fn become_follower(&mut self, term: Term, leader: Option<NodeId>, reason: StepDownReason) {
        assert!(term >= self.term, "terms never decrease");
        let was = self.role;
        if term > self.term {
            self.term = term;
            self.voted_for = None;
        }
        if was == Role::Leader || was == Role::Candidate || was == Role::PreCandidate {
            self.note(Note::SteppedDown { term, reason });
        }
        if was == Role::Leader {
            self.drop_leader_state();
        }
        if self.leader != leader {
            self.drop_forwarded_reads();
        }
        self.role = Role::Follower;
        self.leader = leader;
        self.votes = VoteTracker::default();
        self.set_timer(TimerKind::Heartbeat, None);
        self.set_timer(TimerKind::QuorumCheck, None);
        self.set_timer(TimerKind::Transfer, None);
        // A follower keeps the election deadline it has: only granting a vote or
        // hearing the current leader resets it (Raft §5.2; the callers do that).
        // Resetting it on every higher term would let candidates with stale logs
        // keep the one server that could win from ever timing out.
        if self.timers.get(TimerKind::Election).is_none() || self.mutant_is(Mutant::TimerResetOnRejectedVote) {
            self.reset_election_deadline();
        }
    }

    /// Answers every pending proposal and read as dropped: their outcome is now
    /// unknown to this node, and clients must not wait for a timeout to learn it.
    fn drop_leader_state(&mut self) {
        while let Some((_, id)) = self.pending_proposals.pop_front() {
            self.note(Note::ProposalDropped);
            self.actions.push(Action::ProposalResult { id, outcome: ProposalOutcome::Dropped });
        }
        self.drop_leader_reads();
        self.progress.clear();
        self.needs_append.clear();
        self.transfer = None;
    }

    // ----- proposals ------------------------------------------------------------

    fn on_propose(&mut self, id: u64, command: Vec<u8>) {
        let rejection = if self.role != Role::Leader {
            Some(Rejection::NotLeader { leader: self.leader })
        } else if self.transfer.is_some() {
            Some(Rejection::TransferInProgress)
        } else if self.pending_proposals.len() >= self.config.pending_proposals_max {
            Some(Rejection::Busy)
        } else {
            None
        };
        if let Some(rejection) = rejection {
            self.actions.push(Action::ProposalResult { id, outcome: ProposalOutcome::Rejected(rejection) });
            return;
        }
        let index = self.append_as_leader(crate::types::Payload::Command(command));
        self.pending_proposals.push_back((index, id));
        self.actions.push(Action::ProposalResult { id, outcome: ProposalOutcome::Accepted { index, term: self.term } });
    }

    // ----- persistence ----------------------------------------------------------

    /// Appends to the in-memory log and asks the driver to append durably.
    pub(crate) fn append_entries_locally(&mut self, entries: Vec<Entry>) {
        if entries.is_empty() {
            return;
        }
        let mut membership_changed = false;
        for entry in &entries {
            self.log.append(entry.clone());
            if let Payload::Membership(membership) = &entry.payload {
                self.configurations.append(entry.index, (**membership).clone());
                membership_changed = true;
            }
        }
        if membership_changed {
            self.on_membership_changed();
        }
        self.wrote_this_step = true;
        self.actions.push(Action::Write(Write::Append { entries }));
    }

    pub(crate) fn truncate_locally(&mut self, from: LogIndex) {
        assert!(
            from > self.commit_index,
            "never truncate committed entries (from {from}, commit {})",
            self.commit_index
        );
        let count = self.log.truncate_from(from);
        if count == 0 {
            return;
        }
        self.durable_index = self.durable_index.min(from.prev());
        for (_, after) in self.after_persist.iter_mut() {
            if let AfterPersist::LogDurable(index) = after {
                *index = (*index).min(from.prev());
            }
        }
        self.wrote_this_step = true;
        self.note(Note::Truncated { from, count });
        self.actions.push(Action::Write(Write::Truncate { from }));
        if self.configurations.truncate_from(from) {
            self.on_membership_changed();
        }
    }

    fn on_persisted(&mut self, id: PersistId) {
        if id <= self.last_persisted_id || id > self.last_sync_id {
            return; // A duplicate or a sync from before a restart.
        }
        self.last_persisted_id = id;
        while self.after_persist.front().is_some_and(|(sync, _)| *sync <= id) {
            let (_, after) = self.after_persist.pop_front().expect("front exists");
            match after {
                AfterPersist::Send(message) => self.actions.push(Action::Send(message)),
                AfterPersist::LogDurable(index) => {
                    self.durable_index = self.durable_index.max(index.min(self.log.last_index()));
                }
                AfterPersist::SelfVote(term) => {
                    if self.role == Role::Candidate && self.term == term {
                        self.count_self_vote();
                    }
                }
            }
        }
        if self.role == Role::Leader {
            self.maybe_commit();
        }
    }

    /// Sends `body` to `to` in our term, through [`Node::send_message`].
    pub(crate) fn send(&mut self, to: NodeId, body: Body) {
        let message = self.message(to, body);
        self.send_message(message);
    }

    /// The one chokepoint for outgoing messages. A message that reveals durable
    /// state (see [`reveals_durable_state`]) is held until everything written so
    /// far is durable; every other message goes out at once. No caller decides
    /// this for itself (Raft §5.1, thesis §3.8; etcd's `msgsAfterAppend`).
    pub(crate) fn send_message(&mut self, message: Message) {
        assert_ne!(message.to, self.config.id, "never send to self");
        assert_eq!(message.from, self.config.id, "we send only as ourselves");
        assert!(message.term >= self.term, "messages carry our term (or a PreVote's next one)");
        if reveals_durable_state(&message.body) && !self.mutant_sends_early(&message.body) {
            self.held_this_step.push(message);
        } else {
            self.actions.push(Action::Send(message));
        }
    }

    pub(crate) fn message(&self, to: NodeId, body: Body) -> Message {
        // PreVote requests and grants carry the term the candidate would run in.
        let term = match &body {
            // A node at the last term never starts a PreVote (`become_pre_candidate`).
            Body::RequestVote(RequestVote { pre_vote: true, .. }) => self.term.next_term().unwrap_or(self.term),
            _ => self.term,
        };
        Message { from: self.config.id, to, term, body }
    }

    /// Ends a step: sends queued appends, writes the hard state, issues a sync
    /// for the step's writes and orders held messages after it (Raft §5.1 and
    /// thesis §3.8: state is durable before the messages that reveal it).
    fn finish_step(&mut self) -> Vec<Action> {
        self.expire_forwarded_reads();
        self.flush_appends();
        self.maybe_hand_out_applies();
        // After the applies: a removed leader answers its change before it steps down.
        self.maybe_advance_membership();
        self.flush_appends();
        self.maybe_request_snapshot();
        let hard_state = HardState { term: self.term, voted_for: self.voted_for, commit: self.commit_index };
        if hard_state != self.hard_state_written {
            if (hard_state.term, hard_state.voted_for)
                != (self.hard_state_written.term, self.hard_state_written.voted_for)
            {
                self.wrote_this_step = true;
            }
            self.hard_state_written = hard_state;
            self.actions.push(Action::Write(Write::HardState(hard_state)));
        }
        if self.wrote_this_step {
            self.last_sync_id = PersistId(self.last_sync_id.0 + 1);
            let id = self.last_sync_id;
            self.actions.push(Action::Sync { id });
            self.after_persist.push_back((id, AfterPersist::LogDurable(self.log.last_index())));
            self.wrote_this_step = false;
        }
        if let Some(term) = self.held_self_vote.take() {
            assert!(self.last_sync_id > self.last_persisted_id, "a new vote is always being persisted");
            self.after_persist.push_back((self.last_sync_id, AfterPersist::SelfVote(term)));
        }
        let held = std::mem::take(&mut self.held_this_step);
        for message in held {
            if self.last_sync_id > self.last_persisted_id {
                self.after_persist.push_back((self.last_sync_id, AfterPersist::Send(message)));
            } else {
                self.actions.push(Action::Send(message));
            }
        }
        if self.last_sync_id == self.last_persisted_id {
            self.durable_index = self.log.last_index();
        }
        if self.vote_seen.0 != self.term || self.vote_seen.1.is_none() {
            self.vote_seen = (self.term, self.voted_for);
        }
        self.check_invariants();
        std::mem::take(&mut self.actions)
    }

    // ----- timers and helpers ---------------------------------------------------

    pub(crate) fn set_timer(&mut self, kind: TimerKind, deadline_ms: Option<u64>) {
        if self.timers.set(kind, deadline_ms) {
            self.actions.push(Action::SetTimer { kind, deadline_ms });
        }
    }

    /// The one place randomness is used: a fresh election deadline in
    /// [min, max) from now (Raft §5.2).
    pub(crate) fn reset_election_deadline(&mut self) {
        let span = self.config.election_timeout_ms_max - self.config.election_timeout_ms_min;
        let jitter = self.rng.next_u64() % span;
        let deadline = self.now_ms + self.config.election_timeout_ms_min + jitter;
        self.set_timer(TimerKind::Election, Some(deadline));
    }

    pub(crate) fn note(&mut self, note: Note) {
        self.actions.push(Action::Note(note));
    }

    /// Every member but us: whom a leader replicates to.
    pub(crate) fn peers(&self) -> Vec<NodeId> {
        self.membership().members().into_iter().filter(|&id| id != self.config.id).collect()
    }

    /// Hands committed entries to the state machine, in order, each once, with
    /// the ids of the proposals they answer. A proposal's id travels only with
    /// the entry it created: a leader that loses its term answers its pending
    /// proposals `Dropped` at once, so an entry of another leader that later
    /// takes the slot is never taken for ours.
    fn maybe_hand_out_applies(&mut self) {
        while self.apply_sent_index < self.commit_index {
            let from = self.apply_sent_index.next();
            let entries = self.log.slice(from, self.commit_index, self.config.apply_entries_max, usize::MAX);
            assert!(!entries.is_empty(), "committed entries {from}..={} are in the log", self.commit_index);
            let last = entries.last().expect("not empty").index;
            self.apply_sent_index = last;
            let mut proposals = Vec::new();
            while self.pending_proposals.front().is_some_and(|&(at, _)| at <= last) {
                let (index, id) = self.pending_proposals.pop_front().expect("front exists");
                assert_eq!(self.log.term_at(index), Some(self.term), "a pending proposal is an entry of our term");
                proposals.push((index, id));
            }
            self.actions.push(Action::Apply { entries, proposals });
        }
    }

    fn on_applied(&mut self, index: LogIndex) {
        if index <= self.applied_index {
            return; // Already known (e.g. a snapshot was installed meanwhile).
        }
        assert!(index <= self.apply_sent_index, "applied {index} was never handed out");
        self.applied_index = index;
        self.serve_reads_up_to_applied();
    }

    /// The earliest deadline among the timers the node asked for, if any: the
    /// driver calls [`crate::Host::handle_timeout`] (or steps the due
    /// `Event::Timer`s) at or after it. No driver keeps a timer table.
    pub fn next_deadline_ms(&self) -> Option<u64> {
        self.timers.earliest()
    }

    /// The timer kinds due at `now_ms`, in slot order.
    pub fn due_timers(&self, now_ms: u64) -> Vec<TimerKind> {
        self.due_timer_kinds(now_ms).into_iter().flatten().collect()
    }

    /// [`Node::due_timers`] without a heap allocation (the host asks on every
    /// wake-up): per kind of [`TimerKind::ALL`], the kind if it is due.
    pub(crate) fn due_timer_kinds(&self, now_ms: u64) -> [Option<TimerKind>; TimerKind::ALL.len()] {
        TimerKind::ALL.map(|kind| self.timers.is_due(kind, now_ms).then_some(kind))
    }

    /// Gives back an action buffer the driver has emptied, so that the next
    /// step's actions reuse its allocation instead of growing a new `Vec`
    /// (optional: a pure optimisation, the host does it after every step).
    pub fn recycle_actions(&mut self, mut buffer: Vec<Action>) {
        buffer.clear();
        if self.actions.is_empty() && buffer.capacity() > self.actions.capacity() {
            self.actions = buffer;
        }
    }

    /// Debug-build invariants that hold at the end of every step.
    fn check_invariants(&self) {
        if !cfg!(debug_assertions) {
            return;
        }
        assert!(self.commit_index <= self.log.last_index(), "commit beyond the log");
        assert!(self.commit_index >= self.log.base_index(), "commit below the snapshot");
        assert!(self.applied_index <= self.apply_sent_index, "applied beyond handed out");
        assert!(self.apply_sent_index <= self.commit_index, "handed out beyond commit");
        assert!(self.durable_index <= self.log.last_index(), "durable beyond the log");
        if self.vote_seen.0 == self.term {
            if let Some(voted) = self.vote_seen.1 {
                assert_eq!(self.voted_for, Some(voted), "two votes in {}", self.term);
            }
        }
        if self.role == Role::Leader {
            assert_eq!(self.leader, Some(self.config.id));
            for (peer, progress) in &self.progress {
                assert!(progress.match_index < progress.next_index, "match ≥ next for {peer}");
            }
            let tracked: Vec<NodeId> = self.progress.keys().copied().collect();
            assert_eq!(tracked, self.peers(), "a leader tracks exactly the other members");
        } else {
            assert!(self.progress.is_empty(), "only a leader tracks progress");
            assert!(self.pending_proposals.is_empty(), "only a leader has pending proposals");
        }
    }

    // ----- views ----------------------------------------------------------------

    /// This node's id.
    pub fn id(&self) -> NodeId {
        self.config.id
    }
    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }
    /// The current term.
    pub fn term(&self) -> Term {
        self.term
    }
    /// The vote cast in the current term.
    pub fn voted_for(&self) -> Option<NodeId> {
        self.voted_for
    }
    /// The current role.
    pub fn role(&self) -> Role {
        self.role
    }
    /// The leader this node knows in the current term.
    pub fn leader(&self) -> Option<NodeId> {
        self.leader
    }
    /// The commit index.
    pub fn commit_index(&self) -> LogIndex {
        self.commit_index
    }
    /// The last index the driver reported applied.
    pub fn applied_index(&self) -> LogIndex {
        self.applied_index
    }
    /// The last log index.
    pub fn last_log_index(&self) -> LogIndex {
        self.log.last_index()
    }
    /// The term of the last log entry.
    pub fn last_log_term(&self) -> Term {
        self.log.last_term()
    }
    /// The snapshot base: (index, term) of the compacted prefix.
    pub fn log_base(&self) -> (LogIndex, Term) {
        (self.log.base_index(), self.log.base_term())
    }
    /// Number of entries in memory after the base.
    pub fn log_len(&self) -> usize {
        self.log.len()
    }
    /// The term at `index`, if held (or the base).
    pub fn term_at(&self, index: LogIndex) -> Option<Term> {
        self.log.term_at(index)
    }
    /// The entry at `index`, if held.
    pub fn entry(&self, index: LogIndex) -> Option<&Entry> {
        self.log.entry(index)
    }
    /// The latest durable snapshot this node holds (the log starts after it;
    /// a leader sends it to followers behind).
    pub fn snapshot(&self) -> Option<&SnapshotMeta> {
        self.snapshot.as_ref()
    }
    /// A snapshot this node took whose write is not durable yet (the log
    /// still holds what it covers).
    pub fn taken_snapshot(&self) -> Option<&SnapshotMeta> {
        self.taken_snapshot.as_ref()
    }
    /// On a leader, each follower's (match index, next index).
    pub fn replication_progress(&self) -> Vec<(NodeId, LogIndex, LogIndex)> {
        self.replication_progress_iter().collect()
    }
    /// [`Node::replication_progress`] without collecting it (for checkers that
    /// look at it after every step).
    pub fn replication_progress_iter(&self) -> impl Iterator<Item = (NodeId, LogIndex, LogIndex)> + Clone + '_ {
        self.progress.iter().map(|(&id, p)| (id, p.match_index, p.next_index))
    }
    /// Number of proposals accepted and not yet applied (leader only).
    pub fn pending_proposals(&self) -> usize {
        self.pending_proposals.len()
    }
    /// The leadership transfer target, if a transfer is running.
    pub fn transfer_target(&self) -> Option<NodeId> {
        self.transfer.map(|transfer| transfer.to)
    }
    /// The deadline of one timer, if it is armed.
    pub fn timer_deadline_ms(&self, kind: TimerKind) -> Option<u64> {
        self.timers.get(kind)
    }
    /// When a leader was last heard from, on the driver's clock.
    pub fn leader_contact_ms(&self) -> Option<u64> {
        self.leader_contact_ms
    }
}

impl Term {
    /// How far ahead of a node's own term a message's term may be and still be
    /// adopted; a message further ahead is refused ([`Note::TermLimit`]), and so
    /// is one at `u64::MAX`, past which no election could follow. A forged
    /// message with a term near `u64::MAX` would otherwise leave the cluster no
    /// term to elect a leader in (and an unchecked `+ 1` would wrap to 0). Real
    /// terms move one election at a time; a node that was away for 2^32 (four
    /// billion) elections is the only honest one this refuses (or, under attack
    /// by a member, one that missed a forged jump the others took).
    pub const MAX_JUMP: u64 = 1 << 32;

    /// The term after this one, or `None` at `u64::MAX`: a term never wraps.
    pub fn next_term(self) -> Option<Term> {
        self.0.checked_add(1).map(Term)
    }
}

/// Whether a message claims something about this node's durable state, so it
/// may leave only once that state is durable: our own vote when we ask for
/// votes (a crash must not let us vote twice in a term), a vote we grant, and
/// acknowledgements of appended entries or an installed snapshot (a leader
/// counts them towards commitment).
pub(crate) fn reveals_durable_state(body: &Body) -> bool {
    match body {
        Body::RequestVote(request) => !request.pre_vote,
        Body::RequestVoteResponse(response) => !response.pre_vote && response.granted,
        Body::AppendEntriesResponse(response) => response.success,
        Body::InstallSnapshotResponse(response) => response.done,
        Body::AppendEntries(_)
        | Body::InstallSnapshot(_)
        | Body::TimeoutNow
        | Body::ReadIndexRequest(_)
        | Body::ReadIndexResponse(_) => false,
    }
}

/// Shorthand used by handlers: the answer to a read that is ready.
pub(crate) fn read_ready(read_index: LogIndex) -> ReadOutcome {
    ReadOutcome::Ready { read_index }
}
