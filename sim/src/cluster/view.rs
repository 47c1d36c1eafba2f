//! What scenario authors hold and get back: role-relative handles, answers
//! to harness requests, read-only node views and run summaries.

use crate::counters::Counters;
use crate::node_host::NodeHost;
use raft_sm::kv::KvError;
use raft_sm::{Entry, LogIndex, Node, NodeId, Rejection, Role, Term};

/// Which node a harness call is about: by role or by id.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Who {
    /// The current leader (panics if there is none).
    Leader,
    /// The n-th running follower in id order (0-based).
    Follower(usize),
    /// A node by id.
    Id(NodeId),
}

impl From<NodeId> for Who {
    fn from(id: NodeId) -> Who {
        Who::Id(id)
    }
}

impl From<u64> for Who {
    fn from(id: u64) -> Who {
        Who::Id(NodeId(id))
    }
}

/// How a harness read is served.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Consistency {
    /// ReadIndex through the core (`Event::Read`), like a client Get.
    Linearizable,
    /// Straight from the node's store, now (may be stale).
    Local,
}

/// The end of a harness read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReadAnswer {
    /// The value (`None`: not found).
    Value(Option<String>),
    /// Refused by the node.
    Rejected(Rejection),
    /// Dropped by the node (leadership changed).
    Dropped,
    /// No answer within the limit.
    TimedOut,
}

/// The end of a harness write.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WriteAnswer {
    /// Applied on the proposing node with this result.
    Applied(Result<(), KvError>),
    /// Refused by the node.
    Rejected(Rejection),
    /// Dropped (outcome unknown).
    Dropped,
    /// Not applied within the limit.
    TimedOut,
}

/// A read-only view of one node.
pub struct NodeView<'a> {
    pub(super) host: &'a NodeHost,
}

impl<'a> NodeView<'a> {
    /// The id.
    pub fn id(&self) -> NodeId {
        self.host.id
    }
    /// Whether the process runs (not crashed).
    pub fn is_up(&self) -> bool {
        self.host.is_up()
    }
    /// Whether the node is paused.
    pub fn is_paused(&self) -> bool {
        self.host.paused
    }
    /// The core, while running.
    pub fn core(&self) -> Option<&'a Node> {
        self.host.node()
    }
    /// The current term (0 while crashed).
    pub fn term(&self) -> Term {
        self.core().map_or(Term(0), Node::term)
    }
    /// The role (`None` while crashed).
    pub fn role(&self) -> Option<Role> {
        self.core().map(Node::role)
    }
    /// The leader this node knows.
    pub fn leader(&self) -> Option<NodeId> {
        self.core().and_then(Node::leader)
    }
    /// The commit index (0 while crashed).
    pub fn commit_index(&self) -> LogIndex {
        self.core().map_or(LogIndex(0), Node::commit_index)
    }
    /// The store's applied index.
    pub fn applied_index(&self) -> LogIndex {
        self.host.kv().applied_index()
    }
    /// The last log index (0 while crashed).
    pub fn last_log_index(&self) -> LogIndex {
        self.core().map_or(LogIndex(0), Node::last_log_index)
    }
    /// Every entry this node ever applied (across restarts), in index order.
    /// Entries a snapshot brought in are not listed.
    pub fn applied_entries(&self) -> Vec<&'a Entry> {
        self.host.applied.values().collect()
    }
    /// The highest index this node's store reached, by applying entries or by
    /// installing a snapshot from the leader, across restarts (crashed nodes too).
    pub fn applied_through(&self) -> LogIndex {
        let by_entries = self.host.applied.keys().next_back().copied().unwrap_or(LogIndex(0));
        let by_snapshots = self.host.installed_snapshots.iter().max().copied().unwrap_or(LogIndex(0));
        by_entries.max(by_snapshots)
    }
    /// The last indexes of the snapshots installed from the leader, in order.
    pub fn installed_snapshots(&self) -> &'a [LogIndex] {
        &self.host.installed_snapshots
    }
    /// The store's pairs, sorted by key.
    pub fn kv_pairs(&self) -> Vec<(String, String)> {
        self.host.kv().sorted_pairs()
    }
    /// The store's value at `key`.
    pub fn kv_get(&self, key: &str) -> Option<String> {
        self.host.kv().get(key).ok().map(str::to_string)
    }
    /// The durable hard state on disk.
    pub fn durable_hard_state(&self) -> raft_sm::HardState {
        self.host.disk.durable().hard_state
    }
    /// Everything on disk: hard state, snapshot, log records.
    pub fn durable(&self) -> &'a crate::disk::DurableImage {
        self.host.disk.durable()
    }
    /// The last index of the snapshot on disk (0 if none).
    pub fn durable_snapshot_index(&self) -> LogIndex {
        self.durable().snapshot.as_ref().map_or(LogIndex(0), |snapshot| snapshot.meta.last_index)
    }
    /// What the node read back from its disk when it last booted.
    pub fn boot_image(&self) -> crate::node_host::BootImage {
        self.host.boot_image
    }
    /// Snapshots the node took itself that are not durable yet.
    pub fn snapshots_pending(&self) -> u64 {
        self.host.disk.snapshots_pending()
    }
}

/// What a finished run reports.
#[derive(Clone, Debug)]
pub struct RunSummary {
    /// The seed.
    pub seed: u64,
    /// Events processed.
    pub events: u64,
    /// Virtual time at the end.
    pub sim_ms: u64,
    /// The trace hash (0 when trace hashing is off).
    pub trace_hash: u64,
    /// Coverage counters.
    pub counters: Counters,
    /// Client operations, with definite and unknown outcomes.
    pub ops_completed: usize,
    /// Client operations with unknown outcome.
    pub ops_unknown: usize,
}
