//! Transactions (issue 14), foundations: the `__transaction_state` record
//! codecs and the transaction state machine, in Kafka's formats and with
//! Kafka's rules. No coordinator serves them yet: the broker still refuses
//! transactional clients (see README "Transactions").

pub mod decisions;
pub mod loader;
pub mod marker;
pub mod marker_plan;
pub mod records;
pub mod state;

pub use state::{TransactionMetadata, TransactionState, TxnStateError, TxnTransit};
