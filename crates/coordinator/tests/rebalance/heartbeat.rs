use sluice_coordinator::testing::{Harness, heartbeat_request, join_request, s, version};
use sluice_coordinator::{GroupRequest, GroupState};
use sluice_protocol::ResponseError;

use super::{code, harness, send_join};

fn beat(h: &mut Harness, group: &str, member: &str, generation: i32) -> i16 {
    let id = h.send(
        version::HEARTBEAT,
        GroupRequest::Heartbeat(heartbeat_request(group, member, generation)),
    );
    h.take(id).heartbeat().error_code
}

#[test]
fn heartbeat_in_a_stable_group_restarts_the_session() {
    let mut h = harness();
    let (members, generation) = h.stable_group("g", &["a"]);
    h.advance(9_000);
    assert_eq!(beat(&mut h, "g", &members[0], generation), 0);
    let deadline = h.group("g").unwrap().members[0].heartbeat_deadline_ms;
    assert_eq!(deadline, Some(9_000 + 10_000));
    h.advance(9_000);
    assert_eq!(
        h.group("g").unwrap().members.len(),
        1,
        "the session was extended"
    );
}

#[test]
fn heartbeat_errors() {
    let mut h = harness();
    let (members, generation) = h.stable_group("g", &["a"]);
    assert_eq!(
        beat(&mut h, "g", &members[0], generation - 1),
        code(ResponseError::IllegalGeneration)
    );
    assert_eq!(
        beat(&mut h, "g", "nobody", generation),
        code(ResponseError::UnknownMemberId)
    );
    assert_eq!(
        beat(&mut h, "missing", &members[0], generation),
        code(ResponseError::UnknownMemberId)
    );
    assert_eq!(
        beat(&mut h, "", &members[0], generation),
        code(ResponseError::InvalidGroupId)
    );
    let with_instance =
        heartbeat_request("g", &members[0], generation).with_group_instance_id(Some(s("i")));
    let id = h.send(version::HEARTBEAT, GroupRequest::Heartbeat(with_instance));
    assert_eq!(
        h.take(id).heartbeat().error_code,
        code(ResponseError::UnknownMemberId)
    );
}

#[test]
fn heartbeat_during_a_rebalance_says_rejoin() {
    let mut h = harness();
    let (members, generation) = h.stable_group("g", &["a", "b"]);
    let rejoin = send_join(&mut h, join_request("g", &members[0]));
    assert!(!h.has_response(rejoin));
    assert_eq!(
        beat(&mut h, "g", &members[1], generation),
        code(ResponseError::RebalanceInProgress)
    );
}

#[test]
fn heartbeat_between_join_and_sync_is_accepted() {
    let mut h = harness();
    let a = h.join("a", join_request("g", ""));
    let a = h.take(a).join();
    assert_eq!(h.group("g").unwrap().state, GroupState::CompletingRebalance);
    assert_eq!(beat(&mut h, "g", a.member_id.as_str(), a.generation_id), 0);
}

#[test]
fn session_expiry_removes_the_member_and_rebalances() {
    let mut h = harness();
    let (members, generation) = h.stable_group("g", &["a", "b"]);
    for _ in 0..2 {
        h.advance(6_000);
        assert_eq!(
            beat(&mut h, "g", &members[0], generation),
            if h.now_ms < 10_000 {
                0
            } else {
                code(ResponseError::RebalanceInProgress)
            }
        );
    }
    // b missed its 10 s session: gone, and the group rebalances around a.
    let group = h.group("g").unwrap();
    assert_eq!(group.state, GroupState::PreparingRebalance);
    assert_eq!(group.members.len(), 1);
    assert_eq!(
        beat(&mut h, "g", &members[1], generation),
        code(ResponseError::UnknownMemberId)
    );
    let rejoin = send_join(&mut h, join_request("g", &members[0]));
    let response = h.take(rejoin).join();
    assert_eq!(response.generation_id, generation + 1);
    assert_eq!(response.members.len(), 1);
}

#[test]
fn the_last_member_expiring_empties_the_group() {
    let mut h = harness();
    let (members, generation) = h.stable_group("g", &["a"]);
    h.advance(10_000);
    let group = h.group("g").unwrap();
    assert_eq!(group.state, GroupState::Empty);
    assert_eq!(group.generation, generation + 1);
    assert_eq!(
        beat(&mut h, "g", &members[0], generation),
        code(ResponseError::UnknownMemberId)
    );
}
