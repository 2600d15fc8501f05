//! ferrolog broker: listeners, the request router and one handler per API, the replica manager,
//! and the single-node controller over the metadata log.

pub mod clock;
pub mod config;
pub mod coordinator;
pub mod errors;
pub mod features;
pub mod fetch_session;
pub mod group;
pub mod handlers;
pub(crate) mod locks;
pub mod log_manager;
pub mod log_rate;
pub mod metadata;
pub mod partition;
pub mod purgatory;
pub mod quorum;
pub mod replica_manager;
pub mod replication;
pub mod response;
pub mod server;
pub mod sys;
pub mod throttle;
pub mod txn;

use std::sync::{Arc, Mutex};

use anyhow::{Context, Result};
use uuid::Uuid;

use config::BrokerConfig;
use log_manager::LogManager;
use metadata::{Controller, MetadataImage, MetadataRecord};
use replica_manager::ReplicaManager;

/// Locks `mutex`, which its holder may keep across I/O (a log write waiting for the ISR, a
/// request to another broker): when it is taken, the wait happens with this runtime worker's
/// other tasks handed to another thread, so the runtime keeps serving (a worker blocked on the
/// lock would stall every connection, fetches included, and with them the holder's wait).
pub(crate) fn lock_blocking<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    match mutex.try_lock() {
        Ok(guard) => guard,
        Err(std::sync::TryLockError::Poisoned(e)) => e.into_inner(),
        Err(std::sync::TryLockError::WouldBlock) => {
            let wait = || mutex.lock().unwrap_or_else(|e| e.into_inner());
            match tokio::runtime::Handle::try_current() {
                Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
                    tokio::task::block_in_place(wait)
                }
                _ => wait(),
            }
        }
    }
}

/// Wall-clock milliseconds (see `clock`).
pub fn now_ms() -> i64 {
    clock::now_ms()
}

/// Everything a request handler can reach.
pub struct Broker {
    pub config: BrokerConfig,
    pub cluster_id: String,
    pub controller: Controller,
    pub replicas: ReplicaManager,
    pub fetch_sessions: fetch_session::FetchSessions,
    /// Classic consumer groups and committed offsets.
    pub groups: group::GroupCoordinator,
    /// Transactional ids and their transactions.
    pub txns: txn::TxnCoordinator,
    /// `config` with the dynamic broker configs of the metadata on top.
    effective: std::sync::RwLock<Arc<BrokerConfig>>,
    /// Set while a pass of `expire_transactions` runs.
    expiring_transactions: std::sync::atomic::AtomicBool,
    /// Set when a clean shutdown begins; background work stops touching logs.
    pub shutting_down: std::sync::atomic::AtomicBool,
    /// Serialises topic creation, deletion and partition growth.
    admin: Mutex<()>,
    /// Serialises applying metadata images to the hosted partitions.
    publishing: Mutex<()>,
    /// This node's member of the controller quorum (a cluster; `None` on a single node).
    pub quorum: Option<Arc<quorum::RaftQuorum>>,
    /// Identifies this run of the broker to the controller (Kafka's broker epoch).
    pub broker_epoch: i64,
    /// Woken when this broker starts following a partition (the fetchers re-plan).
    pub followers_changed: tokio::sync::Notify,
    /// Set by a controlled shutdown: the controller moves leadership away.
    pub controlled_shutdown: std::sync::atomic::AtomicBool,
    /// Bytes this broker sent as leader / fetched as follower for throttled replicas.
    pub leader_quota: throttle::Quota,
    pub follower_quota: throttle::Quota,
    /// The last image applied to the hosted partitions: the next one is applied as a delta
    /// against it (and a topic missing from it was deleted: the groups' offsets of it go).
    published: Mutex<Option<Arc<MetadataImage>>>,
    /// Committed offsets of deleted topics, per group, whose tombstones are still to be
    /// written to `__consumer_offsets` (off the metadata path, by the groups tick).
    offset_tombstones: Mutex<Vec<group::GroupOffsetKeys>>,
}

impl Broker {
    /// Opens the log directory, replays the metadata log and opens every partition's log.
    pub fn open(config: BrokerConfig) -> Result<Arc<Broker>> {
        // a dedicated broker observes the quorum and learns the cluster id from it
        let observer = if config.is_cluster() && !config.is_controller() {
            Some(quorum::RaftQuorum::observe(
                config.node_id as u64,
                config.controllers.clone(),
                config.cluster_id.clone(),
            )?)
        } else {
            None
        };
        let cluster_id = match &observer {
            Some(q) => Some(q.cluster_id.clone()),
            None => quorum::cluster_id_for(&config)?,
        };
        let log_manager =
            LogManager::open(&config.log_dirs, config.node_id, cluster_id.as_deref())?;
        let quorum = match (observer, &config.quorum_bootstrap) {
            (Some(q), _) => Some(q),
            (None, Some(bootstrap)) => Some(quorum::RaftQuorum::start(
                config.node_id as u64,
                bootstrap.clone(),
                config.controller_address().unwrap_or_default(),
                &config.log_dir.join(quorum::RAFT_DIR),
                log_manager.cluster_id.clone(),
                config.raft_timing(),
            )?),
            _ => None,
        };
        let controller = match &quorum {
            None => Controller::open(&config.log_dir, log_manager.clean_shutdown)?,
            Some(q) => Controller::new(Box::new(q.clone())),
        };
        let cluster_id = log_manager.cluster_id.clone();
        let broker = Broker {
            cluster_id,
            controller,
            quorum,
            broker_epoch: now_ms(),
            publishing: Mutex::new(()),
            followers_changed: tokio::sync::Notify::new(),
            controlled_shutdown: Default::default(),
            leader_quota: Default::default(),
            follower_quota: Default::default(),
            published: Default::default(),
            expiring_transactions: Default::default(),
            offset_tombstones: Default::default(),
            replicas: ReplicaManager::new(config.node_id, log_manager),
            fetch_sessions: fetch_session::FetchSessions::new(config.fetch_session_cache_slots),
            admin: Mutex::new(()),
            shutting_down: Default::default(),
            effective: std::sync::RwLock::new(Arc::new(config.clone())),
            txns: txn::TxnCoordinator::default(),
            groups: group::GroupCoordinator::new(group::GroupConfig {
                min_session_timeout_ms: config.long("group.min.session.timeout.ms") as i32,
                max_session_timeout_ms: config.long("group.max.session.timeout.ms") as i32,
                initial_rebalance_delay: std::time::Duration::from_millis(
                    config.long("group.initial.rebalance.delay.ms").max(0) as u64,
                ),
                max_metadata_bytes: config.long("offset.metadata.max.bytes").max(0) as usize,
                consumer_session_timeout: std::time::Duration::from_millis(
                    config.long("group.consumer.session.timeout.ms").max(1) as u64,
                ),
                consumer_heartbeat_interval_ms: config
                    .long("group.consumer.heartbeat.interval.ms")
                    .clamp(1, i64::from(i32::MAX))
                    as i32,
                // validated at start-up
                migration: config
                    .properties
                    .get("group.consumer.migration.policy")
                    .and_then(|v| group::MigrationPolicy::parse(v))
                    .unwrap_or(group::MigrationPolicy {
                        upgrade: true,
                        downgrade: true,
                    }),
            }),
            config,
        };
        let image = broker.controller.image();
        broker.refresh_effective(&image);
        broker.publish(&image)?;
        // a cluster node loads coordinator state as it becomes leader of internal partitions
        // (in publish); a single node coordinates everything it has
        if broker.quorum.is_none() {
            let min_isr = broker.config.properties.get("min.insync.replicas").cloned();
            if let Some(record) =
                quorum::duties::cluster_min_isr(&image, min_isr.as_deref().unwrap_or("1"))
            {
                broker.controller.commit(&[record])?;
                broker.refresh_effective(&broker.controller.image());
            }
            broker.replay_offsets()?;
            broker.forget_offsets_of_deleted_topics(&image, None);
            broker.replay_transactions()?;
        }
        // transactions a crash left between Prepare and Complete get their markers in the
        // scheduler's first pass (`run_background`), as soon as the broker runs
        // Directories of topics the metadata does not know (e.g. a delete interrupted by a crash).
        // A cluster node's image may still be catching up here: it keeps its directories.
        let stray_check = if broker.quorum.is_some() {
            Vec::new()
        } else {
            broker.replicas.log_manager().partition_dirs()?
        };
        for (topic, partition) in stray_check {
            let known = image
                .topic(&topic)
                .is_some_and(|t| partition < t.partitions);
            if !known && topic != metadata::METADATA_TOPIC {
                tracing::warn!(topic, partition, "deleting stray partition directory");
                broker.replicas.delete_partition(&topic, partition)?;
            }
        }
        Ok(Arc::new(broker))
    }

    /// Creates `__consumer_offsets` (compacted, `offsets.topic.num.partitions`) if missing.
    pub fn ensure_offsets_topic(&self) -> Result<i32> {
        self.ensure_internal_topic(
            group::OFFSETS_TOPIC,
            "offsets.topic.num.partitions",
            "offsets.topic.segment.bytes",
        )
    }

    /// Creates a compacted internal topic on first use, sized by the broker keys given;
    /// returns its partition count.
    pub(crate) fn ensure_internal_topic(
        &self,
        topic: &str,
        partitions_key: &str,
        segment_bytes_key: &str,
    ) -> Result<i32> {
        if let Some(t) = self.controller.image().topic(topic) {
            return Ok(t.partitions);
        }
        let partitions = self.config.long(partitions_key).clamp(1, 1000) as i32;
        let mut configs = config::Properties::new();
        configs.insert("cleanup.policy".into(), "compact".into());
        configs.insert(
            "segment.bytes".into(),
            self.config.long(segment_bytes_key).to_string(),
        );
        if topic == txn::TXN_TOPIC {
            // as Kafka: transaction state is acknowledged by this many replicas (capped by the
            // replication factor), and never elected from an out-of-sync one
            configs.insert(
                "min.insync.replicas".into(),
                self.config
                    .long("transaction.state.log.min.isr")
                    .to_string(),
            );
            configs.insert("unclean.leader.election.enable".into(), "false".into());
        }
        let image = self.controller.image();
        let live = image.live_brokers().len().max(1) as i64;
        let rf = self.config.long(replication_key(topic)).clamp(1, live) as i16;
        let replicas = self
            .place_replicas(&image, partitions, rf)
            .map_err(|m| anyhow::anyhow!(m))?;
        self.create_topic(topic, partitions, &configs, &replicas)?;
        Ok(partitions)
    }

    /// Writes committed offsets (or their deletion) to the group's `__consumer_offsets`
    /// partition, then applies them. Returns once the records are in the log.
    pub async fn persist_offsets(
        &self,
        group_id: &str,
        entries: Vec<(String, i32, Option<group::CommittedOffset>)>,
    ) -> Result<()> {
        let records = entries
            .iter()
            .map(|(topic, p, value)| {
                (
                    group::offsets_log::key(group_id, topic, *p),
                    value.as_ref().map(group::offsets_log::value),
                )
            })
            .collect();
        self.append_group_records(group_id, records).await?;
        for (topic, p, value) in entries {
            self.groups.replay_offset(group_id, &topic, p, value);
        }
        Ok(())
    }

    /// Writes the membership of classic groups that settled on a new generation, so a restart
    /// (or a new coordinator) brings the group back without a rebalance.
    pub async fn persist_groups(&self) {
        for (group_id, record) in self.groups.take_unpersisted() {
            let value = group::offsets_log::group_value(&record);
            let key = group::offsets_log::group_key(&group_id);
            if let Err(e) = self
                .append_group_records(&group_id, vec![(key, Some(value))])
                .await
            {
                tracing::error!(group = group_id, "writing group metadata failed: {e:#}");
                self.groups.persist_failed(&group_id, &record);
            }
        }
    }

    /// Deletes an empty group: tombstones for its offsets and its metadata.
    pub async fn delete_group(&self, group_id: &str) -> Result<(), kafka_protocol::ResponseError> {
        let keys = self.groups.delete(group_id)?;
        let mut records: Vec<_> = keys
            .iter()
            .map(|(t, p)| (group::offsets_log::key(group_id, t, *p), None))
            .collect();
        records.push((group::offsets_log::group_key(group_id), None));
        self.append_group_records(group_id, records)
            .await
            .map_err(|e| {
                tracing::error!(group = group_id, "deleting the group failed: {e:#}");
                kafka_protocol::ResponseError::CoordinatorNotAvailable
            })
    }

    /// Appends (key, value) records to the group's `__consumer_offsets` partition in one batch.
    async fn append_group_records(
        &self,
        group_id: &str,
        entries: Vec<(bytes::Bytes, Option<bytes::Bytes>)>,
    ) -> Result<()> {
        if entries.is_empty() {
            return Ok(());
        }
        let partitions = self.ensure_offsets_topic()?;
        let index = group::offsets_partition(group_id, partitions);
        let now = now_ms();
        let records: Vec<_> = entries
            .into_iter()
            .enumerate()
            .map(|(i, (key, value))| ferrolog_records::Record {
                offset: i as i64,
                ..ferrolog_records::plain_record(Some(key), value, vec![], now)
            })
            .collect();
        self.append_internal(group::OFFSETS_TOPIC, index, &records)
            .await
    }

    /// Deletes (with tombstones) the committed offsets of groups empty for longer than
    /// `offsets.retention.minutes`.
    pub async fn expire_offsets(&self) {
        let retention_ms = self
            .config
            .long("offsets.retention.minutes")
            .saturating_mul(60_000);
        for (group_id, keys) in self.groups.expired_offsets(now_ms(), retention_ms) {
            tracing::info!(
                group = group_id,
                partitions = keys.len(),
                "expiring committed offsets"
            );
            // an empty group whose offsets all expired is gone (Kafka: Dead)
            if let Err(e) = self.delete_group(&group_id).await {
                tracing::error!(group = group_id, "expiring offsets failed: {e:?}");
            }
        }
    }

    /// Rebuilds committed offsets by replaying `__consumer_offsets`.
    fn replay_offsets(&self) -> Result<()> {
        let Some(topic) = self.controller.image().topic(group::OFFSETS_TOPIC).cloned() else {
            return Ok(());
        };
        for index in 0..topic.partitions {
            self.load_offsets_partition(index)?;
        }
        Ok(())
    }

    /// Whether the controller quorum was formed dynamically (KIP-853, through
    /// `controller.quorum.bootstrap.servers`): kraft.version 1.
    pub fn dynamic_quorum(&self) -> bool {
        self.config.controller_voters.is_none()
            && self
                .config
                .explicit
                .contains_key("controller.quorum.bootstrap.servers")
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

    /// Loads groups and committed offsets from one `__consumer_offsets` partition (at start, or
    /// when this broker becomes its leader and so the coordinator of its groups).
    pub(crate) fn load_offsets_partition(&self, index: i32) -> Result<()> {
        {
            let Some(partition) = self.replicas.get(group::OFFSETS_TOPIC, index) else {
                return Ok(());
            };
            partition.with_log(|log| {
                log.for_each_record(|record| -> Result<()> {
                    if record.control {
                        // a transaction marker: the producer's offsets commit or vanish
                        let commit = record.key.as_ref().is_some_and(|k| {
                            ferrolog_storage::marker::is_commit_key(k) == Some(true)
                        });
                        self.groups.complete_txn_offsets(record.producer_id, commit);
                        return Ok(());
                    }
                    let Some(key) = record.key else {
                        return Ok(());
                    };
                    if let Some((group_id, topic, p)) = group::offsets_log::parse_key(key.clone()) {
                        match record.value.and_then(group::offsets_log::parse_value) {
                            Some(o) if record.transactional => self.groups.add_txn_offsets(
                                record.producer_id,
                                &group_id,
                                vec![(topic, p, o)],
                            ),
                            value => self.groups.replay_offset(&group_id, &topic, p, value),
                        }
                    } else if let Some(group_id) = group::offsets_log::parse_group_key(key) {
                        let value = record.value.and_then(group::offsets_log::parse_group_value);
                        self.groups.replay_group(&group_id, value);
                    }
                    Ok(())
                })
            })?;
        }
        Ok(())
    }

    /// The broker config in force: static settings with dynamic broker configs on top. Topic
    /// defaults come from here.
    pub fn effective(&self) -> Arc<BrokerConfig> {
        self.effective
            .read()
            .expect("effective config lock")
            .clone()
    }

    fn refresh_effective(&self, image: &MetadataImage) {
        let node = self.config.node_id.to_string();
        let effective = self.config.with_dynamic(
            image.broker_configs.get(""),
            image.broker_configs.get(&node),
        );
        *crate::locks::write(&self.effective) = Arc::new(effective);
        self.groups.set_group_configs(
            image
                .group_configs
                .iter()
                .map(|(group, configs)| {
                    let ms = |name: &str| {
                        group::config::value(&self.config, Some(configs), name)
                            .filter(|(_, overridden)| *overridden)
                            .map(|(v, _)| v)
                    };
                    (
                        group.clone(),
                        group::GroupTiming {
                            session_timeout: ms(group::config::SESSION_TIMEOUT)
                                .map(|v| std::time::Duration::from_millis(v.max(1) as u64)),
                            heartbeat_interval_ms: ms(group::config::HEARTBEAT_INTERVAL)
                                .map(|v| v.clamp(1, i64::from(i32::MAX)) as i32),
                        },
                    )
                })
                .collect(),
        );
    }

    /// Replaces a group's configs (validated by the caller); the group coordinator applies them
    /// from the metadata.
    pub fn set_group_configs(&self, group: &str, overrides: &config::Properties) -> Result<()> {
        let _guard = lock_blocking(&self.admin);
        let image = self.controller.image();
        let current = image.group_configs.get(group).cloned().unwrap_or_default();
        let records = config_changes(&current, overrides, |key, value| {
            MetadataRecord::GroupConfig {
                group: group.to_string(),
                key: key.to_string(),
                value: value.map(str::to_string),
            }
        });
        let image = self.controller.commit(&records)?;
        self.refresh_effective(&image);
        Ok(())
    }

    /// Replaces the dynamic broker configs of `scope` ("" = cluster-wide default, or this
    /// node's id; validated by the caller) and applies the new topic defaults to every log.
    pub fn set_broker_configs(&self, scope: &str, overrides: &config::Properties) -> Result<()> {
        let _guard = lock_blocking(&self.admin);
        let image = self.controller.image();
        let current = image.broker_configs.get(scope).cloned().unwrap_or_default();
        let records = config_changes(&current, overrides, |key, value| match value {
            Some(value) => MetadataRecord::BrokerConfig {
                scope: scope.to_string(),
                key: key.to_string(),
                value: value.to_string(),
            },
            None => MetadataRecord::BrokerConfigDelete {
                scope: scope.to_string(),
                key: key.to_string(),
            },
        });
        let image = self.controller.commit(&records)?;
        self.refresh_effective(&image);
        let effective = self.effective();
        for topic in image.topics.values() {
            self.replicas
                .update_config(&topic.name, &effective.log_config(&topic.configs));
        }
        Ok(())
    }

    /// Makes the hosted partitions match the image (the metadata publisher): opens the logs of
    /// partitions this broker holds a replica of, makes it leader or follower as the image
    /// says, and deletes the partitions it no longer holds. Applies only what changed since the
    /// last image applied (a partition whose state and topic are as they were, with the same broker
    /// configs, is not touched), so an ISR change costs one partition, not all of them.
    fn publish(&self, image: &Arc<MetadataImage>) -> Result<()> {
        let _one_at_a_time = lock_blocking(&self.publishing);
        let previous = lock_blocking(&self.published).clone();
        // an image older than the one applied (a commit's image applied after the follower
        // applied a newer one) would take partitions back to older states
        if previous.as_ref().is_some_and(|p| image.applied < p.applied) {
            return Ok(());
        }
        let node = self.config.node_id;
        let mut followers = false;
        // every log config is the topic's overrides over the (dynamic) broker defaults
        let defaults_changed = previous
            .as_ref()
            .is_none_or(|p| p.broker_configs != image.broker_configs);
        for topic in image.topics.values() {
            let unchanged_topic = !defaults_changed
                && previous
                    .as_ref()
                    .and_then(|p| p.topic_by_id(&topic.id))
                    .is_some_and(|t| t == topic);
            let mut config = None;
            for p in 0..topic.partitions {
                let state = image.partition(&topic.id, p, node);
                if unchanged_topic
                    && previous
                        .as_ref()
                        .is_some_and(|prev| prev.partition(&topic.id, p, node) == state)
                {
                    continue;
                }
                let Some(state) = state else {
                    continue;
                };
                if !state.replicas.contains(&node) {
                    if self.replicas.get(&topic.name, p).is_some() {
                        tracing::info!(topic = topic.name, partition = p, "no longer a replica");
                        self.unload_coordinator(&topic.name, p, topic.partitions);
                        self.replicas.delete_partition(&topic.name, p)?;
                    }
                    continue;
                }
                let config = config
                    .get_or_insert_with(|| self.effective().log_config(&topic.configs))
                    .clone();
                let internal = matches!(topic.name.as_str(), group::OFFSETS_TOPIC | txn::TXN_TOPIC);
                let was_leading = internal
                    && self
                        .replicas
                        .get(&topic.name, p)
                        .is_some_and(|r| r.is_leader());
                let transition = self
                    .replicas
                    .apply(&topic.name, p, topic.id, config, &state)
                    .with_context(|| format!("opening {}-{p}", topic.name))?;
                followers |= transition == replica_manager::Transition::Follower;
                // a leader of an internal partition that lost it stops coordinating its keys
                if was_leading && state.leader != node && self.quorum.is_some() {
                    self.unload_coordinator(&topic.name, p, topic.partitions);
                }
                // a new leader of an internal partition becomes the coordinator of its keys
                if transition == replica_manager::Transition::Leader && self.quorum.is_some() {
                    let loaded = match topic.name.as_str() {
                        group::OFFSETS_TOPIC => self.load_offsets_partition(p).map(|()| {
                            self.forget_offsets_of_deleted_topics(image, None);
                        }),
                        txn::TXN_TOPIC => self.load_txn_partition(p),
                        _ => Ok(()),
                    };
                    if let Err(e) = loaded {
                        tracing::error!(
                            topic = topic.name,
                            partition = p,
                            "loading coordinator state: {e:#}"
                        );
                    }
                }
            }
        }
        let topics_changed = previous.as_ref().is_none_or(|p| p.topics != image.topics);
        if topics_changed {
            for p in self.replicas.all() {
                let gone = match image.topic(&p.topic) {
                    Some(t) => t.id != p.topic_id || p.index >= t.partitions,
                    None => true,
                };
                if gone {
                    self.replicas.delete_partition(&p.topic, p.index)?;
                }
            }
        }
        if followers {
            self.followers_changed.notify_one();
        }
        let deleted: std::collections::HashSet<String> = previous
            .as_ref()
            .filter(|_| topics_changed)
            .map(|prev| {
                prev.topics
                    .values()
                    .filter(|t| image.topic_by_id(&t.id).is_none())
                    .map(|t| t.name.clone())
                    .collect()
            })
            .unwrap_or_default();
        if !deleted.is_empty() {
            self.forget_offsets_of_deleted_topics(image, Some(deleted));
        }
        *lock_blocking(&self.published) = Some(image.clone());
        Ok(())
    }

    /// Forgets the groups or transactional ids of an internal partition this broker no longer
    /// leads (a no-op for one it did not coordinate).
    fn unload_coordinator(&self, topic: &str, index: i32, partitions: i32) {
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

    /// Removes the groups' committed offsets of deleted topics (`deleted`, or every topic the
    /// image does not have: offsets just replayed from the log may name topics deleted while
    /// their coordinator was away) and queues their tombstones, as Kafka does.
    fn forget_offsets_of_deleted_topics(
        &self,
        image: &MetadataImage,
        deleted: Option<std::collections::HashSet<String>>,
    ) {
        let topics = deleted.unwrap_or_else(|| {
            self.groups
                .offset_topics()
                .into_iter()
                .filter(|t| image.topic(t).is_none())
                .collect()
        });
        if topics.is_empty() {
            return;
        }
        let removed = self.groups.remove_topic_offsets(&topics);
        if !removed.is_empty() {
            tracing::info!(
                topics = ?topics,
                groups = removed.len(),
                "removing the committed offsets of deleted topics"
            );
            self.offset_tombstones
                .lock()
                .expect("offset tombstones lock")
                .extend(removed);
        }
    }

    /// Writes the tombstones of deleted topics' offsets for the groups this broker still
    /// coordinates (a group that moved was loaded by its new coordinator, which removes them
    /// itself).
    async fn write_offset_tombstones(&self) {
        let pending = std::mem::take(
            &mut *self
                .offset_tombstones
                .lock()
                .expect("offset tombstones lock"),
        );
        for (group_id, keys) in pending {
            if self
                .coordinator(group::OFFSETS_TOPIC, &group_id)
                .is_some_and(|(id, _, _)| id != self.config.node_id)
            {
                continue;
            }
            let records = keys
                .iter()
                .map(|(t, p)| (group::offsets_log::key(&group_id, t, *p), None))
                .collect();
            if let Err(e) = self.append_group_records(&group_id, records).await {
                tracing::warn!(group = group_id, "writing offset tombstones failed: {e:#}");
            }
        }
    }

    /// Applies every new metadata image to this broker.
    pub async fn follow_metadata(self: Arc<Self>) {
        let mut images = self.controller.subscribe();
        loop {
            // the image current at subscription may be newer than the one `open` applied
            let image = images.borrow_and_update().clone();
            self.refresh_effective(&image);
            if let Err(e) = self.publish(&image) {
                tracing::error!("applying metadata failed: {e:#}");
            }
            if images.changed().await.is_err() {
                return;
            }
        }
    }

    /// Creates a topic (the caller validated name, partitions and configs).
    pub fn create_topic(
        &self,
        name: &str,
        partitions: i32,
        configs: &config::Properties,
        replicas: &[Vec<i32>],
    ) -> Result<Uuid> {
        let _guard = lock_blocking(&self.admin);
        if let Some(existing) = self.controller.image().topic(name) {
            return Ok(existing.id);
        }
        // like Kafka's ids, never one whose base64 form starts with a dash
        let id = loop {
            let id = Uuid::new_v4();
            if !ferrolog_storage::log::uuid_to_kafka_string(id.as_bytes()).starts_with('-') {
                break id;
            }
        };
        let mut records = vec![
            MetadataRecord::Topic {
                name: name.to_string(),
                id,
            },
            MetadataRecord::Partitions {
                id,
                count: partitions,
            },
        ];
        for (key, value) in configs {
            records.push(MetadataRecord::Config {
                id,
                key: key.clone(),
                value: value.clone(),
            });
        }
        records.extend(partition_records(id, 0, replicas));
        let image = self.controller.commit(&records)?;
        self.publish(&image)?;
        self.replicas.checkpoint()?;
        // another node may have created it first: its id is the one
        Ok(image.topic(name).map_or(id, |t| t.id))
    }

    pub fn delete_topic(&self, id: Uuid) -> Result<()> {
        let _guard = lock_blocking(&self.admin);
        if self.controller.image().topic_by_id(&id).is_none() {
            return Ok(());
        }
        let image = self
            .controller
            .commit(&[MetadataRecord::RemoveTopic { id }])?;
        // removes the partitions and the groups' offsets of the topic before answering
        self.publish(&image)?;
        self.replicas.checkpoint()?;
        Ok(())
    }

    /// Replaces a topic's config overrides (validated by the caller) and applies them to its
    /// logs at once: retention acts on the next check, `segment.bytes` on the next roll.
    pub fn set_topic_configs(&self, id: Uuid, overrides: &config::Properties) -> Result<()> {
        let _guard = lock_blocking(&self.admin);
        let image = self.controller.image();
        let Some(topic) = image.topic_by_id(&id) else {
            return Ok(());
        };
        let records = config_changes(&topic.configs, overrides, |key, value| match value {
            Some(value) => MetadataRecord::Config {
                id,
                key: key.to_string(),
                value: value.to_string(),
            },
            None => MetadataRecord::ConfigDelete {
                id,
                key: key.to_string(),
            },
        });
        let image = self.controller.commit(&records)?;
        if let Some(topic) = image.topic_by_id(&id) {
            self.replicas
                .update_config(&topic.name, &self.effective().log_config(&topic.configs));
        }
        Ok(())
    }

    /// Removes segment files renamed to `.deleted` once `file.delete.delay.ms` has passed.
    pub fn schedule_deletion(
        &self,
        segments: Vec<ferrolog_storage::segment::DeletedSegment>,
        delay_ms: i64,
    ) {
        if segments.is_empty() {
            return;
        }
        let delay = std::time::Duration::from_millis(delay_ms.clamp(0, 86_400_000) as u64);
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            for segment in segments {
                if let Err(e) = segment.remove() {
                    tracing::warn!(
                        base = segment.base_offset,
                        "removing a deleted segment failed: {e}"
                    );
                }
            }
        });
    }

    /// One pass of time and size retention over every partition.
    pub fn enforce_retention(&self) {
        let now = now_ms();
        let mut any = false;
        for p in self.replicas.all().into_iter().filter(|p| !p.is_offline()) {
            match p.with_log(|l| {
                l.enforce_retention(now)
                    .map(|d| (d, l.config().file_delete_delay_ms, l.log_start_offset()))
            }) {
                Ok((deleted, delay, start)) => {
                    if !deleted.is_empty() {
                        tracing::info!(
                            topic = p.topic,
                            partition = p.index,
                            segments = deleted.len(),
                            log_start_offset = start,
                            "deleted segments past retention"
                        );
                        any = true;
                    }
                    self.schedule_deletion(deleted, delay);
                }
                Err(e) => tracing::error!(
                    topic = p.topic,
                    partition = p.index,
                    "retention failed: {e}"
                ),
            }
        }
        if any {
            if let Err(e) = self.replicas.checkpoint() {
                tracing::error!("writing checkpoints failed: {e}");
            }
        }
    }

    /// The log cleaner: compacts logs whose cleanup policy includes `compact`, one pass per log
    /// when due, checkpointing where each log's dirty section starts. Runs on a blocking thread.
    pub fn run_cleaner(self: Arc<Self>) {
        let manager = self.replicas.log_manager();
        let mut first_dirty = manager.read_cleaner_checkpoint();
        loop {
            // dynamic broker configs may change these between passes
            let effective = self.effective();
            let setting = |key: &str, fallback: u64| {
                effective
                    .properties
                    .get(key)
                    .and_then(|v| v.parse::<u64>().ok())
                    .unwrap_or(fallback)
            };
            let backoff = setting("log.cleaner.backoff.ms", self.config.cleaner_backoff_ms).max(1);
            let buffer = setting(
                "log.cleaner.dedupe.buffer.size",
                self.config.cleaner_dedupe_buffer_bytes as u64,
            )
            .clamp(1024, 1 << 34) as usize;
            std::thread::sleep(std::time::Duration::from_millis(backoff));
            let mut changed = false;
            for p in self.replicas.all() {
                if self.shutting_down.load(std::sync::atomic::Ordering::SeqCst) {
                    return;
                }
                if p.is_offline() || !p.with_log(|l| l.config().compact_policy) {
                    continue;
                }
                let key = (p.topic.clone(), p.index);
                let start = first_dirty.get(&key).copied().unwrap_or(0);
                match p.with_log(|l| l.clean(start, buffer, now_ms())) {
                    Ok((end, stats)) => {
                        if stats.segments > 0 {
                            tracing::info!(
                                topic = p.topic,
                                partition = p.index,
                                segments = stats.segments,
                                bytes_read = stats.bytes_read,
                                bytes_written = stats.bytes_written,
                                records_removed = stats.records_removed,
                                "cleaned"
                            );
                        }
                        if end != start {
                            first_dirty.insert(key, end);
                            changed = true;
                        }
                    }
                    Err(e) => tracing::error!(
                        topic = p.topic,
                        partition = p.index,
                        "cleaning failed: {e}"
                    ),
                }
            }
            if changed {
                first_dirty
                    .retain(|(topic, partition), _| self.replicas.get(topic, *partition).is_some());
                if let Err(e) = manager.write_cleaner_checkpoint(&first_dirty) {
                    tracing::error!("writing the cleaner checkpoint failed: {e}");
                }
            }
        }
    }

    /// Grows a topic to `count` partitions, the new ones placed on `assignment` (one replica
    /// list per new partition, checked by the caller) or by rack-aware placement.
    pub fn create_partitions(
        &self,
        id: Uuid,
        count: i32,
        assignment: Option<Vec<Vec<i32>>>,
    ) -> Result<()> {
        let _guard = lock_blocking(&self.admin);
        let image = self.controller.image();
        let current = image.topic_by_id(&id).map_or(0, |t| t.partitions);
        let rf = image
            .partitions
            .get(&(id, 0))
            .map_or(1, |s| s.replicas.len() as i16);
        let mut records = vec![MetadataRecord::Partitions { id, count }];
        if count > current {
            let placed = match assignment {
                // a single node keeps no partition states: each is its own
                Some(_) if image.brokers.is_empty() => Vec::new(),
                Some(given) => given,
                None => {
                    let replicas = self
                        .place_replicas(&image, count, rf)
                        .map_err(|m| anyhow::anyhow!(m))?;
                    // empty on a single node
                    replicas
                        .get(current as usize..)
                        .unwrap_or_default()
                        .to_vec()
                }
            };
            records.extend(partition_records(id, current, &placed));
        }
        let image = self.controller.commit(&records)?;
        self.publish(&image)
    }

    /// Places `rf` replicas of each of `partitions` partitions on the live brokers, rack-aware
    /// round robin from a random start; empty on a single node (it holds
    /// everything).
    pub fn place_replicas(
        &self,
        image: &MetadataImage,
        partitions: i32,
        rf: i16,
    ) -> std::result::Result<Vec<Vec<i32>>, String> {
        let live: Vec<(i32, Option<&str>)> = image
            .live_brokers()
            .into_iter()
            .filter(|b| !b.shutting_down)
            .map(|b| (b.id, b.rack.as_deref()))
            .collect();
        let n = if image.brokers.is_empty() {
            1
        } else {
            live.len()
        };
        if rf as usize > n || rf < 1 {
            return Err(format!("Unable to replicate the partition {rf} time(s): The target replication factor of {rf} cannot be reached because only {n} broker(s) are registered."));
        }
        if image.brokers.is_empty() {
            return Ok(Vec::new());
        }
        let start = (uuid::Uuid::new_v4().as_u128() % n as u128) as usize;
        Ok(quorum::duties::place(
            &live,
            partitions as usize,
            rf as usize,
            start,
        ))
    }

    /// The controller id clients are told (DescribeCluster): the active controller if it is
    /// also a live broker, else a live broker, this one first (clients cannot reach a dedicated
    /// controller, and brokers forward what they send; Kafka answers a live broker too).
    pub fn active_controller(&self) -> i32 {
        let Some(q) = &self.quorum else {
            return self.config.node_id;
        };
        let image = self.controller.image();
        match q.leader() {
            None => -1,
            Some(l) if image.brokers.get(&(l as i32)).is_some_and(|b| !b.fenced) => l as i32,
            Some(_) => self.serving_broker(&image),
        }
    }

    /// A broker clients can use, for the controller id they are told: this one when it is
    /// listed (a single node, or registered and unfenced), else another live broker, else -1.
    pub fn serving_broker(&self, image: &MetadataImage) -> i32 {
        let node = self.config.node_id;
        if image.brokers.is_empty() || image.brokers.get(&node).is_some_and(|b| !b.fenced) {
            node
        } else {
            image.live_brokers().first().map_or(-1, |b| b.id)
        }
    }

    /// Background work: `flush.ms` flushing, retention and the periodic offset checkpoints.
    pub async fn run_background(self: Arc<Self>) {
        let flush_every = self.config.flush_scheduler_interval_ms.clamp(10, 3_600_000) as u64;
        let checkpoint_every = self.config.flush_offset_checkpoint_interval_ms;
        let mut flush = tokio::time::interval(std::time::Duration::from_millis(flush_every));
        let mut checkpoint =
            tokio::time::interval(std::time::Duration::from_millis(checkpoint_every));
        let mut retention = tokio::time::interval(std::time::Duration::from_millis(
            self.config.retention_check_interval_ms,
        ));
        let mut groups = tokio::time::interval(std::time::Duration::from_millis(100));
        let mut offsets_expiry = tokio::time::interval(std::time::Duration::from_millis(
            self.config
                .long("offsets.retention.check.interval.ms")
                .max(1) as u64,
        ));
        let mut transactions = tokio::time::interval(std::time::Duration::from_millis(
            self.config
                .long("transaction.abort.timed.out.transaction.cleanup.interval.ms")
                .max(1) as u64,
        ));
        let mut producers = tokio::time::interval(std::time::Duration::from_millis(
            self.config
                .long("producer.id.expiration.check.interval.ms")
                .max(1) as u64,
        ));
        loop {
            tokio::select! {
                _ = producers.tick() => {
                    // a dynamic broker config
                    let expiration = self.effective().long("producer.id.expiration.ms");
                    for p in self.replicas.all() {
                        p.with_log(|log| log.expire_producers(now_ms(), expiration));
                    }
                }
                // off this loop (ending a transaction may wait for other brokers), one pass
                // at a time
                _ = transactions.tick() => {
                    if !self.expiring_transactions.swap(true, std::sync::atomic::Ordering::SeqCst) {
                        let broker = self.clone();
                        tokio::spawn(async move {
                            broker.expire_transactions().await;
                            broker
                                .expiring_transactions
                                .store(false, std::sync::atomic::Ordering::SeqCst);
                        });
                    }
                }
                _ = groups.tick() => {
                    // a single node has no heartbeat loop to do it
                    if self.quorum.is_none() {
                        self.replicas.take_failed_dirs_offline();
                    }
                    self.groups.tick();
                    self.persist_groups().await;
                    self.write_offset_tombstones().await;
                }
                _ = offsets_expiry.tick() => self.expire_offsets().await,
                _ = retention.tick() => self.enforce_retention(),
                _ = flush.tick() => self.replicas.flush_by_time(now_ms()),
                _ = checkpoint.tick() => {
                    if let Err(e) = self.replicas.checkpoint() {
                        tracing::error!("writing checkpoints failed: {e}");
                    }
                }
            }
        }
    }

    pub fn shutdown(&self) -> Result<()> {
        self.shutting_down
            .store(true, std::sync::atomic::Ordering::SeqCst);
        self.replicas.shutdown()?;
        self.controller.close()
    }
}

/// The key sizing an internal topic's replication factor.
fn replication_key(topic: &str) -> &'static str {
    if topic == txn::TXN_TOPIC {
        "transaction.state.log.replication.factor"
    } else {
        "offsets.topic.replication.factor"
    }
}

/// Initial partition states for partitions `first..` with the given replicas: the first
/// replica leads, all are in sync.
/// The records that turn the config overrides `current` into `wanted`: `record(key, None)` for
/// each key to delete, `record(key, Some(value))` for each key to set.
fn config_changes(
    current: &config::Properties,
    wanted: &config::Properties,
    record: impl Fn(&str, Option<&str>) -> MetadataRecord,
) -> Vec<MetadataRecord> {
    let deleted = current
        .keys()
        .filter(|k| !wanted.contains_key(*k))
        .map(|k| record(k, None));
    let set = wanted
        .iter()
        .filter(|(k, v)| current.get(*k) != Some(*v))
        .map(|(k, v)| record(k, Some(v)));
    deleted.chain(set).collect()
}

fn partition_records(id: Uuid, first: i32, replicas: &[Vec<i32>]) -> Vec<MetadataRecord> {
    replicas
        .iter()
        .enumerate()
        .map(|(i, r)| MetadataRecord::Partition {
            topic: id,
            index: first + i as i32,
            state: metadata::PartitionState {
                replicas: r.clone(),
                isr: r.clone(),
                leader: r[0],
                leader_epoch: 0,
                partition_epoch: 0,
                adding: Vec::new(),
                removing: Vec::new(),
            },
            expect_epoch: None,
        })
        .collect()
}
