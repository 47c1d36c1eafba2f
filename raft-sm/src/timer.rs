//! The timer table: one optional deadline per [`TimerKind`]. Setting a kind
//! replaces its deadline; a timer event acts only if its slot is set and due,
//! otherwise it is stale and ignored.

use crate::event::TimerKind;

#[derive(Clone, Debug, Default)]
pub(crate) struct Timers {
    deadlines_ms: [Option<u64>; 4],
}

fn slot(kind: TimerKind) -> usize {
    match kind {
        TimerKind::Election => 0,
        TimerKind::Heartbeat => 1,
        TimerKind::QuorumCheck => 2,
        TimerKind::Transfer => 3,
    }
}

impl Timers {
    pub(crate) fn get(&self, kind: TimerKind) -> Option<u64> {
        self.deadlines_ms[slot(kind)]
    }

    /// Sets the slot; returns whether it changed.
    pub(crate) fn set(&mut self, kind: TimerKind, deadline_ms: Option<u64>) -> bool {
        let changed = self.deadlines_ms[slot(kind)] != deadline_ms;
        self.deadlines_ms[slot(kind)] = deadline_ms;
        changed
    }

    /// The earliest deadline set, if any.
    pub(crate) fn earliest(&self) -> Option<u64> {
        self.deadlines_ms.iter().flatten().min().copied()
    }

    /// Whether a timer event of `kind` at `now_ms` is due (else it is stale).
    pub(crate) fn is_due(&self, kind: TimerKind, now_ms: u64) -> bool {
        self.get(kind).is_some_and(|deadline_ms| deadline_ms <= now_ms)
    }
}
