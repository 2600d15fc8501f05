#!/usr/bin/env bash
# Side-by-side benchmark: the same loads against ferrolog and Apache Kafka (single KRaft node,
# default settings) on this machine, in one run. Prints figures and ratios; writes
# bench/results-latest.txt. A benchmark, not a test: it asserts nothing.
#
#   bash bench/run.sh [records]        (default 500000 records of 1 KiB)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
records=${1:-500000}
work=$(mktemp -d /tmp/ferrolog-bench.XXXXXX)
out="$root/bench/results-latest.txt"
: > "$out"
say() { echo "$*" | tee -a "$out"; }

source "$root/bench/lib.sh"

produce() { # bootstrap topic -> prints records/sec
  java -cp "$cp" org.apache.kafka.tools.ProducerPerformance --topic "$2" --num-records "$records" --record-size 1024 \
    --throughput -1 --producer-props bootstrap.servers="$1" acks=1 linger.ms=5 batch.size=65536 2>/dev/null | tail -1
}

consume_s() { # bootstrap topic -> seconds to read everything with kcat (librdkafka)
  local start end
  start=$(date +%s.%N)
  kcat -b "$1" -C -t "$2" -o beginning -e -q -f '%o\n' > "$work/consumed.txt"
  end=$(date +%s.%N)
  [ "$(wc -l < "$work/consumed.txt")" -eq "$records" ] || { echo "consumed $(wc -l < "$work/consumed.txt") of $records"; exit 1; }
  echo "$end - $start" | bc -l
}

idle_rss() { # bootstrap pid -> MiB with 1000 partitions, idle
  create_topic "$1" idle1000 1000
  sleep 10
  rss_mib "$2"
}

run_one() { # name bootstrap pid
  local name=$1 bs=$2 pid=$3
  create_topic "$bs" perf 4
  local cpu0; cpu0=$(cpu_s "$pid")
  local p; p=$(produce "$bs" perf)
  local cpu1; cpu1=$(cpu_s "$pid")
  local c; c=$(consume_s "$bs" perf)
  local cpu2; cpu2=$(cpu_s "$pid")
  local rss; rss=$(idle_rss "$bs" "$pid")
  eval "${name}_produce_rps=$(echo "$p" | sed -E 's/.* ([0-9.]+) records\/sec.*/\1/')"
  eval "${name}_produce_p99=$(echo "$p" | sed -E 's/.* ([0-9.]+) ms 99th.*/\1/')"
  eval "${name}_consume_s=$c"
  eval "${name}_produce_cpu=$(echo "$cpu1 - $cpu0" | bc -l)"
  eval "${name}_consume_cpu=$(echo "$cpu2 - $cpu1" | bc -l)"
  eval "${name}_rss=$rss"
  say "$name produce: $p"
  say "$name consume: $records records in ${c}s; broker CPU produce $(echo "$cpu1 - $cpu0" | bc -l)s, consume $(echo "$cpu2 - $cpu1" | bc -l)s; idle RSS with 1000 partitions ${rss} MiB"
}

say "ferrolog vs Apache Kafka 4.1.1, $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, $records records of 1 KiB"
say "producer: Kafka's ProducerPerformance (acks=1 linger.ms=5 batch.size=65536); consumer: kcat (librdkafka) from the beginning"
start_ferrolog
run_one ferrolog "127.0.0.1:$fl_port" "$fl_pid"
stop_broker "$fl_pid"
start_kafka
run_one kafka "127.0.0.1:$kafka_port" "$kafka_pid"
say ""
say "ratios (ferrolog / Kafka; > 1 means ferrolog is better for throughput, < 1 better for the rest):"
say "  produce throughput      $(echo "scale=2; $ferrolog_produce_rps / $kafka_produce_rps" | bc -l)"
say "  produce p99 latency     $(echo "scale=2; $ferrolog_produce_p99 / $kafka_produce_p99" | bc -l)"
say "  consume throughput      $(echo "scale=2; $kafka_consume_s / $ferrolog_consume_s" | bc -l)"
say "  broker CPU, produce     $(echo "scale=2; $ferrolog_produce_cpu / $kafka_produce_cpu" | bc -l)"
say "  broker CPU, consume     $(echo "scale=2; $ferrolog_consume_cpu / $kafka_consume_cpu" | bc -l)"
say "  idle RSS, 1000 parts    $(echo "scale=2; $ferrolog_rss / $kafka_rss" | bc -l)"
