# Shared by the bench scripts: builds ferrolog, fetches Apache Kafka's jars, starts and stops
# both brokers on fixed loopback ports, creates topics. Expects $root, $work and say().
# Extra server settings for the next start of either broker: $EXTRA_PROPS (key=value lines).
source "$root/bench/build.sh"
ferrolog="$root/target/release/ferrolog"
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
  local overrides=()
  while IFS= read -r kv; do [ -n "$kv" ] && overrides+=(--override "$kv"); done <<< "${EXTRA_PROPS:-}"
  rm -rf "$work/ferrolog"
  "$ferrolog" server --data-dir "$work/ferrolog" --override "listeners=PLAINTEXT://127.0.0.1:$fl_port,CONTROLLER://127.0.0.1:0" \
    "${overrides[@]}" > "$work/ferrolog.log" 2>&1 &
  fl_pid=$!; pids+=("$fl_pid"); wait_port $fl_port
}

start_kafka() {
  rm -rf "$work/kafka"
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
${EXTRA_PROPS:-}
PROPS
  java -cp "$cp" kafka.tools.StorageTool format --standalone -t "$(java -cp "$cp" kafka.tools.StorageTool random-uuid)" \
    -c "$work/kafka/server.properties" > "$work/kafka-format.log" 2>&1
  java -Xmx1G -Xms1G -cp "$cp" -Dlog4j.configuration=file:/dev/null kafka.Kafka "$work/kafka/server.properties" > "$work/kafka.log" 2>&1 &
  kafka_pid=$!; pids+=("$kafka_pid"); wait_port $kafka_port; sleep 3
}

create_topic() { # bootstrap topic partitions [--config k=v ...]
  local bs=$1 topic=$2 partitions=$3
  shift 3
  java -cp "$cp" org.apache.kafka.tools.TopicCommand --bootstrap-server "$bs" --create --topic "$topic" \
    --partitions "$partitions" --replication-factor 1 "$@" > /dev/null 2>&1
}

stop_broker() { # pid
  kill -TERM "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
}

