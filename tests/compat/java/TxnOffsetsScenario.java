// Read-process-write with sendOffsetsToTransaction (KIP-98, KIP-447), Java
// 11+ source launcher:
//
//   java -cp "$KAFKA_LIBS/*" TxnOffsetsScenario.java BOOTSTRAP MODE ARGS...
//
// rpw INPUT OUTPUT GROUP TID PARTITIONS GROUP_PROTOCOL
//     Fills INPUT (PER_PARTITION records per partition), then a subscribed
//     consumer (group.protocol GROUP_PROTOCOL: classic or consumer) and a
//     transactional producer copy it, upper-cased, to OUTPUT:
//     1. transactions commit until every partition has an offset: the
//        group's offsets move with each;
//     2. one transaction is aborted: while it runs, a read_committed
//        consumer's committed() (OffsetFetch requireStable) cannot read the
//        offsets (UNSTABLE_OFFSET_COMMIT; the Java consumer always asks
//        for stable offsets), the Admin client with requireStable=true
//        leaves those partitions out and with requireStable=false reads
//        the old offsets; after the abort the offsets are unchanged and the
//        consumer rewinds to them;
//     3. the rest, in committed transactions.
//     Then OUTPUT (read_committed) holds every input record exactly once
//     and the committed offsets are INPUT's end offsets.
// hold INPUT OUTPUT GROUP TID PARTITIONS COMMIT|ABORT FLAG_FILE
//     Reads INPUT from GROUP's committed offsets (assigned, no membership),
//     copies it to OUTPUT in a transaction with its offsets, prints
//     "PENDING", then waits for FLAG_FILE to exist and commits or aborts.
// committed GROUP TOPIC PARTITIONS
//     Prints "COMMITTED <partition> <offset>" (-1: none) as a read_committed
//     consumer's committed() reads them (waiting for stable offsets).
// Prints "RESULT OK" or "RESULT FAIL <why>"; exit code 0 either way
// (the caller judges), 2 on bad usage.

import java.nio.file.Files;
import java.nio.file.Paths;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.TreeMap;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.ListConsumerGroupOffsetsOptions;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerGroupMetadata;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.errors.TimeoutException;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;

public class TxnOffsetsScenario {
    static final int PER_PARTITION = 20;
    static String bootstrap;

    static class Fail extends RuntimeException {
        Fail(String why) {
            super(why);
        }
    }

    static void check(boolean ok, String why) {
        if (!ok) {
            throw new Fail(why);
        }
    }

    static List<TopicPartition> tps(String topic, int partitions) {
        List<TopicPartition> out = new ArrayList<>();
        for (int i = 0; i < partitions; i++) {
            out.add(new TopicPartition(topic, i));
        }
        return out;
    }

    static KafkaConsumer<String, String> consumer(String group, String isolation, String protocol) {
        Properties c = new Properties();
        c.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        if (group != null) {
            c.put(ConsumerConfig.GROUP_ID_CONFIG, group);
        }
        if (protocol != null) {
            c.put(ConsumerConfig.GROUP_PROTOCOL_CONFIG, protocol);
        }
        c.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, isolation);
        c.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
        c.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        c.put(ConsumerConfig.MAX_POLL_RECORDS_CONFIG, "7");
        c.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
        c.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
        return new KafkaConsumer<>(c);
    }

    static KafkaProducer<String, String> producer(String tid) {
        Properties p = new Properties();
        p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(ProducerConfig.ACKS_CONFIG, "all");
        if (tid != null) {
            p.put(ProducerConfig.TRANSACTIONAL_ID_CONFIG, tid);
        }
        p.put(ProducerConfig.DELIVERY_TIMEOUT_MS_CONFIG, "120000");
        p.put(ProducerConfig.MAX_BLOCK_MS_CONFIG, "120000");
        p.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
        p.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
        return new KafkaProducer<>(p);
    }

    static List<String> fill(String input, int partitions) {
        List<String> values = new ArrayList<>();
        try (KafkaProducer<String, String> p = producer(null)) {
            for (int part = 0; part < partitions; part++) {
                for (int i = 0; i < PER_PARTITION; i++) {
                    String v = "v-" + part + "-" + i;
                    values.add(v);
                    p.send(new ProducerRecord<>(input, part, "k" + i, v));
                }
            }
            p.flush();
        }
        return values;
    }

    /** Copies one poll's records to OUTPUT inside the running transaction;
     * the offsets past them, or an empty map when the poll was empty. */
    static Map<TopicPartition, OffsetAndMetadata> copy(KafkaConsumer<String, String> c,
            KafkaProducer<String, String> p, String output, Duration wait) {
        ConsumerRecords<String, String> recs = c.poll(wait);
        Map<TopicPartition, OffsetAndMetadata> offsets = new HashMap<>();
        for (ConsumerRecord<String, String> r : recs) {
            p.send(new ProducerRecord<>(output, r.partition(), r.key(), r.value().toUpperCase()));
            offsets.put(new TopicPartition(r.topic(), r.partition()), new OffsetAndMetadata(r.offset() + 1));
        }
        return offsets;
    }

    static Map<Integer, Long> committed(String group, String topic, int partitions, String isolation,
            Duration timeout) {
        try (KafkaConsumer<String, String> c = consumer(group, isolation, null)) {
            Map<TopicPartition, OffsetAndMetadata> got = c.committed(new HashSet<>(tps(topic, partitions)), timeout);
            Map<Integer, Long> out = new TreeMap<>();
            for (TopicPartition tp : tps(topic, partitions)) {
                OffsetAndMetadata o = got.get(tp);
                out.put(tp.partition(), o == null ? -1L : o.offset());
            }
            return out;
        }
    }

    /** The group's committed offsets as Admin.listConsumerGroupOffsets
     * reads them (-1: none, or left out as unstable). */
    static Map<Integer, Long> adminOffsets(String group, int partitions, boolean requireStable) {
        Properties a = new Properties();
        a.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        try (Admin admin = Admin.create(a)) {
            Map<TopicPartition, OffsetAndMetadata> got = admin.listConsumerGroupOffsets(group,
                    new ListConsumerGroupOffsetsOptions().requireStable(requireStable))
                .partitionsToOffsetAndMetadata().get();
            return asMap(got, partitions, Map.of());
        } catch (Exception e) {
            throw new Fail("listConsumerGroupOffsets: " + e);
        }
    }

    static Map<Integer, Long> asMap(Map<TopicPartition, OffsetAndMetadata> offsets, int partitions,
            Map<Integer, Long> base) {
        Map<Integer, Long> out = new TreeMap<>(base);
        for (int i = 0; i < partitions; i++) {
            out.putIfAbsent(i, -1L);
        }
        offsets.forEach((tp, o) -> out.put(tp.partition(), o.offset()));
        return out;
    }

    static List<String> readAll(String topic, int partitions) {
        List<String> seen = new ArrayList<>();
        try (KafkaConsumer<String, String> c = consumer(null, "read_committed", null)) {
            List<TopicPartition> all = tps(topic, partitions);
            c.assign(all);
            c.seekToBeginning(all);
            Map<TopicPartition, Long> end = c.endOffsets(all);
            long deadline = System.currentTimeMillis() + 60_000;
            while (System.currentTimeMillis() < deadline) {
                boolean done = true;
                for (TopicPartition tp : all) {
                    done &= c.position(tp) >= end.get(tp);
                }
                if (done) {
                    break;
                }
                for (ConsumerRecord<String, String> r : c.poll(Duration.ofMillis(500))) {
                    seen.add(r.value());
                }
            }
        }
        Collections.sort(seen);
        return seen;
    }

    static void rpw(String input, String output, String group, String tid, int partitions, String protocol) {
        List<String> values = fill(input, partitions);
        try (KafkaConsumer<String, String> c = consumer(group, "read_committed", protocol);
                KafkaProducer<String, String> p = producer(tid)) {
            p.initTransactions();
            c.subscribe(Collections.singletonList(input));
            // 1. A committed transaction moves the group's offsets.
            Map<TopicPartition, OffsetAndMetadata> first = new HashMap<>();
            long deadline = System.currentTimeMillis() + 60_000;
            while (first.size() < partitions && System.currentTimeMillis() < deadline) {
                p.beginTransaction();
                Map<TopicPartition, OffsetAndMetadata> offsets = copy(c, p, output, Duration.ofMillis(500));
                if (offsets.isEmpty()) {
                    p.abortTransaction();
                    continue;
                }
                p.sendOffsetsToTransaction(offsets, c.groupMetadata());
                p.commitTransaction();
                first.putAll(offsets);
            }
            check(first.size() == partitions, "the consumer did not get records of every partition in 60 s");
            Map<Integer, Long> afterCommit = asMap(first, partitions, Map.of());
            Map<Integer, Long> got = committed(group, input, partitions, "read_committed", Duration.ofSeconds(30));
            System.out.println("COMMITTED-1 " + got);
            check(got.equals(afterCommit), "after the commit the group's offsets are " + got + ", not " + afterCommit);

            // 2. An aborted transaction leaves them unchanged.
            p.beginTransaction();
            Map<TopicPartition, OffsetAndMetadata> second = new HashMap<>();
            while (second.isEmpty()) {
                second = copy(c, p, output, Duration.ofMillis(500));
            }
            p.sendOffsetsToTransaction(second, c.groupMetadata());
            p.flush();
            try {
                Map<Integer, Long> unstable = committed(group, input, partitions, "read_committed", Duration.ofSeconds(3));
                throw new Fail("a read_committed committed() read offsets of a running transaction: " + unstable);
            } catch (TimeoutException e) {
                System.out.println("STABLE-WAIT timed out as expected (UNSTABLE_OFFSET_COMMIT)");
            }
            // requireStable=true (KIP-447): the partitions the transaction
            // holds offsets for answer UNSTABLE_OFFSET_COMMIT, which the
            // Admin client leaves out of its result.
            Map<Integer, Long> stable = adminOffsets(group, partitions, true);
            for (TopicPartition tp : second.keySet()) {
                check(stable.get(tp.partition()) == -1L, "the admin (requireStable=true) read partition "
                        + tp.partition() + " of a running transaction: " + stable);
            }
            got = adminOffsets(group, partitions, false);
            check(got.equals(afterCommit), "the admin (requireStable=false) during the transaction: " + got
                    + ", not " + afterCommit);
            p.abortTransaction();
            got = committed(group, input, partitions, "read_committed", Duration.ofSeconds(30));
            System.out.println("COMMITTED-2 " + got);
            check(got.equals(afterCommit), "after the abort the group's offsets are " + got + ", not " + afterCommit);
            // Rewind to the committed offsets, as an application does after an abort.
            Map<TopicPartition, OffsetAndMetadata> rewind = c.committed(c.assignment(), Duration.ofSeconds(30));
            for (TopicPartition tp : c.assignment()) {
                OffsetAndMetadata o = rewind.get(tp);
                if (o == null) {
                    c.seekToBeginning(List.of(tp));
                } else {
                    c.seek(tp, o.offset());
                }
            }

            // 3. The rest, committed.
            Map<TopicPartition, Long> end = c.endOffsets(tps(input, partitions));
            deadline = System.currentTimeMillis() + 90_000;
            while (System.currentTimeMillis() < deadline) {
                boolean done = c.assignment().size() == partitions;
                for (TopicPartition tp : c.assignment()) {
                    done &= c.position(tp) >= end.get(tp);
                }
                if (done) {
                    break;
                }
                p.beginTransaction();
                Map<TopicPartition, OffsetAndMetadata> offsets = copy(c, p, output, Duration.ofMillis(500));
                if (offsets.isEmpty()) {
                    p.abortTransaction();
                    continue;
                }
                p.sendOffsetsToTransaction(offsets, c.groupMetadata());
                p.commitTransaction();
            }
            Map<Integer, Long> want = new TreeMap<>();
            end.forEach((tp, o) -> want.put(tp.partition(), o));
            got = committed(group, input, partitions, "read_committed", Duration.ofSeconds(30));
            System.out.println("COMMITTED-3 " + got);
            check(got.equals(want), "at the end the group's offsets are " + got + ", not the input's end " + want);
        }
        List<String> out = readAll(output, partitions);
        List<String> expect = new ArrayList<>();
        for (String v : values) {
            expect.add(v.toUpperCase());
        }
        Collections.sort(expect);
        check(out.equals(expect), "OUTPUT holds " + out.size() + " records, not each of the "
                + expect.size() + " inputs exactly once: " + out);
    }

    static void hold(String input, String output, String group, String tid, int partitions, boolean commit,
            String flag) throws Exception {
        try (KafkaConsumer<String, String> c = consumer(group, "read_committed", null);
                KafkaProducer<String, String> p = producer(tid)) {
            p.initTransactions();
            List<TopicPartition> all = tps(input, partitions);
            c.assign(all);
            Map<TopicPartition, OffsetAndMetadata> start = c.committed(new HashSet<>(all), Duration.ofSeconds(60));
            for (TopicPartition tp : all) {
                OffsetAndMetadata o = start.get(tp);
                if (o == null) {
                    c.seekToBeginning(List.of(tp));
                } else {
                    c.seek(tp, o.offset());
                }
            }
            p.beginTransaction();
            Map<TopicPartition, OffsetAndMetadata> offsets = new HashMap<>();
            long deadline = System.currentTimeMillis() + 30_000;
            while (offsets.size() < partitions && System.currentTimeMillis() < deadline) {
                offsets.putAll(copy(c, p, output, Duration.ofMillis(500)));
            }
            check(!offsets.isEmpty(), "no input records");
            p.sendOffsetsToTransaction(offsets, new ConsumerGroupMetadata(group));
            p.flush();
            System.out.println("PENDING " + asMap(offsets, partitions, Map.of()));
            System.out.flush();
            deadline = System.currentTimeMillis() + 180_000;
            while (!Files.exists(Paths.get(flag)) && System.currentTimeMillis() < deadline) {
                Thread.sleep(100);
            }
            check(Files.exists(Paths.get(flag)), "no go-ahead");
            if (commit) {
                p.commitTransaction();
            } else {
                p.abortTransaction();
            }
        }
    }

    public static void main(String[] a) throws Exception {
        if (a.length < 2) {
            System.err.println("usage: TxnOffsetsScenario BOOTSTRAP rpw|hold|committed ARGS...");
            System.exit(2);
        }
        bootstrap = a[0];
        try {
            switch (a[1]) {
                case "rpw":
                    rpw(a[2], a[3], a[4], a[5], Integer.parseInt(a[6]), a[7]);
                    break;
                case "hold":
                    hold(a[2], a[3], a[4], a[5], Integer.parseInt(a[6]), a[7].equals("COMMIT"), a[8]);
                    break;
                case "committed":
                    committed(a[2], a[3], Integer.parseInt(a[4]), "read_committed", Duration.ofSeconds(90))
                            .forEach((part, o) -> System.out.println("COMMITTED " + part + " " + o));
                    break;
                default:
                    System.err.println("unknown mode " + a[1]);
                    System.exit(2);
            }
            System.out.println("RESULT OK");
        } catch (Fail f) {
            System.out.println("RESULT FAIL " + f.getMessage());
        } catch (Exception e) {
            System.out.println("RESULT FAIL " + e);
            e.printStackTrace();
        }
    }
}
