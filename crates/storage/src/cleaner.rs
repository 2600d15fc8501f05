//! Log compaction: keep the latest record per key (Kafka's log cleaner, simplified).
//!
//! A pass over a log with `cleanup.policy` containing `compact`:
//! 1. The dirty section runs from the cleaner checkpoint (`first_dirty`) to the first segment
//!    that must not be cleaned yet: the active segment, one reaching above the high watermark,
//!    or one younger than `min.compaction.lag.ms`. The pass runs when dirty bytes / all bytes
//!    ≥ `min.cleanable.dirty.ratio`, or when a dirty segment is older than
//!    `max.compaction.lag.ms`.
//! 2. An offset map (key → latest offset) is built over the dirty section, bounded by
//!    `log.cleaner.dedupe.buffer.size`; when full, the section ends at the batch reached.
//! 3. Every segment below the section's end is rewritten into `<base>.log.cleaned`: a record is
//!    kept if no later record has its key; a tombstone (null value) also goes once its segment is
//!    older than `delete.retention.ms`. Offsets never change; a batch keeps its producer fields
//!    and codec; a batch with nothing left is dropped, unless it is its producer's last one.
//!    Control batches are kept as they are.
//! 4. The cleaned file is fsynced and renamed `<base>.log.swap` (the commit point), the old
//!    indexes are removed and the swap file is renamed over `<base>.log`; indexes are rebuilt.
//!    A crash before the rename to `.swap` leaves the old segment (the `.cleaned` file is deleted
//!    at start); a crash after it is finished at start by [`complete_swaps`].
//!
//! The pass holds the log's append lock (producers to that partition wait); Kafka cleans
//! without it and swaps under it.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use bytes::Bytes;

use crate::batch::{self, BatchHeader};
use crate::error::{BatchError, Result, StorageError};
use crate::fs::{self, Open};
use crate::log::Log;
use crate::segment::{file_stem, Segment};

/// What a cleaning pass did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct CleanStats {
    pub segments: usize,
    pub bytes_read: u64,
    pub bytes_written: u64,
    pub records_read: u64,
    pub records_removed: u64,
}

/// Bytes the offset map charges per key besides the key itself (its offset and map overhead).
const MAP_ENTRY_OVERHEAD: usize = 40;

fn corrupt(_: ferrolog_records::CodecError) -> StorageError {
    StorageError::Batch(BatchError::Corrupt("undecodable records during cleaning"))
}

/// Finishes interrupted swaps in `dir`; returns the base offsets whose segment was replaced.
pub fn complete_swaps(dir: &Path) -> Result<BTreeSet<i64>> {
    let mut swapped = BTreeSet::new();
    for path in fs::get().read_dir(dir)? {
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        let Some(base) = name
            .strip_suffix(".log.swap")
            .and_then(|s| s.parse::<i64>().ok())
        else {
            continue;
        };
        finish_swap(dir, base)?;
        swapped.insert(base);
    }
    Ok(swapped)
}

fn swap_path(dir: &Path, base: i64) -> PathBuf {
    dir.join(format!("{}.log.swap", file_stem(base)))
}

fn finish_swap(dir: &Path, base: i64) -> Result<()> {
    let stem = file_stem(base);
    for ext in ["index", "timeindex"] {
        match fs::get().remove_file(&dir.join(format!("{stem}.{ext}"))) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e.into()),
        }
    }
    fs::get().rename(&swap_path(dir, base), &dir.join(format!("{stem}.log")))?;
    // best effort: the rename is done; a directory that cannot be synced still holds it
    let _ = fs::get().sync_dir(dir);
    Ok(())
}

impl Log {
    /// The end of the cleanable section and whether a pass is due, for a log whose clean section
    /// ends at `first_dirty`.
    fn cleanable_end(&self, first_dirty: i64, now_ms: i64) -> (i64, bool) {
        let bases: Vec<i64> = self.segments.keys().copied().collect();
        let mut end = first_dirty;
        let (mut clean_bytes, mut dirty_bytes) = (0u64, 0u64);
        let mut overdue = false;
        for (i, base) in bases.iter().enumerate() {
            let segment = &self.segments[base];
            let Some(&next) = bases.get(i + 1) else { break }; // the active segment
                                                               // open transactions are not cleaned: their outcome decides what stays
            if next > self.last_stable_offset() {
                break;
            }
            if next <= first_dirty {
                clean_bytes += segment.size();
                continue;
            }
            if segment.is_empty() {
                end = next;
                continue;
            }
            let age = now_ms - segment.largest_timestamp();
            if age < self.config.min_compaction_lag_ms {
                break;
            }
            overdue |= age > self.config.max_compaction_lag_ms;
            dirty_bytes += segment.size();
            end = next;
        }
        let total = clean_bytes + dirty_bytes;
        let ratio = if total == 0 {
            0.0
        } else {
            dirty_bytes as f64 / total as f64
        };
        let due = end > first_dirty && (overdue || ratio >= self.config.min_cleanable_ratio);
        // kept tombstones whose delete.retention.ms has passed make the log cleanable too
        let tombstones_due = self.tombstones_expire_at.is_some_and(|at| now_ms >= at);
        (end, due || tombstones_due)
    }

    /// One compaction pass if one is due. Returns the new clean/dirty boundary (to checkpoint as
    /// the next `first_dirty`) and what was done.
    pub fn clean(
        &mut self,
        first_dirty: i64,
        dedupe_buffer_bytes: usize,
        now_ms: i64,
    ) -> Result<(i64, CleanStats)> {
        let first_dirty = first_dirty.max(self.log_start_offset());
        if !self.config.compact_policy {
            return Ok((first_dirty, CleanStats::default()));
        }
        let (mut end, due) = self.cleanable_end(first_dirty, now_ms);
        if !due {
            return Ok((first_dirty, CleanStats::default()));
        }
        // 2. the offset map over the dirty section
        let mut latest: HashMap<Bytes, i64> = HashMap::new();
        let mut map_bytes = 0usize;
        let mut stats = CleanStats::default();
        'build: for segment in self.segments.range(..end).map(|(_, s)| s) {
            let mut position = 0;
            while let Some(header) = segment.read_header(position)? {
                if header.last_offset() < first_dirty
                    || header.is_control()
                    || self.is_aborted(&header)
                {
                    position += header.size() as u64;
                    continue;
                }
                if header.base_offset >= end {
                    break 'build;
                }
                let records = ferrolog_records::decode(
                    &segment.read_batch(position, &header)?,
                    self.config.max_decompressed_bytes(),
                )
                .map_err(corrupt)?;
                let grows: usize = records
                    .iter()
                    .filter_map(|r| r.key.as_ref())
                    .filter(|k| !latest.contains_key(*k))
                    .map(|k| k.len() + MAP_ENTRY_OVERHEAD)
                    .sum();
                if map_bytes + grows > dedupe_buffer_bytes && !latest.is_empty() {
                    // full: this pass ends where the map ends
                    end = header.base_offset;
                    break 'build;
                }
                map_bytes += grows;
                for r in records {
                    if let Some(key) = r.key {
                        latest.insert(key, r.offset);
                    }
                }
                position += header.size() as u64;
            }
        }
        // 3 + 4. rewrite every segment below `end`
        let mut tombstone_deadline: Option<i64> = None;
        let bases: Vec<i64> = self.segments.range(..end).map(|(&b, _)| b).collect();
        for base in bases {
            let next = self.segments.range(base + 1..).next().map(|(&b, _)| b);
            if next.is_none_or(|n| n > end) {
                break; // a segment straddling `end` waits for the next pass
            }
            let segment = &self.segments[&base];
            let tombstones_expire =
                now_ms - segment.largest_timestamp() > self.config.delete_retention_ms;
            let expiry = segment
                .largest_timestamp()
                .saturating_add(self.config.delete_retention_ms)
                .saturating_add(1);
            let cleaned = self.dir.join(format!("{}.log.cleaned", file_stem(base)));
            let out = fs::get().open(&cleaned, Open::Truncate)?;
            let mut written = 0u64;
            let mut position = 0;
            let mut changed = false;
            while let Some(header) = segment.read_header(position)? {
                let bytes = segment.read_batch(position, &header)?;
                position += header.size() as u64;
                stats.bytes_read += bytes.len() as u64;
                let (kept, kept_tombstone) =
                    self.clean_batch(&header, &bytes, &latest, tombstones_expire, &mut stats)?;
                if kept_tombstone {
                    tombstone_deadline =
                        Some(tombstone_deadline.map_or(expiry, |at: i64| at.min(expiry)));
                }
                let kept: &[u8] = match &kept {
                    Kept::Whole => &bytes,
                    Kept::Part(rewritten) => {
                        changed = true;
                        rewritten
                    }
                    Kept::Nothing => {
                        changed = true;
                        &[]
                    }
                };
                out.write_all_at(kept, written)?;
                written += kept.len() as u64;
            }
            if !changed {
                drop(out);
                fs::get().remove_file(&cleaned)?;
                continue;
            }
            out.sync_data()?;
            drop(out);
            stats.bytes_written += written;
            stats.segments += 1;
            fs::get().rename(&cleaned, &swap_path(&self.dir, base))?; // commit point
            let old = self.segments.remove(&base).expect("segment present");
            drop(old); // readers holding slices keep the old inode open
            finish_swap(&self.dir, base)?;
            let (mut replaced, _) =
                Segment::open(&self.dir, base, self.config.segment_config(), now_ms)?;
            replaced.recover(usize::MAX, |_| {})?;
            replaced.on_roll()?;
            self.segments.insert(base, replaced);
        }
        self.tombstones_expire_at = tombstone_deadline;
        Ok((end, stats))
    }

    fn clean_batch(
        &self,
        header: &BatchHeader,
        bytes: &[u8],
        latest: &HashMap<Bytes, i64>,
        tombstones_expire: bool,
        stats: &mut CleanStats,
    ) -> Result<(Kept, bool)> {
        if header.is_control() {
            return Ok((Kept::Whole, false));
        }
        // records of aborted transactions go (their keys were kept out of the offset map); the
        // producer's epoch survives in the transaction's marker, which stays
        if self.is_aborted(header) {
            return Ok((Kept::Nothing, false));
        }
        let records = ferrolog_records::decode(bytes, self.config.max_decompressed_bytes())
            .map_err(corrupt)?;
        stats.records_read += records.len() as u64;
        let total = records.len();
        let retained: Vec<_> = records
            .into_iter()
            .filter(|r| {
                let Some(key) = &r.key else { return true };
                let newest = latest.get(key).is_none_or(|&offset| r.offset >= offset);
                newest && !(r.value.is_none() && tombstones_expire)
            })
            .collect();
        stats.records_removed += (total - retained.len()) as u64;
        let kept_tombstone = retained.iter().any(|r| r.value.is_none());
        if retained.len() == total {
            return Ok((Kept::Whole, kept_tombstone));
        }
        if retained.is_empty() {
            // keep the producer's newest batch so its sequence numbers survive
            if header.has_producer_id()
                && self
                    .producers
                    .is_last_batch(header.producer_id, header.last_offset())
            {
                return Ok((Kept::Whole, false));
            }
            return Ok((Kept::Nothing, false));
        }
        let codec =
            ferrolog_records::compression_from_attributes(header.attributes).map_err(corrupt)?;
        let log_append_time = header.is_log_append_time().then_some(header.max_timestamp);
        let mut rewritten = ferrolog_records::encode(
            &retained,
            codec,
            self.config.compression_levels,
            log_append_time,
        )
        .map_err(corrupt)?;
        batch::set_partition_leader_epoch(&mut rewritten, header.partition_leader_epoch);
        Ok((Kept::Part(rewritten), kept_tombstone))
    }
}

enum Kept {
    Whole,
    Part(Vec<u8>),
    Nothing,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::{LogConfig, LogOpenOptions, ReadBound};
    use ferrolog_records::Compression;
    use std::fs;

    fn config() -> LogConfig {
        LogConfig {
            segment_bytes: 600,
            index_interval_bytes: 100,
            segment_index_bytes: 800,
            compact_policy: true,
            delete_policy: false,
            min_cleanable_ratio: 0.01,
            delete_retention_ms: 1_000,
            ..LogConfig::default()
        }
    }

    fn open(dir: &Path, clean: bool) -> Log {
        Log::open(
            dir,
            "c",
            0,
            [2; 16],
            config(),
            LogOpenOptions {
                recovery_point: 0,
                log_start_offset: 0,
                clean_shutdown: clean,
                now_ms: 0,
            },
        )
        .unwrap()
    }

    fn put(log: &mut Log, key: &str, value: Option<&str>, ts: i64, codec: Compression) {
        let r = ferrolog_records::plain_record(
            Some(Bytes::from(key.to_string())),
            value.map(|v| Bytes::from(v.to_string())),
            vec![],
            ts,
        );
        let mut batch = ferrolog_records::encode(&[r], codec, Default::default(), None).unwrap();
        log.append_as_leader(&mut batch, 0, ts).unwrap();
        let end = log.log_end_offset();
        log.update_high_watermark(end);
    }

    fn contents(log: &Log) -> Vec<(i64, String, Option<String>)> {
        let mut out = Vec::new();
        let mut offset = log.log_start_offset();
        while offset < log.log_end_offset() {
            let read = log.read(offset, 1 << 20, ReadBound::LogEnd, true).unwrap();
            let Some(slice) = read.slice else { break };
            let bytes = slice.read().unwrap();
            let mut next = offset;
            for item in batch::BatchIter::new(&bytes) {
                let Ok((_, b)) = item else { break };
                for r in ferrolog_records::decode(b, 1 << 20).unwrap() {
                    if r.offset >= offset {
                        out.push((
                            r.offset,
                            String::from_utf8(r.key.unwrap().to_vec()).unwrap(),
                            r.value.map(|v| String::from_utf8(v.to_vec()).unwrap()),
                        ));
                    }
                }
                next = BatchHeader::parse(b).unwrap().next_offset();
            }
            offset = next;
        }
        out
    }

    /// A transactional write of `key` by `producer_id` (sequence `seq`).
    fn put_transactional(
        log: &mut Log,
        key: &str,
        value: &str,
        producer_id: i64,
        seq: i32,
        ts: i64,
    ) {
        let r = ferrolog_records::Record {
            producer_id,
            producer_epoch: 0,
            sequence: seq,
            transactional: true,
            ..ferrolog_records::plain_record(
                Some(Bytes::from(key.to_string())),
                Some(Bytes::from(value.to_string())),
                vec![],
                ts,
            )
        };
        let mut batch =
            ferrolog_records::encode(&[r], Compression::None, Default::default(), None).unwrap();
        log.append_as_leader(&mut batch, 0, ts).unwrap();
        let end = log.log_end_offset();
        log.update_high_watermark(end);
    }

    #[test]
    fn aborted_writes_are_removed_and_open_transactions_are_not_cleaned() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = open(dir.path(), true);
        put(&mut log, "k", Some("committed"), 1000, Compression::None);
        // an aborted transaction overwrites k: after cleaning, k keeps its committed value
        put_transactional(&mut log, "k", "aborted", 7, 0, 1001);
        log.append_marker(7, 0, false, 0, 0, 1001).unwrap();
        // filler closes segments; then a transaction stays open, with more filler after it
        for i in 0..15 {
            put(
                &mut log,
                &format!("f{}", i % 3),
                Some("x"),
                1002 + i,
                Compression::None,
            );
        }
        let open_at = log.log_end_offset();
        put_transactional(&mut log, "open", "pending", 8, 0, 1020);
        for i in 0..15 {
            put(
                &mut log,
                &format!("f{}", i % 3),
                Some("y"),
                1021 + i,
                Compression::None,
            );
        }
        let (cleaned_to, _) = log.clean(0, 1 << 20, 100_000).unwrap();
        assert!(
            cleaned_to > 0 && cleaned_to <= open_at,
            "the pass stops at the open transaction ({open_at}), got {cleaned_to}"
        );
        let kv: Vec<(String, Option<String>)> =
            contents(&log).into_iter().map(|(_, k, v)| (k, v)).collect();
        assert!(
            kv.contains(&("k".into(), Some("committed".into()))),
            "{kv:?}"
        );
        assert!(
            !kv.contains(&("k".into(), Some("aborted".into()))),
            "{kv:?}"
        );
        assert!(kv.contains(&("open".into(), Some("pending".into()))));
        // once it commits, the rest is cleanable
        log.append_marker(8, 0, true, 0, 0, 1100).unwrap();
        let end = log.log_end_offset();
        log.update_high_watermark(end);
        let (second, _) = log.clean(cleaned_to, 1 << 20, 100_000).unwrap();
        assert!(
            second > open_at,
            "cleanable past the committed transaction, got {second}"
        );
        let kv: Vec<(String, Option<String>)> =
            contents(&log).into_iter().map(|(_, k, v)| (k, v)).collect();
        assert!(
            kv.contains(&("k".into(), Some("committed".into()))),
            "{kv:?}"
        );
        assert!(
            kv.contains(&("open".into(), Some("pending".into()))),
            "{kv:?}"
        );
    }

    #[test]
    fn keeps_the_latest_value_per_key_with_offsets_and_codecs() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = open(dir.path(), true);
        let codecs = [
            Compression::None,
            Compression::Gzip,
            Compression::Snappy,
            Compression::Lz4,
            Compression::Zstd,
        ];
        for i in 0..40 {
            put(
                &mut log,
                &format!("k{}", i % 4),
                Some(&format!("v{i}")),
                1000 + i,
                codecs[i as usize % 5],
            );
        }
        put(&mut log, "k0", None, 1040, Compression::None); // tombstone for k0 at offset 40
        put(&mut log, "k9", Some("last"), 1041, Compression::None);
        let active = *log.segments.keys().last().unwrap();
        let (end, stats) = log.clean(0, 1 << 20, 1045).unwrap();
        assert_eq!(
            end, active,
            "everything below the active segment is cleaned"
        );
        assert!(stats.records_removed > 30, "{stats:?}");
        let kept = contents(&log);
        // offsets preserved, one record per key below the end, newest values
        let below: Vec<_> = kept.iter().filter(|(o, _, _)| *o < end).collect();
        let keys: BTreeSet<_> = below.iter().map(|(_, k, _)| k.clone()).collect();
        assert_eq!(below.len(), keys.len(), "{below:?}");
        assert!(kept
            .iter()
            .any(|(o, k, v)| *o == 39 && k == "k3" && v.as_deref() == Some("v39")));
        assert!(kept.iter().all(|(o, k, _)| !(k == "k1" && *o < 37)));
        assert_eq!(log.log_end_offset(), 42);
        // the log still reads and appends normally, and survives a restart
        put(&mut log, "k1", Some("after"), 1050, Compression::None);
        log.close().unwrap();
        drop(log);
        let log = open(dir.path(), false);
        assert_eq!(
            contents(&log),
            kept.iter()
                .cloned()
                .chain([(42, "k1".into(), Some("after".into()))])
                .collect::<Vec<_>>()
        );
    }

    #[test]
    fn tombstones_go_after_delete_retention_and_the_active_segment_is_never_cleaned() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = open(dir.path(), true);
        for i in 0..10 {
            put(
                &mut log,
                "a",
                Some(&format!("v{i}")),
                1000,
                Compression::None,
            );
        }
        put(&mut log, "a", None, 1000, Compression::None);
        for i in 0..10 {
            put(
                &mut log,
                "b",
                Some(&format!("w{i}")),
                1000,
                Compression::None,
            );
        }
        // tombstone still within delete.retention.ms: kept
        let (end, _) = log.clean(0, 1 << 20, 1500).unwrap();
        let kept = contents(&log);
        assert!(
            kept.iter().any(|(_, k, v)| k == "a" && v.is_none()),
            "{kept:?}"
        );
        assert!(kept.iter().all(|(_, k, v)| k != "a" || v.is_none()));
        // later the tombstone goes too, in a pass started by its expiry alone (nothing new is dirty)
        let (again, _) = log.clean(end, 1 << 20, 1600).unwrap();
        assert_eq!(again, end, "nothing due yet");
        assert!(contents(&log).iter().any(|(_, k, _)| k == "a"));
        log.clean(end, 1 << 20, 10_000).unwrap();
        let kept = contents(&log);
        assert!(kept.iter().all(|(_, k, _)| k != "a"), "{kept:?}");
        // the active segment's records are untouched
        let active = *log.segments.keys().last().unwrap();
        assert!(end <= active);
        assert!(
            kept.iter().filter(|(o, _, _)| *o >= active).count() as i64
                == log.log_end_offset() - active
        );
    }

    #[test]
    fn a_small_dedupe_buffer_cleans_in_several_passes() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = open(dir.path(), true);
        for i in 0..60 {
            put(
                &mut log,
                &format!("key-{}", i % 20),
                Some("x"),
                1000 + i,
                Compression::None,
            );
        }
        let mut first_dirty = 0;
        let mut passes = 0;
        loop {
            let (end, stats) = log
                .clean(first_dirty, 3 * (5 + MAP_ENTRY_OVERHEAD), 5000)
                .unwrap();
            if end == first_dirty && stats == CleanStats::default() {
                break;
            }
            first_dirty = end;
            passes += 1;
            assert!(passes < 100);
        }
        assert!(passes > 2, "passes {passes}");
    }

    #[test]
    fn an_interrupted_swap_is_finished_at_start() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = open(dir.path(), true);
        for i in 0..20 {
            put(
                &mut log,
                "same",
                Some(&format!("v{i}")),
                1000,
                Compression::None,
            );
        }
        log.close().unwrap();
        let before = contents(&log);
        drop(log);
        // a crash after the commit point: the .swap holds the cleaned first segment
        let first = dir.path().join("00000000000000000000.log");
        let original = fs::read(&first).unwrap();
        let headers: Vec<_> = batch::BatchIter::new(&original)
            .map(|b| b.unwrap().1.to_vec())
            .collect();
        fs::write(
            dir.path().join("00000000000000000000.log.swap"),
            headers.last().unwrap(),
        )
        .unwrap();
        // and a stale .cleaned file from an earlier crash
        fs::write(dir.path().join("00000000000000000004.log.cleaned"), b"junk").unwrap();
        let log = open(dir.path(), true);
        assert!(!dir.path().join("00000000000000000000.log.swap").exists());
        assert!(!dir.path().join("00000000000000000004.log.cleaned").exists());
        let after = contents(&log);
        assert_eq!(after.len(), before.len() - (headers.len() - 1));
        assert_eq!(log.log_end_offset(), 20);
    }
}
