use sluice_coordinator::testing::{join_request, s, sync_request, version};
use sluice_coordinator::{AppendFailed, GroupRequest, GroupState, record::RecordValue};
use sluice_protocol::ResponseError;

use super::{code, harness, send_join};

fn send_sync(
    h: &mut sluice_coordinator::testing::Harness,
    request: kafka_protocol::messages::SyncGroupRequest,
) -> sluice_coordinator::RequestId {
    h.send(version::SYNC, GroupRequest::SyncGroup(request))
}

use sluice_protocol::kafka_protocol;

/// Two members after the join phase (CompletingRebalance): (leader, follower, generation).
fn joined_pair(h: &mut sluice_coordinator::testing::Harness) -> (String, String, i32) {
    let (members, generation) = h.stable_group("g", &["a", "b"]);
    let a = send_join(h, join_request("g", &members[0]));
    let b = send_join(h, join_request("g", &members[1]));
    let (a, b) = (h.take(a).join(), h.take(b).join());
    assert_eq!(a.generation_id, generation + 1);
    assert_eq!(b.generation_id, generation + 1);
    (
        a.member_id.to_string(),
        b.member_id.to_string(),
        a.generation_id,
    )
}

#[test]
fn syncs_are_answered_only_once_the_leaders_assignment_is_durable() {
    let mut h = harness();
    let (leader, follower, generation) = joined_pair(&mut h);
    h.auto_append = false;
    let f = send_sync(&mut h, sync_request("g", &follower, generation, &[]));
    assert!(!h.has_response(f), "followers wait for the leader");
    let l = send_sync(
        &mut h,
        sync_request(
            "g",
            &leader,
            generation,
            &[(&leader, b"L"), (&follower, b"F")],
        ),
    );
    assert!(
        !h.has_response(l) && !h.has_response(f),
        "nobody is answered before the write is durable"
    );
    assert_eq!(h.group("g").unwrap().state, GroupState::CompletingRebalance);
    h.complete_append(Ok(()));
    let (l, f) = (h.take(l).sync(), h.take(f).sync());
    assert_eq!((l.error_code, f.error_code), (0, 0));
    assert_eq!(l.assignment.as_ref(), b"L");
    assert_eq!(f.assignment.as_ref(), b"F");
    assert_eq!(f.protocol_type, Some(s("consumer")));
    assert_eq!(f.protocol_name, Some(s("range")));
    assert_eq!(h.group("g").unwrap().state, GroupState::Stable);

    // The log holds Kafka's group metadata record with the assignments.
    let record = h.log.last().unwrap().decode().unwrap();
    let Some(RecordValue::GroupMetadata(value)) = record.value else {
        panic!("expected group metadata, got {record:?}");
    };
    assert_eq!(value.generation, generation);
    assert_eq!(value.leader.as_deref(), Some(leader.as_str()));
    assert_eq!(value.protocol.as_deref(), Some("range"));
    let assignments: Vec<_> = value
        .members
        .iter()
        .map(|m| (m.member_id.clone(), m.assignment.clone()))
        .collect();
    assert_eq!(
        assignments,
        vec![(leader, "L".into()), (follower, "F".into())]
    );
}

#[test]
fn a_failed_assignment_write_sends_everyone_back_to_rejoin() {
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
        (AppendFailed::TooLarge, ResponseError::UnknownServerError),
    ] {
        let mut h = harness();
        let (leader, follower, generation) = joined_pair(&mut h);
        h.auto_append = false;
        let f = send_sync(&mut h, sync_request("g", &follower, generation, &[]));
        let l = send_sync(
            &mut h,
            sync_request(
                "g",
                &leader,
                generation,
                &[(&leader, b"L"), (&follower, b"F")],
            ),
        );
        h.complete_append(Err(failure));
        assert_eq!(h.take(l).sync().error_code, code(expected));
        assert_eq!(h.take(f).sync().error_code, code(expected));
        let group = h.group("g").unwrap();
        assert_eq!(group.state, GroupState::PreparingRebalance, "{failure:?}");
        assert!(group.members.iter().all(|m| m.assignment.is_empty()));
    }
}

#[test]
fn members_the_leader_left_out_get_an_empty_assignment() {
    let mut h = harness();
    let (leader, follower, generation) = joined_pair(&mut h);
    let f = send_sync(&mut h, sync_request("g", &follower, generation, &[]));
    let l = send_sync(
        &mut h,
        sync_request("g", &leader, generation, &[(&leader, b"L")]),
    );
    assert_eq!(h.take(l).sync().assignment.as_ref(), b"L");
    let f = h.take(f).sync();
    assert_eq!(f.error_code, 0);
    assert!(f.assignment.is_empty());
}

#[test]
fn a_stable_group_answers_sync_with_the_current_assignment() {
    let mut h = harness();
    let (members, generation) = h.stable_group("g", &["a", "b"]);
    let id = send_sync(&mut h, sync_request("g", &members[1], generation, &[]));
    assert_eq!(h.take(id).sync().assignment.as_ref(), b"b");
}

#[test]
fn sync_errors() {
    let mut h = harness();
    let (members, generation) = h.stable_group("g", &["a", "b"]);
    let cases = [
        (
            sync_request("g", &members[0], generation + 1, &[]),
            version::SYNC,
            ResponseError::IllegalGeneration,
        ),
        (
            sync_request("g", "nobody", generation, &[]),
            version::SYNC,
            ResponseError::UnknownMemberId,
        ),
        (
            sync_request("missing", &members[0], generation, &[]),
            version::SYNC,
            ResponseError::UnknownMemberId,
        ),
        (
            sync_request("", &members[0], generation, &[]),
            version::SYNC,
            ResponseError::InvalidGroupId,
        ),
        (
            sync_request("g", &members[0], generation, &[])
                .with_protocol_name(Some(s("roundrobin"))),
            version::SYNC,
            ResponseError::InconsistentGroupProtocol,
        ),
        (
            sync_request("g", &members[0], generation, &[]).with_protocol_type(Some(s("connect"))),
            version::SYNC,
            ResponseError::InconsistentGroupProtocol,
        ),
        // v5 makes both fields mandatory; earlier versions do not have them.
        (
            sync_request("g", &members[0], generation, &[]).with_protocol_name(None),
            5,
            ResponseError::InconsistentGroupProtocol,
        ),
        (
            sync_request("g", &members[0], generation, &[])
                .with_group_instance_id(Some(s("not-mine"))),
            version::SYNC,
            ResponseError::UnknownMemberId,
        ),
    ];
    for (request, api_version, expected) in cases {
        let id = h.send(api_version, GroupRequest::SyncGroup(request.clone()));
        assert_eq!(h.take(id).sync().error_code, code(expected), "{request:?}");
    }
    let ok = h.send(
        4,
        GroupRequest::SyncGroup(
            sync_request("g", &members[0], generation, &[]).with_protocol_name(None),
        ),
    );
    assert_eq!(h.take(ok).sync().error_code, 0);
}

#[test]
fn sync_during_a_rebalance_is_told_to_rejoin() {
    let mut h = harness();
    let (members, generation) = h.stable_group("g", &["a", "b"]);
    let rejoin = send_join(&mut h, join_request("g", &members[0]));
    assert!(!h.has_response(rejoin));
    let id = send_sync(&mut h, sync_request("g", &members[1], generation, &[]));
    assert_eq!(
        h.take(id).sync().error_code,
        code(ResponseError::RebalanceInProgress)
    );
}

#[test]
fn a_rebalance_answers_parked_syncs_with_rebalance_in_progress() {
    let mut h = harness();
    let (leader, follower, generation) = joined_pair(&mut h);
    let f = send_sync(&mut h, sync_request("g", &follower, generation, &[]));
    // A new member joins before the leader syncs.
    let c = h.join("c", join_request("g", ""));
    assert_eq!(
        h.take(f).sync().error_code,
        code(ResponseError::RebalanceInProgress)
    );
    assert!(!h.has_response(c));
    let _ = leader;
}

#[test]
fn members_that_never_sync_are_removed_after_the_rebalance_timeout() {
    let mut h = harness();
    let (leader, follower, generation) = joined_pair(&mut h);
    let l = send_sync(
        &mut h,
        sync_request(
            "g",
            &leader,
            generation,
            &[(&leader, b"L"), (&follower, b"F")],
        ),
    );
    assert_eq!(h.take(l).sync().error_code, 0);
    assert_eq!(h.group("g").unwrap().state, GroupState::Stable);
    // Both keep their sessions alive, but the follower never syncs.
    for _ in 0..4 {
        h.advance(5_000);
        for member in [&leader, &follower] {
            let hb = h.send(
                version::HEARTBEAT,
                GroupRequest::Heartbeat(sluice_coordinator::testing::heartbeat_request(
                    "g", member, generation,
                )),
            );
            h.take(hb);
        }
    }
    let group = h.group("g").unwrap();
    assert_eq!(group.state, GroupState::PreparingRebalance);
    assert_eq!(group.members.len(), 1);
    assert_eq!(group.members[0].member_id, leader);
}

#[test]
fn a_superseded_parked_sync_is_answered_rebalance_in_progress() {
    let mut h = harness();
    let (_, follower, generation) = joined_pair(&mut h);
    let first = send_sync(&mut h, sync_request("g", &follower, generation, &[]));
    let second = send_sync(&mut h, sync_request("g", &follower, generation, &[]));
    assert_eq!(
        h.take(first).sync().error_code,
        code(ResponseError::RebalanceInProgress)
    );
    assert!(!h.has_response(second));
}
