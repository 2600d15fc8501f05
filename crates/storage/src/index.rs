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

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

pub const OFFSET_ENTRY_SIZE: usize = 8;
pub const TIME_ENTRY_SIZE: usize = 12;

struct IndexFile {
    path: PathBuf,
    file: File,
    preallocated: u64,
}

impl IndexFile {
    fn open(path: &Path) -> io::Result<(IndexFile, Vec<u8>)> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)?;
        let length = file.metadata()?.len();
        let mut bytes = vec![0u8; length as usize];
        file.read_exact_at(&mut bytes, 0)?;
        Ok((
            IndexFile {
                path: path.to_path_buf(),
                file,
                preallocated: length,
            },
            bytes,
        ))
    }

    fn write_entry(&mut self, at: u64, entry: &[u8], max_bytes: u64) -> io::Result<()> {
        if self.preallocated < at + entry.len() as u64 {
            self.preallocated = max_bytes.max(at + entry.len() as u64);
            self.file.set_len(self.preallocated)?;
        }
        self.file.write_all_at(entry, at)
    }

    fn trim(&mut self, length: u64) -> io::Result<()> {
        if self.preallocated != length {
            self.file.set_len(length)?;
            self.preallocated = length;
        }
        Ok(())
    }

    fn reset(&mut self) -> io::Result<()> {
        self.trim(0)
    }
}

/// Sparse offset → position index of one segment.
pub struct OffsetIndex {
    base_offset: i64,
    max_entries: usize,
    max_bytes: u64,
    entries: Vec<(u32, u32)>,
    file: IndexFile,
}

impl OffsetIndex {
    /// Opens (or creates) the index file. Entries are loaded and sanity-checked; a file that fails
    /// the check is reported as `Ok(None)` in `valid` so the caller can rebuild it.
    pub fn open(
        path: &Path,
        base_offset: i64,
        max_bytes: usize,
    ) -> io::Result<(OffsetIndex, bool)> {
        let (file, bytes) = IndexFile::open(path)?;
        let mut entries = Vec::with_capacity(bytes.len() / OFFSET_ENTRY_SIZE);
        let mut valid = bytes.len() % OFFSET_ENTRY_SIZE == 0;
        for chunk in bytes.chunks_exact(OFFSET_ENTRY_SIZE) {
            let relative = u32::from_be_bytes(chunk[0..4].try_into().expect("4"));
            let position = u32::from_be_bytes(chunk[4..8].try_into().expect("4"));
            if let Some(&(last_relative, last_position)) = entries.last() {
                if relative <= last_relative || position <= last_position {
                    valid = false;
                    break;
                }
            }
            entries.push((relative, position));
        }
        let mut index = OffsetIndex {
            base_offset,
            max_entries: (max_bytes / OFFSET_ENTRY_SIZE).max(1),
            max_bytes: max_bytes as u64,
            entries,
            file,
        };
        if !valid {
            index.reset()?;
        }
        Ok((index, valid))
    }

    pub fn is_full(&self) -> bool {
        self.entries.len() >= self.max_entries
    }
    pub fn len(&self) -> usize {
        self.entries.len()
    }
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn append(&mut self, offset: i64, position: u32) -> io::Result<()> {
        let relative = (offset - self.base_offset) as u32;
        if let Some(&(last, _)) = self.entries.last() {
            if relative <= last {
                return Ok(());
            }
        }
        assert!(
            !self.is_full(),
            "offset index of segment {} is full",
            self.base_offset
        );
        let mut entry = [0u8; OFFSET_ENTRY_SIZE];
        entry[0..4].copy_from_slice(&relative.to_be_bytes());
        entry[4..8].copy_from_slice(&position.to_be_bytes());
        let at = (self.entries.len() * OFFSET_ENTRY_SIZE) as u64;
        self.file.write_entry(at, &entry, self.max_bytes)?;
        self.entries.push((relative, position));
        Ok(())
    }

    /// The position of the batch to start scanning from for `offset`: the largest entry with
    /// offset ≤ target, or the start of the segment.
    pub fn lookup(&self, offset: i64) -> u32 {
        let relative = offset - self.base_offset;
        if relative < 0 {
            return 0;
        }
        let relative = relative.min(i64::from(u32::MAX)) as u32;
        let at = self.entries.partition_point(|&(r, _)| r <= relative);
        if at == 0 {
            0
        } else {
            self.entries[at - 1].1
        }
    }

    /// Drops entries for offsets ≥ `offset` (used by truncation).
    pub fn truncate_to(&mut self, offset: i64) -> io::Result<()> {
        let relative = (offset - self.base_offset).max(0);
        let keep = self
            .entries
            .partition_point(|&(r, _)| i64::from(r) < relative);
        self.entries.truncate(keep);
        self.file.trim((keep * OFFSET_ENTRY_SIZE) as u64)
    }

    pub fn reset(&mut self) -> io::Result<()> {
        self.entries.clear();
        self.file.reset()
    }

    pub fn trim_to_entries(&mut self) -> io::Result<()> {
        self.file
            .trim((self.entries.len() * OFFSET_ENTRY_SIZE) as u64)
    }

    pub fn flush(&self) -> io::Result<()> {
        self.file.file.sync_data()
    }

    pub fn path(&self) -> &Path {
        &self.file.path
    }
}

/// Sparse timestamp → offset index of one segment.
pub struct TimeIndex {
    base_offset: i64,
    max_entries: usize,
    max_bytes: u64,
    entries: Vec<(i64, u32)>,
    file: IndexFile,
}

impl TimeIndex {
    pub fn open(path: &Path, base_offset: i64, max_bytes: usize) -> io::Result<(TimeIndex, bool)> {
        let (file, bytes) = IndexFile::open(path)?;
        let mut entries = Vec::with_capacity(bytes.len() / TIME_ENTRY_SIZE);
        let mut valid = bytes.len() % TIME_ENTRY_SIZE == 0;
        for chunk in bytes.chunks_exact(TIME_ENTRY_SIZE) {
            let timestamp = i64::from_be_bytes(chunk[0..8].try_into().expect("8"));
            let relative = u32::from_be_bytes(chunk[8..12].try_into().expect("4"));
            if let Some(&(last_timestamp, last_relative)) = entries.last() {
                if timestamp <= last_timestamp || relative < last_relative {
                    valid = false;
                    break;
                }
            }
            entries.push((timestamp, relative));
        }
        let mut index = TimeIndex {
            base_offset,
            max_entries: (max_bytes / TIME_ENTRY_SIZE).max(1),
            max_bytes: max_bytes as u64,
            entries,
            file,
        };
        if !valid {
            index.reset()?;
        }
        Ok((index, valid))
    }

    pub fn is_full(&self) -> bool {
        self.entries.len() >= self.max_entries
    }

    pub fn last_entry(&self) -> Option<(i64, i64)> {
        self.entries
            .last()
            .map(|&(t, r)| (t, self.base_offset + i64::from(r)))
    }

    /// Appends (timestamp, offset) if the timestamp is larger than the last entry's.
    pub fn maybe_append(&mut self, timestamp: i64, offset: i64) -> io::Result<()> {
        if let Some(&(last, _)) = self.entries.last() {
            if timestamp <= last {
                return Ok(());
            }
        }
        if self.is_full() {
            return Ok(());
        }
        let relative = (offset - self.base_offset) as u32;
        let mut entry = [0u8; TIME_ENTRY_SIZE];
        entry[0..8].copy_from_slice(&timestamp.to_be_bytes());
        entry[8..12].copy_from_slice(&relative.to_be_bytes());
        let at = (self.entries.len() * TIME_ENTRY_SIZE) as u64;
        self.file.write_entry(at, &entry, self.max_bytes)?;
        self.entries.push((timestamp, relative));
        Ok(())
    }

    /// The offset to start scanning from for the first record with timestamp ≥ `timestamp`:
    /// the entry just below it (or the segment start).
    pub fn lookup(&self, timestamp: i64) -> i64 {
        let at = self.entries.partition_point(|&(t, _)| t < timestamp);
        if at == 0 {
            self.base_offset
        } else {
            self.base_offset + i64::from(self.entries[at - 1].1)
        }
    }

    pub fn truncate_to(&mut self, offset: i64) -> io::Result<()> {
        let relative = (offset - self.base_offset).max(0);
        let keep = self
            .entries
            .partition_point(|&(_, r)| i64::from(r) < relative);
        self.entries.truncate(keep);
        self.file.trim((keep * TIME_ENTRY_SIZE) as u64)
    }

    pub fn reset(&mut self) -> io::Result<()> {
        self.entries.clear();
        self.file.reset()
    }

    pub fn trim_to_entries(&mut self) -> io::Result<()> {
        self.file
            .trim((self.entries.len() * TIME_ENTRY_SIZE) as u64)
    }

    pub fn flush(&self) -> io::Result<()> {
        self.file.file.sync_data()
    }

    pub fn path(&self) -> &Path {
        &self.file.path
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
