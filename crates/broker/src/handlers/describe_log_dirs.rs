//! DescribeLogDirs: each log directory, its partitions and their sizes; an offline directory
//! answers KAFKA_STORAGE_ERROR.

use std::sync::Arc;

use kafka_protocol::messages::describe_log_dirs_response::{
    DescribeLogDirsPartition, DescribeLogDirsResult, DescribeLogDirsTopic,
};
use kafka_protocol::messages::{DescribeLogDirsRequest, DescribeLogDirsResponse};
use kafka_protocol::ResponseError;

use super::{str, topic_name};
use crate::Broker;

pub fn handle(
    broker: &Arc<Broker>,
    request: DescribeLogDirsRequest,
    version: i16,
) -> DescribeLogDirsResponse {
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
        .map(|p| {
            let (dir, size) = p.log_dir_and_size();
            (p.topic.clone(), p.index, dir, size as i64)
        })
        .collect();
    partitions.sort_by(|a, b| (&a.0, a.1).cmp(&(&b.0, b.1)));
    let mut results = Vec::new();
    for dir in broker.replicas.log_manager().dirs() {
        let mut result =
            DescribeLogDirsResult::default().with_log_dir(str(&dir.path.display().to_string()));
        if dir.offline {
            results.push(result.with_error_code(ResponseError::KafkaStorageError.code()));
            continue;
        }
        if version >= 4 {
            let (total, usable) = crate::sys::disk_space(&dir.path).unwrap_or((-1, -1));
            result.total_bytes = total;
            result.usable_bytes = usable;
        }
        for (topic, index, _, size) in partitions
            .iter()
            .filter(|p| p.2.as_deref() == Some(dir.path.as_path()))
        {
            if result.topics.last().is_none_or(|t| *t.name.0 != **topic) {
                result
                    .topics
                    .push(DescribeLogDirsTopic::default().with_name(topic_name(topic)));
            }
            result.topics.last_mut().expect("pushed").partitions.push(
                DescribeLogDirsPartition::default()
                    .with_partition_index(*index)
                    .with_partition_size(*size)
                    .with_offset_lag(0),
            );
        }
        results.push(result);
    }
    DescribeLogDirsResponse::default().with_results(results)
}
