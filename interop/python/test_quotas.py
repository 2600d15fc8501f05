"""Client quotas with Kafka's tools and clients: kafka-configs sets and describes them for
clients, users and IPs (AlterClientQuotas / DescribeClientQuotas), a producer and a consumer
above their byte rates are throttled (KIP-219: throttle_time_ms, and the broker stops reading
them) while other clients are not, controller_mutation_rate refuses topic creations with
THROTTLING_QUOTA_EXCEEDED, and connection_creation_rate refuses connections from an address."""

import socket
import time

from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from conftest import Ferrolog, wait_for
from test_sasl import admin_config, conf, kafka_tool, sasl_broker


def configs(b, *args):
    out = kafka_tool("kafka.admin.ConfigCommand", "--bootstrap-server", b.bootstrap, *args)
    assert out.returncode == 0, out.stdout + out.stderr
    return out.stdout


def create(b, topic, partitions=1):
    admin = AdminClient({"bootstrap.servers": b.bootstrap})
    admin.create_topics([NewTopic(topic, partitions, 1)])[topic].result(timeout=20)


def produce_for(b, client_id, topic, seconds, size=10_000, client=None):
    """Produces as fast as the broker lets `client_id` for `seconds`: (bytes acknowledged,
    throttle events the client saw)."""
    acked = [0]
    throttles = []
    p = Producer({**(client or {"bootstrap.servers": b.bootstrap}), "client.id": client_id, "linger.ms": 5,
                  "throttle_cb": lambda event: throttles.append(event.throttle_time)})

    value = b"x" * size
    deadline = time.time() + seconds

    def delivered(err, msg):
        if err is None and time.time() < deadline:
            acked[0] += len(msg.value())

    while time.time() < deadline:
        try:
            p.produce(topic, value, on_delivery=delivered)
        except BufferError:
            pass
        p.poll(0.01)
    p.purge()
    p.flush(1)
    return acked[0], throttles


def test_kafka_configs_sets_and_describes_quotas_of_clients_users_and_ips():
    b = Ferrolog()
    try:
        configs(b, "--entity-type", "clients", "--entity-name", "app", "--alter", "--add-config",
                "producer_byte_rate=1048576,consumer_byte_rate=2097152")
        configs(b, "--entity-type", "users", "--entity-default", "--alter", "--add-config",
                "controller_mutation_rate=10")
        configs(b, "--entity-type", "users", "--entity-name", "alice", "--entity-type", "clients",
                "--entity-name", "app", "--alter", "--add-config", "producer_byte_rate=4096")
        configs(b, "--entity-type", "ips", "--entity-name", "127.0.0.9", "--alter", "--add-config",
                "connection_creation_rate=5")
        out = configs(b, "--entity-type", "clients", "--entity-name", "app", "--describe")
        assert "producer_byte_rate=1048576.0" in out and "consumer_byte_rate=2097152.0" in out, out
        assert "controller_mutation_rate=10.0" in configs(b, "--entity-type", "users", "--entity-default",
                                                          "--describe")
        out = configs(b, "--entity-type", "users", "--entity-name", "alice", "--entity-type", "clients",
                      "--entity-name", "app", "--describe")
        assert "producer_byte_rate=4096.0" in out, out
        assert "connection_creation_rate=5" in configs(b, "--entity-type", "ips", "--entity-name",
                                                       "127.0.0.9", "--describe")
        configs(b, "--entity-type", "clients", "--entity-name", "app", "--alter", "--delete-config",
                "consumer_byte_rate")
        out = configs(b, "--entity-type", "clients", "--entity-name", "app", "--describe")
        assert "consumer_byte_rate" not in out and "producer_byte_rate=1048576.0" in out, out
        # Kafka's refusals
        bad = kafka_tool("kafka.admin.ConfigCommand", "--bootstrap-server", b.bootstrap, "--entity-type",
                         "clients", "--entity-name", "app", "--alter", "--add-config", "producer_byte_rate=1.5")
        assert bad.returncode != 0 and "producer_byte_rate cannot be a fractional value" in bad.stdout + bad.stderr
        bad = kafka_tool("kafka.admin.ConfigCommand", "--bootstrap-server", b.bootstrap, "--entity-type",
                         "clients", "--entity-name", "app", "--alter", "--add-config", "request_percentage=50")
        assert bad.returncode != 0 and "request_percentage" in bad.stdout + bad.stderr
        # stored in the metadata log: still there after a restart
        b.stop()
        b.start()
        assert "producer_byte_rate=1048576.0" in configs(b, "--entity-type", "clients", "--entity-name", "app",
                                                         "--describe")
    finally:
        b.stop()


def test_a_producer_above_its_byte_rate_is_throttled_and_others_are_not():
    b = Ferrolog()
    try:
        create(b, "quota-produce")
        configs(b, "--entity-type", "clients", "--entity-name", "throttled", "--alter", "--add-config",
                "producer_byte_rate=102400")
        free, _ = produce_for(b, "free", "quota-produce", 6)
        throttled, throttles = produce_for(b, "throttled", "quota-produce", 6)
        # 100 KiB/s measured over (at least) 10 s windows lets about 1 MiB through in 6 s
        print(f"in 6 s: unthrottled {free} bytes, throttled {throttled} bytes, {len(throttles)} throttle events")
        assert throttled < 2_500_000, throttled
        assert free > 5 * throttled, (free, throttled)
        assert throttles and max(throttles) > 0
    finally:
        b.stop()


def test_a_consumer_above_its_byte_rate_gets_no_more_than_its_quota():
    b = Ferrolog()
    try:
        create(b, "quota-fetch")
        p = Producer({"bootstrap.servers": b.bootstrap, "linger.ms": 20})
        for _ in range(400):
            p.produce("quota-fetch", b"y" * 10_000)  # 4 MB
        assert p.flush(30) == 0
        configs(b, "--entity-type", "clients", "--entity-name", "slow-reader", "--alter", "--add-config",
                "consumer_byte_rate=153600")

        def consumed_in(client_id, seconds):
            c = Consumer({"bootstrap.servers": b.bootstrap, "group.id": client_id, "client.id": client_id,
                          "auto.offset.reset": "earliest", "enable.auto.commit": False})
            c.subscribe(["quota-fetch"])
            total, deadline = 0, time.time() + seconds
            while time.time() < deadline and total < 4_000_000:
                m = c.poll(0.2)
                if m is not None and not m.error():
                    total += len(m.value())
            c.close()
            return total

        free = consumed_in("fast-reader", 15)
        slow = consumed_in("slow-reader", 6)
        print(f"unthrottled consumed {free} bytes, throttled {slow} bytes in 6 s")
        assert free == 4_000_000
        # 150 KiB/s: a window's worth (1.5 MB) and little more
        assert slow < 2_500_000, slow
    finally:
        b.stop()


def test_controller_mutation_rate_refuses_topic_creations_above_it():
    from kafka import KafkaAdminClient
    from kafka.admin import NewTopic as KNewTopic
    from kafka.errors import ThrottlingQuotaExceededError
    b = Ferrolog()
    try:
        configs(b, "--entity-type", "clients", "--entity-name", "creator", "--alter", "--add-config",
                "controller_mutation_rate=1")
        admin = KafkaAdminClient(bootstrap_servers=b.bootstrap, client_id="creator")
        # 20 partitions at once: let through (the rate was not above the quota yet) ...
        admin.create_topics([KNewTopic("mutations-1", 20, 1)])
        # ... and now the rate is: the next creation is refused (a new admin client: the first
        # one holds back while its connection is throttled)
        admin.close()
        admin = KafkaAdminClient(bootstrap_servers=b.bootstrap, client_id="creator")
        try:
            response = admin.create_topics([KNewTopic("mutations-2", 1, 1)])
            errors = [t[1] for t in getattr(response, "topic_errors", getattr(response, "topics", []))]
            raise AssertionError(f"not refused: {response} {errors}")
        except ThrottlingQuotaExceededError:
            pass
        # another client is not held back
        other = KafkaAdminClient(bootstrap_servers=b.bootstrap, client_id="other")
        other.create_topics([KNewTopic("mutations-3", 1, 1)])
        topics = other.list_topics()
        assert "mutations-3" in topics and "mutations-1" in topics and "mutations-2" not in topics
        admin.close()
        other.close()
    finally:
        b.stop()


def test_connection_creation_rate_refuses_connections_from_one_address():
    b = Ferrolog()
    try:
        configs(b, "--entity-type", "ips", "--entity-name", "127.0.0.20", "--alter", "--add-config",
                "connection_creation_rate=2")
        time.sleep(0.5)

        def served(source):
            s = socket.create_connection(("127.0.0.1", b.port), timeout=5, source_address=(source, 0))
            s.settimeout(3)
            try:
                s.sendall(bytes.fromhex("0000000a" "0012" "0000" "00000001" "ffff"))  # ApiVersions v0
                return len(s.recv(4)) == 4
            except (socket.timeout, ConnectionResetError, BrokenPipeError):
                return False
            finally:
                s.close()

        results = [served("127.0.0.20") for _ in range(30)]
        # 2 per second measured over (at least) 10 s: about 20 pass, then refusals
        assert results[:15] == [True] * 15, results
        assert not all(results), results
        assert all(served("127.0.0.21") for _ in range(25)), "another address has no quota"
    finally:
        b.stop()


def test_a_users_quota_holds_all_its_clients_and_not_other_users(tmp_path):
    """By user (SASL PLAIN principals): alice's quota is shared by her clients; admin has none."""
    b = sasl_broker()
    try:
        tool = admin_config(tmp_path)
        out = kafka_tool("kafka.admin.ConfigCommand", "--bootstrap-server", b.bootstrap, "--command-config", tool,
                         "--entity-type", "users", "--entity-name", "alice", "--alter", "--add-config",
                         "producer_byte_rate=102400")
        assert out.returncode == 0, out.stdout + out.stderr
        admin = AdminClient(conf(b, user="admin", password="admin-secret"))
        admin.create_topics([NewTopic("quota-users", 1, 1)])["quota-users"].result(timeout=20)
        free, _ = produce_for(b, "any", "quota-users", 5, client=conf(b, user="admin", password="admin-secret"))
        first, throttles = produce_for(b, "one", "quota-users", 5, client=conf(b))
        second, _ = produce_for(b, "two", "quota-users", 5, client=conf(b))
        print(f"in 5 s: admin {free} bytes, alice's first client {first}, her second {second}")
        # one quota for both of alice's clients: about 1 MiB in all in the first 10 s
        assert first + second < 2_500_000, (first, second)
        assert free > 3 * (first + second), (free, first, second)
        assert throttles
    finally:
        b.stop()
