//! Kafka's group coordinator as a sans-io state machine: classic groups and KIP-848
//! consumer groups.
//!
//! **Owns:** the groups and committed offsets of one `__consumer_offsets` partition —
//! for classic groups membership, generations, protocol election, the JoinGroup/SyncGroup
//! rebalance protocol with KIP-394 member ids and KIP-345 static members, heartbeats and
//! session expiry; for consumer groups (`group.protocol=consumer`, see [`consumer`]) the
//! ConsumerGroupHeartbeat protocol with server-side assignment, member reconciliation,
//! epochs, static members and session and rebalance timeouts; offset commit, fetch, delete
//! and retention, group deletion — and the on-disk format of that topic (Kafka's own record
//! schemas, so Kafka's tools read it). A group id is either a classic or a consumer group.
//!
//! **Must not know:** sockets, files, clocks, tokio, the storage crate, Raft, or how bytes
//! reach it. Requests arrive decoded, time arrives as `now_ms`, persistence is an
//! [`Effect::Append`] the broker carries out and acknowledges with [`Input::Appended`], and
//! the topics that consumer groups assign arrive as a [`TopicsImage`] with each
//! consumer group request.
//!
//! ```text
//!   broker shard (leader of __consumer_offsets partition p)
//!     │  GroupCoordinator::new ─▶ Input::Loaded(records of p)      (became leader)
//!     │  Input::Request / Input::Tick (at next_deadline) / Input::Appended
//!     ▼
//!   GroupCoordinator::handle(now_ms, input) ─▶ Vec<Effect>
//!     │  Effect::Respond { id, response }   ─▶ send to the client
//!     │  Effect::Append { token, records }  ─▶ append to p, then Input::Appended
//!     ▼
//!   Input::Unloaded                                                  (lost leadership)
//! ```
//!
//! The broker routes a group to the coordinator of
//! [`partition_for_group`]`(group_id, partitions)`; moving that partition's leadership
//! moves the coordinator, which rebuilds its state from the partition's records.
//!
//! A shard drives it like this (here a single member joining with JoinGroup v3, which
//! needs no second round trip, and no initial rebalance delay):
//!
//! ```
//! use std::time::Duration;
//! use sluice_coordinator::{Effect, GroupConfig, GroupCoordinator, GroupRequest, GroupResponse, Input, RequestId};
//! use sluice_protocol::kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
//! use sluice_protocol::kafka_protocol::messages::{GroupId, JoinGroupRequest};
//! use sluice_protocol::kafka_protocol::protocol::StrBytes;
//!
//! let config = GroupConfig { initial_rebalance_delay: Duration::ZERO, ..GroupConfig::default() };
//! let mut coordinator = GroupCoordinator::new(&config)?;
//! coordinator.handle(0, Input::Loaded(Vec::new())); // the partition's records
//!
//! let join = JoinGroupRequest::default()
//!     .with_group_id(GroupId(StrBytes::from_static_str("orders")))
//!     .with_session_timeout_ms(10_000)
//!     .with_protocol_type(StrBytes::from_static_str("consumer"))
//!     .with_protocols(vec![JoinGroupRequestProtocol::default().with_name(StrBytes::from_static_str("range"))]);
//! let effects = coordinator.handle(
//!     5,
//!     Input::Request {
//!         id: RequestId(1),
//!         api_version: 3,
//!         client_id: "consumer-1".into(),
//!         client_host: "/10.0.0.7".into(),
//!         body: GroupRequest::JoinGroup(join),
//!     },
//! );
//! for effect in effects {
//!     match effect {
//!         Effect::Respond { id, response: GroupResponse::JoinGroup(response) } => {
//!             assert_eq!(id, RequestId(1));
//!             assert_eq!(response.generation_id, 1);
//!             assert_eq!(response.leader, response.member_id);
//!         }
//!         Effect::Respond { .. } => unreachable!("only the JoinGroup was sent"),
//!         // Append the records to the partition, then report back with Input::Appended.
//!         Effect::Append { .. } => {}
//!     }
//! }
//! // Wake the coordinator when its next timer is due.
//! assert!(coordinator.next_deadline().is_some());
//! # Ok::<(), sluice_coordinator::ConfigError>(())
//! ```
//!
//! **Invariants:**
//! - every request gets exactly one [`Effect::Respond`], on success, error, or unload;
//! - an answer that depends on a write (SyncGroup, OffsetCommit, DeleteGroups,
//!   OffsetDelete) leaves only after that write is durable, and committed offsets are
//!   visible to OffsetFetch only once durable;
//! - appends are applied in the order they were emitted, so the durable state in memory
//!   is what reloading the partition would rebuild;
//! - within one load, a group's generation only increases, and each generation has one
//!   leader. (As in Kafka, generations reached by rebalances that were never persisted
//!   are not remembered across a reload.)
//! - a consumer group changes only by replaying the records it appends, so in memory it
//!   is what its durable records plus those in flight rebuild; a failed append rebuilds
//!   it from what is durable. No partition is owned by two of its members at once.

#![warn(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

mod config;
pub mod consumer;
mod coordinator;
mod effect;
mod group;
mod input;
mod member_id;
mod offsets;
mod placement;
pub mod record;
mod subscription;
mod timer;
mod topics;

#[cfg(feature = "testing")]
pub mod testing;

pub use config::{ConfigError, GroupConfig};
pub use coordinator::{CoordinatorStatus, GroupCoordinator, LoadReport};
pub use effect::{AppendToken, Effect, GroupResponse};
pub use group::GroupState;
pub use input::{
    AppendFailed, GroupRequest, Input, OffsetFetchGroup, OffsetFetchTopic, RequestId,
    offset_fetch_response,
};
pub use placement::{java_string_hash, partition_for_group};
pub use record::OffsetsRecord;
pub use topics::{TopicInfo, TopicsImage};
