//! The file-system seam. Storage reaches the disk only through [`FileSystem`] and
//! [`StorageFile`], so a test or a simulator can put a file system of its own under the logs
//! (faults: full disks, I/O errors, writes lost in a crash) with [`install`], before anything is
//! opened. By default, and unless one is installed, it is the operating system's ([`OsFs`]): a
//! call is one dynamic dispatch in front of the same system call.

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

/// How a file is opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Open {
    /// Read only; the file must exist.
    Read,
    /// Read and write, created if missing, contents kept.
    ReadWrite,
    /// Write, created or emptied.
    Truncate,
}

/// One open file, read and written at explicit positions (shared between a writer and readers).
pub trait StorageFile: Send + Sync + fmt::Debug {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize>;
    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()>;
    fn set_len(&self, len: u64) -> io::Result<()>;
    /// The file's length in bytes.
    fn size(&self) -> io::Result<u64>;
    /// Makes the file's data durable (fdatasync).
    fn sync_data(&self) -> io::Result<()>;
    /// The operating system's file, for zero-copy sends (`sendfile(2)`); `None` for a file
    /// that is not one (the bytes are then read and written).
    fn os_file(&self) -> Option<&File> {
        None
    }

    fn read_exact_at(&self, mut buf: &mut [u8], mut offset: u64) -> io::Result<()> {
        while !buf.is_empty() {
            match self.read_at(buf, offset)? {
                0 => return Err(io::ErrorKind::UnexpectedEof.into()),
                n => {
                    buf = &mut buf[n..];
                    offset += n as u64;
                }
            }
        }
        Ok(())
    }
}

/// The operations storage performs on paths.
pub trait FileSystem: Send + Sync {
    fn open(&self, path: &Path, how: Open) -> io::Result<Arc<dyn StorageFile>>;
    fn read(&self, path: &Path) -> io::Result<Vec<u8>>;
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;
    fn remove_file(&self, path: &Path) -> io::Result<()>;
    fn remove_dir_all(&self, path: &Path) -> io::Result<()>;
    fn create_dir_all(&self, path: &Path) -> io::Result<()>;
    /// The paths of a directory's entries, in no particular order.
    fn read_dir(&self, path: &Path) -> io::Result<Vec<PathBuf>>;
    /// A file's length.
    fn len(&self, path: &Path) -> io::Result<u64>;
    /// Whether `path` names something (a file or a directory).
    fn exists(&self, path: &Path) -> bool;
    /// Whether `path` names a directory.
    fn is_dir(&self, path: &Path) -> bool;
    /// A file's last modification time, in milliseconds since the epoch.
    fn modified_ms(&self, path: &Path) -> io::Result<i64>;
    /// Makes a directory's entries (creations, renames) durable.
    fn sync_dir(&self, path: &Path) -> io::Result<()>;
}

static INSTALLED: OnceLock<Box<dyn FileSystem>> = OnceLock::new();

/// Puts `fs` under every log opened from now on in this process. Only the first call counts;
/// returns false if a file system was already installed (or the default already in use).
pub fn install(fs: Box<dyn FileSystem>) -> bool {
    INSTALLED.set(fs).is_ok()
}

/// The file system in use.
pub fn get() -> &'static dyn FileSystem {
    INSTALLED.get_or_init(|| Box::new(OsFs)).as_ref()
}

/// Writes `bytes` to `path` durably and atomically: to a temporary file beside it, synced, renamed
/// over `path`, then the directory synced, so a crash leaves the old file or the new one.
/// Concurrent writers of the same path each use their own temporary file; the last rename wins.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> io::Result<()> {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let unique = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".{}.{unique}.tmp", std::process::id()));
    let tmp = path.with_file_name(name);
    let fs = get();
    {
        let file = fs.open(&tmp, Open::Truncate)?;
        file.write_all_at(bytes, 0)?;
        file.sync_data()?;
    }
    fs.rename(&tmp, path)?;
    if let Some(parent) = path.parent() {
        // best effort: a directory that cannot be synced still holds the renamed file
        let _ = fs.sync_dir(parent);
    }
    Ok(())
}

/// Copies the file `from` to `to` (created or emptied) and syncs the copy.
pub fn copy_synced(from: &Path, to: &Path) -> io::Result<u64> {
    let fs = get();
    let (source, dest) = (fs.open(from, Open::Read)?, fs.open(to, Open::Truncate)?);
    let mut buf = vec![0u8; 1 << 20];
    let mut at = 0u64;
    loop {
        let n = source.read_at(&mut buf, at)?;
        if n == 0 {
            break;
        }
        dest.write_all_at(&buf[..n], at)?;
        at += n as u64;
    }
    dest.sync_data()?;
    Ok(at)
}

/// A file's contents as text (`InvalidData` if it is not UTF-8).
pub fn read_to_string(path: &Path) -> io::Result<String> {
    String::from_utf8(get().read(path)?).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

/// The operating system's file system.
#[derive(Debug, Default, Clone, Copy)]
pub struct OsFs;

#[derive(Debug)]
struct OsFile(File);

impl StorageFile for OsFile {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        self.0.read_at(buf, offset)
    }
    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        self.0.write_all_at(buf, offset)
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        self.0.set_len(len)
    }
    fn size(&self) -> io::Result<u64> {
        Ok(self.0.metadata()?.len())
    }
    fn sync_data(&self) -> io::Result<()> {
        self.0.sync_data()
    }
    fn os_file(&self) -> Option<&File> {
        Some(&self.0)
    }
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        self.0.read_exact_at(buf, offset)
    }
}

impl FileSystem for OsFs {
    fn open(&self, path: &Path, how: Open) -> io::Result<Arc<dyn StorageFile>> {
        let mut o = OpenOptions::new();
        match how {
            Open::Read => o.read(true),
            Open::ReadWrite => o.read(true).write(true).create(true).truncate(false),
            Open::Truncate => o.read(true).write(true).create(true).truncate(true),
        };
        Ok(Arc::new(OsFile(o.open(path)?)))
    }
    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        std::fs::read(path)
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        std::fs::rename(from, to)
    }
    fn remove_file(&self, path: &Path) -> io::Result<()> {
        std::fs::remove_file(path)
    }
    fn remove_dir_all(&self, path: &Path) -> io::Result<()> {
        std::fs::remove_dir_all(path)
    }
    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        std::fs::create_dir_all(path)
    }
    fn read_dir(&self, path: &Path) -> io::Result<Vec<PathBuf>> {
        std::fs::read_dir(path)?
            .map(|e| e.map(|e| e.path()))
            .collect()
    }
    fn len(&self, path: &Path) -> io::Result<u64> {
        Ok(std::fs::metadata(path)?.len())
    }
    fn exists(&self, path: &Path) -> bool {
        path.exists()
    }
    fn is_dir(&self, path: &Path) -> bool {
        path.is_dir()
    }
    fn modified_ms(&self, path: &Path) -> io::Result<i64> {
        let modified = std::fs::metadata(path)?.modified()?;
        let since = modified
            .duration_since(std::time::UNIX_EPOCH)
            .map_err(io::Error::other)?;
        Ok(since.as_millis() as i64)
    }
    fn sync_dir(&self, path: &Path) -> io::Result<()> {
        File::open(path)?.sync_all()
    }
}

/// The most files [`CachedFile`]s keep open at once in this process (see [`set_open_file_budget`]).
static BUDGET: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(4096);
static OPEN_FILES: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
/// Open [`CachedFile`]s in the order they were opened, for the clock sweep that closes one.
static RING: std::sync::Mutex<std::collections::VecDeque<std::sync::Weak<CachedFile>>> =
    std::sync::Mutex::new(std::collections::VecDeque::new());

/// Sets how many files the logs may hold open at once (the broker derives it from its open
/// file limit, leaving room for connections). At least 16.
pub fn set_open_file_budget(files: usize) {
    BUDGET.store(files.max(16), std::sync::atomic::Ordering::Relaxed);
}

/// The files [`CachedFile`]s hold open now.
pub fn open_files() -> usize {
    OPEN_FILES.load(std::sync::atomic::Ordering::Relaxed)
}

fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A file that is open only while it is used: a process-wide budget of open files is kept by
/// closing the least recently used (a clock sweep), and a closed file opens again by its path
/// when it is next read or written. So a partition that nobody touches holds no descriptor, and
/// a node can host more partitions than it may open files.
///
/// A file written since its last sync is synced before it is closed (a write-back error would
/// otherwise be reported to no descriptor); if that sync fails, the next [`StorageFile::sync_data`]
/// reports it. The path must stay the file's while the `CachedFile` lives (storage renames a
/// segment's files only as it drops the segment). [`CachedFile::handle`] gives the open file
/// itself, which stays open while it is held (a fetch response's slice, sent with sendfile).
#[derive(Debug)]
pub struct CachedFile {
    path: PathBuf,
    reopen: Open,
    slot: std::sync::Mutex<Option<Arc<dyn StorageFile>>>,
    /// Used since the sweep last passed it.
    used: std::sync::atomic::AtomicBool,
    /// Written since the last sync.
    dirty: std::sync::atomic::AtomicBool,
    /// A sync that failed as the file was closed, reported by the next sync.
    failed: std::sync::Mutex<Option<io::Error>>,
    me: std::sync::Weak<CachedFile>,
}

impl CachedFile {
    /// Opens `path` as `how` says (creating or emptying it); later opens keep the contents.
    pub fn open(path: &Path, how: Open) -> io::Result<Arc<CachedFile>> {
        let file = open_shedding(path, how)?;
        let cached = Arc::new_cyclic(|me| CachedFile {
            path: path.to_path_buf(),
            reopen: if how == Open::Read {
                Open::Read
            } else {
                Open::ReadWrite
            },
            slot: std::sync::Mutex::new(Some(file)),
            used: std::sync::atomic::AtomicBool::new(true),
            // emptied: that too is made durable by the first sync
            dirty: std::sync::atomic::AtomicBool::new(how == Open::Truncate),
            failed: std::sync::Mutex::new(None),
            me: me.clone(),
        });
        opened(cached.me.clone());
        Ok(cached)
    }

    /// The open file (opened again if it was closed).
    pub fn handle(&self) -> io::Result<Arc<dyn StorageFile>> {
        use std::sync::atomic::Ordering::Relaxed;
        self.used.store(true, Relaxed);
        if let Some(file) = lock(&self.slot).as_ref() {
            return Ok(file.clone());
        }
        // opened with no lock held: shedding on EMFILE sweeps the ring, which takes slots
        let file = open_shedding(&self.path, self.reopen)?;
        let mut slot = lock(&self.slot);
        if let Some(theirs) = slot.as_ref() {
            return Ok(theirs.clone()); // another thread opened it meanwhile
        }
        *slot = Some(file.clone());
        drop(slot);
        opened(self.me.clone());
        Ok(file)
    }

    /// Whether the file is open now.
    pub fn is_open(&self) -> bool {
        lock(&self.slot).is_some()
    }

    /// Closes the file (it opens again on use), syncing it first if it was written.
    fn close(&self) {
        use std::sync::atomic::Ordering::Relaxed;
        let Some(file) = lock(&self.slot).take() else {
            return;
        };
        OPEN_FILES.fetch_sub(1, Relaxed);
        if self.dirty.swap(false, Relaxed) {
            if let Err(e) = file.sync_data() {
                *lock(&self.failed) = Some(e);
            }
        }
    }
}

impl Drop for CachedFile {
    fn drop(&mut self) {
        if lock(&self.slot).take().is_some() {
            OPEN_FILES.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
        }
    }
}

/// Opens a file for a [`CachedFile`]; when the process is out of descriptors (EMFILE, ENFILE),
/// closes some cached files and tries once more, so that many partitions never stop a start.
fn open_shedding(path: &Path, how: Open) -> io::Result<Arc<dyn StorageFile>> {
    match get().open(path, how) {
        // EMFILE, ENFILE
        Err(e) if matches!(e.raw_os_error(), Some(24 | 23)) => {
            sweep(None, 64);
            get().open(path, how)
        }
        other => other,
    }
}

/// Counts a file just opened and closes the least recently used ones beyond the budget.
fn opened(file: std::sync::Weak<CachedFile>) {
    OPEN_FILES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    sweep(Some(file), 0);
}

/// Adds `file` to the ring, then closes the least recently used files beyond the budget, and
/// `extra` more.
fn sweep(file: Option<std::sync::Weak<CachedFile>>, extra: usize) {
    use std::sync::atomic::Ordering::Relaxed;
    let mut victims = Vec::new();
    {
        let mut ring = lock(&RING);
        ring.extend(file);
        // forget dropped files now and then (a dead entry keeps its allocation)
        if ring.len() > 2 * OPEN_FILES.load(Relaxed) + 1024 {
            ring.retain(|w| w.strong_count() > 0);
        }
        let mut over = OPEN_FILES
            .load(Relaxed)
            .saturating_sub(BUDGET.load(Relaxed))
            + extra;
        // every file gets a second chance: at most two passes over the ring
        let mut steps = ring.len() * 2;
        while over > 0 && steps > 0 {
            steps -= 1;
            let Some(weak) = ring.pop_front() else { break };
            let Some(candidate) = weak.upgrade() else {
                continue; // dropped: no longer counted
            };
            if !candidate.is_open() {
                continue; // closed by an earlier sweep, and not opened again since
            }
            if candidate.used.swap(false, Relaxed) {
                ring.push_back(weak);
            } else {
                victims.push(candidate);
                over -= 1;
            }
        }
    }
    // closing may sync: outside the ring's lock
    for victim in victims {
        victim.close();
    }
}

impl StorageFile for CachedFile {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        self.handle()?.read_at(buf, offset)
    }
    // marked dirty after the write: a sweep that closes (and syncs) the file meanwhile must not
    // clear the mark of a write that lands after its sync
    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        let file = self.handle()?;
        let written = file.write_all_at(buf, offset);
        self.dirty.store(true, std::sync::atomic::Ordering::Relaxed);
        written
    }
    fn set_len(&self, len: u64) -> io::Result<()> {
        let file = self.handle()?;
        let done = file.set_len(len);
        self.dirty.store(true, std::sync::atomic::Ordering::Relaxed);
        done
    }
    fn size(&self) -> io::Result<u64> {
        self.handle()?.size()
    }
    fn sync_data(&self) -> io::Result<()> {
        if let Some(e) = lock(&self.failed).take() {
            return Err(e);
        }
        // not written since the last sync (or closed after syncing): nothing to make durable
        if !self.dirty.swap(false, std::sync::atomic::Ordering::Relaxed) {
            return Ok(());
        }
        let synced = self.handle().and_then(|file| file.sync_data());
        if synced.is_err() {
            self.dirty.store(true, std::sync::atomic::Ordering::Relaxed);
        }
        synced
    }
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        self.handle()?.read_exact_at(buf, offset)
    }
}

#[cfg(test)]
mod cached_tests {
    use super::*;

    #[test]
    fn files_beyond_the_budget_are_closed_and_open_again_on_use() {
        let dir = tempfile::tempdir().unwrap();
        set_open_file_budget(16);
        let files: Vec<_> = (0..40)
            .map(|i| {
                let f =
                    CachedFile::open(&dir.path().join(format!("f{i}")), Open::ReadWrite).unwrap();
                f.write_all_at(format!("file {i}").as_bytes(), 0).unwrap();
                f
            })
            .collect();
        let open = files.iter().filter(|f| f.is_open()).count();
        assert!(open <= 16, "{open} open");
        // a closed one reads its contents back
        let closed = files.iter().position(|f| !f.is_open()).unwrap();
        let mut buf = vec![0u8; format!("file {closed}").len()];
        files[closed].read_exact_at(&mut buf, 0).unwrap();
        assert_eq!(buf, format!("file {closed}").as_bytes());
        assert!(files[closed].is_open());
        // a held handle keeps its file readable even once the cache closed it
        let held = files[0].handle().unwrap();
        for f in &files[1..] {
            f.sync_data().unwrap();
            let _ = f.size().unwrap();
        }
        let mut buf = [0u8; 6];
        held.read_exact_at(&mut buf, 0).unwrap();
        assert_eq!(&buf, b"file 0");
        drop(files);
        set_open_file_budget(4096);
    }
}
