//! The ferrolog binary: the server and the operator tools.

mod acls;
mod cluster;
mod configs;
mod console;
mod dump_log;
mod elect;
mod groups;
mod perf;
mod reassign;
mod topics;
mod transactions;
mod users;

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use ferrolog_broker::config::{parse_properties_file, BrokerConfig, Properties};

#[derive(Parser)]
#[command(
    name = "ferrolog",
    version,
    about = "Kafka-compatible event streaming, in one binary",
    after_help = "Logging: FERROLOG_LOG sets what is logged to standard error, with tracing's filter syntax (default \"info\"; e.g. FERROLOG_LOG=debug, or FERROLOG_LOG=info,ferrolog_broker::replication=debug)."
)]
struct Cli {
    /// A Kafka client properties file the tools connect with: security.protocol, the ssl.*
    /// trust and key stores, sasl.mechanism and sasl.jaas.config (Kafka's --command-config).
    #[arg(long, global = true)]
    command_config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

/// How the tools connect (`--command-config`); plaintext without one.
static SECURITY: std::sync::OnceLock<ferrolog_client::Security> = std::sync::OnceLock::new();

/// A connection to a broker, secured as `--command-config` says.
pub async fn connect(addr: &str) -> Result<ferrolog_client::Connection> {
    let security = SECURITY.get().cloned().unwrap_or_default();
    ferrolog_client::Connection::connect_with(addr, &security).await
}

/// Reads `--command-config` into [`SECURITY`].
fn client_security(path: &std::path::Path) -> Result<()> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let security = ferrolog_broker::security::client_security(&parse_properties_file(&text))
        .with_context(|| format!("{}", path.display()))?;
    let _ = SECURITY.set(security);
    Ok(())
}

#[derive(Subcommand)]
enum Command {
    /// Start a broker (a combined broker+controller single node by default).
    Server {
        /// A server.properties file with Apache Kafka's keys.
        #[arg(long)]
        config: Option<PathBuf>,
        /// key=value, applied after the file (repeatable).
        #[arg(long = "override", value_name = "KEY=VALUE")]
        overrides: Vec<String>,
        /// Shorthand for --override log.dirs=DIR (default ./ferrolog-data).
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// A controller with controller.quorum.bootstrap.servers: start a new dynamic quorum
        /// with this controller as its only voter (kafka-storage format --standalone; used
        /// when the data directory is new).
        #[arg(long, conflicts_with = "initial_controllers")]
        standalone: bool,
        /// A controller with controller.quorum.bootstrap.servers: start a new dynamic quorum
        /// with these voters, id@host:port[:directory-id],... (kafka-storage format
        /// --initial-controllers; used when the data directory is new).
        #[arg(long)]
        initial_controllers: Option<String>,
        /// A SCRAM user to create at start-up if it has no credential for that mechanism yet,
        /// as kafka-storage format --add-scram takes it:
        /// 'SCRAM-SHA-256=[name=alice,password=alice-secret]' (iterations=… optional;
        /// repeatable). A credential changed or deleted since is left alone only while this
        /// flag is not given again.
        #[arg(long = "add-scram", value_name = "MECHANISM=[name=…,password=…]")]
        add_scram: Vec<String>,
    },
    /// Start a local cluster of N nodes (each broker+controller), or describe a cluster.
    Cluster(cluster::ClusterArgs),
    /// Preferred or unclean leader elections (like kafka-leader-election.sh).
    ElectLeaders(elect::ElectArgs),
    /// Move partitions between brokers (like kafka-reassign-partitions.sh).
    Reassign(reassign::ReassignArgs),
    /// Create, list, describe and delete topics (like kafka-topics.sh).
    Topics(topics::TopicsArgs),
    /// Read lines from stdin and produce them (like kafka-console-producer.sh).
    Produce(console::ProduceArgs),
    /// Print records (like kafka-console-consumer.sh).
    Consume(console::ConsumeArgs),
    /// Load generators (like kafka-producer-perf-test.sh and kafka-consumer-perf-test.sh).
    Perf(perf::PerfArgs),
    /// Describe and alter configs (like kafka-configs.sh).
    Configs(configs::ConfigsArgs),
    /// Move a partition's log start offset (like kafka-delete-records.sh).
    DeleteRecords(configs::DeleteRecordsArgs),
    /// Print a segment file's batches and records (like kafka-dump-log.sh).
    DumpLog(dump_log::DumpLogArgs),
    /// List, describe, reset and delete consumer groups (like kafka-consumer-groups.sh).
    Groups(groups::GroupsArgs),
    /// List and describe transactions and producers, abort hanging transactions (like
    /// kafka-transactions.sh).
    Transactions(transactions::TransactionsArgs),
    /// Add, list and remove ACLs (like kafka-acls.sh).
    Acls(acls::AclsArgs),
    /// Add, list and remove SCRAM users (like kafka-configs.sh --entity-type users).
    Users(users::UsersArgs),
}

/// The log filter without `FERROLOG_LOG`: openraft's replication logs a line per failed retry
/// (thousands a second while a controller is down); ferrolog logs those failures itself, as
/// episodes (when they start, every 30 s while they last, when they end).
const DEFAULT_LOG_FILTER: &str =
    "info,openraft=warn,openraft::replication=off,openraft::engine::handler::replication_handler=off";

fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("FERROLOG_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(DEFAULT_LOG_FILTER)),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let cli = Cli::parse();
    if let Some(path) = &cli.command_config {
        if matches!(cli.command, Command::Server { .. }) {
            anyhow::bail!("--command-config is for the tools; a broker takes --config");
        }
        client_security(path)?;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        match cli.command {
            Command::Server {
                config,
                overrides,
                data_dir,
                standalone,
                initial_controllers,
                add_scram,
            } => {
                let initial = InitialControllers {
                    standalone,
                    listed: initial_controllers,
                };
                server(config, overrides, data_dir, initial, add_scram).await
            }
            Command::Cluster(args) => cluster::run(args).await,
            Command::ElectLeaders(args) => elect::run(args).await,
            Command::Reassign(args) => reassign::run(args).await,
            Command::Topics(args) => topics::run(args).await,
            Command::Produce(args) => console::produce(args).await,
            Command::Consume(args) => console::consume(args).await,
            Command::Perf(args) => perf::run(args).await,
            Command::Configs(args) => configs::run(args).await,
            Command::DeleteRecords(args) => configs::delete_records(args).await,
            Command::DumpLog(args) => dump_log::run(args),
            Command::Groups(args) => groups::run(args).await,
            Command::Transactions(args) => transactions::run(args).await,
            Command::Acls(args) => acls::run(args).await,
            Command::Users(args) => users::run(args).await,
        }
    })
}

/// Binds the controller listener (served on the controller's own runtime).
fn bind_controller_listener(
    l: &ferrolog_broker::config::Listener,
) -> Result<std::net::TcpListener> {
    let host = if l.host.is_empty() {
        "0.0.0.0"
    } else {
        &l.host
    };
    let bind = format!("{host}:{}", l.port);
    let listener = std::net::TcpListener::bind(&bind)
        .with_context(|| format!("binding controller listener {bind}"))?;
    listener.set_nonblocking(true)?;
    Ok(listener)
}

fn serve_controller_listener(
    quorum: &Arc<ferrolog_broker::quorum::RaftQuorum>,
    listener: std::net::TcpListener,
) {
    let q = quorum.clone();
    quorum.spawn(async move {
        match tokio::net::TcpListener::from_std(listener) {
            Ok(l) => q.serve(l).await,
            Err(e) => tracing::error!("controller listener: {e}"),
        }
    });
}

/// `process.roles` as configured, for the start-up line.
fn roles(config: &BrokerConfig) -> &'static str {
    match (config.roles.broker, config.roles.controller) {
        (true, true) => "broker,controller",
        (true, false) => "broker",
        _ => "controller",
    }
}

async fn shutdown_signal() -> Result<()> {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    Ok(())
}

/// A dedicated controller (`process.roles=controller`): a voter of the controller quorum and,
/// while it leads, the active controller; no Kafka listener.
async fn controller_only(config: BrokerConfig) -> Result<()> {
    use ferrolog_broker::quorum::{cluster_id_for, RaftQuorum, RAFT_DIR};
    let bootstrap = config
        .quorum_bootstrap
        .clone()
        .context("a dedicated controller needs controller.quorum.voters or controller.quorum.bootstrap.servers")?;
    let l = config.controller_listener.as_ref().context(
        "a controller needs a listener named in controller.listener.names (e.g. listeners=CONTROLLER://:9093)",
    )?;
    let listener = bind_controller_listener(l)?;
    ferrolog_broker::quorum::set_security(config.controller_security.clone());
    // meta.properties with the directory id Kafka's add-controller reads
    let cluster_id = ferrolog_broker::log_manager::format_dir(
        &config.log_dir,
        config.node_id,
        cluster_id_for(&config)?.as_deref(),
    )?;
    let quorum = RaftQuorum::start(
        config.node_id as u64,
        bootstrap,
        config.controller_address().unwrap_or_default(),
        &config.log_dir.join(RAFT_DIR),
        cluster_id.clone(),
        config.raft_timing(),
    )?;
    serve_controller_listener(&quorum, listener);
    quorum.spawn(quorum.clone().serve_duties(&config));
    tracing::info!(
        "ferrolog {} controller {} (controller) on {}:{}, data in {}, cluster id {cluster_id}",
        env!("CARGO_PKG_VERSION"),
        config.node_id,
        l.host,
        l.port,
        config.log_dir.display()
    );
    shutdown_signal().await?;
    tracing::info!("controller shut down");
    Ok(())
}

/// `--add-scram`: creates each credential the metadata does not have yet, once this broker is
/// serving (in a cluster, through the controller quorum; retried until it is reachable).
async fn bootstrap_scram(
    broker: std::sync::Arc<ferrolog_broker::Broker>,
    users: Vec<(
        String,
        ferrolog_client::sasl::Mechanism,
        ferrolog_broker::metadata::ScramCredential,
    )>,
) {
    use ferrolog_broker::metadata::MetadataRecord;
    broker.wait_unfenced().await;
    for (user, mechanism, credential) in users {
        let mechanism = mechanism.name();
        let record = MetadataRecord::ScramCredential {
            user: user.clone(),
            mechanism: mechanism.to_string(),
            credential,
        };
        loop {
            let image = broker.controller.image();
            if image
                .scram
                .get(&user)
                .is_some_and(|c| c.contains_key(mechanism))
            {
                break;
            }
            match broker.controller.commit(std::slice::from_ref(&record)) {
                Ok(_) => {
                    tracing::info!(
                        user,
                        mechanism,
                        "created the SCRAM credential of --add-scram"
                    );
                    break;
                }
                Err(e) => {
                    tracing::warn!(user, "creating the SCRAM credential of --add-scram: {e:#}");
                    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                }
            }
        }
    }
}

/// `--standalone` / `--initial-controllers`.
struct InitialControllers {
    standalone: bool,
    listed: Option<String>,
}

async fn server(
    config: Option<PathBuf>,
    overrides: Vec<String>,
    data_dir: Option<PathBuf>,
    initial: InitialControllers,
    add_scram: Vec<String>,
) -> Result<()> {
    // checked before anything starts: a bad credential stops start-up
    let scram_users = add_scram
        .iter()
        .map(|s| ferrolog_broker::security::sasl::parse_add_scram(s))
        .collect::<Result<Vec<_>>>()?;
    let mut props = Properties::new();
    if let Some(path) = &config {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        props.extend(parse_properties_file(&text));
    }
    if let Some(dir) = data_dir {
        props.insert("log.dirs".into(), dir.display().to_string());
    }
    for o in overrides {
        let (k, v) = o
            .split_once('=')
            .with_context(|| format!("--override {o}: expected KEY=VALUE"))?;
        props.insert(k.trim().to_string(), v.trim().to_string());
    }
    let mut config = BrokerConfig::from_properties(&props)?;
    // the logs keep at most half the open file limit open (segment and index files open
    // on use, the least recently used closed), the rest is for connections
    match ferrolog_broker::sys::raise_open_file_limit() {
        Ok((old, new)) => {
            if new > old {
                tracing::info!("raised the open file limit from {old} to {new} (the hard limit)");
            }
            ferrolog_storage::fs::set_open_file_budget((new / 2).min(1 << 20) as usize);
        }
        Err(e) => tracing::warn!("could not raise the open file limit: {e}"),
    }
    if initial.standalone {
        let addr = config
            .controller_address()
            .context("--standalone needs a controller listener")?;
        config.set_initial_controllers([(config.node_id as u64, addr)].into())?;
    }
    if let Some(list) = &initial.listed {
        // id@host:port[:directory-id]: ferrolog does not use the directory id
        let voters: Vec<String> = list
            .split(',')
            .map(|v| {
                let v = v.trim();
                match v.matches(':').count() {
                    2 => v.rsplit_once(':').map_or(v, |(a, _)| a).to_string(),
                    _ => v.to_string(),
                }
            })
            .collect();
        let voters = ferrolog_broker::quorum::parse_voters(&voters.join(","))
            .context("--initial-controllers")?;
        config.set_initial_controllers(voters)?;
    }
    // before anything else touches the data: a second instance on the same directory stops
    // here and the first one keeps serving; released when this process exits
    let _locks = config
        .log_dirs
        .iter()
        .map(|d| ferrolog_broker::log_manager::lock_dir(d))
        .collect::<Result<Vec<_>>>()?;
    if !config.roles.broker {
        return controller_only(config).await;
    }
    // every broker listener, the inter-broker one first
    let mut bound = Vec::new();
    for l in &mut config.broker_listeners {
        let host = if l.bind.host.is_empty() {
            "0.0.0.0"
        } else {
            &l.bind.host
        };
        let bind = format!("{host}:{}", l.bind.port);
        let listener = tokio::net::TcpListener::bind(&bind)
            .await
            .with_context(|| format!("binding listener {} {bind}", l.bind.name))?;
        let local = listener.local_addr()?;
        // Port 0 asks the OS for a free port; clients must be told the real one.
        if l.advertised.port == 0 {
            l.advertised.port = local.port();
        }
        bound.push((listener, local));
    }
    if let Some(first) = config.broker_listeners.first() {
        config.advertised = first.advertised.clone();
    }
    let controller_listener = match &config.controller_listener {
        Some(l) if config.is_controller() => Some(bind_controller_listener(l)?),
        _ => None,
    };
    let broker = ferrolog_broker::Broker::open(config)?;
    tokio::spawn(broker.clone().follow_metadata());
    if let Some(quorum) = broker.quorum.clone() {
        if let Some(l) = controller_listener {
            serve_controller_listener(&quorum, l);
        }
        tokio::spawn(broker.clone().run_cluster());
    }
    let served: Vec<String> = broker
        .config
        .broker_listeners
        .iter()
        .zip(&bound)
        .map(|(l, (_, local))| {
            format!(
                "{local} (advertised {}:{}, {} {})",
                l.advertised.host,
                l.advertised.port,
                l.bind.name,
                l.protocol.name()
            )
        })
        .collect();
    tracing::info!(
        "ferrolog {} node {} ({}) serving Kafka clients on {}{}, data in {}, cluster id {}",
        env!("CARGO_PKG_VERSION"),
        broker.config.node_id,
        roles(&broker.config),
        served.join(" and on "),
        broker
            .config
            .controller_listener
            .as_ref()
            .filter(|_| broker.config.is_controller())
            .map(|l| format!(", controller listener {}:{}", l.host, l.port))
            .unwrap_or_default(),
        broker
            .config
            .log_dirs
            .iter()
            .map(|d| d.display().to_string())
            .collect::<Vec<_>>()
            .join(","),
        broker.cluster_id
    );
    // like Kafka's brokers, serve clients once the controller has unfenced this broker (it has
    // caught up with the metadata): before, its answers would not list itself
    let mut serving = Vec::new();
    for (security, (listener, _)) in broker.listeners.clone().into_iter().zip(bound) {
        let broker = broker.clone();
        serving.push(tokio::spawn(async move {
            broker.wait_unfenced().await;
            ferrolog_broker::server::serve(broker, listener, security).await
        }));
    }
    if !scram_users.is_empty() {
        tokio::spawn(bootstrap_scram(broker.clone(), scram_users));
    }
    let background = tokio::spawn(broker.clone().run_background());
    if broker.config.cleaner_enable {
        let cleaner = broker.clone();
        std::thread::Builder::new()
            .name("log-cleaner".into())
            .spawn(move || cleaner.run_cleaner())?;
    }
    shutdown_signal().await?;
    tracing::info!("shutting down");
    // a controlled shutdown first: leadership moves to other in-sync replicas
    broker
        .controlled_shutdown(std::time::Duration::from_secs(30))
        .await;
    for s in serving {
        s.abort();
    }
    background.abort();
    broker.shutdown()?;
    tracing::info!("shut down cleanly");
    Ok(())
}
