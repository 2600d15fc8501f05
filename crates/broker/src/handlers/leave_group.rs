//! LeaveGroup: one member (v0-2) or a batch of members by id or instance id (v3+).

use std::sync::Arc;

use kafka_protocol::messages::leave_group_response::MemberResponse;
use kafka_protocol::messages::{LeaveGroupRequest, LeaveGroupResponse};

use super::{str, RequestContext};
use crate::Broker;

pub fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    request: LeaveGroupRequest,
) -> LeaveGroupResponse {
    let group = request.group_id.0.to_string();
    if ctx.version < 3 {
        let code = broker.groups.leave(&group, &request.member_id, None);
        return LeaveGroupResponse::default().with_error_code(code);
    }
    let mut response = LeaveGroupResponse::default();
    for m in &request.members {
        let code = broker
            .groups
            .leave(&group, &m.member_id, m.group_instance_id.as_deref());
        response.members.push(
            MemberResponse::default()
                .with_member_id(m.member_id.clone())
                .with_group_instance_id(m.group_instance_id.as_deref().map(str))
                .with_error_code(code),
        );
    }
    response
}
