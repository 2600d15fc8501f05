//! Feature flags (KIP-584) as Kafka 4.1 names them: the versions ferrolog supports, the levels
//! finalized for the cluster (in the metadata log, `MetadataRecord::Feature`; Kafka's defaults
//! for a new cluster until UpdateFeatures changes them), and what changing them does.
//!
//! Only features whose levels ferrolog implements are listed: `eligible.leader.replicas.version`
//! and `share.version` are not (no ELR, no share groups), and `transaction.version` stops at 0
//! (transaction version 2, KIP-890 part 2, is not implemented). `metadata.version` is reported as
//! Kafka 4.1's and cannot be changed: nothing in ferrolog depends on it.

use kafka_protocol::ResponseError;

use crate::metadata::MetadataImage;

pub const METADATA_VERSION: &str = "metadata.version";
pub const KRAFT_VERSION: &str = "kraft.version";
pub const GROUP_VERSION: &str = "group.version";
pub const TRANSACTION_VERSION: &str = "transaction.version";

/// (name, lowest supported level, highest supported level, level of a new cluster).
pub const SUPPORTED: &[(&str, i16, i16, i16)] = &[
    // 3.3-IV3 to 4.1-IV1, as Kafka 4.1 (ferrolog's own metadata log does not change with it)
    (METADATA_VERSION, 7, 27, 27),
    (KRAFT_VERSION, 0, 1, 0),
    // 1: the consumer group protocol (KIP-848)
    (GROUP_VERSION, 0, 1, 1),
    (TRANSACTION_VERSION, 0, 0, 0),
];

fn supported(name: &str) -> Option<(i16, i16, i16)> {
    SUPPORTED
        .iter()
        .find(|(n, ..)| *n == name)
        .map(|(_, min, max, default)| (*min, *max, *default))
}

/// The finalized level of `name`: the metadata's, else the new-cluster default (`kraft.version`
/// is 1 for a dynamic quorum, formed through `controller.quorum.bootstrap.servers`).
pub fn level(image: &MetadataImage, dynamic_quorum: bool, name: &str) -> i16 {
    if name == KRAFT_VERSION {
        return i16::from(dynamic_quorum);
    }
    image
        .features
        .get(name)
        .copied()
        .or_else(|| supported(name).map(|(_, _, default)| default))
        .unwrap_or(0)
}

/// The finalized features with a level above 0, as ApiVersions lists them.
pub fn finalized(image: &MetadataImage, dynamic_quorum: bool) -> Vec<(&'static str, i16)> {
    SUPPORTED
        .iter()
        .map(|(name, ..)| (*name, level(image, dynamic_quorum, name)))
        .filter(|(_, level)| *level > 0)
        .collect()
}

/// How UpdateFeatures may change a level (its `upgrade_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    Upgrade,
    SafeDowngrade,
    UnsafeDowngrade,
}

impl Change {
    /// From UpdateFeatures' `upgrade_type` (v1+) or `allow_downgrade` (v0).
    pub fn from_request(version: i16, upgrade_type: i8, allow_downgrade: bool) -> Change {
        match (version, upgrade_type, allow_downgrade) {
            (0, _, true) => Change::SafeDowngrade,
            (0, _, false) => Change::Upgrade,
            (_, 2, _) => Change::SafeDowngrade,
            (_, 3, _) => Change::UnsafeDowngrade,
            _ => Change::Upgrade,
        }
    }
}

/// Checks one update of `name` to `to` from the current level `from`.
pub fn check(
    name: &str,
    from: i16,
    to: i16,
    change: Change,
) -> Result<(), (ResponseError, String)> {
    let invalid = |m: String| Err((ResponseError::InvalidUpdateVersion, m));
    let Some((min, max, _)) = supported(name) else {
        return invalid(format!("Invalid update version {to} for feature {name}: ferrolog does not support this feature"));
    };
    if name == METADATA_VERSION && to != from {
        return invalid(format!(
            "Invalid update version {to} for feature {name}: ferrolog's behaviour does not depend on metadata.version, which stays at {from}"
        ));
    }
    if name == KRAFT_VERSION && to != from {
        return invalid(format!(
            "Invalid update version {to} for feature {name}: ferrolog sets kraft.version by how the quorum was formed (1 for controller.quorum.bootstrap.servers) and cannot change it"
        ));
    }
    if to > max || (to < min && !(to == 0 && name != METADATA_VERSION)) {
        return invalid(format!(
            "Invalid update version {to} for feature {name}: the supported range is {min}-{max}"
        ));
    }
    if to < from && change == Change::Upgrade {
        return invalid(format!(
            "Invalid update version {to} for feature {name}: it is below the finalized {from}, and the update was not a downgrade"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_default_as_a_new_kafka_cluster_and_updates_are_checked() {
        let mut image = MetadataImage::default();
        assert_eq!(level(&image, false, METADATA_VERSION), 27);
        assert_eq!(level(&image, false, GROUP_VERSION), 1);
        assert_eq!(level(&image, true, KRAFT_VERSION), 1);
        assert_eq!(
            finalized(&image, false),
            vec![(METADATA_VERSION, 27), (GROUP_VERSION, 1)]
        );
        image.features.insert(GROUP_VERSION.into(), 0);
        assert_eq!(finalized(&image, false), vec![(METADATA_VERSION, 27)]);

        assert!(check(GROUP_VERSION, 1, 0, Change::SafeDowngrade).is_ok());
        assert!(check(GROUP_VERSION, 1, 0, Change::Upgrade).is_err());
        assert!(check(GROUP_VERSION, 0, 2, Change::Upgrade).is_err());
        assert!(check(METADATA_VERSION, 27, 26, Change::UnsafeDowngrade).is_err());
        assert!(check(METADATA_VERSION, 27, 27, Change::Upgrade).is_ok());
        assert!(check(TRANSACTION_VERSION, 0, 2, Change::Upgrade).is_err());
        assert!(check(KRAFT_VERSION, 0, 1, Change::Upgrade).is_err());
        assert!(check("share.version", 0, 1, Change::Upgrade).is_err());
    }
}
