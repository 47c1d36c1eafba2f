//! Leases: replicated grants with a TTL that keys attach to, and the leader's
//! clock that decides when one expires.
//!
//! **Replicated part** ([`Leases::table`]): per lease its TTL, its renewal count
//! (grows with every keep-alive) and its keys. Grant, keep-alive, revoke and
//! expire are log commands; every node applies them identically, and the table
//! is in snapshots.
//!
//! **The leader's clock** ([`LeaseClock`], volatile, never in a snapshot): only
//! the node that leads reads time, and only through the host, which calls
//! [`Leases::leader_duties`] with its `now_ms` after every step. On the first
//! call of a term the leader gives every lease a fresh TTL (a new leader never
//! expires a lease early: it cannot know when the old leader last renewed it).
//! A grant or keep-alive applied while leading sets the lease's deadline to the
//! time of its apply plus the TTL (the apply follows the client's request, so
//! the deadline is never before the request's time plus the TTL). When a
//! deadline passes, the leader proposes [`super::Op::LeaseExpire`] carrying the
//! renewal count it saw; applying it expires the lease only if no keep-alive was
//! applied since (the count still matches), so a decision raced by a keep-alive
//! is void. Followers keep no deadlines at all.

use crate::codec::{put_u64, ImageWriter, Reader};
use crate::types::Term;
use std::collections::{BTreeMap, BTreeSet};

/// Longest TTL a lease may have (one year), so deadlines never overflow.
pub const LEASE_TTL_S_MAX: u64 = 365 * 24 * 3600;

/// How long the leader waits before proposing an expiry again when the first
/// proposal did not take effect (dropped by a leadership change, or lost).
pub const LEASE_EXPIRE_RETRY_MS: u64 = 500;

/// One lease as every node holds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lease {
    /// Time to live after each keep-alive, in seconds.
    pub ttl_s: u64,
    /// Keep-alives applied since the grant.
    pub renewals: u64,
    /// The keys attached to it (deleted with it).
    pub keys: BTreeSet<String>,
}

/// The leader's view of lease deadlines (volatile: rebuilt on every new term).
#[derive(Clone, Debug, Default)]
pub(crate) struct LeaseClock {
    /// The term this clock was started for; `None` while not leading.
    term: Option<Term>,
    /// Lease id → when it expires, on the leader's clock.
    deadlines_ms: BTreeMap<u64, u64>,
    /// Leases granted or renewed by entries applied since the last call: their
    /// deadline starts at the next call's `now_ms` (the apply's time).
    renewed: BTreeSet<u64>,
    /// Lease id → when its expiry was last proposed.
    proposed_ms: BTreeMap<u64, u64>,
    /// The clock at the last call.
    now_ms: u64,
}

/// The replicated lease table and the leader's clock over it.
#[derive(Clone, Debug, Default)]
pub(crate) struct Leases {
    /// Lease id → lease.
    pub(crate) table: BTreeMap<u64, Lease>,
    /// The highest id ever granted (replicated): ids are never reused, so a
    /// client holding an expired lease cannot renew its successor.
    last_id: u64,
    clock: LeaseClock,
    /// A deliberate bug (mutants only): keep-alives do not move the deadline.
    pub(crate) ignore_keepalives: bool,
}

/// An expiry the leader wants proposed: lease `id` at renewal count `renewals`,
/// decided at `decided_at_ms` on the leader's clock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct DueExpiry {
    pub(crate) id: u64,
    pub(crate) renewals: u64,
    pub(crate) decided_at_ms: u64,
}

impl Leases {
    /// The id a grant asking for id 0 gets: one above the highest ever
    /// granted, so replicas agree without coordination.
    pub(crate) fn next_id(&self) -> u64 {
        self.last_id + 1
    }

    /// Records a grant of `id`.
    pub(crate) fn granted(&mut self, id: u64, ttl_s: u64) {
        self.table.insert(id, Lease { ttl_s, renewals: 0, keys: BTreeSet::new() });
        self.last_id = self.last_id.max(id);
        self.renewed(id, false);
    }

    /// A grant or keep-alive of `id` was applied: (re)start its deadline.
    pub(crate) fn renewed(&mut self, id: u64, is_keepalive: bool) {
        if is_keepalive && self.ignore_keepalives {
            return;
        }
        if self.clock.term.is_some() {
            self.clock.renewed.insert(id);
        }
    }

    /// Lease `id` is gone (revoked or expired): forget its deadline.
    pub(crate) fn removed(&mut self, id: u64) {
        self.clock.deadlines_ms.remove(&id);
        self.clock.renewed.remove(&id);
        self.clock.proposed_ms.remove(&id);
    }

    /// Called by the host after every step with its clock and the term this node
    /// leads (`None`: not leading). Returns the expiries due now.
    pub(crate) fn leader_duties(&mut self, now_ms: u64, leader_term: Option<Term>) -> Vec<DueExpiry> {
        let Some(term) = leader_term else {
            self.clock = LeaseClock::default();
            return Vec::new();
        };
        if self.clock.term != Some(term) {
            // A new term: every lease gets a fresh TTL from now.
            self.clock = LeaseClock { term: Some(term), ..LeaseClock::default() };
            for (&id, lease) in &self.table {
                self.clock.deadlines_ms.insert(id, deadline(now_ms, lease.ttl_s));
            }
        }
        self.clock.now_ms = now_ms;
        for id in std::mem::take(&mut self.clock.renewed) {
            if let Some(lease) = self.table.get(&id) {
                self.clock.deadlines_ms.insert(id, deadline(now_ms, lease.ttl_s));
                self.clock.proposed_ms.remove(&id);
            }
        }
        let mut due = Vec::new();
        for (&id, &deadline_ms) in &self.clock.deadlines_ms {
            if deadline_ms > now_ms {
                continue;
            }
            if self.clock.proposed_ms.get(&id).is_some_and(|&at| at + LEASE_EXPIRE_RETRY_MS > now_ms) {
                continue;
            }
            let lease = &self.table[&id];
            due.push(DueExpiry { id, renewals: lease.renewals, decided_at_ms: now_ms });
        }
        for expiry in &due {
            self.clock.proposed_ms.insert(expiry.id, now_ms);
        }
        due
    }

    /// When [`Leases::leader_duties`] next has something to do (`None`: never
    /// until the next step).
    pub(crate) fn next_duty_ms(&self) -> Option<u64> {
        self.clock.term?;
        self.clock
            .deadlines_ms
            .iter()
            .map(|(id, &deadline_ms)| match self.clock.proposed_ms.get(id) {
                Some(&at) => deadline_ms.max(at + LEASE_EXPIRE_RETRY_MS),
                None => deadline_ms,
            })
            .min()
    }

    /// The leader's clock at its last duty call (0 on a follower).
    pub(crate) fn now_ms(&self) -> u64 {
        self.clock.now_ms
    }

    /// The leader's deadline for lease `id`, if it leads and tracks one.
    pub(crate) fn deadline_ms(&self, id: u64) -> Option<u64> {
        self.clock.deadlines_ms.get(&id).copied()
    }

    pub(crate) fn encode(&self, image: &mut ImageWriter<'_>) -> std::io::Result<()> {
        put_u64(image.buf(), self.last_id);
        put_u64(image.buf(), self.table.len() as u64);
        for (&id, lease) in &self.table {
            let out = image.buf();
            put_u64(out, id);
            put_u64(out, lease.ttl_s);
            put_u64(out, lease.renewals);
            image.record_done()?;
        }
        Ok(())
    }

    /// Reads the table (keys are re-attached from the records by the caller).
    pub(crate) fn decode(reader: &mut Reader<'_>) -> Result<Leases, &'static str> {
        let last_id = reader.u64()?;
        let count = reader.u64()?;
        let mut leases = Leases { last_id, ..Leases::default() };
        for _ in 0..count {
            let id = reader.u64()?;
            let ttl_s = reader.u64()?;
            let renewals = reader.u64()?;
            if id == 0 || id > last_id || ttl_s == 0 || ttl_s > LEASE_TTL_S_MAX {
                return Err("bad lease");
            }
            if leases.table.insert(id, Lease { ttl_s, renewals, keys: BTreeSet::new() }).is_some() {
                return Err("duplicate lease");
            }
        }
        Ok(leases)
    }
}

fn deadline(now_ms: u64, ttl_s: u64) -> u64 {
    now_ms + ttl_s * 1000
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leases(ids: &[(u64, u64)]) -> Leases {
        let mut leases = Leases::default();
        for &(id, ttl_s) in ids {
            leases.table.insert(id, Lease { ttl_s, renewals: 0, keys: BTreeSet::new() });
        }
        leases
    }

    #[test]
    fn followers_keep_no_deadlines_and_propose_nothing() {
        let mut l = leases(&[(1, 1)]);
        assert!(l.leader_duties(10_000, None).is_empty());
        assert_eq!(l.next_duty_ms(), None);
        l.renewed(1, true);
        assert_eq!(l.deadline_ms(1), None);
    }

    #[test]
    fn a_new_leader_gives_every_lease_a_fresh_ttl() {
        let mut l = leases(&[(1, 2), (2, 5)]);
        assert!(l.leader_duties(1_000, Some(Term(3))).is_empty());
        assert_eq!((l.deadline_ms(1), l.deadline_ms(2)), (Some(3_000), Some(6_000)));
        assert_eq!(l.next_duty_ms(), Some(3_000));
        assert!(l.leader_duties(2_999, Some(Term(3))).is_empty());
        let due = l.leader_duties(3_000, Some(Term(3)));
        assert_eq!(due, vec![DueExpiry { id: 1, renewals: 0, decided_at_ms: 3_000 }]);
        // Proposed once; again only after the retry interval.
        assert!(l.leader_duties(3_100, Some(Term(3))).is_empty());
        assert_eq!(l.next_duty_ms(), Some(3_000 + LEASE_EXPIRE_RETRY_MS));
        // A later term restarts the clock: nothing is due until a full TTL passes.
        assert!(l.leader_duties(4_000, Some(Term(4))).is_empty());
        assert_eq!(l.deadline_ms(1), Some(6_000));
    }

    #[test]
    fn a_keepalive_moves_the_deadline_to_its_apply_time_plus_the_ttl() {
        let mut l = leases(&[(1, 2)]);
        l.leader_duties(0, Some(Term(1)));
        l.table.get_mut(&1).unwrap().renewals = 1;
        l.renewed(1, true);
        assert!(l.leader_duties(1_500, Some(Term(1))).is_empty());
        assert_eq!(l.deadline_ms(1), Some(3_500));
        let due = l.leader_duties(3_500, Some(Term(1)));
        assert_eq!(due[0].renewals, 1);
        l.removed(1);
        assert_eq!(l.next_duty_ms(), None);
    }
}
