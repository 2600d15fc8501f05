"""Apache Kafka's own kafka-dump-log (kafka.tools.DumpLogSegments) reads ferrolog's segments and
indexes and finds them consistent (DESIGN §1: the on-disk format is Kafka's, byte for byte)."""

import glob
import os
import subprocess

from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

from conftest import ROOT

KAFKA_LIB = os.path.join(ROOT, "target", "kafka-lib")


def dump(*args):
    assert glob.glob(os.path.join(KAFKA_LIB, "kafka_2.13-*.jar")), "run scripts/test.sh (it fetches Kafka's jars)"
    result = subprocess.run(["java", "-cp", os.path.join(KAFKA_LIB, "*"), "kafka.tools.DumpLogSegments", *args],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


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
