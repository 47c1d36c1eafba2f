//! Issue 11, items 5–8 on real `raftkv` processes: fail-stop on a core panic,
//! a full disk (a tmpfs of its own, filled for real), corruption told apart
//! from a torn tail and `raftkv repair` with its vote hold, and `raftkv
//! cluster` stopping quickly with a real handover. `cargo test -p node --test
//! disk_faults` runs just these.

mod common;

use common::{eventually, fill_disk, Cluster, Options};
use serde_json::Value;
use std::time::{Duration, Instant};

const WITHIN: Duration = Duration::from_secs(15);

async fn put_on(cluster: &Cluster, i: usize, key: &str, value: &str) -> (u16, Value) {
    let body = serde_json::json!({ "key": key, "value": value });
    match cluster.http.put(format!("{}/set", cluster.url(i))).json(&body).send().await {
        Ok(response) => {
            let code = response.status().as_u16();
            (code, response.json().await.unwrap_or(Value::Null))
        }
        Err(error) => (0, Value::String(error.to_string())),
    }
}

async fn stale_get(cluster: &Cluster, i: usize, key: &str) -> Option<String> {
    let url = format!("{}/get", cluster.url(i));
    let response = cluster.http.get(url).query(&[("key", key), ("consistency", "stale")]).send().await.ok()?;
    if response.status() != 200 {
        return None;
    }
    let body: Value = response.json().await.ok()?;
    body["value"].as_str().map(str::to_owned)
}

/// Fail-stop: a panic in the driver task (the core) makes the process exit
/// non-zero instead of leaving its HTTP servers answering 503 forever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_core_panic_makes_the_process_exit_non_zero() {
    let options =
        Options { nodes: 1, env: vec![("RAFTKV_TEST_PANIC_AFTER_MS".into(), "1500".into())], ..Options::default() };
    let cluster = Cluster::start(options);
    cluster.wait_leader(WITHIN).await;
    let status = cluster.wait_exit(0, WITHIN).expect("the node exits after the core panicked");
    assert_eq!(status.code(), Some(1), "{status}");
    let log = cluster.log_text(0);
    assert!(log.contains("the Raft core panicked"), "{log}");
    assert!(cluster.health(0).await.is_none(), "nothing answers any more");
}

/// A single node on a disk that fills up: writes stall, then answer 503
/// `disk_full`; stale reads keep working; killed and restarted on the full disk
/// it comes up; once space is freed it resumes by itself, and every
/// acknowledged write is there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_refuses_writes_keeps_stale_reads_survives_a_restart_and_resumes() {
    let options =
        Options { nodes: 1, wal_segment_bytes: Some(64 << 10), tmpfs_mib: vec![(0, 16)], ..Options::default() };
    let cluster = Cluster::start(options);
    cluster.wait_leader(WITHIN).await;
    cluster.put("before", "1", WITHIN).await.unwrap();
    let filler = fill_disk(&cluster.data_dir(0));
    let value = "v".repeat(1000);
    let mut acknowledged = Vec::new();
    let mut refusal = None;
    for n in 0..2000 {
        let (code, body) = put_on(&cluster, 0, &format!("k{n}"), &value).await;
        match code {
            200 => acknowledged.push(n),
            503 if body["error"] == "disk_full" => {
                refusal = Some(body);
                break;
            }
            _ => {}
        }
    }
    let refusal = refusal.expect("writes are refused with disk_full");
    assert!(refusal["message"].as_str().is_some_and(|m| m.contains("disk is full")), "{refusal}");
    assert_eq!(stale_get(&cluster, 0, "before").await.as_deref(), Some("1"), "stale reads keep working");
    assert!(cluster.log_text(0).contains("DISK FULL"));

    // Restarted on the full disk, it comes up (and cannot lead yet).
    cluster.kill(0);
    cluster.spawn(0);
    eventually("the restarted node answers", WITHIN, || async { cluster.health(0).await.is_some() }).await;
    assert_eq!(stale_get(&cluster, 0, "before").await.as_deref(), Some("1"));
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(cluster.is_running(0) && cluster.try_exit_status(0).is_none(), "no crash loop");

    std::fs::remove_file(filler).unwrap();
    cluster.put("after", "2", WITHIN).await.expect("writes resume once there is space");
    for n in acknowledged {
        assert_eq!(cluster.get(&format!("k{n}"), WITHIN).await.unwrap().as_deref(), Some(value.as_str()), "k{n}");
    }
}

/// A fresh node on a disk that is already full comes up (no crash loop, no
/// temp file left) and starts serving once space is freed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fresh_node_on_a_full_disk_waits_for_space_instead_of_crash_looping() {
    let options = Options { nodes: 1, tmpfs_mib: vec![(0, 8)], ..Options::default() };
    let cluster = Cluster::start(options);
    cluster.kill(0);
    let dir = cluster.data_dir(0);
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            std::fs::remove_dir_all(path).unwrap();
        } else {
            std::fs::remove_file(path).unwrap();
        }
    }
    let filler = fill_disk(&dir);
    cluster.spawn(0);
    eventually("the node reports the full disk", WITHIN, || async { cluster.log_text(0).contains("DISK FULL") }).await;
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert!(cluster.try_exit_status(0).is_none(), "it waits instead of exiting: {}", cluster.log_text(0));
    let temp_files = std::fs::read_dir(dir.join("wal"))
        .map(|entries| entries.filter(|e| e.as_ref().unwrap().file_name().to_string_lossy().ends_with(".tmp")).count())
        .unwrap_or(0);
    assert!(temp_files <= 1, "at most the segment being prepared right now");
    std::fs::remove_file(filler).unwrap();
    cluster.wait_leader(WITHIN).await;
    cluster.put("k", "v", WITHIN).await.expect("it serves once there is space");
    assert!(cluster.log_text(0).contains("quarter of it is used"), "segments fitted to the 8 MiB disk");
}

/// The leader's disk fills up: it stops acknowledging, hands leadership over,
/// the cluster keeps acknowledging writes, and the node catches up once space
/// is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_whose_disk_fills_up_hands_over_and_catches_up_later() {
    let options = Options {
        wal_segment_bytes: Some(64 << 10),
        tmpfs_mib: vec![(0, 16)],
        // Node 0 times out first, so it is the first leader.
        node_env: vec![
            (0, "RAFT_ELECTION_TIMEOUT_MIN_MS".into(), "100".into()),
            (0, "RAFT_ELECTION_TIMEOUT_MAX_MS".into(), "150".into()),
        ],
        ..Options::default()
    };
    let cluster = Cluster::start(options);
    assert_eq!(cluster.wait_leader(WITHIN).await, 0, "node 0 leads first");
    let filler = fill_disk(&cluster.data_dir(0));
    let value = "w".repeat(1000);
    let mut handed_over = false;
    let mut written = 0;
    for n in 0..1500 {
        cluster.put(&format!("k{n}"), &value, WITHIN).await.expect("the cluster keeps acknowledging writes");
        written = n + 1;
        if n % 20 == 0 && cluster.log_text(0).contains("transferring leadership: the disk is full") {
            handed_over = true;
            break;
        }
    }
    assert!(handed_over, "node 0 never reported its disk full and handed over");
    eventually("another node leads", WITHIN, || async {
        for i in [1, 2] {
            if cluster.health(i).await.is_some_and(|h| h["state"] == "Leader") {
                return true;
            }
        }
        false
    })
    .await;
    cluster.put("during", "x", WITHIN).await.unwrap();
    std::fs::remove_file(filler).unwrap();
    eventually("node 0 catches up", WITHIN, || async {
        stale_get(&cluster, 0, "during").await.as_deref() == Some("x")
    })
    .await;
    for n in (0..written).step_by(7) {
        assert_eq!(cluster.get(&format!("k{n}"), WITHIN).await.unwrap().as_deref(), Some(value.as_str()), "k{n}");
    }
}

fn last_segment(dir: &std::path::Path) -> std::path::PathBuf {
    let mut names: Vec<_> = std::fs::read_dir(dir.join("wal"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    names.sort();
    names.pop().expect("a segment")
}

/// One flipped byte in the last fsynced batch is corruption: the node refuses
/// to start naming segment and offset. `raftkv repair` cuts the damage off and
/// holds the node's vote until a leader has caught it up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corruption_is_refused_at_start_and_repair_holds_the_vote_until_caught_up() {
    let cluster = Cluster::start(Options::default());
    let leader = cluster.wait_leader(WITHIN).await;
    let (victim, other) = match leader {
        0 => (1, 2),
        1 => (2, 0),
        _ => (0, 1),
    };
    for n in 0..20 {
        cluster.put(&format!("k{n}"), &format!("v{n}"), WITHIN).await.unwrap();
    }
    eventually("the victim has every write", WITHIN, || async {
        stale_get(&cluster, victim, "k19").await.as_deref() == Some("v19")
    })
    .await;
    cluster.kill(victim);
    let segment = last_segment(&cluster.data_dir(victim));
    let mut bytes = std::fs::read(&segment).unwrap();
    let end = bytes.iter().rposition(|&b| b != 0).expect("records") + 1;
    bytes[end - 3] ^= 0x40;
    std::fs::write(&segment, &bytes).unwrap();

    cluster.spawn(victim);
    let status = cluster.wait_exit(victim, WITHIN).expect("a corrupt log is refused at start");
    assert_eq!(status.code(), Some(1));
    let log = cluster.log_text(victim);
    let name = segment.file_name().unwrap().to_str().unwrap();
    assert!(log.contains("is corrupt at byte") && log.contains(name) && log.contains("raftkv repair"), "{log}");

    let output = cluster.command_for(victim, "repair").output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout} {}", String::from_utf8_lossy(&output.stderr));
    assert!(stdout.contains("cut") && stdout.contains(name), "{stdout}");
    let hold: u64 =
        std::fs::read_to_string(cluster.data_dir(victim).join("vote-after-index")).unwrap().trim().parse().unwrap();
    assert!(hold >= 21, "the hold covers what it held: {hold}");

    // Without the leader, the repaired node refuses to help elect anyone.
    cluster.kill(leader);
    cluster.spawn(victim);
    tokio::time::sleep(Duration::from_secs(3)).await;
    for i in [victim, other] {
        let health = cluster.health(i).await;
        assert!(health.as_ref().is_none_or(|h| h["state"] != "Leader"), "{i} leads: {health:?}");
    }
    let log = cluster.log_text(victim);
    assert!(log.contains("repaired: not caught up yet"), "{log}");

    // With the leader back, it catches up past the hold and votes again.
    cluster.spawn(leader);
    cluster.wait_leader(WITHIN).await;
    for n in 20..(hold + 10) {
        cluster.put(&format!("k{n}"), &format!("v{n}"), WITHIN).await.unwrap();
    }
    let last = format!("k{}", hold + 9);
    let expected = format!("v{}", hold + 9);
    eventually("the repaired node catches up", WITHIN, || async {
        stale_get(&cluster, victim, &last).await.as_deref() == Some(expected.as_str())
    })
    .await;
    let current = cluster.wait_leader(WITHIN).await;
    cluster.kill(current);
    let next = cluster.wait_leader(WITHIN).await;
    assert_ne!(next, current);
    for n in 0..(hold + 10) {
        assert_eq!(cluster.get(&format!("k{n}"), WITHIN).await.unwrap(), Some(format!("v{n}")), "k{n}");
    }
}

/// `raftkv cluster` stops in under a second on SIGTERM, the leader handing over
/// first, and kills nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cluster_command_stops_in_under_a_second_with_a_handover() {
    let cluster = Cluster::start(Options { nodes: 0, ..Options::default() });
    let base = common::free_base_port(3);
    let log = cluster.dir.path().join("cluster.log");
    let file = std::fs::File::create(&log).unwrap();
    let mut child = std::process::Command::new(common::binary())
        .args(["cluster", "--nodes", "3", "--base-port", &base.to_string(), "--data-dir"])
        .arg(cluster.dir.path().join("data"))
        .env("RAFT_ELECTION_TIMEOUT_MIN_MS", "300")
        .env("RAFT_ELECTION_TIMEOUT_MAX_MS", "600")
        .env("RAFT_HEARTBEAT_MS", "50")
        .stdin(std::process::Stdio::null())
        .stdout(file.try_clone().unwrap())
        .stderr(file)
        .spawn()
        .unwrap();
    let guard = KillOnDrop(child.id());
    let http = reqwest::Client::builder().timeout(Duration::from_secs(2)).build().unwrap();
    let mut leader_port = None;
    let deadline = Instant::now() + WITHIN;
    while leader_port.is_none() {
        assert!(Instant::now() < deadline, "no leader: {}", std::fs::read_to_string(&log).unwrap());
        for port in base..base + 3 {
            if let Ok(response) = http.get(format!("http://127.0.0.1:{port}/health")).send().await {
                let health: Value = response.json().await.unwrap_or(Value::Null);
                if health["state"] == "Leader" {
                    leader_port = Some(port);
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let body = serde_json::json!({ "key": "a", "value": "1" });
    let response = http.put(format!("http://127.0.0.1:{}/set", leader_port.unwrap())).json(&body).send().await;
    assert_eq!(response.unwrap().status(), 200);
    let started = Instant::now();
    let status = std::process::Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(status.success());
    let exit = loop {
        if let Some(exit) = child.try_wait().unwrap() {
            break exit;
        }
        assert!(started.elapsed() < Duration::from_secs(15), "the cluster command hangs");
        std::thread::sleep(Duration::from_millis(5));
    };
    let took = started.elapsed();
    drop(guard);
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(exit.success(), "{exit}: {text}");
    assert!(took < Duration::from_secs(1), "took {took:?}: {text}");
    assert!(text.contains("leadership handed over"), "{text}");
    assert!(!text.contains("killing it") && !text.contains("did not finish"), "{text}");
}

struct KillOnDrop(u32);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = std::process::Command::new("kill").args(["-KILL", &self.0.to_string()]).status();
    }
}

/// `scripts/run-cluster.sh start` refuses a cluster that is running and leaves
/// its pid files alone.
#[test]
fn the_script_refuses_to_start_a_running_cluster() {
    let base = common::free_base_port(3);
    let dir = tempfile::tempdir().unwrap();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/run-cluster.sh");
    let run = |command: &str| {
        std::process::Command::new("bash")
            .arg(script)
            .arg(command)
            .env("NODES", "1")
            .env("BASE_PORT", base.to_string())
            .env("DATA_DIR", dir.path().join("data"))
            .env("LOG_DIR", dir.path().join("logs"))
            .env("RAFTKV_BIN", common::binary())
            .output()
            .unwrap()
    };
    let pid_file = dir.path().join("logs").join(format!("node-{base}.pid"));
    let first = run("start");
    let stopper = ScriptStop(Box::new(|| drop(run("stop"))));
    assert!(first.status.success(), "{}", String::from_utf8_lossy(&first.stderr));
    let pid = std::fs::read_to_string(&pid_file).unwrap();
    let second = run("start");
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(!second.status.success(), "a second start must fail");
    assert!(stderr.contains("already running"), "{stderr}");
    assert_eq!(std::fs::read_to_string(&pid_file).unwrap(), pid, "the pid file is untouched");
    drop(stopper);
    assert!(!pid_file.exists());
}

struct ScriptStop<'a>(Box<dyn Fn() + 'a>);

impl Drop for ScriptStop<'_> {
    fn drop(&mut self) {
        (self.0)();
    }
}
