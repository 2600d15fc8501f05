//! DescribeConfigs for topics and for this broker, with sources, synonyms and documentation.

use std::sync::Arc;

use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult, DescribeConfigsSynonym,
};
use kafka_protocol::messages::{DescribeConfigsRequest, DescribeConfigsResponse};
use kafka_protocol::ResponseError;

use super::str;
use crate::config::{
    broker_key, is_dynamic_broker_key, source, ConfigType, BROKER_KEYS, TOPIC_KEYS,
};
use crate::Broker;

const TOPIC: i8 = 2;
const BROKER: i8 = 4;
const GROUP: i8 = 32;

pub fn handle(
    broker: &Arc<Broker>,
    request: DescribeConfigsRequest,
    version: i16,
) -> DescribeConfigsResponse {
    let mut response = DescribeConfigsResponse::default();
    let c = broker.effective();
    for resource in request.resources {
        let name = resource.resource_name.to_string();
        let wanted = |key: &str| {
            resource
                .configuration_keys
                .as_ref()
                .is_none_or(|keys| keys.is_empty() || keys.iter().any(|k| &**k == key))
        };
        let mut result = DescribeConfigsResult::default()
            .with_resource_type(resource.resource_type)
            .with_resource_name(resource.resource_name.clone());
        match resource.resource_type {
            TOPIC => {
                let image = broker.controller.image();
                let Some(topic) = image.topic(&name) else {
                    response.results.push(
                        result
                            .with_error_code(ResponseError::UnknownTopicOrPartition.code())
                            .with_error_message(Some(str(&format!(
                                "Topic '{name}' does not exist."
                            )))),
                    );
                    continue;
                };
                for (key, broker_name, kind) in TOPIC_KEYS.iter().filter(|(k, _, _)| wanted(k)) {
                    let Some((value, src)) = c.topic_value(&topic.configs, key) else {
                        continue;
                    };
                    let mut entry = entry(key, &value, src, *kind as i8, version);
                    if request.include_synonyms {
                        if let Some(v) = topic.configs.get(*key) {
                            entry
                                .synonyms
                                .push(synonym(key, v, source::DYNAMIC_TOPIC_CONFIG));
                        }
                        if let Some((v, s)) = c.topic_default(key) {
                            entry.synonyms.push(synonym(broker_name, &v, s));
                        }
                    }
                    if request.include_documentation {
                        entry.documentation = broker_key(broker_name).map(|k| str(k.doc));
                    }
                    result.configs.push(entry);
                }
            }
            BROKER => {
                let cluster_default = name.is_empty();
                if !cluster_default && name != c.node_id.to_string() {
                    response.results.push(
                        result
                            .with_error_code(ResponseError::InvalidRequest.code())
                            .with_error_message(Some(str(&format!(
                                "Unexpected broker id, expected {} but received {name}",
                                c.node_id
                            )))),
                    );
                    continue;
                }
                let image = broker.controller.image();
                let layers = [
                    (
                        image.broker_configs.get(&c.node_id.to_string()),
                        source::DYNAMIC_BROKER_CONFIG,
                    ),
                    (
                        image.broker_configs.get(""),
                        source::DYNAMIC_DEFAULT_BROKER_CONFIG,
                    ),
                    (Some(&broker.config.explicit), source::STATIC_BROKER_CONFIG),
                ];
                let cluster_layer = image.broker_configs.get("").cloned().unwrap_or_default();
                for key in BROKER_KEYS.iter().filter(|k| wanted(k.name)) {
                    // the cluster-wide resource lists only what is set there
                    let (value, src) = if cluster_default {
                        match cluster_layer.get(key.name) {
                            Some(v) => (v, source::DYNAMIC_DEFAULT_BROKER_CONFIG),
                            None => continue,
                        }
                    } else {
                        match c.properties.get(key.name) {
                            Some(v) => (v, c.source_of(key.name)),
                            None => continue,
                        }
                    };
                    let sensitive = key.kind == ConfigType::Password;
                    let mut entry = entry(key.name, value, src, key.kind as i8, version);
                    entry.read_only = !is_dynamic_broker_key(key.name);
                    if sensitive {
                        // as Kafka: a password is listed, its value never
                        entry.value = None;
                        entry.is_sensitive = true;
                    }
                    if request.include_synonyms {
                        for (layer, layer_source) in &layers {
                            if let Some(v) = layer.and_then(|l| l.get(key.name)) {
                                let mut s = synonym(key.name, v, *layer_source);
                                if sensitive {
                                    s.value = None;
                                }
                                entry.synonyms.push(s);
                            }
                        }
                        if let Some(default) = key.default.filter(|_| !sensitive) {
                            entry
                                .synonyms
                                .push(synonym(key.name, default, source::DEFAULT_CONFIG));
                        }
                    }
                    if request.include_documentation {
                        entry.documentation = Some(str(key.doc));
                    }
                    result.configs.push(entry);
                }
            }
            GROUP => {
                let image = broker.controller.image();
                let overrides = image.group_configs.get(&name);
                for (key, _, doc) in crate::group::config::KEYS
                    .iter()
                    .filter(|(k, ..)| wanted(k))
                {
                    let Some((value, overridden)) = crate::group::config::value(&c, overrides, key)
                    else {
                        continue;
                    };
                    let src = if overridden {
                        source::GROUP_CONFIG
                    } else {
                        source::DEFAULT_CONFIG
                    };
                    let mut entry =
                        entry(key, &value.to_string(), src, ConfigType::Int as i8, version);
                    if request.include_documentation {
                        entry.documentation = Some(str(doc));
                    }
                    result.configs.push(entry);
                }
            }
            other => {
                result = result
                    .with_error_code(ResponseError::InvalidRequest.code())
                    .with_error_message(Some(str(&format!("Unsupported resource type {other}"))));
            }
        }
        response.results.push(result);
    }
    response
}

fn entry(
    name: &str,
    value: &str,
    src: i8,
    kind: i8,
    version: i16,
) -> DescribeConfigsResourceResult {
    let mut e = DescribeConfigsResourceResult::default()
        .with_name(str(name))
        .with_value(Some(str(value)))
        .with_config_source(src);
    if version >= 3 {
        e.config_type = kind;
    }
    e
}

fn synonym(name: &str, value: &str, src: i8) -> DescribeConfigsSynonym {
    DescribeConfigsSynonym::default()
        .with_name(str(name))
        .with_value(Some(str(value)))
        .with_source(src)
}
