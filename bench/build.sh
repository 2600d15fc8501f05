# Sourced by the bench scripts (expects $root): builds ferrolog (release) and fetches Apache
# Kafka's jars into target/kafka-lib.
cargo build --release -p ferrolog >/dev/null
(cd "$root/bench/kafka" && mvn -q -B dependency:copy-dependencies -DoutputDirectory="$root/target/kafka-lib")
