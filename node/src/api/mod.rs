//! HTTP servers: the client API ([`client`]) and the Raft RPC ([`raft`]), with the
//! shared middleware (request ids, request logging, panics as JSON 500).

pub mod client;
pub mod raft;

use crate::driver::{Directory, Input, StatusView};
use crate::metrics::Metrics;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};

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
    body: Value,
    retry_after: bool,
    close: bool,
}

impl ApiError {
    /// An error with a machine-readable `error` and a human `message`.
    pub fn new(status: StatusCode, error: &str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            body: json!({ "ok": false, "error": error, "message": message.into() }),
            retry_after: status == StatusCode::SERVICE_UNAVAILABLE,
            close: false,
        }
    }

    /// Adds the leader hint (`leaderId`, `leader`).
    pub fn with_leader(mut self, leader_id: Option<String>, leader_url: Option<String>) -> Self {
        self.body["leaderId"] = json!(leader_id);
        self.body["leader"] = json!(leader_url);
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
            return Err(ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "shutting_down", "the node is shutting down"));
        }
        match tokio::time::timeout(self.request_timeout, rx).await {
            Ok(Ok(answer)) => Ok(answer),
            Ok(Err(_)) => Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "shutting_down",
                "the node is shutting down",
            )),
            Err(_) => Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "timeout",
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

/// Request ids (`X-Request-ID` in and out), request logging and latency metrics.
pub async fn observe(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    if request.uri().path().starts_with("/raft/message") {
        return next.run(request).await; // Message batches from tools: no per-batch bookkeeping.
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
    let mut response = next.run(request).await;
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
        "internal",
        "internal error (the handler panicked; see the node's log)",
    )
    .into_response()
}

/// 404 for unknown routes.
pub async fn not_found(request: Request) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        format!("no route for {} {}", request.method(), request.uri().path()),
    )
}

/// 405 for a known route with the wrong method.
pub async fn method_not_allowed(request: Request) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
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
        let body: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(body["ok"], false);
        assert_eq!(body["error"], "internal");
    }

    #[test]
    fn service_unavailable_carries_retry_after() {
        let response = ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "no_leader", "x").into_response();
        assert_eq!(response.headers()[header::RETRY_AFTER], "1");
        let response = ApiError::new(StatusCode::CONFLICT, "not_leader", "x").into_response();
        assert!(!response.headers().contains_key(header::RETRY_AFTER));
    }
}
