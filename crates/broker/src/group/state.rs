//! Group state machines (Kafka's classic group protocol) and committed offsets.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

use bytes::Bytes;
use kafka_protocol::ResponseError;
use tokio::sync::oneshot;

use super::assignor::Topics;
use super::consumer::{
    ClassicJoin, ClassicMember, ConsumerGroup, ConsumerHeartbeat, HeartbeatError, HeartbeatOutcome,
};
use super::embedded;
use super::offsets_log::{GroupRecord, MemberRecord};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Empty,
    PreparingRebalance,
    CompletingRebalance,
    Stable,
}

impl State {
    pub fn name(self) -> &'static str {
        match self {
            State::Empty => "Empty",
            State::PreparingRebalance => "PreparingRebalance",
            State::CompletingRebalance => "CompletingRebalance",
            State::Stable => "Stable",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Member {
    pub id: String,
    pub instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub session_timeout: Duration,
    pub rebalance_timeout: Duration,
    pub protocols: Vec<(String, Bytes)>,
    pub assignment: Bytes,
    last_heartbeat: Instant,
    joined: bool,
}

impl Member {
    /// The member's protocol metadata (its subscription) for `protocol`.
    pub fn metadata_for(&self, protocol: &str) -> Bytes {
        self.protocols
            .iter()
            .find(|(n, _)| n == protocol)
            .map(|(_, b)| b.clone())
            .unwrap_or_default()
    }
}

/// What a JoinGroup request carries about the member.
#[derive(Debug, Clone)]
pub struct MemberRequest {
    pub group_id: String,
    pub member_id: String,
    pub instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub session_timeout_ms: i32,
    pub rebalance_timeout_ms: i32,
    pub protocol_type: String,
    pub protocols: Vec<(String, Bytes)>,
    /// JoinGroup v4+: an unknown member first gets a member id to rejoin with.
    pub require_known_member_id: bool,
    /// JoinGroup v9+ (KIP-814): a returning static leader can be told to skip the assignment.
    pub supports_skip_assignment: bool,
}

#[derive(Debug, Clone, Default)]
pub struct JoinOutcome {
    pub error: i16,
    pub generation: i32,
    pub protocol_type: Option<String>,
    pub protocol: Option<String>,
    pub leader: String,
    pub member_id: String,
    /// (member id, instance id, metadata) for the leader; empty for followers.
    pub members: Vec<(String, Option<String>, Bytes)>,
    /// The leader gets the members but must not assign: the assignment stands.
    pub skip_assignment: bool,
}

#[derive(Debug, Clone, Default)]
pub struct SyncOutcome {
    pub error: i16,
    pub protocol_type: Option<String>,
    pub protocol: Option<String>,
    pub assignment: Bytes,
}

/// A group id and some of its offsets' (topic, partition) keys.
pub type GroupOffsetKeys = (String, Vec<(String, i32)>);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommittedOffset {
    pub offset: i64,
    pub leader_epoch: i32,
    pub metadata: String,
    pub commit_timestamp: i64,
}

struct Group {
    state: State,
    generation: i32,
    protocol_type: Option<String>,
    protocol: Option<String>,
    leader: Option<String>,
    members: BTreeMap<String, Member>,
    /// member ids handed out by MEMBER_ID_REQUIRED, not yet joined
    pending: HashMap<String, Instant>,
    join_waiters: HashMap<String, oneshot::Sender<JoinOutcome>>,
    sync_waiters: HashMap<String, oneshot::Sender<SyncOutcome>>,
    rebalance_started: Instant,
    /// the first join into an empty group waits group.initial.rebalance.delay.ms for others
    initial_delay_until: Option<Instant>,
    offsets: BTreeMap<(String, i32), CommittedOffset>,
    /// When the group last became empty (ms since the epoch); `None` for a group known only
    /// from replayed offsets, whose newest commit stands in for it.
    empty_since_ms: Option<i64>,
    /// Set when the group uses the consumer protocol (KIP-848); its classic fields then stay
    /// empty. Offsets are shared by both kinds.
    consumer: Option<ConsumerGroup>,
    /// The generation last written to `__consumer_offsets` (-1: none).
    persisted_generation: i32,
    /// Write order of each offset's latest record (see `GroupCoordinator::order`).
    offset_order: BTreeMap<(String, i32), u64>,
    /// A classic group became a consumer-protocol group after its membership was written: an
    /// empty record must replace that membership, or a restart would bring it back.
    write_empty: bool,
}

impl Group {
    fn new() -> Group {
        Group {
            state: State::Empty,
            generation: 0,
            protocol_type: None,
            protocol: None,
            leader: None,
            members: BTreeMap::new(),
            pending: HashMap::new(),
            join_waiters: HashMap::new(),
            sync_waiters: HashMap::new(),
            rebalance_started: Instant::now(),
            initial_delay_until: None,
            offsets: BTreeMap::new(),
            empty_since_ms: None,
            consumer: None,
            persisted_generation: -1,
            offset_order: BTreeMap::new(),
            write_empty: false,
        }
    }

    /// The membership to write, if the group settled on a generation not yet written.
    fn unpersisted(&self) -> Option<GroupRecord> {
        if self.write_empty {
            return Some(GroupRecord {
                protocol_type: "consumer".into(),
                generation: self.generation,
                protocol: None,
                leader: None,
                state_timestamp: crate::now_ms(),
                members: Vec::new(),
            });
        }
        let settled = matches!(self.state, State::Stable | State::Empty);
        if self.consumer.is_some()
            || !settled
            || self.generation <= 0
            || self.generation == self.persisted_generation
        {
            return None;
        }
        let protocol = self.protocol.clone().unwrap_or_default();
        Some(GroupRecord {
            protocol_type: self.protocol_type.clone().unwrap_or_default(),
            generation: self.generation,
            protocol: self.protocol.clone(),
            leader: self.leader.clone(),
            state_timestamp: crate::now_ms(),
            members: self
                .members
                .values()
                .map(|m| MemberRecord {
                    member_id: m.id.clone(),
                    instance_id: m.instance_id.clone(),
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    rebalance_timeout_ms: m.rebalance_timeout.as_millis() as i32,
                    session_timeout_ms: m.session_timeout.as_millis() as i32,
                    subscription: m.metadata_for(&protocol),
                    assignment: m.assignment.clone(),
                })
                .collect(),
        })
    }

    fn has_members(&self) -> bool {
        !self.members.is_empty()
            || self
                .consumer
                .as_ref()
                .is_some_and(|c| !c.members.is_empty())
    }

    fn error_join(code: ResponseError, member_id: &str) -> JoinOutcome {
        JoinOutcome {
            error: code.code(),
            generation: -1,
            member_id: member_id.to_string(),
            ..JoinOutcome::default()
        }
    }

    fn prepare_rebalance(&mut self, initial_delay: Duration) {
        if self.state == State::CompletingRebalance {
            for (_, waiter) in self.sync_waiters.drain() {
                let _ = waiter.send(SyncOutcome {
                    error: ResponseError::RebalanceInProgress.code(),
                    ..SyncOutcome::default()
                });
            }
        }
        if self.state == State::Empty && !initial_delay.is_zero() {
            self.initial_delay_until = Some(Instant::now() + initial_delay);
        }
        if self.state != State::PreparingRebalance {
            self.rebalance_started = Instant::now();
            for m in self.members.values_mut() {
                m.joined = false;
            }
        }
        self.state = State::PreparingRebalance;
    }

    fn rebalance_timeout(&self) -> Duration {
        self.members
            .values()
            .map(|m| m.rebalance_timeout)
            .max()
            .unwrap_or_default()
    }

    /// Completes the join phase when every member has rejoined (or the rebalance timeout
    /// dropped those that did not) and the initial delay is over.
    fn maybe_complete_join(&mut self, now: Instant) {
        if self.state != State::PreparingRebalance {
            return;
        }
        if self.initial_delay_until.is_some_and(|until| now < until) {
            return;
        }
        let all_joined = self.members.values().all(|m| m.joined);
        let timed_out = now.duration_since(self.rebalance_started) >= self.rebalance_timeout();
        if !all_joined && !timed_out {
            return;
        }
        self.initial_delay_until = None;
        let absent: Vec<String> = self
            .members
            .values()
            .filter(|m| !m.joined)
            .map(|m| m.id.clone())
            .collect();
        for id in absent {
            self.members.remove(&id);
        }
        self.generation += 1;
        if self.members.is_empty() {
            self.state = State::Empty;
            self.empty_since_ms = Some(crate::now_ms());
            self.protocol = None;
            self.leader = None;
            return;
        }
        let protocol = self.select_protocol();
        self.protocol = protocol.clone();
        if self
            .leader
            .as_ref()
            .is_none_or(|l| !self.members.contains_key(l))
        {
            self.leader = self.members.keys().next().cloned();
        }
        let leader = self.leader.clone().unwrap_or_default();
        let protocol = protocol.unwrap_or_default();
        let members = self.leader_view(&protocol);
        self.state = State::CompletingRebalance;
        for (id, waiter) in self.join_waiters.drain() {
            let _ = waiter.send(JoinOutcome {
                error: 0,
                generation: self.generation,
                protocol_type: self.protocol_type.clone(),
                protocol: Some(protocol.clone()),
                leader: leader.clone(),
                members: if id == leader {
                    members.clone()
                } else {
                    Vec::new()
                },
                member_id: id,
                skip_assignment: false,
            });
        }
    }

    /// The protocol every member supports, by the members' preference (first listed wins).
    fn select_protocol(&self) -> Option<String> {
        let candidates: Vec<String> = self
            .members
            .values()
            .next()
            .map(|m| m.protocols.iter().map(|(n, _)| n.clone()).collect())
            .unwrap_or_default();
        candidates
            .into_iter()
            .filter(|p| {
                self.members
                    .values()
                    .all(|m| m.protocols.iter().any(|(n, _)| n == p))
            })
            .max_by_key(|p| {
                // votes: members for whom this is the first supported candidate
                self.members
                    .values()
                    .filter(|m| m.protocols.first().is_some_and(|(n, _)| n == p))
                    .count()
            })
    }

    /// Answers every member waiting to join or sync with `error`.
    fn fail_waiters(&mut self, error: ResponseError) {
        for (id, waiter) in self.join_waiters.drain() {
            let _ = waiter.send(Group::error_join(error, &id));
        }
        for (_, waiter) in self.sync_waiters.drain() {
            let _ = waiter.send(SyncOutcome {
                error: error.code(),
                ..SyncOutcome::default()
            });
        }
    }

    /// What the leader learns of the members: (member id, instance id, metadata for `protocol`).
    fn leader_view(&self, protocol: &str) -> Vec<(String, Option<String>, Bytes)> {
        self.members
            .values()
            .map(|m| {
                (
                    m.id.clone(),
                    m.instance_id.clone(),
                    m.metadata_for(protocol),
                )
            })
            .collect()
    }

    /// Moves a static member to a new member id, keeping its assignment and leadership.
    fn replace_member(&mut self, old: &str, new: &str) {
        if let Some(mut m) = self.members.remove(old) {
            m.id = new.to_string();
            self.members.insert(new.to_string(), m);
        }
        if let Some(waiter) = self.join_waiters.remove(old) {
            let _ = waiter.send(Group::error_join(ResponseError::FencedInstanceId, old));
        }
        if let Some(waiter) = self.sync_waiters.remove(old) {
            let _ = waiter.send(SyncOutcome {
                error: ResponseError::FencedInstanceId.code(),
                ..SyncOutcome::default()
            });
        }
        if self.leader.as_deref() == Some(old) {
            self.leader = Some(new.to_string());
        }
    }

    /// The error for a request naming `member_id` (and maybe an instance id) that is not a
    /// member: a replaced static member is fenced, anything else is unknown.
    fn unknown(&self, member_id: &str, instance_id: Option<&str>) -> ResponseError {
        let replaced = instance_id.is_some_and(|i| {
            self.members
                .values()
                .any(|m| m.instance_id.as_deref() == Some(i) && m.id != member_id)
        });
        if replaced {
            ResponseError::FencedInstanceId
        } else {
            ResponseError::UnknownMemberId
        }
    }

    /// The consumer-protocol group this classic group becomes (KIP-848 online upgrade): its
    /// members keep their partitions; pending joins and syncs are told to rejoin.
    fn upgrade(&mut self, topics: &Topics, now: Instant) {
        self.fail_waiters(ResponseError::RebalanceInProgress);
        let protocol = self.protocol.clone();
        let members = std::mem::take(&mut self.members).into_values().map(|m| {
            let metadata = match &protocol {
                Some(p) => m.metadata_for(p),
                None => m
                    .protocols
                    .first()
                    .map(|(_, b)| b.clone())
                    .unwrap_or_default(),
            };
            let subscription = embedded::decode_subscription(&metadata, topics).unwrap_or_default();
            ClassicJoin {
                owned: embedded::decode_assignment(&m.assignment, topics),
                member_id: m.id,
                new_id: false,
                instance_id: m.instance_id,
                client_id: m.client_id,
                client_host: m.client_host,
                rebalance_timeout: m.rebalance_timeout,
                subscribed: subscription.topics,
                rack_id: subscription.rack_id,
                classic: ClassicMember {
                    session_timeout: m.session_timeout,
                    protocols: m.protocols,
                },
            }
        });
        self.consumer = Some(ConsumerGroup::from_classic(self.generation, members, now));
        self.pending.clear();
        self.write_empty = self.persisted_generation >= 0;
        self.state = State::Empty;
        self.protocol_type = Some("consumer".into());
        self.protocol = None;
        self.leader = None;
    }

    /// The classic group this consumer-protocol group becomes when only classic members are
    /// left (KIP-848 online downgrade): each keeps its target assignment at the group epoch,
    /// and a rebalance starts at once.
    fn downgrade(&mut self) {
        let Some(c) = self.consumer.take() else {
            return;
        };
        let topics = c.subscribed_topics();
        let now = now_instant();
        self.members = c
            .members
            .values()
            .filter_map(|m| {
                let classic = m.classic.clone()?;
                let version = classic
                    .protocols
                    .first()
                    .map_or(0, |(_, b)| embedded::subscription_version(b));
                let target = c.target.get(&m.id).cloned().unwrap_or_default();
                Some(Member {
                    id: m.id.clone(),
                    instance_id: m.instance_id.clone(),
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    session_timeout: classic.session_timeout,
                    rebalance_timeout: m.rebalance_timeout,
                    protocols: classic.protocols,
                    assignment: embedded::encode_assignment(&target, topics, version),
                    last_heartbeat: now,
                    joined: false,
                })
            })
            .map(|m| (m.id.clone(), m))
            .collect();
        self.generation = c.epoch;
        self.protocol_type = Some("consumer".into());
        self.protocol = self.select_protocol();
        self.leader = self.members.keys().next().cloned();
        self.state = State::Stable;
        self.prepare_rebalance(Duration::ZERO);
    }

    /// After a consumer-protocol member left or expired: downgrade if only classic members
    /// remain and the policy allows it.
    fn maybe_downgrade(&mut self, policy: MigrationPolicy) {
        let only_classic = self
            .consumer
            .as_ref()
            .is_some_and(|c| !c.members.is_empty() && c.all_classic());
        if only_classic && policy.downgrade {
            tracing::info!("downgrading a consumer group with only classic members to classic");
            self.downgrade();
        }
    }

    fn remove_member(&mut self, id: &str, initial_delay: Duration) {
        if self.members.remove(id).is_none() {
            return;
        }
        if let Some(waiter) = self.join_waiters.remove(id) {
            let _ = waiter.send(Group::error_join(ResponseError::UnknownMemberId, id));
        }
        self.sync_waiters.remove(id);
        if self.leader.as_deref() == Some(id) {
            self.leader = None;
        }
        if self.members.is_empty() && self.join_waiters.is_empty() {
            self.state = State::Empty;
            self.empty_since_ms = Some(crate::now_ms());
            self.generation += 1;
            self.protocol = None;
        } else {
            self.prepare_rebalance(initial_delay);
        }
    }
}

/// Timeouts and limits of the coordinator, from broker configs.
#[derive(Debug, Clone, Copy)]
pub struct GroupConfig {
    pub min_session_timeout_ms: i32,
    pub max_session_timeout_ms: i32,
    pub initial_rebalance_delay: Duration,
    pub max_metadata_bytes: usize,
    /// `group.consumer.session.timeout.ms`
    pub consumer_session_timeout: Duration,
    /// `group.consumer.heartbeat.interval.ms`
    pub consumer_heartbeat_interval_ms: i32,
    /// `group.consumer.migration.policy`
    pub migration: MigrationPolicy,
}

/// Which online migrations between the classic and the consumer protocol are allowed
/// (`group.consumer.migration.policy`: bidirectional, upgrade, downgrade or disabled).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MigrationPolicy {
    /// A classic group becomes a consumer-protocol group when a consumer-protocol member joins.
    pub upgrade: bool,
    /// A consumer-protocol group becomes classic when its last consumer-protocol member goes.
    pub downgrade: bool,
}

impl MigrationPolicy {
    pub fn parse(value: &str) -> Option<MigrationPolicy> {
        let (upgrade, downgrade) = match value.trim().to_ascii_lowercase().as_str() {
            "bidirectional" => (true, true),
            "upgrade" => (true, false),
            "downgrade" => (false, true),
            "disabled" => (false, false),
            _ => return None,
        };
        Some(MigrationPolicy { upgrade, downgrade })
    }
}

/// A group's own consumer-protocol timing (its group configs), where it has one.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GroupTiming {
    pub session_timeout: Option<Duration>,
    pub heartbeat_interval_ms: Option<i32>,
}

/// An offset committed inside an open transaction: (group, topic, partition, offset).
/// The last number is its write order (see `GroupCoordinator::order`).
type PendingTxnOffset = (String, String, i32, CommittedOffset, u64);

/// What ListGroups reports about a group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupListing {
    pub id: String,
    pub state: String,
    pub protocol_type: String,
    /// "classic" or "consumer"
    pub kind: &'static str,
}

pub struct GroupCoordinator {
    groups: Mutex<HashMap<String, Group>>,
    config: GroupConfig,
    /// Offsets committed inside open transactions, by producer id: (group, topic, partition,
    /// offset). They become committed offsets with the transaction's COMMIT marker.
    pending_txn: Mutex<HashMap<i64, Vec<PendingTxnOffset>>>,
    /// Counts offset writes in log order (live and replayed alike), so a transaction's offset
    /// that commits late never replaces one written after it, as in Kafka.
    order: std::sync::atomic::AtomicU64,
    /// Per-group timing from the group configs.
    timing: Mutex<HashMap<String, GroupTiming>>,
}

fn now_instant() -> Instant {
    Instant::now()
}

impl GroupCoordinator {
    pub fn new(config: GroupConfig) -> GroupCoordinator {
        GroupCoordinator {
            groups: Mutex::new(HashMap::new()),
            config,
            pending_txn: Mutex::new(HashMap::new()),
            timing: Mutex::new(HashMap::new()),
            order: std::sync::atomic::AtomicU64::new(1),
        }
    }

    /// Replaces the groups' own timing (from the metadata's group configs).
    pub fn set_group_configs(&self, timing: HashMap<String, GroupTiming>) {
        *crate::locks::lock(&self.timing) = timing;
    }

    /// The heartbeat interval members of `group` are told: its group config, else the broker's.
    pub fn consumer_heartbeat_interval_ms(&self, group: &str) -> i32 {
        self.timing
            .lock()
            .expect("timing lock")
            .get(group)
            .and_then(|t| t.heartbeat_interval_ms)
            .unwrap_or(self.config.consumer_heartbeat_interval_ms)
    }

    pub fn config(&self) -> GroupConfig {
        self.config
    }

    /// JoinGroup: returns once the join phase completes (or at once for errors and
    /// MEMBER_ID_REQUIRED, and in a consumer-protocol group); `topics` are all topics that
    /// exist.
    pub async fn join(&self, request: MemberRequest, topics: &Topics) -> JoinOutcome {
        let receiver = {
            let mut groups = crate::locks::lock(&self.groups);
            if request.group_id.is_empty() {
                return Group::error_join(ResponseError::InvalidGroupId, &request.member_id);
            }
            if request.session_timeout_ms < self.config.min_session_timeout_ms
                || request.session_timeout_ms > self.config.max_session_timeout_ms
            {
                return Group::error_join(ResponseError::InvalidSessionTimeout, &request.member_id);
            }
            let group = groups
                .entry(request.group_id.clone())
                .or_insert_with(Group::new);
            match &group.consumer {
                Some(c) if !c.members.is_empty() => {
                    return Self::join_consumer_group(group, request, topics);
                }
                // an empty consumer-protocol group becomes a classic one, keeping its offsets
                Some(_) => group.consumer = None,
                None => {}
            }
            if request.protocols.is_empty()
                || group
                    .protocol_type
                    .as_ref()
                    .is_some_and(|t| *t != request.protocol_type && !group.members.is_empty())
            {
                return Group::error_join(
                    ResponseError::InconsistentGroupProtocol,
                    &request.member_id,
                );
            }
            if !group.members.is_empty()
                && !group.members.values().all(|m| {
                    m.protocols
                        .iter()
                        .any(|(n, _)| request.protocols.iter().any(|(p, _)| p == n))
                })
            {
                return Group::error_join(
                    ResponseError::InconsistentGroupProtocol,
                    &request.member_id,
                );
            }
            let mut member_id = request.member_id.clone();
            // static membership: the instance id names the member across restarts
            if let Some(instance) = &request.instance_id {
                let existing = group
                    .members
                    .values()
                    .find(|m| m.instance_id.as_ref() == Some(instance))
                    .map(|m| m.id.clone());
                match existing {
                    Some(old) if member_id == old => {}
                    Some(old) if member_id.is_empty() => {
                        // KIP-345: a restarted instance replaces its old member under a new id;
                        // the old id is fenced from then on
                        member_id = format!("{}-{}", instance, uuid::Uuid::new_v4());
                        group.replace_member(&old, &member_id);
                    }
                    Some(_) => {
                        return Group::error_join(ResponseError::FencedInstanceId, &member_id);
                    }
                    None if member_id.is_empty() => {
                        member_id = format!("{}-{}", instance, uuid::Uuid::new_v4())
                    }
                    None => {}
                }
            } else if member_id.is_empty() {
                member_id = format!("{}-{}", request.client_id, uuid::Uuid::new_v4());
                if request.require_known_member_id {
                    group.pending.insert(member_id.clone(), now_instant());
                    return Group::error_join(ResponseError::MemberIdRequired, &member_id);
                }
            } else if !group.members.contains_key(&member_id)
                && group.pending.remove(&member_id).is_none()
            {
                return Group::error_join(ResponseError::UnknownMemberId, &member_id);
            }
            group.protocol_type = Some(request.protocol_type.clone());
            let session_timeout = Duration::from_millis(request.session_timeout_ms.max(0) as u64);
            let rebalance_timeout = Duration::from_millis(
                request
                    .rebalance_timeout_ms
                    .max(request.session_timeout_ms)
                    .max(0) as u64,
            );
            let changed = group
                .members
                .get(&member_id)
                .is_none_or(|m| m.protocols != request.protocols);
            let member = Member {
                id: member_id.clone(),
                instance_id: request.instance_id.clone(),
                client_id: request.client_id.clone(),
                client_host: request.client_host.clone(),
                session_timeout,
                rebalance_timeout,
                protocols: request.protocols.clone(),
                assignment: group
                    .members
                    .get(&member_id)
                    .map(|m| m.assignment.clone())
                    .unwrap_or_default(),
                last_heartbeat: now_instant(),
                joined: true,
            };
            // A known member rejoining a stable group with the same protocols (e.g. a static
            // member restarting) gets the current generation without a rebalance.
            // A returning static leader (JoinGroup v9+) gets the members but keeps the current
            // assignment (KIP-814); an older leader client makes the group rebalance.
            if group.state == State::Stable && !changed && group.members.contains_key(&member_id) {
                let leader = group.leader.clone().unwrap_or_default();
                group.members.insert(member_id.clone(), member);
                let is_leader = leader == member_id;
                if !is_leader || request.supports_skip_assignment {
                    let members = if is_leader {
                        group.leader_view(&group.protocol.clone().unwrap_or_default())
                    } else {
                        Vec::new()
                    };
                    return JoinOutcome {
                        error: 0,
                        generation: group.generation,
                        protocol_type: group.protocol_type.clone(),
                        protocol: group.protocol.clone(),
                        leader,
                        member_id,
                        members,
                        skip_assignment: is_leader,
                    };
                }
            } else {
                group.members.insert(member_id.clone(), member);
            }
            group.prepare_rebalance(self.config.initial_rebalance_delay);
            if let Some(m) = group.members.get_mut(&member_id) {
                m.joined = true;
            }
            let (tx, rx) = oneshot::channel();
            if let Some(old) = group.join_waiters.insert(member_id.clone(), tx) {
                let _ = old.send(Group::error_join(
                    ResponseError::UnknownMemberId,
                    &member_id,
                ));
            }
            group.maybe_complete_join(now_instant());
            rx
        };
        receiver
            .await
            .unwrap_or_else(|_| Group::error_join(ResponseError::UnknownMemberId, ""))
    }

    /// A classic JoinGroup to a consumer-protocol group with members (KIP-848 online
    /// migration): the member is reconciled at once and answered without a leader.
    fn join_consumer_group(
        group: &mut Group,
        request: MemberRequest,
        topics: &Topics,
    ) -> JoinOutcome {
        let inconsistent =
            || Group::error_join(ResponseError::InconsistentGroupProtocol, &request.member_id);
        let Some((protocol, metadata)) = request.protocols.first().cloned() else {
            return inconsistent();
        };
        if request.protocol_type != "consumer" {
            return inconsistent();
        }
        let Some(subscription) = embedded::decode_subscription(&metadata, topics) else {
            return inconsistent();
        };
        let new_id = request.member_id.is_empty();
        let member_id = if new_id {
            let prefix = request.instance_id.as_ref().unwrap_or(&request.client_id);
            format!("{prefix}-{}", uuid::Uuid::new_v4())
        } else {
            request.member_id.clone()
        };
        if new_id && request.instance_id.is_none() && request.require_known_member_id {
            return Group::error_join(ResponseError::MemberIdRequired, &member_id);
        }
        let join = ClassicJoin {
            member_id: member_id.clone(),
            new_id,
            instance_id: request.instance_id.clone(),
            client_id: request.client_id.clone(),
            client_host: request.client_host.clone(),
            rebalance_timeout: Duration::from_millis(request.rebalance_timeout_ms.max(0) as u64),
            subscribed: subscription.topics,
            owned: subscription.owned,
            rack_id: subscription.rack_id,
            classic: ClassicMember {
                session_timeout: Duration::from_millis(request.session_timeout_ms.max(0) as u64),
                protocols: request.protocols.clone(),
            },
        };
        let c = group.consumer.as_mut().expect("a consumer group");
        match c.classic_join(join, topics, super::assignor::ASSIGNORS[0], now_instant()) {
            Ok(epoch) => JoinOutcome {
                error: 0,
                generation: epoch,
                protocol_type: Some("consumer".into()),
                protocol: Some(protocol),
                leader: String::new(),
                member_id,
                members: Vec::new(),
                skip_assignment: false,
            },
            Err((code, _)) => Group::error_join(code, &member_id),
        }
    }

    /// SyncGroup: the leader's assignments complete the round; followers wait for them.
    pub async fn sync(
        &self,
        group_id: &str,
        generation: i32,
        member_id: &str,
        instance_id: Option<&str>,
        assignments: Vec<(String, Bytes)>,
        topics: &Topics,
    ) -> SyncOutcome {
        let error = |e: ResponseError| SyncOutcome {
            error: e.code(),
            ..SyncOutcome::default()
        };
        let receiver = {
            let mut groups = crate::locks::lock(&self.groups);
            let Some(group) = groups.get_mut(group_id) else {
                return error(ResponseError::UnknownMemberId);
            };
            if let Some(c) = &group.consumer {
                // a classic member of a consumer-protocol group: the coordinator assigned
                return match c.classic_sync(member_id, instance_id, generation) {
                    Ok((assigned, version, protocol)) => SyncOutcome {
                        error: 0,
                        protocol_type: Some("consumer".into()),
                        protocol: Some(protocol),
                        assignment: embedded::encode_assignment(&assigned, topics, version),
                    },
                    Err(e) => error(e),
                };
            }
            if !group.members.contains_key(member_id) {
                return error(group.unknown(member_id, instance_id));
            }
            if generation != group.generation {
                return error(ResponseError::IllegalGeneration);
            }
            match group.state {
                State::PreparingRebalance | State::Empty => {
                    return error(ResponseError::RebalanceInProgress)
                }
                State::Stable => {
                    let m = &group.members[member_id];
                    return SyncOutcome {
                        error: 0,
                        protocol_type: group.protocol_type.clone(),
                        protocol: group.protocol.clone(),
                        assignment: m.assignment.clone(),
                    };
                }
                State::CompletingRebalance => {}
            }
            if let Some(m) = group.members.get_mut(member_id) {
                m.last_heartbeat = now_instant();
            }
            let (tx, rx) = oneshot::channel();
            group.sync_waiters.insert(member_id.to_string(), tx);
            if group.leader.as_deref() == Some(member_id) {
                let given: HashMap<String, Bytes> = assignments.into_iter().collect();
                for m in group.members.values_mut() {
                    m.assignment = given.get(&m.id).cloned().unwrap_or_default();
                }
                group.state = State::Stable;
            }
            if group.state == State::Stable {
                for (id, waiter) in group.sync_waiters.drain() {
                    let assignment = group
                        .members
                        .get(&id)
                        .map(|m| m.assignment.clone())
                        .unwrap_or_default();
                    let _ = waiter.send(SyncOutcome {
                        error: 0,
                        protocol_type: group.protocol_type.clone(),
                        protocol: group.protocol.clone(),
                        assignment,
                    });
                }
            }
            rx
        };
        receiver
            .await
            .unwrap_or_else(|_| error(ResponseError::RebalanceInProgress))
    }

    /// Heartbeat: 0, or the error code telling the member what to do.
    pub fn heartbeat(
        &self,
        group_id: &str,
        generation: i32,
        member_id: &str,
        instance_id: Option<&str>,
    ) -> i16 {
        let mut groups = crate::locks::lock(&self.groups);
        let Some(group) = groups.get_mut(group_id) else {
            return ResponseError::UnknownMemberId.code();
        };
        if let Some(c) = &mut group.consumer {
            return match c.classic_heartbeat(member_id, instance_id, generation, now_instant()) {
                Ok(()) => 0,
                Err(e) => e.code(),
            };
        }
        if !group.members.contains_key(member_id) {
            return group.unknown(member_id, instance_id).code();
        }
        let Some(member) = group.members.get_mut(member_id) else {
            return ResponseError::UnknownMemberId.code();
        };
        member.last_heartbeat = now_instant();
        if generation != group.generation {
            return ResponseError::IllegalGeneration.code();
        }
        if group.state == State::PreparingRebalance {
            return ResponseError::RebalanceInProgress.code();
        }
        0
    }

    /// LeaveGroup for one member (by member id, or by instance id when the member id is empty).
    pub fn leave(&self, group_id: &str, member_id: &str, instance_id: Option<&str>) -> i16 {
        let mut groups = crate::locks::lock(&self.groups);
        let Some(group) = groups.get_mut(group_id) else {
            return ResponseError::UnknownMemberId.code();
        };
        if let Some(c) = &mut group.consumer {
            let found = c
                .members
                .values()
                .find(|m| match instance_id {
                    Some(i) => m.instance_id.as_deref() == Some(i),
                    None => m.id == member_id,
                })
                .map(|m| (m.id.clone(), m.classic.is_some()));
            return match found {
                Some((id, _)) if !member_id.is_empty() && id != member_id => {
                    ResponseError::FencedInstanceId.code()
                }
                Some((id, true)) => {
                    c.remove(&id);
                    if c.members.is_empty() {
                        group.empty_since_ms = Some(crate::now_ms());
                    }
                    0
                }
                _ => ResponseError::UnknownMemberId.code(),
            };
        }
        let id = if member_id.is_empty() {
            match instance_id.and_then(|i| {
                group
                    .members
                    .values()
                    .find(|m| m.instance_id.as_deref() == Some(i))
            }) {
                Some(m) => m.id.clone(),
                None => return ResponseError::UnknownMemberId.code(),
            }
        } else {
            member_id.to_string()
        };
        if let (Some(instance), Some(m)) = (instance_id, group.members.get(&id)) {
            if m.instance_id.as_deref() != Some(instance) {
                return ResponseError::FencedInstanceId.code();
            }
        }
        if !group.members.contains_key(&id) {
            return ResponseError::UnknownMemberId.code();
        }
        group.remove_member(&id, Duration::ZERO);
        group.maybe_complete_join(now_instant());
        0
    }

    /// Expires members whose session ran out and completes join phases that timed out.
    pub fn tick(&self) {
        let now = now_instant();
        let timing = crate::locks::lock(&self.timing).clone();
        let mut groups = crate::locks::lock(&self.groups);
        for (id, group) in groups.iter_mut() {
            let session_timeout = timing
                .get(id)
                .and_then(|t| t.session_timeout)
                .unwrap_or(self.config.consumer_session_timeout);
            let expired: Vec<String> = group
                .members
                .values()
                .filter(|m| {
                    !group.join_waiters.contains_key(&m.id)
                        && now.duration_since(m.last_heartbeat) > m.session_timeout
                })
                .map(|m| m.id.clone())
                .collect();
            for id in expired {
                tracing::info!(member = id, "member session expired");
                group.remove_member(&id, Duration::ZERO);
            }
            group
                .pending
                .retain(|_, at| now.duration_since(*at) < Duration::from_secs(300));
            group.maybe_complete_join(now);
            if let Some(c) = &mut group.consumer {
                let mut consumer_member_left = false;
                for id in c.expired(now, session_timeout) {
                    tracing::info!(member = id, "consumer group member expired");
                    consumer_member_left |= c.members.get(&id).is_some_and(|m| m.classic.is_none());
                    c.remove(&id);
                    if c.members.is_empty() {
                        group.empty_since_ms = Some(crate::now_ms());
                    }
                }
                if consumer_member_left {
                    group.maybe_downgrade(self.config.migration);
                }
            }
        }
    }

    /// ConsumerGroupHeartbeat (KIP-848); `topics` are all topics that exist.
    pub fn consumer_heartbeat(
        &self,
        group_id: &str,
        request: &ConsumerHeartbeat,
        topics: &Topics,
    ) -> Result<HeartbeatOutcome, HeartbeatError> {
        if group_id.is_empty() {
            return Err((
                ResponseError::InvalidRequest,
                "GroupId can't be empty.".into(),
            ));
        }
        let mut groups = crate::locks::lock(&self.groups);
        let group = groups
            .entry(group_id.to_string())
            .or_insert_with(Group::new);
        if group.consumer.is_none() && (!group.members.is_empty() || !group.join_waiters.is_empty())
        {
            let consumer_protocol = group.protocol_type.as_deref() == Some("consumer");
            if !self.config.migration.upgrade || !consumer_protocol || group.members.is_empty() {
                return Err((
                    ResponseError::GroupIdNotFound,
                    format!("Group {group_id} is not a consumer group."),
                ));
            }
            tracing::info!(
                group = group_id,
                "upgrading a classic group to the consumer protocol"
            );
            group.upgrade(topics, now_instant());
        }
        if group.consumer.is_none() {
            // an empty classic group (or a new id) becomes a consumer-protocol group
            group.write_empty = group.persisted_generation >= 0;
            group.state = State::Empty;
            group.protocol_type = Some("consumer".into());
            group.protocol = None;
            group.consumer = Some(ConsumerGroup::default());
        }
        let c = group.consumer.as_mut().expect("consumer group");
        let outcome = c.heartbeat(
            request,
            topics,
            super::assignor::ASSIGNORS[0],
            now_instant(),
        );
        if c.members.is_empty() {
            group.empty_since_ms = Some(crate::now_ms());
        }
        if request.member_epoch == super::consumer::LEAVE_EPOCH {
            group.maybe_downgrade(self.config.migration);
        }
        outcome
    }

    /// Classic groups that settled on a generation not yet written to `__consumer_offsets`,
    /// marked as written: the caller writes them.
    pub fn take_unpersisted(&self) -> Vec<(String, GroupRecord)> {
        let mut groups = crate::locks::lock(&self.groups);
        let mut out = Vec::new();
        for (id, g) in groups.iter_mut() {
            if let Some(record) = g.unpersisted() {
                g.persisted_generation = record.generation;
                g.write_empty = false;
                out.push((id.clone(), record));
            }
        }
        out
    }

    /// A write of `take_unpersisted` failed: try the group again at the next tick.
    pub fn persist_failed(&self, group_id: &str, record: &GroupRecord) {
        let mut groups = crate::locks::lock(&self.groups);
        if let Some(g) = groups.get_mut(group_id) {
            if g.persisted_generation == record.generation {
                g.persisted_generation = -1;
                g.write_empty |= g.consumer.is_some() && record.members.is_empty();
            }
        }
    }

    /// Applies a group-metadata record replayed from `__consumer_offsets` (`None`: the group
    /// was deleted). Replayed members get a fresh session to come back in.
    pub fn replay_group(&self, group_id: &str, record: Option<GroupRecord>) {
        let mut groups = crate::locks::lock(&self.groups);
        let Some(record) = record else {
            groups.remove(group_id);
            return;
        };
        let g = groups
            .entry(group_id.to_string())
            .or_insert_with(Group::new);
        let protocol = record.protocol.clone().unwrap_or_default();
        g.generation = record.generation;
        g.persisted_generation = record.generation;
        g.protocol_type = Some(record.protocol_type);
        g.protocol = record.protocol;
        g.leader = record.leader;
        g.consumer = None;
        g.members = record
            .members
            .into_iter()
            .map(|m| {
                let member = Member {
                    id: m.member_id.clone(),
                    instance_id: m.instance_id,
                    client_id: m.client_id,
                    client_host: m.client_host,
                    session_timeout: Duration::from_millis(m.session_timeout_ms.max(0) as u64),
                    rebalance_timeout: Duration::from_millis(m.rebalance_timeout_ms.max(0) as u64),
                    protocols: vec![(protocol.clone(), m.subscription)],
                    assignment: m.assignment,
                    last_heartbeat: now_instant(),
                    joined: true,
                };
                (m.member_id, member)
            })
            .collect();
        if g.members.is_empty() {
            g.state = State::Empty;
            g.empty_since_ms = Some(record.state_timestamp);
        } else {
            g.state = State::Stable;
            g.empty_since_ms = None;
        }
    }

    /// Offsets a transaction committed (TxnOffsetCommit), pending its marker.
    pub fn add_txn_offsets(
        &self,
        producer_id: i64,
        group: &str,
        offsets: Vec<(String, i32, CommittedOffset)>,
    ) {
        let mut pending = crate::locks::lock(&self.pending_txn);
        let entry = pending.entry(producer_id).or_default();
        for (topic, p, o) in offsets {
            entry.push((group.to_string(), topic, p, o, self.next_order()));
        }
    }

    /// The producer's transaction ended: its offsets are committed, or dropped.
    pub fn complete_txn_offsets(&self, producer_id: i64, commit: bool) {
        let done = self
            .pending_txn
            .lock()
            .expect("pending lock")
            .remove(&producer_id)
            .unwrap_or_default();
        if commit {
            for (group, topic, p, o, order) in done {
                self.apply_offset(&group, &topic, p, Some(o), order);
            }
        }
    }

    /// Whether an open transaction holds an offset for the partition (OffsetFetch with
    /// require_stable answers UNSTABLE_OFFSET_COMMIT then).
    pub fn has_pending_txn_offset(&self, group: &str, topic: &str, partition: i32) -> bool {
        self.pending_txn
            .lock()
            .expect("pending lock")
            .values()
            .flatten()
            .any(|(g, t, p, _, _)| g == group && t == topic && *p == partition)
    }

    /// A consumer-protocol group, for ConsumerGroupDescribe.
    pub fn consumer_group(&self, group_id: &str) -> Option<ConsumerGroup> {
        let groups = crate::locks::lock(&self.groups);
        groups.get(group_id).and_then(|g| g.consumer.clone())
    }

    /// Validates an OffsetFetch by a consumer-protocol member (OffsetFetch v9+).
    pub fn check_fetch(
        &self,
        group_id: &str,
        member_id: &str,
        epoch: i32,
    ) -> Result<(), ResponseError> {
        let groups = crate::locks::lock(&self.groups);
        match groups.get(group_id).and_then(|g| g.consumer.as_ref()) {
            Some(c) => c.check_member(member_id, epoch),
            None => Ok(()),
        }
    }

    /// Validates an OffsetCommit against the group's membership.
    pub fn check_commit(
        &self,
        group_id: &str,
        generation: i32,
        member_id: &str,
        instance_id: Option<&str>,
    ) -> Result<(), ResponseError> {
        if group_id.is_empty() {
            return Err(ResponseError::InvalidGroupId);
        }
        let mut groups = crate::locks::lock(&self.groups);
        let Some(group) = groups.get_mut(group_id) else {
            // Kafka: a commit at generation -1 (admin tools, assign()-style consumers, and
            // consumer-protocol clients that made up their member id) creates a simple group,
            // whatever member id it names; one at a real generation names a group that is not
            return if generation < 0 {
                Ok(())
            } else {
                Err(ResponseError::IllegalGeneration)
            };
        };
        if generation < 0 && !group.has_members() {
            // an empty group takes commits from outside the group protocol
            return Ok(());
        }
        if generation < 0 && member_id.is_empty() {
            return Err(ResponseError::UnknownMemberId);
        }
        if let Some(c) = &group.consumer {
            return c.check_member(member_id, generation);
        }
        if !group.members.contains_key(member_id) {
            return Err(group.unknown(member_id, instance_id));
        }
        if generation != group.generation {
            return Err(ResponseError::IllegalGeneration);
        }
        // As Kafka: commits go through while a rebalance is being prepared (the heartbeat tells the
        // member to rejoin), but not between the join and the sync of a new generation.
        if group.state == State::CompletingRebalance {
            return Err(ResponseError::RebalanceInProgress);
        }
        if let Some(member) = group.members.get_mut(member_id) {
            member.last_heartbeat = now_instant();
        }
        Ok(())
    }

    /// Applies a committed offset (a new commit, or one replayed from `__consumer_offsets`);
    /// `None` deletes it.
    pub fn replay_offset(
        &self,
        group_id: &str,
        topic: &str,
        partition: i32,
        value: Option<CommittedOffset>,
    ) {
        let order = self.next_order();
        self.apply_offset(group_id, topic, partition, value, order);
    }

    fn next_order(&self) -> u64 {
        self.order
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    }

    /// Applies an offset written at `order`, unless a later write of the key is already in.
    fn apply_offset(
        &self,
        group_id: &str,
        topic: &str,
        partition: i32,
        value: Option<CommittedOffset>,
        order: u64,
    ) {
        let mut groups = crate::locks::lock(&self.groups);
        let key = (topic.to_string(), partition);
        if value.is_none() && !groups.contains_key(group_id) {
            return;
        }
        let group = groups
            .entry(group_id.to_string())
            .or_insert_with(Group::new);
        if group.offset_order.get(&key).is_some_and(|&o| o > order) {
            return;
        }
        group.offset_order.insert(key.clone(), order);
        match value {
            Some(v) => {
                group.offsets.insert(key, v);
            }
            None => {
                group.offsets.remove(&key);
            }
        }
    }

    pub fn offsets(&self, group_id: &str) -> BTreeMap<(String, i32), CommittedOffset> {
        let groups = crate::locks::lock(&self.groups);
        groups
            .get(group_id)
            .map(|g| g.offsets.clone())
            .unwrap_or_default()
    }

    /// Every known group, by id.
    pub fn list(&self) -> Vec<GroupListing> {
        let groups = crate::locks::lock(&self.groups);
        let mut out: Vec<_> = groups
            .iter()
            .map(|(id, g)| GroupListing {
                id: id.clone(),
                state: match &g.consumer {
                    Some(c) => c.state_name().to_string(),
                    None => g.state.name().to_string(),
                },
                protocol_type: g.protocol_type.clone().unwrap_or_default(),
                kind: if g.consumer.is_some() {
                    "consumer"
                } else {
                    "classic"
                },
            })
            .collect();
        out.sort_by(|a, b| a.id.cmp(&b.id));
        out
    }

    /// (state, protocol type, protocol, members) of a group, `None` if unknown.
    pub fn describe(&self, group_id: &str) -> Option<(State, String, String, Vec<Member>)> {
        let groups = crate::locks::lock(&self.groups);
        let g = groups.get(group_id)?;
        Some((
            g.state,
            g.protocol_type.clone().unwrap_or_default(),
            g.protocol.clone().unwrap_or_default(),
            g.members.values().cloned().collect(),
        ))
    }

    /// KIP-211: the offsets of groups that have been empty for `retention_ms` (measured from when
    /// the group became empty, or from its newest commit when that is all that is known). The
    /// caller writes tombstones for them.
    pub fn expired_offsets(
        &self,
        now_ms: i64,
        retention_ms: i64,
    ) -> Vec<(String, Vec<(String, i32)>)> {
        let groups = crate::locks::lock(&self.groups);
        let mut out = Vec::new();
        for (id, g) in groups.iter() {
            if g.has_members() || g.offsets.is_empty() {
                continue;
            }
            let newest_commit = g
                .offsets
                .values()
                .map(|o| o.commit_timestamp)
                .max()
                .unwrap_or(0);
            let since = g.empty_since_ms.unwrap_or(newest_commit).max(newest_commit);
            if now_ms.saturating_sub(since) > retention_ms {
                out.push((id.clone(), g.offsets.keys().cloned().collect()));
            }
        }
        out
    }

    /// This broker no longer coordinates the groups of `__consumer_offsets` partition `index`
    /// (of `partitions`): forgets them, answering their waiting members NOT_COORDINATOR, so it
    /// neither serves nor writes for them (their new coordinator loads them).
    pub fn unload_partition(&self, index: i32, partitions: i32) -> usize {
        let mut groups = crate::locks::lock(&self.groups);
        let ids: HashSet<String> = groups
            .keys()
            .filter(|g| super::offsets_partition(g, partitions) == index)
            .cloned()
            .collect();
        for id in &ids {
            if let Some(mut g) = groups.remove(id) {
                g.fail_waiters(ResponseError::NotCoordinator);
            }
        }
        drop(groups);
        for entries in crate::locks::lock(&self.pending_txn).values_mut() {
            entries.retain(|(g, _, _, _, _)| !ids.contains(g));
        }
        ids.len()
    }

    /// The topics any group has committed offsets for.
    pub fn offset_topics(&self) -> std::collections::HashSet<String> {
        let groups = crate::locks::lock(&self.groups);
        groups
            .values()
            .flat_map(|g| g.offsets.keys().map(|(t, _)| t.clone()))
            .collect()
    }

    /// Forgets every group's committed offsets of the deleted `topics` (and a pending
    /// transaction's, which must not resurrect them at commit); returns them per group, for
    /// tombstones. As in Kafka, a topic re-created with the same name starts with no offsets.
    pub fn remove_topic_offsets(
        &self,
        topics: &std::collections::HashSet<String>,
    ) -> Vec<GroupOffsetKeys> {
        let mut out = Vec::new();
        let mut groups = crate::locks::lock(&self.groups);
        for (id, g) in groups.iter_mut() {
            let keys: Vec<(String, i32)> = g
                .offsets
                .keys()
                .filter(|(t, _)| topics.contains(t))
                .cloned()
                .collect();
            for key in &keys {
                g.offsets.remove(key);
                g.offset_order.remove(key);
            }
            if !keys.is_empty() {
                out.push((id.clone(), keys));
            }
        }
        drop(groups);
        for entries in crate::locks::lock(&self.pending_txn).values_mut() {
            entries.retain(|(_, t, _, _, _)| !topics.contains(t));
        }
        out
    }

    /// Removes an empty group and returns its committed offsets' keys (for tombstones).
    pub fn delete(&self, group_id: &str) -> Result<Vec<(String, i32)>, ResponseError> {
        let mut groups = crate::locks::lock(&self.groups);
        let Some(group) = groups.get(group_id) else {
            return Err(ResponseError::GroupIdNotFound);
        };
        if group.has_members() {
            return Err(ResponseError::NonEmptyGroup);
        }
        let keys = group.offsets.keys().cloned().collect();
        groups.remove(group_id);
        Ok(keys)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn coordinator() -> GroupCoordinator {
        GroupCoordinator::new(GroupConfig {
            min_session_timeout_ms: 1,
            max_session_timeout_ms: 100_000,
            initial_rebalance_delay: Duration::ZERO,
            max_metadata_bytes: 100,
            consumer_session_timeout: Duration::from_secs(45),
            consumer_heartbeat_interval_ms: 5000,
            migration: MigrationPolicy {
                upgrade: true,
                downgrade: true,
            },
        })
    }

    /// A classic consumer's JoinGroup metadata: subscribed to `t`, owning `owned` of it.
    fn subscription(owned: &[i32]) -> Bytes {
        use bytes::BufMut;
        use kafka_protocol::messages::consumer_protocol_subscription::TopicPartition;
        use kafka_protocol::messages::{ConsumerProtocolSubscription, TopicName};
        use kafka_protocol::protocol::{Encodable, StrBytes};
        let s = ConsumerProtocolSubscription::default()
            .with_topics(vec![StrBytes::from_static_str("t")])
            .with_owned_partitions(vec![TopicPartition::default()
                .with_topic(TopicName(StrBytes::from_static_str("t")))
                .with_partitions(owned.to_vec())]);
        let mut out = bytes::BytesMut::new();
        out.put_i16(1);
        s.encode(&mut out, 1).unwrap();
        out.freeze()
    }

    fn classic_join(member_id: &str, owned: &[i32]) -> MemberRequest {
        MemberRequest {
            group_id: "g".into(),
            member_id: member_id.into(),
            instance_id: None,
            client_id: "classic".into(),
            client_host: "/127.0.0.1".into(),
            session_timeout_ms: 10_000,
            rebalance_timeout_ms: 10_000,
            protocol_type: "consumer".into(),
            protocols: vec![("cooperative-sticky".into(), subscription(owned))],
            require_known_member_id: false,
            supports_skip_assignment: false,
        }
    }

    #[tokio::test]
    async fn a_live_classic_group_upgrades_to_the_consumer_protocol_and_back() {
        let topic = uuid::Uuid::from_u128(7);
        let topics: Topics = [("t".to_string(), (topic, 4))].into();
        let g = coordinator();
        let c1 = g.join(classic_join("", &[]), &topics).await;
        assert_eq!(c1.generation, 1);
        let all: super::super::assignor::Assignment = (0..4).map(|p| (topic, p)).collect();
        let everything = embedded::encode_assignment(&all, &topics, 1);
        let sync = g
            .sync(
                "g",
                1,
                &c1.member_id,
                None,
                vec![(c1.member_id.clone(), everything)],
                &topics,
            )
            .await;
        assert_eq!(sync.error, 0);

        // a consumer-protocol member joins the live classic group: it becomes a consumer group
        let join = ConsumerHeartbeat {
            member_id: "n1".into(),
            member_epoch: 0,
            rebalance_timeout_ms: 10_000,
            subscribed_topic_names: Some(vec!["t".into()]),
            owned: Some(Default::default()),
            ..ConsumerHeartbeat::default()
        };
        let n1 = g.consumer_heartbeat("g", &join, &topics).unwrap();
        assert_eq!(n1.member_epoch, 2);
        assert_eq!(
            n1.assignment,
            Some(Default::default()),
            "c1 still owns everything"
        );
        // the classic member is told to rejoin, gives up half, then is at the new epoch
        let rebalancing = ResponseError::RebalanceInProgress.code();
        assert_eq!(g.heartbeat("g", 1, &c1.member_id, None), rebalancing);
        let rejoin = g
            .join(classic_join(&c1.member_id, &[0, 1, 2, 3]), &topics)
            .await;
        assert_eq!(
            (rejoin.error, rejoin.generation, rejoin.leader.as_str()),
            (0, 1, "")
        );
        let kept = g.sync("g", 1, &c1.member_id, None, vec![], &topics).await;
        let kept = embedded::decode_assignment(&kept.assignment, &topics);
        assert_eq!(kept.len(), 2);
        let owned: Vec<i32> = kept.iter().map(|(_, p)| *p).collect();
        let rejoin = g.join(classic_join(&c1.member_id, &owned), &topics).await;
        assert_eq!(rejoin.generation, 2);
        assert_eq!(g.heartbeat("g", 2, &c1.member_id, None), 0);
        // the released half goes to the consumer-protocol member
        let beat = ConsumerHeartbeat {
            member_id: "n1".into(),
            member_epoch: 2,
            owned: Some(Default::default()),
            rebalance_timeout_ms: -1,
            ..ConsumerHeartbeat::default()
        };
        let n1 = g.consumer_heartbeat("g", &beat, &topics).unwrap();
        let n1_owned = n1.assignment.unwrap();
        assert_eq!(n1_owned.len(), 2);
        assert!(n1_owned.is_disjoint(&kept));
        // a commit at the classic member's generation is accepted
        assert_eq!(g.check_commit("g", 2, &c1.member_id, None), Ok(()));
        // a new classic member joins the consumer-protocol group with the id it was given
        let mut fresh = classic_join("", &[]);
        fresh.require_known_member_id = true;
        let required = g.join(fresh, &topics).await;
        assert_eq!(required.error, ResponseError::MemberIdRequired.code());
        let mut other_assignor = classic_join(&required.member_id, &[]);
        other_assignor.protocols[0].0 = "roundrobin".into();
        let refused = g.join(other_assignor, &topics).await;
        assert_eq!(
            refused.error,
            ResponseError::InconsistentGroupProtocol.code()
        );
        let c2 = g
            .join(classic_join(&required.member_id, &[]), &topics)
            .await;
        assert_eq!((c2.error, c2.leader.as_str()), (0, ""));
        assert_eq!(g.leave("g", &c2.member_id, None), 0);

        // the last consumer-protocol member leaves: the group is classic again and rebalances
        let leave = ConsumerHeartbeat {
            member_id: "n1".into(),
            member_epoch: super::super::consumer::LEAVE_EPOCH,
            ..ConsumerHeartbeat::default()
        };
        g.consumer_heartbeat("g", &leave, &topics).unwrap();
        assert!(g.consumer_group("g").is_none());
        // (epochs: c2's join and leave, then n1's leave)
        assert_eq!(g.heartbeat("g", 5, &c1.member_id, None), rebalancing);
        let back = g.join(classic_join(&c1.member_id, &owned), &topics).await;
        assert_eq!((back.error, back.leader.clone()), (0, c1.member_id.clone()));
        assert_eq!(back.generation, 6);
    }

    fn offset_at(commit_timestamp: i64) -> CommittedOffset {
        offset(commit_timestamp)
    }

    fn offset(commit_timestamp: i64) -> CommittedOffset {
        CommittedOffset {
            offset: 1,
            leader_epoch: -1,
            metadata: String::new(),
            commit_timestamp,
        }
    }

    #[test]
    fn a_transaction_committing_late_does_not_replace_a_newer_offset() {
        let c = coordinator();
        let at = |offset| CommittedOffset {
            offset,
            ..offset_at(0)
        };
        c.add_txn_offsets(
            7,
            "g",
            vec![("t".into(), 0, at(100)), ("t".into(), 1, at(100))],
        );
        c.replay_offset("g", "t", 0, Some(at(500))); // a plain commit after the transaction's
        c.complete_txn_offsets(7, true);
        let offsets = c.offsets("g");
        assert_eq!(
            offsets[&("t".to_string(), 0)].offset,
            500,
            "the newer commit stands"
        );
        assert_eq!(
            offsets[&("t".to_string(), 1)].offset,
            100,
            "the transaction's own offset lands"
        );
        c.add_txn_offsets(8, "g", vec![("t".into(), 1, at(7))]);
        c.complete_txn_offsets(8, false);
        assert_eq!(
            c.offsets("g")[&("t".to_string(), 1)].offset,
            100,
            "aborted offsets vanish"
        );
    }

    #[test]
    fn offsets_of_long_empty_groups_expire() {
        let c = coordinator();
        c.replay_offset("old", "t", 0, Some(offset(1_000)));
        c.replay_offset("old", "t", 1, Some(offset(5_000)));
        c.replay_offset("recent", "t", 0, Some(offset(50_000)));
        // retention 10 s at t = 20 s: "old" (newest commit at 5 s) expires, "recent" stays
        let expired = c.expired_offsets(20_000, 10_000);
        assert_eq!(
            expired,
            vec![(
                "old".to_string(),
                vec![("t".to_string(), 0), ("t".to_string(), 1)]
            )]
        );
        assert!(c
            .expired_offsets(55_000, 10_000)
            .iter()
            .all(|(g, _)| g != "recent"));
        assert_eq!(c.expired_offsets(61_000, 10_000).len(), 2);
    }

    #[test]
    fn a_group_config_session_timeout_applies_to_that_group_alone() {
        let c = coordinator();
        c.set_group_configs(HashMap::from([(
            "short".to_string(),
            GroupTiming {
                session_timeout: Some(Duration::from_millis(1)),
                heartbeat_interval_ms: Some(700),
            },
        )]));
        let topics: crate::group::assignor::Topics =
            [("t".to_string(), (uuid::Uuid::from_u128(1), 1))].into();
        for group in ["short", "long"] {
            let join = ConsumerHeartbeat {
                member_id: "m".into(),
                member_epoch: 0,
                rebalance_timeout_ms: 30_000,
                subscribed_topic_names: Some(vec!["t".into()]),
                owned: Some(Default::default()),
                ..ConsumerHeartbeat::default()
            };
            c.consumer_heartbeat(group, &join, &topics).unwrap();
        }
        assert_eq!(c.consumer_heartbeat_interval_ms("short"), 700);
        assert_eq!(c.consumer_heartbeat_interval_ms("long"), 5000);
        std::thread::sleep(Duration::from_millis(20));
        c.tick();
        let members = |g: &str| c.consumer_group(g).map_or(0, |g| g.members.len());
        assert_eq!((members("short"), members("long")), (0, 1));
    }
}
