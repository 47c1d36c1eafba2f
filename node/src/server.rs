//! `raftkv serve`: recover from disk, start the driver, the WAL thread, the peer
//! senders and both HTTP servers; on SIGTERM or Ctrl-C hand leadership over and stop.
//!
//! Both servers are bounded ([`crate::config::Limits`]): at most so many
//! connections per port (one more is answered `503` on plain HTTP and closed);
//! the TLS handshake and each request's headers must arrive within the header
//! timeout, its body within the body timeout; a connection with no traffic for
//! the idle timeout is closed. An `accept` that fails for want of file
//! descriptors (EMFILE, ENFILE) or memory is logged and retried after a pause:
//! it never stops the node.

use crate::address_book::{AddressBook, MemberAddress};
use crate::api::{self, AppState};
use crate::config::{Limits, NodeConfig};
use crate::driver::{Directory, Driver, Input};
use crate::metrics::Metrics;
use crate::storage;
use crate::tls::PeerCertificate;
use crate::transport::Transport;
use hyper::body::{Body as HttpBody, Frame, Incoming, SizeHint};
use raft_sm::kv::KvStore;
use raft_sm::{Host, Role};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch, OwnedSemaphorePermit, Semaphore};
use tower::ServiceExt;
use tower_http::catch_panic::CatchPanicLayer;

/// Why a node did not start, in one line.
#[derive(Debug)]
pub enum StartError {
    /// The configuration contradicts itself or the data directory (exit 2).
    Config(String),
    /// Something else failed (exit 1).
    Failed(String),
}

impl From<String> for StartError {
    fn from(problem: String) -> StartError {
        StartError::Failed(problem)
    }
}

/// Runs a node until it is told to stop. Errors are start-up failures, in one line.
pub async fn serve(config: NodeConfig) -> Result<(), StartError> {
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
    let tls = match &config.tls {
        Some(files) => Some((
            tokio_rustls::TlsAcceptor::from(crate::tls::client_port_config(files).map_err(StartError::Config)?),
            tokio_rustls::TlsAcceptor::from(
                crate::tls::server_config(files, config.mutual_tls()).map_err(StartError::Config)?,
            ),
        )),
        None => None,
    };
    let (wal, restored, lock) = storage::recover(&config.data_dir, config.wal_segment_bytes)
        .map_err(|error| format!("cannot recover from {}: {error}", config.data_dir.display()))?;
    // Before the node acts on what it recovered: is the directory this node's, of this cluster?
    let pristine = restored.hard_state.term.0 == 0 && restored.entries.is_empty() && restored.snapshot.is_none();
    let stored = stored_membership(&restored);
    let mut config = config;
    let recorded = crate::identity::load(&config.data_dir).map_err(StartError::Config)?;
    // Joining: a node with no configuration yet asks a member for the member list.
    // (A member that bootstrapped its cluster never fetches: the identity check
    // below refuses RAFT_JOIN on its directory.)
    let join_url = match &recorded {
        Some(recorded) if !pristine && recorded.joined.is_none() => None,
        Some(recorded) => config.join.clone().or_else(|| recorded.joined.clone()),
        None => config.join.clone(),
    };
    let mut seeds = Vec::new();
    if let Some(url) = &join_url {
        if stored.is_none() {
            tracing::info!(join = %url, "joining: asking for the member list");
            let members = crate::join::fetch_members(&config, url).await.map_err(StartError::Config)?;
            if config.cluster_id_given && members.cluster_id != config.cluster_id {
                return Err(StartError::Config(format!(
                    "RAFT_CLUSTER_ID is {} but {url} belongs to cluster {}",
                    config.cluster_id, members.cluster_id
                )));
            }
            config.cluster_id = members.cluster_id.clone();
            seeds = members.addresses();
            let names: Vec<&str> = seeds.iter().map(|member| member.name.as_str()).collect();
            tracing::info!(cluster_id = %config.cluster_id, members = %names.join(","), "joining: waiting to be added (raftkv member add)");
        } else if let Some(recorded) = &recorded {
            config.cluster_id = recorded.cluster_id.clone();
        }
    }
    let stored_names = stored.as_ref().map(|membership| voter_names(membership, &config));
    // A node started on a full disk comes up instead of crash-looping: recording
    // its identity waits for space like every other write.
    let mut pause = Duration::from_millis(50);
    let identity = loop {
        match crate::identity::check_or_record(&config, pristine, stored_names.as_deref()) {
            Ok(identity) => break identity,
            Err(problem) if crate::wal::free_bytes(&config.data_dir).is_some_and(|free| free < 1 << 20) => {
                tracing::error!("DISK FULL: {problem}; retrying until there is space");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(2));
            }
            Err(problem) => return Err(StartError::Config(problem)),
        }
    };
    tracing::info!(cluster_id = %identity.cluster_id, "cluster identity checked");
    config.cluster_id = identity.cluster_id.clone();
    tracing::info!(
        term = restored.hard_state.term.0,
        commit = restored.hard_state.commit.0,
        snapshot_index = restored.snapshot.as_ref().map_or(0, |s| s.last_index.0),
        log_entries = restored.entries.len(),
        "recovered durable state"
    );
    let mut raft_config = config.raft_config();
    // After the first start the recorded bootstrap wins over PEERS (and the
    // stored configuration, when there is one, over both: the core's rule).
    if identity.joined.is_some() {
        raft_config.voters = Vec::new();
        raft_config.voter_contexts = Default::default();
    } else if !identity.members.is_empty() {
        raft_config.voters = identity.members.iter().map(MemberAddress::id).collect();
        raft_config.voters.sort();
        raft_config.voter_contexts = AddressBook::contexts_of(&identity.members);
    }
    raft_config.vote_after_index = storage::vote_hold(&config.data_dir).map_err(|error| error.to_string())?;
    if let Some(index) = raft_config.vote_after_index {
        let last = restored.entries.last().map_or(0, |e| e.index.0);
        if last < index.0 {
            tracing::warn!(
                vote_after_index = index.0,
                last_log_index = last,
                "repaired: this node neither votes nor campaigns until a leader has caught its log up to the index"
            );
        }
    }
    let cannot_start = |error: String| format!("cannot start from {}: {error}", config.data_dir.display());
    let mut image = match &restored.snapshot {
        Some(meta) => Some(
            storage::snapshot_image(&config.data_dir, meta.last_index)
                .map_err(|error| cannot_start(error.to_string()))?,
        ),
        None => None,
    };
    let image = image.as_mut().map(|image| image as &mut dyn std::io::Read);
    let host =
        Host::new(raft_config, restored, KvStore::default(), image).map_err(|error| cannot_start(error.to_string()))?;

    let client_listener = bind(&config.bind, config.port, "client API").await?;
    let raft_listener = bind(&config.bind, config.raft_port, "Raft RPC").await?;

    let (persisted_tx, persisted_rx) = mpsc::unbounded_channel();
    let storage_tx = storage::spawn_writer(config.data_dir.clone(), wal, lock, persisted_tx, metrics.clone());
    let directory = Arc::new(Directory::new(config.clone()));
    directory.book.seed(identity.members.iter().cloned().chain(seeds));
    let transport = Transport::start(&config, metrics.clone(), directory.book.clone()).map_err(StartError::Config)?;
    let (inputs_tx, inputs_rx) = mpsc::channel(8192);
    let driver = Driver::new(host, directory.clone(), metrics.clone(), transport, storage_tx, config.data_dir.clone());
    let panic_after = std::env::var(TEST_PANIC_AFTER_MS).ok().and_then(|ms| ms.parse::<u64>().ok());
    let mut driver_task = tokio::spawn(async move {
        match panic_after {
            None => driver.run(inputs_rx, persisted_rx).await,
            Some(ms) => tokio::select! {
                () = driver.run(inputs_rx, persisted_rx) => {},
                () = tokio::time::sleep(Duration::from_millis(ms)) => panic!("{TEST_PANIC_AFTER_MS}: a core panic, as asked"),
            },
        }
    });

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
    let (client_tls, raft_tls) = tls.map_or((None, None), |(client, raft)| (Some(client), Some(raft)));
    let limits = config.limits;
    let client_server = tokio::spawn(run_http(
        Port { listener: client_listener, tls: client_tls, max_connections: limits.client_connections, what: "client" },
        client_app,
        limits,
        stop_rx.clone(),
    ));
    let raft_server = tokio::spawn(run_http(
        Port { listener: raft_listener, tls: raft_tls, max_connections: limits.peer_connections, what: "raft" },
        raft_app,
        limits,
        stop_rx,
    ));
    tracing::info!("listening: client API on {}, Raft RPC on port {}", config.client_url, config.raft_port);

    // Fail-stop: if the driver task ends by itself (a panic in the core or the
    // host), the node cannot make progress; exit non-zero so that a supervisor
    // restarts it, instead of answering 503 forever.
    let mut handover = true;
    tokio::select! {
        parent_gone = shutdown_signal() => {
            if parent_gone {
                // The cluster command stops every node: nobody to hand over to.
                handover = false;
            }
        }
        result = &mut driver_task => {
            let _ = stop_tx.send(true);
            let why = match result {
                Err(error) if error.is_panic() => "the Raft core panicked (see the panic message above)".to_owned(),
                Err(error) => format!("the Raft driver task failed: {error}"),
                Ok(()) => "the Raft driver stopped unexpectedly".to_owned(),
            };
            tracing::error!("{why}; exiting so that a supervisor restarts the node");
            return Err(StartError::Failed(why));
        }
    }
    tracing::info!("shutdown requested");
    if handover {
        hand_over_leadership(&state).await;
    }
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

/// The configuration the recovered log and snapshot hold (the latest
/// configuration entry, else the snapshot's), if any.
fn stored_membership(restored: &raft_sm::RestoredState) -> Option<raft_sm::Membership> {
    let in_log = restored.entries.iter().rev().find_map(|entry| match &entry.payload {
        raft_sm::Payload::Membership(membership) => Some((**membership).clone()),
        _ => None,
    });
    in_log.or_else(|| {
        restored
            .snapshot
            .as_ref()
            .map(|meta| meta.membership.clone())
            .filter(|membership| !membership.voters.is_empty())
    })
}

/// The names of a configuration's voters (both halves), sorted.
fn voter_names(membership: &raft_sm::Membership, config: &NodeConfig) -> Vec<String> {
    let mut names: Vec<String> = membership
        .all_voters()
        .into_iter()
        .map(|id| {
            let from_context = membership.context(id).and_then(|context| MemberAddress::from_context(id, context));
            from_context
                .map(|address| address.name)
                .or_else(|| config.name_of(id).map(str::to_owned))
                .unwrap_or_else(|| id.to_string())
        })
        .collect();
    names.sort();
    names
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

/// One listening port and how it serves.
struct Port {
    listener: tokio::net::TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    max_connections: usize,
    what: &'static str,
}

/// Whether an accept error means the process is out of file descriptors or
/// memory (EMFILE, ENFILE, ENOBUFS, ENOMEM on Linux): wait for some to free up.
fn is_resource_exhaustion(error: &std::io::Error) -> bool {
    matches!(error.raw_os_error(), Some(23 | 24 | 105 | 12))
}

/// Logs at most once a second, counting what it skipped.
struct RateLimitedLog {
    last: Option<Instant>,
    skipped: u64,
}

impl RateLimitedLog {
    fn due(&mut self) -> Option<u64> {
        if self.last.is_some_and(|last| last.elapsed() < Duration::from_secs(1)) {
            self.skipped += 1;
            return None;
        }
        self.last = Some(Instant::now());
        Some(std::mem::take(&mut self.skipped))
    }
}

async fn run_http(port: Port, app: axum::Router, limits: Limits, mut stop: watch::Receiver<bool>) {
    let slots = Arc::new(Semaphore::new(port.max_connections));
    let mut accept_errors = RateLimitedLog { last: None, skipped: 0 };
    let mut refusals = RateLimitedLog { last: None, skipped: 0 };
    loop {
        let accepted = tokio::select! {
            accepted = port.listener.accept() => accepted,
            _ = stop.wait_for(|&stopped| stopped) => return,
        };
        let tcp = match accepted {
            Ok((tcp, _)) => tcp,
            Err(error) => {
                let exhausted = is_resource_exhaustion(&error);
                if let Some(skipped) = accept_errors.due() {
                    tracing::warn!(port = port.what, %error, skipped, "accept failed; retrying shortly");
                }
                // Out of descriptors: pause so connections can close, then retry.
                let pause = if exhausted { 100 } else { 10 };
                tokio::time::sleep(Duration::from_millis(pause)).await;
                continue;
            }
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            if let Some(skipped) = refusals.due() {
                tracing::warn!(
                    port = port.what,
                    limit = port.max_connections,
                    skipped,
                    "connection limit reached; refusing a connection"
                );
            }
            if port.tls.is_none() {
                tokio::spawn(refuse(tcp));
            }
            continue;
        };
        // Small request/response pairs: never wait for Nagle.
        let _ = tcp.set_nodelay(true);
        tokio::spawn(serve_connection(tcp, slot, port.tls.clone(), app.clone(), limits, stop.clone()));
    }
}

/// Answers a connection over the limit with a short 503 and closes it.
async fn refuse(mut tcp: TcpStream) {
    use tokio::io::AsyncWriteExt;
    let body = r#"{"error":"too_many_connections","message":"the node's connection limit is reached; retry later"}"#;
    let response = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\nretry-after: 1\r\n\r\n{body}",
        body.len()
    );
    let _ = tokio::time::timeout(Duration::from_millis(200), tcp.write_all(response.as_bytes())).await;
}

/// Milliseconds since the process's first call (for activity stamps).
fn now_ms() -> u64 {
    static START: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    START.get_or_init(Instant::now).elapsed().as_millis() as u64
}

/// A connection's byte stream, stamping the time of its last traffic. It holds
/// the connection's slot, so an upgraded peer stream keeps counting against the
/// limit as long as it lives.
struct Tracked<IO> {
    io: IO,
    last_activity: Arc<AtomicU64>,
    _slot: OwnedSemaphorePermit,
}

impl<IO: AsyncRead + Unpin> AsyncRead for Tracked<IO> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let result = Pin::new(&mut self.io).poll_read(cx, buf);
        if matches!(result, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.last_activity.store(now_ms(), Ordering::Relaxed);
        }
        result
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for Tracked<IO> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, bytes: &[u8]) -> Poll<std::io::Result<usize>> {
        let result = Pin::new(&mut self.io).poll_write(cx, bytes);
        if matches!(result, Poll::Ready(Ok(n)) if n > 0) {
            self.last_activity.store(now_ms(), Ordering::Relaxed);
        }
        result
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let result = Pin::new(&mut self.io).poll_write_vectored(cx, bufs);
        if matches!(result, Poll::Ready(Ok(n)) if n > 0) {
            self.last_activity.store(now_ms(), Ordering::Relaxed);
        }
        result
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
}

/// A request body that must arrive whole before a deadline (slow-body clients).
/// The timer is armed only when the body is not there at the first poll: most
/// bodies arrive with their headers, and a timer per request costs an
/// allocation and two timer-wheel updates.
struct DeadlineBody {
    inner: Incoming,
    started: tokio::time::Instant,
    deadline: Option<Pin<Box<tokio::time::Sleep>>>,
    timeout: Duration,
}

impl HttpBody for DeadlineBody {
    type Data = axum::body::Bytes;
    type Error = axum::BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        if let Poll::Ready(frame) = Pin::new(&mut self.inner).poll_frame(cx) {
            return Poll::Ready(frame.map(|frame| frame.map_err(Into::into)));
        }
        let deadline = self.started + self.timeout;
        let sleep = self.deadline.get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        if std::future::Future::poll(sleep.as_mut(), cx).is_ready() {
            let timeout = self.timeout;
            return Poll::Ready(Some(Err(format!("request body not received within {timeout:?}").into())));
        }
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

async fn serve_connection(
    tcp: TcpStream,
    slot: OwnedSemaphorePermit,
    tls: Option<tokio_rustls::TlsAcceptor>,
    app: axum::Router,
    limits: Limits,
    mut stop: watch::Receiver<bool>,
) {
    let header_timeout = Duration::from_millis(limits.header_timeout_ms);
    let last_activity = Arc::new(AtomicU64::new(now_ms()));
    match tls {
        None => {
            let io = Tracked { io: tcp, last_activity: last_activity.clone(), _slot: slot };
            drive_connection(io, None, app, limits, last_activity, &mut stop).await;
        }
        Some(acceptor) => {
            let stream = match tokio::time::timeout(header_timeout, acceptor.accept(tcp)).await {
                Ok(Ok(stream)) => stream,
                Ok(Err(error)) => return tracing::debug!(%error, "TLS handshake failed"),
                Err(_) => return tracing::debug!("TLS handshake timed out"),
            };
            let peer = stream
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|certs| certs.first())
                .map(|cert| PeerCertificate(Arc::new(cert.clone().into_owned())));
            let io = Tracked { io: stream, last_activity: last_activity.clone(), _slot: slot };
            drive_connection(io, peer, app, limits, last_activity, &mut stop).await;
        }
    }
}

async fn drive_connection<IO: AsyncRead + AsyncWrite + Unpin + Send + 'static>(
    io: IO,
    peer: Option<PeerCertificate>,
    app: axum::Router,
    limits: Limits,
    last_activity: Arc<AtomicU64>,
    stop: &mut watch::Receiver<bool>,
) {
    let body_timeout = Duration::from_millis(limits.body_timeout_ms);
    let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
        let app = app.clone();
        if let Some(peer) = &peer {
            request.extensions_mut().insert(peer.clone());
        }
        let started = tokio::time::Instant::now();
        let request = request
            .map(|inner| axum::body::Body::new(DeadlineBody { inner, started, deadline: None, timeout: body_timeout }));
        app.oneshot(request)
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(Duration::from_millis(limits.header_timeout_ms));
    let connection = builder.serve_connection(hyper_util::rt::TokioIo::new(io), service).with_upgrades();
    tokio::pin!(connection);
    // The stop signal and the idle check live in a watcher task of their own
    // that wakes at most every `idle / 4` ms: the connection's hot path only
    // reads two flags, instead of polling a timer and a watch channel on every
    // wake (every request).
    let signal = Arc::new(CloseSignal::default());
    let (_connection_alive, connection_gone) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(watch_connection(
        signal.clone(),
        limits.idle_timeout_ms,
        last_activity,
        stop.clone(),
        connection_gone,
    ));
    let mut closing = false;
    let result = std::future::poll_fn(|cx| {
        signal.waker.register(cx.waker());
        if signal.drop_now.load(Ordering::Acquire) {
            return Poll::Ready(Ok(())); // Dropped: it did not finish within the grace period.
        }
        if !closing && signal.close.load(Ordering::Acquire) {
            connection.as_mut().graceful_shutdown();
            closing = true;
        }
        std::future::Future::poll(connection.as_mut(), cx)
    })
    .await;
    if let Err(error) = result {
        tracing::debug!(%error, "connection ended with an error");
    }
}

/// What a connection's watcher asks of it.
#[derive(Default)]
struct CloseSignal {
    /// Finish the request in flight, then close (idle, or the node stops).
    close: AtomicBool,
    /// Close now: it did not finish within the grace period after `close`.
    drop_now: AtomicBool,
    waker: futures_util::task::AtomicWaker,
}

/// Once asked to close, a connection gets this long to finish its request.
const CLOSE_GRACE: Duration = Duration::from_secs(5);

/// Watches one connection until it is gone: asks it to close when the node
/// stops or when it has been idle for `idle_ms`, and to drop when it has not
/// closed within [`CLOSE_GRACE`].
async fn watch_connection(
    signal: Arc<CloseSignal>,
    idle_ms: u64,
    last_activity: Arc<AtomicU64>,
    mut stop: watch::Receiver<bool>,
    mut connection_gone: tokio::sync::oneshot::Receiver<()>,
) {
    let mut check = tokio::time::interval(Duration::from_millis((idle_ms / 4).clamp(10, 1_000)));
    check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut closing: Option<Instant> = None;
    loop {
        tokio::select! {
            _ = &mut connection_gone => return,
            _ = stop.wait_for(|&stopped| stopped), if closing.is_none() => {
                closing = Some(Instant::now());
                signal.close.store(true, Ordering::Release);
                signal.waker.wake();
            }
            _ = check.tick() => {
                if let Some(since) = closing {
                    if since.elapsed() > CLOSE_GRACE {
                        signal.drop_now.store(true, Ordering::Release);
                        signal.waker.wake();
                        return;
                    }
                } else if now_ms().saturating_sub(last_activity.load(Ordering::Relaxed)) >= idle_ms {
                    tracing::debug!("closing an idle connection");
                    closing = Some(Instant::now());
                    signal.close.store(true, Ordering::Release);
                    signal.waker.wake();
                }
            }
        }
    }
}

/// A leader hands leadership to its most up-to-date follower and waits (briefly)
/// until it is no longer leader, so the cluster does not wait an election timeout.
async fn hand_over_leadership(state: &AppState) {
    let Ok(status) = state.status().await else {
        return;
    };
    if status.role != Role::Leader || status.membership.all_voters().len() <= 1 {
        return;
    }
    let _ = state.inputs.send(Input::TransferLeadership).await;
    let deadline = Instant::now() + Duration::from_secs(3);
    let me = state.directory.config.id;
    while Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
        match state.status().await {
            // Handed over only once another node is known to lead (stepping
            // down alone would leave the cluster waiting for an election).
            Ok(status) if status.role != Role::Leader && status.leader.is_some_and(|leader| leader != me) => {
                let to = status.leader.map(|leader| state.directory.name(leader)).unwrap_or_default();
                tracing::info!(to = %to, term = status.term.0, "leadership handed over");
                return;
            }
            Ok(_) => {}
            Err(_) => return,
        }
    }
    tracing::warn!("leadership transfer did not finish in 3 s; stopping anyway");
}

/// Test-only fault injection: the driver task panics this many milliseconds
/// after start (the fail-stop test provokes a core panic with it).
pub const TEST_PANIC_AFTER_MS: &str = "RAFTKV_TEST_PANIC_AFTER_MS";

/// Env var set by `raftkv cluster` on its children: stop when stdin closes, so
/// the children never outlive the cluster command (even if it is killed with -9).
pub const EXIT_ON_STDIN_EOF: &str = "RAFTKV_EXIT_ON_STDIN_EOF";

/// Waits for SIGTERM, Ctrl-C or (with [`EXIT_ON_STDIN_EOF`]) stdin closing;
/// whether it was the last (the cluster command stops every node).
async fn shutdown_signal() -> bool {
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
        () = ctrl_c => false,
        () = terminate => false,
        () = parent_gone => true,
    }
}
