//! Runs [`Op`]s against a coordinator through the test harness, playing both the clients
//! and the broker's log, and checks the invariants.

use std::collections::{BTreeMap, BTreeSet};

use bytes::{Bytes, BytesMut};
use sluice_coordinator::record::{GroupMetadataValue, OffsetCommitValue, RecordKey, RecordValue};
use sluice_coordinator::testing::{
    Harness, commit_request, delete_request, describe_request, heartbeat_request, join_request,
    leave_request, offset_delete_request, protocol, s, subscription, sync_request, test_config,
};
use sluice_coordinator::{
    AppendFailed, AppendToken, CoordinatorStatus, GroupConfig, GroupRequest, GroupResponse,
    GroupState, Input, OffsetFetchGroup, OffsetFetchTopic, OffsetsRecord, RequestId,
    offset_fetch_response,
};
use sluice_protocol::ResponseError;
use sluice_protocol::kafka_protocol::messages::{GroupId, LeaveGroupRequest, TopicName};
use sluice_protocol::kafka_protocol::protocol::Encodable;

use crate::ops::{CLIENTS, GROUPS, Op};

const TOPICS: [&str; 2] = ["t", "u"];

/// One emitted append, in emission order.
struct Slot {
    token: AppendToken,
    records: Vec<OffsetsRecord>,
    state: SlotState,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum SlotState {
    InFlight,
    Durable,
    Failed,
}

/// What a cooperating client does next.
#[derive(Clone, Copy, Default, PartialEq, Eq)]
enum Next {
    #[default]
    Join,
    Sync,
    Heartbeat,
}

/// What a client knows about its membership.
#[derive(Default)]
struct Client {
    next: Next,
    /// Its JoinGroup or SyncGroup waiting for an answer: a client has one at a time.
    waiting: Option<RequestId>,
    /// Bumped on restart: answers to an earlier incarnation's requests are checked but
    /// no longer update the client.
    incarnation: u32,
    member_id: String,
    generation: i32,
    /// The members of the generation, if this client leads it.
    leader_view: Option<Vec<(String, Option<String>)>>,
    skip_assignment: bool,
}

/// What was sent, to interpret the answer.
enum Sent {
    Join {
        client: usize,
        incarnation: u32,
    },
    Sync {
        client: usize,
        generation: i32,
        member_id: String,
    },
    Heartbeat {
        client: usize,
        incarnation: u32,
    },
    Commit {
        group: &'static str,
        offsets: Vec<(&'static str, i32, i64)>,
    },
    Fetch {
        group: &'static str,
    },
    DeleteGroups {
        groups: Vec<&'static str>,
    },
    Other,
}

/// The log as a replay sees it: latest value per key.
#[derive(Default)]
struct Replay {
    offsets: BTreeMap<(String, String, i32), OffsetCommitValue>,
    metadata: BTreeMap<String, GroupMetadataValue>,
}

fn replay<'a>(records: impl IntoIterator<Item = &'a OffsetsRecord>) -> Replay {
    let mut latest = BTreeMap::new();
    for record in records {
        let decoded = record
            .decode()
            .expect("the coordinator writes valid records");
        latest.insert(decoded.key, decoded.value);
    }
    let mut replay = Replay::default();
    for (key, value) in latest {
        match (key, value) {
            (
                RecordKey::OffsetCommit {
                    group,
                    topic,
                    partition,
                },
                Some(RecordValue::OffsetCommit(v)),
            ) => {
                replay.offsets.insert((group, topic, partition), v);
            }
            (RecordKey::GroupMetadata { group }, Some(RecordValue::GroupMetadata(v))) => {
                replay.metadata.insert(group, v);
            }
            _ => {}
        }
    }
    replay
}

fn identity(member_id: &str, instance: Option<&str>) -> String {
    instance.unwrap_or(member_id).to_string()
}

fn assignment_for(generation: i32, identity: &str) -> Bytes {
    Bytes::from(format!("{generation}:{identity}"))
}

pub(crate) struct Simulation {
    h: Harness,
    clients: Vec<Client>,
    sent: BTreeMap<RequestId, (i16, Sent)>,
    /// Durable records of earlier loads.
    earlier_log: Vec<OffsetsRecord>,
    slots: Vec<Slot>,
    /// Per group, within one load of it: the highest generation seen.
    generations: BTreeMap<String, i32>,
    /// Per (group, generation), within one load: the leader's identity.
    leaders: BTreeMap<(String, i32), String>,
    /// Per (group, generation), within one load: the client that was told it leads.
    believed_leaders: BTreeMap<(String, i32), usize>,
}

impl Simulation {
    pub(crate) fn new() -> Self {
        let config = GroupConfig {
            // Members gather during the first rebalance, as with Kafka's default.
            initial_rebalance_delay: std::time::Duration::from_millis(3_000),
            offsets_retention: std::time::Duration::from_millis(400_000),
            offsets_retention_check_interval: std::time::Duration::from_millis(60_000),
            ..test_config()
        };
        let mut h = Harness::new(config);
        h.auto_append = false;
        Self {
            h,
            clients: (0..CLIENTS.len())
                .map(|_| Client {
                    generation: -1,
                    ..Client::default()
                })
                .collect(),
            sent: BTreeMap::new(),
            earlier_log: Vec::new(),
            slots: Vec::new(),
            generations: BTreeMap::new(),
            leaders: BTreeMap::new(),
            believed_leaders: BTreeMap::new(),
        }
    }

    fn send(&mut self, client: usize, api_version: i16, body: GroupRequest, sent: Sent) {
        let waits = matches!(
            body,
            GroupRequest::JoinGroup(_) | GroupRequest::SyncGroup(_)
        );
        let id = self
            .h
            .send_as(&format!("client{client}"), api_version, body);
        if waits {
            self.clients[client].waiting = Some(id);
        }
        self.sent.insert(id, (api_version, sent));
    }

    pub(crate) fn apply(&mut self, op: &Op) {
        if let Op::Cooperate { client } = *op {
            if self.clients[client].waiting.is_some() {
                return;
            }
            let step = match self.clients[client].next {
                Next::Join => Op::Join {
                    client,
                    version_pick: 3,
                    restart: false,
                    protocols: 0,
                    session_ms: 10_000,
                    rebalance_ms: 20_000,
                },
                Next::Sync => Op::Sync { client, v5: true },
                Next::Heartbeat => Op::Heartbeat { client },
            };
            return self.apply(&step);
        }
        match *op {
            Op::Cooperate { .. } => unreachable!("handled above"),
            Op::Join {
                client,
                version_pick,
                restart,
                protocols,
                session_ms,
                rebalance_ms,
            } => {
                let spec = &CLIENTS[client];
                if restart {
                    let incarnation = self.clients[client].incarnation + 1;
                    self.clients[client] = Client {
                        incarnation,
                        generation: -1,
                        ..Client::default()
                    };
                }
                let version = match spec.instance {
                    Some(_) => [5, 7, 9, 9][version_pick],
                    None => [3, 4, 7, 9][version_pick],
                };
                let protocols = match protocols {
                    0 => vec![protocol("range", subscription(&["t"]))],
                    _ => vec![
                        protocol("roundrobin", subscription(&["t", "u"])),
                        protocol("range", subscription(&["t", "u"])),
                    ],
                };
                let state = &self.clients[client];
                let request = join_request(spec.group, &state.member_id)
                    .with_session_timeout_ms(session_ms)
                    .with_rebalance_timeout_ms(rebalance_ms)
                    .with_protocols(protocols)
                    .with_group_instance_id(spec.instance.map(s));
                let sent = Sent::Join {
                    client,
                    incarnation: state.incarnation,
                };
                self.send(client, version, GroupRequest::JoinGroup(request), sent);
            }
            Op::Sync { client, v5 } => {
                let spec = &CLIENTS[client];
                let state = &self.clients[client];
                let generation = state.generation;
                let assignments: Vec<(String, Bytes)> = match &state.leader_view {
                    Some(view) if !state.skip_assignment => view
                        .iter()
                        .map(|(member, instance)| {
                            (
                                member.clone(),
                                assignment_for(generation, &identity(member, instance.as_deref())),
                            )
                        })
                        .collect(),
                    _ => Vec::new(),
                };
                let borrowed: Vec<(&str, &[u8])> = assignments
                    .iter()
                    .map(|(m, a)| (m.as_str(), a.as_ref()))
                    .collect();
                let mut request = sync_request(spec.group, &state.member_id, generation, &borrowed)
                    .with_group_instance_id(spec.instance.map(s));
                if !v5 {
                    request = request.with_protocol_type(None).with_protocol_name(None);
                }
                let sent = Sent::Sync {
                    client,
                    generation,
                    member_id: state.member_id.clone(),
                };
                self.send(
                    client,
                    if v5 { 5 } else { 3 },
                    GroupRequest::SyncGroup(request),
                    sent,
                );
            }
            Op::Heartbeat { client } => {
                let spec = &CLIENTS[client];
                let state = &self.clients[client];
                let request = heartbeat_request(spec.group, &state.member_id, state.generation)
                    .with_group_instance_id(spec.instance.map(s));
                let sent = Sent::Heartbeat {
                    client,
                    incarnation: state.incarnation,
                };
                self.send(client, 4, GroupRequest::Heartbeat(request), sent);
            }
            Op::Leave { client, how } => {
                let spec = &CLIENTS[client];
                let member_id = std::mem::take(&mut self.clients[client].member_id);
                let (version, request) = match how {
                    0 => (5, leave_request(spec.group, &[(&member_id, spec.instance)])),
                    1 if spec.instance.is_some() => {
                        (5, leave_request(spec.group, &[("", spec.instance)]))
                    }
                    _ => (
                        1,
                        LeaveGroupRequest::default()
                            .with_group_id(GroupId(s(spec.group)))
                            .with_member_id(s(&member_id)),
                    ),
                };
                self.clients[client].leader_view = None;
                self.clients[client].next = Next::Join;
                self.send(
                    client,
                    version,
                    GroupRequest::LeaveGroup(request),
                    Sent::Other,
                );
            }
            Op::Commit {
                client,
                simple,
                topic,
                partition,
                offset,
                version_pick,
                big_metadata,
            } => {
                let spec = &CLIENTS[client];
                let state = &self.clients[client];
                let mut request = if simple {
                    commit_request(spec.group, "", -1, &[(TOPICS[topic], partition, offset)])
                } else {
                    commit_request(
                        spec.group,
                        &state.member_id,
                        state.generation,
                        &[(TOPICS[topic], partition, offset)],
                    )
                    .with_group_instance_id(spec.instance.map(s))
                };
                if big_metadata {
                    request.topics[0].partitions[0].committed_metadata =
                        Some(s(&"x".repeat(5_000)));
                }
                let sent = Sent::Commit {
                    group: spec.group,
                    offsets: vec![(TOPICS[topic], partition, offset)],
                };
                self.send(
                    client,
                    [2, 8, 9][version_pick],
                    GroupRequest::OffsetCommit(request),
                    sent,
                );
            }
            Op::Fetch {
                group,
                all,
                require_stable,
                version_pick,
            } => {
                let version = [1, 7, 8][version_pick];
                let request = OffsetFetchGroup {
                    group_id: GroupId(s(GROUPS[group])),
                    topics: (!all).then(|| {
                        TOPICS
                            .iter()
                            .map(|t| OffsetFetchTopic {
                                name: TopicName(s(t)),
                                partitions: vec![0, 1, 2],
                            })
                            .collect()
                    }),
                    require_stable: require_stable && version >= 7,
                    member_id: None,
                    member_epoch: -1,
                };
                let sent = Sent::Fetch {
                    group: GROUPS[group],
                };
                self.send(0, version, GroupRequest::OffsetFetch(request), sent);
            }
            Op::Describe { version_pick } => {
                let version = [0, 5, 6][version_pick];
                self.send(
                    0,
                    version,
                    GroupRequest::DescribeGroups(describe_request(&GROUPS)),
                    Sent::Other,
                );
            }
            Op::List => {
                let listed = self.h.coordinator.list_groups(&[], &[]).expect("active");
                let listed: Vec<_> = listed
                    .iter()
                    .map(|g| (g.group_id.to_string(), g.group_state.to_string()))
                    .collect();
                let expected: Vec<_> = self
                    .h
                    .coordinator
                    .debug_groups()
                    .into_iter()
                    .filter(|g| g.state != GroupState::Dead)
                    .map(|g| (g.group_id, g.state.as_str().to_string()))
                    .collect();
                assert_eq!(listed, expected);
            }
            Op::DeleteGroups { which } => {
                let groups = match which {
                    0 => vec!["g0"],
                    1 => vec!["g1"],
                    _ => vec!["g0", "g1"],
                };
                let request = delete_request(&groups);
                self.send(
                    0,
                    2,
                    GroupRequest::DeleteGroups(request),
                    Sent::DeleteGroups { groups },
                );
            }
            Op::OffsetDelete {
                group,
                topic,
                partition,
            } => {
                let request = offset_delete_request(GROUPS[group], &[(TOPICS[topic], partition)]);
                self.send(0, 0, GroupRequest::OffsetDelete(request), Sent::Other);
            }
            Op::Advance { ms } => self.h.advance(ms),
            Op::CompleteAppend { slot, outcome } => {
                let in_flight: Vec<usize> = (0..self.slots.len())
                    .filter(|&i| self.slots[i].state == SlotState::InFlight)
                    .collect();
                if !in_flight.is_empty() {
                    let index = in_flight[slot.index(in_flight.len())];
                    let result = match outcome {
                        0..6 => Ok(()),
                        6 => Err(AppendFailed::NotLeader),
                        7 => Err(AppendFailed::TimedOut),
                        8 => Err(AppendFailed::NotEnoughReplicas),
                        _ => Err(AppendFailed::TooLarge),
                    };
                    self.complete(index, result);
                }
            }
            Op::CompleteOldest => {
                if let Some(index) = self
                    .slots
                    .iter()
                    .position(|slot| slot.state == SlotState::InFlight)
                {
                    self.complete(index, Ok(()));
                }
            }
            Op::CompleteAll => self.complete_all(),
            Op::Reload => self.reload(),
        }
        self.collect();
    }

    fn complete(&mut self, index: usize, result: Result<(), AppendFailed>) {
        let slot = &mut self.slots[index];
        slot.state = if result.is_ok() {
            SlotState::Durable
        } else {
            SlotState::Failed
        };
        let token = slot.token;
        self.h.input(Input::Appended { token, result });
        // Answers are checked against the state they were given in.
        self.collect();
    }

    fn complete_all(&mut self) {
        for index in 0..self.slots.len() {
            if self.slots[index].state == SlotState::InFlight {
                self.complete(index, Ok(()));
            }
        }
    }

    /// Every durable record, in log order.
    fn durable_log(&self) -> Vec<OffsetsRecord> {
        let mut log = self.earlier_log.clone();
        for slot in &self.slots {
            if slot.state == SlotState::Durable {
                log.extend(slot.records.iter().cloned());
            }
        }
        log
    }

    /// The durable records the coordinator has applied: those before the first append
    /// whose outcome is still unknown.
    fn applied_log(&self) -> Vec<OffsetsRecord> {
        let mut log = self.earlier_log.clone();
        for slot in &self.slots {
            match slot.state {
                SlotState::InFlight => break,
                SlotState::Durable => log.extend(slot.records.iter().cloned()),
                SlotState::Failed => {}
            }
        }
        log
    }

    /// Fails over: appends in flight are lost; a new coordinator loads the durable log.
    fn reload(&mut self) {
        for slot in &mut self.slots {
            if slot.state == SlotState::InFlight {
                slot.state = SlotState::Failed;
            }
        }
        let log = self.durable_log();
        self.h.log = log.clone();
        self.h.reload();
        self.earlier_log = log;
        self.slots.clear();
        self.generations.clear();
        self.leaders.clear();
        self.believed_leaders.clear();
        self.collect();
        // The new coordinator is exactly what the log says.
        let replayed = replay(&self.earlier_log);
        assert_eq!(self.h.coordinator.debug_offsets(), replayed.offsets);
        let groups = self.h.coordinator.debug_groups();
        for group in &groups {
            match replayed.metadata.get(&group.group_id) {
                Some(value) => {
                    assert_eq!(group.persisted.as_ref(), Some(value));
                    assert_eq!(group.generation, value.generation);
                    let expected = if value.members.is_empty() {
                        GroupState::Empty
                    } else {
                        GroupState::Stable
                    };
                    assert_eq!(group.state, expected);
                    let members: Vec<_> = group
                        .members
                        .iter()
                        .map(|m| (&m.member_id, &m.assignment))
                        .collect();
                    let persisted: Vec<_> = value
                        .members
                        .iter()
                        .map(|m| (&m.member_id, &m.assignment))
                        .collect();
                    assert_eq!(members, persisted);
                }
                None => {
                    assert!(group.persisted.is_none());
                    assert!(
                        replayed
                            .offsets
                            .keys()
                            .any(|(g, _, _)| *g == group.group_id)
                    );
                    assert_eq!(group.state, GroupState::Empty);
                }
            }
        }
        let loaded: BTreeSet<_> = groups.iter().map(|g| g.group_id.clone()).collect();
        let expected: BTreeSet<_> = replayed
            .metadata
            .keys()
            .cloned()
            .chain(replayed.offsets.keys().map(|(g, _, _)| g.clone()))
            .collect();
        assert_eq!(loaded, expected);
    }

    /// Takes new appends and answers.
    fn collect(&mut self) {
        while let Some((token, records)) = self.h.appends.pop_front() {
            self.slots.push(Slot {
                token,
                records,
                state: SlotState::InFlight,
            });
        }
        let responses = std::mem::take(&mut self.h.responses);
        for (id, response) in responses {
            for client in &mut self.clients {
                if client.waiting == Some(id) {
                    client.waiting = None;
                }
            }
            let (version, sent) = self.sent.remove(&id).expect("a response to a request sent");
            assert!(
                encodes(&response, version),
                "{response:?} does not encode at v{version}"
            );
            self.observe(sent, response);
        }
    }

    fn observe(&mut self, sent: Sent, response: GroupResponse) {
        match (sent, response) {
            (
                Sent::Join {
                    client,
                    incarnation,
                },
                GroupResponse::JoinGroup(r),
            ) => {
                let group = CLIENTS[client].group.to_string();
                if r.error_code == 0 && r.leader == r.member_id {
                    let believer = self
                        .believed_leaders
                        .entry((group, r.generation_id))
                        .or_insert(client);
                    assert_eq!(
                        *believer, client,
                        "two clients lead generation {}",
                        r.generation_id
                    );
                }
                let state = &mut self.clients[client];
                if state.incarnation != incarnation {
                    return;
                }
                match ResponseError::try_from_code(r.error_code) {
                    None => {
                        state.next = Next::Sync;
                        state.member_id = r.member_id.to_string();
                        state.generation = r.generation_id;
                        state.skip_assignment = r.skip_assignment;
                        state.leader_view = (r.leader == r.member_id).then(|| {
                            r.members
                                .iter()
                                .map(|m| {
                                    (
                                        m.member_id.to_string(),
                                        m.group_instance_id.as_ref().map(|i| i.to_string()),
                                    )
                                })
                                .collect()
                        });
                    }
                    Some(ResponseError::MemberIdRequired) => {
                        state.member_id = r.member_id.to_string()
                    }
                    Some(ResponseError::UnknownMemberId | ResponseError::FencedInstanceId) => {
                        state.member_id.clear();
                        state.leader_view = None;
                        state.next = Next::Join;
                    }
                    Some(_) => state.next = Next::Join,
                }
            }
            (
                Sent::Sync {
                    client,
                    generation,
                    member_id,
                },
                GroupResponse::SyncGroup(r),
            ) => {
                if r.error_code == 0 {
                    let expected =
                        assignment_for(generation, &identity(&member_id, CLIENTS[client].instance));
                    assert_eq!(
                        r.assignment, expected,
                        "client {client} synced generation {generation}"
                    );
                }
                let state = &mut self.clients[client];
                if state.member_id == member_id && state.generation == generation {
                    state.next = if r.error_code == 0 {
                        Next::Heartbeat
                    } else {
                        Next::Join
                    };
                    if r.error_code == ResponseError::UnknownMemberId.code() {
                        state.member_id.clear();
                    }
                }
            }
            (
                Sent::Heartbeat {
                    client,
                    incarnation,
                },
                GroupResponse::Heartbeat(r),
            ) => {
                let state = &mut self.clients[client];
                let reset = [
                    ResponseError::UnknownMemberId.code(),
                    ResponseError::FencedInstanceId.code(),
                ];
                if state.incarnation == incarnation && reset.contains(&r.error_code) {
                    state.member_id.clear();
                    state.leader_view = None;
                }
                if state.incarnation == incarnation && r.error_code != 0 {
                    state.next = Next::Join;
                }
            }
            (Sent::Commit { group, offsets }, GroupResponse::OffsetCommit(r)) => {
                let durable = replay(&self.durable_log());
                let acked = r
                    .topics
                    .iter()
                    .flat_map(|t| t.partitions.iter())
                    .map(|p| p.error_code);
                for ((topic, partition, offset), error) in offsets.into_iter().zip(acked) {
                    if error == 0 {
                        // Acknowledged means durable (a later durable write may have
                        // replaced or deleted it since).
                        let key = RecordKey::OffsetCommit {
                            group: group.into(),
                            topic: topic.into(),
                            partition,
                        };
                        let written = self.durable_log().iter().any(|record| {
                            let decoded = record.decode().unwrap();
                            decoded.key == key
                                && matches!(decoded.value, Some(RecordValue::OffsetCommit(ref v)) if v.offset == offset)
                        });
                        assert!(
                            written,
                            "acknowledged commit {key:?} = {offset} is not in the log"
                        );
                        let _ = &durable;
                    }
                }
            }
            (Sent::Fetch { group }, GroupResponse::OffsetFetch(r)) => {
                let applied = replay(&self.applied_log());
                for topic in &r.topics {
                    for p in &topic.partitions {
                        if p.committed_offset != -1 {
                            let key =
                                (group.to_string(), topic.name.to_string(), p.partition_index);
                            let value = applied
                                .offsets
                                .get(&key)
                                .expect("fetched offsets are durable");
                            assert_eq!(p.committed_offset, value.offset);
                        }
                    }
                }
            }
            (Sent::DeleteGroups { groups }, GroupResponse::DeleteGroups(r)) => {
                for (group, result) in groups.iter().zip(&r.results) {
                    if result.error_code == 0 {
                        assert!(!replay(&self.applied_log()).metadata.contains_key(*group));
                    }
                }
            }
            (Sent::Other, _) => {}
            (_, response) => panic!("response of the wrong kind: {response:?}"),
        }
    }

    /// State invariants after a step.
    pub(crate) fn check(&mut self) {
        let groups = self.h.coordinator.debug_groups();
        let present: BTreeSet<String> = groups.iter().map(|g| g.group_id.clone()).collect();
        // A group that went away starts over if it comes back.
        self.generations.retain(|g, _| present.contains(g));
        self.leaders.retain(|(g, _), _| present.contains(g));
        self.believed_leaders
            .retain(|(g, _), _| present.contains(g));
        for group in &groups {
            if group.state == GroupState::Dead {
                continue;
            }
            let highest = self
                .generations
                .entry(group.group_id.clone())
                .or_insert(group.generation);
            assert!(
                group.generation >= *highest,
                "generation of {} went back",
                group.group_id
            );
            *highest = group.generation;
            assert_eq!(
                group.members.is_empty(),
                group.leader.is_none(),
                "{group:?}"
            );
            if let Some(leader) = &group.leader {
                let member = group
                    .members
                    .iter()
                    .find(|m| &m.member_id == leader)
                    .expect("the leader is a member");
                if matches!(
                    group.state,
                    GroupState::CompletingRebalance | GroupState::Stable
                ) {
                    let who = identity(&member.member_id, member.group_instance_id.as_deref());
                    let recorded = self
                        .leaders
                        .entry((group.group_id.clone(), group.generation))
                        .or_insert(who.clone());
                    assert_eq!(
                        *recorded, who,
                        "two leaders in generation {} of {}",
                        group.generation, group.group_id
                    );
                }
            }
            if group.state == GroupState::Stable {
                for member in &group.members {
                    let who = identity(&member.member_id, member.group_instance_id.as_deref());
                    assert_eq!(
                        member.assignment,
                        assignment_for(group.generation, &who),
                        "{group:?}"
                    );
                }
            }
        }
        // The durable state in memory is the replay of what the coordinator has applied.
        let applied = replay(&self.applied_log());
        assert_eq!(self.h.coordinator.debug_offsets(), applied.offsets);
        let persisted: BTreeMap<String, GroupMetadataValue> = groups
            .into_iter()
            .filter_map(|g| g.persisted.map(|p| (g.group_id, p)))
            .collect();
        assert_eq!(persisted, applied.metadata);
        assert_eq!(self.h.coordinator.status(), CoordinatorStatus::Active);
    }

    /// Lets every write finish and enough time pass for every rebalance to end: then no
    /// request may be left unanswered. A last reload must rebuild the same state.
    pub(crate) fn quiesce(&mut self) {
        for _ in 0..6 {
            self.complete_all();
            self.collect();
            self.check();
            self.h.advance(100_000);
            self.collect();
            self.check();
        }
        self.complete_all();
        self.collect();
        self.check();
        assert!(
            self.h.outstanding.is_empty(),
            "unanswered: {:?}",
            self.h.outstanding
        );
        assert!(self.h.coordinator.debug_parked().is_empty());
        assert_eq!(self.h.coordinator.debug_pending_appends(), 0);
        let before = self.h.coordinator.debug_offsets();
        let persisted_before: Vec<_> = self
            .h
            .coordinator
            .debug_groups()
            .into_iter()
            .filter_map(|g| g.persisted.map(|p| (g.group_id, p)))
            .collect();
        self.reload();
        assert_eq!(self.h.coordinator.debug_offsets(), before);
        let persisted_after: Vec<_> = self
            .h
            .coordinator
            .debug_groups()
            .into_iter()
            .filter_map(|g| g.persisted.map(|p| (g.group_id, p)))
            .collect();
        assert_eq!(persisted_after, persisted_before);
        self.check();
    }
}

fn encodes(response: &GroupResponse, version: i16) -> bool {
    let mut buf = BytesMut::new();
    match response {
        GroupResponse::JoinGroup(r) => r.encode(&mut buf, version).is_ok(),
        GroupResponse::SyncGroup(r) => r.encode(&mut buf, version).is_ok(),
        GroupResponse::Heartbeat(r) => r.encode(&mut buf, version).is_ok(),
        GroupResponse::LeaveGroup(r) => r.encode(&mut buf, version).is_ok(),
        GroupResponse::OffsetCommit(r) => r.encode(&mut buf, version).is_ok(),
        GroupResponse::OffsetFetch(r) => offset_fetch_response(vec![r.clone()], version)
            .encode(&mut buf, version)
            .is_ok(),
        GroupResponse::DescribeGroups(r) => r.encode(&mut buf, version).is_ok(),
        GroupResponse::DeleteGroups(r) => r.encode(&mut buf, version).is_ok(),
        GroupResponse::OffsetDelete(r) => r.encode(&mut buf, version).is_ok(),
        GroupResponse::ConsumerGroupHeartbeat(r) => r.encode(&mut buf, version).is_ok(),
        GroupResponse::ConsumerGroupDescribe(r) => r.encode(&mut buf, version).is_ok(),
    }
}
