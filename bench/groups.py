"""Rebalance benchmark: time from an 11th consumer joining a 10-member group until every member
consumes again. Prints seconds. Usage: python3 bench/groups.py BOOTSTRAP [classic|consumer]
(the group protocol: classic with the client's eager range assignor, or KIP-848 where the broker
assigns and its group.consumer.heartbeat.interval.ms paces the members)."""

import sys
import threading
import time
import uuid

from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, NewTopic

bootstrap = sys.argv[1]
protocol = sys.argv[2] if len(sys.argv) > 2 else "classic"
settings = {"session.timeout.ms": 10000, "heartbeat.interval.ms": 1000} if protocol == "classic" else {}
topic = f"rebalance-{uuid.uuid4().hex[:6]}"
group = topic + "-group"
admin = AdminClient({"bootstrap.servers": bootstrap})
admin.create_topics([NewTopic(topic, 22, 1)])[topic].result(30)
stop = threading.Event()


def produce():
    p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    i = 0
    while not stop.is_set():
        for _ in range(200):
            p.produce(topic, key=str(i), value=b"x" * 100)
            i += 1
        p.poll(0)
        time.sleep(0.01)
    p.flush(10)


class Member(threading.Thread):
    def __init__(self):
        super().__init__(daemon=True)
        self.last = 0.0
        self.assigned = 0
        self.consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "group.protocol": protocol,
                                  "auto.offset.reset": "latest", **settings})

    def run(self):
        self.consumer.subscribe([topic])
        while not stop.is_set():
            m = self.consumer.poll(0.05)
            self.assigned = len(self.consumer.assignment())
            if m is not None and not m.error():
                self.last = time.time()
        self.consumer.close()


threading.Thread(target=produce, daemon=True).start()
members = [Member() for _ in range(10)]
for m in members:
    m.start()
deadline = time.time() + 120
while time.time() < deadline and not all(m.assigned > 0 and m.last > 0 for m in members):
    time.sleep(0.05)
assert all(m.assigned > 0 for m in members), "the 10 members never settled"
time.sleep(2)
start = time.time()
newcomer = Member()
newcomer.start()
members.append(newcomer)
while time.time() < deadline and not all(m.assigned > 0 and m.last > start + 0.001 for m in members):
    time.sleep(0.01)
elapsed = time.time() - start
stop.set()
print(f"{elapsed:.2f}")
