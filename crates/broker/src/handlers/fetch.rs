//! Fetch: long poll (max_wait_ms / min_bytes), response and partition byte limits with Kafka's
//! "first batch is always returned" rule, topic ids in v13+, and KIP-227 fetch sessions.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use ferrolog_storage::FileSlice;
use kafka_protocol::messages::fetch_response::{
    AbortedTransaction, FetchableTopicResponse, LeaderIdAndEpoch, NodeEndpoint, PartitionData,
};
use kafka_protocol::messages::{BrokerId, FetchRequest, FetchResponse, ProducerId, TopicName};
use kafka_protocol::ResponseError;

use crate::fetch_session::{SentState, SessionOutcome, SessionPartition};
use crate::replica_manager::{FetchInfo, FetchParams, FetchResult, Offsets, PartitionError};
use crate::Broker;

/// The response, and per partition in response order the records to send from a segment file.
pub type FetchReply = (FetchResponse, Vec<Option<FileSlice>>);

/// How often a follower's progress on a quiet partition is recorded (see `fetch::handle`).
const QUIET_PROGRESS_MS: i64 = 1000;

pub async fn handle(
    broker: &Arc<Broker>,
    ctx: &super::RequestContext,
    request: FetchRequest,
) -> FetchReply {
    let version = ctx.version;
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
    // a consumer's fetch is sized to its consumer_byte_rate (below), what it read counts
    // against it and it waits out the throttle that gives (KIP-219)
    let quota = crate::quota::CONSUMER_BYTE_RATE;
    // this leader's throttle on out-of-sync followers of throttled replicas
    let leader_rate = broker
        .effective()
        .settings
        .leader_replication_throttled_rate;
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
    let infos: Vec<FetchInfo> = wanted
        .iter()
        .map(|w| FetchInfo {
            partition: w
                .name
                .as_deref()
                .and_then(|n| broker.replicas.get(n, w.partition)),
            offset: w.fetch_offset,
            max_bytes: w.max_bytes.max(0) as usize,
            current_leader_epoch: w.current_leader_epoch,
            quiet_at: if incremental { w.quiet_at() } else { None },
        })
        .collect();
    if follower {
        let now = crate::now_ms();
        for (info, w) in infos.iter().zip(wanted.iter_mut()) {
            let Some(p) = &info.partition else {
                continue;
            };
            // a quiet partition's follower is where it was: its progress needs recording only
            // now and then, for the ISR's lag check (well within replica.lag.time.max.ms)
            let quiet = info.quiet_at.is_some_and(|v| v == p.watchers.version());
            if quiet && now - w.progress_ms < QUIET_PROGRESS_MS {
                continue;
            }
            w.progress_ms = now;
            if let Some((isr, epoch)) = p.follower_fetched(replica, w.fetch_offset, now) {
                tracing::info!(
                    topic = p.topic,
                    partition = p.index,
                    replica,
                    "follower caught up: expanding the ISR"
                );
                let (broker, p) = (broker.clone(), p.clone());
                tokio::spawn(async move { broker.propose_isr(&p, isr, epoch).await });
            }
        }
    }
    let params = FetchParams {
        follower,
        read_committed: request.isolation_level == 1,
        // KIP-392: consumers (v11+) read from followers too
        follower_reads: !follower && version >= 11,
        // no more than the consumer's quota allows in one measuring window
        max_bytes: match broker
            .quotas
            .window_worth(quota, ctx.quota_user(), &ctx.client_id)
            .filter(|_| !follower)
        {
            Some(worth) => (request.max_bytes.max(0) as usize).min(worth.max(1.0) as usize),
            None => request.max_bytes.max(0) as usize,
        },
        min_bytes: request.min_bytes.max(0) as usize,
        max_wait: Duration::from_millis(request.max_wait_ms.max(0) as u64),
    };
    // a partition answers with offsets only when a replica in the consumer's rack serves it,
    // or (a throttled replica) while this leader's replication throttle is exceeded
    let held_back = broker.leader_quota.exceeded(leader_rate);
    let offsets_only = |i: usize| {
        redirect.get(i).copied().flatten().is_some()
            || (held_back && throttled.get(i).copied().unwrap_or(false))
    };
    let fetched = broker
        .replicas
        .fetch_messages(&params, &infos, offsets_only)
        .await;
    let (mut results, versions): (Vec<_>, Vec<_>) = fetched.into_iter().unzip();
    for ((w, r), version) in wanted.iter_mut().zip(&results).zip(versions) {
        w.record_quiet(
            version.filter(|_| session_id != 0 && r.leaves_client_current(w.fetch_offset, &params)),
        );
    }
    let mut throttled_bytes = 0;
    for (i, r) in results.iter().enumerate() {
        if throttled.get(i).copied().unwrap_or(false) {
            if let FetchResult::Read(read) = r {
                throttled_bytes += read.slice.as_ref().map_or(0, |s| s.length);
            }
        }
    }
    broker.leader_quota.record(throttled_bytes);
    let consumed: usize = if follower {
        0
    } else {
        results
            .iter()
            .map(|r| match r {
                FetchResult::Read(read) => read.slice.as_ref().map_or(0, |s| s.length),
                _ => 0,
            })
            .sum()
    };
    let (reply, sent) = respond(
        broker,
        ctx,
        &wanted,
        session_id,
        incremental,
        &redirect,
        params.read_committed,
        &mut results,
    );
    // what each partition told the client changes only with a response that is sent
    for (w, state) in wanted.iter_mut().zip(sent) {
        if let Some(state) = state {
            w.record_sent(state);
        }
    }
    broker.fetch_sessions.finish(session_id, wanted);
    let mut reply = reply;
    if consumed > 0 {
        reply.0.throttle_time_ms = ctx.record_quota(broker, quota, consumed as f64);
    }
    reply
}

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

/// Builds the response from what was read: per partition its data (an incremental session's
/// response carries only partitions with news), the file slices of the records in response
/// order, and what each wanted partition tells the client (to record once it is sent).
#[allow(clippy::too_many_arguments)]
fn respond(
    broker: &Arc<Broker>,
    ctx: &super::RequestContext,
    wanted: &[SessionPartition],
    session_id: i32,
    incremental: bool,
    redirect: &[Option<i32>],
    read_committed: bool,
    results: &mut [FetchResult],
) -> (FetchReply, Vec<Option<SentState>>) {
    let version = ctx.version;
    let mut response = FetchResponse::default().with_session_id(session_id);
    let mut files = Vec::new();
    let mut sent = Vec::with_capacity(wanted.len());
    for ((i, w), result) in wanted.iter().enumerate().zip(results.iter_mut()) {
        if matches!(result, FetchResult::Quiet) {
            // nothing new: not in an incremental response, and the client's view stands
            sent.push(None);
            continue;
        }
        let mut data = PartitionData::default()
            .with_partition_index(w.partition)
            .with_high_watermark(-1)
            .with_last_stable_offset(-1)
            .with_log_start_offset(-1)
            .with_preferred_read_replica((-1).into())
            .with_records(Some(Bytes::new()));
        if read_committed {
            data.aborted_transactions = Some(Vec::new());
        }
        let set_offsets = |data: &mut PartitionData, o: &Offsets| {
            data.high_watermark = o.high_watermark;
            data.last_stable_offset = o.last_stable;
            data.log_start_offset = o.log_start;
        };
        let file = result.take_slice();
        match result {
            FetchResult::Quiet => {}
            FetchResult::Unknown => {
                data.error_code = if w.name.is_none() {
                    ResponseError::UnknownTopicId.code()
                } else {
                    ResponseError::UnknownTopicOrPartition.code()
                };
            }
            FetchResult::Error(e, offsets) => {
                data.error_code = e.code();
                if let Some(o) = offsets {
                    set_offsets(&mut data, o);
                }
                if matches!(e, PartitionError::NotLeader) {
                    leader_hint(broker, ctx, w, &mut data, &mut response);
                }
            }
            FetchResult::OffsetsOnly(o) => {
                set_offsets(&mut data, o);
                if let Some(r) = redirect.get(i).copied().flatten() {
                    data.preferred_read_replica = BrokerId(r);
                }
            }
            FetchResult::Read(read) => {
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
            }
        }
        // An incremental response carries only partitions with news.
        let changed = w.has_news(&data, file.is_some());
        sent.push(Some(SessionPartition::sent_state(&data)));
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
    ((response, files), sent)
}

/// KIP-951: with NOT_LEADER_OR_FOLLOWER, the current leader (v12+) and its endpoint (v16+).
fn leader_hint(
    broker: &Arc<Broker>,
    ctx: &super::RequestContext,
    w: &SessionPartition,
    data: &mut PartitionData,
    response: &mut FetchResponse,
) {
    let version = ctx.version;
    let Some((leader, epoch, endpoint)) = (version >= 12)
        .then(|| {
            super::leader_hint(
                broker,
                &ctx.session.listener,
                w.name.as_deref()?,
                w.partition,
            )
        })
        .flatten()
    else {
        return;
    };
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
