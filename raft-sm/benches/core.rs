//! Core benchmarks: proposals per second through a 3-node cluster wired in
//! memory (no IO, no JSON), the cost of single steps, and bytes of memory per
//! log entry. Run with `cargo bench -p raft-sm`.

use criterion::{criterion_group, BenchmarkId, Criterion, Throughput};
use raft_sm::kv::{Command, KvStore};
use raft_sm::{
    Body, Config, Event, Host, LogIndex, MemorySnapshots, Message, NodeId, Output, RestoredState, Role, SnapshotOrigin,
    TimerKind, Write,
};
use std::collections::VecDeque;
use std::hint::black_box;

/// Three hosts (the same executor the node and the simulator run), instant
/// network and disk.
struct InMemory {
    hosts: Vec<Host<KvStore>>,
    snapshots: Vec<MemorySnapshots>,
    wire: VecDeque<Message>,
    now_ms: u64,
}

impl InMemory {
    fn new(voters: u64, tweak: impl Fn(&mut Config)) -> InMemory {
        let ids: Vec<NodeId> = (1..=voters).map(NodeId).collect();
        let mut cluster = InMemory { hosts: Vec::new(), snapshots: Vec::new(), wire: VecDeque::new(), now_ms: 0 };
        for &id in &ids {
            let mut config = Config::new(id, ids.clone());
            tweak(&mut config);
            cluster.hosts.push(Host::new(config, RestoredState::default(), KvStore::default(), None).expect("valid"));
            cluster.snapshots.push(MemorySnapshots::default());
        }
        for i in 0..cluster.hosts.len() {
            cluster.hosts[i].start(0);
            cluster.execute(i);
        }
        // Node 1 campaigns first and wins.
        cluster.now_ms = 5_000;
        cluster.hosts[0].step(cluster.now_ms, Event::Timer(TimerKind::Election));
        cluster.execute(0);
        cluster.settle();
        assert_eq!(cluster.hosts[0].node().role(), Role::Leader);
        cluster
    }

    /// Carries out `at`'s outputs: every write is durable at once.
    fn execute(&mut self, at: usize) {
        loop {
            let mut followups = Vec::new();
            while let Some(output) = self.hosts[at].poll_output() {
                match output {
                    Output::Send(message) => self.wire.push_back(message),
                    Output::Sync(id) => followups.push(Event::Persisted { id }),
                    Output::TakeSnapshot => {
                        self.snapshots[at].take_snapshot(&mut self.hosts[at], self.now_ms);
                    }
                    Output::RestoreSnapshot(_) => self.snapshots[at].restore(&mut self.hosts[at], self.now_ms),
                    Output::SendSnapshotChunk(chunk) => self.wire.extend(self.snapshots[at].chunk(chunk)),
                    Output::Write(write) if self.snapshots[at].write(&write) => {
                        if let Write::SaveSnapshot { meta, origin: SnapshotOrigin::Taken } = write {
                            followups.push(Event::SnapshotPersisted { index: meta.last_index })
                        }
                    }
                    output => {
                        black_box(output);
                    }
                }
            }
            if followups.is_empty() {
                return;
            }
            self.hosts[at].step_batch(self.now_ms, followups);
        }
    }

    fn settle(&mut self) {
        while let Some(message) = self.wire.pop_front() {
            let at = (message.to.0 - 1) as usize;
            self.hosts[at].step(self.now_ms, Event::Message(message));
            self.execute(at);
        }
    }

    fn propose_batch(&mut self, first_id: u64, count: u64, value: &str) {
        let events = (first_id..first_id + count).map(|id| Event::Propose {
            id,
            command: Command::set(format!("key{}", id % 10_000), value).with_session(id % 64, id).encode(),
        });
        self.hosts[0].step_batch(self.now_ms, events);
        self.execute(0);
        self.settle();
    }

    /// Steps one event on `at` and throws its outputs away (single-step benches).
    fn step_once(&mut self, at: usize, event: Event) -> usize {
        self.hosts[at].step(self.now_ms, event);
        self.hosts[at].drain_outputs().count()
    }
}

fn proposals_through_three_nodes(c: &mut Criterion) {
    let mut group = c.benchmark_group("three_node_cluster_in_memory");
    let value = "v".repeat(256);
    for batch in [1u64, 16, 64, 256] {
        group.throughput(Throughput::Elements(batch));
        group.bench_with_input(BenchmarkId::new("proposals_committed_applied", batch), &batch, |b, &batch| {
            let mut cluster = InMemory::new(3, |c| c.snapshot_threshold_entries = 50_000);
            let mut next_id = 0;
            b.iter(|| {
                cluster.propose_batch(next_id, batch, &value);
                next_id += batch;
            });
            let n: Vec<&raft_sm::Node> = cluster.hosts.iter().map(Host::node).collect();
            assert!(
                n[2].applied_index() >= LogIndex(next_id),
                "commit {:?} {:?} {:?} applied {:?} {:?} {:?} next {next_id}",
                n[0].commit_index(),
                n[1].commit_index(),
                n[2].commit_index(),
                n[0].applied_index(),
                n[1].applied_index(),
                n[2].applied_index()
            );
        });
    }
    group.finish();
}

fn single_steps(c: &mut Criterion) {
    let mut group = c.benchmark_group("one_step");
    let mut cluster = InMemory::new(3, |_| {});
    cluster.propose_batch(0, 100, "value");
    let leader = cluster.hosts[0].node();
    let (term, last) = (leader.term(), leader.last_log_index());
    let heartbeat = Message {
        from: NodeId(1),
        to: NodeId(2),
        term,
        body: Body::AppendEntries(raft_sm::AppendEntries {
            prev_log_index: last,
            prev_log_term: term,
            entries: Vec::new(),
            leader_commit: last,
            read_round: 0,
        }),
    };
    group.bench_function("follower_handles_heartbeat", |b| {
        b.iter(|| black_box(cluster.step_once(1, Event::Message(heartbeat.clone()))))
    });
    let ack = Message {
        from: NodeId(2),
        to: NodeId(1),
        term,
        body: Body::AppendEntriesResponse(raft_sm::AppendEntriesResponse {
            success: true,
            match_index: last,
            reject_hint: None,
            read_round: 0,
        }),
    };
    group.bench_function("leader_handles_append_ack", |b| {
        b.iter(|| black_box(cluster.step_once(0, Event::Message(ack.clone()))))
    });
    group.bench_function("follower_handles_stale_timer", |b| {
        b.iter(|| {
            cluster.hosts[1].handle_timeout(cluster.now_ms);
            black_box(cluster.hosts[1].drain_outputs().count())
        })
    });
    group.finish();
}

/// Bytes of resident memory per log entry (32-byte keys, 256-byte values) held by
/// a single-node leader with snapshots off. Printed, not asserted.
fn memory_per_entry_report() {
    fn rss_bytes() -> u64 {
        let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
        let pages: u64 = statm.split_whitespace().nth(1).and_then(|p| p.parse().ok()).unwrap_or(0);
        pages * 4096
    }
    let entries = 200_000u64;
    let before = rss_bytes();
    let mut cluster = InMemory::new(1, |c| c.snapshot_threshold_entries = 0);
    let value = "v".repeat(256);
    for batch in 0..entries / 1000 {
        cluster.propose_batch(batch * 1000, 1000, &value);
    }
    let after = rss_bytes();
    let encoded = Command::set("key00000", &value).with_session(1, 1).encode().len();
    if before > 0 {
        println!(
            "memory: {} entries in the log and the kv store: {:.0} bytes RSS per entry (command {} bytes encoded)",
            cluster.hosts[0].node().log_len(),
            (after - before) as f64 / entries as f64,
            encoded
        );
    }
}

criterion_group!(benches, proposals_through_three_nodes, single_steps);

fn main() {
    memory_per_entry_report();
    benches();
    Criterion::default().configure_from_args().final_summary();
}
