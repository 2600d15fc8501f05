//! `ferrolog cluster --nodes N`: a local cluster of N broker+controller processes in one
//! command (with `--controllers K`, K dedicated controllers and N dedicated brokers);
//! `ferrolog cluster describe`: brokers, racks and the active controller.

use std::path::PathBuf;
use std::process::Stdio;

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use ferrolog_client::kafka_protocol::messages::*;
use ferrolog_client::kafka_protocol::protocol::StrBytes;

#[derive(Args)]
pub struct ClusterArgs {
    /// Nodes to start, each broker and controller.
    #[arg(long, default_value_t = 3)]
    nodes: u16,
    /// Dedicated controllers (process.roles=controller, node ids 1001..): with it, the N nodes
    /// are dedicated brokers; without, every node is broker and controller.
    #[arg(long)]
    controllers: Option<u16>,
    /// Client port of node 1; node i listens on base+i-1 and its controller on base+100+i-1.
    #[arg(long, default_value_t = 9092)]
    base_port: u16,
    /// Where each node keeps its data (node-<id>/) and log (node-<id>.log).
    #[arg(long, default_value = "./ferrolog-cluster")]
    data_dir: PathBuf,
    /// key=value applied to every node (repeatable).
    #[arg(long = "override")]
    overrides: Vec<String>,
    #[command(subcommand)]
    action: Option<Action>,
}

#[derive(Subcommand)]
enum Action {
    /// Brokers (with racks), the active controller and the quorum voters' leader.
    Describe {
        #[arg(long, default_value = "localhost:9092")]
        bootstrap_server: String,
    },
}

pub async fn run(args: ClusterArgs) -> Result<()> {
    match args.action {
        Some(Action::Describe { bootstrap_server }) => describe(&bootstrap_server).await,
        None => start(args).await,
    }
}

async fn describe(bootstrap: &str) -> Result<()> {
    let mut c = crate::connect(bootstrap).await?;
    let r = c
        .send_version(&DescribeClusterRequest::default(), 0)
        .await?;
    if r.error_code != 0 {
        bail!(
            "DescribeCluster: {}",
            ferrolog_client::error_name(r.error_code)
        );
    }
    println!("ClusterId: {}", r.cluster_id);
    println!("Controller: {}", r.controller_id.0);
    let mut brokers: Vec<_> = r.brokers.iter().collect();
    brokers.sort_by_key(|b| b.broker_id.0);
    for b in brokers {
        println!(
            "Broker: {}\tHost: {}:{}\tRack: {}",
            b.broker_id.0,
            b.host,
            b.port,
            b.rack.as_deref().unwrap_or("null")
        );
    }
    // the quorum itself (a dedicated active controller is not among the brokers above)
    let q = c
        .send_version(
            &DescribeQuorumRequest::default().with_topics(vec![
                describe_quorum_request::TopicData::default()
                    .with_topic_name(TopicName(StrBytes::from_static_str("__cluster_metadata")))
                    .with_partitions(vec![
                        describe_quorum_request::PartitionData::default().with_partition_index(0)
                    ]),
            ]),
            2,
        )
        .await?;
    match q.topics.first().and_then(|t| t.partitions.first()) {
        Some(p) if q.error_code == 0 && p.error_code == 0 => {
            let ids = |r: &[describe_quorum_response::ReplicaState]| {
                r.iter()
                    .map(|v| v.replica_id.0.to_string())
                    .collect::<Vec<_>>()
                    .join(",")
            };
            println!("ActiveController: {}", p.leader_id.0);
            println!("Voters: {}", ids(&p.current_voters));
            println!("Observers: {}", ids(&p.observers));
        }
        _ => println!("ActiveController: -1"),
    }
    Ok(())
}

async fn start(args: ClusterArgs) -> Result<()> {
    if args.nodes == 0 || args.nodes > 100 {
        bail!("--nodes must be between 1 and 100");
    }
    if args.controllers.is_some_and(|k| k == 0 || k > 100) {
        bail!("--controllers must be between 1 and 100");
    }
    let exe = std::env::current_exe().context("locating the ferrolog binary")?;
    std::fs::create_dir_all(&args.data_dir)?;
    let port = |i: u16, offset: u16| args.base_port + offset + i - 1;
    // (node id, controller port) of each voter
    let controllers: Vec<(u32, u16)> = match args.controllers {
        None => (1..=args.nodes)
            .map(|i| (u32::from(i), port(i, 100)))
            .collect(),
        Some(k) => (1..=k)
            .map(|i| (1000 + u32::from(i), port(i, 100)))
            .collect(),
    };
    let voters: Vec<String> = controllers
        .iter()
        .map(|(id, p)| format!("{id}@localhost:{p}"))
        .collect();
    let mut children = Vec::new();
    let mut nodes: Vec<(u32, String, &str)> = Vec::new();
    for i in 1..=args.nodes {
        let listeners = if args.controllers.is_some() {
            format!("PLAINTEXT://localhost:{}", port(i, 0))
        } else {
            format!(
                "PLAINTEXT://localhost:{},CONTROLLER://localhost:{}",
                port(i, 0),
                port(i, 100)
            )
        };
        let roles = if args.controllers.is_some() {
            "broker"
        } else {
            "broker,controller"
        };
        nodes.push((u32::from(i), listeners, roles));
    }
    if args.controllers.is_some() {
        for (id, p) in &controllers {
            nodes.push((*id, format!("CONTROLLER://localhost:{p}"), "controller"));
        }
    }
    for (i, listeners, roles) in nodes {
        let log = std::fs::File::create(args.data_dir.join(format!("node-{i}.log")))?;
        let mut cmd = tokio::process::Command::new(&exe);
        cmd.arg("server")
            .arg("--data-dir")
            .arg(args.data_dir.join(format!("node-{i}")))
            .args(["--override", &format!("node.id={i}")])
            .args(["--override", &format!("process.roles={roles}")])
            .args(["--override", &format!("listeners={listeners}")])
            .args([
                "--override",
                &format!("controller.quorum.voters={}", voters.join(",")),
            ])
            .args([
                "--override",
                &format!("default.replication.factor={}", args.nodes.min(3)),
            ])
            .args([
                "--override",
                &format!("min.insync.replicas={}", args.nodes.min(2)),
            ]);
        for o in &args.overrides {
            cmd.args(["--override", o]);
        }
        cmd.stdout(Stdio::from(log.try_clone()?))
            .stderr(Stdio::from(log))
            .kill_on_drop(true);
        children.push(cmd.spawn().with_context(|| format!("starting node {i}"))?);
    }
    let bootstrap: Vec<String> = (1..=args.nodes)
        .map(|i| format!("localhost:{}", port(i, 0)))
        .collect();
    match args.controllers {
        None => println!(
            "ferrolog cluster of {} nodes; bootstrap servers: {}",
            args.nodes,
            bootstrap.join(",")
        ),
        Some(k) => println!(
            "ferrolog cluster of {} brokers and {k} controllers; bootstrap servers: {}",
            args.nodes,
            bootstrap.join(",")
        ),
    }
    println!("node logs in {}", args.data_dir.display());
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    for child in &children {
        if let Some(pid) = child.id() {
            // a controlled shutdown for each node
            let _ = std::process::Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status();
        }
    }
    for mut child in children {
        let _ = child.wait().await;
    }
    Ok(())
}
