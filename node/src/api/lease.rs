//! `POST /lease/grant`, `/lease/keepalive`, `/lease/revoke`: leases through
//! the log. A key attaches to a lease with `"lease": id` on `PUT /set`; when
//! the lease is revoked, or expires (decided by the leader's clock, see
//! `raft_sm::kv::lease`), its keys are deleted.

use super::client::{kv_error, parse_json, propose_applied, read_body, session};
use super::types::{LeaseGrantRequest, LeaseIdRequest, LeaseOk};
use super::{ApiError, AppState};
use axum::body::Body;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::Json;
use raft_sm::kv::{Command, Op};

/// Proposes a lease command and shapes its answer.
pub(super) async fn lease_command(
    state: &AppState,
    headers: &HeaderMap,
    op: Op,
    session_fields: (Option<u64>, Option<u64>),
) -> Result<LeaseOk, ApiError> {
    let is_revoke = matches!(op, Op::LeaseRevoke { .. });
    let mut command = Command::of(op);
    if let Some((client_id, seq)) = session(headers, session_fields.0, session_fields.1)? {
        command = command.with_session(client_id, seq);
    }
    let (applied, index) = propose_applied(state, command).await?;
    applied.result.map_err(kv_error)?;
    let output = applied.output;
    Ok(LeaseOk {
        deleted: is_revoke.then_some(output.deleted),
        id: output.lease_id,
        index,
        ok: true,
        revision: output.revision,
        ttl: (!is_revoke).then_some(output.ttl_s),
    })
}

/// `POST /lease/grant` `{"ttl": seconds, "id"?: n}`.
pub async fn grant(State(state): State<AppState>, headers: HeaderMap, body: Body) -> Result<Json<LeaseOk>, ApiError> {
    let bytes = read_body(body).await?;
    let request: LeaseGrantRequest = parse_json(&bytes, r#"{"ttl": <seconds>} (optional "id")"#)?;
    let op = Op::LeaseGrant { id: request.id.unwrap_or(0), ttl_s: request.ttl };
    Ok(Json(lease_command(&state, &headers, op, (request.client_id, request.seq)).await?))
}

/// `POST /lease/keepalive` `{"id": n}`: another TTL from now, on the leader's clock.
pub async fn keepalive(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<LeaseOk>, ApiError> {
    let bytes = read_body(body).await?;
    let request: LeaseIdRequest = parse_json(&bytes, r#"{"id": <lease id>}"#)?;
    let op = Op::LeaseKeepAlive { id: request.id };
    Ok(Json(lease_command(&state, &headers, op, (request.client_id, request.seq)).await?))
}

/// `POST /lease/revoke` `{"id": n}`: deletes the lease and its keys.
pub async fn revoke(State(state): State<AppState>, headers: HeaderMap, body: Body) -> Result<Json<LeaseOk>, ApiError> {
    let bytes = read_body(body).await?;
    let request: LeaseIdRequest = parse_json(&bytes, r#"{"id": <lease id>}"#)?;
    let op = Op::LeaseRevoke { id: request.id };
    Ok(Json(lease_command(&state, &headers, op, (request.client_id, request.seq)).await?))
}
