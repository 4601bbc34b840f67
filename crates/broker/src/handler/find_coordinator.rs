//! FindCoordinator: a group's coordinator is the leader of its `__consumer_offsets`
//! partition (created on first use, as Kafka does). On one node that is this node; the
//! lookup already goes through the partition so that replication only changes who
//! leads it. Transaction coordinators are this node too, until transactions exist.

use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::{BrokerId, FindCoordinatorRequest, FindCoordinatorResponse};
use kafka_protocol::protocol::StrBytes;
use sluice_protocol::{ResponseError, kafka_protocol};

use super::{RequestContext, group, str_bytes};

/// `key_type` of a consumer group.
const GROUP: i8 = 0;
/// `key_type` of a transactional id.
const TRANSACTION: i8 = 1;

/// Where the coordinator of `key` is, or why it cannot be named.
async fn locate(ctx: &RequestContext, key_type: i8, key: &str) -> Result<BrokerId, ResponseError> {
    match key_type {
        GROUP => {
            if key.is_empty() {
                return Err(ResponseError::InvalidRequest);
            }
            let topic = group::offsets_topic(ctx).await?;
            let partitions = u32::try_from(topic.partitions.len())
                .ok()
                .filter(|&n| n > 0)
                .ok_or(ResponseError::CoordinatorNotAvailable)?;
            let index = sluice_coordinator::partition_for_group(key, partitions);
            let index = i32::try_from(index).map_err(|_| ResponseError::CoordinatorNotAvailable)?;
            // Single node: the partition's leader is this node whenever it exists.
            topic
                .partition(index)
                .map(|_| BrokerId(ctx.node().config.node_id))
                .ok_or(ResponseError::CoordinatorNotAvailable)
        }
        TRANSACTION => Ok(BrokerId(ctx.node().config.node_id)),
        _ => Err(ResponseError::InvalidRequest),
    }
}

pub(super) async fn handle(
    ctx: &RequestContext,
    req: FindCoordinatorRequest,
) -> FindCoordinatorResponse {
    let config = &ctx.node().config;
    let host = str_bytes(config.kafka_addr.ip().to_string());
    let port = i32::from(config.kafka_addr.port());
    // v0 has no key type: it asks for a group.
    let key_type = if ctx.api_version >= 1 {
        req.key_type
    } else {
        GROUP
    };
    if ctx.api_version >= 4 {
        let mut coordinators = Vec::with_capacity(req.coordinator_keys.len());
        for key in req.coordinator_keys {
            let found = locate(ctx, key_type, &key).await;
            coordinators.push(coordinator_entry(key, found, &host, port));
        }
        return FindCoordinatorResponse::default().with_coordinators(coordinators);
    }
    match locate(ctx, key_type, &req.key).await {
        Ok(node_id) => FindCoordinatorResponse::default()
            .with_node_id(node_id)
            .with_host(host)
            .with_port(port),
        Err(error) => FindCoordinatorResponse::default()
            .with_error_code(error.code())
            .with_error_message(Some(str_bytes(error.to_string())))
            .with_node_id(BrokerId(-1))
            .with_host(str_bytes(""))
            .with_port(-1),
    }
}

fn coordinator_entry(
    key: StrBytes,
    found: Result<BrokerId, ResponseError>,
    host: &StrBytes,
    port: i32,
) -> Coordinator {
    match found {
        Ok(node_id) => Coordinator::default()
            .with_key(key)
            .with_node_id(node_id)
            .with_host(host.clone())
            .with_port(port),
        Err(error) => Coordinator::default()
            .with_key(key)
            .with_node_id(BrokerId(-1))
            .with_host(str_bytes(""))
            .with_port(-1)
            .with_error_code(error.code())
            .with_error_message(Some(str_bytes(error.to_string()))),
    }
}
