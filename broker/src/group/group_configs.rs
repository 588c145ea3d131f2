//! Per-group configs (`ConfigResource.Type.GROUP`, resource type 32): the
//! keys of Kafka 4.1's `GroupConfig`, their validation against the broker's
//! bounds, and what DescribeConfigs shows for a group.
//!
//! Overrides are stored in the metadata log
//! ([`MetadataRecord::AlterGroupConfigs`](crate::metadata::MetadataRecord)),
//! like topic configs, and every broker sees them in its `ClusterImage`.
//!
//! Only `consumer.session.timeout.ms` and `consumer.heartbeat.interval.ms`
//! act on anything here: the KIP-848 coordinator uses them for the group's
//! members. The `share.*` and `streams.*` keys are accepted, validated,
//! stored and described as Kafka does, but this broker runs no share or
//! streams groups, so they change nothing.

use std::collections::BTreeMap;

use crate::config::defs::ConfigType;
use crate::config::BrokerConfig;

use super::consumer::ConsumerGroupConfig;

/// `consumer.session.timeout.ms`.
pub const CONSUMER_SESSION_TIMEOUT_MS: &str = "consumer.session.timeout.ms";
/// `consumer.heartbeat.interval.ms`.
pub const CONSUMER_HEARTBEAT_INTERVAL_MS: &str = "consumer.heartbeat.interval.ms";

/// DescribeConfigs' `ConfigSource` of a group override (`GROUP_CONFIG`).
pub const SOURCE_GROUP_CONFIG: i8 = 8;
/// DescribeConfigs' `ConfigSource` of a default (`DEFAULT_CONFIG`).
pub const SOURCE_DEFAULT_CONFIG: i8 = 5;

/// Where a key's default comes from.
#[derive(Debug, Clone, Copy)]
enum Default {
    /// The broker config key (Kafka's `extractGroupConfigMap`), else the builtin.
    Broker(&'static str, &'static str),
    /// A fixed value.
    Fixed(&'static str),
}

/// The value check `ConfigDef.parse` applies.
#[derive(Debug, Clone, Copy)]
enum Check {
    AtLeast(i64),
    OneOf(&'static [&'static str]),
    AutoOffsetReset,
}

#[derive(Debug, Clone, Copy)]
struct Def {
    name: &'static str,
    ty: ConfigType,
    default: Default,
    check: Check,
    doc: &'static str,
}

/// Kafka 4.1.1's `GroupConfig` keys, in its order.
const DEFS: &[Def] = &[
    Def {
        name: CONSUMER_SESSION_TIMEOUT_MS,
        ty: ConfigType::Int,
        default: Default::Broker("group.consumer.session.timeout.ms", "45000"),
        check: Check::AtLeast(1),
        doc: "Session timeout of the group's consumer-protocol (KIP-848) members.",
    },
    Def {
        name: CONSUMER_HEARTBEAT_INTERVAL_MS,
        ty: ConfigType::Int,
        default: Default::Broker("group.consumer.heartbeat.interval.ms", "5000"),
        check: Check::AtLeast(1),
        doc: "Heartbeat interval given to the group's consumer-protocol (KIP-848) members.",
    },
    Def {
        name: "share.session.timeout.ms",
        ty: ConfigType::Int,
        default: Default::Broker("group.share.session.timeout.ms", "45000"),
        check: Check::AtLeast(1),
        doc: "Share group session timeout. Stored only: this broker runs no share groups.",
    },
    Def {
        name: "share.heartbeat.interval.ms",
        ty: ConfigType::Int,
        default: Default::Broker("group.share.heartbeat.interval.ms", "5000"),
        check: Check::AtLeast(1),
        doc: "Share group heartbeat interval. Stored only: this broker runs no share groups.",
    },
    Def {
        name: "share.record.lock.duration.ms",
        ty: ConfigType::Int,
        default: Default::Broker("group.share.record.lock.duration.ms", "30000"),
        check: Check::AtLeast(1000),
        doc: "Share group record lock duration. Stored only: this broker runs no share groups.",
    },
    Def {
        name: "share.auto.offset.reset",
        ty: ConfigType::String,
        default: Default::Fixed("latest"),
        check: Check::AutoOffsetReset,
        doc: "Share group start offset strategy. Stored only: this broker runs no share groups.",
    },
    Def {
        name: "share.isolation.level",
        ty: ConfigType::String,
        default: Default::Fixed("read_uncommitted"),
        check: Check::OneOf(&["read_committed", "read_uncommitted"]),
        doc: "Share group isolation level. Stored only: this broker runs no share groups.",
    },
    Def {
        name: "streams.session.timeout.ms",
        ty: ConfigType::Int,
        default: Default::Fixed("45000"),
        check: Check::AtLeast(1),
        doc: "Streams group session timeout. Stored only: this broker runs no streams groups.",
    },
    Def {
        name: "streams.heartbeat.interval.ms",
        ty: ConfigType::Int,
        default: Default::Fixed("5000"),
        check: Check::AtLeast(1),
        doc: "Streams group heartbeat interval. Stored only: this broker runs no streams groups.",
    },
    Def {
        name: "streams.num.standby.replicas",
        ty: ConfigType::Int,
        default: Default::Fixed("0"),
        check: Check::AtLeast(0),
        doc: "Streams group standby replicas. Stored only: this broker runs no streams groups.",
    },
];

fn def(name: &str) -> Option<&'static Def> {
    DEFS.iter().find(|d| d.name == name)
}

/// Whether `name` is a group config key.
pub fn is_group_config(name: &str) -> bool {
    def(name).is_some()
}

/// Java's `Integer.parseInt` of a trimmed value, as `ConfigDef` parses INT.
fn parse_int(v: &str) -> Option<i64> {
    v.trim().parse::<i32>().ok().map(i64::from)
}

/// Java's `Duration.parse` (`PnDTnHnMn.nS`), returning whether it is negative.
fn parse_duration_negative(text: &str) -> Option<bool> {
    let re = regex::Regex::new(
        r"(?i)^([-+]?)P(?:([-+]?[0-9]+)D)?(T(?:([-+]?[0-9]+)H)?(?:([-+]?[0-9]+)M)?(?:([-+]?[0-9]+)(?:[.,]([0-9]{0,9}))?S)?)?$",
    )
    .ok()?;
    let c = re.captures(text)?;
    let t = c.get(3).map(|m| m.as_str());
    let parts = [c.get(2), c.get(4), c.get(5), c.get(6)];
    if parts.iter().all(Option::is_none) || t.is_some_and(|t| t.len() == 1) {
        return None;
    }
    let sign: i128 = if c.get(1).is_some_and(|m| m.as_str() == "-") {
        -1
    } else {
        1
    };
    let num = |i: usize| -> Option<i128> {
        c.get(i)
            .map(|m| m.as_str().parse::<i128>().ok())
            .unwrap_or(Some(0))
    };
    let secs = num(2)? * 86_400 + num(4)? * 3_600 + num(5)? * 60 + num(6)?;
    let seconds_negative = c.get(6).is_some_and(|m| m.as_str().starts_with('-'));
    let nanos = match c.get(7) {
        Some(f) if !f.as_str().is_empty() => {
            let digits = format!("{:0<9}", f.as_str());
            let n = digits.parse::<i128>().ok()?;
            if seconds_negative {
                -n
            } else {
                n
            }
        }
        _ => 0,
    };
    Some(sign * (secs * 1_000_000_000 + nanos) < 0)
}

/// `ConfigDef.parse` of one value: the error is Kafka's message.
fn check_value(d: &Def, value: &str) -> Result<(), String> {
    let invalid =
        |why: String| format!("Invalid value {value} for configuration {}: {why}", d.name);
    match d.check {
        Check::AtLeast(min) => {
            let n = parse_int(value).ok_or_else(|| invalid("Not a number of type INT".into()))?;
            if n < min {
                return Err(invalid(format!("Value must be at least {min}")));
            }
        }
        Check::OneOf(options) => {
            if !options.contains(&value) {
                return Err(invalid(format!(
                    "String must be one of: {}",
                    options.join(", ")
                )));
            }
        }
        Check::AutoOffsetReset => {
            let ok = match value {
                "earliest" | "latest" => true,
                other => other
                    .strip_prefix("by_duration:")
                    .and_then(parse_duration_negative)
                    .is_some_and(|negative| !negative),
            };
            if !ok {
                return Err(invalid(format!(
                    "Invalid value `{value}` for configuration {}. The value must be either 'earliest', 'latest' or of the format 'by_duration:<PnDTnHnMn.nS>'.",
                    d.name
                )));
            }
        }
    }
    Ok(())
}

/// Kafka 4.1.1's `GroupConfig.validate` of a group's whole set of
/// overrides (after the change): names, then each value, then the ranges
/// the broker allows. Keys not set are checked at `GroupConfig`'s builtin
/// defaults, as Kafka does. The error is Kafka's message (INVALID_CONFIG).
pub fn validate(props: &BTreeMap<String, String>, broker: &BrokerConfig) -> Result<(), String> {
    if let Some(k) = props.keys().find(|k| def(k).is_none()) {
        return Err(format!("Unknown group config name: {k}"));
    }
    for d in DEFS {
        if let Some(v) = props.get(d.name) {
            check_value(d, v)?;
        }
    }
    let int = |name: &str| -> i64 {
        let builtin = match def(name).map(|d| d.default) {
            Some(Default::Broker(_, b) | Default::Fixed(b)) => b,
            None => "0",
        };
        props
            .get(name)
            .and_then(|v| parse_int(v))
            .or_else(|| parse_int(builtin))
            .unwrap_or(0)
    };
    let bound = |key: &str, fallback: i64| broker.get_i64(key, fallback);
    // (key, broker minimum key and default, broker maximum key and default)
    type Range<'a> = (&'a str, Option<(&'a str, i64)>, (&'a str, i64));
    let ranges: [Range; 8] = [
        (
            CONSUMER_HEARTBEAT_INTERVAL_MS,
            Some(("group.consumer.min.heartbeat.interval.ms", 5000)),
            ("group.consumer.max.heartbeat.interval.ms", 15000),
        ),
        (
            CONSUMER_SESSION_TIMEOUT_MS,
            Some(("group.consumer.min.session.timeout.ms", 45000)),
            ("group.consumer.max.session.timeout.ms", 60000),
        ),
        (
            "share.heartbeat.interval.ms",
            Some(("group.share.min.heartbeat.interval.ms", 5000)),
            ("group.share.max.heartbeat.interval.ms", 15000),
        ),
        (
            "share.session.timeout.ms",
            Some(("group.share.min.session.timeout.ms", 45000)),
            ("group.share.max.session.timeout.ms", 60000),
        ),
        (
            "share.record.lock.duration.ms",
            Some(("group.share.min.record.lock.duration.ms", 15000)),
            ("group.share.max.record.lock.duration.ms", 60000),
        ),
        (
            "streams.heartbeat.interval.ms",
            Some(("group.streams.min.heartbeat.interval.ms", 5000)),
            ("group.streams.max.heartbeat.interval.ms", 15000),
        ),
        (
            "streams.session.timeout.ms",
            Some(("group.streams.min.session.timeout.ms", 45000)),
            ("group.streams.max.session.timeout.ms", 60000),
        ),
        (
            "streams.num.standby.replicas",
            None,
            ("group.streams.max.standby.replicas", 2),
        ),
    ];
    for (key, min, (max_key, max_default)) in &ranges {
        let v = int(key);
        if let Some((min_key, min_default)) = min {
            if v < bound(min_key, *min_default) {
                return Err(format!("{key} must be greater than or equal to {min_key}"));
            }
        }
        if v > bound(max_key, *max_default) {
            return Err(format!("{key} must be less than or equal to {max_key}"));
        }
    }
    for kind in ["consumer", "share", "streams"] {
        let session = format!("{kind}.session.timeout.ms");
        let heartbeat = format!("{kind}.heartbeat.interval.ms");
        if int(&session) <= int(&heartbeat) {
            return Err(format!("{session} must be greater than {heartbeat}"));
        }
    }
    Ok(())
}

/// One key of a group as DescribeConfigs shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupConfigEntry {
    pub name: &'static str,
    pub value: String,
    /// `SOURCE_GROUP_CONFIG` or `SOURCE_DEFAULT_CONFIG`.
    pub source: i8,
    pub ty: ConfigType,
    pub doc: &'static str,
}

fn default_value(d: &Def, broker: &BrokerConfig) -> String {
    match d.default {
        Default::Broker(key, builtin) => broker.get(key).unwrap_or(builtin).trim().to_string(),
        Default::Fixed(v) => v.to_string(),
    }
}

/// Every key of a group: its override, else the default (Kafka's
/// `ConfigHelper` for GROUP resources: `GroupConfig.fromProps` of the
/// broker's group settings and the group's overrides).
pub fn describe(
    overrides: Option<&BTreeMap<String, String>>,
    broker: &BrokerConfig,
) -> Vec<GroupConfigEntry> {
    DEFS.iter()
        .map(|d| match overrides.and_then(|o| o.get(d.name)) {
            Some(v) => GroupConfigEntry {
                name: d.name,
                value: match d.ty {
                    ConfigType::Int => parse_int(v).map_or_else(|| v.clone(), |n| n.to_string()),
                    _ => v.clone(),
                },
                source: SOURCE_GROUP_CONFIG,
                ty: d.ty,
                doc: d.doc,
            },
            None => GroupConfigEntry {
                name: d.name,
                value: default_value(d, broker),
                source: SOURCE_DEFAULT_CONFIG,
                ty: d.ty,
                doc: d.doc,
            },
        })
        .collect()
}

/// The KIP-848 settings of one group: the broker's, with the group's
/// `consumer.session.timeout.ms` and `consumer.heartbeat.interval.ms`
/// overrides applied (Kafka's `consumerGroupSessionTimeoutMs(groupId)`).
pub fn consumer_config(
    base: &ConsumerGroupConfig,
    overrides: Option<&BTreeMap<String, String>>,
) -> ConsumerGroupConfig {
    let mut cfg = base.clone();
    let Some(o) = overrides else {
        return cfg;
    };
    let get = |k: &str| o.get(k).and_then(|v| parse_int(v)).map(|n| n as i32);
    if let Some(v) = get(CONSUMER_SESSION_TIMEOUT_MS) {
        cfg.session_timeout_ms = v;
    }
    if let Some(v) = get(CONSUMER_HEARTBEAT_INTERVAL_MS) {
        cfg.heartbeat_interval_ms = v;
    }
    cfg
}

#[cfg(test)]
mod tests {
    use super::*;

    fn broker(extra: &[(&str, &str)]) -> BrokerConfig {
        let mut props = BrokerConfig::default_props();
        for (k, v) in extra {
            props.insert(k.to_string(), v.to_string());
        }
        BrokerConfig::from_props(props).expect("valid").0
    }

    fn props(kv: &[(&str, &str)]) -> BTreeMap<String, String> {
        kv.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn validation_messages_are_kafkas() {
        let b = broker(&[]);
        type Case<'a> = (&'a [(&'a str, &'a str)], Option<&'a str>);
        let cases: &[Case] = &[
            (&[("consumer.session.timeout.ms", "50000")], None),
            (&[("foo.bar", "1")], Some("Unknown group config name: foo.bar")),
            (&[("consumer.heartbeat.interval.ms", "abc")], Some("Invalid value abc for configuration consumer.heartbeat.interval.ms: Not a number of type INT")),
            (&[("consumer.session.timeout.ms", "0")], Some("Invalid value 0 for configuration consumer.session.timeout.ms: Value must be at least 1")),
            (&[("consumer.session.timeout.ms", "70000")], Some("consumer.session.timeout.ms must be less than or equal to group.consumer.max.session.timeout.ms")),
            (&[("consumer.session.timeout.ms", "1000")], Some("consumer.session.timeout.ms must be greater than or equal to group.consumer.min.session.timeout.ms")),
            (&[("consumer.heartbeat.interval.ms", "16000")], Some("consumer.heartbeat.interval.ms must be less than or equal to group.consumer.max.heartbeat.interval.ms")),
            (&[("streams.num.standby.replicas", "3")], Some("streams.num.standby.replicas must be less than or equal to group.streams.max.standby.replicas")),
            (&[("streams.num.standby.replicas", "-1")], Some("Invalid value -1 for configuration streams.num.standby.replicas: Value must be at least 0")),
            (&[("share.isolation.level", "READ_COMMITTED")], Some("Invalid value READ_COMMITTED for configuration share.isolation.level: String must be one of: read_committed, read_uncommitted")),
            (&[("share.auto.offset.reset", "by_duration:PT1H")], None),
            (&[("share.auto.offset.reset", "EARLIEST")], Some("Invalid value EARLIEST for configuration share.auto.offset.reset: Invalid value `EARLIEST` for configuration share.auto.offset.reset. The value must be either 'earliest', 'latest' or of the format 'by_duration:<PnDTnHnMn.nS>'.")),
            (&[("share.auto.offset.reset", "by_duration:-PT1H")], Some("Invalid value by_duration:-PT1H for configuration share.auto.offset.reset: Invalid value `by_duration:-PT1H` for configuration share.auto.offset.reset. The value must be either 'earliest', 'latest' or of the format 'by_duration:<PnDTnHnMn.nS>'.")),
            (&[("share.record.lock.duration.ms", "999")], Some("Invalid value 999 for configuration share.record.lock.duration.ms: Value must be at least 1000")),
        ];
        for (kv, want) in cases {
            assert_eq!(validate(&props(kv), &b).err().as_deref(), *want, "{kv:?}");
        }
        // Relative to the broker's bounds.
        let wide = broker(&[
            ("group.consumer.min.session.timeout.ms", "6000"),
            ("group.consumer.min.heartbeat.interval.ms", "1000"),
        ]);
        assert_eq!(
            validate(&props(&[("consumer.session.timeout.ms", "6000")]), &wide),
            Ok(())
        );
        assert_eq!(
            validate(
                &props(&[
                    ("consumer.session.timeout.ms", "6000"),
                    ("consumer.heartbeat.interval.ms", "6000")
                ]),
                &wide
            )
            .err()
            .as_deref(),
            Some("consumer.session.timeout.ms must be greater than consumer.heartbeat.interval.ms")
        );
    }

    #[test]
    fn describe_and_effective_consumer_settings() {
        let b = broker(&[("group.consumer.session.timeout.ms", "6000")]);
        let o = props(&[("consumer.heartbeat.interval.ms", "2000")]);
        let entries = describe(Some(&o), &b);
        assert_eq!(entries.len(), 10);
        let get = |n: &str| entries.iter().find(|e| e.name == n).cloned();
        let s = get("consumer.session.timeout.ms");
        assert_eq!(
            s.map(|e| (e.value, e.source)),
            Some(("6000".into(), SOURCE_DEFAULT_CONFIG))
        );
        let h = get("consumer.heartbeat.interval.ms");
        assert_eq!(
            h.map(|e| (e.value, e.source)),
            Some(("2000".into(), SOURCE_GROUP_CONFIG))
        );
        let base = ConsumerGroupConfig {
            session_timeout_ms: 6000,
            heartbeat_interval_ms: 1000,
            ..ConsumerGroupConfig::default()
        };
        let cfg = consumer_config(&base, Some(&o));
        assert_eq!(
            (cfg.session_timeout_ms, cfg.heartbeat_interval_ms),
            (6000, 2000)
        );
    }
}
