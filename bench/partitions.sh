#!/usr/bin/env bash
# Partition scale on one node, ferrolog and Apache Kafka in one session, each under the same open
# file limit (default 20000, the issue's target machine): bench/partitions.py creates N
# partitions, writes to each, kills -9 and restarts.
#
#   bash bench/partitions.sh [partitions] [open-file limit]   (default 30000 20000)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
n=${1:-30000}
limit=${2:-20000}
source "$root/bench/build.sh"
echo "partition scale, $n partitions, ulimit -n $limit $(date -u +%Y-%m-%dT%H:%MZ)" | tee -a bench/results-latest.txt
for kind in ferrolog kafka; do
  (ulimit -n "$limit"; python3 bench/partitions.py "$kind" "$n") | tee -a bench/results-latest.txt
done
