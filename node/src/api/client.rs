//! The client API on `KVSTORE_PORT`: `PUT /set`, `GET /get`, `DELETE /delete`,
//! `GET /range`, `POST /cas`, `POST /txn`, `POST /lease/grant|keepalive|revoke`
//! ([`super::lease`]), `GET /watch` ([`super::watch`]), etcd's v3 JSON gateway
//! paths ([`super::v3`]), `GET /health`, `GET /metrics`.

use super::types::{
    CasOk, CasRequest, CompareBody, ErrorCode, Health, KeyQuery, KeyValueBody, RangeBody, RangeOk, RangeSpec, ReadOk,
    SetRequest, TxnOk, TxnOpBody, TxnOpResult, TxnRequest, WriteOk,
};
use super::{role_name, ApiError, AppState};
use crate::driver::{Input, ReadReply, WriteReply};
use axum::body::Body;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::IntoResponse;
use axum::routing::{delete, get, post, put};
use axum::{Json, Router};
use raft_sm::kv::{
    ApplyResult, Command, Compare, CompareOp, CompareTarget, KeyRange, KeyValue, KvError, OpResponse, Query as KvQuery,
    QueryOutput, RangeRequest, RangeResult, Txn, TxnOp, TXN_OPS_MAX,
};
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
        .route("/range", get(range))
        .route("/cas", post(cas).put(cas))
        .route("/txn", post(txn).put(txn))
        .route("/lease/grant", post(super::lease::grant))
        .route("/lease/keepalive", post(super::lease::keepalive))
        .route("/lease/revoke", post(super::lease::revoke))
        .route("/lease/timetolive", get(super::lease::time_to_live))
        .route("/lease/list", get(super::lease::list))
        .route("/watch", get(super::watch::watch))
        .route("/v3/lease/grant", post(super::v3_lease::grant))
        .route("/v3/lease/keepalive", post(super::v3_lease::keepalive))
        .route("/v3/lease/revoke", post(super::v3_lease::revoke))
        .route("/v3/kv/lease/revoke", post(super::v3_lease::revoke))
        .route("/v3/lease/timetolive", post(super::v3_lease::time_to_live))
        .route("/v3/kv/lease/timetolive", post(super::v3_lease::time_to_live))
        .route("/v3/lease/leases", post(super::v3_lease::leases))
        .route("/v3/kv/lease/leases", post(super::v3_lease::leases))
        .route("/v3/watch", post(super::v3_lease::watch))
        .route("/v3/kv/put", post(super::v3::put))
        .route("/v3/kv/range", post(super::v3::range))
        .route("/v3/kv/deleterange", post(super::v3::delete_range))
        .route("/v3/kv/txn", post(super::v3::txn))
        .route("/health", get(health))
        .route("/metrics", get(metrics))
        .with_state(state.clone())
        .merge(super::members::router(state))
}

pub(super) fn bad_request(error: ErrorCode, message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, error, message)
}

pub(super) fn check_key(key: &str) -> Result<(), ApiError> {
    if key.is_empty() {
        return Err(bad_request(ErrorCode::KeyEmpty, "key must not be empty"));
    }
    check_key_len(key)
}

/// A key (or range bound) over [`KEY_BYTES_MAX`] is refused with 413.
fn check_key_len(key: &str) -> Result<(), ApiError> {
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
pub(super) fn session(
    headers: &HeaderMap,
    client_id: Option<u64>,
    seq: Option<u64>,
) -> Result<Option<(u64, u64)>, ApiError> {
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

pub(super) async fn read_body(body: Body) -> Result<Bytes, ApiError> {
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
    let mut command = match request.lease {
        None | Some(0) => Command::set(request.key, request.value),
        Some(lease) => Command::put(request.key, request.value, lease),
    };
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
    check_query_encoding(uri)?;
    let Query(query) = Query::<KeyQuery>::try_from_uri(uri).map_err(|rejection| {
        bad_request(ErrorCode::BadQuery, format!("bad query string: {}", rejection.body_text()))
    })?;
    let Some(key) = query.key.clone() else {
        return Err(bad_request(ErrorCode::KeyMissing, "query parameter `key` is required, e.g. ?key=name"));
    };
    check_key(&key)?;
    Ok((query, key))
}

/// The query string as `T` (UTF-8 checked as [`parse_query`] does); `shape`
/// is what the error message shows as expected.
pub(super) fn parse_query_string<T: serde::de::DeserializeOwned>(uri: &Uri, shape: &str) -> Result<T, ApiError> {
    check_query_encoding(uri)?;
    let Query(query) = Query::<T>::try_from_uri(uri).map_err(|rejection| {
        bad_request(ErrorCode::BadQuery, format!("bad query string: {}; expected {shape}", rejection.body_text()))
    })?;
    Ok(query)
}

fn check_query_encoding(uri: &Uri) -> Result<(), ApiError> {
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
    Ok(())
}

async fn read(State(state): State<AppState>, uri: Uri) -> Result<Json<ReadOk>, ApiError> {
    let (query, key) = parse_query(&uri)?;
    let stale = is_stale(query.consistency.as_deref())?;
    match ask_query(&state, KvQuery::Get(key.clone()), stale).await? {
        QueryOutput::Value(Ok(value)) => Ok(Json(ReadOk { key, ok: true, value })),
        QueryOutput::Value(Err(error)) | QueryOutput::Range(Err(error)) => Err(kv_error(error)),
        _ => Err(internal("a get was answered with another kind of result")),
    }
}

pub(super) fn internal(message: &str) -> ApiError {
    ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, ErrorCode::Internal, message)
}

pub(super) fn is_stale(consistency: Option<&str>) -> Result<bool, ApiError> {
    match consistency {
        None | Some("linearizable") => Ok(false),
        Some("stale") => Ok(true),
        Some(other) => Err(bad_request(
            ErrorCode::BadQuery,
            format!("consistency={other:?} is unknown; use `linearizable` (default) or `stale`"),
        )),
    }
}

/// Serves `query` by ReadIndex (or from local state when `stale`).
pub(super) async fn ask_query(state: &AppState, query: KvQuery, stale: bool) -> Result<QueryOutput, ApiError> {
    let reply = state
        .ask(move |reply| if stale { Input::StaleRead { query, reply } } else { Input::Read { query, reply } })
        .await?;
    match reply {
        ReadReply::Answer(output) => Ok(output),
        ReadReply::Rejected(rejection) => Err(rejected(state, rejection, true)),
        ReadReply::Dropped => Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::Retry,
            "leadership changed while the read waited; retry",
        )),
    }
}

/// Reads a range by ReadIndex (or stale), mapping the store's errors.
pub(super) async fn ask_range(state: &AppState, request: RangeRequest, stale: bool) -> Result<RangeResult, ApiError> {
    match ask_query(state, KvQuery::Range(request), stale).await? {
        QueryOutput::Range(Ok(result)) => Ok(result),
        QueryOutput::Range(Err(error)) | QueryOutput::Value(Err(error)) => Err(kv_error(error)),
        _ => Err(internal("a range was answered with another kind of result")),
    }
}

/// The keys a [`RangeSpec`] names: `key`, `key`+`end`, or `prefix`.
fn key_range(spec: &RangeSpec) -> Result<KeyRange, ApiError> {
    key_range_of(&spec.key, &spec.end, &spec.prefix)
}

/// The keys named by `key`, `key`+`end`, or `prefix`.
pub(super) fn key_range_of(
    key: &Option<String>,
    end: &Option<String>,
    prefix: &Option<String>,
) -> Result<KeyRange, ApiError> {
    match (key, end, prefix) {
        (Some(key), None, None) => {
            check_key(key)?;
            Ok(KeyRange::single(key.clone()))
        }
        (Some(key), Some(end), None) => {
            check_key_len(key)?;
            check_key_len(end)?;
            if end.is_empty() {
                return Err(bad_request(
                    ErrorCode::BadQuery,
                    "`end` must not be empty (leave it out for one key; \\u0000 means no end)",
                ));
            }
            Ok(KeyRange { key: key.clone(), range_end: end.as_bytes().to_vec() })
        }
        (None, None, Some(prefix)) => {
            check_key_len(prefix)?;
            Ok(KeyRange::prefix(prefix.clone()))
        }
        (None, None, None) => Err(bad_request(
            ErrorCode::KeyMissing,
            "give `key` (one key), `key` and `end` (the range [key, end)), or `prefix`",
        )),
        _ => Err(bad_request(
            ErrorCode::BadQuery,
            "give either `key` (with an optional `end`) or `prefix`, not both; `end` needs `key`",
        )),
    }
}

fn range_request(spec: &RangeSpec) -> Result<RangeRequest, ApiError> {
    Ok(RangeRequest {
        range: key_range(spec)?,
        limit: spec.limit.unwrap_or(0),
        keys_only: spec.keys_only.unwrap_or(false),
        count_only: spec.count_only.unwrap_or(false),
        revision: spec.revision.unwrap_or(0),
    })
}

/// One key as the JSON API shows it.
pub(super) fn kv_body(kv: KeyValue, keys_only: bool) -> KeyValueBody {
    KeyValueBody {
        create_revision: kv.create_revision,
        key: kv.key,
        mod_revision: kv.mod_revision,
        value: (!keys_only).then_some(kv.value),
        version: kv.version,
        lease: (kv.lease != 0).then_some(kv.lease),
    }
}

fn range_body(result: RangeResult, keys_only: bool) -> RangeBody {
    RangeBody {
        count: result.count,
        kvs: result.kvs.into_iter().map(|kv| kv_body(kv, keys_only)).collect(),
        more: result.more,
        revision: result.revision,
    }
}

async fn range(State(state): State<AppState>, uri: Uri) -> Result<Json<RangeOk>, ApiError> {
    check_query_encoding(&uri)?;
    let Query(spec) = Query::<RangeSpec>::try_from_uri(&uri).map_err(|rejection| {
        bad_request(ErrorCode::BadQuery, format!("bad query string: {}", rejection.body_text()))
    })?;
    let stale = is_stale(spec.consistency.as_deref())?;
    let request = range_request(&spec)?;
    let keys_only = request.keys_only;
    let result = ask_range(&state, request, stale).await?;
    Ok(Json(RangeOk { range: range_body(result, keys_only), ok: true }))
}

/// Parses a JSON body; `shape` is what the error message shows as expected.
pub(super) fn parse_json<T: serde::de::DeserializeOwned>(bytes: &[u8], shape: &str) -> Result<T, ApiError> {
    if bytes.is_empty() {
        return Err(bad_request(ErrorCode::BadJson, format!("request body is empty; expected JSON {shape}")));
    }
    if let Err(error) = std::str::from_utf8(bytes) {
        return Err(bad_request(
            ErrorCode::BadEncoding,
            format!("request body is not valid UTF-8 (at byte {})", error.valid_up_to()),
        ));
    }
    serde_json::from_slice(bytes)
        .map_err(|error| bad_request(ErrorCode::BadJson, format!("malformed JSON: {error}; expected {shape}")))
}

pub(super) fn check_value(value: &str) -> Result<(), ApiError> {
    if value.len() > VALUE_BYTES_MAX {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::ValueTooLarge,
            format!("value is {} bytes; the limit is {VALUE_BYTES_MAX}", value.len()),
        ));
    }
    Ok(())
}

async fn cas(State(state): State<AppState>, headers: HeaderMap, body: Body) -> Result<Json<CasOk>, ApiError> {
    let bytes = read_body(body).await?;
    let request: CasRequest = parse_json(
        &bytes,
        r#"{"key": "...", "value": "...", "prevValue": "..."} (or prevExist, prevVersion, prevModRevision; "delete": true to delete)"#,
    )?;
    check_key(&request.key)?;
    let key = request.key.clone();
    let mut compare = Vec::new();
    let on = |target| Compare { key: key.clone(), target, op: CompareOp::Equal };
    if let Some(value) = &request.prev_value {
        compare.push(on(CompareTarget::Value(value.clone())));
    }
    match request.prev_exist {
        Some(true) => compare.push(Compare { op: CompareOp::Greater, ..on(CompareTarget::Version(0)) }),
        Some(false) => compare.push(on(CompareTarget::Version(0))),
        None => {}
    }
    if let Some(version) = request.prev_version {
        compare.push(on(CompareTarget::Version(version)));
    }
    if let Some(revision) = request.prev_mod_revision {
        compare.push(on(CompareTarget::ModRevision(revision)));
    }
    if compare.is_empty() {
        return Err(bad_request(
            ErrorCode::BadJson,
            "give at least one expectation: prevValue, prevExist, prevVersion or prevModRevision",
        ));
    }
    let op = match (&request.value, request.delete) {
        (Some(value), false) => {
            check_value(value)?;
            TxnOp::put(key.clone(), value.clone())
        }
        (None, true) => TxnOp::Delete(KeyRange::single(key.clone())),
        _ => return Err(bad_request(ErrorCode::BadJson, r#"give either "value" or "delete": true"#)),
    };
    let mut command = Command::txn(Txn { compare, success: vec![op], failure: Vec::new() });
    if let Some((client_id, seq)) = session(&headers, request.client_id, request.seq)? {
        command = command.with_session(client_id, seq);
    }
    let (applied, index) = propose_applied(&state, command).await?;
    match applied.result {
        Ok(()) => Ok(Json(CasOk { index, key, ok: true, revision: applied.output.revision })),
        Err(error) => Err(kv_error(error)),
    }
}

fn compare_from(body: &CompareBody) -> Result<Compare, ApiError> {
    check_key(&body.key)?;
    let op = match body.op.as_deref() {
        None | Some("=") | Some("==") => CompareOp::Equal,
        Some("!=") => CompareOp::NotEqual,
        Some(">") => CompareOp::Greater,
        Some("<") => CompareOp::Less,
        Some(other) => {
            return Err(bad_request(
                ErrorCode::BadJson,
                format!("comparison op {other:?} is unknown; use =, !=, > or <"),
            ))
        }
    };
    let targets = [
        body.value.clone().map(CompareTarget::Value),
        body.version.map(CompareTarget::Version),
        body.create_revision.map(CompareTarget::CreateRevision),
        body.mod_revision.map(CompareTarget::ModRevision),
    ];
    let mut given = targets.into_iter().flatten();
    match (given.next(), given.next()) {
        (Some(target), None) => Ok(Compare { key: body.key.clone(), target, op }),
        _ => Err(bad_request(
            ErrorCode::BadJson,
            format!(
                "comparison on {:?} must give exactly one of value, version, createRevision, modRevision",
                body.key
            ),
        )),
    }
}

fn txn_op_from(body: &TxnOpBody) -> Result<TxnOp, ApiError> {
    Ok(match body {
        TxnOpBody::Put(put) => {
            check_key(&put.key)?;
            check_value(&put.value)?;
            TxnOp::Put { key: put.key.clone(), value: put.value.clone(), lease: put.lease }
        }
        TxnOpBody::Delete(spec) => {
            if spec.limit.is_some() || spec.keys_only.is_some() || spec.count_only.is_some() || spec.revision.is_some()
            {
                return Err(bad_request(ErrorCode::BadJson, "a delete takes only key, end or prefix"));
            }
            TxnOp::Delete(key_range(spec)?)
        }
        TxnOpBody::Range(spec) => {
            if spec.consistency.is_some() {
                return Err(bad_request(ErrorCode::BadJson, "a range in a transaction is always linearizable"));
            }
            TxnOp::Range(range_request(spec)?)
        }
    })
}

/// The results of a transaction for `POST /txn`.
fn txn_results(responses: Vec<OpResponse>, branch: &[TxnOp]) -> Vec<TxnOpResult> {
    responses
        .into_iter()
        .zip(branch)
        .map(|(response, op)| match response {
            OpResponse::Put => TxnOpResult::Put {},
            OpResponse::Delete(deleted) => TxnOpResult::Delete { deleted },
            OpResponse::Range(result) => {
                let keys_only = matches!(op, TxnOp::Range(request) if request.keys_only);
                TxnOpResult::Range(range_body(result, keys_only))
            }
        })
        .collect()
}

async fn txn(State(state): State<AppState>, headers: HeaderMap, body: Body) -> Result<Json<TxnOk>, ApiError> {
    let bytes = read_body(body).await?;
    let request: TxnRequest = parse_json(
        &bytes,
        r#"{"compare": [{"key": "...", "value": "..."}], "success": [{"put": {"key": "...", "value": "..."}}], "failure": []}"#,
    )?;
    let txn = Txn {
        compare: request.compare.iter().map(compare_from).collect::<Result<_, _>>()?,
        success: request.success.iter().map(txn_op_from).collect::<Result<_, _>>()?,
        failure: request.failure.iter().map(txn_op_from).collect::<Result<_, _>>()?,
    };
    check_txn_size(&txn)?;
    let mut command = Command::txn(txn.clone());
    if let Some((client_id, seq)) = session(&headers, request.client_id, request.seq)? {
        command = command.with_session(client_id, seq);
    }
    let (applied, index) = propose_applied(&state, command).await?;
    match applied.result {
        Ok(()) | Err(KvError::CompareFailed) => {
            let branch = if applied.output.succeeded { &txn.success } else { &txn.failure };
            Ok(Json(TxnOk {
                index,
                ok: true,
                responses: txn_results(applied.output.responses, branch),
                revision: applied.output.revision,
                succeeded: applied.output.succeeded,
            }))
        }
        Err(error) => Err(kv_error(error)),
    }
}

pub(super) fn check_txn_size(txn: &Txn) -> Result<(), ApiError> {
    if txn.len() > TXN_OPS_MAX {
        return Err(kv_error(KvError::TxnTooLarge));
    }
    Ok(())
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
    let (applied, index) = propose_applied(state, command).await?;
    applied.result.map_err(kv_error)?;
    Ok(index)
}

/// Proposes `command` and waits for it to apply; the state machine's result is the caller's to judge.
pub(super) async fn propose_applied(state: &AppState, command: Command) -> Result<(ApplyResult, u64), ApiError> {
    let reply = state.ask(|reply| Input::Propose { command, reply }).await?;
    match reply {
        WriteReply::Applied(applied, index) => Ok((applied, index.0)),
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

pub(super) fn kv_error(error: KvError) -> ApiError {
    match error {
        KvError::CompareFailed => ApiError::new(
            StatusCode::PRECONDITION_FAILED,
            ErrorCode::CompareFailed,
            "the key is not as expected; nothing changed",
        ),
        KvError::Compacted => bad_request(ErrorCode::Compacted, error.to_string()),
        KvError::FutureRevision => bad_request(ErrorCode::FutureRevision, error.to_string()),
        KvError::TxnTooLarge => bad_request(
            ErrorCode::TxnTooLarge,
            format!("a transaction holds at most {TXN_OPS_MAX} comparisons and operations"),
        ),
        KvError::KeyEmpty => bad_request(ErrorCode::KeyEmpty, "key must not be empty"),
        KvError::KeyNotFound => ApiError::new(StatusCode::NOT_FOUND, ErrorCode::NotFound, "key not found"),
        KvError::SessionExpired => bad_request(ErrorCode::SessionExpired, error.to_string()),
        KvError::BadCommand => ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, ErrorCode::Internal, error.to_string()),
        KvError::LeaseNotFound => ApiError::new(StatusCode::NOT_FOUND, ErrorCode::LeaseNotFound, error.to_string()),
        KvError::LeaseExists => ApiError::new(StatusCode::CONFLICT, ErrorCode::LeaseExists, error.to_string()),
        KvError::LeaseTtlInvalid => bad_request(ErrorCode::BadTtl, error.to_string()),
        other => ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, ErrorCode::Internal, other.to_string()),
    }
}

pub(super) fn rejected(state: &AppState, rejection: Rejection, is_read: bool) -> ApiError {
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
    let members = state.directory.book.members();
    let peers: Vec<String> =
        members.iter().filter(|(&id, _)| id != config.id).map(|(_, address)| address.raft_url.clone()).collect();
    // By name (ids are hashes of the names: their order means nothing to a reader).
    let names = |ids: &[raft_sm::NodeId]| {
        let mut names: Vec<String> = ids.iter().map(|&id| state.directory.name(id)).collect();
        names.sort();
        names
    };
    let membership = &status.membership;
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
        voters: names(&membership.voters),
        learners: names(&membership.learners),
        outgoing: names(&membership.outgoing),
        change_in_progress: status.change_in_progress,
    }))
}

async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    ([(axum::http::header::CONTENT_TYPE, crate::metrics::CONTENT_TYPE)], state.metrics.render())
}
