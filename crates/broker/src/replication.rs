//! Replication the Kafka way, broker side: one fetcher per leader this broker follows
//! partitions of (Fetch with this broker's replica id, many partitions per request), log
//! reconciliation through OffsetForLeaderEpoch before fetching, ISR shrink and expand proposed
//! to the controller, registration and heartbeats, and the controlled shutdown.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use anyhow::{bail, Result};
use ferrolog_client::Connection;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic, ForgottenTopic};
use kafka_protocol::messages::offset_for_leader_epoch_request::{
    OffsetForLeaderPartition, OffsetForLeaderTopic,
};
use kafka_protocol::messages::{BrokerId, FetchRequest, OffsetForLeaderEpochRequest, TopicName};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use crate::metadata::{BrokerImage, MetadataRecord, PartitionState};
use crate::quorum::{Heartbeat, Proposal};
use crate::replica_manager::{Leadership, Offsets, Partition};
use crate::{now_ms, Broker};

/// Per partition of an admin change: topic, partition, error code, message.
pub type PartitionOutcome = (String, i32, i16, Option<String>);

/// Why a partition change is refused: the error and its message.
type Refusal = (ResponseError, &'static str);

/// A follower's side of its KIP-227 fetch session with one leader, as Kafka's followers keep
/// one: after a full fetch opens it, each fetch lists only the partitions whose fetch state
/// changed (and those to forget), and the leader answers only for partitions with news, so a
/// round over many quiet partitions costs a few of them, not all.
#[derive(Debug, Default)]
struct FetcherSession {
    /// 0: no session yet (the next fetch is a full one that asks for one).
    id: i32,
    /// The epoch of the next incremental fetch.
    epoch: i32,
    /// Per partition in the session, by topic id: the (fetch offset, log start, leader epoch)
    /// last sent, and the topic's name (to forget it by).
    sent: HashMap<(uuid::Uuid, i32), (FetchState, String)>,
}

/// What a follower's fetch says of a partition: (fetch offset, log start, leader epoch).
type FetchState = (i64, i64, i32);

impl FetcherSession {
    fn reset(&mut self) {
        *self = FetcherSession::default();
    }
}

fn name(s: &str) -> TopicName {
    TopicName(StrBytes::from_string(s.to_string()))
}

impl Broker {
    /// Cluster duties of a broker: register with the controller, then heartbeat, check the
    /// ISR of the partitions it leads and keep one fetcher per leader it follows.
    pub async fn run_cluster(self: Arc<Self>) {
        let Some(quorum) = self.quorum.clone() else {
            return;
        };
        if quorum.is_controller() {
            quorum.spawn(quorum.clone().serve_duties(&self.config));
        }
        tokio::spawn(self.clone().run_fetchers());
        let me = BrokerImage {
            id: self.config.node_id,
            host: self.config.advertised.host.clone(),
            port: i32::from(self.config.advertised.port),
            listeners: self
                .config
                .broker_listeners
                .iter()
                .map(|l| crate::metadata::ListenerEndpoint {
                    name: l.bind.name.clone(),
                    host: l.advertised.host.clone(),
                    port: i32::from(l.advertised.port),
                })
                .collect(),
            rack: self.config.rack.clone(),
            epoch: self.broker_epoch,
            // unfenced by the controller once this broker has caught up with the metadata
            fenced: true,
            shutting_down: false,
            registered_at: 0,
        };
        loop {
            // a heartbeat first: the active controller must not take a restarted broker's
            // stale last-seen time for a missed session and fence it right after registration
            let beat = Heartbeat {
                broker: me.id,
                epoch: me.epoch,
                shutting_down: false,
                applied: self.controller.image().applied,
                offline: self.replicas.take_failed_dirs_offline(),
            };
            let _ = quorum.heartbeat(beat).await;
            let proposal = Proposal {
                records: vec![MetadataRecord::RegisterBroker { broker: me.clone() }],
            };
            match quorum.propose(proposal).await {
                Ok(_) => break,
                Err(e) => {
                    tracing::warn!("registering with the controller: {e:#}");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            }
        }
        tracing::info!(
            broker = me.id,
            epoch = me.epoch,
            "registered with the controller"
        );
        // Heartbeats run on the controller runtime, on their own: neither a loaded broker
        // runtime nor a slow ISR proposal delays them (a late heartbeat fences a live broker).
        quorum.spawn(self.clone().heartbeats(me.id, me.epoch));
        let lag_max = self.config.settings.replica_lag_time_max_ms;
        let mut isr_check =
            tokio::time::interval(Duration::from_millis((lag_max / 2).clamp(50, 5000) as u64));
        loop {
            isr_check.tick().await;
            // proposed side by side: one partition's proposal (waiting out a controller
            // failover) does not hold up the others'
            let mut proposals = tokio::task::JoinSet::new();
            for p in self.replicas.all() {
                if let Some((isr, epoch)) = p.shrink_isr(now_ms(), lag_max) {
                    tracing::info!(
                        topic = p.topic,
                        partition = p.index,
                        ?isr,
                        "shrinking the ISR"
                    );
                    let broker = self.clone();
                    proposals.spawn(async move { broker.propose_isr(&p, isr, epoch).await });
                }
            }
            while proposals.join_next().await.is_some() {}
        }
    }

    /// Heartbeats to the active controller every `broker.heartbeat.interval.ms`, or every
    /// 200 ms while fenced (catching up to be unfenced, as Kafka's brokers do).
    async fn heartbeats(self: Arc<Self>, id: i32, epoch: i64) {
        let Some(quorum) = self.quorum.clone() else {
            return;
        };
        let every = Duration::from_millis(
            self.config
                .settings
                .broker_heartbeat_interval_ms
                .clamp(10, 60_000) as u64,
        );
        let mut failing = crate::log_rate::Repeating::new("heartbeat to the active controller");
        loop {
            let image = self.controller.image();
            let beat = Heartbeat {
                broker: id,
                epoch,
                shutting_down: self.controlled_shutdown.load(Ordering::SeqCst),
                applied: image.applied,
                offline: self.replicas.take_failed_dirs_offline(),
            };
            match quorum.heartbeat(beat).await {
                Ok(()) => failing.succeeded(),
                Err(e) => failing.failed(&format!("{e:#}")),
            }
            let fenced = image
                .brokers
                .get(&id)
                .is_none_or(|b| b.epoch != epoch || b.fenced);
            let wait = if fenced {
                every.min(Duration::from_millis(200))
            } else {
                every
            };
            tokio::time::sleep(wait).await;
        }
    }

    /// Returns once the metadata shows this run of the broker registered and unfenced (at once
    /// on a single node).
    pub async fn wait_unfenced(&self) {
        if self.quorum.is_none() {
            return;
        }
        let (node, epoch) = (self.config.node_id, self.broker_epoch);
        let mut images = self.controller.subscribe();
        let unfenced = |i: &Arc<crate::metadata::MetadataImage>| {
            i.brokers
                .get(&node)
                .is_some_and(|b| b.epoch == epoch && !b.fenced)
        };
        if images.wait_for(unfenced).await.is_ok() {
            tracing::info!("unfenced by the controller: serving clients");
        }
    }

    /// Proposes a new ISR for a partition this broker leads, against `epoch`.
    pub async fn propose_isr(&self, p: &Partition, isr: Vec<i32>, epoch: i32) {
        let Some(quorum) = &self.quorum else {
            return;
        };
        let image = self.controller.image();
        let Some(mut state) = image.partitions.get(&(p.topic_id, p.index)).cloned() else {
            p.isr_change_failed();
            return;
        };
        if state.partition_epoch != epoch || state.leader != self.config.node_id {
            p.isr_change_failed();
            return;
        }
        state.isr = isr;
        state.partition_epoch += 1;
        let record = MetadataRecord::Partition {
            topic: p.topic_id,
            index: p.index,
            state,
            expect_epoch: Some(epoch),
        };
        match quorum
            .propose(Proposal {
                records: vec![record],
            })
            .await
        {
            Ok((_, accepted)) if accepted.first() == Some(&true) => {}
            Ok(_) => p.isr_change_failed(),
            Err(e) => {
                tracing::warn!(topic = p.topic, partition = p.index, "ISR change: {e:#}");
                p.isr_change_failed();
            }
        }
    }

    /// A controlled shutdown: asks the controller to move leadership off this broker and waits
    /// (up to `timeout`) until it leads nothing another in-sync replica could lead.
    pub async fn controlled_shutdown(&self, timeout: Duration) {
        let Some(quorum) = &self.quorum else {
            return;
        };
        self.controlled_shutdown.store(true, Ordering::SeqCst);
        let deadline = Instant::now() + timeout;
        let node = self.config.node_id;
        while Instant::now() < deadline {
            let _ = quorum
                .heartbeat(Heartbeat {
                    broker: node,
                    epoch: self.broker_epoch,
                    shutting_down: true,
                    applied: self.controller.image().applied,
                    offline: self.replicas.take_failed_dirs_offline(),
                })
                .await;
            let image = self.controller.image();
            let leads_movable = image
                .partitions
                .values()
                .any(|s| s.leader == node && s.isr.iter().any(|r| *r != node));
            if !leads_movable {
                tracing::info!("controlled shutdown: leadership moved");
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        tracing::warn!("controlled shutdown: timed out moving leadership");
    }

    /// Keeps one fetcher task per leader this broker follows partitions of.
    async fn run_fetchers(self: Arc<Self>) {
        let mut tasks: HashMap<i32, tokio::task::JoinHandle<()>> = HashMap::new();
        loop {
            tokio::select! {
                _ = self.followers_changed.notified() => {}
                _ = tokio::time::sleep(Duration::from_millis(500)) => {}
            }
            if self.shutting_down.load(Ordering::SeqCst) {
                return;
            }
            let leaders: HashSet<i32> = self
                .replicas
                .all()
                .iter()
                .map(|p| p.leadership())
                .filter(|s| !s.leading && s.leader >= 0)
                .map(|s| s.leader)
                .collect();
            tasks.retain(|_, t| !t.is_finished());
            for leader in leaders {
                tasks
                    .entry(leader)
                    .or_insert_with(|| tokio::spawn(self.clone().fetch_from(leader)));
            }
        }
    }

    /// The partitions this broker follows `leader` for, with their leadership as of now.
    fn following(&self, leader: i32) -> Vec<(Arc<Partition>, Leadership)> {
        self.replicas
            .all()
            .into_iter()
            .filter(|p| !p.is_offline())
            .map(|p| {
                let s = p.leadership();
                (p, s)
            })
            .filter(|(_, s)| !s.leading && s.leader == leader)
            .collect()
    }

    /// One leader's fetcher: reconciles, then fetches, until this broker follows nothing of it.
    async fn fetch_from(self: Arc<Self>, leader: i32) {
        let mut conn: Option<Connection> = None;
        let mut session = FetcherSession::default();
        let mut idle_since: Option<Instant> = None;
        loop {
            if self.shutting_down.load(Ordering::SeqCst) {
                return;
            }
            let partitions = self.following(leader);
            if partitions.is_empty() {
                // linger a moment: a leader change may bring partitions right back
                let since = *idle_since.get_or_insert_with(Instant::now);
                if since.elapsed() > Duration::from_secs(2) {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
            idle_since = None;
            if conn.is_none() {
                let image = self.controller.image();
                let Some(b) = image.brokers.get(&leader) else {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    continue;
                };
                let addr = format!("{}:{}", b.host, b.port);
                match Connection::connect_with(&addr, &self.config.inter_broker).await {
                    Ok(c) => {
                        conn = Some(c);
                        session.reset();
                    }
                    Err(e) => {
                        tracing::debug!(leader, "replica fetcher cannot connect: {e:#}");
                        tokio::time::sleep(Duration::from_millis(200)).await;
                        continue;
                    }
                }
            }
            let c = conn.as_mut().expect("connected");
            let result = async {
                let (stale, ready): (Vec<_>, Vec<_>) = partitions
                    .into_iter()
                    .partition(|(_, s)| s.needs_truncation);
                if !stale.is_empty() {
                    let stale: Vec<_> = stale.into_iter().map(|(p, _)| p).collect();
                    self.reconcile(c, &stale).await?;
                }
                if ready.is_empty() {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    return Ok(());
                }
                self.fetch_once(c, &ready, &mut session).await
            }
            .await;
            if let Err(e) = result {
                tracing::debug!(leader, "replica fetcher: {e:#}");
                conn = None;
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }

    /// Truncates each follower log to where it agrees with the leader's (OffsetForLeaderEpoch).
    async fn reconcile(&self, c: &mut Connection, partitions: &[Arc<Partition>]) -> Result<()> {
        let mut topics: Vec<OffsetForLeaderTopic> = Vec::new();
        let mut asked = HashMap::new();
        for p in partitions {
            let st = p.leadership();
            let latest = p.latest_epoch();
            asked.insert((p.topic.clone(), p.index), (st.leader_epoch, latest));
            let entry = OffsetForLeaderPartition::default()
                .with_partition(p.index)
                .with_current_leader_epoch(st.leader_epoch)
                .with_leader_epoch(latest.unwrap_or(-1));
            match topics.iter_mut().find(|t| *t.topic.0 == *p.topic) {
                Some(t) => t.partitions.push(entry),
                None => topics.push(
                    OffsetForLeaderTopic::default()
                        .with_topic(name(&p.topic))
                        .with_partitions(vec![entry]),
                ),
            }
        }
        let request = OffsetForLeaderEpochRequest::default()
            .with_replica_id(BrokerId(self.config.node_id))
            .with_topics(topics);
        let response = c.send_version(&request, 4).await?;
        for t in response.topics {
            for r in t.partitions {
                let Some(p) = self.replicas.get(&t.topic.0, r.partition) else {
                    continue;
                };
                let Some(&(epoch, latest)) = asked.get(&(t.topic.0.to_string(), r.partition))
                else {
                    continue;
                };
                if r.error_code != 0 {
                    tracing::debug!(
                        topic = p.topic,
                        partition = p.index,
                        "OffsetForLeaderEpoch: {}",
                        ferrolog_client::error_name(r.error_code)
                    );
                    continue;
                }
                let target = p.divergence_point(latest, r.leader_epoch, r.end_offset);
                p.truncate_for(epoch, target)?;
            }
        }
        Ok(())
    }

    /// The partitions among `partitions` whose replica here is follower-throttled
    /// (`follower.replication.throttled.replicas`) and not in the ISR.
    fn follower_throttled(
        &self,
        partitions: &[(Arc<Partition>, Leadership)],
    ) -> HashSet<(uuid::Uuid, i32)> {
        let image = self.controller.image();
        let node = self.config.node_id;
        partitions
            .iter()
            .map(|(p, _)| p)
            .filter(|p| {
                image.topic(&p.topic).is_some_and(|t| {
                    crate::throttle::lists(
                        t.configs
                            .get(crate::throttle::FOLLOWER_REPLICAS)
                            .map(String::as_str),
                        p.index,
                        node,
                    )
                }) && image
                    .partitions
                    .get(&(p.topic_id, p.index))
                    .is_some_and(|s| !s.isr.contains(&node))
            })
            .map(|p| (p.topic_id, p.index))
            .collect()
    }

    /// One fetch from the leader for the partitions ready to fetch: incremental within
    /// `session` (a sessionless full fetch while replication throttles apply to any of them).
    async fn fetch_once(
        &self,
        c: &mut Connection,
        partitions: &[(Arc<Partition>, Leadership)],
        session: &mut FetcherSession,
    ) -> Result<()> {
        let max_bytes = self.config.settings.replica_fetch_max_bytes.max(1024);
        let mut topics: Vec<FetchTopic> = Vec::new();
        let rate = self
            .effective()
            .settings
            .follower_replication_throttled_rate;
        let throttled = if rate == i64::MAX {
            HashSet::new()
        } else {
            self.follower_throttled(partitions)
        };
        let held_back = self.follower_quota.exceeded(rate);
        // a throttled partition left out of a fetch must not stay in a session (the leader
        // would go on reading it): throttling fetches without one
        let use_session = throttled.is_empty();
        if !use_session {
            session.reset();
        }
        // per partition fetched: (fetch offset, log start, leader epoch)
        let mut wanted = HashMap::with_capacity(partitions.len());
        // partitions that join the session with this fetch, with their topic names
        let mut joining = Vec::new();
        for (p, st) in partitions {
            let key = (p.topic_id, p.index);
            if held_back && throttled.contains(&key) {
                continue;
            }
            let Offsets {
                log_end: end,
                log_start: start,
                ..
            } = p.offsets();
            let state = (end, start, st.leader_epoch);
            wanted.insert(key, state);
            match session.sent.get(&key) {
                Some((sent, _)) if session.id != 0 && *sent == state => continue,
                Some(_) => {}
                None => joining.push((key, p.topic.clone())),
            }
            let entry = FetchPartition::default()
                .with_partition(p.index)
                .with_current_leader_epoch(st.leader_epoch)
                .with_fetch_offset(end)
                .with_log_start_offset(start)
                .with_partition_max_bytes(max_bytes);
            match topics.iter_mut().find(|t| *t.topic.0 == *p.topic) {
                Some(t) => t.partitions.push(entry),
                None => topics.push(
                    FetchTopic::default()
                        .with_topic(name(&p.topic))
                        .with_partitions(vec![entry]),
                ),
            }
        }
        let mut forgotten: Vec<ForgottenTopic> = Vec::new();
        if session.id != 0 {
            let gone = session
                .sent
                .iter()
                .filter(|(k, _)| !wanted.contains_key(*k));
            for ((_, index), (_, topic)) in gone {
                match forgotten.iter_mut().find(|t| *t.topic.0 == **topic) {
                    Some(t) => t.partitions.push(*index),
                    None => forgotten.push(
                        ForgottenTopic::default()
                            .with_topic(name(topic))
                            .with_partitions(vec![*index]),
                    ),
                }
            }
        }
        let (session_id, session_epoch) = match (use_session, session.id) {
            (false, _) => (0, -1),
            // a full fetch that opens a session
            (true, 0) => (0, 0),
            (true, id) => (id, session.epoch),
        };
        let request = FetchRequest::default()
            .with_replica_id(BrokerId(self.config.node_id))
            .with_max_wait_ms(
                self.config
                    .settings
                    .replica_fetch_wait_max_ms
                    .clamp(0, 30_000),
            )
            .with_min_bytes(1)
            .with_max_bytes(max_bytes.saturating_mul(16))
            .with_session_id(session_id)
            .with_session_epoch(session_epoch)
            .with_topics(topics)
            .with_forgotten_topics_data(forgotten);
        let response = c.send_version(&request, 12).await?;
        match ResponseError::try_from_code(response.error_code) {
            None => {}
            Some(
                ResponseError::FetchSessionIdNotFound | ResponseError::InvalidFetchSessionEpoch,
            ) => {
                // the leader lost or evicted the session: the next fetch is a full one
                tracing::debug!("fetch session {} gone: starting over", session.id);
                session.reset();
                return Ok(());
            }
            Some(_) => bail!(
                "fetch failed: {}",
                ferrolog_client::error_name(response.error_code)
            ),
        }
        if use_session {
            if session.id == 0 {
                session.id = response.session_id;
                session.epoch = 1;
            } else {
                // wraps to 1, as Kafka's next epoch (0 opens, -1 closes)
                session.epoch = session.epoch.checked_add(1).unwrap_or(1);
            }
            if session.id == 0 {
                session.sent.clear();
            } else {
                session.sent.retain(|k, _| wanted.contains_key(k));
                for (key, topic) in joining {
                    session.sent.insert(key, (wanted[&key], topic));
                }
                for (key, state) in &wanted {
                    if let Some((sent, _)) = session.sent.get_mut(key) {
                        *sent = *state;
                    }
                }
            }
        }
        let now = now_ms();
        for t in response.responses {
            for data in t.partitions {
                let Some(p) = self.replicas.get(&t.topic.0, data.partition_index) else {
                    continue;
                };
                let Some(&(_, _, epoch)) = wanted.get(&(p.topic_id, p.index)) else {
                    continue;
                };
                match ResponseError::try_from_code(data.error_code) {
                    None => {
                        let records = data.records.as_deref().unwrap_or(&[]);
                        if throttled.contains(&(p.topic_id, p.index)) {
                            self.follower_quota.record(records.len());
                        }
                        match p.append_as_follower(
                            epoch,
                            records,
                            data.high_watermark,
                            data.log_start_offset,
                            now,
                        ) {
                            Ok(deleted) => {
                                if !deleted.is_empty() {
                                    // the topic's file.delete.delay.ms, as the leader's
                                    self.schedule_deletion(
                                        deleted,
                                        p.config().file_delete_delay_ms,
                                    );
                                }
                            }
                            Err(e) => {
                                tracing::warn!(
                                    topic = p.topic,
                                    partition = p.index,
                                    "replica append: {e}"
                                );
                            }
                        }
                    }
                    Some(ResponseError::OffsetOutOfRange) => {
                        let end = p.offsets().log_end;
                        if end < data.log_start_offset {
                            tracing::info!(
                                topic = p.topic,
                                partition = p.index,
                                start = data.log_start_offset,
                                "follower behind the leader's log start: starting over there"
                            );
                            p.reset_to(data.log_start_offset, now)?;
                        } else {
                            p.needs_reconcile(epoch);
                        }
                    }
                    Some(e) => {
                        tracing::debug!(
                            topic = p.topic,
                            partition = p.index,
                            "replica fetch: {e:?}"
                        );
                    }
                }
            }
        }
        Ok(())
    }

    /// ElectLeaders: preferred or unclean elections for `partitions` (all if `None`).
    pub fn elect_leaders(
        &self,
        unclean: bool,
        partitions: Option<Vec<(String, i32)>>,
    ) -> Vec<PartitionOutcome> {
        use crate::quorum::duties::{elect, liveness_of, ElectionRefused};
        let image = self.controller.image();
        let mut live = liveness_of(&image);
        if image.brokers.is_empty() {
            // a single node: itself, the only replica of everything
            live.alive.insert(self.config.node_id);
        }
        let wanted: Vec<(String, i32, ())> = match partitions {
            Some(list) => list.into_iter().map(|(t, p)| (t, p, ())).collect(),
            None => image
                .topics
                .values()
                .flat_map(|t| (0..t.partitions).map(move |p| (t.name.clone(), p, ())))
                .collect(),
        };
        self.change_partitions(wanted, |state, _| match elect(state, &live, unclean) {
            Ok(next) => Ok(Some(next)),
            Err(ElectionRefused::NotNeeded) => Err((
                ResponseError::ElectionNotNeeded,
                "Leader election not needed for topic partition.",
            )),
            Err(ElectionRefused::PreferredNotAvailable) => Err((
                ResponseError::PreferredLeaderNotAvailable,
                "The preferred leader is not alive or not in the ISR.",
            )),
            Err(ElectionRefused::NoEligibleLeader) => Err((
                ResponseError::EligibleLeadersNotAvailable,
                "No live replica can lead the partition.",
            )),
        })
    }

    /// AlterPartitionReassignments: starts (or with `None` cancels) moving partitions.
    pub fn reassign(
        &self,
        moves: Vec<(String, i32, Option<Vec<i32>>)>,
        allow_rf_change: bool,
    ) -> Vec<PartitionOutcome> {
        use crate::quorum::duties::{reassign, ReassignRefused};
        let image = self.controller.image();
        let node = self.config.node_id;
        let registered =
            |b: i32| image.brokers.contains_key(&b) || (image.brokers.is_empty() && b == node);
        self.change_partitions(moves, |state, target| {
            reassign(state, target.as_deref(), &registered, allow_rf_change).map_err(|refused| {
                match refused {
                    ReassignRefused::InvalidAssignment => (
                        ResponseError::InvalidReplicaAssignment,
                        "Replicas must be distinct registered brokers.",
                    ),
                    ReassignRefused::ReplicationFactorChange => (
                        ResponseError::InvalidReplicationFactor,
                        "The replication factor is changed by this reassignment.",
                    ),
                    ReassignRefused::NoneInProgress => (
                        ResponseError::NoReassignmentInProgress,
                        "No reassignment in progress for this partition.",
                    ),
                }
            })
        })
    }

    /// Applies `change` to each wanted partition's current state and commits the new states
    /// together, each a compare-and-set on its partition epoch.
    fn change_partitions<K>(
        &self,
        wanted: Vec<(String, i32, K)>,
        change: impl Fn(&PartitionState, &K) -> Result<Option<PartitionState>, Refusal>,
    ) -> Vec<PartitionOutcome> {
        let image = self.controller.image();
        let mut results = Vec::new();
        let mut records = Vec::new();
        let mut pending = Vec::new();
        for (topic, index, input) in wanted {
            // a single node keeps no partition states: each partition is its own, led by it
            let state = image
                .topic(&topic)
                .filter(|t| (0..t.partitions).contains(&index))
                .and_then(|t| Some((t.id, image.partition(&t.id, index, self.config.node_id)?)));
            let Some((id, state)) = state else {
                let code = ResponseError::UnknownTopicOrPartition.code();
                results.push((topic, index, code, None));
                continue;
            };
            match change(&state, &input) {
                Ok(None) => results.push((topic, index, 0, None)),
                Ok(Some(next)) => {
                    records.push(MetadataRecord::Partition {
                        topic: id,
                        index,
                        state: next,
                        expect_epoch: Some(state.partition_epoch),
                    });
                    pending.push((topic, index));
                }
                Err((error, message)) => {
                    results.push((topic, index, error.code(), Some(message.to_string())))
                }
            }
        }
        if records.is_empty() {
            return results;
        }
        let outcome = self.controller.commit_checked(&records);
        for (i, (topic, index)) in pending.into_iter().enumerate() {
            let (code, message) = match &outcome {
                Ok((_, accepted)) if accepted.get(i) == Some(&true) => (0, None),
                Ok(_) => (
                    ResponseError::NotController.code(),
                    Some("the partition changed meanwhile; retry".to_string()),
                ),
                Err(e) => (ResponseError::NotController.code(), Some(format!("{e:#}"))),
            };
            results.push((topic, index, code, message));
        }
        results
    }
}
