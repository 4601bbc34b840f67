//! DeleteGroups (GroupCoordinatorShard.deleteGroups): only Empty groups go; their offsets
//! and metadata get tombstones, and the answer waits for them to be durable.

use std::collections::BTreeSet;

use kafka_protocol::messages::delete_groups_response::DeletableGroupResult;
use kafka_protocol::messages::{DeleteGroupsRequest, DeleteGroupsResponse, GroupId};
use sluice_protocol::{ResponseError, kafka_protocol};

use super::shape::delete_groups_error;
use super::{Caller, GroupCoordinator, Purpose, Runtime};
use crate::consumer::ConsumerGroupState;
use crate::effect::GroupResponse;
use crate::group::GroupState;
use crate::input::{AppendFailed, RequestId};
use crate::offsets::OffsetStore;
use crate::record::{CoordinatorRecord, RecordKey};

impl Runtime {
    /// Partitions with an offset commit in flight for `group`.
    pub(super) fn pending_offset_keys(&self, group: &str) -> BTreeSet<(String, i32)> {
        self.pending
            .values()
            .flat_map(|append| &append.records)
            .filter_map(|record| match &record.key {
                RecordKey::OffsetCommit {
                    group: g,
                    topic,
                    partition,
                } if g == group && record.value.is_some() => Some((topic.clone(), *partition)),
                _ => None,
            })
            .collect()
    }
}

/// Tombstones for every offset of `group`, durable or in flight (Kafka's
/// `deleteAllOffsets` sees uncommitted commits too).
pub(super) fn offset_tombstones(
    offsets: &OffsetStore,
    rt: &Runtime,
    group: &str,
) -> Vec<CoordinatorRecord> {
    let mut keys: BTreeSet<(String, i32)> = offsets
        .of_group(group)
        .map(|(topic, partition, _)| (topic.to_string(), partition))
        .collect();
    keys.extend(rt.pending_offset_keys(group));
    keys.into_iter()
        .map(|(topic, partition)| CoordinatorRecord {
            key: RecordKey::OffsetCommit {
                group: group.to_string(),
                topic,
                partition,
            },
            value: None,
        })
        .collect()
}

pub(super) fn group_tombstone(group: &str) -> CoordinatorRecord {
    CoordinatorRecord {
        key: RecordKey::GroupMetadata {
            group: group.to_string(),
        },
        value: None,
    }
}

impl GroupCoordinator {
    pub(crate) fn delete_groups(&mut self, caller: Caller, request: DeleteGroupsRequest) {
        let mut results = Vec::with_capacity(request.groups_names.len());
        let mut records = Vec::new();
        let mut deleted = Vec::new();
        let mut consumer_deleted = Vec::new();
        for group_id in &request.groups_names {
            let consumer_state = self
                .consumer_groups
                .get(group_id.as_str())
                .map(|g| g.state());
            let error = match self.groups.get_mut(group_id.as_str()) {
                None if let Some(state) = consumer_state => {
                    if state == ConsumerGroupState::Empty {
                        records.extend(offset_tombstones(&self.offsets, &self.rt, group_id));
                        consumer_deleted.push(group_id.to_string());
                        None
                    } else {
                        Some(ResponseError::NonEmptyGroup)
                    }
                }
                None => Some(ResponseError::GroupIdNotFound),
                Some(group) => match group.state() {
                    GroupState::Dead => Some(ResponseError::GroupIdNotFound),
                    GroupState::Stable
                    | GroupState::PreparingRebalance
                    | GroupState::CompletingRebalance => Some(ResponseError::NonEmptyGroup),
                    GroupState::Empty => {
                        records.extend(offset_tombstones(&self.offsets, &self.rt, group_id));
                        records.push(group_tombstone(group_id));
                        group.begin_deletion(self.rt.now_ms);
                        deleted.push(group_id.to_string());
                        None
                    }
                },
            };
            results.push(
                DeletableGroupResult::default()
                    .with_group_id(group_id.clone())
                    .with_error_code(error.map_or(0, |e| e.code())),
            );
        }
        for group_id in &consumer_deleted {
            self.begin_consumer_deletion(group_id, &mut records);
        }
        let response = DeleteGroupsResponse::default().with_results(results);
        if records.is_empty() {
            return self
                .rt
                .respond(caller.id, GroupResponse::DeleteGroups(response));
        }
        self.rt.append(
            records,
            Purpose::DeleteGroups {
                id: caller.id,
                response,
                deleted,
                consumer_deleted,
                requested: request.groups_names,
            },
        );
    }

    /// The tombstones are durable (the groups are gone: applying them removed them), or
    /// they failed and the groups are Empty again; like Kafka, a failed write fails every
    /// group of the request.
    pub(super) fn finish_delete_groups(
        &mut self,
        id: RequestId,
        response: DeleteGroupsResponse,
        deleted: Vec<String>,
        requested: Vec<GroupId>,
        result: Result<(), AppendFailed>,
    ) {
        let response = match result {
            Ok(()) => response,
            Err(failure) => {
                for group_id in &deleted {
                    if let Some(group) = self.groups.get_mut(group_id) {
                        group.abort_deletion();
                    }
                }
                delete_groups_error(&requested, failure.response_error().code())
            }
        };
        self.rt.respond(id, GroupResponse::DeleteGroups(response));
    }
}
