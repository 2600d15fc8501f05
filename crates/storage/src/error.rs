use std::io;

/// What can be wrong with a batch's bytes.
#[derive(Debug, thiserror::Error)]
pub enum BatchError {
    #[error("corrupt batch: {0}")]
    Corrupt(&'static str),
    #[error("CRC-32C mismatch")]
    CrcMismatch,
    #[error("unsupported record batch magic {0}, only magic 2 is supported")]
    UnsupportedMagic(i8),
    #[error("truncated batch")]
    Truncated,
}

/// Errors of the storage layer. The broker maps them to Kafka error codes in one place.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error(transparent)]
    Batch(#[from] BatchError),
    #[error("batch of {size} bytes exceeds the limit of {limit} bytes")]
    MessageTooLarge { size: usize, limit: usize },
    #[error("record set of {size} bytes exceeds segment size {limit}")]
    RecordSetTooLarge { size: usize, limit: usize },
    #[error("timestamp {timestamp} out of the accepted range: {reason}")]
    InvalidTimestamp {
        timestamp: i64,
        reason: &'static str,
    },
    #[error("offset {offset} out of range [{log_start}, {log_end}]")]
    OffsetOutOfRange {
        offset: i64,
        log_start: i64,
        log_end: i64,
    },
    #[error("out of order sequence for producer {producer_id}: expected {expected}, got {got}")]
    OutOfOrderSequence {
        producer_id: i64,
        expected: i32,
        got: i32,
    },
    #[error("producer {producer_id} epoch {epoch} is older than the current epoch {current}")]
    ProducerFenced {
        producer_id: i64,
        epoch: i16,
        current: i16,
    },
    #[error("invalid record: {0}")]
    InvalidRecord(&'static str),
    #[error("I/O error: {0}")]
    Io(#[from] io::Error),
}

pub type Result<T> = std::result::Result<T, StorageError>;
