//! etcd's v3 JSON gateway paths on the client port: `POST /v3/kv/put`,
//! `/v3/kv/range`, `/v3/kv/deleterange`, `/v3/kv/txn`, with etcd's shapes
//! (api/etcdserverpb/rpc.proto in the grpc-gateway JSON mapping): keys and
//! values base64, 64-bit integers as strings (numbers are accepted too), field
//! names as in the proto (`range_end`; the lowerCamel `rangeEnd` is accepted
//! too), default values left out of answers, every answer with a `header`
//! (`cluster_id`, `member_id`, `revision`, `raft_term`).
//!
//! raftkv keys and values are UTF-8 text: a key or value that does not decode
//! to UTF-8 is refused (`bad_encoding`); a `range_end` may be any bytes.
//! Reads are linearizable unless `serializable` is true. Not supported, and
//! refused with a clear error rather than ignored: `lease` on puts inside a
//! transaction (a plain `/v3/kv/put` takes it), sorting other than by key
//! ascending, revision filters, nested transactions. Ranges at a past revision
//! work inside the history window (`compacted` below it). Leases and watch are
//! in [`super::v3_lease`]. Errors are raftkv's JSON error
//! bodies (`{"error": ..., "message": ..., "ok": false}`) with its status codes;
//! a write sent to a follower is answered `409 not_leader` naming the leader.

use super::client::{
    ask_range, bad_request, check_key, check_txn_size, check_value, kv_error, parse_json, propose_applied, read_body,
};
use super::types::ErrorCode;
use super::{ApiError, AppState};
use axum::body::Body;
use axum::extract::State;
use axum::Json;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::Engine;
use raft_sm::kv::{
    Command, Compare, CompareOp, CompareTarget, KeyRange, KeyValue, KvError, OpResponse, RangeRequest, RangeResult,
    Txn, TxnOp,
};
use serde::{Deserialize, Deserializer};
use serde_json::{json, Map, Value};

const PERMISSIVE: GeneralPurposeConfig =
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent);
const STANDARD: GeneralPurpose = GeneralPurpose::new(&base64::alphabet::STANDARD, PERMISSIVE);
const URL_SAFE: GeneralPurpose = GeneralPurpose::new(&base64::alphabet::URL_SAFE, PERMISSIVE);

pub(super) fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn unbase64(field: &str, text: &str) -> Result<Vec<u8>, ApiError> {
    STANDARD.decode(text).or_else(|_| URL_SAFE.decode(text)).map_err(|error| {
        bad_request(
            ErrorCode::BadJson,
            format!("`{field}` is not base64 ({error}); etcd's JSON gateway takes base64 bytes"),
        )
    })
}

fn text(field: &str, encoded: &str) -> Result<String, ApiError> {
    String::from_utf8(unbase64(field, encoded)?).map_err(|_| {
        bad_request(
            ErrorCode::BadEncoding,
            format!("`{field}` does not decode to UTF-8; raftkv keys and values are UTF-8 text"),
        )
    })
}

/// A protobuf 64-bit integer in JSON: a string or a number.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct Int(pub(super) i64);

impl<'de> Deserialize<'de> for Int {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Int, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Either {
            Number(i64),
            Text(String),
        }
        match Either::deserialize(deserializer)? {
            Either::Number(n) => Ok(Int(n)),
            Either::Text(text) => text.parse().map(Int).map_err(serde::de::Error::custom),
        }
    }
}

pub(super) fn non_negative(field: &str, value: Option<Int>) -> Result<u64, ApiError> {
    let value = value.unwrap_or_default().0;
    u64::try_from(value).map_err(|_| bad_request(ErrorCode::BadJson, format!("`{field}` must not be negative")))
}

/// A protobuf enum in JSON: its name or its number.
#[derive(Clone, Debug, PartialEq, Eq)]
enum EnumValue {
    Name(String),
    Number(i64),
}

impl<'de> Deserialize<'de> for EnumValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<EnumValue, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Either {
            Number(i64),
            Text(String),
        }
        Ok(match Either::deserialize(deserializer)? {
            Either::Number(n) => EnumValue::Number(n),
            Either::Text(text) => EnumValue::Name(text),
        })
    }
}

impl EnumValue {
    fn pick(&self, field: &str, names: &[&str]) -> Result<usize, ApiError> {
        let found = match self {
            EnumValue::Name(name) => names.iter().position(|n| n.eq_ignore_ascii_case(name)),
            EnumValue::Number(n) => usize::try_from(*n).ok().filter(|&n| n < names.len()),
        };
        found.ok_or_else(|| bad_request(ErrorCode::BadJson, format!("`{field}` must be one of {}", names.join(", "))))
    }
}

#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct PutRequest {
    #[serde(default)]
    key: String,
    #[serde(default)]
    value: String,
    #[serde(default)]
    lease: Option<Int>,
    #[serde(default, alias = "prevKv")]
    prev_kv: bool,
    #[serde(default, alias = "ignoreValue")]
    ignore_value: bool,
    #[serde(default, alias = "ignoreLease")]
    ignore_lease: bool,
}

#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RangeBody {
    #[serde(default)]
    key: String,
    #[serde(default, alias = "rangeEnd")]
    range_end: String,
    #[serde(default)]
    limit: Option<Int>,
    #[serde(default)]
    revision: Option<Int>,
    #[serde(default, alias = "sortOrder")]
    sort_order: Option<EnumValue>,
    #[serde(default, alias = "sortTarget")]
    sort_target: Option<EnumValue>,
    #[serde(default)]
    serializable: bool,
    #[serde(default, alias = "keysOnly")]
    keys_only: bool,
    #[serde(default, alias = "countOnly")]
    count_only: bool,
    #[serde(default, alias = "minModRevision")]
    min_mod_revision: Option<Int>,
    #[serde(default, alias = "maxModRevision")]
    max_mod_revision: Option<Int>,
    #[serde(default, alias = "minCreateRevision")]
    min_create_revision: Option<Int>,
    #[serde(default, alias = "maxCreateRevision")]
    max_create_revision: Option<Int>,
}

#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct DeleteRangeBody {
    #[serde(default)]
    key: String,
    #[serde(default, alias = "rangeEnd")]
    range_end: String,
    #[serde(default, alias = "prevKv")]
    prev_kv: bool,
}

#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
struct CompareBody {
    #[serde(default)]
    result: Option<EnumValue>,
    #[serde(default)]
    target: Option<EnumValue>,
    #[serde(default)]
    key: String,
    #[serde(default)]
    version: Option<Int>,
    #[serde(default, alias = "createRevision")]
    create_revision: Option<Int>,
    #[serde(default, alias = "modRevision")]
    mod_revision: Option<Int>,
    #[serde(default)]
    value: Option<String>,
    #[serde(default)]
    lease: Option<Int>,
    #[serde(default, alias = "rangeEnd")]
    range_end: String,
}

#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
struct RequestOp {
    #[serde(default, alias = "requestRange")]
    request_range: Option<RangeBody>,
    #[serde(default, alias = "requestPut")]
    request_put: Option<PutRequest>,
    #[serde(default, alias = "requestDeleteRange")]
    request_delete_range: Option<DeleteRangeBody>,
    #[serde(default, alias = "requestTxn")]
    request_txn: Option<Value>,
}

#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct TxnBody {
    #[serde(default)]
    compare: Vec<CompareBody>,
    #[serde(default)]
    success: Vec<RequestOp>,
    #[serde(default)]
    failure: Vec<RequestOp>,
}

/// The etcd `ResponseHeader`.
pub(super) async fn header(state: &AppState, revision: u64) -> Result<Value, ApiError> {
    let status = state.status().await?;
    let config = &state.directory.config;
    Ok(json!({
        "cluster_id": cluster_number(&config.cluster_id).to_string(),
        "member_id": config.id.0.to_string(),
        "revision": revision.to_string(),
        "raft_term": status.term.0.to_string(),
    }))
}

/// etcd's cluster id is a number: the configured id if it is one (decimal or
/// hex), else the FNV-1a hash of its text.
fn cluster_number(id: &str) -> u64 {
    if let Ok(n) = id.parse::<u64>() {
        return n;
    }
    if let Ok(n) = u64::from_str_radix(id, 16) {
        return n;
    }
    id.bytes().fold(0xcbf2_9ce4_8422_2325, |hash, byte| (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3))
}

pub(super) fn key_range(key: &str, range_end: &str) -> Result<KeyRange, ApiError> {
    let key = text("key", key)?;
    let range_end = unbase64("range_end", range_end)?;
    if range_end.is_empty() {
        check_key(&key)?;
    }
    Ok(KeyRange { key, range_end })
}

fn range_request(body: &RangeBody) -> Result<RangeRequest, ApiError> {
    let unsupported = |field: &str, why: &str| bad_request(ErrorCode::BadJson, format!("`{field}`: {why}"));
    if let Some(order) = &body.sort_order {
        if order.pick("sort_order", &["NONE", "ASCEND", "DESCEND"])? == 2 {
            return Err(unsupported("sort_order", "raftkv returns keys in ascending order only"));
        }
    }
    if let Some(target) = &body.sort_target {
        if target.pick("sort_target", &["KEY", "VERSION", "CREATE", "MOD", "VALUE"])? != 0 {
            return Err(unsupported("sort_target", "raftkv sorts by key only"));
        }
    }
    for (field, value) in [
        ("min_mod_revision", body.min_mod_revision),
        ("max_mod_revision", body.max_mod_revision),
        ("min_create_revision", body.min_create_revision),
        ("max_create_revision", body.max_create_revision),
    ] {
        if value.unwrap_or_default().0 != 0 {
            return Err(unsupported(field, "revision filters are not supported"));
        }
    }
    Ok(RangeRequest {
        range: key_range(&body.key, &body.range_end)?,
        limit: non_negative("limit", body.limit)?,
        keys_only: body.keys_only,
        count_only: body.count_only,
        revision: non_negative("revision", body.revision)?,
    })
}

pub(super) fn kv_json(kv: &KeyValue, keys_only: bool) -> Value {
    let mut object = Map::new();
    object.insert("key".into(), json!(b64(kv.key.as_bytes())));
    object.insert("create_revision".into(), json!(kv.create_revision.to_string()));
    object.insert("mod_revision".into(), json!(kv.mod_revision.to_string()));
    object.insert("version".into(), json!(kv.version.to_string()));
    if !keys_only && !kv.value.is_empty() {
        object.insert("value".into(), json!(b64(kv.value.as_bytes())));
    }
    if kv.lease != 0 {
        object.insert("lease".into(), json!(kv.lease.to_string()));
    }
    Value::Object(object)
}

/// A `RangeResponse` body (without its header), defaults left out.
fn range_json(result: &RangeResult, keys_only: bool) -> Map<String, Value> {
    let mut object = Map::new();
    if !result.kvs.is_empty() {
        object.insert("kvs".into(), result.kvs.iter().map(|kv| kv_json(kv, keys_only)).collect());
    }
    if result.more {
        object.insert("more".into(), json!(true));
    }
    if result.count != 0 {
        object.insert("count".into(), json!(result.count.to_string()));
    }
    object
}

pub(super) fn with_header(header: Value, mut body: Map<String, Value>) -> Value {
    let mut object = Map::new();
    object.insert("header".into(), header);
    object.append(&mut body);
    Value::Object(object)
}

fn put_op(body: &PutRequest) -> Result<TxnOp, ApiError> {
    if body.ignore_lease {
        return Err(bad_request(ErrorCode::BadJson, "`ignore_lease` is not supported"));
    }
    if body.ignore_value {
        return Err(bad_request(ErrorCode::BadJson, "`ignore_value` is not supported"));
    }
    let key = text("key", &body.key)?;
    check_key(&key)?;
    let value = text("value", &body.value)?;
    check_value(&value)?;
    Ok(TxnOp::Put { key, value })
}

/// `POST /v3/kv/put`: `{"key", "value", "prev_kv"}` → `{"header", "prev_kv"?}`.
pub(super) async fn put(State(state): State<AppState>, body: Body) -> Result<Json<Value>, ApiError> {
    let bytes = read_body(body).await?;
    let request: PutRequest = parse_json(&bytes, r#"{"key": "<base64>", "value": "<base64>"}"#)?;
    let op = put_op(&request)?;
    let TxnOp::Put { key, value } = &op else { unreachable!("put_op makes puts") };
    let lease = non_negative("lease", request.lease)?;
    if lease != 0 {
        if request.prev_kv {
            return Err(bad_request(ErrorCode::BadJson, "`prev_kv` with a `lease` is not supported"));
        }
        let (applied, _) = propose_applied(&state, Command::put(key.clone(), value.clone(), lease)).await?;
        applied.result.map_err(kv_error)?;
        return Ok(Json(with_header(header(&state, applied.output.revision).await?, Map::new())));
    }
    let mut success = Vec::new();
    if request.prev_kv {
        success.push(TxnOp::Range(RangeRequest { range: KeyRange::single(key.clone()), ..RangeRequest::default() }));
    }
    success.push(op);
    let (applied, _) = propose_applied(&state, Command::txn(Txn { compare: vec![], success, failure: vec![] })).await?;
    applied.result.map_err(kv_error)?;
    let mut body = Map::new();
    if let Some(OpResponse::Range(previous)) = applied.output.responses.first() {
        if let Some(kv) = previous.kvs.first() {
            body.insert("prev_kv".into(), kv_json(kv, false));
        }
    }
    Ok(Json(with_header(header(&state, applied.output.revision).await?, body)))
}

/// `POST /v3/kv/range`.
pub(super) async fn range(State(state): State<AppState>, body: Body) -> Result<Json<Value>, ApiError> {
    let bytes = read_body(body).await?;
    let request: RangeBody = parse_json(&bytes, r#"{"key": "<base64>", "range_end": "<base64>"}"#)?;
    let range = range_request(&request)?;
    let keys_only = range.keys_only;
    let result = ask_range(&state, range, request.serializable).await?;
    Ok(Json(with_header(header(&state, result.revision).await?, range_json(&result, keys_only))))
}

/// `POST /v3/kv/deleterange`: `{"key", "range_end", "prev_kv"}` → `{"header", "deleted", "prev_kvs"?}`.
pub(super) async fn delete_range(State(state): State<AppState>, body: Body) -> Result<Json<Value>, ApiError> {
    let bytes = read_body(body).await?;
    let request: DeleteRangeBody = parse_json(&bytes, r#"{"key": "<base64>", "range_end": "<base64>"}"#)?;
    let range = key_range(&request.key, &request.range_end)?;
    let mut success = Vec::new();
    if request.prev_kv {
        success.push(TxnOp::Range(RangeRequest { range: range.clone(), ..RangeRequest::default() }));
    }
    success.push(TxnOp::Delete(range));
    let (applied, _) = propose_applied(&state, Command::txn(Txn { compare: vec![], success, failure: vec![] })).await?;
    applied.result.map_err(kv_error)?;
    let mut body = Map::new();
    if applied.output.deleted != 0 {
        body.insert("deleted".into(), json!(applied.output.deleted.to_string()));
    }
    if let Some(OpResponse::Range(previous)) = applied.output.responses.first() {
        if !previous.kvs.is_empty() {
            body.insert("prev_kvs".into(), previous.kvs.iter().map(|kv| kv_json(kv, false)).collect());
        }
    }
    Ok(Json(with_header(header(&state, applied.output.revision).await?, body)))
}

fn compare_from(body: &CompareBody) -> Result<Compare, ApiError> {
    if !body.range_end.is_empty() {
        return Err(bad_request(ErrorCode::BadJson, "comparisons over a range (`range_end`) are not supported"));
    }
    let key = text("key", &body.key)?;
    check_key(&key)?;
    let op = match body.result.as_ref().map(|r| r.pick("result", &["EQUAL", "GREATER", "LESS", "NOT_EQUAL"])) {
        None => CompareOp::Equal,
        Some(pick) => [CompareOp::Equal, CompareOp::Greater, CompareOp::Less, CompareOp::NotEqual][pick?],
    };
    let target = match body.target.as_ref().map(|t| t.pick("target", &["VERSION", "CREATE", "MOD", "VALUE", "LEASE"])) {
        None => 0,
        Some(pick) => pick?,
    };
    let target = match target {
        0 => CompareTarget::Version(non_negative("version", body.version)?),
        1 => CompareTarget::CreateRevision(non_negative("create_revision", body.create_revision)?),
        2 => CompareTarget::ModRevision(non_negative("mod_revision", body.mod_revision)?),
        3 => CompareTarget::Value(text("value", body.value.as_deref().unwrap_or_default())?),
        _ => return Err(bad_request(ErrorCode::BadJson, "leases are not supported yet (target LEASE)")),
    };
    let _ = body.lease;
    Ok(Compare { key, target, op })
}

fn request_op(body: &RequestOp) -> Result<(TxnOp, bool), ApiError> {
    let given = usize::from(body.request_range.is_some())
        + usize::from(body.request_put.is_some())
        + usize::from(body.request_delete_range.is_some())
        + usize::from(body.request_txn.is_some());
    if given != 1 {
        return Err(bad_request(
            ErrorCode::BadJson,
            "each operation gives exactly one of request_range, request_put, request_delete_range",
        ));
    }
    if body.request_txn.is_some() {
        return Err(bad_request(ErrorCode::BadJson, "nested transactions (request_txn) are not supported"));
    }
    if let Some(range) = &body.request_range {
        if range.serializable {
            return Err(bad_request(ErrorCode::BadJson, "a range in a transaction is always linearizable"));
        }
        let request = range_request(range)?;
        let keys_only = request.keys_only;
        return Ok((TxnOp::Range(request), keys_only));
    }
    if let Some(put) = &body.request_put {
        if put.prev_kv {
            return Err(bad_request(ErrorCode::BadJson, "`prev_kv` inside a transaction is not supported"));
        }
        return Ok((put_op(put)?, false));
    }
    let delete = body.request_delete_range.as_ref().expect("one is given");
    if delete.prev_kv {
        return Err(bad_request(ErrorCode::BadJson, "`prev_kv` inside a transaction is not supported"));
    }
    Ok((TxnOp::Delete(key_range(&delete.key, &delete.range_end)?), false))
}

/// `POST /v3/kv/txn`: `{"compare", "success", "failure"}` → `{"header", "succeeded", "responses"}`.
pub(super) async fn txn(State(state): State<AppState>, body: Body) -> Result<Json<Value>, ApiError> {
    let bytes = read_body(body).await?;
    let request: TxnBody = parse_json(
        &bytes,
        r#"{"compare": [{"key": "<base64>", "target": "VALUE", "value": "<base64>"}], "success": [{"request_put": {...}}], "failure": []}"#,
    )?;
    let compare = request.compare.iter().map(compare_from).collect::<Result<Vec<_>, _>>()?;
    let success = request.success.iter().map(request_op).collect::<Result<Vec<_>, _>>()?;
    let failure = request.failure.iter().map(request_op).collect::<Result<Vec<_>, _>>()?;
    let txn = Txn {
        compare,
        success: success.iter().map(|(op, _)| op.clone()).collect(),
        failure: failure.iter().map(|(op, _)| op.clone()).collect(),
    };
    check_txn_size(&txn)?;
    let (applied, _) = propose_applied(&state, Command::txn(txn)).await?;
    match applied.result {
        Ok(()) | Err(KvError::CompareFailed) => {}
        Err(error) => return Err(kv_error(error)),
    }
    let revision = applied.output.revision;
    let branch = if applied.output.succeeded { &success } else { &failure };
    let inner = || json!({ "revision": revision.to_string() });
    let responses: Vec<Value> = applied
        .output
        .responses
        .iter()
        .zip(branch)
        .map(|(response, (_, keys_only))| match response {
            OpResponse::Put => json!({ "response_put": { "header": inner() } }),
            OpResponse::Delete(deleted) => {
                let mut body = Map::new();
                body.insert("header".into(), inner());
                if *deleted != 0 {
                    body.insert("deleted".into(), json!(deleted.to_string()));
                }
                json!({ "response_delete_range": body })
            }
            OpResponse::Range(result) => {
                json!({ "response_range": with_header(json!({ "revision": result.revision.to_string() }), range_json(result, *keys_only)) })
            }
        })
        .collect();
    let mut body = Map::new();
    if applied.output.succeeded {
        body.insert("succeeded".into(), json!(true));
    }
    if !responses.is_empty() {
        body.insert("responses".into(), Value::Array(responses));
    }
    Ok(Json(with_header(header(&state, revision).await?, body)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok<T>(result: Result<T, ApiError>) -> T {
        result.unwrap_or_else(|error| panic!("{} {}", error.status(), error.code()))
    }

    #[test]
    fn base64_keys_decode_with_or_without_padding_and_url_safe() {
        assert_eq!(ok(text("key", "Zm9v")), "foo");
        assert_eq!(ok(text("key", "Zm8=")), "fo");
        assert_eq!(ok(text("key", "Zm8")), "fo");
        assert_eq!(ok(unbase64("key", "_w")), vec![0xff]);
        assert!(text("key", "/w==").is_err(), "0xff is not UTF-8");
        assert!(unbase64("key", "***").is_err());
    }

    #[test]
    fn integers_and_enums_take_both_json_forms() {
        let body: RangeBody = serde_json::from_str(r#"{"key":"Zm9v","limit":"2","sort_order":1}"#).unwrap();
        assert_eq!(body.limit, Some(Int(2)));
        let body: RangeBody = serde_json::from_str(r#"{"key":"Zm9v","limit":3,"sortOrder":"DESCEND"}"#).unwrap();
        assert_eq!(body.limit, Some(Int(3)));
        assert!(range_request(&body).is_err(), "descending is refused");
        let compare: CompareBody =
            serde_json::from_str(r#"{"key":"Zm9v","target":"MOD","result":"GREATER","mod_revision":"4"}"#).unwrap();
        let compare = ok(compare_from(&compare));
        assert_eq!((compare.target, compare.op), (CompareTarget::ModRevision(4), CompareOp::Greater));
        assert!(serde_json::from_str::<RangeBody>(r#"{"key":"Zm9v","bogus":1}"#).is_err());
    }

    #[test]
    fn range_answers_leave_defaults_out_as_etcd_does() {
        let result = RangeResult {
            kvs: vec![KeyValue {
                key: "foo".into(),
                value: "bar".into(),
                create_revision: 2,
                mod_revision: 2,
                version: 1,
                lease: 0,
            }],
            more: false,
            count: 1,
            revision: 2,
        };
        let body = Value::Object(range_json(&result, false));
        assert_eq!(
            body,
            json!({"kvs":[{"key":"Zm9v","create_revision":"2","mod_revision":"2","version":"1","value":"YmFy"}],"count":"1"})
        );
        assert_eq!(Value::Object(range_json(&RangeResult::default(), false)), json!({}));
        assert_eq!(cluster_number("12"), 12);
        assert_ne!(cluster_number("my-cluster"), cluster_number("other"));
    }
}
