//! ListConfigResources (KIP-1142; v0 was ListClientMetricsResources): the resources that have
//! configs, of the requested types (all ferrolog has configs for when none are named): topics,
//! this broker, groups (those this broker coordinates and those with group configs), and
//! client-metrics subscriptions (there are none: KIP-714 telemetry is not implemented).

use std::collections::BTreeSet;
use std::sync::Arc;

use kafka_protocol::messages::list_config_resources_response::ConfigResource;
use kafka_protocol::messages::{ListConfigResourcesRequest, ListConfigResourcesResponse};
use kafka_protocol::ResponseError;

use super::str;
use crate::Broker;

const TOPIC: i8 = 2;
const BROKER: i8 = 4;
const CLIENT_METRICS: i8 = 16;
const GROUP: i8 = 32;

pub fn handle(
    broker: &Arc<Broker>,
    request: ListConfigResourcesRequest,
    version: i16,
) -> ListConfigResourcesResponse {
    let types: Vec<i8> = match (version, request.resource_types.is_empty()) {
        // v0 lists client-metrics resources only
        (0, _) => vec![CLIENT_METRICS],
        (_, true) => vec![TOPIC, BROKER, CLIENT_METRICS, GROUP],
        (_, false) => request.resource_types.clone(),
    };
    let mut response = ListConfigResourcesResponse::default();
    if let Some(t) = types
        .iter()
        .find(|t| ![TOPIC, BROKER, CLIENT_METRICS, GROUP].contains(t))
    {
        tracing::debug!("ListConfigResources: unsupported resource type {t}");
        return response.with_error_code(ResponseError::UnsupportedVersion.code());
    }
    let image = broker.controller.image();
    let mut push = |kind: i8, name: &str| {
        response.config_resources.push(
            ConfigResource::default()
                .with_resource_type(kind)
                .with_resource_name(str(name)),
        )
    };
    for kind in types {
        match kind {
            TOPIC => image.topics.keys().for_each(|t| push(TOPIC, t)),
            BROKER => push(BROKER, &broker.config.node_id.to_string()),
            GROUP => {
                let groups: BTreeSet<String> = broker
                    .groups
                    .list()
                    .into_iter()
                    .map(|g| g.id)
                    .chain(image.group_configs.keys().cloned())
                    .collect();
                groups.iter().for_each(|g| push(GROUP, g));
            }
            _ => {}
        }
    }
    response
}
