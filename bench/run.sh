#!/usr/bin/env bash
# Side-by-side benchmark: the same loads against ferrolog and Apache Kafka (single KRaft node,
# default settings) on this machine, in one run. Prints figures and ratios; writes
# bench/results-latest.txt. A benchmark, not a test: it asserts nothing.
#
#   bash bench/run.sh [records]        (default 500000 records of 1 KiB)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
records=${1:-500000}
work=$(mktemp -d /tmp/ferrolog-bench.XXXXXX)
out="$root/bench/results-latest.txt"
: > "$out"
say() { echo "$*" | tee -a "$out"; }

cargo build --release -p ferrolog >/dev/null
ferrolog="$root/target/release/ferrolog"
(cd bench/kafka && mvn -q -B dependency:copy-dependencies -DoutputDirectory="$root/target/kafka-lib")
cp="$root/target/kafka-lib/*"
command -v kcat >/dev/null || { echo "kcat is needed (apt-get install kcat)"; exit 1; }

fl_port=19092; kafka_port=29092
pids=()
cleanup() { for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

wait_port() { for _ in $(seq 1 300); do (exec 3<>/dev/tcp/127.0.0.1/$1) 2>/dev/null && return 0; sleep 0.2; done; echo "port $1 not up"; exit 1; }
rss_mib() { awk '/VmRSS/ {printf "%.1f", $2/1024}' "/proc/$1/status"; }
cpu_s() { awk '{printf "%.2f", ($14+$15)/100}' "/proc/$1/stat"; }

start_ferrolog() {
  "$ferrolog" server --data-dir "$work/ferrolog" --override "listeners=PLAINTEXT://127.0.0.1:$fl_port,CONTROLLER://127.0.0.1:0" \
    > "$work/ferrolog.log" 2>&1 &
  fl_pid=$!; pids+=("$fl_pid"); wait_port $fl_port
}

start_kafka() {
  mkdir -p "$work/kafka"
  cat > "$work/kafka/server.properties" <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.bootstrap.servers=127.0.0.1:29093
listeners=PLAINTEXT://127.0.0.1:$kafka_port,CONTROLLER://127.0.0.1:29093
advertised.listeners=PLAINTEXT://127.0.0.1:$kafka_port
controller.listener.names=CONTROLLER
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$work/kafka/data
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
PROPS
  java -cp "$cp" kafka.tools.StorageTool format --standalone -t "$(java -cp "$cp" kafka.tools.StorageTool random-uuid)" \
    -c "$work/kafka/server.properties" > "$work/kafka-format.log" 2>&1
  java -Xmx1G -Xms1G -cp "$cp" -Dlog4j.configuration=file:/dev/null kafka.Kafka "$work/kafka/server.properties" > "$work/kafka.log" 2>&1 &
  kafka_pid=$!; pids+=("$kafka_pid"); wait_port $kafka_port; sleep 3
}

create_topic() { # bootstrap topic partitions
  java -cp "$cp" org.apache.kafka.tools.TopicCommand --bootstrap-server "$1" --create --topic "$2" \
    --partitions "$3" --replication-factor 1 > /dev/null 2>&1
}

produce() { # bootstrap topic -> prints records/sec
  java -cp "$cp" org.apache.kafka.tools.ProducerPerformance --topic "$2" --num-records "$records" --record-size 1024 \
    --throughput -1 --producer-props bootstrap.servers="$1" acks=1 linger.ms=5 batch.size=65536 2>/dev/null | tail -1
}

consume_s() { # bootstrap topic -> seconds to read everything with kcat (librdkafka)
  local start end
  start=$(date +%s.%N)
  kcat -b "$1" -C -t "$2" -o beginning -e -q -f '%o\n' > "$work/consumed.txt"
  end=$(date +%s.%N)
  [ "$(wc -l < "$work/consumed.txt")" -eq "$records" ] || { echo "consumed $(wc -l < "$work/consumed.txt") of $records"; exit 1; }
  echo "$end - $start" | bc -l
}

idle_rss() { # bootstrap pid -> MiB with 1000 partitions, idle
  create_topic "$1" idle1000 1000
  sleep 10
  rss_mib "$2"
}

run_one() { # name bootstrap pid
  local name=$1 bs=$2 pid=$3
  create_topic "$bs" perf 4
  local cpu0; cpu0=$(cpu_s "$pid")
  local p; p=$(produce "$bs" perf)
  local cpu1; cpu1=$(cpu_s "$pid")
  local c; c=$(consume_s "$bs" perf)
  local cpu2; cpu2=$(cpu_s "$pid")
  local rss; rss=$(idle_rss "$bs" "$pid")
  eval "${name}_produce_rps=$(echo "$p" | sed -E 's/.* ([0-9.]+) records\/sec.*/\1/')"
  eval "${name}_produce_p99=$(echo "$p" | sed -E 's/.* ([0-9.]+) ms 99th.*/\1/')"
  eval "${name}_consume_s=$c"
  eval "${name}_produce_cpu=$(echo "$cpu1 - $cpu0" | bc -l)"
  eval "${name}_consume_cpu=$(echo "$cpu2 - $cpu1" | bc -l)"
  eval "${name}_rss=$rss"
  say "$name produce: $p"
  say "$name consume: $records records in ${c}s; broker CPU produce $(echo "$cpu1 - $cpu0" | bc -l)s, consume $(echo "$cpu2 - $cpu1" | bc -l)s; idle RSS with 1000 partitions ${rss} MiB"
}

say "ferrolog vs Apache Kafka 4.1.1, $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, $records records of 1 KiB"
say "producer: Kafka's ProducerPerformance (acks=1 linger.ms=5 batch.size=65536); consumer: kcat (librdkafka) from the beginning"
start_ferrolog
run_one ferrolog "127.0.0.1:$fl_port" "$fl_pid"
kill -TERM "$fl_pid"; wait "$fl_pid" 2>/dev/null || true
start_kafka
run_one kafka "127.0.0.1:$kafka_port" "$kafka_pid"
say ""
say "ratios (ferrolog / Kafka; > 1 means ferrolog is better for throughput, < 1 better for the rest):"
say "  produce throughput      $(echo "scale=2; $ferrolog_produce_rps / $kafka_produce_rps" | bc -l)"
say "  produce p99 latency     $(echo "scale=2; $ferrolog_produce_p99 / $kafka_produce_p99" | bc -l)"
say "  consume throughput      $(echo "scale=2; $kafka_consume_s / $ferrolog_consume_s" | bc -l)"
say "  broker CPU, produce     $(echo "scale=2; $ferrolog_produce_cpu / $kafka_produce_cpu" | bc -l)"
say "  broker CPU, consume     $(echo "scale=2; $ferrolog_consume_cpu / $kafka_consume_cpu" | bc -l)"
say "  idle RSS, 1000 parts    $(echo "scale=2; $ferrolog_rss / $kafka_rss" | bc -l)"
