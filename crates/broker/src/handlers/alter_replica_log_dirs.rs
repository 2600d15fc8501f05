//! AlterReplicaLogDirs: move replicas of this broker between its log directories (JBOD).

use std::path::PathBuf;
use std::sync::Arc;

use kafka_protocol::messages::alter_replica_log_dirs_response::{
    AlterReplicaLogDirPartitionResult, AlterReplicaLogDirTopicResult,
};
use kafka_protocol::messages::{AlterReplicaLogDirsRequest, AlterReplicaLogDirsResponse};
use kafka_protocol::ResponseError;

use crate::replica_manager::MoveError;
use crate::Broker;

pub async fn handle(
    broker: &Arc<Broker>,
    request: AlterReplicaLogDirsRequest,
) -> AlterReplicaLogDirsResponse {
    let broker = broker.clone();
    // copying a log is blocking file work
    let moved = tokio::task::spawn_blocking(move || {
        let mut results: Vec<AlterReplicaLogDirTopicResult> = Vec::new();
        for dir in &request.dirs {
            let dest = PathBuf::from(dir.path.as_str());
            for topic in &dir.topics {
                let mut result =
                    AlterReplicaLogDirTopicResult::default().with_topic_name(topic.name.clone());
                for &partition in &topic.partitions {
                    let code = match broker.replicas.move_to_dir(&topic.name, partition, &dest) {
                        Ok(()) => 0,
                        Err(MoveError::LogDirNotFound) => ResponseError::LogDirNotFound.code(),
                        Err(MoveError::Offline) | Err(MoveError::Storage(_)) => {
                            ResponseError::KafkaStorageError.code()
                        }
                        Err(MoveError::ReplicaNotAvailable) => {
                            ResponseError::ReplicaNotAvailable.code()
                        }
                    };
                    result.partitions.push(
                        AlterReplicaLogDirPartitionResult::default()
                            .with_partition_index(partition)
                            .with_error_code(code),
                    );
                }
                results.push(result);
            }
        }
        results
    })
    .await
    .unwrap_or_default();
    AlterReplicaLogDirsResponse::default().with_results(moved)
}
