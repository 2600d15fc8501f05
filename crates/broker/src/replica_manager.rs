//! Partitions hosted by this broker and the logs behind them.
//!
//! Concurrency: the partition map is behind an `RwLock` (taken briefly to look up or change the
//! set of partitions); each partition's log is behind its own `Mutex` (the append lock). Readers
//! take that lock only to resolve a file slice; the bytes are read after it is released. Lock
//! order: partition map, then a partition's log.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};

use anyhow::Result;
use ferrolog_storage::{AppendResult, Log, LogConfig, ReadBound, ReadResult, StorageError};
use tokio::sync::Notify;
use uuid::Uuid;

use crate::log_manager::{LogManager, LogOffsets};

/// One partition replica. On a single node this broker is always the leader; the leader epoch,
/// high watermark and ISR have their places for replication (issue 3).
pub struct Partition {
    pub topic: String,
    pub index: i32,
    pub topic_id: Uuid,
    pub leader_epoch: i32,
    log: Mutex<Log>,
}

impl Partition {
    pub fn append_as_leader(
        &self,
        records: &mut Vec<u8>,
        now_ms: i64,
    ) -> Result<AppendResult, StorageError> {
        let mut log = self.log.lock().expect("log lock");
        let result = log.append_as_leader(records, self.leader_epoch, now_ms)?;
        // The ISR is this replica alone: everything appended is committed.
        let end = log.log_end_offset();
        log.update_high_watermark(end);
        Ok(result)
    }

    /// Writes a transaction marker for `producer_id` (single node: committed at once).
    pub fn append_marker(
        &self,
        producer_id: i64,
        producer_epoch: i16,
        commit: bool,
        coordinator_epoch: i32,
        now_ms: i64,
    ) -> Result<i64, StorageError> {
        let mut log = self.log.lock().expect("log lock");
        let offset = log.append_marker(
            producer_id,
            producer_epoch,
            commit,
            coordinator_epoch,
            self.leader_epoch,
            now_ms,
        )?;
        let end = log.log_end_offset();
        log.update_high_watermark(end);
        Ok(offset)
    }

    /// Resolves what a read returns; read the slice's bytes after this returns.
    pub fn read(
        &self,
        offset: i64,
        max_bytes: usize,
        bound: ReadBound,
        min_one_batch: bool,
    ) -> Result<ReadResult, StorageError> {
        self.log
            .lock()
            .expect("log lock")
            .read(offset, max_bytes, bound, min_one_batch)
    }

    pub fn with_log<T>(&self, f: impl FnOnce(&mut Log) -> T) -> T {
        f(&mut self.log.lock().expect("log lock"))
    }

    pub fn offsets(&self) -> LogOffsets {
        let log = self.log.lock().expect("log lock");
        LogOffsets {
            topic: self.topic.clone(),
            partition: self.index,
            recovery_point: log.recovery_point(),
            log_start_offset: log.log_start_offset(),
            high_watermark: log.high_watermark(),
        }
    }
}

pub struct ReplicaManager {
    log_manager: LogManager,
    partitions: RwLock<HashMap<(String, i32), Arc<Partition>>>,
    /// Woken on every append (delayed fetches wait on it).
    pub appended: Notify,
}

impl ReplicaManager {
    pub fn new(log_manager: LogManager) -> ReplicaManager {
        ReplicaManager {
            log_manager,
            partitions: RwLock::new(HashMap::new()),
            appended: Notify::new(),
        }
    }

    pub fn log_manager(&self) -> &LogManager {
        &self.log_manager
    }

    pub fn get(&self, topic: &str, partition: i32) -> Option<Arc<Partition>> {
        self.partitions
            .read()
            .expect("partitions lock")
            .get(&(topic.to_string(), partition))
            .cloned()
    }

    pub fn all(&self) -> Vec<Arc<Partition>> {
        self.partitions
            .read()
            .expect("partitions lock")
            .values()
            .cloned()
            .collect()
    }

    /// Opens (creating if new) the log of a partition this broker now leads.
    pub fn become_leader(
        &self,
        topic: &str,
        partition: i32,
        topic_id: Uuid,
        config: LogConfig,
    ) -> Result<()> {
        if self.get(topic, partition).is_some() {
            return Ok(());
        }
        let log = self
            .log_manager
            .open_log(topic, partition, &topic_id, config)?;
        let p = Arc::new(Partition {
            topic: topic.to_string(),
            index: partition,
            topic_id,
            leader_epoch: 0,
            log: Mutex::new(log),
        });
        self.partitions
            .write()
            .expect("partitions lock")
            .insert((topic.to_string(), partition), p);
        Ok(())
    }

    /// Stops hosting a partition and deletes its data.
    pub fn delete_partition(&self, topic: &str, partition: i32) -> Result<()> {
        let removed = self
            .partitions
            .write()
            .expect("partitions lock")
            .remove(&(topic.to_string(), partition));
        if let Some(p) = removed {
            match Arc::try_unwrap(p) {
                Ok(p) => p.log.into_inner().expect("log lock").delete()?,
                Err(p) => {
                    // A request still holds it; remove the files, the handle goes with the request.
                    let dir = p.with_log(|l| l.dir().to_path_buf());
                    let _ = std::fs::remove_dir_all(dir);
                }
            }
        } else {
            let dir = self
                .log_manager
                .dir()
                .join(ferrolog_storage::log::partition_dir_name(topic, partition));
            let _ = std::fs::remove_dir_all(dir);
        }
        Ok(())
    }

    pub fn update_config(&self, topic: &str, config: &LogConfig) {
        for p in self.all() {
            if p.topic == topic {
                p.with_log(|l| l.set_config(config.clone()));
            }
        }
    }

    /// Flushes logs whose `flush.ms` has passed.
    pub fn flush_by_time(&self, now_ms: i64) {
        for p in self.all() {
            if let Err(e) = p.with_log(|l| l.maybe_flush_by_time(now_ms)) {
                tracing::error!(topic = p.topic, partition = p.index, "flush failed: {e}");
            }
        }
    }

    pub fn checkpoint(&self) -> Result<()> {
        self.log_manager
            .write_checkpoints(|| self.all().iter().map(|p| p.offsets()).collect())
    }

    /// Clean shutdown: flush and close every log, write checkpoints and the marker.
    pub fn shutdown(&self) -> Result<()> {
        for p in self.all() {
            p.with_log(|l| l.close())?;
        }
        self.checkpoint()?;
        self.log_manager.mark_clean_shutdown()
    }
}
