//! The Raft RPC on `RAFT_PORT`. Peers send on `POST /raft/stream`, upgraded to
//! a long-lived stream of message frames ([`crate::frames`]); a task per stream
//! reads batches and queues them for the driver. The other endpoints that take
//! messages accept one message or a batch (the encoding of
//! [`crate::transport::encode`]), for tools and debugging; replies travel as
//! messages of their own, so a POST answers `204` once the messages are queued
//! for the driver. `GET /raft/status` shows the core's state.
//!
//! With a cluster token configured, every request must carry it in
//! `X-Raft-Token` (compared in constant time) or gets `401`. Messages from ids
//! the address book does not know (outside the configuration, and not a seed
//! from `PEERS` or the join member's list), or for another node, get `403`. A request naming
//! another cluster id (`X-Raftkv-Cluster`, see [`crate::identity`]) gets `403`.
//! With mutual TLS, the client certificate must be valid for the peer the
//! request claims to come from (`X-Raftkv-From`: its id or its configured
//! host), or `403`; message batches then need that header and may carry only
//! that peer's messages.
//!
//! A peer stream's frames are limited to the largest legal message
//! ([`crate::config::NodeConfig::frame_bytes_max`]); a longer one, or a stream
//! silent for the idle timeout, is dropped.

use super::types::ErrorCode;
use super::{role_name, ApiError, AppState};
use crate::config::node_id_of;
use crate::driver::Input;
use crate::frames::FrameReader;
use crate::tls::{cert_names_peer, PeerCertificate};
use crate::transport::{
    constant_time_eq, decode, CLIENT_URL_HEADER, CLUSTER_HEADER, FROM_HEADER, STREAM_PROTOCOL, TOKEN_HEADER,
};
use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, Extension, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Json, Router};
use raft_sm::{Message, NodeId};
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// The Raft routes.
pub fn router(state: AppState) -> Router {
    // A batch of a few of the largest legal messages.
    let body_bytes_max = state.directory.config.frame_bytes_max().saturating_mul(4);
    Router::new()
        .route("/raft/stream", post(stream))
        .route("/raft/message", post(messages))
        .route("/raft/requestvote", post(messages))
        .route("/raft/appendentries", post(messages))
        .route("/raft/installsnapshot", post(messages))
        .route("/raft/timeoutnow", post(messages))
        .route("/raft/status", get(status))
        .layer(DefaultBodyLimit::max(body_bytes_max))
        .route_layer(axum::middleware::from_fn_with_state(state.clone(), require_token))
        .with_state(state)
}

async fn require_token(State(state): State<AppState>, request: Request, next: Next) -> Response {
    use axum::response::IntoResponse;
    if let Some(expected) = &state.directory.config.cluster_token {
        let given = request.headers().get(TOKEN_HEADER).map(|v| v.as_bytes()).unwrap_or_default();
        if !constant_time_eq(given, expected.as_bytes()) {
            tracing::warn!(path = %request.uri().path(), "raft request with a missing or wrong cluster token rejected");
            return ApiError::new(StatusCode::UNAUTHORIZED, ErrorCode::Unauthorized, "missing or wrong X-Raft-Token")
                .into_response();
        }
    }
    let config = &state.directory.config;
    if config.mutual_tls() && request.extensions().get::<PeerCertificate>().is_none() {
        return ApiError::new(StatusCode::UNAUTHORIZED, ErrorCode::Unauthorized, "a client certificate is required")
            .into_response();
    }
    if let Some(cluster) = request.headers().get(CLUSTER_HEADER) {
        if cluster.as_bytes() != config.cluster_id.as_bytes() {
            let named = String::from_utf8_lossy(cluster.as_bytes()).into_owned();
            tracing::warn!(path = %request.uri().path(), cluster = %named, "raft request from another cluster rejected");
            return ApiError::new(
                StatusCode::FORBIDDEN,
                ErrorCode::WrongCluster,
                format!("this node belongs to cluster {}, not {named}", config.cluster_id),
            )
            .into_response();
        }
    }
    next.run(request).await
}

/// The host part of a `scheme://host:port` URL.
fn url_host(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    rest.rsplit_once(':').map_or(rest, |(host, _)| host)
}

/// With mutual TLS: whether the connection's certificate names peer `id`.
fn certificate_fits(state: &AppState, id: NodeId, cert: Option<&PeerCertificate>) -> bool {
    let config = &state.directory.config;
    if !config.mutual_tls() {
        return true;
    }
    let (Some(peer), Some(cert)) = (state.directory.book.get(id).filter(|_| id != config.id), cert) else {
        return false;
    };
    cert_names_peer(&cert.0, &[&peer.name, url_host(&peer.raft_url)])
}

fn wrong_certificate(state: &AppState, claimed: &str) -> ApiError {
    tracing::warn!(peer = %claimed, "raft request whose client certificate does not name the peer it claims rejected");
    ApiError::new(
        StatusCode::FORBIDDEN,
        ErrorCode::WrongCertificate,
        format!(
            "the client certificate is not valid for {claimed:?} (its id or configured host) in the configuration of {}",
            state.directory.config.name
        ),
    )
}

/// Refuses a message that is not from a known peer (a member, or a node the
/// address book was seeded with) or not for this node.
fn check_message(state: &AppState, message: &Message) -> Result<(), String> {
    let config = &state.directory.config;
    let known = message.from != config.id && state.directory.book.knows(message.from);
    if known && message.to == config.id {
        return Ok(());
    }
    Err(format!(
        "message from {} to {} rejected: the sender is not a peer of {} or the message is not for it",
        message.from, message.to, config.name
    ))
}

/// The peer a request comes from (by its `X-Raftkv-From` name), if it is one;
/// learns the client URL it announces.
fn sending_peer(state: &AppState, headers: &HeaderMap) -> Option<NodeId> {
    let config = &state.directory.config;
    let id = node_id_of(headers.get(FROM_HEADER)?.to_str().ok()?);
    if id == config.id || !state.directory.book.knows(id) {
        return None;
    }
    if let Some(url) = headers.get(CLIENT_URL_HEADER).and_then(|v| v.to_str().ok()) {
        if url.starts_with("http") {
            state.directory.learn(id, url);
        }
    }
    Some(id)
}

async fn messages(
    State(state): State<AppState>,
    cert: Option<Extension<PeerCertificate>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<StatusCode, ApiError> {
    let messages =
        decode(&body).map_err(|message| ApiError::new(StatusCode::BAD_REQUEST, ErrorCode::BadMessage, message))?;
    for message in &messages {
        check_message(&state, message)
            .map_err(|problem| ApiError::new(StatusCode::FORBIDDEN, ErrorCode::UnknownNode, problem))?;
    }
    let sender = sending_peer(&state, &headers);
    if state.directory.config.mutual_tls() {
        let claimed = headers.get(FROM_HEADER).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
        let Some(sender) = sender.filter(|&id| certificate_fits(&state, id, cert.as_deref())) else {
            return Err(wrong_certificate(&state, &claimed));
        };
        if messages.iter().any(|message| message.from != sender) {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                ErrorCode::UnknownNode,
                format!("with mutual TLS a batch carries only the messages of {claimed:?}"),
            ));
        }
    }
    if state.inputs.send(Input::Messages(messages)).await.is_err() {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::ShuttingDown,
            "the node is shutting down",
        ));
    }
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /raft/stream` with `Upgrade: raftkv-stream/1`: answers `101` and reads
/// the peer's frames until it closes the stream.
async fn stream(State(state): State<AppState>, mut request: Request) -> Result<axum::response::Response, ApiError> {
    let upgrade = request.headers().get(header::UPGRADE).and_then(|v| v.to_str().ok());
    if upgrade != Some(STREAM_PROTOCOL) {
        return Err(ApiError::new(
            StatusCode::UPGRADE_REQUIRED,
            ErrorCode::UpgradeRequired,
            format!("POST /raft/stream needs `Connection: upgrade` and `Upgrade: {STREAM_PROTOCOL}`"),
        ));
    }
    let Some(peer) = sending_peer(&state, request.headers()) else {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            ErrorCode::UnknownNode,
            format!("a stream needs an {FROM_HEADER} header naming a peer of {}", state.directory.config.name),
        ));
    };
    if !certificate_fits(&state, peer, request.extensions().get::<PeerCertificate>()) {
        let claimed = request.headers().get(FROM_HEADER).and_then(|v| v.to_str().ok()).unwrap_or_default();
        return Err(wrong_certificate(&state, claimed));
    }
    let on_upgrade = hyper::upgrade::on(&mut request);
    tokio::spawn(async move {
        match on_upgrade.await {
            Ok(upgraded) => read_stream(state, peer, hyper_util::rt::TokioIo::new(upgraded)).await,
            Err(error) => tracing::warn!(%error, "peer stream upgrade failed"),
        }
    });
    Ok(axum::response::Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header(header::CONNECTION, "upgrade")
        .header(header::UPGRADE, STREAM_PROTOCOL)
        .body(Body::empty())
        .expect("a valid response"))
}

/// Feeds a peer stream's batches to the driver until the stream ends, breaks,
/// or carries a message that is not the peer's.
async fn read_stream<R: tokio::io::AsyncRead + Unpin>(state: AppState, peer: NodeId, io: R) {
    let name = state.directory.name(peer);
    let config = &state.directory.config;
    let idle = std::time::Duration::from_millis(config.limits.idle_timeout_ms);
    let mut frames = FrameReader::new(io, config.frame_bytes_max());
    loop {
        let messages = match tokio::time::timeout(idle, frames.next_batch()).await {
            Ok(Ok(Some(messages))) => messages,
            Ok(Ok(None)) => return tracing::debug!(peer = %name, "peer stream closed"),
            Ok(Err(error)) => return tracing::warn!(peer = %name, %error, "peer stream broken; dropping it"),
            Err(_) => return tracing::debug!(peer = %name, "peer stream idle past the idle timeout; dropping it"),
        };
        for message in &messages {
            if message.from != peer {
                return tracing::warn!(peer = %name, from = %message.from, "message from another node on a peer's stream; dropping the stream");
            }
            if let Err(problem) = check_message(&state, message) {
                return tracing::warn!(peer = %name, "{problem}; dropping the stream");
            }
        }
        if state.inputs.send(Input::Messages(messages)).await.is_err() {
            return; // Shutting down.
        }
    }
}

async fn status(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let status = state.status().await?;
    let config = &state.directory.config;
    let (leader_id, leader_addr) = state.leader_hint(status.leader);
    let members = state.directory.book.members();
    let peers: BTreeMap<&str, &str> = members
        .iter()
        .filter(|(&id, _)| id != config.id)
        .map(|(_, address)| (address.name.as_str(), address.raft_url.as_str()))
        .collect();
    // By name (ids are hashes of the names: their order means nothing to a reader).
    let names = |ids: &[NodeId]| {
        let mut names: Vec<String> = ids.iter().map(|&id| state.directory.name(id)).collect();
        names.sort();
        names
    };
    let mut body = json!({
        "node_id": config.name,
        "state": role_name(status.role),
        "term": status.term.0,
        "commitIndex": status.commit_index.0,
        "lastApplied": status.applied_index.0,
        "logLen": status.log_len,
        "lastLogIndex": status.last_log.0 .0,
        "lastLogTerm": status.last_log.1 .0,
        "logBaseIndex": status.log_base.0 .0,
        "logBaseTerm": status.log_base.1 .0,
        "leaderId": leader_id,
        "leaderAddr": leader_addr,
        "peers": peers,
        "keys": status.keys,
        "voters": names(&status.membership.voters),
        "learners": names(&status.membership.learners),
        "outgoing": names(&status.membership.outgoing),
        "changeInProgress": status.change_in_progress,
    });
    if status.role == raft_sm::Role::Leader {
        let next: BTreeMap<&str, u64> = status.progress.iter().map(|p| (p.id.as_str(), p.next_index)).collect();
        let matched: BTreeMap<&str, u64> = status.progress.iter().map(|p| (p.id.as_str(), p.match_index)).collect();
        body["nextIndex"] = json!(next);
        body["matchIndex"] = json!(matched);
    }
    Ok(Json(body))
}
