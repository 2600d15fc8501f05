//! The group coordinator's persistence: committed offsets and group metadata written to (and
//! loaded from) `__consumer_offsets` through the coordinator write path, offset expiry, and the
//! tombstones of deleted topics' offsets.

use anyhow::Result;

use crate::metadata::MetadataImage;
use crate::{group, now_ms, Broker};

impl Broker {
    /// Creates `__consumer_offsets` (compacted, `offsets.topic.num.partitions`) if missing.
    pub fn ensure_offsets_topic(&self) -> Result<i32> {
        self.ensure_internal_topic(
            group::OFFSETS_TOPIC,
            self.config.settings.offsets_topic_num_partitions,
            self.config.settings.offsets_topic_segment_bytes,
        )
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
    pub(crate) async fn append_group_records(
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
        let retention_ms =
            i64::from(self.config.settings.offsets_retention_minutes).saturating_mul(60_000);
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
    pub(crate) fn replay_offsets(&self) -> Result<()> {
        let Some(topic) = self.controller.image().topic(group::OFFSETS_TOPIC).cloned() else {
            return Ok(());
        };
        for index in 0..topic.partitions {
            self.load_offsets_partition(index)?;
        }
        Ok(())
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

    /// Removes the groups' committed offsets of deleted topics (`deleted`, or every topic the
    /// image does not have: offsets just replayed from the log may name topics deleted while
    /// their coordinator was away) and queues their tombstones, as Kafka does.
    pub(crate) fn forget_offsets_of_deleted_topics(
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
    pub(crate) async fn write_offset_tombstones(&self) {
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
}
