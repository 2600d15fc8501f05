//! DeleteRecords: move partitions' log start offsets forward.

use std::sync::Arc;

use ferrolog_storage::StorageError;
use kafka_protocol::messages::delete_records_response::{
    DeleteRecordsPartitionResult, DeleteRecordsTopicResult,
};
use kafka_protocol::messages::{DeleteRecordsRequest, DeleteRecordsResponse};
use kafka_protocol::ResponseError;

use crate::replica_manager::PartitionError;
use crate::Broker;

pub fn handle(broker: &Arc<Broker>, request: DeleteRecordsRequest) -> DeleteRecordsResponse {
    let mut response = DeleteRecordsResponse::default();
    let now = crate::now_ms();
    let mut changed = false;
    for topic in request.topics {
        let mut result = DeleteRecordsTopicResult::default().with_name(topic.name.clone());
        for p in topic.partitions {
            let mut r = DeleteRecordsPartitionResult::default()
                .with_partition_index(p.partition_index)
                .with_low_watermark(-1);
            match broker.replicas.get(&topic.name.0, p.partition_index) {
                None => r.error_code = ResponseError::UnknownTopicOrPartition.code(),
                Some(partition) => match partition.delete_records(p.offset, now) {
                    Ok((start, deleted, delay)) => {
                        r.low_watermark = start;
                        broker.schedule_deletion(deleted, delay);
                        changed = true;
                    }
                    Err(e) => {
                        if let PartitionError::Storage(e) = &e {
                            if !matches!(e, StorageError::OffsetOutOfRange { .. }) {
                                tracing::error!(
                                    topic = partition.topic,
                                    partition = partition.index,
                                    "delete records failed: {e}"
                                );
                            }
                        }
                        r.error_code = e.code();
                    }
                },
            }
            result.partitions.push(r);
        }
        response.topics.push(result);
    }
    if changed {
        // The new log start offsets must survive a crash: checkpoint now.
        if let Err(e) = broker.replicas.checkpoint() {
            tracing::error!("writing checkpoints failed: {e}");
        }
    }
    response
}
