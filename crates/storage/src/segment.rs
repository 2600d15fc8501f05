//! One segment: a `.log` file of batches plus its `.index` and `.timeindex`.
//!
//! Not thread-safe: the owning [`crate::Log`] serialises appends, truncation and rolls. Readers
//! get the shared file and a byte range and read without holding the log's lock.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::batch::{self, BatchHeader, HEADER_SIZE, LOG_OVERHEAD};
use crate::error::Result;
use crate::fs::{self, CachedFile, Open, StorageFile};
use crate::index::{OffsetIndex, TimeIndex};

pub fn file_stem(base_offset: i64) -> String {
    format!("{base_offset:020}")
}

/// Segment-level settings derived from the log config.
#[derive(Debug, Clone, Copy)]
pub struct SegmentConfig {
    pub index_interval_bytes: usize,
    pub max_index_bytes: usize,
}

pub struct Segment {
    base_offset: i64,
    log_path: PathBuf,
    /// Open only while used (see [`fs::CachedFile`]).
    log: Arc<CachedFile>,
    size: u64,
    offset_index: OffsetIndex,
    time_index: TimeIndex,
    config: SegmentConfig,
    bytes_since_last_index_entry: usize,
    max_timestamp_so_far: i64,
    offset_of_max_timestamp_so_far: i64,
    /// The first batch's max timestamp, used by `segment.ms` rolling (as Kafka does).
    rolling_timestamp: Option<i64>,
    created_ms: i64,
    /// One past the last offset in this segment (base offset when empty).
    next_offset: i64,
}

/// A segment renamed to `*.deleted`, waiting for `file.delete.delay.ms`.
#[derive(Debug)]
pub struct DeletedSegment {
    pub base_offset: i64,
    pub paths: Vec<PathBuf>,
}

impl DeletedSegment {
    pub fn remove(&self) -> io::Result<()> {
        for path in &self.paths {
            match fs::get().remove_file(path) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

/// A byte range of a segment to send to a reader.
#[derive(Clone)]
pub struct FileSlice {
    pub file: Arc<dyn StorageFile>,
    pub position: u64,
    pub length: usize,
}

impl FileSlice {
    pub fn read(&self) -> io::Result<Vec<u8>> {
        let mut bytes = vec![0u8; self.length];
        self.file.read_exact_at(&mut bytes, self.position)?;
        Ok(bytes)
    }
}

impl Segment {
    pub fn log_path(dir: &Path, base_offset: i64) -> PathBuf {
        dir.join(format!("{}.log", file_stem(base_offset)))
    }

    /// Opens the segment's files, creating them if missing. Returns whether the indexes passed
    /// their sanity check (if not they are empty and need [`Segment::recover`]).
    pub fn open(
        dir: &Path,
        base_offset: i64,
        config: SegmentConfig,
        now_ms: i64,
    ) -> Result<(Segment, bool)> {
        let stem = file_stem(base_offset);
        let log_path = dir.join(format!("{stem}.log"));
        let log = CachedFile::open(&log_path, Open::ReadWrite)?;
        let size = log.size()?;
        let (offset_index, offset_valid) = OffsetIndex::open(
            &dir.join(format!("{stem}.index")),
            base_offset,
            config.max_index_bytes,
        )?;
        let (time_index, time_valid) = TimeIndex::open(
            &dir.join(format!("{stem}.timeindex")),
            base_offset,
            config.max_index_bytes,
        )?;
        let mut segment = Segment {
            base_offset,
            log_path,
            log,
            size,
            offset_index,
            time_index,
            config,
            bytes_since_last_index_entry: 0,
            max_timestamp_so_far: -1,
            offset_of_max_timestamp_so_far: base_offset,
            rolling_timestamp: None,
            created_ms: now_ms,
            next_offset: base_offset,
        };
        let mut valid = offset_valid && time_valid;
        if valid && size > 0 {
            // Indexes must not point past the end of the log.
            let last_position = segment.offset_index.lookup(i64::MAX);
            if u64::from(last_position) >= size {
                valid = false;
            } else {
                segment.load_tail()?;
            }
        }
        Ok((segment, valid))
    }

    /// Scans from the last index entry to the end to learn the next offset and timestamps.
    fn load_tail(&mut self) -> Result<()> {
        let mut position = u64::from(self.offset_index.lookup(i64::MAX));
        if let Some((timestamp, offset)) = self.time_index.last_entry() {
            self.max_timestamp_so_far = timestamp;
            self.offset_of_max_timestamp_so_far = offset;
        }
        if let Some(first) = self.read_header(0)? {
            self.rolling_timestamp = Some(first.max_timestamp);
        }
        while let Some(header) = self.read_header(position)? {
            self.next_offset = header.next_offset();
            if header.max_timestamp > self.max_timestamp_so_far {
                self.max_timestamp_so_far = header.max_timestamp;
                self.offset_of_max_timestamp_so_far = header.last_offset();
            }
            position += header.size() as u64;
        }
        Ok(())
    }

    /// Reads the batch header at `position`, or `None` at (or past) the end or for a header that
    /// does not fit in the file.
    pub fn read_header(&self, position: u64) -> Result<Option<BatchHeader>> {
        if position + HEADER_SIZE as u64 > self.size {
            return Ok(None);
        }
        let mut bytes = [0u8; HEADER_SIZE];
        self.log.read_exact_at(&mut bytes, position)?;
        let header = BatchHeader::parse(&bytes)?;
        if header.batch_length < (HEADER_SIZE - LOG_OVERHEAD) as i32
            || position + header.size() as u64 > self.size
        {
            return Ok(None);
        }
        Ok(Some(header))
    }

    pub fn base_offset(&self) -> i64 {
        self.base_offset
    }
    pub fn size(&self) -> u64 {
        self.size
    }
    pub fn next_offset(&self) -> i64 {
        self.next_offset
    }
    pub fn is_empty(&self) -> bool {
        self.size == 0
    }
    pub fn max_timestamp(&self) -> i64 {
        self.max_timestamp_so_far
    }
    pub fn index_full(&self) -> bool {
        self.offset_index.is_full() || self.time_index.is_full()
    }

    /// Whether `segment.ms` says this segment should roll: it has data and its first batch (or
    /// its creation, when timestamps are absent) is older than `segment_ms`.
    pub fn should_roll_by_time(
        &self,
        segment_ms: i64,
        now_ms: i64,
        batch_max_timestamp: i64,
    ) -> bool {
        if self.size == 0 {
            return false;
        }
        match self.rolling_timestamp {
            Some(first) if first >= 0 => batch_max_timestamp - first > segment_ms,
            _ => now_ms - self.created_ms > segment_ms,
        }
    }

    /// Appends one batch whose offsets are already assigned.
    pub fn append(&mut self, batch: &[u8], header: &BatchHeader) -> Result<()> {
        let position = self.size;
        assert!(
            header.base_offset >= self.next_offset,
            "offsets must increase within a segment"
        );
        assert!(
            header.last_offset() - self.base_offset <= i64::from(u32::MAX),
            "relative offset overflow"
        );
        self.log.write_all_at(batch, position)?;
        self.size += batch.len() as u64;
        if header.max_timestamp > self.max_timestamp_so_far {
            self.max_timestamp_so_far = header.max_timestamp;
            self.offset_of_max_timestamp_so_far = header.last_offset();
        }
        if self.rolling_timestamp.is_none() {
            self.rolling_timestamp = Some(header.max_timestamp);
        }
        if self.bytes_since_last_index_entry > self.config.index_interval_bytes {
            self.offset_index
                .append(header.last_offset(), position as u32)?;
            self.time_index.maybe_append(
                self.max_timestamp_so_far,
                self.offset_of_max_timestamp_so_far,
            )?;
            self.bytes_since_last_index_entry = 0;
        }
        self.bytes_since_last_index_entry += batch.len();
        self.next_offset = header.next_offset();
        Ok(())
    }

    /// Position and header of the first batch whose last offset is ≥ `offset`, at or after
    /// `start_position`.
    pub fn find_batch(&self, offset: i64) -> Result<Option<(u64, BatchHeader)>> {
        let mut position = u64::from(self.offset_index.lookup(offset));
        while let Some(header) = self.read_header(position)? {
            if header.last_offset() >= offset {
                return Ok(Some((position, header)));
            }
            position += header.size() as u64;
        }
        Ok(None)
    }

    /// The bytes to return for a read from `offset`: whole batches from the one holding it, at
    /// most `max_bytes` (the last may be cut, as in Kafka) but at least the first batch when
    /// `min_one_batch`, never past `max_position`.
    pub fn read(
        &self,
        offset: i64,
        max_bytes: usize,
        max_position: u64,
        min_one_batch: bool,
    ) -> Result<Option<FileSlice>> {
        let Some((position, header)) = self.find_batch(offset)? else {
            return Ok(None);
        };
        if position >= max_position {
            return Ok(None);
        }
        let available = (max_position - position) as usize;
        let mut length = available.min(max_bytes);
        if min_one_batch {
            length = length.max(header.size().min(available));
        }
        if length == 0 {
            return Ok(None);
        }
        Ok(Some(FileSlice {
            // the open file itself: held by the slice, it stays open until sent
            file: self.log.handle()?,
            position,
            length,
        }))
    }

    /// Reads one batch's bytes at `position`.
    pub fn read_batch(&self, position: u64, header: &BatchHeader) -> Result<Vec<u8>> {
        let mut bytes = vec![0u8; header.size()];
        self.log.read_exact_at(&mut bytes, position)?;
        Ok(bytes)
    }

    /// The position just past the batch that ends at or after `offset` (exclusive bound for
    /// readers limited to offsets < `offset`): the start of the first batch with base ≥ offset.
    pub fn position_of(&self, offset: i64) -> Result<u64> {
        match self.find_batch(offset)? {
            Some((position, header)) if header.base_offset >= offset => Ok(position),
            Some((position, header)) => Ok(position + header.size() as u64),
            None => Ok(self.size),
        }
    }

    /// First batch (position, header) whose max timestamp is ≥ `timestamp`.
    pub fn find_by_timestamp(&self, timestamp: i64) -> Result<Option<(u64, BatchHeader)>> {
        let start_offset = self.time_index.lookup(timestamp);
        let mut position = u64::from(self.offset_index.lookup(start_offset));
        while let Some(header) = self.read_header(position)? {
            if header.max_timestamp >= timestamp {
                return Ok(Some((position, header)));
            }
            position += header.size() as u64;
        }
        Ok(None)
    }

    /// Validates every batch, rebuilds both indexes, and truncates at the first invalid batch.
    /// Calls `visit` for each valid batch header. Returns the number of bytes truncated.
    pub fn recover(
        &mut self,
        max_batch_bytes: usize,
        mut visit: impl FnMut(&BatchHeader),
    ) -> Result<u64> {
        self.offset_index.reset()?;
        self.time_index.reset()?;
        self.bytes_since_last_index_entry = 0;
        self.max_timestamp_so_far = -1;
        self.offset_of_max_timestamp_so_far = self.base_offset;
        self.rolling_timestamp = None;
        self.next_offset = self.base_offset;
        let file_size = self.size;
        let mut position = 0u64;
        let mut valid_end = 0u64;
        let mut bytes = Vec::new();
        while position + HEADER_SIZE as u64 <= file_size {
            let mut head = [0u8; HEADER_SIZE];
            self.log.read_exact_at(&mut head, position)?;
            let Ok(header) = BatchHeader::parse(&head) else {
                break;
            };
            let size = header.size();
            if header.batch_length < (HEADER_SIZE - LOG_OVERHEAD) as i32
                || size > max_batch_bytes.max(HEADER_SIZE)
                || position + size as u64 > file_size
                || header.base_offset < self.next_offset
            {
                break;
            }
            bytes.resize(size, 0);
            self.log.read_exact_at(&mut bytes, position)?;
            let Ok(header) = batch::validate(&bytes) else {
                break;
            };
            // re-run the bookkeeping of append (the bytes are already in place)
            self.size = position;
            self.append_bookkeeping(&header, position, size)?;
            visit(&header);
            position += size as u64;
            valid_end = position;
        }
        self.size = valid_end;
        let truncated = file_size - valid_end;
        if truncated > 0 {
            self.log.set_len(valid_end)?;
        }
        Ok(truncated)
    }

    fn append_bookkeeping(
        &mut self,
        header: &BatchHeader,
        position: u64,
        size: usize,
    ) -> Result<()> {
        self.size = position + size as u64;
        if header.max_timestamp > self.max_timestamp_so_far {
            self.max_timestamp_so_far = header.max_timestamp;
            self.offset_of_max_timestamp_so_far = header.last_offset();
        }
        if self.rolling_timestamp.is_none() {
            self.rolling_timestamp = Some(header.max_timestamp);
        }
        if self.bytes_since_last_index_entry > self.config.index_interval_bytes {
            self.offset_index
                .append(header.last_offset(), position as u32)?;
            self.time_index.maybe_append(
                self.max_timestamp_so_far,
                self.offset_of_max_timestamp_so_far,
            )?;
            self.bytes_since_last_index_entry = 0;
        }
        self.bytes_since_last_index_entry += size;
        self.next_offset = header.next_offset();
        Ok(())
    }

    /// Removes every batch whose last offset is ≥ `offset` (a batch containing `offset` goes
    /// whole). Returns the bytes removed.
    pub fn truncate_to(&mut self, offset: i64) -> Result<u64> {
        let position = match self.find_batch(offset)? {
            Some((position, _)) => position,
            None => return Ok(0),
        };
        let removed = self.size - position;
        self.log.set_len(position)?;
        self.size = position;
        self.offset_index.truncate_to(offset)?;
        self.time_index.truncate_to(offset)?;
        // Recompute tail state from what remains.
        self.next_offset = self.base_offset;
        self.max_timestamp_so_far = -1;
        self.offset_of_max_timestamp_so_far = self.base_offset;
        self.rolling_timestamp = None;
        self.bytes_since_last_index_entry = 0;
        self.load_tail()?;
        Ok(removed)
    }

    /// Called when this segment stops being the active one: final time index entry, trim the
    /// preallocated indexes.
    pub fn on_roll(&mut self) -> Result<()> {
        if self.max_timestamp_so_far >= 0 {
            self.time_index.maybe_append(
                self.max_timestamp_so_far,
                self.offset_of_max_timestamp_so_far,
            )?;
        }
        self.offset_index.trim_to_entries()?;
        self.time_index.trim_to_entries()?;
        Ok(())
    }

    pub fn flush(&self) -> Result<()> {
        self.log.sync_data()?;
        self.offset_index.flush()?;
        self.time_index.flush()?;
        Ok(())
    }

    /// Trims indexes to their entries (clean shutdown).
    pub fn close(&mut self) -> Result<()> {
        self.offset_index.trim_to_entries()?;
        self.time_index.trim_to_entries()?;
        Ok(())
    }

    /// The newest timestamp in the segment, or its file's modification time when it has none
    /// (what time-based retention compares against, as in Kafka).
    pub fn largest_timestamp(&self) -> i64 {
        if self.max_timestamp_so_far >= 0 {
            return self.max_timestamp_so_far;
        }
        fs::get().modified_ms(&self.log_path).unwrap_or(0)
    }

    /// Renames the segment's files with a `.deleted` suffix (Kafka's first step of deleting a
    /// segment); readers holding slices keep reading the open file. The files go for good with
    /// [`DeletedSegment::remove`] after `file.delete.delay.ms`, or at the next start.
    pub fn mark_deleted(self) -> Result<DeletedSegment> {
        let mut paths = Vec::new();
        for path in [
            self.log_path.clone(),
            self.offset_index.path().to_path_buf(),
            self.time_index.path().to_path_buf(),
        ] {
            let mut renamed = path.clone().into_os_string();
            renamed.push(".deleted");
            let renamed = PathBuf::from(renamed);
            match fs::get().rename(&path, &renamed) {
                Ok(()) => paths.push(renamed),
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(DeletedSegment {
            base_offset: self.base_offset,
            paths,
        })
    }

    pub fn delete_files(self) -> Result<()> {
        let index = self.offset_index.path().to_path_buf();
        let time = self.time_index.path().to_path_buf();
        let log = self.log_path.clone();
        drop(self);
        for path in [log, index, time] {
            match fs::get().remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::tests::sample_batch;
    use std::fs::OpenOptions;

    fn config() -> SegmentConfig {
        SegmentConfig {
            index_interval_bytes: 100,
            max_index_bytes: 4096,
        }
    }

    fn append(segment: &mut Segment, base: i64, count: i32, ts: i64) {
        let b = sample_batch(base, count, ts, 80);
        let h = batch::validate(&b).unwrap();
        segment.append(&b, &h).unwrap();
    }

    #[test]
    fn append_find_and_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let (mut s, valid) = Segment::open(dir.path(), 0, config(), 0).unwrap();
        assert!(valid);
        for i in 0..20 {
            append(&mut s, i * 3, 3, 1000 + i);
        }
        assert_eq!(s.next_offset(), 60);
        let (position, header) = s.find_batch(31).unwrap().unwrap();
        assert_eq!(header.base_offset, 30);
        assert_eq!(position, 10 * 141);
        let (_, h) = s.find_by_timestamp(1007).unwrap().unwrap();
        assert_eq!(h.base_offset, 21);
        s.close().unwrap();
        drop(s);
        let (s, valid) = Segment::open(dir.path(), 0, config(), 0).unwrap();
        assert!(valid);
        assert_eq!(s.next_offset(), 60);
        assert_eq!(s.find_batch(59).unwrap().unwrap().1.base_offset, 57);
    }

    #[test]
    fn recover_truncates_torn_tail_and_rebuilds_index() {
        let dir = tempfile::tempdir().unwrap();
        let (mut s, _) = Segment::open(dir.path(), 0, config(), 0).unwrap();
        for i in 0..10 {
            append(&mut s, i, 1, 1000);
        }
        let full = s.size();
        drop(s);
        // tear the last batch and corrupt nothing else
        let log = dir.path().join("00000000000000000000.log");
        let f = OpenOptions::new().write(true).open(&log).unwrap();
        f.set_len(full - 5).unwrap();
        drop(f);
        std::fs::remove_file(dir.path().join("00000000000000000000.index")).unwrap();
        let (mut s, _) = Segment::open(dir.path(), 0, config(), 0).unwrap();
        let mut seen = 0;
        let truncated = s.recover(1 << 20, |_| seen += 1).unwrap();
        assert_eq!(seen, 9);
        assert_eq!(truncated, 141 - 5);
        assert_eq!(s.next_offset(), 9);
        assert_eq!(s.find_batch(8).unwrap().unwrap().1.base_offset, 8);
    }

    #[test]
    fn truncate_removes_whole_batches() {
        let dir = tempfile::tempdir().unwrap();
        let (mut s, _) = Segment::open(dir.path(), 0, config(), 0).unwrap();
        for i in 0..10 {
            append(&mut s, i * 2, 2, 1000);
        }
        s.truncate_to(9).unwrap();
        assert_eq!(s.next_offset(), 8);
        assert_eq!(s.size(), 4 * 141);
    }
}
