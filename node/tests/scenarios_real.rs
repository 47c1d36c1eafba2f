//! The checklist scenarios A1, B1, B2, C1, F1, G1, P2, P3 and S1 on real
//! `raftkv` processes on loopback (crash = kill -9, restart = same data
//! directory). The same stories run on the simulator in `scenarios/`; here they
//! replace the predecessor's PowerShell scripts. `cargo test -p node --test
//! scenarios_real` runs just these.

mod common;

use common::{eventually, Cluster, Options};
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const LEADER_WITHIN: Duration = Duration::from_secs(15);
const WRITE_WITHIN: Duration = Duration::from_secs(15);

async fn status(cluster: &Cluster, i: usize) -> Value {
    let url = format!("{}/raft/status", cluster.raft_url(i));
    cluster.http.get(url).send().await.expect("status answers").json().await.expect("status is JSON")
}

async fn get_on(cluster: &Cluster, i: usize, key: &str, consistency: &str) -> (u16, Value) {
    let url = format!("{}/get", cluster.url(i));
    let response = cluster.http.get(url).query(&[("key", key), ("consistency", consistency)]).send().await.unwrap();
    let code = response.status().as_u16();
    (code, response.json().await.unwrap_or(Value::Null))
}

async fn put_on(cluster: &Cluster, i: usize, key: &str, value: &str) -> (u16, Value) {
    let body = serde_json::json!({ "key": key, "value": value });
    let response = cluster.http.put(format!("{}/set", cluster.url(i))).json(&body).send().await.unwrap();
    let code = response.status().as_u16();
    (code, response.json().await.unwrap_or(Value::Null))
}

fn followers(cluster: &Cluster, leader: usize) -> Vec<usize> {
    (0..cluster.nodes.len()).filter(|&i| i != leader).collect()
}

/// A1: exactly one leader: after start-up exactly one node leads, and all nodes
/// agree on it and on its term.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a1_exactly_one_leader_on_real_processes() {
    let cluster = Cluster::start(Options::default());
    let leader = cluster.wait_leader(LEADER_WITHIN).await;
    let healths: Vec<Value> = futures_all(&cluster).await;
    let leaders = healths.iter().filter(|h| h["state"] == "Leader").count();
    assert_eq!(leaders, 1);
    let term = &healths[leader]["term"];
    for health in &healths {
        assert_eq!(health["leaderId"], cluster.nodes[leader].name.as_str());
        assert_eq!(&health["term"], term, "all nodes are in the leader's term");
    }
}

async fn futures_all(cluster: &Cluster) -> Vec<Value> {
    let mut out = Vec::new();
    for i in 0..cluster.nodes.len() {
        out.push(cluster.health(i).await.expect("health answers"));
    }
    out
}

/// B1: a set sent to a follower is rejected as not-leader (409) with the leader's
/// id and client URL; nothing is appended on the follower.
/// B2: a set on the leader is acknowledged only after majority commit, and applied
/// on the leader before the answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn b1_follower_write_is_refused_with_a_hint_and_b2_leader_write_commits_first() {
    let cluster = Cluster::start(Options::default());
    let leader = cluster.wait_leader(LEADER_WITHIN).await;
    let follower = followers(&cluster, leader)[0];
    cluster.put("warmup", "1", WRITE_WITHIN).await.unwrap();
    let last_before = status(&cluster, follower).await["lastLogIndex"].clone();

    let (code, body) = put_on(&cluster, follower, "b1", "x").await;
    assert_eq!(code, 409, "{body}");
    assert_eq!(body["leaderId"], cluster.nodes[leader].name.as_str());
    assert_eq!(body["leader"], cluster.url(leader).as_str());
    assert_eq!(status(&cluster, follower).await["lastLogIndex"], last_before, "nothing appended on the follower");

    let (code, body) = put_on(&cluster, leader, "b2", "y").await;
    assert_eq!(code, 200, "{body}");
    let index = body["index"].as_u64().expect("the answer carries the entry's index");
    let leader_status = status(&cluster, leader).await;
    assert!(leader_status["commitIndex"].as_u64().unwrap() >= index, "committed before the answer");
    assert!(leader_status["lastApplied"].as_u64().unwrap() >= index, "applied on the leader before the answer");
    let mut holders = 1; // the leader
    for i in followers(&cluster, leader) {
        if status(&cluster, i).await["lastLogIndex"].as_u64().unwrap() >= index {
            holders += 1;
        }
    }
    assert!(holders >= 2, "a majority holds the entry when the client hears back");
}

/// C1: read-your-write on all nodes: after an acknowledged write a linearizable
/// read on every node returns it, and a stale read on every node does within a
/// bounded time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn c1_read_your_write_on_all_nodes() {
    let cluster = Cluster::start(Options::default());
    cluster.wait_leader(LEADER_WITHIN).await;
    cluster.put("c1", "seen", WRITE_WITHIN).await.unwrap();
    for i in 0..3 {
        let (code, body) = get_on(&cluster, i, "c1", "linearizable").await;
        assert_eq!((code, body["value"].as_str()), (200, Some("seen")), "linearizable read on node {i}");
    }
    for i in 0..3 {
        let cluster = &cluster;
        eventually(&format!("a stale read on node {i} sees the write"), Duration::from_secs(2), || async move {
            get_on(cluster, i, "c1", "stale").await.1["value"] == "seen"
        })
        .await;
    }
}

/// F1: with one of three nodes crashed (kill -9), writes commit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn f1_one_follower_down_writes_still_commit() {
    let cluster = Cluster::start(Options::default());
    let leader = cluster.wait_leader(LEADER_WITHIN).await;
    let down = followers(&cluster, leader)[0];
    cluster.kill(down);
    for i in 0..10 {
        cluster.put(&format!("f1-{i}"), "v", WRITE_WITHIN).await.expect("a majority is up");
    }
    assert_eq!(cluster.get("f1-9", WRITE_WITHIN).await.unwrap().as_deref(), Some("v"));
}

/// G1: the leader is killed mid-load; a new leader is elected within the bound the
/// election timeouts allow; no acknowledged write is lost.
/// P2: the old leader restarts from its data directory and rejoins as a follower.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn g1_leader_crash_mid_load_and_p2_the_old_leader_rejoins_as_follower() {
    let cluster = Arc::new(Cluster::start(Options::default()));
    let old_leader = cluster.wait_leader(LEADER_WITHIN).await;
    let acked = Arc::new(Mutex::new(BTreeMap::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (cluster, acked, stop) = (cluster.clone(), acked.clone(), stop.clone());
        tokio::spawn(async move {
            let mut i = 0;
            while !stop.load(Ordering::SeqCst) {
                let (key, value) = (format!("g1-{i}"), format!("v{i}"));
                if cluster.put(&key, &value, Duration::from_secs(10)).await.is_ok() {
                    acked.lock().unwrap().insert(key, value);
                }
                i += 1;
            }
        })
    };
    eventually("20 writes acknowledged", WRITE_WITHIN, || async { acked.lock().unwrap().len() >= 20 }).await;
    cluster.kill(old_leader);
    let killed_at = Instant::now();
    let new_leader = cluster.wait_leader(LEADER_WITHIN).await;
    // Election timeouts are 300–600 ms here: a few rounds at most, plus polling.
    assert!(killed_at.elapsed() < Duration::from_secs(5), "re-election took {:?}", killed_at.elapsed());
    assert_ne!(new_leader, old_leader);
    let before = acked.lock().unwrap().len();
    eventually("writes continue under the new leader", WRITE_WITHIN, || async {
        acked.lock().unwrap().len() >= before + 20
    })
    .await;
    stop.store(true, Ordering::SeqCst);
    writer.await.unwrap();
    let acked = acked.lock().unwrap().clone();
    for (key, value) in &acked {
        assert_eq!(cluster.get(key, WRITE_WITHIN).await.unwrap().as_ref(), Some(value), "acknowledged {key} lost");
    }

    cluster.spawn(old_leader);
    eventually("the old leader follows the new one", LEADER_WITHIN, || {
        let cluster = cluster.clone();
        async move {
            let Some(health) = cluster.health(old_leader).await else { return false };
            health["state"] == "Follower" && health["leaderId"] == cluster.nodes[new_leader].name.as_str()
        }
    })
    .await;
    let (last_key, last_value) = acked.iter().next_back().expect("writes were acknowledged");
    eventually("the old leader converges", LEADER_WITHIN, || {
        let cluster = cluster.clone();
        async move { get_on(&cluster, old_leader, last_key, "stale").await.1["value"] == last_value.as_str() }
    })
    .await;
}

/// P3: an entry written on an isolated leader (both followers down) is never
/// acknowledged, and never becomes visible anywhere after the whole cluster
/// crashes and restarts. The followers come back first: had the old leader won
/// the next election instead, Raft would be right to commit the entry (its
/// client was told "outcome unknown", never "failed").
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn p3_an_uncommitted_write_on_an_isolated_leader_never_appears() {
    let cluster = Cluster::start(Options::default());
    let old_leader = cluster.wait_leader(LEADER_WITHIN).await;
    cluster.put("before", "1", WRITE_WITHIN).await.unwrap();
    for follower in followers(&cluster, old_leader) {
        cluster.kill(follower);
    }
    let (code, body) = put_on(&cluster, old_leader, "z", "never").await;
    assert_eq!(code, 503, "not acknowledged without a majority: {body}");
    for i in 0..3 {
        cluster.kill(i);
    }
    for follower in followers(&cluster, old_leader) {
        cluster.spawn(follower);
    }
    let new_leader = cluster.wait_leader(LEADER_WITHIN).await;
    assert_ne!(new_leader, old_leader);
    cluster.put("after", "2", WRITE_WITHIN).await.unwrap();
    cluster.spawn(old_leader);
    cluster.wait_leader(LEADER_WITHIN).await;
    for i in 0..3 {
        let cluster_ref = &cluster;
        eventually(&format!("node {i} applied the later write"), Duration::from_secs(5), || async move {
            get_on(cluster_ref, i, "after", "stale").await.0 == 200
        })
        .await;
        assert_eq!(get_on(&cluster, i, "z", "stale").await.0, 404, "node {i} applied the uncommitted write");
        assert_eq!(get_on(&cluster, i, "z", "linearizable").await.0, 404, "node {i} shows the uncommitted write");
    }
}

/// S1: with a low snapshot threshold and many writes, a full-cluster restart
/// restores every node from snapshot + log with the right contents.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s1_snapshot_survives_a_full_cluster_restart() {
    let options = Options { snapshot_threshold: Some(20), ..Options::default() };
    let cluster = Cluster::start(options);
    cluster.wait_leader(LEADER_WITHIN).await;
    for i in 0..120 {
        cluster.put(&format!("s1-{}", i % 40), &format!("v{i}"), WRITE_WITHIN).await.unwrap();
    }
    for i in 0..3 {
        let cluster_ref = &cluster;
        eventually(&format!("node {i} compacted its log"), Duration::from_secs(5), || async move {
            status(cluster_ref, i).await["logBaseIndex"].as_u64().unwrap_or(0) > 0
        })
        .await;
    }
    cluster.restart_all();
    cluster.wait_leader(LEADER_WITHIN).await;
    for i in 0..3 {
        assert!(status(&cluster, i).await["logBaseIndex"].as_u64().unwrap() > 0, "node {i} restored a snapshot");
        for k in 0..40 {
            let key = format!("s1-{k}");
            let expected = format!("v{}", 80 + k);
            eventually(&format!("node {i} has {key}={expected}"), Duration::from_secs(5), || {
                let (key, expected) = (key.clone(), expected.clone());
                let cluster = &cluster;
                async move { get_on(cluster, i, &key, "stale").await.1["value"] == expected.as_str() }
            })
            .await;
        }
    }
}
