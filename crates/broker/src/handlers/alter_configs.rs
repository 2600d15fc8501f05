//! AlterConfigs (replace a topic's overrides) and IncrementalAlterConfigs (SET, DELETE, APPEND,
//! SUBTRACT) for topics. Dynamic broker configs are refused until they are implemented.

use std::sync::Arc;

use kafka_protocol::messages::{
    alter_configs_response, incremental_alter_configs_response, AlterConfigsRequest,
    AlterConfigsResponse, IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use super::str;
use crate::config::{topic_key, validate_topic_config, ConfigType, Properties};
use crate::Broker;

const TOPIC: i8 = 2;
const BROKER: i8 = 4;

const SET: i8 = 0;
const DELETE: i8 = 1;
const APPEND: i8 = 2;
const SUBTRACT: i8 = 3;

type Outcome = Result<(), (ResponseError, String)>;

/// The topic the resource names, or the error for it.
fn topic_id(
    broker: &Broker,
    resource_type: i8,
    name: &StrBytes,
) -> Result<uuid::Uuid, (ResponseError, String)> {
    match resource_type {
        TOPIC => broker
            .controller
            .image()
            .topic(name)
            .map(|t| t.id)
            .ok_or_else(|| {
                (
                    ResponseError::UnknownTopicOrPartition,
                    format!("Topic '{}' does not exist.", &**name),
                )
            }),
        BROKER => Err((
            ResponseError::InvalidRequest,
            "Dynamic broker configs are not supported yet".into(),
        )),
        other => Err((
            ResponseError::InvalidRequest,
            format!("Unsupported resource type {other}"),
        )),
    }
}

fn apply(broker: &Broker, id: uuid::Uuid, overrides: Properties, validate_only: bool) -> Outcome {
    for (key, value) in &overrides {
        validate_topic_config(key, Some(value)).map_err(|m| (ResponseError::InvalidConfig, m))?;
    }
    if validate_only {
        return Ok(());
    }
    broker
        .set_topic_configs(id, &overrides)
        .map_err(|e| (ResponseError::KafkaStorageError, format!("{e:#}")))
}

pub fn handle(broker: &Arc<Broker>, request: AlterConfigsRequest) -> AlterConfigsResponse {
    let mut response = AlterConfigsResponse::default();
    for resource in request.resources {
        let outcome =
            topic_id(broker, resource.resource_type, &resource.resource_name).and_then(|id| {
                let mut overrides = Properties::new();
                for c in &resource.configs {
                    let value = c.value.as_ref().map(|v| v.to_string());
                    validate_topic_config(&c.name, value.as_deref())
                        .map_err(|m| (ResponseError::InvalidConfig, m))?;
                    overrides.insert(
                        c.name.to_string(),
                        value.unwrap_or_default().trim().to_string(),
                    );
                }
                apply(broker, id, overrides, request.validate_only)
            });
        let mut r = alter_configs_response::AlterConfigsResourceResponse::default()
            .with_resource_type(resource.resource_type)
            .with_resource_name(resource.resource_name);
        if let Err((e, message)) = outcome {
            r = r
                .with_error_code(e.code())
                .with_error_message(Some(str(&message)));
        }
        response.responses.push(r);
    }
    response
}

pub fn handle_incremental(
    broker: &Arc<Broker>,
    request: IncrementalAlterConfigsRequest,
) -> IncrementalAlterConfigsResponse {
    let mut response = IncrementalAlterConfigsResponse::default();
    for resource in request.resources {
        let outcome = topic_id(broker, resource.resource_type, &resource.resource_name).and_then(|id| {
            let image = broker.controller.image();
            let mut overrides = image.topic_by_id(&id).map(|t| t.configs.clone()).unwrap_or_default();
            for c in &resource.configs {
                let name = c.name.to_string();
                let Some((_, _, kind)) = topic_key(&name) else {
                    return Err((ResponseError::InvalidConfig, format!("Unknown topic config name: {name}")));
                };
                let value = c.value.as_ref().map(|v| v.to_string());
                match c.config_operation {
                    SET => {
                        validate_topic_config(&name, value.as_deref()).map_err(|m| (ResponseError::InvalidConfig, m))?;
                        overrides.insert(name, value.unwrap_or_default().trim().to_string());
                    }
                    DELETE => {
                        overrides.remove(&name);
                    }
                    APPEND | SUBTRACT => {
                        if *kind != ConfigType::List {
                            return Err((
                                ResponseError::InvalidConfig,
                                format!("Config value append/subtract is not allowed for config key {name} of type {kind:?}"),
                            ));
                        }
                        let current = match overrides.get(&name) {
                            Some(v) => v.clone(),
                            None => broker.config.topic_default(&name).map(|(v, _)| v).unwrap_or_default(),
                        };
                        let mut items: Vec<String> = current.split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect();
                        for item in value.unwrap_or_default().split(',').map(str::trim).filter(|s| !s.is_empty()) {
                            if c.config_operation == APPEND {
                                if !items.iter().any(|i| i == item) {
                                    items.push(item.to_string());
                                }
                            } else {
                                items.retain(|i| i != item);
                            }
                        }
                        overrides.insert(name, items.join(","));
                    }
                    other => return Err((ResponseError::InvalidRequest, format!("Unknown config operation {other}"))),
                }
            }
            apply(broker, id, overrides, request.validate_only)
        });
        let mut r = incremental_alter_configs_response::AlterConfigsResourceResponse::default()
            .with_resource_type(resource.resource_type)
            .with_resource_name(resource.resource_name);
        if let Err((e, message)) = outcome {
            r = r
                .with_error_code(e.code())
                .with_error_message(Some(str(&message)));
        }
        response.responses.push(r);
    }
    response
}
