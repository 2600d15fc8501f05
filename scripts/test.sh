#!/usr/bin/env bash
# The whole test suite: installs what it needs, then style, lints, unit and integration tests,
# and interop tests with real Kafka clients (kcat, confluent-kafka, kafka-python, the Java
# client, franz-go, kafkajs) against the real binary.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
export CARGO_TERM_COLOR=never

step() { printf '\n==> %s\n' "$*"; }

step "installing test dependencies"
# kcat for the librdkafka CLI tests, iproute2 (ip netns) for the network-partition test,
# openssl for the TLS tests' certificates (scripts/test-certs.sh)
if ! command -v kcat >/dev/null 2>&1 || ! command -v ip >/dev/null 2>&1 || ! command -v openssl >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq kcat iproute2 openssl >/dev/null
  else sudo apt-get update -qq && sudo apt-get install -y -qq kcat iproute2 openssl >/dev/null; fi
fi
python3 -m pip install -q --disable-pip-version-check -r interop/python/requirements.txt 2>&1 | grep -v "Running pip as the 'root'" || true
rustup component add rustfmt clippy >/dev/null 2>&1 || true

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy -D warnings"
cargo clippy --workspace --all-targets -- -D warnings

step "cargo build"
cargo build --workspace

step "building the Java, Go and Node interop programs, fetching Apache Kafka's jars"
(cd bench/kafka && mvn -q -B dependency:copy-dependencies -DoutputDirectory="$root/target/kafka-lib")
(cd interop/java && mvn -q -B package dependency:build-classpath -DskipTests -Dmdep.outputFile=target/classpath.txt)
(cd interop/go && go build -o "$root/target/interop-go" .)
(cd interop/node && npm ci --no-audit --no-fund --silent)

step "unit and integration tests"
cargo test --workspace

step "interop tests with real clients"
FERROLOG_BIN="$root/target/debug/ferrolog" python3 -m pytest -q -p no:warnings -p no:cacheprovider interop/python
