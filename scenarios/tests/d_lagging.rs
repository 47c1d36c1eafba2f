//! D1: a lagging follower catches up: by log replication, and (second variant)
//! by InstallSnapshot when the leader compacted its log meanwhile.

use raft_sm::Note;
use scenarios::{all_caught_up, for_each_seed_n, write_burst, ClusterExt, SEEDS_SLOW};
use sim::{Cluster, Who};

/// Isolates one follower, writes 1,000 entries through the other two, heals,
/// and waits until the lagging follower applied everything. Returns the lagger.
/// With `past_compaction`, it heals only once the leader's log starts after
/// the lagger's (its snapshot durable: until then the leader keeps its log).
fn lag_and_rejoin(cluster: &mut Cluster, past_compaction: bool) -> raft_sm::NodeId {
    let lagger = cluster.isolate_follower();
    let applied_before = cluster.node(lagger).applied_index();
    write_burst(cluster, "d1", 1_000, 20, 10_000);
    let leader = cluster.resolve(Who::Leader);
    let commit = cluster.node(leader).commit_index();
    assert!(commit.0 >= applied_before.0 + 1_000, "the majority committed 1,000 writes");
    let lagging = cluster.node(lagger).applied_index();
    assert!(lagging.0 + 1_000 <= commit.0, "the lagger missed the writes (applied {lagging}, commit {commit})");
    if past_compaction {
        let behind = cluster.node(lagger).last_log_index();
        cluster.wait_for(
            "the leader compacted past the lagger",
            |c| c.node(leader).core().is_some_and(|core| core.log_base().0 > behind),
            10_000,
        );
    }
    cluster.connect(lagger);
    cluster.wait_for(
        "the lagging follower caught up",
        |c| all_caught_up(c) && c.node(lagger).leader() == Some(leader),
        10_000,
    );
    assert_eq!(
        cluster.node(lagger).kv_pairs(),
        cluster.node(leader).kv_pairs(),
        "the lagger's store equals the leader's"
    );
    assert_eq!(cluster.node(lagger).kv_get("d1k19").as_deref(), Some("d1999"));
    lagger
}

trait IsolateFollower {
    fn isolate_follower(&mut self) -> raft_sm::NodeId;
}

impl IsolateFollower for Cluster {
    fn isolate_follower(&mut self) -> raft_sm::NodeId {
        let follower = self.resolve(Who::Follower(0));
        self.isolate(follower);
        follower
    }
}

/// D1 (log): a follower cut off (isolated, symmetric) for 1,000 writes rejoins.
/// Goal: it catches up fully by ordinary replication (the leader keeps its
/// whole log: no snapshot is sent) and applies every entry it missed itself.
#[test]
fn d1_lagging_follower_catches_up_by_replication() {
    for_each_seed_n("d1_lagging_follower_catches_up_by_replication", 0xD1_0000, SEEDS_SLOW, |run| {
        let mut cluster = run.cluster_with_leader(3);
        let lagger = lag_and_rejoin(&mut cluster, false);
        assert_eq!(cluster.counters().get("snapshots_sent"), 0, "caught up by the log, not by a snapshot");
        assert!(!cluster.saw_note(Some(lagger), |n| matches!(n, Note::SnapshotInstalled { .. })));
        let applied = cluster.node(lagger).applied_entries().len();
        assert!(applied >= 1_000, "the lagger applied the 1,000 entries itself ({applied})");
        cluster.check();
    });
}

/// D1 (snapshot): the same, but with a snapshot threshold of 100 entries, so the
/// leader compacts its log while the follower is away.
/// Goal: the follower is caught up by InstallSnapshot (the counters show a
/// snapshot sent and installed, and the lagger now holds a snapshot past the
/// point where it was cut off), and its store equals the leader's.
#[test]
fn d1_lagging_follower_catches_up_by_install_snapshot() {
    for_each_seed_n("d1_lagging_follower_catches_up_by_install_snapshot", 0xD1_5000, SEEDS_SLOW, |run| {
        let mut options = run.options(3);
        options.snapshot_threshold_entries = 100;
        let mut cluster = Cluster::new(options);
        scenarios::wait_one_leader_agreed(&mut cluster, 10_000);
        let lagger = cluster.resolve(Who::Follower(0));
        let cut_at = cluster.node(lagger).applied_index();
        let lagger_again = lag_and_rejoin(&mut cluster, true);
        assert_eq!(lagger, lagger_again);
        let counters = cluster.counters();
        assert!(counters.get("snapshots_taken") >= 1, "the leader compacted its log");
        assert!(counters.get("snapshots_sent") >= 1, "the leader sent a snapshot");
        assert!(counters.get("snapshots_installed") >= 1, "a follower installed it");
        let leader = cluster.resolve(Who::Leader);
        assert!(
            cluster.saw_note(Some(leader), |n| matches!(n, Note::SnapshotSent { to, .. } if *to == lagger)),
            "the leader sent its snapshot to the lagger"
        );
        assert!(
            cluster.saw_note(Some(lagger), |n| matches!(n, Note::SnapshotInstalled { .. })),
            "the lagger installed it"
        );
        let (base, _) = cluster.node(lagger).core().unwrap().log_base();
        assert!(base > cut_at, "the lagger's log now starts after a snapshot at {base} (cut off at {cut_at})");
        let applied = cluster.node(lagger).applied_entries().len();
        assert!(applied < 1_000, "the snapshot, not 1,000 applies, brought the lagger up ({applied} applied)");
        cluster.check();
    });
}
