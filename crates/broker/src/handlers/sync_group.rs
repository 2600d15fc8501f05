//! SyncGroup: the leader hands out assignments; every member gets its own.

use std::sync::Arc;

use kafka_protocol::messages::{SyncGroupRequest, SyncGroupResponse};

use super::{str, RequestContext};
use crate::Broker;

pub async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    request: SyncGroupRequest,
) -> SyncGroupResponse {
    let assignments = request
        .assignments
        .iter()
        .map(|a| (a.member_id.to_string(), a.assignment.clone()))
        .collect();
    let outcome = broker
        .groups
        .sync(
            &request.group_id.0,
            request.generation_id,
            &request.member_id,
            request.group_instance_id.as_deref(),
            assignments,
            &super::consumer_group_heartbeat::all_topics(broker),
        )
        .await;
    if outcome.error == 0 {
        // the new generation's membership is written before the members hear of it
        broker.persist_groups().await;
    }
    let mut response = SyncGroupResponse::default()
        .with_error_code(outcome.error)
        .with_assignment(outcome.assignment);
    if ctx.version >= 5 {
        response.protocol_type = outcome.protocol_type.as_deref().map(str);
        response.protocol_name = outcome.protocol.as_deref().map(str);
    }
    response
}
