//! Joining an existing cluster (`--join <member URL>`, env `RAFT_JOIN`).
//!
//! A node started with an empty data directory and `--join` bootstraps
//! nothing: its core has no voters, so it never campaigns; it waits until the
//! leader adds it (`raftkv member add`) and sends it the log. To answer that
//! leader it must be able to dial it before any configuration reached it, so
//! at start it asks the member it was pointed at for the member list
//! (`GET /cluster/members`, following the leader hint, authenticated with the
//! cluster token or its TLS certificate) and seeds its address book with it;
//! the cluster id it records comes from the same answer. The stored
//! configuration replaces both as soon as the first one arrives.

use crate::api::members::MembersBody;
use crate::api::types::ErrorBody;
use crate::config::NodeConfig;
use std::time::Duration;

/// Pause between attempts while the member list cannot be had.
const RETRY_PAUSE_MS: u64 = 500;
/// Leader hints followed in one attempt.
const REDIRECTS_MAX: usize = 8;

/// Asks `url` (any member's client URL) for the cluster's member list; retries
/// until it gets one, logging why not. Fails at once only on unusable TLS files
/// or an answer that retrying cannot change (a wrong token: 401).
pub async fn fetch_members(config: &NodeConfig, url: &str) -> Result<MembersBody, String> {
    let mut builder = reqwest::Client::builder()
        .connect_timeout(Duration::from_millis(config.rpc_timeout_ms.min(1_000)))
        .timeout(Duration::from_millis(config.request_timeout_ms.max(config.rpc_timeout_ms)));
    if let Some(files) = &config.tls {
        builder = crate::tls::peer_client(builder, files)?;
    }
    let client = builder.build().map_err(|error| format!("cannot build the join HTTP client: {error}"))?;
    let mut warned = false;
    loop {
        match fetch_once(&client, config, url).await {
            Ok(members) => return Ok(members),
            Err(Fatal(problem)) => return Err(problem),
            Err(Retry(problem)) => {
                if !warned {
                    tracing::warn!(join = %url, "cannot get the member list yet ({problem}); retrying");
                    warned = true;
                } else {
                    tracing::debug!(join = %url, "member list: {problem}");
                }
                tokio::time::sleep(Duration::from_millis(RETRY_PAUSE_MS)).await;
            }
        }
    }
}

enum Failure {
    Fatal(String),
    Retry(String),
}
use Failure::{Fatal, Retry};

async fn fetch_once(client: &reqwest::Client, config: &NodeConfig, url: &str) -> Result<MembersBody, Failure> {
    let mut target = url.trim_end_matches('/').to_owned();
    for _ in 0..REDIRECTS_MAX {
        let mut request = client.get(format!("{target}/cluster/members"));
        if let Some(token) = &config.cluster_token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.map_err(|error| Retry(format!("{target}: {error}")))?;
        let status = response.status();
        let bytes = response.bytes().await.map_err(|error| Retry(format!("{target}: {error}")))?;
        if status.is_success() {
            return serde_json::from_slice(&bytes).map_err(|error| {
                Fatal(format!("{target} answered an unexpected member list ({error}); is it a raftkv node?"))
            });
        }
        let body: Option<ErrorBody> = serde_json::from_slice(&bytes).ok();
        let message = body.as_ref().map_or_else(|| String::from_utf8_lossy(&bytes).into_owned(), |b| b.message.clone());
        match (status.as_u16(), body.as_ref().and_then(ErrorBody::leader_url)) {
            (409 | 503, Some(leader)) if leader.trim_end_matches('/') != target => {
                target = leader.trim_end_matches('/').to_owned();
            }
            (401 | 403, _) => {
                return Err(Fatal(format!(
                    "{target} refused the member list ({status}: {message}); give this node the cluster's RAFT_CLUSTER_TOKEN (or a certificate of its CA)"
                )))
            }
            _ => return Err(Retry(format!("{target} answered {status}: {message}"))),
        }
    }
    Err(Retry("the leader hints kept changing".into()))
}
