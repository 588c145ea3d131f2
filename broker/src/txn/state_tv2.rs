//! The transaction state machine's transaction.version 2 (KIP-890 part 2)
//! transition that `state.rs` does not have: the abort of a transaction to
//! which nothing was added.

use super::state::{TransactionMetadata, TransactionState, TxnStateError, TxnTransit};

impl TransactionMetadata {
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
