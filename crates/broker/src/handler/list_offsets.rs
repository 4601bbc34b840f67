//! ListOffsets: earliest (-2), latest (-1), max timestamp (-3) and offsets by timestamp.

use bytes::Bytes;
use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::{ListOffsetsRequest, ListOffsetsResponse};
use sluice_protocol::record::{self, BatchHeader, TimestampType};
use sluice_protocol::{ResponseError, kafka_protocol};

use super::RequestContext;
use crate::error_code;
use crate::partition::Partition;

const LATEST: i64 = -1;
const EARLIEST: i64 = -2;
const MAX_TIMESTAMP: i64 = -3;
const EARLIEST_LOCAL: i64 = -4;
const LATEST_TIERED: i64 = -5;

/// Decompressed size a lookup may inflate one batch to.
const MAX_LOOKUP_BYTES: usize = 64 * 1024 * 1024;

pub(super) async fn handle(ctx: &RequestContext, req: ListOffsetsRequest) -> ListOffsetsResponse {
    let node = ctx.node().clone();
    let mut topics = Vec::with_capacity(req.topics.len());
    for topic in req.topics {
        let resolved = node.topic(topic.name.0.as_str());
        let mut partitions = Vec::with_capacity(topic.partitions.len());
        for p in &topic.partitions {
            let response =
                ListOffsetsPartitionResponse::default().with_partition_index(p.partition_index);
            let shared = resolved
                .as_ref()
                .and_then(|t| t.partition(p.partition_index));
            let (Some(topic_meta), Some(shared)) = (&resolved, shared) else {
                partitions.push(
                    response
                        .with_error_code(ResponseError::UnknownTopicOrPartition.code())
                        .with_timestamp(-1)
                        .with_offset(-1),
                );
                continue;
            };
            let answer = match p.timestamp {
                LATEST | LATEST_TIERED => Ok((-1, shared.high_watermark())),
                EARLIEST | EARLIEST_LOCAL => Ok((-1, shared.log_start_offset())),
                target => {
                    let name = topic_meta.name.clone();
                    let index = p.partition_index;
                    node.on_shard(&ctx.shard, shared.shard, move |s| async move {
                        let Some(partition) = s.partition(&name, index) else {
                            return Err(ResponseError::NotLeaderOrFollower);
                        };
                        let partition = partition.borrow();
                        lookup(&partition, target)
                    })
                    .await
                    .unwrap_or(Err(ResponseError::NotLeaderOrFollower))
                }
            };
            partitions.push(match answer {
                Ok((timestamp, offset)) => response
                    .with_timestamp(timestamp)
                    .with_offset(offset)
                    .with_leader_epoch(0),
                Err(error) => response
                    .with_error_code(error.code())
                    .with_timestamp(-1)
                    .with_offset(-1),
            });
        }
        topics.push(
            ListOffsetsTopicResponse::default()
                .with_name(topic.name)
                .with_partitions(partitions),
        );
    }
    ListOffsetsResponse::default().with_topics(topics)
}

/// Finds (timestamp, offset) for a timestamp query on the owning shard.
fn lookup(partition: &Partition, target: i64) -> Result<(i64, i64), ResponseError> {
    let log = partition.log();
    if target == MAX_TIMESTAMP {
        let found = log
            .max_timestamp_batch()
            .map_err(|e| error_code::read_error(&e))?;
        return Ok(match found {
            Some(batch) => first_record_at_or_after(&batch.bytes, batch.max_timestamp, true)
                .unwrap_or((-1, -1)),
            None => (-1, -1),
        });
    }
    if target < 0 {
        return Err(ResponseError::UnsupportedVersion);
    }
    let found = log
        .offset_for_timestamp(target)
        .map_err(|e| error_code::read_error(&e))?;
    Ok(match found {
        Some(batch) => first_record_at_or_after(&batch.bytes, target, false).unwrap_or((-1, -1)),
        None => (-1, -1),
    })
}

/// The first record of `batch` whose timestamp is at least `target` (or, with `exact`,
/// equal to it): (timestamp, offset).
fn first_record_at_or_after(batch: &Bytes, target: i64, exact: bool) -> Option<(i64, i64)> {
    let header = BatchHeader::parse(batch).ok()?;
    if header.timestamp_type() == TimestampType::LogAppendTime {
        return Some((header.max_timestamp, header.base_offset));
    }
    let records = record::decode_records(batch, MAX_LOOKUP_BYTES).ok()?;
    records.iter().find_map(|r| {
        let ts = r.timestamp(&header);
        let hit = if exact { ts == target } else { ts >= target };
        hit.then(|| (ts, r.offset(&header)))
    })
}
