//! Counters, gauges and histograms of a node, kept and rendered by
//! `prometheus-client` in the Prometheus text format (version 0.0.4) for
//! `GET /metrics`. Counters and gauges are atomics and histograms take a short
//! uncontended lock, so recording never blocks the driver.
//!
//! The wrappers keep the call sites small (`inc()`, `set(u64)`,
//! `observe(Duration)`, `get()`) and fix the value types: `u64` everywhere.

use prometheus_client::encoding::prometheus_text;
use prometheus_client::metrics::counter::Counter as PromCounter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge as PromGauge;
use prometheus_client::metrics::histogram::Histogram as PromHistogram;
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

/// The `Content-Type` of [`Metrics::render`]'s text.
pub const CONTENT_TYPE: &str = prometheus_text::CONTENT_TYPE;

/// A monotonically growing count.
#[derive(Default, Clone, Debug)]
pub struct Counter(PromCounter<u64, AtomicU64>);

impl Counter {
    /// Adds one.
    pub fn inc(&self) {
        self.0.inc();
    }
    /// Adds `n`.
    pub fn add(&self, n: u64) {
        self.0.inc_by(n);
    }
    /// The value.
    pub fn get(&self) -> u64 {
        self.0.get()
    }
}

/// A value that goes up and down.
#[derive(Default, Clone, Debug)]
pub struct Gauge(PromGauge<u64, AtomicU64>);

impl Gauge {
    /// Sets it.
    pub fn set(&self, value: u64) {
        self.0.set(value);
    }
    /// The value.
    pub fn get(&self) -> u64 {
        self.0.get()
    }
}

/// Upper bounds of the latency buckets, in seconds (50 µs to 5 s).
const BUCKETS_SECONDS: [f64; 16] =
    [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0];

/// A latency histogram with fixed buckets, in seconds.
#[derive(Clone, Debug)]
pub struct Histogram(PromHistogram);

impl Default for Histogram {
    fn default() -> Self {
        Histogram(PromHistogram::new(BUCKETS_SECONDS))
    }
}

impl Histogram {
    /// Records one observation.
    pub fn observe(&self, elapsed: Duration) {
        self.0.observe(elapsed.as_secs_f64());
    }
}

/// Every metric of a node.
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
    /// On the leader, per follower (label `peer`): entries behind the leader's last index.
    pub follower_lag_entries: Family<Vec<(String, String)>, PromGauge<u64, AtomicU64>>,
    /// On the leader, per follower: ms since it last answered (absent before its first answer).
    pub follower_last_contact_ms: Family<Vec<(String, String)>, PromGauge<u64, AtomicU64>>,
    /// Every metric above, by its exposed name (the registry holds handles to
    /// the same values).
    registry: Registry,
}

impl Default for Metrics {
    fn default() -> Self {
        let metrics = Metrics {
            term: Gauge::default(),
            role: Gauge::default(),
            commit_index: Gauge::default(),
            applied_index: Gauge::default(),
            proposals: Counter::default(),
            proposals_committed: Counter::default(),
            proposals_failed: Counter::default(),
            reads: Counter::default(),
            elections: Counter::default(),
            leader_changes: Counter::default(),
            snapshots_saved: Counter::default(),
            messages_dropped: Counter::default(),
            messages_sent: Counter::default(),
            messages_received: Counter::default(),
            fsync_seconds: Histogram::default(),
            sync_roundtrip_seconds: Histogram::default(),
            request_seconds: Histogram::default(),
            follower_lag_entries: Family::default(),
            follower_last_contact_ms: Family::default(),
            registry: Registry::default(),
        };
        metrics.registered()
    }
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.render())
    }
}

impl Metrics {
    /// Registers every field under its name and HELP text. The encoder adds the
    /// final `.` to each HELP text and the `_total` suffix to each counter.
    fn registered(mut self) -> Self {
        let registry = &mut self.registry;
        let gauges = [
            ("raftkv_term", "Current Raft term", &self.term),
            ("raftkv_role", "Raft role: 0 follower, 1 pre-candidate, 2 candidate, 3 leader", &self.role),
            ("raftkv_commit_index", "Commit index", &self.commit_index),
            ("raftkv_applied_index", "Last applied index", &self.applied_index),
        ];
        for (name, help, gauge) in gauges {
            registry.register(name, help, gauge.0.clone());
        }
        let counters = [
            ("raftkv_proposals", "Writes proposed to Raft", &self.proposals),
            ("raftkv_proposals_committed", "Writes committed and applied", &self.proposals_committed),
            ("raftkv_proposals_failed", "Writes rejected, dropped or lost", &self.proposals_failed),
            ("raftkv_reads", "Linearizable reads", &self.reads),
            ("raftkv_elections", "Elections started by this node", &self.elections),
            ("raftkv_leader_changes", "Leader changes seen by this node", &self.leader_changes),
            ("raftkv_snapshots_saved", "Snapshots written to disk", &self.snapshots_saved),
            ("raftkv_peer_messages_sent", "Raft messages sent to peers", &self.messages_sent),
            ("raftkv_peer_messages_received", "Raft messages received from peers", &self.messages_received),
            ("raftkv_peer_messages_dropped", "Raft messages dropped (peer queue full)", &self.messages_dropped),
        ];
        for (name, help, counter) in counters {
            registry.register(name, help, counter.0.clone());
        }
        let histograms = [
            ("raftkv_wal_fsync_seconds", "WAL fdatasync latency", &self.fsync_seconds),
            (
                "raftkv_wal_sync_roundtrip_seconds",
                "From a write batch leaving the driver until the driver learns it is durable",
                &self.sync_roundtrip_seconds,
            ),
            ("raftkv_http_request_seconds", "Client API request latency", &self.request_seconds),
        ];
        for (name, help, histogram) in histograms {
            registry.register(name, help, histogram.0.clone());
        }
        registry.register(
            "raftkv_follower_lag_entries",
            "Leader only: entries a follower is behind the leader's last log index",
            self.follower_lag_entries.clone(),
        );
        registry.register(
            "raftkv_follower_last_contact_ms",
            "Leader only: milliseconds since a follower last answered",
            self.follower_last_contact_ms.clone(),
        );
        self
    }

    /// Replaces the per-follower gauges with `contacts` (id, match index, ms
    /// since its last answer), as the leader sees them; empty elsewhere.
    pub fn set_followers(
        &self,
        contacts: &[(raft_sm::NodeId, raft_sm::LogIndex, Option<u64>)],
        last_index: raft_sm::LogIndex,
        name: impl Fn(raft_sm::NodeId) -> String,
    ) {
        self.follower_lag_entries.clear();
        self.follower_last_contact_ms.clear();
        for &(id, match_index, ago_ms) in contacts {
            let labels = vec![("peer".to_owned(), name(id))];
            self.follower_lag_entries.get_or_create(&labels).set(last_index.0.saturating_sub(match_index.0));
            if let Some(ago_ms) = ago_ms {
                self.follower_last_contact_ms.get_or_create(&labels).set(ago_ms);
            }
        }
    }

    /// The Prometheus text exposition (version 0.0.4, [`CONTENT_TYPE`]).
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(8192);
        prometheus_text::encode(&mut out, &self.registry).expect("writing to a String cannot fail");
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
        assert!(text.contains("raftkv_term 7\n"), "{text}");
        assert!(text.contains("raftkv_wal_fsync_seconds_bucket{le=\"5e-05\"} 0\n"), "{text}");
        assert!(text.contains("raftkv_wal_fsync_seconds_bucket{le=\"0.0001\"} 1\n"), "{text}");
        assert!(text.contains("raftkv_wal_fsync_seconds_bucket{le=\"0.005\"} 2\n"), "{text}");
        assert!(text.contains("raftkv_wal_fsync_seconds_bucket{le=\"+Inf\"} 2\n"), "{text}");
        assert!(text.contains("raftkv_wal_fsync_seconds_count 2\n"), "{text}");
    }

    #[test]
    fn names_types_and_help_are_the_documented_ones() {
        let metrics = Metrics::default();
        metrics.proposals.add(3);
        metrics.proposals.inc();
        assert_eq!(metrics.proposals.get(), 4);
        let text = metrics.render();
        for expected in [
            "# HELP raftkv_term Current Raft term.\n# TYPE raftkv_term gauge\nraftkv_term 0\n",
            "# HELP raftkv_role Raft role: 0 follower, 1 pre-candidate, 2 candidate, 3 leader.\n# TYPE raftkv_role gauge\n",
            "# HELP raftkv_proposals_total Writes proposed to Raft.\n# TYPE raftkv_proposals_total counter\nraftkv_proposals_total 4\n",
            "# HELP raftkv_peer_messages_dropped_total Raft messages dropped (peer queue full).\n# TYPE raftkv_peer_messages_dropped_total counter\n",
            "# HELP raftkv_wal_fsync_seconds WAL fdatasync latency.\n# TYPE raftkv_wal_fsync_seconds histogram\n",
            "# HELP raftkv_wal_sync_roundtrip_seconds From a write batch leaving the driver until the driver learns it is durable.\n",
            "# HELP raftkv_http_request_seconds Client API request latency.\n# TYPE raftkv_http_request_seconds histogram\n",
        ] {
            assert!(text.contains(expected), "missing {expected:?} in\n{text}");
        }
        assert!(!text.contains("_total_total"), "{text}");
    }

    #[test]
    fn a_term_beyond_i64_is_shown_as_it_is() {
        let metrics = Metrics::default();
        metrics.term.set(u64::MAX - 1);
        assert!(metrics.render().contains(&format!("raftkv_term {}\n", u64::MAX - 1)));
    }
}
