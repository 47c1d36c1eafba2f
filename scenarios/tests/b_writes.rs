//! B: the write path. B1 a follower refuses writes with a leader hint; B2 the
//! leader answers a write only after a majority committed it and it applied.

use raft_sm::kv::Command;
use raft_sm::{ProposalOutcome, Rejection};
use scenarios::for_each_seed;
use sim::{FaultAction, Who, WriteAnswer};

/// B1: a set sent to a follower (3 nodes, quiet network).
/// Goal: it is rejected as not-leader with the leader's id as hint (the node
/// crate maps the id to the leader's client URL), and nothing is appended on
/// the follower, nor anywhere else.
#[test]
fn b1_follower_write_is_rejected_with_leader_hint() {
    for_each_seed("b1_follower_write_is_rejected_with_leader_hint", 0xB1_0000, |run| {
        let mut cluster = run.cluster_with_leader(3);
        let leader = cluster.resolve(Who::Leader);
        let follower = cluster.resolve(Who::Follower(0));
        let last_before: Vec<_> = cluster.nodes().iter().map(|n| n.last_log_index()).collect();
        match cluster.propose(follower, &Command::set("b1", "from-a-follower")) {
            ProposalOutcome::Rejected(Rejection::NotLeader { leader: hint }) => {
                assert_eq!(hint, Some(leader), "the hint names the leader")
            }
            other => panic!("the follower answered {other:?}"),
        }
        cluster.run_for(1_000);
        let last_after: Vec<_> = cluster.nodes().iter().map(|n| n.last_log_index()).collect();
        assert_eq!(last_after, last_before, "nothing was appended on any node");
        for node in cluster.nodes() {
            assert_eq!(node.kv_get("b1"), None, "{} never saw the write", node.id());
        }
    });
}

/// B2: two sets on the leader while both followers' acknowledgements cannot
/// reach it (links follower → leader cut for 400 ms, less than an election
/// timeout), then restored by a scripted repair.
/// Goal: while the acks are missing the followers hold the entry but the leader
/// neither commits nor applies it; a write is acknowledged only after the acks
/// arrive and a majority committed it, and applied on the leader before the answer;
/// a second write on a healthy network is answered with the same guarantees.
#[test]
fn b2_leader_write_acknowledged_after_majority_commit() {
    for_each_seed("b2_leader_write_acknowledged_after_majority_commit", 0xB2_0000, |run| {
        let mut cluster = run.cluster_with_leader(3);
        let leader = cluster.resolve(Who::Leader);
        let followers = cluster.followers();
        for &follower in &followers {
            cluster.set_link(follower, leader, false);
        }
        let repaired_at = cluster.now_ms() + 400;
        for &follower in &followers {
            cluster.schedule(repaired_at, FaultAction::Link { from: follower, to: leader, up: true });
        }
        let index = match cluster.propose(leader, &Command::set("b2", "0")) {
            ProposalOutcome::Accepted { index, .. } => index,
            other => panic!("the leader answered {other:?}"),
        };
        cluster.run_for(300);
        for &follower in &followers {
            assert!(cluster.node(follower).last_log_index() >= index, "{follower} received the entry");
        }
        assert!(cluster.node(leader).commit_index() < index, "not committed without the acks");
        assert_eq!(cluster.node(leader).kv_get("b2"), None, "not applied without the acks");
        let index = index.next();
        let answer = cluster.propose_and_wait(leader, &Command::set("b2", "1"), 5_000);
        assert_eq!(answer, WriteAnswer::Applied(Ok(())));
        assert!(cluster.now_ms() > repaired_at, "answered at {} ms, before acks could arrive", cluster.now_ms());
        assert_majority_has_and_leader_applied(&cluster, index);

        let index = cluster.node(leader).last_log_index().next();
        assert_eq!(cluster.propose_and_wait(leader, &Command::set("b2", "2"), 5_000), WriteAnswer::Applied(Ok(())));
        assert_majority_has_and_leader_applied(&cluster, index);
        assert_eq!(cluster.node(leader).kv_get("b2").as_deref(), Some("2"));
    });
}

/// At the moment of the answer: the leader committed and applied `index`, and a
/// majority of nodes hold the leader's entry there.
fn assert_majority_has_and_leader_applied(cluster: &sim::Cluster, index: raft_sm::LogIndex) {
    let leader = cluster.node(Who::Leader);
    assert!(leader.commit_index() >= index, "committed at the answer");
    assert!(leader.applied_index() >= index, "applied on the leader before the answer");
    let term = leader.core().unwrap().term_at(index).expect("the leader has the entry");
    let holders = cluster
        .nodes()
        .iter()
        .filter(|n| {
            n.core().is_some_and(|core| core.term_at(index) == Some(term) && n.durable_hard_state().term >= term)
        })
        .count();
    assert!(holders >= 2, "only {holders} of 3 nodes hold the entry at {index}");
}
