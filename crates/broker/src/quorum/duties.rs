//! The active controller's duties: fence brokers whose heartbeats stopped
//! (`broker.session.timeout.ms`), take brokers in a controlled shutdown out of leadership and
//! the ISR, and elect partition leaders from the ISR (from any live replica only where
//! `unclean.leader.election.enable` is true).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use crate::metadata::{MetadataImage, MetadataRecord, PartitionState};

use super::{Proposal, RaftQuorum, Session};

/// What the active controller knows of each broker.
#[derive(Debug, Default, Clone)]
pub struct Liveness {
    /// Brokers heard from within the session timeout.
    pub alive: HashSet<i32>,
    /// Alive brokers in a controlled shutdown.
    pub shutting_down: HashSet<i32>,
    /// Per partition (topic id, index), the brokers whose replica sits in a log directory that
    /// went offline: not eligible for that partition's ISR or leadership.
    pub offline: HashMap<(uuid::Uuid, i32), HashSet<i32>>,
}

impl Liveness {
    fn eligible(&self, broker: i32) -> bool {
        self.alive.contains(&broker) && !self.shutting_down.contains(&broker)
    }
}

/// A partition's state once ineligible brokers leave its ISR and leadership; `None` if unchanged.
pub fn next_state(
    state: &PartitionState,
    live: &Liveness,
    unclean: bool,
) -> Option<PartitionState> {
    next_state_without(state, live, unclean, &HashSet::new())
}

/// `next_state`, with the replicas on `offline` brokers (their log directory failed) not
/// eligible either.
pub fn next_state_without(
    state: &PartitionState,
    live: &Liveness,
    unclean: bool,
    offline: &HashSet<i32>,
) -> Option<PartitionState> {
    let eligible = |b: i32| live.eligible(b) && !offline.contains(&b);
    let mut next = state.clone();
    let isr: Vec<i32> = state.isr.iter().copied().filter(|b| eligible(*b)).collect();
    // the last ISR member stays, so a returning broker can tell it has the committed data
    if !isr.is_empty() {
        next.isr = isr;
    }
    if next.leader < 0 || !eligible(next.leader) {
        let from_isr = state
            .replicas
            .iter()
            .copied()
            .find(|r| next.isr.contains(r) && eligible(*r));
        next.leader = match from_isr {
            Some(leader) => leader,
            None if unclean => match state.replicas.iter().copied().find(|r| eligible(*r)) {
                Some(leader) => {
                    next.isr = vec![leader];
                    leader
                }
                None => -1,
            },
            None => -1,
        };
    }
    if next == *state {
        return None;
    }
    if next.leader != state.leader {
        next.leader_epoch += 1;
    }
    next.partition_epoch += 1;
    Some(next)
}

/// Why an election requested by an operator (ElectLeaders) does not happen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ElectionRefused {
    /// The leader is already the one the election would pick.
    NotNeeded,
    /// Preferred: the first replica is not alive or not in the ISR.
    PreferredNotAvailable,
    /// Unclean: no live replica.
    NoEligibleLeader,
}

/// The state after a preferred (the first replica, if alive and in sync) or unclean (any live
/// replica, if the leader is gone) election.
pub fn elect(
    state: &PartitionState,
    live: &Liveness,
    unclean: bool,
) -> Result<PartitionState, ElectionRefused> {
    let mut next = state.clone();
    if unclean {
        if state.leader >= 0 && live.eligible(state.leader) {
            return Err(ElectionRefused::NotNeeded);
        }
        let leader = state
            .replicas
            .iter()
            .copied()
            .find(|r| live.eligible(*r))
            .ok_or(ElectionRefused::NoEligibleLeader)?;
        next.leader = leader;
        if !next.isr.contains(&leader) {
            next.isr = vec![leader];
        }
    } else {
        let preferred = *state
            .replicas
            .first()
            .ok_or(ElectionRefused::PreferredNotAvailable)?;
        if state.leader == preferred {
            return Err(ElectionRefused::NotNeeded);
        }
        if !live.eligible(preferred) || !state.isr.contains(&preferred) {
            return Err(ElectionRefused::PreferredNotAvailable);
        }
        next.leader = preferred;
    }
    next.leader_epoch += 1;
    next.partition_epoch += 1;
    Ok(next)
}

/// What the metadata says of broker liveness (for elections outside the active controller's
/// own heartbeat view: registered, unfenced, not shutting down).
pub fn liveness_of(image: &MetadataImage) -> Liveness {
    let mut live = Liveness::default();
    for b in image.brokers.values().filter(|b| !b.fenced) {
        live.alive.insert(b.id);
        if b.shutting_down {
            live.shutting_down.insert(b.id);
        }
    }
    live
}

/// Preferred-leader elections (`auto.leader.rebalance.enable`) for the partitions whose first
/// replica is alive and in sync but does not lead, on each broker where more than
/// `threshold_pct` percent of the partitions preferring it are led elsewhere
/// (`leader.imbalance.per.broker.percentage`).
pub fn rebalance(
    image: &MetadataImage,
    live: &Liveness,
    threshold_pct: i64,
) -> Vec<MetadataRecord> {
    let mut preferring: HashMap<i32, (usize, usize)> = HashMap::new();
    for state in image.partitions.values() {
        if let Some(preferred) = state.replicas.first() {
            let counts = preferring.entry(*preferred).or_default();
            counts.0 += 1;
            if state.leader != *preferred {
                counts.1 += 1;
            }
        }
    }
    let imbalanced = |broker: i32| {
        preferring.get(&broker).is_some_and(|(total, elsewhere)| {
            (*elsewhere as i64) * 100 > threshold_pct.max(0) * (*total as i64)
        })
    };
    image
        .partitions
        .iter()
        .filter(|(_, state)| state.replicas.first().is_some_and(|b| imbalanced(*b)))
        .filter_map(|((topic, index), state)| {
            let next = elect(state, live, false).ok()?;
            Some(MetadataRecord::Partition {
                topic: *topic,
                index: *index,
                state: next,
                expect_epoch: Some(state.partition_epoch),
            })
        })
        .collect()
}

/// Why a reassignment request is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReassignRefused {
    /// Empty, duplicated, or naming unregistered brokers.
    InvalidAssignment,
    /// A different replica count while the request forbids it (KIP-860).
    ReplicationFactorChange,
    /// Cancelling with nothing in progress.
    NoneInProgress,
}

/// Starts moving a partition to `target` (replicas = target then the ones leaving; the new
/// ones catch up as followers), or with `None` cancels the move in progress.
pub fn reassign(
    state: &PartitionState,
    target: Option<&[i32]>,
    registered: &dyn Fn(i32) -> bool,
    allow_rf_change: bool,
) -> Result<Option<PartitionState>, ReassignRefused> {
    let in_progress = !state.adding.is_empty() || !state.removing.is_empty();
    let original: Vec<i32> = state
        .replicas
        .iter()
        .copied()
        .filter(|r| !state.adding.contains(r))
        .collect();
    let mut next = state.clone();
    match target {
        None => {
            if !in_progress {
                return Err(ReassignRefused::NoneInProgress);
            }
            next.replicas = original;
        }
        Some(target) => {
            let distinct: std::collections::HashSet<_> = target.iter().collect();
            if target.is_empty()
                || distinct.len() != target.len()
                || !target.iter().all(|b| registered(*b))
            {
                return Err(ReassignRefused::InvalidAssignment);
            }
            if !allow_rf_change && target.len() != original.len() {
                return Err(ReassignRefused::ReplicationFactorChange);
            }
            if !in_progress && target == state.replicas.as_slice() {
                return Ok(None);
            }
            next.replicas = target.to_vec();
            next.replicas
                .extend(original.iter().copied().filter(|r| !target.contains(r)));
            next.adding = target
                .iter()
                .copied()
                .filter(|r| !original.contains(r))
                .collect();
            next.removing = original
                .iter()
                .copied()
                .filter(|r| !target.contains(r))
                .collect();
        }
    }
    if target.is_none() {
        next.adding.clear();
        next.removing.clear();
        next.isr.retain(|r| next.replicas.contains(r));
        if !next.replicas.contains(&next.leader) {
            // an added replica led: the next duty tick elects from the restored ISR
            next.leader = -1;
            next.leader_epoch += 1;
        }
    }
    next.partition_epoch += 1;
    Ok(Some(next))
}

/// Completes a reassignment once every added replica is in the ISR: the leaving replicas go
/// (leadership too, to an in-sync target replica).
pub fn finish_reassignment(state: &PartitionState, live: &Liveness) -> Option<PartitionState> {
    if state.adding.is_empty() && state.removing.is_empty() {
        return None;
    }
    if !state.adding.iter().all(|r| state.isr.contains(r)) {
        return None;
    }
    let mut next = state.clone();
    next.replicas = state.target();
    next.isr.retain(|r| next.replicas.contains(r));
    if next.isr.is_empty() {
        return None;
    }
    next.adding.clear();
    next.removing.clear();
    if !next.replicas.contains(&next.leader) {
        next.leader = next
            .replicas
            .iter()
            .copied()
            .find(|r| next.isr.contains(r) && live.eligible(*r))
            .unwrap_or(-1);
        next.leader_epoch += 1;
    }
    next.partition_epoch += 1;
    Some(next)
}

/// The records that bring the metadata in line with broker liveness.
pub fn plan(image: &MetadataImage, live: &Liveness) -> Vec<MetadataRecord> {
    let mut records = Vec::new();
    for b in image.brokers.values() {
        let fenced = !live.alive.contains(&b.id);
        let shutting_down = live.shutting_down.contains(&b.id);
        if b.fenced != fenced || b.shutting_down != shutting_down {
            records.push(MetadataRecord::FenceBroker {
                id: b.id,
                fenced,
                shutting_down,
            });
        }
    }
    for ((topic, index), state) in &image.partitions {
        let unclean = image.topic_by_id(topic).is_some_and(|t| {
            t.configs
                .get("unclean.leader.election.enable")
                .is_some_and(|v| v == "true")
        });
        let offline = live
            .offline
            .get(&(*topic, *index))
            .cloned()
            .unwrap_or_default();
        let changed = next_state_without(state, live, unclean, &offline);
        let base = changed.as_ref().unwrap_or(state);
        let next = finish_reassignment(base, live).or(changed);
        if let Some(next) = next {
            records.push(MetadataRecord::Partition {
                topic: *topic,
                index: *index,
                state: next,
                expect_epoch: Some(state.partition_epoch),
            });
        }
    }
    records
}

/// As Kafka 4.1's controller (KIP-966): the cluster-wide `min.insync.replicas` is a dynamic
/// default config, written from the active controller's static one when absent, so every
/// broker uses the same value.
pub fn cluster_min_isr(image: &MetadataImage, static_value: &str) -> Option<MetadataRecord> {
    let set = image
        .broker_configs
        .get("")
        .is_some_and(|c| c.contains_key("min.insync.replicas"));
    (!set).then(|| MetadataRecord::BrokerConfig {
        scope: String::new(),
        key: "min.insync.replicas".into(),
        value: static_value.to_string(),
    })
}

/// Runs on every controller; acts while this one is the active controller. With
/// `rebalance_every`, preferred leaders get their leadership back at that interval.
pub async fn run(
    quorum: Arc<RaftQuorum>,
    session_timeout: Duration,
    heartbeat_interval: Duration,
    rebalance_every: Option<Duration>,
    imbalance_pct: i64,
    min_isr: String,
) {
    // a live broker is silent for up to a heartbeat interval between heartbeats
    let silence = heartbeat_interval + Duration::from_secs(1);
    let mut active = false;
    let mut tick = tokio::time::interval(Duration::from_millis(200));
    let mut last_rebalance = Instant::now();
    loop {
        tick.tick().await;
        if !quorum.is_leader() {
            active = false;
            continue;
        }
        let image = crate::metadata::MetadataLog::image(&quorum);
        let live = {
            let mut heartbeats = crate::locks::lock(&quorum.heartbeats);
            let now = Instant::now();
            if !active {
                // a new active controller gives every broker a full session to check in
                heartbeats.clear();
            }
            for id in image.brokers.keys() {
                // what the broker has applied is unknown until it heartbeats: not held
                // against it
                heartbeats.entry(*id).or_insert(Session {
                    seen: now,
                    shutting_down: false,
                    applied: u64::MAX,
                    gone: false,
                    probed: None,
                });
            }
            let mut live = liveness(&image, &heartbeats, session_timeout);
            let offline = quorum
                .offline_replicas
                .lock()
                .expect("offline replicas lock");
            for (broker, replicas) in offline.iter() {
                for key in replicas {
                    live.offline.entry(*key).or_default().insert(*broker);
                }
            }
            live
        };
        let mut live = live;
        for gone in probe_silent(&quorum, &image, &live, silence).await {
            live.alive.remove(&gone);
            live.shutting_down.remove(&gone);
        }
        active = true;
        let mut records = plan(&image, &live);
        records.extend(cluster_min_isr(&image, &min_isr));
        if records.is_empty()
            && rebalance_every.is_some_and(|every| last_rebalance.elapsed() >= every)
        {
            last_rebalance = Instant::now();
            records = rebalance(&image, &live, imbalance_pct);
        }
        if records.is_empty() {
            continue;
        }
        tracing::info!(
            records = records.len(),
            "controller: applying liveness changes"
        );
        if let Err(e) = quorum.propose(Proposal { records }).await {
            tracing::warn!("controller: {e:#}");
        }
    }
}

/// A broker that stopped heartbeating for `silence` (a heartbeat interval and a second) and
/// whose listener refuses connections
/// has lost its process (a crash, kill -9): it is fenced now rather than after the session
/// timeout, so its partitions get new leaders sooner. A broker that is only unreachable (a
/// network partition, a stall) still has its full session. Returns the brokers found gone
/// (marked so in their sessions until they heartbeat again).
async fn probe_silent(
    quorum: &RaftQuorum,
    image: &MetadataImage,
    live: &Liveness,
    silence: Duration,
) -> Vec<i32> {
    let now = Instant::now();
    let candidates: Vec<(i32, String)> = {
        let mut heartbeats = crate::locks::lock(&quorum.heartbeats);
        image
            .brokers
            .values()
            .filter(|b| live.alive.contains(&b.id))
            .filter_map(|b| {
                let s = heartbeats.get_mut(&b.id)?;
                let due = !s.gone
                    && now.duration_since(s.seen) >= silence
                    && s.probed
                        .is_none_or(|p| now.duration_since(p) >= Duration::from_secs(1));
                due.then(|| {
                    s.probed = Some(now);
                    (b.id, format!("{}:{}", b.host, b.port))
                })
            })
            .collect()
    };
    let mut gone = Vec::new();
    for (id, addr) in candidates {
        let attempt = tokio::time::timeout(
            Duration::from_millis(300),
            tokio::net::TcpStream::connect(&addr),
        )
        .await;
        let refused =
            matches!(attempt, Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused);
        if refused {
            tracing::info!(
                broker = id,
                addr,
                "a silent broker's listener refuses connections: fencing it"
            );
            if let Some(s) = quorum
                .heartbeats
                .lock()
                .expect("heartbeats lock")
                .get_mut(&id)
            {
                s.gone = true;
                gone.push(id);
            }
        }
    }
    gone
}

/// Brokers alive by their heartbeats: seen within the session timeout and caught up with the
/// metadata up to their own registration (a restarted broker stays fenced until then).
fn liveness(
    image: &MetadataImage,
    heartbeats: &HashMap<i32, Session>,
    timeout: Duration,
) -> Liveness {
    let mut live = Liveness::default();
    for (id, session) in heartbeats {
        let registered_at = image.brokers.get(id).map_or(0, |b| b.registered_at);
        if !session.gone && session.seen.elapsed() < timeout && session.applied >= registered_at {
            live.alive.insert(*id);
            if session.shutting_down {
                live.shutting_down.insert(*id);
            }
        }
    }
    live
}

/// Rack-aware round robin: brokers are listed alternating between racks (the
/// first broker of each rack, then the second, ...; brokers without a rack form one more
/// rack), partition i's first replica is the broker at `start + i` of that list, and each
/// further replica is the next broker in the list on a rack the partition does not use yet
/// (any next broker once every rack has a replica). Without racks this is plain round robin.
pub fn place(
    brokers: &[(i32, Option<&str>)],
    partitions: usize,
    rf: usize,
    start: usize,
) -> Vec<Vec<i32>> {
    let mut racks: std::collections::BTreeMap<Option<&str>, Vec<i32>> = Default::default();
    for (id, rack) in brokers {
        racks.entry(*rack).or_default().push(*id);
    }
    for ids in racks.values_mut() {
        ids.sort_unstable();
    }
    let deepest = racks.values().map(Vec::len).max().unwrap_or(0);
    let mut list: Vec<(i32, Option<&str>)> = Vec::new();
    for k in 0..deepest {
        for (rack, ids) in &racks {
            if let Some(id) = ids.get(k) {
                list.push((*id, *rack));
            }
        }
    }
    let n = list.len();
    if n == 0 {
        return Vec::new();
    }
    let rack_count = racks.len();
    (0..partitions)
        .map(|i| {
            let first = (start + i) % n;
            let mut chosen = vec![list[first]];
            for step in 1..n {
                if chosen.len() >= rf {
                    break;
                }
                let candidate = list[(first + step) % n];
                let used: HashSet<Option<&str>> = chosen.iter().map(|(_, r)| *r).collect();
                if used.len() < rack_count && used.contains(&candidate.1) {
                    continue;
                }
                chosen.push(candidate);
            }
            // racks were exhausted before rf: the rest in list order
            for step in 1..n {
                if chosen.len() >= rf {
                    break;
                }
                let candidate = list[(first + step) % n];
                if !chosen.contains(&candidate) {
                    chosen.push(candidate);
                }
            }
            chosen.into_iter().map(|(id, _)| id).collect()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placement_without_racks_is_round_robin() {
        let brokers = [(1, None), (2, None), (3, None)];
        assert_eq!(
            place(&brokers, 4, 2, 1),
            vec![vec![2, 3], vec![3, 1], vec![1, 2], vec![2, 3]]
        );
    }

    #[test]
    fn placement_spreads_replicas_over_racks() {
        // racks a: 1,2,3  b: 4,5,6 (ids adjacent within a rack)
        let brokers = [
            (1, Some("a")),
            (2, Some("a")),
            (3, Some("a")),
            (4, Some("b")),
            (5, Some("b")),
            (6, Some("b")),
        ];
        for start in 0..6 {
            let placed = place(&brokers, 12, 2, start);
            let mut leaders = HashMap::new();
            for replicas in &placed {
                assert_eq!(replicas.len(), 2);
                let rack = |b: i32| if b <= 3 { "a" } else { "b" };
                assert_ne!(rack(replicas[0]), rack(replicas[1]), "{placed:?}");
                *leaders.entry(replicas[0]).or_insert(0) += 1;
            }
            // leadership spread evenly: each broker leads 2 of the 12
            assert!(leaders.values().all(|c| *c == 2), "{leaders:?}");
        }
        // three replicas over two racks: both racks used, no broker twice
        for replicas in place(&brokers, 6, 3, 0) {
            let distinct: HashSet<_> = replicas.iter().collect();
            assert_eq!(distinct.len(), 3);
            assert!(replicas.iter().any(|b| *b <= 3) && replicas.iter().any(|b| *b > 3));
        }
    }

    #[test]
    fn placement_with_uneven_racks_uses_every_rack_first() {
        let brokers = [
            (1, Some("a")),
            (2, Some("a")),
            (3, Some("a")),
            (4, Some("b")),
            (5, None),
        ];
        for start in 0..5 {
            for replicas in place(&brokers, 10, 3, start) {
                let racks: HashSet<_> = replicas
                    .iter()
                    .map(|b| match b {
                        1..=3 => "a",
                        4 => "b",
                        _ => "none",
                    })
                    .collect();
                assert_eq!(racks.len(), 3, "{replicas:?}");
            }
        }
    }

    fn state(replicas: &[i32], isr: &[i32], leader: i32) -> PartitionState {
        PartitionState {
            replicas: replicas.to_vec(),
            isr: isr.to_vec(),
            leader,
            leader_epoch: 5,
            partition_epoch: 9,
            adding: vec![],
            removing: vec![],
        }
    }

    #[test]
    fn liveness_needs_a_recent_heartbeat_a_listener_and_the_registration_applied() {
        let mut image = MetadataImage::default();
        for id in 1..=4 {
            let broker = crate::metadata::BrokerImage {
                id,
                host: "localhost".into(),
                port: 9092,
                listeners: vec![],
                rack: None,
                epoch: 1,
                fenced: false,
                shutting_down: false,
                registered_at: 10,
            };
            image.brokers.insert(id, broker);
        }
        let session = |ago: u64, applied: u64, gone: bool| Session {
            seen: Instant::now() - Duration::from_millis(ago),
            shutting_down: false,
            applied,
            gone,
            probed: None,
        };
        let heartbeats = HashMap::from([
            (1, session(0, 10, false)),
            (2, session(5000, 10, false)),
            (3, session(0, 9, false)),
            (4, session(0, 10, true)),
        ]);
        let live = liveness(&image, &heartbeats, Duration::from_secs(3));
        assert_eq!(live.alive, HashSet::from([1]), "2 silent, 3 behind, 4 gone");
    }

    #[test]
    fn rebalance_waits_for_the_imbalance_threshold() {
        let topic = uuid::Uuid::new_v4();
        let mut image = MetadataImage::default();
        // broker 1 prefers 20 partitions; `moved` of them are led by broker 2
        let with_moved = |image: &mut MetadataImage, moved: i32| {
            for i in 0..20 {
                let leader = if i < moved { 2 } else { 1 };
                image
                    .partitions
                    .insert((topic, i), state(&[1, 2], &[1, 2], leader));
            }
        };
        let all = live(&[1, 2], &[]);
        with_moved(&mut image, 1);
        assert!(rebalance(&image, &all, 10).is_empty(), "5% is within 10%");
        with_moved(&mut image, 3);
        let records = rebalance(&image, &all, 10);
        assert_eq!(records.len(), 3, "15% is over 10%: the 3 move back");
        assert!(records.iter().all(|r| matches!(r,
            MetadataRecord::Partition { state, .. } if state.leader == 1)));
        assert_eq!(rebalance(&image, &all, 0).len(), 3);
        assert!(rebalance(&image, &all, 20).is_empty());
    }

    fn live(alive: &[i32], shutting: &[i32]) -> Liveness {
        Liveness {
            alive: alive.iter().copied().collect(),
            shutting_down: shutting.iter().copied().collect(),
            ..Liveness::default()
        }
    }

    #[test]
    fn a_replica_in_an_offline_log_dir_leaves_the_isr_and_leadership() {
        let s = state(&[1, 2, 3], &[1, 2, 3], 1);
        let everyone = live(&[1, 2, 3], &[]);
        let next = next_state_without(&s, &everyone, false, &HashSet::from([1])).unwrap();
        assert_eq!((next.leader, next.isr.clone()), (2, vec![2, 3]));
        // on its own it stays, as the last ISR member does, but cannot lead
        let alone = state(&[1], &[1], 1);
        let next = next_state_without(&alone, &everyone, false, &HashSet::from([1])).unwrap();
        assert_eq!((next.leader, next.isr), (-1, vec![1]));
        assert!(next_state_without(&s, &everyone, false, &HashSet::new()).is_none());
    }

    #[test]
    fn leader_loss_elects_from_the_isr() {
        let s = state(&[1, 2, 3], &[1, 3], 1);
        let next = next_state(&s, &live(&[2, 3], &[]), false).unwrap();
        assert_eq!(next.leader, 3, "2 is not in the ISR");
        assert_eq!(next.isr, vec![3]);
        assert_eq!((next.leader_epoch, next.partition_epoch), (6, 10));
    }

    #[test]
    fn no_isr_member_left_means_offline_unless_unclean() {
        let s = state(&[1, 2], &[1], 1);
        let next = next_state(&s, &live(&[2], &[]), false).unwrap();
        assert_eq!((next.leader, next.isr.clone()), (-1, vec![1]));
        let next = next_state(&s, &live(&[2], &[]), true).unwrap();
        assert_eq!((next.leader, next.isr), (2, vec![2]));
        // the old leader comes back: it leads again, from the ISR it kept
        let offline = state(&[1, 2], &[1], -1);
        let next = next_state(&offline, &live(&[1, 2], &[]), false).unwrap();
        assert_eq!(next.leader, 1);
    }

    #[test]
    fn operator_elections() {
        let all = live(&[1, 2, 3], &[]);
        // preferred: back to the first replica once it is in sync
        let s = state(&[1, 2, 3], &[2, 3], 2);
        assert_eq!(
            elect(&s, &all, false),
            Err(ElectionRefused::PreferredNotAvailable)
        );
        let s = state(&[1, 2, 3], &[2, 3, 1], 2);
        let next = elect(&s, &all, false).unwrap();
        assert_eq!((next.leader, next.leader_epoch), (1, 6));
        assert_eq!(elect(&next, &all, false), Err(ElectionRefused::NotNeeded));
        // unclean: only for a partition without a live leader, from any live replica
        assert_eq!(elect(&s, &all, true), Err(ElectionRefused::NotNeeded));
        let offline = state(&[1, 2], &[1], -1);
        let next = elect(&offline, &live(&[2], &[]), true).unwrap();
        assert_eq!((next.leader, next.isr), (2, vec![2]));
        assert_eq!(
            elect(&offline, &live(&[3], &[]), true),
            Err(ElectionRefused::NoEligibleLeader)
        );
    }

    #[test]
    fn reassignment_adds_catches_up_then_removes() {
        let all = live(&[1, 2, 3, 4], &[]);
        let known = |b: i32| (1..=4).contains(&b);
        let s = state(&[1, 2, 3], &[1, 2, 3], 1);
        let moving = reassign(&s, Some(&[2, 3, 4]), &known, true)
            .unwrap()
            .unwrap();
        assert_eq!(moving.replicas, vec![2, 3, 4, 1]);
        assert_eq!(
            (moving.adding.clone(), moving.removing.clone()),
            (vec![4], vec![1])
        );
        assert_eq!(
            finish_reassignment(&moving, &all),
            None,
            "4 is not in sync yet"
        );
        let caught_up = PartitionState {
            isr: vec![1, 2, 3, 4],
            ..moving.clone()
        };
        let done = finish_reassignment(&caught_up, &all).unwrap();
        assert_eq!(
            (done.replicas.clone(), done.isr.clone()),
            (vec![2, 3, 4], vec![2, 3, 4])
        );
        assert_eq!(done.leader, 2, "the leaving leader hands over");
        assert!(done.adding.is_empty() && done.removing.is_empty());
        // cancelling restores the original replicas (in the order the move left them, as
        // Kafka's revert does)
        let back = reassign(&moving, None, &known, true).unwrap().unwrap();
        assert_eq!((back.replicas, back.isr), (vec![2, 3, 1], vec![1, 2, 3]));
        assert_eq!(
            reassign(&s, None, &known, true),
            Err(ReassignRefused::NoneInProgress)
        );
        assert_eq!(
            reassign(&s, Some(&[1, 9]), &known, true),
            Err(ReassignRefused::InvalidAssignment)
        );
        assert_eq!(
            reassign(&s, Some(&[1, 2]), &known, false),
            Err(ReassignRefused::ReplicationFactorChange)
        );
        assert_eq!(reassign(&s, Some(&[1, 2, 3]), &known, true), Ok(None));
    }

    #[test]
    fn controlled_shutdown_moves_leadership_and_leaves_the_isr() {
        let s = state(&[1, 2, 3], &[1, 2, 3], 1);
        let next = next_state(&s, &live(&[1, 2, 3], &[1]), false).unwrap();
        assert_eq!((next.leader, next.isr), (2, vec![2, 3]));
        assert!(next_state(&s, &live(&[1, 2, 3], &[]), false).is_none());
    }
}
