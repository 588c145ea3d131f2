//! The log layer: segments, sparse indexes, recovery, retention.
//!
//! The on-disk layout is Kafka's: one `topic-partition` directory per
//! partition, segments named by their 20-digit base offset with `.log`,
//! `.index`, `.timeindex` and `.txnindex` files, producer state
//! `.snapshot` files, and a `leader-epoch-checkpoint`.

pub mod checkpoint;
pub mod cleaner;
pub mod epoch_cache;
mod index;
mod manager;
mod partition_log;
pub mod producer_snapshot;
mod segment;
pub mod txn_index;

pub use cleaner::{CleanOutcome, CleanPlan, CleanStats, CleanerSettings};
pub use manager::{
    new_kafka_uuid, parse_kafka_uuid, topic_id_string, LogManager, TopicPartition, DELETE_SUFFIX,
    STRAY_SUFFIX,
};
pub use partition_log::{
    scan_replicated, AppendInfo, Cleanable, FlushJob, Log, PendingAppend, ProduceChecks, ReadPlan,
    ReadSlice,
};

use crate::protocol::batch::BatchError;

/// Log errors.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// Disk I/O failed (KAFKA_STORAGE_ERROR).
    #[error("log I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// The batch was rejected.
    #[error(transparent)]
    Batch(#[from] BatchError),
    /// The requested offset is outside the log (OFFSET_OUT_OF_RANGE).
    #[error("offset {offset} is out of range [{start}, {end}]")]
    OffsetOutOfRange {
        /// Requested.
        offset: i64,
        /// Log start offset.
        start: i64,
        /// Log end offset.
        end: i64,
    },
}

impl LogError {
    /// The Kafka error code.
    pub fn code(&self) -> i16 {
        match self {
            LogError::Io(_) => 56,
            LogError::Batch(b) => b.code(),
            LogError::OffsetOutOfRange { .. } => 1,
        }
    }
}
