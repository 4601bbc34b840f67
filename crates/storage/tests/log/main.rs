//! Integration tests of `sluice_storage::Log`, one binary with a module per area.

#![allow(missing_docs, unreachable_pub)]

mod backend;
mod batch;
mod compaction;
mod crash;
mod fixture;
mod lifecycle;
mod model;
mod recovery;
mod roundtrip;
mod timestamp;
