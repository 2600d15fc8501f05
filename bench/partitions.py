"""Partition scale on one node: create N partitions (topics of 1,000 partitions, RF 1), write
one record to every partition, then kill -9 and restart; reports creation time, RSS, open file
descriptors, restart until every partition is writable again. The broker runs with the open
file limit this shell has (ulimit -n); run it for ferrolog and for Apache Kafka in one session.
Usage: python3 bench/partitions.py ferrolog|kafka N  (bench/partitions.sh runs both)."""

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

from confluent_kafka import KafkaException, Producer
from confluent_kafka.admin import AdminClient, NewTopic

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
FERROLOG = os.environ.get("FERROLOG_BIN", os.path.join(ROOT, "target", "release", "ferrolog"))
CP = os.path.join(ROOT, "target", "kafka-lib", "*")
PORT = 39092
PER_TOPIC = 1000


def rss_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        return next(int(l.split()[1]) / 1024 for l in f if l.startswith("VmRSS"))


def fds(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def start(kind, data):
    log = open(os.path.join(data, "broker.log"), "ab")
    if kind == "ferrolog":
        cmd = [FERROLOG, "server", "--data-dir", os.path.join(data, "fl"),
               "--override", f"listeners=PLAINTEXT://127.0.0.1:{PORT},CONTROLLER://127.0.0.1:0"]
    else:
        props = os.path.join(data, "server.properties")
        if not os.path.exists(props):
            with open(props, "w") as f:
                f.write("\n".join([
                    "process.roles=broker,controller", "node.id=1",
                    f"controller.quorum.bootstrap.servers=127.0.0.1:{PORT + 1}",
                    f"listeners=PLAINTEXT://127.0.0.1:{PORT},CONTROLLER://127.0.0.1:{PORT + 1}",
                    f"advertised.listeners=PLAINTEXT://127.0.0.1:{PORT}",
                    "controller.listener.names=CONTROLLER",
                    "listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
                    f"log.dirs={data}/kafka", "offsets.topic.replication.factor=1",
                    "transaction.state.log.replication.factor=1", "transaction.state.log.min.isr=1", ""]))
            uuid = subprocess.run(["java", "-cp", CP, "kafka.tools.StorageTool", "random-uuid"],
                                  capture_output=True, text=True, check=True).stdout.strip()
            subprocess.run(["java", "-cp", CP, "kafka.tools.StorageTool", "format", "--standalone", "-t", uuid,
                            "-c", props], check=True, capture_output=True)
        cmd = ["java", "-Xmx2G", "-cp", CP, "-Dlog4j.configuration=file:/dev/null", "kafka.Kafka", props]
    return subprocess.Popen(cmd, stdout=log, stderr=log)


def writable(topics, timeout):
    """Seconds until one record was acknowledged by every partition (None: not within timeout)."""
    started = time.time()
    pending = {(t, p) for t in topics for p in range(PER_TOPIC)}
    producer = Producer({"bootstrap.servers": f"127.0.0.1:{PORT}", "linger.ms": 50, "acks": 1,
                         "message.timeout.ms": 10_000, "queue.buffering.max.messages": 2_000_000})
    while pending and time.time() - started < timeout:
        done = set()
        for t, p in pending:
            try:
                producer.produce(t, b"r", partition=p,
                                 on_delivery=lambda e, m, k=(t, p): e is None and done.add(k))
            except (KafkaException, BufferError):
                producer.poll(0.1)  # not known to the client yet, or its queue is full
        producer.flush(30)
        pending -= done
    return None if pending else time.time() - started


def main():
    kind, n = sys.argv[1], int(sys.argv[2])
    data = tempfile.mkdtemp(prefix=f"bench-partitions-{kind}-")
    topics = [f"scale-{i}" for i in range(n // PER_TOPIC)]
    proc = start(kind, data)
    try:
        admin = AdminClient({"bootstrap.servers": f"127.0.0.1:{PORT}"})
        admin.list_topics(timeout=120)
        started = time.time()
        failed = []
        for t in topics:
            try:
                admin.create_topics([NewTopic(t, PER_TOPIC, 1)], operation_timeout=120)[t].result(timeout=300)
            except Exception as e:  # noqa: BLE001 - reported, not raised: the broker's limit is the result
                failed.append(f"{t}: {e}")
                break
        created = time.time() - started
        print(f"{kind} partitions_requested {n} topics_created {len(topics) - len(failed)} create_s {created:.1f}")
        if failed:
            print(f"{kind} create_failed {failed[0][:300]}")
        ok = [t for t in topics[:len(topics) - len(failed)]]
        took = writable(ok, 600)
        print(f"{kind} writable_s {took} rss_mib {rss_mib(proc.pid):.0f} open_fds {fds(proc.pid)}")
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        started = time.time()
        proc = start(kind, data)
        try:
            admin = AdminClient({"bootstrap.servers": f"127.0.0.1:{PORT}"})
            admin.list_topics(timeout=600)
            took = writable(ok, 900)
            restart = time.time() - started
            print(f"{kind} restart_until_writable_s {restart:.1f} (all writable: {took is not None}) "
                  f"rss_mib {rss_mib(proc.pid):.0f} open_fds {fds(proc.pid)}")
        except Exception as e:  # noqa: BLE001
            print(f"{kind} restart_failed {e} alive={proc.poll() is None}")
    finally:
        proc.kill()
        proc.wait()
        shutil.rmtree(data, ignore_errors=True)


if __name__ == "__main__":
    main()
