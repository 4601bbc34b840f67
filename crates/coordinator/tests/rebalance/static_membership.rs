//! KIP-345 static membership: `group.instance.id` keeps a member's place across restarts.

use sluice_coordinator::record::RecordValue;
use sluice_coordinator::testing::{
    Harness, heartbeat_request, join_request, leave_request, protocol, s, subscription,
    sync_request, version,
};
use sluice_coordinator::{AppendFailed, GroupRequest, GroupState};
use sluice_protocol::ResponseError;

use super::{code, harness, send_join};

fn static_join(
    group: &str,
    member_id: &str,
    instance: &str,
) -> kafka_protocol::messages::JoinGroupRequest {
    join_request(group, member_id).with_group_instance_id(Some(s(instance)))
}

/// A Stable group of static members "i0", "i1"...; returns (member ids, generation).
fn static_group(h: &mut Harness, instances: &[&str]) -> (Vec<String>, i32) {
    let mut joins: Vec<_> = instances
        .iter()
        .map(|i| {
            h.send_as(
                i,
                version::JOIN,
                GroupRequest::JoinGroup(static_join("g", "", i)),
            )
        })
        .collect();
    // The first join completed a generation alone: rejoin it so everyone is in the next.
    if instances.len() > 1 {
        let first = h.take(joins[0]).join();
        joins[0] = h.send(
            version::JOIN,
            GroupRequest::JoinGroup(static_join("g", first.member_id.as_str(), instances[0])),
        );
    }
    let responses: Vec<_> = joins.into_iter().map(|j| h.take(j).join()).collect();
    let generation = responses[0].generation_id;
    let leader = responses[0].leader.to_string();
    let members: Vec<String> = responses.iter().map(|r| r.member_id.to_string()).collect();
    let assignments: Vec<(String, Vec<u8>)> = members
        .iter()
        .zip(instances)
        .map(|(m, i)| (m.clone(), i.as_bytes().to_vec()))
        .collect();
    let syncs: Vec<_> = members
        .iter()
        .map(|m| {
            let list: Vec<(&str, &[u8])> = if *m == leader {
                assignments
                    .iter()
                    .map(|(m, a)| (m.as_str(), a.as_slice()))
                    .collect()
            } else {
                Vec::new()
            };
            h.send(
                version::SYNC,
                GroupRequest::SyncGroup(sync_request("g", m, generation, &list)),
            )
        })
        .collect();
    for sync in syncs {
        assert_eq!(h.take(sync).sync().error_code, 0);
    }
    (members, generation)
}

#[test]
fn a_static_member_joins_without_member_id_required() {
    let mut h = harness();
    let id = h.send(
        version::JOIN,
        GroupRequest::JoinGroup(static_join("g", "", "i0")),
    );
    let response = h.take(id).join();
    assert_eq!(response.error_code, 0);
    assert!(
        response.member_id.starts_with("i0-"),
        "{:?}",
        response.member_id
    );
}

#[test]
fn a_restarted_static_member_takes_over_without_a_rebalance() {
    let mut h = harness();
    let (members, generation) = static_group(&mut h, &["i0", "i1"]);
    let records_before = h.log.len();
    let id = h.send(
        version::JOIN,
        GroupRequest::JoinGroup(static_join("g", "", "i1")),
    );
    let response = h.take(id).join();
    assert_eq!(response.error_code, 0);
    assert_eq!(response.generation_id, generation, "no new generation");
    let new_id = response.member_id.to_string();
    assert_ne!(new_id, members[1]);
    let group = h.group("g").unwrap();
    assert_eq!(group.state, GroupState::Stable);
    let member = group
        .members
        .iter()
        .find(|m| m.member_id == new_id)
        .unwrap();
    assert_eq!(
        member.assignment.as_ref(),
        b"i1",
        "keeps the old member's assignment"
    );

    // The replacement is persisted.
    assert_eq!(h.log.len(), records_before + 1);
    let Some(RecordValue::GroupMetadata(value)) = h.log.last().unwrap().decode().unwrap().value
    else {
        panic!("expected group metadata");
    };
    assert_eq!(value.members[1].member_id, new_id);
    assert_eq!(value.members[1].assignment.as_ref(), b"i1");

    // The old member id is fenced; the new one syncs to its assignment.
    let old = heartbeat_request("g", &members[1], generation).with_group_instance_id(Some(s("i1")));
    let id = h.send(version::HEARTBEAT, GroupRequest::Heartbeat(old));
    assert_eq!(
        h.take(id).heartbeat().error_code,
        code(ResponseError::FencedInstanceId)
    );
    let sync = sync_request("g", &new_id, generation, &[]).with_group_instance_id(Some(s("i1")));
    let id = h.send(version::SYNC, GroupRequest::SyncGroup(sync));
    assert_eq!(h.take(id).sync().assignment.as_ref(), b"i1");
}

#[test]
fn a_restarted_static_leader_before_v9_is_told_the_old_leader() {
    let mut h = harness();
    let (members, _) = static_group(&mut h, &["i0", "i1"]);
    let id = h.send(8, GroupRequest::JoinGroup(static_join("g", "", "i0")));
    let response = h.take(id).join();
    assert_eq!(
        response.leader.as_str(),
        members[0],
        "the old id, so it takes the follower path"
    );
    assert!(!response.skip_assignment);
    assert!(response.members.is_empty());
    assert_eq!(
        h.group("g").unwrap().leader.as_deref(),
        Some(response.member_id.as_str())
    );
}

#[test]
fn a_restarted_static_leader_at_v9_leads_but_skips_assignment() {
    let mut h = harness();
    static_group(&mut h, &["i0", "i1"]);
    let id = h.send(9, GroupRequest::JoinGroup(static_join("g", "", "i0")));
    let response = h.take(id).join();
    assert_eq!(response.leader, response.member_id);
    assert!(response.skip_assignment);
    assert_eq!(response.members.len(), 2);
}

#[test]
fn a_static_member_with_a_changed_protocol_triggers_a_rebalance() {
    let mut h = harness();
    let (_, generation) = static_group(&mut h, &["i0"]);
    // The restarted member now prefers "roundrobin": the group would elect another
    // protocol, so it rebalances.
    let preferences = vec![
        protocol("roundrobin", subscription(&["t"])),
        protocol("range", subscription(&["t"])),
    ];
    let id = h.send(
        version::JOIN,
        GroupRequest::JoinGroup(static_join("g", "", "i0").with_protocols(preferences)),
    );
    let response = h.take(id).join();
    assert_eq!(response.generation_id, generation + 1);
    assert_eq!(response.protocol_name, Some(s("roundrobin")));
    assert_eq!(h.group("g").unwrap().state, GroupState::CompletingRebalance);
}

#[test]
fn a_failed_replacement_write_restores_the_old_member() {
    let mut h = harness();
    let (members, generation) = static_group(&mut h, &["i0", "i1"]);
    h.auto_append = false;
    let id = h.send(
        version::JOIN,
        GroupRequest::JoinGroup(static_join("g", "", "i1")),
    );
    assert!(!h.has_response(id), "answered once the new id is durable");
    h.complete_append(Err(AppendFailed::NotLeader));
    let response = h.take(id).join();
    assert_eq!(response.error_code, code(ResponseError::NotCoordinator));
    assert_eq!(response.member_id, s(""));
    let group = h.group("g").unwrap();
    assert_eq!(
        group.members[1].member_id, members[1],
        "the old member id is back"
    );
    let beat =
        heartbeat_request("g", &members[1], generation).with_group_instance_id(Some(s("i1")));
    let id = h.send(version::HEARTBEAT, GroupRequest::Heartbeat(beat));
    assert_eq!(h.take(id).heartbeat().error_code, 0);
}

#[test]
fn a_static_member_that_misses_a_rebalance_is_kept() {
    let mut h = harness();
    let (members, generation) = static_group(&mut h, &["i0", "i1"]);
    // i0 rejoins; i1 stays away but heartbeats (as a bouncing static member would not,
    // but its session is what removes it, not the rebalance).
    let rejoin = h.send(
        version::JOIN,
        GroupRequest::JoinGroup(static_join("g", &members[0], "i0")),
    );
    for _ in 0..4 {
        h.advance(5_000);
        let beat =
            heartbeat_request("g", &members[1], generation).with_group_instance_id(Some(s("i1")));
        let id = h.send(version::HEARTBEAT, GroupRequest::Heartbeat(beat));
        h.take(id);
    }
    let response = h.take(rejoin).join();
    assert_eq!(response.generation_id, generation + 1);
    assert_eq!(
        response.members.len(),
        2,
        "the static member stays in the group"
    );
}

#[test]
fn a_static_member_is_removed_by_instance_id() {
    let mut h = harness();
    static_group(&mut h, &["i0", "i1"]);
    let id = h.send(
        version::LEAVE,
        GroupRequest::LeaveGroup(leave_request("g", &[("", Some("i1")), ("", Some("i9"))])),
    );
    let response = h.take(id).leave();
    assert_eq!(response.members[0].error_code, 0);
    assert_eq!(
        response.members[1].error_code,
        code(ResponseError::UnknownMemberId)
    );
    assert_eq!(h.group("g").unwrap().members.len(), 1);
}

#[test]
fn a_static_member_with_a_stale_member_id_is_fenced() {
    let mut h = harness();
    let (members, _) = static_group(&mut h, &["i0", "i1"]);
    let id = send_join(&mut h, static_join("g", &members[0], "i1"));
    assert_eq!(
        h.take(id).join().error_code,
        code(ResponseError::FencedInstanceId)
    );
}

#[test]
fn a_replaced_member_waiting_in_join_is_fenced() {
    let mut h = harness();
    let (members, _) = static_group(&mut h, &["i0", "i1"]);
    // The leader's old incarnation waits in the rebalance it started when the new one
    // arrives.
    let old = h.send(
        version::JOIN,
        GroupRequest::JoinGroup(static_join("g", &members[0], "i0")),
    );
    assert!(!h.has_response(old));
    let new = h.send(
        version::JOIN,
        GroupRequest::JoinGroup(static_join("g", "", "i0")),
    );
    let old = h.take(old).join();
    assert_eq!(old.error_code, code(ResponseError::FencedInstanceId));
    assert_eq!(old.member_id.as_str(), members[0]);
    assert!(!h.has_response(new));
}

use sluice_protocol::kafka_protocol;
