//! Starting and stopping a node: data dir, catalog, listeners, shard threads.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::thread::JoinHandle;

use tokio::sync::{mpsc, watch};
use tracing::{info, warn};

use crate::admin_api::AdminServer;
use crate::catalog::{Catalog, MetaStore, PartitionShared, Topic, owner_shard};
use crate::config::{IoBackend, NodeConfig};
use crate::error::StartError;
use crate::shard::{self, NodeShared, ShardStart};

/// A running node. Dropping it without [`Node::shutdown`] leaves the threads running.
pub struct Node {
    shared: Arc<NodeShared>,
    stop: watch::Sender<bool>,
    threads: Vec<JoinHandle<()>>,
    admin: Option<AdminServer>,
    /// Runtime the shards run on.
    pub uring: bool,
}

/// Whether io_uring can be used here (kernel support, no seccomp filter against it).
fn probe_io_uring() -> std::io::Result<()> {
    io_uring::IoUring::new(8).map(drop)
}

fn bind_reuseport(addr: SocketAddr) -> std::io::Result<std::net::TcpListener> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    socket.bind(&addr.into())?;
    socket.listen(1024)?;
    Ok(socket.into())
}

/// Removes partition directories that no topic claims: the tail of a deletion that a
/// crash interrupted.
fn remove_orphans(data_dir: &Path, catalog: &Catalog) {
    let Ok(entries) = std::fs::read_dir(data_dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if !path.is_dir() {
            continue;
        }
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        let Some((topic, partition)) = name.rsplit_once('-') else {
            continue;
        };
        let Ok(partition) = partition.parse::<i32>() else {
            continue;
        };
        let claimed = catalog
            .get(topic)
            .is_some_and(|t| t.partition(partition).is_some());
        if !claimed {
            warn!(path = %path.display(), "removing partition directory of a deleted topic");
            if let Err(error) = std::fs::remove_dir_all(&path) {
                warn!(path = %path.display(), %error, "cannot remove orphan directory");
            }
        }
    }
}

impl Node {
    /// Starts a node and returns once every shard serves.
    ///
    /// # Errors
    /// [`StartError`] when the config is invalid, the data dir is unusable, a listener
    /// cannot be bound, io_uring was required but is unavailable, or a log fails to open.
    pub fn start(config: NodeConfig) -> Result<Self, StartError> {
        config.validate()?;
        std::fs::create_dir_all(&config.data_dir).map_err(|source| StartError::Io {
            path: config.data_dir.clone(),
            source,
        })?;
        let uring = match config.io_backend {
            IoBackend::Tokio => false,
            IoBackend::Uring => {
                probe_io_uring().map_err(|source| StartError::IoUringUnavailable { source })?;
                true
            }
            IoBackend::Auto => match probe_io_uring() {
                Ok(()) => true,
                Err(error) => {
                    warn!(%error, "io_uring unavailable, falling back to tokio");
                    false
                }
            },
        };
        let meta = MetaStore::new(&config.data_dir);
        let identity = meta.load_identity(config.node_id)?;
        let shards = config.smp.get();
        let mut catalog = Catalog::default();
        for (name, id, partitions, topic_config) in meta.load_topics(&config.topic_defaults)? {
            let partitions = (0..partitions)
                .map(|p| Arc::new(PartitionShared::new(owner_shard(&name, p, shards))))
                .collect();
            catalog.insert(Arc::new(Topic {
                name: Arc::from(name.as_str()),
                id,
                config: topic_config,
                partitions,
            }));
        }
        remove_orphans(&config.data_dir, &catalog);
        let pipelines = crate::transforms::Registry::load(meta.load_pipelines()?);

        // Bind every listener before starting anything, so a busy port fails the start
        // cleanly; the admin port first, so that no Kafka client is accepted (and then
        // reset) by a node that cannot start.
        let admin_listener =
            std::net::TcpListener::bind(config.admin_addr).map_err(|source| StartError::Bind {
                addr: config.admin_addr,
                source,
            })?;
        let first = bind_reuseport(config.kafka_addr).map_err(|source| StartError::Bind {
            addr: config.kafka_addr,
            source,
        })?;
        let bound = first.local_addr().map_err(|source| StartError::Bind {
            addr: config.kafka_addr,
            source,
        })?;
        let mut listeners = vec![first];
        for _ in 1..shards {
            listeners.push(bind_reuseport(bound).map_err(|source| StartError::Bind {
                addr: bound,
                source,
            })?);
        }

        let (stop, stop_rx) = watch::channel(false);
        let shared = Arc::new(NodeShared::new(
            config.clone(),
            identity.cluster_id.clone(),
            catalog,
            meta,
            identity.producer_id_block_end,
            stop_rx,
        ));
        *shared.pipelines_mut() = pipelines;
        let mut senders = Vec::with_capacity(shards);
        let mut receivers = Vec::with_capacity(shards);
        for _ in 0..shards {
            let (tx, rx) = mpsc::unbounded_channel();
            senders.push(tx);
            receivers.push(rx);
        }
        let _ = shared.shards.set(senders);
        // Before the shards, so readiness answers 503 while partitions open.
        let admin = AdminServer::start(shared.clone(), bound, admin_listener)?;

        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let mut threads = Vec::with_capacity(shards);
        for (id, (tasks, listener)) in receivers.into_iter().zip(listeners).enumerate() {
            let start = ShardStart {
                id,
                node: shared.clone(),
                tasks,
                listener,
                uring,
                ready: ready_tx.clone(),
            };
            let thread = std::thread::Builder::new()
                .name(format!("shard-{id}"))
                .spawn(move || shard::run(start))
                .map_err(|e| StartError::Shard {
                    shard: id,
                    reason: e.to_string(),
                })?;
            threads.push(thread);
        }
        drop(ready_tx);
        let mut node = Self {
            shared,
            stop,
            threads,
            admin: Some(admin),
            uring,
        };
        for _ in 0..shards {
            match ready_rx.recv() {
                Ok(Ok(_)) => {}
                Ok(Err(error)) => {
                    node.stop_and_join();
                    return Err(error);
                }
                Err(_) => {
                    node.stop_and_join();
                    return Err(StartError::Shard {
                        shard: 0,
                        reason: "a shard thread exited during start".to_owned(),
                    });
                }
            }
        }
        node.shared.serving.send_replace(true);
        if let Some(admin) = &node.admin {
            admin.set_ready();
        }
        info!(
            node_id = config.node_id,
            kafka_addr = %bound,
            admin_addr = %node.admin_addr(),
            shards,
            io_backend = if uring { "io_uring" } else { "tokio" },
            cluster_id = %identity.cluster_id,
            "node started"
        );
        Ok(node)
    }

    /// The address the Kafka listener is bound to.
    pub fn kafka_addr(&self) -> SocketAddr {
        self.shared.config.kafka_addr
    }

    /// The address the admin HTTP API is bound to.
    pub fn admin_addr(&self) -> SocketAddr {
        self.admin
            .as_ref()
            .map_or(self.shared.config.admin_addr, AdminServer::addr)
    }

    fn stop_and_join(&mut self) {
        let _ = self.stop.send(true);
        for thread in self.threads.drain(..) {
            if thread.join().is_err() {
                warn!("a shard thread panicked");
            }
        }
        if let Some(admin) = self.admin.take() {
            admin.join();
        }
    }

    /// Stops accepting, lets in-flight requests finish, closes and syncs every log.
    pub fn shutdown(mut self) {
        info!("shutting down");
        self.stop_and_join();
        info!("shutdown complete");
    }
}
