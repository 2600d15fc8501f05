#!/usr/bin/env bash
# Side-by-side benchmark of the log lifecycle against Apache Kafka in one run:
#  - cleaner throughput: a compacted topic of N 1 KiB records over 1,000 keys is written, then
#    the time until the cleaner has shrunk it below 30% gives MB/s (same cleaner settings on both:
#    log.cleaner.backoff.ms=1000, the other cleaner settings at their defaults);
#  - retention overhead: produce throughput into a topic whose retention.bytes keeps deleting
#    segments (log.retention.check.interval.ms=1000), relative to the same load without retention.
# Prints figures and ratios, appends them to bench/results-latest.txt. Asserts nothing.
#
#   bash bench/lifecycle.sh [records]      (default 200000)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
records=${1:-200000}
work=$(mktemp -d /tmp/ferrolog-bench.XXXXXX)
out="$root/bench/results-latest.txt"
say() { echo "$*" | tee -a "$out"; }
source "$root/bench/lib.sh"

dir_bytes() { du -sb "$1" 2>/dev/null | cut -f1; }

clean_mb_s() { # name bootstrap data-dir -> prints MB/s, sets <name>_compacted_bytes
  local name=$1 bs=$2 data=$3
  # written as a delete-policy topic, then switched to compact: the clock starts at the switch
  create_topic "$bs" compacted 1 --config segment.bytes=10485760
  python3 - "$records" <<'PY' | kcat -b "$bs" -P -t compacted -K : -z none
import sys, random
n = int(sys.argv[1]); rnd = random.Random(7); out = sys.stdout
for i in range(n):
    out.write(f"key{i % 1000}:{i}-" + "".join(rnd.choice("abcdefghij") for _ in range(16)) * 63 + "\n")
PY
  local dir; dir=$(ls -d "$data"/compacted-0)
  local before; before=$(dir_bytes "$dir")
  local start; start=$(date +%s.%N)
  "$ferrolog" configs --bootstrap-server "$bs" alter --topic compacted --add-config cleanup.policy=compact >/dev/null
  local now=$start
  while [ "$(dir_bytes "$dir")" -gt $((before * 3 / 10)) ]; do
    sleep 0.2
    now=$(date +%s.%N)
    if [ "$(echo "$now - $start > 300" | bc)" = 1 ]; then echo "0"; return; fi
  done
  echo "scale=1; $before / 1048576 / ($now - $start)" | bc -l
}

produce_rps() { # bootstrap topic
  java -cp "$cp" org.apache.kafka.tools.ProducerPerformance --topic "$2" --num-records "$records" --record-size 1024 \
    --throughput -1 --producer-props bootstrap.servers="$1" acks=1 linger.ms=5 batch.size=65536 2>/dev/null \
    | tail -1 | sed -E 's/.* ([0-9.]+) records\/sec.*/\1/'
}

run_one() { # name bootstrap data-dir
  local name=$1 bs=$2 data=$3
  local mbs; mbs=$(clean_mb_s "$name" "$bs" "$data")
  create_topic "$bs" plain 1 --config segment.bytes=10485760
  create_topic "$bs" retained 1 --config segment.bytes=10485760 --config retention.bytes=52428800
  local plain; plain=$(produce_rps "$bs" plain)
  local retained; retained=$(produce_rps "$bs" retained)
  eval "${name}_clean=$mbs ${name}_plain=$plain ${name}_retained=$retained"
  say "$name: cleaner ${mbs} MB/s; produce ${plain} records/s without retention, ${retained} records/s with retention.bytes deleting segments ($(dir_bytes "$data/retained-0") bytes left)"
}

export EXTRA_PROPS="log.cleaner.backoff.ms=1000
log.retention.check.interval.ms=1000
log.segment.delete.delay.ms=1000"
say ""
say "log lifecycle: ferrolog vs Apache Kafka 4.1.1, $(date -u +%Y-%m-%dT%H:%MZ), $records records of 1 KiB"
start_ferrolog
run_one ferrolog "127.0.0.1:$fl_port" "$work/ferrolog"
stop_broker "$fl_pid"
start_kafka
run_one kafka "127.0.0.1:$kafka_port" "$work/kafka/data"
say "ratios (ferrolog / Kafka):"
say "  cleaner throughput          $(echo "scale=2; $ferrolog_clean / $kafka_clean" | bc -l)"
say "  produce with retention      $(echo "scale=2; $ferrolog_retained / $kafka_retained" | bc -l)"
say "  retention overhead ferrolog $(echo "scale=3; 1 - $ferrolog_retained / $ferrolog_plain" | bc -l), Kafka $(echo "scale=3; 1 - $kafka_retained / $kafka_plain" | bc -l) (fraction of throughput lost)"
