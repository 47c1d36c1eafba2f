//! The v2 key-value API on real `raftkv` processes: `/range`, `/cas`, `/txn`,
//! etcd's v3 JSON gateway paths, and the `range|cas|txn` commands.

mod common;

use common::{Cluster, Options};
use serde_json::{json, Value};
use std::time::Duration;

const LEADER_WITHIN: Duration = Duration::from_secs(15);
const ACK_WITHIN: Duration = Duration::from_secs(10);

async fn answer(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    let body = serde_json::from_str(&text).unwrap_or_else(|_| panic!("{status} with a non-JSON body: {text:?}"));
    (status, body)
}

fn b64(text: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn range_cas_and_txn_through_the_log_with_revisions() {
    let cluster = Cluster::start(Options { nodes: 1, ..Options::default() });
    cluster.wait_leader(LEADER_WITHIN).await;
    let url = cluster.url(0);
    let http = &cluster.http;
    for (key, value) in [("app/b", "2"), ("app/a", "1"), ("app/c", "3"), ("other", "x")] {
        cluster.put(key, value, ACK_WITHIN).await.unwrap();
    }
    // The old endpoints answer exactly as before.
    let (status, body) = answer(http.get(format!("{url}/get?key=app/a")).send().await.unwrap()).await;
    assert_eq!((status, body), (200, json!({"key": "app/a", "ok": true, "value": "1"})));

    // A prefix, in key order, with revisions; limit cuts it and says so.
    let (status, body) = answer(http.get(format!("{url}/range?prefix=app/&limit=2")).send().await.unwrap()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["count"], 3);
    assert_eq!(body["more"], true);
    assert_eq!(body["revision"], 4);
    assert_eq!(
        body["kvs"],
        json!([
            {"createRevision": 2, "key": "app/a", "modRevision": 2, "value": "1", "version": 1},
            {"createRevision": 1, "key": "app/b", "modRevision": 1, "value": "2", "version": 1},
        ])
    );
    // The next page, at the same revision: from just after the last key.
    let page = format!("{url}/range?key=app/b%00&end=app0&revision=4&keysOnly=true");
    let (status, body) = answer(http.get(&page).send().await.unwrap()).await;
    assert_eq!(
        (status, body["kvs"].clone()),
        (200, json!([{"createRevision": 3, "key": "app/c", "modRevision": 3, "version": 1}]))
    );
    let (status, body) =
        answer(http.get(format!("{url}/range?key=&end=%00&countOnly=true&consistency=stale")).send().await.unwrap())
            .await;
    assert_eq!((status, body["count"].clone(), body["kvs"].clone()), (200, json!(4), json!([])), "{body}");
    // Bad ranges are refused with the documented codes.
    for (target, code) in [
        ("/range?prefix=a&key=b", "bad_query"),
        ("/range", "key_missing"),
        ("/range?key=a&revision=99", "future_revision"),
        ("/range?key=a&limit=x", "bad_query"),
        ("/range?key=a&bogus=1", "bad_query"),
    ] {
        let (status, body) = answer(http.get(format!("{url}{target}")).send().await.unwrap()).await;
        assert_eq!((status, body["error"].as_str()), (400, Some(code)), "{target}: {body}");
    }

    // Compare-and-swap: create only if absent, then swap on value, then on mod revision.
    let cas = |body: Value| http.post(format!("{url}/cas")).json(&body).send();
    let (status, body) = answer(cas(json!({"key": "lock", "value": "me", "prevExist": false})).await.unwrap()).await;
    assert_eq!((status, body["revision"].clone(), body["ok"].clone()), (200, json!(5), json!(true)), "{body}");
    let (status, body) = answer(cas(json!({"key": "lock", "value": "you", "prevExist": false})).await.unwrap()).await;
    assert_eq!((status, body["error"].as_str()), (412, Some("compare_failed")), "{body}");
    let (status, _) = answer(cas(json!({"key": "lock", "value": "you", "prevValue": "me"})).await.unwrap()).await;
    assert_eq!(status, 200);
    let (status, _) = answer(cas(json!({"key": "lock", "delete": true, "prevModRevision": 5})).await.unwrap()).await;
    assert_eq!(status, 412, "the mod revision moved to 6");
    let (status, body) = answer(cas(json!({"key": "lock", "delete": true, "prevModRevision": 6})).await.unwrap()).await;
    assert_eq!((status, body["revision"].clone()), (200, json!(7)), "{body}");
    assert_eq!(cluster.get("lock", ACK_WITHIN).await.unwrap(), None);
    let (status, body) = answer(cas(json!({"key": "lock", "value": "v"})).await.unwrap()).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("bad_json")), "an expectation is required: {body}");

    // A transaction: both branches, answered with every result.
    let txn = json!({
        "compare": [{"key": "app/a", "value": "1"}, {"key": "app/b", "op": ">", "version": 0}],
        "success": [{"put": {"key": "app/a", "value": "10"}}, {"range": {"prefix": "app/", "keysOnly": true}}, {"delete": {"key": "other"}}],
        "failure": [{"range": {"key": "app/a"}}],
    });
    let (status, body) = answer(http.post(format!("{url}/txn")).json(&txn).send().await.unwrap()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!((body["succeeded"].clone(), body["revision"].clone()), (json!(true), json!(8)));
    assert_eq!(body["responses"][0], json!({"put": {}}));
    assert_eq!(body["responses"][1]["range"]["count"], 3);
    assert_eq!(
        body["responses"][1]["range"]["kvs"][0],
        json!({"createRevision": 2, "key": "app/a", "modRevision": 8, "version": 2})
    );
    assert_eq!(body["responses"][2], json!({"delete": {"deleted": 1}}));
    let (status, body) = answer(http.post(format!("{url}/txn")).json(&txn).send().await.unwrap()).await;
    assert_eq!((status, body["succeeded"].clone(), body["revision"].clone()), (200, json!(false), json!(8)), "{body}");
    assert_eq!(body["responses"][0]["range"]["kvs"][0]["value"], "10");
    let bad = json!({"compare": [{"key": "a", "value": "1", "version": 2}]});
    let (status, body) = answer(http.post(format!("{url}/txn")).json(&bad).send().await.unwrap()).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("bad_json")), "{body}");
    let big: Vec<Value> = (0..129).map(|i| json!({"put": {"key": format!("k{i}"), "value": "v"}})).collect();
    let (status, body) =
        answer(http.post(format!("{url}/txn")).json(&json!({"success": big})).send().await.unwrap()).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("txn_too_large")), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etcd_v3_gateway_paths_take_and_give_etcd_shapes() {
    let cluster = Cluster::start(Options { nodes: 1, ..Options::default() });
    cluster.wait_leader(LEADER_WITHIN).await;
    let url = cluster.url(0);
    let http = &cluster.http;
    let post = |path: &str, body: Value| http.post(format!("{url}{path}")).json(&body).send();

    let (status, body) =
        answer(post("/v3/kv/put", json!({"key": b64("foo"), "value": b64("bar")})).await.unwrap()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["header"]["revision"], "1");
    for field in ["cluster_id", "member_id", "raft_term"] {
        assert!(body["header"][field].as_str().is_some_and(|v| v.parse::<u64>().is_ok()), "{field}: {body}");
    }
    post("/v3/kv/put", json!({"key": b64("foo2"), "value": b64("baz")})).await.unwrap();
    let (_, body) =
        answer(post("/v3/kv/put", json!({"key": b64("foo"), "value": b64("new"), "prev_kv": true})).await.unwrap())
            .await;
    assert_eq!(body["prev_kv"]["value"], b64("bar"), "{body}");

    // Prefix "foo": range_end "fop", as etcdctl computes it.
    let (status, body) =
        answer(post("/v3/kv/range", json!({"key": b64("foo"), "range_end": b64("fop")})).await.unwrap()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["count"], "2");
    assert_eq!(body["header"]["revision"], "3");
    assert_eq!(
        body["kvs"][0],
        json!({"key": b64("foo"), "create_revision": "1", "mod_revision": "3", "version": "2", "value": b64("new")})
    );
    assert!(body.get("more").is_none(), "defaults are left out: {body}");
    let (_, body) =
        answer(post("/v3/kv/range", json!({"key": b64("foo"), "range_end": b64("fop"), "limit": "1"})).await.unwrap())
            .await;
    assert_eq!((body["more"].clone(), body["kvs"].as_array().unwrap().len()), (json!(true), 1), "{body}");
    let (_, body) = answer(post("/v3/kv/range", json!({"key": b64("nope")})).await.unwrap()).await;
    assert!(body.get("kvs").is_none() && body.get("count").is_none(), "{body}");

    // A txn in etcd's shape: compare on value, put on success.
    let txn = json!({
        "compare": [{"target": "VALUE", "result": "EQUAL", "key": b64("foo"), "value": b64("new")}],
        "success": [{"request_put": {"key": b64("foo"), "value": b64("swapped")}}, {"request_range": {"key": b64("foo")}}],
        "failure": [{"request_range": {"key": b64("foo")}}],
    });
    let (status, body) = answer(post("/v3/kv/txn", txn.clone()).await.unwrap()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["succeeded"], true);
    assert_eq!(body["header"]["revision"], "4");
    assert_eq!(body["responses"][0], json!({"response_put": {"header": {"revision": "4"}}}));
    assert_eq!(body["responses"][1]["response_range"]["kvs"][0]["value"], b64("swapped"));
    let (_, body) = answer(post("/v3/kv/txn", txn).await.unwrap()).await;
    assert!(body.get("succeeded").is_none(), "false is left out: {body}");
    assert_eq!(body["responses"][0]["response_range"]["count"], "1");

    let (status, body) =
        answer(post("/v3/kv/deleterange", json!({"key": b64("foo"), "range_end": b64("fop")})).await.unwrap()).await;
    assert_eq!(
        (status, body["deleted"].clone(), body["header"]["revision"].clone()),
        (200, json!("2"), json!("5")),
        "{body}"
    );
    assert_eq!(cluster.get("foo2", ACK_WITHIN).await.unwrap(), None);

    // Refused with clear errors: not base64, not UTF-8, leases, empty keys.
    for (path, body, code) in [
        ("/v3/kv/put", json!({"key": "***", "value": ""}), "bad_json"),
        ("/v3/kv/put", json!({"key": "/w==", "value": ""}), "bad_encoding"),
        ("/v3/kv/put", json!({"key": b64("k"), "value": "", "ignore_lease": true}), "bad_json"),
        ("/v3/kv/put", json!({"value": b64("v")}), "key_empty"),
        ("/v3/kv/range", json!({"key": b64("k"), "revision": "999"}), "future_revision"),
    ] {
        let (status, answer) = answer(post(path, body.clone()).await.unwrap()).await;
        assert_eq!((status, answer["error"].as_str()), (400, Some(code)), "{path} {body}: {answer}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_range_cas_and_txn_commands_follow_the_leader() {
    let cluster = Cluster::start(Options { nodes: 3, ..Options::default() });
    let leader = cluster.wait_leader(LEADER_WITHIN).await;
    // Start at a follower: the commands follow its hint.
    let follower = (leader + 1) % 3;
    let endpoints = format!("--endpoints={},{}", cluster.url(follower), cluster.url(leader));
    let run = |args: &[&str]| {
        std::process::Command::new(common::binary())
            .args(args)
            .arg(&endpoints)
            .env_remove("RAFTKV_ENDPOINTS")
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap()
    };
    let out = run(&["cas", "job", "mine", "--absent"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let body: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!((body["key"].clone(), body["revision"].clone()), (json!("job"), json!(1)));
    let out = run(&["cas", "job", "theirs", "--absent"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("compare_failed"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(run(&["cas", "job", "--delete", "--prev-value", "mine"]).status.success());
    for key in ["q/1", "q/2", "q/3"] {
        assert!(run(&["set", key, "v"]).status.success());
    }
    let out = run(&["range", "--prefix", "q/", "--limit", "2", "--keys-only"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let body: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (body["count"].clone(), body["more"].clone(), body["kvs"].as_array().unwrap().len()),
        (json!(3), json!(true), 2)
    );
    let out = run(&["txn", r#"{"compare":[{"key":"q/1","value":"v"}],"success":[{"delete":{"prefix":"q/"}}]}"#]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let body: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (body["succeeded"].clone(), body["responses"][0].clone()),
        (json!(true), json!({"delete": {"deleted": 3}}))
    );
    let out = run(&["txn", "{not json"]);
    assert_eq!(out.status.code(), Some(2));
    let out = run(&["range", "q/1", "--revision", "999"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("future_revision"), "{stderr}");
}
