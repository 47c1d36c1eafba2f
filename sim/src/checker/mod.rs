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
pub mod by_index;
pub mod durability;
pub mod election;
pub mod lease;
pub mod log;
pub mod progress;
pub mod watch;

use crate::node_host::NodeHost;
use log::EntryDigest;
use raft_sm::{Message, NodeId, Term};
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

/// Where in a run something happened: virtual time and the event's number.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Step {
    /// Virtual milliseconds.
    pub at_ms: u64,
    /// The event's number in the run (1 is the first).
    pub event: u64,
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ms (event #{})", self.at_ms, self.event)
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
    /// The step being checked (set by the cluster before each node step's effects).
    pub step: Step,
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
    pub fn on_append(
        &mut self,
        node: NodeId,
        entries: &[EntryDigest],
        prev_term: Option<Term>,
    ) -> Result<(), Violation> {
        self.log.observe_append_digests(node, entries.iter().copied(), prev_term, self.step)
    }

    /// `node`, in `current_term`, applied `entry`. A state-machine-safety
    /// violation names the first divergent step of the two nodes' logs.
    pub fn on_apply(&mut self, node: NodeId, current_term: Term, entry: EntryDigest) -> Result<(), Violation> {
        if let Err((mut violation, first)) = self.apply.observe_digest(node, entry, self.step) {
            if let Some(divergence) = self.log.first_divergence(node, first) {
                violation.detail += &format!("; {divergence}");
            }
            return Err(violation);
        }
        self.log.observe_committed_by(node, entry.index, entry.term, current_term)
    }

    /// `host` put `message` on the wire.
    pub fn on_send(&mut self, host: &NodeHost, message: &Message) -> Result<(), Violation> {
        self.election.observe_vote(message)?;
        durability::check_send(host, message)
    }
}
