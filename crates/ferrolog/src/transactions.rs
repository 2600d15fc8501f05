//! `ferrolog transactions`: like kafka-transactions.sh.

use anyhow::{bail, Result};
use clap::{Args, Subcommand};
use ferrolog_client::kafka_protocol::messages::*;
use ferrolog_client::{error_name, str, topic_name, Connection};

#[derive(Args)]
pub struct TransactionsArgs {
    /// The broker(s) to talk to, host:port (also accepted after the subcommand).
    #[arg(long, default_value = "localhost:9092", global = true)]
    bootstrap_server: String,
    #[command(subcommand)]
    action: Action,
}

#[derive(Subcommand)]
enum Action {
    /// Every transactional id with its producer id and state.
    List,
    /// State, producer, timeout, start time and partitions of a transactional id.
    Describe {
        #[arg(long)]
        transactional_id: String,
    },
    /// The producers of a partition and their open transactions.
    DescribeProducers {
        #[arg(long)]
        topic: String,
        #[arg(long)]
        partition: i32,
    },
    /// Ends a hanging transaction in a partition with an ABORT marker: name it by the offset
    /// where it starts, or by producer id and epoch.
    Abort {
        #[arg(long)]
        topic: String,
        #[arg(long)]
        partition: i32,
        #[arg(long)]
        start_offset: Option<i64>,
        #[arg(long)]
        producer_id: Option<i64>,
        #[arg(long)]
        producer_epoch: Option<i16>,
        #[arg(long, default_value_t = 0)]
        coordinator_epoch: i32,
    },
}

async fn producers(
    c: &mut Connection,
    topic: &str,
    partition: i32,
) -> Result<Vec<describe_producers_response::ProducerState>> {
    let response = c
        .send(&DescribeProducersRequest::default().with_topics(vec![
                describe_producers_request::TopicRequest::default()
                    .with_name(topic_name(topic))
                    .with_partition_indexes(vec![partition]),
            ]))
        .await?;
    let p = &response.topics[0].partitions[0];
    if p.error_code != 0 {
        bail!("{}", error_name(p.error_code));
    }
    Ok(p.active_producers.clone())
}

pub async fn run(args: TransactionsArgs) -> Result<()> {
    let mut c = crate::connect(&args.bootstrap_server).await?;
    match args.action {
        Action::List => {
            let response = c.send(&ListTransactionsRequest::default()).await?;
            if response.error_code != 0 {
                bail!("{}", error_name(response.error_code));
            }
            println!("{:<40} {:>12} STATE", "TRANSACTIONAL-ID", "PRODUCER-ID");
            for t in response.transaction_states {
                println!(
                    "{:<40} {:>12} {}",
                    &*t.transactional_id.0, t.producer_id.0, &*t.transaction_state
                );
            }
        }
        Action::Describe { transactional_id } => {
            let response = c
                .send(
                    &DescribeTransactionsRequest::default()
                        .with_transactional_ids(vec![TransactionalId(str(&transactional_id))]),
                )
                .await?;
            let t = &response.transaction_states[0];
            if t.error_code != 0 {
                bail!("{}", error_name(t.error_code));
            }
            let partitions: Vec<String> = t
                .topics
                .iter()
                .flat_map(|tp| {
                    tp.partitions
                        .iter()
                        .map(move |p| format!("{}-{p}", &*tp.topic.0))
                })
                .collect();
            println!(
                "{:<30} {:>12} {:>14} {:<15} {:>10} {:>16} TOPIC-PARTITIONS",
                "TRANSACTIONAL-ID",
                "PRODUCER-ID",
                "PRODUCER-EPOCH",
                "STATE",
                "TIMEOUT-MS",
                "START-TIME-MS"
            );
            println!(
                "{:<30} {:>12} {:>14} {:<15} {:>10} {:>16} {}",
                transactional_id,
                t.producer_id.0,
                t.producer_epoch,
                &*t.transaction_state,
                t.transaction_timeout_ms,
                t.transaction_start_time_ms,
                partitions.join(",")
            );
        }
        Action::DescribeProducers { topic, partition } => {
            println!(
                "{:>12} {:>14} {:>13} {:>16} CURRENT-TRANSACTION-START-OFFSET",
                "PRODUCER-ID", "PRODUCER-EPOCH", "LAST-SEQUENCE", "LAST-TIMESTAMP"
            );
            for p in producers(&mut c, &topic, partition).await? {
                println!(
                    "{:>12} {:>14} {:>13} {:>16} {}",
                    p.producer_id.0,
                    p.producer_epoch,
                    p.last_sequence,
                    p.last_timestamp,
                    if p.current_txn_start_offset < 0 {
                        "None".to_string()
                    } else {
                        p.current_txn_start_offset.to_string()
                    }
                );
            }
        }
        Action::Abort {
            topic,
            partition,
            start_offset,
            producer_id,
            producer_epoch,
            coordinator_epoch,
        } => {
            let (pid, epoch) = match (start_offset, producer_id, producer_epoch) {
                (Some(offset), _, _) => {
                    let found = producers(&mut c, &topic, partition)
                        .await?
                        .into_iter()
                        .find(|p| p.current_txn_start_offset == offset);
                    let Some(p) = found else {
                        bail!("no open transaction starts at offset {offset} in {topic}-{partition}");
                    };
                    (p.producer_id.0, p.producer_epoch as i16)
                }
                (None, Some(pid), Some(epoch)) => (pid, epoch),
                _ => bail!("name the transaction with --start-offset, or --producer-id and --producer-epoch"),
            };
            let response = c
                .send(&WriteTxnMarkersRequest::default().with_markers(vec![
                        write_txn_markers_request::WritableTxnMarker::default()
                            .with_producer_id(ProducerId(pid))
                            .with_producer_epoch(epoch)
                            .with_transaction_result(false)
                            .with_coordinator_epoch(coordinator_epoch)
                            .with_topics(vec![
                                write_txn_markers_request::WritableTxnMarkerTopic::default()
                                    .with_name(topic_name(&topic))
                                    .with_partition_indexes(vec![partition]),
                            ]),
                    ]))
                .await?;
            let code = response.markers[0].topics[0].partitions[0].error_code;
            if code != 0 {
                bail!("{}", error_name(code));
            }
            println!(
                "Aborted the transaction of producer {pid} (epoch {epoch}) in {topic}-{partition}"
            );
        }
    }
    Ok(())
}
