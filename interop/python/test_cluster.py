"""A 3-node ferrolog cluster (each node broker+controller, a Raft controller quorum) against
real clients: leader kill -9 during idempotent acks=all produce, controller kill, controlled
shutdown, NOT_ENOUGH_REPLICAS, follower catch-up, and the Java client and franz-go while
leaders change."""

import glob
import hashlib
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time

import pytest
from confluent_kafka import KafkaError, Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from conftest import BINARY, ROOT, wait_for

NODES = 3


def free_ports(n):
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


class Cluster:
    """Brokers 1..3, each also a controller; or, `dedicated`, brokers 1..3 and controllers
    1001..1003 (brokers in `bootstrap_brokers` find the controllers through
    controller.quorum.bootstrap.servers instead of the voters)."""

    def __init__(self, overrides=(), dedicated=False, bootstrap_brokers=(), racks=None, protocol="PLAINTEXT",
                 command_config=None, client_conf=None, wait=True):
        """`protocol` is the broker listener's (brokers replicate over it); the helpers connect
        with `command_config` (ferrolog's tools) and `client_conf` (the admin client)."""
        self.dir = tempfile.mkdtemp(prefix="ferrolog-cluster-")
        self.protocol = protocol
        self.tool_args = ["--command-config", command_config] if command_config else []
        self.client_conf = client_conf or {}
        self.racks = racks or {}
        self.dedicated = dedicated
        self.bootstrap_brokers = set(bootstrap_brokers)
        brokers = list(range(1, NODES + 1))
        controllers = [1000 + i for i in brokers] if dedicated else brokers
        ports = free_ports(len(brokers) + len(controllers))
        self.client_ports = {b: ports[k] for k, b in enumerate(brokers)}
        self.controller_ports = {c: ports[len(brokers) + k] for k, c in enumerate(controllers)}
        self.voters = ",".join(f"{i}@127.0.0.1:{p}" for i, p in self.controller_ports.items())
        self.overrides = list(overrides)
        self.procs = {}
        for i in controllers if dedicated else []:
            self.start(i)
        for i in self.client_ports:
            self.start(i)
        if wait:
            self.wait_ready()

    @property
    def bootstrap(self):
        return ",".join(f"127.0.0.1:{p}" for p in self.client_ports.values())

    def node_bootstrap(self, i):
        return f"127.0.0.1:{self.client_ports[i]}"

    def start(self, i):
        cmd = [BINARY, "server", "--data-dir", os.path.join(self.dir, f"node-{i}"),
               "--override", f"node.id={i}"]
        if not self.dedicated:
            cmd += ["--override", f"listeners={self.protocol}://127.0.0.1:{self.client_ports[i]},"
                                  f"CONTROLLER://127.0.0.1:{self.controller_ports[i]}"]
        elif i in self.controller_ports:
            cmd += ["--override", "process.roles=controller",
                    "--override", f"listeners=CONTROLLER://127.0.0.1:{self.controller_ports[i]}"]
        else:
            cmd += ["--override", "process.roles=broker",
                    "--override", f"listeners={self.protocol}://127.0.0.1:{self.client_ports[i]}"]
        if i in self.bootstrap_brokers:
            servers = ",".join(f"127.0.0.1:{p}" for p in self.controller_ports.values())
            cmd += ["--override", f"controller.quorum.bootstrap.servers={servers}"]
        else:
            cmd += ["--override", f"controller.quorum.voters={self.voters}"]
        if i in self.racks:
            cmd += ["--override", f"broker.rack={self.racks[i]}"]
        cmd += ["--override", "broker.session.timeout.ms=3000",
               "--override", "broker.heartbeat.interval.ms=500",
               "--override", "replica.lag.time.max.ms=5000",
               "--override", "default.replication.factor=3",
               "--override", "min.insync.replicas=2"]
        for o in self.overrides:
            cmd += ["--override", o]
        log = open(os.path.join(self.dir, f"node-{i}.log"), "ab")
        self.procs[i] = subprocess.Popen(cmd, stdout=log, stderr=log)
        log.close()

    def kill(self, i, sig=signal.SIGKILL):
        p = self.procs[i]
        p.send_signal(sig)
        p.wait(timeout=60)

    def alive(self):
        """The live brokers."""
        return [i for i, p in self.procs.items() if p.poll() is None and i in self.client_ports]

    def cli(self, *args, node=None):
        node = node or self.alive()[0]
        return subprocess.run([BINARY, *args], capture_output=True, text=True, timeout=60)

    def describe(self, topic, node=None):
        """{partition: (leader, replicas, isr, epoch)} as `ferrolog topics describe` prints."""
        node = node or self.alive()[0]
        out = subprocess.run([BINARY, "topics", "--bootstrap-server", self.node_bootstrap(node),
                              *self.tool_args, "describe", "--topic", topic], capture_output=True, text=True,
                             timeout=30)
        parts = {}
        for m in re.finditer(r"Partition: (\d+)\tLeader: (-?\d+)\tReplicas: ([\d,]*)\tIsr: ([\d,]*)\tLeaderEpoch: (\d+)",
                             out.stdout):
            ids = lambda s: [int(x) for x in s.split(",") if x]
            parts[int(m[1])] = (int(m[2]), ids(m[3]), ids(m[4]), int(m[5]))
        return parts

    def controller(self, node=None):
        """The active controller (from DescribeQuorum) and `ferrolog cluster describe`'s output."""
        node = node or self.alive()[0]
        out = subprocess.run([BINARY, "cluster", "describe", "--bootstrap-server", self.node_bootstrap(node),
                              *self.tool_args], capture_output=True, text=True, timeout=30).stdout
        m = re.search(r"ActiveController: (-?\d+)", out)
        return int(m[1]) if m else -1, out

    def wait_ready(self, timeout=60):
        deadline = time.time() + timeout
        while time.time() < deadline:
            ctrl, out = self.controller()
            if ctrl > 0 and out.count("Broker: ") == len(self.alive()):
                return
            time.sleep(0.2)
        raise RuntimeError("cluster did not form: " + self.logs())

    def wait_for(self, what, check, timeout=60):
        wait_for(what, check, timeout, detail=self.logs)

    def create(self, topic, partitions=3, rf=3, configs=None):
        # a restarted broker is fenced until it has caught up with the metadata: wait for
        # every live broker, so placement can use it
        self.wait_for("every live broker unfenced",
                      lambda: self.controller()[1].count("Broker: ") == len(self.alive()))
        admin = AdminClient({**self.client_conf, "bootstrap.servers": self.bootstrap})
        fs = admin.create_topics([NewTopic(topic, partitions, rf, config=configs or {})])
        fs[topic].result(30)
        self.wait_for(f"{topic} leaders", lambda: all(
            v[0] > 0 for v in self.describe(topic).values()) and len(self.describe(topic)) == partitions)

    def segment_digests(self, topic, partition):
        digests = {}
        for i in self.client_ports:
            h = hashlib.md5()
            for f in sorted(glob.glob(os.path.join(self.dir, f"node-{i}", f"{topic}-{partition}", "*.log"))):
                h.update(open(f, "rb").read())
            digests[i] = h.hexdigest()
        return digests

    def logs(self):
        text = ""
        for i in self.procs:
            path = os.path.join(self.dir, f"node-{i}.log")
            if os.path.exists(path):
                lines = [l for l in open(path, errors="replace").read().splitlines() if "openraft" not in l]
                text += f"--- node {i}\n" + "\n".join(lines[-15:]) + "\n"
        return text

    def stop(self):
        for i, p in self.procs.items():
            if p.poll() is None:
                p.terminate()
        for p in self.procs.values():
            try:
                p.wait(timeout=40)
            except subprocess.TimeoutExpired:
                p.kill()


@pytest.fixture(scope="module")
def cluster():
    c = Cluster()
    yield c
    c.stop()
    shutil.rmtree(c.dir, ignore_errors=True)


class Load:
    """An idempotent acks=all librdkafka producer sending numbered values until stopped."""

    def __init__(self, bootstrap, topic):
        self.producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True,
                                  "linger.ms": 5, "message.timeout.ms": 120000})
        self.topic = topic
        self.acked = set()
        self.errors = []
        self.sent = 0
        self.stop_flag = threading.Event()
        self.thread = threading.Thread(target=self.run)
        self.thread.start()

    def on_delivery(self, err, msg):
        if err:
            self.errors.append(err)
        else:
            self.acked.add(msg.value().decode())

    def run(self):
        while not self.stop_flag.is_set():
            for _ in range(50):
                try:
                    self.producer.produce(self.topic, value=str(self.sent).encode(), on_delivery=self.on_delivery)
                    self.sent += 1
                except BufferError:
                    break
            self.producer.poll(0.01)
        self.producer.flush(120)

    def acked_now(self):
        return len(self.acked)

    def finish(self):
        self.stop_flag.set()
        self.thread.join(180)
        return self


def consume_all(bootstrap, topic):
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"check-{time.time()}",
                  "enable.auto.commit": False, "auto.offset.reset": "earliest"})
    md = c.list_topics(topic, timeout=10)
    c.assign([TopicPartition(topic, p, 0) for p in md.topics[topic].partitions])
    values, dups = set(), 0
    idle = time.time()
    while time.time() - idle < 5:
        m = c.poll(0.5)
        if m is None or m.error():
            continue
        idle = time.time()
        v = m.value().decode()
        if v in values:
            dups += 1
        values.add(v)
    c.close()
    return values, dups


def check_no_loss_no_duplicates(cluster, load):
    assert not load.errors, load.errors[:5]
    values, dups = consume_all(cluster.bootstrap, load.topic)
    lost = load.acked - values
    assert not lost, f"{len(lost)} acknowledged records lost, e.g. {sorted(lost)[:5]}"
    assert dups == 0, f"{dups} duplicates"
    assert len(load.acked) > 1000


def test_replication_leader_kill_and_rejoin(cluster):
    """kill -9 the leader while an idempotent acks=all producer sends: it continues against a
    new leader from the ISR, nothing acknowledged is lost or duplicated; the old leader comes
    back, catches up, rejoins the ISR, and every replica holds the same bytes."""
    leader_kill_and_rejoin(cluster, "failover")


def leader_kill_and_rejoin(cluster, topic):
    cluster.create(topic)
    load = Load(cluster.bootstrap, topic)
    cluster.wait_for("traffic", lambda: load.acked_now() > 2000)
    leader = cluster.describe(topic)[0][0]
    before = load.acked_now()
    cluster.kill(leader)
    killed = time.time()
    cluster.wait_for("a new leader", lambda: cluster.describe(topic)[0][0] not in (-1, leader))
    failover = time.time() - killed
    cluster.wait_for("produce resumed", lambda: load.acked_now() > before + 2000, timeout=60)
    cluster.start(leader)
    cluster.wait_for("the old leader back in every ISR", lambda: all(
        len(v[2]) == 3 for v in cluster.describe(topic).values()), timeout=60)
    load.finish()
    check_no_loss_no_duplicates(cluster, load)
    for p in range(3):
        cluster.wait_for(f"replicas of partition {p} converge",
                         lambda: len(set(cluster.segment_digests(topic, p).values())) == 1, timeout=30)
    return failover


def test_controller_kill(cluster):
    """kill -9 the active controller: another takes over; topics can still be created and
    written."""
    controller, _ = cluster.controller()
    assert controller > 0
    cluster.kill(controller)
    cluster.wait_for("a new controller", lambda: cluster.controller()[0] not in (-1, controller))
    topic = "after-controller-kill"
    cluster.create(topic, partitions=2, rf=2)
    p = Producer({"bootstrap.servers": cluster.bootstrap, "acks": "all"})
    failures = []
    for i in range(100):
        p.produce(topic, value=b"x", on_delivery=lambda e, m: e and failures.append(e))
    p.flush(30)
    assert not failures
    cluster.start(controller)
    cluster.wait_for("the old controller back", lambda: cluster.controller()[1].count("Broker: ") == 3)


def check_acks_all_refused_acks_1_taken(cluster, topic, leader):
    """With the ISR below min.insync.replicas: an acks=all write is refused, up front or (the ISR
    shrank while it waited) after the append, never acknowledged; an acks=1 write is taken."""
    errors = []
    p = Producer({"bootstrap.servers": cluster.node_bootstrap(leader), "acks": "all",
                  "message.timeout.ms": 3000, "retries": 0})
    p.produce(topic, value=b"x", on_delivery=lambda e, m: errors.append(e))
    p.flush(10)
    assert errors and errors[0] is not None and errors[0].code() in (
        KafkaError.NOT_ENOUGH_REPLICAS, KafkaError.NOT_ENOUGH_REPLICAS_AFTER_APPEND), errors
    ok = []
    p1 = Producer({"bootstrap.servers": cluster.node_bootstrap(leader), "acks": "1"})
    p1.produce(topic, value=b"y", on_delivery=lambda e, m: ok.append(e))
    p1.flush(10)
    assert ok == [None]


def test_min_insync_replicas(cluster):
    """With the ISR below min.insync.replicas, acks=all gets NOT_ENOUGH_REPLICAS and acks=1
    still works; when the follower returns the ISR is whole again. (Two of three combined
    nodes down would also take the controller quorum down, so this uses
    min.insync.replicas=3 and one follower down.)"""
    topic = "min-isr"
    cluster.create(topic, partitions=1, configs={"min.insync.replicas": "3"})
    leader, replicas, _, _ = cluster.describe(topic)[0]
    follower = [r for r in replicas if r != leader][0]
    cluster.kill(follower)
    cluster.wait_for("the ISR shrinks", lambda: len(cluster.describe(topic, node=leader)[0][2]) == 2)
    check_acks_all_refused_acks_1_taken(cluster, topic, leader)
    cluster.start(follower)
    cluster.wait_for("the ISR whole again", lambda: len(cluster.describe(topic, node=leader)[0][2]) == 3,
                     timeout=60)
    done = []
    p2 = Producer({"bootstrap.servers": cluster.node_bootstrap(leader), "acks": "all", "message.timeout.ms": 10000})
    p2.produce(topic, value=b"z", on_delivery=lambda e, m: done.append(e))
    p2.flush(15)
    assert done == [None]


def test_controlled_shutdown(cluster):
    """SIGTERM moves leadership off the broker before it exits; the producer sees no error."""
    topic = "controlled"
    cluster.create(topic)
    load = Load(cluster.bootstrap, topic)
    cluster.wait_for("traffic", lambda: load.acked_now() > 1000)
    parts = cluster.describe(topic)
    victim = parts[0][0]
    started = time.time()
    cluster.kill(victim, signal.SIGTERM)
    took = time.time() - started
    assert took < 30, took
    other = [i for i in cluster.alive()][0]
    after = cluster.describe(topic, node=other)
    assert all(v[0] != victim for v in after.values()), after
    before = load.acked_now()
    cluster.wait_for("produce continues", lambda: load.acked_now() > before + 1000)
    cluster.start(victim)
    cluster.wait_for("back in every ISR", lambda: all(len(v[2]) == 3 for v in cluster.describe(topic).values()))
    load.finish()
    check_no_loss_no_duplicates(cluster, load)


def test_rolling_restart(cluster):
    """A rolling restart under load: each node in turn gets SIGTERM (a controlled shutdown),
    restarts, and is back in every ISR before the next goes; the idempotent acks=all producer
    sees no error, and nothing acknowledged is lost or duplicated."""
    topic = "rolling"
    cluster.create(topic)
    load = Load(cluster.bootstrap, topic)
    cluster.wait_for("traffic", lambda: load.acked_now() > 1000)
    for node in sorted(cluster.client_ports):
        cluster.kill(node, signal.SIGTERM)
        before = load.acked_now()
        cluster.wait_for(f"produce continues without node {node}", lambda: load.acked_now() > before + 500)
        cluster.start(node)
        cluster.wait_for(f"node {node} back in every ISR",
                         lambda: all(len(v[2]) == 3 for v in cluster.describe(topic).values()), timeout=90)
    load.finish()
    check_no_loss_no_duplicates(cluster, load)


def leader_change_during(cluster, topic, cmd, seconds=25):
    """Runs a client's load mode while the leader of partition 0 is killed and restarted."""
    cluster.create(topic)
    proc = subprocess.Popen(cmd + [cluster.bootstrap, "load", topic, str(seconds)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(6)
    leader = cluster.describe(topic)[0][0]
    cluster.kill(leader)
    cluster.wait_for("a new leader", lambda: cluster.describe(topic)[0][0] not in (-1, leader))
    time.sleep(3)
    cluster.start(leader)
    out, err = proc.communicate(timeout=seconds + 240)
    print(out[-3000:], err[-3000:])
    assert proc.returncode == 0 and "0 failed" in out, out[-2000:] + err[-2000:]
    cluster.wait_for("every ISR whole", lambda: all(len(v[2]) == 3 for v in cluster.describe(topic).values()))


def test_java_client_through_leader_change(cluster):
    classpath_file = os.path.join(ROOT, "interop", "java", "target", "classpath.txt")
    jar = os.path.join(ROOT, "interop", "java", "target", "interop-java-0.1.0.jar")
    assert os.path.exists(classpath_file) and os.path.exists(jar), "run scripts/test.sh (it builds interop/java)"
    classpath = open(classpath_file).read().strip()
    leader_change_during(cluster, "java-load", ["java", "-cp", f"{jar}:{classpath}", "interop.Main"])


def test_franz_go_through_leader_change(cluster):
    binary = os.path.join(ROOT, "target", "interop-go")
    assert os.path.exists(binary), "run scripts/test.sh (it builds interop/go)"
    leader_change_during(cluster, "franz-load", [binary])


def test_groups_and_transactions_follow_their_coordinator(cluster):
    """Group offsets and transactions work in a cluster, and a group's committed offsets
    survive kill -9 of its coordinator (the leader of its __consumer_offsets partition)."""
    topic = "coord"
    cluster.create(topic, partitions=2)
    tp = Producer({"bootstrap.servers": cluster.bootstrap, "transactional.id": "coord-tx"})
    tp.init_transactions(30)
    for n in range(3):
        tp.begin_transaction()
        for i in range(10):
            tp.produce(topic, value=f"t{n}-{i}".encode(), partition=i % 2)
        tp.commit_transaction(30)
    group = "coord-group"
    c = Consumer({"bootstrap.servers": cluster.bootstrap, "group.id": group, "isolation.level": "read_committed",
                  "auto.offset.reset": "earliest", "enable.auto.commit": False})
    c.subscribe([topic])
    got = []
    deadline = time.time() + 60
    while len(got) < 30 and time.time() < deadline:
        m = c.poll(0.5)
        if m is not None and not m.error():
            got.append(m.value().decode())
    assert len(got) == 30, got
    c.commit(asynchronous=False)
    committed = {p.partition: p.offset for p in c.committed([TopicPartition(topic, 0), TopicPartition(topic, 1)], 10)}
    c.close()
    assert sum(committed.values()) >= 30, committed  # the transaction markers take offsets too
    admin = AdminClient({"bootstrap.servers": cluster.bootstrap})
    desc = admin.describe_consumer_groups([group])[group].result(30)
    coordinator = desc.coordinator.id
    # no pause: a commit is acknowledged only once the coordinator's ISR has it
    cluster.kill(coordinator)
    c2 = Consumer({"bootstrap.servers": cluster.bootstrap, "group.id": group, "enable.auto.commit": False})

    def resumed():
        now = {p.partition: p.offset for p in c2.committed([TopicPartition(topic, 0), TopicPartition(topic, 1)], 5)}
        return now == committed
    cluster.wait_for("the new coordinator has the committed offsets", resumed, timeout=60)
    c2.close()
    cluster.start(coordinator)
    cluster.wait_ready()


def test_adding_partitions(cluster):
    """`ferrolog topics alter --partitions` places new replicated partitions on live brokers."""
    topic = "grow"
    cluster.create(topic, partitions=1)
    out = cluster.cli("topics", "--bootstrap-server", cluster.node_bootstrap(cluster.alive()[0]),
                      "alter", "--topic", topic, "--partitions", "4")
    assert out.returncode == 0, out.stderr
    cluster.wait_for("4 led partitions, each with 3 in sync", lambda: len(cluster.describe(topic)) == 4 and all(
        v[0] > 0 and len(v[2]) == 3 for v in cluster.describe(topic).values()))
    p = Producer({"bootstrap.servers": cluster.bootstrap, "acks": "all"})
    errors = []
    for part in range(4):
        p.produce(topic, value=b"x", partition=part, on_delivery=lambda e, m: errors.append(e))
    p.flush(30)
    assert errors == [None] * 4


def test_preferred_leader_election(cluster):
    """After a failover the first replica is back in sync but not leading; a preferred
    election (ferrolog elect-leaders, and Kafka's own kafka-leader-election tool) gives
    leadership back; an unclean election of a partition with a live leader is not needed."""
    topic = "preferred"
    admin = AdminClient({"bootstrap.servers": cluster.bootstrap})
    admin.create_topics([NewTopic(topic, num_partitions=2, replication_factor=-1,
                                  replica_assignment=[[1, 2, 3], [2, 3, 1]])])[topic].result(30)
    cluster.wait_for("leaders 1 and 2", lambda: [cluster.describe(topic)[p][0] for p in (0, 1)] == [1, 2])
    cluster.kill(1)
    cluster.wait_for("partition 0 led by another", lambda: cluster.describe(topic, node=2)[0][0] in (2, 3))
    cluster.start(1)
    cluster.wait_for("1 back in sync", lambda: 1 in cluster.describe(topic, node=2)[0][2], timeout=60)
    out = cluster.cli("elect-leaders", "--bootstrap-server", cluster.node_bootstrap(2),
                      "--election-type", "preferred", "--topic", topic, "--partition", "0")
    assert out.returncode == 0 and "Successfully completed leader election (PREFERRED) for partition preferred-0" \
        in out.stdout, out.stdout + out.stderr
    cluster.wait_for("1 leads partition 0 again", lambda: cluster.describe(topic, node=2)[0][0] == 1)
    kafka_lib = os.path.join(ROOT, "target", "kafka-lib", "*")
    tool = subprocess.run(["java", "-cp", kafka_lib, "org.apache.kafka.tools.LeaderElectionCommand",
                           "--bootstrap-server", cluster.node_bootstrap(2), "--election-type", "PREFERRED",
                           "--topic", topic, "--partition", "0"], capture_output=True, text=True, timeout=120)
    assert "Valid replica already elected for partitions preferred-0" in tool.stdout, tool.stdout + tool.stderr
    out = cluster.cli("elect-leaders", "--bootstrap-server", cluster.node_bootstrap(2),
                      "--election-type", "unclean", "--topic", topic)
    assert "Valid replica already elected for partition preferred-1" in out.stdout, out.stdout + out.stderr


def test_reassignment(cluster):
    """`ferrolog reassign` moves a partition from brokers 1,2 to 2,3: broker 3 catches up, then
    1 leaves (leadership moves off it, its copy is deleted); the data stays whole. Kafka's
    kafka-reassign-partitions tool reports the move complete."""
    topic = "moving"
    admin = AdminClient({"bootstrap.servers": cluster.bootstrap})
    admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=-1,
                                  replica_assignment=[[1, 2]])])[topic].result(30)
    cluster.wait_for("leader 1", lambda: cluster.describe(topic)[0][0] == 1)
    p = Producer({"bootstrap.servers": cluster.bootstrap, "acks": "all"})
    for i in range(2000):
        p.produce(topic, value=str(i).encode())
    p.flush(30)
    plan = os.path.join(cluster.dir, "move.json")
    with open(plan, "w") as f:
        f.write('{"version":1,"partitions":[{"topic":"moving","partition":0,"replicas":[2,3]}]}')
    out = cluster.cli("reassign", "--bootstrap-server", cluster.node_bootstrap(2),
                      "--reassignment-json-file", plan, "--execute", "--throttle", "50000000")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "throttle limit was set to 50000000 B/s" in out.stdout, out.stdout
    cluster.wait_for("the move completes", lambda: cluster.describe(topic, node=2)[0][1] == [2, 3], timeout=60)
    verify = cluster.cli("reassign", "--bootstrap-server", cluster.node_bootstrap(2),
                         "--reassignment-json-file", plan, "--verify")
    assert "is completed" in verify.stdout, verify.stdout + verify.stderr
    assert "Throttle was removed." in verify.stdout, verify.stdout + verify.stderr
    kafka_lib = os.path.join(ROOT, "target", "kafka-lib", "*")
    tool = subprocess.run(["java", "-cp", kafka_lib, "org.apache.kafka.tools.reassign.ReassignPartitionsCommand",
                           "--bootstrap-server", cluster.node_bootstrap(2), "--reassignment-json-file", plan,
                           "--verify"], capture_output=True, text=True, timeout=120)
    assert "Reassignment of partition moving-0 is completed" in tool.stdout, tool.stdout + tool.stderr
    leader, replicas, isr, _ = cluster.describe(topic, node=2)[0]
    assert leader in (2, 3) and sorted(isr) == [2, 3]
    cluster.wait_for("broker 1 deleted its copy",
                     lambda: not os.path.exists(os.path.join(cluster.dir, "node-1", "moving-0")))
    values, dups = consume_all(cluster.bootstrap, topic)
    assert len(values) == 2000 and dups == 0
    cluster.wait_for("identical copies on 2 and 3", lambda: len({
        d for i, d in cluster.segment_digests(topic, 0).items() if i != 1}) == 1)


def partition_bytes(cluster, node, topic, partition):
    return sum(os.path.getsize(f) for f in glob.glob(
        os.path.join(cluster.dir, f"node-{node}", f"{topic}-{partition}", "*.log")))


def test_reassignment_throttled(cluster):
    """Kafka's kafka-reassign-partitions --execute --throttle sets ferrolog's replication
    throttles (topic throttled replicas, per-broker rates): a new replica copies ~6 MB at about
    1 MB/s instead of at once; --verify reports the move complete and removes the throttle."""
    topic = "throttled"
    admin = AdminClient({"bootstrap.servers": cluster.bootstrap})
    admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=-1,
                                  replica_assignment=[[1]])])[topic].result(30)
    cluster.wait_for("leader 1", lambda: cluster.describe(topic)[0][0] == 1)
    p = Producer({"bootstrap.servers": cluster.bootstrap, "acks": "1", "linger.ms": 20})
    for i in range(6000):
        p.produce(topic, value=os.urandom(1000))
        if i % 500 == 0:
            p.poll(0)
    p.flush(60)
    total = partition_bytes(cluster, 1, topic, 0)
    assert total > 5_500_000
    plan = os.path.join(cluster.dir, "throttled.json")
    with open(plan, "w") as f:
        f.write('{"version":1,"partitions":[{"topic":"throttled","partition":0,"replicas":[1,3]}]}')
    kafka_lib = os.path.join(ROOT, "target", "kafka-lib", "*")
    tool = ["java", "-cp", kafka_lib, "org.apache.kafka.tools.reassign.ReassignPartitionsCommand",
            "--bootstrap-server", cluster.node_bootstrap(1), "--reassignment-json-file", plan]
    started = time.time()
    out = subprocess.run(tool + ["--execute", "--throttle", "1000000"], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "throttle" in out.stdout.lower(), out.stdout
    configs = cluster.cli("configs", "--bootstrap-server", cluster.node_bootstrap(1),
                          "describe", "--topic", topic).stdout
    assert "leader.replication.throttled.replicas=0:1" in configs, configs
    assert "follower.replication.throttled.replicas=0:3" in configs, configs
    time.sleep(2)
    copied = partition_bytes(cluster, 3, topic, 0)
    assert copied < total * 0.75, f"{copied} of {total} bytes within ~2 s of a 1 MB/s throttle"
    cluster.wait_for("the move completes", lambda: sorted(cluster.describe(topic, node=1)[0][2]) == [1, 3],
                     timeout=90)
    took = time.time() - started
    assert took > 3, took
    verify = subprocess.run(tool + ["--verify"], capture_output=True, text=True, timeout=120)
    assert "Reassignment of partition throttled-0 is completed" in verify.stdout, verify.stdout + verify.stderr
    configs = cluster.cli("configs", "--bootstrap-server", cluster.node_bootstrap(1),
                          "describe", "--topic", topic).stdout
    assert "throttled.replicas" not in configs, configs
    brokers = cluster.cli("configs", "--bootstrap-server", cluster.node_bootstrap(3),
                          "describe", "--broker", "3").stdout
    assert "replication.throttled.rate" not in brokers, brokers
    cluster.wait_for("identical copies", lambda: len({
        d for i, d in cluster.segment_digests(topic, 0).items() if i != 2}) == 1)


def test_describe_quorum(cluster):
    """Kafka's kafka-metadata-quorum tool describes ferrolog's controller quorum."""
    kafka_lib = os.path.join(ROOT, "target", "kafka-lib", "*")
    controller, _ = cluster.controller()
    node = [i for i in cluster.alive() if i != controller][0]
    out = subprocess.run(["java", "-cp", kafka_lib, "org.apache.kafka.tools.MetadataQuorumCommand",
                          "--bootstrap-server", cluster.node_bootstrap(node), "describe", "--status"],
                         capture_output=True, text=True, timeout=120)
    assert re.search(rf"LeaderId:\s+{controller}\b", out.stdout), out.stdout + out.stderr
    voters = re.search(r"CurrentVoters:\s+(.*)", out.stdout)
    assert voters and all(f'"id": {i}' in voters[1] or f'"id":{i}' in voters[1] for i in (1, 2, 3)), out.stdout
    hw = int(re.search(r"HighWatermark:\s+(\d+)", out.stdout)[1])
    assert hw > 0


def kafka_partition(key, partitions=50):
    """The partition of an internal topic coordinating `key`: Kafka's String.hashCode(),
    made non-negative, modulo the partition count."""
    h = 0
    for ch in key:
        h = (31 * h + ord(ch)) & 0xFFFFFFFF
    if h >= 1 << 31:
        h -= 1 << 32
    return (h & 0x7FFFFFFF if h != -(1 << 31) else 0) % partitions


def test_exactly_once_with_the_group_and_transaction_coordinators_apart(cluster):
    """Consume-transform-produce where the group's coordinator is not the transaction
    coordinator: TxnOffsetCommit goes to the group coordinator, which has no state for the
    transactional id (librdkafka 0103 and franz-go's transactional ETL test failed on it with
    INVALID_PRODUCER_ID_MAPPING)."""
    src, dst = "eos-apart-in", "eos-apart-out"
    cluster.create(src, partitions=2)
    cluster.create(dst, partitions=2)
    p = Producer({"bootstrap.servers": cluster.bootstrap, "acks": "all"})
    for i in range(60):
        p.produce(src, value=str(i).encode(), partition=i % 2)
    assert p.flush(30) == 0
    # both internal topics exist once a group and a transactional producer were used
    warm = Producer({"bootstrap.servers": cluster.bootstrap, "transactional.id": "eos-apart-warm"})
    warm.init_transactions(30)
    c = Consumer({"bootstrap.servers": cluster.bootstrap, "group.id": "eos-apart-warm"})
    c.list_topics(timeout=10)
    c.committed([TopicPartition(src, 0)], 30)
    c.close()
    def led(topic):
        """{partition: leader} once all 50 partitions have one, else None."""
        leaders = {p: v[0] for p, v in cluster.describe(topic).items()}
        return leaders if len(leaders) == 50 and min(leaders.values()) >= 0 else None

    # every partition of both has a leader (just after creation a partition can have none yet,
    # and then no group's coordinator would be "apart")
    cluster.wait_for("__transaction_state and __consumer_offsets with leaders",
                     lambda: led("__consumer_offsets") and led("__transaction_state"))
    offsets_leaders, txn_leaders = led("__consumer_offsets"), led("__transaction_state")
    txn_id = "eos-apart-tx"
    group = next(g for g in (f"eos-apart-group-{n}" for n in range(1000))
                 if offsets_leaders[kafka_partition(g)] != txn_leaders[kafka_partition(txn_id)])
    producer = Producer({"bootstrap.servers": cluster.bootstrap, "transactional.id": txn_id})
    producer.init_transactions(30)
    consumer = Consumer({"bootstrap.servers": cluster.bootstrap, "group.id": group,
                         "isolation.level": "read_committed", "auto.offset.reset": "earliest",
                         "enable.auto.commit": False})
    consumer.subscribe([src])
    moved = 0
    deadline = time.time() + 90
    while moved < 60 and time.time() < deadline:
        msgs = [m for m in consumer.consume(20, 1.0) if not m.error()]
        if not msgs:
            continue
        producer.begin_transaction()
        for m in msgs:
            producer.produce(dst, value=m.value(), partition=m.partition())
        producer.send_offsets_to_transaction(consumer.position(consumer.assignment()),
                                             consumer.consumer_group_metadata(), 30)
        producer.commit_transaction(30)
        moved += len(msgs)
    assert moved == 60
    committed = consumer.committed([TopicPartition(src, 0), TopicPartition(src, 1)], 30)
    assert sorted(tp.offset for tp in committed) == [30, 30], committed
    consumer.close()
    values, dups = consume_all(cluster.bootstrap, dst)
    assert values == {str(i) for i in range(60)} and dups == 0


def test_a_commit_whose_partition_leader_is_down_completes_when_it_returns(cluster):
    """EndTxn is answered once the outcome is durable; markers for a partition with no leader
    are retried by the coordinator until its leader returns (as in Kafka). Before, EndTxn
    failed with COORDINATOR_NOT_AVAILABLE until the commit timed out in the client."""
    topic = "tx-away"
    cluster.create(topic, partitions=1, rf=1, configs={"min.insync.replicas": "1"})
    away = cluster.describe(topic)[0][0]
    warm = Producer({"bootstrap.servers": cluster.bootstrap, "transactional.id": "tx-away-warm"})
    warm.init_transactions(30)
    cluster.wait_for("__transaction_state", lambda: len(cluster.describe("__transaction_state")) == 50)
    txn_leaders = {p: v[0] for p, v in cluster.describe("__transaction_state").items()}
    txn_id = next(t for t in (f"tx-away-{n}" for n in range(1000))
                  if txn_leaders[kafka_partition(t)] != away)
    producer = Producer({"bootstrap.servers": cluster.bootstrap, "transactional.id": txn_id})
    producer.init_transactions(30)
    producer.begin_transaction()
    producer.produce(topic, value=b"first", partition=0)
    assert producer.flush(30) == 0
    cluster.kill(away)
    txn_partition = kafka_partition(txn_id)
    cluster.wait_for("the dead broker out of the coordinator's ISR",
                     lambda: away not in cluster.describe("__transaction_state")[txn_partition][2])
    producer.commit_transaction(30)
    cluster.start(away)
    cluster.wait_ready()
    producer.begin_transaction()
    producer.produce(topic, value=b"second", partition=0)
    producer.commit_transaction(60)
    consumer = Consumer({"bootstrap.servers": cluster.bootstrap, "group.id": "tx-away-reader",
                         "isolation.level": "read_committed", "auto.offset.reset": "earliest"})
    consumer.assign([TopicPartition(topic, 0)])
    got = []
    deadline = time.time() + 60
    while len(got) < 2 and time.time() < deadline:
        m = consumer.poll(0.5)
        if m is not None and not m.error():
            got.append(m.value())
    consumer.close()
    assert got == [b"first", b"second"], got


def test_delete_records_only_on_the_leader(cluster):
    """DeleteRecords sent to a follower is NOT_LEADER_OR_FOLLOWER (it would make the follower's
    log diverge); on the leader it moves the log start of every replica. (kafka-python,
    addressed to one broker.)"""
    from kafka import KafkaAdminClient
    from kafka import TopicPartition as KTP
    topic = "dr-leader"
    cluster.create(topic, partitions=1)
    p = Producer({"bootstrap.servers": cluster.bootstrap, "acks": "all"})
    for i in range(10):
        p.produce(topic, value=str(i).encode())
    assert p.flush(30) == 0
    leader, replicas, _, _ = cluster.describe(topic)[0]
    follower = next(r for r in replicas if r != leader)
    admin = KafkaAdminClient(bootstrap_servers=cluster.bootstrap)
    try:
        with pytest.raises(Exception) as e:
            admin.delete_records({KTP(topic, 0): 5}, partition_leader_id=follower)
        assert "NotLeader" in type(e.value).__name__ + str(e.value), e.value
        result = admin.delete_records({KTP(topic, 0): 5}, partition_leader_id=leader)
        assert list(result.values())[0]["low_watermark"] == 5, result
    finally:
        admin.close()
    c = Consumer({"bootstrap.servers": cluster.bootstrap, "group.id": "dr-leader-check"})
    cluster.wait_for("the log start at 5 everywhere", lambda: c.get_watermark_offsets(
        TopicPartition(topic, 0), timeout=5) == (5, 10))
    c.close()


def test_min_insync_replicas_capped_and_configs_applied_on_every_node(cluster):
    """The cluster runs with min.insync.replicas=2: an RF=1 topic still takes acks=all (as in
    Kafka, the effective minimum is capped by the replication factor). A cleanup.policy made
    compact through one broker is in force at once on the leader, wherever it is."""
    topic = "rf1-acks-all"
    cluster.create(topic, partitions=3, rf=1)
    p = Producer({"bootstrap.servers": cluster.bootstrap, "acks": "all", "enable.idempotence": True})
    errors = []
    for i in range(30):
        p.produce(topic, value=b"v", partition=i % 3, on_delivery=lambda e, m: errors.append(e))
    p.flush(30)
    assert errors == [None] * 30
    from confluent_kafka.admin import AlterConfigOpType, ConfigEntry, ConfigResource
    leader = cluster.describe(topic)[0][0]
    other = next(n for n in cluster.alive() if n != leader)
    a = AdminClient({"bootstrap.servers": cluster.node_bootstrap(other)})
    resource = ConfigResource("topic", topic, incremental_configs=[
        ConfigEntry("cleanup.policy", "compact", incremental_operation=AlterConfigOpType.SET)])
    a.incremental_alter_configs([resource])[resource].result(30)
    keyless = Producer({"bootstrap.servers": cluster.bootstrap, "acks": "all", "retries": 0})
    outcome = []
    keyless.produce(topic, value=b"no-key", partition=0, on_delivery=lambda e, m: outcome.append(e))
    keyless.flush(30)
    assert len(outcome) == 1 and outcome[0] is not None and outcome[0].code() == KafkaError.INVALID_RECORD, \
        outcome


def test_create_partitions_with_a_manual_assignment(cluster):
    """CreatePartitions with replicas named per new partition places them there (it was refused
    for naming brokers other than one); an unknown broker or a wrong count is refused."""
    from confluent_kafka.admin import NewPartitions
    topic = "grow-manual"
    cluster.create(topic, partitions=1)
    admin = AdminClient({"bootstrap.servers": cluster.bootstrap})
    admin.create_partitions([NewPartitions(topic, 3, replica_assignment=[[2, 3, 1], [3, 1, 2]])])[topic].result(30)
    cluster.wait_for("the new partitions led where assigned", lambda: {
        p: v[1] for p, v in cluster.describe(topic).items() if p > 0} == {1: [2, 3, 1], 2: [3, 1, 2]})
    with pytest.raises(Exception) as e:
        admin.create_partitions([NewPartitions(topic, 4, replica_assignment=[[1, 2, 9]])])[topic].result(30)
    assert "INVALID_REPLICA_ASSIGNMENT" in str(e.value) or "nknown broker" in str(e.value), e.value
    with pytest.raises(Exception):
        admin.create_partitions([NewPartitions(topic, 4, replica_assignment=[[1, 2]])])[topic].result(30)
