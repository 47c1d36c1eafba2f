//! Randomized fault suites: swarm runs on 3- and 5-node clusters. Each seed
//! draws its own fault mix (partitions of every shape, loss, duplication,
//! reordering, crashes and restarts, pauses, disk stalls, torn writes) and a
//! low snapshot threshold; safety is checked after every step, then every
//! fault is healed and the cluster must converge within 30 s (liveness), and
//! the clients' history must be linearizable. The suites fail if the coverage
//! counters they exist for were never hit. `SIM_SEED` runs only that seed;
//! `SCENARIO_SEEDS` changes how many; the soak binary runs thousands.

use scenarios::soak::{run_suite, SuitePlan, SUITE_COVERAGE};
use scenarios::{seeds, seeds_count};
use sim::explore::Faults;

/// Swarm on 3 nodes, 6 clients, 10 s of faults per seed.
#[test]
fn fault_suite_three_nodes() {
    run_and_report("fault_suite_three_nodes", &SuitePlan::new(3), 0x3000, SEEDS_THREE);
}

/// Swarm on 5 nodes, 6 clients, 10 s of faults per seed.
#[test]
fn fault_suite_five_nodes() {
    run_and_report("fault_suite_five_nodes", &SuitePlan::new(5), 0x5000, SEEDS_FIVE);
}

/// Every fault kind on at once (rates drawn per seed), 3 nodes.
#[test]
fn fault_suite_all_faults_three_nodes() {
    let plan = SuitePlan::new(3).with_faults(Faults::All);
    run_and_report("fault_suite_all_faults_three_nodes", &plan, 0xA11_0000, SEEDS_ALL);
}

/// Runs `count` seeds from `first_seed` (or what `SIM_SEED`/`SCENARIO_SEEDS`
/// say), requiring the suite's coverage, and prints the counters.
fn run_and_report(name: &str, plan: &SuitePlan, first_seed: u64, count: u64) {
    let began = std::time::Instant::now();
    let seeds = seeds(first_seed, seeds_count(count));
    let counters = run_suite(name, plan, &seeds, SUITE_COVERAGE);
    eprintln!("{name}: {} seeds passed in {:.1} s\n{counters}", seeds.len(), began.elapsed().as_secs_f64());
}

const SEEDS_ALL: u64 = 100;
const SEEDS_THREE: u64 = 300;
const SEEDS_FIVE: u64 = 200;
