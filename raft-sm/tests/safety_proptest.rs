//! Random interleavings: messages delivered, dropped, duplicated and reordered,
//! timers fired early and late, persistence acknowledged at random points, nodes
//! crashed (losing unsynced writes) and restarted from disk. After every step
//! the pump checks election safety, log matching, leader completeness and
//! state-machine safety (see `support::Pump::check_safety` and `record_apply`).

mod support;

use proptest::prelude::*;
use raft_sm::kv::Command;
use raft_sm::{Event, NodeId};
use support::Pump;

#[derive(Clone, Debug)]
enum Op {
    Deliver(usize),
    Drop(usize),
    Duplicate(usize),
    DeliverInOrder(usize),
    Tick(u64),
    Persist(u64),
    Crash(u64),
    Restart(u64),
    Propose(u64, u8),
    Read(u64),
}

fn op(nodes: u64) -> impl Strategy<Value = Op> {
    prop_oneof![
        10 => any::<usize>().prop_map(Op::Deliver),
        6 => (1..20usize).prop_map(Op::DeliverInOrder),
        2 => any::<usize>().prop_map(Op::Drop),
        1 => any::<usize>().prop_map(Op::Duplicate),
        4 => (10..400u64).prop_map(Op::Tick),
        6 => (1..=nodes).prop_map(Op::Persist),
        1 => (1..=nodes).prop_map(Op::Crash),
        2 => (1..=nodes).prop_map(Op::Restart),
        3 => ((1..=nodes), any::<u8>()).prop_map(|(n, k)| Op::Propose(n, k)),
        1 => (1..=nodes).prop_map(Op::Read),
    ]
}

fn run(nodes: u64, ops: Vec<Op>) {
    let mut pump = Pump::with_config(nodes, |c| {
        c.snapshot_threshold_entries = 8;
        c.snapshot_chunk_bytes_max = 128;
        c.inflight_appends_max = 3;
    });
    pump.auto_persist = false;
    let mut next_id = 0u64;
    for op in ops {
        match op {
            Op::Deliver(i) if !pump.pool.is_empty() => {
                let message = pump.pool.remove(i % pump.pool.len());
                pump.deliver(message);
            }
            Op::Drop(i) if !pump.pool.is_empty() => {
                pump.pool.remove(i % pump.pool.len());
            }
            Op::Duplicate(i) if !pump.pool.is_empty() => {
                let message = pump.pool[i % pump.pool.len()].clone();
                pump.pool.push(message);
            }
            Op::DeliverInOrder(count) => {
                for _ in 0..count.min(pump.pool.len()) {
                    let message = pump.pool.remove(0);
                    pump.deliver(message);
                }
            }
            Op::Tick(ms) => {
                // Time passes: every timer due by then fires, messages wait.
                let until = pump.now_ms + ms;
                while let Some((at, id)) = pump.next_deadline().filter(|&(at, _)| at <= until) {
                    pump.now_ms = pump.now_ms.max(at);
                    pump.fire_timers(id);
                }
                pump.now_ms = until;
            }
            Op::Persist(n) if pump.hosts[&NodeId(n)].up => pump.persist(NodeId(n)),
            Op::Crash(n) if pump.hosts[&NodeId(n)].up => pump.crash(NodeId(n)),
            Op::Restart(n) if !pump.hosts[&NodeId(n)].up => pump.restart(NodeId(n)),
            Op::Propose(n, key) => {
                next_id += 1;
                let command = Command::set(format!("k{}", key % 4), format!("v{next_id}"));
                pump.propose(NodeId(n), next_id, &command);
            }
            Op::Read(n) => {
                next_id += 1;
                pump.step(NodeId(n), Event::Read { id: next_id });
            }
            _ => {}
        }
    }
    if std::env::var("PUMP_STATS").is_ok() {
        let leaders = pump.checks.leaders.len();
        let applied = pump.checks.applied_at.len();
        let snaps = pump.notes.iter().filter(|(_, n)| matches!(n, raft_sm::Note::SnapshotInstalled { .. })).count();
        let trunc = pump.notes.iter().filter(|(_, n)| matches!(n, raft_sm::Note::Truncated { .. })).count();
        eprintln!("STATS leaders={leaders} applied={applied} installed={snaps} truncated={trunc}");
    }
    // Heal: everyone up, everything durable, run to quiescence; a leader must emerge
    // and all logs converge on what it committed.
    for n in 1..=nodes {
        if !pump.hosts[&NodeId(n)].up {
            pump.restart(NodeId(n));
        }
        pump.persist(NodeId(n));
    }
    pump.auto_persist = true;
    let leader = pump.elect(30_000);
    pump.propose(leader, u64::MAX, &Command::set("final", "write"));
    pump.run_for(3_000);
    let commit = pump.node(leader).commit_index();
    for n in 1..=nodes {
        let node = pump.node(NodeId(n));
        assert_eq!(node.commit_index(), commit, "n{n} converged");
        assert_eq!(pump.hosts[&NodeId(n)].kv().get("final"), Ok("write"));
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn three_nodes_stay_safe_under_random_interleavings(ops in proptest::collection::vec(op(3), 0..600)) {
        run(3, ops);
    }

    #[test]
    fn five_nodes_stay_safe_under_random_interleavings(ops in proptest::collection::vec(op(5), 0..600)) {
        run(5, ops);
    }
}
