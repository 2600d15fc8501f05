//! `ferrolog topics`: like kafka-topics.sh.

use anyhow::{bail, Result};
use clap::{Args, Subcommand};
use ferrolog_client::kafka_protocol::messages::*;
use ferrolog_client::{error_name, str, topic_name};

#[derive(Args)]
pub struct TopicsArgs {
    /// The broker(s) to talk to, host:port (also accepted after the subcommand).
    #[arg(long, default_value = "localhost:9092", global = true)]
    bootstrap_server: String,
    #[command(subcommand)]
    action: Action,
}

#[derive(Subcommand)]
enum Action {
    Create {
        #[arg(long)]
        topic: String,
        #[arg(long, default_value_t = -1)]
        partitions: i32,
        #[arg(long, default_value_t = -1)]
        replication_factor: i16,
        /// Topic config key=value (repeatable).
        #[arg(long = "config")]
        configs: Vec<String>,
        #[arg(long)]
        if_not_exists: bool,
    },
    List,
    Describe {
        #[arg(long)]
        topic: Option<String>,
    },
    Delete {
        #[arg(long)]
        topic: String,
    },
    /// Grow a topic to N partitions (CreatePartitions; the new ones are placed on live brokers).
    Alter {
        #[arg(long)]
        topic: String,
        #[arg(long)]
        partitions: i32,
    },
}

pub async fn run(args: TopicsArgs) -> Result<()> {
    let mut c = crate::connect(&args.bootstrap_server).await?;
    match args.action {
        Action::Create {
            topic,
            partitions,
            replication_factor,
            configs,
            if_not_exists,
        } => {
            let mut t = create_topics_request::CreatableTopic::default()
                .with_name(topic_name(&topic))
                .with_num_partitions(partitions)
                .with_replication_factor(replication_factor);
            for kv in configs {
                let Some((k, v)) = kv.split_once('=') else {
                    bail!("--config {kv}: expected key=value")
                };
                t.configs.push(
                    create_topics_request::CreatableTopicConfig::default()
                        .with_name(str(k))
                        .with_value(Some(str(v))),
                );
            }
            let response = c
                .send(
                    &CreateTopicsRequest::default()
                        .with_topics(vec![t])
                        .with_timeout_ms(30_000),
                )
                .await?;
            let r = &response.topics[0];
            if r.error_code == 36 && if_not_exists {
                return Ok(());
            }
            check(r.error_code, r.error_message.as_deref())?;
            println!("Created topic {topic}.");
        }
        Action::List => {
            let m = c.metadata(None, false).await?;
            let mut names: Vec<String> = m
                .topics
                .iter()
                .filter_map(|t| t.name.as_ref().map(|n| n.0.to_string()))
                .collect();
            names.sort();
            for n in names {
                println!("{n}");
            }
        }
        Action::Describe { topic } => {
            let names: Vec<&str> = topic.iter().map(String::as_str).collect();
            let m = c
                .metadata(topic.as_ref().map(|_| names.as_slice()), false)
                .await?;
            for t in &m.topics {
                let name = t.name.as_ref().map(|n| n.0.to_string()).unwrap_or_default();
                if t.error_code != 0 {
                    bail!("topic {name}: {}", error_name(t.error_code));
                }
                let configs = c
                    .send(&DescribeConfigsRequest::default().with_resources(vec![
                            describe_configs_request::DescribeConfigsResource::default()
                                .with_resource_type(2)
                                .with_resource_name(str(&name)),
                        ]))
                    .await?;
                let overrides: Vec<String> = configs
                    .results
                    .iter()
                    .flat_map(|r| r.configs.iter())
                    .filter(|e| e.config_source == 1)
                    .map(|e| format!("{}={}", e.name, e.value.as_deref().unwrap_or("")))
                    .collect();
                let rf = t.partitions.first().map_or(0, |p| p.replica_nodes.len());
                println!(
                    "Topic: {name}\tTopicId: {}\tPartitionCount: {}\tReplicationFactor: {rf}\tConfigs: {}",
                    ferrolog_storage::log::uuid_to_kafka_string(t.topic_id.as_bytes()),
                    t.partitions.len(),
                    overrides.join(",")
                );
                let mut partitions: Vec<_> = t.partitions.iter().collect();
                partitions.sort_by_key(|p| p.partition_index);
                for p in partitions {
                    let list = |v: &[BrokerId]| {
                        v.iter()
                            .map(|b| b.0.to_string())
                            .collect::<Vec<_>>()
                            .join(",")
                    };
                    println!(
                        "\tTopic: {name}\tPartition: {}\tLeader: {}\tReplicas: {}\tIsr: {}\tLeaderEpoch: {}",
                        p.partition_index,
                        p.leader_id.0,
                        list(&p.replica_nodes),
                        list(&p.isr_nodes),
                        p.leader_epoch
                    );
                }
            }
        }
        Action::Delete { topic } => {
            let request = DeleteTopicsRequest::default()
                .with_topic_names(vec![topic_name(&topic)])
                .with_timeout_ms(30_000);
            let version = c.version_for::<DeleteTopicsRequest>()?.min(5);
            let response = c.send_version(&request, version).await?;
            let r = &response.responses[0];
            check(r.error_code, None)?;
            println!("Deleted topic {topic}.");
        }
        Action::Alter { topic, partitions } => {
            let request = CreatePartitionsRequest::default()
                .with_topics(vec![
                    create_partitions_request::CreatePartitionsTopic::default()
                        .with_name(topic_name(&topic))
                        .with_count(partitions),
                ])
                .with_timeout_ms(30_000);
            let response = c.send(&request).await?;
            let r = &response.results[0];
            check(r.error_code, r.error_message.as_deref())?;
            println!("Topic {topic} now has {partitions} partitions.");
        }
    }
    Ok(())
}

/// A topic command's error as kafka-topics.sh prints it.
fn check(code: i16, message: Option<&str>) -> Result<()> {
    if code != 0 {
        bail!(
            "Error while executing topic command: {}{}",
            error_name(code),
            message.map(|m| format!(": {m}")).unwrap_or_default()
        );
    }
    Ok(())
}
