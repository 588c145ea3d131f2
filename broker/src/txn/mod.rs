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
pub use state::{TransactionMetadata, TransactionState, TxnStateError, TxnTransit};
