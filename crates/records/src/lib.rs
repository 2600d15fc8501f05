//! The record codec: decode a RecordBatch v2 into records and encode records back into a batch,
//! with every compression codec. Wraps the record codec of the `kafka-protocol` crate (its
//! messages are not used here). Used where a feature must look inside batches: compaction,
//! broker-side recompression, key checks on compacted topics, ListOffsets by timestamp.

use bytes::{Bytes, BytesMut};
pub use kafka_protocol::records::{Compression, Record, TimestampType};
use kafka_protocol::records::{RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions};

#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    #[error("cannot decode record batch: {0}")]
    Decode(String),
    #[error("cannot encode record batch: {0}")]
    Encode(String),
    #[error("unknown compression codec {0}")]
    UnknownCompression(i16),
}

const ATTRIBUTES: usize = 21;
const MAX_TIMESTAMP: usize = 35;
const CRC: usize = 17;
const BASE_SEQUENCE: usize = 53;
const TIMESTAMP_TYPE: i16 = 0x08;

pub fn compression_from_attributes(attributes: i16) -> Result<Compression, CodecError> {
    Ok(match attributes & 0x07 {
        0 => Compression::None,
        1 => Compression::Gzip,
        2 => Compression::Snappy,
        3 => Compression::Lz4,
        4 => Compression::Zstd,
        other => return Err(CodecError::UnknownCompression(other)),
    })
}

/// Kafka's topic `compression.type` names (`producer` and `uncompressed` included).
pub fn compression_from_name(name: &str) -> Option<Compression> {
    Some(match name {
        "uncompressed" | "none" => Compression::None,
        "gzip" => Compression::Gzip,
        "snappy" => Compression::Snappy,
        "lz4" => Compression::Lz4,
        "zstd" => Compression::Zstd,
        _ => return None,
    })
}

/// Decodes one complete batch into its records (offsets absolute). For LogAppendTime batches the
/// records carry the batch's max timestamp, as clients see it.
pub fn decode(batch: &[u8]) -> Result<Vec<Record>, CodecError> {
    if batch.len() < 61 {
        return Err(CodecError::Decode("batch shorter than its header".into()));
    }
    let log_append_time =
        i16::from_be_bytes([batch[ATTRIBUTES], batch[ATTRIBUTES + 1]]) & TIMESTAMP_TYPE != 0;
    let max_timestamp = i64::from_be_bytes(
        batch[MAX_TIMESTAMP..MAX_TIMESTAMP + 8]
            .try_into()
            .expect("8 bytes"),
    );
    let mut buf = Bytes::copy_from_slice(batch);
    let set =
        RecordBatchDecoder::decode(&mut buf).map_err(|e| CodecError::Decode(e.to_string()))?;
    Ok(set
        .records
        .into_iter()
        .map(|mut r| {
            if log_append_time {
                r.timestamp = max_timestamp;
            }
            r
        })
        .collect())
}

/// Encodes records (which keep their offsets, sequences and producer fields) as one batch with
/// `compression`; `log_append_time` marks it LogAppendTime with that max timestamp.
pub fn encode(
    records: &[Record],
    compression: Compression,
    log_append_time: Option<i64>,
) -> Result<Vec<u8>, CodecError> {
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut buf,
        records,
        &RecordEncodeOptions {
            version: 2,
            compression,
        },
    )
    .map_err(|e| CodecError::Encode(e.to_string()))?;
    let mut out = buf.to_vec();
    let mut patched = false;
    if let Some(timestamp) = log_append_time {
        let attributes =
            i16::from_be_bytes([out[ATTRIBUTES], out[ATTRIBUTES + 1]]) | TIMESTAMP_TYPE;
        out[ATTRIBUTES..ATTRIBUTES + 2].copy_from_slice(&attributes.to_be_bytes());
        out[MAX_TIMESTAMP..MAX_TIMESTAMP + 8].copy_from_slice(&timestamp.to_be_bytes());
        patched = true;
    }
    // Without a producer id the base sequence is -1, whatever the first record's offset delta.
    if records.first().is_some_and(|r| r.producer_id < 0) {
        out[BASE_SEQUENCE..BASE_SEQUENCE + 4].copy_from_slice(&(-1i32).to_be_bytes());
        patched = true;
    }
    if patched {
        let crc = crc32c::crc32c(&out[ATTRIBUTES..]);
        out[CRC..CRC + 4].copy_from_slice(&crc.to_be_bytes());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(offset: i64, key: Option<&'static str>) -> Record {
        Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: 3,
            producer_id: 9,
            producer_epoch: 1,
            timestamp_type: TimestampType::Creation,
            offset,
            sequence: offset as i32,
            timestamp: 1000 + offset,
            key: key.map(|k| Bytes::from_static(k.as_bytes())),
            value: Some(Bytes::from_static(b"v")),
            headers: Default::default(),
        }
    }

    #[test]
    fn round_trip_keeps_offsets_and_producer_fields_in_every_codec() {
        for c in [
            Compression::None,
            Compression::Gzip,
            Compression::Snappy,
            Compression::Lz4,
            Compression::Zstd,
        ] {
            // a subset with gaps, as compaction leaves it
            let records = vec![
                record(10, Some("a")),
                record(13, None),
                record(17, Some("b")),
            ];
            let batch = encode(&records, c, None).unwrap();
            assert_eq!(
                compression_from_attributes(i16::from_be_bytes([batch[21], batch[22]])).unwrap(),
                c
            );
            let back = decode(&batch).unwrap();
            assert_eq!(
                back.iter().map(|r| r.offset).collect::<Vec<_>>(),
                vec![10, 13, 17]
            );
            assert_eq!(back[2].sequence, 17);
            assert_eq!(back[0].producer_id, 9);
            assert_eq!(back[1].key, None);
        }
        // no producer: base sequence stays -1 even when the first record is not at delta 0
        let mut plain: Vec<Record> = [3, 5]
            .iter()
            .map(|&o| Record {
                producer_id: -1,
                producer_epoch: -1,
                sequence: 0,
                ..record(o, Some("p"))
            })
            .collect();
        plain[0].sequence = 0;
        plain[1].sequence = 2;
        let batch = encode(&plain, Compression::None, None).unwrap();
        assert_eq!(i32::from_be_bytes(batch[53..57].try_into().unwrap()), -1);
        assert_eq!(decode(&batch).unwrap().len(), 2);
        let batch = encode(&[record(0, Some("k"))], Compression::Lz4, Some(5555)).unwrap();
        assert_eq!(decode(&batch).unwrap()[0].timestamp, 5555);
        assert_eq!(
            crc32c::crc32c(&batch[21..]),
            u32::from_be_bytes(batch[17..21].try_into().unwrap())
        );
    }
}
