//! AlterConfigs (replace a topic's overrides) and IncrementalAlterConfigs (SET, DELETE, APPEND,
//! SUBTRACT) for topics and for dynamic broker configs (cluster-wide defaults with an empty
//! broker name, or this broker's own).

use std::sync::Arc;

use kafka_protocol::messages::{
    alter_configs_response, incremental_alter_configs_response, AlterConfigsRequest,
    AlterConfigsResponse, IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use super::str;
use crate::config::{
    broker_key, check_broker_config_name, kafka_broker_key, not_acted_on, topic_key,
    validate_broker_config, validate_topic_config, ConfigType, Properties,
};
use crate::group::config as group_config;
use crate::Broker;

const TOPIC: i8 = 2;
const BROKER: i8 = 4;
const GROUP: i8 = 32;

const SET: i8 = 0;
const DELETE: i8 = 1;
const APPEND: i8 = 2;
const SUBTRACT: i8 = 3;

type Outcome = Result<(), (ResponseError, String)>;

/// What a resource names: a topic, or a scope of dynamic broker configs ("" for the
/// cluster-wide default, or this node's id).
enum Target {
    Topic(uuid::Uuid),
    Broker(String),
    /// A group id's group configs.
    Group(String),
}

fn target(
    broker: &Broker,
    resource_type: i8,
    name: &StrBytes,
) -> Result<Target, (ResponseError, String)> {
    match resource_type {
        TOPIC => broker
            .controller
            .image()
            .topic(name)
            .map(|t| Target::Topic(t.id))
            .ok_or_else(|| {
                (
                    ResponseError::UnknownTopicOrPartition,
                    format!("Topic '{}' does not exist.", &**name),
                )
            }),
        BROKER if name.is_empty() || **name == *broker.config.node_id.to_string() => {
            Ok(Target::Broker(name.to_string()))
        }
        GROUP if name.is_empty() => Err((
            ResponseError::InvalidRequest,
            "A group config resource needs a group id".into(),
        )),
        GROUP => Ok(Target::Group(name.to_string())),
        BROKER => Err((
            ResponseError::InvalidRequest,
            format!(
                "Unexpected broker id, expected {} or empty string, but received {}",
                broker.config.node_id, &**name
            ),
        )),
        other => Err((
            ResponseError::InvalidRequest,
            format!("Unsupported resource type {other}"),
        )),
    }
}

impl Target {
    fn current(&self, broker: &Broker) -> Properties {
        let image = broker.controller.image();
        match self {
            Target::Topic(id) => image
                .topic_by_id(id)
                .map(|t| t.configs.clone())
                .unwrap_or_default(),
            Target::Broker(scope) => image.broker_configs.get(scope).cloned().unwrap_or_default(),
            Target::Group(group) => image.group_configs.get(group).cloned().unwrap_or_default(),
        }
    }

    fn validate(&self, name: &str, value: Option<&str>) -> Outcome {
        match self {
            Target::Topic(_) => {
                validate_topic_config(name, value).map_err(|m| (ResponseError::InvalidConfig, m))
            }
            // Kafka answers INVALID_REQUEST for every refused broker config
            Target::Broker(scope) => validate_broker_config(name, value, !scope.is_empty())
                .map_err(|m| (ResponseError::InvalidRequest, m)),
            // checked together in `apply` (the heartbeat interval must stay below the time-out)
            Target::Group(_) => Ok(()),
        }
    }

    /// Whether `name` may be altered here at all (before its value is looked at). Deleting
    /// a setting ferrolog would not act on is fine: nothing is asked of it (tools such as
    /// kafka-reassign-partitions --verify clear throttles they may have set).
    fn check_name(&self, name: &str, deleting: bool) -> Outcome {
        match self {
            Target::Broker(_) if deleting && not_acted_on(name).is_some() => Ok(()),
            Target::Broker(scope) => check_broker_config_name(name, !scope.is_empty())
                .map_err(|m| (ResponseError::InvalidRequest, m)),
            _ => Ok(()),
        }
    }

    fn kind(&self, name: &str) -> Option<ConfigType> {
        match self {
            Target::Topic(_) => topic_key(name).map(|k| k.2),
            Target::Broker(_) => broker_key(name)
                .map(|k| k.kind)
                .or(kafka_broker_key(name).map(|k| k.kind)),
            Target::Group(_) => (group_config::known(name)
                || name.starts_with("share.")
                || name.starts_with("streams."))
            .then_some(ConfigType::Int),
        }
    }

    /// The value an APPEND or SUBTRACT starts from when the key has no override here.
    fn inherited(&self, broker: &Broker, name: &str) -> String {
        let effective = broker.effective();
        match self {
            Target::Topic(_) => effective.topic_default(name).map(|(v, _)| v),
            Target::Broker(_) => effective.properties.get(name).cloned(),
            Target::Group(_) => None,
        }
        .unwrap_or_default()
    }

    fn apply(&self, broker: &Broker, overrides: Properties, validate_only: bool) -> Outcome {
        for (key, value) in &overrides {
            self.validate(key, Some(value))?;
        }
        if let Target::Group(_) = self {
            group_config::validate(&broker.effective(), &overrides)
                .map_err(|m| (ResponseError::InvalidConfig, m))?;
        }
        let reloads = match self {
            Target::Broker(scope) => check_listener_stores(broker, scope, &overrides)?,
            _ => Vec::new(),
        };
        if validate_only {
            return Ok(());
        }
        let applied = match self {
            Target::Topic(id) => broker.set_topic_configs(*id, &overrides),
            Target::Broker(scope) => broker.set_broker_configs(scope, &overrides),
            Target::Group(group) => broker.set_group_configs(group, &overrides),
        };
        applied.map_err(|e| (ResponseError::KafkaStorageError, format!("{e:#}")))?;
        // the stores just read are put in force even when their settings did not change (a
        // file replaced in place, its settings sent again)
        for (listener, config, tls) in reloads {
            listener.install_tls(&config, tls);
        }
        Ok(())
    }
}

/// Listeners to give their new TLS set-up once a change is committed: the set-up built to
/// validate it, and the config it was built from.
type Reloads = Vec<(
    Arc<crate::session::ListenerSecurity>,
    crate::config::BrokerConfig,
    crate::security::tls::ListenerTls,
)>;

/// New key or trust stores for a TLS listener must build a TLS set-up before they are
/// committed, as Kafka validates a reconfigured SSL factory: the listener must be a TLS
/// listener of this broker, the stores must load, and the certificate must keep its subject and
/// alternative names unless `ssl.allow.dn.changes` / `ssl.allow.san.changes` say otherwise.
/// Returns the set-ups to install once committed.
fn check_listener_stores(
    broker: &Broker,
    scope: &str,
    layer: &Properties,
) -> Result<Reloads, (ResponseError, String)> {
    let image = broker.controller.image();
    let node = broker.config.node_id.to_string();
    let previous = image.broker_configs.get(scope).cloned().unwrap_or_default();
    // the listeners whose settings are set now or were set before (a deletion counts too)
    let listeners: std::collections::BTreeSet<String> = layer
        .keys()
        .chain(previous.keys())
        .filter_map(|k| k.strip_prefix("listener.name."))
        .filter_map(|rest| rest.split_once('.').map(|(l, _)| l.to_ascii_lowercase()))
        .collect();
    if listeners.is_empty() || scope != node {
        return Ok(Vec::new());
    }
    let cluster = image.broker_configs.get("").cloned();
    let candidate = broker.config.with_dynamic(cluster.as_ref(), Some(layer));
    let flag = |key: &str| {
        candidate
            .properties
            .get(key)
            .is_some_and(|v| v.eq_ignore_ascii_case("true"))
    };
    let mut reloads = Vec::new();
    for name in listeners {
        let listener = broker
            .listeners
            .iter()
            .find(|l| l.name.eq_ignore_ascii_case(&name) && l.protocol.uses_tls())
            .ok_or_else(|| {
                (
                    ResponseError::InvalidRequest,
                    format!("{name} is not a TLS listener of broker {node}"),
                )
            })?;
        let failed = |e: anyhow::Error| {
            (
                ResponseError::InvalidConfig,
                format!("Validation of dynamic config update of SSLFactory failed: {e:#}"),
            )
        };
        let new = crate::security::tls::listener_tls(&candidate.properties, &listener.name)
            .map_err(failed)?;
        if let Some(current) = listener.current_tls() {
            current
                .check_replacement(
                    &new,
                    flag("ssl.allow.dn.changes"),
                    flag("ssl.allow.san.changes"),
                )
                .map_err(failed)?;
        }
        reloads.push((listener.clone(), candidate.clone(), new));
    }
    Ok(reloads)
}

pub fn handle(broker: &Arc<Broker>, request: AlterConfigsRequest) -> AlterConfigsResponse {
    let mut response = AlterConfigsResponse::default();
    for resource in request.resources {
        let outcome =
            target(broker, resource.resource_type, &resource.resource_name).and_then(|target| {
                let mut overrides = Properties::new();
                for c in &resource.configs {
                    let value = c.value.as_ref().map(|v| v.to_string());
                    target.validate(&c.name, value.as_deref())?;
                    overrides.insert(
                        c.name.to_string(),
                        value.unwrap_or_default().trim().to_string(),
                    );
                }
                target.apply(broker, overrides, request.validate_only)
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
        let outcome =
            target(broker, resource.resource_type, &resource.resource_name).and_then(|target| {
                incremental(broker, &target, &resource.configs, request.validate_only)
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

type Alterations = [kafka_protocol::messages::incremental_alter_configs_request::AlterableConfig];

fn incremental(
    broker: &Broker,
    target: &Target,
    configs: &Alterations,
    validate_only: bool,
) -> Outcome {
    let mut overrides = target.current(broker);
    for c in configs {
        let name = c.name.to_string();
        target.check_name(&name, c.config_operation == DELETE)?;
        let Some(kind) = target.kind(&name) else {
            return Err((
                ResponseError::InvalidConfig,
                format!("Unknown config name: {name}"),
            ));
        };
        let value = c.value.as_ref().map(|v| v.to_string());
        match c.config_operation {
            SET => {
                target.validate(&name, value.as_deref())?;
                overrides.insert(name, value.unwrap_or_default().trim().to_string());
            }
            DELETE => {
                overrides.remove(&name);
            }
            APPEND | SUBTRACT => {
                if kind != ConfigType::List {
                    return Err((
                        ResponseError::InvalidConfig,
                        format!("Config value append/subtract is not allowed for config key {name} of type {kind:?}"),
                    ));
                }
                let current = overrides
                    .get(&name)
                    .cloned()
                    .unwrap_or_else(|| target.inherited(broker, &name));
                let mut items: Vec<String> = current
                    .split(',')
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty())
                    .collect();
                for item in value
                    .unwrap_or_default()
                    .split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                {
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
            other => {
                return Err((
                    ResponseError::InvalidRequest,
                    format!("Unknown config operation {other}"),
                ))
            }
        }
    }
    target.apply(broker, overrides, validate_only)
}
