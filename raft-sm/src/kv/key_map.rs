//! The store's keys: point lookups by hash, byte order for ranges and
//! snapshots.
//!
//! A put or a get of one key is the hot path of every replica. A hash probe
//! costs one or two cache misses; a B-tree descent over 10,000 keys touched a
//! few cache lines at each of its four or five levels, and was a third of a
//! follower's apply time under load. So each record lives in a hash map, and
//! an ordered set of the same keys serves ranges and snapshots, which look
//! every key they walk up in the map.
//!
//! The hash map's hasher is seeded per process: it is never iterated where
//! the order could be seen (every walk goes through `order`), so replicas stay
//! deterministic.

use compact_str::CompactString;
use hashbrown::HashMap;
use std::collections::BTreeSet;
use std::fmt;
use std::ops::Bound;

/// Keys (inline up to 24 bytes) to records, in byte order.
#[derive(Clone)]
pub(crate) struct KeyMap<V> {
    records: HashMap<CompactString, V>,
    order: BTreeSet<CompactString>,
}

impl<V> Default for KeyMap<V> {
    fn default() -> Self {
        KeyMap { records: HashMap::new(), order: BTreeSet::new() }
    }
}

impl<V> KeyMap<V> {
    pub(crate) fn len(&self) -> usize {
        debug_assert_eq!(self.records.len(), self.order.len());
        self.records.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    pub(crate) fn get(&self, key: &str) -> Option<&V> {
        self.records.get(key)
    }

    pub(crate) fn get_mut(&mut self, key: &str) -> Option<&mut V> {
        self.records.get_mut(key)
    }

    /// Adds a key that is not in the map.
    pub(crate) fn insert_new(&mut self, key: &str, record: V) {
        let key = CompactString::from(key);
        let fresh = self.order.insert(key.clone());
        assert!(fresh, "insert_new of a key already present");
        self.records.insert(key, record);
    }

    pub(crate) fn remove(&mut self, key: &str) -> Option<V> {
        let record = self.records.remove(key)?;
        let was_ordered = self.order.remove(key);
        debug_assert!(was_ordered, "every record's key is in the order");
        Some(record)
    }

    /// The keys `>= start`, in byte order, with their records.
    pub(crate) fn range_from<'a>(&'a self, start: &str) -> impl Iterator<Item = (&'a str, &'a V)> + 'a {
        self.order.range::<str, _>((Bound::Included(start), Bound::Unbounded)).map(|key| self.entry(key))
    }

    /// Every key in byte order, with its record.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&str, &V)> + '_ {
        self.order.iter().map(|key| self.entry(key))
    }

    fn entry<'a>(&'a self, key: &'a CompactString) -> (&'a str, &'a V) {
        (key.as_str(), self.records.get(key.as_str()).expect("every ordered key has a record"))
    }
}

impl<V: fmt::Debug> fmt::Debug for KeyMap<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::KeyMap;

    #[test]
    fn walks_are_in_byte_order_whatever_the_insertion_order() {
        let mut map = KeyMap::default();
        for key in ["b", "a", "ab", "c", "a-very-long-key-that-does-not-fit-inline-at-all"] {
            map.insert_new(key, key.len());
        }
        let keys: Vec<&str> = map.iter().map(|(key, _)| key).collect();
        assert_eq!(keys, ["a", "a-very-long-key-that-does-not-fit-inline-at-all", "ab", "b", "c"]);
        let from_ab: Vec<&str> = map.range_from("ab").map(|(key, _)| key).collect();
        assert_eq!(from_ab, ["ab", "b", "c"]);
        assert_eq!(map.remove("ab"), Some(2));
        assert_eq!(map.remove("ab"), None);
        let from_aa: Vec<(&str, usize)> = map.range_from("aa").map(|(key, len)| (key, *len)).collect();
        assert_eq!(from_aa, [("b", 1), ("c", 1)]);
        assert_eq!(map.len(), 4);
        *map.get_mut("c").expect("present") = 9;
        assert_eq!(map.get("c"), Some(&9));
    }

    #[test]
    #[should_panic(expected = "already present")]
    fn a_key_is_inserted_once() {
        let mut map = KeyMap::default();
        map.insert_new("k", 1);
        map.insert_new("k", 2);
    }
}
