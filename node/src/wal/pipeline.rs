//! Segments prepared ahead of use, so that filling one with zeros never stalls a
//! write (the idea of etcd's file pipeline).
//!
//! A prepared segment is a temp file, under a name [`segment::list`] ignores,
//! zero-filled to the full segment size and fdatasync'd. Records then overwrite
//! blocks that are already allocated and written, so the `fdatasync` after each
//! batch never has to update the file size or convert extents. Rotation takes
//! the prepared file and renames it into place; a background thread prepares the
//! next one meanwhile. A temp file left by a crash is removed at open.

use super::{segment, sync_dir};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, Receiver};
use std::sync::Arc;
use std::thread::JoinHandle;

/// Zeros written per call while filling a segment (also how often a stop
/// request is noticed).
const ZERO_CHUNK_BYTES: usize = 1 << 20;

/// The background thread that keeps the next segment ready.
pub struct Pipeline {
    /// One prepared segment at a time: the thread starts the next one only after
    /// this one was taken (and renamed), so two temp files never share a name.
    ready: Option<Receiver<std::io::Result<Prepared>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    dir: PathBuf,
    bytes: u64,
}

struct Prepared {
    file: File,
    path: PathBuf,
}

impl Pipeline {
    /// Starts preparing segments of `bytes` bytes in `dir`.
    pub fn start(dir: &Path, bytes: u64) -> Pipeline {
        let (tx, rx) = sync_channel(0);
        let stop = Arc::new(AtomicBool::new(false));
        let dir_for_restart = dir.to_owned();
        let dir = dir.to_owned();
        let stopping = stop.clone();
        let thread = std::thread::Builder::new()
            .name("raftkv-wal-prealloc".into())
            .spawn(move || {
                for n in 0.. {
                    let path = dir.join(segment::temp_file_name(n));
                    let prepared = prepare(&path, bytes, &stopping).map(|file| Prepared { file, path: path.clone() });
                    if prepared.is_err() {
                        // It cannot be made (a full disk). The partial file goes
                        // before the error is reported: the taker starts a new
                        // thread at once, which creates the same temp name.
                        let _ = std::fs::remove_file(&path);
                        let _ = tx.send(prepared);
                        return;
                    }
                    if tx.send(prepared).is_err() {
                        // Nobody will take it: the log is closed.
                        let _ = std::fs::remove_file(&path);
                        return;
                    }
                }
            })
            .expect("spawn the WAL preallocation thread");
        Pipeline { ready: Some(rx), stop, thread: Some(thread), dir: dir_for_restart, bytes }
    }

    /// Takes the next prepared segment, waiting for it if it is not ready yet,
    /// and renames it to `path` durably (a directory fsync), so that records
    /// written to it are found after a crash.
    ///
    /// If the segment could not be prepared (the disk is full), the thread
    /// has removed its partial file and stopped; a new one is started, so a
    /// later call tries again.
    pub fn take(&mut self, path: &Path) -> std::io::Result<File> {
        let ready = self.ready.as_ref().expect("taken only while open");
        let received = ready.recv().map_err(|_| std::io::Error::other("the WAL preallocation thread stopped"));
        let prepared = match received.and_then(|prepared| prepared) {
            Ok(prepared) => prepared,
            Err(error) => {
                let (dir, bytes) = (self.dir.clone(), self.bytes);
                *self = Pipeline::start(&dir, bytes);
                return Err(error);
            }
        };
        install(&prepared.path, path)?;
        Ok(prepared.file)
    }
}

impl Drop for Pipeline {
    fn drop(&mut self) {
        // Interrupt a segment being filled and unblock one waiting to be taken;
        // wait for the thread so that it removes its temp file before a later
        // open of the same directory lists it.
        self.stop.store(true, Ordering::Relaxed);
        drop(self.ready.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Prepares a segment of `bytes` bytes inline and renames it to `path`: the
/// first segment of a new log, which nothing waits behind yet.
pub fn create_inline(path: &Path, bytes: u64) -> std::io::Result<File> {
    let dir = path.parent().expect("a segment lives in the WAL directory");
    let tmp = dir.join(segment::temp_file_name(0));
    let file = prepare(&tmp, bytes, &AtomicBool::new(false)).inspect_err(|_| {
        // No partial temp file is left behind (a full disk, for one).
        let _ = std::fs::remove_file(&tmp);
    })?;
    install(&tmp, path)?;
    Ok(file)
}

/// Removes temp files of segments that were prepared but never renamed into
/// place (the process stopped first). Returns how many.
pub fn remove_stale(dir: &Path) -> std::io::Result<usize> {
    let mut removed = 0;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_name().to_str().is_some_and(segment::is_temp_name) {
            std::fs::remove_file(entry.path())?;
            removed += 1;
        }
    }
    if removed > 0 {
        sync_dir(dir)?;
    }
    Ok(removed)
}

/// Creates `path` and fills it with `bytes` zeros, durably. Stops early (with an
/// `Interrupted` error) once `stop` is set.
fn prepare(path: &Path, bytes: u64, stop: &AtomicBool) -> std::io::Result<File> {
    let mut file = OpenOptions::new().create_new(true).write(true).open(path)?;
    let zeros = vec![0u8; ZERO_CHUNK_BYTES];
    let mut left = bytes;
    while left > 0 {
        if stop.load(Ordering::Relaxed) {
            return Err(std::io::ErrorKind::Interrupted.into());
        }
        let n = left.min(ZERO_CHUNK_BYTES as u64) as usize;
        file.write_all(&zeros[..n])?;
        left -= n as u64;
    }
    file.sync_data()?;
    Ok(file)
}

/// Renames a prepared segment into place and makes the name durable.
fn install(tmp: &Path, path: &Path) -> std::io::Result<()> {
    std::fs::rename(tmp, path)?;
    sync_dir(path.parent().expect("a segment lives in the WAL directory"))
}
