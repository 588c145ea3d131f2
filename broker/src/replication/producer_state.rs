//! Idempotent producer state of one partition: the last batches of each
//! producer id, for sequence checks and duplicate detection.

use std::collections::{HashMap, VecDeque};

use crate::protocol::batch::BatchHeader;

/// How many recent batches per producer are remembered (Kafka's
/// `max.in.flight.requests.per.connection` limit for idempotence).
const MAX_CACHED: usize = 5;

#[derive(Debug, Clone, Copy)]
struct CachedBatch {
    first_seq: i32,
    last_seq: i32,
    base_offset: i64,
}

#[derive(Debug, Default)]
struct ProducerEntry {
    epoch: i16,
    batches: VecDeque<CachedBatch>,
    /// The max timestamp of its last batch (`producer.id.expiration.ms`).
    last_timestamp: i64,
}

/// One producer's state as a snapshot or DescribeProducers shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProducerView {
    /// The producer id.
    pub producer_id: i64,
    /// Its epoch.
    pub epoch: i16,
    /// (first sequence, last sequence, base offset) of its last batch.
    pub last_batch: Option<(i32, i32, i64)>,
    /// Its last batch's max timestamp.
    pub last_timestamp: i64,
}

/// The outcome of checking a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SequenceCheck {
    /// Not idempotent, or the next expected batch: append it.
    Append,
    /// An exact retry of a batch already in the log at this base offset.
    Duplicate(i64),
    /// The epoch is older than the producer's current one (INVALID_PRODUCER_EPOCH).
    StaleEpoch,
    /// A gap or reordering (OUT_OF_ORDER_SEQUENCE_NUMBER).
    OutOfOrder {
        /// What was expected.
        expected: i32,
        /// What arrived.
        got: i32,
    },
}

/// Producer state of one partition.
#[derive(Debug, Default)]
pub struct ProducerStateManager {
    producers: HashMap<i64, ProducerEntry>,
}

fn next_seq(s: i32) -> i32 {
    if s == i32::MAX {
        0
    } else {
        s + 1
    }
}

impl ProducerStateManager {
    /// The epoch this partition knows for `producer_id`.
    pub fn epoch_of(&self, producer_id: i64) -> Option<i16> {
        self.producers.get(&producer_id).map(|e| e.epoch)
    }

    /// Every producer's state (for a snapshot and DescribeProducers).
    pub fn views(&self) -> Vec<ProducerView> {
        self.producers
            .iter()
            .map(|(&producer_id, e)| ProducerView {
                producer_id,
                epoch: e.epoch,
                last_batch: e
                    .batches
                    .back()
                    .map(|b| (b.first_seq, b.last_seq, b.base_offset)),
                last_timestamp: e.last_timestamp,
            })
            .collect()
    }

    /// Restores a producer from a snapshot.
    pub fn restore(&mut self, v: &ProducerView) {
        let entry = self.producers.entry(v.producer_id).or_default();
        entry.epoch = v.epoch;
        entry.last_timestamp = v.last_timestamp;
        entry.batches.clear();
        if let Some((first_seq, last_seq, base_offset)) = v.last_batch {
            entry.batches.push_back(CachedBatch {
                first_seq,
                last_seq,
                base_offset,
            });
        }
    }

    /// Forgets the producers idle for `expiration_ms` (their last batch's
    /// timestamp that old) with no open transaction here (`is_open`), as
    /// Kafka's `removeExpiredProducers` (`producer.id.expiration.ms`).
    /// Returns the producers that went.
    pub fn expire(
        &mut self,
        now_ms: i64,
        expiration_ms: i64,
        is_open: impl Fn(i64) -> bool,
    ) -> Vec<i64> {
        let gone: Vec<i64> = self
            .producers
            .iter()
            .filter(|(pid, e)| {
                !is_open(**pid) && now_ms.saturating_sub(e.last_timestamp) >= expiration_ms
            })
            .map(|(pid, _)| *pid)
            .collect();
        for pid in &gone {
            self.producers.remove(pid);
        }
        gone
    }

    /// Checks a batch before it is appended.
    pub fn check(&self, h: &BatchHeader) -> SequenceCheck {
        if h.producer_id < 0 || h.base_sequence < 0 {
            return SequenceCheck::Append;
        }
        let Some(entry) = self.producers.get(&h.producer_id) else {
            // A new producer must start at sequence 0 (the log may have
            // lost its state through retention: then Kafka accepts too).
            return SequenceCheck::Append;
        };
        if h.producer_epoch < entry.epoch {
            return SequenceCheck::StaleEpoch;
        }
        if h.producer_epoch > entry.epoch {
            // A new epoch restarts sequences at 0.
            return if h.base_sequence == 0 {
                SequenceCheck::Append
            } else {
                SequenceCheck::OutOfOrder {
                    expected: 0,
                    got: h.base_sequence,
                }
            };
        }
        if let Some(b) = entry
            .batches
            .iter()
            .find(|b| b.first_seq == h.base_sequence && b.last_seq == h.last_sequence())
        {
            return SequenceCheck::Duplicate(b.base_offset);
        }
        let expected = entry
            .batches
            .back()
            .map(|b| next_seq(b.last_seq))
            .unwrap_or(0);
        if h.base_sequence != expected {
            return SequenceCheck::OutOfOrder {
                expected,
                got: h.base_sequence,
            };
        }
        SequenceCheck::Append
    }

    /// Records an appended (or recovered) batch.
    pub fn record(&mut self, h: &BatchHeader) {
        if h.producer_id >= 0 && h.is_control() {
            // A transaction marker carries the producer's epoch as the
            // coordinator knows it: a fenced producer's newer epoch makes
            // the old one's later batches stale (Kafka's
            // `appendEndTxnMarker` updates the entry's epoch).
            let entry = self.producers.entry(h.producer_id).or_default();
            if h.producer_epoch > entry.epoch {
                entry.epoch = h.producer_epoch;
                entry.batches.clear();
            }
            entry.last_timestamp = entry.last_timestamp.max(h.max_timestamp);
            return;
        }
        if h.producer_id < 0 || h.base_sequence < 0 {
            return;
        }
        let entry = self.producers.entry(h.producer_id).or_default();
        if h.producer_epoch > entry.epoch {
            entry.epoch = h.producer_epoch;
            entry.batches.clear();
        }
        entry.last_timestamp = h.max_timestamp;
        entry.batches.push_back(CachedBatch {
            first_seq: h.base_sequence,
            last_seq: h.last_sequence(),
            base_offset: h.base_offset,
        });
        while entry.batches.len() > MAX_CACHED {
            entry.batches.pop_front();
        }
    }
}
