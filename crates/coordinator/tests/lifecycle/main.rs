//! The coordinator's life as partition leader: loading, serving, reloading, unloading;
//! read-only APIs (DescribeGroups, ListGroups); the ordering of appends.

mod appends;
mod describe;
mod load;

use sluice_coordinator::testing::{Harness, test_config};
use sluice_protocol::ResponseError;

fn harness() -> Harness {
    Harness::new(test_config())
}

fn code(error: ResponseError) -> i16 {
    error.code()
}
