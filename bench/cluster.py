"""3-node cluster benchmark, ferrolog vs Apache Kafka (3 KRaft nodes, each broker+controller),
same machine, same client (confluent-kafka / librdkafka):
  throughput and p99 produce latency at RF=3, acks=all, min.insync.replicas=2;
  leader failover: kill -9 the leader of a partition -> first acknowledged produce to it
  (three kills, median);
  controller failover: kill -9 the active controller -> first successful CreateTopics.
Usage: python3 bench/cluster.py ferrolog|kafka  (run from the repository root; bench/cluster.sh
builds ferrolog and fetches Kafka's jars first). Prints one "key value" line per result.
`python3 bench/cluster.py ferrolog|kafka transactions` measures instead transactional
throughput at RF=3 (100 records per transaction, each committed; a warm-up, then three runs of
300 transactions, median), where the transaction coordinator and the partitions' leaders are on
different nodes."""

import glob
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid

from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
FERROLOG = os.environ.get("FERROLOG_BIN", os.path.join(ROOT, "target", "release", "ferrolog"))
KAFKA_CP = os.path.join(ROOT, "target", "kafka-lib", "*")
NODES = (1, 2, 3)


def wait_port(port, timeout=90):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"port {port} not up")


class Cluster:
    def __init__(self, kind):
        self.kind = kind
        self.dir = tempfile.mkdtemp(prefix=f"bench-{kind}-")
        base = 19092 if kind == "ferrolog" else 29092
        self.client = {i: base + i - 1 for i in NODES}
        self.controller_port = {i: base + 100 + i - 1 for i in NODES}
        self.voters = ",".join(f"{i}@127.0.0.1:{p}" for i, p in self.controller_port.items())
        self.procs = {}
        if kind == "kafka":
            self.cluster_id = subprocess.run(["java", "-cp", KAFKA_CP, "kafka.tools.StorageTool", "random-uuid"],
                                             capture_output=True, text=True, check=True).stdout.strip()
        for i in NODES:
            self.start(i, first=True)
        for i in NODES:
            wait_port(self.client[i])
        time.sleep(3 if kind == "ferrolog" else 8)

    @property
    def bootstrap(self):
        return ",".join(f"127.0.0.1:{p}" for p in self.client.values())

    def start(self, i, first=False):
        log = open(os.path.join(self.dir, f"node-{i}.log"), "ab")
        if self.kind == "ferrolog":
            cmd = [FERROLOG, "server", "--data-dir", os.path.join(self.dir, f"node-{i}"),
                   "--override", f"node.id={i}",
                   "--override", f"listeners=PLAINTEXT://127.0.0.1:{self.client[i]},CONTROLLER://127.0.0.1:{self.controller_port[i]}",
                   "--override", f"controller.quorum.voters={self.voters}"]
        else:
            props = os.path.join(self.dir, f"node-{i}.properties")
            if first:
                with open(props, "w") as f:
                    f.write(f"""process.roles=broker,controller
node.id={i}
controller.quorum.voters={self.voters}
listeners=PLAINTEXT://127.0.0.1:{self.client[i]},CONTROLLER://127.0.0.1:{self.controller_port[i]}
advertised.listeners=PLAINTEXT://127.0.0.1:{self.client[i]}
controller.listener.names=CONTROLLER
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs={self.dir}/node-{i}
""")
                subprocess.run(["java", "-cp", KAFKA_CP, "kafka.tools.StorageTool", "format", "-t", self.cluster_id,
                                "-c", props], capture_output=True, check=True)
            cmd = ["java", "-Xmx1G", "-Xms1G", "-cp", KAFKA_CP, "-Dlog4j.configuration=file:/dev/null",
                   "kafka.Kafka", props]
        self.procs[i] = subprocess.Popen(cmd, stdout=log, stderr=log)

    def kill(self, i):
        self.procs[i].send_signal(signal.SIGKILL)
        self.procs[i].wait()

    def leader(self, topic, partition):
        admin = AdminClient({"bootstrap.servers": self.bootstrap})
        md = admin.list_topics(topic, timeout=10)
        return md.topics[topic].partitions[partition].leader

    def active_controller(self):
        if self.kind == "ferrolog":
            out = subprocess.run([FERROLOG, "cluster", "describe", "--bootstrap-server", self.bootstrap.split(",")[0]],
                                 capture_output=True, text=True).stdout
            return int(re.search(r"Controller: (\d+)", out)[1])
        alive = [i for i, p in self.procs.items() if p.poll() is None][0]
        out = subprocess.run(["java", "-cp", KAFKA_CP, "org.apache.kafka.tools.MetadataQuorumCommand",
                              "--bootstrap-server", f"127.0.0.1:{self.client[alive]}", "describe", "--status"],
                             capture_output=True, text=True).stdout
        return int(re.search(r"LeaderId:\s+(\d+)", out)[1])

    def stop(self):
        for p in self.procs.values():
            if p.poll() is None:
                p.kill()
                p.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


def create(bootstrap, topic, partitions=3):
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(topic, partitions, 3, config={"min.insync.replicas": "2"})])[topic].result(30)
    time.sleep(1)


def throughput(bootstrap, topic, records=200_000):
    p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 5, "enable.idempotence": True})
    value = b"x" * 100
    latencies = []

    def on_delivery(err, msg, sent):
        if err is None:
            latencies.append(time.time() - sent)

    start = time.time()
    for _ in range(records):
        sent = time.time()
        while True:
            try:
                p.produce(topic, value=value, on_delivery=lambda e, m, s=sent: on_delivery(e, m, s))
                break
            except BufferError:
                p.poll(0.005)
        p.poll(0)
    p.flush(120)
    elapsed = time.time() - start
    latencies.sort()
    return len(latencies) / elapsed, latencies[int(len(latencies) * 0.99)] * 1000


def produce_one(bootstrap, topic, partition, timeout):
    p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "message.timeout.ms": int(timeout * 1000),
                  "retry.backoff.ms": 20, "topic.metadata.refresh.interval.ms": 200})
    result = []
    p.produce(topic, value=b"probe", partition=partition, on_delivery=lambda e, m: result.append(e))
    p.flush(timeout + 1)
    return bool(result) and result[0] is None


def leader_failover(cluster, topic):
    """kill -9 the leader of partition 0; seconds until a produce to it is acknowledged."""
    p = Producer({"bootstrap.servers": cluster.bootstrap, "acks": "all", "retry.backoff.ms": 20,
                  "retry.backoff.max.ms": 100, "topic.metadata.refresh.interval.ms": 200,
                  "message.timeout.ms": 60000})
    p.produce(topic, value=b"warm", partition=0)
    p.flush(10)
    leader = cluster.leader(topic, 0)
    killed = time.time()
    cluster.kill(leader)
    acked = []
    p.produce(topic, value=b"after", partition=0, on_delivery=lambda e, m: acked.append((e, time.time())))
    p.flush(70)
    took = acked[0][1] - killed if acked and acked[0][0] is None else float("nan")
    cluster.start(leader)
    wait_port(cluster.client[leader])
    return took


def controller_failover(cluster):
    """kill -9 the active controller; seconds until CreateTopics succeeds."""
    victim = cluster.active_controller()
    alive = [i for i in NODES if i != victim]
    admin = AdminClient({"bootstrap.servers": ",".join(f"127.0.0.1:{cluster.client[i]}" for i in alive)})
    killed = time.time()
    cluster.kill(victim)
    while time.time() - killed < 60:
        topic = f"ctl-{uuid.uuid4().hex[:6]}"
        try:
            admin.create_topics([NewTopic(topic, 1, 2)], request_timeout=5)[topic].result(6)
            took = time.time() - killed
            break
        except Exception:
            time.sleep(0.05)
    else:
        took = float("nan")
    cluster.start(victim)
    wait_port(cluster.client[victim])
    return took


def transactions(c):
    from transactions import transactional
    topic = f"bench-tx-{uuid.uuid4().hex[:6]}"
    create(c.bootstrap, topic)
    p = Producer({"bootstrap.servers": c.bootstrap, "acks": "all", "linger.ms": 5,
                  "transactional.id": f"bench-{uuid.uuid4().hex[:6]}"})
    p.init_transactions(60)
    transactional(p, topic, 50)  # warm-up
    runs = sorted(transactional(p, topic, 300) for _ in range(3))
    print(f"txn_records_per_s {runs[1]:.0f}")
    print(f"txn_runs {' '.join(f'{r:.0f}' for r in runs)}")


def main():
    kind = sys.argv[1]
    c = Cluster(kind)
    if sys.argv[2:] == ["transactions"]:
        try:
            transactions(c)
        finally:
            c.stop()
        return
    try:
        topic = f"bench-{uuid.uuid4().hex[:6]}"
        create(c.bootstrap, topic)
        throughput(c.bootstrap, topic, 20_000)  # warm-up
        runs = [throughput(c.bootstrap, topic) for _ in range(3)]
        runs.sort()
        print(f"throughput {runs[1][0]:.0f}")
        print(f"p99_ms {sorted(r[1] for r in runs)[1]:.1f}")
        failovers = []
        for _ in range(3):
            time.sleep(20)  # the previous victim back in the ISR
            failovers.append(leader_failover(c, topic))
        print(f"leader_failover_s {sorted(failovers)[1]:.2f}")
        print(f"leader_failover_runs {' '.join(f'{f:.2f}' for f in failovers)}")
        time.sleep(15)
        print(f"controller_failover_s {controller_failover(c):.2f}")
    finally:
        c.stop()


if __name__ == "__main__":
    main()
