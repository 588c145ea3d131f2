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
    /// A Java class name.
    Class,
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
            ConfigType::Class => 8,
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
    /// A floating point number in this inclusive range (Kafka's
    /// `Range.between` on a DOUBLE; the bounds print as integers).
    DoubleBetween(i64, i64),
    /// One of these strings (Kafka's `ValidString`).
    OneOf(&'static [&'static str]),
    /// A list whose items are all one of these strings (Kafka's `ValidList`;
    /// the empty list passes).
    ListOf(&'static [&'static str]),
    /// Kafka's `ThrottledReplicaListValidator`: `*` or
    /// `partition:broker,...`.
    ThrottledReplicas,
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

pub(crate) const fn def(
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

const CLEANUP: &[&str] = &["compact", "delete"];
const COMPRESSION: &[&str] = &["uncompressed", "zstd", "lz4", "snappy", "gzip", "producer"];
const TS_TYPE: &[&str] = &["CreateTime", "LogAppendTime"];

/// Broker configs this broker understands.
pub const BROKER_CONFIGS: &[ConfigDef] = &[
    def("node.id", T::Int, Some("-1"), V::Any, false),
    def("process.roles", T::List, Some(""), V::Any, false),
    // Per-broker dynamic in Kafka (read_only false), see PER_BROKER_CONFIGS.
    def(
        "listeners",
        T::String,
        Some("PLAINTEXT://:9092"),
        V::Any,
        true,
    ),
    def("advertised.listeners", T::String, None, V::Any, false),
    def("controller.listener.names", T::String, None, V::Any, false),
    def("inter.broker.listener.name", T::String, None, V::Any, false),
    def(
        "listener.security.protocol.map",
        T::String,
        Some("SASL_SSL:SASL_SSL,PLAINTEXT:PLAINTEXT,SSL:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT"),
        V::Any,
        true,
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
    // Not dynamically reconfigurable in Kafka.
    def("num.partitions", T::Int, Some("1"), V::AtLeast(1), false),
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
        V::DoubleBetween(0, 1),
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
        V::ListOf(&["consumer", "classic", "share", "streams"]),
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
        "follower.replication.throttled.replicas",
        T::List,
        "",
        V::ThrottledReplicas,
        &[],
    ),
    tdef(
        "index.interval.bytes",
        T::Int,
        "4096",
        V::AtLeast(0),
        &[("log.index.interval.bytes", 1)],
    ),
    tdef(
        "leader.replication.throttled.replicas",
        T::List,
        "",
        V::ThrottledReplicas,
        &[],
    ),
    tdef(
        "local.retention.bytes",
        T::Long,
        "-2",
        V::AtLeast(-2),
        &[("log.local.retention.bytes", 1)],
    ),
    tdef(
        "local.retention.ms",
        T::Long,
        "-2",
        V::AtLeast(-2),
        &[("log.local.retention.ms", 1)],
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
        V::DoubleBetween(0, 1),
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
    tdef("remote.log.copy.disable", T::Boolean, "false", V::Any, &[]),
    tdef(
        "remote.log.delete.on.disable",
        T::Boolean,
        "false",
        V::Any,
        &[],
    ),
    // Accepted and described; `true` is refused, as by a Kafka broker with
    // tiered storage disabled (see `controller::validate_topic_configs`).
    tdef("remote.storage.enable", T::Boolean, "false", V::Any, &[]),
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

/// Every broker config Kafka 4.1.1 describes: ours, then the rest.
pub fn broker_defs() -> impl Iterator<Item = &'static ConfigDef> {
    BROKER_CONFIGS
        .iter()
        .chain(super::more_broker_defs::MORE_BROKER_CONFIGS)
}

/// Kafka's broker quota configs (`QuotaConfig.brokerQuotaConfigs`): dynamic
/// only, so a broker describes them only where they are set.
pub const BROKER_QUOTA_CONFIGS: &[ConfigDef] = &[
    def(
        "leader.replication.throttled.rate",
        ConfigType::Long,
        Some("9223372036854775807"),
        Validator::AtLeast(0),
        true,
    ),
    def(
        "follower.replication.throttled.rate",
        ConfigType::Long,
        Some("9223372036854775807"),
        Validator::AtLeast(0),
        true,
    ),
    def(
        "replica.alter.log.dirs.io.max.bytes.per.second",
        ConfigType::Long,
        Some("9223372036854775807"),
        Validator::AtLeast(0),
        true,
    ),
];

/// Looks up a broker config definition (the described ones and the quota
/// configs).
pub fn broker_def(name: &str) -> Option<&'static ConfigDef> {
    broker_defs()
        .chain(BROKER_QUOTA_CONFIGS)
        .find(|d| d.name == name)
}

/// Whether Kafka allows `name` only per broker, never as a cluster default.
pub fn per_broker_only(name: &str) -> bool {
    super::more_broker_defs::PER_BROKER_CONFIGS.contains(&name)
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

/// Renders a double as Java's `Double.toString` does (`2.0`, `0.5`,
/// `1.0E10`), for the value echoed in a range error.
fn java_double(d: f64) -> String {
    if d.is_nan() {
        return "NaN".into();
    }
    if d.is_infinite() {
        return if d > 0.0 { "Infinity" } else { "-Infinity" }.into();
    }
    let a = d.abs();
    if a == 0.0 || (1e-3..1e7).contains(&a) {
        let s = format!("{d}");
        if s.contains('.') {
            s
        } else {
            format!("{s}.0")
        }
    } else {
        let s = format!("{d:e}");
        let (m, e) = s.split_once('e').unwrap_or((&s, "0"));
        let m = if m.contains('.') {
            m.to_string()
        } else {
            format!("{m}.0")
        };
        format!("{m}E{e}")
    }
}

/// Parses a double as Java's `Double.parseDouble` does for the usual
/// spellings: decimal or scientific, an optional `d`/`f` suffix, `NaN` and
/// `Infinity` (Rust's `inf`/`nan` spellings are refused).
fn java_parse_double(v: &str) -> Option<f64> {
    let unsigned = v.strip_prefix(['+', '-']).unwrap_or(v);
    if unsigned == "NaN" || unsigned == "Infinity" {
        return v.replace("Infinity", "inf").parse().ok();
    }
    let body = v.strip_suffix(['d', 'D', 'f', 'F']).unwrap_or(v);
    if body.is_empty()
        || !body
            .bytes()
            .all(|c| c.is_ascii_digit() || matches!(c, b'+' | b'-' | b'.' | b'e' | b'E'))
    {
        return None;
    }
    body.parse().ok()
}

/// Splits a LIST value as Kafka's `ConfigDef.parseType` does: the trimmed
/// text split on commas with the whitespace around them, empty text being
/// the empty list (empty items are kept).
pub fn parse_list(value: &str) -> Vec<&str> {
    let t = value.trim();
    if t.is_empty() {
        return Vec::new();
    }
    t.split(',').map(str::trim).collect()
}

/// Checks `value` against a type and validator. The error is Kafka's
/// `ConfigException` message, word for word: `Invalid value V for
/// configuration K: <why>`, where V is the raw text for a type error and the
/// parsed value (a number, the trimmed string, the offending list item) for
/// a validator error, as Kafka's `ConfigDef` reports them.
pub fn validate(
    name: &str,
    ty: ConfigType,
    validator: Validator,
    value: &str,
) -> Result<(), String> {
    let v = value.trim();
    let bad = |shown: &str, why: &str| {
        Err(format!(
            "Invalid value {shown} for configuration {name}: {why}"
        ))
    };
    let not_a_number = |kind: &str| bad(value, &format!("Not a number of type {kind}"));
    // The parsed value: an integer, a double, or none.
    let mut int: Option<i64> = None;
    let mut dbl: Option<f64> = None;
    match ty {
        ConfigType::Int => match v.parse::<i32>() {
            Ok(n) => int = Some(n.into()),
            Err(_) => return not_a_number("INT"),
        },
        ConfigType::Short => match v.parse::<i16>() {
            Ok(n) => int = Some(n.into()),
            Err(_) => return not_a_number("SHORT"),
        },
        ConfigType::Long => match v.parse::<i64>() {
            Ok(n) => int = Some(n),
            Err(_) => return not_a_number("LONG"),
        },
        ConfigType::Double => match java_parse_double(v) {
            Some(d) => dbl = Some(d),
            None => return not_a_number("DOUBLE"),
        },
        ConfigType::Boolean => {
            if !v.eq_ignore_ascii_case("true") && !v.eq_ignore_ascii_case("false") {
                return bad(value, "Expected value to be either true or false");
            }
        }
        ConfigType::String | ConfigType::List | ConfigType::Password | ConfigType::Class => {}
    }
    let range = |lo: Option<i64>, hi: Option<i64>| -> Result<(), String> {
        let (n, shown) = match (int, dbl) {
            (Some(n), _) => (n as f64, n.to_string()),
            (None, Some(d)) => (d, java_double(d)),
            (None, None) => return Ok(()),
        };
        match (lo, hi) {
            (Some(lo), _) if n < lo as f64 => bad(&shown, &format!("Value must be at least {lo}")),
            (_, Some(hi)) if n > hi as f64 => {
                bad(&shown, &format!("Value must be no more than {hi}"))
            }
            _ => Ok(()),
        }
    };
    match validator {
        Validator::Any => Ok(()),
        Validator::AtLeast(min) => range(Some(min), None),
        Validator::Between(lo, hi) | Validator::DoubleBetween(lo, hi) => range(Some(lo), Some(hi)),
        Validator::OneOf(allowed) => {
            if allowed.contains(&v) {
                Ok(())
            } else {
                bad(v, &format!("String must be one of: {}", allowed.join(", ")))
            }
        }
        Validator::ListOf(allowed) => {
            match parse_list(v).into_iter().find(|i| !allowed.contains(i)) {
                Some(i) => bad(i, &format!("String must be one of: {}", allowed.join(", "))),
                None => Ok(()),
            }
        }
        Validator::ThrottledReplicas => {
            let items = parse_list(v);
            let replica = |s: &str| {
                s.is_empty()
                    || s.split_once(':').is_some_and(|(p, b)| {
                        !p.is_empty()
                            && !b.is_empty()
                            && p.bytes().all(|c| c.is_ascii_digit())
                            && b.bytes().all(|c| c.is_ascii_digit())
                    })
            };
            if items.iter().all(|s| replica(s)) || items.concat() == "*" {
                Ok(())
            } else {
                bad(
                    &format!("[{}]", items.join(", ")),
                    &format!(
                        "{name} must be the literal '*' or a list of replicas in the following format: [partitionId]:[brokerId],[partitionId]:[brokerId],..."
                    ),
                )
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

    #[test]
    fn messages_are_kafkas_word_for_word() {
        let check = |name: &str, value: &str| {
            let d = topic_def(name).expect("known");
            validate(d.name, d.ty, d.validator, value).err()
        };
        assert_eq!(
            check("cleanup.policy", "sideways").as_deref(),
            Some("Invalid value sideways for configuration cleanup.policy: String must be one of: compact, delete")
        );
        assert_eq!(check("cleanup.policy", ""), None);
        assert_eq!(
            check("cleanup.policy", "delete,").as_deref(),
            Some("Invalid value  for configuration cleanup.policy: String must be one of: compact, delete")
        );
        assert_eq!(
            check("retention.ms", " abc ").as_deref(),
            Some("Invalid value  abc  for configuration retention.ms: Not a number of type LONG")
        );
        assert_eq!(check("retention.ms", " 0010"), None);
        assert_eq!(
            check("min.cleanable.dirty.ratio", "2").as_deref(),
            Some("Invalid value 2.0 for configuration min.cleanable.dirty.ratio: Value must be no more than 1")
        );
        assert_eq!(
            check("min.cleanable.dirty.ratio", "inf").as_deref(),
            Some("Invalid value inf for configuration min.cleanable.dirty.ratio: Not a number of type DOUBLE")
        );
        assert_eq!(
            check("segment.bytes", "99999999999").as_deref(),
            Some("Invalid value 99999999999 for configuration segment.bytes: Not a number of type INT")
        );
        assert_eq!(
            check("message.timestamp.type", " logappendtime").as_deref(),
            Some("Invalid value logappendtime for configuration message.timestamp.type: String must be one of: CreateTime, LogAppendTime")
        );
        assert_eq!(
            check("follower.replication.throttled.replicas", "x,1:2").as_deref(),
            Some("Invalid value [x, 1:2] for configuration follower.replication.throttled.replicas: follower.replication.throttled.replicas must be the literal '*' or a list of replicas in the following format: [partitionId]:[brokerId],[partitionId]:[brokerId],...")
        );
        assert_eq!(check("follower.replication.throttled.replicas", "*"), None);
        assert_eq!(
            check("follower.replication.throttled.replicas", "0:1, 1:2"),
            None
        );
        assert_eq!(java_double(1e10), "1.0E10");
        assert_eq!(java_double(0.5), "0.5");
        assert_eq!(java_double(-3.0), "-3.0");
    }

    #[test]
    fn broker_configs_are_kafkas() {
        // Kafka 4.1.1 describes 316 broker configs, each once.
        let mut names: Vec<&str> = broker_defs().map(|d| d.name).collect();
        assert_eq!(names.len(), 316);
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), 316);
        // read_only (= !dynamic) as Kafka's DynamicBrokerConfig
        let dynamic = |n: &str| broker_def(n).expect(n).dynamic;
        assert!(dynamic("listeners"));
        assert!(dynamic("listener.security.protocol.map"));
        assert!(!dynamic("num.partitions"));
        assert!(!dynamic("broker.id"));
        assert!(dynamic("log.local.retention.ms"));
        assert!(per_broker_only("listeners"));
        assert!(!per_broker_only("log.retention.ms"));
        assert_eq!(TOPIC_CONFIGS.len(), 33);
    }
}
