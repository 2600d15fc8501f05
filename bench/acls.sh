#!/usr/bin/env bash
# What authorization costs: produce and consume throughput over SASL_PLAINTEXT (PLAIN) with no
# authorizer, and with Kafka's StandardAuthorizer and 1,000 ACLs (the client allowed by a literal
# ACL among 500 other literal and 500 prefixed ones), for ferrolog and Apache Kafka in one run,
# each case `runs` times (medians). Small records (100 B), so the per-request checks show. A
# benchmark, not a test: it asserts only that every record was read back.
#
#   bash bench/acls.sh [records] [runs]        (default 500000 records, 3 runs)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
records=${1:-500000}
runs=${2:-3}
work=$(mktemp -d /tmp/ferrolog-bench-acls.XXXXXX)
say() { echo "$*"; }
source "$root/bench/lib.sh"

jaas='org.apache.kafka.common.security.plain.PlainLoginModule required username="admin" password="admin-secret" user_admin="admin-secret" user_alice="alice-secret";'
client_props() { # user
  printf '%s\n' "security.protocol=SASL_PLAINTEXT" "sasl.mechanism=PLAIN" \
    "sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required username=\"$1\" password=\"$1-secret\";"
}
client_props admin > "$work/admin.properties"
client_props alice > "$work/alice.properties"
broker_sasl() { # sasl-port plaintext-port authorizer(0|1): clients on SASL_PLAINTEXT, brokers
  # and the controller on PLAINTEXT (their principal, ANONYMOUS, is a super user)
  cat <<EOF
listeners=SASL_PLAINTEXT://127.0.0.1:$1,PLAINTEXT://127.0.0.1:$2,CONTROLLER://127.0.0.1:${4:-0}
advertised.listeners=SASL_PLAINTEXT://127.0.0.1:$1,PLAINTEXT://127.0.0.1:$2
listener.security.protocol.map=CONTROLLER:PLAINTEXT,SASL_PLAINTEXT:SASL_PLAINTEXT,PLAINTEXT:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
sasl.enabled.mechanisms=PLAIN
listener.name.sasl_plaintext.plain.sasl.jaas.config=$jaas
EOF
  if [ "$3" = 1 ]; then
    printf '%s\n' "authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer" \
      "super.users=User:admin;User:ANONYMOUS"
  fi
}

add_acls() { # plaintext bootstrap: alice may write perf and read it with group bench; 1,000 others
  local bs=$1
  java -cp "$cp" org.apache.kafka.tools.AclCommand --bootstrap-server "$bs" --add \
    --allow-principal User:alice --producer --topic perf > /dev/null 2>&1
  java -cp "$cp" org.apache.kafka.tools.AclCommand --bootstrap-server "$bs" --add \
    --allow-principal User:alice --consumer --topic perf --group bench > /dev/null 2>&1
  # the others, in one CreateAcls request each kind (Kafka's admin client batches them)
  python3 - "$bs" <<'PY'
import sys
from confluent_kafka.admin import (AclBinding, AclOperation, AclPermissionType, AdminClient,
                                   ResourcePatternType, ResourceType)
admin = AdminClient({"bootstrap.servers": sys.argv[1]})
acls = [AclBinding(ResourceType.TOPIC, f"other-{i}", ResourcePatternType.LITERAL, f"User:u{i}", "*",
                   AclOperation.READ, AclPermissionType.ALLOW) for i in range(500)]
acls += [AclBinding(ResourceType.TOPIC, f"p{i}-", ResourcePatternType.PREFIXED, f"User:u{i}", "*",
                    AclOperation.WRITE, AclPermissionType.ALLOW) for i in range(500)]
for f in admin.create_acls(acls).values():
    f.result(60)
PY
}

run_one() { # name mode sasl-bootstrap plaintext-bootstrap pid run
  local name=$1 mode=$2 bs=$3 pbs=$4 pid=$5 run=$6
  java -cp "$cp" org.apache.kafka.tools.TopicCommand --bootstrap-server "$pbs" --create --topic perf \
    --partitions 4 --replication-factor 1 > /dev/null 2>&1
  [ "$mode" = acls ] && add_acls "$pbs"
  local cpu0 cpu1 cpu2 p start end
  cpu0=$(cpu_s "$pid")
  p=$(java -cp "$cp" org.apache.kafka.tools.ProducerPerformance --topic perf --num-records "$records" \
    --record-size 100 --throughput -1 --producer.config "$work/alice.properties" \
    --producer-props bootstrap.servers="$bs" acks=1 linger.ms=5 batch.size=16384 2>/dev/null | tail -1)
  cpu1=$(cpu_s "$pid")
  start=$(date +%s.%N)
  kcat -b "$bs" -X security.protocol=sasl_plaintext -X sasl.mechanisms=PLAIN -X sasl.username=alice \
    -X sasl.password=alice-secret -X auto.offset.reset=earliest -G bench perf -e -q -f '%o\n' > "$work/consumed.txt" 2>/dev/null
  end=$(date +%s.%N)
  cpu2=$(cpu_s "$pid")
  [ "$(wc -l < "$work/consumed.txt")" -eq "$records" ] || { echo "$name $mode: consumed $(wc -l < "$work/consumed.txt") of $records"; exit 1; }
  local rps krps
  rps=$(echo "$p" | sed -E 's/.* ([0-9.]+) records\/sec.*/\1/')
  krps=$(echo "scale=0; $records / ($end - $start)" | bc -l)
  echo "$rps" >> "$work/$name-$mode-produce"
  echo "$krps" >> "$work/$name-$mode-consume"
  echo "$(echo "$cpu1 - $cpu0" | bc -l)" >> "$work/$name-$mode-pcpu"
  say "$name $mode run $run: produce $rps rec/s (broker CPU $(echo "$cpu1 - $cpu0" | bc -l) s), consume $krps rec/s (broker CPU $(echo "$cpu2 - $cpu1" | bc -l) s)"
}

median() { sort -n "$1" | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

say "ACLs: ferrolog vs Apache Kafka, $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, $records records of 100 B, $runs runs"
say "producer: Kafka's ProducerPerformance (acks=1 linger.ms=5 batch.size=16384) as User:alice over SASL_PLAINTEXT/PLAIN; consumer: kcat in group bench"
for run in $(seq 1 "$runs"); do
  for mode in open acls; do
    auth=0; [ "$mode" = acls ] && auth=1
    EXTRA_PROPS=$(broker_sasl $((fl_port + 2)) $fl_port $auth)
    start_ferrolog
    wait_port $((fl_port + 2))
    run_one ferrolog $mode "127.0.0.1:$((fl_port + 2))" "127.0.0.1:$fl_port" "$fl_pid" "$run"
    stop_broker "$fl_pid"
    EXTRA_PROPS=$(broker_sasl $((kafka_port + 2)) $kafka_port $auth 29093)
    start_kafka
    wait_port $((kafka_port + 2))
    run_one kafka $mode "127.0.0.1:$((kafka_port + 2))" "127.0.0.1:$kafka_port" "$kafka_pid" "$run"
    stop_broker "$kafka_pid"
  done
done
r() { echo "scale=2; $1 / $2" | bc -l; }
say ""
say "medians                          ferrolog   Kafka   ferrolog/Kafka"
for mode in open acls; do
  fp=$(median "$work/ferrolog-$mode-produce"); kp=$(median "$work/kafka-$mode-produce")
  fc=$(median "$work/ferrolog-$mode-consume"); kc=$(median "$work/kafka-$mode-consume")
  say "produce rec/s, $mode             $fp   $kp   $(r "$fp" "$kp")"
  say "consume rec/s, $mode             $fc   $kc   $(r "$fc" "$kc")"
done
say "with ACLs / without: ferrolog produce $(r "$(median "$work/ferrolog-acls-produce")" "$(median "$work/ferrolog-open-produce")"), consume $(r "$(median "$work/ferrolog-acls-consume")" "$(median "$work/ferrolog-open-consume")"); Kafka produce $(r "$(median "$work/kafka-acls-produce")" "$(median "$work/kafka-open-produce")"), consume $(r "$(median "$work/kafka-acls-consume")" "$(median "$work/kafka-open-consume")")"
