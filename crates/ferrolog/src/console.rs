//! `ferrolog produce` / `ferrolog consume`: like kafka-console-producer.sh and
//! kafka-console-consumer.sh (without consumer groups, which come with issue 4).

use std::collections::HashMap;
use std::io::{BufRead, Write};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use bytes::Bytes;
use clap::Args;
use ferrolog_client::{compression_from_name, now_ms, record};

#[derive(Args)]
pub struct ProduceArgs {
    /// The broker(s) to talk to, host:port (also accepted after the subcommand).
    #[arg(long, default_value = "localhost:9092", global = true)]
    bootstrap_server: String,
    #[arg(long)]
    topic: String,
    /// Send every record to this partition (default: keyed records by murmur2 hash of the key,
    /// unkeyed ones round robin per batch).
    #[arg(long)]
    partition: Option<i32>,
    /// parse.key, key.separator, parse.headers, headers.delimiter, headers.separator,
    /// headers.key.separator, null.marker (repeatable key=value).
    #[arg(long = "property")]
    properties: Vec<String>,
    #[arg(long, default_value = "none")]
    compression_codec: String,
    #[arg(long, default_value_t = -1, allow_hyphen_values = true)]
    acks: i16,
    /// Lines per produce request.
    #[arg(long, default_value_t = 500)]
    batch_size: usize,
}

#[derive(Args)]
pub struct ConsumeArgs {
    /// The broker(s) to talk to, host:port (also accepted after the subcommand).
    #[arg(long, default_value = "localhost:9092", global = true)]
    bootstrap_server: String,
    #[arg(long)]
    topic: String,
    #[arg(long)]
    partition: Option<i32>,
    /// earliest, latest or an offset (default latest, or earliest with --from-beginning).
    #[arg(long)]
    offset: Option<String>,
    #[arg(long)]
    from_beginning: bool,
    #[arg(long)]
    max_messages: Option<u64>,
    /// Exit when no record arrives for this long.
    #[arg(long)]
    timeout_ms: Option<u64>,
    /// print.key, print.offset, print.timestamp, print.partition, print.headers, print.value,
    /// key.separator, line.separator (repeatable key=value).
    #[arg(long = "property")]
    properties: Vec<String>,
}

fn parse_properties(list: &[String]) -> Result<HashMap<String, String>> {
    let mut map = HashMap::new();
    for p in list {
        let Some((k, v)) = p.split_once('=') else {
            bail!("--property {p}: expected key=value")
        };
        map.insert(k.to_string(), unescape(v));
    }
    Ok(map)
}

fn unescape(s: &str) -> String {
    s.replace("\\t", "\t").replace("\\n", "\n")
}

/// Kafka's murmur2 (the Java client's default partitioner for keyed records).
pub fn murmur2(data: &[u8]) -> i32 {
    const M: u32 = 0x5bd1_e995;
    const R: u32 = 24;
    let seed: u32 = 0x9747_b28c;
    let length = data.len() as u32;
    let mut h = seed ^ length;
    let chunks = data.chunks_exact(4);
    let tail = chunks.remainder();
    for c in chunks {
        let mut k = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    match tail.len() {
        3 => {
            h ^= u32::from(tail[2]) << 16;
            h ^= u32::from(tail[1]) << 8;
            h ^= u32::from(tail[0]);
            h = h.wrapping_mul(M);
        }
        2 => {
            h ^= u32::from(tail[1]) << 8;
            h ^= u32::from(tail[0]);
            h = h.wrapping_mul(M);
        }
        1 => {
            h ^= u32::from(tail[0]);
            h = h.wrapping_mul(M);
        }
        _ => {}
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h as i32
}

pub async fn produce(args: ProduceArgs) -> Result<()> {
    let props = parse_properties(&args.properties)?;
    let parse_key = props.get("parse.key").is_some_and(|v| v == "true");
    let key_separator = props
        .get("key.separator")
        .cloned()
        .unwrap_or_else(|| "\t".into());
    let parse_headers = props.get("parse.headers").is_some_and(|v| v == "true");
    let headers_delimiter = props
        .get("headers.delimiter")
        .cloned()
        .unwrap_or_else(|| "\t".into());
    let headers_separator = props
        .get("headers.separator")
        .cloned()
        .unwrap_or_else(|| ",".into());
    let headers_key_separator = props
        .get("headers.key.separator")
        .cloned()
        .unwrap_or_else(|| ":".into());
    let null_marker = props.get("null.marker").cloned();
    let compression = compression_from_name(&args.compression_codec)?;
    let mut c = crate::connect(&args.bootstrap_server).await?;
    let partitions = c.partitions_or_create(&args.topic).await?;
    let mut pending: HashMap<i32, Vec<_>> = HashMap::new();
    let mut round_robin = 0i32;
    let stdin = std::io::stdin();
    let mut lines = stdin.lock().lines();
    loop {
        let line = lines.next().transpose()?;
        if let Some(line) = &line {
            let mut rest = line.as_str();
            let mut headers = Vec::new();
            if parse_headers {
                let Some((h, r)) = rest.split_once(headers_delimiter.as_str()) else {
                    bail!("no headers delimiter found in line: {line}");
                };
                rest = r;
                for pair in h
                    .split(headers_separator.as_str())
                    .filter(|s| !s.is_empty())
                {
                    let (k, v) = pair
                        .split_once(headers_key_separator.as_str())
                        .unwrap_or((pair, ""));
                    headers.push((k.to_string(), Some(Bytes::from(v.to_string()))));
                }
            }
            let to_bytes = |s: &str| -> Option<Bytes> {
                if null_marker.as_deref() == Some(s) {
                    None
                } else {
                    Some(Bytes::from(s.to_string()))
                }
            };
            let (key, value) = if parse_key {
                let Some((k, v)) = rest.split_once(key_separator.as_str()) else {
                    bail!("no key separator found in line: {line}");
                };
                (to_bytes(k), to_bytes(v))
            } else {
                (None, to_bytes(rest))
            };
            let partition = match (args.partition, &key) {
                (Some(p), _) => p,
                (None, Some(k)) => (murmur2(k) & 0x7fff_ffff) % partitions,
                (None, None) => round_robin % partitions,
            };
            pending
                .entry(partition)
                .or_default()
                .push(record(key, value, headers, now_ms()));
        }
        let total: usize = pending.values().map(Vec::len).sum();
        if total >= args.batch_size || (line.is_none() && total > 0) {
            for (partition, records) in pending.drain() {
                c.produce(&args.topic, partition, &records, compression, args.acks)
                    .await
                    .with_context(|| format!("producing to {}-{partition}", args.topic))?;
            }
            round_robin = round_robin.wrapping_add(1);
        }
        if line.is_none() {
            return Ok(());
        }
    }
}

pub async fn consume(args: ConsumeArgs) -> Result<()> {
    let props = parse_properties(&args.properties)?;
    let flag = |k: &str, default: bool| props.get(k).map_or(default, |v| v == "true");
    let print_key = flag("print.key", false);
    let print_offset = flag("print.offset", false);
    let print_timestamp = flag("print.timestamp", false);
    let print_partition = flag("print.partition", false);
    let print_headers = flag("print.headers", false);
    let print_value = flag("print.value", true);
    let separator = props
        .get("key.separator")
        .cloned()
        .unwrap_or_else(|| "\t".into());
    let line_separator = props
        .get("line.separator")
        .cloned()
        .unwrap_or_else(|| "\n".into());
    let mut c = crate::connect(&args.bootstrap_server).await?;
    let count = c.partitions(&args.topic).await?;
    let partitions: Vec<i32> = match args.partition {
        Some(p) => vec![p],
        None => (0..count).collect(),
    };
    let start = args.offset.clone().unwrap_or_else(|| {
        if args.from_beginning {
            "earliest".into()
        } else {
            "latest".into()
        }
    });
    let mut positions = HashMap::new();
    for &p in &partitions {
        let offset = match start.as_str() {
            "earliest" => c.list_offset(&args.topic, p, -2).await?.0,
            "latest" => c.list_offset(&args.topic, p, -1).await?.0,
            n => n
                .parse::<i64>()
                .with_context(|| format!("--offset {n}: expected earliest, latest or a number"))?,
        };
        positions.insert(p, offset);
    }
    let mut printed = 0u64;
    let mut last_record = Instant::now();
    let wait = if partitions.len() > 1 { 100 } else { 500 };
    let stdout = std::io::stdout();
    loop {
        for &p in &partitions {
            let offset = positions[&p];
            let (records, _) = c.fetch(&args.topic, p, offset, wait, 1024 * 1024).await?;
            let mut out = stdout.lock();
            for r in records {
                let mut fields: Vec<String> = Vec::new();
                if print_timestamp {
                    let kind = match r.timestamp_type {
                        ferrolog_client::kafka_protocol::records::TimestampType::Creation => {
                            "CreateTime"
                        }
                        ferrolog_client::kafka_protocol::records::TimestampType::LogAppend => {
                            "LogAppendTime"
                        }
                    };
                    fields.push(format!("{kind}:{}", r.timestamp));
                }
                if print_partition {
                    fields.push(format!("Partition:{p}"));
                }
                if print_offset {
                    fields.push(format!("Offset:{}", r.offset));
                }
                if print_headers {
                    if r.headers.is_empty() {
                        fields.push("NO_HEADERS".into());
                    } else {
                        let h: Vec<String> = r
                            .headers
                            .iter()
                            .map(|(k, v)| {
                                format!(
                                    "{}:{}",
                                    k,
                                    v.as_ref()
                                        .map_or("null".into(), |v| String::from_utf8_lossy(v)
                                            .to_string())
                                )
                            })
                            .collect();
                        fields.push(h.join(","));
                    }
                }
                let text = |b: &Option<Bytes>| {
                    b.as_ref().map_or("null".to_string(), |b| {
                        String::from_utf8_lossy(b).to_string()
                    })
                };
                if print_key {
                    fields.push(text(&r.key));
                }
                if print_value {
                    fields.push(text(&r.value));
                }
                write!(out, "{}{}", fields.join(&separator), line_separator)?;
                positions.insert(p, r.offset + 1);
                printed += 1;
                last_record = Instant::now();
                if args.max_messages.is_some_and(|m| printed >= m) {
                    out.flush()?;
                    eprintln!("Processed a total of {printed} messages");
                    return Ok(());
                }
            }
            out.flush()?;
        }
        if args
            .timeout_ms
            .is_some_and(|t| last_record.elapsed() > Duration::from_millis(t))
        {
            eprintln!("Processed a total of {printed} messages");
            return Ok(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::murmur2;

    #[test]
    fn murmur2_matches_kafka() {
        // Values from Kafka's UtilsTest.testMurmur2
        assert_eq!(murmur2(b"21"), -973932308);
        assert_eq!(murmur2(b"foobar"), -790332482);
        assert_eq!(murmur2(b"a-little-bit-long-string"), -985981536);
        assert_eq!(murmur2(b"a-little-bit-longer-string"), -1486304829);
        assert_eq!(
            murmur2(b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8"),
            -58897971
        );
        assert_eq!(murmur2(b"abc"), 479470107);
    }
}
