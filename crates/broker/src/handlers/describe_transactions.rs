//! DescribeTransactions: state, producer, timeout and partitions of transactional ids.

use std::sync::Arc;

use kafka_protocol::messages::describe_transactions_response::{TopicData, TransactionState};
use kafka_protocol::messages::{
    DescribeTransactionsRequest, DescribeTransactionsResponse, ProducerId,
};
use kafka_protocol::ResponseError;

use super::{str, topic_name};
use crate::Broker;

pub fn handle(
    broker: &Arc<Broker>,
    request: DescribeTransactionsRequest,
) -> DescribeTransactionsResponse {
    let known = broker.txns.snapshot();
    let mut response = DescribeTransactionsResponse::default();
    for id in request.transactional_ids {
        let mut state = TransactionState::default().with_transactional_id(id.clone());
        match known.iter().find(|(k, _)| *k == *id.0) {
            None => state.error_code = ResponseError::TransactionalIdNotFound.code(),
            Some((_, m)) => {
                state.transaction_state = str(m.state.name());
                state.transaction_timeout_ms = m.timeout_ms;
                state.transaction_start_time_ms = m.start_ms;
                state.producer_id = ProducerId(m.producer_id);
                state.producer_epoch = m.producer_epoch;
                for (topic, p) in &m.partitions {
                    match state.topics.last_mut() {
                        Some(t) if *t.topic.0 == *topic => t.partitions.push(*p),
                        _ => state.topics.push(
                            TopicData::default()
                                .with_topic(topic_name(topic))
                                .with_partitions(vec![*p]),
                        ),
                    }
                }
            }
        }
        response.transaction_states.push(state);
    }
    response
}
