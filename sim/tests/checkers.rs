//! The safety checkers catch what they exist for: each test feeds one kind of
//! violation and expects it named.

use raft_sm::Write;
use raft_sm::{
    Body, Config, Entry, Event, HardState, LogIndex, Message, Node, NodeId, Payload, RestoredState, Role, Term,
    TimerKind,
};
use sim::checker::progress::ProgressChecker;
use sim::checker::{apply::ApplyChecker, durability, election::ElectionChecker, log::LogChecker, Step};
use sim::explore::run_seed;
use sim::node_host::NodeHost;
use sim::{FailureKind, SimOptions};

fn entry(index: u64, term: u64, payload: &str) -> Entry {
    Entry { term: Term(term), index: LogIndex(index), payload: Payload::Command(payload.as_bytes().to_vec()) }
}

/// A single-node cluster `id` that elected itself (term = restored term + 1).
fn single_node_leader(id: u64, restored: RestoredState) -> Node {
    let mut node = Node::new(Config::new(NodeId(id), vec![NodeId(id)]), restored).unwrap();
    let deadline = node
        .start(0)
        .iter()
        .find_map(|action| match action {
            raft_sm::Action::SetTimer { kind: TimerKind::Election, deadline_ms } => *deadline_ms,
            _ => None,
        })
        .expect("an election timer");
    let actions = node.step(deadline, Event::Timer(TimerKind::Election));
    // It leads once its vote for itself is durable.
    let sync = actions
        .iter()
        .find_map(|action| match action {
            raft_sm::Action::Sync { id } => Some(*id),
            _ => None,
        })
        .expect("the vote is persisted");
    node.step(deadline, Event::Persisted { id: sync });
    assert_eq!(node.role(), Role::Leader);
    node
}

#[test]
fn two_leaders_in_one_term_break_election_safety() {
    let a = single_node_leader(1, RestoredState::default());
    let b = single_node_leader(2, RestoredState::default());
    assert_eq!(a.term(), b.term());
    let mut checker = ElectionChecker::default();
    assert_eq!(checker.observe(&a), Ok(true), "a just became leader");
    assert_eq!(checker.observe(&a), Ok(false), "and is still the same leader");
    let violation = checker.observe(&b).unwrap_err();
    assert_eq!(violation.invariant, "election safety");
    assert!(violation.detail.contains("two leaders in t1"), "{violation}");
}

#[test]
fn two_votes_in_one_term_break_election_safety() {
    let vote = |to: u64| Message {
        from: NodeId(1),
        to: NodeId(to),
        term: Term(4),
        body: Body::RequestVoteResponse(raft_sm::RequestVoteResponse { pre_vote: false, granted: true }),
    };
    let mut checker = ElectionChecker::default();
    checker.observe_vote(&vote(2)).unwrap();
    checker.observe_vote(&vote(2)).unwrap();
    let violation = checker.observe_vote(&vote(3)).unwrap_err();
    assert!(violation.detail.contains("n1 voted twice in t4"), "{violation}");
}

#[test]
fn different_entries_at_one_index_and_term_break_log_matching() {
    let mut checker = LogChecker::default();
    checker.observe_append(NodeId(1), &[entry(1, 1, "a"), entry(2, 1, "b")], Some(Term(0)), Step::default()).unwrap();
    checker.observe_append(NodeId(2), &[entry(2, 1, "b")], Some(Term(1)), Step::default()).unwrap();
    let at = |event| Step { at_ms: 10 * event, event };
    let violation = checker.observe_append(NodeId(3), &[entry(2, 1, "x")], Some(Term(1)), at(7)).unwrap_err();
    assert_eq!(violation.invariant, "log matching");
    assert!(
        violation.detail.contains(
            "first divergent step: i2, written by n3 as (i2, t1) at 70 ms (event #7) and by n1 as (i2, t1) at 0 ms (event #0)"
        ),
        "{violation}"
    );
    let violation = checker.observe_append(NodeId(3), &[entry(2, 1, "b")], Some(Term(0)), Step::default()).unwrap_err();
    assert!(violation.detail.contains("after an entry of t0"), "{violation}");
}

#[test]
fn a_leader_without_a_committed_entry_breaks_leader_completeness() {
    let mut checker = LogChecker::default();
    // (i5, t1) was committed in t1: every leader of t2 or later must hold it.
    checker.observe_committed_entry(LogIndex(5), Term(1), Term(1)).unwrap();
    // (i9, t1) was committed (as far as anyone saw) only in t2: a t2 leader need not hold it.
    checker.observe_committed_entry(LogIndex(9), Term(1), Term(2)).unwrap();
    let restored = RestoredState {
        hard_state: HardState { term: Term(1), voted_for: None, commit: LogIndex(0) },
        ..RestoredState::default()
    };
    let leader = single_node_leader(1, restored);
    assert_eq!(leader.term(), Term(2));
    let violation = checker.check_leader_completeness(&leader).unwrap_err();
    assert_eq!(violation.invariant, "leader completeness");
    assert!(violation.detail.contains("(i5, t1)"), "{violation}");
}

#[test]
fn different_entries_applied_at_one_index_break_state_machine_safety() {
    let mut applied = ApplyChecker::default();
    let at = |event| Step { at_ms: 10 * event, event };
    applied.observe(NodeId(1), &entry(1, 1, "a"), at(1)).unwrap();
    applied.observe(NodeId(2), &entry(1, 1, "a"), at(2)).unwrap();
    let (violation, first) = applied.observe(NodeId(3), &entry(1, 2, "b"), at(3)).unwrap_err();
    assert_eq!((violation.invariant, first), ("state machine safety", NodeId(1)));
    assert!(violation.detail.contains("at 30 ms (event #3) but n1 applied"), "{violation}");
    let mut committed = LogChecker::default();
    committed.observe_committed_entry(LogIndex(3), Term(2), Term(2)).unwrap();
    assert!(committed.observe_committed_entry(LogIndex(3), Term(3), Term(3)).is_err());
}

#[test]
fn a_node_going_back_in_term_or_commit_breaks_monotonicity_only_within_an_incarnation() {
    let leader = single_node_leader(1, RestoredState::default());
    let fresh = Node::new(Config::new(NodeId(1), vec![NodeId(1)]), RestoredState::default()).unwrap();
    let mut checker = ProgressChecker::default();
    checker.observe(0, &leader).unwrap();
    let violation = checker.observe(0, &fresh).unwrap_err();
    assert_eq!(violation.invariant, "monotonic term");
    // After a restart (a new incarnation) the node starts from its disk: allowed.
    checker.observe(1, &leader).unwrap();
    checker.observe(2, &fresh).unwrap();
}

#[test]
fn messages_that_reveal_state_not_on_disk_break_durability() {
    let mut host = NodeHost::new(Config::new(NodeId(1), vec![NodeId(1), NodeId(2)]));
    let vote = Message {
        from: NodeId(1),
        to: NodeId(2),
        term: Term(3),
        body: Body::RequestVoteResponse(raft_sm::RequestVoteResponse { pre_vote: false, granted: true }),
    };
    let ack = Message {
        from: NodeId(1),
        to: NodeId(2),
        term: Term(3),
        body: Body::AppendEntriesResponse(raft_sm::AppendEntriesResponse {
            success: true,
            match_index: LogIndex(1),
            reject_hint: None,
            read_round: 0,
        }),
    };
    assert!(durability::check_send(&host, &vote).unwrap_err().detail.contains("granted its vote in t3 to n2"));
    assert!(durability::check_send(&host, &ack).unwrap_err().detail.contains("up to i1"));
    host.disk.write(Write::HardState(HardState { term: Term(3), voted_for: Some(NodeId(2)), commit: LogIndex(0) }));
    host.disk.write(Write::Append { entries: vec![entry(1, 3, "a")] });
    let id = raft_sm::PersistId(1);
    host.disk.sync(id);
    assert!(durability::check_send(&host, &vote).is_err(), "written but not fsynced");
    host.disk.fsync_done(id).unwrap();
    durability::check_send(&host, &vote).unwrap();
    durability::check_send(&host, &ack).unwrap();
}

#[test]
fn a_driver_that_acknowledges_before_fsync_is_caught_in_a_cluster_run() {
    let mut options = SimOptions::new(5, 3).with_clients(3);
    options.verbose = false;
    options.fsync_ms_min = 30;
    options.fsync_ms_max = 80;
    options.driver_bug_ack_before_fsync = true;
    let failure = run_seed(options, 5_000, 10_000).expect_err("the checkers catch the driver bug");
    assert_eq!(failure.kind, FailureKind::Safety, "{failure}");
    assert!(failure.detail.contains("durability"), "{failure}");
    assert!(failure.replay.contains("SIM_SEED=0x5"), "{failure}");
}

#[test]
fn a_failure_replays_identically() {
    let run = || {
        let mut options = SimOptions::new(6, 3).with_clients(3);
        options.verbose = false;
        options.fsync_ms_min = 30;
        options.fsync_ms_max = 80;
        options.driver_bug_ack_before_fsync = true;
        run_seed(options, 5_000, 10_000).expect_err("fails")
    };
    let (first, second) = (run(), run());
    assert_eq!((first.at_ms, &first.detail), (second.at_ms, &second.detail));
}

#[test]
fn entries_lost_everywhere_by_a_crash_are_forgotten_but_held_ones_are_not() {
    let empty = sim::disk::DurableImage::default();
    let mut checker = LogChecker::default();
    checker.observe_append(NodeId(1), &[entry(1, 1, "a")], Some(Term(0)), Step::default()).unwrap();
    checker.observe_append(NodeId(1), &[entry(2, 1, "b")], Some(Term(1)), Step::default()).unwrap();
    checker.observe_append(NodeId(2), &[entry(1, 1, "a")], Some(Term(0)), Step::default()).unwrap();
    // n1 crashes before its fsync: (2, t1) existed only in its memory.
    checker.on_crash(NodeId(1), &empty);
    checker.observe_append(NodeId(1), &[entry(2, 1, "c")], Some(Term(1)), Step::default()).unwrap();
    // (1, t1) is still held by n2: a different entry there is still a violation.
    assert!(checker.observe_append(NodeId(1), &[entry(1, 1, "x")], Some(Term(0)), Step::default()).is_err());
}

#[test]
fn two_different_store_images_at_one_index_break_state_machine_safety() {
    let mut applied = ApplyChecker::default();
    applied.observe_store_image(NodeId(1), LogIndex(40), 0xabc).unwrap();
    applied.observe_store_image(NodeId(2), LogIndex(40), 0xabc).unwrap();
    applied.observe_store_image(NodeId(2), LogIndex(41), 0xdef).unwrap();
    let violation = applied.observe_store_image(NodeId(3), LogIndex(40), 0x123).unwrap_err();
    assert!(violation.detail.contains("n3's store image at i40 differs from n1's"), "{violation}");
}
