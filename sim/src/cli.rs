//! The command-line options `sim` and `scenarios` share, defined once and
//! flattened into both binaries (`#[command(flatten)]`), so the two accept the
//! same flag names, values and defaults:
//!
//! ```text
//! --nodes N            cluster size (at least 1)                    [default: 3]
//! --clients K          concurrent clients                           [default: 8]
//! --fault-ms MS        length of the fault phase                    [default: 20000]
//! --liveness-ms MS     bound of the liveness phase                  [default: 30000]
//! --faults F           none | swarm | all                           [default: swarm]
//! --wire W             json | binary | plain (default: by build, see `RunPlan::options`)
//! --no-liveness-reads  skip the final "every node serves a read" check
//! --mutant NAME        run with a planted bug (needs `--features mutants`)
//! --seeds N            how many seeds (explore, soak)               [default: 100]
//! --start SEED         the first seed (explore, soak)               [default: 0]
//! ```
//!
//! Hidden aliases keep older command lines working: `--duration-ms` (sim's old
//! name of `--fault-ms`) and `--liveness-reads` (the default; accepted, and
//! overrides an earlier `--no-liveness-reads`). Every number is decimal or
//! `0x`-hex ([`parse_seed`]). [`RunArgs::from_plan`] renders a plan back into
//! these flags, which is how replay lines are written, so a replay line always
//! parses back into the plan that printed it.

use crate::explore::{Faults, RunPlan};
use crate::failure::parse_seed;
use crate::options::WireFormat;
use clap::builder::{PossibleValuesParser, TypedValueParser};
use std::fmt;
use std::ops::Range;

/// The options of one run (or of every seed of many runs).
#[derive(clap::Args, Clone, Debug, PartialEq, Eq)]
#[command(next_help_heading = "Run options (shared by sim and scenarios)")]
pub struct RunArgs {
    /// Cluster size.
    #[arg(long, value_name = "N", default_value_t = RunPlan::default().nodes, value_parser = parse_nodes)]
    pub nodes: usize,
    /// Concurrent clients.
    #[arg(long, value_name = "K", default_value_t = RunPlan::default().clients, value_parser = parse_count)]
    pub clients: usize,
    /// Length of the fault phase, in virtual milliseconds.
    #[arg(
        long,
        value_name = "MS",
        alias = "duration-ms",
        default_value_t = RunPlan::default().fault_ms,
        value_parser = parse_number
    )]
    pub fault_ms: u64,
    /// Bound of the liveness phase (faults healed, the cluster must converge), in virtual milliseconds.
    #[arg(long, value_name = "MS", default_value_t = RunPlan::default().liveness_ms, value_parser = parse_number)]
    pub liveness_ms: u64,
    /// Which faults the fault phase injects: none, swarm (each seed draws its own mix) or all (every kind on).
    #[arg(long, value_name = "F", default_value = RunPlan::default().faults.name(), value_parser = faults_parser())]
    pub faults: Faults,
    /// How messages travel between nodes. Unset: test (debug) builds alternate json and binary by seed,
    /// release builds use binary.
    #[arg(long, value_name = "W", value_parser = wire_parser())]
    pub wire: Option<WireFormat>,
    /// Skip the final check that every node serves a linearizable read after convergence.
    #[arg(long, overrides_with = "liveness_reads")]
    pub no_liveness_reads: bool,
    /// The default (every node must serve a linearizable read); kept so older command lines parse.
    #[arg(long, hide = true, overrides_with = "no_liveness_reads")]
    pub liveness_reads: bool,
    /// Run with a planted bug (`sim mutants` lists them); needs the simulator built with `--features mutants`.
    #[arg(long, value_name = "NAME", value_parser = mutant_parser())]
    pub mutant: Option<raft_sm::Mutant>,
    /// Apply only these of the faults the swarm generates, numbered from 1 (comma-separated; `none` for
    /// none): `sim shrink` prints such a line.
    #[arg(long, value_name = "LIST", value_parser = parse_fault_list)]
    pub keep_faults: Option<FaultList>,
    /// Membership churn: the first 1-3 nodes (drawn per seed) bootstrap the cluster, the others join
    /// empty, and random changes (add learner, promote, demote, remove, replace) keep between 1 and
    /// `--nodes` voters during the fault phase.
    #[arg(long)]
    pub membership_churn: bool,
    /// Begin only these client operations, numbered per client from 1: `C` (all of client C), `C.N`,
    /// `C.N-M`, comma-separated, or `none`; the others are skipped (shrinking prints such a line).
    #[arg(long, value_name = "LIST", value_parser = crate::op_list::OpList::parse)]
    pub keep_ops: Option<crate::op_list::OpList>,
}

/// The fault numbers of `--keep-faults`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FaultList(pub Vec<u64>);

impl fmt::Display for FaultList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("none");
        }
        let texts: Vec<String> = self.0.iter().map(u64::to_string).collect();
        f.write_str(&texts.join(","))
    }
}

/// Parses `--keep-faults`: `none`, or comma-separated fault numbers.
pub fn parse_fault_list(text: &str) -> Result<FaultList, String> {
    if text == "none" {
        return Ok(FaultList(Vec::new()));
    }
    text.split(',').map(|part| parse_number(part.trim())).collect::<Result<Vec<u64>, String>>().map(FaultList)
}

impl RunArgs {
    /// The plan these options describe.
    pub fn plan(&self) -> RunPlan {
        RunPlan {
            nodes: self.nodes,
            clients: self.clients,
            fault_ms: self.fault_ms,
            liveness_ms: self.liveness_ms,
            faults: self.faults,
            wire: self.wire,
            liveness_reads: !self.no_liveness_reads,
            mutant: self.mutant,
            keep_faults: self.keep_faults.clone().map(|list| list.0),
            membership_churn: self.membership_churn,
            keep_ops: self.keep_ops.clone(),
            ..RunPlan::default()
        }
    }

    /// The options that describe `plan` (its command-line fields; `trace_hash` is not one).
    pub fn from_plan(plan: &RunPlan) -> RunArgs {
        RunArgs {
            nodes: plan.nodes,
            clients: plan.clients,
            fault_ms: plan.fault_ms,
            liveness_ms: plan.liveness_ms,
            faults: plan.faults,
            wire: plan.wire,
            no_liveness_reads: !plan.liveness_reads,
            liveness_reads: false,
            mutant: plan.mutant,
            keep_faults: plan.keep_faults.clone().map(FaultList),
            membership_churn: plan.membership_churn,
            keep_ops: plan.keep_ops.clone(),
        }
    }
}

/// The flags, each with its value, as a command line takes them (no leading space).
impl fmt::Display for RunArgs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "--nodes {} --clients {} --faults {} --fault-ms {} --liveness-ms {}",
            self.nodes,
            self.clients,
            self.faults.name(),
            self.fault_ms,
            self.liveness_ms
        )?;
        if let Some(wire) = self.wire {
            write!(f, " --wire {}", wire.name())?;
        }
        if self.no_liveness_reads {
            f.write_str(" --no-liveness-reads")?;
        }
        if let Some(mutant) = self.mutant {
            write!(f, " --mutant {mutant}")?;
        }
        if let Some(keep) = &self.keep_faults {
            write!(f, " --keep-faults {keep}")?;
        }
        if self.membership_churn {
            f.write_str(" --membership-churn")?;
        }
        if let Some(keep) = &self.keep_ops {
            write!(f, " --keep-ops {keep}")?;
        }
        Ok(())
    }
}

/// Which seeds to run: `--seeds N` from `--start SEED`.
#[derive(clap::Args, Clone, Copy, Debug, PartialEq, Eq)]
pub struct SeedRange {
    /// How many seeds to run.
    #[arg(long, value_name = "N", default_value_t = 100, value_parser = parse_number)]
    pub seeds: u64,
    /// The first seed (decimal or 0x-hex).
    #[arg(long, value_name = "SEED", default_value_t = 0, value_parser = parse_number)]
    pub start: u64,
}

impl SeedRange {
    /// The seeds, `start..start + seeds` (cut at `u64::MAX`).
    pub fn range(&self) -> Range<u64> {
        self.start..self.start.saturating_add(self.seeds)
    }
}

/// Parses a decimal or `0x`-hex `u64` (a seed, a count, milliseconds).
pub fn parse_number(text: &str) -> Result<u64, String> {
    parse_seed(text).ok_or_else(|| format!("{text:?} is not a decimal or 0x-hex number"))
}

/// Parses a count that fits a `usize`.
pub fn parse_count(text: &str) -> Result<usize, String> {
    let number = parse_number(text)?;
    usize::try_from(number).map_err(|_| format!("{number} is too large"))
}

/// Parses a cluster size: a count of at least 1.
pub fn parse_nodes(text: &str) -> Result<usize, String> {
    match parse_count(text)? {
        0 => Err("a cluster has at least 1 node".into()),
        nodes => Ok(nodes),
    }
}

fn faults_parser() -> impl TypedValueParser<Value = Faults> {
    let names = [Faults::None, Faults::Swarm, Faults::All].map(Faults::name);
    PossibleValuesParser::new(names).map(|name| Faults::parse(&name).expect("a possible value is a fault mode"))
}

/// Mutant names; a mutant needs the `mutants` feature, and says so otherwise.
fn mutant_parser() -> impl TypedValueParser<Value = raft_sm::Mutant> {
    let names = raft_sm::Mutant::ALL.map(raft_sm::Mutant::name);
    PossibleValuesParser::new(names).try_map(|name| {
        if !raft_sm::Mutant::ENABLED {
            return Err(format!("mutant {name} needs the simulator built with `--features mutants`"));
        }
        Ok(raft_sm::Mutant::parse(&name).expect("a possible value is a mutant"))
    })
}

fn wire_parser() -> impl TypedValueParser<Value = WireFormat> {
    let names = [WireFormat::Json, WireFormat::Binary, WireFormat::Plain].map(WireFormat::name);
    PossibleValuesParser::new(names).map(|name| WireFormat::parse(&name).expect("a possible value is a wire format"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    /// A command line holding only the shared options.
    #[derive(Parser, Debug)]
    struct Line {
        #[command(flatten)]
        run: RunArgs,
        #[command(flatten)]
        seeds: SeedRange,
    }

    fn parse(line: &str) -> Result<Line, clap::Error> {
        Line::try_parse_from(std::iter::once("test").chain(line.split_whitespace()))
    }

    fn error(line: &str) -> String {
        parse(line).expect_err(line).to_string()
    }

    #[test]
    fn defaults_are_the_default_plan() {
        let line = parse("").unwrap();
        assert_eq!(line.run.plan(), RunPlan::default());
        assert_eq!(line.seeds.range(), 0..100);
    }

    #[test]
    fn every_flag_sets_its_field() {
        let line =
            parse("--nodes 5 --clients 0x10 --fault-ms 7000 --liveness-ms 9000 --faults all --wire plain --no-liveness-reads --seeds 20 --start 0x2a")
                .unwrap();
        let plan = line.run.plan();
        assert_eq!((plan.nodes, plan.clients, plan.fault_ms, plan.liveness_ms), (5, 16, 7_000, 9_000));
        assert_eq!((plan.faults, plan.wire, plan.liveness_reads), (Faults::All, Some(WireFormat::Plain), false));
        assert_eq!(line.seeds.range(), 0x2a..0x2a + 20);
    }

    #[test]
    fn old_spellings_are_hidden_aliases() {
        assert_eq!(parse("--duration-ms 1234").unwrap().run.fault_ms, 1234);
        assert!(parse("--liveness-reads").unwrap().run.plan().liveness_reads);
        // The last of the pair wins, as with any repeated flag.
        assert!(!parse("--liveness-reads --no-liveness-reads").unwrap().run.plan().liveness_reads);
        assert!(parse("--no-liveness-reads --liveness-reads").unwrap().run.plan().liveness_reads);
        let mut help = Vec::new();
        <Line as clap::CommandFactory>::command().write_long_help(&mut help).unwrap();
        let help = String::from_utf8(help).unwrap();
        assert!(help.contains("--fault-ms") && help.contains("--no-liveness-reads"), "{help}");
        assert!(!help.contains("duration-ms") && !help.contains("--liveness-reads "), "{help}");
    }

    #[test]
    fn bad_values_get_clear_errors() {
        let text = error("--faults lots");
        assert!(
            text.contains("invalid value 'lots'") && text.contains("[possible values: none, swarm, all]"),
            "{text}"
        );
        let text = error("--wire xml");
        assert!(text.contains("[possible values: json, binary, plain]"), "{text}");
        let text = error("--fault-ms soon");
        assert!(text.contains("\"soon\" is not a decimal or 0x-hex number"), "{text}");
        assert!(error("--nodes 0").contains("at least 1 node"));
        assert!(error("--seeds").contains("a value is required"));
        assert!(error("--bogus 1").contains("unexpected argument '--bogus'"));
        assert_eq!(parse("--start x").unwrap_err().kind(), clap::error::ErrorKind::ValueValidation);
        assert_eq!(parse("--nodes").unwrap_err().exit_code(), 2);
    }

    #[test]
    fn rendered_flags_parse_back_into_the_same_plan() {
        let plans = [
            RunPlan::default(),
            RunPlan { nodes: 5, clients: 20, faults: Faults::All, fault_ms: 7_000, ..RunPlan::default() },
            RunPlan { faults: Faults::None, wire: Some(WireFormat::Json), liveness_reads: false, ..RunPlan::default() },
            RunPlan {
                keep_faults: Some(vec![2, 3, 6]),
                keep_ops: Some(crate::op_list::OpList::parse("1.1-4,2,3.7").unwrap()),
                fault_ms: 5_219,
                ..RunPlan::default()
            },
        ];
        for plan in plans {
            let flags = RunArgs::from_plan(&plan).to_string();
            assert_eq!(parse(&flags).unwrap().run.plan(), plan, "{flags}");
        }
    }

    #[test]
    fn seed_ranges_stop_at_the_last_seed() {
        assert_eq!(parse("--start 0xffffffffffffffff --seeds 5").unwrap().seeds.range().count(), 0);
    }
}
