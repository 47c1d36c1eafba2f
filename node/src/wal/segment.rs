//! One segment file: scanning it record by record and classifying damage.

use super::record::{decode, Decoded, Record};
use std::path::{Path, PathBuf};

/// The file name of segment `seq`.
pub fn file_name(seq: u64) -> String {
    format!("wal-{seq:020}.log")
}

/// The sequence number in a segment file name, if it is one.
pub fn parse_name(name: &str) -> Option<u64> {
    name.strip_prefix("wal-")?.strip_suffix(".log")?.parse().ok()
}

/// The file name of the `n`th segment prepared ahead of use. Not a segment
/// name, so [`list`] ignores it until it is renamed into place.
pub fn temp_file_name(n: u64) -> String {
    format!("prealloc-{n}.tmp")
}

/// Whether `name` is a prepared segment that was never renamed into place.
pub fn is_temp_name(name: &str) -> bool {
    name.strip_prefix("prealloc-").and_then(|rest| rest.strip_suffix(".tmp")).is_some_and(|n| n.parse::<u64>().is_ok())
}

/// Segment files in `dir`, oldest first.
pub fn list(dir: &Path) -> std::io::Result<Vec<(u64, PathBuf)>> {
    let mut segments = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if let Some(seq) = entry.file_name().to_str().and_then(parse_name) {
            segments.push((seq, entry.path()));
        }
    }
    segments.sort();
    Ok(segments)
}

/// Where a segment stops being readable.
#[derive(Debug, PartialEq, Eq)]
pub struct Damage {
    /// Byte offset of the first unreadable record.
    pub offset: u64,
    /// What is wrong with it.
    pub reason: &'static str,
    /// An intact record follows the damage, so it is not a torn tail.
    pub intact_record_after: bool,
    /// Everything from `offset` on is zero: preallocated space, not damage.
    pub only_zeros_after: bool,
    /// If the damage lies inside a batch: where that batch starts and how many
    /// records came before it. A torn batch is dropped whole.
    pub batch_start: Option<(u64, usize)>,
    /// Whether the damage can be an incomplete last write: it lies outside any
    /// batch (in a batch marker), or its batch runs past the end of the file,
    /// or part of the batch reads as never written (a whole [`SECTOR_BYTES`]
    /// block of zeros, which is what an unwritten part of a preallocated
    /// segment is). A batch whose every block was written but does not check
    /// out was damaged after it was made durable: corruption.
    pub looks_torn: bool,
    /// Where the damaged batch ends (by its marker), if the damage is in one.
    pub batch_end: Option<u64>,
}

/// The unit a disk writes atomically (the smallest in use): a write torn by a
/// crash loses whole blocks of this size.
pub const SECTOR_BYTES: usize = 512;

/// Everything readable in a segment.
#[derive(Debug)]
pub struct Scan {
    /// The intact records, in order.
    pub records: Vec<Record>,
    /// Where the readable prefix ends, if it is not the whole file.
    pub damage: Option<Damage>,
}

/// Reads records from the start of `bytes` until the end or the first damage.
/// Batch markers are consumed here, not returned: they only bound the search for
/// intact records after damage (damage inside the last batch is a torn write).
pub fn scan(bytes: &[u8]) -> Scan {
    let mut records = Vec::new();
    let mut at = 0;
    let mut batch_end = 0;
    let mut batch_start = (0, 0);
    while at < bytes.len() {
        let reason = match decode(&bytes[at..]) {
            Decoded::Record(Record::Batch { bytes: len }, framed) => {
                batch_start = (at as u64, records.len());
                at += framed;
                batch_end = at.saturating_add(len as usize);
                continue;
            }
            Decoded::Record(record, len) => {
                records.push(record);
                at += len;
                continue;
            }
            Decoded::Incomplete => "incomplete record",
            Decoded::Corrupt(reason) => reason,
        };
        let only_zeros_after = bytes[at..].iter().all(|&b| b == 0);
        // Within the damaged batch anything may be torn; look past its end.
        let in_batch = at < batch_end;
        let search_from = if in_batch { batch_end } else { at + 1 };
        let intact_record_after = !only_zeros_after
            && (search_from..bytes.len()).any(|from| matches!(decode(&bytes[from..]), Decoded::Record(..)));
        let looks_torn = !in_batch
            || batch_end > bytes.len()
            || has_zero_sector(bytes, batch_start.0 as usize, batch_end.min(bytes.len()));
        let damage = Damage {
            offset: at as u64,
            reason,
            intact_record_after,
            only_zeros_after,
            batch_start: in_batch.then_some(batch_start),
            looks_torn,
            batch_end: in_batch.then_some(batch_end as u64),
        };
        return Scan { records, damage: Some(damage) };
    }
    Scan { records, damage: None }
}

/// Whether some sector-aligned block overlapping `from..to` is all zeros.
fn has_zero_sector(bytes: &[u8], from: usize, to: usize) -> bool {
    let first = from / SECTOR_BYTES * SECTOR_BYTES;
    (first..to).step_by(SECTOR_BYTES).any(|start| {
        let block = &bytes[start..(start + SECTOR_BYTES).min(bytes.len())];
        block.iter().all(|&b| b == 0)
    })
}
