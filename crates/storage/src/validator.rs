//! What a leader checks of a producer's records before any of them reaches the log (Kafka's
//! LogValidator): the batches parse and their CRCs match, no batch is larger than
//! `max.message.bytes`, producers send no control batches, timestamps are within
//! `message.timestamp.before.max.ms` / `.after.max.ms` (CreateTime topics), a compacted topic's
//! records have keys, and a topic with a `compression.type` gets its batches in that codec.

use crate::batch::{self, BatchHeader, BatchIter};
use crate::error::{BatchError, Result, StorageError};
use crate::log_config::{decode_error, LogConfig};

/// Checks (and where the topic asks, converts) `records` for an append as leader; returns
/// each batch's position in `records` and its header.
pub fn validate_for_append(
    config: &LogConfig,
    records: &mut Vec<u8>,
    now_ms: i64,
) -> Result<Vec<(usize, BatchHeader)>> {
    // what the topic's configs demand of the records themselves
    if config.compact_policy || config.compression.is_some() {
        *records = convert_records(config, records)?;
    }
    let mut headers = Vec::new();
    for item in BatchIter::new(records) {
        let (position, bytes) = item.map_err(|e| match e {
            BatchError::Truncated => StorageError::Batch(BatchError::Corrupt("truncated batch")),
            other => StorageError::Batch(other),
        })?;
        if bytes.len() > config.max_message_bytes {
            return Err(StorageError::MessageTooLarge {
                size: bytes.len(),
                limit: config.max_message_bytes,
            });
        }
        let header = batch::validate(bytes)?;
        if header.is_control() {
            return Err(StorageError::InvalidRecord(
                "clients may not produce control batches",
            ));
        }
        if !config.log_append_time {
            validate_timestamps(config, &header, now_ms)?;
        }
        headers.push((position, header));
    }
    Ok(headers)
}

/// Compacted topics refuse records without a key; `compression.type` other than `producer`
/// recompresses batches that arrive in another codec. Batches that need neither are copied.
fn convert_records(config: &LogConfig, records: &[u8]) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(records.len());
    for item in BatchIter::new(records) {
        let (_, bytes) =
            item.map_err(|_| StorageError::Batch(BatchError::Corrupt("truncated batch")))?;
        let header = batch::validate(bytes)?;
        let codec = ferrolog_records::compression_from_attributes(header.attributes)
            .map_err(|_| StorageError::Batch(BatchError::Corrupt("unknown compression codec")))?;
        let recompress = config.compression.filter(|&target| target != codec);
        if !config.compact_policy && recompress.is_none() {
            out.extend_from_slice(bytes);
            continue;
        }
        let decoded = ferrolog_records::decode(bytes, config.max_decompressed_bytes())
            .map_err(decode_error)?;
        if config.compact_policy && decoded.iter().any(|r| r.key.is_none()) {
            return Err(StorageError::InvalidRecord(
                "Compacted topic cannot accept message without key",
            ));
        }
        match recompress {
            Some(target) if !decoded.is_empty() => {
                let encoded =
                    ferrolog_records::encode(&decoded, target, config.compression_levels, None)
                        .map_err(|_| {
                            StorageError::Batch(BatchError::Corrupt("cannot re-encode records"))
                        })?;
                out.extend_from_slice(&encoded);
            }
            _ => out.extend_from_slice(bytes),
        }
    }
    Ok(out)
}

fn validate_timestamps(config: &LogConfig, header: &BatchHeader, now_ms: i64) -> Result<()> {
    for timestamp in [header.base_timestamp, header.max_timestamp] {
        if timestamp < 0 {
            continue;
        }
        if now_ms.saturating_sub(timestamp) > config.timestamp_before_max_ms {
            return Err(StorageError::InvalidTimestamp {
                timestamp,
                reason: "older than message.timestamp.before.max.ms",
            });
        }
        if timestamp.saturating_sub(now_ms) > config.timestamp_after_max_ms {
            return Err(StorageError::InvalidTimestamp {
                timestamp,
                reason: "newer than message.timestamp.after.max.ms",
            });
        }
    }
    Ok(())
}
