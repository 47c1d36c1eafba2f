//! C: reads. C1 read-your-write on every node; C2 ordered sequential writes
//! leave every node with the same value and the same applied order.

use raft_sm::kv::Command;
use scenarios::{all_caught_up, all_have, applied_values, for_each_seed, write_ok, ClusterExt};
use sim::{Consistency, ReadAnswer};

/// C1: write through the leader, then read on every node (3 nodes, quiet network).
/// Goal: after the write is acknowledged, a linearizable read (ReadIndex, also
/// on followers) returns it on every node, and a stale (local) read returns it
/// on every node within 500 simulated ms.
#[test]
fn c1_read_your_write_on_all_nodes() {
    for_each_seed("c1_read_your_write_on_all_nodes", 0xC1_0000, |run| {
        let mut cluster = run.cluster_with_leader(3);
        for round in 0..3 {
            let value = format!("v{round}");
            write_ok(&mut cluster, &Command::set("c1", value.clone()), 5_000);
            let acknowledged_at = cluster.now_ms();
            for id in cluster.ids() {
                let answer = cluster.read(id, "c1", Consistency::Linearizable);
                assert_eq!(answer, ReadAnswer::Value(Some(value.clone())), "linearizable read on {id}");
            }
            let served = cluster.counters().get("reads_served");
            assert!(served >= 3 * (round + 1), "every read went through ReadIndex ({served})");
            // Stale reads: let time pass from the acknowledgement, not from the reads.
            let bound_ms = 500u64.saturating_sub(cluster.now_ms() - acknowledged_at);
            cluster.wait_for("a local read of the write on every node", |c| all_have(c, "c1", &value), bound_ms);
            for id in cluster.ids() {
                assert_eq!(cluster.read(id, "c1", Consistency::Local), ReadAnswer::Value(Some(value.clone())));
            }
        }
    });
}

/// C2: 100 writes to one key, each waited for before the next (3 nodes).
/// Goal: every node ends with the last value and applied the 100 values in
/// exactly the order they were written.
#[test]
fn c2_ordered_sequential_writes() {
    for_each_seed("c2_ordered_sequential_writes", 0xC2_0000, |run| {
        let mut cluster = run.cluster_with_leader(3);
        let expected: Vec<Option<String>> = (0..100).map(|i| Some(format!("{i}"))).collect();
        for value in expected.iter().flatten() {
            write_ok(&mut cluster, &Command::set("c2", value.clone()), 5_000);
        }
        cluster.wait_for("every node applied everything", all_caught_up, 2_000);
        for node in cluster.nodes() {
            assert_eq!(node.kv_get("c2").as_deref(), Some("99"), "{} final value", node.id());
            assert_eq!(applied_values(&node, "c2"), expected, "{} applied order", node.id());
        }
    });
}
