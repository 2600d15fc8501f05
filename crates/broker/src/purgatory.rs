//! Delayed operations keyed by partition: an acks=all produce waiting for high watermarks, a
//! fetch waiting for data. Each partition has its [`Watchers`]; an operation registers a
//! [`Waiter`] with the partitions it waits on, and an event on a partition (an append, a high
//! watermark or log start that moved, a leadership change) wakes only the operations watching
//! that partition, telling each which of its partitions changed, so it re-examines only those.
//!
//! No lost wake-ups: every event bumps the partition's version before it wakes the watchers.
//! An operation reads the version before it examines the partition ([`Watchers::version`]) and
//! checks it again once registered ([`Waiter::watch`] returns whether it moved): an event
//! between the two is seen either as a moved version or as a wake-up, because the watcher list
//! is behind a mutex that both sides take.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};

use tokio::sync::Notify;

/// The operations watching one partition, and its event counter.
pub struct Watchers {
    version: AtomicU64,
    list: Mutex<WatchList>,
}

impl Default for Watchers {
    /// Each partition's versions are its own: a partition recreated under the same name (a
    /// topic deleted and created again) never repeats a version its predecessor had, so a
    /// version remembered by a fetch session cannot match the new one by accident.
    fn default() -> Watchers {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        Watchers {
            version: AtomicU64::new(NEXT.fetch_add(1 << 32, Ordering::Relaxed)),
            list: Mutex::default(),
        }
    }
}

#[derive(Default)]
struct WatchList {
    /// (operation, the partition's position in it); dead operations are pruned as it grows.
    entries: Vec<(Weak<Waiter>, usize)>,
    /// The length at which dead entries are pruned next.
    prune_at: usize,
}

impl Watchers {
    /// The partition's event count: read it before examining the partition.
    pub fn version(&self) -> u64 {
        self.version.load(Ordering::Acquire)
    }

    /// An event happened on the partition: every operation watching it is told.
    pub fn wake(&self) {
        self.version.fetch_add(1, Ordering::AcqRel);
        let mut list = crate::locks::lock(&self.list);
        list.entries.retain(|(w, key)| match w.upgrade() {
            Some(w) => {
                w.mark(*key);
                true
            }
            None => false,
        });
    }

    fn add(&self, waiter: &Arc<Waiter>, key: usize) {
        let mut list = crate::locks::lock(&self.list);
        if list.entries.len() >= list.prune_at {
            // amortised: operations that finished without an event here leave dead entries
            list.entries.retain(|(w, _)| w.strong_count() > 0);
            list.prune_at = (list.entries.len() * 2).max(16);
        }
        list.entries.push((Arc::downgrade(waiter), key));
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.list.lock().unwrap().entries.len()
    }
}

/// One delayed operation: woken when a partition it watches changes.
pub struct Waiter {
    notify: Notify,
    /// Positions of the partitions that changed since the operation last looked.
    dirty: Mutex<Vec<usize>>,
}

impl Waiter {
    pub fn new() -> Arc<Waiter> {
        Arc::new(Waiter {
            notify: Notify::new(),
            dirty: Mutex::new(Vec::new()),
        })
    }

    fn mark(&self, key: usize) {
        let mut dirty = crate::locks::lock(&self.dirty);
        if !dirty.contains(&key) {
            dirty.push(key);
        }
        drop(dirty);
        self.notify.notify_one();
    }

    /// Watches `watchers` as position `key`. `seen` is the version read before the partition
    /// was examined: if it moved since, the partition is marked changed at once.
    pub fn watch(self: &Arc<Self>, watchers: &Watchers, key: usize, seen: u64) {
        watchers.add(self, key);
        if watchers.version() != seen {
            self.mark(key);
        }
    }

    /// The positions of the partitions that changed since the last call, in ascending order.
    pub fn take_changed(&self) -> Vec<usize> {
        let mut dirty = std::mem::take(&mut *crate::locks::lock(&self.dirty));
        dirty.sort_unstable();
        dirty
    }

    /// Waits for a change on a watched partition, or `deadline`; true if something changed.
    pub async fn changed_before(&self, deadline: tokio::time::Instant) -> bool {
        tokio::select! {
            _ = self.notify.notified() => true,
            _ = tokio::time::sleep_until(deadline) => {
                !crate::locks::lock(&self.dirty).is_empty()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wake_marks_only_the_partition_that_changed() {
        let (a, b) = (Watchers::default(), Watchers::default());
        let w = Waiter::new();
        w.watch(&a, 0, a.version());
        w.watch(&b, 1, b.version());
        assert!(w.take_changed().is_empty());
        b.wake();
        b.wake();
        assert_eq!(w.take_changed(), vec![1]);
        assert!(w.take_changed().is_empty());
    }

    #[test]
    fn an_event_before_registration_is_not_lost() {
        let a = Watchers::default();
        let seen = a.version();
        a.wake(); // between examining the partition and watching it
        let w = Waiter::new();
        w.watch(&a, 3, seen);
        assert_eq!(w.take_changed(), vec![3]);
    }

    #[test]
    fn finished_operations_are_pruned() {
        let a = Watchers::default();
        for _ in 0..1000 {
            let w = Waiter::new();
            w.watch(&a, 0, a.version());
        }
        assert!(a.len() <= 32, "{} entries", a.len());
        let live = Waiter::new();
        live.watch(&a, 0, a.version());
        a.wake();
        assert_eq!(a.len(), 1);
        assert_eq!(live.take_changed(), vec![0]);
    }

    #[tokio::test]
    async fn a_waiter_wakes_on_change_and_times_out_otherwise() {
        let a = Arc::new(Watchers::default());
        let w = Waiter::new();
        w.watch(&a, 0, a.version());
        let soon = tokio::time::Instant::now() + std::time::Duration::from_millis(20);
        assert!(!w.changed_before(soon).await);
        let waker = a.clone();
        tokio::spawn(async move { waker.wake() });
        let later = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
        assert!(w.changed_before(later).await);
        assert_eq!(w.take_changed(), vec![0]);
    }
}
