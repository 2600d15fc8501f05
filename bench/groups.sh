#!/usr/bin/env bash
# Side-by-side rebalance benchmark (issue 4): an 11th consumer joins a 10-member group (classic and
# KIP-848 consumer protocol) on
# a 22-partition topic while records flow; the time until every member consumes again, for
# ferrolog and Apache Kafka 4.1.1 in one run (3 runs each, default group settings).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
work=$(mktemp -d /tmp/ferrolog-bench.XXXXXX)
out="$root/bench/results-latest.txt"
say() { echo "$*" | tee -a "$out"; }
source "$root/bench/lib.sh"

median() { printf '%s\n' "$@" | sort -n | sed -n 2p; }
say ""
say "rebalance: 11th member joins a 10-member group, $(date -u +%Y-%m-%dT%H:%MZ)"
declare -A fl ka
start_ferrolog
for protocol in classic consumer; do
  fl[$protocol]=$(for _ in 1 2 3; do python3 bench/groups.py "127.0.0.1:$fl_port" $protocol; done | tr '\n' ' ')
done
stop_broker "$fl_pid"
start_kafka
for protocol in classic consumer; do
  ka[$protocol]=$(for _ in 1 2 3; do python3 bench/groups.py "127.0.0.1:$kafka_port" $protocol; done | tr '\n' ' ')
done
for protocol in classic consumer; do
  f=$(median ${fl[$protocol]}); k=$(median ${ka[$protocol]})
  say "$protocol protocol: ferrolog seconds ${fl[$protocol]}| kafka seconds ${ka[$protocol]}| median $f vs $k, ratio $(echo "scale=2; $f / $k" | bc -l)"
done
