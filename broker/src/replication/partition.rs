//! A partition replica hosted on this broker: its log, leader epoch, high
//! watermark and producer state. In a cluster of one this broker leads every
//! partition and is its whole ISR, so the high watermark follows the log end.

use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::Mutex;

use tokio::sync::watch;
use uuid::Uuid;

use super::producer_state::{ProducerStateManager, SequenceCheck};
use crate::config::LogConfig;
use crate::error::ApiError;
use crate::log::{AppendInfo, Log, LogError, ReadSlice, TopicPartition};
use crate::protocol::batch::split_batches;
use kafka_protocol::error::ResponseError;

struct Inner {
    log: Log,
    producers: ProducerStateManager,
    /// Set once committed metadata removed this replica: no more appends or
    /// reads (the directory may already be renamed for deletion).
    retired: bool,
}

fn not_hosted() -> ApiError {
    ApiError::new(
        ResponseError::UnknownTopicOrPartition,
        "This server does not host this topic-partition.",
    )
}

/// One hosted partition.
pub struct Partition {
    /// Topic and index.
    pub tp: TopicPartition,
    /// The topic id.
    pub topic_id: Uuid,
    inner: Mutex<Inner>,
    leader_epoch: AtomicI32,
    hw: watch::Sender<i64>,
}

/// What a fetch read returned.
#[derive(Debug, Clone)]
pub struct ReadResult {
    /// Bytes to read, if any.
    pub slice: Option<ReadSlice>,
    /// High watermark.
    pub high_watermark: i64,
    /// Log start offset.
    pub log_start_offset: i64,
}

fn log_error(e: LogError) -> ApiError {
    match &e {
        LogError::Io(_) => {
            tracing::error!(error = %e, "log I/O error");
            ApiError::new(ResponseError::KafkaStorageError, e.to_string())
        }
        _ => ApiError {
            code: e.code(),
            message: Some(e.to_string()),
        },
    }
}

impl Partition {
    /// Wraps an opened log, rebuilding producer state from its batches.
    pub fn new(
        tp: TopicPartition,
        topic_id: Uuid,
        log: Log,
        leader_epoch: i32,
    ) -> Result<Self, LogError> {
        let mut producers = ProducerStateManager::default();
        log.for_each_header(&mut |h| producers.record(h))?;
        let end = log.end_offset();
        let (hw, _) = watch::channel(end);
        Ok(Self {
            tp,
            topic_id,
            inner: Mutex::new(Inner {
                log,
                producers,
                retired: false,
            }),
            leader_epoch: AtomicI32::new(leader_epoch),
            hw,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave the log half-updated
        // in memory in a way later appends rely on, so recover the guard.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The current leader epoch.
    pub fn leader_epoch(&self) -> i32 {
        self.leader_epoch.load(Ordering::Acquire)
    }

    /// Updates the leader epoch from metadata.
    pub fn set_leader_epoch(&self, epoch: i32) {
        self.leader_epoch.store(epoch, Ordering::Release);
    }

    /// Applies a new effective log config.
    pub fn set_config(&self, config: LogConfig) {
        let mut g = self.lock();
        if *g.log.config() != config {
            g.log.set_config(config);
        }
    }

    /// Appends a produce request's records as leader.
    pub fn append(&self, records: &mut [u8]) -> Result<AppendInfo, ApiError> {
        let mut g = self.lock();
        if g.retired {
            return Err(not_hosted());
        }
        let batches = split_batches(records).map_err(|e| log_error(e.into()))?;
        if batches.len() > 1 && batches.iter().any(|(h, _)| h.producer_id >= 0) {
            return Err(ApiError::new(
                ResponseError::InvalidRecord,
                "idempotent produce requests must carry exactly one record batch per partition",
            ));
        }
        if let Some((h, _)) = batches.first() {
            match g.producers.check(h) {
                SequenceCheck::Append => {}
                SequenceCheck::Duplicate(base) => {
                    return Ok(AppendInfo {
                        base_offset: base,
                        last_offset: base + i64::from(h.last_offset_delta),
                        log_append_time: -1,
                        log_start_offset: g.log.start_offset(),
                    })
                }
                SequenceCheck::StaleEpoch => {
                    return Err(ApiError::new(
                        ResponseError::InvalidProducerEpoch,
                        format!(
                            "producer {} epoch {} is fenced by a newer epoch",
                            h.producer_id, h.producer_epoch
                        ),
                    ))
                }
                SequenceCheck::OutOfOrder { expected, got } => {
                    return Err(ApiError::new(
                        ResponseError::OutOfOrderSequenceNumber,
                        format!(
                            "producer {} sent sequence {got}, expected {expected}",
                            h.producer_id
                        ),
                    ))
                }
            }
        }
        let epoch = self.leader_epoch();
        let info = g
            .log
            .append_batches(records, &batches, epoch)
            .map_err(log_error)?;
        if let Some((h, _)) = batches.first() {
            let mut stamped = *h;
            stamped.base_offset = info.base_offset;
            g.producers.record(&stamped);
        }
        let end = g.log.end_offset();
        drop(g);
        self.hw.send_replace(end);
        Ok(info)
    }

    /// Plans a read from `offset` up to the high watermark.
    pub fn read(
        &self,
        offset: i64,
        max_bytes: usize,
        min_one: bool,
    ) -> Result<ReadResult, ApiError> {
        let g = self.lock();
        if g.retired {
            return Err(not_hosted());
        }
        let hw = *self.hw.borrow();
        let slice = g
            .log
            .read(offset, max_bytes, min_one, hw)
            .map_err(log_error)?;
        Ok(ReadResult {
            slice,
            high_watermark: hw,
            log_start_offset: g.log.start_offset(),
        })
    }

    /// The high watermark.
    pub fn high_watermark(&self) -> i64 {
        *self.hw.borrow()
    }

    /// A receiver that changes whenever the high watermark moves.
    pub fn subscribe(&self) -> watch::Receiver<i64> {
        self.hw.subscribe()
    }

    /// Runs `f` with the log locked.
    pub fn with_log<R>(&self, f: impl FnOnce(&mut Log) -> R) -> R {
        let mut g = self.lock();
        f(&mut g.log)
    }

    /// Flushes the log (on shutdown).
    pub fn close(&self) -> Result<(), LogError> {
        let mut g = self.lock();
        if g.retired {
            return Ok(());
        }
        g.log.flush()
    }

    /// Stops this replica for good because committed metadata removed it:
    /// with the log locked, marks it retired (later appends and reads get
    /// UNKNOWN_TOPIC_OR_PARTITION) and runs `then` (which renames the
    /// directory), so no append or read races the rename.
    pub fn retire<R>(&self, then: impl FnOnce() -> R) -> R {
        let mut g = self.lock();
        g.retired = true;
        then()
    }

    /// Whether [`Self::retire`] ran.
    pub fn is_retired(&self) -> bool {
        self.lock().retired
    }
}
