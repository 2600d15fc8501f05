//! `ferrolog reassign`: like kafka-reassign-partitions.sh (execute, verify, cancel, list), with
//! Kafka's reassignment JSON: {"version":1,"partitions":[{"topic":"t","partition":0,"replicas":[2,3]}]}.

use anyhow::{bail, Context, Result};
use clap::Args;
use ferrolog_client::kafka_protocol::messages::*;
use ferrolog_client::{error_name, topic_name, Connection};
use serde::Deserialize;

#[derive(Args)]
pub struct ReassignArgs {
    #[arg(long, default_value = "localhost:9092")]
    bootstrap_server: String,
    /// The reassignment JSON (for --execute, --verify and --cancel).
    #[arg(long)]
    reassignment_json_file: Option<std::path::PathBuf>,
    /// Start moving the partitions in the file.
    #[arg(long)]
    execute: bool,
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
    let mut c = Connection::connect(&args.bootstrap_server).await?;
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
        (true, false, false) => alter(&mut c, &plan, false).await,
        (false, false, true) => alter(&mut c, &plan, true).await,
        (false, true, false) => verify(&mut c, &plan).await,
        _ => bail!("give exactly one of --execute, --verify, --cancel or --list"),
    }
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
    Ok(())
}
