// Small helper for bench/bench.py, run against the Kafka client jars:
//   javac -cp "$KAFKA_LIBS/*" -d OUT BenchTool.java
//   java -cp "$KAFKA_LIBS/*:OUT" BenchTool <command> ...
//
// Commands (each prints one JSON line on stdout, exits non-zero on failure):
//   ready   <bootstrap> <timeout-ms> [min-nodes]
//       waits until the broker answers Metadata (Admin.describeCluster) with
//       at least min-nodes brokers (default 1).
//   create-topic <bootstrap> <topic> <partitions> <timeout-ms> [rf] [k=v ...]
//       creates the topic (replication factor rf, default 1, with the given
//       topic configs) and waits until every partition has a leader and all
//       rf replicas in its ISR.
//   describe <bootstrap> <topic>
//       per partition: leader, replicas, ISR.
//   end-offset <bootstrap> <topic>
//       sums the latest offsets of all partitions.
//   consume <bootstrap> <topic> <expected-records> <idle-timeout-ms> [k=v ...]
//       a consumer WITHOUT a consumer group: assign() every partition,
//       seekToBeginning(), poll until <expected-records> were read (or nothing
//       arrived for idle-timeout-ms). Reports records, bytes (key+value, the
//       same count ConsumerPerformance uses) and the elapsed time from the
//       first poll() to the last record.
import java.time.Duration;
import java.util.*;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.clients.admin.*;
import org.apache.kafka.clients.consumer.*;
import org.apache.kafka.common.*;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;

public class BenchTool {
    public static void main(String[] args) throws Exception {
        if (args.length < 1) usage();
        switch (args[0]) {
            case "ready": ready(args[1], Long.parseLong(args[2]), args.length > 3 ? Integer.parseInt(args[3]) : 1); break;
            case "create-topic": createTopic(args); break;
            case "describe": describe(args[1], args[2]); break;
            case "end-offset": endOffset(args[1], args[2]); break;
            case "consume": consume(args); break;
            default: usage();
        }
    }

    static void usage() {
        System.err.println("usage: BenchTool ready|create-topic|describe|end-offset|consume ...");
        System.exit(2);
    }

    static Admin admin(String bootstrap) {
        Properties p = new Properties();
        p.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(AdminClientConfig.REQUEST_TIMEOUT_MS_CONFIG, "5000");
        p.put(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, "10000");
        return Admin.create(p);
    }

    static String esc(String s) {
        return s == null ? "" : s.replace("\\", "\\\\").replace("\"", "\\\"").replace("\n", " ");
    }

    static void ready(String bootstrap, long timeoutMs, int minNodes) throws Exception {
        long deadline = System.currentTimeMillis() + timeoutMs;
        String last = "";
        try (Admin a = admin(bootstrap)) {
            while (System.currentTimeMillis() < deadline) {
                try {
                    Collection<Node> nodes = a.describeCluster().nodes().get(5, TimeUnit.SECONDS);
                    if (!nodes.isEmpty() && nodes.size() >= minNodes) {
                        System.out.println("{\"ok\":true,\"nodes\":" + nodes.size() + "}");
                        return;
                    }
                    last = nodes.size() + " of " + minNodes + " nodes in metadata";
                } catch (Exception e) {
                    last = e.toString();
                }
                Thread.sleep(250);
            }
        }
        System.out.println("{\"ok\":false,\"error\":\"" + esc(last) + "\"}");
        System.exit(1);
    }

    static void createTopic(String[] args) throws Exception {
        String bootstrap = args[1], topic = args[2];
        int partitions = Integer.parseInt(args[3]);
        long timeoutMs = Long.parseLong(args[4]);
        short rf = args.length > 5 ? Short.parseShort(args[5]) : 1;
        Map<String, String> configs = new HashMap<>();
        for (int i = 6; i < args.length; i++) {
            int eq = args[i].indexOf('=');
            configs.put(args[i].substring(0, eq), args[i].substring(eq + 1));
        }
        long deadline = System.currentTimeMillis() + timeoutMs;
        try (Admin a = admin(bootstrap)) {
            try {
                NewTopic nt = new NewTopic(topic, partitions, rf);
                if (!configs.isEmpty()) nt.configs(configs);
                a.createTopics(List.of(nt)).all().get(timeoutMs, TimeUnit.MILLISECONDS);
            } catch (Exception e) {
                Throwable c = e.getCause() != null ? e.getCause() : e;
                if (!(c instanceof org.apache.kafka.common.errors.TopicExistsException)) {
                    System.out.println("{\"ok\":false,\"error\":\"create: " + esc(c.toString()) + "\"}");
                    System.exit(1);
                }
            }
            String last = "";
            while (System.currentTimeMillis() < deadline) {
                try {
                    TopicDescription d = a.describeTopics(List.of(topic)).allTopicNames().get(5, TimeUnit.SECONDS).get(topic);
                    boolean ok = d.partitions().size() == partitions;
                    int noLeader = 0, shortIsr = 0;
                    for (TopicPartitionInfo pi : d.partitions()) {
                        if (pi.leader() == null || pi.leader().isEmpty()) noLeader++;
                        else if (pi.isr().size() < rf) shortIsr++;
                    }
                    ok &= noLeader == 0 && shortIsr == 0;
                    if (ok) {
                        System.out.println("{\"ok\":true,\"partitions\":" + d.partitions().size() + "}");
                        return;
                    }
                    last = d.partitions().size() + " partitions, " + noLeader + " without leader, "
                        + shortIsr + " with fewer than " + rf + " replicas in the ISR: " + layout(d);
                } catch (Exception e) {
                    last = e.toString();
                }
                Thread.sleep(200);
            }
            System.out.println("{\"ok\":false,\"error\":\"describe: " + esc(last) + "\"}");
            System.exit(1);
        }
    }

    static String ids(List<Node> nodes) {
        StringBuilder b = new StringBuilder("[");
        for (Node n : nodes) b.append(b.length() > 1 ? "," : "").append(n.id());
        return b.append("]").toString();
    }

    // p<partition> leader <id> replicas [..] isr [..]; ...
    static String layout(TopicDescription d) {
        StringBuilder b = new StringBuilder();
        for (TopicPartitionInfo pi : d.partitions()) {
            if (b.length() > 0) b.append("; ");
            b.append("p").append(pi.partition()).append(" leader ")
             .append(pi.leader() == null || pi.leader().isEmpty() ? "none" : String.valueOf(pi.leader().id()))
             .append(" replicas ").append(ids(pi.replicas())).append(" isr ").append(ids(pi.isr()));
        }
        return b.toString();
    }

    static void describe(String bootstrap, String topic) throws Exception {
        try (Admin a = admin(bootstrap)) {
            TopicDescription d = a.describeTopics(List.of(topic)).allTopicNames().get(30, TimeUnit.SECONDS).get(topic);
            StringBuilder leaders = new StringBuilder("{");
            Map<Integer, Integer> count = new TreeMap<>();
            int minIsr = Integer.MAX_VALUE, maxReplicas = 0;
            for (TopicPartitionInfo pi : d.partitions()) {
                if (pi.leader() != null && !pi.leader().isEmpty()) count.merge(pi.leader().id(), 1, Integer::sum);
                minIsr = Math.min(minIsr, pi.isr().size());
                maxReplicas = Math.max(maxReplicas, pi.replicas().size());
            }
            for (Map.Entry<Integer, Integer> e : count.entrySet())
                leaders.append(leaders.length() > 1 ? "," : "").append("\"").append(e.getKey()).append("\":").append(e.getValue());
            leaders.append("}");
            System.out.println("{\"ok\":true,\"partitions\":" + d.partitions().size()
                + ",\"leaders\":" + leaders + ",\"min_isr\":" + (d.partitions().isEmpty() ? 0 : minIsr)
                + ",\"replicas\":" + maxReplicas + ",\"layout\":\"" + esc(layout(d)) + "\"}");
        }
    }

    static List<TopicPartition> partitionsOf(KafkaConsumer<?, ?> c, String topic) throws Exception {
        for (int i = 0; i < 50; i++) {
            List<PartitionInfo> ps = c.partitionsFor(topic, Duration.ofSeconds(10));
            if (ps != null && !ps.isEmpty()) {
                List<TopicPartition> tps = new ArrayList<>();
                for (PartitionInfo p : ps) tps.add(new TopicPartition(topic, p.partition()));
                return tps;
            }
            Thread.sleep(200);
        }
        throw new IllegalStateException("no partitions for topic " + topic);
    }

    static Properties consumerProps(String bootstrap) {
        Properties p = new Properties();
        p.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
        p.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
        p.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
        p.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        // Same defaults ConsumerPerformance applies (--fetch-size, --socket-buffer-size).
        p.put(ConsumerConfig.MAX_PARTITION_FETCH_BYTES_CONFIG, "1048576");
        p.put(ConsumerConfig.RECEIVE_BUFFER_CONFIG, "2097152");
        return p;
    }

    static void endOffset(String bootstrap, String topic) throws Exception {
        try (KafkaConsumer<byte[], byte[]> c = new KafkaConsumer<>(consumerProps(bootstrap))) {
            long sum = 0;
            for (long v : c.endOffsets(partitionsOf(c, topic), Duration.ofSeconds(30)).values()) sum += v;
            System.out.println("{\"ok\":true,\"end_offset\":" + sum + "}");
        }
    }

    static void consume(String[] args) throws Exception {
        String bootstrap = args[1], topic = args[2];
        long expected = Long.parseLong(args[3]);
        long idleMs = Long.parseLong(args[4]);
        Properties p = consumerProps(bootstrap);
        for (int i = 5; i < args.length; i++) {
            int eq = args[i].indexOf('=');
            p.put(args[i].substring(0, eq), args[i].substring(eq + 1));
        }
        long records = 0, bytes = 0;
        long start, lastRecord;
        String error = null;
        try (KafkaConsumer<byte[], byte[]> c = new KafkaConsumer<>(p)) {
            List<TopicPartition> tps = partitionsOf(c, topic);
            c.assign(tps);
            c.seekToBeginning(tps);
            start = System.nanoTime();
            lastRecord = start;
            long lastProgress = System.currentTimeMillis();
            while (records < expected) {
                ConsumerRecords<byte[], byte[]> rs = c.poll(Duration.ofMillis(100));
                if (rs.isEmpty()) {
                    if (System.currentTimeMillis() - lastProgress > idleMs) {
                        error = "no records for " + idleMs + " ms after " + records + " of " + expected;
                        break;
                    }
                    continue;
                }
                for (ConsumerRecord<byte[], byte[]> r : rs) {
                    records++;
                    if (r.key() != null) bytes += r.key().length;
                    if (r.value() != null) bytes += r.value().length;
                }
                lastRecord = System.nanoTime();
                lastProgress = System.currentTimeMillis();
            }
        }
        double secs = Math.max(1e-9, (lastRecord - start) / 1e9);
        double mb = bytes / (1024.0 * 1024.0);
        System.out.printf(Locale.ROOT,
            "{\"ok\":%s,\"records\":%d,\"bytes\":%d,\"elapsed_ms\":%.1f,\"mb_per_sec\":%.4f,\"records_per_sec\":%.1f%s}%n",
            error == null ? "true" : "false", records, bytes, secs * 1000, mb / secs, records / secs,
            error == null ? "" : ",\"error\":\"" + esc(error) + "\"");
        if (error != null) System.exit(1);
    }
}
