//! Consumer groups of the consumer protocol (KIP-848): the coordinator computes a target
//! assignment with a server-side assignor whenever the group epoch moves (a member joins,
//! leaves or changes its subscription, or a subscribed topic changes), and walks each member
//! to its target through ConsumerGroupHeartbeat: partitions to give up are revoked first, and a
//! partition is handed to its new owner only once the previous owner has released it.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use tokio::time::Instant;

use kafka_protocol::ResponseError;

use super::assignor::{self, Assignment, AssignorMember, Topics, Tp};

/// Member epoch in a request that leaves the group.
pub const LEAVE_EPOCH: i32 = -1;
/// Member epoch in a request by a static member that will come back.
pub const STATIC_LEAVE_EPOCH: i32 = -2;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberState {
    /// The member owns its target assignment (or is on its way, nothing blocking).
    Stable,
    /// The member must first give up `pending_revocation`.
    UnrevokedPartitions,
    /// The member waits for partitions that other members still own.
    UnreleasedPartitions,
}

#[derive(Debug, Clone)]
pub struct ConsumerMember {
    pub id: String,
    pub instance_id: Option<String>,
    pub rack_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub epoch: i32,
    pub previous_epoch: i32,
    pub state: MemberState,
    pub subscribed_names: BTreeSet<String>,
    pub subscribed_regex: Option<String>,
    regex: Option<regex::Regex>,
    /// Which of the topics `regex` matches the member may see (the principal of the heartbeat
    /// that set the regex); `None`: every one.
    regex_filter: Option<TopicFilter>,
    pub server_assignor: Option<String>,
    pub rebalance_timeout: Duration,
    /// Partitions the member owns now.
    pub assigned: Assignment,
    /// Partitions the member was asked to give up and has not yet.
    pub pending_revocation: Assignment,
    /// A static member that left with epoch -2: kept, with its partitions, until its session
    /// runs out or its instance comes back.
    pub left_static: bool,
    /// Set for a member that speaks the classic protocol (JoinGroup / SyncGroup / Heartbeat)
    /// in this group: KIP-848 online migration.
    pub classic: Option<ClassicMember>,
    last_heartbeat: Instant,
    revoke_by: Option<Instant>,
}

/// What a classic-protocol member of a consumer-protocol group keeps of its JoinGroup.
#[derive(Debug, Clone)]
pub struct ClassicMember {
    pub session_timeout: Duration,
    /// (protocol name, metadata) by the member's preference.
    pub protocols: Vec<(String, bytes::Bytes)>,
}

/// A classic member as it enters a consumer-protocol group: a classic JoinGroup, decoded, or
/// a member of a classic group that upgrades.
#[derive(Debug, Clone)]
pub struct ClassicJoin {
    pub member_id: String,
    /// The member joined without an id (one was made up for it): a static member's restart.
    pub new_id: bool,
    pub instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub rebalance_timeout: Duration,
    pub subscribed: BTreeSet<String>,
    /// What the member says it still owns (for an upgrade: its classic assignment).
    pub owned: Assignment,
    pub rack_id: Option<String>,
    pub classic: ClassicMember,
}

impl ConsumerMember {
    fn new(id: String, now: Instant) -> ConsumerMember {
        ConsumerMember {
            id,
            instance_id: None,
            rack_id: None,
            client_id: String::new(),
            client_host: String::new(),
            epoch: 0,
            previous_epoch: 0,
            state: MemberState::Stable,
            subscribed_names: BTreeSet::new(),
            subscribed_regex: None,
            regex: None,
            regex_filter: None,
            server_assignor: None,
            rebalance_timeout: Duration::from_secs(300),
            assigned: Assignment::new(),
            pending_revocation: Assignment::new(),
            left_static: false,
            classic: None,
            last_heartbeat: now,
            revoke_by: None,
        }
    }

    /// The topics (that exist) this member subscribes to, by name or by regex (internal topics
    /// too when the regex matches them, as in Kafka).
    fn subscribed<'a>(&'a self, topics: &'a Topics) -> impl Iterator<Item = &'a String> + 'a {
        topics.keys().filter(move |name| {
            self.subscribed_names.contains(*name)
                || (self.regex.as_ref().is_some_and(|r| r.is_match(name))
                    && self.regex_filter.as_ref().is_none_or(|f| (f.0)(name)))
        })
    }
}

/// A ConsumerGroupHeartbeat, decoded.
#[derive(Debug, Clone, Default)]
pub struct ConsumerHeartbeat {
    pub member_id: String,
    pub member_epoch: i32,
    pub instance_id: Option<String>,
    pub rack_id: Option<String>,
    pub rebalance_timeout_ms: i32,
    pub subscribed_topic_names: Option<Vec<String>>,
    pub subscribed_topic_regex: Option<String>,
    pub server_assignor: Option<String>,
    pub owned: Option<Assignment>,
    pub client_id: String,
    pub client_host: String,
    /// Which topics a regex subscription may take in (the authorizer's DESCRIBE).
    pub regex_filter: Option<TopicFilter>,
}

/// Whether a topic may be seen; the group's coordinator keeps the one of a member's regex.
#[derive(Clone)]
pub struct TopicFilter(pub std::sync::Arc<dyn Fn(&str) -> bool + Send + Sync>);

impl std::fmt::Debug for TopicFilter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TopicFilter")
    }
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct HeartbeatOutcome {
    pub member_id: String,
    pub member_epoch: i32,
    /// Sent when it changed, or when the member needs the whole picture.
    pub assignment: Option<Assignment>,
}

pub type HeartbeatError = (ResponseError, String);

#[derive(Debug, Clone, Default)]
pub struct ConsumerGroup {
    pub epoch: i32,
    pub assignment_epoch: i32,
    pub members: BTreeMap<String, ConsumerMember>,
    pub target: BTreeMap<String, Assignment>,
    pub assignor: String,
    /// The subscribed topics the current target was computed from.
    subscribed_topics: Topics,
}

impl ConsumerGroup {
    pub fn state_name(&self) -> &'static str {
        if self.members.is_empty() {
            "Empty"
        } else if self.epoch > self.assignment_epoch {
            "Assigning"
        } else if self.members.values().any(|m| {
            !m.left_static && (m.epoch != self.assignment_epoch || m.state != MemberState::Stable)
        }) {
            "Reconciling"
        } else {
            "Stable"
        }
    }

    /// Handles one heartbeat at `now`, with `topics` every topic that exists.
    pub fn heartbeat(
        &mut self,
        req: &ConsumerHeartbeat,
        topics: &Topics,
        default_assignor: &str,
        now: Instant,
    ) -> Result<HeartbeatOutcome, HeartbeatError> {
        if req.member_epoch == LEAVE_EPOCH || req.member_epoch == STATIC_LEAVE_EPOCH {
            return self.leave(req, topics, default_assignor);
        }
        if let Some(a) = &req.server_assignor {
            if !assignor::ASSIGNORS.contains(&a.as_str()) {
                return Err((
                    ResponseError::UnsupportedAssignor,
                    format!(
                        "ServerAssignor {a} is not supported. Supported assignors: uniform, range."
                    ),
                ));
            }
        }
        let regex = match req.subscribed_topic_regex.as_deref() {
            Some(r) if !r.is_empty() => {
                Some(regex::Regex::new(&format!("^(?:{r})$")).map_err(|e| {
                    (
                        ResponseError::InvalidRegularExpression,
                        format!(
                            "SubscribedTopicRegex `{r}` is not a valid regular expression: {e}"
                        ),
                    )
                })?)
            }
            _ => None,
        };
        let mut bump = false;
        let member_id = if req.member_epoch == 0 {
            if req.subscribed_topic_names.is_none() && req.subscribed_topic_regex.is_none() {
                return Err((
                    ResponseError::InvalidRequest,
                    "SubscribedTopicNames or SubscribedTopicRegex must be set in the first request."
                        .into(),
                ));
            }
            let id = if req.member_id.is_empty() {
                uuid::Uuid::new_v4().to_string()
            } else {
                req.member_id.clone()
            };
            bump = self.join(&id, req.instance_id.as_deref(), now)?;
            id
        } else {
            let Some(m) = self.members.get(&req.member_id) else {
                return Err((
                    ResponseError::UnknownMemberId,
                    format!("Member {} is not a member of the group.", req.member_id),
                ));
            };
            let retried = req.member_epoch == m.previous_epoch
                && req.owned.as_ref().is_some_and(|o| *o == m.assigned);
            if req.member_epoch > m.epoch || (req.member_epoch < m.epoch && !retried) {
                return Err((
                    ResponseError::FencedMemberEpoch,
                    format!(
                        "The member epoch {} does not match the expected member epoch {}.",
                        req.member_epoch, m.epoch
                    ),
                ));
            }
            req.member_id.clone()
        };
        let m = self
            .members
            .get_mut(&member_id)
            .expect("member just checked");
        m.last_heartbeat = now;
        m.client_id = req.client_id.clone();
        m.client_host = req.client_host.clone();
        if req.instance_id.is_some() {
            m.instance_id = req.instance_id.clone();
        }
        if req.rack_id.is_some() {
            m.rack_id = req.rack_id.clone();
        }
        if req.rebalance_timeout_ms >= 0 {
            m.rebalance_timeout = Duration::from_millis(req.rebalance_timeout_ms as u64);
        }
        if let Some(names) = &req.subscribed_topic_names {
            let names: BTreeSet<String> = names.iter().cloned().collect();
            bump |= names != m.subscribed_names;
            m.subscribed_names = names;
        }
        if let Some(r) = &req.subscribed_topic_regex {
            let r = (!r.is_empty()).then(|| r.clone());
            bump |= r != m.subscribed_regex;
            m.subscribed_regex = r;
            m.regex = regex;
            m.regex_filter = req.regex_filter.clone();
        }
        if req.server_assignor.is_some() && req.server_assignor != m.server_assignor {
            m.server_assignor = req.server_assignor.clone();
            bump = true;
        }
        if bump {
            self.epoch += 1;
        }
        self.refresh(topics, default_assignor);
        let before = self.members[&member_id].assigned.clone();
        self.reconcile(&member_id, req.owned.as_ref(), now);
        let m = &self.members[&member_id];
        let full = req.member_epoch == 0
            || req.owned.as_ref().is_some_and(|o| *o != m.assigned)
            || before != m.assigned;
        Ok(HeartbeatOutcome {
            member_id,
            member_epoch: m.epoch,
            assignment: full.then(|| m.assigned.clone()),
        })
    }

    /// A member (re)joins with epoch 0 under `id`; true if the group has a new member.
    fn join(
        &mut self,
        id: &str,
        instance: Option<&str>,
        now: Instant,
    ) -> Result<bool, HeartbeatError> {
        if let Some(instance) = instance {
            let holder = self
                .members
                .values()
                .find(|m| m.instance_id.as_deref() == Some(instance) && m.id != id)
                .map(|m| (m.id.clone(), m.left_static));
            match holder {
                Some((old, true)) => {
                    // KIP-848 static membership: the instance comes back under a new member id
                    // and takes over its partitions and epoch, without a rebalance
                    let mut m = self.members.remove(&old).expect("holder exists");
                    m.id = id.to_string();
                    m.left_static = false;
                    m.last_heartbeat = now;
                    if let Some(t) = self.target.remove(&old) {
                        self.target.insert(id.to_string(), t);
                    }
                    self.members.insert(id.to_string(), m);
                    return Ok(false);
                }
                Some((_, false)) => {
                    return Err((
                        ResponseError::UnreleasedInstanceId,
                        format!("Static member with instance id {instance} is still in the group."),
                    ))
                }
                None => {}
            }
        }
        let new = !self.members.contains_key(id);
        let m = self
            .members
            .entry(id.to_string())
            .or_insert_with(|| ConsumerMember::new(id.to_string(), now));
        // a known member joining again has lost its partitions
        m.epoch = 0;
        m.previous_epoch = 0;
        m.state = MemberState::Stable;
        m.assigned.clear();
        m.pending_revocation.clear();
        m.left_static = false;
        m.revoke_by = None;
        Ok(new)
    }

    fn leave(
        &mut self,
        req: &ConsumerHeartbeat,
        topics: &Topics,
        default_assignor: &str,
    ) -> Result<HeartbeatOutcome, HeartbeatError> {
        let id = if self.members.contains_key(&req.member_id) {
            req.member_id.clone()
        } else if let Some(m) = req.instance_id.as_deref().and_then(|i| {
            self.members
                .values()
                .find(|m| m.instance_id.as_deref() == Some(i))
        }) {
            m.id.clone()
        } else {
            return Err((
                ResponseError::UnknownMemberId,
                format!("Member {} is not a member of the group.", req.member_id),
            ));
        };
        let static_leave = req.member_epoch == STATIC_LEAVE_EPOCH;
        let m = self.members.get_mut(&id).expect("member found");
        if static_leave && m.instance_id.is_some() {
            m.left_static = true;
        } else {
            self.remove(&id);
            self.refresh(topics, default_assignor);
        }
        Ok(HeartbeatOutcome {
            member_id: id,
            member_epoch: req.member_epoch,
            assignment: None,
        })
    }

    /// Drops a member (it left, its session ran out, or it did not revoke in time). The next
    /// heartbeat computes the new target assignment.
    pub fn remove(&mut self, id: &str) {
        if self.members.remove(id).is_some() {
            self.target.remove(id);
            self.epoch += 1;
        }
    }

    /// Recomputes the target assignment if the group epoch moved or subscribed topics changed.
    fn refresh(&mut self, topics: &Topics, default_assignor: &str) {
        let names: BTreeSet<&String> = self
            .members
            .values()
            .flat_map(|m| m.subscribed(topics))
            .collect();
        let subscribed: Topics = names.into_iter().map(|n| (n.clone(), topics[n])).collect();
        if subscribed != self.subscribed_topics {
            self.subscribed_topics = subscribed;
            if self.epoch <= self.assignment_epoch {
                self.epoch = self.assignment_epoch + 1;
            }
        }
        if self.epoch <= self.assignment_epoch {
            return;
        }
        // the assignor most members ask for, else the default
        let mut votes: BTreeMap<&str, usize> = BTreeMap::new();
        for m in self.members.values() {
            if let Some(a) = &m.server_assignor {
                *votes.entry(a).or_default() += 1;
            }
        }
        self.assignor = votes
            .into_iter()
            .max_by_key(|(name, n)| (*n, std::cmp::Reverse(*name)))
            .map(|(name, _)| name.to_string())
            .unwrap_or_else(|| default_assignor.to_string());
        let subscriptions: Vec<(String, BTreeSet<String>)> = self
            .members
            .values()
            .map(|m| (m.id.clone(), m.subscribed(topics).cloned().collect()))
            .collect();
        let empty = Assignment::new();
        let inputs: Vec<AssignorMember> = subscriptions
            .iter()
            .map(|(id, subs)| AssignorMember {
                id,
                topics: subs,
                previous: self.target.get(id).unwrap_or(&empty),
            })
            .collect();
        self.target = assignor::assign(&self.assignor, &inputs, &self.subscribed_topics);
        self.assignment_epoch = self.epoch;
    }

    /// Whether a member other than `id` still owns `tp`.
    fn owned_by_other(&self, id: &str, tp: &Tp) -> bool {
        self.members
            .values()
            .any(|m| m.id != id && (m.assigned.contains(tp) || m.pending_revocation.contains(tp)))
    }

    /// Moves a member one step towards its target assignment.
    fn reconcile(&mut self, id: &str, owned: Option<&Assignment>, now: Instant) {
        let target = self.target.get(id).cloned().unwrap_or_default();
        let target_epoch = self.assignment_epoch;
        let Some(m) = self.members.get(id) else {
            return;
        };
        match m.state {
            MemberState::UnrevokedPartitions => {
                let released = owned.is_some_and(|o| o.is_disjoint(&m.pending_revocation));
                if !released {
                    return;
                }
            }
            MemberState::Stable if m.epoch == target_epoch && m.assigned == target => return,
            _ => {}
        }
        // partitions to give up come first; new ones only once no one else owns them
        let revoke: Assignment = m.assigned.difference(&target).copied().collect();
        let wanted: Vec<Tp> = target.difference(&m.assigned).copied().collect();
        let free: Vec<Tp> = wanted
            .iter()
            .filter(|tp| !self.owned_by_other(id, tp))
            .copied()
            .collect();
        let m = self.members.get_mut(id).expect("member exists");
        if !revoke.is_empty() {
            m.assigned.retain(|tp| target.contains(tp));
            m.pending_revocation = revoke;
            m.state = MemberState::UnrevokedPartitions;
            m.revoke_by = Some(now + m.rebalance_timeout);
            return;
        }
        m.pending_revocation.clear();
        m.revoke_by = None;
        m.assigned.extend(free.iter().copied());
        if m.epoch != target_epoch {
            m.previous_epoch = m.epoch;
            m.epoch = target_epoch;
        }
        m.state = if free.len() < wanted.len() {
            MemberState::UnreleasedPartitions
        } else {
            MemberState::Stable
        };
    }

    /// Members to drop at `now`: sessions that ran out (a classic member's own session
    /// timeout, else the group's) and revocations that took too long.
    pub fn expired(&self, now: Instant, session_timeout: Duration) -> Vec<String> {
        self.members
            .values()
            .filter(|m| {
                let session = m
                    .classic
                    .as_ref()
                    .map_or(session_timeout, |c| c.session_timeout);
                now.duration_since(m.last_heartbeat) > session
                    || m.revoke_by.is_some_and(|t| now > t)
            })
            .map(|m| m.id.clone())
            .collect()
    }

    /// Checks an offset commit (or a fetch, with `fetch`) made by a member at `epoch`; a
    /// classic member hears the classic protocol's error.
    pub fn check_member(&self, member_id: &str, epoch: i32) -> Result<(), ResponseError> {
        let Some(m) = self.members.get(member_id) else {
            return Err(ResponseError::UnknownMemberId);
        };
        if epoch != m.epoch {
            return Err(if m.classic.is_some() {
                ResponseError::IllegalGeneration
            } else {
                ResponseError::StaleMemberEpoch
            });
        }
        Ok(())
    }

    /// The subscribed topics the current target was computed from.
    pub fn subscribed_topics(&self) -> &Topics {
        &self.subscribed_topics
    }

    /// Whether every member speaks the classic protocol.
    pub fn all_classic(&self) -> bool {
        self.members.values().all(|m| m.classic.is_some())
    }

    /// The consumer-protocol group a classic group at `generation` becomes (KIP-848 online
    /// upgrade): every member keeps its partitions, which are also its target, at the classic
    /// generation; the joining member's heartbeat then moves the group on.
    pub fn from_classic(
        generation: i32,
        members: impl IntoIterator<Item = ClassicJoin>,
        now: Instant,
    ) -> ConsumerGroup {
        let mut g = ConsumerGroup {
            epoch: generation,
            assignment_epoch: generation,
            ..ConsumerGroup::default()
        };
        for u in members {
            let mut m = ConsumerMember::new(u.member_id.clone(), now);
            m.instance_id = u.instance_id;
            m.client_id = u.client_id;
            m.client_host = u.client_host;
            m.rebalance_timeout = u.rebalance_timeout;
            m.subscribed_names = u.subscribed;
            m.rack_id = u.rack_id;
            m.epoch = generation;
            m.previous_epoch = generation;
            m.assigned = u.owned.clone();
            m.classic = Some(u.classic);
            g.target.insert(u.member_id.clone(), u.owned);
            g.members.insert(u.member_id, m);
        }
        g
    }

    /// Finds the member a classic request names, by instance id when it has one.
    fn classic_member(
        &self,
        member_id: &str,
        instance_id: Option<&str>,
    ) -> Result<&ConsumerMember, ResponseError> {
        let m = match instance_id {
            Some(i) => self
                .members
                .values()
                .find(|m| m.instance_id.as_deref() == Some(i)),
            None => self.members.get(member_id),
        }
        .ok_or(ResponseError::UnknownMemberId)?;
        if m.id != member_id {
            return Err(ResponseError::FencedInstanceId);
        }
        if m.classic.is_none() {
            return Err(ResponseError::UnknownMemberId);
        }
        Ok(m)
    }

    /// A classic JoinGroup: the member's subscription and owned partitions come from its
    /// metadata, it is moved towards its target at once, and the answer is its member epoch
    /// (the generation it syncs with). There is no leader: the assignor runs here.
    pub fn classic_join(
        &mut self,
        join: ClassicJoin,
        topics: &Topics,
        default_assignor: &str,
        now: Instant,
    ) -> Result<i32, HeartbeatError> {
        let id = join.member_id.clone();
        // as Kafka: the classic members must keep a protocol in common, so the group can
        // become classic again
        let others: Vec<&ClassicMember> = self
            .members
            .values()
            .filter(|m| m.id != id)
            .filter_map(|m| m.classic.as_ref())
            .collect();
        let shared = join.classic.protocols.iter().any(|(name, _)| {
            others
                .iter()
                .all(|o| o.protocols.iter().any(|(n, _)| n == name))
        });
        if !shared {
            return Err((
                ResponseError::InconsistentGroupProtocol,
                format!("Member {id} shares no protocol with the group's classic members."),
            ));
        }
        let holder = join.instance_id.as_deref().and_then(|i| {
            self.members
                .values()
                .find(|m| m.instance_id.as_deref() == Some(i))
                .map(|m| m.id.clone())
        });
        match holder {
            Some(old) if old != id && join.new_id => {
                // a restarted static member takes over its instance's partitions and epoch
                let mut m = self.members.remove(&old).expect("holder exists");
                m.id = id.clone();
                m.left_static = false;
                if let Some(t) = self.target.remove(&old) {
                    self.target.insert(id.clone(), t);
                }
                self.members.insert(id.clone(), m);
            }
            Some(old) if old != id => {
                return Err((
                    ResponseError::FencedInstanceId,
                    format!(
                        "Static member {id} with instance id {:?} is fenced.",
                        join.instance_id
                    ),
                ));
            }
            // as Kafka: an unknown member id joins (it is the one MEMBER_ID_REQUIRED gave out)
            _ => {}
        }
        let new = !self.members.contains_key(&id);
        let m = self
            .members
            .entry(id.clone())
            .or_insert_with(|| ConsumerMember::new(id.clone(), now));
        if m.classic.is_none() && !new {
            return Err((
                ResponseError::UnknownMemberId,
                format!("Member {id} uses the consumer protocol, not the classic one."),
            ));
        }
        let bump = new || m.subscribed_names != join.subscribed;
        m.subscribed_names = join.subscribed;
        m.subscribed_regex = None;
        m.regex = None;
        m.regex_filter = None;
        m.server_assignor = None;
        m.instance_id = join.instance_id;
        m.client_id = join.client_id;
        m.client_host = join.client_host;
        m.rebalance_timeout = join.rebalance_timeout;
        if join.rack_id.is_some() {
            m.rack_id = join.rack_id;
        }
        m.classic = Some(join.classic);
        m.last_heartbeat = now;
        // what the member no longer reports owning, it has given up (an eager member rejoins
        // owning nothing)
        m.assigned.retain(|tp| join.owned.contains(tp));
        if bump {
            self.epoch += 1;
        }
        self.refresh(topics, default_assignor);
        self.reconcile(&id, Some(&join.owned), now);
        Ok(self.members[&id].epoch)
    }

    /// A classic SyncGroup: the member's assigned partitions, once it is at `generation` and
    /// not behind a newer group epoch; with the version of its subscription.
    pub fn classic_sync(
        &self,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
    ) -> Result<(Assignment, i16, String), ResponseError> {
        let m = self.classic_member(member_id, instance_id)?;
        if generation != m.epoch {
            return Err(ResponseError::IllegalGeneration);
        }
        if self.epoch > m.epoch && m.state != MemberState::UnrevokedPartitions {
            return Err(ResponseError::RebalanceInProgress);
        }
        let (protocol, metadata) = m
            .classic
            .as_ref()
            .and_then(|c| c.protocols.first().cloned())
            .unwrap_or_default();
        Ok((
            m.assigned.clone(),
            super::embedded::subscription_version(&metadata),
            protocol,
        ))
    }

    /// A classic Heartbeat: REBALANCE_IN_PROGRESS when the member must rejoin (the group
    /// moved to a new epoch, it has partitions to give up, or partitions it waits for are
    /// free now).
    pub fn classic_heartbeat(
        &mut self,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
        now: Instant,
    ) -> Result<(), ResponseError> {
        let m = self.classic_member(member_id, instance_id)?;
        if generation != m.epoch {
            return Err(ResponseError::IllegalGeneration);
        }
        let waiting = self
            .target
            .get(member_id)
            .into_iter()
            .flatten()
            .filter(|tp| !m.assigned.contains(tp))
            .any(|tp| self.owned_by_other(member_id, tp));
        let rejoin = m.epoch < self.epoch
            || m.state == MemberState::UnrevokedPartitions
            || (m.state == MemberState::UnreleasedPartitions && !waiting);
        if let Some(m) = self.members.get_mut(member_id) {
            m.last_heartbeat = now;
        }
        if rejoin {
            return Err(ResponseError::RebalanceInProgress);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn topics() -> Topics {
        [("t".to_string(), (uuid::Uuid::from_u128(7), 4))].into()
    }

    fn join(id: &str) -> ConsumerHeartbeat {
        ConsumerHeartbeat {
            member_id: id.into(),
            member_epoch: 0,
            rebalance_timeout_ms: 30_000,
            subscribed_topic_names: Some(vec!["t".into()]),
            owned: Some(Assignment::new()),
            ..ConsumerHeartbeat::default()
        }
    }

    fn beat(id: &str, epoch: i32, owned: &Assignment) -> ConsumerHeartbeat {
        ConsumerHeartbeat {
            member_id: id.into(),
            member_epoch: epoch,
            rebalance_timeout_ms: -1,
            owned: Some(owned.clone()),
            ..ConsumerHeartbeat::default()
        }
    }

    #[test]
    fn a_second_member_gets_partitions_only_after_the_first_revokes_them() {
        let (t, now) = (topics(), Instant::now());
        let mut g = ConsumerGroup::default();
        let a = g.heartbeat(&join("a"), &t, "uniform", now).unwrap();
        let a_owned = a.assignment.clone().unwrap();
        assert_eq!(a_owned.len(), 4);
        assert_eq!(a.member_epoch, 1);

        let b = g.heartbeat(&join("b"), &t, "uniform", now).unwrap();
        assert_eq!(b.member_epoch, 2, "b is at the new epoch");
        assert!(b.assignment.unwrap().is_empty(), "a still owns everything");
        assert_eq!(g.state_name(), "Reconciling");

        // a is told to keep only two; its epoch stays until it has revoked the others
        let a2 = g
            .heartbeat(&beat("a", 1, &a_owned), &t, "uniform", now)
            .unwrap();
        let kept = a2.assignment.unwrap();
        assert_eq!((kept.len(), a2.member_epoch), (2, 1));
        // a acknowledges the revocation by reporting only what it kept
        let a3 = g
            .heartbeat(&beat("a", 1, &kept), &t, "uniform", now)
            .unwrap();
        assert_eq!(a3.member_epoch, 2);
        // now b gets the two released partitions
        let b2 = g
            .heartbeat(&beat("b", 2, &Assignment::new()), &t, "uniform", now)
            .unwrap();
        let b_owned = b2.assignment.unwrap();
        assert_eq!(b_owned.len(), 2);
        assert!(b_owned.is_disjoint(&kept));
        assert_eq!(g.state_name(), "Stable");
    }

    #[test]
    fn epochs_are_fenced_and_leaving_frees_partitions() {
        let (t, now) = (topics(), Instant::now());
        let mut g = ConsumerGroup::default();
        g.heartbeat(&join("a"), &t, "uniform", now).unwrap();
        let err = g.heartbeat(&beat("a", 5, &Assignment::new()), &t, "uniform", now);
        assert_eq!(err.unwrap_err().0, ResponseError::FencedMemberEpoch);
        let err = g.heartbeat(&beat("zz", 1, &Assignment::new()), &t, "uniform", now);
        assert_eq!(err.unwrap_err().0, ResponseError::UnknownMemberId);
        g.heartbeat(&join("b"), &t, "uniform", now).unwrap();
        let leave = ConsumerHeartbeat {
            member_id: "a".into(),
            member_epoch: LEAVE_EPOCH,
            ..ConsumerHeartbeat::default()
        };
        assert_eq!(
            g.heartbeat(&leave, &t, "uniform", now)
                .unwrap()
                .member_epoch,
            -1
        );
        let b = g
            .heartbeat(&beat("b", 2, &Assignment::new()), &t, "uniform", now)
            .unwrap();
        assert_eq!(
            b.assignment.unwrap().len(),
            4,
            "b takes over all of a's partitions"
        );
    }

    #[test]
    fn a_regex_subscription_follows_the_topics_that_match() {
        let now = Instant::now();
        let mut t = topics();
        let mut g = ConsumerGroup::default();
        let by_regex = ConsumerHeartbeat {
            subscribed_topic_names: None,
            subscribed_topic_regex: Some("t|u.*".into()),
            ..join("a")
        };
        let a = g.heartbeat(&by_regex, &t, "uniform", now).unwrap();
        assert_eq!(a.assignment.as_ref().map(|a| a.len()), Some(4));
        // a new matching topic joins the subscription at the next heartbeat
        t.insert("u1".into(), (uuid::Uuid::from_u128(8), 2));
        t.insert("v".into(), (uuid::Uuid::from_u128(9), 2));
        let owned = a.assignment.unwrap();
        let a = g
            .heartbeat(&beat("a", 1, &owned), &t, "uniform", now)
            .unwrap();
        assert_eq!(
            (a.member_epoch, a.assignment.map(|a| a.len())),
            (2, Some(6))
        );
    }

    #[test]
    fn a_regex_subscription_takes_in_only_the_topics_its_filter_lets_through() {
        let now = Instant::now();
        let mut t = topics();
        t.insert("u".into(), (uuid::Uuid::from_u128(8), 2));
        let mut g = ConsumerGroup::default();
        let by_regex = ConsumerHeartbeat {
            subscribed_topic_names: None,
            subscribed_topic_regex: Some("t|u.*".into()),
            regex_filter: Some(TopicFilter(std::sync::Arc::new(|name| name != "u"))),
            ..join("a")
        };
        let a = g.heartbeat(&by_regex, &t, "uniform", now).unwrap();
        let assigned: BTreeSet<uuid::Uuid> =
            a.assignment.unwrap().iter().map(|(id, _)| *id).collect();
        assert_eq!(assigned, [t["t"].0].into());
    }

    #[test]
    fn a_regex_that_names_an_internal_topic_subscribes_to_it() {
        let now = Instant::now();
        let mut t = topics();
        t.insert("__consumer_offsets".into(), (uuid::Uuid::from_u128(11), 3));
        let mut g = ConsumerGroup::default();
        let by_regex = ConsumerHeartbeat {
            subscribed_topic_names: None,
            subscribed_topic_regex: Some("__consumer_offsets".into()),
            ..join("a")
        };
        let a = g.heartbeat(&by_regex, &t, "uniform", now).unwrap();
        assert_eq!(a.assignment.as_ref().map(|a| a.len()), Some(3));
    }

    #[test]
    fn a_static_member_comes_back_to_its_partitions() {
        let (t, now) = (topics(), Instant::now());
        let mut g = ConsumerGroup::default();
        let with_instance = |id: &str, instance: &str| ConsumerHeartbeat {
            instance_id: Some(instance.into()),
            ..join(id)
        };
        let a = g
            .heartbeat(&with_instance("a", "ia"), &t, "range", now)
            .unwrap();
        g.heartbeat(&with_instance("b", "ib"), &t, "range", now)
            .unwrap();
        // a revokes, then b picks up the released partitions: the group is stable
        let kept = g
            .heartbeat(&beat("a", 1, &a.assignment.unwrap()), &t, "range", now)
            .unwrap()
            .assignment
            .unwrap();
        g.heartbeat(&beat("a", 1, &kept), &t, "range", now).unwrap();
        g.heartbeat(&beat("b", 2, &Assignment::new()), &t, "range", now)
            .unwrap();
        assert_eq!(g.state_name(), "Stable");
        let leave = ConsumerHeartbeat {
            member_id: "a".into(),
            member_epoch: STATIC_LEAVE_EPOCH,
            instance_id: Some("ia".into()),
            ..ConsumerHeartbeat::default()
        };
        g.heartbeat(&leave, &t, "range", now).unwrap();
        // a live member's instance id cannot be taken
        let err = g.heartbeat(&with_instance("d", "ib"), &t, "range", now);
        assert_eq!(err.unwrap_err().0, ResponseError::UnreleasedInstanceId);
        // a restarts under a new member id: same partitions, same epoch, no rebalance
        let epoch = g.epoch;
        let back = g
            .heartbeat(&with_instance("a2", "ia"), &t, "range", now)
            .unwrap();
        assert_eq!(g.epoch, epoch, "no new group epoch");
        assert_eq!((back.member_epoch, back.assignment), (2, Some(kept)));
        assert!(!g.members.contains_key("a"));
    }
}
