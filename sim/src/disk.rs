//! A node's simulated disk: the durable image (hard state, snapshot, log) and
//! the writes not yet fsynced.
//!
//! Writes are queued in order. An fsync makes everything up to a barrier durable
//! after a simulated latency; only then is the node told (`Persisted`). A crash
//! loses what was not fsynced: either all of it, or (with torn writes on) an
//! ordered prefix of it whose last log record may be torn, which recovery
//! detects and truncates, exactly as a checksummed write-ahead log would.

use crate::rng::SimRng;
use raft_sm::{Entry, HardState, LogIndex, PersistId, RestoredState, Snapshot, Term};
use std::collections::VecDeque;

/// One write the core asked for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WriteOp {
    /// `PersistHardState`.
    HardState(HardState),
    /// `TruncateLog { from }`.
    Truncate(LogIndex),
    /// `AppendLog { entries }`.
    Append(Vec<Entry>),
    /// `SaveSnapshot`.
    SaveSnapshot(Snapshot),
    /// `CompactLog { up_to }`.
    Compact(LogIndex),
    /// `ResetLog { base_index }`.
    Reset(LogIndex),
}

/// What is on the platter.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DurableImage {
    /// The last hard state written.
    pub hard_state: HardState,
    /// The last snapshot saved.
    pub snapshot: Option<Snapshot>,
    /// Entries before and at this index were compacted or reset away.
    pub log_base: LogIndex,
    /// The log records after `log_base`, contiguous.
    pub entries: Vec<Entry>,
}

impl DurableImage {
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

    /// Applies one write. Returns an error naming a broken write contract.
    pub fn apply(&mut self, op: WriteOp) -> Result<(), String> {
        match op {
            WriteOp::HardState(hard_state) => self.hard_state = hard_state,
            WriteOp::Truncate(from) => {
                let keep = from.0.saturating_sub(self.log_base.0 + 1) as usize;
                self.entries.truncate(keep);
            }
            WriteOp::Append(entries) => {
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
            WriteOp::SaveSnapshot(snapshot) => self.snapshot = Some(snapshot),
            WriteOp::Compact(up_to) => {
                if up_to > self.log_base {
                    let drop = ((up_to.0 - self.log_base.0) as usize).min(self.entries.len());
                    self.entries.drain(..drop);
                    self.log_base = up_to;
                }
            }
            WriteOp::Reset(base_index) => {
                self.entries.clear();
                self.log_base = base_index;
            }
        }
        Ok(())
    }

    /// What a restarting node reads back, as the real node's recovery builds it:
    /// the latest snapshot, then the log records after it. Records the snapshot
    /// covers are skipped; a log that disagrees with the snapshot at its last
    /// index (or has a gap after it) is discarded (Raft Figure 13, rule 7).
    pub fn restored(&self) -> RestoredState {
        let (base_index, base_term) =
            self.snapshot.as_ref().map_or((LogIndex(0), Term(0)), |s| (s.last_index, s.last_term));
        let consistent = if base_index.0 == 0 || base_index == self.log_base {
            true
        } else if base_index < self.log_base {
            false // A gap between the snapshot and the log.
        } else {
            self.term_at(base_index) == Some(base_term)
        };
        let entries = if consistent {
            self.entries.iter().filter(|entry| entry.index > base_index).cloned().collect()
        } else {
            Vec::new()
        };
        RestoredState { hard_state: self.hard_state, snapshot: self.snapshot.clone(), entries }
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
        if self.durable.entries.is_empty() {
            if let Some(snapshot) = &self.durable.snapshot {
                self.durable.log_base = snapshot.last_index;
            }
        }
        RestoredState {
            hard_state: self.durable.hard_state,
            snapshot: self.durable.snapshot.clone(),
            entries: self.durable.entries.clone(),
        }
    }
}

#[derive(Clone, Debug)]
enum Pending {
    Write(WriteOp),
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
}

impl Disk {
    /// The durable image.
    pub fn durable(&self) -> &DurableImage {
        &self.durable
    }

    /// Queues a write.
    pub fn write(&mut self, op: WriteOp) {
        self.unsynced.push_back(Pending::Write(op));
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

    /// The fsync for barrier `id` completed: everything up to it is durable.
    /// Returns the next barrier to fsync, if more were issued meanwhile.
    pub fn fsync_done(&mut self, id: PersistId) -> Result<Option<PersistId>, String> {
        assert_eq!(self.fsync_inflight, Some(id), "fsyncs complete in order");
        loop {
            match self.unsynced.pop_front() {
                Some(Pending::Write(op)) => self.durable.apply(op)?,
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

    /// Number of writes not yet durable.
    pub fn unsynced_writes(&self) -> usize {
        self.unsynced.iter().filter(|pending| matches!(pending, Pending::Write(_))).count()
    }

    /// The process died. Unsynced writes are lost, except (with `torn_writes`) a
    /// random ordered prefix that reached the platter, whose last log record may
    /// be torn. Returns what happened.
    pub fn crash(&mut self, rng: &mut SimRng, torn_writes: bool) -> Result<CrashDamage, String> {
        let writes: Vec<WriteOp> = std::mem::take(&mut self.unsynced)
            .into_iter()
            .filter_map(|pending| match pending {
                Pending::Write(op) => Some(op),
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
        for (position, op) in writes.into_iter().take(kept).enumerate() {
            let last = position + 1 == kept;
            match op {
                WriteOp::Append(mut entries) if last && !entries.is_empty() => {
                    // The record being written when power failed is torn: its
                    // checksum fails and recovery truncates it and all after it.
                    let survive = rng.range(0, entries.len() as u64 - 1) as usize;
                    entries.truncate(survive);
                    damage.torn = true;
                    self.durable.apply(WriteOp::Append(entries))?;
                }
                op => self.durable.apply(op)?,
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

    #[test]
    fn writes_are_durable_only_after_their_fsync() {
        let mut disk = Disk::default();
        disk.write(WriteOp::Append(vec![entry(1, 1), entry(2, 1)]));
        assert_eq!(disk.sync(PersistId(1)), Some(PersistId(1)));
        disk.write(WriteOp::Append(vec![entry(3, 1)]));
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
            disk.write(WriteOp::Append(vec![entry(1, 1)]));
            disk.sync(PersistId(1));
            disk.fsync_done(PersistId(1)).unwrap();
            disk.write(WriteOp::HardState(HardState { term: Term(2), voted_for: None, commit: LogIndex(1) }));
            disk.write(WriteOp::Append(vec![entry(2, 2), entry(3, 2), entry(4, 2)]));
            disk.sync(PersistId(2));
            let damage = disk.crash(&mut SimRng::from_seed(seed), true).unwrap();
            let restored = disk.durable().restored();
            assert!(restored.entries.len() <= 3, "a torn record never survives whole");
            for (offset, entry) in restored.entries.iter().enumerate() {
                assert_eq!(entry.index, LogIndex(offset as u64 + 1));
            }
            assert_eq!(damage.writes_kept + damage.writes_lost, 2);
        }
    }

    #[test]
    fn recovery_drops_records_covered_by_or_conflicting_with_the_snapshot() {
        let mut image = DurableImage::default();
        image.apply(WriteOp::Append(vec![entry(1, 1), entry(2, 1), entry(3, 2)])).unwrap();
        image
            .apply(WriteOp::SaveSnapshot(Snapshot {
                last_index: LogIndex(2),
                last_term: Term(1),
                voters: vec![],
                data: vec![],
            }))
            .unwrap();
        // The compaction did not reach the disk: recovery skips covered records.
        assert_eq!(image.restored().entries, vec![entry(3, 2)]);
        image
            .apply(WriteOp::SaveSnapshot(Snapshot {
                last_index: LogIndex(3),
                last_term: Term(3),
                voters: vec![],
                data: vec![],
            }))
            .unwrap();
        // The log disagrees with the snapshot at index 3: it is discarded.
        assert!(image.restored().entries.is_empty());
        image.apply(WriteOp::Reset(LogIndex(3))).unwrap();
        image.apply(WriteOp::Append(vec![entry(4, 3)])).unwrap();
        assert_eq!(image.restored().entries, vec![entry(4, 3)]);
    }

    #[test]
    fn an_empty_log_continues_the_snapshot_after_recovery() {
        // A crash kept the second snapshot but not the log reset that followed it.
        let mut image = DurableImage::default();
        image.apply(WriteOp::Reset(LogIndex(10))).unwrap();
        let mut disk = Disk { durable: image, ..Disk::default() };
        disk.write(WriteOp::SaveSnapshot(Snapshot {
            last_index: LogIndex(20),
            last_term: Term(3),
            voters: vec![],
            data: vec![],
        }));
        disk.sync(PersistId(1));
        disk.fsync_done(PersistId(1)).unwrap();
        assert!(disk.recover().entries.is_empty());
        disk.write(WriteOp::Append(vec![entry(21, 3)]));
        disk.sync(PersistId(1));
        assert_eq!(disk.fsync_done(PersistId(1)), Ok(None), "the append continues the snapshot");
    }

    #[test]
    fn recovery_hands_back_the_records_as_they_are_on_disk() {
        // A crash kept the snapshot at 5 but not the log reset that went with it.
        let mut disk = Disk::default();
        disk.write(WriteOp::Append(vec![entry(1, 1), entry(2, 1)]));
        disk.sync(PersistId(1));
        disk.fsync_done(PersistId(1)).unwrap();
        disk.write(WriteOp::SaveSnapshot(Snapshot {
            last_index: LogIndex(5),
            last_term: Term(2),
            voters: vec![],
            data: vec![],
        }));
        disk.sync(PersistId(2));
        disk.fsync_done(PersistId(2)).unwrap();
        let recovered = disk.recover();
        assert_eq!(recovered.entries, vec![entry(1, 1), entry(2, 1)], "raw records; the core reconciles them");
        assert!(disk.durable().restored().entries.is_empty(), "what reconciliation must keep: nothing");
        // The core's repair (a log reset) makes later appends follow the snapshot.
        disk.write(WriteOp::Reset(LogIndex(5)));
        disk.write(WriteOp::Append(vec![entry(6, 2)]));
        disk.sync(PersistId(1));
        assert_eq!(disk.fsync_done(PersistId(1)), Ok(None));
        assert_eq!(disk.durable().restored().entries, vec![entry(6, 2)]);
    }
}
