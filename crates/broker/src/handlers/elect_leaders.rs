//! ElectLeaders: preferred (the first replica, if alive and in sync) or unclean (any live
//! replica of a partition without a live leader) elections, committed through the controller.

use std::sync::Arc;

use kafka_protocol::messages::elect_leaders_response::{PartitionResult, ReplicaElectionResult};
use kafka_protocol::messages::{ElectLeadersRequest, ElectLeadersResponse};

use super::{str, topic_name};
use crate::Broker;

const UNCLEAN: i8 = 1;

pub fn handle(broker: &Arc<Broker>, request: ElectLeadersRequest) -> ElectLeadersResponse {
    let wanted = request.topic_partitions.map(|topics| {
        topics
            .iter()
            .flat_map(|t| t.partitions.iter().map(|p| (t.topic.0.to_string(), *p)))
            .collect()
    });
    let results = broker.elect_leaders(request.election_type == UNCLEAN, wanted);
    let mut response = ElectLeadersResponse::default();
    for (topic, partition, code, message) in results {
        let entry = PartitionResult::default()
            .with_partition_id(partition)
            .with_error_code(code)
            .with_error_message(message.as_deref().map(str));
        match response
            .replica_election_results
            .iter_mut()
            .find(|r| *r.topic.0 == *topic)
        {
            Some(r) => r.partition_result.push(entry),
            None => response.replica_election_results.push(
                ReplicaElectionResult::default()
                    .with_topic(topic_name(&topic))
                    .with_partition_result(vec![entry]),
            ),
        }
    }
    response
}
