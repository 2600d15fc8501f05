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
