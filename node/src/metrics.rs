//! Counters, gauges and histograms, rendered in the Prometheus text format by
//! `GET /metrics`. Plain atomics: recording never blocks the driver.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// A monotonically growing count.
#[derive(Default)]
pub struct Counter(AtomicU64);

impl Counter {
    /// Adds one.
    pub fn inc(&self) {
        self.add(1);
    }
    /// Adds `n`.
    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }
    /// The value.
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// A value that goes up and down.
#[derive(Default)]
pub struct Gauge(AtomicU64);

impl Gauge {
    /// Sets it.
    pub fn set(&self, value: u64) {
        self.0.store(value, Ordering::Relaxed);
    }
    /// The value.
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

const BUCKETS_SECONDS: [f64; 16] =
    [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0];

/// A latency histogram with fixed buckets.
pub struct Histogram {
    buckets: [AtomicU64; BUCKETS_SECONDS.len()],
    count: AtomicU64,
    sum_micros: AtomicU64,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            buckets: std::array::from_fn(|_| AtomicU64::new(0)),
            count: AtomicU64::new(0),
            sum_micros: AtomicU64::new(0),
        }
    }
}

impl Histogram {
    /// Records one observation.
    pub fn observe(&self, elapsed: Duration) {
        let seconds = elapsed.as_secs_f64();
        if let Some(i) = BUCKETS_SECONDS.iter().position(|&le| seconds <= le) {
            self.buckets[i].fetch_add(1, Ordering::Relaxed);
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_micros.fetch_add(elapsed.as_micros() as u64, Ordering::Relaxed);
    }

    fn render(&self, out: &mut String, name: &str, help: &str) {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
        let mut cumulative = 0;
        for (i, le) in BUCKETS_SECONDS.iter().enumerate() {
            cumulative += self.buckets[i].load(Ordering::Relaxed);
            let _ = writeln!(out, "{name}_bucket{{le=\"{le}\"}} {cumulative}");
        }
        let count = self.count.load(Ordering::Relaxed);
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {count}");
        let sum = self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
        let _ = writeln!(out, "{name}_sum {sum}\n{name}_count {count}");
    }
}

/// Every metric of a node.
#[derive(Default)]
pub struct Metrics {
    /// Current term.
    pub term: Gauge,
    /// 0 follower, 1 pre-candidate, 2 candidate, 3 leader.
    pub role: Gauge,
    /// Commit index.
    pub commit_index: Gauge,
    /// Applied index.
    pub applied_index: Gauge,
    /// Proposals handed to the core.
    pub proposals: Counter,
    /// Proposals that committed and applied.
    pub proposals_committed: Counter,
    /// Proposals rejected, dropped or lost.
    pub proposals_failed: Counter,
    /// Linearizable reads asked for.
    pub reads: Counter,
    /// Elections started by this node.
    pub elections: Counter,
    /// Times this node saw a new leader.
    pub leader_changes: Counter,
    /// Snapshots written to disk.
    pub snapshots_saved: Counter,
    /// Peer messages dropped because a peer's queue was full.
    pub messages_dropped: Counter,
    /// Peer messages sent.
    pub messages_sent: Counter,
    /// Peer messages received.
    pub messages_received: Counter,
    /// fdatasync latency of the WAL.
    pub fsync_seconds: Histogram,
    /// From handing a batch with a sync to the WAL thread until the driver
    /// steps its `Persisted`: the fsync plus the thread hand-offs around it.
    pub sync_roundtrip_seconds: Histogram,
    /// Client request latency.
    pub request_seconds: Histogram,
}

impl Metrics {
    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(4096);
        let gauges = [
            ("raftkv_term", "Current Raft term.", self.term.get()),
            ("raftkv_role", "Raft role: 0 follower, 1 pre-candidate, 2 candidate, 3 leader.", self.role.get()),
            ("raftkv_commit_index", "Commit index.", self.commit_index.get()),
            ("raftkv_applied_index", "Last applied index.", self.applied_index.get()),
        ];
        for (name, help, value) in gauges {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}");
        }
        let counters = [
            ("raftkv_proposals_total", "Writes proposed to Raft.", &self.proposals),
            ("raftkv_proposals_committed_total", "Writes committed and applied.", &self.proposals_committed),
            ("raftkv_proposals_failed_total", "Writes rejected, dropped or lost.", &self.proposals_failed),
            ("raftkv_reads_total", "Linearizable reads.", &self.reads),
            ("raftkv_elections_total", "Elections started by this node.", &self.elections),
            ("raftkv_leader_changes_total", "Leader changes seen by this node.", &self.leader_changes),
            ("raftkv_snapshots_saved_total", "Snapshots written to disk.", &self.snapshots_saved),
            ("raftkv_peer_messages_sent_total", "Raft messages sent to peers.", &self.messages_sent),
            ("raftkv_peer_messages_received_total", "Raft messages received from peers.", &self.messages_received),
            ("raftkv_peer_messages_dropped_total", "Raft messages dropped (peer queue full).", &self.messages_dropped),
        ];
        for (name, help, counter) in counters {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}", counter.get());
        }
        self.fsync_seconds.render(&mut out, "raftkv_wal_fsync_seconds", "WAL fdatasync latency.");
        self.sync_roundtrip_seconds.render(
            &mut out,
            "raftkv_wal_sync_roundtrip_seconds",
            "From a write batch leaving the driver until the driver learns it is durable.",
        );
        self.request_seconds.render(&mut out, "raftkv_http_request_seconds", "Client API request latency.");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_cumulative() {
        let metrics = Metrics::default();
        metrics.fsync_seconds.observe(Duration::from_micros(80));
        metrics.fsync_seconds.observe(Duration::from_millis(3));
        metrics.term.set(7);
        let text = metrics.render();
        assert!(text.contains("raftkv_term 7\n"));
        assert!(text.contains("raftkv_wal_fsync_seconds_bucket{le=\"0.0001\"} 1\n"));
        assert!(text.contains("raftkv_wal_fsync_seconds_bucket{le=\"0.005\"} 2\n"));
        assert!(text.contains("raftkv_wal_fsync_seconds_count 2\n"));
    }
}
