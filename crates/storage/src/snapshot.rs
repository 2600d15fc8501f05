//! Kafka's producer-state snapshots (`{offset:020}.snapshot`) and aborted-transaction indexes
//! (`{segment base:020}.txnindex`), byte for byte, so a log opens without reading every batch
//! again and Kafka's tools read these files.
//!
//! Snapshot, version 1: `[int16 version][uint32 crc32c of what follows][int32 count]` then per
//! producer `[int64 producer id][int16 epoch][int32 last sequence][int64 last offset]
//! [int32 offset delta][int64 timestamp][int32 coordinator epoch][int64 current txn first
//! offset]` (-1: none). Txn index entry, 34 bytes: `[int16 version 0][int64 producer id]
//! [int64 first offset][int64 last offset][int64 last stable offset]`.

use std::path::{Path, PathBuf};

use crate::error::{Result, StorageError};
use crate::fs::{self, Open};
use crate::producer_state::AbortedTxn;

pub const SNAPSHOT_SUFFIX: &str = ".snapshot";
pub const TXN_INDEX_SUFFIX: &str = ".txnindex";
const ENTRY_SIZE: usize = 8 + 2 + 4 + 8 + 4 + 8 + 4 + 8;
const TXN_ENTRY_SIZE: usize = 34;

/// One producer in a snapshot: its epoch and its last batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SnapshotEntry {
    pub producer_id: i64,
    pub epoch: i16,
    pub last_sequence: i32,
    pub last_offset: i64,
    pub offset_delta: i32,
    pub timestamp: i64,
    pub coordinator_epoch: i32,
    pub txn_first_offset: i64,
}

pub fn snapshot_path(dir: &Path, offset: i64) -> PathBuf {
    dir.join(format!("{offset:020}{SNAPSHOT_SUFFIX}"))
}

pub fn txn_index_path(dir: &Path, segment_base: i64) -> PathBuf {
    dir.join(format!("{segment_base:020}{TXN_INDEX_SUFFIX}"))
}

fn corrupt(what: &'static str) -> StorageError {
    StorageError::Batch(crate::error::BatchError::Corrupt(what))
}

/// Writes a snapshot durably (temporary file, fsync, rename).
pub fn write_snapshot(dir: &Path, offset: i64, entries: &[SnapshotEntry]) -> Result<()> {
    let mut body = Vec::with_capacity(4 + entries.len() * ENTRY_SIZE);
    body.extend_from_slice(&(entries.len() as i32).to_be_bytes());
    for e in entries {
        body.extend_from_slice(&e.producer_id.to_be_bytes());
        body.extend_from_slice(&e.epoch.to_be_bytes());
        body.extend_from_slice(&e.last_sequence.to_be_bytes());
        body.extend_from_slice(&e.last_offset.to_be_bytes());
        body.extend_from_slice(&e.offset_delta.to_be_bytes());
        body.extend_from_slice(&e.timestamp.to_be_bytes());
        body.extend_from_slice(&e.coordinator_epoch.to_be_bytes());
        body.extend_from_slice(&e.txn_first_offset.to_be_bytes());
    }
    let mut bytes = Vec::with_capacity(6 + body.len());
    bytes.extend_from_slice(&1i16.to_be_bytes());
    bytes.extend_from_slice(&crc32c::crc32c(&body).to_be_bytes());
    bytes.extend_from_slice(&body);
    fs::write_atomically(&snapshot_path(dir, offset), &bytes)?;
    Ok(())
}

pub fn read_snapshot(path: &Path) -> Result<Vec<SnapshotEntry>> {
    let bytes = fs::get().read(path)?;
    if bytes.len() < 10 || bytes[..2] != 1i16.to_be_bytes() {
        return Err(corrupt("producer snapshot header"));
    }
    let crc = u32::from_be_bytes(bytes[2..6].try_into().expect("4 bytes"));
    let body = &bytes[6..];
    if crc32c::crc32c(body) != crc {
        return Err(corrupt("producer snapshot checksum"));
    }
    let count = i32::from_be_bytes(body[..4].try_into().expect("4 bytes"));
    if count < 0 || body.len() != 4 + count as usize * ENTRY_SIZE {
        return Err(corrupt("producer snapshot length"));
    }
    Ok(body[4..]
        .chunks_exact(ENTRY_SIZE)
        .map(|c| {
            let i64_at = |at: usize| i64::from_be_bytes(c[at..at + 8].try_into().expect("8 bytes"));
            let i32_at = |at: usize| i32::from_be_bytes(c[at..at + 4].try_into().expect("4 bytes"));
            SnapshotEntry {
                producer_id: i64_at(0),
                epoch: i16::from_be_bytes([c[8], c[9]]),
                last_sequence: i32_at(10),
                last_offset: i64_at(14),
                offset_delta: i32_at(22),
                timestamp: i64_at(26),
                coordinator_epoch: i32_at(34),
                txn_first_offset: i64_at(38),
            }
        })
        .collect())
}

/// Offsets of the snapshots in `dir`, ascending.
pub fn list_snapshots(dir: &Path) -> Result<Vec<i64>> {
    let mut out = Vec::new();
    for path in fs::get().read_dir(dir)? {
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        if let Some(stem) = name.strip_suffix(SNAPSHOT_SUFFIX) {
            if let Ok(offset) = stem.parse::<i64>() {
                out.push(offset);
            }
        }
    }
    out.sort_unstable();
    Ok(out)
}

/// Appends an aborted transaction to a segment's transaction index.
pub fn append_txn_index(
    dir: &Path,
    segment_base: i64,
    a: &AbortedTxn,
    last_stable: i64,
) -> Result<()> {
    let mut entry = [0u8; TXN_ENTRY_SIZE];
    entry[2..10].copy_from_slice(&a.producer_id.to_be_bytes());
    entry[10..18].copy_from_slice(&a.first_offset.to_be_bytes());
    entry[18..26].copy_from_slice(&a.last_offset.to_be_bytes());
    entry[26..34].copy_from_slice(&last_stable.to_be_bytes());
    let f = fs::get().open(&txn_index_path(dir, segment_base), Open::ReadWrite)?;
    f.write_all_at(&entry, f.size()?)?;
    Ok(())
}

/// The aborted transactions of a segment's index (none if it has no index); a torn last entry
/// is ignored.
pub fn read_txn_index(dir: &Path, segment_base: i64) -> Result<Vec<AbortedTxn>> {
    let bytes = match fs::get().read(&txn_index_path(dir, segment_base)) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e.into()),
    };
    Ok(bytes
        .chunks_exact(TXN_ENTRY_SIZE)
        .map(|c| {
            let i64_at = |at: usize| i64::from_be_bytes(c[at..at + 8].try_into().expect("8 bytes"));
            AbortedTxn {
                producer_id: i64_at(2),
                first_offset: i64_at(10),
                last_offset: i64_at(18),
            }
        })
        .collect())
}

/// Rewrites a segment's transaction index to hold exactly `entries` (removed when empty).
pub fn rewrite_txn_index(dir: &Path, segment_base: i64, entries: &[AbortedTxn]) -> Result<()> {
    let path = txn_index_path(dir, segment_base);
    match fs::get().remove_file(&path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e.into()),
    }
    for a in entries {
        append_txn_index(dir, segment_base, a, a.last_offset)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    #[test]
    fn snapshot_and_txn_index_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let entries = vec![
            SnapshotEntry {
                producer_id: 7,
                epoch: 2,
                last_sequence: 41,
                last_offset: 100,
                offset_delta: 4,
                timestamp: 1234,
                coordinator_epoch: -1,
                txn_first_offset: -1,
            },
            SnapshotEntry {
                producer_id: 9,
                epoch: 0,
                last_sequence: -1,
                last_offset: 90,
                offset_delta: 0,
                timestamp: 99,
                coordinator_epoch: 0,
                txn_first_offset: 88,
            },
        ];
        write_snapshot(dir.path(), 101, &entries).unwrap();
        assert_eq!(list_snapshots(dir.path()).unwrap(), vec![101]);
        assert_eq!(
            read_snapshot(&snapshot_path(dir.path(), 101)).unwrap(),
            entries
        );
        // a flipped byte is caught by the checksum
        let path = snapshot_path(dir.path(), 101);
        let mut bytes = fs::read(&path).unwrap();
        bytes[20] ^= 1;
        fs::write(&path, bytes).unwrap();
        assert!(read_snapshot(&path).is_err());

        let a = AbortedTxn {
            producer_id: 7,
            first_offset: 3,
            last_offset: 9,
        };
        append_txn_index(dir.path(), 0, &a, 9).unwrap();
        append_txn_index(
            dir.path(),
            0,
            &AbortedTxn {
                producer_id: 8,
                ..a
            },
            9,
        )
        .unwrap();
        assert_eq!(read_txn_index(dir.path(), 0).unwrap().len(), 2);
        rewrite_txn_index(dir.path(), 0, &[a]).unwrap();
        assert_eq!(read_txn_index(dir.path(), 0).unwrap(), vec![a]);
        assert!(read_txn_index(dir.path(), 50).unwrap().is_empty());
    }
}
