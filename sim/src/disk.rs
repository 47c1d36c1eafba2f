//! A node's simulated disk: the durable image (hard state, snapshot, log) and
//! the writes not yet fsynced.
//!
//! Writes are queued in order. An fsync makes everything up to a barrier durable
//! after a simulated latency; only then is the node told (`Persisted`). A crash
//! loses what was not fsynced: either all of it, or (with torn writes on) an
//! ordered prefix of it whose last log record may be torn, which recovery
//! detects and truncates, exactly as a checksummed write-ahead log would.
//!
//! It executes raft-sm's one write type ([`Write`]) by its rules, as the node's
//! write-ahead log does. Snapshots the node took itself are written as the real
//! node writes them, on a snapshot thread: handed over once the fsync covering
//! their `SaveSnapshot` completes, durable only after a further delay (the
//! cluster draws it), the newest of those waiting written in one go; the host
//! then steps `SnapshotPersisted` and only then does the core ask for the
//! compaction. A crash before then loses the snapshot. A snapshot installed
//! from the leader is durable at its fsync, after every self-taken snapshot
//! handed over before it (the real node waits for them), so an older one never
//! lands over it.
//!
//! Snapshot bytes live here, never in the core: images the host took wait in a
//! staging area (volatile, as the real node's unsynced temp files) until their
//! `SaveSnapshot` lands; chunks from a leader build an incoming image, which
//! recovery discards when incomplete (as the node deletes its incoming file).

use crate::rng::SimRng;
use raft_sm::{Entry, HardState, LogIndex, PersistId, RestoredState, SnapshotMeta, SnapshotOrigin, Term, Write};
use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

/// A snapshot as the disk holds it: its metadata and its image's bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnapshotFile {
    /// What the core knows of it.
    pub meta: SnapshotMeta,
    /// The state machine's image (shared: reading a chunk copies only the chunk).
    pub image: Arc<Vec<u8>>,
}

/// What is on the platter.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DurableImage {
    /// The last hard state written.
    pub hard_state: HardState,
    /// The last snapshot saved.
    pub snapshot: Option<SnapshotFile>,
    /// The image coming in from a leader: its (index, term) and bytes so far.
    /// Recovery discards it; a `SaveSnapshot` of an installed snapshot makes it
    /// the snapshot.
    pub incoming: Option<(LogIndex, Term, Vec<u8>)>,
    /// Entries before and at this index were compacted or reset away.
    pub log_base: LogIndex,
    /// The log records after `log_base`, contiguous.
    pub entries: Vec<Entry>,
}

impl DurableImage {
    /// Bytes this image takes on disk, roughly: the hard state, each entry
    /// (header and payload) and the snapshot's data.
    pub fn size_bytes(&self) -> u64 {
        let entries: usize = self.entries.iter().map(Entry::size_bytes).sum();
        let snapshot = self.snapshot.as_ref().map_or(0, |snapshot| 24 + snapshot.image.len());
        (24 + entries + snapshot) as u64
    }

    /// The last durable log index (the base when the log is empty).
    pub fn last_index(&self) -> LogIndex {
        self.entries.last().map_or(self.log_base, |entry| entry.index)
    }

    /// The term of a durable entry, if held.
    pub fn term_at(&self, index: LogIndex) -> Option<Term> {
        if index <= self.log_base {
            return None;
        }
        let offset = (index.0 - self.log_base.0 - 1) as usize;
        self.entries.get(offset).map(|entry| entry.term)
    }

    /// Makes `file` the snapshot.
    fn save_snapshot(&mut self, file: SnapshotFile) -> Result<(), String> {
        if file.image.len() as u64 != file.meta.size_bytes {
            return Err(format!(
                "the snapshot at {} is {} bytes but its metadata says {}",
                file.meta.last_index,
                file.image.len(),
                file.meta.size_bytes
            ));
        }
        self.snapshot = Some(file);
        Ok(())
    }

    /// Applies one write (a self-taken `SaveSnapshot` goes through the
    /// snapshot writer instead). Returns an error naming a broken write contract.
    pub fn apply(&mut self, write: Write) -> Result<(), String> {
        match write {
            Write::HardState(hard_state) => self.hard_state = hard_state,
            Write::Truncate { from } => {
                let keep = from.0.saturating_sub(self.log_base.0 + 1) as usize;
                self.entries.truncate(keep);
            }
            Write::Append { entries } => {
                let Some(first) = entries.first() else {
                    return Ok(());
                };
                let expected = self.last_index().next();
                if first.index != expected {
                    return Err(format!(
                        "AppendLog starts at {} but the durable log ends at {}",
                        first.index,
                        self.last_index()
                    ));
                }
                self.entries.extend(entries);
            }
            Write::SnapshotChunk { last_index, last_term, offset, data } => {
                if offset == 0 {
                    self.incoming = Some((last_index, last_term, Vec::new()));
                }
                match &mut self.incoming {
                    Some((index, term, bytes))
                        if (*index, *term) == (last_index, last_term) && bytes.len() as u64 == offset =>
                    {
                        bytes.extend_from_slice(&data)
                    }
                    _ => {
                        return Err(format!(
                            "a chunk of {last_index} at offset {offset} does not continue the incoming image"
                        ))
                    }
                }
            }
            Write::SaveSnapshot { meta, origin: SnapshotOrigin::Installed } => {
                let Some((index, term, image)) = self.incoming.take() else {
                    return Err(format!("the snapshot at {} was saved but never received", meta.last_index));
                };
                if (index, term) != (meta.last_index, meta.last_term) {
                    return Err(format!("saved the snapshot at {} but received the one at {index}", meta.last_index));
                }
                self.save_snapshot(SnapshotFile { meta, image: Arc::new(image) })?;
            }
            Write::SaveSnapshot { meta, origin: SnapshotOrigin::Taken } => {
                return Err(format!("the taken snapshot at {} bypassed the snapshot writer", meta.last_index));
            }
            Write::Compact { up_to } => {
                if up_to > self.log_base {
                    let drop = ((up_to.0 - self.log_base.0) as usize).min(self.entries.len());
                    self.entries.drain(..drop);
                    self.log_base = up_to;
                }
            }
            Write::Reset { base_index } => {
                self.entries.clear();
                self.log_base = base_index;
            }
        }
        Ok(())
    }
}

impl Disk {
    /// What a restarting node reads back: the hard state, the snapshot, and the
    /// log records as they are on disk (a torn last record already truncated, as
    /// the write-ahead log's recovery does). The records may disagree with the
    /// snapshot (a crash between saving it and compacting or resetting the log):
    /// the core reconciles them and its first actions repair the disk.
    ///
    /// An empty log places no constraint on where the next record goes, so it
    /// continues the snapshot: a crash can keep a newer snapshot but lose the
    /// log reset that went with it, and `RestoredState` has no field for the
    /// log's own base, so the core could not repair that (it appends after the
    /// snapshot, as the write-ahead log's self-describing records allow).
    pub fn recover(&mut self) -> RestoredState {
        assert!(self.unsynced.is_empty(), "recovery runs after a crash");
        assert!(self.snapshots.is_idle(), "a crash lost every snapshot still being written");
        // An incomplete incoming image is deleted at start, as the node does.
        self.durable.incoming = None;
        if self.durable.entries.is_empty() {
            if let Some(snapshot) = &self.durable.snapshot {
                self.durable.log_base = snapshot.meta.last_index;
            }
        }
        RestoredState {
            hard_state: self.durable.hard_state,
            snapshot: self.durable.snapshot.as_ref().map(|snapshot| snapshot.meta.clone()),
            entries: self.durable.entries.clone(),
        }
    }
}

#[derive(Clone, Debug)]
enum Pending {
    Write(Write),
    Barrier(PersistId),
}

/// What a crash did to the unsynced writes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CrashDamage {
    /// Unsynced writes lost.
    pub writes_lost: usize,
    /// Unsynced writes that happened to reach the platter anyway.
    pub writes_kept: usize,
    /// The last surviving log record was torn (and truncated by recovery).
    pub torn: bool,
}

/// What happened to the snapshots the node took itself, over the disk's life.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SnapshotStats {
    /// Snapshot files written in the background.
    pub written: u64,
    /// Snapshots handed over that a newer one replaced before they were written.
    pub superseded: u64,
    /// Snapshots handed over that a crash lost before they were durable.
    pub lost: u64,
    /// Compactions that waited for their snapshot to be durable (every taken
    /// snapshot's: the core asks for it only after `SnapshotPersisted`).
    pub compactions_deferred: u64,
    /// Compactions a crash lost with their snapshot (the log kept its entries).
    pub compactions_lost: u64,
}

/// One background snapshot write in progress.
#[derive(Clone, Debug)]
struct SnapshotWrite {
    /// The newest of the snapshots waiting when the write started.
    snapshot: SnapshotFile,
    /// How many handed-over snapshots it covers (itself and the older ones it replaces).
    covers: u64,
    /// Identifies the write's completion event.
    ticket: u64,
    /// Its delay passed while writes were held back.
    due: bool,
}

/// The node's snapshot thread: snapshots the node took itself, handed over
/// after their fsync, written one at a time (the newest of those waiting), and
/// the compactions that wait for them.
#[derive(Clone, Debug, Default)]
struct SnapshotWriter {
    /// Handed over, waiting for the write in progress.
    waiting: VecDeque<SnapshotFile>,
    writing: Option<SnapshotWrite>,
    /// A write started since the cluster last asked (its ticket): schedule its completion.
    started: Option<u64>,
    next_ticket: u64,
    /// Snapshots handed over so far, and how many of them are durable.
    handed_over: u64,
    durable: u64,
    stats: SnapshotStats,
}

impl SnapshotWriter {
    fn is_idle(&self) -> bool {
        self.waiting.is_empty() && self.writing.is_none()
    }

    fn hand_over(&mut self, snapshot: SnapshotFile) {
        self.handed_over += 1;
        self.stats.compactions_deferred += 1;
        self.waiting.push_back(snapshot);
        if self.writing.is_none() {
            self.start_next();
        }
    }

    /// Starts writing the newest waiting snapshot; the older ones are replaced.
    fn start_next(&mut self) {
        let covers = self.waiting.len() as u64;
        let Some(snapshot) = self.waiting.pop_back() else {
            return;
        };
        self.waiting.clear();
        self.next_ticket += 1;
        self.writing = Some(SnapshotWrite { snapshot, covers, ticket: self.next_ticket, due: false });
        self.started = Some(self.next_ticket);
    }

    /// The process died: whatever was waiting or being written is lost, and so
    /// are the compactions behind it.
    fn crash(&mut self) {
        self.stats.lost += self.handed_over - self.durable;
        self.stats.compactions_lost += self.handed_over - self.durable;
        let stats = self.stats;
        let next_ticket = self.next_ticket;
        *self = SnapshotWriter { stats, next_ticket, ..SnapshotWriter::default() };
    }
}

/// One node's disk.
#[derive(Clone, Debug, Default)]
pub struct Disk {
    durable: DurableImage,
    unsynced: VecDeque<Pending>,
    /// The barrier the fsync in flight covers.
    fsync_inflight: Option<PersistId>,
    /// The newest barrier issued.
    newest_barrier: Option<PersistId>,
    /// Fsyncs complete no earlier than this (a stalled disk).
    pub stalled_until_ms: u64,
    snapshots: SnapshotWriter,
    /// Background snapshot writes do not complete while set (a test's gate).
    snapshot_writes_held: bool,
    /// Images the host took, by index, until their `SaveSnapshot` lands
    /// (volatile: a crash loses them).
    staged: BTreeMap<LogIndex, Arc<Vec<u8>>>,
}

impl Disk {
    /// The durable image.
    pub fn durable(&self) -> &DurableImage {
        &self.durable
    }

    /// What happened to the snapshots the node took itself so far.
    pub fn snapshot_stats(&self) -> SnapshotStats {
        self.snapshots.stats
    }

    /// Self-taken snapshots handed over and not yet durable.
    pub fn snapshots_pending(&self) -> u64 {
        self.snapshots.handed_over - self.snapshots.durable
    }

    /// Keeps the image the host took for `index` until its `SaveSnapshot` lands.
    pub fn stage_image(&mut self, index: LogIndex, image: Vec<u8>) {
        self.staged.insert(index, Arc::new(image));
    }

    /// The durable snapshot, if it is the one at `index`.
    pub fn durable_snapshot_at(&self, index: LogIndex) -> Option<&SnapshotFile> {
        self.durable.snapshot.as_ref().filter(|snapshot| snapshot.meta.last_index == index)
    }

    /// Queues a write.
    pub fn write(&mut self, write: Write) {
        self.unsynced.push_back(Pending::Write(write));
    }

    /// Queues a barrier. Returns the barrier an fsync should start for now, if
    /// no fsync is in flight (otherwise a later fsync covers it: group commit).
    pub fn sync(&mut self, id: PersistId) -> Option<PersistId> {
        self.unsynced.push_back(Pending::Barrier(id));
        self.newest_barrier = Some(id);
        if self.fsync_inflight.is_none() {
            self.fsync_inflight = Some(id);
            return Some(id);
        }
        None
    }

    /// The fsync for barrier `id` completed: everything up to it is durable
    /// (self-taken snapshots are handed to the snapshot writer instead).
    /// Returns the next barrier to fsync, if more were issued meanwhile.
    pub fn fsync_done(&mut self, id: PersistId) -> Result<Option<PersistId>, String> {
        assert_eq!(self.fsync_inflight, Some(id), "fsyncs complete in order");
        loop {
            match self.unsynced.pop_front() {
                Some(Pending::Write(write)) => self.land(write)?,
                Some(Pending::Barrier(barrier)) if barrier == id => break,
                Some(Pending::Barrier(_)) => {}
                None => panic!("barrier {id:?} was queued"),
            }
        }
        self.fsync_inflight = None;
        match self.newest_barrier {
            Some(newest) if newest > id => {
                self.fsync_inflight = Some(newest);
                Ok(Some(newest))
            }
            _ => Ok(None),
        }
    }

    /// A write reached the platter (its fsync completed, or a crash kept it).
    fn land(&mut self, write: Write) -> Result<(), String> {
        match write {
            Write::SaveSnapshot { meta, origin: SnapshotOrigin::Taken } => {
                let Some(image) = self.staged.remove(&meta.last_index) else {
                    return Err(format!("the taken snapshot at {} was never staged", meta.last_index));
                };
                self.staged.retain(|&index, _| index > meta.last_index);
                self.snapshots.hand_over(SnapshotFile { meta, image });
                Ok(())
            }
            Write::SaveSnapshot { meta, origin: SnapshotOrigin::Installed } => {
                // The real node writes every snapshot handed over before this one
                // first, so none of them can land over it later.
                self.flush_snapshots()?;
                self.durable.apply(Write::SaveSnapshot { meta, origin: SnapshotOrigin::Installed })
            }
            write => self.durable.apply(write),
        }
    }

    /// The background snapshot write started since the last call, if any: its
    /// ticket, for the cluster to schedule [`Disk::snapshot_written`] after a delay.
    pub fn snapshot_write_started(&mut self) -> Option<u64> {
        self.snapshots.started.take()
    }

    /// The background snapshot write `ticket` completed its delay: the snapshot
    /// is durable (its index is returned: the host steps `SnapshotPersisted`),
    /// unless writes are held (then it completes on release). A stale ticket (a
    /// crash, or a leader's snapshot that flushed the write) is ignored.
    pub fn snapshot_written(&mut self, ticket: u64) -> Result<Option<LogIndex>, String> {
        let Some(write) = &mut self.snapshots.writing else {
            return Ok(None);
        };
        if write.ticket != ticket {
            return Ok(None);
        }
        if self.snapshot_writes_held {
            write.due = true;
            return Ok(None);
        }
        let write = self.snapshots.writing.take().expect("checked above");
        let index = write.snapshot.meta.last_index;
        self.make_durable(write.snapshot, write.covers)?;
        self.snapshots.start_next();
        Ok(Some(index))
    }

    /// Holds background snapshot writes back (they stay pending, as when the
    /// real node's snapshot thread is slow) or releases them. On release,
    /// returns the ticket of a write whose delay passed meanwhile: complete it now.
    pub fn hold_snapshot_writes(&mut self, held: bool) -> Option<u64> {
        self.snapshot_writes_held = held;
        match &self.snapshots.writing {
            Some(write) if !held && write.due => Some(write.ticket),
            _ => None,
        }
    }

    /// Makes every handed-over snapshot durable now (the newest is written).
    fn flush_snapshots(&mut self) -> Result<(), String> {
        let writer = &mut self.snapshots;
        let covers = writer.handed_over - writer.durable;
        let writing = writer.writing.take().map(|write| write.snapshot);
        let newest = writer.waiting.pop_back().or(writing);
        writer.waiting.clear();
        writer.started = None;
        match newest {
            Some(snapshot) => self.make_durable(snapshot, covers),
            None => Ok(()),
        }
    }

    /// `snapshot` is durable, covering `covers` handed-over snapshots.
    fn make_durable(&mut self, snapshot: SnapshotFile, covers: u64) -> Result<(), String> {
        if let Some(on_disk) = &self.durable.snapshot {
            if on_disk.meta.last_index > snapshot.meta.last_index {
                return Err(format!(
                    "a snapshot taken at {} would replace the newer durable snapshot at {}",
                    snapshot.meta.last_index, on_disk.meta.last_index
                ));
            }
        }
        self.durable.save_snapshot(snapshot)?;
        self.snapshots.durable += covers;
        self.snapshots.stats.written += 1;
        self.snapshots.stats.superseded += covers - 1;
        Ok(())
    }

    /// Number of writes not yet durable.
    pub fn unsynced_writes(&self) -> usize {
        self.unsynced.iter().filter(|pending| matches!(pending, Pending::Write(_))).count()
    }

    /// The process died. Unsynced writes are lost, except (with `torn_writes`) a
    /// random ordered prefix that reached the platter, whose last log record may
    /// be torn; self-taken snapshots not yet durable are lost, and so are the
    /// compactions waiting for them. Returns what happened.
    pub fn crash(&mut self, rng: &mut SimRng, torn_writes: bool) -> Result<CrashDamage, String> {
        let damage = self.crash_unsynced(rng, torn_writes);
        self.snapshots.crash();
        self.staged.clear();
        damage
    }

    fn crash_unsynced(&mut self, rng: &mut SimRng, torn_writes: bool) -> Result<CrashDamage, String> {
        let writes: Vec<Write> = std::mem::take(&mut self.unsynced)
            .into_iter()
            .filter_map(|pending| match pending {
                Pending::Write(write) => Some(write),
                Pending::Barrier(_) => None,
            })
            .collect();
        self.fsync_inflight = None;
        self.newest_barrier = None;
        self.stalled_until_ms = 0;
        let mut damage = CrashDamage { writes_lost: writes.len(), ..CrashDamage::default() };
        if !torn_writes || writes.is_empty() {
            return Ok(damage);
        }
        let kept = rng.range(0, writes.len() as u64) as usize;
        damage.writes_kept = kept;
        damage.writes_lost = writes.len() - kept;
        for (position, write) in writes.into_iter().take(kept).enumerate() {
            let last = position + 1 == kept;
            match write {
                Write::Append { mut entries } if last && !entries.is_empty() => {
                    // The record being written when power failed is torn: its
                    // checksum fails and recovery truncates it and all after it.
                    let survive = rng.range(0, entries.len() as u64 - 1) as usize;
                    entries.truncate(survive);
                    damage.torn = true;
                    self.durable.apply(Write::Append { entries })?;
                }
                // A self-taken snapshot in the prefix is handed over here and
                // lost with the crash: its fsync never completed, so the real
                // node never gave it to its snapshot thread.
                write => self.land(write)?,
            }
        }
        Ok(damage)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use raft_sm::Payload;

    fn entry(index: u64, term: u64) -> Entry {
        Entry { term: Term(term), index: LogIndex(index), payload: Payload::Noop }
    }

    fn snapshot(index: u64, term: u64) -> SnapshotMeta {
        SnapshotMeta {
            last_index: LogIndex(index),
            last_term: Term(term),
            membership: raft_sm::Membership::default(),
            size_bytes: 3,
        }
    }

    /// A snapshot installed from the leader: its one chunk, then the save.
    fn installed(disk: &mut Disk, meta: SnapshotMeta) {
        let (last_index, last_term) = (meta.last_index, meta.last_term);
        disk.write(Write::SnapshotChunk { last_index, last_term, offset: 0, data: b"abc".to_vec() });
        disk.write(Write::SaveSnapshot { meta, origin: SnapshotOrigin::Installed });
    }

    /// A snapshot the node took itself.
    fn taken(disk: &mut Disk, index: u64, term: u64) {
        disk.stage_image(LogIndex(index), b"xyz".to_vec());
        disk.write(Write::SaveSnapshot { meta: snapshot(index, term), origin: SnapshotOrigin::Taken });
    }

    /// A taken snapshot's write completed: the core, told so, asks for the compaction.
    fn written(disk: &mut Disk, ticket: u64, sync: u64) -> LogIndex {
        let index = disk.snapshot_written(ticket).unwrap().expect("the snapshot is durable now");
        disk.write(Write::Compact { up_to: index });
        synced(disk, sync);
        index
    }

    fn synced(disk: &mut Disk, id: u64) {
        assert_eq!(disk.sync(PersistId(id)), Some(PersistId(id)), "no fsync in flight");
        assert_eq!(disk.fsync_done(PersistId(id)), Ok(None));
    }

    fn indexes(disk: &Disk) -> Vec<u64> {
        disk.durable().entries.iter().map(|entry| entry.index.0).collect()
    }

    fn durable_snapshot_index(disk: &Disk) -> Option<u64> {
        disk.durable().snapshot.as_ref().map(|snapshot| snapshot.meta.last_index.0)
    }

    #[test]
    fn a_taken_snapshot_is_durable_after_its_write_and_only_then_compacts_the_log() {
        let mut disk = Disk::default();
        disk.write(Write::Append { entries: vec![entry(1, 1), entry(2, 1), entry(3, 1), entry(4, 1)] });
        taken(&mut disk, 3, 1);
        synced(&mut disk, 1);
        assert_eq!(durable_snapshot_index(&disk), None, "written in the background, not at the fsync");
        assert_eq!(indexes(&disk), vec![1, 2, 3, 4], "nothing compacts before the snapshot is durable");
        assert_eq!(disk.snapshots_pending(), 1);
        let ticket = disk.snapshot_write_started().expect("the write started at the fsync");
        assert_eq!(disk.snapshot_write_started(), None, "reported once");
        assert_eq!(written(&mut disk, ticket, 2), LogIndex(3));
        assert_eq!(durable_snapshot_index(&disk), Some(3));
        assert_eq!(indexes(&disk), vec![4]);
        assert_eq!(disk.snapshots_pending(), 0);
        assert_eq!(disk.snapshot_stats().compactions_deferred, 1);
    }

    #[test]
    fn a_crash_before_the_write_keeps_the_older_snapshot_and_the_whole_log() {
        let mut disk = Disk::default();
        disk.write(Write::Append { entries: (1..=6).map(|index| entry(index, 1)).collect() });
        taken(&mut disk, 2, 1);
        synced(&mut disk, 1);
        let first = disk.snapshot_write_started().unwrap();
        written(&mut disk, first, 2);
        taken(&mut disk, 5, 1);
        synced(&mut disk, 3);
        assert!(disk.snapshot_write_started().is_some());
        disk.crash(&mut SimRng::from_seed(1), false).unwrap();
        let restored = disk.recover();
        assert_eq!(restored.snapshot.map(|s| s.last_index), Some(LogIndex(2)), "the older snapshot");
        assert_eq!(restored.entries.first().map(|e| e.index), Some(LogIndex(3)), "every entry after it");
        assert_eq!(restored.entries.last().map(|e| e.index), Some(LogIndex(6)));
        let stats = disk.snapshot_stats();
        assert_eq!((stats.written, stats.lost, stats.compactions_lost), (1, 1, 1));
    }

    #[test]
    fn a_stale_write_completion_after_a_crash_changes_nothing() {
        let mut disk = Disk::default();
        disk.write(Write::Append { entries: vec![entry(1, 1), entry(2, 1)] });
        taken(&mut disk, 2, 1);
        synced(&mut disk, 1);
        let ticket = disk.snapshot_write_started().unwrap();
        disk.crash(&mut SimRng::from_seed(1), false).unwrap();
        assert_eq!(disk.snapshot_written(ticket), Ok(None));
        assert_eq!(durable_snapshot_index(&disk), None);
        assert_eq!(indexes(&disk), vec![1, 2]);
    }

    #[test]
    fn snapshots_waiting_behind_a_write_collapse_into_the_newest() {
        let mut disk = Disk::default();
        disk.write(Write::Append { entries: (1..=8).map(|index| entry(index, 1)).collect() });
        taken(&mut disk, 2, 1);
        synced(&mut disk, 1);
        let first = disk.snapshot_write_started().unwrap();
        for (id, index) in [(2, 4), (3, 6)] {
            taken(&mut disk, index, 1);
            synced(&mut disk, id);
            assert_eq!(disk.snapshot_write_started(), None, "one write at a time");
        }
        assert_eq!(indexes(&disk).len(), 8, "no compaction before any snapshot is durable");
        assert_eq!(written(&mut disk, first, 4), LogIndex(2));
        assert_eq!(durable_snapshot_index(&disk), Some(2));
        assert_eq!(indexes(&disk), vec![3, 4, 5, 6, 7, 8], "only the first snapshot is durable");
        let second = disk.snapshot_write_started().expect("the newest waiting one is written next");
        assert_eq!(written(&mut disk, second, 5), LogIndex(6));
        assert_eq!(durable_snapshot_index(&disk), Some(6));
        assert_eq!(indexes(&disk), vec![7, 8]);
        let stats = disk.snapshot_stats();
        assert_eq!((stats.written, stats.superseded), (2, 1), "three snapshots, two files");
    }

    #[test]
    fn an_older_taken_snapshot_never_lands_over_one_installed_from_the_leader() {
        let mut disk = Disk::default();
        disk.write(Write::Append { entries: (1..=4).map(|index| entry(index, 1)).collect() });
        taken(&mut disk, 3, 1);
        synced(&mut disk, 1);
        let ticket = disk.snapshot_write_started().unwrap();
        installed(&mut disk, snapshot(10, 2));
        disk.write(Write::Reset { base_index: LogIndex(10) });
        synced(&mut disk, 2);
        assert_eq!(durable_snapshot_index(&disk), Some(10));
        assert_eq!(disk.snapshots_pending(), 0, "written before the leader's snapshot, as the node does");
        assert_eq!(disk.snapshot_written(ticket), Ok(None), "a stale completion");
        assert_eq!(durable_snapshot_index(&disk), Some(10), "the stale completion changes nothing");
        assert_eq!(disk.durable().log_base, LogIndex(10));
        assert!(indexes(&disk).is_empty());
    }

    #[test]
    fn held_snapshot_writes_complete_on_release() {
        let mut disk = Disk::default();
        disk.write(Write::Append { entries: vec![entry(1, 1), entry(2, 1)] });
        assert_eq!(disk.hold_snapshot_writes(true), None);
        taken(&mut disk, 2, 1);
        synced(&mut disk, 1);
        let ticket = disk.snapshot_write_started().unwrap();
        assert_eq!(disk.snapshot_written(ticket), Ok(None));
        assert_eq!(durable_snapshot_index(&disk), None, "held back");
        assert_eq!(disk.hold_snapshot_writes(false), Some(ticket), "its delay passed");
        assert_eq!(disk.snapshot_written(ticket), Ok(Some(LogIndex(2))));
        assert_eq!(durable_snapshot_index(&disk), Some(2));
    }

    #[test]
    fn a_taken_snapshot_in_a_torn_prefix_is_lost_with_its_compaction() {
        for seed in 0..50 {
            let mut disk = Disk::default();
            disk.write(Write::Append { entries: (1..=3).map(|index| entry(index, 1)).collect() });
            synced(&mut disk, 1);
            taken(&mut disk, 3, 1);
            disk.write(Write::Append { entries: vec![entry(4, 1)] });
            disk.sync(PersistId(2));
            disk.crash(&mut SimRng::from_seed(seed), true).unwrap();
            assert_eq!(durable_snapshot_index(&disk), None, "seed {seed}");
            assert_eq!(&indexes(&disk)[..3], &[1, 2, 3], "seed {seed}");
        }
    }

    #[test]
    fn writes_are_durable_only_after_their_fsync() {
        let mut disk = Disk::default();
        disk.write(Write::Append { entries: vec![entry(1, 1), entry(2, 1)] });
        assert_eq!(disk.sync(PersistId(1)), Some(PersistId(1)));
        disk.write(Write::Append { entries: vec![entry(3, 1)] });
        assert_eq!(disk.sync(PersistId(2)), None, "one fsync in flight");
        assert_eq!(disk.durable().last_index(), LogIndex(0));
        assert_eq!(disk.fsync_done(PersistId(1)), Ok(Some(PersistId(2))));
        assert_eq!(disk.durable().last_index(), LogIndex(2));
        let mut rng = SimRng::from_seed(3);
        let damage = disk.crash(&mut rng, false).unwrap();
        assert_eq!(damage.writes_lost, 1);
        assert_eq!(disk.durable().last_index(), LogIndex(2));
    }

    #[test]
    fn torn_writes_keep_a_prefix_and_never_a_gap() {
        for seed in 0..50 {
            let mut disk = Disk::default();
            disk.write(Write::Append { entries: vec![entry(1, 1)] });
            disk.sync(PersistId(1));
            disk.fsync_done(PersistId(1)).unwrap();
            disk.write(Write::HardState(HardState { term: Term(2), voted_for: None, commit: LogIndex(1) }));
            disk.write(Write::Append { entries: vec![entry(2, 2), entry(3, 2), entry(4, 2)] });
            disk.sync(PersistId(2));
            let damage = disk.crash(&mut SimRng::from_seed(seed), true).unwrap();
            let entries = &disk.durable().entries;
            assert!(entries.len() <= 3, "a torn record never survives whole");
            for (offset, entry) in entries.iter().enumerate() {
                assert_eq!(entry.index, LogIndex(offset as u64 + 1));
            }
            assert_eq!(damage.writes_kept + damage.writes_lost, 2);
        }
    }

    #[test]
    fn an_empty_log_continues_the_snapshot_after_recovery() {
        // A crash kept the second snapshot but not the log reset that followed it.
        let mut image = DurableImage::default();
        image.apply(Write::Reset { base_index: LogIndex(10) }).unwrap();
        let mut disk = Disk { durable: image, ..Disk::default() };
        installed(&mut disk, snapshot(20, 3));
        disk.sync(PersistId(1));
        disk.fsync_done(PersistId(1)).unwrap();
        assert!(disk.recover().entries.is_empty());
        disk.write(Write::Append { entries: vec![entry(21, 3)] });
        disk.sync(PersistId(1));
        assert_eq!(disk.fsync_done(PersistId(1)), Ok(None), "the append continues the snapshot");
    }

    #[test]
    fn recovery_hands_back_the_records_as_they_are_on_disk() {
        // A crash kept the snapshot at 5 but not the log reset that went with it.
        let mut disk = Disk::default();
        disk.write(Write::Append { entries: vec![entry(1, 1), entry(2, 1)] });
        disk.sync(PersistId(1));
        disk.fsync_done(PersistId(1)).unwrap();
        installed(&mut disk, snapshot(5, 2));
        disk.sync(PersistId(2));
        disk.fsync_done(PersistId(2)).unwrap();
        let recovered = disk.recover();
        assert_eq!(recovered.entries, vec![entry(1, 1), entry(2, 1)], "raw records; the core reconciles them");
        // The core's repair (a log reset) makes later appends follow the snapshot.
        disk.write(Write::Reset { base_index: LogIndex(5) });
        disk.write(Write::Append { entries: vec![entry(6, 2)] });
        disk.sync(PersistId(1));
        assert_eq!(disk.fsync_done(PersistId(1)), Ok(None));
        assert_eq!(disk.durable().entries, vec![entry(6, 2)]);
    }
}
