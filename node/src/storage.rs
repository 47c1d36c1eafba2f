//! Durable state of one node in its data directory:
//!
//! ```text
//! <RAFT_DATA_DIR>/<node id>/
//!   LOCK                      held (flock) while a node runs: one process per directory
//!   snapshot.bin              latest snapshot (atomic: temp file, fsync, rename, dir fsync)
//!   wal/wal-<seq>.log         write-ahead log segments: entries, hard states, truncations
//! ```
//!
//! [`recover`] rebuilds the core's [`RestoredState`]; [`spawn_writer`] starts the
//! thread that executes the core's write actions with group commit: it drains
//! every queued batch, writes them, calls `fdatasync` once and reports the last
//! sync id.

use crate::metrics::Metrics;
use crate::wal::{sync_dir, Record, Wal, WalError};
use raft_sm::{Entry, HardState, LogIndex, NodeId, PersistId, RestoredState, Snapshot, Term};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

const SNAPSHOT_FILE: &str = "snapshot.bin";
const SNAPSHOT_MAGIC: &[u8; 8] = b"RKVSNAPF";

/// A write the core asked for.
#[derive(Debug)]
pub enum WriteOp {
    /// `Action::PersistHardState`.
    HardState(HardState),
    /// `Action::TruncateLog`.
    Truncate(LogIndex),
    /// `Action::AppendLog`.
    Append(Vec<Entry>),
    /// `Action::SaveSnapshot`.
    SaveSnapshot(Snapshot),
    /// `Action::CompactLog`.
    Compact(LogIndex),
    /// `Action::ResetLog`.
    Reset(LogIndex),
}

/// The writes of one driver loop turn, and the sync that covers them (if any).
#[derive(Debug, Default)]
pub struct WriteBatch {
    /// The writes, in order.
    pub ops: Vec<WriteOp>,
    /// The last `Sync` id among them.
    pub sync: Option<PersistId>,
}

/// Why recovery failed.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The log failed.
    #[error(transparent)]
    Wal(#[from] WalError),
    /// The snapshot file failed.
    #[error("snapshot {path}: {problem}")]
    Snapshot {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        problem: String,
    },
    /// Snapshot and log do not fit together.
    #[error("data directory {dir}: {problem}")]
    Inconsistent {
        /// The directory.
        dir: PathBuf,
        /// What does not fit.
        problem: String,
    },
}

/// Writes `snapshot` atomically: temp file, fsync, rename, directory fsync.
/// The body is the header (index, term, voters) followed by the data; the data
/// is checksummed and written where it is, never copied.
pub fn save_snapshot(dir: &Path, snapshot: &Snapshot) -> std::io::Result<()> {
    let mut header = Vec::with_capacity(24 + 8 * snapshot.voters.len());
    header.extend_from_slice(&snapshot.last_index.0.to_le_bytes());
    header.extend_from_slice(&snapshot.last_term.0.to_le_bytes());
    header.extend_from_slice(&(snapshot.voters.len() as u64).to_le_bytes());
    for voter in &snapshot.voters {
        header.extend_from_slice(&voter.0.to_le_bytes());
    }
    let mut crc = crc32fast::Hasher::new();
    crc.update(&header);
    crc.update(&snapshot.data);
    let mut prefix = Vec::with_capacity(20 + header.len());
    prefix.extend_from_slice(SNAPSHOT_MAGIC);
    prefix.extend_from_slice(&crc.finalize().to_le_bytes());
    prefix.extend_from_slice(&((header.len() + snapshot.data.len()) as u64).to_le_bytes());
    prefix.extend_from_slice(&header);
    let tmp = dir.join(format!("{SNAPSHOT_FILE}.tmp"));
    {
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(&prefix)?;
        file.write_all(&snapshot.data)?;
        file.sync_all()?;
    }
    std::fs::rename(&tmp, dir.join(SNAPSHOT_FILE))?;
    sync_dir(dir)
}

/// Reads the snapshot file, if there is one.
pub fn load_snapshot(dir: &Path) -> Result<Option<Snapshot>, StorageError> {
    let path = dir.join(SNAPSHOT_FILE);
    let bytes = match std::fs::read(&path) {
        Ok(bytes) => bytes,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(StorageError::Snapshot { path, problem: error.to_string() }),
    };
    let fail = |problem: &str| StorageError::Snapshot { path: path.clone(), problem: problem.to_owned() };
    if bytes.len() < 20 || &bytes[..8] != SNAPSHOT_MAGIC {
        return Err(fail("not a raftkv snapshot file"));
    }
    let crc = u32::from_le_bytes(bytes[8..12].try_into().expect("4 bytes"));
    let len = u64::from_le_bytes(bytes[12..20].try_into().expect("8 bytes")) as usize;
    let body = &bytes[20..];
    if body.len() != len || crc32fast::hash(body) != crc {
        return Err(fail("checksum or length mismatch (the file is damaged)"));
    }
    let u64_at = |at: usize| -> Result<u64, StorageError> {
        body.get(at..at + 8)
            .map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes")))
            .ok_or_else(|| fail("truncated header"))
    };
    let last_index = LogIndex(u64_at(0)?);
    let last_term = Term(u64_at(8)?);
    let voter_count = u64_at(16)? as usize;
    let mut voters = Vec::new();
    for i in 0..voter_count.min(body.len() / 8) {
        voters.push(NodeId(u64_at(24 + 8 * i)?));
    }
    if voters.len() != voter_count {
        return Err(fail("truncated voter list"));
    }
    // The data is the rest of the file: keep its buffer instead of copying it.
    let mut data = bytes;
    data.drain(..20 + 24 + 8 * voter_count);
    Ok(Some(Snapshot { last_index, last_term, voters, data }))
}

/// Takes the directory's exclusive lock: two processes on one data directory
/// would corrupt it.
fn lock_dir(dir: &Path) -> Result<std::fs::File, StorageError> {
    let fail = |problem: String| StorageError::Inconsistent { dir: dir.to_owned(), problem };
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join("LOCK"))
        .map_err(|error| fail(format!("cannot open the LOCK file: {error}")))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(fail(
            "another raftkv process is using it (LOCK is held); stop it or pick another RAFT_DATA_DIR/NODE_ID".into(),
        )),
        Err(std::fs::TryLockError::Error(error)) => Err(fail(format!("cannot lock the LOCK file: {error}"))),
    }
}

/// Rebuilds the core's state from the data directory. Returns the open WAL and
/// the directory lock (hold it as long as the node runs).
pub fn recover(dir: &Path, segment_bytes_max: u64) -> Result<(Wal, RestoredState, std::fs::File), StorageError> {
    std::fs::create_dir_all(dir).map_err(|error| StorageError::Inconsistent {
        dir: dir.to_owned(),
        problem: format!("cannot create it: {error}"),
    })?;
    let lock = lock_dir(dir)?;
    let snapshot = load_snapshot(dir)?;
    let (wal, replay) = Wal::open(&dir.join("wal"), segment_bytes_max)?;
    let mut entries = replay.entries;
    let base = replay.base_index.unwrap_or(LogIndex(0));
    let inconsistent = |problem: String| StorageError::Inconsistent { dir: dir.to_owned(), problem };
    match &snapshot {
        None => {
            if !entries.is_empty() && base != LogIndex(0) {
                return Err(inconsistent(format!("the log starts after index {} but there is no snapshot", base.0)));
            }
        }
        Some(snapshot) => {
            let s = snapshot.last_index;
            let term_at_s = if s == base {
                None
            } else if s > base {
                entries.get((s.0 - base.0 - 1) as usize).map(|entry| entry.term)
            } else {
                return Err(inconsistent(format!(
                    "the log starts after index {} but the snapshot ends at {}",
                    base.0, s.0
                )));
            };
            if s == base || term_at_s == Some(snapshot.last_term) {
                // Keep the entries after the snapshot (Figure 13, rule 6).
                let skip = (s.0 - base.0) as usize;
                entries.drain(..skip.min(entries.len()));
            } else {
                // A snapshot newer than (or conflicting with) the log replaces it (rule 7).
                entries.clear();
            }
        }
    }
    let restored = RestoredState { hard_state: replay.hard_state, snapshot, entries };
    Ok((wal, restored, lock))
}

/// Where the writer thread reports completed syncs.
pub type PersistedSender = tokio::sync::mpsc::UnboundedSender<PersistId>;

/// Starts the writer thread. Batches sent to the returned channel are executed in
/// order; after each fsync the last sync id is sent to `persisted`. An IO error is
/// fatal (a failed fsync leaves the page cache in an unknown state): the process
/// logs it and exits with code 1.
pub fn spawn_writer(
    dir: PathBuf,
    mut wal: Wal,
    lock: std::fs::File,
    persisted: PersistedSender,
    metrics: Arc<Metrics>,
) -> std::sync::mpsc::Sender<WriteBatch> {
    let (tx, rx) = std::sync::mpsc::channel::<WriteBatch>();
    std::thread::Builder::new()
        .name("raftkv-wal".into())
        .spawn(move || {
            let _lock = lock;
            while let Ok(first) = rx.recv() {
                let mut batches = vec![first];
                while let Ok(more) = rx.try_recv() {
                    batches.push(more);
                }
                if let Err(error) = write_batches(&dir, &mut wal, batches, &persisted, &metrics) {
                    tracing::error!(%error, "storage failure; stopping the node");
                    std::process::exit(1);
                }
            }
            // The driver is gone: make whatever is buffered durable.
            if wal.has_buffered() {
                let _ = wal.sync();
            }
        })
        .expect("spawn the WAL thread");
    tx
}

fn write_batches(
    dir: &Path,
    wal: &mut Wal,
    batches: Vec<WriteBatch>,
    persisted: &PersistedSender,
    metrics: &Metrics,
) -> Result<(), StorageError> {
    let mut last_sync = None;
    let mut compact_to = None;
    for batch in batches {
        for op in batch.ops {
            match op {
                WriteOp::HardState(hard_state) => wal.append(&Record::HardState(hard_state)),
                WriteOp::Truncate(from) => wal.append(&Record::Truncate { from }),
                WriteOp::Append(entries) => {
                    for entry in entries {
                        wal.append(&Record::Entry(entry));
                    }
                }
                WriteOp::Reset(base_index) => wal.append(&Record::Reset { base_index }),
                WriteOp::SaveSnapshot(snapshot) => {
                    // Everything before the snapshot is made durable first, so the
                    // files never show the snapshot without the records before it.
                    timed_sync(wal, metrics)?;
                    save_snapshot(dir, &snapshot).map_err(|error| StorageError::Snapshot {
                        path: dir.join(SNAPSHOT_FILE),
                        problem: error.to_string(),
                    })?;
                    metrics.snapshots_saved.inc();
                }
                WriteOp::Compact(up_to) => compact_to = Some(up_to),
            }
        }
        if batch.sync.is_some() {
            last_sync = batch.sync;
        }
    }
    if let Some(id) = last_sync {
        timed_sync(wal, metrics)?;
        let _ = persisted.send(id);
    }
    if let Some(up_to) = compact_to {
        wal.compact(up_to)?;
    }
    Ok(())
}

fn timed_sync(wal: &mut Wal, metrics: &Metrics) -> Result<(), WalError> {
    let started = Instant::now();
    wal.sync()?;
    metrics.fsync_seconds.observe(started.elapsed());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use raft_sm::Payload;

    fn entry(index: u64, term: u64) -> Entry {
        Entry { term: Term(term), index: LogIndex(index), payload: Payload::Noop }
    }

    fn snapshot(last_index: u64, last_term: u64) -> Snapshot {
        Snapshot {
            last_index: LogIndex(last_index),
            last_term: Term(last_term),
            voters: vec![NodeId(1), NodeId(2)],
            data: b"state".to_vec(),
        }
    }

    fn write(dir: &Path, records: &[Record]) {
        let (mut wal, _) = Wal::open(&dir.join("wal"), 1 << 20).unwrap();
        for record in records {
            wal.append(record);
        }
        wal.sync().unwrap();
    }

    #[test]
    fn snapshot_files_round_trip_and_damage_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(load_snapshot(dir.path()).unwrap(), None);
        save_snapshot(dir.path(), &snapshot(9, 2)).unwrap();
        assert_eq!(load_snapshot(dir.path()).unwrap(), Some(snapshot(9, 2)));
        let path = dir.path().join(SNAPSHOT_FILE);
        let mut bytes = std::fs::read(&path).unwrap();
        *bytes.last_mut().unwrap() ^= 1;
        std::fs::write(&path, bytes).unwrap();
        assert!(load_snapshot(dir.path()).is_err());
    }

    #[test]
    fn recovery_keeps_entries_after_a_matching_snapshot() {
        let dir = tempfile::tempdir().unwrap();
        let records: Vec<Record> = (1..=10).map(|i| Record::Entry(entry(i, 1))).collect();
        write(dir.path(), &records);
        save_snapshot(dir.path(), &snapshot(6, 1)).unwrap();
        let (_, restored, lock) = recover(dir.path(), 1 << 20).unwrap();
        let indexes: Vec<u64> = restored.entries.iter().map(|e| e.index.0).collect();
        assert_eq!(indexes, [7, 8, 9, 10]);
        let second = recover(dir.path(), 1 << 20).err().expect("locked");
        assert!(second.to_string().contains("another raftkv process"), "{second}");
        drop(lock);
        assert_eq!(restored.snapshot.unwrap().last_index, LogIndex(6));
    }

    #[test]
    fn recovery_drops_a_log_that_conflicts_with_the_snapshot() {
        let dir = tempfile::tempdir().unwrap();
        let records: Vec<Record> = (1..=10).map(|i| Record::Entry(entry(i, 1))).collect();
        write(dir.path(), &records);
        // Crash after the snapshot was installed but before the log reset was written.
        save_snapshot(dir.path(), &snapshot(8, 5)).unwrap();
        let (_, restored, _) = recover(dir.path(), 1 << 20).unwrap();
        assert!(restored.entries.is_empty());
        write(dir.path(), &[Record::Reset { base_index: LogIndex(8) }, Record::Entry(entry(9, 5))]);
        let (_, restored, _) = recover(dir.path(), 1 << 20).unwrap();
        let indexes: Vec<u64> = restored.entries.iter().map(|e| e.index.0).collect();
        assert_eq!(indexes, [9]);
    }
}
