//! EndTxn: commit or abort the producer's transaction (markers are written before the answer).

use std::sync::Arc;

use kafka_protocol::messages::{EndTxnRequest, EndTxnResponse};

use crate::Broker;

pub fn handle(broker: &Arc<Broker>, request: EndTxnRequest) -> EndTxnResponse {
    let code = match broker.end_txn(
        &request.transactional_id.0,
        request.producer_id.0,
        request.producer_epoch,
        request.committed,
    ) {
        Ok(()) => 0,
        Err(e) => e.code(),
    };
    EndTxnResponse::default().with_error_code(code)
}
