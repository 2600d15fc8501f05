"""Quota accuracy against a running broker: achieved / configured rate of a producer and of a
consumer held to `producer_byte_rate` / `consumer_byte_rate` client quotas (set with Kafka's
kafka-configs), measured over `seconds` after a warm-up that spends the quota window's initial
allowance (rates are measured over up to 11 one-second windows, so the first ~10 s worth goes
through at once on Kafka and ferrolog alike).
Usage: python3 bench/quotas.py BOOTSTRAP [seconds]  (bench/quotas.sh starts ferrolog and Kafka)."""

import os
import subprocess
import sys
import time

from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, NewTopic

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
CP = os.path.join(ROOT, "target", "kafka-lib", "*")
PRODUCE_RATE = 1 << 20  # 1 MiB/s
CONSUME_RATE = 2 << 20  # 2 MiB/s
WARMUP = 15
VALUE = b"q" * 10_000


def configs(bootstrap, *args):
    subprocess.run(["java", "-cp", CP, "kafka.admin.ConfigCommand", "--bootstrap-server", bootstrap, *args],
                   check=True, capture_output=True)


def produce(bootstrap, topic, client_id, seconds):
    """Bytes acknowledged during the last `seconds` of a run that first warms up."""
    acked = []
    p = Producer({"bootstrap.servers": bootstrap, "client.id": client_id, "linger.ms": 5,
                  "queue.buffering.max.kbytes": 8192})
    start = time.time()
    end = start + WARMUP + seconds
    while time.time() < end:
        try:
            p.produce(topic, VALUE, on_delivery=lambda e, m: e is None and acked.append((time.time(), len(m.value()))))
        except BufferError:
            p.poll(0.05)
        p.poll(0)
    p.purge()
    p.flush(2)
    return sum(n for t, n in acked if start + WARMUP <= t < end)


def consume(bootstrap, topic, client_id, seconds):
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": client_id, "client.id": client_id,
                  "auto.offset.reset": "earliest", "enable.auto.commit": False})
    c.subscribe([topic])
    got = 0
    start = time.time()
    end = start + WARMUP + seconds
    while time.time() < end:
        m = c.poll(0.1)
        if m is not None and not m.error() and time.time() >= start + WARMUP:
            got += len(m.value())
    c.close()
    return got


def main():
    bootstrap = sys.argv[1]
    seconds = int(sys.argv[2]) if len(sys.argv) > 2 else 30
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for t in ("quota-produce", "quota-consume"):
        admin.create_topics([NewTopic(t, 1, 1)])[t].result(timeout=30)
    configs(bootstrap, "--entity-type", "clients", "--entity-name", "bench-producer", "--alter",
            "--add-config", f"producer_byte_rate={PRODUCE_RATE}")
    configs(bootstrap, "--entity-type", "clients", "--entity-name", "bench-consumer", "--alter",
            "--add-config", f"consumer_byte_rate={CONSUME_RATE}")
    # enough for the consumer's whole run, unthrottled
    p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 20})
    need = CONSUME_RATE * (WARMUP + seconds + 15)
    for _ in range(need // len(VALUE)):
        while True:
            try:
                p.produce("quota-consume", VALUE)
                break
            except BufferError:
                p.poll(0.05)
        p.poll(0)
    p.flush(120)
    time.sleep(2)
    produced = produce(bootstrap, "quota-produce", "bench-producer", seconds)
    consumed = consume(bootstrap, "quota-consume", "bench-consumer", seconds)
    print(f"produce_rate_configured {PRODUCE_RATE} achieved {produced / seconds:.0f} ratio {produced / seconds / PRODUCE_RATE:.3f}")
    print(f"consume_rate_configured {CONSUME_RATE} achieved {consumed / seconds:.0f} ratio {consumed / seconds / CONSUME_RATE:.3f}")


if __name__ == "__main__":
    main()
