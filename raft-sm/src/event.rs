//! What goes into the core ([`Event`]) and what comes out ([`Action`]).

use crate::message::{Message, SnapshotChunkToSend};
use crate::types::{Entry, LogIndex, NodeId, SnapshotMeta, Term};
use crate::write::Write;
use serde::{Deserialize, Serialize};

/// The timers a node may ask for. Each kind has one slot; a later `SetTimer`
/// of the same kind replaces the earlier deadline.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum TimerKind {
    /// Follower or candidate: no leader heard within the randomized timeout; start (pre-)voting.
    Election,
    /// Leader: time to send heartbeats to every follower.
    Heartbeat,
    /// Leader: time to check that a majority was heard from (CheckQuorum).
    QuorumCheck,
    /// Leader: a leadership transfer has run out of time.
    Transfer,
}

impl TimerKind {
    /// All kinds, in slot order.
    pub const ALL: [TimerKind; 4] =
        [TimerKind::Election, TimerKind::Heartbeat, TimerKind::QuorumCheck, TimerKind::Transfer];
}

/// Identifies a durable-write barrier. Ids grow by one per [`Action::Sync`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct PersistId(pub u64);

/// Everything that can happen to a node. Each is handed to [`crate::Node::step`]
/// together with the driver's monotonic clock in milliseconds.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// A timer the node asked for with [`Action::SetTimer`] fired. Stale or early
    /// timer events are ignored, so a driver may deliver them loosely.
    Timer(TimerKind),
    /// A message from a peer arrived.
    Message(Message),
    /// A client proposes a command. `id` is the driver's, echoed in the answer.
    Propose {
        /// The driver's id for the proposal.
        id: u64,
        /// The encoded command.
        command: Vec<u8>,
    },
    /// A client asks for a linearizable read (ReadIndex). `id` is the driver's.
    Read {
        /// The driver's id for the read.
        id: u64,
    },
    /// Everything written before [`Action::Sync`] `{ id }` (and every earlier
    /// sync) is durable.
    Persisted {
        /// The sync that completed.
        id: PersistId,
    },
    /// The driver applied every entry up to `index` to its state machine.
    Applied {
        /// The last applied index.
        index: LogIndex,
    },
    /// The host wrote an image of its state machine into the driver's
    /// snapshot store, as asked by [`Action::TakeSnapshot`] (stepped by the
    /// host itself, from [`crate::Host::take_snapshot`]). `index` is the state
    /// machine's applied index; the core keeps only the metadata.
    SnapshotTaken {
        /// The last index the snapshot covers.
        index: LogIndex,
        /// The image's length in bytes.
        size_bytes: u64,
    },
    /// The snapshot at `index` that this node took itself ([`SnapshotOrigin::Taken`])
    /// is durable. Only now does the core compact the durable log up to it.
    SnapshotPersisted {
        /// The snapshot's last index.
        index: LogIndex,
    },
    /// An operator (or a test) asks for a snapshot at the applied index now,
    /// whatever `snapshot_threshold_entries` says.
    SnapshotNow,
    /// An operator asks the leader to hand leadership to `to`.
    TransferLeadership {
        /// The node that should become leader.
        to: NodeId,
    },
    /// An operator asks the leader for a membership change. Answered like a
    /// proposal (`id` is the driver's): `Accepted` when the configuration entry
    /// is appended, then applied once it commits (for a joint change: once the
    /// joint entry commits; the leader then leaves the joint configuration by
    /// itself), or `Rejected` with the reason.
    ChangeMembership {
        /// The driver's id for the request.
        id: u64,
        /// The change.
        change: crate::membership::MembershipChange,
    },
    /// [`Event::ChangeMembership`] with `AddLearner(member)`, carrying the new
    /// member's opaque context ([`crate::Membership::contexts`]; the node driver
    /// puts its name and URLs there so every member can dial it).
    AddMember {
        /// The driver's id for the request.
        id: u64,
        /// The node to add as a learner.
        member: NodeId,
        /// Its context, kept in the configuration while it is a member.
        context: Vec<u8>,
    },
}

/// What the driver must do, in the order given.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Action {
    /// A durable write, in order with every other write (see [`Write`] for
    /// when each kind must be durable).
    Write(Write),
    /// Make every write above durable, then step `Event::Persisted { id }`.
    /// A driver may cover several syncs with one fsync and report the last id.
    Sync {
        /// The barrier's id.
        id: PersistId,
    },
    /// Put a message on the wire. Messages that depend on durable state are only
    /// emitted after their `Persisted` event, so a driver never has to hold one back.
    Send(Message),
    /// Apply committed entries to the state machine, in order, exactly once.
    Apply {
        /// The entries, contiguous, following the last ones handed out.
        entries: Vec<Entry>,
        /// The proposals among them that this node accepted as leader:
        /// (index, the driver's proposal id). Each entry listed here is the one
        /// the proposal created, so its result answers that proposal.
        proposals: Vec<(LogIndex, u64)>,
    },
    /// Replace the state machine with the snapshot's state (a follower installed
    /// it). The image is the one the driver's store assembles from the
    /// [`Write::SnapshotChunk`]s before; it is readable once the sync after
    /// this action completes (the host waits for that, see
    /// [`crate::Output::RestoreSnapshot`]).
    RestoreSnapshot(SnapshotMeta),
    /// Produce a snapshot of the state machine at its applied index into the
    /// driver's store and step `Event::SnapshotTaken` (the host does both, see
    /// [`crate::Output::TakeSnapshot`]).
    TakeSnapshot,
    /// Send a chunk of this node's durable snapshot: the message is complete but
    /// for its bytes, which the driver reads from its store.
    SendSnapshotChunk(SnapshotChunkToSend),
    /// The answer to a proposal.
    ProposalResult {
        /// The driver's id of the proposal.
        id: u64,
        /// What happened.
        outcome: ProposalOutcome,
    },
    /// The answer to a read: serve it from the state machine now.
    ReadResult {
        /// The driver's id of the read.
        id: u64,
        /// What happened.
        outcome: ReadOutcome,
    },
    /// Step `Event::Timer(kind)` at or after `deadline_ms`, or never if `None`.
    SetTimer {
        /// Which timer.
        kind: TimerKind,
        /// When it is due.
        deadline_ms: Option<u64>,
    },
    /// Something notable happened (elections, step-downs, snapshots), for logs
    /// and coverage counters. Never needed for correctness.
    Note(Note),
}

/// The answer to [`Event::Propose`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ProposalOutcome {
    /// Appended on the leader at `index` in `term`. The command takes effect when
    /// the driver applies the entry at `index` with term `term`.
    Accepted {
        /// Where the entry was placed.
        index: LogIndex,
        /// The leader's term.
        term: Term,
    },
    /// Not accepted; nothing was appended.
    Rejected(Rejection),
    /// Accepted, then leadership was lost before it applied: the outcome is
    /// unknown (it may still commit). Retrying with the same client session is safe.
    Dropped,
}

/// The answer to [`Event::Read`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ReadOutcome {
    /// The state machine has applied at least `read_index`; reading it now is linearizable.
    Ready {
        /// The confirmed read index.
        read_index: LogIndex,
    },
    /// Not served.
    Rejected(Rejection),
    /// Leadership changed while the read waited; nothing was read. Safe to retry.
    Dropped,
}

/// Why a proposal or read was not accepted.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Rejection {
    /// This node is not the leader; `leader` is the one it knows, if any.
    NotLeader {
        /// The known leader.
        leader: Option<NodeId>,
    },
    /// Leadership is being transferred; retry shortly (at the new leader).
    TransferInProgress,
    /// Too many proposals or reads are pending.
    Busy,
    /// A membership change is in flight (its entry is uncommitted, or the
    /// configuration is joint): one change at a time.
    ChangeInProgress,
    /// The leader has not committed an entry of its term yet, so it may not
    /// know the latest committed configuration (the barrier; retry shortly).
    NoCommitInTerm,
    /// The learner to promote is behind: `lag_entries` behind the leader's last
    /// index, or not heard from for `silent_ms` (`None`: never).
    NotCaughtUp {
        /// The learner.
        id: NodeId,
        /// Entries it lacks.
        lag_entries: u64,
        /// Since when it has been silent, if it ever answered.
        silent_ms: Option<u64>,
    },
    /// The change does not apply to the current configuration.
    InvalidChange(crate::membership::ChangeError),
}

impl std::fmt::Display for Rejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Rejection::NotLeader { leader: Some(leader) } => write!(f, "not the leader (the leader is {leader})"),
            Rejection::NotLeader { leader: None } => f.write_str("not the leader (no leader known)"),
            Rejection::TransferInProgress => f.write_str("leadership is being transferred"),
            Rejection::Busy => f.write_str("too many requests pending"),
            Rejection::ChangeInProgress => f.write_str("another membership change is in progress"),
            Rejection::NoCommitInTerm => f.write_str("the new leader has not committed an entry of its term yet"),
            Rejection::NotCaughtUp { id, lag_entries, silent_ms } => {
                write!(f, "learner {id} is not caught up: {lag_entries} entries behind")?;
                match silent_ms {
                    Some(ms) => write!(f, ", last heard {ms} ms ago"),
                    None => f.write_str(", never heard from"),
                }
            }
            Rejection::InvalidChange(error) => write!(f, "{error}"),
        }
    }
}

/// Notable events for logs and coverage counters.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Note {
    /// Started a PreVote round for `term`.
    PreVoteStarted {
        /// The term it would run in.
        term: Term,
    },
    /// Started an election in `term`.
    ElectionStarted {
        /// The new term.
        term: Term,
    },
    /// A vote arrived.
    VoteReceived {
        /// The voter.
        from: NodeId,
        /// Granted votes so far.
        granted: usize,
        /// Voters in total.
        voters: usize,
        /// Whether it was a PreVote.
        pre_vote: bool,
    },
    /// Refused a (pre-)vote.
    VoteRejected {
        /// The candidate.
        candidate: NodeId,
        /// Whether it was a PreVote.
        pre_vote: bool,
        /// Why.
        reason: VoteRefusal,
    },
    /// Became leader of `term`.
    BecameLeader {
        /// The term.
        term: Term,
    },
    /// Stepped down from leader or candidate.
    SteppedDown {
        /// The term after stepping down.
        term: Term,
        /// Why.
        reason: StepDownReason,
    },
    /// Removed a conflicting log suffix.
    Truncated {
        /// First index removed.
        from: LogIndex,
        /// How many entries were removed.
        count: u64,
    },
    /// Compacted the log after a local snapshot.
    SnapshotTaken {
        /// The snapshot's last index.
        index: LogIndex,
    },
    /// Started sending a snapshot to a follower.
    SnapshotSent {
        /// The follower.
        to: NodeId,
        /// The snapshot's last index.
        index: LogIndex,
    },
    /// Installed a snapshot from the leader.
    SnapshotInstalled {
        /// The snapshot's last index.
        index: LogIndex,
    },
    /// Served a linearizable read.
    ReadServed {
        /// The read index.
        read_index: LogIndex,
    },
    /// Answered a proposal as dropped.
    ProposalDropped,
    /// Started a leadership transfer.
    TransferStarted {
        /// The target.
        to: NodeId,
    },
    /// A leadership transfer timed out.
    TransferAborted {
        /// The target.
        to: NodeId,
    },
    /// The configuration in effect changed (an entry appended or truncated, or
    /// a snapshot installed); it is the latest at `index`.
    MembershipChanged {
        /// The index of the configuration entry now in effect.
        index: LogIndex,
        /// The configuration.
        membership: crate::membership::Membership,
    },
    /// A term limit was hit; nothing changed. With `from`, a message from that
    /// node carried a term more than [`Term::MAX_JUMP`] past ours, or
    /// `u64::MAX`, and was refused rather than adopted; without, this node is
    /// at `u64::MAX` and refused to start an election (a term never wraps).
    TermLimit {
        /// The sender of the refused message, or `None` for our own election.
        from: Option<NodeId>,
        /// The refused term (or our own).
        term: Term,
    },
}

/// Why a (pre-)vote was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub enum VoteRefusal {
    /// We still hear a leader (CheckQuorum lease).
    StillHearsLeader,
    /// The candidate's log is behind ours (Raft §5.4.1).
    LogNotUpToDate,
    /// A PreVote for a term not above ours.
    StaleTerm,
    /// We already voted for another candidate in this term.
    AlreadyVoted,
    /// A repair discarded entries we may have acknowledged; we do not vote until
    /// our log is back past them (`Config::vote_after_index`).
    RepairedNotCaughtUp,
}

impl std::fmt::Display for VoteRefusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            VoteRefusal::StillHearsLeader => "still hears a leader",
            VoteRefusal::LogNotUpToDate => "log not up to date",
            VoteRefusal::StaleTerm => "stale term",
            VoteRefusal::AlreadyVoted => "already voted in this term",
            VoteRefusal::RepairedNotCaughtUp => "repaired: not caught up yet",
        })
    }
}

/// Why a node became (or stayed) a follower.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub enum StepDownReason {
    /// A message carried a higher term (Raft §5.1).
    HigherTerm,
    /// The leader of the current term was heard.
    HeardLeader,
    /// A majority refused the election.
    LostElection,
    /// CheckQuorum: a majority was not heard from within an election timeout.
    QuorumInactive,
    /// A configuration without this node as a voter committed; it handed over.
    RemovedFromConfiguration,
}

impl std::fmt::Display for StepDownReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            StepDownReason::HigherTerm => "saw a higher term",
            StepDownReason::HeardLeader => "heard the leader of the term",
            StepDownReason::LostElection => "lost the election",
            StepDownReason::QuorumInactive => "quorum inactive",
            StepDownReason::RemovedFromConfiguration => "removed from the voters",
        })
    }
}
