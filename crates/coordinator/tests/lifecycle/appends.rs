use sluice_coordinator::testing::{commit_request, fetch_request, version};
use sluice_coordinator::{AppendFailed, Effect, GroupRequest, Input};

use super::harness;

#[test]
fn appends_apply_in_emission_order_whatever_order_results_arrive_in() {
    let mut h = harness();
    h.auto_append = false;
    let first = h.send(
        version::COMMIT,
        GroupRequest::OffsetCommit(commit_request("g", "", -1, &[("t", 0, 1)])),
    );
    let second = h.send(
        version::COMMIT,
        GroupRequest::OffsetCommit(commit_request("g", "", -1, &[("t", 0, 2)])),
    );
    let (token1, _) = h.appends.pop_front().unwrap();
    let (token2, records2) = h.appends.pop_front().unwrap();
    // The second write is durable first: it waits for the first.
    h.input(Input::Appended {
        token: token2,
        result: Ok(()),
    });
    assert!(!h.has_response(first) && !h.has_response(second));
    h.input(Input::Appended {
        token: token1,
        result: Err(AppendFailed::TimedOut),
    });
    assert_ne!(h.take(first).commit().topics[0].partitions[0].error_code, 0);
    assert_eq!(
        h.take(second).commit().topics[0].partitions[0].error_code,
        0
    );
    h.log.extend(records2);
    let id = h.send(
        version::FETCH,
        GroupRequest::OffsetFetch(fetch_request("g", Some(&[("t", 0)]))),
    );
    assert_eq!(
        h.take(id).fetch().topics[0].partitions[0].committed_offset,
        2
    );
}

#[test]
fn a_result_for_an_unknown_or_repeated_token_is_ignored() {
    let mut h = harness();
    h.auto_append = false;
    let commit = h.send(
        version::COMMIT,
        GroupRequest::OffsetCommit(commit_request("g", "", -1, &[("t", 0, 1)])),
    );
    let (token, _) = h.appends.pop_front().unwrap();
    let effects = h.coordinator.handle(
        h.now_ms,
        Input::Appended {
            token,
            result: Ok(()),
        },
    );
    assert!(matches!(effects.as_slice(), [Effect::Respond { id, .. }] if *id == commit));
    let again = h.coordinator.handle(
        h.now_ms,
        Input::Appended {
            token,
            result: Err(AppendFailed::Other),
        },
    );
    assert!(again.is_empty());
    h.outstanding.clear();
}

#[test]
fn time_does_not_go_backwards() {
    let mut h = harness();
    let (_, _) = h.stable_group("g", &["a"]);
    h.now_ms = 20_000;
    h.input(Input::Tick);
    assert_eq!(
        h.group("g").unwrap().members.len(),
        0,
        "the session ran out at 10 s"
    );
    h.now_ms = 0;
    h.input(Input::Tick);
    let deadline = h.coordinator.next_deadline().unwrap();
    assert!(
        deadline > 20_000,
        "timers are relative to the latest time seen: {deadline}"
    );
}
