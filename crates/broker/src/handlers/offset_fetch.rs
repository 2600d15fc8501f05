//! OffsetFetch: committed offsets of one group (v1-7) or several (v8+); all of a group's
//! offsets when no topics are named.

use std::sync::Arc;

use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions,
    OffsetFetchResponseTopic, OffsetFetchResponseTopics,
};
use kafka_protocol::messages::{OffsetFetchRequest, OffsetFetchResponse};
use kafka_protocol::ResponseError;

use super::{str, topic_name};
use crate::Broker;

/// (topic, [(partition, offset, leader epoch, metadata, error)])
type Fetched = Vec<(String, Vec<(i32, i64, i32, String, i16)>)>;

/// `require_stable` (v7+): a partition with an offset pending in an open transaction answers
/// UNSTABLE_OFFSET_COMMIT, and the consumer retries once the transaction ends.
fn fetch(
    broker: &Broker,
    group: &str,
    topics: Option<Vec<(String, Vec<i32>)>>,
    require_stable: bool,
) -> Fetched {
    let committed = broker.groups.offsets(group);
    match topics {
        None => {
            let mut out: Fetched = Vec::new();
            for ((topic, partition), o) in committed {
                if out.last().is_none_or(|(t, _)| *t != topic) {
                    out.push((topic.clone(), Vec::new()));
                }
                let unstable = require_stable
                    && broker
                        .groups
                        .has_pending_txn_offset(group, &topic, partition);
                out.last_mut().expect("pushed").1.push(if unstable {
                    (
                        partition,
                        -1,
                        -1,
                        String::new(),
                        ResponseError::UnstableOffsetCommit.code(),
                    )
                } else {
                    (partition, o.offset, o.leader_epoch, o.metadata, 0)
                });
            }
            out
        }
        Some(topics) => topics
            .into_iter()
            .map(|(topic, partitions)| {
                let entries = partitions
                    .into_iter()
                    .map(|p| match committed.get(&(topic.clone(), p)) {
                        _ if require_stable
                            && broker.groups.has_pending_txn_offset(group, &topic, p) =>
                        {
                            (
                                p,
                                -1,
                                -1,
                                String::new(),
                                ResponseError::UnstableOffsetCommit.code(),
                            )
                        }
                        Some(o) => (p, o.offset, o.leader_epoch, o.metadata.clone(), 0),
                        // Kafka answers "no offset" without an error, known topic or not
                        None => (p, -1, -1, String::new(), 0),
                    })
                    .collect();
                (topic, entries)
            })
            .collect(),
    }
}

pub fn handle(
    broker: &Arc<Broker>,
    request: OffsetFetchRequest,
    version: i16,
) -> OffsetFetchResponse {
    let mut response = OffsetFetchResponse::default();
    if version >= 8 {
        for g in request.groups {
            let topics = g.topics.map(|ts| {
                ts.into_iter()
                    .map(|t| (t.name.0.to_string(), t.partition_indexes))
                    .collect()
            });
            let mut group = OffsetFetchResponseGroup::default().with_group_id(g.group_id.clone());
            // v9: a consumer-protocol member fetches at its member epoch
            if let Some(member) = g.member_id.as_deref().filter(|m| !m.is_empty()) {
                if let Err(e) = broker
                    .groups
                    .check_fetch(&g.group_id.0, member, g.member_epoch)
                {
                    response.groups.push(group.with_error_code(e.code()));
                    continue;
                }
            }
            for (topic, entries) in fetch(broker, &g.group_id.0, topics, request.require_stable) {
                let partitions = entries
                    .into_iter()
                    .map(|(p, offset, epoch, metadata, error)| {
                        OffsetFetchResponsePartitions::default()
                            .with_partition_index(p)
                            .with_committed_offset(offset)
                            .with_committed_leader_epoch(epoch)
                            .with_metadata(Some(str(&metadata)))
                            .with_error_code(error)
                    })
                    .collect();
                group.topics.push(
                    OffsetFetchResponseTopics::default()
                        .with_name(topic_name(&topic))
                        .with_partitions(partitions),
                );
            }
            response.groups.push(group);
        }
        return response;
    }
    let topics = request.topics.map(|ts| {
        ts.into_iter()
            .map(|t| (t.name.0.to_string(), t.partition_indexes))
            .collect()
    });
    let stable = version >= 7 && request.require_stable;
    for (topic, entries) in fetch(broker, &request.group_id.0, topics, stable) {
        let partitions = entries
            .into_iter()
            .map(|(p, offset, epoch, metadata, error)| {
                let mut partition = OffsetFetchResponsePartition::default()
                    .with_partition_index(p)
                    .with_committed_offset(offset)
                    .with_metadata(Some(str(&metadata)))
                    .with_error_code(error);
                if version >= 5 {
                    partition.committed_leader_epoch = epoch;
                }
                partition
            })
            .collect();
        response.topics.push(
            OffsetFetchResponseTopic::default()
                .with_name(topic_name(&topic))
                .with_partitions(partitions),
        );
    }
    response
}
