//! The transaction coordinator's request paths (issue 14, step A): what
//! InitProducerId with a transactional id and AddPartitionsToTxn do on the
//! coordinator, each as Kafka's `TransactionCoordinator.handle*`: decide
//! with [`super::decisions`] (marking the id pending), append the transit's
//! `TransactionLogValue` to the id's `__transaction_state` partition in the
//! coordinator epoch, wait until the in-sync replicas have it (acks=all, as
//! group commits), then complete the transition (or drop it on failure).
//!
//! Not reachable from clients yet: the handlers call these only when
//! [`super::TRANSACTIONS_ENABLED`]. EndTxn (markers) is not wired.

use std::collections::BTreeSet;

use bytes::{Bytes, BytesMut};
use kafka_protocol::error::ResponseError;
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use tracing::{error, warn};

use super::coordinator::TxnCoordinator;
use super::decisions::{self, InitStep};
use super::loader::TRANSACTION_STATE_TOPIC;
use super::records;
use super::state::{TransactionMetadata, TxnPartition, TxnTransit};
use crate::broker::BrokerState;
use crate::clock::now_ms;

/// The `TransactionLogValue` version written: 0 while the finalized
/// `transaction.version` is 0, else 1 (flexible, with the client
/// transaction version and next producer id tagged; Kafka's
/// `TransactionVersion.transactionLogValueVersion`).
fn value_version(state: &BrokerState) -> i16 {
    let tv = state
        .image()
        .features
        .get(crate::metadata::features::TRANSACTION_VERSION)
        .copied()
        .unwrap_or(0);
    if tv > 0 {
        1
    } else {
        0
    }
}

/// Kafka's mapping of a failed `__transaction_state` write to the error
/// the request answers (`TransactionStateManager.appendTransactionToLog`).
fn write_error(code: i16) -> i16 {
    match ResponseError::try_from_code(code) {
        Some(
            ResponseError::UnknownTopicOrPartition
            | ResponseError::NotEnoughReplicas
            | ResponseError::NotEnoughReplicasAfterAppend
            | ResponseError::RequestTimedOut,
        ) => ResponseError::CoordinatorNotAvailable.code(),
        Some(ResponseError::NotLeaderOrFollower | ResponseError::KafkaStorageError) => {
            ResponseError::NotCoordinator.code()
        }
        Some(ResponseError::NotCoordinator | ResponseError::CoordinatorLoadInProgress) => code,
        _ => ResponseError::UnknownServerError.code(),
    }
}

/// One record batch holding `key` = `value` (not transactional, no
/// producer id), as the coordinator appends to its log.
fn record_batch(key: Bytes, value: Option<Bytes>) -> Result<Vec<u8>, i16> {
    let record = Record {
        transactional: false,
        control: false,
        delete_horizon: false,
        partition_leader_epoch: -1,
        producer_id: -1,
        producer_epoch: -1,
        timestamp_type: TimestampType::Creation,
        offset: 0,
        sequence: -1,
        timestamp: now_ms(),
        key: Some(key),
        value,
        headers: Default::default(),
    };
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut buf,
        &[record],
        &RecordEncodeOptions {
            version: 2,
            compression: Compression::None,
        },
    )
    .map_err(|e| {
        error!(error = %e, "cannot encode a {TRANSACTION_STATE_TOPIC} record");
        ResponseError::UnknownServerError.code()
    })?;
    Ok(buf.to_vec())
}

impl TxnCoordinator {
    /// Writes `transit` for `tid` to its `__transaction_state` partition in
    /// coordinator epoch `epoch` and waits until the in-sync replicas have
    /// it. Call without holding the id table lock. The error is what the
    /// request answers.
    pub(super) async fn write_transit(
        &self,
        state: &BrokerState,
        tid: &str,
        epoch: i32,
        transit: &TxnTransit,
    ) -> Result<(), i16> {
        let key = records::encode_key(tid).map_err(|e| {
            warn!(transactional_id = tid, error = %e, "cannot encode a transaction log key");
            ResponseError::UnknownServerError.code()
        })?;
        let value =
            records::encode_value(&transit.to_log_value(), value_version(state)).map_err(|e| {
                warn!(transactional_id = tid, error = %e, "cannot encode a transaction log value");
                ResponseError::UnknownServerError.code()
            })?;
        self.append_record(state, tid, epoch, key, Some(value))
            .await
    }

    /// Writes the tombstone of an expired transactional id (see
    /// `txn::expiry`).
    pub(super) async fn write_tombstone(
        &self,
        state: &BrokerState,
        tid: &str,
        epoch: i32,
    ) -> Result<(), i16> {
        let key = records::encode_key(tid).map_err(|e| {
            warn!(transactional_id = tid, error = %e, "cannot encode a transaction log key");
            ResponseError::UnknownServerError.code()
        })?;
        self.append_record(state, tid, epoch, key, None).await
    }

    /// Appends one record to `tid`'s `__transaction_state` partition as its
    /// leader in coordinator epoch `epoch` and waits until it is replicated.
    async fn append_record(
        &self,
        state: &BrokerState,
        tid: &str,
        epoch: i32,
        key: Bytes,
        value: Option<Bytes>,
    ) -> Result<(), i16> {
        let p = self.partition_for(tid);
        let mut batch = record_batch(key, value)?;
        let Some(part) = state.replicas.get(TRANSACTION_STATE_TOPIC, p) else {
            return Err(ResponseError::NotCoordinator.code());
        };
        let info = part.append_in_epoch(&mut batch, epoch).map_err(|e| {
            warn!(transactional_id = tid, error = %e, "cannot append to {TRANSACTION_STATE_TOPIC}");
            write_error(e.code)
        })?;
        part.wait_replicated(info.last_offset + 1, epoch, 0, self.config.write_timeout)
            .await
            .map_err(|e| {
                warn!(transactional_id = tid, error = %e, "transaction log write not replicated");
                write_error(e.code)
            })
    }

    /// After a write: completes `transit` on `tid`'s metadata if the
    /// partition is still active in `epoch`, else NOT_COORDINATOR (the
    /// metadata was unloaded or reloaded meanwhile). On `written` = Err,
    /// drops the pending transition and answers that error.
    pub(super) async fn finish_transit(
        &self,
        tid: &str,
        epoch: i32,
        transit: &TxnTransit,
        written: Result<(), i16>,
    ) -> Result<(), i16> {
        let mut txns = self.lock().await;
        let current = self.active_epoch(self.partition_for(tid));
        let Some(meta) = txns.ids.get_mut(tid) else {
            return Err(ResponseError::NotCoordinator.code());
        };
        if current != Ok(epoch) {
            meta.abort_pending();
            return Err(ResponseError::NotCoordinator.code());
        }
        if let Err(code) = written {
            meta.abort_pending();
            return Err(code);
        }
        meta.complete_transition(transit).map_err(|e| {
            error!(transactional_id = tid, error = %e, "cannot complete a transaction state transition");
            meta.abort_pending();
            ResponseError::UnknownServerError.code()
        })
    }

    /// InitProducerId with a transactional id: the producer id and epoch
    /// to answer, or the error code.
    pub async fn init_producer_id(
        &self,
        state: &std::sync::Arc<BrokerState>,
        tid: &str,
        txn_timeout_ms: i32,
        expected: Option<(i64, i16)>,
    ) -> Result<(i64, i16), i16> {
        decisions::check_init_request(tid, txn_timeout_ms, self.config.max_timeout_ms)
            .map_err(|e| e.code())?;
        let epoch = self.check_coordinator(state, tid)?;
        // A producer id for a new id, or for one whose epochs are used up,
        // is allocated before the table is locked.
        let needs_pid = {
            let txns = self.lock().await;
            txns.ids
                .get(tid)
                .is_none_or(TransactionMetadata::is_producer_epoch_exhausted)
        };
        let fresh_pid = if needs_pid {
            Some(state.allocate_producer_id().await.map_err(|e| e.code)?)
        } else {
            None
        };
        let now = now_ms();
        let step = {
            let mut txns = self.lock().await;
            if self.active_epoch(self.partition_for(tid)) != Ok(epoch) {
                return Err(ResponseError::NotCoordinator.code());
            }
            let meta = match txns.ids.entry(tid.to_string()) {
                std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
                std::collections::hash_map::Entry::Vacant(e) => {
                    let Some(pid) = fresh_pid else {
                        return Err(ResponseError::ConcurrentTransactions.code());
                    };
                    e.insert(TransactionMetadata::new(tid, pid, txn_timeout_ms, now))
                }
            };
            decisions::decide_init_producer_id(meta, txn_timeout_ms, expected, now, || {
                fresh_pid.ok_or(ResponseError::ConcurrentTransactions)
            })
            .map_err(|e| e.code())?
        };
        match step {
            InitStep::Write(transit) => {
                let written = self.write_transit(state, tid, epoch, &transit).await;
                self.finish_transit(tid, epoch, &transit, written).await?;
                Ok((transit.producer_id, transit.producer_epoch))
            }
            InitStep::FenceAndAbort(fence) => {
                // Kafka's handleInitProducerId: abort the running
                // transaction with the fenced epoch, then let the client
                // retry (CONCURRENT_TRANSACTIONS) until it is complete.
                super::end_txn::abort_fenced(state, tid, fence.producer_id, fence.producer_epoch)
                    .await?;
                Err(ResponseError::ConcurrentTransactions.code())
            }
        }
    }

    /// AddPartitionsToTxn for one transactional id, by a client of
    /// `client_transaction_version` (2: AddPartitionsToTxn v5, the implicit
    /// adds of Produce v12 and TxnOffsetCommit v5): NONE for every
    /// partition, or the one error code they all answer.
    pub async fn add_partitions(
        &self,
        state: &BrokerState,
        tid: &str,
        producer_id: i64,
        producer_epoch: i16,
        partitions: &BTreeSet<TxnPartition>,
        client_transaction_version: i16,
    ) -> Result<(), i16> {
        let epoch = self.check_coordinator(state, tid)?;
        let transit = {
            let mut txns = self.lock().await;
            if self.active_epoch(self.partition_for(tid)) != Ok(epoch) {
                return Err(ResponseError::NotCoordinator.code());
            }
            match decisions::decide_add_partitions(
                txns.ids.get_mut(tid),
                producer_id,
                producer_epoch,
                partitions,
                now_ms(),
                client_transaction_version,
            )
            .map_err(|e| e.code())?
            {
                None => return Ok(()),
                Some(t) => t,
            }
        };
        let written = self.write_transit(state, tid, epoch, &transit).await;
        self.finish_transit(tid, epoch, &transit, written).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_errors_map_as_kafkas_append_transaction_to_log() {
        let c = |e: ResponseError| write_error(e.code());
        assert_eq!(
            c(ResponseError::NotEnoughReplicas),
            ResponseError::CoordinatorNotAvailable.code()
        );
        assert_eq!(
            c(ResponseError::RequestTimedOut),
            ResponseError::CoordinatorNotAvailable.code()
        );
        assert_eq!(
            c(ResponseError::NotLeaderOrFollower),
            ResponseError::NotCoordinator.code()
        );
        assert_eq!(
            c(ResponseError::MessageTooLarge),
            ResponseError::UnknownServerError.code()
        );
    }

    #[test]
    fn a_record_batch_decodes_back_to_its_key_and_value() {
        let key = records::encode_key("t").expect("key");
        let mut b =
            Bytes::from(record_batch(key.clone(), Some(Bytes::from_static(b"v"))).expect("batch"));
        let set = kafka_protocol::records::RecordBatchDecoder::decode(&mut b).expect("decode");
        assert_eq!(set.records.len(), 1);
        assert_eq!(set.records[0].key.as_ref(), Some(&key));
        assert_eq!(set.records[0].value.as_deref(), Some(&b"v"[..]));
    }
}
