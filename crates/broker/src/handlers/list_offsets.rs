//! ListOffsets: earliest (-2, -4), latest (-1), max timestamp (-3), and by timestamp through the
//! time index, refined to the exact record inside the batch.

use std::sync::Arc;

use ferrolog_storage::batch::BatchHeader;
use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::{ListOffsetsRequest, ListOffsetsResponse};
use kafka_protocol::ResponseError;

use crate::Broker;

const LATEST: i64 = -1;
const EARLIEST: i64 = -2;
const MAX_TIMESTAMP: i64 = -3;
const EARLIEST_LOCAL: i64 = -4;

pub fn handle(
    broker: &Arc<Broker>,
    request: ListOffsetsRequest,
    version: i16,
) -> ListOffsetsResponse {
    let mut response = ListOffsetsResponse::default();
    let read_committed = version >= 2 && request.isolation_level == 1;
    for topic in request.topics {
        let mut topic_response = ListOffsetsTopicResponse::default().with_name(topic.name.clone());
        for p in topic.partitions {
            let mut r = ListOffsetsPartitionResponse::default()
                .with_partition_index(p.partition_index)
                .with_timestamp(-1)
                .with_offset(-1)
                .with_leader_epoch(-1);
            match broker.replicas.get(&topic.name.0, p.partition_index) {
                None => r.error_code = ResponseError::UnknownTopicOrPartition.code(),
                Some(partition) if !partition.is_leader() => {
                    r.error_code = ResponseError::NotLeaderOrFollower.code()
                }
                Some(partition) => {
                    let leader_epoch = partition.leader_epoch();
                    if p.current_leader_epoch >= 0 && p.current_leader_epoch != leader_epoch {
                        r.error_code = if p.current_leader_epoch < leader_epoch {
                            ResponseError::FencedLeaderEpoch.code()
                        } else {
                            ResponseError::UnknownLeaderEpoch.code()
                        };
                    } else {
                        match lookup(&partition, p.timestamp, read_committed) {
                            Ok((offset, timestamp, epoch)) => {
                                r.offset = offset;
                                r.timestamp = timestamp;
                                if version >= 4 {
                                    r.leader_epoch = epoch;
                                }
                            }
                            Err(e) => {
                                tracing::error!("list offsets failed: {e:#}");
                                r.error_code = ResponseError::KafkaStorageError.code();
                            }
                        }
                    }
                }
            }
            topic_response.partitions.push(r);
        }
        response.topics.push(topic_response);
    }
    response
}

/// (offset, timestamp, leader epoch) for a ListOffsets target.
fn lookup(
    partition: &crate::replica_manager::Partition,
    target: i64,
    read_committed: bool,
) -> anyhow::Result<(i64, i64, i32)> {
    let leader_epoch = partition.leader_epoch();
    partition.with_log(|log| {
        let epoch_of = |offset: i64| {
            log.epochs()
                .iter()
                .rev()
                .find(|(_, start)| *start <= offset)
                .map_or(leader_epoch, |(e, _)| *e)
        };
        Ok(match target {
            // read_committed consumers see the log up to the last stable offset
            LATEST if read_committed => (log.last_stable_offset(), -1, leader_epoch),
            LATEST => (log.high_watermark(), -1, leader_epoch),
            EARLIEST | EARLIEST_LOCAL => {
                (log.log_start_offset(), -1, epoch_of(log.log_start_offset()))
            }
            MAX_TIMESTAMP => match log.max_timestamp_batch()? {
                Some((header, bytes)) => {
                    let (offset, timestamp) = find_record(
                        &header,
                        bytes,
                        header.max_timestamp,
                        true,
                        log.config().max_decompressed_bytes(),
                    )?;
                    (offset, timestamp, epoch_of(offset))
                }
                None => (-1, -1, -1),
            },
            t if t >= 0 => match log.batch_for_timestamp(t)? {
                Some((header, bytes)) => {
                    let (offset, timestamp) = find_record(
                        &header,
                        bytes,
                        t,
                        false,
                        log.config().max_decompressed_bytes(),
                    )?;
                    // never below the log start, nor inside an open transaction for
                    // read_committed readers
                    let offset = offset.max(log.log_start_offset());
                    if read_committed && offset >= log.last_stable_offset() {
                        (-1, -1, -1)
                    } else {
                        (offset, timestamp, epoch_of(offset))
                    }
                }
                None => (-1, -1, -1),
            },
            _ => (-1, -1, -1),
        })
    })
}

/// The first record of the batch with timestamp ≥ `target` (or, for the max-timestamp query, the
/// first record carrying exactly the batch's max timestamp).
fn find_record(
    header: &BatchHeader,
    bytes: Vec<u8>,
    target: i64,
    exact: bool,
    limit: usize,
) -> anyhow::Result<(i64, i64)> {
    if header.is_log_append_time() {
        return Ok((
            if exact {
                header.last_offset()
            } else {
                header.base_offset
            },
            header.max_timestamp,
        ));
    }
    let records = ferrolog_records::decode(&bytes, limit)
        .map_err(|e| anyhow::anyhow!("decoding batch: {e}"))?;
    for record in &records {
        let hit = if exact {
            record.timestamp == target
        } else {
            record.timestamp >= target
        };
        if hit {
            return Ok((record.offset, record.timestamp));
        }
    }
    Ok((header.last_offset(), header.max_timestamp))
}
