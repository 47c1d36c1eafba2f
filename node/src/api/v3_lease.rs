//! etcd's v3 JSON gateway paths for leases and watch: `POST /v3/lease/grant`
//! (`{"TTL", "ID"}` → `{"header", "ID", "TTL"}`), `/v3/lease/keepalive`
//! (`{"ID"}` → `{"result": {"header", "ID", "TTL"}}`, as the gateway wraps a
//! stream's message), `/v3/lease/revoke` and `/v3/kv/lease/revoke` (`{"ID"}` →
//! `{"header"}`), `/v3/lease/timetolive` (`{"ID", "keys"}` → `{"header", "ID",
//! "TTL", "grantedTTL", "keys"}`), `/v3/lease/leases`, and `/v3/watch` (`{"create_request": {"key", "range_end",
//! "start_revision", "prev_kv", "progress_notify"}}` → newline-separated
//! `{"result": ...}` messages: first `created`, then `events` (`type` left out
//! for a put, `"DELETE"` for a delete; keys and values base64), progress
//! notifications as a bare header, and `compact_revision` with `canceled` when
//! the start is below the history window; `filters` `NOPUT`/`NODELETE` leave
//! puts or deletes out). The watch is the same stream as `GET /watch`
//! ([`super::watch`]).

use super::client::{kv_error, parse_json, propose_applied, read_body};
use super::types::ErrorCode;
use super::v3::{header, key_range, kv_json, non_negative, with_header, Int};
use super::watch::{stream, Item, WATCH_PROGRESS_MS_DEFAULT};
use super::{ApiError, AppState};
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::header as http_header;
use axum::response::{IntoResponse, Response};
use axum::Json;
use raft_sm::kv::{Command, EventKind, Op};
use serde::Deserialize;
use serde_json::{json, Map, Value};
use std::time::Duration;

#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
struct GrantBody {
    #[serde(rename = "TTL", alias = "ttl")]
    ttl: Option<Int>,
    #[serde(default, rename = "ID", alias = "id")]
    id: Option<Int>,
}

#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
struct IdBody {
    #[serde(rename = "ID", alias = "id")]
    id: Option<Int>,
}

async fn lease_op(state: &AppState, op: Op) -> Result<(u64, u64, u64), ApiError> {
    let (applied, _) = propose_applied(state, Command::of(op)).await?;
    applied.result.map_err(kv_error)?;
    Ok((applied.output.lease_id, applied.output.ttl_s, applied.output.revision))
}

/// `POST /v3/lease/grant`.
pub async fn grant(State(state): State<AppState>, body: Body) -> Result<Json<Value>, ApiError> {
    let bytes = read_body(body).await?;
    let request: GrantBody = parse_json(&bytes, r#"{"TTL": "<seconds>", "ID": "<optional id>"}"#)?;
    let ttl_s = non_negative("TTL", request.ttl)?;
    let id = non_negative("ID", request.id)?;
    let (id, ttl_s, revision) = lease_op(&state, Op::LeaseGrant { id, ttl_s }).await?;
    let mut fields = Map::new();
    fields.insert("ID".into(), json!(id.to_string()));
    fields.insert("TTL".into(), json!(ttl_s.to_string()));
    Ok(Json(with_header(header(&state, revision).await?, fields)))
}

fn lease_id(bytes: &[u8]) -> Result<u64, ApiError> {
    let request: IdBody = parse_json(bytes, r#"{"ID": "<lease id>"}"#)?;
    non_negative("ID", request.id)
}

/// `POST /v3/lease/keepalive`.
pub async fn keepalive(State(state): State<AppState>, body: Body) -> Result<Json<Value>, ApiError> {
    let id = lease_id(&read_body(body).await?)?;
    let (id, ttl_s, revision) = lease_op(&state, Op::LeaseKeepAlive { id }).await?;
    let mut fields = Map::new();
    fields.insert("ID".into(), json!(id.to_string()));
    fields.insert("TTL".into(), json!(ttl_s.to_string()));
    Ok(Json(json!({ "result": with_header(header(&state, revision).await?, fields) })))
}

/// `POST /v3/lease/revoke` (and `/v3/kv/lease/revoke`, its older path).
pub async fn revoke(State(state): State<AppState>, body: Body) -> Result<Json<Value>, ApiError> {
    let id = lease_id(&read_body(body).await?)?;
    let (_, _, revision) = lease_op(&state, Op::LeaseRevoke { id }).await?;
    Ok(Json(with_header(header(&state, revision).await?, Map::new())))
}

#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
struct TimeToLiveBody {
    #[serde(rename = "ID", alias = "id")]
    id: Option<Int>,
    #[serde(default)]
    keys: bool,
}

/// `POST /v3/lease/timetolive` (and `/v3/kv/lease/timetolive`): `{"ID", "keys"}`
/// → `{"header", "ID", "TTL" (seconds left, rounded up), "grantedTTL",
/// "keys"}`; an unknown lease answers `"TTL": "-1"`, as etcd does.
pub async fn time_to_live(State(state): State<AppState>, body: Body) -> Result<Json<Value>, ApiError> {
    let bytes = read_body(body).await?;
    let request: TimeToLiveBody = parse_json(&bytes, r#"{"ID": "<lease id>", "keys": <bool>}"#)?;
    let id = non_negative("ID", request.id)?;
    let mut fields = Map::new();
    fields.insert("ID".into(), json!(id.to_string()));
    let revision = match super::lease::lease_info(&state, id, false).await {
        Ok(info) => {
            let left_s = info.remaining_ms.map_or(info.ttl_s, |ms| ms.div_ceil(1000));
            fields.insert("TTL".into(), json!(left_s.to_string()));
            fields.insert("grantedTTL".into(), json!(info.ttl_s.to_string()));
            if request.keys {
                let keys: Vec<Value> = info.keys.iter().map(|key| json!(super::v3::b64(key.as_bytes()))).collect();
                fields.insert("keys".into(), Value::Array(keys));
            }
            info.revision
        }
        Err(error) if error.code() == ErrorCode::LeaseNotFound => {
            fields.insert("TTL".into(), json!("-1"));
            0
        }
        Err(error) => return Err(error),
    };
    Ok(Json(with_header(header(&state, revision).await?, fields)))
}

/// `POST /v3/lease/leases` (and `/v3/kv/lease/leases`): `{}` →
/// `{"header", "leases": [{"ID"}]}`.
pub async fn leases(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let (ids, revision) = super::lease::lease_ids(&state, false).await?;
    let mut fields = Map::new();
    let leases: Vec<Value> = ids.iter().map(|id| json!({ "ID": id.to_string() })).collect();
    fields.insert("leases".into(), Value::Array(leases));
    Ok(Json(with_header(header(&state, revision).await?, fields)))
}

#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
struct CreateRequest {
    #[serde(default)]
    key: String,
    #[serde(default, alias = "rangeEnd")]
    range_end: String,
    #[serde(default, alias = "startRevision")]
    start_revision: Option<Int>,
    #[serde(default, alias = "prevKv")]
    prev_kv: bool,
    #[serde(default, alias = "progressNotify")]
    progress_notify: bool,
    #[serde(default, alias = "watchId")]
    watch_id: Option<Int>,
    #[serde(default)]
    filters: Vec<Value>,
    /// Lets the server split a large revision over several responses; it never
    /// does, which the flag allows (accepted so etcd clients that set it work).
    #[serde(default, rename = "fragment")]
    _fragment: bool,
}

#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
struct WatchBody {
    #[serde(alias = "createRequest")]
    create_request: Option<CreateRequest>,
}

/// A create request's `filters` (etcd's `FilterType`, by name or number):
/// whether to leave out puts (`NOPUT`, 0) and deletes (`NODELETE`, 1).
fn watch_filters(filters: &[Value]) -> Result<(bool, bool), ApiError> {
    let (mut no_put, mut no_delete) = (false, false);
    for filter in filters {
        match filter {
            Value::String(name) if name == "NOPUT" => no_put = true,
            Value::String(name) if name == "NODELETE" => no_delete = true,
            Value::Number(n) if n.as_u64() == Some(0) => no_put = true,
            Value::Number(n) if n.as_u64() == Some(1) => no_delete = true,
            other => {
                return Err(super::client::bad_request(
                    ErrorCode::BadJson,
                    format!("unknown watch filter {other}; etcd's filters are \"NOPUT\" (0) and \"NODELETE\" (1)"),
                ))
            }
        }
    }
    Ok((no_put, no_delete))
}

/// `POST /v3/watch`.
pub async fn watch(State(state): State<AppState>, body: Body) -> Result<Response, ApiError> {
    let bytes = read_body(body).await?;
    let request: WatchBody = parse_json(&bytes, r#"{"create_request": {"key": "<base64>", "range_end": "<base64>"}}"#)?;
    let Some(create) = request.create_request else {
        return Err(super::client::bad_request(ErrorCode::BadJson, "only `create_request` is supported"));
    };
    let (no_put, no_delete) = watch_filters(&create.filters)?;
    let range = key_range(&create.key, &create.range_end)?;
    let watch_id = non_negative("watch_id", create.watch_id)?;
    let start = match non_negative("start_revision", create.start_revision)? {
        0 => *state.directory.revision.borrow() + 1,
        rev => rev,
    };
    let base = header(&state, start - 1).await?;
    let prev_kv = create.prev_kv;
    let progress_notify = create.progress_notify;
    let render = move |item: Item| -> Bytes {
        let with_revision = |revision: u64| {
            let mut header = base.clone();
            header["revision"] = json!(revision.to_string());
            header
        };
        let mut result = Map::new();
        result.insert("watch_id".into(), json!(watch_id.to_string()));
        let message = match item {
            Item::Events(events, revision) => {
                let events: Vec<Value> = events
                    .iter()
                    .filter(|event| match event.kind {
                        EventKind::Put => !no_put,
                        EventKind::Delete => !no_delete,
                    })
                    .map(|event| {
                        let mut object = Map::new();
                        if event.kind == EventKind::Delete {
                            object.insert("type".into(), json!("DELETE"));
                        }
                        object.insert("kv".into(), kv_json(&event.kv, false));
                        if let (true, Some(prev)) = (prev_kv, &event.prev) {
                            object.insert("prev_kv".into(), kv_json(prev, false));
                        }
                        Value::Object(object)
                    })
                    .collect();
                if events.is_empty() {
                    // All filtered out: etcd sends nothing; a blank line keeps the connection checked.
                    return Bytes::from_static(b"\n");
                }
                result.insert("events".into(), Value::Array(events));
                with_header(with_revision(revision), result)
            }
            Item::Progress(revision) if progress_notify => with_header(with_revision(revision), result),
            // etcd sends nothing while idle unless asked; an empty line keeps the connection checked.
            Item::Progress(_) => return Bytes::from_static(b"\n"),
            Item::End(error, message, revision, compact_revision) => {
                result.insert("canceled".into(), json!(true));
                result.insert("cancel_reason".into(), json!(format!("{error}: {message}")));
                if let Some(compact) = compact_revision {
                    result.insert("compact_revision".into(), json!(compact.to_string()));
                }
                with_header(with_revision(revision), result)
            }
        };
        let mut bytes = serde_json::to_vec(&json!({ "result": message })).expect("serializes");
        bytes.push(b'\n');
        Bytes::from(bytes)
    };
    let mut created = Map::new();
    created.insert("watch_id".into(), json!(watch_id.to_string()));
    created.insert("created".into(), json!(true));
    let mut first = serde_json::to_vec(&json!({ "result": with_header(header(&state, start - 1).await?, created) }))
        .expect("serializes");
    first.push(b'\n');
    let body =
        stream(state, range, start, Duration::from_millis(WATCH_PROGRESS_MS_DEFAULT), Some(Bytes::from(first)), render);
    Ok(([(http_header::CONTENT_TYPE, "application/json")], body).into_response())
}
