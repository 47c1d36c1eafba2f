//! Snapshots are streams: the core keeps only their metadata, a follower
//! receives one in bounded chunks that go straight to the driver's store, a
//! crash in the middle of a transfer starts it over, and the host holds applies
//! back until the state machine is restored from the durable image.

mod support;

use raft_sm::kv::{Command, KvStore};
use raft_sm::{
    AppendEntries, Body, Config, Entry, Event, Host, InstallSnapshot, LogIndex, Message, NodeId, Output, Payload,
    RestoredState, Term, Write,
};
use support::{ids, Pump};

const CHUNK_BYTES_MAX: usize = 4096;

/// A leader whose snapshot is well over `CHUNK_BYTES_MAX` (≈ 200 KiB), and a
/// follower that was down while it was taken.
fn lagging_follower_of_a_large_snapshot() -> (Pump, NodeId, NodeId) {
    let mut pump = Pump::with_config(3, |c| {
        c.snapshot_threshold_entries = 50;
        c.snapshot_chunk_bytes_max = CHUNK_BYTES_MAX;
    });
    let leader = pump.elect(5_000);
    let lagging = pump.followers(leader)[0];
    pump.crash(lagging);
    for i in 0..400 {
        pump.propose(leader, i, &Command::set(format!("key{i:04}"), "v".repeat(500)));
        pump.run_for(5);
    }
    pump.run_for(500);
    let image_bytes = pump.node(leader).snapshot().expect("the leader took a snapshot").size_bytes;
    assert!(image_bytes > 40 * CHUNK_BYTES_MAX as u64, "a large image: {image_bytes} bytes");
    (pump, leader, lagging)
}

fn chunks_of(pump: &Pump, id: NodeId) -> Vec<(u64, usize)> {
    pump.snapshot_chunks.iter().filter(|(node, ..)| *node == id).map(|&(_, offset, len)| (offset, len)).collect()
}

#[test]
fn a_snapshot_larger_than_any_buffer_arrives_in_bounded_chunks_written_to_the_store() {
    let (mut pump, leader, lagging) = lagging_follower_of_a_large_snapshot();
    pump.restart(lagging);
    pump.run_for(5_000);
    assert_eq!(pump.hosts[&lagging].kv().sorted_pairs(), pump.hosts[&leader].kv().sorted_pairs());
    let meta = pump.node(lagging).snapshot().cloned().expect("installed");
    let chunks = chunks_of(&pump, lagging);
    assert!(chunks.iter().all(|&(_, len)| len <= CHUNK_BYTES_MAX), "every chunk within the bound");
    assert!(chunks.len() as u64 >= meta.size_bytes / CHUNK_BYTES_MAX as u64, "{} chunks", chunks.len());
    // The chunks are the image, in order, each byte once.
    let mut expected_offset = 0;
    for &(offset, len) in &chunks {
        assert_eq!(offset, expected_offset, "contiguous");
        expected_offset += len as u64;
    }
    assert_eq!(expected_offset, meta.size_bytes);
    let (durable, image) = pump.hosts[&lagging].disk.snapshots.durable().expect("the store holds it");
    assert_eq!(durable, &meta);
    assert_eq!(image.len() as u64, meta.size_bytes);
}

#[test]
fn a_crash_in_the_middle_of_a_transfer_starts_it_over_at_offset_zero() {
    let (mut pump, leader, lagging) = lagging_follower_of_a_large_snapshot();
    // The network loses every chunk past the fifth.
    pump.drop_if = Some(|m| matches!(&m.body, Body::InstallSnapshot(c) if c.offset >= 5 * CHUNK_BYTES_MAX as u64));
    pump.restart(lagging);
    pump.run_for(1_000);
    let before_crash = chunks_of(&pump, lagging).len();
    assert_eq!(before_crash, 5, "part of the snapshot arrived");
    assert!(pump.hosts[&lagging].disk.snapshot().is_none(), "but not all of it");
    pump.crash(lagging);
    pump.drop_if = None;
    pump.run_for(100);
    pump.restart(lagging);
    pump.run_for(5_000);
    let after_restart = &chunks_of(&pump, lagging)[before_crash..];
    assert_eq!(after_restart.first().map(|&(offset, _)| offset), Some(0), "the incoming image was discarded");
    assert_eq!(pump.hosts[&lagging].kv().sorted_pairs(), pump.hosts[&leader].kv().sorted_pairs());
}

/// The host on its own: a follower installs a one-chunk snapshot, then gets an
/// entry after it committed. Nothing touches the state machine until the sync
/// covering the install completes and the driver restores the image.
#[test]
fn the_host_holds_applies_until_the_installed_image_is_restored() {
    let mut image_store = KvStore::default();
    for i in 1..=3u64 {
        let entry =
            Entry { term: Term(1), index: LogIndex(i), payload: Payload::Command(Command::set("a", "1").encode()) };
        let _ = image_store.apply_entry(&entry);
    }
    let image = image_store.snapshot();
    let voters = ids(3);
    let mut host =
        Host::new(Config::new(NodeId(2), voters.clone()), RestoredState::default(), KvStore::default(), None).unwrap();
    host.start(0);
    let from_leader = |body: Body| Message { from: NodeId(1), to: NodeId(2), term: Term(1), body };
    let install = InstallSnapshot {
        last_index: LogIndex(3),
        last_term: Term(1),
        membership: raft_sm::Membership::new(voters),
        offset: 0,
        data: image.clone(),
        done: true,
    };
    host.step(10, Event::Message(from_leader(install.into())));
    let append = AppendEntries {
        prev_log_index: LogIndex(3),
        prev_log_term: Term(1),
        entries: vec![Entry {
            term: Term(1),
            index: LogIndex(4),
            payload: Payload::Command(Command::set("b", "2").encode()),
        }],
        leader_commit: LogIndex(4),
        read_round: 0,
    };
    host.step(11, Event::Message(from_leader(Body::AppendEntries(append))));
    let outputs: Vec<_> = host.drain_outputs().collect();
    let chunk_written =
        outputs.iter().any(|o| matches!(o, Output::Write(Write::SnapshotChunk { data, .. }) if *data == image));
    assert!(chunk_written, "the chunk went to the store: {outputs:?}");
    assert!(!outputs.iter().any(|o| matches!(o, Output::RestoreSnapshot(_))), "not durable yet");
    assert_eq!(host.state_machine().applied_index(), LogIndex(0), "nothing applied before the restore");
    let last_sync = outputs.iter().filter_map(|o| if let Output::Sync(id) = o { Some(*id) } else { None }).next_back();
    host.step(12, Event::Persisted { id: last_sync.expect("a sync covers the install") });
    let outputs: Vec<_> = host.drain_outputs().collect();
    let restore =
        outputs.iter().find_map(|o| if let Output::RestoreSnapshot(meta) = o { Some(meta.clone()) } else { None });
    assert_eq!(restore.map(|meta| meta.last_index), Some(LogIndex(3)), "durable now: restore it");
    assert_eq!(host.state_machine().applied_index(), LogIndex(0), "still held until the driver restores");
    host.restore_snapshot(13, &mut image.as_slice()).unwrap();
    assert_eq!(host.state_machine().applied_index(), LogIndex(4), "the held entry applied after the image");
    assert_eq!(host.state_machine().get("a"), Ok("1"));
    assert_eq!(host.state_machine().get("b"), Ok("2"));
}

/// The leader never holds the image either: it names the chunk and the store
/// reads it, so a chunk request for a snapshot the store does not hold sends nothing.
#[test]
fn a_chunk_of_a_snapshot_the_store_does_not_hold_is_not_sent() {
    let (mut pump, leader, lagging) = lagging_follower_of_a_large_snapshot();
    let held = pump.hosts[&leader].disk.snapshots.clone();
    // The leader's store loses its snapshot (as if it were not durable yet).
    pump.host(leader).disk.snapshots = raft_sm::MemorySnapshots::default();
    let sent_before = pump.count_sent("InstallSnapshot");
    pump.restart(lagging);
    pump.run_for(1_000);
    assert_eq!(pump.count_sent("InstallSnapshot"), sent_before, "nothing to read, nothing sent");
    assert!(pump.node(lagging).snapshot().is_none());
    pump.host(leader).disk.snapshots = held;
    pump.run_for(5_000);
    assert!(pump.count_sent("InstallSnapshot") > sent_before, "retried on the heartbeat once the store holds it");
    assert_eq!(pump.hosts[&lagging].kv().sorted_pairs(), pump.hosts[&leader].kv().sorted_pairs());
}
