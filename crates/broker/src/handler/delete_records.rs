//! DeleteRecords: move a partition's log start offset forward (Kafka's "trim prefix");
//! whole segments below it are removed, fetches below it get OFFSET_OUT_OF_RANGE.

use kafka_protocol::messages::delete_records_response::{
    DeleteRecordsPartitionResult, DeleteRecordsTopicResult,
};
use kafka_protocol::messages::{DeleteRecordsRequest, DeleteRecordsResponse};
use sluice_protocol::{ResponseError, kafka_protocol};
use tracing::warn;

use super::RequestContext;

/// `offset` -1 in a request: delete up to the high watermark.
const HIGH_WATERMARK: i64 = -1;

pub(super) async fn handle(
    ctx: &RequestContext,
    req: DeleteRecordsRequest,
) -> DeleteRecordsResponse {
    let node = ctx.node().clone();
    let mut topics = Vec::with_capacity(req.topics.len());
    for topic in req.topics {
        let resolved = node.topic(topic.name.0.as_str());
        let mut partitions = Vec::with_capacity(topic.partitions.len());
        for p in &topic.partitions {
            let result =
                DeleteRecordsPartitionResult::default().with_partition_index(p.partition_index);
            let shared = resolved
                .as_ref()
                .and_then(|t| t.partition(p.partition_index));
            let (Some(meta), Some(shared)) = (&resolved, shared) else {
                partitions.push(
                    result
                        .with_low_watermark(-1)
                        .with_error_code(ResponseError::UnknownTopicOrPartition.code()),
                );
                continue;
            };
            let high_watermark = shared.high_watermark();
            let target = if p.offset == HIGH_WATERMARK {
                high_watermark
            } else {
                p.offset
            };
            if target < 0 || target > high_watermark {
                partitions.push(
                    result
                        .with_low_watermark(-1)
                        .with_error_code(ResponseError::OffsetOutOfRange.code()),
                );
                continue;
            }
            let name = meta.name.clone();
            let index = p.partition_index;
            let moved = node
                .on_shard(&ctx.shard, shared.shard, move |s| async move {
                    let Some(partition) = s.partition(&name, index) else {
                        return Err(ResponseError::NotLeaderOrFollower);
                    };
                    let moved = partition.borrow_mut().delete_records(target);
                    moved.map_err(|e| {
                        warn!(topic = %name, partition = index, error = %e, "delete records failed");
                        match e {
                            sluice_storage::DeleteRecordsError::OffsetOutOfRange { .. } => {
                                ResponseError::OffsetOutOfRange
                            }
                            _ => ResponseError::KafkaStorageError,
                        }
                    })
                })
                .await
                .unwrap_or(Err(ResponseError::NotLeaderOrFollower));
            partitions.push(match moved {
                Ok(low_watermark) => result.with_low_watermark(low_watermark),
                Err(error) => result.with_low_watermark(-1).with_error_code(error.code()),
            });
        }
        topics.push(
            DeleteRecordsTopicResult::default()
                .with_name(topic.name)
                .with_partitions(partitions),
        );
    }
    DeleteRecordsResponse::default().with_topics(topics)
}
