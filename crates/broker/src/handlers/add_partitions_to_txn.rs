//! AddPartitionsToTxn: partitions join the producer's transaction before it writes to them
//! (v0-3, as producers send it); v4+ batches several transactions and can only verify
//! (`verify_only`, KIP-890) that partitions are in them.

use std::sync::Arc;

use kafka_protocol::messages::add_partitions_to_txn_request::AddPartitionsToTxnTopic;
use kafka_protocol::messages::add_partitions_to_txn_response::{
    AddPartitionsToTxnPartitionResult, AddPartitionsToTxnResult, AddPartitionsToTxnTopicResult,
};
use kafka_protocol::messages::{AddPartitionsToTxnRequest, AddPartitionsToTxnResponse};
use kafka_protocol::ResponseError;

use crate::Broker;

/// Per-topic results: the request's partitions with the error each got.
fn results(
    topics: &[AddPartitionsToTxnTopic],
    errors: &Result<crate::txn::PartitionErrors, ResponseError>,
) -> Vec<AddPartitionsToTxnTopicResult> {
    let code_of = |tp: &(String, i32)| match errors {
        Err(e) => e.code(),
        Ok(list) => list
            .iter()
            .find(|(p, _)| p == tp)
            .map_or(0, |(_, e)| e.code()),
    };
    topics
        .iter()
        .map(|t| {
            AddPartitionsToTxnTopicResult::default()
                .with_name(t.name.clone())
                .with_results_by_partition(
                    t.partitions
                        .iter()
                        .map(|p| {
                            AddPartitionsToTxnPartitionResult::default()
                                .with_partition_index(*p)
                                .with_partition_error_code(code_of(&(t.name.0.to_string(), *p)))
                        })
                        .collect(),
                )
        })
        .collect()
}

fn partitions(topics: &[AddPartitionsToTxnTopic]) -> Vec<(String, i32)> {
    topics
        .iter()
        .flat_map(|t| t.partitions.iter().map(|p| (t.name.0.to_string(), *p)))
        .collect()
}

pub async fn handle(
    broker: &Arc<Broker>,
    request: AddPartitionsToTxnRequest,
    version: i16,
) -> AddPartitionsToTxnResponse {
    let mut response = AddPartitionsToTxnResponse::default();
    if version >= 4 {
        for t in &request.transactions {
            let wanted = partitions(&t.topics);
            let errors = if t.verify_only {
                broker.verify_txn_partitions(
                    &t.transactional_id.0,
                    t.producer_id.0,
                    t.producer_epoch,
                    &wanted,
                )
            } else {
                broker
                    .add_partitions_to_txn(
                        &t.transactional_id.0,
                        t.producer_id.0,
                        t.producer_epoch,
                        &wanted,
                    )
                    .await
            };
            response.results_by_transaction.push(
                AddPartitionsToTxnResult::default()
                    .with_transactional_id(t.transactional_id.clone())
                    .with_topic_results(results(&t.topics, &errors)),
            );
        }
        return response;
    }
    let errors = broker
        .add_partitions_to_txn(
            &request.v3_and_below_transactional_id.0,
            request.v3_and_below_producer_id.0,
            request.v3_and_below_producer_epoch,
            &partitions(&request.v3_and_below_topics),
        )
        .await;
    response.results_by_topic_v3_and_below = results(&request.v3_and_below_topics, &errors);
    response
}
