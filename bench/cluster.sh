#!/usr/bin/env bash
# Side-by-side 3-node cluster benchmark for issue 3: ferrolog vs Apache Kafka 4.1.1 (3 KRaft
# nodes, each broker+controller) on this machine in one run: RF=3 acks=all throughput and p99
# produce latency, leader failover (kill -9 -> first acknowledged produce) and controller
# failover (kill -9 -> first successful CreateTopics). Results go to bench/results-latest.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
out="$root/bench/results-latest.txt"
source "$root/bench/build.sh"
say() { echo "$*" | tee -a "$out"; }
say ""
say "3-node cluster, RF=3, acks=all, min.insync.replicas=2, idempotent librdkafka, 100-byte values, $(date -u +%Y-%m-%dT%H:%MZ)"
fl=$(python3 bench/cluster.py ferrolog)
ka=$(python3 bench/cluster.py kafka)
say "leader failover runs: ferrolog $(echo "$fl" | awk '$1 == "leader_failover_runs" {$1=""; print}') | kafka $(echo "$ka" | awk '$1 == "leader_failover_runs" {$1=""; print}')"
for key in throughput p99_ms leader_failover_s controller_failover_s; do
  f=$(echo "$fl" | awk -v k=$key '$1 == k {print $2}')
  k=$(echo "$ka" | awk -v k=$key '$1 == k {print $2}')
  say "$key: ferrolog $f | kafka $k | ratio $(echo "scale=2; $f / $k" | bc -l 2>/dev/null || echo n/a)"
done
