//! # node
//!
//! The deployable raftkv node: a thin tokio driver around the `raft-sm` core.
//! Every Raft decision is made by the core (and so covered by the simulator);
//! this crate only moves bytes: HTTP in and out, a write-ahead log on disk,
//! timers from the tokio clock.
//!
//! One file per concern: [`config`] (flags and environment), [`wal`] (segments,
//! framing), [`storage`] (snapshot files, recovery, the WAL thread), [`driver`]
//! (the loop), [`transport`] (peer senders), [`frames`] (message framing on peer streams), [`api`] (client API and Raft RPC),
//! [`identity`] (which cluster a data directory belongs to), [`address_book`] (members'
//! URLs, from the configuration), [`join`] (a new node joining a cluster), [`tls`] (rustls set-up),
//! [`metrics`], [`server`] (wiring), [`cli`], [`client_cmd`], [`member_cmd`], [`cluster_cmd`].

pub mod address_book;
pub mod api;
pub mod cli;
pub mod client_cmd;
pub mod cluster_cmd;
pub mod config;
pub mod driver;
pub mod frames;
pub mod identity;
pub mod join;
pub mod member_cmd;
pub mod metrics;
pub mod server;
pub mod snapshot_file;
pub mod storage;
pub mod tls;
pub mod transport;
pub mod wal;
