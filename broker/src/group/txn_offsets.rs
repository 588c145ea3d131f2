//! Transactional offset commits that wait for their transaction's end
//! (Kafka's `OffsetMetadataManager.pendingTransactionalOffsets` and
//! `replayEndTransactionMarker`). A TxnOffsetCommit is written to
//! `__consumer_offsets` at once but is not visible until the commit marker
//! of its producer lands on that partition; an abort marker drops it.
//! Pure and generic over the stored offset value. Not wired yet: the broker
//! does not serve TxnOffsetCommit.

use std::collections::{BTreeMap, BTreeSet, HashMap};

/// (group, topic, partition).
pub type OffsetKey = (String, String, i32);

/// A pending offset: the `__consumer_offsets` offset of its record and the
/// value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingOffset<V> {
    /// Where its record is in `__consumer_offsets`.
    pub record_offset: i64,
    /// The committed offset and metadata.
    pub value: V,
}

/// The pending transactional offsets of one `__consumer_offsets` partition.
#[derive(Debug, Clone)]
pub struct PendingTxnOffsets<V> {
    by_producer: HashMap<i64, BTreeMap<OffsetKey, PendingOffset<V>>>,
    open_by_group: HashMap<String, BTreeSet<i64>>,
}

impl<V> Default for PendingTxnOffsets<V> {
    fn default() -> Self {
        PendingTxnOffsets {
            by_producer: HashMap::new(),
            open_by_group: HashMap::new(),
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
    pub fn add(&mut self, producer_id: i64, key: OffsetKey, record_offset: i64, value: V) {
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

    /// A marker of `producer_id` landed: its offsets, to be materialized
    /// (each through [`should_materialize`]) on commit, or nothing on abort.
    pub fn end(&mut self, producer_id: i64, commit: bool) -> Vec<(OffsetKey, PendingOffset<V>)> {
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
        if commit {
            offsets.into_iter().collect()
        } else {
            Vec::new()
        }
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
        p.add(1, key("g", "t", 0), 10, 100);
        p.add(1, key("g", "t", 0), 11, 101); // replaces
        p.add(1, key("g", "t", 1), 12, 200);
        p.add(2, key("g", "t", 2), 13, 300);
        p.add(3, key("h", "t", 0), 14, 400);
        assert!(p.has_pending(&key("g", "t", 0)));
        assert!(!p.has_pending(&key("g", "u", 0)));
        assert!(p.group_has_open("g") && p.group_has_open("h"));
        let done = p.end(1, true);
        assert_eq!(
            done,
            vec![
                (
                    key("g", "t", 0),
                    PendingOffset {
                        record_offset: 11,
                        value: 101
                    }
                ),
                (
                    key("g", "t", 1),
                    PendingOffset {
                        record_offset: 12,
                        value: 200
                    }
                ),
            ]
        );
        assert!(!p.has_pending(&key("g", "t", 0)));
        assert!(p.group_has_open("g")); // producer 2 still open
        assert!(p.end(2, false).is_empty());
        assert!(!p.group_has_open("g"));
        assert!(!p.has_pending(&key("g", "t", 2)));
        // A marker for a producer with nothing pending does nothing.
        assert!(p.end(9, true).is_empty());
        assert!(p.group_has_open("h"));
    }

    #[test]
    fn the_latest_record_wins() {
        assert!(should_materialize(5, None));
        assert!(should_materialize(5, Some(4)));
        assert!(!should_materialize(5, Some(6)));
    }
}
