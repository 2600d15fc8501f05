//! Classic consumer group protocol and committed offsets: the error paths, over the wire.

mod common;

use bytes::Bytes;
use common::{create_topic, rt, Server};
use ferrolog_client::kafka_protocol::messages::*;
use ferrolog_client::{str, topic_name, Connection};

fn join(group: &str, member: &str, protocol_type: &str) -> JoinGroupRequest {
    JoinGroupRequest::default()
        .with_group_id(GroupId(str(group)))
        .with_session_timeout_ms(10_000)
        .with_rebalance_timeout_ms(10_000)
        .with_member_id(str(member))
        .with_protocol_type(str(protocol_type))
        .with_protocols(vec![join_group_request::JoinGroupRequestProtocol::default(
        )
        .with_name(str("range"))
        .with_metadata(Bytes::from_static(b"meta"))])
}

fn commit(
    group: &str,
    generation: i32,
    member: &str,
    topic: &str,
    metadata: &str,
) -> OffsetCommitRequest {
    OffsetCommitRequest::default()
        .with_group_id(GroupId(str(group)))
        .with_generation_id_or_member_epoch(generation)
        .with_member_id(str(member))
        .with_topics(vec![
            offset_commit_request::OffsetCommitRequestTopic::default()
                .with_name(topic_name(topic))
                .with_partitions(vec![
                    offset_commit_request::OffsetCommitRequestPartition::default()
                        .with_partition_index(0)
                        .with_committed_offset(7)
                        .with_committed_metadata(Some(str(metadata))),
                ]),
        ])
}

#[test]
fn group_protocol_errors_are_kafkas() {
    let server = Server::start(&["group.initial.rebalance.delay.ms=0"]);
    rt().block_on(async {
        let mut c = Connection::connect(&server.addr()).await.unwrap();
        assert_eq!(create_topic(&mut c, "t", 1, &[]).await, 0);
        let coordinator = c
            .send_version(
                &FindCoordinatorRequest::default()
                    .with_key(str("g"))
                    .with_key_type(0),
                3,
            )
            .await
            .unwrap();
        assert_eq!((coordinator.error_code, coordinator.node_id.0), (0, 1));
        let txn = c
            .send_version(
                &FindCoordinatorRequest::default()
                    .with_key(str("x"))
                    .with_key_type(1),
                3,
            )
            .await
            .unwrap();
        assert_eq!(
            (txn.error_code, txn.node_id.0),
            (0, 1),
            "this node coordinates transactions too"
        );
        let other = c
            .send_version(
                &FindCoordinatorRequest::default()
                    .with_key(str("x"))
                    .with_key_type(7),
                3,
            )
            .await
            .unwrap();
        assert_eq!(
            other.error_code, 42,
            "INVALID_REQUEST for unknown key types"
        );

        // v4+: an unknown member first gets MEMBER_ID_REQUIRED and an id
        let first = c.send_version(&join("g", "", "consumer"), 5).await.unwrap();
        assert_eq!(first.error_code, 79, "MEMBER_ID_REQUIRED");
        let member = first.member_id.to_string();
        assert!(!member.is_empty());
        let joined = c
            .send_version(&join("g", &member, "consumer"), 5)
            .await
            .unwrap();
        assert_eq!(joined.error_code, 0);
        assert_eq!(joined.leader.to_string(), member);
        assert_eq!(joined.members.len(), 1);
        let generation = joined.generation_id;
        let sync = SyncGroupRequest::default()
            .with_group_id(GroupId(str("g")))
            .with_generation_id(generation)
            .with_member_id(str(&member))
            .with_assignments(vec![
                sync_group_request::SyncGroupRequestAssignment::default()
                    .with_member_id(str(&member))
                    .with_assignment(Bytes::from_static(b"assigned")),
            ]);
        let synced = c.send_version(&sync, 3).await.unwrap();
        assert_eq!(
            (synced.error_code, &synced.assignment[..]),
            (0, &b"assigned"[..])
        );

        let heartbeat = |generation: i32, member: &str| {
            HeartbeatRequest::default()
                .with_group_id(GroupId(str("g")))
                .with_generation_id(generation)
                .with_member_id(str(member))
        };
        assert_eq!(
            c.send_version(&heartbeat(generation, &member), 3)
                .await
                .unwrap()
                .error_code,
            0
        );
        assert_eq!(
            c.send_version(&heartbeat(generation + 5, &member), 3)
                .await
                .unwrap()
                .error_code,
            22,
            "ILLEGAL_GENERATION"
        );
        assert_eq!(
            c.send_version(&heartbeat(generation, "nobody"), 3)
                .await
                .unwrap()
                .error_code,
            25,
            "UNKNOWN_MEMBER_ID"
        );
        // another protocol type for the same group
        let other = c.send_version(&join("g", "", "connect"), 3).await.unwrap();
        assert_eq!(other.error_code, 23, "INCONSISTENT_GROUP_PROTOCOL");
        assert_eq!(
            c.send_version(&join("", "", "consumer"), 3)
                .await
                .unwrap()
                .error_code,
            24,
            "INVALID_GROUP_ID"
        );
        let mut short = join("g", &member, "consumer");
        short.session_timeout_ms = 10;
        assert_eq!(
            c.send_version(&short, 5).await.unwrap().error_code,
            26,
            "INVALID_SESSION_TIMEOUT"
        );

        // commits: validated against membership, topics and metadata size
        let code = |r: OffsetCommitResponse| r.topics[0].partitions[0].error_code;
        assert_eq!(
            code(
                c.send_version(&commit("g", generation, &member, "t", "m"), 8)
                    .await
                    .unwrap()
            ),
            0
        );
        assert_eq!(
            code(
                c.send_version(&commit("g", generation + 1, &member, "t", "m"), 8)
                    .await
                    .unwrap()
            ),
            22
        );
        assert_eq!(
            code(
                c.send_version(&commit("g", generation, "nobody", "t", "m"), 8)
                    .await
                    .unwrap()
            ),
            25
        );
        assert_eq!(
            code(
                c.send_version(&commit("g", generation, &member, "nope", "m"), 8)
                    .await
                    .unwrap()
            ),
            3
        );
        let big = "x".repeat(5000);
        assert_eq!(
            code(
                c.send_version(&commit("g", generation, &member, "t", &big), 8)
                    .await
                    .unwrap()
            ),
            12,
            "OFFSET_METADATA_TOO_LARGE"
        );
        let fetched = c
            .send_version(
                &OffsetFetchRequest::default()
                    .with_group_id(GroupId(str("g")))
                    .with_topics(Some(vec![
                        offset_fetch_request::OffsetFetchRequestTopic::default()
                            .with_name(topic_name("t"))
                            .with_partition_indexes(vec![0]),
                    ])),
                7,
            )
            .await
            .unwrap();
        let p = &fetched.topics[0].partitions[0];
        assert_eq!((p.committed_offset, p.metadata.as_deref()), (7, Some("m")));

        // describe, list, leave, delete
        let described = c
            .send_version(
                &DescribeGroupsRequest::default().with_groups(vec![GroupId(str("g"))]),
                5,
            )
            .await
            .unwrap();
        let g = &described.groups[0];
        assert_eq!(
            (
                g.group_state.to_string(),
                g.protocol_data.to_string(),
                g.members.len()
            ),
            ("Stable".into(), "range".into(), 1)
        );
        let listed = c
            .send_version(&ListGroupsRequest::default(), 4)
            .await
            .unwrap();
        assert!(listed
            .groups
            .iter()
            .any(|l| &*l.group_id.0 == "g" && &*l.group_state == "Stable"));
        let delete = DeleteGroupsRequest::default().with_groups_names(vec![GroupId(str("g"))]);
        assert_eq!(
            c.send_version(&delete, 2).await.unwrap().results[0].error_code,
            68,
            "NON_EMPTY_GROUP"
        );
        let leave = LeaveGroupRequest::default()
            .with_group_id(GroupId(str("g")))
            .with_members(vec![
                leave_group_request::MemberIdentity::default().with_member_id(str(&member))
            ]);
        let left = c.send_version(&leave, 4).await.unwrap();
        assert_eq!(left.members[0].error_code, 0);
        assert_eq!(
            c.send_version(&delete, 2).await.unwrap().results[0].error_code,
            0
        );
        let none = c.send_version(&delete, 2).await.unwrap();
        assert_eq!(none.results[0].error_code, 69, "GROUP_ID_NOT_FOUND");
    });
}

/// KIP-345: a static member that restarts within its session gets its place back without a
/// rebalance, and the id it replaced is fenced.
#[test]
fn static_member_restart_skips_the_rebalance_and_fences_the_old_id() {
    let server = Server::start(&["group.initial.rebalance.delay.ms=0"]);
    let addr = server.addr();
    let static_join = |member: &str, instance: &str| {
        let mut request = join("s", member, "consumer");
        request.group_instance_id = Some(str(instance));
        request
    };
    let sync =
        |generation: i32, member: &str, instance: &str, assignments: &[(&str, &'static [u8])]| {
            SyncGroupRequest::default()
                .with_group_id(GroupId(str("s")))
                .with_generation_id(generation)
                .with_member_id(str(member))
                .with_group_instance_id(Some(str(instance)))
                .with_assignments(
                    assignments
                        .iter()
                        .map(|(m, a)| {
                            sync_group_request::SyncGroupRequestAssignment::default()
                                .with_member_id(str(m))
                                .with_assignment(Bytes::from_static(a))
                        })
                        .collect(),
                )
        };
    let heartbeat = |generation: i32, member: &str, instance: &str| {
        HeartbeatRequest::default()
            .with_group_id(GroupId(str("s")))
            .with_generation_id(generation)
            .with_member_id(str(member))
            .with_group_instance_id(Some(str(instance)))
    };
    rt().block_on(async {
        let mut a = Connection::connect(&addr).await.unwrap();
        // A joins alone and leads generation 1
        let ja = a.send_version(&static_join("", "i1"), 5).await.unwrap();
        assert_eq!(ja.error_code, 0);
        let a_id = ja.member_id.to_string();
        a.send_version(&sync(ja.generation_id, &a_id, "i1", &[(&a_id, b"all")]), 3)
            .await
            .unwrap();
        // B joins; A learns of the rebalance from its heartbeat and rejoins
        let b_join = tokio::spawn({
            let addr = addr.clone();
            let request = static_join("", "i2");
            async move {
                let mut b2 = Connection::connect(&addr).await.unwrap();
                (b2.send_version(&request, 5).await.unwrap(), b2)
            }
        });
        let mut code = 0;
        for _ in 0..100 {
            code = a
                .send_version(&heartbeat(ja.generation_id, &a_id, "i1"), 3)
                .await
                .unwrap()
                .error_code;
            if code == 27 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        assert_eq!(code, 27, "REBALANCE_IN_PROGRESS");
        let ja2 = a.send_version(&static_join(&a_id, "i1"), 5).await.unwrap();
        let (jb, mut b) = b_join.await.unwrap();
        let generation = ja2.generation_id;
        assert_eq!(
            (ja2.error_code, jb.error_code, jb.generation_id),
            (0, 0, generation)
        );
        assert_eq!(ja2.leader.to_string(), a_id, "the leader stays");
        let b_id = jb.member_id.to_string();
        let leader_sync = sync(generation, &a_id, "i1", &[(&a_id, b"A"), (&b_id, b"B")]);
        let follower_sync = sync(generation, &b_id, "i2", &[]);
        let (sa, sb) = tokio::join!(
            a.send_version(&leader_sync, 3),
            b.send_version(&follower_sync, 3)
        );
        assert_eq!(
            (&sa.unwrap().assignment[..], &sb.unwrap().assignment[..]),
            (&b"A"[..], &b"B"[..])
        );
        // B's process restarts: same instance id, no member id
        let mut restarted = Connection::connect(&addr).await.unwrap();
        let again = restarted
            .send_version(&static_join("", "i2"), 5)
            .await
            .unwrap();
        assert_eq!(again.error_code, 0);
        assert_eq!(again.generation_id, generation, "no rebalance");
        assert_ne!(again.member_id.to_string(), b_id);
        let resync = restarted
            .send_version(&sync(generation, &again.member_id, "i2", &[]), 3)
            .await
            .unwrap();
        assert_eq!(&resync.assignment[..], b"B", "same assignment");
        // A sees no rebalance; the replaced id is fenced
        assert_eq!(
            a.send_version(&heartbeat(generation, &a_id, "i1"), 3)
                .await
                .unwrap()
                .error_code,
            0
        );
        let fenced = b
            .send_version(&heartbeat(generation, &b_id, "i2"), 3)
            .await
            .unwrap();
        assert_eq!(fenced.error_code, 82, "FENCED_INSTANCE_ID");

        // the leader's process restarts: with JoinGroup v9 it gets the members but is told to
        // skip the assignment (KIP-814), and the generation does not move
        let mut leader = Connection::connect(&addr).await.unwrap();
        let back = leader
            .send_version(&static_join("", "i1"), 9)
            .await
            .unwrap();
        assert_eq!(back.error_code, 0);
        assert_eq!(back.generation_id, generation, "no rebalance");
        assert!(
            back.skip_assignment,
            "the leader keeps the standing assignment"
        );
        assert_eq!(back.leader, back.member_id);
        assert_eq!(back.members.len(), 2, "the leader still learns the members");
        let resync = leader
            .send_version(&sync(generation, &back.member_id, "i1", &[]), 5)
            .await
            .unwrap();
        assert_eq!(&resync.assignment[..], b"A", "same assignment");
        let others = restarted
            .send_version(&heartbeat(generation, &again.member_id, "i2"), 3)
            .await
            .unwrap();
        assert_eq!(others.error_code, 0, "the follower sees no rebalance");
    });
}

fn consumer_heartbeat(group: &str, member: &str, epoch: i32) -> ConsumerGroupHeartbeatRequest {
    ConsumerGroupHeartbeatRequest::default()
        .with_group_id(GroupId(str(group)))
        .with_member_id(str(member))
        .with_member_epoch(epoch)
        .with_rebalance_timeout_ms(if epoch == 0 { 30_000 } else { -1 })
        .with_subscribed_topic_names((epoch == 0).then(|| vec![topic_name("t")]))
        .with_topic_partitions((epoch == 0).then(Vec::new))
}

#[test]
fn consumer_protocol_errors_are_kafkas() {
    let server = Server::start(&[]);
    rt().block_on(async {
        let mut c = Connection::connect(&server.addr()).await.unwrap();
        assert_eq!(create_topic(&mut c, "t", 2, &[]).await, 0);
        let code = |r: &ConsumerGroupHeartbeatResponse| r.error_code;

        let joined = c.send(&consumer_heartbeat("g", "m1", 0)).await.unwrap();
        assert_eq!(code(&joined), 0, "{joined:?}");
        assert_eq!(joined.member_epoch, 1);
        let assigned: usize = joined
            .assignment
            .as_ref()
            .map(|a| a.topic_partitions.iter().map(|t| t.partitions.len()).sum())
            .unwrap_or(0);
        assert_eq!(assigned, 2, "the only member gets both partitions");

        // an epoch from the future, and an unknown member
        let fenced = c.send(&consumer_heartbeat("g", "m1", 9)).await.unwrap();
        assert_eq!(code(&fenced), 110, "FENCED_MEMBER_EPOCH");
        let unknown = c.send(&consumer_heartbeat("g", "nobody", 1)).await.unwrap();
        assert_eq!(code(&unknown), 25, "UNKNOWN_MEMBER_ID");
        // v1 requires the client to pick its member id; empty group ids are refused
        let no_id = c.send(&consumer_heartbeat("g", "", 0)).await.unwrap();
        assert_eq!(code(&no_id), 42, "INVALID_REQUEST");
        let no_group = c.send(&consumer_heartbeat("", "m2", 0)).await.unwrap();
        assert_eq!(code(&no_group), 42, "INVALID_REQUEST");
        // the first heartbeat must say what the member subscribes to
        let no_sub = c
            .send(&consumer_heartbeat("g", "m2", 0).with_subscribed_topic_names(None))
            .await
            .unwrap();
        assert_eq!(code(&no_sub), 42, "INVALID_REQUEST");
        let bad_assignor = c
            .send(&consumer_heartbeat("g", "m2", 0).with_server_assignor(Some(str("sticky"))))
            .await
            .unwrap();
        assert_eq!(code(&bad_assignor), 112, "UNSUPPORTED_ASSIGNOR");
        let bad_regex = c
            .send(
                &consumer_heartbeat("g", "m2", 0)
                    .with_subscribed_topic_names(None)
                    .with_subscribed_topic_regex(Some(str("t("))),
            )
            .await
            .unwrap();
        assert_eq!(code(&bad_regex), 128, "INVALID_REGULAR_EXPRESSION");

        // a classic JoinGroup cannot take over a live consumer-protocol group
        let classic = c.send(&join("g", "", "consumer")).await.unwrap();
        assert_eq!(classic.error_code, 23, "INCONSISTENT_GROUP_PROTOCOL");

        // commits are checked against the member epoch
        let stale = c.send(&commit("g", 0, "m1", "t", "")).await.unwrap();
        assert_eq!(
            stale.topics[0].partitions[0].error_code, 113,
            "STALE_MEMBER_EPOCH"
        );
        let ok = c.send(&commit("g", 1, "m1", "t", "")).await.unwrap();
        assert_eq!(ok.topics[0].partitions[0].error_code, 0);

        // ListGroups with the type filter, ConsumerGroupDescribe with epochs and assignments
        let listed = c
            .send(&ListGroupsRequest::default().with_types_filter(vec![str("consumer")]))
            .await
            .unwrap();
        let g: Vec<_> = listed
            .groups
            .iter()
            .map(|g| (g.group_id.0.to_string(), g.group_type.to_string()))
            .collect();
        assert_eq!(g, vec![("g".to_string(), "consumer".to_string())]);
        let classic_only = c
            .send(&ListGroupsRequest::default().with_types_filter(vec![str("classic")]))
            .await
            .unwrap();
        assert!(classic_only.groups.is_empty());
        let described = c
            .send(
                &ConsumerGroupDescribeRequest::default()
                    .with_group_ids(vec![GroupId(str("g")), GroupId(str("none"))]),
            )
            .await
            .unwrap();
        let g = &described.groups[0];
        assert_eq!((g.error_code, &*g.group_state), (0, "Stable"));
        assert_eq!(
            (g.group_epoch, g.assignment_epoch, &*g.assignor_name),
            (1, 1, "uniform")
        );
        assert_eq!(
            g.members[0].assignment.topic_partitions[0]
                .topic_name
                .0
                .as_str(),
            "t"
        );
        assert_eq!(described.groups[1].error_code, 69, "GROUP_ID_NOT_FOUND");

        // leaving empties the group; a non-empty group cannot be deleted, an empty one can
        let busy = c
            .send(&DeleteGroupsRequest::default().with_groups_names(vec![GroupId(str("g"))]))
            .await
            .unwrap();
        assert_eq!(busy.results[0].error_code, 68, "NON_EMPTY_GROUP");
        let left = c.send(&consumer_heartbeat("g", "m1", -1)).await.unwrap();
        assert_eq!((code(&left), left.member_epoch), (0, -1));
        let deleted = c
            .send(&DeleteGroupsRequest::default().with_groups_names(vec![GroupId(str("g"))]))
            .await
            .unwrap();
        assert_eq!(deleted.results[0].error_code, 0);
    });
}

/// Group membership is a record in `__consumer_offsets`: after a `kill -9` and restart, the
/// members of a stable group carry on at their generation with their assignments, and a deleted
/// group stays deleted.
#[test]
fn a_stable_group_survives_a_broker_crash_without_a_rebalance() {
    let mut server = Server::start(&["group.initial.rebalance.delay.ms=0"]);
    let addr = server.addr();
    let (generation, member) = rt().block_on(async {
        let mut c = Connection::connect(&addr).await.unwrap();
        let required = c.send_version(&join("p", "", "consumer"), 9).await.unwrap();
        assert_eq!(required.error_code, 79, "MEMBER_ID_REQUIRED");
        let joined = c
            .send_version(&join("p", &required.member_id, "consumer"), 9)
            .await
            .unwrap();
        assert_eq!(joined.error_code, 0);
        let member = joined.member_id.to_string();
        let synced = c
            .send_version(
                &SyncGroupRequest::default()
                    .with_group_id(GroupId(str("p")))
                    .with_generation_id(joined.generation_id)
                    .with_member_id(str(&member))
                    .with_assignments(vec![
                        sync_group_request::SyncGroupRequestAssignment::default()
                            .with_member_id(str(&member))
                            .with_assignment(Bytes::from_static(b"mine")),
                    ]),
                5,
            )
            .await
            .unwrap();
        assert_eq!(synced.error_code, 0);
        (joined.generation_id, member)
    });
    server.kill9();
    server.spawn();
    rt().block_on(async {
        let mut c = Connection::connect(&server.addr()).await.unwrap();
        let beat = c
            .send(
                &HeartbeatRequest::default()
                    .with_group_id(GroupId(str("p")))
                    .with_generation_id(generation)
                    .with_member_id(str(&member)),
            )
            .await
            .unwrap();
        assert_eq!(
            beat.error_code, 0,
            "the member carries on at its generation"
        );
        let described = c
            .send(&DescribeGroupsRequest::default().with_groups(vec![GroupId(str("p"))]))
            .await
            .unwrap();
        let g = &described.groups[0];
        assert_eq!((&*g.group_state, &*g.protocol_data), ("Stable", "range"));
        assert_eq!(g.members.len(), 1);
        assert_eq!(&g.members[0].member_assignment[..], b"mine");
        // the member leaves; the deleted group does not come back at the next restart
        let left = c
            .send(
                &LeaveGroupRequest::default()
                    .with_group_id(GroupId(str("p")))
                    .with_members(vec![
                        leave_group_request::MemberIdentity::default().with_member_id(str(&member))
                    ]),
            )
            .await
            .unwrap();
        assert_eq!(left.error_code, 0);
        let deleted = c
            .send(&DeleteGroupsRequest::default().with_groups_names(vec![GroupId(str("p"))]))
            .await
            .unwrap();
        assert_eq!(deleted.results[0].error_code, 0);
    });
    server.kill9();
    server.spawn();
    rt().block_on(async {
        let mut c = Connection::connect(&server.addr()).await.unwrap();
        let listed = c.send(&ListGroupsRequest::default()).await.unwrap();
        assert!(listed.groups.is_empty(), "{listed:?}");
    });
}
