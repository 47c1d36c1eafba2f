//! X: beyond the checklist. X1 leader disk stall, X2 partial connectivity,
//! X3 disruptive rejoin, X4 leadership transfer under load, X5 follower reads
//! after lost ReadIndex messages.

use raft_sm::kv::Command;
use raft_sm::{NodeId, Note, Rejection, Role};
use scenarios::{
    agreed_leader, all_caught_up, all_have, for_each_seed, for_each_seed_n, note_mark, noted_since,
    wait_one_leader_agreed, write_ok, ClusterExt, SEEDS_SLOW,
};
use sim::{Cluster, Consistency, ReadAnswer, Who, WriteAnswer};

/// X1: 3 nodes, 4 clients; the leader's fsyncs hang for 8 s (longer than any
/// election timeout).
/// Goal: the cluster keeps (or regains) write availability within
/// `election_timeout_ms_max + 1000` ms of the stall: a harness write at
/// whoever leads then is applied, and the clients complete operations during
/// the stall; after it ends everything converges and the history is linearizable.
#[test]
fn x1_leader_disk_stall_keeps_writes_available() {
    for_each_seed_n("x1_leader_disk_stall_keeps_writes_available", 0x71_0000, SEEDS_SLOW, |run| {
        let mut cluster = Cluster::new(run.options_with_clients(3, 4));
        wait_one_leader_agreed(&mut cluster, 10_000);
        cluster.run_for(1_000);
        cluster.stall_disk(Who::Leader, 8_000);
        let stalled_at = cluster.now_ms();
        let completed_before = cluster.history().completed();
        let bound_ms = cluster.options().election_timeout_ms_max + 1_000;
        let command = Command::set("x1", "written-during-the-stall").with_session(901, 1);
        let mut written = false;
        while !written && cluster.now_ms() < stalled_at + bound_ms {
            if cluster.leader().is_some() {
                let left = stalled_at + bound_ms - cluster.now_ms();
                written =
                    cluster.propose_and_wait(Who::Leader, &command, left.min(500)) == WriteAnswer::Applied(Ok(()));
            } else {
                cluster.run_for(20);
            }
        }
        assert!(written, "no write applied within {bound_ms} ms of the leader's disk stall");
        cluster.run_for(stalled_at + 8_000 - cluster.now_ms().min(stalled_at + 8_000));
        assert!(cluster.history().completed() > completed_before + 10, "the clients made progress during the stall");
        assert_eq!(cluster.counters().get("disk_stalls"), 1);
        cluster.check();
        assert!(all_have(&cluster, "x1", "written-during-the-stall"));
    });
}

/// X2: 5 nodes with partial connectivity from the start: node 4 reaches only
/// node 2, node 5 reaches only node 3 (both directions); 4 clients.
/// Goal: a stable leader still emerges (one of 1, 2, 3, the only nodes that can
/// gather a majority), keeps its leadership and term for 10 s despite 4 and 5
/// timing out, and commits writes.
#[test]
fn x2_partial_connectivity_stable_leader() {
    for_each_seed_n("x2_partial_connectivity_stable_leader", 0x72_0000, SEEDS_SLOW, |run| {
        let mut cluster = Cluster::new(run.options_with_clients(5, 4));
        cluster.restrict(4, &[NodeId(2)]);
        cluster.restrict(5, &[NodeId(3)]);
        cluster.wait_for("a leader", |c| c.leader().is_some(), 10_000);
        cluster.run_for(2_000);
        let leader = cluster.resolve(Who::Leader);
        assert!([1, 2, 3].contains(&leader.0), "the leader is in the connected core, not {leader}");
        let term = cluster.node(leader).term();
        let changes = cluster.counters().get("leader_changes");
        let completed = cluster.history().completed();
        write_ok(&mut cluster, &Command::set("x2", "committed"), 5_000);
        cluster.run_for(10_000);
        assert_eq!(cluster.leader(), Some(leader), "the leader stayed");
        assert_eq!(cluster.node(leader).term(), term, "the term stayed");
        assert_eq!(cluster.counters().get("leader_changes"), changes, "no new leader was elected");
        assert!(cluster.history().completed() > completed + 20, "the clients made progress");
        cluster.check();
    });
}

/// X3: 3 nodes; isolate a follower (symmetric) for 5 s while the leader keeps
/// writing, then reconnect it.
/// Goal: the returning follower causes no leader change: it did time out and
/// start PreVote rounds while away (the counter proves it), but never raised
/// its term; after it returns the leader and term are the same and it follows.
#[test]
fn x3_disruptive_rejoin_causes_no_leader_change() {
    for_each_seed("x3_disruptive_rejoin_causes_no_leader_change", 0x73_0000, |run| {
        let mut cluster = run.cluster_with_leader(3);
        let (leader, term) = agreed_leader(&cluster).unwrap();
        let follower = cluster.resolve(Who::Follower(0));
        let pre_votes = cluster.counters().get("pre_votes");
        let elections = cluster.counters().get("elections");
        let isolated_mark = note_mark(&cluster);
        cluster.isolate(follower);
        for i in 0..10 {
            write_ok(&mut cluster, &Command::set("x3", format!("{i}")), 5_000);
        }
        cluster.run_for(5_000);
        assert!(cluster.counters().get("pre_votes") > pre_votes, "someone pre-voted");
        assert!(
            noted_since(&cluster, isolated_mark, Some(follower), |n| matches!(n, Note::PreVoteStarted { .. })),
            "the isolated follower timed out and pre-voted"
        );
        assert_eq!(cluster.node(follower).term(), term, "PreVote kept it from raising its term");
        cluster.connect(follower);
        cluster.wait_for(
            "the follower is back",
            |c| all_caught_up(c) && c.node(follower).leader() == Some(leader),
            5_000,
        );
        cluster.run_for(3_000);
        assert_eq!(agreed_leader(&cluster), Some((leader, term)), "same leader, same term");
        assert_eq!(cluster.counters().get("elections"), elections, "no election at all");
        assert!(!noted_since(&cluster, isolated_mark, None, |n| matches!(n, Note::ElectionStarted { .. })));
        assert_eq!(cluster.node(follower).kv_get("x3").as_deref(), Some("9"));
        cluster.check();
    });
}

/// X4: 3 nodes, 4 clients, acknowledged harness writes; transfer leadership to
/// a follower while the load runs, then write again.
/// Goal: the target becomes leader (in a higher term; the transfer mark proves
/// the path), the old leader follows it, and nothing is lost: every write
/// acknowledged before and after is on every node, and the clients' history
/// is linearizable.
#[test]
fn x4_leadership_transfer_under_load_loses_nothing() {
    for_each_seed("x4_leadership_transfer_under_load_loses_nothing", 0x74_0000, |run| {
        let mut cluster = Cluster::new(run.options_with_clients(3, 4));
        let (old, term) = wait_one_leader_agreed(&mut cluster, 10_000);
        let mut acknowledged = Vec::new();
        for i in 0..5 {
            write_ok(&mut cluster, &Command::set(format!("x4-{i}"), "before"), 5_000);
            acknowledged.push((format!("x4-{i}"), "before"));
        }
        let target = cluster.resolve(Who::Follower(0));
        let asked_mark = note_mark(&cluster);
        cluster.transfer_leadership(target);
        cluster.wait_for("the target leads", |c| c.leader() == Some(target), 3_000);
        assert!(
            noted_since(
                &cluster,
                asked_mark,
                Some(old),
                |n| matches!(n, Note::TransferStarted { to } if *to == target)
            ),
            "the old leader started the transfer to {target}"
        );
        assert!(cluster.node(target).term() > term);
        for i in 5..10 {
            write_ok(&mut cluster, &Command::set(format!("x4-{i}"), "after"), 5_000);
            acknowledged.push((format!("x4-{i}"), "after"));
        }
        cluster.wait_for("the old leader follows", |c| c.node(old).leader() == Some(target) && all_caught_up(c), 5_000);
        assert_eq!(cluster.node(old).role(), Some(Role::Follower));
        cluster.check();
        for (key, value) in &acknowledged {
            assert!(all_have(&cluster, key, value), "acknowledged {key}={value} on every node");
        }
    });
}

/// X5 (found by the soak, seed 0x57c): 3 nodes with `pending_reads_max = 2`;
/// cut the link follower → leader one way, so the follower's forwarded
/// ReadIndexRequests are lost (the leader still reaches it, so nobody's
/// leadership changes); two linearizable reads at the follower are answered
/// "dropped" once an election timeout passes without an answer. Then restore
/// the link.
/// Goal: the follower serves linearizable reads again within 5 s of the repair
/// (a lost forwarded read must not hold its pending-read slot for ever).
#[test]
fn x5_follower_reads_survive_lost_read_index_requests() {
    for_each_seed("x5_follower_reads_survive_lost_read_index_requests", 0x75_0000, |run| {
        let mut options = run.options(3);
        options.pending_reads_max = 2;
        let mut cluster = Cluster::new(options);
        let (leader, term) = wait_one_leader_agreed(&mut cluster, 10_000);
        write_ok(&mut cluster, &Command::set("x5", "v"), 5_000);
        let follower = cluster.resolve(Who::Follower(0));
        cluster.set_link(follower, leader, false);
        for _ in 0..2 {
            let answer = cluster.read(follower, "x5", Consistency::Linearizable);
            assert_eq!(answer, ReadAnswer::Dropped, "the lost forwarded read is given up, not held");
        }
        cluster.set_link(follower, leader, true);
        let repaired_at = cluster.now_ms();
        let mut answer = ReadAnswer::TimedOut;
        while cluster.now_ms() < repaired_at + 5_000 {
            answer = cluster.read(follower, "x5", Consistency::Linearizable);
            if answer != ReadAnswer::Rejected(Rejection::Busy) {
                break;
            }
            cluster.run_for(100);
        }
        assert_eq!(answer, ReadAnswer::Value(Some("v".into())), "a read at the follower after the repair");
        assert_eq!(agreed_leader(&cluster), Some((leader, term)), "no leader change helped");
    });
}
