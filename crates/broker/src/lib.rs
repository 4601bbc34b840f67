//! The Sluice broker: shards, listeners, connection pipelines and the request handlers
//! that wire the Kafka protocol to the storage engine and the group coordinator.
//!
//! Owns: the node's threads and runtimes, the topic catalog, connection handling, the
//! mapping of typed errors to Kafka error codes (`error_code`), and running each
//! `__consumer_offsets` partition's group coordinator on the partition's shard
//! (`groups`).
//! Must not know: how the CLI parses flags or files (it receives a [`NodeConfig`]).
//!
//! ```text
//!  shard thread (io_uring or tokio, one per core)
//!   accept ─▶ connection ─▶ frame ─▶ decode ─▶ handler ──▶ owning shard (task message)
//!                  ▲                                           │ partition log (storage)
//!                  └────── responses, in request order ◀───────┘
//! ```
//!
//! Invariants: a partition's log is touched only by its owning shard; responses on one
//! connection leave in the order requests arrived; bad input closes one connection and
//! nothing else.

mod admin_api;
mod catalog;
mod compaction;
pub mod config;
mod connection;
mod error;
mod error_code;
mod flush;
mod groups;
mod handler;
mod metrics;
mod partition;
mod producer_state;
mod server;
mod shard;
mod socket;
pub mod topic_config;
mod transforms;

pub use config::{ConfigError, IoBackend, NodeConfig, Seed};
pub use error::StartError;
pub use server::Node;
pub use topic_config::{TopicConfigError, TopicDefaults};
