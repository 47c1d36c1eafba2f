//! Peer transport: one sender task per peer, so a slow or dead peer never blocks
//! the driver or the other peers.
//!
//! The driver hands each outgoing message to its peer's bounded queue and moves on
//! (a full queue drops the message: Raft retries on the next heartbeat). The
//! sender task takes everything queued, posts it as one batch to the peer's
//! `POST /raft/message` (binary, see [`encode`]) over a kept-alive HTTP/1.1 connection, and repeats. One
//! batch is in flight per peer at a time, so messages arrive in order, and all
//! appends queued meanwhile travel together in the next batch (pipelining by
//! batching). Replies are messages of their own, sent back the same way.

use crate::config::{NodeConfig, PeerConfig};
use crate::metrics::Metrics;
use raft_sm::{Message, NodeId};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// Header carrying the cluster token.
pub const TOKEN_HEADER: &str = "x-raft-token";
/// Header carrying the sender's name.
pub const FROM_HEADER: &str = "x-raftkv-from";
/// Header carrying the sender's client URL (learned for leader hints).
pub const CLIENT_URL_HEADER: &str = "x-raftkv-client-url";

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
    for message in messages {
        let bytes = raft_sm::wire::encode_message(message);
        let len = u32::try_from(bytes.len()).expect("message shorter than 4 GiB");
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&bytes);
    }
    out
}

/// Decodes [`encode`]'s output. JSON (one message or an array of them, as serde
/// writes `raft_sm::Message`) is accepted too, for debugging with curl.
pub fn decode(bytes: &[u8]) -> Result<Vec<Message>, String> {
    match bytes.first() {
        Some(&BATCH_MAGIC) => {
            let mut messages = Vec::new();
            let mut at = 1;
            while at < bytes.len() {
                let len = bytes
                    .get(at..at + 4)
                    .map(|b| u32::from_le_bytes(b.try_into().expect("4 bytes")) as usize)
                    .ok_or("truncated message length")?;
                let body = bytes.get(at + 4..at + 4 + len).ok_or("truncated message")?;
                messages.push(raft_sm::wire::decode_message(body).map_err(|e| e.to_string())?);
                at += 4 + len;
            }
            Ok(messages)
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
    queues: HashMap<NodeId, mpsc::Sender<Message>>,
    metrics: Arc<Metrics>,
}

impl Transport {
    /// Starts one sender task per peer.
    pub fn start(config: &NodeConfig, metrics: Arc<Metrics>) -> Transport {
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_millis(config.rpc_timeout_ms.min(1_000)))
            .timeout(Duration::from_millis(config.rpc_timeout_ms))
            .pool_idle_timeout(Duration::from_secs(90))
            .tcp_nodelay(true)
            .build()
            .expect("build the HTTP client");
        let mut queues = HashMap::new();
        for peer in &config.peers {
            let (tx, rx) = mpsc::channel(QUEUE_MESSAGES_MAX);
            queues.insert(peer.id, tx);
            let sender = PeerSender {
                peer: peer.clone(),
                url: format!("{}/raft/message", peer.raft_url),
                client: client.clone(),
                token: config.cluster_token.clone(),
                from: config.name.clone(),
                client_url: config.client_url.clone(),
                metrics: metrics.clone(),
            };
            tokio::spawn(sender.run(rx));
        }
        Transport { queues, metrics }
    }

    /// Queues a message for its peer; drops it if the queue is full.
    pub fn send(&self, message: Message) {
        let Some(queue) = self.queues.get(&message.to) else {
            tracing::warn!(to = %message.to, "message to an unknown node dropped");
            return;
        };
        if queue.try_send(message).is_err() {
            self.metrics.messages_dropped.inc();
        }
    }
}

fn payload_bytes(message: &Message) -> usize {
    match &message.body {
        raft_sm::Body::AppendEntries { entries, .. } => entries.iter().map(raft_sm::Entry::size_bytes).sum(),
        raft_sm::Body::InstallSnapshot { data, .. } => data.len(),
        _ => 64,
    }
}

struct PeerSender {
    peer: PeerConfig,
    url: String,
    client: reqwest::Client,
    token: Option<String>,
    from: String,
    client_url: String,
    metrics: Arc<Metrics>,
}

impl PeerSender {
    async fn run(self, mut rx: mpsc::Receiver<Message>) {
        let mut reachable = true;
        let mut batch = Vec::with_capacity(BATCH_MESSAGES_MAX);
        while let Some(first) = rx.recv().await {
            batch.clear();
            batch.push(first);
            let mut bytes = payload_bytes(&batch[0]);
            while batch.len() < BATCH_MESSAGES_MAX && bytes < BATCH_BYTES_MAX {
                match rx.try_recv() {
                    Ok(message) => {
                        bytes += payload_bytes(&message);
                        batch.push(message);
                    }
                    Err(_) => break,
                }
            }
            let mut request = self
                .client
                .post(&self.url)
                .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
                .header(FROM_HEADER, &self.from)
                .header(CLIENT_URL_HEADER, &self.client_url)
                .body(encode(&batch));
            if let Some(token) = &self.token {
                request = request.header(TOKEN_HEADER, token);
            }
            let outcome = match request.send().await {
                Ok(response) if response.status().is_success() => Ok(()),
                Ok(response) => Err(format!("HTTP {}", response.status())),
                Err(error) => Err(error.to_string()),
            };
            match outcome {
                Ok(()) => {
                    for _ in 0..batch.len() {
                        self.metrics.messages_sent.inc();
                    }
                    if !reachable {
                        reachable = true;
                        tracing::info!(peer = %self.peer.name, "peer reachable again");
                    }
                }
                Err(error) => {
                    if reachable {
                        reachable = false;
                        tracing::warn!(peer = %self.peer.name, url = %self.url, %error, "peer unreachable; messages to it are dropped until it answers");
                    }
                    // Do not spin on a dead peer: drop what piled up meanwhile and pause briefly.
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    while rx.try_recv().is_ok() {
                        self.metrics.messages_dropped.inc();
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use raft_sm::{Body, LogIndex, Term};

    #[test]
    fn batches_round_trip_and_single_messages_are_accepted() {
        let message =
            Message { from: NodeId(1), to: NodeId(2), term: Term(3), body: Body::ReadIndexRequest { read_id: 9 } };
        let other =
            Message { body: Body::ReadIndexResponse { read_id: 9, read_index: Some(LogIndex(4)) }, ..message.clone() };
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
