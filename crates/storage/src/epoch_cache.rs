//! The leader-epoch cache of one log: which leader epoch starts at which offset, kept in the
//! `leader-epoch-checkpoint` file (rewritten atomically on every change). Followers reconcile
//! their logs against the leader's with it (OffsetForLeaderEpoch), and ListOffsets reports the
//! epoch of the offsets it returns.
//!
//! Invariants: epochs strictly increase, and so do their start offsets.

use std::io;
use std::path::{Path, PathBuf};

use crate::checkpoint;

pub const LEADER_EPOCH_CHECKPOINT: &str = "leader-epoch-checkpoint";

#[derive(Debug)]
pub struct LeaderEpochCache {
    path: PathBuf,
    /// (epoch, its start offset), oldest first.
    entries: Vec<(i32, i64)>,
}

impl LeaderEpochCache {
    /// Reads the log directory's checkpoint (empty when missing or unreadable: a follower then
    /// reconciles by the high watermark).
    pub fn open(dir: &Path) -> LeaderEpochCache {
        let path = dir.join(LEADER_EPOCH_CHECKPOINT);
        let entries = checkpoint::read_epochs(&path).unwrap_or_default();
        let cache = LeaderEpochCache { path, entries };
        cache.check();
        cache
    }

    fn check(&self) {
        debug_assert!(
            self.entries
                .windows(2)
                .all(|w| w[0].0 < w[1].0 && w[0].1 <= w[1].1),
            "leader epochs out of order: {:?}",
            self.entries
        );
    }

    fn write(&self) -> io::Result<()> {
        self.check();
        checkpoint::write_epochs(&self.path, &self.entries)
    }

    pub fn entries(&self) -> &[(i32, i64)] {
        &self.entries
    }

    pub fn latest(&self) -> Option<i32> {
        self.entries.last().map(|&(e, _)| e)
    }

    /// The epoch of the record at `offset`: of the last epoch starting at or before it.
    pub fn epoch_at(&self, offset: i64) -> Option<i32> {
        self.entries
            .iter()
            .rev()
            .find(|(_, start)| *start <= offset)
            .map(|(e, _)| *e)
    }

    /// Records that `epoch` starts at `start_offset`; an epoch not above the latest is ignored
    /// (a leader re-elected in the same epoch, or a follower replaying what it has).
    pub fn assign(&mut self, epoch: i32, start_offset: i64) -> io::Result<()> {
        if epoch < 0 || self.latest().is_some_and(|latest| latest >= epoch) {
            return Ok(());
        }
        debug_assert!(
            self.entries.last().is_none_or(|(_, s)| *s <= start_offset),
            "epoch {epoch} starts at {start_offset}, before the previous epoch"
        );
        self.entries.push((epoch, start_offset));
        self.write()
    }

    /// OffsetForLeaderEpoch: the largest epoch not above `epoch`, and where it ended (the start
    /// of the next epoch, or `log_end` for the latest); `None` if there is no such epoch.
    pub fn end_offset_for(&self, epoch: i32, log_end: i64) -> Option<(i32, i64)> {
        let pos = self.entries.iter().rposition(|&(e, _)| e <= epoch)?;
        let end = self
            .entries
            .get(pos + 1)
            .map_or(log_end, |&(_, start)| start);
        Some((self.entries[pos].0, end))
    }

    /// The log now starts at `start`: entries below it collapse into one starting there.
    pub fn truncate_from_start(&mut self, start: i64) -> io::Result<()> {
        let below = self.entries.iter().filter(|(_, s)| *s < start).count();
        if below == 0 {
            return Ok(());
        }
        let (epoch, _) = self.entries[below - 1];
        let keep_latest = self.entries.get(below).is_none_or(|(_, s)| *s > start);
        self.entries.drain(..below);
        if keep_latest {
            self.entries.insert(0, (epoch, start));
        }
        self.write()
    }

    /// The log was truncated to end at `end`: epochs starting at or after it go.
    pub fn truncate_from_end(&mut self, end: i64) -> io::Result<()> {
        let before = self.entries.len();
        self.entries.retain(|&(_, start)| start < end);
        if self.entries.len() != before {
            self.write()?;
        }
        Ok(())
    }

    /// At recovery: epochs starting past the recovered log end are stale (the checkpoint is
    /// rewritten with the next change).
    pub fn forget_past(&mut self, end: i64) {
        self.entries.retain(|&(_, start)| start <= end);
    }

    pub fn clear(&mut self) -> io::Result<()> {
        self.entries.clear();
        self.write()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epochs_survive_reopen_and_truncate_from_both_ends() {
        let dir = tempfile::tempdir().unwrap();
        let mut cache = LeaderEpochCache::open(dir.path());
        cache.assign(0, 0).unwrap();
        cache.assign(2, 10).unwrap();
        cache.assign(1, 12).unwrap(); // not above the latest: ignored
        cache.assign(5, 20).unwrap();
        assert_eq!(cache.entries(), &[(0, 0), (2, 10), (5, 20)]);
        assert_eq!(cache.end_offset_for(3, 30), Some((2, 20)));
        assert_eq!(cache.end_offset_for(9, 30), Some((5, 30)));
        assert_eq!(cache.end_offset_for(-1, 30), None);
        assert_eq!(cache.epoch_at(15), Some(2));
        let reopened = LeaderEpochCache::open(dir.path());
        assert_eq!(reopened.entries(), cache.entries());
        cache.truncate_from_start(12).unwrap();
        assert_eq!(cache.entries(), &[(2, 12), (5, 20)]);
        cache.truncate_from_end(20).unwrap();
        assert_eq!(cache.entries(), &[(2, 12)]);
        assert_eq!(LeaderEpochCache::open(dir.path()).entries(), &[(2, 12)]);
    }
}
