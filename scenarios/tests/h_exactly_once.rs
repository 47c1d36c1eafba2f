//! H1: exactly-once apply. (The simulator also checks after every step of every
//! scenario that each index is applied once per store, in order, and the same
//! entry everywhere; these tests state it as their own property.)

use raft_sm::kv::{Command, KvError};
use raft_sm::LogIndex;
use scenarios::{
    all_caught_up, all_have, applied_commands, for_each_seed, wait_one_leader_agreed, write_ok, ClusterExt,
};
use sim::{Cluster, Who, WriteAnswer};

/// H1 (indices): 3 nodes, 5 clients, a network that loses (5 %), duplicates
/// (10 %) and reorders (10 %) messages, no crashes, 8 s.
/// Goal: on every node each index is applied exactly once: the applied indices
/// are 1, 2, …, applied_index with no gap and no repeat, and the number of
/// apply operations the simulator counted equals the number of distinct
/// (node, index) pairs.
#[test]
fn h1_each_index_applied_exactly_once_per_node() {
    for_each_seed("h1_each_index_applied_exactly_once_per_node", 0x41_0000, |run| {
        let mut options = run.options_with_clients(3, 5);
        options.network.loss = 0.05;
        options.network.duplicate = 0.10;
        options.network.reorder = 0.10;
        let mut cluster = Cluster::new(options);
        cluster.run_for(8_000);
        cluster.check();
        let counters = cluster.counters();
        assert!(counters.get("messages_duplicated") > 0, "duplicates were delivered");
        let mut distinct = 0;
        for node in cluster.nodes() {
            let indices: Vec<LogIndex> = node.applied_entries().iter().map(|e| e.index).collect();
            let expected: Vec<LogIndex> = (1..=node.applied_index().0).map(LogIndex).collect();
            assert_eq!(indices, expected, "{} applied every index once, in order", node.id());
            distinct += indices.len() as u64;
        }
        assert!(distinct > 30, "the clients wrote something ({distinct})");
        assert_eq!(counters.get("entries_applied"), distinct, "no index was applied twice on any node");
    });
}

/// H1 (sessions): a write with client session (7, 1) is applied; the client
/// retries it (same session, same and even a different value), as it would
/// after a lost answer; then writes its next sequence number.
/// Goal: the retries are answered with the first result but never applied
/// again (the store keeps the first value; the simulator counts the suppressed
/// duplicates on every node); an older sequence number is refused.
#[test]
fn h1_session_retry_never_applies_twice() {
    for_each_seed("h1_session_retry_never_applies_twice", 0x41_5000, |run| {
        let mut cluster = run.cluster(3);
        wait_one_leader_agreed(&mut cluster, 10_000);
        let first = Command::set("h1", "first").with_session(7, 1);
        write_ok(&mut cluster, &first, 5_000);
        let suppressed = cluster.counters().get("duplicates_suppressed");
        write_ok(&mut cluster, &first, 5_000);
        let changed = Command::set("h1", "retry-with-other-value").with_session(7, 1);
        write_ok(&mut cluster, &changed, 5_000);
        cluster.wait_for("all applied", all_caught_up, 2_000);
        assert!(all_have(&cluster, "h1", "first"), "a retry never applies again");
        let duplicates = cluster.counters().get("duplicates_suppressed") - suppressed;
        assert_eq!(duplicates, 2 * 3, "two retries suppressed on each of 3 nodes");
        write_ok(&mut cluster, &Command::set("h1", "second").with_session(7, 2), 5_000);
        let stale = Command::set("h1", "stale").with_session(7, 1);
        assert_eq!(
            cluster.propose_and_wait(Who::Leader, &stale, 5_000),
            WriteAnswer::Applied(Err(KvError::SessionExpired))
        );
        cluster.wait_for("all applied", all_caught_up, 2_000);
        assert!(all_have(&cluster, "h1", "second"));
        for node in cluster.nodes() {
            let entries = applied_commands(&node).iter().filter(|c| c.key() == "h1").count();
            assert_eq!(entries, 5, "{}: five entries reached the log, two of them took effect", node.id());
        }
    });
}
