//! Integration tests: the in-process broker driven by librdkafka (the
//! `rdkafka` crate) — admin operations, producers (acks, keys, null values,
//! headers, timestamps, every compression codec, idempotence), a manually
//! assigned consumer (consumer groups are not implemented: nothing is ever
//! committed), watermarks, offsets-for-times and metadata.

mod common;

use std::time::{Duration, Instant};

use common::TestBroker;
use rdkafka::admin::{
    AdminClient, AdminOptions, AlterConfig, ConfigSource, NewPartitions, NewTopic,
    ResourceSpecifier, TopicReplication,
};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Header, Headers, Message, OwnedHeaders};
use rdkafka::metadata::Metadata;
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Offset, Timestamp, TopicPartitionList};

const TIMEOUT: Duration = Duration::from_secs(15);

// ---------------------------------------------------------------- helpers

fn client_config(broker: &TestBroker) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", broker.bootstrap())
        .set("broker.address.family", "v4")
        .set("socket.timeout.ms", "10000")
        .set("log_level", "4");
    c
}

fn admin(broker: &TestBroker) -> AdminClient<DefaultClientContext> {
    client_config(broker).create().expect("create admin client")
}

fn admin_opts() -> AdminOptions {
    AdminOptions::new()
        .request_timeout(Some(TIMEOUT))
        .operation_timeout(Some(TIMEOUT))
}

fn producer(broker: &TestBroker, extra: &[(&str, &str)]) -> FutureProducer {
    let mut c = client_config(broker);
    c.set("message.timeout.ms", "15000").set("linger.ms", "5");
    for (k, v) in extra {
        c.set(*k, *v);
    }
    c.create().expect("create producer")
}

fn consumer(broker: &TestBroker) -> BaseConsumer {
    client_config(broker)
        // Groups are not implemented by the broker: assign() only, never commit.
        .set("group.id", "runnel-rdkafka-tests")
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .set("enable.partition.eof", "false")
        .set("fetch.wait.max.ms", "100")
        .create()
        .expect("create consumer")
}

async fn create_topic(
    admin: &AdminClient<DefaultClientContext>,
    name: &str,
    partitions: i32,
    configs: &[(&str, &str)],
) {
    let mut t = NewTopic::new(name, partitions, TopicReplication::Fixed(1));
    for (k, v) in configs {
        t = t.set(k, v);
    }
    let res = admin
        .create_topics(&[t], &admin_opts())
        .await
        .expect("CreateTopics request");
    assert_eq!(res, vec![Ok(name.to_string())], "create topic {name}");
}

fn metadata(client: &impl HasMetadata) -> Metadata {
    client.metadata_all()
}

/// Abstracts `fetch_metadata` over the client types used here.
trait HasMetadata {
    fn metadata_all(&self) -> Metadata;
}

impl HasMetadata for AdminClient<DefaultClientContext> {
    fn metadata_all(&self) -> Metadata {
        self.inner()
            .fetch_metadata(None, TIMEOUT)
            .expect("fetch metadata (admin)")
    }
}

impl HasMetadata for BaseConsumer {
    fn metadata_all(&self) -> Metadata {
        self.fetch_metadata(None, TIMEOUT)
            .expect("fetch metadata (consumer)")
    }
}

/// Partition count of `topic` as reported by metadata, or None if absent.
fn partition_count(client: &impl HasMetadata, topic: &str) -> Option<usize> {
    let md = metadata(client);
    md.topics()
        .iter()
        .find(|t| t.name() == topic && t.error().is_none())
        .map(|t| t.partitions().len())
}

/// Polls metadata until `cond` holds for the partition count of `topic`.
fn wait_partition_count(
    client: &impl HasMetadata,
    topic: &str,
    cond: impl Fn(Option<usize>) -> bool,
) -> Option<usize> {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let n = partition_count(client, topic);
        if cond(n) || Instant::now() > deadline {
            return n;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A consumed record, owned.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Rec {
    partition: i32,
    offset: i64,
    key: Option<Vec<u8>>,
    value: Option<Vec<u8>>,
    headers: Vec<(String, Option<Vec<u8>>)>,
    timestamp: Timestamp,
}

/// Assigns `topic`/`partition` from `from` and reads exactly `n` records
/// (then checks that nothing more arrives for a short while).
fn consume_exact(
    broker: &TestBroker,
    topic: &str,
    partition: i32,
    from: Offset,
    n: usize,
) -> Vec<Rec> {
    let c = consumer(broker);
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, partition, from)
        .expect("add partition to assignment");
    c.assign(&tpl).expect("assign");
    let mut out = Vec::with_capacity(n);
    let deadline = Instant::now() + TIMEOUT;
    while out.len() < n {
        assert!(
            Instant::now() < deadline,
            "timed out consuming {topic}-{partition}: got {} of {n} records",
            out.len()
        );
        match c.poll(Duration::from_millis(200)) {
            None => {}
            Some(Err(e)) => panic!("consumer error on {topic}-{partition}: {e}"),
            Some(Ok(m)) => out.push(Rec {
                partition: m.partition(),
                offset: m.offset(),
                key: m.key().map(<[u8]>::to_vec),
                value: m.payload().map(<[u8]>::to_vec),
                headers: m
                    .headers()
                    .map(|hs| {
                        hs.iter()
                            .map(|h| (h.key.to_string(), h.value.map(<[u8]>::to_vec)))
                            .collect()
                    })
                    .unwrap_or_default(),
                timestamp: m.timestamp(),
            }),
        }
    }
    // Nothing beyond what was produced.
    let extra_deadline = Instant::now() + Duration::from_millis(500);
    while Instant::now() < extra_deadline {
        if let Some(r) = c.poll(Duration::from_millis(100)) {
            match r {
                Ok(m) => panic!(
                    "unexpected extra record on {topic}-{partition} at offset {}",
                    m.offset()
                ),
                Err(e) => panic!("consumer error on {topic}-{partition}: {e}"),
            }
        }
    }
    out
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after epoch")
        .as_millis() as i64
}

// ------------------------------------------------------------------ admin

#[tokio::test]
async fn admin_create_describe_alter_partitions_delete() {
    // A static broker-level default that topics inherit.
    let broker = TestBroker::start_with(|p| {
        p.insert("log.retention.ms".into(), "123456789".into());
    });
    let admin = admin(&broker);

    create_topic(
        &admin,
        "orders",
        3,
        &[("retention.ms", "3600000"), ("cleanup.policy", "compact")],
    )
    .await;
    create_topic(&admin, "plain", 1, &[]).await;
    assert_eq!(
        wait_partition_count(&admin, "orders", |n| n == Some(3)),
        Some(3)
    );

    // DescribeConfigs: topic overrides, static broker default, hard default.
    let described = admin
        .describe_configs(
            &[
                ResourceSpecifier::Topic("orders"),
                ResourceSpecifier::Topic("plain"),
            ],
            &admin_opts(),
        )
        .await
        .expect("DescribeConfigs request");
    assert_eq!(described.len(), 2);
    let orders = described[0].as_ref().expect("describe orders");
    let retention = orders.get("retention.ms").expect("retention.ms entry");
    assert_eq!(retention.value.as_deref(), Some("3600000"));
    assert_eq!(retention.source, ConfigSource::DynamicTopic);
    assert!(!retention.is_default);
    let cleanup = orders.get("cleanup.policy").expect("cleanup.policy entry");
    assert_eq!(cleanup.value.as_deref(), Some("compact"));
    assert_eq!(cleanup.source, ConfigSource::DynamicTopic);
    let segment = orders.get("segment.bytes").expect("segment.bytes entry");
    assert_eq!(segment.value.as_deref(), Some("1073741824"));
    assert_eq!(segment.source, ConfigSource::Default);
    assert!(segment.is_default);

    let plain = described[1].as_ref().expect("describe plain");
    let retention = plain.get("retention.ms").expect("plain retention.ms");
    assert_eq!(retention.value.as_deref(), Some("123456789"));
    assert_eq!(retention.source, ConfigSource::StaticBroker);
    let cleanup = plain.get("cleanup.policy").expect("plain cleanup.policy");
    assert_eq!(cleanup.value.as_deref(), Some("delete"));
    assert_eq!(cleanup.source, ConfigSource::Default);

    // Broker resource: a statically configured key.
    let described = admin
        .describe_configs(&[ResourceSpecifier::Broker(1)], &admin_opts())
        .await
        .expect("DescribeConfigs broker request");
    let b = described[0].as_ref().expect("describe broker 1");
    let lr = b.get("log.retention.ms").expect("broker log.retention.ms");
    assert_eq!(lr.value.as_deref(), Some("123456789"));
    assert_eq!(lr.source, ConfigSource::StaticBroker);

    // AlterConfigs (the legacy, non-incremental API): the given set replaces
    // every dynamic config of the topic, so cleanup.policy reverts.
    let altered = admin
        .alter_configs(
            &[AlterConfig::new(ResourceSpecifier::Topic("orders")).set("retention.ms", "7200000")],
            &admin_opts(),
        )
        .await
        .expect("AlterConfigs request");
    assert_eq!(altered.len(), 1);
    assert!(altered[0].is_ok(), "alter orders: {:?}", altered[0]);
    let described = admin
        .describe_configs(&[ResourceSpecifier::Topic("orders")], &admin_opts())
        .await
        .expect("DescribeConfigs request");
    let orders = described[0].as_ref().expect("describe orders");
    let retention = orders.get("retention.ms").expect("retention.ms entry");
    assert_eq!(retention.value.as_deref(), Some("7200000"));
    assert_eq!(retention.source, ConfigSource::DynamicTopic);
    let cleanup = orders.get("cleanup.policy").expect("cleanup.policy entry");
    assert_eq!(
        cleanup.value.as_deref(),
        Some("delete"),
        "AlterConfigs must replace the whole dynamic config set"
    );
    assert_eq!(cleanup.source, ConfigSource::Default);

    // AlterConfigs with an invalid value. rdkafka 0.39 drops per-resource
    // AlterConfigs errors (its result future maps every resource to Ok), so
    // check the effect instead: the broker must not have applied it.
    let altered = admin
        .alter_configs(
            &[AlterConfig::new(ResourceSpecifier::Topic("orders")).set("retention.ms", "soon")],
            &admin_opts(),
        )
        .await
        .expect("AlterConfigs request");
    assert_eq!(altered.len(), 1);
    let described = admin
        .describe_configs(&[ResourceSpecifier::Topic("orders")], &admin_opts())
        .await
        .expect("DescribeConfigs request");
    let orders = described[0].as_ref().expect("describe orders");
    assert_eq!(
        orders.get("retention.ms").and_then(|e| e.value.as_deref()),
        Some("7200000"),
        "an invalid AlterConfigs value must not be applied"
    );

    // CreatePartitions 3 -> 5, and the new partition is writable.
    let res = admin
        .create_partitions(&[NewPartitions::new("orders", 5)], &admin_opts())
        .await
        .expect("CreatePartitions request");
    assert_eq!(res, vec![Ok("orders".to_string())]);
    assert_eq!(
        wait_partition_count(&admin, "orders", |n| n == Some(5)),
        Some(5)
    );
    {
        let p = producer(&broker, &[]);
        let d = p
            .send(
                FutureRecord::to("orders")
                    .partition(4)
                    .key("k")
                    .payload("v"),
                TIMEOUT,
            )
            .await
            .expect("produce to new partition 4");
        assert_eq!((d.partition, d.offset), (4, 0));
    }

    // Error cases.
    let res = admin
        .create_topics(
            &[NewTopic::new("orders", 1, TopicReplication::Fixed(1))],
            &admin_opts(),
        )
        .await
        .expect("CreateTopics request");
    assert_eq!(
        res,
        vec![Err((
            "orders".to_string(),
            RDKafkaErrorCode::TopicAlreadyExists
        ))]
    );
    let res = admin
        .create_topics(
            &[NewTopic::new("bad-config", 1, TopicReplication::Fixed(1))
                .set("retention.ms", "not-a-number")],
            &admin_opts(),
        )
        .await
        .expect("CreateTopics request");
    assert_eq!(
        res,
        vec![Err((
            "bad-config".to_string(),
            RDKafkaErrorCode::InvalidConfig
        ))]
    );
    let res = admin
        .create_topics(
            &[NewTopic::new("bad-policy", 1, TopicReplication::Fixed(1))
                .set("cleanup.policy", "shred")],
            &admin_opts(),
        )
        .await
        .expect("CreateTopics request");
    assert_eq!(
        res,
        vec![Err((
            "bad-policy".to_string(),
            RDKafkaErrorCode::InvalidConfig
        ))]
    );
    let res = admin
        .create_partitions(&[NewPartitions::new("orders", 2)], &admin_opts())
        .await
        .expect("CreatePartitions request");
    assert_eq!(
        res,
        vec![Err((
            "orders".to_string(),
            RDKafkaErrorCode::InvalidPartitions
        ))]
    );
    let res = admin
        .create_partitions(&[NewPartitions::new("no-such-topic", 2)], &admin_opts())
        .await
        .expect("CreatePartitions request");
    assert_eq!(
        res,
        vec![Err((
            "no-such-topic".to_string(),
            RDKafkaErrorCode::UnknownTopicOrPartition
        ))]
    );
    // Failed creations left nothing behind.
    let md = metadata(&admin);
    let mut names: Vec<&str> = md
        .topics()
        .iter()
        .map(|t| t.name())
        .filter(|n| !n.starts_with("__"))
        .collect();
    names.sort_unstable();
    assert_eq!(names, vec!["orders", "plain"]);

    // DeleteTopics.
    let res = admin
        .delete_topics(&["orders"], &admin_opts())
        .await
        .expect("DeleteTopics request");
    assert_eq!(res, vec![Ok("orders".to_string())]);
    assert_eq!(
        wait_partition_count(&admin, "orders", |n| n.is_none()),
        None
    );
    assert_eq!(partition_count(&admin, "plain"), Some(1));
    let res = admin
        .delete_topics(&["orders"], &admin_opts())
        .await
        .expect("DeleteTopics request");
    assert_eq!(
        res,
        vec![Err((
            "orders".to_string(),
            RDKafkaErrorCode::UnknownTopicOrPartition
        ))]
    );
    // The name can be reused, starting from an empty log.
    create_topic(&admin, "orders", 1, &[]).await;
    {
        let p = producer(&broker, &[]);
        let d = p
            .send(
                FutureRecord::to("orders").key("k").payload("again"),
                TIMEOUT,
            )
            .await
            .expect("produce to re-created topic");
        assert_eq!((d.partition, d.offset), (0, 0));
    }

    drop(admin);
    broker.shutdown();
}

// --------------------------------------------------- produce and consume

#[tokio::test]
async fn produce_acks_keys_nulls_headers_timestamps_then_consume() {
    let broker = TestBroker::start();
    let admin = admin(&broker);
    create_topic(&admin, "events", 2, &[]).await;

    let base_ts = now_ms() - 3_600_000;
    // (key, value, headers, timestamp)
    type Spec = (
        Option<&'static str>,
        Option<&'static str>,
        Vec<(&'static str, Option<&'static str>)>,
        i64,
    );
    let specs: Vec<Spec> = vec![
        (Some("k0"), Some("v0"), vec![("h", Some("1"))], base_ts),
        (Some("k1"), None, vec![], base_ts + 1000),
        (None, Some("no-key"), vec![], base_ts + 2000),
        (
            Some("k3"),
            Some(""),
            vec![("a", Some("x")), ("b", None), ("a", Some("y"))],
            base_ts + 3000,
        ),
        (None, None, vec![("only-header", Some("z"))], base_ts + 4000),
        (Some("k5"), Some("v5"), vec![], base_ts + 5000),
    ];

    let acks_all = producer(&broker, &[("acks", "all")]);
    let acks_one = producer(&broker, &[("acks", "1")]);
    for (i, (key, value, headers, ts)) in specs.iter().enumerate() {
        // First half acks=all, second half acks=1; all to partition 1.
        let p = if i < 3 { &acks_all } else { &acks_one };
        let mut hs = OwnedHeaders::new();
        for (hk, hv) in headers {
            hs = hs.insert(Header {
                key: hk,
                value: hv.map(str::as_bytes),
            });
        }
        let mut rec: FutureRecord<'_, str, str> =
            FutureRecord::to("events").partition(1).timestamp(*ts);
        if let Some(k) = key {
            rec = rec.key(*k);
        }
        if let Some(v) = value {
            rec = rec.payload(*v);
        }
        if !headers.is_empty() {
            rec = rec.headers(hs);
        }
        let d = p
            .send(rec, TIMEOUT)
            .await
            .unwrap_or_else(|(e, _)| panic!("produce record {i}: {e}"));
        assert_eq!((d.partition, d.offset), (1, i as i64), "delivery of {i}");
    }
    // Key-hashed records land on a partition chosen by the client.
    let d = acks_all
        .send(
            FutureRecord::to("events")
                .key("routed")
                .payload("p")
                .timestamp(base_ts),
            TIMEOUT,
        )
        .await
        .unwrap_or_else(|(e, _)| panic!("produce routed record: {e}"));
    assert!(d.partition == 0 || d.partition == 1, "{d:?}");
    let routed_partition = d.partition;
    let routed_offset = d.offset;
    assert_eq!(
        routed_offset,
        if routed_partition == 1 {
            specs.len() as i64
        } else {
            0
        }
    );
    drop(acks_all);
    drop(acks_one);

    let p1_count = specs.len() + usize::from(routed_partition == 1);
    let got = consume_exact(&broker, "events", 1, Offset::Beginning, p1_count);
    for (i, (key, value, headers, ts)) in specs.iter().enumerate() {
        let r = &got[i];
        assert_eq!(r.partition, 1);
        assert_eq!(r.offset, i as i64, "offset of {i}");
        assert_eq!(r.key.as_deref(), key.map(str::as_bytes), "key of {i}");
        assert_eq!(r.value.as_deref(), value.map(str::as_bytes), "value of {i}");
        let want: Vec<(String, Option<Vec<u8>>)> = headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.map(|v| v.as_bytes().to_vec())))
            .collect();
        assert_eq!(r.headers, want, "headers of {i}");
        assert_eq!(r.timestamp, Timestamp::CreateTime(*ts), "timestamp of {i}");
    }
    // Start from an explicit offset.
    let tail = consume_exact(&broker, "events", 1, Offset::Offset(4), p1_count - 4);
    assert_eq!(tail[0], got[4]);
    assert_eq!(tail[1], got[5]);

    // Watermarks and offsets for times.
    let c = consumer(&broker);
    let n1 = p1_count as i64;
    assert_eq!(
        c.fetch_watermarks("events", 1, TIMEOUT)
            .expect("watermarks events-1"),
        (0, n1)
    );
    let n0 = i64::from(routed_partition == 0);
    assert_eq!(
        c.fetch_watermarks("events", 0, TIMEOUT)
            .expect("watermarks events-0"),
        (0, n0)
    );
    let lookup = |ts: i64| -> Offset {
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset("events", 1, Offset::Offset(ts))
            .expect("add lookup partition");
        let res = c
            .offsets_for_times(tpl, TIMEOUT)
            .expect("offsets_for_times");
        let e = res
            .find_partition("events", 1)
            .expect("events-1 in offsets_for_times result");
        e.error().expect("no per-partition error");
        e.offset()
    };
    // Exact hit, between records, before everything, after everything.
    assert_eq!(lookup(base_ts + 3000), Offset::Offset(3));
    assert_eq!(lookup(base_ts + 1500), Offset::Offset(2));
    // If the routed record (ts = base_ts) went to partition 1 it is the last
    // one; the earliest offset with timestamp >= base_ts is still 0.
    assert_eq!(lookup(base_ts - 10_000), Offset::Offset(0));
    assert_eq!(lookup(base_ts), Offset::Offset(0));
    assert_eq!(lookup(base_ts + 5001), Offset::End);

    drop(c);
    drop(admin);
    broker.shutdown();
}

// ----------------------------------------------------------- compression

#[tokio::test]
async fn every_compression_codec_round_trips() {
    let broker = TestBroker::start();
    let admin = admin(&broker);
    const N: usize = 40;
    // Highly compressible values so compressed batches are visibly smaller.
    let value_of = |i: usize| format!("{i:04}-{}", "compressible ".repeat(80));

    let mut log_sizes = Vec::new();
    for codec in ["none", "gzip", "snappy", "lz4", "zstd"] {
        let topic = format!("codec-{codec}");
        create_topic(&admin, &topic, 1, &[]).await;
        let p = producer(
            &broker,
            &[
                ("compression.type", codec),
                ("linger.ms", "100"),
                ("acks", "all"),
            ],
        );
        let values: Vec<String> = (0..N).map(value_of).collect();
        let keys: Vec<String> = (0..N).map(|i| format!("key-{i}")).collect();
        // Enqueue everything before awaiting so records batch together.
        let futs: Vec<_> = (0..N)
            .map(|i| {
                p.send_result(
                    FutureRecord::to(&topic)
                        .partition(0)
                        .key(&keys[i])
                        .payload(&values[i]),
                )
                .unwrap_or_else(|(e, _)| panic!("{codec}: enqueue {i}: {e}"))
            })
            .collect();
        for (i, f) in futures::future::join_all(futs)
            .await
            .into_iter()
            .enumerate()
        {
            let d = f
                .expect("delivery future not cancelled")
                .unwrap_or_else(|(e, _)| panic!("{codec}: deliver {i}: {e}"));
            assert_eq!(
                (d.partition, d.offset),
                (0, i as i64),
                "{codec}: record {i}"
            );
        }
        p.flush(TIMEOUT).expect("flush");
        drop(p);

        let got = consume_exact(&broker, &topic, 0, Offset::Beginning, N);
        for (i, r) in got.iter().enumerate() {
            assert_eq!(r.offset, i as i64, "{codec}: offset");
            assert_eq!(
                r.key.as_deref(),
                Some(keys[i].as_bytes()),
                "{codec}: key {i}"
            );
            assert_eq!(
                r.value.as_deref(),
                Some(values[i].as_bytes()),
                "{codec}: value {i}"
            );
        }
        let seg = broker
            .data_dir()
            .join(format!("{topic}-0"))
            .join("00000000000000000000.log");
        let size = std::fs::metadata(&seg)
            .unwrap_or_else(|e| panic!("{codec}: segment {}: {e}", seg.display()))
            .len();
        log_sizes.push((codec, size));
    }
    let uncompressed = log_sizes[0].1;
    assert!(
        uncompressed > (N * 1000) as u64,
        "uncompressed log unexpectedly small: {log_sizes:?}"
    );
    for (codec, size) in &log_sizes[1..] {
        assert!(
            *size * 4 < uncompressed,
            "{codec}: stored batch is not compressed ({size} vs {uncompressed} bytes): {log_sizes:?}"
        );
    }

    drop(admin);
    broker.shutdown();
}

// ------------------------------------------------------------ idempotence

#[tokio::test]
async fn idempotent_producer_in_order_without_duplicates() {
    let broker = TestBroker::start();
    let admin = admin(&broker);
    create_topic(&admin, "idem", 2, &[]).await;

    const N: usize = 300;
    let p = producer(
        &broker,
        &[
            ("enable.idempotence", "true"),
            ("max.in.flight.requests.per.connection", "5"),
            ("linger.ms", "2"),
            ("batch.num.messages", "25"),
        ],
    );
    let values: Vec<String> = (0..N).map(|i| format!("seq-{i}")).collect();
    let futs: Vec<_> = values
        .iter()
        .enumerate()
        .map(|(i, v)| {
            p.send_result(
                FutureRecord::to("idem")
                    .partition((i % 2) as i32)
                    .key(v)
                    .payload(v),
            )
            .unwrap_or_else(|(e, _)| panic!("enqueue {i}: {e}"))
        })
        .collect();
    let deliveries = futures::future::join_all(futs).await;
    for (i, d) in deliveries.into_iter().enumerate() {
        let d = d
            .expect("delivery future not cancelled")
            .unwrap_or_else(|(e, _)| panic!("deliver {i}: {e}"));
        assert_eq!(
            (d.partition, d.offset),
            ((i % 2) as i32, (i / 2) as i64),
            "record {i}"
        );
    }
    // A second round after a pause continues the sequence.
    let d = p
        .send(
            FutureRecord::to("idem")
                .partition(0)
                .key("late")
                .payload("late"),
            TIMEOUT,
        )
        .await
        .unwrap_or_else(|(e, _)| panic!("late record: {e}"));
    assert_eq!((d.partition, d.offset), (0, (N / 2) as i64));
    p.flush(TIMEOUT).expect("flush");
    drop(p);

    for partition in 0..2 {
        let mut want: Vec<String> = values
            .iter()
            .enumerate()
            .filter(|(i, _)| (i % 2) as i32 == partition)
            .map(|(_, v)| v.clone())
            .collect();
        if partition == 0 {
            want.push("late".into());
        }
        let got = consume_exact(&broker, "idem", partition, Offset::Beginning, want.len());
        let got_values: Vec<String> = got
            .iter()
            .map(|r| String::from_utf8(r.value.clone().expect("non-null value")).expect("utf8"))
            .collect();
        assert_eq!(got_values, want, "partition {partition} content/order");
        let offsets: Vec<i64> = got.iter().map(|r| r.offset).collect();
        assert_eq!(offsets, (0..want.len() as i64).collect::<Vec<_>>());
    }

    drop(admin);
    broker.shutdown();
}

// --------------------------------------------------------------- metadata

#[tokio::test]
async fn metadata_shows_broker_and_leaders() {
    let broker = TestBroker::start();
    let admin = admin(&broker);
    create_topic(&admin, "meta-a", 3, &[]).await;
    create_topic(&admin, "meta-b", 1, &[]).await;
    wait_partition_count(&admin, "meta-a", |n| n == Some(3));

    let c = consumer(&broker);
    let md = c.metadata_all();
    let brokers: Vec<(i32, String, i32)> = md
        .brokers()
        .iter()
        .map(|b| (b.id(), b.host().to_string(), b.port()))
        .collect();
    assert_eq!(
        brokers,
        vec![(1, "127.0.0.1".to_string(), i32::from(broker.addr().port()))]
    );
    // Internal topics (e.g. __consumer_offsets) may exist; ignore them.
    let mut topics: Vec<&str> = md
        .topics()
        .iter()
        .map(|t| t.name())
        .filter(|n| !n.starts_with("__"))
        .collect();
    topics.sort_unstable();
    assert_eq!(topics, vec!["meta-a", "meta-b"]);
    let a = md
        .topics()
        .iter()
        .find(|t| t.name() == "meta-a")
        .expect("meta-a in metadata");
    assert!(a.error().is_none(), "meta-a error {:?}", a.error());
    let mut ids: Vec<i32> = a.partitions().iter().map(|p| p.id()).collect();
    ids.sort_unstable();
    assert_eq!(ids, vec![0, 1, 2]);
    for p in a.partitions() {
        assert!(
            p.error().is_none(),
            "partition {} error {:?}",
            p.id(),
            p.error()
        );
        assert_eq!(p.leader(), 1, "leader of meta-a-{}", p.id());
        assert_eq!(p.replicas(), &[1]);
        assert_eq!(p.isr(), &[1]);
    }

    // A single-topic request for a missing topic reports it as unknown
    // (consumers never auto-create).
    let md = c
        .fetch_metadata(Some("missing-topic"), TIMEOUT)
        .expect("metadata for missing topic");
    let t = md
        .topics()
        .iter()
        .find(|t| t.name() == "missing-topic")
        .expect("missing-topic echoed");
    assert_eq!(
        t.error().map(RDKafkaErrorCode::from),
        Some(RDKafkaErrorCode::UnknownTopicOrPartition)
    );
    assert_eq!(partition_count(&c, "missing-topic"), None);

    drop(c);
    drop(admin);
    broker.shutdown();
}
