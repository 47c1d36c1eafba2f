//! Raft safety invariants, checked after every step of every node. One file
//! per family:
//! - [`election`]: at most one leader per term; at most one vote per node and term.
//! - [`log`]: log matching; leader completeness; a committed index never changes.
//! - [`apply`]: state-machine safety (every node applies the same entry at an index).
//! - [`progress`]: commit and match indexes never decrease.
//! - [`durability`]: what a message reveals (a vote, an acknowledged entry) is on disk.
//! - [`watch`]: every watcher's stream is the committed change sequence (with its watchers).
//! - [`lease`]: no lease expires while it was kept alive within its TTL (with its holders).

pub mod apply;
pub mod durability;
pub mod election;
pub mod lease;
pub mod log;
pub mod progress;
pub mod watch;

use crate::node_host::NodeHost;
use raft_sm::{Entry, Message, NodeId, Term};
use std::fmt;

/// A broken safety invariant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    /// The invariant, e.g. "election safety".
    pub invariant: &'static str,
    /// What was seen.
    pub detail: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.invariant, self.detail)
    }
}

impl Violation {
    /// A violation of `invariant`.
    pub fn new(invariant: &'static str, detail: String) -> Violation {
        Violation { invariant, detail }
    }
}

/// Every invariant family, fed by the cluster.
#[derive(Default)]
pub struct Checker {
    /// Leaders and votes.
    pub election: election::ElectionChecker,
    /// Log matching, leader completeness, committed entries.
    pub log: log::LogChecker,
    /// Applied entries.
    pub apply: apply::ApplyChecker,
    /// Monotonic indexes.
    pub progress: progress::ProgressChecker,
}

impl Checker {
    /// After any step of `host` (running).
    pub fn after_step(&mut self, host: &NodeHost) -> Result<(), Violation> {
        let Some(node) = host.node() else {
            return Ok(());
        };
        let became_leader = self.election.observe(node)?;
        self.log.observe_commit(node)?;
        if became_leader {
            self.log.check_leader_completeness(node)?;
        }
        self.progress.observe(host.incarnation, node)?;
        Ok(())
    }

    /// `node` appended `entries` after an entry of `prev_term`.
    pub fn on_append(&mut self, node: NodeId, entries: &[Entry], prev_term: Option<Term>) -> Result<(), Violation> {
        self.log.observe_append(node, entries, prev_term)
    }

    /// `node`, in `current_term`, applied `entry`.
    pub fn on_apply(&mut self, node: NodeId, current_term: Term, entry: &Entry) -> Result<(), Violation> {
        self.apply.observe(node, entry)?;
        self.log.observe_committed_entry(entry.index, entry.term, current_term)
    }

    /// `host` put `message` on the wire.
    pub fn on_send(&mut self, host: &NodeHost, message: &Message) -> Result<(), Violation> {
        self.election.observe_vote(message)?;
        durability::check_send(host, message)
    }
}
