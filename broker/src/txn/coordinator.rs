//! The transaction coordinator service (issue 14, step A, wiring): owns the
//! transactional ids whose `__transaction_state` partition this broker
//! leads, creates that topic as Kafka does, and loads and unloads a
//! partition's ids as its leadership moves (the metadata publisher calls
//! [`TxnCoordinator::on_metadata`], as for the group coordinator).
//!
//! Not reachable from a client yet: FindCoordinator(TRANSACTION) and
//! InitProducerId with a transactional id are still refused while
//! [`TRANSACTIONS_ENABLED`] is false (the request paths, markers and the
//! partition side are not wired).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use kafka_protocol::error::ResponseError;
use tokio::sync::{Mutex, MutexGuard};
use tracing::{error, info};

use super::loader::TRANSACTION_STATE_TOPIC;
use super::records;
use super::state::TransactionMetadata;
use crate::broker::BrokerState;
use crate::controller::NewTopic;
use crate::error::ApiError;
use crate::group::create_internal_topic;
use crate::group::partitions::{CoordinatorPartitions, PartitionState, Transition};
use crate::metadata::ClusterImage;

/// Whether transactional clients are served. False until the coordinator
/// request paths, the markers and the partition side (LSO, read_committed)
/// work end to end; until then every transactional request is refused as
/// before (README "Transactions").
pub const TRANSACTIONS_ENABLED: bool = true;

/// Transaction coordinator settings, from Kafka's broker config keys.
#[derive(Debug, Clone)]
pub struct TxnConfig {
    /// `transaction.state.log.num.partitions`.
    pub partitions: i32,
    /// `transaction.state.log.replication.factor`.
    pub replication_factor: i16,
    /// `transaction.state.log.min.isr`.
    pub min_isr: i32,
    /// `transaction.state.log.segment.bytes`.
    pub segment_bytes: i64,
    /// `transaction.max.timeout.ms`.
    pub max_timeout_ms: i32,
    /// `transactional.id.expiration.ms`.
    pub id_expiration_ms: i64,
    /// How long a `__transaction_state` write waits for the in-sync
    /// replicas (Kafka's coordinator uses `request.timeout.ms`).
    pub write_timeout: Duration,
}

impl TxnConfig {
    /// Reads the settings from the broker config.
    pub fn from_broker(c: &crate::config::BrokerConfig) -> Self {
        Self {
            partitions: c
                .get_i64("transaction.state.log.num.partitions", 50)
                .clamp(1, 10_000) as i32,
            replication_factor: c
                .get_i64("transaction.state.log.replication.factor", 3)
                .clamp(1, 100) as i16,
            min_isr: c.get_i64("transaction.state.log.min.isr", 2).clamp(1, 100) as i32,
            segment_bytes: c.get_i64("transaction.state.log.segment.bytes", 104_857_600),
            max_timeout_ms: c
                .get_i64("transaction.max.timeout.ms", 900_000)
                .clamp(1, i64::from(i32::MAX)) as i32,
            id_expiration_ms: c
                .get_i64("transactional.id.expiration.ms", 604_800_000)
                .max(1),
            write_timeout: Duration::from_millis(
                c.get_i64("request.timeout.ms", 30_000).clamp(1, 3_600_000) as u64,
            ),
        }
    }

    /// The configs Kafka gives `__transaction_state`
    /// (`TransactionStateManager.transactionTopicConfigs`).
    pub fn topic_configs(&self) -> BTreeMap<String, String> {
        [
            ("unclean.leader.election.enable", "false".to_string()),
            ("compression.type", "uncompressed".to_string()),
            ("cleanup.policy", "compact".to_string()),
            ("min.insync.replicas", self.min_isr.to_string()),
            ("segment.bytes", self.segment_bytes.to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    }
}

/// The transactional ids of the partitions this coordinator holds.
#[derive(Debug, Default)]
pub struct Transactions {
    /// Each id's metadata.
    pub ids: HashMap<String, TransactionMetadata>,
}

/// The transaction coordinator.
pub struct TxnCoordinator {
    /// Settings.
    pub config: TxnConfig,
    /// The ids of every active (and, briefly, loading) partition. Only
    /// [`TxnCoordinator::finish_load`] makes a partition active, under this
    /// lock, together with installing its ids.
    txns: Mutex<Transactions>,
    /// Which `__transaction_state` partitions this broker coordinates, with
    /// the leader epoch (= coordinator epoch) each state belongs to.
    /// Changed synchronously by the metadata publisher.
    partitions: std::sync::Mutex<CoordinatorPartitions>,
}

impl TxnCoordinator {
    /// A coordinator that leads no partition until metadata says so.
    pub fn new(config: TxnConfig) -> Self {
        Self {
            config,
            txns: Mutex::new(Transactions::default()),
            partitions: std::sync::Mutex::new(CoordinatorPartitions::default()),
        }
    }

    fn partitions(&self) -> std::sync::MutexGuard<'_, CoordinatorPartitions> {
        self.partitions.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The `__transaction_state` partition of a transactional id.
    pub fn partition_for(&self, transactional_id: &str) -> i32 {
        records::partition_for(transactional_id, self.config.partitions)
    }

    /// The state of a partition (`None`: not led here).
    pub fn partition_state(&self, partition: i32) -> Option<PartitionState> {
        self.partitions().state(partition)
    }

    /// The coordinator epoch of an active partition, else the error its
    /// ids answer (NOT_COORDINATOR, COORDINATOR_LOAD_IN_PROGRESS).
    pub fn active_epoch(&self, partition: i32) -> Result<i32, i16> {
        self.partitions().active_epoch(partition)
    }

    /// Locks the transactional id table.
    pub async fn lock(&self) -> MutexGuard<'_, Transactions> {
        self.txns.lock().await
    }

    /// Follows `__transaction_state` leadership in a committed image
    /// (Kafka's `onElection`/`onResignation`): loads each partition this
    /// broker now leads in a new leader epoch and unloads each it no longer
    /// leads. Called by the metadata publisher after the image is applied
    /// to the replicas and before handlers see it; returns at once.
    pub fn on_metadata(state: &Arc<BrokerState>, image: &ClusterImage) {
        let leaders: Vec<(i32, i32, i32)> = image
            .topics
            .get(TRANSACTION_STATE_TOPIC)
            .map(|t| {
                t.partitions
                    .iter()
                    .enumerate()
                    .map(|(i, pi)| (i as i32, pi.leader, pi.leader_epoch))
                    .collect()
            })
            .unwrap_or_default();
        let transitions = state.txns.partitions().apply(state.node_id, leaders);
        for t in transitions {
            let st = state.clone();
            match t {
                Transition::Unload { partition } => {
                    tokio::spawn(async move { st.txns.unload(partition).await });
                }
                Transition::Load { partition, epoch } => {
                    tokio::spawn(async move { load_partition(st, partition, epoch).await });
                }
            }
        }
    }

    /// Drops the ids of a partition this broker stopped leading, unless it
    /// has been loaded again since.
    async fn unload(&self, partition: i32) {
        let mut txns = self.txns.lock().await;
        if matches!(
            self.partitions().state(partition),
            Some(PartitionState::Active { .. })
        ) {
            return;
        }
        let n = self.config.partitions;
        let before = txns.ids.len();
        txns.ids
            .retain(|id, _| records::partition_for(id, n) != partition);
        info!(
            partition,
            transactional_ids = before - txns.ids.len(),
            "unloaded {TRANSACTION_STATE_TOPIC} partition"
        );
    }

    /// Installs a loaded partition's ids and makes it active, unless the
    /// load is stale (the partition moved on meanwhile).
    async fn finish_load(
        &self,
        partition: i32,
        epoch: i32,
        loaded: HashMap<String, TransactionMetadata>,
    ) -> bool {
        let mut txns = self.txns.lock().await;
        if !self.partitions().loaded(partition, epoch) {
            return false;
        }
        let n = self.config.partitions;
        txns.ids
            .retain(|id, _| records::partition_for(id, n) != partition);
        txns.ids.extend(loaded);
        true
    }

    /// Creates `__transaction_state` if it does not exist yet, with Kafka's
    /// partition count, replication factor and topic configs.
    pub async fn ensure_state_topic(&self, state: &BrokerState) -> Result<(), ApiError> {
        if state.image().topics.contains_key(TRANSACTION_STATE_TOPIC) {
            return Ok(());
        }
        let topic = NewTopic {
            name: TRANSACTION_STATE_TOPIC.to_string(),
            num_partitions: self.config.partitions,
            // As for `__consumer_offsets`: never capped at the brokers
            // registered; with too few, FindCoordinator answers
            // COORDINATOR_NOT_AVAILABLE and a later one tries again.
            replication_factor: self.config.replication_factor,
            assignments: vec![],
            configs: self.config.topic_configs(),
        };
        create_internal_topic(state, topic).await
    }

    /// Checks that this broker coordinates `transactional_id` and has
    /// loaded its partition; returns the coordinator epoch.
    pub fn check_coordinator(
        &self,
        state: &BrokerState,
        transactional_id: &str,
    ) -> Result<i32, i16> {
        let p = self.partition_for(transactional_id);
        let code = match self.active_epoch(p) {
            Ok(epoch) => return Ok(epoch),
            Err(code) => code,
        };
        if code != ResponseError::NotCoordinator.code() {
            return Err(code);
        }
        let image = state.image();
        let Some(t) = image.topics.get(TRANSACTION_STATE_TOPIC) else {
            return Err(ResponseError::CoordinatorNotAvailable.code());
        };
        match t.partitions.get(p as usize) {
            // Led here by an image the publisher has not handed over yet.
            Some(pi) if pi.leader == state.node_id => {
                Err(ResponseError::CoordinatorLoadInProgress.code())
            }
            Some(_) => Err(ResponseError::NotCoordinator.code()),
            None => Err(ResponseError::CoordinatorNotAvailable.code()),
        }
    }
}

/// Loads partition `p`'s transactional ids for leader epoch `epoch` on the
/// blocking pool and installs them unless the partition moved on meanwhile.
async fn load_partition(state: Arc<BrokerState>, p: i32, epoch: i32) {
    let started = Instant::now();
    let Some(part) = state.replicas.get(TRANSACTION_STATE_TOPIC, p) else {
        error!(
            partition = p,
            epoch, "{TRANSACTION_STATE_TOPIC} partition to load is not hosted"
        );
        return;
    };
    let loaded = tokio::task::spawn_blocking(move || super::loader::load_partition(&part)).await;
    let (replay, count) = match loaded {
        Ok(l) => l,
        Err(e) => {
            error!(partition = p, epoch, error = %e, "loading {TRANSACTION_STATE_TOPIC} failed");
            return;
        }
    };
    let pending: Vec<super::end_txn::Completion> = replay
        .pending_completion()
        .into_iter()
        .map(|m| super::end_txn::Completion {
            transactional_id: m.transactional_id.clone(),
            job: super::markers::MarkerJob {
                producer_id: m.producer_id,
                producer_epoch: m.producer_epoch,
                commit: m.state == super::TransactionState::PrepareCommit,
                coordinator_epoch: epoch,
            },
            partitions: m.partitions.clone(),
        })
        .collect();
    let n = replay.transactions.len();
    if state.txns.finish_load(p, epoch, replay.transactions).await {
        let pending_len = pending.len();
        // Transactions cut short in PrepareCommit/PrepareAbort: send their
        // markers again and write their completion (Kafka's
        // `onTransactionStateLoaded` resend).
        for done in pending {
            tokio::spawn(super::end_txn::complete(state.clone(), done));
        }
        let pending = pending_len;
        info!(
            partition = p,
            epoch,
            records = count,
            transactional_ids = n,
            pending_completion = pending,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "loaded {TRANSACTION_STATE_TOPIC} partition"
        );
    } else {
        info!(
            partition = p,
            epoch, "discarded a stale load of {TRANSACTION_STATE_TOPIC}"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_configs_are_kafkas() {
        let c = TxnConfig {
            partitions: 50,
            replication_factor: 3,
            min_isr: 2,
            segment_bytes: 104_857_600,
            max_timeout_ms: 900_000,
            id_expiration_ms: 604_800_000,
            write_timeout: Duration::from_secs(30),
        };
        let t = c.topic_configs();
        assert_eq!(t["cleanup.policy"], "compact");
        assert_eq!(t["compression.type"], "uncompressed");
        assert_eq!(t["unclean.leader.election.enable"], "false");
        assert_eq!(t["min.insync.replicas"], "2");
        assert_eq!(t["segment.bytes"], "104857600");
    }
}
