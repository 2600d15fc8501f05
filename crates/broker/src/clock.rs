//! The broker's time, one seam for a deterministic simulation to drive. Monotonic time is
//! tokio's (`tokio::time::Instant`, `sleep`, `interval`: a simulated runtime pauses and
//! advances it); wall-clock milliseconds (record timestamps, retention, expiry, the broker
//! epoch) come from [`now_ms`], which reads the system clock unless a [`Clock`] was installed
//! before the broker started. The cost when none is: one atomic load.

use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

/// A source of wall-clock time in milliseconds since the Unix epoch.
pub trait Clock: Send + Sync {
    fn now_ms(&self) -> i64;
}

static CLOCK: OnceLock<Box<dyn Clock>> = OnceLock::new();

/// Installs the process's wall clock (before the broker starts: time read earlier came from
/// the system clock); false if one was installed already.
pub fn install(clock: Box<dyn Clock>) -> bool {
    CLOCK.set(clock).is_ok()
}

fn system_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

pub fn now_ms() -> i64 {
    match CLOCK.get() {
        Some(clock) => clock.now_ms(),
        None => system_ms(),
    }
}
