//! Offsets: commit, fetch, delete (offsets and groups) and retention.

mod commit;
mod delete;
mod expiry;
mod fetch;

use sluice_coordinator::testing::{Harness, commit_request, fetch_request, test_config, version};
use sluice_coordinator::{GroupRequest, RequestId};
use sluice_protocol::ResponseError;
use sluice_protocol::kafka_protocol::messages::OffsetCommitResponse;

fn harness() -> Harness {
    Harness::new(test_config())
}

fn code(error: ResponseError) -> i16 {
    error.code()
}

/// A commit with generation -1 and no member id, as the admin client or a consumer that
/// assigns partitions itself sends.
fn simple_commit(h: &mut Harness, group: &str, offsets: &[(&str, i32, i64)]) -> RequestId {
    h.send(
        version::COMMIT,
        GroupRequest::OffsetCommit(commit_request(group, "", -1, offsets)),
    )
}

/// Partition errors in request order.
fn errors(response: &OffsetCommitResponse) -> Vec<i16> {
    response
        .topics
        .iter()
        .flat_map(|t| t.partitions.iter().map(|p| p.error_code))
        .collect()
}

/// The committed offsets of `group` for the listed partitions, -1 where none.
fn fetched(h: &mut Harness, group: &str, partitions: &[(&str, i32)]) -> Vec<i64> {
    let id = h.send(
        version::FETCH,
        GroupRequest::OffsetFetch(fetch_request(group, Some(partitions))),
    );
    let response = h.take(id).fetch();
    assert_eq!(response.error_code, 0);
    response
        .topics
        .iter()
        .flat_map(|t| t.partitions.iter().map(|p| p.committed_offset))
        .collect()
}
