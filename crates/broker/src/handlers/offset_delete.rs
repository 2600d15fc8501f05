//! OffsetDelete: drop a group's committed offsets for partitions of topics it no longer
//! subscribes to.

use std::collections::HashSet;
use std::sync::Arc;

use bytes::Buf;
use kafka_protocol::messages::offset_delete_response::{
    OffsetDeleteResponsePartition, OffsetDeleteResponseTopic,
};
use kafka_protocol::messages::{
    ConsumerProtocolSubscription, OffsetDeleteRequest, OffsetDeleteResponse,
};
use kafka_protocol::protocol::Decodable;
use kafka_protocol::ResponseError;

use crate::Broker;

/// Topics the live members subscribe to, from their consumer-protocol metadata.
fn subscribed_topics(broker: &Broker, group: &str) -> Option<HashSet<String>> {
    if let Some(c) = broker.groups.consumer_group(group) {
        // consumer protocol: the named subscriptions and every topic a member owns or is due
        let image = broker.controller.image();
        let mut topics = HashSet::new();
        for m in c.members.values() {
            topics.extend(m.subscribed_names.iter().cloned());
            let owned = m
                .assigned
                .iter()
                .chain(c.target.get(&m.id).into_iter().flatten());
            topics.extend(owned.filter_map(|(id, _)| image.ids.get(id).cloned()));
        }
        return Some(topics);
    }
    let (_, protocol_type, _, members) = broker.groups.describe(group)?;
    let mut topics = HashSet::new();
    if protocol_type != "consumer" {
        return Some(topics);
    }
    for m in members {
        for (_, metadata) in &m.protocols {
            let mut buf = metadata.clone();
            if buf.remaining() < 2 {
                continue;
            }
            let version = buf.get_i16();
            if let Ok(subscription) =
                ConsumerProtocolSubscription::decode(&mut buf, version.clamp(0, 3))
            {
                topics.extend(subscription.topics.iter().map(|t| t.to_string()));
            }
        }
    }
    Some(topics)
}

pub async fn handle(broker: &Arc<Broker>, request: OffsetDeleteRequest) -> OffsetDeleteResponse {
    let group = request.group_id.0.to_string();
    let Some(subscribed) = subscribed_topics(broker, &group) else {
        return OffsetDeleteResponse::default()
            .with_error_code(ResponseError::GroupIdNotFound.code());
    };
    let mut response = OffsetDeleteResponse::default();
    let mut tombstones = Vec::new();
    for topic in request.topics {
        let name = topic.name.0.to_string();
        let mut t = OffsetDeleteResponseTopic::default().with_name(topic.name.clone());
        for p in topic.partitions {
            let code = if subscribed.contains(&name) {
                ResponseError::GroupSubscribedToTopic.code()
            } else {
                tombstones.push((name.clone(), p.partition_index, None));
                0
            };
            t.partitions.push(
                OffsetDeleteResponsePartition::default()
                    .with_partition_index(p.partition_index)
                    .with_error_code(code),
            );
        }
        response.topics.push(t);
    }
    if let Err(e) = broker.persist_offsets(&group, tombstones).await {
        tracing::error!(group, "deleting offsets failed: {e:#}");
        response.error_code = ResponseError::CoordinatorNotAvailable.code();
    }
    response
}
