//! `scenarios` command line: the soak (`scenarios soak --help`).
//!
//! ```text
//! cargo run -p scenarios --release -- soak --seeds 2000 [--start 0] [--nodes 3|5] [--clients 8] [--fault-ms 20000]
//! cargo run -p scenarios --release -- soak --seed 0x2a [--nodes 5]     # one seed, verbose (SIM_TRACE=1 for a trace)
//!     [--liveness-ms 30000] [--faults swarm|all] [--wire json|binary|plain] [--no-liveness-reads]
//! ```
//!
//! The run options and `--seeds`/`--start` are `sim`'s own
//! ([`sim::cli::RunArgs`], [`sim::cli::SeedRange`]): same names, same
//! defaults. Prints every failure with its replay line, the summed coverage
//! counters (and the suite counters never hit), and the speed. Exits 1 if any
//! seed failed, 2 on a bad command line.

use clap::{Args, CommandFactory, Parser, Subcommand};
use scenarios::soak::{soak, SuitePlan, SUITE_COVERAGE};
use sim::cli::{parse_number, RunArgs, SeedRange};
use sim::explore::Faults;
use std::process::ExitCode;

/// The fault suites of `cargo test -p scenarios`, on as many seeds as you like.
#[derive(Parser, Debug)]
#[command(name = "scenarios", after_help = "Every failure prints the one line that replays it.")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the fault suite (swarm faults, low snapshot thresholds, every checker) on many seeds.
    ///
    /// Takes sim's run options; --faults must be swarm or all (the suite needs faults).
    Soak(SoakCommand),
}

#[derive(Args, Debug)]
struct SoakCommand {
    #[command(flatten)]
    seeds: SeedRange,
    /// Run only this seed, printing its options (instead of --seeds/--start).
    #[arg(long, value_name = "SEED", value_parser = parse_number, conflicts_with_all = ["seeds", "start"])]
    seed: Option<u64>,
    #[command(flatten)]
    run: RunArgs,
}

impl SoakCommand {
    /// The suite plan and the seeds to run, or why the soak cannot run them.
    fn plan(&self) -> Result<(SuitePlan, Vec<u64>), String> {
        if self.run.faults == Faults::None {
            return Err("the soak runs a fault suite: --faults swarm or all".into());
        }
        let seeds = match self.seed {
            Some(seed) => vec![seed],
            None => self.seeds.range().collect(),
        };
        if seeds.is_empty() {
            return Err("no seeds to run (--seeds 0)".into());
        }
        Ok((SuitePlan { run: self.run.plan() }, seeds))
    }
}

fn main() -> ExitCode {
    let Command::Soak(command) = Cli::parse().command;
    match command.plan() {
        Ok((plan, seeds)) => soak_command(&plan, seeds),
        Err(message) => {
            let mut cli = Cli::command();
            cli.build();
            let soak = cli.find_subcommand_mut("soak").expect("the soak subcommand");
            soak.error(clap::error::ErrorKind::InvalidValue, message).exit()
        }
    }
}

fn soak_command(plan: &SuitePlan, seeds: Vec<u64>) -> ExitCode {
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
    let report = soak(plan, seeds, |seed, result| {
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
    if report.failures.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sim::explore::RunPlan;
    use sim::options::WireFormat;

    fn parse(line: &str) -> Result<SoakCommand, clap::Error> {
        let Command::Soak(command) =
            Cli::try_parse_from(["scenarios", "soak"].into_iter().chain(line.split_whitespace()))?.command;
        Ok(command)
    }

    #[test]
    fn the_soak_takes_sims_run_flags_and_defaults() {
        let defaults = parse("").unwrap();
        assert_eq!(defaults.run.plan(), RunPlan::default());
        assert_eq!(defaults.plan().unwrap().1, (0..100).collect::<Vec<_>>());
        // The line `sim`'s own tests parse, with the old spelling of --fault-ms.
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
        assert_eq!(parse(flags).unwrap().run.plan(), expected);
        // sim's replay flags are soak flags too.
        let rendered = RunArgs::from_plan(&expected).to_string();
        assert_eq!(parse(&rendered).unwrap().run.plan(), expected, "{rendered}");
        assert!(parse("--liveness-reads").unwrap().run.plan().liveness_reads);
    }

    #[test]
    fn soak_replay_lines_parse_back_into_the_same_plan() {
        let plan = SuitePlan::new(5).with_faults(Faults::All);
        let line = plan.soak_replay(0x2a);
        let args = line.split(" -- soak ").nth(1).expect("cargo run … -- soak …");
        let command = parse(args).unwrap();
        let (parsed, seeds) = command.plan().unwrap();
        assert_eq!(parsed.soak_replay(seeds[0]), line);
        assert_eq!((parsed.run, seeds), (plan.run, vec![0x2a]));
    }

    #[test]
    fn seeds_are_a_range_or_one_seed() {
        assert_eq!(parse("--seeds 3 --start 0x10").unwrap().plan().unwrap().1, vec![16, 17, 18]);
        assert_eq!(parse("--seed 0x2a").unwrap().plan().unwrap().1, vec![0x2a]);
        let text = parse("--seed 1 --seeds 5").unwrap_err().to_string();
        assert!(text.contains("cannot be used with"), "{text}");
        assert!(parse("--seeds 0").unwrap().plan().unwrap_err().contains("no seeds"));
    }

    #[test]
    fn bad_soak_lines_get_clear_errors() {
        assert!(parse("--faults none").unwrap().plan().unwrap_err().contains("--faults swarm or all"));
        let text = parse("--faults lots").unwrap_err().to_string();
        assert!(text.contains("[possible values: none, swarm, all]"), "{text}");
        assert!(parse("--nodes 0").unwrap_err().to_string().contains("at least 1 node"));
        assert!(parse("--seed x").unwrap_err().to_string().contains("not a decimal or 0x-hex number"));
        assert!(parse("--history h.json").unwrap_err().to_string().contains("unexpected argument"));
        assert_eq!(parse("--clients").unwrap_err().exit_code(), 2);
        assert!(Cli::try_parse_from(["scenarios"]).is_err());
    }
}
