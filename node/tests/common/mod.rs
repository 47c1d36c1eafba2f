//! A harness that runs real `raftkv` processes on loopback. Every process it
//! starts is killed when the [`Cluster`] is dropped, also when a test panics;
//! a panicking test prints the tail of every node's log.

#![allow(dead_code)]

use serde_json::Value;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU16, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Cluster tests share a 2-core machine: run them one at a time.
static BUSY: AtomicBool = AtomicBool::new(false);

/// Holds [`BUSY`] while a cluster lives.
struct Serial;

impl Serial {
    fn acquire() -> Serial {
        while BUSY.compare_exchange(false, true, Ordering::SeqCst, Ordering::SeqCst).is_err() {
            std::thread::sleep(Duration::from_millis(20));
        }
        Serial
    }
}

impl Drop for Serial {
    fn drop(&mut self) {
        BUSY.store(false, Ordering::SeqCst);
    }
}

pub struct Options {
    pub nodes: usize,
    /// The cluster token (multi-node clusters refuse to start without one,
    /// unless `insecure_peers`).
    pub token: Option<String>,
    pub insecure_peers: bool,
    /// Mutual TLS on both ports, with certificates made for this cluster.
    pub tls: bool,
    pub snapshot_threshold: Option<u64>,
    pub wal_segment_bytes: Option<u64>,
    /// Extra environment for every node.
    pub env: Vec<(String, String)>,
    /// Extra environment for one node (after `env`).
    pub node_env: Vec<(usize, String, String)>,
    /// Node data directories on a tmpfs of this many MiB of their own (a disk
    /// that tests can fill); unmounted when the cluster is dropped.
    pub tmpfs_mib: Vec<(usize, u64)>,
    /// The last this many nodes are not in `PEERS` and not started: a test
    /// starts them with [`Cluster::spawn_joining`] (`RAFT_JOIN`) and adds them.
    pub joiners: usize,
}

/// The token test clusters use unless told otherwise.
pub const TEST_TOKEN: &str = "test-cluster-token-0123456789";

impl Default for Options {
    fn default() -> Self {
        Options {
            nodes: 3,
            token: Some(TEST_TOKEN.into()),
            insecure_peers: false,
            tls: false,
            snapshot_threshold: None,
            wal_segment_bytes: None,
            env: Vec::new(),
            node_env: Vec::new(),
            tmpfs_mib: Vec::new(),
            joiners: 0,
        }
    }
}

/// A CA and certificates it signs, made at test time.
pub struct TestCa {
    pub dir: PathBuf,
    pub ca_file: PathBuf,
    issuer: rcgen::Certificate,
    key: rcgen::KeyPair,
}

impl TestCa {
    pub fn new(dir: PathBuf) -> TestCa {
        std::fs::create_dir_all(&dir).unwrap();
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params.distinguished_name.push(rcgen::DnType::CommonName, "raftkv test CA");
        let issuer = params.self_signed(&key).unwrap();
        let ca_file = dir.join("ca.pem");
        std::fs::write(&ca_file, issuer.pem()).unwrap();
        TestCa { dir, ca_file, issuer, key }
    }

    /// Writes `<name>.crt` and `<name>.key` for the given DNS names / IPs.
    pub fn issue(&self, name: &str, subject_names: &[&str]) -> (PathBuf, PathBuf) {
        let key = rcgen::KeyPair::generate().unwrap();
        let names: Vec<String> = subject_names.iter().map(|n| n.to_string()).collect();
        let params = rcgen::CertificateParams::new(names).unwrap();
        let cert = params.signed_by(&key, &self.issuer, &self.key).unwrap();
        let (cert_file, key_file) = (self.dir.join(format!("{name}.crt")), self.dir.join(format!("{name}.key")));
        std::fs::write(&cert_file, cert.pem()).unwrap();
        std::fs::write(&key_file, key.serialize_pem()).unwrap();
        (cert_file, key_file)
    }

    /// A client that trusts this CA and presents `name`'s certificate.
    pub fn client(&self, name: Option<&str>) -> reqwest::Client {
        let ca = reqwest::Certificate::from_pem(&std::fs::read(&self.ca_file).unwrap()).unwrap();
        let mut builder = reqwest::Client::builder()
            .use_rustls_tls()
            .tls_built_in_root_certs(false)
            .add_root_certificate(ca)
            .timeout(Duration::from_secs(5));
        if let Some(name) = name {
            let mut pem = std::fs::read(self.dir.join(format!("{name}.crt"))).unwrap();
            pem.extend(std::fs::read(self.dir.join(format!("{name}.key"))).unwrap());
            builder = builder.identity(reqwest::Identity::from_pem(&pem).unwrap());
        }
        builder.build().unwrap()
    }
}

pub struct NodeProc {
    pub name: String,
    pub port: u16,
    pub raft_port: u16,
    process: Mutex<Process>,
}

#[derive(Default)]
struct Process {
    child: Option<Child>,
    starts: usize,
    /// Stopped with SIGSTOP: alive, but answers nothing.
    paused: bool,
}

pub struct Cluster {
    pub nodes: Vec<NodeProc>,
    pub dir: tempfile::TempDir,
    pub options: Options,
    /// With `Options::tls`: the CA and every node's certificate (`n0.crt`, ...).
    pub ca: Option<TestCa>,
    pub http: reqwest::Client,
    _serial: Serial,
}

fn free_ports(count: usize) -> Vec<u16> {
    let listeners: Vec<std::net::TcpListener> =
        (0..count).map(|_| std::net::TcpListener::bind("127.0.0.1:0").expect("bind an OS-picked port")).collect();
    listeners.iter().map(|l| l.local_addr().unwrap().port()).collect()
}

/// Each call's first candidate, so tests running at once in one test binary
/// never pick the same base (the ports are free when picked, not reserved).
static NEXT_BASE_CANDIDATE: AtomicU16 = AtomicU16::new(0);

/// A base port with `base..base + n` and their Raft ports (+1000) free, for
/// commands that take a base port (`raftkv cluster`, scripts/run-cluster.sh).
pub fn free_base_port(n: u16) -> u16 {
    let seed = std::process::id() as u16;
    let first = NEXT_BASE_CANDIDATE.fetch_add(50, Ordering::SeqCst);
    for attempt in first..first + 200 {
        // Below the ephemeral range (32768 up), where OS-picked ports of other
        // tests land.
        let base = 20_000 + seed.wrapping_mul(31).wrapping_add(attempt.wrapping_mul(97)) % 11_000;
        let all_free = (0..n)
            .flat_map(|i| [base + i, base + i + 1000])
            .all(|port| std::net::TcpListener::bind(("127.0.0.1", port)).is_ok());
        if all_free {
            return base;
        }
    }
    panic!("no free block of ports");
}

pub fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_raftkv")
}

impl Cluster {
    pub fn start(options: Options) -> Cluster {
        let serial = Serial::acquire();
        let ports = free_ports(options.nodes * 2);
        let nodes = (0..options.nodes)
            .map(|i| NodeProc {
                name: format!("n{i}"),
                port: ports[2 * i],
                raft_port: ports[2 * i + 1],
                process: Mutex::new(Process::default()),
            })
            .collect();
        let dir = tempfile::tempdir().unwrap();
        let ca = options.tls.then(|| {
            let ca = TestCa::new(dir.path().join("tls"));
            for node in &nodes {
                let node: &NodeProc = node;
                ca.issue(&node.name, &[&node.name, "127.0.0.1"]);
            }
            ca
        });
        let http = match &ca {
            Some(ca) => ca.client(None),
            // With the default token the harness's client carries it, as a tool
            // of the operator would; a test that picks its own token sends it itself.
            None if options.token.as_deref() == Some(TEST_TOKEN) => {
                let mut headers = reqwest::header::HeaderMap::new();
                headers.insert("x-raft-token", reqwest::header::HeaderValue::from_static(TEST_TOKEN));
                reqwest::Client::builder().timeout(Duration::from_secs(5)).default_headers(headers).build().unwrap()
            }
            None => reqwest::Client::builder().timeout(Duration::from_secs(5)).build().unwrap(),
        };
        let cluster = Cluster { nodes, dir, options, ca, http, _serial: serial };
        for &(i, mib) in &cluster.options.tmpfs_mib {
            let at = cluster.data_dir(i);
            std::fs::create_dir_all(&at).unwrap();
            let status = Command::new("mount")
                .args(["-t", "tmpfs", "-o", &format!("size={mib}m"), "tmpfs"])
                .arg(&at)
                .status()
                .expect("run mount");
            assert!(status.success(), "mount a {mib} MiB tmpfs on {} (tests run as root)", at.display());
        }
        for i in 0..cluster.nodes.len() - cluster.options.joiners {
            cluster.spawn(i);
        }
        cluster
    }

    /// The command that starts node `i` (its environment, no output redirection).
    pub fn command(&self, i: usize) -> Command {
        self.command_for(i, "serve")
    }

    /// The command running `raftkv <subcommand>` with node `i`'s configuration.
    pub fn command_for(&self, i: usize, subcommand: &str) -> Command {
        let scheme = self.scheme();
        let bootstrap = &self.nodes[..self.nodes.len() - self.options.joiners];
        let peers: Vec<String> = bootstrap.iter().map(|n| format!("{scheme}://127.0.0.1:{}", n.raft_port)).collect();
        let names: Vec<&str> = bootstrap.iter().map(|n| n.name.as_str()).collect();
        let node = &self.nodes[i];
        let mut command = Command::new(binary());
        command
            .arg(subcommand)
            .env_clear()
            .env("KVSTORE_PORT", node.port.to_string())
            .env("RAFT_PORT", node.raft_port.to_string())
            .env("NODE_ID", &node.name)
            .env("RAFT_DATA_DIR", self.dir.path().join("data"))
            .env("RAFT_BIND", "127.0.0.1")
            .env("RAFT_ELECTION_TIMEOUT_MIN_MS", "300")
            .env("RAFT_ELECTION_TIMEOUT_MAX_MS", "600")
            .env("RAFT_HEARTBEAT_MS", "50")
            .env("RAFT_REQUEST_TIMEOUT_MS", "3000")
            .env("RUST_LOG", "info")
            .stdin(Stdio::null());
        if i < bootstrap.len() {
            command.env("PEERS", peers.join(",")).env("PEER_IDS", names.join(","));
        }
        if let Some(token) = &self.options.token {
            command.env("RAFT_CLUSTER_TOKEN", token);
        }
        if self.options.insecure_peers {
            command.env("RAFT_INSECURE_PEERS", "1");
        }
        if let Some(ca) = &self.ca {
            command
                .env("RAFT_TLS_CERT", ca.dir.join(format!("{}.crt", node.name)))
                .env("RAFT_TLS_KEY", ca.dir.join(format!("{}.key", node.name)))
                .env("RAFT_TLS_CA", &ca.ca_file);
        }
        if let Some(threshold) = self.options.snapshot_threshold {
            command.env("RAFT_SNAPSHOT_THRESHOLD", threshold.to_string());
        }
        if let Some(bytes) = self.options.wal_segment_bytes {
            command.env("RAFT_WAL_SEGMENT_BYTES", bytes.to_string());
        }
        for (name, value) in &self.options.env {
            command.env(name, value);
        }
        for (_, name, value) in self.options.node_env.iter().filter(|(node, _, _)| *node == i) {
            command.env(name, value);
        }
        command
    }

    pub fn spawn(&self, i: usize) {
        self.spawn_with(i, &[]);
    }

    /// Starts node `i` with `RAFT_JOIN` naming node `via`'s client URL.
    pub fn spawn_joining(&self, i: usize, via: usize) {
        self.spawn_with(i, &[("RAFT_JOIN", self.url(via))]);
    }

    fn spawn_with(&self, i: usize, extra_env: &[(&str, String)]) {
        let mut process = self.nodes[i].process.lock().unwrap();
        assert!(process.child.is_none(), "node {i} is running");
        let node = &self.nodes[i];
        let log = self.dir.path().join(format!("{}-{}.log", node.name, process.starts));
        let file = std::fs::File::create(&log).unwrap();
        let mut command = self.command(i);
        command.envs(extra_env.iter().map(|(name, value)| (name, value)));
        command.stdout(file.try_clone().unwrap()).stderr(file);
        let child = command.spawn().expect("start raftkv");
        process.child = Some(child);
        process.starts += 1;
    }

    /// SIGKILL: no chance to flush or hand over anything.
    pub fn kill(&self, i: usize) {
        let child = {
            let mut process = self.nodes[i].process.lock().unwrap();
            process.paused = false;
            process.child.take()
        };
        if let Some(mut child) = child {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGSTOP (`resume` sends SIGCONT): the process keeps its sockets open but
    /// reads nothing, like a node stuck in a long pause. A stopped process is
    /// still killed when the cluster is dropped.
    pub fn pause(&self, i: usize) {
        self.signal(i, "-STOP");
        self.nodes[i].process.lock().unwrap().paused = true;
    }

    pub fn resume(&self, i: usize) {
        self.signal(i, "-CONT");
        self.nodes[i].process.lock().unwrap().paused = false;
    }

    fn signal(&self, i: usize, signal: &str) {
        let pid = self.nodes[i].process.lock().unwrap().child.as_ref().expect("running").id();
        let status = Command::new("kill").args([signal, &pid.to_string()]).status().expect("run kill");
        assert!(status.success(), "kill {signal} {pid}");
    }

    /// Crashes every node (kill -9), then starts them all again on their data directories.
    pub fn restart_all(&self) {
        for i in 0..self.nodes.len() {
            self.kill(i);
        }
        for i in 0..self.nodes.len() {
            self.spawn(i);
        }
    }

    fn scheme(&self) -> &'static str {
        if self.ca.is_some() {
            "https"
        } else {
            "http"
        }
    }

    pub fn url(&self, i: usize) -> String {
        format!("{}://127.0.0.1:{}", self.scheme(), self.nodes[i].port)
    }

    pub fn raft_url(&self, i: usize) -> String {
        format!("{}://127.0.0.1:{}", self.scheme(), self.nodes[i].raft_port)
    }

    /// The exit status of node `i` if it has exited (and forgets the process).
    pub fn try_exit_status(&self, i: usize) -> Option<std::process::ExitStatus> {
        let mut process = self.nodes[i].process.lock().unwrap();
        let status = process.child.as_mut()?.try_wait().unwrap()?;
        process.child = None;
        Some(status)
    }

    /// Waits up to `within` for node `i` to exit; its status.
    pub fn wait_exit(&self, i: usize, within: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if let Some(status) = self.try_exit_status(i) {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// The process id of running node `i`.
    pub fn pid(&self, i: usize) -> Option<u32> {
        self.nodes[i].process.lock().unwrap().child.as_ref().map(Child::id)
    }

    pub fn is_running(&self, i: usize) -> bool {
        self.nodes[i].process.lock().unwrap().child.is_some()
    }

    pub fn data_dir(&self, i: usize) -> PathBuf {
        self.dir.path().join("data").join(&self.nodes[i].name)
    }

    pub fn log_text(&self, i: usize) -> String {
        let mut text = String::new();
        let starts = self.nodes[i].process.lock().unwrap().starts;
        for start in 0..starts {
            let path = self.dir.path().join(format!("{}-{start}.log", self.nodes[i].name));
            text.push_str(&std::fs::read_to_string(path).unwrap_or_default());
        }
        text
    }

    pub async fn health(&self, i: usize) -> Option<Value> {
        let response =
            self.http.get(format!("{}/health", self.url(i))).timeout(Duration::from_millis(1000)).send().await.ok()?;
        response.json().await.ok()
    }

    /// Waits until exactly one running node is leader and every running node
    /// names it; returns its index.
    pub async fn wait_leader(&self, within: Duration) -> usize {
        let deadline = Instant::now() + within;
        let mut last = Vec::new();
        while Instant::now() < deadline {
            last.clear();
            for i in 0..self.nodes.len() {
                if self.is_running(i) {
                    last.push((i, self.health(i).await));
                }
            }
            let leaders: Vec<usize> = last
                .iter()
                .filter(|(_, h)| h.as_ref().is_some_and(|h| h["state"] == "Leader"))
                .map(|(i, _)| *i)
                .collect();
            if let [leader] = leaders[..] {
                let name = &self.nodes[leader].name;
                if last.iter().all(|(_, h)| h.as_ref().is_some_and(|h| h["leaderId"] == name.as_str())) {
                    return leader;
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let logs: Vec<String> = (0..self.nodes.len()).map(|i| self.log_text(i)).collect();
        panic!("no agreed leader within {within:?}; last health: {last:?}\nlogs:\n{}", logs.join("\n----\n"));
    }

    /// Writes through any node, following leader hints, until acknowledged or
    /// `within` passes. `Ok` means the cluster acknowledged the write.
    pub async fn put(&self, key: &str, value: &str, within: Duration) -> Result<u64, String> {
        let body = serde_json::json!({ "key": key, "value": value });
        self.retry(within, |url| self.http.put(format!("{url}/set")).timeout(Duration::from_secs(4)).json(&body))
            .await
            .map(|v| v["index"].as_u64().unwrap_or(0))
    }

    /// A linearizable read through any node; `Ok(None)` is a 404.
    pub async fn get(&self, key: &str, within: Duration) -> Result<Option<String>, String> {
        match self
            .retry(within, |url| {
                self.http.get(format!("{url}/get")).query(&[("key", key)]).timeout(Duration::from_secs(4))
            })
            .await
        {
            Ok(v) => Ok(v["value"].as_str().map(str::to_owned)),
            Err(e) if e.starts_with("404") => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn retry(&self, within: Duration, make: impl Fn(&str) -> reqwest::RequestBuilder) -> Result<Value, String> {
        let deadline = Instant::now() + within;
        // A paused node would only time out every attempt sent to it.
        let running: Vec<usize> = (0..self.nodes.len())
            .filter(|&i| self.is_running(i) && !self.nodes[i].process.lock().unwrap().paused)
            .collect();
        let mut attempt = 0;
        let mut target = self.url(running[0]);
        let mut last = String::new();
        while Instant::now() < deadline {
            match make(&target).send().await {
                Ok(response) => {
                    let status = response.status().as_u16();
                    let body: Value = response.json().await.unwrap_or(Value::Null);
                    match status {
                        200 => return Ok(body),
                        404 => return Err(format!("404 {body}")),
                        409 if body["leader"].is_string() => {
                            target = body["leader"].as_str().unwrap().to_owned();
                            continue;
                        }
                        _ => last = format!("{status} {body}"),
                    }
                }
                Err(error) => last = error.to_string(),
            }
            attempt += 1;
            target = self.url(running[attempt % running.len()]);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Err(format!("not acknowledged within {within:?}: {last}"))
    }

    fn dump_logs(&self) {
        for (i, node) in self.nodes.iter().enumerate() {
            let text = self.log_text(i);
            let lines: Vec<&str> = text.lines().collect();
            let tail = &lines[lines.len().saturating_sub(40)..];
            eprintln!("===== {} (port {}) last {} lines =====", node.name, node.port, tail.len());
            for line in tail {
                eprintln!("{line}");
            }
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for i in 0..self.nodes.len() {
            self.kill(i);
        }
        if std::thread::panicking() {
            self.dump_logs();
        }
        for &(i, _) in &self.options.tmpfs_mib {
            let _ = Command::new("umount").arg("-l").arg(self.data_dir(i)).status();
        }
    }
}

/// Fills the filesystem holding `dir` until a write fails for want of space;
/// returns the filler file (remove it to free the space).
pub fn fill_disk(dir: &std::path::Path) -> PathBuf {
    use std::io::Write;
    let path = dir.join("filler");
    let mut file = std::fs::File::create(&path).unwrap();
    let chunk = vec![0xa5u8; 64 << 10];
    loop {
        match file.write_all(&chunk) {
            Ok(()) => {}
            Err(error) => {
                assert_eq!(error.raw_os_error(), Some(28), "filling {}: {error}", dir.display());
                break;
            }
        }
    }
    // Smaller pieces until not even a block is left.
    while file.write_all(&[0xa5; 512]).is_ok() {}
    let _ = file.sync_all();
    path
}

/// Polls `check` every 50 ms until it holds, or fails the test naming `what`
/// once `within` has passed.
pub async fn eventually<F, Fut>(what: &str, within: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + within;
    while !check().await {
        assert!(Instant::now() < deadline, "{what} did not happen within {within:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
