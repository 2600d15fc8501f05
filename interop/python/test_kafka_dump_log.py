"""Apache Kafka's own kafka-dump-log (kafka.tools.DumpLogSegments) reads ferrolog's segments and
indexes and finds them consistent (the on-disk format is Kafka's, byte for byte: docs/ARCHITECTURE.md, invariant 5)."""

import glob
import os
import subprocess

from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

from conftest import BINARY, ROOT

KAFKA_LIB = os.path.join(ROOT, "target", "kafka-lib")


def dump(*args):
    assert glob.glob(os.path.join(KAFKA_LIB, "kafka_2.13-*.jar")), "run scripts/test.sh (it fetches Kafka's jars)"
    result = subprocess.run(["java", "-cp", os.path.join(KAFKA_LIB, "*"), "kafka.tools.DumpLogSegments", *args],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def records(dump_output):
    """(offset, key, payload) of every record line."""
    out = []
    for line in dump_output.splitlines():
        if line.startswith("| offset: "):
            fields = line.split()
            key = line.split(" key: ", 1)[1].split(" payload: ", 1)[0]
            payload = line.split(" payload: ", 1)[1]
            out.append((int(fields[2]), key, payload))
    return out


def batches(dump_output):
    """(baseOffset, lastOffset, count, position, size, compresscodec) of every batch line."""
    out = []
    for line in dump_output.splitlines():
        if line.startswith("baseOffset:"):
            f = dict(zip(line.split()[0::2], line.split()[1::2]))
            out.append((f["baseOffset:"], f["lastOffset:"], f["count:"], f["position:"], f["size:"],
                        f["compresscodec:"].lower()))
    return out


def test_kafka_dump_log_reads_our_segments(fresh_broker):
    b = fresh_broker(["log.segment.bytes=50000", "log.index.interval.bytes=1000"])
    admin = AdminClient({"bootstrap.servers": b.bootstrap})
    admin.create_topics([NewTopic("dump", 1, 1)])["dump"].result(10)
    for codec in ["none", "gzip", "snappy", "lz4", "zstd"]:
        p = Producer({"bootstrap.servers": b.bootstrap, "compression.type": codec, "linger.ms": 2,
                      "batch.num.messages": 20})
        for i in range(400):
            p.produce("dump", key=f"{codec}-{i}", value=f"value-{codec}-{i}-" + os.urandom(60).hex())
        assert p.flush(20) == 0
    b.stop()  # clean shutdown trims the active segment's preallocated indexes
    part = os.path.join(b.dir, "dump-0")
    logs = sorted(glob.glob(os.path.join(part, "*.log")))
    assert len(logs) > 1, "expected several segments"
    total = 0
    index_dumps = ""
    for log in logs:
        out = dump("--files", log, "--deep-iteration", "--print-data-log")
        total += out.count("| offset: ")
        # differential: ferrolog's dump-log agrees with Kafka's on every batch and record
        ours = subprocess.run([BINARY, "dump-log", "--print-data-log", "--files", log], capture_output=True, text=True,
                              check=True, timeout=60).stdout
        assert records(ours) == records(out), log
        assert batches(ours) == batches(out), log
        assert "isvalid: false" not in out.lower(), out[-2000:]
        indexes = dump("--files", log.replace(".log", ".index") + "," + log.replace(".log", ".timeindex"))
        assert "mismatch" not in indexes.lower(), indexes[-2000:]
        index_dumps += indexes
    # Kafka's tool read index entries and checked each against the batch it points at
    assert index_dumps.count("offset:") > 10 and "timestamp:" in index_dumps, index_dumps[-2000:]
    assert total == 2000, f"kafka-dump-log saw {total} records"
    out = dump("--files", logs[0], "--deep-iteration", "--print-data-log")
    assert "key: none-0 payload: value-none-0-" in out
    assert "compresscodec: none" in out.lower() or "compresscodec: NONE" in out


def test_kafka_decodes_our_consumer_offsets_records(fresh_broker):
    """Committed offsets and group metadata are written in Kafka's __consumer_offsets format."""
    import time
    from confluent_kafka import Consumer
    b = fresh_broker(["group.initial.rebalance.delay.ms=0"])
    admin = AdminClient({"bootstrap.servers": b.bootstrap})
    admin.create_topics([NewTopic("decoded", 1, 1)])["decoded"].result(10)
    p = Producer({"bootstrap.servers": b.bootstrap})
    for i in range(5):
        p.produce("decoded", value=str(i))
    assert p.flush(10) == 0
    c = Consumer({"bootstrap.servers": b.bootstrap, "group.id": "decoded-group", "group.instance.id": "inst-1",
                  "client.id": "decoder-client", "auto.offset.reset": "earliest", "enable.auto.commit": False})
    c.subscribe(["decoded"])
    read, deadline = 0, time.time() + 20
    while read < 5 and time.time() < deadline:
        m = c.poll(0.2)
        read += m is not None and not m.error()
    c.commit(asynchronous=False)
    c.close()
    b.stop()
    logs = [f for f in glob.glob(os.path.join(b.dir, "__consumer_offsets-*", "*.log")) if os.path.getsize(f) > 0]
    assert len(logs) == 1, logs
    decoded = records(dump("--files", logs[0], "--offsets-decoder", "--print-data-log"))
    kinds = {key.split('"type":"')[1].split('"')[0] for _, key, _ in decoded}
    assert kinds == {"1", "2"}, decoded  # offset commits and group metadata
    group = [payload for _, key, payload in decoded if '"type":"2"' in key]
    assert '"protocolType":"consumer"' in group[0] and '"groupInstanceId":"inst-1"' in group[0], group[0]
    assert '"clientId":"decoder-client"' in group[0], group[0]
    offsets = [payload for _, key, payload in decoded if '"type":"1"' in key]
    assert '"offset":5' in offsets[-1], offsets


def test_kafka_reads_our_producer_snapshots_and_transaction_indexes(fresh_broker):
    """A clean shutdown leaves a producer snapshot and the aborted transaction in a .txnindex;
    Kafka's DumpLogSegments decodes both."""
    b = fresh_broker()
    admin = AdminClient({"bootstrap.servers": b.bootstrap})
    admin.create_topics([NewTopic("snap", 1, 1)])["snap"].result(10)
    p = Producer({"bootstrap.servers": b.bootstrap, "transactional.id": "snap-tx"})
    p.init_transactions(10)
    p.begin_transaction()
    p.produce("snap", value="kept")
    p.commit_transaction(10)
    p.begin_transaction()
    p.produce("snap", value="dropped")
    p.flush(10)
    p.abort_transaction(10)
    b.stop()
    part = os.path.join(b.dir, "snap-0")
    snapshots = glob.glob(os.path.join(part, "*.snapshot"))
    assert snapshots, os.listdir(part)
    out = dump("--files", sorted(snapshots)[-1])
    assert "producerId: 0" in out and "producerEpoch: 0" in out, out
    out = dump("--files", os.path.join(part, "00000000000000000000.txnindex"))
    # the aborted transaction: its record at offset 2, its ABORT marker at 3
    assert "producerId: 0" in out and "firstOffset: 2" in out and "lastOffset: 3" in out, out
