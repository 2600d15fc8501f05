//! Broker and topic configuration, with Apache Kafka's names, types and defaults.
//!
//! Two stages: raw `key=value` properties (file, then `--override`s) are checked against the
//! table of known keys (unknown keys warn, bad values fail with the key's name, a security
//! setting ferrolog does not implement stops start-up: see [`crate::security`]), then turned
//! into the typed [`BrokerConfig`]. Topic configs are overrides on top of the broker's defaults.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{anyhow, bail, Context, Result};
use ferrolog_storage::LogConfig;

use crate::security::SecurityProtocol;

pub mod settings;

pub use settings::Settings;

pub type Properties = BTreeMap<String, String>;

/// DescribeConfigs `config_type` codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigType {
    Boolean = 1,
    String = 2,
    Int = 3,
    Short = 4,
    Long = 5,
    Double = 6,
    List = 7,
    Class = 8,
    Password = 9,
}

impl ConfigType {
    /// The name Kafka's messages use (`Not a number of type LONG`).
    fn kafka_name(self) -> &'static str {
        match self {
            ConfigType::Boolean => "BOOLEAN",
            ConfigType::String => "STRING",
            ConfigType::Int => "INT",
            ConfigType::Short => "SHORT",
            ConfigType::Long => "LONG",
            ConfigType::Double => "DOUBLE",
            ConfigType::List => "LIST",
            ConfigType::Class => "CLASS",
            ConfigType::Password => "PASSWORD",
        }
    }

    fn from_kafka_name(name: &str) -> Option<ConfigType> {
        [
            ConfigType::Boolean,
            ConfigType::String,
            ConfigType::Int,
            ConfigType::Short,
            ConfigType::Long,
            ConfigType::Double,
            ConfigType::List,
            ConfigType::Class,
            ConfigType::Password,
        ]
        .into_iter()
        .find(|t| t.kafka_name() == name)
    }
}

/// When Kafka lets a broker config change: never at run time, per broker, or also as the
/// cluster-wide default.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpdateMode {
    ReadOnly,
    PerBroker,
    ClusterWide,
}

/// A broker config as Apache Kafka 4.1 defines it.
#[derive(Debug)]
pub struct KafkaKey {
    pub kind: ConfigType,
    pub mode: UpdateMode,
    pub default: Option<&'static str>,
}

/// Kafka's broker config catalog, generated from its jars by scripts/kafka-broker-configs.sh.
static KAFKA_BROKER_CONFIGS: &str = include_str!("kafka_broker_configs.tsv");

/// Kafka's definition of the broker config `name`, if Kafka has one.
pub fn kafka_broker_key(name: &str) -> Option<&'static KafkaKey> {
    static CATALOG: std::sync::OnceLock<std::collections::HashMap<&'static str, KafkaKey>> =
        std::sync::OnceLock::new();
    CATALOG
        .get_or_init(|| {
            KAFKA_BROKER_CONFIGS
                .lines()
                .filter(|l| !l.starts_with('#') && !l.is_empty())
                .filter_map(|line| {
                    let mut f = line.split('\t');
                    let (name, kind, mode, default) = (f.next()?, f.next()?, f.next()?, f.next()?);
                    let mode = match mode {
                        "per-broker" => UpdateMode::PerBroker,
                        "cluster-wide" => UpdateMode::ClusterWide,
                        _ => UpdateMode::ReadOnly,
                    };
                    let key = KafkaKey {
                        kind: ConfigType::from_kafka_name(kind)?,
                        mode,
                        default: (default != "\\N").then_some(default),
                    };
                    Some((name, key))
                })
                .collect()
        })
        .get(name)
}

/// DescribeConfigs `config_source` codes.
pub mod source {
    pub const DYNAMIC_TOPIC_CONFIG: i8 = 1;
    pub const DYNAMIC_BROKER_CONFIG: i8 = 2;
    pub const DYNAMIC_DEFAULT_BROKER_CONFIG: i8 = 3;
    pub const STATIC_BROKER_CONFIG: i8 = 4;
    pub const DEFAULT_CONFIG: i8 = 5;
    pub const GROUP_CONFIG: i8 = 8;
}

/// A known key: name, default (None = no default), type, documentation.
pub struct ConfigKey {
    pub name: &'static str,
    pub default: Option<&'static str>,
    pub kind: ConfigType,
    pub doc: &'static str,
}

const fn key(
    name: &'static str,
    default: Option<&'static str>,
    kind: ConfigType,
    doc: &'static str,
) -> ConfigKey {
    ConfigKey {
        name,
        default,
        kind,
        doc,
    }
}

use ConfigType::{Boolean, Double, Int, List, Long, Short};
const STR: ConfigType = ConfigType::String;

/// Broker keys ferrolog knows. Keys that are accepted but not acted on yet say so in their doc.
pub static BROKER_KEYS: &[ConfigKey] = &[
    key("node.id", Some("1"), Int, "The node id of this server."),
    key(
        "process.roles",
        Some("broker,controller"),
        List,
        "The roles of this process: broker, controller or both.",
    ),
    key(
        "listeners",
        Some("PLAINTEXT://:9092,CONTROLLER://:9093"),
        STR,
        "Listener URIs the server binds.",
    ),
    key(
        "advertised.listeners",
        None,
        STR,
        "Listeners published to clients; defaults to listeners.",
    ),
    key(
        "controller.listener.names",
        Some("CONTROLLER"),
        STR,
        "Names of the controller listeners.",
    ),
    key(
        "listener.security.protocol.map",
        Some("PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT"),
        STR,
        "Listener name to security protocol.",
    ),
    key(
        "inter.broker.listener.name",
        None,
        STR,
        "Listener used between brokers.",
    ),
    key(
        "sasl.enabled.mechanisms",
        Some("GSSAPI"),
        List,
        "SASL mechanisms a SASL listener offers: PLAIN, SCRAM-SHA-256, SCRAM-SHA-512, OAUTHBEARER.",
    ),
    key(
        "sasl.mechanism.inter.broker.protocol",
        Some("GSSAPI"),
        STR,
        "The SASL mechanism brokers authenticate with on a SASL inter-broker listener.",
    ),
    key(
        "sasl.mechanism.controller.protocol",
        Some("GSSAPI"),
        STR,
        "The SASL mechanism nodes authenticate with to the controllers on a SASL controller listener.",
    ),
    key(
        "sasl.server.callback.handler.class",
        None,
        ConfigType::Class,
        "As listener.name.<listener>.oauthbearer.sasl.server.callback.handler.class: Kafka's OAuthBearerValidatorCallbackHandler checks signed JWTs against a JWKS; unset, OAUTHBEARER takes unsecured tokens (development only).",
    ),
    key(
        "sasl.login.callback.handler.class",
        None,
        ConfigType::Class,
        "Kafka's OAuthBearerLoginCallbackHandler: the broker's own OAuth token comes from sasl.oauthbearer.token.endpoint.url.",
    ),
    key(
        "sasl.oauthbearer.jwks.endpoint.url",
        None,
        STR,
        "The JWKS signed OAuth tokens are checked against: a file:// URL (read at start) or an https:// endpoint (refreshed).",
    ),
    key(
        "sasl.oauthbearer.expected.audience",
        None,
        List,
        "Audiences a signed OAuth token must name one of; empty: a token naming any is refused.",
    ),
    key(
        "sasl.oauthbearer.expected.issuer",
        None,
        STR,
        "The issuer (iss) a signed OAuth token must have.",
    ),
    key(
        "sasl.oauthbearer.clock.skew.seconds",
        Some("30"),
        Int,
        "Clock skew allowed when checking a signed OAuth token's exp and nbf.",
    ),
    key(
        "sasl.oauthbearer.sub.claim.name",
        Some("sub"),
        STR,
        "The claim of a signed OAuth token that names its principal.",
    ),
    key(
        "sasl.oauthbearer.scope.claim.name",
        Some("scope"),
        STR,
        "The scope claim of a signed OAuth token.",
    ),
    key(
        "sasl.oauthbearer.token.endpoint.url",
        None,
        STR,
        "Where the broker reads its own OAuth token for inter-broker OAUTHBEARER: a file:// URL, read for every connection.",
    ),
    key(
        "sasl.oauthbearer.jwt.validator.class",
        Some("org.apache.kafka.common.security.oauthbearer.DefaultJwtValidator"),
        ConfigType::Class,
        "Kafka's DefaultJwtValidator or BrokerJwtValidator: with OAuthBearerValidatorCallbackHandler ferrolog checks every token's signature against the JWKS.",
    ),
    key(
        "sasl.oauthbearer.jwks.endpoint.refresh.ms",
        Some("3600000"),
        Long,
        "How often an https:// JWKS is fetched again (a file:// one is read once at start, as Kafka does).",
    ),
    key(
        "sasl.oauthbearer.jwks.endpoint.retry.backoff.ms",
        Some("100"),
        Long,
        "Backoff between failed fetches of an https:// JWKS.",
    ),
    key(
        "sasl.oauthbearer.jwks.endpoint.retry.backoff.max.ms",
        Some("10000"),
        Long,
        "Backoff between failed fetches of an https:// JWKS.",
    ),
    key(
        "sasl.jaas.config",
        None,
        ConfigType::Password,
        "A listener's JAAS entry, as listener.name.<listener>.<mechanism>.sasl.jaas.config: PLAIN users (user_<name>), and the broker's own username and password.",
    ),
    key(
        "authorizer.class.name",
        Some(""),
        STR,
        "org.apache.kafka.metadata.authorizer.StandardAuthorizer to authorize requests by the ACLs of the metadata log; empty for none.",
    ),
    key(
        "super.users",
        Some(""),
        STR,
        "Principals the authorizer allows everything, separated by ';' (User:admin;User:broker).",
    ),
    key(
        "allow.everyone.if.no.acl.found",
        Some("false"),
        ConfigType::Boolean,
        "Whether the authorizer allows an action on a resource no ACL names.",
    ),
    key(
        "connections.max.reauth.ms",
        Some("0"),
        Long,
        "The SASL session lifetime after which a client must re-authenticate (KIP-368); 0 for none.",
    ),
    key(
        "connection.failed.authentication.delay.ms",
        Some("100"),
        Int,
        "How long a failed authentication waits before its answer.",
    ),
    key(
        "security.inter.broker.protocol",
        Some("PLAINTEXT"),
        STR,
        "Security protocol between brokers: that of the broker listener.",
    ),
    key(
        "ssl.keystore.type",
        Some("JKS"),
        STR,
        "The key store's format: PEM or PKCS12 (JKS is refused; a JKS-declared file in PKCS12 format is read as PKCS12).",
    ),
    key(
        "ssl.keystore.location",
        None,
        STR,
        "The key store file of TLS listeners.",
    ),
    key(
        "ssl.keystore.password",
        None,
        ConfigType::Password,
        "The password of a PKCS12 key store.",
    ),
    key(
        "ssl.key.password",
        None,
        ConfigType::Password,
        "The password of an encrypted PKCS#8 private key.",
    ),
    key(
        "ssl.keystore.key",
        None,
        ConfigType::Password,
        "A PEM private key given inline (ssl.keystore.type=PEM).",
    ),
    key(
        "ssl.keystore.certificate.chain",
        None,
        ConfigType::Password,
        "A PEM certificate chain given inline (ssl.keystore.type=PEM).",
    ),
    key(
        "ssl.truststore.type",
        Some("JKS"),
        STR,
        "The trust store's format: PEM or PKCS12.",
    ),
    key(
        "ssl.truststore.location",
        None,
        STR,
        "The trust store file used to verify client certificates.",
    ),
    key(
        "ssl.truststore.password",
        None,
        ConfigType::Password,
        "The password of a PKCS12 trust store.",
    ),
    key(
        "ssl.truststore.certificates",
        None,
        ConfigType::Password,
        "Trusted PEM certificates given inline (ssl.truststore.type=PEM).",
    ),
    key(
        "ssl.client.auth",
        Some("none"),
        STR,
        "Client certificates: none, requested or required.",
    ),
    key(
        "ssl.enabled.protocols",
        Some("TLSv1.2,TLSv1.3"),
        List,
        "TLS versions offered (TLSv1.2, TLSv1.3).",
    ),
    key(
        "ssl.protocol",
        Some("TLSv1.3"),
        STR,
        "The TLS protocol family (TLS, TLSv1.2 or TLSv1.3; ssl.enabled.protocols decides).",
    ),
    key(
        "ssl.cipher.suites",
        Some(""),
        List,
        "Cipher suites offered, by IANA name; empty offers all of ferrolog's.",
    ),
    key(
        "ssl.principal.mapping.rules",
        Some("DEFAULT"),
        STR,
        "Rules mapping a client certificate's subject to a user name (Kafka's RULE syntax).",
    ),
    key(
        "ssl.endpoint.identification.algorithm",
        Some("https"),
        STR,
        "Host name verification for outgoing TLS connections: https or empty.",
    ),
    key(
        "ssl.allow.dn.changes",
        Some("false"),
        Boolean,
        "Whether a key store changed at run time may carry a certificate with another subject.",
    ),
    key(
        "ssl.allow.san.changes",
        Some("false"),
        Boolean,
        "Whether a key store changed at run time may carry other subject alternative names.",
    ),
    key(
        "ssl.keymanager.algorithm",
        Some("SunX509"),
        STR,
        "Accepted for compatibility: SunX509 or PKIX.",
    ),
    key(
        "ssl.trustmanager.algorithm",
        Some("PKIX"),
        STR,
        "Accepted for compatibility: PKIX or SunX509.",
    ),
    key(
        "controller.quorum.voters",
        None,
        List,
        "Static controller quorum, id@host:port,...: with it set, the controllers form a Raft quorum (a cluster); unset, the node is a single-node cluster.",
    ),
    key(
        "controller.quorum.bootstrap.servers",
        None,
        List,
        "Controller endpoints host:port,... (instead of controller.quorum.voters): brokers follow the metadata log through them; a controller joins their quorum as an observer until AddRaftVoter (kafka-metadata-quorum add-controller) makes it a voter, or starts a new one with `ferrolog server --standalone` / `--initial-controllers`.",
    ),
    key(
        "log.dirs",
        None,
        STR,
        "Directories the log data is kept in; new partitions go to the one with the fewest (the first also holds the metadata log).",
    ),
    key(
        "log.dir",
        Some("./ferrolog-data"),
        STR,
        "The directory the log data is kept in, if log.dirs is unset.",
    ),
    key(
        "num.partitions",
        Some("1"),
        Int,
        "Default number of partitions of a new topic.",
    ),
    key(
        "default.replication.factor",
        Some("1"),
        Int,
        "Default replication factor of a new topic.",
    ),
    key(
        "auto.create.topics.enable",
        Some("true"),
        Boolean,
        "Create topics on Metadata requests for unknown topics.",
    ),
    key(
        "message.max.bytes",
        Some("1048588"),
        Int,
        "Largest record batch size allowed.",
    ),
    key(
        "log.segment.bytes",
        Some("1073741824"),
        Int,
        "Maximum size of a single log segment file.",
    ),
    key(
        "log.roll.ms",
        None,
        Long,
        "Maximum age of a segment before it rolls.",
    ),
    key(
        "log.roll.hours",
        Some("168"),
        Int,
        "Maximum age of a segment before it rolls, in hours.",
    ),
    key(
        "log.index.size.max.bytes",
        Some("10485760"),
        Int,
        "Maximum size of an offset index.",
    ),
    key(
        "log.index.interval.bytes",
        Some("4096"),
        Int,
        "Bytes between offset index entries.",
    ),
    key(
        "log.flush.interval.messages",
        Some("9223372036854775807"),
        Long,
        "Messages accumulated before fsync.",
    ),
    key(
        "log.flush.interval.ms",
        None,
        Long,
        "Maximum time data stays unflushed.",
    ),
    key(
        "log.flush.scheduler.interval.ms",
        Some("9223372036854775807"),
        Long,
        "How often the flusher checks logs.",
    ),
    key(
        "log.flush.offset.checkpoint.interval.ms",
        Some("60000"),
        Int,
        "How often the recovery points are checkpointed.",
    ),
    key(
        "log.flush.start.offset.checkpoint.interval.ms",
        Some("60000"),
        Int,
        "How often log start offsets are checkpointed.",
    ),
    key(
        "log.message.timestamp.type",
        Some("CreateTime"),
        STR,
        "CreateTime or LogAppendTime.",
    ),
    key(
        "log.message.timestamp.before.max.ms",
        Some("9223372036854775807"),
        Long,
        "Allowed age of a record timestamp.",
    ),
    key(
        "log.message.timestamp.after.max.ms",
        Some("3600000"),
        Long,
        "Allowed lead of a record timestamp.",
    ),
    key(
        "log.retention.hours",
        Some("168"),
        Int,
        "Retention time in hours (retention is not enforced yet).",
    ),
    key(
        "log.retention.minutes",
        None,
        Int,
        "Retention time in minutes (retention is not enforced yet).",
    ),
    key(
        "log.retention.ms",
        None,
        Long,
        "Retention time in ms (retention is not enforced yet).",
    ),
    key(
        "log.retention.bytes",
        Some("-1"),
        Long,
        "Retention size (retention is not enforced yet).",
    ),
    key(
        "log.retention.check.interval.ms",
        Some("300000"),
        Long,
        "Retention check interval (not enforced yet).",
    ),
    key(
        "log.cleanup.policy",
        Some("delete"),
        List,
        "delete (retention), compact (keep the latest record per key), or both.",
    ),
    key(
        "log.cleaner.delete.retention.ms",
        Some("86400000"),
        Long,
        "How long tombstones are kept after compaction reaches them.",
    ),
    key(
        "log.cleaner.min.compaction.lag.ms",
        Some("0"),
        Long,
        "Minimum age of a record before it can be compacted.",
    ),
    key(
        "log.cleaner.max.compaction.lag.ms",
        Some("9223372036854775807"),
        Long,
        "Maximum time a record stays uncompacted.",
    ),
    key(
        "log.cleaner.min.cleanable.ratio",
        Some("0.5"),
        Double,
        "Dirty ratio of a log above which the cleaner compacts it.",
    ),
    key(
        "log.segment.delete.delay.ms",
        Some("60000"),
        Long,
        "Delay before a deleted segment's files go.",
    ),
    key(
        "compression.type",
        Some("producer"),
        STR,
        "Final compression of topic data: producer keeps what the producer sent.",
    ),
    key(
        "min.insync.replicas",
        Some("1"),
        Int,
        "Minimum in-sync replicas for acks=all.",
    ),
    key(
        "unclean.leader.election.enable",
        Some("false"),
        Boolean,
        "Allow out-of-sync replicas to become leader.",
    ),
    key(
        "socket.request.max.bytes",
        Some("104857600"),
        Int,
        "Largest request the server accepts.",
    ),
    key(
        "socket.send.buffer.bytes",
        Some("102400"),
        Int,
        "SO_SNDBUF of sockets.",
    ),
    key(
        "socket.receive.buffer.bytes",
        Some("102400"),
        Int,
        "SO_RCVBUF of sockets.",
    ),
    key(
        "connections.max.idle.ms",
        Some("600000"),
        Long,
        "Idle connections are closed after this.",
    ),
    key(
        "max.connections",
        Some("2147483647"),
        Int,
        "Connections the broker listeners take in all (the inter-broker listener is exempt when there are others); at the limit a listener stops accepting until one closes. Per listener: listener.name.<listener>.max.connections.",
    ),
    key(
        "max.connections.per.ip",
        Some("2147483647"),
        Int,
        "Connections one address may hold; one more is closed at once.",
    ),
    key(
        "max.connections.per.ip.overrides",
        Some(""),
        STR,
        "Per-address exceptions to max.connections.per.ip: host:count,ip:count.",
    ),
    key(
        "max.connection.creation.rate",
        Some("2147483647"),
        Int,
        "New connections per second the broker listeners accept (per listener: listener.name.<listener>.max.connection.creation.rate); above it accepting is delayed.",
    ),
    key(
        "quota.window.num",
        Some("11"),
        Int,
        "Samples rates are measured over.",
    ),
    key(
        "quota.window.size.seconds",
        Some("1"),
        Int,
        "Length of one rate sample.",
    ),
    key(
        "queued.max.request.bytes",
        Some("-1"),
        Long,
        "Bytes of requests being read and handled at once; above it large requests wait and their connections are not read. -1: ferrolog's bound of 256 MiB (or socket.request.max.bytes, if larger).",
    ),
    key(
        "queued.max.requests",
        Some("500"),
        Int,
        "Kafka's request queue size; ferrolog has none, and refuses any value but the default.",
    ),
    key(
        "num.network.threads",
        Some("3"),
        Int,
        "Accepted for compatibility (ferrolog uses one async runtime).",
    ),
    key(
        "num.io.threads",
        Some("8"),
        Int,
        "Accepted for compatibility (ferrolog uses one async runtime).",
    ),
    key(
        "num.recovery.threads.per.data.dir",
        Some("2"),
        Int,
        "Threads per log directory that open and recover the partitions' logs at start-up.",
    ),
    key("broker.rack", None, STR, "Rack of this broker."),
    key(
        "auto.leader.rebalance.enable",
        Some("true"),
        Boolean,
        "The active controller moves leadership back to preferred replicas that are in sync.",
    ),
    key(
        "leader.imbalance.check.interval.seconds",
        Some("300"),
        Long,
        "How often the preferred-leader rebalance runs.",
    ),
    key(
        "leader.replication.throttled.rate",
        Some("9223372036854775807"),
        Long,
        "Bytes per second a leader sends to the throttled replicas of topics (leader.replication.throttled.replicas) that are not in the ISR; dynamic, per broker.",
    ),
    key(
        "follower.replication.throttled.rate",
        Some("9223372036854775807"),
        Long,
        "Bytes per second a follower fetches for its throttled replicas (follower.replication.throttled.replicas) that are not in the ISR; dynamic, per broker.",
    ),
    key(
        "replica.alter.log.dirs.io.max.bytes.per.second",
        Some("9223372036854775807"),
        Long,
        "Accepted (dynamic, per broker) for Kafka's reassignment tool: with one log directory there are no moves between directories to throttle.",
    ),
    key(
        "replica.selector.class",
        None,
        STR,
        "How a leader picks the replica a consumer reads from (KIP-392): unset, the leader; org.apache.kafka.common.replica.RackAwareReplicaSelector, an in-sync replica in the consumer's client.rack.",
    ),
    key(
        "leader.imbalance.per.broker.percentage",
        Some("10"),
        Int,
        "A broker's preferred leaderships move back to it once more than this percentage of the partitions it prefers are led elsewhere.",
    ),
    key(
        "group.consumer.migration.policy",
        Some("bidirectional"),
        STR,
        "Online migration of a live group between the classic and the consumer protocol: bidirectional, upgrade, downgrade or disabled.",
    ),
    key(
        "broker.session.timeout.ms",
        Some("9000"),
        Int,
        "A broker not heard from for this long is fenced and loses its leaderships.",
    ),
    key(
        "broker.heartbeat.interval.ms",
        Some("2000"),
        Int,
        "How often a broker heartbeats to the active controller (a fenced broker catching up heartbeats more often).",
    ),
    key(
        "controller.quorum.fetch.timeout.ms",
        Some("2000"),
        Int,
        "A controller that has not heard from the quorum's leader for this long starts an election (the leader heartbeats a quarter as often).",
    ),
    key(
        "controller.quorum.election.timeout.ms",
        Some("1000"),
        Int,
        "The spread added to controller.quorum.fetch.timeout.ms when a controller picks its election time, so candidates do not collide.",
    ),
    key(
        "replica.lag.time.max.ms",
        Some("30000"),
        Long,
        "A follower that has not caught up with the leader for this long leaves the ISR.",
    ),
    key(
        "replica.fetch.wait.max.ms",
        Some("500"),
        Int,
        "Longest a follower's fetch waits at the leader for new data.",
    ),
    key(
        "replica.fetch.max.bytes",
        Some("1048576"),
        Int,
        "Bytes a follower fetches per partition and request.",
    ),
    key(
        "group.initial.rebalance.delay.ms",
        Some("3000"),
        Int,
        "Delay before the first rebalance of a new group, so more members can join it.",
    ),
    key(
        "offsets.topic.replication.factor",
        Some("3"),
        Short,
        "Replication factor of __consumer_offsets (at most the live brokers: 1 on a single node).",
    ),
    key(
        "offsets.topic.num.partitions",
        Some("50"),
        Int,
        "Partitions of __consumer_offsets.",
    ),
    key(
        "transaction.state.log.replication.factor",
        Some("3"),
        Short,
        "Replication factor of __transaction_state (at most the live brokers: 1 on a single node).",
    ),
    key(
        "transaction.state.log.min.isr",
        Some("2"),
        Int,
        "min.insync.replicas of __transaction_state (capped by its replication factor).",
    ),
    key(
        "max.incremental.fetch.session.cache.slots",
        Some("1000"),
        Int,
        "Maximum number of fetch sessions.",
    ),
    key(
        "cluster.id",
        None,
        STR,
        "Cluster id used when the data directory is new (generated if unset).",
    ),
    key(
        "log.cleaner.enable",
        Some("true"),
        Boolean,
        "Run the log cleaner (compaction) for compacted topics.",
    ),
    key(
        "log.cleaner.backoff.ms",
        Some("15000"),
        Long,
        "Sleep between cleaner passes when no log needs cleaning.",
    ),
    key(
        "log.cleaner.dedupe.buffer.size",
        Some("134217728"),
        Long,
        "Memory for the cleaner's key-to-offset map.",
    ),
    key(
        "log.cleaner.threads",
        Some("1"),
        Int,
        "Cleaner threads (ferrolog runs one).",
    ),
    key(
        "compression.gzip.level",
        Some("-1"),
        Int,
        "gzip level when the broker compresses (-1: default, 6).",
    ),
    key(
        "compression.lz4.level",
        Some("9"),
        Int,
        "lz4 level when the broker compresses.",
    ),
    key(
        "compression.zstd.level",
        Some("3"),
        Int,
        "zstd level when the broker compresses.",
    ),
    key(
        "group.min.session.timeout.ms",
        Some("6000"),
        Int,
        "Smallest session timeout a member may ask for.",
    ),
    key(
        "group.max.session.timeout.ms",
        Some("1800000"),
        Int,
        "Largest session timeout a member may ask for.",
    ),
    key(
        "group.consumer.session.timeout.ms",
        Some("45000"),
        Int,
        "Session timeout of consumer-protocol (KIP-848) group members.",
    ),
    key(
        "group.consumer.heartbeat.interval.ms",
        Some("5000"),
        Int,
        "Heartbeat interval the coordinator gives consumer-protocol group members.",
    ),
    key(
        "group.consumer.min.session.timeout.ms",
        Some("45000"),
        Int,
        "Smallest consumer.session.timeout.ms a group config may set (below the broker's own default, that default).",
    ),
    key(
        "group.consumer.max.session.timeout.ms",
        Some("60000"),
        Int,
        "Largest consumer.session.timeout.ms a group config may set (above the broker's own default, that default).",
    ),
    key(
        "group.consumer.min.heartbeat.interval.ms",
        Some("5000"),
        Int,
        "Smallest consumer.heartbeat.interval.ms a group config may set (below the broker's own default, that default).",
    ),
    key(
        "group.consumer.max.heartbeat.interval.ms",
        Some("15000"),
        Int,
        "Largest consumer.heartbeat.interval.ms a group config may set (above the broker's own default, that default).",
    ),
    key(
        "offset.metadata.max.bytes",
        Some("4096"),
        Int,
        "Largest metadata string of a committed offset.",
    ),
    key(
        "offsets.topic.segment.bytes",
        Some("104857600"),
        Int,
        "segment.bytes of __consumer_offsets.",
    ),
    key(
        "offsets.retention.minutes",
        Some("10080"),
        Int,
        "Committed offsets of a group empty this long are deleted.",
    ),
    key(
        "transaction.max.timeout.ms",
        Some("900000"),
        Int,
        "Largest transaction.timeout.ms a producer may ask for.",
    ),
    key(
        "transaction.abort.timed.out.transaction.cleanup.interval.ms",
        Some("10000"),
        Int,
        "How often open transactions are checked against their timeout.",
    ),
    key(
        "transactional.id.expiration.ms",
        Some("604800000"),
        Int,
        "A transactional id with no transaction for this long is forgotten.",
    ),
    key(
        "producer.id.expiration.ms",
        Some("86400000"),
        Int,
        "An idle producer's sequence state in a partition is forgotten after this long.",
    ),
    key(
        "producer.id.expiration.check.interval.ms",
        Some("600000"),
        Int,
        "How often idle producers are looked for.",
    ),
    key(
        "transaction.state.log.num.partitions",
        Some("50"),
        Int,
        "Partitions of __transaction_state.",
    ),
    key(
        "transaction.state.log.segment.bytes",
        Some("104857600"),
        Int,
        "segment.bytes of __transaction_state.",
    ),
    key(
        "offsets.retention.check.interval.ms",
        Some("600000"),
        Long,
        "How often expired offsets are looked for.",
    ),
];

/// Topic keys: name, synonym broker key, type, doc.
pub static TOPIC_KEYS: &[(&str, &str, ConfigType)] = &[
    ("compression.gzip.level", "compression.gzip.level", Int),
    ("compression.lz4.level", "compression.lz4.level", Int),
    ("compression.zstd.level", "compression.zstd.level", Int),
    ("cleanup.policy", "log.cleanup.policy", List),
    ("compression.type", "compression.type", STR),
    (
        "delete.retention.ms",
        "log.cleaner.delete.retention.ms",
        Long,
    ),
    ("file.delete.delay.ms", "log.segment.delete.delay.ms", Long),
    ("flush.messages", "log.flush.interval.messages", Long),
    ("flush.ms", "log.flush.interval.ms", Long),
    ("index.interval.bytes", "log.index.interval.bytes", Int),
    (
        "max.compaction.lag.ms",
        "log.cleaner.max.compaction.lag.ms",
        Long,
    ),
    ("max.message.bytes", "message.max.bytes", Int),
    (
        "message.timestamp.after.max.ms",
        "log.message.timestamp.after.max.ms",
        Long,
    ),
    (
        "message.timestamp.before.max.ms",
        "log.message.timestamp.before.max.ms",
        Long,
    ),
    ("message.timestamp.type", "log.message.timestamp.type", STR),
    (
        "min.cleanable.dirty.ratio",
        "log.cleaner.min.cleanable.ratio",
        Double,
    ),
    (
        "min.compaction.lag.ms",
        "log.cleaner.min.compaction.lag.ms",
        Long,
    ),
    ("min.insync.replicas", "min.insync.replicas", Int),
    ("retention.bytes", "log.retention.bytes", Long),
    ("retention.ms", "log.retention.ms", Long),
    ("segment.bytes", "log.segment.bytes", Int),
    ("segment.index.bytes", "log.index.size.max.bytes", Int),
    ("segment.ms", "log.roll.ms", Long),
    (
        "unclean.leader.election.enable",
        "unclean.leader.election.enable",
        Boolean,
    ),
    // no broker default: the empty name
    ("leader.replication.throttled.replicas", "", List),
    ("follower.replication.throttled.replicas", "", List),
];

pub fn broker_key(name: &str) -> Option<&'static ConfigKey> {
    BROKER_KEYS.iter().find(|k| k.name == name)
}

pub fn topic_key(name: &str) -> Option<&'static (&'static str, &'static str, ConfigType)> {
    TOPIC_KEYS.iter().find(|k| k.0 == name)
}

/// Checks that `value` parses as `kind` (plus the few enumerated values Kafka validates).
pub fn validate_value(name: &str, kind: ConfigType, value: &str) -> Result<()> {
    let value = value.trim();
    let ok = match kind {
        Boolean => value.eq_ignore_ascii_case("true") || value.eq_ignore_ascii_case("false"),
        Int => value.parse::<i32>().is_ok(),
        Short => value.parse::<i16>().is_ok(),
        Long => value.parse::<i64>().is_ok(),
        Double => value.parse::<f64>().is_ok(),
        ConfigType::String | List | ConfigType::Class | ConfigType::Password => true,
    };
    if !ok {
        let why = match kind {
            Boolean => "Expected value to be either true or false".to_string(),
            _ => format!("Not a number of type {}", kind.kafka_name()),
        };
        bail!("Invalid value {value} for configuration {name}: {why}");
    }
    let allowed: &[&str] = match name {
        "message.timestamp.type" | "log.message.timestamp.type" => &["CreateTime", "LogAppendTime"],
        "group.consumer.migration.policy" => &["bidirectional", "upgrade", "downgrade", "disabled"],
        "compression.type" => &["uncompressed", "zstd", "lz4", "snappy", "gzip", "producer"],
        _ => &[],
    };
    // Kafka compares this one without case
    let compared = if name == "group.consumer.migration.policy" {
        value.to_ascii_lowercase()
    } else {
        value.to_string()
    };
    if !allowed.is_empty() && !allowed.contains(&compared.as_str()) {
        bail!(
            "Invalid value {value} for configuration {name}: String must be one of: {}",
            allowed.join(", ")
        );
    }
    if matches!(
        name,
        crate::throttle::LEADER_REPLICAS | crate::throttle::FOLLOWER_REPLICAS
    ) {
        crate::throttle::validate_list(name, value).map_err(|m| anyhow!(m))?;
    }
    if matches!(name, "cleanup.policy" | "log.cleanup.policy") {
        // an empty list is valid (Kafka: neither deleted nor compacted)
        for policy in value.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            if policy != "delete" && policy != "compact" {
                bail!("Invalid value {value} for configuration {name}: unknown policy {policy}");
            }
        }
    }
    let positive = [
        "segment.bytes",
        "log.segment.bytes",
        "max.message.bytes",
        "message.max.bytes",
        "segment.index.bytes",
        "log.index.size.max.bytes",
        "flush.messages",
        "log.flush.interval.messages",
        "socket.request.max.bytes",
        "min.insync.replicas",
        "num.partitions",
    ];
    if positive.contains(&name) && value.parse::<i64>().is_ok_and(|v| v < 1) {
        bail!("Invalid value {value} for configuration {name}: Value must be at least 1");
    }
    let ranges: &[(&str, i64, i64)] = &[
        ("compression.gzip.level", -1, 9),
        ("compression.lz4.level", 1, 17),
        ("compression.zstd.level", -131072, 22),
    ];
    for (key, low, high) in ranges {
        let out_of_range =
            |v: i64| v < *low || v > *high || (*key == "compression.gzip.level" && v == 0);
        if name == *key && value.parse::<i64>().is_ok_and(out_of_range) {
            bail!(
                "Invalid value {value} for configuration {name}: Value must be in [{low}, {high}]"
            );
        }
    }
    if matches!(name, "segment.bytes" | "log.segment.bytes")
        && value.parse::<i64>().is_ok_and(|v| v < 14)
    {
        bail!("Invalid value {value} for configuration {name}: Value must be at least 14");
    }
    Ok(())
}

/// Keys whose value Kafka derives from others when unset (`log.retention.ms` from the minutes
/// or hours, …).
fn derived_from(name: &str) -> &'static [&'static str] {
    match name {
        "log.retention.ms" => &["log.retention.minutes", "log.retention.hours"],
        "log.roll.ms" => &["log.roll.hours"],
        "log.flush.interval.ms" => &["log.flush.scheduler.interval.ms"],
        _ => &[],
    }
}

/// Broker keys that AlterConfigs may change at run time and that take effect: the defaults of
/// topic configs, the cleaner's settings, replication throttles, producer id expiry.
pub fn is_dynamic_broker_key(name: &str) -> bool {
    TOPIC_KEYS
        .iter()
        .any(|(_, broker_name, _)| *broker_name == name)
        || matches!(
            name,
            "log.cleaner.backoff.ms"
                | "log.cleaner.dedupe.buffer.size"
                | crate::throttle::LEADER_RATE
                | crate::throttle::FOLLOWER_RATE
                | "producer.id.expiration.ms"
                | crate::connections::MAX_CONNECTIONS
                | crate::connections::MAX_PER_IP
                | crate::connections::PER_IP_OVERRIDES
                | crate::connections::CREATION_RATE
        )
}

/// Kafka broker configs that may change at run time but that ferrolog does not act on, with
/// the reason; AlterConfigs refuses them rather than accept a setting that would do nothing.
pub fn not_acted_on(name: &str) -> Option<&'static str> {
    const THREADS: &str = "ferrolog sizes its worker threads itself, this setting has no effect";
    const SECURITY: &str = "ferrolog changes only a listener's key and trust stores at run time (listener.name.<listener>.ssl.*), not other TLS or SASL settings, and has no custom principals";
    const TIERED: &str = "ferrolog does not implement tiered storage";
    Some(match name {
        "background.threads"
        | "num.io.threads"
        | "num.network.threads"
        | "num.replica.fetchers"
        | "log.cleaner.threads" => THREADS,
        "num.recovery.threads.per.data.dir" => {
            "ferrolog uses it only at start-up; set it in the broker's properties"
        }
        "log.cleaner.io.buffer.size" | "log.cleaner.io.buffer.load.factor" => {
            "ferrolog's cleaner reads whole segments, it has no I/O buffer to size"
        }
        "log.cleaner.io.max.bytes.per.second" => "ferrolog's cleaner is not throttled",
        "log.preallocate" => "ferrolog does not preallocate segment files",
        "log.roll.jitter.ms" => "ferrolog rolls segments without jitter",
        "replica.alter.log.dirs.io.max.bytes.per.second" => {
            "ferrolog moves a replica between log directories in one copy, without a throttle"
        }
        "metric.reporters" => "metrics reporters are Java plugins",
        "transaction.partition.verification.enable" => {
            "ferrolog always verifies that a transactional write's partition is in its transaction"
        }
        "listeners" | "listener.security.protocol.map" => {
            "ferrolog cannot change its listeners at run time"
        }
        n if n.starts_with("remote.") || n.starts_with("log.local.retention.") => TIERED,
        n if n.starts_with("ssl.") || n.starts_with("sasl.") || n == "principal.builder.class" => {
            SECURITY
        }
        _ => return None,
    })
}

/// Kafka's SSL configs that change at run time only under a listener prefix.
fn listener_prefixed_only(name: &str) -> bool {
    matches!(
        name,
        "ssl.keystore.type"
            | "ssl.keystore.location"
            | "ssl.keystore.password"
            | "ssl.key.password"
            | "ssl.keystore.certificate.chain"
            | "ssl.keystore.key"
            | "ssl.truststore.type"
            | "ssl.truststore.location"
            | "ssl.truststore.password"
            | "ssl.truststore.certificates"
    )
}

/// Checks that the broker config `name` may be changed at run time, for this broker
/// (`per_broker`) or as the cluster-wide default. Kafka's answers for each of its update modes;
/// a Kafka config ferrolog would not act on, and a name neither knows, are refused too.
pub fn check_broker_config_name(name: &str, per_broker: bool) -> std::result::Result<(), String> {
    let at_default = || {
        format!("Cannot update these configs at default cluster level, broker id must be specified: Set({name})")
    };
    if let Some(rest) = name.strip_prefix("listener.name.") {
        if !per_broker {
            return Err(at_default());
        }
        // a listener's key and trust stores change at run time (certificate rotation)
        let key = rest.split_once('.').map_or("", |(_, k)| k);
        if listener_prefixed_only(key)
            || matches!(
                key,
                crate::connections::MAX_CONNECTIONS | crate::connections::CREATION_RATE
            )
        {
            return Ok(());
        }
        return Err(format!(
            "ferrolog does not change per-listener configs (listener.name.<listener>.<config>) at run time other than the key and trust stores and the connection limits: {name}"
        ));
    }
    let kafka = kafka_broker_key(name);
    let mode = kafka.map(|k| k.mode);
    if !is_dynamic_broker_key(name) {
        let read_only = || format!("Cannot update these configs dynamically: Set({name})");
        return Err(if mode == Some(UpdateMode::ReadOnly) {
            read_only()
        } else if listener_prefixed_only(name) {
            format!("These security configs can be dynamically updated only per-listener using the listener prefix: HashSet({name})")
        } else if mode == Some(UpdateMode::PerBroker) && !per_broker {
            at_default()
        } else if let Some(reason) = not_acted_on(name) {
            format!("ferrolog does not act on dynamic updates of {name}: {reason}")
        } else if kafka.is_some() || broker_key(name).is_some() {
            read_only()
        } else {
            format!(
                "Unknown broker config name: {name} (neither ferrolog nor Apache Kafka 4.1 has it)"
            )
        });
    }
    if mode == Some(UpdateMode::PerBroker) && !per_broker {
        return Err(at_default());
    }
    Ok(())
}

/// Validates one dynamic broker config, with Kafka's message on failure.
pub fn validate_broker_config(
    name: &str,
    value: Option<&str>,
    per_broker: bool,
) -> std::result::Result<(), String> {
    check_broker_config_name(name, per_broker)?;
    let Some(value) = value else {
        return Err(format!(
            "Null value not supported for broker configs: {name}"
        ));
    };
    // a listener's own value of a key has the key's type
    let base = name
        .strip_prefix("listener.name.")
        .and_then(|rest| rest.split_once('.'))
        .map_or(name, |(_, key)| key);
    let kind = broker_key(base)
        .map(|k| k.kind)
        .or(kafka_broker_key(base).map(|k| k.kind))
        .unwrap_or(ConfigType::String);
    validate_value(name, kind, value).map_err(|e| e.to_string())?;
    crate::connections::validate(base, name, value).map_err(|e| e.to_string())
}

/// Validates one topic config (name and value), with Kafka's message on failure.
pub fn validate_topic_config(name: &str, value: Option<&str>) -> std::result::Result<(), String> {
    let Some((_, _, kind)) = topic_key(name) else {
        return Err(format!("Unknown topic config name: {name}"));
    };
    let Some(value) = value else {
        return Err(format!(
            "Null value not supported for topic configs: {name}"
        ));
    };
    validate_value(name, *kind, value).map_err(|e| e.to_string())
}

/// A listener parsed from `NAME://host:port`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listener {
    pub name: String,
    pub host: String,
    pub port: u16,
}

fn parse_listeners(key: &str, value: &str) -> Result<Vec<Listener>> {
    let mut out = Vec::new();
    for item in value.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let (name, rest) = item.split_once("://").ok_or_else(|| {
            anyhow!("Invalid value {item} for configuration {key}: expected NAME://host:port")
        })?;
        let (host, port) = rest
            .rsplit_once(':')
            .ok_or_else(|| anyhow!("Invalid value {item} for configuration {key}: missing port"))?;
        let port: u16 = port.parse().map_err(|_| {
            anyhow!("Invalid value {item} for configuration {key}: bad port {port}")
        })?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        out.push(Listener {
            name: name.to_string(),
            host: host.to_string(),
            port,
        });
    }
    Ok(out)
}

/// A broker listener: where it binds, the address it advertises, how it is secured.
#[derive(Debug, Clone)]
pub struct BrokerListener {
    pub bind: Listener,
    pub advertised: Listener,
    pub protocol: SecurityProtocol,
    /// The TLS set-up of an SSL or SASL_SSL listener, built at start so a bad store stops
    /// start-up.
    pub tls: Option<Arc<crate::security::tls::ListenerTls>>,
    /// The SASL set-up of a SASL_PLAINTEXT or SASL_SSL listener.
    pub sasl: Option<Arc<crate::security::sasl::SaslConfig>>,
}

/// Which broker listener brokers talk over, as Kafka chooses it: `inter.broker.listener.name`,
/// else the listener named after `security.inter.broker.protocol` (default PLAINTEXT). A broker
/// with one listener uses it.
fn inter_broker_listener(raw: &Properties, listeners: &[BrokerListener]) -> Result<usize> {
    let names = || {
        listeners
            .iter()
            .map(|l| l.bind.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    if let Some(name) = raw.get("inter.broker.listener.name").map(|n| n.trim()) {
        return listeners
            .iter()
            .position(|l| l.bind.name.eq_ignore_ascii_case(name))
            .ok_or_else(|| anyhow!("Invalid value {name} for configuration inter.broker.listener.name: it must be a broker listener name in listeners ({})", names()));
    }
    let by_protocol = raw.get("security.inter.broker.protocol").map(|p| p.trim());
    let wanted = by_protocol.unwrap_or("PLAINTEXT");
    if let Some(i) = listeners
        .iter()
        .position(|l| l.bind.name.eq_ignore_ascii_case(wanted))
    {
        return Ok(i);
    }
    match (listeners.len(), by_protocol) {
        (1, None) => Ok(0),
        (1, Some(p)) if listeners[0].protocol.name().eq_ignore_ascii_case(p) => Ok(0),
        _ => bail!("Invalid value {wanted} for configuration {}: no broker listener named {wanted}; set inter.broker.listener.name to one of {}", if by_protocol.is_some() { "security.inter.broker.protocol" } else { "inter.broker.listener.name" }, names()),
    }
}

/// The typed broker configuration.
#[derive(Debug, Clone)]
pub struct BrokerConfig {
    /// Every effective key (explicit or default), for DescribeConfigs.
    pub properties: Properties,
    /// Keys set explicitly (file or override).
    pub explicit: Properties,
    pub node_id: i32,
    /// The first of `log_dirs`: the metadata log's directory.
    pub log_dir: PathBuf,
    /// Every log directory (`log.dirs`, else `log.dir`).
    pub log_dirs: Vec<PathBuf>,
    /// The inter-broker listener to bind, and the address advertised for it (a dedicated
    /// controller: its controller listener).
    pub listener: Listener,
    pub advertised: Listener,
    /// Every broker listener served, the inter-broker one first.
    pub broker_listeners: Vec<BrokerListener>,
    /// How this broker reaches the others (and itself, for transaction markers) over the
    /// inter-broker listener: its TLS and SASL credentials, if that listener has them.
    pub inter_broker: ferrolog_client::Security,
    /// The controller listener's security (TLS, SASL, who may send controller requests).
    pub controller_security: Arc<crate::security::ControllerSecurity>,
    pub num_partitions: i32,
    pub default_replication_factor: i16,
    pub auto_create_topics: bool,
    pub socket_request_max_bytes: usize,
    /// `queued.max.request.bytes` (≤ 0: ferrolog's default bound, see `request_memory`).
    pub queued_max_request_bytes: i64,
    pub connections_max_idle_ms: u64,
    pub flush_scheduler_interval_ms: i64,
    pub flush_offset_checkpoint_interval_ms: u64,
    pub fetch_session_cache_slots: usize,
    /// `num.recovery.threads.per.data.dir`: threads per log directory opening logs at start-up.
    pub recovery_threads_per_dir: usize,
    pub retention_check_interval_ms: u64,
    pub cleaner_enable: bool,
    pub cleaner_backoff_ms: u64,
    pub cleaner_dedupe_buffer_bytes: usize,
    pub rack: Option<String>,
    /// `replica.selector.class` is Kafka's rack-aware selector (KIP-392).
    pub rack_aware_selector: bool,
    /// The controller quorum (`controller.quorum.voters`).
    pub controller_voters: Option<BTreeMap<u64, String>>,
    /// Where the controllers are (the voters, or `controller.quorum.bootstrap.servers`): empty
    /// on a single node, which is its own controller.
    pub controllers: Vec<String>,
    /// `process.roles`.
    pub roles: Roles,
    /// A controller's way into the quorum (`None` on brokers and single nodes).
    pub quorum_bootstrap: Option<Bootstrap>,
    pub controller_listener: Option<Listener>,
    /// Keys set dynamically (AlterConfigs on a BROKER resource), with their source.
    pub dynamic_sources: BTreeMap<String, i8>,
    pub cluster_id: Option<String>,
    /// The numeric keys the broker reads, typed.
    pub settings: Settings,
}

impl BrokerConfig {
    /// Validates `raw` and derives the typed config. Unknown keys are logged and ignored.
    pub fn from_properties(raw: &Properties) -> Result<BrokerConfig> {
        let mut explicit = Properties::new();
        for (name, value) in raw {
            if let Some(why) = crate::security::refuse_unimplemented(name, value) {
                bail!(why);
            }
            // a per-listener override (`listener.name.<l>.ssl.*`, `….<mechanism>.sasl.jaas.config`)
            // is typed as its key
            let base = name
                .strip_prefix("listener.name.")
                .and_then(|rest| rest.split_once('.'))
                .map_or(name.as_str(), |(_, key)| key);
            let base = if base.ends_with(".sasl.jaas.config") {
                "sasl.jaas.config"
            } else {
                // `<mechanism>.sasl.…`: one mechanism's setting on the listener
                base.split_once('.')
                    .filter(|(m, k)| {
                        ferrolog_client::sasl::Mechanism::parse(m).is_some()
                            && k.starts_with("sasl.")
                    })
                    .map_or(base, |(_, k)| k)
            };
            // a limit ferrolog has no counterpart for is not taken silently
            if name == "queued.max.requests" && value.trim() != "500" {
                bail!("Configuration queued.max.requests is not supported: ferrolog has no shared request queue (each connection's requests are handled in turn); request memory is bounded by queued.max.request.bytes");
            }
            match broker_key(base) {
                Some(k) => {
                    validate_value(name, k.kind, value)?;
                    explicit.insert(name.clone(), value.trim().to_string());
                }
                None if kafka_broker_key(name).is_some() => tracing::warn!(
                    "ignoring {name}: an Apache Kafka config that ferrolog does not act on"
                ),
                None => tracing::warn!("ignoring unknown configuration key {name}"),
            }
        }
        let mut properties = Properties::new();
        for k in BROKER_KEYS {
            if let Some(v) = explicit.get(k.name).map(|s| s.as_str()).or(k.default) {
                properties.insert(k.name.to_string(), v.to_string());
            }
        }
        for (name, value) in explicit.range("listener.name.".to_string()..) {
            if !name.starts_with("listener.name.") {
                break;
            }
            properties.insert(name.clone(), value.clone());
        }
        // derived values with Kafka's precedence rules
        let retention_ms = explicit
            .get("log.retention.ms")
            .cloned()
            .or_else(|| {
                explicit
                    .get("log.retention.minutes")
                    .map(|m| (m.parse::<i64>().unwrap_or(0) * 60_000).to_string())
            })
            .unwrap_or_else(|| {
                (properties["log.retention.hours"]
                    .parse::<i64>()
                    .unwrap_or(168)
                    * 3_600_000)
                    .to_string()
            });
        properties.insert("log.retention.ms".into(), retention_ms);
        if !explicit.contains_key("log.roll.ms") {
            let hours: i64 = properties["log.roll.hours"].parse().unwrap_or(168);
            properties.insert("log.roll.ms".into(), (hours * 3_600_000).to_string());
        }
        if !explicit.contains_key("log.flush.interval.ms") {
            let v = properties["log.flush.scheduler.interval.ms"].clone();
            properties.insert("log.flush.interval.ms".into(), v);
        }
        let get = |k: &str| properties.get(k).cloned().unwrap_or_default();
        let int = |k: &str| -> Result<i64> {
            get(k)
                .parse::<i64>()
                .with_context(|| format!("configuration {k}"))
        };

        let roles: Vec<_> = get("process.roles")
            .split(',')
            .map(|s| s.trim().to_string())
            .collect();
        for role in &roles {
            if role != "broker" && role != "controller" {
                bail!("Invalid value {role} for configuration process.roles: must be broker and/or controller");
            }
        }
        let is_broker = roles.iter().any(|r| r == "broker");
        let is_controller = roles.iter().any(|r| r == "controller");
        let controller_names: Vec<_> = get("controller.listener.names")
            .split(',')
            .map(|s| s.trim().to_string())
            .collect();
        let listeners = parse_listeners("listeners", &get("listeners"))?;
        let all_advertised = match properties.get("advertised.listeners") {
            Some(v) => parse_listeners("advertised.listeners", v)?,
            None => Vec::new(),
        };
        for a in &all_advertised {
            if !listeners.iter().any(|l| l.name == a.name) {
                bail!("Invalid value {} for configuration advertised.listeners: listener {} is not in listeners ({})", get("advertised.listeners"), a.name, get("listeners"));
            }
        }
        // refuses an authorizer other than Kafka's StandardAuthorizer, or bad super.users
        crate::security::acl::Authorizer::from_properties(&properties)?;
        let protocols = crate::security::check_listeners(
            raw,
            &properties,
            &[
                ("listeners", &listeners),
                ("advertised.listeners", &all_advertised),
            ],
            &controller_names,
        )?;
        let protocol_of = |name: &str| {
            protocols
                .get(&name.to_ascii_uppercase())
                .copied()
                .unwrap_or(SecurityProtocol::Plaintext)
        };
        // the controllers serve their first listener; every node reaches them there
        let controller_security = match controller_names.first() {
            None => crate::security::ControllerSecurity::default(),
            Some(name) => {
                let served = listeners
                    .iter()
                    .filter(|l| controller_names.contains(&l.name));
                for l in served.clone() {
                    if protocol_of(&l.name) != protocol_of(name) {
                        bail!("Invalid value {} for configuration listener.security.protocol.map: controller listeners {name} and {} use different security protocols; ferrolog serves one controller listener", get("listener.security.protocol.map"), l.name);
                    }
                }
                crate::security::ControllerSecurity::from_properties(
                    &properties,
                    name,
                    protocol_of(name),
                    served.clone().next().is_some(),
                )?
            }
        };
        let mut broker_listeners = Vec::new();
        if is_broker {
            for l in listeners
                .iter()
                .filter(|l| !controller_names.contains(&l.name))
            {
                let advertised = all_advertised
                    .iter()
                    .find(|a| a.name == l.name)
                    .unwrap_or(l)
                    .clone();
                let advertised = Listener {
                    host: if advertised.host.is_empty() || advertised.host == "0.0.0.0" {
                        "localhost".to_string()
                    } else {
                        advertised.host
                    },
                    ..advertised
                };
                let protocol = protocol_of(&l.name);
                let tls = match protocol.uses_tls() {
                    true => Some(Arc::new(crate::security::tls::listener_tls(
                        &properties,
                        &l.name,
                    )?)),
                    false => None,
                };
                let sasl = match protocol.uses_sasl() {
                    true => Some(Arc::new(crate::security::sasl::sasl_config(
                        &properties,
                        &l.name,
                    )?)),
                    false => None,
                };
                broker_listeners.push(BrokerListener {
                    bind: l.clone(),
                    advertised,
                    protocol,
                    tls,
                    sasl,
                });
            }
            if broker_listeners.is_empty() {
                bail!(
                    "Invalid value {} for configuration listeners: no broker listener",
                    get("listeners")
                );
            }
            // the inter-broker listener goes first
            let inter = inter_broker_listener(raw, &broker_listeners)?;
            let first = broker_listeners.remove(inter);
            broker_listeners.insert(0, first);
        }
        let (listener, advertised) = match broker_listeners.first() {
            Some(b) => (b.bind.clone(), b.advertised.clone()),
            // a dedicated controller: its first listener
            None => {
                let l = listeners.first().cloned().ok_or_else(|| {
                    anyhow!(
                        "Invalid value {} for configuration listeners: no listener",
                        get("listeners")
                    )
                })?;
                (l.clone(), l)
            }
        };
        let mut inter_broker = ferrolog_client::Security::default();
        if let Some(b) = broker_listeners.first() {
            if b.protocol.uses_tls() {
                inter_broker.tls =
                    Some(crate::security::tls::client_tls(&properties, &b.bind.name)?);
            }
            if b.protocol.uses_sasl() {
                inter_broker.sasl = Some(crate::security::sasl::inter_broker_credentials(
                    &properties,
                    &b.bind.name,
                )?);
            }
        }
        let log_dirs: Vec<PathBuf> = match properties.get("log.dirs") {
            Some(dirs) => dirs
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(PathBuf::from)
                .collect(),
            None => vec![PathBuf::from(get("log.dir"))],
        };
        if log_dirs.is_empty() {
            bail!("Invalid value for configuration log.dirs: no directory");
        }
        for (i, d) in log_dirs.iter().enumerate() {
            if log_dirs[..i].contains(d) {
                bail!(
                    "Invalid value {} for configuration log.dirs: {} is listed twice",
                    get("log.dirs"),
                    d.display()
                );
            }
        }
        let log_dir = log_dirs[0].clone();
        // ferrolog keeps the metadata log in the first log directory (Kafka's default)
        if let Some(m) = raw.get("metadata.log.dir").map(|v| v.trim()) {
            if !m.is_empty() && log_dir != std::path::Path::new(m) {
                bail!("Invalid value {m} for configuration metadata.log.dir: ferrolog keeps the metadata log in the first of log.dirs ({}); a separate metadata directory is not implemented", log_dir.display());
            }
        }
        let node_id = int("node.id")?;
        if node_id < 0 {
            bail!("Invalid value {node_id} for configuration node.id: must be non-negative");
        }
        let controller_voters = match properties.get("controller.quorum.voters") {
            Some(v) if !v.trim().is_empty() => Some(parse_voters(v)?),
            _ => None,
        };
        let bootstrap: Vec<String> = get("controller.quorum.bootstrap.servers")
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect();
        for server in &bootstrap {
            if !server.contains(':') {
                bail!("Invalid value {server} for configuration controller.quorum.bootstrap.servers: expected host:port");
            }
        }
        let controllers: Vec<String> = match &controller_voters {
            Some(voters) => voters.values().cloned().collect(),
            None => bootstrap,
        };
        let quorum_bootstrap = match &controller_voters {
            _ if !is_controller || controllers.is_empty() => None,
            Some(voters) if voters.contains_key(&(node_id as u64)) => {
                Some(Bootstrap::Voters(voters.clone()))
            }
            Some(_) => bail!("Invalid value {} for configuration controller.quorum.voters: node {node_id} is a controller but not a voter", get("controller.quorum.voters")),
            None => Some(Bootstrap::Join(controllers.clone())),
        };
        if !is_broker && controllers.is_empty() {
            bail!("Invalid value {} for configuration process.roles: a dedicated controller needs controller.quorum.voters or controller.quorum.bootstrap.servers", get("process.roles"));
        }
        if !is_controller && controllers.is_empty() {
            bail!("Invalid value {} for configuration process.roles: a dedicated broker needs controller.quorum.voters or controller.quorum.bootstrap.servers", get("process.roles"));
        }
        let controller_listener = listeners
            .iter()
            .find(|l| controller_names.contains(&l.name))
            .cloned();
        if quorum_bootstrap.is_some() && controller_listener.is_none() {
            bail!("Invalid value {} for configuration listeners: a controller needs a listener named in controller.listener.names", get("listeners"));
        }
        let replication = int("default.replication.factor")?;
        if replication < 1 || replication > i64::from(i16::MAX) {
            bail!("Invalid value {replication} for configuration default.replication.factor");
        }
        if replication != 1 && controllers.is_empty() {
            bail!("Invalid value {replication} for configuration default.replication.factor: a single node supports 1");
        }
        let settings = Settings::parse(&properties)?;
        Ok(BrokerConfig {
            settings,
            node_id: node_id as i32,
            log_dir,
            log_dirs,
            listener,
            advertised,
            broker_listeners,
            inter_broker,
            controller_security: Arc::new(controller_security),
            num_partitions: int("num.partitions")? as i32,
            default_replication_factor: replication as i16,
            auto_create_topics: get("auto.create.topics.enable").eq_ignore_ascii_case("true"),
            socket_request_max_bytes: int("socket.request.max.bytes")? as usize,
            queued_max_request_bytes: {
                let queued = int(crate::request_memory::QUEUED_MAX_REQUEST_BYTES)?;
                if queued > 0 && queued < int("socket.request.max.bytes")? {
                    bail!("queued.max.request.bytes must be larger or equal to socket.request.max.bytes");
                }
                queued
            },
            connections_max_idle_ms: int("connections.max.idle.ms")?.max(0) as u64,
            flush_scheduler_interval_ms: int("log.flush.scheduler.interval.ms")?,
            flush_offset_checkpoint_interval_ms: int("log.flush.offset.checkpoint.interval.ms")?
                .max(1) as u64,
            fetch_session_cache_slots: int("max.incremental.fetch.session.cache.slots")?.max(0)
                as usize,
            recovery_threads_per_dir: match int("num.recovery.threads.per.data.dir")? {
                n if n >= 1 => n.min(1024) as usize,
                n => bail!(
                    "Invalid value {n} for configuration num.recovery.threads.per.data.dir: Value must be at least 1"
                ),
            },
            retention_check_interval_ms: int("log.retention.check.interval.ms")?.max(1) as u64,
            cleaner_enable: get("log.cleaner.enable").eq_ignore_ascii_case("true"),
            cleaner_backoff_ms: int("log.cleaner.backoff.ms")?.max(1) as u64,
            cleaner_dedupe_buffer_bytes: int("log.cleaner.dedupe.buffer.size")?.clamp(1024, 1 << 34)
                as usize,
            rack: properties.get("broker.rack").cloned(),
            rack_aware_selector: match properties.get("replica.selector.class").map(|s| s.trim()) {
                None | Some("") => false,
                Some(RACK_AWARE_SELECTOR) => true,
                Some(other) => bail!("Invalid value {other} for configuration replica.selector.class: ferrolog has {RACK_AWARE_SELECTOR}"),
            },
            controller_voters,
            controllers,
            quorum_bootstrap,
            roles: Roles {
                broker: is_broker,
                controller: is_controller,
            },
            controller_listener,
            dynamic_sources: BTreeMap::new(),
            // every node of a cluster must agree: without cluster.id, it comes from the quorum
            cluster_id: properties.get("cluster.id").cloned().or_else(|| {
                properties
                    .get("controller.quorum.voters")
                    .filter(|v| !v.trim().is_empty())
                    .map(|v| cluster_id_from(v))
            }),
            properties,
            explicit,
        })
    }

    /// A numeric property by name (validated at start), or `fallback`.
    /// The controller quorum's Raft timing from Kafka's keys: a follower that hears nothing
    /// from the leader for `controller.quorum.fetch.timeout.ms` stands for election after a
    /// random part of `controller.quorum.election.timeout.ms` more, as in Kafka.
    ///
    /// openraft waits a leader lease (its `election_timeout_max`) plus a random election
    /// timeout (`election_timeout_min..=election_timeout_max`) after the last word from a
    /// known leader, and voters refuse votes while their own lease runs. So the lease is half
    /// of fetch timeout + spread and the random part starts at half of their difference: the
    /// first election comes `fetch_timeout..fetch_timeout + spread` after the leader went
    /// quiet, and every voter's lease has run out by then (one round, not two).
    /// The connection limits of this config (static settings with the dynamic broker configs
    /// on top, per listener `listener.name.<l>.max.connections` / `….max.connection.creation.rate`).
    pub fn connection_limits(&self) -> Result<crate::connections::Limits> {
        use crate::connections::{count, parse_overrides, CREATION_RATE, MAX_CONNECTIONS};
        use crate::connections::{MAX_PER_IP, PER_IP_OVERRIDES};
        let p = &self.properties;
        let mut listener_max = std::collections::HashMap::new();
        let mut listener_rate = std::collections::HashMap::new();
        for l in &self.broker_listeners {
            let name = &l.bind.name;
            let prefixed =
                |key: &str| p.get(&format!("listener.name.{}.{key}", name.to_lowercase()));
            if let Some(v) = prefixed(MAX_CONNECTIONS) {
                listener_max.insert(name.clone(), count(Some(v), MAX_CONNECTIONS)?);
            }
            if let Some(v) = prefixed(CREATION_RATE) {
                listener_rate.insert(name.clone(), count(Some(v), CREATION_RATE)?);
            }
        }
        Ok(crate::connections::Limits {
            max_connections: count(p.get(MAX_CONNECTIONS), MAX_CONNECTIONS)?,
            per_ip: count(p.get(MAX_PER_IP), MAX_PER_IP)?,
            per_ip_overrides: parse_overrides(p.get(PER_IP_OVERRIDES).map_or("", |s| s.as_str()))?,
            creation_rate: count(p.get(CREATION_RATE), CREATION_RATE)?,
            listener_max,
            listener_rate,
            // the inter-broker listener is the first
            protected: (self.broker_listeners.len() > 1)
                .then(|| self.broker_listeners[0].bind.name.clone()),
            sampling: self.quota_sampling(),
        })
    }

    pub fn quota_sampling(&self) -> crate::quota::Sampling {
        let int = |name: &str, default: u64| {
            self.properties
                .get(name)
                .and_then(|v| v.trim().parse::<u64>().ok())
                .unwrap_or(default)
                .max(1)
        };
        crate::quota::Sampling {
            samples: int("quota.window.num", 11) as usize,
            window: std::time::Duration::from_secs(int("quota.window.size.seconds", 1)),
        }
    }

    pub fn raft_timing(&self) -> RaftTiming {
        let fetch_timeout = self
            .settings
            .controller_quorum_fetch_timeout_ms
            .clamp(100, 600_000) as u64;
        let spread = self
            .settings
            .controller_quorum_election_timeout_ms
            .clamp(10, 600_000) as u64;
        let lease = (fetch_timeout + spread) / 2;
        let election_min = (fetch_timeout.saturating_sub(spread) / 2)
            .max(fetch_timeout / 4)
            .min(lease - 1);
        RaftTiming {
            heartbeat_ms: (election_min / 2).max(10),
            election_min_ms: election_min,
            election_max_ms: lease,
        }
    }

    /// Where a broker key's effective value comes from.
    pub fn source_of(&self, broker_key_name: &str) -> i8 {
        match self.dynamic_sources.get(broker_key_name) {
            Some(&s) => s,
            None if self.explicit.contains_key(broker_key_name)
                || derived_from(broker_key_name)
                    .iter()
                    .any(|k| self.explicit.contains_key(*k)) =>
            {
                source::STATIC_BROKER_CONFIG
            }
            None => source::DEFAULT_CONFIG,
        }
    }

    /// This config with dynamic layers on top: cluster-wide defaults, then this broker's own.
    pub fn with_dynamic(
        &self,
        cluster: Option<&Properties>,
        node: Option<&Properties>,
    ) -> BrokerConfig {
        let mut out = self.clone();
        for (layer, src) in [
            (cluster, source::DYNAMIC_DEFAULT_BROKER_CONFIG),
            (node, source::DYNAMIC_BROKER_CONFIG),
        ] {
            for (k, v) in layer.into_iter().flatten() {
                out.properties.insert(k.clone(), v.clone());
                out.dynamic_sources.insert(k.clone(), src);
            }
        }
        // every dynamic value was validated against its key's type when it was set
        match Settings::parse(&out.properties) {
            Ok(settings) => out.settings = settings,
            Err(e) => tracing::error!("dynamic broker configs not applied: {e:#}"),
        }
        out
    }

    /// The broker-level default of a topic config (by its topic name).
    pub fn topic_default(&self, topic_key_name: &str) -> Option<(String, i8)> {
        let (_, broker_name, _) = topic_key(topic_key_name)?;
        let value = self.properties.get(*broker_name)?.clone();
        Some((value, self.source_of(broker_name)))
    }

    /// Effective value of a topic config given the topic's overrides.
    pub fn topic_value(&self, overrides: &Properties, name: &str) -> Option<(String, i8)> {
        match overrides.get(name) {
            Some(v) => Some((v.clone(), source::DYNAMIC_TOPIC_CONFIG)),
            None => self.topic_default(name),
        }
    }

    /// The storage config of a topic.
    pub fn log_config(&self, overrides: &Properties) -> LogConfig {
        let num = |name: &str| -> i64 {
            self.topic_value(overrides, name)
                .and_then(|(v, _)| v.parse::<i64>().ok())
                .unwrap_or(i64::MAX)
        };
        LogConfig {
            segment_bytes: num("segment.bytes").max(14) as u64,
            segment_ms: num("segment.ms"),
            segment_index_bytes: num("segment.index.bytes").clamp(8, i64::from(i32::MAX)) as usize,
            index_interval_bytes: num("index.interval.bytes").clamp(0, i64::from(i32::MAX))
                as usize,
            max_message_bytes: num("max.message.bytes").clamp(0, i64::from(i32::MAX)) as usize,
            flush_messages: num("flush.messages"),
            flush_ms: num("flush.ms"),
            log_append_time: self
                .topic_value(overrides, "message.timestamp.type")
                .is_some_and(|(v, _)| v == "LogAppendTime"),
            timestamp_before_max_ms: num("message.timestamp.before.max.ms"),
            timestamp_after_max_ms: num("message.timestamp.after.max.ms"),
            retention_ms: num("retention.ms"),
            retention_bytes: num("retention.bytes"),
            delete_policy: self
                .topic_value(overrides, "cleanup.policy")
                .is_none_or(|(v, _)| v.split(',').any(|p| p.trim() == "delete")),
            file_delete_delay_ms: num("file.delete.delay.ms"),
            compact_policy: self
                .topic_value(overrides, "cleanup.policy")
                .is_some_and(|(v, _)| v.split(',').any(|p| p.trim() == "compact")),
            compression: self
                .topic_value(overrides, "compression.type")
                .and_then(|(v, _)| ferrolog_records::compression_from_name(&v)),
            min_cleanable_ratio: self
                .topic_value(overrides, "min.cleanable.dirty.ratio")
                .and_then(|(v, _)| v.parse().ok())
                .unwrap_or(0.5),
            min_compaction_lag_ms: num("min.compaction.lag.ms"),
            max_compaction_lag_ms: num("max.compaction.lag.ms"),
            delete_retention_ms: num("delete.retention.ms"),
            compression_levels: ferrolog_records::Levels {
                gzip: u32::try_from(num("compression.gzip.level"))
                    .ok()
                    .filter(|l| (1..=9).contains(l)),
                lz4: u32::try_from(num("compression.lz4.level"))
                    .ok()
                    .filter(|l| (1..=17).contains(l)),
                zstd: i32::try_from(num("compression.zstd.level"))
                    .ok()
                    .filter(|l| (-131072..=22).contains(l)),
            },
        }
    }

    pub fn min_insync_replicas(&self, overrides: &Properties) -> i64 {
        self.topic_value(overrides, "min.insync.replicas")
            .and_then(|(v, _)| v.parse().ok())
            .unwrap_or(1)
    }
}

/// Parses a Java-style properties file (the subset Kafka configs use: `key=value` or
/// `key: value`, `#`/`!` comments, trailing-backslash continuation lines).
pub fn parse_properties_file(text: &str) -> Properties {
    let mut out = Properties::new();
    let mut pending = String::new();
    for line in text.lines() {
        let line = line.trim_start();
        if pending.is_empty() && (line.is_empty() || line.starts_with('#') || line.starts_with('!'))
        {
            continue;
        }
        if let Some(stripped) = line.strip_suffix('\\') {
            pending.push_str(stripped);
            continue;
        }
        pending.push_str(line);
        let entry = std::mem::take(&mut pending);
        let split = entry.find(['=', ':']).unwrap_or(entry.len());
        let (k, v) = entry.split_at(split);
        let v = v.get(1..).unwrap_or("");
        out.insert(k.trim().to_string(), v.trim().to_string());
    }
    out
}

/// A cluster id (22 characters of URL-safe base64, as Kafka's) derived from the quorum voters,
/// so nodes configured alike agree on it without a formatting step.
/// Kafka's rack-aware replica selector, the one `replica.selector.class` may name.
pub const RACK_AWARE_SELECTOR: &str = "org.apache.kafka.common.replica.RackAwareReplicaSelector";

/// What a node does (`process.roles`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Roles {
    pub broker: bool,
    pub controller: bool,
}

impl BrokerConfig {
    /// The address this broker advertises on its broker listener `name`.
    pub fn advertised_on(&self, name: &str) -> Option<&Listener> {
        self.broker_listeners
            .iter()
            .find(|l| l.bind.name.eq_ignore_ascii_case(name))
            .map(|l| &l.advertised)
    }
}

impl BrokerConfig {
    /// A node of a cluster (controllers configured), not a single node.
    pub fn is_cluster(&self) -> bool {
        !self.controllers.is_empty()
    }

    /// A controller of a cluster (a member of the Raft quorum, or joining it).
    pub fn is_controller(&self) -> bool {
        self.quorum_bootstrap.is_some()
    }

    /// Where other controllers reach this one (its controller listener).
    pub fn controller_address(&self) -> Option<String> {
        self.controller_listener.as_ref().map(|l| {
            let host = if l.host.is_empty() || l.host == "0.0.0.0" {
                "localhost"
            } else {
                &l.host
            };
            format!("{host}:{}", l.port)
        })
    }

    /// `--standalone` / `--initial-controllers` (kafka-storage format's flags; ferrolog has no
    /// separate format step): the voters a new dynamic quorum starts with.
    pub fn set_initial_controllers(&mut self, voters: BTreeMap<u64, String>) -> Result<()> {
        match &self.quorum_bootstrap {
            Some(Bootstrap::Join(_)) => {}
            _ => bail!("--standalone and --initial-controllers are for a controller configured with controller.quorum.bootstrap.servers (not controller.quorum.voters)"),
        }
        if !voters.contains_key(&(self.node_id as u64)) {
            bail!(
                "--initial-controllers must include this node ({})",
                self.node_id
            );
        }
        if self.cluster_id.is_none() {
            let list: Vec<String> = voters.iter().map(|(id, a)| format!("{id}@{a}")).collect();
            self.cluster_id = Some(cluster_id_from(&list.join(",")));
        }
        self.quorum_bootstrap = Some(Bootstrap::Voters(voters));
        Ok(())
    }
}

fn cluster_id_from(voters: &str) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut bytes = [0u8; 16];
    let a = crc32c::crc32c(voters.as_bytes());
    let b = crc32c::crc32c_append(a, b"ferrolog-cluster");
    let c = crc32c::crc32c_append(b, voters.as_bytes());
    let d = crc32c::crc32c_append(c, b"id");
    for (i, v) in [a, b, c, d].iter().enumerate() {
        bytes[i * 4..i * 4 + 4].copy_from_slice(&v.to_be_bytes());
    }
    let mut bits = u128::from_be_bytes(bytes);
    (0..22)
        .map(|_| {
            let c = ALPHABET[(bits & 63) as usize] as char;
            bits >>= 6;
            c
        })
        .collect()
}

/// The Raft timing of the controller quorum (see `BrokerConfig::raft_timing`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RaftTiming {
    /// How often the leader sends AppendEntries when idle; also each AppendEntries' time-out.
    pub heartbeat_ms: u64,
    pub election_min_ms: u64,
    pub election_max_ms: u64,
}

/// How a controller's Raft membership begins when its directory is new.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Bootstrap {
    /// These voters (`controller.quorum.voters`, or for a dynamic quorum `--standalone` /
    /// `--initial-controllers`).
    Voters(BTreeMap<u64, String>),
    /// Join the quorum the controllers at these addresses run
    /// (`controller.quorum.bootstrap.servers`): as an observer (a Raft learner) first, a voter
    /// once AddRaftVoter adds it (Kafka's `kafka-metadata-quorum add-controller`).
    Join(Vec<String>),
}

/// Parses `controller.quorum.voters` (`id@host:port,...`).
pub fn parse_voters(voters: &str) -> Result<BTreeMap<u64, String>> {
    let mut map = BTreeMap::new();
    for voter in voters.split(',').map(str::trim).filter(|v| !v.is_empty()) {
        let (id, addr) = voter
            .split_once('@')
            .ok_or_else(|| anyhow!("Invalid value {voters} for configuration controller.quorum.voters: expected id@host:port"))?;
        let id: u64 = id
            .parse()
            .with_context(|| format!("controller.quorum.voters: node id {id}"))?;
        if !addr.contains(':') {
            bail!("Invalid value {voters} for configuration controller.quorum.voters: {addr} has no port");
        }
        map.insert(id, addr.to_string());
    }
    if map.is_empty() {
        bail!("controller.quorum.voters is empty");
    }
    Ok(map)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(pairs: &[(&str, &str)]) -> Result<BrokerConfig> {
        let p: Properties = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        BrokerConfig::from_properties(&p)
    }

    #[test]
    fn roles_need_their_controllers() {
        const VOTERS: &str = "1001@localhost:9093,1002@localhost:9094";
        let c = config(&[
            ("node.id", "1001"),
            ("process.roles", "controller"),
            ("listeners", "CONTROLLER://localhost:9093"),
            ("controller.quorum.voters", VOTERS),
        ])
        .unwrap();
        assert!(!c.roles.broker && c.is_controller() && c.is_cluster());
        let c = config(&[
            ("node.id", "1"),
            ("process.roles", "broker"),
            ("controller.quorum.bootstrap.servers", "localhost:9093"),
        ])
        .unwrap();
        assert!(c.roles.broker && !c.is_controller() && c.is_cluster());
        assert_eq!(c.controllers, vec!["localhost:9093".to_string()]);
        let c = config(&[
            ("node.id", "1"),
            ("process.roles", "broker"),
            ("controller.quorum.voters", VOTERS),
        ])
        .unwrap();
        assert!(!c.is_controller() && c.controllers.len() == 2);
        // a controller of a dynamic quorum joins through the bootstrap servers, or starts one
        let mut c = config(&[
            ("node.id", "1001"),
            ("process.roles", "controller"),
            ("listeners", "CONTROLLER://localhost:9093"),
            (
                "controller.quorum.bootstrap.servers",
                "localhost:9093,localhost:9094",
            ),
        ])
        .unwrap();
        assert!(matches!(
            &c.quorum_bootstrap,
            Some(Bootstrap::Join(c)) if c.len() == 2
        ));
        let standalone = [(1001u64, "localhost:9093".to_string())].into();
        c.set_initial_controllers(standalone).unwrap();
        assert!(matches!(
            &c.quorum_bootstrap,
            Some(Bootstrap::Voters(v)) if v.len() == 1
        ));
        assert!(c.cluster_id.is_some());
        for (pairs, needle) in [
            (
                vec![("process.roles", "controller")],
                "controller.quorum.voters",
            ),
            (vec![("process.roles", "broker")], "controller.quorum"),
            (
                vec![
                    ("process.roles", "broker,controller"),
                    ("listeners", "PLAINTEXT://localhost:9092"),
                    ("controller.quorum.bootstrap.servers", "localhost:9093"),
                ],
                "controller.listener.names",
            ),
            (
                vec![
                    ("node.id", "7"),
                    ("process.roles", "controller"),
                    ("listeners", "CONTROLLER://localhost:9093"),
                    ("controller.quorum.voters", VOTERS),
                ],
                "not a voter",
            ),
            (
                vec![
                    ("process.roles", "broker"),
                    ("controller.quorum.bootstrap.servers", "nohost"),
                ],
                "expected host:port",
            ),
        ] {
            let e = config(&pairs).unwrap_err().to_string();
            assert!(e.contains(needle), "{pairs:?}: {e}");
        }
    }

    #[test]
    fn listeners_and_the_inter_broker_listener_as_kafka_chooses_them() {
        // several broker listeners are all served; brokers talk over PLAINTEXT by default
        let c = config(&[
            (
                "listeners",
                "INTERNAL://:9094,PLAINTEXT://:9092,CONTROLLER://:9093",
            ),
            (
                "listener.security.protocol.map",
                "PLAINTEXT:PLAINTEXT,INTERNAL:PLAINTEXT,CONTROLLER:PLAINTEXT",
            ),
            (
                "advertised.listeners",
                "INTERNAL://broker1.internal:9094,PLAINTEXT://broker1:9092",
            ),
        ])
        .unwrap();
        let names: Vec<_> = c
            .broker_listeners
            .iter()
            .map(|l| l.bind.name.as_str())
            .collect();
        assert_eq!(names, ["PLAINTEXT", "INTERNAL"]);
        assert_eq!(c.advertised.host, "broker1");
        assert_eq!(
            c.advertised_on("INTERNAL").unwrap().host,
            "broker1.internal"
        );
        let c = config(&[
            (
                "listeners",
                "PLAINTEXT://:9092,INTERNAL://:9094,CONTROLLER://:9093",
            ),
            (
                "listener.security.protocol.map",
                "PLAINTEXT:PLAINTEXT,INTERNAL:PLAINTEXT,CONTROLLER:PLAINTEXT",
            ),
            ("inter.broker.listener.name", "INTERNAL"),
        ])
        .unwrap();
        assert_eq!(c.broker_listeners[0].bind.name, "INTERNAL");
        assert_eq!(c.listener.port, 9094);
        for (pairs, needle) in [
            (
                vec![
                    ("listeners", "PLAINTEXT://:9092,CONTROLLER://:9093"),
                    ("inter.broker.listener.name", "CONTROLLER"),
                ],
                "must be a broker listener name",
            ),
            (
                vec![
                    ("listeners", "A://:9092,B://:9094,CONTROLLER://:9093"),
                    (
                        "listener.security.protocol.map",
                        "A:PLAINTEXT,B:PLAINTEXT,CONTROLLER:PLAINTEXT",
                    ),
                ],
                "set inter.broker.listener.name to one of A, B",
            ),
            (
                vec![("advertised.listeners", "OTHER://x:1")],
                "listener OTHER is not in listeners",
            ),
            (
                vec![(
                    "listener.security.protocol.map",
                    "PLAINTEXT:PLAINTEXT,CONTROLLER:SSL",
                )],
                // a secured controller listener needs its key store like any TLS listener
                "keystore",
            ),
            (
                vec![("security.inter.broker.protocol", "SSL")],
                "security.inter.broker.protocol",
            ),
        ] {
            let e = config(&pairs).unwrap_err().to_string();
            assert!(e.contains(needle), "{pairs:?}: {e}");
        }
        config(&[("inter.broker.listener.name", "PLAINTEXT")]).unwrap();
    }

    #[test]
    fn defaults_are_kafkas() {
        let c = BrokerConfig::from_properties(&Properties::new()).unwrap();
        assert_eq!(c.node_id, 1);
        assert_eq!(c.listener.port, 9092);
        assert_eq!(c.advertised.host, "localhost");
        assert_eq!(c.socket_request_max_bytes, 104_857_600);
        assert_eq!(c.properties["log.retention.ms"], "604800000");
        let lc = c.log_config(&Properties::new());
        assert_eq!(lc.segment_bytes, 1 << 30);
        assert_eq!(lc.max_message_bytes, 1_048_588);
        assert_eq!(lc.segment_ms, 604_800_000);
    }

    #[test]
    fn known_keys_have_kafkas_types_and_defaults() {
        // deliberate differences: zero-config defaults for one node, and keys Kafka 4.1 lacks
        let differs = [
            "node.id",
            "process.roles",
            "listeners",
            "controller.listener.names",
            "listener.security.protocol.map",
            "log.dir",
            "controller.quorum.voters",
            "controller.quorum.bootstrap.servers",
        ];
        let ferrolog_only = [
            "cluster.id",
            "leader.imbalance.per.broker.percentage",
            // Kafka's broker quota configs, outside its broker config definition
            crate::throttle::LEADER_RATE,
            crate::throttle::FOLLOWER_RATE,
            "replica.alter.log.dirs.io.max.bytes.per.second",
            // the StandardAuthorizer's own configs, outside Kafka's broker config definition
            "super.users",
            "allow.everyone.if.no.acl.found",
        ];
        for key in BROKER_KEYS {
            let Some(kafka) = kafka_broker_key(key.name) else {
                assert!(
                    ferrolog_only.contains(&key.name),
                    "{} is not Kafka's",
                    key.name
                );
                continue;
            };
            assert_eq!(key.kind, kafka.kind, "type of {}", key.name);
            if !differs.contains(&key.name) {
                assert_eq!(key.default, kafka.default, "default of {}", key.name);
            }
        }
    }

    #[test]
    fn every_dynamic_kafka_key_is_applied_or_refused_with_a_reason() {
        let catalog = KAFKA_BROKER_CONFIGS
            .lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| l.split('\t').next());
        let mut dynamic = 0;
        for name in catalog {
            let key = kafka_broker_key(name).expect("parsed");
            if key.mode == UpdateMode::ReadOnly {
                assert!(check_broker_config_name(name, true)
                    .is_err_and(|e| e.starts_with("Cannot update these configs dynamically")));
                continue;
            }
            dynamic += 1;
            assert!(
                is_dynamic_broker_key(name) || not_acted_on(name).is_some(),
                "{name}: Kafka changes it at run time; ferrolog must apply it or say why not"
            );
        }
        assert_eq!(dynamic, 90);
    }

    #[test]
    fn dynamic_broker_configs_are_answered_as_kafka_per_update_mode() {
        let refused = |name: &str, per_broker: bool| {
            check_broker_config_name(name, per_broker).expect_err(name)
        };
        assert_eq!(
            refused("broker.id", true),
            "Cannot update these configs dynamically: Set(broker.id)"
        );
        assert!(refused("ssl.keystore.location", true).contains("only per-listener"));
        assert!(refused("sasl.kerberos.min.time.before.relogin", false)
            .starts_with("Cannot update these configs at default cluster level"));
        assert!(refused("sasl.kerberos.min.time.before.relogin", true)
            .starts_with("ferrolog does not act on"));
        assert!(refused("num.io.threads", false).contains("worker threads"));
        assert!(refused("no.such.config", true).starts_with("Unknown broker config name"));
        assert!(
            refused("listener.name.plaintext.ssl.keystore.location", false)
                .starts_with("Cannot update these configs at default cluster level")
        );
        for applied in [
            "log.retention.ms",
            "message.max.bytes",
            "log.cleaner.backoff.ms",
        ] {
            assert_eq!(check_broker_config_name(applied, false), Ok(()));
            assert_eq!(check_broker_config_name(applied, true), Ok(()));
        }
        assert_eq!(
            validate_broker_config("log.retention.ms", Some("abc"), true).unwrap_err(),
            "Invalid value abc for configuration log.retention.ms: Not a number of type LONG"
        );
    }

    #[test]
    fn bad_values_name_the_key() {
        let mut p = Properties::new();
        p.insert("num.partitions".into(), "many".into());
        let e = BrokerConfig::from_properties(&p).unwrap_err().to_string();
        assert!(e.contains("num.partitions"), "{e}");
        let mut p = Properties::new();
        p.insert("listeners".into(), "PLAINTEXT://localhost".into());
        let e = BrokerConfig::from_properties(&p).unwrap_err().to_string();
        assert!(e.contains("listeners"), "{e}");
        let mut p = Properties::new();
        p.insert("no.such.key".into(), "1".into());
        assert!(BrokerConfig::from_properties(&p).is_ok());
        // a separate metadata directory is refused, naming the key
        let mut p = Properties::new();
        p.insert("log.dirs".into(), "/a,/b".into());
        p.insert("metadata.log.dir".into(), "/m".into());
        let e = BrokerConfig::from_properties(&p).unwrap_err().to_string();
        assert!(e.contains("metadata.log.dir"), "{e}");
        p.insert("metadata.log.dir".into(), "/a".into());
        assert!(BrokerConfig::from_properties(&p).is_ok());
    }

    #[test]
    fn topic_overrides_win() {
        let mut p = Properties::new();
        p.insert("log.segment.bytes".into(), "1000".into());
        let c = BrokerConfig::from_properties(&p).unwrap();
        let mut o = Properties::new();
        o.insert("flush.messages".into(), "1".into());
        let lc = c.log_config(&o);
        assert_eq!(lc.segment_bytes, 1000);
        assert_eq!(lc.flush_messages, 1);
        assert_eq!(
            c.topic_value(&o, "segment.bytes").unwrap().1,
            source::STATIC_BROKER_CONFIG
        );
        assert_eq!(
            c.topic_value(&o, "flush.messages").unwrap().1,
            source::DYNAMIC_TOPIC_CONFIG
        );
        assert_eq!(
            c.topic_value(&o, "retention.ms").unwrap().1,
            source::DEFAULT_CONFIG
        );
    }

    #[test]
    fn properties_file() {
        let p = parse_properties_file(
            "# c\nnode.id=3\nlisteners = PLAINTEXT://:1\\\n,CONTROLLER://:2\nlog.dirs: /x\n",
        );
        assert_eq!(p["node.id"], "3");
        assert_eq!(p["listeners"], "PLAINTEXT://:1,CONTROLLER://:2");
        assert_eq!(p["log.dirs"], "/x");
    }
}
