//! `ferrolog dump-log`: print a segment's batches and records, like kafka-dump-log.sh.

use std::path::PathBuf;

use anyhow::{Context, Result};
use bytes::Bytes;
use clap::Args;
use ferrolog_storage::batch::{self, BatchHeader, BatchIter};

#[derive(Args)]
pub struct DumpLogArgs {
    /// Segment files (.log).
    #[arg(long = "files", value_delimiter = ',', required = true)]
    files: Vec<PathBuf>,
    /// Print every record, not only batch headers.
    #[arg(long)]
    deep_iteration: bool,
    /// Print keys and values (implies --deep-iteration).
    #[arg(long)]
    print_data_log: bool,
}

fn codec(header: &BatchHeader) -> &'static str {
    match header.compression() {
        0 => "none",
        1 => "gzip",
        2 => "snappy",
        3 => "lz4",
        4 => "zstd",
        _ => "unknown",
    }
}

pub fn run(args: DumpLogArgs) -> Result<()> {
    let deep = args.deep_iteration || args.print_data_log;
    for path in &args.files {
        println!("Dumping {}", path.display());
        let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        let start: i64 = path
            .file_stem()
            .and_then(|s| s.to_str())
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        println!("Log starting offset: {start}");
        let mut iter = BatchIter::new(&bytes);
        while let Some(item) = iter.next() {
            let (position, raw) = match item {
                Ok(x) => x,
                Err(e) => {
                    let invalid = bytes.len() - iter.position();
                    println!(
                        "Found {invalid} invalid bytes at the end of {}: {e}",
                        path.display()
                    );
                    break;
                }
            };
            let valid = batch::validate(raw);
            let header = match &valid {
                Ok(h) => *h,
                Err(_) => BatchHeader::parse(raw)?,
            };
            println!(
                "baseOffset: {} lastOffset: {} count: {} baseSequence: {} lastSequence: {} producerId: {} producerEpoch: {} partitionLeaderEpoch: {} isTransactional: {} isControl: {} position: {position} {}: {} size: {} magic: {} compresscodec: {} crc: {} isvalid: {}",
                header.base_offset,
                header.last_offset(),
                header.records_count,
                header.base_sequence,
                header.last_sequence(),
                header.producer_id,
                header.producer_epoch,
                header.partition_leader_epoch,
                header.is_transactional(),
                header.is_control(),
                if header.is_log_append_time() { "LogAppendTime" } else { "CreateTime" },
                header.max_timestamp,
                raw.len(),
                header.magic,
                codec(&header),
                header.crc,
                valid.is_ok()
            );
            if !deep || valid.is_err() {
                continue;
            }
            let records = match ferrolog_records::decode(raw, 1 << 30) {
                Ok(records) => records,
                Err(e) => {
                    println!("| cannot decode the records of this batch: {e}");
                    continue;
                }
            };
            for r in records {
                let timestamp = if header.is_log_append_time() {
                    header.max_timestamp
                } else {
                    r.timestamp
                };
                let mut line = format!(
                    "| offset: {} {}: {timestamp} keySize: {} valueSize: {} sequence: {} headerKeys: [{}]",
                    r.offset,
                    if header.is_log_append_time() { "LogAppendTime" } else { "CreateTime" },
                    r.key.as_ref().map_or(-1, |k| k.len() as i64),
                    r.value.as_ref().map_or(-1, |v| v.len() as i64),
                    r.sequence,
                    r.headers.keys().map(|k| k.to_string()).collect::<Vec<_>>().join(",")
                );
                if args.print_data_log {
                    let text = |b: &Option<Bytes>| {
                        b.as_ref().map_or("null".to_string(), |b| {
                            String::from_utf8_lossy(b).to_string()
                        })
                    };
                    line.push_str(&format!(
                        " key: {} payload: {}",
                        text(&r.key),
                        text(&r.value)
                    ));
                }
                println!("{line}");
            }
        }
    }
    Ok(())
}
