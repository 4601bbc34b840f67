//! A partition as its owning shard holds it: the log plus the shared view other shards
//! read.

use std::path::Path;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use sluice_protocol::record::{self, TimestampType};
use sluice_storage::{AppendError, Log, LogConfig, OpenError, ReadError, ReadSlice, SyncError};

use crate::catalog::{PartitionShared, Topic};
use crate::topic_config::TopicConfig;

/// A validated batch on its way to the log.
#[derive(Debug, Clone)]
pub(crate) struct ValidBatch {
    /// The batch as the producer sent it.
    pub(crate) bytes: Bytes,
    /// Largest record timestamp in it.
    pub(crate) max_timestamp: i64,
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
    ) -> Result<Self, OpenError> {
        let log = Log::open(dir, log_config(&topic.config))?;
        shared.publish(log.log_start_offset(), log.log_end_offset());
        Ok(Self {
            topic: topic.name.clone(),
            index,
            shared,
            config: topic.config.clone(),
            log,
        })
    }

    /// Appends validated batches in order; offsets are assigned by the log.
    pub(crate) fn append(
        &mut self,
        batches: &[ValidBatch],
        now_ms: i64,
    ) -> Result<Appended, AppendError> {
        let log_append_time = self.config.timestamp_type == TimestampType::LogAppendTime;
        let mut base_offset = None;
        for batch in batches {
            let mut bytes = BytesMut::from(&batch.bytes[..]);
            // The leader epoch, outside the CRC; fixed at 0 until replication has terms.
            record::set_partition_leader_epoch(&mut bytes, LEADER_EPOCH);
            let max_timestamp = if log_append_time {
                record::set_log_append_time(&mut bytes, now_ms);
                now_ms
            } else {
                batch.max_timestamp
            };
            let info = self.log.append(&mut bytes, max_timestamp)?;
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

    pub(crate) fn log(&self) -> &Log {
        &self.log
    }

    pub(crate) fn sync(&mut self) -> Result<(), SyncError> {
        self.log.sync()
    }

    pub(crate) fn close(self) -> Result<(), SyncError> {
        self.log.close()
    }
}
