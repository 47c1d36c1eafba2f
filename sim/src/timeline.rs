//! What a run looked like over time, for the HTML view (`sim run --html`):
//! each node's role, term, commit and applied index, every message with its
//! fate, and the faults. Recorded only when `SimOptions::record_timeline` is on.

use raft_sm::{NodeId, Role};
use serde::Serialize;

/// A node's state from `at_ms` on (until its next sample).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct StateSample {
    /// When the state began.
    pub at_ms: u64,
    /// The node.
    pub node: u64,
    /// `follower`, `pre-candidate`, `candidate`, `leader`, or `crashed`.
    pub role: String,
    /// Its term.
    pub term: u64,
    /// Its commit index.
    pub commit: u64,
    /// Its store's applied index.
    pub applied: u64,
}

/// One message sent.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct MessageRecord {
    /// When it was sent.
    pub sent_ms: u64,
    /// Sender.
    pub from: u64,
    /// Receiver.
    pub to: u64,
    /// Its kind (`AppendEntries`, `RequestVote`, ...).
    pub kind: String,
    /// When it is delivered (the first copy), or `None` if the network lost it.
    pub deliver_ms: Option<u64>,
}

/// A fault the run injected.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FaultRecord {
    /// When.
    pub at_ms: u64,
    /// The nodes it concerns (empty: the whole network).
    pub nodes: Vec<u64>,
    /// What it was, e.g. `Crash(n2)`.
    pub what: String,
}

/// The recording.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Timeline {
    /// Node ids, in lane order.
    pub nodes: Vec<u64>,
    /// State changes, in time order.
    pub states: Vec<StateSample>,
    /// Messages, in send order.
    pub messages: Vec<MessageRecord>,
    /// Faults, in time order.
    pub faults: Vec<FaultRecord>,
}

impl Timeline {
    /// An empty recording of `nodes`.
    pub fn new(nodes: &[NodeId]) -> Timeline {
        Timeline { nodes: nodes.iter().map(|id| id.0).collect(), ..Timeline::default() }
    }

    /// Records `node`'s state at `at_ms` if it differs from its last sample.
    pub fn sample(&mut self, at_ms: u64, node: NodeId, state: Option<(Role, u64, u64, u64)>) {
        let (role, term, commit, applied) = match state {
            Some((role, term, commit, applied)) => (role.to_string(), term, commit, applied),
            None => ("crashed".to_string(), 0, 0, 0),
        };
        let last = self.states.iter().rev().find(|sample| sample.node == node.0);
        if last.is_some_and(|last| (&last.role, last.term, last.commit, last.applied) == (&role, term, commit, applied))
        {
            return;
        }
        self.states.push(StateSample { at_ms, node: node.0, role, term, commit, applied });
    }

    /// Records a message and its fate.
    pub fn message(&mut self, sent_ms: u64, from: NodeId, to: NodeId, kind: &str, deliver_ms: Option<u64>) {
        self.messages.push(MessageRecord { sent_ms, from: from.0, to: to.0, kind: kind.to_string(), deliver_ms });
    }

    /// Records a fault.
    pub fn fault(&mut self, at_ms: u64, nodes: Vec<NodeId>, what: String) {
        self.faults.push(FaultRecord { at_ms, nodes: nodes.iter().map(|id| id.0).collect(), what });
    }
}
