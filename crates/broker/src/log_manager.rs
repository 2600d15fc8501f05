//! The log directory: `meta.properties`, the clean-shutdown marker, the offset checkpoint files,
//! and opening each partition's log with the right recovery point.

use ferrolog_storage::fs;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;

use anyhow::{bail, Context, Result};
use ferrolog_storage::checkpoint::{self, OffsetCheckpoint};
use ferrolog_storage::log::{partition_dir_name, uuid_to_kafka_string};
use ferrolog_storage::{Log, LogConfig, LogOpenOptions};
use uuid::Uuid;

pub const META_PROPERTIES: &str = "meta.properties";
pub const CLEAN_SHUTDOWN: &str = ".kafka_cleanshutdown";
pub const RECOVERY_POINT_CHECKPOINT: &str = "recovery-point-offset-checkpoint";
pub const LOG_START_CHECKPOINT: &str = "log-start-offset-checkpoint";
pub const REPLICATION_CHECKPOINT: &str = "replication-offset-checkpoint";
pub const CLEANER_CHECKPOINT: &str = "cleaner-offset-checkpoint";

/// One of the `log.dirs`.
struct LogDir {
    path: PathBuf,
    recovery_points: OffsetCheckpoint,
    log_starts: OffsetCheckpoint,
    /// Taken offline after an I/O error: its partitions are not served until a restart.
    offline: std::sync::atomic::AtomicBool,
}

/// The log directories (`log.dirs`; the first also holds the metadata log) and which of them
/// holds each partition.
pub struct LogManager {
    dirs: Vec<LogDir>,
    pub cluster_id: String,
    pub clean_shutdown: bool,
    /// The directory (index into `dirs`) of each partition's log.
    placement: std::sync::Mutex<HashMap<(String, i32), usize>>,
    /// Where AlterReplicaLogDirs asked for a partition this broker does not host yet.
    preferred: std::sync::Mutex<HashMap<(String, i32), usize>>,
    /// Serialises checkpoint writes, so an older snapshot never lands after a newer one.
    checkpoint_lock: std::sync::Mutex<()>,
}

/// One log directory as DescribeLogDirs reports it.
pub struct DirInfo {
    pub path: PathBuf,
    pub offline: bool,
}

/// The offsets of one log written to the checkpoints.
pub struct LogOffsets {
    /// The log directory holding it.
    pub dir: PathBuf,
    pub topic: String,
    pub partition: i32,
    pub recovery_point: i64,
    pub log_start_offset: i64,
    pub high_watermark: i64,
}

/// Creates `dir` with its `meta.properties` (cluster id, node id, a new directory id) if new,
/// or checks the one there; returns the directory's cluster id (`cluster_id`, else the stored
/// one, else a new one).
pub fn format_dir(dir: &Path, node_id: i32, cluster_id: Option<&str>) -> Result<String> {
    fs::get()
        .create_dir_all(dir)
        .with_context(|| format!("creating log directory {}", dir.display()))?;
    let meta_path = dir.join(META_PROPERTIES);
    match fs::read_to_string(&meta_path) {
        Ok(text) => {
            let props = crate::config::parse_properties_file(&text);
            let stored_node: Option<i32> = props.get("node.id").and_then(|v| v.parse().ok());
            if stored_node != Some(node_id) {
                bail!(
                    "Invalid value {node_id} for configuration node.id: log directory {} belongs to node {}",
                    dir.display(),
                    props.get("node.id").map(String::as_str).unwrap_or("?")
                );
            }
            let stored = props.get("cluster.id").cloned().unwrap_or_default();
            if let Some(wanted) = cluster_id {
                if wanted != stored {
                    bail!("Invalid value {wanted} for configuration cluster.id: log directory holds cluster {stored}");
                }
            }
            Ok(stored)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let id = cluster_id.map(str::to_string).unwrap_or_else(random_id);
            let directory_id = random_id();
            checkpoint::write_atomic(
                &meta_path,
                &format!("#\n#Written by ferrolog\ncluster.id={id}\ndirectory.id={directory_id}\nnode.id={node_id}\nversion=1\n"),
            )?;
            Ok(id)
        }
        Err(e) => Err(e).context("reading meta.properties"),
    }
}

/// The lock file in every data directory (as Kafka's).
pub const LOCK_FILE: &str = ".lock";

/// An exclusive lock on a data directory, held for as long as the value lives (the process:
/// the kernel releases it when the process exits, however it exits). It is the operating
/// system's lock, taken on the real directory, not through the storage file-system seam: it
/// guards against another process.
#[derive(Debug)]
pub struct DirLock {
    _file: std::fs::File,
}

/// Locks `dir` (creating it if new) for this process, before anything else reads or writes
/// it; fails at once, naming the directory, if another process holds it.
pub fn lock_dir(dir: &Path) -> Result<DirLock> {
    std::fs::create_dir_all(dir)
        .with_context(|| format!("log directory {} cannot be used", dir.display()))?;
    let path = dir.join(LOCK_FILE);
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(&path)
        .with_context(|| format!("opening {}", path.display()))?;
    match file.try_lock() {
        Ok(()) => Ok(DirLock { _file: file }),
        Err(std::fs::TryLockError::WouldBlock) => bail!(
            "Failed to acquire lock on file {LOCK_FILE} in {}: another ferrolog (or Kafka) instance is using this directory",
            dir.display()
        ),
        Err(std::fs::TryLockError::Error(e)) => {
            Err(e).with_context(|| format!("locking {}", path.display()))
        }
    }
}

/// A new random id in Kafka's base64 form, never starting with `-` (as Kafka's own: a leading
/// dash reads as an option to its command-line tools).
pub fn random_id() -> String {
    loop {
        let id = uuid_to_kafka_string(Uuid::new_v4().as_bytes());
        if !id.starts_with('-') {
            return id;
        }
    }
}

/// The stored cluster id of a formatted log directory.
pub fn stored_cluster_id(dir: &Path) -> Option<String> {
    let text = fs::read_to_string(&dir.join(META_PROPERTIES)).ok()?;
    crate::config::parse_properties_file(&text)
        .get("cluster.id")
        .cloned()
}

/// Opens one log directory: removes temporary files a crash left, reads its checkpoints;
/// returns it and whether it was shut down cleanly.
fn open_dir(path: &Path) -> Result<(LogDir, bool)> {
    for path in fs::get().read_dir(path)? {
        let name = path.file_name().map(|n| n.to_string_lossy().to_string());
        if path.extension().is_some_and(|e| e == "tmp") {
            let _ = fs::get().remove_file(&path);
        } else if name.is_some_and(|n| n.ends_with(FUTURE_SUFFIX)) && fs::get().is_dir(&path) {
            // a replica move a crash interrupted: the original is still where it was
            tracing::warn!("removing {}: an unfinished replica move", path.display());
            let _ = fs::get().remove_dir_all(&path);
        }
    }
    let marker = path.join(CLEAN_SHUTDOWN);
    let clean = fs::get().exists(&marker);
    if clean {
        fs::get().remove_file(&marker)?;
    }
    let recovery_points = checkpoint::read_offsets(&path.join(RECOVERY_POINT_CHECKPOINT))
        .unwrap_or_else(|e| {
            tracing::warn!(
                "ignoring {RECOVERY_POINT_CHECKPOINT} in {}: {e}",
                path.display()
            );
            OffsetCheckpoint::new()
        });
    let log_starts = checkpoint::read_offsets(&path.join(LOG_START_CHECKPOINT)).unwrap_or_default();
    Ok((
        LogDir {
            path: path.to_path_buf(),
            recovery_points,
            log_starts,
            offline: std::sync::atomic::AtomicBool::new(false),
        },
        clean,
    ))
}

/// A replica being moved to another log directory is copied under this suffix first.
const FUTURE_SUFFIX: &str = "-future";

impl LogManager {
    /// Opens (formatting if new) the log directories of `node_id`; every one must belong to the
    /// same cluster. A directory that cannot be opened stops start-up, naming it (its
    /// partitions' data would otherwise be recreated empty elsewhere).
    pub fn open(dirs: &[PathBuf], node_id: i32, cluster_id: Option<&str>) -> Result<LogManager> {
        let first = dirs.first().context("no log directory")?;
        let cluster_id = format_dir(first, node_id, cluster_id)?;
        let mut opened = Vec::new();
        let mut clean_shutdown = true;
        for path in dirs {
            format_dir(path, node_id, Some(&cluster_id))
                .and_then(|_| open_dir(path))
                .map(|(dir, clean)| {
                    clean_shutdown &= clean;
                    opened.push(dir);
                })
                .with_context(|| format!("log directory {} cannot be used", path.display()))?;
        }
        Ok(LogManager {
            dirs: opened,
            cluster_id,
            clean_shutdown,
            placement: Default::default(),
            preferred: Default::default(),
            checkpoint_lock: std::sync::Mutex::new(()),
        })
    }

    /// The first log directory (the metadata log's).
    pub fn dir(&self) -> &Path {
        &self.dirs[0].path
    }

    /// Every log directory, online or not.
    pub fn dirs(&self) -> Vec<DirInfo> {
        self.dirs
            .iter()
            .map(|d| DirInfo {
                path: d.path.clone(),
                offline: d.offline.load(Ordering::SeqCst),
            })
            .collect()
    }

    /// The index of the configured log directory `path` names.
    pub fn index_of(&self, path: &Path) -> Option<usize> {
        self.dirs.iter().position(|d| {
            d.path == path
                || std::fs::canonicalize(&d.path).ok() == std::fs::canonicalize(path).ok()
                    && path.exists()
        })
    }

    pub fn is_offline(&self, index: usize) -> bool {
        self.dirs[index].offline.load(Ordering::SeqCst)
    }

    /// Takes a log directory offline (after an I/O error); true the first time.
    pub fn take_offline(&self, path: &Path) -> bool {
        let Some(i) = self.index_of(path) else {
            return false;
        };
        !self.dirs[i].offline.swap(true, Ordering::SeqCst)
    }

    /// The directory a partition's log is in (or will be created in).
    fn dir_for(&self, key: &(String, i32)) -> Result<usize> {
        let mut placement = crate::locks::lock(&self.placement);
        if let Some(i) = placement.get(key) {
            return Ok(*i);
        }
        let name = partition_dir_name(&key.0, key.1);
        let existing = self
            .dirs
            .iter()
            .position(|d| fs::get().is_dir(&d.path.join(&name)));
        let preferred = self
            .preferred
            .lock()
            .expect("preferred lock")
            .remove(key)
            .filter(|i| !self.is_offline(*i));
        // a new log goes to the online directory with the fewest partitions, as in Kafka
        let least_loaded = || {
            let mut online = (0..self.dirs.len()).filter(|i| !self.is_offline(*i));
            if self.dirs.len() == 1 {
                // one directory: no need to count every placed partition
                return online.next();
            }
            let mut counts = vec![0usize; self.dirs.len()];
            for i in placement.values() {
                counts[*i] += 1;
            }
            online.min_by_key(|i| counts[*i])
        };
        let i = existing
            .or(preferred)
            .or_else(least_loaded)
            .context("every log directory is offline")?;
        placement.insert(key.clone(), i);
        Ok(i)
    }

    /// Remembers where AlterReplicaLogDirs wants a partition this broker does not host yet.
    pub fn prefer(&self, topic: &str, partition: i32, index: usize) {
        self.preferred
            .lock()
            .expect("preferred lock")
            .insert((topic.to_string(), partition), index);
    }

    pub fn open_log(
        &self,
        topic: &str,
        partition: i32,
        topic_id: &Uuid,
        config: LogConfig,
    ) -> Result<Log> {
        let key = (topic.to_string(), partition);
        let index = self.dir_for(&key)?;
        let d = &self.dirs[index];
        if self.is_offline(index) {
            bail!("log directory {} is offline", d.path.display());
        }
        let dir = d.path.join(partition_dir_name(topic, partition));
        let log = Log::open(
            &dir,
            topic,
            partition,
            *topic_id.as_bytes(),
            config,
            LogOpenOptions {
                recovery_point: d.recovery_points.get(&key).copied().unwrap_or(0),
                log_start_offset: d.log_starts.get(&key).copied().unwrap_or(0),
                clean_shutdown: self.clean_shutdown,
                now_ms: crate::now_ms(),
            },
        )
        .with_context(|| format!("opening log {}", dir.display()))?;
        Ok(log)
    }

    /// Where a replica moving to directory `index` is copied before it takes over.
    pub fn future_dir(&self, index: usize, topic: &str, partition: i32) -> PathBuf {
        self.dirs[index].path.join(format!(
            "{}.{}{FUTURE_SUFFIX}",
            partition_dir_name(topic, partition),
            Uuid::new_v4().simple()
        ))
    }

    /// The final place of a partition's log in directory `index`.
    pub fn partition_path(&self, index: usize, topic: &str, partition: i32) -> PathBuf {
        self.dirs[index]
            .path
            .join(partition_dir_name(topic, partition))
    }

    /// A partition's log now lives in directory `index`.
    pub fn placed(&self, topic: &str, partition: i32, index: usize) {
        self.placement
            .lock()
            .expect("placement lock")
            .insert((topic.to_string(), partition), index);
    }

    /// A partition is gone: its directory (if it had one) and its placement.
    pub fn forget(&self, topic: &str, partition: i32) -> Option<PathBuf> {
        let key = (topic.to_string(), partition);
        let index = crate::locks::lock(&self.placement).remove(&key);
        let name = partition_dir_name(topic, partition);
        index.map(|i| self.dirs[i].path.join(&name)).or_else(|| {
            self.dirs
                .iter()
                .map(|d| d.path.join(&name))
                .find(|p| fs::get().is_dir(p))
        })
    }

    /// Partition directories present in the online log directories: (topic, partition).
    pub fn partition_dirs(&self) -> Result<Vec<(String, i32)>> {
        let mut out = Vec::new();
        for (i, d) in self.dirs.iter().enumerate() {
            if self.is_offline(i) {
                continue;
            }
            for path in fs::get().read_dir(&d.path)? {
                if !fs::get().is_dir(&path) {
                    continue;
                }
                let name = path.file_name().unwrap_or_default().to_string_lossy();
                if let Some((topic, partition)) = name.rsplit_once('-') {
                    if let Ok(p) = partition.parse::<i32>() {
                        out.push((topic.to_string(), p));
                        self.placed(topic, p, i);
                    }
                }
            }
        }
        Ok(out)
    }

    /// Writes the three offset checkpoints of every online directory from a snapshot taken
    /// under the checkpoint lock.
    pub fn write_checkpoints(&self, snapshot: impl FnOnce() -> Vec<LogOffsets>) -> Result<()> {
        let _guard = crate::locks::lock(&self.checkpoint_lock);
        let logs = snapshot();
        for (i, d) in self.dirs.iter().enumerate() {
            if self.is_offline(i) {
                continue;
            }
            let mut recovery = OffsetCheckpoint::new();
            let mut starts = OffsetCheckpoint::new();
            let mut hws = OffsetCheckpoint::new();
            for l in logs
                .iter()
                .filter(|l| l.dir.parent() == Some(d.path.as_path()))
            {
                let key = (l.topic.clone(), l.partition);
                recovery.insert(key.clone(), l.recovery_point);
                starts.insert(key.clone(), l.log_start_offset);
                hws.insert(key, l.high_watermark);
            }
            checkpoint::write_offsets(&d.path.join(RECOVERY_POINT_CHECKPOINT), &recovery)?;
            checkpoint::write_offsets(&d.path.join(LOG_START_CHECKPOINT), &starts)?;
            checkpoint::write_offsets(&d.path.join(REPLICATION_CHECKPOINT), &hws)?;
        }
        Ok(())
    }

    /// Where each compacted log's dirty section starts (`cleaner-offset-checkpoint` of every
    /// online directory).
    pub fn read_cleaner_checkpoint(&self) -> OffsetCheckpoint {
        let mut out = OffsetCheckpoint::new();
        for (i, d) in self.dirs.iter().enumerate() {
            if !self.is_offline(i) {
                out.extend(
                    checkpoint::read_offsets(&d.path.join(CLEANER_CHECKPOINT)).unwrap_or_default(),
                );
            }
        }
        out
    }

    /// Writes each online directory's cleaner checkpoint with its own partitions' offsets.
    pub fn write_cleaner_checkpoint(&self, offsets: &OffsetCheckpoint) -> Result<()> {
        let placement = crate::locks::lock(&self.placement).clone();
        for (i, d) in self.dirs.iter().enumerate() {
            if self.is_offline(i) {
                continue;
            }
            let own: OffsetCheckpoint = offsets
                .iter()
                .filter(|(key, _)| placement.get(*key).copied().unwrap_or(0) == i)
                .map(|(k, v)| (k.clone(), *v))
                .collect();
            checkpoint::write_offsets(&d.path.join(CLEANER_CHECKPOINT), &own)?;
        }
        Ok(())
    }

    pub fn mark_clean_shutdown(&self) -> Result<()> {
        for (i, d) in self.dirs.iter().enumerate() {
            if !self.is_offline(i) {
                checkpoint::write_atomic(&d.path.join(CLEAN_SHUTDOWN), "")?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    #[test]
    fn a_locked_directory_cannot_be_locked_again() {
        let dir = tempfile::tempdir().unwrap();
        let first = lock_dir(dir.path()).unwrap();
        let err = lock_dir(dir.path()).unwrap_err().to_string();
        assert!(err.contains(&dir.path().display().to_string()), "{err}");
        assert!(err.contains("another"), "{err}");
        drop(first);
        lock_dir(dir.path()).unwrap();
    }

    #[test]
    fn new_partitions_go_to_the_least_loaded_dir_and_unfinished_moves_are_dropped() {
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let dirs = [a.path().to_path_buf(), b.path().to_path_buf()];
        let lm = LogManager::open(&dirs, 1, None).unwrap();
        let id = Uuid::new_v4();
        for p in 0..4 {
            lm.open_log("t", p, &id, LogConfig::default()).unwrap();
        }
        let count = |d: &Path| {
            fs::read_dir(d)
                .unwrap()
                .filter(|e| e.as_ref().unwrap().path().is_dir())
                .count()
        };
        assert_eq!((count(a.path()), count(b.path())), (2, 2));
        // a copy a crash interrupted is removed when the directory opens again
        let future = lm.future_dir(1, "t", 0);
        fs::create_dir_all(&future).unwrap();
        drop(lm);
        let lm = LogManager::open(&dirs, 1, None).unwrap();
        assert!(!future.exists());
        assert_eq!(lm.partition_dirs().unwrap().len(), 4);
        // the directories of one node belong to one cluster
        let other = tempfile::tempdir().unwrap();
        format_dir(other.path(), 1, Some("someone-else")).unwrap();
        let err = LogManager::open(
            &[a.path().to_path_buf(), other.path().to_path_buf()],
            1,
            None,
        )
        .err()
        .unwrap();
        assert!(format!("{err:#}").contains("cannot be used"), "{err:#}");
    }

    #[test]
    fn random_ids_never_start_with_a_dash() {
        for _ in 0..2000 {
            let id = super::random_id();
            assert!(!id.starts_with('-') && id.len() == 22, "{id}");
        }
    }
}
