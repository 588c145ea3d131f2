//! Rebuilds the groups of one `__consumer_offsets` partition from its log
//! (Kafka's `CoordinatorLoaderImpl`): every record from the log start to
//! the log end, replayed in order. Blocking (it reads segment files): run it
//! on the blocking pool.

use std::time::Instant;

use kafka_protocol::records::RecordBatchDecoder;
use tracing::{error, warn};

use super::classic::ClassicGroup;
use super::consumer::ConsumerGroupConfig;
use super::consumer_records::{self, ConsumerGroupReplayer};
use super::coordinator::{Groups, PersistedConsumerGroup, OFFSETS_TOPIC};
use super::records::{self, RecordKey};
use crate::clock::now_ms;
use crate::replication::Partition;

/// The groups `part`'s log holds and the number of records replayed.
/// `cfg_of` gives a consumer group's settings (broker defaults with its
/// group config overrides).
pub fn load_partition(
    part: &Partition,
    cfg_of: impl Fn(&str) -> ConsumerGroupConfig,
) -> (Groups, usize) {
    let mut groups = Groups::default();
    let mut replayer = ConsumerGroupReplayer::new();
    let p = part.tp.partition;
    let count = replay_log_records(part, OFFSETS_TOPIC, |origin, key, value| {
        if origin.control {
            if let (true, Some(commit)) = (origin.transactional, control_commit(key)) {
                let done = groups.txn_of(p).end(origin.producer_id, commit);
                materialize(&mut groups, done);
            }
            return;
        }
        let txn = (origin.transactional && origin.producer_id >= 0).then_some(origin.producer_id);
        replay(&mut groups, &mut replayer, p, txn, key, value)
    });
    groups.txn.retain(|_, t| !t.is_empty());
    for g in replayer.finish_with(Instant::now(), cfg_of) {
        let id = g.group_id().to_string();
        if groups
            .classic
            .get(&id)
            .is_some_and(|c| c.members.is_empty())
        {
            groups.classic.remove(&id);
        }
        // What was replayed is what the log holds: the diff baseline.
        if let Ok(recs) = consumer_records::consumer_group_records(&g) {
            let records = recs
                .into_iter()
                .filter_map(|(k, v)| v.map(|v| (k, v)))
                .collect();
            let members = g.members().map(|m| m.member_id.clone()).collect();
            groups
                .persisted
                .insert(id.clone(), PersistedConsumerGroup::new(records, members));
        }
        groups.consumer.insert(id, g);
    }
    (groups, count)
}

/// Where a replayed record came from: its batch's producer and flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RecordOrigin {
    /// The batch's producer id (-1: none).
    pub producer_id: i64,
    /// A transactional batch.
    pub transactional: bool,
    /// A control batch (a transaction marker).
    pub control: bool,
}

/// Feeds every record of `part`'s log, from its start to its end, to
/// `apply` as (key, value), in offset order, and returns how many there
/// were (Kafka's `CoordinatorLoaderImpl` read loop). `topic` names the log
/// in errors. A read or decode error ends the replay early, logged.
pub(crate) fn replay_log(
    part: &Partition,
    topic: &str,
    mut apply: impl FnMut(Option<&[u8]>, Option<&[u8]>),
) -> usize {
    replay_log_records(part, topic, |_, k, v| apply(k, v))
}

/// [`replay_log`] with each record's batch origin, control records
/// included (their key is the marker's version and type).
pub(crate) fn replay_log_records(
    part: &Partition,
    topic: &str,
    mut apply: impl FnMut(RecordOrigin, Option<&[u8]>, Option<&[u8]>),
) -> usize {
    let p = part.tp.partition;
    let mut count = 0usize;
    // As Kafka's loader: everything in the log, up to its end.
    let (mut offset, end) = part.read_log(|l| (l.start_offset(), l.end_offset()));
    while offset < end {
        let data = match part.read_local(offset, 1 << 20) {
            Ok(d) => d,
            Err(e) => {
                error!(partition = p, error = %e, "cannot read {topic}");
                break;
            }
        };
        let Some(slice) = data.slice else { break };
        let bytes = match slice.read() {
            Ok(b) => b,
            Err(e) => {
                error!(partition = p, error = %e, "cannot read {topic}");
                break;
            }
        };
        let mut buf = bytes;
        let mut last = offset;
        while !buf.is_empty() {
            // A compacted log is sparse (batches that lost records, empty
            // batches kept for producer state): move past the whole batch.
            if let Ok(h) = crate::protocol::batch::BatchHeader::parse(&buf) {
                last = last.max(h.last_offset());
            }
            let set = match RecordBatchDecoder::decode(&mut buf) {
                Ok(s) => s,
                Err(e) => {
                    error!(partition = p, error = %e, "undecodable batch in {topic}");
                    buf.clear();
                    break;
                }
            };
            for r in set.records {
                last = last.max(r.offset);
                count += 1;
                let origin = RecordOrigin {
                    producer_id: r.producer_id,
                    transactional: r.transactional,
                    control: r.control,
                };
                apply(origin, r.key.as_deref(), r.value.as_deref());
            }
        }
        if last < offset {
            break;
        }
        offset = last + 1;
    }
    count
}

/// The marker type of a control record's key (version, type): Some(true)
/// for COMMIT, Some(false) for ABORT, None for anything else.
fn control_commit(key: Option<&[u8]>) -> Option<bool> {
    let k = key?;
    let t = i16::from_be_bytes([*k.get(2)?, *k.get(3)?]);
    match t {
        0 => Some(false),
        1 => Some(true),
        _ => None,
    }
}

/// Makes a committed transaction's offsets the group's committed offsets
/// (Kafka's `replayEndTransactionMarker`); shared with the live path.
pub(crate) fn materialize(
    groups: &mut Groups,
    offsets: Vec<(super::txn_offsets::OffsetKey, records::OffsetValue)>,
) {
    for ((group, topic, partition), v) in offsets {
        if !groups.exists(&group) {
            groups
                .classic
                .insert(group.clone(), ClassicGroup::new(&group, now_ms()));
        }
        groups
            .offsets
            .entry(group)
            .or_default()
            .insert((topic, partition), v);
    }
}

fn replay(
    groups: &mut Groups,
    replayer: &mut ConsumerGroupReplayer,
    p: i32,
    txn: Option<i64>,
    key: Option<&[u8]>,
    value: Option<&[u8]>,
) {
    let Some(key) = key else { return };
    let key = match records::decode_key(key) {
        Ok(k) => k,
        Err(e) => {
            warn!(error = %e, "skipping undecodable {OFFSETS_TOPIC} key");
            return;
        }
    };
    let now = Instant::now();
    match key {
        RecordKey::Offset {
            group,
            topic,
            partition,
        } => match value {
            None => {
                if let Some(o) = groups.offsets.get_mut(&group) {
                    o.remove(&(topic, partition));
                }
            }
            Some(v) => match records::decode_offset_value(v) {
                Ok(v) => {
                    if !groups.exists(&group) {
                        // An offsets-only group lists as an empty classic group, as in Kafka.
                        groups
                            .classic
                            .insert(group.clone(), ClassicGroup::new(&group, now_ms()));
                    }
                    let key = (group, topic, partition);
                    match txn {
                        // Pending until its producer's marker (KIP-98).
                        Some(pid) => groups.txn_of(p).add(pid, key, v),
                        None => {
                            groups.txn_of(p).plain_commit(&key);
                            let (group, topic, partition) = key;
                            groups
                                .offsets
                                .entry(group)
                                .or_default()
                                .insert((topic, partition), v);
                        }
                    }
                }
                Err(e) => warn!(error = %e, "skipping undecodable offset value"),
            },
        },
        RecordKey::GroupMetadata { group } => match value {
            None => {
                groups.remove(&group);
            }
            Some(v) => match records::decode_group_value(v) {
                Ok(v) => groups
                    .classic
                    .entry(group.clone())
                    .or_insert_with(|| ClassicGroup::new(&group, now_ms()))
                    .restore(v, now),
                Err(e) => warn!(error = %e, "skipping undecodable group metadata"),
            },
        },
        other => {
            if let Err(e) = replayer.apply(&other, value) {
                warn!(error = %e, "skipping undecodable consumer group record");
            }
        }
    }
}
