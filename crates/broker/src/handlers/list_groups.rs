//! ListGroups, with the state (v4+) and type (v5+) filters.

use std::sync::Arc;

use kafka_protocol::messages::list_groups_response::ListedGroup;
use kafka_protocol::messages::{GroupId, ListGroupsRequest, ListGroupsResponse};

use super::str;
use crate::Broker;

pub fn handle(
    broker: &Arc<Broker>,
    request: ListGroupsRequest,
    version: i16,
) -> ListGroupsResponse {
    let mut response = ListGroupsResponse::default();
    for listing in broker.groups.list() {
        let state_ok = request.states_filter.is_empty()
            || request
                .states_filter
                .iter()
                .any(|s| s.eq_ignore_ascii_case(&listing.state));
        let type_ok = request.types_filter.is_empty()
            || request
                .types_filter
                .iter()
                .any(|t| t.eq_ignore_ascii_case(listing.kind));
        if !state_ok || !type_ok {
            continue;
        }
        let mut g = ListedGroup::default()
            .with_group_id(GroupId(str(&listing.id)))
            .with_protocol_type(str(&listing.protocol_type));
        if version >= 4 {
            g.group_state = str(&listing.state);
        }
        if version >= 5 {
            g.group_type = str(listing.kind);
        }
        response.groups.push(g);
    }
    response
}
