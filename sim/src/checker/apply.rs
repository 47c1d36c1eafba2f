//! State-machine safety (Raft §5.4.3): if any node applied an entry at an
//! index, no node ever applies a different entry there (across restarts too).
//! In-order, exactly-once application per store is enforced where entries are
//! applied (`node_host`).

use super::log::payload_hash;
use super::Violation;
use raft_sm::{Entry, LogIndex, NodeId, Term};
use std::collections::BTreeMap;

/// The first entry applied at every index, and by whom.
#[derive(Default)]
pub struct ApplyChecker {
    applied: BTreeMap<LogIndex, (Term, u64, NodeId)>,
}

impl ApplyChecker {
    /// Records that `node` applied `entry`.
    pub fn observe(&mut self, node: NodeId, entry: &Entry) -> Result<(), Violation> {
        let hash = payload_hash(&entry.payload);
        match self.applied.get(&entry.index) {
            None => {
                self.applied.insert(entry.index, (entry.term, hash, node));
                Ok(())
            }
            Some(&(term, seen_hash, first)) if term != entry.term || seen_hash != hash => Err(Violation::new(
                "state machine safety",
                format!(
                    "{node} applied ({}, {}) but {first} applied a different entry ({}, {term}) there",
                    entry.index, entry.term, entry.index
                ),
            )),
            Some(_) => Ok(()),
        }
    }

    /// The highest index any node applied.
    pub fn applied_max(&self) -> LogIndex {
        self.applied.keys().next_back().copied().unwrap_or_default()
    }
}
