//! One segment file: scanning it record by record and classifying damage.

use super::record::{decode, Decoded, Record, HEADER_BYTES};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// Bytes read at a time by [`scan_file`].
const READ_CHUNK: usize = 1 << 20;

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

/// [`scan`] on a file, streaming: it reads the file in chunks of 1 MiB (more
/// only for a longer record), never the whole segment, and keeps only the
/// records. Only after damage that is not the zero tail does it read the rest
/// of the file (from the damaged batch on) to classify it. Returns the scan and
/// the file's length.
pub fn scan_file(path: &Path) -> std::io::Result<(Scan, u64)> {
    let file = std::fs::File::open(path)?;
    let len = file.metadata()?.len();
    let mut buf: Vec<u8> = Vec::new();
    // File offset of buf[0], and of the next byte to read.
    let (mut base, mut read_to) = (0u64, 0u64);
    let mut at = 0usize;
    let mut records = Vec::new();
    // The current batch: its start, the records before it, its end.
    let mut batch: Option<(u64, usize, u64)> = None;
    let reason = loop {
        match decode(&buf[at..]) {
            Decoded::Record(Record::Batch { bytes }, framed) => {
                let start = base + at as u64;
                at += framed;
                batch = Some((start, records.len(), (base + at as u64).saturating_add(bytes)));
            }
            Decoded::Record(record, framed) => {
                records.push(record);
                at += framed;
            }
            Decoded::Incomplete if read_to < len => {
                buf.drain(..at);
                base += at as u64;
                at = 0;
                let record_len = match buf.get(..4) {
                    Some(prefix) => HEADER_BYTES + u32::from_le_bytes(prefix.try_into().expect("4 bytes")) as usize,
                    None => 0,
                };
                let want = READ_CHUNK.max(record_len.saturating_sub(buf.len())) as u64;
                let n = want.min(len - read_to) as usize;
                let old = buf.len();
                buf.resize(old + n, 0);
                file.read_exact_at(&mut buf[old..], read_to)?;
                read_to += n as u64;
            }
            Decoded::Incomplete if at == buf.len() => return Ok((Scan { records, damage: None }, len)),
            Decoded::Incomplete => break "incomplete record",
            Decoded::Corrupt(reason) => break reason,
        }
    };
    drop(buf);
    let offset = base + at as u64;
    let in_batch = batch.filter(|&(_, _, end)| offset < end);
    let only_zeros_after = zeros_from(&file, offset, len)?;
    let batch_start = in_batch.map(|(start, records_before, _)| (start, records_before));
    let batch_end = in_batch.map(|(_, _, end)| end);
    if only_zeros_after {
        let damage = Damage {
            offset,
            reason,
            intact_record_after: false,
            only_zeros_after,
            batch_start,
            looks_torn: true,
            batch_end,
        };
        return Ok((Scan { records, damage: Some(damage) }, len));
    }
    // Rare: read the rest, from the sector where the damaged batch starts.
    let from = in_batch.map_or(offset, |(start, _, _)| start) / SECTOR_BYTES as u64 * SECTOR_BYTES as u64;
    let mut tail = vec![0u8; (len - from) as usize];
    file.read_exact_at(&mut tail, from)?;
    let rel = |abs: u64| (abs.saturating_sub(from) as usize).min(tail.len());
    let search_from = batch_end.map_or(rel(offset) + 1, rel);
    let intact_record_after = (search_from..tail.len()).any(|at| matches!(decode(&tail[at..]), Decoded::Record(..)));
    let looks_torn = match in_batch {
        None => true,
        Some((start, _, end)) => end > len || has_zero_sector(&tail, rel(start), rel(end)),
    };
    let damage = Damage { offset, reason, intact_record_after, only_zeros_after, batch_start, looks_torn, batch_end };
    Ok((Scan { records, damage: Some(damage) }, len))
}

/// Whether the file holds only zeros from `offset` to `len` (read in chunks).
fn zeros_from(file: &std::fs::File, mut offset: u64, len: u64) -> std::io::Result<bool> {
    let mut chunk = vec![0u8; READ_CHUNK];
    while offset < len {
        let n = (len - offset).min(READ_CHUNK as u64) as usize;
        file.read_exact_at(&mut chunk[..n], offset)?;
        if chunk[..n].iter().any(|&b| b != 0) {
            return Ok(false);
        }
        offset += n as u64;
    }
    Ok(true)
}
