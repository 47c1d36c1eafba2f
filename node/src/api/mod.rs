//! HTTP servers: the client API ([`client`]) and the Raft RPC ([`raft`]), with the
//! shared middleware (request ids, request logging, request size limits, every
//! error answered as JSON, panics as JSON 500). The JSON bodies are in [`types`].

pub mod client;
pub mod lease;
pub mod members;
pub mod raft;
pub mod types;
pub mod v3;
pub mod v3_lease;
pub mod watch;

use crate::driver::{Directory, Input, StatusView};
use crate::metrics::Metrics;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};
use types::{ErrorBody, ErrorCode, LeaderHint};

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    /// The driver's input queue.
    pub inputs: mpsc::Sender<Input>,
    /// Names and URLs.
    pub directory: Arc<Directory>,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// How long a request waits for the driver.
    pub request_timeout: Duration,
    /// Request id counter.
    pub request_ids: Arc<AtomicU64>,
}

/// An error answer: status code plus the JSON body.
pub struct ApiError {
    status: StatusCode,
    body: ErrorBody,
    retry_after: bool,
    close: bool,
}

impl ApiError {
    /// An error with a machine-readable `error` and a human `message`.
    pub fn new(status: StatusCode, error: ErrorCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            body: ErrorBody::new(error, message),
            retry_after: status == StatusCode::SERVICE_UNAVAILABLE,
            close: false,
        }
    }

    /// Adds the leader hint (`leaderId`, `leader`).
    pub fn with_leader(mut self, leader_id: Option<String>, leader_url: Option<String>) -> Self {
        self.body.hint = Some(LeaderHint { leader: leader_url, leader_id });
        self
    }

    /// Asks the client not to reuse the connection (the request body was not read to its end).
    pub fn closing(mut self) -> Self {
        self.close = true;
        self
    }

    /// The status code.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The error code.
    pub fn code(&self) -> ErrorCode {
        self.body.error
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status, Json(self.body)).into_response();
        if self.retry_after {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        if self.close {
            response.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        response
    }
}

impl AppState {
    /// Sends `input` to the driver and waits for its answer, up to the request timeout.
    pub async fn ask<T>(&self, make: impl FnOnce(oneshot::Sender<T>) -> Input) -> Result<T, ApiError> {
        let (tx, rx) = oneshot::channel();
        if self.inputs.send(make(tx)).await.is_err() {
            return Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                ErrorCode::ShuttingDown,
                "the node is shutting down",
            ));
        }
        match tokio::time::timeout(self.request_timeout, rx).await {
            Ok(Ok(answer)) => Ok(answer),
            Ok(Err(_)) => Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                ErrorCode::ShuttingDown,
                "the node is shutting down",
            )),
            Err(_) => Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                ErrorCode::Timeout,
                format!(
                    "no answer within {} ms (no quorum?); the outcome of a write is unknown, retry with the same clientId/seq",
                    self.request_timeout.as_millis()
                ),
            )),
        }
    }

    /// The driver's status.
    pub async fn status(&self) -> Result<StatusView, ApiError> {
        self.ask(|reply| Input::Status { reply }).await
    }

    /// The leader's name and client URL, if known.
    pub fn leader_hint(&self, leader: Option<raft_sm::NodeId>) -> (Option<String>, Option<String>) {
        match leader {
            Some(id) => (Some(self.directory.name(id)), self.directory.client_url(id)),
            None => (None, None),
        }
    }
}

/// Longest request target (path and query) answered normally; longer gets `414`.
/// A maximal key, percent-encoded, is about 3 KiB.
pub const URI_BYTES_MAX: usize = 8 * 1024;
/// Most request headers answered normally; more get `431`.
pub const HEADERS_MAX: usize = 64;
/// Largest header section (names, values and separators) answered normally;
/// larger gets `431`.
pub const HEADER_BYTES_MAX: usize = 32 * 1024;

/// `414`/`431` for a request over [`URI_BYTES_MAX`], [`HEADERS_MAX`] or
/// [`HEADER_BYTES_MAX`]. These limits sit below the HTTP parser's own (a
/// 64 KiB target, 100 headers, about 400 KiB of head), which answer with an
/// empty body before a request reaches this code.
fn check_request_size(request: &Request) -> Result<(), ApiError> {
    let target_bytes = request.uri().path_and_query().map_or(0, |pq| pq.as_str().len());
    if target_bytes > URI_BYTES_MAX {
        return Err(ApiError::new(
            StatusCode::URI_TOO_LONG,
            ErrorCode::UriTooLong,
            format!("the request target is {target_bytes} bytes; the limit is {URI_BYTES_MAX}"),
        )
        .closing());
    }
    let headers = request.headers();
    let header_bytes: usize = headers.iter().map(|(name, value)| name.as_str().len() + value.len() + 4).sum();
    if headers.len() > HEADERS_MAX || header_bytes > HEADER_BYTES_MAX {
        return Err(ApiError::new(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            ErrorCode::HeadersTooLarge,
            format!(
                "the request has {} headers in {header_bytes} bytes; the limits are {HEADERS_MAX} headers and {HEADER_BYTES_MAX} bytes",
                headers.len()
            ),
        )
        .closing());
    }
    Ok(())
}

/// The code an error status gets when the layer that produced it gave no JSON body.
fn code_of_status(status: StatusCode) -> ErrorCode {
    match status {
        StatusCode::BAD_REQUEST => ErrorCode::BadRequest,
        StatusCode::UNAUTHORIZED => ErrorCode::Unauthorized,
        StatusCode::NOT_FOUND => ErrorCode::NotFound,
        StatusCode::METHOD_NOT_ALLOWED => ErrorCode::MethodNotAllowed,
        StatusCode::REQUEST_TIMEOUT | StatusCode::GATEWAY_TIMEOUT => ErrorCode::Timeout,
        StatusCode::PAYLOAD_TOO_LARGE => ErrorCode::BodyTooLarge,
        StatusCode::URI_TOO_LONG => ErrorCode::UriTooLong,
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE => ErrorCode::HeadersTooLarge,
        StatusCode::UPGRADE_REQUIRED => ErrorCode::UpgradeRequired,
        StatusCode::SERVICE_UNAVAILABLE => ErrorCode::Retry,
        status if status.is_server_error() => ErrorCode::Internal,
        _ => ErrorCode::BadRequest,
    }
}

/// Gives an error response that is not JSON (an extractor's rejection, a body
/// limit, a layer's answer) the documented JSON body: `ok`, `error`, and its
/// text (or the status's reason) as `message`. Other responses pass unchanged.
async fn json_error(response: Response) -> Response {
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if is_json {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let text = match axum::body::to_bytes(body, 4096).await {
        Ok(bytes) => String::from_utf8_lossy(&bytes).trim().to_owned(),
        Err(_) => String::new(),
    };
    let message = if text.is_empty() { status.canonical_reason().unwrap_or("error").to_owned() } else { text };
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.remove(header::CONTENT_TYPE);
    let mut answer = (status, Json(ErrorBody::new(code_of_status(status), message))).into_response();
    for (name, value) in parts.headers.iter() {
        answer.headers_mut().insert(name.clone(), value.clone());
    }
    answer
}

/// Request ids (`X-Request-ID` in and out), request logging and latency
/// metrics, the request size limits, and JSON bodies on every error.
pub async fn observe(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    let too_large = check_request_size(&request).err();
    if too_large.is_none() && request.uri().path().starts_with("/raft/message") {
        // Message batches from tools: no per-batch bookkeeping.
        return json_error(next.run(request).await).await;
    }
    let started = Instant::now();
    // The id as a header value (cloning one is a reference count, not a copy).
    let request_id =
        match request.headers().get("x-request-id").filter(|v| !v.is_empty() && v.len() <= 128 && v.to_str().is_ok()) {
            Some(id) => Some(id.clone()),
            None => {
                let n = state.request_ids.fetch_add(1, Ordering::Relaxed);
                let id = HeaderValue::from_str(&format!("{}-{n}", state.directory.config.name)).ok();
                if let Some(value) = &id {
                    request.headers_mut().insert("x-request-id", value.clone());
                }
                id
            }
        };
    let is_raft = request.uri().path().starts_with("/raft/");
    // Request lines are info: under RUST_LOG=warn (benchmarks) skip copying what they show.
    let logged = (!is_raft && tracing::enabled!(target: "raftkv::http", tracing::Level::INFO))
        .then(|| (request.method().clone(), request.uri().path().to_owned()));
    let mut response = match too_large {
        Some(error) => error.into_response(),
        None => json_error(next.run(request).await).await,
    };
    if let Some(value) = &request_id {
        response.headers_mut().insert("x-request-id", value.clone());
    }
    let elapsed = started.elapsed();
    if !is_raft {
        state.metrics.request_seconds.observe(elapsed);
    }
    if let Some((method, path)) = logged {
        tracing::info!(
            target: "raftkv::http",
            %method,
            path,
            status = response.status().as_u16(),
            latency_us = elapsed.as_micros() as u64,
            request_id = request_id.as_ref().and_then(|v| v.to_str().ok()).unwrap_or(""),
            "request"
        );
    }
    response
}

/// Turns a handler panic into a JSON 500.
pub fn panic_response(panic: Box<dyn std::any::Any + Send + 'static>) -> Response {
    let detail = panic
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| panic.downcast_ref::<&str>().copied())
        .unwrap_or("unknown panic");
    tracing::error!(detail, "handler panicked");
    ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        ErrorCode::Internal,
        "internal error (the handler panicked; see the node's log)",
    )
    .into_response()
}

/// 404 for unknown routes.
pub async fn not_found(request: Request) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        ErrorCode::NotFound,
        format!("no route for {} {}", request.method(), request.uri().path()),
    )
}

/// 405 for a known route with the wrong method.
pub async fn method_not_allowed(request: Request) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        ErrorCode::MethodNotAllowed,
        format!("{} is not allowed on {}", request.method(), request.uri().path()),
    )
}

/// The role as the predecessor printed it.
pub fn role_name(role: raft_sm::Role) -> &'static str {
    match role {
        raft_sm::Role::Follower => "Follower",
        raft_sm::Role::PreCandidate => "PreCandidate",
        raft_sm::Role::Candidate => "Candidate",
        raft_sm::Role::Leader => "Leader",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::routing::get;
    use tower::ServiceExt;
    use tower_http::catch_panic::CatchPanicLayer;

    #[tokio::test]
    async fn a_handler_panic_is_a_json_500() {
        async fn boom() -> &'static str {
            panic!("boom")
        }
        let app = axum::Router::new().route("/boom", get(boom)).layer(CatchPanicLayer::custom(panic_response));
        let response = app.oneshot(Request::builder().uri("/boom").body(Body::empty()).unwrap()).await.unwrap();
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 16).await.unwrap();
        let body: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(body["ok"], false);
        assert_eq!(body["error"], "internal");
    }

    fn app() -> axum::Router {
        async fn text_error() -> (StatusCode, &'static str) {
            (StatusCode::UNPROCESSABLE_ENTITY, "Failed to parse the request body")
        }
        async fn plain() -> &'static str {
            "fine"
        }
        let (inputs, _) = mpsc::channel(1);
        let config = crate::config::ServeArgs::default().resolve(|_| None).expect("the default configuration");
        let state = AppState {
            inputs,
            directory: Arc::new(Directory::new(config)),
            metrics: Arc::new(Metrics::default()),
            request_timeout: Duration::from_millis(10),
            request_ids: Arc::new(AtomicU64::new(1)),
        };
        axum::Router::new()
            .route("/text-error", get(text_error))
            .route("/plain", get(plain))
            .layer(axum::middleware::from_fn_with_state(state.clone(), observe))
    }

    async fn json_of(response: Response) -> serde_json::Value {
        assert_eq!(response.headers()[header::CONTENT_TYPE], "application/json");
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 16).await.unwrap();
        serde_json::from_slice(&bytes).unwrap()
    }

    #[tokio::test]
    async fn an_error_without_a_json_body_gets_one() {
        let response = app().oneshot(Request::builder().uri("/text-error").body(Body::empty()).unwrap()).await.unwrap();
        assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
        assert!(response.headers().contains_key("x-request-id"));
        let body = json_of(response).await;
        assert_eq!(body["ok"], false);
        assert_eq!(body["error"], "bad_request");
        assert_eq!(body["message"], "Failed to parse the request body");
        let response = app().oneshot(Request::builder().uri("/plain").body(Body::empty()).unwrap()).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 16).await.unwrap();
        assert_eq!(&bytes[..], b"fine", "success answers pass unchanged");
    }

    #[tokio::test]
    async fn a_long_target_is_414_and_big_headers_are_431_in_json() {
        let long = format!("/plain?key={}", "k".repeat(URI_BYTES_MAX));
        let response = app().oneshot(Request::builder().uri(long).body(Body::empty()).unwrap()).await.unwrap();
        assert_eq!(response.status(), StatusCode::URI_TOO_LONG);
        assert_eq!(response.headers()[header::CONNECTION], "close");
        assert_eq!(json_of(response).await["error"], "uri_too_long");

        let mut request = Request::builder().uri("/plain");
        for i in 0..=HEADERS_MAX {
            request = request.header(format!("x-h{i}"), "v");
        }
        let response = app().oneshot(request.body(Body::empty()).unwrap()).await.unwrap();
        assert_eq!(response.status(), StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
        assert_eq!(json_of(response).await["error"], "headers_too_large");

        let request = Request::builder().uri("/plain").header("x-big", "b".repeat(HEADER_BYTES_MAX));
        let response = app().oneshot(request.body(Body::empty()).unwrap()).await.unwrap();
        assert_eq!(response.status(), StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
        let body = json_of(response).await;
        assert_eq!((body["ok"].as_bool(), body["error"].as_str()), (Some(false), Some("headers_too_large")));

        let request = Request::builder().uri(format!("/plain?key={}", "k".repeat(URI_BYTES_MAX - 100)));
        let response = app().oneshot(request.body(Body::empty()).unwrap()).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "just under the limit is served");
    }

    #[test]
    fn service_unavailable_carries_retry_after() {
        let response = ApiError::new(StatusCode::SERVICE_UNAVAILABLE, ErrorCode::NoLeader, "x").into_response();
        assert_eq!(response.headers()[header::RETRY_AFTER], "1");
        let response = ApiError::new(StatusCode::CONFLICT, ErrorCode::NotLeader, "x").into_response();
        assert!(!response.headers().contains_key(header::RETRY_AFTER));
    }
}
