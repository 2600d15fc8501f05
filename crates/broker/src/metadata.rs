//! Cluster metadata: an immutable [`MetadataImage`] rebuilt by replaying metadata records, and
//! the [`Controller`] that commits records to the metadata log before applying them.
//!
//! Records are JSON, one per log record. A single node keeps them in a local Kafka-format log
//! (`<log.dir>/__cluster_metadata-0`); a cluster replicates them through the Raft quorum of the
//! controllers ([`crate::quorum`]). Both apply records the same way: [`MetadataImage::replay`]
//! is deterministic and checks each record's precondition (a topic name not taken, a partition
//! epoch, the next producer-id block), so concurrent proposals from several nodes cannot
//! conflict: the later one is rejected and its proposer sees that in the outcome.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex, RwLock};

use anyhow::{anyhow, bail, Context, Result};
use ferrolog_records::{Compression, Record};
use ferrolog_storage::{Log, LogConfig, LogOpenOptions};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use uuid::Uuid;

use crate::config::Properties;
pub use crate::security::sasl::ScramCredential;

pub const METADATA_TOPIC: &str = "__cluster_metadata";
/// Producer ids are handed out in durable blocks of this size (as Kafka does).
pub const PRODUCER_ID_BLOCK: i64 = 1000;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TopicImage {
    pub name: String,
    pub id: Uuid,
    pub partitions: i32,
    pub configs: Properties,
}

/// A listener a broker advertises.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListenerEndpoint {
    pub name: String,
    pub host: String,
    pub port: i32,
}

/// A registered broker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BrokerImage {
    pub id: i32,
    /// The inter-broker listener's advertised address (replication, transaction markers).
    pub host: String,
    pub port: i32,
    /// Every broker listener it advertises; clients are told the address of the listener they
    /// came in on. Empty in registrations written before ferrolog served several listeners:
    /// then `host`/`port` is the only one.
    #[serde(default)]
    pub listeners: Vec<ListenerEndpoint>,
    pub rack: Option<String>,
    /// Changes with every registration (a restart): Kafka's broker epoch.
    pub epoch: i64,
    pub fenced: bool,
    /// Set by a controlled shutdown; cleared by the next registration.
    pub shutting_down: bool,
    /// The metadata index of this registration: the broker stays fenced until it has applied
    /// the metadata up to here.
    #[serde(default)]
    pub registered_at: u64,
}

impl BrokerImage {
    /// The address of this broker's listener `name`, if it has one.
    pub fn endpoint(&self, name: &str) -> Option<(&str, i32)> {
        if self.listeners.is_empty() {
            return Some((&self.host, self.port));
        }
        self.listeners
            .iter()
            .find(|l| l.name.eq_ignore_ascii_case(name))
            .map(|l| (l.host.as_str(), l.port))
    }
}

/// Replicas, ISR and leader of one partition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionState {
    pub replicas: Vec<i32>,
    pub isr: Vec<i32>,
    /// -1 when no replica can lead.
    pub leader: i32,
    pub leader_epoch: i32,
    /// Bumped by every change of this partition's state.
    pub partition_epoch: i32,
    /// A reassignment in progress: replicas being added (they catch up, then the move
    /// completes) and replicas to remove once it does.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub adding: Vec<i32>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub removing: Vec<i32>,
}

impl PartitionState {
    /// The state of a single-node broker's partition: it alone holds it.
    pub fn solo(node: i32) -> PartitionState {
        PartitionState {
            replicas: vec![node],
            isr: vec![node],
            leader: node,
            leader_epoch: 0,
            partition_epoch: 0,
            adding: Vec::new(),
            removing: Vec::new(),
        }
    }

    /// The replicas a reassignment in progress moves to (all replicas otherwise).
    pub fn target(&self) -> Vec<i32> {
        self.replicas
            .iter()
            .copied()
            .filter(|r| !self.removing.contains(r))
            .collect()
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct MetadataImage {
    pub topics: BTreeMap<String, TopicImage>,
    pub ids: BTreeMap<Uuid, String>,
    /// First producer id not yet reserved.
    pub next_producer_id_block: i64,
    /// Dynamic broker configs by scope ("" = cluster-wide default, else a node id).
    pub broker_configs: BTreeMap<String, Properties>,
    /// Registered brokers (empty on a single node, which needs no registration).
    pub brokers: BTreeMap<i32, BrokerImage>,
    /// Partition states by topic id and index (absent on a single node: it holds them all).
    #[serde(with = "partition_map")]
    pub partitions: BTreeMap<(Uuid, i32), PartitionState>,
    /// The index of the last metadata log entry applied (the Raft log index in a cluster).
    #[serde(default)]
    pub applied: u64,
    /// Finalized feature levels set by UpdateFeatures (others are at their defaults, see
    /// `features`).
    #[serde(default)]
    pub features: BTreeMap<String, i16>,
    /// The index of the last feature change (the finalized features' epoch).
    #[serde(default)]
    pub features_epoch: u64,
    /// Group configs (GROUP config resources) by group id.
    #[serde(default)]
    pub group_configs: BTreeMap<String, Properties>,
    /// SCRAM credentials by user, then mechanism name (`SCRAM-SHA-256`).
    #[serde(default)]
    pub scram: BTreeMap<String, BTreeMap<String, ScramCredential>>,
    /// ACLs by id (CreateAcls / DeleteAcls).
    #[serde(default)]
    pub acls: crate::security::acl::Acls,
    /// Client quotas by entity (AlterClientQuotas).
    #[serde(default, with = "quota_map")]
    pub client_quotas: crate::quota::Quotas,
}

/// JSON object keys must be strings: the client quotas are written as a list.
mod quota_map {
    use super::*;
    use crate::quota::{QuotaEntity, Quotas};
    use serde::{Deserializer, Serializer};

    pub fn serialize<S: Serializer>(map: &Quotas, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(map.iter())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Quotas, D::Error> {
        let list: Vec<(QuotaEntity, BTreeMap<String, f64>)> = Vec::deserialize(d)?;
        Ok(list.into_iter().collect())
    }
}

/// JSON object keys must be strings: the partition map is written as a list.
mod partition_map {
    use super::*;
    use serde::{Deserializer, Serializer};

    pub fn serialize<S: Serializer>(
        map: &BTreeMap<(Uuid, i32), PartitionState>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        s.collect_seq(map.iter())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<BTreeMap<(Uuid, i32), PartitionState>, D::Error> {
        let list: Vec<((Uuid, i32), PartitionState)> = Vec::deserialize(d)?;
        Ok(list.into_iter().collect())
    }
}

/// One metadata record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum MetadataRecord {
    /// Rejected if the name is taken.
    Topic {
        name: String,
        id: Uuid,
    },
    Partitions {
        id: Uuid,
        count: i32,
    },
    Config {
        id: Uuid,
        key: String,
        value: String,
    },
    ConfigDelete {
        id: Uuid,
        key: String,
    },
    RemoveTopic {
        id: Uuid,
    },
    /// Reserves the block that ends at `next_block`: rejected unless it is the next one.
    ProducerIds {
        next_block: i64,
    },
    /// A dynamic broker config: `scope` is "" for the cluster-wide default or a node id.
    BrokerConfig {
        scope: String,
        key: String,
        value: String,
    },
    BrokerConfigDelete {
        scope: String,
        key: String,
    },
    RegisterBroker {
        broker: BrokerImage,
    },
    /// Fences (or unfences) a broker; `shutting_down` marks a controlled shutdown.
    FenceBroker {
        id: i32,
        fenced: bool,
        shutting_down: bool,
    },
    /// A group config (`value` None: deleted).
    GroupConfig {
        group: String,
        key: String,
        value: Option<String>,
    },
    /// A finalized feature level (UpdateFeatures).
    Feature {
        name: String,
        level: i16,
    },
    /// A user's SCRAM credential for a mechanism (AlterUserScramCredentials upsertion).
    ScramCredential {
        user: String,
        mechanism: String,
        credential: ScramCredential,
    },
    RemoveScramCredential {
        user: String,
        mechanism: String,
    },
    /// An ACL created by CreateAcls, under a fresh id.
    Acl {
        id: Uuid,
        acl: crate::security::acl::AclBinding,
    },
    /// An ACL deleted by DeleteAcls.
    RemoveAcl {
        id: Uuid,
    },
    /// A client quota set (`value`) or removed (`None`) by AlterClientQuotas.
    ClientQuota {
        entity: crate::quota::QuotaEntity,
        key: String,
        value: Option<f64>,
    },
    /// A partition's new state; with `expect_epoch`, rejected unless the partition epoch is
    /// still that (the compare-and-set behind ISR changes and elections).
    Partition {
        topic: Uuid,
        index: i32,
        state: PartitionState,
        expect_epoch: Option<i32>,
    },
}

impl MetadataRecord {
    pub fn encode(&self) -> String {
        serde_json::to_string(self).expect("metadata records serialize")
    }

    pub fn decode(text: &str) -> Result<MetadataRecord> {
        if !text.starts_with('{') {
            return Self::decode_legacy(text).with_context(|| format!("metadata record {text:?}"));
        }
        serde_json::from_str(text).with_context(|| format!("metadata record {text}"))
    }

    /// The tab-separated records of single-node logs written before the quorum (they replay as
    /// they did).
    fn decode_legacy(line: &str) -> Result<MetadataRecord> {
        let f: Vec<&str> = line.splitn(4, '\t').collect();
        let s = |i: usize| -> Result<String> {
            Ok(f.get(i)
                .ok_or_else(|| anyhow!("missing field"))?
                .to_string())
        };
        let id = |i: usize| -> Result<Uuid> { Ok(Uuid::parse_str(&s(i)?)?) };
        Ok(match f[0] {
            "topic" => MetadataRecord::Topic {
                name: s(1)?,
                id: id(2)?,
            },
            "partitions" => MetadataRecord::Partitions {
                id: id(1)?,
                count: s(2)?.parse()?,
            },
            "config" => MetadataRecord::Config {
                id: id(1)?,
                key: s(2)?,
                value: s(3)?,
            },
            "config-delete" => MetadataRecord::ConfigDelete {
                id: id(1)?,
                key: s(2)?,
            },
            "remove-topic" => MetadataRecord::RemoveTopic { id: id(1)? },
            "producer-ids" => MetadataRecord::ProducerIds {
                next_block: s(1)?.parse()?,
            },
            "broker-config" => MetadataRecord::BrokerConfig {
                scope: s(1)?,
                key: s(2)?,
                value: s(3)?,
            },
            "broker-config-delete" => MetadataRecord::BrokerConfigDelete {
                scope: s(1)?,
                key: s(2)?,
            },
            other => bail!("unknown metadata record type {other}"),
        })
    }
}

impl MetadataImage {
    /// Applies one record (the only way the image changes); false if its precondition failed
    /// and it changed nothing.
    pub fn replay(&mut self, record: &MetadataRecord) -> bool {
        match record {
            MetadataRecord::Topic { name, id } => {
                if self.topics.contains_key(name) || self.ids.contains_key(id) {
                    return false;
                }
                self.ids.insert(*id, name.clone());
                self.topics.insert(
                    name.clone(),
                    TopicImage {
                        name: name.clone(),
                        id: *id,
                        partitions: 0,
                        configs: Properties::new(),
                    },
                );
            }
            MetadataRecord::Partitions { id, count } => match self.topic_by_id_mut(id) {
                Some(t) if *count >= t.partitions => t.partitions = *count,
                _ => return false,
            },
            MetadataRecord::Config { id, key, value } => match self.topic_by_id_mut(id) {
                Some(t) => {
                    t.configs.insert(key.clone(), value.clone());
                }
                None => return false,
            },
            MetadataRecord::ConfigDelete { id, key } => match self.topic_by_id_mut(id) {
                Some(t) => {
                    t.configs.remove(key);
                }
                None => return false,
            },
            MetadataRecord::RemoveTopic { id } => {
                let Some(name) = self.ids.remove(id) else {
                    return false;
                };
                self.topics.remove(&name);
                self.partitions.retain(|(t, _), _| t != id);
            }
            MetadataRecord::ProducerIds { next_block } => {
                if *next_block != self.next_producer_id_block + PRODUCER_ID_BLOCK {
                    return false;
                }
                self.next_producer_id_block = *next_block;
            }
            MetadataRecord::BrokerConfig { scope, key, value } => {
                self.broker_configs
                    .entry(scope.clone())
                    .or_default()
                    .insert(key.clone(), value.clone());
            }
            MetadataRecord::GroupConfig { group, key, value } => {
                let configs = self.group_configs.entry(group.clone()).or_default();
                match value {
                    Some(v) => {
                        configs.insert(key.clone(), v.clone());
                    }
                    None => {
                        configs.remove(key);
                    }
                }
                if configs.is_empty() {
                    self.group_configs.remove(group);
                }
            }
            MetadataRecord::ScramCredential {
                user,
                mechanism,
                credential,
            } => {
                self.scram
                    .entry(user.clone())
                    .or_default()
                    .insert(mechanism.clone(), credential.clone());
            }
            MetadataRecord::Acl { id, acl } => {
                self.acls.insert(*id, acl.clone());
            }
            MetadataRecord::RemoveAcl { id } => {
                self.acls.remove(id);
            }
            MetadataRecord::ClientQuota { entity, key, value } => match value {
                Some(v) => {
                    self.client_quotas
                        .entry(entity.clone())
                        .or_default()
                        .insert(key.clone(), *v);
                }
                None => {
                    if let Some(q) = self.client_quotas.get_mut(entity) {
                        q.remove(key);
                        if q.is_empty() {
                            self.client_quotas.remove(entity);
                        }
                    }
                }
            },
            MetadataRecord::RemoveScramCredential { user, mechanism } => {
                if let Some(c) = self.scram.get_mut(user) {
                    c.remove(mechanism);
                    if c.is_empty() {
                        self.scram.remove(user);
                    }
                }
            }
            MetadataRecord::Feature { name, level } => {
                self.features.insert(name.clone(), *level);
                self.features_epoch = self.applied;
            }
            MetadataRecord::BrokerConfigDelete { scope, key } => {
                if let Some(layer) = self.broker_configs.get_mut(scope) {
                    layer.remove(key);
                }
            }
            MetadataRecord::RegisterBroker { broker } => {
                let mut broker = broker.clone();
                broker.registered_at = self.applied;
                self.brokers.insert(broker.id, broker);
            }
            MetadataRecord::FenceBroker {
                id,
                fenced,
                shutting_down,
            } => match self.brokers.get_mut(id) {
                Some(b) => {
                    b.fenced = *fenced;
                    b.shutting_down = *shutting_down;
                }
                None => return false,
            },
            MetadataRecord::Partition {
                topic,
                index,
                state,
                expect_epoch,
            } => {
                if !self.ids.contains_key(topic) {
                    return false;
                }
                let current = self.partitions.get(&(*topic, *index));
                if let Some(expected) = expect_epoch {
                    if current.map(|c| c.partition_epoch) != Some(*expected) {
                        return false;
                    }
                }
                self.partitions.insert((*topic, *index), state.clone());
            }
        }
        true
    }

    fn topic_by_id_mut(&mut self, id: &Uuid) -> Option<&mut TopicImage> {
        let name = self.ids.get(id)?;
        self.topics.get_mut(name)
    }

    pub fn topic(&self, name: &str) -> Option<&TopicImage> {
        self.topics.get(name)
    }

    pub fn topic_by_id(&self, id: &Uuid) -> Option<&TopicImage> {
        self.ids.get(id).and_then(|n| self.topics.get(n))
    }

    /// The state of a partition; on a single node (no registered brokers) `node` holds it alone.
    pub fn partition(&self, topic: &Uuid, index: i32, node: i32) -> Option<PartitionState> {
        match self.partitions.get(&(*topic, index)) {
            Some(s) => Some(s.clone()),
            None if self.brokers.is_empty() => Some(PartitionState::solo(node)),
            None => None,
        }
    }

    /// Brokers that serve clients (registered and not fenced), by id.
    pub fn live_brokers(&self) -> Vec<&BrokerImage> {
        self.brokers.values().filter(|b| !b.fenced).collect()
    }
}

/// Where committed metadata lives: the local log of a single node, or the controller quorum.
pub trait MetadataLog: Send + Sync {
    fn image(&self) -> Arc<MetadataImage>;
    /// Commits `records` (in order, atomically with respect to other commits) and returns the
    /// image after them and, per record, whether it was accepted.
    fn commit(&self, records: &[MetadataRecord]) -> Result<(Arc<MetadataImage>, Vec<bool>)>;
    /// Sees every new image.
    fn subscribe(&self) -> watch::Receiver<Arc<MetadataImage>>;
    /// The end of the metadata log (the next offset or Raft index).
    fn end_offset(&self) -> i64;
    fn close(&self) -> Result<()>;
}

/// A single node's metadata log: records are durable in `__cluster_metadata-0` before they
/// apply.
pub struct LocalLog {
    log: Mutex<Log>,
    image: watch::Sender<Arc<MetadataImage>>,
}

impl LocalLog {
    /// Opens the metadata log under `log_dir` and replays it.
    pub fn open(log_dir: &Path, clean_shutdown: bool) -> Result<LocalLog> {
        let dir = log_dir.join(format!("{METADATA_TOPIC}-0"));
        let config = LogConfig {
            segment_bytes: 100 * 1024 * 1024,
            flush_messages: 1,
            ..LogConfig::default()
        };
        let log = Log::open(
            &dir,
            METADATA_TOPIC,
            0,
            [0u8; 16],
            config,
            LogOpenOptions {
                recovery_point: 0,
                log_start_offset: 0,
                clean_shutdown,
                now_ms: now_ms(),
            },
        )
        .context("opening the metadata log")?;
        let mut image = MetadataImage::default();
        log.for_each_record(|record| -> Result<()> {
            if let Some(value) = record.value {
                let text = std::str::from_utf8(&value).context("metadata record")?;
                image.replay(&MetadataRecord::decode(text)?);
            }
            Ok(())
        })?;
        Ok(LocalLog {
            log: Mutex::new(log),
            image: watch::Sender::new(Arc::new(image)),
        })
    }
}

impl MetadataLog for LocalLog {
    fn image(&self) -> Arc<MetadataImage> {
        self.image.borrow().clone()
    }

    fn commit(&self, records: &[MetadataRecord]) -> Result<(Arc<MetadataImage>, Vec<bool>)> {
        if records.is_empty() {
            return Ok((self.image(), Vec::new()));
        }
        let now = now_ms();
        let encoded: Vec<Record> = records
            .iter()
            .enumerate()
            .map(|(i, r)| Record {
                offset: i as i64,
                ..ferrolog_records::plain_record(
                    None,
                    Some(bytes::Bytes::from(r.encode())),
                    vec![],
                    now,
                )
            })
            .collect();
        let mut batch =
            ferrolog_records::encode(&encoded, Compression::None, Default::default(), None)
                .map_err(|e| anyhow!("encoding metadata records: {e}"))?;
        let mut log = crate::locks::lock(&self.log);
        log.append_as_leader(&mut batch, 0, now)?;
        let end = log.log_end_offset();
        log.update_high_watermark(end);
        let mut image = (*self.image()).clone();
        let accepted = records.iter().map(|r| image.replay(r)).collect();
        let image = Arc::new(image);
        self.image.send_replace(image.clone());
        Ok((image, accepted))
    }

    fn subscribe(&self) -> watch::Receiver<Arc<MetadataImage>> {
        self.image.subscribe()
    }

    fn end_offset(&self) -> i64 {
        crate::locks::lock(&self.log).log_end_offset()
    }

    fn close(&self) -> Result<()> {
        crate::locks::lock(&self.log).close()?;
        Ok(())
    }
}

fn now_ms() -> i64 {
    crate::now_ms()
}

/// The broker's handle on cluster metadata: reads the latest image, commits changes.
pub struct Controller {
    log: Box<dyn MetadataLog>,
    /// (next id, end of reserved block)
    producer_ids: Mutex<(i64, i64)>,
    /// Serialises this node's producer-id block reservations.
    reserving: RwLock<()>,
}

impl Controller {
    /// A single node's controller over its local metadata log.
    pub fn open(log_dir: &Path, clean_shutdown: bool) -> Result<Controller> {
        Ok(Controller::new(Box::new(LocalLog::open(
            log_dir,
            clean_shutdown,
        )?)))
    }

    pub fn new(log: Box<dyn MetadataLog>) -> Controller {
        Controller {
            log,
            producer_ids: Mutex::new((0, 0)),
            reserving: RwLock::new(()),
        }
    }

    pub fn image(&self) -> Arc<MetadataImage> {
        self.log.image()
    }

    pub fn subscribe(&self) -> watch::Receiver<Arc<MetadataImage>> {
        self.log.subscribe()
    }

    pub fn end_offset(&self) -> i64 {
        self.log.end_offset()
    }

    /// Commits `records`, then returns the image with them applied.
    pub fn commit(&self, records: &[MetadataRecord]) -> Result<Arc<MetadataImage>> {
        Ok(self.log.commit(records)?.0)
    }

    /// Commits `records`; also says which were accepted.
    pub fn commit_checked(
        &self,
        records: &[MetadataRecord],
    ) -> Result<(Arc<MetadataImage>, Vec<bool>)> {
        self.log.commit(records)
    }

    /// A new producer id, from this node's current durable block (reserving another when it
    /// runs out: blocks are unique across the cluster).
    pub fn next_producer_id(&self) -> Result<i64> {
        let _one_at_a_time = crate::locks::write(&self.reserving);
        let mut ids = *crate::locks::lock(&self.producer_ids);
        if ids.0 >= ids.1 {
            let mut attempts = 0;
            ids = loop {
                let start = self.image().next_producer_id_block;
                let (_, accepted) = self.commit_checked(&[MetadataRecord::ProducerIds {
                    next_block: start + PRODUCER_ID_BLOCK,
                }])?;
                if accepted.first() == Some(&true) {
                    break (start, start + PRODUCER_ID_BLOCK);
                }
                attempts += 1;
                if attempts > 20 {
                    bail!("could not reserve a producer-id block");
                }
            };
        }
        let id = ids.0;
        ids.0 += 1;
        *crate::locks::lock(&self.producer_ids) = ids;
        Ok(id)
    }

    pub fn close(&self) -> Result<()> {
        self.log.close()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn preconditions_make_concurrent_proposals_safe() {
        let mut image = MetadataImage::default();
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        assert!(image.replay(&MetadataRecord::Topic {
            name: "t".into(),
            id: a
        }));
        // a second creator of the same name loses, and its partitions go nowhere
        assert!(!image.replay(&MetadataRecord::Topic {
            name: "t".into(),
            id: b
        }));
        assert!(!image.replay(&MetadataRecord::Partitions { id: b, count: 3 }));
        assert_eq!(image.topic("t").unwrap().id, a);
        let state = PartitionState {
            replicas: vec![1, 2, 3],
            isr: vec![1, 2, 3],
            leader: 1,
            leader_epoch: 0,
            partition_epoch: 0,
            adding: vec![],
            removing: vec![],
        };
        let change = |isr: Vec<i32>, expect| MetadataRecord::Partition {
            topic: a,
            index: 0,
            state: PartitionState {
                isr,
                partition_epoch: expect + 1,
                ..state.clone()
            },
            expect_epoch: Some(expect),
        };
        assert!(
            !image.replay(&change(vec![1], 0)),
            "no state yet to compare with"
        );
        assert!(image.replay(&MetadataRecord::Partition {
            topic: a,
            index: 0,
            state: state.clone(),
            expect_epoch: None
        }));
        // two ISR changes against the same epoch: the first wins
        assert!(image.replay(&change(vec![1, 2], 0)));
        assert!(!image.replay(&change(vec![1, 3], 0)));
        assert_eq!(image.partitions[&(a, 0)].isr, vec![1, 2]);
        // producer-id blocks: only the next one
        assert!(image.replay(&MetadataRecord::ProducerIds {
            next_block: PRODUCER_ID_BLOCK
        }));
        assert!(!image.replay(&MetadataRecord::ProducerIds {
            next_block: PRODUCER_ID_BLOCK
        }));
        // logs of earlier single-node versions still replay
        let legacy = MetadataRecord::decode(&format!("partitions\t{a}\t5")).unwrap();
        assert_eq!(legacy, MetadataRecord::Partitions { id: a, count: 5 });
        assert!(MetadataRecord::decode("bogus\tx").is_err());
        // records and images round-trip through JSON (the Raft log and snapshots)
        let r = change(vec![1], 1);
        assert_eq!(MetadataRecord::decode(&r.encode()).unwrap(), r);
        let back: MetadataImage =
            serde_json::from_str(&serde_json::to_string(&image).unwrap()).unwrap();
        assert_eq!(back.partitions, image.partitions);
    }

    #[test]
    fn records_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let id = Uuid::new_v4();
        {
            let c = Controller::open(dir.path(), true).unwrap();
            c.commit(&[
                MetadataRecord::Topic {
                    name: "a".into(),
                    id,
                },
                MetadataRecord::Partitions { id, count: 3 },
                MetadataRecord::Config {
                    id,
                    key: "flush.messages".into(),
                    value: "1".into(),
                },
            ])
            .unwrap();
            assert_eq!(c.next_producer_id().unwrap(), 0);
            assert_eq!(c.next_producer_id().unwrap(), 1);
        }
        let c = Controller::open(dir.path(), false).unwrap();
        let image = c.image();
        let t = image.topic("a").unwrap();
        assert_eq!(t.partitions, 3);
        assert_eq!(t.configs["flush.messages"], "1");
        // ids are never reused across restarts
        assert_eq!(c.next_producer_id().unwrap(), PRODUCER_ID_BLOCK);
        c.commit(&[MetadataRecord::RemoveTopic { id }]).unwrap();
        assert!(c.image().topic("a").is_none());
    }
}
