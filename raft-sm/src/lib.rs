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
//! ```
//! use raft_sm::{Action, Config, Node, NodeId, RestoredState, Role, TimerKind, Event};
//!
//! // A single-node cluster elects itself when its election timer fires.
//! let mut node = Node::new(Config::new(NodeId(1), vec![NodeId(1)]), RestoredState::default()).unwrap();
//! let actions = node.start(0);
//! let deadline_ms = actions.iter().find_map(|action| match action {
//!     Action::SetTimer { kind: TimerKind::Election, deadline_ms } => *deadline_ms,
//!     _ => None,
//! }).unwrap();
//! let actions = node.step(deadline_ms, Event::Timer(TimerKind::Election));
//! // It votes for itself, and leads only once that vote is durable.
//! assert_eq!(node.role(), Role::Candidate);
//! let sync = actions.iter().find_map(|action| match action {
//!     Action::Sync { id } => Some(*id),
//!     _ => None,
//! }).unwrap();
//! node.step(deadline_ms, Event::Persisted { id: sync });
//! assert_eq!(node.role(), Role::Leader);
//! ```

#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod codec;
mod config;
mod election;
mod event;
mod host;
pub mod kv;
mod log;
mod message;
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
pub use event::{Action, Event, Note, PersistId, ProposalOutcome, ReadOutcome, Rejection, TimerKind};
pub use host::{Host, HostError, Observer, Output, ProposalAnswer, StateMachine};
pub use message::{
    AppendEntries, AppendEntriesResponse, Body, InstallSnapshot, InstallSnapshotResponse, Message, ReadIndexRequest,
    ReadIndexResponse, RejectHint, RequestVote, RequestVoteResponse,
};
pub use node::Node;
pub use recovery::StartError;
pub use types::{Entry, HardState, LogIndex, NodeId, Payload, RestoredState, Role, Snapshot, Term};
pub use write::{SnapshotOrigin, Write};
