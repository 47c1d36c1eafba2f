//! Node configuration and its validation.

use crate::types::NodeId;
use std::fmt;

/// Everything a [`crate::Node`] needs to know that is not in its durable state.
///
/// Every queue and window the core keeps is bounded by a `_max` field here;
/// [`Config::validate`] checks the relations between them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// This node's id. Must be one of `voters` unless `voters` is empty.
    pub id: NodeId,
    /// The voters a brand-new cluster starts with, including this node. Only a
    /// bootstrap: once the snapshot or the log holds a configuration, that one
    /// is in effect ([`crate::Membership`]) and this list is not read. Empty
    /// for a node that joins an existing cluster: it waits, never campaigning,
    /// until a leader adds it and sends it the log.
    pub voters: Vec<NodeId>,
    /// Opaque contexts of the bootstrap voters, carried into their configuration
    /// ([`crate::Membership::contexts`]); read only when `voters` is.
    pub voter_contexts: std::collections::BTreeMap<NodeId, Vec<u8>>,
    /// Lower bound of the randomized election timeout.
    pub election_timeout_ms_min: u64,
    /// Upper bound (exclusive) of the randomized election timeout.
    pub election_timeout_ms_max: u64,
    /// How often a leader sends heartbeats.
    pub heartbeat_interval_ms: u64,
    /// Seed of the node's ChaCha RNG; the only source of randomness in the core.
    pub rng_seed: u64,
    /// Run a PreVote round before raising the term (Raft thesis §9.6).
    pub pre_vote: bool,
    /// Leaders step down when a majority has not been heard from within an
    /// election timeout; followers ignore votes while they hear a leader.
    pub check_quorum: bool,
    /// Most entries in one AppendEntries message.
    pub append_entries_max: usize,
    /// Most payload bytes in one AppendEntries message (at least one entry is always sent).
    pub append_bytes_max: usize,
    /// Most AppendEntries messages in flight to one follower.
    pub inflight_appends_max: usize,
    /// Take a snapshot once this many applied entries sit in the log. 0 disables snapshots.
    pub snapshot_threshold_entries: u64,
    /// Largest data chunk of one InstallSnapshot message.
    pub snapshot_chunk_bytes_max: usize,
    /// Most proposals accepted but not yet applied on a leader.
    pub pending_proposals_max: usize,
    /// Most linearizable reads waiting on one node.
    pub pending_reads_max: usize,
    /// Most entries in one Apply action.
    pub apply_entries_max: usize,
    /// How long a leadership transfer may take before it is abandoned.
    pub transfer_timeout_ms: u64,
    /// A learner is promoted only when it lacks at most this many of the
    /// leader's entries (and answered within an election timeout).
    pub promote_lag_entries_max: u64,
    /// A planted bug ([`crate::Mutant`]), for the simulator's mutation suite only.
    #[cfg(feature = "mutants")]
    pub mutant: Option<crate::Mutant>,
    /// After a repair that discarded damaged log entries: neither grant votes
    /// nor campaign (nor take over by transfer) until the log reaches this
    /// index, so that a node that lost entries it had acknowledged cannot help
    /// elect a leader missing committed entries. `None` (the default): no hold.
    pub vote_after_index: Option<crate::types::LogIndex>,
}

impl Config {
    /// A configuration with the defaults for node `id` in a cluster of `voters`.
    pub fn new(id: NodeId, voters: Vec<NodeId>) -> Config {
        Config {
            id,
            voters,
            voter_contexts: std::collections::BTreeMap::new(),
            election_timeout_ms_min: 600,
            election_timeout_ms_max: 1200,
            heartbeat_interval_ms: 100,
            rng_seed: id.0,
            pre_vote: true,
            check_quorum: true,
            append_entries_max: 512,
            append_bytes_max: 1 << 20,
            inflight_appends_max: 32,
            snapshot_threshold_entries: 10_000,
            snapshot_chunk_bytes_max: 1 << 20,
            pending_proposals_max: 65_536,
            pending_reads_max: 65_536,
            apply_entries_max: 1024,
            transfer_timeout_ms: 1200,
            promote_lag_entries_max: 1000,
            #[cfg(feature = "mutants")]
            mutant: None,
            vote_after_index: None,
        }
    }

    /// A node that joins an existing cluster: no bootstrap voters (see [`Config::voters`]).
    pub fn joining(id: NodeId) -> Config {
        Config::new(id, Vec::new())
    }

    /// Checks the configuration; the error says in plain English what is wrong.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !self.voters.is_empty() && !self.voters.contains(&self.id) {
            return Err(ConfigError::NotAVoter { id: self.id, voters: self.voters.clone() });
        }
        let mut sorted = self.voters.clone();
        sorted.sort();
        if let Some(pair) = sorted.windows(2).find(|pair| pair[0] == pair[1]) {
            return Err(ConfigError::DuplicateVoter { voter: pair[0], voters: self.voters.clone() });
        }
        if self.heartbeat_interval_ms == 0 {
            return Err(ConfigError::ZeroHeartbeatInterval);
        }
        if self.heartbeat_interval_ms >= self.election_timeout_ms_min {
            return Err(ConfigError::HeartbeatNotShorterThanElectionTimeout {
                heartbeat_interval_ms: self.heartbeat_interval_ms,
                election_timeout_ms_min: self.election_timeout_ms_min,
            });
        }
        if self.election_timeout_ms_max <= self.election_timeout_ms_min {
            return Err(ConfigError::ElectionTimeoutRangeEmpty {
                election_timeout_ms_min: self.election_timeout_ms_min,
                election_timeout_ms_max: self.election_timeout_ms_max,
            });
        }
        let positive = [
            ("append_entries_max", self.append_entries_max),
            ("append_bytes_max", self.append_bytes_max),
            ("inflight_appends_max", self.inflight_appends_max),
            ("snapshot_chunk_bytes_max", self.snapshot_chunk_bytes_max),
            ("pending_proposals_max", self.pending_proposals_max),
            ("pending_reads_max", self.pending_reads_max),
            ("apply_entries_max", self.apply_entries_max),
        ];
        if let Some((field, _)) = positive.into_iter().find(|&(_, value)| value == 0) {
            return Err(ConfigError::ZeroLimit { field });
        }
        if self.transfer_timeout_ms == 0 {
            return Err(ConfigError::ZeroTransferTimeout);
        }
        Ok(())
    }
}

/// What [`Config::validate`] found wrong; `Display` says it in plain English.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigError {
    /// `id` is not one of `voters`.
    NotAVoter {
        /// This node's id.
        id: NodeId,
        /// The configured voters.
        voters: Vec<NodeId>,
    },
    /// A node appears in `voters` more than once.
    DuplicateVoter {
        /// The node listed more than once.
        voter: NodeId,
        /// The configured voters.
        voters: Vec<NodeId>,
    },
    /// `heartbeat_interval_ms` is 0.
    ZeroHeartbeatInterval,
    /// The heartbeat interval is not shorter than the minimum election timeout.
    HeartbeatNotShorterThanElectionTimeout {
        /// The configured heartbeat interval.
        heartbeat_interval_ms: u64,
        /// The configured minimum election timeout.
        election_timeout_ms_min: u64,
    },
    /// The election timeout range is empty, so timeouts could not be randomized.
    ElectionTimeoutRangeEmpty {
        /// The configured minimum.
        election_timeout_ms_min: u64,
        /// The configured maximum (exclusive), not above the minimum.
        election_timeout_ms_max: u64,
    },
    /// A `_max` bound that must be at least 1 is 0.
    ZeroLimit {
        /// The [`Config`] field's name, e.g. `append_entries_max`.
        field: &'static str,
    },
    /// `transfer_timeout_ms` is 0.
    ZeroTransferTimeout,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::NotAVoter { id, voters } => write!(f, "this node ({id}) is not among the voters {voters:?}"),
            ConfigError::DuplicateVoter { voter, voters } => {
                write!(f, "the voters {voters:?} list a node ({voter}) twice")
            }
            ConfigError::ZeroHeartbeatInterval => f.write_str("heartbeat interval must be at least 1 ms"),
            ConfigError::HeartbeatNotShorterThanElectionTimeout { heartbeat_interval_ms, election_timeout_ms_min } => {
                write!(
                    f,
                    "heartbeat interval ({heartbeat_interval_ms} ms) must be shorter than the minimum election \
                     timeout ({election_timeout_ms_min} ms), or followers start elections while the leader is healthy"
                )
            }
            ConfigError::ElectionTimeoutRangeEmpty { election_timeout_ms_min, election_timeout_ms_max } => write!(
                f,
                "maximum election timeout ({election_timeout_ms_max} ms) must be greater than the minimum \
                 ({election_timeout_ms_min} ms) so timeouts are randomized"
            ),
            ConfigError::ZeroLimit { field } => write!(f, "{field} must be at least 1"),
            ConfigError::ZeroTransferTimeout => f.write_str("transfer timeout must be at least 1 ms"),
        }
    }
}

impl std::error::Error for ConfigError {}

#[cfg(test)]
mod tests {
    use super::*;

    fn three() -> Config {
        Config::new(NodeId(1), vec![NodeId(1), NodeId(2), NodeId(3)])
    }

    /// The error of `three()` changed by `change`, and its message.
    fn error_of(change: impl FnOnce(&mut Config)) -> (ConfigError, String) {
        let mut config = three();
        change(&mut config);
        let error = config.validate().expect_err("the change makes the configuration invalid");
        let message = error.to_string();
        (error, message)
    }

    #[test]
    fn defaults_are_valid() {
        assert_eq!(three().validate(), Ok(()));
        assert_eq!(Config::new(NodeId(7), vec![NodeId(7)]).validate(), Ok(()));
    }

    #[test]
    fn heartbeat_not_shorter_than_election_timeout_is_rejected() {
        let (error, message) = error_of(|config| config.heartbeat_interval_ms = 600);
        assert_eq!(
            error,
            ConfigError::HeartbeatNotShorterThanElectionTimeout {
                heartbeat_interval_ms: 600,
                election_timeout_ms_min: 600
            }
        );
        assert_eq!(
            message,
            "heartbeat interval (600 ms) must be shorter than the minimum election timeout (600 ms), \
             or followers start elections while the leader is healthy"
        );
        let (error, _) = error_of(|config| config.heartbeat_interval_ms = 0);
        assert_eq!(error, ConfigError::ZeroHeartbeatInterval);
    }

    #[test]
    fn self_missing_and_duplicates_are_rejected() {
        let (error, message) = error_of(|config| config.id = NodeId(9));
        assert!(matches!(error, ConfigError::NotAVoter { id: NodeId(9), .. }), "{error:?}");
        assert_eq!(message, "this node (n9) is not among the voters [NodeId(1), NodeId(2), NodeId(3)]");
        let (error, message) = error_of(|config| config.voters.push(NodeId(2)));
        assert!(matches!(error, ConfigError::DuplicateVoter { voter: NodeId(2), .. }), "{error:?}");
        assert!(message.contains("list a node (n2) twice"), "{message}");
        assert_eq!(Config::joining(NodeId(4)).validate(), Ok(()), "a joining node has no bootstrap voters");
    }

    #[test]
    fn empty_timeout_range_is_rejected() {
        let (error, message) = error_of(|config| config.election_timeout_ms_max = config.election_timeout_ms_min);
        assert_eq!(
            error,
            ConfigError::ElectionTimeoutRangeEmpty { election_timeout_ms_min: 600, election_timeout_ms_max: 600 }
        );
        assert!(message.contains("(600 ms) so timeouts are randomized"), "{message}");
    }

    #[test]
    fn zero_bounds_are_rejected_by_name() {
        let (error, message) = error_of(|config| config.inflight_appends_max = 0);
        assert_eq!(error, ConfigError::ZeroLimit { field: "inflight_appends_max" });
        assert_eq!(message, "inflight_appends_max must be at least 1");
        let (error, message) = error_of(|config| config.transfer_timeout_ms = 0);
        assert_eq!(error, ConfigError::ZeroTransferTimeout);
        assert_eq!(message, "transfer timeout must be at least 1 ms");
    }
}
