//! EndTxn: commit or abort the producer's transaction (answered once the outcome is committed).

use std::sync::Arc;

use kafka_protocol::messages::{EndTxnRequest, EndTxnResponse};

use crate::Broker;

pub async fn handle(broker: &Arc<Broker>, request: EndTxnRequest) -> EndTxnResponse {
    let code = match broker
        .end_txn(
            &request.transactional_id.0,
            request.producer_id.0,
            request.producer_epoch,
            request.committed,
        )
        .await
    {
        Ok(()) => 0,
        Err(e) => e.code(),
    };
    EndTxnResponse::default().with_error_code(code)
}
