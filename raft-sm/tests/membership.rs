//! Membership changes (Raft thesis chapter 4) on the in-test pump: learners,
//! promotion only when caught up, single-voter and joint changes, the barrier,
//! one change at a time, removing the leader, and the rule that a
//! configuration takes effect when appended (so truncation reverts it, and
//! restart rebuilds it from the log or the snapshot).

mod support;

use raft_sm::kv::Command;
use raft_sm::NodeId;
use raft_sm::{
    Body, ChangeError, Event, LogIndex, Membership, MembershipChange, Note, ProposalOutcome, Rejection, Role,
    StepDownReason,
};
use support::{ids, Pump};

/// Nodes 1..=voters bootstrap the cluster; the others up to `total` join empty.
fn cluster(voters: u64, total: u64) -> Pump {
    Pump::with_config(total, move |config| {
        config.voters = if config.id.0 <= voters { ids(voters) } else { Vec::new() };
        config.snapshot_threshold_entries = 20;
        config.promote_lag_entries_max = 5;
    })
}

/// The leader of the highest term whose configuration's members that are up
/// and connected all follow it (at least one of them, unless it is alone);
/// joining nodes not yet added are left out.
fn stable_leader(pump: &Pump) -> Option<NodeId> {
    let leader = pump
        .hosts
        .iter()
        .filter(|(_, h)| h.up && h.node().role() == Role::Leader)
        .max_by_key(|(_, h)| h.node().term())
        .map(|(id, _)| *id)?;
    let node = pump.node(leader);
    let (term, members) = (node.term(), node.membership().members());
    let connected: Vec<NodeId> = members
        .into_iter()
        .filter(|&id| id != leader && pump.hosts[&id].up && !pump.cut.contains(&(leader, id)))
        .collect();
    let follows = |id: &NodeId| pump.node(*id).leader() == Some(leader) && pump.node(*id).term() == term;
    let alone = node.membership().members() == vec![leader];
    (connected.iter().all(follows) && (alone || !connected.is_empty())).then_some(leader)
}

/// Runs until [`stable_leader`] names one, within 10 s.
fn elect(pump: &mut Pump) -> NodeId {
    for _ in 0..200 {
        pump.run_for(50);
        if let Some(leader) = stable_leader(pump) {
            return leader;
        }
    }
    panic!("no leader within 10 s");
}

fn change(pump: &mut Pump, at: NodeId, id: u64, change: MembershipChange) -> ProposalOutcome {
    pump.step(at, Event::ChangeMembership { id, change });
    pump.proposals.get(&id).cloned().expect("a change is answered at once")
}

fn write(pump: &mut Pump, at: NodeId, id: u64) {
    pump.propose(at, id, &Command::set(format!("k{id}"), "v"));
}

fn changed_to(pump: &Pump, id: NodeId) -> Vec<Membership> {
    pump.notes_of(id)
        .into_iter()
        .filter_map(|note| match note {
            Note::MembershipChanged { membership, .. } => Some(membership.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn a_joining_node_never_campaigns_until_it_is_added() {
    let mut pump = cluster(3, 4);
    let leader = elect(&mut pump);
    pump.run_for(10_000);
    assert_eq!(pump.node(NodeId(4)).role(), Role::Follower);
    assert_eq!(pump.node(NodeId(4)).term().0, 0, "it neither campaigned nor heard anyone");
    assert_eq!(stable_leader(&pump), Some(leader));
    assert_eq!(pump.node(leader).membership(), &Membership::new(ids(3)));
}

#[test]
fn a_learner_catches_up_by_snapshot_then_is_promoted_and_counts() {
    let mut pump = cluster(3, 4);
    let leader = elect(&mut pump);
    for id in 0..60 {
        write(&mut pump, leader, id);
    }
    pump.run_for(1_000);
    assert!(pump.node(leader).log_base().0 > LogIndex(0), "the leader compacted its log");
    let added = change(&mut pump, leader, 100, MembershipChange::AddLearner(NodeId(4)));
    assert!(matches!(added, ProposalOutcome::Accepted { .. }), "{added:?}");
    pump.run_for(2_000);
    assert!(pump.applied_answers.contains_key(&100), "the learner entry applied");
    let learner = pump.node(NodeId(4));
    assert_eq!(learner.membership(), &Membership::with_learners(ids(3), [NodeId(4)]));
    assert!(learner.snapshot().is_some(), "it caught up by snapshot");
    assert_eq!(learner.commit_index(), pump.node(leader).commit_index());
    assert_eq!(learner.role(), Role::Follower);

    let promoted = change(&mut pump, leader, 101, MembershipChange::Promote(NodeId(4)));
    assert!(matches!(promoted, ProposalOutcome::Accepted { .. }), "{promoted:?}");
    pump.run_for(1_000);
    for id in ids(4) {
        assert_eq!(pump.node(id).membership(), &Membership::new(ids(4)), "{id}");
    }
    // Four voters need three: with two cut off, nothing commits.
    let commit = pump.node(leader).commit_index();
    let others: Vec<NodeId> = pump.followers(leader);
    pump.isolate(others[0]);
    pump.isolate(others[1]);
    write(&mut pump, leader, 200);
    pump.run_for(300);
    assert_eq!(pump.node(leader).commit_index(), commit, "two of four voters are not a majority");
}

#[test]
fn a_learner_that_is_behind_is_not_promoted_and_the_leader_says_why() {
    let mut pump = cluster(3, 4);
    let leader = elect(&mut pump);
    assert!(matches!(
        change(&mut pump, leader, 1, MembershipChange::AddLearner(NodeId(4))),
        ProposalOutcome::Accepted { .. }
    ));
    pump.run_for(500);
    pump.isolate(NodeId(4));
    for id in 10..20 {
        write(&mut pump, leader, id);
    }
    pump.run_for(300);
    let refused = change(&mut pump, leader, 2, MembershipChange::Promote(NodeId(4)));
    let ProposalOutcome::Rejected(Rejection::NotCaughtUp { id, lag_entries, .. }) = refused else {
        panic!("expected NotCaughtUp, got {refused:?}");
    };
    assert_eq!((id, lag_entries), (NodeId(4), 10));
    assert!(Rejection::NotCaughtUp { id, lag_entries, silent_ms: Some(300) }
        .to_string()
        .contains("10 entries behind, last heard 300 ms ago"));
    // Silent for longer than an election timeout: refused even once the lag would be fine.
    pump.run_for(2_000);
    pump.heal();
    pump.cut.insert((NodeId(4), leader));
    pump.run_for(200);
    let silent = change(&mut pump, leader, 3, MembershipChange::Promote(NodeId(4)));
    assert!(
        matches!(silent, ProposalOutcome::Rejected(Rejection::NotCaughtUp { silent_ms: Some(ms), .. }) if ms > 1_200),
        "{silent:?}"
    );
    pump.heal();
    pump.run_for(300);
    let promoted = change(&mut pump, leader, 4, MembershipChange::Promote(NodeId(4)));
    assert!(matches!(promoted, ProposalOutcome::Accepted { .. }), "{promoted:?}");
}

#[test]
fn invalid_changes_are_refused_with_the_reason() {
    let mut pump = cluster(3, 4);
    let leader = elect(&mut pump);
    let follower = pump.followers(leader)[0];
    assert_eq!(
        change(&mut pump, follower, 1, MembershipChange::Remove(NodeId(4))),
        ProposalOutcome::Rejected(Rejection::NotLeader { leader: Some(leader) })
    );
    assert_eq!(
        change(&mut pump, leader, 2, MembershipChange::Promote(NodeId(4))),
        ProposalOutcome::Rejected(Rejection::InvalidChange(ChangeError::NotALearner(NodeId(4))))
    );
    assert_eq!(
        change(&mut pump, leader, 3, MembershipChange::AddLearner(leader)),
        ProposalOutcome::Rejected(Rejection::InvalidChange(ChangeError::AlreadyMember(leader)))
    );
}

#[test]
fn the_barrier_a_new_leader_changes_nothing_before_an_entry_of_its_term_commits() {
    let mut pump = cluster(3, 4);
    // The leader's no-op cannot commit: its followers' answers are lost.
    pump.drop_if = Some(|message| matches!(message.body, Body::AppendEntriesResponse(_)));
    let leader = elect(&mut pump);
    assert_eq!(pump.node(leader).commit_index(), LogIndex(0));
    assert_eq!(
        change(&mut pump, leader, 1, MembershipChange::AddLearner(NodeId(4))),
        ProposalOutcome::Rejected(Rejection::NoCommitInTerm)
    );
    pump.drop_if = None;
    pump.run_for(300);
    assert_eq!(pump.node(leader).term_at(pump.node(leader).commit_index()), Some(pump.node(leader).term()));
    assert!(matches!(
        change(&mut pump, leader, 2, MembershipChange::AddLearner(NodeId(4))),
        ProposalOutcome::Accepted { .. }
    ));
}

#[test]
fn one_change_at_a_time() {
    let mut pump = cluster(3, 5);
    let leader = elect(&mut pump);
    for follower in pump.followers(leader) {
        pump.isolate(follower);
    }
    assert!(matches!(
        change(&mut pump, leader, 1, MembershipChange::AddLearner(NodeId(4))),
        ProposalOutcome::Accepted { .. }
    ));
    assert!(pump.node(leader).membership_change_in_progress());
    assert_eq!(
        change(&mut pump, leader, 2, MembershipChange::AddLearner(NodeId(5))),
        ProposalOutcome::Rejected(Rejection::ChangeInProgress)
    );
    assert_eq!(pump.node(leader).membership(), &Membership::with_learners(ids(3), [NodeId(4)]), "in effect at once");
}

#[test]
fn a_replace_goes_through_joint_and_leaves_it_by_itself() {
    let mut pump = cluster(3, 4);
    let leader = elect(&mut pump);
    assert!(matches!(
        change(&mut pump, leader, 1, MembershipChange::AddLearner(NodeId(4))),
        ProposalOutcome::Accepted { .. }
    ));
    pump.run_for(500);
    let gone = pump.followers(leader).into_iter().find(|&id| id != NodeId(4)).expect("a voter follower");
    let replace = MembershipChange::Replace { add: NodeId(4), remove: gone };
    assert!(matches!(change(&mut pump, leader, 2, replace), ProposalOutcome::Accepted { .. }));
    pump.run_for(1_000);
    let mut survivors: Vec<NodeId> = ids(4).into_iter().filter(|&id| id != gone).collect();
    survivors.sort();
    let history = changed_to(&pump, NodeId(4));
    let joint = history.iter().find(|m| m.is_joint()).expect("the joint configuration was in effect");
    assert_eq!((joint.voters.clone(), joint.outgoing.clone()), (survivors.clone(), ids(3)));
    assert_eq!(history.last(), Some(&Membership::new(survivors.clone())), "left joint");
    assert_eq!(pump.node(leader).membership(), &Membership::new(survivors));
    assert!(!pump.node(leader).membership_change_in_progress());
    assert!(pump.applied_answers.contains_key(&2));
}

#[test]
fn a_removed_leader_leads_until_the_change_commits_then_hands_over() {
    let mut pump = cluster(3, 3);
    let leader = elect(&mut pump);
    write(&mut pump, leader, 10);
    pump.run_for(200);
    assert!(matches!(change(&mut pump, leader, 1, MembershipChange::Remove(leader)), ProposalOutcome::Accepted { .. }));
    assert_eq!(pump.node(leader).role(), Role::Leader, "it keeps leading while the change is uncommitted");
    pump.run_for(2_000);
    assert!(pump.applied_answers.contains_key(&1), "the change was answered as applied, not dropped");
    assert!(pump
        .notes_of(leader)
        .iter()
        .any(|note| matches!(note, Note::SteppedDown { reason: StepDownReason::RemovedFromConfiguration, .. })));
    let next = stable_leader(&pump).expect("a new leader");
    assert_ne!(next, leader);
    assert!(pump.count_sent("TimeoutNow") >= 1, "the removed leader handed over");
    // It never campaigns again, and the others never hear it.
    let term = pump.node(next).term();
    pump.run_for(20_000);
    assert_eq!(pump.node(next).term(), term);
    assert_ne!(pump.node(leader).role(), Role::Leader);
    assert!(!pump.node(next).membership().contains(leader));
}

#[test]
fn a_removed_follower_with_its_old_configuration_cannot_disrupt() {
    let mut pump = cluster(3, 3);
    let leader = elect(&mut pump);
    let removed = pump.followers(leader)[0];
    // The removed node never learns the change: it keeps its old configuration.
    pump.isolate(removed);
    assert!(matches!(
        change(&mut pump, leader, 1, MembershipChange::Remove(removed)),
        ProposalOutcome::Accepted { .. }
    ));
    pump.run_for(1_000);
    assert!(pump.applied_answers.contains_key(&1));
    assert_eq!(pump.node(removed).membership(), &Membership::new(ids(3)));
    // Cut off, it campaigns and raises its term; healed, nobody listens to it.
    pump.run_for(10_000);
    pump.heal();
    let term = pump.node(leader).term();
    pump.run_for(20_000);
    assert_eq!(stable_leader(&pump), Some(leader));
    assert_eq!(pump.node(leader).term(), term, "its higher terms never reached the members");
}

#[test]
fn an_appended_configuration_is_in_effect_and_a_truncation_reverts_it() {
    let mut pump = cluster(3, 4);
    let first = elect(&mut pump);
    pump.isolate(first);
    assert!(matches!(
        change(&mut pump, first, 1, MembershipChange::AddLearner(NodeId(4))),
        ProposalOutcome::Accepted { .. }
    ));
    assert!(pump.node(first).membership().is_learner(NodeId(4)), "in effect when appended");
    let second = elect(&mut pump);
    assert_ne!(second, first);
    write(&mut pump, second, 7);
    pump.run_for(300);
    pump.heal();
    pump.run_for(1_000);
    assert_eq!(pump.node(first).membership(), &Membership::new(ids(3)), "the truncated entry no longer counts");
    assert!(matches!(pump.proposals.get(&1), Some(ProposalOutcome::Dropped)));
}

#[test]
fn restart_rebuilds_the_configuration_from_the_log_and_the_snapshot() {
    let mut pump = cluster(3, 4);
    let leader = elect(&mut pump);
    assert!(matches!(
        change(&mut pump, leader, 1, MembershipChange::AddLearner(NodeId(4))),
        ProposalOutcome::Accepted { .. }
    ));
    pump.run_for(500);
    let expected = Membership::with_learners(ids(3), [NodeId(4)]);
    let follower = pump.followers(leader).into_iter().find(|&id| id != NodeId(4)).expect("a voter");
    pump.crash(follower);
    pump.restart(follower);
    assert_eq!(pump.node(follower).membership(), &expected, "from the log");
    pump.crash(NodeId(4));
    pump.restart(NodeId(4));
    assert_eq!(pump.node(NodeId(4)).membership(), &expected, "a joining node restarts from what it stored");
    for id in 0..40 {
        write(&mut pump, leader, 10 + id);
    }
    pump.run_for(1_000);
    assert_eq!(pump.node(follower).snapshot().map(|s| &s.membership), Some(&expected), "the snapshot holds it");
    pump.crash(follower);
    pump.restart(follower);
    assert_eq!(pump.node(follower).membership(), &expected, "from the snapshot");
    pump.run_for(1_000);
    assert_eq!(stable_leader(&pump), Some(leader));
}

#[test]
fn a_demoted_voter_stops_counting_and_never_campaigns() {
    let mut pump = cluster(3, 3);
    let leader = elect(&mut pump);
    let demoted = pump.followers(leader)[0];
    assert!(matches!(
        change(&mut pump, leader, 1, MembershipChange::Demote(demoted)),
        ProposalOutcome::Accepted { .. }
    ));
    pump.run_for(500);
    assert!(pump.node(demoted).membership().is_learner(demoted));
    // The leader alone with the learner: two voters, one cut off, nothing commits.
    let other = pump.followers(leader).into_iter().find(|&id| id != demoted).expect("the other voter");
    pump.isolate(other);
    let commit = pump.node(leader).commit_index();
    write(&mut pump, leader, 5);
    pump.run_for(300);
    assert_eq!(pump.node(leader).commit_index(), commit, "a learner's acknowledgement does not count");
    // With the leader gone, the learner never starts an election.
    let campaigns = |pump: &Pump| {
        pump.notes_of(demoted)
            .into_iter()
            .filter(|note| matches!(note, Note::PreVoteStarted { .. } | Note::ElectionStarted { .. }))
            .count()
    };
    let before = campaigns(&pump);
    pump.heal();
    pump.crash(leader);
    pump.run_for(10_000);
    assert_eq!(campaigns(&pump), before, "a learner never campaigns");
    assert_ne!(pump.node(demoted).role(), Role::Leader);
    assert_ne!(pump.node(other).role(), Role::Leader, "one voter of two cannot win");
}

/// The single-server change bug of the dissertation (Ongaro, raft-dev, 2015),
/// step by step: C0 = {1,2,3,4} with learner 5. Leader 1, cut off with 5,
/// appends C1 = C0 + 5 (it reaches only 5). 2 is elected by 2, 3, 4 and, before
/// an entry of its term commits (4 never gets its appends), appends
/// C2 = C0 − 4, which 2 and 3 commit, then a write. Healed towards 4, node 1
/// campaigns under C1 and wins with 1, 4 and 5: a leader without committed
/// entries. The barrier refuses C2 (`NoCommitInTerm`); with it switched off
/// (the `membership-barrier-off` mutant) the pump's leader-completeness check
/// fires. Returns the change's answer and the safety panic, if any.
fn ongaro_sequence(barrier_off: bool) -> (ProposalOutcome, Option<String>) {
    let mut pump = Pump::with_config(5, move |config| {
        config.voters = if config.id.0 <= 4 { ids(4) } else { Vec::new() };
        // 1 times out first, then 2; the others wait long.
        let (min_ms, max_ms) = match config.id.0 {
            1 => (200, 400),
            2 => (1_000, 1_500),
            _ => (5_000, 6_000),
        };
        config.election_timeout_ms_min = min_ms;
        config.election_timeout_ms_max = max_ms;
        config.snapshot_threshold_entries = 0;
        #[cfg(feature = "mutants")]
        if barrier_off {
            config.mutant = Some(raft_sm::Mutant::MembershipBarrierOff);
        }
        #[cfg(not(feature = "mutants"))]
        let _ = barrier_off;
    });
    let (one, two, three, four, five) = (NodeId(1), NodeId(2), NodeId(3), NodeId(4), NodeId(5));
    assert_eq!(elect(&mut pump), one);
    assert!(matches!(change(&mut pump, one, 1, MembershipChange::AddLearner(five)), ProposalOutcome::Accepted { .. }));
    pump.run_for(500);
    for (a, b) in [(one, two), (one, three), (one, four), (five, two), (five, three), (five, four)] {
        pump.cut.insert((a, b));
        pump.cut.insert((b, a));
    }
    assert!(matches!(change(&mut pump, one, 2, MembershipChange::Promote(five)), ProposalOutcome::Accepted { .. }));
    pump.drop_if = Some(|message| message.to == NodeId(4) && matches!(message.body, Body::AppendEntries(_)));
    for _ in 0..400 {
        if pump.node(two).role() == Role::Leader {
            break;
        }
        pump.run_for(50);
    }
    assert_eq!(pump.node(two).role(), Role::Leader, "2 was elected by 2, 3 and 4");
    assert_ne!(pump.node(two).term_at(pump.node(two).commit_index()), Some(pump.node(two).term()));
    let outcome = change(&mut pump, two, 3, MembershipChange::Remove(four));
    let broke = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
        pump.run_for(300);
        pump.propose(two, 4, &Command::set("committed", "in C2"));
        pump.run_for(300);
        for (a, b) in [(one, four), (five, four)] {
            pump.cut.remove(&(a, b));
            pump.cut.remove(&(b, a));
        }
        pump.run_for(20_000);
    }));
    let panic = broke
        .err()
        .map(|payload| payload.downcast_ref::<String>().cloned().unwrap_or_else(|| "a non-string panic".to_string()));
    (outcome, panic)
}

#[test]
fn the_barrier_stops_the_single_server_change_bug() {
    let (outcome, panic) = ongaro_sequence(false);
    assert_eq!(outcome, ProposalOutcome::Rejected(Rejection::NoCommitInTerm));
    assert_eq!(panic, None, "safe with the barrier");
}

#[cfg(feature = "mutants")]
#[test]
fn without_the_barrier_the_single_server_change_bug_loses_a_committed_entry() {
    let (outcome, panic) = ongaro_sequence(true);
    assert!(matches!(outcome, ProposalOutcome::Accepted { .. }), "{outcome:?}");
    let panic = panic.expect("the pump's safety checks fire");
    assert!(panic.contains("leader completeness") || panic.contains("safety"), "{panic}");
}

#[test]
fn member_contexts_ride_along_to_a_learner_added_late_and_leave_with_their_member() {
    let mut pump = Pump::with_config(4, |config| {
        config.voters = if config.id.0 <= 3 { ids(3) } else { Vec::new() };
        if config.id.0 <= 3 {
            config.voter_contexts = ids(3).into_iter().map(|id| (id, format!("addr-{}", id.0).into_bytes())).collect();
        }
        config.snapshot_threshold_entries = 20;
    });
    let leader = elect(&mut pump);
    for id in 0..60 {
        write(&mut pump, leader, id);
    }
    pump.run_for(1_000);
    assert!(pump.node(leader).log_base().0 > LogIndex(0), "the leader compacted its log");
    pump.step(leader, Event::AddMember { id: 100, member: NodeId(4), context: b"addr-4".to_vec() });
    pump.run_for(2_000);
    assert!(pump.applied_answers.contains_key(&100), "the learner entry applied");
    let by_snapshot = pump.notes_of(NodeId(4)).into_iter().any(|note| matches!(note, Note::SnapshotInstalled { .. }));
    assert!(by_snapshot, "n4 caught up by snapshot");
    let learned = pump.node(NodeId(4)).membership().clone();
    assert!(learned.is_learner(NodeId(4)));
    for id in 1..=4u64 {
        let expected = format!("addr-{id}").into_bytes();
        assert_eq!(learned.context(NodeId(id)), Some(&expected[..]), "n4 knows n{id}'s context");
    }
    let gone = *ids(3).iter().find(|&&id| id != leader).unwrap();
    assert!(matches!(change(&mut pump, leader, 101, MembershipChange::Remove(gone)), ProposalOutcome::Accepted { .. }));
    pump.run_for(1_000);
    assert_eq!(pump.node(NodeId(4)).membership().context(gone), None, "a removed member's context goes");
}
