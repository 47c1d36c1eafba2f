//! `raftkv serve`: recover from disk, start the driver, the WAL thread, the peer
//! senders and both HTTP servers; on SIGTERM or Ctrl-C hand leadership over and stop.

use crate::api::{self, AppState};
use crate::config::NodeConfig;
use crate::driver::{Directory, Driver, Input};
use crate::metrics::Metrics;
use crate::storage;
use crate::transport::Transport;
use raft_sm::kv::KvStore;
use raft_sm::{Node, Role};
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch};
use tower_http::catch_panic::CatchPanicLayer;

/// Runs a node until it is told to stop. Errors are start-up failures, in one line.
pub async fn serve(config: NodeConfig) -> Result<(), String> {
    let peers: Vec<String> = config.peers.iter().map(|p| format!("{}={}", p.name, p.raft_url)).collect();
    tracing::info!(
        id = %config.name,
        client = %config.client_url,
        raft_port = config.raft_port,
        data_dir = %config.data_dir.display(),
        peers = %peers.join(","),
        "starting raftkv node"
    );
    let metrics = Arc::new(Metrics::default());
    let (wal, restored, lock) = storage::recover(&config.data_dir, config.wal_segment_bytes)
        .map_err(|error| format!("cannot recover from {}: {error}", config.data_dir.display()))?;
    tracing::info!(
        term = restored.hard_state.term.0,
        commit = restored.hard_state.commit.0,
        snapshot_index = restored.snapshot.as_ref().map_or(0, |s| s.last_index.0),
        log_entries = restored.entries.len(),
        "recovered durable state"
    );
    let kv = match &restored.snapshot {
        Some(snapshot) => KvStore::restore(&snapshot.data)
            .map_err(|error| format!("snapshot in {} does not decode: {error}", config.data_dir.display()))?,
        None => KvStore::default(),
    };
    let node = Node::new(config.raft_config(), restored).map_err(|error| error.to_string())?;

    let client_listener = bind(&config.bind, config.port, "client API").await?;
    let raft_listener = bind(&config.bind, config.raft_port, "Raft RPC").await?;

    let (persisted_tx, persisted_rx) = mpsc::unbounded_channel();
    let storage_tx = storage::spawn_writer(config.data_dir.clone(), wal, lock, persisted_tx, metrics.clone());
    let transport = Transport::start(&config, metrics.clone());
    let directory = Arc::new(Directory::new(config.clone()));
    let (inputs_tx, inputs_rx) = mpsc::channel(8192);
    let driver = Driver::new(node, kv, directory.clone(), metrics.clone(), transport, storage_tx);
    let driver_task = tokio::spawn(driver.run(inputs_rx, persisted_rx));

    let state = AppState {
        inputs: inputs_tx.clone(),
        directory,
        metrics,
        request_timeout: Duration::from_millis(config.request_timeout_ms),
        request_ids: Arc::new(AtomicU64::new(1)),
    };
    let client_app = with_middleware(api::client::router(state.clone()), &state);
    let raft_app = with_middleware(api::raft::router(state.clone()), &state);
    let (stop_tx, stop_rx) = watch::channel(false);
    let client_server = tokio::spawn(run_http(client_listener, client_app, stop_rx.clone()));
    let raft_server = tokio::spawn(run_http(raft_listener, raft_app, stop_rx));
    tracing::info!("listening: client API on {}, Raft RPC on port {}", config.client_url, config.raft_port);

    shutdown_signal().await;
    tracing::info!("shutdown requested");
    hand_over_leadership(&state).await;
    let _ = stop_tx.send(true);
    let _ = inputs_tx.send(Input::Stop).await;
    let _ = driver_task.await;
    let _ = tokio::time::timeout(Duration::from_secs(2), async {
        let _ = client_server.await;
        let _ = raft_server.await;
    })
    .await;
    tracing::info!("stopped");
    Ok(())
}

async fn bind(host: &str, port: u16, what: &str) -> Result<tokio::net::TcpListener, String> {
    tokio::net::TcpListener::bind((host, port))
        .await
        .map_err(|error| format!("cannot listen for the {what} on {host}:{port}: {error}"))
}

fn with_middleware(router: axum::Router, state: &AppState) -> axum::Router {
    router
        .fallback(api::not_found)
        .method_not_allowed_fallback(api::method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(state.clone(), api::observe))
        .layer(CatchPanicLayer::custom(api::panic_response))
}

async fn run_http(listener: tokio::net::TcpListener, app: axum::Router, mut stop: watch::Receiver<bool>) {
    let shutdown = async move {
        let _ = stop.wait_for(|&stopped| stopped).await;
    };
    use axum::serve::ListenerExt;
    // Small request/response pairs: never wait for Nagle.
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    if let Err(error) = axum::serve(listener, app).with_graceful_shutdown(shutdown).await {
        tracing::error!(%error, "HTTP server failed");
    }
}

/// A leader hands leadership to its most up-to-date follower and waits (briefly)
/// until it is no longer leader, so the cluster does not wait an election timeout.
async fn hand_over_leadership(state: &AppState) {
    let Ok(status) = state.status().await else {
        return;
    };
    if status.role != Role::Leader || state.directory.config.peers.is_empty() {
        return;
    }
    let _ = state.inputs.send(Input::TransferLeadership).await;
    let deadline = Instant::now() + Duration::from_secs(3);
    while Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
        match state.status().await {
            Ok(status) if status.role != Role::Leader => {
                tracing::info!("leadership handed over");
                return;
            }
            Ok(_) => {}
            Err(_) => return,
        }
    }
    tracing::warn!("leadership transfer did not finish in 3 s; stopping anyway");
}

/// Env var set by `raftkv cluster` on its children: stop when stdin closes, so
/// the children never outlive the cluster command (even if it is killed with -9).
pub const EXIT_ON_STDIN_EOF: &str = "RAFTKV_EXIT_ON_STDIN_EOF";

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    let parent_gone = async {
        if std::env::var_os(EXIT_ON_STDIN_EOF).is_none() {
            return std::future::pending::<()>().await;
        }
        let _ = tokio::task::spawn_blocking(|| {
            let mut sink = [0u8; 256];
            let mut stdin = std::io::stdin();
            while std::io::Read::read(&mut stdin, &mut sink).is_ok_and(|n| n > 0) {}
        })
        .await;
        tracing::info!("stdin closed (the cluster command is gone)");
    };
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
        () = parent_gone => {},
    }
}
