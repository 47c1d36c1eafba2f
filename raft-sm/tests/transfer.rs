//! Leadership transfer (Raft thesis §3.10).

mod support;

use raft_sm::kv::Command;
use raft_sm::{Event, Note, ProposalOutcome, Rejection, Role};
use support::{ids, Pump};

#[test]
fn leadership_moves_to_the_named_node_and_nothing_is_lost() {
    let mut pump = Pump::new(3);
    let old = pump.elect(5_000);
    let target = pump.followers(old)[1];
    let old_term = pump.node(old).term();
    for i in 0..10 {
        pump.propose(old, i, &Command::set(format!("k{i}"), "v"));
    }
    pump.step(old, Event::TransferLeadership { to: target });
    pump.propose(old, 99, &Command::set("during", "transfer"));
    assert_eq!(pump.proposals[&99], ProposalOutcome::Rejected(Rejection::TransferInProgress));
    pump.run_for(1_000);
    assert_eq!(pump.stable_leader(), Some(target));
    assert!(pump.node(target).term() > old_term, "the target won an election in a new term");
    assert_eq!(pump.node(old).role(), Role::Follower);
    assert!(pump.notes_of(old).iter().any(|n| matches!(n, Note::TransferStarted { .. })));
    for id in ids(3) {
        assert_eq!(pump.hosts[&id].kv().len(), 10, "{id} has every write from before the transfer");
    }
}

#[test]
fn a_transfer_to_an_unreachable_node_times_out_and_proposals_resume() {
    let mut pump = Pump::new(3);
    let leader = pump.elect(5_000);
    let target = pump.followers(leader)[0];
    pump.crash(target);
    pump.propose(leader, 1, &Command::set("a", "1"));
    pump.step(leader, Event::TransferLeadership { to: target });
    pump.run_for(2_000);
    assert_eq!(pump.node(leader).role(), Role::Leader);
    assert!(pump.notes_of(leader).iter().any(|n| matches!(n, Note::TransferAborted { .. })));
    pump.propose(leader, 2, &Command::set("b", "2"));
    assert!(matches!(pump.proposals[&2], ProposalOutcome::Accepted { .. }));
}
