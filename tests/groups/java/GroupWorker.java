// A Java (kafka-clients) group consumer run as its own JVM; the Java twin of
// workers/ck_worker.py with the same JSON-lines protocol.
//
//   java -cp "$KAFKA_LIBS/*:<classes>" GroupWorker '<json config>'
//
// The config is flat JSON with string/number values: bootstrap, group,
// topic, name, protocol (classic|consumer), assignor (range|roundrobin|
// cooperative-sticky|sticky), instance_id, session_timeout_ms, heartbeat_ms,
// max_poll_ms.  Events on stdout (one JSON object per line, each with "t"):
// started, assigned {parts, gen, member}, revoked, lost, recs, commit, status,
// closed.  Commands on stdin: status, close, exit-noclose.
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRebalanceListener;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.StringDeserializer;

public class GroupWorker {
    static synchronized void emit(String ev, String body) {
        StringBuilder sb = new StringBuilder();
        sb.append("{\"ev\":\"").append(ev).append("\",\"t\":").append(System.currentTimeMillis());
        if (body != null && !body.isEmpty()) sb.append(',').append(body);
        sb.append('}');
        System.out.println(sb);
        System.out.flush();
    }

    static String q(String s) {
        if (s == null) return "null";
        StringBuilder sb = new StringBuilder("\"");
        for (char ch : s.toCharArray()) {
            if (ch == '"' || ch == '\\') sb.append('\\').append(ch);
            else if (ch < 0x20) sb.append(String.format("\\u%04x", (int) ch));
            else sb.append(ch);
        }
        return sb.append('"').toString();
    }

    static String parts(Collection<TopicPartition> tps) {
        StringBuilder sb = new StringBuilder("[");
        boolean first = true;
        for (TopicPartition tp : tps) {
            if (!first) sb.append(',');
            sb.append(tp.partition());
            first = false;
        }
        return sb.append(']').toString();
    }

    static Map<String, String> parseFlatJson(String s) {
        Map<String, String> m = new HashMap<>();
        Matcher mt = Pattern.compile("\"([^\"]+)\"\\s*:\\s*(\"((?:[^\"\\\\]|\\\\.)*)\"|-?[0-9]+|null|true|false)").matcher(s);
        while (mt.find()) m.put(mt.group(1), mt.group(3) != null ? mt.group(3) : mt.group(2));
        return m;
    }

    static KafkaConsumer<String, String> consumer;
    static final Map<TopicPartition, OffsetAndMetadata> pending = new LinkedHashMap<>();

    static String genInfo() {
        try {
            var gm = consumer.groupMetadata();
            return "\"gen\":" + gm.generationId() + ",\"member\":" + q(gm.memberId());
        } catch (Exception e) {
            return "\"gen\":-1,\"member\":null";
        }
    }

    static boolean commit(Collection<TopicPartition> only) {
        Map<TopicPartition, OffsetAndMetadata> offs = new LinkedHashMap<>();
        for (var e : pending.entrySet())
            if (only == null || only.contains(e.getKey())) offs.put(e.getKey(), e.getValue());
        if (offs.isEmpty()) return true;
        StringBuilder shown = new StringBuilder("{");
        boolean first = true;
        for (var e : offs.entrySet()) {
            if (!first) shown.append(',');
            shown.append(q(e.getKey().topic() + ":" + e.getKey().partition())).append(':').append(e.getValue().offset());
            first = false;
        }
        shown.append('}');
        try {
            consumer.commitSync(offs, Duration.ofSeconds(30));
        } catch (Exception e) {
            emit("commit", "\"offsets\":" + shown + ",\"ok\":false,\"err\":" + q(e.getClass().getSimpleName() + ": " + e.getMessage()));
            return false;
        }
        for (var tp : offs.keySet()) pending.remove(tp);
        emit("commit", "\"offsets\":" + shown + ",\"ok\":true");
        return true;
    }

    public static void main(String[] args) throws Exception {
        Map<String, String> cfg = parseFlatJson(args[0]);
        Properties p = new Properties();
        p.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, cfg.get("bootstrap"));
        p.put(ConsumerConfig.GROUP_ID_CONFIG, cfg.get("group"));
        p.put(ConsumerConfig.CLIENT_ID_CONFIG, cfg.getOrDefault("name", "java-worker"));
        p.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
        p.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        p.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
        p.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
        p.put(ConsumerConfig.METADATA_MAX_AGE_CONFIG, "2000");
        String protocol = cfg.getOrDefault("protocol", "classic");
        p.put(ConsumerConfig.GROUP_PROTOCOL_CONFIG, protocol);
        if (protocol.equals("classic")) {
            p.put(ConsumerConfig.SESSION_TIMEOUT_MS_CONFIG, cfg.getOrDefault("session_timeout_ms", "6000"));
            p.put(ConsumerConfig.HEARTBEAT_INTERVAL_MS_CONFIG, cfg.getOrDefault("heartbeat_ms", "1000"));
            String a = cfg.getOrDefault("assignor", "range");
            String cls = switch (a) {
                case "range" -> "org.apache.kafka.clients.consumer.RangeAssignor";
                case "roundrobin" -> "org.apache.kafka.clients.consumer.RoundRobinAssignor";
                case "sticky" -> "org.apache.kafka.clients.consumer.StickyAssignor";
                case "cooperative-sticky" -> "org.apache.kafka.clients.consumer.CooperativeStickyAssignor";
                default -> a;
            };
            p.put(ConsumerConfig.PARTITION_ASSIGNMENT_STRATEGY_CONFIG, cls);
        } else if (cfg.containsKey("remote_assignor")) {
            p.put(ConsumerConfig.GROUP_REMOTE_ASSIGNOR_CONFIG, cfg.get("remote_assignor"));
        }
        p.put(ConsumerConfig.MAX_POLL_INTERVAL_MS_CONFIG, cfg.getOrDefault("max_poll_ms", "60000"));
        if (cfg.get("instance_id") != null && !cfg.get("instance_id").equals("null"))
            p.put(ConsumerConfig.GROUP_INSTANCE_ID_CONFIG, cfg.get("instance_id"));

        consumer = new KafkaConsumer<>(p);
        consumer.subscribe(List.of(cfg.get("topic")), new ConsumerRebalanceListener() {
            @Override
            public void onPartitionsRevoked(Collection<TopicPartition> tps) {
                commit(tps); // commit what we processed before giving them up
                for (var tp : tps) pending.remove(tp);
                emit("revoked", "\"parts\":" + parts(tps) + "," + genInfo());
            }

            @Override
            public void onPartitionsAssigned(Collection<TopicPartition> tps) {
                emit("assigned", "\"parts\":" + parts(tps) + "," + genInfo());
            }

            @Override
            public void onPartitionsLost(Collection<TopicPartition> tps) {
                for (var tp : tps) pending.remove(tp);
                emit("lost", "\"parts\":" + parts(tps) + "," + genInfo());
            }
        });

        ConcurrentLinkedQueue<String> cmds = new ConcurrentLinkedQueue<>();
        Thread reader = new Thread(() -> {
            try (BufferedReader br = new BufferedReader(new InputStreamReader(System.in))) {
                String line;
                while ((line = br.readLine()) != null) cmds.add(line.trim());
            } catch (Exception e) {
                // fall through
            }
            cmds.add("eof");
        });
        reader.setDaemon(true);
        reader.start();
        emit("started", "\"pid\":" + ProcessHandle.current().pid());

        while (true) {
            ConsumerRecords<String, String> recs = consumer.poll(Duration.ofMillis(100));
            if (!recs.isEmpty()) {
                StringBuilder sb = new StringBuilder("\"recs\":[");
                boolean first = true;
                for (ConsumerRecord<String, String> r : recs) {
                    if (!first) sb.append(',');
                    sb.append('[').append(r.partition()).append(',').append(r.offset()).append(',').append(q(r.value())).append(']');
                    first = false;
                    pending.put(new TopicPartition(r.topic(), r.partition()), new OffsetAndMetadata(r.offset() + 1));
                }
                emit("recs", sb.append(']').toString());
            }
            commit(null);
            String cmd = cmds.poll();
            if (cmd == null) continue;
            if (cmd.equals("status")) {
                emit("status", genInfo() + ",\"assignment\":" + parts(consumer.assignment()));
            } else if (cmd.equals("close") || cmd.equals("eof")) {
                commit(null);
                consumer.close(Duration.ofSeconds(30));
                emit("closed", null);
                System.exit(0);
            } else if (cmd.equals("exit-noclose")) {
                emit("closed", "\"noclose\":true");
                Runtime.getRuntime().halt(0);
            }
        }
    }
}
