//! The simulated network between nodes: per-link latency, loss, duplication,
//! reordering, and a connectivity matrix for partitions (any split, one-way
//! links, partial connectivity) and heals.
//!
//! Connectivity is checked when a message is sent; messages already in flight
//! when a link goes down still arrive (as on a real network).

use crate::rng::SimRng;
use raft_sm::NodeId;
use std::collections::{BTreeMap, BTreeSet};

/// Latency and fault rates of the network (or of one link).
#[derive(Clone, Debug, PartialEq)]
pub struct NetworkOptions {
    /// Smallest one-way latency.
    pub latency_ms_min: u64,
    /// Largest one-way latency (before reordering delay).
    pub latency_ms_max: u64,
    /// Probability that a message is lost.
    pub loss: f64,
    /// Probability that a message is delivered twice.
    pub duplicate: f64,
    /// Probability that a message is held back by an extra delay (reordering it).
    pub reorder: f64,
    /// Largest extra delay of a reordered message.
    pub reorder_delay_ms_max: u64,
    /// Extra loss probability for replies only (vote and append responses,
    /// read-index answers), on top of `loss`: requests and replies can be lost
    /// at different rates. 0 draws nothing (runs without it are unchanged).
    pub reply_loss: f64,
    /// Extra latency for replies only, in ms (0: none).
    pub reply_delay_ms: u64,
}

impl Default for NetworkOptions {
    fn default() -> Self {
        NetworkOptions {
            latency_ms_min: 1,
            latency_ms_max: 10,
            loss: 0.0,
            duplicate: 0.0,
            reorder: 0.0,
            reorder_delay_ms_max: 50,
            reply_loss: 0.0,
            reply_delay_ms: 0,
        }
    }
}

/// Delivery times of one message: at most [`DeliveryTimes::MAX`], kept inline
/// (a send is the commonest event; a `Vec` here was an allocation per message).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DeliveryTimes {
    times_ms: [u64; DeliveryTimes::MAX],
    len: usize,
}

impl DeliveryTimes {
    /// Most deliveries of one message: a duplicate and the cluster's vote echo.
    pub const MAX: usize = 3;

    /// Adds a delivery at `at_ms`.
    pub fn push(&mut self, at_ms: u64) {
        assert!(self.len < Self::MAX, "at most {} deliveries of one message", Self::MAX);
        self.times_ms[self.len] = at_ms;
        self.len += 1;
    }

    /// Forgets every delivery.
    pub fn clear(&mut self) {
        self.len = 0;
    }

    /// Number of deliveries.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the message is not delivered at all.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The delivery times, in the order they were added.
    pub fn iter(&self) -> std::slice::Iter<'_, u64> {
        self.times_ms[..self.len].iter()
    }
}

/// What happened to one sent message.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SendFate {
    /// Delivery times (empty: not delivered; two: duplicated).
    pub deliver_at_ms: DeliveryTimes,
    /// Dropped because the link is down.
    pub blocked: bool,
    /// Lost at random.
    pub lost: bool,
    /// Delayed past its normal latency.
    pub reordered: bool,
}

/// The network: `nodes` ids `1..=n`, a link matrix and fault rates.
pub struct Network {
    nodes: Vec<NodeId>,
    /// The one-way links `(from, to)` that are cut.
    down: BTreeSet<(NodeId, NodeId)>,
    options: NetworkOptions,
    /// Per-link latency overrides `(min, max)`.
    link_latency_ms: BTreeMap<(NodeId, NodeId), (u64, u64)>,
    rng: SimRng,
}

impl Network {
    /// A fully connected network.
    pub fn new(nodes: Vec<NodeId>, options: NetworkOptions, rng: SimRng) -> Network {
        assert!(options.latency_ms_min <= options.latency_ms_max);
        Network { nodes, down: BTreeSet::new(), options, link_latency_ms: BTreeMap::new(), rng }
    }

    /// The current fault rates.
    pub fn options(&self) -> &NetworkOptions {
        &self.options
    }

    /// Replaces the fault rates (latency, loss, duplication, reordering).
    pub fn set_options(&mut self, options: NetworkOptions) {
        assert!(options.latency_ms_min <= options.latency_ms_max);
        self.options = options;
    }

    /// Sets the latency range of the one-way link `from → to`.
    pub fn set_link_latency(&mut self, from: NodeId, to: NodeId, min_ms: u64, max_ms: u64) {
        assert!(min_ms <= max_ms);
        self.link_latency_ms.insert((from, to), (min_ms, max_ms));
    }

    /// Whether `from` can currently send to `to`.
    pub fn is_connected(&self, from: NodeId, to: NodeId) -> bool {
        !self.down.contains(&(from, to))
    }

    /// Cuts or restores the one-way link `from → to`.
    pub fn set_link(&mut self, from: NodeId, to: NodeId, up: bool) {
        if up {
            self.down.remove(&(from, to));
        } else {
            self.down.insert((from, to));
        }
    }

    /// Cuts or restores both directions between `a` and `b`.
    pub fn set_both(&mut self, a: NodeId, b: NodeId, up: bool) {
        self.set_link(a, b, up);
        self.set_link(b, a, up);
    }

    /// Every link up again (fault rates unchanged).
    pub fn heal(&mut self) {
        self.down.clear();
    }

    /// Splits the cluster: nodes talk only within their group; nodes in no group
    /// are isolated.
    pub fn partition(&mut self, groups: &[Vec<NodeId>]) {
        let group_of = |id: NodeId| groups.iter().position(|group| group.contains(&id));
        self.down.clear();
        let nodes = self.nodes.clone();
        for &from in &nodes {
            for &to in &nodes {
                if from == to {
                    continue;
                }
                let same = matches!((group_of(from), group_of(to)), (Some(a), Some(b)) if a == b);
                if !same {
                    self.set_link(from, to, false);
                }
            }
        }
    }

    /// Cuts `node` off from everyone, both directions.
    pub fn isolate(&mut self, node: NodeId) {
        for peer in self.nodes.clone() {
            if peer != node {
                self.set_both(node, peer, false);
            }
        }
    }

    /// Restores every link of `node`, both directions.
    pub fn connect(&mut self, node: NodeId) {
        for peer in self.nodes.clone() {
            if peer != node {
                self.set_both(node, peer, true);
            }
        }
    }

    /// `node` reaches only `peers` (both directions); its other links are cut.
    pub fn restrict(&mut self, node: NodeId, peers: &[NodeId]) {
        for peer in self.nodes.clone() {
            if peer != node {
                self.set_both(node, peer, peers.contains(&peer));
            }
        }
    }

    /// Number of one-way links currently cut.
    pub fn links_down(&self) -> usize {
        self.down.len()
    }

    /// Decides the fate of one message sent at `now_ms` (`reply`: it answers
    /// a request, for `reply_loss` and `reply_delay_ms`).
    pub fn send(&mut self, now_ms: u64, from: NodeId, to: NodeId, reply: bool) -> SendFate {
        let mut fate = SendFate::default();
        if !self.is_connected(from, to) {
            fate.blocked = true;
            return fate;
        }
        if self.rng.chance(self.options.loss) {
            fate.lost = true;
            return fate;
        }
        if reply && self.options.reply_loss > 0.0 && self.rng.chance(self.options.reply_loss) {
            fate.lost = true;
            return fate;
        }
        let reply_delay_ms = if reply { self.options.reply_delay_ms } else { 0 };
        let copies = if self.rng.chance(self.options.duplicate) { 2 } else { 1 };
        let (min_ms, max_ms) = self
            .link_latency_ms
            .get(&(from, to))
            .copied()
            .unwrap_or((self.options.latency_ms_min, self.options.latency_ms_max));
        for _ in 0..copies {
            let mut latency_ms = self.rng.range(min_ms, max_ms);
            if self.rng.chance(self.options.reorder) {
                latency_ms += self.rng.range(1, self.options.reorder_delay_ms_max.max(1));
                fate.reordered = true;
            }
            fate.deliver_at_ms.push(now_ms + latency_ms + reply_delay_ms);
        }
        fate
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(list: &[u64]) -> Vec<NodeId> {
        list.iter().map(|&id| NodeId(id)).collect()
    }

    fn network() -> Network {
        Network::new(ids(&[1, 2, 3, 4, 5]), NetworkOptions::default(), SimRng::from_seed(1))
    }

    #[test]
    fn partitions_split_into_groups_and_heal() {
        let mut net = network();
        net.partition(&[ids(&[1, 2]), ids(&[3, 4])]);
        assert!(net.is_connected(NodeId(1), NodeId(2)));
        assert!(!net.is_connected(NodeId(2), NodeId(3)));
        assert!(!net.is_connected(NodeId(5), NodeId(1)), "5 is in no group");
        net.heal();
        assert!(net.is_connected(NodeId(2), NodeId(3)));
        assert_eq!(net.links_down(), 0);
    }

    #[test]
    fn one_way_links_and_partial_connectivity() {
        let mut net = network();
        net.set_link(NodeId(1), NodeId(2), false);
        assert!(!net.is_connected(NodeId(1), NodeId(2)));
        assert!(net.is_connected(NodeId(2), NodeId(1)));
        net.heal();
        // 5 nodes where 4 reaches only 2 and 5 reaches only 3.
        net.restrict(NodeId(4), &ids(&[2]));
        net.restrict(NodeId(5), &ids(&[3]));
        assert!(net.is_connected(NodeId(4), NodeId(2)));
        assert!(!net.is_connected(NodeId(4), NodeId(1)));
        assert!(!net.is_connected(NodeId(1), NodeId(5)));
        assert!(net.is_connected(NodeId(3), NodeId(5)));
        assert!(!net.is_connected(NodeId(4), NodeId(5)));
    }

    #[test]
    fn blocked_lost_and_duplicated_messages() {
        let mut net = network();
        net.isolate(NodeId(3));
        let fate = net.send(0, NodeId(1), NodeId(3), false);
        assert!(fate.blocked && fate.deliver_at_ms.is_empty());
        net.set_options(NetworkOptions { loss: 1.0, ..NetworkOptions::default() });
        assert!(net.send(0, NodeId(1), NodeId(2), false).lost);
        net.set_options(NetworkOptions { duplicate: 1.0, ..NetworkOptions::default() });
        let fate = net.send(100, NodeId(1), NodeId(2), false);
        assert_eq!(fate.deliver_at_ms.len(), 2);
        assert!(fate.deliver_at_ms.iter().all(|&at| (101..=110).contains(&at)));
    }

    #[test]
    fn replies_can_be_lost_and_delayed_apart_from_requests() {
        let mut net = network();
        net.set_options(NetworkOptions { reply_loss: 1.0, reply_delay_ms: 40, ..NetworkOptions::default() });
        assert!(!net.send(0, NodeId(1), NodeId(2), false).lost, "requests are not affected");
        assert!(net.send(0, NodeId(2), NodeId(1), true).lost);
        net.set_options(NetworkOptions { reply_delay_ms: 40, ..NetworkOptions::default() });
        let fate = net.send(0, NodeId(2), NodeId(1), true);
        assert!(fate.deliver_at_ms.iter().all(|&at| (41..=50).contains(&at)), "{fate:?}");
    }
}
