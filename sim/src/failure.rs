//! Failures: what kind, where, and the one line that replays it.

use std::fmt;

/// The family of a failure.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum FailureKind {
    /// A Raft safety invariant or a driver contract broke.
    Safety,
    /// The client history is not linearizable.
    Linearizability,
    /// The cluster did not converge (or a predicate was not met) within its bound.
    Liveness,
    /// The code under test panicked (an assertion in the core, for example).
    Crash,
    /// The run exceeded its event, simulated-time or queued-event budget (a storm
    /// or runaway growth), so it was stopped instead of hanging.
    Budget,
}

impl fmt::Display for FailureKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FailureKind::Safety => "safety",
            FailureKind::Linearizability => "linearizability",
            FailureKind::Liveness => "liveness",
            FailureKind::Crash => "crash",
            FailureKind::Budget => "budget",
        })
    }
}

/// A failed simulation.
#[derive(Clone, PartialEq, Eq)]
pub struct Failure {
    /// The family.
    pub kind: FailureKind,
    /// The run's seed.
    pub seed: u64,
    /// Virtual time of the failure.
    pub at_ms: u64,
    /// What went wrong.
    pub detail: String,
    /// One shell line that replays the run.
    pub replay: String,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "simulation failure ({}) at {} ms, seed {:#x}: {}\nreplay: {}",
            self.kind, self.at_ms, self.seed, self.detail, self.replay
        )
    }
}

impl fmt::Debug for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl std::error::Error for Failure {}

/// The replay line for a test run: `SIM_SEED=<seed> cargo test -p <package> <test>`,
/// naming the package and test from the environment cargo gives test processes.
pub fn default_replay(seed: u64) -> String {
    let package = std::env::var("CARGO_PKG_NAME").unwrap_or_else(|_| "sim".into());
    let thread = std::thread::current();
    match thread.name() {
        Some(name) if name != "main" => {
            format!("SIM_SEED={seed:#x} cargo test -p {package} {name} -- --exact")
        }
        _ => format!("cargo run -p sim --release -- run --seed {seed:#x}"),
    }
}

/// The seed a test should use: `SIM_SEED` (decimal or `0x` hex) if set, else `default`.
pub fn seed_from_env(default: u64) -> u64 {
    match std::env::var("SIM_SEED") {
        Ok(text) if !text.is_empty() => {
            parse_seed(&text).unwrap_or_else(|| panic!("SIM_SEED={text:?} is not a decimal or 0x-hex u64"))
        }
        _ => default,
    }
}

/// Parses a decimal or `0x`-prefixed hexadecimal seed.
pub fn parse_seed(text: &str) -> Option<u64> {
    let text = text.trim();
    match text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => text.parse().ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeds_parse_in_decimal_and_hex() {
        assert_eq!(parse_seed("0x5eed"), Some(0x5eed));
        assert_eq!(parse_seed("42"), Some(42));
        assert_eq!(parse_seed("nope"), None);
    }

    #[test]
    fn failures_name_kind_seed_and_replay() {
        let failure = Failure {
            kind: FailureKind::Liveness,
            seed: 0x5eed,
            at_ms: 10,
            detail: "no leader".into(),
            replay: default_replay(0x5eed),
        };
        let text = failure.to_string();
        assert!(text.contains("(liveness)") && text.contains("0x5eed"), "{text}");
        assert!(
            text.contains("SIM_SEED=0x5eed cargo test -p sim failure::tests::failures_name_kind_seed_and_replay"),
            "{text}"
        );
    }
}
