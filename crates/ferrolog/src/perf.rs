//! `ferrolog perf produce|consume|connect`: load generators like kafka-producer-perf-test.sh
//! and kafka-consumer-perf-test.sh, and new authenticated connections per second. Benchmarks, not tests: `bench/` runs them (and Kafka's own
//! tools) against ferrolog and Apache Kafka in one session and reports ratios.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use bytes::{Bytes, BytesMut};
use clap::{Args, Subcommand};
use ferrolog_client::{compression_from_name, encode_batch, record};

#[derive(Args)]
pub struct PerfArgs {
    #[command(subcommand)]
    command: PerfCommand,
}

#[derive(Subcommand)]
enum PerfCommand {
    /// Produce fixed-size records as fast as allowed and report throughput and latency.
    Produce(ProduceArgs),
    /// Read a topic from the beginning and report throughput.
    Consume(ConsumeArgs),
    /// Open new connections (TCP, TLS, ApiVersions, SASL as --command-config says) and close
    /// them, and report connections per second and the time each took.
    Connect(ConnectArgs),
}

#[derive(Args)]
struct ConnectArgs {
    /// The broker to connect to, host:port (also accepted after the subcommand).
    #[arg(long, default_value = "localhost:9092", global = true)]
    bootstrap_server: String,
    /// Connections to open in all.
    #[arg(long, default_value_t = 1000)]
    connections: u64,
    /// Connections being opened at once.
    #[arg(long, default_value_t = 4)]
    concurrency: usize,
}

#[derive(Args)]
struct ProduceArgs {
    /// The broker(s) to talk to, host:port (also accepted after the subcommand).
    #[arg(long, default_value = "localhost:9092", global = true)]
    bootstrap_server: String,
    #[arg(long)]
    topic: String,
    #[arg(long, default_value_t = 1_000_000)]
    num_records: u64,
    #[arg(long, default_value_t = 1024)]
    record_size: usize,
    /// Records per second, -1 for no limit.
    #[arg(long, default_value_t = -1, allow_hyphen_values = true)]
    throughput: i64,
    #[arg(long, default_value_t = 1, allow_hyphen_values = true)]
    acks: i16,
    /// Bytes per batch (like the producer's batch.size).
    #[arg(long, default_value_t = 16384)]
    batch_size: usize,
    /// Milliseconds to wait for a batch to fill under a throughput limit (like linger.ms).
    #[arg(long, default_value_t = 0)]
    linger_ms: u64,
    #[arg(long, default_value = "none")]
    compression_codec: String,
    /// Concurrent connections (requests in flight).
    #[arg(long, default_value_t = 4)]
    connections: usize,
}

#[derive(Args)]
struct ConsumeArgs {
    /// The broker(s) to talk to, host:port (also accepted after the subcommand).
    #[arg(long, default_value = "localhost:9092", global = true)]
    bootstrap_server: String,
    #[arg(long)]
    topic: String,
    #[arg(long, default_value_t = 1_000_000)]
    messages: u64,
    #[arg(long, default_value_t = 1024 * 1024)]
    fetch_size: i32,
}

pub async fn run(args: PerfArgs) -> Result<()> {
    match args.command {
        PerfCommand::Produce(a) => produce(a).await,
        PerfCommand::Consume(a) => consume(a).await,
        PerfCommand::Connect(a) => connect(a).await,
    }
}

async fn connect(args: ConnectArgs) -> Result<()> {
    let next = Arc::new(AtomicU64::new(0));
    let latencies = Arc::new(Mutex::new(Vec::new()));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..args.concurrency.max(1) {
        let (next, latencies, addr, total) = (
            next.clone(),
            latencies.clone(),
            args.bootstrap_server.clone(),
            args.connections,
        );
        tasks.push(tokio::spawn(async move {
            while next.fetch_add(1, Ordering::Relaxed) < total {
                let began = Instant::now();
                drop(crate::connect(&addr).await?);
                let us = began.elapsed().as_micros() as u64;
                latencies.lock().expect("latencies").push(us);
            }
            Ok::<(), anyhow::Error>(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    let elapsed = start.elapsed().as_secs_f64();
    let mut l = latencies.lock().expect("latencies").clone();
    l.sort_unstable();
    let at = |q: f64| l.get(((l.len() as f64 * q) as usize).min(l.len().saturating_sub(1)));
    println!(
        "{} connections in {elapsed:.2} s, {:.1} connections/sec, {:.2} ms 50th, {:.2} ms 99th.",
        l.len(),
        l.len() as f64 / elapsed,
        at(0.5).copied().unwrap_or(0) as f64 / 1000.0,
        at(0.99).copied().unwrap_or(0) as f64 / 1000.0
    );
    Ok(())
}

struct Stats {
    latencies_us: Mutex<Vec<u64>>,
    records: AtomicU64,
}

async fn produce(args: ProduceArgs) -> Result<()> {
    let compression = compression_from_name(&args.compression_codec)?;
    let per_batch = (args.batch_size / (args.record_size + 20)).max(1);
    let mut c = crate::connect(&args.bootstrap_server).await?;
    let partitions = c.partitions_or_create(&args.topic).await?;
    let payload = Bytes::from(
        (0..args.record_size)
            .map(|i| b'A' + (i % 26) as u8)
            .collect::<Vec<u8>>(),
    );
    let batches = args.num_records.div_ceil(per_batch as u64);
    let next_batch = Arc::new(AtomicU64::new(0));
    let stats = Arc::new(Stats {
        latencies_us: Mutex::new(Vec::new()),
        records: AtomicU64::new(0),
    });
    let start = Instant::now();
    let mut tasks = Vec::new();
    for worker in 0..args.connections.max(1) {
        let (next_batch, stats, payload) = (next_batch.clone(), stats.clone(), payload.clone());
        let (addr, topic, acks, throughput, num_records) = (
            args.bootstrap_server.clone(),
            args.topic.clone(),
            args.acks,
            args.throughput,
            args.num_records,
        );
        tasks.push(tokio::spawn(async move {
            let mut c = crate::connect(&addr).await?;
            loop {
                let n = next_batch.fetch_add(1, Ordering::Relaxed);
                if n >= batches {
                    return anyhow::Ok(());
                }
                let count = (num_records - n * per_batch as u64).min(per_batch as u64) as usize;
                if throughput > 0 {
                    let due =
                        Duration::from_secs_f64((n * per_batch as u64) as f64 / throughput as f64);
                    if let Some(wait) = due.checked_sub(start.elapsed()) {
                        tokio::time::sleep(wait).await;
                    }
                }
                let now = ferrolog_client::now_ms();
                let recs: Vec<_> = (0..count)
                    .map(|_| record(None, Some(payload.clone()), vec![], now))
                    .collect();
                let mut buf = BytesMut::new();
                encode_batch(&mut buf, &recs, compression)?;
                let partition = ((n as usize + worker) % partitions as usize) as i32;
                let sent = Instant::now();
                c.produce_raw(&topic, partition, buf.freeze(), acks).await?;
                let latency = sent.elapsed().as_micros() as u64;
                stats
                    .latencies_us
                    .lock()
                    .expect("stats")
                    .extend(std::iter::repeat_n(latency, count));
                stats.records.fetch_add(count as u64, Ordering::Relaxed);
            }
        }));
    }
    let reporter = {
        let stats = stats.clone();
        tokio::spawn(async move {
            let mut last = 0;
            loop {
                tokio::time::sleep(Duration::from_secs(5)).await;
                let now = stats.records.load(Ordering::Relaxed);
                eprintln!(
                    "{} records sent, {:.1} records/sec",
                    now,
                    (now - last) as f64 / 5.0
                );
                last = now;
            }
        })
    };
    for t in tasks {
        t.await??;
    }
    reporter.abort();
    let elapsed = start.elapsed().as_secs_f64();
    let mut lat = stats.latencies_us.lock().expect("stats").clone();
    lat.sort_unstable();
    let pct = |p: f64| {
        lat.get(((lat.len() as f64 * p) as usize).min(lat.len().saturating_sub(1)))
            .copied()
            .unwrap_or(0) as f64
            / 1000.0
    };
    let records = stats.records.load(Ordering::Relaxed);
    let avg = lat.iter().sum::<u64>() as f64 / lat.len().max(1) as f64 / 1000.0;
    println!(
        "{records} records sent, {:.1} records/sec ({:.2} MB/sec), {avg:.2} ms avg latency, {:.2} ms max latency, {:.2} ms 50th, {:.2} ms 99th, {:.2} ms 99.9th.",
        records as f64 / elapsed,
        records as f64 * args.record_size as f64 / elapsed / (1024.0 * 1024.0),
        lat.last().copied().unwrap_or(0) as f64 / 1000.0,
        pct(0.5),
        pct(0.99),
        pct(0.999)
    );
    if args.linger_ms > 0 {
        eprintln!(
            "note: batches are formed up front; --linger-ms only matters with a throughput limit"
        );
    }
    Ok(())
}

async fn consume(args: ConsumeArgs) -> Result<()> {
    let mut c = crate::connect(&args.bootstrap_server).await?;
    let partitions = c.partitions(&args.topic).await?;
    let mut positions = Vec::new();
    for p in 0..partitions {
        positions.push(c.list_offset(&args.topic, p, -2).await?.0);
    }
    let start = Instant::now();
    let (mut messages, mut bytes) = (0u64, 0u64);
    let mut idle = 0;
    while messages < args.messages {
        let mut got = false;
        for p in 0..partitions {
            let (records, _) = c
                .fetch(&args.topic, p, positions[p as usize], 100, args.fetch_size)
                .await?;
            for r in &records {
                bytes += r.value.as_ref().map_or(0, |v| v.len()) as u64
                    + r.key.as_ref().map_or(0, |k| k.len()) as u64;
            }
            if let Some(last) = records.last() {
                positions[p as usize] = last.offset + 1;
                messages += records.len() as u64;
                got = true;
            }
        }
        idle = if got { 0 } else { idle + 1 };
        if idle > 20 {
            bail!("only {messages} of {} messages available", args.messages);
        }
    }
    let elapsed = start.elapsed().as_secs_f64();
    println!(
        "data.consumed.in.MB, MB.sec, data.consumed.in.nMsg, nMsg.sec\n{:.4}, {:.4}, {messages}, {:.4}",
        bytes as f64 / 1048576.0,
        bytes as f64 / 1048576.0 / elapsed,
        messages as f64 / elapsed
    );
    Ok(())
}
