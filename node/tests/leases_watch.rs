//! Leases and watch on real `raftkv` processes: each operation over HTTP and
//! the CLI, a watch that survives a kill -9 of the leader and resumes without
//! a gap, and a lease whose holder dies (stops its keep-alives) expiring its key.

mod common;

use common::{eventually, Cluster, Options};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const LEADER_WITHIN: Duration = Duration::from_secs(15);
const ACK_WITHIN: Duration = Duration::from_secs(10);

async fn post(cluster: &Cluster, i: usize, path: &str, body: Value) -> (u16, Value) {
    let response = cluster.http.post(format!("{}{path}", cluster.url(i))).json(&body).send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

/// A child process stopped when dropped.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn cli(endpoints: &str) -> Command {
    let mut command = Command::new(common::binary());
    command.env_remove("RAFTKV_ENDPOINTS").env("RAFTKV_ENDPOINTS", endpoints).stdin(Stdio::null());
    command
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lease_grant_keepalive_revoke_and_expiry_and_watch_lines() {
    let cluster = Cluster::start(Options { nodes: 1, ..Options::default() });
    cluster.wait_leader(LEADER_WITHIN).await;
    let url = cluster.url(0);
    let (status, grant) = post(&cluster, 0, "/lease/grant", json!({"ttl": 2})).await;
    assert_eq!(status, 200, "{grant}");
    let id = grant["id"].as_u64().unwrap();
    assert_eq!(grant["ttl"], 2);
    let (status, body) = post(&cluster, 0, "/lease/grant", json!({"ttl": 0})).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("bad_ttl")), "{body}");
    let put = cluster.http.put(format!("{url}/set")).json(&json!({"key": "svc/a", "value": "1", "lease": id}));
    assert_eq!(put.send().await.unwrap().status().as_u16(), 200);
    let put = cluster.http.put(format!("{url}/set")).json(&json!({"key": "svc/b", "value": "1", "lease": 999}));
    let response = put.send().await.unwrap();
    assert_eq!(response.status().as_u16(), 404);
    assert_eq!(response.json::<Value>().await.unwrap()["error"], "lease_not_found");

    // Kept alive past its TTL: the key stays.
    let kept_until = Instant::now() + Duration::from_millis(3_000);
    while Instant::now() < kept_until {
        let (status, body) = post(&cluster, 0, "/lease/keepalive", json!({"id": id})).await;
        assert_eq!((status, body["ttl"].clone()), (200, json!(2)), "{body}");
        tokio::time::sleep(Duration::from_millis(400)).await;
    }
    assert_eq!(cluster.get("svc/a", ACK_WITHIN).await.unwrap().as_deref(), Some("1"));
    // No more keep-alives: it expires, through the log.
    eventually("the leased key expires", Duration::from_secs(6), || async {
        cluster.get("svc/a", ACK_WITHIN).await.unwrap().is_none()
    })
    .await;
    let (status, body) = post(&cluster, 0, "/lease/keepalive", json!({"id": id})).await;
    assert_eq!((status, body["error"].as_str()), (404, Some("lease_not_found")), "{body}");

    // The watch saw both changes, in order, from revision 1; a revision in
    // the past is readable by range.
    let mut stream = cluster.http.get(format!("{url}/watch?prefix=svc/&rev=1")).send().await.unwrap();
    let mut text = String::new();
    while !text.contains("\"delete\"") {
        let chunk = tokio::time::timeout(Duration::from_secs(5), stream.chunk()).await.unwrap().unwrap().unwrap();
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
    let events: Vec<Value> = text
        .lines()
        .map(|line| serde_json::from_str::<Value>(line).unwrap())
        .flat_map(|line| line["events"].as_array().cloned().unwrap_or_default())
        .collect();
    assert_eq!(events[0]["type"], "put");
    assert_eq!(events[0]["kv"]["lease"], json!(id));
    assert_eq!((events[1]["type"].clone(), events[1]["prevKv"]["value"].clone()), (json!("delete"), json!("1")));
    let past: Value =
        cluster.http.get(format!("{url}/range?prefix=svc/&revision=1")).send().await.unwrap().json().await.unwrap();
    assert_eq!(past["count"], 1, "{past}");

    // Revoke deletes the lease's keys at once; the CLI does the same.
    let endpoints = url.clone();
    let out = cli(&endpoints).args(["lease", "grant", "30"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let granted: Value = serde_json::from_slice(&out.stdout).unwrap();
    let second = granted["id"].as_u64().unwrap();
    assert_ne!(second, id, "lease ids are never reused");
    let out = cli(&endpoints).args(["set", "svc/c", "3", "--lease", &second.to_string()]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = cli(&endpoints).args(["lease", "keepalive", &second.to_string()]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = cli(&endpoints).args(["lease", "revoke", &second.to_string()]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let revoked: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(revoked["deleted"], 1);
    assert_eq!(cluster.get("svc/c", ACK_WITHIN).await.unwrap(), None);
    let out = cli(&endpoints).args(["watch", "svc/", "--prefix", "--rev", "1", "--count", "4"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let lines: Vec<Value> =
        String::from_utf8_lossy(&out.stdout).lines().map(|line| serde_json::from_str(line).unwrap()).collect();
    let seen: Vec<(String, String)> = lines
        .iter()
        .map(|e| (e["type"].as_str().unwrap().to_owned(), e["kv"]["key"].as_str().unwrap().to_owned()))
        .collect();
    let expected = [("put", "svc/a"), ("delete", "svc/a"), ("put", "svc/c"), ("delete", "svc/c")];
    assert_eq!(seen, expected.map(|(t, k)| (t.to_owned(), k.to_owned())));

    // etcd's gateway shapes.
    let (status, body) = post(&cluster, 0, "/v3/lease/grant", json!({"TTL": "5"})).await;
    assert_eq!(status, 200, "{body}");
    let v3_id = body["ID"].as_str().unwrap().to_owned();
    assert_eq!(body["TTL"], "5");
    let (status, body) = post(&cluster, 0, "/v3/lease/keepalive", json!({"ID": v3_id})).await;
    assert_eq!((status, body["result"]["TTL"].clone()), (200, json!("5")), "{body}");
    let (status, body) = post(&cluster, 0, "/v3/lease/revoke", json!({"ID": v3_id})).await;
    assert!(status == 200 && body["header"].is_object(), "{body}");
}

/// Reads JSON event lines from a `raftkv watch` child until `count` arrived.
fn read_events(child: &mut Child, count: usize, within: Duration) -> Vec<Value> {
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { return };
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    let deadline = Instant::now() + within;
    let mut events = Vec::new();
    while events.len() < count {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => events.push(serde_json::from_str(&line).unwrap()),
            Err(_) => panic!("only {} of {count} events within {within:?}: {events:?}", events.len()),
        }
    }
    events
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watch_survives_a_leader_kill_and_resumes_without_a_gap() {
    let cluster = Cluster::start(Options::default());
    let leader = cluster.wait_leader(LEADER_WITHIN).await;
    // The watcher talks to the leader first, then the others.
    let order: Vec<String> =
        std::iter::once(leader).chain((0..3).filter(|&i| i != leader)).map(|i| cluster.url(i)).collect();
    let mut watcher = Proc(
        cli(&order.join(","))
            .args(["watch", "w/", "--prefix", "--rev", "1", "--count", "20"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    for n in 0..10 {
        cluster.put(&format!("w/{n:02}"), "before", ACK_WITHIN).await.unwrap();
    }
    cluster.kill(leader);
    for n in 10..20 {
        cluster.put(&format!("w/{n:02}"), "after", Duration::from_secs(20)).await.unwrap();
    }
    let events = read_events(&mut watcher.0, 20, Duration::from_secs(30));
    let keys: Vec<&str> = events.iter().map(|e| e["kv"]["key"].as_str().unwrap()).collect();
    let expected: Vec<String> = (0..20).map(|n| format!("w/{n:02}")).collect();
    assert_eq!(keys, expected, "every change once, in order, across the kill");
    let revisions: Vec<u64> = events.iter().map(|e| e["kv"]["modRevision"].as_u64().unwrap()).collect();
    assert!(revisions.windows(2).all(|pair| pair[1] == pair[0] + 1), "no gap: {revisions:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lease_whose_holder_dies_expires_its_keys() {
    let cluster = Cluster::start(Options::default());
    let leader = cluster.wait_leader(LEADER_WITHIN).await;
    let (status, grant) = post(&cluster, leader, "/lease/grant", json!({"ttl": 2})).await;
    assert_eq!(status, 200, "{grant}");
    let id = grant["id"].as_u64().unwrap();
    let put = json!({"key": "lock/owner", "value": "holder-1", "lease": id});
    let response = cluster.http.put(format!("{}/set", cluster.url(leader))).json(&put).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let endpoints: Vec<String> = (0..3).map(|i| cluster.url(i)).collect();
    let holder = Proc(
        cli(&endpoints.join(","))
            .args(["lease", "keepalive", &id.to_string(), "--every-ms", "300"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    // Alive for three TTLs: the key stays.
    tokio::time::sleep(Duration::from_secs(6)).await;
    assert_eq!(cluster.get("lock/owner", ACK_WITHIN).await.unwrap().as_deref(), Some("holder-1"));
    let died = Instant::now();
    drop(holder);
    eventually("the dead holder's key expires", Duration::from_secs(8), || async {
        cluster.get("lock/owner", ACK_WITHIN).await.unwrap().is_none()
    })
    .await;
    assert!(died.elapsed() >= Duration::from_millis(1_500), "expired {:?} after the last keep-alive", died.elapsed());
}

/// A lease's time to live and the lease list, over HTTP, etcd's gateway and
/// the CLI: the granted TTL, the time left on the leader's clock (which a
/// keep-alive restores), its keys, and a clear answer for an unknown lease.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leases_time_to_live_and_the_lease_list_are_readable() {
    let cluster = Cluster::start(Options { nodes: 1, ..Options::default() });
    cluster.wait_leader(LEADER_WITHIN).await;
    let url = cluster.url(0);
    let (_, grant) = post(&cluster, 0, "/lease/grant", json!({"ttl": 30, "id": 42})).await;
    assert_eq!(grant["id"], 42, "{grant}");
    let put = cluster.http.put(format!("{url}/set")).json(&json!({"key": "held", "value": "1", "lease": 42}));
    assert_eq!(put.send().await.unwrap().status().as_u16(), 200);

    let ttl = |query: &'static str| {
        let request = cluster.http.get(format!("{url}/lease/timetolive?{query}"));
        async move {
            let response = request.send().await.unwrap();
            (response.status().as_u16(), response.json::<Value>().await.unwrap())
        }
    };
    let (status, body) = ttl("id=42&keys=true").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!((body["ttl"].clone(), body["keys"].clone()), (json!(30), json!(["held"])), "{body}");
    let left_ms = body["remainingMs"].as_u64().expect("the leader knows the time left");
    assert!(left_ms > 0 && left_ms <= 30_000, "{body}");
    let (status, body) = ttl("id=42&consistency=stale").await;
    assert_eq!(status, 200, "{body}");
    assert!(body.get("keys").is_none(), "keys only when asked: {body}");
    let (status, body) = ttl("id=7").await;
    assert_eq!((status, body["error"].as_str()), (404, Some("lease_not_found")), "{body}");
    let (status, body) = ttl("id=x").await;
    assert_eq!((status, body["error"].as_str()), (400, Some("bad_query")), "{body}");

    let list: Value = cluster.http.get(format!("{url}/lease/list")).send().await.unwrap().json().await.unwrap();
    assert_eq!(list["leases"], json!([42]), "{list}");

    // etcd's gateway: TTL is the seconds left, an unknown lease is TTL -1.
    let (status, body) = post(&cluster, 0, "/v3/lease/timetolive", json!({"ID": "42", "keys": true})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!((body["grantedTTL"].clone(), body["keys"].clone()), (json!("30"), json!(["aGVsZA=="])), "{body}");
    let left_s: u64 = body["TTL"].as_str().unwrap().parse().unwrap();
    assert!((1..=30).contains(&left_s), "{body}");
    let (_, body) = post(&cluster, 0, "/v3/lease/timetolive", json!({"ID": 7})).await;
    assert_eq!(body["TTL"], "-1", "{body}");
    let (status, body) = post(&cluster, 0, "/v3/lease/leases", json!({})).await;
    assert_eq!((status, body["leases"].clone()), (200, json!([{"ID": "42"}])), "{body}");

    // The CLI.
    let out = cli(&url).args(["lease", "ttl", "42", "--keys"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let shown: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!((shown["id"].clone(), shown["keys"].clone()), (json!(42), json!(["held"])), "{shown}");
    let out = cli(&url).args(["lease", "list"]).output().unwrap();
    let shown: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(shown["leases"], json!([42]), "{shown}");
    let out = cli(&url).args(["lease", "ttl", "7"]).output().unwrap();
    assert!(!out.status.success(), "an unknown lease is an error");
}

/// A watch without `rev` starts after the node's revision and says so in its
/// first line, at once (not after `progressMs`): a client that loses the
/// stream before any change resumes from there without a gap. `raftkv watch`
/// without `--rev` relies on it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watch_from_now_first_says_which_revision_now_is() {
    let cluster = Cluster::start(Options { nodes: 1, ..Options::default() });
    cluster.wait_leader(LEADER_WITHIN).await;
    let url = cluster.url(0);
    for n in 0..3 {
        let put = cluster.http.put(format!("{url}/set")).json(&json!({"key": format!("w{n}"), "value": "1"}));
        assert_eq!(put.send().await.unwrap().status().as_u16(), 200);
    }
    // Progress lines every 60 s: a line within 10 s is the announcement.
    let mut stream = cluster.http.get(format!("{url}/watch?prefix=w&progressMs=60000")).send().await.unwrap();
    let chunk = tokio::time::timeout(Duration::from_secs(10), stream.chunk()).await.unwrap().unwrap().unwrap();
    let first: Value = serde_json::from_slice(chunk.split(|&b| b == b'\n').next().unwrap()).unwrap();
    assert_eq!((first["progress"].clone(), first["revision"].clone()), (json!(true), json!(3)), "{first}");
}

/// Reads `{"result": ...}` lines from a `/v3/watch` stream until `until` holds.
async fn v3_lines(response: &mut reqwest::Response, until: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    let mut text = String::new();
    loop {
        let lines: Vec<Value> =
            text.lines().filter(|l| !l.trim().is_empty()).map(|l| serde_json::from_str(l).unwrap()).collect();
        if text.ends_with('\n') && until(&lines) {
            return lines;
        }
        let chunk = tokio::time::timeout(Duration::from_secs(10), response.chunk()).await.unwrap().unwrap().unwrap();
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
}

/// etcd's gateway watch: `created` first, then events with base64 keys,
/// `prev_kv` when asked, etcd's `filters` (`NODELETE` leaves deletes out), and
/// an unknown filter refused with a clear 400.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_v3_watch_streams_created_then_events_and_applies_filters() {
    let cluster = Cluster::start(Options { nodes: 1, ..Options::default() });
    cluster.wait_leader(LEADER_WITHIN).await;
    let url = cluster.url(0);
    let set =
        |key: &str, value: &str| cluster.http.put(format!("{url}/set")).json(&json!({"key": key, "value": value}));
    assert_eq!(set("foo", "1").send().await.unwrap().status().as_u16(), 200);
    assert_eq!(set("foo", "2").send().await.unwrap().status().as_u16(), 200);
    let del = cluster.http.delete(format!("{url}/delete?key=foo")).send().await.unwrap();
    assert_eq!(del.status().as_u16(), 200);
    assert_eq!(set("foo", "3").send().await.unwrap().status().as_u16(), 200);

    // "Zm9v" is "foo"; from revision 1: put 1, put 2 (prev 1), delete, put 3.
    let body = json!({"create_request": {"key": "Zm9v", "start_revision": "1", "prev_kv": true}});
    let mut all = cluster.http.post(format!("{url}/v3/watch")).json(&body).send().await.unwrap();
    assert_eq!(all.status().as_u16(), 200);
    let events_in = |lines: &[Value]| -> Vec<Value> {
        lines.iter().flat_map(|l| l["result"]["events"].as_array().cloned().unwrap_or_default()).collect()
    };
    let lines = v3_lines(&mut all, |lines| events_in(lines).len() >= 4).await;
    assert_eq!(lines[0]["result"]["created"], true, "{}", lines[0]);
    let events = events_in(&lines);
    let kinds: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap_or("PUT")).collect();
    assert_eq!(kinds, ["PUT", "PUT", "DELETE", "PUT"]);
    assert_eq!((events[0]["kv"]["key"].clone(), events[0]["kv"]["value"].clone()), (json!("Zm9v"), json!("MQ==")));
    assert_eq!(events[1]["prev_kv"]["value"], "MQ==", "prev_kv as asked: {}", events[1]);

    let body = json!({"create_request": {"key": "Zm9v", "start_revision": "1", "filters": ["NODELETE"]}});
    let mut no_deletes = cluster.http.post(format!("{url}/v3/watch")).json(&body).send().await.unwrap();
    let lines = v3_lines(&mut no_deletes, |lines| events_in(lines).len() >= 3).await;
    let events = events_in(&lines);
    assert!(events.iter().all(|e| e.get("type").is_none()), "only puts: {events:?}");
    assert!(events.iter().all(|e| e.get("prev_kv").is_none()), "no prev_kv unless asked");
    assert_eq!(events.len(), 3);

    let body = json!({"create_request": {"key": "Zm9v", "filters": ["NOPE"]}});
    let refused = cluster.http.post(format!("{url}/v3/watch")).json(&body).send().await.unwrap();
    assert_eq!(refused.status().as_u16(), 400);
    let error: Value = refused.json().await.unwrap();
    assert!(error["message"].as_str().unwrap().contains("NODELETE"), "{error}");
}
