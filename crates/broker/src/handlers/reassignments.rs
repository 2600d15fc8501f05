//! AlterPartitionReassignments and ListPartitionReassignments: moving partitions between
//! brokers. New replicas catch up as followers; once they are in the ISR the active controller
//! completes the move and the leaving replicas delete their copies.

use std::sync::Arc;

use kafka_protocol::messages::alter_partition_reassignments_response::{
    ReassignablePartitionResponse, ReassignableTopicResponse,
};
use kafka_protocol::messages::list_partition_reassignments_response::{
    OngoingPartitionReassignment, OngoingTopicReassignment,
};
use kafka_protocol::messages::{
    AlterPartitionReassignmentsRequest, AlterPartitionReassignmentsResponse, BrokerId,
    ListPartitionReassignmentsRequest, ListPartitionReassignmentsResponse,
};

use super::{str, topic_name};
use crate::Broker;

pub fn alter(
    broker: &Arc<Broker>,
    request: AlterPartitionReassignmentsRequest,
) -> AlterPartitionReassignmentsResponse {
    let moves = request
        .topics
        .iter()
        .flat_map(|t| {
            t.partitions.iter().map(|p| {
                (
                    t.name.0.to_string(),
                    p.partition_index,
                    p.replicas.as_ref().map(|r| r.iter().map(|b| b.0).collect()),
                )
            })
        })
        .collect();
    let results = broker.reassign(moves, request.allow_replication_factor_change);
    let mut response = AlterPartitionReassignmentsResponse::default()
        .with_allow_replication_factor_change(request.allow_replication_factor_change);
    for (topic, partition, code, message) in results {
        let entry = ReassignablePartitionResponse::default()
            .with_partition_index(partition)
            .with_error_code(code)
            .with_error_message(message.as_deref().map(str));
        match response.responses.iter_mut().find(|r| *r.name.0 == *topic) {
            Some(r) => r.partitions.push(entry),
            None => response.responses.push(
                ReassignableTopicResponse::default()
                    .with_name(topic_name(&topic))
                    .with_partitions(vec![entry]),
            ),
        }
    }
    response
}

pub fn list(
    broker: &Arc<Broker>,
    request: ListPartitionReassignmentsRequest,
) -> ListPartitionReassignmentsResponse {
    let image = broker.controller.image();
    let wanted = |topic: &str, p: i32| match &request.topics {
        None => true,
        Some(topics) => topics
            .iter()
            .any(|t| *t.name.0 == *topic && t.partition_indexes.contains(&p)),
    };
    let ids = |v: &[i32]| v.iter().map(|b| BrokerId(*b)).collect::<Vec<_>>();
    let mut response = ListPartitionReassignmentsResponse::default();
    for t in image.topics.values() {
        let mut ongoing = Vec::new();
        for p in 0..t.partitions {
            let Some(s) = image.partitions.get(&(t.id, p)) else {
                continue;
            };
            if (s.adding.is_empty() && s.removing.is_empty()) || !wanted(&t.name, p) {
                continue;
            }
            ongoing.push(
                OngoingPartitionReassignment::default()
                    .with_partition_index(p)
                    .with_replicas(ids(&s.replicas))
                    .with_adding_replicas(ids(&s.adding))
                    .with_removing_replicas(ids(&s.removing)),
            );
        }
        if !ongoing.is_empty() {
            response.topics.push(
                OngoingTopicReassignment::default()
                    .with_name(topic_name(&t.name))
                    .with_partitions(ongoing),
            );
        }
    }
    response
}
