//! F: node failures. F1 one follower down: writes still commit. F2 two of three
//! down: nothing commits; when they return, the write commits at most once.

use raft_sm::kv::Command;
use raft_sm::ProposalOutcome;
use scenarios::{
    all_caught_up, all_have, applied_commands, for_each_seed, wait_one_leader_agreed, write_ok, ClusterExt,
};
use sim::Who;

/// F1: crash one follower of three (the leader and one follower remain).
/// Goal: writes commit and apply on the two running nodes; the crashed follower
/// catches up after it restarts.
#[test]
fn f1_one_follower_down_writes_commit() {
    for_each_seed("f1_one_follower_down_writes_commit", 0xF1_0000, |run| {
        let mut cluster = run.cluster_with_leader(3);
        let down = cluster.crash(Who::Follower(0));
        for i in 0..20 {
            write_ok(&mut cluster, &Command::set(format!("f1-{}", i % 4), format!("{i}")), 5_000);
        }
        cluster.wait_for("both running nodes applied", |c| all_have(c, "f1-3", "19"), 2_000);
        assert!(!cluster.node(down).is_up());
        assert_eq!(cluster.node(down).kv_get("f1-3"), None, "the crashed follower has nothing");
        cluster.restart(down);
        cluster.wait_for("the restarted follower caught up", all_caught_up, 10_000);
        assert_eq!(cluster.node(down).kv_get("f1-3").as_deref(), Some("19"));
        cluster.check();
    });
}

/// F2: 3 nodes, 2 clients running; crash both followers (the leader is alone),
/// write at the leader with a client session, wait 3 s, and let the clients
/// time out for 7 s; then restart the followers and retry the write with the
/// same session.
/// Goal: while the majority is down nothing commits (the leader's commit index
/// stays below the write, no node applies it, and the clients see timeouts /
/// unknown outcomes); after the return the write takes effect exactly once
/// (a duplicate entry is suppressed by the session), and the linearizability
/// checker accepts the clients' history (`check`).
#[test]
fn f2_no_majority_no_commit_then_at_most_once() {
    for_each_seed("f2_no_majority_no_commit_then_at_most_once", 0xF2_0000, |run| {
        let mut cluster = sim::Cluster::new(run.options_with_clients(3, 2));
        wait_one_leader_agreed(&mut cluster, 10_000);
        cluster.run_for(1_000);
        let leader = cluster.resolve(Who::Leader);
        let down = [cluster.crash(Who::Follower(0)), cluster.crash(Who::Follower(0))];
        let unknown_before = cluster.counters().get("ops_unknown") + cluster.counters().get("client_timeouts");
        let command = Command::set("f2", "once").with_session(900, 1);
        let index = match cluster.propose(leader, &command) {
            ProposalOutcome::Accepted { index, .. } => index,
            other => panic!("the lone leader answered {other:?}"),
        };
        cluster.run_for(3_000);
        assert!(cluster.node(leader).commit_index() < index, "no commit without a majority");
        assert_eq!(cluster.node(leader).kv_get("f2"), None, "not applied without a majority");
        cluster.run_for(7_000);
        let counters = cluster.counters();
        assert!(
            counters.get("ops_unknown") + counters.get("client_timeouts") > unknown_before,
            "the clients saw timeouts or unknown outcomes:\n{counters}"
        );
        for id in down {
            cluster.restart(id);
        }
        wait_one_leader_agreed(&mut cluster, 10_000);
        let suppressed = cluster.counters().get("duplicates_suppressed");
        write_ok(&mut cluster, &command, 5_000);
        cluster.wait_for("all applied", |c| all_caught_up(c) && all_have(c, "f2", "once"), 5_000);
        for node in cluster.nodes() {
            let copies = applied_commands(&node).iter().filter(|c| **c == command).count();
            assert!((1..=2).contains(&copies), "{}: {copies} entries of the write", node.id());
            if copies == 2 {
                assert!(cluster.counters().get("duplicates_suppressed") > suppressed, "the second copy was suppressed");
            }
        }
        cluster.check();
    });
}
