//! M: membership changes. M1 add a learner under load, it catches up by
//! snapshot and is promoted. M2 remove a follower. M3 remove the leader. M4
//! replace a crashed node under load. M5 leader crash in the middle of a joint
//! change. M6 a removed node restarted with its old configuration cannot
//! disrupt. M7 grow 3 → 5 → 7 and shrink back to 3 under a partition.
//!
//! Nodes `1..=3` bootstrap the cluster (`SimOptions::initial_voters`); the
//! others start empty and wait to be added. Every scenario ends with `check`:
//! the members converge, their stores are equal, and the clients' history is
//! linearizable (no acknowledged write lost).

use raft_sm::kv::Command;
use raft_sm::{Membership, MembershipChange, NodeId, Note, Payload, ProposalOutcome, Role, StepDownReason};
use scenarios::{for_each_seed, for_each_seed_n, write_ok, ClusterExt, Run};
use sim::{Cluster, Who};

const LIMIT_MS: u64 = 30_000;

fn ids(range: std::ops::RangeInclusive<u64>) -> Vec<NodeId> {
    range.map(NodeId).collect()
}

/// `nodes` nodes of which the first three bootstrap, `clients` clients, a
/// small snapshot threshold (so a new member catches up by snapshot).
fn cluster(run: &Run, nodes: usize, clients: usize) -> Cluster {
    let mut options = run.options_with_clients(nodes, clients);
    options.initial_voters = Some(3);
    options.snapshot_threshold_entries = 50;
    let mut cluster = Cluster::new(options);
    wait_leader(&mut cluster);
    cluster
}

/// A leader whose configuration's running members all follow it.
fn leader_followed(cluster: &Cluster) -> bool {
    let Some(leader) = cluster.leader() else {
        return false;
    };
    let Some(membership) = cluster.membership() else {
        return false;
    };
    let term = cluster.node(leader).term();
    membership.members().into_iter().all(|id| {
        let node = cluster.node(id);
        !node.is_up() || (node.leader() == Some(leader) && node.term() == term)
    })
}

fn wait_leader(cluster: &mut Cluster) -> NodeId {
    cluster.wait_for("a leader followed by its members", leader_followed, LIMIT_MS);
    cluster.resolve(Who::Leader)
}

fn ok(result: Result<(), sim::Failure>) {
    if let Err(failure) = result {
        panic!("{failure}");
    }
}

/// M1: three voters under load; a fourth node starts empty. Write well past
/// the snapshot threshold, add it as a learner, and promote it.
/// Goal: it catches up by snapshot (the leader compacted its log), the promote
/// is accepted only then, and the four voters converge.
#[test]
fn m1_add_a_learner_under_load_it_catches_up_by_snapshot_and_is_promoted() {
    for_each_seed("m1_add_a_learner_under_load_it_catches_up_by_snapshot_and_is_promoted", 0xA1_0000, |run| {
        let mut cluster = cluster(run, 4, 2);
        for i in 0..120 {
            write_ok(&mut cluster, &Command::set(format!("m1-{}", i % 7), format!("{i}")), 5_000);
        }
        // The leader compacts its log once its snapshot is durable.
        let compacted = |c: &Cluster| {
            let leader = c.leader();
            leader.is_some_and(|l| c.node(l).core().is_some_and(|core| core.log_base().0 .0 > 0))
        };
        cluster.wait_for("the leader compacted its log", compacted, LIMIT_MS);
        let leader = cluster.resolve(Who::Leader);
        ok(cluster.add_learner(NodeId(4), LIMIT_MS));
        ok(cluster.promote(NodeId(4), LIMIT_MS));
        let base = cluster.node(NodeId(4)).core().expect("runs").log_base();
        assert!(
            cluster.saw_note(Some(NodeId(4)), |note| matches!(note, Note::SnapshotInstalled { .. })),
            "n4 base {base:?}; leader base {:?}; notes {:?}",
            cluster.node(leader).core().expect("runs").log_base(),
            cluster.notes().iter().filter(|(_, id, _)| *id == NodeId(4)).take(12).collect::<Vec<_>>()
        );
        assert_eq!(cluster.membership(), Some(Membership::new(ids(1..=4))));
        write_ok(&mut cluster, &Command::set("m1-after", "4"), 5_000);
        cluster.check();
        assert_eq!(cluster.node(NodeId(4)).kv_get("m1-after").as_deref(), Some("4"));
    });
}

/// M2: remove a follower of three under load.
/// Goal: the two left commit on their own; the removed node keeps running and
/// is left behind, without disturbing them.
#[test]
fn m2_remove_a_follower() {
    for_each_seed("m2_remove_a_follower", 0xA2_0000, |run| {
        let mut cluster = cluster(run, 3, 2);
        let removed = cluster.resolve(Who::Follower(0));
        ok(cluster.remove(removed, LIMIT_MS));
        let leader = cluster.resolve(Who::Leader);
        let membership = cluster.membership().expect("a leader");
        assert!(!membership.contains(removed));
        assert_eq!(membership.voters.len(), 2);
        let term = cluster.node(leader).term();
        for i in 0..20 {
            write_ok(&mut cluster, &Command::set("m2", format!("{i}")), 5_000);
        }
        assert_eq!(cluster.node(leader).term(), term, "the removed node never disturbed the leader");
        cluster.check();
    });
}

/// M3: remove the leader of three.
/// Goal: it leads until the change commits (the change is answered applied),
/// then steps down and hands over; a new leader of the two left takes writes;
/// the old leader never leads again.
#[test]
fn m3_remove_the_leader() {
    for_each_seed("m3_remove_the_leader", 0xA3_0000, |run| {
        let mut cluster = cluster(run, 3, 2);
        let old = cluster.resolve(Who::Leader);
        ok(cluster.remove(old, LIMIT_MS));
        assert!(cluster.saw_note(Some(old), |note| matches!(
            note,
            Note::SteppedDown { reason: StepDownReason::RemovedFromConfiguration, .. }
        )));
        let new = wait_leader(&mut cluster);
        assert_ne!(new, old);
        write_ok(&mut cluster, &Command::set("m3", "after"), 5_000);
        cluster.run_for(10_000);
        assert_ne!(cluster.node(old).role(), Some(Role::Leader));
        cluster.check();
    });
}

/// M4: three voters under load; a follower crashes for good. Add a fresh fourth
/// node, promote it and remove the dead one in one joint change (`replace`).
/// Goal: the joint configuration is entered and left; the three live voters
/// converge; no acknowledged write is lost (linearizability and equal stores).
#[test]
fn m4_replace_a_crashed_node_under_load() {
    for_each_seed("m4_replace_a_crashed_node_under_load", 0xA4_0000, |run| {
        let mut cluster = cluster(run, 4, 4);
        cluster.run_for(2_000);
        let dead = cluster.crash(Who::Follower(0));
        cluster.run_for(2_000);
        ok(cluster.replace(dead, NodeId(4), LIMIT_MS));
        let membership = cluster.membership().expect("a leader");
        assert!(!membership.is_joint());
        assert!(membership.voters.contains(&NodeId(4)) && !membership.contains(dead), "{membership}");
        assert!(cluster.counters().get("membership_joint_committed") >= 1, "it went through joint");
        cluster.run_for(2_000);
        cluster.check();
    });
}

/// M5: a learner is added, then a joint replace is started and the leader
/// crashes as soon as its followers hold the joint entry.
/// Goal: whoever leads next finishes or discards the change, never leaving the
/// cluster joint; over the seeds, some new leader left the joint configuration
/// the old one entered (the change committed across the crash).
#[test]
fn m5_leader_crash_in_the_middle_of_a_joint_change() {
    let mut finished_by_new_leader = 0;
    for_each_seed_n("m5_leader_crash_in_the_middle_of_a_joint_change", 0xA5_0000, 8, |run| {
        let mut cluster = cluster(run, 4, 2);
        ok(cluster.add_learner(NodeId(4), LIMIT_MS));
        cluster.run_for(1_000);
        let leader = cluster.resolve(Who::Leader);
        let gone = cluster.resolve(Who::Follower(0));
        let gone = if gone == NodeId(4) { cluster.resolve(Who::Follower(1)) } else { gone };
        let (_, outcome) = cluster.change_membership(MembershipChange::Replace { add: NodeId(4), remove: gone });
        let ProposalOutcome::Accepted { index, .. } = outcome else {
            panic!("the replace was refused: {outcome:?}");
        };
        let held_by_followers = move |cluster: &Cluster| {
            cluster.nodes().iter().filter(|n| n.id() != leader).all(|n| {
                n.core()
                    .is_some_and(|core| matches!(core.entry(index).map(|e| &e.payload), Some(Payload::Membership(_))))
            })
        };
        cluster.wait_for("the followers hold the joint entry", held_by_followers, 5_000);
        cluster.crash(leader);
        cluster.wait_for("settled", Cluster::membership_settled, LIMIT_MS);
        let membership = cluster.membership().expect("a leader");
        assert!(!membership.is_joint(), "{membership}");
        finished_by_new_leader += cluster.counters().get("membership_joint_left_by_new_leader");
        cluster.restart(leader);
        cluster.check();
    });
    if scenarios::sim_seed().is_none() {
        assert!(finished_by_new_leader > 0, "no seed had a new leader finish the joint change");
    }
}

/// M6: a follower crashes; it is removed while down; it restarts with its old
/// configuration (where it is still a voter).
/// Goal: it cannot disrupt (the leader's term stays) nor win an election.
#[test]
fn m6_a_removed_node_restarted_with_its_old_configuration_cannot_disrupt() {
    for_each_seed("m6_a_removed_node_restarted_with_its_old_configuration_cannot_disrupt", 0xA6_0000, |run| {
        let mut cluster = cluster(run, 3, 2);
        let removed = cluster.crash(Who::Follower(0));
        ok(cluster.remove(removed, LIMIT_MS));
        cluster.restart(removed);
        let old = cluster.node(removed).core().expect("runs").membership().clone();
        assert!(old.is_voter(removed), "it restarted with its old configuration: {old}");
        let leader = cluster.resolve(Who::Leader);
        let term = cluster.node(leader).term();
        cluster.run_for(20_000);
        assert_eq!(cluster.leader(), Some(leader));
        assert_eq!(cluster.node(leader).term(), term, "the removed node never raised the members' term");
        assert_ne!(cluster.node(removed).role(), Some(Role::Leader));
        cluster.check();
    });
}

/// M7: seven nodes, three voters: grow to five, then seven (add learner and
/// promote, one at a time); cut two voters off; shrink back to three, removing
/// the two cut off first.
/// Goal: every change commits with the majority that is connected, and the
/// three left converge after the heal.
#[test]
fn m7_grow_3_5_7_and_shrink_back_to_3_under_a_partition() {
    for_each_seed("m7_grow_3_5_7_and_shrink_back_to_3_under_a_partition", 0xA7_0000, |run| {
        let mut cluster = cluster(run, 7, 2);
        for id in ids(4..=7) {
            ok(cluster.add_learner(id, LIMIT_MS));
            ok(cluster.promote(id, LIMIT_MS));
            if id == NodeId(5) {
                assert_eq!(cluster.membership().expect("a leader").voters.len(), 5);
            }
        }
        assert_eq!(cluster.membership(), Some(Membership::new(ids(1..=7))));
        let leader = cluster.resolve(Who::Leader);
        let others: Vec<NodeId> = ids(1..=7).into_iter().filter(|&id| id != leader).collect();
        let (cut_a, cut_b) = (others[0], others[1]);
        cluster.isolate(cut_a);
        cluster.isolate(cut_b);
        let mut removals = vec![cut_a, cut_b, others[2], others[3]];
        for id in removals.drain(..) {
            ok(cluster.remove(id, LIMIT_MS));
        }
        let membership = cluster.membership().expect("a leader");
        assert_eq!(membership.voters.len(), 3, "{membership}");
        cluster.heal();
        write_ok(&mut cluster, &Command::set("m7", "three"), 5_000);
        cluster.check();
    });
}
