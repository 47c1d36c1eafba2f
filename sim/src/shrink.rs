//! Shrinking a failing seed: delta debugging (ddmin) over the recorded
//! schedule of the run, in this order:
//!
//! 1. **time, for free**: a failure at `t` during the fault phase happens the
//!    same way in a run whose fault phase ends at `t + 1` (the prefix is
//!    identical), so the fault phase is cut there first;
//! 2. **faults**: the faults the swarm and episodes generated, numbered from 1
//!    in generation order (`--keep-faults`; every random choice is still made
//!    as if all were applied);
//! 3. **clients**: which clients issue operations at all (`--keep-ops C,…`),
//!    then `--clients` lowered to the highest one kept;
//! 4. **operations**: each kept client's operations, numbered per client from 1
//!    (`--keep-ops C.N-M,…`; a left-out one is skipped);
//! 5. **time again**: the fault phase bisected down (`--fault-ms`).
//!
//! A candidate is kept only if it still fails with the same kind and checker.
//! Every candidate is one deterministic run, so the same seed and plan always
//! shrink to the same plan, and the printed replay line (the plan's own flags)
//! reproduces the minimal run.

use crate::explore::{faults_generated, ops_begun, run_seed, RunPlan};
use crate::failure::Failure;
use crate::mutation::checker_of;
use crate::op_list::OpList;
use std::collections::BTreeMap;

/// What shrinking found.
#[derive(Debug)]
pub struct ShrinkReport {
    /// The failure of the whole run.
    pub original: Failure,
    /// Faults the whole run generated.
    pub generated: u64,
    /// The faults kept (numbers, in generation order).
    pub kept: Vec<u64>,
    /// Clients: before, after (those with an operation kept).
    pub clients: (usize, usize),
    /// Client operations begun: in the whole run, in the minimal one.
    pub ops: (u64, u64),
    /// The fault phase: before, after (virtual ms).
    pub fault_ms: (u64, u64),
    /// The minimal run's plan (its replay line is `failure.replay`).
    pub plan: RunPlan,
    /// The failure of the minimal run.
    pub failure: Failure,
    /// Runs it took.
    pub runs: u64,
}

impl ShrinkReport {
    /// One line: how much was removed.
    pub fn summary(&self) -> String {
        format!(
            "shrunk in {} runs: faults {} -> {}, clients {} -> {}, operations {} -> {}, fault phase {} -> {} ms",
            self.runs,
            self.generated,
            self.kept.len(),
            self.clients.0,
            self.clients.1,
            self.ops.0,
            self.ops.1,
            self.fault_ms.0,
            self.fault_ms.1
        )
    }
}

/// Most candidate runs one shrink makes (each phase stops early when it is used up).
const RUNS_MAX: u64 = 3_000;

/// Most rounds of phases 2-5.
const ROUNDS_MAX: usize = 4;

/// The fault phase is bisected down to this resolution.
const TIME_RESOLUTION_MS: u64 = 100;

/// The shrink so far: the smallest failing plan and what its run did.
struct Current {
    plan: RunPlan,
    failure: Failure,
    /// Per client id, operations begun or skipped in `plan`'s run.
    begun: BTreeMap<u64, u64>,
    runs: u64,
}

impl Current {
    /// Runs `candidate`; if it fails like the original, it becomes the current plan.
    fn try_plan(&mut self, candidate: RunPlan, original: &Failure, seed: u64) -> bool {
        if self.runs >= RUNS_MAX {
            return false;
        }
        self.runs += 1;
        let result = run_seed(candidate.options(seed), candidate.fault_ms, candidate.liveness_ms);
        match result {
            Err(failure) if failure.kind == original.kind && checker_of(&failure) == checker_of(original) => {
                self.plan = candidate;
                self.failure = failure;
                self.begun = ops_begun();
                true
            }
            _ => false,
        }
    }
}

/// Delta debugging (Zeller's ddmin, complement-only): the smallest subsequence
/// of `items` (1-minimal with respect to removing a chunk) for which `fails` holds,
/// assuming it holds for `items`. `fails` records the run it made when it holds.
pub(crate) fn ddmin<T: Clone>(items: Vec<T>, mut fails: impl FnMut(&[T]) -> bool) -> Vec<T> {
    let mut current = items;
    if current.is_empty() || fails(&[]) {
        return Vec::new();
    }
    let mut granularity = 2;
    while current.len() >= 2 {
        let chunk = current.len().div_ceil(granularity);
        let parts = granularity;
        let mut reduced = false;
        for part in 0..parts {
            let (from, to) = (part * chunk, ((part + 1) * chunk).min(current.len()));
            if from >= to {
                continue;
            }
            let complement: Vec<T> = current[..from].iter().chain(&current[to..]).cloned().collect();
            if fails(&complement) {
                current = complement;
                reduced = true;
                break;
            }
        }
        if reduced {
            granularity = (granularity - 1).max(2);
        } else {
            if granularity >= current.len() {
                break;
            }
            granularity = (granularity * 2).min(current.len());
        }
    }
    current
}

/// How many of the operations `begun` (per client) `keep` keeps.
fn ops_kept(keep: Option<&OpList>, begun: &BTreeMap<u64, u64>) -> u64 {
    begun
        .iter()
        .map(|(&client, &count)| match keep {
            None => count,
            Some(keep) => (1..=count).filter(|&n| keep.contains(client, n)).count() as u64,
        })
        .sum()
}

/// Shrinks seed `seed` of `plan` (whose own `keep_faults`/`keep_ops`, if any, are the start).
pub fn shrink(plan: &RunPlan, seed: u64) -> Result<ShrinkReport, String> {
    let original = match run_seed(plan.options(seed), plan.fault_ms, plan.liveness_ms) {
        Ok(_) => return Err(format!("seed {seed:#x} passes: nothing to shrink")),
        Err(failure) => failure,
    };
    let generated = faults_generated();
    let begun = ops_begun();
    let ops_before = ops_kept(plan.keep_ops.as_ref(), &begun);
    let start = RunPlan {
        keep_faults: Some(plan.keep_faults.clone().unwrap_or_else(|| (1..=generated).collect())),
        ..plan.clone()
    };
    let mut current = Current { plan: plan.clone(), failure: original.clone(), begun, runs: 1 };
    if !current.try_plan(start, &original, seed) {
        return Err(format!("seed {seed:#x}: the run keeping every generated fault does not fail the same way"));
    }

    // 1. Time, for free: the run up to the failure is the same with a shorter fault phase.
    if current.failure.at_ms < current.plan.fault_ms {
        let cut = RunPlan { fault_ms: current.failure.at_ms + 1, ..current.plan.clone() };
        current.try_plan(cut, &original, seed);
    }

    // Phases 2-5 again while a round still removes something (a smaller
    // workload often makes a fault unnecessary, and the other way round).
    for _round in 0..ROUNDS_MAX {
        let before = (current.plan.clone(), current.runs);
        // 2. Faults.
        let faults = current.plan.keep_faults.clone().unwrap_or_default();
        ddmin(faults, |keep| {
            let candidate = RunPlan { keep_faults: Some(keep.to_vec()), ..current.plan.clone() };
            current.try_plan(candidate, &original, seed)
        });

        // 3. Clients: which issue operations, then fewer clients.
        let clients: Vec<u64> = match &current.plan.keep_ops {
            Some(keep) => keep.clients(),
            None => (1..=current.plan.clients as u64).collect(),
        };
        let all_clients = clients.len();
        let restrict = |keep: Option<&OpList>, clients: &[u64]| match keep {
            // Clients are dropped whole; a client's own restrictions stay.
            Some(keep) => OpList::from_ranges_of(keep, clients),
            None => OpList::all_of(clients.iter().copied()),
        };
        let kept_clients = ddmin(clients, |subset| {
            let keep_ops = Some(restrict(current.plan.keep_ops.as_ref(), subset));
            let candidate = RunPlan { keep_ops, ..current.plan.clone() };
            current.try_plan(candidate, &original, seed)
        });
        if kept_clients.len() == all_clients && current.plan.keep_ops.is_none() {
            // Nothing removed: keep the plan as it was (no `--keep-ops` on the line).
        } else {
            let highest = kept_clients.iter().copied().max().unwrap_or(0) as usize;
            if highest < current.plan.clients {
                let candidate = RunPlan { clients: highest, ..current.plan.clone() };
                current.try_plan(candidate, &original, seed);
            }
        }

        // 4. Operations of the kept clients.
        let keep_now = current.plan.keep_ops.clone();
        let ops: Vec<(u64, u64)> = current
            .begun
            .iter()
            .filter(|(&client, _)| client as usize <= current.plan.clients)
            .flat_map(|(&client, &count)| (1..=count).map(move |n| (client, n)))
            .filter(|&(client, n)| keep_now.as_ref().is_none_or(|keep| keep.contains(client, n)))
            .collect();
        ddmin(ops, |subset| {
            let candidate =
                RunPlan { keep_ops: Some(OpList::from_ops(subset.iter().copied())), ..current.plan.clone() };
            current.try_plan(candidate, &original, seed)
        });

        // 5. Time again: bisect the fault phase down.
        let (mut low, mut high) = (0, current.plan.fault_ms);
        while high - low > TIME_RESOLUTION_MS && current.runs < RUNS_MAX {
            let middle = low + (high - low) / 2;
            let candidate = RunPlan { fault_ms: middle, ..current.plan.clone() };
            if current.try_plan(candidate, &original, seed) {
                high = middle;
            } else {
                low = middle;
            }
        }
        if current.plan == before.0 || current.runs >= RUNS_MAX {
            break;
        }
    }

    let ops_after = ops_kept(current.plan.keep_ops.as_ref(), &current.begun);
    Ok(ShrinkReport {
        generated,
        kept: current.plan.keep_faults.clone().unwrap_or_default(),
        clients: (
            plan.clients,
            current.plan.keep_ops.as_ref().map_or(current.plan.clients, |keep| keep.clients().len()),
        ),
        ops: (ops_before, ops_after),
        fault_ms: (plan.fault_ms, current.plan.fault_ms),
        original,
        failure: current.failure,
        runs: current.runs,
        plan: current.plan,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ddmin_finds_a_one_minimal_subset() {
        let mut calls = 0;
        let result = ddmin((1..=40).collect(), |subset: &[u32]| {
            calls += 1;
            subset.contains(&7) && subset.contains(&31)
        });
        assert_eq!(result, vec![7, 31]);
        assert!(calls < 60, "{calls} calls");
        assert_eq!(ddmin(vec![1, 2, 3], |_: &[u32]| true), Vec::<u32>::new());
    }
}
