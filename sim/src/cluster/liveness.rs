//! The end of a run: the liveness phase, convergence, linearizability, and
//! failures with their replay line.

use super::*;

impl Cluster {
    // ----- the final check ------------------------------------------------------------

    /// Liveness phase: heals every fault (links, loss, crashes, pauses, disk
    /// stalls), stops the swarm and new client operations, then requires within
    /// `limit_ms` a leader followed by all, every node caught up, and every open
    /// client operation completed. Then all stores must be equal.
    pub fn check_liveness(&mut self, limit_ms: u64) -> Result<(), Failure> {
        self.swarm_active = false;
        self.heal_everything();
        if let Some(workload) = &mut self.workload {
            workload.drain();
        }
        let result = self.run_until(
            "converged: one leader followed by all, all caught up, no open client operation",
            |cluster| cluster.converged() && cluster.workload.as_ref().is_none_or(Workload::is_idle),
            limit_ms,
        );
        if let Err(mut failure) = result {
            failure.detail += &self.pending_report();
            return Err(failure);
        }
        let members = self.liveness_nodes();
        let first = self.host(members[0]);
        let reference = first.kv().sorted_pairs();
        for &id in &members[1..] {
            if self.host(id).kv().sorted_pairs() != reference {
                return Err(
                    self.failure(FailureKind::Safety, format!("stores differ after convergence: {} vs {id}", first.id))
                );
            }
        }
        if self.options.liveness_reads {
            for id in members {
                // Refusals and drops are fine for a while (reads queued before the
                // heal may still hold the pending bound): retry for up to 5 s.
                let mut answer = ReadAnswer::TimedOut;
                for _ in 0..25 {
                    answer = self.read(id, "k0", Consistency::Linearizable);
                    if matches!(answer, ReadAnswer::Value(_)) {
                        break;
                    }
                    self.run_for(200);
                }
                if !matches!(answer, ReadAnswer::Value(_)) {
                    return Err(self.failure(
                        FailureKind::Liveness,
                        format!("{id} cannot serve a linearizable read after convergence: {answer:?}"),
                    ));
                }
            }
        }
        Ok(())
    }

    pub(super) fn pending_report(&self) -> String {
        let mut out = String::from("\npending:");
        out += &format!("\n  leader: {:?}", self.leader());
        for host in &self.hosts {
            match host.node() {
                Some(node) => {
                    out += &format!(
                        "\n  {} {} {} leader={:?} commit={} applied={} last={} paused={} config=({}) at {}",
                        host.id,
                        node.role(),
                        node.term(),
                        node.leader(),
                        node.commit_index(),
                        host.kv().applied_index(),
                        node.last_log_index(),
                        host.paused,
                        node.membership(),
                        node.membership_index()
                    )
                }
                None => out += &format!("\n  {} crashed", host.id),
            }
        }
        if let Some(workload) = &self.workload {
            for line in workload.pending() {
                out += "\n  ";
                out += &line;
            }
        }
        out
    }

    /// Every fault healed: links, loss/duplication/reordering, crashed nodes
    /// restarted, paused nodes resumed, disk stalls ended.
    pub fn heal_everything(&mut self) {
        self.apply_fault(FaultAction::Heal);
        let mut network = self.network.options().clone();
        network.loss = 0.0;
        network.duplicate = 0.0;
        network.reorder = 0.0;
        self.network.set_options(network);
        for id in self.ids() {
            if !self.host(id).is_up() {
                self.apply_fault(FaultAction::Restart(id));
            }
            if self.host(id).paused {
                self.apply_fault(FaultAction::Resume(id));
            }
            self.host_mut(id).disk.stalled_until_ms = 0;
        }
    }

    /// Checks the history with the configured linearizability checker.
    pub fn check_linearizability(&self) -> Result<(), Failure> {
        let Some(check) = self.options.linearizability else {
            return Ok(());
        };
        // Without lease holders the clients' history is checked in place (no copy).
        let checked = match &self.leases {
            None => std::borrow::Cow::Borrowed(self.history().operations()),
            Some(_) => std::borrow::Cow::Owned(self.checked_history()),
        };
        check(&checked).map_err(|detail| self.failure(FailureKind::Linearizability, detail))
    }

    /// What the linearizability check takes: the clients' operations, then
    /// the lease holders' and the expiries (`checker/lease.rs`).
    pub fn checked_history(&self) -> Vec<crate::history::Operation> {
        let mut operations = self.history().operations().to_vec();
        if let Some(leases) = &self.leases {
            operations.extend_from_slice(leases.history().operations());
        }
        operations
    }

    /// The end of a run without panicking: liveness within `liveness_ms`, then
    /// linearizability of the client history.
    pub fn finish(&mut self, liveness_ms: u64) -> Result<RunSummary, Failure> {
        self.check_liveness(liveness_ms)?;
        self.check_linearizability()?;
        self.trace.flush();
        Ok(self.summary())
    }

    /// The end of a test: [`Cluster::finish`] with a 30 s liveness bound, panicking
    /// with the failure kind, the seed and the replay line.
    pub fn check(&mut self) -> RunSummary {
        match self.finish(30_000) {
            Ok(summary) => summary,
            Err(failure) => {
                self.trace.flush();
                crate::explore::record_failure(&failure);
                panic!("{failure}")
            }
        }
    }

    /// Counters, events and time so far.
    pub fn summary(&self) -> RunSummary {
        let history = self.history();
        RunSummary {
            seed: self.options.seed,
            events: self.events,
            sim_ms: self.now_ms,
            trace_hash: self.trace.hash(),
            counters: self.counters(),
            ops_completed: history.completed(),
            ops_unknown: history.operations().len() - history.completed(),
        }
    }

    /// Writes the history as JSON lines to `path`.
    pub fn write_history(&self, path: &str) -> std::io::Result<()> {
        let mut lines = self.history().to_json_lines();
        if let Some(leases) = &self.leases {
            lines += &leases.history().to_json_lines();
        }
        std::fs::write(path, lines)
    }

    pub(super) fn failure(&self, kind: FailureKind, detail: String) -> Failure {
        let mut detail = detail;
        if let Some(path) = &self.trace_path {
            detail += &format!(" (trace: {path})");
        }
        Failure { kind, seed: self.options.seed, at_ms: self.now_ms, detail, replay: self.replay.clone() }
    }

    pub(super) fn fail(&mut self, kind: FailureKind, detail: String) -> ! {
        self.trace.flush();
        let failure = self.failure(kind, detail);
        crate::explore::record_failure(&failure);
        panic!("{failure}")
    }
}
