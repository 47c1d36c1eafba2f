//! Replication and commit: the consistency check, conflict handling, fast
//! backtracking, batching, pipelining and the current-term commit rule (Raft §5.3, §5.4).

mod support;

use raft_sm::kv::Command;
use raft_sm::{Body, LogIndex, Message, NodeId, Note, ProposalOutcome, Rejection, Role, Term};
use support::{ids, restored, Pump};

fn set(key: &str, value: &str) -> Command {
    Command::set(key, value)
}

#[test]
fn a_proposal_on_the_leader_commits_and_applies_everywhere() {
    let mut pump = Pump::new(3);
    let leader = pump.elect(5_000);
    pump.propose(leader, 1, &set("x", "1"));
    let Some(ProposalOutcome::Accepted { index, term }) = pump.proposals.get(&1).cloned() else {
        panic!("leader accepts: {:?}", pump.proposals.get(&1));
    };
    assert_eq!(term, pump.node(leader).term());
    pump.run_for(1_000);
    for id in ids(3) {
        assert!(pump.node(id).commit_index() >= index, "{id} committed");
        assert_eq!(pump.hosts[&id].kv().get("x"), Ok("1"), "{id} applied");
    }
}

#[test]
fn a_proposal_on_a_follower_is_rejected_with_the_leader_hint() {
    let mut pump = Pump::new(3);
    let leader = pump.elect(5_000);
    let follower = pump.followers(leader)[0];
    let last_before = pump.node(follower).last_log_index();
    pump.propose(follower, 7, &set("x", "1"));
    assert_eq!(pump.proposals[&7], ProposalOutcome::Rejected(Rejection::NotLeader { leader: Some(leader) }));
    assert_eq!(pump.node(follower).last_log_index(), last_before, "nothing appended on the follower");
}

#[test]
fn pending_proposals_are_dropped_at_once_when_leadership_is_lost() {
    let mut pump = Pump::new(3);
    let leader = pump.elect(5_000);
    pump.isolate(leader);
    pump.propose(leader, 1, &set("a", "1"));
    pump.propose(leader, 2, &set("b", "2"));
    assert!(matches!(pump.proposals[&1], ProposalOutcome::Accepted { .. }));
    pump.run_for(3_000); // CheckQuorum deposes it.
    assert_eq!(pump.node(leader).role(), Role::Follower);
    assert_eq!(pump.proposals[&1], ProposalOutcome::Dropped);
    assert_eq!(pump.proposals[&2], ProposalOutcome::Dropped);
}

/// Raft Figure 8: a leader must not commit an entry of an older term by counting
/// replicas, even when a majority holds it; only an entry of its own term commits.
#[test]
fn figure8_an_old_term_entry_on_a_majority_is_not_committed_by_counting() {
    // S1 and S2 hold [t1, t2]; S3 holds [t1]. Index 1 is committed.
    let states = vec![restored(2, &[1, 2], 1), restored(2, &[1, 2], 1), restored(2, &[1], 1)];
    let mut pump = Pump::from_restored(states, |c| {
        c.pre_vote = false;
        c.append_entries_max = 1;
    });
    // Every acknowledgement of the term-3 no-op (index 3) is lost; S3's of index 2 gets through.
    pump.drop_if = Some(
        |m: &Message| matches!(m.body, Body::AppendEntriesResponse(raft_sm::AppendEntriesResponse { success: true, match_index, .. }) if match_index >= LogIndex(3)),
    );
    pump.campaign(NodeId(1));
    pump.run_for(400);
    assert_eq!(pump.node(NodeId(1)).role(), Role::Leader);
    assert_eq!(pump.node(NodeId(1)).term(), Term(3));
    assert_eq!(pump.node(NodeId(3)).term_at(LogIndex(2)), Some(Term(2)), "S3 now holds the term-2 entry too");
    let s3_match = pump.node(NodeId(1)).replication_progress().iter().find(|p| p.0 == NodeId(3)).map(|p| p.1);
    assert_eq!(s3_match, Some(LogIndex(2)), "the leader knows a majority (S1, S3) holds index 2");
    assert_eq!(
        pump.node(NodeId(1)).commit_index(),
        LogIndex(1),
        "index 2 is on all three nodes but is of term 2: not committed by counting"
    );
    // Once the term-3 no-op reaches a majority, both commit together.
    pump.drop_if = None;
    pump.run_for(1_000);
    assert_eq!(pump.node(NodeId(1)).commit_index(), LogIndex(3));
}

#[test]
fn a_conflicting_uncommitted_tail_is_overwritten_and_never_applied() {
    let mut pump = Pump::new(3);
    let old_leader = pump.elect(5_000);
    pump.run_for(500);
    pump.isolate(old_leader);
    for i in 0..3 {
        pump.propose(old_leader, 100 + i, &set("lost", &format!("{i}")));
    }
    let old_last = pump.node(old_leader).last_log_index();
    pump.run_for(3_000);
    let new_leader = pump.stable_leader().expect("the majority elected a new leader");
    assert_ne!(new_leader, old_leader);
    for i in 0..5 {
        pump.propose(new_leader, 200 + i, &set("kept", &format!("{i}")));
    }
    pump.run_for(1_000);
    assert!(pump.node(new_leader).commit_index() >= old_last, "new entries committed at the same indices");
    pump.heal();
    pump.run_for(3_000);
    assert_eq!(pump.node(old_leader).leader(), Some(new_leader));
    assert!(pump.notes_of(old_leader).iter().any(|n| matches!(n, Note::Truncated { .. })));
    for id in ids(3) {
        assert_eq!(pump.hosts[&id].kv().get("lost"), Err(raft_sm::kv::KvError::KeyNotFound));
        assert_eq!(pump.hosts[&id].kv().get("kept"), Ok("4"));
    }
}

#[test]
fn a_stale_append_after_a_newer_one_does_not_truncate() {
    let mut pump = Pump::new(3);
    let leader = pump.elect(5_000);
    pump.run_for(500);
    let follower = pump.followers(leader)[0];
    pump.propose(leader, 1, &set("a", "1"));
    let first = pump.take(|m| {
        m.to == follower
            && matches!(&m.body, Body::AppendEntries(raft_sm::AppendEntries { entries, .. }) if !entries.is_empty())
    });
    assert_eq!(first.len(), 1);
    pump.deliver(first[0].clone());
    pump.propose(leader, 2, &set("b", "2"));
    pump.propose(leader, 3, &set("c", "3"));
    pump.deliver_all(1_000);
    let last = pump.node(follower).last_log_index();
    assert!(last >= LogIndex(first[0].term.0 + 3), "follower holds the newer entries");
    // The old message arrives again, late.
    pump.deliver(first[0].clone());
    assert_eq!(pump.node(follower).last_log_index(), last, "matching entries were not removed");
    assert!(!pump.notes_of(follower).iter().any(|n| matches!(n, Note::Truncated { .. })));
}

/// A follower far behind across several terms is repaired in O(terms) round
/// trips (Raft §5.3's optimisation), not one per entry.
#[test]
fn fast_backtracking_skips_whole_terms() {
    let leader_log: Vec<u64> = std::iter::repeat_n(1, 10).chain(std::iter::repeat_n(3, 290)).collect();
    let follower_log: Vec<u64> = std::iter::repeat_n(1, 10).chain(std::iter::repeat_n(2, 190)).collect();
    let states = vec![restored(3, &leader_log, 10), restored(3, &follower_log, 10), restored(3, &leader_log, 10)];
    let mut pump = Pump::from_restored(states, |c| c.pre_vote = false);
    pump.isolate(NodeId(2));
    pump.campaign(NodeId(1));
    pump.deliver_all(1_000);
    assert_eq!(pump.node(NodeId(1)).role(), Role::Leader);
    pump.heal();
    let rejections_before = count_rejections(&pump);
    pump.run_for(2_000);
    assert_eq!(pump.node(NodeId(2)).last_log_index(), pump.node(NodeId(1)).last_log_index());
    assert_eq!(pump.node(NodeId(2)).term_at(LogIndex(150)), Some(Term(3)));
    let rejections = count_rejections(&pump) - rejections_before;
    assert!(rejections <= 3, "{rejections} rejections for 190 conflicting entries in one term");
}

fn count_rejections(pump: &Pump) -> usize {
    pump.trace.iter().filter(|line| line.contains("-> Send") && line.contains("success: false")).count()
}

#[test]
fn a_lagging_follower_is_caught_up_in_batches() {
    let mut pump = Pump::with_config(3, |c| c.append_entries_max = 64);
    let leader = pump.elect(5_000);
    let follower = pump.followers(leader)[0];
    pump.isolate(follower);
    // Keep the leader's quorum: only the follower is cut off.
    pump.cut.retain(|&(a, b)| a == follower || b == follower);
    for i in 0..640 {
        pump.propose(leader, i, &set(&format!("k{i}"), "v"));
    }
    pump.run_for(500);
    let appends_before = pump.count_sent("AppendEntries");
    pump.heal();
    pump.run_for(1_000);
    assert_eq!(pump.node(follower).last_log_index(), pump.node(leader).last_log_index());
    assert_eq!(pump.hosts[&follower].kv().len(), 640);
    let appends = pump.count_sent("AppendEntries") - appends_before;
    assert!(appends <= 640 / 64 + 10, "{appends} appends for 640 entries at 64 per batch");
}

#[test]
fn pipelining_keeps_at_most_the_window_in_flight() {
    let mut pump = Pump::with_config(3, |c| c.inflight_appends_max = 4);
    let leader = pump.elect(5_000);
    pump.run_for(500);
    let follower = pump.followers(leader)[0];
    // Acknowledgements are withheld: proposals pile up in flight.
    for i in 0..20 {
        pump.propose(leader, i, &set("k", &format!("{i}")));
    }
    let in_flight = pump
        .pool
        .iter()
        .filter(|m| {
            m.to == follower
                && matches!(&m.body, Body::AppendEntries(raft_sm::AppendEntries { entries, .. }) if !entries.is_empty())
        })
        .count();
    assert_eq!(in_flight, 4, "exactly the window is in flight before any acknowledgement");
    pump.run_for(1_000);
    for id in ids(3) {
        assert_eq!(pump.hosts[&id].kv().get("k"), Ok("19"));
    }
}

#[test]
fn a_retried_client_command_is_applied_once() {
    let mut pump = Pump::new(3);
    let leader = pump.elect(5_000);
    let first = Command::set("k", "first").with_session(42, 1);
    pump.propose(leader, 1, &first);
    pump.run_for(500);
    pump.propose(leader, 2, &Command::set("k", "other").with_session(43, 1));
    pump.run_for(500);
    // The client did not hear back and retries its first write.
    pump.propose(leader, 3, &first);
    pump.run_for(500);
    for id in ids(3) {
        assert_eq!(pump.hosts[&id].kv().get("k"), Ok("other"), "{id}: the retry did not apply again");
    }
}

#[test]
fn proposals_stepped_together_share_one_sync_and_one_append_per_follower() {
    let mut pump = Pump::new(3);
    let leader = pump.elect(5_000);
    pump.run_for(300);
    let now_ms = pump.now_ms;
    let events = (0..50).map(|i| raft_sm::Event::Propose { id: i, command: set("k", &format!("{i}")).encode() });
    let host = &mut pump.host(leader).host;
    host.step_batch(now_ms, events);
    let outputs: Vec<_> = host.drain_outputs().collect();
    let syncs = outputs.iter().filter(|o| matches!(o, raft_sm::Output::Sync(_))).count();
    let appends: Vec<usize> = outputs
        .iter()
        .filter_map(|o| match o {
            raft_sm::Output::Send(Message {
                body: Body::AppendEntries(raft_sm::AppendEntries { entries, .. }),
                ..
            }) => Some(entries.len()),
            _ => None,
        })
        .collect();
    assert_eq!(syncs, 1, "one durable write for the whole batch");
    assert_eq!(appends, vec![50, 50], "one append with all 50 entries per follower");
}
