use sluice_coordinator::testing::{describe_request, join_request, s, subscription, version};
use sluice_coordinator::{GroupRequest, GroupState};
use sluice_protocol::ResponseError;
use sluice_protocol::kafka_protocol::protocol::StrBytes;

use super::{code, harness};

#[test]
fn a_stable_group_is_described_with_protocol_and_member_metadata() {
    let mut h = harness();
    let (members, _) = h.stable_group("g", &["a", "b"]);
    let id = h.send(
        version::DESCRIBE,
        GroupRequest::DescribeGroups(describe_request(&["g"])),
    );
    let group = h.take(id).describe().groups.remove(0);
    assert_eq!(group.error_code, 0);
    assert_eq!(group.group_state, s("Stable"));
    assert_eq!(group.protocol_type, s("consumer"));
    assert_eq!(group.protocol_data, s("range"));
    assert_eq!(group.members.len(), 2);
    assert_eq!(group.members[0].member_id.as_str(), members[0]);
    assert_eq!(group.members[0].client_id, s("a"));
    assert_eq!(group.members[0].client_host, s("/127.0.0.1"));
    assert_eq!(group.members[0].member_metadata, subscription(&["t"]));
    assert_eq!(group.members[1].member_assignment.as_ref(), b"b");
    assert_eq!(group.authorized_operations, i32::MIN, "left for the broker");
}

#[test]
fn a_rebalancing_group_is_described_without_metadata() {
    let mut h = harness();
    let (members, _) = h.stable_group("g", &["a", "b"]);
    let rejoin = h.send(
        version::JOIN,
        GroupRequest::JoinGroup(join_request("g", &members[0])),
    );
    assert!(!h.has_response(rejoin));
    let id = h.send(
        version::DESCRIBE,
        GroupRequest::DescribeGroups(describe_request(&["g"])),
    );
    let group = h.take(id).describe().groups.remove(0);
    assert_eq!(group.group_state, s("PreparingRebalance"));
    assert_eq!(group.protocol_data, s(""));
    assert!(group.members.iter().all(|m| m.member_metadata.is_empty()));
}

#[test]
fn a_missing_group_is_dead_before_v6_and_not_found_from_v6() {
    let mut h = harness();
    let id = h.send(5, GroupRequest::DescribeGroups(describe_request(&["nope"])));
    let group = h.take(id).describe().groups.remove(0);
    assert_eq!((group.error_code, group.group_state.as_str()), (0, "Dead"));
    assert_eq!(group.error_message, None);
    let id = h.send(6, GroupRequest::DescribeGroups(describe_request(&["nope"])));
    let group = h.take(id).describe().groups.remove(0);
    assert_eq!(group.error_code, code(ResponseError::GroupIdNotFound));
    assert_eq!(group.error_message, Some(s("Group nope not found.")));
}

#[test]
fn list_groups_filters_by_state_and_type() {
    let mut h = harness();
    h.stable_group("stable", &["a"]);
    let id = h.send(
        version::COMMIT,
        GroupRequest::OffsetCommit(sluice_coordinator::testing::commit_request(
            "simple",
            "",
            -1,
            &[("t", 0, 1)],
        )),
    );
    h.take(id);
    let names = |listed: Vec<
        sluice_protocol::kafka_protocol::messages::list_groups_response::ListedGroup,
    >| {
        listed
            .iter()
            .map(|g| (g.group_id.to_string(), g.group_state.to_string()))
            .collect::<Vec<_>>()
    };
    let all = h.coordinator.list_groups(&[], &[]).unwrap();
    assert_eq!(all[0].group_type, s("classic"));
    assert_eq!(all[0].protocol_type, s(""));
    assert_eq!(all[1].protocol_type, s("consumer"));
    assert_eq!(
        names(all),
        vec![
            ("simple".to_string(), "Empty".to_string()),
            ("stable".to_string(), "Stable".to_string())
        ]
    );
    let filter = |v: &[&str]| v.iter().map(|x| s(x)).collect::<Vec<StrBytes>>();
    assert_eq!(
        names(
            h.coordinator
                .list_groups(&filter(&["stable"]), &[])
                .unwrap()
        ),
        vec![("stable".to_string(), "Stable".to_string())],
        "states match case-insensitively"
    );
    assert_eq!(
        h.coordinator
            .list_groups(&[], &filter(&["Classic"]))
            .unwrap()
            .len(),
        2
    );
    assert!(
        h.coordinator
            .list_groups(&[], &filter(&["consumer"]))
            .unwrap()
            .is_empty()
    );
    assert!(
        h.coordinator
            .list_groups(&filter(&["Dead"]), &[])
            .unwrap()
            .is_empty()
    );
}

#[test]
fn group_states_follow_kafkas_transitions() {
    use sluice_coordinator::testing::{delete_request, leave_request, sync_request};
    let mut h = harness();
    let mut seen = Vec::new();
    let state = |h: &sluice_coordinator::testing::Harness| h.group("g").map(|g| g.state);
    // Empty -> PreparingRebalance -> CompletingRebalance: a alone completes at once.
    let join = h.join("a", join_request("g", ""));
    let a = h.take(join).join().member_id.to_string();
    seen.push(state(&h));
    let sync = h.send(
        version::SYNC,
        GroupRequest::SyncGroup(sync_request("g", &a, 1, &[(&a, b"x")])),
    );
    h.take(sync);
    seen.push(state(&h)); // Stable
    let b = h.join("b", join_request("g", ""));
    seen.push(state(&h)); // PreparingRebalance: waiting for a
    let rejoin = h.send(
        version::JOIN,
        GroupRequest::JoinGroup(join_request("g", &a)),
    );
    h.take(rejoin);
    h.take(b);
    seen.push(state(&h)); // CompletingRebalance
    let leave = h.send(
        version::LEAVE,
        GroupRequest::LeaveGroup(leave_request("g", &[(&a, None)])),
    );
    h.take(leave);
    seen.push(state(&h)); // PreparingRebalance: b has not rejoined
    h.advance(20_000);
    seen.push(state(&h)); // Empty: b never came back
    let delete = h.send(
        version::DELETE,
        GroupRequest::DeleteGroups(delete_request(&["g"])),
    );
    h.take(delete);
    seen.push(state(&h)); // Dead, then removed once the tombstone is durable
    assert_eq!(
        seen,
        vec![
            Some(GroupState::CompletingRebalance),
            Some(GroupState::Stable),
            Some(GroupState::PreparingRebalance),
            Some(GroupState::CompletingRebalance),
            Some(GroupState::PreparingRebalance),
            Some(GroupState::Empty),
            None,
        ]
    );
}
