//! Snapshots: compaction past the threshold, InstallSnapshot in chunks for a
//! follower behind the log base, stale snapshots ignored, conflicting logs
//! replaced, and restarts from (snapshot, hard state, log suffix) (Raft §7).

mod support;

use raft_sm::kv::{Command, KvStore};
use raft_sm::{Body, Entry, Event, LogIndex, Message, NodeId, Note, Payload, RestoredState, SnapshotMeta, Term};
use support::{ids, Pump};

fn write_many(pump: &mut Pump, leader: NodeId, from: u64, count: u64) {
    for i in from..from + count {
        pump.propose(leader, i, &Command::set(format!("k{}", i % 37), format!("v{i}")));
        pump.run_for(5);
    }
}

#[test]
fn the_log_is_compacted_past_the_threshold() {
    let mut pump = Pump::with_config(3, |c| c.snapshot_threshold_entries = 20);
    let leader = pump.elect(5_000);
    write_many(&mut pump, leader, 0, 100);
    pump.run_for(500);
    for id in ids(3) {
        let (base, _) = pump.node(id).log_base();
        assert!(base >= LogIndex(60), "{id} compacted (base {base})");
        assert!(pump.node(id).log_len() <= 40, "{id} keeps a bounded log");
        assert!(pump.hosts[&id].disk.snapshot().is_some(), "{id} saved its snapshot");
    }
}

#[test]
fn a_follower_behind_the_compaction_point_is_caught_up_by_install_snapshot_in_chunks() {
    let mut pump = Pump::with_config(3, |c| {
        c.snapshot_threshold_entries = 20;
        c.snapshot_chunk_bytes_max = 64;
    });
    let leader = pump.elect(5_000);
    let lagging = pump.followers(leader)[0];
    pump.crash(lagging);
    write_many(&mut pump, leader, 0, 200);
    pump.run_for(500);
    assert!(pump.node(leader).log_base().0 > LogIndex(100));
    pump.restart(lagging);
    pump.run_for(3_000);
    assert_eq!(pump.node(lagging).commit_index(), pump.node(leader).commit_index());
    assert_eq!(pump.hosts[&lagging].kv().sorted_pairs(), pump.hosts[&leader].kv().sorted_pairs());
    assert!(pump.notes_of(lagging).iter().any(|n| matches!(n, Note::SnapshotInstalled { .. })));
    assert!(pump.count_sent("InstallSnapshot") > 3, "the snapshot went in several bounded chunks");
}

#[test]
fn a_stale_install_snapshot_is_ignored() {
    let mut pump = Pump::with_config(3, |c| c.snapshot_threshold_entries = 20);
    let leader = pump.elect(5_000);
    let follower = pump.followers(leader)[0];
    write_many(&mut pump, leader, 0, 60);
    pump.run_for(500);
    let snapshot = pump.node(leader).snapshot().cloned().expect("leader has a snapshot");
    let (durable, image) = pump.hosts[&leader].disk.snapshots.durable().expect("the leader's snapshot is durable");
    assert_eq!(durable, &snapshot);
    let image = image.to_vec();
    write_many(&mut pump, leader, 100, 30);
    pump.run_for(500);
    let commit_before = pump.node(follower).commit_index();
    let pairs_before = pump.hosts[&follower].kv().sorted_pairs();
    assert!(commit_before > snapshot.last_index);
    let old = Message {
        from: leader,
        to: follower,
        term: pump.node(leader).term(),
        body: Body::from(raft_sm::InstallSnapshot {
            last_index: snapshot.last_index,
            last_term: snapshot.last_term,
            membership: snapshot.membership.clone(),
            offset: 0,
            data: image,
            done: true,
        }),
    };
    pump.deliver(old);
    assert_eq!(pump.node(follower).commit_index(), commit_before);
    assert_eq!(pump.hosts[&follower].kv().sorted_pairs(), pairs_before, "state machine not rolled back");
    assert!(!pump.notes_of(follower).iter().any(|n| matches!(n, Note::SnapshotInstalled { .. })));
}

#[test]
fn a_snapshot_covering_a_conflicting_entry_replaces_the_whole_log() {
    // The follower holds an uncommitted tail of term 1 at indexes 2..=4; the
    // leader's snapshot covers index 3 with term 2 (Figure 13, rule 7).
    let mut kv = KvStore::default();
    for i in 1..=3u64 {
        let entry = Entry {
            term: Term(2),
            index: LogIndex(i),
            payload: Payload::Command(Command::set("s", format!("{i}")).encode()),
        };
        let _ = kv.apply_entry(&entry);
    }
    let image = kv.snapshot();
    let snapshot = meta_at_3_of_term_2(&image);
    let follower_state = support::restored(1, &[1, 1, 1, 1], 1);
    let mut pump =
        Pump::from_restored(vec![RestoredState::default(), follower_state, RestoredState::default()], |_| {});
    let message = Message {
        from: NodeId(1),
        to: NodeId(2),
        term: Term(2),
        body: Body::from(raft_sm::InstallSnapshot {
            last_index: LogIndex(3),
            last_term: Term(2),
            membership: raft_sm::Membership::new(ids(3)),
            offset: 0,
            data: image.clone(),
            done: true,
        }),
    };
    pump.deliver(message);
    let node = pump.node(NodeId(2));
    assert_eq!(node.log_base(), (LogIndex(3), Term(2)));
    assert_eq!(node.last_log_index(), LogIndex(3), "the conflicting entry 4 went with the log");
    assert_eq!(node.commit_index(), LogIndex(3));
    assert_eq!(pump.hosts[&NodeId(2)].kv().get("s"), Ok("3"));
    assert!(pump.hosts[&NodeId(2)].disk.entries.is_empty());
    assert_eq!(pump.hosts[&NodeId(2)].disk.snapshot(), Some(&snapshot));
    assert_eq!(pump.hosts[&NodeId(2)].disk.snapshots.durable().map(|(_, bytes)| bytes.to_vec()), Some(image));
}

#[test]
fn a_restarted_node_is_rebuilt_from_snapshot_hard_state_and_log_suffix() {
    let mut pump = Pump::with_config(3, |c| c.snapshot_threshold_entries = 25);
    let leader = pump.elect(5_000);
    write_many(&mut pump, leader, 0, 90);
    pump.run_for(500);
    let follower = pump.followers(leader)[0];
    let disk = pump.hosts[&follower].disk.clone();
    assert!(disk.snapshot().is_some() && !disk.entries.is_empty(), "both a snapshot and a suffix on disk");
    let expected = pump.hosts[&follower].kv().sorted_pairs();
    let term = pump.node(follower).term();
    for id in ids(3) {
        pump.crash(id);
    }
    for id in ids(3) {
        pump.restart(id);
    }
    assert_eq!(pump.node(follower).term(), term);
    let leader = pump.elect(5_000);
    pump.run_for(500);
    for id in ids(3) {
        assert_eq!(pump.hosts[&id].kv().sorted_pairs(), expected, "{id} restored its data");
    }
    assert_eq!(pump.node(leader).log_base().0, pump.node(leader).snapshot().unwrap().last_index);
}

/// The core on its own (no host): an older `SnapshotTaken` than the log base
/// (a leader's snapshot was installed meanwhile) changes nothing.
#[test]
fn a_snapshot_taken_below_the_base_is_ignored() {
    use raft_sm::{Action, Node, TimerKind, Write};
    let mut config = raft_sm::Config::new(NodeId(1), vec![NodeId(1)]);
    config.snapshot_threshold_entries = 0;
    let mut node = Node::new(config, raft_sm::RestoredState::default()).unwrap();
    let sync_of = |actions: &[Action]| {
        actions.iter().find_map(|a| if let Action::Sync { id } = a { Some(*id) } else { None }).unwrap()
    };
    node.start(0);
    let now = node.timer_deadline_ms(TimerKind::Election).unwrap();
    let actions = node.step(now, Event::Timer(TimerKind::Election));
    let actions = node.step(now, Event::Persisted { id: sync_of(&actions) });
    let actions = node.step(now, Event::Persisted { id: sync_of(&actions) });
    let mut kv = KvStore::default();
    let applied: Vec<_> = actions
        .iter()
        .filter_map(|a| if let Action::Apply { entries, .. } = a { Some(entries.clone()) } else { None })
        .flatten()
        .collect();
    for entry in &applied {
        let _ = kv.apply_entry(entry);
    }
    let index = kv.applied_index();
    assert_eq!(index, LogIndex(1), "the leader's no-op applied");
    node.step(now, Event::Applied { index });
    let actions = node.step(now, Event::SnapshotTaken { index, size_bytes: kv.snapshot().len() as u64 });
    assert!(actions.iter().any(|a| matches!(a, Action::Write(Write::SaveSnapshot { .. }))));
    assert!(!actions.iter().any(|a| matches!(a, Action::Write(Write::Compact { .. }))), "compaction waits");
    assert_eq!(node.log_base().0, LogIndex(0), "the log keeps the entries until the snapshot is durable");
    assert_eq!(node.taken_snapshot().map(|s| s.last_index), Some(index));
    let actions = node.step(now, Event::SnapshotTaken { index: LogIndex(0), size_bytes: 1 });
    assert!(actions.iter().all(|a| !matches!(a, Action::Write(_))), "{actions:?}");
    let actions = node.step(now, Event::SnapshotPersisted { index });
    assert!(actions.contains(&Action::Write(Write::Compact { up_to: index })), "{actions:?}");
    assert_eq!(node.log_base().0, index, "durable: the log is compacted");
    assert_eq!(node.snapshot().map(|s| s.last_index), Some(index));
    assert!(node.taken_snapshot().is_none());
}

/// A crash between saving a snapshot and resetting a conflicting log leaves both
/// on disk; the restarted node drops the stale log and repairs the disk.
#[test]
fn a_restart_reconciles_a_log_that_disagrees_with_the_snapshot() {
    let mut kv = KvStore::default();
    for i in 1..=3u64 {
        kv.apply_entry(&Entry { term: Term(2), index: LogIndex(i), payload: Payload::Noop });
    }
    let image = kv.snapshot();
    let snapshot = meta_at_3_of_term_2(&image);
    // Case 1: the compaction was lost: entries 1..=5 agree with the snapshot at 3.
    let mut agreeing = support::restored(2, &[1, 2, 2, 2, 2], 3);
    agreeing.snapshot = Some(snapshot.clone());
    // Case 2: the reset was lost: entries 1..=5 of term 1 conflict at 3.
    let mut conflicting = support::restored(2, &[1, 1, 1, 1, 1], 1);
    conflicting.snapshot = Some(snapshot);
    let disks = vec![(agreeing, Some(image.clone())), (conflicting, Some(image)), (RestoredState::default(), None)];
    let mut pump = Pump::from_disks(disks, |_| {});
    assert_eq!(pump.node(NodeId(1)).log_base(), (LogIndex(3), Term(2)));
    assert_eq!(pump.node(NodeId(1)).last_log_index(), LogIndex(5), "the suffix after the snapshot stays");
    assert_eq!(pump.node(NodeId(2)).last_log_index(), LogIndex(3), "the conflicting log is gone");
    pump.persist(NodeId(1));
    pump.persist(NodeId(2));
    let indexes = |id: u64| pump.hosts[&NodeId(id)].disk.entries.iter().map(|e| e.index.0).collect::<Vec<_>>();
    assert_eq!(indexes(1), vec![4, 5], "the disk was compacted");
    assert!(indexes(2).is_empty(), "the disk was reset");
}

/// The metadata of a three-voter snapshot at index 3, term 2, holding `image`.
fn meta_at_3_of_term_2(image: &[u8]) -> SnapshotMeta {
    SnapshotMeta {
        last_index: LogIndex(3),
        last_term: Term(2),
        membership: raft_sm::Membership::new(ids(3)),
        size_bytes: image.len() as u64,
    }
}
