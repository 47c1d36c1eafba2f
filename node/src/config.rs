//! Node configuration: command-line flags and environment variables (flags win),
//! resolved into a validated [`NodeConfig`].
//!
//! **Node ids.** Users name nodes with strings (`NODE_ID`, `PEER_IDS`, default
//! `node-<client port>`). The Raft core wants a `u64`: every node maps a string id
//! to [`node_id_of`], the 64-bit FNV-1a hash of its UTF-8 bytes. The hash depends on
//! the string alone, so every node computes the same number for the same name,
//! whatever order or set of peers it was given. Two names hashing to the same
//! number are refused at start-up.
//!
//! **Peers.** `PEERS` (alias `RAFT_NODES`) lists the peers' Raft URLs,
//! comma-separated (spaces trimmed, `http://` optional). `PEER_IDS` names them in
//! the same order; without it a peer on Raft port `R` is called `node-<R-1000>`,
//! which matches the defaults (`RAFT_PORT` = client port + 1000, `NODE_ID` =
//! `node-<client port>`). An entry that is this node itself (same id, or same Raft
//! port on a local address) is dropped, so every node can be given the same list.
//!
//! **Security.** A node with peers must authenticate them: a cluster token
//! (`RAFT_CLUSTER_TOKEN`), mutual TLS (`RAFT_TLS_CERT`, `RAFT_TLS_KEY` and
//! `RAFT_TLS_CA`), or both; otherwise it refuses to start unless told
//! `--insecure-peers` (`RAFT_INSECURE_PEERS=1`). With TLS, peer URLs are
//! `https://` (a URL without a scheme is taken as https) and so is this node's
//! client URL.

use crate::address_book::MemberAddress;
use clap::Args;
use raft_sm::NodeId;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// Raft ports are client ports plus this, by default.
pub const RAFT_PORT_OFFSET: u16 = 1000;

/// Flags of `raftkv serve`; each also reads its environment variable.
#[derive(Args, Clone, Debug, Default)]
pub struct ServeArgs {
    /// Client API port (env KVSTORE_PORT, then PORT; default 8080).
    #[arg(long, env = "KVSTORE_PORT")]
    pub port: Option<u16>,
    /// This node's id (default node-<port>).
    #[arg(long, env = "NODE_ID")]
    pub node_id: Option<String>,
    /// Raft RPC port (default port + 1000).
    #[arg(long, env = "RAFT_PORT")]
    pub raft_port: Option<u16>,
    /// Peers' Raft URLs, comma-separated (env PEERS, alias RAFT_NODES).
    #[arg(long, env = "PEERS")]
    pub peers: Option<String>,
    /// Peers' ids, comma-separated, in the order of --peers.
    #[arg(long, env = "PEER_IDS")]
    pub peer_ids: Option<String>,
    /// Base data directory; this node keeps its files in <dir>/<node id>.
    #[arg(long, env = "RAFT_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Take a snapshot once this many applied entries sit in the log (0 = never).
    #[arg(long, env = "RAFT_SNAPSHOT_THRESHOLD")]
    pub snapshot_threshold: Option<u64>,
    /// Minimum election timeout in ms.
    #[arg(long, env = "RAFT_ELECTION_TIMEOUT_MIN_MS")]
    pub election_timeout_min_ms: Option<u64>,
    /// Maximum election timeout in ms.
    #[arg(long, env = "RAFT_ELECTION_TIMEOUT_MAX_MS")]
    pub election_timeout_max_ms: Option<u64>,
    /// Leader heartbeat interval in ms.
    #[arg(long, env = "RAFT_HEARTBEAT_MS")]
    pub heartbeat_ms: Option<u64>,
    /// Shared secret every Raft RPC must carry (header X-Raft-Token).
    #[arg(long, env = "RAFT_CLUSTER_TOKEN", hide_env_values = true)]
    pub cluster_token: Option<String>,
    /// Address to listen on.
    #[arg(long, env = "RAFT_BIND")]
    pub bind: Option<String>,
    /// Host name or address other nodes and clients use to reach this node.
    #[arg(long, env = "RAFT_ADVERTISE_HOST")]
    pub advertise_host: Option<String>,
    /// How long a client request waits for commit or a read, in ms.
    #[arg(long, env = "RAFT_REQUEST_TIMEOUT_MS")]
    pub request_timeout_ms: Option<u64>,
    /// Timeout of one peer RPC, in ms.
    #[arg(long, env = "RAFT_RPC_TIMEOUT_MS")]
    pub rpc_timeout_ms: Option<u64>,
    /// Rotate write-ahead log segments at this size, in bytes.
    #[arg(long, env = "RAFT_WAL_SEGMENT_BYTES")]
    pub wal_segment_bytes: Option<u64>,
    /// The cluster's id (default: derived from the initial voters' ids; see identity.json).
    #[arg(long, env = "RAFT_CLUSTER_ID")]
    pub cluster_id: Option<String>,
    /// Join an existing cluster: any member's client URL. The node starts with no
    /// configuration of its own and waits, never campaigning, until the leader
    /// adds it (`raftkv member add`). Only read when the data directory is new.
    #[arg(long, env = "RAFT_JOIN")]
    pub join: Option<String>,
    /// Run a multi-node cluster without peer authentication (no token, no mutual TLS).
    #[arg(long, env = "RAFT_INSECURE_PEERS", value_parser = clap::builder::BoolishValueParser::new(), action = clap::ArgAction::SetTrue)]
    pub insecure_peers: bool,
    /// PEM certificate chain this node presents on both ports (turns TLS on).
    #[arg(long, env = "RAFT_TLS_CERT")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert.
    #[arg(long, env = "RAFT_TLS_KEY")]
    pub tls_key: Option<PathBuf>,
    /// PEM CA certificate(s) that sign the peers' certificates (mutual TLS on the Raft port).
    #[arg(long, env = "RAFT_TLS_CA")]
    pub tls_ca: Option<PathBuf>,
    /// Most concurrent connections on the client port (default 512).
    #[arg(long, env = "RAFT_MAX_CONNECTIONS")]
    pub max_connections: Option<usize>,
    /// Most concurrent connections on the Raft port (default 64).
    #[arg(long, env = "RAFT_MAX_PEER_CONNECTIONS")]
    pub max_peer_connections: Option<usize>,
    /// A connection must finish its TLS handshake and request headers within this, in ms (default 5000).
    #[arg(long, env = "RAFT_HEADER_TIMEOUT_MS")]
    pub header_timeout_ms: Option<u64>,
    /// A request body must arrive within this, in ms (default 10000).
    #[arg(long, env = "RAFT_BODY_TIMEOUT_MS")]
    pub body_timeout_ms: Option<u64>,
    /// A connection (or peer stream) idle this long is closed, in ms (default 60000).
    #[arg(long, env = "RAFT_IDLE_TIMEOUT_MS")]
    pub idle_timeout_ms: Option<u64>,
}

/// The TLS files of a node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsFiles {
    /// PEM certificate chain.
    pub cert: PathBuf,
    /// PEM private key.
    pub key: PathBuf,
    /// PEM CA bundle for verifying peers (mutual TLS on the Raft port).
    pub ca: Option<PathBuf>,
}

/// Bounds on what clients and peers can hold of a node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Concurrent connections on the client port.
    pub client_connections: usize,
    /// Concurrent connections on the Raft port.
    pub peer_connections: usize,
    /// TLS handshake plus request headers, in ms.
    pub header_timeout_ms: u64,
    /// Request body, in ms.
    pub body_timeout_ms: u64,
    /// Idle connection or peer stream, in ms.
    pub idle_timeout_ms: u64,
}

/// One member of the cluster other than this node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerConfig {
    /// The user's name for it.
    pub name: String,
    /// Its Raft id.
    pub id: NodeId,
    /// Its Raft base URL, e.g. `http://10.0.0.2:9080`.
    pub raft_url: String,
    /// Its client API URL as far as configuration tells (a peer also announces it).
    pub client_url: String,
}

/// The resolved, validated configuration of a node.
#[derive(Clone, Debug)]
pub struct NodeConfig {
    /// This node's name.
    pub name: String,
    /// This node's Raft id.
    pub id: NodeId,
    /// Client API port.
    pub port: u16,
    /// Raft RPC port.
    pub raft_port: u16,
    /// Listen address.
    pub bind: String,
    /// This node's client URL (for leader hints and `addr`).
    pub client_url: String,
    /// This node's Raft URL, as the other members dial it: its own entry in
    /// `PEERS` if it has one, else `RAFT_ADVERTISE_HOST` and the Raft port.
    pub raft_url: String,
    /// `--join`: a member's client URL; this node joins that cluster instead of
    /// bootstrapping one from `peers` (then empty).
    pub join: Option<String>,
    /// Whether `cluster_id` was given (`RAFT_CLUSTER_ID`) rather than derived.
    pub cluster_id_given: bool,
    /// Every other voter.
    pub peers: Vec<PeerConfig>,
    /// This node's own data directory (`<base>/<name>`).
    pub data_dir: PathBuf,
    /// Snapshot threshold in entries.
    pub snapshot_threshold: u64,
    /// Election timeout range and heartbeat interval.
    pub election_timeout_ms_min: u64,
    /// See `election_timeout_ms_min`.
    pub election_timeout_ms_max: u64,
    /// Heartbeat interval.
    pub heartbeat_interval_ms: u64,
    /// Cluster token, if set.
    pub cluster_token: Option<String>,
    /// Client request timeout.
    pub request_timeout_ms: u64,
    /// Peer RPC timeout.
    pub rpc_timeout_ms: u64,
    /// WAL segment size.
    pub wal_segment_bytes: u64,
    /// The cluster id this node belongs to ([`crate::identity`]).
    pub cluster_id: String,
    /// Peers run without authentication (explicit opt-out).
    pub insecure_peers: bool,
    /// TLS on both ports, if configured.
    pub tls: Option<TlsFiles>,
    /// Connection limits and timeouts.
    pub limits: Limits,
}

/// The Raft id of a node name: 64-bit FNV-1a of its bytes (see the module docs).
pub fn node_id_of(name: &str) -> NodeId {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in name.as_bytes() {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    NodeId(hash)
}

/// Splits a comma-separated list, trimming spaces and dropping empty items.
pub fn split_list(list: &str) -> Vec<String> {
    list.split(',').map(str::trim).filter(|item| !item.is_empty()).map(str::to_owned).collect()
}

/// `host:port` or `scheme://host:port[/]` → (`scheme://host:port`, host, port),
/// where the scheme is https with TLS and http without.
fn parse_url(raw: &str, tls: bool) -> Result<(String, String, u16), String> {
    let scheme = if tls { "https" } else { "http" };
    let rest = if let Some(rest) = raw.strip_prefix("https://") {
        if !tls {
            return Err(format!(
                "peer URL {raw:?} is https but TLS is off: set RAFT_TLS_CERT, RAFT_TLS_KEY and RAFT_TLS_CA (or use http://)"
            ));
        }
        rest
    } else if let Some(rest) = raw.strip_prefix("http://") {
        if tls {
            return Err(format!("peer URL {raw:?} is http but TLS is on: use https:// (or no scheme)"));
        }
        rest
    } else {
        raw
    };
    let rest = rest.trim_end_matches('/');
    let (host, port) =
        rest.rsplit_once(':').ok_or_else(|| format!("peer URL {raw:?} has no port (expected {scheme}://host:port)"))?;
    if host.is_empty() || host.contains('/') || host.contains("://") {
        return Err(format!("peer URL {raw:?} is not of the form {scheme}://host:port"));
    }
    let port: u16 = port.parse().map_err(|_| format!("peer URL {raw:?} has an invalid port {port:?}"))?;
    Ok((format!("{scheme}://{host}:{port}"), host.to_owned(), port))
}

fn is_local_host(host: &str, advertise_host: &str) -> bool {
    matches!(host, "localhost" | "127.0.0.1" | "0.0.0.0" | "[::1]") || host == advertise_host
}

impl ServeArgs {
    /// Resolves flags and environment into a validated configuration. `env` looks
    /// up the variables clap does not handle itself (`PORT`, `RAFT_NODES`).
    pub fn resolve(&self, env: impl Fn(&str) -> Option<String>) -> Result<NodeConfig, String> {
        let port = match self.port {
            Some(port) => port,
            None => match env("PORT") {
                Some(raw) => raw.trim().parse().map_err(|_| format!("PORT={raw:?} is not a port number"))?,
                None => 8080,
            },
        };
        let raft_port = match self.raft_port {
            Some(raft_port) => raft_port,
            None => port
                .checked_add(RAFT_PORT_OFFSET)
                .ok_or_else(|| format!("client port {port} + {RAFT_PORT_OFFSET} is not a port; set RAFT_PORT"))?,
        };
        if port == raft_port {
            return Err(format!("the client port and the Raft port are both {port}; they must differ"));
        }
        let name = self.node_id.clone().map(|name| name.trim().to_owned()).unwrap_or_else(|| format!("node-{port}"));
        if name.is_empty() || name.contains(['/', '\\', ',']) || name.starts_with('.') {
            return Err(format!(
                "NODE_ID {name:?} must be non-empty and contain no '/', '\\' or ',' (it names the data directory)"
            ));
        }
        let bind = self.bind.clone().unwrap_or_else(|| "0.0.0.0".into());
        let advertise_host = self.advertise_host.clone().unwrap_or_else(|| "127.0.0.1".into());
        let peers_raw = self.peers.clone().or_else(|| env("RAFT_NODES"));
        let urls = peers_raw.as_deref().map(split_list).unwrap_or_default();
        let names = self.peer_ids.as_deref().map(split_list);
        if let Some(names) = &names {
            if names.len() != urls.len() {
                return Err(format!(
                    "PEER_IDS names {} nodes but PEERS lists {}; give one id per peer URL, in the same order",
                    names.len(),
                    urls.len()
                ));
            }
        }
        let tls = match (&self.tls_cert, &self.tls_key) {
            (Some(cert), Some(key)) => Some(TlsFiles { cert: cert.clone(), key: key.clone(), ca: self.tls_ca.clone() }),
            (None, None) if self.tls_ca.is_some() => {
                return Err(
                    "RAFT_TLS_CA is set but RAFT_TLS_CERT and RAFT_TLS_KEY are not; mutual TLS needs all three".into()
                )
            }
            (None, None) => None,
            _ => return Err("RAFT_TLS_CERT and RAFT_TLS_KEY go together; set both or neither".into()),
        };
        let scheme = if tls.is_some() { "https" } else { "http" };
        let mut peers = Vec::new();
        let mut self_raft_url = None;
        for (i, raw) in urls.iter().enumerate() {
            let (raft_url, host, peer_raft_port) = parse_url(raw, tls.is_some())?;
            let client_port = peer_raft_port.checked_sub(RAFT_PORT_OFFSET);
            let peer_name = match &names {
                Some(names) => names[i].clone(),
                None => match client_port {
                    Some(client_port) => format!("node-{client_port}"),
                    None => {
                        return Err(format!(
                            "cannot name peer {raw:?}: its Raft port is below {RAFT_PORT_OFFSET}; set PEER_IDS"
                        ))
                    }
                },
            };
            let is_self = peer_name == name || (peer_raft_port == raft_port && is_local_host(&host, &advertise_host));
            if is_self {
                // How the others dial us: kept in the configuration as our address.
                self_raft_url = Some(raft_url);
                continue;
            }
            let client_url = match client_port {
                Some(client_port) => format!("{scheme}://{host}:{client_port}"),
                None => String::new(),
            };
            peers.push(PeerConfig { id: node_id_of(&peer_name), name: peer_name, raft_url, client_url });
        }
        let mut seen: BTreeMap<NodeId, &str> = BTreeMap::new();
        seen.insert(node_id_of(&name), &name);
        for peer in &peers {
            if let Some(other) = seen.insert(peer.id, &peer.name) {
                return Err(if other == peer.name {
                    format!("node id {:?} is listed twice", peer.name)
                } else {
                    format!("node ids {other:?} and {:?} hash to the same number; rename one", peer.name)
                });
            }
        }
        let base_dir = self.data_dir.clone().unwrap_or_else(|| PathBuf::from("data"));
        let election_timeout_ms_min = self.election_timeout_min_ms.unwrap_or(600);
        let election_timeout_ms_max = self.election_timeout_max_ms.unwrap_or(election_timeout_ms_min * 2);
        let heartbeat_interval_ms = self.heartbeat_ms.unwrap_or(100);
        let config = NodeConfig {
            id: node_id_of(&name),
            data_dir: base_dir.join(&name),
            name,
            port,
            raft_port,
            bind,
            client_url: format!("{scheme}://{advertise_host}:{port}"),
            raft_url: self_raft_url.unwrap_or_else(|| format!("{scheme}://{advertise_host}:{raft_port}")),
            join: None,
            cluster_id_given: self.cluster_id.is_some(),
            peers,
            snapshot_threshold: self.snapshot_threshold.unwrap_or(10_000),
            election_timeout_ms_min,
            election_timeout_ms_max,
            heartbeat_interval_ms,
            cluster_token: self.cluster_token.clone().filter(|token| !token.is_empty()),
            request_timeout_ms: self.request_timeout_ms.unwrap_or(5_000),
            rpc_timeout_ms: self.rpc_timeout_ms.unwrap_or(2_000),
            wal_segment_bytes: self.wal_segment_bytes.unwrap_or(64 << 20),
            cluster_id: String::new(),
            insecure_peers: self.insecure_peers,
            tls,
            limits: Limits {
                client_connections: self.max_connections.unwrap_or(512),
                peer_connections: self.max_peer_connections.unwrap_or(64),
                header_timeout_ms: self.header_timeout_ms.unwrap_or(5_000),
                body_timeout_ms: self.body_timeout_ms.unwrap_or(10_000),
                idle_timeout_ms: self.idle_timeout_ms.unwrap_or(60_000),
            },
        };
        let mut config = config;
        config.cluster_id = match &self.cluster_id {
            Some(id) => {
                let id = id.trim();
                let valid = id.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
                if id.is_empty() || id.len() > 64 || !valid {
                    return Err(format!("RAFT_CLUSTER_ID {id:?} must be 1 to 64 letters, digits, '-', '_' or '.'"));
                }
                id.to_owned()
            }
            None => crate::identity::derived_cluster_id(&config.voter_names()),
        };
        if let Some(join) = &self.join {
            if !config.peers.is_empty() {
                return Err("RAFT_JOIN and PEERS both given: a node either joins an existing cluster (RAFT_JOIN, then `raftkv member add`) or bootstraps a new one (PEERS)".into());
            }
            let (url, _, _) =
                parse_url(join.trim(), config.tls.is_some()).map_err(|problem| format!("RAFT_JOIN: {problem}"))?;
            config.join = Some(url);
        }
        let limits = config.limits;
        if limits.client_connections == 0 || limits.peer_connections == 0 {
            return Err("RAFT_MAX_CONNECTIONS and RAFT_MAX_PEER_CONNECTIONS must be at least 1".into());
        }
        if limits.header_timeout_ms == 0 || limits.body_timeout_ms == 0 || limits.idle_timeout_ms == 0 {
            return Err("header, body and idle timeouts must be at least 1 ms".into());
        }
        if !config.peers.is_empty() || config.join.is_some() {
            let mutual_tls = config.tls.as_ref().is_some_and(|tls| tls.ca.is_some());
            if config.tls.is_some() && !mutual_tls {
                return Err("TLS with peers needs RAFT_TLS_CA: the CA that signs the peers' certificates".into());
            }
            if config.cluster_token.is_none() && !mutual_tls && !config.insecure_peers {
                return Err("peers are not authenticated: set RAFT_CLUSTER_TOKEN (or mutual TLS: RAFT_TLS_CERT, RAFT_TLS_KEY, RAFT_TLS_CA), or pass --insecure-peers (RAFT_INSECURE_PEERS=1) to accept anyone who reaches the Raft port".into());
            }
        }
        config.raft_config().validate().map_err(|error| error.to_string())?;
        if config.wal_segment_bytes < 4096 {
            return Err("RAFT_WAL_SEGMENT_BYTES must be at least 4096".into());
        }
        if config.request_timeout_ms == 0 || config.rpc_timeout_ms == 0 {
            return Err("request and RPC timeouts must be at least 1 ms".into());
        }
        Ok(config)
    }
}

impl NodeConfig {
    /// The core's configuration.
    /// The core's configuration. Its bootstrap voters are this node and its
    /// `PEERS` with their addresses (none when joining); `serve` replaces them
    /// with the recorded ones after the first start ([`crate::identity`]).
    pub fn raft_config(&self) -> raft_sm::Config {
        let bootstrap = self.bootstrap_members();
        let mut voters: Vec<NodeId> = bootstrap.iter().map(MemberAddress::id).collect();
        voters.sort();
        let mut config = raft_sm::Config::new(self.id, voters);
        config.voter_contexts = crate::address_book::AddressBook::contexts_of(&bootstrap);
        config.election_timeout_ms_min = self.election_timeout_ms_min;
        config.election_timeout_ms_max = self.election_timeout_ms_max;
        config.heartbeat_interval_ms = self.heartbeat_interval_ms;
        config.snapshot_threshold_entries = self.snapshot_threshold;
        config
    }

    /// The names of every voter (this node and its peers), sorted.
    /// This node's addresses, as the configuration carries them.
    pub fn self_address(&self) -> MemberAddress {
        MemberAddress { name: self.name.clone(), raft_url: self.raft_url.clone(), client_url: self.client_url.clone() }
    }

    /// The members a new cluster starts with: this node and its peers, sorted
    /// by name (none when joining).
    pub fn bootstrap_members(&self) -> Vec<MemberAddress> {
        if self.join.is_some() {
            return Vec::new();
        }
        let mut members: Vec<MemberAddress> = self.peers.iter().map(MemberAddress::of_peer).collect();
        members.push(self.self_address());
        members.sort_by(|a, b| a.name.cmp(&b.name));
        members
    }

    pub fn voter_names(&self) -> Vec<String> {
        if self.join.is_some() {
            return Vec::new();
        }
        let mut names: Vec<String> = self.peers.iter().map(|peer| peer.name.clone()).collect();
        names.push(self.name.clone());
        names.sort();
        names
    }

    /// Whether peers must prove who they are with a client certificate.
    pub fn mutual_tls(&self) -> bool {
        self.tls.as_ref().is_some_and(|tls| tls.ca.is_some())
    }

    /// The largest peer frame a legal message takes, from the core's limits: an
    /// append batch (its byte limit, plus the one entry that may cross it, at
    /// most a snapshot chunk or a client request body) and the encoding overhead
    /// of its entries.
    pub fn frame_bytes_max(&self) -> usize {
        let core = self.raft_config();
        let last = core.snapshot_chunk_bytes_max.max(crate::api::client::BODY_BYTES_MAX);
        let overhead = core.append_entries_max.saturating_mul(64).saturating_add(64 << 10);
        core.append_bytes_max.saturating_add(last).saturating_add(overhead)
    }

    /// The name of a node id (this node or a peer).
    pub fn name_of(&self, id: NodeId) -> Option<&str> {
        if id == self.id {
            return Some(&self.name);
        }
        self.peers.iter().find(|peer| peer.id == id).map(|peer| peer.name.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn defaults_are_a_single_node_on_8080_with_data_in_data() {
        let config = ServeArgs::default().resolve(no_env).unwrap();
        assert_eq!(config.port, 8080);
        assert_eq!(config.raft_port, 9080);
        assert_eq!(config.name, "node-8080");
        assert!(config.peers.is_empty());
        assert_eq!(config.data_dir, PathBuf::from("data/node-8080"));
        assert_eq!(config.raft_config().voters, vec![config.id]);
    }

    #[test]
    fn port_falls_back_to_port_env_and_peers_to_raft_nodes() {
        let env = |name: &str| match name {
            "PORT" => Some("8081".to_owned()),
            "RAFT_NODES" => Some(" http://127.0.0.1:9080 , 127.0.0.1:9081,http://127.0.0.1:9082/ ".to_owned()),
            _ => None,
        };
        let args = ServeArgs { cluster_token: Some("t".into()), ..ServeArgs::default() };
        let config = args.resolve(env).unwrap();
        assert_eq!(config.port, 8081);
        let names: Vec<&str> = config.peers.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["node-8080", "node-8082"], "self is filtered out");
        assert_eq!(config.peers[1].raft_url, "http://127.0.0.1:9082");
        assert_eq!(config.peers[1].client_url, "http://127.0.0.1:8082");
    }

    #[test]
    fn peer_ids_name_the_peers_and_filter_self_by_name() {
        let args = ServeArgs {
            node_id: Some("b".into()),
            port: Some(7000),
            peers: Some("http://h1:1,http://h2:2,http://h3:3".into()),
            peer_ids: Some("a, b ,c".into()),
            insecure_peers: true,
            ..ServeArgs::default()
        };
        let config = args.resolve(no_env).unwrap();
        let names: Vec<&str> = config.peers.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["a", "c"]);
        assert_eq!(config.name_of(node_id_of("c")), Some("c"));
        assert_eq!(config.raft_url, "http://h2:2", "our own PEERS entry is how the others dial us");
        let bootstrap: Vec<String> = config.bootstrap_members().into_iter().map(|m| m.name).collect();
        assert_eq!(bootstrap, ["a", "b", "c"]);
    }

    #[test]
    fn a_joining_node_bootstraps_nothing_and_needs_authentication() {
        let join =
            ServeArgs { join: Some("10.0.0.1:8080".into()), cluster_token: Some("t".into()), ..ServeArgs::default() };
        let config = join.resolve(no_env).unwrap();
        assert_eq!(config.join.as_deref(), Some("http://10.0.0.1:8080"));
        assert!(config.bootstrap_members().is_empty() && config.raft_config().voters.is_empty());
        let both = ServeArgs { peers: Some("h:9081".into()), ..join.clone() };
        assert!(both.resolve(no_env).unwrap_err().contains("RAFT_JOIN and PEERS both given"));
        let open = ServeArgs { cluster_token: None, ..join };
        assert!(open.resolve(no_env).unwrap_err().contains("not authenticated"));
    }

    #[test]
    fn the_id_mapping_is_stable() {
        assert_eq!(node_id_of(""), NodeId(0xcbf2_9ce4_8422_2325));
        assert_eq!(node_id_of("a"), NodeId(0xaf63_dc4c_8601_ec8c));
        assert_ne!(node_id_of("node-8080"), node_id_of("node-8081"));
    }

    #[test]
    fn invalid_configurations_say_what_is_wrong() {
        let mismatch =
            ServeArgs { peers: Some("h:9081,h:9082".into()), peer_ids: Some("x".into()), ..ServeArgs::default() };
        assert!(mismatch.resolve(no_env).unwrap_err().contains("PEER_IDS names 1"));
        let bad_url = ServeArgs { peers: Some("http://h".into()), ..ServeArgs::default() };
        assert!(bad_url.resolve(no_env).unwrap_err().contains("no port"));
        let bad_timeouts = ServeArgs { heartbeat_ms: Some(900), ..ServeArgs::default() };
        assert!(bad_timeouts.resolve(no_env).unwrap_err().contains("heartbeat interval"));
        let twice = ServeArgs { peers: Some("h:9081,h:9081".into()), insecure_peers: true, ..ServeArgs::default() };
        assert!(twice.resolve(no_env).unwrap_err().contains("listed twice"));
        let bad_port = |name: &str| (name == "PORT").then(|| "eighty".to_owned());
        assert!(ServeArgs::default().resolve(bad_port).unwrap_err().contains("PORT"));
    }

    #[test]
    fn peers_must_be_authenticated_unless_explicitly_not() {
        let peers = || ServeArgs { peers: Some("h:9081,h:9082".into()), ..ServeArgs::default() };
        let problem = peers().resolve(no_env).unwrap_err();
        assert!(problem.contains("not authenticated") && problem.contains("--insecure-peers"), "{problem}");
        assert!(!problem.contains('\n'));
        assert!(ServeArgs { insecure_peers: true, ..peers() }.resolve(no_env).is_ok());
        assert!(ServeArgs { cluster_token: Some("t".into()), ..peers() }.resolve(no_env).is_ok());
        let empty_token = ServeArgs { cluster_token: Some(String::new()), ..peers() };
        assert!(empty_token.resolve(no_env).is_err(), "an empty token is no token");
        // A single node has no peers to authenticate.
        assert!(ServeArgs::default().resolve(no_env).is_ok());
    }

    #[test]
    fn tls_turns_urls_to_https_and_mutual_tls_authenticates_peers() {
        let tls = || ServeArgs {
            peers: Some("h:9081,https://h:9082".into()),
            tls_cert: Some("c.pem".into()),
            tls_key: Some("k.pem".into()),
            tls_ca: Some("ca.pem".into()),
            ..ServeArgs::default()
        };
        let config = tls().resolve(no_env).unwrap();
        assert!(config.mutual_tls());
        assert_eq!(config.client_url, "https://127.0.0.1:8080");
        assert_eq!(config.peers[0].raft_url, "https://h:9081");
        assert_eq!(config.peers[1].client_url, "https://h:8082");
        let no_ca = ServeArgs { tls_ca: None, ..tls() };
        assert!(no_ca.resolve(no_env).unwrap_err().contains("RAFT_TLS_CA"));
        let http_peer = ServeArgs { peers: Some("http://h:9081".into()), ..tls() };
        assert!(http_peer.resolve(no_env).unwrap_err().contains("TLS is on"));
        let half = ServeArgs { tls_key: None, ..tls() };
        assert!(half.resolve(no_env).unwrap_err().contains("go together"));
        let https_without_tls =
            ServeArgs { peers: Some("https://h:9081".into()), insecure_peers: true, ..ServeArgs::default() };
        assert!(https_without_tls.resolve(no_env).unwrap_err().contains("TLS is off"));
    }

    #[test]
    fn the_frame_limit_follows_the_core_limits() {
        let config = ServeArgs::default().resolve(no_env).unwrap();
        let core = config.raft_config();
        let limit = config.frame_bytes_max();
        assert!(limit >= core.append_bytes_max && limit >= core.snapshot_chunk_bytes_max);
        assert!(limit < 64 << 20, "far below the old 256 MiB: {limit}");
    }
}
