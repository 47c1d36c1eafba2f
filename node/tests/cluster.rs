//! End-to-end tests against real `raftkv` processes on loopback.

mod common;

use common::{Cluster, Options};
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const LEADER_WITHIN: Duration = Duration::from_secs(15);
const ACK_WITHIN: Duration = Duration::from_secs(10);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn election_write_hint_and_linearizable_reads_on_every_node() {
    let cluster = Cluster::start(Options::default());
    let leader = cluster.wait_leader(LEADER_WITHIN).await;
    let followers: Vec<usize> = (0..3).filter(|&i| i != leader).collect();
    for &i in &followers {
        let health = cluster.health(i).await.unwrap();
        assert_eq!(health["state"], "Follower");
        assert_eq!(health["peersCount"], 2, "self is filtered from PEERS");
    }

    // A write on the leader commits.
    let response = cluster
        .http
        .put(format!("{}/set", cluster.url(leader)))
        .json(&serde_json::json!({"key": "color", "value": "blue"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);

    // A write on a follower is refused with the leader's id and client URL.
    let response = cluster
        .http
        .put(format!("{}/set", cluster.url(followers[0])))
        .json(&serde_json::json!({"key": "color", "value": "red"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 409);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["ok"], false);
    assert_eq!(body["error"], "not_leader");
    assert_eq!(body["leaderId"], cluster.nodes[leader].name.as_str());
    assert_eq!(body["leader"], cluster.url(leader).as_str());

    // A linearizable read on every node sees the write at once, followers included.
    for i in 0..3 {
        let response = cluster.http.get(format!("{}/get?key=color", cluster.url(i))).send().await.unwrap();
        assert_eq!(response.status(), 200, "node {i}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["value"], "blue", "node {i}");
    }
    // Missing keys are 404 everywhere; deletes go through the leader.
    let response = cluster.http.get(format!("{}/get?key=nothing", cluster.url(followers[1]))).send().await.unwrap();
    assert_eq!(response.status(), 404);
    let response = cluster.http.delete(format!("{}/delete?key=color", cluster.url(leader))).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(cluster.get("color", ACK_WITHIN).await.unwrap(), None);

    // The Raft status shows replication progress on the leader.
    let status: Value = cluster
        .http
        .get(format!("{}/raft/status", cluster.raft_url(leader)))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(status["state"], "Leader");
    assert_eq!(status["matchIndex"].as_object().unwrap().len(), 2);
    assert!(status["commitIndex"].as_u64().unwrap() >= 3);
    assert!(cluster.log_text(leader).contains("LEADER term="));
}

/// Writers that record every acknowledged write.
struct Load {
    acked: Arc<Mutex<BTreeMap<String, String>>>,
    stop: Arc<std::sync::atomic::AtomicBool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Load {
    fn start(cluster: &Arc<Cluster>, writers: usize, prefix: &str) -> Load {
        let acked = Arc::new(Mutex::new(BTreeMap::new()));
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let tasks = (0..writers)
            .map(|w| {
                let cluster = cluster.clone();
                let acked = acked.clone();
                let stop = stop.clone();
                let prefix = prefix.to_owned();
                tokio::spawn(async move {
                    let mut n = 0;
                    while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                        let key = format!("{prefix}-{w}-{n}");
                        let value = format!("value-{w}-{n}");
                        if cluster.put(&key, &value, Duration::from_secs(3)).await.is_ok() {
                            acked.lock().unwrap().insert(key, value);
                        }
                        n += 1;
                    }
                })
            })
            .collect();
        Load { acked, stop, tasks }
    }

    async fn stop(self) -> BTreeMap<String, String> {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        for task in self.tasks {
            task.await.unwrap();
        }
        let acked = self.acked.lock().unwrap().clone();
        acked
    }

    fn count(&self) -> usize {
        self.acked.lock().unwrap().len()
    }

    async fn wait_acked(&self, more_than: usize, within: Duration) {
        let deadline = Instant::now() + within;
        while self.count() <= more_than {
            assert!(Instant::now() < deadline, "the load made no progress: {} acknowledged writes", self.count());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

async fn assert_all_readable(cluster: &Cluster, acked: &BTreeMap<String, String>) {
    for (key, value) in acked {
        let read = cluster.get(key, ACK_WITHIN).await;
        assert_eq!(read, Ok(Some(value.clone())), "acknowledged write {key}={value} lost");
    }
}

/// Stale reads on node `i` until it has applied every acknowledged write.
async fn wait_node_has(cluster: &Cluster, i: usize, acked: &BTreeMap<String, String>) {
    let deadline = Instant::now() + Duration::from_secs(15);
    for (key, value) in acked {
        loop {
            let response = cluster
                .http
                .get(format!("{}/get", cluster.url(i)))
                .query(&[("key", key.as_str()), ("consistency", "stale")])
                .send()
                .await;
            if let Ok(response) = response {
                if response.status() == 200 {
                    let body: Value = response.json().await.unwrap();
                    assert_eq!(body["value"], value.as_str(), "{key} on node {i}");
                    break;
                }
            }
            assert!(Instant::now() < deadline, "node {i} never caught up with {key}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill9_of_the_leader_during_writes_loses_no_acknowledged_write() {
    let cluster = Arc::new(Cluster::start(Options::default()));
    let old_leader = cluster.wait_leader(LEADER_WITHIN).await;
    let load = Load::start(&cluster, 3, "k");
    load.wait_acked(30, ACK_WITHIN).await;

    // kill -9 the leader in the middle of the load; the others elect a new one.
    cluster.kill(old_leader);
    let before_kill = load.count();
    let new_leader = cluster.wait_leader(LEADER_WITHIN).await;
    assert_ne!(new_leader, old_leader);
    load.wait_acked(before_kill + 30, ACK_WITHIN).await;
    let acked = load.stop().await;
    assert!(acked.len() > 60, "only {} writes acknowledged", acked.len());
    assert_all_readable(&cluster, &acked).await;

    // The old leader restarts from its disk as a follower of the new leader and catches up.
    cluster.spawn(old_leader);
    let leader = cluster.wait_leader(LEADER_WITHIN).await;
    let health = cluster.health(old_leader).await.unwrap();
    assert_eq!(health["state"], "Follower");
    assert_eq!(health["leaderId"], cluster.nodes[leader].name.as_str());
    wait_node_has(&cluster, old_leader, &acked).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill9_of_any_node_during_writes_loses_no_acknowledged_write() {
    let cluster = Arc::new(Cluster::start(Options::default()));
    cluster.wait_leader(LEADER_WITHIN).await;
    let load = Load::start(&cluster, 2, "any");
    // Kill every node once, whatever its role, each time under load, and restart it.
    for victim in 0..3 {
        load.wait_acked(load.count() + 15, ACK_WITHIN).await;
        cluster.kill(victim);
        load.wait_acked(load.count() + 15, Duration::from_secs(20)).await;
        cluster.spawn(victim);
        cluster.wait_leader(LEADER_WITHIN).await;
    }
    let acked = load.stop().await;
    assert_all_readable(&cluster, &acked).await;
    for i in 0..3 {
        wait_node_has(&cluster, i, &acked).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_majority_nothing_commits_and_clients_get_503_with_retry_after() {
    let cluster = Cluster::start(Options::default());
    let leader = cluster.wait_leader(LEADER_WITHIN).await;
    let followers: Vec<usize> = (0..3).filter(|&i| i != leader).collect();
    for &i in &followers {
        cluster.kill(i);
    }
    let url = cluster.url(leader);
    // The write cannot commit: the client learns that its outcome is unknown (503),
    // either when the leader steps down (CheckQuorum) or when the request times out.
    let response = cluster
        .http
        .put(format!("{url}/set"))
        .json(&serde_json::json!({"key": "lonely", "value": "1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 503);
    assert_eq!(response.headers()["retry-after"], "1");
    // Once it stepped down, writes and linearizable reads are refused at once.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let health = cluster.health(leader).await.unwrap();
        if health["state"] != "Leader" {
            break;
        }
        assert!(Instant::now() < deadline, "the isolated leader never stepped down: {health}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let response = cluster
        .http
        .put(format!("{url}/set"))
        .json(&serde_json::json!({"key": "lonely", "value": "2"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 503);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "no_leader", "{body}");
    let response = cluster.http.get(format!("{url}/get?key=lonely")).send().await.unwrap();
    assert_eq!(response.status(), 503);
    assert!(cluster.log_text(leader).contains("STEPDOWN"), "the step-down is logged");

    // A majority again: a leader is elected and writes commit.
    cluster.spawn(followers[0]);
    cluster.wait_leader(LEADER_WITHIN).await;
    cluster.put("lonely", "3", ACK_WITHIN).await.unwrap();
    assert_eq!(cluster.get("lonely", ACK_WITHIN).await.unwrap().as_deref(), Some("3"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_follower_catches_up_after_it_resumes() {
    let cluster = Cluster::start(Options::default());
    let leader = cluster.wait_leader(LEADER_WITHIN).await;
    // The first follower: also the node the harness's requests would try first.
    let paused = if leader == 0 { 1 } else { 0 };
    cluster.pause(paused);
    // ~19 MiB: more than the socket buffers of the leader's stream to the paused
    // node hold, so that stream stalls. The leader keeps committing with the other
    // follower, gives up on the stalled stream after the RPC timeout (its queued
    // messages are counted as dropped), and must reconnect once the node is back.
    let value = "p".repeat(64 << 10);
    let mut acked = BTreeMap::new();
    for i in 0..300 {
        let key = format!("paused-{i:04}");
        let response = cluster
            .http
            .put(format!("{}/set", cluster.url(leader)))
            .timeout(ACK_WITHIN)
            .json(&serde_json::json!({ "key": key, "value": value }))
            .send()
            .await
            .unwrap_or_else(|e| panic!("{key}: {e}"));
        assert_eq!(response.status(), 200, "{key} not acknowledged by the leader");
        acked.insert(key, value.clone());
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    while dropped_messages(&cluster, leader).await == 0 {
        assert!(Instant::now() < deadline, "the leader never gave up on the stalled stream");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    cluster.resume(paused);
    wait_node_has(&cluster, paused, &acked).await;
    cluster.put("after-resume", "1", ACK_WITHIN).await.unwrap();
    wait_node_has(&cluster, paused, &BTreeMap::from([("after-resume".to_owned(), "1".to_owned())])).await;
}

async fn dropped_messages(cluster: &Cluster, i: usize) -> u64 {
    let request = cluster.http.get(format!("{}/metrics", cluster.url(i))).timeout(Duration::from_secs(5));
    let metrics = request.send().await.unwrap().text().await.unwrap();
    let line = metrics.lines().find(|line| line.starts_with("raftkv_peer_messages_dropped_total ")).expect("metric");
    line.rsplit(' ').next().unwrap().parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_cluster_restart_keeps_the_data() {
    let cluster = Cluster::start(Options::default());
    cluster.wait_leader(LEADER_WITHIN).await;
    let mut acked = BTreeMap::new();
    for n in 0..20 {
        let (key, value) = (format!("r{n}"), format!("v{n}"));
        cluster.put(&key, &value, ACK_WITHIN).await.unwrap();
        acked.insert(key, value);
    }
    cluster.put("r3", "overwritten", ACK_WITHIN).await.unwrap();
    acked.insert("r3".into(), "overwritten".into());
    cluster.restart_all();
    cluster.wait_leader(LEADER_WITHIN).await;
    assert_all_readable(&cluster, &acked).await;
    for i in 0..3 {
        wait_node_has(&cluster, i, &acked).await;
    }
}

async fn write_many(cluster: &Cluster, prefix: &str, count: usize) -> BTreeMap<String, String> {
    let mut acked = BTreeMap::new();
    for n in 0..count {
        let (key, value) = (format!("{prefix}{n}"), format!("{n}-{}", "x".repeat(100)));
        cluster.put(&key, &value, ACK_WITHIN).await.unwrap();
        acked.insert(key, value);
    }
    acked
}

fn snapshot_options() -> Options {
    Options { snapshot_threshold: Some(20), wal_segment_bytes: Some(4096), ..Options::default() }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshots_compact_the_log_and_survive_restart() {
    let cluster = Cluster::start(snapshot_options());
    let leader = cluster.wait_leader(LEADER_WITHIN).await;
    let acked = write_many(&cluster, "s", 120).await;
    // The leader snapshotted and compacted its log (in memory and on disk).
    let status: Value = cluster
        .http
        .get(format!("{}/raft/status", cluster.raft_url(leader)))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(status["logBaseIndex"].as_u64().unwrap() >= 20, "{status}");
    for i in 0..3 {
        let dir = cluster.data_dir(i);
        assert!(dir.join("snapshot.bin").exists(), "node {i} has a snapshot");
        // Segments only: the next one, being prepared (prealloc-<n>.tmp), is not one.
        let names = std::fs::read_dir(dir.join("wal")).unwrap().map(|e| e.unwrap().file_name());
        let segments = names.filter(|name| name.to_string_lossy().ends_with(".log")).count();
        assert!(segments <= 3, "node {i}: old segments were deleted: {segments} left");
    }
    assert!(cluster.log_text(leader).contains("SNAPSHOT taken index="));

    // Everything survives a full restart from snapshot + log.
    cluster.restart_all();
    cluster.wait_leader(LEADER_WITHIN).await;
    assert_all_readable(&cluster, &acked).await;
    for i in 0..3 {
        wait_node_has(&cluster, i, &acked).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_behind_the_log_base_catches_up_by_snapshot() {
    let cluster = Cluster::start(snapshot_options());
    let leader = cluster.wait_leader(LEADER_WITHIN).await;
    let lagging = (leader + 1) % 3;
    cluster.kill(lagging);
    let acked = write_many(&cluster, "s", 120).await;
    cluster.spawn(lagging);
    wait_node_has(&cluster, lagging, &acked).await;
    assert!(cluster.log_text(lagging).contains("SNAPSHOT installed"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cluster_token_rejects_a_bad_caller() {
    let cluster = Cluster::start(Options { token: Some("s3cret-token".into()), ..Options::default() });
    // The nodes authenticate each other: they elect a leader and replicate.
    let leader = cluster.wait_leader(LEADER_WITHIN).await;
    cluster.put("t", "1", ACK_WITHIN).await.unwrap();
    let url = format!("{}/raft/appendentries", cluster.raft_url(leader));
    let message = serde_json::json!({
        "from": 1, "to": 2, "term": 99, "body": "TimeoutNow"
    });
    for token in [None, Some("wrong"), Some("s3cret-tokeN")] {
        let mut request = cluster.http.post(&url).json(&message);
        if let Some(token) = token {
            request = request.header("x-raft-token", token);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 401, "token {token:?}");
    }
    let response = cluster.http.get(format!("{}/raft/status", cluster.raft_url(leader))).send().await.unwrap();
    assert_eq!(response.status(), 401);
    // The right token but a sender outside the configuration: 403, and no term change.
    let response = cluster.http.post(&url).header("x-raft-token", "s3cret-token").json(&message).send().await.unwrap();
    assert_eq!(response.status(), 403);
    let health = cluster.health(leader).await.unwrap();
    assert_eq!(health["state"], "Leader");
    assert!(health["term"].as_u64().unwrap() < 99);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_stream_needs_the_token_an_upgrade_and_a_peer_name_and_carries_only_its_messages() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let cluster = Cluster::start(Options { token: Some("s3cret-token".into()), ..Options::default() });
    let leader = cluster.wait_leader(LEADER_WITHIN).await;
    let term_before = cluster.health(leader).await.unwrap()["term"].as_u64().unwrap();
    let peer = (leader + 1) % cluster.nodes.len();
    let url = format!("{}/raft/stream", cluster.raft_url(leader));
    let open = |token: Option<&str>, upgrade: bool, from: &str| {
        let mut request = cluster.http.post(&url).header("x-raftkv-from", from);
        if let Some(token) = token {
            request = request.header("x-raft-token", token);
        }
        if upgrade {
            request = request.header("connection", "upgrade").header("upgrade", "raftkv-stream/1");
        }
        request.send()
    };
    let peer_name = cluster.nodes[peer].name.clone();
    assert_eq!(open(None, true, &peer_name).await.unwrap().status(), 401);
    assert_eq!(open(Some("s3cret-token"), false, &peer_name).await.unwrap().status(), 426);
    assert_eq!(open(Some("s3cret-token"), true, "stranger").await.unwrap().status(), 403);

    // A real stream in the peer's name: a message claiming another sender (with a
    // term that would depose the leader) makes the leader drop the stream unread.
    let response = open(Some("s3cret-token"), true, &peer_name).await.unwrap();
    assert_eq!(response.status(), 101);
    let mut stream = response.upgrade().await.unwrap();
    let forged = raft_sm::Message {
        from: raft_sm::NodeId(u64::MAX),
        to: raft_sm::NodeId(0),
        term: raft_sm::Term(term_before + 100),
        body: raft_sm::Body::TimeoutNow,
    };
    let mut bytes = Vec::new();
    node::frames::encode_frames(&[forged], &mut bytes);
    stream.write_all(&bytes).await.unwrap();
    let mut buf = [0u8; 16];
    let read = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf))
        .await
        .expect("the leader closes the stream");
    assert!(matches!(read, Ok(0) | Err(_)), "the stream was closed: {read:?}");
    let health = cluster.health(leader).await.unwrap();
    assert_eq!(health["state"], "Leader");
    assert!(health["term"].as_u64().unwrap() < term_before + 100);
    // The genuine peers still replicate over their own streams.
    cluster.put("after-forgery", "1", ACK_WITHIN).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_inputs_get_the_documented_answers() {
    let cluster = Cluster::start(Options { nodes: 1, ..Options::default() });
    cluster.wait_leader(LEADER_WITHIN).await;
    let url = cluster.url(0);
    let http = &cluster.http;
    async fn answer(response: reqwest::Response) -> (u16, Value) {
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }
    let put = |body: Vec<u8>| http.put(format!("{url}/set")).body(body).send();

    let (status, body) = answer(put(b"{\"key\": \"a\"".to_vec()).await.unwrap()).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("bad_json")));
    assert!(body["message"].as_str().unwrap().contains("EOF"), "{body}");
    let (status, body) = answer(put(b"{\"key\":\"a\",\"value\":\"b\",\"extra\":1}".to_vec()).await.unwrap()).await;
    assert_eq!(status, 400);
    assert!(body["message"].as_str().unwrap().contains("unknown field `extra`"), "{body}");
    let (status, body) = answer(put(b"{\"key\":\"a\",\"value\":\"\xff\"}".to_vec()).await.unwrap()).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("bad_encoding")));
    let (status, body) = answer(put(b"{\"key\":\"\",\"value\":\"b\"}".to_vec()).await.unwrap()).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("key_empty")));
    let (status, body) = answer(put(b"{\"key\":\"a\",\"value\":1}".to_vec()).await.unwrap()).await;
    assert_eq!(status, 400);
    assert!(body["message"].as_str().unwrap().contains("invalid type"), "{body}");
    let big = serde_json::json!({"key": "a", "value": "v".repeat((1 << 20) + 1)});
    let (status, body) = answer(put(serde_json::to_vec(&big).unwrap()).await.unwrap()).await;
    assert_eq!((status, body["error"].as_str()), (413, Some("value_too_large")));
    let long_key = serde_json::json!({"key": "k".repeat(1025), "value": "v"});
    let (status, _) = answer(put(serde_json::to_vec(&long_key).unwrap()).await.unwrap()).await;
    assert_eq!(status, 413);
    // Over the body limit (1 MiB + 64 KiB). The server answers 413 without reading
    // the rest and closes the connection, so a client still writing may see the
    // connection break instead of the answer; either way nothing was accepted.
    match put(vec![b' '; (1 << 20) + (64 << 10) + 4096]).await {
        Ok(response) => {
            let (status, body) = answer(response).await;
            assert_eq!((status, body["error"].as_str()), (413, Some("body_too_large")));
        }
        Err(error) => {
            let text = format!("{error:?}");
            assert!(text.contains("BrokenPipe") || text.contains("ConnectionReset"), "{text}");
        }
    }

    let (status, body) = answer(http.get(format!("{url}/nope")).send().await.unwrap()).await;
    assert_eq!((status, body["error"].as_str()), (404, Some("not_found")));
    let (status, body) = answer(http.post(format!("{url}/get?key=a")).send().await.unwrap()).await;
    assert_eq!((status, body["error"].as_str()), (405, Some("method_not_allowed")));
    let (status, body) = answer(http.get(format!("{url}/get")).send().await.unwrap()).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("key_missing")));
    let (status, _) = answer(http.get(format!("{url}/get?key=missing")).send().await.unwrap()).await;
    assert_eq!(status, 404);
    let (status, _) = answer(http.delete(format!("{url}/delete?key=missing")).send().await.unwrap()).await;
    assert_eq!(status, 404);

    // Request ids go in and out.
    let response = http.get(format!("{url}/health")).header("x-request-id", "trace-me-42").send().await.unwrap();
    assert_eq!(response.headers()["x-request-id"], "trace-me-42");
    let response = http.get(format!("{url}/health")).send().await.unwrap();
    assert!(response.headers().contains_key("x-request-id"));

    // A retried write (same clientId and seq) applies once: it does not undo a later write.
    let write = |client: u64, value: &str| {
        http.put(format!("{url}/set"))
            .json(&serde_json::json!({"key": "once", "value": value, "clientId": client, "seq": 1}))
            .send()
    };
    assert_eq!(write(7, "first").await.unwrap().status(), 200);
    assert_eq!(write(8, "second").await.unwrap().status(), 200);
    assert_eq!(write(7, "first").await.unwrap().status(), 200, "the retry is answered");
    assert_eq!(cluster.get("once", ACK_WITHIN).await.unwrap().as_deref(), Some("second"));

    // The same session through headers; half a session is refused.
    let with_headers = |value: &str| {
        http.put(format!("{url}/set"))
            .header("x-client-id", "9")
            .header("x-client-seq", "1")
            .json(&serde_json::json!({"key": "hdr", "value": value}))
            .send()
    };
    assert_eq!(with_headers("a").await.unwrap().status(), 200);
    assert_eq!(write(10, "b-other").await.unwrap().status(), 200);
    let response = http
        .put(format!("{url}/set"))
        .json(&serde_json::json!({"key": "hdr", "value": "c", "clientId": 11, "seq": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(with_headers("a").await.unwrap().status(), 200, "the retry is answered");
    assert_eq!(cluster.get("hdr", ACK_WITHIN).await.unwrap().as_deref(), Some("c"), "and not applied again");
    let (status, body) = answer(
        http.put(format!("{url}/set"))
            .header("x-client-id", "9")
            .body("{\"key\":\"h\",\"value\":\"v\"}")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((status, body["error"].as_str()), (400, Some("bad_session")));

    let metrics = http.get(format!("{url}/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains("raftkv_role 3"), "{metrics}");
    assert!(metrics.contains("raftkv_wal_fsync_seconds_count"));
    let count = |name: &str| -> u64 {
        let line = metrics.lines().find(|line| line.starts_with(name)).unwrap_or_else(|| panic!("{name} missing"));
        line.rsplit(' ').next().unwrap().parse().unwrap()
    };
    // Every write above waited for a sync; the driver timed each one's round trip.
    assert!(count("raftkv_wal_sync_roundtrip_seconds_count ") > 0);
}

#[test]
fn an_invalid_configuration_exits_with_code_2_and_one_line() {
    let output = std::process::Command::new(common::binary())
        .env_clear()
        .env("PEERS", "http://127.0.0.1:9081,http://127.0.0.1:9082")
        .env("PEER_IDS", "only-one")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("PEER_IDS names 1 nodes but PEERS lists 2"), "{stderr}");
    let output =
        std::process::Command::new(common::binary()).env_clear().env("KVSTORE_PORT", "eighty").output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.starts_with("raftkv: invalid configuration: invalid value 'eighty'"), "{stderr}");
}

/// `raftkv cluster` as a child process, stopped (SIGTERM, then SIGKILL) on drop.
struct ClusterCommand(Option<std::process::Child>);

impl ClusterCommand {
    fn terminate(&mut self) -> Option<std::process::ExitStatus> {
        let mut child = self.0.take()?;
        let _ = std::process::Command::new("kill").arg("-TERM").arg(child.id().to_string()).status();
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
        None
    }
}

impl Drop for ClusterCommand {
    fn drop(&mut self) {
        self.terminate();
    }
}

fn cli(args: &[&str]) -> std::process::Output {
    std::process::Command::new(common::binary()).args(args).output().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cluster_command_and_the_client_commands_work_together() {
    let dir = tempfile::tempdir().unwrap();
    let base = common::free_base_port(3);
    let child = std::process::Command::new(common::binary())
        .args(["cluster", "--nodes", "3", "--base-port", &base.to_string(), "--data-dir"])
        .arg(dir.path().join("data"))
        .env("RUST_LOG", "info")
        .stdin(std::process::Stdio::null())
        .stdout(std::fs::File::create(dir.path().join("cluster.log")).unwrap())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut guard = ClusterCommand(Some(child));
    let urls: Vec<String> = (0..3).map(|i| format!("http://127.0.0.1:{}", base + i)).collect();
    let http = reqwest::Client::new();
    let deadline = Instant::now() + LEADER_WITHIN;
    let leader = loop {
        let mut leader = None;
        for (i, url) in urls.iter().enumerate() {
            if let Ok(response) = http.get(format!("{url}/health")).send().await {
                let body: Value = response.json().await.unwrap_or_default();
                if body["state"] == "Leader" {
                    leader = Some(i);
                }
            }
        }
        if let Some(leader) = leader {
            break leader;
        }
        assert!(
            Instant::now() < deadline,
            "no leader; log: {}",
            std::fs::read_to_string(dir.path().join("cluster.log")).unwrap()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    // Client commands start at a follower and follow the hint.
    let follower = (leader + 1) % 3;
    let endpoints = format!("{},{}", urls[follower], urls.join(","));
    let set = cli(&["set", "cli-key", "cli value", "--endpoints", &endpoints]);
    assert!(set.status.success(), "{}", String::from_utf8_lossy(&set.stderr));
    let get = cli(&["get", "cli-key", "--endpoints", &urls[follower]]);
    assert!(get.status.success(), "{}", String::from_utf8_lossy(&get.stderr));
    assert_eq!(String::from_utf8_lossy(&get.stdout), "cli value\n");
    let status = cli(&["status", "--endpoints", &urls.join(",")]);
    let table = String::from_utf8_lossy(&status.stdout).to_string();
    assert_eq!(table.matches("Leader").count(), 1, "{table}");
    assert_eq!(table.matches("Follower").count(), 2, "{table}");
    let del = cli(&["del", "cli-key", "--endpoints", &endpoints]);
    assert!(del.status.success());
    let missing = cli(&["get", "cli-key", "--endpoints", &urls[leader]]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("not_found"));

    // SIGTERM stops every node (the leader hands over first) and the command exits 0.
    let exit = guard.terminate().expect("the cluster command stops within 15 s");
    assert!(exit.success(), "{exit}");
    for url in &urls {
        assert!(http.get(format!("{url}/health")).send().await.is_err(), "{url} still answers");
    }
    let log = std::fs::read_to_string(dir.path().join("cluster.log")).unwrap();
    assert!(log.contains("[cluster] stopping every node"));
    assert!(log.contains("TRANSFER leadership to"), "a leader hands over on SIGTERM");
}

#[test]
fn a_cluster_child_stops_when_its_parent_goes_away() {
    let dir = tempfile::tempdir().unwrap();
    let base = common::free_base_port(1);
    let mut child = std::process::Command::new(common::binary())
        .env("KVSTORE_PORT", base.to_string())
        .env("RAFT_DATA_DIR", dir.path())
        .env("RAFTKV_EXIT_ON_STDIN_EOF", "1")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", base)).is_err() {
        assert!(Instant::now() < deadline, "the node never listened");
        std::thread::sleep(Duration::from_millis(20));
    }
    drop(child.stdin.take()); // what the kernel does when the parent dies
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "{status}");
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the node kept running after stdin closed");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
