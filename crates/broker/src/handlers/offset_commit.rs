//! OffsetCommit: validated against the group, written to `__consumer_offsets`, then answered.

use std::sync::Arc;

use kafka_protocol::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use kafka_protocol::messages::{OffsetCommitRequest, OffsetCommitResponse};
use kafka_protocol::ResponseError;

use crate::group::CommittedOffset;
use crate::Broker;

pub async fn handle(broker: &Arc<Broker>, request: OffsetCommitRequest) -> OffsetCommitResponse {
    let group = request.group_id.0.to_string();
    let membership = broker.groups.check_commit(
        &group,
        request.generation_id_or_member_epoch,
        &request.member_id,
        request.group_instance_id.as_deref(),
    );
    let image = broker.controller.image();
    let max_metadata = broker.groups.config().max_metadata_bytes;
    let now = crate::now_ms();
    let mut writes = Vec::new();
    let mut response = OffsetCommitResponse::default();
    for topic in &request.topics {
        let mut t = OffsetCommitResponseTopic::default().with_name(topic.name.clone());
        let known = image.topic(&topic.name.0);
        for p in &topic.partitions {
            let code = if let Err(e) = membership {
                e.code()
            } else if known
                .is_none_or(|t| p.partition_index < 0 || p.partition_index >= t.partitions)
            {
                ResponseError::UnknownTopicOrPartition.code()
            } else if p
                .committed_metadata
                .as_ref()
                .is_some_and(|m| m.len() > max_metadata)
            {
                ResponseError::OffsetMetadataTooLarge.code()
            } else {
                writes.push((
                    topic.name.0.to_string(),
                    p.partition_index,
                    Some(CommittedOffset {
                        offset: p.committed_offset,
                        leader_epoch: p.committed_leader_epoch,
                        metadata: p.committed_metadata.as_deref().unwrap_or("").to_string(),
                        commit_timestamp: now,
                    }),
                ));
                0
            };
            t.partitions.push(
                OffsetCommitResponsePartition::default()
                    .with_partition_index(p.partition_index)
                    .with_error_code(code),
            );
        }
        response.topics.push(t);
    }
    if let Err(e) = broker.persist_offsets(&group, writes).await {
        tracing::error!(group, "writing committed offsets failed: {e:#}");
        for t in &mut response.topics {
            for p in &mut t.partitions {
                if p.error_code == 0 {
                    p.error_code = ResponseError::CoordinatorNotAvailable.code();
                }
            }
        }
    }
    response
}
