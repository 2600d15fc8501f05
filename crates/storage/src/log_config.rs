//! A log's settings: the topic-level configs with Kafka's names and defaults, as the storage
//! layer uses them.

use ferrolog_records::{Compression, Levels};

use crate::error::{BatchError, StorageError};
use crate::segment::SegmentConfig;

/// Topic-level log settings, with Kafka's names and defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct LogConfig {
    /// `segment.bytes`
    pub segment_bytes: u64,
    /// `segment.ms`
    pub segment_ms: i64,
    /// `segment.index.bytes`
    pub segment_index_bytes: usize,
    /// `index.interval.bytes`
    pub index_interval_bytes: usize,
    /// `max.message.bytes`
    pub max_message_bytes: usize,
    /// `flush.messages`
    pub flush_messages: i64,
    /// `flush.ms`
    pub flush_ms: i64,
    /// `message.timestamp.type` = LogAppendTime
    pub log_append_time: bool,
    /// `message.timestamp.before.max.ms`
    pub timestamp_before_max_ms: i64,
    /// `message.timestamp.after.max.ms`
    pub timestamp_after_max_ms: i64,
    /// `retention.ms` (-1: forever)
    pub retention_ms: i64,
    /// `retention.bytes` (-1: unbounded)
    pub retention_bytes: i64,
    /// `cleanup.policy` contains `delete`
    pub delete_policy: bool,
    /// `file.delete.delay.ms`
    pub file_delete_delay_ms: i64,
    /// `cleanup.policy` contains `compact`
    pub compact_policy: bool,
    /// `compression.type`; `None` keeps the producer's compression
    pub compression: Option<Compression>,
    /// `min.cleanable.dirty.ratio`
    pub min_cleanable_ratio: f64,
    /// `min.compaction.lag.ms`
    pub min_compaction_lag_ms: i64,
    /// `max.compaction.lag.ms`
    pub max_compaction_lag_ms: i64,
    /// `delete.retention.ms`: how long tombstones outlive compaction
    pub delete_retention_ms: i64,
    /// `compression.gzip.level`, `compression.lz4.level`, `compression.zstd.level`
    pub compression_levels: Levels,
}

impl Default for LogConfig {
    fn default() -> LogConfig {
        LogConfig {
            segment_bytes: 1024 * 1024 * 1024,
            segment_ms: 7 * 24 * 3600 * 1000,
            segment_index_bytes: 10 * 1024 * 1024,
            index_interval_bytes: 4096,
            max_message_bytes: 1024 * 1024 + 12,
            flush_messages: i64::MAX,
            flush_ms: i64::MAX,
            log_append_time: false,
            timestamp_before_max_ms: i64::MAX,
            timestamp_after_max_ms: 3600 * 1000,
            retention_ms: 7 * 24 * 3600 * 1000,
            retention_bytes: -1,
            delete_policy: true,
            file_delete_delay_ms: 60_000,
            compact_policy: false,
            compression: None,
            min_cleanable_ratio: 0.5,
            min_compaction_lag_ms: 0,
            max_compaction_lag_ms: i64::MAX,
            delete_retention_ms: 86_400_000,
            compression_levels: Levels::default(),
        }
    }
}

/// What a record batch may decompress to when the broker looks inside it: 64 times
/// `max.message.bytes`, at least 16 MiB and at most 1 GiB, so a small compressed batch cannot
/// make the broker allocate without bound.
pub const DECOMPRESSION_RATIO_MAX: usize = 64;

/// Maps a codec failure on producer bytes to the storage error the client sees.
pub(crate) fn decode_error(error: ferrolog_records::CodecError) -> StorageError {
    match error {
        ferrolog_records::CodecError::TooLarge { limit } => StorageError::MessageTooLarge {
            size: limit + 1,
            limit,
        },
        _ => StorageError::Batch(BatchError::Corrupt("undecodable records")),
    }
}

impl LogConfig {
    pub fn max_decompressed_bytes(&self) -> usize {
        self.max_message_bytes
            .saturating_mul(DECOMPRESSION_RATIO_MAX)
            .clamp(16 << 20, 1 << 30)
    }

    pub(crate) fn segment_config(&self) -> SegmentConfig {
        SegmentConfig {
            index_interval_bytes: self.index_interval_bytes,
            max_index_bytes: self.segment_index_bytes,
        }
    }
}
