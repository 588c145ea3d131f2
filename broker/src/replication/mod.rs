//! Replication: hosted partition replicas with their roles (from committed
//! metadata), high watermarks and producer state; the fetchers that keep
//! followers in step with their leaders; and the ISR requests leaders send
//! the controller.

pub mod fetcher;
pub mod isr;
pub mod leader_state;
pub mod log_cleaner;
mod partition;
mod producer_state;
pub mod quota;
mod replica_manager;
pub mod txn_tracker;

pub use partition::{
    CommittedRead, FetchPosition, FollowerRead, HwState, Partition, PartitionTxns, ReadResult,
    Role, TxnVerification,
};
pub use replica_manager::ReplicaManager;
