"""Request memory under partial huge frames, against a running broker: 20 connections each
announce a 100 MiB request and send 60 MiB of it, then hold; reports the broker's RSS growth and
whether a producer and a consumer (librdkafka) are still served meanwhile.
Usage: python3 bench/frames.py BOOTSTRAP PID  (bench/frames.sh runs ferrolog and Kafka)."""

import socket
import struct
import sys
import threading
import time

from confluent_kafka import Consumer, Producer


def rss_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) / 1024 for line in f if line.startswith("VmRSS"))


def served(bootstrap, topic):
    started = time.time()
    p = Producer({"bootstrap.servers": bootstrap, "message.timeout.ms": 20_000})
    p.produce(topic, b"still served")
    if p.flush(25) != 0:
        return None
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"g-{topic}", "auto.offset.reset": "earliest",
                  "session.timeout.ms": 10_000})
    c.subscribe([topic])
    try:
        deadline = time.time() + 25
        while time.time() < deadline:
            m = c.poll(1)
            if m is not None and not m.error():
                return time.time() - started
        return None
    finally:
        c.close()


def main():
    bootstrap, pid = sys.argv[1], int(sys.argv[2])
    host, port = bootstrap.split(":")
    assert served(bootstrap, "frames-before") is not None
    before = rss_mib(pid)
    chunk = b"\0" * (1 << 20)
    sockets = []

    def trickle(i):
        s = socket.create_connection((host, int(port)), timeout=60, source_address=(f"127.0.2.{i}", 0))
        sockets.append(s)
        try:
            s.sendall(struct.pack(">i", 100 << 20))
            for _ in range(60):
                s.sendall(chunk)
        except OSError:
            pass

    for i in range(1, 21):
        threading.Thread(target=trickle, args=(i,), daemon=True).start()
    time.sleep(10)
    peak = rss_mib(pid) - before
    took = served(bootstrap, "frames-during")
    peak = max(peak, rss_mib(pid) - before)
    print(f"rss_before_mib {before:.0f} rss_growth_mib {peak:.0f} "
          f"producer_and_consumer_served {'%.1f s' % took if took is not None else 'NO'}")
    for s in sockets:
        s.close()


if __name__ == "__main__":
    main()
