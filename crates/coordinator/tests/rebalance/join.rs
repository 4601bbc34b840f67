use sluice_coordinator::testing::{
    Harness, heartbeat_request, join_request, protocol, s, subscription, sync_request, test_config,
    version,
};
use sluice_coordinator::{GroupRequest, GroupState};
use sluice_protocol::ResponseError;

use super::{code, harness, send_join};

#[test]
fn single_member_forms_a_stable_group() {
    let mut h = harness();
    let (members, generation) = h.stable_group("g", &["a"]);
    assert_eq!(generation, 1);
    let group = h.group("g").unwrap();
    assert_eq!(group.state, GroupState::Stable);
    assert_eq!(group.leader.as_deref(), Some(members[0].as_str()));
    assert_eq!(group.members[0].assignment.as_ref(), b"a");
}

#[test]
fn three_members_form_a_stable_group_with_the_leaders_assignment() {
    let mut h = harness();
    let (members, generation) = h.stable_group("g", &["a", "b", "c"]);
    assert_eq!(generation, 2);
    let group = h.group("g").unwrap();
    assert_eq!(group.state, GroupState::Stable);
    assert_eq!(group.members.len(), 3);
    for (member, client) in members.iter().zip(["a", "b", "c"]) {
        let m = group
            .members
            .iter()
            .find(|m| &m.member_id == member)
            .unwrap();
        assert_eq!(m.assignment.as_ref(), client.as_bytes());
    }
    assert!(h.outstanding.is_empty());
}

#[test]
fn unknown_member_gets_member_id_required_with_an_id_from_its_client_id() {
    let mut h = harness();
    let id = h.send_as(
        "consumer-7",
        version::JOIN,
        GroupRequest::JoinGroup(join_request("g", "")),
    );
    let response = h.take(id).join();
    assert_eq!(response.error_code, code(ResponseError::MemberIdRequired));
    assert!(
        response.member_id.starts_with("consumer-7-"),
        "{:?}",
        response.member_id
    );
    // Nobody joined yet: the group waits for the member to come back.
    assert_eq!(h.group("g").unwrap().state, GroupState::Empty);
}

#[test]
fn member_ids_are_reproducible_from_the_seed() {
    let ids: Vec<String> = (0..2)
        .map(|_| {
            let mut h = harness();
            let id = send_join(&mut h, join_request("g", ""));
            h.take(id).join().member_id.to_string()
        })
        .collect();
    assert_eq!(ids[0], ids[1]);
}

#[test]
fn pending_member_that_does_not_rejoin_within_its_session_is_forgotten() {
    let mut h = harness();
    let id = send_join(&mut h, join_request("g", ""));
    let member_id = h.take(id).join().member_id;
    h.advance(10_000); // the session timeout of join_request
    let id = send_join(&mut h, join_request("g", member_id.as_str()));
    assert_eq!(
        h.take(id).join().error_code,
        code(ResponseError::UnknownMemberId)
    );
}

#[test]
fn versions_before_4_join_without_a_second_round_trip() {
    let mut h = harness();
    let id = h.send(3, GroupRequest::JoinGroup(join_request("g", "")));
    let response = h.take(id).join();
    assert_eq!(response.error_code, 0);
    assert_eq!(response.generation_id, 1);
    assert_eq!(response.leader, response.member_id);
}

#[test]
fn session_timeout_outside_the_bounds_is_rejected() {
    let mut h = harness();
    for timeout in [999, 60_001] {
        let id = send_join(
            &mut h,
            join_request("g", "").with_session_timeout_ms(timeout),
        );
        assert_eq!(
            h.take(id).join().error_code,
            code(ResponseError::InvalidSessionTimeout)
        );
    }
    assert!(h.group("g").is_none());
}

#[test]
fn empty_group_id_is_invalid() {
    let mut h = harness();
    let id = send_join(&mut h, join_request("", ""));
    assert_eq!(
        h.take(id).join().error_code,
        code(ResponseError::InvalidGroupId)
    );
}

#[test]
fn member_id_for_a_group_that_does_not_exist_is_unknown() {
    let mut h = harness();
    let id = send_join(&mut h, join_request("g", "ghost"));
    assert_eq!(
        h.take(id).join().error_code,
        code(ResponseError::UnknownMemberId)
    );
}

#[test]
fn protocols_must_fit_the_group() {
    let mut h = harness();
    let id = send_join(&mut h, join_request("g", "").with_protocol_type(s("")));
    assert_eq!(
        h.take(id).join().error_code,
        code(ResponseError::InconsistentGroupProtocol)
    );
    let id = send_join(&mut h, join_request("g", "").with_protocols(vec![]));
    assert_eq!(
        h.take(id).join().error_code,
        code(ResponseError::InconsistentGroupProtocol)
    );

    h.stable_group("g", &["a"]);
    let id = send_join(
        &mut h,
        join_request("g", "").with_protocol_type(s("connect")),
    );
    assert_eq!(
        h.take(id).join().error_code,
        code(ResponseError::InconsistentGroupProtocol)
    );
    let other = vec![protocol("sticky", subscription(&["t"]))];
    let id = send_join(&mut h, join_request("g", "").with_protocols(other));
    assert_eq!(
        h.take(id).join().error_code,
        code(ResponseError::InconsistentGroupProtocol)
    );
}

#[test]
fn join_error_protocol_name_is_empty_before_v7_and_null_after() {
    let mut h = harness();
    let id = h.send(6, GroupRequest::JoinGroup(join_request("", "")));
    assert_eq!(h.take(id).join().protocol_name, Some(s("")));
    let id = h.send(7, GroupRequest::JoinGroup(join_request("", "")));
    assert_eq!(h.take(id).join().protocol_name, None);
}

#[test]
fn the_protocol_most_members_prefer_among_common_ones_is_selected() {
    let mut h = harness();
    let meta = subscription(&["t"]);
    let prefs = [
        vec![
            protocol("roundrobin", meta.clone()),
            protocol("range", meta.clone()),
        ],
        vec![
            protocol("range", meta.clone()),
            protocol("roundrobin", meta.clone()),
        ],
        vec![
            protocol("range", meta.clone()),
            protocol("roundrobin", meta.clone()),
        ],
    ];
    let mut joins = Vec::new();
    for (i, protocols) in prefs.iter().enumerate() {
        let client = format!("c{i}");
        joins.push(h.join(
            &client,
            join_request("g", "").with_protocols(protocols.clone()),
        ));
    }
    // The first member was answered alone (generation 1); it rejoins for generation 2.
    let first = h.take(joins[0]).join();
    let rejoin = send_join(
        &mut h,
        join_request("g", first.member_id.as_str()).with_protocols(prefs[0].clone()),
    );
    for id in [rejoin, joins[1], joins[2]] {
        let response = h.take(id).join();
        assert_eq!(response.generation_id, 2);
        assert_eq!(response.protocol_name, Some(s("range")));
    }
}

#[test]
fn the_first_member_leads_and_only_the_leader_gets_the_member_list() {
    let mut h = harness();
    let (members, generation) = h.stable_group("g", &["a", "b"]);
    // The leader rejoins (forcing a rebalance), then the follower does.
    let leader = send_join(&mut h, join_request("g", &members[0]));
    let follower = send_join(&mut h, join_request("g", &members[1]));
    let leader = h.take(leader).join();
    let follower = h.take(follower).join();
    assert_eq!(leader.generation_id, generation + 1);
    assert_eq!(leader.leader.as_str(), members[0]);
    assert_eq!(follower.leader.as_str(), members[0]);
    assert_eq!(leader.members.len(), 2);
    assert_eq!(leader.members[1].metadata, subscription(&["t"]));
    assert!(follower.members.is_empty());
    assert_eq!(leader.protocol_type, Some(s("consumer")));
}

#[test]
fn initial_rebalance_waits_the_delay_and_extends_it_for_each_new_member() {
    let config = sluice_coordinator::GroupConfig {
        initial_rebalance_delay: std::time::Duration::from_millis(3_000),
        ..test_config()
    };
    let mut h = Harness::new(config);
    let a = h.join("a", join_request("g", ""));
    assert!(!h.has_response(a));
    h.advance(1_000);
    let b = h.join("b", join_request("g", ""));
    h.advance(1_999); // t = 2999
    assert!(!h.has_response(a));
    h.advance(1); // t = 3000: a member arrived during the delay, wait once more
    assert!(!h.has_response(a));
    h.advance(2_999);
    assert!(!h.has_response(b));
    h.advance(1); // t = 6000
    let (a, b) = (h.take(a).join(), h.take(b).join());
    assert_eq!((a.generation_id, b.generation_id), (1, 1));
    assert_eq!(a.members.len(), 2);
}

#[test]
fn rebalance_completes_as_soon_as_every_known_member_rejoined() {
    let mut h = harness();
    let (members, generation) = h.stable_group("g", &["a", "b"]);
    let a = send_join(&mut h, join_request("g", &members[0]));
    assert!(!h.has_response(a));
    assert_eq!(h.group("g").unwrap().state, GroupState::PreparingRebalance);
    let b = send_join(&mut h, join_request("g", &members[1]));
    assert_eq!(h.take(a).join().generation_id, generation + 1);
    assert_eq!(h.take(b).join().generation_id, generation + 1);
    assert_eq!(h.group("g").unwrap().state, GroupState::CompletingRebalance);
}

#[test]
fn members_that_miss_the_rebalance_timeout_are_removed() {
    let mut h = harness();
    let (members, generation) = h.stable_group("g", &["a", "b"]);
    let a = send_join(&mut h, join_request("g", &members[0]));
    // b keeps its session alive but never rejoins.
    for _ in 0..3 {
        h.advance(5_000);
        let hb = h.send(
            version::HEARTBEAT,
            GroupRequest::Heartbeat(heartbeat_request("g", &members[1], generation)),
        );
        assert_eq!(
            h.take(hb).heartbeat().error_code,
            code(ResponseError::RebalanceInProgress)
        );
    }
    h.advance(4_999);
    assert!(!h.has_response(a));
    h.advance(1); // the rebalance timeout of join_request
    let response = h.take(a).join();
    assert_eq!(response.generation_id, generation + 1);
    assert_eq!(response.members.len(), 1);
    let group = h.group("g").unwrap();
    assert_eq!(group.members.len(), 1);
    assert_eq!(group.members[0].member_id, members[0]);
}

#[test]
fn a_follower_rejoining_a_stable_group_unchanged_gets_the_current_generation() {
    let mut h = harness();
    let (members, generation) = h.stable_group("g", &["a", "b"]);
    let id = send_join(&mut h, join_request("g", &members[1]));
    let response = h.take(id).join();
    assert_eq!(response.generation_id, generation);
    assert!(response.members.is_empty());
    assert_eq!(h.group("g").unwrap().state, GroupState::Stable);
}

#[test]
fn a_follower_with_new_metadata_triggers_a_rebalance() {
    let mut h = harness();
    let (members, _) = h.stable_group("g", &["a", "b"]);
    let changed = vec![protocol("range", subscription(&["t", "u"]))];
    let id = send_join(
        &mut h,
        join_request("g", &members[1]).with_protocols(changed),
    );
    assert!(!h.has_response(id));
    assert_eq!(h.group("g").unwrap().state, GroupState::PreparingRebalance);
}

#[test]
fn a_repeated_join_during_completing_rebalance_repeats_the_answer() {
    let mut h = harness();
    let a = h.join("a", join_request("g", ""));
    let first = h.take(a).join();
    assert_eq!(h.group("g").unwrap().state, GroupState::CompletingRebalance);
    let again = send_join(&mut h, join_request("g", first.member_id.as_str()));
    let again = h.take(again).join();
    assert_eq!(again.generation_id, first.generation_id);
    assert_eq!(
        again.members.len(),
        1,
        "the leader gets the member list again"
    );
}

#[test]
fn a_superseded_parked_join_is_answered_rebalance_in_progress() {
    let mut h = harness();
    let (members, _) = h.stable_group("g", &["a", "b"]);
    let first = send_join(&mut h, join_request("g", &members[0]));
    let second = send_join(&mut h, join_request("g", &members[0]));
    assert_eq!(
        h.take(first).join().error_code,
        code(ResponseError::RebalanceInProgress)
    );
    assert!(!h.has_response(second));
}

#[test]
fn a_new_member_waiting_too_long_is_dropped() {
    let mut h = harness();
    let (members, _) = h.stable_group("g", &["a"]);
    // b joins with a long rebalance timeout and a does not rejoin: the join phase would
    // wait 60 s, but a new member may only wait 30 s (test_config).
    let b = h.join("b", join_request("g", "").with_rebalance_timeout_ms(60_000));
    for _ in 0..6 {
        h.advance(5_000);
        let hb = h.send(
            version::HEARTBEAT,
            GroupRequest::Heartbeat(heartbeat_request("g", &members[0], 1)),
        );
        h.take(hb);
    }
    let response = h.take(b).join();
    assert_eq!(response.error_code, code(ResponseError::UnknownMemberId));
    assert_eq!(response.member_id, s(""));
    let group = h.group("g").unwrap();
    assert_eq!(group.members.len(), 1);
    assert_eq!(group.members[0].member_id, members[0]);
}

#[test]
fn group_max_size_is_enforced() {
    let config = sluice_coordinator::GroupConfig {
        max_group_size: 1,
        ..test_config()
    };
    let mut h = Harness::new(config);
    h.stable_group("g", &["a"]);
    let id = h.join("b", join_request("g", ""));
    let response = h.take(id).join();
    assert_eq!(
        response.error_code,
        code(ResponseError::GroupMaxSizeReached)
    );
}

#[test]
fn generations_increase_with_every_rebalance() {
    let mut h = harness();
    let (members, mut generation) = h.stable_group("g", &["a"]);
    let member = members[0].as_str();
    for _ in 0..3 {
        let id = send_join(&mut h, join_request("g", member));
        let response = h.take(id).join();
        assert_eq!(response.generation_id, generation + 1);
        generation = response.generation_id;
        let sync = h.send(
            version::SYNC,
            GroupRequest::SyncGroup(sync_request("g", member, generation, &[(member, b"a")])),
        );
        assert_eq!(h.take(sync).sync().error_code, 0);
    }
}
