//! Watchers and the watch checker.
//!
//! **Watchers** model `GET /watch` clients: each watches a prefix from a start
//! revision and, every few tens of milliseconds, reads the next batch from one
//! node's history window ([`raft_sm::kv::KvStore::watch`], what the node's
//! handler serves: a local read of applied changes). Now and then — and
//! whenever its node is down or paused — a watcher reconnects to another node
//! and resumes from the revision after the last one it was sent, so streams
//! cross leader changes, crashes, restarts and snapshot installs. A
//! `compacted` answer is legal (the start fell below that node's window): the
//! watcher then starts a new stream from that node's current revision + 1.
//!
//! **The check**, on every batch: for every revision `r` in `[start,
//! next_revision)` of the batch, the events the watcher got for `r` equal the
//! committed changes of `r` that match its prefix, in order. The committed
//! changes come from [`raft_sm::kv::Applied::events`] of every applied entry
//! (the first node to apply an index records them; every later apply of that
//! index must produce the same events). So a watcher's stream, across all its
//! reconnects, is exactly the committed change sequence from its start: no
//! gap, no duplicate, no reordering, no event that never committed.

use super::Violation;
use crate::node_host::NodeHost;
use crate::rng::SimRng;
use raft_sm::kv::{ApplyResult, KeyRange, SharedEvent, WatchEvent, WatchRequest};
use raft_sm::{LogIndex, NodeId};
use std::collections::BTreeMap;

/// Events a watcher reads per poll (small, so batches are cut mid-stream).
const EVENTS_PER_POLL_MAX: usize = 32;

#[derive(Clone, Debug)]
struct Watcher {
    prefix: String,
    node: NodeId,
    /// The next revision it wants.
    next: u64,
    /// Streams it started (1 + compacted restarts).
    streams: u64,
}

/// What the watchers saw, for counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WatchStats {
    /// Events delivered to watchers.
    pub events: u64,
    /// Reconnects to another node.
    pub reconnects: u64,
    /// Streams restarted after a `compacted` answer.
    pub compacted: u64,
}

/// The watchers and the committed change sequence they are checked against.
pub struct Watchers {
    watchers: Vec<Watcher>,
    rng: SimRng,
    /// Revision → the committed events of that revision, and the index of the
    /// entry that made it.
    committed: BTreeMap<u64, (LogIndex, Vec<SharedEvent>)>,
    /// Counters.
    pub stats: WatchStats,
}

impl Watchers {
    /// `count` watchers over `nodes`, starting from revision 1.
    pub fn new(count: usize, nodes: &[NodeId], mut rng: SimRng) -> Watchers {
        let prefixes = ["", "k", "k1", "lease/"];
        let watchers = (0..count)
            .map(|n| Watcher {
                prefix: prefixes[n % prefixes.len()].to_owned(),
                node: *rng.pick(nodes),
                next: 1,
                streams: 1,
            })
            .collect();
        Watchers { watchers, rng, committed: BTreeMap::new(), stats: WatchStats::default() }
    }

    /// How many watchers.
    pub fn len(&self) -> usize {
        self.watchers.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.watchers.is_empty()
    }

    /// The delay before a watcher's next poll.
    pub fn poll_gap_ms(&mut self) -> u64 {
        self.rng.range(20, 200)
    }

    /// `node` applied the entry at `index` with `result`: record (or compare)
    /// its committed changes.
    pub fn on_apply(&mut self, node: NodeId, index: LogIndex, result: &Option<ApplyResult>) -> Result<(), Violation> {
        let Some(result) = result else {
            return Ok(());
        };
        if result.output.events.is_empty() {
            return Ok(());
        }
        let revision = result.output.revision;
        match self.committed.get(&revision) {
            None => {
                self.committed.insert(revision, (index, result.output.events.clone()));
                Ok(())
            }
            Some((at, events)) if *at == index && *events == result.output.events => Ok(()),
            Some((at, _)) => Err(Violation::new(
                "watch",
                format!(
                    "{node} applied index {} as revision {revision}, which index {} made with other changes",
                    index.0, at.0
                ),
            )),
        }
    }

    /// Watcher `n` polls its node.
    pub fn poll(&mut self, n: usize, hosts: &[NodeHost], nodes: &[NodeId]) -> Result<(), Violation> {
        let host_of = |id: NodeId| &hosts[(id.0 - 1) as usize];
        let reconnect = {
            let watcher = &self.watchers[n];
            let host = host_of(watcher.node);
            !host.is_up() || host.paused || self.rng.chance(0.1)
        };
        if reconnect {
            let node = *self.rng.pick(nodes);
            if node != self.watchers[n].node {
                self.stats.reconnects += 1;
            }
            self.watchers[n].node = node;
        }
        let watcher = &self.watchers[n];
        let host = host_of(watcher.node);
        if !host.is_up() || host.paused {
            return Ok(());
        }
        let request = WatchRequest {
            range: KeyRange::prefix(watcher.prefix.clone()),
            start_revision: watcher.next,
            events_max: EVENTS_PER_POLL_MAX,
        };
        let batch = host.kv().watch(&request);
        if batch.compacted {
            if watcher.next > batch.compact_revision {
                return Err(Violation::new(
                    "watch",
                    format!(
                        "{} answered compacted to a watch from {} with compact revision {}",
                        watcher.node, watcher.next, batch.compact_revision
                    ),
                ));
            }
            self.stats.compacted += 1;
            let watcher = &mut self.watchers[n];
            watcher.next = batch.revision + 1;
            watcher.streams += 1;
            return Ok(());
        }
        if batch.next_revision < watcher.next {
            return Err(Violation::new(
                "watch",
                format!("{} moved a watcher back from {} to {}", watcher.node, watcher.next, batch.next_revision),
            ));
        }
        let mut got: BTreeMap<u64, Vec<&WatchEvent>> = BTreeMap::new();
        let mut last = 0;
        for event in &batch.events {
            let revision = event.revision();
            if revision < last || revision < watcher.next || revision >= batch.next_revision {
                return Err(Violation::new(
                    "watch",
                    format!(
                        "watcher {n} (prefix {:?}) on {} got revision {revision} out of order or outside [{}, {})",
                        watcher.prefix, watcher.node, watcher.next, batch.next_revision
                    ),
                ));
            }
            last = revision;
            got.entry(revision).or_default().push(&**event);
        }
        for revision in watcher.next..batch.next_revision {
            let Some((index, committed)) = self.committed.get(&revision) else {
                return Err(Violation::new(
                    "watch",
                    format!(
                        "watcher {n} on {} was sent through revision {}, but revision {revision} was never applied",
                        watcher.node,
                        batch.next_revision - 1
                    ),
                ));
            };
            let expected: Vec<&WatchEvent> = committed
                .iter()
                .map(|event| &**event)
                .filter(|event| event.kv.key.starts_with(watcher.prefix.as_str()))
                .collect();
            let received = got.remove(&revision).unwrap_or_default();
            if received != expected {
                let keys = |events: &[&WatchEvent]| events.iter().map(|e| e.kv.key.clone()).collect::<Vec<_>>();
                return Err(Violation::new(
                    "watch",
                    format!(
                        "watcher {n} (prefix {:?}, stream {}) on {}: revision {revision} (index {}) sent {:?}, committed {:?} (a gap, a duplicate or an event that never committed)",
                        watcher.prefix,
                        watcher.streams,
                        watcher.node,
                        index.0,
                        keys(&received),
                        keys(&expected)
                    ),
                ));
            }
            self.stats.events += received.len() as u64;
        }
        self.watchers[n].next = batch.next_revision;
        Ok(())
    }
}
