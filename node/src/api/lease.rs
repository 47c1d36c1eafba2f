//! `POST /lease/grant`, `/lease/keepalive`, `/lease/revoke`: leases through
//! the log. A key attaches to a lease with `"lease": id` on `PUT /set`; when
//! the lease is revoked, or expires (decided by the leader's clock, see
//! `raft_sm::kv::lease`), its keys are deleted. `GET /lease/timetolive?id=N`
//! (`&keys=true`) and `GET /lease/list` read leases (by ReadIndex, or
//! `consistency=stale`).

use super::client::{
    ask_query, internal, is_stale, kv_error, parse_json, parse_query_string, propose_applied, read_body, session,
};
use super::types::{LeaseGrantRequest, LeaseIdRequest, LeaseListOk, LeaseOk, LeaseTtlOk, LeaseTtlQuery};
use super::{ApiError, AppState};
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, Uri};
use axum::Json;
use raft_sm::kv::{Command, LeaseInfo, Op, Query as KvQuery, QueryOutput};

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

/// Reads one lease (its granted TTL, the time left on the leader's clock, and
/// with `keys` its keys).
pub(super) async fn lease_info(state: &AppState, id: u64, stale: bool) -> Result<LeaseInfo, ApiError> {
    match ask_query(state, KvQuery::Lease(id), stale).await? {
        QueryOutput::Lease(result) => result.map_err(kv_error),
        _ => Err(internal("a lease read was answered with another kind of result")),
    }
}

/// Reads every lease's id and the revision.
pub(super) async fn lease_ids(state: &AppState, stale: bool) -> Result<(Vec<u64>, u64), ApiError> {
    match ask_query(state, KvQuery::Leases, stale).await? {
        QueryOutput::Leases { ids, revision } => Ok((ids, revision)),
        _ => Err(internal("a lease list was answered with another kind of result")),
    }
}

/// `GET /lease/timetolive?id=N[&keys=true][&consistency=stale]`.
pub async fn time_to_live(State(state): State<AppState>, uri: Uri) -> Result<Json<LeaseTtlOk>, ApiError> {
    let query: LeaseTtlQuery = parse_query_string(&uri, "?id=<lease id>[&keys=true]")?;
    let info = lease_info(&state, query.id, is_stale(query.consistency.as_deref())?).await?;
    Ok(Json(LeaseTtlOk {
        id: info.id,
        keys: query.keys.then_some(info.keys),
        ok: true,
        remaining_ms: info.remaining_ms,
        revision: info.revision,
        ttl: info.ttl_s,
    }))
}

/// `GET /lease/list[?consistency=stale]`.
pub async fn list(State(state): State<AppState>, uri: Uri) -> Result<Json<LeaseListOk>, ApiError> {
    #[derive(serde::Deserialize, Default)]
    #[serde(deny_unknown_fields)]
    struct ListQuery {
        consistency: Option<String>,
    }
    let query: ListQuery = parse_query_string(&uri, "[?consistency=stale]")?;
    let (leases, revision) = lease_ids(&state, is_stale(query.consistency.as_deref())?).await?;
    Ok(Json(LeaseListOk { leases, ok: true, revision }))
}
