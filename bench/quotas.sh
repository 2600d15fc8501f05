#!/usr/bin/env bash
# Client quota accuracy, ferrolog and Apache Kafka in one run: a producer held to 1 MiB/s and a
# consumer held to 2 MiB/s by client-id quotas (Kafka's kafka-configs), achieved / configured
# over 30 s after a 15 s warm-up (bench/quotas.py). Target: within ±10% on both.
#
#   bash bench/quotas.sh [seconds]
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
seconds=${1:-30}
work=$(mktemp -d /tmp/ferrolog-bench-quotas.XXXXXX)
say() { echo "$*"; }
source "$root/bench/lib.sh"

echo "client quota accuracy, ${seconds} s after a 15 s warm-up $(date -u +%Y-%m-%dT%H:%MZ)" | tee -a bench/results-latest.txt
start_ferrolog
python3 bench/quotas.py "127.0.0.1:$fl_port" "$seconds" | sed 's/^/ferrolog /' | tee -a bench/results-latest.txt
stop_broker "$fl_pid"
start_kafka
python3 bench/quotas.py "127.0.0.1:$kafka_port" "$seconds" | sed 's/^/kafka /' | tee -a bench/results-latest.txt
stop_broker "$kafka_pid"
