//! An in-memory snapshot store: the bytes a driver keeps for snapshots, for
//! drivers whose storage is memory (the test pump, benchmarks, examples,
//! embedders' tests). It keeps what a file-backed store keeps — the durable
//! snapshot, the images taken and not yet saved, the image coming in from the
//! leader — and executes the snapshot writes on them. It is durable at once; a
//! driver that models crashes calls [`MemorySnapshots::crash`].

use crate::host::{Host, StateMachine};
use crate::message::{Message, SnapshotChunkToSend};
use crate::types::{LogIndex, SnapshotMeta, Term};
use crate::write::{SnapshotOrigin, Write};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Snapshot bytes in memory; see the module documentation.
#[derive(Clone, Debug, Default)]
pub struct MemorySnapshots {
    durable: Option<(SnapshotMeta, Arc<Vec<u8>>)>,
    /// Images the host took, by index, until their `SaveSnapshot`.
    staged: BTreeMap<LogIndex, Vec<u8>>,
    /// The image coming in from the leader: its (index, term) and bytes so far.
    incoming: Option<(LogIndex, Term, Vec<u8>)>,
}

impl MemorySnapshots {
    /// A store that already holds `image` as its durable snapshot `meta` (a
    /// node restarted from an image written elsewhere).
    ///
    /// # Panics
    /// If `image` is not `meta.size_bytes` long.
    pub fn with_durable(meta: SnapshotMeta, image: Vec<u8>) -> MemorySnapshots {
        let mut store = MemorySnapshots::default();
        store.save(&meta, image);
        store
    }

    /// Answers [`crate::Output::TakeSnapshot`]: the host writes its image here.
    pub fn take_snapshot<S: StateMachine>(&mut self, host: &mut Host<S>, now_ms: u64) -> Option<SnapshotMeta> {
        let mut image = Vec::new();
        let meta = host.take_snapshot(now_ms, &mut image).expect("writing into memory does not fail")?;
        self.stage(&meta, image);
        Some(meta)
    }

    /// Keeps `image`, taken for `meta`, until its `SaveSnapshot`.
    pub fn stage(&mut self, meta: &SnapshotMeta, image: Vec<u8>) {
        self.staged.insert(meta.last_index, image);
    }

    /// Answers [`crate::Output::RestoreSnapshot`]: restores `host` from the
    /// durable image.
    ///
    /// # Panics
    /// If the image does not restore.
    pub fn restore<S: StateMachine>(&self, host: &mut Host<S>, now_ms: u64)
    where
        S::RestoreError: std::fmt::Debug,
    {
        let (_, image) = self.durable.as_ref().expect("an installed snapshot is durable before it is restored");
        host.restore_snapshot(now_ms, &mut image.as_slice()).expect("the installed image restores");
    }

    /// Executes `write` if it is a snapshot write; returns whether it was.
    ///
    /// # Panics
    /// If the write breaks the contract (a chunk out of order, a save of an
    /// image that was never staged or received).
    pub fn write(&mut self, write: &Write) -> bool {
        match write {
            Write::SnapshotChunk { last_index, last_term, offset, data } => {
                if *offset == 0 {
                    self.incoming = Some((*last_index, *last_term, Vec::new()));
                }
                let (index, term, bytes) = self.incoming.as_mut().expect("a transfer starts at offset 0");
                assert_eq!((*index, *term), (*last_index, *last_term), "chunks of one snapshot");
                assert_eq!(bytes.len() as u64, *offset, "chunks arrive in order");
                bytes.extend_from_slice(data);
            }
            Write::SaveSnapshot { meta, origin: SnapshotOrigin::Taken } => {
                let image = self.staged.remove(&meta.last_index).expect("a taken snapshot was staged");
                self.staged.retain(|&index, _| index > meta.last_index);
                self.save(meta, image);
            }
            Write::SaveSnapshot { meta, origin: SnapshotOrigin::Installed } => {
                let (index, term, image) = self.incoming.take().expect("an installed snapshot was received");
                assert_eq!((index, term), (meta.last_index, meta.last_term), "the image received is the one saved");
                self.save(meta, image);
            }
            _ => return false,
        }
        true
    }

    fn save(&mut self, meta: &SnapshotMeta, image: Vec<u8>) {
        assert_eq!(image.len() as u64, meta.size_bytes, "the image is as long as its metadata says");
        self.durable = Some((meta.clone(), Arc::new(image)));
    }

    /// Answers [`crate::Output::SendSnapshotChunk`]: the message to send, or
    /// `None` if the durable snapshot is another one.
    pub fn chunk(&self, chunk: SnapshotChunkToSend) -> Option<Message> {
        let (meta, image) = self.durable.as_ref()?;
        if meta.last_index != chunk.last_index() {
            return None;
        }
        chunk.cut_from(image)
    }

    /// The durable snapshot's metadata and image (shared, not copied).
    pub fn durable(&self) -> Option<(&SnapshotMeta, Arc<Vec<u8>>)> {
        self.durable.as_ref().map(|(meta, image)| (meta, Arc::clone(image)))
    }

    /// The process died: staged and incoming images are gone (a file-backed
    /// store deletes them at start).
    pub fn crash(&mut self) {
        self.staged.clear();
        self.incoming = None;
    }
}
