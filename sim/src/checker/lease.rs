//! Lease holders and the lease-expiry checker.
//!
//! **Holders** model clients of `/lease/*`: each grants a lease (an id of its
//! own, a TTL of 1–2 s), attaches its key `lease/<holder>` to it, keeps it alive
//! every third of the TTL for a while, then "dies" (stops keep-alives) and,
//! after a pause, starts over with a new lease. Each holder has one request in
//! flight; it goes to the node last named leader (or a random one), follows
//! leader hints and retries with the same session after a timeout.
//!
//! **The check.** The leader decides an expiry at its clock `decided_at_ms`
//! and proposes it ([`raft_sm::kv::Op::LeaseExpire`]); the simulator's nodes
//! share one clock, so that is simulated time. When an expiry takes effect (it
//! is applied and deletes the lease), every grant or keep-alive of that lease
//! that a holder got `Ok` for — and that therefore applied before the expiry —
//! must have been invoked at least one TTL before the decision:
//! `invoked_ms + ttl_ms <= decided_at_ms`. In words: a key never disappears by
//! expiry while its lease was kept alive within its TTL. (Keep-alives with an
//! unknown outcome are not counted; the check runs again when a late `Ok`
//! arrives.)
//!
//! **The history.** Holders record their operations in a history of their own
//! ([`LeaseHolders::history`], merged with the clients' for the
//! linearizability check): grants, the attaching put, keep-alives and
//! revokes, and each expiry that takes effect (from the leader's decision to
//! its first apply). Half the time a holder revokes its lease instead of
//! letting it expire, and then creates its key if absent (a compare-and-swap
//! from absent): the model knows the revoke deleted it, so the swap must hold.

use super::Violation;
use crate::history::{History, KvOp, KvOutcome, LeaseOp, OpId};
use crate::rng::SimRng;
use raft_sm::kv::{ApplyResult, Command, KvError, Op, Txn};
use raft_sm::{Entry, NodeId, Payload, Rejection};
use std::collections::BTreeMap;

/// One attempt waits this long before it is retried elsewhere.
const ATTEMPT_TIMEOUT_MS: u64 = 600;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Waiting to grant a new lease.
    Idle,
    Granting,
    Attaching,
    /// Keeping alive until `alive_until_ms`.
    Alive,
    /// Revoking the lease (instead of letting it expire).
    Revoking,
    /// Creating its key if absent, after the revoke.
    Checking,
    /// Stopped keep-alives; starts over at the next wake after the pause.
    Dead,
}

#[derive(Clone, Debug)]
struct Holder {
    client_id: u64,
    seq: u64,
    phase: Phase,
    lease: u64,
    leases_granted: u64,
    ttl_ms: u64,
    alive_until_ms: u64,
    /// The command in flight, when it was invoked, and its attempts' request ids.
    in_flight: Option<(Command, u64, Vec<u64>)>,
    /// The in-flight command's operation in the history.
    recorded: Option<OpId>,
    leader_hint: Option<NodeId>,
    wake_token: u64,
}

/// Something the holders want the cluster to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LeaseAction {
    /// Send `command` from holder `holder` to `node`; the cluster reports the
    /// request id back with [`LeaseHolders::sent`].
    Send {
        /// The holder.
        holder: usize,
        /// Where.
        node: NodeId,
        /// The command.
        command: Vec<u8>,
    },
    /// Wake holder `holder` at `at_ms` with `token`.
    Wake {
        /// The holder.
        holder: usize,
        /// When.
        at_ms: u64,
        /// Stale wakes carry an old token.
        token: u64,
    },
}

/// Counts of what the lease holders saw.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LeaseStats {
    /// Leases granted.
    pub granted: u64,
    /// Keep-alives acknowledged.
    pub kept_alive: u64,
    /// Expiries that took effect.
    pub expired: u64,
    /// Expiries applied after a keep-alive made them void.
    pub expiries_void: u64,
    /// Revokes acknowledged.
    pub revoked: u64,
}

/// The holders and the expiry check.
pub struct LeaseHolders {
    holders: Vec<Holder>,
    nodes: Vec<NodeId>,
    rng: SimRng,
    /// Lease id → its TTL and the invocation times of acknowledged grants and keep-alives.
    acked: BTreeMap<u64, (u64, Vec<u64>)>,
    /// Lease id → when the leader decided its (effective) expiry.
    expired: BTreeMap<u64, u64>,
    /// The holders' operations and the expiries, for the linearizability check.
    history: History,
    /// Counters.
    pub stats: LeaseStats,
}

/// The history's client id of expiries (the leader's clock, not a holder).
pub const EXPIRY_CLIENT: u64 = u64::MAX;

/// Holder `n`'s key.
fn key_of(n: usize) -> String {
    format!("lease/{n}")
}

impl LeaseHolders {
    /// `count` holders over `nodes`.
    pub fn new(count: usize, nodes: Vec<NodeId>, rng: SimRng) -> LeaseHolders {
        let holders = (0..count)
            .map(|n| Holder {
                client_id: 1_000_000 + n as u64,
                seq: 0,
                phase: Phase::Idle,
                lease: 0,
                leases_granted: 0,
                ttl_ms: 0,
                alive_until_ms: 0,
                in_flight: None,
                recorded: None,
                leader_hint: None,
                wake_token: 0,
            })
            .collect();
        LeaseHolders {
            holders,
            nodes,
            rng,
            acked: BTreeMap::new(),
            expired: BTreeMap::new(),
            history: History::default(),
            stats: LeaseStats::default(),
        }
    }

    /// First wakes.
    pub fn start(&mut self, now_ms: u64) -> Vec<LeaseAction> {
        (0..self.holders.len())
            .map(|n| {
                let at = now_ms + self.rng.range(0, 500);
                self.wake(n, at)
            })
            .collect()
    }

    fn wake(&mut self, n: usize, at_ms: u64) -> LeaseAction {
        let holder = &mut self.holders[n];
        holder.wake_token += 1;
        LeaseAction::Wake { holder: n, at_ms, token: holder.wake_token }
    }

    /// The cluster sent holder `n`'s last `Send` as request `request`.
    pub fn sent(&mut self, n: usize, request: u64) {
        if let Some((_, _, attempts)) = &mut self.holders[n].in_flight {
            attempts.push(request);
        }
    }

    /// The holders' operations and the expiries that took effect.
    pub fn history(&self) -> &History {
        &self.history
    }

    fn invoke(&mut self, now_ms: u64, n: usize, op: Op) -> Vec<LeaseAction> {
        let holder = &mut self.holders[n];
        holder.seq += 1;
        let kind = match &op {
            Op::LeaseGrant { id, .. } => KvOp::lease(LeaseOp::Grant, *id),
            Op::LeaseKeepAlive { id } => KvOp::lease(LeaseOp::KeepAlive, *id),
            Op::LeaseRevoke { id } => KvOp::lease(LeaseOp::Revoke, *id),
            Op::Put { key, value, lease } => KvOp::Put { key: key.clone(), value: value.clone(), lease: *lease },
            Op::Txn(_) => {
                KvOp::Cas { key: key_of(n), expected: None, value: format!("{}.{}r", holder.client_id, holder.seq) }
            }
            other => unreachable!("holders do not send {other:?}"),
        };
        let command = Command::of(op).with_session(holder.client_id, holder.seq);
        holder.recorded = Some(self.history.invoke(holder.client_id, kind, now_ms));
        holder.in_flight = Some((command, now_ms, Vec::new()));
        self.attempt(now_ms, n)
    }

    /// After a revoke: holder `n` creates its key if absent (a compare-and-swap
    /// from absent, which the revoke's deletion makes hold).
    fn invoke_check(&mut self, now_ms: u64, n: usize) -> Vec<LeaseAction> {
        let holder = &self.holders[n];
        let value = format!("{}.{}r", holder.client_id, holder.seq + 1);
        self.invoke(now_ms, n, Op::Txn(Txn::cas(key_of(n), None, value)))
    }

    /// Records the outcome of holder `n`'s operation in flight.
    fn record(&mut self, now_ms: u64, n: usize, outcome: KvOutcome) {
        if let Some(id) = self.holders[n].recorded.take() {
            let at = (outcome != KvOutcome::Unknown).then_some(now_ms);
            self.history.complete(id, at, outcome);
        }
    }

    fn attempt(&mut self, now_ms: u64, n: usize) -> Vec<LeaseAction> {
        let node = match self.holders[n].leader_hint {
            Some(node) => node,
            None => *self.rng.pick(&self.nodes),
        };
        let (command, _, _) = self.holders[n].in_flight.as_ref().expect("attempting a request in flight");
        let send = LeaseAction::Send { holder: n, node, command: command.encode() };
        vec![send, self.wake(n, now_ms + ATTEMPT_TIMEOUT_MS)]
    }

    /// A wake of holder `n`.
    pub fn on_wake(&mut self, now_ms: u64, n: usize, token: u64) -> Vec<LeaseAction> {
        if self.holders[n].wake_token != token {
            return Vec::new();
        }
        if self.holders[n].in_flight.is_some() {
            // The attempt timed out: retry the same command elsewhere.
            self.holders[n].leader_hint = None;
            return self.attempt(now_ms, n);
        }
        let holder = &mut self.holders[n];
        match holder.phase {
            Phase::Idle | Phase::Dead => {
                holder.leases_granted += 1;
                holder.lease = (n as u64 + 1) * 1_000_000 + holder.leases_granted;
                holder.ttl_ms = 1_000 * self.rng.range(1, 2);
                holder.phase = Phase::Granting;
                let op = Op::LeaseGrant { id: holder.lease, ttl_s: holder.ttl_ms / 1_000 };
                self.invoke(now_ms, n, op)
            }
            Phase::Alive if now_ms < holder.alive_until_ms => {
                let op = Op::LeaseKeepAlive { id: holder.lease };
                self.invoke(now_ms, n, op)
            }
            Phase::Alive if self.rng.chance(0.5) => {
                holder.phase = Phase::Revoking;
                let op = Op::LeaseRevoke { id: holder.lease };
                self.invoke(now_ms, n, op)
            }
            Phase::Alive => {
                holder.phase = Phase::Dead;
                let pause = 2 * holder.ttl_ms + self.rng.range(0, 2_000);
                vec![self.wake(n, now_ms + pause)]
            }
            Phase::Checking => self.invoke_check(now_ms, n),
            Phase::Granting | Phase::Attaching | Phase::Revoking => Vec::new(),
        }
    }

    /// A reply to request `request` of holder `n`.
    pub fn on_reply(
        &mut self,
        now_ms: u64,
        n: usize,
        request: u64,
        reply: Result<Result<(), KvError>, Option<Rejection>>,
    ) -> Result<Vec<LeaseAction>, Violation> {
        let Some((command, invoked_ms, attempts)) = self.holders[n].in_flight.clone() else {
            return Ok(Vec::new());
        };
        if !attempts.contains(&request) {
            return Ok(Vec::new());
        }
        let result = match reply {
            Ok(result) => result,
            Err(Some(Rejection::NotLeader { leader: Some(leader) })) => {
                self.holders[n].leader_hint = Some(leader);
                return Ok(self.attempt(now_ms, n));
            }
            // Rejected without a hint, or dropped: the timeout wake retries.
            Err(_) => {
                self.holders[n].leader_hint = None;
                return Ok(Vec::new());
            }
        };
        self.holders[n].in_flight = None;
        let outcome = match result {
            Ok(()) => KvOutcome::Ok,
            Err(KvError::LeaseNotFound) => KvOutcome::LeaseNotFound,
            Err(KvError::CompareFailed) => KvOutcome::CompareFailed,
            // Not an answer the model knows (e.g. a grant refused as a
            // duplicate): whether it took effect is left open.
            Err(_) => KvOutcome::Unknown,
        };
        self.record(now_ms, n, outcome);
        let holder = &mut self.holders[n];
        let next = match (&command.op, result) {
            (Op::LeaseGrant { id, .. }, Ok(())) => {
                self.stats.granted += 1;
                self.acked.entry(*id).or_insert((holder.ttl_ms, Vec::new())).1.push(invoked_ms);
                holder.phase = Phase::Attaching;
                let op = Op::Put { key: key_of(n), value: holder.lease.to_string(), lease: holder.lease };
                return self.check(*id).map(|()| self.invoke(now_ms, n, op));
            }
            (Op::Put { .. }, Ok(())) => {
                holder.phase = Phase::Alive;
                holder.alive_until_ms = now_ms + holder.ttl_ms * self.rng.range(1, 4);
                now_ms + holder.ttl_ms / 3
            }
            (Op::LeaseKeepAlive { id }, Ok(())) => {
                self.stats.kept_alive += 1;
                self.acked.entry(*id).or_insert((holder.ttl_ms, Vec::new())).1.push(invoked_ms);
                let id = *id;
                self.check(id)?;
                let holder = &self.holders[n];
                now_ms + holder.ttl_ms / 3
            }
            (Op::LeaseRevoke { .. }, Ok(())) => {
                self.stats.revoked += 1;
                // Checked a little later: an operation invoked in the
                // millisecond the revoke's answer arrived counts as
                // concurrent with it (the checker's clock is in ms).
                holder.phase = Phase::Checking;
                now_ms + self.rng.range(1, 50)
            }
            (Op::Txn(_), _) => {
                holder.phase = Phase::Dead;
                now_ms + holder.ttl_ms + self.rng.range(0, 2_000)
            }
            // The lease is gone (it expired early, or under faults the keep-alives
            // came too late): start over.
            _ => {
                holder.phase = Phase::Dead;
                now_ms + self.rng.range(100, 1_000)
            }
        };
        Ok(vec![self.wake(n, next)])
    }

    /// An entry was applied at `now_ms` with `result`: note an expiry that
    /// took effect (and record it, on its first apply).
    pub fn on_apply(&mut self, now_ms: u64, entry: &Entry, result: &Option<ApplyResult>) -> Result<(), Violation> {
        let (Payload::Command(bytes), Some(result)) = (&entry.payload, result) else {
            return Ok(());
        };
        let Ok(command) = Command::decode(bytes) else {
            return Ok(());
        };
        let Op::LeaseExpire { id, decided_at_ms, .. } = command.op else {
            return Ok(());
        };
        if result.output.lease_id != id {
            self.stats.expiries_void += 1;
            return Ok(());
        }
        if self.expired.insert(id, decided_at_ms).is_none() {
            self.stats.expired += 1;
            let op = self.history.invoke(EXPIRY_CLIENT, KvOp::lease(LeaseOp::Expire, id), decided_at_ms);
            self.history.complete(op, Some(now_ms.max(decided_at_ms)), KvOutcome::Ok);
        }
        self.check(id)
    }

    fn check(&self, id: u64) -> Result<(), Violation> {
        let (Some(&decided_at_ms), Some((ttl_ms, invoked))) = (self.expired.get(&id), self.acked.get(&id)) else {
            return Ok(());
        };
        match invoked.iter().find(|&&invoked_ms| invoked_ms + ttl_ms > decided_at_ms) {
            Some(invoked_ms) => Err(Violation::new(
                "lease expiry",
                format!(
                    "lease {id} (TTL {ttl_ms} ms) was expired by the leader at {decided_at_ms} ms, but a grant or keep-alive invoked at {invoked_ms} ms was acknowledged: it should live until {} ms at least",
                    invoked_ms + ttl_ms
                ),
            )),
            None => Ok(()),
        }
    }
}
