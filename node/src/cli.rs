//! The command line: `raftkv [serve]`, `raftkv cluster`, and the client commands.

use crate::config::ServeArgs;
use clap::{Args, Parser, Subcommand};

use tracing_subscriber::EnvFilter;

/// raftkv: a replicated key-value store on Raft.
#[derive(Parser, Debug)]
#[command(name = "raftkv", version, args_conflicts_with_subcommands = true)]
pub struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    serve: ServeArgs,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run a node (the default when no command is given).
    Serve(Box<ServeArgs>),
    /// Run a local cluster of child processes on loopback; Ctrl-C stops them all.
    Cluster(crate::cluster_cmd::ClusterArgs),
    /// Repair a node whose write-ahead log is corrupt (it refuses to start and
    /// names the segment): discard the damaged suffix and keep the node from
    /// voting until a leader has caught it up. Takes the node's configuration
    /// (flags or environment, as `serve`); the node must be stopped.
    Repair(Box<ServeArgs>),
    /// Set a key (follows leader hints).
    Set {
        /// The key.
        key: String,
        /// The value.
        value: String,
        /// Attach the key to this lease (it is deleted when the lease ends).
        #[arg(long)]
        lease: Option<u64>,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Leases: grant TTL, keepalive ID, revoke ID.
    Lease {
        #[command(subcommand)]
        action: LeaseAction,
    },
    /// Print every change to KEY (or to every key with the prefix KEY) as JSON
    /// lines, from --rev on; reconnects to another endpoint after a disconnect or
    /// a node's death and resumes after the last revision seen.
    Watch {
        /// The key (the prefix with --prefix).
        key: String,
        /// Watch every key starting with KEY.
        #[arg(long)]
        prefix: bool,
        /// The first revision to print (default: changes from now on).
        #[arg(long)]
        rev: Option<u64>,
        /// Stop after this many events (default: never).
        #[arg(long)]
        count: Option<u64>,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Read a key (linearizable unless --stale).
    Get {
        /// The key.
        key: String,
        /// Read the contacted node's local state, which may lag.
        #[arg(long)]
        stale: bool,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Delete a key.
    Del {
        /// The key.
        key: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// List keys: one KEY, the range [KEY, END), or --prefix (linearizable unless --stale).
    Range {
        /// The first key (or the only one, without END).
        #[arg(required_unless_present = "prefix")]
        key: Option<String>,
        /// The end of the range, exclusive.
        end: Option<String>,
        /// Every key with this prefix ("" for all keys) instead of KEY/END.
        #[arg(long, conflicts_with_all = ["key", "end"])]
        prefix: Option<String>,
        /// At most this many keys.
        #[arg(long)]
        limit: Option<u64>,
        /// Leave the values out.
        #[arg(long)]
        keys_only: bool,
        /// Only count.
        #[arg(long)]
        count_only: bool,
        /// Read at this revision (the current one only; a page of a listing).
        #[arg(long)]
        revision: Option<u64>,
        /// Read the contacted node's local state, which may lag.
        #[arg(long)]
        stale: bool,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Compare-and-swap: set KEY to VALUE (or --delete it) only if it is as expected.
    Cas {
        /// The key.
        key: String,
        /// The new value (not with --delete).
        #[arg(required_unless_present = "delete")]
        value: Option<String>,
        /// Delete the key instead.
        #[arg(long, conflicts_with = "value")]
        delete: bool,
        /// Expect this value.
        #[arg(long)]
        prev_value: Option<String>,
        /// Expect the key not to exist.
        #[arg(long)]
        absent: bool,
        /// Expect this version.
        #[arg(long)]
        prev_version: Option<u64>,
        /// Expect this mod revision.
        #[arg(long)]
        prev_mod_revision: Option<u64>,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Run a transaction given as the JSON body of POST /txn (`-`: read it from stdin).
    Txn {
        /// The transaction.
        json: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Show every endpoint's health (role, term, leader, voters, learners).
    Status {
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Change the cluster's membership: list, add (a learner), promote, demote, remove.
    Member {
        #[command(subcommand)]
        action: crate::member_cmd::MemberAction,
    },
}

/// `raftkv lease ...`.
#[derive(Subcommand, Debug)]
pub enum LeaseAction {
    /// Grant a lease of TTL seconds; prints its id.
    Grant {
        /// Time to live in seconds.
        ttl: u64,
        /// Ask for this id (default: the cluster picks one).
        #[arg(long)]
        id: Option<u64>,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Renew a lease for another TTL (with --every-ms: forever, until interrupted or the lease is gone).
    Keepalive {
        /// The lease id.
        id: u64,
        /// Repeat every this many milliseconds.
        #[arg(long)]
        every_ms: Option<u64>,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Revoke a lease and delete its keys.
    Revoke {
        /// The lease id.
        id: u64,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// A lease's granted TTL, the milliseconds left on the leader's clock, and its keys.
    Ttl {
        /// The lease id.
        id: u64,
        /// Also list its keys.
        #[arg(long)]
        keys: bool,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Every lease's id.
    List {
        #[command(flatten)]
        client: ClientArgs,
    },
}

/// Where client commands send requests.
#[derive(Args, Debug, Clone)]
pub struct ClientArgs {
    /// Client API URLs of the nodes, comma-separated.
    #[arg(
        long,
        env = "RAFTKV_ENDPOINTS",
        default_value = "http://127.0.0.1:8080,http://127.0.0.1:8081,http://127.0.0.1:8082"
    )]
    pub endpoints: String,
    /// Give up after this many milliseconds in total, connecting included.
    #[arg(long, default_value_t = 10_000)]
    pub timeout_ms: u64,
    /// PEM CA file to verify `https://` endpoints with (instead of no roots at all).
    #[arg(long, env = "RAFTKV_CA_FILE")]
    pub ca_file: Option<std::path::PathBuf>,
}

fn init_logging() {
    let filter = EnvFilter::try_from_env("RUST_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr()) && std::env::var_os("NO_COLOR").is_none();
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_target(false)
        .with_writer(std::io::stderr)
        .init();
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("build the tokio runtime")
}

/// Parses the command line, runs the command and returns the exit code.
pub fn main() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => {
            use clap::error::ErrorKind;
            if matches!(error.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion)
                || matches!(error.kind(), ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand)
            {
                error.exit();
            }
            if error.kind() == ErrorKind::ValueValidation || error.kind() == ErrorKind::InvalidValue {
                // One line, as for every invalid configuration (the value may come from the environment).
                let text = error.to_string();
                let first = text.lines().next().unwrap_or_default().trim_start_matches("error: ");
                eprintln!("raftkv: invalid configuration: {first} (from the flag or its environment variable)");
                return 2;
            }
            error.exit();
        }
    };
    match cli.command {
        None => serve(cli.serve),
        Some(Command::Serve(args)) => serve(*args),
        Some(Command::Cluster(args)) => crate::cluster_cmd::run(args),
        Some(Command::Repair(args)) => repair(*args),
        Some(Command::Set { key, value, lease, client }) => {
            runtime().block_on(crate::client_cmd::set(&client, &key, &value, lease))
        }
        Some(Command::Lease { action }) => runtime().block_on(crate::client_cmd::lease(action)),
        Some(Command::Watch { key, prefix, rev, count, client }) => {
            runtime().block_on(crate::client_cmd::watch(&client, &key, prefix, rev, count))
        }
        Some(Command::Get { key, stale, client }) => runtime().block_on(crate::client_cmd::get(&client, &key, stale)),
        Some(Command::Del { key, client }) => runtime().block_on(crate::client_cmd::del(&client, &key)),
        Some(Command::Range { key, end, prefix, limit, keys_only, count_only, revision, stale, client }) => {
            let spec = crate::api::types::RangeSpec {
                key,
                end,
                prefix,
                limit,
                keys_only: keys_only.then_some(true),
                count_only: count_only.then_some(true),
                revision,
                consistency: stale.then(|| "stale".to_owned()),
            };
            runtime().block_on(crate::client_cmd::range(&client, spec))
        }
        Some(Command::Cas { key, value, delete, prev_value, absent, prev_version, prev_mod_revision, client }) => {
            let request = crate::api::types::CasRequest {
                key,
                value,
                delete,
                prev_value,
                prev_exist: absent.then_some(false),
                prev_version,
                prev_mod_revision,
                client_id: None,
                seq: None,
            };
            runtime().block_on(crate::client_cmd::cas(&client, request))
        }
        Some(Command::Txn { json, client }) => runtime().block_on(crate::client_cmd::txn(&client, &json)),
        Some(Command::Status { client }) => runtime().block_on(crate::client_cmd::status(&client)),
        Some(Command::Member { action }) => runtime().block_on(crate::member_cmd::run(action)),
    }
}

fn repair(args: ServeArgs) -> i32 {
    let config = match args.resolve(|name| std::env::var(name).ok()) {
        Ok(config) => config,
        Err(problem) => {
            eprintln!("raftkv: invalid configuration: {problem}");
            return 2;
        }
    };
    let dir = &config.data_dir;
    let single = config.peers.is_empty();
    match crate::storage::repair(dir, !single) {
        Ok(None) => {
            println!("raftkv repair: the write-ahead log in {} has no damage; nothing changed", dir.display());
            0
        }
        Ok(Some(repaired)) if single => {
            println!(
                "raftkv repair: cut {} at byte {} ({}); removed {} later segment(s). This node has no peers to \
                 catch it up: writes in the discarded part are lost.",
                repaired.segment.display(),
                repaired.offset,
                repaired.reason,
                repaired.removed.len()
            );
            0
        }
        Ok(Some(repaired)) => {
            println!(
                "raftkv repair: cut {} at byte {} ({}); removed {} later segment(s). The node will not vote or \
                 campaign until a leader has caught its log up to index {} (recorded in {}/vote-after-index). \
                 Start it again as usual.",
                repaired.segment.display(),
                repaired.offset,
                repaired.reason,
                repaired.removed.len(),
                repaired.reached.0,
                dir.display()
            );
            0
        }
        Err(error) => {
            eprintln!("raftkv repair: {error}");
            1
        }
    }
}

fn serve(args: ServeArgs) -> i32 {
    let config = match args.resolve(|name| std::env::var(name).ok()) {
        Ok(config) => config,
        Err(problem) => {
            eprintln!("raftkv: invalid configuration: {problem}");
            return 2;
        }
    };
    init_logging();
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        tracing::error!("panic: {info}");
        previous(info);
    }));
    let runtime = runtime();
    let result = runtime.block_on(crate::server::serve(config));
    // Never wait for blocking work (a thread reading stdin, a stalled disk) on
    // the way out: what must be durable was made so before serve returned.
    runtime.shutdown_background();
    match result {
        Ok(()) => 0,
        Err(crate::server::StartError::Config(problem)) => {
            eprintln!("raftkv: invalid configuration: {problem}");
            2
        }
        Err(crate::server::StartError::Failed(problem)) => {
            eprintln!("raftkv: {problem}");
            1
        }
    }
}
