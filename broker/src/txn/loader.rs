//! Rebuilds the transactional ids of one `__transaction_state` partition
//! from its log (Kafka's `TransactionStateManager.loadTransactionMetadata`):
//! the last value of each key wins, a tombstone removes the id, unknown key
//! versions are skipped. Transactions found in `PrepareCommit` or
//! `PrepareAbort` had their markers cut short by the previous coordinator:
//! the new one must send them again and then write the completion.
//! Blocking (it reads segment files): run it on the blocking pool.

use std::collections::HashMap;

use tracing::warn;

use super::records::{decode_key, decode_value, TxnLogKey};
use super::state::{TransactionMetadata, TransactionState};
use crate::replication::Partition;

/// The internal topic that holds transaction state.
pub const TRANSACTION_STATE_TOPIC: &str = "__transaction_state";

/// Transactional ids replayed from a log.
#[derive(Debug, Default, Clone)]
pub struct TxnReplay {
    /// Each id's state.
    pub transactions: HashMap<String, TransactionMetadata>,
    /// Records that could not be decoded and were skipped.
    pub skipped: usize,
}

impl TxnReplay {
    /// Applies one record, in log order.
    pub fn apply(&mut self, key: Option<&[u8]>, value: Option<&[u8]>) {
        let Some(key) = key else {
            self.skipped += 1;
            return;
        };
        let tid = match decode_key(key) {
            Ok(TxnLogKey::Transaction(tid)) => tid,
            Ok(TxnLogKey::Unknown(_)) => return,
            Err(e) => {
                warn!(error = %e, "skipping undecodable {TRANSACTION_STATE_TOPIC} key");
                self.skipped += 1;
                return;
            }
        };
        match value {
            None => {
                self.transactions.remove(&tid);
            }
            Some(v) => match decode_value(v) {
                Ok(v) => {
                    self.transactions
                        .insert(tid.clone(), TransactionMetadata::from_log_value(&tid, &v));
                }
                Err(e) => {
                    warn!(transactional_id = tid, error = %e, "skipping undecodable {TRANSACTION_STATE_TOPIC} value");
                    self.skipped += 1;
                }
            },
        }
    }

    /// The ids whose markers must be (re)sent, then completed, sorted.
    pub fn pending_completion(&self) -> Vec<&TransactionMetadata> {
        let mut v: Vec<&TransactionMetadata> = self
            .transactions
            .values()
            .filter(|m| {
                matches!(
                    m.state,
                    TransactionState::PrepareCommit | TransactionState::PrepareAbort
                )
            })
            .collect();
        v.sort_by(|a, b| a.transactional_id.cmp(&b.transactional_id));
        v
    }
}

/// The transactional ids `part`'s log holds and the number of records
/// replayed.
pub fn load_partition(part: &Partition) -> (TxnReplay, usize) {
    let mut replay = TxnReplay::default();
    let count = crate::group::replay_log(part, TRANSACTION_STATE_TOPIC, |k, v| replay.apply(k, v));
    (replay, count)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::txn::records::{encode_key, encode_value, TxnLogValue};

    fn value(pid: i64, epoch: i16, state: TransactionState) -> Vec<u8> {
        let v = TxnLogValue {
            partitions: (state != TransactionState::Empty).then(Vec::new),
            start_timestamp_ms: 5,
            ..TxnLogValue::new(pid, epoch, state)
        };
        encode_value(&v, 0).expect("encode").to_vec()
    }

    #[test]
    fn last_value_wins_tombstones_remove_garbage_is_skipped() {
        let mut r = TxnReplay::default();
        let a = encode_key("a").expect("key");
        let b = encode_key("b").expect("key");
        let c = encode_key("c").expect("key");
        r.apply(Some(&a), Some(&value(1, 0, TransactionState::Empty)));
        r.apply(
            Some(&a),
            Some(&value(1, 1, TransactionState::PrepareCommit)),
        );
        r.apply(Some(&b), Some(&value(2, 0, TransactionState::Ongoing)));
        r.apply(Some(&c), Some(&value(3, 0, TransactionState::PrepareAbort)));
        r.apply(Some(&c), None);
        r.apply(Some(&[0, 9, 1]), Some(b"x")); // unknown key version: ignored
        r.apply(Some(&[0]), Some(b"x")); // truncated key
        r.apply(Some(&b), Some(&[0, 0, 1])); // truncated value: b keeps its state
        r.apply(None, None);
        assert_eq!(r.transactions.len(), 2);
        assert_eq!(r.skipped, 3);
        let a_meta = &r.transactions["a"];
        assert_eq!(
            (a_meta.producer_epoch, a_meta.state),
            (1, TransactionState::PrepareCommit)
        );
        assert_eq!(r.transactions["b"].state, TransactionState::Ongoing);
        let pending: Vec<&str> = r
            .pending_completion()
            .iter()
            .map(|m| m.transactional_id.as_str())
            .collect();
        assert_eq!(pending, vec!["a"]);
    }
}
