//! ConsumerGroupHeartbeat, transition by transition.

use std::collections::BTreeSet;

use sluice_coordinator::consumer::{ConsumerGroupState, MemberState};
use sluice_coordinator::testing::{
    Harness, by_id, cg_describe, cg_heartbeat, cg_join, join_request, response_assignment, s,
    test_config, topic_id, topics,
};
use sluice_coordinator::{GroupRequest, GroupResponse, RequestId};
use sluice_protocol::ResponseError;
use sluice_protocol::kafka_protocol::messages::ConsumerGroupHeartbeatResponse;

fn ok(response: &ConsumerGroupHeartbeatResponse) {
    assert_eq!(
        response.error_code, 0,
        "unexpected error {:?}: {:?}",
        response.error_code, response.error_message
    );
}

fn error_of(response: &ConsumerGroupHeartbeatResponse) -> i16 {
    response.error_code
}

#[test]
fn the_first_member_gets_every_partition_at_epoch_one() {
    let mut h = Harness::new(test_config());
    let image = topics(&[("t", 4)]);
    let r = h.cg(cg_join("g", "a", &["t"]), &image);
    ok(&r);
    assert_eq!(r.member_id.as_deref(), Some("a"));
    assert_eq!(r.member_epoch, 1);
    assert_eq!(r.heartbeat_interval_ms, 5_000);
    assert_eq!(
        response_assignment(&r),
        Some(by_id(&[("t", &[0, 1, 2, 3])]))
    );
    let groups = h.coordinator.debug_consumer_groups();
    let g = &groups["g"];
    assert_eq!((g.group_epoch, g.assignment_epoch), (1, 1));
    assert_eq!(g.state(), ConsumerGroupState::Stable);
}

#[test]
fn a_second_member_waits_until_the_first_revokes() {
    let mut h = Harness::new(test_config());
    let image = topics(&[("t", 4)]);
    let a = h.cg(cg_join("g", "a", &["t"]), &image);
    let a_owned = response_assignment(&a).unwrap();

    // b joins: epoch 2, but its partitions are still a's.
    let b = h.cg(cg_join("g", "b", &["t"]), &image);
    ok(&b);
    assert_eq!(b.member_epoch, 2);
    assert_eq!(response_assignment(&b), Some(by_id(&[])));
    let g = &h.coordinator.debug_consumer_groups()["g"];
    assert_eq!(g.members["b"].state, MemberState::UnreleasedPartitions);
    assert_eq!(g.state(), ConsumerGroupState::Reconciling);

    // a is told to give two partitions up; its epoch stays until it has.
    let a = h.cg(cg_heartbeat("g", "a", 1, Some(&a_owned)), &image);
    ok(&a);
    assert_eq!(a.member_epoch, 1);
    let kept = response_assignment(&a).unwrap();
    assert_eq!(kept.values().map(BTreeSet::len).sum::<usize>(), 2);
    let g = &h.coordinator.debug_consumer_groups()["g"];
    assert_eq!(g.members["a"].state, MemberState::UnrevokedPartitions);

    // Still reporting the old partitions: nothing moves.
    let a_again = h.cg(cg_heartbeat("g", "a", 1, Some(&a_owned)), &image);
    assert_eq!(a_again.member_epoch, 1);
    let b = h.cg(cg_heartbeat("g", "b", 2, Some(&by_id(&[]))), &image);
    assert_eq!(response_assignment(&b), None, "nothing new for b yet");

    // a acknowledges the revocation and moves to epoch 2; then b gets the rest.
    let a = h.cg(cg_heartbeat("g", "a", 1, Some(&kept)), &image);
    assert_eq!(a.member_epoch, 2);
    let b = h.cg(cg_heartbeat("g", "b", 2, Some(&by_id(&[]))), &image);
    let b_owned = response_assignment(&b).unwrap();
    assert_eq!(b_owned.values().map(BTreeSet::len).sum::<usize>(), 2);
    assert!(
        b_owned[&topic_id("t")].is_disjoint(&kept[&topic_id("t")]),
        "{b_owned:?} {kept:?}"
    );
    let g = &h.coordinator.debug_consumer_groups()["g"];
    assert_eq!(g.state(), ConsumerGroupState::Stable);
}

#[test]
fn wrong_epochs_are_fenced_and_strangers_unknown() {
    let mut h = Harness::new(test_config());
    let image = topics(&[("t", 2)]);
    h.cg(cg_join("g", "a", &["t"]), &image);
    let ahead = h.cg(cg_heartbeat("g", "a", 5, None), &image);
    assert_eq!(error_of(&ahead), ResponseError::FencedMemberEpoch.code());
    let stranger = h.cg(cg_heartbeat("g", "x", 1, None), &image);
    assert_eq!(error_of(&stranger), ResponseError::UnknownMemberId.code());
    let no_group = h.cg(cg_heartbeat("nope", "a", 1, None), &image);
    assert_eq!(error_of(&no_group), ResponseError::GroupIdNotFound.code());
}

#[test]
fn the_previous_epoch_is_accepted_when_the_bump_was_lost() {
    let mut h = Harness::new(test_config());
    let image = topics(&[("t", 2)]);
    h.cg(cg_join("g", "a", &["t"]), &image);
    // b joins, a revokes and moves to epoch 2...
    h.cg(cg_join("g", "b", &["t"]), &image);
    let a = h.cg(
        cg_heartbeat("g", "a", 1, Some(&by_id(&[("t", &[0, 1])]))),
        &image,
    );
    let kept = response_assignment(&a).unwrap();
    let a = h.cg(cg_heartbeat("g", "a", 1, Some(&kept)), &image);
    assert_eq!(a.member_epoch, 2);
    // ...but never saw it: epoch 1 with a subset of its assignment still works.
    let retry = h.cg(cg_heartbeat("g", "a", 1, Some(&kept)), &image);
    ok(&retry);
    assert_eq!(retry.member_epoch, 2);
    // With more than it owns, epoch 1 is fenced.
    let greedy = h.cg(
        cg_heartbeat("g", "a", 1, Some(&by_id(&[("t", &[0, 1])]))),
        &image,
    );
    assert_eq!(error_of(&greedy), ResponseError::FencedMemberEpoch.code());
}

#[test]
fn a_leaving_member_is_removed_and_its_partitions_move() {
    let mut h = Harness::new(test_config());
    let image = topics(&[("t", 2)]);
    h.cg(cg_join("g", "a", &["t"]), &image);
    h.cg(cg_join("g", "b", &["t"]), &image);
    let a = h.cg(
        cg_heartbeat("g", "a", 1, Some(&by_id(&[("t", &[0, 1])]))),
        &image,
    );
    let kept = response_assignment(&a).unwrap();
    h.cg(cg_heartbeat("g", "a", 1, Some(&kept)), &image);
    let b = h.cg(cg_heartbeat("g", "b", 2, Some(&by_id(&[]))), &image);
    let b_owned = response_assignment(&b).unwrap();

    let leave = h.cg(cg_heartbeat("g", "b", -1, None), &image);
    ok(&leave);
    assert_eq!(leave.member_epoch, -1);
    let g = &h.coordinator.debug_consumer_groups()["g"];
    assert!(!g.members.contains_key("b"));
    assert_eq!(g.group_epoch, 3);

    let a = h.cg(cg_heartbeat("g", "a", 2, Some(&kept)), &image);
    assert_eq!(a.member_epoch, 3);
    let all = response_assignment(&a).unwrap();
    assert_eq!(all, by_id(&[("t", &[0, 1])]));
    assert!(b_owned[&topic_id("t")].is_subset(&all[&topic_id("t")]));
}

#[test]
fn a_static_member_that_comes_back_gets_its_partitions_without_a_new_epoch() {
    let mut h = Harness::new(test_config());
    let image = topics(&[("t", 2)]);
    let a = h.cg(
        cg_join("g", "a1", &["t"]).with_instance_id(Some(s("instance-a"))),
        &image,
    );
    let a_owned = response_assignment(&a).unwrap();
    let away = h.cg(
        cg_heartbeat("g", "a1", -2, None).with_instance_id(Some(s("instance-a"))),
        &image,
    );
    ok(&away);
    assert_eq!(away.member_epoch, -2);
    let epoch_before = h.coordinator.debug_consumer_groups()["g"].group_epoch;

    // Someone else cannot take the instance id while it is held...
    let back = h.cg(
        cg_join("g", "a2", &["t"]).with_instance_id(Some(s("instance-a"))),
        &image,
    );
    ok(&back);
    assert_eq!(response_assignment(&back), Some(a_owned));
    let g = &h.coordinator.debug_consumer_groups()["g"];
    assert_eq!(g.group_epoch, epoch_before, "no rebalance");
    assert!(!g.members.contains_key("a1"));
    assert_eq!(back.member_epoch, g.assignment_epoch);

    // ...and while a2 holds it, a third instance is turned away.
    let third = h.cg(
        cg_join("g", "a3", &["t"]).with_instance_id(Some(s("instance-a"))),
        &image,
    );
    assert_eq!(error_of(&third), ResponseError::UnreleasedInstanceId.code());
    // The replaced member id is fenced.
    let old = h.cg(
        cg_heartbeat("g", "a1", 1, None).with_instance_id(Some(s("instance-a"))),
        &image,
    );
    assert_eq!(error_of(&old), ResponseError::FencedInstanceId.code());
}

#[test]
fn a_silent_member_is_removed_after_the_session_timeout() {
    let mut h = Harness::new(test_config());
    let image = topics(&[("t", 2)]);
    h.cg(cg_join("g", "a", &["t"]), &image);
    h.cg(cg_join("g", "b", &["t"]), &image);
    h.advance(44_000);
    // a keeps heartbeating; b does not.
    h.cg(cg_heartbeat("g", "a", 1, None), &image);
    h.advance(2_000);
    let g = &h.coordinator.debug_consumer_groups()["g"];
    assert!(!g.members.contains_key("b"), "b expired");
    assert!(g.members.contains_key("a"));
    let stale = h.cg(cg_heartbeat("g", "b", 2, None), &image);
    assert_eq!(error_of(&stale), ResponseError::UnknownMemberId.code());
}

#[test]
fn a_member_that_does_not_revoke_in_time_is_fenced() {
    let mut h = Harness::new(test_config());
    let image = topics(&[("t", 2)]);
    h.cg(cg_join("g", "a", &["t"]), &image);
    h.cg(cg_join("g", "b", &["t"]), &image);
    let a = h.cg(
        cg_heartbeat("g", "a", 1, Some(&by_id(&[("t", &[0, 1])]))),
        &image,
    );
    assert_eq!(a.member_epoch, 1);
    // a heartbeats but keeps both partitions past its 30 s rebalance timeout.
    for _ in 0..4 {
        h.advance(8_000);
        h.cg(
            cg_heartbeat("g", "a", 1, Some(&by_id(&[("t", &[0, 1])]))),
            &image,
        );
        h.cg(cg_heartbeat("g", "b", 2, Some(&by_id(&[]))), &image);
    }
    let g = &h.coordinator.debug_consumer_groups()["g"];
    assert!(!g.members.contains_key("a"), "a fenced: {g:#?}");
    // b's heartbeat after the fencing took everything.
    assert_eq!(g.members["b"].assigned, by_id(&[("t", &[0, 1])]));
}

#[test]
fn invalid_requests_are_refused_as_kafka_does() {
    let mut h = Harness::new(test_config());
    let image = topics(&[("t", 2)]);
    let cases = [
        (cg_join("", "a", &["t"]), ResponseError::InvalidRequest),
        (cg_join("g", "", &["t"]), ResponseError::InvalidRequest),
        (
            cg_join("g", "a", &["t"]).with_rebalance_timeout_ms(-1),
            ResponseError::InvalidRequest,
        ),
        (
            cg_join("g", "a", &["t"]).with_topic_partitions(None),
            ResponseError::InvalidRequest,
        ),
        (
            cg_heartbeat("g", "a", -3, None),
            ResponseError::InvalidRequest,
        ),
        (
            cg_heartbeat("g", "a", -2, None),
            ResponseError::InvalidRequest,
        ),
        (
            cg_join("g", "a", &["t"]).with_server_assignor(Some(s("sticky"))),
            ResponseError::UnsupportedAssignor,
        ),
        (
            cg_join("g", "a", &["t"]).with_subscribed_topic_regex(Some(s("(unclosed"))),
            ResponseError::InvalidRegularExpression,
        ),
    ];
    for (request, error) in cases {
        let r = h.cg(request.clone(), &image);
        assert_eq!(r.error_code, error.code(), "{request:?}");
        assert!(r.error_message.is_some());
    }
}

#[test]
fn version_zero_members_get_an_id_from_the_coordinator() {
    let mut h = Harness::new(test_config());
    let image = topics(&[("t", 1)]);
    let id = h.send(
        0,
        GroupRequest::ConsumerGroupHeartbeat {
            request: cg_join("g", "", &["t"]),
            topics: image.clone(),
        },
    );
    let r = h.take(id).cg_heartbeat();
    ok(&r);
    let member = r.member_id.unwrap();
    assert_eq!(member.len(), 36, "{member}");
}

#[test]
fn range_is_used_when_members_ask_for_it() {
    let mut h = Harness::new(test_config());
    let image = topics(&[("t", 4)]);
    let a = h.cg(
        cg_join("g", "a", &["t"]).with_server_assignor(Some(s("range"))),
        &image,
    );
    assert_eq!(
        response_assignment(&a),
        Some(by_id(&[("t", &[0, 1, 2, 3])]))
    );
    h.cg(
        cg_join("g", "b", &["t"]).with_server_assignor(Some(s("range"))),
        &image,
    );
    let g = &h.coordinator.debug_consumer_groups()["g"];
    assert_eq!(g.target["a"], by_id(&[("t", &[0, 1])]));
    assert_eq!(g.target["b"], by_id(&[("t", &[2, 3])]));
    let described = {
        let id = h.send(
            1,
            GroupRequest::ConsumerGroupDescribe {
                request: cg_describe(&["g"]),
                topics: image.clone(),
            },
        );
        h.take(id).cg_describe()
    };
    assert_eq!(described.groups[0].assignor_name.as_str(), "range");
}

#[test]
fn a_regex_subscription_follows_new_topics() {
    let mut h = Harness::new(test_config());
    let image = topics(&[("orders-eu", 1), ("other", 1)]);
    let r = h.cg(
        cg_join("g", "a", &[]).with_subscribed_topic_regex(Some(s("orders-.*"))),
        &image,
    );
    assert_eq!(response_assignment(&r), Some(by_id(&[("orders-eu", &[0])])));
    // A new matching topic bumps the group epoch at the next heartbeat.
    let image = topics(&[("orders-eu", 1), ("orders-us", 2), ("other", 1)]);
    let r = h.cg(
        cg_heartbeat("g", "a", 1, Some(&by_id(&[("orders-eu", &[0])]))),
        &image,
    );
    assert_eq!(r.member_epoch, 2);
    assert_eq!(
        response_assignment(&r),
        Some(by_id(&[("orders-eu", &[0]), ("orders-us", &[0, 1])]))
    );
}

#[test]
fn new_partitions_are_assigned_after_the_topic_grows() {
    let mut h = Harness::new(test_config());
    let r = h.cg(cg_join("g", "a", &["t"]), &topics(&[("t", 1)]));
    assert_eq!(r.member_epoch, 1);
    let grown = topics(&[("t", 3)]);
    let r = h.cg(
        cg_heartbeat("g", "a", 1, Some(&by_id(&[("t", &[0])]))),
        &grown,
    );
    assert_eq!(r.member_epoch, 2);
    assert_eq!(response_assignment(&r), Some(by_id(&[("t", &[0, 1, 2])])));
}

#[test]
fn a_subscription_to_a_topic_that_does_not_exist_yet_is_assigned_once_it_does() {
    let mut h = Harness::new(test_config());
    let r = h.cg(cg_join("g", "a", &["later"]), &topics(&[]));
    ok(&r);
    assert_eq!(response_assignment(&r), Some(by_id(&[])));
    let r = h.cg(
        cg_heartbeat("g", "a", r.member_epoch, None),
        &topics(&[("later", 2)]),
    );
    assert_eq!(response_assignment(&r), Some(by_id(&[("later", &[0, 1])])));
}

#[test]
fn classic_and_consumer_groups_do_not_mix() {
    let mut h = Harness::new(test_config());
    let image = topics(&[("t", 2)]);
    // A classic group with members refuses consumer-protocol members.
    h.stable_group("classic", &["c1"]);
    let r = h.cg(cg_join("classic", "a", &["t"]), &image);
    assert_eq!(error_of(&r), ResponseError::GroupIdNotFound.code());
    // A consumer group with members refuses classic members.
    h.cg(cg_join("new", "a", &["t"]), &image);
    let id = h.send(9, GroupRequest::JoinGroup(join_request("new", "")));
    let join = h.take(id).join();
    assert_eq!(
        join.error_code,
        ResponseError::InconsistentGroupProtocol.code()
    );
}

#[test]
fn an_empty_consumer_group_makes_way_for_a_classic_one_and_back() {
    let mut h = Harness::new(test_config());
    let image = topics(&[("t", 2)]);
    h.cg(cg_join("g", "a", &["t"]), &image);
    h.cg(cg_heartbeat("g", "a", -1, None), &image);
    assert_eq!(
        h.coordinator.debug_consumer_groups()["g"].state(),
        ConsumerGroupState::Empty
    );
    // A classic member takes the empty group over...
    let (members, _) = h.stable_group("g", &["c1"]);
    assert!(!h.coordinator.debug_consumer_groups().contains_key("g"));
    // ...and once it has left, a consumer-protocol member takes it back.
    h.send(
        5,
        GroupRequest::LeaveGroup(sluice_coordinator::testing::leave_request(
            "g",
            &[(&members[0], None)],
        )),
    );
    let r = h.cg(cg_join("g", "a", &["t"]), &image);
    ok(&r);
    h.reload();
    assert!(h.coordinator.debug_consumer_groups().contains_key("g"));
    assert!(h.group("g").is_none(), "no classic group left behind");
}

#[test]
fn describe_shows_members_assignments_and_epochs() {
    let mut h = Harness::new(test_config());
    let image = topics(&[("t", 2)]);
    h.cg(cg_join("g", "a", &["t"]), &image);
    let id = h.send(
        1,
        GroupRequest::ConsumerGroupDescribe {
            request: cg_describe(&["g", "missing"]),
            topics: image.clone(),
        },
    );
    let described = h.take(id).cg_describe();
    let g = &described.groups[0];
    assert_eq!(g.error_code, 0);
    assert_eq!(g.group_state.as_str(), "Stable");
    assert_eq!((g.group_epoch, g.assignment_epoch), (1, 1));
    assert_eq!(g.assignor_name.as_str(), "uniform");
    let m = &g.members[0];
    assert_eq!(m.member_id.as_str(), "a");
    assert_eq!(m.member_type, 1);
    assert_eq!(m.assignment.topic_partitions[0].topic_name.as_str(), "t");
    assert_eq!(m.assignment.topic_partitions[0].partitions, [0, 1]);
    assert_eq!(m.target_assignment, m.assignment);
    assert_eq!(
        described.groups[1].error_code,
        ResponseError::GroupIdNotFound.code()
    );

    // The classic DescribeGroups says it is not a classic group (v6), Dead before.
    let id = h.send(
        6,
        GroupRequest::DescribeGroups(sluice_coordinator::testing::describe_request(&["g"])),
    );
    let classic = h.take(id).describe();
    assert_eq!(
        classic.groups[0].error_code,
        ResponseError::GroupIdNotFound.code()
    );
    let id = h.send(
        5,
        GroupRequest::DescribeGroups(sluice_coordinator::testing::describe_request(&["g"])),
    );
    let classic = h.take(id).describe();
    assert_eq!(classic.groups[0].group_state.as_str(), "Dead");

    // ListGroups lists it as a consumer group.
    let listed = h.coordinator.list_groups(&[], &[s("consumer")]).unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].group_type.as_str(), "consumer");
    assert_eq!(listed[0].group_state.as_str(), "Stable");
    assert!(
        h.coordinator
            .list_groups(&[], &[s("classic")])
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        h.coordinator
            .list_groups(&[s("stable")], &[])
            .unwrap()
            .len(),
        1
    );
}

#[test]
fn a_reload_rebuilds_the_groups_and_members_keep_going() {
    let mut h = Harness::new(test_config());
    let image = topics(&[("t", 3), ("u", 1)]);
    h.cg(cg_join("g", "a", &["t", "u"]), &image);
    h.cg(
        cg_join("g", "b", &["t"]).with_instance_id(Some(s("ib"))),
        &image,
    );
    let a = h.cg(
        cg_heartbeat("g", "a", 1, Some(&by_id(&[("t", &[0, 1, 2]), ("u", &[0])]))),
        &image,
    );
    let before = h.coordinator.debug_consumer_groups();
    h.reload();
    assert_eq!(h.coordinator.debug_consumer_groups(), before);
    // a carries on at the epoch it had.
    let kept = response_assignment(&a).unwrap();
    let r = h.cg(cg_heartbeat("g", "a", a.member_epoch, Some(&kept)), &image);
    ok(&r);
}

#[test]
fn delete_groups_deletes_only_empty_consumer_groups() {
    let mut h = Harness::new(test_config());
    let image = topics(&[("t", 1)]);
    h.cg(cg_join("g", "a", &["t"]), &image);
    let delete = |h: &mut Harness| {
        let id = h.send(
            2,
            GroupRequest::DeleteGroups(sluice_coordinator::testing::delete_request(&["g"])),
        );
        h.take(id).delete().results[0].error_code
    };
    assert_eq!(delete(&mut h), ResponseError::NonEmptyGroup.code());
    h.cg(cg_heartbeat("g", "a", -1, None), &image);
    assert_eq!(delete(&mut h), 0);
    assert!(h.coordinator.debug_consumer_groups().is_empty());
    h.reload();
    assert!(h.coordinator.debug_consumer_groups().is_empty());
    assert!(h.group("g").is_none());
}

#[test]
fn a_failed_append_leaves_the_group_as_the_log_has_it() {
    let mut h = Harness::new(test_config());
    let image = topics(&[("t", 2)]);
    h.cg(cg_join("g", "a", &["t"]), &image);
    let before = h.coordinator.debug_consumer_groups();
    h.auto_append = false;
    let id: RequestId = h.send(
        1,
        GroupRequest::ConsumerGroupHeartbeat {
            request: cg_join("g", "b", &["t"]),
            topics: image.clone(),
        },
    );
    assert!(!h.has_response(id), "answered only once durable");
    h.complete_append(Err(sluice_coordinator::AppendFailed::NotEnoughReplicas));
    let r = h.take(id);
    let GroupResponse::ConsumerGroupHeartbeat(r) = r else {
        panic!("{r:?}")
    };
    assert_eq!(r.error_code, ResponseError::CoordinatorNotAvailable.code());
    assert_eq!(h.coordinator.debug_consumer_groups(), before);
}
