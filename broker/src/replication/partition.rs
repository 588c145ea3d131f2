//! A partition replica hosted on this broker: its log, its role (leader or
//! follower, set only from committed metadata), the high watermark and
//! producer state.
//!
//! As leader it appends produce requests, tracks its followers' progress
//! (from their fetches), advances the high watermark to what every ISR
//! member holds, and works out the ISR changes to ask the controller for.
//! As follower it appends what its leader sends, with the leader's offsets
//! and epochs, and truncates where its log diverged.

use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tokio::sync::watch;
use uuid::Uuid;

use super::leader_state::LeaderState;
use super::producer_state::{ProducerStateManager, SequenceCheck};
use crate::config::LogConfig;
use crate::error::ApiError;
use crate::log::{AppendInfo, FlushJob, Log, LogError, ReadPlan, TopicPartition};
use crate::metadata::PartitionImage;
use crate::protocol::batch::{split_batches, BatchError};
use kafka_protocol::error::ResponseError;

#[path = "partition_persist.rs"]
mod persist;
#[path = "partition_txn.rs"]
mod txn;
use txn::{marker_at, markers_in};
pub use txn::{CommittedRead, PartitionTxns, TxnVerification};

/// The replica's role, from the last committed metadata applied.
#[derive(Debug, Clone)]
pub enum Role {
    /// Leads, with its followers' state.
    Leader(LeaderState),
    /// Follows `leader` (-1: the partition has no leader).
    Follower {
        /// The leader's node id, or -1.
        leader: i32,
    },
}

struct Inner {
    log: Log,
    producers: ProducerStateManager,
    txns: PartitionTxns,
    role: Role,
    /// Set once committed metadata removed this replica: no more appends or
    /// reads (the directory may already be renamed for deletion).
    retired: bool,
}

/// The high watermark with the leadership it was reached under. Waiters
/// for acks=all watch it: a leadership change wakes them, and an append
/// acknowledged only while this replica still leads in the same epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HwState {
    /// The high watermark.
    pub hw: i64,
    /// The leader epoch, when this replica leads; -1 when it follows.
    pub leading_epoch: i32,
}

/// Runs blocking `f` from sync code that may be on an async worker: in the
/// broker's multi-thread runtime through `block_in_place` (the worker hands
/// its other tasks to another thread first), elsewhere (a blocking thread, a
/// test) inline.
fn blocking<R>(f: impl FnOnce() -> R) -> R {
    match tokio::runtime::Handle::try_current() {
        Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(f)
        }
        _ => f(),
    }
}

fn not_hosted() -> ApiError {
    ApiError::new(
        ResponseError::UnknownTopicOrPartition,
        "This server does not host this topic-partition.",
    )
}

fn not_leader() -> ApiError {
    ApiError::new(
        ResponseError::NotLeaderOrFollower,
        "This server is not the leader for that topic-partition.",
    )
}

/// One hosted partition.
pub struct Partition {
    /// Topic and index.
    pub tp: TopicPartition,
    /// The topic id.
    pub topic_id: Uuid,
    /// This broker.
    node_id: i32,
    /// Held by whoever changes the log (appends, truncation, retention,
    /// rolls, flushes, retirement) for the whole change, I/O included, and
    /// always taken before `inner`. `inner` is held only for the steps
    /// without I/O, so reads and every other state query never wait for a
    /// write to disk.
    writer: Mutex<()>,
    inner: Mutex<Inner>,
    leader_epoch: AtomicI32,
    hw: watch::Sender<HwState>,
    /// The log end offset (followers' long polls wait on it).
    leo: watch::Sender<i64>,
}

/// What a fetch read returned.
#[derive(Debug, Clone)]
pub struct ReadResult {
    /// Bytes to read, if any.
    pub slice: Option<ReadPlan>,
    /// High watermark.
    pub high_watermark: i64,
    /// Log start offset.
    pub log_start_offset: i64,
}

/// What a follower's fetch got from the leader.
#[derive(Debug, Clone)]
pub struct FollowerRead {
    /// The read, when the follower's log does not diverge.
    pub read: Option<ReadResult>,
    /// `(epoch, end offset)` when the follower must truncate first.
    pub diverging: Option<(i32, i64)>,
    /// An ISR expansion to request of the controller.
    pub expand_isr: Option<Vec<i32>>,
}

/// Where a follower fetches from.
#[derive(Debug, Clone, Copy)]
pub struct FetchPosition {
    /// The follower's log end.
    pub fetch_offset: i64,
    /// The epoch of its last batch.
    pub last_fetched_epoch: i32,
    /// The leader epoch it follows in.
    pub leader_epoch: i32,
    /// Its log start.
    pub log_start_offset: i64,
}

fn log_error(e: LogError) -> ApiError {
    match &e {
        LogError::Io(_) => {
            tracing::error!(error = %e, "log I/O error");
            ApiError::new(ResponseError::KafkaStorageError, e.to_string())
        }
        LogError::Batch(BatchError::Records {
            message, records, ..
        }) => ApiError {
            code: e.code(),
            message: Some(message.clone()),
            record_errors: records.clone(),
        },
        _ => ApiError {
            code: e.code(),
            message: Some(e.to_string()),
            record_errors: Vec::new(),
        },
    }
}

/// A client's `current_leader_epoch` against this replica's (KIP-320):
/// -1 skips the check; a newer one is UNKNOWN_LEADER_EPOCH (this broker has
/// not caught up), an older one FENCED_LEADER_EPOCH.
fn check_epoch(requested: i32, ours: i32) -> Result<(), ApiError> {
    if requested >= 0 && requested != ours {
        let code = if requested > ours {
            ResponseError::UnknownLeaderEpoch
        } else {
            ResponseError::FencedLeaderEpoch
        };
        return Err(ApiError::code(code));
    }
    Ok(())
}

impl Partition {
    /// Wraps an opened log, rebuilding producer state from its newest
    /// producer snapshot and the batches after it (see
    /// `partition_persist.rs`). The
    /// replica starts as a follower of nobody, until
    /// [`Partition::apply_metadata`] gives it a role, with its high watermark
    /// at `checkpointed_hw` (the high-watermark checkpoint) bounded by the
    /// log's start and end, as Kafka's, or at the log start without one.
    pub fn new(
        tp: TopicPartition,
        topic_id: Uuid,
        node_id: i32,
        log: Log,
        checkpointed_hw: Option<i64>,
    ) -> Result<Self, LogError> {
        let (producers, txns) = persist::rebuild(&log)?;
        let start = log.start_offset();
        let hw = checkpointed_hw.map_or(start, |h| h.min(log.end_offset()).max(start));
        let (hw, _) = watch::channel(HwState {
            hw,
            leading_epoch: -1,
        });
        let (leo, _) = watch::channel(log.end_offset());
        Ok(Self {
            tp,
            topic_id,
            node_id,
            writer: Mutex::new(()),
            inner: Mutex::new(Inner {
                log,
                producers,
                txns,
                role: Role::Follower { leader: -1 },
                retired: false,
            }),
            leader_epoch: AtomicI32::new(-1),
            hw,
            leo,
        })
    }

    /// The writer lock (see the field). Waiting for it may block: callers
    /// on async workers go through [`blocking`].
    fn writer(&self) -> std::sync::MutexGuard<'_, ()> {
        self.writer.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave the log half-updated
        // in memory in a way later appends rely on, so recover the guard.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The current leader epoch (from metadata).
    pub fn leader_epoch(&self) -> i32 {
        self.leader_epoch.load(Ordering::Acquire)
    }

    /// Checks a request's `current_leader_epoch` (see `check_epoch`).
    pub fn check_leader_epoch(&self, requested: i32) -> Result<(), ApiError> {
        check_epoch(requested, self.leader_epoch())
    }

    /// The role as of the last metadata applied.
    pub fn role(&self) -> Role {
        self.lock().role.clone()
    }

    /// The leader this replica follows, or `None` when it leads.
    pub fn following(&self) -> Option<i32> {
        match &self.lock().role {
            Role::Leader(_) => None,
            Role::Follower { leader } => Some(*leader),
        }
    }

    /// Takes the role committed metadata gives this replica. A new leader
    /// epoch resets the follower tracking; the same epoch only updates the
    /// ISR (a partition epoch older than the one held is ignored).
    pub fn apply_metadata(&self, pi: &PartitionImage) {
        let mut g = self.lock();
        self.leader_epoch.store(pi.leader_epoch, Ordering::Release);
        if pi.leader == self.node_id {
            let same = matches!(&g.role, Role::Leader(s) if s.leader_epoch == pi.leader_epoch);
            if same {
                if let Role::Leader(s) = &mut g.role {
                    if pi.partition_epoch > s.partition_epoch {
                        s.partition_epoch = pi.partition_epoch;
                        s.isr = pi.isr.clone();
                        s.set_replicas(&pi.replicas, Instant::now());
                        s.pending_isr = None;
                    }
                }
            } else {
                tracing::info!(partition = %self.tp, epoch = pi.leader_epoch, isr = ?pi.isr, "becoming leader");
                g.role = Role::Leader(LeaderState::new(
                    self.node_id,
                    pi.leader_epoch,
                    pi.partition_epoch,
                    pi.replicas.clone(),
                    pi.isr.clone(),
                    g.log.end_offset(),
                    Instant::now(),
                ));
            }
            let cur = self.hw.borrow().hw;
            self.hw.send_replace(HwState {
                hw: cur,
                leading_epoch: pi.leader_epoch,
            });
            self.maybe_advance_hw(&g);
        } else {
            if matches!(&g.role, Role::Leader(_))
                || !matches!(&g.role, Role::Follower { leader } if *leader == pi.leader)
            {
                tracing::info!(partition = %self.tp, leader = pi.leader, epoch = pi.leader_epoch, "becoming follower");
            }
            g.role = Role::Follower { leader: pi.leader };
            self.hw.send_modify(|h| h.leading_epoch = -1);
        }
    }

    /// As leader: moves the high watermark up to what every ISR member
    /// holds. Call with the lock held.
    fn maybe_advance_hw(&self, g: &Inner) {
        let Role::Leader(s) = &g.role else { return };
        let cur = self.hw.borrow().hw;
        let hw = s.high_watermark(g.log.end_offset(), cur);
        if hw > cur {
            self.hw.send_modify(|h| h.hw = hw);
        }
    }

    /// Applies a new effective log config.
    pub fn set_config(&self, config: LogConfig) {
        let mut g = self.lock();
        if *g.log.config() != config {
            g.log.set_config(config);
        }
    }

    /// The committed ISR size when leading (0 when following).
    pub fn isr_len(&self) -> usize {
        match &self.lock().role {
            Role::Leader(s) => s.isr.len(),
            Role::Follower { .. } => 0,
        }
    }

    /// Whether `replica` is in the committed ISR (false when following).
    pub fn in_isr(&self, replica: i32) -> bool {
        match &self.lock().role {
            Role::Leader(s) => s.isr.contains(&replica),
            Role::Follower { .. } => false,
        }
    }

    /// Appends a produce request's records as leader. With `min_isr`
    /// (acks=all), refuses with NOT_ENOUGH_REPLICAS when the ISR is smaller.
    pub fn append(&self, records: &mut [u8]) -> Result<AppendInfo, ApiError> {
        self.append_checked(records, None)
    }

    /// [`Self::append`], refusing with NOT_ENOUGH_REPLICAS when `min_isr`
    /// is given and the committed ISR is smaller (Kafka checks it before
    /// appending for acks=all).
    pub fn append_checked(
        &self,
        records: &mut [u8],
        min_isr: Option<usize>,
    ) -> Result<AppendInfo, ApiError> {
        self.append_as_leader(records, min_isr, None, false, TxnVerification::Off)
    }

    /// A client's Produce append: [`Self::append_checked`] with KIP-890's
    /// check that transactional data starting a transaction here was
    /// verified with the coordinator (`verify`).
    pub fn append_client(
        &self,
        records: &mut [u8],
        min_isr: Option<usize>,
        verify: TxnVerification,
    ) -> Result<AppendInfo, ApiError> {
        self.append_as_leader(records, min_isr, None, false, verify)
    }

    /// [`Self::append`] only while this replica leads in leader epoch
    /// `epoch` (else NOT_LEADER_OR_FOLLOWER, nothing appended): the group
    /// coordinator writes only into the leadership its state was loaded from.
    pub fn append_in_epoch(&self, records: &mut [u8], epoch: i32) -> Result<AppendInfo, ApiError> {
        self.append_as_leader(records, None, Some(epoch), false, TxnVerification::Off)
    }

    /// Appends a transaction marker batch (or a coordinator's
    /// transactional batch) this broker built (not checked as a client's
    /// records: control batches are refused from clients).
    pub(super) fn append_control_in_epoch(
        &self,
        records: &mut [u8],
        epoch: i32,
    ) -> Result<AppendInfo, ApiError> {
        self.append_as_leader(records, None, Some(epoch), true, TxnVerification::Off)
    }

    fn append_as_leader(
        &self,
        records: &mut [u8],
        min_isr: Option<usize>,
        epoch: Option<i32>,
        control: bool,
        verify: TxnVerification,
    ) -> Result<AppendInfo, ApiError> {
        blocking(|| self.append_as_leader_blocking(records, min_isr, epoch, control, verify))
    }

    /// Whether this replica leads (in `epoch`, when given) and is not
    /// retired: an append may go ahead.
    fn may_append(g: &Inner, epoch: Option<i32>) -> Result<i32, ApiError> {
        if g.retired {
            return Err(not_hosted());
        }
        let Role::Leader(s) = &g.role else {
            return Err(not_leader());
        };
        if epoch.is_some_and(|e| e != s.leader_epoch) {
            return Err(not_leader());
        }
        Ok(s.leader_epoch)
    }

    fn append_as_leader_blocking(
        &self,
        records: &mut [u8],
        min_isr: Option<usize>,
        epoch: Option<i32>,
        control: bool,
        verify: TxnVerification,
    ) -> Result<AppendInfo, ApiError> {
        let _w = self.writer();
        let g = self.lock();
        let leading = Self::may_append(&g, epoch)?;
        if let (Some(min), Role::Leader(s)) = (min_isr, &g.role) {
            if s.isr.len() < min {
                return Err(ApiError::new(
                    ResponseError::NotEnoughReplicas,
                    format!(
                        "The size of the current ISR {:?} is insufficient to satisfy the min.isr requirement of {min} for partition {}",
                        s.isr, self.tp
                    ),
                ));
            }
        }
        let batches = split_batches(records).map_err(|e| log_error(e.into()))?;
        if batches.len() > 1 && batches.iter().any(|(h, _)| h.producer_id >= 0) {
            return Err(ApiError::new(
                ResponseError::InvalidRecord,
                "idempotent produce requests must carry exactly one record batch per partition",
            ));
        }
        if let Some((h, _)) = batches.first().filter(|_| !control) {
            Self::check_txn_data(&g, h)?;
            Self::check_txn_verified(&g, h, verify)?;
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
        // Validation (CRCs, record by record, decompressing) without the
        // lock; the writer lock keeps the log and producer state as checked.
        let now = crate::clock::now_ms();
        let checks = g.log.produce_checks(now);
        drop(g);
        if !control {
            checks.validate(records, &batches).map_err(log_error)?;
        }
        let mut g = self.lock();
        // The role may have changed meanwhile (metadata is applied under
        // `inner` alone): append only in the leadership checked above.
        Self::may_append(&g, Some(leading))?;
        let pending = g
            .log
            .prepare_append(records, &batches, leading, now)
            .map_err(log_error)?;
        // A roll: the state is still the state at the new segment's base.
        let jobs = Self::roll_jobs(&mut g);
        drop(g);
        jobs.iter().for_each(persist::PersistJob::run);
        #[cfg(test)]
        tests::hook("write");
        pending.write(records).map_err(|e| log_error(e.into()))?;
        let markers = markers_in(records, &batches);
        let mut g = self.lock();
        let inner = &mut *g;
        let info = inner
            .log
            .commit_append(pending, &mut |h| {
                inner.producers.record(h);
                inner.txns.on_batch(h, marker_at(&markers, h.base_offset));
            })
            .map_err(log_error)?;
        if let Some(job) = g.log.take_flush() {
            // flush.messages / flush.ms / a rolled segment: fsync with the
            // lock released (reads go on meanwhile), answer only after it.
            drop(g);
            self.run_flush(&job).map_err(log_error)?;
            g = self.lock();
        }
        self.leo.send_replace(g.log.end_offset());
        self.maybe_advance_hw(&g);
        Ok(info)
    }

    /// Runs an append's owed fsyncs without the partition lock and off the
    /// async worker (`block_in_place`: the worker's other tasks move to
    /// another thread meanwhile), then records the new recovery point.
    fn run_flush(&self, job: &FlushJob) -> Result<(), LogError> {
        #[cfg(test)]
        tests::flush_hook();
        blocking(|| job.run())?;
        self.lock().log.flushed(job);
        Ok(())
    }

    /// Runs the fsyncs a log operation outside an append owes (a roll by
    /// housekeeping or retention), without the partition lock.
    pub fn flush_owed(&self) -> Result<(), LogError> {
        let _w = blocking(|| self.writer());
        let job = self.lock().log.take_flush();
        match job {
            Some(job) => self.run_flush(&job),
            None => Ok(()),
        }
    }

    /// Waits until the high watermark reaches `offset` while this replica
    /// leads in `epoch` (acks=all). NOT_LEADER_OR_FOLLOWER when leadership
    /// moves first (the append may be truncated away), REQUEST_TIMED_OUT
    /// after `timeout`, NOT_ENOUGH_REPLICAS_AFTER_APPEND when the ISR shrank
    /// below `min_isr` meanwhile (as Kafka's DelayedProduce answers).
    pub async fn wait_replicated(
        &self,
        offset: i64,
        epoch: i32,
        min_isr: usize,
        timeout: Duration,
    ) -> Result<(), ApiError> {
        let mut rx = self.hw.subscribe();
        // Copy the state out: a watch `Ref` held while taking the partition
        // lock below would deadlock with an append sending under that lock.
        let reached = tokio::time::timeout(timeout, async {
            rx.wait_for(|h| h.leading_epoch != epoch || h.hw >= offset)
                .await
                .map(|h| *h)
        })
        .await;
        match reached {
            Err(_) => Err(ApiError::new(
                ResponseError::RequestTimedOut,
                "the records were not replicated to the in-sync replicas in time",
            )),
            Ok(Err(_)) => Err(not_leader()),
            Ok(Ok(h)) if h.leading_epoch != epoch => Err(not_leader()),
            Ok(Ok(_)) => {
                if self.isr_len() < min_isr {
                    Err(ApiError::code(ResponseError::NotEnoughReplicasAfterAppend))
                } else {
                    Ok(())
                }
            }
        }
    }

    /// Plans a consumer's read from `offset` up to the high watermark.
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
        let hw = self.hw.borrow().hw;
        let slice = g
            .log
            .plan_read(offset, max_bytes, min_one, hw)
            .map_err(log_error)?;
        Ok(ReadResult {
            slice,
            high_watermark: hw,
            log_start_offset: g.log.start_offset(),
        })
    }

    /// Plans a read from `offset` up to the log end, whatever the role (the
    /// group coordinator loading its partition).
    pub fn read_local(&self, offset: i64, max_bytes: usize) -> Result<ReadResult, ApiError> {
        let g = self.lock();
        if g.retired {
            return Err(not_hosted());
        }
        let end = g.log.end_offset();
        let slice = g
            .log
            .plan_read(offset, max_bytes, true, end)
            .map_err(log_error)?;
        Ok(ReadResult {
            slice,
            high_watermark: self.hw.borrow().hw,
            log_start_offset: g.log.start_offset(),
        })
    }

    /// Serves a follower's fetch as leader (Kafka's `Partition.fetchRecords`
    /// for a replica): checks its leader epoch, tells it where its log
    /// diverges (KIP-320's diverging epoch), else records its progress,
    /// advances the high watermark, and reads up to the log end.
    /// `isr_eligible` is false when the metadata shows the replica fenced or
    /// in controlled shutdown: then it is not proposed for the ISR (Kafka's
    /// `Partition.isReplicaIsrEligible`), so a pending expansion the
    /// controller must refuse never holds the high watermark back.
    pub fn read_for_follower(
        &self,
        replica: i32,
        pos: FetchPosition,
        max_bytes: usize,
        isr_eligible: bool,
    ) -> Result<FollowerRead, ApiError> {
        let mut g = self.lock();
        if g.retired {
            return Err(not_hosted());
        }
        self.check_leader_epoch(pos.leader_epoch)?;
        if !matches!(&g.role, Role::Leader(_)) {
            return Err(not_leader());
        }
        if pos.last_fetched_epoch >= 0 {
            let (epoch, end) = g.log.end_offset_for_epoch(pos.last_fetched_epoch);
            if epoch < pos.last_fetched_epoch || end < pos.fetch_offset {
                return Ok(FollowerRead {
                    read: None,
                    diverging: Some((epoch, end)),
                    expand_isr: None,
                });
            }
        }
        let leo = g.log.end_offset();
        let now = Instant::now();
        if let Role::Leader(s) = &mut g.role {
            if pos.fetch_offset <= leo {
                s.record_fetch(replica, pos.fetch_offset, leo, now);
            }
        }
        self.maybe_advance_hw(&g);
        let hw = self.hw.borrow().hw;
        let expand_isr = match &mut g.role {
            Role::Leader(s) if isr_eligible => {
                let e = s.expansion(replica, hw);
                if e.is_some() {
                    s.pending_isr = e.clone();
                }
                e
            }
            Role::Leader(_) | Role::Follower { .. } => None,
        };
        let slice = g
            .log
            .plan_read(pos.fetch_offset, max_bytes, true, leo)
            .map_err(log_error)?;
        Ok(FollowerRead {
            read: Some(ReadResult {
                slice,
                high_watermark: hw,
                log_start_offset: g.log.start_offset(),
            }),
            diverging: None,
            expand_isr,
        })
    }

    /// As leader: the ISR to request because members fell behind for
    /// longer than `lag`, marked pending.
    pub fn isr_shrink(&self, lag: Duration) -> Option<(Vec<i32>, i32, i32)> {
        let mut g = self.lock();
        let Role::Leader(s) = &mut g.role else {
            return None;
        };
        let shrink = s.shrink(lag, Instant::now())?;
        s.pending_isr = Some(shrink.clone());
        Some((shrink, s.leader_epoch, s.partition_epoch))
    }

    /// The leader and partition epochs an ISR request is based on.
    pub fn isr_epochs(&self) -> Option<(i32, i32)> {
        match &self.lock().role {
            Role::Leader(s) => Some((s.leader_epoch, s.partition_epoch)),
            Role::Follower { .. } => None,
        }
    }

    /// The controller answered an ISR request: take the committed state
    /// (or, on `None`, forget the pending change so it can be retried).
    pub fn isr_answered(&self, committed: Option<&PartitionImage>) {
        let mut g = self.lock();
        if let Role::Leader(s) = &mut g.role {
            match committed {
                Some(pi) if pi.leader_epoch == s.leader_epoch => {
                    if pi.partition_epoch > s.partition_epoch {
                        s.partition_epoch = pi.partition_epoch;
                        s.isr = pi.isr.clone();
                    }
                    s.pending_isr = None;
                }
                Some(_) => {}
                None => s.pending_isr = None,
            }
        }
        self.maybe_advance_hw(&g);
    }

    /// Where this replica, as follower, fetches from next.
    pub fn fetch_position(&self) -> FetchPosition {
        let g = self.lock();
        FetchPosition {
            fetch_offset: g.log.end_offset(),
            last_fetched_epoch: g.log.latest_epoch(),
            leader_epoch: self.leader_epoch(),
            log_start_offset: g.log.start_offset(),
        }
    }

    /// As follower in `epoch`: appends what the leader sent (its offsets
    /// and epochs) and takes its high watermark and log start. Returns
    /// false when this replica no longer follows in that epoch (the data
    /// is dropped).
    pub fn append_as_follower(
        &self,
        epoch: i32,
        records: &[u8],
        leader_hw: i64,
        leader_start: i64,
    ) -> Result<bool, LogError> {
        let following = |g: &Inner| {
            !(g.retired || matches!(g.role, Role::Leader(_)) || self.leader_epoch() != epoch)
        };
        // CRCs are checked before any lock is taken.
        let batches = crate::log::scan_replicated(records)?;
        let markers = markers_in(records, &batches);
        blocking(|| {
            let _w = self.writer();
            let mut g = self.lock();
            if !following(&g) {
                return Ok(false);
            }
            let pending = g
                .log
                .prepare_follower_append(batches, crate::clock::now_ms())?;
            let jobs = Self::roll_jobs(&mut g);
            if !jobs.is_empty() {
                drop(g);
                jobs.iter().for_each(persist::PersistJob::run);
                g = self.lock();
            }
            if let Some(pending) = pending {
                drop(g);
                pending.write(records)?;
                g = self.lock();
                // Producer state follows the log, so a new leader has it.
                let inner = &mut *g;
                inner.log.commit_append(pending, &mut |h| {
                    inner.producers.record(h);
                    inner.txns.on_batch(h, marker_at(&markers, h.base_offset));
                })?;
            }
            if leader_start > g.log.start_offset() && leader_start <= g.log.end_offset() {
                g.log.delete_records_before(leader_start)?;
            }
            if let Some(job) = g.log.take_flush() {
                drop(g);
                self.run_flush(&job)?;
                g = self.lock();
            }
            let end = g.log.end_offset();
            self.leo.send_replace(end);
            if !following(&g) {
                return Ok(false);
            }
            let hw = leader_hw.min(end);
            self.hw.send_modify(|h| h.hw = hw);
            Ok(true)
        })
    }

    /// As follower in `epoch`: truncates a diverged log to `offset` (or
    /// empties it and starts at `offset` when `fully`).
    pub fn truncate(&self, epoch: i32, offset: i64, fully: bool) -> Result<bool, LogError> {
        blocking(|| self.truncate_blocking(epoch, offset, fully))
    }

    fn truncate_blocking(&self, epoch: i32, offset: i64, fully: bool) -> Result<bool, LogError> {
        let _w = self.writer();
        let mut g = self.lock();
        if g.retired || matches!(g.role, Role::Leader(_)) || self.leader_epoch() != epoch {
            return Ok(false);
        }
        let end = if fully {
            g.log.truncate_fully_and_start_at(offset)?
        } else {
            g.log.truncate_to(offset)?
        };
        // Producer state is reloaded for what is left (nothing, when the
        // log now starts at its end: no snapshot of the old log applies).
        let emptied = fully || g.log.start_offset() == end;
        Self::reload_after_truncation(&mut g, emptied)?;
        self.leo.send_replace(end);
        self.hw.send_modify(|h| h.hw = h.hw.min(end));
        Ok(true)
    }

    /// The end offset this replica holds for `epoch` (OffsetForLeaderEpoch).
    pub fn end_offset_for_epoch(&self, epoch: i32) -> (i32, i64) {
        self.lock().log.end_offset_for_epoch(epoch)
    }

    /// The high watermark.
    pub fn high_watermark(&self) -> i64 {
        self.hw.borrow().hw
    }

    /// A receiver that changes whenever the high watermark or the
    /// leadership changes.
    pub fn subscribe(&self) -> watch::Receiver<HwState> {
        self.hw.subscribe()
    }

    /// A receiver that changes whenever the log end moves.
    pub fn subscribe_leo(&self) -> watch::Receiver<i64> {
        self.leo.subscribe()
    }

    /// Runs `f` to change the log (retention, rolls, DeleteRecords), with
    /// the writer lock and the log locked, as blocking code.
    pub fn with_log<R>(&self, f: impl FnOnce(&mut Log) -> R) -> R {
        blocking(|| {
            let _w = self.writer();
            let mut g = self.lock();
            let r = f(&mut g.log);
            // A roll here (segment.ms, retention) finished at the log end,
            // where the producer state is.
            let jobs = Self::roll_jobs(&mut g);
            drop(g);
            jobs.iter().for_each(persist::PersistJob::run);
            r
        })
    }

    /// Runs `f` to look at the log, with the log locked: `f` must not do
    /// I/O (see [`Log::plan_read`] for reads).
    pub fn read_log<R>(&self, f: impl FnOnce(&Log) -> R) -> R {
        f(&self.lock().log)
    }

    /// Runs `f`, which may read the log's files (a timestamp lookup), with
    /// the log locked, as blocking code.
    pub fn scan_log<R>(&self, f: impl FnOnce(&Log) -> R) -> R {
        blocking(|| f(&self.lock().log))
    }

    /// Flushes the log (on shutdown).
    pub fn close(&self) -> Result<(), LogError> {
        let _w = blocking(|| self.writer());
        let mut g = self.lock();
        if g.retired {
            return Ok(());
        }
        g.log.flush()?;
        // Kafka's snapshot on a clean shutdown: the next start replays
        // nothing.
        let job = Self::close_job(&g);
        drop(g);
        job.run();
        Ok(())
    }

    /// Stops this replica for good because committed metadata removed it:
    /// with the log locked, marks it retired (later appends and reads get
    /// UNKNOWN_TOPIC_OR_PARTITION) and runs `then` (which renames the
    /// directory), so no append or read races the rename.
    pub fn retire<R>(&self, then: impl FnOnce() -> R) -> R {
        let _w = blocking(|| self.writer());
        let mut g = self.lock();
        g.retired = true;
        g.role = Role::Follower { leader: -1 };
        self.hw.send_modify(|h| h.leading_epoch = -1);
        then()
    }

    /// Whether [`Self::retire`] ran.
    pub fn is_retired(&self) -> bool {
        self.lock().retired
    }
}

#[cfg(test)]
#[path = "partition_tests.rs"]
mod tests;
