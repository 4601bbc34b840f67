//! The group APIs (JoinGroup, SyncGroup, Heartbeat, LeaveGroup, OffsetCommit,
//! OffsetFetch, OffsetDelete, DescribeGroups, ListGroups, DeleteGroups, and KIP-848's
//! ConsumerGroupHeartbeat and ConsumerGroupDescribe): each group is
//! routed to the coordinator of its `__consumer_offsets` partition, on the shard that
//! owns the partition; requests naming several groups are split per group and their
//! answers merged.

use std::collections::BTreeMap;
use std::sync::Arc;

use kafka_protocol::messages::consumer_group_describe_response::DescribedGroup as ConsumerDescribedGroup;
use kafka_protocol::messages::delete_groups_response::DeletableGroupResult;
use kafka_protocol::messages::describe_groups_response::DescribedGroup;
use kafka_protocol::messages::leave_group_response::MemberResponse;
use kafka_protocol::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use kafka_protocol::messages::offset_fetch_response::OffsetFetchResponseGroup;
use kafka_protocol::messages::{
    ConsumerGroupDescribeRequest, ConsumerGroupDescribeResponse, ConsumerGroupHeartbeatRequest,
    ConsumerGroupHeartbeatResponse,
};
use kafka_protocol::messages::{
    DeleteGroupsRequest, DeleteGroupsResponse, DescribeGroupsRequest, DescribeGroupsResponse,
    HeartbeatRequest, HeartbeatResponse, JoinGroupRequest, JoinGroupResponse, LeaveGroupRequest,
    LeaveGroupResponse, ListGroupsRequest, ListGroupsResponse, OffsetCommitRequest,
    OffsetCommitResponse, OffsetDeleteRequest, OffsetDeleteResponse, OffsetFetchRequest,
    OffsetFetchResponse, SyncGroupRequest, SyncGroupResponse,
};
use sluice_coordinator::{
    GroupRequest, GroupResponse, OffsetFetchGroup, TopicInfo, TopicsImage, offset_fetch_response,
    partition_for_group,
};
use sluice_protocol::{ResponseError, kafka_protocol};
use tracing::warn;

use super::admin::{self, TopicPlan};
use super::{RequestContext, now_ms, str_bytes};
use crate::catalog::Topic;
use crate::groups::{Caller, OFFSETS_TOPIC};
use crate::topic_config::TopicConfig;

/// The offsets topic, created on first use as Kafka does (compacted, 100 MiB segments).
pub(super) async fn offsets_topic(ctx: &RequestContext) -> Result<Arc<Topic>, ResponseError> {
    if let Some(topic) = ctx.node().topic(OFFSETS_TOPIC) {
        return Ok(topic);
    }
    let node = ctx.node();
    let configs: BTreeMap<String, String> = [
        ("cleanup.policy", "compact"),
        ("segment.bytes", "104857600"),
        ("compression.type", "producer"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    let config = TopicConfig::new(configs, &node.config.topic_defaults).map_err(|e| {
        warn!(error = %e, "offsets topic config refused");
        ResponseError::CoordinatorNotAvailable
    })?;
    let plan = TopicPlan {
        name: OFFSETS_TOPIC.to_owned(),
        partitions: node.config.offsets_topic_num_partitions,
        config,
    };
    match admin::create_topic(ctx, plan).await {
        Ok(topic) => Ok(topic),
        // Another request created it meanwhile.
        Err(_) => ctx
            .node()
            .topic(OFFSETS_TOPIC)
            .ok_or(ResponseError::CoordinatorNotAvailable),
    }
}

/// Sends `body` to the coordinator of `group_id` and waits for its answer.
async fn route(
    ctx: &RequestContext,
    group_id: &str,
    body: GroupRequest,
) -> Result<GroupResponse, ResponseError> {
    let topic = offsets_topic(ctx).await?;
    let partitions = u32::try_from(topic.partitions.len())
        .ok()
        .filter(|&n| n > 0)
        .ok_or(ResponseError::CoordinatorNotAvailable)?;
    let index = partition_for_group(group_id, partitions);
    let index = i32::try_from(index).map_err(|_| ResponseError::CoordinatorNotAvailable)?;
    let shard = topic
        .partition(index)
        .ok_or(ResponseError::CoordinatorNotAvailable)?
        .shard;
    let caller = Caller {
        api_version: ctx.api_version,
        client_id: ctx.client_id.clone(),
        client_host: format!("/{}", ctx.peer.ip()),
    };
    let waiting = ctx
        .node()
        .on_shard(&ctx.shard, shard, move |s| async move {
            s.coordinator(index)
                .map(|host| host.submit(caller, body, now_ms()))
        })
        .await
        .map_err(|_| ResponseError::NotCoordinator)?
        .ok_or(ResponseError::CoordinatorLoadInProgress)?;
    waiting.await.map_err(|_| ResponseError::NotCoordinator)
}

pub(super) async fn join_group(ctx: &RequestContext, req: JoinGroupRequest) -> JoinGroupResponse {
    let group = req.group_id.to_string();
    match route(ctx, &group, GroupRequest::JoinGroup(req)).await {
        Ok(GroupResponse::JoinGroup(r)) => r,
        Ok(_) => join_error(ResponseError::UnknownServerError),
        Err(e) => join_error(e),
    }
}

fn join_error(error: ResponseError) -> JoinGroupResponse {
    JoinGroupResponse::default()
        .with_error_code(error.code())
        .with_generation_id(-1)
}

pub(super) async fn sync_group(ctx: &RequestContext, req: SyncGroupRequest) -> SyncGroupResponse {
    let group = req.group_id.to_string();
    match route(ctx, &group, GroupRequest::SyncGroup(req)).await {
        Ok(GroupResponse::SyncGroup(r)) => r,
        Ok(_) => {
            SyncGroupResponse::default().with_error_code(ResponseError::UnknownServerError.code())
        }
        Err(e) => SyncGroupResponse::default().with_error_code(e.code()),
    }
}

pub(super) async fn heartbeat(ctx: &RequestContext, req: HeartbeatRequest) -> HeartbeatResponse {
    let group = req.group_id.to_string();
    match route(ctx, &group, GroupRequest::Heartbeat(req)).await {
        Ok(GroupResponse::Heartbeat(r)) => r,
        Ok(_) => {
            HeartbeatResponse::default().with_error_code(ResponseError::UnknownServerError.code())
        }
        Err(e) => HeartbeatResponse::default().with_error_code(e.code()),
    }
}

pub(super) async fn leave_group(
    ctx: &RequestContext,
    req: LeaveGroupRequest,
) -> LeaveGroupResponse {
    let group = req.group_id.to_string();
    let members: Vec<MemberResponse> = req
        .members
        .iter()
        .map(|m| {
            MemberResponse::default()
                .with_member_id(m.member_id.clone())
                .with_group_instance_id(m.group_instance_id.clone())
        })
        .collect();
    let failed = |error: ResponseError| {
        LeaveGroupResponse::default()
            .with_error_code(error.code())
            .with_members(members.clone())
    };
    match route(ctx, &group, GroupRequest::LeaveGroup(req)).await {
        Ok(GroupResponse::LeaveGroup(r)) => r,
        Ok(_) => failed(ResponseError::UnknownServerError),
        Err(e) => failed(e),
    }
}

pub(super) async fn offset_commit(
    ctx: &RequestContext,
    req: OffsetCommitRequest,
) -> OffsetCommitResponse {
    let group = req.group_id.to_string();
    let shape: Vec<(kafka_protocol::messages::TopicName, Vec<i32>)> = req
        .topics
        .iter()
        .map(|t| {
            (
                t.name.clone(),
                t.partitions.iter().map(|p| p.partition_index).collect(),
            )
        })
        .collect();
    let failed = |error: ResponseError| {
        OffsetCommitResponse::default().with_topics(
            shape
                .iter()
                .map(|(name, partitions)| {
                    OffsetCommitResponseTopic::default()
                        .with_name(name.clone())
                        .with_partitions(
                            partitions
                                .iter()
                                .map(|&p| {
                                    OffsetCommitResponsePartition::default()
                                        .with_partition_index(p)
                                        .with_error_code(error.code())
                                })
                                .collect(),
                        )
                })
                .collect(),
        )
    };
    match route(ctx, &group, GroupRequest::OffsetCommit(req)).await {
        Ok(GroupResponse::OffsetCommit(r)) => r,
        Ok(_) => failed(ResponseError::UnknownServerError),
        Err(e) => failed(e),
    }
}

pub(super) async fn offset_fetch(
    ctx: &RequestContext,
    req: OffsetFetchRequest,
) -> OffsetFetchResponse {
    let mut groups = Vec::new();
    for part in OffsetFetchGroup::split(req, ctx.api_version) {
        let group_id = part.group_id.clone();
        let answer = match route(ctx, &group_id, GroupRequest::OffsetFetch(part)).await {
            Ok(GroupResponse::OffsetFetch(g)) => g,
            Ok(_) => fetch_error(group_id, ResponseError::UnknownServerError),
            Err(e) => fetch_error(group_id, e),
        };
        groups.push(answer);
    }
    offset_fetch_response(groups, ctx.api_version)
}

fn fetch_error(
    group_id: kafka_protocol::messages::GroupId,
    error: ResponseError,
) -> OffsetFetchResponseGroup {
    OffsetFetchResponseGroup::default()
        .with_group_id(group_id)
        .with_error_code(error.code())
}

pub(super) async fn offset_delete(
    ctx: &RequestContext,
    req: OffsetDeleteRequest,
) -> OffsetDeleteResponse {
    let group = req.group_id.to_string();
    match route(ctx, &group, GroupRequest::OffsetDelete(req)).await {
        Ok(GroupResponse::OffsetDelete(r)) => r,
        Ok(_) => OffsetDeleteResponse::default()
            .with_error_code(ResponseError::UnknownServerError.code()),
        Err(e) => OffsetDeleteResponse::default().with_error_code(e.code()),
    }
}

pub(super) async fn describe_groups(
    ctx: &RequestContext,
    req: DescribeGroupsRequest,
) -> DescribeGroupsResponse {
    let mut described = Vec::with_capacity(req.groups.len());
    for group_id in &req.groups {
        let one = req.clone().with_groups(vec![group_id.clone()]);
        let failed = |error: ResponseError| {
            vec![
                DescribedGroup::default()
                    .with_group_id(group_id.clone())
                    .with_error_code(error.code())
                    .with_group_state(str_bytes("Dead")),
            ]
        };
        let groups = match route(ctx, group_id, GroupRequest::DescribeGroups(one)).await {
            Ok(GroupResponse::DescribeGroups(r)) => r.groups,
            Ok(_) => failed(ResponseError::UnknownServerError),
            Err(e) => failed(e),
        };
        described.extend(groups);
    }
    DescribeGroupsResponse::default().with_groups(described)
}

pub(super) async fn delete_groups(
    ctx: &RequestContext,
    req: DeleteGroupsRequest,
) -> DeleteGroupsResponse {
    let mut results = Vec::with_capacity(req.groups_names.len());
    for group_id in &req.groups_names {
        let one = req.clone().with_groups_names(vec![group_id.clone()]);
        let failed = |error: ResponseError| {
            vec![
                DeletableGroupResult::default()
                    .with_group_id(group_id.clone())
                    .with_error_code(error.code()),
            ]
        };
        let answer = match route(ctx, group_id, GroupRequest::DeleteGroups(one)).await {
            Ok(GroupResponse::DeleteGroups(r)) => r.results,
            Ok(_) => failed(ResponseError::UnknownServerError),
            Err(e) => failed(e),
        };
        results.extend(answer);
    }
    DeleteGroupsResponse::default().with_results(results)
}

/// ListGroups: every coordinator on every shard, merged. A coordinator still loading
/// fails the whole request with COORDINATOR_LOAD_IN_PROGRESS, as Kafka does.
pub(super) async fn list_groups(
    ctx: &RequestContext,
    req: ListGroupsRequest,
) -> ListGroupsResponse {
    let node = ctx.node().clone();
    if node.topic(OFFSETS_TOPIC).is_none() {
        return ListGroupsResponse::default();
    }
    let mut groups = Vec::new();
    for shard in 0..node.shard_count() {
        let (states, types) = (req.states_filter.clone(), req.types_filter.clone());
        let listed = node
            .on_shard(&ctx.shard, shard, move |s| async move {
                s.list_groups(&states, &types)
            })
            .await
            .unwrap_or(Err(ResponseError::CoordinatorNotAvailable));
        match listed {
            Ok(mut found) => groups.append(&mut found),
            Err(error) => return ListGroupsResponse::default().with_error_code(error.code()),
        }
    }
    ListGroupsResponse::default().with_groups(groups)
}

/// The catalog's topics as the consumer group coordinator sees them: server-side
/// assignment needs each topic's id and partition count.
fn topics_image(ctx: &RequestContext) -> Arc<TopicsImage> {
    let topics = ctx.node().catalog().topics();
    Arc::new(TopicsImage::new(topics.iter().map(|t| TopicInfo {
        id: t.id,
        name: t.name.to_string(),
        partitions: i32::try_from(t.partitions.len()).unwrap_or(i32::MAX),
    })))
}

pub(super) async fn consumer_group_heartbeat(
    ctx: &RequestContext,
    req: ConsumerGroupHeartbeatRequest,
) -> ConsumerGroupHeartbeatResponse {
    let group = req.group_id.to_string();
    let body = GroupRequest::ConsumerGroupHeartbeat {
        request: req,
        topics: topics_image(ctx),
    };
    let failed = |error: ResponseError| {
        ConsumerGroupHeartbeatResponse::default().with_error_code(error.code())
    };
    match route(ctx, &group, body).await {
        Ok(GroupResponse::ConsumerGroupHeartbeat(r)) => r,
        Ok(_) => failed(ResponseError::UnknownServerError),
        Err(e) => failed(e),
    }
}

pub(super) async fn consumer_group_describe(
    ctx: &RequestContext,
    req: ConsumerGroupDescribeRequest,
) -> ConsumerGroupDescribeResponse {
    let topics = topics_image(ctx);
    let mut described = Vec::with_capacity(req.group_ids.len());
    for group_id in &req.group_ids {
        let one = req.clone().with_group_ids(vec![group_id.clone()]);
        let failed = |error: ResponseError| {
            vec![
                ConsumerDescribedGroup::default()
                    .with_group_id(group_id.clone())
                    .with_error_code(error.code()),
            ]
        };
        let body = GroupRequest::ConsumerGroupDescribe {
            request: one,
            topics: topics.clone(),
        };
        let groups = match route(ctx, group_id, body).await {
            Ok(GroupResponse::ConsumerGroupDescribe(r)) => r.groups,
            Ok(_) => failed(ResponseError::UnknownServerError),
            Err(e) => failed(e),
        };
        described.extend(groups);
    }
    ConsumerGroupDescribeResponse::default().with_groups(described)
}
