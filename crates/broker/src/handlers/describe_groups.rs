//! DescribeGroups: state, protocol and members of classic groups.

use std::sync::Arc;

use kafka_protocol::messages::describe_groups_response::{DescribedGroup, DescribedGroupMember};
use kafka_protocol::messages::{DescribeGroupsRequest, DescribeGroupsResponse};

use super::str;
use crate::Broker;

pub fn handle(
    broker: &Arc<Broker>,
    request: DescribeGroupsRequest,
    version: i16,
) -> DescribeGroupsResponse {
    let mut response = DescribeGroupsResponse::default();
    for id in request.groups {
        let mut g = DescribedGroup::default().with_group_id(id.clone());
        if version >= 3 {
            g.authorized_operations = super::operations::if_asked(
                request.include_authorized_operations,
                super::operations::GROUP,
            );
        }
        if let Some(c) = broker.groups.consumer_group(&id.0) {
            // a consumer-protocol group: its state and members (they have no classic metadata)
            g.group_state = str(c.state_name());
            g.protocol_type = str("consumer");
            for m in c.members.values() {
                let mut member = DescribedGroupMember::default()
                    .with_member_id(str(&m.id))
                    .with_client_id(str(&m.client_id))
                    .with_client_host(str(&m.client_host));
                if version >= 4 {
                    member.group_instance_id = m.instance_id.as_deref().map(str);
                }
                g.members.push(member);
            }
            response.groups.push(g);
            continue;
        }
        match broker.groups.describe(&id.0) {
            None => g.group_state = str("Dead"),
            Some((state, protocol_type, protocol, members)) => {
                g.group_state = str(state.name());
                g.protocol_type = str(&protocol_type);
                g.protocol_data = str(&protocol);
                for m in members {
                    let metadata = m.metadata_for(&protocol);
                    let mut member = DescribedGroupMember::default()
                        .with_member_id(str(&m.id))
                        .with_client_id(str(&m.client_id))
                        .with_client_host(str(&m.client_host))
                        .with_member_metadata(metadata)
                        .with_member_assignment(m.assignment.clone());
                    if version >= 4 {
                        member.group_instance_id = m.instance_id.as_deref().map(str);
                    }
                    g.members.push(member);
                }
            }
        }
        response.groups.push(g);
    }
    response
}
