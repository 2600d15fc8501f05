//! Storage on a failing disk, through the file-system seam: a full disk, a write torn by a crash,
//! a failed fsync. Each fails the operation with `StorageError::Io` (never a panic), leaves what
//! was acknowledged before it readable, and a reopened log recovers to the last whole batch.
//!
//! One file system is installed for this test binary; faults apply only under the directory a
//! test arms them for, so the tests run in parallel.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use ferrolog_records::{encode, plain_record, Compression, Levels, Record};
use ferrolog_storage::fs::{self, FileSystem, Open, OsFs, StorageFile};
use ferrolog_storage::{Log, LogConfig, LogOpenOptions, ReadBound, StorageError};

#[derive(Debug, Clone, Copy, PartialEq)]
enum Fault {
    /// Every write, creation or growth fails with ENOSPC.
    Full,
    /// The next write keeps only its first half, then fails (a crash in the middle of it); the
    /// writes after it fail too, as on a machine that is going down.
    Torn,
    /// fsync fails with EIO.
    SyncFails,
}

#[derive(Default)]
struct Faults {
    armed: Mutex<Vec<(PathBuf, Fault)>>,
}

impl Faults {
    fn at(&self, path: &Path) -> Option<Fault> {
        let armed = self.armed.lock().unwrap();
        armed
            .iter()
            .find(|(dir, _)| path.starts_with(dir))
            .map(|(_, f)| *f)
    }
    fn set(&self, dir: &Path, fault: Option<Fault>) {
        let mut armed = self.armed.lock().unwrap();
        armed.retain(|(d, _)| d != dir);
        if let Some(f) = fault {
            armed.push((dir.to_path_buf(), f));
        }
    }
}

fn no_space() -> io::Error {
    io::Error::from_raw_os_error(28) // ENOSPC
}

fn io_error() -> io::Error {
    io::Error::from_raw_os_error(5) // EIO
}

struct FaultyFs(Arc<Faults>);

#[derive(Debug)]
struct FaultyFile {
    inner: Arc<dyn StorageFile>,
    path: PathBuf,
    faults: Arc<Faults>,
}

impl std::fmt::Debug for Faults {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Faults")
    }
}

impl StorageFile for FaultyFile {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        self.inner.read_at(buf, offset)
    }
    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        match self.faults.at(&self.path) {
            Some(Fault::Full) => Err(no_space()),
            Some(Fault::Torn) if !buf.is_empty() => {
                self.inner.write_all_at(&buf[..buf.len() / 2], offset)?;
                Err(io_error())
            }
            _ => self.inner.write_all_at(buf, offset),
        }
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        if self.faults.at(&self.path) == Some(Fault::Full) && len > self.inner.size()? {
            return Err(no_space());
        }
        self.inner.set_len(len)
    }
    fn size(&self) -> io::Result<u64> {
        self.inner.size()
    }
    fn sync_data(&self) -> io::Result<()> {
        match self.faults.at(&self.path) {
            Some(Fault::SyncFails) => Err(io_error()),
            _ => self.inner.sync_data(),
        }
    }
    // no `os_file`: readers go through `read_at`, as they would on any installed file system
}

impl FileSystem for FaultyFs {
    fn open(&self, path: &Path, how: Open) -> io::Result<Arc<dyn StorageFile>> {
        if how != Open::Read && self.0.at(path) == Some(Fault::Full) && !path.exists() {
            return Err(no_space());
        }
        Ok(Arc::new(FaultyFile {
            inner: OsFs.open(path, how)?,
            path: path.to_path_buf(),
            faults: self.0.clone(),
        }))
    }
    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        OsFs.read(path)
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        OsFs.rename(from, to)
    }
    fn remove_file(&self, path: &Path) -> io::Result<()> {
        OsFs.remove_file(path)
    }
    fn remove_dir_all(&self, path: &Path) -> io::Result<()> {
        OsFs.remove_dir_all(path)
    }
    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        OsFs.create_dir_all(path)
    }
    fn read_dir(&self, path: &Path) -> io::Result<Vec<PathBuf>> {
        OsFs.read_dir(path)
    }
    fn len(&self, path: &Path) -> io::Result<u64> {
        OsFs.len(path)
    }
    fn exists(&self, path: &Path) -> bool {
        OsFs.exists(path)
    }
    fn is_dir(&self, path: &Path) -> bool {
        OsFs.is_dir(path)
    }
    fn modified_ms(&self, path: &Path) -> io::Result<i64> {
        OsFs.modified_ms(path)
    }
    fn sync_dir(&self, path: &Path) -> io::Result<()> {
        if self.0.at(path) == Some(Fault::SyncFails) {
            return Err(io_error());
        }
        OsFs.sync_dir(path)
    }
}

fn faults() -> &'static Arc<Faults> {
    static FAULTS: OnceLock<Arc<Faults>> = OnceLock::new();
    FAULTS.get_or_init(|| {
        let faults = Arc::new(Faults::default());
        assert!(
            fs::install(Box::new(FaultyFs(faults.clone()))),
            "the faulty file system must be installed before storage is used"
        );
        faults
    })
}

fn config() -> LogConfig {
    LogConfig {
        segment_bytes: 4096,
        index_interval_bytes: 256,
        ..LogConfig::default()
    }
}

fn open(dir: &Path, clean: bool) -> ferrolog_storage::Result<Log> {
    faults();
    Log::open(
        dir,
        "t",
        0,
        [7; 16],
        config(),
        LogOpenOptions {
            recovery_point: 0,
            log_start_offset: 0,
            clean_shutdown: clean,
            now_ms: 1,
        },
    )
}

/// One batch of `count` records whose values are "<tag>-<i>".
fn batch(tag: &str, count: usize) -> Vec<u8> {
    let records: Vec<Record> = (0..count)
        .map(|i| Record {
            offset: i as i64,
            ..plain_record(
                None,
                Some(format!("{tag}-{i}").into_bytes().into()),
                vec![],
                1,
            )
        })
        .collect();
    encode(&records, Compression::None, Levels::default(), None).unwrap()
}

/// A new log in a directory of its own (faults are armed per directory).
fn fresh_log() -> (tempfile::TempDir, PathBuf, Log) {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join("t-0");
    let log = open(&dir, false).unwrap();
    (temp, dir, log)
}

fn append(log: &mut Log, tag: &str) -> ferrolog_storage::Result<i64> {
    let mut records = batch(tag, 5);
    log.append_as_leader(&mut records, 0, 1)
        .map(|r| r.last_offset)
}

/// Every value from `from`, read back through the log (as a fetch would).
fn values(log: &Log) -> Vec<String> {
    let mut out = Vec::new();
    let mut offset = log.log_start_offset();
    while offset < log.log_end_offset() {
        let read = log.read(offset, 1 << 20, ReadBound::LogEnd, true).unwrap();
        let slice = read.slice.expect("records below the log end");
        let bytes = slice.read().unwrap();
        let records = ferrolog_records::decode(&bytes, 1 << 20).unwrap();
        for r in &records {
            out.push(String::from_utf8(r.value.clone().unwrap().to_vec()).unwrap());
        }
        offset = records.last().unwrap().offset + 1;
    }
    out
}

fn expected(tags: &[&str]) -> Vec<String> {
    tags.iter()
        .flat_map(|t| (0..5).map(move |i| format!("{t}-{i}")))
        .collect()
}

fn assert_io(result: ferrolog_storage::Result<impl std::fmt::Debug>, code: i32) {
    match result {
        Err(StorageError::Io(e)) => assert_eq!(e.raw_os_error(), Some(code), "{e}"),
        other => panic!("expected an I/O error {code}, got {other:?}"),
    }
}

#[test]
fn a_full_disk_fails_appends_and_rolls_and_the_log_recovers_after() {
    let (_temp, dir, mut log) = fresh_log();
    for tag in ["a", "b", "c"] {
        append(&mut log, tag).unwrap();
    }
    log.flush().unwrap();

    faults().set(&dir, Some(Fault::Full));
    assert_io(append(&mut log, "lost"), 28);
    // a new segment cannot be created either
    assert_io(log.roll(2), 28);
    // what was acknowledged is still served
    assert_eq!(values(&log), expected(&["a", "b", "c"]));
    drop(log);

    // space is freed; after a restart (the broker takes the directory offline until then) the
    // log holds exactly the acknowledged batches and takes appends again
    faults().set(&dir, None);
    let mut log = open(&dir, false).unwrap();
    assert_eq!(values(&log), expected(&["a", "b", "c"]));
    assert_eq!(append(&mut log, "d").unwrap(), 19);
    assert_eq!(values(&log), expected(&["a", "b", "c", "d"]));
}

#[test]
fn a_torn_write_is_cut_off_on_recovery() {
    let (_temp, dir, mut log) = fresh_log();
    append(&mut log, "a").unwrap();
    append(&mut log, "b").unwrap();
    log.flush().unwrap();
    let segment = dir.join("00000000000000000000.log");
    let whole = std::fs::metadata(&segment).unwrap().len();

    faults().set(&dir, Some(Fault::Torn));
    assert_io(append(&mut log, "torn"), 5);
    drop(log);
    assert!(
        std::fs::metadata(&segment).unwrap().len() > whole,
        "half of the batch reached the file"
    );

    faults().set(&dir, None);
    let mut log = open(&dir, false).unwrap();
    assert_eq!(log.log_end_offset(), 10);
    assert_eq!(std::fs::metadata(&segment).unwrap().len(), whole);
    assert_eq!(append(&mut log, "c").unwrap(), 14);
    assert_eq!(values(&log), expected(&["a", "b", "c"]));
}

#[test]
fn a_failed_fsync_fails_the_flush() {
    let (_temp, dir, mut log) = fresh_log();
    append(&mut log, "a").unwrap();

    faults().set(&dir, Some(Fault::SyncFails));
    assert_io(log.flush(), 5);
    faults().set(&dir, None);
    log.flush().unwrap();
    assert_eq!(values(&log), expected(&["a"]));
}

#[test]
fn a_checkpoint_that_cannot_be_written_leaves_the_old_one() {
    let temp = tempfile::tempdir().unwrap();
    faults();
    let path = temp.path().join("recovery-point-offset-checkpoint");
    let old: ferrolog_storage::checkpoint::OffsetCheckpoint =
        [(("t".to_string(), 0), 10i64)].into_iter().collect();
    ferrolog_storage::checkpoint::write_offsets(&path, &old).unwrap();

    faults().set(temp.path(), Some(Fault::Full));
    let new: ferrolog_storage::checkpoint::OffsetCheckpoint =
        [(("t".to_string(), 0), 20i64)].into_iter().collect();
    let err = ferrolog_storage::checkpoint::write_offsets(&path, &new).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(28));
    faults().set(temp.path(), None);
    assert_eq!(
        ferrolog_storage::checkpoint::read_offsets(&path).unwrap(),
        old
    );
}
