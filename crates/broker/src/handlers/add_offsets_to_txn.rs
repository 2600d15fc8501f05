//! AddOffsetsToTxn: the group's `__consumer_offsets` partition joins the transaction, so
//! TxnOffsetCommit can write to it.

use std::sync::Arc;

use kafka_protocol::messages::{AddOffsetsToTxnRequest, AddOffsetsToTxnResponse};
use kafka_protocol::ResponseError;

use crate::group::{offsets_partition, OFFSETS_TOPIC};
use crate::Broker;

pub async fn handle(
    broker: &Arc<Broker>,
    request: AddOffsetsToTxnRequest,
) -> AddOffsetsToTxnResponse {
    let response = AddOffsetsToTxnResponse::default();
    if request.group_id.0.is_empty() {
        return response.with_error_code(ResponseError::InvalidGroupId.code());
    }
    let partitions = match broker.ensure_offsets_topic() {
        Ok(n) => n,
        Err(e) => {
            tracing::error!("creating {OFFSETS_TOPIC} failed: {e:#}");
            return response.with_error_code(ResponseError::CoordinatorNotAvailable.code());
        }
    };
    let tp = (
        OFFSETS_TOPIC.to_string(),
        offsets_partition(&request.group_id.0, partitions),
    );
    let code = match broker
        .add_partitions_to_txn(
            &request.transactional_id.0,
            request.producer_id.0,
            request.producer_epoch,
            &[tp],
        )
        .await
    {
        Err(e) => e.code(),
        Ok(errors) => errors.first().map_or(0, |(_, e)| e.code()),
    };
    response.with_error_code(code)
}
