//! The log directory: `meta.properties`, the clean-shutdown marker, the offset checkpoint files,
//! and opening each partition's log with the right recovery point.

use std::fs;
use std::path::{Path, PathBuf};

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

pub struct LogManager {
    dir: PathBuf,
    pub cluster_id: String,
    pub clean_shutdown: bool,
    recovery_points: OffsetCheckpoint,
    log_starts: OffsetCheckpoint,
    /// Serialises checkpoint writes, so an older snapshot never lands after a newer one.
    checkpoint_lock: std::sync::Mutex<()>,
}

/// The offsets of one log written to the checkpoints.
pub struct LogOffsets {
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
    fs::create_dir_all(dir).with_context(|| format!("creating log directory {}", dir.display()))?;
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
/// the kernel releases it when the process exits, however it exits).
#[derive(Debug)]
pub struct DirLock {
    _file: fs::File,
}

/// Locks `dir` (creating it if new) for this process, before anything else reads or writes
/// it; fails at once, naming the directory, if another process holds it.
pub fn lock_dir(dir: &Path) -> Result<DirLock> {
    fs::create_dir_all(dir)
        .with_context(|| format!("creating data directory {}", dir.display()))?;
    let path = dir.join(LOCK_FILE);
    let file = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(&path)
        .with_context(|| format!("opening {}", path.display()))?;
    match file.try_lock() {
        Ok(()) => Ok(DirLock { _file: file }),
        Err(fs::TryLockError::WouldBlock) => bail!(
            "Failed to acquire lock on file {LOCK_FILE} in {}: another ferrolog (or Kafka) instance is using this directory",
            dir.display()
        ),
        Err(fs::TryLockError::Error(e)) => {
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
    let text = fs::read_to_string(dir.join(META_PROPERTIES)).ok()?;
    crate::config::parse_properties_file(&text)
        .get("cluster.id")
        .cloned()
}

impl LogManager {
    /// Opens (formatting if new) the log directory for `node_id`.
    pub fn open(dir: &Path, node_id: i32, cluster_id: Option<&str>) -> Result<LogManager> {
        let cluster_id = format_dir(dir, node_id, cluster_id)?;
        // temporary files of checkpoint writes a crash interrupted
        for entry in fs::read_dir(dir)? {
            let path = entry?.path();
            if path.extension().is_some_and(|e| e == "tmp") {
                let _ = fs::remove_file(path);
            }
        }
        let marker = dir.join(CLEAN_SHUTDOWN);
        let clean_shutdown = marker.exists();
        if clean_shutdown {
            fs::remove_file(&marker)?;
        }
        let recovery_points = checkpoint::read_offsets(&dir.join(RECOVERY_POINT_CHECKPOINT))
            .unwrap_or_else(|e| {
                tracing::warn!("ignoring {RECOVERY_POINT_CHECKPOINT}: {e}");
                OffsetCheckpoint::new()
            });
        let log_starts =
            checkpoint::read_offsets(&dir.join(LOG_START_CHECKPOINT)).unwrap_or_default();
        Ok(LogManager {
            dir: dir.to_path_buf(),
            cluster_id,
            clean_shutdown,
            recovery_points,
            log_starts,
            checkpoint_lock: std::sync::Mutex::new(()),
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn open_log(
        &self,
        topic: &str,
        partition: i32,
        topic_id: &Uuid,
        config: LogConfig,
    ) -> Result<Log> {
        let key = (topic.to_string(), partition);
        let dir = self.dir.join(partition_dir_name(topic, partition));
        let log = Log::open(
            &dir,
            topic,
            partition,
            *topic_id.as_bytes(),
            config,
            LogOpenOptions {
                recovery_point: self.recovery_points.get(&key).copied().unwrap_or(0),
                log_start_offset: self.log_starts.get(&key).copied().unwrap_or(0),
                clean_shutdown: self.clean_shutdown,
                now_ms: crate::now_ms(),
            },
        )
        .with_context(|| format!("opening log {}", dir.display()))?;
        Ok(log)
    }

    /// Partition directories present on disk: (topic, partition).
    pub fn partition_dirs(&self) -> Result<Vec<(String, i32)>> {
        let mut out = Vec::new();
        for entry in fs::read_dir(&self.dir)? {
            let entry = entry?;
            if !entry.file_type()?.is_dir() {
                continue;
            }
            let name = entry.file_name().to_string_lossy().to_string();
            if let Some((topic, partition)) = name.rsplit_once('-') {
                if let Ok(p) = partition.parse::<i32>() {
                    out.push((topic.to_string(), p));
                }
            }
        }
        Ok(out)
    }

    /// Writes the three offset checkpoints from a snapshot taken under the checkpoint lock.
    pub fn write_checkpoints(&self, snapshot: impl FnOnce() -> Vec<LogOffsets>) -> Result<()> {
        let _guard = self.checkpoint_lock.lock().expect("checkpoint lock");
        let logs = snapshot();
        let mut recovery = OffsetCheckpoint::new();
        let mut starts = OffsetCheckpoint::new();
        let mut hws = OffsetCheckpoint::new();
        for l in &logs {
            let key = (l.topic.clone(), l.partition);
            recovery.insert(key.clone(), l.recovery_point);
            starts.insert(key.clone(), l.log_start_offset);
            hws.insert(key, l.high_watermark);
        }
        checkpoint::write_offsets(&self.dir.join(RECOVERY_POINT_CHECKPOINT), &recovery)?;
        checkpoint::write_offsets(&self.dir.join(LOG_START_CHECKPOINT), &starts)?;
        checkpoint::write_offsets(&self.dir.join(REPLICATION_CHECKPOINT), &hws)?;
        Ok(())
    }

    /// Where each compacted log's dirty section starts (`cleaner-offset-checkpoint`).
    pub fn read_cleaner_checkpoint(&self) -> OffsetCheckpoint {
        checkpoint::read_offsets(&self.dir.join(CLEANER_CHECKPOINT)).unwrap_or_default()
    }

    pub fn write_cleaner_checkpoint(&self, offsets: &OffsetCheckpoint) -> Result<()> {
        checkpoint::write_offsets(&self.dir.join(CLEANER_CHECKPOINT), offsets)?;
        Ok(())
    }

    pub fn mark_clean_shutdown(&self) -> Result<()> {
        checkpoint::write_atomic(&self.dir.join(CLEAN_SHUTDOWN), "")?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn random_ids_never_start_with_a_dash() {
        for _ in 0..2000 {
            let id = super::random_id();
            assert!(!id.starts_with('-') && id.len() == 22, "{id}");
        }
    }
}
