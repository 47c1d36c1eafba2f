//! The client API on `KVSTORE_PORT`: `PUT /set`, `GET /get`, `DELETE /delete`,
//! `GET /health`, `GET /metrics`.

use super::{role_name, ApiError, AppState};
use crate::driver::{Input, ReadReply, WriteReply};
use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{delete, get, put};
use axum::{Json, Router};
use raft_sm::kv::{Command, KvError};
use raft_sm::Rejection;
use serde::Deserialize;
use serde_json::{json, Value};

/// Longest key, in bytes.
pub const KEY_BYTES_MAX: usize = 1024;
/// Longest value, in bytes.
pub const VALUE_BYTES_MAX: usize = 1 << 20;
/// Largest request body: a maximal value plus room for the key and JSON escapes.
pub const BODY_BYTES_MAX: usize = VALUE_BYTES_MAX + 64 * 1024;

/// The client routes.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/set", put(set).post(set))
        .route("/get", get(read))
        .route("/delete", delete(remove))
        .route("/health", get(health))
        .route("/metrics", get(metrics))
        .with_state(state)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SetRequest {
    key: String,
    value: String,
    #[serde(default, rename = "clientId", alias = "client_id")]
    client_id: Option<u64>,
    #[serde(default)]
    seq: Option<u64>,
}

fn bad_request(error: &str, message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, error, message)
}

fn check_key(key: &str) -> Result<(), ApiError> {
    if key.is_empty() {
        return Err(bad_request("key_empty", "key must not be empty"));
    }
    if key.len() > KEY_BYTES_MAX {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "key_too_large",
            format!("key is {} bytes; the limit is {KEY_BYTES_MAX}", key.len()),
        ));
    }
    Ok(())
}

/// The session of a write: JSON fields win over `X-Client-Id` / `X-Client-Seq` headers.
fn session(headers: &HeaderMap, client_id: Option<u64>, seq: Option<u64>) -> Result<Option<(u64, u64)>, ApiError> {
    let header = |name: &str| -> Result<Option<u64>, ApiError> {
        match headers.get(name) {
            None => Ok(None),
            Some(value) => value
                .to_str()
                .ok()
                .and_then(|v| v.trim().parse().ok())
                .map(Some)
                .ok_or_else(|| bad_request("bad_session", format!("header {name} must be an unsigned integer"))),
        }
    };
    let client_id = match client_id {
        Some(id) => Some(id),
        None => header("x-client-id")?,
    };
    let seq = match seq {
        Some(seq) => Some(seq),
        None => header("x-client-seq")?,
    };
    match (client_id, seq) {
        (Some(client_id), Some(seq)) => Ok(Some((client_id, seq))),
        (None, None) => Ok(None),
        _ => Err(bad_request("bad_session", "clientId and seq go together: give both or neither")),
    }
}

async fn read_body(body: Body) -> Result<Vec<u8>, ApiError> {
    match axum::body::to_bytes(body, BODY_BYTES_MAX).await {
        Ok(bytes) => Ok(bytes.to_vec()),
        Err(_) => Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            format!("request body exceeds {BODY_BYTES_MAX} bytes (values are limited to {VALUE_BYTES_MAX} bytes)"),
        )
        .closing()),
    }
}

async fn set(State(state): State<AppState>, headers: HeaderMap, body: Body) -> Result<Json<Value>, ApiError> {
    let bytes = read_body(body).await?;
    if bytes.is_empty() {
        return Err(bad_request("bad_json", r#"request body is empty; expected JSON {"key": "...", "value": "..."}"#));
    }
    if let Err(error) = std::str::from_utf8(&bytes) {
        return Err(bad_request(
            "bad_encoding",
            format!("request body is not valid UTF-8 (at byte {})", error.valid_up_to()),
        ));
    }
    let request: SetRequest = serde_json::from_slice(&bytes).map_err(|error| {
        bad_request("bad_json", format!(r#"malformed JSON: {error}; expected {{"key": "...", "value": "..."}}"#))
    })?;
    check_key(&request.key)?;
    if request.value.len() > VALUE_BYTES_MAX {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "value_too_large",
            format!("value is {} bytes; the limit is {VALUE_BYTES_MAX}", request.value.len()),
        ));
    }
    let mut command = Command::set(request.key.clone(), request.value);
    if let Some((client_id, seq)) = session(&headers, request.client_id, request.seq)? {
        command = command.with_session(client_id, seq);
    }
    let index = propose(&state, command).await?;
    Ok(Json(json!({ "ok": true, "key": request.key, "index": index })))
}

#[derive(Deserialize)]
struct KeyQuery {
    key: Option<String>,
    consistency: Option<String>,
    #[serde(rename = "clientId")]
    client_id: Option<u64>,
    seq: Option<u64>,
}

fn parse_query(
    query: Result<Query<KeyQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<(KeyQuery, String), ApiError> {
    let Query(query) =
        query.map_err(|rejection| bad_request("bad_query", format!("bad query string: {}", rejection.body_text())))?;
    let Some(key) = query.key.clone() else {
        return Err(bad_request("key_missing", "query parameter `key` is required, e.g. ?key=name"));
    };
    check_key(&key)?;
    Ok((query, key))
}

async fn read(
    State(state): State<AppState>,
    query: Result<Query<KeyQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let (query, key) = parse_query(query)?;
    let stale = match query.consistency.as_deref() {
        None | Some("linearizable") => false,
        Some("stale") => true,
        Some(other) => {
            return Err(bad_request(
                "bad_query",
                format!("consistency={other:?} is unknown; use `linearizable` (default) or `stale`"),
            ))
        }
    };
    let lookup = key.clone();
    let reply = state
        .ask(
            move |reply| {
                if stale {
                    Input::StaleRead { key: lookup, reply }
                } else {
                    Input::Read { key: lookup, reply }
                }
            },
        )
        .await?;
    match reply {
        ReadReply::Value(Ok(value)) => Ok(Json(json!({ "ok": true, "key": key, "value": value }))),
        ReadReply::Value(Err(error)) => Err(kv_error(error)),
        ReadReply::Rejected(rejection) => Err(rejected(&state, rejection, true)),
        ReadReply::Dropped => Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "retry",
            "leadership changed while the read waited; retry",
        )),
    }
}

async fn remove(
    State(state): State<AppState>,
    headers: HeaderMap,
    query: Result<Query<KeyQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let (query, key) = parse_query(query)?;
    let mut command = Command::delete(key.clone());
    if let Some((client_id, seq)) = session(&headers, query.client_id, query.seq)? {
        command = command.with_session(client_id, seq);
    }
    let index = propose(&state, command).await?;
    Ok(Json(json!({ "ok": true, "key": key, "index": index })))
}

async fn propose(state: &AppState, command: Command) -> Result<u64, ApiError> {
    let reply = state.ask(|reply| Input::Propose { command, reply }).await?;
    match reply {
        WriteReply::Applied(Ok(()), index) => Ok(index.0),
        WriteReply::Applied(Err(error), _) => Err(kv_error(error)),
        WriteReply::Rejected(rejection) => Err(rejected(state, rejection, false)),
        WriteReply::Unknown => Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "outcome_unknown",
            "leadership was lost before the write applied; it may or may not take effect. Retry with the same clientId/seq to apply it once",
        )),
    }
}

fn kv_error(error: KvError) -> ApiError {
    match error {
        KvError::KeyEmpty => bad_request("key_empty", "key must not be empty"),
        KvError::KeyNotFound => ApiError::new(StatusCode::NOT_FOUND, "not_found", "key not found"),
        KvError::SessionExpired => bad_request("session_expired", error.to_string()),
        KvError::BadCommand => ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", error.to_string()),
    }
}

fn rejected(state: &AppState, rejection: Rejection, is_read: bool) -> ApiError {
    match rejection {
        Rejection::NotLeader { leader: Some(leader) } if !is_read => {
            let (leader_id, leader_url) = state.leader_hint(Some(leader));
            ApiError::new(
                StatusCode::CONFLICT,
                "not_leader",
                format!(
                    "this node is not the leader; send writes to {}",
                    leader_url.as_deref().unwrap_or("the leader")
                ),
            )
            .with_leader(leader_id, leader_url)
        }
        Rejection::NotLeader { leader } => {
            let (leader_id, leader_url) = state.leader_hint(leader);
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "no_leader",
                "no leader is known right now (election in progress?); retry shortly",
            )
            .with_leader(leader_id, leader_url)
        }
        Rejection::TransferInProgress => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "transfer_in_progress",
            "leadership is being transferred; retry shortly",
        ),
        Rejection::Busy => {
            ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "busy", "too many requests are pending; retry shortly")
        }
    }
}

async fn health(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let status = state.status().await?;
    let config = &state.directory.config;
    let (leader_id, leader_url) = state.leader_hint(status.leader);
    let peers: Vec<&str> = config.peers.iter().map(|p| p.raft_url.as_str()).collect();
    Ok(Json(json!({
        "ok": true,
        "id": config.name,
        "addr": config.client_url,
        "raftAddr": format!("{}:{}", config.bind, config.raft_port),
        "peers": peers,
        "peersCount": peers.len(),
        "state": role_name(status.role),
        "term": status.term.0,
        "leaderId": leader_id,
        "leader": leader_url,
        "lastHeartbeatAgoMs": status.last_heartbeat_ago_ms,
        "commitIndex": status.commit_index.0,
        "appliedIndex": status.applied_index.0,
    })))
}

async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    ([(axum::http::header::CONTENT_TYPE, "text/plain; version=0.0.4")], state.metrics.render())
}
