//! Topic creation and deletion, shared by CreateTopics, DeleteTopics and auto-creation.

use std::collections::BTreeMap;
use std::sync::Arc;

use sluice_protocol::ResponseError;
use tracing::{info, warn};
use uuid::Uuid;

use super::RequestContext;
use crate::catalog::{PartitionShared, Topic, owner_shard};
use crate::shard::NodeShared;
use crate::topic_config::TopicConfig;

/// A refused admin operation: the Kafka error and the message to send with it.
#[derive(Debug, Clone)]
pub(crate) struct AdminError {
    pub(crate) code: ResponseError,
    pub(crate) message: String,
}

impl AdminError {
    pub(super) fn new(code: ResponseError, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
}

/// Kafka's topic name rule: 1..=249 characters of `[a-zA-Z0-9._-]`, not `.` or `..`.
pub(super) fn validate_topic_name(name: &str) -> Result<(), AdminError> {
    let invalid = |why: String| AdminError::new(ResponseError::InvalidTopicException, why);
    if name.is_empty() {
        return Err(invalid(
            "Topic name is illegal, it can't be empty".to_owned(),
        ));
    }
    if name == "." || name == ".." {
        return Err(invalid("Topic name cannot be \".\" or \"..\"".to_owned()));
    }
    if name.len() > 249 {
        return Err(invalid(format!(
            "Topic name is illegal, it can't be longer than 249 characters, topic name: {name}"
        )));
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-')
    {
        return Err(invalid(format!(
            "Topic name {name} is illegal, it contains a character other than ASCII alphanumerics, '.', '_' and '-'"
        )));
    }
    Ok(())
}

/// What a validated CreateTopics entry would create.
pub(crate) struct TopicPlan {
    pub(crate) name: String,
    pub(crate) partitions: i32,
    pub(crate) config: TopicConfig,
}

/// Partitions one shard may own (Redpanda bounds this too: each partition costs open
/// files, mapped indexes and memory). A request for more fails with INVALID_PARTITIONS
/// instead of exhausting the node.
const PARTITIONS_PER_SHARD: usize = 1000;

/// Refuses `additional` new partitions when the node would pass its budget.
fn check_partition_budget(ctx: &RequestContext, additional: i32) -> Result<(), AdminError> {
    let node = ctx.node();
    let limit = PARTITIONS_PER_SHARD.saturating_mul(node.shard_count());
    let existing: usize = node
        .catalog()
        .topics()
        .iter()
        .map(|t| t.partitions.len())
        .sum();
    let wanted = usize::try_from(additional).unwrap_or(usize::MAX);
    if existing.saturating_add(wanted) > limit {
        return Err(AdminError::new(
            ResponseError::InvalidPartitions,
            format!(
                "{additional} more partitions would exceed this node's limit of {limit} ({PARTITIONS_PER_SHARD} per shard; {existing} exist)"
            ),
        ));
    }
    Ok(())
}

pub(super) fn plan_topic(
    ctx: &RequestContext,
    name: &str,
    partitions: i32,
    configs: BTreeMap<String, String>,
) -> Result<TopicPlan, AdminError> {
    validate_topic_name(name)?;
    let node = ctx.node();
    if node.topic(name).is_some() {
        return Err(AdminError::new(
            ResponseError::TopicAlreadyExists,
            format!("Topic '{name}' already exists."),
        ));
    }
    check_partition_budget(ctx, partitions)?;
    let config = TopicConfig::new(configs, &node.config.topic_defaults)
        .map_err(|e| AdminError::new(ResponseError::InvalidConfig, e.to_string()))?;
    Ok(TopicPlan {
        name: name.to_owned(),
        partitions,
        config,
    })
}

/// Creates a topic: persisted first, then its partitions opened on their shards, then
/// published in the catalog.
pub(super) async fn create_topic(
    ctx: &RequestContext,
    plan: TopicPlan,
) -> Result<Arc<Topic>, AdminError> {
    create_topic_on(ctx.node(), plan).await
}

/// [`create_topic`] from anywhere (a shard or the admin thread).
pub(crate) async fn create_topic_on(
    node: &Arc<NodeShared>,
    plan: TopicPlan,
) -> Result<Arc<Topic>, AdminError> {
    let node = node.clone();
    let _guard = node.admin_lock.lock().await;
    if let Some(existing) = node.topic(&plan.name) {
        return Err(AdminError::new(
            ResponseError::TopicAlreadyExists,
            format!("Topic '{}' already exists.", existing.name),
        ));
    }
    let shards = node.shard_count();
    let topic = Arc::new(Topic {
        name: Arc::from(plan.name.as_str()),
        id: Uuid::new_v4(),
        config: plan.config,
        partitions: (0..plan.partitions)
            .map(|p| Arc::new(PartitionShared::new(owner_shard(&plan.name, p, shards))))
            .collect(),
    });
    let storage_error = |e: &dyn std::fmt::Display| {
        warn!(topic = %topic.name, error = %e, "topic creation failed");
        AdminError::new(ResponseError::KafkaStorageError, e.to_string())
    };
    node.meta
        .store_topic(&topic.name, topic.id, plan.partitions, &topic.config)
        .map_err(|e| storage_error(&e))?;
    let owners: Vec<usize> = topic.partitions.iter().map(|p| p.shard).collect();
    open_on_shards(&node, &topic, owners)
        .await
        .map_err(|e| storage_error(&e.message))?;
    node.catalog_mut().insert(topic.clone());
    info!(topic = %topic.name, partitions = plan.partitions, "topic created");
    Ok(topic)
}

/// Opens the partitions of `topic` not opened yet on each of `shards` (duplicates are
/// fine).
async fn open_on_shards(
    node: &Arc<NodeShared>,
    topic: &Arc<Topic>,
    mut shards: Vec<usize>,
) -> Result<(), AdminError> {
    shards.sort_unstable();
    shards.dedup();
    for shard in shards {
        let for_shard = topic.clone();
        let opened = node
            .ask_shard(shard, move |s| async move {
                s.open_partitions_of(&for_shard).map_err(|e| e.to_string())
            })
            .await
            .unwrap_or_else(|gone| Err(gone.to_string()));
        opened.map_err(|e| AdminError::new(ResponseError::KafkaStorageError, e))?;
    }
    Ok(())
}

/// Deletes a topic: unpublished and forgotten first, then its logs removed.
pub(super) async fn delete_topic(
    ctx: &RequestContext,
    name: &str,
) -> Result<Arc<Topic>, AdminError> {
    let node = ctx.node().clone();
    let _guard = node.admin_lock.lock().await;
    let topic = node.catalog_mut().remove(name).ok_or_else(|| {
        AdminError::new(
            ResponseError::UnknownTopicOrPartition,
            "This server does not host this topic-partition.",
        )
    })?;
    if let Err(e) = node.meta.remove_topic(name) {
        warn!(topic = %name, error = %e, "cannot remove topic metadata");
    }
    for (index, partition) in topic.partitions.iter().enumerate() {
        let topic_name = topic.name.clone();
        let index = i32::try_from(index).unwrap_or(i32::MAX);
        let dir = node.partition_dir(&topic.name, index);
        let removed = node
            .on_shard(&ctx.shard, partition.shard, move |s| async move {
                drop(s.remove_partition(&topic_name, index));
                std::fs::remove_dir_all(&dir)
            })
            .await;
        if let Ok(Err(e)) = removed {
            warn!(topic = %name, partition = index, error = %e, "cannot remove partition directory");
        }
        // Wake fetches parked on the partition so they notice it is gone.
        partition.publish(partition.log_start_offset(), partition.high_watermark());
    }
    info!(topic = %name, "topic deleted");
    Ok(topic)
}

/// Replaces a topic's config overrides: validated, persisted, then applied to the live
/// partitions on their shards and published in the catalog. With `validate_only`,
/// only the validation runs.
pub(super) async fn alter_topic_config(
    ctx: &RequestContext,
    name: &str,
    overrides: BTreeMap<String, String>,
    validate_only: bool,
) -> Result<(), AdminError> {
    let node = ctx.node().clone();
    let _guard = node.admin_lock.lock().await;
    let Some(current) = node.topic(name) else {
        return Err(AdminError::new(
            ResponseError::UnknownTopicOrPartition,
            format!("Topic {name} does not exist."),
        ));
    };
    let config = TopicConfig::new(overrides, &node.config.topic_defaults)
        .map_err(|e| AdminError::new(ResponseError::InvalidConfig, e.to_string()))?;
    if validate_only {
        return Ok(());
    }
    let partitions = i32::try_from(current.partitions.len()).unwrap_or(i32::MAX);
    node.meta
        .store_topic(&current.name, current.id, partitions, &config)
        .map_err(|e| AdminError::new(ResponseError::KafkaStorageError, e.to_string()))?;
    let updated = Arc::new(Topic {
        name: current.name.clone(),
        id: current.id,
        config,
        partitions: current.partitions.clone(),
    });
    apply_to_shards(ctx, &updated).await;
    node.catalog_mut().insert(updated.clone());
    info!(topic = %name, overrides = ?updated.config.overrides(), "topic config changed");
    Ok(())
}

/// Hands a topic's new config to every shard that owns one of its partitions.
async fn apply_to_shards(ctx: &RequestContext, topic: &Arc<Topic>) {
    let node = ctx.node();
    let mut shards: Vec<usize> = topic.partitions.iter().map(|p| p.shard).collect();
    shards.sort_unstable();
    shards.dedup();
    for shard in shards {
        let for_shard = topic.clone();
        let applied = node
            .on_shard(&ctx.shard, shard, move |s| async move {
                s.apply_topic_config(&for_shard)
            })
            .await;
        if applied.is_err() {
            warn!(topic = %topic.name, shard, "shard gone while applying a topic config");
        }
    }
}

/// Adds partitions to a topic (CreatePartitions): persisted, opened on their shards,
/// then published. Existing partitions keep their shard, so nothing moves.
pub(super) async fn add_partitions(
    ctx: &RequestContext,
    name: &str,
    count: i32,
    validate_only: bool,
) -> Result<(), AdminError> {
    let node = ctx.node().clone();
    let _guard = node.admin_lock.lock().await;
    let Some(current) = node.topic(name) else {
        return Err(AdminError::new(
            ResponseError::UnknownTopicOrPartition,
            "This server does not host this topic-partition.",
        ));
    };
    let existing = i32::try_from(current.partitions.len()).unwrap_or(i32::MAX);
    if count < existing {
        return Err(AdminError::new(
            ResponseError::InvalidPartitions,
            format!(
                "Topic currently has {existing} partitions, which is higher than the requested {count}."
            ),
        ));
    }
    if count == existing {
        return Err(AdminError::new(
            ResponseError::InvalidPartitions,
            format!("Topic already has {existing} partitions."),
        ));
    }
    check_partition_budget(ctx, count - existing)?;
    if validate_only {
        return Ok(());
    }
    let shards = node.shard_count();
    let mut partitions = current.partitions.clone();
    partitions.extend(
        (existing..count).map(|p| Arc::new(PartitionShared::new(owner_shard(name, p, shards)))),
    );
    let updated = Arc::new(Topic {
        name: current.name.clone(),
        id: current.id,
        config: current.config.clone(),
        partitions,
    });
    node.meta
        .store_topic(&updated.name, updated.id, count, &updated.config)
        .map_err(|e| AdminError::new(ResponseError::KafkaStorageError, e.to_string()))?;
    let new_owners = updated
        .partitions
        .iter()
        .skip(usize::try_from(existing).unwrap_or(0))
        .map(|p| p.shard)
        .collect();
    open_on_shards(ctx.node(), &updated, new_owners).await?;
    node.catalog_mut().insert(updated);
    info!(topic = %name, from = existing, to = count, "partitions added");
    Ok(())
}
