"""ACLs with real clients: a SASL broker with Kafka's StandardAuthorizer, super.users and
allow.everyone.if.no.acl.found=false. ACLs are set with Kafka's own kafka-acls (AclCommand),
confluent-kafka's AdminClient and `ferrolog acls`; librdkafka, kafka-python and the Java client
are allowed exactly what the ACLs say and get Kafka's error codes for the rest. ACLs survive
kill -9; without an authorizer the ACL APIs answer SECURITY_DISABLED."""

import os
import signal
import subprocess
import time

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import (AclBinding, AclBindingFilter, AclOperation, AclPermissionType, AdminClient,
                                   NewTopic, ResourcePatternType, ResourceType)
from kafka import KafkaProducer
from kafka.errors import TopicAuthorizationFailedError

from conftest import ROOT, Ferrolog, wait_for
from test_sasl import KAFKA_LIB, PLAIN_JAAS, admin_config, kafka_tool

JAAS = PLAIN_JAAS.replace('user_alice="alice-secret";', 'user_alice="alice-secret" user_bob="bob-secret";')


def secured(extra=()):
    return Ferrolog([
        "listeners=SASL_PLAINTEXT://127.0.0.1:0,CONTROLLER://127.0.0.1:0",
        "sasl.enabled.mechanisms=PLAIN",
        "sasl.mechanism.inter.broker.protocol=PLAIN",
        f"listener.name.sasl_plaintext.plain.sasl.jaas.config={JAAS}",
        "authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer",
        "super.users=User:admin",
        "allow.everyone.if.no.acl.found=false",
        *extra,
    ])


@pytest.fixture(scope="module")
def broker():
    b = secured()
    admin = AdminClient(conf(b, "admin"))
    for f in admin.create_topics([NewTopic(t, 2, 1) for t in ["orders", "pay-in", "pay-out", "secret"]]).values():
        f.result(30)
    yield b
    b.stop()


def conf(b, user, **extra):
    return {"bootstrap.servers": b.bootstrap, "security.protocol": "SASL_PLAINTEXT", "sasl.mechanisms": "PLAIN",
            "sasl.username": user, "sasl.password": f"{user}-secret", **extra}


def acls_tool(b, tmp_path, *args):
    out = kafka_tool("org.apache.kafka.tools.AclCommand", "--bootstrap-server", b.bootstrap, "--command-config",
                     admin_config(tmp_path), *args)
    assert out.returncode == 0, out.stdout + out.stderr[-3000:]
    return out.stdout


def log4j_config(tmp_path):
    """A log4j configuration that sends the Java client's WARN and up to stderr."""
    log4j = tmp_path / "log4j.properties"
    log4j.write_text("log4j.rootLogger=WARN, stderr\n"
                     "log4j.appender.stderr=org.apache.log4j.ConsoleAppender\n"
                     "log4j.appender.stderr.Target=System.err\n"
                     "log4j.appender.stderr.layout=org.apache.log4j.PatternLayout\n"
                     "log4j.appender.stderr.layout.ConversionPattern=%p %c %m%n\n")
    return log4j


def java_tool(tmp_path, cls, *args):
    """A Kafka tool whose client logs (WARN and up) go to stderr."""
    log4j = log4j_config(tmp_path)
    return subprocess.run(["java", f"-Dlog4j.configuration=file:{log4j}", "-cp",
                           os.path.join(KAFKA_LIB, "*"), cls, *args], capture_output=True, text=True, timeout=120)


def produce(c, topic, n=10):
    """Delivery errors of n records (idempotent, as librdkafka's default producer of today)."""
    errors = []
    p = Producer({**c, "enable.idempotence": True, "message.timeout.ms": 10000})
    for i in range(n):
        p.produce(topic, value=b"%d" % i, on_delivery=lambda err, msg: errors.append(err) if err else None)
    p.flush(20)
    return errors


def consume(c, topic, group, n):
    consumer = Consumer({**c, "group.id": group, "auto.offset.reset": "earliest"})
    consumer.subscribe([topic])
    got, error = [], None
    deadline = time.time() + 30
    while len(got) < n and time.time() < deadline and error is None:
        m = consumer.poll(0.5)
        if m is None:
            continue
        if m.error():
            if m.error().code() in (KafkaError.GROUP_AUTHORIZATION_FAILED, KafkaError.TOPIC_AUTHORIZATION_FAILED):
                error = m.error().code()
            continue
        got.append(m.value())
    if error is None and got:
        consumer.commit(asynchronous=False)
    consumer.close()
    return got, error


def test_nothing_is_allowed_without_acls_but_super_users_are(broker):
    # alice sees no topic and cannot write
    md = AdminClient(conf(broker, "alice")).list_topics(timeout=10)
    assert "orders" not in md.topics
    errors = produce(conf(broker, "alice"), "orders", 3)
    assert errors and all(e.code() in (KafkaError.TOPIC_AUTHORIZATION_FAILED,
                                       KafkaError.CLUSTER_AUTHORIZATION_FAILED) for e in errors), errors
    # the super user does everything
    assert produce(conf(broker, "admin"), "secret", 5) == []
    # a named topic it may not describe: TOPIC_AUTHORIZATION_FAILED (kafka-python asks by name)
    p = KafkaProducer(bootstrap_servers=broker.bootstrap, security_protocol="SASL_PLAINTEXT",
                      sasl_mechanism="PLAIN", sasl_plain_username="bob", sasl_plain_password="bob-secret",
                      max_block_ms=10000)
    with pytest.raises(TopicAuthorizationFailedError):
        p.send("secret", b"x").get(timeout=10)
    p.close()
    # the denial is in the authorizer log, in Kafka's words
    log = open(os.path.join(broker.dir, "server.log"), errors="replace").read()
    assert ("Principal = User:alice is Denied operation = DESCRIBE from host = 127.0.0.1 on resource = "
            "Topic:LITERAL:orders for request = Metadata based on rule DefaultDeny") in log


def test_producer_and_consumer_acls_from_kafkas_kafka_acls(broker, tmp_path):
    out = acls_tool(broker, tmp_path, "--add", "--allow-principal", "User:alice", "--producer", "--topic", "orders")
    assert "orders" in out
    acls_tool(broker, tmp_path, "--add", "--allow-principal", "User:alice", "--consumer", "--topic", "orders",
              "--group", "alice-g")
    listed = acls_tool(broker, tmp_path, "--list", "--topic", "orders")
    for op in ["WRITE", "READ", "DESCRIBE", "CREATE"]:
        assert f"operation={op}" in listed, listed
    assert produce(conf(broker, "alice"), "orders", 20) == []
    got, error = consume(conf(broker, "alice"), "orders", "alice-g", 20)
    assert error is None and len(got) == 20
    # another group: READ on the group is missing
    got, error = consume(conf(broker, "alice"), "orders", "other-g", 20)
    assert error == KafkaError.GROUP_AUTHORIZATION_FAILED, (got, error)
    # other topics stay closed, and invisible
    assert produce(conf(broker, "alice"), "secret", 2)
    md = AdminClient(conf(broker, "alice")).list_topics(timeout=10)
    assert set(t for t in md.topics if not t.startswith("__")) == {"orders"}
    # bob still has nothing
    got, error = consume(conf(broker, "bob"), "orders", "alice-g", 1)
    assert got == [] and error in (KafkaError.GROUP_AUTHORIZATION_FAILED, KafkaError.TOPIC_AUTHORIZATION_FAILED)
    # the Java client too
    alice = admin_config(tmp_path, user="alice", password="alice-secret")
    # (alice-g has committed the first 20: the Java consumer reads 20 more)
    assert produce(conf(broker, "alice"), "orders", 20) == []
    allowed = java_tool(tmp_path, "org.apache.kafka.tools.consumer.ConsoleConsumer", "--bootstrap-server",
                        broker.bootstrap, "--consumer.config", alice, "--topic", "orders", "--group", "alice-g",
                        "--from-beginning", "--max-messages", "20", "--timeout-ms", "20000")
    assert len(allowed.stdout.split()) == 20, allowed.stderr[-3000:]
    consumed = java_tool(tmp_path, "org.apache.kafka.tools.consumer.ConsoleConsumer", "--bootstrap-server",
                         broker.bootstrap, "--consumer.config", alice, "--topic", "orders", "--group", "alice-java",
                         "--from-beginning", "--max-messages", "20", "--timeout-ms", "20000")
    assert "GroupAuthorizationException" in consumed.stderr, consumed.stderr[-3000:]
    denied = java_tool(tmp_path, "org.apache.kafka.tools.consumer.ConsoleConsumer", "--bootstrap-server", broker.bootstrap,
                        "--consumer.config", alice, "--topic", "secret", "--group", "alice-g",
                        "--from-beginning", "--max-messages", "1", "--timeout-ms", "15000")
    assert "TopicAuthorizationException" in denied.stderr, denied.stderr[-3000:]


def test_prefixed_allow_and_a_deny_that_beats_it_through_the_admin_api(broker):
    admin = AdminClient(conf(broker, "admin"))
    everyone_pay = AclBinding(ResourceType.TOPIC, "pay-", ResourcePatternType.PREFIXED, "User:*", "*",
                              AclOperation.WRITE, AclPermissionType.ALLOW)
    bob_out = AclBinding(ResourceType.TOPIC, "pay-out", ResourcePatternType.LITERAL, "User:bob", "*",
                         AclOperation.ALL, AclPermissionType.DENY)
    # (confluent-kafka calls the CLUSTER resource type BROKER: code 4)
    bob_idem = AclBinding(ResourceType.BROKER, "kafka-cluster", ResourcePatternType.LITERAL, "User:bob", "*",
                          AclOperation.IDEMPOTENT_WRITE, AclPermissionType.ALLOW)
    for f in admin.create_acls([everyone_pay, bob_out, bob_idem]).values():
        f.result(10)
    assert produce(conf(broker, "bob"), "pay-in", 5) == []
    errors = produce(conf(broker, "bob"), "pay-out", 3)
    assert errors and errors[0].code() == KafkaError.TOPIC_AUTHORIZATION_FAILED, errors
    # a MATCH filter finds every ACL that applies to pay-out: the prefix and the literal
    match = AclBindingFilter(ResourceType.TOPIC, "pay-out", ResourcePatternType.MATCH, None, None,
                             AclOperation.ANY, AclPermissionType.ANY)
    found = admin.describe_acls(match).result(10)
    assert set(found) == {everyone_pay, bob_out}, found
    # deleting the deny lets bob write
    deleted = admin.delete_acls([AclBindingFilter(ResourceType.TOPIC, "pay-out", ResourcePatternType.LITERAL,
                                                  "User:bob", None, AclOperation.ANY, AclPermissionType.DENY)])
    assert list(deleted.values())[0].result(10) == [bob_out]
    assert produce(conf(broker, "bob"), "pay-out", 3) == []
    # bad ACLs are refused with INVALID_REQUEST, naming the problem
    bad = AclBinding(ResourceType.BROKER, "not-the-cluster", ResourcePatternType.LITERAL, "User:bob", "*",
                     AclOperation.ALTER, AclPermissionType.ALLOW)
    with pytest.raises(KafkaException) as e:
        list(admin.create_acls([bad]).values())[0].result(10)
    assert "kafka-cluster" in str(e.value)
    # only the cluster's ALTER may create ACLs
    bob_admin = AdminClient(conf(broker, "bob"))
    with pytest.raises(KafkaException) as e:
        list(bob_admin.create_acls([bob_idem]).values())[0].result(10)
    assert e.value.args[0].code() == KafkaError.CLUSTER_AUTHORIZATION_FAILED


def test_a_removed_acl_takes_effect_on_an_open_consumer(broker, tmp_path):
    """The Java consumer fetches incrementally (KIP-227): once its fetch session holds the
    partition, its requests no longer list it, and READ must still be checked."""
    admin = AdminClient(conf(broker, "admin"))
    for f in admin.create_topics([NewTopic("revoke", 1, 1)]).values():
        f.result(30)
    read = AclBinding(ResourceType.TOPIC, "revoke", ResourcePatternType.LITERAL, "User:alice", "*",
                      AclOperation.READ, AclPermissionType.ALLOW)
    group = AclBinding(ResourceType.GROUP, "revoke-g", ResourcePatternType.LITERAL, "User:alice", "*",
                       AclOperation.READ, AclPermissionType.ALLOW)
    for f in admin.create_acls([read, group]).values():
        f.result(10)
    assert produce(conf(broker, "admin"), "revoke", 5) == []
    log4j = log4j_config(tmp_path)
    alice = admin_config(tmp_path, user="alice", password="alice-secret")
    out = open(tmp_path / "consumer.out", "w+")
    err = open(tmp_path / "consumer.err", "w+")
    consumer = subprocess.Popen(["java", f"-Dlog4j.configuration=file:{log4j}", "-cp", os.path.join(KAFKA_LIB, "*"),
                                 "org.apache.kafka.tools.consumer.ConsoleConsumer", "--bootstrap-server",
                                 broker.bootstrap, "--consumer.config", alice, "--topic", "revoke", "--group",
                                 "revoke-g", "--from-beginning", "--max-messages", "10", "--timeout-ms", "40000"],
                                stdout=out, stderr=err, text=True)
    try:
        wait_for("the first 5 records", lambda: len(open(tmp_path / "consumer.out").read().split()) == 5)
        time.sleep(2)  # several incremental fetches
        list(admin.delete_acls([AclBindingFilter(ResourceType.TOPIC, "revoke", ResourcePatternType.LITERAL,
                                                 "User:alice", None, AclOperation.READ,
                                                 AclPermissionType.ALLOW)]).values())[0].result(10)
        assert produce(conf(broker, "admin"), "revoke", 5) == []
        consumer.wait(timeout=60)
    finally:
        consumer.kill()
    assert len(open(tmp_path / "consumer.out").read().split()) == 5
    assert "TopicAuthorizationException" in open(tmp_path / "consumer.err").read()


def test_a_regex_subscription_takes_in_only_topics_it_may_describe(broker, tmp_path):
    """A KIP-848 consumer subscribed by regex (librdkafka sends it to the coordinator, which
    resolves it): the topics its principal may not describe are left out of its assignment, as
    Kafka's coordinator leaves them out."""
    admin = AdminClient(conf(broker, "admin"))
    for f in admin.create_topics([NewTopic(t, 1, 1) for t in ["rx-a", "rx-b"]]).values():
        f.result(30)
    for t in ["rx-a", "rx-b"]:
        assert produce(conf(broker, "admin"), t, 5) == []
    acls = [AclBinding(ResourceType.TOPIC, "rx-a", ResourcePatternType.LITERAL, "User:alice", "*",
                       AclOperation.READ, AclPermissionType.ALLOW),
            AclBinding(ResourceType.GROUP, "rx-g", ResourcePatternType.LITERAL, "User:alice", "*",
                       AclOperation.READ, AclPermissionType.ALLOW)]
    for f in admin.create_acls(acls).values():
        f.result(10)
    consumer = Consumer({**conf(broker, "alice"), "group.id": "rx-g", "group.protocol": "consumer",
                         "auto.offset.reset": "earliest"})
    consumer.subscribe(["^rx-.*"])
    got = []
    deadline = time.time() + 30
    while len(got) < 5 and time.time() < deadline:
        m = consumer.poll(0.5)
        if m is not None and m.error() is None:
            got.append(m.topic())
    try:
        assert got == ["rx-a"] * 5, got
        # the group's target assignment, as the admin sees it (ConsumerGroupDescribe)
        described = java_tool(tmp_path, "org.apache.kafka.tools.consumer.group.ConsumerGroupCommand",
                              "--bootstrap-server", broker.bootstrap, "--command-config", admin_config(tmp_path),
                              "--describe", "--group", "rx-g", "--members", "--verbose")
        assert "rx-a:0" in described.stdout, described.stdout + described.stderr[-2000:]
        assert "rx-b" not in described.stdout, described.stdout
    finally:
        consumer.close()


def test_ferrolog_acls_cli_and_acls_survive_kill_9(tmp_path):
    b = secured()
    try:
        admin_props = admin_config(tmp_path)
        cli = lambda *a: b.cli("acls", "--bootstrap-server", b.bootstrap, "--command-config", admin_props, *a)
        out = cli("add", "--allow-principal", "User:carol", "--operation", "Read", "--operation", "Describe",
                  "--topic", "logs-", "--resource-pattern-type", "prefixed")
        assert out.returncode == 0 and out.stdout.count("Added") == 2, out.stdout + out.stderr
        out = cli("list", "--topic", "logs-app", "--resource-pattern-type", "match")
        assert "User:carol is allowed READ from host * on TOPIC logs- (PREFIXED)" in out.stdout, out.stdout + out.stderr
        # without credentials: ANONYMOUS cannot even connect to a SASL listener's APIs
        out = b.cli("acls", "--bootstrap-server", b.bootstrap, "list")
        assert out.returncode != 0
        b.proc.send_signal(signal.SIGKILL)
        b.proc.wait()
        b.log.close()
        b.start()
        out = cli("list")
        assert out.stdout.count("User:carol") == 2, out.stdout + out.stderr
        out = cli("remove", "--topic", "logs-", "--resource-pattern-type", "prefixed")
        assert out.returncode == 0 and out.stdout.count("Removed") == 2, out.stdout + out.stderr
        assert "carol" not in cli("list").stdout
    finally:
        b.stop()


def test_without_an_authorizer_the_acl_apis_say_security_is_disabled(fresh_broker):
    # (librdkafka's describe_acls shows an empty list for this error: Kafka's tool shows it)
    b = fresh_broker()
    out = kafka_tool("org.apache.kafka.tools.AclCommand", "--bootstrap-server", b.bootstrap, "--list")
    assert out.returncode != 0
    assert "SecurityDisabledException: No Authorizer is configured on the broker" in out.stdout + out.stderr


def test_an_unknown_authorizer_stops_start_up():
    with pytest.raises(RuntimeError) as e:
        Ferrolog(["authorizer.class.name=com.example.MyAuthorizer"])
    assert "authorizer.class.name" in str(e.value)


def test_a_cluster_replicates_over_sasl_ssl_as_a_super_user_and_shares_its_acls(tmp_path):
    """Three nodes whose brokers replicate, and whose controllers talk, over SASL_SSL,
    authenticated as the super user admin (followers and controllers need CLUSTER_ACTION): an
    ACL created on one node is in force on all. A node whose controller credentials are wrong
    cannot join: it stays out of the brokers until it restarts with the right ones."""
    from test_cluster import Cluster
    certs = tmp_path / "certs"
    subprocess.run(["bash", os.path.join(ROOT, "scripts", "test-certs.sh"), str(certs)], check=True,
                   capture_output=True)
    tls = [f"ssl.truststore.type=PEM", f"ssl.truststore.location={certs}/ca.pem"]
    admin_props = admin_config(tmp_path, protocol="SASL_SSL", extra=tls)
    rd = lambda user: {"security.protocol": "SASL_SSL", "sasl.mechanisms": "PLAIN", "sasl.username": user,
                       "sasl.password": f"{user}-secret", "ssl.ca.location": f"{certs}/ca.pem"}
    c = Cluster([
        "sasl.enabled.mechanisms=PLAIN",
        "sasl.mechanism.inter.broker.protocol=PLAIN",
        f"listener.name.sasl_ssl.plain.sasl.jaas.config={JAAS}",
        "ssl.keystore.type=PEM",
        f"ssl.keystore.location={certs}/server-bundle.pem",
        *tls,
        "authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer",
        "super.users=User:admin",
        # the controller listener too: TLS, then SASL PLAIN as admin
        "listener.security.protocol.map=SASL_SSL:SASL_SSL,CONTROLLER:SASL_SSL",
        "listener.name.controller.sasl.enabled.mechanisms=PLAIN",
        "sasl.mechanism.controller.protocol=PLAIN",
        f"listener.name.controller.plain.sasl.jaas.config={JAAS}",
    ], protocol="SASL_SSL", command_config=admin_props, client_conf=rd("admin"))
    try:
        c.create("replicated", partitions=1, rf=3)
        admin = AdminClient({**rd("admin"), "bootstrap.servers": c.node_bootstrap(1)})
        write = AclBinding(ResourceType.TOPIC, "replicated", ResourcePatternType.LITERAL, "User:alice", "*",
                           AclOperation.WRITE, AclPermissionType.ALLOW)
        for f in admin.create_acls([write]).values():
            f.result(10)
        # every node has it: DescribeAcls and the authorizer on each
        for node in c.client_ports:
            node_admin = AdminClient({**rd("admin"), "bootstrap.servers": c.node_bootstrap(node)})
            c.wait_for(f"the ACL on node {node}", lambda: write in node_admin.describe_acls(
                AclBindingFilter(ResourceType.TOPIC, "replicated", ResourcePatternType.ANY, None, None,
                                 AclOperation.ANY, AclPermissionType.ANY)).result(10))
        # acks=all (min.insync.replicas=2): the followers fetched over SASL_SSL
        assert produce({**rd("alice"), "bootstrap.servers": c.node_bootstrap(3), "acks": "all"},
                       "replicated", 100) == []
        errors = produce({**rd("bob"), "bootstrap.servers": c.node_bootstrap(2)}, "replicated", 2)
        assert errors and errors[0].code() in (KafkaError.TOPIC_AUTHORIZATION_FAILED,
                                               KafkaError.CLUSTER_AUTHORIZATION_FAILED), errors
        c.wait_for("identical replicas", lambda: len(set(c.segment_digests("replicated", 0).values())) == 1)

        # node 3 back with a wrong controller password: its requests to the other controllers
        # fail authentication, so it never gets unfenced (Metadata lists live brokers only)
        brokers = lambda: sorted(b.id for b in admin.list_topics(timeout=10).brokers.values())  # noqa: E731
        c.kill(3)
        good = list(c.overrides)
        c.overrides.append("listener.name.controller.plain.sasl.jaas.config="
                           + JAAS.replace('password="admin-secret"', 'password="wrong"', 1))
        c.start(3)
        c.wait_for("node 3 refused by the controllers", lambda: "SASL authentication with controller"
                   in open(os.path.join(c.dir, "node-3.log"), errors="replace").read(), timeout=30)
        # (its old session ends after broker.session.timeout.ms), and it stays out
        c.wait_for("node 3 fenced", lambda: brokers() == [1, 2], timeout=30)
        time.sleep(5)
        assert brokers() == [1, 2]
        c.kill(3)
        c.overrides[:] = good
        c.start(3)
        c.wait_for("node 3 rejoined", lambda: brokers() == [1, 2, 3])
    finally:
        c.stop()


def test_an_unauthenticated_controller_request_is_refused(tmp_path):
    """With an authorizer, a controller takes Raft and broker requests only from principals
    allowed CLUSTER_ACTION: on a plaintext controller listener everyone is User:ANONYMOUS, as in
    Kafka, and a cluster of such nodes cannot form unless ANONYMOUS is a super user."""
    from test_cluster import Cluster
    c = Cluster(["authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer",
                 "super.users=User:admin;User:ANONYMOUS"])
    try:
        c.create("anon", partitions=1, rf=3)
    finally:
        c.stop()
    c = Cluster(["authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer",
                 "super.users=User:admin"], wait=False)
    try:
        denial = "Principal = User:ANONYMOUS is Denied operation = CLUSTER_ACTION from host = 127.0.0.1 " \
                 "on resource = Cluster:LITERAL:kafka-cluster for request = Vote"
        logs = lambda: "".join(open(os.path.join(c.dir, f"node-{i}.log"), errors="replace").read()  # noqa: E731
                               for i in c.procs)
        c.wait_for("a denial in the logs", lambda: denial in logs(), timeout=30)
        time.sleep(3)
        assert "registered with the controller" not in logs(), "no controller may be elected"
    finally:
        c.stop()


def test_franz_go_with_scram_is_allowed_what_its_acls_say(tmp_path):
    from test_java_go import GO_BINARY
    from test_sasl import add_scram_user
    b = secured(["sasl.enabled.mechanisms=PLAIN,SCRAM-SHA-512"])
    try:
        add_scram_user(b, tmp_path, "eve", "SCRAM-SHA-512=[password=eve-secret]")
        admin = AdminClient(conf(b, "admin"))
        for f in admin.create_topics([NewTopic(t, 1, 1) for t in ["go-t", "go-denied"]]).values():
            f.result(30)
        acls = [AclBinding(ResourceType.TOPIC, "go-", ResourcePatternType.PREFIXED, "User:eve", "*", op,
                           AclPermissionType.ALLOW) for op in (AclOperation.WRITE, AclOperation.READ)]
        acls.append(AclBinding(ResourceType.TOPIC, "go-denied", ResourcePatternType.LITERAL, "User:eve", "*",
                               AclOperation.WRITE, AclPermissionType.DENY))
        for f in admin.create_acls(acls).values():
            f.result(10)
        out = subprocess.run([GO_BINARY, b.bootstrap, "scram", "SCRAM-SHA-512", "eve", "eve-secret", "go-t",
                              "go-denied"], capture_output=True, text=True, timeout=120)
        assert out.returncode == 0 and "passed, 0 failed" in out.stdout, out.stdout + out.stderr[-2000:]
    finally:
        b.stop()
