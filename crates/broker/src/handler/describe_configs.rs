//! DescribeConfigs for topics (overrides, broker defaults and Kafka defaults, with
//! sources and synonyms) and for this broker.

use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult, DescribeConfigsSynonym,
};
use kafka_protocol::messages::{DescribeConfigsRequest, DescribeConfigsResponse};
use sluice_protocol::{ResponseError, kafka_protocol};

use super::{RequestContext, str_bytes};
use crate::topic_config::{ConfigSource, ConfigType, DescribedConfig};

/// Kafka's ConfigResource types.
pub(super) const RESOURCE_TOPIC: i8 = 2;
pub(super) const RESOURCE_BROKER: i8 = 4;

/// Broker settings that are not topic defaults, as the broker resource reports them.
fn node_configs(ctx: &RequestContext) -> Vec<DescribedConfig> {
    let config = &ctx.node().config;
    let fixed = |name: &'static str, value: String, config_type: ConfigType, doc: &'static str| {
        DescribedConfig {
            name,
            value: value.clone(),
            source: ConfigSource::Broker,
            config_type,
            doc,
            synonyms: vec![(name, value, ConfigSource::Broker)],
        }
    };
    vec![
        fixed(
            "node.id",
            config.node_id.to_string(),
            ConfigType::Int,
            "This node's id.",
        ),
        fixed(
            "broker.id",
            config.node_id.to_string(),
            ConfigType::Int,
            "This node's id.",
        ),
        fixed(
            "num.partitions",
            config.num_partitions.to_string(),
            ConfigType::Int,
            "Partitions of an auto-created topic.",
        ),
        fixed(
            "auto.create.topics.enable",
            config.auto_create_topics_enable.to_string(),
            ConfigType::String,
            "Create unknown topics on Metadata requests.",
        ),
        fixed(
            "socket.request.max.bytes",
            config.socket_request_max_bytes.to_string(),
            ConfigType::Int,
            "Largest request accepted.",
        ),
        fixed(
            "log.dirs",
            config.data_dir.display().to_string(),
            ConfigType::String,
            "Data directory.",
        ),
    ]
}

pub(super) fn handle(ctx: &RequestContext, req: DescribeConfigsRequest) -> DescribeConfigsResponse {
    let node = ctx.node();
    let results = req
        .resources
        .into_iter()
        .map(|resource| {
            let result = DescribeConfigsResult::default()
                .with_resource_type(resource.resource_type)
                .with_resource_name(resource.resource_name.clone());
            let configs = match resource.resource_type {
                RESOURCE_TOPIC => match node.topic(resource.resource_name.as_str()) {
                    Some(topic) => Ok(topic.config.describe(&node.config.topic_defaults)),
                    None => Err((
                        ResponseError::UnknownTopicOrPartition,
                        format!("Topic {} does not exist.", resource.resource_name.as_str()),
                    )),
                },
                RESOURCE_BROKER => {
                    let name = resource.resource_name.as_str();
                    if name.is_empty() || name == node.config.node_id.to_string() {
                        let mut all = node_configs(ctx);
                        all.extend(node.config.topic_defaults.describe_broker());
                        Ok(all)
                    } else {
                        Err((
                            ResponseError::InvalidRequest,
                            format!("Unexpected broker id, expected {} or empty string, but received {name}", node.config.node_id),
                        ))
                    }
                }
                other => Err((
                    ResponseError::InvalidRequest,
                    format!("Unsupported resource type {other}"),
                )),
            };
            match configs {
                Ok(configs) => {
                    let wanted = resource.configuration_keys.as_ref();
                    let configs = configs
                        .into_iter()
                        .filter(|c| wanted.is_none_or(|keys| keys.iter().any(|k| k.as_str() == c.name)))
                        .map(|c| entry(c, req.include_synonyms, req.include_documentation))
                        .collect();
                    result.with_configs(configs)
                }
                Err((error, message)) => result
                    .with_error_code(error.code())
                    .with_error_message(Some(str_bytes(message))),
            }
        })
        .collect();
    DescribeConfigsResponse::default().with_results(results)
}

fn entry(
    config: DescribedConfig,
    synonyms: bool,
    documentation: bool,
) -> DescribeConfigsResourceResult {
    DescribeConfigsResourceResult::default()
        .with_name(str_bytes(config.name))
        .with_value(Some(str_bytes(config.value)))
        .with_read_only(false)
        .with_config_source(config.source.code())
        .with_is_sensitive(false)
        .with_config_type(config.config_type.code())
        .with_documentation(documentation.then(|| str_bytes(config.doc)))
        .with_synonyms(if synonyms {
            config
                .synonyms
                .into_iter()
                .map(|(name, value, source)| {
                    DescribeConfigsSynonym::default()
                        .with_name(str_bytes(name))
                        .with_value(Some(str_bytes(value)))
                        .with_source(source.code())
                })
                .collect()
        } else {
            Vec::new()
        })
}
