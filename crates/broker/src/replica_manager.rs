//! The partitions hosted by this broker, and the operations across them: waiting for acks=all
//! appends to commit, and fetches that wait for data, both as delayed operations watching only
//! the partitions they involve (see `purgatory`).
//!
//! Concurrency: the partition map is behind an `RwLock`, taken briefly to look up or change the
//! set of partitions, never while a partition's locks are held. Lock order: the partition map,
//! then a partition's replica state, then its log (see `partition`).

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use anyhow::Result;
use ferrolog_storage::fs;
use ferrolog_storage::{FileSlice, Log, LogConfig, LogOpenOptions, ReadBound, ReadResult};
use uuid::Uuid;

use crate::log_manager::LogManager;
use crate::metadata::PartitionState;
pub use crate::partition::{Leadership, Offsets, Partition, PartitionError, Transition};
use crate::purgatory::Waiter;

/// Why AlterReplicaLogDirs could not move a replica.
#[derive(Debug)]
pub enum MoveError {
    LogDirNotFound,
    /// The destination directory is offline.
    Offline,
    /// This broker does not host the partition (yet): it is created in the directory asked for.
    ReplicaNotAvailable,
    Storage(String),
}

/// Copies a partition directory's files (it has no subdirectories) to `to`, synced.
fn copy_dir(from: &Path, to: &Path) -> std::io::Result<()> {
    let fs = fs::get();
    fs.create_dir_all(to)?;
    for path in fs.read_dir(from)? {
        if let Some(name) = path.file_name() {
            fs::copy_synced(&path, &to.join(name))?;
        }
    }
    fs.sync_dir(to)
}

pub struct ReplicaManager {
    log_manager: LogManager,
    node: i32,
    /// By topic name, then partition index (looked up by `&str`, with no allocation: every
    /// request looks up each of its partitions).
    partitions: RwLock<HashMap<String, HashMap<i32, Arc<Partition>>>>,
    /// Set once any replica's log hit an I/O error (shared with every partition).
    io_failed: Arc<AtomicBool>,
    /// Logs opened ahead by `preload` (start-up recovery), taken by `apply`.
    preloaded: std::sync::Mutex<HashMap<(String, i32), Result<Log>>>,
}

/// A partition log to open: topic, partition, topic id, config.
pub type LogToOpen = (String, i32, Uuid, LogConfig);

/// An acks=all append waiting to be committed.
pub struct CommitWait {
    pub partition: Arc<Partition>,
    /// The offset the high watermark must reach (the append's last offset + 1).
    pub required: i64,
    /// The leader epoch the append was made in.
    pub epoch: i32,
    /// The effective `min.insync.replicas`: a high watermark that passed the append with a
    /// smaller ISR (it shrank meanwhile) is not an acknowledgement.
    pub min_isr: i64,
}

/// How an acks=all append ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommitOutcome {
    Committed,
    /// Leadership moved before the ISR had the records.
    NotLeader,
    /// The high watermark passed it with fewer than `min.insync.replicas` in the ISR.
    NotEnoughReplicasAfterAppend,
    TimedOut,
}

impl CommitWait {
    fn outcome(&self, timed_out: bool) -> Option<CommitOutcome> {
        let state = self.partition.leadership();
        if !state.leading || state.leader_epoch != self.epoch {
            Some(CommitOutcome::NotLeader)
        } else if self.partition.high_watermark() >= self.required {
            Some(if (state.isr_size as i64) >= self.min_isr {
                CommitOutcome::Committed
            } else {
                CommitOutcome::NotEnoughReplicasAfterAppend
            })
        } else if timed_out {
            Some(CommitOutcome::TimedOut)
        } else {
            None
        }
    }
}

/// One partition of a fetch.
pub struct FetchInfo {
    /// `None`: not hosted here.
    pub partition: Option<Arc<Partition>>,
    pub offset: i64,
    pub max_bytes: usize,
    pub current_leader_epoch: i32,
    /// An incremental session's: the watcher version at which the partition had nothing new
    /// for this client. Unchanged since, it is not read again (a round over many quiet
    /// partitions costs an atomic load each).
    pub quiet_at: Option<u64>,
}

/// What a fetch asks of every partition.
pub struct FetchParams {
    /// A follower's fetch reads up to the log end; consumers up to the high watermark (or the
    /// last stable offset, read_committed).
    pub follower: bool,
    pub read_committed: bool,
    /// KIP-392: a consumer (v11+) may read from a follower.
    pub follower_reads: bool,
    pub max_bytes: usize,
    pub min_bytes: usize,
    pub max_wait: Duration,
}

/// What a fetch read from one partition.
pub enum FetchResult {
    /// Not hosted here.
    Unknown,
    /// Nothing new since the client last heard of it (see `FetchInfo::quiet_at`).
    Quiet,
    Read(ReadResult),
    /// Offsets only, no records (the caller asked so for this pass: the client reads from
    /// another replica, or the partition is throttled).
    OffsetsOnly(Offsets),
    /// With the offsets where they help the client (out of range).
    Error(PartitionError, Option<Offsets>),
}

impl FetchResult {
    fn bytes(&self) -> usize {
        match self {
            FetchResult::Read(r) => r.slice.as_ref().map_or(0, |s| s.length),
            _ => 0,
        }
    }

    fn is_error(&self) -> bool {
        matches!(self, FetchResult::Unknown | FetchResult::Error(..))
    }

    /// Whether the client learns everything the partition had when it was read (no records
    /// and no error), so the next fetch of an incremental session may skip it while it does
    /// not change.
    /// (A read that returned nothing because the response's byte budget ran out, or records
    /// held back by a throttle, do not count.)
    pub fn leaves_client_current(&self, offset: i64, params: &FetchParams) -> bool {
        match self {
            FetchResult::Quiet => true,
            FetchResult::Read(r) => {
                let bound = if params.follower {
                    r.log_end_offset
                } else if params.read_committed {
                    r.last_stable_offset
                } else {
                    r.high_watermark
                };
                r.slice.is_none() && offset >= bound
            }
            FetchResult::OffsetsOnly(_) | FetchResult::Unknown | FetchResult::Error(..) => false,
        }
    }

    pub fn take_slice(&mut self) -> Option<FileSlice> {
        match self {
            FetchResult::Read(r) => r.slice.take(),
            _ => None,
        }
    }
}

impl ReplicaManager {
    pub fn new(node: i32, log_manager: LogManager) -> ReplicaManager {
        ReplicaManager {
            log_manager,
            node,
            io_failed: Default::default(),
            partitions: RwLock::new(HashMap::new()),
            preloaded: Default::default(),
        }
    }

    /// Opens (and recovers) many partitions' logs on `threads` threads at once, as Kafka's
    /// `num.recovery.threads.per.data.dir` does at start-up; `apply` then takes each opened log
    /// (or its error) instead of opening it in turn. Partitions already hosted are skipped.
    pub fn preload(&self, wanted: Vec<LogToOpen>, threads: usize) {
        let wanted: Vec<LogToOpen> = wanted
            .into_iter()
            .filter(|(topic, partition, _, _)| self.get(topic, *partition).is_none())
            .collect();
        let next = std::sync::atomic::AtomicUsize::new(0);
        let opened = std::sync::Mutex::new(HashMap::with_capacity(wanted.len()));
        std::thread::scope(|scope| {
            for _ in 0..threads.clamp(1, wanted.len().max(1)) {
                scope.spawn(|| {
                    while let Some((topic, partition, id, config)) =
                        wanted.get(next.fetch_add(1, Ordering::Relaxed))
                    {
                        let log = self
                            .log_manager
                            .open_log(topic, *partition, id, config.clone());
                        crate::locks::lock(&opened).insert((topic.clone(), *partition), log);
                    }
                });
            }
        });
        crate::locks::lock(&self.preloaded).extend(
            opened
                .into_inner()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
    }

    pub fn log_manager(&self) -> &LogManager {
        &self.log_manager
    }

    fn map(&self) -> std::sync::RwLockReadGuard<'_, HashMap<String, HashMap<i32, Arc<Partition>>>> {
        // the map is changed by whole inserts and removes: a panic elsewhere cannot leave it
        // half changed
        crate::locks::read(&self.partitions)
    }

    pub fn get(&self, topic: &str, partition: i32) -> Option<Arc<Partition>> {
        self.map().get(topic)?.get(&partition).cloned()
    }

    pub fn all(&self) -> Vec<Arc<Partition>> {
        self.map()
            .values()
            .flat_map(|t| t.values().cloned())
            .collect()
    }

    /// Opens (creating if new) a partition's log and applies its replica state.
    pub fn apply(
        &self,
        topic: &str,
        partition: i32,
        topic_id: Uuid,
        config: LogConfig,
        state: &PartitionState,
    ) -> Result<Transition> {
        let now = crate::now_ms();
        if let Some(p) = self.get(topic, partition) {
            // a config altered on any node (cleanup.policy, retention, ...) applies here at once
            p.set_config(&config);
            return Ok(p.apply(state, now)?);
        }
        let preloaded = crate::locks::lock(&self.preloaded).remove(&(topic.to_string(), partition));
        let log = match preloaded {
            Some(log) => log?,
            None => self
                .log_manager
                .open_log(topic, partition, &topic_id, config)?,
        };
        let p = Arc::new(Partition::new(
            topic,
            partition,
            topic_id,
            self.node,
            log,
            self.io_failed.clone(),
        ));
        let transition = p.apply(state, now)?;
        crate::locks::write(&self.partitions)
            .entry(topic.to_string())
            .or_default()
            .insert(partition, p);
        Ok(transition)
    }

    /// Stops hosting a partition and deletes its data.
    pub fn delete_partition(&self, topic: &str, partition: i32) -> Result<()> {
        let removed = {
            let mut map = crate::locks::write(&self.partitions);
            let removed = map.get_mut(topic).and_then(|t| t.remove(&partition));
            if map.get(topic).is_some_and(|t| t.is_empty()) {
                map.remove(topic);
            }
            removed
        };
        if let Some(p) = removed {
            // whoever waits on it learns it is gone
            p.take_offline();
            match Arc::try_unwrap(p) {
                Ok(p) => p.into_log().delete()?,
                Err(p) => {
                    // A request still holds it; remove the files, the handle goes with the request.
                    let _ = fs::get().remove_dir_all(&p.dir());
                }
            }
        }
        if let Some(dir) = self.log_manager.forget(topic, partition) {
            let _ = fs::get().remove_dir_all(&dir);
        }
        Ok(())
    }

    /// Waits until every acks=all append in `waits` is committed, failed or `timeout` passed.
    /// Wakes only for the partitions waited on.
    pub async fn await_committed(
        &self,
        waits: &[CommitWait],
        timeout: Duration,
    ) -> Vec<CommitOutcome> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut outcomes: Vec<Option<CommitOutcome>> = vec![None; waits.len()];
        let mut pending: Vec<usize> = (0..waits.len()).collect();
        let waiter = Waiter::new();
        let mut watching = false;
        loop {
            let timed_out = tokio::time::Instant::now() >= deadline;
            for &i in &pending {
                let seen = waits[i].partition.watchers.version();
                outcomes[i] = waits[i].outcome(timed_out);
                if outcomes[i].is_none() && !watching {
                    waiter.watch(&waits[i].partition.watchers, i, seen);
                }
            }
            watching = true;
            if outcomes.iter().all(Option::is_some) {
                return outcomes.into_iter().flatten().collect();
            }
            waiter.changed_before(deadline).await;
            pending = waiter.take_changed();
            if tokio::time::Instant::now() >= deadline {
                pending = (0..waits.len())
                    .filter(|i| outcomes[*i].is_none())
                    .collect();
            }
            pending.retain(|i| outcomes[*i].is_none());
        }
    }

    /// Reads `infos` for a fetch; if fewer than `min_bytes` come back (and no error), waits up
    /// to `max_wait` for the partitions to change, re-reading only those that did.
    /// `offsets_only(i)` says, at each pass, whether partition `i` answers with offsets only.
    pub async fn fetch_messages(
        &self,
        params: &FetchParams,
        infos: &[FetchInfo],
        offsets_only: impl Fn(usize) -> bool,
    ) -> Vec<(FetchResult, Option<u64>)> {
        let deadline = tokio::time::Instant::now() + params.max_wait;
        let mut results: Vec<Option<FetchResult>> = infos.iter().map(|_| None).collect();
        // each partition's event count when the first pass read it
        let seen: Vec<Option<u64>> = infos
            .iter()
            .map(|i| i.partition.as_ref().map(|p| p.watchers.version()))
            .collect();
        // and when its result was last read: what the result reflects
        let mut versions = seen.clone();
        let mut changed: Option<Vec<usize>> = None;
        let mut waiter: Option<Arc<Waiter>> = None;
        loop {
            let stale = |i: usize| changed.as_ref().is_none_or(|c| c.binary_search(&i).is_ok());
            let (bytes, errors) = self.fetch_pass(
                params,
                infos,
                &offsets_only,
                &mut results,
                &mut versions,
                stale,
            );
            let done = bytes >= params.min_bytes
                || errors
                || params.max_wait.is_zero()
                || tokio::time::Instant::now() >= deadline;
            if done {
                return results
                    .into_iter()
                    .map(|r| r.unwrap_or(FetchResult::Unknown))
                    .zip(versions)
                    .collect();
            }
            // a delayed fetch: watch every partition read (an event since the first pass read
            // it counts as a change at once)
            let waiter = waiter.get_or_insert_with(|| {
                let waiter = Waiter::new();
                for (i, (info, seen)) in infos.iter().zip(&seen).enumerate() {
                    if let (Some(p), Some(seen)) = (&info.partition, seen) {
                        waiter.watch(&p.watchers, i, *seen);
                    }
                }
                waiter
            });
            changed = Some(if waiter.changed_before(deadline).await {
                waiter.take_changed()
            } else {
                Vec::new()
            });
        }
    }

    /// One pass of a fetch: re-reads the partitions `stale(i)` says changed (and any whose
    /// cached result carries records, since the byte budget before it may have changed), in
    /// order. Returns the record bytes and whether any partition has an error.
    fn fetch_pass(
        &self,
        params: &FetchParams,
        infos: &[FetchInfo],
        offsets_only: &impl Fn(usize) -> bool,
        results: &mut [Option<FetchResult>],
        versions: &mut [Option<u64>],
        stale: impl Fn(usize) -> bool,
    ) -> (usize, bool) {
        let mut total = 0usize;
        let mut errors = false;
        for (i, info) in infos.iter().enumerate() {
            let only_offsets = offsets_only(i);
            let first = results[i].is_none();
            let quiet =
                first && !only_offsets && info.quiet_at.is_some() && info.quiet_at == versions[i];
            // a partition read before keeps its result if it did not change and held nothing
            let reuse = !first
                && !stale(i)
                && !only_offsets
                && results[i]
                    .as_ref()
                    .is_some_and(|r| r.bytes() == 0 && !matches!(r, FetchResult::OffsetsOnly(_)));
            if quiet {
                results[i] = Some(FetchResult::Quiet);
            } else if !reuse {
                if !first {
                    versions[i] = info.partition.as_ref().map(|p| p.watchers.version());
                }
                let remaining = params.max_bytes.saturating_sub(total);
                results[i] =
                    Some(self.fetch_one(params, info, only_offsets, remaining, total == 0));
            }
            let r = results[i].as_ref().expect("filled above");
            total += r.bytes();
            errors |= r.is_error();
        }
        (total, errors)
    }

    fn fetch_one(
        &self,
        params: &FetchParams,
        info: &FetchInfo,
        offsets_only: bool,
        remaining: usize,
        min_one: bool,
    ) -> FetchResult {
        let Some(p) = &info.partition else {
            return FetchResult::Unknown;
        };
        let l = p.leadership();
        if !l.leading && (!params.follower_reads || l.leader < 0) {
            return FetchResult::Error(PartitionError::NotLeader, None);
        }
        if let Err(e) = l.check_epoch(info.current_leader_epoch) {
            return FetchResult::Error(e, None);
        }
        if offsets_only {
            return FetchResult::OffsetsOnly(p.offsets());
        }
        let bound = if params.follower {
            ReadBound::LogEnd
        } else if params.read_committed {
            ReadBound::LastStable
        } else {
            ReadBound::HighWatermark
        };
        match p.read(info.offset, info.max_bytes.min(remaining), bound, min_one) {
            Ok(read) => FetchResult::Read(read),
            Err(e) => {
                let offsets = matches!(e, ferrolog_storage::StorageError::OffsetOutOfRange { .. })
                    .then(|| p.offsets());
                FetchResult::Error(e.into(), offsets)
            }
        }
    }

    /// AlterReplicaLogDirs for one partition: moves its log to the log directory `dest`
    /// (copied aside, then renamed into place and reopened, under the log lock: the
    /// partition's appends and reads wait for the copy). A partition not hosted yet is created
    /// there when it comes.
    pub fn move_to_dir(&self, topic: &str, partition: i32, dest: &Path) -> Result<(), MoveError> {
        let lm = &self.log_manager;
        let index = lm.index_of(dest).ok_or(MoveError::LogDirNotFound)?;
        if lm.is_offline(index) {
            return Err(MoveError::Offline);
        }
        let Some(p) = self.get(topic, partition) else {
            lm.prefer(topic, partition, index);
            return Err(MoveError::ReplicaNotAvailable);
        };
        let target = lm.partition_path(index, topic, partition);
        let future = lm.future_dir(index, topic, partition);
        let replaced = p.replace_log(|log| {
            if log.dir() == target {
                return Ok(None);
            }
            let moved = (|| -> Result<Log> {
                log.flush()?;
                copy_dir(log.dir(), &future)?;
                fs::get().rename(&future, &target)?;
                fs::get().sync_dir(dest)?;
                let mut moved = Log::open(
                    &target,
                    topic,
                    partition,
                    *p.topic_id.as_bytes(),
                    log.config().clone(),
                    LogOpenOptions {
                        recovery_point: log.log_end_offset(),
                        log_start_offset: log.log_start_offset(),
                        clean_shutdown: true,
                        now_ms: crate::now_ms(),
                    },
                )?;
                moved.update_high_watermark(log.high_watermark());
                Ok(moved)
            })();
            if moved.is_err() {
                let _ = fs::get().remove_dir_all(&future);
                if log.dir() != target {
                    let _ = fs::get().remove_dir_all(&target);
                }
            }
            moved.map(Some)
        });
        match replaced {
            Ok(None) => Ok(()),
            Ok(Some(old)) => {
                let old_dir = old.dir().to_path_buf();
                drop(old);
                lm.placed(topic, partition, index);
                if let Err(e) = fs::get().remove_dir_all(&old_dir) {
                    tracing::warn!("removing {} after moving it: {e}", old_dir.display());
                }
                tracing::info!(topic, partition, "replica moved to {}", dest.display());
                Ok(())
            }
            Err(e) => {
                tracing::error!(topic, partition, "moving to {}: {e:#}", dest.display());
                Err(MoveError::Storage(format!("{e:#}")))
            }
        }
    }

    pub fn update_config(&self, topic: &str, config: &LogConfig) {
        for p in self.all() {
            if p.topic == topic {
                p.set_config(config);
            }
        }
    }

    /// Flushes logs whose `flush.ms` has passed.
    pub fn flush_by_time(&self, now_ms: i64) {
        for p in self.all().into_iter().filter(|p| !p.is_offline()) {
            if let Err(e) = p.with_log_checked(|l| l.maybe_flush_by_time(now_ms)) {
                tracing::error!(topic = p.topic, partition = p.index, "flush failed: {e}");
            }
        }
    }

    /// Takes offline every log directory in which a replica hit an I/O error, and with it
    /// every replica in it, as Kafka does (the broker goes on serving the other directories).
    /// Returns the offline replicas (topic id, partition), for the controller.
    pub fn take_failed_dirs_offline(&self) -> Vec<(Uuid, i32)> {
        // called every heartbeat (and tick on a single node): nothing to scan until an I/O
        // error took a replica offline
        let dir_offline = self.log_manager.dirs().iter().any(|d| d.offline);
        if !dir_offline && !self.io_failed.load(Ordering::SeqCst) {
            return Vec::new();
        }
        let partitions = self.all();
        for p in partitions.iter().filter(|p| p.is_offline()) {
            if let Some(dir) = p.log_dir_and_size().0 {
                if self.log_manager.take_offline(&dir) {
                    tracing::error!(
                        "log directory {} is offline after an I/O error; its replicas are not served until a restart",
                        dir.display()
                    );
                }
            }
        }
        let offline: Vec<std::path::PathBuf> = self
            .log_manager
            .dirs()
            .into_iter()
            .filter(|d| d.offline)
            .map(|d| d.path)
            .collect();
        let mut out = Vec::new();
        for p in partitions {
            let in_offline_dir = p.log_dir_and_size().0.is_some_and(|d| offline.contains(&d));
            if in_offline_dir {
                p.take_offline();
                out.push((p.topic_id, p.index));
            }
        }
        out
    }

    pub fn checkpoint(&self) -> Result<()> {
        self.log_manager
            .write_checkpoints(|| self.all().iter().map(|p| p.log_offsets()).collect())
    }

    /// Clean shutdown: flush and close every log, write checkpoints and the marker.
    pub fn shutdown(&self) -> Result<()> {
        for p in self.all().into_iter().filter(|p| !p.is_offline()) {
            p.with_log(|l| l.close())?;
        }
        self.checkpoint()?;
        self.log_manager.mark_clean_shutdown()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn preloaded_logs_are_opened_on_threads_and_taken_by_apply() {
        let dir = tempfile::tempdir().unwrap();
        let lm = LogManager::open(&[dir.path().to_path_buf()], 1, None).unwrap();
        let rm = ReplicaManager::new(1, lm);
        let id = Uuid::new_v4();
        // a file where partition 7's directory should be: its log cannot open
        std::fs::write(dir.path().join("t-7"), b"not a directory").unwrap();
        let wanted = (0..20)
            .map(|p| ("t".to_string(), p, id, LogConfig::default()))
            .collect();
        rm.preload(wanted, 4);
        assert_eq!(crate::locks::lock(&rm.preloaded).len(), 20);
        let state = PartitionState::solo(1);
        for p in 0..20 {
            let applied = rm.apply("t", p, id, LogConfig::default(), &state);
            assert_eq!(applied.is_err(), p == 7, "partition {p}: {applied:?}");
            assert!(p == 7 || dir.path().join(format!("t-{p}")).is_dir());
        }
        assert!(crate::locks::lock(&rm.preloaded).is_empty());
        // hosted partitions are not opened again
        rm.preload(vec![("t".to_string(), 0, id, LogConfig::default())], 2);
        assert!(crate::locks::lock(&rm.preloaded).is_empty());
    }
}
