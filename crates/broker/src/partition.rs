//! A partition as its owning shard holds it: the log plus the shared view other shards
//! read.

use std::path::Path;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use sluice_protocol::record::{self, BATCH_HEADER_LEN, TimestampType};
use sluice_storage::{AppendError, Log, LogConfig, ReadError, ReadSlice, SyncError};

use tracing::{info, warn};

use crate::catalog::{PartitionShared, Topic};
use crate::producer_state::{Decision, ProducerStates};
use crate::topic_config::TopicConfig;

/// A validated batch on its way to the log.
#[derive(Debug, Clone)]
pub(crate) struct ValidBatch {
    /// The batch as the producer sent it.
    pub(crate) bytes: Bytes,
    /// Largest record timestamp in it.
    pub(crate) max_timestamp: i64,
    /// Its header as validation parsed it (before any recompression, which keeps the
    /// producer fields and record count this is read for).
    pub(crate) header: record::BatchHeader,
}

/// Result of appending one produce request's batches to a partition.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Appended {
    pub(crate) base_offset: i64,
    /// The broker's clock stamped into the batches under LogAppendTime, else -1.
    pub(crate) log_append_time_ms: i64,
    pub(crate) log_start_offset: i64,
}

/// Leader epoch of every partition on a single node.
pub(crate) const LEADER_EPOCH: i32 = 0;

pub(crate) struct Partition {
    pub(crate) topic: Arc<str>,
    pub(crate) index: i32,
    pub(crate) shared: Arc<PartitionShared>,
    pub(crate) config: TopicConfig,
    log: Log,
    producers: ProducerStates,
    /// Group-commit state (see `flush`).
    pub(crate) flusher: std::rc::Rc<crate::flush::Flusher>,
    /// A compaction runs off the shard thread for this partition.
    pub(crate) cleaning: bool,
    /// Records appended since the last fsync started, for `flush.messages`.
    unflushed_records: i64,
    /// When the oldest unsynced append happened, for `flush.ms`.
    unflushed_since_ms: Option<i64>,
}

/// Why an append did not happen.
#[derive(Debug, thiserror::Error)]
pub(crate) enum AppendFailure {
    /// The log could not take the batch.
    #[error(transparent)]
    Storage(#[from] AppendError),
    /// Producer state refused the batch (epoch or sequence).
    #[error("batch refused: {0}")]
    Rejected(sluice_protocol::ResponseError),
}

/// Bytes read at a time when rebuilding producer state at open.
const REBUILD_READ_BYTES: usize = 4 * 1024 * 1024;

/// Producer state from the batches of the active segment. Producers whose last batches
/// are only in older segments start unknown, and are accepted as new.
fn rebuild_producer_states(log: &Log) -> Result<ProducerStates, ReadError> {
    let mut states = ProducerStates::default();
    let mut offset = log
        .segment_base_offsets()
        .last()
        .unwrap_or(log.log_start_offset())
        .max(log.log_start_offset());
    while offset < log.log_end_offset() {
        let slice = log.read(offset, REBUILD_READ_BYTES, true)?;
        if slice.bytes.is_empty() {
            break;
        }
        for batch in record::split_batches(&slice.bytes) {
            let Ok(header) = batch.and_then(|b| {
                record::BatchHeader::parse(b)
                    .map_err(|_| record::BatchError::UnsupportedMagic { magic: -1 })
            }) else {
                break;
            };
            states.record(&header, header.base_offset);
        }
        offset = slice.next_offset;
    }
    Ok(states)
}

pub(crate) fn log_config(config: &TopicConfig) -> LogConfig {
    LogConfig {
        segment_bytes: config.segment_bytes,
        index_interval_bytes: config.index_interval_bytes,
        segment_index_bytes: config.segment_index_bytes,
    }
}

impl Partition {
    pub(crate) fn open(
        topic: &Topic,
        index: i32,
        shared: Arc<PartitionShared>,
        dir: &Path,
    ) -> Result<Self, sluice_storage::Error> {
        let log = Log::open(dir, log_config(&topic.config))?;
        let producers = rebuild_producer_states(&log)?;
        shared.publish(log.log_start_offset(), log.log_end_offset());
        Ok(Self {
            topic: topic.name.clone(),
            index,
            shared,
            config: topic.config.clone(),
            log,
            producers,
            flusher: std::rc::Rc::default(),
            cleaning: false,
            unflushed_records: 0,
            unflushed_since_ms: None,
        })
    }

    /// Appends validated batches in order; offsets are assigned by the log. A batch an
    /// idempotent producer already wrote is answered with its original offset.
    pub(crate) fn append(
        &mut self,
        batches: &[ValidBatch],
        now_ms: i64,
    ) -> Result<Appended, AppendFailure> {
        let log_append_time = self.config.timestamp_type == TimestampType::LogAppendTime;
        let mut base_offset = None;
        for batch in batches {
            match self.producers.check(&batch.header) {
                Decision::Append => {}
                Decision::Duplicate {
                    base_offset: original,
                } => {
                    base_offset.get_or_insert(original);
                    continue;
                }
                Decision::Reject(error) => return Err(AppendFailure::Rejected(error)),
            }
            let info = if log_append_time {
                // The append time changes CRC-covered bytes: rewrite a copy.
                let mut bytes = BytesMut::from(&batch.bytes[..]);
                record::set_partition_leader_epoch(&mut bytes, LEADER_EPOCH);
                record::set_log_append_time(&mut bytes, now_ms);
                self.log.append(&mut bytes, now_ms)?
            } else {
                // Only the base offset and leader epoch change, both outside the CRC:
                // patch a copy of the header and write the records from the request.
                let (head, tail) = batch
                    .bytes
                    .split_at(BATCH_HEADER_LEN.min(batch.bytes.len()));
                let mut head = head.to_vec();
                record::set_partition_leader_epoch(&mut head, LEADER_EPOCH);
                self.log
                    .append_parts(&mut head, tail, batch.max_timestamp)?
            };
            self.producers.record(&batch.header, info.base_offset);
            self.unflushed_records = self
                .unflushed_records
                .saturating_add(i64::from(batch.header.record_count));
            self.unflushed_since_ms.get_or_insert(now_ms);
            base_offset.get_or_insert(info.base_offset);
        }
        self.shared
            .publish(self.log.log_start_offset(), self.log.log_end_offset());
        Ok(Appended {
            base_offset: base_offset.unwrap_or(self.log.log_end_offset()),
            log_append_time_ms: if log_append_time { now_ms } else { -1 },
            log_start_offset: self.log.log_start_offset(),
        })
    }

    pub(crate) fn read(
        &self,
        offset: i64,
        max_bytes: usize,
        min_one_batch: bool,
    ) -> Result<ReadSlice, ReadError> {
        self.log.read(offset, max_bytes, min_one_batch)
    }

    /// Applies a changed topic config to the live partition.
    pub(crate) fn set_config(&mut self, config: TopicConfig) {
        if let Err(error) = self.log.set_config(log_config(&config)) {
            warn!(topic = %self.topic, partition = self.index, %error, "segment settings not applied");
        }
        self.config = config;
    }

    /// Moves the log start offset to `offset` (DeleteRecords); returns the new one.
    pub(crate) fn delete_records(
        &mut self,
        offset: i64,
    ) -> Result<i64, sluice_storage::DeleteRecordsError> {
        let start = self.log.delete_records(offset)?;
        self.shared
            .publish(self.log.log_start_offset(), self.log.log_end_offset());
        Ok(start)
    }

    /// `segment.ms` rolls and, with `cleanup.policy=delete`, `retention.ms` and
    /// `retention.bytes`: removes whole old segments and moves the log start offset.
    pub(crate) fn enforce_retention(&mut self, now_ms: i64) {
        if let Err(error) = self.log.roll_if_due(now_ms, self.config.segment_ms) {
            warn!(topic = %self.topic, partition = self.index, %error, "segment.ms roll failed");
        }
        if !self.config.cleanup_delete {
            return;
        }
        match self.log.enforce_retention(
            now_ms,
            self.config.retention_ms,
            self.config.retention_bytes,
        ) {
            Ok(outcome) if outcome.segments_deleted > 0 => {
                info!(
                    topic = %self.topic,
                    partition = self.index,
                    segments = outcome.segments_deleted,
                    bytes = outcome.bytes_deleted,
                    log_start_offset = outcome.log_start_offset,
                    "retention deleted segments"
                );
                self.shared
                    .publish(self.log.log_start_offset(), self.log.log_end_offset());
            }
            Ok(_) => {}
            Err(error) => {
                warn!(topic = %self.topic, partition = self.index, %error, "retention failed");
            }
        }
    }

    /// A compaction plan when `cleanup.policy` has `compact`, no cleaning runs, and the
    /// dirty share of the log reached `min.cleanable.dirty.ratio`.
    pub(crate) fn compaction_due(&self, now_ms: i64) -> Option<sluice_storage::CleanPlan> {
        if !self.config.cleanup_compact || self.cleaning {
            return None;
        }
        let plan = self
            .log
            .cleanable(now_ms, self.config.min_compaction_lag_ms)?;
        (plan.dirty_ratio() >= self.config.min_cleanable_dirty_ratio).then_some(plan)
    }

    /// Records an fsync as done (called by the flusher).
    pub(crate) fn mark_synced(&mut self, handle: &sluice_storage::SyncHandle) {
        self.log.mark_synced(handle);
        if self.log.synced_offset() >= self.log.log_end_offset() {
            self.unflushed_records = 0;
            self.unflushed_since_ms = None;
        }
    }

    /// Whether `flush.messages` or `flush.ms` asks for an fsync now, or a rolled
    /// segment waits for one (synced in the background, as Kafka does after a roll).
    pub(crate) fn flush_due(&self, now_ms: i64) -> bool {
        self.log.has_unsynced_sealed()
            || self.unflushed_records >= self.config.flush_messages
            || self
                .unflushed_since_ms
                .is_some_and(|since| now_ms.saturating_sub(since) >= self.config.flush_ms)
    }

    /// Whether an acks=all produce waits for an fsync: the Redpanda default for a
    /// single replica, unless `write.caching` is on for the topic.
    pub(crate) fn fsync_before_ack(&self) -> bool {
        !self.config.write_caching
    }

    pub(crate) fn log(&self) -> &Log {
        &self.log
    }

    pub(crate) fn log_mut(&mut self) -> &mut Log {
        &mut self.log
    }

    pub(crate) fn sync(&mut self) -> Result<(), SyncError> {
        self.log.sync()
    }

    pub(crate) fn close(self) -> Result<(), SyncError> {
        self.log.close()
    }
}
