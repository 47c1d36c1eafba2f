//! S1: snapshots survive a full-cluster restart.

use raft_sm::{LogIndex, Note};
use scenarios::{all_caught_up, for_each_seed, wait_one_leader_agreed, write_burst, ClusterExt};
use sim::Cluster;
use std::collections::BTreeMap;

/// S1: snapshot threshold 20 entries; 300 writes over 30 keys; once every
/// snapshot is written, crash all three nodes, restart them all.
/// Goal: every node restores from its durable snapshot plus the log after it:
/// right after boot (before any message arrived) its store already holds the
/// snapshot's contents (applied index ≥ its snapshot's index > 0); after the election
/// every node's contents are exactly the 30 last values written.
#[test]
fn s1_snapshot_survives_full_cluster_restart() {
    for_each_seed("s1_snapshot_survives_full_cluster_restart", 0x51_0000, |run| {
        let mut options = run.options(3);
        options.snapshot_threshold_entries = 20;
        let mut cluster = Cluster::new(options);
        wait_one_leader_agreed(&mut cluster, 10_000);
        write_burst(&mut cluster, "s1", 300, 30, 10_000);
        cluster.wait_for("all applied", all_caught_up, 5_000);
        let expected: BTreeMap<String, String> =
            (270..300).map(|i| (format!("s1k{}", i % 30), format!("s1{i}"))).collect();
        let expected: Vec<(String, String)> = expected.into_iter().collect();
        for node in cluster.nodes() {
            assert_eq!(node.kv_pairs(), expected, "{} before the crash", node.id());
        }
        for id in cluster.ids() {
            // Its own compaction, or (a follower that fell behind) the leader's snapshot.
            let snapshotted = cluster
                .saw_note(Some(id), |n| matches!(n, Note::SnapshotTaken { .. } | Note::SnapshotInstalled { .. }));
            assert!(snapshotted, "{id} took or installed a snapshot");
            let core = cluster.node(id).core().unwrap();
            assert!(core.snapshot().or(core.taken_snapshot()).is_some(), "{id} holds a snapshot");
        }
        // A snapshot a node took itself is written in the background and may
        // still be pending (a crash now would lose it and keep the log instead:
        // sim/tests/lazy_snapshots.rs); this story is about durable ones.
        cluster.wait_for("every snapshot written", |c| c.nodes().iter().all(|n| n.snapshots_pending() == 0), 10_000);
        let durable: Vec<LogIndex> = cluster.nodes().iter().map(|node| node.durable_snapshot_index()).collect();
        for id in cluster.ids() {
            cluster.crash(id);
        }
        for id in cluster.ids() {
            cluster.restart(id);
            let node = cluster.node(id);
            // What the disk held, not the core's snapshot: booting may take a new
            // one at once.
            let snapshot = node.boot_image().snapshot_index;
            assert!(snapshot > LogIndex(0), "{id} restarted from a durable snapshot");
            assert_eq!(snapshot, durable[(id.0 - 1) as usize], "{id} restarted from its newest durable snapshot");
            // The store starts at the snapshot; the boot may re-apply log entries
            // up to the durable commit index on top of it.
            assert!(node.applied_index() >= snapshot, "{id} restored its store from the snapshot at boot");
            assert!(!node.kv_pairs().is_empty(), "{id} holds the snapshot's contents at boot");
            assert!(node.last_log_index() >= snapshot, "{id} has its log after the snapshot");
        }
        wait_one_leader_agreed(&mut cluster, 10_000);
        cluster.wait_for("all caught up", all_caught_up, 10_000);
        for node in cluster.nodes() {
            assert_eq!(node.kv_pairs(), expected, "{} after the restart", node.id());
        }
        cluster.check();
    });
}
