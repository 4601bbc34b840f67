//! Heartbeat (GroupMetadataManager.classicGroupHeartbeat).

use kafka_protocol::messages::{HeartbeatRequest, HeartbeatResponse};
use sluice_protocol::{ResponseError, kafka_protocol};

use super::join::validate_member;
use super::{Caller, GroupCoordinator};
use crate::effect::GroupResponse;
use crate::group::GroupState;

impl GroupCoordinator {
    pub(crate) fn heartbeat(&mut self, caller: Caller, request: HeartbeatRequest) {
        let error = self.heartbeat_error(&request);
        let response = HeartbeatResponse::default().with_error_code(error.map_or(0, |e| e.code()));
        self.rt
            .respond(caller.id, GroupResponse::Heartbeat(response));
    }

    /// Validates the heartbeat and, for a current member, restarts its session.
    fn heartbeat_error(&mut self, request: &HeartbeatRequest) -> Option<ResponseError> {
        if request.group_id.is_empty() {
            return Some(ResponseError::InvalidGroupId);
        }
        let Self { groups, rt, .. } = self;
        let Some(group) = groups.get_mut(request.group_id.as_str()) else {
            return Some(ResponseError::UnknownMemberId);
        };
        if group.is(GroupState::Dead) {
            return Some(ResponseError::CoordinatorNotAvailable);
        }
        if let Err(error) = validate_member(
            group,
            &request.member_id,
            request.group_instance_id.as_deref(),
        ) {
            return Some(error);
        }
        if request.generation_id != group.generation_id() {
            return Some(ResponseError::IllegalGeneration);
        }
        let session_timeout_ms = group
            .member(&request.member_id)
            .map_or(0, |m| i64::from(m.session_timeout_ms));
        match group.state() {
            GroupState::Empty | GroupState::Dead => Some(ResponseError::UnknownMemberId),
            GroupState::PreparingRebalance => {
                rt.schedule_heartbeat(&group.group_id, &request.member_id, session_timeout_ms);
                Some(ResponseError::RebalanceInProgress)
            }
            // Members may heartbeat between their JoinGroup and SyncGroup responses.
            GroupState::CompletingRebalance | GroupState::Stable => {
                rt.schedule_heartbeat(&group.group_id, &request.member_id, session_timeout_ms);
                None
            }
        }
    }
}
