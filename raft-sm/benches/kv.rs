//! Key-value state machine benchmarks: what one replica spends applying
//! writes (the revision, the watch history record, the lease bookkeeping) and
//! taking a snapshot, with the shapes `bench/compare-etcd.sh` drives (256-byte
//! values over 10,000 keys). Run with `cargo bench -p raft-sm --bench kv`.

use criterion::{criterion_group, Criterion, Throughput};
use raft_sm::kv::{Command, KvStore};
use raft_sm::{Entry, LogIndex, Payload, StateMachine, Term};
use std::hint::black_box;

const KEYS: u64 = 10_000;
const VALUE_BYTES: usize = 256;

fn put_entry(index: u64, key: u64) -> Entry {
    let value = "v".repeat(VALUE_BYTES);
    let command = Command::set(format!("key{key:05}"), value);
    Entry { term: Term(1), index: LogIndex(index), payload: Payload::Command(command.encode()) }
}

/// A store with every key written once and its history window full.
fn loaded_store() -> (KvStore, u64) {
    let mut store = KvStore::default();
    let mut index = 0;
    for round in 0..2 {
        for key in 0..KEYS {
            index += 1;
            black_box(store.apply(&put_entry(index, (key * 7 + round) % KEYS)));
        }
    }
    (store, index)
}

fn apply_and_snapshot(c: &mut Criterion) {
    let mut group = c.benchmark_group("kv");
    const BATCH: u64 = 1_000;
    group.throughput(Throughput::Elements(BATCH));
    group.bench_function("apply_1000_puts_256B", |b| {
        let (mut store, mut index) = loaded_store();
        b.iter_batched(
            || {
                let first = index + 1;
                index += BATCH;
                (first..first + BATCH).map(|i| put_entry(i, i * 13 % KEYS)).collect::<Vec<_>>()
            },
            |entries| {
                for entry in &entries {
                    black_box(store.apply(entry));
                }
            },
            criterion::BatchSize::LargeInput,
        );
    });
    group.throughput(Throughput::Elements(1));
    group.bench_function("snapshot_10k_keys_full_history", |b| {
        let (store, _) = loaded_store();
        let mut image = Vec::new();
        b.iter(|| {
            image.clear();
            store.save_snapshot(&mut image).expect("a Vec takes every byte");
            black_box(image.len())
        });
    });
    group.finish();
}

criterion_group!(benches, apply_and_snapshot);

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
}
