//! Effective topic configuration: topic overrides, then broker synonyms
//! (dynamic per-broker, dynamic cluster default, static), then Kafka's default.

use std::collections::BTreeMap;

use super::defs::{broker_def, ConfigType, TopicConfigDef, TOPIC_CONFIGS};

/// Where a config value came from (Kafka's `ConfigSource` codes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigSource {
    /// A topic-level override.
    TopicConfig = 1,
    /// A dynamic per-broker override.
    DynamicBroker = 2,
    /// A dynamic cluster-wide default.
    DynamicDefaultBroker = 3,
    /// `server.properties` or `--override`.
    StaticBroker = 4,
    /// Kafka's built-in default.
    Default = 5,
}

/// One resolved config value, with its synonyms when asked for.
#[derive(Debug, Clone)]
pub struct ConfigEntry {
    /// The key.
    pub name: String,
    /// The value (`None` when unset and without default).
    pub value: Option<String>,
    /// Where the value came from.
    pub source: ConfigSource,
    /// Value type.
    pub ty: ConfigType,
    /// Every place this config is set, highest priority first.
    pub synonyms: Vec<(String, Option<String>, ConfigSource)>,
    /// Whether the value is sensitive.
    pub sensitive: bool,
    /// Whether it can only be changed by a restart.
    pub read_only: bool,
}

/// Resolves topic and broker config values from every layer.
#[derive(Debug, Clone, Copy)]
pub struct TopicConfigResolver<'a> {
    /// Static broker properties.
    pub static_props: &'a BTreeMap<String, String>,
    /// Dynamic cluster-wide broker config.
    pub cluster: &'a BTreeMap<String, String>,
    /// Dynamic config of this broker.
    pub node: Option<&'a BTreeMap<String, String>>,
}

impl<'a> TopicConfigResolver<'a> {
    /// Every layer a broker key can be set in, highest priority first.
    fn broker_layers(&self, key: &str) -> Vec<(Option<String>, ConfigSource)> {
        let mut out = Vec::new();
        if let Some(v) = self.node.and_then(|n| n.get(key)) {
            out.push((Some(v.clone()), ConfigSource::DynamicBroker));
        }
        if let Some(v) = self.cluster.get(key) {
            out.push((Some(v.clone()), ConfigSource::DynamicDefaultBroker));
        }
        if let Some(v) = self.static_props.get(key) {
            out.push((Some(v.clone()), ConfigSource::StaticBroker));
        }
        out
    }

    /// Resolves a topic key for a topic with `overrides`.
    pub fn topic_entry(
        &self,
        def: &TopicConfigDef,
        overrides: &BTreeMap<String, String>,
    ) -> ConfigEntry {
        let mut synonyms = Vec::new();
        if let Some(v) = overrides.get(def.name) {
            synonyms.push((
                def.name.to_string(),
                Some(v.clone()),
                ConfigSource::TopicConfig,
            ));
        }
        for (syn, mult) in def.synonyms {
            for (v, src) in self.broker_layers(syn) {
                let v = v.map(|v| scale(&v, *mult));
                synonyms.push((syn.to_string(), v, src));
            }
        }
        let first_default = def.synonyms.first().and_then(|(syn, mult)| {
            broker_def(syn)
                .and_then(|d| d.default)
                .map(|v| (syn, scale(v, *mult)))
        });
        let (value, source) = match synonyms.first() {
            Some((_, v, s)) => (v.clone(), *s),
            None => {
                // The first synonym with a broker default, else Kafka's topic default.
                let v = def
                    .synonyms
                    .iter()
                    .find_map(|(syn, mult)| {
                        broker_def(syn)
                            .and_then(|d| d.default)
                            .map(|v| scale(v, *mult))
                    })
                    .unwrap_or_else(|| def.default.to_string());
                (Some(v), ConfigSource::Default)
            }
        };
        // As Kafka does, the default of the first broker synonym closes the list.
        if let Some((syn, v)) = first_default {
            synonyms.push((syn.to_string(), Some(v), ConfigSource::Default));
        }
        ConfigEntry {
            name: def.name.to_string(),
            value,
            source,
            ty: def.ty,
            synonyms,
            sensitive: false,
            read_only: false,
        }
    }

    /// The effective value of a topic key.
    pub fn topic_value(&self, name: &str, overrides: &BTreeMap<String, String>) -> Option<String> {
        TOPIC_CONFIGS
            .iter()
            .find(|d| d.name == name)
            .and_then(|d| self.topic_entry(d, overrides).value)
    }

    /// Resolves a broker key.
    pub fn broker_entry(&self, key: &str) -> Option<ConfigEntry> {
        let def = broker_def(key)?;
        let mut layers = self.broker_layers(key);
        if key == "broker.id" && layers.is_empty() {
            // KRaft: Kafka's broker.id is node.id.
            layers = self.broker_layers("node.id");
        }
        let mut synonyms: Vec<(String, Option<String>, ConfigSource)> = layers
            .into_iter()
            .map(|(v, s)| (key.to_string(), v, s))
            .collect();
        if let Some(d) = def.default {
            synonyms.push((key.to_string(), Some(d.to_string()), ConfigSource::Default));
        }
        let (value, source) = synonyms
            .first()
            .map(|(_, v, s)| (v.clone(), *s))
            .unwrap_or((None, ConfigSource::Default));
        Some(ConfigEntry {
            name: key.to_string(),
            value,
            source,
            ty: def.ty,
            synonyms,
            sensitive: def.ty == ConfigType::Password,
            read_only: !def.dynamic,
        })
    }

    /// The effective typed log config of a topic.
    pub fn log_config(&self, overrides: &BTreeMap<String, String>) -> LogConfig {
        let num = |k: &str, d: i64| -> i64 {
            self.topic_value(k, overrides)
                .and_then(|v| v.trim().parse::<i64>().ok())
                .unwrap_or(d)
        };
        let text = |k: &str, d: &str| -> String {
            self.topic_value(k, overrides)
                .unwrap_or_else(|| d.to_string())
        };
        let policy = text("cleanup.policy", "delete");
        LogConfig {
            segment_bytes: overrides
                .get(super::defs::INTERNAL_SEGMENT_BYTES.name)
                .and_then(|v| v.trim().parse::<i64>().ok())
                .unwrap_or_else(|| num("segment.bytes", 1 << 30))
                .max(14) as u64,
            segment_ms: num("segment.ms", 604_800_000),
            segment_jitter_ms: num("segment.jitter.ms", 0),
            retention_ms: num("retention.ms", 604_800_000),
            retention_bytes: num("retention.bytes", -1),
            flush_messages: num("flush.messages", i64::MAX),
            flush_ms: num("flush.ms", i64::MAX),
            index_interval_bytes: num("index.interval.bytes", 4096).max(0) as u64,
            segment_index_bytes: num("segment.index.bytes", 10_485_760).max(8) as u64,
            compact: policy.split(',').any(|p| p.trim() == "compact"),
            delete: policy.split(',').any(|p| p.trim() == "delete"),
            max_message_bytes: num("max.message.bytes", 1_048_588),
            log_append_time: text("message.timestamp.type", "CreateTime") == "LogAppendTime",
            timestamp_before_max_ms: num("message.timestamp.before.max.ms", i64::MAX),
            timestamp_after_max_ms: num("message.timestamp.after.max.ms", 3_600_000),
            file_delete_delay_ms: num("file.delete.delay.ms", 60_000),
            min_insync_replicas: num("min.insync.replicas", 1),
            min_cleanable_ratio_ppm: self
                .topic_value("min.cleanable.dirty.ratio", overrides)
                .and_then(|v| v.trim().parse::<f64>().ok())
                .map(|r| (r.clamp(0.0, 1.0) * 1e6) as u32)
                .unwrap_or(500_000),
            delete_retention_ms: num("delete.retention.ms", 86_400_000),
            min_compaction_lag_ms: num("min.compaction.lag.ms", 0),
            max_compaction_lag_ms: num("max.compaction.lag.ms", i64::MAX),
        }
    }
}

fn scale(v: &str, mult: i64) -> String {
    if mult == 1 {
        return v.to_string();
    }
    match v.trim().parse::<i64>() {
        Ok(n) if n < 0 => n.to_string(),
        Ok(n) => n.saturating_mul(mult).to_string(),
        Err(_) => v.to_string(),
    }
}

/// The typed, effective config of one partition's log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogConfig {
    /// `segment.bytes`.
    pub segment_bytes: u64,
    /// `segment.ms`.
    pub segment_ms: i64,
    /// `segment.jitter.ms`.
    pub segment_jitter_ms: i64,
    /// `retention.ms` (-1: forever).
    pub retention_ms: i64,
    /// `retention.bytes` (-1: unlimited).
    pub retention_bytes: i64,
    /// `flush.messages`.
    pub flush_messages: i64,
    /// `flush.ms`.
    pub flush_ms: i64,
    /// `index.interval.bytes`.
    pub index_interval_bytes: u64,
    /// `segment.index.bytes`.
    pub segment_index_bytes: u64,
    /// `cleanup.policy` contains `compact`.
    pub compact: bool,
    /// `cleanup.policy` contains `delete`.
    pub delete: bool,
    /// `max.message.bytes`.
    pub max_message_bytes: i64,
    /// `message.timestamp.type=LogAppendTime`.
    pub log_append_time: bool,
    /// `message.timestamp.before.max.ms`.
    pub timestamp_before_max_ms: i64,
    /// `message.timestamp.after.max.ms`.
    pub timestamp_after_max_ms: i64,
    /// `file.delete.delay.ms`.
    pub file_delete_delay_ms: i64,
    /// `min.insync.replicas`.
    pub min_insync_replicas: i64,
    /// `min.cleanable.dirty.ratio`, in millionths (0.5 is 500000).
    pub min_cleanable_ratio_ppm: u32,
    /// `delete.retention.ms`: how long the cleaner keeps tombstones.
    pub delete_retention_ms: i64,
    /// `min.compaction.lag.ms`.
    pub min_compaction_lag_ms: i64,
    /// `max.compaction.lag.ms`.
    pub max_compaction_lag_ms: i64,
}

impl Default for LogConfig {
    fn default() -> Self {
        let empty = BTreeMap::new();
        TopicConfigResolver {
            static_props: &empty,
            cluster: &empty,
            node: None,
        }
        .log_config(&empty)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn synonyms_and_units() {
        let mut st = BTreeMap::new();
        st.insert("log.retention.hours".to_string(), "1".to_string());
        let cluster = BTreeMap::new();
        let r = TopicConfigResolver {
            static_props: &st,
            cluster: &cluster,
            node: None,
        };
        let none = BTreeMap::new();
        let def = TOPIC_CONFIGS
            .iter()
            .find(|d| d.name == "retention.ms")
            .expect("def");
        let e = r.topic_entry(def, &none);
        assert_eq!(e.value.as_deref(), Some("3600000"));
        assert_eq!(e.source, ConfigSource::StaticBroker);
        let mut o = BTreeMap::new();
        o.insert("retention.ms".to_string(), "5".to_string());
        let e = r.topic_entry(def, &o);
        assert_eq!(e.value.as_deref(), Some("5"));
        assert_eq!(e.source, ConfigSource::TopicConfig);
        assert_eq!(e.synonyms.len(), 2);
        let c = TOPIC_CONFIGS
            .iter()
            .find(|d| d.name == "cleanup.policy")
            .expect("def");
        let e = r.topic_entry(c, &none);
        assert_eq!(e.synonyms.len(), 1);
        assert_eq!(e.synonyms[0].2, ConfigSource::Default);
        let d = LogConfig::default();
        assert_eq!(d.retention_ms, 604_800_000);
        assert_eq!(d.segment_bytes, 1 << 30);
        assert!(d.delete && !d.compact);
    }
}
