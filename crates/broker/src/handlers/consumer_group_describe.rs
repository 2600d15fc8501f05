//! ConsumerGroupDescribe (KIP-848): epochs, assignor and members of consumer-protocol groups.

use std::sync::Arc;

use kafka_protocol::messages::consumer_group_describe_response::{
    Assignment, DescribedGroup, Member, TopicPartitions,
};
use kafka_protocol::messages::{ConsumerGroupDescribeRequest, ConsumerGroupDescribeResponse};
use kafka_protocol::ResponseError;

use super::consumer_group_heartbeat::by_topic;
use super::{str, topic_name};
use crate::group::assignor;
use crate::metadata::MetadataImage;
use crate::Broker;

fn assignment(image: &MetadataImage, a: &assignor::Assignment) -> Assignment {
    Assignment::default().with_topic_partitions(
        by_topic(a)
            .into_iter()
            .map(|(id, partitions)| {
                TopicPartitions::default()
                    .with_topic_id(id)
                    .with_topic_name(topic_name(
                        image.ids.get(&id).map(String::as_str).unwrap_or(""),
                    ))
                    .with_partitions(partitions)
            })
            .collect(),
    )
}

pub fn handle(
    broker: &Arc<Broker>,
    request: ConsumerGroupDescribeRequest,
    version: i16,
) -> ConsumerGroupDescribeResponse {
    let image = broker.controller.image();
    let mut response = ConsumerGroupDescribeResponse::default();
    for id in request.group_ids {
        let mut g = DescribedGroup::default()
            .with_group_id(id.clone())
            .with_authorized_operations(super::operations::if_asked(
                request.include_authorized_operations,
                super::operations::GROUP,
            ));
        match broker.groups.consumer_group(&id.0) {
            None => {
                g.error_code = ResponseError::GroupIdNotFound.code();
                g.error_message = Some(str(&format!("Group {} not found.", &*id.0)));
                g.group_state = str("Dead");
            }
            Some(c) => {
                g.group_state = str(c.state_name());
                g.group_epoch = c.epoch;
                g.assignment_epoch = c.assignment_epoch;
                g.assignor_name = str(&c.assignor);
                for m in c.members.values() {
                    let target = c.target.get(&m.id).cloned().unwrap_or_default();
                    let mut member = Member::default()
                        .with_member_id(str(&m.id))
                        .with_instance_id(m.instance_id.as_deref().map(str))
                        .with_rack_id(m.rack_id.as_deref().map(str))
                        .with_member_epoch(m.epoch)
                        .with_client_id(str(&m.client_id))
                        .with_client_host(str(&m.client_host))
                        .with_subscribed_topic_names(
                            m.subscribed_names.iter().map(|n| topic_name(n)).collect(),
                        )
                        .with_subscribed_topic_regex(m.subscribed_regex.as_deref().map(str))
                        .with_assignment(assignment(&image, &m.assigned))
                        .with_target_assignment(assignment(&image, &target));
                    if version >= 1 {
                        member.member_type = 1;
                    }
                    g.members.push(member);
                }
            }
        }
        response.groups.push(g);
    }
    response
}
