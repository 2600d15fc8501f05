//! OffsetForLeaderEpoch: where a leader epoch ended in the leader's log. Followers reconcile
//! their logs with it after a leader change; clients validate their positions with it.

use std::sync::Arc;

use kafka_protocol::messages::offset_for_leader_epoch_response::{
    EpochEndOffset, OffsetForLeaderTopicResult,
};
use kafka_protocol::messages::{OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse};
use kafka_protocol::ResponseError;

use crate::Broker;

pub fn handle(
    broker: &Arc<Broker>,
    request: OffsetForLeaderEpochRequest,
) -> OffsetForLeaderEpochResponse {
    let mut response = OffsetForLeaderEpochResponse::default();
    for topic in request.topics {
        let mut result = OffsetForLeaderTopicResult::default().with_topic(topic.topic.clone());
        for p in topic.partitions {
            let mut r = EpochEndOffset::default()
                .with_partition(p.partition)
                .with_leader_epoch(-1)
                .with_end_offset(-1);
            match broker.replicas.get(&topic.topic.0, p.partition) {
                None => r.error_code = ResponseError::UnknownTopicOrPartition.code(),
                Some(partition) => match partition.leader_at(p.current_leader_epoch) {
                    Err(e) => r.error_code = e.code(),
                    Ok(_) => {
                        // -1, -1: this log has no epoch that old
                        let (epoch, end) = partition
                            .end_offset_for_epoch(p.leader_epoch)
                            .unwrap_or((-1, -1));
                        r.leader_epoch = epoch;
                        r.end_offset = end;
                    }
                },
            }
            result.partitions.push(r);
        }
        response.topics.push(result);
    }
    response
}
