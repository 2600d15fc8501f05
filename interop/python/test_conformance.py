"""Regressions found by running the clients' own suites and Kafka's tools against ferrolog:
each test drives a real client (confluent-kafka / librdkafka unless it says otherwise) and
checks what Apache Kafka 4.1 does in the same situation."""

import os
import re
import subprocess
import time
import uuid

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import (AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource,
                                   NewTopic)

from conftest import BINARY, wait_for


def topic_name(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def admin(bootstrap):
    return AdminClient({"bootstrap.servers": bootstrap})


def create(bootstrap, name, partitions=1, config=None):
    a = admin(bootstrap)  # kept alive until the result arrives
    a.create_topics(
        [NewTopic(name, num_partitions=partitions, replication_factor=1, config=config or {})]
    )[name].result(timeout=10)


def produce(bootstrap, topic, values, key=None, **conf):
    errors = []
    p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 0, **conf})
    for v in values:
        p.produce(topic, key=key, value=v, on_delivery=lambda err, _m: errors.append(err))
    assert p.flush(20) == 0
    return errors


def consume(bootstrap, topic, group, expected, timeout=30):
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "auto.offset.reset": "earliest",
                  "enable.auto.commit": False})
    c.subscribe([topic])
    out = []
    deadline = time.time() + timeout
    while len(out) < expected and time.time() < deadline:
        m = c.poll(0.5)
        if m is None:
            continue
        if m.error():
            if m.error().code() == KafkaError._PARTITION_EOF:
                continue
            raise KafkaException(m.error())
        out.append(m)
    if out:
        c.commit(asynchronous=False)
    c.close()
    return out


def test_deleting_a_topic_removes_its_committed_offsets(broker):
    """A topic deleted and re-created with the same name: the group's old offsets are gone
    (OffsetFetch returns none), so the consumer reads the new topic from the start instead of
    resuming at a stale offset past its end."""
    topic, group = topic_name("recreate"), topic_name("g")
    create(broker.bootstrap, topic)
    produce(broker.bootstrap, topic, [f"old{i}" for i in range(100)])
    assert len(consume(broker.bootstrap, topic, group, 100)) == 100
    a = admin(broker.bootstrap)
    from confluent_kafka import ConsumerGroupTopicPartitions
    committed = a.list_consumer_group_offsets(
        [ConsumerGroupTopicPartitions(group, [TopicPartition(topic, 0)])])[group].result(10)
    assert committed.topic_partitions[0].offset == 100
    a.delete_topics([topic])[topic].result(10)
    committed = a.list_consumer_group_offsets(
        [ConsumerGroupTopicPartitions(group, [TopicPartition(topic, 0)])])[group].result(10)
    assert committed.topic_partitions[0].offset < 0, "the deleted topic's offset is gone"
    wait_for("the topic to be gone", lambda: topic not in a.list_topics(timeout=5).topics)
    create(broker.bootstrap, topic)
    produce(broker.bootstrap, topic, [f"new{i}" for i in range(30)])
    msgs = consume(broker.bootstrap, topic, group, 30)
    assert [m.value().decode() for m in msgs] == [f"new{i}" for i in range(30)]


def test_offset_tombstones_survive_a_restart(fresh_broker):
    """The removal is written to __consumer_offsets: after a restart the stale offset does not
    come back."""
    b = fresh_broker()
    topic, group = topic_name("recreate-restart"), topic_name("g")
    create(b.bootstrap, topic)
    produce(b.bootstrap, topic, [b"x"] * 10)
    assert len(consume(b.bootstrap, topic, group, 10)) == 10
    a = admin(b.bootstrap)
    a.delete_topics([topic])[topic].result(10)
    time.sleep(0.5)  # the tombstones are written by the group tick (100 ms)
    b.stop()
    b.start()
    create(b.bootstrap, topic)
    produce(b.bootstrap, topic, [b"y"] * 5)
    msgs = consume(b.bootstrap, topic, group, 5)
    assert [m.value() for m in msgs] == [b"y"] * 5


def test_second_instance_on_the_same_data_directory_is_refused(broker):
    """Two processes on one log directory would corrupt it: the second stops at start-up,
    naming the directory, and the first keeps serving."""
    out = subprocess.run(
        [BINARY, "server", "--data-dir", broker.dir, "--override",
         "listeners=PLAINTEXT://127.0.0.1:0,CONTROLLER://127.0.0.1:0"],
        capture_output=True, text=True, timeout=30)
    assert out.returncode != 0
    assert broker.dir in out.stderr and "another" in out.stderr, out.stderr
    topic = topic_name("still-serving")
    create(broker.bootstrap, topic)
    assert produce(broker.bootstrap, topic, [b"v"]) == [None]


def test_delete_records_on_a_compacted_topic_is_a_policy_violation(broker):
    topic = topic_name("compacted-dr")
    create(broker.bootstrap, topic, config={"cleanup.policy": "compact"})
    produce(broker.bootstrap, topic, [b"v"] * 3, key=b"k")
    a = admin(broker.bootstrap)
    result = a.delete_records([TopicPartition(topic, 0, 2)])
    with pytest.raises(KafkaException) as e:
        result[TopicPartition(topic, 0, 2)].result(10)
    assert e.value.args[0].code() == KafkaError.POLICY_VIOLATION
    both = topic_name("both-dr")
    create(broker.bootstrap, both, config={"cleanup.policy": "compact,delete"})
    produce(broker.bootstrap, both, [b"v"] * 3, key=b"k")
    done = a.delete_records([TopicPartition(both, 0, 2)])
    assert done[TopicPartition(both, 0, 2)].result(10).low_watermark == 2


def test_min_insync_replicas_is_capped_by_the_replication_factor(fresh_broker):
    """min.insync.replicas=2 with one replica: acks=all is accepted, as in Kafka."""
    b = fresh_broker(["min.insync.replicas=2"])
    topic = topic_name("rf1-minisr")
    create(b.bootstrap, topic)
    assert produce(b.bootstrap, topic, [b"v"] * 5, acks="all", **{"enable.idempotence": True}) \
        == [None] * 5


def test_cleanup_policy_change_applies_to_new_writes_at_once(broker):
    """A topic made compacted by IncrementalAlterConfigs refuses keyless records right away;
    SUBTRACT may leave cleanup.policy empty."""
    topic = topic_name("policy")
    create(broker.bootstrap, topic)
    assert produce(broker.bootstrap, topic, [b"keyless"]) == [None]
    a = admin(broker.bootstrap)

    def alter(op, value):
        resource = ConfigResource("topic", topic, incremental_configs=[
            ConfigEntry("cleanup.policy", value, incremental_operation=op)])
        a.incremental_alter_configs([resource])[resource].result(10)

    alter(AlterConfigOpType.SET, "compact")
    errors = produce(broker.bootstrap, topic, [b"keyless"], retries=0)
    assert errors[0] is not None and errors[0].code() == KafkaError.INVALID_RECORD, errors
    assert produce(broker.bootstrap, topic, [b"keyed"], key=b"k") == [None]
    alter(AlterConfigOpType.SUBTRACT, "compact")
    described = a.describe_configs([ConfigResource("topic", topic)])
    configs = list(described.values())[0].result(10)
    assert configs["cleanup.policy"].value == ""
    assert produce(broker.bootstrap, topic, [b"keyless"]) == [None]


@pytest.mark.parametrize("protocol", ["classic", "consumer"])
def test_expired_static_member_is_removed_so_the_group_can_be_deleted(fresh_broker, protocol):
    """A static member (group.instance.id) that goes away without leaving is removed when its
    session expires: the group is then empty and DeleteGroups succeeds (both protocols)."""
    b = fresh_broker(["group.consumer.session.timeout.ms=6000",
                      "group.consumer.heartbeat.interval.ms=500"])
    topic, group = topic_name("static"), topic_name("static-g")
    create(b.bootstrap, topic)
    produce(b.bootstrap, topic, [b"v"] * 3)
    conf = {"bootstrap.servers": b.bootstrap, "group.id": group,
            "group.instance.id": "instance-1", "auto.offset.reset": "earliest",
            "group.protocol": protocol}
    if protocol == "classic":
        conf["session.timeout.ms"] = 6000
    c = Consumer(conf)
    c.subscribe([topic])
    deadline = time.time() + 30
    while time.time() < deadline:
        m = c.poll(0.5)
        if m is not None and not m.error():
            break
    c.close()  # a static member leaves only for now (classic: no LeaveGroup at all)
    a = admin(b.bootstrap)

    def deleted():
        a.delete_consumer_groups([group])[group].result(10)
        return True
    wait_for("the expired static member's group to be deletable", deleted, timeout=30)


def test_authorized_operations_are_listed(broker):
    """include_authorized_operations in DescribeCluster, Metadata (DescribeTopics) and
    DescribeGroups: with no authorizer, every operation Kafka knows for the resource."""
    from confluent_kafka import TopicCollection
    from confluent_kafka.admin import AclOperation
    a = admin(broker.bootstrap)
    cluster = a.describe_cluster(include_authorized_operations=True).result(10)
    assert set(cluster.authorized_operations) == {
        AclOperation.CREATE, AclOperation.ALTER, AclOperation.DESCRIBE, AclOperation.CLUSTER_ACTION,
        AclOperation.DESCRIBE_CONFIGS, AclOperation.ALTER_CONFIGS, AclOperation.IDEMPOTENT_WRITE}
    topic = topic_name("ops")
    create(broker.bootstrap, topic)
    described = a.describe_topics(TopicCollection([topic]), include_authorized_operations=True)
    ops = set(described[topic].result(10).authorized_operations)
    assert ops == {AclOperation.READ, AclOperation.WRITE, AclOperation.CREATE, AclOperation.DELETE,
                   AclOperation.ALTER, AclOperation.DESCRIBE, AclOperation.DESCRIBE_CONFIGS,
                   AclOperation.ALTER_CONFIGS}, ops
    group = topic_name("ops-g")
    produce(broker.bootstrap, topic, [b"v"])
    consume(broker.bootstrap, topic, group, 1)
    g = a.describe_consumer_groups([group], include_authorized_operations=True)[group].result(10)
    assert set(g.authorized_operations) == {AclOperation.READ, AclOperation.DELETE, AclOperation.DESCRIBE,
                                            AclOperation.DESCRIBE_CONFIGS, AclOperation.ALTER_CONFIGS}


@pytest.mark.parametrize("api_version,compression", [((0, 10, 1), None), ((0, 10, 1), "gzip"),
                                                     ((0, 9), None), ((0, 9), "snappy")])
def test_old_producers_use_produce_v0_to_v2(broker, api_version, compression):
    """kafka-python told to speak to an old broker sends Produce v2 (magic 1 messages) or v1
    (magic 0): Kafka 4.1 still answers them, up-converting to record batches; so does ferrolog."""
    from kafka import KafkaProducer
    topic = topic_name("legacy")
    create(broker.bootstrap, topic)
    p = KafkaProducer(bootstrap_servers=broker.bootstrap, api_version=api_version,
                      compression_type=compression, acks="all")
    futures = [p.send(topic, key=f"k{i}".encode(), value=f"v{i}".encode(), timestamp_ms=1_700_000_000_000 + i)
               for i in range(20)]
    p.flush(10)
    offsets = [f.get(10).offset for f in futures]
    p.close()
    assert offsets == list(range(20)), offsets
    c = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": topic_name("legacy-check"),
                  "auto.offset.reset": "earliest"})
    c.assign([TopicPartition(topic, 0, 0)])
    got = []
    deadline = time.time() + 20
    while len(got) < 20 and time.time() < deadline:
        m = c.poll(0.5)
        if m is not None and not m.error():
            got.append(m)
    c.close()
    assert [(m.key(), m.value()) for m in got] == [(f"k{i}".encode(), f"v{i}".encode()) for i in range(20)]
    if api_version >= (0, 10):
        assert [m.timestamp()[1] for m in got] == [1_700_000_000_000 + i for i in range(20)]


def kafka_tool(main_class, *args):
    lib = os.path.join(os.path.dirname(BINARY), "..", "kafka-lib", "*")
    return subprocess.run(["java", "-cp", lib, main_class, *args], capture_output=True, text=True, timeout=120)


def test_single_node_elections_and_reassignments_with_kafkas_tools(broker):
    """A single node answers ElectLeaders with ELECTION_NOT_NEEDED and performs a no-op
    reassignment, as Kafka does (it used to say UNKNOWN_TOPIC_OR_PARTITION)."""
    topic = topic_name("solo-elect")
    create(broker.bootstrap, topic, partitions=2)
    out = kafka_tool("org.apache.kafka.tools.LeaderElectionCommand", "--bootstrap-server", broker.bootstrap,
                     "--election-type", "PREFERRED", "--topic", topic, "--partition", "0")
    assert f"Valid replica already elected for partitions {topic}-0" in out.stdout, out.stdout + out.stderr
    out = kafka_tool("org.apache.kafka.tools.LeaderElectionCommand", "--bootstrap-server", broker.bootstrap,
                     "--election-type", "UNCLEAN", "--topic", topic, "--partition", "1")
    assert f"Valid replica already elected for partitions {topic}-1" in out.stdout, out.stdout + out.stderr
    plan = os.path.join(broker.dir, "solo-move.json")
    with open(plan, "w") as f:
        f.write(f'{{"version":1,"partitions":[{{"topic":"{topic}","partition":0,"replicas":[1]}}]}}')
    out = kafka_tool("org.apache.kafka.tools.reassign.ReassignPartitionsCommand", "--bootstrap-server",
                     broker.bootstrap, "--reassignment-json-file", plan, "--execute")
    assert out.returncode == 0 and "Successfully started partition reassignment" in out.stdout, \
        out.stdout + out.stderr
    out = kafka_tool("org.apache.kafka.tools.reassign.ReassignPartitionsCommand", "--bootstrap-server",
                     broker.bootstrap, "--reassignment-json-file", plan, "--verify")
    assert f"Reassignment of partition {topic}-0 is completed" in out.stdout, out.stdout + out.stderr


def test_consumer_protocol_client_commits_without_joining(broker):
    """A KIP-848 consumer (group.protocol=consumer) that assign()s instead of subscribing
    commits with the member id it made up and epoch -1 to a group that does not exist yet:
    Kafka accepts it (a simple group), so does ferrolog (it answered UNKNOWN_MEMBER_ID)."""
    topic, group = topic_name("assign-848"), topic_name("assign-848-g")
    create(broker.bootstrap, topic)
    produce(broker.bootstrap, topic, [b"v"] * 5)
    c = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": group, "group.protocol": "consumer",
                  "enable.auto.commit": False})
    c.assign([TopicPartition(topic, 0, 0)])
    got = 0
    deadline = time.time() + 20
    while got < 5 and time.time() < deadline:
        m = c.poll(0.5)
        if m is not None and not m.error():
            got += 1
    assert got == 5
    committed = c.commit(offsets=[TopicPartition(topic, 0, 5)], asynchronous=False)
    assert committed[0].error is None, committed
    assert c.committed([TopicPartition(topic, 0)], 10)[0].offset == 5
    c.close()


def test_features_with_kafkas_feature_tool(fresh_broker):
    """ApiVersions v3+ carries the supported and finalized features, so Kafka's
    kafka-features.sh describes them (it printed nothing); UpdateFeatures changes them:
    group.version 0 turns the consumer protocol off, and back to 1 on again. What ferrolog does
    not implement cannot be finalized."""
    b = fresh_broker()
    tool = "org.apache.kafka.tools.FeatureCommand"
    out = kafka_tool(tool, "--bootstrap-server", b.bootstrap, "describe")
    lines = {l.split("\t")[0]: l for l in out.stdout.splitlines() if l.startswith("Feature: ")}
    assert "FinalizedVersionLevel: 4.1-IV1" in lines["Feature: metadata.version"], out.stdout + out.stderr
    assert "SupportedMaxVersion: 1\tFinalizedVersionLevel: 1" in lines["Feature: group.version"], out.stdout
    assert "FinalizedVersionLevel: 0" in lines["Feature: kraft.version"], out.stdout
    assert "Feature: share.version" not in lines and "Feature: eligible.leader.replicas.version" not in lines
    out = kafka_tool(tool, "--bootstrap-server", b.bootstrap, "upgrade", "--feature", "transaction.version=2")
    assert out.returncode != 0, out.stdout + out.stderr
    out = kafka_tool(tool, "--bootstrap-server", b.bootstrap, "downgrade", "--feature", "group.version=0")
    assert out.returncode == 0, out.stdout + out.stderr
    topic = topic_name("features")
    create(b.bootstrap, topic)
    c = Consumer({"bootstrap.servers": b.bootstrap, "group.id": topic_name("fg"), "group.protocol": "consumer"})
    c.subscribe([topic])
    errors = []
    deadline = time.time() + 10
    while not errors and time.time() < deadline:
        m = c.poll(0.5)
        if m is not None and m.error():
            errors.append(m.error())
    c.close()
    assert errors, "a consumer-protocol consumer is refused while group.version is 0"
    out = kafka_tool(tool, "--bootstrap-server", b.bootstrap, "upgrade", "--feature", "group.version=1")
    assert out.returncode == 0, out.stdout + out.stderr
    out = kafka_tool(tool, "--bootstrap-server", b.bootstrap, "describe")
    assert "Feature: group.version\tSupportedMinVersion: 0\tSupportedMaxVersion: 1\tFinalizedVersionLevel: 1" \
        in out.stdout, out.stdout


def test_group_configs_with_kafkas_config_tool(fresh_broker):
    """GROUP config resources (KIP-848 group configs) through Kafka's kafka-configs.sh:
    described with their defaults, altered per group (checked against Kafka's bounds), and
    share.* refused (ferrolog has no share groups)."""
    b = fresh_broker(["group.consumer.session.timeout.ms=6000", "group.consumer.heartbeat.interval.ms=500"])
    tool = "kafka.admin.ConfigCommand"
    group = topic_name("cfg-g")
    topic = topic_name("cfg-t")
    create(b.bootstrap, topic)
    produce(b.bootstrap, topic, [b"v"])
    consume(b.bootstrap, topic, group, 1)
    out = kafka_tool(tool, "--bootstrap-server", b.bootstrap, "--describe", "--entity-type", "groups",
                     "--entity-name", group, "--all")
    assert "consumer.session.timeout.ms=6000" in out.stdout, out.stdout + out.stderr
    out = kafka_tool(tool, "--bootstrap-server", b.bootstrap, "--alter", "--entity-type", "groups",
                     "--entity-name", group, "--add-config",
                     "consumer.session.timeout.ms=20000,consumer.heartbeat.interval.ms=2000")
    assert out.returncode == 0, out.stdout + out.stderr
    out = kafka_tool(tool, "--bootstrap-server", b.bootstrap, "--describe", "--entity-type", "groups",
                     "--entity-name", group)
    assert "consumer.session.timeout.ms=20000" in out.stdout and "consumer.heartbeat.interval.ms=2000" \
        in out.stdout, out.stdout + out.stderr
    bad = kafka_tool(tool, "--bootstrap-server", b.bootstrap, "--alter", "--entity-type", "groups",
                     "--entity-name", group, "--add-config", "consumer.heartbeat.interval.ms=30000")
    assert bad.returncode != 0 and "consumer.heartbeat.interval.ms" in bad.stdout + bad.stderr
    share = kafka_tool(tool, "--bootstrap-server", b.bootstrap, "--alter", "--entity-type", "groups",
                       "--entity-name", group, "--add-config", "share.record.lock.duration.ms=20000")
    assert share.returncode != 0, share.stdout + share.stderr


def test_describe_topic_partitions_pages_through_kafka_topics_describe(broker):
    """kafka-topics.sh --describe of Kafka 4 uses DescribeTopicPartitions (API 75) when the
    broker advertises it; with a small page size it follows the cursor across topics."""
    a, b = topic_name("dtp-a"), topic_name("dtp-b")
    create(broker.bootstrap, a, partitions=5)
    create(broker.bootstrap, b, partitions=4)
    out = kafka_tool("org.apache.kafka.tools.TopicCommand", "--bootstrap-server", broker.bootstrap, "--describe",
                     "--topic", f"{a}|{b}", "--partition-size-limit-per-response", "3")
    assert out.returncode == 0, out.stdout + out.stderr
    listed = sorted(re.findall(r"Topic: (\S+)\tPartition: (\d+)", out.stdout))
    assert listed == sorted([(a, str(p)) for p in range(5)] + [(b, str(p)) for p in range(4)]), out.stdout


def test_broker_configs_are_answered_as_kafka_per_update_mode(broker):
    """kafka-configs.sh --alter on brokers: every Kafka 4.1 broker config name is known, and each
    is answered as Kafka answers it for its update mode (read-only, per-broker, cluster-wide),
    or refused with a reason when ferrolog would not act on it; applied ones take effect."""
    def alter(entity, config):
        target = ["--entity-default"] if entity is None else ["--entity-name", str(entity)]
        r = kafka_tool("kafka.admin.ConfigCommand", "--bootstrap-server", broker.bootstrap,
                       "--alter", "--entity-type", "brokers", *target, "--add-config", config)
        return r.stdout + r.stderr

    cases = [
        (1, "broker.id=3", "Cannot update these configs dynamically: Set(broker.id)"),
        (1, "ssl.keystore.location=/x", "only per-listener using the listener prefix"),
        (None, "sasl.kerberos.min.time.before.relogin=60001",
         "Cannot update these configs at default cluster level, broker id must be specified"),
        (1, "sasl.kerberos.min.time.before.relogin=60001", "ferrolog does not act on"),
        (None, "num.io.threads=9", "ferrolog does not act on dynamic updates of num.io.threads"),
        (None, "log.retention.ms=abc",
         "Invalid value abc for configuration log.retention.ms: Not a number of type LONG"),
        (1, "no.such.config=1", "Unknown broker config name: no.such.config"),
    ]
    for entity, config, expected in cases:
        out = alter(entity, config)
        assert expected in out, (config, out)
        assert "InvalidRequestException" in out, (config, out)
    assert "Completed updating config for broker 1" in alter(1, "message.max.bytes=2000000")
    r = kafka_tool("kafka.admin.ConfigCommand", "--bootstrap-server", broker.bootstrap,
                   "--describe", "--entity-type", "brokers", "--entity-name", "1")
    assert "message.max.bytes=2000000" in r.stdout, r.stdout
    out = alter(None, "producer.id.expiration.ms=3600000")
    assert "Completed updating default config for brokers in the cluster" in out, out
    for entity, key in [(1, "message.max.bytes"), (None, "producer.id.expiration.ms")]:
        target = ["--entity-default"] if entity is None else ["--entity-name", str(entity)]
        r = kafka_tool("kafka.admin.ConfigCommand", "--bootstrap-server", broker.bootstrap,
                       "--alter", "--entity-type", "brokers", *target, "--delete-config", key)
        assert "Completed" in r.stdout, r.stdout + r.stderr


def log_dirs(bootstrap):
    """{log dir: (error, {partition name})} from Kafka's kafka-log-dirs.sh --describe."""
    import json
    r = kafka_tool("org.apache.kafka.tools.LogDirsCommand", "--bootstrap-server", bootstrap, "--describe")
    line = [l for l in r.stdout.splitlines() if l.startswith("{")][0]
    dirs = json.loads(line)["brokers"][0]["logDirs"]
    return {d["logDir"]: (d["error"], {p["partition"] for p in d["partitions"]}) for d in dirs}


def test_several_log_dirs_spread_move_and_take_a_failed_one_offline(fresh_broker):
    """JBOD: log.dirs with two directories. New partitions go to the one with fewer;
    kafka-reassign-partitions moves a replica between them (AlterReplicaLogDirs) keeping its
    data; when a directory fails (an I/O error), it goes offline with its replicas while the
    broker goes on serving the other one; a restart with the directory still broken refuses
    to start, naming it."""
    import json
    import shutil
    import tempfile
    a, b = tempfile.mkdtemp(prefix="jbod-a-"), tempfile.mkdtemp(prefix="jbod-b-")
    broker = fresh_broker([f"log.dirs={a},{b}"])
    topic = topic_name("jbod")
    create(broker.bootstrap, topic, partitions=4, config={"segment.bytes": "1024"})
    for p in range(4):
        errors = []
        prod = Producer({"bootstrap.servers": broker.bootstrap, "linger.ms": 0})
        for i in range(20):
            prod.produce(topic, value=f"{p}-{i}", partition=p, on_delivery=lambda e, _m: errors.append(e))
        assert prod.flush(20) == 0 and errors == [None] * 20
    dirs = log_dirs(broker.bootstrap)
    in_a, in_b = dirs[a][1], dirs[b][1]
    assert len(in_a) == 2 and len(in_b) == 2, dirs

    # move one replica from b to a: its data comes along
    moving = sorted(in_b)[0]
    index = int(moving.rsplit("-", 1)[1])
    plan = os.path.join(a, "..", f"{topic}-move.json")
    with open(plan, "w") as f:
        json.dump({"version": 1, "partitions": [
            {"topic": topic, "partition": index, "replicas": [1], "log_dirs": [a]}]}, f)
    for action in ("--execute", "--verify"):
        r = kafka_tool("org.apache.kafka.tools.reassign.ReassignPartitionsCommand",
                       "--bootstrap-server", broker.bootstrap, "--reassignment-json-file", plan, action)
        assert r.returncode == 0, r.stdout + r.stderr
    dirs = log_dirs(broker.bootstrap)
    assert moving in dirs[a][1] and moving not in dirs[b][1], dirs
    c = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": topic_name("g"),
                  "auto.offset.reset": "earliest", "enable.auto.commit": False})
    c.assign([TopicPartition(topic, index, 0)])
    got = []
    deadline = time.time() + 20
    while len(got) < 20 and time.time() < deadline:
        m = c.poll(0.5)
        if m is not None and not m.error():
            got.append(m.value().decode())
    c.close()
    assert got == [f"{index}-{i}" for i in range(20)]

    # directory b fails: writes that roll a segment there get I/O errors
    failing = int(sorted(in_b - {moving})[0].rsplit("-", 1)[1])
    healthy = int(sorted(dirs[a][1])[0].rsplit("-", 1)[1])
    os.rename(b, b + ".failed")
    open(b, "w").close()
    prod = Producer({"bootstrap.servers": broker.bootstrap, "linger.ms": 0, "message.timeout.ms": 5000})
    for i in range(60):
        prod.produce(topic, value=f"late-{i}", partition=failing)
    prod.flush(20)
    wait_for("directory b offline", lambda: log_dirs(broker.bootstrap)[b][0] is not None)
    assert "KafkaStorage" in log_dirs(broker.bootstrap)[b][0]
    # the broker goes on serving the other directory
    errors = []
    prod = Producer({"bootstrap.servers": broker.bootstrap, "linger.ms": 0})
    for i in range(10):
        prod.produce(topic, value=f"ok-{i}", partition=healthy, on_delivery=lambda e, _m: errors.append(e))
    assert prod.flush(20) == 0 and errors == [None] * 10
    refused = []
    prod = Producer({"bootstrap.servers": broker.bootstrap, "linger.ms": 0, "message.timeout.ms": 3000})
    prod.produce(topic, value="refused", partition=failing, on_delivery=lambda e, _m: refused.append(e))
    prod.flush(20)
    assert refused and refused[0] is not None, "an offline replica takes no writes"

    broker.stop()
    r = subprocess.run([BINARY, "server", "--data-dir", broker.dir, "--override", f"log.dirs={a},{b}",
                        "--override", "listeners=PLAINTEXT://127.0.0.1:0,CONTROLLER://127.0.0.1:0"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode != 0 and f"log directory {b} cannot be used" in r.stderr + r.stdout, r.stderr
    for d in (a, b + ".failed"):
        shutil.rmtree(d, ignore_errors=True)
    os.remove(b)
