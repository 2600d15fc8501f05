//! DescribeTopicPartitions (KIP-966's paginated topic description, which Kafka 4's admin
//! client and `kafka-topics.sh --describe` use): the named topics, or all, in name order, from
//! the cursor on, at most `response_partition_limit` partitions per response (capped at
//! Kafka's 2000), with the cursor to continue from. There are no eligible leader replicas
//! (ELR is not implemented): those lists are empty.

use std::sync::Arc;

use kafka_protocol::messages::describe_topic_partitions_request::Cursor as RequestCursor;
use kafka_protocol::messages::describe_topic_partitions_response::{
    Cursor, DescribeTopicPartitionsResponsePartition, DescribeTopicPartitionsResponseTopic,
};
use kafka_protocol::messages::{DescribeTopicPartitionsRequest, DescribeTopicPartitionsResponse};
use kafka_protocol::ResponseError;

use super::topic_name;
use crate::Broker;

/// Kafka's `max.request.partition.size.limit` default.
const MAX_PARTITIONS: i32 = 2000;

pub fn handle(
    broker: &Arc<Broker>,
    request: DescribeTopicPartitionsRequest,
) -> DescribeTopicPartitionsResponse {
    let image = broker.controller.image();
    let mut names: Vec<String> = if request.topics.is_empty() {
        image.topics.keys().cloned().collect()
    } else {
        request
            .topics
            .iter()
            .map(|t| t.name.0.to_string())
            .collect()
    };
    names.sort();
    names.dedup();
    let cursor: Option<&RequestCursor> = request.cursor.as_ref();
    let mut budget = request.response_partition_limit.clamp(1, MAX_PARTITIONS);
    let ops = super::operations::TOPIC;
    let mut response = DescribeTopicPartitionsResponse::default();
    for name in names
        .iter()
        .filter(|n| cursor.is_none_or(|c| n.as_str() >= &*c.topic_name.0))
    {
        let Some(topic) = image.topic(name) else {
            response.topics.push(
                DescribeTopicPartitionsResponseTopic::default()
                    .with_name(Some(topic_name(name)))
                    .with_error_code(ResponseError::UnknownTopicOrPartition.code()),
            );
            continue;
        };
        if budget == 0 {
            response.next_cursor = Some(
                Cursor::default()
                    .with_topic_name(topic_name(name))
                    .with_partition_index(0),
            );
            break;
        }
        let first = cursor
            .filter(|c| *c.topic_name.0 == **name)
            .map_or(0, |c| c.partition_index.max(0));
        let described = super::metadata::describe(broker, topic, 12, ops);
        let mut entry = DescribeTopicPartitionsResponseTopic::default()
            .with_name(Some(topic_name(name)))
            .with_topic_id(topic.id)
            .with_is_internal(described.is_internal)
            .with_topic_authorized_operations(ops);
        for p in described
            .partitions
            .into_iter()
            .filter(|p| p.partition_index >= first)
        {
            if budget == 0 {
                response.next_cursor = Some(
                    Cursor::default()
                        .with_topic_name(topic_name(name))
                        .with_partition_index(p.partition_index),
                );
                break;
            }
            budget -= 1;
            entry.partitions.push(
                DescribeTopicPartitionsResponsePartition::default()
                    .with_error_code(p.error_code)
                    .with_partition_index(p.partition_index)
                    .with_leader_id(p.leader_id)
                    .with_leader_epoch(p.leader_epoch)
                    .with_replica_nodes(p.replica_nodes)
                    .with_isr_nodes(p.isr_nodes)
                    .with_eligible_leader_replicas(Some(Vec::new()))
                    .with_last_known_elr(Some(Vec::new()))
                    .with_offline_replicas(p.offline_replicas),
            );
        }
        response.topics.push(entry);
        if response.next_cursor.is_some() {
            break;
        }
    }
    response
}
