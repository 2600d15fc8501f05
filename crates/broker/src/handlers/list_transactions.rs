//! ListTransactions: transactional ids filtered by state, producer id, duration (v1) and
//! id pattern (v2, a regular expression).

use std::sync::Arc;

use kafka_protocol::messages::list_transactions_response::TransactionState;
use kafka_protocol::messages::{
    ListTransactionsRequest, ListTransactionsResponse, ProducerId, TransactionalId,
};
use kafka_protocol::ResponseError;

use super::str;
use crate::txn::TxnState;
use crate::Broker;

const STATES: &[TxnState] = &[
    TxnState::Empty,
    TxnState::Ongoing,
    TxnState::PrepareCommit,
    TxnState::PrepareAbort,
    TxnState::CompleteCommit,
    TxnState::CompleteAbort,
    TxnState::Dead,
    TxnState::PrepareEpochFence,
];

pub fn handle(broker: &Arc<Broker>, request: ListTransactionsRequest) -> ListTransactionsResponse {
    let mut response = ListTransactionsResponse::default();
    response.unknown_state_filters = request
        .state_filters
        .iter()
        .filter(|f| !STATES.iter().any(|s| s.name() == f.as_str()))
        .cloned()
        .collect();
    let pattern = match request.transactional_id_pattern.as_deref() {
        Some(p) if !p.is_empty() => match regex::Regex::new(&format!("^(?:{p})$")) {
            Ok(r) => Some(r),
            Err(_) => {
                return response.with_error_code(ResponseError::InvalidRegularExpression.code())
            }
        },
        _ => None,
    };
    let now = crate::now_ms();
    for (id, m) in broker.txns.snapshot() {
        let state_ok = request.state_filters.is_empty()
            || request
                .state_filters
                .iter()
                .any(|f| f.as_str() == m.state.name());
        let producer_ok = request.producer_id_filters.is_empty()
            || request
                .producer_id_filters
                .iter()
                .any(|p| p.0 == m.producer_id);
        // Kafka: transactions running longer than the filter, in any state
        let duration_ok = request.duration_filter < 0 || now - m.start_ms > request.duration_filter;
        let pattern_ok = pattern.as_ref().is_none_or(|r| r.is_match(&id));
        if state_ok && producer_ok && duration_ok && pattern_ok {
            response.transaction_states.push(
                TransactionState::default()
                    .with_transactional_id(TransactionalId(str(&id)))
                    .with_producer_id(ProducerId(m.producer_id))
                    .with_transaction_state(str(m.state.name())),
            );
        }
    }
    response
}
