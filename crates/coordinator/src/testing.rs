//! Test doubles: a [`Harness`] that plays the broker around a [`GroupCoordinator`]
//! (a log, a clock, a request counter), request builders, and introspection types.
//! Behind the `testing` feature, for this crate's tests and the broker's.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::consumer_group_heartbeat_request::TopicPartitions as HeartbeatTopicPartitions;
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::leave_group_request::MemberIdentity;
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::offset_fetch_response::OffsetFetchResponseGroup;
use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use kafka_protocol::messages::{
    ConsumerGroupDescribeRequest, ConsumerGroupDescribeResponse, ConsumerGroupHeartbeatRequest,
    ConsumerGroupHeartbeatResponse,
};
use kafka_protocol::messages::{
    ConsumerProtocolSubscription, DeleteGroupsRequest, DeleteGroupsResponse, DescribeGroupsRequest,
    DescribeGroupsResponse, GroupId, HeartbeatRequest, HeartbeatResponse, JoinGroupRequest,
    JoinGroupResponse, LeaveGroupRequest, LeaveGroupResponse, OffsetCommitRequest,
    OffsetCommitResponse, OffsetDeleteRequest, OffsetDeleteResponse, SyncGroupRequest,
    SyncGroupResponse, TopicName,
};
use kafka_protocol::protocol::{Encodable, StrBytes};
use sluice_protocol::kafka_protocol;
use uuid::Uuid;

use crate::record::consumer::TopicPartitions;
use crate::{TopicInfo, TopicsImage};

use crate::record::GroupMetadataValue;
use crate::{
    AppendFailed, AppendToken, Effect, GroupConfig, GroupCoordinator, GroupRequest, GroupResponse,
    GroupState, Input, OffsetFetchGroup, OffsetFetchTopic, OffsetsRecord, RequestId,
};

/// A group as the tests see it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupDebug {
    /// Group id.
    pub group_id: String,
    /// State.
    pub state: GroupState,
    /// Generation.
    pub generation: i32,
    /// Protocol type.
    pub protocol_type: Option<String>,
    /// Selected protocol.
    pub protocol_name: Option<String>,
    /// Leader.
    pub leader: Option<String>,
    /// Members in join order.
    pub members: Vec<MemberDebug>,
    /// The group as last made durable.
    pub persisted: Option<GroupMetadataValue>,
}

/// A member as the tests see it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemberDebug {
    /// Member id.
    pub member_id: String,
    /// Static membership id.
    pub group_instance_id: Option<String>,
    /// Current assignment.
    pub assignment: Bytes,
    /// When its session expires, if a heartbeat timer runs.
    pub heartbeat_deadline_ms: Option<i64>,
}

/// Latest API versions the coordinator serves.
pub mod version {
    /// JoinGroup.
    pub const JOIN: i16 = 9;
    /// SyncGroup.
    pub const SYNC: i16 = 5;
    /// Heartbeat.
    pub const HEARTBEAT: i16 = 4;
    /// LeaveGroup.
    pub const LEAVE: i16 = 5;
    /// OffsetCommit.
    pub const COMMIT: i16 = 9;
    /// OffsetFetch.
    pub const FETCH: i16 = 9;
    /// DescribeGroups.
    pub const DESCRIBE: i16 = 6;
    /// DeleteGroups.
    pub const DELETE: i16 = 2;
    /// OffsetDelete.
    pub const OFFSET_DELETE: i16 = 0;
}

/// Settings for tests: no initial rebalance delay, sessions from 1 s to 60 s, new members
/// wait 30 s at most, seed 1; offset retention as in Kafka.
pub fn test_config() -> GroupConfig {
    GroupConfig {
        min_session_timeout: Duration::from_millis(1_000),
        max_session_timeout: Duration::from_millis(60_000),
        initial_rebalance_delay: Duration::ZERO,
        new_member_join_timeout: Duration::from_millis(30_000),
        member_id_seed: 1,
        ..GroupConfig::default()
    }
}

/// A string as kafka-protocol wants it.
pub fn s(value: &str) -> StrBytes {
    StrBytes::from_string(value.to_string())
}

/// A "consumer" protocol subscription (version 0) to `topics`, as Kafka clients send it.
pub fn subscription(topics: &[&str]) -> Bytes {
    let subscription =
        ConsumerProtocolSubscription::default().with_topics(topics.iter().map(|t| s(t)).collect());
    let mut buf = BytesMut::new();
    buf.extend_from_slice(&0i16.to_be_bytes());
    subscription.encode(&mut buf, 0).unwrap();
    buf.freeze()
}

/// JoinGroup as a consumer with the "range" protocol subscribed to topic "t", session
/// timeout 10 s, rebalance timeout 20 s.
pub fn join_request(group: &str, member_id: &str) -> JoinGroupRequest {
    JoinGroupRequest::default()
        .with_group_id(GroupId(s(group)))
        .with_member_id(s(member_id))
        .with_session_timeout_ms(10_000)
        .with_rebalance_timeout_ms(20_000)
        .with_protocol_type(s("consumer"))
        .with_protocols(vec![protocol("range", subscription(&["t"]))])
}

/// One JoinGroup protocol.
pub fn protocol(name: &str, metadata: Bytes) -> JoinGroupRequestProtocol {
    JoinGroupRequestProtocol::default()
        .with_name(s(name))
        .with_metadata(metadata)
}

/// SyncGroup v5 with the protocol type and name of [`join_request`].
pub fn sync_request(
    group: &str,
    member_id: &str,
    generation: i32,
    assignments: &[(&str, &[u8])],
) -> SyncGroupRequest {
    SyncGroupRequest::default()
        .with_group_id(GroupId(s(group)))
        .with_member_id(s(member_id))
        .with_generation_id(generation)
        .with_protocol_type(Some(s("consumer")))
        .with_protocol_name(Some(s("range")))
        .with_assignments(
            assignments
                .iter()
                .map(|(member, assignment)| {
                    SyncGroupRequestAssignment::default()
                        .with_member_id(s(member))
                        .with_assignment(Bytes::copy_from_slice(assignment))
                })
                .collect(),
        )
}

/// Heartbeat.
pub fn heartbeat_request(group: &str, member_id: &str, generation: i32) -> HeartbeatRequest {
    HeartbeatRequest::default()
        .with_group_id(GroupId(s(group)))
        .with_member_id(s(member_id))
        .with_generation_id(generation)
}

/// LeaveGroup v3+ for members given as (member id, group instance id).
pub fn leave_request(group: &str, members: &[(&str, Option<&str>)]) -> LeaveGroupRequest {
    LeaveGroupRequest::default()
        .with_group_id(GroupId(s(group)))
        .with_members(
            members
                .iter()
                .map(|(member, instance)| {
                    MemberIdentity::default()
                        .with_member_id(s(member))
                        .with_group_instance_id(instance.map(s))
                })
                .collect(),
        )
}

/// OffsetCommit of (topic, partition, offset) triples, with metadata "m".
pub fn commit_request(
    group: &str,
    member_id: &str,
    generation: i32,
    offsets: &[(&str, i32, i64)],
) -> OffsetCommitRequest {
    let mut topics: Vec<OffsetCommitRequestTopic> = Vec::new();
    for (topic, partition, offset) in offsets {
        let entry = OffsetCommitRequestPartition::default()
            .with_partition_index(*partition)
            .with_committed_offset(*offset)
            .with_committed_metadata(Some(s("m")));
        match topics.iter_mut().find(|t| t.name.as_str() == *topic) {
            Some(t) => t.partitions.push(entry),
            None => topics.push(
                OffsetCommitRequestTopic::default()
                    .with_name(TopicName(s(topic)))
                    .with_partitions(vec![entry]),
            ),
        }
    }
    OffsetCommitRequest::default()
        .with_group_id(GroupId(s(group)))
        .with_member_id(s(member_id))
        .with_generation_id_or_member_epoch(generation)
        .with_topics(topics)
}

/// OffsetFetch for one group: all partitions (`None`) or the listed (topic, partition)s.
pub fn fetch_request(group: &str, partitions: Option<&[(&str, i32)]>) -> OffsetFetchGroup {
    OffsetFetchGroup {
        group_id: GroupId(s(group)),
        topics: partitions.map(|list| {
            let mut topics: Vec<OffsetFetchTopic> = Vec::new();
            for (topic, partition) in list {
                match topics.iter_mut().find(|t| t.name.as_str() == *topic) {
                    Some(t) => t.partitions.push(*partition),
                    None => topics.push(OffsetFetchTopic {
                        name: TopicName(s(topic)),
                        partitions: vec![*partition],
                    }),
                }
            }
            topics
        }),
        require_stable: false,
        member_id: None,
        member_epoch: -1,
    }
}

/// DescribeGroups.
pub fn describe_request(groups: &[&str]) -> DescribeGroupsRequest {
    DescribeGroupsRequest::default().with_groups(groups.iter().map(|g| GroupId(s(g))).collect())
}

/// DeleteGroups.
pub fn delete_request(groups: &[&str]) -> DeleteGroupsRequest {
    DeleteGroupsRequest::default().with_groups_names(groups.iter().map(|g| GroupId(s(g))).collect())
}

/// OffsetDelete of (topic, partition) pairs.
pub fn offset_delete_request(group: &str, partitions: &[(&str, i32)]) -> OffsetDeleteRequest {
    use kafka_protocol::messages::offset_delete_request::{
        OffsetDeleteRequestPartition, OffsetDeleteRequestTopic,
    };
    let mut topics: Vec<OffsetDeleteRequestTopic> = Vec::new();
    for (topic, partition) in partitions {
        let entry = OffsetDeleteRequestPartition::default().with_partition_index(*partition);
        match topics.iter_mut().find(|t| t.name.as_str() == *topic) {
            Some(t) => t.partitions.push(entry),
            None => topics.push(
                OffsetDeleteRequestTopic::default()
                    .with_name(TopicName(s(topic)))
                    .with_partitions(vec![entry]),
            ),
        }
    }
    OffsetDeleteRequest::default()
        .with_group_id(GroupId(s(group)))
        .with_topics(topics)
}

/// The id tests give topic `name`: stable across calls, distinct per name.
pub fn topic_id(name: &str) -> Uuid {
    // FNV-1a, so ids do not depend on the order topics are listed in.
    let mut hash: u128 = 0x6c62_272e_07bb_0142_62b8_2175_6295_c58d;
    for byte in name.bytes() {
        hash ^= u128::from(byte);
        hash = hash.wrapping_mul(0x0000_0000_0100_0000_0000_0000_0000_013b);
    }
    Uuid::from_u128(hash)
}

/// A topic snapshot of (name, partition count) pairs, ids from [`topic_id`].
pub fn topics(list: &[(&str, i32)]) -> Arc<TopicsImage> {
    Arc::new(TopicsImage::new(list.iter().map(|(name, partitions)| {
        TopicInfo {
            id: topic_id(name),
            name: (*name).to_string(),
            partitions: *partitions,
        }
    })))
}

/// Partitions by topic name, as the consumer group records hold them (by id).
pub fn by_id(partitions: &[(&str, &[i32])]) -> TopicPartitions {
    partitions
        .iter()
        .filter(|(_, ps)| !ps.is_empty())
        .map(|(topic, ps)| (topic_id(topic), ps.iter().copied().collect()))
        .collect()
}

/// A ConsumerGroupHeartbeat joining `group` (epoch 0) subscribed to `subscribed`, with a
/// 30 s rebalance timeout, as a client sends its first full request.
pub fn cg_join(group: &str, member_id: &str, subscribed: &[&str]) -> ConsumerGroupHeartbeatRequest {
    ConsumerGroupHeartbeatRequest::default()
        .with_group_id(GroupId(s(group)))
        .with_member_id(s(member_id))
        .with_member_epoch(0)
        .with_rebalance_timeout_ms(30_000)
        .with_subscribed_topic_names(Some(subscribed.iter().map(|t| TopicName(s(t))).collect()))
        .with_topic_partitions(Some(Vec::new()))
}

/// A ConsumerGroupHeartbeat at `epoch` reporting `owned` partitions (`None` leaves the
/// field out, as a heartbeat with nothing new does).
pub fn cg_heartbeat(
    group: &str,
    member_id: &str,
    epoch: i32,
    owned: Option<&TopicPartitions>,
) -> ConsumerGroupHeartbeatRequest {
    ConsumerGroupHeartbeatRequest::default()
        .with_group_id(GroupId(s(group)))
        .with_member_id(s(member_id))
        .with_member_epoch(epoch)
        .with_rebalance_timeout_ms(-1)
        .with_topic_partitions(owned.map(|owned| {
            owned
                .iter()
                .map(|(topic, ps)| {
                    HeartbeatTopicPartitions::default()
                        .with_topic_id(*topic)
                        .with_partitions(ps.iter().copied().collect())
                })
                .collect()
        }))
}

/// ConsumerGroupDescribe.
pub fn cg_describe(groups: &[&str]) -> ConsumerGroupDescribeRequest {
    ConsumerGroupDescribeRequest::default()
        .with_group_ids(groups.iter().map(|g| GroupId(s(g))).collect())
}

/// The assignment of a heartbeat response by topic id; `None` when it carries none.
pub fn response_assignment(response: &ConsumerGroupHeartbeatResponse) -> Option<TopicPartitions> {
    response.assignment.as_ref().map(|a| {
        a.topic_partitions
            .iter()
            .filter(|tp| !tp.partitions.is_empty())
            .map(|tp| (tp.topic_id, tp.partitions.iter().copied().collect()))
            .collect()
    })
}

impl GroupResponse {
    /// The ConsumerGroupHeartbeat response, or a panic.
    pub fn cg_heartbeat(self) -> ConsumerGroupHeartbeatResponse {
        match self {
            Self::ConsumerGroupHeartbeat(r) => r,
            other => panic!("expected a ConsumerGroupHeartbeat response, got {other:?}"),
        }
    }

    /// The ConsumerGroupDescribe response, or a panic.
    pub fn cg_describe(self) -> ConsumerGroupDescribeResponse {
        match self {
            Self::ConsumerGroupDescribe(r) => r,
            other => panic!("expected a ConsumerGroupDescribe response, got {other:?}"),
        }
    }

    /// The JoinGroup response, or a panic.
    pub fn join(self) -> JoinGroupResponse {
        match self {
            Self::JoinGroup(r) => r,
            other => panic!("expected JoinGroup, got {other:?}"),
        }
    }

    /// The SyncGroup response, or a panic.
    pub fn sync(self) -> SyncGroupResponse {
        match self {
            Self::SyncGroup(r) => r,
            other => panic!("expected SyncGroup, got {other:?}"),
        }
    }

    /// The Heartbeat response, or a panic.
    pub fn heartbeat(self) -> HeartbeatResponse {
        match self {
            Self::Heartbeat(r) => r,
            other => panic!("expected Heartbeat, got {other:?}"),
        }
    }

    /// The LeaveGroup response, or a panic.
    pub fn leave(self) -> LeaveGroupResponse {
        match self {
            Self::LeaveGroup(r) => r,
            other => panic!("expected LeaveGroup, got {other:?}"),
        }
    }

    /// The OffsetCommit response, or a panic.
    pub fn commit(self) -> OffsetCommitResponse {
        match self {
            Self::OffsetCommit(r) => r,
            other => panic!("expected OffsetCommit, got {other:?}"),
        }
    }

    /// The OffsetFetch response, or a panic.
    pub fn fetch(self) -> OffsetFetchResponseGroup {
        match self {
            Self::OffsetFetch(r) => r,
            other => panic!("expected OffsetFetch, got {other:?}"),
        }
    }

    /// The DescribeGroups response, or a panic.
    pub fn describe(self) -> DescribeGroupsResponse {
        match self {
            Self::DescribeGroups(r) => r,
            other => panic!("expected DescribeGroups, got {other:?}"),
        }
    }

    /// The DeleteGroups response, or a panic.
    pub fn delete(self) -> DeleteGroupsResponse {
        match self {
            Self::DeleteGroups(r) => r,
            other => panic!("expected DeleteGroups, got {other:?}"),
        }
    }

    /// The OffsetDelete response, or a panic.
    pub fn offset_delete(self) -> OffsetDeleteResponse {
        match self {
            Self::OffsetDelete(r) => r,
            other => panic!("expected OffsetDelete, got {other:?}"),
        }
    }
}

/// Plays the broker: assigns request ids, keeps the clock, appends to an in-memory log,
/// and checks that each request is answered exactly once.
#[derive(Debug)]
pub struct Harness {
    /// The coordinator under test.
    pub coordinator: GroupCoordinator,
    /// Its settings (reused by [`Harness::reload`]).
    pub config: GroupConfig,
    /// The clock.
    pub now_ms: i64,
    /// Answer appends as durable as soon as they are emitted.
    pub auto_append: bool,
    /// Responses not yet taken by the test.
    pub responses: BTreeMap<RequestId, GroupResponse>,
    /// Appends emitted and not yet completed, oldest first.
    pub appends: VecDeque<(AppendToken, Vec<OffsetsRecord>)>,
    /// Durable records in log order.
    pub log: Vec<OffsetsRecord>,
    /// Requests sent and not answered.
    pub outstanding: BTreeSet<RequestId>,
    /// Every request ever answered.
    pub answered: BTreeSet<RequestId>,
    next_request: u64,
    loads: u64,
}

impl Harness {
    /// A loaded coordinator on an empty partition at time 0 that makes appends durable at
    /// once.
    pub fn new(config: GroupConfig) -> Self {
        let coordinator = GroupCoordinator::load(&config, 0, Vec::new()).unwrap();
        Self {
            coordinator,
            config,
            now_ms: 0,
            auto_append: true,
            responses: BTreeMap::new(),
            appends: VecDeque::new(),
            log: Vec::new(),
            outstanding: BTreeSet::new(),
            answered: BTreeSet::new(),
            next_request: 0,
            loads: 0,
        }
    }

    /// Feeds one input and carries out the effects.
    pub fn input(&mut self, input: Input) {
        let effects = self.coordinator.handle(self.now_ms, input);
        self.carry_out(effects);
    }

    fn carry_out(&mut self, effects: Vec<Effect>) {
        let mut durable = Vec::new();
        for effect in effects {
            match effect {
                Effect::Respond { id, response } => {
                    assert!(
                        self.outstanding.remove(&id),
                        "{id:?} answered twice or never sent: {response:?}"
                    );
                    self.answered.insert(id);
                    self.responses.insert(id, response);
                }
                Effect::Append { token, records } => {
                    if self.auto_append {
                        self.log.extend(records);
                        durable.push(token);
                    } else {
                        self.appends.push_back((token, records));
                    }
                }
            }
        }
        for token in durable {
            self.input(Input::Appended {
                token,
                result: Ok(()),
            });
        }
    }

    /// Sends a request with client id "client" and host "/127.0.0.1".
    pub fn send(&mut self, api_version: i16, body: GroupRequest) -> RequestId {
        self.send_as("client", api_version, body)
    }

    /// Sends a request from `client_id`.
    pub fn send_as(&mut self, client_id: &str, api_version: i16, body: GroupRequest) -> RequestId {
        self.next_request += 1;
        let id = RequestId(self.next_request);
        self.outstanding.insert(id);
        self.input(Input::Request {
            id,
            api_version,
            client_id: client_id.to_string(),
            client_host: "/127.0.0.1".to_string(),
            body,
        });
        id
    }

    /// Takes the response to `id`, panicking if there is none yet.
    pub fn take(&mut self, id: RequestId) -> GroupResponse {
        self.responses
            .remove(&id)
            .unwrap_or_else(|| panic!("no response to {id:?} yet"))
    }

    /// Whether `id` has been answered and the answer not taken.
    pub fn has_response(&self, id: RequestId) -> bool {
        self.responses.contains_key(&id)
    }

    /// Moves the clock and ticks.
    pub fn advance(&mut self, ms: i64) {
        self.now_ms += ms;
        self.input(Input::Tick);
    }

    /// Completes the oldest outstanding append with `result`; its records join the log
    /// when it succeeds.
    pub fn complete_append(&mut self, result: Result<(), AppendFailed>) {
        let (token, records) = self.appends.pop_front().expect("an append in flight");
        if result.is_ok() {
            self.log.extend(records);
        }
        self.input(Input::Appended { token, result });
    }

    /// Completes every outstanding append successfully.
    pub fn complete_all_appends(&mut self) {
        while !self.appends.is_empty() {
            self.complete_append(Ok(()));
        }
    }

    /// Fails over: the coordinator is unloaded (appends in flight are lost) and a new
    /// one loads the log.
    pub fn reload(&mut self) {
        self.input(Input::Unloaded);
        self.appends.clear();
        self.loads += 1;
        let config = GroupConfig {
            member_id_seed: self.config.member_id_seed.wrapping_add(self.loads),
            ..self.config.clone()
        };
        self.coordinator = GroupCoordinator::load(&config, self.now_ms, self.log.clone()).unwrap();
    }

    /// The group, as introspection shows it.
    pub fn group(&self, group_id: &str) -> Option<GroupDebug> {
        self.coordinator
            .debug_groups()
            .into_iter()
            .find(|g| g.group_id == group_id)
    }

    /// JoinGroup with the latest version, following MEMBER_ID_REQUIRED once. Returns the
    /// request id of the join that waits for the rebalance.
    pub fn join(&mut self, client: &str, request: JoinGroupRequest) -> RequestId {
        let first = self.send_as(
            client,
            version::JOIN,
            GroupRequest::JoinGroup(request.clone()),
        );
        if !self.has_response(first) {
            return first;
        }
        let response = self.take(first).join();
        if response.error_code != kafka_protocol::ResponseError::MemberIdRequired.code() {
            self.responses
                .insert(first, GroupResponse::JoinGroup(response));
            return first;
        }
        self.send_as(
            client,
            version::JOIN,
            GroupRequest::JoinGroup(request.with_member_id(response.member_id)),
        )
    }

    /// Sends a ConsumerGroupHeartbeat (v1) with topic snapshot `topics` and returns its
    /// answer, which must have come (appends are made durable at once by default).
    pub fn cg(
        &mut self,
        request: ConsumerGroupHeartbeatRequest,
        topics: &Arc<TopicsImage>,
    ) -> ConsumerGroupHeartbeatResponse {
        let id = self.send(
            1,
            GroupRequest::ConsumerGroupHeartbeat {
                request,
                topics: topics.clone(),
            },
        );
        self.take(id).cg_heartbeat()
    }

    /// Forms a Stable group of `clients` (dynamic members, joined in order): each joins,
    /// the join phase completes, the leader assigns `"{client}"` bytes to each member and
    /// everyone syncs. Returns (member ids in client order, generation).
    pub fn stable_group(&mut self, group: &str, clients: &[&str]) -> (Vec<String>, i32) {
        let mut member_ids = Vec::new();
        let mut joins = Vec::new();
        for client in clients {
            let join = self.join(client, join_request(group, ""));
            joins.push(join);
        }
        // Rejoin members that were answered by a rebalance that completed early.
        for (index, client) in clients.iter().enumerate() {
            if self.has_response(joins[index])
                && joins.iter().skip(index + 1).any(|j| !self.has_response(*j))
            {
                let response = self.take(joins[index]).join();
                let rejoin = self.send_as(
                    client,
                    version::JOIN,
                    GroupRequest::JoinGroup(join_request(group, response.member_id.as_str())),
                );
                joins[index] = rejoin;
            }
        }
        let timeout = 20_000;
        if joins.iter().any(|j| !self.has_response(*j)) {
            self.advance(timeout);
        }
        let mut generation = -1;
        let mut leader = String::new();
        for join in &joins {
            let response = self.take(*join).join();
            assert_eq!(response.error_code, 0, "{response:?}");
            generation = response.generation_id;
            leader = response.leader.to_string();
            member_ids.push(response.member_id.to_string());
        }
        let assignments: Vec<(String, Vec<u8>)> = member_ids
            .iter()
            .zip(clients)
            .map(|(member, client)| (member.clone(), client.as_bytes().to_vec()))
            .collect();
        let mut syncs = Vec::new();
        for (member, client) in member_ids.iter().zip(clients) {
            let request = if *member == leader {
                let borrowed: Vec<(&str, &[u8])> = assignments
                    .iter()
                    .map(|(m, a)| (m.as_str(), a.as_slice()))
                    .collect();
                sync_request(group, member, generation, &borrowed)
            } else {
                sync_request(group, member, generation, &[])
            };
            syncs.push(self.send_as(client, version::SYNC, GroupRequest::SyncGroup(request)));
        }
        for sync in syncs {
            let response = self.take(sync).sync();
            assert_eq!(response.error_code, 0, "{response:?}");
        }
        (member_ids, generation)
    }
}
