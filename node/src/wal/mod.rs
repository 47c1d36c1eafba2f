//! The write-ahead log: an append-only sequence of segment files holding framed,
//! checksummed [`Record`]s (log entries, hard states, truncations).
//!
//! - **Group commit.** [`Wal::append`] only buffers; [`Wal::sync`] writes the
//!   buffer and calls `fdatasync` once, however many records it holds.
//! - **Segments.** When the active segment passes `segment_bytes_max` a new one
//!   starts with the current hard state, so older segments are only needed for
//!   their entries. [`Wal::compact`] deletes the oldest segments whose entries a
//!   durable snapshot covers (a prefix only, so no later truncation loses its target).
//! - **Preallocation.** Every segment is zero-filled to `segment_bytes_max` before
//!   it is written to, off the write path ([`pipeline`]): overwriting allocated
//!   blocks lets `fdatasync` skip the file-size update an append needs (on ext4
//!   several times cheaper), and a zero tail reads as the end of the log.
//! - **Recovery.** [`Wal::open`] replays every segment, streaming
//!   ([`segment::scan_file`]: chunks, never a whole segment in memory). Damage at the very end of
//!   the newest segment with nothing intact after it is a write torn by a crash:
//!   it is cut off (and logged). Any other damage is a start-up error, never
//!   silently skipped.

mod pipeline;
pub mod record;
pub mod segment;

pub use record::Record;

use pipeline::Pipeline;
use raft_sm::{Entry, HardState, LogIndex};
use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// Why the log cannot be opened or written.
#[derive(Debug, thiserror::Error)]
pub enum WalError {
    /// An IO error.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The error.
        source: std::io::Error,
    },
    /// Damage that is not a torn tail.
    #[error("write-ahead log {path} is corrupt at byte {offset} ({reason}): damage inside data that was made durable, not an incomplete last write; refusing to start rather than lose acknowledged writes. Run `raftkv repair` with this node's configuration to discard the damaged suffix (the node then does not vote until a leader has caught it up), or restore the node from a peer")]
    Corrupt {
        /// The segment.
        path: PathBuf,
        /// Where.
        offset: u64,
        /// What is wrong.
        reason: &'static str,
    },
    /// Records that cannot follow each other.
    #[error("write-ahead log {path}: {problem}")]
    Inconsistent {
        /// The segment.
        path: PathBuf,
        /// What does not fit.
        problem: String,
    },
}

impl WalError {
    /// Whether the error is the disk (or quota) being full: wait for space and
    /// retry, instead of stopping the node.
    pub fn is_disk_full(&self) -> bool {
        matches!(self, WalError::Io { source, .. } if is_disk_full(source))
    }
}

/// Whether an IO error means no space is left (ENOSPC, EDQUOT).
pub fn is_disk_full(error: &std::io::Error) -> bool {
    error.kind() == std::io::ErrorKind::StorageFull || matches!(error.raw_os_error(), Some(28 | 122))
}

/// The segment size to use in `dir`: the configured one, unless the filesystem
/// is too small to hold a few segments, then a quarter of it (at least 1 MiB).
pub fn fitted_segment_bytes(dir: &Path, configured: u64) -> u64 {
    let Ok(stat) = rustix::fs::statvfs(dir) else {
        return configured;
    };
    let total = stat.f_blocks.saturating_mul(stat.f_frsize);
    let fitted = (total / 4) & !((1 << 20) - 1);
    if total == 0 || configured <= fitted.max(1 << 20) {
        return configured;
    }
    let fitted = fitted.max(1 << 20);
    tracing::warn!(
        configured_bytes = configured,
        filesystem_bytes = total,
        segment_bytes = fitted,
        "WAL segments are preallocated whole; the filesystem is too small for the configured size, so a \
         quarter of it is used (set RAFT_WAL_SEGMENT_BYTES to choose)"
    );
    fitted
}

/// Free bytes in the filesystem of `dir`, if known (for error messages).
pub fn free_bytes(dir: &Path) -> Option<u64> {
    rustix::fs::statvfs(dir).ok().map(|stat| stat.f_bavail.saturating_mul(stat.f_frsize))
}

fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> WalError {
    let context = context.into();
    move |source| WalError::Io { context, source }
}

/// What the log held: the last hard state and the surviving entries.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Replay {
    /// The last hard state written (default if none).
    pub hard_state: HardState,
    /// The index before the first entry, when the log knows it.
    pub base_index: Option<LogIndex>,
    /// The entries, contiguous.
    pub entries: Vec<Entry>,
}

impl Replay {
    fn next_index(&self) -> Option<LogIndex> {
        self.base_index.map(|base| LogIndex(base.0 + self.entries.len() as u64 + 1))
    }

    fn apply(&mut self, record: Record, path: &Path) -> Result<(), WalError> {
        match record {
            Record::HardState(hard_state) => self.hard_state = hard_state,
            Record::Batch { .. } => {} // Consumed by the scan; never replayed.
            Record::Entry(entry) => {
                match self.next_index() {
                    None => self.base_index = Some(entry.index.prev()),
                    Some(next) if next == entry.index => {}
                    Some(next) => {
                        return Err(WalError::Inconsistent {
                            path: path.to_owned(),
                            problem: format!(
                                "entry {} follows the log where entry {} was expected",
                                entry.index.0, next.0
                            ),
                        })
                    }
                }
                self.entries.push(entry);
            }
            Record::Truncate { from } => {
                if let Some(base) = self.base_index {
                    if from > base {
                        self.entries.truncate((from.0 - base.0 - 1) as usize);
                    } else {
                        self.entries.clear();
                        self.base_index = Some(from.prev());
                    }
                }
            }
            Record::Reset { base_index } => {
                self.entries.clear();
                self.base_index = Some(base_index);
            }
        }
        Ok(())
    }
}

struct SegmentInfo {
    seq: u64,
    path: PathBuf,
    /// Highest entry index written to the segment (0 if none).
    max_index: LogIndex,
}

/// The fewest bytes an entry record takes (header, kind, term, index, payload tag).
const MIN_ENTRY_RECORD_BYTES: u64 = (record::HEADER_BYTES + 1 + 16 + 1) as u64;

/// What [`Wal::repair`] discarded.
#[derive(Debug)]
pub struct Repaired {
    /// The segment cut short.
    pub segment: PathBuf,
    /// Where it now ends.
    pub offset: u64,
    /// What was wrong there.
    pub reason: &'static str,
    /// Later segments deleted.
    pub removed: Vec<PathBuf>,
    /// The highest index the log may have held before the repair (readable
    /// entries, the commit index, and room for unreadable ones).
    pub reached: LogIndex,
}

/// An open write-ahead log.
pub struct Wal {
    dir: PathBuf,
    segments: Vec<SegmentInfo>,
    active: File,
    /// Where the next record goes in the active segment.
    active_bytes: u64,
    /// Bytes allocated (written, zeros included) in the active segment.
    active_allocated: u64,
    segment_bytes_max: u64,
    buf: Vec<u8>,
    /// The last hard state written to the segments: a new segment starts with it.
    hard_state: HardState,
    /// A hard state among the buffered records; written (and current) at the next sync.
    buffered_hard_state: Option<HardState>,
    /// Prepares the next segment while this one fills up.
    pipeline: Pipeline,
}

/// Fsyncs a directory so that created, renamed and removed names are durable.
pub fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

impl Wal {
    /// Opens (or creates) the log in `dir` and replays it.
    pub fn open(dir: &Path, segment_bytes_max: u64) -> Result<(Wal, Replay), WalError> {
        std::fs::create_dir_all(dir).map_err(io(format!("creating {}", dir.display())))?;
        let segment_bytes_max = fitted_segment_bytes(dir, segment_bytes_max);
        let stale = pipeline::remove_stale(dir).map_err(io(format!("removing temp files in {}", dir.display())))?;
        if stale > 0 {
            tracing::info!(removed = stale, "WAL: removed segments prepared but never used");
        }
        let listed = segment::list(dir).map_err(io(format!("listing {}", dir.display())))?;
        let mut replay = Replay::default();
        let mut segments = Vec::new();
        let count = listed.len();
        let mut last_end = 0;
        for (i, (seq, path)) in listed.into_iter().enumerate() {
            let (mut scan, file_len) = segment::scan_file(&path).map_err(io(format!("reading {}", path.display())))?;
            let mut end = file_len;
            if let Some(damage) = &scan.damage {
                end = damage.offset;
                if damage.only_zeros_after {
                    // Preallocated space after the last record: the normal end.
                } else if i + 1 == count && !damage.intact_record_after && damage.looks_torn {
                    // A write torn by a crash: the last batch was never acknowledged
                    // (its fsync did not return), so it is dropped whole.
                    if let Some((batch_offset, records_before)) = damage.batch_start {
                        end = batch_offset;
                        scan.records.truncate(records_before);
                    }
                    tracing::warn!(
                        segment = %path.display(),
                        offset = end,
                        dropped_bytes = file_len - end,
                        reason = damage.reason,
                        "WAL torn tail: truncating the last segment after a crash"
                    );
                    let file = OpenOptions::new()
                        .write(true)
                        .open(&path)
                        .map_err(io(format!("opening {}", path.display())))?;
                    file.set_len(end)
                        .and_then(|()| file.sync_all())
                        .map_err(io(format!("truncating {}", path.display())))?;
                } else {
                    return Err(WalError::Corrupt { path, offset: damage.offset, reason: damage.reason });
                }
            }
            last_end = end;
            let mut max_index = LogIndex(0);
            for record in scan.records {
                if let Record::Entry(entry) = &record {
                    max_index = max_index.max(entry.index);
                }
                replay.apply(record, &path)?;
            }
            segments.push(SegmentInfo { seq, path, max_index });
        }
        let (active, active_bytes, active_allocated) = match segments.last() {
            Some(last) => {
                let file = OpenOptions::new()
                    .write(true)
                    .open(&last.path)
                    .map_err(io(format!("opening {}", last.path.display())))?;
                let len = file.metadata().map_err(io(format!("inspecting {}", last.path.display())))?.len();
                (file, last_end, len)
            }
            None => {
                // A new log: nothing waits behind its first segment yet.
                let path = dir.join(segment::file_name(0));
                match pipeline::create_inline(&path, segment_bytes_max) {
                    Ok(file) => {
                        segments.push(SegmentInfo { seq: 0, path, max_index: LogIndex(0) });
                        (file, 0, segment_bytes_max)
                    }
                    Err(error) if is_disk_full(&error) => {
                        // Come up anyway: an empty segment, so that the first sync
                        // moves on to a prepared one, retrying until there is space.
                        tracing::error!(
                            needed_bytes = segment_bytes_max,
                            free_bytes = free_bytes(dir),
                            "disk full: cannot preallocate the first WAL segment; starting without it and \
                             retrying (free space, or lower RAFT_WAL_SEGMENT_BYTES)"
                        );
                        let file = OpenOptions::new()
                            .create(true)
                            .truncate(true)
                            .write(true)
                            .open(&path)
                            .map_err(io(format!("creating {}", path.display())))?;
                        segments.push(SegmentInfo { seq: 0, path, max_index: LogIndex(0) });
                        (file, 0, 0)
                    }
                    Err(error) => return Err(io(format!("creating {}", path.display()))(error)),
                }
            }
        };
        let wal = Wal {
            dir: dir.to_owned(),
            segments,
            active,
            active_bytes,
            active_allocated,
            segment_bytes_max,
            buf: Vec::new(),
            hard_state: replay.hard_state,
            buffered_hard_state: None,
            pipeline: Pipeline::start(dir, segment_bytes_max),
        };
        Ok((wal, replay))
    }

    /// Buffers a record; it is durable after the next [`Wal::sync`].
    pub fn append(&mut self, record: &Record) {
        match record {
            Record::HardState(hard_state) => self.buffered_hard_state = Some(*hard_state),
            Record::Entry(entry) => {
                let active = self.segments.last_mut().expect("an active segment");
                active.max_index = active.max_index.max(entry.index);
            }
            Record::Truncate { .. } | Record::Reset { .. } => {}
            Record::Batch { .. } => panic!("batch markers are written by sync"),
        }
        record::encode(record, &mut self.buf);
    }

    /// Whether records are buffered and not yet written.
    pub fn has_buffered(&self) -> bool {
        !self.buf.is_empty()
    }

    /// Writes the buffered records and makes them durable with one `fdatasync`;
    /// rotates the segment when it is full.
    ///
    /// A failed call changes nothing that a retry depends on: the buffered
    /// records stay buffered and the write position stays where it was until
    /// the write *and* its fsync succeeded, so the next call writes the whole
    /// batch again at the same place (after a failed fsync the kernel may have
    /// dropped the dirty pages; rewriting them is what makes a retry safe).
    /// A disk-full error ([`WalError::is_disk_full`]) is worth retrying.
    pub fn sync(&mut self) -> Result<(), WalError> {
        if !self.buf.is_empty() {
            if self.active_allocated < self.segment_bytes_max {
                // The active segment came from the disk short (a torn tail was cut
                // off, an older version allocated it in chunks, or the disk was full
                // at start): growing it would make every fdatasync update the file
                // size, so move on to a prepared segment before the first write.
                self.rotate()?;
            }
            self.write_buffered()?;
        } else {
            self.active.sync_data().map_err(io("fsyncing the WAL"))?;
        }
        if self.active_bytes >= self.segment_bytes_max {
            self.rotate()?;
        }
        Ok(())
    }

    /// Writes the buffered records as one batch at the write position and
    /// fsyncs them; only then do they count as written.
    fn write_buffered(&mut self) -> Result<(), WalError> {
        let mut batch = Vec::with_capacity(self.buf.len() + 32);
        record::encode(&Record::Batch { bytes: self.buf.len() as u64 }, &mut batch);
        batch.extend_from_slice(&self.buf);
        let end = self.active_bytes + batch.len() as u64;
        // Only the batch that fills the segment writes past its preallocation.
        self.active.write_all_at(&batch, self.active_bytes).map_err(io("writing the WAL"))?;
        self.active_allocated = self.active_allocated.max(end);
        self.active.sync_data().map_err(io("fsyncing the WAL"))?;
        self.active_bytes = end;
        self.buf.clear();
        if let Some(hard_state) = self.buffered_hard_state.take() {
            self.hard_state = hard_state;
        }
        Ok(())
    }

    /// Continues the log in the prepared segment: a rename, a directory fsync and
    /// the hard state record, no zero-filling.
    fn rotate(&mut self) -> Result<(), WalError> {
        self.trim_active()?;
        let seq = self.segments.last().map_or(0, |s| s.seq + 1);
        let path = self.dir.join(segment::file_name(seq));
        let file = self.pipeline.take(&path).map_err(|error| {
            let needed = self.segment_bytes_max;
            let free = free_bytes(&self.dir).map_or_else(|| "unknown".to_owned(), |b| b.to_string());
            WalError::Io {
                context: format!(
                    "preparing WAL segment {} ({needed} bytes, preallocated whole; {free} bytes free; free space \
                     or lower RAFT_WAL_SEGMENT_BYTES)",
                    path.display()
                ),
                source: error,
            }
        })?;
        // Written and synced before the segment takes records: once compaction
        // deletes the older segments, this is where the hard state survives.
        let mut first = Vec::new();
        record::encode(&Record::HardState(self.hard_state), &mut first);
        file.write_all_at(&first, 0)
            .and_then(|()| file.sync_data())
            .map_err(io(format!("writing {}", path.display())))?;
        self.active = file;
        self.active_bytes = first.len() as u64;
        self.active_allocated = self.segment_bytes_max;
        self.segments.push(SegmentInfo { seq, path, max_index: LogIndex(0) });
        tracing::debug!(seq, "WAL segment rotated");
        Ok(())
    }

    /// Gives back zeros after the records of the segment being closed. A segment
    /// prepared here is full when it rotates (its last batch ran past the
    /// preallocation), so this only trims one allocated by an older version or
    /// under a larger segment size.
    fn trim_active(&mut self) -> Result<(), WalError> {
        if self.active_allocated > self.active_bytes {
            self.active
                .set_len(self.active_bytes)
                .and_then(|()| self.active.sync_all())
                .map_err(io("trimming the full WAL segment"))?;
            self.active_allocated = self.active_bytes;
        }
        Ok(())
    }

    /// Discards the damaged suffix of the log in `dir` (`raftkv repair`): the
    /// first damage that is neither the end of the log nor a torn tail, and
    /// every segment after it. Returns `None` if nothing is damaged. The node
    /// may have acknowledged entries in the discarded part, so the result says
    /// how far its log reached at most ([`Repaired::reached`]): the node must not
    /// vote until a leader has caught it up past that.
    pub fn repair(dir: &Path) -> Result<Option<Repaired>, WalError> {
        let listed = segment::list(dir).map_err(io(format!("listing {}", dir.display())))?;
        let count = listed.len();
        let mut max_index = 0u64;
        let mut commit = 0u64;
        let mut cut: Option<(usize, PathBuf, u64, u64, &'static str)> = None;
        for (i, (_, path)) in listed.iter().enumerate() {
            let bytes = std::fs::read(path).map_err(io(format!("reading {}", path.display())))?;
            let scan = segment::scan(&bytes);
            for record in &scan.records {
                match record {
                    Record::Entry(entry) => max_index = max_index.max(entry.index.0),
                    Record::HardState(hard_state) => commit = commit.max(hard_state.commit.0),
                    _ => {}
                }
            }
            let Some(damage) = scan.damage else { continue };
            if damage.only_zeros_after {
                continue;
            }
            // Entries readable after the damage still count: they were written.
            let search_from = damage.batch_end.map_or(damage.offset + 1, |end| end.max(damage.offset + 1));
            for from in search_from as usize..bytes.len() {
                if let record::Decoded::Record(Record::Entry(entry), _) = record::decode(&bytes[from..]) {
                    max_index = max_index.max(entry.index.0);
                }
            }
            let torn = i + 1 == count && !damage.intact_record_after && damage.looks_torn;
            if cut.is_none() && !torn {
                let at = damage.batch_start.map_or(damage.offset, |(start, _)| start);
                // The damaged batch may have held entries that cannot be read: at
                // most one per smallest entry record in it.
                let damaged_bytes = damage.batch_end.unwrap_or(damage.offset + 1).saturating_sub(at);
                let unreadable = damaged_bytes.div_ceil(MIN_ENTRY_RECORD_BYTES);
                cut = Some((i, path.clone(), at, unreadable, damage.reason));
            }
        }
        let Some((first_dropped, path, offset, unreadable, reason)) = cut else {
            return Ok(None);
        };
        let file = OpenOptions::new().write(true).open(&path).map_err(io(format!("opening {}", path.display())))?;
        file.set_len(offset).and_then(|()| file.sync_all()).map_err(io(format!("truncating {}", path.display())))?;
        let mut removed = Vec::new();
        for (_, later) in &listed[first_dropped + 1..] {
            std::fs::remove_file(later).map_err(io(format!("removing {}", later.display())))?;
            removed.push(later.clone());
        }
        sync_dir(dir).map_err(io(format!("fsyncing {}", dir.display())))?;
        Ok(Some(Repaired {
            segment: path,
            offset,
            reason,
            removed,
            reached: LogIndex(max_index.max(commit) + unreadable),
        }))
    }

    /// Where the next record goes in the active segment (for tests and metrics).
    pub fn write_offset(&self) -> u64 {
        self.active_bytes
    }

    /// Deletes the oldest segments whose entries all lie at or below `up_to`
    /// (covered by a durable snapshot). Never the active segment.
    pub fn compact(&mut self, up_to: LogIndex) -> Result<usize, WalError> {
        let mut removed = 0;
        while self.segments.len() > 1 && self.segments[0].max_index <= up_to {
            let segment = self.segments.remove(0);
            std::fs::remove_file(&segment.path).map_err(io(format!("removing {}", segment.path.display())))?;
            removed += 1;
        }
        if removed > 0 {
            sync_dir(&self.dir).map_err(io("fsyncing the WAL directory"))?;
            tracing::info!(removed, up_to = up_to.0, "WAL segments deleted after snapshot");
        }
        Ok(removed)
    }

    /// Number of segment files.
    pub fn segment_count(&self) -> usize {
        self.segments.len()
    }
}

#[cfg(test)]
mod tests;
