//! OffsetFetch (OffsetMetadataManager.fetchOffsets / fetchAllOffsets) for one group.
//! Answers come from durable offsets only. With `require_stable` (v7+) the answer waits
//! until every append emitted before the request is applied, as Kafka 4.x runs such
//! fetches as write operations behind pending commits.

use kafka_protocol::messages::offset_fetch_response::OffsetFetchResponseGroup;
use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponsePartitions, OffsetFetchResponseTopics,
};
use kafka_protocol::protocol::StrBytes;
use sluice_protocol::{ResponseError, kafka_protocol};

use super::rebalance::str_bytes;
use super::{Caller, GroupCoordinator, StableFetch};
use crate::effect::GroupResponse;
use crate::group::GroupState;
use crate::input::OffsetFetchGroup;
use crate::record::OffsetCommitValue;

fn partition(index: i32, committed: Option<&OffsetCommitValue>) -> OffsetFetchResponsePartitions {
    match committed {
        Some(value) => OffsetFetchResponsePartitions::default()
            .with_partition_index(index)
            .with_committed_offset(value.offset)
            .with_committed_leader_epoch(value.leader_epoch)
            .with_metadata(Some(str_bytes(&value.metadata))),
        None => OffsetFetchResponsePartitions::default()
            .with_partition_index(index)
            .with_committed_offset(-1)
            .with_committed_leader_epoch(-1)
            .with_metadata(Some(StrBytes::default())),
    }
}

impl GroupCoordinator {
    pub(crate) fn offset_fetch(&mut self, caller: Caller, request: OffsetFetchGroup) {
        if request.require_stable
            && let Some(after_seq) = self.rt.last_unapplied_seq()
        {
            self.rt.stable_fetches.push(StableFetch {
                after_seq,
                id: caller.id,
                request,
            });
            return;
        }
        let response = self.fetch_offsets(&request);
        self.rt
            .respond(caller.id, GroupResponse::OffsetFetch(response));
    }

    /// Answers the stable fetches no unapplied append holds back any more.
    pub(super) fn answer_stable_fetches(&mut self) {
        if self.rt.stable_fetches.is_empty() {
            return;
        }
        let first_unapplied = self
            .rt
            .pending
            .first_key_value()
            .map(|(token, _)| token.seq);
        let (ready, waiting): (Vec<_>, Vec<_>) = std::mem::take(&mut self.rt.stable_fetches)
            .into_iter()
            .partition(|fetch| first_unapplied.is_none_or(|first| fetch.after_seq < first));
        self.rt.stable_fetches = waiting;
        for fetch in ready {
            let response = self.fetch_offsets(&fetch.request);
            self.rt
                .respond(fetch.id, GroupResponse::OffsetFetch(response));
        }
    }

    /// The committed offsets asked for. A group that does not exist (or is being
    /// deleted) has none: listed partitions come back as offset -1, without an error.
    fn fetch_offsets(&self, request: &OffsetFetchGroup) -> OffsetFetchResponseGroup {
        let group_id = request.group_id.as_str();
        let consumer_group = self.consumer_groups.get(group_id);
        // Kafka's ConsumerGroup.validateOffsetFetch: a member asking must be current.
        if let Some(group) = consumer_group
            && (request.member_id.is_some() || request.member_epoch >= 0)
        {
            let error = match group
                .members
                .get(request.member_id.as_deref().unwrap_or_default())
            {
                None => Some(ResponseError::UnknownMemberId),
                Some(member) if member.member_epoch != request.member_epoch => {
                    Some(ResponseError::StaleMemberEpoch)
                }
                Some(_) => None,
            };
            if let Some(error) = error {
                return OffsetFetchResponseGroup::default()
                    .with_group_id(request.group_id.clone())
                    .with_error_code(error.code());
            }
        }
        let exists = consumer_group.is_some()
            || self
                .groups
                .get(group_id)
                .is_some_and(|g| !g.is(GroupState::Dead));
        let lookup = |topic: &str, index: i32| {
            if exists {
                self.offsets.get(group_id, topic, index)
            } else {
                None
            }
        };
        let topics = match &request.topics {
            Some(topics) => topics
                .iter()
                .map(|topic| {
                    OffsetFetchResponseTopics::default()
                        .with_name(topic.name.clone())
                        .with_partitions(
                            topic
                                .partitions
                                .iter()
                                .map(|&index| partition(index, lookup(&topic.name, index)))
                                .collect(),
                        )
                })
                .collect(),
            None if exists => {
                let mut topics: Vec<OffsetFetchResponseTopics> = Vec::new();
                for (topic, index, value) in self.offsets.of_group(group_id) {
                    let entry = partition(index, Some(value));
                    match topics.last_mut() {
                        Some(last) if last.name.as_str() == topic => last.partitions.push(entry),
                        _ => topics.push(
                            OffsetFetchResponseTopics::default()
                                .with_name(str_bytes(topic).into())
                                .with_partitions(vec![entry]),
                        ),
                    }
                }
                topics
            }
            None => Vec::new(),
        };
        OffsetFetchResponseGroup::default()
            .with_group_id(request.group_id.clone())
            .with_topics(topics)
    }
}
