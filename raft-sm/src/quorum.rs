//! Quorums, pure: who must agree for an index to commit, a read round to be
//! confirmed, an election to be won or a leader to be live. Nothing else in the
//! core counts to a majority; commit, reads, elections and CheckQuorum all ask a
//! [`JointConfig`].
//!
//! The model is etcd raft's `quorum` package: a [`MajorityConfig`] is a set of
//! voters and answers by simple majority; a [`JointConfig`] is two of them (the
//! incoming and the outgoing configuration of a membership change, Raft thesis
//! §4.3) and needs both. Outside a change the outgoing half is empty and a joint
//! configuration decides exactly as its incoming majority, so membership changes
//! can start using the joint form without touching the callers.

use crate::types::NodeId;
use std::collections::BTreeMap;

/// The state of an election (or of any yes/no poll of the voters).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum VoteResult {
    /// Neither outcome is decided yet: enough voters have not answered.
    Pending,
    /// A majority (of each half, when joint) said yes.
    Won,
    /// Enough voters said no that a majority can no longer say yes.
    Lost,
}

/// A set of voters deciding by simple majority. Duplicates are merged; an
/// empty set has no majority (nothing commits, no vote is won).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct MajorityConfig {
    /// Sorted, without duplicates.
    voters: Vec<NodeId>,
}

impl MajorityConfig {
    pub(crate) fn new(voters: impl IntoIterator<Item = NodeId>) -> MajorityConfig {
        let mut voters: Vec<NodeId> = voters.into_iter().collect();
        voters.sort_unstable();
        voters.dedup();
        MajorityConfig { voters }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.voters.is_empty()
    }

    /// How many voters make a majority.
    fn majority(&self) -> usize {
        self.voters.len() / 2 + 1
    }

    /// The highest value a majority of the voters has acknowledged: an index is
    /// committed once a majority holds it (Raft §5.3), a read round confirmed once
    /// a majority echoed it (thesis §6.4). `acked` gives each voter's value, `None`
    /// for one that acknowledged nothing. `None` when no majority acknowledged
    /// anything (or the set is empty).
    pub(crate) fn committed_index<T: Ord + Copy>(&self, acked: impl Fn(NodeId) -> Option<T>) -> Option<T> {
        let mut values: Vec<T> = self.voters.iter().filter_map(|&voter| acked(voter)).collect();
        let majority = self.majority();
        if values.len() < majority {
            return None;
        }
        // The `majority`-th highest value is held by `majority` voters.
        values.sort_unstable_by(|a, b| b.cmp(a));
        Some(values[majority - 1])
    }

    /// Counts `votes` (one answer per voter by construction; answers of nodes
    /// outside the set never count).
    pub(crate) fn vote_result(&self, votes: &BTreeMap<NodeId, bool>) -> VoteResult {
        let (mut granted, mut rejected) = (0, 0);
        for voter in &self.voters {
            match votes.get(voter) {
                Some(true) => granted += 1,
                Some(false) => rejected += 1,
                None => {}
            }
        }
        let majority = self.majority();
        if self.voters.is_empty() {
            VoteResult::Pending
        } else if granted >= majority {
            VoteResult::Won
        } else if rejected >= majority {
            VoteResult::Lost
        } else {
            VoteResult::Pending
        }
    }
}

/// The voters as the core asks them: one majority, or while a membership change
/// is joint, two majorities that must both agree (thesis §4.3).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct JointConfig {
    incoming: MajorityConfig,
    /// Empty unless a membership change is in its joint phase.
    outgoing: MajorityConfig,
}

impl JointConfig {
    /// A plain (not joint) configuration of `voters`.
    pub(crate) fn majority(voters: impl IntoIterator<Item = NodeId>) -> JointConfig {
        JointConfig { incoming: MajorityConfig::new(voters), outgoing: MajorityConfig::default() }
    }

    /// A joint configuration during a change from `outgoing` to `incoming`
    /// (built from the log's configuration by `membership.rs`).
    pub(crate) fn joint(
        incoming: impl IntoIterator<Item = NodeId>,
        outgoing: impl IntoIterator<Item = NodeId>,
    ) -> JointConfig {
        JointConfig { incoming: MajorityConfig::new(incoming), outgoing: MajorityConfig::new(outgoing) }
    }

    /// The highest value acknowledged by a majority of each half (see
    /// [`MajorityConfig::committed_index`]).
    pub(crate) fn committed_index<T: Ord + Copy>(&self, acked: impl Fn(NodeId) -> Option<T>) -> Option<T> {
        let incoming = self.incoming.committed_index(&acked);
        if self.outgoing.is_empty() {
            return incoming;
        }
        Some(incoming?.min(self.outgoing.committed_index(&acked)?))
    }

    /// Whether `id` alone is a majority of each half (a single-voter cluster):
    /// then nothing needs a round trip to be committed or confirmed.
    pub(crate) fn is_quorum_alone(&self, id: NodeId) -> bool {
        self.committed_index(|voter| (voter == id).then_some(())).is_some()
    }

    /// Won when both halves won, lost when either lost, pending otherwise.
    pub(crate) fn vote_result(&self, votes: &BTreeMap<NodeId, bool>) -> VoteResult {
        let incoming = self.incoming.vote_result(votes);
        if self.outgoing.is_empty() {
            return incoming;
        }
        match (incoming, self.outgoing.vote_result(votes)) {
            (VoteResult::Won, VoteResult::Won) => VoteResult::Won,
            (VoteResult::Lost, _) | (_, VoteResult::Lost) => VoteResult::Lost,
            _ => VoteResult::Pending,
        }
    }
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

    /// How many answers were grants.
    pub(crate) fn granted(&self) -> usize {
        self.votes.values().filter(|&&granted| granted).count()
    }

    /// Every answer, by voter.
    pub(crate) fn votes(&self) -> &BTreeMap<NodeId, bool> {
        &self.votes
    }
}

#[cfg(test)]
mod tests {
    //! Table-driven, after etcd's quorum/testdata: one case per line,
    //!
    //! ```text
    //! committed voters=(1,2,3) [outgoing=(3,4,5)] acked=(12,5,_) [others=(9:40)] -> 5
    //! vote      voters=(1,2,3) [outgoing=(3,4,5)] votes=(y,n,_)  [others=(9:y)]  -> pending
    //! ```
    //!
    //! `acked`/`votes` go, in order, to the voters then to the outgoing voters not
    //! already listed; `_` is no answer. `others` are answers of non-members.
    //! `-> _` means nothing is committed.

    use super::*;
    use crate::types::LogIndex;

    const COMMITTED: &str = "
        # A single voter commits what it holds.
        committed voters=(1) acked=(_) -> _
        committed voters=(1) acked=(7) -> 7
        # Three voters need two.
        committed voters=(1,2,3) acked=(12,5,_) -> 5
        committed voters=(1,2,3) acked=(12,_,_) -> _
        committed voters=(1,2,3) acked=(_,5,12) -> 5
        committed voters=(1,2,3) acked=(0,0,0) -> 0
        committed voters=(1,2,3) acked=(9,9,9) -> 9
        # Four voters need three: the median is not enough.
        committed voters=(1,2,3,4) acked=(4,4,1,1) -> 1
        committed voters=(1,2,3,4) acked=(4,4,_,_) -> _
        committed voters=(1,2,3,4) acked=(4,4,3,_) -> 3
        committed voters=(1,2,3,4,5) acked=(3,9,9,1,2) -> 3
        # Non-members never count, however far ahead they are.
        committed voters=(1,2,3) acked=(12,_,_) others=(9:40,8:40) -> _
        committed voters=(1,2,3) acked=(12,5,_) others=(9:40) -> 5
        # A duplicated voter is one voter.
        committed voters=(1,1,2) acked=(7,_) -> _
        committed voters=(1,1,2) acked=(7,6) -> 6
        # Joint: both majorities must hold it; the lower one decides.
        committed voters=(1) outgoing=(2) acked=(_,_) -> _
        committed voters=(1) outgoing=(2) acked=(100,_) -> _
        committed voters=(1) outgoing=(2) acked=(13,100) -> 13
        committed voters=(1,2,3) outgoing=(4,5,6) acked=(10,10,10,_,_,3) -> _
        committed voters=(1,2,3) outgoing=(4,5,6) acked=(10,10,10,3,4,_) -> 3
        committed voters=(1,2,3) outgoing=(4,5,6) acked=(1,10,10,20,20,2) -> 10
        # Overlapping halves: voter 3 counts in both.
        committed voters=(1,2,3) outgoing=(3,4,5) acked=(8,_,8,_,_) -> _
        committed voters=(1,2,3) outgoing=(3,4,5) acked=(8,_,8,7,_) -> 7
        committed voters=(1,2,3) outgoing=(3,4,5) acked=(8,_,8,9,_) -> 8
        # An empty set has no majority.
        committed voters=() acked=() -> _
    ";

    const VOTES: &str = "
        vote voters=(1) votes=(_) -> pending
        vote voters=(1) votes=(y) -> won
        vote voters=(1) votes=(n) -> lost
        vote voters=(1,2,3) votes=(y,_,_) -> pending
        vote voters=(1,2,3) votes=(y,y,_) -> won
        vote voters=(1,2,3) votes=(y,n,_) -> pending
        vote voters=(1,2,3) votes=(y,n,n) -> lost
        vote voters=(1,2,3) votes=(_,n,n) -> lost
        # Four voters: two grants are not enough, two rejections not a loss.
        vote voters=(1,2,3,4) votes=(y,y,n,n) -> pending
        vote voters=(1,2,3,4) votes=(y,y,y,n) -> won
        vote voters=(1,2,3,4) votes=(y,n,n,n) -> lost
        vote voters=(1,2,3,4,5) votes=(y,y,n,n,_) -> pending
        # Strangers' grants never count.
        vote voters=(1,2,3) votes=(y,_,_) others=(9:y,8:y,7:y) -> pending
        vote voters=(1,2,3) votes=(y,_,_) others=(9:n,8:n) -> pending
        # Joint: won only if both won, lost if either lost.
        vote voters=(1) outgoing=(2) votes=(y,_) -> pending
        vote voters=(1) outgoing=(2) votes=(y,y) -> won
        vote voters=(1) outgoing=(2) votes=(y,n) -> lost
        vote voters=(1) outgoing=(2) votes=(_,n) -> lost
        vote voters=(1,2,3) outgoing=(4,5,6) votes=(y,y,_,y,_,_) -> pending
        vote voters=(1,2,3) outgoing=(4,5,6) votes=(y,y,_,y,y,_) -> won
        vote voters=(1,2,3) outgoing=(4,5,6) votes=(y,y,y,n,n,_) -> lost
        vote voters=(1,2,3) outgoing=(3,4,5) votes=(_,y,y,y,_) -> won
        vote voters=(1,2,3) outgoing=(3,4,5) votes=(y,y,n,n,_) -> lost
        vote voters=() votes=() -> pending
    ";

    /// One parsed line: the configuration, the answers by node, the expected result.
    struct Case<'a> {
        config: JointConfig,
        answers: BTreeMap<NodeId, &'a str>,
        expected: &'a str,
    }

    fn ids(list: &str) -> Vec<NodeId> {
        list.split(',').filter(|id| !id.is_empty()).map(|id| NodeId(id.parse().expect("a node id"))).collect()
    }

    fn parse(line: &str) -> Case<'_> {
        let (input, expected) = line.split_once(" -> ").expect("`-> expected` at the end");
        let mut fields: BTreeMap<&str, &str> = BTreeMap::new();
        for word in input.split_whitespace().skip(1) {
            let (key, value) = word.split_once('=').expect("key=value");
            let list = value.strip_prefix('(').and_then(|v| v.strip_suffix(')')).expect("a (list)");
            fields.insert(key, list);
        }
        let voters = ids(fields["voters"]);
        let outgoing = fields.get("outgoing").map(|list| ids(list)).unwrap_or_default();
        let mut members: Vec<NodeId> = Vec::new();
        for id in voters.iter().chain(&outgoing) {
            if !members.contains(id) {
                members.push(*id);
            }
        }
        let positional = fields.get("acked").or(fields.get("votes")).expect("acked=(..) or votes=(..)");
        let values: Vec<&str> = positional.split(',').filter(|v| !v.is_empty()).collect();
        assert_eq!(values.len(), members.len(), "one answer (or `_`) per member in `{line}`");
        let mut answers: BTreeMap<NodeId, &str> =
            members.into_iter().zip(values).filter(|(_, value)| *value != "_").collect();
        for pair in fields.get("others").map_or("", |list| list).split(',').filter(|p| !p.is_empty()) {
            let (id, value) = pair.split_once(':').expect("id:value");
            answers.insert(NodeId(id.parse().expect("a node id")), value);
        }
        let config =
            if outgoing.is_empty() { JointConfig::majority(voters) } else { JointConfig::joint(voters, outgoing) };
        Case { config, answers, expected: expected.trim() }
    }

    fn run_table(table: &str, evaluate: impl Fn(&Case<'_>) -> String) {
        let mut failures = Vec::new();
        let mut cases = 0;
        for line in table.lines().map(str::trim).filter(|line| !line.is_empty() && !line.starts_with('#')) {
            let case = parse(line);
            let got = evaluate(&case);
            cases += 1;
            if got != case.expected {
                failures.push(format!("{line}\n    got -> {got}"));
            }
        }
        assert!(cases > 10, "the table parsed");
        assert!(failures.is_empty(), "{} of {cases} cases failed:\n{}", failures.len(), failures.join("\n"));
    }

    #[test]
    fn committed_index_table() {
        run_table(COMMITTED, |case| {
            let acked = |id: NodeId| case.answers.get(&id).map(|value| LogIndex(value.parse().expect("an index")));
            case.config.committed_index(acked).map_or("_".to_string(), |index| index.0.to_string())
        });
    }

    #[test]
    fn vote_result_table() {
        run_table(VOTES, |case| {
            let votes: BTreeMap<NodeId, bool> = case
                .answers
                .iter()
                .map(|(&id, &value)| match value {
                    "y" => (id, true),
                    "n" => (id, false),
                    other => panic!("a vote is y or n, not {other}"),
                })
                .collect();
            format!("{:?}", case.config.vote_result(&votes)).to_lowercase()
        });
    }

    #[test]
    fn a_joint_config_with_no_outgoing_half_is_its_majority() {
        let voters = [NodeId(1), NodeId(2), NodeId(3)];
        let majority = MajorityConfig::new(voters);
        let joint = JointConfig::joint(voters, []);
        assert_eq!(joint, JointConfig::majority(voters));
        let acked = |id: NodeId| (id != NodeId(2)).then_some(id.0 * 10);
        assert_eq!(joint.committed_index(acked), majority.committed_index(acked));
        assert_eq!(joint.committed_index(acked), Some(10));
    }

    #[test]
    fn a_node_is_a_quorum_alone_only_in_a_one_voter_config_of_each_half() {
        let (one, two, three) = (NodeId(1), NodeId(2), NodeId(3));
        assert!(JointConfig::majority([one]).is_quorum_alone(one));
        assert!(!JointConfig::majority([one]).is_quorum_alone(two), "not a member");
        assert!(!JointConfig::majority([one, two]).is_quorum_alone(one));
        assert!(!JointConfig::joint([one], [one, two, three]).is_quorum_alone(one), "the outgoing half needs more");
        assert!(JointConfig::joint([one], [one]).is_quorum_alone(one));
    }

    #[test]
    fn a_duplicated_grant_is_one_vote() {
        let config = JointConfig::majority((1..=5).map(NodeId));
        let mut votes = VoteTracker::default();
        votes.record(NodeId(1), true);
        votes.record(NodeId(2), true);
        votes.record(NodeId(2), true);
        assert_eq!(config.vote_result(votes.votes()), VoteResult::Pending);
        votes.record(NodeId(3), false);
        votes.record(NodeId(3), true);
        assert_eq!(votes.granted(), 2, "the first answer of voter 3 stands");
        assert_eq!(config.vote_result(votes.votes()), VoteResult::Pending);
        votes.record(NodeId(4), true);
        assert_eq!(config.vote_result(votes.votes()), VoteResult::Won);
    }
}
