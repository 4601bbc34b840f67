//! Rebalance protocol: JoinGroup, SyncGroup, Heartbeat, LeaveGroup, static membership,
//! and the state transitions they drive.

mod join;

use sluice_coordinator::testing::{Harness, test_config};

fn harness() -> Harness {
    Harness::new(test_config())
}
