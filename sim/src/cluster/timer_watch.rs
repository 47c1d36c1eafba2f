//! The election-timer rule, watched from outside the core during the hold
//! episodes (see `episodes.rs`): a running node that is not leader starts an
//! election (or a PreVote) at most `election_timeout_ms_max` after the last
//! event that legitimately resets its timer (Raft §5.2): its own campaign,
//! granting a vote, hearing a leader, its boot, or leading (a leader has no
//! election timer; stepping down arms a fresh one). Nothing else may
//! push the deadline back, in particular not rejecting a vote request or
//! adopting a higher term from a stale candidate: a server that could win an
//! election would otherwise never time out while stale candidates keep it busy.
//!
//! This is exact for correct Raft (the deadline is drawn in `[min, max)` from
//! the reset, and the simulator fires a timer at its deadline), unlike a bound
//! on the time to elect a leader: with PreVote off, two candidates' split votes
//! can legitimately repeat for many rounds (timeouts drawn close together, a
//! stale candidate voting for itself first), so that time has no hard bound.
//!
//! A vote grant counts when the core records it (its vote changes to another
//! node in the current term: the moment it resets its timer; the reply itself
//! leaves only after the fsync), and when it is sent. Every leader contact the
//! core reports counts.

use super::*;
use crate::node_host::Effect;

/// A node's last legitimate reset, as of the last check.
#[derive(Clone, Copy, Debug)]
struct Reset {
    incarnation: u64,
    at_ms: u64,
    /// Leader at the last check (stepping down arms a fresh timer).
    leader: bool,
    /// (term, vote) at the last check: a new vote for another node is a grant.
    vote: (Term, Option<NodeId>),
}

/// Per-node last legitimate election-timer reset, while watched.
#[derive(Clone, Debug, Default)]
pub(super) struct TimerWatch {
    /// By node index: the last reset seen.
    resets: Vec<Option<Reset>>,
}

impl TimerWatch {
    /// Starts watching every node from `now_ms`.
    pub(super) fn new(hosts: &[NodeHost], now_ms: u64) -> TimerWatch {
        let reset = |host: &NodeHost| Reset {
            incarnation: host.incarnation,
            at_ms: now_ms,
            leader: false,
            vote: vote_of(host),
        };
        TimerWatch { resets: hosts.iter().map(|host| Some(reset(host))).collect() }
    }

    /// Notes the resets among one step's effects (campaigns and vote grants).
    pub(super) fn on_effects(&mut self, index: usize, incarnation: u64, now_ms: u64, effects: &[Effect]) {
        let resets = effects.iter().any(|effect| match effect {
            Effect::Note(Note::ElectionStarted { .. } | Note::PreVoteStarted { .. } | Note::TermLimit { .. }) => true,
            Effect::Send(message) => matches!(
                message.body,
                raft_sm::Body::RequestVoteResponse(raft_sm::RequestVoteResponse { pre_vote: false, granted: true })
            ),
            _ => false,
        });
        if resets {
            let vote = self.resets[index].map_or((Term(0), None), |reset| reset.vote);
            self.resets[index] = Some(Reset { incarnation, at_ms: now_ms, leader: false, vote });
        }
    }

    /// The first node whose timer is overdue at `now_ms`: (node, last reset, overdue by).
    pub(super) fn overdue(&mut self, hosts: &[NodeHost], now_ms: u64, timeout_ms_max: u64) -> Option<(NodeId, u64)> {
        for (index, host) in hosts.iter().enumerate() {
            let Some(node) = host.node() else {
                continue;
            };
            let slot = &mut self.resets[index];
            let leader = node.role() == Role::Leader;
            let vote = vote_of(host);
            let fresh = Reset { incarnation: host.incarnation, at_ms: now_ms, leader, vote };
            let Some(reset) = *slot else {
                *slot = Some(fresh);
                continue;
            };
            // A boot arms a fresh timer; a leader has none, and stepping down
            // (since the last check, so at most now) arms a fresh one.
            if reset.incarnation != host.incarnation || leader || reset.leader {
                *slot = Some(fresh);
                continue;
            }
            if host.paused {
                // Its timers are held; treat the resume as a reset (lenient).
                *slot = Some(fresh);
                continue;
            }
            // A vote granted since the last check (checks follow every step).
            let granted = vote != reset.vote && vote.1.is_some_and(|candidate| candidate != host.id);
            let last = if granted { now_ms } else { reset.at_ms };
            let last = last.max(node.leader_contact_ms().unwrap_or(0));
            *slot = Some(Reset { at_ms: last, vote, ..reset });
            if now_ms >= last + timeout_ms_max {
                return Some((host.id, last));
            }
        }
        None
    }
}

/// A node's (term, vote) now ((0, none) while crashed).
fn vote_of(host: &NodeHost) -> (Term, Option<NodeId>) {
    host.node().map_or((Term(0), None), |node| (node.term(), node.voted_for()))
}

impl Cluster {
    /// Feeds one step's effects to the timer watch, if one runs.
    pub(super) fn watch_timers(&mut self, index: usize, effects: &[Effect]) {
        if let Some(watch) = &mut self.timer_watch {
            watch.on_effects(index, self.hosts[index].incarnation, self.now_ms, effects);
        }
    }

    /// Fails the run if a watched node's election timer is overdue.
    pub(super) fn check_timers(&mut self) {
        let now = self.now_ms;
        let max = self.options.election_timeout_ms_max;
        let Some(watch) = &mut self.timer_watch else {
            return;
        };
        if let Some((id, last)) = watch.overdue(&self.hosts, now, max) {
            self.fail(
                FailureKind::Liveness,
                format!(
                    "election timer: {id} neither campaigned, granted a vote nor heard a leader for {} ms \
                     (since {last} ms; election_timeout_ms_max = {max})",
                    now - last
                ),
            );
        }
    }
}
