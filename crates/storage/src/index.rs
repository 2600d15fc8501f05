//! Sparse offset and time indexes, in Kafka's file format.
//!
//! `.index`: 8-byte entries, `relative_offset: u32` (offset - segment base offset) followed by
//! `position: u32` (byte position of a batch in the `.log` file). Each entry names the *last*
//! offset of a batch and that batch's start position. Example for a segment based at 100 whose
//! batch covering offsets 100..=104 starts at byte 0 and batch 105..=109 at byte 4200:
//!
//! ```text
//! 00000004 00000000   (offset 104 -> position 0)
//! 00000009 00001068   (offset 109 -> position 4200)
//! ```
//!
//! `.timeindex`: 12-byte entries, `timestamp: i64` followed by `relative_offset: u32`, with
//! strictly increasing timestamps.
//!
//! The file of the active segment is preallocated to `segment.index.bytes` (sparse) and trimmed
//! to its entries when the segment rolls or the log closes, as Kafka does. Entries are also kept
//! in memory; a segment's indexes are small (one entry per `index.interval.bytes` of log).

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::fs::{self, Open, StorageFile};

pub const OFFSET_ENTRY_SIZE: usize = 8;
pub const TIME_ENTRY_SIZE: usize = 12;

/// One kind of index entry: its encoding and the order valid entries keep.
trait Entry: Copy {
    const SIZE: usize;
    fn decode(bytes: &[u8]) -> Self;
    fn encode(&self) -> Vec<u8>;
    /// Whether `self` may come after `previous` in a valid file.
    fn follows(&self, previous: &Self) -> bool;
    /// The offset the entry names, relative to the segment's base offset.
    fn relative_offset(&self) -> u32;
}

/// `.index`: (relative offset of a batch's last record, the batch's byte position).
#[derive(Debug, Clone, Copy)]
struct OffsetEntry {
    relative: u32,
    position: u32,
}

impl Entry for OffsetEntry {
    const SIZE: usize = OFFSET_ENTRY_SIZE;

    fn decode(bytes: &[u8]) -> Self {
        OffsetEntry {
            relative: u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]),
            position: u32::from_be_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]),
        }
    }

    fn encode(&self) -> Vec<u8> {
        [self.relative.to_be_bytes(), self.position.to_be_bytes()].concat()
    }

    fn follows(&self, previous: &Self) -> bool {
        self.relative > previous.relative && self.position > previous.position
    }

    fn relative_offset(&self) -> u32 {
        self.relative
    }
}

/// `.timeindex`: (a timestamp, the relative offset of the record batch reaching it).
#[derive(Debug, Clone, Copy)]
struct TimeEntry {
    timestamp: i64,
    relative: u32,
}

impl Entry for TimeEntry {
    const SIZE: usize = TIME_ENTRY_SIZE;

    fn decode(bytes: &[u8]) -> Self {
        let mut timestamp = [0u8; 8];
        timestamp.copy_from_slice(&bytes[0..8]);
        TimeEntry {
            timestamp: i64::from_be_bytes(timestamp),
            relative: u32::from_be_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]),
        }
    }

    fn encode(&self) -> Vec<u8> {
        [
            &self.timestamp.to_be_bytes()[..],
            &self.relative.to_be_bytes()[..],
        ]
        .concat()
    }

    fn follows(&self, previous: &Self) -> bool {
        self.timestamp > previous.timestamp && self.relative >= previous.relative
    }

    fn relative_offset(&self) -> u32 {
        self.relative
    }
}

/// An index file of one entry kind: entries in memory, the file preallocated and trimmed.
struct Index<E: Entry> {
    base_offset: i64,
    max_entries: usize,
    max_bytes: u64,
    entries: Vec<E>,
    path: PathBuf,
    file: Arc<dyn StorageFile>,
    /// The file's length (preallocated past the entries while the segment is active).
    length: u64,
}

impl<E: Entry> Index<E> {
    /// Opens (creating if missing) the index; `false` if its content was not a valid index
    /// (a torn or unsorted tail, preallocated zeros), in which case it starts empty and the
    /// segment rebuilds it.
    fn open(path: &Path, base_offset: i64, max_bytes: usize) -> io::Result<(Index<E>, bool)> {
        let file: Arc<dyn StorageFile> = fs::CachedFile::open(path, Open::ReadWrite)?;
        let length = file.size()?;
        let mut bytes = vec![0u8; length as usize];
        file.read_exact_at(&mut bytes, 0)?;
        let mut entries: Vec<E> = Vec::with_capacity(bytes.len() / E::SIZE);
        let mut valid = bytes.len().is_multiple_of(E::SIZE);
        for chunk in bytes.chunks_exact(E::SIZE) {
            let entry = E::decode(chunk);
            if entries.last().is_some_and(|last| !entry.follows(last)) {
                valid = false;
                break;
            }
            entries.push(entry);
        }
        let mut index = Index {
            base_offset,
            max_entries: (max_bytes / E::SIZE).max(1),
            max_bytes: max_bytes as u64,
            entries,
            path: path.to_path_buf(),
            file,
            length,
        };
        if !valid {
            index.reset()?;
        }
        Ok((index, valid))
    }

    fn is_full(&self) -> bool {
        self.entries.len() >= self.max_entries
    }

    fn relative(&self, offset: i64) -> u32 {
        debug_assert!(
            offset >= self.base_offset && offset - self.base_offset <= i64::from(u32::MAX),
            "offset {offset} outside the segment based at {}",
            self.base_offset
        );
        (offset - self.base_offset) as u32
    }

    /// Appends an entry, which must follow the last one.
    fn push(&mut self, entry: E) -> io::Result<()> {
        debug_assert!(self.entries.last().is_none_or(|last| entry.follows(last)));
        let at = (self.entries.len() * E::SIZE) as u64;
        let bytes = entry.encode();
        if self.length < at + E::SIZE as u64 {
            self.length = self.max_bytes.max(at + E::SIZE as u64);
            self.file.set_len(self.length)?;
        }
        self.file.write_all_at(&bytes, at)?;
        self.entries.push(entry);
        Ok(())
    }

    /// Drops the entries for offsets at or after `offset`.
    fn truncate_to(&mut self, offset: i64) -> io::Result<()> {
        let relative = (offset - self.base_offset).max(0);
        let keep = self
            .entries
            .partition_point(|e| i64::from(e.relative_offset()) < relative);
        self.entries.truncate(keep);
        self.set_length((keep * E::SIZE) as u64)
    }

    fn reset(&mut self) -> io::Result<()> {
        self.entries.clear();
        self.set_length(0)
    }

    fn trim_to_entries(&mut self) -> io::Result<()> {
        self.set_length((self.entries.len() * E::SIZE) as u64)
    }

    fn set_length(&mut self, length: u64) -> io::Result<()> {
        if self.length != length {
            self.file.set_len(length)?;
            self.length = length;
        }
        Ok(())
    }

    fn flush(&self) -> io::Result<()> {
        self.file.sync_data()
    }
}

/// A segment's offset index: from an offset to the byte position to start reading at.
pub struct OffsetIndex(Index<OffsetEntry>);

impl OffsetIndex {
    /// Opens the index; `false` if it had to be emptied (see `Index::open`).
    pub fn open(
        path: &Path,
        base_offset: i64,
        max_bytes: usize,
    ) -> io::Result<(OffsetIndex, bool)> {
        let (index, valid) = Index::open(path, base_offset, max_bytes)?;
        Ok((OffsetIndex(index), valid))
    }

    pub fn is_full(&self) -> bool {
        self.0.is_full()
    }

    pub fn len(&self) -> usize {
        self.0.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.entries.is_empty()
    }

    /// Indexes the batch ending at `offset` (its last offset) that starts at `position`. An
    /// offset at or below the last entry's is ignored.
    pub fn append(&mut self, offset: i64, position: u32) -> io::Result<()> {
        let relative = self.0.relative(offset);
        if self
            .0
            .entries
            .last()
            .is_some_and(|e| relative <= e.relative)
        {
            return Ok(());
        }
        assert!(
            !self.is_full(),
            "offset index of segment {} is full",
            self.0.base_offset
        );
        self.0.push(OffsetEntry { relative, position })
    }

    /// The byte position to start scanning from for `offset`: the position of the last entry
    /// at or below it (0 if none).
    pub fn lookup(&self, offset: i64) -> u32 {
        let relative = offset - self.0.base_offset;
        if relative < 0 {
            return 0;
        }
        let relative = relative.min(i64::from(u32::MAX)) as u32;
        let at = self.0.entries.partition_point(|e| e.relative <= relative);
        if at == 0 {
            0
        } else {
            self.0.entries[at - 1].position
        }
    }

    pub fn truncate_to(&mut self, offset: i64) -> io::Result<()> {
        self.0.truncate_to(offset)
    }

    pub fn reset(&mut self) -> io::Result<()> {
        self.0.reset()
    }

    pub fn trim_to_entries(&mut self) -> io::Result<()> {
        self.0.trim_to_entries()
    }

    pub fn flush(&self) -> io::Result<()> {
        self.0.flush()
    }

    pub fn path(&self) -> &Path {
        &self.0.path
    }
}

/// A segment's time index: from a timestamp to the offset to start scanning at.
pub struct TimeIndex(Index<TimeEntry>);

impl TimeIndex {
    /// Opens the index; `false` if it had to be emptied (see `Index::open`).
    pub fn open(path: &Path, base_offset: i64, max_bytes: usize) -> io::Result<(TimeIndex, bool)> {
        let (index, valid) = Index::open(path, base_offset, max_bytes)?;
        Ok((TimeIndex(index), valid))
    }

    pub fn is_full(&self) -> bool {
        self.0.is_full()
    }

    /// The last entry, as (timestamp, absolute offset).
    pub fn last_entry(&self) -> Option<(i64, i64)> {
        self.0
            .entries
            .last()
            .map(|e| (e.timestamp, self.0.base_offset + i64::from(e.relative)))
    }

    /// Indexes `timestamp` at `offset` if it is larger than every timestamp indexed so far
    /// (and there is room: a full time index keeps its entries).
    pub fn maybe_append(&mut self, timestamp: i64, offset: i64) -> io::Result<()> {
        if self
            .0
            .entries
            .last()
            .is_some_and(|e| timestamp <= e.timestamp)
            || self.is_full()
        {
            return Ok(());
        }
        let relative = self.0.relative(offset);
        self.0.push(TimeEntry {
            timestamp,
            relative,
        })
    }

    /// The offset to start scanning from for the first record with timestamp ≥ `timestamp`:
    /// the entry just below it (or the segment start).
    pub fn lookup(&self, timestamp: i64) -> i64 {
        let at = self.0.entries.partition_point(|e| e.timestamp < timestamp);
        if at == 0 {
            self.0.base_offset
        } else {
            self.0.base_offset + i64::from(self.0.entries[at - 1].relative)
        }
    }

    pub fn truncate_to(&mut self, offset: i64) -> io::Result<()> {
        self.0.truncate_to(offset)
    }

    pub fn reset(&mut self) -> io::Result<()> {
        self.0.reset()
    }

    pub fn trim_to_entries(&mut self) -> io::Result<()> {
        self.0.trim_to_entries()
    }

    pub fn flush(&self) -> io::Result<()> {
        self.0.flush()
    }

    pub fn path(&self) -> &Path {
        &self.0.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offset_index_lookup_and_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("00000000000000000100.index");
        {
            let (mut index, valid) = OffsetIndex::open(&path, 100, 1024).unwrap();
            assert!(valid);
            index.append(104, 0).unwrap();
            index.append(109, 4200).unwrap();
            assert_eq!(index.lookup(100), 0);
            assert_eq!(index.lookup(105), 0);
            assert_eq!(index.lookup(109), 4200);
            assert_eq!(index.lookup(500), 4200);
            // preallocated until trimmed
            assert_eq!(std::fs::metadata(&path).unwrap().len(), 1024);
            index.trim_to_entries().unwrap();
        }
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 16);
        let (index, valid) = OffsetIndex::open(&path, 100, 1024).unwrap();
        assert!(valid);
        assert_eq!(index.len(), 2);
        assert_eq!(index.lookup(110), 4200);
    }

    #[test]
    fn preallocated_zeros_are_detected_as_invalid() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("00000000000000000000.index");
        {
            let (mut index, _) = OffsetIndex::open(&path, 0, 1024).unwrap();
            index.append(4, 0).unwrap();
            index.append(9, 100).unwrap();
        }
        // not trimmed: trailing zero entries break monotonicity
        let (index, valid) = OffsetIndex::open(&path, 0, 1024).unwrap();
        assert!(!valid);
        assert!(index.is_empty());
    }

    #[test]
    fn time_index_lookup() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("00000000000000000000.timeindex");
        let (mut index, _) = TimeIndex::open(&path, 0, 1200).unwrap();
        index.maybe_append(1000, 9).unwrap();
        index.maybe_append(900, 12).unwrap(); // ignored: not increasing
        index.maybe_append(2000, 19).unwrap();
        assert_eq!(index.lookup(500), 0);
        assert_eq!(index.lookup(1500), 9);
        assert_eq!(index.lookup(2000), 9);
        assert_eq!(index.lookup(2001), 19);
        assert_eq!(index.last_entry(), Some((2000, 19)));
    }
}
