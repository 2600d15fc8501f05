//! WriteTxnMarkers: COMMIT or ABORT markers written straight to partitions. The coordinator
//! writes its own markers directly on a single node; this API is what
//! `kafka-transactions.sh abort` uses to end a hanging transaction.

use std::sync::Arc;

use kafka_protocol::messages::write_txn_markers_response::{
    WritableTxnMarkerPartitionResult, WritableTxnMarkerResult, WritableTxnMarkerTopicResult,
};
use kafka_protocol::messages::{WriteTxnMarkersRequest, WriteTxnMarkersResponse};
use kafka_protocol::ResponseError;

use crate::group::OFFSETS_TOPIC;
use crate::Broker;

pub fn handle(broker: &Arc<Broker>, request: WriteTxnMarkersRequest) -> WriteTxnMarkersResponse {
    let mut response = WriteTxnMarkersResponse::default();
    let now = crate::now_ms();
    for marker in request.markers {
        let mut result = WritableTxnMarkerResult::default().with_producer_id(marker.producer_id);
        for t in &marker.topics {
            let mut topic = WritableTxnMarkerTopicResult::default().with_name(t.name.clone());
            for index in &t.partition_indexes {
                let code = match broker.replicas.get(&t.name.0, *index) {
                    None => ResponseError::UnknownTopicOrPartition.code(),
                    Some(p) => match p.append_marker(
                        marker.producer_id.0,
                        marker.producer_epoch,
                        marker.transaction_result,
                        marker.coordinator_epoch,
                        now,
                    ) {
                        Ok(_) => {
                            if *t.name.0 == *OFFSETS_TOPIC {
                                broker.groups.complete_txn_offsets(
                                    marker.producer_id.0,
                                    marker.transaction_result,
                                );
                            }
                            0
                        }
                        Err(e) => e.code(),
                    },
                };
                topic.partitions.push(
                    WritableTxnMarkerPartitionResult::default()
                        .with_partition_index(*index)
                        .with_error_code(code),
                );
            }
            result.topics.push(topic);
        }
        response.markers.push(result);
    }
    response
}
