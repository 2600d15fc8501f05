"""Producer throughput by delivery guarantee, with confluent-kafka (librdkafka):
plain (acks=all), idempotent (enable.idempotence) and transactional (100 records per
transaction, each committed). Prints "mode records_per_second".
Usage: python3 bench/transactions.py BOOTSTRAP plain|idempotent|transactional"""

import sys
import time
import uuid

from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic

VALUE = b"x" * 100


def transactional(producer, topic, transactions=1000, per=100):
    """Runs `transactions` committed transactions of `per` records; returns records/s."""
    start = time.time()
    for _ in range(transactions):
        producer.begin_transaction()
        for _ in range(per):
            producer.produce(topic, value=VALUE)
        producer.commit_transaction(30)
    return transactions * per / (time.time() - start)


def main():
    bootstrap, mode = sys.argv[1], sys.argv[2]
    topic = f"bench-{mode}-{uuid.uuid4().hex[:6]}"
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(topic, 3, 1)])[topic].result(30)
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
        print(f"{mode} {transactional(p, topic):.0f}")
        return
    records = 300_000
    start = time.time()
    for i in range(records):
        while True:
            try:
                p.produce(topic, value=VALUE)
                break
            except BufferError:
                p.poll(0.001)
        if i % 1000 == 0:
            p.poll(0)
    assert p.flush(60) == 0
    print(f"{mode} {records / (time.time() - start):.0f}")


if __name__ == "__main__":
    main()
