//! The rebalance machinery shared by JoinGroup, SyncGroup, LeaveGroup and the timers
//! (GroupMetadataManager's prepareRebalance, completeClassicGroupJoin, propagateAssignment,
//! the heartbeat and sync expirations).

use std::collections::BTreeMap;

use bytes::Bytes;
use kafka_protocol::messages::join_group_response::JoinGroupResponseMember;
use kafka_protocol::messages::{JoinGroupResponse, SyncGroupResponse};
use kafka_protocol::protocol::StrBytes;
use sluice_protocol::{ResponseError, kafka_protocol};

use super::{Purpose, Runtime};
use crate::group::{ClassicGroup, GroupState};
use crate::input::AppendFailed;
use crate::record::{CoordinatorRecord, RecordKey, RecordValue};
use crate::timer::{TimerAction, TimerKey};

pub(crate) fn str_bytes(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_string())
}

fn opt_str_bytes(s: Option<&str>) -> Option<StrBytes> {
    s.map(str_bytes)
}

impl Runtime {
    /// The members as the leader's JoinGroup response lists them, with their metadata for
    /// the selected protocol.
    pub(crate) fn join_members(group: &ClassicGroup) -> Vec<JoinGroupResponseMember> {
        let protocol = group.protocol_name().unwrap_or_default();
        group
            .members()
            .iter()
            .map(|m| {
                JoinGroupResponseMember::default()
                    .with_member_id(str_bytes(&m.member_id))
                    .with_group_instance_id(opt_str_bytes(m.group_instance_id.as_deref()))
                    .with_metadata(m.metadata(protocol).cloned().unwrap_or_default())
            })
            .collect()
    }

    /// A successful JoinGroup response for `member_id` in the current generation.
    pub(crate) fn join_response(
        group: &ClassicGroup,
        member_id: &str,
        with_members: bool,
    ) -> JoinGroupResponse {
        JoinGroupResponse::default()
            .with_members(if with_members {
                Self::join_members(group)
            } else {
                Vec::new()
            })
            .with_member_id(str_bytes(member_id))
            .with_generation_id(group.generation_id())
            .with_protocol_name(opt_str_bytes(group.protocol_name()))
            .with_protocol_type(opt_str_bytes(group.protocol_type()))
            .with_leader(group.leader_id().map(str_bytes).unwrap_or_default())
    }

    /// Removes a member, answering its parked JoinGroup and SyncGroup with `error`
    /// (Kafka completes the join future with UNKNOWN_MEMBER_ID and an empty member id so a
    /// live client rejoins; a parked SyncGroup, which Kafka would leave hanging, gets the
    /// same error).
    pub(crate) fn remove_member(
        &mut self,
        group: &mut ClassicGroup,
        member_id: &str,
        error: ResponseError,
    ) {
        self.cancel_heartbeat(&group.group_id, member_id);
        if let Some(member) = group.remove(member_id) {
            if let Some(join) = member.awaiting_join {
                self.respond_join(
                    join,
                    JoinGroupResponse::default().with_error_code(error.code()),
                );
            }
            if let Some(sync) = member.awaiting_sync {
                self.respond_sync(
                    sync,
                    SyncGroupResponse::default().with_error_code(error.code()),
                );
            }
        }
    }

    pub(crate) fn maybe_prepare_rebalance_or_complete_join(&mut self, group: &mut ClassicGroup) {
        if group.can_rebalance() {
            self.prepare_rebalance(group);
        } else {
            self.maybe_complete_join_phase(group);
        }
    }

    /// Starts a join phase. Parked SyncGroups are told to rejoin; the first rebalance of
    /// an empty group waits `group.initial.rebalance.delay.ms` for more members.
    pub(crate) fn prepare_rebalance(&mut self, group: &mut ClassicGroup) {
        if group.is(GroupState::CompletingRebalance) {
            self.reset_and_propagate_assignment_with_error(
                group,
                ResponseError::RebalanceInProgress,
            );
        }
        group.clear_pending_sync_members();
        self.timers.cancel(&TimerKey::Sync {
            group: group.group_id.clone(),
        });
        let is_initial = group.is(GroupState::Empty);
        if is_initial {
            let delay_ms = self.limits.initial_rebalance_delay_ms;
            let remaining_ms = (i64::from(group.rebalance_timeout_ms()) - delay_ms).max(0);
            self.timers.schedule(
                TimerKey::Join {
                    group: group.group_id.clone(),
                },
                self.now_ms.saturating_add(delay_ms),
                TimerAction::InitialRebalance {
                    delay_ms,
                    remaining_ms,
                },
            );
        }
        group.transition_to(GroupState::PreparingRebalance, self.now_ms);
        if !is_initial {
            self.maybe_complete_join_else_schedule(group);
        }
    }

    /// Completes the join phase if everyone is in, except during an initial rebalance,
    /// which always runs its delay.
    pub(crate) fn maybe_complete_join_phase(&mut self, group: &mut ClassicGroup) {
        if group.is(GroupState::PreparingRebalance)
            && group.previous_state() != GroupState::Empty
            && group.has_all_members_joined()
        {
            self.complete_join(group);
        }
    }

    fn maybe_complete_join_else_schedule(&mut self, group: &mut ClassicGroup) {
        if group.has_all_members_joined() {
            self.complete_join(group);
        } else {
            self.schedule_join(group, i64::from(group.rebalance_timeout_ms()));
        }
    }

    fn schedule_join(&mut self, group: &ClassicGroup, delay_ms: i64) {
        self.timers.schedule(
            TimerKey::Join {
                group: group.group_id.clone(),
            },
            self.now_ms.saturating_add(delay_ms),
            TimerAction::CompleteJoin,
        );
    }

    /// The initial rebalance delay ran out: wait once more if members kept arriving and
    /// time remains, else complete the join phase.
    pub(crate) fn try_complete_initial_rebalance(
        &mut self,
        group: &mut ClassicGroup,
        delay_ms: i64,
        remaining_ms: i64,
    ) {
        if group.new_member_added && remaining_ms != 0 {
            group.new_member_added = false;
            let new_delay_ms = self.limits.initial_rebalance_delay_ms.min(remaining_ms);
            let new_remaining_ms = (remaining_ms - delay_ms).max(0);
            self.timers.schedule(
                TimerKey::Join {
                    group: group.group_id.clone(),
                },
                self.now_ms.saturating_add(new_delay_ms),
                TimerAction::InitialRebalance {
                    delay_ms: new_delay_ms,
                    remaining_ms: new_remaining_ms,
                },
            );
        } else {
            self.complete_join(group);
        }
    }

    /// Ends the join phase: dynamic members that did not rejoin are dropped, the next
    /// generation starts, and every waiting member gets its JoinGroup response at once (the
    /// leader's with the member list). An empty result is persisted.
    pub(crate) fn complete_join(&mut self, group: &mut ClassicGroup) {
        let join_key = TimerKey::Join {
            group: group.group_id.clone(),
        };
        self.timers.cancel(&join_key);
        for member_id in group.not_yet_rejoined() {
            let is_static = group
                .member(&member_id)
                .is_some_and(|m| m.group_instance_id.is_some());
            if !is_static {
                self.remove_member(group, &member_id, ResponseError::UnknownMemberId);
            }
        }
        if group.is(GroupState::Dead) {
            return;
        }
        if !group.maybe_elect_new_joined_leader() && !group.members().is_empty() {
            // Nobody rejoined (only static members that did not come back remain): wait
            // another rebalance timeout for them or for their sessions to expire. At least
            // a millisecond, so a zero timeout cannot spin.
            self.schedule_join(group, i64::from(group.rebalance_timeout_ms()).max(1));
            return;
        }
        group.init_next_generation(self.now_ms);
        if group.is(GroupState::Empty) {
            let value = group.to_metadata_value(Some(&BTreeMap::new()));
            self.append(
                vec![CoordinatorRecord {
                    key: RecordKey::GroupMetadata {
                        group: group.group_id.clone(),
                    },
                    value: Some(RecordValue::GroupMetadata(value)),
                }],
                Purpose::EmptyGroup,
            );
            return;
        }
        let leader_members = Self::join_members(group);
        let member_ids: Vec<String> = group
            .members()
            .iter()
            .map(|m| m.member_id.clone())
            .collect();
        for member_id in member_ids {
            let is_leader = group.is_leader(&member_id);
            let response =
                Self::join_response(group, &member_id, false).with_members(if is_leader {
                    leader_members.clone()
                } else {
                    Vec::new()
                });
            let Some(member) = group.member_mut(&member_id) else {
                continue;
            };
            let join = member.awaiting_join.take();
            member.is_new = false;
            let session_timeout_ms = i64::from(member.session_timeout_ms);
            if let Some(join) = join {
                self.respond_join(join, response);
            }
            self.schedule_heartbeat(&group.group_id, &member_id, session_timeout_ms);
            group.add_pending_sync_member(member_id);
        }
        // Members that do not send SyncGroup within the rebalance timeout are dropped.
        self.timers.schedule(
            TimerKey::Sync {
                group: group.group_id.clone(),
            },
            self.now_ms
                .saturating_add(i64::from(group.rebalance_timeout_ms())),
            TimerAction::ExpireSync {
                generation: group.generation_id(),
            },
        );
    }

    /// Clears every assignment and answers parked SyncGroups with `error`.
    pub(crate) fn reset_and_propagate_assignment_with_error(
        &mut self,
        group: &mut ClassicGroup,
        error: ResponseError,
    ) {
        debug_assert!(group.is(GroupState::CompletingRebalance));
        for member in group.members_mut() {
            member.assignment = Bytes::new();
        }
        self.propagate_assignment(group, Some(error));
    }

    fn set_and_propagate_assignment(
        &mut self,
        group: &mut ClassicGroup,
        assignments: &BTreeMap<String, Bytes>,
    ) {
        debug_assert!(group.is(GroupState::CompletingRebalance));
        for member in group.members_mut() {
            member.assignment = assignments
                .get(&member.member_id)
                .cloned()
                .unwrap_or_default();
        }
        self.propagate_assignment(group, None);
    }

    /// Answers parked SyncGroups with their assignment (or `error`), restarting those
    /// members' sessions: their session may have lapsed while they waited.
    fn propagate_assignment(&mut self, group: &mut ClassicGroup, error: Option<ResponseError>) {
        let protocol_type = opt_str_bytes(group.protocol_type()).filter(|_| error.is_none());
        let protocol_name = opt_str_bytes(group.protocol_name()).filter(|_| error.is_none());
        let group_id = group.group_id.clone();
        let mut answered = Vec::new();
        for member in group.members_mut() {
            if let Some(sync) = member.awaiting_sync.take() {
                let response = SyncGroupResponse::default()
                    .with_protocol_type(protocol_type.clone())
                    .with_protocol_name(protocol_name.clone())
                    .with_assignment(member.assignment.clone())
                    .with_error_code(error.map_or(0, |e| e.code()));
                answered.push((
                    sync,
                    response,
                    member.member_id.clone(),
                    member.session_timeout_ms,
                ));
            }
        }
        for (sync, response, member_id, session_timeout_ms) in answered {
            self.respond_sync(sync, response);
            self.schedule_heartbeat(&group_id, &member_id, i64::from(session_timeout_ms));
        }
    }

    /// The leader's assignment is durable (or failed): if the group is still waiting for
    /// it in the same generation, hand it out and go Stable, or tell everyone to rejoin.
    pub(crate) fn finish_sync_assignment(
        &mut self,
        group: &mut ClassicGroup,
        generation: i32,
        assignments: BTreeMap<String, Bytes>,
        result: Result<(), AppendFailed>,
    ) {
        if !group.is(GroupState::CompletingRebalance) || group.generation_id() != generation {
            return;
        }
        match result {
            Ok(()) => {
                self.set_and_propagate_assignment(group, &assignments);
                group.transition_to(GroupState::Stable, self.now_ms);
            }
            Err(failure) => {
                self.reset_and_propagate_assignment_with_error(group, failure.response_error());
                self.maybe_prepare_rebalance_or_complete_join(group);
            }
        }
    }

    /// A session ran out. A member id handed out with MEMBER_ID_REQUIRED lapses; a member
    /// whose JoinGroup or SyncGroup is not parked is removed and the group rebalances.
    pub(crate) fn expire_heartbeat(&mut self, group: &mut ClassicGroup, member_id: &str) {
        if group.is(GroupState::Dead) {
            return;
        }
        if group.remove_pending_member(member_id) {
            if group.is(GroupState::PreparingRebalance) && group.has_all_members_joined() {
                self.complete_join(group);
            }
            return;
        }
        let Some(member) = group.member(member_id) else {
            return;
        };
        if member.has_satisfied_heartbeat() {
            return;
        }
        self.remove_member(group, member_id, ResponseError::UnknownMemberId);
        match group.state() {
            GroupState::Stable | GroupState::CompletingRebalance => {
                self.maybe_prepare_rebalance_or_complete_join(group)
            }
            GroupState::PreparingRebalance if group.has_all_members_joined() => {
                self.complete_join(group)
            }
            _ => {}
        }
    }

    /// The rebalance timeout passed after the join phase: members that never sent
    /// SyncGroup are removed and the group rebalances without them.
    pub(crate) fn expire_sync(&mut self, group: &mut ClassicGroup, generation: i32) {
        if generation != group.generation_id()
            || !matches!(
                group.state(),
                GroupState::CompletingRebalance | GroupState::Stable
            )
            || group.has_received_sync_from_all()
        {
            return;
        }
        for member_id in group.pending_sync_members() {
            self.remove_member(group, &member_id, ResponseError::UnknownMemberId);
        }
        self.prepare_rebalance(group);
    }
}
