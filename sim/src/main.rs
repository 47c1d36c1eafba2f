//! The simulator's command line.
//!
//! ```text
//! cargo run -p sim --release -- run --seed 0x5eed [--nodes 5] [--clients 20] [--faults swarm|all|none]
//!                                   [--duration-ms 20000] [--liveness-ms 30000] [--wire json|binary|plain]
//!                                   [--history out.json] [--trace trace.log]
//! cargo run -p sim --release -- explore --seeds 10000 [--start 0] [--nodes 3|5] [--clients 8]
//!                                   [--faults swarm|all|none] [--duration-ms 20000] [--wire json|binary|plain]
//! cargo run -p sim --release -- determinism --seed 7 [--nodes 5] ...
//! ```

use sim::explore::{determinism_check, explore, Faults, RunPlan};
use sim::failure::parse_seed;
use sim::options::WireFormat;
use std::process::ExitCode;

const USAGE: &str = "usage:
  sim run --seed N [--nodes 5] [--clients 8] [--faults swarm|all|none] [--duration-ms 20000]
          [--liveness-ms 30000] [--wire json|binary|plain] [--history out.json] [--trace path] [--no-liveness-reads]
  sim explore --seeds 10000 [--start 0] [--nodes 3] [--clients 8] [--faults swarm|all|none]
          [--duration-ms 20000] [--liveness-ms 30000] [--wire json|binary|plain] [--determinism]
  sim determinism --seed N [--nodes 3] [...]
  sim bench [--seeds 10] [--start 0]";

#[derive(Debug)]
struct Args {
    command: String,
    seed: u64,
    seeds: u64,
    start: u64,
    plan: RunPlan,
    history: Option<String>,
    trace: Option<String>,
    determinism: bool,
}

fn parse(mut raw: impl Iterator<Item = String>) -> Result<Args, String> {
    let command = raw.next().ok_or("no command")?;
    let mut args = Args {
        command,
        seed: 0,
        seeds: 100,
        start: 0,
        plan: RunPlan::default(),
        history: None,
        trace: None,
        determinism: false,
    };
    while let Some(flag) = raw.next() {
        let mut value = || raw.next().ok_or(format!("{flag} needs a value"));
        let number = |text: String| parse_seed(&text).ok_or(format!("{flag}: {text:?} is not a number"));
        match flag.as_str() {
            "--seed" => args.seed = number(value()?)?,
            "--seeds" => args.seeds = number(value()?)?,
            "--start" => args.start = number(value()?)?,
            "--nodes" => args.plan.nodes = number(value()?)? as usize,
            "--clients" => args.plan.clients = number(value()?)? as usize,
            "--duration-ms" => args.plan.fault_ms = number(value()?)?,
            "--liveness-ms" => args.plan.liveness_ms = number(value()?)?,
            "--faults" => {
                let text = value()?;
                args.plan.faults =
                    Faults::parse(&text).ok_or(format!("--faults: {text:?} is not swarm, all or none"))?;
            }
            "--wire" => {
                let text = value()?;
                args.plan.wire =
                    Some(WireFormat::parse(&text).ok_or(format!("--wire: {text:?} is not json, binary or plain"))?);
            }
            "--history" => args.history = Some(value()?),
            "--trace" => args.trace = Some(value()?),
            "--determinism" => args.determinism = true,
            "--no-liveness-reads" => args.plan.liveness_reads = false,
            other => return Err(format!("unknown flag {other}")),
        }
    }
    Ok(args)
}

fn main() -> ExitCode {
    let args = match parse(std::env::args().skip(1)) {
        Ok(args) => args,
        Err(error) => {
            eprintln!("{error}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match args.command.as_str() {
        "run" => run(&args),
        "explore" => run_explore(&args),
        "bench" => bench(&args),
        "determinism" => match determinism_check(&args.plan, args.seed) {
            Ok(hash) => {
                println!("seed {:#x}: two runs, identical trace hash {hash:#018x}", args.seed);
                ExitCode::SUCCESS
            }
            Err(error) => {
                println!("{error}");
                ExitCode::FAILURE
            }
        },
        other => {
            eprintln!("unknown command {other}\n{USAGE}");
            ExitCode::from(2)
        }
    }
}

fn run(args: &Args) -> ExitCode {
    let mut options = args.plan.options(args.seed);
    options.trace_file = args.trace.clone();
    options.trace_hash = true;
    println!("{options}");
    println!("replay: {}", args.plan.replay_line(args.seed));
    let began = std::time::Instant::now();
    let mut cluster = sim::Cluster::new(options);
    cluster.run_for(args.plan.fault_ms);
    let result = cluster.finish(args.plan.liveness_ms);
    if let Some(path) = &args.history {
        match cluster.write_history(path) {
            Ok(()) => println!("history: {path} ({} operations)", cluster.history().operations().len()),
            Err(error) => eprintln!("history: cannot write {path}: {error}"),
        }
    }
    let wall = began.elapsed().as_secs_f64();
    match result {
        Ok(summary) => {
            print!("{}", summary.counters);
            println!(
                "ok: {} events, {} ms simulated in {:.2} s ({:.0} events/s, {:.1} simulated s per wall s), trace hash {:#018x}",
                summary.events,
                summary.sim_ms,
                wall,
                summary.events as f64 / wall,
                summary.sim_ms as f64 / 1000.0 / wall,
                summary.trace_hash
            );
            ExitCode::SUCCESS
        }
        Err(failure) => {
            println!("{failure}");
            ExitCode::FAILURE
        }
    }
}

fn run_explore(args: &Args) -> ExitCode {
    let plan = &args.plan;
    println!(
        "explore: seeds {:#x}..{:#x}, {} nodes, {} clients, faults {}, {} ms fault phase, liveness bound {} ms",
        args.start,
        args.start + args.seeds,
        plan.nodes,
        plan.clients,
        plan.faults.name(),
        plan.fault_ms,
        plan.liveness_ms
    );
    // Failures are reported below as replay lines; keep panics from flooding the output.
    std::panic::set_hook(Box::new(|_| {}));
    let report = explore(plan, args.start, args.seeds, |seed, result| {
        if let Err(failure) = result {
            println!("FAIL seed {seed:#x} ({}): {}", failure.kind, first_line(&failure.detail));
            println!("  replay: {}", failure.replay);
        }
    });
    let _ = std::panic::take_hook();
    let mut determinism_failures = 0;
    if args.determinism {
        for seed in args.start..args.start + args.seeds.min(20) {
            if let Err(error) = determinism_check(plan, seed) {
                println!("DETERMINISM {error}");
                determinism_failures += 1;
            }
        }
    }
    print!("{}", report.counters);
    println!(
        "explored {} seeds: {} failures; {:.1} seeds/s, {:.0} events/s, {:.0} simulated s per wall s ({} events, {:.0} simulated s, {:.1} wall s)",
        report.seeds,
        report.failures.len(),
        report.seeds_per_second(),
        report.events_per_second(),
        report.speedup(),
        report.events,
        report.sim_ms as f64 / 1000.0,
        report.wall.as_secs_f64()
    );
    let missing = report.counters.missing(sim::counters::COVERAGE);
    if !missing.is_empty() {
        println!("coverage: never hit {missing:?}");
    }
    if report.failures.is_empty() && determinism_failures == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// A 5-node cluster with 50 clients under swarm faults: raw simulator speed.
fn bench(args: &Args) -> ExitCode {
    let plan = RunPlan { nodes: 5, clients: 50, ..args.plan.clone() };
    let seeds = if args.seeds == 100 { 10 } else { args.seeds };
    std::panic::set_hook(Box::new(|_| {}));
    let report = explore(&plan, args.start, seeds, |_, _| {});
    let _ = std::panic::take_hook();
    println!(
        "bench: 5 nodes, 50 clients, swarm faults, {seeds} seeds: {:.0} events/s, {:.0} simulated s per wall s, {:.2} seeds/s ({} failures)",
        report.events_per_second(),
        report.speedup(),
        report.seeds_per_second(),
        report.failures.len()
    );
    ExitCode::SUCCESS
}

fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(line: &str) -> Result<Args, String> {
        parse(line.split_whitespace().map(str::to_string))
    }

    #[test]
    fn replay_lines_parse_back_into_the_same_plan() {
        let plan = RunPlan { nodes: 5, clients: 20, faults: Faults::All, fault_ms: 7_000, ..RunPlan::default() };
        let line = plan.replay_line(0x5eed);
        let parsed = args(line.split(" -- ").nth(1).expect("cargo run … -- run …")).unwrap();
        assert_eq!(parsed.command, "run");
        assert_eq!(parsed.seed, 0x5eed);
        assert_eq!(parsed.plan.replay_line(parsed.seed), line);
    }

    #[test]
    fn flags_are_checked() {
        let parsed = args("explore --seeds 10 --start 0x10 --nodes 3 --wire json --determinism").unwrap();
        assert_eq!((parsed.seeds, parsed.start, parsed.plan.nodes), (10, 16, 3));
        assert_eq!(parsed.plan.wire, Some(WireFormat::Json));
        assert!(parsed.determinism);
        assert!(args("run --faults lots").unwrap_err().contains("not swarm, all or none"));
        assert!(args("run --seed").unwrap_err().contains("needs a value"));
        assert!(args("run --bogus 1").unwrap_err().contains("unknown flag"));
    }
}
