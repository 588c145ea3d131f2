//! Topic administration against a real broker (see `common` for which).

#![allow(clippy::unwrap_used)]

mod common;

use common::{
    assert_kafka_error, unique_topic, wait_for_partitions, wait_for_topic, wait_for_topic_gone,
    TestBroker,
};
use runnel_admin::{AdminError, AlterConfigOp, ConfigEntry, ConfigSource, NewTopic};

/// The topic configs Apache Kafka 4.1.1 describes, sorted.
const KAFKA_TOPIC_CONFIGS: [&str; 33] = [
    "cleanup.policy",
    "compression.gzip.level",
    "compression.lz4.level",
    "compression.type",
    "compression.zstd.level",
    "delete.retention.ms",
    "file.delete.delay.ms",
    "flush.messages",
    "flush.ms",
    "follower.replication.throttled.replicas",
    "index.interval.bytes",
    "leader.replication.throttled.replicas",
    "local.retention.bytes",
    "local.retention.ms",
    "max.compaction.lag.ms",
    "max.message.bytes",
    "message.timestamp.after.max.ms",
    "message.timestamp.before.max.ms",
    "message.timestamp.type",
    "min.cleanable.dirty.ratio",
    "min.compaction.lag.ms",
    "min.insync.replicas",
    "preallocate",
    "remote.log.copy.disable",
    "remote.log.delete.on.disable",
    "remote.storage.enable",
    "retention.bytes",
    "retention.ms",
    "segment.bytes",
    "segment.index.bytes",
    "segment.jitter.ms",
    "segment.ms",
    "unclean.leader.election.enable",
];

/// Polls DescribeConfigs until topic `name` has config `want` (Kafka applies
/// config changes to the broker asynchronously).
async fn wait_for_config(admin: &runnel_admin::AdminClient, name: &str, want: &ConfigEntry) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let entries = admin.describe_topic_configs(name).await.unwrap();
        let got = entry(&entries, &want.name);
        if got == want {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{name}: {got:?}, want {want:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

fn entry<'a>(entries: &'a [ConfigEntry], name: &str) -> &'a ConfigEntry {
    entries
        .iter()
        .find(|e| e.name == name)
        .unwrap_or_else(|| panic!("no config {name} in {entries:?}"))
}

fn dynamic(name: &str, value: &str) -> ConfigEntry {
    ConfigEntry {
        name: name.into(),
        value: Some(value.into()),
        source: ConfigSource::DynamicTopicConfig,
        read_only: false,
        is_sensitive: false,
    }
}

fn default(name: &str, value: &str) -> ConfigEntry {
    ConfigEntry {
        name: name.into(),
        value: Some(value.into()),
        source: ConfigSource::DefaultConfig,
        read_only: false,
        is_sensitive: false,
    }
}

#[tokio::test]
async fn create_with_configs_then_describe_topic_and_configs() {
    let b = TestBroker::start().await;
    let admin = b.client().await.unwrap();
    let name = unique_topic("orders");

    let created = admin
        .create_topic(
            NewTopic::new(&name, 3, 1)
                .with_config("cleanup.policy", "compact")
                .with_config("retention.ms", "3600000"),
            false,
        )
        .await
        .unwrap();
    let id = created
        .topic_id
        .expect("CreateTopics v7 returns the topic id");
    assert!(!id.is_nil());
    assert_eq!(created.num_partitions, Some(3));
    assert_eq!(created.replication_factor, Some(1));
    let configs = created
        .configs
        .expect("CreateTopics v5+ returns the configs");
    assert_eq!(
        entry(&configs, "cleanup.policy"),
        &dynamic("cleanup.policy", "compact")
    );
    assert_eq!(
        entry(&configs, "retention.ms"),
        &dynamic("retention.ms", "3600000")
    );
    assert_eq!(
        entry(&configs, "segment.bytes"),
        &default("segment.bytes", "1073741824")
    );

    let t = wait_for_topic(&admin, &name).await;
    assert_eq!(t.name, name);
    assert_eq!(
        t.topic_id,
        Some(id),
        "Metadata and CreateTopics disagree on the id"
    );
    assert!(!t.is_internal);
    assert_eq!(t.partitions.len(), 3);
    for (i, p) in t.partitions.iter().enumerate() {
        assert_eq!(p.id, i as i32);
        assert_eq!(p.leader, Some(b.node_id));
        assert_eq!(
            p.leader_epoch,
            Some(0),
            "a new partition's first leader epoch is 0"
        );
        assert_eq!(p.replicas, vec![b.node_id]);
        assert_eq!(p.isr, vec![b.node_id]);
        assert!(p.offline_replicas.is_empty());
        assert_eq!(p.error_code, 0);
        assert_eq!(p.error_name(), None);
    }

    wait_for_config(&admin, &name, &dynamic("cleanup.policy", "compact")).await;
    let entries = admin.describe_topic_configs(&name).await.unwrap();
    assert_eq!(
        entry(&entries, "cleanup.policy"),
        &dynamic("cleanup.policy", "compact")
    );
    assert_eq!(
        entry(&entries, "retention.ms"),
        &dynamic("retention.ms", "3600000")
    );
    assert_eq!(
        entry(&entries, "segment.bytes"),
        &default("segment.bytes", "1073741824")
    );
    assert_eq!(
        entry(&entries, "max.message.bytes"),
        &default("max.message.bytes", "1048588")
    );
    // `kafka-storage format` writes the cluster default min.insync.replicas=1
    assert_eq!(
        entry(&entries, "min.insync.replicas"),
        &ConfigEntry {
            source: ConfigSource::DynamicDefaultBrokerConfig,
            ..default("min.insync.replicas", "1")
        }
    );
    // the topic configs runnel added for Kafka 4.1.1 parity
    assert_eq!(
        entry(&entries, "local.retention.ms"),
        &default("local.retention.ms", "-2")
    );
    assert_eq!(
        entry(&entries, "leader.replication.throttled.replicas"),
        &default("leader.replication.throttled.replicas", "")
    );
    assert_eq!(
        entry(&entries, "remote.storage.enable"),
        &default("remote.storage.enable", "false")
    );
    let mut names: Vec<&str> = entries.iter().map(|e| e.name.as_str()).collect();
    names.sort_unstable();
    let expected: Vec<&str> = KAFKA_TOPIC_CONFIGS.to_vec();
    assert_eq!(names, expected);
    let created_names: Vec<&str> = {
        let mut v: Vec<&str> = configs.iter().map(|e| e.name.as_str()).collect();
        v.sort_unstable();
        v
    };
    assert_eq!(
        created_names, expected,
        "CreateTopics and DescribeConfigs list different configs"
    );
    let dynamic_names: Vec<&str> = entries
        .iter()
        .filter(|e| e.source == ConfigSource::DynamicTopicConfig)
        .map(|e| e.name.as_str())
        .collect();
    assert_eq!(dynamic_names.len(), 2, "{dynamic_names:?}");

    // all topics includes it
    let all = admin.describe_topics(None).await.unwrap();
    assert_eq!(all.get(&name).unwrap().as_ref().unwrap().topic_id, Some(id));
}

#[tokio::test]
async fn validate_only_and_broker_defaults() {
    let b = TestBroker::start().await;
    let admin = b.client().await.unwrap();
    let name = unique_topic("validated");

    let v = admin
        .create_topic(NewTopic::new(&name, 4, 1), true)
        .await
        .unwrap();
    // Kafka 4.1.1 draws a (throwaway) topic id for validate_only too.
    assert!(v.topic_id.is_some());
    assert_eq!(v.num_partitions, Some(4));
    assert_eq!(v.replication_factor, Some(1));
    let err = wait_for_topic_gone(&admin, &name).await;
    assert_kafka_error::<()>(Err(err), "Metadata", 3, "UNKNOWN_TOPIC_OR_PARTITION", None);

    // -1 / -1: num.partitions and default.replication.factor (both 1)
    let d = admin
        .create_topic(NewTopic::new(&name, -1, -1), false)
        .await
        .unwrap();
    assert!(d.topic_id.is_some());
    assert_eq!(d.num_partitions, Some(1));
    assert_eq!(d.replication_factor, Some(1));
    let t = wait_for_topic(&admin, &name).await;
    assert_eq!(t.partitions.len(), 1);
    assert_eq!(t.topic_id, d.topic_id);
}

#[tokio::test]
async fn create_twice_is_topic_already_exists() {
    let b = TestBroker::start().await;
    let admin = b.client().await.unwrap();
    let name = unique_topic("twice");
    admin
        .create_topic(NewTopic::new(&name, 1, 1), false)
        .await
        .unwrap();
    let msg = format!("Topic '{name}' already exists.");
    assert_kafka_error(
        admin.create_topic(NewTopic::new(&name, 2, 1), false).await,
        "CreateTopics",
        36,
        "TOPIC_ALREADY_EXISTS",
        Some(&msg),
    );
    // validate_only sees it too
    assert_kafka_error(
        admin.create_topic(NewTopic::new(&name, 1, 1), true).await,
        "CreateTopics",
        36,
        "TOPIC_ALREADY_EXISTS",
        Some(&msg),
    );
    // the first creation is intact
    assert_eq!(wait_for_topic(&admin, &name).await.partitions.len(), 1);
}

#[tokio::test]
async fn create_partitions_up_and_down() {
    let b = TestBroker::start().await;
    let admin = b.client().await.unwrap();
    let name = unique_topic("grow");
    admin
        .create_topic(NewTopic::new(&name, 2, 1), false)
        .await
        .unwrap();
    wait_for_topic(&admin, &name).await;

    admin.create_partitions(&name, 4, false).await.unwrap();
    let t = wait_for_partitions(&admin, &name, 4).await;
    assert_eq!(
        t.partitions.iter().map(|p| p.id).collect::<Vec<_>>(),
        vec![0, 1, 2, 3]
    );
    assert!(t.partitions.iter().all(|p| p.replicas == vec![b.node_id]));

    // validate_only changes nothing
    admin.create_partitions(&name, 6, true).await.unwrap();
    assert_eq!(wait_for_topic(&admin, &name).await.partitions.len(), 4);

    let down =
        format!("The topic {name} currently has 4 partition(s); 3 would not be an increase.");
    assert_kafka_error(
        admin.create_partitions(&name, 3, false).await,
        "CreatePartitions",
        37,
        "INVALID_PARTITIONS",
        Some(&down),
    );
    assert_kafka_error(
        admin.create_partitions(&name, 4, false).await,
        "CreatePartitions",
        37,
        "INVALID_PARTITIONS",
        Some("Topic already has 4 partition(s)."),
    );
    assert_eq!(wait_for_topic(&admin, &name).await.partitions.len(), 4);

    let missing = unique_topic("missing");
    assert_kafka_error(
        admin.create_partitions(&missing, 2, false).await,
        "CreatePartitions",
        3,
        "UNKNOWN_TOPIC_OR_PARTITION",
        None, // Kafka sends a null error message here
    );
}

#[tokio::test]
async fn invalid_config_value_is_invalid_config_with_message() {
    let b = TestBroker::start().await;
    let admin = b.client().await.unwrap();
    let name = unique_topic("badcfg");
    assert_kafka_error(
        admin
            .create_topic(
                NewTopic::new(&name, 1, 1).with_config("retention.ms", "abc"),
                false,
            )
            .await,
        "CreateTopics",
        40,
        "INVALID_CONFIG",
        Some("Invalid value abc for configuration retention.ms: Not a number of type LONG"),
    );
    assert_kafka_error::<()>(
        Err(wait_for_topic_gone(&admin, &name).await),
        "Metadata",
        3,
        "UNKNOWN_TOPIC_OR_PARTITION",
        None,
    );

    admin
        .create_topic(NewTopic::new(&name, 1, 1), false)
        .await
        .unwrap();
    wait_for_topic(&admin, &name).await;
    assert_kafka_error(
        admin
            .incremental_alter_topic_configs(
                &name,
                &[AlterConfigOp::Set("cleanup.policy".into(), "sideways".into())],
                false,
            )
            .await,
        "IncrementalAlterConfigs",
        40,
        "INVALID_CONFIG",
        Some(
            "Invalid value sideways for configuration cleanup.policy: String must be one of: compact, delete",
        ),
    );
    assert_kafka_error(
        admin
            .incremental_alter_topic_configs(
                &name,
                &[AlterConfigOp::Set("retention.ms".into(), "abc".into())],
                false,
            )
            .await,
        "IncrementalAlterConfigs",
        40,
        "INVALID_CONFIG",
        Some("Invalid value abc for configuration retention.ms: Not a number of type LONG"),
    );
    assert_kafka_error(
        admin
            .incremental_alter_topic_configs(
                &name,
                &[AlterConfigOp::Set("no.such.config".into(), "1".into())],
                false,
            )
            .await,
        "IncrementalAlterConfigs",
        40,
        "INVALID_CONFIG",
        Some("Unknown topic config name: no.such.config"),
    );
    let entries = admin.describe_topic_configs(&name).await.unwrap();
    assert_eq!(
        entry(&entries, "cleanup.policy"),
        &default("cleanup.policy", "delete")
    );
}

#[tokio::test]
async fn incremental_set_and_delete() {
    let b = TestBroker::start().await;
    let admin = b.client().await.unwrap();
    let name = unique_topic("alter");
    admin
        .create_topic(
            NewTopic::new(&name, 1, 1).with_config("retention.ms", "1000"),
            false,
        )
        .await
        .unwrap();
    wait_for_topic(&admin, &name).await;

    admin
        .incremental_alter_topic_configs(
            &name,
            &[
                AlterConfigOp::Set("retention.ms".into(), "123456".into()),
                AlterConfigOp::Set("max.message.bytes".into(), "2000000".into()),
            ],
            false,
        )
        .await
        .unwrap();
    wait_for_config(&admin, &name, &dynamic("retention.ms", "123456")).await;
    wait_for_config(&admin, &name, &dynamic("max.message.bytes", "2000000")).await;

    // validate_only changes nothing
    admin
        .incremental_alter_topic_configs(
            &name,
            &[AlterConfigOp::Set("retention.ms".into(), "999".into())],
            true,
        )
        .await
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    wait_for_config(&admin, &name, &dynamic("retention.ms", "123456")).await;

    // delete: back to the default; the other key is untouched
    admin
        .incremental_alter_topic_configs(
            &name,
            &[AlterConfigOp::Delete("retention.ms".into())],
            false,
        )
        .await
        .unwrap();
    wait_for_config(&admin, &name, &default("retention.ms", "604800000")).await;
    wait_for_config(&admin, &name, &dynamic("max.message.bytes", "2000000")).await;

    // append / subtract on a list config
    admin
        .incremental_alter_topic_configs(
            &name,
            &[AlterConfigOp::Append(
                "cleanup.policy".into(),
                "compact".into(),
            )],
            false,
        )
        .await
        .unwrap();
    wait_for_config(&admin, &name, &dynamic("cleanup.policy", "delete,compact")).await;
    admin
        .incremental_alter_topic_configs(
            &name,
            &[AlterConfigOp::Subtract(
                "cleanup.policy".into(),
                "delete".into(),
            )],
            false,
        )
        .await
        .unwrap();
    wait_for_config(&admin, &name, &dynamic("cleanup.policy", "compact")).await;

    // APPEND to a non-list config
    assert_kafka_error(
        admin
            .incremental_alter_topic_configs(
                &name,
                &[AlterConfigOp::Append("retention.ms".into(), "1".into())],
                false,
            )
            .await,
        "IncrementalAlterConfigs",
        40,
        "INVALID_CONFIG",
        Some("Can't APPEND to key retention.ms because its type is not LIST."),
    );

    // a missing topic
    let missing = unique_topic("missing");
    let msg = format!("The topic '{missing}' does not exist.");
    assert_kafka_error(
        admin
            .incremental_alter_topic_configs(
                &missing,
                &[AlterConfigOp::Delete("retention.ms".into())],
                false,
            )
            .await,
        "IncrementalAlterConfigs",
        3,
        "UNKNOWN_TOPIC_OR_PARTITION",
        Some(&msg),
    );
}

#[tokio::test]
async fn delete_topic_then_describe_is_unknown() {
    let b = TestBroker::start().await;
    let admin = b.client().await.unwrap();
    let name = unique_topic("doomed");
    let keep = unique_topic("kept");
    admin
        .create_topic(NewTopic::new(&name, 2, 1), false)
        .await
        .unwrap();
    admin
        .create_topic(NewTopic::new(&keep, 1, 1), false)
        .await
        .unwrap();
    wait_for_topic(&admin, &name).await;
    wait_for_topic(&admin, &keep).await;

    admin.delete_topic(&name).await.unwrap();
    let err = wait_for_topic_gone(&admin, &name).await;
    assert_kafka_error::<()>(Err(err), "Metadata", 3, "UNKNOWN_TOPIC_OR_PARTITION", None);
    // one request, one known and one unknown topic
    let both = admin
        .describe_topics(Some(&[name.clone(), keep.clone()]))
        .await
        .unwrap();
    assert_eq!(both.len(), 2);
    assert_eq!(
        both[&name].as_ref().err().and_then(AdminError::kafka_code),
        Some(3)
    );
    assert_eq!(both[&keep].as_ref().unwrap().partitions.len(), 1);

    assert_kafka_error(
        admin.describe_topic_configs(&name).await,
        "DescribeConfigs",
        3,
        "UNKNOWN_TOPIC_OR_PARTITION",
        None, // Kafka sends a null error message here
    );
    assert_kafka_error(
        admin.delete_topic(&name).await,
        "DeleteTopics",
        3,
        "UNKNOWN_TOPIC_OR_PARTITION",
        Some("This server does not host this topic-partition."),
    );
}

#[tokio::test]
async fn describe_never_auto_creates() {
    let b = TestBroker::start().await;
    let admin = b.client().await.unwrap();
    let name = unique_topic("ghost");
    for _ in 0..3 {
        let mut r = admin
            .describe_topics(Some(std::slice::from_ref(&name)))
            .await
            .unwrap();
        assert_kafka_error::<()>(
            r.remove(&name).unwrap().map(|_| ()),
            "Metadata",
            3,
            "UNKNOWN_TOPIC_OR_PARTITION",
            None,
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    let all = admin.describe_topics(None).await.unwrap();
    assert!(!all.contains_key(&name));
    assert!(admin.describe_topics(Some(&[])).await.unwrap().is_empty());
}

#[tokio::test]
async fn invalid_names_counts_and_configs() {
    let b = TestBroker::start().await;
    let admin = b.client().await.unwrap();
    assert_kafka_error(
        admin.create_topic(NewTopic::new("bad name!", 1, 1), false).await,
        "CreateTopics",
        17,
        "INVALID_TOPIC_EXCEPTION",
        Some("Topic name is invalid: 'bad name!' contains one or more characters other than ASCII alphanumerics, '.', '_' and '-'"),
    );
    assert_kafka_error(
        admin
            .create_topic(NewTopic::new(unique_topic("zero"), 0, 1), false)
            .await,
        "CreateTopics",
        37,
        "INVALID_PARTITIONS",
        Some("Number of partitions was set to an invalid non-positive value."),
    );
    assert_kafka_error(
        admin.create_topic(NewTopic::new(unique_topic("rf"), 1, 3), false).await,
        "CreateTopics",
        38,
        "INVALID_REPLICATION_FACTOR",
        Some("Unable to replicate the partition 3 time(s): The target replication factor of 3 cannot be reached because only 1 broker(s) are registered."),
    );
    assert_kafka_error(
        admin
            .create_topic(
                NewTopic::new(unique_topic("cfg"), 1, 1).with_config("no.such.config", "1"),
                false,
            )
            .await,
        "CreateTopics",
        40,
        "INVALID_CONFIG",
        Some("Unknown topic config name: no.such.config"),
    );
}

/// Config validation answers as Kafka's `ConfigDef` words them (each case
/// checked against Apache Kafka 4.1.1), through validate-only CreateTopics.
#[tokio::test]
async fn config_validator_messages_match_kafka() {
    let b = TestBroker::start().await;
    let admin = b.client().await.unwrap();
    let cases: &[(&str, &str, Option<&str>)] = &[
        ("cleanup.policy", "", None),
        ("cleanup.policy", "delete,", Some("Invalid value  for configuration cleanup.policy: String must be one of: compact, delete")),
        ("cleanup.policy", " compact , bogus ", Some("Invalid value bogus for configuration cleanup.policy: String must be one of: compact, delete")),
        ("cleanup.policy", "Compact", Some("Invalid value Compact for configuration cleanup.policy: String must be one of: compact, delete")),
        ("retention.ms", " 0010", None),
        ("retention.ms", "-5", Some("Invalid value -5 for configuration retention.ms: Value must be at least -1")),
        ("retention.ms", " abc ", Some("Invalid value  abc  for configuration retention.ms: Not a number of type LONG")),
        ("min.cleanable.dirty.ratio", "2", Some("Invalid value 2.0 for configuration min.cleanable.dirty.ratio: Value must be no more than 1")),
        ("min.cleanable.dirty.ratio", "-0.5", Some("Invalid value -0.5 for configuration min.cleanable.dirty.ratio: Value must be at least 0")),
        ("min.cleanable.dirty.ratio", "x", Some("Invalid value x for configuration min.cleanable.dirty.ratio: Not a number of type DOUBLE")),
        ("compression.type", " foo ", Some("Invalid value foo for configuration compression.type: String must be one of: uncompressed, zstd, lz4, snappy, gzip, producer")),
        ("compression.type", "ZSTD", Some("Invalid value ZSTD for configuration compression.type: String must be one of: uncompressed, zstd, lz4, snappy, gzip, producer")),
        ("preallocate", " yes ", Some("Invalid value  yes  for configuration preallocate: Expected value to be either true or false")),
        ("segment.bytes", "100", Some("Invalid value 100 for configuration segment.bytes: Value must be at least 1048576")),
        ("segment.bytes", "99999999999", Some("Invalid value 99999999999 for configuration segment.bytes: Not a number of type INT")),
        ("segment.index.bytes", "+7", None),
        ("compression.zstd.level", "23", Some("Invalid value 23 for configuration compression.zstd.level: Value must be no more than 22")),
        ("message.timestamp.type", " logappendtime", Some("Invalid value logappendtime for configuration message.timestamp.type: String must be one of: CreateTime, LogAppendTime")),
        ("leader.replication.throttled.replicas", "x,1:2", Some("Invalid value [x, 1:2] for configuration leader.replication.throttled.replicas: leader.replication.throttled.replicas must be the literal '*' or a list of replicas in the following format: [partitionId]:[brokerId],[partitionId]:[brokerId],...")),
        ("leader.replication.throttled.replicas", "*", None),
        ("follower.replication.throttled.replicas", "0:1,1:1", None),
        ("local.retention.ms", "-3", Some("Invalid value -3 for configuration local.retention.ms: Value must be at least -2")),
        ("local.retention.bytes", "-2", None),
        ("remote.log.copy.disable", "true", None),
        ("remote.log.delete.on.disable", "true", None),
        ("remote.storage.enable", "false", None),
        ("remote.storage.enable", "true", Some("Tiered Storage functionality is disabled in the broker. Topic cannot be configured with remote log storage.")),
        ("message.format.version", "3.0", Some("Unknown topic config name: message.format.version")),
    ];
    for (key, value, want) in cases {
        let name = unique_topic("valid");
        let r = admin
            .create_topic(NewTopic::new(&name, 1, 1).with_config(*key, *value), true)
            .await;
        match want {
            None => assert!(r.is_ok(), "{key}={value:?}: {r:?}"),
            Some(m) => assert_kafka_error(r, "CreateTopics", 40, "INVALID_CONFIG", Some(m)),
        }
    }
}

/// Kafka's `Topic.validate` messages, and SUBTRACT on a non-list config.
#[tokio::test]
async fn topic_name_rules_and_subtract_match_kafka() {
    let b = TestBroker::start().await;
    let admin = b.client().await.unwrap();
    let long = "x".repeat(250);
    let long_msg = format!(
        "Topic name is invalid: the length of '{long}' is longer than the max allowed length 249"
    );
    for (name, msg) in [
        (".", "Topic name is invalid: '.' is not allowed"),
        ("..", "Topic name is invalid: '..' is not allowed"),
        (long.as_str(), long_msg.as_str()),
        ("caf\u{e9}", "Topic name is invalid: 'caf\u{e9}' contains one or more characters other than ASCII alphanumerics, '.', '_' and '-'"),
    ] {
        assert_kafka_error(
            admin.create_topic(NewTopic::new(name, 1, 1), true).await,
            "CreateTopics",
            17,
            "INVALID_TOPIC_EXCEPTION",
            Some(msg),
        );
    }
    // 249 characters is fine
    admin
        .create_topic(NewTopic::new("y".repeat(249), 1, 1), true)
        .await
        .unwrap();

    let name = unique_topic("subtract");
    admin
        .create_topic(NewTopic::new(&name, 1, 1), false)
        .await
        .unwrap();
    wait_for_topic(&admin, &name).await;
    assert_kafka_error(
        admin
            .incremental_alter_topic_configs(
                &name,
                &[AlterConfigOp::Subtract("retention.ms".into(), "1".into())],
                false,
            )
            .await,
        "IncrementalAlterConfigs",
        40,
        "INVALID_CONFIG",
        Some("Can't SUBTRACT to key retention.ms because its type is not LIST."),
    );
}
