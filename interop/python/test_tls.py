"""TLS listeners with real clients: librdkafka (confluent-kafka and kcat), kafka-python, and the
Java client through Apache Kafka's own tools with --command-config, over mutual TLS with PKCS12
and PEM stores. Bad connections are refused; the broker keeps serving the good ones."""

import glob
import os
import shutil
import subprocess
import tempfile
import time

import pytest
from confluent_kafka import Consumer, KafkaException, Producer
from confluent_kafka.admin import AdminClient, NewTopic
from kafka import KafkaConsumer, KafkaProducer

from conftest import BINARY, ROOT, Ferrolog

KAFKA_LIB = os.path.join(ROOT, "target", "kafka-lib")


@pytest.fixture(scope="module")
def certs():
    d = tempfile.mkdtemp(prefix="ferrolog-certs-")
    subprocess.run(["bash", os.path.join(ROOT, "scripts", "test-certs.sh"), d], check=True)
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="module")
def tls_broker(certs):
    """Mutual TLS with Java-style PKCS12 stores (keytool's trust store)."""
    b = Ferrolog([
        "listeners=SSL://127.0.0.1:0,CONTROLLER://127.0.0.1:0",
        "ssl.keystore.type=PKCS12",
        f"ssl.keystore.location={certs}/server.p12",
        "ssl.keystore.password=storepass",
        "ssl.truststore.type=PKCS12",
        f"ssl.truststore.location={certs}/truststore.p12",
        "ssl.truststore.password=storepass",
        "ssl.client.auth=required",
        "offsets.topic.replication.factor=1",
        "transaction.state.log.replication.factor=1",
        "transaction.state.log.min.isr=1",
    ])
    yield b
    b.stop()


def rdkafka(certs, cert="client", **extra):
    conf = {"security.protocol": "SSL", "ssl.ca.location": f"{certs}/ca.pem"}
    if cert:
        conf["ssl.certificate.location"] = f"{certs}/{cert}.pem"
        conf["ssl.key.location"] = f"{certs}/{cert}.key"
    conf.update(extra)
    return conf


def consume_all(bootstrap, conf, topic, want, isolation="read_committed"):
    c = Consumer({**conf, "bootstrap.servers": bootstrap, "group.id": f"g-{topic}-{isolation}",
                  "auto.offset.reset": "earliest", "isolation.level": isolation,
                  "enable.auto.commit": False})
    c.subscribe([topic])
    values = []
    deadline = time.time() + 30
    while time.time() < deadline and len(values) < want:
        m = c.poll(0.5)
        if m is not None and m.error() is None:
            values.append(m.value().decode())
    c.close()
    return values


def test_librdkafka_mutual_tls_produce_consume_and_transactions(tls_broker, certs):
    conf = rdkafka(certs)
    admin = AdminClient({**conf, "bootstrap.servers": tls_broker.bootstrap})
    for f in admin.create_topics([NewTopic("tls-t", 3, 1)]).values():
        f.result(30)
    p = Producer({**conf, "bootstrap.servers": tls_broker.bootstrap, "enable.idempotence": True,
                  "linger.ms": 5})
    for i in range(3000):
        p.produce("tls-t", value=("v%d-" % i + "x" * 500).encode(), key=str(i % 7))
    assert p.flush(30) == 0
    got = consume_all(tls_broker.bootstrap, conf, "tls-t", 3000, "read_uncommitted")
    assert sorted(got) == sorted("v%d-" % i + "x" * 500 for i in range(3000))

    # transaction markers travel broker to broker (here: to itself) over the TLS listener
    for f in admin.create_topics([NewTopic("tls-txn", 1, 1)]).values():
        f.result(30)
    t = Producer({**conf, "bootstrap.servers": tls_broker.bootstrap, "transactional.id": "tls-tx"})
    t.init_transactions(30)
    t.begin_transaction()
    t.produce("tls-txn", value=b"aborted")
    t.flush(10)
    t.abort_transaction(30)
    t.begin_transaction()
    t.produce("tls-txn", value=b"committed")
    t.commit_transaction(30)
    assert consume_all(tls_broker.bootstrap, conf, "tls-txn", 1) == ["committed"]


@pytest.mark.parametrize("cert", [None, "rogue", "expired"])
def test_librdkafka_without_a_trusted_certificate_is_refused(tls_broker, certs, cert):
    admin = AdminClient({**rdkafka(certs, cert), "bootstrap.servers": tls_broker.bootstrap})
    with pytest.raises(KafkaException):
        admin.list_topics(timeout=5)
    # the broker still serves a good client
    good = AdminClient({**rdkafka(certs), "bootstrap.servers": tls_broker.bootstrap})
    assert good.list_topics(timeout=10).brokers


def test_plaintext_client_on_the_tls_port_is_refused(tls_broker):
    admin = AdminClient({"bootstrap.servers": tls_broker.bootstrap})
    with pytest.raises(KafkaException):
        admin.list_topics(timeout=5)


def test_kafka_python_over_tls(tls_broker, certs):
    ssl = dict(security_protocol="SSL", ssl_cafile=f"{certs}/ca.pem",
               ssl_certfile=f"{certs}/client.pem", ssl_keyfile=f"{certs}/client.key")
    p = KafkaProducer(bootstrap_servers=tls_broker.bootstrap, **ssl)
    for i in range(200):
        p.send("tls-kp", value=b"kp%d" % i)
    p.flush(30)
    p.close()
    c = KafkaConsumer("tls-kp", bootstrap_servers=tls_broker.bootstrap, auto_offset_reset="earliest",
                      consumer_timeout_ms=10000, **ssl)
    values = [m.value for m in c]
    c.close()
    assert sorted(values) == sorted(b"kp%d" % i for i in range(200))


def test_kcat_over_tls(tls_broker, certs):
    flags = ["-b", tls_broker.bootstrap, "-X", "security.protocol=ssl", "-X", f"ssl.ca.location={certs}/ca.pem",
             "-X", f"ssl.certificate.location={certs}/client.pem", "-X", f"ssl.key.location={certs}/client.key"]
    subprocess.run(["kcat", *flags, "-P", "-t", "tls-kcat"], input=b"one\ntwo\n", check=True, timeout=30)
    out = subprocess.run(["kcat", *flags, "-C", "-t", "tls-kcat", "-o", "beginning", "-e", "-q"],
                         capture_output=True, check=True, timeout=30)
    assert out.stdout.split() == [b"one", b"two"]


def kafka_tool(cls, *args, input=None):
    assert glob.glob(os.path.join(KAFKA_LIB, "kafka-tools-*.jar")), "run scripts/test.sh (it fetches Kafka's jars)"
    return subprocess.run(["java", "-cp", os.path.join(KAFKA_LIB, "*"), cls, *args], input=input,
                          capture_output=True, text=True, timeout=120)


def test_kafkas_own_tools_with_command_config_and_pkcs12(tls_broker, certs, tmp_path):
    """The Java client with a PKCS12 key store and trust store, as Kafka's docs configure it
    (--command-config for the admin tool, --producer.config / --consumer.config)."""
    config = tmp_path / "client.properties"
    config.write_text("\n".join([
        "security.protocol=SSL",
        f"ssl.truststore.location={certs}/truststore.p12",
        "ssl.truststore.password=storepass",
        "ssl.truststore.type=PKCS12",
        f"ssl.keystore.location={certs}/client.p12",
        "ssl.keystore.password=storepass",
        "ssl.keystore.type=PKCS12",
        "",
    ]))
    created = kafka_tool("org.apache.kafka.tools.TopicCommand", "--bootstrap-server", tls_broker.bootstrap,
                         "--command-config", str(config), "--create", "--topic", "tls-java",
                         "--partitions", "2", "--replication-factor", "1")
    assert created.returncode == 0, created.stdout + created.stderr[-3000:]
    produced = kafka_tool("org.apache.kafka.tools.ConsoleProducer", "--bootstrap-server", tls_broker.bootstrap,
                          "--producer.config", str(config), "--topic", "tls-java",
                          input="".join(f"java{i}\n" for i in range(50)))
    assert produced.returncode == 0, produced.stderr[-3000:]
    consumed = kafka_tool("org.apache.kafka.tools.consumer.ConsoleConsumer", "--bootstrap-server",
                          tls_broker.bootstrap, "--consumer.config", str(config), "--topic", "tls-java",
                          "--from-beginning", "--max-messages", "50", "--timeout-ms", "30000")
    assert consumed.returncode == 0, consumed.stderr[-3000:]
    assert sorted(consumed.stdout.split()) == sorted(f"java{i}" for i in range(50))


def test_pem_stores_inline_and_an_encrypted_key(certs):
    """ssl.keystore.key / certificate.chain inline, the key encrypted (ssl.key.password)."""
    b = Ferrolog([
        "listeners=SSL://127.0.0.1:0,CONTROLLER://127.0.0.1:0",
        "ssl.keystore.type=PEM",
        "ssl.keystore.key=" + open(f"{certs}/server-enc.key").read(),
        "ssl.keystore.certificate.chain=" + open(f"{certs}/server.pem").read(),
        "ssl.key.password=keypass",
    ])
    try:
        admin = AdminClient({**rdkafka(certs, cert=None), "bootstrap.servers": b.bootstrap})
        assert admin.list_topics(timeout=10).brokers
    finally:
        b.stop()


def test_a_jks_key_store_stops_start_up_naming_the_key(certs, tmp_path):
    result = subprocess.run([BINARY, "server", "--data-dir", str(tmp_path),
                             "--override", "listeners=SSL://127.0.0.1:0,CONTROLLER://127.0.0.1:0",
                             "--override", f"ssl.keystore.location={certs}/server.jks",
                             "--override", "ssl.keystore.password=storepass"],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode != 0
    assert "ssl.keystore.type" in result.stderr and "keytool -importkeystore" in result.stderr, result.stderr
    assert "storepass" not in result.stderr


def test_cluster_replicates_over_tls_and_tells_each_listener_its_own_addresses(certs):
    """Three nodes with a PLAINTEXT and an SSL listener; brokers replicate over SSL
    (inter.broker.listener.name=SSL, client certificates required): acks=all with
    min.insync.replicas=3 succeeds only if every follower fetches over TLS. The controllers
    talk over mutual TLS too (CONTROLLER:SSL)."""
    from test_cluster import NODES, Cluster, free_ports

    class TlsCluster(Cluster):
        def __init__(self):
            self.ssl_ports = dict(zip(range(1, NODES + 1), free_ports(NODES)))
            super().__init__(overrides=[
                "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,SSL:SSL,CONTROLLER:SSL",
                "inter.broker.listener.name=SSL",
                "ssl.keystore.type=PKCS12",
                f"ssl.keystore.location={certs}/server.p12",
                "ssl.keystore.password=storepass",
                "ssl.truststore.type=PEM",
                f"ssl.truststore.location={certs}/truststore.pem",
                "ssl.client.auth=required",
            ])

        def start(self, i):
            base = self.overrides
            self.overrides = base + [f"listeners=PLAINTEXT://127.0.0.1:{self.client_ports[i]},"
                                     f"SSL://127.0.0.1:{self.ssl_ports[i]},"
                                     f"CONTROLLER://127.0.0.1:{self.controller_ports[i]}"]
            try:
                super().start(i)
            finally:
                self.overrides = base

    c = TlsCluster()
    try:
        ssl_bootstrap = ",".join(f"127.0.0.1:{p}" for p in c.ssl_ports.values())
        conf = {**rdkafka(certs), "bootstrap.servers": ssl_bootstrap}
        admin = AdminClient(conf)
        for f in admin.create_topics([NewTopic("tls-rep", 3, 3, config={"min.insync.replicas": "3"})]).values():
            f.result(30)
        # each listener's clients are told that listener's addresses
        assert sorted(b.port for b in admin.list_topics(timeout=10).brokers.values()) == sorted(c.ssl_ports.values())
        plain = AdminClient({"bootstrap.servers": c.bootstrap})
        assert sorted(b.port for b in plain.list_topics(timeout=10).brokers.values()) == \
            sorted(c.client_ports.values())
        c.wait_for("tls-rep fully in sync", lambda: all(
            len(isr) == 3 for _, (_, _, isr, _) in c.describe("tls-rep").items()) and len(c.describe("tls-rep")) == 3)
        p = Producer({**conf, "acks": "all", "enable.idempotence": True})
        errors = []
        for i in range(2000):
            p.produce("tls-rep", value=b"r%d" % i,
                      on_delivery=lambda err, msg: err and errors.append(err))
        assert p.flush(60) == 0
        assert errors == []
        got = consume_all(ssl_bootstrap, rdkafka(certs), "tls-rep", 2000, "read_uncommitted")
        assert sorted(got) == sorted("r%d" % i for i in range(2000))
    finally:
        c.stop()
