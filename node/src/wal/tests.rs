use super::*;
use raft_sm::{NodeId, Payload, Term};

/// A segment size these tests never fill: each log stays in one segment. Every
/// segment is zero-filled to its full size, so it is kept small.
const ONE_SEGMENT: u64 = 1 << 20;

fn entry(index: u64, term: u64) -> Entry {
    Entry {
        term: Term(term),
        index: LogIndex(index),
        payload: Payload::Command(format!("command {index}").into_bytes()),
    }
}

fn hard_state(term: u64, commit: u64) -> HardState {
    HardState { term: Term(term), voted_for: Some(NodeId(2)), commit: LogIndex(commit) }
}

fn indexes(replay: &Replay) -> Vec<u64> {
    replay.entries.iter().map(|e| e.index.0).collect()
}

fn only_segment(dir: &Path) -> PathBuf {
    let segments = segment::list(dir).unwrap();
    assert_eq!(segments.len(), 1);
    segments[0].1.clone()
}

/// Writes entries 1..=n (each synced alone) and returns the write offset after each.
fn write_entries(dir: &Path, n: u64) -> Vec<u64> {
    let (mut wal, _) = Wal::open(dir, ONE_SEGMENT).unwrap();
    let mut lengths = Vec::new();
    for index in 1..=n {
        wal.append(&Record::Entry(entry(index, 1)));
        wal.sync().unwrap();
        lengths.push(wal.write_offset());
    }
    lengths
}

#[test]
fn replays_entries_hard_state_truncation_and_reset() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (mut wal, replay) = Wal::open(dir.path(), ONE_SEGMENT).unwrap();
        assert_eq!(replay, Replay::default());
        for index in 1..=5 {
            wal.append(&Record::Entry(entry(index, 1)));
        }
        wal.append(&Record::HardState(hard_state(2, 3)));
        wal.append(&Record::Truncate { from: LogIndex(4) });
        wal.append(&Record::Entry(entry(4, 2)));
        wal.sync().unwrap();
    }
    let (_, replay) = Wal::open(dir.path(), ONE_SEGMENT).unwrap();
    assert_eq!(replay.hard_state, hard_state(2, 3));
    assert_eq!(replay.base_index, Some(LogIndex(0)));
    assert_eq!(indexes(&replay), [1, 2, 3, 4]);
    assert_eq!(replay.entries[3].term, Term(2), "the truncated entry 4 was replaced");
    {
        let (mut wal, _) = Wal::open(dir.path(), ONE_SEGMENT).unwrap();
        wal.append(&Record::Reset { base_index: LogIndex(50) });
        wal.append(&Record::Entry(entry(51, 3)));
        wal.sync().unwrap();
    }
    let (_, replay) = Wal::open(dir.path(), ONE_SEGMENT).unwrap();
    assert_eq!(replay.base_index, Some(LogIndex(50)));
    assert_eq!(indexes(&replay), [51]);
}

#[test]
fn a_torn_tail_is_truncated_and_the_log_continues() {
    let dir = tempfile::tempdir().unwrap();
    let lengths = write_entries(dir.path(), 3);
    let path = only_segment(dir.path());
    // Half of record 3 reached the disk.
    let cut = lengths[1] + (lengths[2] - lengths[1]) / 2;
    OpenOptions::new().write(true).open(&path).unwrap().set_len(cut).unwrap();
    {
        let (mut wal, replay) = Wal::open(dir.path(), ONE_SEGMENT).unwrap();
        assert_eq!(indexes(&replay), [1, 2]);
        assert_eq!(std::fs::metadata(&path).unwrap().len(), lengths[1], "tail cut off");
        wal.append(&Record::Entry(entry(3, 2)));
        wal.sync().unwrap();
    }
    let (_, replay) = Wal::open(dir.path(), ONE_SEGMENT).unwrap();
    assert_eq!(indexes(&replay), [1, 2, 3]);
    assert_eq!(replay.entries[2].term, Term(2));
}

/// Entries whose records span several sectors, so that a torn write can lose
/// some sectors of a batch and keep others.
fn big_entry(index: u64) -> Entry {
    Entry { term: Term(1), index: LogIndex(index), payload: Payload::Command(vec![b'x'; 1500]) }
}

#[test]
fn a_flipped_byte_in_the_last_fsynced_batch_is_corruption_not_a_torn_tail() {
    let dir = tempfile::tempdir().unwrap();
    let lengths = write_entries(dir.path(), 3);
    let path = only_segment(dir.path());
    let mut bytes = std::fs::read(&path).unwrap();
    assert!(bytes.len() as u64 > lengths[2], "the segment is preallocated");
    let last = lengths[2] as usize - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&path, &bytes).unwrap();
    let error = Wal::open(dir.path(), ONE_SEGMENT).err().expect("a complete batch that fails its checksum");
    match &error {
        WalError::Corrupt { path: at, offset, .. } => {
            assert_eq!(at, &path);
            assert!(*offset >= lengths[1] && *offset < lengths[2], "offset {offset}");
        }
        other => panic!("expected Corrupt, got {other}"),
    }
    let text = error.to_string();
    assert!(text.contains(&path.display().to_string()) && text.contains("raftkv repair"), "{text}");
    assert_eq!(std::fs::read(&path).unwrap(), bytes, "nothing was cut");
}

#[test]
fn a_last_batch_with_a_sector_never_written_is_a_torn_tail() {
    let dir = tempfile::tempdir().unwrap();
    let (first_end, end) = {
        let (mut wal, _) = Wal::open(dir.path(), ONE_SEGMENT).unwrap();
        wal.append(&Record::Entry(big_entry(1)));
        wal.sync().unwrap();
        let first_end = wal.write_offset();
        for index in 2..=4 {
            wal.append(&Record::Entry(big_entry(index)));
        }
        wal.sync().unwrap();
        (first_end, wal.write_offset())
    };
    let path = only_segment(dir.path());
    let mut bytes = std::fs::read(&path).unwrap();
    // The second sector of the last batch never reached the disk.
    let sector = (first_end as usize / segment::SECTOR_BYTES + 2) * segment::SECTOR_BYTES;
    assert!(sector + segment::SECTOR_BYTES < end as usize);
    bytes[sector..sector + segment::SECTOR_BYTES].fill(0);
    std::fs::write(&path, &bytes).unwrap();
    let (_, replay) = Wal::open(dir.path(), ONE_SEGMENT).unwrap();
    assert_eq!(indexes(&replay), [1], "the unacknowledged batch is dropped whole");
    assert_eq!(std::fs::metadata(&path).unwrap().len(), first_end);
}

#[test]
fn a_bad_checksum_before_the_tail_is_a_startup_error() {
    let dir = tempfile::tempdir().unwrap();
    let lengths = write_entries(dir.path(), 3);
    let path = only_segment(dir.path());
    let mut bytes = std::fs::read(&path).unwrap();
    let inside_record_2 = lengths[0] as usize + record::HEADER_BYTES + 3;
    bytes[inside_record_2] ^= 0x01;
    std::fs::write(&path, &bytes).unwrap();
    let error = Wal::open(dir.path(), ONE_SEGMENT).err().expect("must refuse");
    match &error {
        WalError::Corrupt { offset, reason, .. } => {
            assert_eq!(*offset, lengths[0]);
            assert_eq!(*reason, "checksum mismatch");
        }
        other => panic!("expected Corrupt, got {other}"),
    }
    assert!(error.to_string().contains("refusing to start"));
    assert_eq!(std::fs::read(&path).unwrap(), bytes, "nothing was cut");
}

#[test]
fn a_crash_between_write_and_fsync_leaves_a_readable_prefix_at_every_cut() {
    let dir = tempfile::tempdir().unwrap();
    let lengths = {
        let (mut wal, _) = Wal::open(dir.path(), ONE_SEGMENT).unwrap();
        let mut lengths = Vec::new();
        for index in 1..=4 {
            wal.append(&Record::Entry(big_entry(index)));
            wal.sync().unwrap();
            lengths.push(wal.write_offset());
        }
        lengths
    };
    let path = only_segment(dir.path());
    let full = std::fs::read(&path).unwrap();
    // The last batches were written but the fsync never finished: any prefix of
    // them may have reached the disk (whole sectors, if the rest of the file
    // is still the preallocated zeros; any byte, if the file is shorter).
    for cut in lengths[1]..=lengths[3] {
        for keep_preallocation in [false, true] {
            if keep_preallocation && !(cut as usize).is_multiple_of(segment::SECTOR_BYTES) {
                continue;
            }
            let mut bytes = full[..cut as usize].to_vec();
            if keep_preallocation {
                bytes.resize(full.len(), 0);
            }
            std::fs::write(&path, &bytes).unwrap();
            let (_, replay) = Wal::open(dir.path(), ONE_SEGMENT).unwrap();
            let expected = lengths.iter().filter(|&&end| end <= cut).count() as u64;
            assert_eq!(indexes(&replay), (1..=expected).collect::<Vec<_>>(), "cut {cut}");
        }
    }
}

#[test]
fn the_preallocated_zero_tail_is_the_normal_end_of_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let lengths = write_entries(dir.path(), 2);
    let path = only_segment(dir.path());
    let allocated = std::fs::metadata(&path).unwrap().len();
    assert!(allocated > lengths[1], "zeros are preallocated after the records");
    {
        let (mut wal, replay) = Wal::open(dir.path(), ONE_SEGMENT).unwrap();
        assert_eq!(indexes(&replay), [1, 2]);
        assert_eq!(wal.write_offset(), lengths[1]);
        assert_eq!(std::fs::metadata(&path).unwrap().len(), allocated, "nothing truncated");
        wal.append(&Record::Entry(entry(3, 1)));
        wal.sync().unwrap();
    }
    let (_, replay) = Wal::open(dir.path(), ONE_SEGMENT).unwrap();
    assert_eq!(indexes(&replay), [1, 2, 3]);
}

#[test]
fn segments_rotate_and_snapshotted_ones_are_deleted() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (mut wal, _) = Wal::open(dir.path(), 4096).unwrap();
        for index in 1..=600 {
            wal.append(&Record::Entry(entry(index, 1)));
            if index % 10 == 0 {
                wal.append(&Record::HardState(hard_state(1, index)));
                wal.sync().unwrap();
            }
        }
        let before = wal.segment_count();
        assert!(before >= 4, "600 entries over 4 KiB segments rotate: {before}");
        let removed = wal.compact(LogIndex(400)).unwrap();
        assert!(removed >= 2, "removed {removed}");
        assert_eq!(wal.segment_count(), before - removed);
        assert_eq!(segment::list(dir.path()).unwrap().len(), before - removed);
    }
    let (_, replay) = Wal::open(dir.path(), 4096).unwrap();
    assert_eq!(replay.hard_state, hard_state(1, 600), "hard state survives deletion");
    let first = replay.entries.first().unwrap().index.0;
    assert!(first > 1 && first <= 401, "first surviving entry {first}");
    assert_eq!(replay.entries.last().unwrap().index.0, 600);
}

#[test]
fn damage_in_an_older_segment_is_a_startup_error() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (mut wal, _) = Wal::open(dir.path(), 4096).unwrap();
        for index in 1..=200 {
            wal.append(&Record::Entry(entry(index, 1)));
            wal.sync().unwrap();
        }
    }
    let segments = segment::list(dir.path()).unwrap();
    assert!(segments.len() >= 2);
    let first = &segments[0].1;
    let bytes = std::fs::read(first).unwrap();
    std::fs::write(first, &bytes[..bytes.len() - 5]).unwrap();
    assert!(matches!(Wal::open(dir.path(), 4096), Err(WalError::Corrupt { .. })));
}

#[test]
fn a_batch_torn_out_of_order_by_a_power_loss_is_dropped_whole() {
    let dir = tempfile::tempdir().unwrap();
    let (first_batch_end, records_at) = {
        let (mut wal, _) = Wal::open(dir.path(), ONE_SEGMENT).unwrap();
        wal.append(&Record::Entry(big_entry(1)));
        wal.sync().unwrap();
        let first_batch_end = wal.write_offset();
        // One batch of three entries, one fsync.
        for index in 2..=4 {
            wal.append(&Record::Entry(big_entry(index)));
        }
        wal.sync().unwrap();
        (first_batch_end, wal.write_offset())
    };
    let path = only_segment(dir.path());
    let mut bytes = std::fs::read(&path).unwrap();
    // The page holding entry 2 never reached the disk, the one holding entry 4 did:
    // zero entry 2 (it starts after the batch marker).
    let mut marker = Vec::new();
    record::encode(&Record::Batch { bytes: 0 }, &mut marker);
    let entry_2 = first_batch_end as usize + marker.len();
    // The first whole sector inside entry 2.
    let sector = entry_2.div_ceil(segment::SECTOR_BYTES) * segment::SECTOR_BYTES;
    bytes[sector..sector + segment::SECTOR_BYTES].fill(0);
    assert!(records_at as usize <= bytes.len());
    std::fs::write(&path, &bytes).unwrap();
    let (_, replay) = Wal::open(dir.path(), ONE_SEGMENT).unwrap();
    assert_eq!(indexes(&replay), [1], "the unacknowledged batch is dropped whole");
    assert_eq!(std::fs::metadata(&path).unwrap().len(), first_batch_end);

    // The same damage with a later intact batch after it is real corruption.
    let dir = tempfile::tempdir().unwrap();
    let lengths = write_entries(dir.path(), 3);
    let path = only_segment(dir.path());
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[lengths[0] as usize + marker.len() + 4] ^= 0xff;
    std::fs::write(&path, &bytes).unwrap();
    assert!(matches!(Wal::open(dir.path(), ONE_SEGMENT), Err(WalError::Corrupt { .. })));
}

fn temp_files(dir: &Path) -> Vec<String> {
    let names = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap());
    names.filter(|name| segment::is_temp_name(name)).collect()
}

#[test]
fn rotation_into_prepared_segments_keeps_the_log_across_reopens() {
    const SEGMENT: u64 = 4096;
    let dir = tempfile::tempdir().unwrap();
    let mut next = 1;
    for round in 1..=3u64 {
        let (mut wal, replay) = Wal::open(dir.path(), SEGMENT).unwrap();
        assert_eq!(indexes(&replay), (1..next).collect::<Vec<_>>(), "round {round}");
        let segments_before = wal.segment_count();
        for _ in 0..400 {
            wal.append(&Record::Entry(entry(next, round)));
            if next % 7 == 0 {
                wal.append(&Record::HardState(hard_state(round, next)));
                wal.sync().unwrap();
            }
            next += 1;
        }
        wal.append(&Record::HardState(hard_state(round, next - 1)));
        wal.sync().unwrap();
        assert!(wal.segment_count() >= segments_before + 3, "round {round}: {} segments", wal.segment_count());
        // Every segment but the active one ends with its last record; the active
        // one was zero-filled to the full size before its first record.
        let listed = segment::list(dir.path()).unwrap();
        for (seq, path) in &listed[..listed.len() - 1] {
            let bytes = std::fs::read(path).unwrap();
            assert!(segment::scan(&bytes).damage.is_none(), "segment {seq} has no zero tail");
        }
        let active = std::fs::metadata(&listed.last().unwrap().1).unwrap().len();
        assert_eq!(active, SEGMENT, "the active segment is preallocated");
    }
    assert!(temp_files(dir.path()).is_empty(), "a closed log leaves no prepared segment behind");
    let (_, replay) = Wal::open(dir.path(), SEGMENT).unwrap();
    assert_eq!(indexes(&replay), (1..next).collect::<Vec<_>>());
    assert_eq!(replay.hard_state, hard_state(3, next - 1));
    assert_eq!(replay.entries.last().unwrap().term, Term(3));
}

#[test]
fn a_stale_prepared_segment_is_removed_at_open_and_never_replayed() {
    let dir = tempfile::tempdir().unwrap();
    write_entries(dir.path(), 2);
    // A crash left a prepared segment that was never renamed into place; give it
    // records that would break the log if it were read as a segment.
    let mut stale = Vec::new();
    record::encode(&Record::Entry(entry(9, 7)), &mut stale);
    record::encode(&Record::HardState(hard_state(7, 9)), &mut stale);
    let stale_name = segment::temp_file_name(3);
    std::fs::write(dir.path().join(&stale_name), &stale).unwrap();
    let (mut wal, replay) = Wal::open(dir.path(), ONE_SEGMENT).unwrap();
    assert_eq!(indexes(&replay), [1, 2]);
    assert_eq!(replay.hard_state, HardState::default());
    assert!(!dir.path().join(&stale_name).exists(), "the stale temp file was removed");
    wal.append(&Record::Entry(entry(3, 1)));
    wal.sync().unwrap();
    drop(wal);
    let (_, replay) = Wal::open(dir.path(), ONE_SEGMENT).unwrap();
    assert_eq!(indexes(&replay), [1, 2, 3]);
    assert_eq!(segment::list(dir.path()).unwrap().len(), 1);
}

#[test]
fn a_segment_cut_short_by_a_torn_tail_is_not_grown_write_by_write() {
    let dir = tempfile::tempdir().unwrap();
    let lengths = write_entries(dir.path(), 3);
    let path = only_segment(dir.path());
    OpenOptions::new().write(true).open(&path).unwrap().set_len(lengths[2] - 1).unwrap();
    {
        let (mut wal, replay) = Wal::open(dir.path(), ONE_SEGMENT).unwrap();
        assert_eq!(indexes(&replay), [1, 2]);
        wal.append(&Record::HardState(hard_state(2, 2)));
        wal.append(&Record::Entry(entry(3, 2)));
        wal.sync().unwrap();
    }
    let listed = segment::list(dir.path()).unwrap();
    assert_eq!(listed.len(), 2, "the next write went to a new segment");
    assert_eq!(std::fs::metadata(&listed[0].1).unwrap().len(), lengths[1], "the cut segment kept its length");
    assert_eq!(std::fs::metadata(&listed[1].1).unwrap().len(), ONE_SEGMENT, "the new one is preallocated");
    let (_, replay) = Wal::open(dir.path(), ONE_SEGMENT).unwrap();
    assert_eq!(indexes(&replay), [1, 2, 3]);
    assert_eq!(replay.entries[2].term, Term(2));
    assert_eq!(replay.hard_state, hard_state(2, 2));
}

#[test]
fn the_streaming_scan_reads_what_the_in_memory_scan_reads_across_chunks_and_damage() {
    let dir = tempfile::tempdir().unwrap();
    let segment_bytes = 4 << 20;
    {
        let (mut wal, _) = Wal::open(dir.path(), segment_bytes).unwrap();
        for first in (1..=1400).step_by(100) {
            for index in first..first + 100 {
                wal.append(&Record::Entry(big_entry(index)));
            }
            wal.sync().unwrap();
        }
    }
    let path = only_segment(dir.path());
    let clean = std::fs::read(&path).unwrap();
    let end = clean.iter().rposition(|&b| b != 0).unwrap() + 1;
    assert!(end > 2 << 20, "the records span several read chunks");
    let mut variants = vec![clean.clone()];
    for at in [100, 1 << 20, end - 2, end / 2] {
        let mut flipped = clean.clone();
        flipped[at] ^= 0x08;
        variants.push(flipped);
    }
    let mut cut = clean.clone();
    cut.truncate(end - 700);
    variants.push(cut);
    let mut unwritten = clean.clone();
    let sector = (end / segment::SECTOR_BYTES - 1) * segment::SECTOR_BYTES;
    unwritten[sector..sector + segment::SECTOR_BYTES].fill(0);
    variants.push(unwritten);
    for (i, bytes) in variants.iter().enumerate() {
        std::fs::write(&path, bytes).unwrap();
        let in_memory = segment::scan(bytes);
        let (streamed, len) = segment::scan_file(&path).unwrap();
        assert_eq!(len, bytes.len() as u64);
        assert_eq!(streamed.damage, in_memory.damage, "variant {i}");
        assert_eq!(streamed.records, in_memory.records, "variant {i}");
    }
}

#[test]
fn repair_cuts_the_damaged_batch_and_everything_after_it_and_reports_how_far_the_log_reached() {
    let dir = tempfile::tempdir().unwrap();
    let lengths = write_entries(dir.path(), 5);
    let path = only_segment(dir.path());
    let mut bytes = std::fs::read(&path).unwrap();
    // Damage inside the third batch: entries 4 and 5 are readable after it.
    bytes[lengths[2] as usize - 2] ^= 0x20;
    std::fs::write(&path, &bytes).unwrap();
    assert!(matches!(Wal::open(dir.path(), ONE_SEGMENT), Err(WalError::Corrupt { .. })));
    let repaired = Wal::repair(dir.path()).unwrap().expect("damage found");
    assert_eq!(repaired.segment, path);
    assert_eq!(repaired.offset, lengths[1], "cut at the start of the damaged batch");
    assert!(repaired.reached >= LogIndex(5), "entries after the damage count: {:?}", repaired.reached);
    let (_, replay) = Wal::open(dir.path(), ONE_SEGMENT).unwrap();
    assert_eq!(indexes(&replay), [1, 2]);
    assert!(Wal::repair(dir.path()).unwrap().is_none(), "nothing left to repair");
}
