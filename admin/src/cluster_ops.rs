//! Cluster operations for rolling restarts: the KRaft quorum, the configs of many
//! topics at once, and preferred leader elections.

use std::collections::BTreeMap;

use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::describe_quorum_request::{PartitionData, TopicData};
use kafka_protocol::messages::elect_leaders_request::TopicPartitions;
use kafka_protocol::messages::{
    DescribeConfigsRequest, DescribeQuorumRequest, ElectLeadersRequest,
};
use kafka_protocol::protocol::StrBytes;

use crate::client::{config_entries, message, topic_name, RESOURCE_TOPIC};
use crate::error::AdminError;
use crate::types::{ConfigEntry, QuorumDescription};
use crate::AdminClient;

/// The metadata topic DescribeQuorum describes.
const METADATA_TOPIC: &str = "__cluster_metadata";
/// Kafka's ELECTION_NOT_NEEDED: the preferred replica already leads.
const ELECTION_NOT_NEEDED: i16 = 84;

/// Per topic, its configs or its own error.
pub type TopicConfigs = BTreeMap<String, Result<Vec<ConfigEntry>, AdminError>>;

/// Per partition (topic, index), the election's outcome.
pub type ElectionResults = BTreeMap<(String, i32), Result<(), AdminError>>;

impl AdminClient {
    /// The KRaft metadata quorum, with DescribeQuorum (a broker forwards it to the
    /// controllers).
    pub async fn describe_quorum(&self) -> Result<QuorumDescription, AdminError> {
        let (_, r) = self
            .call(0, |_| {
                Ok(
                    DescribeQuorumRequest::default().with_topics(vec![TopicData::default()
                        .with_topic_name(topic_name(METADATA_TOPIC))
                        .with_partitions(vec![PartitionData::default().with_partition_index(0)])]),
                )
            })
            .await?;
        if r.error_code != 0 {
            return Err(AdminError::kafka(
                "DescribeQuorum",
                r.error_code,
                message(r.error_message),
            ));
        }
        let p = r
            .topics
            .into_iter()
            .find(|t| t.topic_name.0.as_str() == METADATA_TOPIC)
            .and_then(|t| t.partitions.into_iter().find(|p| p.partition_index == 0))
            .ok_or_else(|| {
                AdminError::Protocol("DescribeQuorum response has no __cluster_metadata-0".into())
            })?;
        if p.error_code != 0 {
            return Err(AdminError::kafka(
                "DescribeQuorum",
                p.error_code,
                message(p.error_message),
            ));
        }
        let states = |v: Vec<kafka_protocol::messages::describe_quorum_response::ReplicaState>| {
            v.into_iter()
                .map(|s| (s.replica_id.0, s.log_end_offset))
                .collect::<Vec<_>>()
        };
        let dirs = |v: &[kafka_protocol::messages::describe_quorum_response::ReplicaState]| {
            v.iter()
                .map(|s| {
                    let d = s.replica_directory_id;
                    (s.replica_id.0, (!d.is_nil()).then_some(d))
                })
                .collect::<Vec<_>>()
        };
        let voter_directories = dirs(&p.current_voters);
        let observer_directories = dirs(&p.observers);
        Ok(QuorumDescription {
            leader_id: (p.leader_id.0 >= 0).then_some(p.leader_id.0),
            leader_epoch: p.leader_epoch,
            high_watermark: p.high_watermark,
            voters: states(p.current_voters),
            observers: states(p.observers),
            voter_directories,
            observer_directories,
        })
    }

    /// The configs `keys` (all when `None`) of each of `topics`, in one DescribeConfigs
    /// request. A topic the broker reports an error for maps to its own error.
    pub async fn describe_topics_configs(
        &self,
        topics: &[String],
        keys: Option<&[&str]>,
    ) -> Result<TopicConfigs, AdminError> {
        if topics.is_empty() {
            return Ok(TopicConfigs::new());
        }
        let keys: Option<Vec<StrBytes>> = keys.map(|ks| {
            ks.iter()
                .map(|k| StrBytes::from_string(k.to_string()))
                .collect()
        });
        let (_, r) = self
            .call(0, |_| {
                Ok(DescribeConfigsRequest::default()
                    .with_resources(
                        topics
                            .iter()
                            .map(|t| {
                                DescribeConfigsResource::default()
                                    .with_resource_type(RESOURCE_TOPIC)
                                    .with_resource_name(StrBytes::from_string(t.clone()))
                                    .with_configuration_keys(keys.clone())
                            })
                            .collect(),
                    )
                    .with_include_synonyms(false)
                    .with_include_documentation(false))
            })
            .await?;
        let mut out = TopicConfigs::new();
        for result in r.results {
            if result.resource_type != RESOURCE_TOPIC {
                continue;
            }
            let name = result.resource_name.to_string();
            let entries = config_entries(vec![result], RESOURCE_TOPIC, &name);
            out.insert(name, entries);
        }
        for t in topics {
            if !out.contains_key(t) {
                // (the same error a single-topic DescribeConfigs gives)
                let e = config_entries(Vec::new(), RESOURCE_TOPIC, t);
                out.insert(t.clone(), e);
            }
        }
        Ok(out)
    }

    /// Runs a preferred leader election (ElectLeaders, type PREFERRED) for `partitions`.
    /// A partition whose preferred replica already leads (ELECTION_NOT_NEEDED) succeeds.
    pub async fn elect_preferred_leaders(
        &self,
        partitions: &[(String, i32)],
    ) -> Result<ElectionResults, AdminError> {
        let mut by_topic: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
        for (t, p) in partitions {
            by_topic.entry(t).or_default().push(*p);
        }
        let timeout_ms = self.timeout_ms();
        let (_, r) = self
            .call(0, |_| {
                Ok(ElectLeadersRequest::default()
                    .with_election_type(0)
                    .with_timeout_ms(timeout_ms)
                    .with_topic_partitions(Some(
                        by_topic
                            .iter()
                            .map(|(t, ps)| {
                                TopicPartitions::default()
                                    .with_topic(topic_name(t))
                                    .with_partitions(ps.clone())
                            })
                            .collect(),
                    )))
            })
            .await?;
        if r.error_code != 0 {
            return Err(AdminError::kafka("ElectLeaders", r.error_code, None));
        }
        let mut out = ElectionResults::new();
        for t in r.replica_election_results {
            for p in t.partition_result {
                let result = match p.error_code {
                    0 | ELECTION_NOT_NEEDED => Ok(()),
                    code => Err(AdminError::kafka(
                        "ElectLeaders",
                        code,
                        message(p.error_message),
                    )),
                };
                out.insert((t.topic.0.to_string(), p.partition_id), result);
            }
        }
        Ok(out)
    }
}
