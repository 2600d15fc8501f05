"""SASL listeners with real clients: PLAIN users from the JAAS config, SCRAM-SHA-256/512 users
created with Apache Kafka's own kafka-configs (AlterUserScramCredentials), librdkafka
(confluent-kafka, kcat), kafka-python and the Java client, over SASL_PLAINTEXT and SASL_SSL.
Wrong passwords and unknown users fail alike; credentials survive kill -9."""

import glob
import os
import shutil
import socket
import struct
import subprocess
import tempfile
import time

import pytest
from confluent_kafka import Consumer, KafkaException, Producer
from confluent_kafka.admin import AdminClient, NewTopic
from kafka import KafkaConsumer, KafkaProducer

from conftest import ROOT, Ferrolog, kcat_env

KAFKA_LIB = os.path.join(ROOT, "target", "kafka-lib")
PLAIN_JAAS = ('org.apache.kafka.common.security.plain.PlainLoginModule required username="admin" '
              'password="admin-secret" user_admin="admin-secret" user_alice="alice-secret";')


def sasl_broker(extra=(), protocol="SASL_PLAINTEXT"):
    name = protocol.lower()
    return Ferrolog([
        f"listeners={protocol}://127.0.0.1:0,CONTROLLER://127.0.0.1:0",
        "sasl.enabled.mechanisms=PLAIN,SCRAM-SHA-256,SCRAM-SHA-512",
        "sasl.mechanism.inter.broker.protocol=PLAIN",
        f"listener.name.{name}.plain.sasl.jaas.config={PLAIN_JAAS}",
        *extra,
    ])


@pytest.fixture(scope="module")
def broker():
    b = sasl_broker()
    yield b
    b.stop()


def conf(b, mechanism="PLAIN", user="alice", password="alice-secret", protocol="SASL_PLAINTEXT", **extra):
    return {"bootstrap.servers": b.bootstrap, "security.protocol": protocol, "sasl.mechanisms": mechanism,
            "sasl.username": user, "sasl.password": password, **extra}


def kafka_tool(cls, *args, input=None):
    assert glob.glob(os.path.join(KAFKA_LIB, "kafka_2.13-*.jar")), "run scripts/test.sh (it fetches Kafka's jars)"
    return subprocess.run(["java", "-cp", os.path.join(KAFKA_LIB, "*"), cls, *args], input=input,
                          capture_output=True, text=True, timeout=120)


def admin_config(tmp_path, mechanism="PLAIN", user="admin", password="admin-secret", protocol="SASL_PLAINTEXT",
                 extra=()):
    module = ("org.apache.kafka.common.security.plain.PlainLoginModule" if mechanism == "PLAIN"
              else "org.apache.kafka.common.security.scram.ScramLoginModule")
    path = tmp_path / f"{user}-{mechanism}.properties"
    path.write_text("\n".join([f"security.protocol={protocol}", f"sasl.mechanism={mechanism}",
                               f'sasl.jaas.config={module} required username="{user}" password="{password}";',
                               *extra, ""]))
    return str(path)


def add_scram_user(b, tmp_path, user, settings):
    out = kafka_tool("kafka.admin.ConfigCommand", "--bootstrap-server", b.bootstrap, "--command-config",
                     admin_config(tmp_path), "--alter", "--add-config", settings, "--entity-type", "users",
                     "--entity-name", user)
    assert out.returncode == 0 and "Completed updating config" in out.stdout, out.stdout + out.stderr[-3000:]


def produce_consume(c, topic, n=200):
    p = Producer({**c, "enable.idempotence": True})
    for i in range(n):
        p.produce(topic, value=b"%d" % i)
    assert p.flush(30) == 0
    consumer = Consumer({**c, "group.id": f"g-{topic}", "auto.offset.reset": "earliest"})
    consumer.subscribe([topic])
    got = []
    deadline = time.time() + 30
    while len(got) < n and time.time() < deadline:
        m = consumer.poll(0.5)
        if m is not None and m.error() is None:
            got.append(m.value())
    consumer.close()
    assert sorted(got) == sorted(b"%d" % i for i in range(n))


def test_plain_users_from_the_jaas_config(broker):
    produce_consume(conf(broker), "plain-t")


def test_wrong_password_and_unknown_user_fail_alike(broker, tmp_path):
    add_scram_user(broker, tmp_path, "carol", "SCRAM-SHA-256=[password=carol-secret]")
    for mechanism, known in [("PLAIN", "alice"), ("SCRAM-SHA-256", "carol")]:
        messages = []
        for user, password in [(known, "wrong"), ("nobody", "x")]:
            out = subprocess.run(["kcat", "-b", broker.bootstrap, "-X", "security.protocol=sasl_plaintext",
                                  "-X", f"sasl.mechanisms={mechanism}", "-X", f"sasl.username={user}",
                                  "-X", f"sasl.password={password}", "-m", "3", "-L"],
                                 capture_output=True, text=True, timeout=30, env=kcat_env())
            assert out.returncode != 0
            failures = [l for l in out.stderr.splitlines() if "SASL authentication error: " in l]
            assert failures, out.stderr
            messages.append(failures[0].split("SASL authentication error: ")[1].split(" (after")[0])
        assert messages[0] == messages[1], messages
        assert "Authentication failed" in messages[0]


def test_ferrolog_users_manages_scram_users(broker, tmp_path):
    admin = admin_config(tmp_path)
    cli = lambda *a: broker.cli("users", "--bootstrap-server", broker.bootstrap, "--command-config", admin, *a)
    out = cli("add", "--user", "dave", "--password", "dave-secret", "--mechanism", "SCRAM-SHA-256",
              "--iterations", "8192")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "dave\tSCRAM-SHA-256\titerations=8192" in cli("list").stdout
    produce_consume(conf(broker, "SCRAM-SHA-256", "dave", "dave-secret"), "users-t", 20)
    out = cli("remove", "--user", "dave", "--mechanism", "SCRAM-SHA-256")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "dave" not in cli("list").stdout
    # and the tools refuse to run without credentials on a SASL listener
    assert broker.cli("users", "--bootstrap-server", broker.bootstrap, "list").returncode != 0


def test_scram_users_created_with_kafkas_kafka_configs(broker, tmp_path):
    add_scram_user(broker, tmp_path, "bob", "SCRAM-SHA-256=[iterations=8192,password=bob-256],"
                                             "SCRAM-SHA-512=[password=bob-512]")
    produce_consume(conf(broker, "SCRAM-SHA-256", "bob", "bob-256"), "scram-256")
    produce_consume(conf(broker, "SCRAM-SHA-512", "bob", "bob-512"), "scram-512")
    # the Java client authenticates with SCRAM too (Kafka's console producer and consumer)
    bob = admin_config(tmp_path, "SCRAM-SHA-512", "bob", "bob-512")
    produced = kafka_tool("org.apache.kafka.tools.ConsoleProducer", "--bootstrap-server", broker.bootstrap,
                          "--producer.config", bob, "--topic", "scram-java", input="".join(f"j{i}\n" for i in range(20)))
    assert produced.returncode == 0, produced.stderr[-3000:]
    consumed = kafka_tool("org.apache.kafka.tools.consumer.ConsoleConsumer", "--bootstrap-server", broker.bootstrap,
                          "--consumer.config", bob, "--topic", "scram-java", "--from-beginning",
                          "--max-messages", "20", "--timeout-ms", "30000")
    assert sorted(consumed.stdout.split()) == sorted(f"j{i}" for i in range(20)), consumed.stderr[-3000:]
    # kafka-python with SCRAM
    kp = dict(security_protocol="SASL_PLAINTEXT", sasl_mechanism="SCRAM-SHA-256", sasl_plain_username="bob",
              sasl_plain_password="bob-256")
    p = KafkaProducer(bootstrap_servers=broker.bootstrap, **kp)
    for i in range(50):
        p.send("scram-kp", value=b"k%d" % i)
    p.flush(30)
    p.close()
    c = KafkaConsumer("scram-kp", bootstrap_servers=broker.bootstrap, auto_offset_reset="earliest",
                      consumer_timeout_ms=10000, **kp)
    assert sorted(m.value for m in c) == sorted(b"k%d" % i for i in range(50))
    c.close()
    # a removed credential no longer authenticates
    out = kafka_tool("kafka.admin.ConfigCommand", "--bootstrap-server", broker.bootstrap, "--command-config",
                     admin_config(tmp_path), "--alter", "--delete-config", "SCRAM-SHA-512", "--entity-type", "users",
                     "--entity-name", "bob")
    assert out.returncode == 0, out.stderr[-3000:]
    with pytest.raises(KafkaException):
        AdminClient(conf(broker, "SCRAM-SHA-512", "bob", "bob-512")).list_topics(timeout=3)


def test_transactions_over_sasl(broker):
    """Transaction markers go broker to broker (here: to itself) with the broker's own
    credentials (sasl.mechanism.inter.broker.protocol and the JAAS username/password)."""
    c = conf(broker)
    t = Producer({**c, "transactional.id": "sasl-tx"})
    t.init_transactions(30)
    t.begin_transaction()
    t.produce("sasl-txn", value=b"aborted")
    t.flush(10)
    t.abort_transaction(30)
    t.begin_transaction()
    t.produce("sasl-txn", value=b"committed")
    t.commit_transaction(30)
    consumer = Consumer({**c, "group.id": "g-txn", "auto.offset.reset": "earliest",
                         "isolation.level": "read_committed"})
    consumer.subscribe(["sasl-txn"])
    got = []
    deadline = time.time() + 20
    while time.time() < deadline and not got:
        m = consumer.poll(0.5)
        if m is not None and m.error() is None:
            got.append(m.value())
    consumer.close()
    assert got == [b"committed"]


def frame(api_key, version, correlation, body=b""):
    header = struct.pack(">hhih", api_key, version, correlation, -1)
    return struct.pack(">i", len(header) + len(body)) + header + body


def closed(sock, timeout=5):
    sock.settimeout(timeout)
    try:
        while sock.recv(65536):
            pass
        return True
    except (ConnectionResetError, BrokenPipeError):
        return True


def test_requests_before_authentication_close_the_connection(broker):
    host, port = broker.bootstrap.split(":")
    # Metadata before SaslHandshake
    s = socket.create_connection((host, int(port)))
    s.sendall(frame(3, 0, 1, struct.pack(">i", 0)))
    assert closed(s)
    # a frame larger than a SASL token may be (512 KiB) before authentication
    s = socket.create_connection((host, int(port)))
    s.sendall(struct.pack(">i", 10 * 1024 * 1024) + b"\0" * 1024)
    assert closed(s)
    # ApiVersions is answered before authentication, and the broker serves others meanwhile
    s = socket.create_connection((host, int(port)))
    s.sendall(frame(18, 0, 7))
    s.settimeout(5)
    size = struct.unpack(">i", s.recv(4))[0]
    assert size > 0
    s.close()
    assert AdminClient(conf(broker)).list_topics(timeout=10).brokers


def test_sasl_handshake_v0_then_bare_tokens(broker):
    """The pre-KIP-152 flow: SaslHandshake v0, then the PLAIN token without a Kafka header."""
    host, port = broker.bootstrap.split(":")
    s = socket.create_connection((host, int(port)))
    s.settimeout(5)
    mechanism = b"PLAIN"
    s.sendall(frame(17, 0, 1, struct.pack(">h", len(mechanism)) + mechanism))
    size = struct.unpack(">i", s.recv(4))[0]
    body = s.recv(size)
    assert struct.unpack(">ih", body[:6]) == (1, 0)
    token = b"\0alice\0alice-secret"
    s.sendall(struct.pack(">i", len(token)) + token)
    assert struct.unpack(">i", s.recv(4))[0] == 0  # an empty token: authenticated
    s.sendall(frame(18, 0, 2))
    size = struct.unpack(">i", s.recv(4))[0]
    assert struct.unpack(">i", s.recv(4))[0] == 2
    s.close()


def test_credentials_survive_kill_9(tmp_path):
    b = sasl_broker()
    try:
        add_scram_user(b, tmp_path, "dave", "SCRAM-SHA-256=[password=dave-secret]")
        b.proc.kill()
        b.proc.wait()
        b.log.close()
        b.start()
        produce_consume(conf(b, "SCRAM-SHA-256", "dave", "dave-secret"), "after-kill")
    finally:
        b.stop()


def test_sasl_ssl_with_scram_and_kcat(tmp_path):
    certs = tmp_path / "certs"
    subprocess.run(["bash", os.path.join(ROOT, "scripts", "test-certs.sh"), str(certs)], check=True)
    b = sasl_broker([
        "ssl.keystore.type=PEM",
        f"ssl.keystore.location={certs}/server-bundle.pem",
        "ssl.truststore.type=PEM",
        f"ssl.truststore.location={certs}/truststore.pem",
    ], protocol="SASL_SSL")
    try:
        add = kafka_tool("kafka.admin.ConfigCommand", "--bootstrap-server", b.bootstrap, "--command-config",
                         admin_config(tmp_path, protocol="SASL_SSL",
                                      extra=[f"ssl.truststore.location={certs}/truststore.pem",
                                             "ssl.truststore.type=PEM"]),
                         "--alter", "--add-config", "SCRAM-SHA-512=[password=erin-secret]",
                         "--entity-type", "users", "--entity-name", "erin")
        assert add.returncode == 0, add.stderr[-3000:]
        flags = ["-b", b.bootstrap, "-X", "security.protocol=sasl_ssl", "-X", f"ssl.ca.location={certs}/ca.pem",
                 "-X", "sasl.mechanisms=SCRAM-SHA-512", "-X", "sasl.username=erin", "-X", "sasl.password=erin-secret"]
        env = kcat_env()
        subprocess.run(["kcat", *flags, "-P", "-t", "sasl-ssl"], input=b"x\ny\n", check=True, timeout=30, env=env)
        out = subprocess.run(["kcat", *flags, "-C", "-t", "sasl-ssl", "-o", "beginning", "-e", "-q"],
                             capture_output=True, check=True, timeout=30, env=env)
        assert out.stdout.split() == [b"x", b"y"]
    finally:
        b.stop()


def test_scram_only_listener_bootstrapped_with_add_scram():
    """No PLAIN at all: the first user comes from --add-scram (kafka-storage format --add-scram's
    syntax), and the broker authenticates to itself with SCRAM for transaction markers."""
    jaas = ('org.apache.kafka.common.security.scram.ScramLoginModule required username="admin" '
            'password="admin-secret";')
    b = Ferrolog([
        "listeners=SASL_PLAINTEXT://127.0.0.1:0,CONTROLLER://127.0.0.1:0",
        "sasl.enabled.mechanisms=SCRAM-SHA-512",
        "sasl.mechanism.inter.broker.protocol=SCRAM-SHA-512",
        f"listener.name.sasl_plaintext.scram-sha-512.sasl.jaas.config={jaas}",
    ], args=["--add-scram", "SCRAM-SHA-512=[name=admin,password=admin-secret,iterations=8192]"])
    try:
        c = conf(b, "SCRAM-SHA-512", "admin", "admin-secret")
        deadline = time.time() + 30
        while True:
            try:
                AdminClient(c).list_topics(timeout=2)
                break
            except KafkaException:
                assert time.time() < deadline, "the --add-scram user never authenticated"
        t = Producer({**c, "transactional.id": "scram-tx"})
        t.init_transactions(30)
        t.begin_transaction()
        t.produce("scram-txn", value=b"v")
        t.commit_transaction(30)
    finally:
        b.stop()
