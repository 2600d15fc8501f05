//! DescribeClientQuotas and AlterClientQuotas: client quotas (`quota.rs`) live in the metadata
//! log as `ClientQuota` records, one per entity and key, validated as Kafka's controller does.

use std::sync::Arc;

use kafka_protocol::messages::describe_client_quotas_response::{EntityData, EntryData, ValueData};
use kafka_protocol::messages::{
    alter_client_quotas_response, AlterClientQuotasRequest, AlterClientQuotasResponse,
    DescribeClientQuotasRequest, DescribeClientQuotasResponse,
};
use kafka_protocol::ResponseError;

use super::str;
use crate::metadata::MetadataRecord;
use crate::quota::{self, QuotaEntity};
use crate::Broker;

const MATCH_EXACT: i8 = 0;
const MATCH_DEFAULT: i8 = 1;
const MATCH_SPECIFIED: i8 = 2;

pub fn describe(
    broker: &Arc<Broker>,
    request: DescribeClientQuotasRequest,
) -> DescribeClientQuotasResponse {
    let image = broker.controller.image();
    match matching(&image.client_quotas, &request) {
        Ok(entries) => DescribeClientQuotasResponse::default().with_entries(Some(entries)),
        Err((error, message)) => DescribeClientQuotasResponse::default()
            .with_error_code(error.code())
            .with_error_message(Some(str(&message))),
    }
}

/// The entries a filter matches, or the filter's error (Kafka's messages).
fn matching(
    quotas: &quota::Quotas,
    request: &DescribeClientQuotasRequest,
) -> Result<Vec<EntryData>, (ResponseError, String)> {
    let invalid = |m: String| (ResponseError::InvalidRequest, m);
    // entity type → Some(exact name or None for the default), or None: any name
    let mut wanted: std::collections::BTreeMap<String, Option<Option<String>>> = Default::default();
    for c in &request.components {
        let kind = c.entity_type.to_string();
        if kind.is_empty() {
            return Err(invalid("Invalid empty entity type.".into()));
        }
        if wanted.contains_key(&kind) {
            return Err(invalid(format!(
                "Entity type {kind} cannot appear more than once in the filter."
            )));
        }
        if ![quota::USER, quota::CLIENT_ID, quota::IP].contains(&kind.as_str()) {
            return Err((
                ResponseError::UnsupportedVersion,
                format!("Unsupported entity type {kind}"),
            ));
        }
        let name = c._match.as_ref().map(|m| m.to_string());
        let filter = match c.match_type {
            MATCH_EXACT => Some(Some(name.ok_or_else(|| {
                invalid("Request specified MATCH_TYPE_EXACT, but set match string to null.".into())
            })?)),
            MATCH_DEFAULT if name.is_some() => {
                return Err(invalid(
                    "Request specified MATCH_TYPE_DEFAULT, but also specified a match string."
                        .into(),
                ))
            }
            MATCH_DEFAULT => Some(None),
            MATCH_SPECIFIED if name.is_some() => {
                return Err(invalid(
                    "Request specified MATCH_TYPE_SPECIFIED, but also specified a match string."
                        .into(),
                ))
            }
            MATCH_SPECIFIED => None,
            other => return Err(invalid(format!("Unknown match type {other}"))),
        };
        wanted.insert(kind, filter);
    }
    if wanted.contains_key(quota::IP)
        && (wanted.contains_key(quota::USER) || wanted.contains_key(quota::CLIENT_ID))
    {
        return Err(invalid("Invalid entity filter component combination. IP filter component should not be used with user or clientId filter component.".into()));
    }
    let matches = |entity: &QuotaEntity| {
        (!request.strict || entity.len() == wanted.len())
            && wanted
                .iter()
                .all(|(kind, filter)| match (entity.get(kind), filter) {
                    (None, _) => false,
                    (Some(_), None) => true,
                    (Some(name), Some(want)) => name == want,
                })
    };
    Ok(quotas
        .iter()
        .filter(|(entity, _)| matches(entity))
        .map(|(entity, values)| {
            EntryData::default()
                .with_entity(
                    entity
                        .iter()
                        .map(|(kind, name)| {
                            EntityData::default()
                                .with_entity_type(str(kind))
                                .with_entity_name(name.as_deref().map(str))
                        })
                        .collect(),
                )
                .with_values(
                    values
                        .iter()
                        .map(|(k, v)| ValueData::default().with_key(str(k)).with_value(*v))
                        .collect(),
                )
        })
        .collect())
}

pub fn alter(broker: &Arc<Broker>, request: AlterClientQuotasRequest) -> AlterClientQuotasResponse {
    let image = broker.controller.image();
    let mut records = Vec::new();
    // per entry: its entity as sent, and its error
    let mut results: Vec<(
        Vec<alter_client_quotas_response::EntityData>,
        Option<String>,
    )> = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for entry in &request.entries {
        let sent: Vec<(String, Option<String>)> = entry
            .entity
            .iter()
            .map(|e| {
                (
                    e.entity_type.to_string(),
                    e.entity_name.as_ref().map(|n| n.to_string()),
                )
            })
            .collect();
        let echo = sent
            .iter()
            .map(|(kind, name)| {
                alter_client_quotas_response::EntityData::default()
                    .with_entity_type(str(kind))
                    .with_entity_name(name.as_deref().map(str))
            })
            .collect();
        let outcome = quota::validate_entity(&sent).and_then(|entity| {
            // Kafka's controller: a key twice in one entry, or an entity twice in one request,
            // and nothing of that entry is applied
            let mut keys = std::collections::HashSet::new();
            let duplicate_key = entry.ops.iter().any(|op| !keys.insert(op.key.as_str()));
            if duplicate_key || !seen.insert(entity.clone()) {
                return Err(format!(
                    "Ignoring duplicate entity {}",
                    kafka_entity(&entity)
                ));
            }
            let current = image.client_quotas.get(&entity);
            let mut changes = Vec::new();
            for op in &entry.ops {
                let key = op.key.to_string();
                if op.remove {
                    if current.is_some_and(|q| q.contains_key(&key)) {
                        changes.push(MetadataRecord::ClientQuota {
                            entity: entity.clone(),
                            key,
                            value: None,
                        });
                    }
                    continue;
                }
                quota::validate_quota(&entity, &key, op.value)?;
                if current.and_then(|q| q.get(&key)) != Some(&op.value) {
                    changes.push(MetadataRecord::ClientQuota {
                        entity: entity.clone(),
                        key,
                        value: Some(op.value),
                    });
                }
            }
            Ok(changes)
        });
        match outcome {
            Ok(changes) => {
                records.extend(changes);
                results.push((echo, None));
            }
            Err(message) => results.push((echo, Some(message))),
        }
    }
    let committed = if request.validate_only || records.is_empty() {
        Ok(())
    } else {
        // in force here at once; the other brokers as the records reach them
        broker
            .controller
            .commit(&records)
            .map(|image| broker.quotas.set(&image.client_quotas))
    };
    let entries = results
        .into_iter()
        .map(|(entity, error)| {
            let (code, message) = match (&error, &committed) {
                (Some(m), _) => (ResponseError::InvalidRequest.code(), Some(m.clone())),
                (None, Err(e)) => (ResponseError::NotController.code(), Some(format!("{e:#}"))),
                (None, Ok(())) => (0, None),
            };
            alter_client_quotas_response::EntryData::default()
                .with_entity(entity)
                .with_error_code(code)
                .with_error_message(message.as_deref().map(str))
        })
        .collect();
    AlterClientQuotasResponse::default().with_entries(entries)
}

/// An entity as Kafka's `ClientQuotaEntity` prints it in error messages.
fn kafka_entity(entity: &quota::QuotaEntity) -> String {
    let entries: Vec<String> = entity
        .iter()
        .map(|(kind, name)| format!("{kind}={}", name.as_deref().unwrap_or("null")))
        .collect();
    format!("ClientQuotaEntity(entries={{{}}})", entries.join(", "))
}
