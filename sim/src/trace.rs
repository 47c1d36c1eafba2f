//! The trace: one human-readable line per simulated event (time, node, role
//! glyph, event, resulting actions). Every line feeds a running hash, so two
//! runs of a seed can be compared cheaply; with `SIM_TRACE` the lines are
//! also written out.

use crate::rng::{fnv1a, FNV_OFFSET};
use std::fmt;
use std::io::Write;

/// Where trace lines go.
pub struct Trace {
    hash: u64,
    lines: u64,
    hashing: bool,
    sink: Option<Box<dyn Write>>,
}

impl Trace {
    /// A trace that hashes (when `hashing`) and writes to `sink` (when given).
    pub fn new(hashing: bool, sink: Option<Box<dyn Write>>) -> Trace {
        Trace { hash: FNV_OFFSET, lines: 0, hashing, sink }
    }

    /// Whether lines are consumed at all (callers skip formatting otherwise).
    pub fn enabled(&self) -> bool {
        self.hashing || self.sink.is_some()
    }

    /// Records one line.
    pub fn line(&mut self, args: fmt::Arguments<'_>) {
        if !self.enabled() {
            return;
        }
        let text = args.to_string();
        self.hash = fnv1a(self.hash, text.as_bytes());
        self.hash = fnv1a(self.hash, b"\n");
        self.lines += 1;
        if let Some(sink) = &mut self.sink {
            // A trace that cannot be written is not worth failing the run for.
            let _ = writeln!(sink, "{text}");
        }
    }

    /// The hash of every line so far.
    pub fn hash(&self) -> u64 {
        self.hash
    }

    /// Number of lines so far.
    pub fn lines(&self) -> u64 {
        self.lines
    }

    /// Flushes the sink.
    pub fn flush(&mut self) {
        if let Some(sink) = &mut self.sink {
            let _ = sink.flush();
        }
    }
}

/// Opens the sink `SIM_TRACE` asks for: `1` → `sim-trace-<seed>.log` in the
/// current directory, any other non-empty value → that path.
pub fn sink_from_env(seed: u64) -> Option<(String, Box<dyn Write>)> {
    let value = std::env::var("SIM_TRACE").ok()?;
    open_sink(seed, value)
}

/// Opens a trace sink: `"1"` → `sim-trace-<seed>.log`, else the path given.
pub fn open_sink(seed: u64, value: String) -> Option<(String, Box<dyn Write>)> {
    if value.is_empty() || value == "0" {
        return None;
    }
    let path = if value == "1" { format!("sim-trace-{seed:#x}.log") } else { value };
    let file = std::fs::File::create(&path).unwrap_or_else(|error| panic!("SIM_TRACE: cannot create {path}: {error}"));
    Some((path, Box::new(std::io::BufWriter::new(file))))
}
