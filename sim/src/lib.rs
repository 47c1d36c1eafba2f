#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]

pub mod checker;
pub mod cli;
pub mod client;
pub mod cluster;
pub mod counters;
pub mod disk;
pub mod explore;
pub mod failure;
pub mod faults;
pub mod history;
pub mod html;
pub mod linearizability;
pub mod minimal_history;
pub mod mutation;
pub mod network;
pub mod node_host;
pub mod op_list;
pub mod options;
pub mod parallel;
pub mod queue;
pub mod rng;
pub mod shrink;
pub mod timeline;
pub mod trace;

pub use client::WorkloadOptions;
pub use cluster::{Cluster, Consistency, NodeView, ReadAnswer, RunSummary, Who, WriteAnswer};
pub use counters::Counters;
pub use failure::{Failure, FailureKind};
pub use faults::{FaultAction, SwarmOptions};
pub use history::{History, KvOp, KvOutcome, Operation};
pub use network::NetworkOptions;
pub use options::SimOptions;
