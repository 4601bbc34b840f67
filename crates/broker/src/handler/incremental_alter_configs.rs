//! IncrementalAlterConfigs (KIP-339): SET, DELETE, APPEND and SUBTRACT on a topic's
//! configs (APPEND and SUBTRACT on list configs, cleanup.policy, only); SET and DELETE
//! of the cluster-wide topic defaults (`log.retention.ms`, ...) on the broker resource,
//! persisted in the meta store and applied to every topic that does not override them.

use std::collections::HashSet;

use kafka_protocol::messages::incremental_alter_configs_request::AlterableConfig;
use kafka_protocol::messages::incremental_alter_configs_response::AlterConfigsResourceResponse;
use kafka_protocol::messages::{IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse};
use sluice_protocol::{ResponseError, kafka_protocol};

use super::admin::{self, AdminError};
use super::alter_configs::non_topic_resource;
use super::describe_configs::{RESOURCE_BROKER, RESOURCE_TOPIC};
use super::{RequestContext, str_bytes};
use crate::topic_config::{TopicDefaults, is_list_config, validate_config};

/// Broker configs that exist but are fixed at startup (the node config file's).
const READ_ONLY_BROKER_CONFIGS: &[&str] = &[
    "node.id",
    "broker.id",
    "num.partitions",
    "auto.create.topics.enable",
    "socket.request.max.bytes",
    "log.dirs",
];

/// The new dynamic defaults (by topic config name) after `ops`.
fn apply_broker_ops(
    ctx: &RequestContext,
    resource_name: &str,
    ops: &[AlterableConfig],
) -> Result<std::collections::BTreeMap<String, String>, AdminError> {
    let node = ctx.node();
    // "" is Kafka's cluster-wide default; this node's id is accepted as the same thing
    // while a cluster has one node.
    if !resource_name.is_empty() && resource_name != node.config.node_id.to_string() {
        return Err(AdminError::new(
            ResponseError::InvalidRequest,
            format!("Unknown broker {resource_name}: use \"\" (cluster default) or this node's id"),
        ));
    }
    let mut seen = HashSet::new();
    if !ops.iter().all(|op| seen.insert(op.name.as_str())) {
        return Err(AdminError::new(
            ResponseError::InvalidRequest,
            "Error due to duplicate config keys",
        ));
    }
    let mut values = node.config.topic_defaults.dynamic_snapshot();
    for op in ops {
        let broker_name = op.name.as_str();
        let Some(name) = TopicDefaults::topic_name_of(broker_name) else {
            if READ_ONLY_BROKER_CONFIGS.contains(&broker_name) {
                return Err(AdminError::new(
                    ResponseError::InvalidRequest,
                    format!("Cannot update these configs dynamically: {broker_name}"),
                ));
            }
            return Err(invalid_config(format!(
                "Unknown broker config: {broker_name}"
            )));
        };
        match op.config_operation {
            SET => {
                let value = op.value.as_ref().map(|v| v.to_string()).ok_or_else(|| {
                    AdminError::new(
                        ResponseError::InvalidRequest,
                        format!("Null value not supported for : {broker_name}"),
                    )
                })?;
                validate_config(name, &value).map_err(|e| invalid_config(e.to_string()))?;
                values.insert(name.to_owned(), value);
            }
            DELETE => {
                values.remove(name);
            }
            other => {
                return Err(AdminError::new(
                    ResponseError::InvalidRequest,
                    format!("Config operation {other} is not supported for broker configs"),
                ));
            }
        }
    }
    Ok(values)
}

/// Persists and installs the new cluster-wide defaults, then re-resolves every topic
/// against them (their own overrides still win).
async fn alter_cluster_defaults(
    ctx: &RequestContext,
    values: std::collections::BTreeMap<String, String>,
    validate_only: bool,
) -> Result<(), AdminError> {
    if validate_only {
        return Ok(());
    }
    let node = ctx.node().clone();
    {
        let _guard = node.admin_lock.lock().await;
        node.meta
            .store_cluster_defaults(&values)
            .map_err(|e| AdminError::new(ResponseError::KafkaStorageError, e.to_string()))?;
        node.config
            .topic_defaults
            .replace_dynamic(values)
            .map_err(|e| invalid_config(e.to_string()))?;
    }
    let topics = node.catalog().topics();
    for topic in topics {
        admin::alter_topic_config(ctx, &topic.name, topic.config.overrides().clone(), false)
            .await?;
    }
    Ok(())
}

const SET: i8 = 0;
const DELETE: i8 = 1;
const APPEND: i8 = 2;
const SUBTRACT: i8 = 3;

fn invalid_config(message: String) -> AdminError {
    AdminError::new(ResponseError::InvalidConfig, message)
}

/// Applies the operations to the topic's overrides and returns the new overrides.
fn apply_ops(
    ctx: &RequestContext,
    topic: &str,
    ops: &[AlterableConfig],
) -> Result<std::collections::BTreeMap<String, String>, AdminError> {
    let node = ctx.node();
    let current = node.topic(topic).ok_or_else(|| {
        AdminError::new(
            ResponseError::UnknownTopicOrPartition,
            format!("Topic {topic} does not exist."),
        )
    })?;
    let mut seen = HashSet::new();
    if !ops.iter().all(|op| seen.insert(op.name.as_str())) {
        return Err(AdminError::new(
            ResponseError::InvalidRequest,
            "Error due to duplicate config keys",
        ));
    }
    let effective: std::collections::HashMap<&str, String> = current
        .config
        .describe(&node.config.topic_defaults)
        .into_iter()
        .map(|c| (c.name, c.value))
        .collect();
    let mut overrides = current.config.overrides().clone();
    for op in ops {
        let name = op.name.to_string();
        let value = op.value.as_ref().map(|v| v.to_string());
        match op.config_operation {
            SET => {
                let value = value.ok_or_else(|| {
                    AdminError::new(
                        ResponseError::InvalidRequest,
                        format!("Null value not supported for : {name}"),
                    )
                })?;
                validate_config(&name, &value).map_err(|e| invalid_config(e.to_string()))?;
                overrides.insert(name, value);
            }
            DELETE => {
                validate_config(
                    &name,
                    effective.get(name.as_str()).map_or("", String::as_str),
                )
                .map_err(|e| invalid_config(e.to_string()))?;
                overrides.remove(&name);
            }
            APPEND | SUBTRACT => {
                if !is_list_config(&name) {
                    let verb = if op.config_operation == APPEND {
                        "append"
                    } else {
                        "subtract"
                    };
                    return Err(invalid_config(format!(
                        "Config value {verb} is not allowed for config key: {name}"
                    )));
                }
                let base = overrides
                    .get(&name)
                    .cloned()
                    .or_else(|| effective.get(name.as_str()).cloned())
                    .unwrap_or_default();
                let mut items: Vec<String> = base
                    .split(',')
                    .map(str::trim)
                    .filter(|i| !i.is_empty())
                    .map(str::to_owned)
                    .collect();
                let given = value.unwrap_or_default();
                let given = given.split(',').map(str::trim).filter(|i| !i.is_empty());
                if op.config_operation == APPEND {
                    for item in given {
                        if !items.iter().any(|i| i == item) {
                            items.push(item.to_owned());
                        }
                    }
                } else {
                    let remove: Vec<&str> = given.collect();
                    items.retain(|i| !remove.contains(&i.as_str()));
                }
                let joined = items.join(",");
                validate_config(&name, &joined).map_err(|e| invalid_config(e.to_string()))?;
                overrides.insert(name, joined);
            }
            other => {
                return Err(AdminError::new(
                    ResponseError::InvalidRequest,
                    format!("Unknown config operation {other}"),
                ));
            }
        }
    }
    Ok(overrides)
}

pub(super) async fn handle(
    ctx: &RequestContext,
    req: IncrementalAlterConfigsRequest,
) -> IncrementalAlterConfigsResponse {
    let mut responses = Vec::with_capacity(req.resources.len());
    for resource in req.resources {
        let name = resource.resource_name.to_string();
        let outcome = match resource.resource_type {
            RESOURCE_TOPIC => match apply_ops(ctx, &name, &resource.configs) {
                Ok(overrides) => {
                    admin::alter_topic_config(ctx, &name, overrides, req.validate_only).await
                }
                Err(e) => Err(e),
            },
            RESOURCE_BROKER => match apply_broker_ops(ctx, &name, &resource.configs) {
                Ok(values) => alter_cluster_defaults(ctx, values, req.validate_only).await,
                Err(e) => Err(e),
            },
            other => Err(non_topic_resource(other)),
        };
        let response = AlterConfigsResourceResponse::default()
            .with_resource_type(resource.resource_type)
            .with_resource_name(resource.resource_name);
        responses.push(match outcome {
            Ok(()) => response,
            Err(e) => response
                .with_error_code(e.code.code())
                .with_error_message(Some(str_bytes(e.message))),
        });
    }
    IncrementalAlterConfigsResponse::default().with_responses(responses)
}
