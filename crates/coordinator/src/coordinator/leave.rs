//! LeaveGroup (GroupMetadataManager.classicGroupLeave): v3+ removes a batch of members,
//! identified by member id or, for administrative removal, by group instance id alone.

use kafka_protocol::messages::leave_group_response::MemberResponse;
use kafka_protocol::messages::{LeaveGroupRequest, LeaveGroupResponse};
use kafka_protocol::protocol::StrBytes;
use sluice_protocol::{ResponseError, kafka_protocol};

use super::join::validate_member;
use super::shape::RequestShape;
use super::{Caller, GroupCoordinator};
use crate::effect::GroupResponse;
use crate::group::GroupState;

impl GroupCoordinator {
    pub(crate) fn leave_group(&mut self, caller: Caller, request: LeaveGroupRequest) {
        // Before v3 the request names one member at the top level.
        let leaving: Vec<(StrBytes, Option<StrBytes>)> = if caller.api_version >= 3 {
            request
                .members
                .into_iter()
                .map(|m| (m.member_id, m.group_instance_id))
                .collect()
        } else {
            vec![(request.member_id, None)]
        };
        let response = self.leave_members(&request.group_id, caller.api_version, &leaving);
        self.rt
            .respond(caller.id, GroupResponse::LeaveGroup(response));
    }

    fn leave_members(
        &mut self,
        group_id: &str,
        api_version: i16,
        leaving: &[(StrBytes, Option<StrBytes>)],
    ) -> LeaveGroupResponse {
        let top_level =
            |error: ResponseError| LeaveGroupResponse::default().with_error_code(error.code());
        if group_id.is_empty() {
            return top_level(ResponseError::InvalidGroupId);
        }
        let Self { groups, rt, .. } = self;
        let Some(group) = groups.get_mut(group_id) else {
            return RequestShape::leave_unknown_group(api_version, leaving);
        };
        if group.is(GroupState::Dead) {
            return top_level(ResponseError::CoordinatorNotAvailable);
        }
        let mut results = Vec::with_capacity(leaving.len());
        let mut anyone_left = false;
        for (member_id, instance_id) in leaving {
            let outcome = if member_id.is_empty() {
                // Removal by instance id alone (admin tools, KIP-345).
                match instance_id
                    .as_deref()
                    .and_then(|id| group.static_member_id(id))
                {
                    Some(current) => {
                        let current = current.to_string();
                        rt.remove_member(group, &current, ResponseError::UnknownMemberId);
                        Ok(())
                    }
                    None => Err(ResponseError::UnknownMemberId),
                }
            } else if group.remove_pending_member(member_id) {
                rt.cancel_heartbeat(group_id, member_id);
                Ok(())
            } else {
                validate_member(group, member_id, instance_id.as_deref())
                    .map(|()| rt.remove_member(group, member_id, ResponseError::UnknownMemberId))
            };
            anyone_left |= outcome.is_ok();
            results.push(
                MemberResponse::default()
                    .with_member_id(member_id.clone())
                    .with_group_instance_id(instance_id.clone())
                    .with_error_code(outcome.err().map_or(0, |e| e.code())),
            );
        }
        if anyone_left {
            match group.state() {
                GroupState::Stable | GroupState::CompletingRebalance => {
                    rt.maybe_prepare_rebalance_or_complete_join(group)
                }
                GroupState::PreparingRebalance => rt.maybe_complete_join_phase(group),
                GroupState::Empty | GroupState::Dead => {}
            }
        }
        if api_version >= 3 {
            LeaveGroupResponse::default().with_members(results)
        } else {
            // Versions 0-2 carry the single member's error at the top level.
            let error = results.first().map_or(0, |r| r.error_code);
            LeaveGroupResponse::default().with_error_code(error)
        }
    }
}
