//! Config definitions: Kafka's config keys, their types, defaults and
//! validators, and the mapping from topic configs to their broker synonyms.

/// A config value's type, named as Kafka's `ConfigDef.Type` (reported by
/// DescribeConfigs v3+).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigType {
    /// `true` / `false`.
    Boolean,
    /// A 32-bit integer.
    Int,
    /// A 64-bit integer.
    Long,
    /// A floating point number.
    Double,
    /// Free text.
    String,
    /// A comma-separated list.
    List,
    /// A 16-bit integer.
    Short,
    /// A password (never echoed).
    Password,
}

impl ConfigType {
    /// The DescribeConfigs `config_type` code.
    pub fn code(self) -> i8 {
        match self {
            ConfigType::Boolean => 1,
            ConfigType::String => 2,
            ConfigType::Int => 3,
            ConfigType::Short => 4,
            ConfigType::Long => 5,
            ConfigType::Double => 6,
            ConfigType::List => 7,
            ConfigType::Password => 9,
        }
    }
}

/// A check a value must pass.
#[derive(Debug, Clone, Copy)]
pub enum Validator {
    /// Anything of the right type.
    Any,
    /// A number no less than this.
    AtLeast(i64),
    /// A number in this inclusive range.
    Between(i64, i64),
    /// One of these strings.
    OneOf(&'static [&'static str]),
    /// A non-empty list of these strings.
    ListOf(&'static [&'static str]),
}

/// One config key.
#[derive(Debug, Clone, Copy)]
pub struct ConfigDef {
    /// The key, e.g. `log.retention.ms`.
    pub name: &'static str,
    /// The value type.
    pub ty: ConfigType,
    /// The default value, if any, as Kafka renders it.
    pub default: Option<&'static str>,
    /// The value check.
    pub validator: Validator,
    /// Whether AlterConfigs may change it at runtime for a broker.
    pub dynamic: bool,
}

const fn def(
    name: &'static str,
    ty: ConfigType,
    default: Option<&'static str>,
    validator: Validator,
    dynamic: bool,
) -> ConfigDef {
    ConfigDef {
        name,
        ty,
        default,
        validator,
        dynamic,
    }
}

use ConfigType as T;
use Validator as V;

const CLEANUP: &[&str] = &["delete", "compact"];
const COMPRESSION: &[&str] = &["uncompressed", "zstd", "lz4", "snappy", "gzip", "producer"];
const TS_TYPE: &[&str] = &["CreateTime", "LogAppendTime"];

/// Broker configs this broker understands.
pub const BROKER_CONFIGS: &[ConfigDef] = &[
    def("node.id", T::Int, Some("-1"), V::Any, false),
    def("process.roles", T::List, Some(""), V::Any, false),
    def(
        "listeners",
        T::String,
        Some("PLAINTEXT://:9092"),
        V::Any,
        false,
    ),
    def("advertised.listeners", T::String, None, V::Any, false),
    def("controller.listener.names", T::String, None, V::Any, false),
    def("inter.broker.listener.name", T::String, None, V::Any, false),
    def(
        "listener.security.protocol.map",
        T::String,
        Some("SASL_SSL:SASL_SSL,PLAINTEXT:PLAINTEXT,SSL:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT"),
        V::Any,
        false,
    ),
    def("controller.quorum.voters", T::List, Some(""), V::Any, false),
    def(
        "controller.quorum.bootstrap.servers",
        T::List,
        Some(""),
        V::Any,
        false,
    ),
    def("log.dirs", T::String, None, V::Any, false),
    def("log.dir", T::String, Some("/tmp/kafka-logs"), V::Any, false),
    def("metadata.log.dir", T::String, None, V::Any, false),
    def("broker.rack", T::String, None, V::Any, false),
    def("num.partitions", T::Int, Some("1"), V::AtLeast(1), true),
    def(
        "default.replication.factor",
        T::Int,
        Some("1"),
        V::AtLeast(1),
        false,
    ),
    def(
        "auto.create.topics.enable",
        T::Boolean,
        Some("true"),
        V::Any,
        false,
    ),
    def(
        "delete.topic.enable",
        T::Boolean,
        Some("true"),
        V::Any,
        false,
    ),
    def("log.retention.ms", T::Long, None, V::AtLeast(-1), true),
    def("log.retention.minutes", T::Int, None, V::AtLeast(-1), false),
    def(
        "log.retention.hours",
        T::Int,
        Some("168"),
        V::AtLeast(-1),
        false,
    ),
    def("log.retention.bytes", T::Long, Some("-1"), V::Any, true),
    def(
        "log.segment.bytes",
        T::Int,
        Some("1073741824"),
        V::AtLeast(1_048_576),
        true,
    ),
    def("log.roll.ms", T::Long, None, V::AtLeast(1), true),
    def("log.roll.hours", T::Int, Some("168"), V::AtLeast(1), false),
    def("log.roll.jitter.ms", T::Long, None, V::AtLeast(0), true),
    def(
        "log.roll.jitter.hours",
        T::Int,
        Some("0"),
        V::AtLeast(0),
        false,
    ),
    def(
        "log.flush.interval.messages",
        T::Long,
        Some("9223372036854775807"),
        V::AtLeast(1),
        true,
    ),
    def("log.flush.interval.ms", T::Long, None, V::AtLeast(0), true),
    def(
        "log.flush.scheduler.interval.ms",
        T::Long,
        Some("9223372036854775807"),
        V::Any,
        false,
    ),
    def(
        "log.retention.check.interval.ms",
        T::Long,
        Some("300000"),
        V::AtLeast(1),
        false,
    ),
    def(
        "log.cleanup.policy",
        T::List,
        Some("delete"),
        V::ListOf(CLEANUP),
        true,
    ),
    def(
        "log.index.interval.bytes",
        T::Int,
        Some("4096"),
        V::AtLeast(0),
        true,
    ),
    def(
        "log.index.size.max.bytes",
        T::Int,
        Some("10485760"),
        V::AtLeast(4),
        true,
    ),
    def(
        "log.message.timestamp.type",
        T::String,
        Some("CreateTime"),
        V::OneOf(TS_TYPE),
        true,
    ),
    def(
        "log.message.timestamp.before.max.ms",
        T::Long,
        Some("9223372036854775807"),
        V::AtLeast(0),
        true,
    ),
    def(
        "log.message.timestamp.after.max.ms",
        T::Long,
        Some("3600000"),
        V::AtLeast(0),
        true,
    ),
    def(
        "log.segment.delete.delay.ms",
        T::Long,
        Some("60000"),
        V::AtLeast(0),
        true,
    ),
    def("log.preallocate", T::Boolean, Some("false"), V::Any, true),
    def(
        "log.cleaner.enable",
        T::Boolean,
        Some("true"),
        V::Any,
        false,
    ),
    def(
        "log.cleaner.delete.retention.ms",
        T::Long,
        Some("86400000"),
        V::AtLeast(0),
        true,
    ),
    def(
        "log.cleaner.min.compaction.lag.ms",
        T::Long,
        Some("0"),
        V::AtLeast(0),
        true,
    ),
    def(
        "log.cleaner.max.compaction.lag.ms",
        T::Long,
        Some("9223372036854775807"),
        V::AtLeast(1),
        true,
    ),
    def(
        "log.cleaner.min.cleanable.ratio",
        T::Double,
        Some("0.5"),
        V::Any,
        true,
    ),
    def(
        "log.cleaner.threads",
        T::Int,
        Some("1"),
        V::AtLeast(0),
        true,
    ),
    def(
        "log.cleaner.backoff.ms",
        T::Long,
        Some("15000"),
        V::AtLeast(0),
        true,
    ),
    def(
        "message.max.bytes",
        T::Int,
        Some("1048588"),
        V::AtLeast(0),
        true,
    ),
    def(
        "min.insync.replicas",
        T::Int,
        Some("1"),
        V::AtLeast(1),
        true,
    ),
    def(
        "compression.type",
        T::String,
        Some("producer"),
        V::OneOf(COMPRESSION),
        true,
    ),
    def(
        "unclean.leader.election.enable",
        T::Boolean,
        Some("false"),
        V::Any,
        true,
    ),
    def(
        "socket.request.max.bytes",
        T::Int,
        Some("104857600"),
        V::AtLeast(1),
        false,
    ),
    def(
        "socket.send.buffer.bytes",
        T::Int,
        Some("102400"),
        V::Any,
        false,
    ),
    def(
        "socket.receive.buffer.bytes",
        T::Int,
        Some("102400"),
        V::Any,
        false,
    ),
    def(
        "num.network.threads",
        T::Int,
        Some("3"),
        V::AtLeast(1),
        true,
    ),
    def("num.io.threads", T::Int, Some("8"), V::AtLeast(1), true),
    def(
        "num.recovery.threads.per.data.dir",
        T::Int,
        Some("2"),
        V::AtLeast(1),
        true,
    ),
    def(
        "offsets.topic.replication.factor",
        T::Short,
        Some("3"),
        V::AtLeast(1),
        false,
    ),
    def(
        "offsets.topic.num.partitions",
        T::Int,
        Some("50"),
        V::AtLeast(1),
        false,
    ),
    def(
        "transaction.state.log.replication.factor",
        T::Short,
        Some("3"),
        V::AtLeast(1),
        false,
    ),
    def(
        "transaction.state.log.min.isr",
        T::Int,
        Some("2"),
        V::AtLeast(1),
        false,
    ),
    def(
        "share.coordinator.state.topic.replication.factor",
        T::Short,
        Some("3"),
        V::AtLeast(1),
        false,
    ),
    def(
        "share.coordinator.state.topic.min.isr",
        T::Short,
        Some("2"),
        V::AtLeast(1),
        false,
    ),
    def(
        "group.initial.rebalance.delay.ms",
        T::Int,
        Some("3000"),
        V::Any,
        false,
    ),
    def(
        "group.min.session.timeout.ms",
        T::Int,
        Some("6000"),
        V::Any,
        false,
    ),
    def(
        "group.max.session.timeout.ms",
        T::Int,
        Some("1800000"),
        V::Any,
        false,
    ),
    def(
        "group.max.size",
        T::Int,
        Some("2147483647"),
        V::AtLeast(1),
        false,
    ),
    def(
        "offsets.topic.segment.bytes",
        T::Int,
        Some("104857600"),
        V::AtLeast(1),
        false,
    ),
    def(
        "offset.metadata.max.bytes",
        T::Int,
        Some("4096"),
        V::Any,
        false,
    ),
    def(
        "offsets.retention.minutes",
        T::Int,
        Some("10080"),
        V::AtLeast(1),
        false,
    ),
    def(
        "offsets.retention.check.interval.ms",
        T::Long,
        Some("600000"),
        V::AtLeast(1),
        false,
    ),
    def(
        "group.consumer.session.timeout.ms",
        T::Int,
        Some("45000"),
        V::AtLeast(1),
        false,
    ),
    def(
        "group.consumer.heartbeat.interval.ms",
        T::Int,
        Some("5000"),
        V::AtLeast(1),
        false,
    ),
    def(
        "group.consumer.max.size",
        T::Int,
        Some("2147483647"),
        V::AtLeast(1),
        false,
    ),
    def(
        "group.consumer.assignors",
        T::List,
        Some("uniform,range"),
        V::Any,
        false,
    ),
    def(
        "replica.fetch.max.bytes",
        T::Int,
        Some("1048576"),
        V::AtLeast(0),
        false,
    ),
    def(
        "fetch.max.bytes",
        T::Int,
        Some("57671680"),
        V::AtLeast(1024),
        false,
    ),
    def(
        "auto.leader.rebalance.enable",
        T::Boolean,
        Some("true"),
        V::Any,
        false,
    ),
    def(
        "queued.max.requests",
        T::Int,
        Some("500"),
        V::AtLeast(1),
        false,
    ),
    def(
        "max.connections",
        T::Int,
        Some("2147483647"),
        V::AtLeast(0),
        true,
    ),
    def(
        "connections.max.idle.ms",
        T::Long,
        Some("600000"),
        V::Any,
        false,
    ),
    def(
        "group.coordinator.rebalance.protocols",
        T::List,
        Some("classic,consumer,streams"),
        V::Any,
        false,
    ),
];

/// A topic config key and the broker keys it falls back to, in priority order.
#[derive(Debug, Clone, Copy)]
pub struct TopicConfigDef {
    /// The topic key, e.g. `retention.ms`.
    pub name: &'static str,
    /// Value type.
    pub ty: ConfigType,
    /// Kafka's built-in default, used when no broker synonym is set.
    pub default: &'static str,
    /// The value check.
    pub validator: Validator,
    /// Broker keys, highest priority first, with the multiplier that turns
    /// their value into this key's unit (e.g. hours to ms).
    pub synonyms: &'static [(&'static str, i64)],
}

const fn tdef(
    name: &'static str,
    ty: ConfigType,
    default: &'static str,
    validator: Validator,
    synonyms: &'static [(&'static str, i64)],
) -> TopicConfigDef {
    TopicConfigDef {
        name,
        ty,
        default,
        validator,
        synonyms,
    }
}

const MIN: i64 = 60_000;
const HOUR: i64 = 3_600_000;

/// Topic configs, as Kafka's `LogConfig` defines them.
pub const TOPIC_CONFIGS: &[TopicConfigDef] = &[
    tdef(
        "cleanup.policy",
        T::List,
        "delete",
        V::ListOf(CLEANUP),
        &[("log.cleanup.policy", 1)],
    ),
    tdef(
        "compression.type",
        T::String,
        "producer",
        V::OneOf(COMPRESSION),
        &[("compression.type", 1)],
    ),
    tdef(
        "compression.gzip.level",
        T::Int,
        "-1",
        V::Between(-1, 9),
        &[("compression.gzip.level", 1)],
    ),
    tdef(
        "compression.lz4.level",
        T::Int,
        "9",
        V::Between(1, 17),
        &[("compression.lz4.level", 1)],
    ),
    tdef(
        "compression.zstd.level",
        T::Int,
        "3",
        V::Between(-131072, 22),
        &[("compression.zstd.level", 1)],
    ),
    tdef(
        "delete.retention.ms",
        T::Long,
        "86400000",
        V::AtLeast(0),
        &[("log.cleaner.delete.retention.ms", 1)],
    ),
    tdef(
        "file.delete.delay.ms",
        T::Long,
        "60000",
        V::AtLeast(0),
        &[("log.segment.delete.delay.ms", 1)],
    ),
    tdef(
        "flush.messages",
        T::Long,
        "9223372036854775807",
        V::AtLeast(1),
        &[("log.flush.interval.messages", 1)],
    ),
    tdef(
        "flush.ms",
        T::Long,
        "9223372036854775807",
        V::AtLeast(0),
        &[("log.flush.interval.ms", 1)],
    ),
    tdef(
        "index.interval.bytes",
        T::Int,
        "4096",
        V::AtLeast(0),
        &[("log.index.interval.bytes", 1)],
    ),
    tdef(
        "max.compaction.lag.ms",
        T::Long,
        "9223372036854775807",
        V::AtLeast(1),
        &[("log.cleaner.max.compaction.lag.ms", 1)],
    ),
    tdef(
        "max.message.bytes",
        T::Int,
        "1048588",
        V::AtLeast(0),
        &[("message.max.bytes", 1)],
    ),
    tdef(
        "message.timestamp.after.max.ms",
        T::Long,
        "3600000",
        V::AtLeast(0),
        &[("log.message.timestamp.after.max.ms", 1)],
    ),
    tdef(
        "message.timestamp.before.max.ms",
        T::Long,
        "9223372036854775807",
        V::AtLeast(0),
        &[("log.message.timestamp.before.max.ms", 1)],
    ),
    tdef(
        "message.timestamp.type",
        T::String,
        "CreateTime",
        V::OneOf(TS_TYPE),
        &[("log.message.timestamp.type", 1)],
    ),
    tdef(
        "min.cleanable.dirty.ratio",
        T::Double,
        "0.5",
        V::Any,
        &[("log.cleaner.min.cleanable.ratio", 1)],
    ),
    tdef(
        "min.compaction.lag.ms",
        T::Long,
        "0",
        V::AtLeast(0),
        &[("log.cleaner.min.compaction.lag.ms", 1)],
    ),
    tdef(
        "min.insync.replicas",
        T::Int,
        "1",
        V::AtLeast(1),
        &[("min.insync.replicas", 1)],
    ),
    tdef(
        "preallocate",
        T::Boolean,
        "false",
        V::Any,
        &[("log.preallocate", 1)],
    ),
    tdef(
        "retention.bytes",
        T::Long,
        "-1",
        V::Any,
        &[("log.retention.bytes", 1)],
    ),
    tdef(
        "retention.ms",
        T::Long,
        "604800000",
        V::AtLeast(-1),
        &[
            ("log.retention.ms", 1),
            ("log.retention.minutes", MIN),
            ("log.retention.hours", HOUR),
        ],
    ),
    tdef(
        "segment.bytes",
        T::Int,
        "1073741824",
        V::AtLeast(1_048_576),
        &[("log.segment.bytes", 1)],
    ),
    tdef(
        "segment.index.bytes",
        T::Int,
        "10485760",
        V::AtLeast(4),
        &[("log.index.size.max.bytes", 1)],
    ),
    tdef(
        "segment.jitter.ms",
        T::Long,
        "0",
        V::AtLeast(0),
        &[("log.roll.jitter.ms", 1), ("log.roll.jitter.hours", HOUR)],
    ),
    tdef(
        "segment.ms",
        T::Long,
        "604800000",
        V::AtLeast(1),
        &[("log.roll.ms", 1), ("log.roll.hours", HOUR)],
    ),
    tdef(
        "unclean.leader.election.enable",
        T::Boolean,
        "false",
        V::Any,
        &[("unclean.leader.election.enable", 1)],
    ),
];

/// Looks up a broker config definition.
pub fn broker_def(name: &str) -> Option<&'static ConfigDef> {
    BROKER_CONFIGS.iter().find(|d| d.name == name)
}

/// Kafka 4's internal topic config that allows segments below the 1 MiB
/// floor of `segment.bytes` (KIP-1030); accepted, never described.
pub const INTERNAL_SEGMENT_BYTES: TopicConfigDef = TopicConfigDef {
    name: "internal.segment.bytes",
    ty: ConfigType::Int,
    default: "1073741824",
    validator: Validator::AtLeast(14),
    synonyms: &[],
};

/// Looks up a topic config definition (including internal ones).
pub fn topic_def(name: &str) -> Option<&'static TopicConfigDef> {
    if name == INTERNAL_SEGMENT_BYTES.name {
        return Some(&INTERNAL_SEGMENT_BYTES);
    }
    TOPIC_CONFIGS.iter().find(|d| d.name == name)
}

/// Checks `value` against a type and validator; the error reads like Kafka's
/// `ConfigException` message.
pub fn validate(
    name: &str,
    ty: ConfigType,
    validator: Validator,
    value: &str,
) -> Result<(), String> {
    let v = value.trim();
    let bad = |why: &str| {
        Err(format!(
            "Invalid value {value} for configuration {name}: {why}"
        ))
    };
    let num: Option<i64> = match ty {
        ConfigType::Int | ConfigType::Short | ConfigType::Long => {
            let parsed = match ty {
                ConfigType::Int => v.parse::<i32>().map(i64::from).ok(),
                ConfigType::Short => v.parse::<i16>().map(i64::from).ok(),
                _ => v.parse::<i64>().ok(),
            };
            match parsed {
                Some(n) => Some(n),
                None => {
                    let kind = match ty {
                        ConfigType::Int => "INT",
                        ConfigType::Short => "SHORT",
                        _ => "LONG",
                    };
                    return bad(&format!("Not a number of type {kind}"));
                }
            }
        }
        ConfigType::Double => {
            if v.parse::<f64>().is_err() {
                return bad("Not a number of type DOUBLE");
            }
            None
        }
        ConfigType::Boolean => {
            if !v.eq_ignore_ascii_case("true") && !v.eq_ignore_ascii_case("false") {
                return bad("Expected value to be either true or false");
            }
            None
        }
        _ => None,
    };
    match validator {
        Validator::Any => Ok(()),
        Validator::AtLeast(min) => match num {
            Some(n) if n < min => bad(&format!("Value must be at least {min}")),
            _ => Ok(()),
        },
        Validator::Between(lo, hi) => match num {
            Some(n) if n < lo => bad(&format!("Value must be at least {lo}")),
            Some(n) if n > hi => bad(&format!("Value must be no more than {hi}")),
            _ => Ok(()),
        },
        Validator::OneOf(allowed) => {
            if allowed.contains(&v) {
                Ok(())
            } else {
                bad(&format!("String must be one of: {}", allowed.join(", ")))
            }
        }
        Validator::ListOf(allowed) => {
            let items: Vec<&str> = v
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .collect();
            if items.is_empty() {
                return bad("Empty list");
            }
            match items.iter().find(|i| !allowed.contains(i)) {
                Some(i) => bad(&format!(
                    "Invalid value {i}; valid values are [{}]",
                    allowed.join(", ")
                )),
                None => Ok(()),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validators_read_like_kafka() {
        let d = topic_def("retention.ms").expect("known");
        assert!(validate(d.name, d.ty, d.validator, "1000").is_ok());
        assert!(validate(d.name, d.ty, d.validator, "-1").is_ok());
        let e = validate(d.name, d.ty, d.validator, "-2").expect_err("too small");
        assert!(e.contains("at least -1"), "{e}");
        let e = validate(d.name, d.ty, d.validator, "abc").expect_err("nan");
        assert!(e.contains("Not a number"), "{e}");
        let c = topic_def("cleanup.policy").expect("known");
        assert!(validate(c.name, c.ty, c.validator, "compact,delete").is_ok());
        assert!(validate(c.name, c.ty, c.validator, "bogus").is_err());
        let z = topic_def("compression.gzip.level").expect("known");
        assert!(validate(z.name, z.ty, z.validator, "10")
            .expect_err("hi")
            .contains("no more than 9"));
        assert!(validate(z.name, z.ty, z.validator, "-2")
            .expect_err("lo")
            .contains("at least -1"));
    }
}
