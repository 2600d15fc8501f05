#!/usr/bin/env bash
# TLS and SASL side by side: produce and consume throughput, and broker CPU, over PLAINTEXT, SSL
# (mutual TLS, the same PKCS12 stores) and SASL_SSL with SCRAM-SHA-512 (the user created with
# Kafka's kafka-configs over a PLAINTEXT listener), for ferrolog and Apache Kafka in one run, and
# new connections per second (TCP, TLS handshake, ApiVersions, SCRAM exchange) opened by the same
# client (`ferrolog perf connect`, 4 at a time) against both. A benchmark, not a test: it asserts
# only that every record was read back.
#
#   bash bench/tls.sh [records] [connections]   (default 300000 records of 1 KiB, 2000 connections)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
records=${1:-300000}
connections=${2:-2000}
work=$(mktemp -d /tmp/ferrolog-bench-tls.XXXXXX)
say() { echo "$*"; }
source "$root/bench/lib.sh"

# Debian bookworm's kcat links librdkafka 2.0.2, whose SCRAM client-final-message repeats the
# client nonce (librdkafka#4895, fixed in 2.6.1). Kafka 4.x checks that nonce strictly (since
# CVE-2024-56128) and answers "invalid credentials"; ferrolog only checks its suffix. So kcat runs
# on a newer librdkafka for every phase: the one the confluent-kafka wheel ships, if kcat's own is older.
rdkafka_version() { kcat -V 2>/dev/null | sed -nE 's/.*librdkafka ([0-9.]+).*/\1/p' | head -1; }
rdkafka_ok() { local v; v=$(rdkafka_version); [ -n "$v" ] && [ "$(printf '%s\n' 2.6.1 "$v" | sort -V | head -1)" = 2.6.1 ]; }
if ! rdkafka_ok; then
  lib=$(python3 -c 'import confluent_kafka, glob, os
print(sorted(glob.glob(os.path.dirname(confluent_kafka.__file__) + ".libs/librdkafka*.so*"))[0])' 2>/dev/null) || true
  if [ -n "$lib" ]; then
    mkdir -p "$work/rdkafka" && ln -s "$lib" "$work/rdkafka/librdkafka.so.1"
    kcat() { LD_LIBRARY_PATH="$work/rdkafka${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" command kcat "$@"; }
  fi
  rdkafka_ok || { echo "kcat needs librdkafka 2.6.1 or later for SCRAM against Kafka 4.x (pip install confluent-kafka)"; exit 1; }
fi

bash "$root/scripts/test-certs.sh" "$work/certs"
certs="$work/certs"
cat > "$work/client-ssl.properties" <<EOF
security.protocol=SSL
ssl.truststore.type=PKCS12
ssl.truststore.location=$certs/truststore.p12
ssl.truststore.password=storepass
ssl.keystore.type=PKCS12
ssl.keystore.location=$certs/client.p12
ssl.keystore.password=storepass
EOF
: > "$work/client-plaintext.properties"
broker_stores() { # the broker's PKCS12 key and trust stores, as key=value lines
  printf '%s\n' "ssl.keystore.type=PKCS12" "ssl.keystore.location=$certs/server.p12" \
    "ssl.keystore.password=storepass" "ssl.truststore.type=PKCS12" \
    "ssl.truststore.location=$certs/truststore.p12" "ssl.truststore.password=storepass"
}
broker_ssl() { # port controller-port: the broker's SSL settings, as key=value lines
  cat <<EOF
listeners=SSL://127.0.0.1:$1,CONTROLLER://127.0.0.1:$2
advertised.listeners=SSL://127.0.0.1:$1
listener.security.protocol.map=CONTROLLER:PLAINTEXT,SSL:SSL
inter.broker.listener.name=SSL
$(broker_stores)
ssl.client.auth=required
EOF
}
cat > "$work/client-sasl_ssl.properties" <<EOF
security.protocol=SASL_SSL
sasl.mechanism=SCRAM-SHA-512
sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="admin" password="admin-secret";
ssl.truststore.type=PKCS12
ssl.truststore.location=$certs/truststore.p12
ssl.truststore.password=storepass
EOF
broker_sasl_ssl() { # port plaintext-port controller-port: clients on SASL_SSL with SCRAM-SHA-512;
  # the SCRAM user is created through the PLAINTEXT listener (which brokers talk over)
  cat <<EOF
listeners=SASL_SSL://127.0.0.1:$1,PLAINTEXT://127.0.0.1:$2,CONTROLLER://127.0.0.1:$3
advertised.listeners=SASL_SSL://127.0.0.1:$1,PLAINTEXT://127.0.0.1:$2
listener.security.protocol.map=CONTROLLER:PLAINTEXT,SASL_SSL:SASL_SSL,PLAINTEXT:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
sasl.enabled.mechanisms=SCRAM-SHA-512
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
$(broker_stores)
EOF
}
add_admin() { # plaintext port
  java -cp "$cp" kafka.admin.ConfigCommand --bootstrap-server "127.0.0.1:$1" --alter \
    --add-config 'SCRAM-SHA-512=[password=admin-secret]' --entity-type users --entity-name admin > /dev/null
}
kcat_flags() { # mode
  case "$1" in
    ssl) echo "-X security.protocol=ssl -X ssl.ca.location=$certs/ca.pem -X ssl.certificate.location=$certs/client.pem -X ssl.key.location=$certs/client.key" ;;
    sasl_ssl) echo "-X security.protocol=sasl_ssl -X ssl.ca.location=$certs/ca.pem -X sasl.mechanisms=SCRAM-SHA-512 -X sasl.username=admin -X sasl.password=admin-secret" ;;
  esac
}

run_one() { # name mode bootstrap pid
  local name=$1 mode=$2 bs=$3 pid=$4 props="$work/client-$2.properties"
  java -cp "$cp" org.apache.kafka.tools.TopicCommand --bootstrap-server "$bs" --command-config "$props" \
    --create --topic perf --partitions 4 --replication-factor 1 > /dev/null
  local cpu0 cpu1 cpu2 p start end
  cpu0=$(cpu_s "$pid")
  p=$(java -cp "$cp" org.apache.kafka.tools.ProducerPerformance --topic perf --num-records "$records" \
    --record-size 1024 --throughput -1 --producer.config "$props" \
    --producer-props bootstrap.servers="$bs" acks=1 linger.ms=5 batch.size=65536 2>/dev/null | tail -1)
  cpu1=$(cpu_s "$pid")
  start=$(date +%s.%N)
  # shellcheck disable=SC2046
  kcat -b "$bs" $(kcat_flags "$mode") -C -t perf -o beginning -e -q -f '%o\n' > "$work/consumed.txt"
  end=$(date +%s.%N)
  cpu2=$(cpu_s "$pid")
  [ "$(wc -l < "$work/consumed.txt")" -eq "$records" ] || { echo "consumed $(wc -l < "$work/consumed.txt") of $records"; exit 1; }
  local conn cps
  conn=$("$ferrolog" --command-config "$props" perf connect --bootstrap-server "$bs" \
    --connections "$connections" --concurrency 4)
  cps=$(echo "$conn" | sed -E 's/.* ([0-9.]+) connections\/sec.*/\1/')
  eval "${name}_${mode}_connect=$cps"
  say "$name $mode: $conn"
  local rps mbs
  rps=$(echo "$p" | sed -E 's/.* ([0-9.]+) records\/sec.*/\1/')
  mbs=$(echo "scale=1; $records * 1024 / 1048576 / ($end - $start)" | bc -l)
  eval "${name}_${mode}_produce=$rps ${name}_${mode}_consume=$mbs"
  eval "${name}_${mode}_pcpu=$(echo "$cpu1 - $cpu0" | bc -l) ${name}_${mode}_ccpu=$(echo "$cpu2 - $cpu1" | bc -l)"
  say "$name $mode: produce $rps rec/s (broker CPU $(echo "$cpu1 - $cpu0" | bc -l) s), consume $mbs MB/s (broker CPU $(echo "$cpu2 - $cpu1" | bc -l) s)"
}

say "TLS: ferrolog vs Apache Kafka, $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, $records records of 1 KiB"
say "producer: Kafka's ProducerPerformance (acks=1 linger.ms=5 batch.size=65536); consumer: kcat (librdkafka $(rdkafka_version)); mutual TLS, PKCS12 stores"
for mode in plaintext ssl sasl_ssl; do
  EXTRA_PROPS=""
  case $mode in
    ssl) EXTRA_PROPS=$(broker_ssl $fl_port 0) ;;
    sasl_ssl) EXTRA_PROPS=$(broker_sasl_ssl $fl_port $((fl_port + 1)) 0) ;;
  esac
  start_ferrolog
  [ "$mode" = sasl_ssl ] && add_admin $((fl_port + 1))
  run_one ferrolog $mode "127.0.0.1:$fl_port" "$fl_pid"
  stop_broker "$fl_pid"
  EXTRA_PROPS=""
  case $mode in
    ssl) EXTRA_PROPS=$(broker_ssl $kafka_port 29093) ;;
    sasl_ssl) EXTRA_PROPS=$(broker_sasl_ssl $kafka_port 29095 29093) ;;
  esac
  start_kafka
  [ "$mode" = sasl_ssl ] && add_admin 29095
  run_one kafka $mode "127.0.0.1:$kafka_port" "$kafka_pid"
  stop_broker "$kafka_pid"
done
r() { echo "scale=2; $1 / $2" | bc -l; }
say ""
say "                         ferrolog   Kafka   ferrolog/Kafka"
say "produce SSL rec/s        $ferrolog_ssl_produce   $kafka_ssl_produce   $(r "$ferrolog_ssl_produce" "$kafka_ssl_produce")"
say "consume SSL MB/s         $ferrolog_ssl_consume   $kafka_ssl_consume   $(r "$ferrolog_ssl_consume" "$kafka_ssl_consume")"
say "broker CPU produce SSL s $ferrolog_ssl_pcpu   $kafka_ssl_pcpu   $(r "$ferrolog_ssl_pcpu" "$kafka_ssl_pcpu")"
say "broker CPU consume SSL s $ferrolog_ssl_ccpu   $kafka_ssl_ccpu   $(r "$ferrolog_ssl_ccpu" "$kafka_ssl_ccpu")"
say "SASL_SSL / PLAINTEXT: ferrolog produce $(r "$ferrolog_sasl_ssl_produce" "$ferrolog_plaintext_produce"), consume $(r "$ferrolog_sasl_ssl_consume" "$ferrolog_plaintext_consume"); Kafka produce $(r "$kafka_sasl_ssl_produce" "$kafka_plaintext_produce"), consume $(r "$kafka_sasl_ssl_consume" "$kafka_plaintext_consume")"
say "produce SASL_SSL rec/s   $ferrolog_sasl_ssl_produce   $kafka_sasl_ssl_produce   $(r "$ferrolog_sasl_ssl_produce" "$kafka_sasl_ssl_produce")"
say "consume SASL_SSL MB/s    $ferrolog_sasl_ssl_consume   $kafka_sasl_ssl_consume   $(r "$ferrolog_sasl_ssl_consume" "$kafka_sasl_ssl_consume")"
for mode in plaintext ssl sasl_ssl; do
  f=ferrolog_${mode}_connect k=kafka_${mode}_connect
  say "new connections/s $mode  ${!f}   ${!k}   $(r "${!f}" "${!k}")"
done
say "SSL / PLAINTEXT: ferrolog produce $(r "$ferrolog_ssl_produce" "$ferrolog_plaintext_produce"), consume $(r "$ferrolog_ssl_consume" "$ferrolog_plaintext_consume"); Kafka produce $(r "$kafka_ssl_produce" "$kafka_plaintext_produce"), consume $(r "$kafka_ssl_consume" "$kafka_plaintext_consume")"
