#!/usr/bin/env bash
# Side-by-side producer benchmark for issue 5: plain vs idempotent vs transactional (100 records
# per transaction) throughput with confluent-kafka, ferrolog and Apache Kafka 4.1.1 in one run,
# 3 runs of each mode per broker; medians and ratios go to bench/results-latest.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
work=$(mktemp -d /tmp/ferrolog-bench.XXXXXX)
out="$root/bench/results-latest.txt"
say() { echo "$*" | tee -a "$out"; }
source "$root/bench/lib.sh"
median() { printf '%s\n' "$@" | sort -n | sed -n 2p; }
modes="plain idempotent transactional"
declare -A fl ka

say ""
say "producer guarantees (records/s, 100-byte values, acks=all, 3 partitions), $(date -u +%Y-%m-%dT%H:%MZ)"
start_ferrolog
for mode in $modes; do
  fl[$mode]=$(for _ in 1 2 3; do python3 bench/transactions.py "127.0.0.1:$fl_port" $mode | awk '{print $2}'; done | tr '\n' ' ')
done
stop_broker "$fl_pid"
start_kafka
for mode in $modes; do
  ka[$mode]=$(for _ in 1 2 3; do python3 bench/transactions.py "127.0.0.1:$kafka_port" $mode | awk '{print $2}'; done | tr '\n' ' ')
done
for mode in $modes; do
  f=$(median ${fl[$mode]}); k=$(median ${ka[$mode]})
  say "$mode: ferrolog ${fl[$mode]}| kafka ${ka[$mode]}| median $f vs $k, ratio $(echo "scale=2; $f / $k" | bc -l)"
done
