//! `ferrolog groups`: like kafka-consumer-groups.sh.

use std::collections::BTreeMap;

use anyhow::{bail, Context, Result};
use bytes::Buf;
use clap::{Args, Subcommand};
use ferrolog_client::kafka_protocol::messages::*;
use ferrolog_client::kafka_protocol::protocol::Decodable;
use ferrolog_client::{error_name, str, topic_name, Connection};

#[derive(Args)]
pub struct GroupsArgs {
    /// The broker(s) to talk to, host:port (also accepted after the subcommand).
    #[arg(long, default_value = "localhost:9092", global = true)]
    bootstrap_server: String,
    #[command(subcommand)]
    action: Action,
}

#[derive(Subcommand)]
enum Action {
    List,
    /// Committed offset, log end offset, lag and owner of every partition the group has.
    Describe {
        #[arg(long)]
        group: String,
    },
    /// Move a group's committed offsets (the group must have no members). Dry run unless
    /// --execute.
    ResetOffsets {
        #[arg(long)]
        group: String,
        #[arg(long)]
        topic: String,
        #[arg(long)]
        to_earliest: bool,
        #[arg(long)]
        to_latest: bool,
        #[arg(long)]
        to_offset: Option<i64>,
        /// YYYY-MM-DDTHH:mm:SS[.sss] in UTC
        #[arg(long)]
        to_datetime: Option<String>,
        #[arg(long, allow_hyphen_values = true)]
        shift_by: Option<i64>,
        #[arg(long)]
        execute: bool,
    },
    Delete {
        #[arg(long)]
        group: String,
    },
    /// Delete a group's committed offsets for a topic it does not subscribe to.
    DeleteOffsets {
        #[arg(long)]
        group: String,
        #[arg(long)]
        topic: String,
    },
}

/// Milliseconds since the epoch of `YYYY-MM-DDTHH:mm:SS[.sss]` (UTC).
pub fn parse_datetime(text: &str) -> Result<i64> {
    let bad = || anyhow::anyhow!("--to-datetime {text}: expected YYYY-MM-DDTHH:mm:SS[.sss]");
    let (date, time) = text.split_once('T').ok_or_else(bad)?;
    let d: Vec<i64> = date
        .split('-')
        .map(|x| x.parse().map_err(|_| bad()))
        .collect::<Result<_>>()?;
    let (hms, millis) = time.split_once('.').unwrap_or((time, "0"));
    let t: Vec<i64> = hms
        .split(':')
        .map(|x| x.parse().map_err(|_| bad()))
        .collect::<Result<_>>()?;
    if d.len() != 3 || t.len() != 3 {
        return Err(bad());
    }
    let millis: i64 = format!("{millis:0<3}")[..3].parse().map_err(|_| bad())?;
    // days from the civil date (Howard Hinnant's algorithm)
    let (y, m) = if d[1] <= 2 {
        (d[0] - 1, d[1] + 9)
    } else {
        (d[0], d[1] - 3)
    };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * m + 2) / 5 + d[2] - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Ok(((days * 24 + t[0]) * 60 + t[1]) * 60_000 + t[2] * 1000 + millis)
}

async fn committed(c: &mut Connection, group: &str) -> Result<BTreeMap<(String, i32), i64>> {
    let request = OffsetFetchRequest::default()
        .with_group_id(GroupId(str(group)))
        .with_topics(None);
    let response = c.send_version(&request, 7).await?;
    if response.error_code != 0 {
        bail!("offset fetch: {}", error_name(response.error_code));
    }
    let mut out = BTreeMap::new();
    for t in response.topics {
        for p in t.partitions {
            out.insert(
                (t.name.0.to_string(), p.partition_index),
                p.committed_offset,
            );
        }
    }
    Ok(out)
}

pub async fn run(args: GroupsArgs) -> Result<()> {
    let mut c = crate::connect(&args.bootstrap_server).await?;
    match args.action {
        Action::List => {
            let response = c.send(&ListGroupsRequest::default()).await?;
            for g in response.groups {
                println!("{}", &*g.group_id.0);
            }
        }
        Action::Describe { group } => {
            let described = c
                .send(&DescribeGroupsRequest::default().with_groups(vec![GroupId(str(&group))]))
                .await?;
            let g = &described.groups[0];
            if g.error_code != 0 {
                bail!("{}", error_name(g.error_code));
            }
            // partition -> (member, host, client id), from the members' assignments
            let mut owners = BTreeMap::new();
            for m in &g.members {
                let mut buf = m.member_assignment.clone();
                if buf.remaining() < 2 {
                    continue;
                }
                let version = buf.get_i16();
                if let Ok(a) = ConsumerProtocolAssignment::decode(&mut buf, version.clamp(0, 3)) {
                    for tp in a.assigned_partitions {
                        for p in tp.partitions {
                            owners.insert(
                                (tp.topic.0.to_string(), p),
                                (
                                    m.member_id.to_string(),
                                    m.client_host.to_string(),
                                    m.client_id.to_string(),
                                ),
                            );
                        }
                    }
                }
            }
            // a consumer-protocol (KIP-848) group: the coordinator knows the assignments
            let kip848 = c
                .send(
                    &ConsumerGroupDescribeRequest::default()
                        .with_group_ids(vec![GroupId(str(&group))]),
                )
                .await?;
            if let Some(g) = kip848.groups.first().filter(|g| g.error_code == 0) {
                for m in &g.members {
                    for tp in &m.assignment.topic_partitions {
                        for p in &tp.partitions {
                            owners.insert(
                                (tp.topic_name.0.to_string(), *p),
                                (
                                    m.member_id.to_string(),
                                    m.client_host.to_string(),
                                    m.client_id.to_string(),
                                ),
                            );
                        }
                    }
                }
            }
            let offsets = committed(&mut c, &group).await?;
            let mut keys: Vec<(String, i32)> = offsets.keys().cloned().collect();
            keys.extend(owners.keys().cloned());
            keys.sort();
            keys.dedup();
            println!(
                "{:<20} {:<20} {:>9} {:>15} {:>15} {:>8} {:<40} {:<16} CLIENT-ID",
                "GROUP",
                "TOPIC",
                "PARTITION",
                "CURRENT-OFFSET",
                "LOG-END-OFFSET",
                "LAG",
                "CONSUMER-ID",
                "HOST"
            );
            for (topic, partition) in keys {
                let end = c
                    .list_offset(&topic, partition, -1)
                    .await
                    .map(|(o, _)| o)
                    .unwrap_or(-1);
                let current = offsets
                    .get(&(topic.clone(), partition))
                    .copied()
                    .filter(|o| *o >= 0);
                let lag = current.map_or("-".to_string(), |o| (end - o).max(0).to_string());
                let (member, host, client) = owners
                    .get(&(topic.clone(), partition))
                    .cloned()
                    .unwrap_or(("-".into(), "-".into(), "-".into()));
                println!(
                    "{group:<20} {topic:<20} {partition:>9} {:>15} {end:>15} {lag:>8} {member:<40} {host:<16} {client}",
                    current.map_or("-".to_string(), |o| o.to_string())
                );
            }
            println!(
                "\nConsumer group '{group}' is {} with {} member(s).",
                &*g.group_state,
                g.members.len()
            );
        }
        Action::ResetOffsets {
            group,
            topic,
            to_earliest,
            to_latest,
            to_offset,
            to_datetime,
            shift_by,
            execute,
        } => {
            let partitions = c.partitions(&topic).await?;
            let current = committed(&mut c, &group).await?;
            let mut plan = Vec::new();
            for p in 0..partitions {
                let earliest = c.list_offset(&topic, p, -2).await?.0;
                let latest = c.list_offset(&topic, p, -1).await?.0;
                let target = if to_earliest {
                    earliest
                } else if to_latest {
                    latest
                } else if let Some(o) = to_offset {
                    o
                } else if let Some(t) = &to_datetime {
                    let found = c.list_offset(&topic, p, parse_datetime(t)?).await?.0;
                    if found < 0 {
                        latest
                    } else {
                        found
                    }
                } else if let Some(shift) = shift_by {
                    current
                        .get(&(topic.clone(), p))
                        .copied()
                        .unwrap_or(earliest)
                        + shift
                } else {
                    bail!("give one of --to-earliest, --to-latest, --to-offset, --to-datetime, --shift-by");
                };
                plan.push((p, target.clamp(earliest, latest)));
            }
            println!(
                "{:<20} {:<20} {:>9} {:>15}",
                "GROUP", "TOPIC", "PARTITION", "NEW-OFFSET"
            );
            for (p, o) in &plan {
                println!("{group:<20} {topic:<20} {p:>9} {o:>15}");
            }
            if !execute {
                println!("\n(dry run: add --execute to commit these offsets)");
                return Ok(());
            }
            let request = OffsetCommitRequest::default()
                .with_group_id(GroupId(str(&group)))
                .with_generation_id_or_member_epoch(-1)
                .with_topics(vec![
                    offset_commit_request::OffsetCommitRequestTopic::default()
                        .with_name(topic_name(&topic))
                        .with_partitions(
                            plan.iter()
                                .map(|(p, o)| {
                                    offset_commit_request::OffsetCommitRequestPartition::default()
                                        .with_partition_index(*p)
                                        .with_committed_offset(*o)
                                })
                                .collect(),
                        ),
                ]);
            let response = c
                .send_version(&request, 8)
                .await
                .context("committing offsets")?;
            for p in &response.topics[0].partitions {
                if p.error_code != 0 {
                    bail!(
                        "partition {}: {} (the group must have no active members)",
                        p.partition_index,
                        error_name(p.error_code)
                    );
                }
            }
        }
        Action::Delete { group } => {
            let response = c
                .send(&DeleteGroupsRequest::default().with_groups_names(vec![GroupId(str(&group))]))
                .await?;
            let code = response.results[0].error_code;
            if code != 0 {
                bail!("Deletion of group '{group}' failed: {}", error_name(code));
            }
            println!("Deletion of requested consumer groups ('{group}') was successful.");
        }
        Action::DeleteOffsets { group, topic } => {
            let partitions = c.partitions(&topic).await?;
            let request = OffsetDeleteRequest::default()
                .with_group_id(GroupId(str(&group)))
                .with_topics(vec![
                    offset_delete_request::OffsetDeleteRequestTopic::default()
                        .with_name(topic_name(&topic))
                        .with_partitions(
                            (0..partitions)
                                .map(|p| {
                                    offset_delete_request::OffsetDeleteRequestPartition::default()
                                        .with_partition_index(p)
                                })
                                .collect(),
                        ),
                ]);
            let response = c.send(&request).await?;
            if response.error_code != 0 {
                bail!("{}", error_name(response.error_code));
            }
            for t in &response.topics {
                for p in &t.partitions {
                    let status = if p.error_code == 0 {
                        "Successful".to_string()
                    } else {
                        error_name(p.error_code)
                    };
                    println!("{}\t{}\t{status}", &*t.name.0, p.partition_index);
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::parse_datetime;

    #[test]
    fn datetimes() {
        assert_eq!(parse_datetime("1970-01-01T00:00:00").unwrap(), 0);
        assert_eq!(
            parse_datetime("2026-11-30T08:00:00.5").unwrap(),
            1_796_025_600_500
        );
        assert!(parse_datetime("yesterday").is_err());
    }
}
