//! Produce: validate and append each partition's batches as leader; acks=0 gets no response.

use std::sync::Arc;

use kafka_protocol::messages::produce_response::{
    LeaderIdAndEpoch, NodeEndpoint, PartitionProduceResponse, TopicProduceResponse,
};
use kafka_protocol::messages::{BrokerId, ProduceRequest, ProduceResponse};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use super::str;
use crate::replica_manager::{CommitOutcome, CommitWait};
use crate::Broker;

/// The producer id and epoch of the first transactional batch among `records` (headers only:
/// the append validates the batches).
pub(crate) fn transactional_producer(records: Option<&[u8]>) -> Option<(i64, i16)> {
    ferrolog_storage::batch::BatchIter::new(records?)
        .map_while(Result::ok)
        .filter_map(|(_, bytes)| ferrolog_storage::batch::BatchHeader::parse(bytes).ok())
        .find(|h| h.is_transactional())
        .map(|h| (h.producer_id, h.producer_epoch))
}

/// An acks=all append waiting for the high watermark, at its place in the response.
pub struct Wait {
    topic: usize,
    partition: usize,
    commit: CommitWait,
}

/// Answers once every acks=all append is committed (the high watermark passed it with at least
/// `min.insync.replicas` in the ISR; with fewer, NOT_ENOUGH_REPLICAS_AFTER_APPEND as in Kafka),
/// its leader lost leadership (NOT_LEADER_OR_FOLLOWER) or `timeout_ms` passed
/// (REQUEST_TIMED_OUT).
pub async fn await_commit(
    broker: &Arc<Broker>,
    mut response: ProduceResponse,
    waits: Vec<Wait>,
    timeout_ms: i32,
) -> ProduceResponse {
    if waits.is_empty() {
        return response;
    }
    let (places, commits): (Vec<_>, Vec<_>) = waits
        .into_iter()
        .map(|w| ((w.topic, w.partition), w.commit))
        .unzip();
    let timeout = std::time::Duration::from_millis(timeout_ms.max(0) as u64);
    let outcomes = broker.replicas.await_committed(&commits, timeout).await;
    for ((topic, partition), outcome) in places.into_iter().zip(outcomes) {
        let error = match outcome {
            CommitOutcome::Committed => continue,
            CommitOutcome::NotLeader => ResponseError::NotLeaderOrFollower,
            CommitOutcome::NotEnoughReplicasAfterAppend => {
                ResponseError::NotEnoughReplicasAfterAppend
            }
            CommitOutcome::TimedOut => ResponseError::RequestTimedOut,
        };
        let r = &mut response.responses[topic].partition_responses[partition];
        r.error_code = error.code();
        r.base_offset = -1;
    }
    response
}

pub fn handle(
    broker: &Arc<Broker>,
    ctx: &super::RequestContext,
    request: ProduceRequest,
) -> (Option<ProduceResponse>, Vec<Wait>) {
    let version = ctx.version;
    let mut waits = Vec::new();
    let image = broker.controller.image();
    let now = crate::now_ms();
    let mut response = ProduceResponse::default();
    let mut any_error = false;
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
                    let mut records = data.records.as_deref().unwrap_or(&[]).to_vec();
                    // acks=all: the ISR must be large enough, checked under the append's lock
                    let min_isr = (request.acks == -1).then_some(min_insync);
                    let mut append = || {
                        p.append_as_leader(&mut records, min_isr, now).map_err(|e| {
                            tracing::debug!(
                                topic = t.name,
                                partition = data.index,
                                "produce rejected: {e}"
                            );
                            (e.code(), Some(str(&e.to_string())))
                        })
                    };
                    match transactional_producer(data.records.as_deref()) {
                        None => append(),
                        // a follower answers NOT_LEADER_OR_FOLLOWER before any transaction check
                        Some(_) if !p.is_leader() => {
                            Err((ResponseError::NotLeaderOrFollower.code(), None))
                        }
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
            };
            match outcome {
                Ok(appended) => {
                    let result = appended.result;
                    if request.acks == -1 && result.last_offset >= 0 {
                        if let Some(replica) = partition.clone() {
                            waits.push(Wait {
                                topic: response.responses.len(),
                                partition: topic_response.partition_responses.len(),
                                commit: CommitWait {
                                    epoch: appended.leader_epoch,
                                    required: result.last_offset + 1,
                                    min_isr: appended.min_isr,
                                    partition: replica,
                                },
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
                    if let Some((leader, epoch, endpoint)) = hint.and_then(|t| {
                        super::leader_hint(broker, &ctx.session.listener, &t.name, data.index)
                    }) {
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
    if request.acks == 0 {
        if any_error {
            tracing::debug!("acks=0 produce had errors; the client is not told (as in Kafka)");
        }
        return (None, Vec::new());
    }
    (Some(response), waits)
}
