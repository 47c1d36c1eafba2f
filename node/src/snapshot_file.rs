//! Snapshot files in the data directory, written and read as streams: no
//! snapshot is ever one buffer in memory.
//!
//! ```text
//! snapshot.bin                 the durable snapshot: [image][trailer]
//! snapshot-<index>.staged      an image the node took, written by the driver, not yet durable
//! snapshot.incoming            the image a leader is sending, chunk by chunk
//! snapshot.staging             an image being taken (renamed to its .staged name once complete)
//! ```
//!
//! The trailer is `header · crc32(image ‖ header) u32 · header length u32 ·
//! image length u64 · "RKVSNAP4"`, with header = last index, last term, then the
//! configuration's voters, learners and outgoing voters, each a count and the
//! ids (u64 little-endian each), then the member contexts (the address book:
//! a count, then per member its id, a u64 length and the bytes). It goes last
//! so that an image can be streamed into the file before its metadata is
//! known, and the file made the snapshot by appending it, an fsync and a
//! rename. Files of the earlier formats are still read: `RKVSNAP3` (the same
//! without contexts) and the first one (`RKVSNAPF`, header first, voters only).

use crate::wal::sync_dir;
use raft_sm::{LogIndex, Membership, NodeId, SnapshotMeta, Term};
use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// The durable snapshot's file name.
pub const SNAPSHOT_FILE: &str = "snapshot.bin";
const INCOMING_FILE: &str = "snapshot.incoming";
const TRAILER_MAGIC: &[u8; 8] = b"RKVSNAP4";
/// The trailer format before member contexts.
const NO_CONTEXTS_MAGIC: &[u8; 8] = b"RKVSNAP3";
const FIRST_FORMAT_MAGIC: &[u8; 8] = b"RKVSNAPF";
/// crc, header length, image length, magic.
const TRAILER_FIXED_BYTES: u64 = 4 + 4 + 8 + 8;

/// Where a staged image for `index` lives.
pub fn staged_path(dir: &Path, index: LogIndex) -> PathBuf {
    dir.join(format!("snapshot-{}.staged", index.0))
}

fn header_bytes(meta: &SnapshotMeta) -> Vec<u8> {
    let membership = &meta.membership;
    let mut header = Vec::with_capacity(40 + 8 * membership.members().len());
    header.extend_from_slice(&meta.last_index.0.to_le_bytes());
    header.extend_from_slice(&meta.last_term.0.to_le_bytes());
    for list in [&membership.voters, &membership.learners, &membership.outgoing] {
        header.extend_from_slice(&(list.len() as u64).to_le_bytes());
        for id in list {
            header.extend_from_slice(&id.0.to_le_bytes());
        }
    }
    header.extend_from_slice(&(membership.contexts.len() as u64).to_le_bytes());
    for (id, context) in &membership.contexts {
        header.extend_from_slice(&id.0.to_le_bytes());
        header.extend_from_slice(&(context.len() as u64).to_le_bytes());
        header.extend_from_slice(context);
    }
    header
}

/// Parses a header with `lists` member lists (1 in the first format: voters
/// only), followed by the member contexts if `contexts`.
fn parse_header(header: &[u8], lists: usize, contexts: bool) -> Result<(LogIndex, Term, Membership), String> {
    let u64_at = |at: usize| -> Result<u64, String> {
        header
            .get(at..at + 8)
            .map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes")))
            .ok_or_else(|| "truncated header".to_owned())
    };
    let mut at = 16;
    let mut members: [Vec<NodeId>; 3] = Default::default();
    for list in members.iter_mut().take(lists) {
        let count = u64_at(at)? as usize;
        at += 8;
        if count > header.len() / 8 {
            return Err("truncated member list".into());
        }
        for _ in 0..count {
            list.push(NodeId(u64_at(at)?));
            at += 8;
        }
    }
    let [voters, learners, outgoing] = members;
    let mut membership = Membership { voters, learners, outgoing, ..Membership::default() };
    if contexts {
        let count = u64_at(at)? as usize;
        at += 8;
        if count > header.len() / 16 {
            return Err("truncated member contexts".into());
        }
        for _ in 0..count {
            let id = NodeId(u64_at(at)?);
            let len = u64_at(at + 8)? as usize;
            at += 16;
            let context = header.get(at..at.saturating_add(len)).ok_or("truncated member context")?;
            at += len;
            if !membership.contains(id) {
                return Err(format!("a member context for {id}, which is not a member"));
            }
            membership.contexts.insert(id, context.to_vec());
        }
    }
    if at != header.len() {
        return Err("the member lists do not fit the header".into());
    }
    Ok((LogIndex(u64_at(0)?), Term(u64_at(8)?), membership))
}

/// A stream into a new file that ends as a snapshot: the image is written
/// through it (checksummed on the way), then [`ImageFile::seal`] appends the
/// trailer.
pub struct ImageFile {
    path: PathBuf,
    out: BufWriter<File>,
    crc: crc32fast::Hasher,
    len: u64,
}

impl ImageFile {
    /// Creates (or truncates) `path`.
    pub fn create(path: PathBuf) -> std::io::Result<ImageFile> {
        let out = BufWriter::with_capacity(256 * 1024, File::create(&path)?);
        Ok(ImageFile { path, out, crc: crc32fast::Hasher::new(), len: 0 })
    }

    /// The image's bytes so far.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether nothing was written yet.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Appends one chunk of an incoming image. On an error the file is cut back
    /// to the bytes written before, so the same chunk can be retried.
    pub fn append_chunk(&mut self, data: &[u8]) -> std::io::Result<()> {
        let written = self.out.flush().and_then(|()| self.out.get_mut().write_all(data));
        if let Err(error) = written {
            self.cut_back();
            return Err(error);
        }
        self.crc.update(data);
        self.len += data.len() as u64;
        Ok(())
    }

    /// Drops whatever was written past `len` (after a failed write).
    fn cut_back(&mut self) {
        let file = self.out.get_mut();
        let _ = file.set_len(self.len).and_then(|()| file.seek(SeekFrom::Start(self.len)).map(drop));
    }

    /// Appends the trailer for `meta`, makes the file durable and renames it to
    /// `snapshot.bin` in `dir` (then fsyncs the directory): the snapshot is
    /// replaced atomically. On an error nothing changed and it can be retried.
    pub fn seal(&mut self, dir: &Path, meta: &SnapshotMeta) -> std::io::Result<()> {
        if self.len != meta.size_bytes {
            return Err(std::io::Error::other(format!(
                "the image of the snapshot at {} is {} bytes, its metadata says {}",
                meta.last_index.0, self.len, meta.size_bytes
            )));
        }
        let header = header_bytes(meta);
        let mut crc = self.crc.clone();
        crc.update(&header);
        let mut trailer = header.clone();
        trailer.extend_from_slice(&crc.finalize().to_le_bytes());
        trailer.extend_from_slice(&(header.len() as u32).to_le_bytes());
        trailer.extend_from_slice(&self.len.to_le_bytes());
        trailer.extend_from_slice(TRAILER_MAGIC);
        let sealed = self.out.flush().and_then(|()| {
            let file = self.out.get_mut();
            file.write_all(&trailer)?;
            file.sync_all()?;
            std::fs::rename(&self.path, dir.join(SNAPSHOT_FILE))
        });
        if let Err(error) = sealed {
            self.cut_back();
            return Err(error);
        }
        sync_dir(dir)
    }

    /// Gives up: the file is removed.
    pub fn discard(self) {
        let path = self.path.clone();
        drop(self);
        let _ = std::fs::remove_file(path);
    }
}

impl Write for ImageFile {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        let written = self.out.write(bytes)?;
        self.crc.update(&bytes[..written]);
        self.len += written as u64;
        Ok(written)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.out.flush()
    }
}

/// A staged image (taken by the host, written without fsync) for `meta`
/// becomes the snapshot: its checksum is computed by reading it back, the
/// trailer appended, the file made durable and renamed. Older staged files go.
pub fn commit_staged(dir: &Path, meta: &SnapshotMeta) -> std::io::Result<()> {
    let path = staged_path(dir, meta.last_index);
    let mut reader = BufReader::with_capacity(256 * 1024, File::open(&path)?);
    let mut crc = crc32fast::Hasher::new();
    let mut buffer = vec![0u8; 256 * 1024];
    let mut len = 0u64;
    loop {
        let read = reader.read(&mut buffer)?;
        if read == 0 {
            break;
        }
        crc.update(&buffer[..read]);
        len += read as u64;
    }
    let mut file = std::fs::OpenOptions::new().write(true).open(&path)?;
    file.seek(SeekFrom::Start(len))?;
    let mut image = ImageFile { path, out: BufWriter::new(file), crc, len };
    image.seal(dir, meta)?;
    remove_staged_up_to(dir, meta.last_index);
    Ok(())
}

/// Removes staged images at or below `index` (replaced by a newer snapshot).
pub fn remove_staged_up_to(dir: &Path, index: LogIndex) {
    for (staged_index, path) in staged_files(dir) {
        if staged_index <= index {
            let _ = std::fs::remove_file(path);
        }
    }
}

fn staged_files(dir: &Path) -> Vec<(LogIndex, PathBuf)> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let name = entry.file_name().into_string().ok()?;
            let index = name.strip_prefix("snapshot-")?.strip_suffix(".staged")?.parse().ok()?;
            Some((LogIndex(index), entry.path()))
        })
        .collect()
}

/// At start: images that never became a snapshot (staged, incoming, temp
/// files of the first format) are deleted; the core starts any transfer over.
pub fn remove_leftovers(dir: &Path) {
    for (_, path) in staged_files(dir) {
        let _ = std::fs::remove_file(path);
    }
    for name in [INCOMING_FILE, "snapshot.staging", "snapshot.bin.tmp"] {
        let _ = std::fs::remove_file(dir.join(name));
    }
}

/// The incoming image a leader sends, in the data directory.
pub fn create_incoming(dir: &Path) -> std::io::Result<ImageFile> {
    ImageFile::create(dir.join(INCOMING_FILE))
}

/// The durable snapshot: its metadata and where its image starts in the file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnapshotOnDisk {
    /// What the core knows of it.
    pub meta: SnapshotMeta,
    /// Offset of the image's first byte in `snapshot.bin`.
    image_offset: u64,
    crc: u32,
    header: Vec<u8>,
}

/// Reads the durable snapshot's metadata (not its image), if there is one.
pub fn load_meta(dir: &Path) -> Result<Option<SnapshotOnDisk>, String> {
    let mut file = match File::open(dir.join(SNAPSHOT_FILE)) {
        Ok(file) => file,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(error.to_string()),
    };
    let file_len = file.metadata().map_err(|error| error.to_string())?.len();
    let mut magic = [0u8; 8];
    let io = |error: std::io::Error| error.to_string();
    file.read_exact(&mut magic).map_err(|_| "not a raftkv snapshot file".to_owned())?;
    if &magic == FIRST_FORMAT_MAGIC {
        // [magic][crc u32][body length u64][header][image]
        let mut fixed = [0u8; 12];
        file.read_exact(&mut fixed).map_err(io)?;
        let crc = u32::from_le_bytes(fixed[..4].try_into().expect("4 bytes"));
        let body_len = u64::from_le_bytes(fixed[4..].try_into().expect("8 bytes"));
        if 20 + body_len != file_len || body_len < 24 {
            return Err("checksum or length mismatch (the file is damaged)".into());
        }
        let mut start = [0u8; 24];
        file.read_exact(&mut start).map_err(io)?;
        let voter_count = u64::from_le_bytes(start[16..].try_into().expect("8 bytes"));
        let header_len = 24 + 8 * voter_count;
        if header_len > body_len {
            return Err("truncated voter list".into());
        }
        let mut header = start.to_vec();
        header.resize(header_len as usize, 0);
        file.read_exact(&mut header[24..]).map_err(io)?;
        let (last_index, last_term, membership) = parse_header(&header, 1, false)?;
        let size_bytes = body_len - header_len;
        let meta = SnapshotMeta { last_index, last_term, membership, size_bytes };
        return Ok(Some(SnapshotOnDisk { meta, image_offset: 20 + header_len, crc, header: Vec::new() }));
    }
    if file_len < TRAILER_FIXED_BYTES {
        return Err("not a raftkv snapshot file".into());
    }
    let mut fixed = [0u8; TRAILER_FIXED_BYTES as usize];
    file.seek(SeekFrom::Start(file_len - TRAILER_FIXED_BYTES)).map_err(io)?;
    file.read_exact(&mut fixed).map_err(io)?;
    let with_contexts = &fixed[16..] == TRAILER_MAGIC;
    if !with_contexts && &fixed[16..] != NO_CONTEXTS_MAGIC {
        return Err("not a raftkv snapshot file (or its end is damaged)".into());
    }
    let crc = u32::from_le_bytes(fixed[..4].try_into().expect("4 bytes"));
    let header_len = u64::from(u32::from_le_bytes(fixed[4..8].try_into().expect("4 bytes")));
    let size_bytes = u64::from_le_bytes(fixed[8..16].try_into().expect("8 bytes"));
    if size_bytes + header_len + TRAILER_FIXED_BYTES != file_len {
        return Err("checksum or length mismatch (the file is damaged)".into());
    }
    let mut header = vec![0u8; header_len as usize];
    file.seek(SeekFrom::Start(size_bytes)).map_err(io)?;
    file.read_exact(&mut header).map_err(io)?;
    let (last_index, last_term, membership) = parse_header(&header, 3, with_contexts)?;
    let meta = SnapshotMeta { last_index, last_term, membership, size_bytes };
    Ok(Some(SnapshotOnDisk { meta, image_offset: 0, crc, header }))
}

impl SnapshotOnDisk {
    /// Reads the whole file once to check its checksum (at start, before the
    /// image is trusted).
    pub fn verify(&self, dir: &Path) -> Result<(), String> {
        let mut crc = crc32fast::Hasher::new();
        let first_format = self.header.is_empty();
        if first_format {
            // The first format checksums the header, then the image.
            let mut file = File::open(dir.join(SNAPSHOT_FILE)).map_err(|error| error.to_string())?;
            let mut header = vec![0u8; (self.image_offset - 20) as usize];
            file.seek(SeekFrom::Start(20)).map_err(|error| error.to_string())?;
            file.read_exact(&mut header).map_err(|error| error.to_string())?;
            crc.update(&header);
        }
        let mut image = self.open_image(dir).map_err(|error| error.to_string())?;
        let mut buffer = vec![0u8; 256 * 1024];
        loop {
            let read = image.read(&mut buffer).map_err(|error| error.to_string())?;
            if read == 0 {
                break;
            }
            crc.update(&buffer[..read]);
        }
        if !first_format {
            crc.update(&self.header);
        }
        if crc.finalize() != self.crc {
            return Err("checksum or length mismatch (the file is damaged)".into());
        }
        Ok(())
    }

    /// A reader of the image's bytes.
    pub fn open_image(&self, dir: &Path) -> std::io::Result<impl Read> {
        let mut file = File::open(dir.join(SNAPSHOT_FILE))?;
        file.seek(SeekFrom::Start(self.image_offset))?;
        Ok(BufReader::with_capacity(256 * 1024, file).take(self.meta.size_bytes))
    }
}

/// Reads `len` bytes at `offset` of the durable snapshot's image, if the
/// durable snapshot is the one at `index` (a leader sending a chunk).
pub fn read_chunk(dir: &Path, index: LogIndex, offset: u64, len: u64) -> Result<Option<Vec<u8>>, String> {
    let Some(on_disk) = load_meta(dir)? else {
        return Ok(None);
    };
    if on_disk.meta.last_index != index || offset + len > on_disk.meta.size_bytes {
        return Ok(None);
    }
    let mut file = File::open(dir.join(SNAPSHOT_FILE)).map_err(|error| error.to_string())?;
    file.seek(SeekFrom::Start(on_disk.image_offset + offset)).map_err(|error| error.to_string())?;
    let mut data = vec![0u8; len as usize];
    file.read_exact(&mut data).map_err(|error| error.to_string())?;
    Ok(Some(data))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(index: u64, size_bytes: u64) -> SnapshotMeta {
        let contexts = [(NodeId(1), br#"{"name":"a"}"#.to_vec()), (NodeId(4), Vec::new())];
        let membership = Membership::with_learners([NodeId(1), NodeId(3)], [NodeId(4)]).with_contexts(contexts.into());
        SnapshotMeta { last_index: LogIndex(index), last_term: Term(2), membership, size_bytes }
    }

    fn write_snapshot(dir: &Path, index: u64, image: &[u8]) {
        let mut file = ImageFile::create(staged_path(dir, LogIndex(index))).unwrap();
        file.write_all(image).unwrap();
        file.flush().unwrap();
        drop(file);
        commit_staged(dir, &meta(index, image.len() as u64)).unwrap();
    }

    #[test]
    fn a_staged_image_becomes_the_snapshot_and_reads_back_in_chunks() {
        let dir = tempfile::tempdir().unwrap();
        let image: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        write_snapshot(dir.path(), 7, &image);
        let on_disk = load_meta(dir.path()).unwrap().expect("a snapshot");
        assert_eq!(on_disk.meta, meta(7, image.len() as u64));
        on_disk.verify(dir.path()).unwrap();
        let mut read = Vec::new();
        on_disk.open_image(dir.path()).unwrap().read_to_end(&mut read).unwrap();
        assert_eq!(read, image);
        assert_eq!(read_chunk(dir.path(), LogIndex(7), 1000, 10).unwrap(), Some(image[1000..1010].to_vec()));
        assert_eq!(read_chunk(dir.path(), LogIndex(6), 0, 10).unwrap(), None, "another snapshot");
        assert_eq!(read_chunk(dir.path(), LogIndex(7), 99_995, 10).unwrap(), None, "past the end");
        assert!(staged_files(dir.path()).is_empty(), "the staged file became snapshot.bin");
    }

    #[test]
    fn a_flipped_byte_fails_the_checksum() {
        let dir = tempfile::tempdir().unwrap();
        write_snapshot(dir.path(), 3, b"hello snapshot");
        let path = dir.path().join(SNAPSHOT_FILE);
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[2] ^= 0x40;
        std::fs::write(&path, bytes).unwrap();
        let on_disk = load_meta(dir.path()).unwrap().expect("the trailer is intact");
        assert!(on_disk.verify(dir.path()).is_err());
    }

    #[test]
    fn a_file_of_the_first_format_still_reads() {
        let dir = tempfile::tempdir().unwrap();
        let mut meta = meta(9, 5);
        meta.membership = Membership::new(meta.membership.voters); // The first format knew voters only.
        let mut header = header_bytes(&meta);
        header.truncate(header.len() - 24); // Without the (empty) learner and outgoing lists and contexts.
        let mut crc = crc32fast::Hasher::new();
        crc.update(&header);
        crc.update(b"abcde");
        let mut bytes = FIRST_FORMAT_MAGIC.to_vec();
        bytes.extend_from_slice(&crc.finalize().to_le_bytes());
        bytes.extend_from_slice(&((header.len() + 5) as u64).to_le_bytes());
        bytes.extend_from_slice(&header);
        bytes.extend_from_slice(b"abcde");
        std::fs::write(dir.path().join(SNAPSHOT_FILE), bytes).unwrap();
        let on_disk = load_meta(dir.path()).unwrap().expect("a snapshot");
        assert_eq!(on_disk.meta, meta);
        on_disk.verify(dir.path()).unwrap();
        assert_eq!(read_chunk(dir.path(), LogIndex(9), 1, 3).unwrap(), Some(b"bcd".to_vec()));
    }

    #[test]
    fn a_file_of_the_format_before_contexts_still_reads() {
        let dir = tempfile::tempdir().unwrap();
        let mut meta = meta(5, 3);
        meta.membership.contexts.clear();
        let mut header = header_bytes(&meta);
        header.truncate(header.len() - 8); // Without the (empty) contexts.
        let mut crc = crc32fast::Hasher::new();
        crc.update(b"xyz");
        crc.update(&header);
        let mut bytes = b"xyz".to_vec();
        bytes.extend_from_slice(&header);
        bytes.extend_from_slice(&crc.finalize().to_le_bytes());
        bytes.extend_from_slice(&(header.len() as u32).to_le_bytes());
        bytes.extend_from_slice(&3u64.to_le_bytes());
        bytes.extend_from_slice(NO_CONTEXTS_MAGIC);
        std::fs::write(dir.path().join(SNAPSHOT_FILE), bytes).unwrap();
        let on_disk = load_meta(dir.path()).unwrap().expect("a snapshot");
        assert_eq!(on_disk.meta, meta);
        on_disk.verify(dir.path()).unwrap();
    }

    #[test]
    fn leftovers_are_removed_at_start() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(staged_path(dir.path(), LogIndex(4)), b"x").unwrap();
        std::fs::write(dir.path().join(INCOMING_FILE), b"y").unwrap();
        remove_leftovers(dir.path());
        assert!(std::fs::read_dir(dir.path()).unwrap().next().is_none());
    }
}
