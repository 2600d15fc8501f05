//! JoinGroup: the classic group protocol's join phase.

use std::sync::Arc;

use kafka_protocol::messages::join_group_response::JoinGroupResponseMember;
use kafka_protocol::messages::{JoinGroupRequest, JoinGroupResponse};

use super::{str, RequestContext};
use crate::group::MemberRequest;
use crate::Broker;

pub async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    request: JoinGroupRequest,
) -> JoinGroupResponse {
    let member = MemberRequest {
        group_id: request.group_id.0.to_string(),
        member_id: request.member_id.to_string(),
        instance_id: request.group_instance_id.as_ref().map(|i| i.to_string()),
        client_id: ctx.client_id.clone(),
        client_host: ctx.client_host.clone(),
        session_timeout_ms: request.session_timeout_ms,
        rebalance_timeout_ms: if ctx.version >= 1 {
            request.rebalance_timeout_ms
        } else {
            request.session_timeout_ms
        },
        protocol_type: request.protocol_type.to_string(),
        protocols: request
            .protocols
            .iter()
            .map(|p| (p.name.to_string(), p.metadata.clone()))
            .collect(),
        require_known_member_id: ctx.version >= 4,
        supports_skip_assignment: ctx.version >= 9,
    };
    let topics = super::consumer_group_heartbeat::all_topics(broker);
    let outcome = broker.groups.join(member, &topics).await;
    let mut response = JoinGroupResponse::default()
        .with_error_code(outcome.error)
        .with_generation_id(outcome.generation)
        .with_protocol_name(
            outcome
                .protocol
                .as_deref()
                .map(str)
                .or_else(|| (ctx.version < 7).then(|| str(""))),
        )
        .with_leader(str(&outcome.leader))
        .with_member_id(str(&outcome.member_id));
    if ctx.version >= 7 {
        response.protocol_type = outcome.protocol_type.as_deref().map(str);
    }
    if ctx.version >= 9 {
        response.skip_assignment = outcome.skip_assignment;
    }
    response.members = outcome
        .members
        .into_iter()
        .map(|(id, instance, metadata)| {
            JoinGroupResponseMember::default()
                .with_member_id(str(&id))
                .with_group_instance_id(if ctx.version >= 5 {
                    instance.as_deref().map(str)
                } else {
                    None
                })
                .with_metadata(metadata)
        })
        .collect();
    response
}
