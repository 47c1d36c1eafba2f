//! Length-prefixed message frames: each Raft message as a u32 little-endian
//! length followed by its `raft_sm::wire` bytes. Peer streams carry a sequence
//! of frames; the HTTP batch body is a magic byte followed by frames.
//!
//! [`FrameReader`] turns a byte stream back into batches of messages: every
//! frame that is complete in its buffer goes into one batch, so a burst of
//! appends reaches the driver as one input (one core step, one fsync).
//!
//! Frames are limited to the largest legal message
//! ([`crate::config::NodeConfig::frame_bytes_max`], a few MiB): a longer
//! length prefix breaks the stream before anything is allocated for it, so a
//! stream buffers at most one frame plus one read.

use raft_sm::Message;
use tokio::io::{AsyncRead, AsyncReadExt};

/// Largest frame accepted where no configuration tells better (tools, tests):
/// a snapshot chunk or a batch of entries is far below this.
pub const FRAME_BYTES_MAX: usize = 64 << 20;

/// Bytes asked of the socket per read when no larger frame is pending.
const READ_CHUNK_BYTES: usize = 64 << 10;

/// Appends `messages` to `out` as frames.
pub fn encode_frames(messages: &[Message], out: &mut Vec<u8>) {
    for message in messages {
        let bytes = raft_sm::wire::encode_message(message);
        let len = u32::try_from(bytes.len()).expect("message shorter than 4 GiB");
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&bytes);
    }
}

/// What [`decode_frames`] found at the front of a buffer.
#[derive(Debug, PartialEq)]
pub struct Decoded {
    /// The complete frames, decoded.
    pub messages: Vec<Message>,
    /// Bytes they took; the rest is an incomplete frame (or nothing).
    pub consumed: usize,
    /// Length of the incomplete frame that follows, if its header is complete.
    pub pending_frame_bytes: Option<usize>,
}

/// Decodes every complete frame at the front of `bytes`; a frame longer than
/// `frame_bytes_max` is an error.
pub fn decode_frames(bytes: &[u8], frame_bytes_max: usize) -> Result<Decoded, String> {
    let mut messages = Vec::new();
    let mut at = 0;
    let mut pending_frame_bytes = None;
    while let Some(header) = bytes.get(at..at + 4) {
        let len = u32::from_le_bytes(header.try_into().expect("4 bytes")) as usize;
        if len > frame_bytes_max {
            return Err(format!("frame of {len} bytes exceeds the limit of {frame_bytes_max}"));
        }
        let Some(body) = bytes.get(at + 4..at + 4 + len) else {
            pending_frame_bytes = Some(len);
            break;
        };
        messages.push(raft_sm::wire::decode_message(body).map_err(|error| error.to_string())?);
        at += 4 + len;
    }
    Ok(Decoded { messages, consumed: at, pending_frame_bytes })
}

/// Reads batches of messages from a stream of frames.
pub struct FrameReader<R> {
    io: R,
    buf: Vec<u8>,
    frame_bytes_max: usize,
}

impl<R: AsyncRead + Unpin> FrameReader<R> {
    /// A reader over `io` that refuses frames longer than `frame_bytes_max`.
    pub fn new(io: R, frame_bytes_max: usize) -> FrameReader<R> {
        FrameReader { io, buf: Vec::with_capacity(READ_CHUNK_BYTES), frame_bytes_max }
    }

    /// Bytes the reader holds (buffer capacity): at most one frame plus one read.
    pub fn buffered_capacity(&self) -> usize {
        self.buf.capacity()
    }

    /// The next batch: every complete frame buffered once at least one is.
    /// `Ok(None)` when the stream ended cleanly between frames.
    pub async fn next_batch(&mut self) -> std::io::Result<Option<Vec<Message>>> {
        let invalid = |problem: String| std::io::Error::new(std::io::ErrorKind::InvalidData, problem);
        loop {
            let decoded = decode_frames(&self.buf, self.frame_bytes_max).map_err(invalid)?;
            self.buf.drain(..decoded.consumed);
            if self.buf.is_empty() && self.buf.capacity() > 4 * READ_CHUNK_BYTES {
                // Give back what a large frame took.
                self.buf = Vec::with_capacity(READ_CHUNK_BYTES);
            }
            if !decoded.messages.is_empty() {
                return Ok(Some(decoded.messages));
            }
            // Room for the rest of the pending frame (or a chunk) in one read.
            let wanted = decoded.pending_frame_bytes.map_or(READ_CHUNK_BYTES, |len| len + 4 - self.buf.len());
            self.buf.reserve(wanted.max(READ_CHUNK_BYTES));
            if self.io.read_buf(&mut self.buf).await? == 0 {
                return if self.buf.is_empty() {
                    Ok(None)
                } else {
                    Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "stream ended inside a frame"))
                };
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use raft_sm::{Body, Entry, LogIndex, NodeId, Payload, Term};
    use tokio::io::AsyncWriteExt;

    fn heartbeat(commit: u64) -> Message {
        Message {
            from: NodeId(1),
            to: NodeId(2),
            term: Term(3),
            body: Body::AppendEntries(raft_sm::AppendEntries {
                prev_log_index: LogIndex(4),
                prev_log_term: Term(3),
                entries: vec![],
                leader_commit: LogIndex(commit),
                read_round: 0,
            }),
        }
    }

    fn append(values: usize, value_bytes: usize) -> Message {
        let entries = (0..values)
            .map(|i| Entry {
                term: Term(3),
                index: LogIndex(5 + i as u64),
                payload: Payload::Command(vec![i as u8; value_bytes]),
            })
            .collect();
        Message {
            body: Body::AppendEntries(raft_sm::AppendEntries {
                prev_log_index: LogIndex(4),
                prev_log_term: Term(3),
                entries,
                leader_commit: LogIndex(4),
                read_round: 0,
            }),
            ..heartbeat(4)
        }
    }

    #[test]
    fn frames_round_trip_and_an_incomplete_tail_is_left_for_later() {
        let messages = vec![heartbeat(1), append(3, 10), heartbeat(2)];
        let mut bytes = Vec::new();
        encode_frames(&messages, &mut bytes);
        let whole = decode_frames(&bytes, FRAME_BYTES_MAX).unwrap();
        assert_eq!(whole.messages, messages);
        assert_eq!(whole.consumed, bytes.len());
        assert_eq!(whole.pending_frame_bytes, None);

        let cut = decode_frames(&bytes[..bytes.len() - 1], FRAME_BYTES_MAX).unwrap();
        assert_eq!(cut.messages, messages[..2]);
        let last_frame_len = bytes.len() - cut.consumed - 4;
        assert_eq!(cut.pending_frame_bytes, Some(last_frame_len));
    }

    #[test]
    fn oversized_and_garbled_frames_are_refused() {
        let huge = ((FRAME_BYTES_MAX + 1) as u32).to_le_bytes();
        assert!(decode_frames(&huge, FRAME_BYTES_MAX).unwrap_err().contains("exceeds the limit"));
        let over = 1001u32.to_le_bytes();
        assert!(decode_frames(&over, 1000).unwrap_err().contains("limit of 1000"));
        let mut garbled = 3u32.to_le_bytes().to_vec();
        garbled.extend_from_slice(&[0xFF, 0xFF, 0xFF]);
        assert!(decode_frames(&garbled, FRAME_BYTES_MAX).is_err());
    }

    #[tokio::test]
    async fn a_reader_batches_what_arrived_and_waits_for_split_frames() {
        let (mut writer, reader) = tokio::io::duplex(1 << 20);
        let mut frames = FrameReader::new(reader, FRAME_BYTES_MAX);
        let first = vec![heartbeat(1), heartbeat(2)];
        let mut bytes = Vec::new();
        encode_frames(&first, &mut bytes);
        writer.write_all(&bytes).await.unwrap();
        assert_eq!(frames.next_batch().await.unwrap(), Some(first));

        // A large frame arriving in two pieces comes out whole, once.
        let big = vec![append(50, 4096)];
        bytes.clear();
        encode_frames(&big, &mut bytes);
        let (head, tail) = bytes.split_at(bytes.len() / 2);
        writer.write_all(head).await.unwrap();
        let pending = tokio::spawn(async move { (frames.next_batch().await.unwrap(), frames) });
        tokio::task::yield_now().await;
        writer.write_all(tail).await.unwrap();
        let (batch, mut frames) = pending.await.unwrap();
        assert_eq!(batch, Some(big));

        // A clean end between frames is the end; an end inside one is an error.
        writer.write_all(&7u32.to_le_bytes()).await.unwrap();
        drop(writer);
        let error = frames.next_batch().await.unwrap_err();
        assert_eq!(error.kind(), std::io::ErrorKind::UnexpectedEof);
    }

    #[tokio::test]
    async fn a_clean_end_of_stream_is_none() {
        let (writer, reader) = tokio::io::duplex(64);
        drop(writer);
        assert_eq!(FrameReader::new(reader, FRAME_BYTES_MAX).next_batch().await.unwrap(), None);
    }

    #[tokio::test]
    async fn an_oversize_length_prefix_breaks_the_stream_before_any_allocation() {
        let (mut writer, reader) = tokio::io::duplex(1 << 16);
        let mut frames = FrameReader::new(reader, 1 << 20);
        writer.write_all(&(64u32 << 20).to_le_bytes()).await.unwrap();
        writer.write_all(&[0u8; 1024]).await.unwrap();
        let error = frames.next_batch().await.unwrap_err();
        assert_eq!(error.kind(), std::io::ErrorKind::InvalidData);
        assert!(frames.buffered_capacity() < 1 << 20, "{}", frames.buffered_capacity());
    }
}
