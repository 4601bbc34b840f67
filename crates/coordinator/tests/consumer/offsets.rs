//! Offsets of consumer groups: the member epoch stands in for the generation.

use sluice_coordinator::testing::{
    Harness, cg_heartbeat, cg_join, commit_request, fetch_request, test_config, topics,
};
use sluice_coordinator::{GroupRequest, OffsetFetchGroup};
use sluice_protocol::ResponseError;

fn commit_error(h: &mut Harness, version: i16, member: &str, epoch: i32) -> i16 {
    let id = h.send(
        version,
        GroupRequest::OffsetCommit(commit_request("g", member, epoch, &[("t", 0, 7)])),
    );
    h.take(id).commit().topics[0].partitions[0].error_code
}

fn fetch(h: &mut Harness, member: Option<&str>, epoch: i32) -> (i16, i64) {
    let request = OffsetFetchGroup {
        member_id: member.map(str::to_string),
        member_epoch: epoch,
        ..fetch_request("g", Some(&[("t", 0)]))
    };
    let id = h.send(9, GroupRequest::OffsetFetch(request));
    let group = h.take(id).fetch();
    let offset = group
        .topics
        .first()
        .map_or(-1, |t| t.partitions[0].committed_offset);
    (group.error_code, offset)
}

#[test]
fn members_commit_at_their_epoch_and_stale_epochs_are_refused() {
    let mut h = Harness::new(test_config());
    let image = topics(&[("t", 1)]);
    let r = h.cg(cg_join("g", "a", &["t"]), &image);
    assert_eq!(r.member_epoch, 1);
    assert_eq!(
        commit_error(&mut h, 9, "a", 0),
        ResponseError::StaleMemberEpoch.code()
    );
    assert_eq!(
        commit_error(&mut h, 9, "x", 1),
        ResponseError::UnknownMemberId.code()
    );
    assert_eq!(
        commit_error(&mut h, 8, "a", 1),
        ResponseError::UnsupportedVersion.code()
    );
    // The admin client may not commit while the group has members.
    assert_eq!(
        commit_error(&mut h, 9, "", -1),
        ResponseError::UnknownMemberId.code()
    );
    assert_eq!(commit_error(&mut h, 9, "a", 1), 0);

    assert_eq!(fetch(&mut h, Some("a"), 1), (0, 7));
    assert_eq!(
        fetch(&mut h, Some("a"), 0).0,
        ResponseError::StaleMemberEpoch.code()
    );
    assert_eq!(
        fetch(&mut h, Some("x"), 1).0,
        ResponseError::UnknownMemberId.code()
    );
    assert_eq!(fetch(&mut h, None, -1), (0, 7), "admin clients may read");

    // Once the group is empty the admin client commits, and the offsets outlive a reload.
    h.cg(cg_heartbeat("g", "a", -1, None), &image);
    assert_eq!(commit_error(&mut h, 9, "", -1), 0);
    h.reload();
    assert_eq!(fetch(&mut h, None, -1), (0, 7));
    assert!(h.coordinator.debug_consumer_groups().contains_key("g"));
}

#[test]
fn a_simple_group_with_offsets_becomes_a_consumer_group_and_keeps_them() {
    let mut h = Harness::new(test_config());
    let image = topics(&[("t", 1)]);
    assert_eq!(commit_error(&mut h, 9, "", -1), 0);
    assert!(h.group("g").is_some(), "a simple classic group");
    let r = h.cg(cg_join("g", "a", &["t"]), &image);
    assert_eq!(r.error_code, 0, "{:?}", r.error_message);
    assert!(h.group("g").is_none());
    assert_eq!(fetch(&mut h, Some("a"), r.member_epoch), (0, 7));
    h.reload();
    assert!(h.group("g").is_none(), "the classic group stays deleted");
    assert_eq!(fetch(&mut h, None, -1), (0, 7));
}

#[test]
fn an_empty_consumer_group_without_offsets_is_cleaned_up() {
    let mut h = Harness::new(test_config());
    let image = topics(&[("t", 1)]);
    h.cg(cg_join("g", "a", &["t"]), &image);
    h.cg(cg_heartbeat("g", "a", -1, None), &image);
    // The retention check runs every 10 minutes by default.
    h.advance(600_000);
    assert!(h.coordinator.debug_consumer_groups().is_empty());
    h.reload();
    assert!(h.coordinator.debug_consumer_groups().is_empty());
}
