//! `raftkv cluster --nodes N`: a local cluster of child processes on loopback,
//! each node's output prefixed with its id. Ctrl-C (or SIGTERM) stops them all.
//! The nodes authenticate each other with a cluster token: `--cluster-token`
//! (env `RAFT_CLUSTER_TOKEN`) or, by default, the one in
//! `<data dir>/cluster-token` (mode 600), made at random on the first run and
//! shared with `scripts/`, so tools can read it to call the Raft port.

use clap::Args;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Flags of `raftkv cluster`.
#[derive(Args, Debug, Clone)]
pub struct ClusterArgs {
    /// Number of nodes.
    #[arg(long, default_value_t = 3)]
    pub nodes: u16,
    /// Client port of the first node; node i listens on base+i (Raft: +1000).
    #[arg(long, default_value_t = 8080)]
    pub base_port: u16,
    /// Base data directory (each node uses <dir>/node-<port>).
    #[arg(long, default_value = "data")]
    pub data_dir: PathBuf,
    /// Snapshot threshold passed to every node.
    #[arg(long)]
    pub snapshot_threshold: Option<u64>,
    /// Cluster token passed to every node (default: <data-dir>/cluster-token, made at random if missing).
    #[arg(long, env = "RAFT_CLUSTER_TOKEN", hide_env_values = true)]
    pub cluster_token: Option<String>,
}

/// Runs the cluster until interrupted; returns the exit code.
pub fn run(args: ClusterArgs) -> i32 {
    if args.nodes == 0 || args.nodes > 99 {
        eprintln!("raftkv: invalid configuration: --nodes must be between 1 and 99");
        return 2;
    }
    let Some(last_port) = args.base_port.checked_add(args.nodes - 1) else {
        eprintln!("raftkv: invalid configuration: ports run past 65535");
        return 2;
    };
    if last_port.checked_add(crate::config::RAFT_PORT_OFFSET).is_none() {
        eprintln!("raftkv: invalid configuration: Raft ports (client port + 1000) run past 65535");
        return 2;
    }
    let exe = match std::env::current_exe() {
        Ok(exe) => exe,
        Err(error) => {
            eprintln!("raftkv: cannot find my own executable: {error}");
            return 1;
        }
    };
    let ports: Vec<u16> = (0..args.nodes).map(|i| args.base_port + i).collect();
    let peers: Vec<String> =
        ports.iter().map(|p| format!("http://127.0.0.1:{}", p + crate::config::RAFT_PORT_OFFSET)).collect();
    let peers = peers.join(",");
    let token = match args.cluster_token.clone().filter(|token| !token.is_empty()) {
        Some(token) => token,
        None => match stored_token(&args.data_dir) {
            Ok(token) => token,
            Err(problem) => {
                eprintln!("raftkv: {problem}");
                return 1;
            }
        },
    };
    let mut children: Vec<(String, u16, Child)> = Vec::new();
    for &port in &ports {
        let name = format!("node-{port}");
        let mut command = Command::new(&exe);
        command
            .arg("serve")
            .env("KVSTORE_PORT", port.to_string())
            .env("RAFT_PORT", (port + crate::config::RAFT_PORT_OFFSET).to_string())
            .env("NODE_ID", &name)
            .env("PEERS", &peers)
            .env_remove("PEER_IDS")
            .env_remove("RAFT_NODES")
            .env("RAFT_DATA_DIR", &args.data_dir)
            .env("RAFT_BIND", "127.0.0.1")
            .env("RAFT_ADVERTISE_HOST", "127.0.0.1")
            .env(crate::server::EXIT_ON_STDIN_EOF, "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        // Its own process group: a Ctrl-C in the terminal reaches only this
        // command, which stops the nodes in order (the leader first, so that it
        // can hand over to a follower that is still running).
        #[cfg(unix)]
        std::os::unix::process::CommandExt::process_group(&mut command, 0);
        if let Some(threshold) = args.snapshot_threshold {
            command.env("RAFT_SNAPSHOT_THRESHOLD", threshold.to_string());
        }
        command.env("RAFT_CLUSTER_TOKEN", &token).env_remove("RAFT_INSECURE_PEERS");
        match command.spawn() {
            Ok(mut child) => {
                let stdout = child.stdout.take().expect("piped");
                let stderr = child.stderr.take().expect("piped");
                prefix_lines(name.clone(), stdout);
                prefix_lines(name.clone(), stderr);
                println!("[cluster] started {name} (pid {}) client http://127.0.0.1:{port}", child.id());
                children.push((name, port, child));
            }
            Err(error) => {
                eprintln!("raftkv: cannot start {name}: {error}");
                stop_all(&mut children);
                return 1;
            }
        }
    }
    let endpoints: Vec<String> = ports.iter().map(|p| format!("http://127.0.0.1:{p}")).collect();
    println!(
        "[cluster] {} nodes up; try: raftkv status --endpoints {}   (Ctrl-C stops the cluster)",
        args.nodes,
        endpoints.join(",")
    );

    let stop = Arc::new(AtomicBool::new(false));
    {
        let stop = stop.clone();
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        std::thread::spawn(move || {
            runtime.block_on(async {
                #[cfg(unix)]
                {
                    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                        .expect("SIGTERM handler");
                    tokio::select! {
                        _ = tokio::signal::ctrl_c() => {},
                        _ = term.recv() => {},
                    }
                }
                #[cfg(not(unix))]
                let _ = tokio::signal::ctrl_c().await;
            });
            stop.store(true, Ordering::SeqCst);
        });
    }
    let mut exited = vec![false; children.len()];
    while !stop.load(Ordering::SeqCst) {
        for (i, (name, _, child)) in children.iter_mut().enumerate() {
            if !exited[i] {
                if let Ok(Some(status)) = child.try_wait() {
                    exited[i] = true;
                    println!("[cluster] {name} exited ({status}); the others keep running");
                }
            }
        }
        if exited.iter().all(|&e| e) {
            println!("[cluster] every node has exited");
            return 1;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    println!("[cluster] stopping every node");
    stop_all(&mut children);
    0
}

/// The token kept in `<dir>/cluster-token`, made (random, mode 600) if missing.
fn stored_token(dir: &std::path::Path) -> Result<String, String> {
    let path = dir.join("cluster-token");
    if let Ok(token) = std::fs::read_to_string(&path) {
        if !token.trim().is_empty() {
            return Ok(token.trim().to_owned());
        }
    }
    let token = random_token()?;
    std::fs::create_dir_all(dir).map_err(|error| format!("cannot create {}: {error}", dir.display()))?;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(&path).map_err(|error| format!("cannot write {}: {error}", path.display()))?;
    std::io::Write::write_all(&mut file, token.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(|error| format!("cannot write {}: {error}", path.display()))?;
    println!("[cluster] made a cluster token in {} (the Raft port needs it in X-Raft-Token)", path.display());
    Ok(token)
}

/// 32 random bytes from the operating system, in hex.
pub fn random_token() -> Result<String, String> {
    use ring::rand::SecureRandom;
    let mut bytes = [0u8; 32];
    ring::rand::SystemRandom::new().fill(&mut bytes).map_err(|_| "cannot get random bytes for the cluster token")?;
    Ok(bytes.iter().map(|byte| format!("{byte:02x}")).collect())
}

fn prefix_lines(name: String, stream: impl std::io::Read + Send + 'static) {
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines() {
            match line {
                Ok(line) => println!("[{name}] {line}"),
                Err(_) => break,
            }
        }
    });
}

/// Stops every child gracefully: the leader first with SIGTERM (it hands
/// leadership to a follower that is still running), then the others together
/// by closing their stdin (they stop without a handover: everyone is
/// stopping). SIGKILL only as a last resort, after 10 s.
fn stop_all(children: &mut [(String, u16, Child)]) {
    let started = Instant::now();
    let leader = children.iter().position(|(_, port, _)| is_leader(*port));
    if let Some(i) = leader {
        let (name, _, child) = &mut children[i];
        terminate(child);
        if wait_for_exit(name, child, Instant::now() + Duration::from_secs(4)) {
            println!("[cluster] {name} (the leader) stopped");
        }
    }
    for (_, _, child) in children.iter_mut() {
        drop(child.stdin.take());
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    for (name, _, child) in children.iter_mut() {
        if !wait_for_exit(name, child, deadline) {
            println!("[cluster] {name} did not stop in 10 s; killing it");
            let _ = child.kill();
            let _ = child.wait();
        }
    }
    println!("[cluster] every node stopped in {} ms", started.elapsed().as_millis());
}

fn terminate(child: &Child) {
    let _ = Command::new("kill").arg("-TERM").arg(child.id().to_string()).status();
}

/// Waits until `child` exits or `deadline` passes; whether it exited.
fn wait_for_exit(_name: &str, child: &mut Child, deadline: Instant) -> bool {
    loop {
        match child.try_wait() {
            Ok(Some(_)) => return true,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(10)),
            Ok(None) => return false,
            Err(_) => return true,
        }
    }
}

/// Whether the node on client port `port` says it leads (a short plain HTTP
/// request to its /health; `false` if it does not answer quickly).
fn is_leader(port: u16) -> bool {
    use std::io::{Read, Write};
    let address = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let Ok(mut stream) = std::net::TcpStream::connect_timeout(&address, Duration::from_millis(200)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
    let request = format!("GET /health HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n");
    if stream.write_all(request.as_bytes()).is_err() {
        return false;
    }
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response);
    response.contains("\"state\":\"Leader\"")
}
