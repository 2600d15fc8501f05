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
                Some(partition) => {
                    let state = partition.leadership();
                    if !state.leading {
                        r.error_code = ResponseError::NotLeaderOrFollower.code();
                    } else if p.current_leader_epoch >= 0
                        && p.current_leader_epoch < state.leader_epoch
                    {
                        r.error_code = ResponseError::FencedLeaderEpoch.code();
                    } else if p.current_leader_epoch > state.leader_epoch {
                        r.error_code = ResponseError::UnknownLeaderEpoch.code();
                    } else {
                        let (epoch, end) =
                            partition.with_log(|l| l.end_offset_for_epoch(p.leader_epoch));
                        r.leader_epoch = epoch;
                        r.end_offset = end;
                    }
                }
            }
            result.partitions.push(r);
        }
        response.topics.push(result);
    }
    response
}
