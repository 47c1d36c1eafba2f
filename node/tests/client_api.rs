//! The client API's error answers, `/metrics`, and the client commands'
//! deadline and exit codes, on real `raftkv` processes on loopback.

mod common;

use common::{Cluster, Options};
use serde_json::Value;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

const LEADER_WITHIN: Duration = Duration::from_secs(15);
const ACK_WITHIN: Duration = Duration::from_secs(10);

async fn answer(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    let body = serde_json::from_str(&text).unwrap_or_else(|_| panic!("{status} with a non-JSON body: {text:?}"));
    (status, body)
}

/// Runs the `raftkv` binary; returns its output and how long it took.
fn cli(args: &[&str]) -> (std::process::Output, Duration) {
    let started = Instant::now();
    let output = std::process::Command::new(common::binary())
        .args(args)
        .env_remove("RAFTKV_ENDPOINTS")
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    (output, started.elapsed())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_escapes_and_oversized_requests_get_json_errors() {
    let cluster = Cluster::start(Options { nodes: 1, ..Options::default() });
    cluster.wait_leader(LEADER_WITHIN).await;
    let url = cluster.url(0);
    let http = &cluster.http;

    // Percent-escapes that are not UTF-8 are refused, not read as "\u{FFFD}".
    for target in ["/get?key=%FF", "/get?key=a%FEb", "/get?key=%C3", "/get?key=ok&consistency=%FF"] {
        let (status, body) = answer(http.get(format!("{url}{target}")).send().await.unwrap()).await;
        assert_eq!((status, body["error"].as_str()), (400, Some("bad_encoding")), "{target}: {body}");
        assert_eq!(body["ok"], false);
        assert!(body["message"].as_str().unwrap().contains("UTF-8"), "{body}");
    }
    let (status, body) = answer(http.delete(format!("{url}/delete?key=%FF")).send().await.unwrap()).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("bad_encoding")), "{body}");
    // The replacement character itself, sent as UTF-8, is an ordinary key; %FF never reads it.
    cluster.put("\u{FFFD}", "replacement", ACK_WITHIN).await.unwrap();
    let (status, body) = answer(http.get(format!("{url}/get?key=%EF%BF%BD")).send().await.unwrap()).await;
    assert_eq!((status, body["value"].as_str()), (200, Some("replacement")), "{body}");
    let (status, _) = answer(http.get(format!("{url}/get?key=%FF")).send().await.unwrap()).await;
    assert_eq!(status, 400);
    // Good escapes still work.
    cluster.put("caf\u{e9} au lait", "yes", ACK_WITHIN).await.unwrap();
    let (status, body) = answer(http.get(format!("{url}/get?key=caf%C3%A9+au%20lait")).send().await.unwrap()).await;
    assert_eq!((status, body["value"].as_str()), (200, Some("yes")), "{body}");

    // 414 and 431 come with the documented JSON body.
    let long = format!("{url}/get?key={}", "k".repeat(9 * 1024));
    let (status, body) = answer(http.get(long).send().await.unwrap()).await;
    assert_eq!((status, body["error"].as_str(), body["ok"].as_bool()), (414, Some("uri_too_long"), Some(false)));
    assert!(body["message"].as_str().unwrap().contains("limit"), "{body}");
    let mut many = http.get(format!("{url}/health"));
    for i in 0..80 {
        many = many.header(format!("x-extra-{i}"), "v");
    }
    let (status, body) = answer(many.send().await.unwrap()).await;
    assert_eq!((status, body["error"].as_str()), (431, Some("headers_too_large")), "{body}");
    let big = http.get(format!("{url}/health")).header("x-big", "b".repeat(40 * 1024));
    let (status, body) = answer(big.send().await.unwrap()).await;
    assert_eq!((status, body["error"].as_str()), (431, Some("headers_too_large")), "{body}");
    // And on the Raft port too.
    let (status, body) =
        answer(http.get(format!("{}/raft/status?{}", cluster.raft_url(0), "q".repeat(9 * 1024))).send().await.unwrap())
            .await;
    assert_eq!((status, body["error"].as_str()), (414, Some("uri_too_long")), "{body}");
    // Just under the limits is served.
    let near = format!("{url}/get?key={}", "k".repeat(1000));
    let (status, body) = answer(http.get(near).send().await.unwrap()).await;
    assert_eq!((status, body["error"].as_str()), (404, Some("not_found")), "{body}");

    // The Raft port's errors are JSON too.
    let (status, body) =
        answer(http.post(format!("{}/raft/message", cluster.raft_url(0))).body("garbage").send().await.unwrap()).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("bad_message")), "{body}");

    // A request the server still answers after the limits keeps working on a new connection.
    let (status, body) = answer(http.get(format!("{url}/health")).send().await.unwrap()).await;
    assert_eq!((status, body["ok"].as_bool()), (200, Some(true)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_are_prometheus_text_with_the_documented_names() {
    let cluster = Cluster::start(Options { nodes: 1, ..Options::default() });
    cluster.wait_leader(LEADER_WITHIN).await;
    cluster.put("m", "1", ACK_WITHIN).await.unwrap();
    let response = cluster.http.get(format!("{}/metrics", cluster.url(0))).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "text/plain; version=0.0.4; charset=utf-8");
    let text = response.text().await.unwrap();

    // Parse the exposition: HELP and TYPE per family, then its samples.
    #[derive(Default, Debug)]
    struct Family {
        help: Option<String>,
        kind: Option<String>,
        samples: BTreeMap<String, f64>,
    }
    let mut families: BTreeMap<String, Family> = BTreeMap::new();
    let family_of = |sample: &str, families: &BTreeMap<String, Family>| -> String {
        for suffix in ["_bucket", "_sum", "_count", ""] {
            if let Some(base) = sample.strip_suffix(suffix) {
                if families.contains_key(base) {
                    return base.to_owned();
                }
            }
        }
        panic!("sample {sample} has no family declared before it in\n{text}");
    };
    let valid_name = |name: &str| {
        !name.is_empty()
            && !name.starts_with(|c: char| c.is_ascii_digit())
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
    };
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, help) = rest.split_once(' ').unwrap();
            assert!(valid_name(name), "{line}");
            families.entry(name.to_owned()).or_default().help = Some(help.to_owned());
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap();
            assert!(["counter", "gauge", "histogram"].contains(&kind), "{line}");
            families.entry(name.to_owned()).or_default().kind = Some(kind.to_owned());
        } else {
            assert!(!line.starts_with('#') && !line.is_empty(), "unexpected line {line:?}");
            let (series, value) = line.rsplit_once(' ').unwrap();
            let value: f64 = value.parse().unwrap_or_else(|_| panic!("bad value in {line:?}"));
            let name = series.split('{').next().unwrap();
            assert!(valid_name(name), "{line}");
            if let Some(labels) = series.strip_prefix(name) {
                if !labels.is_empty() {
                    assert!(labels.starts_with('{') && labels.ends_with('}'), "{line}");
                    let (label, quoted) = labels[1..labels.len() - 1].split_once('=').unwrap();
                    assert!(valid_name(label) && quoted.starts_with('"') && quoted.ends_with('"'), "{line}");
                }
            }
            let family = family_of(name, &families);
            families.get_mut(&family).unwrap().samples.insert(series.to_owned(), value);
        }
    }
    let documented = [
        ("raftkv_term", "gauge", "Current Raft term."),
        ("raftkv_role", "gauge", "Raft role: 0 follower, 1 pre-candidate, 2 candidate, 3 leader."),
        ("raftkv_commit_index", "gauge", "Commit index."),
        ("raftkv_applied_index", "gauge", "Last applied index."),
        ("raftkv_proposals_total", "counter", "Writes proposed to Raft."),
        ("raftkv_proposals_committed_total", "counter", "Writes committed and applied."),
        ("raftkv_proposals_failed_total", "counter", "Writes rejected, dropped or lost."),
        ("raftkv_reads_total", "counter", "Linearizable reads."),
        ("raftkv_elections_total", "counter", "Elections started by this node."),
        ("raftkv_leader_changes_total", "counter", "Leader changes seen by this node."),
        ("raftkv_snapshots_saved_total", "counter", "Snapshots written to disk."),
        ("raftkv_peer_messages_sent_total", "counter", "Raft messages sent to peers."),
        ("raftkv_peer_messages_received_total", "counter", "Raft messages received from peers."),
        ("raftkv_peer_messages_dropped_total", "counter", "Raft messages dropped (peer queue full)."),
        ("raftkv_wal_fsync_seconds", "histogram", "WAL fdatasync latency."),
        (
            "raftkv_wal_sync_roundtrip_seconds",
            "histogram",
            "From a write batch leaving the driver until the driver learns it is durable.",
        ),
        ("raftkv_http_request_seconds", "histogram", "Client API request latency."),
    ];
    for (name, kind, help) in documented {
        let family = families.get(name).unwrap_or_else(|| panic!("{name} missing in\n{text}"));
        assert_eq!(family.kind.as_deref(), Some(kind), "{name}");
        assert_eq!(family.help.as_deref(), Some(help), "{name}");
        if kind == "histogram" {
            let count = family.samples[&format!("{name}_count")];
            assert_eq!(family.samples[&format!("{name}_bucket{{le=\"+Inf\"}}")], count, "{name}");
            assert!(family.samples.contains_key(&format!("{name}_sum")), "{name}");
        } else {
            assert!(family.samples.contains_key(name), "{name}");
        }
    }
    assert_eq!(families.len(), documented.len(), "undocumented metrics: {:?}", families.keys());
    let value = |series: &str| families.values().find_map(|f| f.samples.get(series).copied()).unwrap();
    assert_eq!(value("raftkv_role"), 3.0, "a single node leads");
    assert!(value("raftkv_proposals_committed_total") >= 1.0);
    assert!(value("raftkv_wal_fsync_seconds_count") >= 1.0);
    assert!(value("raftkv_http_request_seconds_count") >= 1.0);
}

/// Ports on loopback that refuse connections (bound, then closed).
fn dead_endpoints(count: usize) -> Vec<String> {
    let listeners: Vec<std::net::TcpListener> =
        (0..count).map(|_| std::net::TcpListener::bind("127.0.0.1:0").unwrap()).collect();
    listeners.iter().map(|l| format!("http://{}", l.local_addr().unwrap())).collect()
}

#[test]
fn the_cli_timeout_is_a_total_deadline_and_the_error_names_the_cause() {
    // Nothing listens: connection refused.
    let endpoints = dead_endpoints(3).join(",");
    for command in [vec!["get", "k"], vec!["set", "k", "v"], vec!["del", "k"]] {
        let mut args = command.clone();
        args.extend(["--timeout-ms", "300", "--endpoints", &endpoints]);
        let (output, took) = cli(&args);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{command:?}: {stderr}");
        assert!(took < Duration::from_millis(1500), "{command:?} took {took:?}: {stderr}");
        assert!(stderr.contains("connection refused"), "{stderr}");
        assert!(stderr.contains("no node answered at"), "{stderr}");
        assert!(stderr.contains("is the cluster running?"), "{stderr}");
        assert!(stderr.contains("raftkv cluster --nodes 3"), "{stderr}");
        let gave_up_ms: u64 = stderr
            .split("gave up after ")
            .nth(1)
            .and_then(|rest| rest.split(' ').next())
            .and_then(|ms| ms.parse().ok())
            .unwrap_or_else(|| panic!("{stderr}"));
        assert!((300..1500).contains(&gave_up_ms), "the message tells the real time: {stderr}");
    }

    // Something accepts the connection and never answers (a stopped process):
    // the deadline still holds, connecting and waiting included.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let silent_url = format!("http://{}", silent.local_addr().unwrap());
    let (output, took) = cli(&["get", "k", "--timeout-ms", "300", "--endpoints", &silent_url]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(took < Duration::from_millis(1500), "took {took:?}: {stderr}");
    assert!(stderr.contains("timed out"), "{stderr}");
    let (output, took) = cli(&["status", "--timeout-ms", "300", "--endpoints", &silent_url]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(took < Duration::from_millis(1500), "status took {took:?}: {stderr}");
    drop(silent);

    // Bad flags are exit 2 with the reason.
    let (output, _) = cli(&["get", "k", "--endpoints", "ftp://x:1"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("use http:// or https://"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_exits_non_zero_when_no_node_reports_a_leader() {
    let cluster = Cluster::start(Options::default());
    let leader = cluster.wait_leader(LEADER_WITHIN).await;
    let endpoints: Vec<String> = (0..3).map(|i| cluster.url(i)).collect();
    let endpoints = endpoints.join(",");
    let (output, _) = cli(&["status", "--endpoints", &endpoints]);
    let table = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{table}{}", String::from_utf8_lossy(&output.stderr));
    assert_eq!(table.matches("Leader").count(), 1, "{table}");

    // The leader and one follower go away; the last follower loses its leader.
    let survivor = (leader + 1) % 3;
    for i in 0..3 {
        if i != survivor {
            cluster.kill(i);
        }
    }
    let deadline = Instant::now() + LEADER_WITHIN;
    loop {
        let health = cluster.health(survivor).await;
        if health.as_ref().is_some_and(|h| h["leaderId"].is_null()) {
            break;
        }
        assert!(Instant::now() < deadline, "the survivor still names a leader: {health:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (output, took) = cli(&["status", "--timeout-ms", "2000", "--endpoints", &endpoints]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stdout}{stderr}");
    assert!(stderr.contains("no node reports a leader (1 of 3 answered)"), "{stderr}");
    assert_eq!(stdout.matches("unreachable: connection refused").count(), 2, "{stdout}");
    assert!(took < Duration::from_secs(3), "{took:?}");

    // A write has nowhere to go: it gives up in time and says why.
    let (output, took) = cli(&["set", "k", "v", "--timeout-ms", "1000", "--endpoints", &cluster.url(survivor)]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(took < Duration::from_millis(2500), "{took:?}: {stderr}");
    assert!(stderr.contains("gave up after"), "{stderr}");
    assert!(stderr.contains("503 no_leader") || stderr.contains("503 timeout"), "{stderr}");
}
