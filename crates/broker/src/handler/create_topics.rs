//! CreateTopics, with Kafka's validation and error codes; `validate_only` checks
//! without creating.

use std::collections::{BTreeMap, HashMap};

use kafka_protocol::messages::create_topics_response::{
    CreatableTopicConfigs, CreatableTopicResult,
};
use kafka_protocol::messages::{CreateTopicsRequest, CreateTopicsResponse};
use sluice_protocol::{ResponseError, kafka_protocol};
use uuid::Uuid;

use super::admin::{self, AdminError};
use super::{RequestContext, str_bytes};
use crate::topic_config::TopicConfig;

/// Brokers a replica can be placed on; one until replication lands.
const BROKER_COUNT: i16 = 1;

fn config_entries(ctx: &RequestContext, config: &TopicConfig) -> Vec<CreatableTopicConfigs> {
    config
        .describe(&ctx.node().config.topic_defaults)
        .into_iter()
        .map(|c| {
            CreatableTopicConfigs::default()
                .with_name(str_bytes(c.name))
                .with_value(Some(str_bytes(c.value)))
                .with_config_source(c.source.code())
        })
        .collect()
}

pub(super) async fn handle(ctx: &RequestContext, req: CreateTopicsRequest) -> CreateTopicsResponse {
    let mut seen: HashMap<String, usize> = HashMap::new();
    for topic in &req.topics {
        *seen.entry(topic.name.0.to_string()).or_default() += 1;
    }
    let mut results = Vec::with_capacity(req.topics.len());
    for topic in req.topics {
        let name = topic.name.0.to_string();
        let result = CreatableTopicResult::default().with_name(topic.name.clone());
        let outcome = if seen.get(&name).copied().unwrap_or(0) > 1 {
            Err(AdminError::new(
                ResponseError::InvalidRequest,
                format!("Create topics request from client contains duplicated topic {name}"),
            ))
        } else {
            create_one(ctx, &name, &topic, req.validate_only).await
        };
        results.push(match outcome {
            Ok((id, partitions, config)) => result
                .with_topic_id(id)
                .with_num_partitions(partitions)
                .with_replication_factor(1)
                .with_configs(Some(config_entries(ctx, &config))),
            Err(e) => result
                .with_error_code(e.code.code())
                .with_error_message(Some(str_bytes(e.message)))
                .with_num_partitions(-1)
                .with_replication_factor(-1),
        });
    }
    CreateTopicsResponse::default().with_topics(results)
}

async fn create_one(
    ctx: &RequestContext,
    name: &str,
    topic: &kafka_protocol::messages::create_topics_request::CreatableTopic,
    validate_only: bool,
) -> Result<(Uuid, i32, TopicConfig), AdminError> {
    admin::validate_topic_name(name)?;
    let partitions = if !topic.assignments.is_empty() {
        if topic.num_partitions != -1 || topic.replication_factor != -1 {
            return Err(AdminError::new(
                ResponseError::InvalidRequest,
                "Both numPartitions or replicationFactor and replicasAssignments were set. Both cannot be used at the same time.",
            ));
        }
        let node_id = ctx.node().config.node_id;
        for assignment in &topic.assignments {
            if assignment.broker_ids.iter().any(|b| b.0 != node_id)
                || assignment.broker_ids.is_empty()
            {
                return Err(AdminError::new(
                    ResponseError::InvalidReplicaAssignment,
                    format!(
                        "Invalid replica assignment for partition {}",
                        assignment.partition_index
                    ),
                ));
            }
        }
        i32::try_from(topic.assignments.len()).unwrap_or(i32::MAX)
    } else {
        match topic.num_partitions {
            -1 => ctx.node().config.num_partitions,
            n if n > 0 => n,
            _ => {
                return Err(AdminError::new(
                    ResponseError::InvalidPartitions,
                    "Number of partitions was set to an invalid non-positive value.",
                ));
            }
        }
    };
    match topic.replication_factor {
        -1 | 1 => {}
        rf if rf <= 0 => {
            return Err(AdminError::new(
                ResponseError::InvalidReplicationFactor,
                "Replication factor must be larger than 0, or -1 to use the default value.",
            ));
        }
        rf => {
            return Err(AdminError::new(
                ResponseError::InvalidReplicationFactor,
                format!(
                    "Unable to replicate the partition {rf} time(s): The target replication factor of {rf} cannot be reached because only {BROKER_COUNT} broker(s) are registered."
                ),
            ));
        }
    }
    let mut configs = BTreeMap::new();
    for config in &topic.configs {
        let Some(value) = &config.value else {
            return Err(AdminError::new(
                ResponseError::InvalidConfig,
                format!(
                    "Null value not supported for topic configs: {}",
                    config.name.as_str()
                ),
            ));
        };
        configs.insert(config.name.to_string(), value.to_string());
    }
    let plan = admin::plan_topic(ctx, name, partitions, configs)?;
    if validate_only {
        return Ok((Uuid::nil(), plan.partitions, plan.config));
    }
    let created = admin::create_topic(ctx, plan).await?;
    Ok((created.id, partitions, created.config.clone()))
}
