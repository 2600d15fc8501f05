//! DescribeLogDirs: the log directory, its partitions and their sizes.

use std::sync::Arc;

use kafka_protocol::messages::describe_log_dirs_response::{
    DescribeLogDirsPartition, DescribeLogDirsResult, DescribeLogDirsTopic,
};
use kafka_protocol::messages::{DescribeLogDirsRequest, DescribeLogDirsResponse};

use super::{str, topic_name};
use crate::Broker;

pub fn handle(
    broker: &Arc<Broker>,
    request: DescribeLogDirsRequest,
    version: i16,
) -> DescribeLogDirsResponse {
    let dir = broker.replicas.log_manager().dir();
    let mut result = DescribeLogDirsResult::default().with_log_dir(str(&dir.display().to_string()));
    if version >= 4 {
        let (total, usable) = crate::sys::disk_space(dir).unwrap_or((-1, -1));
        result.total_bytes = total;
        result.usable_bytes = usable;
    }
    let wanted = |topic: &str, partition: i32| match &request.topics {
        None => true,
        Some(topics) => topics
            .iter()
            .any(|t| &*t.topic.0 == topic && t.partitions.contains(&partition)),
    };
    let mut partitions: Vec<_> = broker
        .replicas
        .all()
        .into_iter()
        .filter(|p| wanted(&p.topic, p.index))
        .collect();
    partitions.sort_by(|a, b| (&a.topic, a.index).cmp(&(&b.topic, b.index)));
    for p in partitions {
        let size = p.with_log(|l| l.size_bytes()) as i64;
        if result.topics.last().is_none_or(|t| *t.name.0 != *p.topic) {
            result
                .topics
                .push(DescribeLogDirsTopic::default().with_name(topic_name(&p.topic)));
        }
        result.topics.last_mut().expect("pushed").partitions.push(
            DescribeLogDirsPartition::default()
                .with_partition_index(p.index)
                .with_partition_size(size)
                .with_offset_lag(0),
        );
    }
    DescribeLogDirsResponse::default().with_results(vec![result])
}
