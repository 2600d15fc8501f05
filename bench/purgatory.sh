#!/usr/bin/env bash
# Delayed produce / delayed fetch at many partitions (issue 13): ferrolog vs Apache Kafka 4.1.1,
# 3 KRaft nodes each, same run. acks=all p50/p99 and broker CPU at 10 and 1,000 partitions, and
# with 1,000 idle partitions long-polled by four consumers. Results go to
# bench/results-latest.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
out="$root/bench/results-latest.txt"
source "$root/bench/build.sh"
say() { echo "$*" | tee -a "$out"; }
say ""
say "delayed produce/fetch, 3 nodes, RF=3, acks=all, min.insync.replicas=2, $(date -u +%Y-%m-%dT%H:%MZ) $*"
fl=$(python3 bench/purgatory.py ferrolog "$@")
ka=$(python3 bench/purgatory.py kafka "$@")
for key in $(echo "$fl" | awk '{print $1}'); do
  f=$(echo "$fl" | awk -v k=$key '$1 == k {print $2}')
  k=$(echo "$ka" | awk -v k=$key '$1 == k {print $2}')
  say "$key: ferrolog $f | kafka $k"
done
