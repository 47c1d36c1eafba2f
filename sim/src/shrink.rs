//! Shrinking a failing seed: delta debugging (ddmin) over the faults its swarm
//! and episodes generated. A candidate run applies only a subset of them
//! (`SimOptions::keep_faults`; every random choice is still made as if all
//! were applied) and is kept if it still fails with the same kind and checker.
//! Deterministic: the same seed and plan always shrink to the same subset.

use crate::explore::{faults_generated, run_seed, RunPlan};
use crate::failure::Failure;
use crate::mutation::checker_of;

/// What shrinking found.
#[derive(Debug)]
pub struct ShrinkReport {
    /// The failure of the whole run.
    pub original: Failure,
    /// Faults the whole run generated.
    pub generated: u64,
    /// The faults kept (numbers, in generation order).
    pub kept: Vec<u64>,
    /// The failure of the run with only `kept` (its replay line replays it).
    pub failure: Failure,
    /// Runs it took.
    pub runs: u64,
}

/// Most candidate runs one shrink makes.
const RUNS_MAX: u64 = 2_000;

/// Shrinks seed `seed` of `plan` (whose own `keep_faults`, if any, is the start).
pub fn shrink(plan: &RunPlan, seed: u64) -> Result<ShrinkReport, String> {
    let original = match run_seed(plan.options(seed), plan.fault_ms, plan.liveness_ms) {
        Ok(_) => return Err(format!("seed {seed:#x} passes: nothing to shrink")),
        Err(failure) => failure,
    };
    let generated = faults_generated();
    let start: Vec<u64> = plan.keep_faults.clone().unwrap_or_else(|| (1..=generated).collect());
    let same = |failure: &Failure| failure.kind == original.kind && checker_of(failure) == checker_of(&original);
    let mut runs = 1;
    let try_keep = |keep: &[u64], runs: &mut u64| -> Option<Failure> {
        *runs += 1;
        let candidate = RunPlan { keep_faults: Some(keep.to_vec()), ..plan.clone() };
        run_seed(candidate.options(seed), candidate.fault_ms, candidate.liveness_ms).err().filter(|f| same(f))
    };
    let mut current = start;
    let mut failure = try_keep(&current, &mut runs)
        .ok_or_else(|| format!("seed {seed:#x}: the run keeping every generated fault does not fail the same way"))?;
    if let Some(found) = try_keep(&[], &mut runs) {
        current.clear();
        failure = found;
    }
    let mut granularity = 2;
    while current.len() >= 2 && runs < RUNS_MAX {
        let chunk = current.len().div_ceil(granularity);
        let mut reduced = None;
        for part in 0..granularity {
            let (from, to) = (part * chunk, ((part + 1) * chunk).min(current.len()));
            if from >= to {
                continue;
            }
            let complement: Vec<u64> = current[..from].iter().chain(&current[to..]).copied().collect();
            if let Some(found) = try_keep(&complement, &mut runs) {
                reduced = Some((complement, found));
                break;
            }
        }
        if let Some((complement, found)) = reduced {
            current = complement;
            failure = found;
            granularity = (granularity - 1).max(2);
        } else {
            if granularity >= current.len() {
                break;
            }
            granularity = (granularity * 2).min(current.len());
        }
    }
    if current.len() == 1 && runs < RUNS_MAX {
        if let Some(found) = try_keep(&[], &mut runs) {
            current.clear();
            failure = found;
        }
    }
    Ok(ShrinkReport { original, generated, kept: current, failure, runs })
}
