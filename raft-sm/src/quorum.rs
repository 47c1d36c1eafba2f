//! Pure majority arithmetic: vote counting and the committed index of a set of
//! match indexes.

use crate::types::{LogIndex, NodeId};
use std::collections::BTreeMap;

/// The state of an election.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum VoteResult {
    Pending,
    Won,
    Lost,
}

/// Votes received in one election, one per voter: a duplicated reply is not a second vote.
#[derive(Clone, Debug, Default)]
pub(crate) struct VoteTracker {
    votes: BTreeMap<NodeId, bool>,
}

impl VoteTracker {
    /// Records `voter`'s answer; a voter's first answer stands.
    pub(crate) fn record(&mut self, voter: NodeId, granted: bool) {
        self.votes.entry(voter).or_insert(granted);
    }

    pub(crate) fn granted(&self) -> usize {
        self.votes.values().filter(|&&granted| granted).count()
    }

    pub(crate) fn result(&self, voters: &[NodeId]) -> VoteResult {
        let quorum = voters.len() / 2 + 1;
        let granted = voters.iter().filter(|v| self.votes.get(v) == Some(&true)).count();
        let rejected = voters.iter().filter(|v| self.votes.get(v) == Some(&false)).count();
        if granted >= quorum {
            VoteResult::Won
        } else if rejected >= quorum {
            VoteResult::Lost
        } else {
            VoteResult::Pending
        }
    }
}

/// The highest index that a majority of `match_indexes` has reached.
pub(crate) fn committed_index(mut match_indexes: Vec<LogIndex>) -> LogIndex {
    assert!(!match_indexes.is_empty(), "a cluster has at least one voter");
    match_indexes.sort_unstable_by(|a, b| b.cmp(a));
    match_indexes[match_indexes.len() / 2]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(n: u64) -> Vec<NodeId> {
        (1..=n).map(NodeId).collect()
    }

    #[test]
    fn a_duplicated_grant_is_one_vote() {
        let mut votes = VoteTracker::default();
        votes.record(NodeId(1), true);
        votes.record(NodeId(2), true);
        votes.record(NodeId(2), true);
        assert_eq!(votes.result(&ids(5)), VoteResult::Pending);
        votes.record(NodeId(3), false);
        votes.record(NodeId(3), true);
        assert_eq!(votes.granted(), 2, "the first answer of voter 3 stands");
        votes.record(NodeId(4), true);
        assert_eq!(votes.result(&ids(5)), VoteResult::Won);
    }

    #[test]
    fn a_majority_of_rejections_loses() {
        let mut votes = VoteTracker::default();
        votes.record(NodeId(1), true);
        votes.record(NodeId(2), false);
        votes.record(NodeId(3), false);
        assert_eq!(votes.result(&ids(3)), VoteResult::Lost);
    }

    #[test]
    fn committed_index_is_the_majority_median() {
        let at = |v: &[u64]| committed_index(v.iter().map(|&i| LogIndex(i)).collect());
        assert_eq!(at(&[12, 5, 0]), LogIndex(5));
        assert_eq!(at(&[7]), LogIndex(7));
        assert_eq!(at(&[3, 9, 9, 1, 2]), LogIndex(3));
        assert_eq!(at(&[4, 4, 1, 1]), LogIndex(1), "four voters need three");
    }
}
