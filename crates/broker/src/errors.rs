//! The one place where storage errors become Kafka error codes.

use ferrolog_storage::{BatchError, StorageError};
use kafka_protocol::ResponseError;

pub fn code(e: ResponseError) -> i16 {
    e.code()
}

pub fn storage_error_code(error: &StorageError) -> i16 {
    let e = match error {
        StorageError::Batch(BatchError::UnsupportedMagic(_)) => {
            ResponseError::UnsupportedForMessageFormat
        }
        StorageError::Batch(_) => ResponseError::CorruptMessage,
        StorageError::MessageTooLarge { .. } => ResponseError::MessageTooLarge,
        StorageError::RecordSetTooLarge { .. } => ResponseError::RecordListTooLarge,
        StorageError::InvalidTimestamp { .. } => ResponseError::InvalidTimestamp,
        StorageError::OffsetOutOfRange { .. } => ResponseError::OffsetOutOfRange,
        StorageError::OutOfOrderSequence { .. } => ResponseError::OutOfOrderSequenceNumber,
        StorageError::ProducerFenced { .. } => ResponseError::InvalidProducerEpoch,
        StorageError::InvalidRecord(_) => ResponseError::InvalidRecord,
        StorageError::Io(_) => ResponseError::KafkaStorageError,
    };
    e.code()
}
