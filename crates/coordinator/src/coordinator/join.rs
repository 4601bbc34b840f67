//! JoinGroup (GroupMetadataManager.classicGroupJoin and its helpers).

use std::collections::BTreeSet;

use kafka_protocol::messages::{JoinGroupRequest, JoinGroupResponse};
use sluice_protocol::{ResponseError, kafka_protocol};

use super::rebalance::str_bytes;
use super::{Caller, GroupCoordinator, Purpose, Runtime, StaticRejoin};
use crate::consumer::ConsumerGroupState;
use crate::group::{ClassicGroup, GroupState, Member, Parked, Protocol};
use crate::record::{CoordinatorRecord, RecordKey, RecordValue};

/// The request fields the join logic uses, owned.
struct Join {
    member_id: String,
    group_instance_id: Option<String>,
    protocol_type: String,
    protocols: Vec<Protocol>,
    rebalance_timeout_ms: i32,
    session_timeout_ms: i32,
}

impl Join {
    fn from_request(request: &JoinGroupRequest, api_version: i16) -> Self {
        // A protocol named twice would count twice towards "supported by every member".
        let mut seen = BTreeSet::new();
        let protocols = request
            .protocols
            .iter()
            .filter(|p| seen.insert(p.name.to_string()))
            .map(|p| Protocol {
                name: p.name.to_string(),
                metadata: p.metadata.clone(),
            })
            .collect();
        Self {
            member_id: request.member_id.to_string(),
            group_instance_id: request.group_instance_id.as_ref().map(|s| s.to_string()),
            protocol_type: request.protocol_type.to_string(),
            protocols,
            // v0 has no rebalance timeout: the session timeout serves as both.
            rebalance_timeout_ms: if api_version >= 1 {
                request.rebalance_timeout_ms
            } else {
                request.session_timeout_ms
            },
            session_timeout_ms: request.session_timeout_ms,
        }
    }
}

fn join_error(member_id: &str, error: ResponseError) -> JoinGroupResponse {
    JoinGroupResponse::default()
        .with_member_id(str_bytes(member_id))
        .with_error_code(error.code())
}

impl GroupCoordinator {
    pub(crate) fn join_group(&mut self, caller: Caller, request: JoinGroupRequest) {
        let join = Join::from_request(&request, caller.api_version);
        let parked = caller.parked();
        let group_id = request.group_id.to_string();
        let (min_session_ms, max_session_ms) = (
            self.rt.limits.min_session_timeout_ms,
            self.rt.limits.max_session_timeout_ms,
        );
        if group_id.is_empty() {
            return self.rt.respond_join(
                parked,
                join_error(&join.member_id, ResponseError::InvalidGroupId),
            );
        }
        let session_timeout_ms = i64::from(join.session_timeout_ms);
        if session_timeout_ms < min_session_ms || session_timeout_ms > max_session_ms {
            return self.rt.respond_join(
                parked,
                join_error(&join.member_id, ResponseError::InvalidSessionTimeout),
            );
        }
        let is_unknown_member = join.member_id.is_empty();
        if let Some(consumer_group) = self.consumer_groups.get(&group_id) {
            // Classic members do not join consumer groups here (Kafka's mixed groups, the
            // online migration, are not supported): an empty consumer group makes way for a
            // classic one, as in Kafka; one with members refuses.
            if consumer_group.state() != ConsumerGroupState::Empty {
                return self.rt.respond_join(
                    parked,
                    join_error(&join.member_id, ResponseError::InconsistentGroupProtocol),
                );
            }
            let mut records = Vec::new();
            self.begin_consumer_deletion(&group_id, &mut records);
            self.rt.deleting_consumer.remove(&group_id);
            self.rt.append(
                records,
                Purpose::Consumer {
                    reply: None,
                    groups: vec![group_id.clone()],
                },
            );
        }
        if !self.groups.contains_key(&group_id) {
            // A group is created by a member without an id; a member id for a group that
            // does not exist is stale.
            if !is_unknown_member {
                return self.rt.respond_join(
                    parked,
                    join_error(&join.member_id, ResponseError::UnknownMemberId),
                );
            }
            self.groups.insert(
                group_id.clone(),
                ClassicGroup::new(group_id.clone(), self.rt.now_ms),
            );
        }
        let Self { groups, rt, .. } = self;
        let Some(group) = groups.get_mut(&group_id) else {
            return;
        };
        if !rt.accept_joining_member(group, &join.member_id) {
            rt.remove_member(group, &join.member_id, ResponseError::UnknownMemberId);
            return rt.respond_join(parked, join_error("", ResponseError::GroupMaxSizeReached));
        }
        if is_unknown_member {
            rt.join_new_member(group, &caller, join);
        } else {
            rt.join_existing_member(group, &caller, join);
        }
    }

    /// A static member's new member id is durable (or not): answer its JoinGroup, or put
    /// the old member id back.
    pub(super) fn finish_static_rejoin(
        &mut self,
        rejoin: StaticRejoin,
        result: Result<(), crate::AppendFailed>,
    ) {
        let Self { groups, rt, .. } = self;
        let Some(group) = groups.get_mut(&rejoin.group) else {
            return;
        };
        // If a rebalance answered the JoinGroup meanwhile, the group has moved on.
        let still_waiting = group
            .member(&rejoin.new_member_id)
            .is_some_and(|m| m.awaiting_join == Some(rejoin.join));
        if !still_waiting {
            return;
        }
        match result {
            Err(failure) => {
                group.update_member(
                    &rejoin.new_member_id,
                    rejoin.old_protocols,
                    rejoin.old_rebalance_timeout_ms,
                    rejoin.old_session_timeout_ms,
                    None,
                );
                rt.cancel_heartbeat(&rejoin.group, &rejoin.new_member_id);
                if let Some(restored) = group.replace_static_member(
                    &rejoin.group_instance_id,
                    &rejoin.new_member_id,
                    rejoin.old_member_id.clone(),
                ) {
                    debug_assert!(
                        restored.awaiting_join.is_none() && restored.awaiting_sync.is_none()
                    );
                }
                if let Some(old) = group.member(&rejoin.old_member_id) {
                    let timeout = i64::from(old.session_timeout_ms);
                    rt.schedule_heartbeat(&rejoin.group, &rejoin.old_member_id, timeout);
                }
                let response = JoinGroupResponse::default()
                    .with_generation_id(group.generation_id())
                    .with_protocol_name(group.protocol_name().map(str_bytes))
                    .with_protocol_type(group.protocol_type().map(str_bytes))
                    .with_leader(
                        rejoin
                            .leader_at_join
                            .as_deref()
                            .map(str_bytes)
                            .unwrap_or_default(),
                    )
                    .with_error_code(failure.response_error().code());
                rt.respond_join(rejoin.join, response);
            }
            Ok(()) => {
                if let Some(member) = group.member_mut(&rejoin.new_member_id) {
                    member.awaiting_join = None;
                }
                // KIP-814 (v9): a static leader learns it leads but keeps the assignment it
                // has; older versions are told the leader as it was when it joined, so the
                // member takes the follower path and fetches its assignment.
                let response = if rejoin.join.api_version >= 9 {
                    let is_leader = group.is_leader(&rejoin.new_member_id);
                    Runtime::join_response(group, &rejoin.new_member_id, is_leader)
                        .with_skip_assignment(is_leader)
                } else {
                    Runtime::join_response(group, &rejoin.new_member_id, false).with_leader(
                        rejoin
                            .leader_at_join
                            .as_deref()
                            .map(str_bytes)
                            .unwrap_or_default(),
                    )
                };
                rt.respond_join(rejoin.join, response);
            }
        }
    }
}

impl Runtime {
    /// Kafka's `acceptJoiningMember`: `group.max.size` counts members waiting in a join
    /// phase, or all members otherwise.
    fn accept_joining_member(&self, group: &ClassicGroup, member_id: &str) -> bool {
        let max = self.limits.max_group_size;
        match group.state() {
            GroupState::Empty | GroupState::Dead => true,
            GroupState::PreparingRebalance => {
                group
                    .member(member_id)
                    .is_some_and(|m| m.awaiting_join.is_some())
                    || group.awaiting_join_count() < max
            }
            GroupState::CompletingRebalance | GroupState::Stable => {
                group.has_member(member_id) || group.members().len() < max
            }
        }
    }

    fn join_new_member(&mut self, group: &mut ClassicGroup, caller: &Caller, join: Join) {
        let parked = caller.parked();
        if group.is(GroupState::Dead) {
            // The group is being deleted: the client finds the coordinator again and retries.
            return self.respond_join(
                parked,
                join_error("", ResponseError::CoordinatorNotAvailable),
            );
        }
        if !group.supports_protocols(&join.protocol_type, &join.protocols) {
            return self.respond_join(
                parked,
                join_error("", ResponseError::InconsistentGroupProtocol),
            );
        }
        let prefix = join
            .group_instance_id
            .as_deref()
            .unwrap_or(&caller.client_id);
        let mut new_member_id = self.member_ids.next(prefix);
        while group.has_member(&new_member_id) || group.is_pending_member(&new_member_id) {
            new_member_id = self.member_ids.next(prefix);
        }
        match join.group_instance_id.clone() {
            Some(instance_id) => match group.static_member_id(&instance_id).map(str::to_string) {
                Some(old_member_id) => self.update_static_member(
                    group,
                    caller,
                    join,
                    &instance_id,
                    &old_member_id,
                    new_member_id,
                ),
                None => self.add_member_and_rebalance(group, caller, join, new_member_id),
            },
            None if caller.api_version >= 4 => {
                // KIP-394: hand out an id and wait for the member to come back with it, so
                // a client that gives up on a parked JoinGroup does not leave a ghost member.
                group.add_pending_member(new_member_id.clone());
                self.schedule_heartbeat(
                    &group.group_id,
                    &new_member_id,
                    i64::from(join.session_timeout_ms),
                );
                self.respond_join(
                    parked,
                    join_error(&new_member_id, ResponseError::MemberIdRequired),
                );
            }
            None => self.add_member_and_rebalance(group, caller, join, new_member_id),
        }
    }

    fn join_existing_member(&mut self, group: &mut ClassicGroup, caller: &Caller, join: Join) {
        let parked = caller.parked();
        let member_id = join.member_id.clone();
        if group.is(GroupState::Dead) {
            return self.respond_join(
                parked,
                join_error(&member_id, ResponseError::CoordinatorNotAvailable),
            );
        }
        if !group.supports_protocols(&join.protocol_type, &join.protocols) {
            return self.respond_join(
                parked,
                join_error(&member_id, ResponseError::InconsistentGroupProtocol),
            );
        }
        if group.is_pending_member(&member_id) {
            if join.group_instance_id.is_some() {
                // Pending ids are only handed to dynamic members; Kafka fails the request.
                return self.respond_join(
                    parked,
                    join_error(&member_id, ResponseError::UnknownServerError),
                );
            }
            return self.add_member_and_rebalance(group, caller, join, member_id);
        }
        if let Err(error) = validate_member(group, &member_id, join.group_instance_id.as_deref()) {
            let mut response = join_error(&member_id, error);
            response.protocol_name = None;
            return self.respond_join(parked, response);
        }
        let Some(member) = group.member(&member_id) else {
            return;
        };
        let matches = member.matches(&join.protocols);
        match group.state() {
            GroupState::PreparingRebalance => self.update_member_and_rebalance(group, parked, join),
            GroupState::CompletingRebalance if matches => {
                // The member lost its JoinGroup response: repeat it.
                let is_leader = group.is_leader(&member_id);
                let response = Self::join_response(group, &member_id, is_leader);
                self.respond_join(parked, response);
            }
            GroupState::CompletingRebalance => {
                self.update_member_and_rebalance(group, parked, join)
            }
            // A leader's JoinGroup always rebalances: it may have seen a metadata change
            // (new partitions) that its subscription does not show.
            GroupState::Stable if group.is_leader(&member_id) || !matches => {
                self.update_member_and_rebalance(group, parked, join)
            }
            GroupState::Stable => {
                let response = Self::join_response(group, &member_id, false);
                self.respond_join(parked, response);
            }
            GroupState::Empty | GroupState::Dead => self.respond_join(
                parked,
                join_error(&member_id, ResponseError::UnknownMemberId),
            ),
        }
    }

    fn add_member_and_rebalance(
        &mut self,
        group: &mut ClassicGroup,
        caller: &Caller,
        join: Join,
        member_id: String,
    ) {
        let member = Member {
            member_id: member_id.clone(),
            group_instance_id: join.group_instance_id,
            client_id: caller.client_id.clone(),
            client_host: caller.client_host.clone(),
            rebalance_timeout_ms: join.rebalance_timeout_ms,
            session_timeout_ms: join.session_timeout_ms,
            protocol_type: join.protocol_type,
            protocols: join.protocols,
            assignment: Default::default(),
            awaiting_join: Some(caller.parked()),
            awaiting_sync: None,
            is_new: true,
        };
        if group.is(GroupState::PreparingRebalance) && group.previous_state() == GroupState::Empty {
            group.new_member_added = true;
        }
        group.add(member);
        // A new member cannot heartbeat while its JoinGroup is parked, and a client that
        // gave up would leave it behind: its JoinGroup may wait this long at most.
        let timeout_ms = self.limits.new_member_join_timeout_ms;
        self.schedule_heartbeat(&group.group_id, &member_id, timeout_ms);
        self.maybe_prepare_rebalance_or_complete_join(group);
    }

    fn update_member_and_rebalance(
        &mut self,
        group: &mut ClassicGroup,
        join_request: Parked,
        join: Join,
    ) {
        let superseded = group.update_member(
            &join.member_id,
            join.protocols,
            join.rebalance_timeout_ms,
            join.session_timeout_ms,
            Some(join_request),
        );
        self.answer_superseded_join(superseded);
        self.maybe_prepare_rebalance_or_complete_join(group);
    }

    /// A member sent JoinGroup again while its earlier one was parked. Kafka drops the
    /// earlier one unanswered; it is answered here so no request is left hanging, with an
    /// error clients treat as "rejoin".
    fn answer_superseded_join(&mut self, superseded: Option<Parked>) {
        if let Some(old) = superseded {
            self.respond_join(
                old,
                JoinGroupResponse::default()
                    .with_error_code(ResponseError::RebalanceInProgress.code()),
            );
        }
    }

    /// KIP-345: a known static member joins with a new member id. It takes over the old
    /// member (which is fenced); in a Stable group whose protocol does not change, that is
    /// persisted without a rebalance.
    fn update_static_member(
        &mut self,
        group: &mut ClassicGroup,
        caller: &Caller,
        join: Join,
        instance_id: &str,
        old_member_id: &str,
        new_member_id: String,
    ) {
        let leader_at_join = group.leader_id().map(str::to_string);
        let Some(old) =
            group.replace_static_member(instance_id, old_member_id, new_member_id.clone())
        else {
            return;
        };
        let fenced = ResponseError::FencedInstanceId.code();
        if let Some(join) = old.awaiting_join {
            let mut response = join_error(old_member_id, ResponseError::FencedInstanceId);
            response.protocol_name = None;
            self.respond_join(join, response);
        }
        if let Some(sync) = old.awaiting_sync {
            self.respond_sync(
                sync,
                kafka_protocol::messages::SyncGroupResponse::default().with_error_code(fenced),
            );
        }
        self.cancel_heartbeat(&group.group_id, old_member_id);
        self.schedule_heartbeat(
            &group.group_id,
            &new_member_id,
            i64::from(old.session_timeout_ms),
        );
        let superseded = group.update_member(
            &new_member_id,
            join.protocols,
            join.rebalance_timeout_ms,
            join.session_timeout_ms,
            Some(caller.parked()),
        );
        debug_assert!(superseded.is_none());
        match group.state() {
            GroupState::Stable => {
                let selected = group.select_protocol();
                if group.protocol_name().is_some() && group.protocol_name() == selected.as_deref() {
                    let value = group.to_metadata_value(None);
                    let record = CoordinatorRecord {
                        key: RecordKey::GroupMetadata {
                            group: group.group_id.clone(),
                        },
                        value: Some(RecordValue::GroupMetadata(value)),
                    };
                    let rejoin = StaticRejoin {
                        group: group.group_id.clone(),
                        group_instance_id: instance_id.to_string(),
                        old_member_id: old_member_id.to_string(),
                        new_member_id,
                        old_protocols: old.protocols,
                        old_rebalance_timeout_ms: old.rebalance_timeout_ms,
                        old_session_timeout_ms: old.session_timeout_ms,
                        join: caller.parked(),
                        leader_at_join,
                    };
                    self.append(vec![record], Purpose::StaticRejoin(rejoin));
                } else {
                    self.maybe_prepare_rebalance_or_complete_join(group);
                }
            }
            // The leader may already have an assignment naming the old member id: only a
            // new rebalance gives the new id an assignment.
            GroupState::CompletingRebalance => self.prepare_rebalance(group),
            GroupState::PreparingRebalance => self.maybe_complete_join_phase(group),
            GroupState::Empty | GroupState::Dead => {
                debug_assert!(
                    false,
                    "a static member cannot belong to a group in {:?}",
                    group.state()
                );
            }
        }
    }
}

/// Kafka's `validateMember`: a static member must be the current holder of its instance
/// id, and the member must exist.
pub(crate) fn validate_member(
    group: &ClassicGroup,
    member_id: &str,
    group_instance_id: Option<&str>,
) -> Result<(), ResponseError> {
    if let Some(instance_id) = group_instance_id {
        match group.static_member_id(instance_id) {
            None => return Err(ResponseError::UnknownMemberId),
            Some(existing) if existing != member_id => return Err(ResponseError::FencedInstanceId),
            Some(_) => {}
        }
    }
    if group.has_member(member_id) {
        Ok(())
    } else {
        Err(ResponseError::UnknownMemberId)
    }
}
