//! Admin calls beyond topics: configs (DescribeConfigs, IncrementalAlterConfigs),
//! CreatePartitions, DeleteRecords, and the group admin APIs (ListGroups, DescribeGroups,
//! OffsetFetch, OffsetCommit, DeleteGroups). Request versions are capped where the
//! request's shape changes later (OffsetFetch v8 batches groups), so one shape suffices.

use bytes::{Buf, Bytes};
use sluice_protocol::kafka_protocol::messages::{
    ApiKey, CreatePartitionsRequest, DeleteGroupsRequest, DeleteRecordsRequest,
    DescribeConfigsRequest, DescribeGroupsRequest, GroupId, IncrementalAlterConfigsRequest,
    ListGroupsRequest, OffsetCommitRequest, OffsetFetchRequest, RequestKind, ResponseKind,
    TopicName,
    create_partitions_request::CreatePartitionsTopic,
    delete_records_request::{DeleteRecordsPartition, DeleteRecordsTopic},
    describe_configs_request::DescribeConfigsResource,
    incremental_alter_configs_request::{AlterConfigsResource, AlterableConfig},
    offset_commit_request::{OffsetCommitRequestPartition, OffsetCommitRequestTopic},
};

use crate::{Client, ClientError, Result, check, str_bytes};

/// Kafka's ConfigResource type for topics.
pub const RESOURCE_TOPIC: i8 = 2;
/// Kafka's ConfigResource type for brokers.
pub const RESOURCE_BROKER: i8 = 4;

/// One config as DescribeConfigs reports it.
#[derive(Debug, Clone)]
pub struct ConfigEntry {
    /// Config name.
    pub name: String,
    /// Current value (`None` for sensitive or unset).
    pub value: Option<String>,
    /// Where the value comes from (Kafka's ConfigSource name, e.g. `DYNAMIC_TOPIC_CONFIG`).
    pub source: &'static str,
    /// Cannot be altered.
    pub read_only: bool,
    /// Value hidden.
    pub sensitive: bool,
}

/// Kafka's names for DescribeConfigs' config_source.
fn source_name(source: i8) -> &'static str {
    match source {
        1 => "DYNAMIC_TOPIC_CONFIG",
        2 => "DYNAMIC_BROKER_CONFIG",
        3 => "DYNAMIC_DEFAULT_BROKER_CONFIG",
        4 => "STATIC_BROKER_CONFIG",
        5 => "DEFAULT_CONFIG",
        6 => "DYNAMIC_BROKER_LOGGER_CONFIG",
        _ => "UNKNOWN",
    }
}

/// A group as ListGroups reports it.
#[derive(Debug, Clone)]
pub struct ListedGroup {
    /// Group id.
    pub group_id: String,
    /// Protocol type (`consumer` for Kafka consumers).
    pub protocol_type: String,
    /// State (v4+; empty otherwise).
    pub state: String,
}

/// A group member as DescribeGroups reports it.
#[derive(Debug, Clone)]
pub struct GroupMember {
    /// Member id.
    pub member_id: String,
    /// Static instance id, if any.
    pub instance_id: Option<String>,
    /// The member's client id.
    pub client_id: String,
    /// The member's host.
    pub client_host: String,
    /// Assigned partitions decoded from the consumer protocol, `(topic, partitions)`.
    pub assignment: Vec<(String, Vec<i32>)>,
}

/// A group as DescribeGroups reports it.
#[derive(Debug, Clone)]
pub struct DescribedGroup {
    /// Group id.
    pub group_id: String,
    /// State: Empty, Stable, PreparingRebalance, CompletingRebalance, Dead.
    pub state: String,
    /// Protocol type.
    pub protocol_type: String,
    /// Chosen protocol (assignor name for consumers).
    pub protocol: String,
    /// Members.
    pub members: Vec<GroupMember>,
}

/// A committed offset.
#[derive(Debug, Clone)]
pub struct Committed {
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// Committed offset (-1: none).
    pub offset: i64,
}

/// Decodes a consumer-protocol assignment (version, then `[topic [partition]]`, then
/// user data, which is ignored). Malformed bytes give an empty list: the group is
/// described anyway.
pub fn decode_assignment(bytes: &[u8]) -> Vec<(String, Vec<i32>)> {
    fn inner(mut b: &[u8]) -> Option<Vec<(String, Vec<i32>)>> {
        if b.remaining() < 6 {
            return None;
        }
        let _version = b.get_i16();
        let topics = b.get_i32();
        let mut out = Vec::new();
        for _ in 0..topics.max(0) {
            if b.remaining() < 2 {
                return None;
            }
            let len = usize::try_from(b.get_i16()).ok()?;
            if b.remaining() < len {
                return None;
            }
            let name = String::from_utf8_lossy(b.get(..len)?).into_owned();
            b.advance(len);
            if b.remaining() < 4 {
                return None;
            }
            let n = b.get_i32();
            let mut parts = Vec::new();
            for _ in 0..n.max(0) {
                if b.remaining() < 4 {
                    return None;
                }
                parts.push(b.get_i32());
            }
            out.push((name, parts));
        }
        Some(out)
    }
    inner(bytes).unwrap_or_default()
}

/// Encodes a consumer-protocol assignment (version 0, no user data).
pub fn encode_assignment(assignment: &[(String, Vec<i32>)]) -> Bytes {
    let mut out = Vec::new();
    out.extend_from_slice(&0i16.to_be_bytes());
    out.extend_from_slice(
        &i32::try_from(assignment.len())
            .unwrap_or(i32::MAX)
            .to_be_bytes(),
    );
    for (topic, parts) in assignment {
        out.extend_from_slice(&i16::try_from(topic.len()).unwrap_or(i16::MAX).to_be_bytes());
        out.extend_from_slice(topic.as_bytes());
        out.extend_from_slice(&i32::try_from(parts.len()).unwrap_or(i32::MAX).to_be_bytes());
        for p in parts {
            out.extend_from_slice(&p.to_be_bytes());
        }
    }
    Bytes::from(out)
}

impl Client {
    /// DescribeConfigs for one resource (all its configs).
    ///
    /// # Errors
    /// [`ClientError::Kafka`] (UNKNOWN_TOPIC_OR_PARTITION for a missing topic).
    pub async fn describe_configs(
        &mut self,
        resource_type: i8,
        name: &str,
    ) -> Result<Vec<ConfigEntry>> {
        let request = DescribeConfigsRequest::default().with_resources(vec![
            DescribeConfigsResource::default()
                .with_resource_type(resource_type)
                .with_resource_name(str_bytes(name))
                .with_configuration_keys(None),
        ]);
        let ResponseKind::DescribeConfigs(response) = self
            .call_up_to(
                ApiKey::DescribeConfigs,
                4,
                RequestKind::DescribeConfigs(request),
            )
            .await?
        else {
            return Err(ClientError::UnexpectedResponse);
        };
        let result = response
            .results
            .into_iter()
            .next()
            .ok_or(ClientError::UnexpectedResponse)?;
        check(
            result.error_code,
            format!("describe configs of {name}"),
            result.error_message.as_ref(),
        )?;
        Ok(result
            .configs
            .into_iter()
            .map(|c| ConfigEntry {
                name: c.name.to_string(),
                value: c.value.map(|v| v.to_string()),
                source: source_name(c.config_source),
                read_only: c.read_only,
                sensitive: c.is_sensitive,
            })
            .collect())
    }

    /// IncrementalAlterConfigs on one resource: `(name, Some(value))` sets,
    /// `(name, None)` deletes (reverts to the default).
    ///
    /// # Errors
    /// [`ClientError::Kafka`] with the broker's reason (INVALID_CONFIG, ...).
    pub async fn incremental_alter_configs(
        &mut self,
        resource_type: i8,
        name: &str,
        ops: &[(String, Option<String>)],
    ) -> Result<()> {
        let configs = ops
            .iter()
            .map(|(k, v)| {
                AlterableConfig::default()
                    .with_name(str_bytes(k))
                    // 0 SET, 1 DELETE.
                    .with_config_operation(if v.is_some() { 0 } else { 1 })
                    .with_value(v.as_deref().map(str_bytes))
            })
            .collect();
        let request = IncrementalAlterConfigsRequest::default().with_resources(vec![
            AlterConfigsResource::default()
                .with_resource_type(resource_type)
                .with_resource_name(str_bytes(name))
                .with_configs(configs),
        ]);
        let ResponseKind::IncrementalAlterConfigs(response) = self
            .call::<IncrementalAlterConfigsRequest>(
                ApiKey::IncrementalAlterConfigs,
                RequestKind::IncrementalAlterConfigs(request),
            )
            .await?
        else {
            return Err(ClientError::UnexpectedResponse);
        };
        let what = if name.is_empty() { "the cluster" } else { name };
        for r in &response.responses {
            check(
                r.error_code,
                format!("alter configs of {what}"),
                r.error_message.as_ref(),
            )?;
        }
        Ok(())
    }

    /// CreatePartitions: grows `topic` to `count` partitions.
    ///
    /// # Errors
    /// [`ClientError::Kafka`] (INVALID_PARTITIONS when `count` is not larger).
    pub async fn create_partitions(&mut self, topic: &str, count: i32) -> Result<()> {
        let request = CreatePartitionsRequest::default()
            .with_topics(vec![
                CreatePartitionsTopic::default()
                    .with_name(TopicName(str_bytes(topic)))
                    .with_count(count)
                    .with_assignments(None),
            ])
            .with_timeout_ms(30_000);
        let ResponseKind::CreatePartitions(response) = self
            .call::<CreatePartitionsRequest>(
                ApiKey::CreatePartitions,
                RequestKind::CreatePartitions(request),
            )
            .await?
        else {
            return Err(ClientError::UnexpectedResponse);
        };
        for r in &response.results {
            check(
                r.error_code,
                format!("add partitions to {topic}"),
                r.error_message.as_ref(),
            )?;
        }
        Ok(())
    }

    /// DeleteRecords: moves each partition's log start to the offset given
    /// (-1: the high watermark). Returns `(partition, new low watermark)`.
    ///
    /// # Errors
    /// [`ClientError::Kafka`] with the first partition's error.
    pub async fn delete_records(
        &mut self,
        topic: &str,
        offsets: &[(i32, i64)],
    ) -> Result<Vec<(i32, i64)>> {
        let request = DeleteRecordsRequest::default()
            .with_topics(vec![
                DeleteRecordsTopic::default()
                    .with_name(TopicName(str_bytes(topic)))
                    .with_partitions(
                        offsets
                            .iter()
                            .map(|&(p, o)| {
                                DeleteRecordsPartition::default()
                                    .with_partition_index(p)
                                    .with_offset(o)
                            })
                            .collect(),
                    ),
            ])
            .with_timeout_ms(30_000);
        let ResponseKind::DeleteRecords(response) = self
            .call::<DeleteRecordsRequest>(
                ApiKey::DeleteRecords,
                RequestKind::DeleteRecords(request),
            )
            .await?
        else {
            return Err(ClientError::UnexpectedResponse);
        };
        let mut out = Vec::new();
        for t in &response.topics {
            for p in &t.partitions {
                check(
                    p.error_code,
                    format!("trim {topic}-{}", p.partition_index),
                    None,
                )?;
                out.push((p.partition_index, p.low_watermark));
            }
        }
        Ok(out)
    }

    /// ListGroups.
    ///
    /// # Errors
    /// See [`ClientError`].
    pub async fn list_groups(&mut self) -> Result<Vec<ListedGroup>> {
        let ResponseKind::ListGroups(response) = self
            .call_up_to(
                ApiKey::ListGroups,
                4,
                RequestKind::ListGroups(ListGroupsRequest::default()),
            )
            .await?
        else {
            return Err(ClientError::UnexpectedResponse);
        };
        check(response.error_code, "list groups", None)?;
        Ok(response
            .groups
            .into_iter()
            .map(|g| ListedGroup {
                group_id: g.group_id.0.to_string(),
                protocol_type: g.protocol_type.to_string(),
                state: g.group_state.to_string(),
            })
            .collect())
    }

    /// DescribeGroups for one group. A group the coordinator does not know comes back
    /// in state `Dead`.
    ///
    /// # Errors
    /// See [`ClientError`].
    pub async fn describe_group(&mut self, group: &str) -> Result<DescribedGroup> {
        let request = DescribeGroupsRequest::default().with_groups(vec![GroupId(str_bytes(group))]);
        let ResponseKind::DescribeGroups(response) = self
            .call::<DescribeGroupsRequest>(
                ApiKey::DescribeGroups,
                RequestKind::DescribeGroups(request),
            )
            .await?
        else {
            return Err(ClientError::UnexpectedResponse);
        };
        let g = response
            .groups
            .into_iter()
            .next()
            .ok_or(ClientError::UnexpectedResponse)?;
        check(
            g.error_code,
            format!("describe group {group}"),
            g.error_message.as_ref(),
        )?;
        Ok(DescribedGroup {
            group_id: g.group_id.0.to_string(),
            state: g.group_state.to_string(),
            protocol_type: g.protocol_type.to_string(),
            protocol: g.protocol_data.to_string(),
            members: g
                .members
                .into_iter()
                .map(|m| GroupMember {
                    member_id: m.member_id.to_string(),
                    instance_id: m.group_instance_id.map(|i| i.to_string()),
                    client_id: m.client_id.to_string(),
                    client_host: m.client_host.to_string(),
                    assignment: decode_assignment(&m.member_assignment),
                })
                .collect(),
        })
    }

    /// OffsetFetch: every committed offset of `group`.
    ///
    /// # Errors
    /// See [`ClientError`].
    pub async fn offset_fetch(&mut self, group: &str) -> Result<Vec<Committed>> {
        let request = OffsetFetchRequest::default()
            .with_group_id(GroupId(str_bytes(group)))
            .with_topics(None);
        let ResponseKind::OffsetFetch(response) = self
            .call_up_to(ApiKey::OffsetFetch, 7, RequestKind::OffsetFetch(request))
            .await?
        else {
            return Err(ClientError::UnexpectedResponse);
        };
        check(
            response.error_code,
            format!("fetch offsets of {group}"),
            None,
        )?;
        let mut out = Vec::new();
        for t in response.topics {
            for p in t.partitions {
                check(p.error_code, format!("fetch offsets of {group}"), None)?;
                out.push(Committed {
                    topic: t.name.0.to_string(),
                    partition: p.partition_index,
                    offset: p.committed_offset,
                });
            }
        }
        Ok(out)
    }

    /// OffsetCommit. `generation` -1 and an empty `member_id` commit for a group with
    /// no members (what admin tools do).
    ///
    /// # Errors
    /// [`ClientError::Kafka`] (UNKNOWN_MEMBER_ID when the group has members).
    pub async fn offset_commit(
        &mut self,
        group: &str,
        generation: i32,
        member_id: &str,
        offsets: &[Committed],
    ) -> Result<()> {
        let mut topics: Vec<OffsetCommitRequestTopic> = Vec::new();
        for c in offsets {
            let partition = OffsetCommitRequestPartition::default()
                .with_partition_index(c.partition)
                .with_committed_offset(c.offset)
                .with_committed_leader_epoch(-1);
            match topics.iter_mut().find(|t| t.name.0.as_str() == c.topic) {
                Some(t) => t.partitions.push(partition),
                None => topics.push(
                    OffsetCommitRequestTopic::default()
                        .with_name(TopicName(str_bytes(&c.topic)))
                        .with_partitions(vec![partition]),
                ),
            }
        }
        let request = OffsetCommitRequest::default()
            .with_group_id(GroupId(str_bytes(group)))
            .with_generation_id_or_member_epoch(generation)
            .with_member_id(str_bytes(member_id))
            .with_retention_time_ms(-1)
            .with_topics(topics);
        let ResponseKind::OffsetCommit(response) = self
            .call_up_to(ApiKey::OffsetCommit, 8, RequestKind::OffsetCommit(request))
            .await?
        else {
            return Err(ClientError::UnexpectedResponse);
        };
        for t in &response.topics {
            for p in &t.partitions {
                check(
                    p.error_code,
                    format!(
                        "commit offsets of {group} for {}-{}",
                        t.name.0, p.partition_index
                    ),
                    None,
                )?;
            }
        }
        Ok(())
    }

    /// DeleteGroups for one group.
    ///
    /// # Errors
    /// [`ClientError::Kafka`] (GROUP_ID_NOT_FOUND, NON_EMPTY_GROUP).
    pub async fn delete_group(&mut self, group: &str) -> Result<()> {
        let request =
            DeleteGroupsRequest::default().with_groups_names(vec![GroupId(str_bytes(group))]);
        let ResponseKind::DeleteGroups(response) = self
            .call::<DeleteGroupsRequest>(ApiKey::DeleteGroups, RequestKind::DeleteGroups(request))
            .await?
        else {
            return Err(ClientError::UnexpectedResponse);
        };
        for r in &response.results {
            check(r.error_code, format!("delete group {group}"), None)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assignment_round_trips() {
        let a = vec![("t".to_owned(), vec![0, 2]), ("u".to_owned(), vec![1])];
        assert_eq!(decode_assignment(&encode_assignment(&a)), a);
        assert!(decode_assignment(&[0, 0, 0]).is_empty());
    }
}
