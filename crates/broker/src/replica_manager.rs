//! Partitions hosted by this broker and the logs behind them, as leader or follower.
//!
//! Concurrency: the partition map is behind an `RwLock` (taken briefly to look up or change the
//! set of partitions); each partition's replica state and its log are behind their own
//! `Mutex`es (the log's is the append lock). Readers take the log lock only to resolve a file
//! slice; the bytes are read after it is released. Lock order: partition map, then a
//! partition's replica state, then its log.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex, RwLock};

use anyhow::Result;
use ferrolog_storage::{
    AppendResult, Log, LogConfig, LogOpenOptions, ReadBound, ReadResult, StorageError,
};
use tokio::sync::Notify;
use uuid::Uuid;

use crate::log_manager::{LogManager, LogOffsets};
use crate::metadata::PartitionState;

/// What a leader knows of one follower.
#[derive(Debug, Clone, Copy)]
struct FollowerProgress {
    /// Its log end offset (the offset of its last fetch); -1 until it fetches.
    leo: i64,
    /// When it last had everything the leader had.
    caught_up_ms: i64,
    /// The leader's log end and the time at its previous fetch.
    last_fetch_leader_leo: i64,
    last_fetch_ms: i64,
}

/// This broker's view of a partition's replication.
#[derive(Debug)]
struct ReplicaState {
    replicas: Vec<i32>,
    isr: Vec<i32>,
    leader: i32,
    leader_epoch: i32,
    partition_epoch: i32,
    /// This broker leads the partition.
    leading: bool,
    /// Follower only: the log must be reconciled with the leader's (OffsetForLeaderEpoch)
    /// before fetching.
    needs_truncation: bool,
    /// Leader only: the partition epoch an ISR change was proposed against.
    isr_change_pending: Option<i32>,
    /// Leader only: the log end when leadership began; a follower joins the ISR past it.
    leader_start: i64,
    followers: HashMap<i32, FollowerProgress>,
}

/// What applying a partition state did to this broker's role.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    None,
    /// It leads the partition from now on (a new leader epoch).
    Leader,
    /// It follows a (new) leader.
    Follower,
}

/// One partition replica.
pub struct Partition {
    pub topic: String,
    pub index: i32,
    pub topic_id: Uuid,
    /// This broker.
    node: i32,
    state: Mutex<ReplicaState>,
    log: Mutex<Log>,
    /// Woken when the high watermark moves or the replica state changes (leadership).
    changed: Notify,
    /// Its log directory failed (an I/O error here, or in another partition of the
    /// directory): nothing is read or written until a restart.
    offline: std::sync::atomic::AtomicBool,
    /// The replica manager's: tells it to look for failed directories.
    io_failed: Arc<std::sync::atomic::AtomicBool>,
}

fn offline_error() -> StorageError {
    StorageError::Io(std::io::Error::other(
        "the partition's log directory is offline",
    ))
}

/// The scalar part of a partition's replica state, copied out under one lock (the produce,
/// fetch and replication paths read it per partition and request).
#[derive(Debug, Clone, Copy)]
pub struct Leadership {
    pub leading: bool,
    pub leader: i32,
    pub leader_epoch: i32,
    pub isr_size: usize,
    /// The replication factor.
    pub replicas: usize,
    pub needs_truncation: bool,
}

impl Leadership {
    /// The `min.insync.replicas` acks=all must meet: the topic's, capped by the replication
    /// factor (as in Kafka: a topic with fewer replicas than the setting is not unwritable).
    pub fn effective_min_isr(&self, min_insync_replicas: i64) -> i64 {
        min_insync_replicas.min(self.replicas.max(1) as i64)
    }
}

impl Partition {
    pub fn is_offline(&self) -> bool {
        self.offline.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// An I/O error from the log takes the partition offline at once (its whole directory
    /// follows, see `ReplicaManager::take_failed_dirs_offline`).
    fn checked<T>(&self, result: Result<T, StorageError>) -> Result<T, StorageError> {
        if let Err(StorageError::Io(e)) = &result {
            self.io_failed
                .store(true, std::sync::atomic::Ordering::SeqCst);
            if !self.offline.swap(true, std::sync::atomic::Ordering::SeqCst) {
                tracing::error!(
                    topic = self.topic,
                    partition = self.index,
                    "I/O error, the replica goes offline: {e}"
                );
            }
        }
        result
    }

    fn refuse_offline(&self) -> Result<(), StorageError> {
        if self.is_offline() {
            return Err(offline_error());
        }
        Ok(())
    }

    pub fn leadership(&self) -> Leadership {
        let st = self.state.lock().expect("replica state lock");
        Leadership {
            leading: st.leading,
            leader: st.leader,
            leader_epoch: st.leader_epoch,
            isr_size: st.isr.len(),
            replicas: st.replicas.len(),
            needs_truncation: st.needs_truncation,
        }
    }

    pub fn leader_epoch(&self) -> i32 {
        self.leadership().leader_epoch
    }

    pub fn is_leader(&self) -> bool {
        self.leadership().leading
    }

    /// Whether `replica` is in the ISR as this broker knows it.
    pub fn in_sync(&self, replica: i32) -> bool {
        self.state
            .lock()
            .expect("replica state lock")
            .isr
            .contains(&replica)
    }

    pub fn high_watermark(&self) -> i64 {
        self.log.lock().expect("log lock").high_watermark()
    }

    /// Applies the partition's state from the metadata; says if this broker just became its
    /// leader or follower.
    pub fn apply(&self, next: &PartitionState, now_ms: i64) -> Result<Transition, StorageError> {
        let transition = self.apply_state(next, now_ms);
        self.changed.notify_waiters();
        transition
    }

    fn apply_state(&self, next: &PartitionState, now_ms: i64) -> Result<Transition, StorageError> {
        let mut st = self.state.lock().expect("replica state lock");
        let leading = next.leader == self.node;
        let new_term = leading != st.leading || next.leader_epoch != st.leader_epoch;
        st.replicas = next.replicas.clone();
        st.isr = next.isr.clone();
        st.leader = next.leader;
        st.partition_epoch = next.partition_epoch;
        if st
            .isr_change_pending
            .is_some_and(|e| next.partition_epoch > e)
        {
            st.isr_change_pending = None;
        }
        if !new_term {
            if leading {
                // a reassignment adds followers (they must fetch to join the ISR) or removes them
                let node = self.node;
                st.followers
                    .retain(|r, _| next.replicas.contains(r) && *r != node);
                for r in next.replicas.iter().filter(|r| **r != node) {
                    st.followers.entry(*r).or_insert(FollowerProgress {
                        leo: -1,
                        caught_up_ms: now_ms,
                        last_fetch_leader_leo: -1,
                        last_fetch_ms: now_ms,
                    });
                }
                self.advance_high_watermark(&st);
            }
            return Ok(Transition::None);
        }
        st.leader_epoch = next.leader_epoch;
        st.leading = leading;
        st.followers.clear();
        st.isr_change_pending = None;
        if leading {
            let mut log = self.log.lock().expect("log lock");
            let end = log.log_end_offset();
            log.assign_epoch(next.leader_epoch, end)?;
            st.leader_start = end;
            for r in next.replicas.iter().filter(|r| **r != self.node) {
                st.followers.insert(
                    *r,
                    FollowerProgress {
                        leo: -1,
                        caught_up_ms: now_ms,
                        last_fetch_leader_leo: -1,
                        last_fetch_ms: now_ms,
                    },
                );
            }
            drop(log);
            st.needs_truncation = false;
            self.advance_high_watermark(&st);
            Ok(Transition::Leader)
        } else {
            st.needs_truncation = true;
            Ok(if next.leader >= 0 {
                Transition::Follower
            } else {
                Transition::None
            })
        }
    }

    /// Leader: the high watermark is the smallest log end among the ISR. Returns true if it
    /// moved.
    fn advance_high_watermark(&self, st: &ReplicaState) -> bool {
        let mut log = self.log.lock().expect("log lock");
        let mut hw = log.log_end_offset();
        for r in &st.isr {
            if *r == self.node {
                continue;
            }
            match st.followers.get(r) {
                Some(f) if f.leo >= 0 => hw = hw.min(f.leo),
                _ => return false,
            }
        }
        if hw > log.high_watermark() {
            log.update_high_watermark(hw);
            self.changed.notify_waiters();
            return true;
        }
        false
    }

    /// Waits until the high watermark reaches `offset` while this broker leads the
    /// partition; fails if leadership moves or `timeout` passes.
    pub async fn wait_for_high_watermark(
        &self,
        offset: i64,
        timeout: std::time::Duration,
    ) -> anyhow::Result<()> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let changed = self.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            if self.high_watermark() >= offset {
                return Ok(());
            }
            if !self.is_leader() {
                anyhow::bail!("{}-{} lost leadership", self.topic, self.index);
            }
            tokio::select! {
                _ = changed => {}
                _ = tokio::time::sleep_until(deadline) => {
                    anyhow::bail!("{}-{}: the ISR did not replicate in time", self.topic, self.index)
                }
            }
        }
    }

    pub fn append_as_leader(
        &self,
        records: &mut Vec<u8>,
        now_ms: i64,
    ) -> Result<AppendResult, StorageError> {
        self.refuse_offline()?;
        let st = self.state.lock().expect("replica state lock");
        if !st.leading {
            return Err(StorageError::NotLeader);
        }
        let result = self.checked(self.log.lock().expect("log lock").append_as_leader(
            records,
            st.leader_epoch,
            now_ms,
        ))?;
        self.advance_high_watermark(&st);
        Ok(result)
    }

    /// Writes a transaction marker for `producer_id`.
    pub fn append_marker(
        &self,
        producer_id: i64,
        producer_epoch: i16,
        commit: bool,
        coordinator_epoch: i32,
        now_ms: i64,
    ) -> Result<i64, StorageError> {
        self.refuse_offline()?;
        let st = self.state.lock().expect("replica state lock");
        if !st.leading {
            return Err(StorageError::NotLeader);
        }
        let offset = self.checked(self.log.lock().expect("log lock").append_marker(
            producer_id,
            producer_epoch,
            commit,
            coordinator_epoch,
            st.leader_epoch,
            now_ms,
        ))?;
        self.advance_high_watermark(&st);
        Ok(offset)
    }

    /// Leader: a follower fetched from `fetch_offset`, so its log ends there. Returns true if
    /// the high watermark moved, and the ISR to propose if the follower should join it.
    pub fn follower_fetched(
        &self,
        replica: i32,
        fetch_offset: i64,
        now_ms: i64,
    ) -> (bool, Option<(Vec<i32>, i32)>) {
        let mut st = self.state.lock().expect("replica state lock");
        if !st.leading {
            return (false, None);
        }
        let (leader_end, hw) = {
            let log = self.log.lock().expect("log lock");
            (log.log_end_offset(), log.high_watermark())
        };
        let Some(f) = st.followers.get_mut(&replica) else {
            return (false, None);
        };
        if fetch_offset >= leader_end {
            f.caught_up_ms = now_ms;
        } else if f.last_fetch_leader_leo >= 0 && fetch_offset >= f.last_fetch_leader_leo {
            f.caught_up_ms = f.caught_up_ms.max(f.last_fetch_ms);
        }
        f.leo = fetch_offset.min(leader_end);
        f.last_fetch_leader_leo = leader_end;
        f.last_fetch_ms = now_ms;
        let advanced = self.advance_high_watermark(&st);
        let joins = !st.isr.contains(&replica)
            && fetch_offset >= hw
            && fetch_offset >= st.leader_start
            && st.isr_change_pending.is_none();
        if joins {
            let mut isr = st.isr.clone();
            isr.push(replica);
            st.isr_change_pending = Some(st.partition_epoch);
            return (advanced, Some((isr, st.partition_epoch)));
        }
        (advanced, None)
    }

    /// Leader: the ISR without followers that have not caught up for `lag_max_ms`, if any
    /// must go, with the partition epoch to propose it against.
    pub fn shrink_isr(&self, now_ms: i64, lag_max_ms: i64) -> Option<(Vec<i32>, i32)> {
        let mut st = self.state.lock().expect("replica state lock");
        if !st.leading || st.isr_change_pending.is_some() {
            return None;
        }
        let isr: Vec<i32> = st
            .isr
            .iter()
            .copied()
            .filter(|r| {
                *r == self.node
                    || st
                        .followers
                        .get(r)
                        .is_some_and(|f| now_ms - f.caught_up_ms <= lag_max_ms)
            })
            .collect();
        if isr.len() == st.isr.len() {
            return None;
        }
        st.isr_change_pending = Some(st.partition_epoch);
        Some((isr, st.partition_epoch))
    }

    /// Leader: an ISR change was not accepted; a later check may propose again.
    pub fn isr_change_failed(&self) {
        self.state
            .lock()
            .expect("replica state lock")
            .isr_change_pending = None;
    }

    /// Follower: truncates the log to `offset` (where it agrees with the leader's), unless
    /// the leader changed since `epoch` was asked about.
    pub fn truncate_for(&self, epoch: i32, offset: i64) -> Result<(), StorageError> {
        let mut st = self.state.lock().expect("replica state lock");
        if st.leading || st.leader_epoch != epoch || !st.needs_truncation {
            return Ok(());
        }
        let mut log = self.log.lock().expect("log lock");
        if offset < log.log_end_offset() {
            tracing::info!(
                topic = self.topic,
                partition = self.index,
                from = log.log_end_offset(),
                to = offset,
                "truncating a divergent tail"
            );
            log.truncate_to(offset)?;
        }
        st.needs_truncation = false;
        Ok(())
    }

    /// Follower: the log must be reconciled with the leader's again.
    pub fn needs_reconcile(&self, epoch: i32) {
        let mut st = self.state.lock().expect("replica state lock");
        if !st.leading && st.leader_epoch == epoch {
            st.needs_truncation = true;
        }
    }

    /// Follower: appends what the leader of `epoch` sent and follows its high watermark
    /// (nothing, if leadership changed since the fetch was sent). Returns segments a moved log
    /// start removed, to delete later.
    pub fn append_as_follower(
        &self,
        epoch: i32,
        records: &[u8],
        leader_hw: i64,
        leader_log_start: i64,
        now_ms: i64,
    ) -> Result<Vec<ferrolog_storage::segment::DeletedSegment>, StorageError> {
        self.refuse_offline()?;
        let st = self.state.lock().expect("replica state lock");
        if st.leading || st.leader_epoch != epoch || st.needs_truncation {
            return Ok(Vec::new());
        }
        let mut log = self.log.lock().expect("log lock");
        let end = self.checked(log.append_as_follower(records, now_ms))?;
        let hw = leader_hw.min(end);
        if hw > log.high_watermark() {
            log.update_high_watermark(hw);
        }
        if leader_log_start > log.log_start_offset() && leader_log_start <= log.high_watermark() {
            return Ok(log.delete_records_before(leader_log_start, now_ms)?.1);
        }
        Ok(Vec::new())
    }

    /// Leader: moves the log start offset to `offset` (-1: the high watermark), as
    /// DeleteRecords asks; followers follow it through their fetches. Returns the new log
    /// start, the segments to delete and the delay to delete them after.
    pub fn delete_records(
        &self,
        offset: i64,
        now_ms: i64,
    ) -> Result<(i64, Vec<ferrolog_storage::segment::DeletedSegment>, i64), DeleteRecordsError>
    {
        let st = self.state.lock().expect("replica state lock");
        if !st.leading {
            return Err(DeleteRecordsError::NotLeader);
        }
        let mut log = self.log.lock().expect("log lock");
        if !log.config().delete_policy {
            return Err(DeleteRecordsError::PolicyViolation);
        }
        let (start, deleted) = log
            .delete_records_before(offset, now_ms)
            .map_err(DeleteRecordsError::Storage)?;
        Ok((start, deleted, log.config().file_delete_delay_ms))
    }

    /// Resolves what a read returns; read the slice's bytes after this returns.
    pub fn read(
        &self,
        offset: i64,
        max_bytes: usize,
        bound: ReadBound,
        min_one_batch: bool,
    ) -> Result<ReadResult, StorageError> {
        self.refuse_offline()?;
        let read = self
            .log
            .lock()
            .expect("log lock")
            .read(offset, max_bytes, bound, min_one_batch);
        self.checked(read)
    }

    pub fn with_log<T>(&self, f: impl FnOnce(&mut Log) -> T) -> T {
        f(&mut self.log.lock().expect("log lock"))
    }

    pub fn offsets(&self) -> LogOffsets {
        let log = self.log.lock().expect("log lock");
        LogOffsets {
            dir: log.dir().to_path_buf(),
            topic: self.topic.clone(),
            partition: self.index,
            recovery_point: log.recovery_point(),
            log_start_offset: log.log_start_offset(),
            high_watermark: log.high_watermark(),
        }
    }
}

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
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        if entry.file_type()?.is_file() {
            let dest = to.join(entry.file_name());
            std::fs::copy(entry.path(), &dest)?;
            std::fs::File::open(&dest)?.sync_all()?;
        }
    }
    sync_dir(to)
}

fn sync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

/// Why a DeleteRecords of one partition was refused.
#[derive(Debug)]
pub enum DeleteRecordsError {
    /// This broker does not lead the partition.
    NotLeader,
    /// The topic's `cleanup.policy` lacks `delete`.
    PolicyViolation,
    Storage(StorageError),
}

pub struct ReplicaManager {
    node: i32,
    log_manager: LogManager,
    partitions: RwLock<HashMap<(String, i32), Arc<Partition>>>,
    /// Set once any replica's log hit an I/O error (shared with every partition).
    io_failed: Arc<std::sync::atomic::AtomicBool>,
    /// Woken on every append (delayed fetches wait on it).
    pub appended: Notify,
    /// Woken when a high watermark moves (acks=all produces wait on it).
    pub committed: Notify,
}

impl ReplicaManager {
    pub fn new(node: i32, log_manager: LogManager) -> ReplicaManager {
        ReplicaManager {
            node,
            committed: Notify::new(),
            log_manager,
            io_failed: Default::default(),
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
            p.with_log(|l| {
                if *l.config() != config {
                    l.set_config(config);
                }
            });
            let transition = p.apply(state, now)?;
            self.committed.notify_waiters();
            return Ok(transition);
        }
        let log = self
            .log_manager
            .open_log(topic, partition, &topic_id, config)?;
        let p = Arc::new(Partition {
            topic: topic.to_string(),
            index: partition,
            topic_id,
            node: self.node,
            state: Mutex::new(ReplicaState {
                replicas: Vec::new(),
                isr: Vec::new(),
                leader: -1,
                leader_epoch: -1,
                partition_epoch: -1,
                leading: false,
                needs_truncation: false,
                isr_change_pending: None,
                leader_start: 0,
                followers: HashMap::new(),
            }),
            log: Mutex::new(log),
            changed: Notify::new(),
            offline: Default::default(),
            io_failed: self.io_failed.clone(),
        });
        let transition = p.apply(state, now)?;
        self.partitions
            .write()
            .expect("partitions lock")
            .insert((topic.to_string(), partition), p);
        Ok(transition)
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
        }
        if let Some(dir) = self.log_manager.forget(topic, partition) {
            let _ = std::fs::remove_dir_all(dir);
        }
        Ok(())
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
        let mut log = p.log.lock().expect("log lock");
        if log.dir() == target {
            return Ok(());
        }
        let future = lm.future_dir(index, topic, partition);
        let moved = (|| -> Result<Log> {
            log.flush()?;
            copy_dir(log.dir(), &future)?;
            std::fs::rename(&future, &target)?;
            sync_dir(dest)?;
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
        match moved {
            Ok(moved) => {
                let old = std::mem::replace(&mut *log, moved);
                let old_dir = old.dir().to_path_buf();
                drop(old);
                lm.placed(topic, partition, index);
                if let Err(e) = std::fs::remove_dir_all(&old_dir) {
                    tracing::warn!("removing {} after moving it: {e}", old_dir.display());
                }
                tracing::info!(topic, partition, "replica moved to {}", dest.display());
                Ok(())
            }
            Err(e) => {
                let _ = std::fs::remove_dir_all(&future);
                if target.exists() && log.dir() != target {
                    let _ = std::fs::remove_dir_all(&target);
                }
                tracing::error!(topic, partition, "moving to {}: {e:#}", dest.display());
                Err(MoveError::Storage(format!("{e:#}")))
            }
        }
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
        for p in self.all().into_iter().filter(|p| !p.is_offline()) {
            if let Err(e) = p.checked(p.with_log(|l| l.maybe_flush_by_time(now_ms))) {
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
        if !dir_offline && !self.io_failed.load(std::sync::atomic::Ordering::SeqCst) {
            return Vec::new();
        }
        let partitions = self.all();
        for p in partitions.iter().filter(|p| p.is_offline()) {
            let dir = p.with_log(|l| l.dir().parent().map(Path::to_path_buf));
            if let Some(dir) = dir {
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
            let in_offline_dir = p.with_log(|l| {
                l.dir()
                    .parent()
                    .is_some_and(|d| offline.iter().any(|o| o == d))
            });
            if in_offline_dir {
                if !p.offline.swap(true, std::sync::atomic::Ordering::SeqCst) {
                    p.changed.notify_waiters();
                }
                out.push((p.topic_id, p.index));
            }
        }
        out
    }

    pub fn checkpoint(&self) -> Result<()> {
        self.log_manager
            .write_checkpoints(|| self.all().iter().map(|p| p.offsets()).collect())
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
