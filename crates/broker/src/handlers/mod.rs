//! One file per API: decode is done by the router, each handler turns a request into a response.

pub mod api_versions;
pub mod create_partitions;
pub mod create_topics;
pub mod delete_topics;
pub mod describe_cluster;
pub mod describe_configs;
pub mod fetch;
pub mod init_producer_id;
pub mod list_offsets;
pub mod metadata;
pub mod produce;

use std::sync::Arc;

use anyhow::{anyhow, Result};
use bytes::Bytes;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Decodable, Message, StrBytes, VersionRange};

use crate::Broker;

pub enum Response {
    ApiVersions(ApiVersionsResponse),
    Metadata(MetadataResponse),
    CreateTopics(CreateTopicsResponse),
    DeleteTopics(DeleteTopicsResponse),
    CreatePartitions(CreatePartitionsResponse),
    Produce(ProduceResponse),
    Fetch(FetchResponse),
    ListOffsets(ListOffsetsResponse),
    DescribeConfigs(DescribeConfigsResponse),
    DescribeCluster(DescribeClusterResponse),
    InitProducerId(InitProducerIdResponse),
}

/// The APIs ferrolog serves, with every version Kafka 4.1 defines for them. ApiVersions
/// advertises exactly this list.
pub const SUPPORTED: &[(ApiKey, VersionRange)] = &[
    (ApiKey::Produce, ProduceRequest::VERSIONS),
    (ApiKey::Fetch, FetchRequest::VERSIONS),
    (ApiKey::ListOffsets, ListOffsetsRequest::VERSIONS),
    (ApiKey::Metadata, MetadataRequest::VERSIONS),
    (ApiKey::ApiVersions, ApiVersionsRequest::VERSIONS),
    (ApiKey::CreateTopics, CreateTopicsRequest::VERSIONS),
    (ApiKey::DeleteTopics, DeleteTopicsRequest::VERSIONS),
    (ApiKey::InitProducerId, InitProducerIdRequest::VERSIONS),
    (ApiKey::DescribeConfigs, DescribeConfigsRequest::VERSIONS),
    (ApiKey::CreatePartitions, CreatePartitionsRequest::VERSIONS),
    (ApiKey::DescribeCluster, DescribeClusterRequest::VERSIONS),
];

pub fn supported_versions(key: ApiKey) -> Option<VersionRange> {
    SUPPORTED.iter().find(|(k, _)| *k == key).map(|(_, v)| *v)
}

fn decode<T: Decodable>(body: &mut Bytes, version: i16) -> Result<T> {
    let request = T::decode(body, version)?;
    // Kafka ignores bytes after the request body (librdkafka sends some with Metadata v13).
    if !body.is_empty() {
        tracing::trace!("{} trailing bytes after the request", body.len());
    }
    Ok(request)
}

pub fn str(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_string())
}

pub fn topic_name(s: &str) -> TopicName {
    TopicName(str(s))
}

/// Routes a decoded header and the request body to its handler.
pub async fn handle(
    broker: &Arc<Broker>,
    key: ApiKey,
    header: &RequestHeader,
    mut body: Bytes,
) -> Result<Option<Response>> {
    let v = header.request_api_version;
    let b = &mut body;
    Ok(Some(match key {
        ApiKey::ApiVersions => Response::ApiVersions(api_versions::handle(decode(b, v)?, v)),
        ApiKey::Metadata => Response::Metadata(metadata::handle(broker, decode(b, v)?, v)),
        ApiKey::CreateTopics => {
            Response::CreateTopics(create_topics::handle(broker, decode(b, v)?, v))
        }
        ApiKey::DeleteTopics => {
            Response::DeleteTopics(delete_topics::handle(broker, decode(b, v)?, v))
        }
        ApiKey::CreatePartitions => {
            Response::CreatePartitions(create_partitions::handle(broker, decode(b, v)?))
        }
        ApiKey::Produce => match produce::handle(broker, decode(b, v)?, v) {
            Some(r) => Response::Produce(r),
            None => return Ok(None),
        },
        ApiKey::Fetch => Response::Fetch(fetch::handle(broker, decode(b, v)?, v).await),
        ApiKey::ListOffsets => {
            Response::ListOffsets(list_offsets::handle(broker, decode(b, v)?, v))
        }
        ApiKey::DescribeConfigs => {
            Response::DescribeConfigs(describe_configs::handle(broker, decode(b, v)?, v))
        }
        ApiKey::DescribeCluster => {
            Response::DescribeCluster(describe_cluster::handle(broker, decode(b, v)?))
        }
        ApiKey::InitProducerId => {
            Response::InitProducerId(init_producer_id::handle(broker, decode(b, v)?))
        }
        other => return Err(anyhow!("{other:?} is not supported")),
    }))
}

/// Kafka's topic name rules: 1..=249 characters of `[a-zA-Z0-9._-]`, not `.` or `..`.
pub fn validate_topic_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("Topic name is illegal, it can't be empty".into());
    }
    if name == "." || name == ".." {
        return Err("Topic name cannot be \".\" or \"..\"".into());
    }
    if name.len() > 249 {
        return Err(format!(
            "Topic name is illegal, it can't be longer than 249 characters, topic name: {name}"
        ));
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '_' || c == '-')
    {
        return Err(format!(
            "Topic name \"{name}\" is illegal, it contains a character other than ASCII alphanumerics, '.', '_' and '-'"
        ));
    }
    Ok(())
}

/// Names that differ only in '.' versus '_' collide in metric names; Kafka refuses the second.
pub fn collides(a: &str, b: &str) -> bool {
    a != b && a.replace('.', "_") == b.replace('.', "_")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_names() {
        assert!(validate_topic_name("orders.v1-x_y").is_ok());
        assert!(validate_topic_name("").is_err());
        assert!(validate_topic_name("..").is_err());
        assert!(validate_topic_name("a b").is_err());
        assert!(validate_topic_name(&"a".repeat(249)).is_ok());
        assert!(validate_topic_name(&"a".repeat(250)).is_err());
        assert!(collides("a.b", "a_b"));
        assert!(!collides("a.b", "a.b"));
    }
}
