//! Pipelines on this node: the registry of deployed pipelines (persisted with the
//! cluster metadata), deploy-time checks against the catalog, and on every shard the
//! tasks that run each pipeline on the input partitions the shard owns.
//!
//! ```text
//!  admin API ─▶ deploy: parse + check topics ─▶ meta/pipelines/<name>.toml ─▶ version++
//!                                                                             │
//!  every shard: supervisor ◀── version changed / 1 s tick ◀───────────────────┘
//!     │ wanted = running pipelines × input partitions this shard owns
//!     ├─ start missing tasks (processor::task::Task on LocalSource/LocalSink/changelog)
//!     └─ stop tasks no longer wanted (paused, deleted, redeployed, partition gone)
//! ```
//!
//! A task that fails (an output partition gone, a full disk) is restarted from its
//! checkpoint after a backoff; the pipeline never stops for one bad record (those go to
//! its dead-letter topic). With replication, leadership of an input partition moving
//! moves its tasks through the same reconcile.

pub(crate) mod deploy;
pub(crate) mod io;

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use sluice_processor::spec::PipelineSpec;
use sluice_processor::task::{Task, TaskId, TaskStats};
use tokio::task::JoinHandle;
use tracing::{info, warn};

use crate::metrics::Histogram;
use crate::shard::{NodeShared, Shard};

/// How often a shard re-checks its tasks even without a change (restarts, new
/// partitions).
const RECONCILE_INTERVAL: Duration = Duration::from_secs(1);

/// First wait before restarting a failed task; doubles up to [`RESTART_BACKOFF_MAX`].
const RESTART_BACKOFF: Duration = Duration::from_millis(200);
const RESTART_BACKOFF_MAX: Duration = Duration::from_secs(5);

/// A deployed pipeline.
#[derive(Debug)]
pub(crate) struct Deployed {
    pub(crate) name: String,
    /// Bumped by every deploy of the name: a redeployed pipeline starts afresh.
    pub(crate) generation: u64,
    /// The spec file as deployed.
    pub(crate) source: String,
    pub(crate) spec: Arc<PipelineSpec>,
    pub(crate) paused: bool,
    pub(crate) deployed_at_ms: i64,
}

impl Deployed {
    /// The id tasks, checkpoints and origin headers carry.
    pub(crate) fn id(&self) -> Arc<str> {
        Arc::from(format!("{}#{}", self.name, self.generation))
    }
}

/// How a pipeline is persisted under `meta/pipelines/`.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct PipelineRecord {
    pub(crate) generation: u64,
    pub(crate) paused: bool,
    pub(crate) deployed_at_ms: i64,
    pub(crate) spec: String,
    /// A deleted pipeline, kept only for its generation: a later deploy of the name must
    /// take a new one, or its tasks would reuse the old task ids (and so the old
    /// checkpoints, running tasks and origin headers).
    #[serde(default)]
    pub(crate) deleted: bool,
}

/// The node's deployed pipelines, by name.
#[derive(Debug, Default)]
pub(crate) struct Registry {
    pipelines: BTreeMap<String, Arc<Deployed>>,
    /// The last generation of every name deployed here, deleted ones included.
    generations: BTreeMap<String, u64>,
}

impl Registry {
    /// Rebuilds the registry from persisted records; a record that no longer parses is
    /// skipped with a warning rather than stopping the node.
    pub(crate) fn load(records: Vec<(String, PipelineRecord)>) -> Self {
        let mut pipelines = BTreeMap::new();
        let mut generations = BTreeMap::new();
        for (name, record) in records {
            generations.insert(name.clone(), record.generation);
            if record.deleted {
                continue;
            }
            match PipelineSpec::parse(&record.spec) {
                Ok(mut spec) => {
                    default_dead_letter(&mut spec);
                    pipelines.insert(
                        name.clone(),
                        Arc::new(Deployed {
                            name,
                            generation: record.generation,
                            source: record.spec,
                            spec: Arc::new(spec),
                            paused: record.paused,
                            deployed_at_ms: record.deployed_at_ms,
                        }),
                    );
                }
                Err(error) => warn!(pipeline = %name, %error, "stored pipeline skipped"),
            }
        }
        Self {
            pipelines,
            generations,
        }
    }

    /// The generation a deploy of `name` takes: one more than any before it, deleted
    /// deployments included.
    pub(crate) fn next_generation(&self, name: &str) -> u64 {
        self.generations.get(name).map_or(1, |g| g + 1)
    }

    pub(crate) fn get(&self, name: &str) -> Option<Arc<Deployed>> {
        self.pipelines.get(name).cloned()
    }

    pub(crate) fn all(&self) -> Vec<Arc<Deployed>> {
        self.pipelines.values().cloned().collect()
    }

    pub(crate) fn insert(&mut self, deployed: Arc<Deployed>) {
        let generation = self.generations.entry(deployed.name.clone()).or_default();
        *generation = (*generation).max(deployed.generation);
        self.pipelines.insert(deployed.name.clone(), deployed);
    }

    /// Removes a pipeline; its generation is remembered.
    pub(crate) fn remove(&mut self, name: &str) -> Option<Arc<Deployed>> {
        self.pipelines.remove(name)
    }
}

/// The dead-letter topic of a pipeline that names none: `<name>.dlq`.
pub(crate) fn default_dead_letter(spec: &mut PipelineSpec) {
    if spec.dead_letter.is_none() {
        spec.dead_letter = Some(format!("{}.dlq", spec.name));
    }
}

/// What `describe` and `/metrics` show of one task.
pub(crate) struct TaskView {
    pub(crate) pipeline: String,
    pub(crate) topic: Arc<str>,
    pub(crate) partition: i32,
    pub(crate) stats: TaskStats,
    pub(crate) restarts: u64,
    pub(crate) last_error: Option<String>,
    /// Time from a read returning to its outputs written.
    pub(crate) latency: Histogram,
}

struct RunningTask {
    id: Arc<str>,
    handle: JoinHandle<()>,
    view: Rc<RefCell<TaskView>>,
}

/// A task by pipeline name, input topic and partition.
type TaskKey = (String, Arc<str>, i32);

/// The tasks one shard runs, by (pipeline, topic, partition).
#[derive(Default)]
pub(crate) struct ShardTransforms {
    running: RefCell<HashMap<TaskKey, RunningTask>>,
}

impl ShardTransforms {
    /// Views of the tasks of `pipeline` (all pipelines when `None`).
    pub(crate) fn views(&self, pipeline: Option<&str>) -> Vec<TaskSnapshot> {
        self.running
            .borrow()
            .iter()
            .filter(|((name, _, _), _)| pipeline.is_none_or(|p| p == name))
            .map(|(_, task)| TaskSnapshot::of(&task.view.borrow()))
            .collect()
    }

    fn stop_all(&self) {
        for (_, task) in self.running.borrow_mut().drain() {
            task.handle.abort();
        }
    }
}

/// A task's view copied off its shard.
#[derive(Debug, Clone)]
pub(crate) struct TaskSnapshot {
    pub(crate) pipeline: String,
    pub(crate) topic: Arc<str>,
    pub(crate) partition: i32,
    pub(crate) stats: TaskStats,
    pub(crate) restarts: u64,
    pub(crate) last_error: Option<String>,
    pub(crate) latency: crate::metrics::HistogramSnapshot,
}

impl TaskSnapshot {
    fn of(view: &TaskView) -> Self {
        Self {
            pipeline: view.pipeline.clone(),
            topic: view.topic.clone(),
            partition: view.partition,
            stats: view.stats.clone(),
            restarts: view.restarts,
            last_error: view.last_error.clone(),
            latency: view.latency.snapshot(std::iter::empty()),
        }
    }
}

/// Runs on every shard: keeps the shard's tasks in line with the registry.
pub(crate) async fn supervise(shard: Rc<Shard>) {
    let node = shard.node.clone();
    let mut changed = node.pipelines_version.subscribe();
    let mut shutdown = node.shutdown.clone();
    loop {
        reconcile(&shard);
        tokio::select! {
            _ = changed.changed() => {}
            () = tokio::time::sleep(RECONCILE_INTERVAL) => {}
            _ = shutdown.wait_for(|stop| *stop) => break,
        }
    }
    shard.transforms.stop_all();
}

/// Starts wanted tasks that are not running and stops running ones no longer wanted.
fn reconcile(shard: &Rc<Shard>) {
    let node = &shard.node;
    let mut wanted: HashMap<TaskKey, Arc<Deployed>> = HashMap::new();
    for deployed in node.pipelines().all() {
        if deployed.paused {
            continue;
        }
        for input in &deployed.spec.inputs {
            let Some(topic) = node.topic(input) else {
                continue;
            };
            for (index, partition) in topic.partitions.iter().enumerate() {
                let index = i32::try_from(index).unwrap_or(i32::MAX);
                if partition.shard == shard.id && shard.partition(input, index).is_some() {
                    wanted.insert(
                        (deployed.name.clone(), topic.name.clone(), index),
                        deployed.clone(),
                    );
                }
            }
        }
    }
    let mut running = shard.transforms.running.borrow_mut();
    running.retain(|key, task| {
        let keep = wanted.get(key).is_some_and(|d| d.id() == task.id) && !task.handle.is_finished();
        if !keep {
            task.handle.abort();
        }
        keep
    });
    for (key, deployed) in wanted {
        if running.contains_key(&key) {
            continue;
        }
        let (name, topic, partition) = key.clone();
        let view = Rc::new(RefCell::new(TaskView {
            pipeline: name,
            topic: topic.clone(),
            partition,
            stats: TaskStats::default(),
            restarts: 0,
            last_error: None,
            latency: Histogram::seconds(),
        }));
        let id = deployed.id();
        let handle = tokio::task::spawn_local(run_task(
            shard.clone(),
            deployed,
            topic,
            partition,
            view.clone(),
        ));
        running.insert(key, RunningTask { id, handle, view });
    }
}

/// Runs one task, restarting it from its checkpoint after a failure.
async fn run_task(
    shard: Rc<Shard>,
    deployed: Arc<Deployed>,
    topic: Arc<str>,
    partition: i32,
    view: Rc<RefCell<TaskView>>,
) {
    let node = shard.node.clone();
    let task_id = TaskId {
        pipeline: deployed.id(),
        topic: topic.clone(),
        partition,
    };
    let mut backoff = RESTART_BACKOFF;
    info!(task = %task_id, "pipeline task started");
    loop {
        let mut task = Task::new(
            task_id.clone(),
            deployed.spec.clone(),
            io::LocalSource {
                node: node.clone(),
                shard: shard.clone(),
                topic: topic.clone(),
                partition,
            },
            io::LocalSink {
                node: node.clone(),
                shard: shard.clone(),
                unsynced: HashMap::new(),
            },
            io::ChangelogStore {
                node: node.clone(),
                shard: shard.clone(),
                key: Bytes::from(task_id.to_string()),
            },
        );
        let error = task
            .run(|task, report| {
                let mut view = view.borrow_mut();
                view.stats = task.stats();
                if report.records > 0 {
                    view.latency.observe_duration(report.latency);
                }
            })
            .await;
        warn!(task = %task_id, %error, "pipeline task failed; restarting from its checkpoint");
        {
            let mut view = view.borrow_mut();
            view.restarts += 1;
            view.last_error = Some(error.to_string());
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(RESTART_BACKOFF_MAX);
    }
}

/// Keys of the checkpoints the tasks of `deployed` write (one per input partition).
pub(crate) fn checkpoint_keys(node: &NodeShared, deployed: &Deployed) -> Vec<Bytes> {
    let mut keys = Vec::new();
    for input in &deployed.spec.inputs {
        if let Some(topic) = node.topic(input) {
            for index in 0..topic.partitions.len() {
                let task = TaskId {
                    pipeline: deployed.id(),
                    topic: topic.name.clone(),
                    partition: i32::try_from(index).unwrap_or(i32::MAX),
                };
                keys.push(Bytes::from(task.to_string()));
            }
        }
    }
    keys
}
