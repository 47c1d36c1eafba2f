//! The in-memory image of the log: a compacted prefix (base index and term, from
//! the latest snapshot) followed by the entries after it.

use crate::types::{Entry, LogIndex, Term};

#[derive(Clone, Debug)]
pub(crate) struct Log {
    /// The last index covered by the snapshot (0 when there is none).
    base_index: LogIndex,
    /// The term at `base_index`.
    base_term: Term,
    /// Entries `base_index + 1 ..= last_index`, contiguous.
    entries: Vec<Entry>,
}

impl Log {
    pub(crate) fn new(base_index: LogIndex, base_term: Term, entries: Vec<Entry>) -> Log {
        for (offset, entry) in entries.iter().enumerate() {
            assert_eq!(entry.index.0, base_index.0 + 1 + offset as u64, "restored log entries must be contiguous");
        }
        for pair in entries.windows(2) {
            assert!(pair[0].term <= pair[1].term, "terms in a log never decrease");
        }
        Log { base_index, base_term, entries }
    }

    pub(crate) fn base_index(&self) -> LogIndex {
        self.base_index
    }

    pub(crate) fn base_term(&self) -> Term {
        self.base_term
    }

    pub(crate) fn last_index(&self) -> LogIndex {
        LogIndex(self.base_index.0 + self.entries.len() as u64)
    }

    pub(crate) fn last_term(&self) -> Term {
        self.entries.last().map_or(self.base_term, |entry| entry.term)
    }

    /// Number of entries held (after the base).
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    fn offset(&self, index: LogIndex) -> Option<usize> {
        if index <= self.base_index || index > self.last_index() {
            return None;
        }
        Some((index.0 - self.base_index.0 - 1) as usize)
    }

    /// The term at `index`, if it is the base or a held entry.
    pub(crate) fn term_at(&self, index: LogIndex) -> Option<Term> {
        if index == self.base_index {
            return Some(self.base_term);
        }
        self.offset(index).map(|offset| self.entries[offset].term)
    }

    pub(crate) fn entry(&self, index: LogIndex) -> Option<&Entry> {
        self.offset(index).map(|offset| &self.entries[offset])
    }

    /// Entries from `from` up to `to` (inclusive), at most `entries_max` of them and
    /// about `bytes_max` bytes (always at least one if any is in range).
    pub(crate) fn slice(&self, from: LogIndex, to: LogIndex, entries_max: usize, bytes_max: usize) -> Vec<Entry> {
        let Some(start) = self.offset(from) else {
            return Vec::new();
        };
        let end = match self.offset(to.min(self.last_index())) {
            Some(end) => end,
            None => return Vec::new(),
        };
        let mut out = Vec::new();
        let mut bytes = 0;
        for entry in &self.entries[start..=end] {
            if out.len() >= entries_max || (!out.is_empty() && bytes + entry.size_bytes() > bytes_max) {
                break;
            }
            bytes += entry.size_bytes();
            out.push(entry.clone());
        }
        out
    }

    pub(crate) fn append(&mut self, entry: Entry) {
        assert_eq!(entry.index, self.last_index().next(), "appends follow the last entry");
        assert!(entry.term >= self.last_term(), "terms in a log never decrease");
        self.entries.push(entry);
    }

    /// Removes every entry with index ≥ `from`; returns how many were removed.
    pub(crate) fn truncate_from(&mut self, from: LogIndex) -> u64 {
        assert!(from > self.base_index, "never truncate into the snapshot");
        let keep = (from.0 - self.base_index.0 - 1) as usize;
        let removed = self.entries.len().saturating_sub(keep);
        self.entries.truncate(keep);
        removed as u64
    }

    /// Drops entries up to `up_to` (inclusive), which becomes the base.
    pub(crate) fn compact_to(&mut self, up_to: LogIndex) {
        let term = self.term_at(up_to).expect("compaction point is in the log");
        let drop = (up_to.0 - self.base_index.0) as usize;
        self.entries.drain(..drop);
        self.base_index = up_to;
        self.base_term = term;
    }

    /// Discards every entry; the log continues after (`base_index`, `base_term`).
    pub(crate) fn reset(&mut self, base_index: LogIndex, base_term: Term) {
        self.entries.clear();
        self.base_index = base_index;
        self.base_term = base_term;
    }

    /// The first index held in `term`, searching back from `at` (which has that term).
    pub(crate) fn first_index_of_term(&self, term: Term, at: LogIndex) -> LogIndex {
        let mut index = at;
        while index > self.base_index.next() && self.term_at(index.prev()) == Some(term) {
            index = index.prev();
        }
        index
    }

    /// The last index held with `term`, not after `at`, if any.
    pub(crate) fn last_index_of_term(&self, term: Term, at: LogIndex) -> Option<LogIndex> {
        let mut index = at.min(self.last_index());
        while index > self.base_index {
            match self.term_at(index) {
                Some(t) if t == term => return Some(index),
                Some(t) if t < term => return None,
                _ => index = index.prev(),
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::Payload;

    fn log_with_terms(terms: &[u64]) -> Log {
        let entries = terms
            .iter()
            .enumerate()
            .map(|(i, &t)| Entry { term: Term(t), index: LogIndex(i as u64 + 1), payload: Payload::Noop })
            .collect();
        Log::new(LogIndex(0), Term(0), entries)
    }

    #[test]
    fn terms_and_ranges() {
        let log = log_with_terms(&[1, 1, 2, 2, 2, 4]);
        assert_eq!(log.last_index(), LogIndex(6));
        assert_eq!(log.last_term(), Term(4));
        assert_eq!(log.term_at(LogIndex(0)), Some(Term(0)));
        assert_eq!(log.term_at(LogIndex(7)), None);
        assert_eq!(log.first_index_of_term(Term(2), LogIndex(5)), LogIndex(3));
        assert_eq!(log.last_index_of_term(Term(2), LogIndex(6)), Some(LogIndex(5)));
        assert_eq!(log.last_index_of_term(Term(3), LogIndex(6)), None);
        assert_eq!(log.slice(LogIndex(2), LogIndex(6), 3, usize::MAX).len(), 3);
        assert_eq!(log.slice(LogIndex(2), LogIndex(6), 10, 1).len(), 1, "at least one entry despite the byte limit");
    }

    #[test]
    fn truncate_compact_reset() {
        let mut log = log_with_terms(&[1, 1, 2, 2]);
        assert_eq!(log.truncate_from(LogIndex(3)), 2);
        assert_eq!(log.last_index(), LogIndex(2));
        log.compact_to(LogIndex(2));
        assert_eq!((log.base_index(), log.base_term(), log.len()), (LogIndex(2), Term(1), 0));
        assert_eq!(log.term_at(LogIndex(1)), None);
        log.reset(LogIndex(9), Term(5));
        assert_eq!((log.last_index(), log.last_term()), (LogIndex(9), Term(5)));
    }
}
