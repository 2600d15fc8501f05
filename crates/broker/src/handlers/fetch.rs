//! Fetch: long poll (max_wait_ms / min_bytes), response and partition byte limits with Kafka's
//! "first batch is always returned" rule, topic ids in v13+, and KIP-227 fetch sessions.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use ferrolog_storage::{FileSlice, ReadBound, StorageError};
use kafka_protocol::messages::fetch_response::{
    AbortedTransaction, FetchableTopicResponse, LeaderIdAndEpoch, NodeEndpoint, PartitionData,
};
use kafka_protocol::messages::{BrokerId, FetchRequest, FetchResponse, ProducerId, TopicName};
use kafka_protocol::ResponseError;
use uuid::Uuid;

use crate::errors::storage_error_code;
use crate::fetch_session::{SessionOutcome, SessionPartition};
use crate::Broker;

/// The response, and per partition in response order the records to send from a segment file.
pub type FetchReply = (FetchResponse, Vec<Option<FileSlice>>);

pub async fn handle(broker: &Arc<Broker>, request: FetchRequest, version: i16) -> FetchReply {
    let deadline = Instant::now() + Duration::from_millis(request.max_wait_ms.max(0) as u64);
    let image = broker.controller.image();
    // The partitions this fetch covers, in order: from the session (incremental) or the request.
    let (session_id, mut wanted, incremental) =
        match broker.fetch_sessions.begin(&request, version, &image) {
            SessionOutcome::Error(error) => {
                return (
                    FetchResponse::default().with_error_code(error.code()),
                    Vec::new(),
                );
            }
            SessionOutcome::Ready {
                session_id,
                partitions,
                incremental,
            } => (session_id, partitions, incremental),
        };
    // a follower's fetch tells the leader how far its log goes (replica_id moved in v15)
    let replica = if version >= 15 {
        request.replica_state.replica_id.0
    } else {
        request.replica_id.0
    };
    let follower = replica >= 0;
    // this leader's throttle on out-of-sync followers of throttled replicas
    let leader_rate = broker
        .effective()
        .int_property(crate::throttle::LEADER_RATE, i64::MAX);
    let node = broker.config.node_id;
    let throttled: Vec<bool> = if follower && leader_rate != i64::MAX {
        wanted
            .iter()
            .map(|w| {
                w.name.as_deref().is_some_and(|n| {
                    image.topic(n).is_some_and(|t| {
                        crate::throttle::lists(
                            t.configs
                                .get(crate::throttle::LEADER_REPLICAS)
                                .map(String::as_str),
                            w.partition,
                            node,
                        )
                    }) && broker
                        .replicas
                        .get(n, w.partition)
                        .is_some_and(|p| !p.in_sync(replica))
                })
            })
            .collect()
    } else {
        Vec::new()
    };
    // KIP-392: with a rack-aware replica selector, a consumer (v11+) in another rack than this
    // leader goes to an in-sync replica in its own
    let rack = (!follower && version >= 11 && broker.config.rack_aware_selector)
        .then_some(&*request.rack_id)
        .filter(|r| !r.is_empty());
    let redirect: Vec<Option<i32>> = match rack {
        None => Vec::new(),
        Some(rack) => wanted
            .iter()
            .map(|w| in_rack_replica(&image, w, rack, node))
            .collect(),
    };
    if follower {
        let now = crate::now_ms();
        for w in &wanted {
            let Some(p) = w
                .name
                .as_deref()
                .and_then(|n| broker.replicas.get(n, w.partition))
            else {
                continue;
            };
            let (advanced, joins) = p.follower_fetched(replica, w.fetch_offset, now);
            if advanced {
                broker.replicas.committed.notify_waiters();
                broker.replicas.appended.notify_waiters();
            }
            if let Some((isr, epoch)) = joins {
                tracing::info!(
                    topic = p.topic,
                    partition = p.index,
                    replica,
                    "follower caught up: expanding the ISR"
                );
                let broker = broker.clone();
                tokio::spawn(async move { broker.propose_isr(&p, isr, epoch).await });
            }
        }
    }
    loop {
        let appended = broker.replicas.appended.notified();
        tokio::pin!(appended);
        appended.as_mut().enable();
        let held_back = broker.leader_quota.exceeded(leader_rate);
        let (response, files, bytes, errors, sent, throttled_bytes) = read(
            broker,
            &request,
            version,
            &wanted,
            session_id,
            incremental,
            Routing {
                follower: follower.then_some((&throttled[..], held_back)),
                redirect: &redirect,
            },
        );
        let done = bytes >= request.min_bytes.max(0) as usize
            || errors
            || request.max_wait_ms <= 0
            || Instant::now() >= deadline;
        if done {
            broker.leader_quota.record(throttled_bytes);
            // what each partition told the client changes only with a response that is sent
            for (w, state) in wanted.iter_mut().zip(sent) {
                w.record_sent(state);
            }
            broker.fetch_sessions.finish(session_id, &wanted);
            return (response, files);
        }
        tokio::select! {
            _ = &mut appended => {}
            _ = tokio::time::sleep_until(deadline.into()) => {}
        }
    }
}

/// What one pass over the partitions yields: the response, the file slices of its records, the
/// record bytes in it, whether any partition has an error (which answers at once, as in Kafka),
/// per wanted partition what the response tells the client (to record if it is sent), and the
/// record bytes of throttled replicas in it.
type Pass = (
    FetchResponse,
    Vec<Option<FileSlice>>,
    usize,
    bool,
    Vec<(i64, i64, i64)>,
    usize,
);

/// The replica in `rack` (in sync, unfenced) a consumer of this partition should read from,
/// if this broker is not in that rack itself.
fn in_rack_replica(
    image: &crate::metadata::MetadataImage,
    w: &SessionPartition,
    rack: &str,
    node: i32,
) -> Option<i32> {
    let in_rack = |b: i32| {
        image
            .brokers
            .get(&b)
            .is_some_and(|x| !x.fenced && x.rack.as_deref() == Some(rack))
    };
    if in_rack(node) {
        return None;
    }
    let topic = image.topic(w.name.as_deref()?)?;
    let state = image.partitions.get(&(topic.id, w.partition))?;
    state
        .isr
        .iter()
        .copied()
        .find(|b| *b != node && in_rack(*b))
}

/// How a pass serves each wanted partition beyond what the request says.
struct Routing<'a> {
    /// A follower's fetch: which partitions are leader-throttled for it, and whether those
    /// wait this time.
    follower: Option<(&'a [bool], bool)>,
    /// A consumer's fetch under KIP-392: per partition, the replica in its rack to send it to.
    redirect: &'a [Option<i32>],
}

/// One pass over the partitions.
fn read(
    broker: &Arc<Broker>,
    request: &FetchRequest,
    version: i16,
    wanted: &[SessionPartition],
    session_id: i32,
    incremental: bool,
    routing: Routing,
) -> Pass {
    let follower = routing.follower.is_some();
    let (throttled, held_back) = routing.follower.unwrap_or((&[], false));
    let throttled = |i: usize| throttled.get(i).copied().unwrap_or(false);
    let redirect = |i: usize| routing.redirect.get(i).copied().flatten();
    let mut throttled_bytes = 0;
    let mut response = FetchResponse::default().with_session_id(session_id);
    let mut files = Vec::new();
    let mut remaining = request.max_bytes.max(0) as usize;
    let mut total = 0usize;
    let mut errors = false;
    let read_committed = request.isolation_level == 1;
    // KIP-392: consumers (v11+) read from followers too
    let follower_reads = !follower && version >= 11;
    let mut sent = Vec::with_capacity(wanted.len());
    for (i, w) in wanted.iter().enumerate() {
        let mut data = PartitionData::default()
            .with_partition_index(w.partition)
            .with_high_watermark(-1)
            .with_last_stable_offset(-1)
            .with_log_start_offset(-1)
            .with_preferred_read_replica((-1).into())
            .with_records(Some(Bytes::new()));
        let mut file = None;
        if read_committed {
            data.aborted_transactions = Some(Vec::new());
        }
        match w
            .name
            .as_deref()
            .and_then(|n| broker.replicas.get(n, w.partition))
            .map(|p| {
                let l = p.leadership();
                (p, l)
            }) {
            None => {
                data.error_code = if w.name.is_none() {
                    ResponseError::UnknownTopicId.code()
                } else {
                    ResponseError::UnknownTopicOrPartition.code()
                };
            }
            Some((p, l)) if !l.leading && (!follower_reads || l.leader < 0) => {
                data.error_code = ResponseError::NotLeaderOrFollower.code();
                // KIP-951: the current leader (v12+) and its endpoint (v16+)
                if let Some((leader, epoch, endpoint)) = (version >= 12)
                    .then(|| super::leader_hint(broker, &p.topic, p.index))
                    .flatten()
                {
                    data.current_leader = LeaderIdAndEpoch::default()
                        .with_leader_id(BrokerId(leader))
                        .with_leader_epoch(epoch);
                    if let Some((host, port, rack)) = endpoint.filter(|_| version >= 16) {
                        if !response
                            .node_endpoints
                            .iter()
                            .any(|n| n.node_id.0 == leader)
                        {
                            response.node_endpoints.push(
                                NodeEndpoint::default()
                                    .with_node_id(BrokerId(leader))
                                    .with_host(super::str(&host))
                                    .with_port(port)
                                    .with_rack(rack.as_deref().map(super::str)),
                            );
                        }
                    }
                }
            }
            Some((_, l))
                if w.current_leader_epoch >= 0 && w.current_leader_epoch != l.leader_epoch =>
            {
                data.error_code = if w.current_leader_epoch < l.leader_epoch {
                    ResponseError::FencedLeaderEpoch.code()
                } else {
                    ResponseError::UnknownLeaderEpoch.code()
                };
            }
            Some((p, l)) if l.leading && redirect(i).is_some() => {
                // a replica in the consumer's rack serves it: offsets only from here
                data.preferred_read_replica = BrokerId(redirect(i).unwrap_or(-1));
                p.with_log(|l| {
                    data.high_watermark = l.high_watermark();
                    data.last_stable_offset = l.last_stable_offset();
                    data.log_start_offset = l.log_start_offset();
                });
            }
            Some((p, _)) if held_back && throttled(i) => {
                // throttled: offsets only, no records this time
                p.with_log(|l| {
                    data.high_watermark = l.high_watermark();
                    data.last_stable_offset = l.last_stable_offset();
                    data.log_start_offset = l.log_start_offset();
                });
            }
            Some((p, _)) => {
                let max = (w.max_bytes.max(0) as usize).min(remaining);
                let min_one = total == 0;
                let bound = if follower {
                    ReadBound::LogEnd
                } else if read_committed {
                    ReadBound::LastStable
                } else {
                    ReadBound::HighWatermark
                };
                match p.read(w.fetch_offset, max, bound, min_one) {
                    Ok(read) => {
                        data.high_watermark = read.high_watermark;
                        data.last_stable_offset = read.last_stable_offset;
                        data.log_start_offset = read.log_start_offset;
                        if read_committed {
                            data.aborted_transactions = Some(
                                read.aborted
                                    .iter()
                                    .map(|a| {
                                        AbortedTransaction::default()
                                            .with_producer_id(ProducerId(a.producer_id))
                                            .with_first_offset(a.first_offset)
                                    })
                                    .collect(),
                            );
                        }
                        if let Some(slice) = read.slice {
                            if throttled(i) {
                                throttled_bytes += slice.length;
                            }
                            total += slice.length;
                            remaining = remaining.saturating_sub(slice.length);
                            file = Some(slice);
                        }
                    }
                    Err(e) => {
                        if let StorageError::OffsetOutOfRange { log_start, .. } = &e {
                            p.with_log(|l| {
                                data.high_watermark = l.high_watermark();
                                data.last_stable_offset = l.last_stable_offset();
                            });
                            data.log_start_offset = *log_start;
                        }
                        data.error_code = storage_error_code(&e);
                    }
                }
            }
        }
        errors |= data.error_code != 0;
        // An incremental response carries only partitions with news.
        let changed = w.has_news(&data, file.is_some());
        sent.push(SessionPartition::sent_state(&data));
        if incremental && !changed {
            continue;
        }
        let topic_matches = |t: &FetchableTopicResponse| {
            if version >= 13 {
                t.topic_id == w.topic_id
            } else {
                *t.topic.0 == *w.name_or_empty()
            }
        };
        if !response.responses.last().is_some_and(topic_matches) {
            let mut t = FetchableTopicResponse::default();
            if version >= 13 {
                t.topic_id = w.topic_id;
            } else {
                t.topic = TopicName(super::str(&w.name_or_empty()));
            }
            response.responses.push(t);
        }
        response
            .responses
            .last_mut()
            .expect("pushed")
            .partitions
            .push(data);
        files.push(file);
    }
    (response, files, total, errors, sent, throttled_bytes)
}

/// Topic id → name for v13+ requests, name → id for older ones.
pub fn resolve(
    image: &crate::metadata::MetadataImage,
    version: i16,
    name: &TopicName,
    id: Uuid,
) -> (Option<String>, Uuid) {
    if version >= 13 {
        (image.topic_by_id(&id).map(|t| t.name.clone()), id)
    } else {
        let name = name.0.to_string();
        let id = image.topic(&name).map_or(Uuid::nil(), |t| t.id);
        (Some(name), id)
    }
}
