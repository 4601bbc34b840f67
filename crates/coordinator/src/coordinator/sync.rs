//! SyncGroup (GroupMetadataManager.classicGroupSync).

use std::collections::BTreeMap;

use bytes::Bytes;
use kafka_protocol::messages::{SyncGroupRequest, SyncGroupResponse};
use sluice_protocol::{ResponseError, kafka_protocol};

use super::join::validate_member;
use super::rebalance::str_bytes;
use super::{Caller, GroupCoordinator, Purpose};
use crate::group::{ClassicGroup, GroupState};
use crate::record::{CoordinatorRecord, RecordKey, RecordValue};
use crate::timer::TimerKey;

fn sync_error(error: ResponseError) -> SyncGroupResponse {
    SyncGroupResponse::default().with_error_code(error.code())
}

/// v5: a protocol type or name given must be the group's.
fn is_inconsistent(requested: Option<&str>, group: Option<&str>) -> bool {
    matches!((requested, group), (Some(r), Some(g)) if r != g)
}

fn validate(group: &ClassicGroup, request: &SyncGroupRequest) -> Result<(), ResponseError> {
    if group.is(GroupState::Dead) {
        return Err(ResponseError::CoordinatorNotAvailable);
    }
    validate_member(
        group,
        &request.member_id,
        request.group_instance_id.as_deref(),
    )?;
    if request.generation_id != group.generation_id() {
        return Err(ResponseError::IllegalGeneration);
    }
    if is_inconsistent(request.protocol_type.as_deref(), group.protocol_type())
        || is_inconsistent(request.protocol_name.as_deref(), group.protocol_name())
    {
        return Err(ResponseError::InconsistentGroupProtocol);
    }
    Ok(())
}

impl GroupCoordinator {
    pub(crate) fn sync_group(&mut self, caller: Caller, request: SyncGroupRequest) {
        let parked = caller.parked();
        // From v5 both fields are mandatory (KafkaApis).
        if caller.api_version >= 5
            && (request.protocol_type.is_none() || request.protocol_name.is_none())
        {
            return self
                .rt
                .respond_sync(parked, sync_error(ResponseError::InconsistentGroupProtocol));
        }
        if request.group_id.is_empty() {
            return self
                .rt
                .respond_sync(parked, sync_error(ResponseError::InvalidGroupId));
        }
        let Self { groups, rt, .. } = self;
        let Some(group) = groups.get_mut(request.group_id.as_str()) else {
            return rt.respond_sync(parked, sync_error(ResponseError::UnknownMemberId));
        };
        if group.is(GroupState::Empty) {
            return rt.respond_sync(parked, sync_error(ResponseError::UnknownMemberId));
        }
        if let Err(error) = validate(group, &request) {
            return rt.respond_sync(parked, sync_error(error));
        }
        let member_id = request.member_id.to_string();
        match group.state() {
            GroupState::PreparingRebalance => {
                rt.respond_sync(parked, sync_error(ResponseError::RebalanceInProgress))
            }
            GroupState::CompletingRebalance => {
                let Some(member) = group.member_mut(&member_id) else {
                    return;
                };
                if let Some(superseded) = member.awaiting_sync.replace(parked) {
                    // Kafka drops a superseded SyncGroup unanswered; answer it.
                    rt.respond_sync(superseded, sync_error(ResponseError::RebalanceInProgress));
                }
                group.remove_pending_sync_member(&member_id);
                if group.has_received_sync_from_all() {
                    rt.timers.cancel(&TimerKey::Sync {
                        group: group.group_id.clone(),
                    });
                }
                if group.is_leader(&member_id) {
                    // Members the leader left out get an empty assignment.
                    let mut assignments: BTreeMap<String, Bytes> = group
                        .members()
                        .iter()
                        .map(|m| (m.member_id.clone(), Bytes::new()))
                        .collect();
                    for assignment in request.assignments {
                        assignments.insert(assignment.member_id.to_string(), assignment.assignment);
                    }
                    let value = group.to_metadata_value(Some(&assignments));
                    let record = CoordinatorRecord {
                        key: RecordKey::GroupMetadata {
                            group: group.group_id.clone(),
                        },
                        value: Some(RecordValue::GroupMetadata(value)),
                    };
                    rt.append(
                        vec![record],
                        Purpose::SyncAssignment {
                            group: group.group_id.clone(),
                            generation: group.generation_id(),
                            assignments,
                        },
                    );
                }
            }
            GroupState::Stable => {
                group.remove_pending_sync_member(&member_id);
                if group.has_received_sync_from_all() {
                    rt.timers.cancel(&TimerKey::Sync {
                        group: group.group_id.clone(),
                    });
                }
                let assignment = group
                    .member(&member_id)
                    .map(|m| m.assignment.clone())
                    .unwrap_or_default();
                let response = SyncGroupResponse::default()
                    .with_protocol_type(group.protocol_type().map(str_bytes))
                    .with_protocol_name(group.protocol_name().map(str_bytes))
                    .with_assignment(assignment);
                rt.respond_sync(parked, response);
            }
            GroupState::Empty | GroupState::Dead => {
                debug_assert!(false, "validated above");
                rt.respond_sync(parked, sync_error(ResponseError::UnknownMemberId));
            }
        }
    }
}
