use sluice_coordinator::record::RecordValue;
use sluice_coordinator::testing::{join_request, leave_request, s, version};
use sluice_coordinator::{GroupRequest, GroupState};
use sluice_protocol::ResponseError;

use super::{code, harness, send_join};

#[test]
fn batch_leave_reports_each_member() {
    let mut h = harness();
    let (members, _) = h.stable_group("g", &["a", "b", "c"]);
    let request = leave_request(
        "g",
        &[
            (&members[0], None),
            ("nobody", None),
            (&members[1], Some("wrong-instance")),
        ],
    );
    let id = h.send(version::LEAVE, GroupRequest::LeaveGroup(request));
    let response = h.take(id).leave();
    assert_eq!(response.error_code, 0);
    let errors: Vec<_> = response
        .members
        .iter()
        .map(|m| (m.member_id.to_string(), m.error_code))
        .collect();
    assert_eq!(
        errors,
        vec![
            (members[0].clone(), 0),
            ("nobody".to_string(), code(ResponseError::UnknownMemberId)),
            (members[1].clone(), code(ResponseError::UnknownMemberId)),
        ]
    );
    assert_eq!(
        response.members[2].group_instance_id,
        Some(s("wrong-instance"))
    );
    let group = h.group("g").unwrap();
    assert_eq!(group.members.len(), 2);
    assert_eq!(group.state, GroupState::PreparingRebalance);
}

#[test]
fn leave_triggers_a_rebalance_without_the_leaver() {
    let mut h = harness();
    let (members, generation) = h.stable_group("g", &["a", "b"]);
    let id = h.send(
        version::LEAVE,
        GroupRequest::LeaveGroup(leave_request("g", &[(&members[1], None)])),
    );
    assert_eq!(h.take(id).leave().members[0].error_code, 0);
    let rejoin = send_join(&mut h, join_request("g", &members[0]));
    let response = h.take(rejoin).join();
    assert_eq!(response.generation_id, generation + 1);
    assert_eq!(response.members.len(), 1);
}

#[test]
fn the_last_leave_empties_the_group_and_persists_it() {
    let mut h = harness();
    let (members, generation) = h.stable_group("g", &["a"]);
    let id = h.send(
        version::LEAVE,
        GroupRequest::LeaveGroup(leave_request("g", &[(&members[0], None)])),
    );
    assert_eq!(h.take(id).leave().members[0].error_code, 0);
    let group = h.group("g").unwrap();
    assert_eq!(group.state, GroupState::Empty);
    assert_eq!(group.generation, generation + 1);
    let record = h.log.last().unwrap().decode().unwrap();
    let Some(RecordValue::GroupMetadata(value)) = record.value else {
        panic!("expected group metadata, got {record:?}");
    };
    assert_eq!(value.generation, generation + 1);
    assert!(value.members.is_empty());
    assert_eq!(value.protocol, None);
    assert_eq!(value.leader, None);
    assert_eq!(value.protocol_type, "consumer");
    assert_eq!(group.persisted, Some(value));
}

#[test]
fn versions_before_3_leave_one_member_with_a_top_level_error() {
    let mut h = harness();
    let (members, _) = h.stable_group("g", &["a", "b"]);
    let unknown = kafka_protocol::messages::LeaveGroupRequest::default()
        .with_group_id(kafka_protocol::messages::GroupId(s("g")))
        .with_member_id(s("nobody"));
    let id = h.send(2, GroupRequest::LeaveGroup(unknown));
    let response = h.take(id).leave();
    assert_eq!(response.error_code, code(ResponseError::UnknownMemberId));
    assert!(response.members.is_empty());
    let known = kafka_protocol::messages::LeaveGroupRequest::default()
        .with_group_id(kafka_protocol::messages::GroupId(s("g")))
        .with_member_id(s(&members[0]));
    let id = h.send(0, GroupRequest::LeaveGroup(known));
    assert_eq!(h.take(id).leave().error_code, 0);
    assert_eq!(h.group("g").unwrap().members.len(), 1);
}

#[test]
fn leaving_a_group_that_does_not_exist() {
    let mut h = harness();
    let id = h.send(
        version::LEAVE,
        GroupRequest::LeaveGroup(leave_request("missing", &[("m", None)])),
    );
    let response = h.take(id).leave();
    assert_eq!(response.error_code, 0);
    assert_eq!(
        response.members[0].error_code,
        code(ResponseError::UnknownMemberId)
    );
    let id = h.send(
        version::LEAVE,
        GroupRequest::LeaveGroup(leave_request("", &[("m", None)])),
    );
    assert_eq!(
        h.take(id).leave().error_code,
        code(ResponseError::InvalidGroupId)
    );
}

#[test]
fn a_pending_member_may_leave() {
    let mut h = harness();
    let id = send_join(&mut h, join_request("g", ""));
    let pending = h.take(id).join().member_id;
    let id = h.send(
        version::LEAVE,
        GroupRequest::LeaveGroup(leave_request("g", &[(pending.as_str(), None)])),
    );
    assert_eq!(h.take(id).leave().members[0].error_code, 0);
    let id = send_join(&mut h, join_request("g", pending.as_str()));
    assert_eq!(
        h.take(id).join().error_code,
        code(ResponseError::UnknownMemberId)
    );
}

#[test]
fn a_leaving_member_waiting_in_a_rebalance_is_told_it_is_unknown() {
    let mut h = harness();
    let (members, _) = h.stable_group("g", &["a", "b"]);
    // The leader's JoinGroup starts a rebalance and waits for b.
    let parked = send_join(&mut h, join_request("g", &members[0]));
    assert!(!h.has_response(parked));
    let id = h.send(
        version::LEAVE,
        GroupRequest::LeaveGroup(leave_request("g", &[(&members[0], None)])),
    );
    h.take(id);
    assert_eq!(
        h.take(parked).join().error_code,
        code(ResponseError::UnknownMemberId)
    );
}

use sluice_protocol::kafka_protocol;
