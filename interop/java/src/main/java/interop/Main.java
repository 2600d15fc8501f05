package interop;

import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.*;
import java.util.concurrent.ExecutionException;
import org.apache.kafka.clients.admin.*;
import org.apache.kafka.clients.consumer.*;
import org.apache.kafka.clients.producer.*;
import org.apache.kafka.common.KafkaException;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.config.ConfigResource;
import org.apache.kafka.common.errors.InvalidTopicException;
import org.apache.kafka.common.errors.RecordTooLargeException;
import org.apache.kafka.common.serialization.*;

/** The Java client (kafka-clients 4.x) against ferrolog. Exits non-zero on the first failure. */
public class Main {
    static String bootstrap;
    static int passed = 0;

    static void check(boolean ok, String what) {
        if (!ok) throw new AssertionError("FAILED: " + what);
        passed++;
    }

    public static void main(String[] args) throws Exception {
        bootstrap = args[0];
        if (args.length > 1 && args[1].equals("load")) {
            load(args[2], Integer.parseInt(args[3]));
            System.out.println(passed + " passed, 0 failed");
            return;
        }
        if (args.length > 1 && args[1].equals("consumer-protocol")) {
            try (Admin admin = Admin.create(Map.of(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap))) {
                consumerProtocol(admin);
            }
            System.out.println(passed + " passed, 0 failed");
            return;
        }
        try (Admin admin = Admin.create(Map.of(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap))) {
            for (String codec : List.of("none", "gzip", "snappy", "lz4", "zstd")) {
                produceConsume(admin, codec);
            }
            offsetsForTimes(admin);
            adminRules(admin);
            tooLarge(admin);
            lifecycle(admin);
            groups(admin);
            cooperative(admin);
            transactions(admin);
        }
        System.out.println(passed + " passed, 0 failed");
    }

    /** Idempotent acks=all sends for `seconds` (while the test changes leaders), then every
     *  acknowledged value must be in the topic exactly once. */
    static void load(String topic, int seconds) throws Exception {
        Set<String> acked = Collections.synchronizedSet(new HashSet<>());
        List<Exception> errors = Collections.synchronizedList(new ArrayList<>());
        Map<String, Object> p = new HashMap<>();
        p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(ProducerConfig.ACKS_CONFIG, "all");
        p.put(ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, true);
        p.put(ProducerConfig.LINGER_MS_CONFIG, 5);
        p.put(ProducerConfig.DELIVERY_TIMEOUT_MS_CONFIG, 120000);
        long end = System.currentTimeMillis() + seconds * 1000L;
        int sent = 0;
        try (KafkaProducer<String, String> producer = new KafkaProducer<>(p, new StringSerializer(), new StringSerializer())) {
            while (System.currentTimeMillis() < end) {
                String v = "j" + sent++;
                producer.send(new ProducerRecord<>(topic, v), (md, e) -> {
                    if (e != null) errors.add(e); else acked.add(v);
                });
                if (sent % 200 == 0) Thread.sleep(2);
            }
            producer.flush();
        }
        check(errors.isEmpty(), "no send failed: " + (errors.isEmpty() ? "" : errors.get(0)));
        check(acked.size() > 1000, "records acknowledged: " + acked.size());
        Map<String, Object> c = new HashMap<>();
        c.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        Set<String> seen = new HashSet<>();
        int dups = 0;
        try (KafkaConsumer<String, String> consumer = new KafkaConsumer<>(c, new StringDeserializer(), new StringDeserializer())) {
            List<TopicPartition> parts = new ArrayList<>();
            consumer.partitionsFor(topic).forEach(pi -> parts.add(new TopicPartition(topic, pi.partition())));
            consumer.assign(parts);
            consumer.seekToBeginning(parts);
            long idle = System.currentTimeMillis();
            while (System.currentTimeMillis() - idle < 5000) {
                ConsumerRecords<String, String> records = consumer.poll(Duration.ofMillis(500));
                if (!records.isEmpty()) idle = System.currentTimeMillis();
                for (ConsumerRecord<String, String> r : records) {
                    if (r.value().startsWith("j") && !seen.add(r.value())) dups++;
                }
            }
        }
        Set<String> lost = new HashSet<>(acked);
        lost.removeAll(seen);
        check(lost.isEmpty(), lost.size() + " acknowledged records lost");
        check(dups == 0, dups + " duplicates");
        System.out.println("acked " + acked.size() + " of " + sent);
    }

    static String create(Admin admin, String prefix, int partitions, Map<String, String> configs) throws Exception {
        String name = prefix + "-" + UUID.randomUUID().toString().substring(0, 8);
        admin.createTopics(List.of(new NewTopic(name, partitions, (short) 1).configs(configs))).all().get();
        return name;
    }

    static KafkaProducer<String, String> producer(String codec, Map<String, Object> extra) {
        Map<String, Object> p = new HashMap<>();
        p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(ProducerConfig.COMPRESSION_TYPE_CONFIG, codec);
        p.put(ProducerConfig.LINGER_MS_CONFIG, 5);
        p.put(ProducerConfig.ACKS_CONFIG, "all");
        p.putAll(extra);
        return new KafkaProducer<>(p, new StringSerializer(), new StringSerializer());
    }

    static KafkaConsumer<String, String> consumer() {
        Map<String, Object> c = new HashMap<>();
        c.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        c.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, false);
        c.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        return new KafkaConsumer<>(c, new StringDeserializer(), new StringDeserializer());
    }

    static void produceConsume(Admin admin, String codec) throws Exception {
        String topic = create(admin, "java-" + codec, 3, Map.of());
        try (KafkaProducer<String, String> p = producer(codec, Map.of())) {
            List<java.util.concurrent.Future<RecordMetadata>> fs = new ArrayList<>();
            for (int i = 0; i < 300; i++) {
                ProducerRecord<String, String> r = new ProducerRecord<>(topic, "k" + i, "v" + i);
                r.headers().add("h", "x".getBytes(StandardCharsets.UTF_8));
                fs.add(p.send(r));
            }
            for (var f : fs) f.get();
        }
        try (KafkaConsumer<String, String> c = consumer()) {
            List<TopicPartition> tps = List.of(new TopicPartition(topic, 0), new TopicPartition(topic, 1), new TopicPartition(topic, 2));
            c.assign(tps);
            c.seekToBeginning(tps);
            Set<String> values = new HashSet<>();
            long deadline = System.currentTimeMillis() + 20000;
            while (values.size() < 300 && System.currentTimeMillis() < deadline) {
                for (ConsumerRecord<String, String> r : c.poll(Duration.ofMillis(500))) {
                    check(r.value().equals("v" + r.key().substring(1)), codec + ": key/value pair");
                    check(new String(r.headers().lastHeader("h").value(), StandardCharsets.UTF_8).equals("x"), codec + ": header");
                    values.add(r.value());
                }
            }
            check(values.size() == 300, codec + ": consumed all 300, got " + values.size());
        }
    }

    static void offsetsForTimes(Admin admin) throws Exception {
        String topic = create(admin, "java-times", 1, Map.of());
        long base = System.currentTimeMillis() - 60000;
        try (KafkaProducer<String, String> p = producer("none", Map.of())) {
            for (int i = 0; i < 40; i++) p.send(new ProducerRecord<>(topic, 0, base + i * 100, null, "t" + i)).get();
        }
        try (KafkaConsumer<String, String> c = consumer()) {
            TopicPartition tp = new TopicPartition(topic, 0);
            var found = c.offsetsForTimes(Map.of(tp, base + 1250));
            check(found.get(tp).offset() == 13, "offsetsForTimes -> 13, got " + found.get(tp));
            check(c.endOffsets(List.of(tp)).get(tp) == 40, "endOffsets 40");
            check(c.beginningOffsets(List.of(tp)).get(tp) == 0, "beginningOffsets 0");
            // long poll: nothing past the end for a while, then a late record arrives
            c.assign(List.of(tp));
            c.seek(tp, 40);
            check(c.poll(Duration.ofMillis(700)).isEmpty(), "nothing past the end");
            try (KafkaProducer<String, String> p = producer("none", Map.of())) {
                p.send(new ProducerRecord<>(topic, "late")).get();
            }
            ConsumerRecords<String, String> got = ConsumerRecords.empty();
            long deadline = System.currentTimeMillis() + 10000;
            while (got.isEmpty() && System.currentTimeMillis() < deadline) got = c.poll(Duration.ofMillis(500));
            check(got.count() == 1 && got.iterator().next().offset() == 40, "late record at offset 40");
        }
    }

    static void adminRules(Admin admin) throws Exception {
        String topic = create(admin, "java-admin", 2, Map.of("retention.ms", "123456"));
        var desc = admin.describeTopics(List.of(topic)).allTopicNames().get().get(topic);
        check(desc.partitions().size() == 2, "describeTopics partitions");
        check(desc.topicId() != null, "topic id");
        ConfigResource res = new ConfigResource(ConfigResource.Type.TOPIC, topic);
        Config config = admin.describeConfigs(List.of(res)).all().get().get(res);
        check(config.get("retention.ms").value().equals("123456"), "retention.ms described");
        check(config.get("retention.ms").source() == ConfigEntry.ConfigSource.DYNAMIC_TOPIC_CONFIG, "source");
        admin.createPartitions(Map.of(topic, NewPartitions.increaseTo(4))).all().get();
        check(admin.describeTopics(List.of(topic)).allTopicNames().get().get(topic).partitions().size() == 4, "grown to 4");
        try {
            admin.createTopics(List.of(new NewTopic("bad/name", 1, (short) 1))).all().get();
            check(false, "invalid name accepted");
        } catch (ExecutionException e) {
            check(e.getCause() instanceof InvalidTopicException, "InvalidTopicException, got " + e.getCause());
        }
        var cluster = admin.describeCluster();
        check(cluster.nodes().get().size() == 1, "one node");
        check(cluster.clusterId().get() != null, "cluster id");
        admin.deleteTopics(List.of(topic)).all().get();
        check(!admin.listTopics().names().get().contains(topic), "deleted");
    }

    static void lifecycle(Admin admin) throws Exception {
        String topic = create(admin, "java-life", 1, Map.of("segment.bytes", "2000"));
        try (KafkaProducer<String, String> p = producer("none", Map.of(ProducerConfig.LINGER_MS_CONFIG, 0))) {
            for (int i = 0; i < 50; i++) p.send(new ProducerRecord<>(topic, "r" + i + "-" + "y".repeat(100))).get();
        }
        TopicPartition tp = new TopicPartition(topic, 0);
        var low = admin.deleteRecords(Map.of(tp, RecordsToDelete.beforeOffset(20))).lowWatermarks().get(tp).get();
        check(low.lowWatermark() == 20, "deleteRecords low watermark 20, got " + low.lowWatermark());
        try (KafkaConsumer<String, String> c = consumer()) {
            check(c.beginningOffsets(List.of(tp)).get(tp) == 20, "earliest offset moved to 20");
            c.assign(List.of(tp));
            c.seek(tp, 5); // below the log start: auto.offset.reset=earliest applies
            ConsumerRecords<String, String> got = ConsumerRecords.empty();
            long deadline = System.currentTimeMillis() + 10000;
            while (got.isEmpty() && System.currentTimeMillis() < deadline) got = c.poll(Duration.ofMillis(500));
            check(!got.isEmpty() && got.iterator().next().offset() == 20, "reset to the log start after OFFSET_OUT_OF_RANGE");
        }
        ConfigResource res = new ConfigResource(ConfigResource.Type.TOPIC, topic);
        admin.incrementalAlterConfigs(Map.of(res, List.of(
            new AlterConfigOp(new ConfigEntry("retention.ms", "86400000"), AlterConfigOp.OpType.SET),
            new AlterConfigOp(new ConfigEntry("cleanup.policy", "compact"), AlterConfigOp.OpType.APPEND)))).all().get();
        Config config = admin.describeConfigs(List.of(res)).all().get().get(res);
        check(config.get("retention.ms").value().equals("86400000"), "incrementalAlterConfigs SET");
        check(config.get("cleanup.policy").value().equals("delete,compact"), "incrementalAlterConfigs APPEND");
        try {
            admin.incrementalAlterConfigs(Map.of(res, List.of(
                new AlterConfigOp(new ConfigEntry("retention.ms", "soon"), AlterConfigOp.OpType.SET)))).all().get();
            check(false, "bad config value accepted");
        } catch (ExecutionException e) {
            check(e.getCause() instanceof org.apache.kafka.common.errors.InvalidConfigurationException, "InvalidConfigurationException, got " + e.getCause());
        }
        // dynamic broker configs: a cluster-wide default becomes the topic default
        String plain = create(admin, "java-dyn", 1, Map.of());
        ConfigResource clusterDefault = new ConfigResource(ConfigResource.Type.BROKER, "");
        admin.incrementalAlterConfigs(Map.of(clusterDefault, List.of(
            new AlterConfigOp(new ConfigEntry("log.retention.ms", "7777777"), AlterConfigOp.OpType.SET)))).all().get();
        ConfigResource plainRes = new ConfigResource(ConfigResource.Type.TOPIC, plain);
        ConfigEntry inherited = admin.describeConfigs(List.of(plainRes)).all().get().get(plainRes).get("retention.ms");
        check(inherited.value().equals("7777777"), "cluster default applies to topics, got " + inherited.value());
        check(inherited.source() == ConfigEntry.ConfigSource.DYNAMIC_DEFAULT_BROKER_CONFIG, "source " + inherited.source());
        admin.incrementalAlterConfigs(Map.of(clusterDefault, List.of(
            new AlterConfigOp(new ConfigEntry("log.retention.ms", ""), AlterConfigOp.OpType.DELETE)))).all().get();
        var dirs = admin.describeLogDirs(List.of(1)).allDescriptions().get().get(1);
        long size = dirs.values().stream().mapToLong(d -> d.replicaInfos().containsKey(tp) ? d.replicaInfos().get(tp).size() : 0).sum();
        check(size > 0, "describeLogDirs reports the partition's size");
    }

    static KafkaConsumer<String, String> groupConsumer(String group) {
        return groupConsumer(group, "classic");
    }

    static KafkaConsumer<String, String> newProtocolConsumer(String group) {
        return groupConsumer(group, "consumer");
    }

    static KafkaConsumer<String, String> groupConsumer(String group, String protocol) {
        Map<String, Object> c = new HashMap<>();
        c.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        c.put(ConsumerConfig.GROUP_ID_CONFIG, group);
        c.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, false);
        c.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        c.put(ConsumerConfig.GROUP_PROTOCOL_CONFIG, protocol);
        return new KafkaConsumer<>(c, new StringDeserializer(), new StringDeserializer());
    }

    static void groups(Admin admin) throws Exception {
        String topic = create(admin, "java-group", 3, Map.of());
        try (KafkaProducer<String, String> p = producer("none", Map.of())) {
            for (int i = 0; i < 90; i++) p.send(new ProducerRecord<>(topic, "k" + i, "v" + i)).get();
        }
        String group = "java-group-" + UUID.randomUUID();
        Set<String> seen = new HashSet<>();
        try (KafkaConsumer<String, String> c = groupConsumer(group)) {
            c.subscribe(List.of(topic));
            long deadline = System.currentTimeMillis() + 30000;
            while (seen.size() < 90 && System.currentTimeMillis() < deadline) {
                for (ConsumerRecord<String, String> r : c.poll(Duration.ofMillis(500))) seen.add(r.value());
            }
            check(seen.size() == 90, "group consumer read all 90, got " + seen.size());
            check(c.assignment().size() == 3, "assigned all 3 partitions");
            c.commitSync();
        }
        var offsets = admin.listConsumerGroupOffsets(group).partitionsToOffsetAndMetadata().get();
        check(offsets.values().stream().mapToLong(o -> o.offset()).sum() == 90, "committed offsets sum to 90: " + offsets);
        var listed = admin.listConsumerGroups().all().get();
        check(listed.stream().anyMatch(g -> g.groupId().equals(group)), "listConsumerGroups shows the group");
        var described = admin.describeConsumerGroups(List.of(group)).all().get().get(group);
        check(described.members().isEmpty(), "the group is empty after close: " + described);
        // a new consumer in the group resumes after the committed offsets
        try (KafkaConsumer<String, String> c = groupConsumer(group)) {
            c.subscribe(List.of(topic));
            int extra = 0;
            long deadline = System.currentTimeMillis() + 8000;
            while (System.currentTimeMillis() < deadline) extra += c.poll(Duration.ofMillis(500)).count();
            check(extra == 0, "nothing re-read after the commit, got " + extra);
        }
        admin.deleteConsumerGroups(List.of(group)).all().get();
    }

    /** Polls every consumer in turn until `done` holds or 30 s pass, adding the values read to `seen`. */
    static void pollUntil(List<KafkaConsumer<String, String>> consumers, Set<String> seen, java.util.function.BooleanSupplier done) {
        long deadline = System.currentTimeMillis() + 30000;
        while (!done.getAsBoolean() && System.currentTimeMillis() < deadline) {
            for (KafkaConsumer<String, String> c : consumers) {
                for (ConsumerRecord<String, String> r : c.poll(Duration.ofMillis(100))) seen.add(r.value());
            }
        }
    }

    static List<Integer> sizes(List<KafkaConsumer<String, String>> consumers) {
        List<Integer> out = new ArrayList<>();
        for (KafkaConsumer<String, String> c : consumers) out.add(c.assignment().size());
        Collections.sort(out);
        return out;
    }

    static List<String> readAll(String topic, String isolation, int want) {
        Map<String, Object> c = new HashMap<>();
        c.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        c.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, isolation);
        List<String> out = new ArrayList<>();
        try (KafkaConsumer<String, String> consumer = new KafkaConsumer<>(c, new StringDeserializer(), new StringDeserializer())) {
            List<TopicPartition> parts = new ArrayList<>();
            for (var info : consumer.partitionsFor(topic)) parts.add(new TopicPartition(topic, info.partition()));
            consumer.assign(parts);
            consumer.seekToBeginning(parts);
            long deadline = System.currentTimeMillis() + 8000;
            while (out.size() < want && System.currentTimeMillis() < deadline) {
                for (ConsumerRecord<String, String> r : consumer.poll(Duration.ofMillis(200))) out.add(r.value());
            }
        }
        return out;
    }

    /** Exactly-once consume-transform-produce with sendOffsetsToTransaction; aborts; fencing. */
    static void transactions(Admin admin) throws Exception {
        String in = create(admin, "java-eos-in", 3, Map.of());
        String out = create(admin, "java-eos-out", 3, Map.of());
        try (KafkaProducer<String, String> p = producer("none", Map.of())) {
            for (int i = 0; i < 90; i++) p.send(new ProducerRecord<>(in, "k" + i, "" + i)).get();
        }
        String group = "java-eos-" + UUID.randomUUID();
        String txnId = "java-eos-" + UUID.randomUUID();
        Map<String, Object> cc = new HashMap<>();
        cc.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        cc.put(ConsumerConfig.GROUP_ID_CONFIG, group);
        cc.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, false);
        cc.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        cc.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, "read_committed");
        int processed = 0;
        try (KafkaConsumer<String, String> c = new KafkaConsumer<>(cc, new StringDeserializer(), new StringDeserializer());
             KafkaProducer<String, String> p = producer("none", Map.of(ProducerConfig.TRANSACTIONAL_ID_CONFIG, txnId))) {
            p.initTransactions();
            c.subscribe(List.of(in));
            long deadline = System.currentTimeMillis() + 30000;
            while (processed < 90 && System.currentTimeMillis() < deadline) {
                ConsumerRecords<String, String> records = c.poll(Duration.ofMillis(200));
                if (records.isEmpty()) continue;
                p.beginTransaction();
                Map<TopicPartition, OffsetAndMetadata> offsets = new HashMap<>();
                for (ConsumerRecord<String, String> r : records) {
                    p.send(new ProducerRecord<>(out, r.partition(), r.key(), "out-" + r.value()));
                    offsets.put(new TopicPartition(r.topic(), r.partition()), new OffsetAndMetadata(r.offset() + 1));
                    processed++;
                }
                p.sendOffsetsToTransaction(offsets, c.groupMetadata());
                p.commitTransaction();
            }
            // an aborted transaction leaves nothing a read_committed reader sees
            p.beginTransaction();
            for (int i = 0; i < 10; i++) p.send(new ProducerRecord<>(out, "x", "aborted-" + i));
            p.flush();
            p.abortTransaction();
        }
        check(processed == 90, "the loop processed all 90 inputs, got " + processed);
        List<String> committed = readAll(out, "read_committed", 90);
        check(committed.size() == 90 && new HashSet<>(committed).size() == 90 && committed.stream().allMatch(v -> v.startsWith("out-")),
              "read_committed sees each output once and nothing aborted: " + committed.size());
        List<String> everything = readAll(out, "read_uncommitted", 100);
        check(everything.size() == 100, "read_uncommitted also sees the aborted records: " + everything.size());
        var offsets = admin.listConsumerGroupOffsets(group).partitionsToOffsetAndMetadata().get();
        check(offsets.values().stream().mapToLong(o -> o.offset()).sum() == 90, "the transaction committed the group's offsets: " + offsets);
        // a second producer with the same transactional id fences the first
        try (KafkaProducer<String, String> first = producer("none", Map.of(ProducerConfig.TRANSACTIONAL_ID_CONFIG, txnId))) {
            first.initTransactions();
            try (KafkaProducer<String, String> second = producer("none", Map.of(ProducerConfig.TRANSACTIONAL_ID_CONFIG, txnId))) {
                second.initTransactions();
                first.beginTransaction();
                first.send(new ProducerRecord<>(out, "zombie"));
                first.commitTransaction();
                check(false, "a fenced producer committed");
            } catch (org.apache.kafka.common.errors.ProducerFencedException
                     | org.apache.kafka.common.errors.InvalidProducerEpochException e) {
                check(true, "the first producer is fenced");
            } catch (KafkaException e) {
                check(e.getCause() instanceof org.apache.kafka.common.errors.ProducerFencedException, "fenced, got " + e);
            }
        }
    }

    /** The classic protocol with the cooperative-sticky assignor: a join moves only what it must. */
    static void cooperative(Admin admin) throws Exception {
        String topic = create(admin, "java-coop", 4, Map.of());
        String group = "java-coop-" + UUID.randomUUID();
        List<TopicPartition> revokedFromFirst = new ArrayList<>();
        List<KafkaConsumer<String, String>> cs = new ArrayList<>();
        for (int i = 0; i < 2; i++) {
            Map<String, Object> c = new HashMap<>();
            c.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
            c.put(ConsumerConfig.GROUP_ID_CONFIG, group);
            c.put(ConsumerConfig.GROUP_PROTOCOL_CONFIG, "classic");
            c.put(ConsumerConfig.PARTITION_ASSIGNMENT_STRATEGY_CONFIG, CooperativeStickyAssignor.class.getName());
            cs.add(new KafkaConsumer<>(c, new StringDeserializer(), new StringDeserializer()));
        }
        cs.get(0).subscribe(List.of(topic), new ConsumerRebalanceListener() {
            public void onPartitionsRevoked(Collection<TopicPartition> parts) { revokedFromFirst.addAll(parts); }
            public void onPartitionsAssigned(Collection<TopicPartition> parts) {}
        });
        Set<String> none = new HashSet<>();
        pollUntil(cs.subList(0, 1), none, () -> cs.get(0).assignment().size() == 4);
        Set<TopicPartition> before = new HashSet<>(cs.get(0).assignment());
        check(before.size() == 4, "the first member owns all four partitions");
        cs.get(1).subscribe(List.of(topic));
        pollUntil(cs, none, () -> sizes(cs).equals(List.of(2, 2)));
        check(sizes(cs).equals(List.of(2, 2)), "cooperative rebalance splits 2 + 2: " + sizes(cs));
        check(before.containsAll(cs.get(0).assignment()), "the first member kept two of its own");
        check(revokedFromFirst.size() == 2, "only the two moved partitions were revoked: " + revokedFromFirst);
        for (KafkaConsumer<String, String> c : cs) c.close();
    }

    /** group.protocol=consumer (KIP-848): the coordinator assigns, members reconcile. */
    static void consumerProtocol(Admin admin) throws Exception {
        String topic = create(admin, "java-848", 6, Map.of());
        try (KafkaProducer<String, String> p = producer("none", Map.of())) {
            for (int i = 0; i < 120; i++) p.send(new ProducerRecord<>(topic, "k" + i, "v" + i)).get();
        }
        String group = "java-848-" + UUID.randomUUID();
        List<KafkaConsumer<String, String>> cs = new ArrayList<>();
        for (int i = 0; i < 3; i++) {
            cs.add(newProtocolConsumer(group));
            cs.get(i).subscribe(List.of(topic));
        }
        Set<String> seen = new HashSet<>();
        // read until every member's position is at the end of its partitions (a partition that
        // moved before its first owner committed is read again by the new one)
        Map<TopicPartition, Long> ends = cs.get(0).endOffsets(
            List.of(0, 1, 2, 3, 4, 5).stream().map(p -> new TopicPartition(topic, p)).toList());
        java.util.function.BooleanSupplier caughtUp = () -> cs.stream().allMatch(c ->
            c.assignment().stream().allMatch(tp -> c.position(tp) == ends.get(tp)));
        pollUntil(cs, seen, () -> sizes(cs).equals(List.of(2, 2, 2)) && seen.size() == 120 && caughtUp.getAsBoolean());
        check(sizes(cs).equals(List.of(2, 2, 2)), "three members get two partitions each: " + sizes(cs));
        check(seen.size() == 120, "the members read all 120 records, got " + seen.size());
        // commits at the member epoch, once everything is read
        for (KafkaConsumer<String, String> c : cs) c.commitSync();
        Set<TopicPartition> union = new HashSet<>();
        for (KafkaConsumer<String, String> c : cs) union.addAll(c.assignment());
        check(union.size() == 6, "the assignments cover all six partitions");
        var described = admin.describeConsumerGroups(List.of(group)).all().get().get(group);
        check(described.type() == org.apache.kafka.common.GroupType.CONSUMER, "describe says a consumer-protocol group: " + described);
        check(described.members().size() == 3, "describe lists three members: " + described);
        check(described.groupState() == org.apache.kafka.common.GroupState.STABLE, "the group is stable: " + described.groupState());
        int described_partitions = 0;
        for (var m : described.members()) described_partitions += m.assignment().topicPartitions().size();
        check(described_partitions == 6, "describe shows each member's partitions: " + described);
        // a fourth member: the coordinator moves partitions to it, two members give one up each
        KafkaConsumer<String, String> fourth = newProtocolConsumer(group);
        fourth.subscribe(List.of(topic));
        cs.add(fourth);
        pollUntil(cs, seen, () -> sizes(cs).equals(List.of(1, 1, 2, 2)));
        check(sizes(cs).equals(List.of(1, 1, 2, 2)), "after a fourth joins: " + sizes(cs));
        // the fourth leaves and the others take its partitions back
        fourth.close();
        cs.remove(fourth);
        pollUntil(cs, seen, () -> sizes(cs).equals(List.of(2, 2, 2)));
        check(sizes(cs).equals(List.of(2, 2, 2)), "after the fourth leaves: " + sizes(cs));
        var listed = admin.listGroups(ListGroupsOptions.forConsumerGroups()).all().get();
        check(listed.stream().anyMatch(g -> g.groupId().equals(group) && g.type().orElse(null) == org.apache.kafka.common.GroupType.CONSUMER),
              "listGroups reports the group with type consumer: " + listed);
        for (KafkaConsumer<String, String> c : cs) c.close();
        var offsets = admin.listConsumerGroupOffsets(group).partitionsToOffsetAndMetadata().get();
        check(offsets.values().stream().mapToLong(o -> o.offset()).sum() == 120, "committed offsets sum to 120: " + offsets);
        var after = admin.describeConsumerGroups(List.of(group)).all().get().get(group);
        check(after.members().isEmpty() && after.groupState() == org.apache.kafka.common.GroupState.EMPTY, "empty after close: " + after);
        admin.deleteConsumerGroups(List.of(group)).all().get();
        // a regex subscription the coordinator resolves (RE2 syntax, KIP-848)
        try (KafkaConsumer<String, String> c = newProtocolConsumer(group + "-regex")) {
            c.subscribe(new SubscriptionPattern("java-8[0-9]8-.*"));
            Set<String> byPattern = new HashSet<>();
            pollUntil(List.of(c), byPattern, () -> byPattern.size() == 120);
            check(c.assignment().size() == 6 && byPattern.size() == 120,
                  "a SubscriptionPattern member gets the matching topic: " + c.assignment() + ", " + byPattern.size());
        }
    }

    static void tooLarge(Admin admin) throws Exception {
        String topic = create(admin, "java-big", 1, Map.of("max.message.bytes", "5000"));
        try (KafkaProducer<String, String> p = producer("none", Map.of(ProducerConfig.RETRIES_CONFIG, 0))) {
            p.send(new ProducerRecord<>(topic, "x".repeat(20000))).get();
            check(false, "oversized record accepted");
        } catch (ExecutionException e) {
            check(e.getCause() instanceof RecordTooLargeException, "RecordTooLargeException, got " + e.getCause());
        }
    }
}
