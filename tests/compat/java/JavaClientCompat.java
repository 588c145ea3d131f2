// Kafka Java client (kafka-clients 4.x) compatibility check, run as a single
// source file (Java 11+ source launcher):
//
//   java -cp "$KAFKA_LIBS/*" tests/compat/java/JavaClientCompat.java BOOTSTRAP [scenario ...]
//
// Scenarios (default: all): admin, produce-<codec>-idempotent for codec in
// none/gzip/snappy/lz4/zstd (the 4.x default producer: acks=all, idempotent),
// produce-none-plain (acks=all, enable.idempotence=false), list-offsets.
// Each prints "RESULT <scenario> OK" or "RESULT <scenario> FAIL <why>";
// the exit code is 0 only if every scenario passed.

import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.*;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.function.Supplier;

import org.apache.kafka.clients.admin.*;
import org.apache.kafka.clients.consumer.*;
import org.apache.kafka.clients.producer.*;
import org.apache.kafka.common.*;
import org.apache.kafka.common.config.ConfigResource;
import org.apache.kafka.common.errors.*;
import org.apache.kafka.common.header.Header;
import org.apache.kafka.common.header.internals.RecordHeader;
import org.apache.kafka.common.record.TimestampType;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;

public class JavaClientCompat {
    static final int TIMEOUT_S = 30;
    static String bootstrap;
    static final String RUN_ID = UUID.randomUUID().toString().substring(0, 8);

    public static void main(String[] args) throws Exception {
        if (args.length < 1) {
            System.err.println("usage: JavaClientCompat BOOTSTRAP [scenario ...]");
            System.exit(2);
        }
        bootstrap = args[0];
        LinkedHashMap<String, Check> all = new LinkedHashMap<>();
        all.put("admin", JavaClientCompat::adminScenario);
        for (String codec : List.of("none", "gzip", "snappy", "lz4", "zstd")) {
            all.put("produce-" + codec + "-idempotent", () -> produceConsume(codec, true));
        }
        all.put("produce-none-plain", () -> produceConsume("none", false));
        all.put("list-offsets", JavaClientCompat::listOffsets);

        List<String> chosen = args.length > 1 ? Arrays.asList(args).subList(1, args.length)
                                              : new ArrayList<>(all.keySet());
        int failed = 0;
        for (String name : chosen) {
            Check c = all.get(name);
            long t0 = System.nanoTime();
            String verdict;
            if (c == null) {
                verdict = "FAIL unknown scenario";
            } else {
                try {
                    c.run();
                    verdict = "OK";
                } catch (Throwable t) {
                    verdict = "FAIL " + describe(t);
                }
            }
            if (!verdict.equals("OK")) failed++;
            System.out.println("RESULT " + name + " " + verdict.replace('\n', ' ')
                               + String.format(" (%.1fs)", (System.nanoTime() - t0) / 1e9));
            System.out.flush();
        }
        System.out.println(failed == 0 ? "OK" : ("FAILED " + failed));
        System.exit(failed == 0 ? 0 : 1);
    }

    interface Check { void run() throws Exception; }

    static String describe(Throwable t) {
        StringBuilder sb = new StringBuilder();
        for (Throwable c = t; c != null; c = c.getCause()) {
            if (sb.length() > 0) sb.append(" <- ");
            sb.append(c.getClass().getSimpleName()).append(": ").append(c.getMessage());
            if (c.getCause() == c) break;
        }
        StackTraceElement[] st = t.getStackTrace();
        for (StackTraceElement e : st) {
            if (e.getClassName().startsWith("JavaClientCompat")
                    && !Set.of("eq", "check", "getQuietly", "causeOf").contains(e.getMethodName())) {
                sb.append(" at line ").append(e.getLineNumber());
                break;
            }
        }
        return sb.toString();
    }

    static void check(boolean ok, Supplier<String> msg) {
        if (!ok) throw new AssertionError(msg.get());
    }

    static void eq(Object want, Object got, String what) {
        if (!Objects.equals(want, got)) throw new AssertionError(what + ": want " + want + ", got " + got);
    }

    static String topicName(String tag) {
        return "compat-java-" + tag + "-" + RUN_ID + "-" + UUID.randomUUID().toString().substring(0, 4);
    }

    static Admin admin() {
        Properties p = new Properties();
        p.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, TIMEOUT_S * 1000);
        p.put(AdminClientConfig.REQUEST_TIMEOUT_MS_CONFIG, TIMEOUT_S * 1000);
        return Admin.create(p);
    }

    static void createTopic(Admin a, String topic, int partitions, Map<String, String> configs) throws Exception {
        a.createTopics(List.of(new NewTopic(topic, partitions, (short) 1).configs(configs)))
         .all().get(TIMEOUT_S, TimeUnit.SECONDS);
        waitPartitions(a, topic, partitions);
    }

    static void waitPartitions(Admin a, String topic, int partitions) throws Exception {
        long deadline = System.currentTimeMillis() + TIMEOUT_S * 1000L;
        String last = "";
        while (System.currentTimeMillis() < deadline) {
            try {
                TopicDescription d = a.describeTopics(List.of(topic)).allTopicNames()
                                      .get(TIMEOUT_S, TimeUnit.SECONDS).get(topic);
                last = d.toString();
                if (d.partitions().size() == partitions
                        && d.partitions().stream().allMatch(p -> p.leader() != null && p.leader().id() >= 0)) {
                    return;
                }
            } catch (java.util.concurrent.ExecutionException e) {
                last = e.getCause().toString();
            }
            Thread.sleep(200);
        }
        throw new AssertionError("topic " + topic + " not ready with " + partitions + " partitions: " + last);
    }

    static Throwable causeOf(Runnable r) {
        try {
            r.run();
        } catch (Throwable t) {
            Throwable c = t;
            while ((c instanceof java.util.concurrent.ExecutionException || c instanceof RuntimeException
                    && !(c instanceof KafkaException)) && c.getCause() != null) {
                c = c.getCause();
            }
            return c;
        }
        return null;
    }

    static void getQuietly(KafkaFuture<?> f) {
        try {
            f.get(TIMEOUT_S, TimeUnit.SECONDS);
        } catch (Exception e) {
            throw new RuntimeException(e);
        }
    }

    // ------------------------------------------------------------------ admin

    static void adminScenario() throws Exception {
        try (Admin a = admin()) {
            String topic = topicName("admin");
            createTopic(a, topic, 3, Map.of("retention.ms", "3600000", "cleanup.policy", "compact"));

            Collection<Node> nodes = a.describeCluster().nodes().get(TIMEOUT_S, TimeUnit.SECONDS);
            check(nodes.size() >= 1, () -> "describeCluster: no nodes");
            int brokerId = nodes.iterator().next().id();

            TopicDescription d = a.describeTopics(List.of(topic)).allTopicNames().get().get(topic);
            eq(3, d.partitions().size(), "partition count");
            for (TopicPartitionInfo p : d.partitions()) {
                eq(brokerId, p.leader().id(), "leader of " + p.partition());
                eq(1, p.replicas().size(), "replicas of " + p.partition());
                eq(1, p.isr().size(), "isr of " + p.partition());
            }
            check(a.listTopics().names().get().contains(topic), () -> "listTopics lacks " + topic);

            ConfigResource res = new ConfigResource(ConfigResource.Type.TOPIC, topic);
            Config cfg = a.describeConfigs(List.of(res)).all().get().get(res);
            eq("3600000", cfg.get("retention.ms").value(), "retention.ms");
            eq(ConfigEntry.ConfigSource.DYNAMIC_TOPIC_CONFIG, cfg.get("retention.ms").source(), "retention.ms source");
            eq("compact", cfg.get("cleanup.policy").value(), "cleanup.policy");
            check(cfg.get("segment.bytes") != null, () -> "segment.bytes missing from describeConfigs");
            eq("1073741824", cfg.get("segment.bytes").value(), "segment.bytes default");
            eq(ConfigEntry.ConfigSource.DEFAULT_CONFIG, cfg.get("segment.bytes").source(), "segment.bytes source");

            a.incrementalAlterConfigs(Map.of(res, List.of(
                    new AlterConfigOp(new ConfigEntry("retention.ms", "7200000"), AlterConfigOp.OpType.SET),
                    new AlterConfigOp(new ConfigEntry("cleanup.policy", ""), AlterConfigOp.OpType.DELETE))))
             .all().get(TIMEOUT_S, TimeUnit.SECONDS);
            cfg = a.describeConfigs(List.of(res)).all().get().get(res);
            eq("7200000", cfg.get("retention.ms").value(), "retention.ms after alter");
            eq("delete", cfg.get("cleanup.policy").value(), "cleanup.policy after delete");
            eq(ConfigEntry.ConfigSource.DEFAULT_CONFIG, cfg.get("cleanup.policy").source(), "cleanup.policy source");

            Throwable dup = causeOf(() -> getQuietly(
                    a.createTopics(List.of(new NewTopic(topic, 1, (short) 1))).all()));
            check(dup instanceof TopicExistsException, () -> "duplicate create: " + dup);

            a.createPartitions(Map.of(topic, NewPartitions.increaseTo(4))).all().get(TIMEOUT_S, TimeUnit.SECONDS);
            waitPartitions(a, topic, 4);
            Throwable shrink = causeOf(() -> getQuietly(
                    a.createPartitions(Map.of(topic, NewPartitions.increaseTo(2))).all()));
            check(shrink instanceof InvalidPartitionsException, () -> "shrink partitions: " + shrink);

            a.deleteTopics(List.of(topic)).all().get(TIMEOUT_S, TimeUnit.SECONDS);
            long deadline = System.currentTimeMillis() + 15000;
            while (a.listTopics().names().get().contains(topic)) {
                check(System.currentTimeMillis() < deadline, () -> "deleted topic still listed after 15s");
                Thread.sleep(200);
            }
            Throwable missing = causeOf(() -> getQuietly(a.deleteTopics(List.of(topic + "-missing")).all()));
            check(missing instanceof UnknownTopicOrPartitionException, () -> "delete missing topic: " + missing);
        }
    }

    // ------------------------------------------------------------------ produce / consume

    static final class Rec {
        final int partition; final byte[] key; final byte[] value; final List<Header> headers; final long ts;
        Rec(int partition, byte[] key, byte[] value, List<Header> headers, long ts) {
            this.partition = partition; this.key = key; this.value = value; this.headers = headers; this.ts = ts;
        }
    }

    static byte[] b(String s) { return s.getBytes(StandardCharsets.UTF_8); }

    static List<Rec> makeRecords(int n, int partitions, long base) {
        List<Rec> out = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            byte[] key = (i % 5 == 2) ? null : b("key-" + i);
            byte[] value;
            if (i % 7 == 3) value = null;
            else if (i % 11 == 4) value = new byte[0];
            else if (i % 13 == 6) {
                value = new byte[100_000];
                for (int k = 0; k < value.length; k++) value[k] = (byte) (k % 251);
            } else if (i % 4 == 1) {
                value = new byte[64];
                for (int k = 0; k < 64; k++) value[k] = (byte) (i * 31 + k);
            } else value = b("value-" + i + "-" + "x".repeat(i % 17));
            List<Header> hs = new ArrayList<>();
            if (i % 3 == 1) {
                hs.add(new RecordHeader("h", b("v" + i)));
                hs.add(new RecordHeader("h", b("dup")));
                hs.add(new RecordHeader("empty", new byte[0]));
            } else if (i % 3 == 2) {
                hs.add(new RecordHeader("bin", new byte[]{0, 1, (byte) 0xff, (byte) 0x80}));
                hs.add(new RecordHeader("null", null));
            }
            out.add(new Rec(i % partitions, key, value, hs, base + i * 7L));
        }
        return out;
    }

    static String show(byte[] x) {
        if (x == null) return "null";
        return x.length <= 40 ? Arrays.toString(x) : ("<" + x.length + " bytes>");
    }

    static String showHeaders(Iterable<Header> hs) {
        StringBuilder sb = new StringBuilder("[");
        for (Header h : hs) sb.append(h.key()).append('=').append(show(h.value())).append(' ');
        return sb.append(']').toString();
    }

    static boolean sameHeaders(List<Header> want, Header[] got) {
        if (want.size() != got.length) return false;
        for (int i = 0; i < got.length; i++) {
            if (!want.get(i).key().equals(got[i].key())) return false;
            if (!Arrays.equals(want.get(i).value(), got[i].value())) return false;
        }
        return true;
    }

    static KafkaConsumer<byte[], byte[]> consumer() {
        Properties p = new Properties();
        p.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        // no group.id: assign()/seek() only, nothing is committed
        p.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
        p.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "none");
        p.put(ConsumerConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, TIMEOUT_S * 1000);
        return new KafkaConsumer<>(p, new ByteArrayDeserializer(), new ByteArrayDeserializer());
    }

    static void produceConsume(String codec, boolean idempotent) throws Exception {
        String topic = topicName(codec + (idempotent ? "-idem" : "-plain"));
        int partitions = 2, n = 60;
        try (Admin a = admin()) {
            createTopic(a, topic, partitions, Map.of());
        }
        long base = System.currentTimeMillis() - 60_000;
        List<Rec> recs = makeRecords(n, partitions, base);

        Properties pp = new Properties();
        pp.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        pp.put(ProducerConfig.ACKS_CONFIG, "all");
        pp.put(ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, Boolean.toString(idempotent));
        pp.put(ProducerConfig.COMPRESSION_TYPE_CONFIG, codec);
        pp.put(ProducerConfig.LINGER_MS_CONFIG, "20");
        pp.put(ProducerConfig.DELIVERY_TIMEOUT_MS_CONFIG, TIMEOUT_S * 1000);
        pp.put(ProducerConfig.REQUEST_TIMEOUT_MS_CONFIG, TIMEOUT_S * 1000 - 1000);
        pp.put(ProducerConfig.MAX_BLOCK_MS_CONFIG, TIMEOUT_S * 1000);
        List<Future<RecordMetadata>> futs = new ArrayList<>();
        try (KafkaProducer<byte[], byte[]> prod =
                     new KafkaProducer<>(pp, new ByteArraySerializer(), new ByteArraySerializer())) {
            for (Rec r : recs) {
                futs.add(prod.send(new ProducerRecord<>(topic, r.partition, r.ts, r.key, r.value, r.headers)));
            }
            prod.flush();
        }
        int[] next = new int[partitions];
        for (int i = 0; i < n; i++) {
            RecordMetadata md = futs.get(i).get(TIMEOUT_S, TimeUnit.SECONDS);
            Rec r = recs.get(i);
            eq(r.partition, md.partition(), "metadata partition of record " + i);
            eq((long) next[r.partition]++, md.offset(), "metadata offset of record " + i);
            eq(r.ts, md.timestamp(), "metadata timestamp of record " + i);
        }

        try (KafkaConsumer<byte[], byte[]> c = consumer()) {
            List<TopicPartition> tps = new ArrayList<>();
            for (int p = 0; p < partitions; p++) tps.add(new TopicPartition(topic, p));
            c.assign(tps);
            c.seekToBeginning(tps);
            Map<Integer, List<ConsumerRecord<byte[], byte[]>>> got = new HashMap<>();
            int count = 0;
            long deadline = System.currentTimeMillis() + TIMEOUT_S * 1000L;
            while (count < n && System.currentTimeMillis() < deadline) {
                for (ConsumerRecord<byte[], byte[]> cr : c.poll(Duration.ofMillis(500))) {
                    got.computeIfAbsent(cr.partition(), k -> new ArrayList<>()).add(cr);
                    count++;
                }
            }
            final int total = count;
            check(total == n, () -> "consumed " + total + " of " + n + " records");
            for (int p = 0; p < partitions; p++) {
                List<ConsumerRecord<byte[], byte[]>> gl = got.getOrDefault(p, List.of());
                int off = 0;
                for (Rec r : recs) {
                    if (r.partition != p) continue;
                    ConsumerRecord<byte[], byte[]> cr = gl.get(off);
                    String ctx = "partition " + p + " offset " + off;
                    eq((long) off, cr.offset(), ctx + " offset");
                    check(Arrays.equals(r.key, cr.key()), () -> ctx + " key " + show(cr.key()) + " != " + show(r.key));
                    check(Arrays.equals(r.value, cr.value()),
                          () -> ctx + " value " + show(cr.value()) + " != " + show(r.value));
                    check(sameHeaders(r.headers, cr.headers().toArray()),
                          () -> ctx + " headers " + showHeaders(cr.headers()) + " != " + showHeaders(r.headers));
                    eq(r.ts, cr.timestamp(), ctx + " timestamp");
                    eq(TimestampType.CREATE_TIME, cr.timestampType(), ctx + " timestamp type");
                    off++;
                }
                eq(off, gl.size(), "records in partition " + p);
            }
            // seek into the middle of partition 1
            TopicPartition tp1 = new TopicPartition(topic, 1);
            c.assign(List.of(tp1));
            c.seek(tp1, 17);
            List<ConsumerRecord<byte[], byte[]>> mid = new ArrayList<>();
            deadline = System.currentTimeMillis() + TIMEOUT_S * 1000L;
            while (mid.size() < 13 && System.currentTimeMillis() < deadline) {
                c.poll(Duration.ofMillis(500)).forEach(mid::add);
            }
            eq(13, mid.size(), "records after seek(17)");
            eq(17L, mid.get(0).offset(), "first offset after seek(17)");
            eq(29L, mid.get(12).offset(), "last offset after seek(17)");
        }
    }

    // ------------------------------------------------------------------ offsets

    static void listOffsets() throws Exception {
        String topic = topicName("offsets");
        long base = System.currentTimeMillis() - 100_000;
        long[] deltas = {0, 1000, 2000, 1500, 4000, 5000, 9999, 6000, 7000, 8000};
        try (Admin a = admin()) {
            createTopic(a, topic, 1, Map.of());
            Properties pp = new Properties();
            pp.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
            pp.put(ProducerConfig.COMPRESSION_TYPE_CONFIG, "lz4");
            pp.put(ProducerConfig.LINGER_MS_CONFIG, "100");
            try (KafkaProducer<byte[], byte[]> prod =
                         new KafkaProducer<>(pp, new ByteArraySerializer(), new ByteArraySerializer())) {
                for (int i = 0; i < deltas.length; i++) {
                    prod.send(new ProducerRecord<>(topic, 0, base + deltas[i], null, b("v" + i)));
                }
                prod.flush();
            }
            TopicPartition tp = new TopicPartition(topic, 0);
            Map<String, OffsetSpec> specs = new LinkedHashMap<>();
            specs.put("earliest", OffsetSpec.earliest());
            specs.put("latest", OffsetSpec.latest());
            specs.put("max", OffsetSpec.maxTimestamp());
            specs.put("ts+1200", OffsetSpec.forTimestamp(base + 1200));
            specs.put("ts+8500", OffsetSpec.forTimestamp(base + 8500));
            specs.put("ts-5", OffsetSpec.forTimestamp(base - 5));
            specs.put("ts+far", OffsetSpec.forTimestamp(base + 10_000_000));
            Map<String, long[]> want = Map.of(
                    "earliest", new long[]{0}, "latest", new long[]{10},
                    "max", new long[]{6, base + 9999}, "ts+1200", new long[]{2, base + 2000},
                    "ts+8500", new long[]{6, base + 9999}, "ts-5", new long[]{0, base},
                    "ts+far", new long[]{-1});
            for (Map.Entry<String, OffsetSpec> e : specs.entrySet()) {
                ListOffsetsResult.ListOffsetsResultInfo info =
                        a.listOffsets(Map.of(tp, e.getValue())).partitionResult(tp).get(TIMEOUT_S, TimeUnit.SECONDS);
                long[] w = want.get(e.getKey());
                eq(w[0], info.offset(), "listOffsets " + e.getKey() + " offset");
                if (w.length > 1) eq(w[1], info.timestamp(), "listOffsets " + e.getKey() + " timestamp");
            }
            try (KafkaConsumer<byte[], byte[]> c = consumer()) {
                eq(0L, c.beginningOffsets(List.of(tp)).get(tp), "beginningOffsets");
                eq(10L, c.endOffsets(List.of(tp)).get(tp), "endOffsets");
                OffsetAndTimestamp oat = c.offsetsForTimes(Map.of(tp, base + 1200L)).get(tp);
                check(oat != null, () -> "offsetsForTimes(base+1200) returned null");
                eq(2L, oat.offset(), "offsetsForTimes offset");
                eq(base + 2000, oat.timestamp(), "offsetsForTimes timestamp");
                eq(null, c.offsetsForTimes(Map.of(tp, base + 10_000_000L)).get(tp), "offsetsForTimes(far future)");
            }
            a.deleteTopics(List.of(topic)).all().get(TIMEOUT_S, TimeUnit.SECONDS);
        }
    }
}
