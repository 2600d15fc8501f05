"""A dynamic controller quorum (KIP-853): controller 1001 starts it alone (--standalone, what
kafka-storage format --standalone does), 1002 and 1003 join through
controller.quorum.bootstrap.servers as observers, and Kafka's kafka-metadata-quorum
add-controller makes them voters. The quorum then survives losing its leader, and
remove-controller takes a voter out. A dedicated broker follows along throughout."""

import os
import re
import shutil
import subprocess
import tempfile

import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

from conftest import BINARY, ROOT
from test_cluster import Cluster, free_ports

CONTROLLERS = (1001, 1002, 1003)
KAFKA_LIB = os.path.join(ROOT, "target", "kafka-lib", "*")


class DynamicQuorum(Cluster):
    """Controllers 1001-1003 and broker 1 (the logs, waiting and stopping are Cluster's)."""

    def __init__(self):  # Cluster.__init__ would start a static cluster
        self.dir = tempfile.mkdtemp(prefix="ferrolog-dynamic-")
        ports = free_ports(len(CONTROLLERS) + 1)
        self.ports = dict(zip(CONTROLLERS, ports))
        self.broker_port = ports[-1]
        self.servers = ",".join(f"127.0.0.1:{p}" for p in self.ports.values())
        self.procs = {}

    @property
    def bootstrap(self):
        return f"127.0.0.1:{self.broker_port}"

    def properties(self, i):
        """The controller's config file, as add-controller's --command-config reads it."""
        path = os.path.join(self.dir, f"controller-{i}.properties")
        with open(path, "w") as f:
            f.write(f"node.id={i}\nprocess.roles=controller\n"
                    f"listeners=CONTROLLER://127.0.0.1:{self.ports[i]}\n"
                    f"controller.listener.names=CONTROLLER\n"
                    f"controller.quorum.bootstrap.servers={self.servers}\n"
                    f"log.dirs={os.path.join(self.dir, f'node-{i}')}\n")
        return path

    def start_controller(self, i, *flags):
        self.spawn(i, [BINARY, "server", "--config", self.properties(i), *flags])

    def start_broker(self):
        self.spawn(1, [BINARY, "server", "--data-dir", os.path.join(self.dir, "node-1"),
                       "--override", "node.id=1", "--override", "process.roles=broker",
                       "--override", f"listeners=PLAINTEXT://127.0.0.1:{self.broker_port}",
                       "--override", f"controller.quorum.bootstrap.servers={self.servers}",
                       "--override", "default.replication.factor=1",
                       "--override", "offsets.topic.replication.factor=1"])

    def spawn(self, i, cmd):
        log = open(os.path.join(self.dir, f"node-{i}.log"), "ab")
        self.procs[i] = subprocess.Popen(cmd, stdout=log, stderr=log)
        log.close()

    def quorum(self):
        """(active controller, voters, observers) as `ferrolog cluster describe` prints them."""
        out = subprocess.run([BINARY, "cluster", "describe", "--bootstrap-server", self.bootstrap],
                             capture_output=True, text=True, timeout=30).stdout
        ids = lambda name: [int(x) for x in (re.search(rf"{name}: ([\d,]*)", out) or [None, ""])[1].split(",") if x]
        active = re.search(r"ActiveController: (-?\d+)", out)
        return (int(active[1]) if active else -1), ids("Voters"), ids("Observers")

    def tool(self, *args):
        return subprocess.run(["java", "-cp", KAFKA_LIB, "org.apache.kafka.tools.MetadataQuorumCommand",
                               "--bootstrap-server", self.bootstrap, *args],
                              capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def quorum():
    q = DynamicQuorum()
    yield q
    q.stop()
    shutil.rmtree(q.dir, ignore_errors=True)


def create_and_write(bootstrap, topic):
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(topic, 1, 1)])[topic].result(30)
    failures = []
    p = Producer({"bootstrap.servers": bootstrap, "acks": "all"})
    for _ in range(20):
        p.produce(topic, value=b"x", on_delivery=lambda e, m: e and failures.append(e))
    assert p.flush(30) == 0 and not failures, failures


def test_dynamic_quorum_grows_survives_and_shrinks(quorum):
    quorum.start_controller(1001, "--standalone")
    for i in (1002, 1003):
        quorum.start_controller(i)
    quorum.start_broker()
    quorum.wait_for("1001 leads alone, the others observe", lambda: (
        lambda q: q[0] == 1001 and q[1] == [1001] and {1002, 1003, 1} <= set(q[2]))(quorum.quorum()))
    create_and_write(quorum.bootstrap, "on-one-voter")

    for i in (1002, 1003):
        out = quorum.tool("--command-config", quorum.properties(i), "add-controller")
        assert out.returncode == 0 and f"Added controller {i}" in out.stdout, out.stdout + out.stderr
    quorum.wait_for("three voters", lambda: sorted(quorum.quorum()[1]) == [1001, 1002, 1003])
    status = quorum.tool("describe", "--status")
    assert re.search(r"CurrentVoters:.*1001.*1002.*1003", status.stdout), status.stdout + status.stderr
    again = quorum.tool("--command-config", quorum.properties(1002), "add-controller")
    assert again.returncode != 0 and "DuplicateVoter" in again.stdout + again.stderr, again.stdout + again.stderr

    quorum.procs[1001].kill()
    quorum.procs[1001].wait(timeout=30)
    quorum.wait_for("a new active controller", lambda: quorum.quorum()[0] in (1002, 1003))
    create_and_write(quorum.bootstrap, "after-the-leader-died")

    meta = open(os.path.join(quorum.dir, "node-1001", "meta.properties")).read()
    directory_id = re.search(r"directory.id=(\S+)", meta)[1]
    out = quorum.tool("remove-controller", "--controller-id", "1001", f"--controller-directory-id={directory_id}")
    assert out.returncode == 0 and "Removed" in out.stdout, out.stdout + out.stderr
    quorum.wait_for("two voters", lambda: sorted(quorum.quorum()[1]) == [1002, 1003])
    create_and_write(quorum.bootstrap, "on-two-voters")
