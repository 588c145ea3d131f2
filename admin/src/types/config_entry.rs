//! Topic and broker configs.

/// One config of a topic or broker, as DescribeConfigs (or CreateTopics v5+) reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigEntry {
    /// The config name, e.g. `retention.ms`.
    pub name: String,
    /// The value; `None` if it has none, or is sensitive.
    pub value: Option<String>,
    /// Where the value comes from.
    pub source: ConfigSource,
    /// Whether it cannot be altered.
    pub read_only: bool,
    /// Whether it is sensitive (its value is then not sent).
    pub is_sensitive: bool,
}

/// Where a config value comes from: Kafka's `DescribeConfigsResponse.ConfigSource`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConfigSource {
    /// `UNKNOWN` (0).
    Unknown,
    /// `DYNAMIC_TOPIC_CONFIG` (1): set on the topic.
    DynamicTopicConfig,
    /// `DYNAMIC_BROKER_CONFIG` (2): set dynamically for this broker.
    DynamicBrokerConfig,
    /// `DYNAMIC_DEFAULT_BROKER_CONFIG` (3): set dynamically for all brokers.
    DynamicDefaultBrokerConfig,
    /// `STATIC_BROKER_CONFIG` (4): from the broker's properties file.
    StaticBrokerConfig,
    /// `DEFAULT_CONFIG` (5): Kafka's built-in default.
    DefaultConfig,
    /// `DYNAMIC_BROKER_LOGGER_CONFIG` (6).
    DynamicBrokerLoggerConfig,
    /// `CLIENT_METRICS_CONFIG` (7).
    ClientMetricsConfig,
    /// `GROUP_CONFIG` (8).
    GroupConfig,
    /// A code this library does not know.
    Other(i8),
}

impl ConfigSource {
    /// Maps the wire code.
    pub fn from_code(code: i8) -> Self {
        match code {
            0 => ConfigSource::Unknown,
            1 => ConfigSource::DynamicTopicConfig,
            2 => ConfigSource::DynamicBrokerConfig,
            3 => ConfigSource::DynamicDefaultBrokerConfig,
            4 => ConfigSource::StaticBrokerConfig,
            5 => ConfigSource::DefaultConfig,
            6 => ConfigSource::DynamicBrokerLoggerConfig,
            7 => ConfigSource::ClientMetricsConfig,
            8 => ConfigSource::GroupConfig,
            other => ConfigSource::Other(other),
        }
    }

    /// The wire code.
    pub fn code(self) -> i8 {
        match self {
            ConfigSource::Unknown => 0,
            ConfigSource::DynamicTopicConfig => 1,
            ConfigSource::DynamicBrokerConfig => 2,
            ConfigSource::DynamicDefaultBrokerConfig => 3,
            ConfigSource::StaticBrokerConfig => 4,
            ConfigSource::DefaultConfig => 5,
            ConfigSource::DynamicBrokerLoggerConfig => 6,
            ConfigSource::ClientMetricsConfig => 7,
            ConfigSource::GroupConfig => 8,
            ConfigSource::Other(c) => c,
        }
    }

    /// Kafka's name, e.g. `"DYNAMIC_TOPIC_CONFIG"` (`"UNKNOWN"` for [`ConfigSource::Other`]).
    pub fn kafka_name(self) -> &'static str {
        match self {
            ConfigSource::Unknown | ConfigSource::Other(_) => "UNKNOWN",
            ConfigSource::DynamicTopicConfig => "DYNAMIC_TOPIC_CONFIG",
            ConfigSource::DynamicBrokerConfig => "DYNAMIC_BROKER_CONFIG",
            ConfigSource::DynamicDefaultBrokerConfig => "DYNAMIC_DEFAULT_BROKER_CONFIG",
            ConfigSource::StaticBrokerConfig => "STATIC_BROKER_CONFIG",
            ConfigSource::DefaultConfig => "DEFAULT_CONFIG",
            ConfigSource::DynamicBrokerLoggerConfig => "DYNAMIC_BROKER_LOGGER_CONFIG",
            ConfigSource::ClientMetricsConfig => "CLIENT_METRICS_CONFIG",
            ConfigSource::GroupConfig => "GROUP_CONFIG",
        }
    }
}

/// One operation of [`AdminClient::incremental_alter_topic_configs`](crate::AdminClient::incremental_alter_topic_configs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AlterConfigOp {
    /// Sets `key` to `value` (SET, 0).
    Set(String, String),
    /// Removes `key`, so it falls back to its default (DELETE, 1).
    Delete(String),
    /// Appends `value` to the list config `key` (APPEND, 2).
    Append(String, String),
    /// Removes `value` from the list config `key` (SUBTRACT, 3).
    Subtract(String, String),
}

impl AlterConfigOp {
    /// The config name.
    pub fn key(&self) -> &str {
        match self {
            AlterConfigOp::Set(k, _)
            | AlterConfigOp::Delete(k)
            | AlterConfigOp::Append(k, _)
            | AlterConfigOp::Subtract(k, _) => k,
        }
    }

    /// The value sent (`None` for DELETE).
    pub fn value(&self) -> Option<&str> {
        match self {
            AlterConfigOp::Set(_, v)
            | AlterConfigOp::Append(_, v)
            | AlterConfigOp::Subtract(_, v) => Some(v),
            AlterConfigOp::Delete(_) => None,
        }
    }

    /// Kafka's `config_operation` code.
    pub fn op_code(&self) -> i8 {
        match self {
            AlterConfigOp::Set(..) => 0,
            AlterConfigOp::Delete(_) => 1,
            AlterConfigOp::Append(..) => 2,
            AlterConfigOp::Subtract(..) => 3,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_source_round_trips() {
        for code in -1..=9i8 {
            assert_eq!(ConfigSource::from_code(code).code(), code);
        }
        assert_eq!(
            ConfigSource::from_code(1).kafka_name(),
            "DYNAMIC_TOPIC_CONFIG"
        );
        assert_eq!(ConfigSource::from_code(5), ConfigSource::DefaultConfig);
        assert_eq!(
            ConfigSource::from_code(4).kafka_name(),
            "STATIC_BROKER_CONFIG"
        );
    }

    #[test]
    fn alter_ops() {
        let op = AlterConfigOp::Delete("retention.ms".into());
        assert_eq!(
            (op.key(), op.value(), op.op_code()),
            ("retention.ms", None, 1)
        );
        let op = AlterConfigOp::Set("a".into(), "b".into());
        assert_eq!((op.key(), op.value(), op.op_code()), ("a", Some("b"), 0));
    }
}
