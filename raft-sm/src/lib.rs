//! # raft-sm
//!
//! A pure, deterministic, sans-IO Raft core and the key-value state machine
//! that raftkv replicates with it.
//!
//! The core is [`Node`]: feed it [`Event`]s with [`Node::step`] and execute the
//! [`Action`]s it returns, in order. It does no IO, reads no clock, starts no
//! threads and draws randomness only from a ChaCha RNG seeded by its [`Config`],
//! so the same inputs always give the same outputs. Two drivers run it: the
//! simulator (`sim`), which tests it under faults, and the node (`node`), which
//! runs it on real hosts.
//!
//! It implements elections with randomized timeouts, PreVote and CheckQuorum;
//! replication with batching, pipelining and fast backtracking; the current-term
//! commit rule; snapshots with chunked InstallSnapshot; ReadIndex reads;
//! leadership transfer. [`kv`] is the state machine, with client sessions for
//! exactly-once writes.
//!
//! Drivers run it through [`Host`], which owns the node and a [`StateMachine`]
//! and carries out everything that needs no IO; the driver moves messages,
//! executes the [`Write`]s and reports fsyncs. A three-node cluster in memory,
//! with a disk that is durable at once and a network that delivers in order:
//!
//! ```
//! use raft_sm::kv::{Command, KvStore};
//! use raft_sm::{Config, Event, Host, MemorySnapshots, NodeId, Output, ProposalAnswer, RestoredState, SnapshotOrigin, Write};
//!
//! let voters = vec![NodeId(1), NodeId(2), NodeId(3)];
//! let mut hosts: Vec<Host<KvStore>> = voters
//!     .iter()
//!     .map(|&id| Host::new(Config::new(id, voters.clone()), RestoredState::default(), KvStore::default(), None).unwrap())
//!     .collect();
//! // Where each node keeps its snapshots' bytes (the core holds only their metadata).
//! let mut stores = vec![MemorySnapshots::default(); 3];
//! let mut now_ms = 0;
//! for host in &mut hosts {
//!     host.start(now_ms);
//! }
//!
//! // The driver: carry out every output until the cluster is quiet. Writes would go
//! // to a disk here; this one is durable at once, so each sync is reported back.
//! let mut answers = Vec::new();
//! let mut pump = |hosts: &mut Vec<Host<KvStore>>, now_ms: u64, answers: &mut Vec<(u64, ProposalAnswer<_>)>| loop {
//!     let mut events: Vec<(usize, Event)> = Vec::new();
//!     for (at, (host, store)) in hosts.iter_mut().zip(stores.iter_mut()).enumerate() {
//!         while let Some(output) = host.poll_output() {
//!             match output {
//!                 Output::Send(message) => events.push((message.to.0 as usize - 1, Event::Message(message))),
//!                 Output::Sync(id) => events.push((at, Event::Persisted { id })),
//!                 // Snapshot bytes move between the state machine and the store as streams.
//!                 Output::TakeSnapshot => drop(store.take_snapshot(host, now_ms)),
//!                 Output::RestoreSnapshot(_) => store.restore(host, now_ms),
//!                 Output::SendSnapshotChunk(chunk) => {
//!                     events.extend(store.chunk(chunk).map(|m| (m.to.0 as usize - 1, Event::Message(m))))
//!                 }
//!                 Output::Write(write) => {
//!                     store.write(&write); // (A real disk also keeps the log and the hard state.)
//!                     if let Write::SaveSnapshot { meta, origin: SnapshotOrigin::Taken } = write {
//!                         events.push((at, Event::SnapshotPersisted { index: meta.last_index }))
//!                     }
//!                 }
//!                 Output::Proposal { id, answer } => answers.push((id, answer)),
//!                 _ => {} // Reads, notes.
//!             }
//!         }
//!     }
//!     if events.is_empty() {
//!         return;
//!     }
//!     for (at, event) in events {
//!         hosts[at].step(now_ms, event);
//!     }
//! };
//!
//! // Time passes until the first election timer fires; someone wins.
//! while !hosts.iter().any(|host| host.node().role() == raft_sm::Role::Leader) {
//!     now_ms = hosts.iter().filter_map(Host::next_deadline_ms).min().unwrap();
//!     for host in &mut hosts {
//!         host.handle_timeout(now_ms);
//!     }
//!     pump(&mut hosts, now_ms, &mut answers);
//! }
//! let leader = hosts.iter().position(|host| host.node().role() == raft_sm::Role::Leader).unwrap();
//!
//! // A write on the leader commits on a majority and applies everywhere.
//! hosts[leader].step(now_ms, Event::Propose { id: 7, command: Command::set("color", "blue").encode() });
//! pump(&mut hosts, now_ms, &mut answers);
//! assert!(answers.iter().any(|(id, answer)| *id == 7 && matches!(answer, ProposalAnswer::Applied { .. })));
//! for host in &hosts {
//!     assert_eq!(host.state_machine().get("color"), Ok("blue"));
//! }
//! ```
//!
//! Followers learn the new commit index with the next append; in this pump every
//! message is delivered at once, so all three have applied it.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod codec;
mod config;
mod election;
mod event;
mod host;
pub mod kv;
mod log;
mod membership;
mod memory_store;
mod message;
mod mutants;
mod node;
mod progress;
mod quorum;
mod read;
mod recovery;
mod replication;
mod snapshot;
mod timer;
mod transfer;
mod types;
pub mod wire;
mod write;

pub use config::{Config, ConfigError};
pub use event::{
    Action, Event, Note, PersistId, ProposalOutcome, ReadOutcome, Rejection, StepDownReason, TimerKind, VoteRefusal,
};
pub use host::{Host, HostError, Observer, Output, ProposalAnswer, StateMachine};
pub use membership::{ChangeError, Membership, MembershipChange};
pub use memory_store::MemorySnapshots;
pub use message::{
    AppendEntries, AppendEntriesResponse, Body, InstallSnapshot, InstallSnapshotResponse, Message, ReadIndexRequest,
    ReadIndexResponse, RejectHint, RequestVote, RequestVoteResponse, SnapshotChunkToSend,
};
pub use mutants::Mutant;
pub use node::Node;
pub use recovery::StartError;
pub use types::{Entry, HardState, LogIndex, NodeId, Payload, RestoredState, Role, SnapshotMeta, Term};
pub use write::{SnapshotOrigin, Write};
