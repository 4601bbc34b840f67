use sluice_coordinator::record::RecordKey;
use sluice_coordinator::testing::{
    delete_request, join_request, leave_request, offset_delete_request, protocol, s, subscription,
    version,
};
use sluice_coordinator::{AppendFailed, GroupRequest, GroupState};
use sluice_protocol::ResponseError;

use super::{code, fetched, harness, simple_commit};

fn delete_errors(h: &mut sluice_coordinator::testing::Harness, groups: &[&str]) -> Vec<i16> {
    let id = h.send(
        version::DELETE,
        GroupRequest::DeleteGroups(delete_request(groups)),
    );
    h.take(id)
        .delete()
        .results
        .iter()
        .map(|r| r.error_code)
        .collect()
}

#[test]
fn only_empty_groups_are_deleted() {
    let mut h = harness();
    let id = simple_commit(&mut h, "empty", &[("t", 0, 1), ("t", 1, 2)]);
    h.take(id);
    h.stable_group("busy", &["a"]);
    let errors = delete_errors(&mut h, &["empty", "busy", "missing"]);
    assert_eq!(
        errors,
        vec![
            0,
            code(ResponseError::NonEmptyGroup),
            code(ResponseError::GroupIdNotFound)
        ]
    );
    assert!(h.group("empty").is_none());
    assert_eq!(fetched(&mut h, "empty", &[("t", 0)]), vec![-1]);
    // Tombstones for both offsets and the group, in Kafka's format.
    let tail: Vec<_> = h.log[h.log.len() - 3..]
        .iter()
        .map(|r| {
            assert!(r.value.is_none(), "a tombstone");
            r.decode().unwrap().key
        })
        .collect();
    assert_eq!(
        tail,
        vec![
            RecordKey::OffsetCommit {
                group: "empty".into(),
                topic: "t".into(),
                partition: 0
            },
            RecordKey::OffsetCommit {
                group: "empty".into(),
                topic: "t".into(),
                partition: 1
            },
            RecordKey::GroupMetadata {
                group: "empty".into()
            },
        ]
    );
    assert_eq!(
        delete_errors(&mut h, &["empty"]),
        vec![code(ResponseError::GroupIdNotFound)]
    );
}

#[test]
fn deletion_is_answered_once_durable_and_the_group_is_dead_meanwhile() {
    let mut h = harness();
    let id = simple_commit(&mut h, "g", &[("t", 0, 1)]);
    h.take(id);
    h.auto_append = false;
    let delete = h.send(
        version::DELETE,
        GroupRequest::DeleteGroups(delete_request(&["g"])),
    );
    assert!(!h.has_response(delete));
    assert_eq!(h.group("g").unwrap().state, GroupState::Dead);
    let join = h.send(
        version::JOIN,
        GroupRequest::JoinGroup(join_request("g", "")),
    );
    assert_eq!(
        h.take(join).join().error_code,
        code(ResponseError::CoordinatorNotAvailable)
    );
    let commit = simple_commit(&mut h, "g", &[("t", 0, 2)]);
    assert_eq!(
        h.take(commit).commit().topics[0].partitions[0].error_code,
        code(ResponseError::CoordinatorNotAvailable)
    );
    h.complete_append(Ok(()));
    assert_eq!(h.take(delete).delete().results[0].error_code, 0);
    assert!(h.group("g").is_none());
}

#[test]
fn a_failed_deletion_fails_every_group_and_keeps_them() {
    let mut h = harness();
    let id = simple_commit(&mut h, "g", &[("t", 0, 1)]);
    h.take(id);
    h.auto_append = false;
    let delete = h.send(
        version::DELETE,
        GroupRequest::DeleteGroups(delete_request(&["g", "missing"])),
    );
    h.complete_append(Err(AppendFailed::NotEnoughReplicas));
    let errors: Vec<_> = h
        .take(delete)
        .delete()
        .results
        .iter()
        .map(|r| r.error_code)
        .collect();
    assert_eq!(
        errors,
        vec![code(ResponseError::CoordinatorNotAvailable); 2]
    );
    assert_eq!(h.group("g").unwrap().state, GroupState::Empty);
    assert_eq!(fetched(&mut h, "g", &[("t", 0)]), vec![1]);
}

#[test]
fn deleting_a_group_also_deletes_its_commits_in_flight() {
    let mut h = harness();
    let id = simple_commit(&mut h, "g", &[("t", 0, 1)]);
    h.take(id);
    h.auto_append = false;
    let commit = simple_commit(&mut h, "g", &[("u", 0, 5)]);
    let delete = h.send(
        version::DELETE,
        GroupRequest::DeleteGroups(delete_request(&["g"])),
    );
    h.complete_all_appends();
    h.take(commit);
    assert_eq!(h.take(delete).delete().results[0].error_code, 0);
    assert!(h.group("g").is_none());
    assert_eq!(fetched(&mut h, "g", &[("u", 0)]), vec![-1]);
}

#[test]
fn offsets_of_topics_a_consumer_group_subscribes_to_cannot_be_deleted() {
    let mut h = harness();
    let (members, generation) = h.stable_group("g", &["a"]); // subscribed to "t"
    let id = h.send(
        version::COMMIT,
        GroupRequest::OffsetCommit(sluice_coordinator::testing::commit_request(
            "g",
            &members[0],
            generation,
            &[("t", 0, 1), ("old", 0, 2)],
        )),
    );
    h.take(id);
    let request = offset_delete_request("g", &[("t", 0), ("old", 0), ("never", 0)]);
    let id = h.send(version::OFFSET_DELETE, GroupRequest::OffsetDelete(request));
    let response = h.take(id).offset_delete();
    assert_eq!(response.error_code, 0);
    let errors: Vec<_> = response
        .topics
        .iter()
        .map(|t| (t.name.to_string(), t.partitions[0].error_code))
        .collect();
    assert_eq!(
        errors,
        vec![
            ("t".to_string(), code(ResponseError::GroupSubscribedToTopic)),
            ("old".to_string(), 0),
            ("never".to_string(), 0),
        ]
    );
    assert_eq!(fetched(&mut h, "g", &[("t", 0), ("old", 0)]), vec![1, -1]);
}

#[test]
fn offset_delete_errors() {
    let mut h = harness();
    let request =
        |group: &str| GroupRequest::OffsetDelete(offset_delete_request(group, &[("t", 0)]));
    let id = h.send(version::OFFSET_DELETE, request("missing"));
    assert_eq!(
        h.take(id).offset_delete().error_code,
        code(ResponseError::GroupIdNotFound)
    );
    let id = h.send(version::OFFSET_DELETE, request(""));
    assert_eq!(
        h.take(id).offset_delete().error_code,
        code(ResponseError::InvalidGroupId)
    );
    // A group with members that does not speak the consumer protocol cannot tell which
    // offsets it uses.
    let connect = join_request("c", "")
        .with_protocol_type(s("connect"))
        .with_protocols(vec![protocol("default", subscription(&[]))]);
    let join = h.join("w", connect);
    h.take(join);
    let id = h.send(version::OFFSET_DELETE, request("c"));
    assert_eq!(
        h.take(id).offset_delete().error_code,
        code(ResponseError::NonEmptyGroup)
    );
}

#[test]
fn an_empty_consumer_group_loses_any_offset() {
    let mut h = harness();
    let (members, generation) = h.stable_group("g", &["a"]);
    let id = h.send(
        version::COMMIT,
        GroupRequest::OffsetCommit(sluice_coordinator::testing::commit_request(
            "g",
            &members[0],
            generation,
            &[("t", 0, 1)],
        )),
    );
    h.take(id);
    let id = h.send(
        version::LEAVE,
        GroupRequest::LeaveGroup(leave_request("g", &[(&members[0], None)])),
    );
    h.take(id);
    assert_eq!(h.group("g").unwrap().state, GroupState::Empty);
    h.auto_append = false;
    let id = h.send(
        version::OFFSET_DELETE,
        GroupRequest::OffsetDelete(offset_delete_request("g", &[("t", 0)])),
    );
    assert!(
        !h.has_response(id),
        "answered once the tombstone is durable"
    );
    h.complete_append(Ok(()));
    assert_eq!(
        h.take(id).offset_delete().topics[0].partitions[0].error_code,
        0
    );
    assert_eq!(fetched(&mut h, "g", &[("t", 0)]), vec![-1]);
}
