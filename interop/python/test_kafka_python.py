"""kafka-python against ferrolog."""

import time
import uuid

import pytest
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic
from kafka.errors import TopicAlreadyExistsError

CODECS = [None, "gzip", "snappy", "lz4", "zstd"]


def new_topic(broker, prefix, partitions=1):
    name = f"{prefix}-{uuid.uuid4().hex[:8]}"
    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
    admin.create_topics([NewTopic(name, partitions, 1)])
    admin.close()
    return name


@pytest.mark.parametrize("codec", CODECS)
def test_kafka_python_produce_consume(broker, codec):
    topic = new_topic(broker, f"kp-{codec}", partitions=2)
    p = KafkaProducer(bootstrap_servers=broker.bootstrap, compression_type=codec, linger_ms=5, acks="all")
    futures = [p.send(topic, key=f"k{i}".encode(), value=f"v{i}".encode(), headers=[("h", b"1")]) for i in range(200)]
    p.flush(20)
    metas = [f.get(timeout=10) for f in futures]
    assert all(m.offset >= 0 for m in metas)
    p.close()
    c = KafkaConsumer(bootstrap_servers=broker.bootstrap, auto_offset_reset="earliest", enable_auto_commit=False,
                      consumer_timeout_ms=5000)
    c.assign([TopicPartition(topic, 0), TopicPartition(topic, 1)])
    c.seek_to_beginning()
    got = []
    for m in c:
        got.append(m)
        if len(got) == 200:
            break
    c.close()
    assert sorted(m.value for m in got) == sorted(f"v{i}".encode() for i in range(200))
    assert all(m.headers == [("h", b"1")] for m in got)


def test_kafka_python_offsets_for_times(broker):
    topic = new_topic(broker, "kp-times")
    p = KafkaProducer(bootstrap_servers=broker.bootstrap)
    base = int(time.time() * 1000) - 30_000
    for i in range(20):
        p.send(topic, value=b"x", timestamp_ms=base + i * 1000).get(timeout=10)
    p.close()
    c = KafkaConsumer(bootstrap_servers=broker.bootstrap)
    tp = TopicPartition(topic, 0)
    found = c.offsets_for_times({tp: base + 5_500})
    assert found[tp].offset == 6
    assert c.beginning_offsets([tp])[tp] == 0
    assert c.end_offsets([tp])[tp] == 20
    c.close()


def test_kafka_python_admin_rules(broker):
    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
    name = f"kp-admin-{uuid.uuid4().hex[:8]}"
    admin.create_topics([NewTopic(name, 3, 1)])
    with pytest.raises(TopicAlreadyExistsError):
        admin.create_topics([NewTopic(name, 3, 1)])
    assert name in admin.list_topics()
    admin.delete_topics([name])
    assert name not in admin.list_topics()
    admin.close()
