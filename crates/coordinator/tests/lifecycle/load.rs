use bytes::Bytes;
use sluice_coordinator::record::{
    CoordinatorRecord, GroupMetadataValue, MemberMetadata, RecordKey, RecordValue,
};
use sluice_coordinator::testing::{
    commit_request, delete_request, describe_request, fetch_request, heartbeat_request,
    join_request, s, sync_request, test_config, version,
};
use sluice_coordinator::{
    CoordinatorStatus, Effect, GroupCoordinator, GroupRequest, GroupResponse, GroupState, Input,
    LoadReport, OffsetsRecord, RequestId,
};
use sluice_protocol::ResponseError;

use super::{code, harness};

fn request(id: u64, api_version: i16, body: GroupRequest) -> Input {
    Input::Request {
        id: RequestId(id),
        api_version,
        client_id: "c".into(),
        client_host: "/h".into(),
        body,
    }
}

fn only_response(effects: Vec<Effect>) -> GroupResponse {
    match <[Effect; 1]>::try_from(effects) {
        Ok([Effect::Respond { response, .. }]) => response,
        Ok(other) => panic!("expected one response, got {other:?}"),
        Err(effects) => panic!("expected one response, got {effects:?}"),
    }
}

#[test]
fn while_loading_requests_are_told_to_retry_and_heartbeats_pass() {
    let mut c = GroupCoordinator::new(&test_config()).unwrap();
    assert_eq!(c.status(), CoordinatorStatus::Loading);
    let loading = code(ResponseError::CoordinatorLoadInProgress);
    let join = only_response(c.handle(
        0,
        request(
            1,
            version::JOIN,
            GroupRequest::JoinGroup(join_request("g", "m")),
        ),
    ))
    .join();
    assert_eq!((join.error_code, join.member_id.as_str()), (loading, "m"));
    let sync = only_response(c.handle(
        0,
        request(
            2,
            version::SYNC,
            GroupRequest::SyncGroup(sync_request("g", "m", 1, &[])),
        ),
    ));
    assert_eq!(sync.sync().error_code, loading);
    let beat = only_response(c.handle(
        0,
        request(
            3,
            version::HEARTBEAT,
            GroupRequest::Heartbeat(heartbeat_request("g", "m", 1)),
        ),
    ));
    assert_eq!(
        beat.heartbeat().error_code,
        0,
        "Kafka answers heartbeats blindly while loading"
    );
    let commit = only_response(c.handle(
        0,
        request(
            4,
            version::COMMIT,
            GroupRequest::OffsetCommit(commit_request("g", "", -1, &[("t", 0, 1), ("t", 1, 1)])),
        ),
    ));
    assert!(
        commit.commit().topics[0]
            .partitions
            .iter()
            .all(|p| p.error_code == loading)
    );
    let fetch = only_response(c.handle(
        0,
        request(
            5,
            version::FETCH,
            GroupRequest::OffsetFetch(fetch_request("g", None)),
        ),
    ));
    assert_eq!(fetch.fetch().error_code, loading);
    let describe = only_response(c.handle(
        0,
        request(
            6,
            version::DESCRIBE,
            GroupRequest::DescribeGroups(describe_request(&["a", "b"])),
        ),
    ));
    assert!(
        describe
            .describe()
            .groups
            .iter()
            .all(|g| g.error_code == loading)
    );
    let delete = only_response(c.handle(
        0,
        request(
            7,
            version::DELETE,
            GroupRequest::DeleteGroups(delete_request(&["a"])),
        ),
    ));
    assert_eq!(delete.delete().results[0].error_code, loading);
    assert_eq!(
        c.list_groups(&[], &[]),
        Err(ResponseError::CoordinatorLoadInProgress)
    );
    assert_eq!(c.next_deadline(), None);

    assert!(c.handle(0, Input::Loaded(Vec::new())).is_empty());
    assert_eq!(c.status(), CoordinatorStatus::Active);
    assert_eq!(c.list_groups(&[], &[]), Ok(Vec::new()));
    assert!(
        c.next_deadline().is_some(),
        "the retention check is scheduled"
    );
}

#[test]
fn unloading_answers_everything_in_flight_with_not_coordinator() {
    let mut h = harness();
    let (members, generation) = h.stable_group("g", &["a", "b"]);
    let parked_join = h.send(
        version::JOIN,
        GroupRequest::JoinGroup(join_request("g", &members[0])),
    );
    h.auto_append = false;
    let parked_commit = h.send(
        version::COMMIT,
        GroupRequest::OffsetCommit(commit_request("h", "", -1, &[("t", 0, 1)])),
    );
    assert!(!h.has_response(parked_join) && !h.has_response(parked_commit));
    h.input(Input::Unloaded);
    let not_coordinator = code(ResponseError::NotCoordinator);
    assert_eq!(h.take(parked_join).join().error_code, not_coordinator);
    assert_eq!(
        h.take(parked_commit).commit().topics[0].partitions[0].error_code,
        not_coordinator
    );
    assert!(h.outstanding.is_empty());
    assert_eq!(h.coordinator.status(), CoordinatorStatus::Unloaded);
    assert_eq!(h.coordinator.next_deadline(), None);
    assert_eq!(
        h.coordinator.list_groups(&[], &[]),
        Err(ResponseError::NotCoordinator)
    );

    // Later requests, and results of old appends, change nothing.
    let beat = h.send(
        version::HEARTBEAT,
        GroupRequest::Heartbeat(heartbeat_request("g", &members[1], generation)),
    );
    assert_eq!(h.take(beat).heartbeat().error_code, not_coordinator);
    h.complete_all_appends();
    assert!(h.coordinator.debug_groups().is_empty());
}

#[test]
fn a_reload_rebuilds_groups_and_offsets_from_the_log() {
    let mut h = harness();
    let (members, generation) = h.stable_group("g", &["a", "b"]);
    h.now_ms = 5_000;
    let commit = commit_request("g", &members[0], generation, &[("t", 0, 17)]);
    let id = h.send(version::COMMIT, GroupRequest::OffsetCommit(commit));
    h.take(id);
    let before = h.group("g").unwrap();
    let offsets_before = h.coordinator.debug_offsets();

    h.reload();
    let after = h.group("g").unwrap();
    assert_eq!(after.state, GroupState::Stable);
    assert_eq!(after.generation, before.generation);
    assert_eq!(after.leader, before.leader);
    assert_eq!(after.protocol_name, before.protocol_name);
    assert_eq!(after.protocol_type, before.protocol_type);
    let ids = |g: &sluice_coordinator::testing::GroupDebug| {
        g.members
            .iter()
            .map(|m| (m.member_id.clone(), m.assignment.clone()))
            .collect::<Vec<_>>()
    };
    assert_eq!(ids(&after), ids(&before));
    assert_eq!(after.persisted, before.persisted);
    assert_eq!(h.coordinator.debug_offsets(), offsets_before);
    let committed = &offsets_before[&("g".to_string(), "t".to_string(), 0)];
    assert_eq!(
        (
            committed.offset,
            committed.commit_timestamp_ms,
            committed.metadata.as_str()
        ),
        (17, 5_000, "m")
    );
    assert_eq!(
        h.coordinator.load_report(),
        Some(&LoadReport {
            records: h.log.len(),
            skipped_other_types: 0,
            skipped_malformed: 0,
            groups: 1,
            offsets: 1
        })
    );

    // Members carry on with the generation they had.
    let beat = h.send(
        version::HEARTBEAT,
        GroupRequest::Heartbeat(heartbeat_request("g", &members[1], generation)),
    );
    assert_eq!(h.take(beat).heartbeat().error_code, 0);
    let sync = h.send(
        version::SYNC,
        GroupRequest::SyncGroup(sync_request("g", &members[1], generation, &[])),
    );
    assert_eq!(h.take(sync).sync().assignment.as_ref(), b"b");
}

#[test]
fn loaded_members_must_heartbeat_within_their_session() {
    let mut h = harness();
    h.stable_group("g", &["a"]);
    h.now_ms = 1_000_000;
    h.reload();
    assert_eq!(
        h.group("g").unwrap().members[0].heartbeat_deadline_ms,
        Some(1_010_000)
    );
    h.advance(10_000);
    assert_eq!(h.group("g").unwrap().state, GroupState::Empty);
}

fn group_record(group: &str, members: usize) -> CoordinatorRecord {
    CoordinatorRecord {
        key: RecordKey::GroupMetadata {
            group: group.into(),
        },
        value: Some(RecordValue::GroupMetadata(GroupMetadataValue {
            protocol_type: "consumer".into(),
            generation: 4,
            protocol: Some("range".into()),
            leader: Some("m0".into()),
            current_state_timestamp_ms: 10,
            members: (0..members)
                .map(|i| MemberMetadata {
                    member_id: format!("m{i}"),
                    group_instance_id: None,
                    client_id: "c".into(),
                    client_host: "/h".into(),
                    rebalance_timeout_ms: 20_000,
                    session_timeout_ms: 10_000,
                    subscription: Bytes::new(),
                    assignment: Bytes::from(format!("a{i}")),
                })
                .collect(),
        })),
    }
}

#[test]
fn the_loader_keeps_the_latest_value_per_key_and_skips_what_it_cannot_read() {
    let mut records: Vec<OffsetsRecord> = vec![
        group_record("g", 2).encode().unwrap(),
        group_record("g", 1).encode().unwrap(),
        group_record("gone", 1).encode().unwrap(),
        CoordinatorRecord {
            key: RecordKey::GroupMetadata {
                group: "gone".into(),
            },
            value: None,
        }
        .encode()
        .unwrap(),
    ];
    // A record of Kafka 4's share groups (key version 9) and some garbage.
    records.push(OffsetsRecord {
        key: Bytes::from_static(&[0, 9, 0, 1, b'x']),
        value: Some(Bytes::from_static(&[0, 0])),
    });
    records.push(OffsetsRecord {
        key: Bytes::from_static(&[0, 2, 0, 9, b'x']),
        value: None,
    });
    records.push(OffsetsRecord {
        key: RecordKey::GroupMetadata {
            group: "bad".into(),
        }
        .encode()
        .unwrap(),
        value: Some(Bytes::from_static(&[0, 3, 0xff])),
    });
    let c = GroupCoordinator::load(&test_config(), 0, records).unwrap();
    let report = c.load_report().unwrap();
    assert_eq!(
        (
            report.records,
            report.skipped_other_types,
            report.skipped_malformed
        ),
        (7, 1, 2)
    );
    let groups = c.debug_groups();
    assert_eq!(groups.len(), 1);
    assert_eq!(groups[0].group_id, "g");
    assert_eq!(groups[0].members.len(), 1, "the latest metadata wins");
    assert_eq!(groups[0].generation, 4);
}

#[test]
fn offsets_without_group_metadata_load_as_a_simple_group() {
    let record = CoordinatorRecord {
        key: RecordKey::OffsetCommit {
            group: "solo".into(),
            topic: "t".into(),
            partition: 0,
        },
        value: Some(RecordValue::OffsetCommit(
            sluice_coordinator::record::OffsetCommitValue {
                offset: 3,
                leader_epoch: -1,
                metadata: String::new(),
                commit_timestamp_ms: 0,
                expire_timestamp_ms: -1,
            },
        )),
    };
    let c = GroupCoordinator::load(&test_config(), 0, vec![record.encode().unwrap()]).unwrap();
    let listed = c.list_groups(&[], &[]).unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(
        (
            listed[0].group_state.as_str(),
            listed[0].protocol_type.as_str()
        ),
        ("Empty", "")
    );
}

#[test]
fn a_group_loads_empty_or_stable_by_its_members() {
    let c = GroupCoordinator::load(
        &test_config(),
        0,
        vec![
            group_record("with", 2).encode().unwrap(),
            group_record("without", 0).encode().unwrap(),
        ],
    )
    .unwrap();
    let states: Vec<_> = c
        .debug_groups()
        .iter()
        .map(|g| (g.group_id.clone(), g.state))
        .collect();
    assert_eq!(
        states,
        vec![
            ("with".into(), GroupState::Stable),
            ("without".into(), GroupState::Empty)
        ]
    );
    let _ = s("");
}

#[test]
fn a_group_over_the_size_limit_rebalances_when_loaded() {
    let config = sluice_coordinator::GroupConfig {
        max_group_size: 2,
        ..test_config()
    };
    let c =
        GroupCoordinator::load(&config, 0, vec![group_record("big", 3).encode().unwrap()]).unwrap();
    let group = &c.debug_groups()[0];
    assert_eq!(group.state, GroupState::PreparingRebalance);
    assert_eq!(group.members.len(), 3);
}

#[test]
fn group_metadata_describing_an_impossible_group_is_skipped() {
    let mut duplicate_instance = group_record("dup", 2);
    let mut no_leader = group_record("leaderless", 2);
    if let Some(RecordValue::GroupMetadata(value)) = &mut duplicate_instance.value {
        for member in &mut value.members {
            member.group_instance_id = Some("same".into());
        }
    }
    if let Some(RecordValue::GroupMetadata(value)) = &mut no_leader.value {
        value.leader = Some("not-a-member".into());
    }
    let records = vec![
        group_record("dup", 1).encode().unwrap(),
        duplicate_instance.encode().unwrap(),
        no_leader.encode().unwrap(),
    ];
    let c = GroupCoordinator::load(&test_config(), 0, records).unwrap();
    assert_eq!(c.load_report().unwrap().skipped_malformed, 2);
    let groups = c.debug_groups();
    assert_eq!(groups.len(), 1);
    assert_eq!(
        groups[0].members.len(),
        1,
        "the last consistent value of dup"
    );
}
