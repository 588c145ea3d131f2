// Java KafkaProducer transactions end to end (Java 11+ source launcher):
//
//   java -cp "$KAFKA_LIBS/*" tests/compat/java/TxnScenario.java BOOTSTRAP TOPIC PARTITIONS TRANSACTIONAL_ID
//
// On TOPIC (PARTITIONS partitions, already created): commits transaction
// "c1", aborts "a", commits "c2", then leaves "open" running (flushed, not
// committed) while a read_committed consumer reads the topic to its end,
// then commits "open" and reads again. Every record goes to every
// partition. Prints
//   SEEN <phase> <isolation> <value>,<value>,...   (sorted, per read)
//   RESULT OK | RESULT FAIL <why>
// Exit code 0 either way (the caller judges); 2 on bad usage.

import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;

import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;

public class TxnScenario {
    static final int PER_TXN = 3;

    static void send(KafkaProducer<String, String> p, String topic, int partitions, String tag) {
        for (int part = 0; part < partitions; part++) {
            for (int i = 0; i < PER_TXN; i++) {
                p.send(new ProducerRecord<>(topic, part, "k", tag + "-" + part + "-" + i));
            }
        }
    }

    /** Reads every partition from the start up to the end offsets the consumer reports. */
    static List<String> readAll(String bootstrap, String topic, int partitions, String isolation) {
        Properties c = new Properties();
        c.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        c.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, isolation);
        c.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
        c.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
        c.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
        List<String> seen = new ArrayList<>();
        try (KafkaConsumer<String, String> consumer = new KafkaConsumer<>(c)) {
            List<TopicPartition> tps = new ArrayList<>();
            for (int i = 0; i < partitions; i++) {
                tps.add(new TopicPartition(topic, i));
            }
            consumer.assign(tps);
            consumer.seekToBeginning(tps);
            // For read_committed, endOffsets is the last stable offset.
            Map<TopicPartition, Long> end = new HashMap<>(consumer.endOffsets(tps));
            long deadline = System.currentTimeMillis() + 30_000;
            while (System.currentTimeMillis() < deadline) {
                boolean done = true;
                for (TopicPartition tp : tps) {
                    if (consumer.position(tp) < end.get(tp)) {
                        done = false;
                    }
                }
                if (done) {
                    break;
                }
                for (ConsumerRecord<String, String> r : consumer.poll(Duration.ofMillis(200))) {
                    seen.add(r.value());
                }
            }
            // One more poll: nothing past the end may show up.
            for (ConsumerRecord<String, String> r : consumer.poll(Duration.ofMillis(500))) {
                seen.add(r.value());
            }
        }
        Collections.sort(seen);
        return seen;
    }

    public static void main(String[] args) throws Exception {
        if (args.length != 4) {
            System.err.println("usage: TxnScenario BOOTSTRAP TOPIC PARTITIONS TRANSACTIONAL_ID");
            System.exit(2);
        }
        String bootstrap = args[0];
        String topic = args[1];
        int partitions = Integer.parseInt(args[2]);
        Properties p = new Properties();
        p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(ProducerConfig.TRANSACTIONAL_ID_CONFIG, args[3]);
        p.put(ProducerConfig.MAX_BLOCK_MS_CONFIG, "30000");
        p.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
        p.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
        String result = "OK";
        try (KafkaProducer<String, String> producer = new KafkaProducer<>(p)) {
            producer.initTransactions();
            producer.beginTransaction();
            send(producer, topic, partitions, "c1");
            producer.commitTransaction();
            producer.beginTransaction();
            send(producer, topic, partitions, "a");
            producer.flush();
            producer.abortTransaction();
            producer.beginTransaction();
            send(producer, topic, partitions, "c2");
            producer.commitTransaction();
            producer.beginTransaction();
            send(producer, topic, partitions, "open");
            producer.flush();
            System.out.println("SEEN open read_committed "
                    + String.join(",", readAll(bootstrap, topic, partitions, "read_committed")));
            System.out.println("SEEN open read_uncommitted "
                    + String.join(",", readAll(bootstrap, topic, partitions, "read_uncommitted")));
            producer.commitTransaction();
            // The markers follow the commit's answer: wait for them.
            List<String> done = List.of();
            for (int i = 0; i < 30 && done.size() < 3 * PER_TXN * partitions; i++) {
                done = readAll(bootstrap, topic, partitions, "read_committed");
            }
            System.out.println("SEEN done read_committed " + String.join(",", done));
        } catch (Exception e) {
            StringBuilder why = new StringBuilder();
            for (Throwable t = e; t != null; t = t.getCause()) {
                if (t != e) {
                    why.append(" <- ");
                }
                why.append(t.getClass().getName()).append(": ").append(t.getMessage());
            }
            result = "FAIL " + why.toString().replace('\n', ' ');
        }
        System.out.println("RESULT " + result);
        System.out.flush();
    }
}
