//! The client workload: K concurrent clients doing set/get/delete, and
//! compare-and-swap and prefix ranges when their weights are set, with a
//! configurable mix, key space and value sizes. A compare-and-swap expects the
//! value the client last saw for the key (or its absence), so that chains of
//! them succeed; each written value is unique, so an update lost or applied
//! twice shows in the history. Each has one operation in
//! flight; it sends to the last known leader (or a random node), follows leader
//! hints, times out and retries with the same session (client id + sequence
//! number) so a retried write applies once, and records every operation in the
//! [`History`].

use crate::history::{History, KvOp, KvOutcome, OpId};
use crate::rng::SimRng;
use raft_sm::kv::{Command, KvError, Txn};
use raft_sm::{NodeId, Rejection};
use std::collections::BTreeMap;

/// The workload's shape.
#[derive(Clone, Debug, PartialEq)]
pub struct WorkloadOptions {
    /// Number of concurrent clients.
    pub clients: usize,
    /// Number of distinct keys (`k0`, `k1`, …).
    pub keys: usize,
    /// Relative weight of sets.
    pub set_weight: u32,
    /// Relative weight of gets.
    pub get_weight: u32,
    /// Relative weight of deletes.
    pub delete_weight: u32,
    /// Relative weight of compare-and-swaps (transactions with one comparison and one put).
    pub cas_weight: u32,
    /// Relative weight of prefix ranges (linearizable, by ReadIndex).
    pub range_weight: u32,
    /// Only these operations are begun (shrinking; `None`: all). See [`crate::op_list`].
    pub keep_ops: Option<crate::op_list::OpList>,
    /// A deliberate client bug, for testing the checkers: a write's retry gets
    /// a new session sequence number, so a retried write may apply twice.
    pub bug_fresh_seq_on_retry: bool,
    /// Smallest value size.
    pub value_bytes_min: usize,
    /// Largest value size.
    pub value_bytes_max: usize,
    /// Pause between a completion and the next invocation.
    pub think_ms_min: u64,
    /// See `think_ms_min`.
    pub think_ms_max: u64,
    /// One attempt waits this long for an answer before retrying elsewhere.
    pub attempt_timeout_ms: u64,
    /// After this long an operation is given up with an unknown outcome.
    pub op_timeout_ms: u64,
    /// Wait before retrying after a rejection without a hint, or a drop.
    pub retry_backoff_ms: u64,
    /// One-way latency between a client and a node.
    pub latency_ms_min: u64,
    /// See `latency_ms_min`.
    pub latency_ms_max: u64,
}

impl Default for WorkloadOptions {
    fn default() -> Self {
        WorkloadOptions {
            clients: 5,
            keys: 8,
            set_weight: 4,
            get_weight: 4,
            delete_weight: 1,
            cas_weight: 0,
            range_weight: 0,
            keep_ops: None,
            bug_fresh_seq_on_retry: false,
            value_bytes_min: 4,
            value_bytes_max: 32,
            think_ms_min: 0,
            think_ms_max: 100,
            attempt_timeout_ms: 800,
            op_timeout_ms: 6_000,
            retry_backoff_ms: 50,
            latency_ms_min: 1,
            latency_ms_max: 5,
        }
    }
}

/// What a client asks a node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Request {
    /// Propose this encoded command.
    Write(Vec<u8>),
    /// Read this key linearizably.
    Read(String),
    /// Read every key with this prefix linearizably.
    Range(String),
}

/// What a node answered, as the client sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reply {
    /// The write was applied with this result.
    Written(Result<(), KvError>),
    /// The read returned this value (`None`: not found).
    Read(Option<String>),
    /// The range returned these pairs, in key order.
    Range(Vec<(String, String)>),
    /// Not accepted.
    Rejected(Rejection),
    /// Dropped: unknown outcome.
    Dropped,
}

/// Something the workload wants the cluster to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClientAction {
    /// Send `request` from `client` to `node` (the cluster assigns the request id
    /// and reports it back with [`Workload::sent`]).
    Send {
        /// The client.
        client: usize,
        /// The node.
        node: NodeId,
        /// What to ask.
        request: Request,
    },
    /// Wake `client` at `at_ms` with `token`.
    Wake {
        /// The client.
        client: usize,
        /// When.
        at_ms: u64,
        /// Stale wakes carry an old token.
        token: u64,
    },
}

#[derive(Clone, Debug)]
struct Running {
    op: OpId,
    kind: KvOp,
    request: Request,
    /// The session sequence number (writes).
    seq: u64,
    /// The write's command (to re-stamp it under `bug_fresh_seq_on_retry`).
    command: Option<Command>,
    started_ms: u64,
    attempt_deadline_ms: u64,
    /// Request ids of every attempt of this operation.
    attempts: Vec<u64>,
    /// Redirects followed without a pause (bounded, against hint ping-pong).
    hops: u32,
    /// Consecutive `Busy` answers from the same node.
    busy: u32,
    /// Attempts of this operation that timed out.
    timeouts: u32,
}

/// After this many `Busy` answers in a row a client tries another node.
const BUSY_RETRIES_MAX: u32 = 3;

#[derive(Clone, Debug)]
struct Client {
    id: u64,
    seq: u64,
    leader_hint: Option<NodeId>,
    running: Option<Running>,
    wake_token: u64,
    /// Operations begun or skipped (`keep_ops` numbers them from 1).
    begun: u64,
    /// The value this client last saw for each key (`None`: absent).
    seen: BTreeMap<String, Option<String>>,
}

/// Counts of what clients went through.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ClientStats {
    /// Attempts that timed out.
    pub timeouts: u64,
    /// Retries (all causes).
    pub retries: u64,
    /// Operations given up with unknown outcome.
    pub unknown: u64,
    /// Operations with a definite outcome.
    pub completed: u64,
}

/// All clients, their randomness and the history.
pub struct Workload {
    options: WorkloadOptions,
    nodes: Vec<NodeId>,
    clients: Vec<Client>,
    rng: SimRng,
    history: History,
    /// No new operations; pending ones retry until they complete.
    draining: bool,
    /// Statistics.
    pub stats: ClientStats,
}

impl Workload {
    /// Clients with ids `1..=options.clients`.
    pub fn new(options: WorkloadOptions, nodes: Vec<NodeId>, rng: SimRng) -> Workload {
        assert!(options.keys > 0, "the key space is empty");
        assert!(options.total_weight() > 0, "the operation mix is empty");
        let clients = (1..=options.clients as u64)
            .map(|id| Client {
                id,
                seq: 0,
                leader_hint: None,
                running: None,
                wake_token: 0,
                begun: 0,
                seen: BTreeMap::new(),
            })
            .collect();
        Workload {
            options,
            nodes,
            clients,
            rng,
            history: History::default(),
            draining: false,
            stats: ClientStats::default(),
        }
    }

    /// The history so far.
    pub fn history(&self) -> &History {
        &self.history
    }

    /// The options.
    pub fn options(&self) -> &WorkloadOptions {
        &self.options
    }

    /// One-way client↔node latency draw.
    pub fn latency_ms(&mut self) -> u64 {
        self.rng.range(self.options.latency_ms_min, self.options.latency_ms_max)
    }

    /// Stops new operations; open ones retry (without giving up) until they complete.
    pub fn drain(&mut self) {
        self.draining = true;
    }

    /// Whether every client is idle.
    pub fn is_idle(&self) -> bool {
        self.clients.iter().all(|client| client.running.is_none())
    }

    /// Describes the open operations (for liveness failures).
    pub fn pending(&self) -> Vec<String> {
        self.clients
            .iter()
            .filter_map(|client| {
                client.running.as_ref().map(|running| {
                    format!(
                        "client {} {:?} since {} ms ({} attempts)",
                        client.id,
                        running.kind,
                        running.started_ms,
                        running.attempts.len()
                    )
                })
            })
            .collect()
    }

    /// First wake of every client.
    pub fn start(&mut self, now_ms: u64) -> Vec<ClientAction> {
        (0..self.clients.len())
            .map(|index| {
                let think = self.think_ms();
                self.wake(index, now_ms + think)
            })
            .collect()
    }

    fn think_ms(&mut self) -> u64 {
        self.rng.range(self.options.think_ms_min, self.options.think_ms_max)
    }

    fn wake(&mut self, index: usize, at_ms: u64) -> ClientAction {
        let client = &mut self.clients[index];
        client.wake_token += 1;
        ClientAction::Wake { client: index, at_ms, token: client.wake_token }
    }

    /// The cluster sent the last `Send` of `client` as request `request`.
    pub fn sent(&mut self, client: usize, request: u64) {
        let running = self.clients[client].running.as_mut().expect("a running client sends");
        running.attempts.push(request);
    }

    /// A wake-up: start an operation, or time out an attempt.
    pub fn on_wake(&mut self, now_ms: u64, index: usize, token: u64) -> Vec<ClientAction> {
        if self.clients[index].wake_token != token {
            return Vec::new();
        }
        let Some(running) = &self.clients[index].running else {
            return self.begin(now_ms, index);
        };
        let (attempt_deadline_ms, started_ms, op) = (running.attempt_deadline_ms, running.started_ms, running.op);
        if now_ms < attempt_deadline_ms {
            // A backoff wake: retry now.
            return self.attempt(now_ms, index);
        }
        self.stats.timeouts += 1;
        self.clients[index].leader_hint = None;
        if let Some(running) = self.clients[index].running.as_mut() {
            running.timeouts += 1;
        }
        if !self.draining && now_ms >= started_ms + self.options.op_timeout_ms {
            self.finish(now_ms, index, op, None, KvOutcome::Unknown)
        } else {
            self.stats.retries += 1;
            self.attempt(now_ms, index)
        }
    }

    fn begin(&mut self, now_ms: u64, index: usize) -> Vec<ClientAction> {
        if self.draining {
            return Vec::new();
        }
        let key = format!("k{}", self.rng.index(self.options.keys));
        let total = self.options.total_weight();
        let draw = self.rng.range(0, u64::from(total) - 1) as u32;
        let o = &self.options;
        let (sets, gets, deletes, cases) = (
            o.set_weight,
            o.set_weight + o.get_weight,
            o.set_weight + o.get_weight + o.delete_weight,
            o.set_weight + o.get_weight + o.delete_weight + o.cas_weight,
        );
        let mut command = None;
        let client = &mut self.clients[index];
        let (kind, request, seq) = if draw >= deletes && draw < cases {
            client.seq += 1;
            let value = format!("{}.{}c", client.id, client.seq);
            let expected = client.seen.get(&key).cloned().flatten();
            let cas = Command::txn(Txn::cas(key.clone(), expected.as_deref(), value.clone()))
                .with_session(client.id, client.seq);
            let request = Request::Write(cas.encode());
            command = Some(cas);
            (KvOp::Cas { key, expected, value }, request, client.seq)
        } else if draw >= cases {
            // A prefix of the key names: `k1` covers k1 and k10..k19; `k` every key.
            let prefix = match self.rng.range(0, 2) {
                0 => "k".to_owned(),
                _ => format!("k{}", self.rng.index(self.options.keys)),
            };
            (KvOp::Range { prefix: prefix.clone() }, Request::Range(prefix), 0)
        } else if draw < sets {
            client.seq += 1;
            let mut value = format!("{}.{}", client.id, client.seq);
            let size =
                self.rng.range(self.options.value_bytes_min as u64, self.options.value_bytes_max as u64) as usize;
            while value.len() < size {
                value.push('x');
            }
            let set = Command::set(key.clone(), value.clone()).with_session(client.id, client.seq);
            let request = Request::Write(set.encode());
            command = Some(set);
            (KvOp::Set { key, value }, request, client.seq)
        } else if draw < gets {
            (KvOp::Get { key: key.clone() }, Request::Read(key), 0)
        } else {
            client.seq += 1;
            let delete = Command::delete(key.clone()).with_session(client.id, client.seq);
            let request = Request::Write(delete.encode());
            command = Some(delete);
            (KvOp::Delete { key }, request, client.seq)
        };
        client.begun += 1;
        let (id, number) = (client.id, client.begun);
        crate::explore::note_op_begun(id, number);
        if let Some(keep) = &self.options.keep_ops {
            if !keep.contains(id, number) {
                // Left out by shrinking (after its draws, so the random stream
                // stays as close to the full run as it can): the next number, or stop.
                return match keep.any_after(id, number) {
                    true => vec![self.wake(index, now_ms + 1)],
                    false => Vec::new(),
                };
            }
        }
        let op = self.history.invoke(client.id, kind.clone(), now_ms);
        client.running = Some(Running {
            op,
            kind,
            request,
            seq,
            command,
            started_ms: now_ms,
            attempt_deadline_ms: now_ms,
            attempts: Vec::new(),
            hops: 0,
            busy: 0,
            timeouts: 0,
        });
        self.attempt(now_ms, index)
    }

    fn attempt(&mut self, now_ms: u64, index: usize) -> Vec<ClientAction> {
        let node = match self.clients[index].leader_hint {
            Some(leader) => leader,
            None => *self.rng.pick(&self.nodes),
        };
        let client = &mut self.clients[index];
        let running = client.running.as_mut().expect("attempting a running op");
        if self.options.bug_fresh_seq_on_retry && !running.attempts.is_empty() {
            if let Some(command) = &running.command {
                client.seq += 1;
                running.seq = client.seq;
                running.request = Request::Write(command.clone().with_session(client.id, client.seq).encode());
            }
        }
        // Exponential backoff of the attempt timeout (1×, 2×, 4×, 8× at most), so
        // a slow cluster is not buried under retries (each retry of a write is a
        // new log entry, deduplicated only when applied).
        let timeouts = running.timeouts.min(3);
        let timeout = self.options.attempt_timeout_ms << timeouts;
        running.attempt_deadline_ms = now_ms + timeout;
        let request = running.request.clone();
        let wake = self.wake(index, now_ms + timeout);
        vec![ClientAction::Send { client: index, node, request }, wake]
    }

    fn retry_after(&mut self, now_ms: u64, index: usize, delay_ms: u64) -> Vec<ClientAction> {
        self.stats.retries += 1;
        if delay_ms == 0 {
            return self.attempt(now_ms, index);
        }
        // Keep the attempt deadline ahead of the backoff wake so it reads as a retry.
        let running = self.clients[index].running.as_mut().expect("running");
        running.attempt_deadline_ms = running.attempt_deadline_ms.max(now_ms + delay_ms + 1);
        vec![self.wake(index, now_ms + delay_ms)]
    }

    /// A reply to request `request` (an attempt of the client's current operation,
    /// or of an older one) arrived.
    pub fn on_reply(&mut self, now_ms: u64, index: usize, request: u64, reply: Reply) -> Vec<ClientAction> {
        let Some(running) = &self.clients[index].running else {
            return Vec::new();
        };
        if !running.attempts.contains(&request) {
            return Vec::new(); // About an operation already finished.
        }
        let current = running.attempts.last() == Some(&request);
        let op = running.op;
        let kind = running.kind.clone();
        match reply {
            Reply::Written(result) => {
                let outcome = match (&kind, result) {
                    (KvOp::Set { .. }, Ok(())) => KvOutcome::Ok,
                    (KvOp::Cas { .. }, Ok(())) => KvOutcome::Ok,
                    (KvOp::Cas { .. }, Err(KvError::CompareFailed)) => KvOutcome::CompareFailed,
                    (KvOp::Delete { .. }, Ok(())) => KvOutcome::Ok,
                    (KvOp::Delete { .. }, Err(KvError::KeyNotFound)) => KvOutcome::NotFound,
                    // Any other result means the write did not take effect as ours.
                    _ => KvOutcome::Unknown,
                };
                let at = (outcome != KvOutcome::Unknown).then_some(now_ms);
                let seen = &mut self.clients[index].seen;
                match (&kind, &outcome) {
                    (KvOp::Set { key, value } | KvOp::Cas { key, value, .. }, KvOutcome::Ok) => {
                        seen.insert(key.clone(), Some(value.clone()));
                    }
                    (KvOp::Delete { key }, KvOutcome::Ok | KvOutcome::NotFound) => {
                        seen.insert(key.clone(), None);
                    }
                    // Another value is there: read it before the next try.
                    (KvOp::Cas { key, .. }, KvOutcome::CompareFailed) => {
                        seen.remove(key);
                    }
                    _ => {}
                }
                self.finish(now_ms, index, op, at, outcome)
            }
            Reply::Read(value) => {
                if let KvOp::Get { key } = &kind {
                    self.clients[index].seen.insert(key.clone(), value.clone());
                }
                let outcome = match value {
                    Some(value) => KvOutcome::Value(value),
                    None => KvOutcome::NotFound,
                };
                self.finish(now_ms, index, op, Some(now_ms), outcome)
            }
            Reply::Range(pairs) => {
                if let KvOp::Range { prefix } = &kind {
                    let seen = &mut self.clients[index].seen;
                    seen.retain(|key, _| !key.starts_with(prefix.as_str()));
                    for (key, value) in &pairs {
                        seen.insert(key.clone(), Some(value.clone()));
                    }
                }
                self.finish(now_ms, index, op, Some(now_ms), KvOutcome::Range(pairs))
            }
            _ if !current => Vec::new(),
            Reply::Rejected(Rejection::NotLeader { leader: Some(leader) }) => {
                let client = &mut self.clients[index];
                let same = client.leader_hint == Some(leader);
                client.leader_hint = Some(leader);
                let running = client.running.as_mut().expect("running");
                running.hops += 1;
                // A repeated hint is stale, and hints may ping-pong: then back off.
                let delay = if same || running.hops > 3 {
                    running.hops = 0;
                    self.options.retry_backoff_ms
                } else {
                    0
                };
                self.retry_after(now_ms, index, delay)
            }
            Reply::Rejected(Rejection::NotLeader { leader: None }) | Reply::Dropped => {
                self.clients[index].leader_hint = None;
                let delay = self.options.retry_backoff_ms;
                self.retry_after(now_ms, index, delay)
            }
            Reply::Rejected(_) => {
                // Back off and retry; a node that stays busy is failed over
                // (also sidesteps a core leak of forwarded reads, see
                // tests/core_findings.rs).
                let client = &mut self.clients[index];
                let running = client.running.as_mut().expect("running");
                running.busy += 1;
                if running.busy >= BUSY_RETRIES_MAX {
                    running.busy = 0;
                    client.leader_hint = None;
                }
                let delay = self.options.retry_backoff_ms;
                self.retry_after(now_ms, index, delay)
            }
        }
    }

    fn finish(
        &mut self,
        now_ms: u64,
        index: usize,
        op: OpId,
        complete_ms: Option<u64>,
        outcome: KvOutcome,
    ) -> Vec<ClientAction> {
        if outcome == KvOutcome::Unknown {
            self.stats.unknown += 1;
        } else {
            self.stats.completed += 1;
        }
        self.history.complete(op, complete_ms, outcome);
        self.clients[index].running = None;
        let think = self.think_ms();
        vec![self.wake(index, now_ms + think)]
    }

    /// Gives up every open operation with an unknown outcome (end of a run).
    pub fn abandon_open(&mut self) {
        for index in 0..self.clients.len() {
            if let Some(running) = self.clients[index].running.take() {
                self.stats.unknown += 1;
                self.history.complete(running.op, None, KvOutcome::Unknown);
            }
        }
    }

    /// The session sequence of a client's current write (for traces).
    pub fn current_seq(&self, index: usize) -> Option<u64> {
        self.clients[index].running.as_ref().map(|running| running.seq)
    }
}

impl WorkloadOptions {
    /// The sum of the operation weights.
    pub fn total_weight(&self) -> u32 {
        self.set_weight + self.get_weight + self.delete_weight + self.cas_weight + self.range_weight
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one_writer() -> Workload {
        let options = WorkloadOptions {
            clients: 1,
            get_weight: 0,
            delete_weight: 0,
            think_ms_min: 0,
            think_ms_max: 0,
            ..WorkloadOptions::default()
        };
        Workload::new(options, vec![NodeId(1), NodeId(2), NodeId(3)], SimRng::from_seed(1))
    }

    fn sends(actions: &[ClientAction]) -> Vec<(NodeId, Request)> {
        actions
            .iter()
            .filter_map(|action| match action {
                ClientAction::Send { node, request, .. } => Some((*node, request.clone())),
                _ => None,
            })
            .collect()
    }

    fn wake_token(actions: &[ClientAction]) -> (u64, u64) {
        actions
            .iter()
            .find_map(|action| match action {
                ClientAction::Wake { at_ms, token, .. } => Some((*at_ms, *token)),
                _ => None,
            })
            .expect("a wake")
    }

    #[test]
    fn retries_reuse_the_session_and_a_late_answer_to_any_attempt_completes_the_op() {
        let mut workload = one_writer();
        let (at, token) = wake_token(&workload.start(0));
        let first = workload.on_wake(at, 0, token);
        let sent = sends(&first);
        assert_eq!(sent.len(), 1, "one send");
        let Request::Write(bytes) = sent[0].1.clone() else {
            panic!("a write");
        };
        workload.sent(0, 100);
        let command = Command::decode(&bytes).unwrap();
        assert_eq!(command.session.map(|s| (s.client_id, s.seq)), Some((1, 1)));
        // The attempt times out: the retry carries the very same command.
        let (at, token) = wake_token(&first);
        let retry = workload.on_wake(at, 0, token);
        assert_eq!(sends(&retry)[0].1, Request::Write(bytes.clone()));
        workload.sent(0, 101);
        assert_eq!(workload.stats.timeouts, 1);
        // A stale rejection of the first attempt is ignored; its late success is not.
        let ignored = workload.on_reply(at + 1, 0, 100, Reply::Rejected(Rejection::Busy));
        assert!(ignored.is_empty());
        workload.on_reply(at + 2, 0, 100, Reply::Written(Ok(())));
        let history = workload.history();
        assert_eq!(history.operations()[0].outcome, KvOutcome::Ok);
        assert_eq!(history.operations()[0].complete_ms, Some(at + 2));
        assert!(workload.is_idle());
    }

    #[test]
    fn leader_hints_are_followed_and_an_op_is_given_up_after_its_timeout() {
        let mut workload = one_writer();
        let (at, token) = wake_token(&workload.start(0));
        workload.on_wake(at, 0, token);
        workload.sent(0, 7);
        let hinted = workload.on_reply(at + 1, 0, 7, Reply::Rejected(Rejection::NotLeader { leader: Some(NodeId(3)) }));
        assert_eq!(sends(&hinted)[0].0, NodeId(3), "the retry goes to the hinted leader");
        workload.sent(0, 8);
        // No answer ever comes: attempts time out until the op timeout gives up.
        let mut now = at + 1;
        let mut actions = hinted;
        while !workload.is_idle() {
            let (wake_at, token) = wake_token(&actions);
            now = wake_at;
            actions = workload.on_wake(now, 0, token);
            if !sends(&actions).is_empty() {
                workload.sent(0, 1000 + now);
            }
        }
        assert!(now >= workload.options().op_timeout_ms);
        assert_eq!(workload.history().operations()[0].outcome, KvOutcome::Unknown);
        assert_eq!(workload.history().operations()[0].complete_ms, None);
    }
}
