//! The record codec: decode a RecordBatch v2 into records and encode records back into a batch,
//! with every compression codec. Wraps the record codec of the `kafka-protocol` crate (its
//! messages are not used here). Used where a feature must look inside batches: compaction,
//! broker-side recompression, key checks on compacted topics, ListOffsets by timestamp.

use bytes::{Bytes, BytesMut};
pub use kafka_protocol::records::{Compression, Record, TimestampType};
use kafka_protocol::records::{RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions};

#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    #[error("records decompress to more than {limit} bytes")]
    TooLarge { limit: usize },
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

/// A record without producer id or sequence (what a plain producer sends), offset 0: encoders
/// number records by position.
pub fn plain_record(
    key: Option<Bytes>,
    value: Option<Bytes>,
    headers: Vec<(String, Option<Bytes>)>,
    timestamp: i64,
) -> Record {
    Record {
        transactional: false,
        control: false,
        delete_horizon: false,
        partition_leader_epoch: -1,
        producer_id: -1,
        producer_epoch: -1,
        timestamp_type: TimestampType::Creation,
        offset: 0,
        sequence: -1,
        timestamp,
        key,
        value,
        headers: headers
            .into_iter()
            .map(|(k, v)| (kafka_protocol::protocol::StrBytes::from_string(k), v))
            .collect(),
    }
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
/// records carry the batch's max timestamp, as clients see it. The records section may
/// decompress to at most `max_decompressed` bytes (no decompression bombs): decompression
/// streams into a bounded buffer, and snappy's declared lengths are checked before allocating.
pub fn decode(batch: &[u8], max_decompressed: usize) -> Result<Vec<Record>, CodecError> {
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
    let too_large = std::cell::Cell::new(false);
    let decompress = |compressed: &mut Bytes, compression: Compression| -> anyhow::Result<Bytes> {
        let input = compressed.split_to(compressed.len());
        let out = bounded::decompress(&input, compression, max_decompressed);
        if matches!(out, Err(CodecError::TooLarge { .. })) {
            too_large.set(true);
        }
        out.map_err(|e| anyhow::anyhow!("{e}"))
    };
    let set = RecordBatchDecoder::decode_with_custom_compression(&mut buf, Some(decompress))
        .map_err(|e| {
            if too_large.get() {
                CodecError::TooLarge {
                    limit: max_decompressed,
                }
            } else {
                CodecError::Decode(e.to_string())
            }
        })?;
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

/// Compression levels for the codecs that have them (`compression.gzip.level`,
/// `compression.lz4.level`, `compression.zstd.level`); `None` is the codec's default.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Levels {
    pub gzip: Option<u32>,
    pub lz4: Option<u32>,
    pub zstd: Option<i32>,
}

/// Encodes records (which keep their offsets, sequences and producer fields) as one batch with
/// `compression` at `levels`; `log_append_time` marks it LogAppendTime with that max timestamp.
pub fn encode(
    records: &[Record],
    compression: Compression,
    levels: Levels,
    log_append_time: Option<i64>,
) -> Result<Vec<u8>, CodecError> {
    // The library encoder starts a new batch wherever `offset - sequence` changes; records
    // without a producer carry sequence -1 and would each get a batch of their own. Give them
    // consecutive sequences from -1 so they stay one batch whose base sequence is -1.
    let renumbered: Vec<Record>;
    let records = match records.first() {
        Some(first) if first.producer_id < 0 => {
            let base = records
                .iter()
                .map(|r| r.offset)
                .min()
                .unwrap_or(first.offset);
            renumbered = records
                .iter()
                .map(|r| Record {
                    sequence: (r.offset - base) as i32 - 1,
                    ..r.clone()
                })
                .collect();
            &renumbered[..]
        }
        _ => records,
    };
    let mut buf = BytesMut::new();
    let compressor = |raw: &mut BytesMut,
                      out: &mut BytesMut,
                      c: Compression|
     -> anyhow::Result<()> { bounded::compress(raw, out, c, levels) };
    RecordBatchEncoder::encode_with_custom_compression(
        &mut buf,
        records,
        &RecordEncodeOptions {
            version: 2,
            compression,
        },
        Some(compressor),
    )
    .map_err(|e| CodecError::Encode(e.to_string()))?;
    let mut out = buf.to_vec();
    let length = i32::from_be_bytes(out[8..12].try_into().expect("4 bytes")) as usize;
    if 12 + length != out.len() {
        return Err(CodecError::Encode(
            "records do not share their batch properties".into(),
        ));
    }
    if let Some(timestamp) = log_append_time {
        let attributes =
            i16::from_be_bytes([out[ATTRIBUTES], out[ATTRIBUTES + 1]]) | TIMESTAMP_TYPE;
        out[ATTRIBUTES..ATTRIBUTES + 2].copy_from_slice(&attributes.to_be_bytes());
        out[MAX_TIMESTAMP..MAX_TIMESTAMP + 8].copy_from_slice(&timestamp.to_be_bytes());
        let crc = crc32c::crc32c(&out[ATTRIBUTES..]);
        out[CRC..CRC + 4].copy_from_slice(&crc.to_be_bytes());
    }
    Ok(out)
}

/// The magic byte of the first entry of a record set (0 and 1: the legacy message format; 2:
/// record batches), if it is long enough to have one.
pub fn magic(records: &[u8]) -> Option<i8> {
    records.get(16).map(|b| *b as i8)
}

/// Decodes a legacy message set (magic 0 or 1, as Produce v0-2 carries it) into records
/// numbered from 0, and the compression it used: the up-conversion to a record batch that
/// Kafka does for old producers. Compressed wrapper messages are opened (gzip, snappy, and lz4
/// for magic 1; magic 0's lz4 had a non-standard frame checksum and is refused); the inner
/// messages decompress to at most `max_decompressed` bytes. Magic 0 messages have no timestamp
/// (-1).
pub fn decode_legacy(
    message_set: &[u8],
    max_decompressed: usize,
) -> Result<(Vec<Record>, Compression), CodecError> {
    let mut records = Vec::new();
    let mut compression = Compression::None;
    legacy_messages(message_set, max_decompressed, 0, &mut |m: LegacyMessage| {
        if m.compression != Compression::None {
            compression = m.compression;
        }
        let mut r = plain_record(m.key, m.value, Vec::new(), m.timestamp);
        r.offset = records.len() as i64;
        records.push(r);
        Ok(())
    })?;
    Ok((records, compression))
}

/// One message of a legacy message set, after decompression of its wrapper.
struct LegacyMessage {
    key: Option<Bytes>,
    value: Option<Bytes>,
    timestamp: i64,
    compression: Compression,
}

fn legacy_messages(
    mut set: &[u8],
    max_decompressed: usize,
    depth: u8,
    each: &mut dyn FnMut(LegacyMessage) -> Result<(), CodecError>,
) -> Result<(), CodecError> {
    let corrupt = |what: &str| CodecError::Decode(format!("legacy message set: {what}"));
    // a partial message at the end of a set is allowed (the old fetch-size truncation)
    while set.len() >= 12 {
        let size = i32::from_be_bytes(set[8..12].try_into().expect("4 bytes"));
        if size < 14 {
            return Err(corrupt("message shorter than its header"));
        }
        let Some(message) = set.get(12..12 + size as usize) else {
            break;
        };
        set = &set[12 + size as usize..];
        let crc = u32::from_be_bytes(message[0..4].try_into().expect("4 bytes"));
        if crc32fast::hash(&message[4..]) != crc {
            return Err(corrupt("CRC mismatch"));
        }
        let magic = message[4] as i8;
        let attributes = message[5];
        let (timestamp, mut rest) = match magic {
            0 => (-1, &message[6..]),
            1 if message.len() >= 14 => (
                i64::from_be_bytes(message[6..14].try_into().expect("8 bytes")),
                &message[14..],
            ),
            _ => return Err(corrupt("unsupported magic")),
        };
        let bytes_field = |rest: &mut &[u8]| -> Result<Option<Bytes>, CodecError> {
            if rest.len() < 4 {
                return Err(corrupt("truncated length"));
            }
            let len = i32::from_be_bytes(rest[..4].try_into().expect("4 bytes"));
            *rest = &rest[4..];
            if len < 0 {
                return Ok(None);
            }
            let len = len as usize;
            if rest.len() < len {
                return Err(corrupt("truncated bytes"));
            }
            let out = Bytes::copy_from_slice(&rest[..len]);
            *rest = &rest[len..];
            Ok(Some(out))
        };
        let key = bytes_field(&mut rest)?;
        let value = bytes_field(&mut rest)?;
        let compression = compression_from_attributes(i16::from(attributes & 0x07))?;
        if compression == Compression::None {
            each(LegacyMessage {
                key,
                value,
                timestamp,
                compression,
            })?;
            continue;
        }
        if depth > 0 {
            return Err(corrupt("a compressed message inside a compressed message"));
        }
        if compression == Compression::Lz4 && magic == 0 {
            return Err(corrupt(
                "lz4 with magic 0 (its frame checksum is not standard)",
            ));
        }
        let inner = bounded::decompress(
            value.as_deref().unwrap_or(&[]),
            compression,
            max_decompressed,
        )?;
        legacy_messages(
            &inner,
            max_decompressed,
            depth + 1,
            &mut |m: LegacyMessage| {
                each(LegacyMessage {
                    compression,
                    // a magic 1 wrapper with LogAppendTime stamps its inner messages
                    timestamp: if attributes & 0x08 != 0 {
                        timestamp
                    } else {
                        m.timestamp
                    },
                    ..m
                })
            },
        )?;
    }
    Ok(())
}

mod bounded {
    //! Compression and bounded decompression, with Kafka's framing: gzip, snappy in xerial
    //! framing (raw snappy read too, as the Java client does), lz4 frames with independent
    //! blocks, zstd.

    use std::io::{Read, Write};

    use bytes::{Bytes, BytesMut};

    use super::{CodecError, Compression, Levels};

    const XERIAL_MAGIC: [u8; 8] = [0x82, b'S', b'N', b'A', b'P', b'P', b'Y', 0];
    const XERIAL_BLOCK: usize = 32 * 1024;

    fn read_bounded(mut reader: impl Read, limit: usize) -> Result<Bytes, CodecError> {
        let mut out = Vec::new();
        (&mut reader)
            .take(limit as u64 + 1)
            .read_to_end(&mut out)
            .map_err(|e| CodecError::Decode(e.to_string()))?;
        if out.len() > limit {
            return Err(CodecError::TooLarge { limit });
        }
        Ok(Bytes::from(out))
    }

    fn snappy_len(block: &[u8]) -> Result<usize, CodecError> {
        snap::raw::decompress_len(block).map_err(|e| CodecError::Decode(e.to_string()))
    }

    pub fn decompress(
        input: &[u8],
        compression: Compression,
        limit: usize,
    ) -> Result<Bytes, CodecError> {
        let decode_err = |e: std::io::Error| CodecError::Decode(e.to_string());
        match compression {
            Compression::None => {
                if input.len() > limit {
                    return Err(CodecError::TooLarge { limit });
                }
                Ok(Bytes::copy_from_slice(input))
            }
            Compression::Gzip => read_bounded(flate2::read::GzDecoder::new(input), limit),
            Compression::Zstd => read_bounded(
                zstd::stream::read::Decoder::new(input).map_err(decode_err)?,
                limit,
            ),
            Compression::Lz4 => read_bounded(lz4::Decoder::new(input).map_err(decode_err)?, limit),
            Compression::Snappy => {
                let mut decoder = snap::raw::Decoder::new();
                if input.len() < 16 || input[..8] != XERIAL_MAGIC {
                    let length = snappy_len(input)?;
                    if length > limit {
                        return Err(CodecError::TooLarge { limit });
                    }
                    return decoder
                        .decompress_vec(input)
                        .map(Bytes::from)
                        .map_err(|e| CodecError::Decode(e.to_string()));
                }
                // header: magic, version, compatible version; then (length, block) pairs
                let mut rest = &input[16..];
                let mut blocks = Vec::new();
                let mut total = 0usize;
                while !rest.is_empty() {
                    if rest.len() < 4 {
                        return Err(CodecError::Decode("truncated snappy block length".into()));
                    }
                    let length =
                        u32::from_be_bytes(rest[..4].try_into().expect("4 bytes")) as usize;
                    if rest.len() < 4 + length {
                        return Err(CodecError::Decode("truncated snappy block".into()));
                    }
                    let block = &rest[4..4 + length];
                    total = total.saturating_add(snappy_len(block)?);
                    if total > limit {
                        return Err(CodecError::TooLarge { limit });
                    }
                    blocks.push(block);
                    rest = &rest[4 + length..];
                }
                let mut out = Vec::with_capacity(total);
                for block in blocks {
                    out.extend(
                        decoder
                            .decompress_vec(block)
                            .map_err(|e| CodecError::Decode(e.to_string()))?,
                    );
                }
                Ok(Bytes::from(out))
            }
        }
    }

    pub fn compress(
        raw: &[u8],
        out: &mut BytesMut,
        compression: Compression,
        levels: Levels,
    ) -> anyhow::Result<()> {
        use bytes::BufMut;
        match compression {
            Compression::None => out.extend_from_slice(raw),
            Compression::Gzip => {
                let level = flate2::Compression::new(levels.gzip.unwrap_or(6).min(9));
                let mut encoder = flate2::write::GzEncoder::new(out.writer(), level);
                encoder.write_all(raw)?;
                encoder.finish()?;
            }
            Compression::Zstd => {
                let compressed = zstd::bulk::compress(raw, levels.zstd.unwrap_or(3))?;
                out.extend_from_slice(&compressed);
            }
            Compression::Lz4 => {
                let mut encoder = lz4::EncoderBuilder::new()
                    .level(levels.lz4.unwrap_or(9))
                    .block_mode(lz4::BlockMode::Independent)
                    .build(out.writer())?;
                encoder.write_all(raw)?;
                let (_, result) = encoder.finish();
                result?;
            }
            Compression::Snappy => {
                // xerial framing, as the Java client writes it
                out.extend_from_slice(&XERIAL_MAGIC);
                out.extend_from_slice(&1i32.to_be_bytes());
                out.extend_from_slice(&1i32.to_be_bytes());
                let mut encoder = snap::raw::Encoder::new();
                for chunk in raw.chunks(XERIAL_BLOCK) {
                    let block = encoder.compress_vec(chunk)?;
                    out.extend_from_slice(&(block.len() as u32).to_be_bytes());
                    out.extend_from_slice(&block);
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A legacy message (magic 0 or 1) as the old clients wrote it, in a message set entry.
    fn legacy(
        magic: i8,
        attributes: u8,
        timestamp: i64,
        key: Option<&[u8]>,
        value: &[u8],
    ) -> Vec<u8> {
        let mut body = vec![magic as u8, attributes];
        if magic == 1 {
            body.extend_from_slice(&timestamp.to_be_bytes());
        }
        match key {
            Some(k) => {
                body.extend_from_slice(&(k.len() as i32).to_be_bytes());
                body.extend_from_slice(k);
            }
            None => body.extend_from_slice(&(-1i32).to_be_bytes()),
        }
        body.extend_from_slice(&(value.len() as i32).to_be_bytes());
        body.extend_from_slice(value);
        let mut message = crc32fast::hash(&body).to_be_bytes().to_vec();
        message.extend(body);
        let mut entry = 0i64.to_be_bytes().to_vec();
        entry.extend_from_slice(&(message.len() as i32).to_be_bytes());
        entry.extend(message);
        entry
    }

    #[test]
    fn legacy_message_sets_up_convert() {
        let mut set = legacy(1, 0, 1000, Some(b"k"), b"v1");
        set.extend(legacy(1, 0, 1001, None, b"v2"));
        assert_eq!(magic(&set), Some(1));
        let (records, compression) = decode_legacy(&set, 1 << 20).unwrap();
        assert_eq!(compression, Compression::None);
        assert_eq!(records.len(), 2);
        assert_eq!(records[0].key.as_deref(), Some(&b"k"[..]));
        assert_eq!(records[1].value.as_deref(), Some(&b"v2"[..]));
        assert_eq!((records[0].timestamp, records[1].offset), (1000, 1));
        // magic 0: no timestamp
        let (records, _) = decode_legacy(&legacy(0, 0, 0, None, b"old"), 1 << 20).unwrap();
        assert_eq!(records[0].timestamp, -1);
        // a gzip wrapper around two messages
        let mut inner = legacy(1, 0, 5, None, b"a");
        inner.extend(legacy(1, 0, 6, None, b"b"));
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        std::io::Write::write_all(&mut gz, &inner).unwrap();
        let wrapped = legacy(1, 1, 6, None, &gz.finish().unwrap());
        let (records, compression) = decode_legacy(&wrapped, 1 << 20).unwrap();
        assert_eq!(compression, Compression::Gzip);
        let values: Vec<_> = records.iter().map(|r| r.value.clone().unwrap()).collect();
        assert_eq!(
            values,
            vec![Bytes::from_static(b"a"), Bytes::from_static(b"b")]
        );
        // a bad CRC is refused, and so is a bomb
        let mut bad = legacy(1, 0, 0, None, b"x");
        *bad.last_mut().unwrap() ^= 1;
        assert!(decode_legacy(&bad, 1 << 20).is_err());
        assert!(matches!(
            decode_legacy(&wrapped, 4),
            Err(CodecError::TooLarge { .. })
        ));
        // the encoded batch is a record batch
        let batch = encode(&records, compression, Levels::default(), None).unwrap();
        assert_eq!(magic(&batch), Some(2));
    }

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
    fn decompression_is_bounded_in_every_codec() {
        // one record of 4 MiB of zeros compresses to a few KiB: a bomb for a 1 MiB bound
        let mut bomb = record(0, Some("k"));
        bomb.value = Some(Bytes::from(vec![0u8; 4 << 20]));
        for c in [
            Compression::Gzip,
            Compression::Snappy,
            Compression::Lz4,
            Compression::Zstd,
        ] {
            let batch = encode(std::slice::from_ref(&bomb), c, Levels::default(), None).unwrap();
            assert!(batch.len() < 1 << 20, "{c:?} batch {}", batch.len());
            assert!(
                matches!(decode(&batch, 1 << 20), Err(CodecError::TooLarge { .. })),
                "{c:?}"
            );
            assert_eq!(
                decode(&batch, 8 << 20).unwrap()[0]
                    .value
                    .as_ref()
                    .unwrap()
                    .len(),
                4 << 20,
                "{c:?}"
            );
        }
        // a raw snappy header claiming 4 GiB is refused before any allocation
        let mut lying = encode(
            &[record(0, Some("k"))],
            Compression::Snappy,
            Levels::default(),
            None,
        )
        .unwrap();
        let records_start = 61;
        lying.truncate(records_start);
        lying.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 0x0f, 0, 0]);
        let length = (lying.len() - 12) as i32;
        lying[8..12].copy_from_slice(&length.to_be_bytes());
        let crc = crc32c::crc32c(&lying[21..]);
        lying[17..21].copy_from_slice(&crc.to_be_bytes());
        assert!(matches!(
            decode(&lying, 1 << 20),
            Err(CodecError::TooLarge { .. })
        ));
    }

    #[test]
    fn compression_levels_change_the_output() {
        let mut r = record(0, Some("k"));
        r.value = Some(Bytes::from(
            (0..200_000u32)
                .map(|i| (i % 251) as u8 ^ (i / 7) as u8)
                .collect::<Vec<u8>>(),
        ));
        for (c, low, high) in [
            (
                Compression::Gzip,
                Levels {
                    gzip: Some(1),
                    ..Levels::default()
                },
                Levels {
                    gzip: Some(9),
                    ..Levels::default()
                },
            ),
            (
                Compression::Zstd,
                Levels {
                    zstd: Some(1),
                    ..Levels::default()
                },
                Levels {
                    zstd: Some(19),
                    ..Levels::default()
                },
            ),
        ] {
            let fast = encode(std::slice::from_ref(&r), c, low, None).unwrap();
            let small = encode(std::slice::from_ref(&r), c, high, None).unwrap();
            assert!(
                small.len() < fast.len(),
                "{c:?}: {} vs {}",
                small.len(),
                fast.len()
            );
            assert_eq!(decode(&small, 1 << 20).unwrap()[0].value, r.value);
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
            let batch = encode(&records, c, Levels::default(), None).unwrap();
            assert_eq!(
                compression_from_attributes(i16::from_be_bytes([batch[21], batch[22]])).unwrap(),
                c
            );
            let back = decode(&batch, 1 << 20).unwrap();
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
        let batch = encode(&plain, Compression::None, Levels::default(), None).unwrap();
        assert_eq!(i32::from_be_bytes(batch[53..57].try_into().unwrap()), -1);
        assert_eq!(decode(&batch, 1 << 20).unwrap().len(), 2);
        // many plain records (sequence -1 each, as producers build them) stay one batch
        let many: Vec<Record> = (0..50)
            .map(|o| Record {
                offset: o,
                ..plain_record(None, Some(Bytes::from_static(b"x")), vec![], 7)
            })
            .collect();
        let batch = encode(&many, Compression::Lz4, Levels::default(), None).unwrap();
        assert_eq!(
            i32::from_be_bytes(batch[57..61].try_into().unwrap()),
            50,
            "one batch of 50 records"
        );
        assert_eq!(i32::from_be_bytes(batch[53..57].try_into().unwrap()), -1);
        let batch = encode(
            &[record(0, Some("k"))],
            Compression::Lz4,
            Levels::default(),
            Some(5555),
        )
        .unwrap();
        assert_eq!(decode(&batch, 1 << 20).unwrap()[0].timestamp, 5555);
        assert_eq!(
            crc32c::crc32c(&batch[21..]),
            u32::from_be_bytes(batch[17..21].try_into().unwrap())
        );
    }
}
