//! InitProducerId for idempotent producers. Transactional ids are refused until the
//! transaction coordinator exists (issue 5).

use std::sync::Arc;

use kafka_protocol::messages::{InitProducerIdRequest, InitProducerIdResponse, ProducerId};
use kafka_protocol::ResponseError;

use crate::Broker;

pub fn handle(broker: &Arc<Broker>, request: InitProducerIdRequest) -> InitProducerIdResponse {
    let response = InitProducerIdResponse::default()
        .with_producer_id(ProducerId(-1))
        .with_producer_epoch(-1);
    if request.transactional_id.is_some() {
        return response.with_error_code(ResponseError::TransactionalIdAuthorizationFailed.code());
    }
    match broker.controller.next_producer_id() {
        Ok(id) => response
            .with_producer_id(ProducerId(id))
            .with_producer_epoch(0),
        Err(e) => {
            tracing::error!("allocating a producer id failed: {e:#}");
            response.with_error_code(ResponseError::CoordinatorNotAvailable.code())
        }
    }
}
