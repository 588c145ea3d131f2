//! Transactional offset commits that wait for their transaction's end
//! (Kafka's `OffsetMetadataManager.pendingTransactionalOffsets` and
//! `replayEndTransactionMarker`). A TxnOffsetCommit is written to
//! `__consumer_offsets` at once but is not visible until the commit marker
//! of its producer lands on that partition; an abort marker drops it.
//! Pure and generic over the stored offset value: the group coordinator
//! keeps one per `__consumer_offsets` partition (`Groups::txn`), fed by
//! TxnOffsetCommit, OffsetCommit, WriteTxnMarkers and the partition loader
//! alike, in log order.

use std::collections::{BTreeMap, BTreeSet, HashMap};

/// (group, topic, partition).
pub type OffsetKey = (String, String, i32);

/// A pending offset: its position among this partition's offset writes
/// (log order) and the value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingOffset<V> {
    /// Where its record is among the partition's offset records.
    pub record_offset: i64,
    /// The committed offset and metadata.
    pub value: V,
}

/// The pending transactional offsets of one `__consumer_offsets` partition.
#[derive(Debug, Clone)]
pub struct PendingTxnOffsets<V> {
    by_producer: HashMap<i64, BTreeMap<OffsetKey, PendingOffset<V>>>,
    open_by_group: HashMap<String, BTreeSet<i64>>,
    /// The position of the last plain (non-transactional) commit of a key
    /// that some transaction also holds.
    plain: HashMap<OffsetKey, i64>,
    /// The next position.
    next: i64,
}

impl<V> Default for PendingTxnOffsets<V> {
    fn default() -> Self {
        PendingTxnOffsets {
            by_producer: HashMap::new(),
            open_by_group: HashMap::new(),
            plain: HashMap::new(),
            next: 0,
        }
    }
}

/// Kafka keeps the most recent commit when transactional and plain commits
/// mix: a transaction's offset is materialized only if its record is later
/// in the log than the committed offset's record.
pub fn should_materialize(
    pending_record_offset: i64,
    committed_record_offset: Option<i64>,
) -> bool {
    committed_record_offset.is_none_or(|c| pending_record_offset > c)
}

impl<V> PendingTxnOffsets<V> {
    /// A transactional offset commit record was written (or replayed); a
    /// later one of the same producer for the same partition replaces it.
    pub fn add(&mut self, producer_id: i64, key: OffsetKey, value: V) {
        let record_offset = self.next;
        self.next += 1;
        self.open_by_group
            .entry(key.0.clone())
            .or_default()
            .insert(producer_id);
        self.by_producer.entry(producer_id).or_default().insert(
            key,
            PendingOffset {
                record_offset,
                value,
            },
        );
    }

    /// A plain OffsetCommit of `key` was written (or replayed): a pending
    /// transactional offset of it written before loses to it.
    pub fn plain_commit(&mut self, key: &OffsetKey) {
        if self.has_pending(key) {
            self.plain.insert(key.clone(), self.next);
            self.next += 1;
        }
    }

    /// Whether a transaction holds an offset for this partition (OffsetFetch
    /// with `require_stable` answers UNSTABLE_OFFSET_COMMIT then).
    pub fn has_pending(&self, key: &OffsetKey) -> bool {
        self.open_by_group.get(&key.0).is_some_and(|pids| {
            pids.iter().any(|p| {
                self.by_producer
                    .get(p)
                    .is_some_and(|offsets| offsets.contains_key(key))
            })
        })
    }

    /// Whether any transaction holds offsets of `group` (such a group is not
    /// empty for deletion and expiry).
    pub fn group_has_open(&self, group: &str) -> bool {
        self.open_by_group.contains_key(group)
    }

    /// Whether nothing is pending.
    pub fn is_empty(&self) -> bool {
        self.by_producer.is_empty()
    }

    /// A marker of `producer_id` landed: on commit its offsets that are to
    /// be materialized (later than any plain commit of the same partition),
    /// on abort nothing.
    pub fn end(&mut self, producer_id: i64, commit: bool) -> Vec<(OffsetKey, V)> {
        let Some(offsets) = self.by_producer.remove(&producer_id) else {
            return Vec::new();
        };
        for (group, _, _) in offsets.keys() {
            if let Some(pids) = self.open_by_group.get_mut(group) {
                pids.remove(&producer_id);
                if pids.is_empty() {
                    self.open_by_group.remove(group);
                }
            }
        }
        let mut out = Vec::new();
        for (key, p) in offsets {
            if commit && should_materialize(p.record_offset, self.plain.get(&key).copied()) {
                out.push((key.clone(), p.value));
            }
            if !self.has_pending(&key) {
                self.plain.remove(&key);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(g: &str, t: &str, p: i32) -> OffsetKey {
        (g.to_owned(), t.to_owned(), p)
    }

    #[test]
    fn commit_materializes_abort_drops() {
        let mut p: PendingTxnOffsets<i64> = PendingTxnOffsets::default();
        p.add(1, key("g", "t", 0), 100);
        p.add(1, key("g", "t", 0), 101); // replaces
        p.add(1, key("g", "t", 1), 200);
        p.add(2, key("g", "t", 2), 300);
        p.add(3, key("h", "t", 0), 400);
        assert!(p.has_pending(&key("g", "t", 0)));
        assert!(!p.has_pending(&key("g", "u", 0)));
        assert!(p.group_has_open("g") && p.group_has_open("h"));
        let done = p.end(1, true);
        assert_eq!(done, vec![(key("g", "t", 0), 101), (key("g", "t", 1), 200)]);
        assert!(!p.has_pending(&key("g", "t", 0)));
        assert!(p.group_has_open("g")); // producer 2 still open
        assert!(p.end(2, false).is_empty());
        assert!(!p.group_has_open("g"));
        assert!(!p.has_pending(&key("g", "t", 2)));
        // A marker for a producer with nothing pending does nothing.
        assert!(p.end(9, true).is_empty());
        assert!(p.group_has_open("h"));
        assert!(!p.is_empty());
        assert_eq!(p.end(3, true), vec![(key("h", "t", 0), 400)]);
        assert!(p.is_empty());
    }

    #[test]
    fn a_plain_commit_after_the_transactional_one_wins() {
        let mut p: PendingTxnOffsets<i64> = PendingTxnOffsets::default();
        // Plain commit before the transaction's record: the transaction wins.
        p.plain_commit(&key("g", "t", 0));
        p.add(1, key("g", "t", 0), 10);
        assert_eq!(p.end(1, true), vec![(key("g", "t", 0), 10)]);
        // Plain commit after it: the plain one stays.
        p.add(2, key("g", "t", 0), 20);
        p.plain_commit(&key("g", "t", 0));
        assert!(p.end(2, true).is_empty());
        // And the next transaction is not affected by the old plain commit.
        p.add(3, key("g", "t", 0), 30);
        assert_eq!(p.end(3, true), vec![(key("g", "t", 0), 30)]);
    }

    #[test]
    fn the_latest_record_wins() {
        assert!(should_materialize(5, None));
        assert!(should_materialize(5, Some(4)));
        assert!(!should_materialize(5, Some(6)));
    }
}
