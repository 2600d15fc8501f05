//! `ferrolog configs` (like kafka-configs.sh) and `ferrolog delete-records` (like
//! kafka-delete-records.sh).

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use ferrolog_client::kafka_protocol::messages::*;
use ferrolog_client::{error_name, str, topic_name, Connection};

#[derive(Args)]
pub struct ConfigsArgs {
    /// The broker(s) to talk to, host:port (also accepted after the subcommand).
    #[arg(long, default_value = "localhost:9092", global = true)]
    bootstrap_server: String,
    #[command(subcommand)]
    action: ConfigsAction,
}

#[derive(Subcommand)]
enum ConfigsAction {
    /// Print a topic's (or the broker's) configs with their sources.
    Describe {
        #[arg(long, conflicts_with = "broker")]
        topic: Option<String>,
        #[arg(long)]
        broker: Option<i32>,
        /// Print every config, not only overrides.
        #[arg(long)]
        all: bool,
    },
    /// Change a topic's or a broker's configs (IncrementalAlterConfigs; a broker's at that
    /// broker, found through the bootstrap server).
    Alter {
        #[arg(long, conflicts_with = "broker")]
        topic: Option<String>,
        #[arg(long)]
        broker: Option<i32>,
        /// key=value[,key=value...]
        #[arg(long)]
        add_config: Option<String>,
        /// key[,key...]
        #[arg(long)]
        delete_config: Option<String>,
    },
}

const SOURCES: [&str; 7] = [
    "UNKNOWN",
    "DYNAMIC_TOPIC_CONFIG",
    "DYNAMIC_BROKER_CONFIG",
    "DYNAMIC_DEFAULT_BROKER_CONFIG",
    "STATIC_BROKER_CONFIG",
    "DEFAULT_CONFIG",
    "DYNAMIC_BROKER_LOGGER_CONFIG",
];

pub async fn run(args: ConfigsArgs) -> Result<()> {
    let mut c = crate::connect(&args.bootstrap_server).await?;
    match args.action {
        ConfigsAction::Describe { topic, broker, all } => {
            let (kind, name, label) = match (&topic, broker) {
                (Some(t), _) => (2i8, t.clone(), format!("topic {t}")),
                (None, Some(b)) => (4i8, b.to_string(), format!("broker {b}")),
                (None, None) => bail!("give --topic or --broker"),
            };
            let request = DescribeConfigsRequest::default()
                .with_include_synonyms(true)
                .with_resources(vec![
                    describe_configs_request::DescribeConfigsResource::default()
                        .with_resource_type(kind)
                        .with_resource_name(str(&name)),
                ]);
            let response = c.send(&request).await?;
            let result = &response.results[0];
            if result.error_code != 0 {
                bail!(
                    "{}: {}",
                    error_name(result.error_code),
                    result.error_message.as_deref().unwrap_or("")
                );
            }
            let dynamic = |source: i8| source == 1 || source == 2 || source == 3;
            println!(
                "{} configs for {label} are:",
                if all { "All" } else { "Dynamic" }
            );
            for e in &result.configs {
                if all || dynamic(e.config_source) {
                    let synonyms: Vec<String> = e
                        .synonyms
                        .iter()
                        .map(|s| {
                            format!(
                                "{}:{}={}",
                                SOURCES.get(s.source as usize).unwrap_or(&"?"),
                                s.name,
                                s.value.as_deref().unwrap_or("null")
                            )
                        })
                        .collect();
                    println!(
                        "  {}={} sensitive={} synonyms={{{}}}",
                        e.name,
                        e.value.as_deref().unwrap_or("null"),
                        e.is_sensitive,
                        synonyms.join(", ")
                    );
                }
            }
        }
        ConfigsAction::Alter {
            topic,
            broker,
            add_config,
            delete_config,
        } => {
            let mut set = Vec::new();
            for kv in add_config
                .iter()
                .flat_map(|s| s.split(','))
                .filter(|s| !s.is_empty())
            {
                let (k, v) = kv
                    .split_once('=')
                    .with_context(|| format!("--add-config {kv}: expected key=value"))?;
                set.push((k.trim().to_string(), v.trim().to_string()));
            }
            let delete: Vec<String> = delete_config
                .iter()
                .flat_map(|s| s.split(','))
                .filter(|s| !s.is_empty())
                .map(|k| k.trim().to_string())
                .collect();
            if set.is_empty() && delete.is_empty() {
                bail!("give --add-config and/or --delete-config");
            }
            match (topic, broker) {
                (Some(topic), _) => {
                    incremental_alter(&mut c, 2, &topic, &set, &delete).await?;
                    println!("Completed updating config for topic {topic}.");
                }
                (None, Some(b)) => {
                    let mut at = connect_to_broker(&mut c, b).await?;
                    incremental_alter(&mut at, 4, &b.to_string(), &set, &delete).await?;
                    println!("Completed updating config for broker {b}.");
                }
                (None, None) => bail!("give --topic or --broker"),
            }
        }
    }
    Ok(())
}

/// A connection to broker `id`, found in the metadata of `c`'s broker.
pub async fn connect_to_broker(c: &mut Connection, id: i32) -> Result<Connection> {
    let md = c.send(&MetadataRequest::default()).await?;
    let b = md
        .brokers
        .iter()
        .find(|b| b.node_id.0 == id)
        .with_context(|| format!("broker {id} is not in the cluster's metadata"))?;
    crate::connect(&format!("{}:{}", b.host, b.port)).await
}

/// IncrementalAlterConfigs for one resource (2 topic, 4 broker): `set` keys, `delete` keys.
pub async fn incremental_alter(
    c: &mut Connection,
    resource_type: i8,
    name: &str,
    set: &[(String, String)],
    delete: &[String],
) -> Result<()> {
    let mut configs = Vec::new();
    for (k, v) in set {
        configs.push(
            incremental_alter_configs_request::AlterableConfig::default()
                .with_name(str(k))
                .with_config_operation(0)
                .with_value(Some(str(v))),
        );
    }
    for k in delete {
        configs.push(
            incremental_alter_configs_request::AlterableConfig::default()
                .with_name(str(k))
                .with_config_operation(1),
        );
    }
    let request = IncrementalAlterConfigsRequest::default().with_resources(vec![
        incremental_alter_configs_request::AlterConfigsResource::default()
            .with_resource_type(resource_type)
            .with_resource_name(str(name))
            .with_configs(configs),
    ]);
    let response = c.send(&request).await?;
    let r = response
        .responses
        .first()
        .context("IncrementalAlterConfigs: empty response")?;
    if r.error_code != 0 {
        bail!(
            "{name}: {}: {}",
            error_name(r.error_code),
            r.error_message.as_deref().unwrap_or("")
        );
    }
    Ok(())
}

#[derive(Args)]
pub struct DeleteRecordsArgs {
    /// The broker(s) to talk to, host:port (also accepted after the subcommand).
    #[arg(long, default_value = "localhost:9092", global = true)]
    bootstrap_server: String,
    #[arg(long)]
    topic: String,
    #[arg(long)]
    partition: i32,
    /// Delete records before this offset (-1: up to the high watermark).
    #[arg(long, allow_hyphen_values = true)]
    offset: i64,
}

pub async fn delete_records(args: DeleteRecordsArgs) -> Result<()> {
    let mut c = crate::connect(&args.bootstrap_server).await?;
    let request = DeleteRecordsRequest::default()
        .with_timeout_ms(30_000)
        .with_topics(vec![delete_records_request::DeleteRecordsTopic::default()
            .with_name(topic_name(&args.topic))
            .with_partitions(vec![
                delete_records_request::DeleteRecordsPartition::default()
                    .with_partition_index(args.partition)
                    .with_offset(args.offset),
            ])]);
    let response = c.send(&request).await?;
    let p = &response.topics[0].partitions[0];
    if p.error_code != 0 {
        bail!(
            "partition {}-{}: {}",
            args.topic,
            args.partition,
            error_name(p.error_code)
        );
    }
    println!(
        "partition: {}-{}\tlow_watermark: {}",
        args.topic, args.partition, p.low_watermark
    );
    Ok(())
}
