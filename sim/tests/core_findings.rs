//! Behaviours of the raft-sm core found by the simulator, pinned as tests.

use raft_sm::{Action, Config, Event, Node, NodeId, RestoredState, Role, TimerKind};

/// Found by `sim explore --nodes 1` (seed 0x138c6 before the checker learned
/// to forget entries a crash lost everywhere): a single-node cluster becomes
/// leader in the same step that raises its term, before the self-vote is
/// durable, and accepts proposals in that term. If it crashes before the fsync
/// it restarts in the old term, leads the same term again and may place a
/// different command at the same (index, term) it already answered
/// `Accepted { index, term }` for. Nothing committed is lost (commit waits for
/// the local fsync), so this is benign for the simulator's clients, but it
/// breaks "one leader per term" across incarnations and makes (index, term)
/// ambiguous as a proposal's identity. Multi-node clusters are not affected:
/// vote requests leave only after the self-vote is durable.
/// Expected: the node becomes leader only once its vote is durable.
#[test]
#[ignore = "raft-sm: a single-node cluster leads a term before its vote is durable"]
fn a_single_node_leads_only_once_its_vote_is_durable() {
    let mut node = Node::new(Config::new(NodeId(1), vec![NodeId(1)]), RestoredState::default()).unwrap();
    let deadline = node
        .start(0)
        .iter()
        .find_map(|action| match action {
            Action::SetTimer { kind: TimerKind::Election, deadline_ms } => *deadline_ms,
            _ => None,
        })
        .expect("an election timer");
    let actions = node.step(deadline, Event::Timer(TimerKind::Election));
    assert!(actions.iter().any(|action| matches!(action, Action::Sync { .. })), "the vote is being persisted");
    assert_ne!(node.role(), Role::Leader, "leader before the vote for its own term is durable");
}
