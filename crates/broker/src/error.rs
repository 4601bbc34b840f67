//! Errors that stop a node from starting or running.

use std::net::SocketAddr;
use std::path::PathBuf;

use crate::config::ConfigError;

/// The node could not start (or had to stop).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// The configuration is unusable.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A listener could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// Address asked for.
        addr: SocketAddr,
        /// OS error.
        #[source]
        source: std::io::Error,
    },
    /// A file or directory operation failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// Path involved.
        path: PathBuf,
        /// OS error.
        #[source]
        source: std::io::Error,
    },
    /// Metadata on disk is unreadable or belongs elsewhere.
    #[error("{}: {reason}", path.display())]
    Meta {
        /// File involved.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// A partition log could not be opened.
    #[error("cannot open partition {topic}-{partition}: {source}")]
    Partition {
        /// Topic name.
        topic: String,
        /// Partition index.
        partition: i32,
        /// Storage error.
        #[source]
        source: sluice_storage::Error,
    },
    /// io_uring was required (`--io-backend uring`) but the kernel refused it.
    #[error("io_uring is unavailable: {source}")]
    IoUringUnavailable {
        /// Why io_uring_setup failed.
        #[source]
        source: std::io::Error,
    },
    /// A shard thread could not be started or died.
    #[error("shard {shard} failed: {reason}")]
    Shard {
        /// Shard index.
        shard: usize,
        /// What happened.
        reason: String,
    },
}
