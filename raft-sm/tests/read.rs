//! ReadIndex reads (Raft thesis §6.4): confirmed by a heartbeat round, served
//! once applied, never by a deposed leader nor by a new leader before its no-op
//! commits; followers forward to the leader.

mod support;

use raft_sm::kv::Command;
use raft_sm::{Body, Event, LogIndex, Message, NodeId, ReadOutcome, Rejection, Role};
use support::{ids, Pump};

#[test]
fn a_read_on_the_leader_waits_for_a_heartbeat_round() {
    let mut pump = Pump::new(3);
    let leader = pump.elect(5_000);
    pump.propose(leader, 1, &Command::set("x", "1"));
    pump.run_for(300);
    pump.step(leader, Event::Read { id: 10 });
    assert!(!pump.reads.contains_key(&10), "not served before a majority confirmed leadership");
    pump.deliver_all(100);
    let ReadOutcome::Ready { read_index } = pump.reads[&10] else { panic!("{:?}", pump.reads[&10]) };
    assert!(read_index >= LogIndex(2));
    assert_eq!(pump.hosts[&leader].kv().get("x"), Ok("1"));
}

#[test]
fn a_read_on_a_follower_is_forwarded_and_sees_the_latest_write() {
    let mut pump = Pump::new(3);
    let leader = pump.elect(5_000);
    pump.run_for(300);
    let follower = pump.followers(leader)[0];
    pump.propose(leader, 1, &Command::set("y", "2"));
    // The write commits on the leader and the other follower; this follower hears
    // nothing of it before its read.
    pump.cut.insert((leader, follower));
    pump.deliver_all(1_000);
    pump.cut.clear();
    assert_eq!(pump.hosts[&follower].kv().get("y"), Err(raft_sm::kv::KvError::KeyNotFound));
    pump.step(follower, Event::Read { id: 20 });
    assert!(pump.pool.iter().any(|m| m.from == follower && matches!(m.body, Body::ReadIndexRequest(_))));
    pump.deliver_all(1_000);
    assert!(matches!(pump.reads[&20], ReadOutcome::Ready { .. }));
    assert_eq!(pump.hosts[&follower].kv().get("y"), Ok("2"), "read-your-write through the follower");
}

#[test]
fn a_deposed_leader_never_serves_a_read() {
    let mut pump = Pump::new(3);
    let old = pump.elect(5_000);
    pump.run_for(300);
    pump.isolate(old);
    pump.step(old, Event::Read { id: 30 });
    pump.run_for(300);
    assert!(!pump.reads.contains_key(&30), "no majority confirmed: no answer yet");
    pump.run_for(3_000);
    assert_ne!(pump.node(old).role(), Role::Leader);
    assert_eq!(pump.reads[&30], ReadOutcome::Dropped, "answered dropped when it stepped down");
    // Meanwhile the majority moved on; a read at the old leader is refused or forwarded, never stale.
    pump.step(old, Event::Read { id: 31 });
    assert!(!matches!(pump.reads.get(&31), Some(ReadOutcome::Ready { .. })));
}

#[test]
fn a_new_leader_serves_no_read_before_its_noop_commits() {
    let mut pump = Pump::with_config(3, |c| c.pre_vote = false);
    pump.campaign(NodeId(1));
    // Deliver only the election: the leader's appends (with its no-op) wait.
    for _ in 0..10 {
        let votes = pump.take(|m| matches!(m.body, Body::RequestVote(_) | Body::RequestVoteResponse(_)));
        for vote in votes {
            pump.deliver(vote);
        }
    }
    assert_eq!(pump.node(NodeId(1)).role(), Role::Leader);
    pump.step(NodeId(1), Event::Read { id: 40 });
    // Followers echo the read round but never acknowledge the no-op yet.
    let held: Vec<Message> = pump.take(|m| matches!(m.body, Body::AppendEntries(_)));
    assert!(!held.is_empty());
    assert!(!pump.reads.contains_key(&40), "no read before the no-op commits");
    for message in held {
        pump.deliver(message);
    }
    pump.deliver_all(1_000);
    assert!(matches!(pump.reads[&40], ReadOutcome::Ready { .. }));
}

#[test]
fn a_read_without_a_known_leader_is_rejected_at_once() {
    let mut pump = Pump::new(3);
    pump.step(NodeId(2), Event::Read { id: 50 });
    assert_eq!(pump.reads[&50], ReadOutcome::Rejected(Rejection::NotLeader { leader: None }));
}

#[test]
fn reads_in_a_single_node_cluster_need_no_round_trip() {
    let mut pump = Pump::new(1);
    let leader = pump.elect(5_000);
    pump.propose(leader, 1, &Command::set("z", "3"));
    pump.step(leader, Event::Read { id: 60 });
    assert!(matches!(pump.reads[&60], ReadOutcome::Ready { .. }));
    assert_eq!(pump.hosts[&leader].kv().get("z"), Ok("3"));
    assert_eq!(ids(1), vec![leader]);
}

#[test]
fn a_forwarded_read_whose_answer_is_lost_is_dropped_after_an_election_timeout() {
    let mut pump = Pump::new(3);
    let leader = pump.elect(5_000);
    pump.run_for(300);
    let follower = pump.followers(leader)[0];
    pump.step(follower, Event::Read { id: 70 });
    let lost = pump.take(|m| matches!(m.body, Body::ReadIndexRequest(_)));
    assert_eq!(lost.len(), 1);
    pump.run_for(1_000);
    assert!(!pump.reads.contains_key(&70), "still waiting within the timeout");
    pump.run_for(1_000);
    assert_eq!(pump.reads[&70], ReadOutcome::Dropped, "given up, not held forever");
    assert_eq!(pump.stable_leader(), Some(leader), "no leader change was needed");
}
