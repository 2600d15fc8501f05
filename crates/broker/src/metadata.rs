//! Cluster metadata: an immutable [`MetadataImage`] rebuilt by replaying metadata records, and
//! the single-node controller that appends those records to the metadata log
//! (`<log.dir>/__cluster_metadata-0`, a Kafka-format log) before applying them.
//!
//! Records are one text line each (`topic <name> <id>`, `partitions <id> <count>`,
//! `config <id> <key> <value>`, `config-delete <id> <key>`, `remove-topic <id>`,
//! `producer-ids <next block start>`). The controller quorum (issue 3) replaces the local log
//! with a replicated one; the image and the replay stay.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex, RwLock};

use anyhow::{anyhow, Context, Result};
use ferrolog_records::{Compression, Record};
use ferrolog_storage::{Log, LogConfig, LogOpenOptions};
use uuid::Uuid;

use crate::config::Properties;

pub const METADATA_TOPIC: &str = "__cluster_metadata";
/// Producer ids are handed out in durable blocks of this size (as Kafka does).
pub const PRODUCER_ID_BLOCK: i64 = 1000;

#[derive(Debug, Clone, PartialEq)]
pub struct TopicImage {
    pub name: String,
    pub id: Uuid,
    pub partitions: i32,
    pub configs: Properties,
}

#[derive(Debug, Clone, Default)]
pub struct MetadataImage {
    pub topics: BTreeMap<String, TopicImage>,
    pub ids: BTreeMap<Uuid, String>,
    /// First producer id not yet reserved.
    pub next_producer_id_block: i64,
    /// Dynamic broker configs by scope ("" = cluster-wide default, else a node id).
    pub broker_configs: BTreeMap<String, Properties>,
}

/// One metadata record.
#[derive(Debug, Clone, PartialEq)]
pub enum MetadataRecord {
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
}

impl MetadataRecord {
    fn encode(&self) -> String {
        match self {
            MetadataRecord::Topic { name, id } => format!("topic\t{name}\t{id}"),
            MetadataRecord::Partitions { id, count } => format!("partitions\t{id}\t{count}"),
            MetadataRecord::Config { id, key, value } => format!("config\t{id}\t{key}\t{value}"),
            MetadataRecord::ConfigDelete { id, key } => format!("config-delete\t{id}\t{key}"),
            MetadataRecord::RemoveTopic { id } => format!("remove-topic\t{id}"),
            MetadataRecord::ProducerIds { next_block } => format!("producer-ids\t{next_block}"),
            MetadataRecord::BrokerConfig { scope, key, value } => {
                format!("broker-config\t{scope}\t{key}\t{value}")
            }
            MetadataRecord::BrokerConfigDelete { scope, key } => {
                format!("broker-config-delete\t{scope}\t{key}")
            }
        }
    }

    fn decode(line: &str) -> Result<MetadataRecord> {
        let f: Vec<&str> = line.splitn(4, '\t').collect();
        let id = |i: usize| -> Result<Uuid> {
            Ok(Uuid::parse_str(
                f.get(i).ok_or_else(|| anyhow!("missing id"))?,
            )?)
        };
        let s = |i: usize| -> Result<String> {
            Ok(f.get(i)
                .ok_or_else(|| anyhow!("missing field"))?
                .to_string())
        };
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
            other => return Err(anyhow!("unknown metadata record type {other}")),
        })
    }
}

impl MetadataImage {
    /// Applies one record (the only way the image changes).
    pub fn replay(&mut self, record: &MetadataRecord) {
        match record {
            MetadataRecord::Topic { name, id } => {
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
            MetadataRecord::Partitions { id, count } => {
                if let Some(t) = self.topic_by_id_mut(id) {
                    t.partitions = *count;
                }
            }
            MetadataRecord::Config { id, key, value } => {
                if let Some(t) = self.topic_by_id_mut(id) {
                    t.configs.insert(key.clone(), value.clone());
                }
            }
            MetadataRecord::ConfigDelete { id, key } => {
                if let Some(t) = self.topic_by_id_mut(id) {
                    t.configs.remove(key);
                }
            }
            MetadataRecord::RemoveTopic { id } => {
                if let Some(name) = self.ids.remove(id) {
                    self.topics.remove(&name);
                }
            }
            MetadataRecord::ProducerIds { next_block } => {
                self.next_producer_id_block = self.next_producer_id_block.max(*next_block);
            }
            MetadataRecord::BrokerConfig { scope, key, value } => {
                self.broker_configs
                    .entry(scope.clone())
                    .or_default()
                    .insert(key.clone(), value.clone());
            }
            MetadataRecord::BrokerConfigDelete { scope, key } => {
                if let Some(layer) = self.broker_configs.get_mut(scope) {
                    layer.remove(key);
                }
            }
        }
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
}

/// The single-node controller: serialises metadata changes through the metadata log.
pub struct Controller {
    log: Mutex<Log>,
    image: RwLock<Arc<MetadataImage>>,
    /// (next id, end of reserved block)
    producer_ids: Mutex<(i64, i64)>,
}

fn now_ms() -> i64 {
    crate::now_ms()
}

impl Controller {
    /// Opens the metadata log under `log_dir` and replays it.
    pub fn open(log_dir: &Path, clean_shutdown: bool) -> Result<Controller> {
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
                let line = std::str::from_utf8(&value).context("metadata record")?;
                image.replay(&MetadataRecord::decode(line)?);
            }
            Ok(())
        })?;
        let next = image.next_producer_id_block;
        Ok(Controller {
            log: Mutex::new(log),
            image: RwLock::new(Arc::new(image)),
            producer_ids: Mutex::new((next, next)),
        })
    }

    pub fn image(&self) -> Arc<MetadataImage> {
        self.image.read().expect("image lock").clone()
    }

    /// Appends `records` durably, then applies them to a new image.
    pub fn commit(&self, records: &[MetadataRecord]) -> Result<Arc<MetadataImage>> {
        if records.is_empty() {
            return Ok(self.image());
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
        let mut log = self.log.lock().expect("metadata log lock");
        log.append_as_leader(&mut batch, 0, now)?;
        let end = log.log_end_offset();
        log.update_high_watermark(end);
        let mut guard = self.image.write().expect("image lock");
        let mut image = (**guard).clone();
        for r in records {
            image.replay(r);
        }
        let image = Arc::new(image);
        *guard = image.clone();
        Ok(image)
    }

    /// A new producer id, from the current durable block (reserving another when it runs out).
    pub fn next_producer_id(&self) -> Result<i64> {
        let mut ids = self.producer_ids.lock().expect("producer ids lock");
        if ids.0 >= ids.1 {
            let start = ids.1.max(self.image().next_producer_id_block);
            self.commit(&[MetadataRecord::ProducerIds {
                next_block: start + PRODUCER_ID_BLOCK,
            }])?;
            *ids = (start, start + PRODUCER_ID_BLOCK);
        }
        let id = ids.0;
        ids.0 += 1;
        Ok(id)
    }

    pub fn close(&self) -> Result<()> {
        self.log.lock().expect("metadata log lock").close()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
