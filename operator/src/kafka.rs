//! Kafka access for the reconcilers: cached admin connections per cluster and the
//! topic state the topic plan compares against.

use runnel_admin::{AdminClient, AdminConfig, ConfigSource};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Mutex;

/// A Kafka Admin API failure.
pub type KafkaError = runnel_admin::AdminError;

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

/// Number of under-replicated partitions in the whole cluster (for safe rolling).
pub async fn under_replicated_partitions(admin: &AdminClient) -> Result<usize, KafkaError> {
    let all = admin.describe_topics(None).await?;
    Ok(all
        .values()
        .filter_map(|t| t.as_ref().ok())
        .flat_map(|t| t.partitions.iter())
        .filter(|p| p.isr.len() < p.replicas.len())
        .count())
}
