//! AddPartitionsToTxn (v0-3, as producers send it): partitions join the producer's
//! transaction before it writes to them.

use std::sync::Arc;

use kafka_protocol::messages::add_partitions_to_txn_response::{
    AddPartitionsToTxnPartitionResult, AddPartitionsToTxnTopicResult,
};
use kafka_protocol::messages::{AddPartitionsToTxnRequest, AddPartitionsToTxnResponse};

use crate::Broker;

pub fn handle(
    broker: &Arc<Broker>,
    request: AddPartitionsToTxnRequest,
) -> AddPartitionsToTxnResponse {
    let partitions: Vec<(String, i32)> = request
        .v3_and_below_topics
        .iter()
        .flat_map(|t| t.partitions.iter().map(|p| (t.name.0.to_string(), *p)))
        .collect();
    let errors = broker.add_partitions_to_txn(
        &request.v3_and_below_transactional_id.0,
        request.v3_and_below_producer_id.0,
        request.v3_and_below_producer_epoch,
        &partitions,
    );
    let code_of = |tp: &(String, i32)| match &errors {
        Err(e) => e.code(),
        Ok(list) => list
            .iter()
            .find(|(p, _)| p == tp)
            .map_or(0, |(_, e)| e.code()),
    };
    let mut response = AddPartitionsToTxnResponse::default();
    for t in &request.v3_and_below_topics {
        let results = t
            .partitions
            .iter()
            .map(|p| {
                AddPartitionsToTxnPartitionResult::default()
                    .with_partition_index(*p)
                    .with_partition_error_code(code_of(&(t.name.0.to_string(), *p)))
            })
            .collect();
        response.results_by_topic_v3_and_below.push(
            AddPartitionsToTxnTopicResult::default()
                .with_name(t.name.clone())
                .with_results_by_partition(results),
        );
    }
    response
}
