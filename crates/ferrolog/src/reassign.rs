//! `ferrolog reassign`: like kafka-reassign-partitions.sh (execute, verify, cancel, list), with
//! Kafka's reassignment JSON: {"version":1,"partitions":[{"topic":"t","partition":0,"replicas":[2,3]}]}.

use anyhow::{bail, Context, Result};
use clap::Args;
use ferrolog_client::kafka_protocol::messages::*;
use ferrolog_client::{error_name, topic_name, Connection};
use serde::Deserialize;

#[derive(Args)]
pub struct ReassignArgs {
    /// The broker(s) to talk to, host:port (also accepted after the subcommand).
    #[arg(long, default_value = "localhost:9092", global = true)]
    bootstrap_server: String,
    /// The reassignment JSON (for --execute, --verify and --cancel).
    #[arg(long)]
    reassignment_json_file: Option<std::path::PathBuf>,
    /// Start moving the partitions in the file.
    #[arg(long)]
    execute: bool,
    /// With --execute: limit the replication of the moving partitions to this many bytes per
    /// second (leader and follower throttles; --verify removes them once the moves complete).
    #[arg(long)]
    throttle: Option<i64>,
    /// Report, per partition in the file, whether its move is complete.
    #[arg(long)]
    verify: bool,
    /// Cancel the moves of the partitions in the file.
    #[arg(long)]
    cancel: bool,
    /// List the moves in progress.
    #[arg(long)]
    list: bool,
}

#[derive(Deserialize)]
struct Plan {
    partitions: Vec<Move>,
}

#[derive(Deserialize)]
struct Move {
    topic: String,
    partition: i32,
    replicas: Vec<i32>,
}

pub async fn run(args: ReassignArgs) -> Result<()> {
    let mut c = crate::connect(&args.bootstrap_server).await?;
    if args.list {
        return list(&mut c).await;
    }
    let path = args
        .reassignment_json_file
        .as_ref()
        .context("--reassignment-json-file is required")?;
    let plan: Plan = serde_json::from_str(&std::fs::read_to_string(path)?)
        .with_context(|| format!("parsing {}", path.display()))?;
    match (args.execute, args.verify, args.cancel) {
        (true, false, false) => {
            if let Some(rate) = args.throttle {
                throttle(&mut c, &plan, rate).await?;
            }
            alter(&mut c, &plan, false).await
        }
        (false, false, true) => {
            alter(&mut c, &plan, true).await?;
            remove_throttle(&mut c, &plan).await
        }
        (false, true, false) => verify(&mut c, &plan).await,
        _ => bail!("give exactly one of --execute, --verify, --cancel or --list"),
    }
}

const LEADER_REPLICAS: &str = "leader.replication.throttled.replicas";
const FOLLOWER_REPLICAS: &str = "follower.replication.throttled.replicas";
const RATES: [&str; 2] = [
    "leader.replication.throttled.rate",
    "follower.replication.throttled.rate",
];

/// Throttles the moves as Kafka's tool does: on each topic, the current replicas of its moving
/// partitions are leader-throttled and the added ones follower-throttled; every broker involved
/// gets `rate` as its leader and follower rate.
async fn throttle(c: &mut Connection, plan: &Plan, rate: i64) -> Result<()> {
    if rate < 0 {
        bail!("--throttle must be at least 0");
    }
    let mut topics: Vec<&str> = plan.partitions.iter().map(|m| m.topic.as_str()).collect();
    topics.dedup();
    let request = MetadataRequest::default().with_topics(Some(
        topics
            .iter()
            .map(|t| {
                metadata_request::MetadataRequestTopic::default().with_name(Some(topic_name(t)))
            })
            .collect(),
    ));
    let md = c.send(&request).await?;
    let mut brokers = std::collections::BTreeSet::new();
    for topic in topics {
        let t = md
            .topics
            .iter()
            .find(|t| t.name.as_ref().is_some_and(|n| *n.0 == *topic))
            .with_context(|| format!("topic {topic} not found"))?;
        let (mut leader, mut follower) = (Vec::new(), Vec::new());
        for m in plan.partitions.iter().filter(|m| m.topic == topic) {
            let current: Vec<i32> = t
                .partitions
                .iter()
                .find(|p| p.partition_index == m.partition)
                .with_context(|| format!("partition {topic}-{} not found", m.partition))?
                .replica_nodes
                .iter()
                .map(|b| b.0)
                .collect();
            for b in &current {
                leader.push(format!("{}:{b}", m.partition));
            }
            for b in m.replicas.iter().filter(|b| !current.contains(b)) {
                follower.push(format!("{}:{b}", m.partition));
            }
            brokers.extend(current.iter().chain(&m.replicas).copied());
        }
        let set = [
            (LEADER_REPLICAS.to_string(), leader.join(",")),
            (FOLLOWER_REPLICAS.to_string(), follower.join(",")),
        ];
        crate::configs::incremental_alter(c, 2, topic, &set, &[]).await?;
    }
    for b in brokers {
        let mut at = crate::configs::connect_to_broker(c, b).await?;
        let set = RATES.map(|k| (k.to_string(), rate.to_string()));
        crate::configs::incremental_alter(&mut at, 4, &b.to_string(), &set, &[]).await?;
    }
    println!("The inter-broker throttle limit was set to {rate} B/s");
    Ok(())
}

/// Removes what `throttle` set: the topics' throttled replicas and every broker's rates.
async fn remove_throttle(c: &mut Connection, plan: &Plan) -> Result<()> {
    let mut topics: Vec<&str> = plan.partitions.iter().map(|m| m.topic.as_str()).collect();
    topics.dedup();
    let keys = [LEADER_REPLICAS.to_string(), FOLLOWER_REPLICAS.to_string()];
    for topic in topics {
        crate::configs::incremental_alter(c, 2, topic, &[], &keys).await?;
    }
    let md = c.send(&MetadataRequest::default()).await?;
    for b in md.brokers.iter().map(|b| b.node_id.0) {
        let mut at = crate::configs::connect_to_broker(c, b).await?;
        let keys = RATES.map(str::to_string);
        crate::configs::incremental_alter(&mut at, 4, &b.to_string(), &[], &keys).await?;
    }
    println!("Throttle was removed.");
    Ok(())
}

async fn alter(c: &mut Connection, plan: &Plan, cancel: bool) -> Result<()> {
    let mut topics: Vec<alter_partition_reassignments_request::ReassignableTopic> = Vec::new();
    for m in &plan.partitions {
        let p = alter_partition_reassignments_request::ReassignablePartition::default()
            .with_partition_index(m.partition)
            .with_replicas((!cancel).then(|| m.replicas.iter().map(|b| BrokerId(*b)).collect()));
        match topics.iter_mut().find(|t| *t.name.0 == *m.topic) {
            Some(t) => t.partitions.push(p),
            None => topics.push(
                alter_partition_reassignments_request::ReassignableTopic::default()
                    .with_name(topic_name(&m.topic))
                    .with_partitions(vec![p]),
            ),
        }
    }
    let request = AlterPartitionReassignmentsRequest::default()
        .with_timeout_ms(30_000)
        .with_allow_replication_factor_change(true)
        .with_topics(topics);
    let response = c.send_version(&request, 0).await?;
    if response.error_code != 0 {
        bail!(
            "AlterPartitionReassignments: {}",
            error_name(response.error_code)
        );
    }
    let mut failed = 0;
    for t in &response.responses {
        for p in &t.partitions {
            if p.error_code != 0 {
                failed += 1;
                println!(
                    "Error for {}-{}: {}{}",
                    t.name.0,
                    p.partition_index,
                    error_name(p.error_code),
                    p.error_message
                        .as_ref()
                        .map(|m| format!(" ({m})"))
                        .unwrap_or_default()
                );
            }
        }
    }
    if failed > 0 {
        bail!("{failed} partition(s) failed");
    }
    println!(
        "Successfully {} reassignment of {} partition(s).",
        if cancel { "cancelled" } else { "started" },
        plan.partitions.len()
    );
    Ok(())
}

async fn ongoing(c: &mut Connection) -> Result<Vec<(String, i32, Vec<i32>, Vec<i32>, Vec<i32>)>> {
    let response = c
        .send_version(
            &ListPartitionReassignmentsRequest::default().with_timeout_ms(30_000),
            0,
        )
        .await?;
    if response.error_code != 0 {
        bail!(
            "ListPartitionReassignments: {}",
            error_name(response.error_code)
        );
    }
    let ids = |v: &[BrokerId]| v.iter().map(|b| b.0).collect::<Vec<_>>();
    Ok(response
        .topics
        .iter()
        .flat_map(|t| {
            t.partitions.iter().map(|p| {
                (
                    t.name.0.to_string(),
                    p.partition_index,
                    ids(&p.replicas),
                    ids(&p.adding_replicas),
                    ids(&p.removing_replicas),
                )
            })
        })
        .collect())
}

async fn list(c: &mut Connection) -> Result<()> {
    for (topic, p, replicas, adding, removing) in ongoing(c).await? {
        println!("{topic}-{p}: replicas {replicas:?}, adding {adding:?}, removing {removing:?}");
    }
    Ok(())
}

async fn verify(c: &mut Connection, plan: &Plan) -> Result<()> {
    let moving = ongoing(c).await?;
    let mut pending = 0;
    for m in &plan.partitions {
        if moving
            .iter()
            .any(|(t, p, ..)| *t == m.topic && *p == m.partition)
        {
            pending += 1;
            println!(
                "Reassignment of partition {}-{} is still in progress.",
                m.topic, m.partition
            );
        } else {
            println!(
                "Reassignment of partition {}-{} is completed.",
                m.topic, m.partition
            );
        }
    }
    if pending > 0 {
        bail!("{pending} reassignment(s) still in progress");
    }
    remove_throttle(c, plan).await
}
