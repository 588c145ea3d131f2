//! The cluster image: the in-memory result of applying every committed
//! metadata record. Request handlers read it; only the quorum's state machine
//! writes it.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::features::{FeatureRange, METADATA_VERSION, MINIMUM_METADATA_VERSION};
use super::record::{Endpoint, MetadataRecord, PartitionAssignment};

/// A registered broker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrokerImage {
    /// The node id.
    pub node_id: i32,
    /// The incarnation that registered last.
    pub incarnation_id: Uuid,
    /// Advertised endpoints.
    pub endpoints: Vec<Endpoint>,
    /// Rack, if configured.
    pub rack: Option<String>,
    /// The broker epoch: the metadata offset of its last registration.
    #[serde(default)]
    pub epoch: i64,
    /// Fenced: registered but not (or no longer) live; not eligible to
    /// lead, be in an ISR, or get new replicas.
    #[serde(default)]
    pub fenced: bool,
    /// In controlled shutdown: leadership and ISR membership move away.
    #[serde(default)]
    pub shutting_down: bool,
    /// The feature levels it supports (empty: registered by a binary
    /// without feature support).
    #[serde(default)]
    pub features: BTreeMap<String, FeatureRange>,
}

impl BrokerImage {
    /// Whether the broker may lead partitions, join ISRs and take new
    /// replicas: registered, unfenced and not shutting down.
    pub fn usable(&self) -> bool {
        !self.fenced && !self.shutting_down
    }
}

/// One partition's replica state.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionImage {
    /// Replica broker ids; the first is the preferred leader.
    pub replicas: Vec<i32>,
    /// In-sync replicas.
    pub isr: Vec<i32>,
    /// The current leader, or -1.
    pub leader: i32,
    /// Bumped on every leader change.
    pub leader_epoch: i32,
    /// Bumped on every change to this partition.
    pub partition_epoch: i32,
    /// Replicas being added by an ongoing reassignment (also in `replicas`).
    #[serde(default)]
    pub adding_replicas: Vec<i32>,
    /// Replicas to be removed when the reassignment completes (also in
    /// `replicas`).
    #[serde(default)]
    pub removing_replicas: Vec<i32>,
}

/// One topic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicImage {
    /// The topic name.
    pub name: String,
    /// The topic id.
    pub topic_id: Uuid,
    /// Partitions, indexed by partition number.
    pub partitions: Vec<PartitionImage>,
    /// Topic-level config overrides.
    pub configs: BTreeMap<String, String>,
}

/// The whole cluster's metadata, as of `last_applied`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterImage {
    /// The raft log index of the last applied record (0 when empty).
    pub last_applied: u64,
    /// The current quorum leader (the active controller), if known.
    pub controller_id: Option<i32>,
    /// Registered brokers by node id.
    pub brokers: BTreeMap<i32, BrokerImage>,
    /// Topics by name.
    pub topics: BTreeMap<String, TopicImage>,
    /// Topic names by id.
    pub topic_names: HashMap<Uuid, String>,
    /// Cluster-wide dynamic broker config (the empty resource name).
    pub cluster_configs: BTreeMap<String, String>,
    /// Per-broker dynamic config overrides.
    pub broker_configs: BTreeMap<i32, BTreeMap<String, String>>,
    /// Group config overrides by group id (absent in older snapshots).
    #[serde(default)]
    pub group_configs: BTreeMap<String, BTreeMap<String, String>>,
    /// The first producer id not yet handed to any broker.
    pub next_producer_id: i64,
    /// Each broker's current producer id block, `[first, end)`.
    pub producer_id_blocks: BTreeMap<i32, (i64, i64)>,
    /// Finalized feature levels (FeatureLevel records), `metadata.version`
    /// included; absent in logs written before feature support.
    #[serde(default)]
    pub features: BTreeMap<String, i16>,
}

/// A new partition: its ISR is the replicas that are live, led by the
/// first of them (Kafka's `PartitionChangeBuilder` for a new partition).
/// With none live (old metadata logs had no liveness), every replica.
fn new_partition(a: &PartitionAssignment, usable: impl Fn(i32) -> bool) -> PartitionImage {
    let mut isr: Vec<i32> = a.replicas.iter().copied().filter(|&r| usable(r)).collect();
    if isr.is_empty() {
        isr = a.replicas.clone();
    }
    PartitionImage {
        leader: isr.first().copied().unwrap_or(-1),
        isr,
        replicas: a.replicas.clone(),
        leader_epoch: 0,
        partition_epoch: 0,
        ..Default::default()
    }
}

fn apply_changes(map: &mut BTreeMap<String, String>, changes: &BTreeMap<String, Option<String>>) {
    for (k, v) in changes {
        match v {
            Some(v) => {
                map.insert(k.clone(), v.clone());
            }
            None => {
                map.remove(k);
            }
        }
    }
}

/// A broker as clients see it: id, advertised host and port, rack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdvertisedBroker<'a> {
    /// Node id.
    pub node_id: i32,
    /// Advertised host.
    pub host: &'a str,
    /// Advertised port.
    pub port: u16,
    /// Rack, if any.
    pub rack: Option<&'a str>,
}

impl ClusterImage {
    /// Registered brokers with their first advertised endpoint.
    pub fn advertised_brokers(&self) -> impl Iterator<Item = AdvertisedBroker<'_>> {
        self.client_brokers(None)
    }

    /// The brokers a client is told about: the unfenced ones (Kafka's
    /// metadata cache), plus `stopping`, the answering broker itself when it
    /// is in its own controlled shutdown. The controller fences a broker as
    /// its controlled shutdown completes, and the broker goes on answering
    /// the requests it has already read until its connections close. A
    /// Kafka broker only ever answers while unfenced (it serves after it is
    /// unfenced and stops right after its controlled shutdown), so a response
    /// from it always lists itself; one that lists no broker makes librdkafka
    /// (2.10+) drop every broker it knows and wait minutes to re-bootstrap.
    pub fn client_brokers(
        &self,
        stopping: Option<i32>,
    ) -> impl Iterator<Item = AdvertisedBroker<'_>> {
        let alive =
            move |b: &&BrokerImage| !b.fenced || (Some(b.node_id) == stopping && b.shutting_down);
        self.brokers.values().filter(alive).filter_map(|b| {
            let ep = b.endpoints.first()?;
            Some(AdvertisedBroker {
                node_id: b.node_id,
                host: &ep.host,
                port: ep.port,
                rack: b.rack.as_deref(),
            })
        })
    }

    /// The controller id clients are told: the quorum leader when it is a
    /// registered broker, else `fallback` (KRaft hides controller-only nodes).
    pub fn client_visible_controller(&self, fallback: i32) -> i32 {
        self.controller_id
            .filter(|c| self.brokers.contains_key(c))
            .unwrap_or(fallback)
    }

    /// The finalized `metadata.version` level. A log written before
    /// feature support has none: it reads as the lowest level, 3.3-IV3.
    pub fn metadata_version(&self) -> i16 {
        self.features
            .get(METADATA_VERSION)
            .copied()
            .unwrap_or(MINIMUM_METADATA_VERSION)
    }

    /// The end of a broker's producer id block (0 when it has none).
    pub fn producer_id_block_end(&self, node_id: i32) -> i64 {
        self.producer_id_blocks
            .get(&node_id)
            .map(|b| b.1)
            .unwrap_or(0)
    }

    /// The start of a broker's producer id block.
    pub fn producer_id_block_start(&self, node_id: i32) -> Option<i64> {
        self.producer_id_blocks.get(&node_id).map(|b| b.0)
    }

    /// Whether `node_id` is registered and usable (see [`BrokerImage::usable`]).
    pub fn broker_usable(&self, node_id: i32) -> bool {
        self.brokers.get(&node_id).is_some_and(BrokerImage::usable)
    }

    /// The partition `index` of the topic with id `topic_id`.
    pub fn partition(&self, topic_id: &Uuid, index: i32) -> Option<&PartitionImage> {
        let t = self.topic_by_id(topic_id)?;
        usize::try_from(index)
            .ok()
            .and_then(|i| t.partitions.get(i))
    }

    fn partition_mut(&mut self, topic_id: &Uuid, index: i32) -> Option<&mut PartitionImage> {
        let name = self.topic_names.get(topic_id)?;
        let t = self.topics.get_mut(name)?;
        usize::try_from(index)
            .ok()
            .and_then(|i| t.partitions.get_mut(i))
    }

    /// Looks a topic up by id.
    pub fn topic_by_id(&self, id: &Uuid) -> Option<&TopicImage> {
        self.topic_names.get(id).and_then(|n| self.topics.get(n))
    }

    /// Applies one committed record. Application is total and deterministic:
    /// a record that no longer makes sense (say, for a topic deleted since it
    /// was proposed) is ignored, never an error, so every node's image stays equal.
    pub fn apply(&mut self, record: &MetadataRecord) {
        match record {
            MetadataRecord::RegisterBroker {
                node_id,
                incarnation_id,
                endpoints,
                rack,
                features,
            } => {
                // Every registration starts fenced, a new incarnation
                // included: it becomes live once it has caught up.
                self.brokers.insert(
                    *node_id,
                    BrokerImage {
                        node_id: *node_id,
                        incarnation_id: *incarnation_id,
                        endpoints: endpoints.clone(),
                        rack: rack.clone(),
                        epoch: self.last_applied as i64,
                        fenced: true,
                        shutting_down: false,
                        features: features.clone(),
                    },
                );
            }
            MetadataRecord::ChangeBroker {
                node_id,
                epoch,
                fenced,
                shutting_down,
            } => {
                if let Some(b) = self.brokers.get_mut(node_id) {
                    if b.epoch == *epoch {
                        b.fenced = *fenced;
                        b.shutting_down = *shutting_down;
                    }
                }
            }
            MetadataRecord::CreateTopic {
                name,
                topic_id,
                partitions,
                configs,
            } => {
                if self.topics.contains_key(name) || self.topic_names.contains_key(topic_id) {
                    return;
                }
                let mut sorted = partitions.clone();
                sorted.sort_by_key(|p| p.partition);
                let parts = sorted
                    .iter()
                    .map(|a| new_partition(a, |b| self.broker_usable(b)))
                    .collect();
                self.topic_names.insert(*topic_id, name.clone());
                self.topics.insert(
                    name.clone(),
                    TopicImage {
                        name: name.clone(),
                        topic_id: *topic_id,
                        partitions: parts,
                        configs: configs.clone(),
                    },
                );
            }
            MetadataRecord::CreatePartitions {
                topic_id,
                partitions,
            } => {
                let Some(name) = self.topic_names.get(topic_id) else {
                    return;
                };
                let mut sorted = partitions.clone();
                sorted.sort_by_key(|p| p.partition);
                let new: Vec<(i32, PartitionImage)> = sorted
                    .iter()
                    .map(|a| (a.partition, new_partition(a, |b| self.broker_usable(b))))
                    .collect();
                if let Some(t) = self.topics.get_mut(name) {
                    for (index, p) in new {
                        if index as usize == t.partitions.len() {
                            t.partitions.push(p);
                        }
                    }
                }
            }
            MetadataRecord::DeleteTopic { topic_id } => {
                if let Some(name) = self.topic_names.remove(topic_id) {
                    self.topics.remove(&name);
                }
            }
            MetadataRecord::AlterTopicConfigs { topic_id, changes } => {
                let Some(name) = self.topic_names.get(topic_id) else {
                    return;
                };
                if let Some(t) = self.topics.get_mut(name) {
                    apply_changes(&mut t.configs, changes);
                }
            }
            MetadataRecord::AlterBrokerConfigs { node_id, changes } => match node_id {
                None => apply_changes(&mut self.cluster_configs, changes),
                Some(id) => {
                    let m = self.broker_configs.entry(*id).or_default();
                    apply_changes(m, changes);
                    if m.is_empty() {
                        self.broker_configs.remove(id);
                    }
                }
            },
            MetadataRecord::AlterGroupConfigs { group, changes } => {
                let m = self.group_configs.entry(group.clone()).or_default();
                apply_changes(m, changes);
                if m.is_empty() {
                    self.group_configs.remove(group);
                }
            }
            MetadataRecord::UnregisterBroker { node_id, epoch } => {
                if self.brokers.get(node_id).is_some_and(|b| b.epoch == *epoch) {
                    self.brokers.remove(node_id);
                }
            }
            MetadataRecord::FeatureLevel { name, level } => {
                if *level == 0 && name != METADATA_VERSION {
                    self.features.remove(name);
                } else {
                    self.features.insert(name.clone(), *level);
                }
            }
            MetadataRecord::AllocateProducerIds {
                node_id,
                first,
                size,
            } => {
                if *first == self.next_producer_id && *size > 0 {
                    self.producer_id_blocks
                        .insert(*node_id, (*first, first + size));
                    self.next_producer_id += size;
                }
            }
            MetadataRecord::ReassignPartition {
                topic_id,
                partition,
                replicas,
                adding,
                removing,
                leader,
                isr,
            } => {
                let Some(p) = self.partition_mut(topic_id, *partition) else {
                    return;
                };
                if p.leader != *leader {
                    p.leader_epoch += 1;
                }
                p.leader = *leader;
                p.isr = isr.clone();
                p.replicas = replicas.clone();
                p.adding_replicas = adding.clone();
                p.removing_replicas = removing.clone();
                p.partition_epoch += 1;
            }
            MetadataRecord::ChangePartition {
                topic_id,
                partition,
                leader,
                isr,
                replicas,
                bump_leader_epoch,
            } => {
                let Some(name) = self.topic_names.get(topic_id) else {
                    return;
                };
                let Some(t) = self.topics.get_mut(name) else {
                    return;
                };
                let Some(p) = usize::try_from(*partition)
                    .ok()
                    .and_then(|i| t.partitions.get_mut(i))
                else {
                    return;
                };
                if *bump_leader_epoch || p.leader != *leader {
                    p.leader_epoch += 1;
                }
                p.leader = *leader;
                p.isr = isr.clone();
                if let Some(r) = replicas {
                    p.replicas = r.clone();
                }
                p.partition_epoch += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn create(name: &str, id: Uuid, n: i32) -> MetadataRecord {
        MetadataRecord::CreateTopic {
            name: name.into(),
            topic_id: id,
            partitions: (0..n)
                .map(|p| PartitionAssignment {
                    partition: p,
                    replicas: vec![1],
                })
                .collect(),
            configs: BTreeMap::new(),
        }
    }

    #[test]
    fn create_extend_alter_delete() {
        let mut img = ClusterImage::default();
        let id = Uuid::new_v4();
        img.apply(&create("t", id, 2));
        // A duplicate name is ignored, deterministically.
        img.apply(&create("t", Uuid::new_v4(), 5));
        assert_eq!(img.topics["t"].partitions.len(), 2);
        img.apply(&MetadataRecord::CreatePartitions {
            topic_id: id,
            partitions: vec![PartitionAssignment {
                partition: 2,
                replicas: vec![1],
            }],
        });
        assert_eq!(img.topics["t"].partitions.len(), 3);
        let mut ch = BTreeMap::new();
        ch.insert("retention.ms".to_string(), Some("1000".to_string()));
        img.apply(&MetadataRecord::AlterTopicConfigs {
            topic_id: id,
            changes: ch.clone(),
        });
        assert_eq!(img.topics["t"].configs["retention.ms"], "1000");
        ch.insert("retention.ms".to_string(), None);
        img.apply(&MetadataRecord::AlterTopicConfigs {
            topic_id: id,
            changes: ch,
        });
        assert!(img.topics["t"].configs.is_empty());
        img.apply(&MetadataRecord::ChangePartition {
            topic_id: id,
            partition: 0,
            leader: 1,
            isr: vec![1],
            replicas: None,
            bump_leader_epoch: true,
        });
        assert_eq!(img.topics["t"].partitions[0].leader_epoch, 1);
        img.apply(&MetadataRecord::DeleteTopic { topic_id: id });
        assert!(img.topics.is_empty() && img.topic_names.is_empty());
    }

    fn broker(node_id: i32, fenced: bool, shutting_down: bool) -> BrokerImage {
        BrokerImage {
            node_id,
            incarnation_id: Uuid::nil(),
            endpoints: vec![Endpoint {
                listener: "PLAINTEXT".into(),
                host: "h".into(),
                port: 9092,
                security_protocol: "PLAINTEXT".into(),
            }],
            rack: None,
            epoch: 1,
            fenced,
            shutting_down,
            features: BTreeMap::new(),
        }
    }

    #[test]
    fn clients_see_unfenced_brokers_and_the_answering_one_while_it_stops() {
        let mut img = ClusterImage::default();
        // 1 finished its controlled shutdown (fenced), 2 is live, 3 was
        // fenced by the controller (missed heartbeats).
        for b in [
            broker(1, true, true),
            broker(2, false, false),
            broker(3, true, false),
        ] {
            img.brokers.insert(b.node_id, b);
        }
        let ids =
            |stopping| -> Vec<i32> { img.client_brokers(stopping).map(|b| b.node_id).collect() };
        assert_eq!(ids(None), vec![2]);
        assert_eq!(img.advertised_brokers().count(), 1);
        // Broker 1 answering during its own shutdown lists itself.
        assert_eq!(ids(Some(1)), vec![1, 2]);
        // A broker fenced for another reason stays hidden, even from itself.
        assert_eq!(ids(Some(3)), vec![2]);
    }

    #[test]
    fn unregistering_removes_only_the_named_registration() {
        let mut img = ClusterImage::default();
        img.brokers.insert(1, broker(1, true, false));
        // A stale epoch (the broker registered again since) is ignored.
        img.apply(&MetadataRecord::UnregisterBroker {
            node_id: 1,
            epoch: 0,
        });
        assert!(img.brokers.contains_key(&1));
        img.apply(&MetadataRecord::UnregisterBroker {
            node_id: 1,
            epoch: 1,
        });
        assert!(img.brokers.is_empty());
        // An unknown broker: nothing happens.
        img.apply(&MetadataRecord::UnregisterBroker {
            node_id: 7,
            epoch: 1,
        });
        assert!(img.brokers.is_empty());
    }
}
