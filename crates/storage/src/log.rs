//! A partition's log: an ordered list of segments plus the offsets that bound it.
//!
//! Offsets: `log_start_offset ≤ high_watermark ≤ log_end_offset`. `recovery_point` is the offset
//! below which everything is known to be flushed; recovery after an unclean shutdown validates
//! from the segment holding it.
//!
//! Concurrency: not thread-safe. The broker's `Partition` holds it behind one lock (the append
//! lock). Reads take the lock only to resolve a [`FileSlice`] and read the bytes after releasing
//! it.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};

use crate::batch::{self, BatchHeader, BatchIter};
use crate::checkpoint;
use crate::epoch_cache::LeaderEpochCache;
use crate::error::{Result, StorageError};
use crate::fs;
use crate::marker;
use crate::producer_state::{AbortedTxn, ProducerInfo, ProducerStateManager, SequenceCheck};
use crate::segment::{DeletedSegment, FileSlice, Segment};
use crate::snapshot;
use crate::validator;

use crate::log_config::decode_error;
pub use crate::log_config::{LogConfig, DECOMPRESSION_RATIO_MAX};

/// What an append did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendResult {
    /// -1 when the request held no batches.
    pub first_offset: i64,
    pub last_offset: i64,
    /// The broker time stamped into LogAppendTime batches, else -1.
    pub log_append_time: i64,
    pub log_start_offset: i64,
    /// Records appended (0 for a duplicate).
    pub records: i64,
    pub duplicate: bool,
}

/// Where a read must stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadBound {
    /// Consumers (read_uncommitted).
    HighWatermark,
    /// read_committed consumers: below the first offset of any open transaction.
    LastStable,
    /// Followers and internal readers.
    LogEnd,
}

pub struct ReadResult {
    pub slice: Option<FileSlice>,
    pub high_watermark: i64,
    pub last_stable_offset: i64,
    pub log_start_offset: i64,
    pub log_end_offset: i64,
    /// For `ReadBound::LastStable`: aborted transactions with records from the read offset up
    /// to the last stable offset.
    pub aborted: Vec<AbortedTxn>,
}

pub struct Log {
    pub(crate) dir: PathBuf,
    topic: String,
    partition: i32,
    pub(crate) config: LogConfig,
    pub(crate) segments: BTreeMap<i64, Segment>,
    log_start_offset: i64,
    pub(crate) high_watermark: i64,
    recovery_point: i64,
    unflushed_messages: i64,
    last_flush_ms: i64,
    /// (epoch, start offset), ascending.
    epochs: LeaderEpochCache,
    pub(crate) producers: ProducerStateManager,
    /// Aborted transactions, by marker offset (rebuilt from the log at open).
    pub(crate) aborted: Vec<AbortedTxn>,
    /// When the oldest tombstone the cleaner kept becomes removable (in memory only).
    pub(crate) tombstones_expire_at: Option<i64>,
}

pub use crate::epoch_cache::LEADER_EPOCH_CHECKPOINT;
pub const PARTITION_METADATA: &str = "partition.metadata";

/// Kafka's directory name for a partition.
pub fn partition_dir_name(topic: &str, partition: i32) -> String {
    format!("{topic}-{partition}")
}

/// Kafka prints a topic id as URL-safe base64 without padding (22 characters).
pub fn uuid_to_kafka_string(id: &[u8; 16]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::with_capacity(22);
    let mut bits: u32 = 0;
    let mut count = 0;
    for &byte in id {
        bits = (bits << 8) | u32::from(byte);
        count += 8;
        while count >= 6 {
            count -= 6;
            out.push(ALPHABET[((bits >> count) & 0x3f) as usize] as char);
        }
    }
    if count > 0 {
        out.push(ALPHABET[((bits << (6 - count)) & 0x3f) as usize] as char);
    }
    out
}

pub struct LogOpenOptions {
    pub recovery_point: i64,
    pub log_start_offset: i64,
    pub clean_shutdown: bool,
    pub now_ms: i64,
}

impl Log {
    /// Opens or creates the log in `dir` (the partition directory). After an unclean shutdown the
    /// segments from the recovery point on are validated and their indexes rebuilt; a torn tail
    /// is truncated at the last valid batch and any later segment is removed.
    pub fn open(
        dir: &Path,
        topic: &str,
        partition: i32,
        topic_id: [u8; 16],
        config: LogConfig,
        options: LogOpenOptions,
    ) -> Result<Log> {
        fs::get().create_dir_all(dir)?;
        write_partition_metadata(dir, &topic_id)?;
        // A `.log.swap` is a cleaned segment whose swap a crash interrupted: finish it.
        let swapped = crate::cleaner::complete_swaps(dir)?;
        let mut base_offsets = Vec::new();
        for path in fs::get().read_dir(dir)? {
            let name = path
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .to_string();
            if name.ends_with(".deleted")
                || name.ends_with(".cleaned")
                || name.ends_with(".swap")
                || name.ends_with(".tmp")
            {
                let _ = fs::get().remove_file(&dir.join(&name));
                continue;
            }
            if let Some(stem) = name.strip_suffix(".log") {
                if let Ok(base) = stem.parse::<i64>() {
                    base_offsets.push(base);
                }
            }
        }
        base_offsets.sort_unstable();
        let mut log = Log {
            dir: dir.to_path_buf(),
            topic: topic.to_string(),
            partition,
            config,
            segments: BTreeMap::new(),
            log_start_offset: options.log_start_offset.max(0),
            high_watermark: 0,
            recovery_point: options.recovery_point.max(0),
            unflushed_messages: 0,
            last_flush_ms: options.now_ms,
            epochs: LeaderEpochCache::open(dir),
            producers: ProducerStateManager::new(),
            aborted: Vec::new(),
            tombstones_expire_at: None,
        };
        let segment_config = log.config.segment_config();
        let mut truncated_at: Option<usize> = None;
        for (i, &base) in base_offsets.iter().enumerate() {
            let (mut segment, valid) = Segment::open(dir, base, segment_config, options.now_ms)?;
            let next_base = base_offsets.get(i + 1).copied().unwrap_or(i64::MAX);
            let needs_recovery = !valid
                || swapped.contains(&base)
                || (!options.clean_shutdown && next_base > log.recovery_point);
            if needs_recovery {
                let truncated =
                    segment.recover(log.config.max_message_bytes.max(1 << 20) * 2, |_| {})?;
                if truncated > 0 {
                    tracing::warn!(
                        topic,
                        partition,
                        base,
                        truncated,
                        "truncated invalid bytes at the end of a segment"
                    );
                    truncated_at = Some(i);
                }
            }
            log.segments.insert(base, segment);
            if truncated_at.is_some() {
                break;
            }
        }
        if let Some(i) = truncated_at {
            for &base in &base_offsets[i + 1..] {
                let (segment, _) = Segment::open(dir, base, segment_config, options.now_ms)?;
                tracing::warn!(
                    topic,
                    partition,
                    base,
                    "deleting segment after a truncated one"
                );
                segment.delete_files()?;
            }
        }
        // Drop empty trailing segments that are not the only one (e.g. a roll interrupted by a crash).
        while log.segments.len() > 1 {
            let (&last_base, last) = log.segments.iter().next_back().expect("non-empty");
            if !last.is_empty() {
                break;
            }
            let segment = log.segments.remove(&last_base).expect("present");
            segment.delete_files()?;
        }
        if log.segments.is_empty() {
            let base = log.log_start_offset;
            let (segment, _) = Segment::open(dir, base, segment_config, options.now_ms)?;
            log.segments.insert(base, segment);
        }
        let first_base = *log.segments.keys().next().expect("one segment");
        log.log_start_offset = log.log_start_offset.max(first_base);
        let end = log.log_end_offset();
        log.recovery_point = log.recovery_point.min(end);
        log.high_watermark = end;
        // epochs beyond the log end are stale after truncation
        log.epochs.forget_past(end);
        log.rebuild_producer_state()?;
        Ok(log)
    }

    /// Producer state and aborted transactions: from the newest snapshot at or below the log
    /// end plus the batches after it (with the transaction indexes for the aborted transactions
    /// before it), or from every batch if there is no usable snapshot.
    fn rebuild_producer_state(&mut self) -> Result<()> {
        self.producers.clear();
        self.aborted.clear();
        let end = self.log_end_offset();
        let mut scan_from = self.log_start_offset;
        // snapshots past the end describe records a crash took: never use them later
        for o in snapshot::list_snapshots(&self.dir)? {
            if o > end {
                fs::get().remove_file(&snapshot::snapshot_path(&self.dir, o))?;
            }
        }
        let usable = snapshot::list_snapshots(&self.dir)?
            .into_iter()
            .rev()
            .find(|&o| o <= end && o >= self.log_start_offset);
        if let Some(offset) = usable {
            match snapshot::read_snapshot(&snapshot::snapshot_path(&self.dir, offset)) {
                Ok(entries) => {
                    self.producers.load(&entries);
                    scan_from = offset;
                    for &base in self.segments.keys() {
                        self.aborted.extend(
                            snapshot::read_txn_index(&self.dir, base)?
                                .into_iter()
                                .filter(|a| a.last_offset < offset),
                        );
                    }
                    self.aborted.sort_by_key(|a| a.last_offset);
                }
                Err(e) => tracing::warn!(offset, "ignoring a producer snapshot: {e}"),
            }
        }
        let first_segment = self
            .segments
            .range(..=scan_from)
            .next_back()
            .map_or(scan_from, |(&b, _)| b);
        for segment in self.segments.range(first_segment..).map(|(_, s)| s) {
            let mut position = 0;
            while let Some(header) = segment.read_header(position)? {
                if header.base_offset < scan_from {
                    position += header.size() as u64;
                    continue;
                }
                self.producers.update(&header);
                if header.is_control() && header.has_producer_id() {
                    let bytes = segment.read_batch(position, &header)?;
                    if let Some(commit) = marker::is_commit_batch(&bytes) {
                        let offset = header.base_offset;
                        if let Some(a) =
                            self.producers
                                .complete_txn(header.producer_id, offset, commit)
                        {
                            self.aborted.push(a);
                        }
                    }
                }
                position += header.size() as u64;
            }
        }
        // the transaction indexes of the scanned segments now match the log
        let bases: Vec<i64> = self
            .segments
            .range(first_segment..)
            .map(|(&b, _)| b)
            .collect();
        for (i, &base) in bases.iter().enumerate() {
            let next = bases.get(i + 1).copied().unwrap_or(i64::MAX);
            let mine: Vec<AbortedTxn> = self
                .aborted
                .iter()
                .filter(|a| a.last_offset >= base && a.last_offset < next)
                .copied()
                .collect();
            snapshot::rewrite_txn_index(&self.dir, base, &mine)?;
        }
        Ok(())
    }

    /// Writes a producer snapshot at the log end and keeps the two newest at or above the log
    /// start.
    pub fn write_producer_snapshot(&mut self) -> Result<()> {
        let offset = self.log_end_offset();
        snapshot::write_snapshot(&self.dir, offset, &self.producers.snapshot_entries())?;
        let all = snapshot::list_snapshots(&self.dir)?;
        let keep_from = all.len().saturating_sub(2);
        for (i, o) in all.into_iter().enumerate() {
            if i < keep_from || o < self.log_start_offset {
                let _ = fs::get().remove_file(&snapshot::snapshot_path(&self.dir, o));
            }
        }
        Ok(())
    }

    /// Appends a transaction marker (a control batch) for `producer_id` at `producer_epoch`: the
    /// end of its transaction in this partition. Returns the marker's offset.
    pub fn append_marker(
        &mut self,
        producer_id: i64,
        producer_epoch: i16,
        commit: bool,
        coordinator_epoch: i32,
        leader_epoch: i32,
        now_ms: i64,
    ) -> Result<i64> {
        if let Some(current) = self.producers.epoch_of(producer_id) {
            if producer_epoch < current {
                return Err(StorageError::ProducerFenced {
                    producer_id,
                    epoch: producer_epoch,
                    current,
                });
            }
        }
        let mut bytes = marker::encode(
            producer_id,
            producer_epoch,
            commit,
            coordinator_epoch,
            now_ms,
        )?;
        let offset = self.log_end_offset();
        self.assign_epoch(leader_epoch, offset)?;
        batch::set_base_offset(&mut bytes, offset);
        batch::set_partition_leader_epoch(&mut bytes, leader_epoch);
        let header = batch::validate(&bytes)?;
        self.maybe_roll(bytes.len(), header.max_timestamp, now_ms)?;
        self.active_mut().append(&bytes, &header)?;
        self.producers.update(&header);
        if let Some(a) = self.producers.complete_txn(producer_id, offset, commit) {
            let base = self.active().base_offset();
            snapshot::append_txn_index(&self.dir, base, &a, self.last_stable_offset())?;
            self.aborted.push(a);
        }
        self.unflushed_messages += 1;
        if self.unflushed_messages >= self.config.flush_messages {
            self.flush()?;
        }
        let start = self.log_start_offset;
        self.aborted.retain(|a| a.last_offset >= start);
        Ok(offset)
    }

    /// The last stable offset: the high watermark, or the first offset of the oldest open
    /// transaction if that is lower.
    pub fn last_stable_offset(&self) -> i64 {
        self.producers
            .first_unstable_offset()
            .map_or(self.high_watermark, |f| f.min(self.high_watermark))
    }

    /// Whether a batch's records belong to an aborted transaction.
    pub(crate) fn is_aborted(&self, header: &BatchHeader) -> bool {
        header.is_transactional()
            && !header.is_control()
            && self.aborted.iter().any(|a| {
                a.producer_id == header.producer_id
                    && a.first_offset <= header.base_offset
                    && header.last_offset() <= a.last_offset
            })
    }

    /// Aborted transactions with records in `from..upper`.
    pub fn aborted_transactions(&self, from: i64, upper: i64) -> Vec<AbortedTxn> {
        self.aborted
            .iter()
            .filter(|a| a.last_offset >= from && a.first_offset < upper)
            .copied()
            .collect()
    }

    /// `producer.id.expiration.ms`: forgets idle producers without an open transaction.
    pub fn expire_producers(&mut self, now_ms: i64, expiration_ms: i64) -> usize {
        self.producers.expire(now_ms, expiration_ms)
    }

    /// The producers that wrote to this partition, for DescribeProducers.
    pub fn producers(&self) -> Vec<ProducerInfo> {
        self.producers.describe()
    }

    pub fn topic(&self) -> &str {
        &self.topic
    }
    pub fn partition(&self) -> i32 {
        self.partition
    }
    pub fn dir(&self) -> &Path {
        &self.dir
    }
    pub fn config(&self) -> &LogConfig {
        &self.config
    }
    pub fn set_config(&mut self, config: LogConfig) {
        self.config = config;
    }
    pub fn log_start_offset(&self) -> i64 {
        self.log_start_offset
    }
    pub fn log_end_offset(&self) -> i64 {
        self.active().next_offset()
    }
    pub fn high_watermark(&self) -> i64 {
        self.high_watermark
    }
    pub fn recovery_point(&self) -> i64 {
        self.recovery_point
    }
    pub fn segment_count(&self) -> usize {
        self.segments.len()
    }
    pub fn size_bytes(&self) -> u64 {
        self.segments.values().map(Segment::size).sum()
    }
    pub fn latest_epoch(&self) -> Option<i32> {
        self.epochs.latest()
    }
    pub fn epochs(&self) -> &[(i32, i64)] {
        self.epochs.entries()
    }

    /// Moves the high watermark; it never goes back and never passes the log end.
    pub fn update_high_watermark(&mut self, offset: i64) {
        let offset = offset.clamp(self.log_start_offset, self.log_end_offset());
        assert!(offset >= self.high_watermark || offset == self.log_end_offset());
        self.high_watermark = self.high_watermark.max(offset);
    }

    fn active(&self) -> &Segment {
        self.segments
            .values()
            .next_back()
            .expect("a log always has an active segment")
    }
    fn active_mut(&mut self) -> &mut Segment {
        self.segments
            .values_mut()
            .next_back()
            .expect("a log always has an active segment")
    }

    /// Validates the producer's batches, assigns offsets and appends them as leader in
    /// `leader_epoch`. `records` is rewritten in place (base offsets, leader epoch, LogAppendTime).
    pub fn append_as_leader(
        &mut self,
        records: &mut Vec<u8>,
        leader_epoch: i32,
        now_ms: i64,
    ) -> Result<AppendResult> {
        // 1. validate every batch before touching the log
        let headers = validator::validate_for_append(&self.config, records, now_ms)?;
        if headers.is_empty() {
            return Ok(AppendResult {
                first_offset: -1,
                last_offset: -1,
                log_append_time: -1,
                log_start_offset: self.log_start_offset,
                records: 0,
                duplicate: false,
            });
        }
        if records.len() as u64 > self.config.segment_bytes {
            return Err(StorageError::RecordSetTooLarge {
                size: records.len(),
                limit: self.config.segment_bytes as usize,
            });
        }
        // 2. idempotence: a retry of a batch already in the log gets its original offsets
        if let [(_, header)] = headers.as_slice() {
            if let SequenceCheck::Duplicate(meta) = self.producers.check(header)? {
                return Ok(AppendResult {
                    first_offset: meta.first_offset,
                    last_offset: meta.last_offset,
                    log_append_time: if self.config.log_append_time {
                        meta.max_timestamp
                    } else {
                        -1
                    },
                    log_start_offset: self.log_start_offset,
                    records: 0,
                    duplicate: true,
                });
            }
        } else {
            for (_, header) in &headers {
                if let SequenceCheck::Duplicate(_) = self.producers.check(header)? {
                    return Err(StorageError::InvalidRecord(
                        "duplicate batch inside a multi-batch request",
                    ));
                }
            }
        }
        // 3. assign offsets in place and append
        let first_offset = self.log_end_offset();
        let mut next = first_offset;
        let log_append_time = if self.config.log_append_time {
            now_ms
        } else {
            -1
        };
        let mut count = 0i64;
        self.assign_epoch(leader_epoch, first_offset)?;
        for (position, mut header) in headers {
            let size = header.size();
            let bytes = &mut records[position..position + size];
            batch::set_base_offset(bytes, next);
            batch::set_partition_leader_epoch(bytes, leader_epoch);
            if self.config.log_append_time {
                batch::set_log_append_time(bytes, now_ms);
                header.attributes |= batch::ATTR_TIMESTAMP_TYPE;
                header.max_timestamp = now_ms;
            }
            header.base_offset = next;
            header.partition_leader_epoch = leader_epoch;
            self.maybe_roll(size, header.max_timestamp, now_ms)?;
            self.active_mut().append(bytes, &header)?;
            self.producers.update(&header);
            next = header.next_offset();
            count += i64::from(header.records_count);
        }
        debug_assert_eq!(next, self.log_end_offset());
        self.unflushed_messages += count;
        if self.unflushed_messages >= self.config.flush_messages {
            self.flush()?;
        }
        Ok(AppendResult {
            first_offset,
            last_offset: next - 1,
            log_append_time,
            log_start_offset: self.log_start_offset,
            records: count,
            duplicate: false,
        })
    }

    /// Appends batches a follower fetched from its leader, offsets and leader epochs as the
    /// leader assigned them. Batches the log already has are skipped; a gap is an error.
    /// Returns the new log end offset.
    pub fn append_as_follower(&mut self, records: &[u8], now_ms: i64) -> Result<i64> {
        for item in BatchIter::new(records) {
            // a fetch response may end with a partial batch: stop there
            let Ok((_, bytes)) = item else { break };
            let header = batch::validate(bytes)?;
            let end = self.log_end_offset();
            if header.next_offset() <= end {
                continue;
            }
            if header.base_offset != end {
                return Err(StorageError::InvalidRecord(
                    "replicated batch does not start at the log end",
                ));
            }
            self.assign_epoch(header.partition_leader_epoch, header.base_offset)?;
            self.maybe_roll(bytes.len(), header.max_timestamp, now_ms)?;
            self.active_mut().append(bytes, &header)?;
            self.producers.update(&header);
            if header.is_control() {
                let commit = marker::is_commit_batch(bytes) == Some(true);
                if let Some(a) =
                    self.producers
                        .complete_txn(header.producer_id, header.base_offset, commit)
                {
                    let base = self.active().base_offset();
                    snapshot::append_txn_index(&self.dir, base, &a, self.last_stable_offset())?;
                    self.aborted.push(a);
                }
            }
            self.unflushed_messages += i64::from(header.records_count);
        }
        if self.unflushed_messages >= self.config.flush_messages {
            self.flush()?;
        }
        Ok(self.log_end_offset())
    }

    /// OffsetForLeaderEpoch: the largest epoch not above `epoch` this log knows, and the offset
    /// where it ended (the start of the next epoch, or the log end for the latest); `None` if
    /// the log has no such epoch.
    pub fn end_offset_for_epoch(&self, epoch: i32) -> Option<(i32, i64)> {
        self.epochs.end_offset_for(epoch, self.log_end_offset())
    }

    /// The leader epoch of the record at `offset`, if the log knows one.
    pub fn epoch_at(&self, offset: i64) -> Option<i32> {
        self.epochs.epoch_at(offset)
    }

    /// Starts the log over at `offset` (a follower far behind a leader whose log now starts
    /// later): every segment goes.
    pub fn reset_to(&mut self, offset: i64, now_ms: i64) -> Result<()> {
        let bases: Vec<i64> = self.segments.keys().copied().collect();
        for base in bases {
            if let Some(segment) = self.segments.remove(&base) {
                segment.delete_files()?;
                snapshot::rewrite_txn_index(&self.dir, base, &[])?;
            }
        }
        for o in snapshot::list_snapshots(&self.dir)? {
            fs::get().remove_file(&snapshot::snapshot_path(&self.dir, o))?;
        }
        let (segment, _) = Segment::open(&self.dir, offset, self.config.segment_config(), now_ms)?;
        self.segments.insert(offset, segment);
        self.log_start_offset = offset;
        self.high_watermark = offset;
        self.recovery_point = offset;
        self.epochs.clear()?;
        self.aborted.clear();
        self.rebuild_producer_state()?;
        Ok(())
    }

    /// Records that `epoch` starts at `start_offset` (a new leader does, before any append).
    pub fn assign_epoch(&mut self, epoch: i32, start_offset: i64) -> Result<()> {
        Ok(self.epochs.assign(epoch, start_offset)?)
    }

    fn maybe_roll(
        &mut self,
        batch_size: usize,
        batch_max_timestamp: i64,
        now_ms: i64,
    ) -> Result<()> {
        let active = self.active();
        let full = active.size() + batch_size as u64 > self.config.segment_bytes;
        let aged = active.should_roll_by_time(self.config.segment_ms, now_ms, batch_max_timestamp);
        if !active.is_empty() && (full || aged || active.index_full()) {
            self.roll(now_ms)?;
        }
        Ok(())
    }

    /// Closes the active segment and starts a new one at the log end offset.
    pub fn roll(&mut self, now_ms: i64) -> Result<()> {
        let base = self.log_end_offset();
        if self.active().base_offset() == base {
            return Ok(());
        }
        self.active_mut().on_roll()?;
        let (segment, _) = Segment::open(&self.dir, base, self.config.segment_config(), now_ms)?;
        self.segments.insert(base, segment);
        // Kafka snapshots producer state at every roll, so opening reads only the newest batches
        self.write_producer_snapshot()?;
        Ok(())
    }

    /// The bytes a reader at `offset` gets: from the batch holding it, bounded by `max_bytes`
    /// (but at least one batch when `min_one_batch`) and by the high watermark or log end.
    pub fn read(
        &self,
        offset: i64,
        max_bytes: usize,
        bound: ReadBound,
        min_one_batch: bool,
    ) -> Result<ReadResult> {
        let end = self.log_end_offset();
        let upper = match bound {
            ReadBound::HighWatermark => self.high_watermark,
            ReadBound::LastStable => self.last_stable_offset(),
            ReadBound::LogEnd => end,
        };
        if offset < self.log_start_offset || offset > end {
            return Err(StorageError::OffsetOutOfRange {
                offset,
                log_start: self.log_start_offset,
                log_end: end,
            });
        }
        let mut result = ReadResult {
            slice: None,
            high_watermark: self.high_watermark,
            last_stable_offset: self.last_stable_offset(),
            log_start_offset: self.log_start_offset,
            log_end_offset: end,
            aborted: if bound == ReadBound::LastStable {
                self.aborted_transactions(offset, upper)
            } else {
                Vec::new()
            },
        };
        if offset >= upper {
            return Ok(result);
        }
        // the segment holding `offset`, then later ones if it has nothing at or after it
        for (_, segment) in self
            .segments
            .range(..=offset)
            .next_back()
            .into_iter()
            .chain(self.segments.range(offset + 1..))
        {
            let max_position = if upper >= segment.next_offset() {
                segment.size()
            } else {
                segment.position_of(upper)?
            };
            if let Some(slice) = segment.read(offset, max_bytes, max_position, min_one_batch)? {
                result.slice = Some(slice);
                break;
            }
            if upper <= segment.next_offset() {
                break;
            }
        }
        Ok(result)
    }

    /// Calls `visit` with every record from the log start to the log end, decoded, in offset
    /// order: how internal logs (cluster metadata, committed offsets) are replayed at start.
    pub fn for_each_record<E: From<StorageError>>(
        &self,
        mut visit: impl FnMut(ferrolog_records::Record) -> std::result::Result<(), E>,
    ) -> std::result::Result<(), E> {
        for segment in self.segments.values() {
            let mut position = 0;
            while let Some(header) = segment.read_header(position)? {
                if header.last_offset() >= self.log_start_offset {
                    let bytes = segment.read_batch(position, &header)?;
                    let records =
                        ferrolog_records::decode(&bytes, self.config.max_decompressed_bytes())
                            .map_err(decode_error)?;
                    for record in records
                        .into_iter()
                        .filter(|r| r.offset >= self.log_start_offset)
                    {
                        visit(record)?;
                    }
                }
                position += header.size() as u64;
            }
        }
        Ok(())
    }

    /// The first batch with a timestamp ≥ `timestamp` (below the high watermark): its bytes, so
    /// the caller can find the exact record. `None` when every record is older.
    pub fn batch_for_timestamp(&self, timestamp: i64) -> Result<Option<(BatchHeader, Vec<u8>)>> {
        for segment in self.segments.values() {
            if segment.max_timestamp() < timestamp {
                continue;
            }
            if let Some((position, header)) = segment.find_by_timestamp(timestamp)? {
                if header.base_offset >= self.high_watermark {
                    return Ok(None);
                }
                let bytes = segment.read_batch(position, &header)?;
                return Ok(Some((header, bytes)));
            }
        }
        Ok(None)
    }

    /// (offset, timestamp) of the record with the largest timestamp below the high watermark, at
    /// batch granularity: the last offset of the batch carrying the max timestamp.
    pub fn max_timestamp_batch(&self) -> Result<Option<(BatchHeader, Vec<u8>)>> {
        let mut best: Option<(i64, &Segment)> = None;
        for segment in self.segments.values() {
            if segment.max_timestamp() >= 0 && best.is_none_or(|(t, _)| segment.max_timestamp() > t)
            {
                best = Some((segment.max_timestamp(), segment));
            }
        }
        let Some((timestamp, segment)) = best else {
            return Ok(None);
        };
        match segment.find_by_timestamp(timestamp)? {
            Some((position, header)) if header.base_offset < self.high_watermark => {
                let bytes = segment.read_batch(position, &header)?;
                Ok(Some((header, bytes)))
            }
            _ => Ok(None),
        }
    }

    /// Deletes whole segments past `retention.ms` or beyond `retention.bytes` (when the cleanup
    /// policy includes `delete`), and those entirely below the log start offset. Only segments
    /// fully below the high watermark go; if every segment goes, a new empty active segment is
    /// rolled first. Returns the segments renamed to `.deleted`.
    pub fn enforce_retention(&mut self, now_ms: i64) -> Result<Vec<DeletedSegment>> {
        let mut deleted = self.delete_below_log_start(now_ms)?;
        if !self.config.delete_policy {
            return Ok(deleted);
        }
        if self.config.retention_ms >= 0 {
            let limit = self.config.retention_ms;
            let doomed = self.deletable(|segment| now_ms - segment.largest_timestamp() > limit);
            deleted.extend(self.delete_segments(doomed, now_ms)?);
        }
        if self.config.retention_bytes >= 0 {
            let mut excess = self.size_bytes() as i64 - self.config.retention_bytes;
            let doomed = self.deletable(|segment| {
                if excess - segment.size() as i64 >= 0 {
                    excess -= segment.size() as i64;
                    true
                } else {
                    false
                }
            });
            deleted.extend(self.delete_segments(doomed, now_ms)?);
        }
        Ok(deleted)
    }

    /// DeleteRecords: moves the log start offset up to `offset` (at most the high watermark; -1
    /// means the high watermark) and deletes the segments entirely below it. Returns the new log
    /// start offset and the deleted segments.
    pub fn delete_records_before(
        &mut self,
        offset: i64,
        now_ms: i64,
    ) -> Result<(i64, Vec<DeletedSegment>)> {
        let offset = if offset == -1 {
            self.high_watermark
        } else {
            offset
        };
        if offset < 0 || offset > self.high_watermark {
            return Err(StorageError::OffsetOutOfRange {
                offset,
                log_start: self.log_start_offset,
                log_end: self.high_watermark,
            });
        }
        if offset > self.log_start_offset {
            self.log_start_offset = offset;
            self.epochs.truncate_from_start(offset)?;
        }
        let deleted = self.delete_below_log_start(now_ms)?;
        Ok((self.log_start_offset, deleted))
    }

    fn delete_below_log_start(&mut self, now_ms: i64) -> Result<Vec<DeletedSegment>> {
        let start = self.log_start_offset;
        let bases: Vec<i64> = self.segments.keys().copied().collect();
        let doomed: Vec<i64> = bases
            .windows(2)
            .take_while(|pair| pair[1] <= start)
            .map(|pair| pair[0])
            .collect();
        self.delete_segments(doomed, now_ms)
    }

    /// The oldest segments, in order, for which `predicate` holds, stopping at the first that
    /// fails it; never an empty active segment, never one reaching above the high watermark.
    fn deletable(&self, mut predicate: impl FnMut(&Segment) -> bool) -> Vec<i64> {
        let bases: Vec<i64> = self.segments.keys().copied().collect();
        let mut out = Vec::new();
        for (i, base) in bases.iter().enumerate() {
            let segment = &self.segments[base];
            let upper = bases
                .get(i + 1)
                .copied()
                .unwrap_or_else(|| self.log_end_offset());
            let last_and_empty = i + 1 == bases.len() && segment.is_empty();
            if last_and_empty || self.high_watermark < upper || !predicate(segment) {
                break;
            }
            out.push(*base);
        }
        out
    }

    fn delete_segments(&mut self, bases: Vec<i64>, now_ms: i64) -> Result<Vec<DeletedSegment>> {
        if bases.is_empty() {
            return Ok(Vec::new());
        }
        if bases.len() == self.segments.len() {
            self.roll(now_ms)?;
        }
        let mut deleted = Vec::new();
        for base in bases {
            if let Some(segment) = self.segments.remove(&base) {
                deleted.push(segment.mark_deleted()?);
                snapshot::rewrite_txn_index(&self.dir, base, &[])?;
            }
        }
        let first = *self
            .segments
            .keys()
            .next()
            .expect("the active segment remains");
        if first > self.log_start_offset {
            self.log_start_offset = first;
            self.epochs.truncate_from_start(first)?;
        }
        self.recovery_point = self.recovery_point.max(self.log_start_offset);
        self.high_watermark = self.high_watermark.max(self.log_start_offset);
        Ok(deleted)
    }

    /// Removes everything at and above `offset` (follower truncation). Offsets below the log
    /// start are clamped.
    pub fn truncate_to(&mut self, offset: i64) -> Result<()> {
        if offset >= self.log_end_offset() {
            return Ok(());
        }
        let offset = offset.max(self.log_start_offset);
        let doomed: Vec<i64> = self.segments.range(offset + 1..).map(|(&b, _)| b).collect();
        for base in doomed {
            if self.segments.len() == 1 {
                break;
            }
            if let Some(segment) = self.segments.remove(&base) {
                segment.delete_files()?;
                snapshot::rewrite_txn_index(&self.dir, base, &[])?;
            }
        }
        // snapshots past the new end describe records that are gone
        for o in snapshot::list_snapshots(&self.dir)? {
            if o > offset {
                fs::get().remove_file(&snapshot::snapshot_path(&self.dir, o))?;
            }
        }
        self.active_mut().truncate_to(offset)?;
        self.high_watermark = self.high_watermark.min(self.log_end_offset());
        self.recovery_point = self.recovery_point.min(self.log_end_offset());
        self.epochs.truncate_from_end(offset)?;
        self.rebuild_producer_state()?;
        Ok(())
    }

    /// fsyncs every segment above the recovery point and advances it to the log end.
    pub fn flush(&mut self) -> Result<()> {
        let end = self.log_end_offset();
        if end > self.recovery_point || self.unflushed_messages > 0 {
            for segment in self.segments.range(..).rev() {
                segment.1.flush()?;
                if segment.1.base_offset() <= self.recovery_point {
                    break;
                }
            }
        }
        self.recovery_point = end;
        self.unflushed_messages = 0;
        Ok(())
    }

    /// Flushes when `flush.ms` has passed since the last flush.
    pub fn maybe_flush_by_time(&mut self, now_ms: i64) -> Result<()> {
        if self.unflushed_messages > 0 && now_ms - self.last_flush_ms >= self.config.flush_ms {
            self.flush()?;
            self.last_flush_ms = now_ms;
        }
        Ok(())
    }

    /// Clean shutdown: flush, trim the active segment's indexes.
    pub fn close(&mut self) -> Result<()> {
        self.flush()?;
        self.write_producer_snapshot()?;
        for segment in self.segments.values_mut() {
            segment.close()?;
        }
        Ok(())
    }

    /// Deletes the log's directory.
    pub fn delete(self) -> Result<()> {
        let dir = self.dir.clone();
        drop(self);
        match fs::get().remove_dir_all(&dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}

fn write_partition_metadata(dir: &Path, topic_id: &[u8; 16]) -> Result<()> {
    let path = dir.join(PARTITION_METADATA);
    let contents = format!("version: 0\ntopic_id: {}\n", uuid_to_kafka_string(topic_id));
    if fs::read_to_string(&path).ok().as_deref() != Some(contents.as_str()) {
        checkpoint::write_atomic(&path, &contents)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::tests::{sample_batch, sample_batch_with_producer};
    use crate::error::BatchError;
    use std::fs;

    fn options(clean: bool) -> LogOpenOptions {
        LogOpenOptions {
            recovery_point: 0,
            log_start_offset: 0,
            clean_shutdown: clean,
            now_ms: 0,
        }
    }

    fn small_config() -> LogConfig {
        LogConfig {
            segment_bytes: 1000,
            index_interval_bytes: 200,
            segment_index_bytes: 800,
            ..LogConfig::default()
        }
    }

    fn open(dir: &Path, clean: bool) -> Log {
        Log::open(dir, "t", 0, [1; 16], small_config(), options(clean)).unwrap()
    }

    /// A producer's batch flagged transactional (CRC recomputed).
    fn transactional_batch(count: i32, producer_id: i64, sequence: i32, now: i64) -> Vec<u8> {
        let mut b = sample_batch_with_producer(0, count, now, 20, producer_id, 0, sequence);
        let attributes = batch::ATTR_TRANSACTIONAL.to_be_bytes();
        b[21..23].copy_from_slice(&attributes);
        let crc = crc32c::crc32c(&b[21..]);
        b[17..21].copy_from_slice(&crc.to_be_bytes());
        b
    }

    /// The leader's bytes, as a follower's fetch would return them.
    fn leader_bytes(log: &Log) -> Vec<u8> {
        let read = log.read(0, 1 << 20, ReadBound::LogEnd, true).unwrap();
        let slice = read.slice.unwrap();
        let mut bytes = vec![0u8; slice.length];
        slice
            .file
            .read_exact_at(&mut bytes, slice.position)
            .unwrap();
        bytes
    }

    #[test]
    fn followers_copy_the_leaders_batches_and_reconcile_by_epoch() {
        let now = 1_000_000;
        let (ld, fd) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let mut leader = open(ld.path(), true);
        for epoch in [0, 0, 2] {
            let mut b = sample_batch(0, 2, now, 10);
            leader.append_as_leader(&mut b, epoch, now).unwrap();
        }
        assert_eq!(leader.epochs(), &[(0, 0), (2, 4)]);
        // where each epoch ended, as OffsetForLeaderEpoch answers
        assert_eq!(leader.end_offset_for_epoch(0), Some((0, 4)));
        assert_eq!(
            leader.end_offset_for_epoch(1),
            Some((0, 4)),
            "epoch 1 never led: 0 is the largest below"
        );
        assert_eq!(leader.end_offset_for_epoch(2), Some((2, 6)));
        assert_eq!(leader.end_offset_for_epoch(-1), None);
        let bytes = leader_bytes(&leader);
        let mut follower = open(fd.path(), true);
        assert_eq!(follower.append_as_follower(&bytes, now).unwrap(), 6);
        assert_eq!(follower.epochs(), leader.epochs());
        assert_eq!(leader_bytes(&follower), bytes, "byte-identical replica");
        // appending the same batches again changes nothing; a gap is refused
        assert_eq!(follower.append_as_follower(&bytes, now).unwrap(), 6);
        let mut gap = sample_batch(10, 1, now, 10);
        batch::set_partition_leader_epoch(&mut gap, 2);
        let crc = crc32c::crc32c(&gap[21..]);
        gap[17..21].copy_from_slice(&crc.to_be_bytes());
        assert!(follower.append_as_follower(&gap, now).is_err());
        // a divergent tail (epoch 2 here) goes when the new leader says epoch 0 ended at 4
        follower.truncate_to(4).unwrap();
        assert_eq!(follower.log_end_offset(), 4);
        assert_eq!(follower.epochs(), &[(0, 0)]);
        // a follower behind the leader's log start starts over there
        follower.reset_to(100, now).unwrap();
        assert_eq!(
            (follower.log_start_offset(), follower.log_end_offset()),
            (100, 100)
        );
    }

    #[test]
    fn open_transactions_bound_the_last_stable_offset_and_aborts_are_indexed() {
        let dir = tempfile::tempdir().unwrap();
        let now = 1_000_000;
        let mut log = open(dir.path(), true);
        let mut plain = sample_batch(0, 2, now, 10);
        log.append_as_leader(&mut plain, 0, now).unwrap();
        // producer 7 opens a transaction at offset 2; producer 8 at offset 5
        let mut t7 = transactional_batch(3, 7, 0, now);
        log.append_as_leader(&mut t7, 0, now).unwrap();
        let mut t8 = transactional_batch(1, 8, 0, now);
        log.append_as_leader(&mut t8, 0, now).unwrap();
        log.update_high_watermark(log.log_end_offset());
        assert_eq!(log.last_stable_offset(), 2);
        // a read_committed read stops at the last stable offset
        let read = log.read(0, 1 << 20, ReadBound::LastStable, true).unwrap();
        assert_eq!(read.last_stable_offset, 2);
        assert_eq!(read.slice.map(|s| s.length), Some(plain.len()));
        // 7 aborts (marker at 6), 8 commits (marker at 7)
        assert_eq!(log.append_marker(7, 0, false, 0, 0, now).unwrap(), 6);
        assert_eq!(log.append_marker(8, 0, true, 0, 0, now).unwrap(), 7);
        log.update_high_watermark(log.log_end_offset());
        assert_eq!(log.last_stable_offset(), 8);
        let aborted = vec![AbortedTxn {
            producer_id: 7,
            first_offset: 2,
            last_offset: 6,
        }];
        assert_eq!(log.aborted_transactions(0, 8), aborted);
        assert!(log.aborted_transactions(7, 8).is_empty());
        // a marker from an older epoch is refused
        assert!(matches!(
            log.append_marker(7, -1, true, 0, 0, now),
            Err(StorageError::ProducerFenced { .. })
        ));
        // reopening rebuilds the aborted index and the open-transaction state from the log
        log.close().unwrap();
        let mut log = open(dir.path(), true);
        log.update_high_watermark(log.log_end_offset());
        assert_eq!(log.aborted_transactions(0, 8), aborted);
        assert_eq!(log.last_stable_offset(), 8);
        let mut t9 = transactional_batch(1, 9, 0, now);
        log.append_as_leader(&mut t9, 0, now).unwrap();
        log.close().unwrap();
        // the clean close left a producer snapshot at the log end and the abort in a txn index
        assert!(crate::snapshot::list_snapshots(dir.path())
            .unwrap()
            .contains(&9));
        let indexed: Vec<AbortedTxn> = log
            .segments
            .keys()
            .flat_map(|&b| crate::snapshot::read_txn_index(dir.path(), b).unwrap())
            .collect();
        assert_eq!(indexed, aborted);
        let open_txn = |l: &Log| {
            l.producers()
                .iter()
                .find(|p| p.producer_id == 9)
                .and_then(|p| p.txn_first_offset)
        };
        let reopened = open(dir.path(), false);
        assert_eq!(open_txn(&reopened), Some(8));
        assert_eq!(reopened.aborted_transactions(0, 9), aborted);
        // a damaged snapshot is ignored: everything is rebuilt from the batches
        drop(reopened);
        let path = crate::snapshot::snapshot_path(dir.path(), 9);
        let mut bytes = fs::read(&path).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 0xff;
        fs::write(&path, bytes).unwrap();
        let rebuilt = open(dir.path(), false);
        assert_eq!(open_txn(&rebuilt), Some(8));
        assert_eq!(rebuilt.aborted_transactions(0, 9), aborted);
    }

    #[test]
    fn append_assigns_offsets_and_rolls() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = open(dir.path(), true);
        for i in 0..30 {
            let mut b = sample_batch(0, 2, 1000 + i, 60);
            let r = log.append_as_leader(&mut b, 0, 1000).unwrap();
            assert_eq!(r.first_offset, i * 2);
            assert_eq!(r.last_offset, i * 2 + 1);
        }
        assert_eq!(log.log_end_offset(), 60);
        assert!(log.segment_count() > 3, "segments: {}", log.segment_count());
        // every offset is readable and starts at the right batch
        for offset in 0..60 {
            let read = log.read(offset, 10_000, ReadBound::LogEnd, true).unwrap();
            let bytes = read.slice.unwrap().read().unwrap();
            let h = BatchHeader::parse(&bytes).unwrap();
            assert!(h.base_offset <= offset && offset <= h.last_offset());
        }
        assert!(matches!(
            log.read(61, 100, ReadBound::LogEnd, true),
            Err(StorageError::OffsetOutOfRange { .. })
        ));
        assert!(log
            .read(60, 100, ReadBound::LogEnd, true)
            .unwrap()
            .slice
            .is_none());
        log.close().unwrap();
        drop(log);
        let log = open(dir.path(), true);
        assert_eq!(log.log_end_offset(), 60);
        let (h, _) = log.batch_for_timestamp(1010).unwrap().unwrap();
        assert_eq!(h.base_offset, 20);
    }

    #[test]
    fn first_batch_is_returned_even_above_max_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = open(dir.path(), true);
        let mut b = sample_batch(0, 1, 1000, 300);
        log.append_as_leader(&mut b, 0, 1000).unwrap();
        let read = log.read(0, 10, ReadBound::LogEnd, true).unwrap();
        assert_eq!(read.slice.unwrap().length, 361);
        let read = log.read(0, 10, ReadBound::LogEnd, false).unwrap();
        assert_eq!(read.slice.unwrap().length, 10);
    }

    #[test]
    fn high_watermark_bounds_consumer_reads() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = open(dir.path(), true);
        log.append_as_leader(&mut sample_batch(0, 1, 1000, 10), 0, 1000)
            .unwrap();
        log.append_as_leader(&mut sample_batch(0, 1, 1000, 10), 0, 1000)
            .unwrap();
        // reopen: hw = log end; then append without moving hw
        log.update_high_watermark(1);
        let read = log.read(0, 10_000, ReadBound::HighWatermark, true).unwrap();
        assert_eq!(read.slice.unwrap().length, 71);
        assert!(log
            .read(1, 10_000, ReadBound::HighWatermark, true)
            .unwrap()
            .slice
            .is_none());
    }

    #[test]
    fn rejects_bad_batches_without_appending() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = open(dir.path(), true);
        let mut corrupt = sample_batch(0, 1, 1000, 10);
        corrupt[70] ^= 1;
        assert!(matches!(
            log.append_as_leader(&mut corrupt, 0, 1000),
            Err(StorageError::Batch(BatchError::CrcMismatch))
        ));
        let mut big = sample_batch(0, 1, 1000, 2_000_000);
        assert!(matches!(
            log.append_as_leader(&mut big, 0, 1000),
            Err(StorageError::MessageTooLarge { .. })
        ));
        let mut future = sample_batch(0, 1, 1000 + 2 * 3600 * 1000, 10);
        assert!(matches!(
            log.append_as_leader(&mut future, 0, 1000),
            Err(StorageError::InvalidTimestamp { .. })
        ));
        let mut torn = sample_batch(0, 1, 1000, 10);
        torn.truncate(40);
        assert!(log.append_as_leader(&mut torn, 0, 1000).is_err());
        assert_eq!(log.log_end_offset(), 0);
    }

    #[test]
    fn idempotent_retry_returns_original_offsets_after_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = open(dir.path(), true);
        log.append_as_leader(&mut sample_batch(0, 3, 1000, 10), 0, 1000)
            .unwrap();
        let produced = sample_batch_with_producer(0, 2, 1000, 10, 42, 0, 0);
        let first = log
            .append_as_leader(&mut produced.clone(), 0, 1000)
            .unwrap();
        assert_eq!((first.first_offset, first.last_offset), (3, 4));
        drop(log);
        let mut log = open(dir.path(), false);
        let retry = log
            .append_as_leader(&mut produced.clone(), 0, 1000)
            .unwrap();
        assert!(retry.duplicate);
        assert_eq!((retry.first_offset, retry.last_offset), (3, 4));
        assert_eq!(log.log_end_offset(), 5);
        let gap = sample_batch_with_producer(0, 1, 1000, 10, 42, 0, 5);
        assert!(matches!(
            log.append_as_leader(&mut gap.clone(), 0, 1000),
            Err(StorageError::OutOfOrderSequence { .. })
        ));
    }

    #[test]
    fn unclean_reopen_truncates_torn_tail_and_continues_offsets() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = open(dir.path(), true);
        for _ in 0..5 {
            log.append_as_leader(&mut sample_batch(0, 2, 1000, 50), 0, 1000)
                .unwrap();
        }
        let active = dir
            .path()
            .join(format!("{:020}.log", log.active().base_offset()));
        drop(log);
        let len = fs::metadata(&active).unwrap().len();
        let f = fs::OpenOptions::new().append(true).open(&active).unwrap();
        f.set_len(len + 30).unwrap(); // garbage (zeros) after the last batch
        drop(f);
        let mut log = open(dir.path(), false);
        assert_eq!(log.log_end_offset(), 10);
        assert_eq!(fs::metadata(&active).unwrap().len(), len);
        let r = log
            .append_as_leader(&mut sample_batch(0, 1, 1000, 5), 0, 1000)
            .unwrap();
        assert_eq!(r.first_offset, 10);
    }

    #[test]
    fn log_append_time_is_stamped() {
        let dir = tempfile::tempdir().unwrap();
        let config = LogConfig {
            log_append_time: true,
            ..small_config()
        };
        let mut log = Log::open(dir.path(), "t", 0, [1; 16], config, options(true)).unwrap();
        let r = log
            .append_as_leader(&mut sample_batch(0, 1, 5, 5), 0, 777_000)
            .unwrap();
        assert_eq!(r.log_append_time, 777_000);
        let bytes = log
            .read(0, 1000, ReadBound::LogEnd, true)
            .unwrap()
            .slice
            .unwrap()
            .read()
            .unwrap();
        let h = batch::validate(&bytes).unwrap();
        assert!(h.is_log_append_time());
        assert_eq!(h.max_timestamp, 777_000);
    }

    #[test]
    fn truncate_to_removes_tail_and_epochs() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = open(dir.path(), true);
        for i in 0..20 {
            log.append_as_leader(&mut sample_batch(0, 1, 1000, 60), i / 10, 1000)
                .unwrap();
        }
        assert_eq!(log.epochs(), &[(0, 0), (1, 10)]);
        log.truncate_to(7).unwrap();
        assert_eq!(log.log_end_offset(), 7);
        assert_eq!(log.epochs(), &[(0, 0)]);
        let r = log
            .append_as_leader(&mut sample_batch(0, 1, 1000, 60), 2, 1000)
            .unwrap();
        assert_eq!(r.first_offset, 7);
    }

    #[test]
    fn retention_by_time_and_size_deletes_whole_old_segments() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = open(dir.path(), true);
        for i in 0..30 {
            // batches of 121 bytes, 7 per 1000-byte segment; timestamps 1000..1029 s
            log.append_as_leader(&mut sample_batch(0, 1, (1000 + i) * 1000, 60), 0, 1_030_000)
                .unwrap();
        }
        let end = log.log_end_offset();
        log.update_high_watermark(end);
        let segments = log.segment_count();
        assert!(segments >= 4);
        // nothing is old enough yet
        log.set_config(LogConfig {
            retention_ms: 100_000,
            ..small_config()
        });
        assert!(log.enforce_retention(1_031_000).unwrap().is_empty());
        // records older than 1015 s go, by whole segments only
        log.set_config(LogConfig {
            retention_ms: 16_000,
            ..small_config()
        });
        let deleted = log.enforce_retention(1_031_000).unwrap();
        assert!(!deleted.is_empty());
        let start = log.log_start_offset();
        assert!(start > 0 && start <= 15, "log start {start}");
        assert!(deleted[0].paths[0]
            .to_string_lossy()
            .ends_with(".log.deleted"));
        assert!(matches!(
            log.read(0, 100, ReadBound::LogEnd, true),
            Err(StorageError::OffsetOutOfRange { .. })
        ));
        for d in &deleted {
            d.remove().unwrap();
        }
        // size: keep about 2000 bytes
        log.set_config(LogConfig {
            retention_ms: -1,
            retention_bytes: 2000,
            ..small_config()
        });
        log.enforce_retention(1_031_000).unwrap();
        // Kafka's rule: a segment goes only if what remains is still at least retention.bytes,
        // so the log ends above the limit by less than one segment.
        let size = log.size_bytes();
        assert!((2000..3000).contains(&size), "size {size}");
        // everything expired: a fresh active segment at the log end, offsets continue
        log.set_config(LogConfig {
            retention_ms: 0,
            ..small_config()
        });
        log.enforce_retention(2_000_000).unwrap();
        assert_eq!(log.segment_count(), 1);
        assert_eq!(log.log_start_offset(), 30);
        assert_eq!(
            log.append_as_leader(&mut sample_batch(0, 1, 2_000_000, 10), 0, 2_000_000)
                .unwrap()
                .first_offset,
            30
        );
        drop(log);
        let log = open(dir.path(), true);
        assert_eq!(log.log_start_offset(), 30);
    }

    #[test]
    fn delete_records_moves_log_start_and_drops_segments_below_it() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = open(dir.path(), true);
        for _ in 0..30 {
            log.append_as_leader(&mut sample_batch(0, 1, 1000, 60), 0, 1000)
                .unwrap();
        }
        log.update_high_watermark(30);
        assert!(
            log.delete_records_before(31, 1000).is_err(),
            "beyond the high watermark"
        );
        let (start, deleted) = log.delete_records_before(10, 1000).unwrap();
        assert_eq!(start, 10);
        assert!(!deleted.is_empty());
        assert!(log.segments.keys().next().copied().unwrap() <= 10);
        assert!(matches!(
            log.read(9, 100, ReadBound::HighWatermark, true),
            Err(StorageError::OffsetOutOfRange { .. })
        ));
        assert!(log
            .read(10, 100, ReadBound::HighWatermark, true)
            .unwrap()
            .slice
            .is_some());
        let (start, _) = log.delete_records_before(5, 1000).unwrap();
        assert_eq!(start, 10, "the log start never moves back");
        assert_eq!(log.delete_records_before(-1, 1000).unwrap().0, 30);
        assert_eq!(log.epochs(), &[(0, 30)]);
    }

    #[test]
    fn topic_id_string_matches_kafka() {
        // Kafka prints Uuid(0x0123456789abcdef, 0xfedcba9876543210) as "ASNFZ4mrze_-3LqYdlQyEA"
        let id = [
            0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef, 0xfe, 0xdc, 0xba, 0x98, 0x76, 0x54,
            0x32, 0x10,
        ];
        assert_eq!(uuid_to_kafka_string(&id), "ASNFZ4mrze_-3LqYdlQyEA");
    }
}
