//! CreatePartitions: grow a topic's partition count.

use std::sync::Arc;

use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use kafka_protocol::messages::{CreatePartitionsRequest, CreatePartitionsResponse};
use kafka_protocol::ResponseError;

use super::str;
use crate::Broker;

pub fn handle(
    broker: &Arc<Broker>,
    request: CreatePartitionsRequest,
    quota: &super::MutationQuota,
) -> CreatePartitionsResponse {
    let mut response = CreatePartitionsResponse::default();
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
                let explicit = topic.assignments.as_ref().filter(|a| !a.is_empty());
                let checked = match explicit {
                    Some(a) if a.len() != added => Err((
                        ResponseError::InvalidReplicaAssignment,
                        format!("Increasing the number of partitions by {added} but {} assignments provided.", a.len()),
                    )),
                    Some(a) => check_assignments(broker, &image, t.id, a).map(Some),
                    None => Ok(None),
                };
                match checked {
                    Err(e) => Err(e),
                    Ok(_) if request.validate_only => Ok(()),
                    Ok(_) if !quota.admit(added as i32) => Err((
                        ResponseError::ThrottlingQuotaExceeded,
                        super::THROTTLING_QUOTA_EXCEEDED.to_string(),
                    )),
                    Ok(assignment) => broker
                        .create_partitions(t.id, topic.count, assignment)
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

/// A manual assignment of the new partitions, as Kafka checks it: distinct registered brokers,
/// as many as the topic's replication factor.
fn check_assignments(
    broker: &Broker,
    image: &crate::metadata::MetadataImage,
    topic: uuid::Uuid,
    assignments: &[kafka_protocol::messages::create_partitions_request::CreatePartitionsAssignment],
) -> Result<Vec<Vec<i32>>, (ResponseError, String)> {
    let node = broker.config.node_id;
    let rf = image
        .partition(&topic, 0, node)
        .map_or(1, |s| s.target().len());
    let registered = |b: i32| {
        if image.brokers.is_empty() {
            b == node
        } else {
            image.brokers.contains_key(&b)
        }
    };
    let mut out = Vec::new();
    for a in assignments {
        let ids: Vec<i32> = a.broker_ids.iter().map(|b| b.0).collect();
        let distinct: std::collections::HashSet<_> = ids.iter().collect();
        if distinct.len() != ids.len() {
            return Err((
                ResponseError::InvalidReplicaAssignment,
                format!("Duplicate brokers not allowed in replica assignment: {ids:?}"),
            ));
        }
        if ids.len() != rf {
            return Err((
                ResponseError::InvalidReplicaAssignment,
                format!("Inconsistent replication factor between partitions: the topic has {rf}, the assignment {ids:?}"),
            ));
        }
        let unknown: Vec<i32> = ids.iter().copied().filter(|b| !registered(*b)).collect();
        if !unknown.is_empty() {
            return Err((
                ResponseError::InvalidReplicaAssignment,
                format!("Unknown broker(s) in replica assignment: {unknown:?}"),
            ));
        }
        out.push(ids);
    }
    Ok(out)
}
