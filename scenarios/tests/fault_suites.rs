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
    let began = std::time::Instant::now();
    let plan = SuitePlan::new(3);
    let seeds = seeds(0x3000, seeds_count(SEEDS_THREE));
    let counters = run_suite("fault_suite_three_nodes", &plan, &seeds, SUITE_COVERAGE);
    eprintln!(
        "fault_suite_three_nodes: {} seeds passed in {:.1} s\n{counters}",
        seeds.len(),
        began.elapsed().as_secs_f64()
    );
}

/// Swarm on 5 nodes, 6 clients, 10 s of faults per seed.
#[test]
fn fault_suite_five_nodes() {
    let began = std::time::Instant::now();
    let plan = SuitePlan::new(5);
    let seeds = seeds(0x5000, seeds_count(SEEDS_FIVE));
    let counters = run_suite("fault_suite_five_nodes", &plan, &seeds, SUITE_COVERAGE);
    eprintln!(
        "fault_suite_five_nodes: {} seeds passed in {:.1} s\n{counters}",
        seeds.len(),
        began.elapsed().as_secs_f64()
    );
}

/// Every fault kind on at once (rates drawn per seed), 3 nodes.
#[test]
fn fault_suite_all_faults_three_nodes() {
    let began = std::time::Instant::now();
    let plan = SuitePlan::new(3).with_faults(Faults::All);
    let seeds = seeds(0xA11_0000, seeds_count(SEEDS_ALL));
    let counters = run_suite("fault_suite_all_faults_three_nodes", &plan, &seeds, SUITE_COVERAGE);
    eprintln!(
        "fault_suite_all_faults_three_nodes: {} seeds passed in {:.1} s\n{counters}",
        seeds.len(),
        began.elapsed().as_secs_f64()
    );
}

const SEEDS_ALL: u64 = 100;
const SEEDS_THREE: u64 = 300;
const SEEDS_FIVE: u64 = 200;
