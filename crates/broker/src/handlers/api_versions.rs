//! ApiVersions: the APIs and versions ferrolog serves.

use kafka_protocol::messages::api_versions_response::{
    ApiVersion, FinalizedFeatureKey, SupportedFeatureKey,
};
use kafka_protocol::messages::{ApiVersionsRequest, ApiVersionsResponse};
use kafka_protocol::ResponseError;

use super::{str, SUPPORTED};
use crate::{features, Broker};

fn api_keys() -> Vec<ApiVersion> {
    SUPPORTED
        .iter()
        .map(|(key, range)| {
            ApiVersion::default()
                .with_api_key(*key as i16)
                .with_min_version(range.min)
                .with_max_version(range.max)
        })
        .collect()
}

/// The APIs, and (v3+) the features ferrolog supports and the levels finalized for the
/// cluster.
pub fn handle(broker: &Broker, _request: ApiVersionsRequest, version: i16) -> ApiVersionsResponse {
    let response = ApiVersionsResponse::default().with_api_keys(api_keys());
    if version < 3 {
        return response;
    }
    let image = broker.controller.image();
    let dynamic = broker.dynamic_quorum();
    response
        .with_supported_features(
            features::SUPPORTED
                .iter()
                .map(|(name, min, max, _)| {
                    SupportedFeatureKey::default()
                        .with_name(str(name))
                        .with_min_version(*min)
                        .with_max_version(*max)
                })
                .collect(),
        )
        .with_finalized_features_epoch(image.features_epoch.max(1) as i64)
        .with_finalized_features(
            features::finalized(&image, dynamic)
                .into_iter()
                .map(|(name, level)| {
                    FinalizedFeatureKey::default()
                        .with_name(str(name))
                        .with_min_version_level(level)
                        .with_max_version_level(level)
                })
                .collect(),
        )
}

/// The v0 body for an ApiVersions version ferrolog does not know, so the client can retry.
pub fn unsupported() -> super::Response {
    super::Response::ApiVersions(
        ApiVersionsResponse::default()
            .with_error_code(ResponseError::UnsupportedVersion.code())
            .with_api_keys(api_keys()),
    )
}
