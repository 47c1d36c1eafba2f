//! Peer transport: one sender task per peer, so a slow or dead peer never blocks
//! the driver or the other peers.
//!
//! The driver hands each outgoing message to its peer's bounded queue and moves on
//! (a full queue drops the message: Raft retries on the next heartbeat). The
//! sender task keeps one long-lived stream to its peer: a `POST /raft/stream`
//! upgraded to a raw byte stream (so it passes the same token check as every
//! Raft request), on which messages travel as length-prefixed frames
//! ([`crate::frames`]). The sender takes everything queued, writes it in one
//! go and repeats without waiting for any answer: appends are pipelined, TCP
//! keeps them in order and supplies the back-pressure. Replies are messages of
//! their own, on the stream the other node keeps to us. A write error, a write
//! that stalls past the RPC timeout, or the peer closing the stream drops the
//! connection; the next message reconnects. `POST /raft/message` still accepts
//! batches ([`encode`]) for tools and debugging.
//!
//! **Who the peers are** follows the configuration ([`crate::address_book`]):
//! a sender task starts on the first message to a node the address book can
//! dial (a member added at runtime included), and stops when the node leaves
//! the configuration ([`Transport::retain`]), as the core decides: when the
//! configuration entry is appended, not when it commits.

use crate::address_book::AddressBook;
use crate::config::{NodeConfig, PeerConfig};
use crate::frames::{decode_frames, encode_frames};
use crate::metrics::Metrics;
use raft_sm::{Message, NodeId};
use reqwest::header::{CONNECTION, UPGRADE};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

/// Header carrying the cluster token.
pub const TOKEN_HEADER: &str = "x-raft-token";
/// Header carrying the sender's name.
pub const FROM_HEADER: &str = "x-raftkv-from";
/// Header carrying the sender's cluster id ([`crate::identity`]).
pub const CLUSTER_HEADER: &str = "x-raftkv-cluster";
/// Header carrying the sender's client URL (learned for leader hints).
pub const CLIENT_URL_HEADER: &str = "x-raftkv-client-url";
/// The `Upgrade` protocol of a peer stream.
pub const STREAM_PROTOCOL: &str = "raftkv-stream/1";

/// Messages queued per peer before new ones are dropped.
const QUEUE_MESSAGES_MAX: usize = 4096;
/// Messages per batch.
const BATCH_MESSAGES_MAX: usize = 256;
/// Approximate payload bytes per batch (at least one message is always sent).
const BATCH_BYTES_MAX: usize = 16 << 20;

/// First byte of a binary batch (JSON starts with `{` or `[`).
const BATCH_MAGIC: u8 = 0xB7;

/// The wire encoding of a batch of messages: a magic byte, then each message as
/// a u32 little-endian length and `raft_sm::wire` bytes. The one place to change it.
pub fn encode(messages: &[Message]) -> Vec<u8> {
    let mut out = Vec::with_capacity(1 + messages.len() * 64);
    out.push(BATCH_MAGIC);
    encode_frames(messages, &mut out);
    out
}

/// Decodes [`encode`]'s output. JSON (one message or an array of them, as serde
/// writes `raft_sm::Message`) is accepted too, for debugging with curl.
pub fn decode(bytes: &[u8]) -> Result<Vec<Message>, String> {
    match bytes.first() {
        Some(&BATCH_MAGIC) => {
            let decoded = decode_frames(&bytes[1..], crate::frames::FRAME_BYTES_MAX)?;
            if decoded.consumed != bytes.len() - 1 {
                return Err("truncated message".into());
            }
            Ok(decoded.messages)
        }
        _ => {
            #[derive(serde::Deserialize)]
            #[serde(untagged)]
            enum Json {
                Many(Vec<Message>),
                One(Message),
            }
            match serde_json::from_slice::<Json>(bytes) {
                Ok(Json::Many(messages)) => Ok(messages),
                Ok(Json::One(message)) => Ok(vec![message]),
                Err(error) => Err(format!("not a raft message batch: {error}")),
            }
        }
    }
}

/// Compares two secrets in time independent of where they differ.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The senders of all peers.
pub struct Transport {
    /// Per peer: the Raft URL its sender dials, and its queue.
    queues: HashMap<NodeId, (String, mpsc::Sender<Message>)>,
    metrics: Arc<Metrics>,
    book: Arc<AddressBook>,
    /// What every sender task shares.
    template: SenderTemplate,
}

/// The parts of a [`PeerSender`] that are the same for every peer.
#[derive(Clone)]
struct SenderTemplate {
    client: reqwest::Client,
    token: Option<String>,
    from: String,
    cluster_id: String,
    client_url: String,
    rpc_timeout: Duration,
}

impl Transport {
    /// Builds the peer HTTP client; senders start on demand. Fails only on
    /// unusable TLS files.
    pub fn start(config: &NodeConfig, metrics: Arc<Metrics>, book: Arc<AddressBook>) -> Result<Transport, String> {
        // No overall request timeout: it would also bound the upgraded stream's life.
        // The handshake and every write are bounded by `rpc_timeout` instead.
        let mut builder = reqwest::Client::builder()
            .connect_timeout(Duration::from_millis(config.rpc_timeout_ms.min(1_000)))
            .tcp_nodelay(true)
            .http1_only();
        if let Some(files) = &config.tls {
            builder = crate::tls::peer_client(builder, files)?;
        }
        let client = builder.build().map_err(|error| format!("cannot build the peer HTTP client: {error}"))?;
        let template = SenderTemplate {
            client,
            token: config.cluster_token.clone(),
            from: config.name.clone(),
            cluster_id: config.cluster_id.clone(),
            client_url: config.client_url.clone(),
            rpc_timeout: Duration::from_millis(config.rpc_timeout_ms),
        };
        Ok(Transport { queues: HashMap::new(), metrics, book, template })
    }

    /// Queues a message for its peer (starting its sender on the first one);
    /// drops it if the queue is full or the peer cannot be dialed.
    pub fn send(&mut self, message: Message) {
        let (_, queue) = match self.queues.get(&message.to) {
            Some(entry) => entry,
            None => {
                let Some(address) = self.book.get(message.to) else {
                    tracing::warn!(to = %message.to, "message to a node without a known address dropped");
                    self.metrics.messages_dropped.inc();
                    return;
                };
                let queue = self.spawn_sender(address.to_peer());
                self.queues.entry(message.to).or_insert((address.raft_url, queue))
            }
        };
        if queue.try_send(message).is_err() {
            self.metrics.messages_dropped.inc();
        }
    }

    /// Stops the senders of nodes outside `members` (and of members whose
    /// address changed, so the next message dials the new one).
    pub fn retain(&mut self, members: &std::collections::BTreeMap<NodeId, crate::address_book::MemberAddress>) {
        // A sender task ends when its queue's sender is dropped.
        self.queues.retain(|id, (url, _)| members.get(id).is_some_and(|address| &address.raft_url == url));
    }

    fn spawn_sender(&self, peer: PeerConfig) -> mpsc::Sender<Message> {
        let (tx, rx) = mpsc::channel(QUEUE_MESSAGES_MAX);
        tracing::info!(peer = %peer.name, url = %peer.raft_url, "peer sender started");
        let sender = PeerSender {
            url: format!("{}/raft/stream", peer.raft_url),
            peer,
            shared: self.template.clone(),
            metrics: self.metrics.clone(),
        };
        tokio::spawn(sender.run(rx));
        tx
    }
}

fn payload_bytes(message: &Message) -> usize {
    match &message.body {
        raft_sm::Body::AppendEntries(raft_sm::AppendEntries { entries, .. }) => {
            entries.iter().map(raft_sm::Entry::size_bytes).sum()
        }
        raft_sm::Body::InstallSnapshot(chunk) => chunk.data.len(),
        _ => 64,
    }
}

struct PeerSender {
    peer: PeerConfig,
    url: String,
    shared: SenderTemplate,
    metrics: Arc<Metrics>,
}

/// The stream to a peer: an upgraded HTTP/1.1 connection.
type PeerStream = reqwest::Upgraded;

impl PeerSender {
    async fn run(self, mut rx: mpsc::Receiver<Message>) {
        let mut stream: Option<PeerStream> = None;
        let mut reachable = true;
        let mut batch = Vec::with_capacity(BATCH_MESSAGES_MAX);
        let mut bytes = Vec::new();
        loop {
            let Some(first) = self.next_message(&mut rx, &mut stream).await else {
                return; // The driver is gone.
            };
            if stream.is_none() {
                match self.connect().await {
                    Ok(connected) => {
                        tracing::debug!(peer = %self.peer.name, "stream to peer open");
                        stream = Some(connected);
                    }
                    Err(error) => {
                        if reachable {
                            reachable = false;
                            tracing::warn!(peer = %self.peer.name, url = %self.url, %error, "peer unreachable; messages to it are dropped until it answers");
                        }
                        // Do not spin on a dead peer: drop what piled up meanwhile and pause briefly.
                        self.metrics.messages_dropped.inc();
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        while rx.try_recv().is_ok() {
                            self.metrics.messages_dropped.inc();
                        }
                        continue;
                    }
                }
            }
            batch.clear();
            let mut batch_bytes = payload_bytes(&first);
            batch.push(first);
            while batch.len() < BATCH_MESSAGES_MAX && batch_bytes < BATCH_BYTES_MAX {
                match rx.try_recv() {
                    Ok(message) => {
                        batch_bytes += payload_bytes(&message);
                        batch.push(message);
                    }
                    Err(_) => break,
                }
            }
            bytes.clear();
            encode_frames(&batch, &mut bytes);
            let connection = stream.as_mut().expect("connected above");
            let written = tokio::time::timeout(self.shared.rpc_timeout, async {
                connection.write_all(&bytes).await?;
                connection.flush().await
            })
            .await;
            match written {
                Ok(Ok(())) => {
                    self.metrics.messages_sent.add(batch.len() as u64);
                    if !reachable {
                        reachable = true;
                        tracing::info!(peer = %self.peer.name, "peer reachable again");
                    }
                }
                Ok(Err(error)) => {
                    tracing::debug!(peer = %self.peer.name, %error, "stream to peer broken; reconnecting");
                    self.metrics.messages_dropped.add(batch.len() as u64);
                    stream = None;
                }
                Err(_) => {
                    tracing::warn!(peer = %self.peer.name, "stream to peer stalled past the RPC timeout; reconnecting");
                    self.metrics.messages_dropped.add(batch.len() as u64);
                    stream = None;
                }
            }
        }
    }

    /// The next queued message. While idle, also watches the stream: the peer
    /// never writes on it, so anything readable means it closed (it restarted or
    /// stopped), and the connection is dropped at once rather than on the next
    /// failed write, which would lose that write's messages.
    async fn next_message(&self, rx: &mut mpsc::Receiver<Message>, stream: &mut Option<PeerStream>) -> Option<Message> {
        loop {
            let Some(connection) = stream.as_mut() else {
                return rx.recv().await;
            };
            let mut probe = [0u8; 1];
            tokio::select! {
                message = rx.recv() => return message,
                _ = connection.read(&mut probe) => {
                    tracing::debug!(peer = %self.peer.name, "peer closed the stream");
                    *stream = None;
                }
            }
        }
    }

    /// Opens the stream: `POST /raft/stream` with `Upgrade`, expecting `101`.
    async fn connect(&self) -> Result<PeerStream, String> {
        let mut request = self
            .shared
            .client
            .post(&self.url)
            .header(CONNECTION, "upgrade")
            .header(UPGRADE, STREAM_PROTOCOL)
            .header(FROM_HEADER, &self.shared.from)
            .header(CLUSTER_HEADER, &self.shared.cluster_id)
            .header(CLIENT_URL_HEADER, &self.shared.client_url);
        if let Some(token) = &self.shared.token {
            request = request.header(TOKEN_HEADER, token);
        }
        let handshake = async {
            let response = request.send().await.map_err(|error| error.to_string())?;
            if response.status() != reqwest::StatusCode::SWITCHING_PROTOCOLS {
                let status = response.status();
                let body = response.text().await.unwrap_or_default();
                return Err(format!("HTTP {status} instead of a stream: {body}"));
            }
            response.upgrade().await.map_err(|error| error.to_string())
        };
        tokio::time::timeout(self.shared.rpc_timeout, handshake).await.map_err(|_| "handshake timed out".to_owned())?
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use raft_sm::{Body, LogIndex, Term};

    #[test]
    fn batches_round_trip_and_single_messages_are_accepted() {
        let message = Message {
            from: NodeId(1),
            to: NodeId(2),
            term: Term(3),
            body: Body::ReadIndexRequest(raft_sm::ReadIndexRequest { read_id: 9 }),
        };
        let other = Message {
            body: Body::ReadIndexResponse(raft_sm::ReadIndexResponse { read_id: 9, read_index: Some(LogIndex(4)) }),
            ..message.clone()
        };
        let batch = vec![message.clone(), other];
        assert_eq!(decode(&encode(&batch)).unwrap(), batch);
        let mut truncated = encode(&batch);
        truncated.pop();
        assert!(decode(&truncated).is_err());
        let single = serde_json::to_vec(&message).unwrap();
        assert_eq!(decode(&single).unwrap(), vec![message]);
        assert!(decode(b"{nope").is_err());
    }

    #[test]
    fn token_comparison() {
        assert!(constant_time_eq(b"secret", b"secret"));
        assert!(!constant_time_eq(b"secret", b"secreT"));
        assert!(!constant_time_eq(b"secret", b"secret2"));
    }
}
