//! A: elections. A1 exactly one leader after start-up; A2 no election spam
//! under a healthy leader, on a lossless and on a lossy network.

use raft_sm::{Note, Role};
use scenarios::{agreed_leader, for_each_seed, note_mark, noted_since, wait_one_leader_agreed};
use sim::Who;

/// A1: start 3 nodes on a quiet network (symmetric, no faults).
/// Goal: after start-up there is exactly one leader, every node agrees on who it
/// is and on its term, and this stays so for the next 5 s.
#[test]
fn a1_exactly_one_leader() {
    for_each_seed("a1_exactly_one_leader", 0xA1_0000, |run| {
        let mut cluster = run.cluster(3);
        let (leader, term) = wait_one_leader_agreed(&mut cluster, 10_000);
        let leaders = cluster.nodes().iter().filter(|n| n.role() == Some(Role::Leader)).count();
        assert_eq!(leaders, 1, "exactly one node is leader");
        for node in cluster.nodes() {
            assert_eq!(node.leader(), Some(leader), "{} follows the leader", node.id());
            assert_eq!(node.term(), term, "{} is in the leader's term", node.id());
        }
        assert!(cluster.counters().get("leader_changes") >= 1, "a leader was elected by an election");
        cluster.run_for(5_000);
        assert_eq!(agreed_leader(&cluster), Some((leader, term)), "the same leader, same term, 5 s later");
    });
}

/// A2 (lossless): a healthy leader on a lossless network for 60 simulated seconds.
/// Goal: no follower starts an election (not even a PreVote round) and the
/// term does not change.
#[test]
fn a2_no_election_spam_lossless() {
    for_each_seed("a2_no_election_spam_lossless", 0xA2_0000, |run| {
        let mut cluster = run.cluster(3);
        let (leader, term) = wait_one_leader_agreed(&mut cluster, 10_000);
        let before = cluster.counters();
        let healthy_mark = note_mark(&cluster);
        cluster.run_for(60_000);
        let after = cluster.counters();
        assert_eq!(after.get("elections"), before.get("elections"), "no follower started an election");
        assert_eq!(after.get("pre_votes"), before.get("pre_votes"), "no follower even pre-voted");
        assert!(!noted_since(&cluster, healthy_mark, None, |n| matches!(
            n,
            Note::PreVoteStarted { .. } | Note::ElectionStarted { .. } | Note::SteppedDown { .. }
        )));
        assert_eq!(agreed_leader(&cluster), Some((leader, term)), "same leader and term after 60 s");
        let heartbeats = after.messages("Heartbeat").count - before.messages("Heartbeat").count;
        assert!(heartbeats >= 2 * 60_000 / 100 / 2, "the leader kept sending heartbeats ({heartbeats})");
    });
}

/// A2 (5 % loss): the same healthy leader, but the network loses 5 % of messages.
/// Goal: the term stays stable: no election is started and the leader stays.
/// A lost heartbeat or two may let a follower time out and pre-vote; PreVote
/// keeps such a round from raising the term.
#[test]
fn a2_no_election_spam_with_5_percent_loss() {
    for_each_seed("a2_no_election_spam_with_5_percent_loss", 0xA2_5000, |run| {
        let mut cluster = run.cluster(3);
        let (leader, term) = wait_one_leader_agreed(&mut cluster, 10_000);
        let lossy = sim::NetworkOptions { loss: 0.05, ..cluster.options().network.clone() };
        cluster.network().set_options(lossy);
        let before = cluster.counters();
        cluster.run_for(60_000);
        let after = cluster.counters();
        assert!(after.get("messages_lost") > before.get("messages_lost"), "the network did lose messages");
        assert_eq!(after.get("elections"), before.get("elections"), "no election was started");
        assert_eq!(cluster.node(Who::Leader).id(), leader, "the leader stayed");
        for node in cluster.nodes() {
            assert_eq!(node.term(), term, "{} is still in the first term", node.id());
        }
    });
}
