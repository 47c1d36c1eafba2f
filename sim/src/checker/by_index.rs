//! A map keyed by log index, stored densely: the checkers record something at
//! almost every index from 1 up, once or more per step, so a `Vec` slot per
//! index replaces a B-tree descent with one bounds check.

use raft_sm::LogIndex;

/// Values by log index (index 0 is never stored).
#[derive(Clone, Debug)]
pub struct ByIndex<V> {
    /// `slots[i]` is the value at index `i + 1`; the last slot is always set.
    slots: Vec<Option<V>>,
}

impl<V> Default for ByIndex<V> {
    fn default() -> Self {
        ByIndex { slots: Vec::new() }
    }
}

impl<V> ByIndex<V> {
    fn slot(index: LogIndex) -> usize {
        assert!(index.0 > 0, "index 0 holds no entry");
        usize::try_from(index.0 - 1).expect("a log index fits in memory")
    }

    /// The value at `index`.
    pub fn get(&self, index: LogIndex) -> Option<&V> {
        self.slots.get(Self::slot(index)).and_then(Option::as_ref)
    }

    /// The value at `index`, to change it.
    pub fn get_mut(&mut self, index: LogIndex) -> Option<&mut V> {
        self.slots.get_mut(Self::slot(index)).and_then(Option::as_mut)
    }

    /// Whether a value is at `index`.
    pub fn contains(&self, index: LogIndex) -> bool {
        self.get(index).is_some()
    }

    /// Sets the value at `index`.
    pub fn insert(&mut self, index: LogIndex, value: V) {
        let slot = Self::slot(index);
        if self.slots.len() <= slot {
            self.slots.resize_with(slot + 1, || None);
        }
        self.slots[slot] = Some(value);
    }

    /// The highest index with a value (0 if none).
    pub fn last_index(&self) -> LogIndex {
        LogIndex(self.slots.len() as u64)
    }

    /// The values from the highest index down, with their indexes.
    pub fn iter_rev(&self) -> impl Iterator<Item = (LogIndex, &V)> {
        self.slots
            .iter()
            .enumerate()
            .rev()
            .filter_map(|(slot, value)| value.as_ref().map(|value| (LogIndex(slot as u64 + 1), value)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sparse_inserts_read_back_and_iterate_from_the_top() {
        let mut map = ByIndex::default();
        assert_eq!(map.last_index(), LogIndex(0));
        map.insert(LogIndex(3), "c");
        map.insert(LogIndex(1), "a");
        assert_eq!(map.get(LogIndex(2)), None);
        assert!(map.contains(LogIndex(1)) && !map.contains(LogIndex(7)));
        *map.get_mut(LogIndex(3)).unwrap() = "C";
        assert_eq!(map.last_index(), LogIndex(3));
        let all: Vec<_> = map.iter_rev().collect();
        assert_eq!(all, vec![(LogIndex(3), &"C"), (LogIndex(1), &"a")]);
    }
}
