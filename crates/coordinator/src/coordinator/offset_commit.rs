//! OffsetCommit (OffsetMetadataManager.commitOffset). A commit is answered once its
//! records are durable; only then does OffsetFetch see it.

use kafka_protocol::messages::OffsetCommitRequest;
use kafka_protocol::messages::OffsetCommitResponse;
use sluice_protocol::{ResponseError, kafka_protocol};

use super::join::validate_member;
use super::shape::{offset_commit_error, offset_commit_skeleton};
use super::{Caller, GroupCoordinator, Purpose};
use crate::consumer::ConsumerGroup;
use crate::effect::GroupResponse;
use crate::group::{ClassicGroup, GroupState};
use crate::input::{AppendFailed, RequestId};
use crate::record::{CoordinatorRecord, OffsetCommitValue, RecordKey, RecordValue};

/// Kafka's `ClassicGroup.validateOffsetCommit` for non-transactional commits.
fn validate(group: &ClassicGroup, request: &OffsetCommitRequest) -> Result<(), ResponseError> {
    if group.is(GroupState::Dead) {
        return Err(ResponseError::CoordinatorNotAvailable);
    }
    let generation = request.generation_id_or_member_epoch;
    // Generation -1 comes from the admin client or a consumer that assigns partitions
    // itself; it may commit while the group has no members.
    if generation < 0 && group.is(GroupState::Empty) {
        return Ok(());
    }
    if generation >= 0 || !request.member_id.is_empty() || request.group_instance_id.is_some() {
        validate_member(
            group,
            &request.member_id,
            request.group_instance_id.as_deref(),
        )?;
        if generation != group.generation_id() {
            return Err(ResponseError::IllegalGeneration);
        }
    } else if !group.is(GroupState::Empty) {
        return Err(ResponseError::UnknownMemberId);
    }
    if group.is(GroupState::CompletingRebalance) {
        // The member has the new generation from its JoinGroup but no assignment yet.
        return Err(ResponseError::RebalanceInProgress);
    }
    Ok(())
}

/// Kafka's `ConsumerGroup.validateOffsetCommit`: the member's epoch stands in for the
/// generation, and consumer-protocol members must use OffsetCommit v9+.
fn validate_consumer(
    group: &ConsumerGroup,
    request: &OffsetCommitRequest,
    api_version: i16,
) -> Result<(), ResponseError> {
    let epoch = request.generation_id_or_member_epoch;
    // The admin client (or a consumer assigning partitions itself) commits with -1 while
    // the group has no members.
    if epoch < 0 && group.members.is_empty() {
        return Ok(());
    }
    let member = group
        .members
        .get(request.member_id.as_str())
        .ok_or(ResponseError::UnknownMemberId)?;
    if api_version < 9 {
        return Err(ResponseError::UnsupportedVersion);
    }
    if epoch != member.member_epoch {
        return Err(ResponseError::StaleMemberEpoch);
    }
    Ok(())
}

impl GroupCoordinator {
    pub(crate) fn offset_commit(&mut self, caller: Caller, request: OffsetCommitRequest) {
        let mut response = offset_commit_skeleton(&request);
        let group_id = request.group_id.to_string();
        let validation = match self.groups.get(&group_id) {
            None if let Some(group) = self.consumer_groups.get(&group_id) => {
                validate_consumer(group, &request, caller.api_version)
            }
            Some(group) => validate(group, &request),
            // A commit with generation -1 makes a "simple" group, once it is durable.
            None if request.generation_id_or_member_epoch < 0 => Ok(()),
            // v9+ says plainly that the group is unknown; older clients expect this.
            None if caller.api_version >= 9 => Err(ResponseError::GroupIdNotFound),
            None => Err(ResponseError::IllegalGeneration),
        };
        if let Err(error) = validation {
            let response = offset_commit_error(response, error);
            return self
                .rt
                .respond(caller.id, GroupResponse::OffsetCommit(response));
        }
        // A commit keeps the member's session alive while the group is stable or
        // rebalancing, as a heartbeat would.
        if let Some(group) = self.groups.get(&group_id)
            && matches!(
                group.state(),
                GroupState::Stable | GroupState::PreparingRebalance
            )
            && let Some(member) = group.member(&request.member_id)
        {
            let timeout = i64::from(member.session_timeout_ms);
            self.rt
                .schedule_heartbeat(&group_id, &request.member_id, timeout);
        }

        let now_ms = self.rt.now_ms;
        let max_chars = self.rt.limits.offset_metadata_max_chars;
        // Before v5 a commit may carry its own retention; Kafka then writes the one value
        // version with an expire timestamp.
        let expire_timestamp_ms = if caller.api_version <= 4 && request.retention_time_ms != -1 {
            now_ms.saturating_add(request.retention_time_ms)
        } else {
            -1
        };
        let mut records = Vec::new();
        for (topic, topic_response) in request.topics.iter().zip(response.topics.iter_mut()) {
            for (partition, partition_response) in topic
                .partitions
                .iter()
                .zip(topic_response.partitions.iter_mut())
            {
                let metadata = partition.committed_metadata.as_deref().unwrap_or_default();
                // Kafka bounds Java's String.length(): UTF-16 code units.
                if metadata.encode_utf16().count() > max_chars {
                    partition_response.error_code = ResponseError::OffsetMetadataTooLarge.code();
                    continue;
                }
                records.push(CoordinatorRecord {
                    key: RecordKey::OffsetCommit {
                        group: group_id.clone(),
                        topic: topic.name.to_string(),
                        partition: partition.partition_index,
                    },
                    value: Some(RecordValue::OffsetCommit(OffsetCommitValue {
                        offset: partition.committed_offset,
                        leader_epoch: partition.committed_leader_epoch,
                        metadata: metadata.to_string(),
                        commit_timestamp_ms: now_ms,
                        expire_timestamp_ms,
                    })),
                });
            }
        }
        if records.is_empty() {
            return self
                .rt
                .respond(caller.id, GroupResponse::OffsetCommit(response));
        }
        self.rt.append(
            records,
            Purpose::OffsetCommit {
                id: caller.id,
                response,
            },
        );
    }

    pub(super) fn finish_offset_commit(
        &mut self,
        id: RequestId,
        response: OffsetCommitResponse,
        result: Result<(), AppendFailed>,
    ) {
        let response = match result {
            Ok(()) => response,
            Err(failure) => offset_commit_error(response, failure.response_error()),
        };
        self.rt.respond(id, GroupResponse::OffsetCommit(response));
    }
}
