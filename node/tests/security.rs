//! The attacks of issue 11 on real processes: strangers on the Raft port,
//! forged terms, slow and oversized connections, mismatched data directories.

mod common;

use common::{binary, Cluster, Options, TestCa, TEST_TOKEN};
use raft_sm::{Body, Entry, LogIndex, Message, Payload, Term};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const LEADER_WITHIN: Duration = Duration::from_secs(20);
const ACK_WITHIN: Duration = Duration::from_secs(15);

fn id(name: &str) -> raft_sm::NodeId {
    node::config::node_id_of(name)
}

/// Runs `command` until it exits or `within` passes (then kills it); returns
/// its exit code (None: still running) and what it printed on stderr.
fn run_briefly(mut command: Command, within: Duration) -> (Option<i32>, String) {
    let dir = tempfile::tempdir().unwrap();
    let err_path = dir.path().join("stderr");
    command.stdin(Stdio::null()).stdout(Stdio::null()).stderr(std::fs::File::create(&err_path).unwrap());
    let mut child = command.spawn().expect("start raftkv");
    let deadline = Instant::now() + within;
    let code = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status.code();
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    (code, std::fs::read_to_string(err_path).unwrap_or_default())
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

#[test]
fn a_multi_node_start_without_peer_authentication_is_refused_unless_opted_out() {
    let dir = tempfile::tempdir().unwrap();
    let (port, raft_port, other) = (free_port(), free_port(), free_port());
    let command = |extra: &[(&str, &str)]| {
        let mut command = Command::new(binary());
        command
            .arg("serve")
            .env_clear()
            .env("KVSTORE_PORT", port.to_string())
            .env("RAFT_PORT", raft_port.to_string())
            .env("NODE_ID", "a")
            .env("PEERS", format!("127.0.0.1:{raft_port},127.0.0.1:{other}"))
            .env("PEER_IDS", "a,b")
            .env("RAFT_BIND", "127.0.0.1")
            .env("RAFT_DATA_DIR", dir.path());
        for (name, value) in extra {
            command.env(name, value);
        }
        command
    };
    let (code, stderr) = run_briefly(command(&[]), Duration::from_secs(10));
    assert_eq!(code, Some(2), "refused as a configuration error: {stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr}");
    assert!(stderr.contains("not authenticated") && stderr.contains("--insecure-peers"), "{stderr}");
    // The explicit opt-out starts (it keeps running until killed).
    let (code, stderr) = run_briefly(command(&[("RAFT_INSECURE_PEERS", "1")]), Duration::from_secs(2));
    assert_eq!(code, None, "runs with the opt-out: {stderr}");
    let (code, stderr) = run_briefly(command(&[("RAFT_CLUSTER_TOKEN", "tok-tok-tok")]), Duration::from_secs(2));
    assert_eq!(code, None, "runs with a token: {stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_appendentries_and_timeoutnow_without_the_token_change_nothing() {
    let cluster = Cluster::start(Options::default());
    let leader = cluster.wait_leader(LEADER_WITHIN).await;
    let follower = (leader + 1) % 3;
    let leader_name = cluster.nodes[leader].name.clone();
    let follower_name = cluster.nodes[follower].name.clone();
    let term = cluster.health(leader).await.unwrap()["term"].as_u64().unwrap();
    cluster.put("victim", "genuine", ACK_WITHIN).await.unwrap();
    let last = cluster.health(follower).await.unwrap()["commitIndex"].as_u64().unwrap_or(0);
    let forged_append = Message {
        from: id(&leader_name),
        to: id(&follower_name),
        term: Term(term + 1),
        body: Body::AppendEntries(raft_sm::AppendEntries {
            prev_log_index: LogIndex(last),
            prev_log_term: Term(term),
            entries: vec![Entry {
                term: Term(term + 1),
                index: LogIndex(last + 1),
                payload: Payload::Command(raft_sm::kv::Command::set("victim", "FORGED").encode()),
            }],
            leader_commit: LogIndex(last + 1),
            read_round: 0,
        }),
    };
    let forged_timeout =
        Message { from: id(&leader_name), to: id(&follower_name), term: Term(term + 1), body: Body::TimeoutNow };
    // (The harness's own client carries the token; a stranger's does not.)
    let stranger = reqwest::Client::builder().timeout(Duration::from_secs(5)).build().unwrap();
    for (path, message) in [("appendentries", &forged_append), ("timeoutnow", &forged_timeout)] {
        let url = format!("{}/raft/{path}", cluster.raft_url(follower));
        let response = stranger.post(&url).json(message).send().await.unwrap();
        assert_eq!(response.status(), 401, "{path} without a token");
        let response = stranger.post(&url).header("x-raft-token", "not-the-token").json(message).send().await.unwrap();
        assert_eq!(response.status(), 401, "{path} with a wrong token");
    }
    // A stream without the token, and one naming another cluster, are refused too.
    let stream_url = format!("{}/raft/stream", cluster.raft_url(follower));
    let open = |token: Option<&str>, cluster_id: Option<&str>| {
        let mut request = stranger
            .post(&stream_url)
            .header("x-raftkv-from", &leader_name)
            .header("connection", "upgrade")
            .header("upgrade", "raftkv-stream/1");
        if let Some(token) = token {
            request = request.header("x-raft-token", token);
        }
        if let Some(cluster_id) = cluster_id {
            request = request.header("x-raftkv-cluster", cluster_id);
        }
        request.send()
    };
    assert_eq!(open(None, None).await.unwrap().status(), 401);
    let other_cluster = open(Some(TEST_TOKEN), Some("another-cluster")).await.unwrap();
    assert_eq!(other_cluster.status(), 403);
    let body: serde_json::Value = other_cluster.json().await.unwrap();
    assert_eq!(body["error"], "wrong_cluster", "{body}");

    assert_eq!(cluster.get("victim", ACK_WITHIN).await.unwrap().as_deref(), Some("genuine"));
    let health = cluster.health(leader).await.unwrap();
    assert_eq!(health["state"], "Leader", "the leader was not deposed");
    assert_eq!(health["term"].as_u64().unwrap(), term);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forged_vote_with_a_term_near_the_end_does_not_brick_the_cluster() {
    let cluster = Cluster::start(Options::default());
    let leader = cluster.wait_leader(LEADER_WITHIN).await;
    cluster.put("before", "1", ACK_WITHIN).await.unwrap();
    // With the token, as a member, to every node: a transfer vote (which
    // bypasses the leader lease) with term 2^64-2.
    for target in 0..3 {
        let from = &cluster.nodes[(target + 1) % 3].name;
        let forged = Message {
            from: id(from),
            to: id(&cluster.nodes[target].name),
            term: Term(u64::MAX - 1),
            body: Body::RequestVote(raft_sm::RequestVote {
                pre_vote: false,
                transfer: true,
                last_log_index: LogIndex(u64::MAX / 2),
                last_log_term: Term(u64::MAX - 1),
            }),
        };
        let url = format!("{}/raft/requestvote", cluster.raft_url(target));
        let response = cluster.http.post(&url).header("x-raft-token", TEST_TOKEN).json(&forged).send().await.unwrap();
        assert_eq!(response.status(), 204, "accepted for the core, which refuses it");
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while !(0..3).all(|i| cluster.log_text(i).contains("beyond the term limit")) {
        assert!(Instant::now() < deadline, "every node logs the refused term");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for i in 0..3 {
        let term = cluster.health(i).await.unwrap()["term"].as_u64().unwrap();
        assert!(term < 1000, "node {i} kept a sane term: {term}");
    }
    cluster.kill(leader);
    let next = cluster.wait_leader(LEADER_WITHIN).await;
    assert_ne!(next, leader);
    cluster.put("after", "2", ACK_WITHIN).await.unwrap();
    assert_eq!(cluster.get("before", ACK_WITHIN).await.unwrap().as_deref(), Some("1"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tls_cluster_replicates_and_refuses_wrong_or_missing_client_certificates() {
    let cluster = Cluster::start(Options { tls: true, token: None, ..Options::default() });
    let leader = cluster.wait_leader(LEADER_WITHIN).await;
    assert!(cluster.url(leader).starts_with("https://"));
    cluster.put("tls", "on", ACK_WITHIN).await.unwrap();
    assert_eq!(cluster.get("tls", ACK_WITHIN).await.unwrap().as_deref(), Some("on"));
    let ca = cluster.ca.as_ref().unwrap();
    let peer = (leader + 1) % 3;
    let peer_name = cluster.nodes[peer].name.clone();
    let stream_url = format!("{}/raft/stream", cluster.raft_url(leader));
    let open = |client: &reqwest::Client| {
        client
            .post(&stream_url)
            .header("x-raftkv-from", &peer_name)
            .header("connection", "upgrade")
            .header("upgrade", "raftkv-stream/1")
            .send()
    };
    // No client certificate: the TLS handshake of the Raft port fails.
    let no_cert = ca.client(None);
    assert!(open(&no_cert).await.is_err(), "a connection without a client certificate is refused");
    // A certificate from the right CA but for another name.
    ca.issue("mallory", &["mallory"]);
    let response = open(&ca.client(Some("mallory"))).await.unwrap();
    assert_eq!(response.status(), 403);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["error"], "wrong_certificate", "{body}");
    // A certificate from another CA.
    let other = TestCa::new(cluster.dir.path().join("other-ca"));
    other.issue(&peer_name, &[&peer_name, "127.0.0.1"]);
    let mut pem = std::fs::read(other.dir.join(format!("{peer_name}.crt"))).unwrap();
    pem.extend(std::fs::read(other.dir.join(format!("{peer_name}.key"))).unwrap());
    let foreign = reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(&std::fs::read(&ca.ca_file).unwrap()).unwrap())
        .identity(reqwest::Identity::from_pem(&pem).unwrap())
        .build()
        .unwrap();
    assert!(open(&foreign).await.is_err(), "a certificate of another CA is refused");
    // The genuine peer's certificate opens a stream.
    assert_eq!(open(&ca.client(Some(&peer_name))).await.unwrap().status(), 101);
    // Plain HTTP on the TLS ports gets nowhere.
    let plain = reqwest::Client::builder().timeout(Duration::from_secs(3)).build().unwrap();
    let url = format!("http://127.0.0.1:{}/health", cluster.nodes[leader].port);
    assert!(!plain.get(url).send().await.is_ok_and(|r| r.status().is_success()));
    // The CLI speaks https with the CA file, and refuses the node without it.
    let endpoints = (0..3).map(|i| cluster.url(i)).collect::<Vec<_>>().join(",");
    let cli = |args: &[&str], trust: bool| {
        let mut command = Command::new(binary());
        command.args(args).args(["--endpoints", &endpoints, "--timeout-ms", "5000"]).env_remove("RAFTKV_CA_FILE");
        if trust {
            command.arg("--ca-file").arg(&ca.ca_file);
        }
        command.output().unwrap()
    };
    let set = cli(&["set", "cli", "over-tls"], true);
    assert!(set.status.success(), "{}", String::from_utf8_lossy(&set.stderr));
    let get = cli(&["get", "cli"], true);
    assert_eq!(String::from_utf8_lossy(&get.stdout), "over-tls\n", "{}", String::from_utf8_lossy(&get.stderr));
    let untrusted = cli(&["get", "cli"], false);
    assert!(!untrusted.status.success(), "without the CA file the node's certificate is not trusted");
    // The cluster still works.
    cluster.put("tls", "still", ACK_WITHIN).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slowloris_connections_are_closed_within_the_header_timeout_and_slow_bodies_at_the_body_timeout() {
    let env = vec![
        ("RAFT_HEADER_TIMEOUT_MS".to_owned(), "1000".to_owned()),
        ("RAFT_BODY_TIMEOUT_MS".to_owned(), "1000".to_owned()),
    ];
    let cluster = Cluster::start(Options { nodes: 1, env, ..Options::default() });
    cluster.wait_leader(LEADER_WITHIN).await;
    let address = format!("127.0.0.1:{}", cluster.nodes[0].port);
    let mut slow = Vec::new();
    for _ in 0..250 {
        let mut tcp = tokio::net::TcpStream::connect(&address).await.unwrap();
        tcp.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: ").await.unwrap();
        slow.push(tcp);
    }
    let opened = Instant::now();
    // Meanwhile the node serves others.
    assert!(cluster.health(0).await.is_some());
    let mut closed = 0;
    for tcp in &mut slow {
        let mut buf = [0u8; 256];
        let left = Duration::from_millis(3_000).saturating_sub(opened.elapsed());
        // EOF, an error answer, or a reset: closed (or answered) in time.
        if tokio::time::timeout(left, tcp.read(&mut buf)).await.is_ok() {
            closed += 1;
        }
    }
    assert_eq!(closed, 250, "every slow connection was closed within the header timeout (+2 s)");
    drop(slow);

    // A body that never finishes is cut off at the body timeout.
    let mut slow_body = tokio::net::TcpStream::connect(&address).await.unwrap();
    slow_body
        .write_all(
            b"PUT /set HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"ke",
        )
        .await
        .unwrap();
    let started = Instant::now();
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(4), slow_body.read_to_end(&mut answer)).await;
    assert!(read.is_ok(), "the slow body was cut off (after {:?})", started.elapsed());
    assert!(started.elapsed() >= Duration::from_millis(900), "not before the body timeout");
}

/// Over the connection limit a new connection gets a short 503, and the node
/// serves again once connections close. (Its own node, with the default 5 s
/// header timeout: held connections that send nothing must outlive opening
/// them all, even on a loaded machine.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_the_connection_limit_a_connection_gets_a_short_503_and_the_node_carries_on() {
    let env = vec![("RAFT_MAX_CONNECTIONS".to_owned(), "300".to_owned())];
    let cluster = Cluster::start(Options { nodes: 1, env, ..Options::default() });
    cluster.wait_leader(LEADER_WITHIN).await;
    let address = format!("127.0.0.1:{}", cluster.nodes[0].port);
    let mut held = Vec::new();
    for _ in 0..300 {
        held.push(tokio::net::TcpStream::connect(&address).await.unwrap());
    }
    let mut extra = tokio::net::TcpStream::connect(&address).await.unwrap();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(3), extra.read_to_end(&mut answer)).await;
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 503") && answer.contains("too_many_connections"), "{answer}");
    drop(held);
    let deadline = Instant::now() + Duration::from_secs(5);
    while cluster.health(0).await.is_none() {
        assert!(Instant::now() < deadline, "serves again once connections close");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|line| line.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversize_frame_closes_the_stream_without_memory_growth() {
    let cluster = Cluster::start(Options::default());
    let leader = cluster.wait_leader(LEADER_WITHIN).await;
    let pid = cluster.pid(leader).unwrap();
    let before = rss_kib(pid);
    let peer = &cluster.nodes[(leader + 1) % 3].name;
    let url = format!("{}/raft/stream", cluster.raft_url(leader));
    for _ in 0..2 {
        let response = cluster
            .http
            .post(&url)
            .header("x-raft-token", TEST_TOKEN)
            .header("x-raftkv-from", peer)
            .header("connection", "upgrade")
            .header("upgrade", "raftkv-stream/1")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 101);
        let mut stream = response.upgrade().await.unwrap();
        // A 64 MiB frame header, then data: the stream must close, not buffer.
        stream.write_all(&(64u32 << 20).to_le_bytes()).await.unwrap();
        let junk = vec![0xAB; 1 << 20];
        let mut written = 0usize;
        let outcome = tokio::time::timeout(Duration::from_secs(10), async {
            while written < 64 << 20 {
                if stream.write_all(&junk).await.is_err() {
                    return "closed";
                }
                written += junk.len();
            }
            "all written"
        })
        .await;
        assert_eq!(outcome, Ok("closed"), "the node closed the stream after {written} bytes");
        assert!(written < 32 << 20, "closed early: {written} bytes went in");
    }
    let after = rss_kib(pid);
    assert!(after < before + 20 * 1024, "RSS went from {before} KiB to {after} KiB");
    cluster.put("still", "fine", ACK_WITHIN).await.unwrap();
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else if entry.file_name() != "LOCK" {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restarting_with_mismatched_peers_node_id_or_cluster_id_is_refused_with_exit_2() {
    let cluster = Cluster::start(Options::default());
    cluster.wait_leader(LEADER_WITHIN).await;
    cluster.put("k", "v", ACK_WITHIN).await.unwrap();
    let victim = 2;
    cluster.kill(victim);
    let identity: serde_json::Value =
        serde_json::from_slice(&std::fs::read(cluster.data_dir(victim).join("identity.json")).unwrap()).unwrap();
    assert_eq!(identity["node"], "n2");
    assert_eq!(identity["voters"], serde_json::json!(["n0", "n1", "n2"]));

    // The README's trap: the same data directory started as a single node.
    let mut alone = cluster.command(victim);
    alone.env_remove("PEERS").env_remove("PEER_IDS");
    let (code, stderr) = run_briefly(alone, Duration::from_secs(10));
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("contradict") && stderr.contains("missing [n0,n1]"), "{stderr}");

    // Another cluster id.
    let mut other_cluster = cluster.command(victim);
    other_cluster.env("RAFT_CLUSTER_ID", "some-other-cluster");
    let (code, stderr) = run_briefly(other_cluster, Duration::from_secs(10));
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("belongs to cluster"), "{stderr}");

    // A copy of the directory under another node's name.
    copy_dir(&cluster.data_dir(victim), &cluster.dir.path().join("data").join("n9"));
    let mut renamed = cluster.command(victim);
    renamed.env("NODE_ID", "n9").env("PEER_IDS", "n0,n1,n9");
    let (code, stderr) = run_briefly(renamed, Duration::from_secs(10));
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("belongs to node \"n2\""), "{stderr}");

    // With its own configuration it rejoins and catches up.
    cluster.spawn(victim);
    cluster.put("k2", "v2", ACK_WITHIN).await.unwrap();
    cluster.wait_leader(LEADER_WITHIN).await;
}

/// Kills a child process when dropped (also when the test panics).
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn running_out_of_file_descriptors_on_accept_does_not_kill_the_node() {
    let cluster = Cluster::start(Options { nodes: 1, ..Options::default() });
    cluster.wait_leader(LEADER_WITHIN).await;
    cluster.put("k", "v", ACK_WITHIN).await.unwrap();
    cluster.kill(0);
    // The same node again, under a limit of 64 open files.
    let configured = cluster.command(0);
    let mut command = Command::new("sh");
    command.args(["-c", "ulimit -n 64 && exec \"$0\" serve"]).arg(binary()).env_clear();
    for (name, value) in configured.get_envs() {
        if let Some(value) = value {
            command.env(name, value);
        }
    }
    let log = cluster.dir.path().join("fd-limit.log");
    command.stdin(Stdio::null()).stdout(Stdio::null()).stderr(std::fs::File::create(&log).unwrap());
    let mut node = KillOnDrop(command.spawn().unwrap());
    let deadline = Instant::now() + LEADER_WITHIN;
    while cluster.health(0).await.is_none() {
        assert!(Instant::now() < deadline, "the node starts: {}", std::fs::read_to_string(&log).unwrap());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let address = format!("127.0.0.1:{}", cluster.nodes[0].port);
    let mut held = Vec::new();
    for _ in 0..120 {
        held.push(tokio::net::TcpStream::connect(&address).await.unwrap());
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while !std::fs::read_to_string(&log).unwrap().contains("accept failed") {
        assert!(Instant::now() < deadline, "the node ran out of descriptors and said so");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(node.0.try_wait().unwrap().is_none(), "the node is still running");
    drop(held);
    let deadline = Instant::now() + Duration::from_secs(10);
    // (Straight to the node: the harness does not count it as one of its own.)
    let url = format!("{}/get?key=k", cluster.url(0));
    loop {
        if let Ok(response) = cluster.http.get(&url).send().await {
            let body: serde_json::Value = response.json().await.unwrap_or_default();
            if body["value"] == "v" {
                break;
            }
        }
        assert!(Instant::now() < deadline, "serves again once descriptors are free");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(node.0.try_wait().unwrap().is_none(), "the node is still running");
}

/// Reads one HTTP/1.1 response (headers and a `content-length` body) off a stream.
async fn read_response(tcp: &mut tokio::net::TcpStream) -> String {
    let mut text = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = tokio::time::timeout(Duration::from_secs(5), tcp.read(&mut buf)).await.unwrap().unwrap();
        assert!(n > 0, "closed before the response ended");
        text.extend_from_slice(&buf[..n]);
        let shown = String::from_utf8_lossy(&text).to_string();
        if let Some(end) = shown.find("\r\n\r\n") {
            let length: usize = shown[..end]
                .lines()
                .find_map(|line| {
                    line.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse().unwrap())
                })
                .unwrap_or(0);
            if text.len() >= end + 4 + length {
                return shown;
            }
        }
    }
}

/// A keep-alive connection that sends nothing for the idle timeout is closed;
/// one that keeps asking stays open past it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_connection_is_closed_and_a_busy_one_is_kept() {
    let env = vec![("RAFT_IDLE_TIMEOUT_MS".to_owned(), "400".to_owned())];
    let cluster = Cluster::start(Options { nodes: 1, env, ..Options::default() });
    cluster.wait_leader(LEADER_WITHIN).await;
    let address = format!("127.0.0.1:{}", cluster.nodes[0].port);
    let request = b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n";

    let mut busy = tokio::net::TcpStream::connect(&address).await.unwrap();
    let mut idle = tokio::net::TcpStream::connect(&address).await.unwrap();
    idle.write_all(request).await.unwrap();
    assert!(read_response(&mut idle).await.starts_with("HTTP/1.1 200"));
    let idle_since = Instant::now();
    // Busy for three idle timeouts: a request every 100 ms.
    while idle_since.elapsed() < Duration::from_millis(1_200) {
        busy.write_all(request).await.unwrap();
        assert!(read_response(&mut busy).await.starts_with("HTTP/1.1 200"), "the busy connection stays open");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut buf = [0u8; 64];
    let read = tokio::time::timeout(Duration::from_secs(5), idle.read(&mut buf)).await;
    assert!(matches!(read, Ok(Ok(0)) | Ok(Err(_))), "the idle connection was closed: {read:?}");
}
