//! The admin client.

use std::collections::BTreeMap;

use kafka_protocol::messages::create_partitions_request::CreatePartitionsTopic;
use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use kafka_protocol::messages::delete_topics_request::DeleteTopicState;
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::describe_configs_response::DescribeConfigsResult;
use kafka_protocol::messages::incremental_alter_configs_request::{
    AlterConfigsResource, AlterableConfig,
};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::metadata_response::MetadataResponseTopic;
use kafka_protocol::messages::{
    ApiKey, CreatePartitionsRequest, CreateTopicsRequest, DeleteTopicsRequest,
    DescribeClusterRequest, DescribeConfigsRequest, IncrementalAlterConfigsRequest,
    MetadataRequest, TopicName,
};
use kafka_protocol::protocol::{Request, StrBytes};
use tokio::sync::Mutex;
use tracing::{debug, warn};
use uuid::Uuid;

use crate::config::AdminConfig;
use crate::connection::{api_name, Connection};
use crate::error::AdminError;
use crate::types::{
    AlterConfigOp, BrokerNode, ClusterDescription, ConfigEntry, ConfigSource, CreatedTopic,
    NewTopic, PartitionDescription, TopicDescription,
};

/// DescribeConfigs / IncrementalAlterConfigs resource type of a topic.
pub(crate) const RESOURCE_TOPIC: i8 = 2;
/// DescribeConfigs / IncrementalAlterConfigs resource type of a broker.
pub(crate) const RESOURCE_BROKER: i8 = 4;

/// The result of [`AdminClient::describe_topics`]: each topic, by name, with
/// its description or its own error (e.g. UNKNOWN_TOPIC_OR_PARTITION).
pub type TopicDescriptions = BTreeMap<String, Result<TopicDescription, AdminError>>;

/// An async Kafka Admin client.
///
/// It keeps one connection, to the first reachable bootstrap server, and
/// sends requests on it one at a time (concurrent calls on a shared client
/// wait for each other). Every request uses the highest version both the
/// broker (from ApiVersions) and this library support.
///
/// If a request fails because the connection broke (an I/O error), the
/// client reconnects once, to the first reachable bootstrap server, and
/// sends the request again. The request may then have been executed twice:
/// e.g. a re-sent CreateTopics can answer TOPIC_ALREADY_EXISTS. A timeout or
/// protocol error also discards the connection, but is returned as is; the
/// next call reconnects.
#[derive(Debug)]
pub struct AdminClient {
    bootstrap: Vec<String>,
    config: AdminConfig,
    conn: Mutex<Option<Connection>>,
}

impl AdminClient {
    /// Connects to the first reachable server of `bootstrap`
    /// (`"host:port[,host:port...]"`) and negotiates API versions with it.
    ///
    /// Fails with the last server's error ([`AdminError::Io`] for a refused
    /// connection, [`AdminError::Timeout`] past `connect_timeout`) if none
    /// answers, or [`AdminError::InvalidArgument`] for a malformed list.
    pub async fn connect(bootstrap: &str, config: AdminConfig) -> Result<Self, AdminError> {
        let bootstrap = parse_bootstrap(bootstrap)?;
        let client = AdminClient {
            bootstrap,
            config,
            conn: Mutex::new(None),
        };
        let first = client.open_any().await?;
        *client.conn.lock().await = Some(first);
        Ok(client)
    }

    /// The client's settings.
    pub fn config(&self) -> &AdminConfig {
        &self.config
    }

    /// The cluster id, controller and brokers, from DescribeCluster if the
    /// broker supports it and from Metadata otherwise.
    pub async fn describe_cluster(&self) -> Result<ClusterDescription, AdminError> {
        let has_describe_cluster = {
            let mut slot = self.conn.lock().await;
            let conn = self.ensure_connected(&mut slot).await?;
            conn.versions().pick(ApiKey::DescribeCluster, 0).is_ok()
        };
        if has_describe_cluster {
            let (_, r) = self
                .call(0, |_| Ok(DescribeClusterRequest::default()))
                .await?;
            if r.error_code != 0 {
                return Err(AdminError::kafka(
                    "DescribeCluster",
                    r.error_code,
                    message(r.error_message),
                ));
            }
            let mut brokers: Vec<BrokerNode> = r
                .brokers
                .into_iter()
                .map(|b| BrokerNode {
                    id: b.broker_id.0,
                    host: b.host.to_string(),
                    port: b.port,
                    rack: b.rack.map(|r| r.to_string()),
                })
                .collect();
            brokers.sort_by_key(|b| b.id);
            return Ok(ClusterDescription {
                cluster_id: Some(r.cluster_id.to_string()),
                controller_id: (r.controller_id.0 >= 0).then_some(r.controller_id.0),
                brokers,
            });
        }
        // Metadata v1+ with an empty topic list asks for no topics.
        let (_, r) = self
            .call(1, |_| {
                // (Asking for no topics, the auto-creation flag is moot; it
                // cannot be false before v4.)
                Ok(MetadataRequest::default().with_topics(Some(Vec::new())))
            })
            .await?;
        if r.error_code != 0 {
            return Err(AdminError::kafka("Metadata", r.error_code, None));
        }
        let mut brokers: Vec<BrokerNode> = r
            .brokers
            .into_iter()
            .map(|b| BrokerNode {
                id: b.node_id.0,
                host: b.host.to_string(),
                port: b.port,
                rack: b.rack.map(|r| r.to_string()),
            })
            .collect();
        brokers.sort_by_key(|b| b.id);
        Ok(ClusterDescription {
            cluster_id: r.cluster_id.map(|c| c.to_string()),
            controller_id: (r.controller_id.0 >= 0).then_some(r.controller_id.0),
            brokers,
        })
    }

    /// Describes the named topics (all topics if `names` is `None`) with
    /// Metadata, never auto-creating a topic (`allow_auto_topic_creation`
    /// false, so Metadata v4+ is required).
    ///
    /// A topic the broker reports an error for (UNKNOWN_TOPIC_OR_PARTITION
    /// for a missing one) maps to an [`AdminError::Kafka`] with api
    /// `"Metadata"`; only a failure of the whole request fails the call.
    pub async fn describe_topics(
        &self,
        names: Option<&[String]>,
    ) -> Result<TopicDescriptions, AdminError> {
        let topics: Option<Vec<MetadataRequestTopic>> = names.map(|names| {
            names
                .iter()
                .map(|n| {
                    MetadataRequestTopic::default()
                        .with_name(Some(TopicName(StrBytes::from_string(n.clone()))))
                })
                .collect()
        });
        let (_, r) = self
            .call(4, |_| {
                Ok(MetadataRequest::default()
                    .with_topics(topics.clone())
                    .with_allow_auto_topic_creation(false))
            })
            .await?;
        if r.error_code != 0 {
            return Err(AdminError::kafka("Metadata", r.error_code, None));
        }
        let mut out = BTreeMap::new();
        for t in r.topics {
            let (name, described) = describe_topic(t)?;
            out.insert(name, described);
        }
        Ok(out)
    }

    /// Creates one topic (or, with `validate_only`, only checks that it could
    /// be created) with CreateTopics.
    ///
    /// Fails with [`AdminError::Kafka`] carrying the broker's error code and
    /// message, e.g. TOPIC_ALREADY_EXISTS, INVALID_CONFIG,
    /// INVALID_REPLICATION_FACTOR.
    pub async fn create_topic(
        &self,
        topic: NewTopic,
        validate_only: bool,
    ) -> Result<CreatedTopic, AdminError> {
        let timeout_ms = self.timeout_ms();
        let configs: Vec<CreatableTopicConfig> = topic
            .configs
            .iter()
            .map(|(k, v)| {
                CreatableTopicConfig::default()
                    .with_name(StrBytes::from_string(k.clone()))
                    .with_value(Some(StrBytes::from_string(v.clone())))
            })
            .collect();
        let creatable = CreatableTopic::default()
            .with_name(TopicName(StrBytes::from_string(topic.name.clone())))
            .with_num_partitions(topic.partitions)
            .with_replication_factor(topic.replication_factor)
            .with_configs(configs);
        let (version, r) = self
            .call(0, |_| {
                Ok(CreateTopicsRequest::default()
                    .with_topics(vec![creatable.clone()])
                    .with_timeout_ms(timeout_ms)
                    .with_validate_only(validate_only))
            })
            .await?;
        let result = r
            .topics
            .into_iter()
            .find(|t| t.name.0.as_str() == topic.name)
            .ok_or_else(|| missing("CreateTopics", "topic", &topic.name))?;
        if result.error_code != 0 {
            return Err(AdminError::kafka(
                "CreateTopics",
                result.error_code,
                message(result.error_message),
            ));
        }
        let v5 = version >= 5;
        let configs = if v5 && result.topic_config_error_code == 0 {
            result.configs.map(|cs| {
                cs.into_iter()
                    .map(|c| ConfigEntry {
                        name: c.name.to_string(),
                        value: c.value.map(|v| v.to_string()),
                        source: ConfigSource::from_code(c.config_source),
                        read_only: c.read_only,
                        is_sensitive: c.is_sensitive,
                    })
                    .collect()
            })
        } else {
            if v5 {
                debug!(
                    topic = topic.name,
                    code = result.topic_config_error_code,
                    "CreateTopics returned no configs"
                );
            }
            None
        };
        Ok(CreatedTopic {
            topic_id: (version >= 7).then_some(result.topic_id).and_then(non_nil),
            num_partitions: (v5 && result.num_partitions >= 0).then_some(result.num_partitions),
            replication_factor: (v5 && result.replication_factor >= 0)
                .then_some(result.replication_factor),
            configs,
        })
    }

    /// Raises topic `name`'s partition count to `total_count` with
    /// CreatePartitions (the broker assigns the new replicas).
    ///
    /// A count not above the current one fails with INVALID_PARTITIONS.
    pub async fn create_partitions(
        &self,
        name: &str,
        total_count: i32,
        validate_only: bool,
    ) -> Result<(), AdminError> {
        let timeout_ms = self.timeout_ms();
        let (_, r) = self
            .call(0, |_| {
                Ok(CreatePartitionsRequest::default()
                    .with_topics(vec![CreatePartitionsTopic::default()
                        .with_name(topic_name(name))
                        .with_count(total_count)
                        .with_assignments(None)])
                    .with_timeout_ms(timeout_ms)
                    .with_validate_only(validate_only))
            })
            .await?;
        let result = r
            .results
            .into_iter()
            .find(|t| t.name.0.as_str() == name)
            .ok_or_else(|| missing("CreatePartitions", "topic", name))?;
        if result.error_code != 0 {
            return Err(AdminError::kafka(
                "CreatePartitions",
                result.error_code,
                message(result.error_message),
            ));
        }
        Ok(())
    }

    /// All configs of topic `name` (without synonyms), with DescribeConfigs.
    pub async fn describe_topic_configs(&self, name: &str) -> Result<Vec<ConfigEntry>, AdminError> {
        let (_, r) = self
            .call(0, |_| Ok(describe_configs_request(RESOURCE_TOPIC, name)))
            .await?;
        config_entries(r.results, RESOURCE_TOPIC, name)
    }

    /// All configs of broker `broker_id` (without synonyms), with
    /// DescribeConfigs sent to that broker itself over a separate, short-lived
    /// connection to its advertised endpoint (Kafka answers a BROKER resource
    /// only on the broker it names).
    pub async fn describe_broker_configs(
        &self,
        broker_id: i32,
    ) -> Result<Vec<ConfigEntry>, AdminError> {
        let mut conn = self.broker_connection(broker_id).await?;
        let version = conn.versions().pick(ApiKey::DescribeConfigs, 0)?;
        let name = broker_id.to_string();
        let r = conn
            .send(&describe_configs_request(RESOURCE_BROKER, &name), version)
            .await?;
        config_entries(r.results, RESOURCE_BROKER, &name)
    }

    /// A separate, short-lived connection to broker `broker_id`'s advertised
    /// endpoint (from DescribeCluster), for requests Kafka answers only on the
    /// broker they name.
    pub(crate) async fn broker_connection(&self, broker_id: i32) -> Result<Connection, AdminError> {
        let cluster = self.describe_cluster().await?;
        let node = cluster
            .brokers
            .iter()
            .find(|b| b.id == broker_id)
            .ok_or_else(|| {
                AdminError::InvalidArgument(format!("broker {broker_id} is not in the cluster"))
            })?;
        let addr = if node.host.contains(':') {
            format!("[{}]:{}", node.host, node.port)
        } else {
            format!("{}:{}", node.host, node.port)
        };
        Connection::open(&addr, &self.config).await
    }

    /// Changes configs of topic `name` with IncrementalAlterConfigs; configs
    /// not named in `ops` keep their values.
    ///
    /// An unknown config or invalid value fails with INVALID_CONFIG (or
    /// INVALID_REQUEST) carrying the broker's message.
    pub async fn incremental_alter_topic_configs(
        &self,
        name: &str,
        ops: &[AlterConfigOp],
        validate_only: bool,
    ) -> Result<(), AdminError> {
        self.incremental_alter(RESOURCE_TOPIC, name, ops, validate_only)
            .await
    }

    /// IncrementalAlterConfigs of one resource (`resource_type`, `name`); the
    /// resource's error, with the broker's message, is the result.
    pub(crate) async fn incremental_alter(
        &self,
        resource_type: i8,
        name: &str,
        ops: &[AlterConfigOp],
        validate_only: bool,
    ) -> Result<(), AdminError> {
        let request = incremental_alter_request(resource_type, name, ops, validate_only);
        let (_, r) = self.call(0, |_| Ok(request.clone())).await?;
        incremental_alter_result(r, resource_type, name)
    }

    /// Deletes topic `name` with DeleteTopics.
    ///
    /// A missing topic fails with UNKNOWN_TOPIC_OR_PARTITION.
    pub async fn delete_topic(&self, name: &str) -> Result<(), AdminError> {
        let timeout_ms = self.timeout_ms();
        let (_, r) = self
            .call(0, |version| {
                let request = DeleteTopicsRequest::default().with_timeout_ms(timeout_ms);
                Ok(if version >= 6 {
                    request.with_topics(vec![DeleteTopicState::default()
                        .with_name(Some(topic_name(name)))
                        .with_topic_id(Uuid::nil())])
                } else {
                    request.with_topic_names(vec![topic_name(name)])
                })
            })
            .await?;
        let result = r
            .responses
            .into_iter()
            .find(|t| t.name.as_ref().is_some_and(|n| n.0.as_str() == name))
            .ok_or_else(|| missing("DeleteTopics", "topic", name))?;
        if result.error_code != 0 {
            return Err(AdminError::kafka(
                "DeleteTopics",
                result.error_code,
                message(result.error_message),
            ));
        }
        Ok(())
    }

    /// `request_timeout` in milliseconds, for the requests that carry a timeout.
    pub(crate) fn timeout_ms(&self) -> i32 {
        i32::try_from(self.config.request_timeout.as_millis()).unwrap_or(i32::MAX)
    }

    /// Connects to the first reachable bootstrap server.
    async fn open_any(&self) -> Result<Connection, AdminError> {
        let mut last = None;
        for addr in &self.bootstrap {
            match Connection::open(addr, &self.config).await {
                Ok(conn) => {
                    debug!(bootstrap = addr, peer = %conn.peer(), "connected");
                    return Ok(conn);
                }
                Err(e) => {
                    debug!(bootstrap = addr, error = %e, "bootstrap server unreachable");
                    last = Some(e);
                }
            }
        }
        Err(last.unwrap_or_else(|| AdminError::InvalidArgument("empty bootstrap list".into())))
    }

    /// The connection in `slot`, opening one if there is none.
    async fn ensure_connected<'a>(
        &self,
        slot: &'a mut Option<Connection>,
    ) -> Result<&'a mut Connection, AdminError> {
        if slot.is_none() {
            *slot = Some(self.open_any().await?);
        }
        slot.as_mut()
            .ok_or_else(|| AdminError::Protocol("no connection".into()))
    }

    /// Sends the request `build` makes for the negotiated version (at least
    /// `min_version`) and returns that version and the response. Reconnects
    /// and re-sends once if the connection broke.
    pub(crate) async fn call<R, F>(
        &self,
        min_version: i16,
        build: F,
    ) -> Result<(i16, R::Response), AdminError>
    where
        R: Request,
        F: Fn(i16) -> Result<R, AdminError>,
    {
        let api = ApiKey::try_from(R::KEY)
            .map_err(|()| AdminError::Protocol(format!("unknown API key {}", R::KEY)))?;
        let mut slot = self.conn.lock().await;
        let mut retried = false;
        loop {
            let conn = self.ensure_connected(&mut slot).await?;
            let version = conn.versions().pick(api, min_version)?;
            let request = build(version)?;
            debug!(api = api_name(R::KEY), version, peer = %conn.peer(), "request");
            match conn.send(&request, version).await {
                Ok(response) => return Ok((version, response)),
                Err(e) => {
                    *slot = None;
                    if matches!(e, AdminError::Io(_)) && !retried {
                        warn!(api = api_name(R::KEY), error = %e, "connection broke; reconnecting once");
                        retried = true;
                        continue;
                    }
                    return Err(e);
                }
            }
        }
    }
}

/// Splits `"host:port[,host:port...]"`.
fn parse_bootstrap(bootstrap: &str) -> Result<Vec<String>, AdminError> {
    let servers: Vec<String> = bootstrap
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            let valid = s
                .rsplit_once(':')
                .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok());
            if valid {
                Ok(s.to_string())
            } else {
                Err(AdminError::InvalidArgument(format!(
                    "bootstrap server {s:?} is not host:port"
                )))
            }
        })
        .collect::<Result<_, _>>()?;
    if servers.is_empty() {
        return Err(AdminError::InvalidArgument(format!(
            "no bootstrap server in {bootstrap:?}"
        )));
    }
    Ok(servers)
}

/// Maps one Metadata topic to its name and description or error.
fn describe_topic(
    t: MetadataResponseTopic,
) -> Result<(String, Result<TopicDescription, AdminError>), AdminError> {
    let name = t.name.map(|n| n.0.to_string()).ok_or_else(|| {
        AdminError::Protocol("Metadata response has a topic without a name".into())
    })?;
    if t.error_code != 0 {
        return Ok((name, Err(AdminError::kafka("Metadata", t.error_code, None))));
    }
    let mut partitions: Vec<PartitionDescription> = t
        .partitions
        .into_iter()
        .map(|p| PartitionDescription {
            id: p.partition_index,
            leader: (p.leader_id.0 >= 0).then_some(p.leader_id.0),
            leader_epoch: (p.leader_epoch >= 0).then_some(p.leader_epoch),
            replicas: p.replica_nodes.into_iter().map(|b| b.0).collect(),
            isr: p.isr_nodes.into_iter().map(|b| b.0).collect(),
            offline_replicas: p.offline_replicas.into_iter().map(|b| b.0).collect(),
            error_code: p.error_code,
        })
        .collect();
    partitions.sort_by_key(|p| p.id);
    Ok((
        name.clone(),
        Ok(TopicDescription {
            name,
            topic_id: non_nil(t.topic_id),
            is_internal: t.is_internal,
            partitions,
        }),
    ))
}

/// A DescribeConfigs request for one whole resource, without synonyms.
pub(crate) fn describe_configs_request(resource_type: i8, name: &str) -> DescribeConfigsRequest {
    DescribeConfigsRequest::default()
        .with_resources(vec![DescribeConfigsResource::default()
            .with_resource_type(resource_type)
            .with_resource_name(StrBytes::from_string(name.to_string()))
            .with_configuration_keys(None)])
        .with_include_synonyms(false)
        .with_include_documentation(false)
}

/// The config entries of resource `name` in a DescribeConfigs response.
pub(crate) fn config_entries(
    results: Vec<DescribeConfigsResult>,
    resource_type: i8,
    name: &str,
) -> Result<Vec<ConfigEntry>, AdminError> {
    let result = results
        .into_iter()
        .find(|r| r.resource_type == resource_type && r.resource_name.as_str() == name)
        .ok_or_else(|| missing("DescribeConfigs", "resource", name))?;
    if result.error_code != 0 {
        return Err(AdminError::kafka(
            "DescribeConfigs",
            result.error_code,
            message(result.error_message),
        ));
    }
    Ok(result
        .configs
        .into_iter()
        .map(|c| ConfigEntry {
            name: c.name.to_string(),
            value: c.value.map(|v| v.to_string()),
            source: ConfigSource::from_code(c.config_source),
            read_only: c.read_only,
            is_sensitive: c.is_sensitive,
        })
        .collect())
}

pub(crate) fn topic_name(name: &str) -> TopicName {
    TopicName(StrBytes::from_string(name.to_string()))
}

/// A broker error message; an empty one counts as none.
pub(crate) fn message(m: Option<StrBytes>) -> Option<String> {
    m.filter(|m| !m.is_empty()).map(|m| m.to_string())
}

fn non_nil(id: Uuid) -> Option<Uuid> {
    (!id.is_nil()).then_some(id)
}

pub(crate) fn missing(api: &'static str, what: &str, name: &str) -> AdminError {
    AdminError::Protocol(format!("{api} response has no result for {what} {name:?}"))
}

/// The IncrementalAlterConfigs request changing one resource.
pub(crate) fn incremental_alter_request(
    resource_type: i8,
    name: &str,
    ops: &[AlterConfigOp],
    validate_only: bool,
) -> IncrementalAlterConfigsRequest {
    let configs: Vec<AlterableConfig> = ops
        .iter()
        .map(|op| {
            AlterableConfig::default()
                .with_name(StrBytes::from_string(op.key().to_string()))
                .with_config_operation(op.op_code())
                .with_value(op.value().map(|v| StrBytes::from_string(v.to_string())))
        })
        .collect();
    IncrementalAlterConfigsRequest::default()
        .with_resources(vec![AlterConfigsResource::default()
            .with_resource_type(resource_type)
            .with_resource_name(StrBytes::from_string(name.to_string()))
            .with_configs(configs)])
        .with_validate_only(validate_only)
}

/// The result of one resource's IncrementalAlterConfigs: its error, with the
/// broker's message.
pub(crate) fn incremental_alter_result(
    r: kafka_protocol::messages::IncrementalAlterConfigsResponse,
    resource_type: i8,
    name: &str,
) -> Result<(), AdminError> {
    let result = r
        .responses
        .into_iter()
        .find(|t| t.resource_type == resource_type && t.resource_name.as_str() == name)
        .ok_or_else(|| {
            missing(
                "IncrementalAlterConfigs",
                "resource",
                if name.is_empty() {
                    "<default broker>"
                } else {
                    name
                },
            )
        })?;
    if result.error_code != 0 {
        return Err(AdminError::kafka(
            "IncrementalAlterConfigs",
            result.error_code,
            message(result.error_message),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send<T: Send>(_: &T) {}

    /// The client can be shared across tasks and its futures spawned.
    #[allow(dead_code)]
    fn client_and_futures_are_send(c: &AdminClient, names: &[String], ops: &[AlterConfigOp]) {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<AdminClient>();
        assert_send(&c.describe_cluster());
        assert_send(&c.describe_topics(Some(names)));
        assert_send(&c.create_topic(NewTopic::new("t", 1, 1), false));
        assert_send(&c.create_partitions("t", 2, false));
        assert_send(&c.describe_topic_configs("t"));
        assert_send(&c.describe_broker_configs(1));
        assert_send(&c.incremental_alter_topic_configs("t", ops, false));
        assert_send(&c.delete_topic("t"));
    }

    #[test]
    fn bootstrap_parsing() {
        assert_eq!(
            parse_bootstrap(" a:1, 127.0.0.1:9092 ,[::1]:9093,").ok(),
            Some(vec![
                "a:1".to_string(),
                "127.0.0.1:9092".to_string(),
                "[::1]:9093".to_string()
            ])
        );
        for bad in ["", " , ", "host", "host:", ":9092", "host:99999", "host:x"] {
            assert!(
                matches!(parse_bootstrap(bad), Err(AdminError::InvalidArgument(_))),
                "{bad:?}"
            );
        }
    }
}
