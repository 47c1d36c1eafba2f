//! P: persistence across crashes and restarts (each node restarts from exactly
//! what its simulated disk had fsynced).

use raft_sm::kv::{Command, KvStore};
use raft_sm::{LogIndex, Note, ProposalOutcome, Role};
use scenarios::{
    all_caught_up, all_have, applied_values, for_each_seed, note_mark, noted_since, wait_one_leader_agreed, write_ok,
    ClusterExt,
};
use sim::{Cluster, Consistency, ReadAnswer, Who};

/// P1: crash a follower, write 50 entries through the other two, restart it.
/// Goal: the restarted follower recovers its own durable log (its log is not
/// empty at boot), then catches up on everything it missed.
#[test]
fn p1_follower_restart_catches_up() {
    for_each_seed("p1_follower_restart_catches_up", 0x91_0000, |run| {
        let mut cluster = run.cluster_with_leader(3);
        write_ok(&mut cluster, &Command::set("p1", "before"), 5_000);
        cluster.wait_for("all applied", all_caught_up, 2_000);
        cluster.run_for(100); // every fsync done: the follower's log is durable
        let follower = cluster.crash(Who::Follower(0));
        for i in 0..50 {
            write_ok(&mut cluster, &Command::set("p1", format!("{i}")), 5_000);
        }
        cluster.restart(follower);
        assert!(cluster.node(follower).last_log_index() >= LogIndex(2), "the follower recovered its durable log");
        assert_eq!(cluster.node(follower).role(), Some(Role::Follower));
        cluster.wait_for("the follower caught up", |c| all_caught_up(c) && all_have(c, "p1", "49"), 10_000);
        assert_eq!(cluster.counters().get("restarts"), 1);
        cluster.check();
    });
}

/// P2: crash the leader, let the others elect a new one and write, restart the
/// old leader from its disk.
/// Goal: it rejoins as a follower of the new leader at the new (higher) term,
/// without disturbing it (no leader change after the restart), and catches up.
#[test]
fn p2_leader_crash_and_restart_rejoins_as_follower() {
    for_each_seed("p2_leader_crash_and_restart_rejoins_as_follower", 0x92_0000, |run| {
        let mut cluster = run.cluster_with_leader(3);
        write_ok(&mut cluster, &Command::set("p2", "1"), 5_000);
        let old = cluster.crash(Who::Leader);
        let old_term = cluster.node(old).durable_hard_state().term;
        cluster.wait_for("a new leader", |c| c.leader().is_some(), 10_000);
        let new = cluster.resolve(Who::Leader);
        write_ok(&mut cluster, &Command::set("p2", "2"), 5_000);
        let changes = cluster.counters().get("leader_changes");
        cluster.restart(old);
        cluster.wait_for(
            "the old leader follows the new one",
            |c| c.node(old).leader() == Some(new) && all_caught_up(c),
            10_000,
        );
        assert_eq!(cluster.node(old).role(), Some(Role::Follower));
        assert!(cluster.node(old).term() > old_term, "rejoined at a higher term");
        assert_eq!(cluster.node(old).kv_get("p2").as_deref(), Some("2"));
        cluster.run_for(3_000);
        assert_eq!(cluster.counters().get("leader_changes"), changes, "the restart caused no leader change");
        assert_eq!(cluster.leader(), Some(new));
        cluster.check();
    });
}

/// P3: crash both followers; the isolated leader appends a write (`z`) it can
/// never commit and makes it durable; crash it too (the whole cluster is down).
/// Restart the two followers first, let them elect a leader and commit a write,
/// then restart the old leader.
/// Goal: `z` never becomes visible anywhere: no node ever applies it, no store
/// holds it, a linearizable read does not return it, and the old leader's
/// durable tail is truncated. (Raft would be free to commit `z` if the old
/// leader won an election after the restart: `z` was never acknowledged. The
/// restart order is what makes "never" the only correct outcome here.)
#[test]
fn p3_uncommitted_write_of_isolated_leader_never_visible() {
    for_each_seed("p3_uncommitted_write_of_isolated_leader_never_visible", 0x93_0000, |run| {
        let mut cluster = run.cluster_with_leader(3);
        write_ok(&mut cluster, &Command::set("p3", "committed"), 5_000);
        let followers = [cluster.crash(Who::Follower(0)), cluster.crash(Who::Follower(0))];
        let old = cluster.resolve(Who::Leader);
        let index = match cluster.propose(old, &Command::set("z", "never")) {
            ProposalOutcome::Accepted { index, .. } => index,
            other => panic!("the lone leader answered {other:?}"),
        };
        cluster.run_for(300);
        assert!(cluster.node(old).commit_index() < index);
        cluster.crash(old);
        for id in followers {
            cluster.restart(id);
        }
        cluster.wait_for("a leader among the followers", |c| c.leader().is_some(), 10_000);
        write_ok(&mut cluster, &Command::set("p3", "after"), 5_000);
        let restarted_mark = note_mark(&cluster);
        cluster.restart(old);
        assert!(cluster.node(old).last_log_index() >= index, "z survived on the old leader's disk");
        wait_one_leader_agreed(&mut cluster, 10_000);
        cluster.wait_for("all caught up", |c| all_caught_up(c) && all_have(c, "p3", "after"), 10_000);
        assert!(
            noted_since(
                &cluster,
                restarted_mark,
                Some(old),
                |n| matches!(n, Note::Truncated { from, .. } if *from <= index)
            ),
            "the old leader truncated its durable tail (z at {index})"
        );
        for id in cluster.ids() {
            assert_eq!(cluster.read(id, "z", Consistency::Linearizable), ReadAnswer::Value(None), "z read on {id}");
        }
        for node in cluster.nodes() {
            assert_eq!(node.kv_get("z"), None, "{} holds z", node.id());
            assert!(applied_values(&node, "z").is_empty(), "{} applied z", node.id());
        }
        cluster.check();
    });
}

/// P4: 3 nodes under load from 4 clients (retries with sessions); crash and
/// restart a follower, the leader, and then every node, once each.
/// Goal: no double apply across restarts: every node's store equals one
/// application, in order, of the committed log (rebuilt from the leader's log
/// into a fresh store), and the clients' history is linearizable.
#[test]
fn p4_no_double_apply_across_restarts() {
    for_each_seed("p4_no_double_apply_across_restarts", 0x94_0000, |run| {
        let mut cluster = Cluster::new(run.options_with_clients(3, 4));
        wait_one_leader_agreed(&mut cluster, 10_000);
        cluster.run_for(1_000);
        let follower = cluster.crash(Who::Follower(0));
        cluster.run_for(500);
        cluster.restart(follower);
        cluster.run_for(1_000);
        if cluster.leader().is_some() {
            let leader = cluster.crash(Who::Leader);
            cluster.run_for(1_500);
            cluster.restart(leader);
        }
        cluster.run_for(1_000);
        for id in cluster.ids() {
            cluster.crash(id);
        }
        for id in cluster.ids() {
            cluster.restart(id);
        }
        cluster.run_for(2_000);
        cluster.check();
        assert!(cluster.counters().get("restarts") >= 4);
        let leader = cluster.node(Who::Leader);
        let core = leader.core().unwrap();
        assert_eq!(core.log_base().0, LogIndex(0), "the whole log is still there (no snapshot)");
        let mut once = KvStore::default();
        for i in 1..=leader.commit_index().0 {
            once.apply_entry(core.entry(LogIndex(i)).expect("committed entry"));
        }
        assert!(!once.is_empty(), "the clients wrote something");
        for node in cluster.nodes() {
            assert_eq!(node.kv_pairs(), once.sorted_pairs(), "{}: store = one application of the log", node.id());
        }
    });
}
