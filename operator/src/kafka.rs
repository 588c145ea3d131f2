//! Kafka access for the reconcilers: cached admin connections per cluster and the
//! topic state the topic plan compares against.

use crate::cluster::view::PartitionView;
use runnel_admin::{AdminClient, AdminConfig, ConfigSource, TopicDescriptions};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Mutex;

/// A Kafka Admin API failure.
pub type KafkaError = runnel_admin::AdminError;

/// The partitions a per-partition admin call (ElectLeaders,
/// AlterPartitionReassignments) failed for, as `topic-partition: error`.
pub fn failed_partitions(results: &BTreeMap<(String, i32), Result<(), KafkaError>>) -> Vec<String> {
    results
        .iter()
        .filter_map(|((t, p), r)| r.as_ref().err().map(|e| format!("{t}-{p}: {e}")))
        .collect()
}

/// Kafka's UNKNOWN_TOPIC_OR_PARTITION.
pub const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
/// Kafka's TOPIC_ALREADY_EXISTS.
pub const TOPIC_ALREADY_EXISTS: i16 = 36;

/// Admin connections, one per bootstrap address, made on first use and dropped on
/// connection-level failures.
#[derive(Default)]
pub struct KafkaClients {
    clients: Mutex<HashMap<String, Arc<AdminClient>>>,
}

impl KafkaClients {
    /// The admin client of `bootstrap`, connecting when there is none.
    pub async fn get(&self, bootstrap: &str) -> Result<Arc<AdminClient>, KafkaError> {
        if let Some(c) = self.clients.lock().await.get(bootstrap) {
            return Ok(c.clone());
        }
        let config = AdminConfig {
            client_id: "runnel-operator".into(),
            request_timeout: Duration::from_secs(15),
            connect_timeout: Duration::from_secs(5),
        };
        let client = Arc::new(AdminClient::connect(bootstrap, config).await?);
        self.clients
            .lock()
            .await
            .insert(bootstrap.to_string(), client.clone());
        Ok(client)
    }

    /// Forgets the connection of `bootstrap` after `err` when it was not a Kafka error code
    /// (the connection may be broken); the next [`KafkaClients::get`] reconnects.
    pub async fn on_error(&self, bootstrap: &str, err: &KafkaError) {
        if err.kafka_code().is_none() {
            self.clients.lock().await.remove(bootstrap);
        }
    }
}

/// A topic as it is in Kafka.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TopicState {
    /// Topic id (base64url, as Kafka's tools print it).
    pub topic_id: Option<String>,
    /// Partition count.
    pub partitions: i32,
    /// Replication factor (replicas of partition 0).
    pub replication_factor: i32,
    /// Configs set on the topic itself (source DYNAMIC_TOPIC_CONFIG).
    pub configs: BTreeMap<String, String>,
}

/// Kafka's string form of a UUID (topic and cluster ids): base64url, no padding.
pub fn uuid_string(id: &uuid::Uuid) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(id.as_bytes())
}

/// Reads `name`'s state, or `None` when the topic does not exist.
pub async fn topic_state(
    admin: &AdminClient,
    name: &str,
) -> Result<Option<TopicState>, KafkaError> {
    let mut described = admin.describe_topics(Some(&[name.to_string()])).await?;
    let desc = match described.remove(name) {
        None => return Ok(None),
        Some(Err(e)) if e.kafka_code() == Some(UNKNOWN_TOPIC_OR_PARTITION) => return Ok(None),
        Some(Err(e)) => return Err(e),
        Some(Ok(d)) => d,
    };
    let configs = admin
        .describe_topic_configs(name)
        .await?
        .into_iter()
        .filter(|e| e.source == ConfigSource::DynamicTopicConfig)
        .filter_map(|e| e.value.map(|v| (e.name, v)))
        .collect();
    let replication_factor = desc
        .partitions
        .iter()
        .find(|p| p.id == 0)
        .or(desc.partitions.first())
        .map_or(0, |p| p.replicas.len() as i32);
    Ok(Some(TopicState {
        topic_id: desc.topic_id.as_ref().map(uuid_string),
        partitions: desc.partitions.len() as i32,
        replication_factor,
        configs,
    }))
}

/// Every partition with its ISR and its topic's effective `min.insync.replicas`
/// (Metadata for all topics, then one DescribeConfigs for their min.insync.replicas).
///
/// `Ok(Err(why))` when the brokers answered but could not describe some topic or its
/// configs: the partition state is then unknown, and a restart must not rely on it.
pub async fn partition_views(
    admin: &AdminClient,
) -> Result<Result<Vec<PartitionView>, String>, KafkaError> {
    let all = admin.describe_topics(None).await?;
    let names: Vec<String> = all
        .iter()
        .filter(|(_, t)| t.is_ok())
        .map(|(n, _)| n.clone())
        .collect();
    let configs = admin
        .describe_topics_configs(&names, Some(&["min.insync.replicas"]))
        .await?;
    let mut min_isr = BTreeMap::new();
    let mut failed = Vec::new();
    for (name, entries) in configs {
        match entries {
            Ok(es) => {
                let v = es
                    .iter()
                    .find(|e| e.name == "min.insync.replicas")
                    .and_then(|e| e.value.as_deref())
                    .and_then(|v| v.parse::<i32>().ok())
                    .unwrap_or(1);
                min_isr.insert(name, v);
            }
            Err(e) => failed.push(format!("{name}: {e}")),
        }
    }
    Ok(to_partition_views(&all, &min_isr, failed))
}

/// Joins topic descriptions with their `min.insync.replicas`. A topic the brokers
/// failed to describe (or whose configs failed, in `failed`) makes the result unknown
/// (`Err`, naming the topics): it must never be read as "nothing there".
pub fn to_partition_views(
    all: &TopicDescriptions,
    min_isr: &BTreeMap<String, i32>,
    mut failed: Vec<String>,
) -> Result<Vec<PartitionView>, String> {
    failed.extend(
        all.iter()
            .filter_map(|(name, t)| t.as_ref().err().map(|e| format!("{name}: {e}"))),
    );
    if !failed.is_empty() {
        const SHOWN: usize = 5;
        let more = failed.len().saturating_sub(SHOWN);
        let mut why = format!(
            "the brokers could not describe {} topic(s): {}",
            failed.len(),
            failed[..failed.len().min(SHOWN)].join("; ")
        );
        if more > 0 {
            why.push_str(&format!("; and {more} more"));
        }
        return Err(why);
    }
    Ok(all
        .values()
        .filter_map(|t| t.as_ref().ok())
        .flat_map(|t| {
            let m = min_isr.get(&t.name).copied().unwrap_or(1);
            t.partitions.iter().map(move |p| PartitionView {
                topic: t.name.clone(),
                partition: p.id,
                leader: p.leader,
                replicas: p.replicas.clone(),
                isr: p.isr.clone(),
                min_isr: m,
            })
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use runnel_admin::{PartitionDescription, TopicDescription};

    fn topic(name: &str, parts: &[(Option<i32>, usize, usize)]) -> TopicDescription {
        TopicDescription {
            name: name.into(),
            topic_id: None,
            is_internal: false,
            partitions: parts
                .iter()
                .enumerate()
                .map(|(i, &(leader, replicas, isr))| PartitionDescription {
                    id: i as i32,
                    leader,
                    leader_epoch: None,
                    replicas: (0..replicas as i32).collect(),
                    isr: (0..isr as i32).collect(),
                    offline_replicas: vec![],
                    error_code: 0,
                })
                .collect(),
        }
    }

    #[test]
    fn partitions_carry_their_topics_min_isr() {
        let mut all = TopicDescriptions::new();
        all.insert(
            "a".into(),
            Ok(topic("a", &[(Some(0), 3, 3), (Some(1), 3, 2)])),
        );
        all.insert("b".into(), Ok(topic("b", &[(None, 3, 3)])));
        let min = BTreeMap::from([("a".to_string(), 2)]);
        let v = to_partition_views(&all, &min, vec![]).expect("known");
        assert_eq!(v.len(), 3);
        assert_eq!(
            (
                v[1].topic.as_str(),
                v[1].partition,
                v[1].min_isr,
                v[1].isr.len()
            ),
            ("a", 1, 2, 2)
        );
        assert_eq!(v[2].min_isr, 1, "the default when unknown");
        assert_eq!(v[2].leader, None);
    }

    #[test]
    fn a_topic_that_failed_to_describe_makes_the_state_unknown() {
        let mut all = TopicDescriptions::new();
        all.insert("ok".into(), Ok(topic("ok", &[(Some(0), 3, 3)])));
        all.insert(
            "broken".into(),
            Err(runnel_admin::AdminError::kafka("Metadata", 5, None)),
        );
        let why = to_partition_views(&all, &BTreeMap::new(), vec![]).expect_err("unknown");
        assert!(why.contains("broken"), "{why}");
        assert!(why.contains("1 topic(s)"), "{why}");
        let mut all = TopicDescriptions::new();
        all.insert("ok".into(), Ok(topic("ok", &[(Some(0), 3, 3)])));
        let why = to_partition_views(&all, &BTreeMap::new(), vec!["ok: configs failed".into()])
            .expect_err("unknown");
        assert!(why.contains("configs failed"), "{why}");
    }
}
