"""Dedicated roles: three controllers (process.roles=controller, a Raft quorum) and three
brokers (process.roles=broker, observers of the metadata log; broker 3 finds the controllers
through controller.quorum.bootstrap.servers). Real clients through a broker kill and a
controller kill; two of three brokers down gives NOT_ENOUGH_REPLICAS while the controllers
keep working; Kafka's quorum tool sees the brokers as observers."""

import logging
import os
import re
import shutil
import subprocess

import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic
from kafka import KafkaConsumer, TopicPartition

from conftest import ROOT
from test_cluster import Cluster, check_acks_all_refused_acks_1_taken, leader_kill_and_rejoin


@pytest.fixture(scope="module")
def cluster():
    # a session far longer than the failover asserted below: a killed broker must be found
    # gone by its refused listener, not by its session running out
    # brokers in racks r1-r3, and Kafka's rack-aware replica selector (KIP-392)
    c = Cluster(dedicated=True, bootstrap_brokers=[3], racks={1: "r1", 2: "r2", 3: "r3"},
                overrides=["broker.session.timeout.ms=30000",
                           "replica.selector.class=org.apache.kafka.common.replica.RackAwareReplicaSelector"])
    yield c
    c.stop()
    shutil.rmtree(c.dir, ignore_errors=True)


def test_dedicated_broker_kill(cluster):
    """kill -9 a leading broker under an idempotent acks=all producer: a new leader, no loss,
    no duplicates; the broker restarts, rejoins every ISR and holds the same bytes. The
    controller fences the dead broker within seconds although its session is 30 s: its
    listener refuses connections."""
    failover = leader_kill_and_rejoin(cluster, "dedicated-failover")
    assert failover < 10, f"a new leader {failover:.1f} s after the kill"


def test_dedicated_controller_kill(cluster):
    """kill -9 the active controller (no broker on it): another controller takes over and
    topics can still be created and written."""
    controller, out = cluster.controller()
    assert controller > 1000, out
    cluster.kill(controller)
    cluster.wait_for("a new active controller",
                     lambda: cluster.controller()[0] not in (-1, controller))
    topic = "after-dedicated-controller-kill"
    cluster.create(topic, partitions=2)
    failures = []
    p = Producer({"bootstrap.servers": cluster.bootstrap, "acks": "all"})
    for _ in range(100):
        p.produce(topic, value=b"x", on_delivery=lambda e, m: e and failures.append(e))
    p.flush(30)
    assert not failures
    cluster.start(controller)


def test_two_brokers_down_not_enough_replicas(cluster):
    """With two of three brokers down the controllers still work: the ISR shrinks to the
    leader, acks=all gets NOT_ENOUGH_REPLICAS (min.insync.replicas=2), acks=1 works."""
    topic = "two-down"
    cluster.create(topic, partitions=1)
    leader, replicas, _, _ = cluster.describe(topic)[0]
    followers = [r for r in replicas if r != leader]
    for f in followers:
        cluster.kill(f)
    cluster.wait_for("the ISR shrinks to the leader",
                     lambda: cluster.describe(topic, node=leader)[0][2] == [leader])
    check_acks_all_refused_acks_1_taken(cluster, topic, leader)
    for f in followers:
        cluster.start(f)
    cluster.wait_for("the ISR whole again",
                     lambda: len(cluster.describe(topic, node=leader)[0][2]) == 3, timeout=60)


def test_quorum_tool_sees_observers(cluster):
    """Kafka's kafka-metadata-quorum lists the controllers as voters and the brokers as
    observers."""
    kafka_lib = os.path.join(ROOT, "target", "kafka-lib", "*")
    out = subprocess.run(["java", "-cp", kafka_lib, "org.apache.kafka.tools.MetadataQuorumCommand",
                          "--bootstrap-server", cluster.bootstrap, "describe", "--replication"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    rows = [l.split() for l in out.stdout.splitlines()[1:] if l.strip()]
    status = {int(r[0]): r[-1] for r in rows}
    assert {1001, 1002, 1003} <= set(status), out.stdout
    assert {1, 2, 3} <= set(status), out.stdout
    assert all(status[i] == "Observer" for i in (1, 2, 3)), out.stdout
    assert any(status[i] == "Leader" for i in (1001, 1002, 1003)), out.stdout
    assert re.search(r"\b100[123]\b", out.stdout)


def test_consumer_reads_from_a_replica_in_its_rack(cluster, caplog):
    """KIP-392: the leader (broker 1, rack r1) sends a consumer with client.rack=r3 to broker 3,
    which serves it every record (kafka-python, which logs where it fetches from)."""
    topic = "by-rack"
    admin = AdminClient({"bootstrap.servers": cluster.bootstrap})
    admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=-1,
                                  replica_assignment=[[1, 2, 3]])])[topic].result(30)
    cluster.wait_for("leader 1, all in sync", lambda: (lambda p: p[0] == 1 and len(p[2]) == 3)(
        cluster.describe(topic)[0]))
    p = Producer({"bootstrap.servers": cluster.bootstrap, "acks": "all"})
    for i in range(200):
        p.produce(topic, value=str(i).encode())
    assert p.flush(30) == 0
    caplog.set_level(logging.DEBUG, logger="kafka.consumer.fetcher")
    consumer = KafkaConsumer(bootstrap_servers=cluster.bootstrap, client_rack="r3",
                             auto_offset_reset="earliest", enable_auto_commit=False,
                             consumer_timeout_ms=8000)
    consumer.assign([TopicPartition(topic, 0)])
    values = [m.value.decode() for m in consumer]
    consumer.close()
    assert values == [str(i) for i in range(200)]
    assert re.search(r"Updating preferred read replica for partition .*by-rack.* to 3", caplog.text), caplog.text[-3000:]
    assert "Error fetching partition" not in caplog.text
    assert "retrying from leader" not in caplog.text

