//! The processor's traits on this node: a task reads its input partition from the local
//! log, writes outputs through the local append path (on each output partition's
//! shard), and keeps checkpoints in the compacted changelog topic.

use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use sluice_processor::spec::StartFrom;
use sluice_processor::task::{
    CheckpointStore, InputRecord, IoError, ORIGIN_HEADER, Origin, OutputRecord, ReadBatch, Sink,
    Source, SourceError, TableRead, parse_origin,
};
use sluice_protocol::partitioner::partition_for_key;
use sluice_protocol::record::{
    BatchHeader, Compression, RecordBatchBuilder, decode_records, split_batches,
};
use tokio::sync::Notify;

use crate::partition::ValidBatch;
use crate::shard::{NodeShared, PartitionRef, Shard};

/// The compacted topic holding every task's latest checkpoint, keyed by task.
pub(crate) const CHANGELOG_TOPIC: &str = "__sluice_transform_state";

/// Largest uncompressed batch decoded (a guard against a corrupt header).
const MAX_BATCH: usize = 64 << 20;

/// Bytes read per step when scanning a partition (tables, origins, checkpoints).
const SCAN_BYTES: usize = 1 << 20;

/// Records per output batch at most (bytes are bounded by the builder).
const BATCH_RECORDS: usize = 4096;

/// Bytes of records per output batch at most.
const BATCH_BYTES: usize = 1 << 20;

fn io(e: impl std::fmt::Display) -> IoError {
    IoError(e.to_string())
}

/// The durable records of `bytes` (whole batches) at `from` and below `below`, and the
/// offset after the last batch wholly below `below`.
fn decode_slice(bytes: &Bytes, from: i64, below: i64) -> Result<(Vec<InputRecord>, i64), IoError> {
    let mut records = Vec::new();
    let mut next = from;
    for batch in split_batches(bytes) {
        let batch = bytes.slice_ref(batch.map_err(io)?);
        let header = BatchHeader::parse(&batch).map_err(io)?;
        if header.last_offset() >= below {
            break;
        }
        next = next.max(header.last_offset() + 1);
        if header.is_control() || header.last_offset() < from {
            continue;
        }
        for record in decode_records(&batch, MAX_BATCH).map_err(io)? {
            let offset = record.offset(&header);
            if offset < from {
                continue;
            }
            records.push(InputRecord {
                offset,
                timestamp: record.timestamp(&header),
                key: record.key,
                value: record.value,
                headers: record.headers,
            });
        }
    }
    Ok((records, next))
}

/// Reads the partition `topic`/`index` of the shard that owns it, from `from` up to its
/// durable end, calling `each` with every record.
async fn scan_partition(
    node: &Arc<NodeShared>,
    here: &Rc<Shard>,
    topic: &str,
    index: i32,
    from: i64,
) -> Result<(Vec<InputRecord>, i64), IoError> {
    let owner = node
        .topic(topic)
        .and_then(|t| t.partition(index).map(|p| p.shard))
        .ok_or_else(|| IoError(format!("no partition {topic}/{index}")))?;
    let topic = topic.to_owned();
    node.on_shard(here, owner, move |shard| async move {
        let partition = shard
            .partition(&topic, index)
            .ok_or_else(|| IoError(format!("partition {topic}/{index} is not open")))?;
        let mut at = from.max(partition.borrow().log().log_start_offset());
        let mut out = Vec::new();
        loop {
            let (slice, end) = {
                let p = partition.borrow();
                let end = p.log().log_end_offset();
                if at >= end {
                    break;
                }
                (p.read(at, SCAN_BYTES, true).map_err(io)?, end)
            };
            if slice.bytes.is_empty() {
                break;
            }
            let (records, next) = decode_slice(&slice.bytes, at, end)?;
            out.extend(records);
            if next <= at {
                break;
            }
            at = next;
        }
        Ok((out, at))
    })
    .await
    .map_err(io)?
}

/// Appends `batches` to a partition this shard owns; returns the end offset after them.
fn append_here(partition: &PartitionRef, batches: Vec<Bytes>, now_ms: i64) -> Result<i64, IoError> {
    let mut valid = Vec::with_capacity(batches.len());
    let mut bytes_in = 0;
    for bytes in batches {
        let header = BatchHeader::parse(&bytes).map_err(io)?;
        bytes_in += bytes.len();
        valid.push(ValidBatch {
            max_timestamp: header.max_timestamp,
            header,
            bytes,
        });
    }
    let (end, flush_due) = {
        let mut p = partition.borrow_mut();
        p.append(&valid, now_ms).map_err(io)?;
        p.shared.add_bytes_in(bytes_in);
        (p.log().log_end_offset(), p.flush_due(now_ms))
    };
    if flush_due {
        crate::flush::request_sync(partition);
    }
    Ok(end)
}

/// Record batches of `records`, in order, each within the size limits.
fn build_batches<'a>(
    records: impl Iterator<Item = &'a OutputRecord>,
) -> Result<Vec<Bytes>, IoError> {
    let mut batches = Vec::new();
    let mut builder = RecordBatchBuilder::new(Compression::None);
    for record in records {
        if builder.len() >= BATCH_RECORDS || builder.records_bytes() >= BATCH_BYTES {
            batches.push(builder.build());
            builder = RecordBatchBuilder::new(Compression::None);
        }
        let headers: Vec<(&str, Option<&[u8]>)> = record
            .headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_deref()))
            .collect();
        builder
            .try_push(
                record.key.as_deref(),
                record.value.as_deref(),
                &headers,
                record.timestamp,
            )
            .map_err(io)?;
    }
    if !builder.is_empty() {
        batches.push(builder.build());
    }
    Ok(batches)
}

/// Appends batches to `topic`/`index` on its owner shard; returns the end offset.
async fn append_on_owner(
    node: &Arc<NodeShared>,
    here: &Rc<Shard>,
    topic: &str,
    index: i32,
    batches: Vec<Bytes>,
) -> Result<(PartitionOwner, i64), IoError> {
    let owner = node
        .topic(topic)
        .and_then(|t| t.partition(index).map(|p| p.shard))
        .ok_or_else(|| IoError(format!("no partition {topic}/{index}")))?;
    let name = topic.to_owned();
    let end = node
        .on_shard(here, owner, move |shard| async move {
            let partition = shard
                .partition(&name, index)
                .ok_or_else(|| IoError(format!("partition {name}/{index} is not open")))?;
            append_here(&partition, batches, crate::handler::now_ms())
        })
        .await
        .map_err(io)??;
    Ok((owner, end))
}

/// Waits until `topic`/`index` is durable up to `end`, on its owner shard.
async fn sync_on_owner(
    node: &Arc<NodeShared>,
    here: &Rc<Shard>,
    owner: PartitionOwner,
    topic: &str,
    index: i32,
    end: i64,
) -> Result<(), IoError> {
    let name = topic.to_owned();
    node.on_shard(here, owner, move |shard| async move {
        let partition = shard
            .partition(&name, index)
            .ok_or_else(|| IoError(format!("partition {name}/{index} is not open")))?;
        crate::flush::wait_synced(&partition, end).await.map_err(io)
    })
    .await
    .map_err(io)?
}

/// Shard id owning a partition.
type PartitionOwner = usize;

/// A task's input partition, owned by the task's shard.
pub(crate) struct LocalSource {
    pub(crate) node: Arc<NodeShared>,
    pub(crate) shard: Rc<Shard>,
    pub(crate) topic: Arc<str>,
    pub(crate) partition: i32,
}

impl LocalSource {
    fn input(&self) -> Result<PartitionRef, IoError> {
        self.shard
            .partition(&self.topic, self.partition)
            .ok_or_else(|| {
                IoError(format!(
                    "partition {}/{} is not open here",
                    self.topic, self.partition
                ))
            })
    }
}

impl Source for LocalSource {
    async fn read(
        &mut self,
        from: i64,
        max_bytes: usize,
        wait: Duration,
    ) -> Result<ReadBatch, SourceError> {
        let deadline = tokio::time::Instant::now() + wait;
        let wake = Arc::new(Notify::new());
        loop {
            let partition = self.input()?;
            partition.borrow().shared.register_waiter(&wake);
            let (start, end, synced) = {
                let p = partition.borrow();
                let log = p.log();
                (
                    log.log_start_offset(),
                    log.log_end_offset(),
                    log.synced_offset(),
                )
            };
            if from < start {
                return Err(SourceError::OutOfRange { log_start: start });
            }
            if from < synced {
                let slice = partition.borrow().read(from, max_bytes, true).map_err(io)?;
                let (records, next) = decode_slice(&slice.bytes, from, synced)?;
                return Ok(ReadBatch {
                    records,
                    next_offset: next.max(from),
                    end_offset: synced,
                });
            }
            if from < end {
                // Records not durable yet: a pipeline reads only what a crash cannot
                // take back, so make them durable (one group-commit fsync).
                crate::flush::wait_synced(&partition, end)
                    .await
                    .map_err(io)?;
                continue;
            }
            tokio::select! {
                () = wake.notified() => {}
                () = tokio::time::sleep_until(deadline) => {
                    return Ok(ReadBatch { records: Vec::new(), next_offset: from, end_offset: synced });
                }
            }
        }
    }

    async fn start_offset(&mut self, from: StartFrom) -> Result<i64, IoError> {
        let partition = self.input()?;
        let p = partition.borrow();
        Ok(match from {
            StartFrom::Earliest => p.log().log_start_offset(),
            StartFrom::Latest => p.log().log_end_offset(),
        })
    }

    async fn read_table(&mut self, topic: &str, positions: &[i64]) -> Result<TableRead, IoError> {
        let count = self
            .node
            .topic(topic)
            .map(|t| t.partitions.len())
            .ok_or_else(|| IoError(format!("table topic {topic} does not exist")))?;
        let mut read = TableRead::default();
        for index in 0..count {
            let index = i32::try_from(index).unwrap_or(i32::MAX);
            let from = usize::try_from(index)
                .ok()
                .and_then(|i| positions.get(i))
                .copied()
                .unwrap_or(0);
            let (records, next) =
                scan_partition(&self.node, &self.shard, topic, index, from).await?;
            read.updates.extend(
                records
                    .into_iter()
                    .filter_map(|r| r.key.map(|key| (key, r.value))),
            );
            read.positions.push(next.max(from));
        }
        Ok(read)
    }
}

/// Output topics, written through the local append path.
pub(crate) struct LocalSink {
    pub(crate) node: Arc<NodeShared>,
    pub(crate) shard: Rc<Shard>,
    /// End offset after this task's last append, per partition, until flushed.
    pub(crate) unsynced: HashMap<(Arc<str>, i32), (PartitionOwner, i64)>,
}

impl Sink for LocalSink {
    async fn partitions(&mut self, topic: &str) -> Result<i32, IoError> {
        let topic = self
            .node
            .topic(topic)
            .ok_or_else(|| IoError(format!("output topic {topic} does not exist")))?;
        Ok(i32::try_from(topic.partitions.len()).unwrap_or(i32::MAX))
    }

    async fn write(&mut self, records: Vec<OutputRecord>) -> Result<(), IoError> {
        // Group by partition, keeping each partition's order.
        let mut order: Vec<(Arc<str>, i32)> = Vec::new();
        let mut by_partition: HashMap<(Arc<str>, i32), Vec<OutputRecord>> = HashMap::new();
        for record in records {
            let key = (record.topic.clone(), record.partition);
            by_partition
                .entry(key.clone())
                .or_insert_with(|| {
                    order.push(key);
                    Vec::new()
                })
                .push(record);
        }
        for key in order {
            let Some(records) = by_partition.remove(&key) else {
                continue;
            };
            let batches = build_batches(records.iter())?;
            let (owner, end) =
                append_on_owner(&self.node, &self.shard, &key.0, key.1, batches).await?;
            self.unsynced.insert(key, (owner, end));
        }
        Ok(())
    }

    async fn flush(&mut self) -> Result<(), IoError> {
        for ((topic, index), (owner, end)) in std::mem::take(&mut self.unsynced) {
            sync_on_owner(&self.node, &self.shard, owner, &topic, index, end).await?;
        }
        Ok(())
    }

    async fn end_offsets(&mut self, topic: &str) -> Result<Vec<i64>, IoError> {
        let topic = self
            .node
            .topic(topic)
            .ok_or_else(|| IoError(format!("output topic {topic} does not exist")))?;
        Ok(topic
            .partitions
            .iter()
            .map(|p| p.high_watermark())
            .collect())
    }

    async fn last_origin(
        &mut self,
        topic: &str,
        partition: i32,
        from: i64,
        task: &str,
    ) -> Result<Option<Origin>, IoError> {
        let (records, _) = scan_partition(&self.node, &self.shard, topic, partition, from).await?;
        Ok(records
            .iter()
            .filter_map(|r| {
                r.headers
                    .iter()
                    .rev()
                    .find(|(k, _)| k.as_ref() == ORIGIN_HEADER.as_bytes())
                    .and_then(|(_, v)| v.as_deref())
                    .and_then(|v| parse_origin(v, task))
            })
            .max())
    }
}

/// A task's checkpoints: records keyed by the task in the changelog topic.
pub(crate) struct ChangelogStore {
    pub(crate) node: Arc<NodeShared>,
    pub(crate) shard: Rc<Shard>,
    pub(crate) key: Bytes,
}

impl ChangelogStore {
    fn partition(&self) -> Result<i32, IoError> {
        let count = self
            .node
            .topic(CHANGELOG_TOPIC)
            .map(|t| t.partitions.len())
            .ok_or_else(|| IoError(format!("{CHANGELOG_TOPIC} does not exist")))?;
        Ok(partition_for_key(
            &self.key,
            i32::try_from(count).unwrap_or(i32::MAX),
        ))
    }
}

impl CheckpointStore for ChangelogStore {
    async fn load(&mut self) -> Result<Option<Bytes>, IoError> {
        let index = self.partition()?;
        let (records, _) =
            scan_partition(&self.node, &self.shard, CHANGELOG_TOPIC, index, 0).await?;
        Ok(records
            .into_iter()
            .rfind(|r| r.key.as_ref() == Some(&self.key))
            .and_then(|r| r.value))
    }

    async fn save(&mut self, checkpoint: Bytes) -> Result<(), IoError> {
        let index = self.partition()?;
        let record = OutputRecord {
            topic: Arc::from(CHANGELOG_TOPIC),
            partition: index,
            key: Some(self.key.clone()),
            value: Some(checkpoint),
            headers: Vec::new(),
            timestamp: crate::handler::now_ms(),
        };
        let batches = build_batches(std::iter::once(&record))?;
        let (owner, end) =
            append_on_owner(&self.node, &self.shard, CHANGELOG_TOPIC, index, batches).await?;
        sync_on_owner(&self.node, &self.shard, owner, CHANGELOG_TOPIC, index, end).await
    }
}

/// Writes a tombstone for each of `keys` (a deleted pipeline's checkpoints).
pub(crate) async fn forget_checkpoints(node: &Arc<NodeShared>, here: &Rc<Shard>, keys: Vec<Bytes>) {
    let Some(topic) = node.topic(CHANGELOG_TOPIC) else {
        return;
    };
    let count = i32::try_from(topic.partitions.len()).unwrap_or(i32::MAX);
    for key in keys {
        let index = partition_for_key(&key, count);
        let record = OutputRecord {
            topic: Arc::from(CHANGELOG_TOPIC),
            partition: index,
            key: Some(key),
            value: None,
            headers: Vec::new(),
            timestamp: crate::handler::now_ms(),
        };
        if let Ok(batches) = build_batches(std::iter::once(&record)) {
            let _ = append_on_owner(node, here, CHANGELOG_TOPIC, index, batches).await;
        }
    }
}

/// Values of the last `count` records (at most) of each partition of `topic`, asked of
/// each owner shard from anywhere.
pub(crate) async fn tail_values(
    node: &Arc<NodeShared>,
    topic: &str,
    count: i64,
) -> Vec<Option<Bytes>> {
    let Some(found) = node.topic(topic) else {
        return Vec::new();
    };
    let mut values = Vec::new();
    for (index, shared) in found.partitions.iter().enumerate() {
        let index = i32::try_from(index).unwrap_or(i32::MAX);
        let name = topic.to_owned();
        let read = node
            .ask_shard(shared.shard, move |shard| async move {
                let partition = shard.partition(&name, index)?;
                let p = partition.borrow();
                let end = p.log().log_end_offset();
                let from = (end - count).max(p.log().log_start_offset());
                if from >= end {
                    return Some(Vec::new());
                }
                let slice = p.read(from, SCAN_BYTES, true).ok()?;
                decode_slice(&slice.bytes, from, end)
                    .ok()
                    .map(|(records, _)| records.into_iter().map(|r| r.value).collect::<Vec<_>>())
            })
            .await;
        if let Ok(Some(read)) = read {
            values.extend(read);
        }
    }
    values
}
