//! The transaction coordinator: a state machine per transactional id over the compacted
//! internal topic `__transaction_state` (partition = abs(javaHashCode(id)) % 50).
//!
//! On a single node this broker coordinates every transactional id and leads every partition,
//! so ending a transaction writes its markers directly: EndTxn persists PrepareCommit or
//! PrepareAbort, writes a COMMIT or ABORT control batch to every partition in the transaction
//! (committing or dropping transactional offsets in `__consumer_offsets`), then persists
//! CompleteCommit or CompleteAbort. A restart replays `__transaction_state` and finishes any
//! transaction left in a Prepare state; open transactions are aborted when their timeout runs
//! out, with an epoch bump that fences the producer.
//!
//! Concurrency: operations on one transactional id never interleave: each holds that id's
//! operation lock for its whole length (log writes, the ISR wait, markers sent to other
//! brokers), so a slow transaction holds up only its own id. The map of ids is behind a
//! mutex of its own, taken only to read or replace one entry, never across I/O. Lock order:
//! an id's operation lock, then the map, then partition logs, then the group coordinator's.

pub mod log;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

use anyhow::Result;
use kafka_protocol::ResponseError;

use crate::group::{CommittedOffset, OFFSETS_TOPIC};
use crate::Broker;

pub const TXN_TOPIC: &str = "__transaction_state";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxnState {
    Empty = 0,
    Ongoing = 1,
    PrepareCommit = 2,
    PrepareAbort = 3,
    CompleteCommit = 4,
    CompleteAbort = 5,
    Dead = 6,
    PrepareEpochFence = 7,
}

impl TxnState {
    pub fn from_code(code: i8) -> Option<TxnState> {
        use TxnState::*;
        Some(match code {
            0 => Empty,
            1 => Ongoing,
            2 => PrepareCommit,
            3 => PrepareAbort,
            4 => CompleteCommit,
            5 => CompleteAbort,
            6 => Dead,
            7 => PrepareEpochFence,
            _ => return None,
        })
    }

    /// The names DescribeTransactions and ListTransactions use.
    pub fn name(self) -> &'static str {
        use TxnState::*;
        match self {
            Empty => "Empty",
            Ongoing => "Ongoing",
            PrepareCommit => "PrepareCommit",
            PrepareAbort => "PrepareAbort",
            CompleteCommit => "CompleteCommit",
            CompleteAbort => "CompleteAbort",
            Dead => "Dead",
            PrepareEpochFence => "PrepareEpochFence",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnMetadata {
    pub producer_id: i64,
    pub producer_epoch: i16,
    /// The epoch before the last bump (-1: none), so a retried InitProducerId is recognised.
    pub last_producer_epoch: i16,
    pub timeout_ms: i32,
    pub state: TxnState,
    pub partitions: BTreeSet<(String, i32)>,
    pub last_update_ms: i64,
    pub start_ms: i64,
}

/// The transactional id's `__transaction_state` partition.
pub fn txn_partition(transactional_id: &str, partitions: i32) -> i32 {
    crate::group::offsets_partition(transactional_id, partitions)
}

#[derive(Default)]
pub struct TxnCoordinator {
    txns: Mutex<HashMap<String, TxnMetadata>>,
    /// Each transactional id's operation lock (see the module's concurrency note).
    operations: Mutex<HashMap<String, Arc<Mutex<()>>>>,
}

type Txns = HashMap<String, TxnMetadata>;

/// Per-partition errors of an AddPartitionsToTxn that was refused in part.
pub type PartitionErrors = Vec<((String, i32), ResponseError)>;

/// A transactional request's producer id and epoch against the coordinator's view.
fn check_producer(
    m: Option<&TxnMetadata>,
    producer_id: i64,
    epoch: i16,
) -> Result<(), ResponseError> {
    let Some(m) = m else {
        return Err(ResponseError::InvalidProducerIdMapping);
    };
    if m.producer_id != producer_id {
        return Err(ResponseError::InvalidProducerIdMapping);
    }
    if m.producer_epoch != epoch {
        return Err(ResponseError::ProducerFenced);
    }
    Ok(())
}

impl TxnCoordinator {
    fn lock(&self) -> std::sync::MutexGuard<'_, Txns> {
        crate::locks::lock(&self.txns)
    }

    /// Runs `f` as the only operation on transactional id `id` (see the module's note).
    fn exclusive<T>(&self, id: &str, f: impl FnOnce() -> T) -> T {
        let lock = self
            .operations
            .lock()
            .expect("transaction operations lock")
            .entry(id.to_string())
            .or_default()
            .clone();
        let _only = crate::lock_blocking(&lock);
        f()
    }

    /// The id's metadata, copied.
    fn get(&self, id: &str) -> Option<TxnMetadata> {
        self.lock().get(id).cloned()
    }

    fn insert(&self, id: &str, m: TxnMetadata) {
        self.lock().insert(id.to_string(), m);
    }

    /// Forgets the id; called under its operation lock, whose entry goes too unless another
    /// operation waits for it (every clone of it is made under the operations map's lock).
    fn remove(&self, id: &str) {
        self.lock().remove(id);
        self.operations
            .lock()
            .expect("transaction operations lock")
            .retain(|k, v| k != id || Arc::strong_count(v) > 2);
    }

    /// A copy of every transactional id's metadata, for ListTransactions and
    /// DescribeTransactions.
    pub fn snapshot(&self) -> Vec<(String, TxnMetadata)> {
        let mut out: Vec<_> = self
            .lock()
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// This broker no longer coordinates the transactional ids of `__transaction_state`
    /// partition `index` (of `partitions`): forgets them (their new coordinator loads them).
    pub fn unload_partition(&self, index: i32, partitions: i32) -> usize {
        let mut txns = self.lock();
        let before = txns.len();
        txns.retain(|id, _| txn_partition(id, partitions) != index);
        before - txns.len()
    }

    /// Applies a replayed `__transaction_state` record.
    pub fn replay(&self, transactional_id: String, value: Option<TxnMetadata>) {
        let mut txns = self.lock();
        match value {
            Some(mut m) => {
                if let Some(old) = txns.get(&transactional_id) {
                    if old.producer_id == m.producer_id && old.producer_epoch != m.producer_epoch {
                        m.last_producer_epoch = old.producer_epoch;
                    } else {
                        m.last_producer_epoch = old.last_producer_epoch;
                    }
                }
                txns.insert(transactional_id, m);
            }
            None => {
                txns.remove(&transactional_id);
            }
        }
    }
}

impl Broker {
    /// Creates `__transaction_state` on first use.
    pub fn ensure_txn_topic(&self) -> Result<i32> {
        self.ensure_internal_topic(
            TXN_TOPIC,
            "transaction.state.log.num.partitions",
            "transaction.state.log.segment.bytes",
        )
    }

    /// A tombstone for the transactional id.
    fn remove_txn_record(&self, transactional_id: &str) -> Result<()> {
        let partitions = self.ensure_txn_topic()?;
        let record = ferrolog_records::plain_record(
            Some(log::key(transactional_id)),
            None,
            vec![],
            crate::now_ms(),
        );
        let index = txn_partition(transactional_id, partitions);
        self.append_internal(TXN_TOPIC, index, &[record])
    }

    fn persist_txn(&self, transactional_id: &str, m: &TxnMetadata) -> Result<()> {
        let partitions = self.ensure_txn_topic()?;
        let record = ferrolog_records::plain_record(
            Some(log::key(transactional_id)),
            Some(log::value(m)),
            vec![],
            crate::now_ms(),
        );
        let index = txn_partition(transactional_id, partitions);
        self.append_internal(TXN_TOPIC, index, &[record])
    }

    /// Stores the new metadata: written to the log first, then applied.
    fn commit_txn(&self, id: &str, mut m: TxnMetadata) -> Result<(), ResponseError> {
        m.last_update_ms = crate::now_ms();
        self.persist_txn(id, &m).map_err(|e| {
            tracing::error!(
                transactional_id = id,
                "writing transaction state failed: {e:#}"
            );
            ResponseError::CoordinatorNotAvailable
        })?;
        self.txns.insert(id, m);
        Ok(())
    }

    /// Writes the markers of a transaction in a Prepare state and completes it.
    fn finish_txn(&self, id: &str, mut m: TxnMetadata) -> Result<(), ResponseError> {
        let commit = m.state == TxnState::PrepareCommit;
        let now = crate::now_ms();
        // partitions led by other brokers get their markers through WriteTxnMarkers
        let (local, remote): (Vec<_>, Vec<_>) = m.partitions.iter().cloned().partition(|(t, i)| {
            self.replicas.get(t, *i).is_some_and(|p| p.is_leader()) || self.quorum.is_none()
        });
        self.write_remote_markers(&remote, m.producer_id, m.producer_epoch, commit)?;
        for (topic, index) in &local {
            let Some(partition) = self.replicas.get(topic, *index) else {
                tracing::warn!(
                    topic,
                    partition = index,
                    "transaction marker for a partition that is gone"
                );
                continue;
            };
            if let Err(e) = partition.append_marker(m.producer_id, m.producer_epoch, commit, 0, now)
            {
                tracing::error!(
                    topic,
                    partition = index,
                    "writing a transaction marker failed: {e}"
                );
                return Err(ResponseError::CoordinatorNotAvailable);
            }
            if topic == OFFSETS_TOPIC {
                self.groups.complete_txn_offsets(m.producer_id, commit);
            }
        }
        m.state = if commit {
            TxnState::CompleteCommit
        } else {
            TxnState::CompleteAbort
        };
        m.partitions.clear();
        self.commit_txn(id, m)
    }

    /// Aborts an open transaction after bumping the epoch, which fences its producer.
    fn abort_with_bump(&self, id: &str, mut m: TxnMetadata) -> Result<TxnMetadata, ResponseError> {
        m.last_producer_epoch = m.producer_epoch;
        m.producer_epoch = m.producer_epoch.saturating_add(1);
        m.state = TxnState::PrepareAbort;
        self.commit_txn(id, m.clone())?;
        self.finish_txn(id, m)?;
        self.txns
            .get(id)
            .ok_or(ResponseError::CoordinatorNotAvailable)
    }

    /// A new producer id from the durable blocks of the metadata log.
    pub fn allocate_producer_id(&self) -> Result<i64, ResponseError> {
        self.controller.next_producer_id().map_err(|e| {
            tracing::error!("allocating a producer id failed: {e:#}");
            ResponseError::CoordinatorNotAvailable
        })
    }

    /// InitProducerId for a transactional id: a producer id and a new epoch, after aborting
    /// (or completing) what the previous instance left open.
    pub fn init_transactional_producer(
        &self,
        id: &str,
        timeout_ms: i32,
        producer_id: i64,
        producer_epoch: i16,
    ) -> Result<(i64, i16), ResponseError> {
        let max = self.config.long("transaction.max.timeout.ms");
        if timeout_ms <= 0 || i64::from(timeout_ms) > max {
            return Err(ResponseError::InvalidTransactionTimeout);
        }
        self.txns.exclusive(id, || {
            self.init_transactional_producer_here(id, timeout_ms, producer_id, producer_epoch)
        })
    }

    fn init_transactional_producer_here(
        &self,
        id: &str,
        timeout_ms: i32,
        producer_id: i64,
        producer_epoch: i16,
    ) -> Result<(i64, i16), ResponseError> {
        let now = crate::now_ms();
        let Some(mut m) = self.txns.get(id) else {
            let pid = self.allocate_producer_id()?;
            let m = TxnMetadata {
                producer_id: pid,
                producer_epoch: 0,
                last_producer_epoch: -1,
                timeout_ms,
                state: TxnState::Empty,
                partitions: BTreeSet::new(),
                last_update_ms: now,
                start_ms: -1,
            };
            self.commit_txn(id, m)?;
            return Ok((pid, 0));
        };
        // KIP-360: a producer that names its id and epoch must be the current one (or retrying)
        if producer_id >= 0 {
            let current = producer_id == m.producer_id && producer_epoch == m.producer_epoch;
            let retry = producer_id == m.producer_id && producer_epoch == m.last_producer_epoch;
            if retry && matches!(m.state, TxnState::Empty) {
                return Ok((m.producer_id, m.producer_epoch));
            }
            if !current && !retry {
                return Err(ResponseError::ProducerFenced);
            }
        }
        match m.state {
            TxnState::PrepareCommit | TxnState::PrepareAbort => {
                self.finish_txn(id, m)?;
                m = self
                    .txns
                    .get(id)
                    .ok_or(ResponseError::CoordinatorNotAvailable)?;
            }
            TxnState::Ongoing => {
                m = self.abort_with_bump(id, m)?;
            }
            _ => {}
        }
        let old_epoch = m.producer_epoch;
        if m.producer_epoch >= i16::MAX - 1 {
            m.producer_id = self.allocate_producer_id()?;
            m.producer_epoch = 0;
            m.last_producer_epoch = -1;
        } else {
            m.producer_epoch += 1;
            m.last_producer_epoch = old_epoch;
        }
        m.timeout_ms = timeout_ms;
        m.state = TxnState::Empty;
        m.partitions.clear();
        m.start_ms = -1;
        let out = (m.producer_id, m.producer_epoch);
        self.commit_txn(id, m)?;
        Ok(out)
    }

    /// AddPartitionsToTxn (and AddOffsetsToTxn, which adds the group's offsets partition).
    /// `Err` is an error for the whole request; per-partition errors are in the `Ok` list.
    pub fn add_partitions_to_txn(
        &self,
        id: &str,
        producer_id: i64,
        epoch: i16,
        partitions: &[(String, i32)],
    ) -> Result<PartitionErrors, ResponseError> {
        self.txns.exclusive(id, || {
            self.add_partitions_here(id, producer_id, epoch, partitions)
        })
    }

    fn add_partitions_here(
        &self,
        id: &str,
        producer_id: i64,
        epoch: i16,
        partitions: &[(String, i32)],
    ) -> Result<PartitionErrors, ResponseError> {
        let m = self.txns.get(id);
        check_producer(m.as_ref(), producer_id, epoch)?;
        let mut m = m.expect("checked");
        if matches!(m.state, TxnState::PrepareCommit | TxnState::PrepareAbort) {
            return Err(ResponseError::ConcurrentTransactions);
        }
        let image = self.controller.image();
        let unknown: Vec<&(String, i32)> = partitions
            .iter()
            .filter(|(t, p)| image.topic(t).is_none_or(|t| *p < 0 || *p >= t.partitions))
            .collect();
        if !unknown.is_empty() {
            return Ok(partitions
                .iter()
                .map(|tp| {
                    let e = if unknown.contains(&tp) {
                        ResponseError::UnknownTopicOrPartition
                    } else {
                        ResponseError::OperationNotAttempted
                    };
                    (tp.clone(), e)
                })
                .collect());
        }
        if m.state == TxnState::Ongoing && partitions.iter().all(|tp| m.partitions.contains(tp)) {
            return Ok(Vec::new());
        }
        if m.state != TxnState::Ongoing {
            m.state = TxnState::Ongoing;
            m.start_ms = crate::now_ms();
        }
        m.partitions.extend(partitions.iter().cloned());
        self.commit_txn(id, m)?;
        Ok(Vec::new())
    }

    /// KIP-890 verification: a transactional batch for `topic`-`partition` from `producer_id` at
    /// `epoch` is appended (by `append`) only if the partition is in that producer's ongoing
    /// transaction, so a late or stray write cannot open a transaction no coordinator will end.
    /// The id's operation lock is held across the append: no EndTxn can slip in between.
    pub fn append_verified<T>(
        &self,
        transactional_id: Option<&str>,
        producer_id: i64,
        epoch: i16,
        topic: &str,
        partition: i32,
        append: impl FnOnce() -> T,
    ) -> Result<T, ResponseError> {
        // Another broker coordinates this id: the leader does not verify with it yet (the
        // pre-KIP-890 behaviour); the coordinator's markers still end the transaction.
        if transactional_id.is_some_and(|id| !self.coordinates(TXN_TOPIC, id)) {
            return Ok(append());
        }
        let Some(id) = transactional_id else {
            return Err(ResponseError::InvalidTxnState);
        };
        self.txns.exclusive(id, || {
            let Some(m) = self.txns.get(id) else {
                return Err(ResponseError::InvalidTxnState);
            };
            if m.producer_id != producer_id {
                return Err(ResponseError::InvalidProducerIdMapping);
            }
            if epoch < m.producer_epoch {
                return Err(ResponseError::InvalidProducerEpoch);
            }
            if m.state != TxnState::Ongoing
                || !m.partitions.contains(&(topic.to_string(), partition))
            {
                return Err(ResponseError::InvalidTxnState);
            }
            Ok(append())
        })
    }

    /// AddPartitionsToTxn v4+ `verify_only`: per partition, whether it is in the producer's
    /// ongoing transaction.
    pub fn verify_txn_partitions(
        &self,
        id: &str,
        producer_id: i64,
        epoch: i16,
        partitions: &[(String, i32)],
    ) -> Result<PartitionErrors, ResponseError> {
        let m = self.txns.get(id);
        check_producer(m.as_ref(), producer_id, epoch)?;
        let m = m.expect("checked");
        Ok(partitions
            .iter()
            .filter(|tp| m.state != TxnState::Ongoing || !m.partitions.contains(*tp))
            .map(|tp| (tp.clone(), ResponseError::InvalidTxnState))
            .collect())
    }

    /// TxnOffsetCommit: the offsets are written to `__consumer_offsets` as part of the
    /// transaction and become visible with its COMMIT marker.
    pub fn txn_offset_commit(
        &self,
        id: &str,
        group: &str,
        producer_id: i64,
        epoch: i16,
        offsets: Vec<(String, i32, CommittedOffset)>,
    ) -> Result<(), ResponseError> {
        let offsets_partitions = self.ensure_offsets_topic().map_err(|e| {
            tracing::error!("creating {OFFSETS_TOPIC} failed: {e:#}");
            ResponseError::CoordinatorNotAvailable
        })?;
        let index = crate::group::offsets_partition(group, offsets_partitions);
        // This broker is the group coordinator. When it also coordinates the transactional id
        // it checks the transaction itself; when another broker does (the usual case in a
        // cluster), that broker's state is not here: as in Kafka, the append below is checked
        // by the partition's producer state (an older epoch is fenced) and the transaction
        // coordinator's markers decide whether the offsets commit.
        if !self.coordinates(crate::txn::TXN_TOPIC, id) {
            return self.write_txn_offsets(group, index, producer_id, epoch, offsets);
        }
        self.txns.exclusive(id, || {
            let m = self.txns.get(id);
            check_producer(m.as_ref(), producer_id, epoch)?;
            if !m
                .expect("checked")
                .partitions
                .contains(&(OFFSETS_TOPIC.to_string(), index))
            {
                // the producer must call AddOffsetsToTxn first (transaction version 1)
                return Err(ResponseError::InvalidTxnState);
            }
            self.write_txn_offsets(group, index, producer_id, epoch, offsets)
        })
    }

    /// Appends a transaction's offsets to the group's `__consumer_offsets` partition `index`,
    /// pending the transaction's marker.
    fn write_txn_offsets(
        &self,
        group: &str,
        index: i32,
        producer_id: i64,
        epoch: i16,
        offsets: Vec<(String, i32, CommittedOffset)>,
    ) -> Result<(), ResponseError> {
        let now = crate::now_ms();
        let records: Vec<_> = offsets
            .iter()
            .enumerate()
            .map(|(i, (topic, p, o))| ferrolog_records::Record {
                offset: i as i64,
                sequence: i as i32 - 1,
                producer_id,
                producer_epoch: epoch,
                transactional: true,
                ..ferrolog_records::plain_record(
                    Some(crate::group::offsets_log::key(group, topic, *p)),
                    Some(crate::group::offsets_log::value(o)),
                    vec![],
                    now,
                )
            })
            .collect();
        if let Err(e) = self.append_internal(OFFSETS_TOPIC, index, &records) {
            if matches!(
                e.downcast_ref::<ferrolog_storage::StorageError>(),
                Some(ferrolog_storage::StorageError::ProducerFenced { .. })
            ) {
                return Err(ResponseError::ProducerFenced);
            }
            tracing::error!(group, "writing transactional offsets failed: {e:#}");
            return Err(ResponseError::CoordinatorNotAvailable);
        }
        self.groups.add_txn_offsets(producer_id, group, offsets);
        Ok(())
    }

    /// EndTxn: commit or abort.
    pub fn end_txn(
        &self,
        id: &str,
        producer_id: i64,
        epoch: i16,
        commit: bool,
    ) -> Result<(), ResponseError> {
        self.txns
            .exclusive(id, || self.end_txn_here(id, producer_id, epoch, commit))
    }

    fn end_txn_here(
        &self,
        id: &str,
        producer_id: i64,
        epoch: i16,
        commit: bool,
    ) -> Result<(), ResponseError> {
        let m = self.txns.get(id);
        check_producer(m.as_ref(), producer_id, epoch)?;
        let mut m = m.expect("checked");
        match (m.state, commit) {
            (TxnState::Ongoing, _) => {}
            // a retry of an EndTxn that completed
            (TxnState::CompleteCommit, true) | (TxnState::CompleteAbort, false) => return Ok(()),
            (TxnState::PrepareCommit | TxnState::PrepareAbort, _) => {
                return Err(ResponseError::ConcurrentTransactions)
            }
            _ => return Err(ResponseError::InvalidTxnState),
        }
        m.state = if commit {
            TxnState::PrepareCommit
        } else {
            TxnState::PrepareAbort
        };
        self.commit_txn(id, m.clone())?;
        self.finish_txn(id, m)
    }

    /// Aborts transactions open longer than their timeout (the producer is fenced by the
    /// epoch bump) and finishes any left in a Prepare state.
    pub fn expire_transactions(&self) {
        let now = crate::now_ms();
        let expiration = self.config.long("transactional.id.expiration.ms");
        let due = |m: &TxnMetadata| {
            (m.state == TxnState::Ongoing && now - m.start_ms > i64::from(m.timeout_ms))
                || matches!(m.state, TxnState::PrepareCommit | TxnState::PrepareAbort)
        };
        // transactional.id.expiration.ms: ids idle that long, with no transaction, are removed
        let idle = |m: &TxnMetadata| {
            matches!(
                m.state,
                TxnState::Empty | TxnState::CompleteCommit | TxnState::CompleteAbort
            ) && now - m.last_update_ms > expiration
        };
        let candidates: Vec<String> = self
            .txns
            .snapshot()
            .into_iter()
            // only the coordinator (the leader of the id's partition) acts on an id
            .filter(|(id, m)| (due(m) || idle(m)) && self.coordinates(TXN_TOPIC, id))
            .map(|(id, _)| id)
            .collect();
        for id in candidates {
            self.txns.exclusive(&id, || {
                // looked at again under the id's lock: an operation may have ended it meanwhile
                let Some(m) = self.txns.get(&id) else {
                    return;
                };
                if idle(&m) {
                    tracing::info!(transactional_id = id, "transactional id expired");
                    match self.remove_txn_record(&id) {
                        Ok(()) => self.txns.remove(&id),
                        Err(e) => tracing::error!(transactional_id = id, "expiring failed: {e:#}"),
                    }
                    return;
                }
                if !due(&m) {
                    return;
                }
                let result = if m.state == TxnState::Ongoing {
                    tracing::info!(
                        transactional_id = id,
                        "aborting a transaction that timed out"
                    );
                    self.abort_with_bump(&id, m).map(|_| ())
                } else {
                    self.finish_txn(&id, m)
                };
                if let Err(e) = result {
                    tracing::warn!(transactional_id = id, "ending a transaction failed: {e:?}");
                }
            });
        }
    }

    /// Rebuilds transaction state by replaying `__transaction_state`.
    pub(crate) fn replay_transactions(&self) -> Result<()> {
        let Some(topic) = self.controller.image().topic(TXN_TOPIC).cloned() else {
            return Ok(());
        };
        for index in 0..topic.partitions {
            self.load_txn_partition(index)?;
        }
        Ok(())
    }

    /// Loads the transactional ids of one `__transaction_state` partition (at start, or when
    /// this broker becomes its leader and so their coordinator).
    pub(crate) fn load_txn_partition(&self, index: i32) -> Result<()> {
        let Some(partition) = self.replicas.get(TXN_TOPIC, index) else {
            return Ok(());
        };
        partition.with_log(|log| {
            log.for_each_record(|record| -> Result<()> {
                if let Some(id) = record.key.and_then(log::parse_key) {
                    self.txns
                        .replay(id, record.value.and_then(log::parse_value));
                }
                Ok(())
            })
        })
    }

    /// Sends the markers for partitions led by other brokers to their leaders.
    fn write_remote_markers(
        &self,
        partitions: &[(String, i32)],
        producer_id: i64,
        producer_epoch: i16,
        commit: bool,
    ) -> Result<(), ResponseError> {
        let Some(quorum) = &self.quorum else {
            return Ok(());
        };
        if partitions.is_empty() {
            return Ok(());
        }
        let image = self.controller.image();
        let mut by_leader: BTreeMap<i32, Vec<(String, i32)>> = BTreeMap::new();
        for (topic, index) in partitions {
            let Some(t) = image.topic(topic) else {
                continue; // deleted since
            };
            let leader = image
                .partitions
                .get(&(t.id, *index))
                .map_or(-1, |s| s.leader);
            by_leader
                .entry(leader)
                .or_default()
                .push((topic.clone(), *index));
        }
        for (leader, parts) in by_leader {
            let Some(b) = image.brokers.get(&leader).filter(|b| !b.fenced) else {
                tracing::warn!(leader, "transaction markers wait for a leader");
                return Err(ResponseError::CoordinatorNotAvailable);
            };
            let addr = format!("{}:{}", b.host, b.port);
            let request = markers_request(&parts, producer_id, producer_epoch, commit);
            let sent = quorum
                .block_on(async move {
                    let mut c = ferrolog_client::Connection::connect(&addr).await?;
                    c.send_version(&request, 1).await
                })
                .and_then(|r| r);
            let failed = match &sent {
                Ok(r) => r
                    .markers
                    .iter()
                    .flat_map(|m| m.topics.iter())
                    .flat_map(|t| t.partitions.iter())
                    .any(|p| p.error_code != 0),
                Err(_) => true,
            };
            if failed {
                tracing::warn!(leader, "writing transaction markers: {sent:?}");
                return Err(ResponseError::CoordinatorNotAvailable);
            }
        }
        Ok(())
    }
}

/// A WriteTxnMarkers request for `partitions`.
fn markers_request(
    partitions: &[(String, i32)],
    producer_id: i64,
    producer_epoch: i16,
    commit: bool,
) -> kafka_protocol::messages::WriteTxnMarkersRequest {
    use kafka_protocol::messages::write_txn_markers_request::{
        WritableTxnMarker, WritableTxnMarkerTopic,
    };
    let mut topics: Vec<WritableTxnMarkerTopic> = Vec::new();
    for (topic, index) in partitions {
        match topics.iter_mut().find(|t| *t.name.0 == **topic) {
            Some(t) => t.partition_indexes.push(*index),
            None => topics.push(
                WritableTxnMarkerTopic::default()
                    .with_name(kafka_protocol::messages::TopicName(
                        kafka_protocol::protocol::StrBytes::from_string(topic.clone()),
                    ))
                    .with_partition_indexes(vec![*index]),
            ),
        }
    }
    kafka_protocol::messages::WriteTxnMarkersRequest::default().with_markers(vec![
        WritableTxnMarker::default()
            .with_producer_id(kafka_protocol::messages::ProducerId(producer_id))
            .with_producer_epoch(producer_epoch)
            .with_transaction_result(commit)
            .with_topics(topics),
    ])
}
