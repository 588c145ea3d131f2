//! The transaction state machine's transaction.version 2 (KIP-890 part 2)
//! transitions that `state.rs` does not have: adding partitions as a TV2
//! client, and the abort of a transaction to which nothing was added.

use super::state::{
    TransactionMetadata, TransactionState, TxnPartition, TxnStateError, TxnTransit, NO_PRODUCER_ID,
};
use TransactionState::*;

impl TransactionMetadata {
    /// [`Self::prepare_add_partitions`] by a client of
    /// `client_transaction_version` (2: Produce v12's and TxnOffsetCommit
    /// v5's implicit adds, AddPartitionsToTxn v5).
    pub fn prepare_add_partitions_as(
        &mut self,
        added: impl IntoIterator<Item = TxnPartition>,
        now_ms: i64,
        client_transaction_version: i16,
    ) -> Result<TxnTransit, TxnStateError> {
        let start = match self.state {
            Empty | CompleteAbort | CompleteCommit => now_ms,
            _ => self.start_timestamp_ms,
        };
        let mut partitions = self.partitions.clone();
        partitions.extend(added);
        self.prepare(
            Ongoing,
            self.producer_id,
            NO_PRODUCER_ID,
            self.producer_epoch,
            self.last_producer_epoch,
            self.txn_timeout_ms,
            partitions,
            start,
            now_ms,
            client_transaction_version,
        )
    }

    /// EndTxn v5's abort from `Empty`, `CompleteCommit` or `CompleteAbort`
    /// (Kafka's `prepareAbortOrCommit` with `noPartitionAdded`): bumps the
    /// epoch like any TV2 end, with the start time set to now.
    pub fn prepare_empty_abort(
        &mut self,
        client_transaction_version: i16,
        next_producer_id: i64,
        now_ms: i64,
    ) -> Result<TxnTransit, TxnStateError> {
        let bumped = self
            .producer_epoch
            .checked_add(1)
            .ok_or(TxnStateError::EpochExhausted(self.producer_id))?;
        self.prepare(
            TransactionState::PrepareAbort,
            self.producer_id,
            next_producer_id,
            bumped,
            self.producer_epoch,
            self.txn_timeout_ms,
            self.partitions.clone(),
            now_ms,
            now_ms,
            client_transaction_version,
        )
    }
}
