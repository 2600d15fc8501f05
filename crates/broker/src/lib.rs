//! ferrolog broker. This file is the wiring: `Broker` opens the log directories, the metadata
//! log and every hosted partition, applies each new metadata image to the partitions
//! (`publish`), and runs the background work (retention, flush, checkpoints, the cleaner, the
//! coordinators' timers). The services it holds live in their own modules: `replica_manager` and
//! `partition` (the data path), `admin` (topics and configs), `coordinator`, `group` and `txn`
//! (the coordinators), `metadata` and `quorum` (the metadata log), `server` and `handlers` (the
//! protocol). docs/ARCHITECTURE.md draws the map.

pub mod admin;
pub mod clock;
pub mod config;
pub mod connections;
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
pub mod quota;
pub mod replica_manager;
pub mod replication;
pub mod request_memory;
pub mod response;
pub mod security;
pub mod server;
pub mod session;
pub mod sys;
pub mod throttle;
pub mod txn;

use std::sync::{Arc, Mutex};

use anyhow::{Context, Result};

use config::BrokerConfig;
use log_manager::LogManager;
use metadata::{Controller, MetadataImage};
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
    /// The broker listeners' security, shared with their accept loops: a new key store set by
    /// AlterConfigs is swapped in here for new connections.
    pub listeners: Vec<Arc<session::ListenerSecurity>>,
    /// The ACL authorizer (`authorizer.class.name`); `None` lets everyone do everything.
    pub authorizer: Option<security::acl::Authorizer>,
    /// Connections counted against `max.connections`, `max.connections.per.ip`, … (the
    /// limits follow the dynamic broker configs).
    pub connections: Arc<connections::ConnectionLimits>,
    /// The memory of large requests being read and handled (`queued.max.request.bytes`).
    pub request_memory: request_memory::RequestMemory,
    /// Client quotas (from the metadata image) and the rates of the clients they apply to.
    pub quotas: quota::ClientQuotas,
}

impl Broker {
    /// Opens the log directory, replays the metadata log and opens every partition's log.
    pub fn open(config: BrokerConfig) -> Result<Arc<Broker>> {
        quorum::set_security(config.controller_security.clone());
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
            authorizer: security::acl::Authorizer::from_properties(&config.properties)?,
            connections: connections::ConnectionLimits::new(config.connection_limits()?),
            quotas: quota::ClientQuotas::new(config.quota_sampling()),
            request_memory: request_memory::RequestMemory::new(
                config.queued_max_request_bytes,
                config.socket_request_max_bytes,
            ),
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
            listeners: config
                .broker_listeners
                .iter()
                .map(|l| Arc::new(session::ListenerSecurity::new(&config, l)))
                .collect(),
            replicas: ReplicaManager::new(config.node_id, log_manager),
            fetch_sessions: fetch_session::FetchSessions::new(config.fetch_session_cache_slots),
            admin: Mutex::new(()),
            shutting_down: Default::default(),
            effective: std::sync::RwLock::new(Arc::new(config.clone())),
            txns: txn::TxnCoordinator::default(),
            groups: group::GroupCoordinator::new(group::GroupConfig {
                min_session_timeout_ms: config.settings.group_min_session_timeout_ms,
                max_session_timeout_ms: config.settings.group_max_session_timeout_ms,
                initial_rebalance_delay: std::time::Duration::from_millis(
                    config.settings.group_initial_rebalance_delay_ms.max(0) as u64,
                ),
                max_metadata_bytes: config.settings.offset_metadata_max_bytes.max(0) as usize,
                consumer_session_timeout: std::time::Duration::from_millis(
                    config.settings.group_consumer_session_timeout_ms.max(1) as u64,
                ),
                consumer_heartbeat_interval_ms: config
                    .settings
                    .group_consumer_heartbeat_interval_ms
                    .max(1),
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

    /// Whether the controller quorum was formed dynamically (KIP-853, through
    /// `controller.quorum.bootstrap.servers`): kraft.version 1.
    pub fn dynamic_quorum(&self) -> bool {
        self.config.controller_voters.is_none()
            && self
                .config
                .explicit
                .contains_key("controller.quorum.bootstrap.servers")
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
        self.quotas.set(&image.client_quotas);
        let node = self.config.node_id.to_string();
        let effective = self.config.with_dynamic(
            image.broker_configs.get(""),
            image.broker_configs.get(&node),
        );
        for l in &self.listeners {
            l.reload_tls(&effective);
        }
        // every dynamic value was validated when it was set
        match effective.connection_limits() {
            Ok(limits) => self.connections.set(limits),
            Err(e) => tracing::error!("connection limits not changed: {e:#}"),
        }
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
        if previous.is_none() {
            // the first image (start-up): open and recover every log this node holds in parallel
            let effective = self.effective();
            let wanted = image
                .topics
                .values()
                .flat_map(|topic| {
                    let config = effective.log_config(&topic.configs);
                    (0..topic.partitions)
                        .filter(|p| {
                            image
                                .partition(&topic.id, *p, node)
                                .is_some_and(|s| s.replicas.contains(&node))
                        })
                        .map(move |p| (topic.name.clone(), p, topic.id, config.clone()))
                })
                .collect();
            let threads = self.config.recovery_threads_per_dir * self.config.log_dirs.len();
            self.replicas.preload(wanted, threads);
        }
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
                .settings
                .offsets_retention_check_interval_ms
                .max(1) as u64,
        ));
        let mut transactions = tokio::time::interval(std::time::Duration::from_millis(
            self.config
                .settings
                .transaction_abort_timed_out_transaction_cleanup_interval_ms
                .max(1) as u64,
        ));
        let mut producers = tokio::time::interval(std::time::Duration::from_millis(
            self.config
                .settings
                .producer_id_expiration_check_interval_ms
                .max(1) as u64,
        ));
        loop {
            tokio::select! {
                _ = producers.tick() => {
                    // a dynamic broker config
                    let expiration = i64::from(self.effective().settings.producer_id_expiration_ms);
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
