//! Transaction markers: the control batches that end a producer's transaction in a partition,
//! as Kafka writes them. The record's key is `[version: int16 = 0][type: int16]` (0 ABORT,
//! 1 COMMIT); its value `[version: int16 = 0][coordinator epoch: int32]`.

use crate::error::{BatchError, Result, StorageError};

const ABORT: i16 = 0;
const COMMIT: i16 = 1;

/// A marker batch (offsets and leader epoch still to be assigned by the append).
pub fn encode(
    producer_id: i64,
    producer_epoch: i16,
    commit: bool,
    coordinator_epoch: i32,
    now_ms: i64,
) -> Result<Vec<u8>> {
    let kind = if commit { COMMIT } else { ABORT };
    let key = [0i16.to_be_bytes(), kind.to_be_bytes()].concat();
    let value = [
        &0i16.to_be_bytes()[..],
        &coordinator_epoch.to_be_bytes()[..],
    ]
    .concat();
    let record = ferrolog_records::Record {
        transactional: true,
        control: true,
        producer_id,
        producer_epoch,
        ..ferrolog_records::plain_record(Some(key.into()), Some(value.into()), vec![], now_ms)
    };
    ferrolog_records::encode(
        &[record],
        ferrolog_records::Compression::None,
        ferrolog_records::Levels {
            gzip: None,
            lz4: None,
            zstd: None,
        },
        None,
    )
    .map_err(|_| StorageError::Batch(BatchError::Corrupt("cannot encode a marker")))
}

/// COMMIT (true) or ABORT (false) from a control record's key; `None` for other control
/// records.
pub fn is_commit_key(key: &[u8]) -> Option<bool> {
    match key.get(0..4)? {
        [0, 0, 0, 0] => Some(false),
        [0, 0, 0, 1] => Some(true),
        _ => None,
    }
}

/// COMMIT (true) or ABORT (false) from a control batch's bytes (its first record's key).
pub fn is_commit_batch(batch_bytes: &[u8]) -> Option<bool> {
    let records = ferrolog_records::decode(batch_bytes, 1 << 20).ok()?;
    is_commit_key(records.first()?.key.as_deref()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers_round_trip() {
        for commit in [true, false] {
            let bytes = encode(7, 2, commit, 3, 1_000).unwrap();
            assert_eq!(is_commit_batch(&bytes), Some(commit));
            let header = crate::batch::validate(&bytes).unwrap();
            assert!(header.is_control() && header.is_transactional());
            assert_eq!((header.producer_id, header.producer_epoch), (7, 2));
        }
        assert_eq!(is_commit_key(&[0, 0, 0, 2]), None);
        assert_eq!(is_commit_key(&[0, 1]), None);
    }
}
