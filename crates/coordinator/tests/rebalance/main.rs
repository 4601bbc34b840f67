//! Rebalance protocol: JoinGroup, SyncGroup, Heartbeat, LeaveGroup, static membership,
//! and the state transitions they drive.

mod heartbeat;
mod join;
mod leave;
mod static_membership;
mod sync;

use sluice_coordinator::testing::{Harness, test_config};
use sluice_coordinator::{GroupRequest, RequestId};
use sluice_protocol::ResponseError;

fn harness() -> Harness {
    Harness::new(test_config())
}

fn code(error: ResponseError) -> i16 {
    error.code()
}

/// Sends a JoinGroup at the latest version from client "client".
fn send_join(h: &mut Harness, request: kafka_protocol::messages::JoinGroupRequest) -> RequestId {
    h.send(
        sluice_coordinator::testing::version::JOIN,
        GroupRequest::JoinGroup(request),
    )
}

use sluice_protocol::kafka_protocol;
