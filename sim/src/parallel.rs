//! Exploring seeds on every core, and splitting a seed range across machines.
//!
//! Each seed runs alone on one thread from its own options, so a seed's run is
//! the same whichever thread, job count or shard runs it: parallelism changes
//! only the order in which results arrive, and the report sorts failures by
//! seed and sums the counters (order-independent).

use crate::explore::{run_seed, ExploreReport, RunPlan};
use crate::failure::Failure;
use crate::RunSummary;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::Instant;

/// One machine's share of a seed range: shard `index` of `count` takes every
/// `count`-th seed starting at the `index`-th (`--shard 0/4` … `--shard 3/4`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    /// This shard, from 0.
    pub index: u64,
    /// How many shards there are.
    pub count: u64,
}

impl Shard {
    /// The whole range.
    pub const ALL: Shard = Shard { index: 0, count: 1 };

    /// Parses `i/n` (0 ≤ i < n).
    pub fn parse(text: &str) -> Result<Shard, String> {
        let (index, count) = text.split_once('/').ok_or_else(|| format!("{text:?} is not i/n, e.g. 0/4"))?;
        let index: u64 = index.trim().parse().map_err(|_| format!("{text:?}: {index:?} is not a number"))?;
        let count: u64 = count.trim().parse().map_err(|_| format!("{text:?}: {count:?} is not a number"))?;
        if count == 0 || index >= count {
            return Err(format!(
                "{text:?}: the shard index must be below the shard count (0/{count} … {}/{count})",
                count.max(1) - 1
            ));
        }
        Ok(Shard { index, count })
    }

    /// This shard's seeds of `start..start + count`.
    pub fn seeds(self, start: u64, count: u64) -> Vec<u64> {
        (start..start + count).filter(|seed| (seed - start) % self.count == self.index).collect()
    }
}

/// Runs `seeds` under `plan` on `jobs` threads; `progress` sees each result
/// (in completion order) on the calling thread.
pub fn explore_parallel(
    plan: &RunPlan,
    seeds: &[u64],
    jobs: usize,
    mut progress: impl FnMut(u64, &Result<RunSummary, Failure>),
) -> ExploreReport {
    let began = Instant::now();
    let jobs = jobs.clamp(1, seeds.len().max(1));
    let next = AtomicUsize::new(0);
    let mut report = ExploreReport::default();
    std::thread::scope(|scope| {
        let (results, received) = mpsc::channel::<(u64, Result<RunSummary, Failure>)>();
        for _ in 0..jobs {
            let results = results.clone();
            let next = &next;
            scope.spawn(move || loop {
                let Some(&seed) = seeds.get(next.fetch_add(1, Ordering::Relaxed)) else {
                    return;
                };
                let result = run_seed(plan.options(seed), plan.fault_ms, plan.liveness_ms);
                if results.send((seed, result)).is_err() {
                    return;
                }
            });
        }
        drop(results);
        for (seed, result) in received {
            report.seeds += 1;
            if let Ok(summary) = &result {
                report.counters.merge(&summary.counters);
                for &(goal, _) in crate::cluster::GOALS {
                    if summary.counters.get(goal) > 0 {
                        *report.goal_seeds.entry(goal).or_default() += 1;
                    }
                }
                report.events += summary.events;
                report.sim_ms += summary.sim_ms;
            }
            progress(seed, &result);
            if let Err(failure) = result {
                report.failures.push(failure);
            }
        }
    });
    report.failures.sort_by_key(|failure| failure.seed);
    report.wall = began.elapsed();
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_split_a_range_without_overlap_or_gap() {
        let shards: Vec<Vec<u64>> = (0..3).map(|index| Shard { index, count: 3 }.seeds(10, 10)).collect();
        assert_eq!(shards[0], vec![10, 13, 16, 19]);
        let mut all: Vec<u64> = shards.concat();
        all.sort();
        assert_eq!(all, (10..20).collect::<Vec<_>>());
        assert_eq!(Shard::parse("2/3"), Ok(Shard { index: 2, count: 3 }));
        assert!(Shard::parse("3/3").unwrap_err().contains("below the shard count"));
        assert!(Shard::parse("x").is_err());
    }

    #[test]
    fn jobs_change_nothing_but_the_wall_time() {
        let plan = RunPlan { nodes: 3, clients: 3, fault_ms: 2_000, liveness_ms: 10_000, ..RunPlan::default() };
        let seeds: Vec<u64> = (0x70..0x78).collect();
        let one = explore_parallel(&plan, &seeds, 1, |_, _| {});
        let four = explore_parallel(&plan, &seeds, 4, |_, _| {});
        assert_eq!((one.seeds, one.events, one.sim_ms), (four.seeds, four.events, four.sim_ms));
        assert_eq!(format!("{}", one.counters), format!("{}", four.counters));
        let seeds_of = |report: &ExploreReport| report.failures.iter().map(|f| f.seed).collect::<Vec<_>>();
        assert_eq!(seeds_of(&one), seeds_of(&four));
    }
}
