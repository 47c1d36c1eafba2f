//! Planted bugs, for measuring how well the simulator finds them.
//!
//! Each [`Mutant`] is one classic Raft bug. With the `mutants` cargo feature
//! (off by default; the `raftkv` node never enables it) [`crate::Config`] has a
//! `mutant` field, and the core behaves wrongly in exactly that one way; the
//! bug sites ask [`Node::mutant_is`], which is always `false` without the
//! feature, so a release node cannot carry a mutant at all. `sim mutants`
//! reports how many seeds the simulator needs to catch each one.

use crate::message::Body;
use crate::node::Node;
use crate::types::NodeId;
use std::fmt;

/// One planted bug.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum Mutant {
    /// A leader commits an entry of an earlier term by counting replicas (Raft Figure 8).
    Figure8,
    /// Vote requests and vote grants leave before the term and vote are durable.
    VoteBeforeDurable,
    /// Votes are counted as a number: a duplicated grant counts as a second voter.
    VotesAsNumber,
    /// Vote replies from an earlier term's election are counted in the current one.
    StaleVoteReplies,
    /// A stale append rejection moves the next index back, even below the match index.
    StaleAppendRejections,
    /// A follower resets its election timer on every vote request it rejects and on
    /// every higher term it adopts (the bug once fixed in `become_follower`).
    TimerResetOnRejectedVote,
    /// PreVote and CheckQuorum are off, whatever the configuration says.
    NoPreVoteNoCheckQuorum,
    /// Linearizable reads are served at the commit index without the quorum round.
    ReadsWithoutQuorum,
    /// A new leader serves reads before an entry of its term has committed.
    ReadsBeforeTermCommit,
    /// A driver bug: writes are reported durable before their fsync completes (the
    /// core ignores it; the simulator's driver plants it).
    AckBeforeFsync,
    /// A follower appends without checking the term of the entry before the new ones.
    NoPrevTermCheck,
    /// A follower truncates its log after the previous entry on every append.
    TruncateEveryAppend,
    /// A leader takes every acknowledged match index, even one lower than it had.
    MatchIndexBackwards,
    /// A follower installing a snapshot keeps its log even when the log conflicts
    /// with the snapshot's last entry (InstallSnapshot receiver rule 7 ignored).
    SnapshotRule7Ignored,
    /// A leader accepts a membership change before an entry of its own term has
    /// committed (the single-server change bug of the dissertation).
    MembershipBarrierOff,
    /// The key-value store applies a retried transaction (a compare-and-swap)
    /// again instead of answering it from the client's session.
    CasAppliedTwice,
    /// The key-value store leaves out of its watch history the first change
    /// of each new leader's term: watchers skip an event after a leader change.
    WatchSkipsAfterLeaderChange,
    /// Lease keep-alives do not move the leader's expiry deadline: a lease kept
    /// alive expires one TTL after its grant (or after its leader's term began).
    LeaseKeepAliveIgnored,
    /// A lease revoke deletes the lease but leaves its first key behind
    /// (expiries still delete them all).
    LeaseRevokeLeavesKey,
}

impl Mutant {
    /// Every mutant, in report order.
    pub const ALL: [Mutant; 19] = [
        Mutant::Figure8,
        Mutant::VoteBeforeDurable,
        Mutant::VotesAsNumber,
        Mutant::StaleVoteReplies,
        Mutant::StaleAppendRejections,
        Mutant::TimerResetOnRejectedVote,
        Mutant::NoPreVoteNoCheckQuorum,
        Mutant::ReadsWithoutQuorum,
        Mutant::ReadsBeforeTermCommit,
        Mutant::AckBeforeFsync,
        Mutant::NoPrevTermCheck,
        Mutant::TruncateEveryAppend,
        Mutant::MatchIndexBackwards,
        Mutant::SnapshotRule7Ignored,
        Mutant::MembershipBarrierOff,
        Mutant::CasAppliedTwice,
        Mutant::WatchSkipsAfterLeaderChange,
        Mutant::LeaseKeepAliveIgnored,
        Mutant::LeaseRevokeLeavesKey,
    ];

    /// The command-line name, e.g. `figure8`.
    pub fn name(self) -> &'static str {
        match self {
            Mutant::Figure8 => "figure8",
            Mutant::VoteBeforeDurable => "vote-before-durable",
            Mutant::VotesAsNumber => "votes-as-number",
            Mutant::StaleVoteReplies => "stale-vote-replies",
            Mutant::StaleAppendRejections => "stale-append-rejections",
            Mutant::TimerResetOnRejectedVote => "timer-reset-on-rejected-vote",
            Mutant::NoPreVoteNoCheckQuorum => "no-prevote-no-checkquorum",
            Mutant::ReadsWithoutQuorum => "reads-without-quorum",
            Mutant::ReadsBeforeTermCommit => "reads-before-term-commit",
            Mutant::AckBeforeFsync => "ack-before-fsync",
            Mutant::NoPrevTermCheck => "no-prev-term-check",
            Mutant::TruncateEveryAppend => "truncate-every-append",
            Mutant::MatchIndexBackwards => "match-index-backwards",
            Mutant::SnapshotRule7Ignored => "snapshot-rule7-ignored",
            Mutant::MembershipBarrierOff => "membership-barrier-off",
            Mutant::CasAppliedTwice => "cas-applied-twice",
            Mutant::WatchSkipsAfterLeaderChange => "watch-skips-after-leader-change",
            Mutant::LeaseKeepAliveIgnored => "lease-keepalive-ignored",
            Mutant::LeaseRevokeLeavesKey => "lease-revoke-leaves-key",
        }
    }

    /// Parses a command-line name.
    pub fn parse(text: &str) -> Option<Mutant> {
        Mutant::ALL.into_iter().find(|mutant| mutant.name() == text)
    }

    /// Whether the bug is in the driver rather than the core.
    pub fn is_driver_bug(self) -> bool {
        self == Mutant::AckBeforeFsync
    }

    /// Whether the bug is in the key-value state machine (the driver builds
    /// its store with [`crate::kv::KvStore::with_mutant`]).
    pub fn is_state_machine_bug(self) -> bool {
        matches!(
            self,
            Mutant::CasAppliedTwice
                | Mutant::WatchSkipsAfterLeaderChange
                | Mutant::LeaseKeepAliveIgnored
                | Mutant::LeaseRevokeLeavesKey
        )
    }

    /// Whether the `mutants` feature is compiled in, so that a mutant can take effect.
    pub const ENABLED: bool = cfg!(feature = "mutants");
}

impl fmt::Display for Mutant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl Node {
    /// Whether this node runs with the planted bug `mutant` (never without the feature).
    #[inline]
    pub(crate) fn mutant_is(&self, mutant: Mutant) -> bool {
        #[cfg(feature = "mutants")]
        {
            self.config.mutant == Some(mutant)
        }
        #[cfg(not(feature = "mutants"))]
        {
            let _ = mutant;
            false
        }
    }

    /// [`Mutant::VoteBeforeDurable`]: whether `body`, which reveals durable state,
    /// may leave at once anyway.
    pub(crate) fn mutant_sends_early(&self, body: &Body) -> bool {
        self.mutant_is(Mutant::VoteBeforeDurable) && matches!(body, Body::RequestVote(_) | Body::RequestVoteResponse(_))
    }

    /// [`Mutant::VotesAsNumber`]: the voter a reply is recorded under. A repeated
    /// answer from `voter` is booked for a voter not heard from yet, as if the
    /// tally were a counter.
    pub(crate) fn mutant_vote_key(&self, voter: NodeId) -> NodeId {
        if !self.mutant_is(Mutant::VotesAsNumber) || !self.votes.votes().contains_key(&voter) {
            return voter;
        }
        self.membership().all_voters().into_iter().find(|id| !self.votes.votes().contains_key(id)).unwrap_or(voter)
    }
}

/// The configuration a node really runs with: [`Mutant::NoPreVoteNoCheckQuorum`]
/// switches both off; otherwise `config` unchanged.
pub(crate) fn effective_config(config: crate::Config) -> crate::Config {
    #[cfg(feature = "mutants")]
    if config.mutant == Some(Mutant::NoPreVoteNoCheckQuorum) {
        return crate::Config { pre_vote: false, check_quorum: false, ..config };
    }
    config
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_back() {
        for mutant in Mutant::ALL {
            assert_eq!(Mutant::parse(mutant.name()), Some(mutant));
        }
        assert_eq!(Mutant::parse("nope"), None);
    }
}
