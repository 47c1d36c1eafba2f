//! The client API on `KVSTORE_PORT`: `PUT /set`, `GET /get`, `DELETE /delete`,
//! `GET /health`, `GET /metrics`.

use super::types::{ErrorCode, Health, KeyQuery, ReadOk, SetRequest, WriteOk};
use super::{role_name, ApiError, AppState};
use crate::driver::{Input, ReadReply, WriteReply};
use axum::body::Body;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::IntoResponse;
use axum::routing::{delete, get, put};
use axum::{Json, Router};
use raft_sm::kv::{Command, KvError};
use raft_sm::Rejection;

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

fn bad_request(error: ErrorCode, message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, error, message)
}

fn check_key(key: &str) -> Result<(), ApiError> {
    if key.is_empty() {
        return Err(bad_request(ErrorCode::KeyEmpty, "key must not be empty"));
    }
    if key.len() > KEY_BYTES_MAX {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::KeyTooLarge,
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
            Some(value) => value.to_str().ok().and_then(|v| v.trim().parse().ok()).map(Some).ok_or_else(|| {
                bad_request(ErrorCode::BadSession, format!("header {name} must be an unsigned integer"))
            }),
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
        _ => Err(bad_request(ErrorCode::BadSession, "clientId and seq go together: give both or neither")),
    }
}

async fn read_body(body: Body) -> Result<Bytes, ApiError> {
    match axum::body::to_bytes(body, BODY_BYTES_MAX).await {
        Ok(bytes) => Ok(bytes),
        Err(_) => Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::BodyTooLarge,
            format!("request body exceeds {BODY_BYTES_MAX} bytes (values are limited to {VALUE_BYTES_MAX} bytes)"),
        )
        .closing()),
    }
}

async fn set(State(state): State<AppState>, headers: HeaderMap, body: Body) -> Result<Json<WriteOk>, ApiError> {
    let bytes = read_body(body).await?;
    if bytes.is_empty() {
        return Err(bad_request(
            ErrorCode::BadJson,
            r#"request body is empty; expected JSON {"key": "...", "value": "..."}"#,
        ));
    }
    if let Err(error) = std::str::from_utf8(&bytes) {
        return Err(bad_request(
            ErrorCode::BadEncoding,
            format!("request body is not valid UTF-8 (at byte {})", error.valid_up_to()),
        ));
    }
    let request: SetRequest = serde_json::from_slice(&bytes).map_err(|error| {
        bad_request(
            ErrorCode::BadJson,
            format!(r#"malformed JSON: {error}; expected {{"key": "...", "value": "..."}}"#),
        )
    })?;
    check_key(&request.key)?;
    if request.value.len() > VALUE_BYTES_MAX {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::ValueTooLarge,
            format!("value is {} bytes; the limit is {VALUE_BYTES_MAX}", request.value.len()),
        ));
    }
    let session = session(&headers, request.client_id, request.seq)?;
    let key = request.key.clone();
    let mut command = Command::set(request.key, request.value);
    if let Some((client_id, seq)) = session {
        command = command.with_session(client_id, seq);
    }
    let index = propose(&state, command).await?;
    Ok(Json(WriteOk { index, key, ok: true }))
}

/// The query string as a [`KeyQuery`] with its key. Every name and value must
/// be UTF-8 after percent-decoding: a lossy decoding would make different byte
/// strings (`%FF`, `%FE`) read one key, `"\u{FFFD}"`.
fn parse_query(uri: &Uri) -> Result<(KeyQuery, String), ApiError> {
    for pair in uri.query().unwrap_or_default().split('&') {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        for part in [name, value] {
            if let Err(error) = percent_encoding::percent_decode_str(part).decode_utf8() {
                let name = percent_encoding::percent_decode_str(name).decode_utf8_lossy();
                return Err(bad_request(
                    ErrorCode::BadEncoding,
                    format!(
                        "query parameter `{name}` is not valid UTF-8 after percent-decoding ({error}); \
                         percent-encode the UTF-8 bytes of the text, e.g. `%C3%A9` for `\u{e9}`"
                    ),
                ));
            }
        }
    }
    let Query(query) = Query::<KeyQuery>::try_from_uri(uri).map_err(|rejection| {
        bad_request(ErrorCode::BadQuery, format!("bad query string: {}", rejection.body_text()))
    })?;
    let Some(key) = query.key.clone() else {
        return Err(bad_request(ErrorCode::KeyMissing, "query parameter `key` is required, e.g. ?key=name"));
    };
    check_key(&key)?;
    Ok((query, key))
}

async fn read(State(state): State<AppState>, uri: Uri) -> Result<Json<ReadOk>, ApiError> {
    let (query, key) = parse_query(&uri)?;
    let stale = match query.consistency.as_deref() {
        None | Some("linearizable") => false,
        Some("stale") => true,
        Some(other) => {
            return Err(bad_request(
                ErrorCode::BadQuery,
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
        ReadReply::Value(Ok(value)) => Ok(Json(ReadOk { key, ok: true, value })),
        ReadReply::Value(Err(error)) => Err(kv_error(error)),
        ReadReply::Rejected(rejection) => Err(rejected(&state, rejection, true)),
        ReadReply::Dropped => Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::Retry,
            "leadership changed while the read waited; retry",
        )),
    }
}

async fn remove(State(state): State<AppState>, headers: HeaderMap, uri: Uri) -> Result<Json<WriteOk>, ApiError> {
    let (query, key) = parse_query(&uri)?;
    let session = session(&headers, query.client_id, query.seq)?;
    let mut command = Command::delete(key.clone());
    if let Some((client_id, seq)) = session {
        command = command.with_session(client_id, seq);
    }
    let index = propose(&state, command).await?;
    Ok(Json(WriteOk { index, key, ok: true }))
}

async fn propose(state: &AppState, command: Command) -> Result<u64, ApiError> {
    let reply = state.ask(|reply| Input::Propose { command, reply }).await?;
    match reply {
        WriteReply::Applied(Ok(()), index) => Ok(index.0),
        WriteReply::Applied(Err(error), _) => Err(kv_error(error)),
        WriteReply::Rejected(rejection) => Err(rejected(state, rejection, false)),
        WriteReply::Unknown => Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::OutcomeUnknown,
            "leadership was lost before the write applied; it may or may not take effect. Retry with the same clientId/seq to apply it once",
        )),
        WriteReply::DiskFull => Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::DiskFull,
            "this node's disk is full: it accepts no writes until space is freed (it retries by itself); another node may lead meanwhile, retry there",
        )),
    }
}

fn kv_error(error: KvError) -> ApiError {
    match error {
        KvError::KeyEmpty => bad_request(ErrorCode::KeyEmpty, "key must not be empty"),
        KvError::KeyNotFound => ApiError::new(StatusCode::NOT_FOUND, ErrorCode::NotFound, "key not found"),
        KvError::SessionExpired => bad_request(ErrorCode::SessionExpired, error.to_string()),
        KvError::BadCommand => ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, ErrorCode::Internal, error.to_string()),
    }
}

fn rejected(state: &AppState, rejection: Rejection, is_read: bool) -> ApiError {
    match rejection {
        Rejection::NotLeader { leader: Some(leader) } if !is_read => {
            let (leader_id, leader_url) = state.leader_hint(Some(leader));
            ApiError::new(
                StatusCode::CONFLICT,
                ErrorCode::NotLeader,
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
                ErrorCode::NoLeader,
                "no leader is known right now (election in progress?); retry shortly",
            )
            .with_leader(leader_id, leader_url)
        }
        Rejection::TransferInProgress => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::TransferInProgress,
            "leadership is being transferred; retry shortly",
        ),
        Rejection::Busy => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::Busy,
            "too many requests are pending; retry shortly",
        ),
        other => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::Busy,
            format!("not accepted ({other:?}); retry shortly"),
        ),
    }
}

async fn health(State(state): State<AppState>) -> Result<Json<Health>, ApiError> {
    let status = state.status().await?;
    let config = &state.directory.config;
    let (leader_id, leader) = state.leader_hint(status.leader);
    let peers: Vec<String> = config.peers.iter().map(|p| p.raft_url.clone()).collect();
    Ok(Json(Health {
        addr: config.client_url.clone(),
        applied_index: status.applied_index.0,
        commit_index: status.commit_index.0,
        id: config.name.clone(),
        last_heartbeat_ago_ms: status.last_heartbeat_ago_ms,
        leader,
        leader_id,
        ok: true,
        peers_count: peers.len(),
        peers,
        raft_addr: format!("{}:{}", config.bind, config.raft_port),
        state: role_name(status.role).to_owned(),
        term: status.term.0,
    }))
}

async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    ([(axum::http::header::CONTENT_TYPE, crate::metrics::CONTENT_TYPE)], state.metrics.render())
}
