//! DeleteTopics, by name (all versions) and by topic id (v6+).

use std::sync::Arc;

use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::{DeleteTopicsRequest, DeleteTopicsResponse};
use kafka_protocol::ResponseError;
use uuid::Uuid;

use super::{str, topic_name};
use crate::Broker;

pub fn handle(
    broker: &Arc<Broker>,
    request: DeleteTopicsRequest,
    version: i16,
    quota: &super::MutationQuota,
) -> DeleteTopicsResponse {
    let mut targets: Vec<(Option<String>, Uuid)> = request
        .topic_names
        .iter()
        .map(|n| (Some(n.0.to_string()), Uuid::nil()))
        .collect();
    targets.extend(
        request
            .topics
            .iter()
            .map(|t| (t.name.as_ref().map(|n| n.0.to_string()), t.topic_id)),
    );
    let mut response = DeleteTopicsResponse::default();
    for (name, id) in targets {
        let image = broker.controller.image();
        let found = match &name {
            Some(n) => image.topic(n),
            None => image.topic_by_id(&id),
        };
        let mut result = DeletableTopicResult::default().with_name(name.as_deref().map(topic_name));
        if version >= 6 {
            result.topic_id = id;
        }
        let Some(topic) = found.cloned() else {
            let error = if name.is_some() {
                ResponseError::UnknownTopicOrPartition
            } else {
                ResponseError::UnknownTopicId
            };
            response
                .responses
                .push(result.with_error_code(error.code()));
            continue;
        };
        if version >= 6 {
            result.topic_id = topic.id;
            result.name = Some(topic_name(&topic.name));
        }
        if !quota.admit(topic.partitions) {
            result.error_code = ResponseError::ThrottlingQuotaExceeded.code();
            if version >= 5 {
                result.error_message = Some(str(super::THROTTLING_QUOTA_EXCEEDED));
            }
            response.responses.push(result);
            continue;
        }
        if let Err(e) = broker.delete_topic(topic.id) {
            tracing::error!(topic = topic.name, "delete failed: {e:#}");
            result.error_code = ResponseError::KafkaStorageError.code();
            if version >= 5 {
                result.error_message = Some(str(&format!("{e:#}")));
            }
        }
        response.responses.push(result);
    }
    response
}
