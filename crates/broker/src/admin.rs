//! Topic and config administration: creating, growing and deleting topics, placing their
//! replicas, and the dynamic configs of topics, groups and brokers. Each change is a set of
//! metadata records committed through the controller; the metadata publisher then applies it
//! to the hosted partitions.

use anyhow::Result;
use uuid::Uuid;

use crate::config;
use crate::metadata::{self, MetadataImage, MetadataRecord};
use crate::{lock_blocking, quorum, Broker};

impl Broker {
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
}

/// The records that turn the config overrides `current` into `wanted`: `record(key, None)` for
/// each key to delete, `record(key, Some(value))` for each key to set.
pub(crate) fn config_changes(
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

/// Initial partition states for partitions `first..` with the given replicas: the first
/// replica leads, all are in sync.
pub(crate) fn partition_records(
    id: Uuid,
    first: i32,
    replicas: &[Vec<i32>],
) -> Vec<MetadataRecord> {
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
