//! FindCoordinator: the coordinator of a group or transactional id is the leader of its
//! partition of `__consumer_offsets` or `__transaction_state` (this node on a single node).

use std::sync::Arc;

use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::{BrokerId, FindCoordinatorRequest, FindCoordinatorResponse};
use kafka_protocol::ResponseError;

use super::str;
use crate::Broker;

const GROUP: i8 = 0;
const TRANSACTION: i8 = 1;

pub fn handle(
    broker: &Arc<Broker>,
    ctx: &super::RequestContext,
    request: FindCoordinatorRequest,
) -> FindCoordinatorResponse {
    let version = ctx.version;
    let keys: Vec<String> = if version >= 4 {
        request
            .coordinator_keys
            .iter()
            .map(|k| k.to_string())
            .collect()
    } else {
        vec![request.key.to_string()]
    };
    let outcome = |key: &str| -> Result<(i32, String, i32), (ResponseError, String)> {
        if key.is_empty() {
            return Err((
                ResponseError::InvalidRequest,
                "empty coordinator key".into(),
            ));
        }
        let created = match request.key_type {
            GROUP => broker.ensure_offsets_topic(),
            TRANSACTION => broker.ensure_txn_topic(),
            other => {
                return Err((
                    ResponseError::InvalidRequest,
                    format!("unknown coordinator key type {other}"),
                ))
            }
        };
        created.map_err(|e| (ResponseError::CoordinatorNotAvailable, format!("{e:#}")))?;
        let topic = if request.key_type == GROUP {
            crate::group::OFFSETS_TOPIC
        } else {
            crate::txn::TXN_TOPIC
        };
        let (id, _, _) = broker.coordinator(topic, key).ok_or_else(|| {
            (
                ResponseError::CoordinatorNotAvailable,
                "the coordinator's partition has no leader".into(),
            )
        })?;
        // the coordinator's address on the listener this request came in on
        let (host, port) = broker
            .broker_endpoint(id, &ctx.session.listener)
            .ok_or_else(|| {
                (
                    ResponseError::CoordinatorNotAvailable,
                    format!("the coordinator has no listener {}", ctx.session.listener),
                )
            })?;
        Ok((id, host, port))
    };
    let mut response = FindCoordinatorResponse::default();
    for key in keys {
        let result = outcome(&key);
        if version >= 4 {
            let mut coordinator = Coordinator::default()
                .with_key(str(&key))
                .with_node_id(BrokerId(-1))
                .with_host(str(""))
                .with_port(-1);
            match result {
                Ok((id, host, port)) => {
                    coordinator = coordinator
                        .with_node_id(BrokerId(id))
                        .with_host(str(&host))
                        .with_port(port);
                }
                Err((e, message)) => {
                    coordinator = coordinator
                        .with_error_code(e.code())
                        .with_error_message(Some(str(&message)))
                }
            }
            response.coordinators.push(coordinator);
        } else {
            match result {
                Ok((id, host, port)) => {
                    response.node_id = BrokerId(id);
                    response.host = str(&host);
                    response.port = port;
                }
                Err((e, message)) => {
                    response.error_code = e.code();
                    response.node_id = BrokerId(-1);
                    response.port = -1;
                    if version >= 1 {
                        response.error_message = Some(str(&message));
                    }
                }
            }
        }
    }
    response
}
