//! Request handlers, one Kafka API per file, and the dispatch from a decoded request to
//! its handler. Handlers run on the shard that read the request and reach partitions on
//! other shards through [`crate::shard::NodeShared::on_shard`].

use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;

use kafka_protocol::messages::{RequestKind, ResponseKind};
use kafka_protocol::protocol::StrBytes;
use sluice_protocol::{Request, kafka_protocol};

use crate::shard::{NodeShared, Shard};

pub(crate) mod admin;
mod alter_configs;
mod api_versions;
mod create_partitions;
mod create_topics;
mod delete_records;
mod delete_topics;
mod describe_configs;
mod describe_log_dirs;
mod fetch;
mod find_coordinator;
mod group;
mod incremental_alter_configs;
mod init_producer_id;
mod list_offsets;
mod metadata;
mod produce;

pub(crate) use api_versions::unsupported_version_response;

/// What a handler knows about the request it serves.
pub(crate) struct RequestContext {
    pub(crate) shard: Rc<Shard>,
    pub(crate) api_version: i16,
    /// The request header's `client.id` (empty when null).
    pub(crate) client_id: String,
    /// The client's address.
    pub(crate) peer: SocketAddr,
}

impl RequestContext {
    pub(crate) fn node(&self) -> &Arc<NodeShared> {
        &self.shard.node
    }
}

/// What the connection does once a handler is done.
pub(crate) enum Reply {
    /// Send this response.
    Respond(Box<ResponseKind>),
    /// Send nothing (Produce with acks=0).
    Silent,
    /// Close the connection: Kafka's way to tell an acks=0 producer that a write failed.
    Close,
}

/// Runs the handler for `request`.
pub(crate) async fn dispatch(shard: Rc<Shard>, request: Request, peer: SocketAddr) -> Reply {
    let ctx = RequestContext {
        shard,
        api_version: request.api_version,
        client_id: request
            .header
            .client_id
            .as_ref()
            .map(|c| c.to_string())
            .unwrap_or_default(),
        peer,
    };
    Reply::Respond(Box::new(match request.body {
        RequestKind::ApiVersions(_) => api_versions::handle(&ctx).into(),
        RequestKind::Metadata(req) => metadata::handle(&ctx, req).await.into(),
        RequestKind::CreateTopics(req) => create_topics::handle(&ctx, req).await.into(),
        RequestKind::DeleteTopics(req) => delete_topics::handle(&ctx, req).await.into(),
        RequestKind::Produce(req) => return produce::handle(&ctx, req).await,
        RequestKind::Fetch(req) => fetch::handle(&ctx, req).await.into(),
        RequestKind::ListOffsets(req) => list_offsets::handle(&ctx, req).await.into(),
        RequestKind::InitProducerId(req) => init_producer_id::handle(&ctx, req).into(),
        RequestKind::FindCoordinator(req) => find_coordinator::handle(&ctx, req).await.into(),
        RequestKind::DescribeConfigs(req) => describe_configs::handle(&ctx, req).into(),
        RequestKind::AlterConfigs(req) => alter_configs::handle(&ctx, req).await.into(),
        RequestKind::IncrementalAlterConfigs(req) => {
            incremental_alter_configs::handle(&ctx, req).await.into()
        }
        RequestKind::CreatePartitions(req) => create_partitions::handle(&ctx, req).await.into(),
        RequestKind::DescribeLogDirs(req) => describe_log_dirs::handle(&ctx, req).await.into(),
        RequestKind::DeleteRecords(req) => delete_records::handle(&ctx, req).await.into(),
        RequestKind::JoinGroup(req) => group::join_group(&ctx, req).await.into(),
        RequestKind::SyncGroup(req) => group::sync_group(&ctx, req).await.into(),
        RequestKind::Heartbeat(req) => group::heartbeat(&ctx, req).await.into(),
        RequestKind::LeaveGroup(req) => group::leave_group(&ctx, req).await.into(),
        RequestKind::OffsetCommit(req) => group::offset_commit(&ctx, req).await.into(),
        RequestKind::OffsetFetch(req) => group::offset_fetch(&ctx, req).await.into(),
        RequestKind::OffsetDelete(req) => group::offset_delete(&ctx, req).await.into(),
        RequestKind::DescribeGroups(req) => group::describe_groups(&ctx, req).await.into(),
        RequestKind::ListGroups(req) => group::list_groups(&ctx, req).await.into(),
        RequestKind::DeleteGroups(req) => group::delete_groups(&ctx, req).await.into(),
        RequestKind::ConsumerGroupHeartbeat(req) => {
            group::consumer_group_heartbeat(&ctx, req).await.into()
        }
        RequestKind::ConsumerGroupDescribe(req) => {
            group::consumer_group_describe(&ctx, req).await.into()
        }
        // The version table only lets served APIs through decoding.
        _ => return Reply::Close,
    }))
}

/// A `StrBytes` from an owned string.
pub(crate) fn str_bytes(s: impl Into<String>) -> StrBytes {
    StrBytes::from_string(s.into())
}

/// Milliseconds since the Unix epoch.
pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}
