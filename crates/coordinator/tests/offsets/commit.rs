use sluice_coordinator::record::{OffsetCommitValue, RecordKey, RecordValue};
use sluice_coordinator::testing::{commit_request, join_request, s, version};
use sluice_coordinator::{AppendFailed, GroupRequest, GroupState};
use sluice_protocol::ResponseError;

use super::{code, errors, fetched, harness, simple_commit};

#[test]
fn a_simple_commit_creates_a_protocol_less_group() {
    let mut h = harness();
    let id = simple_commit(&mut h, "g", &[("t", 0, 42)]);
    assert_eq!(errors(&h.take(id).commit()), vec![0]);
    let group = h.group("g").unwrap();
    assert_eq!(group.state, GroupState::Empty);
    assert_eq!(group.protocol_type, None);
    assert_eq!(fetched(&mut h, "g", &[("t", 0)]), vec![42]);
}

#[test]
fn a_commit_is_answered_and_visible_only_once_durable() {
    let mut h = harness();
    let id = simple_commit(&mut h, "g", &[("t", 0, 1)]);
    h.take(id);
    h.auto_append = false;
    let id = simple_commit(&mut h, "g", &[("t", 0, 2)]);
    assert!(!h.has_response(id));
    assert_eq!(
        fetched(&mut h, "g", &[("t", 0)]),
        vec![1],
        "not durable yet"
    );
    h.complete_append(Ok(()));
    assert_eq!(errors(&h.take(id).commit()), vec![0]);
    assert_eq!(fetched(&mut h, "g", &[("t", 0)]), vec![2]);
}

#[test]
fn a_failed_commit_write_fails_every_partition_with_the_mapped_error() {
    for (failure, expected) in [
        (AppendFailed::NotLeader, ResponseError::NotCoordinator),
        (AppendFailed::StorageError, ResponseError::NotCoordinator),
        (
            AppendFailed::NotEnoughReplicas,
            ResponseError::CoordinatorNotAvailable,
        ),
        (
            AppendFailed::TimedOut,
            ResponseError::CoordinatorNotAvailable,
        ),
        (
            AppendFailed::PartitionUnavailable,
            ResponseError::CoordinatorNotAvailable,
        ),
        (AppendFailed::TooLarge, ResponseError::UnknownServerError),
        (AppendFailed::Other, ResponseError::UnknownServerError),
    ] {
        let mut h = harness();
        h.auto_append = false;
        let id = simple_commit(&mut h, "g", &[("t", 0, 5), ("t", 1, 6), ("u", 0, 7)]);
        h.complete_append(Err(failure));
        assert_eq!(
            errors(&h.take(id).commit()),
            vec![code(expected); 3],
            "{failure:?}"
        );
        assert_eq!(fetched(&mut h, "g", &[("t", 0)]), vec![-1]);
    }
}

#[test]
fn metadata_longer_than_the_limit_is_refused_per_partition() {
    let mut h = harness();
    let mut request = commit_request("g", "", -1, &[("t", 0, 1), ("t", 1, 2)]);
    // Kafka counts UTF-16 code units: 4096 'é' (8192 UTF-8 bytes) fit, 4097 do not.
    request.topics[0].partitions[0].committed_metadata = Some(s(&"é".repeat(4096)));
    request.topics[0].partitions[1].committed_metadata = Some(s(&"é".repeat(4097)));
    let id = h.send(version::COMMIT, GroupRequest::OffsetCommit(request));
    assert_eq!(
        errors(&h.take(id).commit()),
        vec![0, code(ResponseError::OffsetMetadataTooLarge)]
    );
    assert_eq!(fetched(&mut h, "g", &[("t", 0), ("t", 1)]), vec![1, -1]);
}

#[test]
fn members_commit_with_their_generation() {
    let mut h = harness();
    let (members, generation) = h.stable_group("g", &["a"]);
    let commit = |member: &str, generation: i32| {
        GroupRequest::OffsetCommit(commit_request("g", member, generation, &[("t", 0, 10)]))
    };
    let cases = [
        (commit(&members[0], generation), 0),
        (
            commit(&members[0], generation + 1),
            code(ResponseError::IllegalGeneration),
        ),
        (
            commit("nobody", generation),
            code(ResponseError::UnknownMemberId),
        ),
        // Without generation and member id, only a group without members takes commits.
        (commit("", -1), code(ResponseError::UnknownMemberId)),
    ];
    for (request, expected) in cases {
        let id = h.send(version::COMMIT, request.clone());
        assert_eq!(errors(&h.take(id).commit()), vec![expected], "{request:?}");
    }
}

#[test]
fn commits_for_unknown_groups_with_a_generation() {
    let mut h = harness();
    let request = GroupRequest::OffsetCommit(commit_request("missing", "m", 3, &[("t", 0, 1)]));
    let id = h.send(9, request.clone());
    assert_eq!(
        errors(&h.take(id).commit()),
        vec![code(ResponseError::GroupIdNotFound)]
    );
    let id = h.send(8, request);
    assert_eq!(
        errors(&h.take(id).commit()),
        vec![code(ResponseError::IllegalGeneration)]
    );
}

#[test]
fn commits_wait_out_the_sync_phase_but_not_the_join_phase() {
    let mut h = harness();
    let (members, generation) = h.stable_group("g", &["a", "b"]);
    // The leader rejoins: PreparingRebalance still takes commits of the old generation.
    let rejoin = h.send(
        version::JOIN,
        GroupRequest::JoinGroup(join_request("g", &members[0])),
    );
    let id = h.send(
        version::COMMIT,
        GroupRequest::OffsetCommit(commit_request("g", &members[1], generation, &[("t", 0, 1)])),
    );
    assert_eq!(errors(&h.take(id).commit()), vec![0]);
    // b rejoins: CompletingRebalance refuses them until the assignment is in.
    let b = h.send(
        version::JOIN,
        GroupRequest::JoinGroup(join_request("g", &members[1])),
    );
    let (_, b) = (h.take(rejoin), h.take(b).join());
    let id = h.send(
        version::COMMIT,
        GroupRequest::OffsetCommit(commit_request(
            "g",
            &members[1],
            b.generation_id,
            &[("t", 0, 2)],
        )),
    );
    assert_eq!(
        errors(&h.take(id).commit()),
        vec![code(ResponseError::RebalanceInProgress)]
    );
}

#[test]
fn an_offset_may_go_backwards() {
    let mut h = harness();
    for offset in [100, 7] {
        let id = simple_commit(&mut h, "g", &[("t", 0, offset)]);
        h.take(id);
    }
    assert_eq!(fetched(&mut h, "g", &[("t", 0)]), vec![7]);
}

#[test]
fn a_commit_keeps_the_member_session_alive() {
    let mut h = harness();
    let (members, generation) = h.stable_group("g", &["a"]);
    h.advance(8_000);
    let id = h.send(
        version::COMMIT,
        GroupRequest::OffsetCommit(commit_request("g", &members[0], generation, &[("t", 0, 1)])),
    );
    h.take(id);
    assert_eq!(
        h.group("g").unwrap().members[0].heartbeat_deadline_ms,
        Some(18_000)
    );
}

#[test]
fn the_commit_record_is_kafkas() {
    let mut h = harness();
    h.now_ms = 1_234;
    let mut request = commit_request("g", "", -1, &[("t", 3, 99)]);
    request.topics[0].partitions[0].committed_leader_epoch = 5;
    let id = h.send(version::COMMIT, GroupRequest::OffsetCommit(request));
    h.take(id);
    let record = h.log.last().unwrap();
    assert_eq!(&record.key[..2], &[0, 1], "OffsetCommitKey version 1");
    assert_eq!(
        &record.value.as_ref().unwrap()[..2],
        &[0, 3],
        "OffsetCommitValue version 3"
    );
    let decoded = record.decode().unwrap();
    assert_eq!(
        decoded.key,
        RecordKey::OffsetCommit {
            group: "g".into(),
            topic: "t".into(),
            partition: 3
        }
    );
    assert_eq!(
        decoded.value,
        Some(RecordValue::OffsetCommit(OffsetCommitValue {
            offset: 99,
            leader_epoch: 5,
            metadata: "m".into(),
            commit_timestamp_ms: 1_234,
            expire_timestamp_ms: -1,
        }))
    );
}

#[test]
fn an_explicit_retention_writes_an_expire_timestamp() {
    let mut h = harness();
    h.now_ms = 1_000;
    let request = commit_request("g", "", -1, &[("t", 0, 1)]).with_retention_time_ms(60_000);
    let id = h.send(2, GroupRequest::OffsetCommit(request));
    h.take(id);
    let record = h.log.last().unwrap();
    assert_eq!(
        &record.value.as_ref().unwrap()[..2],
        &[0, 1],
        "OffsetCommitValue version 1"
    );
    let Some(RecordValue::OffsetCommit(value)) = record.decode().unwrap().value else {
        panic!("expected an offset commit");
    };
    assert_eq!(value.expire_timestamp_ms, 61_000);
}
