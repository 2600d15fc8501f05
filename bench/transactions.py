"""Producer throughput by delivery guarantee, with confluent-kafka (librdkafka):
plain (acks=all), idempotent (enable.idempotence) and transactional (100 records per
transaction, each committed). Prints "mode records_per_second".
Usage: python3 bench/transactions.py BOOTSTRAP plain|idempotent|transactional"""

import sys
import time
import uuid

from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

bootstrap, mode = sys.argv[1], sys.argv[2]
topic = f"bench-{mode}-{uuid.uuid4().hex[:6]}"
admin = AdminClient({"bootstrap.servers": bootstrap})
admin.create_topics([NewTopic(topic, 3, 1)])[topic].result(30)
value = b"x" * 100
settings = {"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 5}
if mode == "plain":
    settings["enable.idempotence"] = False
elif mode == "idempotent":
    settings["enable.idempotence"] = True
else:
    settings["transactional.id"] = f"bench-{uuid.uuid4().hex[:6]}"
p = Producer(settings)
if mode == "transactional":
    p.init_transactions(30)
    transactions, per = 1000, 100
    start = time.time()
    for _ in range(transactions):
        p.begin_transaction()
        for i in range(per):
            p.produce(topic, value=value)
        p.commit_transaction(30)
    records = transactions * per
else:
    records = 300_000
    start = time.time()
    for i in range(records):
        while True:
            try:
                p.produce(topic, value=value)
                break
            except BufferError:
                p.poll(0.001)
        if i % 1000 == 0:
            p.poll(0)
    assert p.flush(60) == 0
elapsed = time.time() - start
print(f"{mode} {records / elapsed:.0f}")
