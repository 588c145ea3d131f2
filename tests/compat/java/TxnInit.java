// A transactional Java producer's initTransactions(), timed (Java 11+ source launcher):
//
//   java -cp "$KAFKA_LIBS/*" tests/compat/java/TxnInit.java BOOTSTRAP TRANSACTIONAL_ID MAX_BLOCK_MS
//
// Prints one line: "RESULT OK <ms>" when initTransactions() returned, or
// "RESULT FAIL <ms> <exception class>: <message>[ <- cause class: message ...]" when it threw.
// Exit code 0 either way (the caller judges); 2 on bad usage.

import java.util.Properties;

import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.common.serialization.ByteArraySerializer;

public class TxnInit {
    public static void main(String[] args) {
        if (args.length != 3) {
            System.err.println("usage: TxnInit BOOTSTRAP TRANSACTIONAL_ID MAX_BLOCK_MS");
            System.exit(2);
        }
        Properties p = new Properties();
        p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, args[0]);
        p.put(ProducerConfig.TRANSACTIONAL_ID_CONFIG, args[1]);
        p.put(ProducerConfig.MAX_BLOCK_MS_CONFIG, args[2]);
        p.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
        p.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());
        long t0 = System.nanoTime();
        String result;
        try (KafkaProducer<byte[], byte[]> producer = new KafkaProducer<>(p)) {
            try {
                producer.initTransactions();
                result = "OK " + (System.nanoTime() - t0) / 1_000_000;
            } catch (Exception e) {
                StringBuilder why = new StringBuilder();
                for (Throwable t = e; t != null; t = t.getCause()) {
                    if (t != e) {
                        why.append(" <- ");
                    }
                    why.append(t.getClass().getName()).append(": ").append(t.getMessage());
                }
                result = "FAIL " + (System.nanoTime() - t0) / 1_000_000 + " " + why.toString().replace('\n', ' ');
            }
        }
        System.out.println("RESULT " + result);
        System.out.flush();
    }
}
