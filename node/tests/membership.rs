//! Membership changes on real processes (issue 13, "real processes"): the
//! admin API's answers, a node joining with an empty data directory, and the
//! replacement story under write load: kill a voter for good, add a fresh
//! node, promote it, remove the dead one, grow to five, shrink back to three
//! removing the leader, and find every acknowledged write on every member.

mod common;

use common::{Cluster, Options, TEST_TOKEN};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One admin request to node `i` with the cluster token; (status, body).
async fn admin_at(
    cluster: &Cluster,
    i: usize,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    admin_url(&cluster.url(i), method, path, body).await
}

async fn admin_url(base: &str, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
    let client = reqwest::Client::builder().timeout(Duration::from_secs(8)).build().unwrap();
    let mut request = client.request(method, format!("{base}{path}")).bearer_auth(TEST_TOKEN);
    if let Some(body) = body {
        request = request.json(&body);
    }
    match request.send().await {
        Ok(response) => {
            let status = response.status().as_u16();
            (status, response.json().await.unwrap_or(Value::Null))
        }
        Err(error) => (0, json!({ "error": "unreachable", "message": error.to_string() })),
    }
}

/// Sends an admin request to whichever of `members` leads, following hints and
/// retrying `503`s and unreachable nodes, until a final answer or `within`.
async fn admin(
    cluster: &Cluster,
    members: &[usize],
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
    within: Duration,
) -> (u16, Value) {
    let deadline = Instant::now() + within;
    let mut attempt = 0;
    let mut target = cluster.url(members[0]);
    loop {
        let (status, answer) = admin_url(&target, method.clone(), path, body.clone()).await;
        let hint = answer["leader"].as_str().filter(|_| status == 409 && answer["error"] == "not_leader");
        if let Some(leader) = hint {
            target = leader.to_owned();
            continue;
        }
        let retry = status == 0 || status == 503 || (status == 409 && answer["error"] == "not_leader");
        if !retry || Instant::now() >= deadline {
            return (status, answer);
        }
        attempt += 1;
        target = cluster.url(members[attempt % members.len()]);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn member_body(cluster: &Cluster, i: usize) -> Value {
    json!({
        "name": cluster.nodes[i].name,
        "raftUrl": cluster.raft_url(i),
        "clientUrl": cluster.url(i),
    })
}

/// Adds node `i` (already started with `--join`) as a learner.
async fn add_learner(cluster: &Cluster, members: &[usize], i: usize) {
    let (status, body) = admin(
        cluster,
        members,
        reqwest::Method::POST,
        "/cluster/members",
        Some(member_body(cluster, i)),
        Duration::from_secs(30),
    )
    .await;
    assert_eq!(status, 200, "add {}: {body}", cluster.nodes[i].name);
    let learners: Vec<&str> =
        body["learners"].as_array().unwrap().iter().map(|m| m["name"].as_str().unwrap()).collect();
    assert!(learners.contains(&cluster.nodes[i].name.as_str()), "{body}");
}

/// Promotes learner `i`, retrying while it has not caught up yet.
async fn promote(cluster: &Cluster, members: &[usize], i: usize) {
    let path = format!("/cluster/members/{}/promote", cluster.nodes[i].name);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (status, body) = admin(cluster, members, reqwest::Method::POST, &path, None, Duration::from_secs(30)).await;
        if status == 200 {
            let voters: Vec<&str> =
                body["voters"].as_array().unwrap().iter().map(|m| m["name"].as_str().unwrap()).collect();
            assert!(voters.contains(&cluster.nodes[i].name.as_str()), "{body}");
            return;
        }
        assert_eq!(body["error"], "not_caught_up", "promote {}: {status} {body}", cluster.nodes[i].name);
        assert!(Instant::now() < deadline, "{} never caught up: {body}", cluster.nodes[i].name);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Removes member `i`. An answer lost with the leader (it may remove itself)
/// is checked against the member list instead.
async fn remove(cluster: &Cluster, members: &[usize], i: usize) {
    let name = &cluster.nodes[i].name;
    let path = format!("/cluster/members/{name}");
    let (status, body) = admin(cluster, members, reqwest::Method::DELETE, &path, None, Duration::from_secs(30)).await;
    if status == 200 {
        return;
    }
    let others: Vec<usize> = members.iter().copied().filter(|&m| m != i).collect();
    common::eventually(
        &format!("{name} gone from the configuration (after {status} {body})"),
        Duration::from_secs(30),
        || async {
            let (status, list) =
                admin(cluster, &others, reqwest::Method::GET, "/cluster/members", None, Duration::from_secs(5)).await;
            status == 200 && !names(&list).contains(name)
        },
    )
    .await;
}

fn names(list: &Value) -> Vec<String> {
    ["voters", "learners", "outgoing"]
        .iter()
        .flat_map(|kind| list[kind].as_array().cloned().unwrap_or_default())
        .map(|member| member["name"].as_str().unwrap_or_default().to_owned())
        .collect()
}

async fn voter_names(cluster: &Cluster, members: &[usize]) -> Vec<String> {
    let (status, list) =
        admin(cluster, members, reqwest::Method::GET, "/cluster/members", None, Duration::from_secs(20)).await;
    assert_eq!(status, 200, "{list}");
    assert_eq!(list["changeInProgress"], false, "{list}");
    let mut voters: Vec<String> =
        list["voters"].as_array().unwrap().iter().map(|m| m["name"].as_str().unwrap().to_owned()).collect();
    voters.sort();
    voters
}

/// Writers that record every acknowledged write.
struct Load {
    acked: Arc<Mutex<BTreeMap<String, String>>>,
    stop: Arc<AtomicBool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Load {
    fn start(cluster: &Arc<Cluster>, writers: usize) -> Load {
        let acked = Arc::new(Mutex::new(BTreeMap::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let tasks = (0..writers)
            .map(|w| {
                let (cluster, acked, stop) = (cluster.clone(), acked.clone(), stop.clone());
                tokio::spawn(async move {
                    let mut n = 0;
                    while !stop.load(Ordering::Relaxed) {
                        let (key, value) = (format!("w{w}-{n}"), format!("v{n}"));
                        if cluster.put(&key, &value, Duration::from_secs(10)).await.is_ok() {
                            acked.lock().unwrap().insert(key, value);
                        }
                        n += 1;
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                })
            })
            .collect();
        Load { acked, stop, tasks }
    }

    fn count(&self) -> usize {
        self.acked.lock().unwrap().len()
    }

    async fn wait_more(&self, than: usize) {
        common::eventually("more writes acknowledged", Duration::from_secs(30), || async { self.count() > than + 5 })
            .await;
    }

    async fn stop(self) -> BTreeMap<String, String> {
        self.stop.store(true, Ordering::Relaxed);
        for task in self.tasks {
            task.await.unwrap();
        }
        Arc::try_unwrap(self.acked).unwrap().into_inner().unwrap()
    }
}

async fn health_field(cluster: &Cluster, i: usize, field: &str) -> Option<Value> {
    cluster.health(i).await.map(|health| health[field].clone())
}

/// Every acknowledged write, read locally on member `i` once it applied the leader's commit index.
async fn assert_member_has(cluster: &Cluster, leader: usize, i: usize, acked: &BTreeMap<String, String>) {
    let commit =
        health_field(cluster, leader, "commitIndex").await.and_then(|v| v.as_u64()).expect("the leader answers");
    common::eventually(
        &format!("{} applied index {commit}", cluster.nodes[i].name),
        Duration::from_secs(30),
        || async {
            health_field(cluster, i, "appliedIndex")
                .await
                .and_then(|v| v.as_u64())
                .is_some_and(|applied| applied >= commit)
        },
    )
    .await;
    for (key, value) in acked {
        let response = cluster
            .http
            .get(format!("{}/get", cluster.url(i)))
            .query(&[("key", key.as_str()), ("consistency", "stale")])
            .send()
            .await
            .unwrap();
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["value"], value.as_str(), "{key} on {}: {body}", cluster.nodes[i].name);
    }
}

async fn leader_among(cluster: &Cluster, members: &[usize]) -> usize {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        for &i in members {
            if health_field(cluster, i, "state").await.is_some_and(|state| state == "Leader") {
                return i;
            }
        }
        assert!(Instant::now() < deadline, "no leader among {members:?} within 30 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_admin_api_authenticates_answers_on_the_leader_and_types_its_refusals() {
    let cluster = Cluster::start(Options { nodes: 4, joiners: 1, ..Options::default() });
    let leader = cluster.wait_leader(Duration::from_secs(20)).await;
    let follower = (0..3).find(|&i| i != leader).unwrap();
    let anonymous = reqwest::Client::new();
    let response = anonymous.get(format!("{}/cluster/members", cluster.url(leader))).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 401);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "unauthorized", "{body}");
    let response = anonymous
        .get(format!("{}/cluster/members", cluster.url(leader)))
        .bearer_auth("not-the-token")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 401, "a wrong token");

    let (status, body) = admin_at(&cluster, follower, reqwest::Method::GET, "/cluster/members", None).await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(
        (body["error"].as_str(), body["leader"].as_str()),
        (Some("not_leader"), Some(cluster.url(leader).as_str()))
    );

    let (status, list) = admin_at(&cluster, leader, reqwest::Method::GET, "/cluster/members", None).await;
    assert_eq!(status, 200, "{list}");
    assert_eq!(voter_names(&cluster, &[leader]).await, ["n0", "n1", "n2"]);
    let leader_row = list["voters"].as_array().unwrap().iter().find(|m| m["leader"] == true).unwrap();
    assert_eq!(leader_row["name"], cluster.nodes[leader].name.as_str());
    assert_eq!(leader_row["raftUrl"], cluster.raft_url(leader).as_str());
    assert!(list["voters"].as_array().unwrap().iter().all(|m| m["lagEntries"].is_u64()), "{list}");

    let (status, body) =
        admin_at(&cluster, leader, reqwest::Method::POST, "/cluster/members", Some(json!({"name": "x"}))).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("bad_json")), "{body}");
    let bad_url = json!({"name": "x", "raftUrl": "nope", "clientUrl": "http://h:1"});
    let (status, body) = admin_at(&cluster, leader, reqwest::Method::POST, "/cluster/members", Some(bad_url)).await;
    assert_eq!(status, 400, "{body}");
    assert!(body["message"].as_str().unwrap().contains("raft_url"), "{body}");

    // n3 is not running yet: it is added, but it cannot be promoted.
    add_learner(&cluster, &[leader], 3).await;
    // The same through the CLI, asked of a follower (it follows the hint).
    let member_cli = |args: &[&str]| {
        std::process::Command::new(common::binary())
            .arg("member")
            .args(args)
            .env_clear()
            .env("RAFT_CLUSTER_TOKEN", TEST_TOKEN)
            .env("RAFTKV_ENDPOINTS", cluster.url(follower))
            .output()
            .unwrap()
    };
    let listed = member_cli(&["list"]);
    let text = String::from_utf8_lossy(&listed.stdout);
    assert!(listed.status.success(), "{text} {}", String::from_utf8_lossy(&listed.stderr));
    assert!(text.contains("n3               learner"), "{text}");
    assert!(text.contains(&format!("{:<16} voter*", cluster.nodes[leader].name)), "{text}");
    let refused = member_cli(&["promote", "n3", "--timeout-ms", "3000"]);
    assert_eq!(refused.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("not_caught_up (409)"), "{stderr}");
    let anonymous = std::process::Command::new(common::binary())
        .args(["member", "list", "--endpoints", &cluster.url(leader)])
        .env_clear()
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&anonymous.stderr).contains("unauthorized (401)"));
    let (status, body) = admin_at(&cluster, leader, reqwest::Method::POST, "/cluster/members/n3/promote", None).await;
    assert_eq!((status, body["error"].as_str()), (409, Some("not_caught_up")), "{body}");
    assert!(body["message"].as_str().unwrap().contains("learner n3 is not caught up"), "{body}");
    let (status, body) =
        admin_at(&cluster, leader, reqwest::Method::POST, "/cluster/members", Some(member_body(&cluster, 3))).await;
    assert_eq!((status, body["error"].as_str()), (409, Some("invalid_change")), "{body}");
    let (status, body) =
        admin_at(&cluster, leader, reqwest::Method::POST, "/cluster/members/ghost/promote", None).await;
    assert_eq!((status, body["error"].as_str()), (404, Some("unknown_member")), "{body}");
    let (status, body) = admin_at(&cluster, leader, reqwest::Method::POST, "/cluster/members/n0/promote", None).await;
    assert_eq!((status, body["error"].as_str()), (409, Some("invalid_change")), "a voter: {body}");
    let health = cluster.health(follower).await.unwrap();
    assert_eq!(health["learners"], json!(["n3"]), "{health}");

    // Started with an empty directory and --join, it catches up and is promoted.
    cluster.spawn_joining(3, follower);
    promote(&cluster, &[leader], 3).await;
    assert_eq!(voter_names(&cluster, &[leader]).await, ["n0", "n1", "n2", "n3"]);
    cluster.put("after-join", "yes", Duration::from_secs(10)).await.unwrap();
    let raft_status: Value =
        cluster.http.get(format!("{}/raft/status", cluster.raft_url(3))).send().await.unwrap().json().await.unwrap();
    assert_eq!(raft_status["voters"], json!(["n0", "n1", "n2", "n3"]), "{raft_status}");
    assert_eq!(raft_status["changeInProgress"], false, "{raft_status}");
    let identity: Value =
        serde_json::from_slice(&std::fs::read(cluster.data_dir(3).join("identity.json")).unwrap()).unwrap();
    assert_eq!(identity["joined"], cluster.url(follower).as_str(), "{identity}");
    // After the change, a restart with a PEERS that names neither the first
    // voters nor the stored ones is refused, saying what differs; the first
    // PEERS is still accepted (the stored configuration wins over it).
    let other = (0..3).find(|&i| i != leader).unwrap();
    cluster.kill(other);
    let mut wrong = cluster.command(other);
    wrong.env("PEERS", format!("{},http://127.0.0.1:1", cluster.raft_url(other)));
    wrong.env("PEER_IDS", format!("{},zz", cluster.nodes[other].name));
    let output = wrong.output().unwrap();
    assert_eq!(output.status.code(), Some(2), "a contradicting PEERS is refused");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("stored configuration [n0,n1,n2,n3]"), "{stderr}");
    cluster.spawn(other);
    common::eventually("the member restarted with its first PEERS answers", Duration::from_secs(20), || async {
        cluster.health(other).await.is_some_and(|health| health["voters"].as_array().is_some_and(|v| v.len() == 4))
    })
    .await;
    common::eventually("per-follower metrics on the leader", Duration::from_secs(5), || async {
        let text =
            cluster.http.get(format!("{}/metrics", cluster.url(leader))).send().await.unwrap().text().await.unwrap();
        text.contains("raftkv_follower_lag_entries{peer=\"n3\"}")
            && text.contains("raftkv_follower_last_contact_ms{peer=\"n3\"}")
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn replace_a_dead_node_grow_to_five_and_shrink_to_three_removing_the_leader_under_load() {
    let cluster =
        Arc::new(Cluster::start(Options { nodes: 6, joiners: 3, snapshot_threshold: Some(40), ..Options::default() }));
    let first_leader = cluster.wait_leader(Duration::from_secs(20)).await;
    let load = Load::start(&cluster, 2);
    load.wait_more(20).await;

    // A follower dies for good.
    let dead = (0..3).find(|&i| i != first_leader).unwrap();
    cluster.kill(dead);
    let mut members: Vec<usize> = (0..3).filter(|&i| i != dead).collect();
    load.wait_more(load.count()).await;

    // A fresh node joins, is promoted, and the dead one is removed. Enough
    // writes first that the leader's log is compacted past what n3 could get
    // by appends alone.
    load.wait_more(120).await;
    cluster.spawn_joining(3, members[0]);
    add_learner(&cluster, &members, 3).await;
    promote(&cluster, &members, 3).await;
    members.push(3);
    remove(&cluster, &members, dead).await;
    let mut expected: Vec<String> = members.iter().map(|&i| cluster.nodes[i].name.clone()).collect();
    expected.sort();
    assert_eq!(voter_names(&cluster, &members).await, expected);
    load.wait_more(load.count()).await;

    // The new node caught up by snapshot (the log was compacted before it was
    // added), and the configuration it got that way holds every member's
    // address: restarted without RAFT_JOIN (no seeds at all), it still
    // reaches the leader and keeps up.
    assert!(cluster.log_text(3).contains("SNAPSHOT installed"), "n3 was expected to catch up by snapshot");
    cluster.kill(3);
    cluster.spawn(3);
    load.wait_more(load.count()).await;
    let leader = leader_among(&cluster, &members).await;
    let commit = health_field(&cluster, leader, "commitIndex").await.and_then(|v| v.as_u64()).unwrap();
    common::eventually("the restarted joined node keeps up", Duration::from_secs(30), || async {
        health_field(&cluster, 3, "appliedIndex")
            .await
            .and_then(|v| v.as_u64())
            .is_some_and(|applied| applied >= commit)
    })
    .await;

    // Grow to five.
    for i in [4, 5] {
        cluster.spawn_joining(i, members[members.len() - 1]);
        add_learner(&cluster, &members, i).await;
        promote(&cluster, &members, i).await;
        members.push(i);
    }
    assert_eq!(voter_names(&cluster, &members).await.len(), 5);
    load.wait_more(load.count()).await;

    // A member restarted with its first PEERS is not refused: the stored configuration wins.
    let current = leader_among(&cluster, &members).await;
    let original = members.iter().copied().find(|&i| i < 3 && i != current);
    if let Some(original) = original {
        cluster.kill(original);
        cluster.spawn(original);
        common::eventually("the restarted member answers", Duration::from_secs(20), || async {
            cluster.health(original).await.is_some()
        })
        .await;
    }

    // Shrink back to three: remove the leader, then one more.
    let leader = leader_among(&cluster, &members).await;
    remove(&cluster, &members, leader).await;
    members.retain(|&i| i != leader);
    let new_leader = leader_among(&cluster, &members).await;
    assert_ne!(new_leader, leader);
    let other = *members.iter().find(|&&i| i != new_leader).unwrap();
    remove(&cluster, &members, other).await;
    members.retain(|&i| i != other);
    load.wait_more(load.count()).await;
    let acked = load.stop().await;
    assert!(acked.len() > 50, "only {} writes were acknowledged", acked.len());

    assert_eq!(voter_names(&cluster, &members).await.len(), 3);
    let leader = leader_among(&cluster, &members).await;
    for &i in &members {
        assert_member_has(&cluster, leader, i, &acked).await;
    }
    // The removed leader is out: it leads nobody any more.
    let removed =
        *[0, 1, 2, 3, 4, 5].iter().find(|&&i| !members.contains(&i) && i != dead && cluster.is_running(i)).unwrap();
    common::eventually("the removed leader no longer leads", Duration::from_secs(10), || async {
        health_field(&cluster, removed, "state").await.is_some_and(|state| state != "Leader")
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn with_mutual_tls_a_certificate_of_the_cluster_ca_opens_the_admin_api_and_a_node_joins() {
    let cluster = Cluster::start(Options { nodes: 4, joiners: 1, tls: true, token: None, ..Options::default() });
    let leader = cluster.wait_leader(Duration::from_secs(20)).await;
    let ca = cluster.ca.as_ref().unwrap();
    let members_url = format!("{}/cluster/members", cluster.url(leader));
    let response = ca.client(None).get(&members_url).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 401, "no client certificate");
    ca.issue("operator", &["operator"]);
    let operator = ca.client(Some("operator"));
    let response = operator.get(&members_url).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let list: Value = response.json().await.unwrap();
    assert!(list["voters"][0]["raftUrl"].as_str().unwrap().starts_with("https://"), "{list}");

    cluster.spawn_joining(3, leader);
    let response = operator.post(&members_url).json(&member_body(&cluster, 3)).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 200, "{:?}", response.text().await);
    let promote_url = format!("{}/cluster/members/n3/promote", cluster.url(leader));
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let response = operator.post(&promote_url).send().await.unwrap();
        if response.status().as_u16() == 200 {
            break;
        }
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"], "not_caught_up", "{body}");
        assert!(Instant::now() < deadline, "n3 never caught up over TLS: {body}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    cluster.put("tls-joined", "yes", Duration::from_secs(10)).await.unwrap();
    common::eventually("n3 applied the write", Duration::from_secs(10), || async {
        let health = cluster.health(3).await;
        health.is_some_and(|h| {
            h["voters"].as_array().is_some_and(|voters| voters.len() == 4) && h["appliedIndex"].as_u64() > Some(3)
        })
    })
    .await;
}
