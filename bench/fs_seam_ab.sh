#!/usr/bin/env bash
# A/B: produce and consume throughput of two ferrolog binaries, /tmp/ferrolog-before and
# /tmp/ferrolog-after (e.g. release builds before and after a storage change), alternating,
# three rounds; results in /tmp/fsab.out.
out=/tmp/fsab.out; : > $out
for round in 1 2 3; do
  for which in before after; do
    bin=/tmp/ferrolog-$which
    dir=$(mktemp -d)
    $bin server --data-dir $dir --override listeners=PLAINTEXT://127.0.0.1:19092,CONTROLLER://127.0.0.1:0 --override num.partitions=4 > $dir.log 2>&1 &
    pid=$!
    for _ in $(seq 1 100); do (exec 3<>/dev/tcp/127.0.0.1/19092) 2>/dev/null && break; sleep 0.2; done
    p=$($bin perf produce --bootstrap-server 127.0.0.1:19092 --topic ab --num-records 1000000 --record-size 512 --acks 1 2>&1 | tail -1)
    c=$($bin perf consume --bootstrap-server 127.0.0.1:19092 --topic ab 2>&1 | tail -1)
    echo "$round $which produce: $p" >> $out
    echo "$round $which consume: $c" >> $out
    kill -9 $pid; wait $pid 2>/dev/null; rm -rf $dir $dir.log
  done
done
echo done >> $out
