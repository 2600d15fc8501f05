//! Produce: validate and append each partition's batches as leader; acks=0 gets no response.

use std::sync::Arc;

use kafka_protocol::messages::produce_response::{
    LeaderIdAndEpoch, NodeEndpoint, PartitionProduceResponse, TopicProduceResponse,
};
use kafka_protocol::messages::{BrokerId, ProduceRequest, ProduceResponse};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use super::str;
use crate::errors::storage_error_code;
use crate::replica_manager::Partition;
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

/// An acks=all append waiting for the high watermark: (topic and partition position in the
/// response, the partition, the offset the high watermark must reach, the leader epoch).
pub struct Wait {
    topic: usize,
    partition: usize,
    replica: Arc<Partition>,
    required: i64,
    epoch: i32,
    /// The topic's `min.insync.replicas`: a high watermark that passed the append with a
    /// smaller ISR (it shrank meanwhile) is NOT_ENOUGH_REPLICAS_AFTER_APPEND, not an ack.
    min_isr: i64,
}

/// Answers once every acks=all append is committed (the high watermark passed it with at least
/// `min.insync.replicas` in the ISR; with fewer, NOT_ENOUGH_REPLICAS_AFTER_APPEND as in Kafka),
/// its leader lost leadership (NOT_LEADER_OR_FOLLOWER) or `timeout_ms` passed
/// (REQUEST_TIMED_OUT).
pub async fn await_commit(
    broker: &Arc<Broker>,
    mut response: ProduceResponse,
    mut waits: Vec<Wait>,
    timeout_ms: i32,
) -> ProduceResponse {
    let deadline =
        tokio::time::Instant::now() + std::time::Duration::from_millis(timeout_ms.max(0) as u64);
    loop {
        let committed = broker.replicas.committed.notified();
        tokio::pin!(committed);
        committed.as_mut().enable();
        waits.retain(|w| {
            let state = w.replica.leadership();
            let error = if !state.leading || state.leader_epoch != w.epoch {
                ResponseError::NotLeaderOrFollower
            } else if w.replica.high_watermark() >= w.required {
                if (state.isr_size as i64) >= w.min_isr {
                    return false;
                }
                ResponseError::NotEnoughReplicasAfterAppend
            } else if tokio::time::Instant::now() >= deadline {
                ResponseError::RequestTimedOut
            } else {
                return true;
            };
            let r = &mut response.responses[w.topic].partition_responses[w.partition];
            r.error_code = error.code();
            r.base_offset = -1;
            false
        });
        if waits.is_empty() {
            return response;
        }
        tokio::select! {
            _ = &mut committed => {}
            _ = tokio::time::sleep_until(deadline) => {}
        }
    }
}

pub fn handle(
    broker: &Arc<Broker>,
    request: ProduceRequest,
    version: i16,
) -> (Option<ProduceResponse>, Vec<Wait>) {
    let mut waits = Vec::new();
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
        // the topic's min.insync.replicas, looked up once for all its partitions
        let min_insync = resolved.map_or(1, |t| broker.effective().min_insync_replicas(&t.configs));
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
            let outcome: Result<_, (i16, Option<StrBytes>)> = match (resolved, partition.as_ref()) {
                (None, _) if version >= 13 => Err((ResponseError::UnknownTopicId.code(), None)),
                (None, _) | (_, None) => Err((ResponseError::UnknownTopicOrPartition.code(), None)),
                (Some(t), Some(p)) => {
                    let state = p.leadership();
                    let min_isr = state.effective_min_isr(min_insync);
                    if !state.leading {
                        Err((ResponseError::NotLeaderOrFollower.code(), None))
                    } else if request.acks == -1 && (state.isr_size as i64) < min_isr {
                        Err((
                            ResponseError::NotEnoughReplicas.code(),
                            Some(str(&format!("The size of the current ISR ({}) is insufficient to satisfy the min.isr requirement of {min_isr}", state.isr_size))),
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
                    if request.acks == -1 && result.last_offset >= 0 {
                        if let Some(replica) = partition.clone() {
                            let state = replica.leadership();
                            let min_isr = state.effective_min_isr(min_insync);
                            waits.push(Wait {
                                topic: response.responses.len(),
                                partition: topic_response.partition_responses.len(),
                                epoch: state.leader_epoch,
                                replica,
                                required: result.last_offset + 1,
                                min_isr,
                            });
                        }
                    }
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
                    // KIP-951: the new leader, so the client need not refresh its metadata
                    let hint = resolved.filter(|_| {
                        version >= 10 && code == ResponseError::NotLeaderOrFollower.code()
                    });
                    if let Some((leader, epoch, endpoint)) =
                        hint.and_then(|t| super::leader_hint(broker, &t.name, data.index))
                    {
                        r.current_leader = LeaderIdAndEpoch::default()
                            .with_leader_id(BrokerId(leader))
                            .with_leader_epoch(epoch);
                        if let Some((host, port, rack)) = endpoint {
                            if !response
                                .node_endpoints
                                .iter()
                                .any(|n| n.node_id.0 == leader)
                            {
                                response.node_endpoints.push(
                                    NodeEndpoint::default()
                                        .with_node_id(BrokerId(leader))
                                        .with_host(str(&host))
                                        .with_port(port)
                                        .with_rack(rack.as_deref().map(str)),
                                );
                            }
                        }
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
        return (None, Vec::new());
    }
    (Some(response), waits)
}
