//! CreateTopics: Kafka's name rules, partitions and replication checks, configs, validate_only.

use std::sync::Arc;

use kafka_protocol::messages::create_topics_response::{
    CreatableTopicConfigs, CreatableTopicResult,
};
use kafka_protocol::messages::{CreateTopicsRequest, CreateTopicsResponse};
use kafka_protocol::ResponseError;
use uuid::Uuid;

use super::{collides, str, topic_name, validate_topic_name};
use crate::config::{validate_topic_config, Properties, TOPIC_KEYS};
use crate::Broker;

pub fn handle(
    broker: &Arc<Broker>,
    request: CreateTopicsRequest,
    version: i16,
    quota: &super::MutationQuota,
) -> CreateTopicsResponse {
    let mut response = CreateTopicsResponse::default();
    let mut seen = std::collections::HashSet::new();
    for topic in request.topics {
        let name = topic.name.0.to_string();
        let mut result = CreatableTopicResult::default()
            .with_name(topic_name(&name))
            .with_topic_id(Uuid::nil())
            .with_num_partitions(-1)
            .with_replication_factor(-1);
        if !seen.insert(name.clone()) {
            response.topics.push(fail(
                result,
                ResponseError::InvalidRequest,
                "Duplicate topic name in request",
            ));
            continue;
        }
        match check(
            broker,
            &topic.name.0,
            topic.num_partitions,
            topic.replication_factor,
            &topic.assignments,
            &topic.configs,
        ) {
            Err((error, message)) => {
                response.topics.push(fail(result, error, &message));
                continue;
            }
            Ok((partitions, configs, replicas)) => {
                if version >= 5 {
                    result.num_partitions = partitions;
                    result.replication_factor = replicas.first().map_or(1, |r| r.len() as i16);
                    result.configs = Some(describe_configs(broker, &configs));
                }
                if !request.validate_only {
                    if !quota.admit(partitions) {
                        response.topics.push(fail(
                            result,
                            ResponseError::ThrottlingQuotaExceeded,
                            super::THROTTLING_QUOTA_EXCEEDED,
                        ));
                        continue;
                    }
                    match broker.create_topic(&name, partitions, &configs, &replicas) {
                        Ok(id) => {
                            if version >= 7 {
                                result.topic_id = id;
                            }
                        }
                        Err(e) => {
                            tracing::error!(topic = name, "create failed: {e:#}");
                            response.topics.push(fail(
                                result,
                                ResponseError::KafkaStorageError,
                                &format!("{e:#}"),
                            ));
                            continue;
                        }
                    }
                }
                response.topics.push(result);
            }
        }
    }
    response
}

fn fail(result: CreatableTopicResult, error: ResponseError, message: &str) -> CreatableTopicResult {
    result
        .with_error_code(error.code())
        .with_error_message(Some(str(message)))
        .with_num_partitions(-1)
        .with_replication_factor(-1)
        .with_configs(None)
}

/// Partition count, config overrides and replica placement of a valid request.
type Checked = (i32, Properties, Vec<Vec<i32>>);

type Assignments = [kafka_protocol::messages::create_topics_request::CreatableReplicaAssignment];
type Configs = [kafka_protocol::messages::create_topics_request::CreatableTopicConfig];

fn check(
    broker: &Arc<Broker>,
    name: &str,
    num_partitions: i32,
    replication_factor: i16,
    assignments: &Assignments,
    configs: &Configs,
) -> Result<Checked, (ResponseError, String)> {
    validate_topic_name(name).map_err(|m| (ResponseError::InvalidTopicException, m))?;
    let image = broker.controller.image();
    if image.topic(name).is_some() {
        return Err((
            ResponseError::TopicAlreadyExists,
            format!("Topic '{name}' already exists."),
        ));
    }
    if let Some(other) = image.topics.keys().find(|t| collides(name, t)) {
        return Err((
            ResponseError::InvalidTopicException,
            format!("Topic '{name}' collides with existing topic: {other}"),
        ));
    }
    let node = broker.config.node_id;
    let mut replicas = Vec::new();
    let partitions = if !assignments.is_empty() {
        if num_partitions != -1 || replication_factor != -1 {
            return Err((
                ResponseError::InvalidRequest,
                "Both numPartitions or replicationFactor and replicasAssignments were set. Both cannot be used at the same time.".into(),
            ));
        }
        let mut indexes: Vec<i32> = assignments.iter().map(|a| a.partition_index).collect();
        indexes.sort_unstable();
        if indexes.iter().enumerate().any(|(i, &p)| p != i as i32) {
            return Err((
                ResponseError::InvalidReplicaAssignment,
                "Partitions should be a consecutive 0-based integer sequence".into(),
            ));
        }
        let mut sorted: Vec<_> = assignments.iter().collect();
        sorted.sort_by_key(|a| a.partition_index);
        let known = |b: i32| {
            if image.brokers.is_empty() {
                b == node
            } else {
                image.brokers.contains_key(&b)
            }
        };
        let rf = sorted[0].broker_ids.len();
        for a in &sorted {
            let ids: Vec<i32> = a.broker_ids.iter().map(|b| b.0).collect();
            let distinct: std::collections::HashSet<_> = ids.iter().collect();
            if ids.is_empty() || ids.len() != rf || distinct.len() != ids.len() {
                return Err((
                    ResponseError::InvalidReplicaAssignment,
                    "Every partition needs the same number of distinct replicas".into(),
                ));
            }
            if let Some(b) = ids.iter().find(|b| !known(**b)) {
                return Err((
                    ResponseError::InvalidReplicaAssignment,
                    format!("The manual partition assignment includes broker {b}, which is not registered"),
                ));
            }
            replicas.push(ids);
        }
        assignments.len() as i32
    } else {
        let partitions = if num_partitions == -1 {
            broker.config.num_partitions
        } else {
            num_partitions
        };
        if partitions <= 0 {
            return Err((
                ResponseError::InvalidPartitions,
                "Number of partitions was set to an invalid non-positive value.".into(),
            ));
        }
        let rf = if replication_factor == -1 {
            broker.config.default_replication_factor
        } else {
            replication_factor
        };
        if rf <= 0 {
            return Err((
                ResponseError::InvalidReplicationFactor,
                "Replication factor must be larger than 0.".into(),
            ));
        }
        replicas = broker
            .place_replicas(&image, partitions, rf)
            .map_err(|m| (ResponseError::InvalidReplicationFactor, m))?;
        partitions
    };
    let mut props = Properties::new();
    for config in configs {
        let key = config.name.to_string();
        let value = config.value.as_ref().map(|v| v.to_string());
        validate_topic_config(&key, value.as_deref())
            .map_err(|m| (ResponseError::InvalidConfig, m))?;
        props.insert(key, value.unwrap_or_default().trim().to_string());
    }
    Ok((partitions, props, replicas))
}

fn describe_configs(broker: &Arc<Broker>, overrides: &Properties) -> Vec<CreatableTopicConfigs> {
    TOPIC_KEYS
        .iter()
        .filter_map(|(name, _, _)| {
            let (value, source) = broker.effective().topic_value(overrides, name)?;
            Some(
                CreatableTopicConfigs::default()
                    .with_name(str(name))
                    .with_value(Some(str(&value)))
                    .with_config_source(source),
            )
        })
        .collect()
}
