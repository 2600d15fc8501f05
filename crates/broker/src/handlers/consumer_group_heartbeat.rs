//! ConsumerGroupHeartbeat (KIP-848): joins, heartbeats, reconciles and leaves a
//! consumer-protocol group in one API.

use std::sync::Arc;

use kafka_protocol::messages::consumer_group_heartbeat_response::{Assignment, TopicPartitions};
use kafka_protocol::messages::{ConsumerGroupHeartbeatRequest, ConsumerGroupHeartbeatResponse};
use kafka_protocol::ResponseError;

use super::{str, RequestContext};
use crate::group::assignor::{self, Topics};
use crate::group::consumer::ConsumerHeartbeat;
use crate::Broker;

/// Every topic that exists, as the assignors see them.
pub fn all_topics(broker: &Broker) -> Topics {
    broker
        .controller
        .image()
        .topics
        .values()
        .map(|t| (t.name.clone(), (t.id, t.partitions)))
        .collect()
}

/// Groups an assignment by topic id, as the consumer protocol sends it.
pub fn by_topic(a: &assignor::Assignment) -> Vec<(uuid::Uuid, Vec<i32>)> {
    let mut out: Vec<(uuid::Uuid, Vec<i32>)> = Vec::new();
    for (id, p) in a {
        match out.last_mut() {
            Some((last, ps)) if last == id => ps.push(*p),
            _ => out.push((*id, vec![*p])),
        }
    }
    out
}

pub fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    r: ConsumerGroupHeartbeatRequest,
) -> ConsumerGroupHeartbeatResponse {
    // group.version 0 (UpdateFeatures downgraded it) turns the consumer protocol off, as in Kafka
    let image = broker.controller.image();
    if crate::features::level(&image, false, crate::features::GROUP_VERSION) < 1 {
        return ConsumerGroupHeartbeatResponse::default()
            .with_error_code(ResponseError::UnsupportedVersion.code())
            .with_error_message(Some(str(
                "The consumer group protocol is disabled: group.version is 0",
            )));
    }
    let group_id = r.group_id.0.to_string();
    let request = ConsumerHeartbeat {
        member_id: r.member_id.to_string(),
        member_epoch: r.member_epoch,
        instance_id: r.instance_id.as_deref().map(str::to_string),
        rack_id: r.rack_id.as_deref().map(str::to_string),
        rebalance_timeout_ms: r.rebalance_timeout_ms,
        subscribed_topic_names: r
            .subscribed_topic_names
            .map(|ns| ns.iter().map(|n| n.0.to_string()).collect()),
        subscribed_topic_regex: r.subscribed_topic_regex.as_deref().map(str::to_string),
        server_assignor: r.server_assignor.as_deref().map(str::to_string),
        owned: r.topic_partitions.map(|tps| {
            tps.iter()
                .flat_map(|t| t.partitions.iter().map(move |p| (t.topic_id, *p)))
                .collect()
        }),
        client_id: ctx.client_id.clone(),
        client_host: ctx.client_host.clone(),
        regex_filter: super::authorize::topic_filter(broker, ctx),
    };
    let mut response = ConsumerGroupHeartbeatResponse::default()
        .with_heartbeat_interval_ms(broker.groups.consumer_heartbeat_interval_ms(&group_id));
    if ctx.version >= 1 && request.member_id.is_empty() {
        return response
            .with_error_code(ResponseError::InvalidRequest.code())
            .with_error_message(Some(str("MemberId can't be empty.")));
    }
    if request.member_epoch == 0 && request.rebalance_timeout_ms < 0 {
        return response
            .with_error_code(ResponseError::InvalidRequest.code())
            .with_error_message(Some(str(
                "RebalanceTimeoutMs must be provided in first request.",
            )));
    }
    let topics = all_topics(broker);
    match broker
        .groups
        .consumer_heartbeat(&r.group_id.0, &request, &topics)
    {
        Ok(outcome) => {
            response.member_id = Some(str(&outcome.member_id));
            response.member_epoch = outcome.member_epoch;
            response.assignment = outcome.assignment.map(|a| {
                Assignment::default().with_topic_partitions(
                    by_topic(&a)
                        .into_iter()
                        .map(|(id, partitions)| {
                            TopicPartitions::default()
                                .with_topic_id(id)
                                .with_partitions(partitions)
                        })
                        .collect(),
                )
            });
        }
        Err((code, message)) => {
            response.error_code = code.code();
            response.error_message = Some(str(&message));
        }
    }
    response
}
