// Prints Apache Kafka's broker config catalog, one key per line:
// name, type, dynamic update mode (read-only, per-broker, cluster-wide), default (\N: none).
// Run by scripts/kafka-broker-configs.sh against the Kafka jars in target/kafka-lib.
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;

import org.apache.kafka.common.config.ConfigDef;

public class KafkaBrokerConfigs {
    public static void main(String[] args) {
        ConfigDef def = kafka.server.KafkaConfig$.MODULE$.configDef();
        Map<String, String> modes =
                kafka.server.DynamicBrokerConfig$.MODULE$.dynamicConfigUpdateModes();
        List<String> names = new ArrayList<>(def.configKeys().keySet());
        Collections.sort(names);
        for (String name : names) {
            ConfigDef.ConfigKey key = def.configKeys().get(name);
            String value = "\\N";
            if (key.hasDefault() && key.defaultValue != null
                    && key.type != ConfigDef.Type.PASSWORD) {
                value = ConfigDef.convertToString(key.defaultValue, key.type)
                        .replace('\t', ' ').replace('\n', ' ');
            }
            String mode = modes.getOrDefault(name, "read-only");
            System.out.println(name + "\t" + key.type + "\t" + mode + "\t" + value);
        }
    }
}
