//! Client commands: `raftkv set|get|del|range|cas|txn|lease|watch|status`. Every command goes through
//! one [`Calls`]: its [`Calls::request`] tries the endpoints in turn, follows
//! `409` leader hints, retries `503` and connection errors, and stops at one
//! total deadline (`--timeout-ms`, connecting included). Writes carry a client
//! session so that a retried write applies once. The answers are parsed into
//! the server's own types ([`crate::api::types`]).

use crate::api::types::{
    CasOk, CasRequest, ErrorBody, ErrorCode, Health, KeyQuery, LeaseGrantRequest, LeaseIdRequest, LeaseListOk, LeaseOk,
    LeaseTtlOk, LeaseTtlQuery, RangeOk, RangeSpec, ReadOk, SetRequest, TxnOk, TxnRequest, WatchLine, WriteOk,
};
use crate::cli::{ClientArgs, LeaseAction};
use crate::config::split_list;
use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Longest wait for one TCP (and later TLS) connection before the next endpoint is tried.
const CONNECT_TIMEOUT_MS_MAX: u64 = 1_000;
/// Pause before another round over the endpoints, or after a `503`.
const RETRY_PAUSE_MS: u64 = 100;
/// Longest wait for one node's `/health` in `raftkv status`.
const HEALTH_TIMEOUT_MS_MAX: u64 = 2_000;
/// What the errors suggest when no node answers.
const START_HINT: &str =
    "is the cluster running? (`raftkv cluster --nodes 3`, or point --endpoints / RAFTKV_ENDPOINTS at it)";

/// The endpoints, each `http://host:port` or `https://host:port` as given
/// (a bare `host:port` gets `http://`), without a trailing `/`.
pub fn parse_endpoints(list: &str) -> Result<Vec<String>, String> {
    let mut endpoints = Vec::new();
    for raw in split_list(list) {
        let (scheme, rest) = raw.split_once("://").unwrap_or(("http", raw.as_str()));
        if scheme != "http" && scheme != "https" {
            return Err(format!("endpoint {raw:?}: scheme {scheme}:// is not supported; use http:// or https://"));
        }
        let rest = rest.trim_end_matches('/');
        if rest.is_empty() {
            return Err(format!("endpoint {raw:?} names no host; expected e.g. http://127.0.0.1:8080"));
        }
        let endpoint = format!("{scheme}://{rest}");
        let url = reqwest::Url::parse(&endpoint).map_err(|error| format!("endpoint {raw:?} is not a URL: {error}"))?;
        if url.host_str().is_none_or(str::is_empty) {
            return Err(format!("endpoint {raw:?} names no host; expected e.g. http://127.0.0.1:8080"));
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(format!("endpoint {raw:?}: give only scheme, host and port (and a path prefix, if any)"));
        }
        endpoints.push(endpoint);
    }
    if endpoints.is_empty() {
        return Err("no endpoints given: pass --endpoints http://host:port,... (or set RAFTKV_ENDPOINTS)".into());
    }
    Ok(endpoints)
}

/// The HTTP client of every client command (the one place for its TLS settings).
pub fn http_client(args: &ClientArgs) -> Result<reqwest::Client, String> {
    let mut builder = reqwest::Client::builder()
        .connect_timeout(Duration::from_millis(args.timeout_ms.clamp(1, CONNECT_TIMEOUT_MS_MAX)));
    if let Some(ca) = &args.ca_file {
        builder = crate::tls::with_ca_file(builder, ca)?.tls_built_in_root_certs(false);
    }
    builder.build().map_err(|error| format!("cannot set up the HTTP client: {}", cause(&error)))
}

/// A client id unlikely to collide: wall-clock nanoseconds mixed with the pid.
fn client_id() -> u64 {
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64);
    nanos ^ (u64::from(std::process::id()) << 40)
}

/// The cause of a failed request in a few words: "connection refused",
/// "timed out", or the innermost error's text.
fn cause(error: &reqwest::Error) -> String {
    if error.is_timeout() {
        return "timed out".into();
    }
    let mut innermost = error.to_string();
    let mut source: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(error);
    while let Some(inner) = source {
        if let Some(io) = inner.downcast_ref::<std::io::Error>() {
            match io.kind() {
                std::io::ErrorKind::ConnectionRefused => return "connection refused".into(),
                std::io::ErrorKind::ConnectionReset => return "connection reset".into(),
                std::io::ErrorKind::TimedOut => return "timed out".into(),
                _ => {}
            }
        }
        innermost = inner.to_string();
        source = inner.source();
    }
    innermost
}

/// What one request to one endpoint came to.
enum Attempt<T> {
    /// `2xx`, parsed.
    Done(T),
    /// An error answer that retrying cannot change (`400`, `404`, ...).
    Refused(StatusCode, ErrorBody),
    /// `409` naming the leader.
    Redirect(String),
    /// `503` (with the leader, if the node knows one).
    Unavailable(ErrorBody),
    /// No answer: the cause.
    Unreachable(String),
}

/// What made a command fail.
#[derive(Debug)]
pub enum CallError {
    /// A node answered with an error that retrying cannot change.
    Answer {
        /// Its status.
        status: StatusCode,
        /// Its body.
        body: ErrorBody,
    },
    /// No usable answer before the deadline: what happened, and what to do.
    GaveUp(String),
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CallError::Answer { status, body } => write!(f, "{} ({}): {}", body.error, status.as_u16(), body.message),
            CallError::GaveUp(problem) => f.write_str(problem),
        }
    }
}

/// The request side of the client commands: endpoints, one HTTP client and one deadline.
#[derive(Clone)]
pub struct Calls {
    http: reqwest::Client,
    endpoints: Vec<String>,
    started: Instant,
    deadline: Instant,
    timeout_ms: u64,
    /// Sent as `Authorization: Bearer` (the membership API wants the cluster token).
    token: Option<String>,
}

impl Calls {
    /// From the command's flags; the deadline starts now.
    pub fn new(args: &ClientArgs) -> Result<Calls, String> {
        if args.timeout_ms == 0 {
            return Err("--timeout-ms must be at least 1".into());
        }
        let endpoints = parse_endpoints(&args.endpoints)?;
        let started = Instant::now();
        Ok(Calls {
            http: http_client(args)?,
            endpoints,
            started,
            deadline: started + Duration::from_millis(args.timeout_ms),
            timeout_ms: args.timeout_ms,
            token: None,
        })
    }

    /// Sends `token` as a bearer token with every request.
    pub fn with_token(mut self, token: Option<String>) -> Calls {
        self.token = token.filter(|token| !token.is_empty());
        self
    }

    fn remaining(&self) -> Duration {
        self.deadline.saturating_duration_since(Instant::now())
    }

    /// One request to `base`, bounded by `within` (and the deadline), answer included.
    async fn attempt<T: DeserializeOwned>(
        &self,
        base: &str,
        method: &Method,
        path: &str,
        query: Option<&serde_json::Value>,
        body: Option<&serde_json::Value>,
        within: Duration,
    ) -> Attempt<T> {
        let within = within.min(self.remaining());
        if within.is_zero() {
            return Attempt::Unreachable("timed out".into());
        }
        let mut builder = self.http.request(method.clone(), format!("{base}{path}")).timeout(within);
        if let Some(query) = query {
            builder = builder.query(query);
        }
        if let Some(body) = body {
            builder = builder.json(body);
        }
        if let Some(token) = &self.token {
            builder = builder.bearer_auth(token);
        }
        let exchange = async {
            let response = builder.send().await?;
            let status = response.status();
            Ok::<_, reqwest::Error>((status, response.bytes().await?))
        };
        let (status, bytes) = match tokio::time::timeout(within, exchange).await {
            Ok(Ok(answer)) => answer,
            Ok(Err(error)) if error.is_builder() && base.starts_with("https://") => {
                return Attempt::Unreachable("this build of raftkv has no TLS support for https:// endpoints".into())
            }
            Ok(Err(error)) => return Attempt::Unreachable(cause(&error)),
            Err(_) => return Attempt::Unreachable("timed out".into()),
        };
        if status.is_success() {
            return match serde_json::from_slice(&bytes) {
                Ok(answer) => Attempt::Done(answer),
                Err(error) => Attempt::Unreachable(format!(
                    "answered {status} with an unexpected body ({error}); is it a raftkv node?"
                )),
            };
        }
        let body: ErrorBody = serde_json::from_slice(&bytes).unwrap_or_else(|_| {
            let text = String::from_utf8_lossy(&bytes[..bytes.len().min(200)]).trim().to_owned();
            ErrorBody::new(ErrorCode::Unknown, format!("not a raftkv answer: {text:?}; is it a raftkv node?"))
        });
        match status {
            StatusCode::CONFLICT if body.leader_url().is_some() => {
                Attempt::Redirect(body.leader_url().unwrap_or_default().trim_end_matches('/').to_owned())
            }
            StatusCode::SERVICE_UNAVAILABLE => Attempt::Unavailable(body),
            _ => Attempt::Refused(status, body),
        }
    }

    /// Sends a request until a node gives a final answer: follows `409`
    /// leader hints, retries `503` and unreachable nodes, round-robin over
    /// the endpoints, until the deadline.
    pub async fn request<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        query: Option<&serde_json::Value>,
        body: Option<&serde_json::Value>,
    ) -> Result<T, CallError> {
        let mut target = self.endpoints[0].clone();
        let mut next = 1;
        // Why each endpoint (or leader hint) did not answer, in order.
        let mut unreachable: Vec<(String, String)> = Vec::new();
        let mut last_unavailable: Option<(String, ErrorBody)> = None;
        let mut redirects = 0;
        loop {
            if self.remaining().is_zero() {
                return Err(self.gave_up(&unreachable, last_unavailable, redirects));
            }
            let pause = match self.attempt(&target, &method, path, query, body, self.remaining()).await {
                Attempt::Done(answer) => return Ok(answer),
                Attempt::Refused(status, body) => return Err(CallError::Answer { status, body }),
                Attempt::Redirect(leader) => {
                    redirects += 1;
                    target = leader;
                    // Hints that go round in circles (an election under way): slow down.
                    redirects % (self.endpoints.len() + 1) == 0
                }
                Attempt::Unavailable(body) => {
                    let hint = body.leader_url().map(|url| url.trim_end_matches('/').to_owned());
                    last_unavailable = Some((target.clone(), body));
                    target = match hint {
                        Some(leader) if leader != target => leader,
                        _ => self.next_endpoint(&mut next),
                    };
                    true
                }
                Attempt::Unreachable(cause) => {
                    if last_unavailable.as_ref().is_some_and(|(url, _)| *url == target) {
                        last_unavailable = None; // Its latest news is that it does not answer.
                    }
                    unreachable.retain(|(url, _)| *url != target);
                    unreachable.push((target.clone(), cause));
                    // A pause once every endpoint has been tried in this round.
                    let round_done = next % self.endpoints.len() == 0;
                    target = self.next_endpoint(&mut next);
                    round_done
                }
            };
            if pause {
                tokio::time::sleep(Duration::from_millis(RETRY_PAUSE_MS).min(self.remaining())).await;
            }
        }
    }

    fn next_endpoint(&self, next: &mut usize) -> String {
        let endpoint = self.endpoints[*next % self.endpoints.len()].clone();
        *next += 1;
        endpoint
    }

    /// The error once the deadline passed: the cause, and what to try.
    fn gave_up(
        &self,
        unreachable: &[(String, String)],
        last_unavailable: Option<(String, ErrorBody)>,
        redirects: usize,
    ) -> CallError {
        let elapsed_ms = self.started.elapsed().as_millis();
        let budget = format!("gave up after {elapsed_ms} ms (--timeout-ms {})", self.timeout_ms);
        if let Some((endpoint, body)) = last_unavailable {
            let hint = match body.error {
                ErrorCode::NoLeader | ErrorCode::Retry | ErrorCode::TransferInProgress => {
                    "the cluster has no leader right now: are a majority of the nodes running? (`raftkv status`); or raise --timeout-ms"
                }
                ErrorCode::Timeout | ErrorCode::OutcomeUnknown => {
                    "the write may or may not have applied; running the command again is safe for `get`, and for `set`/`del` it applies the write at most once more"
                }
                ErrorCode::Busy => "the node is overloaded; retry later or raise --timeout-ms",
                ErrorCode::ShuttingDown => "the node is stopping; use another endpoint",
                _ => "retry, or raise --timeout-ms",
            };
            return CallError::GaveUp(format!(
                "{budget}: {endpoint} answered 503 {}: {} — {hint}",
                body.error, body.message
            ));
        }
        if unreachable.is_empty() {
            let problem = if redirects > 0 {
                format!(
                    "{budget}: the leader hints kept changing (an election under way?) — retry, or raise --timeout-ms"
                )
            } else {
                format!("{budget} before any node was asked — raise --timeout-ms")
            };
            return CallError::GaveUp(problem);
        }
        CallError::GaveUp(format!("{budget}: {}", no_answer(unreachable)))
    }
}

/// "no node answered at A,B: connection refused — is the cluster running? ...",
/// or one cause per endpoint when they differ.
fn no_answer(unreachable: &[(String, String)]) -> String {
    let urls: Vec<&str> = unreachable.iter().map(|(url, _)| url.as_str()).collect();
    let first = &unreachable[0].1;
    let causes = if unreachable.iter().all(|(_, cause)| cause == first) {
        first.clone()
    } else {
        unreachable.iter().map(|(url, cause)| format!("{url}: {cause}")).collect::<Vec<_>>().join("; ")
    };
    format!("no node answered at {}: {causes} — {START_HINT}", urls.join(","))
}

pub(crate) fn report<T>(result: Result<T, CallError>, print: impl FnOnce(T)) -> i32 {
    match result {
        Ok(answer) => {
            print(answer);
            0
        }
        Err(error) => {
            eprintln!("error: {error}");
            1
        }
    }
}

fn print_json<T: serde::Serialize>(answer: T) {
    println!("{}", serde_json::to_string(&answer).expect("a response body serializes"));
}

/// Runs `command` with a [`Calls`] made from `args`; a bad flag is exit 2.
pub(crate) async fn with_calls<F: std::future::Future<Output = i32>>(
    args: &ClientArgs,
    command: impl FnOnce(Calls) -> F,
) -> i32 {
    match Calls::new(args) {
        Ok(calls) => command(calls).await,
        Err(problem) => {
            eprintln!("error: {problem}");
            2
        }
    }
}

/// `raftkv set KEY VALUE`.
pub async fn set(args: &ClientArgs, key: &str, value: &str, lease: Option<u64>) -> i32 {
    let body =
        SetRequest { key: key.to_owned(), value: value.to_owned(), client_id: Some(client_id()), seq: Some(1), lease };
    let body = to_json(&body);
    with_calls(args, |calls| async move {
        report(calls.request::<WriteOk>(Method::PUT, "/set", None, Some(&body)).await, print_json)
    })
    .await
}

/// `raftkv get KEY`: prints the value.
pub async fn get(args: &ClientArgs, key: &str, stale: bool) -> i32 {
    let query =
        KeyQuery { key: Some(key.to_owned()), consistency: stale.then(|| "stale".to_owned()), ..KeyQuery::default() };
    let query = to_json(&query);
    with_calls(args, |calls| async move {
        report(calls.request::<ReadOk>(Method::GET, "/get", Some(&query), None).await, |answer| {
            println!("{}", answer.value)
        })
    })
    .await
}

/// `raftkv del KEY`.
pub async fn del(args: &ClientArgs, key: &str) -> i32 {
    let query = KeyQuery { key: Some(key.to_owned()), client_id: Some(client_id()), seq: Some(1), consistency: None };
    let query = to_json(&query);
    with_calls(args, |calls| async move {
        report(calls.request::<WriteOk>(Method::DELETE, "/delete", Some(&query), None).await, print_json)
    })
    .await
}

fn to_json<T: serde::Serialize>(value: &T) -> serde_json::Value {
    serde_json::to_value(value).expect("a request serializes")
}

/// `raftkv range`: prints the `GET /range` answer.
pub async fn range(args: &ClientArgs, spec: RangeSpec) -> i32 {
    let query = to_json(&spec);
    with_calls(args, |calls| async move {
        report(calls.request::<RangeOk>(Method::GET, "/range", Some(&query), None).await, print_json)
    })
    .await
}

/// `raftkv cas`: prints the `POST /cas` answer; exit 1 (`compare_failed`) when the key is not as expected.
pub async fn cas(args: &ClientArgs, mut request: CasRequest) -> i32 {
    request.client_id = Some(client_id());
    request.seq = Some(1);
    let body = to_json(&request);
    with_calls(args, |calls| async move {
        report(calls.request::<CasOk>(Method::POST, "/cas", None, Some(&body)).await, print_json)
    })
    .await
}

/// `raftkv txn JSON` (`-`: read it from stdin): prints the `POST /txn` answer.
pub async fn txn(args: &ClientArgs, json: &str) -> i32 {
    let text = if json == "-" {
        let mut text = String::new();
        if let Err(error) = std::io::Read::read_to_string(&mut std::io::stdin(), &mut text) {
            eprintln!("error: cannot read the transaction from stdin: {error}");
            return 2;
        }
        text
    } else {
        json.to_owned()
    };
    let mut request: TxnRequest = match serde_json::from_str(&text) {
        Ok(request) => request,
        Err(error) => {
            eprintln!(
                r#"error: the transaction is not valid JSON ({error}); expected {{"compare": [{{"key": "k", "value": "v"}}], "success": [{{"put": {{"key": "k", "value": "w"}}}}], "failure": []}}"#
            );
            return 2;
        }
    };
    request.client_id = Some(client_id());
    request.seq = Some(1);
    let body = to_json(&request);
    with_calls(args, |calls| async move {
        report(calls.request::<TxnOk>(Method::POST, "/txn", None, Some(&body)).await, print_json)
    })
    .await
}

/// `raftkv lease grant|keepalive|revoke|ttl|list`: prints the answer.
pub async fn lease(action: LeaseAction) -> i32 {
    let (args, path, body, every_ms) = match &action {
        LeaseAction::Ttl { id, keys, client } => {
            let query = to_json(&LeaseTtlQuery { id: *id, keys: *keys, consistency: None });
            return with_calls(client, |calls| async move {
                report(
                    calls.request::<LeaseTtlOk>(Method::GET, "/lease/timetolive", Some(&query), None).await,
                    print_json,
                )
            })
            .await;
        }
        LeaseAction::List { client } => {
            return with_calls(client, |calls| async move {
                report(calls.request::<LeaseListOk>(Method::GET, "/lease/list", None, None).await, print_json)
            })
            .await;
        }
        LeaseAction::Grant { ttl, id, client } => {
            let body = LeaseGrantRequest { ttl: *ttl, id: *id, client_id: Some(client_id()), seq: Some(1) };
            (client, "/lease/grant", to_json(&body), None)
        }
        LeaseAction::Keepalive { id, every_ms, client } => {
            (client, "/lease/keepalive", to_json(&LeaseIdRequest { id: *id, client_id: None, seq: None }), *every_ms)
        }
        LeaseAction::Revoke { id, client } => {
            let body = LeaseIdRequest { id: *id, client_id: Some(client_id()), seq: Some(1) };
            (client, "/lease/revoke", to_json(&body), None)
        }
    };
    let Some(every_ms) = every_ms.filter(|&ms| ms > 0) else {
        return with_calls(args, |calls| async move {
            report(calls.request::<LeaseOk>(Method::POST, path, None, Some(&body)).await, print_json)
        })
        .await;
    };
    // Keep alive until the lease is gone (or a call gives up): a fresh deadline per call.
    loop {
        let body = body.clone();
        let code = with_calls(args, |calls| async move {
            report(calls.request::<LeaseOk>(Method::POST, path, None, Some(&body)).await, print_json)
        })
        .await;
        if code != 0 {
            return code;
        }
        tokio::time::sleep(Duration::from_millis(every_ms)).await;
    }
}

/// `raftkv watch KEY [--prefix] [--rev N] [--count N]`: prints each change as
/// one JSON line (`{"type", "kv", "prevKv"?}`). When a stream ends — the node
/// died, the connection broke, it cut a slow reader off — it reconnects to the
/// next endpoint and resumes after the last revision every event was printed
/// for, so nothing is missed or printed twice. A `compacted` answer ends it
/// (exit 1): the changes it would need are gone.
pub async fn watch(args: &ClientArgs, key: &str, prefix: bool, rev: Option<u64>, count: Option<u64>) -> i32 {
    let endpoints = match parse_endpoints(&args.endpoints).and_then(|endpoints| Ok((endpoints, http_client(args)?))) {
        Ok(found) => found,
        Err(problem) => {
            eprintln!("error: {problem}");
            return 2;
        }
    };
    let (endpoints, http) = endpoints;
    let mut next = rev.unwrap_or(0);
    let mut printed = 0u64;
    let mut endpoint = 0;
    let mut failures = 0;
    loop {
        let base = &endpoints[endpoint % endpoints.len()];
        let mut query = vec![(if prefix { "prefix" } else { "key" }, key.to_owned())];
        if next != 0 {
            query.push(("rev", next.to_string()));
        }
        match http.get(format!("{base}/watch")).query(&query).send().await {
            Ok(mut response) if response.status().is_success() => {
                failures = 0;
                let mut pending: Vec<u8> = Vec::new();
                while let Ok(Some(chunk)) = response.chunk().await {
                    pending.extend_from_slice(&chunk);
                    while let Some(end) = pending.iter().position(|&b| b == b'\n') {
                        let line: Vec<u8> = pending.drain(..=end).collect();
                        let Ok(line) = serde_json::from_slice::<WatchLine>(&line) else { continue };
                        for event in &line.events {
                            println!("{}", serde_json::to_string(event).expect("serializes"));
                            printed += 1;
                            if count.is_some_and(|count| printed >= count) {
                                return 0;
                            }
                        }
                        next = line.revision + 1;
                        if let Some(error) = line.error {
                            if error == ErrorCode::Compacted {
                                eprintln!("error: {}", line.message.unwrap_or_default());
                                return 1;
                            }
                            eprintln!("watch: {error} from {base}; resuming at revision {next}");
                        }
                    }
                }
            }
            Ok(response) => {
                let status = response.status();
                let body = response.text().await.unwrap_or_default();
                if status.is_client_error() {
                    eprintln!("error: {status}: {body}");
                    return 1;
                }
                failures += 1;
            }
            Err(error) => {
                eprintln!("watch: {base}: {}; trying the next endpoint", cause(&error));
                failures += 1;
            }
        }
        endpoint += 1;
        if failures >= endpoints.len() {
            tokio::time::sleep(Duration::from_millis(RETRY_PAUSE_MS * 5)).await;
        }
    }
}

/// `raftkv status`: one line per endpoint, asked all at once. Exits 0 only
/// when some node reports a leader.
pub async fn status(args: &ClientArgs) -> i32 {
    with_calls(args, |calls| async move {
        let per_node = Duration::from_millis(HEALTH_TIMEOUT_MS_MAX);
        // Every node at once (one stuck node must not use up the others' time), answers in order.
        let asks: Vec<_> = calls
            .endpoints
            .iter()
            .map(|endpoint| {
                let (calls, endpoint) = (calls.clone(), endpoint.clone());
                tokio::spawn(async move {
                    calls.attempt::<Health>(&endpoint, &Method::GET, "/health", None, None, per_node).await
                })
            })
            .collect();
        let mut answers = Vec::with_capacity(asks.len());
        for ask in asks {
            answers.push(ask.await.unwrap_or_else(|error| Attempt::Unreachable(format!("the request failed: {error}"))));
        }
        println!(
            "{:<28} {:<12} {:<13} {:>5} {:<12} {:>8} {:>8}",
            "ENDPOINT", "ID", "STATE", "TERM", "LEADER", "COMMIT", "HB_AGO"
        );
        let mut unreachable = Vec::new();
        let mut leaders = Vec::new();
        let mut membership = None;
        for (endpoint, answer) in calls.endpoints.iter().zip(answers) {
            match answer {
                Attempt::Done(h) => {
                    if h.state == "Leader" || (membership.is_none() && !h.voters.is_empty()) {
                        membership = Some(membership_line(&h));
                    }
                    let or_dash = |v: Option<String>| v.unwrap_or_else(|| "-".to_owned());
                    if let Some(leader) = &h.leader_id {
                        leaders.push(leader.clone());
                    }
                    println!(
                        "{:<28} {:<12} {:<13} {:>5} {:<12} {:>8} {:>8}",
                        endpoint,
                        h.id,
                        h.state,
                        h.term,
                        or_dash(h.leader_id),
                        h.commit_index,
                        or_dash(h.last_heartbeat_ago_ms.map(|ms| ms.to_string())),
                    );
                }
                Attempt::Unreachable(cause) => {
                    println!("{endpoint:<28} unreachable: {cause}");
                    unreachable.push((endpoint.clone(), cause));
                }
                Attempt::Refused(_, body) | Attempt::Unavailable(body) => {
                    println!("{endpoint:<28} error: {} {}", body.error, body.message);
                    unreachable.push((endpoint.clone(), format!("{}: {}", body.error, body.message)));
                }
                Attempt::Redirect(_) => println!("{endpoint:<28} error: unexpected redirect"),
            }
        }
        if let Some(line) = membership {
            println!("{line}");
        }
        if unreachable.len() == calls.endpoints.len() {
            eprintln!("error: {}", no_answer(&unreachable));
            return 1;
        }
        if leaders.is_empty() {
            eprintln!(
                "error: no node reports a leader ({} of {} answered) — an election may be under way, or a majority of the nodes is down",
                calls.endpoints.len() - unreachable.len(),
                calls.endpoints.len()
            );
            return 1;
        }
        leaders.sort();
        leaders.dedup();
        if leaders.len() > 1 {
            eprintln!("warning: the nodes name different leaders ({}); a leader change is under way", leaders.join(", "));
        }
        0
    })
    .await
}

/// `membership (as <node> sees it): voters=a,b,c learners=d [change in progress]`.
fn membership_line(health: &Health) -> String {
    let mut line = format!("membership (as {} sees it): voters={}", health.id, health.voters.join(","));
    if !health.learners.is_empty() {
        line.push_str(&format!(" learners={}", health.learners.join(",")));
    }
    if !health.outgoing.is_empty() {
        line.push_str(&format!(" outgoing={}", health.outgoing.join(",")));
    }
    if health.change_in_progress {
        line.push_str(" [change in progress]");
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_keep_their_scheme_and_lose_a_trailing_slash() {
        let endpoints = parse_endpoints("https://a.example:8443/, http://127.0.0.1:8080,127.0.0.1:8081/").unwrap();
        assert_eq!(endpoints, ["https://a.example:8443", "http://127.0.0.1:8080", "http://127.0.0.1:8081"]);
    }

    #[test]
    fn bad_endpoints_are_refused_with_the_reason() {
        let error = parse_endpoints("ftp://x:1").unwrap_err();
        assert!(error.contains("ftp:// is not supported"), "{error}");
        let error = parse_endpoints(" , ").unwrap_err();
        assert!(error.contains("no endpoints given"), "{error}");
        let error = parse_endpoints("http://").unwrap_err();
        assert!(error.contains("http://"), "{error}");
        let error = parse_endpoints("http://h:1?x=1").unwrap_err();
        assert!(error.contains("only scheme, host and port"), "{error}");
    }

    #[test]
    fn no_answer_names_the_cause_once_or_per_endpoint() {
        let same = [
            ("http://a:1".to_owned(), "connection refused".to_owned()),
            ("http://b:2".to_owned(), "connection refused".to_owned()),
        ];
        let text = no_answer(&same);
        assert!(
            text.starts_with("no node answered at http://a:1,http://b:2: connection refused — is the cluster running?"),
            "{text}"
        );
        let mixed = [
            ("http://a:1".to_owned(), "connection refused".to_owned()),
            ("http://b:2".to_owned(), "timed out".to_owned()),
        ];
        let text = no_answer(&mixed);
        assert!(text.contains("http://a:1: connection refused; http://b:2: timed out"), "{text}");
    }
}
