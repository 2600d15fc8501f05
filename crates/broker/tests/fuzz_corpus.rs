//! Replays the committed fuzz corpora (fuzz/corpus/*) through the fuzzed functions, so every
//! input the fuzzer found interesting stays a regression test. With FERROLOG_WRITE_SEEDS=1 it
//! first (re)writes seed inputs: one valid frame per supported API at its lowest and highest
//! version, and one batch per codec.

use std::fs;
use std::path::PathBuf;

use bytes::{BufMut, Bytes, BytesMut};
use ferrolog_broker::handlers::SUPPORTED;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Encodable, StrBytes};
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};

fn corpus(target: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/corpus")
        .join(target)
}

fn batch(compression: Compression) -> Bytes {
    let records: Vec<Record> = (0..3)
        .map(|i| Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: 0,
            producer_id: 7,
            producer_epoch: 0,
            timestamp_type: TimestampType::Creation,
            offset: i,
            sequence: i as i32,
            timestamp: 1_700_000_000_000 + i,
            key: Some(Bytes::from(format!("k{i}"))),
            value: Some(Bytes::from(format!("value-{i}"))),
            headers: Default::default(),
        })
        .collect();
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut buf,
        &records,
        &RecordEncodeOptions {
            version: 2,
            compression,
        },
    )
    .unwrap();
    buf.freeze()
}

fn frame<R: Encodable>(key: ApiKey, version: i16, request: &R) -> Vec<u8> {
    let header = RequestHeader::default()
        .with_request_api_key(key as i16)
        .with_request_api_version(version)
        .with_correlation_id(1)
        .with_client_id(Some(StrBytes::from_static_str("seed")));
    let mut buf = BytesMut::new();
    header
        .encode(&mut buf, key.request_header_version(version))
        .unwrap();
    request.encode(&mut buf, version).unwrap();
    buf.to_vec()
}

/// A Produce v0-2 frame (the protocol crate encodes Produce from v3 on): one partition with a
/// magic 1 message.
fn legacy_produce_frame(version: i16) -> Vec<u8> {
    use bytes::BufMut;
    let header = RequestHeader::default()
        .with_request_api_key(ApiKey::Produce as i16)
        .with_request_api_version(version)
        .with_correlation_id(1)
        .with_client_id(Some(StrBytes::from_static_str("seed")));
    let mut buf = BytesMut::new();
    header.encode(&mut buf, 1).unwrap();
    let mut message = vec![1u8, 0];
    message.extend_from_slice(&1_700_000_000_000i64.to_be_bytes());
    message.extend_from_slice(&(-1i32).to_be_bytes());
    message.extend_from_slice(&1i32.to_be_bytes());
    message.push(b'v');
    let crc = crc32fast::hash(&message);
    buf.put_i16(1);
    buf.put_i32(1000);
    buf.put_i32(1);
    buf.put_i16(10);
    buf.put_slice(b"seed-topic");
    buf.put_i32(1);
    buf.put_i32(0);
    buf.put_i32((12 + 4 + message.len()) as i32);
    buf.put_i64(0);
    buf.put_i32((4 + message.len()) as i32);
    buf.put_u32(crc);
    buf.put_slice(&message);
    buf.to_vec()
}

fn seed_frames() -> Vec<(String, Vec<u8>)> {
    let topic = TopicName(StrBytes::from_static_str("seed-topic"));
    let produce = ProduceRequest::default()
        .with_acks(1)
        .with_timeout_ms(1000)
        .with_topic_data(vec![produce_request::TopicProduceData::default()
            .with_name(topic.clone())
            .with_partition_data(vec![
                produce_request::PartitionProduceData::default()
                    .with_records(Some(batch(Compression::None))),
            ])]);
    let fetch = FetchRequest::default()
        .with_max_bytes(1 << 20)
        .with_topics(vec![fetch_request::FetchTopic::default()
            .with_topic(topic.clone())
            .with_partitions(vec![
                fetch_request::FetchPartition::default().with_partition_max_bytes(1 << 20)
            ])]);
    let metadata = MetadataRequest::default().with_topics(Some(vec![
        metadata_request::MetadataRequestTopic::default().with_name(Some(topic.clone())),
    ]));
    let create = CreateTopicsRequest::default().with_topics(vec![
        create_topics_request::CreatableTopic::default()
            .with_name(topic.clone())
            .with_num_partitions(3)
            .with_replication_factor(1),
    ]);
    let mut out = Vec::new();
    for (key, range) in SUPPORTED {
        for version in [range.min, range.max] {
            let bytes = match key {
                ApiKey::Produce if version < 3 => legacy_produce_frame(version),
                ApiKey::Produce => frame(*key, version, &produce),
                ApiKey::Fetch if version < 13 => frame(*key, version, &fetch),
                ApiKey::Metadata => frame(*key, version, &metadata),
                ApiKey::CreateTopics => frame(*key, version, &create),
                ApiKey::ApiVersions => frame(*key, version, &ApiVersionsRequest::default()),
                ApiKey::ListOffsets => frame(*key, version, &ListOffsetsRequest::default()),
                ApiKey::DescribeCluster => frame(*key, version, &DescribeClusterRequest::default()),
                ApiKey::InitProducerId => frame(*key, version, &InitProducerIdRequest::default()),
                ApiKey::DeleteTopics => frame(*key, version, &DeleteTopicsRequest::default()),
                ApiKey::CreatePartitions => {
                    frame(*key, version, &CreatePartitionsRequest::default())
                }
                ApiKey::DescribeConfigs => frame(*key, version, &DescribeConfigsRequest::default()),
                _ => continue,
            };
            out.push((format!("seed-{key:?}-v{version}"), bytes));
        }
    }
    out
}

fn write_seeds() {
    let frames = corpus("request_frame");
    fs::create_dir_all(&frames).unwrap();
    for (name, bytes) in seed_frames() {
        fs::write(frames.join(name), bytes).unwrap();
    }
    let batches = corpus("record_batch");
    fs::create_dir_all(&batches).unwrap();
    let mut all = BytesMut::new();
    for c in [
        Compression::None,
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ] {
        let b = batch(c);
        all.put_slice(&b);
        fs::write(batches.join(format!("seed-{c:?}")), &b).unwrap();
    }
    fs::write(batches.join("seed-all-codecs"), &all).unwrap();
}

fn replay(target: &str, mut f: impl FnMut(&[u8])) -> usize {
    let dir = corpus(target);
    let mut n = 0;
    for entry in fs::read_dir(&dir).unwrap_or_else(|e| panic!("corpus {}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        if path.is_file() {
            f(&fs::read(&path).unwrap());
            n += 1;
        }
    }
    n
}

#[test]
fn request_frame_corpus_decodes_without_panic() {
    if std::env::var("FERROLOG_WRITE_SEEDS").is_ok() {
        write_seeds();
    }
    let mut decoded = 0;
    let n = replay("request_frame", |data| {
        if ferrolog_broker::server::parse_frame(Bytes::copy_from_slice(data)).is_ok() {
            decoded += 1;
        }
    });
    assert!(n >= 20, "corpus has only {n} inputs");
    // the seeds are valid requests: they must decode
    assert!(
        decoded >= seed_frames().len(),
        "only {decoded} of {n} inputs decoded"
    );
}

#[test]
fn record_batch_corpus_parses_without_panic() {
    let mut valid = 0;
    let n = replay("record_batch", |data| {
        valid += ferrolog_storage::batch::fuzz_batches(data)
    });
    assert!(n >= 6, "corpus has only {n} inputs");
    assert!(valid >= 10, "seed batches must validate, {valid} did");
}

#[test]
fn sasl_token_corpus_runs_without_panic() {
    let n = replay("sasl_token", ferrolog_broker::security::sasl::fuzz_tokens);
    assert!(n >= 11, "corpus has only {n} inputs");
}
