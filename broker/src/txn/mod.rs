//! Transactions (issue 14), foundations: the `__transaction_state` record
//! codecs, the transaction state machine, the coordinator's per-request
//! decisions, the loader, marker batches and marker routing, in Kafka's
//! formats and with Kafka's rules. No coordinator serves them yet: the
//! broker still refuses transactional clients (see README "Transactions").
//!
//! # How the pieces are meant to fit (not built yet)
//!
//! * Coordinator ownership: `__transaction_state` partition
//!   [`records::partition_for`]`(tid, transaction.state.log.num.partitions)`;
//!   which partitions this broker loads or serves, by leader epoch (= the
//!   coordinator epoch markers carry), is exactly what
//!   `group::partitions::CoordinatorPartitions` already decides for
//!   `__consumer_offsets`, and [`loader::load_partition`] replays one.
//! * A request: [`decisions`] picks the transit (marking the id pending),
//!   the coordinator appends `records::encode_key` / the transit's
//!   [`TxnTransit::to_log_value`] with acks=all, waits for the high
//!   watermark, then [`TransactionMetadata::complete_transition`] (or
//!   `abort_pending` on failure).
//! * EndTxn after PrepareCommit/PrepareAbort: [`marker_plan::plan_markers`]
//!   groups the partitions by leader; one sender queue per destination
//!   broker (the local broker through the replica manager), retries per
//!   [`marker_plan::marker_outcome`]; when none are left, write
//!   CompleteCommit/CompleteAbort ([`TransactionMetadata::prepare_complete`]).
//! * Partition side: [`marker::marker_batch`] appended on the leader;
//!   `replication::txn_tracker::TxnTracker` fed with every appended batch (on
//!   leaders and followers alike, and on log recovery) gives the LSO and the
//!   completed transactions, aborted ones going to `log::txn_index`.

pub mod coordinator;
pub mod decisions;
pub mod decisions_tv2;
pub mod end_txn;
pub mod expiry;
pub mod loader;
pub mod marker;
pub mod marker_plan;
pub mod markers;
pub mod records;
mod requests;
pub mod rpc;
pub mod state;
mod state_tv2;
pub mod verify;

pub use coordinator::{TxnConfig, TxnCoordinator, TRANSACTIONS_ENABLED};

/// The coordinator's periodic tasks' clock: every `key` milliseconds of the
/// broker config (`default` when unset, within 10 ms..1 h) until shutdown.
pub(crate) struct Every {
    interval: std::time::Duration,
    shutdown: tokio::sync::watch::Receiver<bool>,
}

impl Every {
    /// The period from `key`.
    pub(crate) fn new(state: &crate::broker::BrokerState, key: &str, default: i64) -> Self {
        let ms = state.config.get_i64(key, default).clamp(10, 3_600_000) as u64;
        Self {
            interval: std::time::Duration::from_millis(ms),
            shutdown: state.shutdown.clone(),
        }
    }

    /// Waits one period; false once the broker shuts down.
    pub(crate) async fn tick(&mut self) -> bool {
        tokio::select! {
            _ = tokio::time::sleep(self.interval) => {}
            _ = self.shutdown.changed() => return false,
        }
        !*self.shutdown.borrow()
    }
}
pub use state::{TransactionMetadata, TransactionState, TxnStateError, TxnTransit};
