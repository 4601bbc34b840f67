//! What the broker feeds into the coordinator.

use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestTopics;
use kafka_protocol::messages::offset_fetch_response::OffsetFetchResponseGroup;
use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponsePartition, OffsetFetchResponseTopic,
};
use std::sync::Arc;

use kafka_protocol::messages::{
    ConsumerGroupDescribeRequest, ConsumerGroupHeartbeatRequest, DeleteGroupsRequest,
    DescribeGroupsRequest, GroupId, HeartbeatRequest, JoinGroupRequest, LeaveGroupRequest,
    OffsetCommitRequest, OffsetDeleteRequest, OffsetFetchRequest, OffsetFetchResponse,
    SyncGroupRequest, TopicName,
};
use sluice_protocol::{ResponseError, kafka_protocol};

use crate::effect::AppendToken;
use crate::record::OffsetsRecord;
use crate::topics::TopicsImage;

/// Identifies a request until its response leaves; chosen by the broker, unique among the
/// requests in flight on one coordinator.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RequestId(pub u64);

/// One event for [`GroupCoordinator::handle`](crate::GroupCoordinator::handle).
// Inputs are built and consumed at once, never stored in bulk: boxing the request would
// only add an allocation per request.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug)]
pub enum Input {
    /// A group API request addressed to a group this partition coordinates.
    Request {
        /// Echoed in the response effect.
        id: RequestId,
        /// The request's API version: several answers depend on it.
        api_version: i16,
        /// The `client.id` of the request header; a new member's id starts with it.
        client_id: String,
        /// The client's address as Kafka shows it in DescribeGroups (`/10.0.0.7`).
        client_host: String,
        /// The request itself.
        body: GroupRequest,
    },
    /// Time passed: fire the timers due by `now_ms` (session and rebalance timeouts, the
    /// initial rebalance delay, offset expiry). Ask [`next_deadline`] when to send it.
    ///
    /// [`next_deadline`]: crate::GroupCoordinator::next_deadline
    Tick,
    /// The outcome of an [`Effect::Append`](crate::Effect::Append). Results may come in
    /// any order; the coordinator applies them in the order the appends were emitted.
    Appended {
        /// The token of the append.
        token: AppendToken,
        /// `Ok` once the batch is durable (committed in the partition's log).
        result: Result<(), AppendFailed>,
    },
    /// The partition's records, read from its log start to its end after this node became
    /// the partition's leader. The coordinator rebuilds its groups and starts serving.
    Loaded(Vec<OffsetsRecord>),
    /// This node is no longer the partition's leader: requests in flight are answered with
    /// NOT_COORDINATOR and all state is dropped.
    Unloaded,
}

/// Why an append to `__consumer_offsets` did not become durable. Each variant names the
/// Kafka error the write path would have produced; the coordinator answers the waiting
/// request as Kafka does (`appendGroupMetadataErrorToResponseError`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AppendFailed {
    /// NOT_LEADER_OR_FOLLOWER: leadership moved. Clients see NOT_COORDINATOR.
    NotLeader,
    /// KAFKA_STORAGE_ERROR: the log is offline. Clients see NOT_COORDINATOR.
    StorageError,
    /// NOT_ENOUGH_REPLICAS: too few in-sync replicas. Clients see COORDINATOR_NOT_AVAILABLE.
    NotEnoughReplicas,
    /// REQUEST_TIMED_OUT: replication did not finish in time. Clients see
    /// COORDINATOR_NOT_AVAILABLE.
    TimedOut,
    /// UNKNOWN_TOPIC_OR_PARTITION: the partition is gone. Clients see
    /// COORDINATOR_NOT_AVAILABLE.
    PartitionUnavailable,
    /// MESSAGE_TOO_LARGE / RECORD_LIST_TOO_LARGE: the batch exceeds the topic's limits (or a
    /// field exceeds its encoding). Clients see UNKNOWN_SERVER_ERROR.
    TooLarge,
    /// Anything else. Clients see UNKNOWN_SERVER_ERROR.
    Other,
}

impl AppendFailed {
    /// The error Kafka answers a request with when its write fails this way.
    pub fn response_error(self) -> ResponseError {
        match self {
            Self::NotLeader | Self::StorageError => ResponseError::NotCoordinator,
            Self::NotEnoughReplicas | Self::TimedOut | Self::PartitionUnavailable => {
                ResponseError::CoordinatorNotAvailable
            }
            Self::TooLarge | Self::Other => ResponseError::UnknownServerError,
        }
    }
}

/// A group API request, for one partition's coordinator. Requests that name several
/// groups (OffsetFetch v8+, DescribeGroups, DeleteGroups) are split by the broker so that
/// each coordinator sees only its own groups.
#[derive(Clone, Debug)]
pub enum GroupRequest {
    /// JoinGroup (v0-v9).
    JoinGroup(JoinGroupRequest),
    /// SyncGroup (v0-v5).
    SyncGroup(SyncGroupRequest),
    /// Heartbeat (v0-v4).
    Heartbeat(HeartbeatRequest),
    /// LeaveGroup (v0-v5).
    LeaveGroup(LeaveGroupRequest),
    /// OffsetCommit (v2-v9).
    OffsetCommit(OffsetCommitRequest),
    /// One group's part of an OffsetFetch (v1-v9); see [`OffsetFetchGroup::split`].
    OffsetFetch(OffsetFetchGroup),
    /// DescribeGroups (v0-v6) for the groups this partition coordinates.
    DescribeGroups(DescribeGroupsRequest),
    /// DeleteGroups (v0-v2) for the groups this partition coordinates.
    DeleteGroups(DeleteGroupsRequest),
    /// OffsetDelete (v0).
    OffsetDelete(OffsetDeleteRequest),
    /// ConsumerGroupHeartbeat (v0-v1), with the broker's current topics: server-side
    /// assignment needs their ids and partition counts.
    ConsumerGroupHeartbeat {
        /// The request.
        request: ConsumerGroupHeartbeatRequest,
        /// The topics of the cluster now.
        topics: Arc<TopicsImage>,
    },
    /// ConsumerGroupDescribe (v0-v1) for the groups this partition coordinates, with the
    /// topics to name the assigned topic ids.
    ConsumerGroupDescribe {
        /// The request.
        request: ConsumerGroupDescribeRequest,
        /// The topics of the cluster now.
        topics: Arc<TopicsImage>,
    },
}

impl GroupRequest {
    /// The group a single-group request is about; `None` for DescribeGroups and
    /// DeleteGroups, which carry a list.
    pub fn group_id(&self) -> Option<&str> {
        match self {
            Self::JoinGroup(r) => Some(&r.group_id),
            Self::SyncGroup(r) => Some(&r.group_id),
            Self::Heartbeat(r) => Some(&r.group_id),
            Self::LeaveGroup(r) => Some(&r.group_id),
            Self::OffsetCommit(r) => Some(&r.group_id),
            Self::OffsetFetch(r) => Some(&r.group_id),
            Self::OffsetDelete(r) => Some(&r.group_id),
            Self::ConsumerGroupHeartbeat { request, .. } => Some(&request.group_id),
            Self::DescribeGroups(_)
            | Self::DeleteGroups(_)
            | Self::ConsumerGroupDescribe { .. } => None,
        }
    }
}

/// One group's part of an OffsetFetch request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OffsetFetchGroup {
    /// The group.
    pub group_id: GroupId,
    /// The partitions asked for; `None` asks for every partition the group has committed.
    pub topics: Option<Vec<OffsetFetchTopic>>,
    /// v7+: wait for commits in flight before answering.
    pub require_stable: bool,
    /// v9+: the member asking, for consumer-protocol groups (`None` from admin clients).
    pub member_id: Option<String>,
    /// v9+: its member epoch (-1 when not a member).
    pub member_epoch: i32,
}

/// Partitions of one topic inside [`OffsetFetchGroup`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OffsetFetchTopic {
    /// Topic name.
    pub name: TopicName,
    /// Partition indexes.
    pub partitions: Vec<i32>,
}

impl OffsetFetchGroup {
    /// Splits a request into one part per group: v8+ carry a list of groups, earlier
    /// versions a single group in top-level fields (Kafka's `OffsetFetchRequest.groups()`).
    pub fn split(request: OffsetFetchRequest, api_version: i16) -> Vec<Self> {
        let require_stable = request.require_stable;
        let topics_of = |topics: Vec<OffsetFetchRequestTopics>| {
            topics
                .into_iter()
                .map(|t| OffsetFetchTopic {
                    name: t.name,
                    partitions: t.partition_indexes,
                })
                .collect()
        };
        if api_version >= 8 {
            request
                .groups
                .into_iter()
                .map(|group| Self {
                    group_id: group.group_id,
                    topics: group.topics.map(topics_of),
                    require_stable,
                    member_id: group.member_id.map(|m| m.to_string()),
                    member_epoch: group.member_epoch,
                })
                .collect()
        } else {
            vec![Self {
                group_id: request.group_id,
                topics: request.topics.map(|topics| {
                    topics
                        .into_iter()
                        .map(|t| OffsetFetchTopic {
                            name: t.name,
                            partitions: t.partition_indexes,
                        })
                        .collect()
                }),
                require_stable,
                member_id: None,
                member_epoch: -1,
            }]
        }
    }
}

/// Assembles the per-group answers of a split OffsetFetch into the response of the
/// request's version (Kafka's `new OffsetFetchResponse(groups, version)`): v8+ list the
/// groups; earlier versions carry the single group at the top level, and v1, which has no
/// top-level error, repeats a group error on every partition.
pub fn offset_fetch_response(
    mut groups: Vec<OffsetFetchResponseGroup>,
    api_version: i16,
) -> OffsetFetchResponse {
    if api_version >= 8 {
        return OffsetFetchResponse::default().with_groups(groups);
    }
    debug_assert_eq!(groups.len(), 1, "OffsetFetch before v8 names one group");
    let Some(group) = groups.pop() else {
        return OffsetFetchResponse::default();
    };
    let group_error = group.error_code;
    let topics = group
        .topics
        .into_iter()
        .map(|topic| {
            let partitions = topic
                .partitions
                .into_iter()
                .map(|p| {
                    if api_version < 2 && group_error != 0 {
                        OffsetFetchResponsePartition::default()
                            .with_partition_index(p.partition_index)
                            .with_committed_offset(-1)
                            .with_error_code(group_error)
                    } else {
                        OffsetFetchResponsePartition::default()
                            .with_partition_index(p.partition_index)
                            .with_committed_offset(p.committed_offset)
                            .with_committed_leader_epoch(p.committed_leader_epoch)
                            .with_metadata(p.metadata)
                            .with_error_code(p.error_code)
                    }
                })
                .collect();
            OffsetFetchResponseTopic::default()
                .with_name(topic.name)
                .with_partitions(partitions)
        })
        .collect();
    let response = OffsetFetchResponse::default().with_topics(topics);
    if api_version >= 2 {
        response.with_error_code(group_error)
    } else {
        response
    }
}
