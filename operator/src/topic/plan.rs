//! What to do to make a Kafka topic match its KafkaTopic: a pure comparison, unit-tested.

use crate::kafka::TopicState;
use std::collections::BTreeMap;

/// The topic a KafkaTopic asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Desired {
    /// Kafka topic name.
    pub name: String,
    /// Partitions.
    pub partitions: i32,
    /// Replication factor.
    pub replicas: i32,
    /// Topic configs (Kafka keys).
    pub configs: BTreeMap<String, String>,
}

/// Something the spec asks for that Kafka cannot do; reported, never applied.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Kafka cannot remove partitions.
    PartitionDecrease {
        /// In the spec.
        desired: i32,
        /// In Kafka.
        actual: i32,
    },
    /// Changing the replication factor: done by partition reassignment
    /// (`topic::replication`) when it is the only refusal, reported otherwise.
    ReplicationFactorChange {
        /// In the spec.
        desired: i32,
        /// In Kafka.
        actual: i32,
    },
}

impl Refusal {
    /// The condition reason.
    pub fn reason(&self) -> &'static str {
        match self {
            Refusal::PartitionDecrease { .. } => "PartitionDecreaseRefused",
            Refusal::ReplicationFactorChange { .. } => "ReplicationFactorChangeWaits",
        }
    }

    /// A message telling the user what to do.
    pub fn message(&self) -> String {
        match self {
            Refusal::PartitionDecrease { desired, actual } => format!(
                "spec.partitions is {desired} but the topic has {actual} partitions; Kafka cannot remove partitions, so nothing was changed. Set spec.partitions to {actual} or more"
            ),
            Refusal::ReplicationFactorChange { desired, actual } => format!(
                "spec.replicas is {desired} but the topic's replication factor is {actual}; it is changed by partition reassignment once nothing else is refused"
            ),
        }
    }
}

/// The actions that bring Kafka to the spec.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// Create the topic.
    pub create: bool,
    /// Grow to this many partitions.
    pub grow_partitions_to: Option<i32>,
    /// Configs to set (new or changed).
    pub set_configs: BTreeMap<String, String>,
    /// Configs set on the topic but absent from the spec, to remove.
    pub delete_configs: Vec<String>,
    /// What the spec asks for but Kafka cannot do.
    pub refusals: Vec<Refusal>,
}

impl Plan {
    /// Whether Kafka needs no change.
    pub fn is_noop(&self) -> bool {
        !self.create
            && self.grow_partitions_to.is_none()
            && self.set_configs.is_empty()
            && self.delete_configs.is_empty()
    }

    /// Human-readable differences (for drift reports and events).
    pub fn describe(&self, actual: Option<&TopicState>) -> Vec<String> {
        let mut out = Vec::new();
        if self.create {
            out.push("topic does not exist".to_string());
        }
        if let (Some(to), Some(a)) = (self.grow_partitions_to, actual) {
            out.push(format!(
                "partitions {} in Kafka, {to} in spec",
                a.partitions
            ));
        }
        for (k, v) in &self.set_configs {
            match actual.and_then(|a| a.configs.get(k)) {
                Some(old) => out.push(format!("config {k}={old} in Kafka, {v} in spec")),
                None => out.push(format!("config {k} unset in Kafka, {v} in spec")),
            }
        }
        for k in &self.delete_configs {
            let old = actual
                .and_then(|a| a.configs.get(k))
                .cloned()
                .unwrap_or_default();
            out.push(format!("config {k}={old} set in Kafka, absent from spec"));
        }
        out
    }
}

/// Compares the spec with Kafka. Config values are compared as Kafka reports them.
pub fn plan(desired: &Desired, actual: Option<&TopicState>) -> Plan {
    let Some(actual) = actual else {
        return Plan {
            create: true,
            ..Plan::default()
        };
    };
    let mut p = Plan::default();
    if desired.partitions > actual.partitions {
        p.grow_partitions_to = Some(desired.partitions);
    } else if desired.partitions < actual.partitions {
        p.refusals.push(Refusal::PartitionDecrease {
            desired: desired.partitions,
            actual: actual.partitions,
        });
    }
    if actual.replication_factor > 0 && desired.replicas != actual.replication_factor {
        p.refusals.push(Refusal::ReplicationFactorChange {
            desired: desired.replicas,
            actual: actual.replication_factor,
        });
    }
    for (k, v) in &desired.configs {
        if actual.configs.get(k) != Some(v) {
            p.set_configs.insert(k.clone(), v.clone());
        }
    }
    p.delete_configs = actual
        .configs
        .keys()
        .filter(|k| !desired.configs.contains_key(*k) && !MANAGED_ELSEWHERE.contains(&k.as_str()))
        .cloned()
        .collect();
    p
}

/// Topic configs a KafkaTopic leaves alone unless its spec sets them: the replication
/// throttles of partition moves, which the KafkaCluster controller
/// (`spec.rebalance.throttleBytesPerSecond`) or `kafka-reassign-partitions --throttle`
/// set while a reassignment runs and remove after it.
pub const MANAGED_ELSEWHERE: &[&str] = &[
    "leader.replication.throttled.replicas",
    "follower.replication.throttled.replicas",
];

#[cfg(test)]
mod tests {
    use super::*;

    fn desired(partitions: i32, configs: &[(&str, &str)]) -> Desired {
        Desired {
            name: "orders".into(),
            partitions,
            replicas: 1,
            configs: configs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    fn state(partitions: i32, configs: &[(&str, &str)]) -> TopicState {
        TopicState {
            topic_id: Some("id".into()),
            partitions,
            replication_factor: 1,
            configs: configs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    #[test]
    fn missing_topic_is_created() {
        let p = plan(&desired(3, &[]), None);
        assert!(p.create);
        assert!(!p.is_noop());
    }

    #[test]
    fn a_move_throttle_is_not_drift() {
        let d = desired(3, &[]);
        let a = state(
            3,
            &[
                ("leader.replication.throttled.replicas", "0:0,0:1"),
                ("follower.replication.throttled.replicas", "0:3"),
            ],
        );
        assert!(plan(&d, Some(&a)).is_noop());
        // Set in the spec, it is the spec's.
        let d = desired(3, &[("leader.replication.throttled.replicas", "*")]);
        let p = plan(&d, Some(&a));
        assert_eq!(p.set_configs.len(), 1);
        assert!(p.delete_configs.is_empty());
    }

    #[test]
    fn in_sync_is_noop() {
        let d = desired(3, &[("retention.ms", "1000")]);
        let p = plan(&d, Some(&state(3, &[("retention.ms", "1000")])));
        assert!(p.is_noop());
        assert!(p.refusals.is_empty());
    }

    #[test]
    fn grows_partitions_and_reconciles_configs() {
        let d = desired(
            6,
            &[("retention.ms", "1000"), ("cleanup.policy", "compact")],
        );
        let a = state(3, &[("retention.ms", "5"), ("segment.bytes", "1048576")]);
        let p = plan(&d, Some(&a));
        assert_eq!(p.grow_partitions_to, Some(6));
        assert_eq!(
            p.set_configs,
            BTreeMap::from([
                ("cleanup.policy".to_string(), "compact".to_string()),
                ("retention.ms".to_string(), "1000".to_string())
            ])
        );
        assert_eq!(p.delete_configs, ["segment.bytes"]);
        assert_eq!(
            p.describe(Some(&a)),
            [
                "partitions 3 in Kafka, 6 in spec",
                "config cleanup.policy unset in Kafka, compact in spec",
                "config retention.ms=5 in Kafka, 1000 in spec",
                "config segment.bytes=1048576 set in Kafka, absent from spec"
            ]
        );
    }

    #[test]
    fn decrease_and_rf_change_are_refused_not_planned() {
        let mut d = desired(2, &[]);
        d.replicas = 3;
        let p = plan(&d, Some(&state(4, &[])));
        assert_eq!(p.grow_partitions_to, None);
        assert!(p.is_noop());
        assert_eq!(
            p.refusals,
            [
                Refusal::PartitionDecrease {
                    desired: 2,
                    actual: 4
                },
                Refusal::ReplicationFactorChange {
                    desired: 3,
                    actual: 1
                }
            ]
        );
        assert!(p.refusals[0].message().contains("cannot remove partitions"));
    }
}
