//! Replication throttles (Kafka's replication quotas): a leader serving, and a follower
//! fetching, the replicas a topic lists in `leader.replication.throttled.replicas` /
//! `follower.replication.throttled.replicas` (`partition:broker,...` or `*`) hold back once the
//! bytes they moved for such replicas run ahead of the broker's
//! `leader.replication.throttled.rate` / `follower.replication.throttled.rate`. Replicas in the
//! ISR are never throttled, so a throttle only slows catching up (a reassignment, a broker
//! coming back), never acks=all.

use std::sync::Mutex;
use tokio::time::Instant;

pub const LEADER_REPLICAS: &str = "leader.replication.throttled.replicas";
pub const FOLLOWER_REPLICAS: &str = "follower.replication.throttled.replicas";
pub const LEADER_RATE: &str = "leader.replication.throttled.rate";
pub const FOLLOWER_RATE: &str = "follower.replication.throttled.rate";

/// Bytes moved for throttled replicas, per direction: a token bucket holding at most one
/// second of the rate. Moving bytes spends tokens (a whole fetch at once, so the balance can go
/// below zero); while it is not positive, throttled replicas wait.
#[derive(Default)]
pub struct Quota {
    bucket: Mutex<Option<Bucket>>,
}

struct Bucket {
    tokens: f64,
    rate: f64,
    at: Instant,
}

impl Bucket {
    fn refill(&mut self, rate: f64) {
        let now = Instant::now();
        self.rate = rate;
        self.tokens = (self.tokens + now.duration_since(self.at).as_secs_f64() * rate).min(rate);
        self.at = now;
    }
}

impl Quota {
    pub fn record(&self, bytes: usize) {
        if let Some(b) = crate::locks::lock(&self.bucket).as_mut() {
            let rate = b.rate;
            b.refill(rate);
            b.tokens -= bytes as f64;
        }
    }

    /// Whether throttled replicas must wait at `rate` bytes per second (`i64::MAX`, the
    /// default, never throttles; 0 stops them).
    pub fn exceeded(&self, rate: i64) -> bool {
        let mut bucket = crate::locks::lock(&self.bucket);
        if rate == i64::MAX {
            *bucket = None;
            return false;
        }
        let rate = rate.max(0) as f64;
        let b = bucket.get_or_insert_with(|| Bucket {
            tokens: rate,
            rate,
            at: Instant::now(),
        });
        b.refill(rate);
        b.tokens <= 0.0
    }
}

/// Whether a throttled-replicas list (`*` or `partition:broker,...`) names `broker`'s replica
/// of `partition`.
pub fn lists(list: Option<&str>, partition: i32, broker: i32) -> bool {
    let Some(list) = list.map(str::trim) else {
        return false;
    };
    list == "*"
        || list.split(',').any(|entry| {
            entry.trim().split_once(':').is_some_and(|(p, b)| {
                p.trim().parse() == Ok(partition) && b.trim().parse() == Ok(broker)
            })
        })
}

/// Validates a throttled-replicas list, with Kafka's message on failure.
pub fn validate_list(name: &str, value: &str) -> Result<(), String> {
    let value = value.trim();
    let pair = |e: &str| {
        e.trim().split_once(':').is_some_and(|(p, b)| {
            p.trim().parse::<u32>().is_ok() && b.trim().parse::<u32>().is_ok()
        })
    };
    if value.is_empty() || value == "*" || value.split(',').all(pair) {
        return Ok(());
    }
    Err(format!("Invalid value {value} for configuration {name}: Must be the wildcard (*) or a list of 'partitionId:brokerId' pairs, e.g. 0:1,1:2"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_match_partition_and_broker() {
        assert!(lists(Some("*"), 3, 7));
        assert!(lists(Some("0:1, 3:7"), 3, 7));
        assert!(!lists(Some("0:1,3:7"), 3, 1));
        assert!(!lists(Some(""), 0, 1));
        assert!(!lists(None, 0, 1));
        assert!(validate_list(LEADER_REPLICAS, "0:1,1:2").is_ok());
        assert!(validate_list(LEADER_REPLICAS, "*").is_ok());
        assert!(validate_list(LEADER_REPLICAS, "0-1")
            .unwrap_err()
            .contains("wildcard"));
    }

    #[test]
    fn quota_is_exceeded_above_its_rate() {
        let q = Quota::default();
        assert!(!q.exceeded(1000));
        q.record(500);
        assert!(!q.exceeded(1000), "500 of a second's 1000 bytes");
        q.record(600);
        assert!(q.exceeded(1000), "1100 bytes within a second");
        std::thread::sleep(std::time::Duration::from_millis(300));
        assert!(!q.exceeded(1000), "300 ms refill 300 bytes");
        assert!(!q.exceeded(i64::MAX), "no throttle");
        assert!(
            Quota::default().exceeded(0),
            "rate 0 stops throttled replicas"
        );
    }
}
