//! OffsetDelete (OffsetMetadataManager.deleteOffsets): removes a group's offsets of some
//! partitions, unless the group is still subscribed to their topic.

use std::collections::BTreeSet;

use kafka_protocol::messages::offset_delete_response::{
    OffsetDeleteResponsePartition, OffsetDeleteResponseTopic,
};
use kafka_protocol::messages::{OffsetDeleteRequest, OffsetDeleteResponse};
use sluice_protocol::{ResponseError, kafka_protocol};

use super::{Caller, GroupCoordinator, Purpose};
use crate::effect::GroupResponse;
use crate::group::GroupState;
use crate::input::{AppendFailed, RequestId};
use crate::record::{CoordinatorRecord, RecordKey};

impl GroupCoordinator {
    pub(crate) fn offset_delete(&mut self, caller: Caller, request: OffsetDeleteRequest) {
        let group_id = request.group_id.to_string();
        let error =
            |error: ResponseError| OffsetDeleteResponse::default().with_error_code(error.code());
        if group_id.is_empty() {
            return self.rt.respond(
                caller.id,
                GroupResponse::OffsetDelete(error(ResponseError::InvalidGroupId)),
            );
        }
        // Which topics the group still reads: their offsets stay.
        let subscribed: BTreeSet<String> = if let Some(group) = self.consumer_groups.get(&group_id)
        {
            // Kafka's ConsumerGroup.isSubscribedToTopic: names and resolved regexes.
            group.subscribed_topics()
        } else {
            let group = match self.groups.get(&group_id) {
                Some(group) if !group.is(GroupState::Dead) => group,
                _ => {
                    return self.rt.respond(
                        caller.id,
                        GroupResponse::OffsetDelete(error(ResponseError::GroupIdNotFound)),
                    );
                }
            };
            // A group with members may only lose offsets it does not use, which only the
            // consumer protocol lets Kafka tell.
            if !group.is(GroupState::Empty) && !group.uses_consumer_protocol() {
                return self.rt.respond(
                    caller.id,
                    GroupResponse::OffsetDelete(error(ResponseError::NonEmptyGroup)),
                );
            }
            request
                .topics
                .iter()
                .map(|t| t.name.to_string())
                .filter(|t| group.is_subscribed_to_topic(t))
                .collect()
        };
        let pending = self.rt.pending_offset_keys(&group_id);
        let mut records = Vec::new();
        let mut topics = Vec::with_capacity(request.topics.len());
        for topic in &request.topics {
            let subscribed = subscribed.contains(topic.name.as_str());
            let partitions = topic
                .partitions
                .iter()
                .map(|p| {
                    let index = p.partition_index;
                    if subscribed {
                        return OffsetDeleteResponsePartition::default()
                            .with_partition_index(index)
                            .with_error_code(ResponseError::GroupSubscribedToTopic.code());
                    }
                    let committed = self.offsets.get(&group_id, &topic.name, index).is_some()
                        || pending.contains(&(topic.name.to_string(), index));
                    if committed {
                        records.push(CoordinatorRecord {
                            key: RecordKey::OffsetCommit {
                                group: group_id.clone(),
                                topic: topic.name.to_string(),
                                partition: index,
                            },
                            value: None,
                        });
                    }
                    OffsetDeleteResponsePartition::default().with_partition_index(index)
                })
                .collect();
            topics.push(
                OffsetDeleteResponseTopic::default()
                    .with_name(topic.name.clone())
                    .with_partitions(partitions),
            );
        }
        let response = OffsetDeleteResponse::default().with_topics(topics);
        if records.is_empty() {
            return self
                .rt
                .respond(caller.id, GroupResponse::OffsetDelete(response));
        }
        self.rt.append(
            records,
            Purpose::OffsetDelete {
                id: caller.id,
                response,
            },
        );
    }

    pub(super) fn finish_offset_delete(
        &mut self,
        id: RequestId,
        response: OffsetDeleteResponse,
        result: Result<(), AppendFailed>,
    ) {
        let response = match result {
            Ok(()) => response,
            Err(failure) => {
                OffsetDeleteResponse::default().with_error_code(failure.response_error().code())
            }
        };
        self.rt.respond(id, GroupResponse::OffsetDelete(response));
    }
}
