"""Delayed produce and delayed fetch at many partitions, ferrolog vs Apache Kafka (3 KRaft nodes,
each broker+controller, RF=3, min.insync.replicas=2), same machine, same client (librdkafka):

  acks=all produce at a fixed rate spread round-robin over the partitions of one topic:
  p50/p99 delivery latency and the brokers' CPU, at 10 and at 1,000 partitions;
  the same produce at 10 partitions while consumers long-poll 1,000 idle partitions (each
  consumer a fetch session of 250 partitions that never get data): what the idle fetches cost.

Each figure is the median of --repeat runs (3) of --seconds (20) after a 3 s warm-up of the same
producer, at --rate records/s (1000).

Usage: python3 bench/purgatory.py ferrolog|kafka [--rate N] [--seconds S] [--repeat R]  (from the
repository root; bench/purgatory.sh builds ferrolog and fetches Kafka's jars first; FERROLOG_BIN
picks another ferrolog binary, e.g. one built from an earlier commit). Prints one "key value"
line per result."""

import argparse
import multiprocessing
import os
import sys
import time
import uuid

sys.path.insert(0, os.path.dirname(__file__))
from cluster import Cluster  # noqa: E402
from confluent_kafka import Consumer, Producer, TopicPartition  # noqa: E402
from confluent_kafka.admin import AdminClient, NewTopic  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pids):
    total = 0
    for pid in pids:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / TICK


def create(bootstrap, topic, partitions):
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(topic, partitions, 3, config={"min.insync.replicas": "2"})])[topic].result(120)
    # every partition has a leader and a full ISR before the run
    deadline = time.time() + 120
    while time.time() < deadline:
        md = admin.list_topics(topic, timeout=10).topics[topic]
        if len(md.partitions) == partitions and all(p.leader >= 0 and len(p.isrs) == 3 for p in md.partitions.values()):
            return
        time.sleep(1)
    raise RuntimeError(f"{topic}: partitions not ready")


def produce(bootstrap, topic, partitions, rate, seconds, out, warm=3):
    """acks=all at `rate` records/s, round-robin over the partitions, for `warm` + `seconds`
    seconds; puts the sorted latencies (ms) of the records sent after the first `warm` seconds
    (a new producer's first records wait for its connections, metadata and producer id)."""
    p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 5, "enable.idempotence": True})
    value = b"x" * 100
    latencies = []
    errors = []

    def delivered(err, _msg, sent, measured):
        if err is not None:
            errors.append(err)
        elif measured:
            latencies.append((time.perf_counter() - sent) * 1000)

    first = int(rate * warm)
    total = first + int(rate * seconds)
    start = time.perf_counter()
    for i in range(total):
        due = start + i / rate
        while True:
            now = time.perf_counter()
            if now >= due:
                break
            p.poll(min(due - now, 0.01))
        sent = time.perf_counter()
        p.produce(topic, value=value, partition=i % partitions,
                  on_delivery=lambda e, m, s=sent, k=i >= first: delivered(e, m, s, k))
    p.flush(60)
    latencies.sort()
    out.put((latencies, len(errors)))


def idle_consumer(bootstrap, topic, partitions, stop):
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"idle-{uuid.uuid4().hex[:6]}",
                  "enable.auto.commit": False, "fetch.wait.max.ms": 500})
    c.assign([TopicPartition(topic, p, 0) for p in partitions])
    while not stop.is_set():
        c.poll(0.2)
    c.close()


def run(cluster, topic, partitions, rate, seconds):
    pids = [p.pid for p in cluster.procs.values()]
    out = multiprocessing.Queue()
    warm = 3
    proc = multiprocessing.Process(target=produce,
                                   args=(cluster.bootstrap, topic, partitions, rate, seconds, out, warm))
    proc.start()
    time.sleep(warm)  # the brokers' CPU over the measured part
    cpu0, t0 = cpu_seconds(pids), time.time()
    latencies, errors = out.get()
    cpu = (cpu_seconds(pids) - cpu0) / (time.time() - t0)
    proc.join()
    pick = lambda q: latencies[min(len(latencies) - 1, int(len(latencies) * q))] if latencies else float("nan")
    return pick(0.50), pick(0.99), cpu, errors


def report(name, runs):
    """The median of each figure over the runs (errors: their sum)."""
    med = lambda xs: sorted(xs)[len(xs) // 2]
    print(f"{name}_p50_ms {med([r[0] for r in runs]):.1f}")
    print(f"{name}_p99_ms {med([r[1] for r in runs]):.1f}")
    print(f"{name}_broker_cpu {med([r[2] for r in runs]):.2f}")
    print(f"{name}_p99_runs {' '.join(f'{r[1]:.1f}' for r in runs)}")
    print(f"{name}_errors {sum(r[3] for r in runs)}", flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("kind", choices=["ferrolog", "kafka"])
    ap.add_argument("--rate", type=int, default=1000)
    ap.add_argument("--seconds", type=int, default=20)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    c = Cluster(args.kind)
    try:
        tag = uuid.uuid4().hex[:6]
        small, large, idle = f"p10-{tag}", f"p1000-{tag}", f"idle-{tag}"
        create(c.bootstrap, small, 10)
        create(c.bootstrap, large, 1000)
        for name, topic, n in (("p10", small, 10), ("p1000", large, 1000)):
            report(name, [run(c, topic, n, args.rate, args.seconds) for _ in range(args.repeat)])
        create(c.bootstrap, idle, 1000)
        stop = multiprocessing.Event()
        consumers = [multiprocessing.Process(target=idle_consumer,
                                             args=(c.bootstrap, idle, list(range(k, 1000, 4)), stop))
                     for k in range(4)]
        for p in consumers:
            p.start()
        time.sleep(10)  # sessions established
        runs = [run(c, small, 10, args.rate, args.seconds) for _ in range(args.repeat)]
        stop.set()
        for p in consumers:
            p.join(30)
        report("idle", runs)
    finally:
        c.stop()


if __name__ == "__main__":
    main()
