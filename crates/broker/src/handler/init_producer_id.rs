//! InitProducerId: enough for idempotent producers (on by default in the Java client).
//! Transactions are not served yet, so a transactional id is refused.

use kafka_protocol::messages::{InitProducerIdRequest, InitProducerIdResponse, ProducerId};
use sluice_protocol::{ResponseError, kafka_protocol};
use tracing::warn;

use super::RequestContext;

pub(super) fn handle(ctx: &RequestContext, req: InitProducerIdRequest) -> InitProducerIdResponse {
    let failed = |error: ResponseError| {
        InitProducerIdResponse::default()
            .with_error_code(error.code())
            .with_producer_id(ProducerId(-1))
            .with_producer_epoch(-1)
    };
    if req.transactional_id.is_some() {
        return failed(ResponseError::CoordinatorNotAvailable);
    }
    // A producer re-initialising its own id (KIP-360) gets the next epoch.
    if req.producer_id.0 >= 0
        && req.producer_epoch >= 0
        && let Some(epoch) = req.producer_epoch.checked_add(1)
    {
        return InitProducerIdResponse::default()
            .with_producer_id(req.producer_id)
            .with_producer_epoch(epoch);
    }
    match ctx.node().next_producer_id() {
        Ok(id) => InitProducerIdResponse::default()
            .with_producer_id(ProducerId(id))
            .with_producer_epoch(0),
        Err(error) => {
            warn!(%error, "cannot persist producer id block");
            failed(ResponseError::KafkaStorageError)
        }
    }
}
