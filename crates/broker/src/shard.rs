//! Shards: one thread each, running its own single-threaded runtime (io_uring through
//! tokio-uring, or plain tokio), owning a subset of the partitions. Every shard accepts
//! connections; work on a partition another shard owns travels as a task over that
//! shard's channel and its result comes back over a oneshot.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::future::Future;
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, OnceLock, RwLock};

use sluice_coordinator::GroupConfig;
use sluice_protocol::ResponseError;
use sluice_protocol::kafka_protocol::messages::list_groups_response::ListedGroup;
use sluice_protocol::kafka_protocol::protocol::StrBytes;
use tokio::sync::{Notify, mpsc, oneshot, watch};
use tracing::{debug, info, warn};

use crate::catalog::{Catalog, MetaStore, Topic};
use crate::config::NodeConfig;
use crate::connection;
use crate::error::StartError;
use crate::groups::{CoordinatorHost, OFFSETS_TOPIC};
use crate::partition::Partition;
use crate::socket::Listener;

/// How often a shard looks for due fsyncs (`flush.ms`) and other periodic log work.
const HOUSEKEEPING_INTERVAL: std::time::Duration = std::time::Duration::from_millis(100);

/// Work sent to a shard: runs on that shard's thread with its state.
pub(crate) type ShardTask = Box<dyn FnOnce(&Rc<Shard>) + Send>;

/// Hands out producer ids; persists the end of each reserved block so a restart never
/// reuses an id.
#[derive(Debug)]
pub(crate) struct ProducerIds {
    next: i64,
    block_end: i64,
}

const PRODUCER_ID_BLOCK: i64 = 1000;

/// State shared by all shards of a node.
pub(crate) struct NodeShared {
    pub(crate) config: NodeConfig,
    pub(crate) cluster_id: String,
    pub(crate) catalog: RwLock<Catalog>,
    pub(crate) meta: MetaStore,
    /// Serialises topic creation and deletion.
    pub(crate) admin_lock: tokio::sync::Mutex<()>,
    pub(crate) shards: OnceLock<Vec<mpsc::UnboundedSender<ShardTask>>>,
    pub(crate) producer_ids: Mutex<ProducerIds>,
    pub(crate) shutdown: watch::Receiver<bool>,
    /// Random per node start, so a restarted coordinator never hands out a member id
    /// it gave before.
    pub(crate) member_id_seed: u64,
    /// Each shard's counters, indexed by shard id.
    pub(crate) metrics: crate::metrics::NodeMetrics,
    /// Deployed pipelines.
    pub(crate) pipelines: RwLock<crate::transforms::Registry>,
    /// Bumped on every change of `pipelines`, so shards reconcile their tasks.
    pub(crate) pipelines_version: watch::Sender<u64>,
    /// Set once every shard has opened its partitions: until then no shard accepts
    /// clients, since a request could reach a partition another shard has not opened.
    pub(crate) serving: watch::Sender<bool>,
}

/// The shard went away (node shutting down) before answering.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("shard {shard} is not running")]
pub(crate) struct ShardGone {
    pub(crate) shard: usize,
}

impl NodeShared {
    pub(crate) fn new(
        config: NodeConfig,
        cluster_id: String,
        catalog: Catalog,
        meta: MetaStore,
        producer_id_block_end: i64,
        shutdown: watch::Receiver<bool>,
    ) -> Self {
        Self {
            cluster_id,
            catalog: RwLock::new(catalog),
            meta,
            admin_lock: tokio::sync::Mutex::new(()),
            shards: OnceLock::new(),
            member_id_seed: uuid::Uuid::new_v4().as_u64_pair().0,
            producer_ids: Mutex::new(ProducerIds {
                next: producer_id_block_end,
                block_end: producer_id_block_end,
            }),
            metrics: crate::metrics::NodeMetrics::new(config.smp.get()),
            pipelines: RwLock::new(crate::transforms::Registry::default()),
            pipelines_version: watch::Sender::new(0),
            serving: watch::Sender::new(false),
            config,
            shutdown,
        }
    }

    pub(crate) fn shard_count(&self) -> usize {
        self.config.smp.get()
    }

    pub(crate) fn catalog(&self) -> std::sync::RwLockReadGuard<'_, Catalog> {
        self.catalog.read().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn catalog_mut(&self) -> std::sync::RwLockWriteGuard<'_, Catalog> {
        self.catalog.write().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn pipelines(&self) -> std::sync::RwLockReadGuard<'_, crate::transforms::Registry> {
        self.pipelines.read().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn pipelines_mut(
        &self,
    ) -> std::sync::RwLockWriteGuard<'_, crate::transforms::Registry> {
        self.pipelines.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Tells every shard the pipelines changed.
    pub(crate) fn pipelines_changed(&self) {
        self.pipelines_version
            .send_modify(|v| *v = v.wrapping_add(1));
    }

    pub(crate) fn topic(&self, name: &str) -> Option<Arc<Topic>> {
        self.catalog().get(name).cloned()
    }

    pub(crate) fn partition_dir(&self, topic: &str, partition: i32) -> PathBuf {
        self.config.data_dir.join(format!("{topic}-{partition}"))
    }

    /// Allocates a producer id, persisting a new block when the current one is used up.
    pub(crate) fn next_producer_id(&self) -> Result<i64, StartError> {
        let mut ids = self.producer_ids.lock().unwrap_or_else(|e| e.into_inner());
        if ids.next >= ids.block_end {
            let block_end = ids.next + PRODUCER_ID_BLOCK;
            self.meta.store_identity(
                self.config.node_id,
                &crate::catalog::NodeIdentity {
                    cluster_id: self.cluster_id.clone(),
                    producer_id_block_end: block_end,
                },
            )?;
            ids.block_end = block_end;
        }
        let id = ids.next;
        ids.next += 1;
        Ok(id)
    }

    /// Runs `work` on shard `target` and returns its result. Runs inline when `target`
    /// is the calling shard.
    pub(crate) async fn on_shard<R, F, Fut>(
        &self,
        here: &Rc<Shard>,
        target: usize,
        work: F,
    ) -> Result<R, ShardGone>
    where
        F: FnOnce(Rc<Shard>) -> Fut + Send + 'static,
        Fut: Future<Output = R> + 'static,
        R: Send + 'static,
    {
        if target == here.id {
            return Ok(work(here.clone()).await);
        }
        let gone = ShardGone { shard: target };
        let sender = self.shards.get().and_then(|s| s.get(target)).ok_or(gone)?;
        let (tx, rx) = oneshot::channel();
        let task: ShardTask = Box::new(move |shard: &Rc<Shard>| {
            let shard = shard.clone();
            tokio::task::spawn_local(async move {
                let _ = tx.send(work(shard).await);
            });
        });
        sender.send(task).map_err(|_| gone)?;
        rx.await.map_err(|_| gone)
    }

    /// Runs `work` on shard `target` from a thread that is not a shard (the admin
    /// server), and returns its result.
    pub(crate) async fn ask_shard<R, F, Fut>(&self, target: usize, work: F) -> Result<R, ShardGone>
    where
        F: FnOnce(Rc<Shard>) -> Fut + Send + 'static,
        Fut: Future<Output = R> + 'static,
        R: Send + 'static,
    {
        let gone = ShardGone { shard: target };
        let sender = self.shards.get().and_then(|s| s.get(target)).ok_or(gone)?;
        let (tx, rx) = oneshot::channel();
        let task: ShardTask = Box::new(move |shard: &Rc<Shard>| {
            let shard = shard.clone();
            tokio::task::spawn_local(async move {
                let _ = tx.send(work(shard).await);
            });
        });
        sender.send(task).map_err(|_| gone)?;
        rx.await.map_err(|_| gone)
    }
}

/// A partition owned by this shard; borrowed mutably only for the span of an append.
pub(crate) type PartitionRef = Rc<RefCell<Partition>>;

/// One shard's state, touched only on its thread.
pub(crate) struct Shard {
    pub(crate) id: usize,
    pub(crate) node: Arc<NodeShared>,
    /// Partitions this shard owns, by topic then index.
    partitions: RefCell<HashMap<Arc<str>, HashMap<i32, PartitionRef>>>,
    /// Group coordinators of the `__consumer_offsets` partitions this shard owns.
    coordinators: RefCell<HashMap<i32, Rc<CoordinatorHost>>>,
    connections: Cell<usize>,
    connections_closed: Notify,
    /// Pipeline tasks running on this shard.
    pub(crate) transforms: crate::transforms::ShardTransforms,
}

impl Shard {
    pub(crate) fn partition(&self, topic: &str, partition: i32) -> Option<PartitionRef> {
        self.partitions
            .borrow()
            .get(topic)?
            .get(&partition)
            .cloned()
    }

    pub(crate) fn insert_partition(&self, partition: Partition) {
        self.partitions
            .borrow_mut()
            .entry(partition.topic.clone())
            .or_default()
            .insert(partition.index, Rc::new(RefCell::new(partition)));
    }

    pub(crate) fn remove_partition(&self, topic: &str, partition: i32) -> Option<PartitionRef> {
        if topic == OFFSETS_TOPIC
            && let Some(host) = self.coordinators.borrow_mut().remove(&partition)
        {
            host.unload(crate::handler::now_ms());
        }
        let mut partitions = self.partitions.borrow_mut();
        let of_topic = partitions.get_mut(topic)?;
        let removed = of_topic.remove(&partition);
        if of_topic.is_empty() {
            partitions.remove(topic);
        }
        removed
    }

    /// Opens every partition of `topic` this shard owns and has not opened yet.
    pub(crate) fn open_partitions_of(&self, topic: &Topic) -> Result<(), StartError> {
        for (index, shared) in topic.partitions.iter().enumerate() {
            let index = i32::try_from(index).unwrap_or(i32::MAX);
            if shared.shard != self.id || self.partition(&topic.name, index).is_some() {
                continue;
            }
            let dir = self.node.partition_dir(&topic.name, index);
            let partition =
                Partition::open(topic, index, shared.clone(), &dir).map_err(|source| {
                    StartError::Partition {
                        topic: topic.name.to_string(),
                        partition: index,
                        source,
                    }
                })?;
            self.insert_partition(partition);
            if *topic.name == *OFFSETS_TOPIC {
                self.start_coordinator(index);
            }
        }
        Ok(())
    }

    /// Starts the group coordinator of `__consumer_offsets` partition `index`, which
    /// this shard owns. A partition whose records cannot be read gets no coordinator:
    /// its groups are answered COORDINATOR_LOAD_IN_PROGRESS and the failure is logged.
    fn start_coordinator(&self, index: i32) {
        let Some(partition) = self.partition(OFFSETS_TOPIC, index) else {
            return;
        };
        let config = GroupConfig {
            member_id_seed: self.node.member_id_seed ^ u64::from(index.unsigned_abs()),
            ..self.node.config.group.clone()
        };
        match CoordinatorHost::start(index, partition, &config, crate::handler::now_ms()) {
            Ok(host) => {
                self.coordinators.borrow_mut().insert(index, host);
            }
            Err(error) => {
                warn!(partition = index, %error, "group coordinator cannot start");
            }
        }
    }

    /// The group coordinator of `__consumer_offsets` partition `index`, if this shard
    /// runs it.
    pub(crate) fn coordinator(&self, index: i32) -> Option<Rc<CoordinatorHost>> {
        self.coordinators.borrow().get(&index).cloned()
    }

    /// ListGroups over this shard's coordinators.
    pub(crate) fn list_groups(
        &self,
        states: &[StrBytes],
        types: &[StrBytes],
    ) -> Result<Vec<ListedGroup>, ResponseError> {
        let hosts: Vec<_> = self.coordinators.borrow().values().cloned().collect();
        let mut groups = Vec::new();
        for host in hosts {
            groups.append(&mut host.list_groups(states, types)?);
        }
        Ok(groups)
    }

    /// `(topic, partition, log size in bytes)` of every partition this shard owns.
    pub(crate) fn partition_sizes(&self) -> Vec<(Arc<str>, i32, u64)> {
        self.all_partitions()
            .iter()
            .map(|p| {
                let p = p.borrow();
                (p.topic.clone(), p.index, p.log().size_bytes())
            })
            .collect()
    }

    /// Committed offsets of the groups this shard coordinates.
    pub(crate) fn committed_offsets(&self) -> Vec<crate::metrics::scrape::CommittedOffset> {
        let hosts: Vec<_> = self.coordinators.borrow().values().cloned().collect();
        hosts.iter().flat_map(|h| h.committed_offsets()).collect()
    }

    /// Every partition this shard owns, for periodic work.
    fn all_partitions(&self) -> Vec<PartitionRef> {
        self.partitions
            .borrow()
            .values()
            .flat_map(|of_topic| of_topic.values().cloned())
            .collect()
    }

    /// Periodic work on this shard's logs: fsyncs that `flush.ms` or `flush.messages`
    /// ask for, and (when `retention` is set) segment rolls, retention and compaction.
    fn housekeeping(&self, now_ms: i64, retention: bool) {
        let hosts: Vec<_> = self.coordinators.borrow().values().cloned().collect();
        for host in hosts {
            host.tick(now_ms);
        }
        for partition in self.all_partitions() {
            if retention {
                partition.borrow_mut().enforce_retention(now_ms);
                crate::compaction::maybe_start(&partition, now_ms);
            }
            let due = partition.borrow().flush_due(now_ms);
            if due {
                crate::flush::request_sync(&partition);
            }
        }
    }

    /// Gives this shard's partitions of `topic` its (new) config.
    pub(crate) fn apply_topic_config(&self, topic: &Topic) {
        if let Some(partitions) = self.partitions.borrow().get(&topic.name) {
            for partition in partitions.values() {
                partition.borrow_mut().set_config(topic.config.clone());
            }
        }
    }

    fn connection_opened(&self) {
        self.connections.set(self.connections.get() + 1);
        crate::metrics::local(|m| {
            m.connections_accepted.fetch_add(1, Ordering::Relaxed);
            m.connections_active.fetch_add(1, Ordering::Relaxed);
        });
    }

    pub(crate) fn connection_closed(&self) {
        crate::metrics::local(|m| {
            m.connections_active.fetch_sub(1, Ordering::Relaxed);
        });
        self.connections
            .set(self.connections.get().saturating_sub(1));
        if self.connections.get() == 0 {
            self.connections_closed.notify_waiters();
        }
    }

    /// Closes every log: indexes written, data synced.
    fn close_partitions(&self) {
        // Coordinators hold their partitions: unload them first so those logs close
        // cleanly too.
        let hosts: Vec<_> = self
            .coordinators
            .borrow_mut()
            .drain()
            .map(|(_, h)| h)
            .collect();
        for host in hosts {
            host.unload(crate::handler::now_ms());
        }
        let partitions: Vec<_> = self
            .partitions
            .borrow_mut()
            .drain()
            .flat_map(|(topic, of_topic)| {
                of_topic
                    .into_iter()
                    .map(move |(i, p)| (topic.clone(), i, p))
            })
            .collect();
        for (topic, index, partition) in partitions {
            match Rc::try_unwrap(partition) {
                Ok(partition) => {
                    if let Err(error) = partition.into_inner().close() {
                        warn!(%topic, partition = index, %error, "closing partition log failed");
                    }
                }
                Err(partition) => {
                    if let Err(error) = partition.borrow_mut().sync() {
                        warn!(%topic, partition = index, %error, "syncing partition log failed");
                    }
                }
            }
        }
    }
}

/// What a shard thread is started with.
pub(crate) struct ShardStart {
    pub(crate) id: usize,
    pub(crate) node: Arc<NodeShared>,
    pub(crate) tasks: mpsc::UnboundedReceiver<ShardTask>,
    pub(crate) listener: std::net::TcpListener,
    pub(crate) uring: bool,
    pub(crate) ready: std::sync::mpsc::Sender<Result<usize, StartError>>,
}

/// Body of a shard thread: builds the runtime and runs the shard until shutdown.
pub(crate) fn run(start: ShardStart) {
    let id = start.id;
    let ready = start.ready.clone();
    if start.uring {
        tokio_uring::start(shard_main(start));
    } else {
        match tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            Ok(runtime) => {
                let local = tokio::task::LocalSet::new();
                local.block_on(&runtime, shard_main(start));
            }
            Err(e) => {
                let _ = ready.send(Err(StartError::Shard {
                    shard: id,
                    reason: format!("cannot build runtime: {e}"),
                }));
            }
        }
    }
}

async fn shard_main(start: ShardStart) {
    let ShardStart {
        id,
        node,
        mut tasks,
        listener,
        uring,
        ready,
    } = start;
    crate::flush::set_uring_runtime(uring);
    if let Some(metrics) = node.metrics.shards.get(id) {
        crate::metrics::set_local(metrics.clone());
    }
    let shard = Rc::new(Shard {
        id,
        node: node.clone(),
        partitions: RefCell::new(HashMap::new()),
        coordinators: RefCell::new(HashMap::new()),
        connections: Cell::new(0),
        connections_closed: Notify::new(),
        transforms: crate::transforms::ShardTransforms::default(),
    });
    let topics = node.catalog().topics();
    for topic in &topics {
        if let Err(error) = shard.open_partitions_of(topic) {
            let _ = ready.send(Err(error));
            return;
        }
    }
    let listener = match Listener::from_std(listener, uring) {
        Ok(listener) => listener,
        Err(e) => {
            let _ = ready.send(Err(StartError::Shard {
                shard: id,
                reason: format!("cannot register listener: {e}"),
            }));
            return;
        }
    };
    let _ = ready.send(Ok(id));

    let task_shard = shard.clone();
    tokio::task::spawn_local(async move {
        while let Some(task) = tasks.recv().await {
            task(&task_shard);
        }
    });
    let mut serving = node.serving.subscribe();
    let mut stopping = node.shutdown.clone();
    tokio::select! {
        _ = serving.wait_for(|all_open| *all_open) => {}
        _ = stopping.wait_for(|stop| *stop) => {}
    }
    debug!(shard = id, uring, "shard serving");

    tokio::task::spawn_local(crate::transforms::supervise(shard.clone()));

    let housekeeping_shard = shard.clone();
    tokio::task::spawn_local(async move {
        let mut tick = tokio::time::interval(HOUSEKEEPING_INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let retention_every = housekeeping_shard.node.config.log_retention_check_interval;
        let mut next_retention = tokio::time::Instant::now() + retention_every;
        loop {
            tick.tick().await;
            let retention = tokio::time::Instant::now() >= next_retention;
            if retention {
                next_retention = tokio::time::Instant::now() + retention_every;
            }
            housekeeping_shard.housekeeping(crate::handler::now_ms(), retention);
        }
    });

    let mut shutdown = node.shutdown.clone();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((reader, writer, peer)) => {
                    shard.connection_opened();
                    tokio::task::spawn_local(connection::serve(shard.clone(), reader, writer, peer));
                }
                Err(error) => {
                    warn!(shard = id, %error, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                }
            },
            _ = shutdown.wait_for(|stop| *stop) => break,
        }
    }
    drop(listener);
    // Connections finish what they have read, then close; give them a bounded time.
    let drained = async {
        while shard.connections.get() > 0 {
            let closed = shard.connections_closed.notified();
            if shard.connections.get() == 0 {
                break;
            }
            closed.await;
        }
    };
    if tokio::time::timeout(std::time::Duration::from_secs(10), drained)
        .await
        .is_err()
    {
        warn!(
            shard = id,
            open = shard.connections.get(),
            "connections still open at shutdown"
        );
    }
    shard.close_partitions();
    info!(shard = id, "shard stopped");
}
