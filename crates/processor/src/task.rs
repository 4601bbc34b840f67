//! One pipeline on one input partition, exactly once.
//!
//! A task reads durable records of its input partition through a [`Source`], runs them
//! through the [`Chain`], and writes what comes out through a [`Sink`]. Every checkpoint
//! interval it makes its outputs durable, then saves its input position, watermark,
//! table positions, operator state and the end offset of every output partition through
//! a [`CheckpointStore`].
//!
//! Exactly once rests on determinism. The chain's outputs depend only on the input
//! records and the restored state (event time, not wall-clock time; a watermark that
//! advances record by record; tables that change only at checkpoints), so a task
//! restarted from its last checkpoint produces, in the same order, the very outputs it
//! produced before the crash. Each output carries an origin header, `task@offset.seq`
//! (the input offset it came from and its number among that offset's outputs). At
//! start the task finds, in every output partition past the end offset its checkpoint
//! recorded, the last origin it wrote; while replaying it skips every output at or
//! before that origin, and it takes no checkpoint until the replay has passed them all.
//!
//! ```text
//!  load checkpoint ─▶ restore state, position P ─▶ scan outputs past recorded ends
//!       │                                              │ last origin per partition
//!       ▼                                              ▼
//!  read P.. ─▶ chain ─▶ outputs ─▶ skip origin ≤ last written ─▶ Sink::write
//!       └─ interval passed and replay done ─▶ Sink::flush ─▶ tables ─▶ save checkpoint
//! ```

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sluice_protocol::partitioner::partition_for_key;

use crate::chain::{Chain, Output, StepStats};
use crate::record::{Payload, Record};
use crate::spec::{EventTime, Format, PipelineSpec, StartFrom};

/// Header every output carries: which task wrote it, from which input offset.
pub const ORIGIN_HEADER: &str = "sluice.origin";
/// Header of a dead letter: why the record failed.
pub const ERROR_HEADER: &str = "sluice.error";
/// Header of a dead letter: the step that failed (absent when ingestion failed).
pub const STEP_HEADER: &str = "sluice.step";
/// Header of a dead letter: `topic/partition@offset` of the input record.
pub const SOURCE_HEADER: &str = "sluice.source";

/// Bytes read from the input per step.
const READ_BYTES: usize = 1 << 20;

/// Format version of checkpoints this code writes.
const CHECKPOINT_VERSION: u32 = 1;

/// Which pipeline deployment, on which input partition.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TaskId {
    /// The pipeline's deployment id (name and generation): a redeployed pipeline starts
    /// afresh.
    pub pipeline: Arc<str>,
    /// Input topic.
    pub topic: Arc<str>,
    /// Input partition.
    pub partition: i32,
}

impl std::fmt::Display for TaskId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}/{}", self.pipeline, self.topic, self.partition)
    }
}

/// A record of the input partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputRecord {
    /// Its offset.
    pub offset: i64,
    /// Key, `None` when null.
    pub key: Option<Bytes>,
    /// Value, `None` when null.
    pub value: Option<Bytes>,
    /// Headers.
    pub headers: Vec<(Bytes, Option<Bytes>)>,
    /// Kafka timestamp (ms).
    pub timestamp: i64,
}

/// What one read returned.
#[derive(Debug, Clone, Default)]
pub struct ReadBatch {
    /// Records at or after the offset asked for, in offset order.
    pub records: Vec<InputRecord>,
    /// Where the next read starts (past control batches and compacted gaps too).
    pub next_offset: i64,
    /// The partition's durable end when read, for lag.
    pub end_offset: i64,
}

/// A record for an output partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputRecord {
    /// Topic.
    pub topic: Arc<str>,
    /// Partition (Kafka's key hash for keyed records, else the input partition modulo
    /// the partition count).
    pub partition: i32,
    /// Key.
    pub key: Option<Bytes>,
    /// Value.
    pub value: Option<Bytes>,
    /// Headers, the origin header last.
    pub headers: Vec<(String, Option<Bytes>)>,
    /// Timestamp (ms).
    pub timestamp: i64,
}

/// Where an output came from: an input offset and its number among that offset's
/// outputs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Origin {
    /// Input offset.
    pub offset: i64,
    /// Sequence number among the outputs of that offset.
    pub seq: u32,
}

/// The origin header value for `task` at `origin`.
pub fn origin_header(task: &str, origin: Origin) -> String {
    format!("{task}@{}.{}", origin.offset, origin.seq)
}

/// The origin in a header value, when `task` wrote it.
pub fn parse_origin(value: &[u8], task: &str) -> Option<Origin> {
    let rest = value.strip_prefix(task.as_bytes())?.strip_prefix(b"@")?;
    let rest = std::str::from_utf8(rest).ok()?;
    let (offset, seq) = rest.split_once('.')?;
    Some(Origin {
        offset: offset.parse().ok()?,
        seq: seq.parse().ok()?,
    })
}

/// An I/O failure of a source, sink or checkpoint store; the task stops and is
/// restarted from its checkpoint.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct IoError(pub String);

/// Why a read returned no records.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SourceError {
    /// The offset is below the log start (retention removed it): resume there.
    #[error("offset out of range; log starts at {log_start}")]
    OutOfRange {
        /// The partition's log start offset.
        log_start: i64,
    },
    /// Anything else.
    #[error(transparent)]
    Io(#[from] IoError),
}

/// What a table read returned.
#[derive(Debug, Clone, Default)]
pub struct TableRead {
    /// Updates in log order per partition: key and value (`None`: tombstone).
    pub updates: Vec<(Bytes, Option<Bytes>)>,
    /// Where the next read of each partition starts.
    pub positions: Vec<i64>,
}

/// The input partition, as the task reads it. Only durable (committed) records may be
/// returned: a record lost in a crash must never have produced output.
pub trait Source {
    /// Records at `from` and after (about `max_bytes` of them), waiting up to `wait` when
    /// there are none yet.
    fn read(
        &mut self,
        from: i64,
        max_bytes: usize,
        wait: Duration,
    ) -> impl Future<Output = Result<ReadBatch, SourceError>>;

    /// The offset a task without checkpoint starts at.
    fn start_offset(&mut self, from: StartFrom) -> impl Future<Output = Result<i64, IoError>>;

    /// Every partition of table topic `topic` from `positions` (one per partition; a
    /// missing entry is the log start) up to its durable end.
    fn read_table(
        &mut self,
        topic: &str,
        positions: &[i64],
    ) -> impl Future<Output = Result<TableRead, IoError>>;
}

/// The output topics, as the task writes them.
pub trait Sink {
    /// How many partitions `topic` has.
    fn partitions(&mut self, topic: &str) -> impl Future<Output = Result<i32, IoError>>;

    /// Appends `records` (each to its topic and partition, in order per partition).
    fn write(&mut self, records: Vec<OutputRecord>) -> impl Future<Output = Result<(), IoError>>;

    /// Makes everything written so far durable.
    fn flush(&mut self) -> impl Future<Output = Result<(), IoError>>;

    /// The end offset of every partition of `topic`.
    fn end_offsets(&mut self, topic: &str) -> impl Future<Output = Result<Vec<i64>, IoError>>;

    /// The greatest origin of `task` among the records of `topic`/`partition` from
    /// offset `from` to the end (see [`parse_origin`]).
    fn last_origin(
        &mut self,
        topic: &str,
        partition: i32,
        from: i64,
        task: &str,
    ) -> impl Future<Output = Result<Option<Origin>, IoError>>;
}

/// Where a task's checkpoints live (the latest one counts).
pub trait CheckpointStore {
    /// The latest checkpoint saved, if any.
    fn load(&mut self) -> impl Future<Output = Result<Option<Bytes>, IoError>>;

    /// Saves a checkpoint; durable when this returns.
    fn save(&mut self, checkpoint: Bytes) -> impl Future<Output = Result<(), IoError>>;
}

/// A checkpoint as stored (JSON).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Checkpoint {
    version: u32,
    task: String,
    /// Next input offset to process.
    position: i64,
    /// Greatest event time seen (`None` before the first record).
    watermark: Option<i64>,
    /// End offset of every partition of every output topic when it was taken.
    outputs: BTreeMap<String, Vec<i64>>,
    /// Next offset of every partition of every table topic.
    tables: BTreeMap<String, Vec<i64>>,
    /// The chain's state.
    state: Value,
}

/// Counters of a task, for metrics and `sluice transform describe`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TaskStats {
    /// Input records processed.
    pub records_in: u64,
    /// Records written to output topics (dead letters not included).
    pub records_out: u64,
    /// Records sent to the dead-letter topic (or dropped for lack of one).
    pub dead_letters: u64,
    /// Outputs skipped on replay because they were written before a restart.
    pub replayed_skipped: u64,
    /// Input records lost to retention before the task read them.
    pub skipped_by_retention: u64,
    /// Next input offset.
    pub position: i64,
    /// Durable end of the input partition at the last read.
    pub end_offset: i64,
    /// Greatest event time seen.
    pub watermark: Option<i64>,
    /// Checkpoints saved since the task started.
    pub checkpoints: u64,
    /// Size of the last checkpoint saved (operator state and positions), in bytes.
    pub checkpoint_bytes: u64,
    /// Per step counters.
    pub steps: Vec<StepStats>,
}

impl TaskStats {
    /// Records of the input not processed yet.
    pub fn lag(&self) -> i64 {
        (self.end_offset - self.position).max(0)
    }

    /// Records dropped on purpose by all steps.
    pub fn dropped(&self) -> u64 {
        self.steps.iter().map(|s| s.dropped).sum()
    }

    /// State entries of all steps.
    pub fn state_entries(&self) -> usize {
        self.steps.iter().map(|s| s.state_entries).sum()
    }
}

/// What one [`Task::step`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StepReport {
    /// Input records processed.
    pub records: usize,
    /// From the read returning to the outputs written.
    pub latency: Duration,
    /// Whether a checkpoint was saved.
    pub checkpointed: bool,
}

/// Why a task stopped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TaskError {
    /// Reading, writing or checkpointing failed.
    #[error(transparent)]
    Io(#[from] IoError),
    /// The checkpoint could not be understood.
    #[error("checkpoint unusable: {0}")]
    Checkpoint(String),
}

/// One pipeline on one input partition.
pub struct Task<S, K, C> {
    id: TaskId,
    tag: String,
    spec: Arc<PipelineSpec>,
    chain: Chain,
    source: S,
    sink: K,
    store: C,
    output_topics: Vec<Arc<str>>,
    dead_letter: Option<Arc<str>>,
    partitions: HashMap<Arc<str>, i32>,
    tables: BTreeMap<String, Vec<i64>>,
    position: i64,
    watermark: Option<i64>,
    /// Per output partition, the last origin written before a restart.
    replay: HashMap<(Arc<str>, i32), Origin>,
    /// Outputs of the record being processed: its offset and the next seq.
    origin: Origin,
    pending: Vec<OutputRecord>,
    checkpoint_interval: Duration,
    last_checkpoint: Instant,
    stats: TaskStats,
    started: bool,
}

impl<S: Source, K: Sink, C: CheckpointStore> Task<S, K, C> {
    /// A task of `spec` on one input partition; [`Task::start`] loads its checkpoint.
    pub fn new(id: TaskId, spec: Arc<PipelineSpec>, source: S, sink: K, store: C) -> Self {
        let output_topics = spec
            .output_topics()
            .into_iter()
            .map(Arc::from)
            .collect::<Vec<Arc<str>>>();
        let dead_letter = spec.dead_letter.as_deref().map(Arc::from);
        Self {
            tag: id.to_string(),
            id,
            chain: Chain::new(&spec),
            checkpoint_interval: Duration::from_millis(spec.checkpoint_interval_ms),
            spec,
            source,
            sink,
            store,
            output_topics,
            dead_letter,
            partitions: HashMap::new(),
            tables: BTreeMap::new(),
            position: 0,
            watermark: None,
            replay: HashMap::new(),
            origin: Origin { offset: 0, seq: 0 },
            pending: Vec::new(),
            last_checkpoint: Instant::now(),
            stats: TaskStats::default(),
            started: false,
        }
    }

    /// Who this task is.
    pub fn id(&self) -> &TaskId {
        &self.id
    }

    /// Current counters.
    pub fn stats(&self) -> TaskStats {
        let mut stats = self.stats.clone();
        stats.position = self.position;
        stats.watermark = self.watermark;
        stats.steps = self.chain.stats();
        stats
    }

    /// Whether outputs written before a restart are still being skipped.
    pub fn replaying(&self) -> bool {
        !self.replay.is_empty()
    }

    /// Runs until an I/O error, which it returns (then restart the task: it resumes
    /// from its checkpoint). `on_step` sees the task after every step.
    pub async fn run(&mut self, mut on_step: impl FnMut(&Self, StepReport)) -> TaskError {
        loop {
            match self.step().await {
                Ok(report) => on_step(self, report),
                Err(error) => return error,
            }
        }
    }

    /// Loads the checkpoint (or starts afresh and saves a first one), and finds the
    /// outputs written after it. Called by the first [`Task::step`].
    ///
    /// # Errors
    /// [`TaskError`] when the store, source or sink fails.
    pub async fn start(&mut self) -> Result<(), TaskError> {
        for topic in self.output_topics.clone() {
            let count = self.sink.partitions(&topic).await?;
            self.partitions.insert(topic, count.max(1));
        }
        let checkpoint = match self.store.load().await? {
            Some(bytes) => Some(
                serde_json::from_slice::<Checkpoint>(&bytes)
                    .map_err(|e| TaskError::Checkpoint(e.to_string()))?,
            ),
            None => None,
        };
        match checkpoint.filter(|c| c.task == self.tag) {
            Some(checkpoint) => {
                if checkpoint.version != CHECKPOINT_VERSION {
                    return Err(TaskError::Checkpoint(format!(
                        "version {} (this broker reads {CHECKPOINT_VERSION})",
                        checkpoint.version
                    )));
                }
                self.chain
                    .restore(checkpoint.state)
                    .map_err(|e| TaskError::Checkpoint(e.to_string()))?;
                self.position = checkpoint.position;
                self.watermark = checkpoint.watermark;
                self.tables = checkpoint.tables;
                for (topic, ends) in &checkpoint.outputs {
                    let topic: Arc<str> = Arc::from(topic.as_str());
                    for (partition, &from) in ends.iter().enumerate() {
                        let partition = i32::try_from(partition).unwrap_or(i32::MAX);
                        if let Some(origin) = self
                            .sink
                            .last_origin(&topic, partition, from, &self.tag)
                            .await?
                        {
                            self.replay.insert((topic.clone(), partition), origin);
                        }
                    }
                }
            }
            None => {
                self.position = self.source.start_offset(self.spec.start).await?;
                for table in self.spec.tables() {
                    self.tables.insert(table, Vec::new());
                }
                self.started = true;
                self.save_checkpoint().await?;
            }
        }
        self.started = true;
        Ok(())
    }

    /// Reads once (waiting a while when there is nothing), processes and writes what it
    /// read, and checkpoints when the interval has passed. The next read waits for this
    /// step's outputs to be written, so a slow output slows the task rather than growing
    /// memory.
    ///
    /// Not cancel-safe: a task whose step was dropped midway must be dropped too and a
    /// new one started, which resumes from the checkpoint (as after a crash).
    ///
    /// # Errors
    /// [`TaskError`] when reading, writing or checkpointing fails.
    pub async fn step(&mut self) -> Result<StepReport, TaskError> {
        if !self.started {
            self.start().await?;
        }
        let until_checkpoint = self
            .checkpoint_interval
            .saturating_sub(self.last_checkpoint.elapsed())
            .max(Duration::from_millis(1));
        let batch = match self
            .source
            .read(self.position, READ_BYTES, until_checkpoint)
            .await
        {
            Ok(batch) => batch,
            Err(SourceError::OutOfRange { log_start }) => {
                if log_start > self.position {
                    self.stats.skipped_by_retention = self
                        .stats
                        .skipped_by_retention
                        .saturating_add((log_start - self.position).unsigned_abs());
                    self.position = log_start;
                }
                ReadBatch {
                    records: Vec::new(),
                    next_offset: self.position,
                    end_offset: self.stats.end_offset,
                }
            }
            Err(SourceError::Io(e)) => return Err(e.into()),
        };
        let started = Instant::now();
        let mut records = 0;
        for record in batch.records {
            if record.offset < self.position {
                continue;
            }
            self.position = record.offset + 1;
            self.process(record);
            records += 1;
        }
        self.position = self.position.max(batch.next_offset);
        self.stats.end_offset = batch.end_offset.max(self.position);
        let position = self.position;
        self.replay.retain(|_, origin| origin.offset >= position);
        if !self.pending.is_empty() {
            let pending = std::mem::take(&mut self.pending);
            self.sink.write(pending).await?;
        }
        let latency = started.elapsed();
        let checkpointed =
            self.last_checkpoint.elapsed() >= self.checkpoint_interval && self.replay.is_empty();
        if checkpointed {
            self.save_checkpoint().await?;
        }
        Ok(StepReport {
            records,
            latency,
            checkpointed,
        })
    }

    /// Makes the outputs durable, catches up with the tables, and saves a checkpoint.
    /// Refused (returns `Ok(false)`) while replayed outputs are still being skipped.
    ///
    /// # Errors
    /// [`TaskError`] when the sink, source or store fails.
    pub async fn checkpoint(&mut self) -> Result<bool, TaskError> {
        if !self.started {
            // Never save over the stored checkpoint with a task that has not loaded it.
            self.start().await?;
        }
        if !self.replay.is_empty() {
            return Ok(false);
        }
        self.save_checkpoint().await?;
        Ok(true)
    }

    /// [`Task::checkpoint`] once the task has started and is not replaying.
    async fn save_checkpoint(&mut self) -> Result<(), TaskError> {
        if !self.pending.is_empty() {
            let pending = std::mem::take(&mut self.pending);
            self.sink.write(pending).await?;
        }
        self.sink.flush().await?;
        let names: Vec<String> = self.tables.keys().cloned().collect();
        for table in names {
            let positions = self.tables.get(&table).cloned().unwrap_or_default();
            let read = self.source.read_table(&table, &positions).await?;
            for (key, value) in read.updates {
                let value = value.map(|v| json_or_string(&v));
                self.chain.on_table_update(&table, &key, value.as_ref());
            }
            self.tables.insert(table, read.positions);
        }
        let mut outputs = BTreeMap::new();
        for topic in &self.output_topics {
            outputs.insert(topic.to_string(), self.sink.end_offsets(topic).await?);
        }
        let checkpoint = Checkpoint {
            version: CHECKPOINT_VERSION,
            task: self.tag.clone(),
            position: self.position,
            watermark: self.watermark,
            outputs,
            tables: self.tables.clone(),
            state: self.chain.snapshot(),
        };
        let bytes = serde_json::to_vec(&checkpoint).map_err(|e| IoError(e.to_string()))?;
        self.stats.checkpoint_bytes = u64::try_from(bytes.len()).unwrap_or(u64::MAX);
        self.store.save(Bytes::from(bytes)).await?;
        self.last_checkpoint = Instant::now();
        self.stats.checkpoints += 1;
        Ok(())
    }

    /// Runs one input record through the chain and queues what comes out.
    fn process(&mut self, input: InputRecord) {
        self.stats.records_in += 1;
        self.origin = Origin {
            offset: input.offset,
            seq: 0,
        };
        let mut outputs = Vec::new();
        match self.ingest(&input) {
            Ok(record) => {
                let event_time = record.event_time;
                if let Err(error) = self.chain.on_record(record, &mut outputs) {
                    let step = error.step.clone();
                    self.dead_letter(&input, Some(&step), &error.error.to_string(), &mut outputs);
                }
                if self.watermark.is_none_or(|w| event_time > w) {
                    self.watermark = Some(event_time);
                    self.chain.on_watermark(event_time, &mut outputs);
                }
            }
            Err(reason) => self.dead_letter(&input, None, &reason, &mut outputs),
        }
        for output in outputs {
            self.queue(output);
        }
    }

    /// The input record as operators see it, or why it cannot be.
    fn ingest(&self, input: &InputRecord) -> Result<Record, String> {
        let value = match self.spec.format {
            Format::Bytes => Payload::Raw(input.value.clone()),
            Format::Json => match &input.value {
                None => Payload::Json(Value::Null),
                Some(bytes) => Payload::Json(
                    serde_json::from_slice(bytes).map_err(|e| format!("value is not JSON: {e}"))?,
                ),
            },
        };
        let mut record = Record {
            key: input.key.clone(),
            value,
            headers: input
                .headers
                .iter()
                .map(|(k, v)| (String::from_utf8_lossy(k).into_owned(), v.clone()))
                .collect(),
            timestamp: input.timestamp,
            event_time: input.timestamp,
        };
        if let EventTime::Field(expr) = &self.spec.time {
            let time = expr.eval(&record).map_err(|e| format!("event time: {e}"))?;
            record.event_time = event_time_ms(&time).ok_or_else(|| {
                format!(
                    "event time `{}` is {time}, not milliseconds since the epoch",
                    expr.source()
                )
            })?;
        }
        Ok(record)
    }

    /// Queues the input record for the dead-letter topic with why it failed.
    fn dead_letter(
        &mut self,
        input: &InputRecord,
        step: Option<&str>,
        reason: &str,
        out: &mut Vec<Output>,
    ) {
        self.stats.dead_letters += 1;
        let Some(topic) = &self.dead_letter else {
            return;
        };
        let mut headers: Vec<(String, Option<Bytes>)> = input
            .headers
            .iter()
            .map(|(k, v)| (String::from_utf8_lossy(k).into_owned(), v.clone()))
            .collect();
        headers.push((
            ERROR_HEADER.to_owned(),
            Some(Bytes::from(reason.to_owned())),
        ));
        if let Some(step) = step {
            headers.push((STEP_HEADER.to_owned(), Some(Bytes::from(step.to_owned()))));
        }
        headers.push((
            SOURCE_HEADER.to_owned(),
            Some(Bytes::from(format!(
                "{}/{}@{}",
                self.id.topic, self.id.partition, input.offset
            ))),
        ));
        out.push(Output {
            topic: topic.clone(),
            record: Record {
                key: input.key.clone(),
                value: Payload::Raw(input.value.clone()),
                headers,
                timestamp: input.timestamp,
                event_time: input.timestamp,
            },
        });
    }

    /// Assigns the output its partition and origin, and queues it unless it was written
    /// before a restart.
    fn queue(&mut self, output: Output) {
        let origin = self.origin;
        self.origin.seq = self.origin.seq.saturating_add(1);
        let count = self.partitions.get(&output.topic).copied().unwrap_or(1);
        let partition = match &output.record.key {
            Some(key) => partition_for_key(key, count),
            None => self.id.partition.rem_euclid(count.max(1)),
        };
        if self
            .replay
            .get(&(output.topic.clone(), partition))
            .is_some_and(|written| origin <= *written)
        {
            self.stats.replayed_skipped += 1;
            return;
        }
        let is_dead_letter = self.dead_letter.as_ref() == Some(&output.topic);
        if !is_dead_letter {
            self.stats.records_out += 1;
        }
        let record = output.record;
        let value = record.value_bytes();
        let mut headers = record.headers;
        headers.push((
            ORIGIN_HEADER.to_owned(),
            Some(Bytes::from(origin_header(&self.tag, origin))),
        ));
        self.pending.push(OutputRecord {
            topic: output.topic,
            partition,
            key: record.key,
            value,
            headers,
            timestamp: record.timestamp,
        });
    }
}

/// Milliseconds from a JSON number (integer, or float truncated).
fn event_time_ms(value: &Value) -> Option<i64> {
    let n = value.as_number()?;
    if let Some(i) = n.as_i64() {
        return Some(i);
    }
    let f = n.as_f64()?;
    // Event times are far inside i64's range; out-of-range floats are refused.
    #[allow(clippy::cast_possible_truncation)]
    (f.is_finite() && f.abs() < 9.0e15).then_some(f as i64)
}

/// A table value as JSON, or as a JSON string when it is not JSON.
fn json_or_string(bytes: &Bytes) -> Value {
    serde_json::from_slice(bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(bytes).into_owned()))
}
