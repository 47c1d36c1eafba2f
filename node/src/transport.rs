//! Peer transport: one sender task per peer, so a slow or dead peer never blocks
//! the driver or the other peers.
//!
//! The driver hands each outgoing message to its peer's bounded queue and moves on
//! (a full queue drops the message: Raft retries on the next heartbeat). The
//! sender task takes everything queued, posts it as one batch to the peer's
//! `POST /raft/message` over a kept-alive HTTP/1.1 connection, and repeats. One
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

/// The wire encoding of a batch of messages (JSON today; the one place to change it).
pub fn encode(messages: &[Message]) -> Vec<u8> {
    serde_json::to_vec(messages).expect("messages serialize")
}

/// Decodes [`encode`]'s output; a single message object is accepted too.
pub fn decode(bytes: &[u8]) -> Result<Vec<Message>, String> {
    #[derive(serde::Deserialize)]
    #[serde(untagged)]
    enum Wire {
        Many(Vec<Message>),
        One(Message),
    }
    match serde_json::from_slice::<Wire>(bytes) {
        Ok(Wire::Many(messages)) => Ok(messages),
        Ok(Wire::One(message)) => Ok(vec![message]),
        Err(error) => Err(format!("not a raft message batch: {error}")),
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
            while batch.len() < BATCH_MESSAGES_MAX {
                match rx.try_recv() {
                    Ok(message) => batch.push(message),
                    Err(_) => break,
                }
            }
            let mut request = self
                .client
                .post(&self.url)
                .header(reqwest::header::CONTENT_TYPE, "application/json")
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
