//! DescribeQuorum: the controller quorum of `__cluster_metadata` as its leader sees it (what
//! `kafka-metadata-quorum.sh describe --status|--replication` prints). A single node is its own
//! quorum of one.

use std::sync::Arc;

use kafka_protocol::messages::describe_quorum_response::{
    Listener, Node, PartitionData, ReplicaState, TopicData,
};
use kafka_protocol::messages::{BrokerId, DescribeQuorumRequest, DescribeQuorumResponse};
use kafka_protocol::ResponseError;

use super::{str, topic_name};
use crate::metadata::METADATA_TOPIC;
use crate::Broker;

pub async fn handle(
    broker: &Arc<Broker>,
    _request: DescribeQuorumRequest,
    version: i16,
) -> DescribeQuorumResponse {
    let c = &broker.config;
    let status = match &broker.quorum {
        None => {
            let end = broker.controller.end_offset();
            Ok(crate::quorum::QuorumStatus {
                leader: c.node_id,
                term: 0,
                high_watermark: end,
                voters: vec![(c.node_id as u64, end)],
                observers: Vec::new(),
                endpoints: Default::default(),
            })
        }
        Some(q) => q.describe().await,
    };
    let status = match status {
        Ok(s) => s,
        Err(e) => {
            return DescribeQuorumResponse::default()
                .with_error_code(ResponseError::NotLeaderOrFollower.code())
                .with_error_message(Some(str(&format!("{e:#}"))))
        }
    };
    let replica = |(id, end): &(u64, i64)| {
        ReplicaState::default()
            .with_replica_id(BrokerId(*id as i32))
            .with_log_end_offset(*end)
            .with_last_fetch_timestamp(-1)
            .with_last_caught_up_timestamp(-1)
    };
    let voters = status.voters.iter().map(replica).collect();
    let observers = status.observers.iter().map(replica).collect();
    let partition = PartitionData::default()
        .with_partition_index(0)
        .with_leader_id(BrokerId(status.leader))
        .with_leader_epoch(status.term as i32)
        .with_high_watermark(status.high_watermark)
        .with_current_voters(voters)
        .with_observers(observers);
    // the endpoints came with version 2
    let nodes = match &broker.quorum {
        Some(_) if version >= 2 => status
            .endpoints
            .iter()
            .filter_map(|(id, addr)| {
                let (host, port) = addr.rsplit_once(':')?;
                Some(
                    Node::default()
                        .with_node_id(BrokerId(*id as i32))
                        .with_listeners(vec![Listener::default()
                            .with_name(str("CONTROLLER"))
                            .with_host(str(host))
                            .with_port(port.parse().ok()?)]),
                )
            })
            .collect(),
        _ => Vec::new(),
    };
    DescribeQuorumResponse::default()
        .with_topics(vec![TopicData::default()
            .with_topic_name(topic_name(METADATA_TOPIC))
            .with_partitions(vec![partition])])
        .with_nodes(nodes)
}
