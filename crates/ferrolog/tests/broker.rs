//! Integration tests against the real binary, through our client and raw sockets.

mod common;

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use common::{create_topic as create, rt, Server};
use ferrolog_client::kafka_protocol::messages::*;
use ferrolog_client::kafka_protocol::records::Compression;
use ferrolog_client::{encode_batch, record, topic_name, Connection};

fn records(n: usize, prefix: &str) -> Vec<ferrolog_client::kafka_protocol::records::Record> {
    (0..n)
        .map(|i| {
            record(
                Some(Bytes::from(format!("k{i}"))),
                Some(Bytes::from(format!("{prefix}-{i}"))),
                vec![("h".into(), Some(Bytes::from_static(b"v")))],
                ferrolog_client::now_ms(),
            )
        })
        .collect()
}

fn batch(n: usize, prefix: &str) -> BytesMut {
    let mut buf = BytesMut::new();
    encode_batch(&mut buf, &records(n, prefix), Compression::None).unwrap();
    buf
}

fn produce_error(response: Option<ProduceResponse>) -> i16 {
    response.unwrap().responses[0].partition_responses[0].error_code
}

#[test]
fn produce_and_fetch_with_every_codec() {
    let server = Server::start(&[]);
    rt().block_on(async {
        let mut c = Connection::connect(&server.addr()).await.unwrap();
        assert_eq!(create(&mut c, "codecs", 1, &[]).await, 0);
        let mut expected = 0;
        for codec in [
            Compression::None,
            Compression::Gzip,
            Compression::Snappy,
            Compression::Lz4,
            Compression::Zstd,
        ] {
            let base = c
                .produce("codecs", 0, &records(50, &format!("{codec:?}")), codec, -1)
                .await
                .unwrap();
            assert_eq!(base, expected);
            expected += 50;
        }
        let mut offset = 0;
        let mut all = Vec::new();
        while offset < expected {
            let (recs, hw) = c.fetch("codecs", 0, offset, 100, 1 << 20).await.unwrap();
            assert_eq!(hw, expected);
            offset = recs.last().unwrap().offset + 1;
            all.extend(recs);
        }
        assert_eq!(all.len(), 250);
        for (i, r) in all.iter().enumerate() {
            assert_eq!(r.offset, i as i64);
            assert_eq!(r.key.as_deref(), Some(format!("k{}", i % 50).as_bytes()));
            assert_eq!(r.headers.len(), 1);
        }
        assert_eq!(&all[60].value.as_ref().unwrap()[..], b"Gzip-10");
    });
}

#[test]
fn bad_batches_get_kafka_error_codes() {
    let server = Server::start(&["message.max.bytes=2000"]);
    rt().block_on(async {
        let mut c = Connection::connect(&server.addr()).await.unwrap();
        assert_eq!(create(&mut c, "bad", 1, &[]).await, 0);
        // CRC-32C mismatch
        let mut corrupt = batch(3, "x");
        let last = corrupt.len() - 1;
        corrupt[last] ^= 0xff;
        let r = c
            .produce_raw_response("bad", 0, corrupt.freeze(), 1)
            .await
            .unwrap();
        assert_eq!(produce_error(r), 2, "CORRUPT_MESSAGE");
        // magic 1
        let mut old = batch(1, "x");
        old[16] = 1;
        let r = c
            .produce_raw_response("bad", 0, old.freeze(), 1)
            .await
            .unwrap();
        assert_eq!(produce_error(r), 43, "UNSUPPORTED_FOR_MESSAGE_FORMAT");
        // larger than message.max.bytes
        let big = vec![record(
            None,
            Some(Bytes::from(vec![7u8; 5000])),
            vec![],
            ferrolog_client::now_ms(),
        )];
        let mut buf = BytesMut::new();
        encode_batch(&mut buf, &big, Compression::None).unwrap();
        let r = c
            .produce_raw_response("bad", 0, buf.freeze(), 1)
            .await
            .unwrap();
        assert_eq!(produce_error(r), 10, "MESSAGE_TOO_LARGE");
        // truncated batch
        let torn = batch(2, "x").split_to(40);
        let r = c
            .produce_raw_response("bad", 0, torn.freeze(), 1)
            .await
            .unwrap();
        assert_eq!(produce_error(r), 2, "CORRUPT_MESSAGE for a torn batch");
        // unknown topic and partition
        let r = c
            .produce_raw_response("nope", 0, batch(1, "x").freeze(), 1)
            .await
            .unwrap();
        assert_eq!(produce_error(r), 3, "UNKNOWN_TOPIC_OR_PARTITION");
        let r = c
            .produce_raw_response("bad", 7, batch(1, "x").freeze(), 1)
            .await
            .unwrap();
        assert_eq!(produce_error(r), 3);
        // timestamp too far in the future (message.timestamp.after.max.ms defaults to 1h)
        let future = vec![record(
            None,
            Some(Bytes::from_static(b"f")),
            vec![],
            ferrolog_client::now_ms() + 2 * 3_600_000,
        )];
        let mut buf = BytesMut::new();
        encode_batch(&mut buf, &future, Compression::None).unwrap();
        let r = c
            .produce_raw_response("bad", 0, buf.freeze(), 1)
            .await
            .unwrap();
        assert_eq!(produce_error(r), 32, "INVALID_TIMESTAMP");
        // nothing was appended by any of that
        assert_eq!(c.list_offset("bad", 0, -1).await.unwrap().0, 0);
        assert_eq!(
            c.produce("bad", 0, &records(2, "ok"), Compression::None, 1)
                .await
                .unwrap(),
            0
        );
    });
}

#[test]
fn topic_admin_and_name_rules() {
    let server = Server::start(&["auto.create.topics.enable=false"]);
    rt().block_on(async {
        let mut c = Connection::connect(&server.addr()).await.unwrap();
        assert_eq!(create(&mut c, "a.b", 2, &[]).await, 0);
        assert_eq!(
            create(&mut c, "a.b", 2, &[]).await,
            36,
            "TOPIC_ALREADY_EXISTS"
        );
        assert_eq!(
            create(&mut c, "a_b", 2, &[]).await,
            17,
            "collision is INVALID_TOPIC_EXCEPTION"
        );
        assert_eq!(create(&mut c, "bad name", 1, &[]).await, 17);
        assert_eq!(create(&mut c, &"x".repeat(250), 1, &[]).await, 17);
        assert_eq!(
            create(&mut c, "zero", 0, &[]).await,
            37,
            "INVALID_PARTITIONS"
        );
        assert_eq!(
            create(&mut c, "cfg", 1, &[("no.such.config", "1")]).await,
            40,
            "INVALID_CONFIG"
        );
        assert_eq!(
            create(&mut c, "cfg", 1, &[("segment.bytes", "lots")]).await,
            40
        );
        let rf3 = create_topics_request::CreatableTopic::default()
            .with_name(topic_name("rf3"))
            .with_num_partitions(1)
            .with_replication_factor(3);
        let r = c
            .send(&CreateTopicsRequest::default().with_topics(vec![rf3]))
            .await
            .unwrap();
        assert_eq!(r.topics[0].error_code, 38, "INVALID_REPLICATION_FACTOR");
        // validate_only creates nothing
        let t = create_topics_request::CreatableTopic::default()
            .with_name(topic_name("dry"))
            .with_num_partitions(1)
            .with_replication_factor(1);
        let r = c
            .send(
                &CreateTopicsRequest::default()
                    .with_topics(vec![t])
                    .with_validate_only(true),
            )
            .await
            .unwrap();
        assert_eq!(r.topics[0].error_code, 0);
        assert!(c.partitions("dry").await.is_err());
        // metadata: unknown topic with auto-create off, invalid names
        let m = c
            .metadata(Some(&["missing", "in valid"]), true)
            .await
            .unwrap();
        assert_eq!(m.topics[0].error_code, 3);
        assert_eq!(m.topics[1].error_code, 17);
        // create partitions
        let grow = CreatePartitionsRequest::default().with_topics(vec![
            create_partitions_request::CreatePartitionsTopic::default()
                .with_name(topic_name("a.b"))
                .with_count(5),
        ]);
        assert_eq!(c.send(&grow).await.unwrap().results[0].error_code, 0);
        assert_eq!(c.partitions("a.b").await.unwrap(), 5);
        assert_eq!(
            c.send(&grow).await.unwrap().results[0].error_code,
            37,
            "shrinking is INVALID_PARTITIONS"
        );
        c.produce("a.b", 4, &records(1, "p4"), Compression::None, 1)
            .await
            .unwrap();
        // delete by name, then by id
        let m = c.metadata(Some(&["a.b"]), false).await.unwrap();
        let id = m.topics[0].topic_id;
        assert!(!id.is_nil());
        let del = DeleteTopicsRequest::default().with_topics(vec![
            delete_topics_request::DeleteTopicState::default().with_topic_id(id),
        ]);
        let r = c.send_version(&del, 6).await.unwrap();
        assert_eq!(r.responses[0].error_code, 0);
        assert_eq!(
            r.responses[0]
                .name
                .as_ref()
                .map(|n| n.0.to_string())
                .as_deref(),
            Some("a.b")
        );
        assert!(c.partitions("a.b").await.is_err());
        let r = c.send_version(&del, 6).await.unwrap();
        assert_eq!(r.responses[0].error_code, 100, "UNKNOWN_TOPIC_ID");
        let by_name = DeleteTopicsRequest::default().with_topic_names(vec![topic_name("nope")]);
        assert_eq!(
            c.send_version(&by_name, 5).await.unwrap().responses[0].error_code,
            3
        );
        // the name is free again, and a_b no longer collides
        assert_eq!(create(&mut c, "a_b", 1, &[]).await, 0);
        assert!(!server.dir.join("a.b-0").exists());
    });
}

/// Raw socket helpers for malformed input.
fn raw(addr: &str) -> std::net::TcpStream {
    let s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s
}

fn closed(mut s: std::net::TcpStream) -> bool {
    let mut buf = [0u8; 64];
    matches!(s.read(&mut buf), Ok(0)) || matches!(s.read(&mut buf), Err(_) | Ok(0))
}

#[test]
fn malformed_frames_close_only_that_connection() {
    let server = Server::start(&["socket.request.max.bytes=1000000"]);
    let addr = server.addr();
    let runtime = rt();
    let survivor = runtime.block_on(Connection::connect(&addr)).unwrap();
    // a frame claiming 2 GiB: closed without allocating
    let mut s = raw(&addr);
    s.write_all(&0x7fff_fff0i32.to_be_bytes()).unwrap();
    assert!(closed(s));
    // just over socket.request.max.bytes
    let mut s = raw(&addr);
    s.write_all(&1_000_001i32.to_be_bytes()).unwrap();
    assert!(closed(s));
    // negative length
    let mut s = raw(&addr);
    s.write_all(&(-5i32).to_be_bytes()).unwrap();
    assert!(closed(s));
    // unknown api key 999
    let mut s = raw(&addr);
    s.write_all(&[0, 0, 0, 10, 0x03, 0xe7, 0, 0, 0, 0, 0, 1, 0xff, 0xff])
        .unwrap();
    assert!(closed(s));
    // garbage body for Metadata v12 (a huge array length)
    let mut s = raw(&addr);
    let mut frame = vec![0, 3, 0, 12, 0, 0, 0, 7, 0, 0, 0];
    frame.extend([0xff, 0xff, 0xff, 0xff, 0x0f, 1, 2, 3]);
    let mut msg = (frame.len() as i32).to_be_bytes().to_vec();
    msg.extend(frame);
    s.write_all(&msg).unwrap();
    assert!(closed(s));
    // a truncated frame then EOF
    let mut s = raw(&addr);
    s.write_all(&[0, 0, 0, 100, 0, 18, 0]).unwrap();
    s.shutdown(std::net::Shutdown::Write).unwrap();
    assert!(closed(s));
    // random garbage
    let mut s = raw(&addr);
    let junk: Vec<u8> = (0..4096u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    let _ = s.write_all(&junk);
    assert!(closed(s));
    // the broker still serves the old connection and new ones
    runtime.block_on(async {
        let mut survivor = survivor;
        assert!(survivor.metadata(None, false).await.is_ok());
        let mut fresh = Connection::connect(&addr).await.unwrap();
        assert!(fresh.metadata(None, false).await.is_ok());
    });
}

#[test]
fn api_versions_unknown_version_gets_v0_error_body() {
    let server = Server::start(&[]);
    let mut s = raw(&server.addr());
    // ApiVersions v99, correlation id 42, client id "x"
    let frame = [0u8, 18, 0, 99, 0, 0, 0, 42, 0, 1, b'x'];
    let mut msg = (frame.len() as i32).to_be_bytes().to_vec();
    msg.extend(frame);
    s.write_all(&msg).unwrap();
    let mut len = [0u8; 4];
    s.read_exact(&mut len).unwrap();
    let mut body = vec![0u8; i32::from_be_bytes(len) as usize];
    s.read_exact(&mut body).unwrap();
    assert_eq!(&body[0..4], &42i32.to_be_bytes());
    assert_eq!(&body[4..6], &35i16.to_be_bytes(), "UNSUPPORTED_VERSION");
    let count = i32::from_be_bytes(body[6..10].try_into().unwrap());
    assert!(count >= 10);
}

#[test]
fn long_poll_fetch_waits_for_data_and_times_out() {
    let server = Server::start(&[]);
    rt().block_on(async {
        let mut c = Connection::connect(&server.addr()).await.unwrap();
        assert_eq!(create(&mut c, "poll", 1, &[]).await, 0);
        // nothing to read: waits max_wait_ms and returns empty
        let start = Instant::now();
        let (recs, _) = c.fetch("poll", 0, 0, 300, 1 << 20).await.unwrap();
        assert!(recs.is_empty());
        assert!(
            start.elapsed() >= Duration::from_millis(280),
            "returned after {:?}",
            start.elapsed()
        );
        // a produce during the wait wakes it early
        let addr = server.addr();
        let producer = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(200)).await;
            let mut p = Connection::connect(&addr).await.unwrap();
            p.produce("poll", 0, &records(1, "wake"), Compression::None, 1)
                .await
                .unwrap();
        });
        let start = Instant::now();
        let (recs, hw) = c.fetch("poll", 0, 0, 10_000, 1 << 20).await.unwrap();
        assert_eq!(recs.len(), 1);
        assert_eq!(hw, 1);
        assert!(start.elapsed() < Duration::from_secs(5));
        producer.await.unwrap();
        // out of range
        let e = c
            .fetch("poll", 0, 5, 0, 1 << 20)
            .await
            .unwrap_err()
            .to_string();
        assert!(e.contains("OffsetOutOfRange"), "{e}");
    });
}

#[test]
fn list_offsets_by_timestamp_and_max_timestamp() {
    let server = Server::start(&[]);
    rt().block_on(async {
        let mut c = Connection::connect(&server.addr()).await.unwrap();
        assert_eq!(
            create(&mut c, "times", 1, &[("index.interval.bytes", "100")]).await,
            0
        );
        let base = ferrolog_client::now_ms() - 100_000;
        for i in 0..20i64 {
            let recs: Vec<_> = (0..5i64)
                .map(|j| {
                    record(
                        None,
                        Some(Bytes::from(vec![0u8; 50])),
                        vec![],
                        base + (i * 5 + j) * 10,
                    )
                })
                .collect();
            c.produce(
                "times",
                0,
                &recs,
                if i % 2 == 0 {
                    Compression::None
                } else {
                    Compression::Lz4
                },
                1,
            )
            .await
            .unwrap();
        }
        assert_eq!(c.list_offset("times", 0, -2).await.unwrap().0, 0);
        assert_eq!(c.list_offset("times", 0, -1).await.unwrap().0, 100);
        // exact record inside a batch, compressed or not
        assert_eq!(
            c.list_offset("times", 0, base + 420).await.unwrap(),
            (42, base + 420)
        );
        assert_eq!(
            c.list_offset("times", 0, base + 555).await.unwrap(),
            (56, base + 560)
        );
        assert_eq!(c.list_offset("times", 0, base).await.unwrap(), (0, base));
        assert_eq!(
            c.list_offset("times", 0, base + 100_000).await.unwrap().0,
            -1
        );
        assert_eq!(
            c.list_offset("times", 0, -3).await.unwrap(),
            (99, base + 990)
        );
    });
}

#[test]
fn log_append_time_topics_get_broker_timestamps() {
    let server = Server::start(&[]);
    rt().block_on(async {
        let mut c = Connection::connect(&server.addr()).await.unwrap();
        assert_eq!(
            create(
                &mut c,
                "lat",
                1,
                &[("message.timestamp.type", "LogAppendTime")]
            )
            .await,
            0
        );
        let old = vec![record(None, Some(Bytes::from_static(b"v")), vec![], 1000)];
        let before = ferrolog_client::now_ms();
        c.produce("lat", 0, &old, Compression::None, 1)
            .await
            .unwrap();
        let (recs, _) = c.fetch("lat", 0, 0, 0, 1 << 20).await.unwrap();
        assert!(
            recs[0].timestamp >= before,
            "timestamp {} not from the broker",
            recs[0].timestamp
        );
    });
}

#[test]
fn data_survives_clean_restart_and_offsets_continue() {
    let mut server = Server::start(&["log.segment.bytes=2000"]);
    rt().block_on(async {
        let mut c = Connection::connect(&server.addr()).await.unwrap();
        assert_eq!(create(&mut c, "keep", 2, &[]).await, 0);
        for i in 0..30 {
            c.produce("keep", i % 2, &records(3, "r"), Compression::Snappy, -1)
                .await
                .unwrap();
        }
    });
    server.restart();
    assert!(server
        .dir
        .join("keep-0")
        .join("00000000000000000000.index")
        .exists());
    assert!(server.dir.join("meta.properties").exists());
    rt().block_on(async {
        let mut c = Connection::connect(&server.addr()).await.unwrap();
        assert_eq!(c.list_offset("keep", 0, -1).await.unwrap().0, 45);
        let base = c
            .produce("keep", 0, &records(1, "after"), Compression::None, -1)
            .await
            .unwrap();
        assert_eq!(base, 45);
        let mut offset = 0;
        while offset < 46 {
            let (recs, _) = c.fetch("keep", 0, offset, 0, 1 << 20).await.unwrap();
            for r in &recs {
                assert_eq!(r.offset, offset);
                offset += 1;
            }
        }
    });
}

#[test]
fn bad_config_stops_startup_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let out = common::Server::command(
        dir.path(),
        common::free_port(),
        &["num.partitions=lots".to_string()],
    )
    .stderr(std::process::Stdio::piped())
    .output()
    .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("num.partitions"), "{err}");
}

/// ferrolog serves PLAINTEXT only: a config asking for TLS, SASL or ACLs must not start with
/// less security than it asks for (before, `listeners=SSL://…` served plaintext on that port).
#[test]
fn security_ferrolog_lacks_stops_startup_naming_it() {
    for (overrides, named) in [
        (
            vec!["listeners=SSL://127.0.0.1:0,CONTROLLER://127.0.0.1:0"],
            "a TLS listener needs a key store",
        ),
        // Kafka's default mechanism is GSSAPI (Kerberos), which ferrolog lacks
        (
            vec!["listeners=SASL_PLAINTEXT://127.0.0.1:0,CONTROLLER://127.0.0.1:0"],
            "SASL mechanism GSSAPI",
        ),
        (
            vec![
                "listener.security.protocol.map=CLIENT:SASL_PLAINTEXT,CONTROLLER:PLAINTEXT",
                "listeners=CLIENT://127.0.0.1:0,CONTROLLER://127.0.0.1:0",
                "sasl.enabled.mechanisms=OAUTHBEARER,GSSAPI",
            ],
            "SASL mechanism GSSAPI",
        ),
        (
            // ZooKeeper's authorizer, gone from Kafka 4: only the StandardAuthorizer is there
            vec!["authorizer.class.name=kafka.security.authorizer.AclAuthorizer"],
            "authorizer.class.name",
        ),
        (
            vec![
                "listeners=SSL://127.0.0.1:0,CONTROLLER://127.0.0.1:0",
                "ssl.keystore.location=/tmp/none.p12",
            ],
            "ssl.keystore.location",
        ),
        (
            vec!["sasl.kerberos.service.name=kafka"],
            "sasl.kerberos.service.name",
        ),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let overrides: Vec<String> = overrides.iter().map(|s| s.to_string()).collect();
        let mut child = common::Server::command(dir.path(), common::free_port(), &overrides)
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // a server that started does not exit: give it a bounded time to refuse
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while child.try_wait().unwrap().is_none() {
            if std::time::Instant::now() > deadline {
                let _ = child.kill();
                panic!("{overrides:?}: the server started");
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        let out = child.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{overrides:?} started");
        assert!(err.contains(named), "{overrides:?}: {err}");
        // what ferrolog lacks says so; a TLS listener it cannot set up names the key at fault
        assert!(
            err.contains("does not implement") || err.contains("ssl.keystore"),
            "{overrides:?}: {err}"
        );
    }
}

#[test]
fn security_keys_at_kafkas_defaults_are_accepted() {
    // as Kafka's sample server.properties sets them
    let server = Server::start(&[
        "listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,SSL:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT,SASL_SSL:SASL_SSL",
        "inter.broker.listener.name=PLAINTEXT",
        "ssl.client.auth=none",
    ]);
    rt().block_on(async {
        let mut c = Connection::connect(&server.addr()).await.unwrap();
        assert_eq!(create(&mut c, "plain", 1, &[]).await, 0);
    });
}

#[test]
fn min_insync_replicas_is_capped_by_the_replication_factor() {
    // as in Kafka: min.insync.replicas=2 on a topic with one replica does not make it
    // unwritable with acks=all (the cluster tests cover NOT_ENOUGH_REPLICAS with RF 3)
    let server = Server::start(&["min.insync.replicas=2"]);
    rt().block_on(async {
        let mut c = Connection::connect(&server.addr()).await.unwrap();
        assert_eq!(
            create(&mut c, "isr", 1, &[("min.insync.replicas", "3")]).await,
            0
        );
        let r = c
            .produce_raw_response("isr", 0, batch(1, "x").freeze(), -1)
            .await
            .unwrap();
        assert_eq!(produce_error(r), 0, "acks=all to an RF=1 topic");
        assert_eq!(create(&mut c, "isr-default", 1, &[]).await, 0);
        let r = c
            .produce_raw_response("isr-default", 0, batch(1, "x").freeze(), -1)
            .await
            .unwrap();
        assert_eq!(produce_error(r), 0, "broker default min.insync.replicas=2");
    });
}

#[test]
fn incremental_fetch_session_sends_only_changes() {
    let server = Server::start(&[]);
    rt().block_on(async {
        let mut c = Connection::connect(&server.addr()).await.unwrap();
        assert_eq!(create(&mut c, "s", 2, &[]).await, 0);
        c.produce("s", 0, &records(2, "a"), Compression::None, 1)
            .await
            .unwrap();
        let part = |p: i32, offset: i64| {
            fetch_request::FetchPartition::default()
                .with_partition(p)
                .with_fetch_offset(offset)
                .with_current_leader_epoch(-1)
                .with_partition_max_bytes(1 << 20)
        };
        let full = FetchRequest::default()
            .with_replica_id(BrokerId(-1))
            .with_max_bytes(1 << 20)
            .with_session_id(0)
            .with_session_epoch(0)
            .with_topics(vec![fetch_request::FetchTopic::default()
                .with_topic(topic_name("s"))
                .with_partitions(vec![part(0, 0), part(1, 0)])]);
        let r = c.send_version(&full, 12).await.unwrap();
        assert_ne!(r.session_id, 0);
        assert_eq!(r.responses[0].partitions.len(), 2);
        // incremental, nothing changed: no partitions
        let inc = FetchRequest::default()
            .with_replica_id(BrokerId(-1))
            .with_max_bytes(1 << 20)
            .with_session_id(r.session_id)
            .with_session_epoch(1)
            .with_topics(vec![fetch_request::FetchTopic::default()
                .with_topic(topic_name("s"))
                .with_partitions(vec![part(0, 2)])]);
        let r2 = c.send_version(&inc, 12).await.unwrap();
        assert_eq!(r2.error_code, 0);
        assert!(
            r2.responses.iter().all(|t| t.partitions.is_empty()),
            "{:?}",
            r2.responses
        );
        // new data on partition 1 only
        c.produce("s", 1, &records(1, "b"), Compression::None, 1)
            .await
            .unwrap();
        let inc2 = inc.clone().with_session_epoch(2).with_topics(vec![]);
        let r3 = c.send_version(&inc2, 12).await.unwrap();
        let parts: Vec<i32> = r3
            .responses
            .iter()
            .flat_map(|t| t.partitions.iter().map(|p| p.partition_index))
            .collect();
        assert_eq!(parts, vec![1]);
        // wrong epoch and unknown session
        let r4 = c
            .send_version(&inc2.clone().with_session_epoch(9), 12)
            .await
            .unwrap();
        assert_eq!(r4.error_code, 71, "INVALID_FETCH_SESSION_EPOCH");
        let r5 = c
            .send_version(&inc2.with_session_id(123456).with_session_epoch(1), 12)
            .await
            .unwrap();
        assert_eq!(r5.error_code, 70, "FETCH_SESSION_ID_NOT_FOUND");
    });
}

/// A fetch session's quiet partitions (nothing new for the client) are skipped by later fetches
/// until they change: an append to one wakes a long poll and answers with it alone; a topic
/// deleted and created again under the same name is not taken for the old, quiet one.
#[test]
fn quiet_partitions_of_a_fetch_session_wake_when_they_change() {
    let server = Server::start(&[]);
    rt().block_on(async {
        let mut c = Connection::connect(&server.addr()).await.unwrap();
        assert_eq!(create(&mut c, "q", 3, &[]).await, 0);
        let part = |p: i32, offset: i64| {
            fetch_request::FetchPartition::default()
                .with_partition(p)
                .with_fetch_offset(offset)
                .with_current_leader_epoch(-1)
                .with_partition_max_bytes(1 << 20)
        };
        let request = |id: i32, epoch: i32, parts: Vec<fetch_request::FetchPartition>| {
            FetchRequest::default()
                .with_replica_id(BrokerId(-1))
                .with_max_bytes(1 << 20)
                .with_min_bytes(1)
                .with_max_wait_ms(0)
                .with_session_id(id)
                .with_session_epoch(epoch)
                .with_topics(vec![fetch_request::FetchTopic::default()
                    .with_topic(topic_name("q"))
                    .with_partitions(parts)])
        };
        let listed = |r: &FetchResponse| -> Vec<(i32, usize)> {
            r.responses
                .iter()
                .flat_map(|t| t.partitions.iter())
                .map(|p| (p.partition_index, p.records.as_ref().map_or(0, |b| b.len())))
                .collect()
        };
        let full = request(0, 0, vec![part(0, 0), part(1, 0), part(2, 0)]);
        let r = c.send_version(&full, 12).await.unwrap();
        let id = r.session_id;
        assert_ne!(id, 0);
        // nothing new: an empty incremental response, twice (the second from the quiet marks)
        for epoch in 1..=2 {
            let r = c
                .send_version(&request(id, epoch, vec![]), 12)
                .await
                .unwrap();
            assert_eq!(listed(&r), vec![], "epoch {epoch}");
        }
        // a long poll over the quiet partitions wakes for an append to partition 2
        let addr = server.addr();
        let producer = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(300)).await;
            let mut p = Connection::connect(&addr).await.unwrap();
            p.produce("q", 2, &records(1, "late"), Compression::None, 1)
                .await
                .unwrap();
        });
        let start = Instant::now();
        let poll = request(id, 3, vec![]).with_max_wait_ms(10_000);
        let r = c.send_version(&poll, 12).await.unwrap();
        producer.await.unwrap();
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "woke after {:?}",
            start.elapsed()
        );
        let got = listed(&r);
        assert_eq!(got.len(), 1, "{got:?}");
        assert_eq!(got[0].0, 2);
        assert!(got[0].1 > 0, "records for partition 2");
        // caught up on 2: quiet again
        let r = c
            .send_version(&request(id, 4, vec![part(2, 1)]), 12)
            .await
            .unwrap();
        assert_eq!(listed(&r), vec![]);
        // the topic deleted and created again: the session's partitions are not the old ones
        let del = DeleteTopicsRequest::default().with_topic_names(vec![topic_name("q")]);
        let d = c.send_version(&del, 5).await.unwrap();
        assert_eq!(d.responses[0].error_code, 0);
        assert_eq!(create(&mut c, "q", 3, &[]).await, 0);
        c.produce("q", 1, &records(1, "new"), Compression::None, 1)
            .await
            .unwrap();
        let r = c.send_version(&request(id, 5, vec![]), 12).await.unwrap();
        let got = listed(&r);
        assert!(
            got.iter().any(|(p, bytes)| *p == 1 && *bytes > 0),
            "the new partition 1's record: {got:?}"
        );
    });
}

#[test]
fn alter_client_quotas_refuses_a_key_or_an_entity_twice() {
    // as Kafka's controller: such an entry gets INVALID_REQUEST and nothing of it is applied;
    // the other entries of the request are
    let server = Server::start(&[]);
    rt().block_on(async {
        let mut c = Connection::connect(&server.addr()).await.unwrap();
        let entity = |name: &str| {
            vec![alter_client_quotas_request::EntityData::default()
                .with_entity_type(ferrolog_client::str("client-id"))
                .with_entity_name(Some(ferrolog_client::str(name)))]
        };
        let op = |key: &str, value: f64| {
            alter_client_quotas_request::OpData::default()
                .with_key(ferrolog_client::str(key))
                .with_value(value)
        };
        let entry = |name: &str, ops: Vec<alter_client_quotas_request::OpData>| {
            alter_client_quotas_request::EntryData::default()
                .with_entity(entity(name))
                .with_ops(ops)
        };
        let r = c
            .send(&AlterClientQuotasRequest::default().with_entries(vec![
                entry(
                    "twice-key",
                    vec![op("producer_byte_rate", 1000.0), op("producer_byte_rate", 2000.0)],
                ),
                entry("once", vec![op("producer_byte_rate", 3000.0)]),
                entry("once", vec![op("consumer_byte_rate", 4000.0)]),
            ]))
            .await
            .unwrap();
        let codes: Vec<(i16, Option<String>)> = r
            .entries
            .iter()
            .map(|e| (e.error_code, e.error_message.as_ref().map(|m| m.to_string())))
            .collect();
        assert_eq!(
            codes,
            [
                (
                    42,
                    Some("Ignoring duplicate entity ClientQuotaEntity(entries={client-id=twice-key})".into())
                ),
                (0, None),
                (
                    42,
                    Some("Ignoring duplicate entity ClientQuotaEntity(entries={client-id=once})".into())
                ),
            ]
        );
        let described = c
            .send(
                &DescribeClientQuotasRequest::default().with_components(vec![
                    describe_client_quotas_request::ComponentData::default()
                        .with_entity_type(ferrolog_client::str("client-id"))
                        .with_match_type(2)
                        .with_match(None),
                ]),
            )
            .await
            .unwrap();
        let stored: Vec<(String, Vec<(String, f64)>)> = described
            .entries
            .unwrap_or_default()
            .iter()
            .map(|e| {
                (
                    e.entity[0]
                        .entity_name
                        .as_ref()
                        .map(|n| n.to_string())
                        .unwrap_or_default(),
                    e.values.iter().map(|v| (v.key.to_string(), v.value)).collect(),
                )
            })
            .collect();
        assert_eq!(
            stored,
            [("once".to_string(), vec![("producer_byte_rate".to_string(), 3000.0)])]
        );
    });
}
