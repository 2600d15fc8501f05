//! UpdateFeatures: finalizes feature levels for the cluster (Kafka's `kafka-features.sh
//! upgrade|downgrade`), checked against what ferrolog supports, committed to the metadata log.

use std::sync::Arc;

use kafka_protocol::messages::update_features_response::UpdatableFeatureResult;
use kafka_protocol::messages::{UpdateFeaturesRequest, UpdateFeaturesResponse};
use kafka_protocol::ResponseError;

use super::str;
use crate::features::{self, Change};
use crate::metadata::MetadataRecord;
use crate::Broker;

pub fn handle(
    broker: &Arc<Broker>,
    request: UpdateFeaturesRequest,
    version: i16,
) -> UpdateFeaturesResponse {
    let image = broker.controller.image();
    let dynamic = broker.dynamic_quorum();
    let mut results = Vec::new();
    let mut records = Vec::new();
    let mut failed = None;
    for update in &request.feature_updates {
        let name = update.feature.to_string();
        let change = Change::from_request(version, update.upgrade_type, update.allow_downgrade);
        let from = features::level(&image, dynamic, &name);
        let to = update.max_version_level;
        let mut result = UpdatableFeatureResult::default().with_feature(update.feature.clone());
        match features::check(&name, from, to, change) {
            Ok(()) => records.push(MetadataRecord::Feature { name, level: to }),
            Err((e, message)) => {
                result = result
                    .with_error_code(e.code())
                    .with_error_message(Some(str(&message)));
                failed.get_or_insert((e, message));
            }
        }
        results.push(result);
    }
    let mut response = UpdateFeaturesResponse::default();
    // all or nothing, as Kafka: one invalid update fails the request
    if let Some((e, message)) = failed {
        response.error_code = e.code();
        response.error_message = Some(str(&message));
    } else if !request.validate_only && !records.is_empty() {
        if let Err(e) = broker.controller.commit(&records) {
            response.error_code = ResponseError::NotController.code();
            response.error_message = Some(str(&format!("{e:#}")));
        }
    }
    if version < 2 {
        response.results = results
            .into_iter()
            .map(|r| {
                if r.error_code == 0 && response.error_code != 0 {
                    r.with_error_code(response.error_code)
                        .with_error_message(response.error_message.clone())
                } else {
                    r
                }
            })
            .collect();
    }
    response
}
