//! DescribeGroups and ListGroups (GroupMetadataManager.describeGroups / listGroups): reads
//! of the groups as they are in memory.

use kafka_protocol::messages::describe_groups_response::{DescribedGroup, DescribedGroupMember};
use kafka_protocol::messages::list_groups_response::ListedGroup;
use kafka_protocol::messages::{DescribeGroupsRequest, DescribeGroupsResponse, GroupId};
use kafka_protocol::protocol::StrBytes;
use sluice_protocol::{ResponseError, kafka_protocol};

use super::rebalance::str_bytes;
use super::{Caller, CoordinatorStatus, GroupCoordinator};
use crate::effect::GroupResponse;
use crate::group::{ClassicGroup, GroupState};

/// KIP-848's `GroupType.CLASSIC`.
const CLASSIC_GROUP_TYPE: &str = "classic";
/// KIP-848's `GroupType.CONSUMER`.
const CONSUMER_GROUP_TYPE: &str = "consumer";

fn describe(group: &ClassicGroup) -> DescribedGroup {
    // Member metadata and the protocol name are only shown for Stable groups.
    let stable_protocol = group
        .protocol_name()
        .filter(|_| group.is(GroupState::Stable));
    DescribedGroup::default()
        .with_group_id(str_bytes(&group.group_id).into())
        .with_group_state(str_bytes(group.state().as_str()))
        .with_protocol_type(str_bytes(group.protocol_type().unwrap_or_default()))
        .with_protocol_data(str_bytes(stable_protocol.unwrap_or_default()))
        .with_members(
            group
                .members()
                .iter()
                .map(|m| {
                    DescribedGroupMember::default()
                        .with_member_id(str_bytes(&m.member_id))
                        .with_group_instance_id(m.group_instance_id.as_deref().map(str_bytes))
                        .with_client_id(str_bytes(&m.client_id))
                        .with_client_host(str_bytes(&m.client_host))
                        .with_member_metadata(
                            stable_protocol
                                .and_then(|p| m.metadata(p))
                                .cloned()
                                .unwrap_or_default(),
                        )
                        .with_member_assignment(m.assignment.clone())
                })
                .collect(),
        )
}

impl GroupCoordinator {
    pub(crate) fn describe_groups(&mut self, caller: Caller, request: DescribeGroupsRequest) {
        let groups = request
            .groups
            .iter()
            .map(|id| self.describe_group(id, caller.api_version))
            .collect();
        let response = DescribeGroupsResponse::default().with_groups(groups);
        self.rt
            .respond(caller.id, GroupResponse::DescribeGroups(response));
    }

    fn describe_group(&self, group_id: &GroupId, api_version: i16) -> DescribedGroup {
        match self
            .groups
            .get(group_id.as_str())
            .filter(|g| !g.is(GroupState::Dead))
        {
            Some(group) => describe(group),
            // A consumer group is not a classic group: v6 says so, as Kafka 4.x does;
            // earlier versions see a Dead group.
            None if self.consumer_groups.contains_key(group_id.as_str()) => {
                let described = DescribedGroup::default()
                    .with_group_id(group_id.clone())
                    .with_group_state(str_bytes(GroupState::Dead.as_str()));
                if api_version >= 6 {
                    described
                        .with_error_code(ResponseError::GroupIdNotFound.code())
                        .with_error_message(Some(StrBytes::from_string(format!(
                            "Group {} is not a classic group.",
                            group_id.as_str()
                        ))))
                } else {
                    described
                }
            }
            // KIP-1043: v6 says the group does not exist; earlier versions describe a Dead
            // group.
            None if api_version >= 6 => DescribedGroup::default()
                .with_group_id(group_id.clone())
                .with_error_code(ResponseError::GroupIdNotFound.code())
                .with_error_message(Some(StrBytes::from_string(format!(
                    "Group {} not found.",
                    group_id.as_str()
                )))),
            None => DescribedGroup::default()
                .with_group_id(group_id.clone())
                .with_group_state(str_bytes(GroupState::Dead.as_str())),
        }
    }

    /// ListGroups for this partition: groups whose state (case-insensitively) is in
    /// `states_filter` and whose type is in `types_filter`; an empty filter matches all.
    ///
    /// # Errors
    ///
    /// COORDINATOR_LOAD_IN_PROGRESS while loading (Kafka fails the whole ListGroups);
    /// NOT_COORDINATOR after unloading (Kafka leaves such partitions out).
    pub fn list_groups(
        &self,
        states_filter: &[StrBytes],
        types_filter: &[StrBytes],
    ) -> Result<Vec<ListedGroup>, ResponseError> {
        match self.status {
            CoordinatorStatus::Loading => return Err(ResponseError::CoordinatorLoadInProgress),
            CoordinatorStatus::Unloaded => return Err(ResponseError::NotCoordinator),
            CoordinatorStatus::Active => {}
        }
        let state_matches = |group: &ClassicGroup| {
            states_filter.is_empty()
                || states_filter
                    .iter()
                    .any(|s| s.trim().eq_ignore_ascii_case(group.state().as_str()))
        };
        let type_matches = |group_type: &str| {
            types_filter.is_empty()
                || types_filter
                    .iter()
                    .any(|t| t.trim().eq_ignore_ascii_case(group_type))
        };
        let mut listed: Vec<ListedGroup> = Vec::new();
        if type_matches(CLASSIC_GROUP_TYPE) {
            listed.extend(
                self.groups
                    .values()
                    .filter(|g| !g.is(GroupState::Dead) && state_matches(g))
                    .map(|g| {
                        ListedGroup::default()
                            .with_group_id(str_bytes(&g.group_id).into())
                            .with_protocol_type(str_bytes(g.protocol_type().unwrap_or_default()))
                            .with_group_state(str_bytes(g.state().as_str()))
                            .with_group_type(str_bytes(CLASSIC_GROUP_TYPE))
                    }),
            );
        }
        if type_matches(CONSUMER_GROUP_TYPE) {
            listed.extend(
                self.consumer_groups
                    .values()
                    .filter(|g| {
                        states_filter.is_empty()
                            || states_filter
                                .iter()
                                .any(|s| s.trim().eq_ignore_ascii_case(g.state().as_str()))
                    })
                    .map(|g| {
                        // Kafka lists consumer groups with the consumer protocol type.
                        ListedGroup::default()
                            .with_group_id(str_bytes(&g.group_id).into())
                            .with_protocol_type(str_bytes(CONSUMER_GROUP_TYPE))
                            .with_group_state(str_bytes(g.state().as_str()))
                            .with_group_type(str_bytes(CONSUMER_GROUP_TYPE))
                    }),
            );
        }
        listed.sort_by(|a, b| a.group_id.cmp(&b.group_id));
        Ok(listed)
    }
}
