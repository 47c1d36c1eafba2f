//! Restart: reconciling the durable snapshot with the durable log records
//! (Raft Figure 13, rules 6 and 7). Drivers hand the core the records exactly
//! as they are on disk; this is the only place that decides what to keep.

use crate::config::{Config, ConfigError};
use crate::event::Action;
use crate::membership::{Configurations, Membership};
use crate::types::{Entry, LogIndex, Payload, SnapshotMeta, Term};
use crate::write::Write;
use std::fmt;

/// Why a node could not be built.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum StartError {
    /// The configuration is invalid.
    Config(ConfigError),
    /// The durable log leaves a gap after the durable snapshot (or starts after
    /// index 1 without one): entries that were durable are missing, so the
    /// node must not start and vote with them gone.
    LogGap {
        /// The snapshot's last index (0 without a snapshot).
        snapshot_index: LogIndex,
        /// The first durable log record's index.
        first_log_index: LogIndex,
    },
    /// The durable log records are not contiguous.
    LogNotContiguous {
        /// The index expected.
        expected: LogIndex,
        /// The index found.
        found: LogIndex,
    },
}

impl fmt::Display for StartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StartError::Config(error) => write!(f, "{error}"),
            StartError::LogGap { snapshot_index, first_log_index } => write!(
                f,
                "the log starts at index {} but the snapshot ends at index {} (entries in between are missing; \
                 the data directory is damaged)",
                first_log_index.0, snapshot_index.0
            ),
            StartError::LogNotContiguous { expected, found } => write!(
                f,
                "the log jumps from index {} to {} (the data directory is damaged)",
                expected.0.saturating_sub(1),
                found.0
            ),
        }
    }
}

impl std::error::Error for StartError {}

impl From<ConfigError> for StartError {
    fn from(error: ConfigError) -> StartError {
        StartError::Config(error)
    }
}

/// The configurations a restarted node holds: the snapshot's, then every
/// configuration entry of the (reconciled) log, in order. The stored
/// configuration wins over [`Config::voters`], which only bootstraps a node
/// whose snapshot and log hold none (a new cluster, or a data directory from
/// before membership changes, whose voters were the configured ones).
pub(crate) fn restore_configurations(
    config: &Config,
    snapshot: Option<&SnapshotMeta>,
    entries: &[Entry],
) -> Configurations {
    let mut configurations = match snapshot {
        Some(snapshot) if !snapshot.membership.voters.is_empty() => {
            Configurations::new(snapshot.last_index, snapshot.membership.clone())
        }
        Some(snapshot) => Configurations::new(snapshot.last_index, bootstrap_membership(config)),
        None => Configurations::new(LogIndex(0), bootstrap_membership(config)),
    };
    for entry in entries {
        if let Payload::Membership(membership) = &entry.payload {
            configurations.append(entry.index, (**membership).clone());
        }
    }
    configurations
}

/// The configuration [`Config::voters`] bootstraps, with their contexts.
fn bootstrap_membership(config: &Config) -> Membership {
    Membership::new(config.voters.iter().copied()).with_contexts(config.voter_contexts.clone())
}

/// Restored entries must continue the snapshot: entries it covers are dropped
/// (their compaction was not durable yet), and if the log disagrees with the
/// snapshot at its last index the whole log goes (the reset that went with an
/// installed snapshot was not durable yet; Figure 13, rules 6 and 7). Returns
/// the entries kept and the write actions that make the disk agree.
pub(crate) fn reconcile_with_snapshot(
    base_index: LogIndex,
    base_term: Term,
    entries: Vec<Entry>,
) -> Result<(Vec<Entry>, Vec<Action>), StartError> {
    for pair in entries.windows(2) {
        if pair[1].index != pair[0].index.next() {
            return Err(StartError::LogNotContiguous { expected: pair[0].index.next(), found: pair[1].index });
        }
    }
    let Some(first) = entries.first() else {
        // An empty log continues the snapshot; say so on disk too, in case the
        // reset that went with the snapshot was lost (the disk's log may still
        // think it starts after an older snapshot).
        let repair =
            if base_index > LogIndex(0) { vec![Action::Write(Write::Reset { base_index })] } else { Vec::new() };
        return Ok((entries, repair));
    };
    if first.index == base_index.next() {
        return Ok((entries, Vec::new()));
    }
    if first.index > base_index.next() {
        return Err(StartError::LogGap { snapshot_index: base_index, first_log_index: first.index });
    }
    // The log starts at or before the snapshot's last index.
    let last = entries.last().expect("not empty").index;
    let at_base = entries.iter().find(|entry| entry.index == base_index).map(|entry| entry.term);
    if at_base == Some(base_term) {
        // Rule 6: the log holds the snapshot's last entry; keep what follows it.
        let kept: Vec<Entry> = entries.into_iter().filter(|entry| entry.index > base_index).collect();
        return Ok((kept, vec![Action::Write(Write::Compact { up_to: base_index })]));
    }
    debug_assert!(at_base.is_some() || last < base_index);
    // Rule 7: the log is older than the snapshot or conflicts with it.
    Ok((Vec::new(), vec![Action::Write(Write::Reset { base_index })]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::Payload;

    fn log(range: std::ops::RangeInclusive<u64>, term: u64) -> Vec<Entry> {
        range.map(|index| Entry { term: Term(term), index: LogIndex(index), payload: Payload::Noop }).collect()
    }

    fn reconcile(base: u64, term: u64, entries: Vec<Entry>) -> Result<(Vec<u64>, Vec<Action>), StartError> {
        reconcile_with_snapshot(LogIndex(base), Term(term), entries)
            .map(|(kept, repair)| (kept.iter().map(|e| e.index.0).collect(), repair))
    }

    #[test]
    fn a_log_that_continues_the_snapshot_is_kept_as_is() {
        assert_eq!(reconcile(4, 1, log(5..=7, 1)), Ok((vec![5, 6, 7], vec![])));
        assert_eq!(reconcile(0, 0, log(1..=2, 1)), Ok((vec![1, 2], vec![])));
    }

    #[test]
    fn rule_6_entries_the_snapshot_covers_are_dropped_and_the_compaction_redone() {
        let repair = vec![Action::Write(Write::Compact { up_to: LogIndex(4) })];
        assert_eq!(reconcile(4, 1, log(1..=7, 1)), Ok((vec![5, 6, 7], repair.clone())));
        assert_eq!(reconcile(4, 1, log(1..=4, 1)), Ok((vec![], repair)), "ends exactly at the snapshot");
    }

    #[test]
    fn rule_7_a_log_older_than_or_conflicting_with_the_snapshot_is_discarded() {
        let reset = vec![Action::Write(Write::Reset { base_index: LogIndex(8) })];
        assert_eq!(reconcile(8, 5, log(1..=10, 1)), Ok((vec![], reset.clone())), "conflicts at 8");
        assert_eq!(reconcile(8, 5, log(1..=3, 1)), Ok((vec![], reset.clone())), "ends before the snapshot");
        assert_eq!(reconcile(8, 5, vec![]), Ok((vec![], reset)), "empty: the reset may have been lost");
    }

    #[test]
    fn a_gap_after_the_snapshot_refuses_to_start() {
        assert_eq!(
            reconcile(4, 1, log(7..=9, 1)),
            Err(StartError::LogGap { snapshot_index: LogIndex(4), first_log_index: LogIndex(7) })
        );
        let error = reconcile(0, 0, log(3..=4, 1)).unwrap_err();
        assert!(error.to_string().contains("starts at index 3"), "{error}");
        let mut holes = log(1..=2, 1);
        holes.extend(log(5..=5, 1));
        assert!(matches!(reconcile(0, 0, holes), Err(StartError::LogNotContiguous { .. })));
    }
}
