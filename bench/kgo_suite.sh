#!/usr/bin/env bash
# franz-go's kgo integration suite against 3-node ferrolog and 3-node Apache Kafka 4.1.1, side by
# side; pass --stress N to load the machine with stress-ng --cpu N. Results are appended to
# bench/results-latest.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
source "$root/bench/build.sh"
command -v stress-ng >/dev/null || apt-get install -y -qq stress-ng >/dev/null
echo "franz-go v1.22.3 kgo suite, KGO_TEST_RF=3, $* $(date -u +%Y-%m-%dT%H:%MZ)" | tee -a bench/results-latest.txt
python3 bench/kgo_suite.py "$@" | tee -a bench/results-latest.txt
