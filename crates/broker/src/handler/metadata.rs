//! Metadata: brokers (this node, at its advertised Kafka address), cluster id,
//! controller, and topics with their partitions; auto-creates unknown topics as Kafka
//! does when `auto.create.topics.enable` is on and the client allows it.

use std::sync::Arc;

use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{BrokerId, MetadataRequest, MetadataResponse, TopicName};
use sluice_protocol::{ResponseError, kafka_protocol};

use super::admin::{self, AdminError};
use super::{RequestContext, str_bytes};
use crate::catalog::Topic;

fn describe(topic: &Topic, node_id: i32) -> MetadataResponseTopic {
    let partitions = (0..topic.partitions.len())
        .map(|p| {
            MetadataResponsePartition::default()
                .with_partition_index(i32::try_from(p).unwrap_or(i32::MAX))
                .with_leader_id(BrokerId(node_id))
                .with_leader_epoch(0)
                .with_replica_nodes(vec![BrokerId(node_id)])
                .with_isr_nodes(vec![BrokerId(node_id)])
        })
        .collect();
    MetadataResponseTopic::default()
        .with_name(Some(TopicName(str_bytes(topic.name.to_string()))))
        .with_topic_id(topic.id)
        .with_is_internal(topic.name.starts_with("__"))
        .with_partitions(partitions)
}

fn failed(name: Option<TopicName>, id: uuid::Uuid, error: ResponseError) -> MetadataResponseTopic {
    MetadataResponseTopic::default()
        .with_name(name)
        .with_topic_id(id)
        .with_error_code(error.code())
}

pub(super) async fn handle(ctx: &RequestContext, req: MetadataRequest) -> MetadataResponse {
    let node = ctx.node();
    let config = &node.config;
    let node_id = config.node_id;
    let broker = MetadataResponseBroker::default()
        .with_node_id(BrokerId(node_id))
        .with_host(str_bytes(config.kafka_addr.ip().to_string()))
        .with_port(i32::from(config.kafka_addr.port()));

    // v0 asks for every topic with an empty list; v1+ with null.
    let requested = match req.topics {
        Some(topics) if !(ctx.api_version == 0 && topics.is_empty()) => Some(topics),
        _ => None,
    };
    let topics = match requested {
        None => node
            .catalog()
            .topics()
            .iter()
            .map(|t| describe(t, node_id))
            .collect(),
        Some(requested) => {
            // v0-v3 always allow auto-creation; v4+ say so per request.
            let allow_create = (ctx.api_version < 4 || req.allow_auto_topic_creation)
                && config.auto_create_topics_enable;
            let mut out = Vec::with_capacity(requested.len());
            for wanted in requested {
                out.push(match wanted.name {
                    Some(name) => describe_or_create(ctx, name, allow_create).await,
                    None => match node.catalog().get_by_id(&wanted.topic_id) {
                        Some(topic) => describe(topic, node_id),
                        None => failed(None, wanted.topic_id, ResponseError::UnknownTopicId),
                    },
                });
            }
            out
        }
    };
    MetadataResponse::default()
        .with_brokers(vec![broker])
        .with_cluster_id(Some(str_bytes(node.cluster_id.clone())))
        .with_controller_id(BrokerId(node_id))
        .with_topics(topics)
}

async fn describe_or_create(
    ctx: &RequestContext,
    name: TopicName,
    allow_create: bool,
) -> MetadataResponseTopic {
    let node = ctx.node();
    let node_id = node.config.node_id;
    if let Some(topic) = node.topic(name.0.as_str()) {
        return describe(&topic, node_id);
    }
    if let Err(e) = admin::validate_topic_name(name.0.as_str()) {
        return failed(Some(name), uuid::Uuid::nil(), e.code);
    }
    if !allow_create {
        return failed(
            Some(name),
            uuid::Uuid::nil(),
            ResponseError::UnknownTopicOrPartition,
        );
    }
    let created: Result<Arc<Topic>, AdminError> = match admin::plan_topic(
        ctx,
        name.0.as_str(),
        node.config.num_partitions,
        Default::default(),
    ) {
        Ok(plan) => admin::create_topic(ctx, plan).await,
        Err(e) => Err(e),
    };
    match created {
        Ok(topic) => describe(&topic, node_id),
        // Created by a concurrent request in the meantime.
        Err(e) if e.code == ResponseError::TopicAlreadyExists => {
            match node.topic(name.0.as_str()) {
                Some(topic) => describe(&topic, node_id),
                None => failed(
                    Some(name),
                    uuid::Uuid::nil(),
                    ResponseError::LeaderNotAvailable,
                ),
            }
        }
        Err(e) => failed(Some(name), uuid::Uuid::nil(), e.code),
    }
}
