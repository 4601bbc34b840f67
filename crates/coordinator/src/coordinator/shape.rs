//! What is kept of a request while it waits, so it can always be answered with an error
//! (while loading, after unloading, or when its write fails), in the form Kafka's
//! `getErrorResponse` of each request gives.

use kafka_protocol::messages::consumer_group_describe_response::DescribedGroup as ConsumerDescribedGroup;
use kafka_protocol::messages::delete_groups_response::DeletableGroupResult;
use kafka_protocol::messages::describe_groups_response::DescribedGroup;
use kafka_protocol::messages::leave_group_response::MemberResponse;
use kafka_protocol::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use kafka_protocol::messages::offset_fetch_response::OffsetFetchResponseGroup;
use kafka_protocol::messages::{
    ConsumerGroupDescribeResponse, ConsumerGroupHeartbeatResponse, DeleteGroupsResponse,
    DescribeGroupsResponse, GroupId, HeartbeatResponse, JoinGroupResponse, LeaveGroupResponse,
    OffsetCommitRequest, OffsetCommitResponse, OffsetDeleteResponse, SyncGroupResponse,
};
use kafka_protocol::protocol::StrBytes;
use sluice_protocol::{ResponseError, kafka_protocol};

use crate::effect::GroupResponse;
use crate::input::GroupRequest;

/// The parts of a request its error response repeats.
#[derive(Clone, Debug)]
pub(crate) enum RequestShape {
    JoinGroup {
        api_version: i16,
        member_id: StrBytes,
    },
    SyncGroup,
    Heartbeat,
    LeaveGroup,
    /// The response with every partition of the request and no error set yet.
    OffsetCommit(OffsetCommitResponse),
    OffsetFetch {
        group_id: GroupId,
    },
    DescribeGroups {
        groups: Vec<GroupId>,
    },
    DeleteGroups {
        groups: Vec<GroupId>,
    },
    OffsetDelete,
    ConsumerGroupHeartbeat,
    ConsumerGroupDescribe {
        groups: Vec<GroupId>,
    },
}

/// The response to an OffsetCommit listing every partition of the request, no errors set.
pub(crate) fn offset_commit_skeleton(request: &OffsetCommitRequest) -> OffsetCommitResponse {
    OffsetCommitResponse::default().with_topics(
        request
            .topics
            .iter()
            .map(|t| {
                OffsetCommitResponseTopic::default()
                    .with_name(t.name.clone())
                    .with_topic_id(t.topic_id)
                    .with_partitions(
                        t.partitions
                            .iter()
                            .map(|p| {
                                OffsetCommitResponsePartition::default()
                                    .with_partition_index(p.partition_index)
                            })
                            .collect(),
                    )
            })
            .collect(),
    )
}

/// Every partition of an OffsetCommit with `error` (Kafka's `OffsetCommitRequest.getErrorResponse`).
pub(crate) fn offset_commit_error(
    mut response: OffsetCommitResponse,
    error: ResponseError,
) -> OffsetCommitResponse {
    for topic in &mut response.topics {
        for partition in &mut topic.partitions {
            partition.error_code = error.code();
        }
    }
    response
}

/// Every group of a DeleteGroups with `error`.
pub(crate) fn delete_groups_error(groups: &[GroupId], error_code: i16) -> DeleteGroupsResponse {
    DeleteGroupsResponse::default().with_results(
        groups
            .iter()
            .map(|group| {
                DeletableGroupResult::default()
                    .with_group_id(group.clone())
                    .with_error_code(error_code)
            })
            .collect(),
    )
}

impl RequestShape {
    pub(crate) fn of(request: &GroupRequest, api_version: i16) -> Self {
        match request {
            GroupRequest::JoinGroup(r) => Self::JoinGroup {
                api_version,
                member_id: r.member_id.clone(),
            },
            GroupRequest::SyncGroup(_) => Self::SyncGroup,
            GroupRequest::Heartbeat(_) => Self::Heartbeat,
            GroupRequest::LeaveGroup(_) => Self::LeaveGroup,
            GroupRequest::OffsetCommit(r) => Self::OffsetCommit(offset_commit_skeleton(r)),
            GroupRequest::OffsetFetch(r) => Self::OffsetFetch {
                group_id: r.group_id.clone(),
            },
            GroupRequest::DescribeGroups(r) => Self::DescribeGroups {
                groups: r.groups.clone(),
            },
            GroupRequest::DeleteGroups(r) => Self::DeleteGroups {
                groups: r.groups_names.clone(),
            },
            GroupRequest::OffsetDelete(_) => Self::OffsetDelete,
            GroupRequest::ConsumerGroupHeartbeat { .. } => Self::ConsumerGroupHeartbeat,
            GroupRequest::ConsumerGroupDescribe { request, .. } => Self::ConsumerGroupDescribe {
                groups: request.group_ids.clone(),
            },
        }
    }

    /// The response carrying `error` (`None`: no error, for the blind heartbeat answer).
    pub(crate) fn error_response(self, error: Option<ResponseError>) -> GroupResponse {
        let code = error.map_or(0, |e| e.code());
        match self {
            Self::JoinGroup {
                api_version,
                member_id,
            } => {
                let mut response = JoinGroupResponse::default()
                    .with_member_id(member_id)
                    .with_error_code(code);
                if api_version >= 7 {
                    response.protocol_name = None;
                }
                GroupResponse::JoinGroup(response)
            }
            Self::SyncGroup => {
                GroupResponse::SyncGroup(SyncGroupResponse::default().with_error_code(code))
            }
            Self::Heartbeat => {
                GroupResponse::Heartbeat(HeartbeatResponse::default().with_error_code(code))
            }
            Self::LeaveGroup => {
                GroupResponse::LeaveGroup(LeaveGroupResponse::default().with_error_code(code))
            }
            Self::OffsetCommit(response) => match error {
                Some(error) => GroupResponse::OffsetCommit(offset_commit_error(response, error)),
                None => GroupResponse::OffsetCommit(response),
            },
            Self::OffsetFetch { group_id } => GroupResponse::OffsetFetch(
                OffsetFetchResponseGroup::default()
                    .with_group_id(group_id)
                    .with_error_code(code),
            ),
            Self::DescribeGroups { groups } => GroupResponse::DescribeGroups(
                DescribeGroupsResponse::default().with_groups(
                    groups
                        .into_iter()
                        .map(|group| {
                            DescribedGroup::default()
                                .with_group_id(group)
                                .with_error_code(code)
                        })
                        .collect(),
                ),
            ),
            Self::DeleteGroups { groups } => {
                GroupResponse::DeleteGroups(delete_groups_error(&groups, code))
            }
            Self::OffsetDelete => {
                GroupResponse::OffsetDelete(OffsetDeleteResponse::default().with_error_code(code))
            }
            Self::ConsumerGroupHeartbeat => GroupResponse::ConsumerGroupHeartbeat(
                ConsumerGroupHeartbeatResponse::default().with_error_code(code),
            ),
            Self::ConsumerGroupDescribe { groups } => GroupResponse::ConsumerGroupDescribe(
                ConsumerGroupDescribeResponse::default().with_groups(
                    groups
                        .into_iter()
                        .map(|group| {
                            ConsumerDescribedGroup::default()
                                .with_group_id(group)
                                .with_error_code(code)
                        })
                        .collect(),
                ),
            ),
        }
    }

    /// LeaveGroup for a group that does not exist: every member is unknown (Kafka's
    /// service maps the group-level UNKNOWN_MEMBER_ID onto each member for v3+).
    pub(crate) fn leave_unknown_group(
        api_version: i16,
        members: &[(StrBytes, Option<StrBytes>)],
    ) -> LeaveGroupResponse {
        let error = ResponseError::UnknownMemberId.code();
        if api_version >= 3 {
            LeaveGroupResponse::default().with_members(
                members
                    .iter()
                    .map(|(member_id, instance_id)| {
                        MemberResponse::default()
                            .with_member_id(member_id.clone())
                            .with_group_instance_id(instance_id.clone())
                            .with_error_code(error)
                    })
                    .collect(),
            )
        } else {
            LeaveGroupResponse::default().with_error_code(error)
        }
    }
}
