//! The group coordinator for classic consumer groups (JoinGroup / SyncGroup / Heartbeat /
//! LeaveGroup) and committed offsets.
//!
//! On a single node this broker coordinates every group. Offsets are records in the compacted
//! internal topic `__consumer_offsets` (partition = abs(javaHashCode(group)) % 50), written
//! before the commit is acknowledged and replayed when the broker starts, so they survive
//! restarts. Group membership is kept in memory: after a restart members rejoin (as they do when
//! a coordinator moves).
//!
//! Concurrency: all groups sit behind one mutex, never held across an await; a member waiting
//! for the join or sync phase to complete waits on a oneshot channel registered in the group.

pub mod assignor;
pub mod config;
pub mod consumer;
mod embedded;
pub mod offsets_log;
mod state;

pub use state::{
    CommittedOffset, GroupConfig, GroupCoordinator, GroupOffsetKeys, GroupTiming, JoinOutcome,
    MemberRequest, MigrationPolicy, State, SyncOutcome,
};

pub const OFFSETS_TOPIC: &str = "__consumer_offsets";

/// Kafka's `String.hashCode()`, which picks a group's `__consumer_offsets` partition.
pub fn java_string_hash(s: &str) -> i32 {
    s.encode_utf16()
        .fold(0i32, |h, c| h.wrapping_mul(31).wrapping_add(i32::from(c)))
}

pub fn offsets_partition(group: &str, partitions: i32) -> i32 {
    // Kafka: Utils.abs(hash) % n, where abs(Integer.MIN_VALUE) is 0
    let hash = java_string_hash(group);
    let positive = if hash == i32::MIN { 0 } else { hash.abs() };
    positive % partitions.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partition_matches_kafka() {
        assert_eq!(java_string_hash("hello"), 99162322);
        assert_eq!(java_string_hash(""), 0);
        assert_eq!(offsets_partition("hello", 50), 99162322 % 50);
        assert!((0..50).contains(&offsets_partition("some-group", 50)));
    }
}
