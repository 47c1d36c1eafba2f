//! E1: a conflicting uncommitted tail on an old leader is overwritten.

use raft_sm::kv::Command;
use raft_sm::{Note, ProposalOutcome, Role};
use scenarios::{all_caught_up, applied_values, for_each_seed, note_mark, noted_since, write_ok, ClusterExt};
use sim::node_host::Answer;
use sim::Who;

/// E1: isolate the leader (symmetric), propose three writes there (appended,
/// never committed), let the majority elect a new leader and commit five
/// other writes at the same indices, then heal.
/// Goal: the old leader's tail is truncated (the counter proves it) and
/// replaced by the new leader's entries; no node ever applies the old writes.
#[test]
fn e1_conflicting_tail_is_overwritten_and_never_applied() {
    for_each_seed("e1_conflicting_tail_is_overwritten_and_never_applied", 0xE1_0000, |run| {
        let mut cluster = run.cluster_with_leader(3);
        write_ok(&mut cluster, &Command::set("e1", "committed"), 5_000);
        let old = cluster.resolve(Who::Leader);
        let old_term = cluster.node(old).term();
        cluster.isolate(old);
        let mut tail = Vec::new();
        let mut tail_requests = Vec::new();
        for i in 0..3 {
            match cluster.propose_tracked(old, &Command::set("e1", format!("old-tail-{i}"))) {
                (request, ProposalOutcome::Accepted { index, .. }) => {
                    tail.push(index);
                    tail_requests.push(request);
                }
                (_, other) => panic!("the isolated leader answered {other:?}"),
            }
        }
        cluster.wait_for("a new leader", |c| c.leader().is_some_and(|l| l != old), 10_000);
        let new = cluster.resolve(Who::Leader);
        for i in 0..5 {
            write_ok(&mut cluster, &Command::set("e1", format!("new-{i}")), 5_000);
        }
        let new_term = cluster.node(new).term();
        assert!(new_term > old_term);
        for &index in &tail {
            assert_eq!(cluster.node(old).core().unwrap().term_at(index), Some(old_term), "the old tail is still there");
            assert!(cluster.node(new).commit_index() >= index, "the new leader committed over index {index}");
        }
        let truncations = cluster.counters().get("truncations");
        let healed_mark = note_mark(&cluster);
        cluster.heal();
        cluster.wait_for(
            "the old leader follows and caught up",
            |c| all_caught_up(c) && c.node(old).leader() == Some(new),
            10_000,
        );
        assert_eq!(cluster.node(old).role(), Some(Role::Follower));
        // What the old leader told its clients, as the node binary tells them
        // (both run raft-sm's Host): "outcome unknown", never "not applied" and
        // never a result, although another leader's entries took the slots.
        for &request in &tail_requests {
            assert_eq!(cluster.answer(request), Some(Answer::Dropped), "request {request}");
        }
        assert!(cluster.counters().get("truncations") > truncations, "a tail was truncated");
        assert!(
            noted_since(
                &cluster,
                healed_mark,
                Some(old),
                |n| matches!(n, Note::Truncated { from, .. } if *from <= tail[0])
            ),
            "the old leader truncated its tail from {} on",
            tail[0]
        );
        for &index in &tail {
            let old_core = cluster.node(old).core().unwrap();
            assert_ne!(old_core.term_at(index), Some(old_term), "index {index} was overwritten");
            assert_eq!(old_core.entry(index), cluster.node(new).core().unwrap().entry(index));
        }
        for node in cluster.nodes() {
            let values = applied_values(&node, "e1");
            assert!(
                !values.iter().flatten().any(|v| v.starts_with("old-tail")),
                "{} applied an old-tail write",
                node.id()
            );
            assert_eq!(node.kv_get("e1").as_deref(), Some("new-4"));
        }
        cluster.check();
    });
}
