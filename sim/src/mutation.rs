//! The mutation suite: how many seeds `explore` needs to catch each planted bug
//! ([`raft_sm::Mutant`], compiled in with the `mutants` feature).

use crate::explore::{run_seed, RunPlan};
use crate::failure::Failure;
use raft_sm::Mutant;
use std::ops::Range;

/// What exploring one mutant found.
#[derive(Debug)]
pub struct MutantResult {
    /// The planted bug (`None`: the clean build).
    pub mutant: Option<Mutant>,
    /// Seeds run until the first failure (all of them if none failed).
    pub seeds_run: u64,
    /// The first failure, if any seed failed.
    pub caught: Option<Failure>,
}

impl MutantResult {
    /// The report cell: the kind and the checker that fired, or `NOT CAUGHT`.
    pub fn caught_by(&self) -> String {
        match &self.caught {
            Some(failure) => format!("{} ({})", failure.kind, checker_of(failure)),
            None => "NOT CAUGHT".into(),
        }
    }
}

/// The checker named by a failure's detail: the part before the first `:`
/// (e.g. `election safety`, `durability`), shortened for a table.
pub fn checker_of(failure: &Failure) -> String {
    let first = failure.detail.lines().next().unwrap_or("");
    let head = first.split(": ").next().unwrap_or(first);
    let head = if head.starts_with('`') { "liveness bound" } else { head };
    head.chars().take(48).collect()
}

/// The plan of `seed` when cluster sizes alternate: `sizes[seed % sizes.len()]`
/// nodes (the plan's own size when `sizes` is empty).
pub fn plan_for_seed(plan: &RunPlan, sizes: &[usize], seed: u64) -> RunPlan {
    match sizes {
        [] => plan.clone(),
        _ => RunPlan { nodes: sizes[(seed % sizes.len() as u64) as usize], ..plan.clone() },
    }
}

/// The plan a mutant is explored under: `plan`, with membership churn for the
/// bugs only membership changes reach (a fixed configuration never asks the
/// barrier anything).
pub fn plan_for_mutant(plan: &RunPlan, mutant: Option<Mutant>) -> RunPlan {
    let churn = plan.membership_churn || mutant == Some(Mutant::MembershipBarrierOff);
    RunPlan { mutant, membership_churn: churn, ..plan.clone() }
}

/// Runs the seeds of `seeds` under `plan` (sizes alternating as [`plan_for_seed`],
/// churn as [`plan_for_mutant`]) with `mutant` planted (`None`: the clean
/// build), stopping at the first failure.
pub fn explore_mutant(plan: &RunPlan, sizes: &[usize], mutant: Option<Mutant>, seeds: Range<u64>) -> MutantResult {
    let plan = plan_for_mutant(plan, mutant);
    let mut seeds_run = 0;
    for seed in seeds {
        seeds_run += 1;
        let plan = plan_for_seed(&plan, sizes, seed);
        if let Err(failure) = run_seed(plan.options(seed), plan.fault_ms, plan.liveness_ms) {
            return MutantResult { mutant, seeds_run, caught: Some(failure) };
        }
    }
    MutantResult { mutant, seeds_run, caught: None }
}
