// Consumer-group workload for bench/bench.py, run against the Kafka client jars:
//   javac -cp "$KAFKA_LIBS/*" -d OUT GroupBench.java
//   java -cp "$KAFKA_LIBS/*:OUT" GroupBench run ...
//
// Commands:
//   run <bootstrap> <topic> <partitions> <expected-records> <consumers> <protocol>
//       <kill: true|false> <timeout-ms> [k=v ...]
//     protocol: classic (RangeAssignor, the client default's first choice),
//     classic-coop (CooperativeStickyAssignor) or consumer (KIP-848,
//     group.protocol=consumer, the broker's default server-side assignor).
//     Starts <consumers> KafkaConsumers, each on its own thread, in one fresh
//     group (one JVM) and measures, printing one JSON line on stdout:
//       1. startup: all threads call subscribe()+poll() at t0; ms until the
//          first record reaches any consumer, until every consumer has had a
//          record, until every consumer has a non-empty assignment;
//       2. steady-state consume: the topic's <expected-records> (unique
//          offsets; re-deliveries after a rebalance are counted apart) from
//          the first record to the last one, MB/s and records/s;
//       3. leave: once the group is stable, consumer 0 close()s; ms from the
//          start of close() until the remaining consumers' assignments cover
//          all partitions again (and how long close() itself took);
//       4. with kill=true, crash: one more member is started as a child JVM
//          (`member` below), and once it owns partitions it is killed with
//          SIGKILL; ms until the remaining consumers cover all partitions
//          again (bounded below by the session timeout).
//     Offsets are committed (commitSync) when partitions are revoked, so a
//     partition's new owner resumes where the old one stopped.
//   member <bootstrap> <topic> <group> <protocol> [k=v ...]
//     one group member; prints "ASSIGNED <n>" after every assignment change.
import java.time.Duration;
import java.util.*;
import java.util.concurrent.*;
import java.util.concurrent.atomic.*;
import java.io.*;
import org.apache.kafka.clients.consumer.*;
import org.apache.kafka.common.*;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;

public class GroupBench {
    public static void main(String[] args) throws Exception {
        if (args.length < 1) usage();
        switch (args[0]) {
            case "run": run(args); break;
            case "member": member(args); break;
            default: usage();
        }
    }

    static void usage() {
        System.err.println("usage: GroupBench run|member ...");
        System.exit(2);
    }

    static String esc(String s) {
        return s == null ? "" : s.replace("\\", "\\\\").replace("\"", "\\\"").replace("\n", " ");
    }

    static double ms(long fromNs, long toNs) {
        return (toNs - fromNs) / 1e6;
    }

    static Properties props(String bootstrap, String group, String protocol, String[] args, int from) {
        Properties p = new Properties();
        p.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(ConsumerConfig.GROUP_ID_CONFIG, group);
        p.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
        p.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
        p.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
        p.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        // Same as BenchTool consume / ConsumerPerformance.
        p.put(ConsumerConfig.MAX_PARTITION_FETCH_BYTES_CONFIG, "1048576");
        p.put(ConsumerConfig.RECEIVE_BUFFER_CONFIG, "2097152");
        switch (protocol) {
            case "classic":
            case "classic-coop":
                p.put(ConsumerConfig.GROUP_PROTOCOL_CONFIG, "classic");
                p.put(ConsumerConfig.PARTITION_ASSIGNMENT_STRATEGY_CONFIG, protocol.equals("classic")
                        ? RangeAssignor.class.getName() : CooperativeStickyAssignor.class.getName());
                // Small, so that a crashed member is noticed quickly (the
                // consumer protocol takes these from the broker config).
                p.put(ConsumerConfig.SESSION_TIMEOUT_MS_CONFIG, "6000");
                p.put(ConsumerConfig.HEARTBEAT_INTERVAL_MS_CONFIG, "2000");
                break;
            case "consumer":
                p.put(ConsumerConfig.GROUP_PROTOCOL_CONFIG, "consumer");
                break;
            default:
                throw new IllegalArgumentException("unknown protocol " + protocol);
        }
        for (int i = from; i < args.length; i++) {
            int eq = args[i].indexOf('=');
            p.put(args[i].substring(0, eq), args[i].substring(eq + 1));
        }
        return p;
    }

    /** Commits the positions of partitions being revoked. */
    static ConsumerRebalanceListener committingListener(KafkaConsumer<byte[], byte[]> c, Runnable onChange) {
        return committingListener(c, onChange, (start, end) -> { });
    }

    interface CommitTimer {
        void committed(long startNs, long endNs);
    }

    /** Commits the positions of partitions being revoked; reports how long
     * the commit took. */
    static ConsumerRebalanceListener committingListener(KafkaConsumer<byte[], byte[]> c, Runnable onChange,
                                                        CommitTimer timer) {
        return new ConsumerRebalanceListener() {
            public void onPartitionsRevoked(Collection<TopicPartition> parts) {
                if (!parts.isEmpty()) {
                    Map<TopicPartition, OffsetAndMetadata> offs = new HashMap<>();
                    for (TopicPartition tp : parts) {
                        try {
                            offs.put(tp, new OffsetAndMetadata(c.position(tp, Duration.ofSeconds(5))));
                        } catch (Exception e) {
                            // no position yet: nothing to commit
                        }
                    }
                    long t0 = System.nanoTime();
                    try {
                        if (!offs.isEmpty()) c.commitSync(offs, Duration.ofSeconds(10));
                    } catch (Exception e) {
                        // a failed commit only means re-delivery
                    }
                    timer.committed(t0, System.nanoTime());
                }
                onChange.run();
            }
            public void onPartitionsAssigned(Collection<TopicPartition> parts) {
                onChange.run();
            }
            public void onPartitionsLost(Collection<TopicPartition> parts) {
                onChange.run();
            }
        };
    }

    // ---------------------------------------------------------------- run

    static final class Shared {
        final String topic;
        final long expected;
        final AtomicLongArray next;          // per partition: next offset not yet seen
        final AtomicLong unique = new AtomicLong(), uniqueBytes = new AtomicLong();
        volatile long firstRecordNs = 0, lastRecordNs = 0;
        final CountDownLatch go = new CountDownLatch(1);
        volatile boolean stop = false;

        Shared(String topic, int partitions, long expected) {
            this.topic = topic;
            this.expected = expected;
            this.next = new AtomicLongArray(partitions);
        }
    }

    static final class Member implements Runnable {
        final int id;
        final Shared s;
        final KafkaConsumer<byte[], byte[]> c;
        volatile Set<TopicPartition> assignment = Set.of();
        volatile long firstRecordNs = 0, firstAssignedNs = 0;
        volatile long closeStartNs = 0, closeEndNs = 0;
        volatile long commitStartNs = 0, commitEndNs = 0;  // the last commit on revocation
        volatile boolean closeRequested = false, closed = false;
        volatile String error = null;
        long delivered = 0;

        Member(int id, Shared s, Properties p) {
            this.id = id;
            this.s = s;
            this.c = new KafkaConsumer<>(p);
        }

        void noteAssignment() {
            Set<TopicPartition> a = Set.copyOf(c.assignment());
            if (!a.isEmpty() && firstAssignedNs == 0) firstAssignedNs = System.nanoTime();
            assignment = a;
        }

        public void run() {
            try {
                s.go.await();
                c.subscribe(List.of(s.topic), committingListener(c, this::noteAssignment, (a, b) -> {
                    commitStartNs = a;
                    commitEndNs = b;
                }));
                while (!s.stop && !closeRequested) {
                    ConsumerRecords<byte[], byte[]> rs = c.poll(Duration.ofMillis(20));
                    noteAssignment();
                    if (rs.isEmpty()) continue;
                    long now = System.nanoTime();
                    if (firstRecordNs == 0) firstRecordNs = now;
                    synchronized (s) {
                        if (s.firstRecordNs == 0) s.firstRecordNs = now;
                    }
                    delivered += rs.count();
                    for (TopicPartition tp : rs.partitions()) account(tp, rs.records(tp), now);
                }
            } catch (Throwable t) {
                error = t.getClass().getSimpleName() + ": " + t.getMessage();
            } finally {
                closeStartNs = System.nanoTime();
                try {
                    c.close(Duration.ofSeconds(30));
                } catch (Throwable t) {
                    if (error == null && !s.stop) error = "close: " + t;
                }
                closeEndNs = System.nanoTime();
                assignment = Set.of();
                closed = true;
            }
        }

        void account(TopicPartition tp, List<ConsumerRecord<byte[], byte[]>> recs, long now) {
            if (recs.isEmpty()) return;
            int p = tp.partition();
            long last = recs.get(recs.size() - 1).offset();
            while (true) {
                long cur = s.next.get(p);
                if (last < cur) return;  // all seen before
                if (!s.next.compareAndSet(p, cur, last + 1)) continue;
                long n = 0, b = 0;
                for (ConsumerRecord<byte[], byte[]> r : recs) {
                    if (r.offset() < cur) continue;
                    n++;
                    if (r.key() != null) b += r.key().length;
                    if (r.value() != null) b += r.value().length;
                }
                s.uniqueBytes.addAndGet(b);
                long after = s.unique.addAndGet(n);
                if (after >= s.expected && after - n < s.expected) s.lastRecordNs = now;
                return;
            }
        }
    }

    static Set<TopicPartition> union(List<Member> ms) {
        Set<TopicPartition> u = new HashSet<>();
        for (Member m : ms) u.addAll(m.assignment);
        return u;
    }

    static int sumSizes(List<Member> ms) {
        int n = 0;
        for (Member m : ms) n += m.assignment.size();
        return n;
    }

    static String firstError(List<Member> ms) {
        for (Member m : ms) if (m.error != null) return "consumer " + m.id + ": " + m.error;
        return null;
    }

    /** Waits until the members' assignments partition all partitions (each
     * exactly once), every member owning at least one when requireAll. */
    static long waitCovered(List<Member> ms, int partitions, boolean requireAll, long timeoutMs,
                            int extraOwned) throws Exception {
        long deadline = System.nanoTime() + timeoutMs * 1_000_000L;
        while (System.nanoTime() < deadline) {
            String err = firstError(ms);
            if (err != null) throw new IllegalStateException(err);
            boolean all = true;
            if (requireAll) for (Member m : ms) all &= !m.assignment.isEmpty();
            if (all && union(ms).size() + extraOwned == partitions && sumSizes(ms) + extraOwned == partitions)
                return System.nanoTime();
            Thread.sleep(2);
        }
        return -1;
    }

    static void run(String[] args) throws Exception {
        String bootstrap = args[1], topic = args[2];
        int partitions = Integer.parseInt(args[3]);
        long expected = Long.parseLong(args[4]);
        int n = Integer.parseInt(args[5]);
        String protocol = args[6];
        boolean kill = Boolean.parseBoolean(args[7]);
        long timeoutMs = Long.parseLong(args[8]);
        String group = "bench-group-" + UUID.randomUUID().toString().substring(0, 8);
        Shared s = new Shared(topic, partitions, expected);
        List<Member> members = new ArrayList<>();
        List<Thread> threads = new ArrayList<>();
        StringBuilder out = new StringBuilder();
        String error = null;
        Process child = null;
        try {
            for (int i = 0; i < n; i++) {
                Member m = new Member(i, s, props(bootstrap, group, protocol, args, 9));
                members.add(m);
                Thread t = new Thread(m, "member-" + i);
                threads.add(t);
                t.start();
            }
            // --- 1 + 2: startup and consuming the data set
            long t0 = System.nanoTime();
            s.go.countDown();
            long deadline = t0 + timeoutMs * 1_000_000L;
            long lastProgress = System.nanoTime(), lastCount = -1;
            long allFirstNs = 0, allAssignedNs = 0;
            while (s.lastRecordNs == 0) {
                String err = firstError(members);
                if (err != null) throw new IllegalStateException(err);
                long now = System.nanoTime();
                if (allAssignedNs == 0 && members.stream().allMatch(m -> m.firstAssignedNs != 0))
                    allAssignedNs = members.stream().mapToLong(m -> m.firstAssignedNs).max().getAsLong();
                if (allFirstNs == 0 && members.stream().allMatch(m -> m.firstRecordNs != 0))
                    allFirstNs = members.stream().mapToLong(m -> m.firstRecordNs).max().getAsLong();
                long u = s.unique.get();
                if (u != lastCount) {
                    lastCount = u;
                    lastProgress = now;
                }
                if (now - lastProgress > 30_000_000_000L || now > deadline)
                    throw new IllegalStateException("read " + u + " of " + expected + " records ("
                            + (s.firstRecordNs == 0 ? "no record at all" : "stalled") + ")");
                Thread.sleep(2);
            }
            // The group may still be settling; give "every member" figures a moment.
            long settle = System.nanoTime() + 30_000_000_000L;
            while ((allAssignedNs == 0 || allFirstNs == 0) && System.nanoTime() < settle) {
                if (allAssignedNs == 0 && members.stream().allMatch(m -> m.firstAssignedNs != 0))
                    allAssignedNs = members.stream().mapToLong(m -> m.firstAssignedNs).max().getAsLong();
                if (allFirstNs == 0 && members.stream().allMatch(m -> m.firstRecordNs != 0))
                    allFirstNs = members.stream().mapToLong(m -> m.firstRecordNs).max().getAsLong();
                Thread.sleep(2);
            }
            long delivered = 0;
            for (Member m : members) delivered += m.delivered;
            double secs = Math.max(1e-9, (s.lastRecordNs - s.firstRecordNs) / 1e9);
            double mb = s.uniqueBytes.get() / (1024.0 * 1024.0);
            out.append(String.format(Locale.ROOT,
                    "\"group\":\"%s\",\"records\":%d,\"bytes\":%d,\"delivered\":%d,"
                    + "\"first_record_ms\":%.1f,\"all_first_record_ms\":%s,\"all_assigned_ms\":%s,"
                    + "\"consume_ms\":%.1f,\"mb_per_sec\":%.4f,\"records_per_sec\":%.1f",
                    group, s.unique.get(), s.uniqueBytes.get(), delivered, ms(t0, s.firstRecordNs),
                    allFirstNs == 0 ? "null" : String.format(Locale.ROOT, "%.1f", ms(t0, allFirstNs)),
                    allAssignedNs == 0 ? "null" : String.format(Locale.ROOT, "%.1f", ms(t0, allAssignedNs)),
                    secs * 1000, mb / secs, s.unique.get() / secs));
            StringBuilder per = new StringBuilder();
            for (Member m : members) {
                if (per.length() > 0) per.append(',');
                per.append(String.format(Locale.ROOT, "{\"first_record_ms\":%s,\"first_assigned_ms\":%s,\"delivered\":%d}",
                        m.firstRecordNs == 0 ? "null" : String.format(Locale.ROOT, "%.1f", ms(t0, m.firstRecordNs)),
                        m.firstAssignedNs == 0 ? "null" : String.format(Locale.ROOT, "%.1f", ms(t0, m.firstAssignedNs)),
                        m.delivered));
            }
            out.append(",\"members\":[").append(per).append(']');

            // --- 3: a member leaves cleanly
            if (n < 2) throw new IllegalStateException("need at least 2 consumers for the rebalance figures");
            long stable = waitCovered(members, partitions, true, 60_000, 0);
            if (stable < 0) throw new IllegalStateException("group not stable 60 s after consuming: "
                    + sumSizes(members) + " partitions assigned");
            Thread.sleep(500);
            Member victim = members.get(0);
            List<Member> rest = members.subList(1, members.size());
            int victimOwned = victim.assignment.size();
            victim.closeRequested = true;
            while (victim.closeStartNs == 0) Thread.sleep(0, 200_000);
            long covered = waitCovered(rest, partitions, false, 60_000, 0);
            if (covered < 0) throw new IllegalStateException("after a member left, its partitions were not "
                    + "reassigned within 60 s (" + sumSizes(rest) + " of " + partitions + " assigned)");
            threads.get(0).join(60_000);
            boolean committedInClose = victim.commitStartNs >= victim.closeStartNs;
            out.append(String.format(Locale.ROOT,
                    ",\"leave_owned\":%d,\"leave_rebalance_ms\":%.1f,\"close_ms\":%s,\"close_commit_ms\":%s",
                    victimOwned, ms(victim.closeStartNs, covered),
                    victim.closeEndNs == 0 ? "null" : String.format(Locale.ROOT, "%.1f",
                            ms(victim.closeStartNs, victim.closeEndNs)),
                    committedInClose ? String.format(Locale.ROOT, "%.1f",
                            ms(victim.commitStartNs, victim.commitEndNs)) : "null"));

            // --- 4: a member crashes (SIGKILL of a child JVM)
            if (kill) {
                String java = ProcessHandle.current().info().command().orElse("java");
                List<String> cmd = new ArrayList<>(List.of(java, "-XX:TieredStopAtLevel=1",
                        "-XX:+UseSerialGC", "-Xmx256m"));
                String log4j = System.getProperty("log4j2.configurationFile");
                if (log4j != null) cmd.add("-Dlog4j2.configurationFile=" + log4j);
                cmd.addAll(List.of("-cp", System.getProperty("java.class.path"), "GroupBench", "member",
                        bootstrap, topic, group, protocol));
                for (int i = 9; i < args.length; i++) cmd.add(args[i]);
                child = new ProcessBuilder(cmd).redirectError(ProcessBuilder.Redirect.INHERIT).start();
                AtomicInteger childOwned = new AtomicInteger(-1);
                AtomicReference<String> childErr = new AtomicReference<>();
                Process ch = child;
                Thread reader = new Thread(() -> {
                    try (BufferedReader r = new BufferedReader(new InputStreamReader(ch.getInputStream()))) {
                        String line;
                        while ((line = r.readLine()) != null) {
                            if (line.startsWith("ASSIGNED ")) childOwned.set(Integer.parseInt(line.substring(9).trim()));
                            else if (line.startsWith("ERROR ")) childErr.set(line.substring(6));
                        }
                    } catch (IOException e) {
                        // child gone
                    }
                });
                reader.setDaemon(true);
                reader.start();
                long joinDeadline = System.nanoTime() + 90_000_000_000L;
                long joined = -1;
                while (System.nanoTime() < joinDeadline) {
                    if (childErr.get() != null) throw new IllegalStateException("crash member: " + childErr.get());
                    if (!child.isAlive()) throw new IllegalStateException("crash member exited with " + child.exitValue());
                    int co = childOwned.get();
                    if (co > 0 && waitCovered(rest, partitions, true, 1, co) > 0) {
                        joined = System.nanoTime();
                        break;
                    }
                    Thread.sleep(5);
                }
                if (joined < 0) throw new IllegalStateException("crash member got no partitions within 90 s");
                Thread.sleep(1000);  // let the coordinator see the member's acknowledgement
                int owned = childOwned.get();
                long killNs = System.nanoTime();
                child.destroyForcibly();   // SIGKILL
                child.waitFor(10, TimeUnit.SECONDS);
                long rc = waitCovered(rest, partitions, false, 120_000, 0);
                if (rc < 0) throw new IllegalStateException("after SIGKILL of a member, its partitions were not "
                        + "reassigned within 120 s (" + sumSizes(rest) + " of " + partitions + " assigned)");
                out.append(String.format(Locale.ROOT, ",\"kill_owned\":%d,\"kill_rebalance_ms\":%.1f",
                        owned, ms(killNs, rc)));
            }
        } catch (Throwable t) {
            error = t.getMessage() != null ? t.getMessage() : t.toString();
        } finally {
            if (child != null) child.destroyForcibly();
            s.stop = true;
            for (Thread t : threads) t.join(40_000);
        }
        String sep = out.length() > 0 ? "," : "";
        System.out.println("{\"ok\":" + (error == null) + sep + out
                + (error == null ? "" : ",\"error\":\"" + esc(error) + "\"") + "}");
        System.out.flush();
        System.exit(error == null ? 0 : 1);
    }

    // ---------------------------------------------------------------- member

    static void member(String[] args) throws Exception {
        String bootstrap = args[1], topic = args[2], group = args[3], protocol = args[4];
        Properties p = props(bootstrap, group, protocol, args, 5);
        try (KafkaConsumer<byte[], byte[]> c = new KafkaConsumer<>(p)) {
            int[] last = {-1};
            Runnable report = () -> {
                int n = c.assignment().size();
                if (n != last[0]) {
                    last[0] = n;
                    System.out.println("ASSIGNED " + n);
                    System.out.flush();
                }
            };
            c.subscribe(List.of(topic), committingListener(c, report));
            while (true) {
                c.poll(Duration.ofMillis(20));
                report.run();
            }
        } catch (Throwable t) {
            System.out.println("ERROR " + t.toString().replace("\n", " "));
            System.out.flush();
            System.exit(1);
        }
    }
}
