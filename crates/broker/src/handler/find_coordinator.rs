//! FindCoordinator: every group and transaction is coordinated by this node until
//! replication moves coordinators to `__consumer_offsets` partition leaders.

use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::{BrokerId, FindCoordinatorRequest, FindCoordinatorResponse};
use sluice_protocol::kafka_protocol;

use super::{RequestContext, str_bytes};

pub(super) fn handle(ctx: &RequestContext, req: FindCoordinatorRequest) -> FindCoordinatorResponse {
    let config = &ctx.node().config;
    let host = str_bytes(config.kafka_addr.ip().to_string());
    let port = i32::from(config.kafka_addr.port());
    let node_id = BrokerId(config.node_id);
    if ctx.api_version >= 4 {
        let coordinators = req
            .coordinator_keys
            .into_iter()
            .map(|key| {
                Coordinator::default()
                    .with_key(key)
                    .with_node_id(node_id)
                    .with_host(host.clone())
                    .with_port(port)
            })
            .collect();
        FindCoordinatorResponse::default().with_coordinators(coordinators)
    } else {
        FindCoordinatorResponse::default()
            .with_node_id(node_id)
            .with_host(host)
            .with_port(port)
    }
}
