//! The authorizer through the real binary, API by API, on the paths real clients seldom take:
//! the error codes and messages of denied admin requests, the authorized-operations fields, the
//! configs CreateTopics hides without DESCRIBE_CONFIGS, and DeleteAcls listing an ACL under
//! every filter that matches it. (The client paths, with librdkafka, kafka-python, the Java
//! client and kafka-acls.sh, are in interop/python/test_acls.py.)

mod common;

use ferrolog_client::kafka_protocol::messages::*;
use ferrolog_client::sasl::{Credentials, Mechanism};
use ferrolog_client::{str, topic_name, Connection, Security};

const JAAS: &str = "listener.name.sasl_plaintext.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required username=\"admin\" password=\"admin-secret\" user_admin=\"admin-secret\" user_alice=\"alice-secret\";";

fn start() -> common::Server {
    common::Server::start(&[
        "listeners=SASL_PLAINTEXT://127.0.0.1:0,CONTROLLER://127.0.0.1:0",
        "sasl.enabled.mechanisms=PLAIN",
        "sasl.mechanism.inter.broker.protocol=PLAIN",
        JAAS,
        "authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer",
        "super.users=User:admin",
    ])
}

async fn connect(addr: &str, user: &str) -> Connection {
    let security = Security {
        tls: None,
        sasl: Some(Credentials::password(
            Mechanism::Plain,
            user,
            &format!("{user}-secret"),
        )),
    };
    Connection::connect_with(addr, &security).await.unwrap()
}

fn acl(
    resource_type: i8,
    name: &str,
    pattern: i8,
    principal: &str,
    operation: i8,
    permission: i8,
) -> create_acls_request::AclCreation {
    create_acls_request::AclCreation::default()
        .with_resource_type(resource_type)
        .with_resource_name(str(name))
        .with_resource_pattern_type(pattern)
        .with_principal(str(principal))
        .with_host(str("*"))
        .with_operation(operation)
        .with_permission_type(permission)
}

const TOPIC: i8 = 2;
const CLUSTER: i8 = 4;
const LITERAL: i8 = 3;
const PREFIXED: i8 = 4;
const READ: i8 = 3;
const CREATE: i8 = 5;
const ALLOW: i8 = 3;

/// A DescribeAcls filter that matches every ACL.
fn any_acl() -> DescribeAclsRequest {
    DescribeAclsRequest::default()
        .with_resource_type_filter(1)
        .with_resource_name_filter(None)
        .with_pattern_type_filter(1)
        .with_principal_filter(None)
        .with_host_filter(None)
        .with_operation(1)
        .with_permission_type(1)
}

async fn create_acls(admin: &mut Connection, acls: Vec<create_acls_request::AclCreation>) {
    let r = admin
        .send(&CreateAclsRequest::default().with_creations(acls))
        .await
        .unwrap();
    assert!(r.results.iter().all(|r| r.error_code == 0), "{r:?}");
}

#[test]
fn denied_admin_requests_get_kafkas_error_codes() {
    let server = start();
    common::rt().block_on(async {
        let mut admin = connect(&server.addr(), "admin").await;
        assert_eq!(common::create_topic(&mut admin, "t", 1, &[]).await, 0);
        let mut alice = connect(&server.addr(), "alice").await;
        // CREATE on neither the cluster nor the topic
        let r = alice
            .send(&CreateTopicsRequest::default().with_topics(vec![
                    create_topics_request::CreatableTopic::default()
                        .with_name(topic_name("new"))
                        .with_num_partitions(1)
                        .with_replication_factor(1),
                ]))
            .await
            .unwrap();
        assert_eq!(r.topics[0].error_code, 29);
        assert_eq!(
            r.topics[0].error_message.as_deref(),
            Some("Authorization failed.")
        );
        // a topic it may not describe: TOPIC_AUTHORIZATION_FAILED, its existence not told
        let r = alice
            .send(&DeleteTopicsRequest::default().with_topics(vec![
                delete_topics_request::DeleteTopicState::default().with_name(Some(topic_name("t"))),
            ]))
            .await
            .unwrap();
        assert_eq!(r.responses[0].error_code, 29);
        // configs: the topic's need DESCRIBE_CONFIGS on it, the broker's on the cluster
        let r = alice
            .send(&DescribeConfigsRequest::default().with_resources(vec![
                describe_configs_request::DescribeConfigsResource::default()
                    .with_resource_type(2)
                    .with_resource_name(str("t")),
                describe_configs_request::DescribeConfigsResource::default()
                    .with_resource_type(4)
                    .with_resource_name(str("1")),
            ]))
            .await
            .unwrap();
        let codes: Vec<i16> = r.results.iter().map(|r| r.error_code).collect();
        assert_eq!(codes, [29, 31]);
        assert!(r.results.iter().all(|r| r.configs.is_empty()));
        // cluster operations
        let r = alice
            .send(&DescribeLogDirsRequest::default())
            .await
            .unwrap();
        assert_eq!(r.error_code, 31);
        let r = alice.send(&any_acl()).await.unwrap();
        assert_eq!(r.error_code, 31);
        // an idempotent producer needs IDEMPOTENT_WRITE on the cluster or WRITE on a topic;
        // a transactional one WRITE on its id
        let r = alice
            .send(
                &InitProducerIdRequest::default()
                    .with_transactional_id(None)
                    .with_transaction_timeout_ms(60_000),
            )
            .await
            .unwrap();
        assert_eq!(r.error_code, 31);
        assert_eq!(r.producer_id.0, -1);
        let r = alice
            .send(
                &InitProducerIdRequest::default()
                    .with_transactional_id(Some(TransactionalId(str("tx"))))
                    .with_transaction_timeout_ms(60_000),
            )
            .await
            .unwrap();
        assert_eq!(r.error_code, 53);
        // groups need DESCRIBE to be found
        let r = alice
            .send_version(&FindCoordinatorRequest::default().with_key(str("g")), 3)
            .await
            .unwrap();
        assert_eq!(r.error_code, 30);
        // Metadata for every topic leaves out what it may not describe
        let r = alice.metadata(None, false).await.unwrap();
        assert!(r.topics.is_empty(), "{:?}", r.topics);
    });
}

#[test]
fn authorized_operations_and_create_without_describe_configs() {
    let server = start();
    common::rt().block_on(async {
        let mut admin = connect(&server.addr(), "admin").await;
        assert_eq!(common::create_topic(&mut admin, "t", 1, &[]).await, 0);
        create_acls(
            &mut admin,
            vec![
                acl(TOPIC, "t", LITERAL, "User:alice", READ, ALLOW),
                acl(
                    CLUSTER,
                    "kafka-cluster",
                    LITERAL,
                    "User:alice",
                    CREATE,
                    ALLOW,
                ),
            ],
        )
        .await;
        let mut alice = connect(&server.addr(), "alice").await;
        let r = alice
            .send(
                &MetadataRequest::default()
                    .with_topics(Some(vec![metadata_request::MetadataRequestTopic::default(
                    )
                    .with_name(Some(topic_name("t")))]))
                    .with_include_topic_authorized_operations(true),
            )
            .await
            .unwrap();
        // READ, and the DESCRIBE it implies
        assert_eq!(r.topics[0].error_code, 0);
        assert_eq!(r.topics[0].topic_authorized_operations, (1 << 3) | (1 << 8));
        let r = alice
            .send(
                &DescribeClusterRequest::default().with_include_cluster_authorized_operations(true),
            )
            .await
            .unwrap();
        // CREATE on the cluster, but no DESCRIBE: Kafka answers 0
        assert_eq!(r.cluster_authorized_operations, 0);
        // CREATE on the cluster creates; without DESCRIBE_CONFIGS the configs are hidden
        let r = alice
            .send(&CreateTopicsRequest::default().with_topics(vec![
                    create_topics_request::CreatableTopic::default()
                        .with_name(topic_name("made-by-alice"))
                        .with_num_partitions(2)
                        .with_replication_factor(1),
                ]))
            .await
            .unwrap();
        let t = &r.topics[0];
        assert_eq!((t.error_code, t.topic_config_error_code), (0, 29), "{t:?}");
        assert_eq!(t.num_partitions, -1);
        assert!(t.configs.as_ref().is_none_or(|c| c.is_empty()));
        // the topic exists, for the admin
        let md = admin
            .metadata(Some(&["made-by-alice"]), false)
            .await
            .unwrap();
        assert_eq!(md.topics[0].partitions.len(), 2);
    });
}

#[test]
fn delete_acls_lists_an_acl_under_every_filter_that_matches_it() {
    let server = start();
    common::rt().block_on(async {
        let mut admin = connect(&server.addr(), "admin").await;
        create_acls(
            &mut admin,
            vec![
                acl(TOPIC, "pay-", PREFIXED, "User:alice", READ, ALLOW),
                acl(TOPIC, "other", LITERAL, "User:alice", READ, ALLOW),
            ],
        )
        .await;
        // one ACL twice in a request, and again later: still one ACL
        create_acls(
            &mut admin,
            vec![acl(TOPIC, "other", LITERAL, "User:alice", READ, ALLOW)],
        )
        .await;
        let any = |pattern: i8, name: Option<&str>| {
            delete_acls_request::DeleteAclsFilter::default()
                .with_resource_type_filter(TOPIC)
                .with_resource_name_filter(name.map(str))
                .with_pattern_type_filter(pattern)
                .with_principal_filter(None)
                .with_host_filter(None)
                .with_operation(1)
                .with_permission_type(1)
        };
        let r = admin
            .send(&DeleteAclsRequest::default().with_filters(vec![
                // MATCH pay-in: the prefix applies to it
                any(2, Some("pay-in")),
                // every prefixed ACL
                any(4, None),
                // an unknown pattern type: INVALID_REQUEST for this filter only
                any(9, None),
            ]))
            .await
            .unwrap();
        let listed: Vec<Vec<String>> = r
            .filter_results
            .iter()
            .map(|f| {
                f.matching_acls
                    .iter()
                    .map(|m| m.resource_name.to_string())
                    .collect()
            })
            .collect();
        assert_eq!(
            listed,
            [vec!["pay-".to_string()], vec!["pay-".to_string()], vec![]]
        );
        assert_eq!(r.filter_results[2].error_code, 42);
        let left = admin.send(&any_acl()).await.unwrap();
        let names: Vec<String> = left
            .resources
            .iter()
            .flat_map(|r| r.acls.iter().map(move |_| r.resource_name.to_string()))
            .collect();
        assert_eq!(names, ["other"]);
    });
}

#[test]
fn a_denied_produce_with_acks_0_closes_the_connection() {
    let server = start();
    common::rt().block_on(async {
        let mut admin = connect(&server.addr(), "admin").await;
        assert_eq!(common::create_topic(&mut admin, "t", 1, &[]).await, 0);
        let record = ferrolog_client::record(None, Some(b"x".to_vec().into()), vec![], 0);
        // the super user's acks=0 produce keeps the connection
        admin
            .produce(
                "t",
                0,
                std::slice::from_ref(&record),
                ferrolog_client::kafka_protocol::records::Compression::None,
                0,
            )
            .await
            .unwrap();
        assert!(admin.metadata(None, false).await.is_ok());
        // alice may not write: no answer, and the connection is closed (as Kafka closes it)
        let mut alice = connect(&server.addr(), "alice").await;
        alice
            .produce(
                "t",
                0,
                &[record],
                ferrolog_client::kafka_protocol::records::Compression::None,
                0,
            )
            .await
            .unwrap();
        assert!(alice.metadata(None, false).await.is_err());
        // nothing was written
        let end = admin.list_offset("t", 0, -1).await.unwrap().0;
        assert_eq!(end, 1);
    });
}
