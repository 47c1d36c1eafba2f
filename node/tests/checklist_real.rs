//! The checklist scenarios that ran only on the simulator — A2, C2, E1, H1 and
//! P4 — on real `raftkv` processes on loopback (crash = kill -9, isolation =
//! SIGSTOP of the others). Applies are read from the nodes' `[apply]` debug
//! lines. `cargo test -p node --test checklist_real` runs just these.

mod common;

use common::{eventually, Cluster, Options};
use serde_json::Value;
use std::collections::BTreeMap;
use std::time::Duration;

const WITHIN: Duration = Duration::from_secs(15);

fn debug_options() -> Options {
    Options { env: vec![("RUST_LOG".into(), "info,node=debug".into())], ..Options::default() }
}

/// One process start's `[apply]` lines: (index, the rest of the line).
fn applies(text: &str) -> Vec<(u64, String)> {
    text.lines()
        .filter_map(|line| {
            let rest = &line[line.find("[apply] index=")? + "[apply] index=".len()..];
            let (index, tail) = rest.split_once(' ')?;
            Some((index.parse().ok()?, tail.to_owned()))
        })
        .collect()
}

/// Every start's log of node `i`, one string per start.
fn logs_per_start(cluster: &Cluster, i: usize) -> Vec<String> {
    (0..)
        .map_while(|start| std::fs::read_to_string(cluster.dir.path().join(format!("n{i}-{start}.log"))).ok())
        .collect()
}

/// Within each process start the applied indices are consecutive, with no
/// gap and no repeat (what came from a snapshot is not re-applied).
fn assert_each_index_applied_once(cluster: &Cluster) {
    for i in 0..cluster.nodes.len() {
        for (start, text) in logs_per_start(cluster, i).iter().enumerate() {
            let indices: Vec<u64> = applies(text).into_iter().map(|(index, _)| index).collect();
            for pair in indices.windows(2) {
                assert_eq!(pair[1], pair[0] + 1, "node {i} start {start}: applied {} after {}", pair[1], pair[0]);
            }
        }
    }
}

async fn stale_get(cluster: &Cluster, i: usize, key: &str) -> Option<String> {
    let url = format!("{}/get", cluster.url(i));
    let response = cluster.http.get(url).query(&[("key", key), ("consistency", "stale")]).send().await.ok()?;
    let body: Value = response.json().await.ok()?;
    body["value"].as_str().map(str::to_owned)
}

fn count(text: &str, needle: &str) -> usize {
    text.matches(needle).count()
}

/// A2: a healthy leader for 5 s: no follower starts an election (not even a
/// PreVote round) and the term does not change.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a2_no_election_spam_on_real_processes() {
    let cluster = Cluster::start(Options::default());
    let leader = cluster.wait_leader(WITHIN).await;
    let term = cluster.health(leader).await.unwrap()["term"].clone();
    let before: Vec<(usize, usize)> = (0..3)
        .map(|i| (count(&cluster.log_text(i), "PREVOTE start"), count(&cluster.log_text(i), "ELECTION start")))
        .collect();
    // An observation window: nothing may happen in it.
    tokio::time::sleep(Duration::from_secs(5)).await;
    for (i, counts) in before.iter().enumerate() {
        let health = cluster.health(i).await.unwrap();
        assert_eq!(health["term"], term, "node {i}");
        assert_eq!(health["leaderId"], cluster.nodes[leader].name.as_str());
        let text = cluster.log_text(i);
        assert_eq!(&(count(&text, "PREVOTE start"), count(&text, "ELECTION start")), counts, "node {i}");
    }
}

/// C2: 100 writes to one key, each acknowledged before the next: every node
/// ends with the last value and applied the 100 values in the order written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn c2_ordered_sequential_writes_on_real_processes() {
    let cluster = Cluster::start(debug_options());
    cluster.wait_leader(WITHIN).await;
    // Value n is n bytes long, so the apply lines show the order.
    for n in 1..=100 {
        cluster.put("c2", &"x".repeat(n), WITHIN).await.unwrap();
    }
    let last = "x".repeat(100);
    for i in 0..3 {
        eventually("every node has the last value", WITHIN, || async {
            stale_get(&cluster, i, "c2").await.as_deref() == Some(last.as_str())
        })
        .await;
        let sizes: Vec<usize> = applies(&cluster.log_text(i))
            .into_iter()
            .filter_map(|(_, tail)| tail.strip_prefix("op=set key=c2 value_bytes=").and_then(|n| n.trim().parse().ok()))
            .collect();
        assert_eq!(sizes, (1..=100).collect::<Vec<_>>(), "node {i} applied the values in order");
    }
}

/// E1: the leader, cut off from both followers (they are killed, so that no
/// message to them waits in a socket buffer), appends
/// three writes it can never commit and crashes; the followers elect a new
/// leader and commit five writes at the same indices; the old leader restarts.
/// Its tail is truncated and replaced, and no node ever applies the old writes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn e1_a_conflicting_tail_is_overwritten_and_never_applied_on_real_processes() {
    let cluster = Cluster::start(debug_options());
    let old = cluster.wait_leader(WITHIN).await;
    cluster.put("base", "1", WITHIN).await.unwrap();
    let followers: Vec<usize> = (0..3).filter(|&i| i != old).collect();
    for &i in &followers {
        cluster.kill(i);
    }
    let http = reqwest::Client::builder().timeout(Duration::from_millis(500)).build().unwrap();
    for n in 0..3 {
        let body = serde_json::json!({ "key": format!("lost{n}"), "value": "old" });
        let answer = http.put(format!("{}/set", cluster.url(old))).json(&body).send().await;
        assert!(answer.map_or(true, |r| r.status() != 200), "no majority: never acknowledged");
    }
    eventually("the old leader wrote its tail", WITHIN, || async {
        cluster.log_text(old).matches("key=lost").count() == 0 && {
            let status: Option<Value> = async {
                let url = format!("{}/raft/status", cluster.raft_url(old));
                cluster.http.get(url).send().await.ok()?.json().await.ok()
            }
            .await;
            status.is_some_and(|s| s["lastLogIndex"].as_u64() >= Some(s["commitIndex"].as_u64().unwrap_or(0) + 3))
        }
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await; // Its WAL thread syncs the tail.
    cluster.kill(old);
    for &i in &followers {
        cluster.spawn(i);
    }
    cluster.wait_leader(WITHIN).await;
    for n in 0..5 {
        cluster.put(&format!("new{n}"), "new", WITHIN).await.unwrap();
    }
    cluster.spawn(old);
    eventually("the old leader catches up", WITHIN, || async {
        stale_get(&cluster, old, "new4").await.as_deref() == Some("new")
    })
    .await;
    assert!(cluster.log_text(old).contains("TRUNCATE log from index"), "the old tail was truncated");
    for i in 0..3 {
        assert!(!cluster.log_text(i).contains("key=lost"), "node {i} applied an old write");
        for n in 0..3 {
            assert_eq!(stale_get(&cluster, i, &format!("lost{n}")).await, None);
        }
    }
    for n in 0..3 {
        assert_eq!(cluster.get(&format!("lost{n}"), WITHIN).await.unwrap(), None);
    }
}

/// H1: concurrent writers; on every node each index is applied exactly once:
/// consecutive indices, no gap, no repeat.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h1_each_index_applied_exactly_once_per_node_on_real_processes() {
    let cluster = std::sync::Arc::new(Cluster::start(debug_options()));
    cluster.wait_leader(WITHIN).await;
    let mut writers = Vec::new();
    for w in 0..4 {
        let cluster = cluster.clone();
        writers.push(tokio::spawn(async move {
            for n in 0..50 {
                cluster.put(&format!("h{w}-{n}"), "v", WITHIN).await.unwrap();
            }
        }));
    }
    for writer in writers {
        writer.await.unwrap();
    }
    let leader = cluster.wait_leader(WITHIN).await;
    let commit = cluster.health(leader).await.unwrap()["commitIndex"].as_u64().unwrap();
    for i in 0..3 {
        eventually("every node applied everything", WITHIN, || async {
            cluster.health(i).await.is_some_and(|h| h["appliedIndex"].as_u64() >= Some(commit))
        })
        .await;
        let indices: Vec<u64> = applies(&cluster.log_text(i)).into_iter().map(|(index, _)| index).collect();
        assert_eq!(indices, (1..=indices.len() as u64).collect::<Vec<_>>(), "node {i}");
        assert!(indices.len() as u64 >= commit, "node {i}");
    }
}

/// P4: four clients writing with sessions (a retry reuses its sequence number)
/// while a follower, the leader and then every node crash and restart: no
/// double apply within any process start, every acknowledged write readable,
/// and every node ends with the same state.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn p4_no_double_apply_across_restarts_on_real_processes() {
    let cluster = std::sync::Arc::new(Cluster::start(debug_options()));
    cluster.wait_leader(WITHIN).await;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut writers = Vec::new();
    for client in 1..=4u64 {
        let (cluster, stop) = (cluster.clone(), stop.clone());
        writers.push(tokio::spawn(async move {
            let http = reqwest::Client::builder().timeout(Duration::from_secs(2)).build().unwrap();
            let mut acknowledged = BTreeMap::new();
            let mut seq = 1u64;
            let mut target = 0usize;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let key = format!("p{client}-{}", seq % 20);
                let value = format!("{seq}");
                let body = serde_json::json!({ "key": key, "value": value, "clientId": client, "seq": seq });
                // The same session and seq until acknowledged: a retry after a
                // lost answer must not apply twice.
                match http.put(format!("{}/set", cluster.url(target))).json(&body).send().await {
                    Ok(response) if response.status() == 200 => {
                        acknowledged.insert(key, value);
                        seq += 1;
                    }
                    _ => {
                        target = (target + 1) % 3;
                        tokio::time::sleep(Duration::from_millis(30)).await;
                    }
                }
            }
            acknowledged
        }));
    }
    tokio::time::sleep(Duration::from_millis(800)).await;
    let leader = cluster.wait_leader(WITHIN).await;
    let follower = (leader + 1) % 3;
    cluster.kill(follower);
    tokio::time::sleep(Duration::from_millis(500)).await;
    cluster.spawn(follower);
    let leader = cluster.wait_leader(WITHIN).await;
    cluster.kill(leader);
    tokio::time::sleep(Duration::from_millis(500)).await;
    cluster.spawn(leader);
    cluster.wait_leader(WITHIN).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    cluster.restart_all();
    cluster.wait_leader(WITHIN).await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut acknowledged = BTreeMap::new();
    for writer in writers {
        acknowledged.extend(writer.await.unwrap());
    }
    assert!(acknowledged.len() >= 8, "the clients made progress: {}", acknowledged.len());
    for (key, value) in &acknowledged {
        assert_eq!(cluster.get(key, WITHIN).await.unwrap().as_deref(), Some(value.as_str()), "{key}");
    }
    let leader = cluster.wait_leader(WITHIN).await;
    let commit = cluster.health(leader).await.unwrap()["commitIndex"].as_u64().unwrap();
    for i in 0..3 {
        eventually("every node applied everything", WITHIN, || async {
            cluster.health(i).await.is_some_and(|h| h["appliedIndex"].as_u64() >= Some(commit))
        })
        .await;
        for (key, value) in &acknowledged {
            assert_eq!(stale_get(&cluster, i, key).await.as_deref(), Some(value.as_str()), "node {i} {key}");
        }
    }
    assert_each_index_applied_once(&cluster);
}
