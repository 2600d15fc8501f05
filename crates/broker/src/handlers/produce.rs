//! Produce: validate and append each partition's batches as leader; acks=0 gets no response.

use std::sync::Arc;

use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::{ProduceRequest, ProduceResponse};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use super::str;
use crate::errors::storage_error_code;
use crate::Broker;

/// The producer id and epoch of the first transactional batch among `records` (headers only:
/// the append validates the batches).
fn transactional_producer(records: Option<&[u8]>) -> Option<(i64, i16)> {
    ferrolog_storage::batch::BatchIter::new(records?)
        .map_while(Result::ok)
        .filter_map(|(_, bytes)| ferrolog_storage::batch::BatchHeader::parse(bytes).ok())
        .find(|h| h.is_transactional())
        .map(|h| (h.producer_id, h.producer_epoch))
}

pub fn handle(
    broker: &Arc<Broker>,
    request: ProduceRequest,
    version: i16,
) -> Option<ProduceResponse> {
    let image = broker.controller.image();
    let now = crate::now_ms();
    let mut response = ProduceResponse::default();
    let mut any_error = false;
    let mut appended = false;
    for topic in request.topic_data {
        // v13+ names topics by id
        let resolved = if version >= 13 {
            image.topic_by_id(&topic.topic_id)
        } else {
            image.topic(&topic.name.0)
        };
        let mut topic_response = TopicProduceResponse::default();
        if version >= 13 {
            topic_response.topic_id = topic.topic_id;
        } else {
            topic_response.name = topic.name.clone();
        }
        for data in topic.partition_data {
            let mut r = PartitionProduceResponse::default()
                .with_index(data.index)
                .with_base_offset(-1)
                .with_log_append_time_ms(-1)
                .with_log_start_offset(-1);
            let partition = resolved.and_then(|t| broker.replicas.get(&t.name, data.index));
            let outcome: Result<_, (i16, Option<StrBytes>)> = match (resolved, partition) {
                (None, _) if version >= 13 => Err((ResponseError::UnknownTopicId.code(), None)),
                (None, _) | (_, None) => Err((ResponseError::UnknownTopicOrPartition.code(), None)),
                (Some(t), Some(p)) => {
                    if request.acks == -1 && broker.effective().min_insync_replicas(&t.configs) > 1
                    {
                        Err((
                            ResponseError::NotEnoughReplicas.code(),
                            Some(str("The size of the current ISR (1) is insufficient to satisfy the min.isr requirement")),
                        ))
                    } else {
                        let mut records = data.records.as_deref().unwrap_or(&[]).to_vec();
                        let mut append = || {
                            p.append_as_leader(&mut records, now).map_err(|e| {
                                tracing::debug!(
                                    topic = t.name,
                                    partition = data.index,
                                    "produce rejected: {e}"
                                );
                                (storage_error_code(&e), Some(str(&e.to_string())))
                            })
                        };
                        match transactional_producer(data.records.as_deref()) {
                            None => append(),
                            Some((pid, epoch)) => broker
                                .append_verified(
                                    request.transactional_id.as_ref().map(|t| &*t.0),
                                    pid,
                                    epoch,
                                    &t.name,
                                    data.index,
                                    append,
                                )
                                .unwrap_or_else(|e| {
                                    Err((
                                        e.code(),
                                        Some(str("the partition is not in the producer's ongoing transaction")),
                                    ))
                                }),
                        }
                    }
                }
            };
            match outcome {
                Ok(result) => {
                    appended |= result.records > 0;
                    r.base_offset = result.first_offset;
                    r.log_append_time_ms = result.log_append_time;
                    r.log_start_offset = result.log_start_offset;
                }
                Err((code, message)) => {
                    any_error = true;
                    r.error_code = code;
                    if version >= 8 {
                        r.error_message = message;
                    }
                }
            }
            topic_response.partition_responses.push(r);
        }
        response.responses.push(topic_response);
    }
    if appended {
        broker.replicas.appended.notify_waiters();
    }
    if request.acks == 0 {
        if any_error {
            tracing::debug!("acks=0 produce had errors; the client is not told (as in Kafka)");
        }
        return None;
    }
    Some(response)
}
