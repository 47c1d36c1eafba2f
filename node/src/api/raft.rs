//! The Raft RPC on `RAFT_PORT`. Every endpoint that takes messages accepts one
//! message or a batch (the encoding of [`crate::transport::encode`]); replies
//! travel as messages of their own, so a POST answers `204` once the messages are
//! queued for the driver. `GET /raft/status` shows the core's state.
//!
//! With a cluster token configured, every request must carry it in
//! `X-Raft-Token` (compared in constant time) or gets `401`. Messages from ids
//! outside the configuration, or for another node, get `403`.

use super::{role_name, ApiError, AppState};
use crate::config::node_id_of;
use crate::driver::Input;
use crate::transport::{constant_time_eq, decode, CLIENT_URL_HEADER, FROM_HEADER, TOKEN_HEADER};
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// Largest batch body accepted.
const BODY_BYTES_MAX: usize = 256 << 20;

/// The Raft routes.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/raft/message", post(messages))
        .route("/raft/requestvote", post(messages))
        .route("/raft/appendentries", post(messages))
        .route("/raft/installsnapshot", post(messages))
        .route("/raft/timeoutnow", post(messages))
        .route("/raft/status", get(status))
        .layer(DefaultBodyLimit::max(BODY_BYTES_MAX))
        .route_layer(axum::middleware::from_fn_with_state(state.clone(), require_token))
        .with_state(state)
}

async fn require_token(State(state): State<AppState>, request: Request, next: Next) -> Response {
    use axum::response::IntoResponse;
    if let Some(expected) = &state.directory.config.cluster_token {
        let given = request.headers().get(TOKEN_HEADER).map(|v| v.as_bytes()).unwrap_or_default();
        if !constant_time_eq(given, expected.as_bytes()) {
            tracing::warn!(path = %request.uri().path(), "raft request with a missing or wrong cluster token rejected");
            return ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", "missing or wrong X-Raft-Token")
                .into_response();
        }
    }
    next.run(request).await
}

async fn messages(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Result<StatusCode, ApiError> {
    let messages = decode(&body).map_err(|message| ApiError::new(StatusCode::BAD_REQUEST, "bad_message", message))?;
    let config = &state.directory.config;
    for message in &messages {
        let known = config.peers.iter().any(|peer| peer.id == message.from);
        if !known || message.to != config.id {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "unknown_node",
                format!(
                    "message from {} to {} rejected: the sender is not a peer of {} or the message is not for it",
                    message.from, message.to, config.name
                ),
            ));
        }
    }
    if let (Some(from), Some(url)) = (
        headers.get(FROM_HEADER).and_then(|v| v.to_str().ok()),
        headers.get(CLIENT_URL_HEADER).and_then(|v| v.to_str().ok()),
    ) {
        let id = node_id_of(from);
        if config.peers.iter().any(|peer| peer.id == id) && url.starts_with("http") {
            state.directory.learn(id, url);
        }
    }
    if state.inputs.send(Input::Messages(messages)).await.is_err() {
        return Err(ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "shutting_down", "the node is shutting down"));
    }
    Ok(StatusCode::NO_CONTENT)
}

async fn status(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let status = state.status().await?;
    let config = &state.directory.config;
    let (leader_id, leader_addr) = state.leader_hint(status.leader);
    let peers: BTreeMap<&str, &str> = config.peers.iter().map(|p| (p.name.as_str(), p.raft_url.as_str())).collect();
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
    });
    if status.role == raft_sm::Role::Leader {
        let next: BTreeMap<&str, u64> = status.progress.iter().map(|p| (p.id.as_str(), p.next_index)).collect();
        let matched: BTreeMap<&str, u64> = status.progress.iter().map(|p| (p.id.as_str(), p.match_index)).collect();
        body["nextIndex"] = json!(next);
        body["matchIndex"] = json!(matched);
    }
    Ok(Json(body))
}
