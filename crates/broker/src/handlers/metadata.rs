//! Metadata: brokers, and topics with their partitions (auto-creating unknown topics when
//! `auto.create.topics.enable` and the request allow it).

use std::sync::Arc;

use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{BrokerId, MetadataRequest, MetadataResponse};
use kafka_protocol::ResponseError;
use uuid::Uuid;

use super::{str, topic_name, validate_topic_name};
use crate::metadata::TopicImage;
use crate::Broker;

/// All operations a principal may perform (no authorizer yet: everything is allowed).
/// READ, WRITE, CREATE, DELETE, ALTER, DESCRIBE, DESCRIBE_CONFIGS, ALTER_CONFIGS (AclOperation codes 3-8, 10, 11).
pub fn handle(
    broker: &Arc<Broker>,
    ctx: &super::RequestContext,
    request: MetadataRequest,
) -> MetadataResponse {
    let version = ctx.version;
    let c = &broker.config;
    let image = broker.controller.image();
    let mut response = MetadataResponse::default()
        .with_cluster_id(Some(str(&broker.cluster_id)))
        // Kafka's brokers name any live broker here (they forward admin requests to the
        // active controller)
        .with_controller_id(BrokerId(broker.serving_broker(&image)));
    response.brokers = brokers(broker, &image, &ctx.session.listener);
    if (8..=10).contains(&version) && request.include_cluster_authorized_operations {
        response.cluster_authorized_operations = super::operations::CLUSTER;
    }
    let topic_ops = super::operations::if_asked(
        version >= 8 && request.include_topic_authorized_operations,
        super::operations::TOPIC,
    );
    let all = match &request.topics {
        None => true,
        Some(t) => t.is_empty() && version == 0,
    };
    if all {
        for t in image.topics.values() {
            response
                .topics
                .push(describe(broker, t, version, topic_ops));
        }
        return response;
    }
    let allow_create = c.auto_create_topics && (version < 4 || request.allow_auto_topic_creation);
    for requested in request.topics.unwrap_or_default() {
        // by topic id (v10+): the name is null, or empty as the Java client sends it
        let name = requested
            .name
            .as_ref()
            .map(|n| n.0.to_string())
            .filter(|n| !n.is_empty() || requested.topic_id.is_nil());
        let Some(name) = name else {
            let entry = match image.topic_by_id(&requested.topic_id) {
                Some(t) => describe(broker, t, version, topic_ops),
                None => MetadataResponseTopic::default()
                    .with_topic_id(requested.topic_id)
                    .with_error_code(ResponseError::UnknownTopicId.code()),
            };
            response.topics.push(entry);
            continue;
        };
        let entry = if let Some(t) = image.topic(&name) {
            describe(broker, t, version, topic_ops)
        } else if let Err(reason) = validate_topic_name(&name) {
            tracing::debug!("metadata for invalid topic: {reason}");
            error_topic(&name, ResponseError::InvalidTopicException)
        } else if allow_create {
            let partitions = c.num_partitions;
            let created = broker
                .place_replicas(&image, partitions, c.default_replication_factor)
                .map_err(|m| anyhow::anyhow!(m))
                .and_then(|replicas| {
                    broker.create_topic(&name, partitions, &Default::default(), &replicas)
                });
            match created {
                Ok(_) => match broker.controller.image().topic(&name) {
                    Some(t) => describe(broker, t, version, topic_ops),
                    None => error_topic(&name, ResponseError::LeaderNotAvailable),
                },
                Err(e) => {
                    tracing::error!(topic = name, "auto-create failed: {e:#}");
                    error_topic(&name, ResponseError::LeaderNotAvailable)
                }
            }
        } else {
            error_topic(&name, ResponseError::UnknownTopicOrPartition)
        };
        response.topics.push(entry);
    }
    response
}

fn error_topic(name: &str, error: ResponseError) -> MetadataResponseTopic {
    MetadataResponseTopic::default()
        .with_name(Some(topic_name(name)))
        .with_topic_id(Uuid::nil())
        .with_error_code(error.code())
}

pub(super) fn describe(
    broker: &Arc<Broker>,
    topic: &TopicImage,
    version: i16,
    topic_ops: i32,
) -> MetadataResponseTopic {
    let image = broker.controller.image();
    let node = broker.config.node_id;
    let mut entry = MetadataResponseTopic::default()
        .with_name(Some(topic_name(&topic.name)))
        .with_is_internal(
            topic.name.starts_with("__consumer_offsets") || topic.name == "__transaction_state",
        )
        .with_topic_authorized_operations(topic_ops);
    if version >= 10 {
        entry.topic_id = topic.id;
    }
    let ids = |v: &[i32]| v.iter().map(|b| BrokerId(*b)).collect::<Vec<_>>();
    for p in 0..topic.partitions {
        let Some(state) = image.partition(&topic.id, p, node) else {
            continue;
        };
        let offline: Vec<i32> = state
            .replicas
            .iter()
            .copied()
            .filter(|r| image.brokers.get(r).is_some_and(|b| b.fenced))
            .collect();
        entry.partitions.push(
            MetadataResponsePartition::default()
                .with_error_code(if state.leader < 0 {
                    ResponseError::LeaderNotAvailable.code()
                } else {
                    0
                })
                .with_partition_index(p)
                .with_leader_id(BrokerId(state.leader))
                .with_leader_epoch(state.leader_epoch)
                .with_replica_nodes(ids(&state.replicas))
                .with_isr_nodes(ids(&state.isr))
                .with_offline_replicas(ids(&offline)),
        );
    }
    entry
}

/// The brokers clients may talk to: every registered, unfenced broker (this one alone on a
/// single node).
///
/// Each broker is given by its address on `listener`, the one the request came in on; a broker
/// without that listener is left out, as in Kafka.
pub fn brokers(
    broker: &Arc<Broker>,
    image: &crate::metadata::MetadataImage,
    listener: &str,
) -> Vec<MetadataResponseBroker> {
    let c = &broker.config;
    if image.brokers.is_empty() {
        return c
            .advertised_on(listener)
            .map(|a| {
                MetadataResponseBroker::default()
                    .with_node_id(BrokerId(c.node_id))
                    .with_host(str(&a.host))
                    .with_port(i32::from(a.port))
                    .with_rack(c.rack.as_deref().map(str))
            })
            .into_iter()
            .collect();
    }
    image
        .live_brokers()
        .into_iter()
        .filter_map(|b| {
            let (host, port) = b.endpoint(listener)?;
            Some(
                MetadataResponseBroker::default()
                    .with_node_id(BrokerId(b.id))
                    .with_host(str(host))
                    .with_port(port)
                    .with_rack(b.rack.as_deref().map(str)),
            )
        })
        .collect()
}
