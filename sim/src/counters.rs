//! Coverage counters: what actually happened in a run (elections, truncations,
//! snapshots, faults, …) and message counts and bytes per kind. Explore prints
//! them; fault suites assert the paths they exist for were taken.

use raft_sm::Note;
use std::collections::BTreeMap;
use std::fmt;

/// Count and bytes of one message kind.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MessageCount {
    /// Messages sent.
    pub count: u64,
    /// Their encoded size.
    pub bytes: u64,
}

/// Named event counters and per-kind message counters.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    values: BTreeMap<&'static str, u64>,
    messages: BTreeMap<&'static str, MessageCount>,
}

/// The counter names fault suites usually require to be non-zero.
pub const COVERAGE: &[&str] = &[
    "elections",
    "leader_changes",
    "pre_vote_rejections",
    "truncations",
    "snapshots_sent",
    "snapshots_installed",
    "reads_served",
    "duplicates_suppressed",
    "proposals_dropped",
];

impl Counters {
    /// Adds `by` to counter `name`.
    pub fn add(&mut self, name: &'static str, by: u64) {
        *self.values.entry(name).or_default() += by;
    }

    /// The value of counter `name` (0 if never counted).
    pub fn get(&self, name: &str) -> u64 {
        self.values.get(name).copied().unwrap_or(0)
    }

    /// Counts one message of `kind` of `bytes`.
    pub fn message(&mut self, kind: &'static str, bytes: usize) {
        let entry = self.messages.entry(kind).or_default();
        entry.count += 1;
        entry.bytes += bytes as u64;
    }

    /// Messages of `kind` sent (kinds as `Body::kind`: `Heartbeat`, `AppendEntries`, …).
    pub fn messages(&self, kind: &str) -> MessageCount {
        self.messages.get(kind).copied().unwrap_or_default()
    }

    /// Every named counter.
    pub fn values(&self) -> &BTreeMap<&'static str, u64> {
        &self.values
    }

    /// Every message kind.
    pub fn message_kinds(&self) -> &BTreeMap<&'static str, MessageCount> {
        &self.messages
    }

    /// Adds another run's counters.
    pub fn merge(&mut self, other: &Counters) {
        for (&name, &value) in &other.values {
            self.add(name, value);
        }
        for (&kind, count) in &other.messages {
            let entry = self.messages.entry(kind).or_default();
            entry.count += count.count;
            entry.bytes += count.bytes;
        }
    }

    /// Counts a core `Note`.
    pub fn note(&mut self, note: &Note) {
        let name = match note {
            Note::PreVoteStarted { .. } => "pre_votes",
            Note::ElectionStarted { .. } => "elections",
            Note::VoteReceived { .. } => "votes_received",
            Note::VoteRejected { pre_vote: true, .. } => "pre_vote_rejections",
            Note::VoteRejected { .. } => "vote_rejections",
            Note::BecameLeader { .. } => "leader_changes",
            Note::SteppedDown { .. } => "step_downs",
            Note::Truncated { .. } => "truncations",
            Note::SnapshotTaken { .. } => "snapshots_taken",
            Note::SnapshotSent { .. } => "snapshots_sent",
            Note::SnapshotInstalled { .. } => "snapshots_installed",
            Note::ReadServed { .. } => "reads_served",
            Note::ProposalDropped => "proposals_dropped",
            Note::TransferStarted { .. } => "transfers_started",
            Note::TransferAborted { .. } => "transfers_aborted",
            Note::TermLimit { .. } => "term_limits",
            _ => "other_notes",
        };
        self.add(name, 1);
        if let Note::SteppedDown { reason, .. } = note {
            if *reason == raft_sm::StepDownReason::QuorumInactive {
                self.add("check_quorum_step_downs", 1);
            }
        }
    }

    /// The names in `required` whose counter is still zero.
    pub fn missing<'a>(&self, required: &[&'a str]) -> Vec<&'a str> {
        required.iter().copied().filter(|name| self.get(name) == 0).collect()
    }
}

impl fmt::Display for Counters {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "counters:")?;
        for (name, value) in &self.values {
            writeln!(f, "  {name:<28} {value}")?;
        }
        writeln!(f, "messages (count, bytes):")?;
        for (kind, count) in &self.messages {
            writeln!(f, "  {kind:<28} {:>10} {:>14}", count.count, count.bytes)?;
        }
        Ok(())
    }
}
