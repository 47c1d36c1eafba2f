//! Episodes: fault generators aimed at interleavings that random faults almost
//! never produce. Each is a randomized family (which nodes, how long, which
//! links), not a fixed script, and each is drawn per seed like the swarm's
//! fault kinds ([`EpisodeOptions`]).
//!
//! - **Figure 8** (Raft §5.4.2): the leader A is cut off from all but one
//!   follower and crashed while its latest entries sit on a minority; a new
//!   leader C of a higher term is cut off and crashed right after its election
//!   (its entries on no one else); A restarts into an election it can win (it
//!   reaches only the follower holding its entries, and one more on five
//!   nodes), and is crashed right after its commit index first moves; C
//!   restarts into an election it can win. A leader that committed A's
//!   older-term entries by counting replicas has now lost a committed entry.
//! - **Vote echoes**: a vote grant is held back past the election it answers
//!   and delivered in a later one (sometimes as well as on time).

use super::*;

/// Which episodes a run has, drawn per seed (see the module docs).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct EpisodeOptions {
    /// Chance that a swarm tick starts a Figure 8 episode (when none runs and no node is down).
    pub figure8: f64,
    /// Chance that a real vote grant is echoed into a later election.
    pub vote_echo: f64,
}

impl EpisodeOptions {
    /// Draws the episodes of a swarm run (each on with probability ½).
    pub fn draw(rng: &mut SimRng) -> EpisodeOptions {
        let figure8 = if rng.chance(0.5) { rng.float(0.2, 0.8) } else { 0.0 };
        let vote_echo = if rng.chance(0.5) { rng.float(0.05, 0.5) } else { 0.0 };
        EpisodeOptions { figure8, vote_echo }
    }
}

/// Where a Figure 8 episode is.
#[derive(Clone, Debug, Default)]
pub(super) enum Figure8 {
    /// None running.
    #[default]
    Idle,
    /// A is cut off (but for `keeper`); crash it at `crash_at_ms`.
    Cut { a: NodeId, keeper: NodeId, term: Term, crash_at_ms: u64 },
    /// A is down; wait for a leader of a higher term.
    AwaitNewLeader { a: NodeId, keeper: NodeId, term: Term, until_ms: u64 },
    /// C leads, cut off from everyone; crash it at `crash_at_ms`.
    NewLeaderCut { a: NodeId, keeper: NodeId, c: NodeId, crash_at_ms: u64 },
    /// C is down, A restarted; wait for A to lead.
    AwaitOldLeader { a: NodeId, c: NodeId, until_ms: u64 },
    /// A leads: crash it as soon as its commit index moves past `commit`.
    Armed { a: NodeId, c: NodeId, commit: LogIndex, until_ms: u64 },
}

impl Cluster {
    /// Whether an episode is running (the swarm then injects nothing else).
    pub(super) fn episode_running(&self) -> bool {
        !matches!(self.figure8, Figure8::Idle)
    }

    /// Called by a swarm tick: maybe starts a Figure 8 episode.
    pub(super) fn maybe_start_episode(&mut self) -> bool {
        let chance = self.options.episodes.figure8;
        let n = self.hosts.len();
        if chance <= 0.0 || n < 3 || self.hosts.iter().any(|h| !h.is_up() || h.paused) {
            return false;
        }
        if !self.episode_rng.chance(chance) {
            return false;
        }
        let Some(a) = self.leader() else {
            return false;
        };
        let term = self.host(a).node().map_or(Term(0), Node::term);
        let followers: Vec<NodeId> = self.ids().into_iter().filter(|&id| id != a).collect();
        let keeper = *self.episode_rng.pick(&followers);
        self.counters.add("episodes_figure8", 1);
        self.apply_fault(FaultAction::Heal);
        self.apply_fault(FaultAction::Restrict(a, vec![keeper]));
        let crash_at_ms = self.now_ms + self.episode_rng.range(20, 600);
        self.figure8 = Figure8::Cut { a, keeper, term, crash_at_ms };
        true
    }

    /// Advances a running episode; called after every event.
    pub(super) fn poll_episode(&mut self) {
        if !self.swarm_active {
            // The fault phase is over (the liveness phase heals everything): stop here.
            self.figure8 = Figure8::Idle;
            return;
        }
        let now = self.now_ms;
        match self.figure8.clone() {
            Figure8::Idle => {}
            Figure8::Cut { a, keeper, term, crash_at_ms } => {
                if now >= crash_at_ms {
                    self.apply_fault(FaultAction::Crash(a));
                    self.apply_fault(FaultAction::Heal);
                    self.figure8 = Figure8::AwaitNewLeader { a, keeper, term, until_ms: now + 5_000 };
                }
            }
            Figure8::AwaitNewLeader { a, keeper, term, until_ms } => {
                let new_leader = self
                    .leader()
                    .filter(|&c| c != a && c != keeper && self.host(c).node().is_some_and(|node| node.term() > term));
                if let Some(c) = new_leader {
                    self.apply_fault(FaultAction::Isolate(c));
                    let crash_at_ms = now + self.episode_rng.range(0, 300);
                    self.figure8 = Figure8::NewLeaderCut { a, keeper, c, crash_at_ms };
                } else if now >= until_ms {
                    self.end_episode();
                }
            }
            Figure8::NewLeaderCut { a, keeper, c, crash_at_ms } => {
                if now >= crash_at_ms {
                    self.apply_fault(FaultAction::Crash(c));
                    self.apply_fault(FaultAction::Heal);
                    self.apply_fault(FaultAction::Restart(a));
                    // A reaches the follower holding its entries, and on five or more
                    // nodes one more, so the others never see its new term's entries.
                    let mut peers = vec![keeper];
                    let others: Vec<NodeId> =
                        self.ids().into_iter().filter(|&id| id != a && id != c && id != keeper).collect();
                    if self.hosts.len() >= 5 && !others.is_empty() {
                        peers.push(*self.episode_rng.pick(&others));
                    }
                    self.apply_fault(FaultAction::Restrict(a, peers));
                    self.figure8 = Figure8::AwaitOldLeader { a, c, until_ms: now + 5_000 };
                }
            }
            Figure8::AwaitOldLeader { a, c, until_ms } => {
                if self.leader() == Some(a) {
                    let commit = self.host(a).node().map_or(LogIndex(0), Node::commit_index);
                    self.figure8 = Figure8::Armed { a, c, commit, until_ms: now + 3_000 };
                } else if now >= until_ms {
                    self.end_episode();
                }
            }
            Figure8::Armed { a, c, commit, until_ms } => {
                let moved = self.host(a).node().is_some_and(|node| node.commit_index() > commit);
                if moved || now >= until_ms {
                    self.apply_fault(FaultAction::Crash(a));
                    self.apply_fault(FaultAction::Heal);
                    self.apply_fault(FaultAction::Restart(c));
                    self.end_episode();
                }
            }
        }
    }

    fn end_episode(&mut self) {
        self.apply_fault(FaultAction::Heal);
        self.figure8 = Figure8::Idle;
    }

    /// Vote echoes: maybe holds a real vote grant back into a later election.
    /// Returns the extra delivery time, and whether the on-time copies are dropped.
    pub(super) fn vote_echo(&mut self, message: &Message) -> Option<(u64, bool)> {
        let chance = self.options.episodes.vote_echo;
        let is_grant = matches!(
            message.body,
            raft_sm::Body::RequestVoteResponse(raft_sm::RequestVoteResponse { pre_vote: false, granted: true })
        );
        if chance <= 0.0 || !is_grant || !self.episode_rng.chance(chance) {
            return None;
        }
        let options = &self.options;
        let delay =
            self.episode_rng.range(options.election_timeout_ms_min / 2, options.election_timeout_ms_max * 2 + 1);
        self.counters.add("vote_echoes", 1);
        Some((self.now_ms + delay, self.episode_rng.chance(0.5)))
    }
}
