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
//! - **Stability under partial connectivity** (configurations with PreVote and
//!   CheckQuorum on): on a clean network, the link between the leader and one
//!   follower is cut for seconds; the term must not keep rising (at most two
//!   elections), since the cut-off follower cannot win a PreVote while the
//!   others hear the leader.
//! - **Stale candidates** (configurations with PreVote off): a minority of
//!   followers is cut off for seconds, campaigning in vain and raising its
//!   terms; then the leader crashes and everything heals. Through both hold
//!   episodes every node's election timer is watched (`timer_watch.rs`): a
//!   node that is not leader must campaign within `election_timeout_ms_max` of
//!   its last legitimate reset. The time to elect a leader itself has no hard
//!   bound with PreVote off (split votes with a stale candidate can repeat for
//!   rounds), so the episode ends after [`ELECT_WAIT_TIMEOUTS`] maximal
//!   timeouts without a verdict and the liveness phase bounds convergence.

use super::*;

/// How many maximal election timeouts a stale-candidates episode waits for a
/// leader after the heal before it ends (without failing: see the module docs).
pub const ELECT_WAIT_TIMEOUTS: u64 = 20;

/// Which episodes a run has, drawn per seed (see the module docs).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct EpisodeOptions {
    /// Chance that a swarm tick starts a Figure 8 episode (when none runs and no node is down).
    pub figure8: f64,
    /// Chance that a real vote grant is echoed into a later election.
    pub vote_echo: f64,
    /// Chance that a swarm tick starts a stability or stale-candidates episode
    /// (whichever the configuration's PreVote and CheckQuorum call for).
    pub hold: f64,
}

impl EpisodeOptions {
    /// Draws the episodes of a swarm run (each on with probability ½).
    pub fn draw(rng: &mut SimRng) -> EpisodeOptions {
        let figure8 = if rng.chance(0.5) { rng.float(0.2, 0.8) } else { 0.0 };
        let vote_echo = if rng.chance(0.5) { rng.float(0.05, 0.5) } else { 0.0 };
        let hold = if rng.chance(0.5) { rng.float(0.1, 0.5) } else { 0.0 };
        EpisodeOptions { figure8, vote_echo, hold }
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

/// Where a stability or stale-candidates episode is.
#[derive(Clone, Debug, Default)]
pub(super) enum Hold {
    /// None running.
    #[default]
    Idle,
    /// One link of the leader cut on a clean network; the term must stay within `start_term + 2`.
    Stable { start_term: Term, until_ms: u64, saved: crate::network::NetworkOptions },
    /// A minority cut off and going stale; at `crash_at_ms` the leader crashes and all heals.
    Stale { crash_at_ms: u64, saved: crate::network::NetworkOptions },
    /// Healed: waiting (until `until_ms`) for a leader followed by every running node.
    Elect { old: NodeId, until_ms: u64, saved: crate::network::NetworkOptions },
}

impl Cluster {
    /// Whether an episode is running (the swarm then injects nothing else).
    pub(super) fn episode_running(&self) -> bool {
        !matches!(self.figure8, Figure8::Idle) || !matches!(self.hold, Hold::Idle)
    }

    /// Called by a swarm tick: maybe starts an episode.
    pub(super) fn maybe_start_episode(&mut self) -> bool {
        let n = self.hosts.len();
        let now = self.now_ms;
        if n < 3 || self.hosts.iter().any(|h| !h.is_up() || h.paused || h.disk.stalled_until_ms > now) {
            return false;
        }
        self.maybe_start_figure8() || self.maybe_start_hold()
    }

    fn max_term(&self) -> Term {
        self.hosts.iter().filter_map(|h| h.node()).map(Node::term).max().unwrap_or(Term(0))
    }

    fn maybe_start_hold(&mut self) -> bool {
        let chance = self.options.episodes.hold;
        let (pre_vote, check_quorum) = (self.options.pre_vote, self.options.check_quorum);
        if chance <= 0.0 || (pre_vote != check_quorum) || !self.episode_rng.chance(chance) {
            return false;
        }
        let Some(leader) = self.leader() else {
            return false;
        };
        let saved = self.network.options().clone();
        let clean = crate::network::NetworkOptions { loss: 0.0, duplicate: 0.0, reorder: 0.0, ..saved.clone() };
        let followers: Vec<NodeId> = self.ids().into_iter().filter(|&id| id != leader).collect();
        self.generated_fault(FaultAction::Heal);
        self.generated_fault(FaultAction::Network(clean));
        self.timer_watch = Some(super::timer_watch::TimerWatch::new(&self.hosts, self.now_ms));
        if pre_vote {
            let cut = *self.episode_rng.pick(&followers);
            self.generated_fault(FaultAction::Link { from: leader, to: cut, up: false });
            self.generated_fault(FaultAction::Link { from: cut, to: leader, up: false });
            let until_ms = self.now_ms + self.episode_rng.range(3_000, 8_000);
            self.counters.add("episodes_stability", 1);
            self.hold = Hold::Stable { start_term: self.max_term(), until_ms, saved };
        } else {
            let minority = (self.hosts.len() - 1) / 2;
            for &stale in followers.iter().take(minority) {
                self.generated_fault(FaultAction::Isolate(stale));
            }
            let crash_at_ms = self.now_ms + self.episode_rng.range(3_000, 8_000);
            self.counters.add("episodes_stale_candidates", 1);
            self.hold = Hold::Stale { crash_at_ms, saved };
        }
        true
    }

    fn end_hold(&mut self) {
        self.hold = Hold::Idle;
        self.timer_watch = None;
    }

    fn poll_hold(&mut self) {
        self.check_timers();
        let now = self.now_ms;
        match self.hold.clone() {
            Hold::Idle => {}
            Hold::Stable { start_term, until_ms, saved } => {
                let term = self.max_term();
                if term.0 > start_term.0 + 2 {
                    self.fail(
                        FailureKind::Liveness,
                        format!(
                            "stability: with PreVote and CheckQuorum on, one cut link made the term rise from \
                             {start_term} to {term} on a clean network"
                        ),
                    );
                }
                if now >= until_ms {
                    self.generated_fault(FaultAction::Heal);
                    self.generated_fault(FaultAction::Network(saved));
                    self.end_hold();
                }
            }
            Hold::Stale { crash_at_ms, saved } => {
                if now >= crash_at_ms {
                    let Some(old) = self.leader() else {
                        self.generated_fault(FaultAction::Heal);
                        self.generated_fault(FaultAction::Network(saved));
                        self.end_hold();
                        return;
                    };
                    self.generated_fault(FaultAction::Crash(old));
                    self.generated_fault(FaultAction::Heal);
                    let until_ms = now + ELECT_WAIT_TIMEOUTS * self.options.election_timeout_ms_max;
                    self.hold = Hold::Elect { old, until_ms, saved };
                }
            }
            Hold::Elect { old, until_ms, saved } => {
                let elected = self.leader().is_some_and(|leader| {
                    self.hosts.iter().filter(|h| h.id != old).all(|h| h.node().and_then(Node::leader) == Some(leader))
                });
                if elected || now >= until_ms {
                    if !elected {
                        self.counters.add("stale_candidates_unelected", 1);
                    }
                    self.generated_fault(FaultAction::Restart(old));
                    self.generated_fault(FaultAction::Network(saved));
                    self.end_hold();
                }
            }
        }
    }

    fn maybe_start_figure8(&mut self) -> bool {
        let chance = self.options.episodes.figure8;
        if chance <= 0.0 {
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
        self.generated_fault(FaultAction::Heal);
        self.generated_fault(FaultAction::Restrict(a, vec![keeper]));
        let crash_at_ms = self.now_ms + self.episode_rng.range(20, 600);
        self.figure8 = Figure8::Cut { a, keeper, term, crash_at_ms };
        true
    }

    /// Advances a running episode; called after every event.
    pub(super) fn poll_episode(&mut self) {
        if !self.swarm_active {
            // The fault phase is over (the liveness phase heals everything): stop here.
            self.figure8 = Figure8::Idle;
            self.end_hold();
            return;
        }
        self.poll_hold();
        let now = self.now_ms;
        match self.figure8.clone() {
            Figure8::Idle => {}
            Figure8::Cut { a, keeper, term, crash_at_ms } => {
                if now >= crash_at_ms {
                    self.generated_fault(FaultAction::Crash(a));
                    self.generated_fault(FaultAction::Heal);
                    self.figure8 = Figure8::AwaitNewLeader { a, keeper, term, until_ms: now + 5_000 };
                }
            }
            Figure8::AwaitNewLeader { a, keeper, term, until_ms } => {
                let new_leader = self
                    .leader()
                    .filter(|&c| c != a && c != keeper && self.host(c).node().is_some_and(|node| node.term() > term));
                if let Some(c) = new_leader {
                    self.generated_fault(FaultAction::Isolate(c));
                    let crash_at_ms = now + self.episode_rng.range(0, 300);
                    self.figure8 = Figure8::NewLeaderCut { a, keeper, c, crash_at_ms };
                } else if now >= until_ms {
                    self.end_episode();
                }
            }
            Figure8::NewLeaderCut { a, keeper, c, crash_at_ms } => {
                if now >= crash_at_ms {
                    self.generated_fault(FaultAction::Crash(c));
                    self.generated_fault(FaultAction::Heal);
                    self.generated_fault(FaultAction::Restart(a));
                    // A reaches the follower holding its entries, and on five or more
                    // nodes one more, so the others never see its new term's entries.
                    let mut peers = vec![keeper];
                    let others: Vec<NodeId> =
                        self.ids().into_iter().filter(|&id| id != a && id != c && id != keeper).collect();
                    if self.hosts.len() >= 5 && !others.is_empty() {
                        peers.push(*self.episode_rng.pick(&others));
                    }
                    self.generated_fault(FaultAction::Restrict(a, peers));
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
                    self.generated_fault(FaultAction::Crash(a));
                    self.generated_fault(FaultAction::Heal);
                    self.generated_fault(FaultAction::Restart(c));
                    self.end_episode();
                }
            }
        }
    }

    fn end_episode(&mut self) {
        self.generated_fault(FaultAction::Heal);
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
