//! ConsumerGroupDescribe (GroupMetadataManager.consumerGroupDescribe): members with their
//! current and target assignments, named by the broker's topic snapshot.

use kafka_protocol::messages::consumer_group_describe_response::{
    Assignment, DescribedGroup, Member, TopicPartitions as DescribedTopicPartitions,
};
use kafka_protocol::messages::{
    ConsumerGroupDescribeRequest, ConsumerGroupDescribeResponse, GroupId, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use sluice_protocol::{ResponseError, kafka_protocol};

use super::rebalance::str_bytes;
use super::{Caller, GroupCoordinator};
use crate::consumer::ConsumerGroup;
use crate::consumer::assignor::DEFAULT_ASSIGNOR;
use crate::effect::GroupResponse;
use crate::record::consumer::TopicPartitions;
use crate::topics::TopicsImage;

/// KIP-1099 member type of a consumer-protocol member.
const CONSUMER_MEMBER_TYPE: i8 = 1;

/// Partitions with their topic names; topics that no longer exist are left out.
fn assignment(partitions: &TopicPartitions, topics: &TopicsImage) -> Assignment {
    Assignment::default().with_topic_partitions(
        partitions
            .iter()
            .filter_map(|(id, ps)| {
                let topic = topics.by_id(id)?;
                Some(
                    DescribedTopicPartitions::default()
                        .with_topic_id(*id)
                        .with_topic_name(TopicName(str_bytes(&topic.name)))
                        .with_partitions(ps.iter().copied().collect()),
                )
            })
            .collect(),
    )
}

pub(crate) fn describe(
    group: &ConsumerGroup,
    topics: &TopicsImage,
    api_version: i16,
) -> DescribedGroup {
    let members = group
        .members
        .values()
        .map(|m| {
            let target = group.target.get(&m.member_id).cloned().unwrap_or_default();
            let mut member = Member::default()
                .with_member_id(str_bytes(&m.member_id))
                .with_instance_id(m.instance_id.as_deref().map(str_bytes))
                .with_rack_id(m.rack_id.as_deref().map(str_bytes))
                .with_member_epoch(m.member_epoch)
                .with_client_id(str_bytes(&m.client_id))
                .with_client_host(str_bytes(&m.client_host))
                .with_subscribed_topic_names(
                    m.subscribed_topic_names
                        .iter()
                        .map(|t| TopicName(str_bytes(t)))
                        .collect(),
                )
                .with_subscribed_topic_regex(m.subscribed_topic_regex.as_deref().map(str_bytes))
                .with_assignment(assignment(&m.assigned, topics))
                .with_target_assignment(assignment(&target, topics));
            if api_version >= 1 {
                member.member_type = CONSUMER_MEMBER_TYPE;
            }
            member
        })
        .collect();
    DescribedGroup::default()
        .with_group_id(GroupId(str_bytes(&group.group_id)))
        .with_group_state(str_bytes(group.state().as_str()))
        .with_group_epoch(group.group_epoch)
        .with_assignment_epoch(group.assignment_epoch)
        .with_assignor_name(str_bytes(
            &group
                .preferred_assignor(None, None)
                .unwrap_or_else(|| DEFAULT_ASSIGNOR.to_string()),
        ))
        .with_members(members)
}

impl GroupCoordinator {
    pub(crate) fn consumer_group_describe(
        &mut self,
        caller: Caller,
        request: ConsumerGroupDescribeRequest,
    ) {
        let groups = request
            .group_ids
            .iter()
            .map(|id| match self.consumer_groups.get(id.as_str()) {
                Some(group) => describe(group, &self.topics, caller.api_version),
                None => {
                    let message = if self.groups.contains_key(id.as_str()) {
                        format!("Group {} is not a consumer group.", id.as_str())
                    } else {
                        format!("Group {} not found.", id.as_str())
                    };
                    DescribedGroup::default()
                        .with_group_id(id.clone())
                        .with_error_code(ResponseError::GroupIdNotFound.code())
                        .with_error_message(Some(StrBytes::from_string(message)))
                }
            })
            .collect();
        let response = ConsumerGroupDescribeResponse::default().with_groups(groups);
        self.rt
            .respond(caller.id, GroupResponse::ConsumerGroupDescribe(response));
    }
}
