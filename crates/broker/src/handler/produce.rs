//! Produce: validate every batch on the shard that read the request (CRC-32C, lengths,
//! record count, compression, timestamps, size), then append on the owning shards, all
//! partitions concurrently, and answer per partition.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use kafka_protocol::messages::produce_response::{
    BatchIndexAndErrorMessage, PartitionProduceResponse, TopicProduceResponse,
};
use kafka_protocol::messages::{ProduceRequest, ProduceResponse, TopicName};
use sluice_protocol::record::{self, BatchError, Compression, ValidationLimits};
use sluice_protocol::{ResponseError, kafka_protocol};
use tracing::warn;

use super::{Reply, RequestContext, now_ms, str_bytes};
use crate::catalog::Topic;
use crate::error_code;
use crate::flush;
use crate::partition::{AppendFailure, Appended, ValidBatch};
use crate::shard::Shard;

/// A partition's produce outcome before it becomes a response entry.
#[derive(Debug)]
enum Outcome {
    Appended(Appended),
    Failed {
        error: ResponseError,
        message: Option<String>,
        record_errors: Vec<(i32, String)>,
    },
}

impl Outcome {
    fn error(error: ResponseError) -> Self {
        Self::Failed {
            error,
            message: None,
            record_errors: Vec::new(),
        }
    }

    fn from_batch_error(e: &BatchError) -> Self {
        let record_errors = e
            .batch_index()
            .and_then(|i| i32::try_from(i).ok())
            .map(|i| vec![(i, e.to_string())])
            .unwrap_or_default();
        Self::Failed {
            error: error_code::batch_error(e),
            message: Some(e.to_string()),
            record_errors,
        }
    }
}

/// One partition's validated batches, addressed to its owner.
struct Append {
    slot: (usize, usize),
    topic: Arc<str>,
    partition: i32,
    batches: Vec<ValidBatch>,
}

fn validate(topic: &Topic, records: Option<&Bytes>, now: i64) -> Result<Vec<ValidBatch>, Outcome> {
    let records = match records {
        Some(r) if !r.is_empty() => r,
        _ => {
            return Err(Outcome::Failed {
                error: ResponseError::InvalidRecord,
                message: Some(
                    "Produce requests must have at least one record batch per partition".to_owned(),
                ),
                record_errors: Vec::new(),
            });
        }
    };
    let config = &topic.config;
    let limits = ValidationLimits {
        max_message_bytes: config.max_message_bytes,
        now_ms: now,
        timestamp_before_max_ms: config.timestamp_before_max_ms,
        timestamp_after_max_ms: config.timestamp_after_max_ms,
        timestamp_type: config.timestamp_type,
        compacted: config.cleanup_compact,
        ..ValidationLimits::kafka_defaults(now)
    };
    let mut batches = Vec::new();
    for batch in record::split_batches(records) {
        let batch = batch.map_err(|e| Outcome::from_batch_error(&e))?;
        let batch = records.slice_ref(batch);
        let summary =
            record::validate_batch(&batch, &limits).map_err(|e| Outcome::from_batch_error(&e))?;
        // compression.type other than `producer`: store in the topic's codec.
        let batch = match config.compression_type.as_deref().and_then(codec_named) {
            Some(codec) => record::recompress(&batch, codec, limits.max_uncompressed_bytes)
                .map_err(|e| Outcome::from_batch_error(&e))?,
            None => batch,
        };
        crate::metrics::local(|m| {
            m.produce_batch_size
                .observe(u64::try_from(batch.len()).unwrap_or(u64::MAX));
        });
        batches.push(ValidBatch {
            bytes: batch,
            max_timestamp: summary.max_timestamp,
            header: summary.header,
        });
    }
    Ok(batches)
}

/// The codec a `compression.type` value names (`producer` is handled by the caller).
fn codec_named(name: &str) -> Option<Compression> {
    Some(match name {
        "uncompressed" => Compression::None,
        "gzip" => Compression::Gzip,
        "snappy" => Compression::Snappy,
        "lz4" => Compression::Lz4,
        "zstd" => Compression::Zstd,
        _ => return None,
    })
}

/// Appends on the owning shard; with acks=all waits for the fsync that covers the
/// appended batches (group commit) unless the topic has `write.caching` on.
async fn append_on_owner(shard: &Shard, appends: Vec<Append>, acks: i16, now: i64) -> Vec<Outcome> {
    let mut outcomes = Vec::with_capacity(appends.len());
    let mut durable = Vec::new();
    for (i, a) in appends.iter().enumerate() {
        let Some(partition) = shard.partition(&a.topic, a.partition) else {
            outcomes.push(Outcome::error(ResponseError::NotLeaderOrFollower));
            continue;
        };
        let appended = partition.borrow_mut().append(&a.batches, now);
        outcomes.push(match appended {
            Ok(appended) => {
                let (wait, flush_due, end) = {
                    let p = partition.borrow();
                    p.shared
                        .add_bytes_in(a.batches.iter().map(|b| b.bytes.len()).sum());
                    (
                        acks == -1 && p.fsync_before_ack(),
                        p.flush_due(now),
                        p.log().log_end_offset(),
                    )
                };
                if wait {
                    durable.push((i, partition, end));
                } else if flush_due {
                    flush::request_sync(&partition);
                }
                Outcome::Appended(appended)
            }
            Err(AppendFailure::Rejected(error)) => Outcome::error(error),
            Err(AppendFailure::Storage(error)) => {
                warn!(topic = %a.topic, partition = a.partition, %error, "append failed");
                Outcome::error(ResponseError::KafkaStorageError)
            }
        });
    }
    for (i, partition, end) in durable {
        if let Err(error) = flush::wait_synced(&partition, end).await {
            warn!(%error, "acks=all produce not acknowledged: fsync failed");
            if let Some(outcome) = outcomes.get_mut(i) {
                *outcome = Outcome::error(ResponseError::KafkaStorageError);
            }
        }
    }
    outcomes
}

pub(super) async fn handle(ctx: &RequestContext, req: ProduceRequest) -> Reply {
    let node = ctx.node().clone();
    let acks = req.acks;
    let now = now_ms();
    let mut outcomes: Vec<Vec<Option<Outcome>>> = Vec::with_capacity(req.topic_data.len());
    let mut by_shard: HashMap<usize, Vec<Append>> = HashMap::new();
    for (t, topic_data) in req.topic_data.iter().enumerate() {
        let topic = if topic_data.name.0.is_empty() && !topic_data.topic_id.is_nil() {
            node.catalog().get_by_id(&topic_data.topic_id).cloned()
        } else {
            node.topic(topic_data.name.0.as_str())
        };
        let mut slots = Vec::with_capacity(topic_data.partition_data.len());
        for (p, data) in topic_data.partition_data.iter().enumerate() {
            let outcome = if !matches!(acks, -1..=1) {
                Some(Outcome::error(ResponseError::InvalidRequiredAcks))
            } else if let Some(topic) = &topic {
                match topic.partition(data.index) {
                    None => Some(Outcome::error(ResponseError::UnknownTopicOrPartition)),
                    Some(shared) => match validate(topic, data.records.as_ref(), now) {
                        Err(outcome) => Some(outcome),
                        Ok(batches) => {
                            by_shard.entry(shared.shard).or_default().push(Append {
                                slot: (t, p),
                                topic: topic.name.clone(),
                                partition: data.index,
                                batches,
                            });
                            None
                        }
                    },
                }
            } else if topic_data.name.0.is_empty() {
                Some(Outcome::error(ResponseError::UnknownTopicId))
            } else {
                Some(Outcome::error(ResponseError::UnknownTopicOrPartition))
            };
            slots.push(outcome);
        }
        outcomes.push(slots);
    }

    // Every owning shard appends its share concurrently.
    let mut pending = Vec::with_capacity(by_shard.len());
    for (shard, appends) in by_shard {
        let node = node.clone();
        let here = ctx.shard.clone();
        pending.push(tokio::task::spawn_local(async move {
            let slots: Vec<_> = appends.iter().map(|a| a.slot).collect();
            let result = node
                .on_shard(&here, shard, move |s| async move {
                    append_on_owner(&s, appends, acks, now).await
                })
                .await;
            match result {
                Ok(results) => slots.into_iter().zip(results).collect::<Vec<_>>(),
                Err(_) => slots
                    .into_iter()
                    .map(|slot| (slot, Outcome::error(ResponseError::NotLeaderOrFollower)))
                    .collect(),
            }
        }));
    }
    for handle in pending {
        if let Ok(results) = handle.await {
            for ((t, p), outcome) in results {
                if let Some(slot) = outcomes.get_mut(t).and_then(|v| v.get_mut(p)) {
                    *slot = Some(outcome);
                }
            }
        }
    }
    if acks == 0 {
        let failed = outcomes
            .iter()
            .flatten()
            .any(|o| !matches!(o, Some(Outcome::Appended(_))));
        return if failed { Reply::Close } else { Reply::Silent };
    }

    let responses = req
        .topic_data
        .into_iter()
        .zip(outcomes)
        .map(|(topic_data, slots)| {
            let partitions = topic_data
                .partition_data
                .iter()
                .zip(slots)
                .map(|(data, outcome)| {
                    let response = PartitionProduceResponse::default().with_index(data.index);
                    match outcome.unwrap_or(Outcome::error(ResponseError::UnknownServerError)) {
                        Outcome::Appended(a) => response
                            .with_base_offset(a.base_offset)
                            .with_log_append_time_ms(a.log_append_time_ms)
                            .with_log_start_offset(a.log_start_offset),
                        Outcome::Failed {
                            error,
                            message,
                            record_errors,
                        } => response
                            .with_error_code(error.code())
                            .with_base_offset(-1)
                            .with_log_append_time_ms(-1)
                            .with_log_start_offset(-1)
                            .with_error_message(message.map(str_bytes))
                            .with_record_errors(
                                record_errors
                                    .into_iter()
                                    .map(|(i, m)| {
                                        BatchIndexAndErrorMessage::default()
                                            .with_batch_index(i)
                                            .with_batch_index_error_message(Some(str_bytes(m)))
                                    })
                                    .collect(),
                            ),
                    }
                })
                .collect();
            TopicProduceResponse::default()
                .with_name(TopicName(topic_data.name.0))
                .with_topic_id(topic_data.topic_id)
                .with_partition_responses(partitions)
        })
        .collect();
    Reply::Respond(Box::new(
        ProduceResponse::default().with_responses(responses).into(),
    ))
}
