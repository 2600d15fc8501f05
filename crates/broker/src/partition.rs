//! One partition replica hosted by this broker: its replication state (leader or follower,
//! ISR, leader epoch, what the leader knows of each follower) and its log, and every operation
//! on them. Handlers and the replica fetcher go through these operations; none of them sees the
//! `Log`.
//!
//! Concurrency: the replica state and the log are behind their own mutexes, taken in that
//! order. An operation that depends on the replica state (append as leader: leadership, leader
//! epoch and min-ISR; a follower's append: the epoch it fetched under) holds the state lock
//! across the log write, so leadership cannot change in between. Reads take the log lock only
//! to resolve a file slice; the bytes are sent after it is released. Every event that can
//! complete a delayed operation (an append, a moved high watermark or log start, a leadership
//! change, the replica going offline) wakes the partition's [`Watchers`].

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use ferrolog_storage::batch::BatchHeader;
use ferrolog_storage::producer_state::ProducerInfo;
use ferrolog_storage::segment::DeletedSegment;
use ferrolog_storage::{AppendResult, Log, LogConfig, ReadBound, ReadResult, StorageError};
use kafka_protocol::ResponseError;
use uuid::Uuid;

use crate::log_manager::LogOffsets;
use crate::metadata::PartitionState;
use crate::purgatory::{Waiter, Watchers};

/// What a leader knows of one follower.
#[derive(Debug, Clone, Copy)]
struct FollowerProgress {
    /// Its log end offset (the offset of its last fetch); `None` until it fetches.
    leo: Option<i64>,
    /// When it last had everything the leader had.
    caught_up_ms: i64,
    /// The leader's log end and the time at its previous fetch.
    last_fetch_leader_leo: Option<i64>,
    last_fetch_ms: i64,
}

impl FollowerProgress {
    fn new(now_ms: i64) -> FollowerProgress {
        FollowerProgress {
            leo: None,
            caught_up_ms: now_ms,
            last_fetch_leader_leo: None,
            last_fetch_ms: now_ms,
        }
    }
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

/// Why an operation on a partition was refused.
#[derive(Debug, thiserror::Error)]
pub enum PartitionError {
    #[error("this broker is not the leader of the partition")]
    NotLeader,
    #[error("the request's leader epoch {0} is older than the current one")]
    FencedLeaderEpoch(i32),
    #[error("the request's leader epoch {0} is newer than the current one")]
    UnknownLeaderEpoch(i32),
    #[error("The size of the current ISR ({isr}) is insufficient to satisfy the min.isr requirement of {min_isr}")]
    NotEnoughReplicas { isr: usize, min_isr: i64 },
    #[error("the topic's cleanup.policy does not include delete")]
    PolicyViolation,
    #[error(transparent)]
    Storage(#[from] StorageError),
}

impl PartitionError {
    pub fn code(&self) -> i16 {
        match self {
            PartitionError::NotLeader => ResponseError::NotLeaderOrFollower.code(),
            PartitionError::FencedLeaderEpoch(_) => ResponseError::FencedLeaderEpoch.code(),
            PartitionError::UnknownLeaderEpoch(_) => ResponseError::UnknownLeaderEpoch.code(),
            PartitionError::NotEnoughReplicas { .. } => ResponseError::NotEnoughReplicas.code(),
            PartitionError::PolicyViolation => ResponseError::PolicyViolation.code(),
            PartitionError::Storage(e) => crate::errors::storage_error_code(e),
        }
    }
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
    /// A request's `current_leader_epoch` against this replica's (-1: the client does not
    /// know it, anything goes), as Kafka fences Fetch, ListOffsets and OffsetForLeaderEpoch.
    pub fn check_epoch(&self, current_leader_epoch: i32) -> Result<(), PartitionError> {
        if current_leader_epoch < 0 || current_leader_epoch == self.leader_epoch {
            Ok(())
        } else if current_leader_epoch < self.leader_epoch {
            Err(PartitionError::FencedLeaderEpoch(current_leader_epoch))
        } else {
            Err(PartitionError::UnknownLeaderEpoch(current_leader_epoch))
        }
    }
}

/// An append as leader, with the leader epoch it was made in and the effective
/// `min.insync.replicas` (what an acks=all wait for it needs).
#[derive(Debug)]
pub struct LeaderAppend {
    pub result: AppendResult,
    pub leader_epoch: i32,
    pub min_isr: i64,
}

/// A partition's offsets as a reader sees them.
#[derive(Debug, Clone, Copy)]
pub struct Offsets {
    pub log_start: i64,
    pub high_watermark: i64,
    pub last_stable: i64,
    pub log_end: i64,
}

/// What ListOffsets looks up.
#[derive(Debug, Clone, Copy)]
pub enum OffsetSpec {
    /// The high watermark (read_committed: the last stable offset).
    Latest,
    Earliest,
    /// The first record with the log's largest timestamp.
    MaxTimestamp,
    /// The first record with a timestamp at or after this.
    Timestamp(i64),
}

/// A record ListOffsets found.
#[derive(Debug, Clone, Copy)]
pub struct FoundOffset {
    pub offset: i64,
    /// -1 for Latest and Earliest, as Kafka answers.
    pub timestamp: i64,
    pub leader_epoch: i32,
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
    /// The delayed produces and fetches waiting on this partition.
    pub(crate) watchers: Watchers,
    /// Its log directory failed (an I/O error here, or in another partition of the
    /// directory): nothing is read or written until a restart.
    offline: AtomicBool,
    /// The replica manager's: tells it to look for failed directories.
    io_failed: Arc<AtomicBool>,
}

fn offline_error() -> StorageError {
    StorageError::Io(std::io::Error::other(
        "the partition's log directory is offline",
    ))
}

impl Partition {
    pub(crate) fn new(
        topic: &str,
        index: i32,
        topic_id: Uuid,
        node: i32,
        log: Log,
        io_failed: Arc<AtomicBool>,
    ) -> Partition {
        Partition {
            topic: topic.to_string(),
            index,
            topic_id,
            node,
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
            watchers: Watchers::default(),
            offline: AtomicBool::new(false),
            io_failed,
        }
    }

    // A panic under one of these locks leaves the partition as the last completed operation
    // left it (every operation changes the state before or after its I/O, never half way), so
    // a poisoned lock is taken over rather than failing every later request.
    fn state(&self) -> MutexGuard<'_, ReplicaState> {
        crate::locks::lock(&self.state)
    }

    fn log(&self) -> MutexGuard<'_, Log> {
        crate::locks::lock(&self.log)
    }

    pub fn is_offline(&self) -> bool {
        self.offline.load(Ordering::SeqCst)
    }

    /// Takes the replica offline (its directory failed); true if it was online.
    pub(crate) fn take_offline(&self) -> bool {
        let was_online = !self.offline.swap(true, Ordering::SeqCst);
        if was_online {
            self.watchers.wake();
        }
        was_online
    }

    /// An I/O error from the log takes the partition offline at once (its whole directory
    /// follows, see `ReplicaManager::take_failed_dirs_offline`).
    fn checked<T>(&self, result: Result<T, StorageError>) -> Result<T, StorageError> {
        if let Err(StorageError::Io(e)) = &result {
            self.io_failed.store(true, Ordering::SeqCst);
            if self.take_offline() {
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
        let st = self.state();
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

    /// The leadership, if this broker leads the partition at `current_leader_epoch` (-1: any).
    pub fn leader_at(&self, current_leader_epoch: i32) -> Result<Leadership, PartitionError> {
        let l = self.leadership();
        if !l.leading {
            return Err(PartitionError::NotLeader);
        }
        l.check_epoch(current_leader_epoch)?;
        Ok(l)
    }

    /// Whether `replica` is in the ISR as this broker knows it.
    pub fn in_sync(&self, replica: i32) -> bool {
        self.state().isr.contains(&replica)
    }

    pub fn high_watermark(&self) -> i64 {
        self.log().high_watermark()
    }

    pub fn offsets(&self) -> Offsets {
        let log = self.log();
        Offsets {
            log_start: log.log_start_offset(),
            high_watermark: log.high_watermark(),
            last_stable: log.last_stable_offset(),
            log_end: log.log_end_offset(),
        }
    }

    /// The log directory the replica lives in and its size in bytes.
    pub fn log_dir_and_size(&self) -> (Option<PathBuf>, u64) {
        let log = self.log();
        (
            log.dir().parent().map(|d| d.to_path_buf()),
            log.size_bytes(),
        )
    }

    pub(crate) fn dir(&self) -> PathBuf {
        self.log().dir().to_path_buf()
    }

    /// The newest leader epoch in the log.
    pub fn latest_epoch(&self) -> Option<i32> {
        self.log().latest_epoch()
    }

    /// Where `epoch` ended in this log: (the largest epoch ≤ it, its end offset).
    pub fn end_offset_for_epoch(&self, epoch: i32) -> Option<(i32, i64)> {
        self.log().end_offset_for_epoch(epoch)
    }

    /// ListOffsets: the offset `spec` names, with its timestamp and leader epoch, through the
    /// time index and then the exact record inside the batch; `None` if there is none.
    pub fn list_offset(
        &self,
        spec: OffsetSpec,
        read_committed: bool,
    ) -> anyhow::Result<Option<FoundOffset>> {
        let leader_epoch = self.leader_epoch();
        let log = self.log();
        let epoch_of = |offset: i64| log.epoch_at(offset).unwrap_or(leader_epoch);
        let found = |offset: i64, timestamp: i64| FoundOffset {
            offset,
            timestamp,
            leader_epoch: epoch_of(offset),
        };
        let limit = log.config().max_decompressed_bytes();
        Ok(match spec {
            // read_committed consumers see the log up to the last stable offset
            OffsetSpec::Latest => Some(FoundOffset {
                offset: if read_committed {
                    log.last_stable_offset()
                } else {
                    log.high_watermark()
                },
                timestamp: -1,
                leader_epoch,
            }),
            OffsetSpec::Earliest => Some(found(log.log_start_offset(), -1)),
            OffsetSpec::MaxTimestamp => match log.max_timestamp_batch()? {
                Some((header, bytes)) => {
                    let (offset, timestamp) =
                        find_record(&header, bytes, header.max_timestamp, true, limit)?;
                    Some(found(offset, timestamp))
                }
                None => None,
            },
            OffsetSpec::Timestamp(t) => match log.batch_for_timestamp(t)? {
                Some((header, bytes)) => {
                    let (offset, timestamp) = find_record(&header, bytes, t, false, limit)?;
                    // never below the log start, nor inside an open transaction for
                    // read_committed readers
                    let offset = offset.max(log.log_start_offset());
                    (!read_committed || offset < log.last_stable_offset())
                        .then(|| found(offset, timestamp))
                }
                None => None,
            },
        })
    }

    pub fn producers(&self) -> Vec<ProducerInfo> {
        self.log().producers()
    }

    pub fn config(&self) -> LogConfig {
        self.log().config().clone()
    }

    pub(crate) fn set_config(&self, config: &LogConfig) {
        let mut log = self.log();
        if log.config() != config {
            log.set_config(config.clone());
        }
    }

    /// Applies the partition's state from the metadata; says if this broker just became its
    /// leader or follower.
    pub fn apply(&self, next: &PartitionState, now_ms: i64) -> Result<Transition, StorageError> {
        {
            let st = self.state();
            let unchanged = st.leader == next.leader
                && st.leader_epoch == next.leader_epoch
                && st.partition_epoch == next.partition_epoch
                && st.isr == next.isr
                && st.replicas == next.replicas;
            if unchanged {
                return Ok(Transition::None);
            }
        }
        let transition = self.apply_state(next, now_ms);
        self.watchers.wake();
        transition
    }

    fn apply_state(&self, next: &PartitionState, now_ms: i64) -> Result<Transition, StorageError> {
        let mut st = self.state();
        let leading = next.leader == self.node;
        let new_term = leading != st.leading || next.leader_epoch != st.leader_epoch;
        debug_assert!(
            next.leader_epoch >= st.leader_epoch,
            "{}-{}: leader epoch went back from {} to {}",
            self.topic,
            self.index,
            st.leader_epoch,
            next.leader_epoch
        );
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
                    st.followers
                        .entry(*r)
                        .or_insert(FollowerProgress::new(now_ms));
                }
                self.advance_high_watermark(&st, &mut self.log());
            }
            return Ok(Transition::None);
        }
        st.leader_epoch = next.leader_epoch;
        st.leading = leading;
        st.followers.clear();
        st.isr_change_pending = None;
        if leading {
            let mut log = self.log();
            let end = log.log_end_offset();
            log.assign_epoch(next.leader_epoch, end)?;
            st.leader_start = end;
            for r in next.replicas.iter().filter(|r| **r != self.node) {
                st.followers.insert(*r, FollowerProgress::new(now_ms));
            }
            st.needs_truncation = false;
            self.advance_high_watermark(&st, &mut log);
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
    /// moved (it never goes back).
    fn advance_high_watermark(&self, st: &ReplicaState, log: &mut Log) -> bool {
        let mut hw = log.log_end_offset();
        for r in &st.isr {
            if *r == self.node {
                continue;
            }
            match st.followers.get(r).and_then(|f| f.leo) {
                Some(leo) => hw = hw.min(leo),
                None => return false,
            }
        }
        if hw > log.high_watermark() {
            debug_assert!(hw <= log.log_end_offset());
            log.update_high_watermark(hw);
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
        let waiter = Waiter::new();
        loop {
            let seen = self.watchers.version();
            if self.high_watermark() >= offset {
                return Ok(());
            }
            if !self.is_leader() {
                anyhow::bail!("{}-{} lost leadership", self.topic, self.index);
            }
            waiter.watch(&self.watchers, 0, seen);
            if !waiter.changed_before(deadline).await {
                anyhow::bail!(
                    "{}-{}: the ISR did not replicate in time",
                    self.topic,
                    self.index
                )
            }
            waiter.take_changed();
        }
    }

    /// A write as leader: under the state lock, checks leadership and, with `min_isr`, the
    /// ISR's size (capped by the replication factor), then runs `write` on the log in the
    /// current leader epoch, advances the high watermark and wakes the watchers. Returns what
    /// `write` returned, the leader epoch and the effective min ISR.
    fn write_as_leader<T>(
        &self,
        min_isr: Option<i64>,
        write: impl FnOnce(&mut Log, i32) -> Result<T, StorageError>,
    ) -> Result<(T, i32, i64), PartitionError> {
        self.refuse_offline()?;
        let st = self.state();
        if !st.leading {
            return Err(PartitionError::NotLeader);
        }
        let effective_min_isr = min_isr.unwrap_or(1).min(st.replicas.len().max(1) as i64);
        if min_isr.is_some() && (st.isr.len() as i64) < effective_min_isr {
            return Err(PartitionError::NotEnoughReplicas {
                isr: st.isr.len(),
                min_isr: effective_min_isr,
            });
        }
        let mut log = self.log();
        let end_before = log.log_end_offset();
        let written = self.checked(write(&mut log, st.leader_epoch))?;
        debug_assert!(log.log_end_offset() >= end_before);
        self.advance_high_watermark(&st, &mut log);
        let epoch = st.leader_epoch;
        drop(log);
        drop(st);
        self.watchers.wake();
        Ok((written, epoch, effective_min_isr))
    }

    /// Appends a producer's batches as leader. With `min_isr` (acks=all: the topic's
    /// `min.insync.replicas`), the ISR must be at least that large (capped by the replication
    /// factor), checked under the same lock as the append, as Kafka does.
    pub fn append_as_leader(
        &self,
        records: &mut Vec<u8>,
        min_isr: Option<i64>,
        now_ms: i64,
    ) -> Result<LeaderAppend, PartitionError> {
        let (result, leader_epoch, min_isr) = self.write_as_leader(min_isr, |log, epoch| {
            let end_before = log.log_end_offset();
            let result = log.append_as_leader(records, epoch, now_ms)?;
            debug_assert!(result.records == 0 || result.first_offset == end_before);
            Ok(result)
        })?;
        Ok(LeaderAppend {
            result,
            leader_epoch,
            min_isr,
        })
    }

    /// Writes a transaction marker for `producer_id`.
    pub fn append_marker(
        &self,
        producer_id: i64,
        producer_epoch: i16,
        commit: bool,
        coordinator_epoch: i32,
        now_ms: i64,
    ) -> Result<i64, PartitionError> {
        let (offset, ..) = self.write_as_leader(None, |log, epoch| {
            log.append_marker(
                producer_id,
                producer_epoch,
                commit,
                coordinator_epoch,
                epoch,
                now_ms,
            )
        })?;
        Ok(offset)
    }

    /// Leader: a follower fetched from `fetch_offset`, so its log ends there. Returns the ISR
    /// to propose if the follower should join it.
    pub fn follower_fetched(
        &self,
        replica: i32,
        fetch_offset: i64,
        now_ms: i64,
    ) -> Option<(Vec<i32>, i32)> {
        let mut st = self.state();
        if !st.leading {
            return None;
        }
        let mut log = self.log();
        let (leader_end, hw) = (log.log_end_offset(), log.high_watermark());
        let f = st.followers.get_mut(&replica)?;
        if fetch_offset >= leader_end {
            f.caught_up_ms = now_ms;
        } else if f
            .last_fetch_leader_leo
            .is_some_and(|leo| fetch_offset >= leo)
        {
            f.caught_up_ms = f.caught_up_ms.max(f.last_fetch_ms);
        }
        f.leo = Some(fetch_offset.min(leader_end));
        f.last_fetch_leader_leo = Some(leader_end);
        f.last_fetch_ms = now_ms;
        let advanced = self.advance_high_watermark(&st, &mut log);
        drop(log);
        let joins = !st.isr.contains(&replica)
            && fetch_offset >= hw
            && fetch_offset >= st.leader_start
            && st.isr_change_pending.is_none();
        let proposal = joins.then(|| {
            let mut isr = st.isr.clone();
            isr.push(replica);
            st.isr_change_pending = Some(st.partition_epoch);
            (isr, st.partition_epoch)
        });
        drop(st);
        if advanced {
            self.watchers.wake();
        }
        proposal
    }

    /// Leader: the ISR without followers that have not caught up for `lag_max_ms`, if any
    /// must go, with the partition epoch to propose it against.
    pub fn shrink_isr(&self, now_ms: i64, lag_max_ms: i64) -> Option<(Vec<i32>, i32)> {
        let mut st = self.state();
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
        self.state().isr_change_pending = None;
    }

    /// Follower: where to truncate to agree with the leader, from its answer to
    /// OffsetForLeaderEpoch for `leader_epoch` (the epoch asked about was `latest`, this log's
    /// newest).
    pub fn divergence_point(&self, latest: Option<i32>, leader_epoch: i32, end_offset: i64) -> i64 {
        let log = self.log();
        match latest {
            // nothing to compare epochs on: keep what is known committed
            _ if leader_epoch < 0 || end_offset < 0 => log.high_watermark(),
            None => log.high_watermark(),
            Some(latest) => {
                let ours = if leader_epoch == latest {
                    log.log_end_offset()
                } else {
                    log.end_offset_for_epoch(leader_epoch)
                        .map_or(-1, |(_, end)| end)
                };
                end_offset.min(ours.max(0))
            }
        }
    }

    /// Follower: truncates the log to `offset` (where it agrees with the leader's), unless
    /// the leader changed since `epoch` was asked about.
    pub fn truncate_for(&self, epoch: i32, offset: i64) -> Result<(), StorageError> {
        let mut st = self.state();
        if st.leading || st.leader_epoch != epoch || !st.needs_truncation {
            return Ok(());
        }
        let mut log = self.log();
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
        let mut st = self.state();
        if !st.leading && st.leader_epoch == epoch {
            st.needs_truncation = true;
        }
    }

    /// Follower: the log starts over at the leader's log start (this one ends before it).
    pub fn reset_to(&self, offset: i64, now_ms: i64) -> Result<(), StorageError> {
        let result = self.checked(self.log().reset_to(offset, now_ms));
        self.watchers.wake();
        result
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
    ) -> Result<Vec<DeletedSegment>, StorageError> {
        self.refuse_offline()?;
        let st = self.state();
        if st.leading || st.leader_epoch != epoch || st.needs_truncation {
            return Ok(Vec::new());
        }
        let mut log = self.log();
        let end = self.checked(log.append_as_follower(records, now_ms))?;
        let hw = leader_hw.min(end);
        if hw > log.high_watermark() {
            log.update_high_watermark(hw);
        }
        let deleted = if leader_log_start > log.log_start_offset()
            && leader_log_start <= log.high_watermark()
        {
            log.delete_records_before(leader_log_start, now_ms)?.1
        } else {
            Vec::new()
        };
        drop(log);
        drop(st);
        if !records.is_empty() || !deleted.is_empty() {
            self.watchers.wake();
        }
        Ok(deleted)
    }

    /// Leader: moves the log start offset to `offset` (-1: the high watermark), as
    /// DeleteRecords asks; followers follow it through their fetches. Returns the new log
    /// start, the segments to delete and the delay to delete them after.
    pub fn delete_records(
        &self,
        offset: i64,
        now_ms: i64,
    ) -> Result<(i64, Vec<DeletedSegment>, i64), PartitionError> {
        let st = self.state();
        if !st.leading {
            return Err(PartitionError::NotLeader);
        }
        let mut log = self.log();
        if !log.config().delete_policy {
            return Err(PartitionError::PolicyViolation);
        }
        let (start, deleted) = log.delete_records_before(offset, now_ms)?;
        let delay = log.config().file_delete_delay_ms;
        drop(log);
        drop(st);
        self.watchers.wake();
        Ok((start, deleted, delay))
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
        let read = self.log().read(offset, max_bytes, bound, min_one_batch);
        self.checked(read)
    }

    /// Replays every record of the log (coordinators loading their state).
    pub fn for_each_record<E: From<StorageError>>(
        &self,
        f: impl FnMut(ferrolog_records::Record) -> Result<(), E>,
    ) -> Result<(), E> {
        self.log().for_each_record(f)
    }

    /// Log management (retention, compaction, flushing, producer expiry) on the log under its
    /// lock. Not for request paths: they use the operations above.
    pub(crate) fn with_log<T>(&self, f: impl FnOnce(&mut Log) -> T) -> T {
        let mut log = self.log();
        let start = log.log_start_offset();
        let out = f(&mut log);
        let moved = log.log_start_offset() != start;
        drop(log);
        if moved {
            self.watchers.wake();
        }
        out
    }

    /// Like `with_log`, but an I/O error takes the replica offline.
    pub(crate) fn with_log_checked<T>(
        &self,
        f: impl FnOnce(&mut Log) -> Result<T, StorageError>,
    ) -> Result<T, StorageError> {
        let result = self.with_log(f);
        self.checked(result)
    }

    /// Moves the log (under its lock, so appends and reads wait) with `replace`, which gets the
    /// current log and returns the one to use from now on.
    pub(crate) fn replace_log(
        &self,
        replace: impl FnOnce(&mut Log) -> anyhow::Result<Option<Log>>,
    ) -> anyhow::Result<Option<Log>> {
        let mut log = self.log();
        Ok(replace(&mut log)?.map(|moved| std::mem::replace(&mut *log, moved)))
    }

    pub(crate) fn into_log(self) -> Log {
        self.log.into_inner().unwrap_or_else(|e| e.into_inner())
    }

    pub fn log_offsets(&self) -> LogOffsets {
        let log = self.log();
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

/// The first record of the batch with timestamp ≥ `target` (or, for the max-timestamp query, the
/// first record carrying exactly the batch's max timestamp).
fn find_record(
    header: &BatchHeader,
    bytes: Vec<u8>,
    target: i64,
    exact: bool,
    limit: usize,
) -> anyhow::Result<(i64, i64)> {
    if header.is_log_append_time() {
        return Ok((
            if exact {
                header.last_offset()
            } else {
                header.base_offset
            },
            header.max_timestamp,
        ));
    }
    let records = ferrolog_records::decode(&bytes, limit)
        .map_err(|e| anyhow::anyhow!("decoding batch: {e}"))?;
    for record in &records {
        let hit = if exact {
            record.timestamp == target
        } else {
            record.timestamp >= target
        };
        if hit {
            return Ok((record.offset, record.timestamp));
        }
    }
    Ok((header.last_offset(), header.max_timestamp))
}
