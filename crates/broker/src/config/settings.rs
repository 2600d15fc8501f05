//! The typed broker settings: one field per numeric broker key the broker reads, named after
//! the key (so the unit is in the name: `offsets_retention_minutes`,
//! `leader_imbalance_check_interval_seconds`), of the Rust type of the key's Kafka type (INT
//! `i32`, LONG `i64`, SHORT `i16`).
//!
//! The key's type, default and documentation are declared once, in [`super::BROKER_KEYS`];
//! the fields are parsed from the effective properties (explicit, dynamic or default), and a test
//! checks every field against the table (the key exists, has a default, and its type is the
//! field's). A mistyped name cannot compile into a lookup that silently falls back.

use anyhow::{anyhow, Result};

use super::{ConfigType, Properties};

/// A field type and the Kafka config type it holds.
pub trait SettingType: Sized {
    const KIND: ConfigType;
    fn parse(value: &str) -> Option<Self>;
}

impl SettingType for i16 {
    const KIND: ConfigType = ConfigType::Short;
    fn parse(value: &str) -> Option<i16> {
        value.trim().parse().ok()
    }
}

impl SettingType for i32 {
    const KIND: ConfigType = ConfigType::Int;
    fn parse(value: &str) -> Option<i32> {
        value.trim().parse().ok()
    }
}

impl SettingType for i64 {
    const KIND: ConfigType = ConfigType::Long;
    fn parse(value: &str) -> Option<i64> {
        value.trim().parse().ok()
    }
}

fn setting<T: SettingType>(properties: &Properties, name: &str) -> Result<T> {
    let value = properties
        .get(name)
        .ok_or_else(|| anyhow!("configuration {name} has no value"))?;
    T::parse(value).ok_or_else(|| {
        anyhow!(
            "Invalid value {value} for configuration {name}: Not a number of type {}",
            T::KIND.kafka_name()
        )
    })
}

macro_rules! settings {
    ($( $field:ident: $ty:ty = $name:literal, )*) => {
        /// The typed broker settings (see the module documentation).
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub struct Settings {
            $( #[doc = concat!("`", $name, "`")] pub $field: $ty, )*
        }

        impl Settings {
            /// Parses every field from the effective properties.
            pub fn parse(properties: &Properties) -> Result<Settings> {
                Ok(Settings { $( $field: setting(properties, $name)?, )* })
            }

            /// (key, its Kafka type) of every field, for the check against the table.
            pub const KEYS: &'static [(&'static str, ConfigType)] =
                &[$( ($name, <$ty as SettingType>::KIND), )*];
        }
    };
}

settings! {
    broker_heartbeat_interval_ms: i32 = "broker.heartbeat.interval.ms",
    broker_session_timeout_ms: i32 = "broker.session.timeout.ms",
    controller_quorum_election_timeout_ms: i32 = "controller.quorum.election.timeout.ms",
    controller_quorum_fetch_timeout_ms: i32 = "controller.quorum.fetch.timeout.ms",
    follower_replication_throttled_rate: i64 = "follower.replication.throttled.rate",
    group_consumer_heartbeat_interval_ms: i32 = "group.consumer.heartbeat.interval.ms",
    group_consumer_max_heartbeat_interval_ms: i32 = "group.consumer.max.heartbeat.interval.ms",
    group_consumer_max_session_timeout_ms: i32 = "group.consumer.max.session.timeout.ms",
    group_consumer_min_heartbeat_interval_ms: i32 = "group.consumer.min.heartbeat.interval.ms",
    group_consumer_min_session_timeout_ms: i32 = "group.consumer.min.session.timeout.ms",
    group_consumer_session_timeout_ms: i32 = "group.consumer.session.timeout.ms",
    group_initial_rebalance_delay_ms: i32 = "group.initial.rebalance.delay.ms",
    group_max_session_timeout_ms: i32 = "group.max.session.timeout.ms",
    group_min_session_timeout_ms: i32 = "group.min.session.timeout.ms",
    leader_imbalance_check_interval_seconds: i64 = "leader.imbalance.check.interval.seconds",
    leader_imbalance_per_broker_percentage: i32 = "leader.imbalance.per.broker.percentage",
    leader_replication_throttled_rate: i64 = "leader.replication.throttled.rate",
    offset_metadata_max_bytes: i32 = "offset.metadata.max.bytes",
    offsets_retention_check_interval_ms: i64 = "offsets.retention.check.interval.ms",
    offsets_retention_minutes: i32 = "offsets.retention.minutes",
    offsets_topic_num_partitions: i32 = "offsets.topic.num.partitions",
    offsets_topic_replication_factor: i16 = "offsets.topic.replication.factor",
    offsets_topic_segment_bytes: i32 = "offsets.topic.segment.bytes",
    producer_id_expiration_check_interval_ms: i32 = "producer.id.expiration.check.interval.ms",
    producer_id_expiration_ms: i32 = "producer.id.expiration.ms",
    replica_fetch_max_bytes: i32 = "replica.fetch.max.bytes",
    replica_fetch_wait_max_ms: i32 = "replica.fetch.wait.max.ms",
    replica_lag_time_max_ms: i64 = "replica.lag.time.max.ms",
    transaction_abort_timed_out_transaction_cleanup_interval_ms: i32 =
        "transaction.abort.timed.out.transaction.cleanup.interval.ms",
    transaction_max_timeout_ms: i32 = "transaction.max.timeout.ms",
    transaction_state_log_min_isr: i32 = "transaction.state.log.min.isr",
    transaction_state_log_num_partitions: i32 = "transaction.state.log.num.partitions",
    transaction_state_log_replication_factor: i16 = "transaction.state.log.replication.factor",
    transaction_state_log_segment_bytes: i32 = "transaction.state.log.segment.bytes",
    transactional_id_expiration_ms: i32 = "transactional.id.expiration.ms",
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::broker_key;

    /// Every key of the table at its default.
    fn defaults() -> Properties {
        crate::config::BROKER_KEYS
            .iter()
            .filter_map(|k| Some((k.name.to_string(), k.default?.to_string())))
            .collect()
    }

    #[test]
    fn every_setting_is_a_key_of_the_table_with_a_default_of_its_type() {
        for (name, kind) in Settings::KEYS {
            let key = broker_key(name).unwrap_or_else(|| panic!("{name} is not a broker key"));
            assert!(key.default.is_some(), "{name} has no default");
            assert_eq!(key.kind, *kind, "{name}: the field's type is not the key's");
        }
        let s = Settings::parse(&defaults()).unwrap();
        assert_eq!(s.offsets_retention_minutes, 10_080);
        assert_eq!(s.leader_replication_throttled_rate, i64::MAX);
    }

    #[test]
    fn a_value_out_of_its_type_is_refused_naming_the_key() {
        let mut p = defaults();
        p.insert("offsets.topic.replication.factor".into(), "40000".into());
        let err = Settings::parse(&p).unwrap_err().to_string();
        assert!(
            err.contains("offsets.topic.replication.factor") && err.contains("SHORT"),
            "{err}"
        );
    }
}
