//! ConsumerGroupHeartbeat (KIP-848; GroupMetadataManager.consumerGroupHeartbeat): joins,
//! heartbeats, leaves and static leaves of consumer-protocol members, with server-side
//! assignment.
//!
//! ```text
//!   heartbeat ─▶ 1. member created/updated     (MemberMetadata record)
//!               2. subscription metadata        (PartitionMetadata record)
//!                  and group epoch bump         (Metadata record)
//!               3. group epoch > assignment epoch: run the assignor
//!                                               (TargetAssignmentMember/Metadata records)
//!               4. reconcile the member         (CurrentMemberAssignment record)
//!            ─▶ records replayed into memory at once, appended, answer once durable
//! ```

use std::collections::{BTreeMap, BTreeSet};

use kafka_protocol::messages::consumer_group_heartbeat_response::{
    Assignment, TopicPartitions as ResponseTopicPartitions,
};
use kafka_protocol::messages::{ConsumerGroupHeartbeatRequest, ConsumerGroupHeartbeatResponse};
use kafka_protocol::protocol::StrBytes;
use sluice_protocol::{ResponseError, kafka_protocol};

use super::{Caller, GroupCoordinator, Purpose, Runtime};
use crate::consumer::assignor::{self, DEFAULT_ASSIGNOR, MemberSpec};
use crate::consumer::reconcile::Reconciliation;
use crate::consumer::{
    self, ConsumerGroup, ConsumerMember, LEAVE_GROUP_MEMBER_EPOCH, LEAVE_GROUP_STATIC_MEMBER_EPOCH,
    MemberState, RegexCache,
};
use crate::effect::GroupResponse;
use crate::group::GroupState;
use crate::record::consumer::TopicPartitions;
use crate::record::{CoordinatorRecord, RecordKey};
use crate::timer::{TimerAction, TimerKey};

/// An error answer: the code and Kafka's message.
pub(crate) type HeartbeatError = (ResponseError, Option<String>);

fn invalid(message: &str) -> HeartbeatError {
    (ResponseError::InvalidRequest, Some(message.to_string()))
}

pub(crate) fn error_response(
    error: ResponseError,
    message: Option<String>,
) -> ConsumerGroupHeartbeatResponse {
    ConsumerGroupHeartbeatResponse::default()
        .with_error_code(error.code())
        .with_error_message(message.map(StrBytes::from_string))
}

fn is_empty_str(value: Option<&StrBytes>) -> bool {
    value.is_some_and(|s| s.is_empty())
}

/// Kafka's `throwIfConsumerGroupHeartbeatRequestIsInvalid`, plus the regex check that
/// Kafka 4.x does before scheduling the write.
fn validate(
    request: &ConsumerGroupHeartbeatRequest,
    api_version: i16,
    regexes: &mut RegexCache,
) -> Result<(), HeartbeatError> {
    if request.group_id.is_empty() {
        return Err(invalid("GroupId can't be empty."));
    }
    if is_empty_str(request.instance_id.as_ref()) {
        return Err(invalid("InstanceId can't be empty."));
    }
    if is_empty_str(request.rack_id.as_ref()) {
        return Err(invalid("RackId can't be empty."));
    }
    let epoch = request.member_epoch;
    // KIP-1082: from v1 the client picks its member id, also when joining.
    if (epoch > 0 || epoch == LEAVE_GROUP_MEMBER_EPOCH || (epoch == 0 && api_version >= 1))
        && request.member_id.is_empty()
    {
        return Err(invalid("MemberId can't be empty."));
    }
    match epoch {
        0 => {
            if request.rebalance_timeout_ms == -1 {
                return Err(invalid(
                    "RebalanceTimeoutMs must be provided in first request.",
                ));
            }
            if request
                .topic_partitions
                .as_ref()
                .is_none_or(|tp| !tp.is_empty())
            {
                return Err(invalid("TopicPartitions must be empty when (re-)joining."));
            }
            if request.subscribed_topic_names.is_none() && request.subscribed_topic_regex.is_none()
            {
                return Err(invalid(
                    "Either SubscribedTopicNames or SubscribedTopicRegex must be non-null when (re-)joining.",
                ));
            }
        }
        LEAVE_GROUP_STATIC_MEMBER_EPOCH => {
            if request.member_id.is_empty() {
                return Err(invalid("MemberId can't be empty."));
            }
            if request.instance_id.is_none() {
                return Err(invalid("InstanceId can't be null."));
            }
        }
        e if e > 0 || e == LEAVE_GROUP_MEMBER_EPOCH => {}
        _ => return Err(invalid("MemberEpoch is invalid.")),
    }
    if let Some(name) = &request.server_assignor
        && !assignor::is_supported(name)
    {
        return Err((
            ResponseError::UnsupportedAssignor,
            Some(format!(
                "ServerAssignor {} is not supported. Supported assignors: {}, {}.",
                name.as_str(),
                assignor::RANGE,
                assignor::UNIFORM
            )),
        ));
    }
    if let Some(regex) = request.subscribed_topic_regex.as_deref()
        && !regex.is_empty()
        && regexes.get(regex).is_none()
    {
        return Err((
            ResponseError::InvalidRegularExpression,
            Some(format!(
                "SubscribedTopicRegex `{regex}` is not a valid regular expression."
            )),
        ));
    }
    Ok(())
}

/// Partitions as the request and response carry them.
fn owned_partitions(request: &ConsumerGroupHeartbeatRequest) -> Option<TopicPartitions> {
    request.topic_partitions.as_ref().map(|topics| {
        let mut owned = TopicPartitions::new();
        for topic in topics {
            owned
                .entry(topic.topic_id)
                .or_default()
                .extend(topic.partitions.iter().copied());
        }
        owned.retain(|_, partitions| !partitions.is_empty());
        owned
    })
}

fn response_assignment(partitions: &TopicPartitions) -> Assignment {
    Assignment::default().with_topic_partitions(
        partitions
            .iter()
            .map(|(topic, ps)| {
                ResponseTopicPartitions::default()
                    .with_topic_id(*topic)
                    .with_partitions(ps.iter().copied().collect())
            })
            .collect(),
    )
}

fn is_subset(owned: Option<&TopicPartitions>, assigned: &TopicPartitions) -> bool {
    let Some(owned) = owned else {
        return false;
    };
    owned
        .iter()
        .all(|(topic, ps)| assigned.get(topic).is_some_and(|a| ps.is_subset(a)))
}

/// Kafka's `throwIfConsumerGroupMemberEpochIsInvalid`: the previous epoch is accepted when
/// the member owns no more than its assignment (the response bumping it was lost).
fn check_epoch(
    member: &ConsumerMember,
    received: i32,
    owned: Option<&TopicPartitions>,
) -> Result<(), HeartbeatError> {
    let fenced = |relation: &str| {
        (
            ResponseError::FencedMemberEpoch,
            Some(format!(
                "The consumer group member has a {relation} member epoch ({received}) than the one known by the group coordinator ({}). The member must abandon all its partitions and rejoin.",
                member.member_epoch
            )),
        )
    };
    // A member that was fenced rejoins with epoch 0 under the same id (KAFKA-19233).
    if received == 0 {
        return Ok(());
    }
    if received > member.member_epoch {
        return Err(fenced("greater"));
    }
    if received < member.member_epoch
        && (received != member.previous_member_epoch || !is_subset(owned, &member.assigned))
    {
        return Err(fenced("smaller"));
    }
    Ok(())
}

fn unknown_member(member_id: &str, group_id: &str) -> HeartbeatError {
    (
        ResponseError::UnknownMemberId,
        Some(format!(
            "Member {member_id} is not a member of group {group_id}."
        )),
    )
}

/// What a heartbeat produced: records to persist and the answer.
pub(crate) struct Outcome {
    pub(crate) records: Vec<CoordinatorRecord>,
    pub(crate) response: ConsumerGroupHeartbeatResponse,
}

impl GroupCoordinator {
    pub(crate) fn consumer_group_heartbeat(
        &mut self,
        caller: Caller,
        request: ConsumerGroupHeartbeatRequest,
    ) {
        if let Err((error, message)) = validate(&request, caller.api_version, &mut self.rt.regexes)
        {
            return self.rt.respond(
                caller.id,
                GroupResponse::ConsumerGroupHeartbeat(error_response(error, message)),
            );
        }
        let group_id = request.group_id.to_string();
        let outcome = match request.member_epoch {
            LEAVE_GROUP_MEMBER_EPOCH | LEAVE_GROUP_STATIC_MEMBER_EPOCH => {
                self.consumer_leave(&request)
            }
            _ => self.consumer_heartbeat(&caller, &request),
        };
        match outcome {
            Err((error, message)) => self.rt.respond(
                caller.id,
                GroupResponse::ConsumerGroupHeartbeat(error_response(error, message)),
            ),
            Ok(outcome) => {
                // The heartbeat replaced an empty classic group: it goes with its tombstone.
                let replaces_classic = outcome.records.iter().any(
                    |r| matches!(&r.key, RecordKey::GroupMetadata { group } if *group == group_id),
                );
                if replaces_classic {
                    self.groups.remove(&group_id);
                }
                self.commit_consumer_records(
                    vec![group_id],
                    outcome.records,
                    Some((
                        caller.id,
                        GroupResponse::ConsumerGroupHeartbeat(outcome.response),
                    )),
                )
            }
        }
    }

    /// Applies `records` to the groups in memory, appends them, and answers `reply` once
    /// they (and every append before them) are durable.
    pub(crate) fn commit_consumer_records(
        &mut self,
        groups: Vec<String>,
        records: Vec<CoordinatorRecord>,
        reply: Option<(crate::input::RequestId, GroupResponse)>,
    ) {
        if records.is_empty() {
            if let Some((id, response)) = reply {
                self.rt.respond_after_pending(id, response);
            }
            return;
        }
        self.replay_in_memory(&records);
        self.rt.append(records, Purpose::Consumer { reply, groups });
    }

    fn consumer_heartbeat(
        &mut self,
        caller: &Caller,
        request: &ConsumerGroupHeartbeatRequest,
    ) -> Result<Outcome, HeartbeatError> {
        let group_id = request.group_id.as_str();
        let member_epoch = request.member_epoch;
        let joining = member_epoch == 0;
        let owned = owned_partitions(request);
        let mut records = Vec::new();

        // The group: an existing consumer group, or a new one replacing an empty classic
        // group (Kafka deletes it), or an error.
        let empty_group = ConsumerGroup::new(group_id.to_string());
        if !self.consumer_groups.contains_key(group_id) {
            if let Some(classic) = self.groups.get(group_id) {
                let deletable = classic.is(GroupState::Empty) && !classic.is_being_deleted();
                if !(joining && deletable) {
                    return Err((
                        ResponseError::GroupIdNotFound,
                        Some(format!("Group {group_id} is not a consumer group.")),
                    ));
                }
                // Removed from memory once the heartbeat succeeds (see above).
                records.push(super::delete_groups::group_tombstone(group_id));
            } else if !joining {
                return Err((
                    ResponseError::GroupIdNotFound,
                    Some(format!("Consumer group {group_id} not found.")),
                ));
            }
        }
        let Self {
            consumer_groups,
            rt,
            topics,
            ..
        } = self;
        let group = consumer_groups.get(group_id).unwrap_or(&empty_group);
        let member_id = if request.member_id.is_empty() {
            // ConsumerGroupHeartbeat v0: the coordinator names the member.
            rt.member_ids.uuid()
        } else {
            request.member_id.to_string()
        };
        if group.members.len() >= rt.limits.consumer_max_group_size
            && !group.members.contains_key(&member_id)
        {
            return Err((
                ResponseError::GroupMaxSizeReached,
                Some(format!(
                    "The consumer group has reached its maximum capacity of {} members.",
                    rt.limits.consumer_max_group_size
                )),
            ));
        }

        // The member, as it is and as this heartbeat updates it.
        let instance_id = request.instance_id.as_deref();
        let mut replaced_static: Option<String> = None;
        let member = match instance_id {
            None => match group.members.get(&member_id) {
                Some(existing) => {
                    check_epoch(existing, member_epoch, owned.as_ref())?;
                    existing.clone()
                }
                None if joining => ConsumerMember::new(member_id.clone()),
                None => return Err(unknown_member(&member_id, group_id)),
            },
            Some(instance) => {
                let existing = group.static_member(instance);
                match existing {
                    None if joining => ConsumerMember::new(member_id.clone()),
                    None => {
                        return Err((
                            ResponseError::UnknownMemberId,
                            Some(format!("Instance id {instance} is unknown.")),
                        ));
                    }
                    Some(existing) if joining && existing.member_id != member_id => {
                        // Another member holds the instance id unless it left with -2.
                        if existing.member_epoch != LEAVE_GROUP_STATIC_MEMBER_EPOCH {
                            return Err((
                                ResponseError::UnreleasedInstanceId,
                                Some(format!(
                                    "Static member {member_id} with instance id {instance} cannot join the group because the instance id is owned by {} member.",
                                    existing.member_id
                                )),
                            ));
                        }
                        // The returning static member takes the old member's place.
                        let mut replacement = existing.clone();
                        replacement.member_id = member_id.clone();
                        replacement.member_epoch = 0;
                        replacement.previous_member_epoch = 0;
                        replaced_static = Some(existing.member_id.clone());
                        records.extend(consumer::member_tombstones(group_id, &existing.member_id));
                        records.push(consumer::member_metadata_record(group_id, &replacement));
                        records.push(consumer::target_member_record(
                            group_id,
                            &member_id,
                            &group.target_of(&existing.member_id, None),
                        ));
                        records.push(consumer::current_assignment_record(group_id, &replacement));
                        replacement
                    }
                    Some(existing) => {
                        if existing.member_id != member_id {
                            return Err((
                                ResponseError::FencedInstanceId,
                                Some(format!(
                                    "Static member {member_id} with instance id {instance} was fenced by member {}.",
                                    existing.member_id
                                )),
                            ));
                        }
                        check_epoch(existing, member_epoch, owned.as_ref())?;
                        existing.clone()
                    }
                }
            }
        };

        let mut updated = member.clone();
        if let Some(instance) = instance_id {
            updated.instance_id = Some(instance.to_string());
        }
        if let Some(rack) = &request.rack_id {
            updated.rack_id = Some(rack.to_string());
        }
        if request.rebalance_timeout_ms != -1 {
            updated.rebalance_timeout_ms = request.rebalance_timeout_ms;
        }
        if let Some(name) = &request.server_assignor {
            updated.server_assignor = Some(name.to_string());
        }
        if let Some(names) = &request.subscribed_topic_names {
            updated.subscribed_topic_names = names.iter().map(|n| n.to_string()).collect();
        }
        if let Some(regex) = &request.subscribed_topic_regex {
            updated.subscribed_topic_regex = Some(regex.to_string());
        }
        updated.client_id = caller.client_id.clone();
        updated.client_host = caller.client_host.clone();

        // 1. The member's subscription.
        let is_new = !group.members.contains_key(&member_id) && replaced_static.is_none();
        let mut bump = false;
        let subscription_changed = updated.subscribed_topic_names != member.subscribed_topic_names
            || updated.regex() != member.regex();
        if is_new || !updated.same_metadata(&member) {
            records.push(consumer::member_metadata_record(group_id, &updated));
            bump = subscription_changed;
        }

        // 2. The subscribed topics' metadata, from the broker's latest snapshot.
        let members_after = || {
            group
                .members
                .values()
                .filter(|m| {
                    m.member_id != member_id && Some(&m.member_id) != replaced_static.as_ref()
                })
                .chain(std::iter::once(&updated))
        };
        let metadata = consumer::subscription_metadata(members_after(), topics, &mut rt.regexes);
        if metadata != group.subscription_metadata {
            records.push(consumer::partition_metadata_record(group_id, &metadata));
            bump = true;
        }
        let mut group_epoch = group.group_epoch;
        if bump {
            group_epoch = group_epoch.saturating_add(1);
            records.push(consumer::epoch_record(group_id, group_epoch));
        }

        // 3. A new target assignment when the group epoch moved past it.
        let (target_epoch, target) = if group_epoch > group.assignment_epoch {
            let assignor = group
                .preferred_assignor(Some(&member), Some(&updated))
                .unwrap_or_else(|| DEFAULT_ASSIGNOR.to_string());
            let members: Vec<&ConsumerMember> = members_after().collect();
            let new_target = compute_target(
                group,
                &members,
                &metadata,
                &assignor,
                replaced_static.as_deref(),
                &member_id,
                &mut rt.regexes,
            );
            // Only the members whose target changed get a record (a replacing static
            // member's previous target was written with its replacement records).
            for (id, partitions) in &new_target {
                let previous = match (&replaced_static, *id == member_id) {
                    (Some(old), true) => group.target.get(old),
                    _ => group.target.get(id),
                };
                if Some(partitions) != previous && !(partitions.is_empty() && previous.is_none()) {
                    records.push(consumer::target_member_record(group_id, id, partitions));
                }
            }
            records.push(consumer::target_epoch_record(group_id, group_epoch));
            let mine = new_target.get(&member_id).cloned().unwrap_or_default();
            (group_epoch, mine)
        } else {
            (
                group.assignment_epoch,
                group.target_of(&member_id, replaced_static.as_deref().and(instance_id)),
            )
        };

        // 4. Reconcile the member towards its target.
        let mut reconciled = updated.clone();
        if !updated.is_reconciled_to(target_epoch) || subscription_changed {
            let subscribed_ids =
                consumer::subscribed_topic_ids(&updated, &metadata, &mut rt.regexes);
            let step = Reconciliation {
                target_epoch,
                target: &target,
                subscribed_topic_ids: &subscribed_ids,
                has_subscription_changed: subscription_changed,
                owned: owned.as_ref(),
            };
            reconciled = step
                .next(&updated, |topic, partition| {
                    group.partition_epoch(topic, partition)
                })
                .map_err(|_| {
                    (
                        ResponseError::FencedMemberEpoch,
                        Some(
                            "The consumer group member is in a unknown state. The member must abandon all its partitions and rejoin."
                                .to_string(),
                        ),
                    )
                })?;
            if reconciled.assignment_value() != updated.assignment_value() {
                records.push(consumer::current_assignment_record(group_id, &reconciled));
                if reconciled.state == MemberState::UnrevokedPartitions {
                    rt.schedule_consumer_rebalance(
                        group_id,
                        &member_id,
                        reconciled.member_epoch,
                        reconciled.rebalance_timeout_ms,
                    );
                } else {
                    rt.cancel_consumer_rebalance(group_id, &member_id);
                }
            }
        }

        rt.schedule_consumer_session(group_id, &member_id);

        let mut response = ConsumerGroupHeartbeatResponse::default()
            .with_member_id(Some(StrBytes::from_string(member_id.clone())))
            .with_member_epoch(reconciled.member_epoch)
            .with_heartbeat_interval_ms(rt.limits.consumer_heartbeat_interval_ms);
        // The assignment goes out on full requests (joins, and retries after errors, which
        // carry every field) and whenever it changed.
        let full = joining
            || (request.rebalance_timeout_ms != -1
                && request.subscribed_topic_names.is_some()
                && request.topic_partitions.is_some());
        if full || reconciled.assigned != member.assigned {
            response.assignment = Some(response_assignment(&reconciled.assigned));
        }
        Ok(Outcome { records, response })
    }

    fn consumer_leave(
        &mut self,
        request: &ConsumerGroupHeartbeatRequest,
    ) -> Result<Outcome, HeartbeatError> {
        let group_id = request.group_id.as_str();
        let member_id = request.member_id.as_str();
        let Some(group) = self.consumer_groups.get(group_id) else {
            let message = if self.groups.contains_key(group_id) {
                format!("Group {group_id} is not a consumer group.")
            } else {
                format!("Consumer group {group_id} not found.")
            };
            return Err((ResponseError::GroupIdNotFound, Some(message)));
        };
        let response = ConsumerGroupHeartbeatResponse::default()
            .with_member_id(Some(StrBytes::from_string(member_id.to_string())))
            .with_member_epoch(request.member_epoch);
        let member = match request.instance_id.as_deref() {
            None => group
                .members
                .get(member_id)
                .ok_or_else(|| unknown_member(member_id, group_id))?,
            Some(instance) => {
                let member = group.static_member(instance).ok_or_else(|| {
                    (
                        ResponseError::UnknownMemberId,
                        Some(format!("Instance id {instance} is unknown.")),
                    )
                })?;
                if member.member_id != member_id {
                    return Err((
                        ResponseError::FencedInstanceId,
                        Some(format!(
                            "Static member {member_id} with instance id {instance} was fenced by member {}.",
                            member.member_id
                        )),
                    ));
                }
                member
            }
        };
        if request.member_epoch == LEAVE_GROUP_STATIC_MEMBER_EPOCH {
            // The static member keeps its partitions until it comes back or its session
            // expires; only its epoch says it is away.
            let mut away = member.clone();
            away.member_epoch = LEAVE_GROUP_STATIC_MEMBER_EPOCH;
            away.pending_revocation.clear();
            let records = vec![consumer::current_assignment_record(group_id, &away)];
            return Ok(Outcome { records, response });
        }
        let records = fence_records(group, member, &self.topics, &mut self.rt);
        Ok(Outcome { records, response })
    }

    /// A member's session or rebalance timeout expired: remove it.
    pub(crate) fn fence_consumer_member(
        &mut self,
        group_id: &str,
        member_id: &str,
        epoch: Option<i32>,
    ) {
        let Some(group) = self.consumer_groups.get(group_id) else {
            return;
        };
        let Some(member) = group.members.get(member_id) else {
            return;
        };
        // A rebalance timeout only fences a member still stuck at the same epoch.
        if epoch.is_some_and(|e| e != member.member_epoch) {
            return;
        }
        let records = fence_records(group, member, &self.topics, &mut self.rt);
        self.commit_consumer_records(vec![group_id.to_string()], records, None);
    }
}

/// Removes a member (Kafka's `consumerGroupFenceMember`): its three records go, the
/// subscription metadata is recomputed without it, and the group epoch is bumped.
fn fence_records(
    group: &ConsumerGroup,
    member: &ConsumerMember,
    topics: &crate::topics::TopicsImage,
    rt: &mut Runtime,
) -> Vec<CoordinatorRecord> {
    let group_id = group.group_id.as_str();
    let mut records = consumer::member_tombstones(group_id, &member.member_id).to_vec();
    let remaining = group
        .members
        .values()
        .filter(|m| m.member_id != member.member_id);
    let metadata = consumer::subscription_metadata(remaining, topics, &mut rt.regexes);
    if metadata != group.subscription_metadata {
        records.push(consumer::partition_metadata_record(group_id, &metadata));
    }
    let group_epoch = group.group_epoch.saturating_add(1);
    records.push(consumer::epoch_record(group_id, group_epoch));
    // The last member gone, there is nothing to assign: the assignment epoch catches up
    // so that the empty group's epochs agree (KAFKA-20442).
    if group.members.len() == 1 {
        records.push(consumer::target_epoch_record(group_id, group_epoch));
    }
    rt.cancel_consumer_session(group_id, &member.member_id);
    rt.cancel_consumer_rebalance(group_id, &member.member_id);
    records
}

/// Runs the assignor over the members as they will be after this heartbeat.
fn compute_target(
    group: &ConsumerGroup,
    members: &[&ConsumerMember],
    metadata: &BTreeMap<String, consumer::SubscribedTopic>,
    assignor_name: &str,
    replaced_static: Option<&str>,
    member_id: &str,
    regexes: &mut RegexCache,
) -> BTreeMap<String, TopicPartitions> {
    let partitions: BTreeMap<uuid::Uuid, i32> =
        metadata.values().map(|t| (t.id, t.partitions)).collect();
    let specs: Vec<MemberSpec> = members
        .iter()
        .map(|m| {
            let current = match (m.member_id == member_id, replaced_static) {
                (true, Some(previous)) => group.target.get(previous).cloned(),
                _ => group.target.get(&m.member_id).cloned(),
            };
            MemberSpec {
                member_id: m.member_id.clone(),
                instance_id: m.instance_id.clone(),
                topics: consumer::subscribed_topic_ids(m, metadata, regexes)
                    .into_iter()
                    .collect::<BTreeSet<_>>(),
                current: current.unwrap_or_default(),
            }
        })
        .collect();
    assignor::assign(assignor_name, &specs, &partitions)
}

impl Runtime {
    pub(crate) fn schedule_consumer_session(&mut self, group: &str, member: &str) {
        let deadline = self
            .now_ms
            .saturating_add(self.limits.consumer_session_timeout_ms);
        self.timers.schedule(
            TimerKey::ConsumerSession {
                group: group.to_string(),
                member: member.to_string(),
            },
            deadline,
            TimerAction::ExpireConsumerSession,
        );
    }

    pub(crate) fn cancel_consumer_session(&mut self, group: &str, member: &str) {
        self.timers.cancel(&TimerKey::ConsumerSession {
            group: group.to_string(),
            member: member.to_string(),
        });
    }

    pub(crate) fn schedule_consumer_rebalance(
        &mut self,
        group: &str,
        member: &str,
        epoch: i32,
        timeout_ms: i32,
    ) {
        let deadline = self.now_ms.saturating_add(i64::from(timeout_ms.max(0)));
        self.timers.schedule(
            TimerKey::ConsumerRebalance {
                group: group.to_string(),
                member: member.to_string(),
            },
            deadline,
            TimerAction::ExpireConsumerRebalance { epoch },
        );
    }

    pub(crate) fn cancel_consumer_rebalance(&mut self, group: &str, member: &str) {
        self.timers.cancel(&TimerKey::ConsumerRebalance {
            group: group.to_string(),
            member: member.to_string(),
        });
    }
}
