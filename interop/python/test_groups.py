"""Consumer groups (classic protocol) and committed offsets with real clients."""

import os
import signal
import subprocess
import sys
import textwrap
import time

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from kafka import KafkaConsumer

GROUP_SETTINGS = ["group.initial.rebalance.delay.ms=0"]


def setup_topic(bootstrap, topic, partitions, records):
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(topic, partitions, 1)])[topic].result(10)
    p = Producer({"bootstrap.servers": bootstrap})
    for i in range(records):
        p.produce(topic, key=str(i), value=str(i))
    assert p.flush(10) == 0


def poll_all(consumers, want, seconds=30):
    """Polls until `want` distinct records arrived (a rebalance may deliver some twice: the
    consumers here commit only at the end, so a moved partition restarts at its last commit)."""
    got = [[] for _ in consumers]
    deadline = time.time() + seconds
    while len(set(sum(got, []))) < want and time.time() < deadline:
        for i, c in enumerate(consumers):
            m = c.poll(0.1)
            if m is not None and not m.error():
                got[i].append(int(m.value()))
    return got


def confluent(bootstrap, group, **extra):
    return Consumer({"bootstrap.servers": bootstrap, "group.id": group, "auto.offset.reset": "earliest",
                     "session.timeout.ms": 6000, "enable.auto.commit": False, **extra})


def test_confluent_group_splits_partitions_commits_and_survives_a_restart(fresh_broker):
    b = fresh_broker(GROUP_SETTINGS)
    setup_topic(b.bootstrap, "orders", 6, 300)
    consumers = [confluent(b.bootstrap, "g1") for _ in range(3)]
    for c in consumers:
        c.subscribe(["orders"])
    got = poll_all(consumers, 300)
    assert sorted(set(sum(got, []))) == list(range(300)), "every record consumed, none skipped"
    assignments = [sorted(tp.partition for tp in c.assignment()) for c in consumers]
    assert sorted(sum(assignments, [])) == list(range(6)) and all(len(a) == 2 for a in assignments), assignments
    for c in consumers:
        c.commit(asynchronous=False)
        c.close()
    b.stop()
    b.start()
    c = confluent(b.bootstrap, "g1")
    committed = c.committed([TopicPartition("orders", p) for p in range(6)], timeout=10)
    assert sum(tp.offset for tp in committed) == 300, committed
    # a new member of the group resumes after the committed offsets: nothing left to read
    c.subscribe(["orders"])
    assert poll_all([c], 1, seconds=5) == [[]]
    c.close()


def test_confluent_rebalance_when_a_member_joins_and_when_one_is_killed(fresh_broker):
    b = fresh_broker(GROUP_SETTINGS)
    setup_topic(b.bootstrap, "events", 4, 0)
    first = confluent(b.bootstrap, "g2")
    first.subscribe(["events"])
    deadline = time.time() + 20
    while len(first.assignment()) < 4 and time.time() < deadline:
        first.poll(0.2)
    assert len(first.assignment()) == 4
    # a second member in another process; the group rebalances to 2 + 2
    script = textwrap.dedent(f"""
        import time
        from confluent_kafka import Consumer
        c = Consumer({{"bootstrap.servers": "{b.bootstrap}", "group.id": "g2", "session.timeout.ms": 6000,
                      "auto.offset.reset": "earliest"}})
        c.subscribe(["events"])
        while True:
            c.poll(0.2)
            print(len(c.assignment()), flush=True)
    """)
    other = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 30
        while len(first.assignment()) != 2 and time.time() < deadline:
            first.poll(0.2)
        assert len(first.assignment()) == 2
        # kill -9 the other member: after its session times out, its partitions come back
        other.send_signal(signal.SIGKILL)
        other.wait()
        deadline = time.time() + 30
        while len(first.assignment()) != 4 and time.time() < deadline:
            first.poll(0.2)
        assert len(first.assignment()) == 4
    finally:
        if other.poll() is None:
            other.kill()
        first.close()


def test_kafka_python_group_consumer_commits(fresh_broker):
    b = fresh_broker(GROUP_SETTINGS)
    setup_topic(b.bootstrap, "kp", 2, 50)
    k = KafkaConsumer("kp", bootstrap_servers=b.bootstrap, group_id="kp-group", auto_offset_reset="earliest",
                      enable_auto_commit=False, consumer_timeout_ms=8000)
    values = sorted(int(m.value) for m in k)
    assert values == list(range(50))
    k.commit()
    k.close()
    again = KafkaConsumer("kp", bootstrap_servers=b.bootstrap, group_id="kp-group", auto_offset_reset="earliest",
                          consumer_timeout_ms=4000)
    assert list(again) == []
    again.close()


def test_groups_cli_describe_reset_delete(fresh_broker):
    b = fresh_broker(GROUP_SETTINGS)
    setup_topic(b.bootstrap, "cli", 2, 40)
    c = confluent(b.bootstrap, "cli-group", **{"client.id": "cli-client"})
    c.subscribe(["cli"])
    assert len(set(sum(poll_all([c], 40), []))) == 40
    c.commit(asynchronous=False)
    described = b.cli("groups", "--bootstrap-server", b.bootstrap, "describe", "--group", "cli-group")
    assert described.returncode == 0, described.stderr
    rows = [l.split() for l in described.stdout.splitlines() if l.startswith("cli-group")]
    assert len(rows) == 2 and all(r[2] in ("0", "1") and r[5] == "0" and r[8] == "cli-client" for r in rows), described.stdout
    assert "is Stable with 1 member(s)" in described.stdout
    listed = b.cli("groups", "--bootstrap-server", b.bootstrap, "list")
    assert "cli-group" in listed.stdout.split()
    # resetting needs an empty group
    busy = b.cli("groups", "--bootstrap-server", b.bootstrap, "reset-offsets", "--group", "cli-group", "--topic", "cli",
                 "--to-earliest", "--execute")
    assert busy.returncode != 0 and "UnknownMemberId" in busy.stderr, busy.stderr
    c.close()
    dry = b.cli("groups", "--bootstrap-server", b.bootstrap, "reset-offsets", "--group", "cli-group", "--topic", "cli",
                "--shift-by", "-5")
    assert dry.returncode == 0 and "dry run" in dry.stdout
    done = b.cli("groups", "--bootstrap-server", b.bootstrap, "reset-offsets", "--group", "cli-group", "--topic", "cli",
                 "--to-earliest", "--execute")
    assert done.returncode == 0, done.stderr
    again = confluent(b.bootstrap, "cli-group")
    again.subscribe(["cli"])
    assert len(set(sum(poll_all([again], 40), []))) == 40, "re-read after the reset"
    again.close()
    deleted = b.cli("groups", "--bootstrap-server", b.bootstrap, "delete-offsets", "--group", "cli-group", "--topic", "cli")
    assert deleted.returncode == 0 and "Successful" in deleted.stdout, deleted.stdout + deleted.stderr
    gone = b.cli("groups", "--bootstrap-server", b.bootstrap, "delete", "--group", "cli-group")
    assert gone.returncode == 0, gone.stderr
    assert "cli-group" not in b.cli("groups", "--bootstrap-server", b.bootstrap, "list").stdout.split()


def test_confluent_cooperative_sticky_rebalances_incrementally(fresh_broker):
    b = fresh_broker(GROUP_SETTINGS)
    setup_topic(b.bootstrap, "coop", 4, 0)
    coop = {"partition.assignment.strategy": "cooperative-sticky"}
    first = confluent(b.bootstrap, "coop-group", **coop)
    first.subscribe(["coop"])
    deadline = time.time() + 20
    while len(first.assignment()) < 4 and time.time() < deadline:
        first.poll(0.2)
    before = {tp.partition for tp in first.assignment()}
    assert before == {0, 1, 2, 3}
    second = confluent(b.bootstrap, "coop-group", **coop)
    second.subscribe(["coop"])
    deadline = time.time() + 30
    while time.time() < deadline and not (len(first.assignment()) == 2 and len(second.assignment()) == 2):
        first.poll(0.1)
        second.poll(0.1)
    kept = {tp.partition for tp in first.assignment()}
    moved = {tp.partition for tp in second.assignment()}
    assert len(kept) == 2 and len(moved) == 2 and kept | moved == before and kept <= before
    first.close()
    second.close()


# KIP-848: the consumer protocol. A short heartbeat interval makes reconciliation quick.
CONSUMER_PROTOCOL_SETTINGS = ["group.consumer.heartbeat.interval.ms=500", "group.consumer.session.timeout.ms=6000"]


def new_protocol(bootstrap, group, **extra):
    return Consumer({"bootstrap.servers": bootstrap, "group.id": group, "group.protocol": "consumer",
                     "auto.offset.reset": "earliest", "enable.auto.commit": False, **extra})


def poll_until(consumers, done, seconds=30, seen=None):
    deadline = time.time() + seconds
    while not done() and time.time() < deadline:
        for c in consumers:
            m = c.poll(0.05)
            if m is not None and not m.error() and seen is not None:
                seen.add(int(m.value()))


def sizes(consumers):
    return sorted(len(c.assignment()) for c in consumers)


def test_librdkafka_consumer_protocol_join_crash_and_commit(fresh_broker):
    b = fresh_broker(CONSUMER_PROTOCOL_SETTINGS)
    setup_topic(b.bootstrap, "kip848", 6, 300)
    consumers = [new_protocol(b.bootstrap, "g848") for _ in range(3)]
    for c in consumers:
        c.subscribe(["kip848"])
    seen = set()
    poll_until(consumers, lambda: len(seen) == 300 and sizes(consumers) == [2, 2, 2], seen=seen)
    assert sorted(seen) == list(range(300)), "every record consumed, none skipped"
    assert sizes(consumers) == [2, 2, 2]
    for c in consumers:
        c.commit(asynchronous=False)
    admin = AdminClient({"bootstrap.servers": b.bootstrap})
    listed = admin.list_consumer_groups().result(10)
    assert [str(g.type) for g in listed.valid if g.group_id == "g848"] == ["ConsumerGroupType.CONSUMER"], (listed.valid, listed.errors)
    # a fourth member in another process: the coordinator moves one partition to it from two members
    script = textwrap.dedent(f"""
        from confluent_kafka import Consumer
        c = Consumer({{"bootstrap.servers": "{b.bootstrap}", "group.id": "g848", "group.protocol": "consumer"}})
        c.subscribe(["kip848"])
        while True:
            c.poll(0.1)
            print(len(c.assignment()), flush=True)
    """)
    other = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.DEVNULL)
    try:
        # (the newcomer gets one or two of the six partitions: 1+1+2+2 either way)
        poll_until(consumers, lambda: sizes(consumers) in ([1, 1, 2], [1, 2, 2]))
        assert sizes(consumers) in ([1, 1, 2], [1, 2, 2])
        # kill -9 it: after group.consumer.session.timeout.ms its partitions come back
        other.send_signal(signal.SIGKILL)
        other.wait()
        poll_until(consumers, lambda: sizes(consumers) == [2, 2, 2])
        assert sizes(consumers) == [2, 2, 2]
    finally:
        if other.poll() is None:
            other.kill()
    for c in consumers:
        c.close()
    fresh = new_protocol(b.bootstrap, "g848")
    committed = fresh.committed([TopicPartition("kip848", p) for p in range(6)], timeout=10)
    assert sum(tp.offset for tp in committed) == 300, committed
    fresh.close()


def test_librdkafka_consumer_protocol_static_member_restart_keeps_partitions(fresh_broker):
    b = fresh_broker(CONSUMER_PROTOCOL_SETTINGS)
    setup_topic(b.bootstrap, "static848", 6, 0)
    stay = new_protocol(b.bootstrap, "s848", **{"group.instance.id": "stay"})
    mover = new_protocol(b.bootstrap, "s848", **{"group.instance.id": "mover"})
    for c in (stay, mover):
        c.subscribe(["static848"])
    poll_until([stay, mover], lambda: sizes([stay, mover]) == [3, 3])
    assert sizes([stay, mover]) == [3, 3]
    before = {tp.partition for tp in mover.assignment()}
    mover.close()  # a static member leaves with epoch -2: its partitions wait for it
    again = new_protocol(b.bootstrap, "s848", **{"group.instance.id": "mover"})
    again.subscribe(["static848"])
    most = 0
    deadline = time.time() + 20
    while len(again.assignment()) < 3 and time.time() < deadline:
        again.poll(0.05)
        stay.poll(0.05)
        most = max(most, len(stay.assignment()))
    assert {tp.partition for tp in again.assignment()} == before, "the restarted instance gets its partitions back"
    assert most == 3, "the other member never took them over"
    # a second live member with the same instance id is refused
    clash = new_protocol(b.bootstrap, "s848", **{"group.instance.id": "mover"})
    clash.subscribe(["static848"])
    deadline = time.time() + 10
    error = None
    while error is None and time.time() < deadline:
        m = clash.poll(0.2)
        if m is not None and m.error():
            error = m.error()
    # librdkafka reports UNRELEASED_INSTANCE_ID as a fatal error of the second consumer
    assert error is not None and "instance ID is still used" in error.str(), error
    for c in (clash, again, stay):
        c.close()


def group_type(bootstrap, group):
    admin = AdminClient({"bootstrap.servers": bootstrap})  # alive until the result arrives
    listed = admin.list_consumer_groups().result(10)
    return [str(g.type).split(".")[-1] for g in listed.valid if g.group_id == group]


def test_a_live_group_migrates_from_classic_to_consumer_protocol_and_back(fresh_broker):
    """KIP-848 online migration (group.consumer.migration.policy=bidirectional, Kafka's default):
    a consumer-protocol member joins a live classic group (a cooperative-sticky librdkafka
    consumer): the group upgrades, the classic member gives up half its partitions by
    rejoining, and nothing is skipped; a new classic member can join the upgraded group.
    When the consumer-protocol member leaves, the group is classic again and the classic members
    share the partitions."""
    b = fresh_broker(CONSUMER_PROTOCOL_SETTINGS)
    setup_topic(b.bootstrap, "migrate", 4, 200)
    classic = confluent(b.bootstrap, "gm", **{"partition.assignment.strategy": "cooperative-sticky"})
    classic.subscribe(["migrate"])
    seen = set()
    poll_until([classic], lambda: len(seen) == 200, seen=seen)
    assert len(seen) == 200 and sizes([classic]) == [4]
    classic.commit(asynchronous=False)
    assert group_type(b.bootstrap, "gm") == ["CLASSIC"]

    modern = new_protocol(b.bootstrap, "gm")
    modern.subscribe(["migrate"])
    poll_until([classic, modern], lambda: sizes([classic, modern]) == [2, 2], seen=seen)
    assert sizes([classic, modern]) == [2, 2]
    assert group_type(b.bootstrap, "gm") == ["CONSUMER"]
    p = Producer({"bootstrap.servers": b.bootstrap})
    for i in range(200, 400):
        p.produce("migrate", key=str(i), value=str(i))
    assert p.flush(10) == 0
    poll_until([classic, modern], lambda: len(seen) == 400, seen=seen)
    assert sorted(seen) == list(range(400)), "every record consumed while the group migrated"
    # commits from both kinds of member are accepted
    classic.commit(asynchronous=False)
    modern.commit(asynchronous=False)

    # a new classic member joins the consumer-protocol group (with an assignor the classic
    # members share, as Kafka requires)
    eager = confluent(b.bootstrap, "gm", **{"partition.assignment.strategy": "cooperative-sticky"})
    eager.subscribe(["migrate"])
    members = [classic, modern, eager]
    poll_until(members, lambda: sorted(sizes(members)) == [1, 1, 2], seconds=40, seen=seen)
    assert sorted(sizes(members)) == [1, 1, 2]
    assert group_type(b.bootstrap, "gm") == ["CONSUMER"]

    # the consumer-protocol member leaves: only classic members are left, the group is classic
    modern.close()
    poll_until([classic, eager], lambda: sizes([classic, eager]) == [2, 2], seconds=40, seen=seen)
    assert sizes([classic, eager]) == [2, 2]
    assert group_type(b.bootstrap, "gm") == ["CLASSIC"]
    for i in range(400, 500):
        p.produce("migrate", key=str(i), value=str(i))
    assert p.flush(10) == 0
    poll_until([classic, eager], lambda: len(seen) == 500, seen=seen)
    assert sorted(seen) == list(range(500))
    classic.close()
    eager.close()
