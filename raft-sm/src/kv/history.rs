//! The bounded history of changes: what watchers read from and what ranges at
//! a past revision are rebuilt from.
//!
//! Every key a command changes adds one [`WatchEvent`] (a put or a delete, with
//! the key's state before the change). Events are kept in revision order; the
//! window holds at most `events_max` events and `bytes_max` bytes of keys and
//! values. When it is full, the oldest revision's events are dropped together
//! and [`History::compacted_revision`] becomes that revision: a watch must start
//! after it, and a range may be read at it or later. The history is part of
//! the snapshot, so every replica serves the same window.

use super::txn::KeyValue;
use crate::codec::{put_bytes_u32_len, put_u64, ImageWriter, Reader};
use std::collections::VecDeque;
use std::sync::Arc;

/// Default bound on events in the history window.
pub const HISTORY_EVENTS_MAX_DEFAULT: usize = 10_000;

/// Default bound on the bytes of keys and values in the history window.
pub const HISTORY_BYTES_MAX_DEFAULT: usize = 4 << 20;

/// Whether a change put or deleted the key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EventKind {
    /// The key was created or changed.
    Put,
    /// The key was deleted.
    Delete,
}

/// One change to one key, shared: the history window, the command's
/// [`super::Applied`] and every watcher's batch hold the same allocation, so a
/// change is copied once however many read it.
pub type SharedEvent = Arc<WatchEvent>;

/// One change to one key.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct WatchEvent {
    /// Put or delete.
    pub kind: EventKind,
    /// The key after the change (for a delete: the key, an empty value, and
    /// `mod_revision` the delete's revision, as etcd reports it).
    pub kv: KeyValue,
    /// The key before the change (`None`: it did not exist).
    pub prev: Option<KeyValue>,
}

impl WatchEvent {
    /// The revision of the change.
    pub fn revision(&self) -> u64 {
        self.kv.mod_revision
    }

    fn bytes(&self) -> usize {
        let prev = self.prev.as_ref().map_or(0, |kv| kv.key.len() + kv.value.len());
        self.kv.key.len() + self.kv.value.len() + prev + 64
    }
}

/// The window of recent changes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct History {
    events: VecDeque<SharedEvent>,
    bytes: usize,
    /// Events of this revision and older are gone.
    compacted_revision: u64,
    events_max: usize,
    bytes_max: usize,
}

impl Default for History {
    fn default() -> Self {
        History::new(HISTORY_EVENTS_MAX_DEFAULT, HISTORY_BYTES_MAX_DEFAULT)
    }
}

impl History {
    pub(crate) fn new(events_max: usize, bytes_max: usize) -> History {
        assert!(events_max > 0 && bytes_max > 0, "the history window must hold something");
        History { events: VecDeque::new(), bytes: 0, compacted_revision: 0, events_max, bytes_max }
    }

    /// The newest revision whose events were dropped (0: none was).
    pub(crate) fn compacted_revision(&self) -> u64 {
        self.compacted_revision
    }

    /// A history that starts after `revision` (restored from an image that kept none).
    pub(crate) fn starting_after(revision: u64) -> History {
        History { compacted_revision: revision, ..History::default() }
    }

    pub(crate) fn push(&mut self, event: SharedEvent) {
        debug_assert!(self.events.back().is_none_or(|last| last.revision() <= event.revision()));
        self.bytes += event.bytes();
        self.events.push_back(event);
        while self.events.len() > self.events_max || self.bytes > self.bytes_max {
            let revision = self.events.front().expect("over a bound means not empty").revision();
            while self.events.front().is_some_and(|event| event.revision() == revision) {
                let dropped = self.events.pop_front().expect("checked");
                self.bytes -= dropped.bytes();
            }
            self.compacted_revision = revision;
        }
    }

    /// The matching events with revision `>= from`, oldest first: about `limit`
    /// of them, never splitting a revision. Also returns the revision the batch
    /// stopped at when it was cut short (`None`: it holds every matching event
    /// up to the newest).
    pub(crate) fn since(
        &self,
        from: u64,
        mut matches: impl FnMut(&str) -> bool,
        limit: usize,
    ) -> (Vec<SharedEvent>, Option<u64>) {
        let start = self.events.partition_point(|event| event.revision() < from);
        let mut out: Vec<SharedEvent> = Vec::new();
        for event in self.events.range(start..) {
            if out.len() >= limit && out.last().is_some_and(|last| last.revision() != event.revision()) {
                return (out, Some(event.revision()));
            }
            if matches(&event.kv.key) {
                out.push(event.clone());
            }
        }
        (out, None)
    }

    /// Events newer than `revision`, newest first (for rebuilding a past state).
    pub(crate) fn newer_than(&self, revision: u64) -> impl Iterator<Item = &WatchEvent> {
        let start = self.events.partition_point(|event| event.revision() <= revision);
        self.events.range(start..).rev().map(|event| &**event)
    }

    pub(crate) fn encode(&self, image: &mut ImageWriter<'_>) -> std::io::Result<()> {
        let out = image.buf();
        put_u64(out, self.events_max as u64);
        put_u64(out, self.bytes_max as u64);
        put_u64(out, self.compacted_revision);
        put_u64(out, self.events.len() as u64);
        for event in &self.events {
            let out = image.buf();
            out.push(match event.kind {
                EventKind::Put => 0,
                EventKind::Delete => 1,
            });
            encode_kv(out, &event.kv);
            match &event.prev {
                None => out.push(0),
                Some(prev) => {
                    out.push(1);
                    encode_kv(out, prev);
                }
            }
            image.record_done()?;
        }
        Ok(())
    }

    pub(crate) fn decode(reader: &mut Reader<'_>) -> Result<History, &'static str> {
        let events_max = reader.u64()? as usize;
        let bytes_max = reader.u64()? as usize;
        if events_max == 0 || bytes_max == 0 {
            return Err("empty history bounds");
        }
        let mut history = History::new(events_max, bytes_max);
        history.compacted_revision = reader.u64()?;
        let count = reader.u64()?;
        for _ in 0..count {
            let kind = match reader.u8()? {
                0 => EventKind::Put,
                1 => EventKind::Delete,
                _ => return Err("bad event kind"),
            };
            let kv = decode_kv(reader)?;
            let prev = if reader.bool()? { Some(decode_kv(reader)?) } else { None };
            let event = WatchEvent { kind, kv, prev };
            if event.revision() <= history.compacted_revision
                || history.events.back().is_some_and(|last| last.revision() > event.revision())
            {
                return Err("history events out of order");
            }
            history.bytes += event.bytes();
            history.events.push_back(Arc::new(event));
        }
        Ok(history)
    }
}

fn encode_kv(out: &mut Vec<u8>, kv: &KeyValue) {
    put_bytes_u32_len(out, kv.key.as_bytes());
    put_bytes_u32_len(out, kv.value.as_bytes());
    put_u64(out, kv.create_revision);
    put_u64(out, kv.mod_revision);
    put_u64(out, kv.version);
    put_u64(out, kv.lease);
}

fn decode_kv(reader: &mut Reader<'_>) -> Result<KeyValue, &'static str> {
    Ok(KeyValue {
        key: reader.string_u32_len()?,
        value: reader.string_u32_len()?,
        create_revision: reader.u64()?,
        mod_revision: reader.u64()?,
        version: reader.u64()?,
        lease: reader.u64()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(key: &str, revision: u64) -> SharedEvent {
        let kv = KeyValue {
            key: key.into(),
            value: "v".into(),
            create_revision: revision,
            mod_revision: revision,
            version: 1,
            lease: 0,
        };
        Arc::new(WatchEvent { kind: EventKind::Put, kv, prev: None })
    }

    #[test]
    fn the_window_drops_whole_revisions_and_remembers_the_last_dropped() {
        let mut history = History::new(3, 1 << 20);
        for (key, revision) in [("a", 1), ("b", 2), ("c", 2), ("d", 3)] {
            history.push(put(key, revision));
        }
        // 4 events > 3: revision 1 goes.
        assert_eq!(history.compacted_revision(), 1);
        history.push(put("e", 4));
        // Revision 2's two events go together.
        assert_eq!(history.compacted_revision(), 2);
        let keys: Vec<_> = history.since(0, |_| true, 10).0.iter().map(|e| e.kv.key.clone()).collect();
        assert_eq!(keys, vec!["d", "e"]);
    }

    #[test]
    fn a_batch_never_splits_a_revision() {
        let mut history = History::new(10, 1 << 20);
        for (key, revision) in [("a", 1), ("b", 1), ("c", 1), ("d", 2)] {
            history.push(put(key, revision));
        }
        let (batch, cut_at) = history.since(1, |_| true, 1);
        assert_eq!((batch.len(), cut_at), (3, Some(2)));
        assert_eq!(history.since(2, |_| true, 1), (vec![put("d", 2)], None));
        assert_eq!(history.since(1, |key| key == "d", 10).0.len(), 1);
        let rebuilt: Vec<_> = history.newer_than(1).map(|e| e.kv.key.clone()).collect();
        assert_eq!(rebuilt, vec!["d"]);
    }
}
