//! kill -9 the server in a loop while an acks=all producer writes to a flush-every-message topic:
//! every acknowledged record is there exactly once, in order, and offsets continue.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use common::{create_topic, Server};
use ferrolog_client::kafka_protocol::records::Compression;
use ferrolog_client::{record, Connection};

#[test]
fn acknowledged_writes_survive_kill_9_loop() {
    let mut server = Server::start(&["log.segment.bytes=20000"]);
    let addr = server.addr();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let mut c = Connection::connect(&addr).await.unwrap();
        assert_eq!(
            create_topic(&mut c, "crash", 1, &[("flush.messages", "1")]).await,
            0
        );
    });
    let acked: Arc<Mutex<Vec<u64>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let producer = {
        let (acked, stop, addr) = (acked.clone(), stop.clone(), addr.clone());
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let mut next = 0u64;
                let mut conn: Option<Connection> = None;
                while !stop.load(Ordering::Relaxed) {
                    let Some(c) = conn.as_mut() else {
                        match Connection::connect(&addr).await {
                            Ok(c) => conn = Some(c),
                            Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
                        }
                        continue;
                    };
                    let ids: Vec<u64> = (next..next + 5).collect();
                    next += 5;
                    let recs: Vec<_> = ids
                        .iter()
                        .map(|i| {
                            record(
                                None,
                                Some(Bytes::from(i.to_string())),
                                vec![],
                                ferrolog_client::now_ms(),
                            )
                        })
                        .collect();
                    let compression = if next.is_multiple_of(2) {
                        Compression::None
                    } else {
                        Compression::Zstd
                    };
                    match c.produce("crash", 0, &recs, compression, -1).await {
                        Ok(_) => acked.lock().unwrap().extend(ids),
                        Err(_) => conn = None,
                    }
                }
            })
        })
    };
    for round in 0..6 {
        std::thread::sleep(Duration::from_millis(250 + 70 * round));
        server.kill9();
        server.spawn();
    }
    std::thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::Relaxed);
    producer.join().unwrap();
    let acked = acked.lock().unwrap().clone();
    assert!(
        acked.len() > 100,
        "only {} records acknowledged",
        acked.len()
    );

    runtime.block_on(async {
        let mut c = Connection::connect(&addr).await.unwrap();
        let end = c.list_offset("crash", 0, -1).await.unwrap().0;
        let mut seen = Vec::new();
        let mut offset = 0;
        while offset < end {
            let (recs, _) = c.fetch("crash", 0, offset, 0, 1 << 20).await.unwrap();
            assert!(
                !recs.is_empty(),
                "no records at offset {offset} below end {end}"
            );
            for r in recs {
                assert_eq!(r.offset, offset, "offsets must be contiguous");
                offset += 1;
                seen.push(
                    String::from_utf8(r.value.unwrap().to_vec())
                        .unwrap()
                        .parse::<u64>()
                        .unwrap(),
                );
            }
        }
        // in order, no duplicates
        assert!(
            seen.windows(2).all(|w| w[0] < w[1]),
            "records out of order or duplicated"
        );
        // every acknowledged record is there
        let present: std::collections::HashSet<u64> = seen.iter().copied().collect();
        let lost: Vec<_> = acked.iter().filter(|i| !present.contains(i)).collect();
        assert!(
            lost.is_empty(),
            "lost {} acknowledged records, first {:?}",
            lost.len(),
            lost.first()
        );
        // and the log keeps taking writes at the next offset
        let base = c
            .produce(
                "crash",
                0,
                &[record(
                    None,
                    Some(Bytes::from_static(b"end")),
                    vec![],
                    ferrolog_client::now_ms(),
                )],
                Compression::None,
                -1,
            )
            .await
            .unwrap();
        assert_eq!(base, end);
    });
}

/// kill -9 while the cleaner compacts: after every restart the log reads back consistently and
/// each key's latest acknowledged value is there.
#[test]
fn compaction_survives_kill_9() {
    let mut server = Server::start(&["log.cleaner.backoff.ms=20"]);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let mut c = Connection::connect(&server.addr()).await.unwrap();
        let configs = [
            ("cleanup.policy", "compact"),
            ("segment.bytes", "3000"),
            ("min.cleanable.dirty.ratio", "0.01"),
        ];
        assert_eq!(create_topic(&mut c, "cc", 1, &configs).await, 0);
    });
    let mut latest = std::collections::BTreeMap::new();
    let mut round = 0u64;
    let mut removed_any = false;
    for _ in 0..5 {
        runtime.block_on(async {
            let mut c = Connection::connect(&server.addr()).await.unwrap();
            for _ in 0..40 {
                round += 1;
                let key = format!("key{}", round % 7);
                let value = format!("{round}-{}", "v".repeat(60));
                let recs = vec![record(
                    Some(Bytes::from(key.clone())),
                    Some(Bytes::from(value.clone())),
                    vec![],
                    ferrolog_client::now_ms(),
                )];
                c.produce("cc", 0, &recs, Compression::Lz4, -1)
                    .await
                    .unwrap();
                latest.insert(key, value);
            }
        });
        std::thread::sleep(Duration::from_millis(30 + round % 50));
        server.kill9();
        server.spawn();
        runtime.block_on(async {
            let mut c = Connection::connect(&server.addr()).await.unwrap();
            let end = c.list_offset("cc", 0, -1).await.unwrap().0;
            assert_eq!(
                end as u64, round,
                "every acknowledged offset is still allocated"
            );
            let mut offset = c.list_offset("cc", 0, -2).await.unwrap().0;
            let mut seen = std::collections::BTreeMap::new();
            let mut previous = -1;
            let mut read = 0u64;
            while offset < end {
                let (recs, _) = c.fetch("cc", 0, offset, 0, 1 << 20).await.unwrap();
                let Some(last) = recs.last() else { break };
                offset = last.offset + 1;
                for r in recs {
                    read += 1;
                    assert!(r.offset > previous, "offsets must increase");
                    previous = r.offset;
                    seen.insert(
                        String::from_utf8(r.key.unwrap().to_vec()).unwrap(),
                        String::from_utf8(r.value.unwrap().to_vec()).unwrap(),
                    );
                }
            }
            assert_eq!(seen, latest, "latest value per key after a kill -9");
            removed_any |= read < end as u64;
        });
    }
    assert!(removed_any, "the cleaner never compacted between the kills");
}
