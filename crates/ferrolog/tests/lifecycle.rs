//! Log lifecycle through the wire protocol: retention, DeleteRecords, live config changes,
//! DescribeLogDirs, and the dump-log tool.

mod common;

use std::time::{Duration, Instant};

use bytes::Bytes;
use common::{create_topic, rt, Server};
use ferrolog_client::kafka_protocol::messages::*;
use ferrolog_client::kafka_protocol::records::Compression;
use ferrolog_client::{record, str, topic_name, Connection};

async fn create(c: &mut Connection, name: &str, configs: &[(&str, &str)]) {
    assert_eq!(create_topic(c, name, 1, configs).await, 0);
}

async fn produce_n(c: &mut Connection, topic: &str, batches: usize, timestamp: i64) {
    for _ in 0..batches {
        let recs: Vec<_> = (0..5)
            .map(|_| record(None, Some(Bytes::from(vec![b'x'; 100])), vec![], timestamp))
            .collect();
        c.produce(topic, 0, &recs, Compression::None, -1)
            .await
            .unwrap();
    }
}

async fn alter(
    c: &mut Connection,
    topic: &str,
    ops: &[(&str, i8, Option<&str>)],
) -> (i16, Option<String>) {
    alter_resource(c, 2, topic, ops).await
}

/// IncrementalAlterConfigs on one resource (2 topic, 4 broker): (error code, message).
async fn alter_resource(
    c: &mut Connection,
    kind: i8,
    name: &str,
    ops: &[(&str, i8, Option<&str>)],
) -> (i16, Option<String>) {
    let configs = ops
        .iter()
        .map(|(k, op, v)| {
            incremental_alter_configs_request::AlterableConfig::default()
                .with_name(str(k))
                .with_config_operation(*op)
                .with_value(v.map(str))
        })
        .collect();
    let request = IncrementalAlterConfigsRequest::default().with_resources(vec![
        incremental_alter_configs_request::AlterConfigsResource::default()
            .with_resource_type(kind)
            .with_resource_name(str(name))
            .with_configs(configs),
    ]);
    let r = c.send(&request).await.unwrap();
    (
        r.responses[0].error_code,
        r.responses[0].error_message.as_ref().map(|m| m.to_string()),
    )
}

async fn describe(c: &mut Connection, topic: &str, key: &str) -> (String, i8) {
    let request = DescribeConfigsRequest::default().with_resources(vec![
        describe_configs_request::DescribeConfigsResource::default()
            .with_resource_type(2)
            .with_resource_name(str(topic))
            .with_configuration_keys(Some(vec![str(key)])),
    ]);
    let r = c.send(&request).await.unwrap();
    let e = &r.results[0].configs[0];
    (e.value.as_ref().unwrap().to_string(), e.config_source)
}

#[test]
fn retention_by_time_moves_the_earliest_offset() {
    let server = Server::start(&["log.retention.check.interval.ms=100"]);
    rt().block_on(async {
        let mut c = Connection::connect(&server.addr()).await.unwrap();
        create(
            &mut c,
            "old",
            &[("segment.bytes", "1500"), ("file.delete.delay.ms", "100")],
        )
        .await;
        // an hour old: inside the default 7-day retention
        let hour_ago = ferrolog_client::now_ms() - 3_600_000;
        produce_n(&mut c, "old", 12, hour_ago).await;
        produce_n(&mut c, "old", 3, ferrolog_client::now_ms()).await;
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert_eq!(c.list_offset("old", 0, -2).await.unwrap().0, 0);
        // 30 minutes: the old segments go at the next check, live, without a restart
        assert_eq!(
            alter(&mut c, "old", &[("retention.ms", 0, Some("1800000"))])
                .await
                .0,
            0
        );
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut earliest = 0;
        while earliest == 0 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(100)).await;
            earliest = c.list_offset("old", 0, -2).await.unwrap().0;
        }
        assert!(earliest > 0 && earliest <= 60, "earliest {earliest}");
        assert_eq!(c.list_offset("old", 0, -1).await.unwrap().0, 75);
        let e = c
            .fetch("old", 0, 0, 0, 1 << 20)
            .await
            .unwrap_err()
            .to_string();
        assert!(e.contains("OffsetOutOfRange"), "{e}");
        let (recs, _) = c.fetch("old", 0, earliest, 0, 1 << 20).await.unwrap();
        assert_eq!(recs[0].offset, earliest);
        // the renamed files are removed after file.delete.delay.ms
        tokio::time::sleep(Duration::from_millis(500)).await;
        let leftovers: Vec<_> = std::fs::read_dir(server.dir.join("old-0"))
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().ends_with(".deleted"))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
    });
}

#[test]
fn delete_records_and_log_start_survive_restart() {
    let mut server = Server::start(&[]);
    rt().block_on(async {
        let mut c = Connection::connect(&server.addr()).await.unwrap();
        create(&mut c, "dr", &[("segment.bytes", "1500")]).await;
        produce_n(&mut c, "dr", 10, ferrolog_client::now_ms()).await;
        let request = |offset: i64| {
            DeleteRecordsRequest::default().with_topics(vec![
                delete_records_request::DeleteRecordsTopic::default()
                    .with_name(topic_name("dr"))
                    .with_partitions(vec![
                        delete_records_request::DeleteRecordsPartition::default()
                            .with_offset(offset),
                    ]),
            ])
        };
        let r = c.send(&request(23)).await.unwrap();
        assert_eq!(r.topics[0].partitions[0].error_code, 0);
        assert_eq!(r.topics[0].partitions[0].low_watermark, 23);
        let r = c.send(&request(500)).await.unwrap();
        assert_eq!(
            r.topics[0].partitions[0].error_code, 1,
            "OFFSET_OUT_OF_RANGE past the high watermark"
        );
        assert_eq!(c.list_offset("dr", 0, -2).await.unwrap().0, 23);
    });
    server.kill9();
    server.spawn();
    rt().block_on(async {
        let mut c = Connection::connect(&server.addr()).await.unwrap();
        assert_eq!(
            c.list_offset("dr", 0, -2).await.unwrap().0,
            23,
            "log start offset survives kill -9"
        );
        let (recs, _) = c.fetch("dr", 0, 23, 0, 1 << 20).await.unwrap();
        assert_eq!(recs[0].offset, 23);
    });
}

#[test]
fn configs_are_validated_applied_and_persisted() {
    let mut server = Server::start(&[]);
    rt().block_on(async {
        let mut c = Connection::connect(&server.addr()).await.unwrap();
        create(&mut c, "cfg", &[]).await;
        assert_eq!(
            describe(&mut c, "cfg", "retention.ms").await,
            ("604800000".into(), 5)
        );
        assert_eq!(
            alter(
                &mut c,
                "cfg",
                &[
                    ("retention.ms", 0, Some("1000")),
                    ("max.message.bytes", 0, Some("500"))
                ]
            )
            .await
            .0,
            0
        );
        assert_eq!(
            describe(&mut c, "cfg", "retention.ms").await,
            ("1000".into(), 1)
        );
        // max.message.bytes applies at once
        let big: Vec<_> = vec![record(
            Some(Bytes::from_static(b"k")),
            Some(Bytes::from(vec![1u8; 2000])),
            vec![],
            ferrolog_client::now_ms(),
        )];
        let e = c
            .produce("cfg", 0, &big, Compression::None, 1)
            .await
            .unwrap_err()
            .to_string();
        assert!(e.contains("MessageTooLarge"), "{e}");
        // bad values and names
        let (code, message) = alter(&mut c, "cfg", &[("retention.ms", 0, Some("soon"))]).await;
        assert_eq!(code, 40, "INVALID_CONFIG");
        assert!(message.unwrap().contains("retention.ms"));
        assert_eq!(
            alter(&mut c, "cfg", &[("no.such", 0, Some("1"))]).await.0,
            40
        );
        assert_eq!(
            alter(&mut c, "cfg", &[("retention.ms", 2, Some("5"))])
                .await
                .0,
            40,
            "APPEND on a non-list"
        );
        assert_eq!(
            alter(&mut c, "nope", &[("retention.ms", 0, Some("5"))])
                .await
                .0,
            3
        );
        // APPEND / SUBTRACT on a list, DELETE back to the default
        assert_eq!(
            alter(&mut c, "cfg", &[("cleanup.policy", 2, Some("compact"))])
                .await
                .0,
            0
        );
        assert_eq!(
            describe(&mut c, "cfg", "cleanup.policy").await.0,
            "delete,compact"
        );
        assert_eq!(
            alter(&mut c, "cfg", &[("cleanup.policy", 3, Some("delete"))])
                .await
                .0,
            0
        );
        assert_eq!(describe(&mut c, "cfg", "cleanup.policy").await.0, "compact");
        assert_eq!(
            alter(&mut c, "cfg", &[("max.message.bytes", 1, None)])
                .await
                .0,
            0
        );
        c.produce("cfg", 0, &big, Compression::None, 1)
            .await
            .unwrap();
        // the legacy AlterConfigs replaces the whole set of overrides
        let legacy = AlterConfigsRequest::default().with_resources(vec![
            alter_configs_request::AlterConfigsResource::default()
                .with_resource_type(2)
                .with_resource_name(str("cfg"))
                .with_configs(vec![alter_configs_request::AlterableConfig::default()
                    .with_name(str("segment.bytes"))
                    .with_value(Some(str("100000")))]),
        ]);
        assert_eq!(c.send(&legacy).await.unwrap().responses[0].error_code, 0);
        assert_eq!(
            describe(&mut c, "cfg", "retention.ms").await.1,
            5,
            "retention.ms override removed"
        );
        // a broker resource naming another broker is refused
        let other = IncrementalAlterConfigsRequest::default().with_resources(vec![
            incremental_alter_configs_request::AlterConfigsResource::default()
                .with_resource_type(4)
                .with_resource_name(str("7")),
        ]);
        assert_eq!(
            c.send(&other).await.unwrap().responses[0].error_code,
            42,
            "INVALID_REQUEST"
        );
    });
    server.restart();
    rt().block_on(async {
        let mut c = Connection::connect(&server.addr()).await.unwrap();
        assert_eq!(
            describe(&mut c, "cfg", "segment.bytes").await,
            ("100000".into(), 1)
        );
        assert_eq!(
            describe(&mut c, "cfg", "cleanup.policy").await,
            ("delete".into(), 5),
            "replaced by AlterConfigs"
        );
    });
}

#[test]
fn describe_log_dirs_reports_partition_sizes() {
    let server = Server::start(&[]);
    rt().block_on(async {
        let mut c = Connection::connect(&server.addr()).await.unwrap();
        create(&mut c, "sized", &[]).await;
        produce_n(&mut c, "sized", 4, ferrolog_client::now_ms()).await;
        let r = c
            .send(&DescribeLogDirsRequest::default().with_topics(None))
            .await
            .unwrap();
        let dir = &r.results[0];
        assert_eq!(dir.error_code, 0);
        let p = &dir
            .topics
            .iter()
            .find(|t| &*t.name.0 == "sized")
            .unwrap()
            .partitions[0];
        let on_disk =
            std::fs::metadata(server.dir.join("sized-0").join("00000000000000000000.log"))
                .unwrap()
                .len();
        assert_eq!(p.partition_size as u64, on_disk);
        assert!(dir.total_bytes > 0 && dir.usable_bytes > 0);
    });
}

#[test]
fn dump_log_prints_batches_and_records() {
    let mut server = Server::start(&[]);
    // a current timestamp: an old one is past the default retention, and the first retention
    // check may run after the produce and delete the segment
    let timestamp = ferrolog_client::now_ms();
    rt().block_on(async {
        let mut c = Connection::connect(&server.addr()).await.unwrap();
        create(&mut c, "dump", &[]).await;
        let recs = vec![record(
            Some(Bytes::from_static(b"k1")),
            Some(Bytes::from_static(b"hello")),
            vec![],
            timestamp,
        )];
        c.produce("dump", 0, &recs, Compression::Zstd, 1)
            .await
            .unwrap();
    });
    server.stop();
    let segment = server.dir.join("dump-0").join("00000000000000000000.log");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ferrolog"))
        .args(["dump-log", "--print-data-log", "--files"])
        .arg(&segment)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("baseOffset: 0 lastOffset: 0 count: 1"),
        "{text}"
    );
    assert!(
        text.contains("compresscodec: zstd") && text.contains("isvalid: true"),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "| offset: 0 CreateTime: {timestamp} keySize: 2 valueSize: 5"
        )),
        "{text}"
    );
    assert!(text.contains("key: k1 payload: hello"), "{text}");
}

#[test]
fn compacted_topic_keeps_the_latest_value_per_key() {
    let mut server = Server::start(&["log.cleaner.backoff.ms=100"]);
    let runtime = rt();
    runtime.block_on(async {
        let mut c = Connection::connect(&server.addr()).await.unwrap();
        create(
            &mut c,
            "compact",
            &[
                ("cleanup.policy", "compact"),
                ("segment.bytes", "1000"),
                ("min.cleanable.dirty.ratio", "0.01"),
            ],
        )
        .await;
        // keyless records are refused on a compacted topic
        let keyless = vec![record(
            None,
            Some(Bytes::from_static(b"v")),
            vec![],
            ferrolog_client::now_ms(),
        )];
        let e = c
            .produce("compact", 0, &keyless, Compression::None, 1)
            .await
            .unwrap_err()
            .to_string();
        assert!(e.contains("InvalidRecord"), "{e}");
        for round in 0..10 {
            for k in 0..5 {
                let value = if round == 9 && k == 0 {
                    None
                } else {
                    Some(Bytes::from(format!("{k}-{round}")))
                };
                let recs = vec![record(
                    Some(Bytes::from(format!("key{k}"))),
                    value,
                    vec![],
                    ferrolog_client::now_ms(),
                )];
                let codec = [Compression::None, Compression::Snappy][k % 2];
                c.produce("compact", 0, &recs, codec, -1).await.unwrap();
            }
        }
    });
    let read_all = |runtime: &tokio::runtime::Runtime, addr: String| {
        runtime.block_on(async move {
            let mut c = Connection::connect(&addr).await.unwrap();
            let end = c.list_offset("compact", 0, -1).await.unwrap().0;
            let mut offset = c.list_offset("compact", 0, -2).await.unwrap().0;
            let mut all = Vec::new();
            while offset < end {
                let (recs, _) = c.fetch("compact", 0, offset, 0, 1 << 20).await.unwrap();
                let Some(last) = recs.last() else { break };
                offset = last.offset + 1;
                all.extend(recs);
            }
            all
        })
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut all = read_all(&runtime, server.addr());
    while all.len() >= 50 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
        all = read_all(&runtime, server.addr());
    }
    assert!(all.len() < 50, "nothing was compacted");
    // offsets only increase; for every key the last record read is its latest value
    assert!(all.windows(2).all(|w| w[0].offset < w[1].offset));
    let mut last = std::collections::BTreeMap::new();
    for r in &all {
        last.insert(r.key.clone().unwrap(), r.value.clone());
    }
    for k in 1..5 {
        assert_eq!(
            last[&Bytes::from(format!("key{k}"))],
            Some(Bytes::from(format!("{k}-9")))
        );
    }
    assert_eq!(
        last[&Bytes::from_static(b"key0")],
        None,
        "the tombstone is the latest for key0"
    );
    // a restart keeps the compacted log and the cleaner checkpoint
    server.restart();
    let again = read_all(&runtime, server.addr());
    assert_eq!(again.len(), all.len());
    assert!(server.dir.join("cleaner-offset-checkpoint").exists());
}

#[test]
fn compression_type_recompresses_on_the_broker() {
    let mut server = Server::start(&[]);
    rt().block_on(async {
        let mut c = Connection::connect(&server.addr()).await.unwrap();
        create(&mut c, "gz", &[("compression.type", "gzip")]).await;
        let recs: Vec<_> = (0..20)
            .map(|i| {
                record(
                    None,
                    Some(Bytes::from(format!("value {i} {}", "abc".repeat(30)))),
                    vec![],
                    ferrolog_client::now_ms(),
                )
            })
            .collect();
        c.produce("gz", 0, &recs, Compression::Lz4, 1)
            .await
            .unwrap();
        let (back, _) = c.fetch("gz", 0, 0, 0, 1 << 20).await.unwrap();
        assert_eq!(back.len(), 20);
        assert_eq!(back[7].value.as_deref(), recs[7].value.as_deref());
    });
    server.stop();
    let log = std::fs::read(server.dir.join("gz-0").join("00000000000000000000.log")).unwrap();
    let attributes = i16::from_be_bytes([log[21], log[22]]);
    assert_eq!(attributes & 0x07, 1, "stored gzip-compressed");
}

async fn alter_broker(c: &mut Connection, scope: &str, ops: &[(&str, i8, Option<&str>)]) -> i16 {
    alter_resource(c, 4, scope, ops).await.0
}

#[test]
fn dynamic_broker_configs_layer_over_static_ones_and_apply_live() {
    let mut server = Server::start(&["log.retention.hours=100"]);
    rt().block_on(async {
        let mut c = Connection::connect(&server.addr()).await.unwrap();
        create(&mut c, "dyn", &[]).await;
        assert_eq!(
            describe(&mut c, "dyn", "retention.ms").await,
            ("360000000".into(), 4),
            "static"
        );
        // cluster-wide default
        assert_eq!(
            alter_broker(&mut c, "", &[("log.retention.ms", 0, Some("1234"))]).await,
            0
        );
        assert_eq!(
            describe(&mut c, "dyn", "retention.ms").await,
            ("1234".into(), 3)
        );
        // this broker's own wins over the cluster-wide default
        assert_eq!(
            alter_broker(&mut c, "1", &[("log.retention.ms", 0, Some("999"))]).await,
            0
        );
        assert_eq!(
            describe(&mut c, "dyn", "retention.ms").await,
            ("999".into(), 2)
        );
        // and applies to the live logs: message.max.bytes
        assert_eq!(
            alter_broker(&mut c, "", &[("message.max.bytes", 0, Some("500"))]).await,
            0
        );
        let big = vec![record(
            None,
            Some(Bytes::from(vec![1u8; 2000])),
            vec![],
            ferrolog_client::now_ms(),
        )];
        let e = c
            .produce("dyn", 0, &big, Compression::None, 1)
            .await
            .unwrap_err()
            .to_string();
        assert!(e.contains("MessageTooLarge"), "{e}");
        // read-only keys, bad values, unknown keys: INVALID_REQUEST, as Kafka answers them
        assert_eq!(
            alter_broker(&mut c, "1", &[("node.id", 0, Some("5"))]).await,
            42
        );
        assert_eq!(
            alter_broker(&mut c, "", &[("log.retention.ms", 0, Some("soon"))]).await,
            42
        );
        assert_eq!(
            alter_broker(&mut c, "", &[("no.such.key", 0, Some("1"))]).await,
            42
        );
        // describing the broker shows the layers
        let request = DescribeConfigsRequest::default()
            .with_include_synonyms(true)
            .with_resources(vec![
                describe_configs_request::DescribeConfigsResource::default()
                    .with_resource_type(4)
                    .with_resource_name(str("1"))
                    .with_configuration_keys(Some(vec![str("log.retention.ms")])),
            ]);
        let r = c.send(&request).await.unwrap();
        let e = &r.results[0].configs[0];
        assert_eq!(
            (e.value.as_deref(), e.config_source, e.read_only),
            (Some("999"), 2, false)
        );
        let sources: Vec<i8> = e.synonyms.iter().map(|s| s.source).collect();
        assert_eq!(sources, vec![2, 3]);
        // the cluster-wide resource lists only what is set there (min.insync.replicas is
        // written there at start, as Kafka 4.1's controller does)
        let request = DescribeConfigsRequest::default().with_resources(vec![
            describe_configs_request::DescribeConfigsResource::default()
                .with_resource_type(4)
                .with_resource_name(str("")),
        ]);
        let mut names: Vec<String> = c.send(&request).await.unwrap().results[0]
            .configs
            .iter()
            .map(|e| e.name.to_string())
            .collect();
        names.sort();
        assert_eq!(
            names,
            vec![
                "log.retention.ms".to_string(),
                "message.max.bytes".to_string(),
                "min.insync.replicas".to_string()
            ]
        );
    });
    server.restart();
    rt().block_on(async {
        let mut c = Connection::connect(&server.addr()).await.unwrap();
        assert_eq!(
            describe(&mut c, "dyn", "retention.ms").await,
            ("999".into(), 2),
            "persisted"
        );
        assert_eq!(
            alter_broker(&mut c, "1", &[("log.retention.ms", 1, None)]).await,
            0
        );
        assert_eq!(
            describe(&mut c, "dyn", "retention.ms").await,
            ("1234".into(), 3)
        );
    });
}

#[test]
fn decompression_bombs_are_refused_and_levels_are_validated() {
    let server = Server::start(&[]);
    rt().block_on(async {
        let mut c = Connection::connect(&server.addr()).await.unwrap();
        // a compacted topic makes the broker look inside batches
        create(
            &mut c,
            "bomb",
            &[
                ("cleanup.policy", "compact"),
                ("max.message.bytes", "100000"),
                ("compression.zstd.level", "9"),
            ],
        )
        .await;
        let bomb = vec![record(
            Some(Bytes::from_static(b"k")),
            Some(Bytes::from(vec![0u8; 32 << 20])),
            vec![],
            ferrolog_client::now_ms(),
        )];
        let e = c
            .produce("bomb", 0, &bomb, Compression::Gzip, 1)
            .await
            .unwrap_err()
            .to_string();
        assert!(e.contains("MessageTooLarge"), "{e}");
        let fine = vec![record(
            Some(Bytes::from_static(b"k")),
            Some(Bytes::from(vec![0u8; 1 << 20])),
            vec![],
            ferrolog_client::now_ms(),
        )];
        c.produce("bomb", 0, &fine, Compression::Gzip, 1)
            .await
            .unwrap();
        assert_eq!(
            alter(&mut c, "bomb", &[("compression.zstd.level", 0, Some("99"))])
                .await
                .0,
            40
        );
        assert_eq!(
            alter(&mut c, "bomb", &[("compression.gzip.level", 0, Some("0"))])
                .await
                .0,
            40
        );
        assert_eq!(
            alter(&mut c, "bomb", &[("compression.gzip.level", 0, Some("9"))])
                .await
                .0,
            0
        );
    });
}
