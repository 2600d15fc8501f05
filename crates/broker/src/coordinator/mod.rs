//! The coordinators' plumbing under the group and transaction state machines: the write path
//! (`write`), which broker coordinates a key (the leader of the key's internal partition),
//! creating the internal topics on first use, and unloading a partition's keys when this broker
//! stops leading it. `groups` is the group coordinator's persistence; the transaction
//! coordinator's is in `crate::txn`.

pub mod groups;
pub mod write;

use anyhow::Result;

use crate::{config, group, txn, Broker};

/// Where coordinator requests go, and creating the internal topics.
impl Broker {
    /// Creates a compacted internal topic on first use, sized by the broker keys given;
    /// returns its partition count.
    pub(crate) fn ensure_internal_topic(
        &self,
        topic: &str,
        partitions: i32,
        segment_bytes: i32,
    ) -> Result<i32> {
        if let Some(t) = self.controller.image().topic(topic) {
            return Ok(t.partitions);
        }
        let partitions = partitions.clamp(1, 1000);
        let mut configs = config::Properties::new();
        configs.insert("cleanup.policy".into(), "compact".into());
        configs.insert("segment.bytes".into(), segment_bytes.to_string());
        if topic == txn::TXN_TOPIC {
            // as Kafka: transaction state is acknowledged by this many replicas (capped by the
            // replication factor), and never elected from an out-of-sync one
            configs.insert(
                "min.insync.replicas".into(),
                self.config
                    .settings
                    .transaction_state_log_min_isr
                    .to_string(),
            );
            configs.insert("unclean.leader.election.enable".into(), "false".into());
        }
        let image = self.controller.image();
        let live = image.live_brokers().len().max(1) as i64;
        let rf = i64::from(replication_factor(&self.config.settings, topic)).clamp(1, live) as i16;
        let replicas = self
            .place_replicas(&image, partitions, rf)
            .map_err(|m| anyhow::anyhow!(m))?;
        self.create_topic(topic, partitions, &configs, &replicas)?;
        Ok(partitions)
    }

    /// The address of broker `id` on its listener `listener` (this broker's own config on a
    /// single node, which has no registrations).
    pub fn broker_endpoint(&self, id: i32, listener: &str) -> Option<(String, i32)> {
        let image = self.controller.image();
        if image.brokers.is_empty() && id == self.config.node_id {
            let a = self.config.advertised_on(listener)?;
            return Some((a.host.clone(), i32::from(a.port)));
        }
        let (host, port) = image.brokers.get(&id)?.endpoint(listener)?;
        Some((host.to_string(), port))
    }

    /// The broker coordinating `key` (a group id in `__consumer_offsets`, a transactional id
    /// in `__transaction_state`): the leader of the key's partition, as (id, host, port).
    pub fn coordinator(&self, topic: &str, key: &str) -> Option<(i32, String, i32)> {
        let image = self.controller.image();
        if image.brokers.is_empty() {
            let c = &self.config;
            return Some((
                c.node_id,
                c.advertised.host.clone(),
                i32::from(c.advertised.port),
            ));
        }
        let t = image.topic(topic)?;
        let index = group::offsets_partition(key, t.partitions);
        let leader = image.partitions.get(&(t.id, index))?.leader;
        let b = image.brokers.get(&leader).filter(|b| !b.fenced)?;
        Some((b.id, b.host.clone(), b.port))
    }

    /// Whether this broker coordinates `key` now (it leads the key's partition).
    pub fn coordinates(&self, topic: &str, key: &str) -> bool {
        if self.quorum.is_none() {
            return true;
        }
        let Some(partitions) = self.controller.image().topic(topic).map(|t| t.partitions) else {
            return false;
        };
        let index = group::offsets_partition(key, partitions);
        self.replicas
            .get(topic, index)
            .is_some_and(|p| p.is_leader())
    }

    /// Whether this broker is about to coordinate `key` without doing so yet: its metadata does
    /// not have the internal topic yet (just created, on the way here), or names this broker the
    /// leader of the key's partition before the replica has become leader. Requests then get
    /// COORDINATOR_LOAD_IN_PROGRESS, which clients retry here, rather than NOT_COORDINATOR,
    /// which sends them back to FindCoordinator (and which librdkafka's committed() gives up on).
    pub fn becoming_coordinator(&self, topic: &str, key: &str) -> bool {
        let image = self.controller.image();
        let Some(t) = image.topic(topic) else {
            return true;
        };
        let index = group::offsets_partition(key, t.partitions);
        image
            .partition(&t.id, index, self.config.node_id)
            .is_some_and(|s| s.leader == self.config.node_id)
    }

    /// Forgets the groups or transactional ids of an internal partition this broker no longer
    /// leads (a no-op for one it did not coordinate).
    pub(crate) fn unload_coordinator(&self, topic: &str, index: i32, partitions: i32) {
        let unloaded = match topic {
            group::OFFSETS_TOPIC => self.groups.unload_partition(index, partitions),
            txn::TXN_TOPIC => self.txns.unload_partition(index, partitions),
            _ => 0,
        };
        if unloaded > 0 {
            tracing::info!(
                topic,
                partition = index,
                unloaded,
                "no longer the coordinator of this partition's keys"
            );
        }
    }
}

/// The key sizing an internal topic's replication factor.
pub(crate) fn replication_factor(settings: &config::Settings, topic: &str) -> i16 {
    if topic == txn::TXN_TOPIC {
        settings.transaction_state_log_replication_factor
    } else {
        settings.offsets_topic_replication_factor
    }
}
