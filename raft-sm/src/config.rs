//! Node configuration and its validation.

use crate::types::NodeId;
use std::fmt;

/// Everything a [`crate::Node`] needs to know that is not in its durable state.
///
/// Every queue and window the core keeps is bounded by a `_max` field here;
/// [`Config::validate`] checks the relations between them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// This node's id. Must be one of `voters`.
    pub id: NodeId,
    /// Every voting member, including this node. Kept as data (not a constant)
    /// so that membership changes can later come through the log.
    pub voters: Vec<NodeId>,
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
}

impl Config {
    /// A configuration with the defaults for node `id` in a cluster of `voters`.
    pub fn new(id: NodeId, voters: Vec<NodeId>) -> Config {
        Config {
            id,
            voters,
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
        }
    }

    /// Checks the configuration; the error says in plain English what is wrong.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let fail = |message: String| Err(ConfigError(message));
        if self.voters.is_empty() {
            return fail("the cluster has no voters; list at least this node".into());
        }
        if !self.voters.contains(&self.id) {
            return fail(format!("this node ({}) is not among the voters {:?}", self.id, self.voters));
        }
        let mut sorted = self.voters.clone();
        sorted.sort();
        sorted.dedup();
        if sorted.len() != self.voters.len() {
            return fail(format!("the voters {:?} list a node twice", self.voters));
        }
        if self.heartbeat_interval_ms == 0 {
            return fail("heartbeat interval must be at least 1 ms".into());
        }
        if self.heartbeat_interval_ms >= self.election_timeout_ms_min {
            return fail(format!(
                "heartbeat interval ({} ms) must be shorter than the minimum election timeout ({} ms), \
                 or followers start elections while the leader is healthy",
                self.heartbeat_interval_ms, self.election_timeout_ms_min
            ));
        }
        if self.election_timeout_ms_max <= self.election_timeout_ms_min {
            return fail(format!(
                "maximum election timeout ({} ms) must be greater than the minimum ({} ms) so timeouts are randomized",
                self.election_timeout_ms_max, self.election_timeout_ms_min
            ));
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
        for (name, value) in positive {
            if value == 0 {
                return fail(format!("{name} must be at least 1"));
            }
        }
        if self.transfer_timeout_ms == 0 {
            return fail("transfer timeout must be at least 1 ms".into());
        }
        Ok(())
    }

    /// How many votes make a majority of the voters.
    pub fn quorum(&self) -> usize {
        self.voters.len() / 2 + 1
    }
}

/// A configuration error, in plain English.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError(pub String);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}

#[cfg(test)]
mod tests {
    use super::*;

    fn three() -> Config {
        Config::new(NodeId(1), vec![NodeId(1), NodeId(2), NodeId(3)])
    }

    #[test]
    fn defaults_are_valid() {
        assert_eq!(three().validate(), Ok(()));
        assert_eq!(three().quorum(), 2);
    }

    #[test]
    fn heartbeat_not_shorter_than_election_timeout_is_rejected() {
        let mut config = three();
        config.heartbeat_interval_ms = 600;
        let error = config.validate().unwrap_err();
        assert!(error.0.contains("heartbeat interval (600 ms) must be shorter"), "{error}");
    }

    #[test]
    fn self_missing_and_duplicates_are_rejected() {
        let mut config = three();
        config.id = NodeId(9);
        assert!(config.validate().unwrap_err().0.contains("not among the voters"));
        let mut config = three();
        config.voters.push(NodeId(2));
        assert!(config.validate().unwrap_err().0.contains("twice"));
    }

    #[test]
    fn empty_timeout_range_is_rejected() {
        let mut config = three();
        config.election_timeout_ms_max = config.election_timeout_ms_min;
        assert!(config.validate().unwrap_err().0.contains("randomized"));
    }
}
