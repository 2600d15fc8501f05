//! DescribeProducers: the producers of each partition, with their open transactions (what
//! `kafka-transactions.sh describe-producers` shows, and what finds hanging transactions).

use std::sync::Arc;

use kafka_protocol::messages::describe_producers_response::{
    PartitionResponse, ProducerState, TopicResponse,
};
use kafka_protocol::messages::{DescribeProducersRequest, DescribeProducersResponse, ProducerId};
use kafka_protocol::ResponseError;

use crate::Broker;

pub fn handle(
    broker: &Arc<Broker>,
    request: DescribeProducersRequest,
) -> DescribeProducersResponse {
    let mut response = DescribeProducersResponse::default();
    for t in request.topics {
        let mut topic = TopicResponse::default().with_name(t.name.clone());
        for index in t.partition_indexes {
            let mut p = PartitionResponse::default().with_partition_index(index);
            match broker.replicas.get(&t.name.0, index) {
                None => p.error_code = ResponseError::UnknownTopicOrPartition.code(),
                Some(partition) => {
                    p.active_producers = partition
                        .producers()
                        .into_iter()
                        .map(|s| {
                            ProducerState::default()
                                .with_producer_id(ProducerId(s.producer_id))
                                .with_producer_epoch(i32::from(s.epoch))
                                .with_last_sequence(s.last_sequence)
                                .with_last_timestamp(s.last_timestamp)
                                .with_coordinator_epoch(-1)
                                .with_current_txn_start_offset(s.txn_first_offset.unwrap_or(-1))
                        })
                        .collect();
                }
            }
            topic.partitions.push(p);
        }
        response.topics.push(topic);
    }
    response
}
