//! Produce v0-2, which Kafka 4.1 still answers (old producers, and clients told to assume an
//! old broker): the request and response bodies, which the protocol crate does not define
//! below v3, and the up-conversion of their legacy message sets (magic 0 and 1) to record
//! batches, as Kafka converts them on append.

use anyhow::{bail, Result};
use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{ProduceRequest, ProduceResponse};

use super::topic_name;

/// The newest Produce version of the legacy layout (v3 added the transactional id).
pub const LAST_LEGACY_VERSION: i16 = 2;

fn string(buf: &mut Bytes) -> Result<String> {
    if buf.remaining() < 2 {
        bail!("truncated string length");
    }
    let len = buf.get_i16();
    if len < 0 || buf.remaining() < len as usize {
        bail!("bad string length {len}");
    }
    Ok(String::from_utf8(buf.split_to(len as usize).to_vec())?)
}

fn count(buf: &mut Bytes, min_entry: usize) -> Result<usize> {
    if buf.remaining() < 4 {
        bail!("truncated array length");
    }
    let n = buf.get_i32();
    // every entry takes at least `min_entry` bytes: a hostile count cannot allocate more than
    // the frame holds
    if n < 0 || (n as usize).saturating_mul(min_entry) > buf.remaining() {
        bail!("bad array length {n}");
    }
    Ok(n as usize)
}

/// Decodes a Produce v0-2 body (acks, timeout, topics of partitions with message sets).
pub fn decode_request(body: &mut Bytes) -> Result<ProduceRequest> {
    if body.remaining() < 6 {
        bail!("truncated produce request");
    }
    let mut request = ProduceRequest::default()
        .with_acks(body.get_i16())
        .with_timeout_ms(body.get_i32());
    for _ in 0..count(body, 6)? {
        let mut topic = TopicProduceData::default().with_name(topic_name(&string(body)?));
        for _ in 0..count(body, 8)? {
            if body.remaining() < 8 {
                bail!("truncated partition data");
            }
            let index = body.get_i32();
            let len = body.get_i32();
            let records = if len < 0 {
                None
            } else if body.remaining() < len as usize {
                bail!("truncated message set");
            } else {
                Some(body.split_to(len as usize))
            };
            topic.partition_data.push(
                PartitionProduceData::default()
                    .with_index(index)
                    .with_records(records),
            );
        }
        request.topic_data.push(topic);
    }
    Ok(request)
}

/// Replaces each partition's legacy message set by one record batch holding its messages
/// (same compression), as Kafka up-converts them; a record set that already is a batch, or
/// that cannot be read (corrupt, or magic 0 with lz4), is left for the append to accept or
/// refuse.
pub fn up_convert(request: &mut ProduceRequest, max_decompressed: usize) {
    for topic in &mut request.topic_data {
        for p in &mut topic.partition_data {
            let Some(records) = p.records.as_ref() else {
                continue;
            };
            if !matches!(ferrolog_records::magic(records), Some(0 | 1)) {
                continue;
            }
            let converted = ferrolog_records::decode_legacy(records, max_decompressed).and_then(
                |(messages, compression)| {
                    ferrolog_records::encode(&messages, compression, Default::default(), None)
                },
            );
            match converted {
                Ok(batch) => p.records = Some(Bytes::from(batch)),
                // left as it is: the append refuses its magic (UNSUPPORTED_FOR_MESSAGE_FORMAT)
                Err(e) => tracing::debug!("produce v0-2: a legacy message set not converted: {e}"),
            }
        }
    }
}

/// Encodes a Produce v0-2 response body (v1 adds the throttle time, v2 the log append time).
pub fn encode_response(response: &ProduceResponse, version: i16, out: &mut BytesMut) {
    out.put_i32(response.responses.len() as i32);
    for topic in &response.responses {
        out.put_i16(topic.name.0.len() as i16);
        out.put_slice(topic.name.0.as_bytes());
        out.put_i32(topic.partition_responses.len() as i32);
        for p in &topic.partition_responses {
            out.put_i32(p.index);
            out.put_i16(p.error_code);
            out.put_i64(p.base_offset);
            if version >= 2 {
                out.put_i64(p.log_append_time_ms);
            }
        }
    }
    if version >= 1 {
        out.put_i32(response.throttle_time_ms);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::produce_response::{
        PartitionProduceResponse, TopicProduceResponse,
    };

    #[test]
    fn a_v2_request_decodes_and_its_response_encodes() {
        let mut body = BytesMut::new();
        body.put_i16(-1);
        body.put_i32(1500);
        body.put_i32(1);
        body.put_i16(1);
        body.put_slice(b"t");
        body.put_i32(1);
        body.put_i32(3);
        body.put_i32(2);
        body.put_slice(b"xy");
        let r = decode_request(&mut body.freeze()).unwrap();
        assert_eq!((r.acks, r.timeout_ms), (-1, 1500));
        assert_eq!(&*r.topic_data[0].name.0, "t");
        let p = &r.topic_data[0].partition_data[0];
        assert_eq!((p.index, p.records.as_deref()), (3, Some(&b"xy"[..])));
        // a hostile count is refused, not allocated
        let mut hostile = BytesMut::new();
        hostile.put_i16(1);
        hostile.put_i32(0);
        hostile.put_i32(i32::MAX);
        assert!(decode_request(&mut hostile.freeze()).is_err());

        let response =
            ProduceResponse::default().with_responses(vec![TopicProduceResponse::default()
                .with_name(topic_name("t"))
                .with_partition_responses(vec![PartitionProduceResponse::default()
                    .with_index(3)
                    .with_base_offset(7)
                    .with_log_append_time_ms(-1)])]);
        let mut v0 = BytesMut::new();
        encode_response(&response, 0, &mut v0);
        assert_eq!(v0.len(), 4 + 2 + 1 + 4 + 4 + 2 + 8);
        let mut v2 = BytesMut::new();
        encode_response(&response, 2, &mut v2);
        assert_eq!(v2.len(), v0.len() + 8 + 4);
    }
}
