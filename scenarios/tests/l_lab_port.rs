//! L: an external Raft test suite ported to the harness — the scenarios of the
//! MIT 6.824 Raft lab tests (2A elections, 2B agreement, 2C persistence,
//! Figure 8, churn), rewritten for this simulator (its tests' semantics, our
//! own code). They use the harness the way that suite's does: `disconnect(i)`
//! cuts a server off and drops what is in flight to and from it;
//! `reconnect(i)` relinks it only with servers that are themselves connected;
//! `one(command, n)` retries a command at whoever leads until `n` servers
//! applied it; message counts bound how chatty elections and agreement are.

use raft_sm::kv::Command;
use raft_sm::{NodeId, Role};
use scenarios::{for_each_seed_n, ClusterExt, Run};
use sim::{Cluster, Who, WriteAnswer};

const SEEDS: u64 = 20;

/// A quiet cluster of `nodes` whose in-flight messages die with a disconnect.
fn lab_cluster(run: &Run, nodes: usize) -> Cluster {
    let mut options = run.options(nodes);
    options.drop_in_flight_on_disconnect = true;
    Cluster::new(options)
}

/// The connected servers' one leader of the newest term, once there is one that
/// every connected running server follows (6.824's `checkOneLeader`).
fn check_one_leader(cluster: &mut Cluster, connected: &[NodeId]) -> NodeId {
    let agreed = |c: &Cluster| -> Option<NodeId> {
        let views: Vec<_> = connected.iter().map(|&id| c.node(id)).filter(|n| n.is_up()).collect();
        let newest = views.iter().map(|n| n.term()).max()?;
        let leaders: Vec<NodeId> =
            views.iter().filter(|n| n.role() == Some(Role::Leader) && n.term() == newest).map(|n| n.id()).collect();
        let [leader] = leaders[..] else { return None };
        views.iter().all(|n| n.term() == newest && n.leader() == Some(leader)).then_some(leader)
    };
    cluster.wait_for("one leader among the connected servers", |c| agreed(c).is_some(), 10_000);
    agreed(cluster).expect("just held")
}

/// No connected server leads a majority: nobody is leader in a term the others follow.
fn check_no_leader(cluster: &mut Cluster, connected: &[NodeId], for_ms: u64) {
    cluster.run_for(for_ms);
    for &id in connected {
        let node = cluster.node(id);
        assert_ne!(node.role(), Some(Role::Leader), "{id} leads without a majority connected");
    }
}

/// 6.824's `one`: proposes `value` under `key` at whoever leads (retrying on
/// refusals and lost leaderships) until `expected` servers applied it.
fn one(cluster: &mut Cluster, key: &str, value: &str, expected: usize) {
    let command = Command::set(key, value).with_session(0xab, cluster.now_ms() + 1);
    let deadline = cluster.now_ms() + 10_000;
    while cluster.now_ms() < deadline {
        if cluster.leader().is_some() {
            if let WriteAnswer::Applied(Ok(())) = cluster.propose_and_wait(Who::Leader, &command, 2_000) {
                let has = |c: &Cluster| c.nodes().iter().filter(|n| n.kv_get(key).as_deref() == Some(value)).count();
                cluster.wait_for(&format!("{expected} servers applied {key}={value}"), |c| has(c) >= expected, 3_000);
                return;
            }
        }
        cluster.run_for(50);
    }
    panic!("{key}={value} never committed on {expected} servers (seed {:#x})", cluster.seed());
}

/// 2A: a leader is elected; with no failures it stays, in the same term.
#[test]
fn l2a_initial_election() {
    for_each_seed_n("l2a_initial_election", 0x2A_0000, SEEDS, |run| {
        let mut cluster = lab_cluster(run, 3);
        let all = cluster.ids();
        let leader = check_one_leader(&mut cluster, &all);
        let term = cluster.node(leader).term();
        cluster.run_for(2 * cluster.options().election_timeout_ms_max);
        assert_eq!(check_one_leader(&mut cluster, &all), leader, "the leader stays");
        assert_eq!(cluster.node(leader).term(), term, "no election without a failure");
        cluster.check();
    });
}

/// 2A: a disconnected leader is replaced; its return does not disturb the new
/// one; two of three disconnected leaves no leader; one back restores one.
#[test]
fn l2a_re_election() {
    for_each_seed_n("l2a_re_election", 0x2A_1000, SEEDS, |run| {
        let mut cluster = lab_cluster(run, 3);
        let all = cluster.ids();
        let leader1 = check_one_leader(&mut cluster, &all);
        cluster.disconnect(leader1);
        let rest: Vec<NodeId> = all.iter().copied().filter(|&id| id != leader1).collect();
        let leader2 = check_one_leader(&mut cluster, &rest);
        cluster.reconnect(leader1);
        let leader3 = check_one_leader(&mut cluster, &all);
        assert_eq!(leader3, leader2, "the old leader's return does not disturb the new one");
        let other = *rest.iter().find(|&&id| id != leader2).expect("three nodes");
        cluster.disconnect(leader2);
        cluster.disconnect(other);
        let wait_ms = 2 * cluster.options().election_timeout_ms_max;
        check_no_leader(&mut cluster, &[leader1], wait_ms);
        cluster.reconnect(other);
        check_one_leader(&mut cluster, &[leader1, other]);
        cluster.reconnect(leader2);
        check_one_leader(&mut cluster, &all);
        cluster.check();
    });
}

/// 2A: seven servers, three disconnected at random, ten times over: the four
/// others always elect one leader.
#[test]
fn l2a_many_elections() {
    for_each_seed_n("l2a_many_elections", 0x2A_2000, SEEDS / 2, |run| {
        let mut cluster = lab_cluster(run, 7);
        let all = cluster.ids();
        check_one_leader(&mut cluster, &all);
        let mut pick = run.seed;
        for _ in 0..10 {
            let mut out: Vec<NodeId> = Vec::new();
            while out.len() < 3 {
                pick = pick.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                let id = all[(pick >> 33) as usize % all.len()];
                if !out.contains(&id) {
                    out.push(id);
                }
            }
            for &id in &out {
                cluster.disconnect(id);
            }
            let connected: Vec<NodeId> = all.iter().copied().filter(|id| !out.contains(id)).collect();
            check_one_leader(&mut cluster, &connected);
            for &id in &out {
                cluster.reconnect(id);
            }
        }
        check_one_leader(&mut cluster, &all);
        cluster.check();
    });
}

/// 2B: commands commit on every server, in order.
#[test]
fn l2b_basic_agree() {
    for_each_seed_n("l2b_basic_agree", 0x2B_0000, SEEDS, |run| {
        let mut cluster = lab_cluster(run, 3);
        for i in 0..3 {
            one(&mut cluster, "basic", &format!("{i}"), 3);
        }
        cluster.check();
    });
}

/// 2B: agreement with one follower disconnected, and it catches up when it returns.
#[test]
fn l2b_fail_agree() {
    for_each_seed_n("l2b_fail_agree", 0x2B_1000, SEEDS, |run| {
        let mut cluster = lab_cluster(run, 3);
        let all = cluster.ids();
        one(&mut cluster, "fail", "101", 3);
        let leader = check_one_leader(&mut cluster, &all);
        let follower = *all.iter().find(|&&id| id != leader).expect("a follower");
        cluster.disconnect(follower);
        for value in ["102", "103", "104", "105"] {
            one(&mut cluster, "fail", value, 2);
        }
        cluster.reconnect(follower);
        one(&mut cluster, "fail", "106", 3);
        one(&mut cluster, "fail", "107", 3);
        cluster.check();
    });
}

/// 2B: with three of five followers gone nothing commits; once they return a
/// leader (perhaps another) commits again, and the entry that could not commit
/// never shows up as committed where it was not.
#[test]
fn l2b_fail_no_agree() {
    for_each_seed_n("l2b_fail_no_agree", 0x2B_2000, SEEDS, |run| {
        let mut cluster = lab_cluster(run, 5);
        let all = cluster.ids();
        one(&mut cluster, "nofail", "10", 5);
        let leader = check_one_leader(&mut cluster, &all);
        let gone: Vec<NodeId> = all.iter().copied().filter(|&id| id != leader).take(3).collect();
        for &id in &gone {
            cluster.disconnect(id);
        }
        let _ = cluster.propose(leader, &Command::set("nofail", "20"));
        cluster.run_for(2 * cluster.options().election_timeout_ms_max);
        assert!(cluster.nodes().iter().all(|n| n.kv_get("nofail").as_deref() != Some("20")), "nothing commits");
        for &id in &gone {
            cluster.reconnect(id);
        }
        check_one_leader(&mut cluster, &all);
        one(&mut cluster, "nofail", "30", 5);
        one(&mut cluster, "nofail", "1000", 5);
        cluster.check();
    });
}

/// 2B: a partitioned leader that appended entries it could not commit rejoins
/// after its successor was cut off too; its tail is replaced and agreement resumes.
#[test]
fn l2b_rejoin() {
    for_each_seed_n("l2b_rejoin", 0x2B_3000, SEEDS, |run| {
        let mut cluster = lab_cluster(run, 3);
        let all = cluster.ids();
        one(&mut cluster, "rejoin", "101", 3);
        let leader1 = check_one_leader(&mut cluster, &all);
        cluster.disconnect(leader1);
        for value in ["102", "103", "104"] {
            let _ = cluster.propose(leader1, &Command::set("rejoin", value));
        }
        one(&mut cluster, "rejoin", "103b", 2);
        let rest: Vec<NodeId> = all.iter().copied().filter(|&id| id != leader1).collect();
        let leader2 = check_one_leader(&mut cluster, &rest);
        cluster.disconnect(leader2);
        cluster.reconnect(leader1);
        one(&mut cluster, "rejoin", "104b", 2);
        cluster.reconnect(leader2);
        one(&mut cluster, "rejoin", "105", 3);
        for node in cluster.nodes() {
            assert_eq!(node.kv_get("rejoin").as_deref(), Some("105"), "{}", node.id());
        }
        cluster.check();
    });
}

/// 2B: the leader must back up over many conflicting entries fast: a leader
/// and one follower append 50 entries they cannot commit while the other three
/// commit 50 of their own; then the old pair rejoins a different majority.
#[test]
fn l2b_backup() {
    for_each_seed_n("l2b_backup", 0x2B_4000, SEEDS / 2, |run| {
        let mut cluster = lab_cluster(run, 5);
        let all = cluster.ids();
        one(&mut cluster, "backup", "start", 5);
        let leader1 = check_one_leader(&mut cluster, &all);
        let others: Vec<NodeId> = all.iter().copied().filter(|&id| id != leader1).collect();
        let (old_pair, majority) = ([leader1, others[0]], [others[1], others[2], others[3]]);
        cluster.disconnect(others[1]);
        cluster.disconnect(others[2]);
        cluster.disconnect(others[3]);
        for i in 0..50 {
            let _ = cluster.propose(leader1, &Command::set(format!("lost{i}"), "x"));
        }
        cluster.run_for(cluster.options().election_timeout_ms_max / 2);
        for id in old_pair {
            cluster.disconnect(id);
        }
        for id in majority {
            cluster.reconnect(id);
        }
        for i in 0..50 {
            one(&mut cluster, &format!("won{i}"), "y", 3);
        }
        for id in old_pair {
            cluster.reconnect(id);
        }
        let sent_before = cluster.messages_sent_total();
        one(&mut cluster, "backup", "end", 5);
        let sent = cluster.messages_sent_total() - sent_before;
        for node in cluster.nodes() {
            assert_eq!(node.kv_get("lost0"), None, "{} applied an entry that never committed", node.id());
            assert_eq!(node.kv_get("won49").as_deref(), Some("y"));
        }
        // Fast backtracking: catching the old pair up takes a bounded number of
        // messages, not one round trip per conflicting entry.
        assert!(sent < 100, "{sent} messages to catch up two servers 50 entries behind");
        cluster.check();
    });
}

/// 2B: elections and agreement are not chatty (6.824's RPC-count test).
#[test]
fn l2b_count() {
    for_each_seed_n("l2b_count", 0x2B_5000, SEEDS, |run| {
        let mut cluster = lab_cluster(run, 3);
        let all = cluster.ids();
        check_one_leader(&mut cluster, &all);
        let election = cluster.messages_sent_total();
        assert!(election <= 30, "{election} messages to elect a leader");
        one(&mut cluster, "count", "0", 3);
        let before = cluster.messages_sent_total();
        for i in 1..=10 {
            one(&mut cluster, "count", &i.to_string(), 3);
        }
        let agreement = cluster.messages_sent_total() - before;
        assert!(agreement <= 10 * 3 * 6, "{agreement} messages for 10 agreements");
        let idle_from = cluster.messages_sent_total();
        cluster.run_for(1_000);
        let idle = cluster.messages_sent_total() - idle_from;
        let heartbeats = 2 * 2 * (1_000 / cluster.options().heartbeat_interval_ms + 1);
        assert!(idle <= heartbeats + 10, "{idle} messages while idle for 1 s (heartbeats ≈ {heartbeats})");
        for id in all {
            assert!(cluster.messages_sent(id) > 0, "{id} sent nothing");
        }
        cluster.check();
    });
}

/// 2C: everything committed survives crashes and restarts of every server,
/// of the leader, and of followers, in turn.
#[test]
fn l2c_persist() {
    for_each_seed_n("l2c_persist", 0x2C_0000, SEEDS, |run| {
        let mut cluster = lab_cluster(run, 3);
        let all = cluster.ids();
        one(&mut cluster, "persist", "11", 3);
        for &id in &all {
            cluster.crash(id);
        }
        for &id in &all {
            cluster.restart(id);
        }
        one(&mut cluster, "persist", "12", 3);
        let leader = check_one_leader(&mut cluster, &all);
        cluster.crash(leader);
        cluster.restart(leader);
        one(&mut cluster, "persist", "13", 3);
        let leader = check_one_leader(&mut cluster, &all);
        cluster.crash(leader);
        one(&mut cluster, "persist", "14", 2);
        cluster.restart(leader);
        let follower = *all.iter().find(|&&id| id != cluster.leader().unwrap_or(leader)).expect("a follower");
        cluster.crash(follower);
        one(&mut cluster, "persist", "15", 2);
        cluster.restart(follower);
        one(&mut cluster, "persist", "16", 3);
        cluster.check();
    });
}

/// 2C, Figure 8: leaders crash at random moments (some right after appending),
/// random servers restart, 5 servers, optionally over an unreliable network
/// (loss, long reordering). At the end every server applies one more command:
/// no committed entry was lost or replaced on the way.
fn figure8(run: &Run, unreliable: bool) {
    let mut options = run.options(5);
    options.drop_in_flight_on_disconnect = true;
    if unreliable {
        options.network.loss = 0.1;
        options.network.reorder = 0.25;
        options.network.reorder_delay_ms_max = 2_000;
    }
    let mut cluster = Cluster::new(options);
    let all = cluster.ids();
    one(&mut cluster, "f8", "start", 5);
    let mut up = 5;
    let mut pick = run.seed ^ 0xf8;
    let mut draw = |n: u64| {
        pick = pick.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (pick >> 33) % n
    };
    for i in 0..60 {
        if let Some(leader) = cluster.leader() {
            let _ = cluster.propose(leader, &Command::set(format!("f8-{i}"), "v"));
        }
        let wait_ms = if draw(1000) < 100 { draw(500) } else { draw(13) };
        cluster.run_for(wait_ms + 1);
        if let Some(leader) = cluster.leader() {
            if up > 1 && draw(2) == 0 {
                cluster.crash(leader);
                up -= 1;
            }
        }
        if up < 3 {
            let down: Vec<NodeId> = all.iter().copied().filter(|&id| !cluster.node(id).is_up()).collect();
            let id = down[draw(down.len() as u64) as usize];
            cluster.restart(id);
            up += 1;
        }
    }
    for &id in &all {
        if !cluster.node(id).is_up() {
            cluster.restart(id);
        }
    }
    one(&mut cluster, "f8", "end", 5);
    cluster.check();
}

#[test]
fn l2c_figure_8() {
    for_each_seed_n("l2c_figure_8", 0x2C_8000, SEEDS, |run| figure8(run, false));
}

#[test]
fn l2c_figure_8_unreliable() {
    for_each_seed_n("l2c_figure_8_unreliable", 0x2C_9000, SEEDS, |run| figure8(run, true));
}
