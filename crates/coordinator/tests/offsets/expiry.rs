use std::time::Duration;

use sluice_coordinator::testing::{Harness, commit_request, leave_request, test_config, version};
use sluice_coordinator::{AppendFailed, GroupConfig, GroupRequest, GroupState};

use super::{fetched, simple_commit};

const RETENTION_MS: i64 = 100_000;
const CHECK_MS: i64 = 10_000;

fn harness() -> Harness {
    Harness::new(GroupConfig {
        offsets_retention: Duration::from_millis(RETENTION_MS.unsigned_abs()),
        offsets_retention_check_interval: Duration::from_millis(CHECK_MS.unsigned_abs()),
        ..test_config()
    })
}

/// Runs cleanups until `until_ms`.
fn run_until(h: &mut Harness, until_ms: i64) {
    while h.now_ms + CHECK_MS <= until_ms {
        h.advance(CHECK_MS);
    }
}

#[test]
fn offsets_of_a_simple_group_expire_from_their_commit() {
    let mut h = harness();
    let id = simple_commit(&mut h, "g", &[("t", 0, 1)]);
    h.take(id);
    run_until(&mut h, RETENTION_MS - CHECK_MS);
    assert_eq!(fetched(&mut h, "g", &[("t", 0)]), vec![1]);
    run_until(&mut h, RETENTION_MS);
    assert_eq!(fetched(&mut h, "g", &[("t", 0)]), vec![-1]);
    assert!(
        h.group("g").is_none(),
        "an empty group with no offsets is deleted"
    );
}

#[test]
fn offsets_of_an_emptied_group_expire_from_when_it_became_empty() {
    let mut h = harness();
    let (members, generation) = h.stable_group("g", &["a"]);
    let commit = commit_request("g", &members[0], generation, &[("t", 0, 1)]);
    let id = h.send(version::COMMIT, GroupRequest::OffsetCommit(commit));
    h.take(id);
    // Members keep the group alive (and the subscribed topic's offsets) for a while.
    for _ in 0..10 {
        h.advance(5_000);
        let beat = sluice_coordinator::testing::heartbeat_request("g", &members[0], generation);
        let id = h.send(version::HEARTBEAT, GroupRequest::Heartbeat(beat));
        assert_eq!(h.take(id).heartbeat().error_code, 0);
    }
    let id = h.send(
        version::LEAVE,
        GroupRequest::LeaveGroup(leave_request("g", &[(&members[0], None)])),
    );
    h.take(id);
    let emptied_at = h.now_ms;
    assert_eq!(h.group("g").unwrap().state, GroupState::Empty);
    // Retention has passed since the commit, but not since the group became Empty.
    run_until(&mut h, emptied_at + RETENTION_MS - CHECK_MS);
    assert_eq!(fetched(&mut h, "g", &[("t", 0)]), vec![1]);
    run_until(&mut h, emptied_at + RETENTION_MS);
    assert_eq!(fetched(&mut h, "g", &[("t", 0)]), vec![-1]);
    assert!(h.group("g").is_none());
}

#[test]
fn a_stable_consumer_group_keeps_subscribed_offsets_and_expires_the_rest() {
    let mut h = harness();
    let (members, generation) = h.stable_group("g", &["a"]); // subscribed to "t"
    let commit = commit_request("g", &members[0], generation, &[("t", 0, 1), ("old", 0, 2)]);
    let id = h.send(version::COMMIT, GroupRequest::OffsetCommit(commit));
    h.take(id);
    while h.now_ms < RETENTION_MS {
        h.advance(CHECK_MS / 2);
        let beat = sluice_coordinator::testing::heartbeat_request("g", &members[0], generation);
        let id = h.send(version::HEARTBEAT, GroupRequest::Heartbeat(beat));
        h.take(id);
    }
    assert_eq!(fetched(&mut h, "g", &[("t", 0), ("old", 0)]), vec![1, -1]);
    assert_eq!(h.group("g").unwrap().state, GroupState::Stable);
}

#[test]
fn an_explicit_expire_timestamp_is_honoured() {
    let mut h = harness();
    let request = commit_request("g", "", -1, &[("t", 0, 1)]).with_retention_time_ms(25_000);
    let id = h.send(2, GroupRequest::OffsetCommit(request));
    h.take(id);
    run_until(&mut h, 20_000);
    assert_eq!(fetched(&mut h, "g", &[("t", 0)]), vec![1]);
    run_until(&mut h, 30_000);
    assert_eq!(fetched(&mut h, "g", &[("t", 0)]), vec![-1]);
}

#[test]
fn a_group_without_members_or_offsets_is_deleted_at_the_next_cleanup() {
    let mut h = harness();
    let (members, _) = h.stable_group("g", &["a"]);
    let id = h.send(
        version::LEAVE,
        GroupRequest::LeaveGroup(leave_request("g", &[(&members[0], None)])),
    );
    h.take(id);
    h.advance(CHECK_MS);
    assert!(h.group("g").is_none());
    let tombstone = h.log.last().unwrap();
    assert!(tombstone.value.is_none());
}

#[test]
fn a_failed_cleanup_write_is_retried() {
    let mut h = harness();
    let id = simple_commit(&mut h, "g", &[("t", 0, 1)]);
    h.take(id);
    h.auto_append = false;
    run_until(&mut h, RETENTION_MS);
    assert_eq!(
        h.group("g").unwrap().state,
        GroupState::Dead,
        "being deleted"
    );
    h.complete_append(Err(AppendFailed::TimedOut));
    assert_eq!(h.group("g").unwrap().state, GroupState::Empty);
    assert_eq!(fetched(&mut h, "g", &[("t", 0)]), vec![1]);
    h.auto_append = true;
    h.advance(CHECK_MS);
    assert!(h.group("g").is_none());
}

#[test]
fn a_commit_in_flight_keeps_its_group() {
    let mut h = harness();
    let id = simple_commit(&mut h, "g", &[("t", 0, 1)]);
    h.take(id);
    h.now_ms = RETENTION_MS + 1;
    h.auto_append = false;
    let commit = simple_commit(&mut h, "g", &[("u", 0, 2)]);
    run_until(&mut h, RETENTION_MS + CHECK_MS);
    h.complete_all_appends();
    h.take(commit);
    assert_eq!(fetched(&mut h, "g", &[("t", 0), ("u", 0)]), vec![-1, 2]);
    assert_eq!(h.group("g").unwrap().state, GroupState::Empty);
}
