//! Replication: hosted partition replicas, their high watermarks and
//! producer state. A cluster of one leads every partition and is its ISR.

mod partition;
mod producer_state;
mod replica_manager;

pub use partition::{Partition, ReadResult};
pub use replica_manager::ReplicaManager;
