//! G1: the leader crashes mid-load.

use raft_sm::kv::Command;
use raft_sm::{Note, Role};
use scenarios::{all_caught_up, for_each_seed, note_mark, noted_since, wait_one_leader_agreed, write_ok, ClusterExt};
use sim::{Cluster, Who};

/// G1: 3 nodes under load from 4 clients plus acknowledged harness writes;
/// crash the leader (symmetric: its process is gone).
/// Goal: a new leader is elected within the bound the election timeouts allow
/// (two randomized election timeouts plus messaging: a split vote may cost one
/// more round); no acknowledged write is lost (every harness write is on the
/// new leader, and the clients' history is linearizable); the old leader
/// restarts as a follower of the new one and converges.
#[test]
fn g1_leader_crash_mid_load() {
    for_each_seed("g1_leader_crash_mid_load", 0x61_0000, |run| {
        let mut cluster = Cluster::new(run.options_with_clients(3, 4));
        wait_one_leader_agreed(&mut cluster, 10_000);
        let mut acknowledged = Vec::new();
        for i in 0..10 {
            let (key, value) = (format!("g1-{i}"), format!("{i}"));
            write_ok(&mut cluster, &Command::set(key.clone(), value.clone()), 5_000);
            acknowledged.push((key, value));
            cluster.run_for(50);
        }
        let completed_before = cluster.history().completed();
        assert!(completed_before > 0, "the clients were loading the cluster");
        let old = cluster.crash(Who::Leader);
        let old_term = cluster.node(Who::Follower(0)).term();
        let crashed_at = cluster.now_ms();
        let crashed_mark = note_mark(&cluster);
        let bound_ms = 2 * cluster.options().election_timeout_ms_max + 500;
        cluster.wait_for("a new leader", |c| c.leader().is_some_and(|l| l != old), bound_ms);
        let new = cluster.resolve(Who::Leader);
        assert!(cluster.node(new).term() > old_term);
        assert!(
            noted_since(&cluster, crashed_mark, Some(new), |n| matches!(n, Note::BecameLeader { .. })),
            "{new} won an election after the crash"
        );
        let took_ms = cluster.now_ms() - crashed_at;
        assert!(took_ms <= bound_ms, "elected after {took_ms} ms");
        cluster.wait_for(
            "the survivors agree",
            |c| c.followers().iter().all(|&f| c.node(f).leader() == Some(new)),
            2_000,
        );
        cluster.wait_for(
            "the new leader applied its commit",
            |c| c.node(new).applied_index() == c.node(new).commit_index(),
            2_000,
        );
        for (key, value) in &acknowledged {
            assert_eq!(cluster.node(new).kv_get(key).as_ref(), Some(value), "acknowledged write {key} survived");
        }
        cluster.run_for(2_000);
        assert!(cluster.history().completed() > completed_before, "the clients made progress with the new leader");
        cluster.restart(old);
        cluster.wait_for(
            "the old leader follows and caught up",
            |c| c.node(old).leader() == c.leader() && all_caught_up(c),
            10_000,
        );
        assert_eq!(cluster.node(old).role(), Some(Role::Follower));
        assert!(cluster.node(old).term() > old_term);
        cluster.check();
    });
}
