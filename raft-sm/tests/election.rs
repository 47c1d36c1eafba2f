//! Elections: one leader, one vote per term (even across restarts), votes
//! counted per voter, PreVote and CheckQuorum (Raft §5.2, thesis §9.6, §6.2).

mod support;

use raft_sm::{Body, Event, Message, NodeId, Note, Role, Term, TimerKind};
use support::{ids, Pump};

#[test]
fn three_nodes_elect_exactly_one_leader_and_all_agree() {
    let mut pump = Pump::new(3);
    let leader = pump.elect(5_000);
    let term = pump.node(leader).term();
    for id in ids(3) {
        assert_eq!(pump.node(id).leader(), Some(leader), "{id} knows the leader");
        assert_eq!(pump.node(id).term(), term);
    }
    let leaders = ids(3).into_iter().filter(|&id| pump.node(id).role() == Role::Leader).count();
    assert_eq!(leaders, 1);
}

#[test]
fn five_nodes_elect_and_the_term_stays_put_while_the_leader_is_healthy() {
    let mut pump = Pump::new(5);
    let leader = pump.elect(5_000);
    let term = pump.node(leader).term();
    pump.run_for(60_000);
    assert_eq!(pump.stable_leader(), Some(leader));
    assert_eq!(pump.node(leader).term(), term, "no election while the leader is healthy");
    let elections = pump.notes.iter().filter(|(_, n)| matches!(n, Note::ElectionStarted { .. })).count();
    assert_eq!(elections, 1);
}

#[test]
fn a_duplicated_vote_reply_is_not_counted_twice() {
    let mut pump = Pump::with_config(5, |c| c.pre_vote = false);
    let candidate = NodeId(1);
    pump.campaign(candidate);
    assert_eq!(pump.node(candidate).role(), Role::Candidate);
    let requests = pump.take(|m| m.to == NodeId(2));
    for request in requests {
        pump.deliver(request);
    }
    let grant = pump.take(|m| m.from == NodeId(2) && m.to == candidate);
    assert_eq!(grant.len(), 1);
    assert!(matches!(grant[0].body, Body::RequestVoteResponse(raft_sm::RequestVoteResponse { granted: true, .. })));
    pump.deliver(grant[0].clone());
    pump.deliver(grant[0].clone());
    pump.deliver(grant[0].clone());
    assert_eq!(pump.node(candidate).role(), Role::Candidate, "self + one voter three times is not a majority of 5");
}

#[test]
fn a_node_votes_once_per_term_even_after_a_restart() {
    let mut pump = Pump::with_config(3, |c| c.pre_vote = false);
    pump.campaign(NodeId(1));
    let term = pump.node(NodeId(1)).term();
    // Node 3 grants its vote to node 1 ...
    for request in pump.take(|m| m.to == NodeId(3)) {
        pump.deliver(request);
    }
    assert_eq!(pump.node(NodeId(3)).voted_for(), Some(NodeId(1)));
    pump.pool.clear();
    // ... crashes and restarts from its disk ...
    pump.crash(NodeId(3));
    pump.restart(NodeId(3));
    assert_eq!(pump.node(NodeId(3)).voted_for(), Some(NodeId(1)), "the vote was durable before it was sent");
    // ... and refuses node 2, a candidate in the same term.
    let request = Message {
        from: NodeId(2),
        to: NodeId(3),
        term,
        body: Body::RequestVote(raft_sm::RequestVote {
            pre_vote: false,
            transfer: false,
            last_log_index: raft_sm::LogIndex(5),
            last_log_term: Term(9),
        }),
    };
    pump.step(NodeId(3), Event::Message(request));
    let answers = pump.take(|m| m.from == NodeId(3) && m.to == NodeId(2));
    assert_eq!(answers.len(), 1);
    assert!(matches!(answers[0].body, Body::RequestVoteResponse(raft_sm::RequestVoteResponse { granted: false, .. })));
    assert_eq!(pump.node(NodeId(3)).voted_for(), Some(NodeId(1)));
}

#[test]
fn a_vote_grant_waits_until_the_vote_is_durable() {
    let mut pump = Pump::with_config(3, |c| c.pre_vote = false);
    pump.auto_persist = false;
    pump.campaign(NodeId(1));
    // The candidate's own requests wait for its vote for itself to be durable.
    assert!(pump.pool.is_empty(), "RequestVote left before the candidate's vote was durable");
    pump.persist(NodeId(1));
    for request in pump.take(|m| m.to == NodeId(2)) {
        pump.deliver(request);
    }
    assert!(pump.take(|m| m.from == NodeId(2)).is_empty(), "grant sent before the vote was durable");
    pump.persist(NodeId(2));
    let grant = pump.take(|m| m.from == NodeId(2));
    assert!(matches!(
        grant[..],
        [Message { body: Body::RequestVoteResponse(raft_sm::RequestVoteResponse { granted: true, .. }), .. }]
    ));
}

#[test]
fn prevote_keeps_a_rejoining_node_from_disrupting_the_leader() {
    let mut pump = Pump::new(3);
    let leader = pump.elect(5_000);
    let term = pump.node(leader).term();
    let follower = pump.followers(leader)[0];
    pump.isolate(follower);
    pump.run_for(10_000);
    assert_eq!(pump.node(follower).term(), term, "PreVote failed, so the isolated node never raised its term");
    assert!(pump.notes_of(follower).iter().any(|n| matches!(n, Note::PreVoteStarted { .. })));
    pump.heal();
    pump.run_for(5_000);
    assert_eq!(pump.stable_leader(), Some(leader), "the leader survived the rejoin");
    assert_eq!(pump.node(leader).term(), term);
}

#[test]
fn without_prevote_a_rejoining_node_does_raise_the_term() {
    // The control experiment for the test above: the disruption is real.
    let mut pump = Pump::with_config(3, |c| {
        c.pre_vote = false;
        c.check_quorum = false;
    });
    let leader = pump.elect(5_000);
    let term = pump.node(leader).term();
    let follower = pump.followers(leader)[0];
    pump.isolate(follower);
    pump.run_for(10_000);
    assert!(pump.node(follower).term() > term);
    pump.heal();
    pump.run_for(5_000);
    let new_leader = pump.elect(5_000);
    assert!(pump.node(new_leader).term() > term);
}

#[test]
fn check_quorum_makes_an_isolated_leader_step_down() {
    let mut pump = Pump::new(3);
    let leader = pump.elect(5_000);
    pump.isolate(leader);
    pump.run_for(3_000);
    assert_eq!(pump.node(leader).role(), Role::Follower);
    let stepped_down = pump
        .notes_of(leader)
        .into_iter()
        .any(|n| matches!(n, Note::SteppedDown { reason: raft_sm::StepDownReason::QuorumInactive, .. }));
    assert!(stepped_down, "the leader stepped down because of CheckQuorum, not a higher term");
}

#[test]
fn a_higher_term_in_a_reply_makes_the_leader_step_down() {
    let mut pump = Pump::new(3);
    let leader = pump.elect(5_000);
    let follower = pump.followers(leader)[0];
    let term = pump.node(leader).term();
    let reply = Message {
        from: follower,
        to: leader,
        term: Term(term.0 + 5),
        body: Body::AppendEntriesResponse(raft_sm::AppendEntriesResponse {
            success: false,
            match_index: raft_sm::LogIndex(0),
            reject_hint: None,
            read_round: 0,
        }),
    };
    pump.step(leader, Event::Message(reply));
    assert_eq!(pump.node(leader).role(), Role::Follower);
    assert_eq!(pump.node(leader).term(), Term(term.0 + 5));
}

#[test]
fn stale_and_early_timer_events_are_ignored() {
    let mut pump = Pump::new(3);
    let before = pump.node(NodeId(1)).term();
    // Time 0: the election deadline is at least 600 ms away.
    pump.step(NodeId(1), Event::Timer(TimerKind::Election));
    pump.step(NodeId(1), Event::Timer(TimerKind::Heartbeat));
    assert_eq!(pump.node(NodeId(1)).role(), Role::Follower);
    assert_eq!(pump.node(NodeId(1)).term(), before);
    assert!(pump.pool.is_empty());
}

/// Found by the simulator: a single-node cluster must not lead a term before its
/// vote for that term is durable, or a crash lets it lead the same term twice.
#[test]
fn a_single_node_leads_only_once_its_vote_is_durable() {
    let mut pump = Pump::new(1);
    pump.auto_persist = false;
    pump.campaign(NodeId(1));
    assert_eq!(pump.node(NodeId(1)).role(), Role::Candidate);
    pump.crash(NodeId(1));
    pump.restart(NodeId(1));
    assert_eq!(pump.node(NodeId(1)).term(), Term(0), "the vote was lost with the crash");
    pump.campaign(NodeId(1));
    pump.persist(NodeId(1));
    assert_eq!(pump.node(NodeId(1)).role(), Role::Leader);
    assert_eq!(pump.node(NodeId(1)).term(), Term(1));
}

/// A node told to hold its vote until its log reaches an index (after a repair
/// discarded entries it had acknowledged) neither campaigns nor grants votes
/// while its log is shorter, and votes again once a leader has caught it up.
#[test]
fn a_node_holding_its_vote_neither_campaigns_nor_votes_until_its_log_reaches_the_index() {
    use raft_sm::LogIndex;
    let held = NodeId(3);
    let mut pump = Pump::with_config(3, |c| {
        if c.id == held {
            c.vote_after_index = Some(LogIndex(1_000));
        }
    });
    let leader = pump.elect(10_000);
    assert_ne!(leader, held);
    pump.crash(leader);
    pump.run_for(20_000);
    assert_eq!(pump.stable_leader(), None, "the held node's vote is the only one left and it is refused");
    let held_notes = pump.notes_of(held);
    assert!(
        !held_notes.iter().any(|n| matches!(n, Note::PreVoteStarted { .. } | Note::ElectionStarted { .. })),
        "a held node never campaigns: {held_notes:?}"
    );
    assert!(
        held_notes.iter().any(
            |n| matches!(n, Note::VoteRejected { reason, .. } if *reason == raft_sm::VoteRefusal::RepairedNotCaughtUp)
        ),
        "it says why it refuses: {held_notes:?}"
    );

    // Held only until index 1: the first leader's no-op entry reaches it.
    let mut pump = Pump::with_config(3, |c| {
        if c.id == held {
            c.vote_after_index = Some(LogIndex(1));
        }
    });
    let leader = pump.elect(10_000);
    pump.run_for(1_000);
    assert!(pump.node(held).last_log_index() >= LogIndex(1));
    pump.crash(leader);
    let next = pump.elect(20_000);
    assert_ne!(next, leader, "the caught-up node votes again");
}
