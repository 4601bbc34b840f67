//! KIP-848 consumer groups: heartbeats, reconciliation, fencing, leaves, static members,
//! timeouts, the interplay with classic groups and offsets, describe and reload, and a
//! simulation over random heartbeat sequences.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod heartbeat;
mod offsets;
mod simulation;
