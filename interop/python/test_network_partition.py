"""A network partition, with each node in its own network namespace (ip netns + veth on a
bridge, each node its own address): the isolated old leader must not acknowledge acks=all
writes, the majority elects a new leader and keeps serving, and after healing every replica
converges to the same log. Needs root (CAP_NET_ADMIN), as scripts/test.sh runs it."""

import glob
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time

import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

from conftest import BINARY, wait_for

NODES = (1, 2, 3)
SUBNET = "10.231.7"
BRIDGE = "flbr0"


def sh(*args, check=True):
    return subprocess.run(args, capture_output=True, text=True, check=check)


@pytest.fixture(scope="module")
def netns_cluster():
    if os.geteuid() != 0 or shutil.which("ip") is None:
        pytest.fail("the network-partition test needs root and iproute2 (scripts/test.sh installs it)")
    cleanup_network()
    sh("ip", "link", "add", BRIDGE, "type", "bridge")
    sh("ip", "addr", "add", f"{SUBNET}.254/24", "dev", BRIDGE)
    sh("ip", "link", "set", BRIDGE, "up")
    for i in NODES:
        ns = f"flns{i}"
        sh("ip", "netns", "add", ns)
        sh("ip", "link", "add", f"flv{i}", "type", "veth", "peer", "name", "eth0", "netns", ns)
        sh("ip", "link", "set", f"flv{i}", "master", BRIDGE)
        sh("ip", "link", "set", f"flv{i}", "up")
        sh("ip", "netns", "exec", ns, "ip", "addr", "add", f"{SUBNET}.{i}/24", "dev", "eth0")
        sh("ip", "netns", "exec", ns, "ip", "link", "set", "eth0", "up")
        sh("ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up")
    d = tempfile.mkdtemp(prefix="ferrolog-netns-")
    voters = ",".join(f"{i}@{SUBNET}.{i}:9093" for i in NODES)
    procs = {}
    for i in NODES:
        log = open(os.path.join(d, f"node-{i}.log"), "ab")
        procs[i] = subprocess.Popen(
            ["ip", "netns", "exec", f"flns{i}", BINARY, "server", "--data-dir", os.path.join(d, f"node-{i}"),
             "--override", f"node.id={i}",
             "--override", f"listeners=PLAINTEXT://{SUBNET}.{i}:9092,CONTROLLER://{SUBNET}.{i}:9093",
             "--override", f"controller.quorum.voters={voters}",
             "--override", "broker.session.timeout.ms=3000",
             "--override", "broker.heartbeat.interval.ms=500",
             "--override", "replica.lag.time.max.ms=4000"],
            stdout=log, stderr=log)
    yield d, procs
    for p in procs.values():
        p.kill()
        p.wait()
    cleanup_network()
    shutil.rmtree(d, ignore_errors=True)


def cleanup_network():
    for i in NODES:
        sh("ip", "netns", "del", f"flns{i}", check=False)
        sh("ip", "link", "del", f"flv{i}", check=False)
    sh("ip", "link", "del", BRIDGE, check=False)


def bootstrap(nodes=NODES):
    return ",".join(f"{SUBNET}.{i}:9092" for i in nodes)


def describe(node):
    out = sh(BINARY, "topics", "--bootstrap-server", f"{SUBNET}.{node}:9092", "describe", "--topic", "split",
             check=False).stdout
    for line in out.splitlines():
        if "Partition: 0\t" in line:
            fields = dict(f.split(": ", 1) for f in line.strip().split("\t") if ": " in f)
            return int(fields["Leader"]), fields["Isr"]
    return None


PRODUCE_INSIDE = """
import sys
from confluent_kafka import Producer
p = Producer({"bootstrap.servers": sys.argv[1], "acks": "all", "message.timeout.ms": 8000, "retries": 0,
              "enable.idempotence": False})
acked = []
for i in range(20):
    p.produce("split", value=b"isolated-%d" % i, partition=0, on_delivery=lambda e, m: acked.append(e is None))
p.flush(15)
print("acked", sum(acked), "of", len(acked))
"""


def produce_acked(servers, prefix):
    """100 acks=all records to split-0, every one acknowledged."""
    p = Producer({"bootstrap.servers": servers, "acks": "all"})
    errors = []
    for i in range(100):
        p.produce("split", value=b"%s-%d" % (prefix, i), partition=0, on_delivery=lambda e, m: errors.append(e))
    p.flush(30)
    assert errors == [None] * 100


def test_isolated_leader_acknowledges_nothing_and_replicas_converge(netns_cluster):
    d, procs = netns_cluster
    wait_for("the cluster", lambda: describe(1) is None or True)
    admin = AdminClient({"bootstrap.servers": bootstrap()})
    wait_for("three brokers", lambda: len(admin.list_topics(timeout=5).brokers) == 3)
    admin.create_topics([NewTopic("split", num_partitions=1, replication_factor=-1, replica_assignment=[[1, 2, 3]],
                                  config={"min.insync.replicas": "2"})])["split"].result(30)
    wait_for("leader 1 with a full ISR", lambda: describe(2) == (1, "1,2,3"))
    produce_acked(bootstrap(), b"before")
    # cut node 1 (the leader) off from the other two and from us
    sh("ip", "link", "set", "flv1", "down")
    script = os.path.join(d, "inside.py")
    open(script, "w").write(PRODUCE_INSIDE)
    inside = subprocess.run(["ip", "netns", "exec", "flns1", sys.executable, script, f"{SUBNET}.1:9092"],
                            capture_output=True, text=True, timeout=60)
    assert "acked 0 of 20" in inside.stdout, inside.stdout + inside.stderr[-2000:]
    # the majority side elected another leader and takes acks=all writes
    wait_for("a new leader on the majority side", lambda: describe(2)[0] in (2, 3))
    produce_acked(bootstrap((2, 3)), b"after")
    # heal: node 1 truncates its divergent tail, catches up and rejoins the ISR
    sh("ip", "link", "set", "flv1", "up")
    wait_for("node 1 back in the ISR", lambda: "1" in describe(2)[1].split(","), timeout=90)

    def digests():
        out = {}
        for i in NODES:
            h = hashlib.md5()
            for f in sorted(glob.glob(os.path.join(d, f"node-{i}", "split-0", "*.log"))):
                h.update(open(f, "rb").read())
            out[i] = h.hexdigest()
        return out
    wait_for("identical logs on every replica", lambda: len(set(digests().values())) == 1, timeout=30)


def active_controller(node):
    out = sh(BINARY, "cluster", "describe", "--bootstrap-server", f"{SUBNET}.{node}:9092", check=False).stdout
    for line in out.splitlines():
        if line.startswith("ActiveController: "):
            return int(line.split()[1])
    return -1


def test_cutting_off_the_active_controller_does_not_stall_the_majority(netns_cluster):
    """A partition led and replicated on the majority side keeps taking acks=all writes while
    the active controller is cut off: no long gap between acknowledgements (it was 6-11 s,
    behind a heartbeat held through a 10 s time-out with the lock of every controller peer)."""
    import threading
    wait_for("an active controller", lambda: active_controller(2) in NODES)
    controller = active_controller(2)
    a, b = [i for i in NODES if i != controller]
    admin = AdminClient({"bootstrap.servers": bootstrap((a, b))})
    admin.create_topics([NewTopic("steady", num_partitions=1, replication_factor=-1,
                                  replica_assignment=[[a, b]])])["steady"].result(30)
    p = Producer({"bootstrap.servers": bootstrap((a, b)), "acks": "all", "linger.ms": 0,
                  "message.timeout.ms": 30000})
    acks, errors, stop = [], [], threading.Event()

    def on_delivery(err, _msg):
        (errors if err else acks).append(err or time.monotonic())

    def run():
        while not stop.is_set():
            p.produce("steady", value=b"x", partition=0, on_delivery=on_delivery)
            p.poll(0.02)
        p.flush(30)
    t = threading.Thread(target=run)
    t.start()
    try:
        wait_for("steady acknowledgements", lambda: len(acks) > 50)
        cut = time.monotonic()
        sh("ip", "link", "set", f"flv{controller}", "down")
        time.sleep(8)
        # the cut was real: the majority elects another active controller
        wait_for("a new active controller on the majority side",
                 lambda: active_controller(a) in (a, b) or active_controller(b) in (a, b), timeout=30)
    finally:
        sh("ip", "link", "set", f"flv{controller}", "up")
        stop.set()
        t.join(60)
    assert not errors, errors[:3]
    window = [x for x in acks if x >= cut - 1]
    gaps = [y - x for x, y in zip(window, window[1:])]
    assert window and window[-1] > cut + 7, "writes went on after the cut"
    print(f"controller {controller} cut off: {len(window)} acks, longest gap {max(gaps):.2f} s")
    # measured: 0.00-0.04 s, once 1.69 s (the binary before this test stalled 6.2 s); the
    # bound leaves room for a loaded CI machine
    assert max(gaps) < 3.0, f"acks=all stalled {max(gaps):.1f} s after the controller was cut off"
