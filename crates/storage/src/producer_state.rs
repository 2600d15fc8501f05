//! Per-partition idempotent producer state (docs/ARCHITECTURE.md, invariant 6): for each producer id its epoch
//! and the metadata of its last five batches, so a retried batch gets its original offsets back
//! and a gap in sequence numbers is refused.
//!
//! Transactions: a producer's first transactional batch opens its transaction in this
//! partition; the COMMIT or ABORT marker closes it. The first offset of the oldest open
//! transaction bounds the last stable offset, and aborted transactions are remembered so
//! read_committed consumers can skip their records.
//!
//! Rebuilt from batch headers (and marker records) when a log is loaded.

use std::collections::{HashMap, VecDeque};

use crate::batch::BatchHeader;
use crate::error::{Result, StorageError};
use crate::snapshot::SnapshotEntry;

/// How many batches per producer are remembered for duplicate detection (Kafka's
/// `ProducerStateEntry.NUM_BATCHES_TO_RETAIN`, matching max.in.flight.requests = 5).
pub const BATCHES_RETAINED: usize = 5;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchMetadata {
    pub first_sequence: i32,
    pub last_sequence: i32,
    pub first_offset: i64,
    pub last_offset: i64,
    pub max_timestamp: i64,
}

#[derive(Debug, Clone, Default)]
struct ProducerEntry {
    epoch: i16,
    batches: VecDeque<BatchMetadata>,
    /// First offset of the producer's open transaction in this partition.
    txn_first_offset: Option<i64>,
    /// Timestamp of the producer's last write (for DescribeProducers).
    last_timestamp: i64,
}

/// A transaction that ended with an ABORT marker: its records in `first_offset..=last_offset`
/// (the marker's offset) from `producer_id` are not to be read by read_committed consumers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AbortedTxn {
    pub producer_id: i64,
    pub first_offset: i64,
    pub last_offset: i64,
}

/// What DescribeProducers reports about one producer of a partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProducerInfo {
    pub producer_id: i64,
    pub epoch: i16,
    pub last_sequence: i32,
    pub last_timestamp: i64,
    pub txn_first_offset: Option<i64>,
}

#[derive(Debug, Default)]
pub struct ProducerStateManager {
    producers: HashMap<i64, ProducerEntry>,
    /// The open transactions by first offset (producer id): the first is the last stable
    /// offset's bound, read on every fetch, so it is kept rather than searched for.
    open_txns: std::collections::BTreeMap<i64, i64>,
}

/// Outcome of checking an incoming batch.
#[derive(Debug, PartialEq, Eq)]
pub enum SequenceCheck {
    /// Append it.
    Accept,
    /// It was appended before: answer with these offsets.
    Duplicate(BatchMetadata),
}

fn in_sequence(last: i32, next: i32) -> bool {
    next == last.wrapping_add(1) || (last == i32::MAX && next == 0)
}

impl ProducerStateManager {
    pub fn new() -> ProducerStateManager {
        ProducerStateManager::default()
    }

    pub fn len(&self) -> usize {
        self.producers.len()
    }
    pub fn is_empty(&self) -> bool {
        self.producers.is_empty()
    }

    /// Checks an incoming batch from a producer (header offsets not yet assigned).
    pub fn check(&self, header: &BatchHeader) -> Result<SequenceCheck> {
        if !header.has_producer_id() || header.base_sequence < 0 {
            return Ok(SequenceCheck::Accept);
        }
        let Some(entry) = self.producers.get(&header.producer_id) else {
            // Unknown producer (new, or its state expired): accept any sequence, as Kafka does.
            return Ok(SequenceCheck::Accept);
        };
        if header.producer_epoch < entry.epoch {
            return Err(StorageError::ProducerFenced {
                producer_id: header.producer_id,
                epoch: header.producer_epoch,
                current: entry.epoch,
            });
        }
        if header.producer_epoch > entry.epoch {
            if header.base_sequence != 0 {
                return Err(StorageError::OutOfOrderSequence {
                    producer_id: header.producer_id,
                    expected: 0,
                    got: header.base_sequence,
                });
            }
            return Ok(SequenceCheck::Accept);
        }
        let last_sequence = header.last_sequence();
        if let Some(found) = entry
            .batches
            .iter()
            .find(|b| b.first_sequence == header.base_sequence && b.last_sequence == last_sequence)
        {
            return Ok(SequenceCheck::Duplicate(*found));
        }
        let current_last = entry.batches.back().map_or(-1, |b| b.last_sequence);
        if entry.batches.is_empty() || in_sequence(current_last, header.base_sequence) {
            Ok(SequenceCheck::Accept)
        } else {
            Err(StorageError::OutOfOrderSequence {
                producer_id: header.producer_id,
                expected: current_last.wrapping_add(1),
                got: header.base_sequence,
            })
        }
    }

    /// Records an appended batch (offsets assigned). Also used when rebuilding from the log.
    pub fn update(&mut self, header: &BatchHeader) {
        if !header.has_producer_id() {
            return;
        }
        let entry = self.producers.entry(header.producer_id).or_default();
        if header.producer_epoch != entry.epoch {
            entry.epoch = header.producer_epoch;
            entry.batches.clear();
        }
        entry.last_timestamp = entry.last_timestamp.max(header.max_timestamp);
        if header.is_transactional() && !header.is_control() && entry.txn_first_offset.is_none() {
            entry.txn_first_offset = Some(header.base_offset);
            self.open_txns
                .insert(header.base_offset, header.producer_id);
        }
        if header.base_sequence < 0 || header.is_control() {
            return;
        }
        entry.batches.push_back(BatchMetadata {
            first_sequence: header.base_sequence,
            last_sequence: header.last_sequence(),
            first_offset: header.base_offset,
            last_offset: header.last_offset(),
            max_timestamp: header.max_timestamp,
        });
        while entry.batches.len() > BATCHES_RETAINED {
            entry.batches.pop_front();
        }
    }

    /// Forgets batches at or above `offset` (log truncation); state is rebuilt by the caller when
    /// exactness matters.
    pub fn truncate_to(&mut self, offset: i64) {
        for entry in self.producers.values_mut() {
            entry.batches.retain(|b| b.last_offset < offset);
        }
        self.producers
            .retain(|_, e| !e.batches.is_empty() || e.txn_first_offset.is_some_and(|f| f < offset));
        self.reindex_open_txns();
    }

    fn reindex_open_txns(&mut self) {
        self.open_txns = self
            .producers
            .iter()
            .filter_map(|(id, e)| e.txn_first_offset.map(|f| (f, *id)))
            .collect();
    }

    /// Whether the batch ending at `last_offset` is the newest one of `producer_id` (compaction
    /// keeps such a batch so the producer's sequence state survives).
    pub fn is_last_batch(&self, producer_id: i64, last_offset: i64) -> bool {
        self.producers
            .get(&producer_id)
            .and_then(|e| e.batches.back())
            .is_some_and(|b| b.last_offset == last_offset)
    }

    pub fn clear(&mut self) {
        self.producers.clear();
        self.open_txns.clear();
    }

    /// A marker at `marker_offset` ends the producer's open transaction; an aborted one is
    /// returned for the aborted-transaction index.
    pub fn complete_txn(
        &mut self,
        producer_id: i64,
        marker_offset: i64,
        commit: bool,
    ) -> Option<AbortedTxn> {
        let first = self
            .producers
            .get_mut(&producer_id)?
            .txn_first_offset
            .take()?;
        self.open_txns.remove(&first);
        (!commit).then_some(AbortedTxn {
            producer_id,
            first_offset: first,
            last_offset: marker_offset,
        })
    }

    /// Forgets producers idle since before `now_ms - expiration_ms` (by their last batch's
    /// timestamp) with no open transaction (`producer.id.expiration.ms`); returns how many.
    pub fn expire(&mut self, now_ms: i64, expiration_ms: i64) -> usize {
        let before = self.producers.len();
        self.producers.retain(|_, e| {
            e.txn_first_offset.is_some() || now_ms.saturating_sub(e.last_timestamp) < expiration_ms
        });
        before - self.producers.len()
    }

    /// The first offset of the oldest open transaction: the last stable offset's bound.
    pub fn first_unstable_offset(&self) -> Option<i64> {
        let first = self.open_txns.keys().next().copied();
        debug_assert_eq!(
            first,
            self.producers
                .values()
                .filter_map(|e| e.txn_first_offset)
                .min()
        );
        first
    }

    /// The state to write to a snapshot: per producer its epoch, last batch and open
    /// transaction.
    pub fn snapshot_entries(&self) -> Vec<SnapshotEntry> {
        let mut out: Vec<SnapshotEntry> = self
            .producers
            .iter()
            .map(|(id, e)| {
                let last = e.batches.back();
                SnapshotEntry {
                    producer_id: *id,
                    epoch: e.epoch,
                    last_sequence: last.map_or(-1, |b| b.last_sequence),
                    last_offset: last.map_or(-1, |b| b.last_offset),
                    offset_delta: last.map_or(0, |b| (b.last_offset - b.first_offset) as i32),
                    timestamp: e.last_timestamp,
                    coordinator_epoch: -1,
                    txn_first_offset: e.txn_first_offset.unwrap_or(-1),
                }
            })
            .collect();
        out.sort_by_key(|e| e.producer_id);
        out
    }

    /// Starts from a snapshot (the batches after it are then replayed with `update`).
    pub fn load(&mut self, entries: &[SnapshotEntry]) {
        self.producers.clear();
        for e in entries {
            let mut entry = ProducerEntry {
                epoch: e.epoch,
                last_timestamp: e.timestamp,
                txn_first_offset: (e.txn_first_offset >= 0).then_some(e.txn_first_offset),
                ..ProducerEntry::default()
            };
            if e.last_sequence >= 0 && e.last_offset >= 0 {
                entry.batches.push_back(BatchMetadata {
                    first_sequence: e.last_sequence.wrapping_sub(e.offset_delta),
                    last_sequence: e.last_sequence,
                    first_offset: e.last_offset - i64::from(e.offset_delta),
                    last_offset: e.last_offset,
                    max_timestamp: e.timestamp,
                });
            }
            self.producers.insert(e.producer_id, entry);
        }
        self.reindex_open_txns();
    }

    /// The producer's current epoch here, if it has written to this partition.
    pub fn epoch_of(&self, producer_id: i64) -> Option<i16> {
        self.producers.get(&producer_id).map(|e| e.epoch)
    }

    pub fn describe(&self) -> Vec<ProducerInfo> {
        let mut out: Vec<ProducerInfo> = self
            .producers
            .iter()
            .map(|(id, e)| ProducerInfo {
                producer_id: *id,
                epoch: e.epoch,
                last_sequence: e.batches.back().map_or(-1, |b| b.last_sequence),
                last_timestamp: e.last_timestamp,
                txn_first_offset: e.txn_first_offset,
            })
            .collect();
        out.sort_by_key(|p| p.producer_id);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::{self, tests::sample_batch_with_producer};

    fn header(base: i64, count: i32, pid: i64, epoch: i16, seq: i32) -> BatchHeader {
        batch::validate(&sample_batch_with_producer(
            base, count, 0, 0, pid, epoch, seq,
        ))
        .unwrap()
    }

    #[test]
    fn duplicates_gaps_and_fencing() {
        let mut state = ProducerStateManager::new();
        let first = header(0, 5, 7, 0, 0);
        assert_eq!(state.check(&first).unwrap(), SequenceCheck::Accept);
        state.update(&first);
        // retry of the same batch returns its offsets
        match state.check(&header(-1, 5, 7, 0, 0)).unwrap() {
            SequenceCheck::Duplicate(meta) => {
                assert_eq!((meta.first_offset, meta.last_offset), (0, 4))
            }
            other => panic!("expected duplicate, got {other:?}"),
        }
        // next in sequence
        let second = header(5, 2, 7, 0, 5);
        assert_eq!(state.check(&second).unwrap(), SequenceCheck::Accept);
        state.update(&second);
        // a gap
        assert!(matches!(
            state.check(&header(0, 1, 7, 0, 9)),
            Err(StorageError::OutOfOrderSequence {
                expected: 7,
                got: 9,
                ..
            })
        ));
        // an older epoch after a bump
        state.update(&header(7, 1, 7, 1, 0));
        assert!(matches!(
            state.check(&header(0, 1, 7, 0, 1)),
            Err(StorageError::ProducerFenced { .. })
        ));
        // a new epoch must start at 0
        assert!(state.check(&header(0, 1, 7, 2, 3)).is_err());
        assert_eq!(
            state.check(&header(0, 1, 7, 2, 0)).unwrap(),
            SequenceCheck::Accept
        );
    }

    #[test]
    fn idle_producers_expire_unless_a_transaction_is_open() {
        let mut state = ProducerStateManager::new();
        state.update(&header(0, 1, 1, 0, 0)); // timestamp 0
        state.update(&header(1, 1, 2, 0, 0));
        assert_eq!(state.expire(500, 1000), 0, "not idle long enough");
        assert_eq!(state.expire(5000, 1000), 2);
        assert!(state.is_empty());
        // an expired producer is unknown: any sequence is accepted again, as in Kafka
        assert_eq!(
            state.check(&header(0, 1, 1, 0, 7)).unwrap(),
            SequenceCheck::Accept
        );
    }

    #[test]
    fn only_last_five_batches_are_remembered() {
        let mut state = ProducerStateManager::new();
        for i in 0..7 {
            state.update(&header(i, 1, 1, 0, i as i32));
        }
        assert!(state.check(&header(0, 1, 1, 0, 0)).is_err());
        assert!(matches!(
            state.check(&header(0, 1, 1, 0, 6)).unwrap(),
            SequenceCheck::Duplicate(_)
        ));
    }
}
