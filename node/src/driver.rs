//! The driver: one tokio task that owns the Raft core and the key-value state
//! machine, feeds them events and executes their actions in order.
//!
//! It runs raft-sm's [`Host`] (the same executor the simulator runs): the host
//! applies entries, takes and restores snapshots and matches answers; this loop
//! only does the IO. Each turn waits for something to happen (a peer message, a
//! client request, a completed fsync or snapshot write, the host's next
//! deadline), then drains everything else already queued, so that one turn
//! handles a burst. Outputs run in order: messages go to the peer senders at
//! once (the core holds back those that depend on durable state), answers go to
//! the waiting requests, and all writes of the turn are handed to the WAL thread
//! as one batch at the end of the turn; the WAL thread covers every batch queued
//! meanwhile with one fsync and reports the last sync id back (group commit).

use crate::address_book::{AddressBook, MemberAddress};
use crate::config::NodeConfig;
use crate::metrics::Metrics;
use crate::storage::{StorageEvent, WriteBatch};
use crate::transport::Transport;
use raft_sm::kv::{ApplyResult, Command, KvStore, Op, Query, QueryOutput};
use raft_sm::{
    Entry, Event, Host, LogIndex, NodeId, Note, Observer, Output, PersistId, ProposalAnswer, ReadOutcome, Rejection,
    Role, Term,
};
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};

/// Names and client URLs of the cluster's nodes, shared by the driver and the
/// HTTP handlers. Peers announce their client URL in a header of every Raft
/// request, which overrides the one derived from configuration.
pub struct Directory {
    /// The node's configuration.
    pub config: NodeConfig,
    /// Every member's name and URLs, following the configuration in effect.
    pub book: Arc<AddressBook>,
    learned: Mutex<HashMap<NodeId, String>>,
    /// The state machine's revision after each turn of the driver: watch
    /// streams wait on it instead of polling.
    pub revision: tokio::sync::watch::Sender<u64>,
}

impl Directory {
    /// A directory for `config`.
    pub fn new(config: NodeConfig) -> Directory {
        let mut seeds: Vec<MemberAddress> = config.peers.iter().map(MemberAddress::of_peer).collect();
        seeds.push(config.self_address());
        let book = Arc::new(AddressBook::new(seeds));
        Directory { config, book, learned: Mutex::new(HashMap::new()), revision: tokio::sync::watch::Sender::new(0) }
    }

    /// The name of `id` (or its number if it is not a member).
    pub fn name(&self, id: NodeId) -> String {
        match self.book.get(id) {
            Some(address) => address.name,
            None => self.config.name_of(id).map(str::to_owned).unwrap_or_else(|| id.to_string()),
        }
    }

    /// The client URL of `id`, if known.
    pub fn client_url(&self, id: NodeId) -> Option<String> {
        if id == self.config.id {
            return Some(self.config.client_url.clone());
        }
        if let Some(url) = self.learned.lock().expect("not poisoned").get(&id) {
            return Some(url.clone());
        }
        if let Some(address) = self.book.get(id).filter(|address| !address.client_url.is_empty()) {
            return Some(address.client_url);
        }
        self.config
            .peers
            .iter()
            .find(|peer| peer.id == id)
            .map(|peer| peer.client_url.clone())
            .filter(|url| !url.is_empty())
    }

    /// Records the client URL a peer announced.
    pub fn learn(&self, id: NodeId, client_url: &str) {
        let mut learned = self.learned.lock().expect("not poisoned");
        if learned.get(&id).map(String::as_str) != Some(client_url) {
            learned.insert(id, client_url.to_owned());
        }
    }
}

/// The answer to a write.
#[derive(Debug)]
pub enum WriteReply {
    /// Committed and applied with this result, at this index.
    Applied(ApplyResult, LogIndex),
    /// Not accepted; nothing happened.
    Rejected(Rejection),
    /// Accepted, then leadership was lost: it may or may not commit.
    Unknown,
    /// Not accepted: this node's disk is full (it acknowledges no writes).
    DiskFull,
}

/// The answer to a read.
#[derive(Debug)]
pub enum ReadReply {
    /// The state machine's answer.
    Answer(QueryOutput),
    /// Not served.
    Rejected(Rejection),
    /// Leadership changed while the read waited; retry.
    Dropped,
}

/// A follower's replication state, on the leader.
#[derive(Clone, Debug, serde::Serialize)]
pub struct PeerProgress {
    /// The follower.
    pub id: String,
    /// Highest index known replicated on it.
    pub match_index: u64,
    /// Next index to send it.
    pub next_index: u64,
}

/// What the status endpoints show.
#[derive(Clone, Debug)]
pub struct StatusView {
    /// Role.
    pub role: Role,
    /// Term.
    pub term: Term,
    /// Leader, if known.
    pub leader: Option<NodeId>,
    /// Commit index.
    pub commit_index: LogIndex,
    /// Applied index.
    pub applied_index: LogIndex,
    /// Last log index and term.
    pub last_log: (LogIndex, Term),
    /// Snapshot base index and term.
    pub log_base: (LogIndex, Term),
    /// Entries in memory after the base.
    pub log_len: usize,
    /// Milliseconds since the leader was last heard (0 on the leader itself).
    pub last_heartbeat_ago_ms: Option<u64>,
    /// The leader's view of its followers.
    pub progress: Vec<PeerProgress>,
    /// Keys in the state machine.
    pub keys: usize,
    /// The configuration in effect.
    pub membership: raft_sm::Membership,
    /// Whether a membership change is in flight (uncommitted or joint).
    pub change_in_progress: bool,
    /// On the leader, per follower: match index and ms since it last answered.
    pub contacts: Vec<(NodeId, LogIndex, Option<u64>)>,
}

/// Requests to the driver.
pub enum Input {
    /// Messages from a peer.
    Messages(Vec<raft_sm::Message>),
    /// A client write.
    Propose {
        /// The command.
        command: Command,
        /// Where the answer goes.
        reply: oneshot::Sender<WriteReply>,
    },
    /// A linearizable read.
    Read {
        /// What to read.
        query: Query,
        /// Where the answer goes.
        reply: oneshot::Sender<ReadReply>,
    },
    /// A local (possibly stale) read.
    StaleRead {
        /// What to read.
        query: Query,
        /// Where the answer goes.
        reply: oneshot::Sender<ReadReply>,
    },
    /// A status snapshot.
    Status {
        /// Where the answer goes.
        reply: oneshot::Sender<StatusView>,
    },
    /// A membership change (`context`: the added member's addresses).
    ChangeMembership {
        /// The change.
        change: raft_sm::MembershipChange,
        /// For `AddLearner`: the new member's context.
        context: Option<Vec<u8>>,
        /// Where the answer goes (applied once the configuration commits).
        reply: oneshot::Sender<WriteReply>,
    },
    /// Hand leadership to the most up-to-date follower (before shutting down).
    TransferLeadership,
    /// Stop the loop.
    Stop,
}

/// The driver's state: the host, and where its outputs go.
pub struct Driver {
    /// The node's data directory (snapshot files are read and staged there).
    data_dir: std::path::PathBuf,
    host: Host<KvStore>,
    directory: Arc<Directory>,
    metrics: Arc<Metrics>,
    transport: Transport,
    storage: std::sync::mpsc::Sender<WriteBatch>,
    batch: WriteBatch,
    started: Instant,
    next_id: u64,
    /// Where each proposal's answer goes, by the driver's id.
    proposals: HashMap<u64, oneshot::Sender<WriteReply>>,
    reads: HashMap<u64, (Query, oneshot::Sender<ReadReply>)>,
    events: VecDeque<Event>,
    known_leader: Option<NodeId>,
    /// Syncs handed to the WAL thread and when, oldest first (for the round-trip metric).
    syncs_in_flight: VecDeque<(PersistId, Instant)>,
    /// The WAL thread reports the disk full: refuse writes, hand leadership over.
    disk_full: bool,
}

/// Logs each applied entry at debug level (`[apply]` lines).
struct ApplyLog;

impl Observer<Option<ApplyResult>> for ApplyLog {
    fn on_apply(&mut self, entry: &Entry, _result: &Option<ApplyResult>) {
        if tracing::enabled!(tracing::Level::DEBUG) {
            log_apply(entry);
        }
    }
}

impl Driver {
    /// A driver for a node rebuilt from disk.
    pub fn new(
        host: Host<KvStore>,
        directory: Arc<Directory>,
        metrics: Arc<Metrics>,
        transport: Transport,
        storage: std::sync::mpsc::Sender<WriteBatch>,
        data_dir: std::path::PathBuf,
    ) -> Driver {
        directory.book.update(host.node().membership());
        Driver {
            data_dir,
            host,
            directory,
            metrics,
            transport,
            storage,
            batch: WriteBatch::default(),
            started: Instant::now(),
            next_id: 1,
            proposals: HashMap::new(),
            reads: HashMap::new(),
            events: VecDeque::new(),
            known_leader: None,
            syncs_in_flight: VecDeque::new(),
            disk_full: false,
        }
    }

    fn now_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    /// Runs until `Input::Stop` or until every input sender is gone.
    pub async fn run(
        mut self,
        mut inputs: mpsc::Receiver<Input>,
        mut persisted: mpsc::UnboundedReceiver<StorageEvent>,
    ) {
        let now_ms = self.now_ms();
        self.host.start_with(now_ms, &mut ApplyLog);
        self.execute_outputs();
        self.end_turn();
        let sleep = tokio::time::sleep(Duration::from_secs(3600));
        tokio::pin!(sleep);
        let mut armed_at: Option<u64> = None;
        let mut housekeeping = tokio::time::interval(Duration::from_secs(1));
        loop {
            let earliest = self.host.next_deadline_ms();
            if earliest != armed_at {
                armed_at = earliest;
                if let Some(deadline_ms) = earliest {
                    sleep.as_mut().reset((self.started + Duration::from_millis(deadline_ms)).into());
                }
            }
            tokio::select! {
                Some(event) = persisted.recv() => self.on_storage(event, &mut persisted),
                input = inputs.recv() => match input {
                    Some(Input::Stop) | None => break,
                    Some(input) => self.on_input(input),
                },
                () = &mut sleep, if armed_at.is_some() => self.fire_timers(),
                _ = housekeeping.tick() => self.sweep_abandoned(),
            }
            // Drain what else is already queued: one turn, one batch, one fsync.
            for _ in 0..1024 {
                match inputs.try_recv() {
                    Ok(Input::Stop) => return self.end_turn(),
                    Ok(input @ (Input::Status { .. } | Input::StaleRead { .. })) => {
                        // Answer after the events queued before it took effect.
                        self.step_pending();
                        self.on_input(input);
                    }
                    Ok(input) => self.on_input(input),
                    Err(_) => break,
                }
            }
            if let Ok(event) = persisted.try_recv() {
                self.on_storage(event, &mut persisted);
            }
            self.end_turn();
        }
        self.end_turn();
    }

    /// What the WAL thread reported: syncs done (only the last counts) and
    /// snapshots the node took that are now durable.
    fn on_storage(&mut self, first: StorageEvent, more: &mut mpsc::UnboundedReceiver<StorageEvent>) {
        let mut last_sync = None;
        let mut event = Some(first);
        while let Some(current) = event.take().or_else(|| more.try_recv().ok()) {
            match current {
                StorageEvent::Persisted(id) => last_sync = last_sync.max(Some(id)),
                StorageEvent::SnapshotPersisted(index) => self.step(Event::SnapshotPersisted { index }),
                StorageEvent::DiskFull(full) => {
                    self.disk_full = full;
                    if full {
                        self.step_pending();
                        self.transfer_leadership("the disk is full");
                    }
                }
            }
        }
        let Some(last) = last_sync else {
            return;
        };
        let now = Instant::now();
        while self.syncs_in_flight.front().is_some_and(|&(id, _)| id <= last) {
            let (_, sent_at) = self.syncs_in_flight.pop_front().expect("checked");
            self.metrics.sync_roundtrip_seconds.observe(now - sent_at);
        }
        self.step(Event::Persisted { id: last });
    }

    fn end_turn(&mut self) {
        self.step_pending();
        if !self.batch.ops.is_empty() || self.batch.sync.is_some() {
            let batch = std::mem::take(&mut self.batch);
            if let Some(id) = batch.sync {
                self.syncs_in_flight.push_back((id, Instant::now()));
            }
            if self.storage.send(batch).is_err() {
                tracing::error!("the WAL thread is gone; stopping");
                std::process::exit(1);
            }
        }
        let node = self.host.node();
        let role = match node.role() {
            Role::Follower => 0,
            Role::PreCandidate => 1,
            Role::Candidate => 2,
            Role::Leader => 3,
        };
        self.metrics.role.set(role);
        self.metrics.term.set(node.term().0);
        self.metrics.commit_index.set(node.commit_index().0);
        self.metrics.applied_index.set(node.applied_index().0);
        let revision = self.host.state_machine().revision();
        self.directory.revision.send_if_modified(|seen| std::mem::replace(seen, revision) != revision);
    }

    fn fire_timers(&mut self) {
        self.step_pending();
        let now_ms = self.now_ms();
        self.host.handle_timeout_with(now_ms, &mut ApplyLog);
        self.execute_outputs();
    }

    fn sweep_abandoned(&mut self) {
        self.reads.retain(|_, (_, reply)| !reply.is_closed());
        self.metrics
            .set_followers(&self.status().contacts, self.host.node().last_log_index(), |id| self.directory.name(id));
        if self.disk_full {
            self.step_pending();
            self.transfer_leadership("the disk is full");
        }
    }

    /// A leader hands leadership to its most up-to-date follower.
    fn transfer_leadership(&mut self, why: &str) {
        if self.host.node().role() != Role::Leader {
            return;
        }
        let best = self.host.node().replication_progress().into_iter().max_by_key(|&(_, match_index, _)| match_index);
        if let Some((to, _, _)) = best {
            tracing::info!(to = %self.directory.name(to), "transferring leadership: {why}");
            self.step(Event::TransferLeadership { to });
        }
    }

    fn on_input(&mut self, input: Input) {
        match input {
            Input::Messages(messages) => {
                for message in messages {
                    self.metrics.messages_received.inc();
                    self.step(Event::Message(message));
                }
            }
            Input::Propose { reply, .. } if self.disk_full => {
                let _ = reply.send(WriteReply::DiskFull);
            }
            Input::Propose { command, reply } => {
                let id = self.next_id;
                self.next_id += 1;
                self.metrics.proposals.inc();
                self.proposals.insert(id, reply);
                self.step(Event::Propose { id, command: command.encode() });
            }
            Input::Read { query, reply } => {
                let id = self.next_id;
                self.next_id += 1;
                self.metrics.reads.inc();
                self.reads.insert(id, (query, reply));
                self.step(Event::Read { id });
            }
            Input::StaleRead { query, reply } => {
                let _ = reply.send(ReadReply::Answer(self.host.state_machine().query(&query)));
            }
            Input::Status { reply } => {
                let _ = reply.send(self.status());
            }
            Input::ChangeMembership { change, context, reply } => {
                let id = self.next_id;
                self.next_id += 1;
                self.proposals.insert(id, reply);
                let event = match (change, context) {
                    (raft_sm::MembershipChange::AddLearner(member), Some(context)) => {
                        Event::AddMember { id, member, context }
                    }
                    (change, _) => Event::ChangeMembership { id, change },
                };
                self.step(event);
            }
            Input::TransferLeadership => self.transfer_leadership("shutting down"),
            Input::Stop => unreachable!("handled by the loop"),
        }
    }

    fn status(&self) -> StatusView {
        let now = self.now_ms();
        let node = self.host.node();
        let last_heartbeat_ago_ms = if node.role() == Role::Leader {
            Some(0)
        } else {
            node.leader_contact_ms().map(|at| now.saturating_sub(at))
        };
        StatusView {
            role: node.role(),
            term: node.term(),
            leader: node.leader(),
            commit_index: node.commit_index(),
            applied_index: node.applied_index(),
            last_log: (node.last_log_index(), node.last_log_term()),
            log_base: node.log_base(),
            log_len: node.log_len(),
            last_heartbeat_ago_ms,
            progress: node
                .replication_progress()
                .into_iter()
                .map(|(id, match_index, next_index)| PeerProgress {
                    id: self.directory.name(id),
                    match_index: match_index.0,
                    next_index: next_index.0,
                })
                .collect(),
            keys: self.host.state_machine().len(),
            membership: node.membership().clone(),
            change_in_progress: node.membership_change_in_progress(),
            contacts: {
                let matched: HashMap<NodeId, LogIndex> =
                    node.replication_progress().into_iter().map(|(id, match_index, _)| (id, match_index)).collect();
                node.follower_contact_ms()
                    .into_iter()
                    .map(|(id, at)| (id, matched[&id], at.map(|at| now.saturating_sub(at))))
                    .collect()
            },
        }
    }

    /// Queues an event for the turn's batch.
    fn step(&mut self, event: Event) {
        self.events.push_back(event);
    }

    /// Steps every queued event as one batch (one sync, one append per
    /// follower) and carries out the host's outputs.
    fn step_pending(&mut self) {
        if !self.events.is_empty() {
            let events: Vec<Event> = self.events.drain(..).collect();
            let now_ms = self.now_ms();
            self.host.step_batch_with(now_ms, events, &mut ApplyLog);
            self.execute_outputs();
        }
        let leader = self.host.node().leader();
        if leader != self.known_leader {
            self.known_leader = leader;
            if let Some(leader) = leader {
                self.metrics.leader_changes.inc();
                tracing::info!("LEADER is {} term={}", self.directory.name(leader), self.host.node().term().0);
            }
        }
    }

    /// Carries out the host's outputs, in order.
    fn execute_outputs(&mut self) {
        while let Some(output) = self.host.poll_output() {
            match output {
                Output::Write(write) => self.batch.ops.push(write),
                Output::Sync(id) => self.batch.sync = Some(id),
                Output::Send(message) => self.transport.send(message),
                Output::TakeSnapshot => self.take_snapshot(),
                Output::RestoreSnapshot(meta) => self.restore_snapshot(&meta),
                Output::SendSnapshotChunk(chunk) => {
                    let (index, offset, len) = (chunk.last_index(), chunk.offset(), chunk.len());
                    match crate::snapshot_file::read_chunk(&self.data_dir, index, offset, len) {
                        Ok(Some(data)) => self.transport.send(chunk.with_data(data)),
                        // Not durable yet (or replaced): the leader retries on its heartbeat.
                        Ok(None) => {}
                        Err(error) => tracing::warn!(%error, index = index.0, "reading a snapshot chunk failed"),
                    }
                }
                Output::Proposal { id, answer } => self.answer_proposal(id, answer),
                Output::Read { id, outcome } => {
                    let Some((query, sender)) = self.reads.remove(&id) else {
                        continue; // The client gave up.
                    };
                    let reply = match outcome {
                        ReadOutcome::Ready { .. } => ReadReply::Answer(self.host.state_machine().query(&query)),
                        ReadOutcome::Rejected(rejection) => ReadReply::Rejected(rejection),
                        ReadOutcome::Dropped => ReadReply::Dropped,
                    };
                    let _ = sender.send(reply);
                }
                Output::Note(Note::MembershipChanged { index, membership }) => {
                    // In effect when appended (the core's rule): dial new members, drop removed ones.
                    self.directory.book.update(&membership);
                    self.transport.retain(&self.directory.book.members());
                    let names =
                        |ids: &[NodeId]| ids.iter().map(|&id| self.directory.name(id)).collect::<Vec<_>>().join(",");
                    let (voters, learners) = (names(&membership.voters), names(&membership.learners));
                    let outgoing = names(&membership.outgoing);
                    tracing::info!(
                        "MEMBERSHIP index={} voters=({voters}) learners=({learners}) outgoing=({outgoing})",
                        index.0
                    );
                }
                Output::Note(note) => self.log_note(note),
                other => tracing::warn!(?other, "an output this driver does not know"),
            }
        }
    }

    /// Streams the state machine's image into a staged file (no fsync: the WAL
    /// thread's snapshot thread makes it the snapshot after its `SaveSnapshot`).
    fn take_snapshot(&mut self) {
        let now_ms = self.now_ms();
        let staging = self.data_dir.join("snapshot.staging");
        let taken = crate::snapshot_file::ImageFile::create(staging.clone()).and_then(|mut file| {
            let meta = self.host.take_snapshot_with(now_ms, &mut file, &mut ApplyLog);
            drop(file);
            meta
        });
        match taken {
            Ok(Some(meta)) => {
                let staged = crate::snapshot_file::staged_path(&self.data_dir, meta.last_index);
                if let Err(error) = std::fs::rename(&staging, staged) {
                    tracing::error!(%error, "cannot stage the snapshot image; stopping");
                    std::process::exit(1);
                }
            }
            Ok(None) => drop(std::fs::remove_file(&staging)),
            Err(error) => {
                tracing::warn!(%error, "taking a snapshot failed; the core asks again later");
                let _ = std::fs::remove_file(&staging);
            }
        }
    }

    /// The snapshot installed from the leader is durable: rebuild the state
    /// machine from its file. A file that does not restore is fatal (fail-stop).
    fn restore_snapshot(&mut self, meta: &raft_sm::SnapshotMeta) {
        let now_ms = self.now_ms();
        let restored = crate::storage::snapshot_image(&self.data_dir, meta.last_index)
            .map_err(|error| error.to_string())
            .and_then(|mut image| {
                self.host.restore_snapshot_with(now_ms, &mut image, &mut ApplyLog).map_err(|error| error.to_string())
            });
        if let Err(error) = restored {
            tracing::error!(%error, index = meta.last_index.0, "cannot restore the installed snapshot; stopping");
            std::process::exit(1);
        }
    }

    fn answer_proposal(&mut self, id: u64, answer: ProposalAnswer<Option<ApplyResult>>) {
        let reply = match answer {
            ProposalAnswer::Accepted { .. } => return, // The result follows when it applies.
            ProposalAnswer::Applied { index, output } => {
                self.metrics.proposals_committed.inc();
                let noop = || ApplyResult { result: Ok(()), duplicate: false, output: Default::default() };
                WriteReply::Applied(output.unwrap_or_else(noop), index)
            }
            ProposalAnswer::Rejected(rejection) => {
                self.metrics.proposals_failed.inc();
                WriteReply::Rejected(rejection)
            }
            ProposalAnswer::Dropped => {
                self.metrics.proposals_failed.inc();
                WriteReply::Unknown
            }
            other => {
                tracing::warn!(?other, "an answer this driver does not know");
                WriteReply::Unknown
            }
        };
        if let Some(sender) = self.proposals.remove(&id) {
            let _ = sender.send(reply);
        }
    }

    fn log_note(&self, note: Note) {
        let name = |id: NodeId| self.directory.name(id);
        match note {
            Note::PreVoteStarted { term } => tracing::info!("PREVOTE start term={}", term.0),
            Note::ElectionStarted { term } => {
                self.metrics.elections.inc();
                tracing::info!("ELECTION start term={}", term.0);
            }
            Note::VoteReceived { from, granted, voters, pre_vote } => {
                if pre_vote {
                    tracing::info!("PREVOTE from {} votes={granted}/{voters}", name(from));
                } else {
                    let term = self.host.node().term().0;
                    tracing::info!("VOTE from {} votes={granted}/{voters} term={term}", name(from));
                }
            }
            Note::VoteRejected { candidate, pre_vote, reason } => {
                let kind = if pre_vote { "prevote" } else { "vote" };
                tracing::info!("{kind} refused to {}: {reason}", name(candidate));
            }
            Note::BecameLeader { term } => tracing::info!("LEADER term={}", term.0),
            Note::SteppedDown { term, reason } => {
                tracing::info!("STEPDOWN term={} reason={reason}", term.0)
            }
            Note::Truncated { from, count } => {
                tracing::info!("TRUNCATE log from index={} entries={count}", from.0)
            }
            Note::SnapshotTaken { index } => tracing::info!("SNAPSHOT taken index={}", index.0),
            Note::SnapshotSent { to, index } => {
                tracing::info!("SNAPSHOT sending index={} to {}", index.0, name(to))
            }
            Note::SnapshotInstalled { index } => {
                tracing::info!("SNAPSHOT installed index={}", index.0)
            }
            Note::ReadServed { .. } => {}
            Note::ProposalDropped => tracing::debug!("proposal dropped: leadership lost"),
            Note::TransferStarted { to } => {
                tracing::info!("TRANSFER leadership to {}", name(to))
            }
            Note::TransferAborted { to } => {
                tracing::warn!("TRANSFER to {} timed out", name(to))
            }
            Note::TermLimit { from: Some(from), term } => {
                tracing::warn!("TERM {} from {} refused: beyond the term limit", term.0, name(from))
            }
            Note::TermLimit { from: None, term } => tracing::error!("ELECTION refused: term {} is the last", term.0),
            other => tracing::info!(?other, "core note"),
        }
    }
}

fn log_apply(entry: &raft_sm::Entry) {
    match &entry.payload {
        raft_sm::Payload::Noop => tracing::debug!("[apply] index={} op=noop", entry.index.0),
        raft_sm::Payload::Membership(membership) => {
            tracing::info!("[apply] index={} op=membership {membership}", entry.index.0)
        }
        raft_sm::Payload::Command(bytes) => match Command::decode(bytes) {
            Ok(command) => match &command.op {
                Op::Set { key, value } => {
                    tracing::debug!("[apply] index={} op=set key={key} value_bytes={}", entry.index.0, value.len())
                }
                Op::Delete { key } => {
                    tracing::debug!("[apply] index={} op=delete key={key}", entry.index.0)
                }
                other => tracing::debug!("[apply] index={} op={other:?}", entry.index.0),
            },
            Err(error) => tracing::debug!("[apply] index={} undecodable: {error}", entry.index.0),
        },
    }
}
