//! Client commands: `raftkv set|get|del|status`. They try the endpoints in turn,
//! follow `409` leader hints, retry `503` and connection errors until the
//! timeout, and stamp writes with a session so a retried write applies once.

use crate::cli::ClientArgs;
use crate::config::split_list;
use reqwest::{Method, StatusCode};
use serde_json::Value;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

fn endpoints(args: &ClientArgs) -> Vec<String> {
    split_list(&args.endpoints)
        .into_iter()
        .map(|e| {
            let e = e.trim_end_matches('/').to_owned();
            if e.starts_with("http://") || e.starts_with("https://") {
                e
            } else {
                format!("http://{e}")
            }
        })
        .collect()
}

fn client(args: &ClientArgs) -> Result<reqwest::Client, String> {
    let mut builder = reqwest::Client::builder().timeout(Duration::from_secs(6));
    if let Some(ca) = &args.ca_file {
        builder = crate::tls::with_ca_file(builder, ca)?.tls_built_in_root_certs(false);
    }
    builder.build().map_err(|error| format!("cannot build the HTTP client: {error}"))
}

/// A client id unlikely to collide: wall-clock nanoseconds mixed with the pid.
fn client_id() -> u64 {
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64);
    nanos ^ (u64::from(std::process::id()) << 40)
}

/// Sends a request, following leader hints and retrying; returns the final status and body.
async fn request(
    args: &ClientArgs,
    method: Method,
    path_and_query: &str,
    body: Option<Value>,
) -> Result<(StatusCode, Value), String> {
    let endpoints = endpoints(args);
    if endpoints.is_empty() {
        return Err("no endpoints given".into());
    }
    let http = client(args)?;
    let deadline = Instant::now() + Duration::from_millis(args.timeout_ms);
    let mut target = endpoints[0].clone();
    let mut next = 1;
    let mut last_problem = String::new();
    while Instant::now() < deadline {
        let url = format!("{target}{path_and_query}");
        let mut builder = http.request(method.clone(), &url);
        if let Some(body) = &body {
            builder = builder.json(body);
        }
        match builder.send().await {
            Ok(response) => {
                let status = response.status();
                let body: Value = response.json().await.unwrap_or(Value::Null);
                match status {
                    StatusCode::CONFLICT => {
                        if let Some(leader) = body["leader"].as_str() {
                            last_problem = format!("{target} is not the leader");
                            target = leader.to_owned();
                            continue;
                        }
                        last_problem = format!("{target}: {}", body["message"]);
                    }
                    StatusCode::SERVICE_UNAVAILABLE => {
                        last_problem = format!("{target}: {}", body["message"]);
                        if let Some(leader) = body["leader"].as_str() {
                            target = leader.to_owned();
                            tokio::time::sleep(Duration::from_millis(100)).await;
                            continue;
                        }
                    }
                    _ => return Ok((status, body)),
                }
            }
            Err(error) => last_problem = format!("{target}: {error}"),
        }
        target = endpoints[next % endpoints.len()].clone();
        next += 1;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(format!("gave up after {} ms; last problem: {last_problem}", args.timeout_ms))
}

fn report(result: Result<(StatusCode, Value), String>, print_value: bool) -> i32 {
    match result {
        Ok((status, body)) if status.is_success() => {
            if print_value {
                println!("{}", body["value"].as_str().unwrap_or_default());
            } else {
                println!("{body}");
            }
            0
        }
        Ok((status, body)) => {
            eprintln!(
                "error: {} ({}): {}",
                body["error"].as_str().unwrap_or("error"),
                status.as_u16(),
                body["message"].as_str().unwrap_or_default()
            );
            1
        }
        Err(problem) => {
            eprintln!("error: {problem}");
            1
        }
    }
}

fn query_escape(raw: &str) -> String {
    let mut out = String::new();
    for byte in raw.bytes() {
        if byte.is_ascii_alphanumeric() || b"-_.~".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// `raftkv set KEY VALUE`.
pub async fn set(args: &ClientArgs, key: &str, value: &str) -> i32 {
    let body = serde_json::json!({ "key": key, "value": value, "clientId": client_id(), "seq": 1 });
    report(request(args, Method::PUT, "/set", Some(body)).await, false)
}

/// `raftkv get KEY`: prints the value.
pub async fn get(args: &ClientArgs, key: &str, stale: bool) -> i32 {
    let mut path = format!("/get?key={}", query_escape(key));
    if stale {
        path.push_str("&consistency=stale");
    }
    report(request(args, Method::GET, &path, None).await, true)
}

/// `raftkv del KEY`.
pub async fn del(args: &ClientArgs, key: &str) -> i32 {
    let path = format!("/delete?key={}&clientId={}&seq=1", query_escape(key), client_id());
    report(request(args, Method::DELETE, &path, None).await, false)
}

/// `raftkv status`: one line per endpoint.
pub async fn status(args: &ClientArgs) -> i32 {
    let http = match client(args) {
        Ok(http) => http,
        Err(problem) => {
            eprintln!("raftkv: {problem}");
            return 2;
        }
    };
    println!(
        "{:<28} {:<12} {:<13} {:>5} {:<12} {:>8} {:>8}",
        "ENDPOINT", "ID", "STATE", "TERM", "LEADER", "COMMIT", "HB_AGO"
    );
    let mut reachable = 0;
    for endpoint in endpoints(args) {
        let health = async {
            let response = http.get(format!("{endpoint}/health")).timeout(Duration::from_secs(2)).send().await?;
            response.json::<Value>().await
        };
        match health.await {
            Ok(h) => {
                reachable += 1;
                let text = |v: &Value| v.as_str().map_or("-".to_owned(), str::to_owned);
                let number = |v: &Value| v.as_u64().map_or("-".to_owned(), |n| n.to_string());
                println!(
                    "{:<28} {:<12} {:<13} {:>5} {:<12} {:>8} {:>8}",
                    endpoint,
                    text(&h["id"]),
                    text(&h["state"]),
                    number(&h["term"]),
                    text(&h["leaderId"]),
                    number(&h["commitIndex"]),
                    number(&h["lastHeartbeatAgoMs"]),
                );
            }
            Err(_) => println!("{endpoint:<28} unreachable"),
        }
    }
    if reachable == 0 {
        1
    } else {
        0
    }
}
