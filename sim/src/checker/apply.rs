//! State-machine safety (Raft §5.4.3): if any node applied an entry at an
//! index, no node ever applies a different entry there (across restarts too).
//! In-order, exactly-once application per store is enforced where entries are
//! applied (`node_host`).

use super::by_index::ByIndex;
use super::log::EntryDigest;
use super::{Step, Violation};
use raft_sm::{Entry, LogIndex, NodeId, Term};
use std::collections::BTreeMap;

/// The first entry applied at every index, and by whom; the digest of the
/// store's image at every index a snapshot was taken or installed at.
#[derive(Default)]
pub struct ApplyChecker {
    applied: ByIndex<(Term, u64, NodeId, Step)>,
    images: BTreeMap<LogIndex, (u64, NodeId)>,
}

impl ApplyChecker {
    /// Records that `node` applied `entry` at `step`; a violation comes with
    /// the node that applied the other entry first.
    pub fn observe(&mut self, node: NodeId, entry: &Entry, step: Step) -> Result<(), (Violation, NodeId)> {
        self.observe_digest(node, EntryDigest::of(entry), step)
    }

    /// [`ApplyChecker::observe`] of the entry's digest.
    pub fn observe_digest(&mut self, node: NodeId, entry: EntryDigest, step: Step) -> Result<(), (Violation, NodeId)> {
        let hash = entry.hash;
        match self.applied.get(entry.index) {
            None => {
                self.applied.insert(entry.index, (entry.term, hash, node, step));
                Ok(())
            }
            Some(&(term, seen_hash, first, first_step)) if term != entry.term || seen_hash != hash => Err((
                Violation::new(
                    "state machine safety",
                    format!(
                        "{node} applied ({}, {}) at {step} but {first} applied a different entry ({}, {term}) \
                         there at {first_step}",
                        entry.index, entry.term, entry.index
                    ),
                ),
                first,
            )),
            Some(_) => Ok(()),
        }
    }

    /// `node`'s store serialized to `digest` at `index` (it took a snapshot, or
    /// installed one). Stores that applied the same log are equal, so every image
    /// at one index is the same bytes (this catches a snapshot corrupted in
    /// chunked transfer or restored wrongly).
    pub fn observe_store_image(&mut self, node: NodeId, index: LogIndex, digest: u64) -> Result<(), Violation> {
        match self.images.get(&index) {
            None => {
                self.images.insert(index, (digest, node));
                Ok(())
            }
            Some(&(seen, first)) if seen != digest => Err(Violation::new(
                "state machine safety",
                format!("{node}'s store image at {index} differs from {first}'s ({digest:#x} vs {seen:#x})"),
            )),
            Some(_) => Ok(()),
        }
    }

    /// The highest index any node applied.
    pub fn applied_max(&self) -> LogIndex {
        self.applied.last_index()
    }
}
