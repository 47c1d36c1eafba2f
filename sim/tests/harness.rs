//! The harness API, exercised the way scenario authors will use it: each test
//! is a short story with role-relative handles.

use raft_sm::kv::Command;
use raft_sm::{NodeId, ProposalOutcome, Rejection, Role};
use sim::{Cluster, Consistency, FailureKind, ReadAnswer, SimOptions, Who, WriteAnswer};

fn cluster(seed: u64, nodes: usize) -> Cluster {
    let mut options = SimOptions::new(seed, nodes);
    options.verbose = false;
    Cluster::new(options)
}

fn with_leader(seed: u64, nodes: usize) -> Cluster {
    let mut cluster = cluster(seed, nodes);
    cluster.run_until("a leader", |c| c.leader().is_some(), 10_000).unwrap();
    cluster
}

#[test]
fn a_leader_is_elected_and_writes_reach_every_node() {
    let mut cluster = with_leader(11, 3);
    let answer = cluster.propose_and_wait(Who::Leader, &Command::set("a", "1"), 2_000);
    assert_eq!(answer, WriteAnswer::Applied(Ok(())));
    cluster
        .run_until("all applied", |c| c.nodes().iter().all(|n| n.kv_get("a").as_deref() == Some("1")), 2_000)
        .unwrap();
    let leader = cluster.node(Who::Leader);
    assert_eq!(leader.role(), Some(Role::Leader));
    let entries = leader.applied_entries();
    assert!(entries.len() >= 2, "the no-op and the write: {entries:?}");
    for node in cluster.nodes() {
        assert_eq!(node.kv_pairs(), vec![("a".to_string(), "1".to_string())]);
    }
    assert_eq!(cluster.read(Who::Follower(0), "a", Consistency::Linearizable), ReadAnswer::Value(Some("1".into())));
    assert_eq!(cluster.read(Who::Leader, "zz", Consistency::Local), ReadAnswer::Value(None));
    assert!(cluster.counters().messages("AppendEntries").count > 0);
    assert!(cluster.counters().messages("Heartbeat").bytes > 0);
    cluster.check();
}

#[test]
fn a_follower_rejects_proposals_with_a_leader_hint() {
    let mut cluster = with_leader(12, 3);
    cluster.run_for(500);
    let leader = cluster.leader();
    match cluster.propose(Who::Follower(0), &Command::set("k", "v")) {
        ProposalOutcome::Rejected(Rejection::NotLeader { leader: hint }) => assert_eq!(hint, leader),
        other => panic!("a follower answered {other:?}"),
    }
}

#[test]
fn g1_leader_crash_a_new_leader_takes_over_and_the_old_one_catches_up() {
    let mut cluster = with_leader(13, 3);
    assert_eq!(cluster.propose_and_wait(Who::Leader, &Command::set("x", "1"), 2_000), WriteAnswer::Applied(Ok(())));
    let old_term = cluster.node(Who::Leader).term();
    let old = cluster.crash(Who::Leader);
    cluster.run_until("a new leader", |c| c.leader().is_some_and(|l| l != old), 5_000).unwrap();
    assert!(cluster.node(Who::Leader).term() > old_term);
    assert_eq!(cluster.propose_and_wait(Who::Leader, &Command::set("x", "2"), 2_000), WriteAnswer::Applied(Ok(())));
    cluster.restart(old);
    cluster.run_until("the old leader caught up", |c| c.node(old).kv_get("x").as_deref() == Some("2"), 5_000).unwrap();
    assert_eq!(cluster.node(old).role(), Some(Role::Follower));
    assert_eq!(cluster.counters().get("restarts"), 1);
    cluster.check();
}

#[test]
fn p2_isolated_leader_is_replaced_and_follows_at_a_higher_term_after_heal() {
    let mut cluster = with_leader(14, 5);
    let old = cluster.resolve(Who::Leader);
    let old_term = cluster.node(old).term();
    cluster.isolate(old);
    cluster.run_until("a new leader", |c| c.leader().is_some_and(|l| l != old), 10_000).unwrap();
    // CheckQuorum: the isolated leader steps down on its own.
    cluster.run_until("the old leader stepped down", |c| c.node(old).role() != Some(Role::Leader), 5_000).unwrap();
    assert!(cluster.counters().get("check_quorum_step_downs") >= 1);
    assert!(cluster.saw_note(Some(old), |note| matches!(
        note,
        raft_sm::Note::SteppedDown { reason: raft_sm::StepDownReason::QuorumInactive, .. }
    )));
    cluster.heal();
    cluster.run_until("the old leader follows", |c| c.node(old).leader() == c.leader(), 5_000).unwrap();
    assert!(cluster.node(old).term() > old_term);
    cluster.check();
}

#[test]
fn a_minority_partition_cannot_commit_and_the_majority_can() {
    let mut cluster = with_leader(15, 5);
    let ids = cluster.ids();
    let leader = cluster.resolve(Who::Leader);
    let others: Vec<NodeId> = ids.iter().copied().filter(|&id| id != leader).collect();
    // The leader with one follower on one side, three nodes on the other.
    cluster.partition(&[&[leader, others[0]], &others[1..]]);
    let answer = cluster.propose_and_wait(leader, &Command::set("m", "minority"), 3_000);
    assert!(matches!(answer, WriteAnswer::TimedOut | WriteAnswer::Dropped), "{answer:?}");
    cluster.run_until("a majority leader", |c| c.leader().is_some_and(|l| others[1..].contains(&l)), 10_000).unwrap();
    assert_eq!(
        cluster.propose_and_wait(Who::Leader, &Command::set("m", "majority"), 3_000),
        WriteAnswer::Applied(Ok(()))
    );
    cluster.heal();
    cluster.check();
    for node in cluster.nodes() {
        assert_eq!(node.kv_get("m").as_deref(), Some("majority"), "{}", node.id());
    }
}

#[test]
fn partial_connectivity_four_reaches_only_two_and_five_only_three() {
    let mut options = SimOptions::new(16, 5).with_clients(4);
    options.verbose = false;
    let mut cluster = Cluster::new(options);
    cluster.restrict(4, &[NodeId(2)]);
    cluster.restrict(5, &[NodeId(3)]);
    cluster.run_for(10_000);
    let leader = cluster.leader().expect("a leader despite partial connectivity");
    assert!([1, 2, 3].contains(&leader.0), "the leader is in the connected core, not {leader}");
    assert!(cluster.history().completed() > 20, "clients made progress");
    cluster.check();
}

#[test]
fn one_way_link_from_the_leader() {
    let mut cluster = with_leader(17, 3);
    let leader = cluster.resolve(Who::Leader);
    let follower = cluster.resolve(Who::Follower(0));
    cluster.set_link(leader, follower, false);
    cluster.run_for(5_000);
    assert!(cluster.leader().is_some());
    cluster.check();
}

#[test]
fn a_paused_leader_resumes_with_stale_state_and_steps_down() {
    let mut options = SimOptions::new(18, 3).with_clients(3);
    options.verbose = false;
    let mut cluster = Cluster::new(options);
    cluster.run_until("a leader", |c| c.leader().is_some(), 10_000).unwrap();
    let old = cluster.pause(Who::Leader);
    assert!(cluster.node(old).is_paused());
    cluster.run_until("a new leader", |c| c.leader().is_some_and(|l| l != old), 10_000).unwrap();
    cluster.resume(old);
    cluster.run_until("the old leader follows", |c| c.node(old).role() == Some(Role::Follower), 5_000).unwrap();
    cluster.check();
}

#[test]
fn a_leader_whose_disk_stalls_does_not_stall_the_cluster() {
    let mut options = SimOptions::new(19, 3).with_clients(4);
    options.verbose = false;
    let mut cluster = Cluster::new(options);
    cluster.run_until("a leader", |c| c.leader().is_some(), 10_000).unwrap();
    cluster.run_for(1_000);
    cluster.stall_disk(Who::Leader, 8_000);
    let before = cluster.history().completed();
    cluster.run_for(8_000);
    let during = cluster.history().completed() - before;
    assert!(during > 20, "only {during} operations completed while the leader's disk stalled");
    cluster.check();
}

#[test]
fn crashes_with_torn_writes_recover_from_the_disk() {
    let mut options = SimOptions::new(20, 3).with_clients(6);
    options.verbose = false;
    options.torn_writes = true;
    options.fsync_ms_min = 20;
    options.fsync_ms_max = 60;
    options.snapshot_threshold_entries = 30;
    let mut cluster = Cluster::new(options);
    cluster.run_until("a leader", |c| c.leader().is_some(), 10_000).unwrap();
    // Crash leaders and followers until a crash tore a write (whether one does
    // is the seed's draw), at least 12 times and at most 60.
    for round in 0..60 {
        if round >= 12 && cluster.counters().get("torn_writes") >= 1 {
            break;
        }
        cluster.run_for(700);
        let who = if round % 2 == 0 { Who::Leader } else { Who::Follower(0) };
        if cluster.leader().is_none() && who == Who::Leader {
            continue;
        }
        let id = cluster.crash(who);
        cluster.run_for(300);
        cluster.restart(id);
    }
    cluster.check();
    let counters = cluster.counters();
    assert!(counters.get("crashes") >= 10);
    assert!(counters.get("torn_writes") >= 1, "{counters}");
    assert!(counters.get("unsynced_writes_lost") >= 1);
}

#[test]
fn scripted_faults_run_at_their_time() {
    let mut cluster = with_leader(21, 3);
    let at = cluster.now_ms() + 1_000;
    let leader = cluster.resolve(Who::Leader);
    cluster.schedule(at, sim::FaultAction::Crash(leader));
    cluster.schedule(at + 3_000, sim::FaultAction::Restart(leader));
    cluster.run_for(999);
    assert!(cluster.node(leader).is_up());
    cluster.run_for(2);
    assert!(!cluster.node(leader).is_up());
    cluster.run_for(3_000);
    assert!(cluster.node(leader).is_up());
    cluster.check();
}

#[test]
fn run_until_names_the_unmet_predicate_and_the_replay_line() {
    let mut cluster = cluster(22, 3);
    cluster.isolate(1);
    cluster.isolate(2);
    cluster.isolate(3);
    let failure =
        cluster.run_until("a leader while everyone is isolated", |c| c.leader().is_some(), 3_000).unwrap_err();
    assert_eq!(failure.kind, FailureKind::Liveness);
    let text = failure.to_string();
    assert!(text.contains("`a leader while everyone is isolated` did not hold within 3000 ms"), "{text}");
    assert!(text.contains("SIM_SEED=0x16 cargo test -p sim run_until_names_the_unmet_predicate"), "{text}");
}

#[test]
fn linearizable_reads_are_refused_or_dropped_without_a_leader() {
    let mut cluster = with_leader(23, 3);
    let follower = cluster.resolve(Who::Follower(0));
    cluster.isolate(follower);
    cluster.run_for(3_000);
    let answer = cluster.read(follower, "a", Consistency::Linearizable);
    assert!(matches!(answer, ReadAnswer::Rejected(_) | ReadAnswer::Dropped | ReadAnswer::TimedOut), "{answer:?}");
}

#[test]
fn clients_record_a_history_and_export_it_as_json_lines() {
    let mut options = SimOptions::new(24, 3).with_clients(5);
    options.verbose = false;
    options.network.loss = 0.1;
    let mut cluster = Cluster::new(options);
    cluster.run_for(10_000);
    cluster.check();
    let history = cluster.history();
    assert!(history.completed() > 50);
    assert_eq!(history.open(), 0, "the liveness phase completes every operation");
    let counters = cluster.counters();
    assert!(counters.get("client_retries") > 0, "{counters}");
    let path = std::env::temp_dir().join(format!("sim-history-{}.json", std::process::id()));
    cluster.write_history(path.to_str().unwrap()).unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    let _ = std::fs::remove_file(&path);
    assert_eq!(text.lines().count(), history.operations().len());
    let first: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    for field in ["client", "op", "key", "value", "invoke_ms", "complete_ms", "outcome"] {
        assert!(first.get(field).is_some(), "{field} missing in {first}");
    }
}

#[test]
fn a_paused_follower_receives_nothing_until_resumed() {
    let mut cluster = with_leader(25, 3);
    let follower = cluster.pause(Who::Follower(0));
    let frozen = cluster.node(follower).last_log_index();
    for i in 0..5 {
        let answer = cluster.propose_and_wait(Who::Leader, &Command::set("p", i.to_string()), 2_000);
        assert_eq!(answer, WriteAnswer::Applied(Ok(())));
    }
    cluster.run_for(3_000);
    assert_eq!(cluster.node(follower).last_log_index(), frozen, "a paused node appends nothing");
    assert_eq!(cluster.node(follower).role(), Some(Role::Follower), "and fires no election timer");
    cluster.resume(follower);
    cluster.run_until("caught up", |c| c.node(follower).kv_get("p").as_deref() == Some("4"), 2_000).unwrap();
    cluster.check();
}

#[test]
fn the_liveness_phase_fails_with_a_pending_report_when_no_leader_can_emerge() {
    let mut options = SimOptions::new(26, 3);
    options.verbose = false;
    options.election_timeout_ms_min = 100_000;
    options.election_timeout_ms_max = 100_001;
    let mut cluster = Cluster::new(options);
    cluster.run_for(1_000);
    let failure = cluster.finish(5_000).unwrap_err();
    assert_eq!(failure.kind, FailureKind::Liveness);
    assert!(failure.detail.contains("converged"), "{failure}");
    assert!(failure.detail.contains("leader: None"), "{failure}");
    assert!(failure.detail.contains("n3 follower t0"), "{failure}");
}

#[test]
fn a_follower_down_past_compaction_catches_up_by_snapshot() {
    let mut options = SimOptions::new(27, 3).with_clients(4);
    options.verbose = false;
    options.snapshot_threshold_entries = 20;
    let mut cluster = Cluster::new(options);
    cluster.run_until("a leader", |c| c.leader().is_some(), 10_000).unwrap();
    let follower = cluster.crash(Who::Follower(0));
    cluster.run_until("the leader compacted", |c| c.counters().get("snapshots_taken") >= 2, 20_000).unwrap();
    cluster.restart(follower);
    cluster.run_until("snapshot installed", |c| c.counters().get("snapshots_installed") >= 1, 10_000).unwrap();
    cluster.check();
    assert!(cluster.counters().messages("InstallSnapshot").count >= 1);
    assert_eq!(cluster.node(follower).kv_pairs(), cluster.node(Who::Leader).kv_pairs());
}
