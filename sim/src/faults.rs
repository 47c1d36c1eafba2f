//! Faults: scripted actions for scenarios ("at t do X") and swarm options for
//! fault suites (each seed draws which fault kinds are on and how hard).

use crate::network::NetworkOptions;
use crate::rng::SimRng;
use raft_sm::NodeId;
use std::fmt;

/// One fault (or repair) the cluster can be told to do, now or at a time.
#[derive(Clone, Debug, PartialEq)]
pub enum FaultAction {
    /// Nodes talk only within their group; nodes in no group are isolated.
    Partition(Vec<Vec<NodeId>>),
    /// Cut a node off, both directions.
    Isolate(NodeId),
    /// Restore all links of a node.
    Connect(NodeId),
    /// A node reaches only these peers (both directions).
    Restrict(NodeId, Vec<NodeId>),
    /// Cut (false) or restore (true) the one-way link `from → to`.
    Link {
        /// Sender side.
        from: NodeId,
        /// Receiver side.
        to: NodeId,
        /// Whether the link works.
        up: bool,
    },
    /// Every link up.
    Heal,
    /// Kill the process (unsynced writes lost or torn).
    Crash(NodeId),
    /// Start a crashed node from its disk.
    Restart(NodeId),
    /// Stop delivering to a node and firing its timers.
    Pause(NodeId),
    /// Deliver everything held back and continue.
    Resume(NodeId),
    /// The node's fsyncs hang for a while.
    DiskStall {
        /// The node.
        node: NodeId,
        /// For how long.
        duration_ms: u64,
    },
    /// Replace the network's latency and fault rates.
    Network(NetworkOptions),
    /// Ask the current leader to hand leadership to this node.
    TransferLeadership(NodeId),
}

/// The fault mix of a swarm run, drawn per seed.
#[derive(Clone, Debug, PartialEq)]
pub struct SwarmOptions {
    /// Message loss probability (0–30 %).
    pub loss: f64,
    /// Duplication probability.
    pub duplicate: f64,
    /// Reordering probability.
    pub reorder: f64,
    /// Partitions, one-way links, isolation, partial connectivity.
    pub partitions: bool,
    /// Crashes and restarts.
    pub crashes: bool,
    /// Pauses and resumes.
    pub pauses: bool,
    /// Fsync stalls of seconds.
    pub disk_stalls: bool,
    /// Crashes may keep a prefix of unsynced writes and tear the last record.
    pub torn_writes: bool,
    /// Operator-requested leadership transfers.
    pub transfers: bool,
    /// Smallest gap between two fault decisions.
    pub fault_interval_ms_min: u64,
    /// Largest gap between two fault decisions.
    pub fault_interval_ms_max: u64,
}

impl SwarmOptions {
    /// No faults at all.
    pub fn none() -> SwarmOptions {
        SwarmOptions {
            loss: 0.0,
            duplicate: 0.0,
            reorder: 0.0,
            partitions: false,
            crashes: false,
            pauses: false,
            disk_stalls: false,
            torn_writes: false,
            transfers: false,
            fault_interval_ms_min: 500,
            fault_interval_ms_max: 3000,
        }
    }

    /// Every fault kind on, at moderate rates.
    pub fn all() -> SwarmOptions {
        SwarmOptions {
            loss: 0.05,
            duplicate: 0.05,
            reorder: 0.05,
            partitions: true,
            crashes: true,
            pauses: true,
            disk_stalls: true,
            torn_writes: true,
            transfers: true,
            fault_interval_ms_min: 300,
            fault_interval_ms_max: 2000,
        }
    }

    /// Draws a fault mix (swarm testing: each kind on with probability ½, rates random).
    pub fn draw(rng: &mut SimRng) -> SwarmOptions {
        let loss = if rng.chance(0.5) { rng.float(0.0, 0.3) } else { 0.0 };
        let duplicate = if rng.chance(0.5) { rng.float(0.0, 0.2) } else { 0.0 };
        let reorder = if rng.chance(0.5) { rng.float(0.0, 0.3) } else { 0.0 };
        let fault_interval_ms_min = rng.range(100, 1000);
        SwarmOptions {
            loss,
            duplicate,
            reorder,
            partitions: rng.chance(0.5),
            crashes: rng.chance(0.5),
            pauses: rng.chance(0.5),
            disk_stalls: rng.chance(0.5),
            torn_writes: rng.chance(0.5),
            transfers: rng.chance(0.5),
            fault_interval_ms_min,
            fault_interval_ms_max: fault_interval_ms_min + rng.range(200, 3000),
        }
    }

    /// Whether any discrete fault kind (beyond message rates) is on.
    pub fn has_discrete_faults(&self) -> bool {
        self.partitions || self.crashes || self.pauses || self.disk_stalls || self.transfers
    }

    /// The network options with this mix's rates.
    pub fn network(&self, base: &NetworkOptions) -> NetworkOptions {
        NetworkOptions { loss: self.loss, duplicate: self.duplicate, reorder: self.reorder, ..base.clone() }
    }
}

impl fmt::Display for SwarmOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "loss={:.3} dup={:.3} reorder={:.3} partitions={} crashes={} pauses={} disk_stalls={} torn_writes={} transfers={} fault_interval_ms={}..{}",
            self.loss,
            self.duplicate,
            self.reorder,
            self.partitions,
            self.crashes,
            self.pauses,
            self.disk_stalls,
            self.torn_writes,
            self.transfers,
            self.fault_interval_ms_min,
            self.fault_interval_ms_max
        )
    }
}

/// What the swarm driver can see of the cluster when it picks a fault.
pub struct SwarmView {
    /// All nodes.
    pub nodes: Vec<NodeId>,
    /// Crashed nodes.
    pub crashed: Vec<NodeId>,
    /// Paused nodes.
    pub paused: Vec<NodeId>,
    /// Whether some link is down.
    pub partitioned: bool,
    /// The current leader, if any.
    pub leader: Option<NodeId>,
}

/// Picks the next fault of a swarm run: a fault of an enabled kind, or a repair.
/// At most a minority of nodes is crashed or paused at once, so the fault phase
/// makes progress between faults.
pub fn next_swarm_fault(rng: &mut SimRng, options: &SwarmOptions, view: &SwarmView) -> Option<FaultAction> {
    let n = view.nodes.len();
    let down = view.crashed.len() + view.paused.len();
    let minority = (n - 1) / 2;
    let mut choices: Vec<u8> = Vec::new();
    if options.partitions && n > 1 {
        choices.extend([0, 0, 1]);
    }
    if options.crashes {
        choices.extend([2, 3]);
    }
    if options.pauses {
        choices.extend([4, 5]);
    }
    if options.disk_stalls {
        choices.push(6);
    }
    if options.transfers && view.leader.is_some() {
        choices.push(7);
    }
    if choices.is_empty() {
        return None;
    }
    let target = |rng: &mut SimRng| -> NodeId {
        // Favour the leader: faults there exercise the most paths.
        match view.leader {
            Some(leader) if rng.chance(0.4) => leader,
            _ => *rng.pick(&view.nodes),
        }
    };
    let up: Vec<NodeId> =
        view.nodes.iter().copied().filter(|id| !view.crashed.contains(id) && !view.paused.contains(id)).collect();
    match *rng.pick(&choices) {
        0 => {
            let focus = target(rng);
            Some(random_partition(rng, &view.nodes, focus))
        }
        1 => Some(FaultAction::Heal),
        2 if down < minority || (minority == 0 && down == 0) => {
            let node = target(rng);
            (!view.crashed.contains(&node) && !view.paused.contains(&node)).then_some(FaultAction::Crash(node))
        }
        2 | 3 => view.crashed.first().map(|_| FaultAction::Restart(*rng.pick(&view.crashed))),
        4 if down < minority || (minority == 0 && down == 0) => {
            let node = target(rng);
            (!view.crashed.contains(&node) && !view.paused.contains(&node)).then_some(FaultAction::Pause(node))
        }
        4 | 5 => view.paused.first().map(|_| FaultAction::Resume(*rng.pick(&view.paused))),
        6 if !up.is_empty() => Some(FaultAction::DiskStall {
            node: if rng.chance(0.5) { target(rng) } else { *rng.pick(&up) },
            duration_ms: rng.range(500, 5000),
        }),
        7 => {
            let leader = view.leader.expect("checked above");
            let others: Vec<NodeId> = up.iter().copied().filter(|&id| id != leader).collect();
            (!others.is_empty()).then(|| FaultAction::TransferLeadership(*rng.pick(&others)))
        }
        _ => None,
    }
}

fn random_partition(rng: &mut SimRng, nodes: &[NodeId], focus: NodeId) -> FaultAction {
    let others: Vec<NodeId> = nodes.iter().copied().filter(|&id| id != focus).collect();
    match rng.range(0, 3) {
        0 => FaultAction::Isolate(focus),
        1 => {
            // A random split into two groups.
            let mut a = vec![focus];
            let mut b = Vec::new();
            for &id in &others {
                if rng.chance(0.5) {
                    a.push(id);
                } else {
                    b.push(id);
                }
            }
            FaultAction::Partition(vec![a, b])
        }
        2 => FaultAction::Link { from: focus, to: *rng.pick(&others), up: false },
        _ => {
            // Partial connectivity: the node reaches only one peer.
            FaultAction::Restrict(focus, vec![*rng.pick(&others)])
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_differ_across_seeds_and_stay_in_range() {
        let mut kinds = std::collections::BTreeSet::new();
        for seed in 0..64 {
            let options = SwarmOptions::draw(&mut SimRng::from_seed(seed));
            assert!((0.0..=0.3).contains(&options.loss));
            assert!(options.fault_interval_ms_min < options.fault_interval_ms_max);
            kinds.insert((options.partitions, options.crashes, options.pauses));
        }
        assert!(kinds.len() > 4, "swarm draws vary the fault mix: {kinds:?}");
    }

    #[test]
    fn a_single_node_cluster_gets_only_faults_that_make_sense() {
        let mut rng = SimRng::from_seed(3);
        let view = SwarmView {
            nodes: vec![NodeId(1)],
            crashed: vec![],
            paused: vec![],
            partitioned: false,
            leader: Some(NodeId(1)),
        };
        for _ in 0..500 {
            let action = next_swarm_fault(&mut rng, &SwarmOptions::all(), &view);
            assert!(
                !matches!(
                    action,
                    Some(FaultAction::Partition(_) | FaultAction::Isolate(_) | FaultAction::TransferLeadership(_))
                ),
                "{action:?}"
            );
        }
    }

    #[test]
    fn never_takes_down_a_majority() {
        let nodes: Vec<NodeId> = (1..=5).map(NodeId).collect();
        let mut rng = SimRng::from_seed(9);
        let view = SwarmView {
            nodes: nodes.clone(),
            crashed: vec![NodeId(1)],
            paused: vec![NodeId(2)],
            partitioned: false,
            leader: Some(NodeId(3)),
        };
        for _ in 0..500 {
            let action = next_swarm_fault(&mut rng, &SwarmOptions::all(), &view);
            assert!(
                !matches!(action, Some(FaultAction::Crash(_) | FaultAction::Pause(_))),
                "{action:?} with two of five down"
            );
        }
    }
}
