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
//! Concurrency, as Kafka's pending state: an operation on a transactional id (InitProducerId,
//! AddPartitionsToTxn, EndTxn, an expiry) first marks the id busy, then writes the id's next
//! state through the coordinator write path (`coordinator::write`: appended, then awaited until
//! committed, no lock held), then stores it; meanwhile other operations on the id answer
//! CONCURRENT_TRANSACTIONS and the client retries. No lock is held across I/O or an `.await`:
//! an id's slot lock guards only in-memory steps and the local append of a verified
//! transactional write (so no EndTxn slips in between the check and the append). EndTxn is
//! answered once Prepare is committed and the first attempt at the markers (local appends,
//! WriteTxnMarkers to other brokers) has ended; if it failed, a task retries until the
//! transaction is complete. Lock order: the map of ids, then an id's slot, then partition
//! logs, then the group coordinator's.

pub mod log;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

use anyhow::Result;
use ferrolog_storage::StorageError;
use kafka_protocol::ResponseError;

use crate::coordinator::write::InternalWrite;
use crate::group::{CommittedOffset, OFFSETS_TOPIC};
use crate::locks::lock;
use crate::partition::PartitionError;
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

/// One transactional id: its metadata (`None` once it is removed) and whether an operation on
/// it is in flight.
#[derive(Default)]
struct Slot {
    meta: Option<TxnMetadata>,
    busy: Busy,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum Busy {
    #[default]
    Free,
    /// An operation is writing the id's next state.
    Writing,
    /// The transaction is ending: no more transactional writes join it.
    Ending,
}

#[derive(Default)]
pub struct TxnCoordinator {
    /// Every transactional id this broker coordinates. The map's lock is held only to find or
    /// add a slot; a slot's lock only for an in-memory step (see the module's note).
    slots: Mutex<HashMap<String, Arc<Mutex<Slot>>>>,
}

/// An operation in flight on one transactional id: while it lives, other operations on the id
/// answer CONCURRENT_TRANSACTIONS (as Kafka's pending state). Dropping it ends the operation.
pub(crate) struct Operation {
    slot: Arc<Mutex<Slot>>,
}

impl Operation {
    /// The id's metadata as last stored.
    fn current(&self) -> Option<TxnMetadata> {
        lock(&self.slot).meta.clone()
    }

    fn store(&self, m: Option<TxnMetadata>) {
        lock(&self.slot).meta = m;
    }

    /// From now on the transaction is ending: verified writes to it are refused. Taking the
    /// slot's lock waits for a verified write under way.
    fn ending(&self) {
        lock(&self.slot).busy = Busy::Ending;
    }
}

impl Drop for Operation {
    fn drop(&mut self) {
        lock(&self.slot).busy = Busy::Free;
    }
}

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

/// An ongoing transaction of `producer_id` that `topic`-`partition` is part of, and that is not
/// ending: the KIP-890 check of a transactional write.
fn check_member(
    slot: &Slot,
    producer_id: i64,
    epoch: i16,
    topic: &str,
    partition: i32,
) -> Result<(), ResponseError> {
    let Some(m) = &slot.meta else {
        return Err(ResponseError::InvalidTxnState);
    };
    if m.producer_id != producer_id {
        return Err(ResponseError::InvalidProducerIdMapping);
    }
    if epoch < m.producer_epoch {
        return Err(ResponseError::InvalidProducerEpoch);
    }
    if slot.busy == Busy::Ending
        || m.state != TxnState::Ongoing
        || !m.partitions.contains(&(topic.to_string(), partition))
    {
        return Err(ResponseError::InvalidTxnState);
    }
    Ok(())
}

impl TxnCoordinator {
    fn slot(&self, id: &str) -> Arc<Mutex<Slot>> {
        lock(&self.slots).entry(id.to_string()).or_default().clone()
    }

    fn existing(&self, id: &str) -> Option<Arc<Mutex<Slot>>> {
        lock(&self.slots).get(id).cloned()
    }

    /// Begins an operation on `id`, with the id's current metadata; CONCURRENT_TRANSACTIONS
    /// while another one is in flight.
    fn begin(&self, id: &str) -> Result<(Operation, Option<TxnMetadata>), ResponseError> {
        let slot = self.slot(id);
        let meta = {
            let mut s = lock(&slot);
            if s.busy != Busy::Free {
                return Err(ResponseError::ConcurrentTransactions);
            }
            s.busy = Busy::Writing;
            s.meta.clone()
        };
        Ok((Operation { slot }, meta))
    }

    /// Runs `f` under the id's slot lock, if the id is known (`None` otherwise).
    fn with_slot<T>(&self, id: &str, f: impl FnOnce(&Slot) -> T) -> Option<T> {
        self.existing(id).map(|s| f(&lock(&s)))
    }

    /// A copy of every transactional id's metadata, for ListTransactions and
    /// DescribeTransactions.
    pub fn snapshot(&self) -> Vec<(String, TxnMetadata)> {
        let slots: Vec<_> = lock(&self.slots)
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let mut out: Vec<_> = slots
            .into_iter()
            .filter_map(|(k, s)| lock(&s).meta.clone().map(|m| (k, m)))
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// This broker no longer coordinates the transactional ids of `__transaction_state`
    /// partition `index` (of `partitions`): forgets them (their new coordinator loads them).
    /// An operation still under way on one of them fails its next write (this broker no
    /// longer leads the partition).
    pub fn unload_partition(&self, index: i32, partitions: i32) -> usize {
        let mut slots = lock(&self.slots);
        let before = slots.len();
        slots.retain(|id, _| txn_partition(id, partitions) != index);
        before - slots.len()
    }

    /// Drops the slots of removed ids that no operation holds.
    fn sweep(&self) {
        lock(&self.slots).retain(|_, s| Arc::strong_count(s) > 1 || lock(s).meta.is_some());
    }

    /// Applies a replayed `__transaction_state` record.
    pub fn replay(&self, transactional_id: String, value: Option<TxnMetadata>) {
        let slot = self.slot(&transactional_id);
        let mut s = lock(&slot);
        s.meta = value.map(|mut m| {
            if let Some(old) = &s.meta {
                if old.producer_id == m.producer_id && old.producer_epoch != m.producer_epoch {
                    m.last_producer_epoch = old.producer_epoch;
                } else {
                    m.last_producer_epoch = old.last_producer_epoch;
                }
            }
            m
        });
    }
}

impl Broker {
    /// Creates `__transaction_state` on first use.
    pub fn ensure_txn_topic(&self) -> Result<i32> {
        self.ensure_internal_topic(
            TXN_TOPIC,
            self.config.settings.transaction_state_log_num_partitions,
            self.config.settings.transaction_state_log_segment_bytes,
        )
    }

    /// Writes the id's metadata (`None`: a tombstone) and waits until it is committed.
    async fn write_txn(&self, transactional_id: &str, m: Option<&TxnMetadata>) -> Result<()> {
        let partitions = self.ensure_txn_topic()?;
        let record = ferrolog_records::plain_record(
            Some(log::key(transactional_id)),
            m.map(log::value),
            vec![],
            crate::now_ms(),
        );
        let index = txn_partition(transactional_id, partitions);
        self.append_internal(TXN_TOPIC, index, &[record]).await
    }

    /// Stores the id's next metadata: committed to the log first, then applied.
    async fn commit_txn(
        &self,
        op: &Operation,
        id: &str,
        mut m: TxnMetadata,
    ) -> Result<(), ResponseError> {
        m.last_update_ms = crate::now_ms();
        self.write_txn(id, Some(&m)).await.map_err(|e| {
            tracing::error!(
                transactional_id = id,
                "writing transaction state failed: {e:#}"
            );
            ResponseError::CoordinatorNotAvailable
        })?;
        op.store(Some(m));
        Ok(())
    }

    /// Writes the markers of a transaction in a Prepare state and completes it.
    async fn complete_txn(
        &self,
        op: &Operation,
        id: &str,
        mut m: TxnMetadata,
    ) -> Result<(), ResponseError> {
        debug_assert!(matches!(
            m.state,
            TxnState::PrepareCommit | TxnState::PrepareAbort
        ));
        op.ending();
        let commit = m.state == TxnState::PrepareCommit;
        let now = crate::now_ms();
        // partitions led by other brokers get their markers through WriteTxnMarkers
        let (local, remote): (Vec<_>, Vec<_>) = m.partitions.iter().cloned().partition(|(t, i)| {
            self.replicas.get(t, *i).is_some_and(|p| p.is_leader()) || self.quorum.is_none()
        });
        self.write_remote_markers(&remote, m.producer_id, m.producer_epoch, commit)
            .await?;
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
        self.commit_txn(op, id, m).await
    }

    /// Completes a prepared transaction. If the first attempt fails (a leader is away), a task
    /// of its own retries until it is done or this broker no longer coordinates the id, and
    /// the operation `op` lives until then: the outcome is decided and durable, the producer
    /// is answered, and the id's operations answer CONCURRENT_TRANSACTIONS until a retry
    /// succeeds (as in Kafka, where markers are always sent after EndTxn is answered).
    async fn complete_or_retry(self: &Arc<Self>, op: Operation, id: &str, m: TxnMetadata) {
        let Err(e) = self.complete_txn(&op, id, m.clone()).await else {
            return;
        };
        tracing::warn!(
            transactional_id = id,
            "writing the transaction's markers failed, retrying: {e:?}"
        );
        let broker = self.clone();
        let id = id.to_string();
        tokio::spawn(async move {
            let mut backoff = std::time::Duration::from_millis(100);
            loop {
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(std::time::Duration::from_secs(5));
                let stopping = broker
                    .shutting_down
                    .load(std::sync::atomic::Ordering::SeqCst);
                if stopping || !broker.coordinates(TXN_TOPIC, &id) {
                    tracing::warn!(
                        transactional_id = id,
                        "leaving the transaction's markers to the next coordinator"
                    );
                    return;
                }
                if broker.complete_txn(&op, &id, m.clone()).await.is_ok() {
                    return;
                }
            }
        });
    }

    /// Aborts an open transaction after bumping the epoch, which fences its producer.
    async fn abort_with_bump(
        &self,
        op: &Operation,
        id: &str,
        mut m: TxnMetadata,
    ) -> Result<TxnMetadata, ResponseError> {
        m.last_producer_epoch = m.producer_epoch;
        m.producer_epoch = m.producer_epoch.saturating_add(1);
        m.state = TxnState::PrepareAbort;
        op.ending();
        self.commit_txn(op, id, m.clone()).await?;
        self.complete_txn(op, id, m).await?;
        op.current().ok_or(ResponseError::CoordinatorNotAvailable)
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
    pub async fn init_transactional_producer(
        &self,
        id: &str,
        timeout_ms: i32,
        producer_id: i64,
        producer_epoch: i16,
    ) -> Result<(i64, i16), ResponseError> {
        let max = self.config.settings.transaction_max_timeout_ms;
        if timeout_ms <= 0 || timeout_ms > max {
            return Err(ResponseError::InvalidTransactionTimeout);
        }
        let now = crate::now_ms();
        let (op, m) = self.txns.begin(id)?;
        let Some(mut m) = m else {
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
            self.commit_txn(&op, id, m).await?;
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
            // left by a crash or a coordinator move (a completion under way holds the id)
            TxnState::PrepareCommit | TxnState::PrepareAbort => {
                self.complete_txn(&op, id, m).await?;
                m = op.current().ok_or(ResponseError::CoordinatorNotAvailable)?;
            }
            TxnState::Ongoing => {
                m = self.abort_with_bump(&op, id, m).await?;
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
        self.commit_txn(&op, id, m).await?;
        Ok(out)
    }

    /// AddPartitionsToTxn (and AddOffsetsToTxn, which adds the group's offsets partition).
    /// `Err` is an error for the whole request; per-partition errors are in the `Ok` list.
    pub async fn add_partitions_to_txn(
        &self,
        id: &str,
        producer_id: i64,
        epoch: i16,
        partitions: &[(String, i32)],
    ) -> Result<PartitionErrors, ResponseError> {
        let (op, m) = self.txns.begin(id)?;
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
        self.commit_txn(&op, id, m).await?;
        Ok(Vec::new())
    }

    /// KIP-890 verification: a transactional batch for `topic`-`partition` from `producer_id` at
    /// `epoch` is appended (by `append`) only if the partition is in that producer's ongoing
    /// transaction, so a late or stray write cannot open a transaction no coordinator will end.
    /// `append` (a local log append) runs under the id's slot lock: no EndTxn can slip in
    /// between the check and the append.
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
        self.txns
            .with_slot(id, |slot| {
                check_member(slot, producer_id, epoch, topic, partition)?;
                Ok(append())
            })
            .unwrap_or(Err(ResponseError::InvalidTxnState))
    }

    /// AddPartitionsToTxn v4+ `verify_only`: per partition, whether it is in the producer's
    /// ongoing transaction (and the transaction is not ending).
    pub fn verify_txn_partitions(
        &self,
        id: &str,
        producer_id: i64,
        epoch: i16,
        partitions: &[(String, i32)],
    ) -> Result<PartitionErrors, ResponseError> {
        self.txns
            .with_slot(id, |slot| {
                check_producer(slot.meta.as_ref(), producer_id, epoch)?;
                Ok(partitions
                    .iter()
                    .filter(|(t, p)| check_member(slot, producer_id, epoch, t, *p).is_err())
                    .map(|tp| (tp.clone(), ResponseError::InvalidTxnState))
                    .collect())
            })
            .unwrap_or(Err(ResponseError::InvalidProducerIdMapping))
    }

    /// TxnOffsetCommit: the offsets are written to `__consumer_offsets` as part of the
    /// transaction and become visible with its COMMIT marker.
    pub async fn txn_offset_commit(
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
        // it checks the transaction itself, under the id's slot lock around the append; when
        // another broker does (the usual case in a cluster), that broker's state is not here:
        // as in Kafka, the append is checked by the partition's producer state (an older epoch
        // is fenced) and the transaction coordinator's markers decide whether the offsets
        // commit.
        let write = if self.coordinates(crate::txn::TXN_TOPIC, id) {
            self.txns
                .with_slot(id, |slot| {
                    check_producer(slot.meta.as_ref(), producer_id, epoch)?;
                    // the producer must call AddOffsetsToTxn first (transaction version 1)
                    check_member(slot, producer_id, epoch, OFFSETS_TOPIC, index)?;
                    self.append_txn_offsets(group, index, producer_id, epoch, offsets)
                })
                .unwrap_or(Err(ResponseError::InvalidProducerIdMapping))?
        } else {
            self.append_txn_offsets(group, index, producer_id, epoch, offsets)?
        };
        write.committed().await.map_err(|e| {
            tracing::error!(group, "writing transactional offsets failed: {e:#}");
            ResponseError::CoordinatorNotAvailable
        })
    }

    /// Appends a transaction's offsets to the group's `__consumer_offsets` partition `index`,
    /// pending the transaction's marker.
    fn append_txn_offsets(
        &self,
        group: &str,
        index: i32,
        producer_id: i64,
        epoch: i16,
        offsets: Vec<(String, i32, CommittedOffset)>,
    ) -> Result<InternalWrite, ResponseError> {
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
        let write = self
            .append_internal_now(OFFSETS_TOPIC, index, &records)
            .map_err(|e| {
                let code = txn_offsets_error(&e);
                if code != ResponseError::ProducerFenced {
                    tracing::error!(group, "writing transactional offsets failed: {e:#}");
                }
                code
            })?;
        // registered with the append, so the transaction's marker cannot come first
        self.groups.add_txn_offsets(producer_id, group, offsets);
        Ok(write)
    }

    /// EndTxn: commit or abort. Answered once PrepareCommit / PrepareAbort is committed and
    /// the first attempt to write the markers has ended (see `complete_or_retry`).
    pub async fn end_txn(
        self: &Arc<Self>,
        id: &str,
        producer_id: i64,
        epoch: i16,
        commit: bool,
    ) -> Result<(), ResponseError> {
        let (op, m) = self.txns.begin(id)?;
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
        op.ending();
        self.commit_txn(&op, id, m.clone()).await?;
        self.complete_or_retry(op, id, m).await;
        Ok(())
    }

    /// Aborts transactions open longer than their timeout (the producer is fenced by the
    /// epoch bump), finishes any left in a Prepare state, and removes ids idle for longer
    /// than `transactional.id.expiration.ms`. An id with an operation under way is left to
    /// the next pass.
    pub async fn expire_transactions(&self) {
        let now = crate::now_ms();
        let expiration = i64::from(self.config.settings.transactional_id_expiration_ms);
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
            // looked at again under the operation: another one may have ended it meanwhile
            let Ok((op, Some(m))) = self.txns.begin(&id) else {
                continue;
            };
            if idle(&m) {
                tracing::info!(transactional_id = id, "transactional id expired");
                match self.write_txn(&id, None).await {
                    Ok(()) => op.store(None),
                    Err(e) => tracing::error!(transactional_id = id, "expiring failed: {e:#}"),
                }
                continue;
            }
            if !due(&m) {
                continue;
            }
            let result = if m.state == TxnState::Ongoing {
                tracing::info!(
                    transactional_id = id,
                    "aborting a transaction that timed out"
                );
                self.abort_with_bump(&op, &id, m).await.map(|_| ())
            } else {
                self.complete_txn(&op, &id, m).await
            };
            if let Err(e) = result {
                tracing::warn!(transactional_id = id, "ending a transaction failed: {e:?}");
            }
        }
        self.txns.sweep();
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
    async fn write_remote_markers(
        &self,
        partitions: &[(String, i32)],
        producer_id: i64,
        producer_epoch: i16,
        commit: bool,
    ) -> Result<(), ResponseError> {
        if self.quorum.is_none() || partitions.is_empty() {
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
            let sent = tokio::time::timeout(crate::coordinator::write::COMMIT_TIMEOUT, async {
                let mut c =
                    ferrolog_client::Connection::connect_with(&addr, &self.config.inter_broker)
                        .await?;
                c.send_version(&request, 1).await
            })
            .await
            .map_err(anyhow::Error::from)
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

/// What a failed append of transactional offsets answers: PRODUCER_FENCED when the partition's
/// producer state has a newer epoch (a zombie producer), else COORDINATOR_NOT_AVAILABLE.
fn txn_offsets_error(e: &anyhow::Error) -> ResponseError {
    match e.downcast_ref::<PartitionError>() {
        Some(PartitionError::Storage(StorageError::ProducerFenced { .. })) => {
            ResponseError::ProducerFenced
        }
        _ => ResponseError::CoordinatorNotAvailable,
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

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(state: TxnState, partitions: &[(&str, i32)]) -> TxnMetadata {
        TxnMetadata {
            producer_id: 7,
            producer_epoch: 3,
            last_producer_epoch: 2,
            timeout_ms: 60_000,
            state,
            partitions: partitions
                .iter()
                .map(|(t, p)| (t.to_string(), *p))
                .collect(),
            last_update_ms: 0,
            start_ms: 0,
        }
    }

    #[test]
    fn an_operation_in_flight_makes_the_next_one_concurrent_until_it_ends() {
        let c = TxnCoordinator::default();
        let (op, m) = c.begin("a").unwrap();
        assert!(m.is_none());
        assert_eq!(
            c.begin("a").err(),
            Some(ResponseError::ConcurrentTransactions)
        );
        // other ids are not held up
        assert!(c.begin("b").is_ok());
        op.store(Some(meta(TxnState::Empty, &[])));
        drop(op);
        let (_op, m) = c.begin("a").unwrap();
        assert_eq!(m.map(|m| m.state), Some(TxnState::Empty));
    }

    #[test]
    fn a_verified_write_is_refused_once_the_transaction_is_ending() {
        let c = TxnCoordinator::default();
        let (op, _) = c.begin("a").unwrap();
        op.store(Some(meta(TxnState::Ongoing, &[("t", 0)])));
        drop(op);
        let check = |topic: &str, p: i32, epoch: i16| {
            c.with_slot("a", |s| check_member(s, 7, epoch, topic, p))
                .unwrap()
        };
        assert_eq!(check("t", 0, 3), Ok(()));
        assert_eq!(check("t", 1, 3), Err(ResponseError::InvalidTxnState));
        assert_eq!(check("t", 0, 2), Err(ResponseError::InvalidProducerEpoch));
        let (op, _) = c.begin("a").unwrap();
        assert_eq!(check("t", 0, 3), Ok(()), "an AddPartitions in flight");
        op.ending();
        assert_eq!(check("t", 0, 3), Err(ResponseError::InvalidTxnState));
        drop(op);
        assert_eq!(check("t", 0, 3), Ok(()), "the EndTxn failed: still ongoing");
    }

    #[test]
    fn removed_ids_are_swept_unless_an_operation_holds_them() {
        let c = TxnCoordinator::default();
        c.replay("a".into(), Some(meta(TxnState::Empty, &[])));
        c.replay("b".into(), Some(meta(TxnState::Empty, &[])));
        c.replay("a".into(), None);
        let (op, _) = c.begin("b").unwrap();
        op.store(None);
        c.sweep();
        assert_eq!(lock(&c.slots).len(), 1, "b is held by its operation");
        drop(op);
        c.sweep();
        assert!(lock(&c.slots).is_empty());
        assert!(c.snapshot().is_empty());
    }

    #[test]
    fn a_zombie_producers_offsets_are_fenced_not_retried() {
        let fenced = anyhow::Error::from(PartitionError::Storage(StorageError::ProducerFenced {
            producer_id: 7,
            epoch: 3,
            current: 4,
        }));
        assert_eq!(txn_offsets_error(&fenced), ResponseError::ProducerFenced);
        let other = anyhow::Error::from(PartitionError::NotLeader);
        assert_eq!(
            txn_offsets_error(&other),
            ResponseError::CoordinatorNotAvailable
        );
    }
}
