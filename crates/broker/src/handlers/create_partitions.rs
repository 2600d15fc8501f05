//! CreatePartitions: grow a topic's partition count.

use std::sync::Arc;

use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use kafka_protocol::messages::{CreatePartitionsRequest, CreatePartitionsResponse};
use kafka_protocol::ResponseError;

use super::str;
use crate::Broker;

pub fn handle(broker: &Arc<Broker>, request: CreatePartitionsRequest) -> CreatePartitionsResponse {
    let mut response = CreatePartitionsResponse::default();
    let node = broker.config.node_id;
    for topic in request.topics {
        let result = CreatePartitionsTopicResult::default().with_name(topic.name.clone());
        let image = broker.controller.image();
        let outcome = match image.topic(&topic.name.0) {
            None => Err((
                ResponseError::UnknownTopicOrPartition,
                format!("The topic '{}' does not exist.", &*topic.name.0),
            )),
            Some(t) if topic.count <= t.partitions => Err((
                ResponseError::InvalidPartitions,
                format!(
                    "Topic currently has {} partitions, which is higher than the requested {}.",
                    t.partitions, topic.count
                ),
            )),
            Some(t) => {
                let added = (topic.count - t.partitions) as usize;
                match topic.assignments.as_ref().filter(|a| !a.is_empty()) {
                    Some(a) if a.len() != added => Err((
                        ResponseError::InvalidReplicaAssignment,
                        format!("Increasing the number of partitions by {added} but {} assignments provided.", a.len()),
                    )),
                    Some(a) if a.iter().any(|x| x.broker_ids.len() != 1 || x.broker_ids[0].0 != node) => Err((
                        ResponseError::InvalidReplicaAssignment,
                        format!("The manual partition assignment includes broker(s) other than the single broker {node}"),
                    )),
                    _ if request.validate_only => Ok(()),
                    _ => broker
                        .create_partitions(t.id, topic.count)
                        .map_err(|e| (ResponseError::KafkaStorageError, format!("{e:#}"))),
                }
            }
        };
        response.results.push(match outcome {
            Ok(()) => result,
            Err((e, message)) => result
                .with_error_code(e.code())
                .with_error_message(Some(str(&message))),
        });
    }
    response
}
