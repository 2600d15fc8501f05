//! `ferrolog elect-leaders`: like kafka-leader-election.sh (preferred or unclean elections).

use anyhow::{bail, Result};
use clap::Args;
use ferrolog_client::kafka_protocol::messages::*;
use ferrolog_client::{error_name, topic_name};

#[derive(Args)]
pub struct ElectArgs {
    /// The broker(s) to talk to, host:port (also accepted after the subcommand).
    #[arg(long, default_value = "localhost:9092", global = true)]
    bootstrap_server: String,
    /// PREFERRED (the first replica, if in sync) or UNCLEAN (any live replica of a partition
    /// without a live leader; may lose committed records).
    #[arg(long, value_parser = ["preferred", "unclean", "PREFERRED", "UNCLEAN"])]
    election_type: String,
    #[arg(long)]
    topic: Option<String>,
    /// A partition of --topic (all of its partitions if omitted).
    #[arg(long)]
    partition: Option<i32>,
    /// Every partition of every topic.
    #[arg(long)]
    all_topic_partitions: bool,
}

pub async fn run(args: ElectArgs) -> Result<()> {
    let mut c = crate::connect(&args.bootstrap_server).await?;
    let partitions = match (&args.topic, args.all_topic_partitions) {
        (None, true) => None,
        (Some(topic), false) => {
            let list = match args.partition {
                Some(p) => vec![p],
                None => (0..c.partitions(topic).await?).collect(),
            };
            Some(vec![elect_leaders_request::TopicPartitions::default()
                .with_topic(topic_name(topic))
                .with_partitions(list)])
        }
        _ => bail!("give either --topic (with an optional --partition) or --all-topic-partitions"),
    };
    let request = ElectLeadersRequest::default()
        .with_election_type(i8::from(args.election_type.eq_ignore_ascii_case("unclean")))
        .with_topic_partitions(partitions)
        .with_timeout_ms(30_000);
    let response = c.send(&request).await?;
    if response.error_code != 0 {
        bail!("ElectLeaders: {}", error_name(response.error_code));
    }
    let mut failed = 0;
    for t in &response.replica_election_results {
        for p in &t.partition_result {
            match p.error_code {
                0 => println!(
                    "Successfully completed leader election ({}) for partition {}-{}",
                    args.election_type.to_uppercase(),
                    t.topic.0,
                    p.partition_id
                ),
                84 => println!(
                    "Valid replica already elected for partition {}-{}",
                    t.topic.0, p.partition_id
                ),
                code => {
                    failed += 1;
                    println!(
                        "Error completing leader election for partition {}-{}: {}{}",
                        t.topic.0,
                        p.partition_id,
                        error_name(code),
                        p.error_message
                            .as_ref()
                            .map(|m| format!(" ({m})"))
                            .unwrap_or_default()
                    )
                }
            }
        }
    }
    if failed > 0 {
        bail!("{failed} election(s) failed");
    }
    Ok(())
}
