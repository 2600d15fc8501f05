//! TxnOffsetCommit: a transactional producer commits a consumer group's offsets as part of its
//! transaction (consume-transform-produce); they become visible when the transaction commits.

use std::sync::Arc;

use kafka_protocol::messages::txn_offset_commit_response::{
    TxnOffsetCommitResponsePartition, TxnOffsetCommitResponseTopic,
};
use kafka_protocol::messages::{TxnOffsetCommitRequest, TxnOffsetCommitResponse};
use kafka_protocol::ResponseError;

use crate::group::CommittedOffset;
use crate::Broker;

pub async fn handle(
    broker: &Arc<Broker>,
    request: TxnOffsetCommitRequest,
) -> TxnOffsetCommitResponse {
    let group = request.group_id.0.to_string();
    let image = broker.controller.image();
    let max_metadata = broker.groups.config().max_metadata_bytes;
    let now = crate::now_ms();
    // KIP-447: a member of the group commits at its generation (or member epoch)
    let membership = if request.generation_id >= 0 || !request.member_id.is_empty() {
        broker.groups.check_commit(
            &group,
            request.generation_id,
            &request.member_id,
            request.group_instance_id.as_deref(),
        )
    } else if group.is_empty() {
        Err(ResponseError::InvalidGroupId)
    } else {
        Ok(())
    };
    let mut codes = Vec::new();
    let mut offsets = Vec::new();
    for t in &request.topics {
        let known = image.topic(&t.name.0);
        for p in &t.partitions {
            let code = if let Err(e) = membership {
                Some(e)
            } else if known
                .is_none_or(|k| p.partition_index < 0 || p.partition_index >= k.partitions)
            {
                Some(ResponseError::UnknownTopicOrPartition)
            } else if p
                .committed_metadata
                .as_ref()
                .is_some_and(|m| m.len() > max_metadata)
            {
                Some(ResponseError::OffsetMetadataTooLarge)
            } else {
                offsets.push((
                    t.name.0.to_string(),
                    p.partition_index,
                    CommittedOffset {
                        offset: p.committed_offset,
                        leader_epoch: p.committed_leader_epoch,
                        metadata: p.committed_metadata.as_deref().unwrap_or("").to_string(),
                        commit_timestamp: now,
                    },
                ));
                None
            };
            codes.push(code);
        }
    }
    let written = if offsets.is_empty() {
        Ok(())
    } else {
        broker
            .txn_offset_commit(
                &request.transactional_id.0,
                &group,
                request.producer_id.0,
                request.producer_epoch,
                offsets,
            )
            .await
    };
    let mut codes = codes.into_iter().map(|c| match (&written, c) {
        (_, Some(c)) => c.code(),
        (Err(e), None) => e.code(),
        (Ok(()), None) => 0,
    });
    let mut response = TxnOffsetCommitResponse::default();
    for t in &request.topics {
        let partitions = t
            .partitions
            .iter()
            .map(|p| {
                TxnOffsetCommitResponsePartition::default()
                    .with_partition_index(p.partition_index)
                    .with_error_code(codes.next().unwrap_or(0))
            })
            .collect();
        response.topics.push(
            TxnOffsetCommitResponseTopic::default()
                .with_name(t.name.clone())
                .with_partitions(partitions),
        );
    }
    response
}
