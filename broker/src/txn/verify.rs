//! KIP-890 part 1, transaction partition verification: before a leader
//! appends the first transactional batch of a producer's transaction to a
//! partition, it asks the transaction coordinator whether the partition is
//! in that transaction (AddPartitionsToTxn v4+ with VerifyOnly, one request
//! per Produce request for all its partitions), and refuses the write if
//! not, so no write outside a transaction can leave a partition's last
//! stable offset stuck (a "hanging transaction").
//!
//! Coordinator side: [`TxnCoordinator::verify_partitions`] (Kafka's
//! `TransactionCoordinator.handleVerifyPartitionsInTransaction`). Leader
//! side: [`verify_for_produce`] (Kafka's `AddPartitionsToTxnManager`) and
//! [`produce_error`] (the error mapping of `ReplicaManager.handleProduceAppend`).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::add_partitions_to_txn_request::{
    AddPartitionsToTxnTopic, AddPartitionsToTxnTransaction,
};
use kafka_protocol::messages::{
    AddPartitionsToTxnRequest, AddPartitionsToTxnResponse, ApiKey, ProducerId, TopicName,
    TransactionalId,
};
use kafka_protocol::protocol::StrBytes;
use tracing::{debug, warn};

use super::coordinator::TxnCoordinator;
use super::loader::TRANSACTION_STATE_TOPIC;
use super::state::{TransactionMetadata, TransactionState, TxnPartition};
use crate::broker::BrokerState;
use crate::error::ApiError;

/// The AddPartitionsToTxn version a leader verifies with (the broker form).
const VERIFY_VERSION: i16 = 4;
/// The version a leader adds with for Produce v12+ (transaction.version 2).
const ADD_VERSION: i16 = 5;
/// Produce v12+'s add is retried while the coordinator answers
/// CONCURRENT_TRANSACTIONS (the previous transaction's markers), every
/// `add.partitions.to.txn.retry.backoff.ms` for up to
/// `add.partitions.to.txn.retry.backoff.max.ms` (Kafka's defaults).
const ADD_RETRY_BACKOFF: Duration = Duration::from_millis(20);
const ADD_RETRY_MAX: Duration = Duration::from_millis(100);

/// What a leader asks the coordinator for a Produce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    /// Produce v0–v11: is the partition in the running transaction?
    Verify,
    /// Produce v12+ (transaction.version 2): add it to the transaction.
    Add,
}

impl Check {
    /// What a Produce of `version` asks.
    pub fn for_produce(version: i16) -> Self {
        if version >= 12 {
            Self::Add
        } else {
            Self::Verify
        }
    }
}
/// How long a leader waits for the coordinator's answer.
const VERIFY_TIMEOUT: Duration = Duration::from_secs(30);

/// Whether `transaction.partition.verification.enable` (default true).
pub fn enabled(state: &BrokerState) -> bool {
    state
        .config
        .get_bool("transaction.partition.verification.enable", true)
}

/// The coordinator's answer for one transaction, from its metadata (pure;
/// Kafka's `handleVerifyPartitionsInTransaction`): one error for all
/// partitions, or per partition NONE (in the transaction) or
/// TRANSACTION_ABORTABLE (not in it). Pending transitions are not looked
/// at: the append's guard is the final check.
pub fn decide_verify(
    meta: Option<&TransactionMetadata>,
    producer_id: i64,
    producer_epoch: i16,
    partitions: &BTreeSet<TxnPartition>,
) -> Result<BTreeMap<TxnPartition, i16>, ResponseError> {
    let meta = meta.ok_or(ResponseError::InvalidProducerIdMapping)?;
    if meta.producer_id != producer_id {
        return Err(ResponseError::InvalidProducerIdMapping);
    }
    if meta.producer_epoch != producer_epoch {
        return Err(ResponseError::ProducerFenced);
    }
    if matches!(
        meta.state,
        TransactionState::PrepareCommit | TransactionState::PrepareAbort
    ) {
        return Err(ResponseError::ConcurrentTransactions);
    }
    Ok(partitions
        .iter()
        .map(|tp| {
            let code = if meta.partitions.contains(tp) {
                0
            } else {
                ResponseError::TransactionAbortable.code()
            };
            (tp.clone(), code)
        })
        .collect())
}

impl TxnCoordinator {
    /// AddPartitionsToTxn v4+ with VerifyOnly for one transaction: each
    /// partition's code, or the one code they all answer.
    pub async fn verify_partitions(
        &self,
        state: &BrokerState,
        tid: &str,
        producer_id: i64,
        producer_epoch: i16,
        partitions: &BTreeSet<TxnPartition>,
    ) -> Result<BTreeMap<TxnPartition, i16>, i16> {
        if tid.is_empty() {
            return Err(ResponseError::InvalidRequest.code());
        }
        self.check_coordinator(state, tid)?;
        let txns = self.lock().await;
        decide_verify(txns.ids.get(tid), producer_id, producer_epoch, partitions)
            .map_err(|e| e.code())
    }
}

/// Every partition of `partitions` answering `code`.
fn all(partitions: &BTreeSet<TxnPartition>, code: i16) -> BTreeMap<TxnPartition, i16> {
    partitions.iter().map(|tp| (tp.clone(), code)).collect()
}

/// The coordinator's codes, as a leader's `AddPartitionsToTxnManager`
/// passes them on to the append: PRODUCER_FENCED is INVALID_PRODUCER_EPOCH
/// (what producers handle here), TRANSACTION_ABORTABLE is INVALID_TXN_STATE
/// for Produce v10 and older (clients that predate it).
fn leader_code(code: i16, produce_version: i16) -> i16 {
    if code == ResponseError::ProducerFenced.code() {
        ResponseError::InvalidProducerEpoch.code()
    } else if code == ResponseError::TransactionAbortable.code() && produce_version <= 10 {
        ResponseError::InvalidTxnState.code()
    } else {
        code
    }
}

/// Asks `tid`'s coordinator whether `partitions` are in the running
/// transaction of `producer_id`/`producer_epoch` (or, for Produce v12+, to
/// add them): each partition's code (0: verified), as the append must
/// answer it before [`produce_error`].
pub async fn verify_for_produce(
    state: &Arc<BrokerState>,
    tid: &str,
    producer_id: i64,
    producer_epoch: i16,
    partitions: &BTreeSet<TxnPartition>,
    produce_version: i16,
) -> BTreeMap<TxnPartition, i16> {
    let check = Check::for_produce(produce_version);
    let started = tokio::time::Instant::now();
    loop {
        let codes =
            ask_coordinator(state, tid, producer_id, producer_epoch, partitions, check).await;
        let concurrent = codes
            .values()
            .any(|c| *c == ResponseError::ConcurrentTransactions.code());
        if check == Check::Add
            && concurrent
            && started.elapsed() + ADD_RETRY_BACKOFF < ADD_RETRY_MAX
        {
            tokio::time::sleep(ADD_RETRY_BACKOFF).await;
            continue;
        }
        return codes
            .into_iter()
            .map(|(tp, c)| (tp, leader_code(c, produce_version)))
            .collect();
    }
}

/// One round of [`verify_for_produce`]: the coordinator's codes.
async fn ask_coordinator(
    state: &Arc<BrokerState>,
    tid: &str,
    producer_id: i64,
    producer_epoch: i16,
    partitions: &BTreeSet<TxnPartition>,
    check: Check,
) -> BTreeMap<TxnPartition, i16> {
    let p = state.txns.partition_for(tid);
    let image = state.image();
    let leader = image
        .topics
        .get(TRANSACTION_STATE_TOPIC)
        .and_then(|t| t.partitions.get(p as usize))
        .map(|pi| pi.leader)
        .filter(|l| *l >= 0);
    let answer = match (leader, check) {
        (None, _) => Err(ResponseError::CoordinatorNotAvailable.code()),
        (Some(l), Check::Verify) if l == state.node_id => {
            state
                .txns
                .verify_partitions(state, tid, producer_id, producer_epoch, partitions)
                .await
        }
        (Some(l), Check::Add) if l == state.node_id => {
            if tid.is_empty() {
                Err(ResponseError::InvalidRequest.code())
            } else {
                state
                    .txns
                    .add_partitions(state, tid, producer_id, producer_epoch, partitions, 2)
                    .await
                    .map(|()| all(partitions, 0))
            }
        }
        (Some(l), _) => {
            ask_remote(
                state,
                l,
                tid,
                producer_id,
                producer_epoch,
                partitions,
                check,
            )
            .await
        }
    };
    match answer {
        Ok(codes) => codes,
        Err(code) => all(partitions, code),
    }
}

/// AddPartitionsToTxn to the coordinator on `broker`: v4 VerifyOnly, or v5
/// adding.
async fn ask_remote(
    state: &BrokerState,
    broker: i32,
    tid: &str,
    producer_id: i64,
    producer_epoch: i16,
    partitions: &BTreeSet<TxnPartition>,
    check: Check,
) -> Result<BTreeMap<TxnPartition, i16>, i16> {
    let network = ResponseError::NetworkException.code();
    let Some(addr) = crate::replication::fetcher::leader_address(state, broker) else {
        warn!(broker, "transaction coordinator has no known address");
        return Err(ResponseError::CoordinatorNotAvailable.code());
    };
    let mut topics: Vec<AddPartitionsToTxnTopic> = Vec::new();
    for (t, p) in partitions {
        match topics.last_mut() {
            Some(last) if last.name.as_str() == t.as_str() => last.partitions.push(*p),
            _ => topics.push(
                AddPartitionsToTxnTopic::default()
                    .with_name(TopicName(StrBytes::from_string(t.clone())))
                    .with_partitions(vec![*p]),
            ),
        }
    }
    let req = AddPartitionsToTxnRequest::default().with_transactions(vec![
        AddPartitionsToTxnTransaction::default()
            .with_transactional_id(TransactionalId(StrBytes::from_string(tid.to_string())))
            .with_producer_id(ProducerId(producer_id))
            .with_producer_epoch(producer_epoch)
            .with_verify_only(check == Check::Verify)
            .with_topics(topics),
    ]);
    let call = super::rpc::call::<_, AddPartitionsToTxnResponse>(
        &addr,
        ApiKey::AddPartitionsToTxn,
        if check == Check::Verify {
            VERIFY_VERSION
        } else {
            ADD_VERSION
        },
        "runnel-txn-verify",
        &req,
    );
    let resp = match tokio::time::timeout(VERIFY_TIMEOUT, call).await {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => {
            warn!(broker, error = %e, "AddPartitionsToTxn verification failed");
            return Err(network);
        }
        Err(_) => {
            warn!(broker, "AddPartitionsToTxn verification timed out");
            return Err(network);
        }
    };
    if resp.error_code != 0 {
        debug!(
            broker,
            code = resp.error_code,
            "AddPartitionsToTxn verification refused"
        );
        // Clients must not see CLUSTER_AUTHORIZATION_FAILED.
        return Err(
            if resp.error_code == ResponseError::ClusterAuthorizationFailed.code() {
                ResponseError::InvalidTxnState.code()
            } else {
                resp.error_code
            },
        );
    }
    let mut out = all(partitions, 0);
    for r in resp
        .results_by_transaction
        .iter()
        .filter(|r| r.transactional_id.as_str() == tid)
    {
        for t in &r.topic_results {
            for p in &t.results_by_partition {
                let tp = (t.name.as_str().to_string(), p.partition_index);
                if let Some(code) = out.get_mut(&tp) {
                    *code = p.partition_error_code;
                }
            }
        }
    }
    Ok(out)
}

/// What a Produce answers for a partition whose verification returned
/// `code` (Kafka's `ReplicaManager.handleProduceAppend`): `None` for 0.
/// Retriable coordinator errors become NOT_ENOUGH_REPLICAS, which older
/// clients retry without a metadata refresh.
pub fn produce_error(code: i16, produce_version: i16) -> Option<ApiError> {
    if code == 0 {
        return None;
    }
    let Some(e) = ResponseError::try_from_code(code) else {
        return Some(ApiError::code(ResponseError::UnknownServerError));
    };
    let underlying = match e {
        ResponseError::InvalidTxnState => {
            return Some(ApiError::new(
                e,
                "Partition was not added to the transaction",
            ))
        }
        ResponseError::NetworkException => "NETWORK_EXCEPTION",
        ResponseError::CoordinatorLoadInProgress => "COORDINATOR_LOAD_IN_PROGRESS",
        ResponseError::CoordinatorNotAvailable => "COORDINATOR_NOT_AVAILABLE",
        ResponseError::NotCoordinator => "NOT_COORDINATOR",
        // transaction.version 2 clients (Produce v12+) retry it as is.
        ResponseError::ConcurrentTransactions if produce_version <= 11 => "CONCURRENT_TRANSACTIONS",
        _ => return Some(ApiError::code(e)),
    };
    Some(ApiError::new(
        ResponseError::NotEnoughReplicas,
        format!(
            "Unable to verify the partition has been added to the transaction. Underlying error: {underlying}"
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tps(list: &[(&str, i32)]) -> BTreeSet<TxnPartition> {
        list.iter().map(|(t, p)| ((*t).to_owned(), *p)).collect()
    }

    fn ongoing() -> TransactionMetadata {
        let mut m = TransactionMetadata::new("tx", 100, 60_000, 0);
        m.producer_epoch = 3;
        m.state = TransactionState::Ongoing;
        m.partitions = tps(&[("a", 0)]);
        m
    }

    #[test]
    fn only_partitions_in_the_running_transaction_are_verified() {
        let m = ongoing();
        let r = decide_verify(Some(&m), 100, 3, &tps(&[("a", 0), ("a", 1)])).expect("verify");
        assert_eq!(r[&("a".to_string(), 0)], 0);
        assert_eq!(
            r[&("a".to_string(), 1)],
            ResponseError::TransactionAbortable.code()
        );
    }

    #[test]
    fn a_wrong_producer_or_epoch_or_an_ending_transaction_fails_all() {
        let mut m = ongoing();
        let p = tps(&[("a", 0)]);
        assert_eq!(
            decide_verify(None, 100, 3, &p),
            Err(ResponseError::InvalidProducerIdMapping)
        );
        assert_eq!(
            decide_verify(Some(&m), 101, 3, &p),
            Err(ResponseError::InvalidProducerIdMapping)
        );
        assert_eq!(
            decide_verify(Some(&m), 100, 2, &p),
            Err(ResponseError::ProducerFenced)
        );
        m.state = TransactionState::PrepareCommit;
        assert_eq!(
            decide_verify(Some(&m), 100, 3, &p),
            Err(ResponseError::ConcurrentTransactions)
        );
    }

    #[test]
    fn leader_and_produce_mapping_is_kafkas() {
        let abortable = ResponseError::TransactionAbortable.code();
        assert_eq!(
            leader_code(abortable, 9),
            ResponseError::InvalidTxnState.code()
        );
        assert_eq!(leader_code(abortable, 11), abortable);
        assert_eq!(
            leader_code(ResponseError::ProducerFenced.code(), 11),
            ResponseError::InvalidProducerEpoch.code()
        );
        let e = produce_error(ResponseError::NotCoordinator.code(), 9).expect("error");
        assert_eq!(e.code, ResponseError::NotEnoughReplicas.code());
        let e = produce_error(ResponseError::InvalidTxnState.code(), 9).expect("error");
        assert_eq!(e.code, ResponseError::InvalidTxnState.code());
        assert!(produce_error(0, 9).is_none());
        let concurrent = ResponseError::ConcurrentTransactions.code();
        assert_eq!(
            produce_error(concurrent, 11).expect("error").code,
            ResponseError::NotEnoughReplicas.code()
        );
        assert_eq!(
            produce_error(concurrent, 12).expect("error").code,
            concurrent
        );
    }
}
