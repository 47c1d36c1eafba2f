//! The persistence contract seen from the wire: a message that reveals durable
//! state is only sent once that state is on disk (Raft §5.1 and thesis §3.8).
//! A granted vote must be in the durable hard state (or superseded by a later
//! durable term); an acknowledged entry must be in the durable log.

use super::Violation;
use crate::node_host::NodeHost;
use raft_sm::{Body, Message};

/// Checks one message `host` is putting on the wire against its disk.
pub fn check_send(host: &NodeHost, message: &Message) -> Result<(), Violation> {
    let durable = host.disk.durable();
    match &message.body {
        Body::RequestVoteResponse(raft_sm::RequestVoteResponse { pre_vote: false, granted: true }) => {
            let hard = durable.hard_state;
            let ok = hard.term > message.term || (hard.term == message.term && hard.voted_for == Some(message.to));
            if !ok {
                return Err(Violation::new(
                    "durability",
                    format!(
                        "{} granted its vote in {} to {} but the disk holds term {} vote {:?}",
                        message.from, message.term, message.to, hard.term, hard.voted_for
                    ),
                ));
            }
        }
        Body::AppendEntriesResponse(raft_sm::AppendEntriesResponse { success: true, match_index, .. }) => {
            if durable.hard_state.term > message.term {
                return Ok(()); // Moved on; the acknowledgement is about an older term.
            }
            let snapshot_index = durable.snapshot.as_ref().map(|s| s.meta.last_index).unwrap_or_default();
            let covered = *match_index <= snapshot_index.max(durable.log_base);
            if !covered && durable.last_index() < *match_index {
                return Err(Violation::new(
                    "durability",
                    format!(
                        "{} acknowledged entries up to {match_index} to {} but its disk holds up to {}",
                        message.from,
                        message.to,
                        durable.last_index()
                    ),
                ));
            }
        }
        _ => {}
    }
    Ok(())
}
