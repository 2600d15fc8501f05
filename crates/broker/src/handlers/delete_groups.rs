//! DeleteGroups: empty groups only; their committed offsets get tombstones.

use std::sync::Arc;

use kafka_protocol::messages::delete_groups_response::DeletableGroupResult;
use kafka_protocol::messages::{DeleteGroupsRequest, DeleteGroupsResponse};
use kafka_protocol::ResponseError;

use crate::Broker;

pub fn handle(broker: &Arc<Broker>, request: DeleteGroupsRequest) -> DeleteGroupsResponse {
    let mut response = DeleteGroupsResponse::default();
    for id in request.groups_names {
        let code = match broker.groups.delete(&id.0) {
            Err(e) => e.code(),
            Ok(keys) => {
                let tombstones = keys.into_iter().map(|(t, p)| (t, p, None)).collect();
                match broker.persist_offsets(&id.0, tombstones) {
                    Ok(()) => 0,
                    Err(e) => {
                        tracing::error!(group = &*id.0, "deleting offsets failed: {e:#}");
                        ResponseError::CoordinatorNotAvailable.code()
                    }
                }
            }
        };
        response.results.push(
            DeletableGroupResult::default()
                .with_group_id(id)
                .with_error_code(code),
        );
    }
    response
}
