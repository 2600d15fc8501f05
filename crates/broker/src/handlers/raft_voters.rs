//! AddRaftVoter and RemoveRaftVoter (KIP-853, what `kafka-metadata-quorum add-controller` /
//! `remove-controller` send): change the voters of a dynamic controller quorum through the
//! active controller. The controller being added must be running and observing the quorum (a
//! controller started with `controller.quorum.bootstrap.servers`); it becomes a voter once it
//! has caught up.

use std::sync::Arc;

use kafka_protocol::messages::{
    AddRaftVoterRequest, AddRaftVoterResponse, RemoveRaftVoterRequest, RemoveRaftVoterResponse,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use super::str;
use crate::quorum::VoterChange;
use crate::Broker;

/// The error of a refused change: code and message.
type Refusal = (i16, String);

async fn change(
    broker: &Arc<Broker>,
    cluster_id: Option<&StrBytes>,
    change: VoterChange,
) -> Result<(), Refusal> {
    let Some(quorum) = &broker.quorum else {
        return Err((
            ResponseError::InvalidRequest.code(),
            "a single node has no controller quorum to change".into(),
        ));
    };
    if let Some(id) = cluster_id.filter(|id| ***id != *broker.cluster_id) {
        return Err((
            ResponseError::InconsistentClusterId.code(),
            format!("cluster id {} is not {}", &**id, broker.cluster_id),
        ));
    }
    quorum.change_voters(change).await.map_err(|e| {
        let message = format!("{e:#}");
        let code = if message.contains("already a voter") {
            ResponseError::DuplicateVoter.code()
        } else if message.contains("not a voter") {
            ResponseError::VoterNotFound.code()
        } else {
            ResponseError::RequestTimedOut.code()
        };
        (code, message)
    })
}

pub async fn add(broker: &Arc<Broker>, r: AddRaftVoterRequest) -> AddRaftVoterResponse {
    let result = match r.listeners.first() {
        None => Err((
            ResponseError::InvalidRequest.code(),
            "the new voter names no listener".to_string(),
        )),
        Some(l) => {
            let addr = format!("{}:{}", l.host, l.port);
            let id = r.voter_id.max(0) as u64;
            change(broker, r.cluster_id.as_ref(), VoterChange::Add { id, addr }).await
        }
    };
    match result {
        Ok(()) => AddRaftVoterResponse::default(),
        Err((code, message)) => AddRaftVoterResponse::default()
            .with_error_code(code)
            .with_error_message(Some(str(&message))),
    }
}

pub async fn remove(broker: &Arc<Broker>, r: RemoveRaftVoterRequest) -> RemoveRaftVoterResponse {
    let id = r.voter_id.max(0) as u64;
    match change(broker, r.cluster_id.as_ref(), VoterChange::Remove { id }).await {
        Ok(()) => RemoveRaftVoterResponse::default(),
        Err((code, message)) => RemoveRaftVoterResponse::default()
            .with_error_code(code)
            .with_error_message(Some(str(&message))),
    }
}
