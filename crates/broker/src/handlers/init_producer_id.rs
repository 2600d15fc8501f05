//! InitProducerId: a producer id for idempotent producers; for transactional ones, the
//! transaction coordinator's producer id and a new epoch (fencing earlier instances).

use std::sync::Arc;

use kafka_protocol::messages::{InitProducerIdRequest, InitProducerIdResponse, ProducerId};
use kafka_protocol::ResponseError;

use crate::Broker;

pub async fn handle(
    broker: &Arc<Broker>,
    request: InitProducerIdRequest,
) -> InitProducerIdResponse {
    let response = InitProducerIdResponse::default()
        .with_producer_id(ProducerId(-1))
        .with_producer_epoch(-1);
    if request.enable_2_pc {
        // two-phase commit with an external coordinator (KIP-939) is not supported
        return response.with_error_code(ResponseError::TransactionalIdAuthorizationFailed.code());
    }
    if let Some(id) = &request.transactional_id {
        if id.0.is_empty() {
            return response.with_error_code(ResponseError::InvalidRequest.code());
        }
        return match broker
            .init_transactional_producer(
                &id.0,
                request.transaction_timeout_ms,
                request.producer_id.0,
                request.producer_epoch,
            )
            .await
        {
            Ok((pid, epoch)) => response
                .with_producer_id(ProducerId(pid))
                .with_producer_epoch(epoch),
            Err(e) => response.with_error_code(e.code()),
        };
    }
    match broker.allocate_producer_id() {
        Ok(id) => response
            .with_producer_id(ProducerId(id))
            .with_producer_epoch(0),
        Err(e) => response.with_error_code(e.code()),
    }
}
