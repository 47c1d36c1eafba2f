//! Which client operations a run keeps (`--keep-ops`, for shrinking): client
//! operations are numbered per client from 1 in the order that client would
//! begin them; a left-out one is skipped (the client moves on to its next
//! number a millisecond later), and a client with nothing kept after its
//! current number stops. Written as comma-separated items: `C` (every operation
//! of client C), `C.N` (its N-th), `C.N-M` (its N-th to M-th); `none` keeps none.

use std::collections::BTreeMap;
use std::fmt;

/// Kept operations: per client id, ranges of operation numbers (inclusive, sorted, disjoint).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OpList {
    ranges: BTreeMap<u64, Vec<(u64, u64)>>,
}

impl OpList {
    /// Keeps exactly these (client id, operation number) pairs.
    pub fn from_ops(ops: impl IntoIterator<Item = (u64, u64)>) -> OpList {
        let mut sorted: Vec<(u64, u64)> = ops.into_iter().collect();
        sorted.sort_unstable();
        sorted.dedup();
        let mut list = OpList::default();
        for (client, number) in sorted {
            let ranges = list.ranges.entry(client).or_default();
            match ranges.last_mut() {
                Some((_, last)) if *last + 1 == number => *last = number,
                _ => ranges.push((number, number)),
            }
        }
        list
    }

    /// Keeps every operation of these clients.
    pub fn all_of(clients: impl IntoIterator<Item = u64>) -> OpList {
        OpList { ranges: clients.into_iter().map(|client| (client, vec![(1, u64::MAX)])).collect() }
    }

    /// The part of `list` that belongs to `clients`.
    pub fn from_ranges_of(list: &OpList, clients: &[u64]) -> OpList {
        let ranges = list.ranges.iter().filter(|(client, _)| clients.contains(client));
        OpList { ranges: ranges.map(|(&client, ranges)| (client, ranges.clone())).collect() }
    }

    /// Whether operation `number` of client `client` is kept.
    pub fn contains(&self, client: u64, number: u64) -> bool {
        self.ranges.get(&client).is_some_and(|ranges| ranges.iter().any(|&(a, b)| a <= number && number <= b))
    }

    /// Whether any operation of `client` numbered above `number` is kept.
    pub fn any_after(&self, client: u64, number: u64) -> bool {
        self.ranges.get(&client).is_some_and(|ranges| ranges.iter().any(|&(_, b)| b > number))
    }

    /// The clients with a kept operation.
    pub fn clients(&self) -> Vec<u64> {
        self.ranges.iter().filter(|(_, ranges)| !ranges.is_empty()).map(|(&client, _)| client).collect()
    }

    /// Parses the command-line form (see the module docs).
    pub fn parse(text: &str) -> Result<OpList, String> {
        let mut list = OpList::default();
        if text.trim() == "none" {
            return Ok(list);
        }
        let number = |part: &str| crate::cli::parse_number(part.trim());
        for item in text.split(',') {
            let (client, range) = match item.split_once('.') {
                None => (number(item)?, (1, u64::MAX)),
                Some((client, range)) => {
                    let (first, last) = match range.split_once('-') {
                        Some((first, last)) => (number(first)?, number(last)?),
                        None => (number(range)?, number(range)?),
                    };
                    if first == 0 || first > last {
                        return Err(format!("{item:?}: operations are numbered from 1, first <= last"));
                    }
                    (number(client)?, (first, last))
                }
            };
            list.ranges.entry(client).or_default().push(range);
        }
        for ranges in list.ranges.values_mut() {
            ranges.sort_unstable();
            let mut merged: Vec<(u64, u64)> = Vec::new();
            for (first, last) in ranges.drain(..) {
                match merged.last_mut() {
                    Some((_, end)) if first <= end.saturating_add(1) => *end = (*end).max(last),
                    _ => merged.push((first, last)),
                }
            }
            *ranges = merged;
        }
        Ok(list)
    }
}

impl fmt::Display for OpList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut items = Vec::new();
        for (client, ranges) in &self.ranges {
            for &(first, last) in ranges {
                items.push(match (first, last) {
                    (1, u64::MAX) => client.to_string(),
                    (first, last) if first == last => format!("{client}.{first}"),
                    (first, last) => format!("{client}.{first}-{last}"),
                });
            }
        }
        if items.is_empty() {
            return f.write_str("none");
        }
        f.write_str(&items.join(","))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_print_and_parse_back() {
        let list = OpList::from_ops([(1, 1), (1, 2), (1, 3), (1, 7), (3, 2)]);
        assert_eq!(list.to_string(), "1.1-3,1.7,3.2");
        assert_eq!(OpList::parse("1.1-3,1.7,3.2").unwrap(), list);
        assert!(list.contains(1, 2) && !list.contains(1, 4) && !list.contains(2, 1));
        assert!(list.any_after(1, 3) && !list.any_after(1, 7) && !list.any_after(2, 0));
        let all = OpList::all_of([2, 4]);
        assert_eq!(all.to_string(), "2,4");
        assert_eq!(OpList::parse("2,4").unwrap(), all);
        assert!(all.contains(4, 1_000_000));
        assert_eq!(OpList::parse("none").unwrap().to_string(), "none");
    }

    #[test]
    fn bad_lists_say_why() {
        assert!(OpList::parse("1.0").unwrap_err().contains("numbered from 1"));
        assert!(OpList::parse("1.5-2").unwrap_err().contains("first <= last"));
        assert!(OpList::parse("x").unwrap_err().contains("not a decimal"));
    }
}
