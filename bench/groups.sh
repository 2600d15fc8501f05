#!/usr/bin/env bash
# Side-by-side rebalance benchmark (issue 4): an 11th consumer joins a 10-member classic group on
# a 22-partition topic while records flow; the time until every member consumes again, for
# ferrolog and Apache Kafka 4.1.1 in one run (3 runs each, default group settings).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
work=$(mktemp -d /tmp/ferrolog-bench.XXXXXX)
out="$root/bench/results-latest.txt"
say() { echo "$*" | tee -a "$out"; }
source "$root/bench/lib.sh"

say ""
say "rebalance: 11th member joins a 10-member group, $(date -u +%Y-%m-%dT%H:%MZ)"
start_ferrolog
fl=(); for _ in 1 2 3; do fl+=("$(python3 bench/groups.py "127.0.0.1:$fl_port")"); done
stop_broker "$fl_pid"
start_kafka
ka=(); for _ in 1 2 3; do ka+=("$(python3 bench/groups.py "127.0.0.1:$kafka_port")"); done
say "ferrolog seconds: ${fl[*]}"
say "kafka seconds:    ${ka[*]}"
median() { printf '%s\n' "$@" | sort -n | sed -n 2p; }
say "median ferrolog $(median "${fl[@]}") s, Kafka $(median "${ka[@]}") s, ratio $(echo "scale=2; $(median "${fl[@]}") / $(median "${ka[@]}")" | bc -l)"
