//! Taking the broker's std locks. A panic while a lock is held poisons it; failing every later
//! request that takes the lock (a panic each) would turn one bug into a dead broker, so a
//! poisoned lock is logged once and taken over, with its state as the panicking section left it
//! (the bug is in the log; a restart rebuilds in-memory state from the logs).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

static POISON_LOGGED: AtomicBool = AtomicBool::new(false);

fn recover<G>(e: PoisonError<G>) -> G {
    if !POISON_LOGGED.swap(true, Ordering::Relaxed) {
        tracing::error!("a lock was poisoned by a panic; going on with its state as it was left");
    }
    e.into_inner()
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(recover)
}

pub(crate) fn read<T>(l: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(recover)
}

pub(crate) fn write<T>(l: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(recover)
}
