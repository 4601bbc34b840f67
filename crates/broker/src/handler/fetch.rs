//! Fetch: whole stored batches, byte for byte, with Kafka's long poll. A fetch that
//! finds less than `min_bytes` parks on the partitions it reads and wakes as soon as an
//! append publishes a new high watermark (or at `max_wait_ms`), never polling.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
use kafka_protocol::messages::{FetchRequest, FetchResponse, TopicName};
use sluice_protocol::{ResponseError, kafka_protocol};
use tokio::sync::Notify;

use super::RequestContext;
use crate::catalog::{PartitionShared, Topic};
use crate::error_code;

/// One requested partition, resolved against the catalog.
struct Wanted {
    topic: Option<Arc<Topic>>,
    unknown_error: ResponseError,
    partition: i32,
    shared: Option<Arc<PartitionShared>>,
    fetch_offset: i64,
    partition_max_bytes: usize,
}

/// What one partition read produced.
struct Read {
    error: Option<ResponseError>,
    high_watermark: i64,
    log_start_offset: i64,
    records: Option<Bytes>,
}

impl Read {
    fn failed(error: ResponseError, shared: Option<&PartitionShared>) -> Self {
        Self {
            error: Some(error),
            high_watermark: shared.map_or(-1, PartitionShared::high_watermark),
            log_start_offset: shared.map_or(-1, PartitionShared::log_start_offset),
            records: None,
        }
    }

    fn len(&self) -> usize {
        self.records.as_ref().map_or(0, Bytes::len)
    }
}

pub(super) async fn handle(ctx: &RequestContext, req: FetchRequest) -> FetchResponse {
    let node = ctx.node().clone();
    let by_id = ctx.api_version >= 13;
    let mut wanted = Vec::new();
    for topic in &req.topics {
        let resolved = if by_id {
            node.catalog().get_by_id(&topic.topic_id).cloned()
        } else {
            node.topic(topic.topic.0.as_str())
        };
        let unknown_error = if by_id {
            ResponseError::UnknownTopicId
        } else {
            ResponseError::UnknownTopicOrPartition
        };
        for p in &topic.partitions {
            let shared = resolved
                .as_ref()
                .and_then(|t| t.partition(p.partition))
                .cloned();
            wanted.push(Wanted {
                topic: resolved.clone(),
                unknown_error,
                partition: p.partition,
                shared,
                fetch_offset: p.fetch_offset,
                partition_max_bytes: usize::try_from(p.partition_max_bytes).unwrap_or(0),
            });
        }
    }

    let max_bytes = usize::try_from(req.max_bytes).unwrap_or(0);
    let min_bytes = usize::try_from(req.min_bytes).unwrap_or(0);
    let max_wait = Duration::from_millis(u64::try_from(req.max_wait_ms).unwrap_or(0));
    let started = tokio::time::Instant::now();
    let deadline = started + max_wait;
    let wake = Arc::new(Notify::new());
    let reads = loop {
        // Register before reading so an append between the read and the wait is not
        // missed (Notify keeps the permit).
        for w in &wanted {
            if let Some(shared) = &w.shared {
                shared.register_waiter(&wake);
            }
        }
        let reads = read_all(ctx, &wanted, max_bytes).await;
        let total: usize = reads.iter().map(Read::len).sum();
        let any_error = reads.iter().any(|r| r.error.is_some());
        if total >= min_bytes.max(1)
            || any_error
            || tokio::time::Instant::now() >= deadline
            || *node.shutdown.borrow()
        {
            break reads;
        }
        if tokio::time::timeout_at(deadline, wake.notified())
            .await
            .is_err()
        {
            break read_all(ctx, &wanted, max_bytes).await;
        }
    };

    crate::metrics::local(|m| m.fetch_wait.observe_duration(started.elapsed()));
    // Counted once per response: a long poll may read (and discard) more than once.
    for (w, read) in wanted.iter().zip(&reads) {
        if let Some(shared) = &w.shared {
            shared.add_bytes_out(read.len());
        }
    }

    let mut responses: Vec<FetchableTopicResponse> = Vec::new();
    let mut reads = reads.into_iter();
    for topic in req.topics {
        let partitions = topic
            .partitions
            .iter()
            .map(|p| {
                let read = reads
                    .next()
                    .unwrap_or_else(|| Read::failed(ResponseError::UnknownServerError, None));
                PartitionData::default()
                    .with_partition_index(p.partition)
                    .with_error_code(read.error.map_or(0, |e| e.code()))
                    .with_high_watermark(read.high_watermark)
                    .with_last_stable_offset(read.high_watermark)
                    .with_log_start_offset(read.log_start_offset)
                    .with_preferred_read_replica(kafka_protocol::messages::BrokerId(-1))
                    .with_records(Some(read.records.unwrap_or_default()))
            })
            .collect();
        responses.push(
            FetchableTopicResponse::default()
                .with_topic(TopicName(topic.topic.0))
                .with_topic_id(topic.topic_id)
                .with_partitions(partitions),
        );
    }
    FetchResponse::default().with_responses(responses)
}

/// Reads every wanted partition in request order within the response budget.
async fn read_all(ctx: &RequestContext, wanted: &[Wanted], max_bytes: usize) -> Vec<Read> {
    let node = ctx.node();
    let mut budget = max_bytes;
    // KIP-74: the first partition with data may exceed the budget by one batch.
    let mut have_data = false;
    let mut reads = Vec::with_capacity(wanted.len());
    for w in wanted {
        let (Some(topic), Some(shared)) = (&w.topic, &w.shared) else {
            reads.push(Read::failed(w.unknown_error, None));
            continue;
        };
        let high_watermark = shared.high_watermark();
        let log_start_offset = shared.log_start_offset();
        if w.fetch_offset < log_start_offset || w.fetch_offset > high_watermark {
            reads.push(Read::failed(ResponseError::OffsetOutOfRange, Some(shared)));
            continue;
        }
        let limit = w.partition_max_bytes.min(budget);
        // Nothing new, or no room left: answer without visiting the owner shard.
        let first_data = !have_data;
        if w.fetch_offset == high_watermark || (limit == 0 && !first_data) {
            reads.push(Read {
                error: None,
                high_watermark,
                log_start_offset,
                records: None,
            });
            continue;
        }
        let topic_name = topic.name.clone();
        let partition = w.partition;
        let offset = w.fetch_offset;
        let result = node
            .on_shard(&ctx.shard, shared.shard, move |s| async move {
                let Some(partition) = s.partition(&topic_name, partition) else {
                    return Err(ResponseError::NotLeaderOrFollower);
                };
                let partition = partition.borrow();
                partition
                    .read(offset, limit, first_data)
                    .map(|slice| slice.bytes)
                    .map_err(|e| error_code::read_error(&e))
            })
            .await;
        let read = match result {
            Ok(Ok(bytes)) => {
                budget = budget.saturating_sub(bytes.len());
                have_data |= !bytes.is_empty();
                Read {
                    error: None,
                    high_watermark: shared.high_watermark(),
                    log_start_offset: shared.log_start_offset(),
                    records: Some(bytes),
                }
            }
            Ok(Err(error)) => Read::failed(error, Some(shared)),
            Err(_) => Read::failed(ResponseError::NotLeaderOrFollower, Some(shared)),
        };
        reads.push(read);
    }
    reads
}
