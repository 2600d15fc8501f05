//! Group configs (Kafka's GROUP config resources, type 32): per-group overrides of the consumer
//! protocol's session time-out and heartbeat interval, kept in the metadata log and applied to
//! that group alone. The `share.*` and `streams.*` group configs are refused: ferrolog has no
//! share or streams groups.

use crate::config::{BrokerConfig, Properties};

pub const SESSION_TIMEOUT: &str = "consumer.session.timeout.ms";
pub const HEARTBEAT_INTERVAL: &str = "consumer.heartbeat.interval.ms";

/// (group config, the broker config it defaults to, documentation).
pub const KEYS: &[(&str, &str, &str)] = &[
    (
        SESSION_TIMEOUT,
        "group.consumer.session.timeout.ms",
        "The time-out to detect consumer failures of this group (consumer protocol).",
    ),
    (
        HEARTBEAT_INTERVAL,
        "group.consumer.heartbeat.interval.ms",
        "The heartbeat interval given to the members of this group (consumer protocol).",
    ),
];

/// Whether `name` is a group config ferrolog knows.
pub fn known(name: &str) -> bool {
    KEYS.iter().any(|(k, ..)| *k == name)
}

/// The effective value of `name` for a group with `overrides`, and whether it is overridden.
pub fn value(
    config: &BrokerConfig,
    overrides: Option<&Properties>,
    name: &str,
) -> Option<(i64, bool)> {
    let default = match name {
        SESSION_TIMEOUT => config.settings.group_consumer_session_timeout_ms,
        HEARTBEAT_INTERVAL => config.settings.group_consumer_heartbeat_interval_ms,
        _ => return None,
    };
    if let Some(v) = overrides
        .and_then(|o| o.get(name))
        .and_then(|v| v.parse().ok())
    {
        return Some((v, true));
    }
    Some((i64::from(default), false))
}

/// Checks a group's overrides as Kafka does: the session time-out within
/// `group.consumer.min|max.session.timeout.ms`, the heartbeat interval within
/// `group.consumer.min|max.heartbeat.interval.ms` and below the session time-out.
pub fn validate(config: &BrokerConfig, overrides: &Properties) -> Result<(), String> {
    for (name, value) in overrides {
        if name.starts_with("share.") || name.starts_with("streams.") {
            return Err(format!(
                "Invalid config {name}: ferrolog has no share or streams groups"
            ));
        }
        if !known(name) {
            return Err(format!("Unknown group config name: {name}"));
        }
        if value.parse::<i64>().is_err() {
            return Err(format!(
                "Invalid value {value} for configuration {name}: Not a number of type INT"
            ));
        }
    }
    let (session, _) = value(config, Some(overrides), SESSION_TIMEOUT).expect("known");
    let (heartbeat, _) = value(config, Some(overrides), HEARTBEAT_INTERVAL).expect("known");
    let s = &config.settings;
    let (default_session, default_heartbeat) = (
        s.group_consumer_session_timeout_ms,
        s.group_consumer_heartbeat_interval_ms,
    );
    let (min_s, max_s) = (
        i64::from(s.group_consumer_min_session_timeout_ms.min(default_session)),
        i64::from(s.group_consumer_max_session_timeout_ms.max(default_session)),
    );
    let (min_h, max_h) = (
        i64::from(
            s.group_consumer_min_heartbeat_interval_ms
                .min(default_heartbeat),
        ),
        i64::from(
            s.group_consumer_max_heartbeat_interval_ms
                .max(default_heartbeat),
        ),
    );
    if !(min_s..=max_s).contains(&session) {
        return Err(format!(
            "Invalid value {session} for configuration {SESSION_TIMEOUT}: must be between {min_s} and {max_s}"
        ));
    }
    if !(min_h..=max_h).contains(&heartbeat) {
        return Err(format!(
            "Invalid value {heartbeat} for configuration {HEARTBEAT_INTERVAL}: must be between {min_h} and {max_h}"
        ));
    }
    if heartbeat >= session {
        return Err(format!(
            "Invalid value {heartbeat} for configuration {HEARTBEAT_INTERVAL}: must be less than {SESSION_TIMEOUT} ({session})"
        ));
    }
    Ok(())
}
