"""Connection limits and request memory with Kafka's keys: max.connections.per.ip and its
overrides refuse a flood from one address while other clients connect, max.connections makes
new connections wait for a free slot, Kafka's kafka-configs changes the limits at run time, and
connections announcing huge frames do not make the broker hold what they announce."""

import socket
import struct
import time

from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient

from conftest import Ferrolog, wait_for
from test_sasl import kafka_tool


def api_versions_frame(correlation=1):
    header = struct.pack(">hhih", 18, 0, correlation, -1)
    return struct.pack(">i", len(header)) + header


def connect(broker, source):
    """A raw connection from loopback address `source` (every 127.0.0.0/8 address is local)."""
    s = socket.create_connection(("127.0.0.1", broker.port), timeout=5, source_address=(source, 0))
    s.settimeout(5)
    return s


def answered(s, timeout=5):
    """Whether ApiVersions is answered on `s` within `timeout` (False: closed or silent)."""
    s.settimeout(timeout)
    try:
        s.sendall(api_versions_frame())
        prefix = s.recv(4)
        return len(prefix) == 4 and struct.unpack(">i", prefix)[0] > 0
    except (socket.timeout, ConnectionResetError, BrokenPipeError):
        return False


def serves_clients(broker, topic):
    """A producer and a consumer from 127.0.0.1 (librdkafka) work."""
    p = Producer({"bootstrap.servers": broker.bootstrap})
    p.produce(topic, b"still served")
    assert p.flush(20) == 0
    c = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": f"g-{topic}",
                  "auto.offset.reset": "earliest"})
    c.subscribe([topic])
    try:
        deadline = time.time() + 30
        while time.time() < deadline:
            m = c.poll(1)
            if m is not None and not m.error():
                return m.value() == b"still served"
        return False
    finally:
        c.close()


def test_a_flood_from_one_address_is_refused_above_its_limit_while_others_connect():
    b = Ferrolog(["max.connections.per.ip=5", "max.connections.per.ip.overrides=127.0.0.3:8"])
    try:
        flood = [connect(b, "127.0.0.2") for _ in range(5)]
        assert all(answered(s) for s in flood)
        extra = connect(b, "127.0.0.2")
        assert not answered(extra), "a sixth connection from 127.0.0.2 is closed"
        assert "Rejected connection from 127.0.0.2, address already has the configured maximum of 5 connections." \
            in open(b.dir + "/server.log").read()
        # the override's address has its own count
        overridden = [connect(b, "127.0.0.3") for _ in range(8)]
        assert all(answered(s) for s in overridden)
        assert not answered(connect(b, "127.0.0.3"))
        # other addresses are served as before
        assert serves_clients(b, "limits-per-ip")
        # a slot freed is taken again
        flood.pop().close()
        wait_for("a slot from 127.0.0.2", lambda: answered(connect(b, "127.0.0.2")), timeout=10)
        # Kafka's kafka-configs lowers the limit for every broker at run time
        out = kafka_tool("kafka.admin.ConfigCommand", "--bootstrap-server", b.bootstrap, "--entity-type",
                         "brokers", "--entity-default", "--alter", "--add-config", "max.connections.per.ip=2")
        assert out.returncode == 0, out.stdout + out.stderr
        time.sleep(1)
        held = [connect(b, "127.0.0.4") for _ in range(2)]
        assert all(answered(s) for s in held)
        assert not answered(connect(b, "127.0.0.4"))
        described = kafka_tool("kafka.admin.ConfigCommand", "--bootstrap-server", b.bootstrap, "--entity-type",
                               "brokers", "--entity-default", "--describe")
        assert "max.connections.per.ip=2" in described.stdout, described.stdout + described.stderr
        bad = kafka_tool("kafka.admin.ConfigCommand", "--bootstrap-server", b.bootstrap, "--entity-type",
                         "brokers", "--entity-default", "--alter", "--add-config",
                         "max.connections.per.ip.overrides=[127.0.0.9]")
        assert bad.returncode != 0 and "max.connections.per.ip.overrides" in bad.stdout + bad.stderr
        for s in flood + overridden + held:
            s.close()
    finally:
        b.stop()


def test_at_max_connections_a_new_connection_waits_for_a_free_slot():
    b = Ferrolog(["max.connections=4"])
    try:
        time.sleep(0.5)  # the start-up probe's connection is gone
        held = [connect(b, "127.0.0.5") for _ in range(4)]
        assert all(answered(s) for s in held)
        waiting = connect(b, "127.0.0.6")  # the kernel completes the handshake; ferrolog waits
        assert not answered(waiting, timeout=2), "the fifth connection is not served while four are open"
        held.pop().close()
        waiting.settimeout(10)
        prefix = waiting.recv(4)  # the ApiVersions sent above is answered once a slot frees
        assert len(prefix) == 4 and struct.unpack(">i", prefix)[0] > 0
        # a start-up value that is not a count stops the broker, naming the key
        try:
            Ferrolog(["max.connections.per.ip.overrides=127.0.0.1"])
            raise AssertionError("started with a malformed override")
        except RuntimeError as e:
            assert "max.connections.per.ip.overrides" in str(e)
        # a limit ferrolog has no counterpart for stops start-up too
        try:
            Ferrolog(["queued.max.requests=10"])
            raise AssertionError("started with queued.max.requests it does not implement")
        except RuntimeError as e:
            assert "queued.max.requests" in str(e)
        for s in held + [waiting]:
            s.close()
    finally:
        b.stop()


def test_a_listener_has_its_own_maximum_and_admin_clients_see_the_limits_as_kafka_names_them():
    b = Ferrolog(["max.connections.per.ip=100", "listener.name.plaintext.max.connections=3"])
    try:
        time.sleep(0.5)
        held = [connect(b, "127.0.0.7") for _ in range(3)]
        assert all(answered(s) for s in held)
        assert not answered(connect(b, "127.0.0.8"), timeout=2), "the listener's fourth waits"
        for s in held:
            s.close()
        from confluent_kafka.admin import ConfigResource
        admin = AdminClient({"bootstrap.servers": b.bootstrap})
        resource = ConfigResource("broker", "1")
        configs = admin.describe_configs([resource])[resource].result(timeout=20)
        assert configs["max.connections.per.ip"].value == "100"
        assert configs["max.connection.creation.rate"].value == "2147483647"
    finally:
        b.stop()


def rss_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def test_connections_announcing_huge_frames_do_not_make_the_broker_hold_them():
    """20 connections each announce a 100 MiB request and send 60 MiB of it: the broker holds
    what it reads of at most a pool's worth (256 MiB by default) and serves everyone else."""
    import threading
    b = Ferrolog()
    try:
        assert serves_clients(b, "limits-memory-before")
        before = rss_mib(b.proc.pid)
        chunk = b"\0" * (1 << 20)
        sockets = []

        def trickle(source):
            s = connect(b, source)
            sockets.append(s)
            s.settimeout(30)
            try:
                s.sendall(struct.pack(">i", 100 << 20))
                for _ in range(60):
                    s.sendall(chunk)
            except (socket.timeout, OSError):
                pass  # held back: the broker is not reading this one

        senders = [threading.Thread(target=trickle, args=(f"127.0.1.{i}",), daemon=True) for i in range(1, 21)]
        for t in senders:
            t.start()
        time.sleep(8)
        grown = rss_mib(b.proc.pid) - before
        # other clients are served while the big frames are held
        assert serves_clients(b, "limits-memory-during")
        grown = max(grown, rss_mib(b.proc.pid) - before)
        print(f"RSS {before:.0f} MiB before, grew by {grown:.0f} MiB with 20 x 60 MiB of 100 MiB frames")
        assert grown < 400, f"RSS grew by {grown:.0f} MiB"
        for s in sockets:
            s.close()
    finally:
        b.stop()
