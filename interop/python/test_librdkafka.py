"""kcat and confluent-kafka-python (librdkafka) against ferrolog."""

import shutil
import subprocess
import time
import uuid

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

CODECS = ["none", "gzip", "snappy", "lz4", "zstd"]


def topic_name(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def create(bootstrap, name, partitions=1, config=None):
    admin = AdminClient({"bootstrap.servers": bootstrap})
    futures = admin.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1, config=config or {})])
    futures[name].result(timeout=10)


def consume_all(bootstrap, topic, partitions, expected, **extra):
    conf = {"bootstrap.servers": bootstrap, "group.id": "interop-none", "enable.auto.commit": False,
            "auto.offset.reset": "earliest", **extra}
    c = Consumer(conf)
    c.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
    out = []
    deadline = time.time() + 20
    eof = set()
    while len(out) < expected and time.time() < deadline:
        m = c.poll(0.5)
        if m is None:
            continue
        if m.error():
            if m.error().code() == KafkaError._PARTITION_EOF:
                eof.add(m.partition())
                if len(eof) == partitions and extra.get("enable.partition.eof"):
                    break
                continue
            raise KafkaException(m.error())
        out.append(m)
    c.close()
    return out


@pytest.mark.parametrize("codec", CODECS)
def test_confluent_produce_consume(broker, codec):
    topic = topic_name(f"ck-{codec}")
    create(broker.bootstrap, topic, partitions=3)
    p = Producer({"bootstrap.servers": broker.bootstrap, "compression.type": codec, "linger.ms": 5,
                  "enable.idempotence": True})
    acked = []
    for i in range(300):
        p.produce(topic, key=f"k{i}", value=f"v{i}", headers=[("h", b"x")],
                  on_delivery=lambda err, msg: acked.append((err, msg)))
    assert p.flush(20) == 0
    assert all(err is None for err, _ in acked), [e for e, _ in acked if e][:3]
    msgs = consume_all(broker.bootstrap, topic, 3, 300)
    assert sorted(m.value().decode() for m in msgs) == sorted(f"v{i}" for i in range(300))
    by_partition = {}
    for m in msgs:
        by_partition.setdefault(m.partition(), []).append(m.offset())
        assert m.headers() == [("h", b"x")]
        assert m.value().decode() == "v" + m.key().decode()[1:]
    for offsets in by_partition.values():
        assert offsets == list(range(len(offsets)))


def test_confluent_offsets_for_times_and_watermarks(broker):
    topic = topic_name("ck-times")
    create(broker.bootstrap, topic)
    p = Producer({"bootstrap.servers": broker.bootstrap, "linger.ms": 0})
    base = int(time.time() * 1000) - 60_000
    for i in range(50):
        p.produce(topic, value=str(i), timestamp=base + i * 100)
        p.flush(5)
    c = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "times"})
    lo, hi = c.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)
    assert (lo, hi) == (0, 50)
    found = c.offsets_for_times([TopicPartition(topic, 0, base + 2_050)], timeout=10)
    assert found[0].offset == 21
    c.close()


def test_confluent_long_poll_consumer_sees_late_record(broker):
    topic = topic_name("ck-late")
    create(broker.bootstrap, topic)
    c = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "late", "fetch.wait.max.ms": 2000})
    c.assign([TopicPartition(topic, 0, 0)])
    assert c.poll(1.0) is None
    p = Producer({"bootstrap.servers": broker.bootstrap})
    p.produce(topic, value=b"late")
    p.flush(5)
    deadline = time.time() + 10
    msg = None
    while msg is None and time.time() < deadline:
        msg = c.poll(0.5)
    assert msg is not None and msg.value() == b"late"
    c.close()


def test_confluent_message_too_large_is_rejected_by_broker(fresh_broker):
    b = fresh_broker(["message.max.bytes=10000"])
    topic = topic_name("ck-big")
    create(b.bootstrap, topic)
    p = Producer({"bootstrap.servers": b.bootstrap, "message.max.bytes": 1_000_000, "retries": 0})
    errors = []
    p.produce(topic, value=b"x" * 50_000, on_delivery=lambda err, msg: errors.append(err))
    p.flush(10)
    assert errors and errors[0] is not None
    assert errors[0].code() == KafkaError.MSG_SIZE_TOO_LARGE


def test_confluent_unknown_topic_without_auto_create(fresh_broker):
    b = fresh_broker(["auto.create.topics.enable=false"])
    admin = AdminClient({"bootstrap.servers": b.bootstrap})
    md = admin.list_topics(topic="does-not-exist", timeout=10)
    assert md.topics["does-not-exist"].error.code() == KafkaError.UNKNOWN_TOPIC_OR_PART


def test_confluent_admin_create_describe_delete(broker):
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    topic = topic_name("ck-admin")
    admin.create_topics([NewTopic(topic, 4, 1, config={"retention.ms": "1000000"})])[topic].result(10)
    bad = admin.create_topics([NewTopic("bad name!", 1, 1)])["bad name!"]
    with pytest.raises(KafkaException) as e:
        bad.result(10)
    assert e.value.args[0].code() == KafkaError.TOPIC_EXCEPTION
    from confluent_kafka.admin import ConfigResource
    res = admin.describe_configs([ConfigResource(ConfigResource.Type.TOPIC, topic)])
    configs = list(res.values())[0].result(10)
    assert configs["retention.ms"].value == "1000000"
    assert configs["segment.bytes"].value == "1073741824"
    md = admin.list_topics(timeout=10)
    assert len(md.topics[topic].partitions) == 4
    admin.delete_topics([topic])[topic].result(10)
    assert topic not in admin.list_topics(timeout=10).topics


@pytest.mark.skipif(shutil.which("kcat") is None, reason="kcat not installed")
@pytest.mark.parametrize("codec", CODECS)
def test_kcat_produce_consume(broker, codec):
    topic = topic_name(f"kcat-{codec}")
    create(broker.bootstrap, topic)
    lines = "".join(f"key{i}:value{i}\n" for i in range(100))
    subprocess.run(["kcat", "-b", broker.bootstrap, "-P", "-t", topic, "-z", codec, "-K", ":"],
                   input=lines, text=True, check=True, timeout=30)
    out = subprocess.run(["kcat", "-b", broker.bootstrap, "-C", "-t", topic, "-e", "-f", "%o %k %s\n"],
                         capture_output=True, text=True, check=True, timeout=30).stdout
    assert out.splitlines() == [f"{i} key{i} value{i}" for i in range(100)]


@pytest.mark.skipif(shutil.which("kcat") is None, reason="kcat not installed")
def test_kcat_metadata_lists_broker_and_topic(broker):
    topic = topic_name("kcat-md")
    create(broker.bootstrap, topic, partitions=2)
    out = subprocess.run(["kcat", "-b", broker.bootstrap, "-L", "-t", topic], capture_output=True, text=True,
                         check=True, timeout=30).stdout
    assert f"broker 1 at 127.0.0.1:{broker.port}" in out
    assert f'topic "{topic}" with 2 partitions' in out


def test_confluent_delete_records_and_incremental_alter_configs(broker):
    from confluent_kafka.admin import AlterConfigOpType, ConfigEntry, ConfigResource
    from confluent_kafka import TopicPartition as TP
    topic = topic_name("ck-life")
    create(broker.bootstrap, topic, config={"segment.bytes": "2000"})
    p = Producer({"bootstrap.servers": broker.bootstrap, "linger.ms": 0})
    for i in range(40):
        p.produce(topic, value=f"r{i}-" + "z" * 100)
        p.flush(5)
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    result = admin.delete_records([TP(topic, 0, 15)])
    deleted = list(result.values())[0].result(10)
    assert deleted.low_watermark == 15
    c = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "life"})
    assert c.get_watermark_offsets(TP(topic, 0), timeout=10) == (15, 40)
    c.close()
    resource = ConfigResource(ConfigResource.Type.TOPIC, topic, incremental_configs=[
        ConfigEntry("retention.ms", "3600000", incremental_operation=AlterConfigOpType.SET)])
    list(admin.incremental_alter_configs([resource]).values())[0].result(10)
    configs = list(admin.describe_configs([ConfigResource(ConfigResource.Type.TOPIC, topic)]).values())[0].result(10)
    assert configs["retention.ms"].value == "3600000"
    assert configs["retention.ms"].source == 1  # DYNAMIC_TOPIC_CONFIG


def test_confluent_reads_a_compacted_topic(fresh_broker):
    b = fresh_broker(["log.cleaner.backoff.ms=100"])
    topic = "compacted"
    create(b.bootstrap, topic, config={"cleanup.policy": "compact", "segment.bytes": "2000",
                                       "min.cleanable.dirty.ratio": "0.01", "delete.retention.ms": "300"})
    p = Producer({"bootstrap.servers": b.bootstrap, "linger.ms": 0, "compression.type": "zstd"})
    for rnd in range(20):
        for k in range(5):
            value = None if (k == 0 and rnd == 19) else f"{k}-{rnd}".encode()
            p.produce(topic, key=f"key{k}", value=value)
        p.flush(5)
    errors = []
    p.produce(topic, value=b"no key", on_delivery=lambda err, msg: errors.append(err))
    p.flush(5)
    assert errors[0] is not None and errors[0].code() == KafkaError.INVALID_RECORD
    deadline = time.time() + 20
    while True:
        msgs = consume_all(b.bootstrap, topic, 1, 10**6, **{"enable.partition.eof": True})
        if len(msgs) < 100 or time.time() > deadline:
            break
        time.sleep(0.3)
    assert len(msgs) < 100, "nothing was compacted"
    latest = {}
    for m in msgs:
        latest[m.key().decode()] = m.value()
    assert latest.get("key0", None) is None
    assert all(latest[f"key{k}"] == f"{k}-19".encode() for k in range(1, 5))
    # once its segment is older than delete.retention.ms, the tombstone goes too: key0 vanishes
    import os
    for i in range(60):  # roll the tombstone out of the active segment (incompressible fillers)
        p.produce(topic, key=f"filler{i % 3}", value=os.urandom(100).hex().encode())
        p.flush(5)
    deadline = time.time() + 20
    while True:
        keys = {m.key().decode() for m in consume_all(b.bootstrap, topic, 1, 10**6, **{"enable.partition.eof": True})}
        if "key0" not in keys or time.time() > deadline:
            break
        time.sleep(0.3)
    assert "key0" not in keys and "key1" in keys


def test_confluent_sees_retention_move_the_earliest_offset(fresh_broker):
    from confluent_kafka.admin import AlterConfigOpType, ConfigEntry, ConfigResource
    b = fresh_broker(["log.retention.check.interval.ms=200"])
    topic = "retained"
    create(b.bootstrap, topic, config={"segment.bytes": "3000"})
    p = Producer({"bootstrap.servers": b.bootstrap, "linger.ms": 0})
    old = int(time.time() * 1000) - 3_600_000
    for i in range(60):
        p.produce(topic, value=b"o" * 200, timestamp=old)
        p.flush(5)
    for i in range(5):
        p.produce(topic, value=b"n" * 200)
    p.flush(5)
    admin = AdminClient({"bootstrap.servers": b.bootstrap})
    resource = ConfigResource(ConfigResource.Type.TOPIC, topic, incremental_configs=[
        ConfigEntry("retention.ms", "600000", incremental_operation=AlterConfigOpType.SET)])
    list(admin.incremental_alter_configs([resource]).values())[0].result(10)
    c = Consumer({"bootstrap.servers": b.bootstrap, "group.id": "ret", "auto.offset.reset": "earliest"})
    deadline = time.time() + 15
    low = 0
    while low == 0 and time.time() < deadline:
        time.sleep(0.2)
        low, high = c.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)
    assert 0 < low <= 60 and high == 65
    # a consumer starting below the log start is reset to it (auto.offset.reset)
    c.assign([TopicPartition(topic, 0, 0)])
    msg = None
    while msg is None and time.time() < deadline + 10:
        msg = c.poll(0.5)
    assert msg is not None and not msg.error() and msg.offset() == low
    c.close()
