//! One seed, one run: the same seed gives byte-identical traces, different
//! seeds differ, and the determinism-check mode compares two runs' hashes.

use sim::explore::{determinism_check, RunPlan};
use sim::options::WireFormat;
use sim::{Cluster, SimOptions};

fn swarm_trace_hash(seed: u64) -> (u64, u64) {
    let mut options = SimOptions::swarm(seed, 3, 4);
    options.trace_hash = true;
    options.wire = sim::options::WireFormat::Binary;
    let mut cluster = Cluster::new(options);
    cluster.run_for(4_000);
    let summary = cluster.finish(30_000).expect("the run passes");
    (summary.trace_hash, summary.events)
}

#[test]
fn the_same_seed_twice_gives_identical_traces() {
    let first = swarm_trace_hash(7);
    let second = swarm_trace_hash(7);
    assert_eq!(first, second, "trace hash and event count of seed 7");
    assert!(first.1 > 300, "the run did something: {} events", first.1);
}

#[test]
fn different_seeds_give_different_traces() {
    assert_ne!(swarm_trace_hash(7).0, swarm_trace_hash(8).0);
}

#[test]
fn determinism_check_mode_compares_two_runs() {
    let plan = RunPlan { nodes: 5, clients: 5, fault_ms: 3_000, ..RunPlan::default() };
    for seed in [1, 2, 3] {
        let hash = determinism_check(&plan, seed).unwrap_or_else(|error| panic!("{error}"));
        assert_ne!(hash, 0);
    }
}

#[test]
fn a_trace_written_to_a_file_has_one_line_per_event() {
    let path = std::env::temp_dir().join(format!("sim-trace-test-{}.log", std::process::id()));
    let mut options = SimOptions::new(3, 3).with_clients(2);
    options.verbose = false;
    options.trace_file = Some(path.to_string_lossy().into_owned());
    let mut cluster = Cluster::new(options);
    cluster.run_for(2_000);
    let summary = cluster.check();
    let text = std::fs::read_to_string(&path).expect("trace written");
    let _ = std::fs::remove_file(&path);
    assert!(text.lines().count() as u64 > summary.events / 2, "{} lines", text.lines().count());
    assert!(text.contains("n1") && text.contains("recv AppendEntries"), "{}", &text[..500.min(text.len())]);
}

#[test]
fn the_wire_format_is_transparent_json_binary_and_plain_give_the_same_trace() {
    let hashes: Vec<(u64, u64)> = [WireFormat::Json, WireFormat::Binary, WireFormat::Plain]
        .into_iter()
        .map(|wire| {
            let mut options = SimOptions::swarm(11, 3, 4);
            options.trace_hash = true;
            options.wire = wire;
            let mut cluster = Cluster::new(options);
            cluster.run_for(4_000);
            let summary = cluster.finish(30_000).expect("the run passes");
            (summary.trace_hash, summary.events)
        })
        .collect();
    assert_eq!(hashes[0], hashes[1], "JSON vs binary codec");
    assert_eq!(hashes[1], hashes[2], "binary codec vs plain values");
}
