//! Harness tools ported suites need: message filters by kind, request/reply
//! specific loss, per-node message counters, the byte size of durable state,
//! and 6.824-style disconnect/reconnect.

use raft_sm::kv::Command;
use raft_sm::{Body, Message};
use sim::{Cluster, SimOptions, Who, WriteAnswer};

fn quiet(seed: u64, nodes: usize) -> SimOptions {
    let mut options = SimOptions::new(seed, nodes);
    options.verbose = false;
    options
}

#[test]
fn filtering_every_vote_reply_prevents_elections_until_cleared() {
    let mut cluster = Cluster::new(quiet(0x6a9, 3));
    fn vote_replies(message: &Message) -> bool {
        matches!(message.body, Body::RequestVoteResponse(_))
    }
    cluster.drop_messages(Some(vote_replies));
    cluster.run_for(5_000);
    assert_eq!(cluster.leader(), None, "no candidate hears a vote");
    assert!(cluster.counters().get("messages_filtered") > 0);
    cluster.drop_messages(None);
    cluster.run_until("a leader once votes flow", |c| c.leader().is_some(), 10_000).unwrap();
}

#[test]
fn replies_lost_apart_from_requests_stop_elections_but_requests_still_arrive() {
    let mut options = quiet(0x6aa, 3);
    options.network.reply_loss = 1.0;
    options.pre_vote = false; // Candidates raise their term, so arriving requests show.
    let mut cluster = Cluster::new(options);
    cluster.run_for(5_000);
    assert_eq!(cluster.leader(), None, "every vote reply is lost");
    let votes_seen = cluster.nodes().iter().filter(|node| node.term() > raft_sm::Term(0)).count();
    assert_eq!(votes_seen, 3, "requests arrive: every node moved past term 0");
}

#[test]
fn message_counters_and_durable_size_grow_with_work() {
    let mut cluster = Cluster::new(quiet(0x6ab, 3));
    cluster.run_until("a leader", |c| c.leader().is_some(), 10_000).unwrap();
    let leader = cluster.resolve(Who::Leader);
    let (sent, bytes) = (cluster.messages_sent(leader), cluster.node(leader).durable().size_bytes());
    for i in 0..20 {
        let answer = cluster.propose_and_wait(Who::Leader, &Command::set(format!("k{i}"), "v".repeat(100)), 2_000);
        assert_eq!(answer, WriteAnswer::Applied(Ok(())));
    }
    assert!(cluster.messages_sent(leader) > sent);
    assert!(cluster.messages_sent_total() >= cluster.messages_sent(leader));
    let grown = cluster.node(leader).durable().size_bytes();
    assert!(grown >= bytes + 20 * 100, "{bytes} → {grown} bytes");
}

#[test]
fn reconnect_relinks_only_with_connected_servers() {
    let mut cluster = Cluster::new(quiet(0x6ac, 3));
    let ids = cluster.ids();
    cluster.disconnect(ids[0]);
    cluster.disconnect(ids[1]);
    cluster.reconnect(ids[0]);
    assert!(cluster.network().is_connected(ids[0], ids[2]));
    assert!(!cluster.network().is_connected(ids[0], ids[1]), "n2 is still disconnected");
    cluster.reconnect(ids[1]);
    assert!(cluster.network().is_connected(ids[0], ids[1]));
}

#[test]
fn a_forced_snapshot_is_taken_below_the_threshold_and_a_lagging_node_installs_it() {
    let mut options = quiet(0x6ad, 3);
    options.snapshot_threshold_entries = 0; // Never by threshold: only when asked.
    let mut cluster = Cluster::new(options);
    cluster.run_until("a leader", |c| c.leader().is_some(), 10_000).unwrap();
    let leader = cluster.resolve(Who::Leader);
    let lagging = cluster.resolve(Who::Follower(0));
    cluster.crash(lagging);
    for i in 0..10 {
        let answer = cluster.propose_and_wait(Who::Leader, &Command::set(format!("s{i}"), "v"), 2_000);
        assert_eq!(answer, WriteAnswer::Applied(Ok(())));
    }
    assert_eq!(cluster.node(leader).core().unwrap().log_base().0, raft_sm::LogIndex(0), "no snapshot yet");
    cluster.snapshot_now(leader);
    cluster
        .run_until("the leader's snapshot durable", |c| c.node(leader).durable_snapshot_index().0 >= 10, 5_000)
        .unwrap();
    let base = cluster.node(leader).core().unwrap().log_base().0;
    assert!(base.0 >= 10, "the log was compacted to the snapshot: base {base}");
    cluster.restart(lagging);
    cluster
        .run_until(
            "the lagging node installed the snapshot",
            |c| !c.node(lagging).installed_snapshots().is_empty(),
            10_000,
        )
        .unwrap();
    assert!(cluster.node(lagging).applied_through() >= base);
    cluster.crash(lagging);
    assert!(cluster.node(lagging).applied_through() >= base, "still visible while crashed");
}
