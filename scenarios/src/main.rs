//! `scenarios` command line: the soak.
//!
//! ```text
//! cargo run -p scenarios --release -- soak --seeds 2000 [--start 0] [--nodes 3|5] [--clients 6] [--fault-ms 10000]
//! cargo run -p scenarios --release -- soak --seed 0x2a [--nodes 5]     # one seed, verbose (SIM_TRACE=1 for a trace)
//!     [--faults swarm|all] [--wire json|binary|plain] [--liveness-reads]
//! ```
//!
//! Prints every failure with its replay line, the summed coverage counters (and
//! the suite counters never hit), and the speed. Exits 1 if any seed failed.

use scenarios::soak::{soak, SuitePlan, SUITE_COVERAGE};
use std::process::ExitCode;

const USAGE: &str =
    "usage: scenarios soak (--seeds N [--start S] | --seed X) [--nodes 3|5] [--clients K] [--fault-ms MS] [--faults swarm|all] [--wire json|binary|plain] [--liveness-reads]";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("soak") => match soak_command(&args[1..]) {
            Ok(code) => code,
            Err(message) => {
                eprintln!("{message}\n{USAGE}");
                ExitCode::from(2)
            }
        },
        _ => {
            eprintln!("{USAGE}");
            ExitCode::from(2)
        }
    }
}

fn soak_command(args: &[String]) -> Result<ExitCode, String> {
    let mut plan = SuitePlan::new(3);
    let mut count: Option<u64> = None;
    let mut start = 0u64;
    let mut single: Option<u64> = None;
    let mut rest = args.iter();
    while let Some(flag) = rest.next() {
        if flag == "--liveness-reads" {
            // After convergence every node must also serve a linearizable read.
            plan.run.liveness_reads = true;
            continue;
        }
        let value = rest.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let number = || sim::failure::parse_seed(value).ok_or_else(|| format!("{flag} {value}: not a number"));
        match flag.as_str() {
            "--seeds" => count = Some(number()?),
            "--start" => start = number()?,
            "--seed" => single = Some(number()?),
            "--nodes" => plan.run.nodes = number()? as usize,
            "--clients" => plan.run.clients = number()? as usize,
            "--fault-ms" => plan.run.fault_ms = number()?,
            "--faults" => {
                plan.run.faults = sim::explore::Faults::parse(value)
                    .filter(|faults| *faults != sim::explore::Faults::None)
                    .ok_or_else(|| format!("--faults {value}: swarm or all"))?
            }
            "--wire" => {
                plan.run.wire = Some(
                    sim::options::WireFormat::parse(value)
                        .ok_or_else(|| format!("--wire {value}: json, binary or plain"))?,
                )
            }
            other => return Err(format!("unknown flag {other}")),
        }
    }
    if plan.run.nodes == 0 {
        return Err("--nodes must be at least 1".into());
    }
    let seeds: Vec<u64> = match (single, count) {
        (Some(seed), _) => vec![seed],
        (None, Some(count)) => (start..start + count).collect(),
        (None, None) => return Err("give --seeds N or --seed X".into()),
    };
    if let [seed] = seeds[..] {
        println!("{}", plan.options(seed, plan.soak_replay(seed)));
    }
    println!(
        "soak: {} seeds from {:#x}, {} nodes, {} clients, faults {}, fault phase {} ms, liveness bound {} ms",
        seeds.len(),
        seeds[0],
        plan.run.nodes,
        plan.run.clients,
        plan.run.faults.name(),
        plan.run.fault_ms,
        plan.run.liveness_ms
    );
    let began = std::time::Instant::now();
    let mut done = 0u64;
    let report = soak(&plan, seeds, |seed, result| {
        done += 1;
        if let Err(failure) = result {
            println!("FAIL seed {seed:#x}: {failure}");
        }
        if done.is_multiple_of(500) {
            eprintln!("... {done} seeds in {:.0} s", began.elapsed().as_secs_f64());
        }
    });
    println!("{}", report.counters);
    let missing = report.counters.missing(SUITE_COVERAGE);
    if !missing.is_empty() {
        println!("coverage counters never hit: {missing:?}");
    }
    println!(
        "{} seeds, {} failures, {:.1} s wall, {:.1} seeds/s, {} events, {:.0} simulated s per wall s",
        report.seeds,
        report.failures.len(),
        report.wall.as_secs_f64(),
        report.seeds_per_second(),
        report.events,
        report.speedup()
    );
    for failure in &report.failures {
        println!("replay: {}", failure.replay);
    }
    Ok(if report.failures.is_empty() { ExitCode::SUCCESS } else { ExitCode::from(1) })
}
