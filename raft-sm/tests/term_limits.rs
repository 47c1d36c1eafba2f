//! Terms never wrap: messages with terms near `u64::MAX` are refused rather
//! than adopted, a node at the last term refuses to campaign, and a cluster hit
//! by forged extreme terms still elects leaders afterwards.

mod support;

use proptest::prelude::*;
use raft_sm::{Body, Event, LogIndex, Message, NodeId, Note, Role, Term};
use support::{ids, restored, Pump};

#[test]
fn the_term_after_the_last_is_none() {
    assert_eq!(Term(u64::MAX).next_term(), None);
    assert_eq!(Term(u64::MAX - 1).next_term(), Some(Term(u64::MAX)));
    assert_eq!(Term(0).next_term(), Some(Term(1)));
}

#[test]
fn a_node_at_the_last_term_refuses_to_campaign_and_keeps_its_term() {
    let last = u64::MAX;
    for pre_vote in [true, false] {
        let states = vec![restored(last, &[], 0), restored(0, &[], 0), restored(0, &[], 0)];
        let mut pump = Pump::from_restored(states, |c| c.pre_vote = pre_vote);
        pump.campaign(NodeId(1));
        assert_eq!(pump.node(NodeId(1)).term(), Term(last), "pre_vote={pre_vote}");
        assert_ne!(pump.node(NodeId(1)).role(), Role::Candidate);
        assert!(pump.notes_of(NodeId(1)).iter().any(|n| matches!(n, Note::TermLimit { from: None, .. })));
    }
}

fn forged(from: NodeId, to: NodeId, term: Term, kind: u8) -> Message {
    let body = match kind % 5 {
        0 => Body::RequestVote(raft_sm::RequestVote {
            pre_vote: false,
            transfer: true,
            last_log_index: LogIndex(u64::MAX / 4),
            last_log_term: term,
        }),
        1 => Body::RequestVote(raft_sm::RequestVote {
            pre_vote: true,
            transfer: false,
            last_log_index: LogIndex(0),
            last_log_term: term,
        }),
        2 => Body::AppendEntries(raft_sm::AppendEntries {
            prev_log_index: LogIndex(0),
            prev_log_term: Term(0),
            entries: vec![],
            leader_commit: LogIndex(0),
            read_round: 0,
        }),
        3 => Body::TimeoutNow,
        _ => Body::RequestVoteResponse(raft_sm::RequestVoteResponse { pre_vote: false, granted: true }),
    };
    Message { from, to, term, body }
}

/// A forged term: at the very end, just past the jump limit (relative to the
/// target's term), a jump well within it, or anything.
#[derive(Clone, Debug)]
enum Forged {
    Absolute(u64),
    Ahead(u64),
}

fn extreme_term() -> impl Strategy<Value = Forged> {
    prop_oneof![
        (0u64..4).prop_map(|k| Forged::Absolute(u64::MAX - k)),
        (1u64..4).prop_map(|k| Forged::Ahead(Term::MAX_JUMP + k)),
        (1u64..Term::MAX_JUMP / 2).prop_map(Forged::Ahead),
        any::<u64>().prop_map(Forged::Absolute),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Forged messages (as from a member, i.e. with the cluster's token) with
    /// extreme terms: no node's term ever goes down, wraps or jumps far, and
    /// after losing the leader the rest elect a new one.
    #[test]
    fn forged_extreme_terms_never_brick_the_cluster(
        attacks in proptest::collection::vec((1u64..=3, 1u64..=3, extreme_term(), any::<u8>()), 1..12)
    ) {
        let mut pump = Pump::new(3);
        pump.elect(5_000);
        let mut seen: Vec<Term> = ids(3).iter().map(|&id| pump.node(id).term()).collect();
        for (from, to, term, kind) in attacks {
            if from == to {
                continue;
            }
            let term = match term {
                Forged::Absolute(term) => term,
                Forged::Ahead(by) => pump.node(NodeId(to)).term().0.saturating_add(by),
            };
            pump.step(NodeId(to), Event::Message(forged(NodeId(from), NodeId(to), Term(term), kind)));
            // Forgeries a few seconds apart, so an accepted jump reaches every node
            // before the next. (Two jumps close to `MAX_JUMP` in quick succession
            // can leave a node that has not heard the first more than `MAX_JUMP`
            // behind; it then refuses the others' term as it would a forgery.
            // The limit bounds the damage an authenticated attacker does, the
            // cluster token keeps strangers out.)
            pump.run_for(3_000);
            for (i, &id) in ids(3).iter().enumerate() {
                let now = pump.node(id).term();
                prop_assert!(now >= seen[i], "{id}: term went from {:?} to {now:?}", seen[i]);
                prop_assert!(now.0 <= seen[i].0.saturating_add(Term::MAX_JUMP / 2 + 40), "{id} jumped to {now:?}");
                prop_assert!(now < Term(u64::MAX), "{id} adopted the last term");
                seen[i] = now;
            }
        }
        let leader = pump.elect(10_000);
        pump.crash(leader);
        let next = pump.elect(10_000);
        prop_assert_ne!(next, leader);
    }

    /// Nodes restored at terms near the end: nothing panics or wraps, terms only
    /// grow, and a node at `u64::MAX` never becomes a candidate.
    #[test]
    fn restored_extreme_terms_never_wrap(terms in proptest::collection::vec(0u64..4, 3), pre_vote: bool) {
        let states = terms.iter().map(|&k| restored(u64::MAX - k, &[], 0)).collect();
        let mut pump = Pump::from_restored(states, |c| c.pre_vote = pre_vote);
        let start: Vec<Term> = ids(3).iter().map(|&id| pump.node(id).term()).collect();
        for _ in 0..40 {
            pump.run_for(250);
            for (i, &id) in ids(3).iter().enumerate() {
                prop_assert!(pump.node(id).term() >= start[i]);
                if start[i] == Term(u64::MAX) {
                    prop_assert_ne!(pump.node(id).role(), Role::Candidate);
                }
            }
        }
    }
}

#[test]
fn a_forged_vote_request_near_the_end_is_refused_with_a_note() {
    let mut pump = Pump::new(3);
    let leader = pump.elect(5_000);
    let term = pump.node(leader).term();
    let follower = pump.followers(leader)[0];
    let other = pump.followers(leader)[1];
    pump.step(follower, Event::Message(forged(other, follower, Term(u64::MAX - 1), 0)));
    assert_eq!(pump.node(follower).term(), term);
    assert!(pump
        .notes_of(follower)
        .iter()
        .any(|n| matches!(n, Note::TermLimit { from: Some(from), term } if *from == other && term.0 == u64::MAX - 1)));
    pump.run_for(2_000);
    assert_eq!(pump.stable_leader(), Some(leader), "nothing changed");
}
