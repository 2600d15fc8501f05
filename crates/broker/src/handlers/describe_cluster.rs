//! DescribeCluster: the live brokers and the active controller.

use std::sync::Arc;

use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::{BrokerId, DescribeClusterRequest, DescribeClusterResponse};
use kafka_protocol::ResponseError;

use super::str;
use crate::Broker;

pub fn handle(
    broker: &Arc<Broker>,
    ctx: &super::RequestContext,
    request: DescribeClusterRequest,
) -> DescribeClusterResponse {
    let mut response = DescribeClusterResponse::default()
        .with_cluster_id(str(&broker.cluster_id))
        .with_controller_id(BrokerId(broker.active_controller()))
        .with_endpoint_type(request.endpoint_type)
        .with_cluster_authorized_operations(super::operations::if_asked(
            request.include_cluster_authorized_operations,
            super::operations::CLUSTER,
        ));
    if request.endpoint_type != 1 && request.endpoint_type != 2 {
        return response
            .with_error_code(ResponseError::UnsupportedEndpointType.code())
            .with_error_message(Some(str(&format!(
                "unknown endpoint type {}",
                request.endpoint_type
            ))));
    }
    let image = broker.controller.image();
    response.brokers = super::metadata::brokers(broker, &image, &ctx.session.listener)
        .into_iter()
        .map(|b| {
            DescribeClusterBroker::default()
                .with_broker_id(b.node_id)
                .with_host(b.host)
                .with_port(b.port)
                .with_rack(b.rack)
        })
        .collect();
    response
}
