//! One file per API: decode is done by the router, each handler turns a request into a response.

pub mod acls;
pub mod add_offsets_to_txn;
pub mod add_partitions_to_txn;
pub mod alter_configs;
pub mod alter_replica_log_dirs;
pub mod api_versions;
pub mod authorize;
pub mod client_quotas;
pub mod consumer_group_describe;
pub mod consumer_group_heartbeat;
pub mod create_partitions;
pub mod create_topics;
pub mod delete_groups;
pub mod delete_records;
pub mod delete_topics;
pub mod describe_cluster;
pub mod describe_configs;
pub mod describe_groups;
pub mod describe_log_dirs;
pub mod describe_producers;
pub mod describe_quorum;
pub mod describe_topic_partitions;
pub mod describe_transactions;
pub mod elect_leaders;
pub mod end_txn;
pub mod fetch;
pub mod find_coordinator;
pub mod heartbeat;
pub mod init_producer_id;
pub mod join_group;
pub mod leave_group;
pub mod list_config_resources;
pub mod list_groups;
pub mod list_offsets;
pub mod list_transactions;
pub mod metadata;
pub mod offset_commit;
pub mod offset_delete;
pub mod offset_fetch;
pub mod offset_for_leader_epoch;
pub mod produce;
pub mod produce_legacy;
pub mod raft_voters;
pub mod reassignments;
pub mod scram_credentials;
pub mod sync_group;
pub mod txn_offset_commit;
pub mod update_features;
pub mod write_txn_markers;

use std::sync::Arc;

use anyhow::{anyhow, Result};
use bytes::Bytes;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Decodable, Message, StrBytes, VersionRange};

use crate::Broker;

pub enum Response {
    ApiVersions(ApiVersionsResponse),
    UpdateFeatures(UpdateFeaturesResponse),
    ListConfigResources(ListConfigResourcesResponse),
    DescribeTopicPartitions(DescribeTopicPartitionsResponse),
    Metadata(MetadataResponse),
    CreateTopics(CreateTopicsResponse),
    DeleteTopics(DeleteTopicsResponse),
    CreatePartitions(CreatePartitionsResponse),
    Produce(ProduceResponse),
    /// The response and, per partition in response order, records to send from a file.
    Fetch(FetchResponse, Vec<Option<ferrolog_storage::FileSlice>>),
    ListOffsets(ListOffsetsResponse),
    DescribeConfigs(DescribeConfigsResponse),
    DescribeCluster(DescribeClusterResponse),
    InitProducerId(InitProducerIdResponse),
    DeleteRecords(DeleteRecordsResponse),
    AlterConfigs(AlterConfigsResponse),
    IncrementalAlterConfigs(IncrementalAlterConfigsResponse),
    DescribeLogDirs(DescribeLogDirsResponse),
    AlterReplicaLogDirs(AlterReplicaLogDirsResponse),
    FindCoordinator(FindCoordinatorResponse),
    JoinGroup(JoinGroupResponse),
    SyncGroup(SyncGroupResponse),
    Heartbeat(HeartbeatResponse),
    LeaveGroup(LeaveGroupResponse),
    OffsetCommit(OffsetCommitResponse),
    OffsetFetch(OffsetFetchResponse),
    ListGroups(ListGroupsResponse),
    DescribeGroups(DescribeGroupsResponse),
    DeleteGroups(DeleteGroupsResponse),
    OffsetDelete(OffsetDeleteResponse),
    ConsumerGroupHeartbeat(ConsumerGroupHeartbeatResponse),
    ConsumerGroupDescribe(ConsumerGroupDescribeResponse),
    AddPartitionsToTxn(AddPartitionsToTxnResponse),
    AddOffsetsToTxn(AddOffsetsToTxnResponse),
    TxnOffsetCommit(TxnOffsetCommitResponse),
    EndTxn(EndTxnResponse),
    DescribeProducers(DescribeProducersResponse),
    DescribeTransactions(DescribeTransactionsResponse),
    ListTransactions(ListTransactionsResponse),
    WriteTxnMarkers(WriteTxnMarkersResponse),
    OffsetForLeaderEpoch(OffsetForLeaderEpochResponse),
    ElectLeaders(ElectLeadersResponse),
    DescribeQuorum(DescribeQuorumResponse),
    AddRaftVoter(AddRaftVoterResponse),
    RemoveRaftVoter(RemoveRaftVoterResponse),
    AlterPartitionReassignments(AlterPartitionReassignmentsResponse),
    ListPartitionReassignments(ListPartitionReassignmentsResponse),
    SaslHandshake(SaslHandshakeResponse),
    SaslAuthenticate(SaslAuthenticateResponse),
    DescribeUserScramCredentials(DescribeUserScramCredentialsResponse),
    AlterUserScramCredentials(AlterUserScramCredentialsResponse),
    DescribeClientQuotas(DescribeClientQuotasResponse),
    AlterClientQuotas(AlterClientQuotasResponse),
    CreateAcls(CreateAclsResponse),
    DescribeAcls(DescribeAclsResponse),
    DeleteAcls(DeleteAclsResponse),
    /// No answer: the connection is closed, for this reason.
    Close(String),
}

/// The APIs ferrolog serves, with every version Kafka 4.1 defines for them. ApiVersions
/// advertises exactly this list.
pub const SUPPORTED: &[(ApiKey, VersionRange)] = &[
    // v0-2 as Kafka 4.1 still answers them (their legacy message sets are up-converted)
    (
        ApiKey::Produce,
        VersionRange {
            min: 0,
            max: ProduceRequest::VERSIONS.max,
        },
    ),
    (ApiKey::Fetch, FetchRequest::VERSIONS),
    (ApiKey::ListOffsets, ListOffsetsRequest::VERSIONS),
    (ApiKey::Metadata, MetadataRequest::VERSIONS),
    (ApiKey::ApiVersions, ApiVersionsRequest::VERSIONS),
    (ApiKey::UpdateFeatures, UpdateFeaturesRequest::VERSIONS),
    (
        ApiKey::DescribeTopicPartitions,
        DescribeTopicPartitionsRequest::VERSIONS,
    ),
    (
        ApiKey::ListConfigResources,
        ListConfigResourcesRequest::VERSIONS,
    ),
    (ApiKey::CreateTopics, CreateTopicsRequest::VERSIONS),
    (ApiKey::DeleteTopics, DeleteTopicsRequest::VERSIONS),
    (ApiKey::InitProducerId, InitProducerIdRequest::VERSIONS),
    (ApiKey::DescribeConfigs, DescribeConfigsRequest::VERSIONS),
    (ApiKey::CreatePartitions, CreatePartitionsRequest::VERSIONS),
    (ApiKey::DescribeCluster, DescribeClusterRequest::VERSIONS),
    (ApiKey::DeleteRecords, DeleteRecordsRequest::VERSIONS),
    (ApiKey::AlterConfigs, AlterConfigsRequest::VERSIONS),
    (
        ApiKey::IncrementalAlterConfigs,
        IncrementalAlterConfigsRequest::VERSIONS,
    ),
    (ApiKey::DescribeLogDirs, DescribeLogDirsRequest::VERSIONS),
    (
        ApiKey::AlterReplicaLogDirs,
        AlterReplicaLogDirsRequest::VERSIONS,
    ),
    (ApiKey::FindCoordinator, FindCoordinatorRequest::VERSIONS),
    (ApiKey::JoinGroup, JoinGroupRequest::VERSIONS),
    (ApiKey::SyncGroup, SyncGroupRequest::VERSIONS),
    (ApiKey::Heartbeat, HeartbeatRequest::VERSIONS),
    (ApiKey::LeaveGroup, LeaveGroupRequest::VERSIONS),
    (ApiKey::OffsetCommit, OffsetCommitRequest::VERSIONS),
    (ApiKey::OffsetFetch, OffsetFetchRequest::VERSIONS),
    (ApiKey::ListGroups, ListGroupsRequest::VERSIONS),
    (ApiKey::DescribeGroups, DescribeGroupsRequest::VERSIONS),
    (ApiKey::DeleteGroups, DeleteGroupsRequest::VERSIONS),
    (ApiKey::OffsetDelete, OffsetDeleteRequest::VERSIONS),
    (
        ApiKey::ConsumerGroupHeartbeat,
        ConsumerGroupHeartbeatRequest::VERSIONS,
    ),
    (
        ApiKey::ConsumerGroupDescribe,
        ConsumerGroupDescribeRequest::VERSIONS,
    ),
    // Transactions as transaction version 1 clients run them: EndTxn v5 / TxnOffsetCommit v5
    // are KIP-890's transaction version 2, which ferrolog does not advertise.
    (
        ApiKey::AddPartitionsToTxn,
        AddPartitionsToTxnRequest::VERSIONS,
    ),
    (ApiKey::AddOffsetsToTxn, AddOffsetsToTxnRequest::VERSIONS),
    (ApiKey::TxnOffsetCommit, VersionRange { min: 0, max: 4 }),
    (ApiKey::EndTxn, VersionRange { min: 0, max: 4 }),
    (ApiKey::WriteTxnMarkers, WriteTxnMarkersRequest::VERSIONS),
    (
        ApiKey::DescribeProducers,
        DescribeProducersRequest::VERSIONS,
    ),
    (
        ApiKey::DescribeTransactions,
        DescribeTransactionsRequest::VERSIONS,
    ),
    (ApiKey::ListTransactions, ListTransactionsRequest::VERSIONS),
    (
        ApiKey::OffsetForLeaderEpoch,
        OffsetForLeaderEpochRequest::VERSIONS,
    ),
    (ApiKey::ElectLeaders, ElectLeadersRequest::VERSIONS),
    (ApiKey::DescribeQuorum, DescribeQuorumRequest::VERSIONS),
    (ApiKey::AddRaftVoter, AddRaftVoterRequest::VERSIONS),
    (ApiKey::RemoveRaftVoter, RemoveRaftVoterRequest::VERSIONS),
    (
        ApiKey::AlterPartitionReassignments,
        AlterPartitionReassignmentsRequest::VERSIONS,
    ),
    (
        ApiKey::ListPartitionReassignments,
        ListPartitionReassignmentsRequest::VERSIONS,
    ),
    // answered on SASL listeners by the connection (server.rs), ILLEGAL_SASL_STATE elsewhere
    (ApiKey::SaslHandshake, SaslHandshakeRequest::VERSIONS),
    (ApiKey::SaslAuthenticate, SaslAuthenticateRequest::VERSIONS),
    (
        ApiKey::DescribeUserScramCredentials,
        DescribeUserScramCredentialsRequest::VERSIONS,
    ),
    (
        ApiKey::AlterUserScramCredentials,
        AlterUserScramCredentialsRequest::VERSIONS,
    ),
    (
        ApiKey::DescribeClientQuotas,
        DescribeClientQuotasRequest::VERSIONS,
    ),
    (
        ApiKey::AlterClientQuotas,
        AlterClientQuotasRequest::VERSIONS,
    ),
    // SECURITY_DISABLED without an authorizer, as in Kafka
    (ApiKey::CreateAcls, CreateAclsRequest::VERSIONS),
    (ApiKey::DescribeAcls, DescribeAclsRequest::VERSIONS),
    (ApiKey::DeleteAcls, DeleteAclsRequest::VERSIONS),
];

/// The `*_authorized_operations` bit fields (bit n = Kafka's AclOperation code n) of what
/// Kafka's authorizer knows for each resource type. With no authorizer configured every
/// operation is allowed, so these are the answers.
pub mod operations {
    const READ: i32 = 1 << 3;
    const WRITE: i32 = 1 << 4;
    const CREATE: i32 = 1 << 5;
    const DELETE: i32 = 1 << 6;
    const ALTER: i32 = 1 << 7;
    const DESCRIBE: i32 = 1 << 8;
    const CLUSTER_ACTION: i32 = 1 << 9;
    const DESCRIBE_CONFIGS: i32 = 1 << 10;
    const ALTER_CONFIGS: i32 = 1 << 11;
    const IDEMPOTENT_WRITE: i32 = 1 << 12;
    pub const TOPIC: i32 =
        READ | WRITE | CREATE | DELETE | ALTER | DESCRIBE | DESCRIBE_CONFIGS | ALTER_CONFIGS;
    pub const CLUSTER: i32 = CREATE
        | ALTER
        | DESCRIBE
        | CLUSTER_ACTION
        | DESCRIBE_CONFIGS
        | ALTER_CONFIGS
        | IDEMPOTENT_WRITE;
    pub const GROUP: i32 = READ | DELETE | DESCRIBE | DESCRIBE_CONFIGS | ALTER_CONFIGS;

    /// The field's value: the operations if asked for, else Kafka's "not asked" value.
    pub fn if_asked(asked: bool, ops: i32) -> i32 {
        if asked {
            ops
        } else {
            i32::MIN
        }
    }
}

pub fn supported_versions(key: ApiKey) -> Option<VersionRange> {
    SUPPORTED.iter().find(|(k, _)| *k == key).map(|(_, v)| *v)
}

fn decode<T: Decodable>(body: &mut Bytes, version: i16) -> Result<T> {
    let request = T::decode(body, version)?;
    // Kafka ignores bytes after the request body (librdkafka sends some with Metadata v13).
    if !body.is_empty() {
        tracing::trace!("{} trailing bytes after the request", body.len());
    }
    Ok(request)
}

pub fn str(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_string())
}

pub fn topic_name(s: &str) -> TopicName {
    TopicName(str(s))
}

/// A decoded request body.
pub enum Request {
    ApiVersions(ApiVersionsRequest),
    UpdateFeatures(UpdateFeaturesRequest),
    ListConfigResources(ListConfigResourcesRequest),
    DescribeTopicPartitions(DescribeTopicPartitionsRequest),
    Metadata(MetadataRequest),
    CreateTopics(CreateTopicsRequest),
    DeleteTopics(DeleteTopicsRequest),
    CreatePartitions(CreatePartitionsRequest),
    Produce(ProduceRequest),
    Fetch(FetchRequest),
    ListOffsets(ListOffsetsRequest),
    DescribeConfigs(DescribeConfigsRequest),
    DescribeCluster(DescribeClusterRequest),
    InitProducerId(InitProducerIdRequest),
    DeleteRecords(DeleteRecordsRequest),
    AlterConfigs(AlterConfigsRequest),
    IncrementalAlterConfigs(IncrementalAlterConfigsRequest),
    DescribeLogDirs(DescribeLogDirsRequest),
    AlterReplicaLogDirs(AlterReplicaLogDirsRequest),
    FindCoordinator(FindCoordinatorRequest),
    JoinGroup(JoinGroupRequest),
    SyncGroup(SyncGroupRequest),
    Heartbeat(HeartbeatRequest),
    LeaveGroup(LeaveGroupRequest),
    OffsetCommit(OffsetCommitRequest),
    OffsetFetch(OffsetFetchRequest),
    ListGroups(ListGroupsRequest),
    DescribeGroups(DescribeGroupsRequest),
    DeleteGroups(DeleteGroupsRequest),
    OffsetDelete(OffsetDeleteRequest),
    ConsumerGroupHeartbeat(ConsumerGroupHeartbeatRequest),
    ConsumerGroupDescribe(ConsumerGroupDescribeRequest),
    AddPartitionsToTxn(AddPartitionsToTxnRequest),
    AddOffsetsToTxn(AddOffsetsToTxnRequest),
    TxnOffsetCommit(TxnOffsetCommitRequest),
    EndTxn(EndTxnRequest),
    DescribeProducers(DescribeProducersRequest),
    DescribeTransactions(DescribeTransactionsRequest),
    ListTransactions(ListTransactionsRequest),
    WriteTxnMarkers(WriteTxnMarkersRequest),
    OffsetForLeaderEpoch(OffsetForLeaderEpochRequest),
    ElectLeaders(ElectLeadersRequest),
    DescribeQuorum(DescribeQuorumRequest),
    AddRaftVoter(AddRaftVoterRequest),
    RemoveRaftVoter(RemoveRaftVoterRequest),
    AlterPartitionReassignments(AlterPartitionReassignmentsRequest),
    ListPartitionReassignments(ListPartitionReassignmentsRequest),
    SaslHandshake(SaslHandshakeRequest),
    SaslAuthenticate(SaslAuthenticateRequest),
    DescribeUserScramCredentials(DescribeUserScramCredentialsRequest),
    AlterUserScramCredentials(AlterUserScramCredentialsRequest),
    DescribeClientQuotas(DescribeClientQuotasRequest),
    AlterClientQuotas(AlterClientQuotasRequest),
    CreateAcls(CreateAclsRequest),
    DescribeAcls(DescribeAclsRequest),
    DeleteAcls(DeleteAclsRequest),
}

/// Decodes the body of a supported request (sans I/O: bytes in, request out).
pub fn decode_request(key: ApiKey, v: i16, body: &mut Bytes) -> Result<Request> {
    let b = body;
    Ok(match key {
        ApiKey::ApiVersions => Request::ApiVersions(decode(b, v)?),
        ApiKey::UpdateFeatures => Request::UpdateFeatures(decode(b, v)?),
        ApiKey::ListConfigResources => Request::ListConfigResources(decode(b, v)?),
        ApiKey::DescribeTopicPartitions => Request::DescribeTopicPartitions(decode(b, v)?),
        ApiKey::Metadata => Request::Metadata(decode(b, v)?),
        ApiKey::OffsetForLeaderEpoch => Request::OffsetForLeaderEpoch(decode(b, v)?),
        ApiKey::ElectLeaders => Request::ElectLeaders(decode(b, v)?),
        ApiKey::DescribeQuorum => Request::DescribeQuorum(decode(b, v)?),
        ApiKey::AddRaftVoter => Request::AddRaftVoter(decode(b, v)?),
        ApiKey::RemoveRaftVoter => Request::RemoveRaftVoter(decode(b, v)?),
        ApiKey::AlterPartitionReassignments => Request::AlterPartitionReassignments(decode(b, v)?),
        ApiKey::ListPartitionReassignments => Request::ListPartitionReassignments(decode(b, v)?),
        ApiKey::SaslHandshake => Request::SaslHandshake(decode(b, v)?),
        ApiKey::SaslAuthenticate => Request::SaslAuthenticate(decode(b, v)?),
        ApiKey::DescribeUserScramCredentials => {
            Request::DescribeUserScramCredentials(decode(b, v)?)
        }
        ApiKey::AlterUserScramCredentials => Request::AlterUserScramCredentials(decode(b, v)?),
        ApiKey::DescribeClientQuotas => Request::DescribeClientQuotas(decode(b, v)?),
        ApiKey::AlterClientQuotas => Request::AlterClientQuotas(decode(b, v)?),
        ApiKey::CreateAcls => Request::CreateAcls(decode(b, v)?),
        ApiKey::DescribeAcls => Request::DescribeAcls(decode(b, v)?),
        ApiKey::DeleteAcls => Request::DeleteAcls(decode(b, v)?),
        ApiKey::CreateTopics => Request::CreateTopics(decode(b, v)?),
        ApiKey::DeleteTopics => Request::DeleteTopics(decode(b, v)?),
        ApiKey::CreatePartitions => Request::CreatePartitions(decode(b, v)?),
        ApiKey::Produce if v <= produce_legacy::LAST_LEGACY_VERSION => {
            Request::Produce(produce_legacy::decode_request(b)?)
        }
        ApiKey::Produce => Request::Produce(decode(b, v)?),
        ApiKey::Fetch => Request::Fetch(decode(b, v)?),
        ApiKey::ListOffsets => Request::ListOffsets(decode(b, v)?),
        ApiKey::DescribeConfigs => Request::DescribeConfigs(decode(b, v)?),
        ApiKey::DescribeCluster => Request::DescribeCluster(decode(b, v)?),
        ApiKey::InitProducerId => Request::InitProducerId(decode(b, v)?),
        ApiKey::DeleteRecords => Request::DeleteRecords(decode(b, v)?),
        ApiKey::AlterConfigs => Request::AlterConfigs(decode(b, v)?),
        ApiKey::IncrementalAlterConfigs => Request::IncrementalAlterConfigs(decode(b, v)?),
        ApiKey::DescribeLogDirs => Request::DescribeLogDirs(decode(b, v)?),
        ApiKey::AlterReplicaLogDirs => Request::AlterReplicaLogDirs(decode(b, v)?),
        ApiKey::FindCoordinator => Request::FindCoordinator(decode(b, v)?),
        ApiKey::JoinGroup => Request::JoinGroup(decode(b, v)?),
        ApiKey::SyncGroup => Request::SyncGroup(decode(b, v)?),
        ApiKey::Heartbeat => Request::Heartbeat(decode(b, v)?),
        ApiKey::LeaveGroup => Request::LeaveGroup(decode(b, v)?),
        ApiKey::OffsetCommit => Request::OffsetCommit(decode(b, v)?),
        ApiKey::OffsetFetch => Request::OffsetFetch(decode(b, v)?),
        ApiKey::ListGroups => Request::ListGroups(decode(b, v)?),
        ApiKey::DescribeGroups => Request::DescribeGroups(decode(b, v)?),
        ApiKey::DeleteGroups => Request::DeleteGroups(decode(b, v)?),
        ApiKey::OffsetDelete => Request::OffsetDelete(decode(b, v)?),
        ApiKey::ConsumerGroupHeartbeat => Request::ConsumerGroupHeartbeat(decode(b, v)?),
        ApiKey::ConsumerGroupDescribe => Request::ConsumerGroupDescribe(decode(b, v)?),
        ApiKey::AddPartitionsToTxn => Request::AddPartitionsToTxn(decode(b, v)?),
        ApiKey::AddOffsetsToTxn => Request::AddOffsetsToTxn(decode(b, v)?),
        ApiKey::TxnOffsetCommit => Request::TxnOffsetCommit(decode(b, v)?),
        ApiKey::EndTxn => Request::EndTxn(decode(b, v)?),
        ApiKey::DescribeProducers => Request::DescribeProducers(decode(b, v)?),
        ApiKey::DescribeTransactions => Request::DescribeTransactions(decode(b, v)?),
        ApiKey::ListTransactions => Request::ListTransactions(decode(b, v)?),
        ApiKey::WriteTxnMarkers => Request::WriteTxnMarkers(decode(b, v)?),
        other => return Err(anyhow!("{other:?} is not supported")),
    })
}

/// Who sent a request.
#[derive(Debug, Clone)]
pub struct RequestContext {
    pub version: i16,
    pub client_id: String,
    pub client_host: String,
    /// The connection's principal and listener.
    pub session: crate::session::Session,
    /// How long the connection is not read after this request (a client quota's throttle,
    /// KIP-219), in ms; handlers raise it.
    pub throttle_ms: Arc<std::sync::atomic::AtomicI32>,
}

/// KIP-599's quota on topic and partition creations and deletions (`controller_mutation_rate`,
/// in partitions per second) for one request. Strict (CreateTopics v6+, DeleteTopics v5+,
/// CreatePartitions v3+): once the client's rate is above its quota, further changes get
/// THROTTLING_QUOTA_EXCEEDED (a change is let through while the rate is not yet above, even one
/// that takes it above, as in Kafka); older versions are only throttled.
pub struct MutationQuota<'a> {
    broker: &'a Broker,
    ctx: &'a RequestContext,
    strict: bool,
}

pub const THROTTLING_QUOTA_EXCEEDED: &str = "The throttling quota has been exceeded.";

impl<'a> MutationQuota<'a> {
    pub fn new(broker: &'a Broker, ctx: &'a RequestContext, strict_since: i16) -> Self {
        MutationQuota {
            broker,
            ctx,
            strict: ctx.version >= strict_since,
        }
    }

    fn pending(&self) -> std::time::Duration {
        self.broker.quotas.pending(
            crate::quota::CONTROLLER_MUTATION_RATE,
            self.ctx.quota_user(),
            &self.ctx.client_id,
        )
    }

    /// Counts a change of `partitions` partitions, unless it must be refused (strict, and the
    /// client is over its quota already): false then, and nothing is counted.
    pub fn admit(&self, partitions: i32) -> bool {
        let (key, user, client) = (
            crate::quota::CONTROLLER_MUTATION_RATE,
            self.ctx.quota_user(),
            self.ctx.client_id.as_str(),
        );
        let amount = f64::from(partitions.max(0));
        if self.strict {
            self.broker
                .quotas
                .record_unless_over(key, user, client, amount)
        } else {
            self.broker.quotas.record(key, user, client, amount);
            true
        }
    }

    /// The response's throttle time (and the connection's).
    pub fn throttle_ms(&self) -> i32 {
        self.ctx.throttle(self.pending())
    }
}

impl RequestContext {
    /// The user quotas are kept for: the principal's name (`alice` of `User:alice`).
    pub fn quota_user(&self) -> &str {
        let p: &str = &self.session.principal;
        p.split_once(':').map_or(p, |(_, name)| name)
    }

    /// Throttles the connection for at least `d`; the milliseconds, for the response.
    pub fn throttle(&self, d: std::time::Duration) -> i32 {
        let ms = d.as_millis().min(i32::MAX as u128) as i32;
        self.throttle_ms
            .fetch_max(ms, std::sync::atomic::Ordering::Relaxed);
        ms
    }

    /// Records `amount` against the client's `key` quota and throttles it as that says.
    pub fn record_quota(&self, broker: &Broker, key: &'static str, amount: f64) -> i32 {
        let d = broker
            .quotas
            .record(key, self.quota_user(), &self.client_id, amount);
        self.throttle(d)
    }
}

/// Handles a decoded request: authorizes it, then answers what is allowed. `None` means no
/// response is sent (acks=0 produce).
pub async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    request: Request,
) -> Option<Response> {
    match authorize::check(broker, ctx, request) {
        authorize::Checked::Answer(response) => Some(response),
        authorize::Checked::Close(why) => Some(Response::Close(why)),
        authorize::Checked::HandleThenClose(request, why) => {
            dispatch(broker, ctx, request).await;
            Some(Response::Close(why))
        }
        authorize::Checked::Handle(request, after) => {
            let mut response = dispatch(broker, ctx, request).await;
            if let (Some(after), Some(response)) = (after, response.as_mut()) {
                after(response);
            }
            response
        }
    }
}

async fn dispatch(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    request: Request,
) -> Option<Response> {
    let v = ctx.version;
    if let Some(response) = not_coordinator(broker, &request, v) {
        return Some(response);
    }
    Some(match request {
        Request::ApiVersions(r) => Response::ApiVersions(api_versions::handle(broker, r, v)),
        Request::DescribeTopicPartitions(r) => {
            Response::DescribeTopicPartitions(describe_topic_partitions::handle(broker, r))
        }
        Request::ListConfigResources(r) => {
            Response::ListConfigResources(list_config_resources::handle(broker, r, v))
        }
        Request::UpdateFeatures(r) => {
            Response::UpdateFeatures(update_features::handle(broker, r, v))
        }
        Request::Metadata(r) => Response::Metadata(metadata::handle(broker, ctx, r)),
        Request::CreateTopics(r) => {
            let quota = MutationQuota::new(broker, ctx, 6);
            let mut response = create_topics::handle(broker, r, v, &quota);
            response.throttle_time_ms = quota.throttle_ms();
            Response::CreateTopics(response)
        }
        Request::DeleteTopics(r) => {
            let quota = MutationQuota::new(broker, ctx, 5);
            let mut response = delete_topics::handle(broker, r, v, &quota);
            response.throttle_time_ms = quota.throttle_ms();
            Response::DeleteTopics(response)
        }
        Request::CreatePartitions(r) => {
            let quota = MutationQuota::new(broker, ctx, 3);
            let mut response = create_partitions::handle(broker, r, &quota);
            response.throttle_time_ms = quota.throttle_ms();
            Response::CreatePartitions(response)
        }
        Request::Produce(mut r) => {
            if v <= produce_legacy::LAST_LEGACY_VERSION {
                let limit = broker
                    .effective()
                    .log_config(&Default::default())
                    .max_decompressed_bytes();
                produce_legacy::up_convert(&mut r, limit);
            }
            let timeout_ms = r.timeout_ms;
            let bytes: usize = r
                .topic_data
                .iter()
                .flat_map(|t| &t.partition_data)
                .map(|p| p.records.as_ref().map_or(0, |b| b.len()))
                .sum();
            let quota = crate::quota::PRODUCER_BYTE_RATE;
            let (user, client) = (ctx.quota_user(), ctx.client_id.as_str());
            broker.quotas.record(quota, user, client, bytes as f64);
            let (response, waits) = produce::handle(broker, ctx, r);
            let mut response = produce::await_commit(broker, response?, waits, timeout_ms).await;
            // the throttle as the response leaves: the time spent handling it counts as waited
            let throttle = ctx.throttle(broker.quotas.pending(quota, user, client));
            response.throttle_time_ms = response.throttle_time_ms.max(throttle);
            Response::Produce(response)
        }
        Request::Fetch(r) => {
            let (response, files) = fetch::handle(broker, ctx, r).await;
            Response::Fetch(response, files)
        }
        Request::ListOffsets(r) => Response::ListOffsets(list_offsets::handle(broker, r, v)),
        Request::DescribeConfigs(r) => {
            Response::DescribeConfigs(describe_configs::handle(broker, r, v))
        }
        Request::DescribeCluster(r) => {
            Response::DescribeCluster(describe_cluster::handle(broker, ctx, r))
        }
        Request::InitProducerId(r) => {
            Response::InitProducerId(init_producer_id::handle(broker, r).await)
        }
        Request::DeleteRecords(r) => Response::DeleteRecords(delete_records::handle(broker, r)),
        Request::AlterConfigs(r) => Response::AlterConfigs(alter_configs::handle(broker, r)),
        Request::IncrementalAlterConfigs(r) => {
            Response::IncrementalAlterConfigs(alter_configs::handle_incremental(broker, r))
        }
        Request::AlterReplicaLogDirs(r) => {
            Response::AlterReplicaLogDirs(alter_replica_log_dirs::handle(broker, r).await)
        }
        Request::DescribeLogDirs(r) => {
            Response::DescribeLogDirs(describe_log_dirs::handle(broker, r, v))
        }
        Request::FindCoordinator(r) => {
            Response::FindCoordinator(find_coordinator::handle(broker, ctx, r))
        }
        Request::JoinGroup(r) => Response::JoinGroup(join_group::handle(broker, ctx, r).await),
        Request::SyncGroup(r) => Response::SyncGroup(sync_group::handle(broker, ctx, r).await),
        Request::Heartbeat(r) => Response::Heartbeat(heartbeat::handle(broker, r)),
        Request::LeaveGroup(r) => Response::LeaveGroup(leave_group::handle(broker, ctx, r)),
        Request::OffsetCommit(r) => Response::OffsetCommit(offset_commit::handle(broker, r).await),
        Request::OffsetFetch(r) => Response::OffsetFetch(offset_fetch::handle(broker, r, v)),
        Request::ListGroups(r) => Response::ListGroups(list_groups::handle(broker, r, v)),
        Request::DescribeGroups(r) => {
            Response::DescribeGroups(describe_groups::handle(broker, r, v))
        }
        Request::DeleteGroups(r) => Response::DeleteGroups(delete_groups::handle(broker, r).await),
        Request::OffsetDelete(r) => Response::OffsetDelete(offset_delete::handle(broker, r).await),
        Request::ConsumerGroupHeartbeat(r) => {
            Response::ConsumerGroupHeartbeat(consumer_group_heartbeat::handle(broker, ctx, r))
        }
        Request::ConsumerGroupDescribe(r) => {
            Response::ConsumerGroupDescribe(consumer_group_describe::handle(broker, r, v))
        }
        Request::AddPartitionsToTxn(r) => {
            Response::AddPartitionsToTxn(add_partitions_to_txn::handle(broker, r, v).await)
        }
        Request::AddOffsetsToTxn(r) => {
            Response::AddOffsetsToTxn(add_offsets_to_txn::handle(broker, r).await)
        }
        Request::TxnOffsetCommit(r) => {
            Response::TxnOffsetCommit(txn_offset_commit::handle(broker, r).await)
        }
        Request::EndTxn(r) => Response::EndTxn(end_txn::handle(broker, r).await),
        Request::DescribeProducers(r) => {
            Response::DescribeProducers(describe_producers::handle(broker, r))
        }
        Request::DescribeTransactions(r) => {
            Response::DescribeTransactions(describe_transactions::handle(broker, r))
        }
        Request::ListTransactions(r) => {
            Response::ListTransactions(list_transactions::handle(broker, r))
        }
        Request::WriteTxnMarkers(r) => {
            Response::WriteTxnMarkers(write_txn_markers::handle(broker, r))
        }
        Request::OffsetForLeaderEpoch(r) => {
            Response::OffsetForLeaderEpoch(offset_for_leader_epoch::handle(broker, r))
        }
        Request::ElectLeaders(r) => Response::ElectLeaders(elect_leaders::handle(broker, r)),
        Request::DescribeQuorum(r) => {
            Response::DescribeQuorum(describe_quorum::handle(broker, r, v).await)
        }
        Request::AddRaftVoter(r) => Response::AddRaftVoter(raft_voters::add(broker, r).await),
        Request::RemoveRaftVoter(r) => {
            Response::RemoveRaftVoter(raft_voters::remove(broker, r).await)
        }
        Request::AlterPartitionReassignments(r) => {
            Response::AlterPartitionReassignments(reassignments::alter(broker, r))
        }
        Request::ListPartitionReassignments(r) => {
            Response::ListPartitionReassignments(reassignments::list(broker, r))
        }
        // a SASL listener's connection answers these itself: here there is no SASL to speak
        Request::SaslHandshake(_) => Response::SaslHandshake(
            SaslHandshakeResponse::default()
                .with_error_code(kafka_protocol::ResponseError::IllegalSaslState.code()),
        ),
        Request::SaslAuthenticate(_) => Response::SaslAuthenticate(
            SaslAuthenticateResponse::default()
                .with_error_code(kafka_protocol::ResponseError::IllegalSaslState.code())
                .with_error_message(Some(str(&format!(
                    "listener {} does not use SASL",
                    ctx.session.listener
                )))),
        ),
        Request::DescribeUserScramCredentials(r) => {
            Response::DescribeUserScramCredentials(scram_credentials::describe(broker, r))
        }
        Request::AlterUserScramCredentials(r) => {
            Response::AlterUserScramCredentials(scram_credentials::alter(broker, r))
        }
        Request::DescribeClientQuotas(r) => {
            Response::DescribeClientQuotas(client_quotas::describe(broker, r))
        }
        Request::AlterClientQuotas(r) => {
            Response::AlterClientQuotas(client_quotas::alter(broker, r))
        }
        Request::CreateAcls(r) => Response::CreateAcls(acls::create(broker, r)),
        Request::DescribeAcls(r) => Response::DescribeAcls(acls::describe(broker, r)),
        Request::DeleteAcls(r) => Response::DeleteAcls(acls::delete(broker, r)),
    })
}

/// A broker's host, port and rack.
pub type Endpoint = (String, i32, Option<String>);

/// KIP-951: what a NOT_LEADER_OR_FOLLOWER answer tells the client of the partition's current
/// leader: (leader id, leader epoch, and its endpoint (host, port, rack) on `listener` if it is
/// live).
pub fn leader_hint(
    broker: &Broker,
    listener: &str,
    topic: &str,
    partition: i32,
) -> Option<(i32, i32, Option<Endpoint>)> {
    let image = broker.controller.image();
    let t = image.topic(topic)?;
    let state = image.partition(&t.id, partition, broker.config.node_id)?;
    let endpoint = image
        .brokers
        .get(&state.leader)
        .filter(|b| !b.fenced)
        .and_then(|b| {
            let (host, port) = b.endpoint(listener)?;
            Some((host.to_string(), port, b.rack.clone()))
        });
    Some((state.leader, state.leader_epoch, endpoint))
}

/// In a cluster, group and transaction requests must reach the key's coordinator (the leader
/// of its internal partition); elsewhere they get NOT_COORDINATOR and the client looks again.
fn not_coordinator(broker: &Arc<Broker>, request: &Request, version: i16) -> Option<Response> {
    use crate::group::OFFSETS_TOPIC;
    use crate::txn::TXN_TOPIC;
    broker.quorum.as_ref()?;
    let (topic, key) = match request {
        Request::JoinGroup(r) => (OFFSETS_TOPIC, r.group_id.to_string()),
        Request::SyncGroup(r) => (OFFSETS_TOPIC, r.group_id.to_string()),
        Request::Heartbeat(r) => (OFFSETS_TOPIC, r.group_id.to_string()),
        Request::LeaveGroup(r) => (OFFSETS_TOPIC, r.group_id.to_string()),
        Request::OffsetCommit(r) => (OFFSETS_TOPIC, r.group_id.to_string()),
        Request::TxnOffsetCommit(r) => (OFFSETS_TOPIC, r.group_id.to_string()),
        Request::OffsetFetch(r) if version < 8 => (OFFSETS_TOPIC, r.group_id.to_string()),
        Request::OffsetFetch(r) => (
            OFFSETS_TOPIC,
            r.groups.first().map(|g| g.group_id.to_string())?,
        ),
        Request::ConsumerGroupHeartbeat(r) => (OFFSETS_TOPIC, r.group_id.to_string()),
        Request::InitProducerId(r) => (TXN_TOPIC, r.transactional_id.as_ref()?.to_string()),
        Request::AddOffsetsToTxn(r) => (TXN_TOPIC, r.transactional_id.to_string()),
        Request::EndTxn(r) => (TXN_TOPIC, r.transactional_id.to_string()),
        _ => return None,
    };
    if broker.coordinates(topic, &key) {
        return None;
    }
    let code = if broker.becoming_coordinator(topic, &key) {
        kafka_protocol::ResponseError::CoordinatorLoadInProgress.code()
    } else {
        kafka_protocol::ResponseError::NotCoordinator.code()
    };
    Some(match request {
        Request::JoinGroup(_) => {
            Response::JoinGroup(JoinGroupResponse::default().with_error_code(code))
        }
        Request::SyncGroup(_) => {
            Response::SyncGroup(SyncGroupResponse::default().with_error_code(code))
        }
        Request::Heartbeat(_) => {
            Response::Heartbeat(HeartbeatResponse::default().with_error_code(code))
        }
        Request::LeaveGroup(_) => {
            Response::LeaveGroup(LeaveGroupResponse::default().with_error_code(code))
        }
        Request::OffsetCommit(r) => {
            let mut response = OffsetCommitResponse::default();
            for t in &r.topics {
                let mut topic = offset_commit_response::OffsetCommitResponseTopic::default()
                    .with_name(t.name.clone());
                for p in &t.partitions {
                    topic.partitions.push(
                        offset_commit_response::OffsetCommitResponsePartition::default()
                            .with_partition_index(p.partition_index)
                            .with_error_code(code),
                    );
                }
                response.topics.push(topic);
            }
            Response::OffsetCommit(response)
        }
        Request::TxnOffsetCommit(r) => {
            let mut response = TxnOffsetCommitResponse::default();
            for t in &r.topics {
                let mut topic = txn_offset_commit_response::TxnOffsetCommitResponseTopic::default()
                    .with_name(t.name.clone());
                for p in &t.partitions {
                    topic.partitions.push(
                        txn_offset_commit_response::TxnOffsetCommitResponsePartition::default()
                            .with_partition_index(p.partition_index)
                            .with_error_code(code),
                    );
                }
                response.topics.push(topic);
            }
            Response::TxnOffsetCommit(response)
        }
        Request::OffsetFetch(r) if version < 8 => {
            Response::OffsetFetch(OffsetFetchResponse::default().with_error_code(code))
        }
        Request::OffsetFetch(r) => Response::OffsetFetch(
            OffsetFetchResponse::default().with_groups(
                r.groups
                    .iter()
                    .map(|g| {
                        offset_fetch_response::OffsetFetchResponseGroup::default()
                            .with_group_id(g.group_id.clone())
                            .with_error_code(code)
                    })
                    .collect(),
            ),
        ),
        Request::ConsumerGroupHeartbeat(_) => Response::ConsumerGroupHeartbeat(
            ConsumerGroupHeartbeatResponse::default().with_error_code(code),
        ),
        Request::InitProducerId(_) => Response::InitProducerId(
            InitProducerIdResponse::default()
                .with_error_code(code)
                .with_producer_id(ProducerId(-1))
                .with_producer_epoch(-1),
        ),
        Request::AddOffsetsToTxn(_) => {
            Response::AddOffsetsToTxn(AddOffsetsToTxnResponse::default().with_error_code(code))
        }
        Request::EndTxn(_) => Response::EndTxn(EndTxnResponse::default().with_error_code(code)),
        _ => return None,
    })
}

/// Kafka's topic name rules: 1..=249 characters of `[a-zA-Z0-9._-]`, not `.` or `..`.
pub fn validate_topic_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("Topic name is illegal, it can't be empty".into());
    }
    if name == "." || name == ".." {
        return Err("Topic name cannot be \".\" or \"..\"".into());
    }
    if name.len() > 249 {
        return Err(format!(
            "Topic name is illegal, it can't be longer than 249 characters, topic name: {name}"
        ));
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '_' || c == '-')
    {
        return Err(format!(
            "Topic name \"{name}\" is illegal, it contains a character other than ASCII alphanumerics, '.', '_' and '-'"
        ));
    }
    Ok(())
}

/// Names that differ only in '.' versus '_' collide in metric names; Kafka refuses the second.
pub fn collides(a: &str, b: &str) -> bool {
    a != b && a.replace('.', "_") == b.replace('.', "_")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_names() {
        assert!(validate_topic_name("orders.v1-x_y").is_ok());
        assert!(validate_topic_name("").is_err());
        assert!(validate_topic_name("..").is_err());
        assert!(validate_topic_name("a b").is_err());
        assert!(validate_topic_name(&"a".repeat(249)).is_ok());
        assert!(validate_topic_name(&"a".repeat(250)).is_err());
        assert!(collides("a.b", "a_b"));
        assert!(!collides("a.b", "a.b"));
    }
}
