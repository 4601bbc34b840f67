//! CreatePartitions: grow a topic, with Kafka's errors for shrinking or equal counts.

use std::collections::HashMap;

use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use kafka_protocol::messages::{CreatePartitionsRequest, CreatePartitionsResponse};
use sluice_protocol::{ResponseError, kafka_protocol};

use super::admin::{self, AdminError};
use super::{RequestContext, str_bytes};

pub(super) async fn handle(
    ctx: &RequestContext,
    req: CreatePartitionsRequest,
) -> CreatePartitionsResponse {
    let mut seen: HashMap<String, usize> = HashMap::new();
    for topic in &req.topics {
        *seen.entry(topic.name.0.to_string()).or_default() += 1;
    }
    let node_id = ctx.node().config.node_id;
    let mut results = Vec::with_capacity(req.topics.len());
    for topic in req.topics {
        let name = topic.name.0.to_string();
        let outcome = if seen.get(&name).copied().unwrap_or(0) > 1 {
            Err(AdminError::new(
                ResponseError::InvalidRequest,
                "Duplicate topic in request.",
            ))
        } else if topic.assignments.as_ref().is_some_and(|a| {
            a.iter()
                .any(|a| a.broker_ids.is_empty() || a.broker_ids.iter().any(|b| b.0 != node_id))
        }) {
            Err(AdminError::new(
                ResponseError::InvalidReplicaAssignment,
                format!(
                    "Unknown broker ids in the assignment; this cluster has only node {node_id}."
                ),
            ))
        } else {
            admin::add_partitions(ctx, &name, topic.count, req.validate_only).await
        };
        let result = CreatePartitionsTopicResult::default().with_name(topic.name);
        results.push(match outcome {
            Ok(()) => result,
            Err(e) => result
                .with_error_code(e.code.code())
                .with_error_message(Some(str_bytes(e.message))),
        });
    }
    CreatePartitionsResponse::default().with_results(results)
}
