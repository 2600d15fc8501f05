//! RecordBatch v2 (magic 2) header view.
//!
//! Layout of the 61-byte header (big-endian), as in Kafka's `DefaultRecordBatch`:
//!
//! ```text
//! offset  size  field
//!      0     8  base_offset
//!      8     4  batch_length          (bytes after this field: total = 12 + batch_length)
//!     12     4  partition_leader_epoch
//!     16     1  magic                 (must be 2)
//!     17     4  crc                   (CRC-32C of bytes 21..end)
//!     21     2  attributes            (bits 0-2 compression, 3 timestamp type,
//!                                      4 transactional, 5 control, 6 delete horizon)
//!     23     4  last_offset_delta
//!     27     8  base_timestamp
//!     35     8  max_timestamp
//!     43     8  producer_id
//!     51     2  producer_epoch
//!     53     4  base_sequence
//!     57     4  records_count
//! ```
//!
//! Base offset and partition leader epoch lie outside the CRC, so a broker assigns offsets by
//! rewriting them in place without touching the producer's bytes otherwise.

use crate::error::BatchError;

pub const BASE_OFFSET: usize = 0;
pub const LENGTH: usize = 8;
pub const PARTITION_LEADER_EPOCH: usize = 12;
pub const MAGIC: usize = 16;
pub const CRC: usize = 17;
pub const ATTRIBUTES: usize = 21;
pub const LAST_OFFSET_DELTA: usize = 23;
pub const BASE_TIMESTAMP: usize = 27;
pub const MAX_TIMESTAMP: usize = 35;
pub const PRODUCER_ID: usize = 43;
pub const PRODUCER_EPOCH: usize = 51;
pub const BASE_SEQUENCE: usize = 53;
pub const RECORDS_COUNT: usize = 57;
/// Size of the batch header; also the smallest legal batch.
pub const HEADER_SIZE: usize = 61;
/// Bytes before `batch_length` is known: base offset + length.
pub const LOG_OVERHEAD: usize = 12;

pub const ATTR_COMPRESSION_MASK: i16 = 0x07;
pub const ATTR_TIMESTAMP_TYPE: i16 = 0x08;
pub const ATTR_TRANSACTIONAL: i16 = 0x10;
pub const ATTR_CONTROL: i16 = 0x20;

fn be_i64(b: &[u8], at: usize) -> i64 {
    i64::from_be_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}
fn be_i32(b: &[u8], at: usize) -> i32 {
    i32::from_be_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}
fn be_i16(b: &[u8], at: usize) -> i16 {
    i16::from_be_bytes(b[at..at + 2].try_into().expect("2 bytes"))
}

/// Header fields of one batch, copied out of its bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchHeader {
    pub base_offset: i64,
    pub batch_length: i32,
    pub partition_leader_epoch: i32,
    pub magic: i8,
    pub crc: u32,
    pub attributes: i16,
    pub last_offset_delta: i32,
    pub base_timestamp: i64,
    pub max_timestamp: i64,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
    pub records_count: i32,
}

impl BatchHeader {
    /// Reads the header from the first 61 bytes of `bytes`. Checks only that there are enough.
    pub fn parse(bytes: &[u8]) -> Result<BatchHeader, BatchError> {
        if bytes.len() < HEADER_SIZE {
            return Err(BatchError::Corrupt("batch shorter than its header"));
        }
        Ok(BatchHeader {
            base_offset: be_i64(bytes, BASE_OFFSET),
            batch_length: be_i32(bytes, LENGTH),
            partition_leader_epoch: be_i32(bytes, PARTITION_LEADER_EPOCH),
            magic: bytes[MAGIC] as i8,
            crc: be_i32(bytes, CRC) as u32,
            attributes: be_i16(bytes, ATTRIBUTES),
            last_offset_delta: be_i32(bytes, LAST_OFFSET_DELTA),
            base_timestamp: be_i64(bytes, BASE_TIMESTAMP),
            max_timestamp: be_i64(bytes, MAX_TIMESTAMP),
            producer_id: be_i64(bytes, PRODUCER_ID),
            producer_epoch: be_i16(bytes, PRODUCER_EPOCH),
            base_sequence: be_i32(bytes, BASE_SEQUENCE),
            records_count: be_i32(bytes, RECORDS_COUNT),
        })
    }

    /// Total size of the batch in bytes, including the 12-byte log overhead.
    pub fn size(&self) -> usize {
        LOG_OVERHEAD + self.batch_length.max(0) as usize
    }
    pub fn last_offset(&self) -> i64 {
        self.base_offset + i64::from(self.last_offset_delta)
    }
    pub fn next_offset(&self) -> i64 {
        self.last_offset() + 1
    }
    pub fn compression(&self) -> i16 {
        self.attributes & ATTR_COMPRESSION_MASK
    }
    pub fn is_log_append_time(&self) -> bool {
        self.attributes & ATTR_TIMESTAMP_TYPE != 0
    }
    pub fn is_transactional(&self) -> bool {
        self.attributes & ATTR_TRANSACTIONAL != 0
    }
    pub fn is_control(&self) -> bool {
        self.attributes & ATTR_CONTROL != 0
    }
    pub fn has_producer_id(&self) -> bool {
        self.producer_id >= 0
    }
    /// The sequence of the last record, wrapping at i32::MAX as Kafka does.
    pub fn last_sequence(&self) -> i32 {
        if self.base_sequence < 0 {
            return -1;
        }
        let last = i64::from(self.base_sequence) + i64::from(self.last_offset_delta);
        (last % (i64::from(i32::MAX) + 1)) as i32
    }
}

/// CRC-32C over attributes..end, the value stored at offset 17.
pub fn compute_crc(batch: &[u8]) -> u32 {
    crc32c::crc32c(&batch[ATTRIBUTES..])
}

/// Validates one complete batch as it arrives from a producer or is read back during recovery:
/// magic, length, CRC and offset-delta consistency. `batch` must be exactly one batch.
pub fn validate(batch: &[u8]) -> Result<BatchHeader, BatchError> {
    if batch.len() < MAGIC + 1 {
        return Err(BatchError::Corrupt("batch shorter than its header"));
    }
    if batch[MAGIC] != 2 {
        return Err(BatchError::UnsupportedMagic(batch[MAGIC] as i8));
    }
    let header = BatchHeader::parse(batch)?;
    if header.batch_length < (HEADER_SIZE - LOG_OVERHEAD) as i32 || header.size() != batch.len() {
        return Err(BatchError::Corrupt("batch length does not match its bytes"));
    }
    if compute_crc(batch) != header.crc {
        return Err(BatchError::CrcMismatch);
    }
    if header.records_count < 0 || header.last_offset_delta < 0 {
        return Err(BatchError::Corrupt("negative record count or offset delta"));
    }
    if !header.is_control()
        && header.records_count > 0
        && header.records_count - 1 != header.last_offset_delta
        && header.compression() == 0
    {
        return Err(BatchError::Corrupt(
            "record count does not match last offset delta",
        ));
    }
    Ok(header)
}

/// Splits a buffer of concatenated batches. Yields `Err` once for a truncated or malformed tail and
/// then stops. The buffer may end in a partial batch (as a fetch response may); use
/// [`BatchIter::complete`] to learn whether it did.
pub struct BatchIter<'a> {
    bytes: &'a [u8],
    position: usize,
    failed: bool,
}

impl<'a> BatchIter<'a> {
    pub fn new(bytes: &'a [u8]) -> BatchIter<'a> {
        BatchIter {
            bytes,
            position: 0,
            failed: false,
        }
    }
    /// Bytes consumed so far (the start of the next batch).
    pub fn position(&self) -> usize {
        self.position
    }
}

impl<'a> Iterator for BatchIter<'a> {
    /// (position within the buffer, the batch's bytes)
    type Item = Result<(usize, &'a [u8]), BatchError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.position >= self.bytes.len() {
            return None;
        }
        let rest = &self.bytes[self.position..];
        if rest.len() < LOG_OVERHEAD {
            self.failed = true;
            return Some(Err(BatchError::Truncated));
        }
        let length = be_i32(rest, LENGTH);
        if length < (HEADER_SIZE - LOG_OVERHEAD) as i32 {
            self.failed = true;
            return Some(Err(BatchError::Corrupt("batch length below header size")));
        }
        let size = LOG_OVERHEAD + length as usize;
        if rest.len() < size {
            self.failed = true;
            return Some(Err(BatchError::Truncated));
        }
        let start = self.position;
        self.position += size;
        Some(Ok((start, &rest[..size])))
    }
}

/// In-place rewrites of the fields outside the CRC.
pub fn set_base_offset(batch: &mut [u8], base_offset: i64) {
    batch[BASE_OFFSET..BASE_OFFSET + 8].copy_from_slice(&base_offset.to_be_bytes());
}
pub fn set_partition_leader_epoch(batch: &mut [u8], epoch: i32) {
    batch[PARTITION_LEADER_EPOCH..PARTITION_LEADER_EPOCH + 4].copy_from_slice(&epoch.to_be_bytes());
}

/// Marks the batch as LogAppendTime with `now` as its max timestamp and recomputes the CRC, as
/// Kafka does for topics with `message.timestamp.type=LogAppendTime`.
pub fn set_log_append_time(batch: &mut [u8], now_ms: i64) {
    let attributes = be_i16(batch, ATTRIBUTES) | ATTR_TIMESTAMP_TYPE;
    batch[ATTRIBUTES..ATTRIBUTES + 2].copy_from_slice(&attributes.to_be_bytes());
    batch[MAX_TIMESTAMP..MAX_TIMESTAMP + 8].copy_from_slice(&now_ms.to_be_bytes());
    let crc = compute_crc(batch);
    batch[CRC..CRC + 4].copy_from_slice(&crc.to_be_bytes());
}

/// What the `record_batch` fuzz target (and its corpus replay test) drives: split arbitrary
/// bytes into batches, parse and validate each header, and rewrite offsets in a copy. Must never
/// panic.
pub fn fuzz_batches(data: &[u8]) -> usize {
    let mut valid = 0;
    for (_, bytes) in BatchIter::new(data).flatten() {
        if let Ok(header) = validate(bytes) {
            let mut copy = bytes.to_vec();
            set_base_offset(&mut copy, header.base_offset.wrapping_add(1));
            set_partition_leader_epoch(&mut copy, 1);
            assert!(
                validate(&copy).is_ok(),
                "offset rewrite must keep a batch valid"
            );
            let _ = header.last_sequence();
            valid += 1;
        }
    }
    valid
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Builds a valid uncompressed batch with `count` empty-ish records (record bodies are not
    /// parsed by the storage layer, only counted by the header).
    pub fn sample_batch(base_offset: i64, count: i32, timestamp: i64, payload: usize) -> Vec<u8> {
        sample_batch_with_producer(base_offset, count, timestamp, payload, -1, -1, -1)
    }

    pub fn sample_batch_with_producer(
        base_offset: i64,
        count: i32,
        timestamp: i64,
        payload: usize,
        producer_id: i64,
        producer_epoch: i16,
        base_sequence: i32,
    ) -> Vec<u8> {
        let size = HEADER_SIZE + payload;
        let mut b = vec![0u8; size];
        b[BASE_OFFSET..8].copy_from_slice(&base_offset.to_be_bytes());
        b[LENGTH..LENGTH + 4].copy_from_slice(&((size - LOG_OVERHEAD) as i32).to_be_bytes());
        b[PARTITION_LEADER_EPOCH..PARTITION_LEADER_EPOCH + 4]
            .copy_from_slice(&(-1i32).to_be_bytes());
        b[MAGIC] = 2;
        b[LAST_OFFSET_DELTA..LAST_OFFSET_DELTA + 4].copy_from_slice(&(count - 1).to_be_bytes());
        b[BASE_TIMESTAMP..BASE_TIMESTAMP + 8].copy_from_slice(&timestamp.to_be_bytes());
        b[MAX_TIMESTAMP..MAX_TIMESTAMP + 8].copy_from_slice(&timestamp.to_be_bytes());
        b[PRODUCER_ID..PRODUCER_ID + 8].copy_from_slice(&producer_id.to_be_bytes());
        b[PRODUCER_EPOCH..PRODUCER_EPOCH + 2].copy_from_slice(&producer_epoch.to_be_bytes());
        b[BASE_SEQUENCE..BASE_SEQUENCE + 4].copy_from_slice(&base_sequence.to_be_bytes());
        b[RECORDS_COUNT..RECORDS_COUNT + 4].copy_from_slice(&count.to_be_bytes());
        for (i, byte) in b[HEADER_SIZE..].iter_mut().enumerate() {
            *byte = (i % 251) as u8;
        }
        let crc = compute_crc(&b);
        b[CRC..CRC + 4].copy_from_slice(&crc.to_be_bytes());
        b
    }

    #[test]
    fn validate_accepts_good_and_rejects_bad() {
        let b = sample_batch(0, 3, 1000, 10);
        let h = validate(&b).unwrap();
        assert_eq!(h.records_count, 3);
        assert_eq!(h.last_offset_delta, 2);
        let mut bad = b.clone();
        bad[HEADER_SIZE + 1] ^= 0xff;
        assert!(matches!(validate(&bad), Err(BatchError::CrcMismatch)));
        let mut old = b.clone();
        old[MAGIC] = 1;
        assert!(matches!(
            validate(&old),
            Err(BatchError::UnsupportedMagic(1))
        ));
        assert!(validate(&b[..b.len() - 1]).is_err());
    }

    #[test]
    fn offsets_rewrite_keeps_crc_valid() {
        let mut b = sample_batch(0, 3, 1000, 10);
        set_base_offset(&mut b, 42);
        set_partition_leader_epoch(&mut b, 7);
        let h = validate(&b).unwrap();
        assert_eq!(h.base_offset, 42);
        assert_eq!(h.last_offset(), 44);
        assert_eq!(h.partition_leader_epoch, 7);
        set_log_append_time(&mut b, 5555);
        let h = validate(&b).unwrap();
        assert!(h.is_log_append_time());
        assert_eq!(h.max_timestamp, 5555);
    }

    #[test]
    fn iter_reports_truncated_tail() {
        let mut buf = sample_batch(0, 1, 1, 5);
        buf.extend(sample_batch(1, 1, 1, 5));
        let full = BatchIter::new(&buf).count();
        assert_eq!(full, 2);
        let cut = &buf[..buf.len() - 3];
        let items: Vec<_> = BatchIter::new(cut).collect();
        assert_eq!(items.len(), 2);
        assert!(items[0].is_ok());
        assert!(matches!(items[1], Err(BatchError::Truncated)));
    }
}
