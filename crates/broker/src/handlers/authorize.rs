//! What each API needs the authorizer to allow, as Kafka's request handlers check it: one
//! place for every check, in front of the handlers, which stay unaware of ACLs.
//!
//! [`check`] looks at a decoded request before it is handled and either answers it at once
//! (a denial of the whole request: a cluster operation, the group, the transactional id) or
//! takes the denied parts out of it (topics, groups, config resources) and returns an
//! [`After`] that puts their errors into the response, and fills the authorized-operations
//! fields and drops what the principal may not see (topics of an all-topics Metadata, groups
//! of ListGroups). Without an authorizer nothing is checked.

use std::collections::BTreeSet;
use std::sync::Arc;

use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;

use super::{str, topic_name, Request, RequestContext, Response};
use crate::metadata::MetadataImage;
use crate::security::acl::{Authorizer, Operation, Requester, ResourceType, CLUSTER_NAME};
use crate::Broker;

/// What to do to the response of a request that was partly denied.
pub type After<'a> = Box<dyn FnOnce(&mut Response) + Send + 'a>;

pub enum Checked<'a> {
    /// The request is denied as a whole: this is the answer.
    Answer(Response),
    /// The request is denied as a whole and gets no answer (a produce with acks=0): the
    /// connection is closed, as Kafka closes it, so that the client notices.
    Close(String),
    /// Handle what is left of a request that gets no answer (a produce with acks=0 partly
    /// denied), then close the connection, as Kafka does when such a request had an error.
    HandleThenClose(Request, String),
    /// Handle this (what is left of the request), then apply the `After`.
    Handle(Request, Option<After<'a>>),
}

/// One request's view of the authorizer.
#[derive(Clone)]
struct Access<'a> {
    authorizer: &'a Authorizer,
    image: Arc<MetadataImage>,
    who: Requester<'a>,
    api: &'static str,
}

impl Access<'_> {
    /// Whether the action is allowed; a denial goes to the authorizer log.
    fn can(&self, op: Operation, rt: ResourceType, name: &str) -> bool {
        self.authorizer
            .authorize(&self.image.acls, self.who, op, rt, name, self.api, true)
    }

    /// Whether the action is allowed, for filtering what is shown (not logged).
    fn may(&self, op: Operation, rt: ResourceType, name: &str) -> bool {
        self.authorizer
            .authorize(&self.image.acls, self.who, op, rt, name, self.api, false)
    }

    fn cluster(&self, op: Operation) -> bool {
        self.can(op, ResourceType::Cluster, CLUSTER_NAME)
    }

    fn topic(&self, op: Operation, name: &str) -> bool {
        self.can(op, ResourceType::Topic, name)
    }

    fn group(&self, op: Operation, name: &str) -> bool {
        self.can(op, ResourceType::Group, name)
    }

    fn txn(&self, op: Operation, name: &str) -> bool {
        self.can(op, ResourceType::TransactionalId, name)
    }

    fn ops(&self, rt: ResourceType, name: &str) -> i32 {
        self.authorizer
            .authorized_operations(&self.image.acls, self.who, rt, name)
    }

    /// The authorized-operations field: recomputed if the handler filled it (it was asked).
    fn fill(&self, field: &mut i32, rt: ResourceType, name: &str) {
        if *field != i32::MIN {
            *field = self.ops(rt, name);
        }
    }

    /// A topic's name from a request that may name it by id.
    fn name_of(&self, name: &str, id: &uuid::Uuid) -> Option<String> {
        if !name.is_empty() || id.is_nil() {
            return Some(name.to_string());
        }
        self.image.ids.get(id).cloned()
    }
}

/// Kafka's internal topics (its `Topic.isInternal`).
const INTERNAL_TOPICS: [&str; 2] = [crate::group::OFFSETS_TOPIC, crate::txn::TXN_TOPIC];

const TOPIC_DENIED: i16 = 29;
const GROUP_DENIED: i16 = 30;
const CLUSTER_DENIED: i16 = 31;
const TXN_DENIED: i16 = 53;

/// Takes the items `keep` refuses out of `items`, in order.
fn split<T>(items: &mut Vec<T>, mut keep: impl FnMut(&T) -> bool) -> Vec<T> {
    let (kept, denied): (Vec<T>, Vec<T>) = std::mem::take(items).into_iter().partition(|t| keep(t));
    *items = kept;
    denied
}

fn after<'a>(f: impl FnOnce(&mut Response) + Send + 'a) -> Option<After<'a>> {
    Some(Box::new(f))
}

/// The cluster operation a whole request needs; `None` if it needs none.
fn cluster_operation(request: &Request) -> Option<(&'static str, Operation)> {
    use Operation::*;
    Some(match request {
        Request::DescribeLogDirs(_) => ("DescribeLogDirs", Describe),
        Request::AlterReplicaLogDirs(_) => ("AlterReplicaLogDirs", Alter),
        Request::ElectLeaders(_) => ("ElectLeaders", Alter),
        Request::AlterPartitionReassignments(_) => ("AlterPartitionReassignments", Alter),
        Request::ListPartitionReassignments(_) => ("ListPartitionReassignments", Describe),
        Request::DescribeQuorum(_) => ("DescribeQuorum", Describe),
        Request::AddRaftVoter(_) => ("AddRaftVoter", Alter),
        Request::RemoveRaftVoter(_) => ("RemoveRaftVoter", Alter),
        Request::UpdateFeatures(_) => ("UpdateFeatures", Alter),
        Request::DescribeUserScramCredentials(_) => ("DescribeUserScramCredentials", Describe),
        Request::AlterUserScramCredentials(_) => ("AlterUserScramCredentials", Alter),
        Request::CreateAcls(_) => ("CreateAcls", Alter),
        Request::DeleteAcls(_) => ("DeleteAcls", Alter),
        Request::DescribeAcls(_) => ("DescribeAcls", Describe),
        Request::ListConfigResources(_) => ("ListConfigResources", DescribeConfigs),
        Request::DescribeClientQuotas(_) => ("DescribeClientQuotas", DescribeConfigs),
        Request::AlterClientQuotas(_) => ("AlterClientQuotas", AlterConfigs),
        _ => return None,
    })
}

/// The answer to a request denied its cluster operation.
fn cluster_denied(request: &Request, op: Operation, version: i16) -> Response {
    let message = Some(str(&format!(
        "Request needs {op} permission on the cluster."
    )));
    let c = CLUSTER_DENIED;
    match request {
        Request::DescribeLogDirs(_) => {
            Response::DescribeLogDirs(DescribeLogDirsResponse::default().with_error_code(c))
        }
        Request::AlterReplicaLogDirs(r) => {
            use alter_replica_log_dirs_response::*;
            let mut results = Vec::new();
            for dir in &r.dirs {
                for t in &dir.topics {
                    results.push(
                        AlterReplicaLogDirTopicResult::default()
                            .with_topic_name(t.name.clone())
                            .with_partitions(
                                t.partitions
                                    .iter()
                                    .map(|p| {
                                        AlterReplicaLogDirPartitionResult::default()
                                            .with_partition_index(*p)
                                            .with_error_code(c)
                                    })
                                    .collect(),
                            ),
                    );
                }
            }
            Response::AlterReplicaLogDirs(
                AlterReplicaLogDirsResponse::default().with_results(results),
            )
        }
        Request::ElectLeaders(r) => {
            use elect_leaders_response::*;
            let results = r
                .topic_partitions
                .iter()
                .flatten()
                .map(|t| {
                    ReplicaElectionResult::default()
                        .with_topic(t.topic.clone())
                        .with_partition_result(
                            t.partitions
                                .iter()
                                .map(|p| {
                                    PartitionResult::default()
                                        .with_partition_id(*p)
                                        .with_error_code(c)
                                        .with_error_message(message.clone())
                                })
                                .collect(),
                        )
                })
                .collect();
            // v0 has no top-level error: the partitions say it
            Response::ElectLeaders(
                ElectLeadersResponse::default()
                    .with_error_code(if version >= 1 { c } else { 0 })
                    .with_replica_election_results(results),
            )
        }
        Request::AlterPartitionReassignments(r) => {
            use alter_partition_reassignments_response::*;
            let responses = r
                .topics
                .iter()
                .map(|t| {
                    ReassignableTopicResponse::default()
                        .with_name(t.name.clone())
                        .with_partitions(
                            t.partitions
                                .iter()
                                .map(|p| {
                                    ReassignablePartitionResponse::default()
                                        .with_partition_index(p.partition_index)
                                        .with_error_code(c)
                                        .with_error_message(message.clone())
                                })
                                .collect(),
                        )
                })
                .collect();
            Response::AlterPartitionReassignments(
                AlterPartitionReassignmentsResponse::default()
                    .with_error_code(c)
                    .with_error_message(message)
                    .with_responses(responses),
            )
        }
        Request::ListPartitionReassignments(_) => Response::ListPartitionReassignments(
            ListPartitionReassignmentsResponse::default()
                .with_error_code(c)
                .with_error_message(message),
        ),
        Request::DescribeQuorum(_) => {
            Response::DescribeQuorum(DescribeQuorumResponse::default().with_error_code(c))
        }
        Request::AddRaftVoter(_) => Response::AddRaftVoter(
            AddRaftVoterResponse::default()
                .with_error_code(c)
                .with_error_message(Some(str("Cluster authorization failed."))),
        ),
        Request::RemoveRaftVoter(_) => Response::RemoveRaftVoter(
            RemoveRaftVoterResponse::default()
                .with_error_code(c)
                .with_error_message(Some(str("Cluster authorization failed."))),
        ),
        Request::UpdateFeatures(r) => {
            use update_features_response::*;
            Response::UpdateFeatures(
                UpdateFeaturesResponse::default()
                    .with_error_code(c)
                    .with_error_message(message.clone())
                    .with_results(
                        r.feature_updates
                            .iter()
                            .map(|f| {
                                UpdatableFeatureResult::default()
                                    .with_feature(f.feature.clone())
                                    .with_error_code(c)
                                    .with_error_message(message.clone())
                            })
                            .collect(),
                    ),
            )
        }
        Request::DescribeUserScramCredentials(r) => {
            use describe_user_scram_credentials_response::*;
            Response::DescribeUserScramCredentials(
                DescribeUserScramCredentialsResponse::default()
                    .with_error_code(c)
                    .with_results(
                        r.users
                            .iter()
                            .flatten()
                            .map(|_| {
                                DescribeUserScramCredentialsResult::default().with_error_code(c)
                            })
                            .collect(),
                    ),
            )
        }
        Request::AlterUserScramCredentials(r) => {
            use alter_user_scram_credentials_response::*;
            let users: BTreeSet<String> = r
                .deletions
                .iter()
                .map(|d| d.name.to_string())
                .chain(r.upsertions.iter().map(|u| u.name.to_string()))
                .collect();
            Response::AlterUserScramCredentials(
                AlterUserScramCredentialsResponse::default().with_results(
                    users
                        .iter()
                        .map(|u| {
                            AlterUserScramCredentialsResult::default()
                                .with_user(str(u))
                                .with_error_code(c)
                                .with_error_message(message.clone())
                        })
                        .collect(),
                ),
            )
        }
        Request::CreateAcls(r) => {
            use create_acls_response::*;
            Response::CreateAcls(
                CreateAclsResponse::default().with_results(
                    r.creations
                        .iter()
                        .map(|_| {
                            AclCreationResult::default()
                                .with_error_code(c)
                                .with_error_message(message.clone())
                        })
                        .collect(),
                ),
            )
        }
        Request::DeleteAcls(r) => {
            use delete_acls_response::*;
            Response::DeleteAcls(
                DeleteAclsResponse::default().with_filter_results(
                    r.filters
                        .iter()
                        .map(|_| {
                            DeleteAclsFilterResult::default()
                                .with_error_code(c)
                                .with_error_message(message.clone())
                        })
                        .collect(),
                ),
            )
        }
        Request::DescribeAcls(_) => Response::DescribeAcls(
            DescribeAclsResponse::default()
                .with_error_code(c)
                .with_error_message(message),
        ),
        Request::ListConfigResources(_) => {
            Response::ListConfigResources(ListConfigResourcesResponse::default().with_error_code(c))
        }
        Request::DescribeClientQuotas(_) => Response::DescribeClientQuotas(
            DescribeClientQuotasResponse::default()
                .with_error_code(c)
                .with_error_message(message),
        ),
        Request::AlterClientQuotas(r) => {
            use alter_client_quotas_response::*;
            Response::AlterClientQuotas(
                AlterClientQuotasResponse::default().with_entries(
                    r.entries
                        .iter()
                        .map(|e| {
                            EntryData::default()
                                .with_error_code(c)
                                .with_error_message(message.clone())
                                .with_entity(
                                    e.entity
                                        .iter()
                                        .map(|x| {
                                            EntityData::default()
                                                .with_entity_type(x.entity_type.clone())
                                                .with_entity_name(x.entity_name.clone())
                                        })
                                        .collect(),
                                )
                        })
                        .collect(),
                ),
            )
        }
        _ => unreachable!("cluster_denied is called for cluster_operation's requests"),
    }
}

/// What a KIP-848 member's regular expression may take in: the topics its principal may
/// DESCRIBE, decided against the ACLs of the moment (Kafka filters a resolved regex the same
/// way). `None` without an authorizer.
pub fn topic_filter(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
) -> Option<crate::group::consumer::TopicFilter> {
    broker.authorizer.as_ref()?;
    // weak: the group coordinator, which keeps the filter, belongs to the broker
    let weak = Arc::downgrade(broker);
    let principal = ctx.session.principal.clone();
    let host: Arc<str> = Arc::from(ctx.client_host.trim_start_matches('/'));
    Some(crate::group::consumer::TopicFilter(Arc::new(
        move |topic: &str| {
            let Some(broker) = weak.upgrade() else {
                return false;
            };
            let Some(authorizer) = broker.authorizer.as_ref() else {
                return true;
            };
            let who = Requester {
                principal: &principal,
                host: &host,
            };
            authorizer.authorize(
                &broker.controller.image().acls,
                who,
                Operation::Describe,
                ResourceType::Topic,
                topic,
                "ConsumerGroupHeartbeat",
                false,
            )
        },
    )))
}

/// The authorization of `request`, before it is handled.
pub fn check<'a>(broker: &'a Broker, ctx: &'a RequestContext, request: Request) -> Checked<'a> {
    let Some(authorizer) = broker.authorizer.as_ref() else {
        return Checked::Handle(request, None);
    };
    let who = Requester {
        principal: &ctx.session.principal,
        host: ctx.client_host.trim_start_matches('/'),
    };
    let access = |api: &'static str| Access {
        authorizer,
        image: broker.controller.image(),
        who,
        api,
    };
    if let Some((api, op)) = cluster_operation(&request) {
        if !access(api).cluster(op) {
            return Checked::Answer(cluster_denied(&request, op, ctx.version));
        }
        return Checked::Handle(request, None);
    }
    use Operation::*;
    match request {
        Request::Produce(r) => produce(access("Produce"), r),
        Request::Fetch(r) => fetch(access("Fetch"), r, ctx.version),
        Request::ListOffsets(mut r) => {
            let a = access("ListOffsets");
            let denied = split(&mut r.topics, |t| a.topic(Describe, &t.name));
            Checked::Handle(
                Request::ListOffsets(r),
                after(move |resp| {
                    use list_offsets_response::*;
                    if let Response::ListOffsets(resp) = resp {
                        resp.topics.extend(denied.into_iter().map(|t| {
                            ListOffsetsTopicResponse::default()
                                .with_name(t.name)
                                .with_partitions(
                                    t.partitions
                                        .iter()
                                        .map(|p| {
                                            ListOffsetsPartitionResponse::default()
                                                .with_partition_index(p.partition_index)
                                                .with_error_code(TOPIC_DENIED)
                                                .with_timestamp(-1)
                                                .with_offset(-1)
                                        })
                                        .collect(),
                                )
                        }));
                    }
                }),
            )
        }
        Request::Metadata(r) => metadata(
            access("Metadata"),
            r,
            ctx.version,
            broker.config.auto_create_topics,
        ),
        Request::DescribeTopicPartitions(mut r) => {
            use describe_topic_partitions_request::TopicRequest;
            use describe_topic_partitions_response::*;
            let a = access("DescribeTopicPartitions");
            if r.topics.is_empty() {
                // every topic: page over those it may describe only (so hidden topics take
                // no room in a page, and the cursor never names one)
                r.topics = a
                    .image
                    .topics
                    .keys()
                    .filter(|n| a.may(Describe, ResourceType::Topic, n))
                    .map(|n| TopicRequest::default().with_name(topic_name(n)))
                    .collect();
                if r.topics.is_empty() {
                    return Checked::Answer(Response::DescribeTopicPartitions(
                        DescribeTopicPartitionsResponse::default(),
                    ));
                }
            }
            let denied = split(&mut r.topics, |t| a.topic(Describe, &t.name));
            // a page answers the denied names from its cursor on, as the allowed ones
            let from = r.cursor.as_ref().map(|c| c.topic_name.to_string());
            let denied: Vec<TopicRequest> = denied
                .into_iter()
                .filter(|t| from.as_deref().is_none_or(|c| t.name.as_str() >= c))
                .collect();
            if r.topics.is_empty() {
                // an emptied list would ask for every topic
                return Checked::Answer(Response::DescribeTopicPartitions(
                    DescribeTopicPartitionsResponse::default()
                        .with_topics(denied.into_iter().map(|t| denied_topic(t.name)).collect()),
                ));
            }
            Checked::Handle(
                Request::DescribeTopicPartitions(r),
                after(move |resp| {
                    if let Response::DescribeTopicPartitions(resp) = resp {
                        for t in &mut resp.topics {
                            if let Some(n) = &t.name {
                                t.topic_authorized_operations = a.ops(ResourceType::Topic, n);
                            }
                        }
                        resp.topics
                            .extend(denied.into_iter().map(|t| denied_topic(t.name)));
                    }
                }),
            )
        }
        Request::OffsetCommit(mut r) => {
            let a = access("OffsetCommit");
            if !a.group(Read, &r.group_id) {
                return Checked::Answer(Response::OffsetCommit(offset_commit_all(
                    &r,
                    GROUP_DENIED,
                )));
            }
            let denied = split(&mut r.topics, |t| match a.name_of(&t.name, &t.topic_id) {
                Some(name) => a.topic(Read, &name),
                None => true,
            });
            Checked::Handle(
                Request::OffsetCommit(r),
                after(move |resp| {
                    if let Response::OffsetCommit(resp) = resp {
                        let denied = OffsetCommitRequest::default().with_topics(denied);
                        resp.topics
                            .extend(offset_commit_all(&denied, TOPIC_DENIED).topics);
                    }
                }),
            )
        }
        Request::OffsetFetch(r) => offset_fetch(access("OffsetFetch"), r, ctx.version),
        Request::FindCoordinator(r) => find_coordinator(access("FindCoordinator"), r, ctx.version),
        Request::JoinGroup(r) => {
            if access("JoinGroup").group(Read, &r.group_id) {
                return Checked::Handle(Request::JoinGroup(r), None);
            }
            let mut resp = JoinGroupResponse::default()
                .with_error_code(GROUP_DENIED)
                .with_generation_id(-1);
            if ctx.version >= 7 {
                resp.protocol_name = None;
            }
            Checked::Answer(Response::JoinGroup(resp))
        }
        Request::SyncGroup(r) => {
            if access("SyncGroup").group(Read, &r.group_id) {
                return Checked::Handle(Request::SyncGroup(r), None);
            }
            Checked::Answer(Response::SyncGroup(
                SyncGroupResponse::default().with_error_code(GROUP_DENIED),
            ))
        }
        Request::Heartbeat(r) => {
            if access("Heartbeat").group(Read, &r.group_id) {
                return Checked::Handle(Request::Heartbeat(r), None);
            }
            Checked::Answer(Response::Heartbeat(
                HeartbeatResponse::default().with_error_code(GROUP_DENIED),
            ))
        }
        Request::LeaveGroup(r) => {
            if access("LeaveGroup").group(Read, &r.group_id) {
                return Checked::Handle(Request::LeaveGroup(r), None);
            }
            Checked::Answer(Response::LeaveGroup(
                LeaveGroupResponse::default().with_error_code(GROUP_DENIED),
            ))
        }
        Request::DescribeGroups(mut r) => {
            let a = access("DescribeGroups");
            let denied = split(&mut r.groups, |g| a.group(Describe, g));
            Checked::Handle(
                Request::DescribeGroups(r),
                after(move |resp| {
                    use describe_groups_response::*;
                    if let Response::DescribeGroups(resp) = resp {
                        for g in &mut resp.groups {
                            if g.error_code == 0 {
                                a.fill(
                                    &mut g.authorized_operations,
                                    ResourceType::Group,
                                    &g.group_id,
                                );
                            }
                        }
                        let mut groups: Vec<DescribedGroup> = denied
                            .into_iter()
                            .map(|g| {
                                DescribedGroup::default()
                                    .with_group_id(g)
                                    .with_error_code(GROUP_DENIED)
                                    .with_authorized_operations(i32::MIN)
                            })
                            .collect();
                        groups.append(&mut resp.groups);
                        resp.groups = groups;
                    }
                }),
            )
        }
        Request::ListGroups(r) => {
            let a = access("ListGroups");
            if a.may(Describe, ResourceType::Cluster, CLUSTER_NAME) {
                return Checked::Handle(Request::ListGroups(r), None);
            }
            Checked::Handle(
                Request::ListGroups(r),
                after(move |resp| {
                    if let Response::ListGroups(resp) = resp {
                        resp.groups
                            .retain(|g| a.may(Describe, ResourceType::Group, &g.group_id));
                    }
                }),
            )
        }
        Request::DeleteGroups(mut r) => {
            let a = access("DeleteGroups");
            let denied = split(&mut r.groups_names, |g| a.group(Delete, g));
            Checked::Handle(
                Request::DeleteGroups(r),
                after(move |resp| {
                    use delete_groups_response::*;
                    if let Response::DeleteGroups(resp) = resp {
                        resp.results.extend(denied.into_iter().map(|g| {
                            DeletableGroupResult::default()
                                .with_group_id(g)
                                .with_error_code(GROUP_DENIED)
                        }));
                    }
                }),
            )
        }
        Request::OffsetDelete(mut r) => {
            let a = access("OffsetDelete");
            if !a.group(Delete, &r.group_id) {
                return Checked::Answer(Response::OffsetDelete(
                    OffsetDeleteResponse::default().with_error_code(GROUP_DENIED),
                ));
            }
            let denied = split(&mut r.topics, |t| a.topic(Read, &t.name));
            Checked::Handle(
                Request::OffsetDelete(r),
                after(move |resp| {
                    use offset_delete_response::*;
                    if let Response::OffsetDelete(resp) = resp {
                        resp.topics.extend(denied.into_iter().map(|t| {
                            OffsetDeleteResponseTopic::default()
                                .with_name(t.name)
                                .with_partitions(
                                    t.partitions
                                        .iter()
                                        .map(|p| {
                                            OffsetDeleteResponsePartition::default()
                                                .with_partition_index(p.partition_index)
                                                .with_error_code(TOPIC_DENIED)
                                        })
                                        .collect(),
                                )
                        }));
                    }
                }),
            )
        }
        Request::ConsumerGroupHeartbeat(r) => {
            let a = access("ConsumerGroupHeartbeat");
            let denied = if !a.group(Read, &r.group_id) {
                Some(GROUP_DENIED)
            } else if r
                .subscribed_topic_names
                .iter()
                .flatten()
                .collect::<BTreeSet<_>>()
                .into_iter()
                .any(|t| !a.topic(Describe, t))
            {
                Some(TOPIC_DENIED)
            } else {
                None
            };
            match denied {
                None => Checked::Handle(Request::ConsumerGroupHeartbeat(r), None),
                Some(c) => Checked::Answer(Response::ConsumerGroupHeartbeat(
                    ConsumerGroupHeartbeatResponse::default().with_error_code(c),
                )),
            }
        }
        Request::ConsumerGroupDescribe(mut r) => {
            let a = access("ConsumerGroupDescribe");
            let denied = split(&mut r.group_ids, |g| a.group(Describe, g));
            Checked::Handle(
                Request::ConsumerGroupDescribe(r),
                after(move |resp| {
                    use consumer_group_describe_response::*;
                    if let Response::ConsumerGroupDescribe(resp) = resp {
                        for g in &mut resp.groups {
                            if g.error_code != 0 {
                                continue;
                            }
                            let hidden = g.members.iter().any(|m| {
                                m.assignment
                                    .topic_partitions
                                    .iter()
                                    .chain(&m.target_assignment.topic_partitions)
                                    .any(|t| !a.topic(Describe, &t.topic_name))
                            });
                            if hidden {
                                *g = DescribedGroup::default()
                                    .with_group_id(g.group_id.clone())
                                    .with_error_code(TOPIC_DENIED)
                                    .with_error_message(Some(str("The group has described topic(s) that the client is not authorized to describe.")));
                                continue;
                            }
                            a.fill(
                                &mut g.authorized_operations,
                                ResourceType::Group,
                                &g.group_id,
                            );
                        }
                        let mut groups: Vec<DescribedGroup> = denied
                            .into_iter()
                            .map(|g| {
                                DescribedGroup::default()
                                    .with_group_id(g)
                                    .with_error_code(GROUP_DENIED)
                            })
                            .collect();
                        groups.append(&mut resp.groups);
                        resp.groups = groups;
                    }
                }),
            )
        }
        Request::CreateTopics(r) => create_topics(access("CreateTopics"), r),
        Request::DeleteTopics(r) => delete_topics(access("DeleteTopics"), r, ctx.version),
        Request::CreatePartitions(mut r) => {
            let a = access("CreatePartitions");
            let denied = split(&mut r.topics, |t| a.topic(Alter, &t.name));
            Checked::Handle(
                Request::CreatePartitions(r),
                after(move |resp| {
                    use create_partitions_response::*;
                    if let Response::CreatePartitions(resp) = resp {
                        resp.results.extend(denied.into_iter().map(|t| {
                            CreatePartitionsTopicResult::default()
                                .with_name(t.name)
                                .with_error_code(TOPIC_DENIED)
                        }));
                    }
                }),
            )
        }
        Request::DeleteRecords(mut r) => {
            let a = access("DeleteRecords");
            let denied = split(&mut r.topics, |t| a.topic(Delete, &t.name));
            Checked::Handle(
                Request::DeleteRecords(r),
                after(move |resp| {
                    use delete_records_response::*;
                    if let Response::DeleteRecords(resp) = resp {
                        resp.topics.extend(denied.into_iter().map(|t| {
                            DeleteRecordsTopicResult::default()
                                .with_name(t.name)
                                .with_partitions(
                                    t.partitions
                                        .iter()
                                        .map(|p| {
                                            DeleteRecordsPartitionResult::default()
                                                .with_partition_index(p.partition_index)
                                                .with_low_watermark(-1)
                                                .with_error_code(TOPIC_DENIED)
                                        })
                                        .collect(),
                                )
                        }));
                    }
                }),
            )
        }
        Request::DescribeConfigs(mut r) => {
            let a = access("DescribeConfigs");
            let denied = split(&mut r.resources, |res| {
                config_allowed(&a, DescribeConfigs, res.resource_type, &res.resource_name)
            });
            Checked::Handle(
                Request::DescribeConfigs(r),
                after(move |resp| {
                    use describe_configs_response::*;
                    if let Response::DescribeConfigs(resp) = resp {
                        resp.results.extend(denied.into_iter().map(|res| {
                            let (c, m) = config_denial(res.resource_type);
                            DescribeConfigsResult::default()
                                .with_resource_type(res.resource_type)
                                .with_resource_name(res.resource_name)
                                .with_error_code(c)
                                .with_error_message(Some(str(m)))
                        }));
                    }
                }),
            )
        }
        Request::AlterConfigs(mut r) => {
            let a = access("AlterConfigs");
            let denied: Vec<(i8, StrBytes)> = split(&mut r.resources, |res| {
                config_allowed(&a, AlterConfigs, res.resource_type, &res.resource_name)
            })
            .into_iter()
            .map(|res| (res.resource_type, res.resource_name))
            .collect();
            Checked::Handle(
                Request::AlterConfigs(r),
                after(move |resp| {
                    if let Response::AlterConfigs(resp) = resp {
                        resp.responses
                            .extend(configs_denied(denied).map(|(rt, name, c, m)| {
                                alter_configs_response::AlterConfigsResourceResponse::default()
                                    .with_resource_type(rt)
                                    .with_resource_name(name)
                                    .with_error_code(c)
                                    .with_error_message(Some(m))
                            }));
                    }
                }),
            )
        }
        Request::IncrementalAlterConfigs(mut r) => {
            let a = access("IncrementalAlterConfigs");
            let denied: Vec<(i8, StrBytes)> = split(&mut r.resources, |res| {
                config_allowed(&a, AlterConfigs, res.resource_type, &res.resource_name)
            })
            .into_iter()
            .map(|res| (res.resource_type, res.resource_name))
            .collect();
            Checked::Handle(
                Request::IncrementalAlterConfigs(r),
                after(move |resp| {
                    if let Response::IncrementalAlterConfigs(resp) = resp {
                        resp.responses.extend(configs_denied(denied).map(|(rt, name, c, m)| {
                            incremental_alter_configs_response::AlterConfigsResourceResponse::default()
                                .with_resource_type(rt)
                                .with_resource_name(name)
                                .with_error_code(c)
                                .with_error_message(Some(m))
                        }));
                    }
                }),
            )
        }
        Request::InitProducerId(r) => {
            let a = access("InitProducerId");
            let (allowed, c) = match &r.transactional_id {
                Some(id) => (a.txn(Write, id), TXN_DENIED),
                None => (
                    a.may(IdempotentWrite, ResourceType::Cluster, CLUSTER_NAME)
                        || a.authorizer.authorize_any(
                            &a.image.acls,
                            a.who,
                            Write,
                            ResourceType::Topic,
                        ),
                    CLUSTER_DENIED,
                ),
            };
            if allowed {
                return Checked::Handle(Request::InitProducerId(r), None);
            }
            if c == CLUSTER_DENIED {
                // logged here: the two checks above do not log (Kafka's order)
                a.cluster(IdempotentWrite);
            }
            Checked::Answer(Response::InitProducerId(
                InitProducerIdResponse::default()
                    .with_error_code(c)
                    .with_producer_id(ProducerId(-1))
                    .with_producer_epoch(-1),
            ))
        }
        Request::AddPartitionsToTxn(r) => {
            add_partitions_to_txn(access("AddPartitionsToTxn"), r, ctx.version)
        }
        Request::AddOffsetsToTxn(r) => {
            let a = access("AddOffsetsToTxn");
            let c = if !a.txn(Write, &r.transactional_id) {
                TXN_DENIED
            } else if !a.group(Read, &r.group_id) {
                GROUP_DENIED
            } else {
                return Checked::Handle(Request::AddOffsetsToTxn(r), None);
            };
            Checked::Answer(Response::AddOffsetsToTxn(
                AddOffsetsToTxnResponse::default().with_error_code(c),
            ))
        }
        Request::TxnOffsetCommit(mut r) => {
            let a = access("TxnOffsetCommit");
            let whole = if !a.txn(Write, &r.transactional_id) {
                Some(TXN_DENIED)
            } else if !a.group(Read, &r.group_id) {
                Some(GROUP_DENIED)
            } else {
                None
            };
            if let Some(c) = whole {
                return Checked::Answer(Response::TxnOffsetCommit(txn_offset_commit_all(
                    &r.topics, c,
                )));
            }
            let denied = split(&mut r.topics, |t| a.topic(Read, &t.name));
            Checked::Handle(
                Request::TxnOffsetCommit(r),
                after(move |resp| {
                    if let Response::TxnOffsetCommit(resp) = resp {
                        resp.topics
                            .extend(txn_offset_commit_all(&denied, TOPIC_DENIED).topics);
                    }
                }),
            )
        }
        Request::EndTxn(r) => {
            if access("EndTxn").txn(Write, &r.transactional_id) {
                return Checked::Handle(Request::EndTxn(r), None);
            }
            Checked::Answer(Response::EndTxn(
                EndTxnResponse::default().with_error_code(TXN_DENIED),
            ))
        }
        Request::WriteTxnMarkers(r) => {
            let a = access("WriteTxnMarkers");
            if a.may(Alter, ResourceType::Cluster, CLUSTER_NAME) || a.cluster(ClusterAction) {
                return Checked::Handle(Request::WriteTxnMarkers(r), None);
            }
            use write_txn_markers_response::*;
            let markers = r
                .markers
                .iter()
                .map(|m| {
                    WritableTxnMarkerResult::default()
                        .with_producer_id(m.producer_id)
                        .with_topics(
                            m.topics
                                .iter()
                                .map(|t| {
                                    WritableTxnMarkerTopicResult::default()
                                        .with_name(t.name.clone())
                                        .with_partitions(
                                            t.partition_indexes
                                                .iter()
                                                .map(|p| {
                                                    WritableTxnMarkerPartitionResult::default()
                                                        .with_partition_index(*p)
                                                        .with_error_code(CLUSTER_DENIED)
                                                })
                                                .collect(),
                                        )
                                })
                                .collect(),
                        )
                })
                .collect();
            Checked::Answer(Response::WriteTxnMarkers(
                WriteTxnMarkersResponse::default().with_markers(markers),
            ))
        }
        Request::DescribeProducers(mut r) => {
            let a = access("DescribeProducers");
            let denied = split(&mut r.topics, |t| a.topic(Read, &t.name));
            Checked::Handle(
                Request::DescribeProducers(r),
                after(move |resp| {
                    use describe_producers_response::*;
                    if let Response::DescribeProducers(resp) = resp {
                        resp.topics.extend(denied.into_iter().map(|t| {
                            TopicResponse::default().with_name(t.name).with_partitions(
                                t.partition_indexes
                                    .iter()
                                    .map(|p| {
                                        PartitionResponse::default()
                                            .with_partition_index(*p)
                                            .with_error_code(TOPIC_DENIED)
                                            .with_error_message(Some(str(
                                                "Topic authorization failed.",
                                            )))
                                    })
                                    .collect(),
                            )
                        }));
                    }
                }),
            )
        }
        Request::DescribeTransactions(mut r) => {
            let a = access("DescribeTransactions");
            let denied = split(&mut r.transactional_ids, |id| a.txn(Describe, id));
            Checked::Handle(
                Request::DescribeTransactions(r),
                after(move |resp| {
                    use describe_transactions_response::*;
                    if let Response::DescribeTransactions(resp) = resp {
                        for s in &mut resp.transaction_states {
                            s.topics
                                .retain(|t| a.may(Describe, ResourceType::Topic, &t.topic));
                        }
                        resp.transaction_states.extend(denied.into_iter().map(|id| {
                            TransactionState::default()
                                .with_transactional_id(id)
                                .with_error_code(TXN_DENIED)
                        }));
                    }
                }),
            )
        }
        Request::ListTransactions(r) => {
            let a = access("ListTransactions");
            Checked::Handle(
                Request::ListTransactions(r),
                after(move |resp| {
                    if let Response::ListTransactions(resp) = resp {
                        resp.transaction_states.retain(|s| {
                            a.can(Describe, ResourceType::TransactionalId, &s.transactional_id)
                        });
                    }
                }),
            )
        }
        Request::OffsetForLeaderEpoch(mut r) => {
            let a = access("OffsetForLeaderEpoch");
            if a.may(ClusterAction, ResourceType::Cluster, CLUSTER_NAME) {
                return Checked::Handle(Request::OffsetForLeaderEpoch(r), None);
            }
            let denied = split(&mut r.topics, |t| a.topic(Describe, &t.topic));
            Checked::Handle(
                Request::OffsetForLeaderEpoch(r),
                after(move |resp| {
                    use offset_for_leader_epoch_response::*;
                    if let Response::OffsetForLeaderEpoch(resp) = resp {
                        resp.topics.extend(denied.into_iter().map(|t| {
                            OffsetForLeaderTopicResult::default()
                                .with_topic(t.topic)
                                .with_partitions(
                                    t.partitions
                                        .iter()
                                        .map(|p| {
                                            EpochEndOffset::default()
                                                .with_partition(p.partition)
                                                .with_error_code(TOPIC_DENIED)
                                                .with_leader_epoch(-1)
                                                .with_end_offset(-1)
                                        })
                                        .collect(),
                                )
                        }));
                    }
                }),
            )
        }
        Request::DescribeCluster(r) => {
            let a = access("DescribeCluster");
            Checked::Handle(
                Request::DescribeCluster(r),
                after(move |resp| {
                    if let Response::DescribeCluster(resp) = resp {
                        if resp.cluster_authorized_operations != i32::MIN {
                            resp.cluster_authorized_operations =
                                if a.may(Describe, ResourceType::Cluster, CLUSTER_NAME) {
                                    a.ops(ResourceType::Cluster, CLUSTER_NAME)
                                } else {
                                    0
                                };
                        }
                    }
                }),
            )
        }
        // ApiVersions and the SASL requests need no authorization
        other => Checked::Handle(other, None),
    }
}

fn produce(a: Access<'_>, mut r: ProduceRequest) -> Checked<'_> {
    // transactional batches need WRITE on the request's transactional id (and an id)
    let transactional = r
        .topic_data
        .iter()
        .flat_map(|t| &t.partition_data)
        .any(|p| super::produce::transactional_producer(p.records.as_deref()).is_some());
    if transactional {
        let allowed = r
            .transactional_id
            .as_ref()
            .is_some_and(|id| a.txn(Operation::Write, id));
        if !allowed && r.acks == 0 {
            return Checked::Close(
                "a produce with acks=0 was denied WRITE on its transactional id".into(),
            );
        }
        if !allowed {
            use produce_response::*;
            let responses = r
                .topic_data
                .iter()
                .map(|t| {
                    TopicProduceResponse::default()
                        .with_name(t.name.clone())
                        .with_topic_id(t.topic_id)
                        .with_partition_responses(
                            t.partition_data
                                .iter()
                                .map(|p| {
                                    PartitionProduceResponse::default()
                                        .with_index(p.index)
                                        .with_error_code(TXN_DENIED)
                                        .with_base_offset(-1)
                                        .with_log_append_time_ms(-1)
                                        .with_log_start_offset(-1)
                                })
                                .collect(),
                        )
                })
                .collect();
            return Checked::Answer(Response::Produce(
                ProduceResponse::default().with_responses(responses),
            ));
        }
    }
    let denied = split(&mut r.topic_data, |t| {
        match a.name_of(&t.name, &t.topic_id) {
            Some(name) => a.topic(Operation::Write, &name),
            // an unknown topic id: the handler answers UNKNOWN_TOPIC_ID
            None => true,
        }
    });
    if r.acks == 0 && !denied.is_empty() {
        let names: Vec<String> = denied.iter().map(|t| t.name.to_string()).collect();
        return Checked::HandleThenClose(
            Request::Produce(r),
            format!(
                "a produce with acks=0 was denied WRITE on {}",
                names.join(", ")
            ),
        );
    }
    Checked::Handle(
        Request::Produce(r),
        after(move |resp| {
            use produce_response::*;
            if let Response::Produce(resp) = resp {
                resp.responses.extend(denied.into_iter().map(|t| {
                    TopicProduceResponse::default()
                        .with_name(t.name)
                        .with_topic_id(t.topic_id)
                        .with_partition_responses(
                            t.partition_data
                                .iter()
                                .map(|p| {
                                    PartitionProduceResponse::default()
                                        .with_index(p.index)
                                        .with_error_code(TOPIC_DENIED)
                                        .with_base_offset(-1)
                                        .with_log_append_time_ms(-1)
                                        .with_log_start_offset(-1)
                                })
                                .collect(),
                        )
                }));
            }
        }),
    )
}

/// A DescribeTopicPartitions answer for a topic it may not describe.
fn denied_topic(
    name: TopicName,
) -> describe_topic_partitions_response::DescribeTopicPartitionsResponseTopic {
    describe_topic_partitions_response::DescribeTopicPartitionsResponseTopic::default()
        .with_name(Some(name))
        .with_error_code(TOPIC_DENIED)
}

/// A fetch response entry for each partition of `topics`, with error `c`.
fn fetch_errors(
    topics: Vec<fetch_request::FetchTopic>,
    c: i16,
) -> Vec<fetch_response::FetchableTopicResponse> {
    use fetch_response::*;
    topics
        .into_iter()
        .map(|t| {
            FetchableTopicResponse::default()
                .with_topic(t.topic)
                .with_topic_id(t.topic_id)
                .with_partitions(
                    t.partitions
                        .iter()
                        .map(|p| {
                            PartitionData::default()
                                .with_partition_index(p.partition)
                                .with_error_code(c)
                                .with_high_watermark(-1)
                                .with_last_stable_offset(-1)
                                .with_log_start_offset(-1)
                        })
                        .collect(),
                )
        })
        .collect()
}

fn fetch(a: Access<'_>, mut r: FetchRequest, version: i16) -> Checked<'_> {
    let replica = if version >= 15 {
        r.replica_state.replica_id.0
    } else {
        r.replica_id.0
    };
    if replica >= 0 {
        if a.cluster(Operation::ClusterAction) {
            return Checked::Handle(Request::Fetch(r), None);
        }
        // Kafka answers TOPIC_AUTHORIZATION_FAILED on every partition of a follower denied
        let responses = fetch_errors(std::mem::take(&mut r.topics), TOPIC_DENIED);
        let files = responses
            .iter()
            .flat_map(|t| t.partitions.iter().map(|_| None))
            .collect();
        return Checked::Answer(Response::Fetch(
            FetchResponse::default().with_responses(responses),
            files,
        ));
    }
    // Every partition stays in the request, so that a fetch session holds the denied ones as
    // Kafka's does (the client counts them in it; once READ is granted they are served). READ
    // is checked on every topic of the response, which for an incremental fetch includes the
    // session's partitions the request does not list: a removed ACL takes effect at once.
    Checked::Handle(
        Request::Fetch(r),
        after(move |resp| {
            let Response::Fetch(resp, files) = resp else {
                return;
            };
            let mut index = 0;
            for t in &mut resp.responses {
                let n = t.partitions.len();
                // an unknown topic id keeps the handler's UNKNOWN_TOPIC_ID
                let denied = a
                    .name_of(&t.topic, &t.topic_id)
                    .is_some_and(|name| !a.topic(Operation::Read, &name));
                if denied {
                    for (i, p) in t.partitions.iter_mut().enumerate() {
                        *p = fetch_response::PartitionData::default()
                            .with_partition_index(p.partition_index)
                            .with_error_code(TOPIC_DENIED)
                            .with_high_watermark(-1)
                            .with_last_stable_offset(-1)
                            .with_log_start_offset(-1);
                        if let Some(file) = files.get_mut(index + i) {
                            *file = None;
                        }
                    }
                }
                index += n;
            }
        }),
    )
}

fn metadata(a: Access<'_>, mut r: MetadataRequest, version: i16, auto_create: bool) -> Checked<'_> {
    use metadata_response::*;
    use Operation::*;
    let all = match &r.topics {
        None => true,
        Some(t) => t.is_empty() && version == 0,
    };
    // named topics: take out those the principal may not describe, and unknown ones it may
    // not create when the request would create them
    let mut denied: Vec<MetadataResponseTopic> = Vec::new();
    let named = !all;
    if let Some(topics) = r.topics.as_mut().filter(|_| !all) {
        let may_create = a.may(Create, ResourceType::Cluster, CLUSTER_NAME);
        // name -> kept; a name asked twice is decided (and answered) once, as Kafka answers
        // a set
        let mut decided: std::collections::BTreeMap<String, bool> = Default::default();
        // the denied ones are answered from `denied`
        let _ = split(topics, |t| {
            let by_id = t.name.as_ref().is_none_or(|n| n.is_empty()) && !t.topic_id.is_nil();
            let Some(name) = (if by_id {
                a.image.ids.get(&t.topic_id).cloned()
            } else {
                t.name.as_ref().map(|n| n.to_string())
            }) else {
                return true; // an unknown id: the handler answers UNKNOWN_TOPIC_ID
            };
            if let Some(kept) = decided.get(&name) {
                return *kept;
            }
            decided.insert(name.clone(), false);
            if !a.topic(Describe, &name) {
                denied.push(if by_id {
                    // by id (v12+): the name is null
                    MetadataResponseTopic::default()
                        .with_name(None)
                        .with_topic_id(t.topic_id)
                        .with_error_code(TOPIC_DENIED)
                } else {
                    MetadataResponseTopic::default()
                        .with_name(Some(topic_name(&name)))
                        .with_error_code(TOPIC_DENIED)
                });
                return false;
            }
            let creates = auto_create
                && a.image.topic(&name).is_none()
                && (version < 4 || r.allow_auto_topic_creation);
            if creates && !may_create && !a.topic(Create, &name) {
                denied.push(
                    MetadataResponseTopic::default()
                        .with_name(Some(topic_name(&name)))
                        .with_error_code(TOPIC_DENIED)
                        .with_is_internal(INTERNAL_TOPICS.contains(&name.as_str())),
                );
                return false;
            }
            decided.insert(name, true);
            true
        });
    }
    let include_ops = r.include_topic_authorized_operations && version >= 8;
    // every named topic denied: an empty v0 list asks for every topic, whose answer is
    // dropped below (v1+ asks for none)
    let nothing_left = named && r.topics.as_ref().is_some_and(|t| t.is_empty());
    Checked::Handle(
        Request::Metadata(r),
        after(move |resp| {
            if let Response::Metadata(resp) = resp {
                if !named {
                    // every topic: those it may not describe are left out
                    resp.topics.retain(|t| {
                        t.name
                            .as_ref()
                            .is_none_or(|n| a.may(Describe, ResourceType::Topic, n))
                    });
                } else if nothing_left {
                    // what an emptied v0 list asked for
                    resp.topics.clear();
                }
                if include_ops {
                    for t in resp.topics.iter_mut().filter(|t| t.error_code == 0) {
                        if let Some(n) = &t.name {
                            t.topic_authorized_operations = a.ops(ResourceType::Topic, n);
                        }
                    }
                }
                if resp.cluster_authorized_operations != i32::MIN {
                    resp.cluster_authorized_operations =
                        if a.may(Describe, ResourceType::Cluster, CLUSTER_NAME) {
                            a.ops(ResourceType::Cluster, CLUSTER_NAME)
                        } else {
                            0
                        };
                }
                resp.topics.extend(denied);
            }
        }),
    )
}

/// An OffsetCommit response with error `c` on every partition of `r`.
fn offset_commit_all(r: &OffsetCommitRequest, c: i16) -> OffsetCommitResponse {
    use offset_commit_response::*;
    OffsetCommitResponse::default().with_topics(
        r.topics
            .iter()
            .map(|t| {
                OffsetCommitResponseTopic::default()
                    .with_name(t.name.clone())
                    .with_topic_id(t.topic_id)
                    .with_partitions(
                        t.partitions
                            .iter()
                            .map(|p| {
                                OffsetCommitResponsePartition::default()
                                    .with_partition_index(p.partition_index)
                                    .with_error_code(c)
                            })
                            .collect(),
                    )
            })
            .collect(),
    )
}

fn txn_offset_commit_all(
    topics: &[txn_offset_commit_request::TxnOffsetCommitRequestTopic],
    c: i16,
) -> TxnOffsetCommitResponse {
    use txn_offset_commit_response::*;
    TxnOffsetCommitResponse::default().with_topics(
        topics
            .iter()
            .map(|t| {
                TxnOffsetCommitResponseTopic::default()
                    .with_name(t.name.clone())
                    .with_partitions(
                        t.partitions
                            .iter()
                            .map(|p| {
                                TxnOffsetCommitResponsePartition::default()
                                    .with_partition_index(p.partition_index)
                                    .with_error_code(c)
                            })
                            .collect(),
                    )
            })
            .collect(),
    )
}

fn offset_fetch(a: Access<'_>, r: OffsetFetchRequest, version: i16) -> Checked<'_> {
    use Operation::*;
    // v0-7 name one group; v8+ a list of them, each checked on its own
    let groups: Vec<String> = if version < 8 {
        vec![r.group_id.to_string()]
    } else {
        r.groups.iter().map(|g| g.group_id.to_string()).collect()
    };
    let denied_groups: BTreeSet<String> = groups
        .into_iter()
        .filter(|g| !a.group(Describe, g))
        .collect();
    if version < 8 && !denied_groups.is_empty() {
        use offset_fetch_response::*;
        let mut resp = OffsetFetchResponse::default();
        if version >= 2 {
            resp.error_code = GROUP_DENIED;
        } else {
            resp.topics = r
                .topics
                .iter()
                .flatten()
                .map(|t| {
                    OffsetFetchResponseTopic::default()
                        .with_name(t.name.clone())
                        .with_partitions(
                            t.partition_indexes
                                .iter()
                                .map(|p| {
                                    OffsetFetchResponsePartition::default()
                                        .with_partition_index(*p)
                                        .with_committed_offset(-1)
                                        .with_committed_leader_epoch(-1)
                                        .with_metadata(Some(str("")))
                                        .with_error_code(GROUP_DENIED)
                                })
                                .collect(),
                        )
                })
                .collect();
        }
        return Checked::Answer(Response::OffsetFetch(resp));
    }
    // per group (v0-7: the one group): whether it names its topics (else: all topics)
    let named: Vec<bool> = if version < 8 {
        vec![r.topics.is_some()]
    } else {
        r.groups.iter().map(|g| g.topics.is_some()).collect()
    };
    Checked::Handle(
        Request::OffsetFetch(r),
        after(move |resp| {
            let Response::OffsetFetch(resp) = resp else {
                return;
            };
            // the committed offsets of topics it may not describe are left out of an
            // all-topics answer and answered TOPIC_AUTHORIZATION_FAILED when named (both
            // logged, as in Kafka)
            let topic_ok = |name: &str| a.can(Describe, ResourceType::Topic, name);
            if version < 8 {
                if named[0] {
                    for t in resp.topics.iter_mut().filter(|t| !topic_ok(&t.name)) {
                        for p in &mut t.partitions {
                            p.committed_offset = -1;
                            p.committed_leader_epoch = -1;
                            p.metadata = Some(str(""));
                            p.error_code = TOPIC_DENIED;
                        }
                    }
                } else {
                    resp.topics.retain(|t| topic_ok(&t.name));
                }
                return;
            }
            for (g, named) in resp.groups.iter_mut().zip(named) {
                if denied_groups.contains(g.group_id.as_str()) {
                    g.topics.clear();
                    g.error_code = GROUP_DENIED;
                } else if named {
                    for t in g.topics.iter_mut().filter(|t| !topic_ok(&t.name)) {
                        for p in &mut t.partitions {
                            p.committed_offset = -1;
                            p.committed_leader_epoch = -1;
                            p.metadata = Some(str(""));
                            p.error_code = TOPIC_DENIED;
                        }
                    }
                } else {
                    g.topics.retain(|t| topic_ok(&t.name));
                }
            }
        }),
    )
}

fn find_coordinator(a: Access<'_>, mut r: FindCoordinatorRequest, version: i16) -> Checked<'_> {
    let txn = r.key_type == 1;
    let allowed = |key: &str| {
        if txn {
            a.txn(Operation::Describe, key)
        } else {
            a.group(Operation::Describe, key)
        }
    };
    let c = if txn { TXN_DENIED } else { GROUP_DENIED };
    let message = if txn {
        "Transactional Id authorization failed."
    } else {
        "Group authorization failed."
    };
    if version < 4 {
        if allowed(&r.key) {
            return Checked::Handle(Request::FindCoordinator(r), None);
        }
        return Checked::Answer(Response::FindCoordinator(
            FindCoordinatorResponse::default()
                .with_error_code(c)
                .with_error_message(Some(str(message)))
                .with_node_id(BrokerId(-1))
                .with_host(str(""))
                .with_port(-1),
        ));
    }
    let denied = split(&mut r.coordinator_keys, |k| allowed(k));
    Checked::Handle(
        Request::FindCoordinator(r),
        after(move |resp| {
            use find_coordinator_response::*;
            if let Response::FindCoordinator(resp) = resp {
                resp.coordinators.extend(denied.into_iter().map(|key| {
                    Coordinator::default()
                        .with_key(key)
                        .with_error_code(c)
                        .with_error_message(Some(str(message)))
                        .with_node_id(BrokerId(-1))
                        .with_host(str(""))
                        .with_port(-1)
                }));
            }
        }),
    )
}

fn create_topics(a: Access<'_>, mut r: CreateTopicsRequest) -> Checked<'_> {
    use Operation::*;
    let on_cluster = a.may(Create, ResourceType::Cluster, CLUSTER_NAME);
    // a name given twice is left to the handler, which refuses it (Kafka's "Duplicate topic
    // name.") before any authorization
    let mut times: std::collections::BTreeMap<String, usize> = Default::default();
    for t in &r.topics {
        *times.entry(t.name.to_string()).or_default() += 1;
    }
    let denied = split(&mut r.topics, |t| {
        times[t.name.as_str()] > 1 || on_cluster || a.topic(Create, &t.name)
    });
    Checked::Handle(
        Request::CreateTopics(r),
        after(move |resp| {
            use create_topics_response::*;
            if let Response::CreateTopics(resp) = resp {
                for t in resp.topics.iter_mut().filter(|t| t.error_code == 0) {
                    if !a.may(DescribeConfigs, ResourceType::Topic, &t.name) {
                        t.topic_config_error_code = TOPIC_DENIED;
                        t.configs = Some(Vec::new());
                        t.num_partitions = -1;
                        t.replication_factor = -1;
                    }
                }
                resp.topics.extend(denied.into_iter().map(|t| {
                    CreatableTopicResult::default()
                        .with_name(t.name)
                        .with_error_code(TOPIC_DENIED)
                        .with_error_message(Some(str("Authorization failed.")))
                        .with_num_partitions(-1)
                        .with_replication_factor(-1)
                }));
            }
        }),
    )
}

fn delete_topics(a: Access<'_>, mut r: DeleteTopicsRequest, version: i16) -> Checked<'_> {
    use delete_topics_response::*;
    use Operation::*;
    let on_cluster = a.may(Delete, ResourceType::Cluster, CLUSTER_NAME);
    // (may describe, may delete) a topic
    let rights = |name: &str| {
        if on_cluster {
            (true, true)
        } else {
            let describe = a.topic(Describe, name);
            (describe, describe && a.topic(Delete, name))
        }
    };
    // kept for the handler: what it may delete, and unknown topics it may describe (the
    // handler says they are unknown); an existing topic it may not describe gets the same
    // TOPIC_AUTHORIZATION_FAILED as one it may not delete
    let keep = |name: &str| {
        let (describe, delete) = rights(name);
        delete || (describe && a.image.topic(name).is_none())
    };
    let mut denied: Vec<DeletableTopicResult> = Vec::new();
    if version < 6 {
        let names = split(&mut r.topic_names, |n| keep(n));
        denied.extend(names.into_iter().map(|n| {
            DeletableTopicResult::default()
                .with_name(Some(n))
                .with_error_code(TOPIC_DENIED)
        }));
    } else {
        let name_of = |t: &delete_topics_request::DeleteTopicState| match &t.name {
            Some(n) if !n.is_empty() => Some(n.to_string()),
            _ => a.image.ids.get(&t.topic_id).cloned(),
        };
        // an unknown id: the handler answers UNKNOWN_TOPIC_ID
        let states = split(&mut r.topics, |t| name_of(t).is_none_or(|n| keep(&n)));
        denied.extend(states.into_iter().map(|t| {
            let name = name_of(&t);
            let describable = name
                .as_deref()
                .is_some_and(|n| a.may(Describe, ResourceType::Topic, n) || on_cluster);
            DeletableTopicResult::default()
                .with_name(name.filter(|_| describable).map(|n| topic_name(&n)))
                .with_topic_id(t.topic_id)
                .with_error_code(TOPIC_DENIED)
                .with_error_message(Some(str("Topic authorization failed.")))
        }));
    }
    Checked::Handle(
        Request::DeleteTopics(r),
        after(move |resp| {
            if let Response::DeleteTopics(resp) = resp {
                resp.responses.extend(denied);
            }
        }),
    )
}

/// Whether the principal may do `op` on the resource a config request names: a topic's
/// configs are the topic's, a group's the group's, the brokers', loggers' and client metrics'
/// the cluster's. Types ferrolog does not know are let through for the handler to refuse.
fn config_allowed(a: &Access<'_>, op: Operation, resource_type: i8, name: &str) -> bool {
    match resource_type {
        2 => a.topic(op, name),
        4 | 8 | 16 => a.cluster(op),
        32 => a.group(op, name),
        _ => true,
    }
}

/// The error code and Kafka's message of a denied config resource.
fn config_denial(resource_type: i8) -> (i16, &'static str) {
    match resource_type {
        2 => (TOPIC_DENIED, "Topic authorization failed."),
        32 => (GROUP_DENIED, "Group authorization failed."),
        _ => (CLUSTER_DENIED, "Cluster authorization failed."),
    }
}

/// The (resource type, name, error code, message) of each denied config resource.
fn configs_denied(
    denied: Vec<(i8, StrBytes)>,
) -> impl Iterator<Item = (i8, StrBytes, i16, StrBytes)> {
    denied.into_iter().map(|(rt, name)| {
        let (c, m) = config_denial(rt);
        (rt, name, c, str(m))
    })
}

fn add_partitions_to_txn(a: Access<'_>, r: AddPartitionsToTxnRequest, version: i16) -> Checked<'_> {
    use add_partitions_to_txn_response::*;
    use Operation::*;
    if version >= 4 {
        // sent by brokers verifying a transaction
        if a.cluster(ClusterAction) {
            return Checked::Handle(Request::AddPartitionsToTxn(r), None);
        }
        return Checked::Answer(Response::AddPartitionsToTxn(
            AddPartitionsToTxnResponse::default().with_error_code(CLUSTER_DENIED),
        ));
    }
    let (id, topics): (String, Vec<(TopicName, Vec<i32>)>) = (
        r.v3_and_below_transactional_id.to_string(),
        r.v3_and_below_topics
            .iter()
            .map(|t| (t.name.clone(), t.partitions.clone()))
            .collect(),
    );
    // the code of each partition, if the request is refused
    type CodeOf<'a> = Box<dyn Fn(&str, i32) -> i16 + 'a>;
    let code_of: CodeOf = if !a.txn(Write, &id) {
        Box::new(|_, _| TXN_DENIED)
    } else {
        let denied: BTreeSet<String> = topics
            .iter()
            .map(|(n, _)| n.to_string())
            .filter(|n| {
                // Kafka never lets a client add an internal topic to a transaction
                INTERNAL_TOPICS.contains(&n.as_str()) || !a.topic(Write, n)
            })
            .collect();
        if denied.is_empty() {
            return Checked::Handle(Request::AddPartitionsToTxn(r), None);
        }
        // a denied topic fails the request: the others are not attempted, unknown ones are
        // said to be unknown
        let image = a.image.clone();
        Box::new(move |topic, partition| {
            if denied.contains(topic) {
                TOPIC_DENIED
            } else if image
                .topic(topic)
                .is_none_or(|t| partition < 0 || partition >= t.partitions)
            {
                ResponseError::UnknownTopicOrPartition.code()
            } else {
                ResponseError::OperationNotAttempted.code()
            }
        })
    };
    let results = topics
        .into_iter()
        .map(|(name, partitions)| {
            AddPartitionsToTxnTopicResult::default()
                .with_results_by_partition(
                    partitions
                        .into_iter()
                        .map(|p| {
                            AddPartitionsToTxnPartitionResult::default()
                                .with_partition_index(p)
                                .with_partition_error_code(code_of(&name, p))
                        })
                        .collect(),
                )
                .with_name(name)
        })
        .collect();
    Checked::Answer(Response::AddPartitionsToTxn(
        AddPartitionsToTxnResponse::default().with_results_by_topic_v3_and_below(results),
    ))
}
