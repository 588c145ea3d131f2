//! `spec.config` keys applied without a restart: set as cluster-wide default broker
//! configs (`ConfigResource(BROKER, "")`, what `kafka-configs.sh --entity-type
//! brokers --entity-default` changes) with IncrementalAlterConfigs, and kept out of
//! the rendered `server.properties` so that changing them changes no config hash and
//! restarts no broker.
//!
//! A broker started later (a new pod, a restart, a scale-up) gets the same values:
//! the cluster default lives in the KRaft metadata log, which every broker replays,
//! so it does not need them in its `server.properties`
//! (`tests/cluster/test_dynamic_defaults.py::test_a_restarted_broker_keeps_the_cluster_default`).
//!
//! Why only these keys (an audit of `broker/src`, issue 11): of the keys Kafka allows
//! at the cluster-default level,
//! - Runnel resolves at runtime, through the dynamic cluster default, the other topic
//!   config synonyms of its log config (`log.roll.ms` and `log.segment.bytes` are in
//!   the table, `tests/cluster/test_dynamic_defaults.py::test_segment_roll_defaults_roll_segments_of_topics_without_override`;
//!   `log.roll.jitter.ms`, `log.cleanup.policy`,
//!   `log.flush.interval.*`, `log.index.*`,
//!   `log.segment.delete.delay.ms`, `min.insync.replicas`), the replication
//!   throttles and `max.connections*`; they are not in the table yet because no test
//!   shows their effect at the cluster-default level, so they still roll.
//!   `min.insync.replicas` stays out on purpose: Runnel's leaders act on a new
//!   cluster default at once, but Apache Kafka 4.1.1's did not within 30 s in the same
//!   test, so it is not a key whose runtime effect users can rely on;
//! - no runtime reader was found for `compression.type` and `compression.*.level`,
//!   the compaction tunables (`log.cleaner.delete.retention.ms`,
//!   `log.cleaner.min/max.compaction.lag.ms`, `log.cleaner.min.cleanable.ratio`),
//!   `log.preallocate`, `log.local.retention.*`, and the thread-pool and remote-log
//!   sizes (`log.cleaner.threads`, `num.network.threads`, `num.replica.fetchers`,
//!   `background.threads`, `remote.log.*`, ...): Runnel accepts and describes them
//!   (IncrementalAlterConfigs, DescribeConfigs) but does not act on a new value.
//!
//! The operator owns these keys at the cluster-default level: a key of
//! [`DYNAMIC_KEYS`] not in `spec.config` is DELETEd there (set by hand with
//! kafka-configs.sh, it is reverted at the next reconcile).

use super::CONTROLLER;
use crate::context::Context;
use kube::ResourceExt;
use runnel_admin::{AdminClient, AdminError, AlterConfigOp, ConfigSource};
use runnel_crds::cluster::DynamicConfigStatus;
use runnel_crds::KafkaCluster;
use std::collections::BTreeMap;
use tracing::{info, warn};

/// The keys applied without a restart: Kafka allows each at the cluster-default level
/// (DynamicBrokerConfig, not per-broker only), Runnel acts on a new value at runtime,
/// and `tests/cluster/test_dynamic_defaults.py` shows it on Runnel and on Apache
/// Kafka 4.1.1. Every other key goes into `server.properties` and is applied by a
/// rolling restart. Add a key here only with a test of its effect.
pub const DYNAMIC_KEYS: &[&str] = &[
    // the retention of every topic without its own retention.ms
    "log.retention.ms",
    // the size retention of every topic without its own retention.bytes
    "log.retention.bytes",
    // the largest record batch every topic without its own max.message.bytes accepts
    "message.max.bytes",
    // CreateTime or LogAppendTime for every topic without its own message.timestamp.type
    "log.message.timestamp.type",
    // how far in the past / future a CreateTime record may be before it is refused
    "log.message.timestamp.before.max.ms",
    "log.message.timestamp.after.max.ms",
    // when a segment rolls, for every topic without its own segment.ms / segment.bytes
    "log.roll.ms",
    "log.segment.bytes",
];

/// Whether `key` is applied without a restart.
pub fn is_dynamic(key: &str) -> bool {
    DYNAMIC_KEYS.contains(&key)
}

/// `spec.config` split by how it is applied.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConfigSplit {
    /// Keys of [`DYNAMIC_KEYS`]: cluster-default dynamic configs, no restart.
    pub dynamic: BTreeMap<String, String>,
    /// Everything else: `server.properties`, applied by a rolling restart.
    pub restart: BTreeMap<String, String>,
}

/// Splits the user's broker config by how it is applied.
pub fn split(config: &BTreeMap<String, String>) -> ConfigSplit {
    let (dynamic, restart) = config
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .partition(|(k, _)| is_dynamic(k));
    ConfigSplit { dynamic, restart }
}

/// The IncrementalAlterConfigs operations that take the cluster-default configs
/// `current` (key → value, as DescribeConfigs of `BROKER ""` lists them) to `wanted`:
/// SET what differs, DELETE a key of [`DYNAMIC_KEYS`] set but no longer wanted. Keys
/// outside [`DYNAMIC_KEYS`] in `current` are left alone (not the operator's).
pub fn alter_ops(
    wanted: &BTreeMap<String, String>,
    current: &BTreeMap<String, String>,
) -> Vec<AlterConfigOp> {
    let mut ops: Vec<AlterConfigOp> = wanted
        .iter()
        .filter(|(k, v)| current.get(*k) != Some(*v))
        .map(|(k, v)| AlterConfigOp::Set(k.clone(), v.clone()))
        .collect();
    ops.extend(
        current
            .keys()
            .filter(|k| is_dynamic(k) && !wanted.contains_key(*k))
            .map(|k| AlterConfigOp::Delete(k.clone())),
    );
    ops
}

/// How long [`apply`] waits for DescribeConfigs to show a change it made.
const VERIFY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// What [`apply`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    /// The operations sent (empty when the brokers already had `wanted`).
    pub ops: Vec<AlterConfigOp>,
    /// The operator's keys at the cluster-default level, as DescribeConfigs reports
    /// them after the change.
    pub described: BTreeMap<String, String>,
}

/// Why the keys could not be applied.
#[derive(Debug, thiserror::Error)]
pub enum DynamicError {
    /// A request failed.
    #[error("{api}(BROKER \"\"): {source}")]
    Kafka {
        /// DescribeConfigs or IncrementalAlterConfigs.
        api: &'static str,
        /// The admin client's error.
        source: AdminError,
    },
    /// The brokers accepted the change but describe other values.
    #[error("after IncrementalAlterConfigs the brokers report {described:?}, not {wanted:?}")]
    Mismatch {
        /// What DescribeConfigs reports.
        described: BTreeMap<String, String>,
        /// What was set.
        wanted: BTreeMap<String, String>,
    },
}

/// The operator's keys set at the cluster-default level.
async fn describe(admin: &AdminClient) -> Result<BTreeMap<String, String>, DynamicError> {
    let entries = admin
        .describe_default_broker_configs()
        .await
        .map_err(|source| DynamicError::Kafka {
            api: "DescribeConfigs",
            source,
        })?;
    Ok(entries
        .into_iter()
        .filter(|e| e.source == ConfigSource::DynamicDefaultBrokerConfig && is_dynamic(&e.name))
        .filter_map(|e| Some((e.name, e.value?)))
        .collect())
}

/// Brings the cluster-default configs of [`DYNAMIC_KEYS`] to `wanted`, then checks
/// with DescribeConfigs that the brokers report exactly `wanted`.
pub async fn apply(
    admin: &AdminClient,
    wanted: &BTreeMap<String, String>,
) -> Result<Applied, DynamicError> {
    let current = describe(admin).await?;
    let ops = alter_ops(wanted, &current);
    if ops.is_empty() {
        return Ok(Applied {
            ops,
            described: current,
        });
    }
    admin
        .incremental_alter_default_broker_configs(&ops, false)
        .await
        .map_err(|source| DynamicError::Kafka {
            api: "IncrementalAlterConfigs",
            source,
        })?;
    // The broker that answers DescribeConfigs may not have applied the metadata record
    // of the change yet (on Runnel and on Kafka alike): poll for a short while.
    let deadline = tokio::time::Instant::now() + VERIFY_TIMEOUT;
    loop {
        let described = describe(admin).await?;
        if &described == wanted {
            return Ok(Applied { ops, described });
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(DynamicError::Mismatch {
                described,
                wanted: wanted.clone(),
            });
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

/// Applies the keys of `kc`'s `spec.config` that need no restart (an event when
/// something changed, a warning event when it fails, once per message) and returns
/// the status to record. `None` when the spec cannot be read (reported elsewhere).
pub async fn reconcile(
    ctx: &Context,
    kc: &KafkaCluster,
    bootstrap: &str,
) -> Option<DynamicConfigStatus> {
    let wanted = split(&super::render::config::user_config(kc).ok()?).dynamic;
    let prev = kc.status.as_ref().and_then(|s| s.dynamic_config.as_ref());
    let result = match ctx.kafka.get(bootstrap).await {
        Ok(admin) => apply(&admin, &wanted).await,
        Err(source) => Err(DynamicError::Kafka {
            api: "connect",
            source,
        }),
    };
    match result {
        Ok(a) => {
            if !a.ops.is_empty() {
                let ops = describe_ops(&a.ops);
                info!(cluster = %kc.name_any(), %ops, "broker configs applied without restart");
                ctx.event(
                    kc,
                    CONTROLLER,
                    false,
                    "DynamicConfigApplied",
                    "AlterConfigs",
                    format!("applied to every broker without a restart: {ops}"),
                )
                .await;
            }
            Some(DynamicConfigStatus {
                observed_generation: kc.metadata.generation,
                applied: a.described,
                error: None,
            })
        }
        Err(e) => {
            if let DynamicError::Kafka { source, .. } = &e {
                ctx.kafka.on_error(bootstrap, source).await;
            }
            let message = e.to_string();
            warn!(cluster = %kc.name_any(), error = %message, "cannot apply broker configs without restart");
            if prev.and_then(|p| p.error.as_deref()) != Some(message.as_str()) {
                ctx.event(
                    kc,
                    CONTROLLER,
                    true,
                    "DynamicConfigFailed",
                    "AlterConfigs",
                    message.clone(),
                )
                .await;
            }
            Some(DynamicConfigStatus {
                observed_generation: prev.and_then(|p| p.observed_generation),
                applied: prev.map(|p| p.applied.clone()).unwrap_or_default(),
                error: Some(message),
            })
        }
    }
}

/// `ops` for an event: `SET k=v, DELETE k`.
pub fn describe_ops(ops: &[AlterConfigOp]) -> String {
    ops.iter()
        .map(|op| match op.value() {
            Some(v) => format!("SET {}={v}", op.key()),
            None => format!("DELETE {}", op.key()),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(kv: &[(&str, &str)]) -> BTreeMap<String, String> {
        kv.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn split_keeps_only_the_tables_keys_dynamic() {
        let s = split(&map(&[
            ("log.retention.ms", "1000"),
            ("message.max.bytes", "2000"),
            ("num.partitions", "6"),
            // dynamic in Kafka, but not (yet) claimed: restart
            ("log.cleaner.threads", "2"),
            ("log.retention.hours", "1"),
            ("log.retention.bytes", "-1"),
        ]));
        assert_eq!(
            s.dynamic,
            map(&[
                ("log.retention.bytes", "-1"),
                ("log.retention.ms", "1000"),
                ("message.max.bytes", "2000")
            ])
        );
        assert_eq!(
            s.restart,
            map(&[
                ("log.cleaner.threads", "2"),
                ("log.retention.hours", "1"),
                ("num.partitions", "6")
            ])
        );
        assert_eq!(split(&BTreeMap::new()), ConfigSplit::default());
    }

    #[test]
    fn alter_ops_set_what_differs_and_delete_what_was_removed() {
        let ops = alter_ops(
            &map(&[("log.retention.ms", "1000"), ("message.max.bytes", "2000")]),
            &map(&[
                ("message.max.bytes", "2000"),
                // not the operator's: left alone
                ("log.cleaner.threads", "2"),
            ]),
        );
        assert_eq!(
            ops,
            vec![AlterConfigOp::Set("log.retention.ms".into(), "1000".into())]
        );
        let ops = alter_ops(
            &map(&[("message.max.bytes", "3000")]),
            &map(&[("message.max.bytes", "2000"), ("log.retention.ms", "1000")]),
        );
        assert_eq!(
            ops,
            vec![
                AlterConfigOp::Set("message.max.bytes".into(), "3000".into()),
                AlterConfigOp::Delete("log.retention.ms".into())
            ]
        );
        assert_eq!(
            describe_ops(&ops),
            "SET message.max.bytes=3000, DELETE log.retention.ms"
        );
        let same = map(&[("log.retention.ms", "1000")]);
        assert!(alter_ops(&same, &same).is_empty());
    }

    #[test]
    fn no_dynamic_key_is_managed_by_the_operator() {
        for k in DYNAMIC_KEYS {
            assert!(
                !runnel_crds::cluster::MANAGED_BROKER_KEYS.contains(k),
                "{k} is managed"
            );
        }
    }
}
