//! Snapshots a node takes itself become durable some time after their fsync
//! (the real node writes them on a background thread) and the compaction
//! behind them waits until then, so a crash in between restarts the node from
//! its older snapshot and the longer log. Snapshots installed from the leader
//! are durable at their fsync and never replaced by an older self-taken one.

use raft_sm::{LogIndex, Note};
use sim::{Cluster, SimOptions};

fn cluster(seed: u64) -> Cluster {
    let mut options = SimOptions::new(seed, 3).with_clients(4);
    options.verbose = false;
    options.snapshot_threshold_entries = 20;
    let mut cluster = Cluster::new(options);
    cluster.run_until("a leader", |c| c.leader().is_some(), 10_000).unwrap();
    cluster
}

/// The index of the snapshot `id`'s core holds (0 if none, or crashed).
fn core_snapshot_index(cluster: &Cluster, id: raft_sm::NodeId) -> LogIndex {
    cluster.node(id).core().and_then(|node| node.snapshot()).map_or(LogIndex(0), |snapshot| snapshot.last_index)
}

#[test]
fn a_crash_before_a_taken_snapshot_is_durable_restarts_from_the_older_snapshot_and_the_longer_log() {
    let mut cluster = cluster(0x1a2e);
    let id = cluster.followers()[0];
    cluster
        .run_until("a durable snapshot of its own", |c| c.node(id).durable_snapshot_index() > LogIndex(0), 20_000)
        .unwrap();
    cluster.hold_snapshot_writes(id, true);
    let older = cluster.node(id).durable_snapshot_index();
    cluster
        .run_until(
            "a newer snapshot taken, not durable",
            |c| core_snapshot_index(c, id) > older && c.node(id).snapshots_pending() > 0,
            20_000,
        )
        .unwrap();
    let taken = core_snapshot_index(&cluster, id);
    let node = cluster.node(id);
    assert_eq!(node.core().unwrap().log_base().0, taken, "the core compacted its log at once");
    let durable = node.durable();
    assert_eq!(node.durable_snapshot_index(), older, "the newer snapshot is not durable");
    assert!(durable.log_base <= older, "the compaction waits for its snapshot: log base {}", durable.log_base);
    assert!(durable.term_at(older.next()).is_some(), "the durable log holds the entry after the older snapshot");
    assert!(durable.last_index() >= taken, "the durable log holds every entry the newer snapshot covers");

    cluster.crash(id);
    assert_eq!(cluster.node(id).durable_snapshot_index(), older, "the crash lost the pending snapshot");
    assert!(cluster.counters().get("snapshot_writes_lost") >= 1);
    assert!(cluster.counters().get("compactions_lost") >= 1);
    let applied_before = cluster.counters().get("entries_applied");
    cluster.restart(id);
    let boot = cluster.node(id).boot_image();
    assert_eq!(boot.snapshot_index, older, "restarted from the older snapshot");
    assert!(boot.first_log_index <= older.next(), "and the log after it: {boot:?}");
    assert!(boot.last_log_index >= taken, "the longer log, past the lost snapshot: {boot:?}");
    // The store starts at the older snapshot and replays the log from there
    // (booting may take a new snapshot at once: the log is past the threshold).
    let replayed = cluster.counters().get("entries_applied") - applied_before;
    assert!(replayed >= taken.0 - older.0, "{replayed} entries replayed at boot, from {older} past {taken}");

    cluster.hold_snapshot_writes(id, false);
    cluster
        .run_until("a newer snapshot durable again", |c| c.node(id).durable_snapshot_index() > taken, 30_000)
        .unwrap();
    // The host steps `SnapshotPersisted`; the core asks for the compaction only
    // then, and it is durable at the next fsync.
    cluster.run_until("its compaction durable", |c| c.node(id).durable().log_base > taken, 1_000).unwrap();
    let durable = cluster.node(id).durable();
    assert!(durable.log_base <= cluster.node(id).durable_snapshot_index(), "never past the durable snapshot");
    cluster.check();
}

#[test]
fn a_snapshot_installed_from_the_leader_is_never_replaced_by_an_older_pending_one() {
    let mut cluster = cluster(0x1a2f);
    let id = cluster.followers()[0];
    cluster.hold_snapshot_writes(id, true);
    cluster.run_until("a snapshot taken, not durable", |c| c.node(id).snapshots_pending() > 0, 20_000).unwrap();
    let pending = core_snapshot_index(&cluster, id);
    cluster.isolate(id);
    let behind = cluster.node(id).last_log_index();
    cluster
        .run_until(
            "the leader compacted past the isolated follower",
            |c| c.leader().is_some_and(|leader| c.node(leader).core().unwrap().log_base().0 > behind),
            30_000,
        )
        .unwrap();
    cluster.heal();
    cluster
        .run_until(
            "the leader's snapshot installed and durable",
            |c| c.node(id).durable_snapshot_index() > behind && c.node(id).snapshots_pending() == 0,
            20_000,
        )
        .unwrap();
    assert!(cluster.saw_note(Some(id), |note| matches!(note, Note::SnapshotInstalled { .. })));
    let installed = cluster.node(id).durable_snapshot_index();
    assert!(installed > pending, "the leader's snapshot {installed} is newer than the pending {pending}");
    // The held write of the older snapshot was flushed before the leader's, as
    // the node does; nothing may land over the leader's snapshot afterwards.
    cluster.hold_snapshot_writes(id, false);
    cluster.run_for(2_000);
    assert!(cluster.node(id).durable_snapshot_index() >= installed);
    assert!(cluster.counters().get("snapshot_writes") >= 1);
    cluster.check();
}

/// The core's contract: report a taken snapshot durable (`SnapshotPersisted`)
/// only once it is. A driver that reports it when it is merely handed to the
/// disk lets the core compact the log first; a crash then loses the snapshot
/// and the entries it covered, and the restart is refused (a gap after the
/// older snapshot), which the simulator reports as a safety failure.
#[test]
fn a_driver_that_reports_a_snapshot_durable_too_early_is_caught() {
    let run = |bug: bool| {
        let mut options = SimOptions::new(0x1a2e, 3).with_clients(4);
        options.verbose = false;
        options.snapshot_threshold_entries = 20;
        options.driver_bug_snapshot_persisted_early = bug;
        let mut cluster = Cluster::new(options);
        cluster.run_until("a leader", |c| c.leader().is_some(), 10_000).unwrap();
        let id = cluster.followers()[0];
        cluster.hold_snapshot_writes(id, true);
        cluster.run_until("a snapshot taken, not durable", |c| c.node(id).snapshots_pending() > 0, 20_000).unwrap();
        cluster.run_for(200); // The compaction's fsync completes.
        cluster.crash(id);
        cluster.restart(id);
        cluster.run_for(1_000);
    };
    run(false);
    let failure = std::panic::catch_unwind(move || run(true)).expect_err("the early report is caught");
    let text = failure.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(text.contains("safety") && text.contains("cannot restart"), "{text}");
}

/// The leader reads each chunk it sends from its durable snapshot (the core
/// holds no bytes): while its newest snapshot is still being written it sends
/// no InstallSnapshot, and a follower behind it catches up once it is durable.
#[test]
fn a_leader_sends_a_snapshot_only_once_it_is_durable() {
    let mut cluster = cluster(0x1a30);
    let leader = cluster.leader().expect("elected");
    let lagging = cluster.followers()[0];
    cluster.isolate(lagging);
    cluster.hold_snapshot_writes(leader, true);
    let behind = cluster.node(lagging).last_log_index();
    cluster
        .run_until(
            "the leader compacted past the follower, its snapshot not durable",
            |c| core_snapshot_index(c, leader) > behind && c.node(leader).snapshots_pending() > 0,
            30_000,
        )
        .unwrap();
    assert!(cluster.node(leader).durable_snapshot_index() <= behind, "no durable snapshot covers the follower's gap");
    let sent_before = cluster.counters().messages("InstallSnapshot").count;
    cluster.heal();
    cluster.run_for(2_000);
    assert_eq!(cluster.leader(), Some(leader), "a quiet network keeps the leader");
    assert_eq!(
        cluster.counters().messages("InstallSnapshot").count,
        sent_before,
        "nothing is sent from a snapshot that is not durable"
    );
    let base = core_snapshot_index(&cluster, leader);
    assert!(cluster.node(lagging).last_log_index() < base, "the follower still needs the snapshot at {base}");
    cluster.hold_snapshot_writes(leader, false);
    cluster
        .run_until(
            "the follower caught up",
            |c| c.node(lagging).last_log_index() > core_snapshot_index(c, leader),
            20_000,
        )
        .unwrap();
    cluster.check();
}
