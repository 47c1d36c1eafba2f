//! The simulator's command line (`sim --help`, `sim <command> --help`).
//!
//! ```text
//! cargo run -p sim --release -- run --seed 0x5eed [--nodes 5] [--clients 20] [--faults swarm|all|none]
//!                                   [--fault-ms 20000] [--liveness-ms 30000] [--wire json|binary|plain]
//!                                   [--no-liveness-reads] [--history out.json] [--trace trace.log]
//! cargo run -p sim --release -- explore --seeds 10000 [--start 0] [--nodes 3|5] [--clients 8]
//!                                   [--faults swarm|all|none] [--fault-ms 20000] [--wire json|binary|plain]
//!                                   [--determinism]
//! cargo run -p sim --release -- determinism --seed 7 [--nodes 5] ...
//! cargo run -p sim --release -- bench [--seeds 10] [--start 0]
//! cargo run -p sim --release --features mutants -- explore --mutant figure8 --seeds 2000 ...
//! cargo run -p sim --release -- shrink --seed 0x42 [run options]
//! cargo run -p sim --release --features mutants -- mutants [--seeds 2000] [--only figure8,...] [run options]
//! ```
//!
//! The run options (`--nodes` … `--no-liveness-reads`) and `--seeds`/`--start`
//! are [`sim::cli::RunArgs`] and [`sim::cli::SeedRange`], shared with the
//! `scenarios` soak. `--duration-ms` is still accepted for `--fault-ms`.
//! Numbers are decimal or `0x`-hex. Bad command lines exit with code 2, failed
//! runs with 1.

use clap::{Args, Parser, Subcommand};
use sim::cli::{parse_number, RunArgs, SeedRange};
use sim::explore::{determinism_check, explore, RunPlan};
use std::process::ExitCode;

/// Seeded deterministic simulator for raftkv clusters: one seed, many seeds, determinism, speed.
#[derive(Parser, Debug)]
#[command(name = "sim", after_help = "Every failure prints the one line that replays it.")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run one seed, print its options, counters and trace hash.
    Run(RunCommand),
    /// Run many seeds: failures as replay lines, summed coverage counters, speed.
    Explore(ExploreCommand),
    /// Run one seed twice and compare the trace hashes.
    Determinism(DeterminismCommand),
    /// Raw simulator speed: 5 nodes, 50 clients, swarm faults.
    Bench(BenchCommand),
    /// The mutation suite (needs `--features mutants`): explore each planted bug
    /// until a seed catches it, then the clean build on the same seeds.
    Mutants(MutantsCommand),
    /// Shrink a failing seed: remove generated faults, clients, operations and
    /// time (delta debugging) while it still fails with the same kind and
    /// checker; print the minimal replay line and what was removed.
    Shrink(ShrinkCommand),
}

#[derive(Args, Debug)]
struct ShrinkCommand {
    /// The failing seed (decimal or 0x-hex).
    #[arg(long, value_name = "SEED", value_parser = parse_number)]
    seed: u64,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Args, Debug)]
struct MutantsCommand {
    /// Most seeds per mutant.
    #[arg(long, value_name = "N", default_value_t = 2000, value_parser = parse_number)]
    seeds: u64,
    /// The first seed (decimal or 0x-hex).
    #[arg(long, value_name = "SEED", default_value_t = 0, value_parser = parse_number)]
    start: u64,
    /// Only these mutants (comma-separated names; default: all).
    #[arg(long, value_name = "NAMES", value_delimiter = ',', value_parser = mutant_name)]
    only: Vec<raft_sm::Mutant>,
    /// Cluster sizes, alternating by seed (seed s runs with sizes[s % len] nodes); overrides --nodes.
    #[arg(long, value_name = "SIZES", value_delimiter = ',', default_value = "3,5", value_parser = sim::cli::parse_nodes)]
    sizes: Vec<usize>,
    #[command(flatten)]
    run: RunArgs,
}

fn mutant_name(text: &str) -> Result<raft_sm::Mutant, String> {
    raft_sm::Mutant::parse(text).ok_or_else(|| {
        let names: Vec<&str> = raft_sm::Mutant::ALL.iter().map(|m| m.name()).collect();
        format!("no mutant {text:?}; the mutants are {}", names.join(", "))
    })
}

#[derive(Args, Debug)]
struct RunCommand {
    /// The seed (decimal or 0x-hex).
    #[arg(long, value_name = "SEED", default_value_t = 0, value_parser = parse_number)]
    seed: u64,
    /// Write the client history here, as JSON lines.
    #[arg(long, value_name = "PATH")]
    history: Option<String>,
    /// Write the trace here (one line per event).
    #[arg(long, value_name = "PATH")]
    trace: Option<String>,
    /// Write a picture of the run here: one self-contained HTML file (lanes per
    /// node, messages, faults, client operations, a linearizability violation highlighted).
    #[arg(long, value_name = "PATH")]
    html: Option<String>,
    /// If the run fails, shrink it (as `sim shrink`) and print the minimal replay line.
    #[arg(long)]
    shrink: bool,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Args, Debug)]
struct ExploreCommand {
    #[command(flatten)]
    seeds: SeedRange,
    /// Also run the first (up to) 20 seeds twice and compare their trace hashes.
    #[arg(long)]
    determinism: bool,
    /// Threads to run seeds on (default: every core). Each seed's run is the
    /// same whatever the job count.
    #[arg(long, value_name = "N")]
    jobs: Option<usize>,
    /// Run only shard I of N of the seed range (every N-th seed from the I-th),
    /// to split one range across machines, e.g. `--shard 0/4` … `--shard 3/4`.
    #[arg(long, value_name = "I/N", value_parser = sim::parallel::Shard::parse, default_value = "0/1")]
    shard: sim::parallel::Shard,
    /// Shrink the first failing seed (as `sim shrink`) and print its minimal replay line.
    #[arg(long)]
    shrink: bool,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Args, Debug)]
struct DeterminismCommand {
    /// The seed (decimal or 0x-hex).
    #[arg(long, value_name = "SEED", default_value_t = 0, value_parser = parse_number)]
    seed: u64,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Args, Debug)]
struct BenchCommand {
    /// How many seeds to run.
    #[arg(long, value_name = "N", default_value_t = 10, value_parser = parse_number)]
    seeds: u64,
    /// The first seed (decimal or 0x-hex).
    #[arg(long, value_name = "SEED", default_value_t = 0, value_parser = parse_number)]
    start: u64,
}

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Run(command) => run(&command),
        Command::Explore(command) => run_explore(&command),
        Command::Bench(command) => bench(&command),
        Command::Mutants(command) => mutants(&command),
        Command::Shrink(command) => shrink(&command),
        Command::Determinism(command) => match determinism_check(&command.run.plan(), command.seed) {
            Ok(hash) => {
                println!("seed {:#x}: two runs, identical trace hash {hash:#018x}", command.seed);
                ExitCode::SUCCESS
            }
            Err(error) => {
                println!("{error}");
                ExitCode::FAILURE
            }
        },
    }
}

fn run(args: &RunCommand) -> ExitCode {
    let plan = args.run.plan();
    let mut options = plan.options(args.seed);
    options.trace_file = args.trace.clone();
    options.trace_hash = true;
    println!("{options}");
    println!("replay: {}", plan.replay_line(args.seed));
    let began = std::time::Instant::now();
    options.record_timeline = args.html.is_some();
    let mut cluster = sim::Cluster::new(options);
    // A safety failure panics out of the run; the picture is still worth drawing.
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        cluster.run_for(plan.fault_ms);
        cluster.finish(plan.liveness_ms)
    }));
    if let Some(path) = &args.html {
        match cluster.write_html(path, &format!("sim run --seed {:#x}", args.seed)) {
            Ok(()) => println!("html: {path}"),
            Err(error) => eprintln!("html: cannot write {path}: {error}"),
        }
    }
    let result = match outcome {
        Ok(result) => result,
        Err(panic) if args.shrink => {
            let message = panic.downcast_ref::<String>().cloned().unwrap_or_else(|| "a panic".into());
            println!("{message}");
            print_shrink(&plan, args.seed);
            return ExitCode::FAILURE;
        }
        Err(panic) => std::panic::resume_unwind(panic),
    };
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
            if args.shrink {
                print_shrink(&plan, args.seed);
            }
            ExitCode::FAILURE
        }
    }
}

fn run_explore(args: &ExploreCommand) -> ExitCode {
    let plan = &args.run.plan();
    let seeds = args.seeds.range();
    println!(
        "explore: seeds {:#x}..{:#x}, {} nodes, {} clients, faults {}, {} ms fault phase, liveness bound {} ms",
        seeds.start,
        seeds.end,
        plan.nodes,
        plan.clients,
        plan.faults.name(),
        plan.fault_ms,
        plan.liveness_ms
    );
    // Failures are reported below as replay lines; keep panics from flooding the output.
    std::panic::set_hook(Box::new(|_| {}));
    let jobs = args.jobs.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let shard_seeds = args.shard.seeds(seeds.start, seeds.end - seeds.start);
    if args.shard != sim::parallel::Shard::ALL {
        println!("shard {}/{}: {} seeds", args.shard.index, args.shard.count, shard_seeds.len());
    }
    let report = sim::parallel::explore_parallel(plan, &shard_seeds, jobs, |seed, result| {
        if let Err(failure) = result {
            println!("FAIL seed {seed:#x} ({}): {}", failure.kind, first_line(&failure.detail));
            println!("  replay: {}", failure.replay);
        }
    });
    let _ = std::panic::take_hook();
    let mut determinism_failures = 0;
    if args.determinism {
        for seed in seeds.clone().take(20) {
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
    println!(
        "{jobs} job(s): {:.0} seeds per core-minute",
        report.seeds_per_second() * 60.0 / jobs.min(report.seeds.max(1) as usize) as f64
    );
    let missing = report.counters.missing(sim::counters::COVERAGE);
    if !missing.is_empty() {
        println!("coverage: never hit {missing:?}");
    }
    println!("goals (passing seeds that reached each):");
    for &(goal, meaning) in sim::cluster::GOALS {
        let seeds = report.goal_seeds.get(goal).copied().unwrap_or(0);
        println!("  {goal:<46} {seeds:>7}  {meaning}");
    }
    if let (true, Some(first)) = (args.shrink, report.failures.first()) {
        println!("shrinking the first failure, seed {:#x}:", first.seed);
        print_shrink(plan, first.seed);
    }
    if report.failures.is_empty() && determinism_failures == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// A 5-node cluster with 50 clients under swarm faults: raw simulator speed.
fn bench(args: &BenchCommand) -> ExitCode {
    let plan = RunPlan { nodes: 5, clients: 50, ..RunPlan::default() };
    let seeds = args.seeds;
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

/// Explores every mutant (or `--only` these) until caught, prints the table, then
/// runs the clean build on the same seeds; fails if a mutant escapes or a clean seed fails.
fn mutants(args: &MutantsCommand) -> ExitCode {
    if !raft_sm::Mutant::ENABLED {
        eprintln!("error: `sim mutants` needs the simulator built with `--features mutants`");
        return ExitCode::from(2);
    }
    let plan = args.run.plan();
    if plan.mutant.is_some() {
        eprintln!("error: `sim mutants` plants each mutant itself; use `explore --mutant NAME` for one");
        return ExitCode::from(2);
    }
    let list: Vec<raft_sm::Mutant> =
        if args.only.is_empty() { raft_sm::Mutant::ALL.to_vec() } else { args.only.clone() };
    let seeds = args.start..args.start.saturating_add(args.seeds);
    println!(
        "mutants: up to {} seeds each from {:#x}, sizes {:?} by seed, {}",
        args.seeds,
        args.start,
        args.sizes,
        sim::cli::RunArgs::from_plan(&plan)
    );
    std::panic::set_hook(Box::new(|_| {}));
    let began = std::time::Instant::now();
    let mut escaped = 0;
    let mut most_seeds = 0;
    println!("{:<30} {:>6}  caught by", "mutant", "seeds");
    for mutant in list {
        let result = sim::mutation::explore_mutant(&plan, &args.sizes, Some(mutant), seeds.clone());
        most_seeds = most_seeds.max(result.seeds_run);
        let seeds_cell =
            if result.caught.is_some() { result.seeds_run.to_string() } else { format!(">{}", result.seeds_run) };
        println!("{:<30} {:>6}  {}", mutant.name(), seeds_cell, result.caught_by());
        match &result.caught {
            Some(failure) => println!("  replay: {}", failure.replay),
            None => escaped += 1,
        }
    }
    let clean_seeds = args.start..args.start + most_seeds;
    let mut clean_failures = 0;
    let mut next = clean_seeds.start;
    while next < clean_seeds.end {
        let result = sim::mutation::explore_mutant(&plan, &args.sizes, None, next..clean_seeds.end);
        next += result.seeds_run;
        if let Some(failure) = result.caught {
            clean_failures += 1;
            println!("CLEAN FAIL seed {:#x} ({}): {}", failure.seed, failure.kind, first_line(&failure.detail));
            println!("  replay: {}", failure.replay);
        }
    }
    let _ = std::panic::take_hook();
    println!(
        "clean build on seeds {:#x}..{:#x}: {clean_failures} failures; {escaped} mutants not caught; {:.1} s",
        clean_seeds.start,
        clean_seeds.end,
        began.elapsed().as_secs_f64()
    );
    if escaped == 0 && clean_failures == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn shrink(args: &ShrinkCommand) -> ExitCode {
    if print_shrink(&args.run.plan(), args.seed) {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// Shrinks `seed` of `plan` and prints the minimal failure with its replay line; false if it cannot.
fn print_shrink(plan: &RunPlan, seed: u64) -> bool {
    // The candidates' failures are reported below; keep their panics quiet.
    std::panic::set_hook(Box::new(|_| {}));
    let result = sim::shrink::shrink(plan, seed);
    let _ = std::panic::take_hook();
    match result {
        Ok(report) => {
            println!("original: {}", first_line(&report.original.to_string()));
            println!("{}", report.summary());
            println!("{}", report.failure);
            true
        }
        Err(error) => {
            println!("shrink: {error}");
            false
        }
    }
}

fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;
    use sim::explore::Faults;
    use sim::options::WireFormat;

    fn parse(line: &str) -> Result<Command, clap::Error> {
        Cli::try_parse_from(std::iter::once("sim").chain(line.split_whitespace())).map(|cli| cli.command)
    }

    #[test]
    fn replay_lines_parse_back_into_the_same_plan() {
        let plan = RunPlan { nodes: 5, clients: 20, faults: Faults::All, fault_ms: 7_000, ..RunPlan::default() };
        let line = plan.replay_line(0x5eed);
        let Command::Run(parsed) = parse(line.split(" -- ").nth(1).expect("cargo run … -- run …")).unwrap() else {
            panic!("{line} is not a run command")
        };
        assert_eq!(parsed.seed, 0x5eed);
        assert_eq!(parsed.run.plan(), plan);
        assert_eq!(parsed.run.plan().replay_line(parsed.seed), line);
    }

    #[test]
    fn the_shared_run_flags_are_accepted_by_every_run_command() {
        let flags = "--nodes 5 --clients 0x14 --duration-ms 7000 --liveness-ms 9000 --faults all --wire json --no-liveness-reads";
        let expected = RunPlan {
            nodes: 5,
            clients: 20,
            fault_ms: 7_000,
            liveness_ms: 9_000,
            faults: Faults::All,
            wire: Some(WireFormat::Json),
            liveness_reads: false,
            ..RunPlan::default()
        };
        for command in ["run --seed 1", "explore --seeds 1", "determinism --seed 1"] {
            let plan = match parse(&format!("{command} {flags}")).unwrap() {
                Command::Run(c) => c.run.plan(),
                Command::Explore(c) => c.run.plan(),
                Command::Determinism(c) => c.run.plan(),
                Command::Bench(_) | Command::Mutants(_) | Command::Shrink(_) => unreachable!(),
            };
            assert_eq!(plan, expected, "{command}");
        }
    }

    #[test]
    fn mutants_are_named_on_the_command_line() {
        let error = parse("mutants --only nope").unwrap_err().to_string();
        assert!(error.contains("no mutant \"nope\"; the mutants are figure8, vote-before-durable"), "{error}");
        if raft_sm::Mutant::ENABLED {
            let Command::Mutants(parsed) = parse("mutants --seeds 5 --only figure8,votes-as-number --sizes 5").unwrap()
            else {
                panic!("not mutants")
            };
            assert_eq!(parsed.only, [raft_sm::Mutant::Figure8, raft_sm::Mutant::VotesAsNumber]);
            assert_eq!((parsed.seeds, parsed.sizes.as_slice()), (5, &[5][..]));
            let Command::Explore(explore) = parse("explore --mutant figure8").unwrap() else { panic!("not explore") };
            let plan = explore.run.plan();
            assert_eq!(plan.mutant, Some(raft_sm::Mutant::Figure8));
            let line = plan.replay_line(3);
            assert!(
                line.contains("--features mutants -- run --seed 0x3") && line.ends_with("--mutant figure8"),
                "{line}"
            );
        } else {
            let error = parse("explore --mutant figure8").unwrap_err().to_string();
            assert!(error.contains("needs the simulator built with `--features mutants`"), "{error}");
        }
    }

    #[test]
    fn flags_are_checked() {
        let Command::Explore(parsed) =
            parse("explore --seeds 10 --start 0x10 --nodes 3 --wire json --determinism").unwrap()
        else {
            panic!("not explore")
        };
        assert_eq!((parsed.seeds.range(), parsed.run.nodes), (16..26, 3));
        assert_eq!(parsed.run.wire, Some(WireFormat::Json));
        assert!(parsed.determinism);
        let Command::Explore(defaults) = parse("explore").unwrap() else { panic!("not explore") };
        assert_eq!((defaults.seeds.range(), defaults.run.plan()), (0..100, RunPlan::default()));
        let Command::Bench(bench) = parse("bench").unwrap() else { panic!("not bench") };
        assert_eq!((bench.seeds, bench.start), (10, 0));
        assert!(parse("run --faults lots").unwrap_err().to_string().contains("[possible values: none, swarm, all]"));
        assert!(parse("run --seed").unwrap_err().to_string().contains("a value is required"));
        assert!(parse("run --seed nope").unwrap_err().to_string().contains("not a decimal or 0x-hex number"));
        assert!(parse("run --bogus 1").unwrap_err().to_string().contains("unexpected argument '--bogus'"));
        assert!(parse("bench --nodes 3").is_err(), "bench has a fixed shape");
        assert!(parse("walk").is_err());
        assert_eq!(parse("run --nodes 0").unwrap_err().exit_code(), 2);
    }
}
