//! ListOffsets: earliest (-2, -4), latest (-1), max timestamp (-3), and by timestamp through the
//! time index, refined to the exact record inside the batch.

use std::sync::Arc;

use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::{ListOffsetsRequest, ListOffsetsResponse};
use kafka_protocol::ResponseError;

use crate::partition::OffsetSpec;
use crate::Broker;

const LATEST: i64 = -1;
const EARLIEST: i64 = -2;
const MAX_TIMESTAMP: i64 = -3;
const EARLIEST_LOCAL: i64 = -4;

/// What a ListOffsets target asks for.
fn spec(target: i64) -> Option<OffsetSpec> {
    Some(match target {
        LATEST => OffsetSpec::Latest,
        EARLIEST | EARLIEST_LOCAL => OffsetSpec::Earliest,
        MAX_TIMESTAMP => OffsetSpec::MaxTimestamp,
        t if t >= 0 => OffsetSpec::Timestamp(t),
        _ => return None,
    })
}

pub fn handle(
    broker: &Arc<Broker>,
    request: ListOffsetsRequest,
    version: i16,
) -> ListOffsetsResponse {
    let mut response = ListOffsetsResponse::default();
    let read_committed = version >= 2 && request.isolation_level == 1;
    for topic in request.topics {
        let mut topic_response = ListOffsetsTopicResponse::default().with_name(topic.name.clone());
        for p in topic.partitions {
            let mut r = ListOffsetsPartitionResponse::default()
                .with_partition_index(p.partition_index)
                .with_timestamp(-1)
                .with_offset(-1)
                .with_leader_epoch(-1);
            let found = match broker.replicas.get(&topic.name.0, p.partition_index) {
                None => Err(ResponseError::UnknownTopicOrPartition.code()),
                Some(partition) => match partition.leader_at(p.current_leader_epoch) {
                    Err(e) => Err(e.code()),
                    Ok(_) => match spec(p.timestamp) {
                        None => Ok(None),
                        Some(spec) => partition.list_offset(spec, read_committed).map_err(|e| {
                            tracing::error!("list offsets failed: {e:#}");
                            ResponseError::KafkaStorageError.code()
                        }),
                    },
                },
            };
            match found {
                Err(code) => r.error_code = code,
                Ok(None) => {}
                Ok(Some(found)) => {
                    r.offset = found.offset;
                    r.timestamp = found.timestamp;
                    if version >= 4 {
                        r.leader_epoch = found.leader_epoch;
                    }
                }
            }
            topic_response.partitions.push(r);
        }
        response.topics.push(topic_response);
    }
    response
}
