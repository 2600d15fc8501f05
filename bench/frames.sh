#!/usr/bin/env bash
# Partial huge frames, ferrolog and Apache Kafka in one run: 20 connections each announce a
# 100 MiB request and send 60 MiB of it (bench/frames.py); reports RSS growth and whether a
# producer and a consumer are still served. Target for ferrolog: growth under 400 MiB.
#
#   bash bench/frames.sh
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
work=$(mktemp -d /tmp/ferrolog-bench-frames.XXXXXX)
say() { echo "$*"; }
source "$root/bench/lib.sh"

echo "partial huge frames: 20 x 60 MiB of 100 MiB $(date -u +%Y-%m-%dT%H:%MZ)" | tee -a bench/results-latest.txt
start_ferrolog
python3 bench/frames.py "127.0.0.1:$fl_port" "$fl_pid" | sed 's/^/ferrolog /' | tee -a bench/results-latest.txt
stop_broker "$fl_pid"
start_kafka
python3 bench/frames.py "127.0.0.1:$kafka_port" "$kafka_pid" | sed 's/^/kafka /' | tee -a bench/results-latest.txt
stop_broker "$kafka_pid"
