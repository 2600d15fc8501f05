"""Transactions and exactly-once with real clients (librdkafka via confluent-kafka,
kafka-python's idempotent producer): commit/abort visibility, the last stable offset, fencing,
timeouts, a consume-transform-produce loop killed with SIGKILL, and a broker crash mid-transaction."""

import glob
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest
from confluent_kafka import Consumer, KafkaException, Producer
from confluent_kafka.admin import AdminClient, NewTopic
from kafka import KafkaProducer

from conftest import ROOT

SETTINGS = ["group.initial.rebalance.delay.ms=0",
            "transaction.abort.timed.out.transaction.cleanup.interval.ms=500"]


def create(bootstrap, topic, partitions):
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(topic, partitions, 1)])[topic].result(10)


def read_all(bootstrap, topic, isolation, seconds=6, want=None):
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"reader-{time.time()}", "enable.auto.commit": False,
                  "auto.offset.reset": "earliest", "isolation.level": isolation})
    c.subscribe([topic])
    got, deadline = [], time.time() + seconds
    while time.time() < deadline and (want is None or len(got) < want):
        m = c.poll(0.1)
        if m is not None and not m.error():
            got.append((m.partition(), m.offset(), m.value().decode()))
    c.close()
    return got


def transactional(bootstrap, txn_id, **extra):
    p = Producer({"bootstrap.servers": bootstrap, "transactional.id": txn_id, **extra})
    p.init_transactions(15)
    return p


def test_commit_abort_and_the_last_stable_offset(fresh_broker):
    b = fresh_broker(SETTINGS)
    create(b.bootstrap, "tx", 2)
    p = transactional(b.bootstrap, "tx-1")
    p.begin_transaction()
    for i in range(10):
        p.produce("tx", key=str(i), value=f"committed-{i}")
    p.commit_transaction(10)
    p.begin_transaction()
    for i in range(10):
        p.produce("tx", key=str(i), value=f"aborted-{i}")
    p.flush(10)
    p.abort_transaction(10)
    # an open transaction holds read_committed readers back at its first offset...
    p.begin_transaction()
    for i in range(4):
        p.produce("tx", key=str(i), value=f"pending-{i}")
    p.flush(10)
    plain = Producer({"bootstrap.servers": b.bootstrap})
    for i in range(4):
        plain.produce("tx", key=str(i), value=f"after-{i}")
    assert plain.flush(10) == 0
    committed = {v for _, _, v in read_all(b.bootstrap, "tx", "read_committed")}
    assert committed == {f"committed-{i}" for i in range(10)}, committed
    uncommitted = {v for _, _, v in read_all(b.bootstrap, "tx", "read_uncommitted", want=38)}
    assert {v.split("-")[0] for v in uncommitted} == {"committed", "aborted", "pending", "after"}
    # ...until it commits: then the pending and the later plain records are stable
    p.commit_transaction(10)
    committed = {v for _, _, v in read_all(b.bootstrap, "tx", "read_committed", want=18)}
    assert {v.split("-")[0] for v in committed} == {"committed", "pending", "after"}, committed
    assert len(committed) == 18


def test_a_second_producer_with_the_same_id_fences_the_first(fresh_broker):
    b = fresh_broker(SETTINGS)
    create(b.bootstrap, "fence", 1)
    first = transactional(b.bootstrap, "fenced-id")
    first.begin_transaction()
    first.produce("fence", value="zombie")
    first.flush(10)
    second = transactional(b.bootstrap, "fenced-id")  # aborts the first one's open transaction
    with pytest.raises(KafkaException) as fenced:
        first.commit_transaction(10)
    assert fenced.value.args[0].fatal(), fenced.value
    second.begin_transaction()
    second.produce("fence", value="live")
    second.commit_transaction(10)
    assert [v for _, _, v in read_all(b.bootstrap, "fence", "read_committed")] == ["live"]


def test_a_transaction_past_its_timeout_is_aborted(fresh_broker):
    b = fresh_broker(SETTINGS)
    create(b.bootstrap, "slow", 1)
    p = transactional(b.bootstrap, "slow-id", **{"transaction.timeout.ms": 2000})
    p.begin_transaction()
    p.produce("slow", value="too-late")
    p.flush(10)
    time.sleep(4)
    with pytest.raises(KafkaException):
        p.commit_transaction(10)
    assert read_all(b.bootstrap, "slow", "read_committed", seconds=3) == []
    assert [v for _, _, v in read_all(b.bootstrap, "slow", "read_uncommitted", want=1)] == ["too-late"]


def test_an_open_transaction_survives_a_broker_crash(fresh_broker):
    b = fresh_broker(SETTINGS)
    create(b.bootstrap, "crash", 1)
    p = transactional(b.bootstrap, "crash-id")
    p.begin_transaction()
    for i in range(5):
        p.produce("crash", value=f"v{i}")
    p.flush(10)
    b.proc.send_signal(signal.SIGKILL)
    b.proc.wait()
    b.log.close()
    b.start()
    p.commit_transaction(30)
    assert sorted(v for _, _, v in read_all(b.bootstrap, "crash", "read_committed", want=5)) == [f"v{i}" for i in range(5)]


APP = textwrap.dedent("""
    import sys, time
    from confluent_kafka import Consumer, Producer, TopicPartition
    bootstrap = sys.argv[1]
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "eos-app", "enable.auto.commit": False,
                  "session.timeout.ms": 6000,
                  "auto.offset.reset": "earliest", "isolation.level": "read_committed"})
    p = Producer({"bootstrap.servers": bootstrap, "transactional.id": "eos-app-1"})
    p.init_transactions(30)
    c.subscribe(["eos-in"])
    while True:
        batch = c.consume(20, 0.5)
        batch = [m for m in batch if not m.error()]
        if not batch:
            continue
        p.begin_transaction()
        for m in batch:
            p.produce("eos-out", key=m.key(), value=b"out-" + m.value(), partition=m.partition())
        p.send_offsets_to_transaction(c.position(c.assignment()), c.consumer_group_metadata(), 30)
        p.commit_transaction(30)
        print(len(batch), flush=True)
        time.sleep(0.05)
""")


def test_consume_transform_produce_is_exactly_once_across_sigkill(fresh_broker):
    b = fresh_broker(SETTINGS)
    create(b.bootstrap, "eos-in", 3)
    create(b.bootstrap, "eos-out", 3)
    p = Producer({"bootstrap.servers": b.bootstrap})
    for i in range(600):
        p.produce("eos-in", key=str(i), value=str(i), partition=i % 3)
    assert p.flush(10) == 0
    # run the app, kill -9 it mid-stream, run it again until everything is through
    app = subprocess.Popen([sys.executable, "-c", APP, b.bootstrap], stdout=subprocess.PIPE, text=True)
    done = 0
    while done < 200:
        line = app.stdout.readline()
        assert line, "the app exited"
        done += int(line)
    app.send_signal(signal.SIGKILL)
    app.wait()
    again = subprocess.Popen([sys.executable, "-c", APP, b.bootstrap], stdout=subprocess.DEVNULL)
    try:
        read_all(b.bootstrap, "eos-out", "read_committed", seconds=60, want=600)
    finally:
        again.kill()
        again.wait()
    # everything the output topic holds, read_committed: each input exactly once
    out = read_all(b.bootstrap, "eos-out", "read_committed", seconds=4)
    values = [v for _, _, v in out]
    assert sorted(values, key=lambda v: int(v[4:])) == [f"out-{i}" for i in range(600)], \
        f"{len(values)} records, {len(set(values))} distinct"
    # order within each partition follows the input
    for part in range(3):
        seq = [int(v[4:]) for pp, _, v in sorted(out) if pp == part]
        assert seq == sorted(seq)


def test_kafka_python_idempotent_producer(fresh_broker):
    b = fresh_broker(SETTINGS)
    create(b.bootstrap, "idem", 1)
    p = KafkaProducer(bootstrap_servers=b.bootstrap, enable_idempotence=True, acks="all")
    for i in range(100):
        p.send("idem", value=str(i).encode())
    p.flush(10)
    p.close()
    values = [v for _, _, v in read_all(b.bootstrap, "idem", "read_uncommitted", want=100)]
    assert values == [str(i) for i in range(100)]


def kafka_transactions_tool(bootstrap, *args):
    """Apache Kafka's kafka-transactions.sh (org.apache.kafka.tools.TransactionsCommand)."""
    lib = os.path.join(ROOT, "target", "kafka-lib")
    assert glob.glob(os.path.join(lib, "kafka-tools-*.jar")), "run scripts/test.sh (it fetches Kafka's jars)"
    result = subprocess.run(["java", "-cp", os.path.join(lib, "*"), "org.apache.kafka.tools.TransactionsCommand",
                             "--bootstrap-server", bootstrap, *args], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr[-2000:]
    return [line.split() for line in result.stdout.splitlines()]


def test_hanging_transaction_found_and_aborted_with_the_cli_and_kafkas_tool(fresh_broker):
    b = fresh_broker(SETTINGS)
    create(b.bootstrap, "hang", 1)
    plain = Producer({"bootstrap.servers": b.bootstrap})
    plain.produce("hang", value="before")
    assert plain.flush(10) == 0
    p = transactional(b.bootstrap, "hanger")
    p.begin_transaction()
    p.produce("hang", value="stuck")
    p.flush(10)
    plain.produce("hang", value="after")
    assert plain.flush(10) == 0
    # the open transaction holds read_committed readers at offset 1
    assert [v for _, _, v in read_all(b.bootstrap, "hang", "read_committed", seconds=3)] == ["before"]

    listed = b.cli("transactions", "--bootstrap-server", b.bootstrap, "list")
    assert ["hanger", "0", "Ongoing"] in [l.split() for l in listed.stdout.splitlines()], listed.stdout
    described = b.cli("transactions", "--bootstrap-server", b.bootstrap, "describe", "--transactional-id", "hanger")
    assert described.returncode == 0 and "hang-0" in described.stdout, described.stdout + described.stderr
    producers = b.cli("transactions", "--bootstrap-server", b.bootstrap, "describe-producers", "--topic", "hang",
                      "--partition", "0")
    assert producers.stdout.splitlines()[1].split()[-1] == "1", producers.stdout
    # Kafka's own tool sees the same, and aborts the transaction by its start offset
    rows = kafka_transactions_tool(b.bootstrap, "list")
    assert any(r[:1] == ["hanger"] and "Ongoing" in r for r in rows), rows
    rows = kafka_transactions_tool(b.bootstrap, "describe-producers", "--topic", "hang", "--partition", "0")
    assert rows[1][-1] == "1", rows
    kafka_transactions_tool(b.bootstrap, "abort", "--topic", "hang", "--partition", "0", "--start-offset", "1")
    assert [v for _, _, v in read_all(b.bootstrap, "hang", "read_committed", want=2)] == ["before", "after"]
    # unknown ids and bad patterns get Kafka's errors
    missing = b.cli("transactions", "--bootstrap-server", b.bootstrap, "describe", "--transactional-id", "nope")
    assert missing.returncode != 0 and "TransactionalIdNotFound" in missing.stderr, missing.stderr


class ChaosProxy:
    """A TCP proxy in front of the broker that cuts every connection through it every
    `period` seconds, mid-request or not."""

    def __init__(self, port, upstream, period):
        import socket
        import threading
        self.upstream, self.period = upstream, period
        self.pairs, self.lock, self.stopped = [], threading.Lock(), threading.Event()
        self.cuts = 0
        self.server = socket.create_server(("127.0.0.1", port))
        threading.Thread(target=self.accept, daemon=True).start()
        threading.Thread(target=self.chaos, daemon=True).start()

    def accept(self):
        import socket
        import threading
        while True:
            try:
                client, _ = self.server.accept()
                upstream = socket.create_connection(("127.0.0.1", self.upstream))
            except OSError:
                continue
            with self.lock:
                self.pairs.append((client, upstream))
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self.pump, args=(a, b), daemon=True).start()

    @staticmethod
    def pump(src, dst):
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            pass
        for s in (src, dst):
            try:
                s.close()
            except OSError:
                pass

    def chaos(self):
        import socket
        last = time.time()
        while not self.stopped.wait(0.02):
            if time.time() - last < self.period:
                continue
            last = time.time()
            with self.lock:
                pairs, self.pairs = self.pairs, []
            for pair in pairs:
                for s in pair:
                    try:
                        s.shutdown(socket.SHUT_RDWR)
                        s.close()
                    except OSError:
                        pass
                self.cuts += 1

    def calm(self):
        """Stops the cutting; the proxy keeps forwarding."""
        self.stopped.set()


def test_idempotent_producer_through_cut_connections_has_no_duplicates_or_reordering(fresh_broker):
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        proxy_port = s.getsockname()[1]
    b = fresh_broker(SETTINGS + [f"advertised.listeners=PLAINTEXT://127.0.0.1:{proxy_port}"])
    proxy = ChaosProxy(proxy_port, b.port, period=1000)  # calm while the topic is created
    create(f"127.0.0.1:{proxy_port}", "cut", 1)
    proxy.period = 0.3
    p = Producer({"bootstrap.servers": f"127.0.0.1:{proxy_port}", "enable.idempotence": True, "acks": "all",
                  "max.in.flight.requests.per.connection": 5, "linger.ms": 5, "batch.num.messages": 50,
                  "message.timeout.ms": 120000, "reconnect.backoff.ms": 10, "reconnect.backoff.max.ms": 100})
    failures = []
    for i in range(5000):
        p.produce("cut", value=str(i), on_delivery=lambda err, _m: err and failures.append(err))
        if i % 100 == 0:
            p.poll(0)
            time.sleep(0.05)
    assert p.flush(120) == 0
    proxy.calm()
    assert not failures, failures[:3]
    assert proxy.cuts > 3, "the proxy cut connections while the producer ran"
    values = [int(v) for _, _, v in read_all(f"127.0.0.1:{proxy_port}", "cut", "read_uncommitted", seconds=20,
                                                    want=5000)]
    assert values == list(range(5000)), f"{len(values)} records, {len(set(values))} distinct"


def test_idle_transactional_ids_expire_and_stay_gone_after_a_restart(fresh_broker):
    b = fresh_broker(SETTINGS + ["transactional.id.expiration.ms=1500"])
    create(b.bootstrap, "idle", 1)
    p = transactional(b.bootstrap, "idle-id")
    p.begin_transaction()
    p.produce("idle", value="v")
    p.commit_transaction(10)
    listed = lambda: [l.split()[0] for l in b.cli("transactions", "--bootstrap-server", b.bootstrap, "list").stdout.splitlines()[1:]]
    assert listed() == ["idle-id"]
    deadline = time.time() + 15
    while "idle-id" in listed() and time.time() < deadline:
        time.sleep(0.3)
    assert listed() == [], "expired"
    b.stop()
    b.start()
    assert listed() == [], "the tombstone is replayed"
