//! Leadership transfer (Raft thesis §3.10): stop taking proposals, bring the
//! target up to date, then tell it to start an election at once.

use crate::event::{Note, TimerKind};
use crate::message::Body;
use crate::node::{Node, Transfer};
use crate::types::{NodeId, Role};

impl Node {
    pub(crate) fn on_transfer_leadership(&mut self, to: NodeId) {
        if self.role != Role::Leader || to == self.config.id || !self.membership().is_voter(to) {
            return; // Only a leader transfers, and only to another voter.
        }
        if self.transfer.is_some_and(|transfer| transfer.to == to) {
            return;
        }
        self.transfer = Some(Transfer { to, timeout_now_sent: false });
        self.set_timer(TimerKind::Transfer, Some(self.now_ms + self.config.transfer_timeout_ms));
        self.note(Note::TransferStarted { to });
        self.maybe_send_timeout_now(to);
        self.mark_needs_append(to);
    }

    /// Sends TimeoutNow once the target's log matches ours.
    pub(crate) fn maybe_send_timeout_now(&mut self, peer: NodeId) {
        let Some(transfer) = self.transfer else {
            return;
        };
        if transfer.to != peer || transfer.timeout_now_sent {
            return;
        }
        if self.progress[&peer].match_index == self.log.last_index() {
            self.transfer = Some(Transfer { to: peer, timeout_now_sent: true });
            self.send(peer, Body::TimeoutNow);
        }
    }

    pub(crate) fn on_transfer_timeout(&mut self) {
        if let Some(transfer) = self.transfer.take() {
            self.note(Note::TransferAborted { to: transfer.to });
        }
    }

    /// The leader asks us to take over: skip PreVote and campaign now.
    pub(crate) fn on_timeout_now(&mut self, from: NodeId) {
        if self.role == Role::Leader || self.leader != Some(from) || self.vote_held() || !self.may_campaign() {
            return;
        }
        self.become_candidate(true);
    }
}
