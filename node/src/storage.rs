//! Durable state of one node in its data directory:
//!
//! ```text
//! <RAFT_DATA_DIR>/<node id>/
//!   LOCK                      held (flock) while a node runs: one process per directory
//!   snapshot.bin              latest snapshot (atomic: fsync, rename, dir fsync; see snapshot_file.rs)
//!   snapshot-<i>.staged       an image the node took, until it is made the snapshot
//!   snapshot.incoming         the image a leader is sending
//!   wal/wal-<seq>.log         write-ahead log segments: entries, hard states, truncations
//! ```
//!
//! [`recover`] rebuilds the core's [`RestoredState`]; [`spawn_writer`] starts the
//! thread that executes the core's write actions with group commit: it drains
//! every queued batch, writes them, calls `fdatasync` once and reports the last
//! sync id.
//!
//! It executes raft-sm's one write type ([`Write`]) by the rules written there.
//! Snapshots the node took itself are written on a thread of their own, so no
//! write has to wait for a multi-MiB write and fsync; when one is durable the
//! driver is told ([`StorageEvent::SnapshotPersisted`]) and only then does the
//! core ask for the compaction it allows. A snapshot installed from the leader
//! replaces log entries (a log reset may follow it) and is acknowledged after
//! the next sync, so it is written in order, on the WAL thread.
//!
//! Recovery hands the core the records exactly as they are on disk; the core
//! reconciles them with the snapshot (raft-sm `recovery.rs`).

use crate::metrics::Metrics;
use crate::snapshot_file::{self, ImageFile, SnapshotOnDisk, SNAPSHOT_FILE};
use crate::wal::{sync_dir, Record, Wal, WalError};
use raft_sm::{LogIndex, PersistId, RestoredState, SnapshotMeta, SnapshotOrigin, Term, Write};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// What the WAL thread tells the driver.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StorageEvent {
    /// Every write up to this sync is durable.
    Persisted(PersistId),
    /// The snapshot the node took at this index is durable (step `SnapshotPersisted`).
    SnapshotPersisted(LogIndex),
    /// The disk is full (`true`): writes wait and are retried with back-off, so
    /// nothing is acknowledged meanwhile; `false` once they succeed again.
    DiskFull(bool),
}

/// The writes of one driver loop turn, and the sync that covers them (if any).
#[derive(Debug, Default)]
pub struct WriteBatch {
    /// The writes, in order.
    pub ops: Vec<Write>,
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

/// Back-off between retries of a write that failed (a full disk): 50 ms,
/// doubling up to 2 s.
#[derive(Debug)]
struct Backoff(Duration);

impl Backoff {
    const FIRST: Duration = Duration::from_millis(50);
    const MAX: Duration = Duration::from_secs(2);

    fn new() -> Backoff {
        Backoff(Backoff::FIRST)
    }

    /// The pause before the next retry (and doubles the one after).
    fn next(&mut self) -> Duration {
        let pause = self.0;
        self.0 = (self.0 * 2).min(Backoff::MAX);
        pause
    }
}

/// Reads the durable snapshot's metadata and checks its checksum, if there is one.
pub fn load_snapshot(dir: &Path) -> Result<Option<SnapshotOnDisk>, StorageError> {
    let path = dir.join(SNAPSHOT_FILE);
    let fail = |problem: String| StorageError::Snapshot { path: path.clone(), problem };
    let Some(on_disk) = snapshot_file::load_meta(dir).map_err(fail)? else {
        return Ok(None);
    };
    on_disk.verify(dir).map_err(fail)?;
    Ok(Some(on_disk))
}

/// The file holding the index a repaired node must reach before it votes.
const VOTE_HOLD_FILE: &str = "vote-after-index";

/// The "no vote until index N" marker `raftkv repair` leaves, if any. It stays:
/// once the log passed N it holds nothing back.
pub fn vote_hold(dir: &Path) -> Result<Option<LogIndex>, StorageError> {
    let path = dir.join(VOTE_HOLD_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => text.trim().parse::<u64>().map(|n| Some(LogIndex(n))).map_err(|_| StorageError::Inconsistent {
            dir: dir.to_owned(),
            problem: format!("{} does not hold an index: {text:?}", path.display()),
        }),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(error) => {
            Err(StorageError::Inconsistent { dir: dir.to_owned(), problem: format!("{}: {error}", path.display()) })
        }
    }
}

/// `raftkv repair` on a node's data directory: discards the damaged suffix of
/// its log and durably records that it must not vote until its log reaches
/// what it may have acknowledged. `None` if nothing was damaged.
/// A node with no peers (`hold_votes` false) has nobody to catch it up: it
/// gets no marker, and what was discarded is lost.
pub fn repair(dir: &Path, hold_votes: bool) -> Result<Option<crate::wal::Repaired>, StorageError> {
    let _lock = lock_dir(dir)?;
    let Some(repaired) = Wal::repair(&dir.join("wal"))? else {
        return Ok(None);
    };
    if !hold_votes {
        return Ok(Some(repaired));
    }
    let hold = vote_hold(dir)?.map_or(repaired.reached, |old| old.max(repaired.reached));
    let fail = |error: std::io::Error| StorageError::Inconsistent {
        dir: dir.to_owned(),
        problem: format!("cannot write {VOTE_HOLD_FILE}: {error}"),
    };
    let tmp = dir.join(format!("{VOTE_HOLD_FILE}.tmp"));
    std::fs::File::create(&tmp)
        .and_then(|mut file| file.write_all(hold.0.to_string().as_bytes()).and_then(|()| file.sync_all()))
        .and_then(|()| std::fs::rename(&tmp, dir.join(VOTE_HOLD_FILE)))
        .and_then(|()| sync_dir(dir))
        .map_err(fail)?;
    Ok(Some(crate::wal::Repaired { reached: hold, ..repaired }))
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
    snapshot_file::remove_leftovers(dir);
    let snapshot = load_snapshot(dir)?.map(|on_disk| on_disk.meta);
    let (wal, replay) = Wal::open(&dir.join("wal"), segment_bytes_max)?;
    // The records as they are; the core reconciles them with the snapshot.
    let entries = replay.entries;
    let restored = RestoredState { hard_state: replay.hard_state, snapshot, entries };
    Ok((wal, restored, lock))
}

/// A reader of the durable snapshot's image, which must be the one at `index`
/// (the host restores its state machine from it).
pub fn snapshot_image(dir: &Path, index: LogIndex) -> Result<impl std::io::Read, StorageError> {
    let path = dir.join(SNAPSHOT_FILE);
    let fail = |problem: String| StorageError::Snapshot { path: path.clone(), problem };
    let on_disk = snapshot_file::load_meta(dir).map_err(fail)?.ok_or_else(|| fail("it is missing".into()))?;
    if on_disk.meta.last_index != index {
        return Err(fail(format!("it holds index {}, not {}", on_disk.meta.last_index.0, index.0)));
    }
    on_disk.open_image(dir).map_err(|error| fail(error.to_string()))
}

/// Where the writer thread reports completed syncs and durable snapshots.
pub type PersistedSender = tokio::sync::mpsc::UnboundedSender<StorageEvent>;

/// How a snapshot file is written (a parameter so that tests can hold it back).
type SaveFn = Box<dyn Fn(&Path, &SnapshotMeta) -> std::io::Result<()> + Send>;

/// How long the idle WAL thread waits for a batch while a background snapshot
/// is being written, before it looks whether the snapshot's compaction may run.
const SNAPSHOT_POLL: Duration = Duration::from_millis(20);

/// Starts the writer thread. Batches sent to the returned channel are executed in
/// order; after each fsync the last sync id is sent to `persisted`.
///
/// A full disk (ENOSPC, EDQUOT) on a WAL write, fsync, segment preallocation or
/// snapshot write is not fatal: the thread reports [`StorageEvent::DiskFull`],
/// acknowledges nothing (as a stalled disk would) and retries with back-off,
/// rewriting the whole unacknowledged batch, until it succeeds; then it reports
/// the disk usable again and carries on. A failed snapshot write is retried
/// likewise. Any other IO error on the log is fatal (fail-stop): the process
/// logs it and exits with code 1, so that a supervisor restarts it.
pub fn spawn_writer(
    dir: PathBuf,
    wal: Wal,
    lock: std::fs::File,
    persisted: PersistedSender,
    metrics: Arc<Metrics>,
) -> Sender<WriteBatch> {
    let (tx, rx) = std::sync::mpsc::channel::<WriteBatch>();
    std::thread::Builder::new()
        .name("raftkv-wal".into())
        .spawn(move || {
            let _lock = lock;
            let mut writer = WalWriter::new(dir, wal, persisted, metrics, Box::new(snapshot_file::commit_staged));
            while let Some(batches) = next_batches(&rx, writer.snapshots.in_flight > 0) {
                if let Err(error) = writer.write_batches(batches) {
                    tracing::error!(%error, "storage failure; stopping the node");
                    std::process::exit(1);
                }
            }
            // The driver is gone: make whatever is buffered durable.
            let _ = writer.finish();
        })
        .expect("spawn the WAL thread");
    tx
}

/// Waits for a batch and drains the ones queued behind it; `None` once the
/// driver is gone. While `snapshot_in_flight`, waits at most [`SNAPSHOT_POLL`]
/// and may return no batch, so that an idle node still compacts its log.
fn next_batches(rx: &Receiver<WriteBatch>, snapshot_in_flight: bool) -> Option<Vec<WriteBatch>> {
    let first = if snapshot_in_flight {
        match rx.recv_timeout(SNAPSHOT_POLL) {
            Ok(batch) => batch,
            Err(RecvTimeoutError::Timeout) => return Some(Vec::new()),
            Err(RecvTimeoutError::Disconnected) => return None,
        }
    } else {
        rx.recv().ok()?
    };
    let mut batches = vec![first];
    while let Ok(more) = rx.try_recv() {
        batches.push(more);
    }
    Some(batches)
}

/// The WAL thread's state: the log, the snapshot thread, and the compactions
/// that wait for its snapshots.
struct WalWriter {
    dir: PathBuf,
    wal: Wal,
    snapshots: SnapshotWriter,
    persisted: PersistedSender,
    metrics: Arc<Metrics>,
    /// Whether the driver was last told that the disk is full.
    reported_full: bool,
    /// The image a leader is sending: its (index, term) and file.
    incoming: Option<(LogIndex, Term, ImageFile)>,
}

impl WalWriter {
    fn new(dir: PathBuf, wal: Wal, persisted: PersistedSender, metrics: Arc<Metrics>, save: SaveFn) -> WalWriter {
        WalWriter {
            snapshots: SnapshotWriter::spawn(dir.clone(), save),
            dir,
            wal,
            persisted,
            metrics,
            reported_full: false,
            incoming: None,
        }
    }

    fn report_full(&mut self, full: bool) {
        if full != self.reported_full {
            self.reported_full = full;
            if full {
                tracing::error!(
                    free_bytes = crate::wal::free_bytes(&self.dir),
                    "DISK FULL: not acknowledging writes; retrying until there is space"
                );
            } else {
                tracing::info!("disk usable again: writes resumed");
            }
            let _ = self.persisted.send(StorageEvent::DiskFull(full));
        }
    }

    /// Makes the buffered records durable, waiting out a full disk (the log's
    /// or the snapshot thread's) with back-off; other errors are returned.
    fn sync(&mut self) -> Result<(), StorageError> {
        let mut backoff = Backoff::new();
        loop {
            match timed_sync(&mut self.wal, &self.metrics) {
                Ok(()) if !self.snapshots.disk_full.load(Ordering::Relaxed) => break,
                Ok(()) => {} // Durable, but a snapshot cannot be written: hold the acknowledgement.
                Err(error) if error.is_disk_full() => {
                    if !self.reported_full {
                        tracing::warn!(%error, "WAL write failed");
                    }
                }
                Err(error) => return Err(error.into()),
            }
            self.report_full(true);
            std::thread::sleep(backoff.next());
        }
        self.report_full(false);
        Ok(())
    }

    fn write_batches(&mut self, batches: Vec<WriteBatch>) -> Result<(), StorageError> {
        let mut last_sync = None;
        let mut background = Vec::new();
        for batch in batches {
            for write in batch.ops {
                match write {
                    Write::HardState(hard_state) => self.wal.append(&Record::HardState(hard_state)),
                    Write::Truncate { from } => self.wal.append(&Record::Truncate { from }),
                    Write::Append { entries } => {
                        for entry in entries {
                            self.wal.append(&Record::Entry(entry));
                        }
                    }
                    Write::Reset { base_index } => self.wal.append(&Record::Reset { base_index }),
                    Write::SnapshotChunk { last_index, last_term, offset, data } => {
                        self.write_chunk(last_index, last_term, offset, &data)?;
                    }
                    Write::SaveSnapshot { meta, origin: SnapshotOrigin::Taken } => background.push(meta),
                    Write::SaveSnapshot { meta, origin: SnapshotOrigin::Installed } => {
                        self.save_now(&meta, &mut background)?;
                    }
                    // The core asks for it only once the snapshot covering it is durable.
                    Write::Compact { up_to } => {
                        self.wal.compact(up_to)?;
                    }
                }
            }
            if batch.sync.is_some() {
                last_sync = batch.sync;
            }
        }
        if last_sync.is_some() || (!background.is_empty() && self.wal.has_buffered()) {
            self.sync()?;
        }
        if let Some(id) = last_sync {
            let _ = self.persisted.send(StorageEvent::Persisted(id));
        }
        // Handed over after the sync, so a snapshot file never shows a state
        // whose records before it are not durable.
        for snapshot in background {
            self.snapshots.submit(snapshot);
        }
        let written = self.snapshots.poll().map_err(|error| self.snapshot_error(error))?;
        self.on_snapshots_durable(written);
        Ok(())
    }

    /// Appends a chunk from the leader to the incoming image (offset 0 starts
    /// a new one). A full disk is waited out with back-off, never fatal.
    fn write_chunk(&mut self, index: LogIndex, term: Term, offset: u64, data: &[u8]) -> Result<(), StorageError> {
        if offset == 0 {
            if let Some((_, _, old)) = self.incoming.take() {
                old.discard();
            }
            let file = snapshot_file::create_incoming(&self.dir).map_err(|error| self.snapshot_error(error))?;
            self.incoming = Some((index, term, file));
        }
        let Some((incoming_index, incoming_term, file)) = self.incoming.as_mut() else {
            return Err(self.inconsistent(format!("a chunk of the snapshot at {} not starting at 0", index.0)));
        };
        if (*incoming_index, *incoming_term, file.len()) != (index, term, offset) {
            return Err(self.inconsistent(format!("a chunk of the snapshot at {} out of order", index.0)));
        }
        let mut backoff = Backoff::new();
        while let Err(error) = file.append_chunk(data) {
            if !crate::wal::is_disk_full(&error) {
                return Err(StorageError::Snapshot { path: self.dir.join(SNAPSHOT_FILE), problem: error.to_string() });
            }
            tracing::warn!(%error, index = index.0, "writing a chunk of the leader's snapshot failed; retrying");
            let _ = self.persisted.send(StorageEvent::DiskFull(true));
            std::thread::sleep(backoff.next());
        }
        Ok(())
    }

    fn inconsistent(&self, problem: String) -> StorageError {
        StorageError::Inconsistent { dir: self.dir.clone(), problem }
    }

    /// Writes a snapshot installed from the leader before anything after it.
    fn save_now(&mut self, meta: &SnapshotMeta, background: &mut Vec<SnapshotMeta>) -> Result<(), StorageError> {
        // Everything before the snapshot is made durable first, so the files
        // never show the snapshot without the records before it.
        self.sync()?;
        // An older background snapshot written after this one would replace it.
        for older in background.drain(..) {
            self.snapshots.submit(older);
        }
        let written = self.snapshots.wait_all().map_err(|error| self.snapshot_error(error))?;
        self.on_snapshots_durable(written);
        let Some((index, term, mut image)) = self.incoming.take() else {
            return Err(
                self.inconsistent(format!("the snapshot at {} was saved but never received", meta.last_index.0))
            );
        };
        if (index, term) != (meta.last_index, meta.last_term) {
            return Err(
                self.inconsistent(format!("saved the snapshot at {} but received {}", meta.last_index.0, index.0))
            );
        }
        // Retried, never fatal: nothing after it is acknowledged meanwhile.
        let mut backoff = Backoff::new();
        while let Err(error) = image.seal(&self.dir, meta) {
            tracing::warn!(%error, index = meta.last_index.0, "writing the leader's snapshot failed; retrying");
            self.report_full(crate::wal::is_disk_full(&error));
            std::thread::sleep(backoff.next());
        }
        self.report_full(false);
        self.metrics.snapshots_saved.inc();
        Ok(())
    }

    /// Counts the snapshot files written and tells the driver the newest
    /// durable one (the core then asks for the compaction it allows).
    fn on_snapshots_durable(&mut self, written: Written) {
        for _ in 0..written.files {
            self.metrics.snapshots_saved.inc();
        }
        if let Some(index) = written.newest {
            let _ = self.persisted.send(StorageEvent::SnapshotPersisted(index));
        }
    }

    /// Makes what is buffered durable and waits for the snapshot thread.
    fn finish(&mut self) -> Result<(), StorageError> {
        if self.wal.has_buffered() {
            self.wal.sync()?;
        }
        if self.snapshots.disk_full.load(Ordering::Relaxed) {
            return Ok(()); // Do not wait for a snapshot that cannot be written.
        }
        let written = self.snapshots.wait_all().map_err(|error| self.snapshot_error(error))?;
        self.on_snapshots_durable(written);
        Ok(())
    }

    fn snapshot_error(&self, error: std::io::Error) -> StorageError {
        StorageError::Snapshot { path: self.dir.join(SNAPSHOT_FILE), problem: error.to_string() }
    }
}

/// What the snapshot thread reported since it was last asked.
#[derive(Debug, Default, PartialEq, Eq)]
struct Written {
    /// Snapshot files written.
    files: u64,
    /// Snapshots handed to it that are now durable: a newer one that was queued
    /// behind an older one replaces it, and covers it.
    covered: u64,
    /// The newest snapshot written.
    newest: Option<LogIndex>,
}

/// The thread that writes background snapshots, in the order they were handed
/// to it.
struct SnapshotWriter {
    jobs: Option<Sender<SnapshotMeta>>,
    /// One report per file written: how many handed-over snapshots it covers, and its index.
    done: Receiver<std::io::Result<(u64, LogIndex)>>,
    /// Handed over and not yet reported durable.
    in_flight: u64,
    thread: Option<JoinHandle<()>>,
    /// Set while the thread's writes fail for want of space.
    disk_full: Arc<AtomicBool>,
}

impl SnapshotWriter {
    fn spawn(dir: PathBuf, save: SaveFn) -> SnapshotWriter {
        let (jobs, queued) = std::sync::mpsc::channel::<SnapshotMeta>();
        let (report, done) = std::sync::mpsc::channel();
        let disk_full = Arc::new(AtomicBool::new(false));
        let full = disk_full.clone();
        let thread = std::thread::Builder::new()
            .name("raftkv-snapshot".into())
            .spawn(move || {
                while let Ok(mut snapshot) = queued.recv() {
                    // Only the newest of the snapshots waiting is worth writing.
                    let mut covered = 1;
                    while let Ok(newer) = queued.try_recv() {
                        snapshot = newer;
                        covered += 1;
                    }
                    // A failed write is retried with back-off (a newer snapshot
                    // that arrives meanwhile replaces it), never fatal.
                    let mut backoff = Backoff::new();
                    while let Err(error) = save(&dir, &snapshot) {
                        let disk_full = crate::wal::is_disk_full(&error);
                        full.store(disk_full, Ordering::Relaxed);
                        tracing::warn!(%error, index = snapshot.last_index.0, disk_full, "snapshot write failed; retrying");
                        match queued.recv_timeout(backoff.next()) {
                            Ok(newer) => {
                                snapshot = newer;
                                covered += 1;
                            }
                            Err(RecvTimeoutError::Timeout) => {}
                            Err(RecvTimeoutError::Disconnected) => return,
                        }
                    }
                    full.store(false, Ordering::Relaxed);
                    let index = snapshot.last_index;
                    if report.send(Ok((covered, index))).is_err() {
                        return;
                    }
                }
            })
            .expect("spawn the snapshot thread");
        SnapshotWriter { jobs: Some(jobs), done, in_flight: 0, thread: Some(thread), disk_full }
    }

    fn submit(&mut self, snapshot: SnapshotMeta) {
        // A send fails only if the thread is gone, which the next report shows.
        let _ = self.jobs.as_ref().expect("open until dropped").send(snapshot);
        self.in_flight += 1;
    }

    /// The snapshots written since the last call, without waiting.
    fn poll(&mut self) -> std::io::Result<Written> {
        let mut written = Written::default();
        while self.in_flight > 0 {
            match self.done.try_recv() {
                Ok(report) => self.count(report?, &mut written),
                Err(std::sync::mpsc::TryRecvError::Empty) => break,
                Err(std::sync::mpsc::TryRecvError::Disconnected) => return Err(thread_gone()),
            }
        }
        Ok(written)
    }

    /// Waits until every snapshot handed over is durable.
    fn wait_all(&mut self) -> std::io::Result<Written> {
        let mut written = Written::default();
        while self.in_flight > 0 {
            let report = self.done.recv().map_err(|_| thread_gone())?;
            self.count(report?, &mut written);
        }
        Ok(written)
    }

    fn count(&mut self, (covered, index): (u64, LogIndex), written: &mut Written) {
        self.in_flight -= covered;
        written.files += 1;
        written.covered += covered;
        written.newest = written.newest.max(Some(index));
    }
}

impl Drop for SnapshotWriter {
    fn drop(&mut self) {
        // Closing the queue stops the thread once it has written what is queued.
        drop(self.jobs.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn thread_gone() -> std::io::Error {
    std::io::Error::other("the snapshot thread stopped")
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
    use raft_sm::{Entry, NodeId, Payload};
    use tokio::sync::mpsc::UnboundedReceiver;

    fn entry(index: u64, term: u64) -> Entry {
        Entry { term: Term(term), index: LogIndex(index), payload: Payload::Noop }
    }

    fn snapshot(last_index: u64, last_term: u64) -> SnapshotMeta {
        SnapshotMeta {
            last_index: LogIndex(last_index),
            last_term: Term(last_term),
            membership: raft_sm::Membership::new([NodeId(1), NodeId(2)]),
            size_bytes: 5,
        }
    }

    /// The image a host would have staged for `meta`.
    fn stage(dir: &Path, meta: &SnapshotMeta) {
        std::fs::write(snapshot_file::staged_path(dir, meta.last_index), b"state").unwrap();
    }

    /// A snapshot file as the node writes it.
    fn save_snapshot(dir: &Path, meta: &SnapshotMeta) -> std::io::Result<()> {
        stage(dir, meta);
        snapshot_file::commit_staged(dir, meta)
    }

    /// The durable snapshot's metadata (checksum checked).
    fn durable(dir: &Path) -> Option<SnapshotMeta> {
        load_snapshot(dir).unwrap().map(|on_disk| on_disk.meta)
    }

    fn write(dir: &Path, records: &[Record]) {
        let (mut wal, _) = Wal::open(&dir.join("wal"), 1 << 20).unwrap();
        for record in records {
            wal.append(record);
        }
        wal.sync().unwrap();
    }

    /// Holds snapshot files back: each save reports which snapshot it started,
    /// then waits until the test opens the gate (once per file).
    struct Gate {
        open: Sender<()>,
        started: Receiver<LogIndex>,
    }

    fn gated_save() -> (Gate, SaveFn) {
        let (open, gate) = std::sync::mpsc::channel::<()>();
        let (report, started) = std::sync::mpsc::channel();
        let save: SaveFn = Box::new(move |dir, snapshot| {
            let _ = report.send(snapshot.last_index);
            // Bounded, so that a failing test (which drops the writer and waits for
            // this thread while still holding the gate) does not hang.
            gate.recv_timeout(Duration::from_secs(10)).map_err(|_| std::io::Error::other("the gate stayed shut"))?;
            snapshot_file::commit_staged(dir, snapshot)
        });
        (Gate { open, started }, save)
    }

    fn writer(dir: &Path, segment_bytes: u64, save: SaveFn) -> (WalWriter, UnboundedReceiver<StorageEvent>) {
        let (wal, _) = Wal::open(&dir.join("wal"), segment_bytes).unwrap();
        let (persisted, reports) = tokio::sync::mpsc::unbounded_channel();
        (WalWriter::new(dir.to_owned(), wal, persisted, Arc::new(Metrics::default()), save), reports)
    }

    fn batch(ops: Vec<Write>, sync: u64) -> WriteBatch {
        WriteBatch { ops, sync: Some(PersistId(sync)) }
    }

    /// Appends entries 1..=`last` in batches of ten, each synced (ids 1, 2, ...),
    /// so that they span several small segments. Returns the next sync id.
    fn append_entries(writer: &mut WalWriter, last: u64) -> u64 {
        let mut sync = 1;
        for first in (1..=last).step_by(10) {
            let entries = (first..=last.min(first + 9)).map(|i| entry(i, 1)).collect();
            writer.write_batches(vec![batch(vec![Write::Append { entries }], sync)]).unwrap();
            sync += 1;
        }
        sync
    }

    /// A snapshot the node took (its image staged) and its save.
    fn background(dir: &Path, meta: SnapshotMeta) -> Write {
        stage(dir, &meta);
        Write::SaveSnapshot { meta, origin: SnapshotOrigin::Taken }
    }

    /// The snapshot indexes reported durable so far.
    fn snapshots_reported(events: &mut UnboundedReceiver<StorageEvent>) -> Vec<LogIndex> {
        let mut reported = Vec::new();
        while let Ok(event) = events.try_recv() {
            if let StorageEvent::SnapshotPersisted(index) = event {
                reported.push(index);
            }
        }
        reported
    }

    /// What a crash would leave: a copy of the files as they are now.
    fn crash_image(dir: &Path) -> tempfile::TempDir {
        let image = tempfile::tempdir().unwrap();
        std::fs::create_dir(image.path().join("wal")).unwrap();
        for name in ["", "wal"] {
            for file in std::fs::read_dir(dir.join(name)).unwrap() {
                let path = file.unwrap().path();
                if path.is_file() {
                    std::fs::copy(&path, image.path().join(name).join(path.file_name().unwrap())).unwrap();
                }
            }
        }
        image
    }

    #[test]
    fn a_background_snapshot_is_reported_once_durable_and_the_compaction_after_it_deletes_segments() {
        let dir = tempfile::tempdir().unwrap();
        let (gate, save) = gated_save();
        let (mut writer, mut events) = writer(dir.path(), 4096, save);
        let sync = append_entries(&mut writer, 300);
        let segments = writer.wal.segment_count();
        assert!(segments >= 3, "{segments} segments");
        let ops = vec![background(dir.path(), snapshot(250, 1)), Write::Append { entries: vec![entry(301, 1)] }];
        writer.write_batches(vec![batch(ops, sync)]).unwrap();
        assert_eq!(gate.started.recv().unwrap(), LogIndex(250));
        writer.write_batches(Vec::new()).unwrap();
        let mut last_synced = None;
        while let Ok(event) = events.try_recv() {
            assert!(matches!(event, StorageEvent::Persisted(_)), "not durable yet: {event:?}");
            last_synced = Some(event);
        }
        assert_eq!(last_synced, Some(StorageEvent::Persisted(PersistId(sync))), "acknowledged meanwhile");
        assert_eq!(durable(dir.path()), None);
        let image = crash_image(dir.path());
        let (_, restored, _lock) = recover(image.path(), 4096).unwrap();
        assert_eq!(restored.snapshot, None);
        assert_eq!(restored.entries.len(), 301, "a crash now loses no entry");

        gate.open.send(()).unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        let reported = loop {
            let reported = snapshots_reported(&mut events);
            if !reported.is_empty() {
                break reported;
            }
            assert!(Instant::now() < deadline, "the snapshot was never reported durable");
            std::thread::sleep(Duration::from_millis(5));
            writer.write_batches(Vec::new()).unwrap();
        };
        assert_eq!(reported, vec![LogIndex(250)]);
        assert_eq!(durable(dir.path()), Some(snapshot(250, 1)), "durable when reported");
        assert_eq!(writer.wal.segment_count(), segments, "nothing deleted until the core asks");
        // The core, told, asks for the compaction.
        writer.write_batches(vec![batch(vec![Write::Compact { up_to: LogIndex(250) }], sync + 1)]).unwrap();
        assert!(writer.wal.segment_count() < segments);
        drop(writer);
        let (_, restored, _lock) = recover(dir.path(), 4096).unwrap();
        assert_eq!(restored.snapshot.unwrap().last_index, LogIndex(250));
        let first = restored.entries.first().unwrap().index;
        assert!(first <= LogIndex(251), "raw records from before the snapshot's end: {first}");
        assert_eq!(restored.entries.last().unwrap().index, LogIndex(301));
    }

    #[test]
    fn a_snapshot_from_the_leader_is_never_overwritten_by_an_older_background_one() {
        let dir = tempfile::tempdir().unwrap();
        let (gate, save) = gated_save();
        let (mut writer, _persisted) = writer(dir.path(), 1 << 20, save);
        let entries = (1..=12).map(|i| entry(i, 1)).collect();
        let ops = vec![Write::Append { entries }, background(dir.path(), snapshot(10, 1))];
        writer.write_batches(vec![batch(ops, 1)]).unwrap();
        // The background write is still held back when the leader's newer snapshot
        // (conflicting with the log, so a reset follows) arrives.
        assert_eq!(gate.started.recv().unwrap(), LogIndex(10));
        let opener = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(100));
            gate.open.send(()).unwrap();
        });
        let chunk =
            Write::SnapshotChunk { last_index: LogIndex(20), last_term: Term(2), offset: 0, data: b"state".to_vec() };
        let installed = Write::SaveSnapshot { meta: snapshot(20, 2), origin: SnapshotOrigin::Installed };
        let reset = Write::Reset { base_index: LogIndex(20) };
        let ops = vec![chunk, installed, reset, Write::Append { entries: vec![entry(21, 2)] }];
        writer.write_batches(vec![batch(ops, 2)]).unwrap();
        assert_eq!(durable(dir.path()), Some(snapshot(20, 2)), "durable when its sync is reported");
        opener.join().unwrap();
        drop(writer); // Waits for the snapshot thread: nothing is written after this.
        assert_eq!(durable(dir.path()), Some(snapshot(20, 2)));
        let (_, restored, _lock) = recover(dir.path(), 1 << 20).unwrap();
        let indexes: Vec<u64> = restored.entries.iter().map(|e| e.index.0).collect();
        assert_eq!(indexes, [21]);
    }

    #[test]
    fn background_snapshots_queued_behind_each_other_are_written_once() {
        let dir = tempfile::tempdir().unwrap();
        let (gate, save) = gated_save();
        let (mut writer, _persisted) = writer(dir.path(), 4096, save);
        let sync = append_entries(&mut writer, 300);
        let segments = writer.wal.segment_count();
        for (index, sync) in [(100, sync), (200, sync + 1), (250, sync + 2)] {
            let ops = vec![background(dir.path(), snapshot(index, 1))];
            writer.write_batches(vec![batch(ops, sync)]).unwrap();
            if index == 100 {
                assert_eq!(gate.started.recv().unwrap(), LogIndex(100));
            }
        }
        assert_eq!(writer.wal.segment_count(), segments);
        // The two queued behind the one being written collapse into the newest.
        gate.open.send(()).unwrap();
        assert_eq!(gate.started.recv().unwrap(), LogIndex(250));
        gate.open.send(()).unwrap();
        let written = writer.snapshots.wait_all().unwrap();
        assert_eq!(written, Written { files: 2, covered: 3, newest: Some(LogIndex(250)) });
        writer.on_snapshots_durable(written);
        assert_eq!(writer.wal.segment_count(), segments, "the WAL compacts only when the core asks");
        assert_eq!(durable(dir.path()), Some(snapshot(250, 1)));
        assert_eq!(writer.metrics.snapshots_saved.get(), 2);
    }

    #[test]
    fn snapshot_files_round_trip_and_damage_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(durable(dir.path()), None);
        save_snapshot(dir.path(), &snapshot(9, 2)).unwrap();
        assert_eq!(durable(dir.path()), Some(snapshot(9, 2)));
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
        assert_eq!(indexes, (1..=10).collect::<Vec<_>>(), "the raw records; the core reconciles them");
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
        let (_, restored, lock) = recover(dir.path(), 1 << 20).unwrap();
        assert_eq!(restored.entries.len(), 10, "storage hands back the raw records");
        // The core reconciles them: the log conflicts with the snapshot at 8, so it goes.
        let config = raft_sm::Config::new(NodeId(1), vec![NodeId(1), NodeId(2)]);
        let node = raft_sm::Node::new(config, restored).unwrap();
        assert_eq!((node.log_base().0, node.log_len()), (LogIndex(8), 0));
        drop(lock);
        write(dir.path(), &[Record::Reset { base_index: LogIndex(8) }, Record::Entry(entry(9, 5))]);
        let (_, restored, _) = recover(dir.path(), 1 << 20).unwrap();
        let indexes: Vec<u64> = restored.entries.iter().map(|e| e.index.0).collect();
        assert_eq!(indexes, [9]);
    }
}
