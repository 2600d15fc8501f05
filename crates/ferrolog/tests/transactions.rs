//! The transaction coordinator's error paths and the last stable offset, over the wire.

mod common;

use bytes::{Bytes, BytesMut};
use common::{create_topic, rt, Server};
use ferrolog_client::kafka_protocol::messages::*;
use ferrolog_client::kafka_protocol::records::Compression;
use ferrolog_client::{encode_batch, record, str, topic_name, Connection};

const TXN: &str = "tx";

fn transactional_batch(producer_id: i64, epoch: i16, sequence: i32) -> Bytes {
    let mut r = record(
        None,
        Some(Bytes::from_static(b"v")),
        vec![],
        ferrolog_client::now_ms(),
    );
    r.producer_id = producer_id;
    r.producer_epoch = epoch;
    r.sequence = sequence;
    r.transactional = true;
    let mut buf = BytesMut::new();
    encode_batch(&mut buf, &[r], Compression::None).unwrap();
    buf.freeze()
}

fn produce(topic: &str, batch: Bytes) -> ProduceRequest {
    ProduceRequest::default()
        .with_transactional_id(Some(TransactionalId(str(TXN))))
        .with_acks(-1)
        .with_timeout_ms(10_000)
        .with_topic_data(vec![produce_request::TopicProduceData::default()
            .with_name(topic_name(topic))
            .with_partition_data(vec![
                produce_request::PartitionProduceData::default()
                    .with_index(0)
                    .with_records(Some(batch)),
            ])])
}

fn add_partitions(producer_id: i64, epoch: i16, topic: &str) -> AddPartitionsToTxnRequest {
    AddPartitionsToTxnRequest::default()
        .with_v3_and_below_transactional_id(TransactionalId(str(TXN)))
        .with_v3_and_below_producer_id(ProducerId(producer_id))
        .with_v3_and_below_producer_epoch(epoch)
        .with_v3_and_below_topics(vec![
            add_partitions_to_txn_request::AddPartitionsToTxnTopic::default()
                .with_name(topic_name(topic))
                .with_partitions(vec![0]),
        ])
}

fn end(producer_id: i64, epoch: i16, commit: bool) -> EndTxnRequest {
    EndTxnRequest::default()
        .with_transactional_id(TransactionalId(str(TXN)))
        .with_producer_id(ProducerId(producer_id))
        .with_producer_epoch(epoch)
        .with_committed(commit)
}

async fn latest(c: &mut Connection, topic: &str, isolation: i8) -> i64 {
    let response = c
        .send(
            &ListOffsetsRequest::default()
                .with_isolation_level(isolation)
                .with_topics(vec![list_offsets_request::ListOffsetsTopic::default()
                    .with_name(topic_name(topic))
                    .with_partitions(vec![
                        list_offsets_request::ListOffsetsPartition::default()
                            .with_partition_index(0)
                            .with_timestamp(-1),
                    ])]),
        )
        .await
        .unwrap();
    response.topics[0].partitions[0].offset
}

#[test]
fn transaction_errors_verification_and_the_last_stable_offset() {
    let server = Server::start(&[]);
    rt().block_on(async {
        let mut c = Connection::connect(&server.addr()).await.unwrap();
        assert_eq!(create_topic(&mut c, "t", 1, &[]).await, 0);
        assert_eq!(create_topic(&mut c, "u", 1, &[]).await, 0);
        let init = |timeout: i32| {
            InitProducerIdRequest::default()
                .with_transactional_id(Some(TransactionalId(str(TXN))))
                .with_transaction_timeout_ms(timeout)
                .with_producer_id(ProducerId(-1))
                .with_producer_epoch(-1)
        };
        let bad = c.send(&init(0)).await.unwrap();
        assert_eq!(bad.error_code, 50, "INVALID_TRANSACTION_TIMEOUT");
        let too_long = c.send(&init(3_600_000)).await.unwrap();
        assert_eq!(too_long.error_code, 50, "above transaction.max.timeout.ms");
        let ok = c.send(&init(60_000)).await.unwrap();
        assert_eq!(ok.error_code, 0);
        let (pid, epoch) = (ok.producer_id.0, ok.producer_epoch);

        // KIP-890: a transactional write to a partition not in the transaction is refused
        let stray = c
            .send_version(&produce("t", transactional_batch(pid, epoch, 0)), 12)
            .await
            .unwrap();
        assert_eq!(
            stray.responses[0].partition_responses[0].error_code, 48,
            "INVALID_TXN_STATE"
        );
        // wrong epoch, unknown id
        let fenced = c
            .send_version(&add_partitions(pid, epoch + 1, "t"), 3)
            .await
            .unwrap();
        assert_eq!(
            fenced.results_by_topic_v3_and_below[0].results_by_partition[0].partition_error_code,
            90,
            "PRODUCER_FENCED"
        );
        let unknown_topic = c
            .send_version(&add_partitions(pid, epoch, "nope"), 3)
            .await
            .unwrap();
        assert_eq!(
            unknown_topic.results_by_topic_v3_and_below[0].results_by_partition[0]
                .partition_error_code,
            3
        );
        let added = c
            .send_version(&add_partitions(pid, epoch, "t"), 3)
            .await
            .unwrap();
        assert_eq!(
            added.results_by_topic_v3_and_below[0].results_by_partition[0].partition_error_code,
            0
        );
        // v4 verify_only: t is in the transaction, u is not
        let verify = |topic: &str| {
            AddPartitionsToTxnRequest::default().with_transactions(vec![
                add_partitions_to_txn_request::AddPartitionsToTxnTransaction::default()
                    .with_transactional_id(TransactionalId(str(TXN)))
                    .with_producer_id(ProducerId(pid))
                    .with_producer_epoch(epoch)
                    .with_verify_only(true)
                    .with_topics(vec![
                        add_partitions_to_txn_request::AddPartitionsToTxnTopic::default()
                            .with_name(topic_name(topic))
                            .with_partitions(vec![0]),
                    ]),
            ])
        };
        let code = |r: &AddPartitionsToTxnResponse| {
            r.results_by_transaction[0].topic_results[0].results_by_partition[0]
                .partition_error_code
        };
        assert_eq!(code(&c.send_version(&verify("t"), 5).await.unwrap()), 0);
        assert_eq!(code(&c.send_version(&verify("u"), 5).await.unwrap()), 48);

        // the write goes in; read_committed readers stop before the open transaction
        let written = c
            .send_version(&produce("t", transactional_batch(pid, epoch, 0)), 12)
            .await
            .unwrap();
        assert_eq!(written.responses[0].partition_responses[0].error_code, 0);
        assert_eq!(
            (latest(&mut c, "t", 0).await, latest(&mut c, "t", 1).await),
            (1, 0)
        );

        let committed = c.send(&end(pid, epoch, true)).await.unwrap();
        assert_eq!(committed.error_code, 0);
        // record + COMMIT marker: both isolation levels see offset 2
        assert_eq!(
            (latest(&mut c, "t", 0).await, latest(&mut c, "t", 1).await),
            (2, 2)
        );
        assert_eq!(
            c.send(&end(pid, epoch, true)).await.unwrap().error_code,
            0,
            "a retried commit"
        );
        assert_eq!(
            c.send(&end(pid, epoch, false)).await.unwrap().error_code,
            48,
            "abort after commit"
        );
        assert_eq!(
            c.send(&end(pid, epoch + 3, true)).await.unwrap().error_code,
            90
        );

        // the coordinator's view
        let described = c
            .send(
                &DescribeTransactionsRequest::default().with_transactional_ids(vec![
                    TransactionalId(str(TXN)),
                    TransactionalId(str("missing")),
                ]),
            )
            .await
            .unwrap();
        assert_eq!(
            &*described.transaction_states[0].transaction_state,
            "CompleteCommit"
        );
        assert_eq!(
            described.transaction_states[1].error_code, 105,
            "TRANSACTIONAL_ID_NOT_FOUND"
        );
        let listed = c
            .send(
                &ListTransactionsRequest::default()
                    .with_state_filters(vec![str("Ongoing"), str("Bogus")]),
            )
            .await
            .unwrap();
        assert!(listed.transaction_states.is_empty());
        assert_eq!(listed.unknown_state_filters, vec![str("Bogus")]);
        // a new instance with the same id gets a bumped epoch; the old epoch is fenced
        let again = c.send(&init(60_000)).await.unwrap();
        assert_eq!(
            (again.producer_id.0, again.producer_epoch),
            (pid, epoch + 1)
        );
        let zombie = c
            .send_version(&add_partitions(pid, epoch, "t"), 3)
            .await
            .unwrap();
        assert_eq!(
            zombie.results_by_topic_v3_and_below[0].results_by_partition[0].partition_error_code,
            90
        );
    });
}
