//! Broker scaling decisions, pure so every case is unit-tested: which replicas move off
//! the brokers a scale-down removes (and whether it must be refused), and the balancing
//! reassignment after a scale-up.
//!
//! Replicas are placed by replica count (least loaded first), a partition's preferred
//! leader (its first replica) by preferred-leader count, never two replicas of one
//! partition on one broker, and, when brokers report `broker.rack`, on a rack the
//! partition's other replicas do not use when one is free.

use super::view::PartitionView;
use std::collections::{BTreeMap, BTreeSet};

/// One partition's move.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Move {
    /// Topic.
    pub topic: String,
    /// Partition index.
    pub partition: i32,
    /// Its replicas now (the first is the preferred leader).
    pub from: Vec<i32>,
    /// Its replicas after the move.
    pub to: Vec<i32>,
    /// Why.
    pub reason: String,
}

impl Move {
    /// `topic-partition`.
    pub fn name(&self) -> String {
        format!("{}-{}", self.topic, self.partition)
    }
}

/// What scaling shows in status: the moves, and where it stands.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ScaleStatus {
    /// The moves of a drain or rebalance (submitted or about to be).
    pub moves: Vec<Move>,
    /// The rebalance plan's id, for manual approval.
    pub rebalance_id: Option<String>,
    /// Where scaling stands.
    pub scaling: Option<String>,
    /// Why a scale-down is refused.
    pub blocked: Option<String>,
    /// What this reconcile did to the replication throttle of the moves.
    pub throttle: super::throttle::ThrottleChange,
}

/// The message of a refused scale-down.
pub fn blocked_message(current: i32, desired: i32, blockers: &Blockers) -> String {
    let topics: Vec<String> = blockers
        .iter()
        .map(|(t, rf)| format!("{t} (replication factor {rf})"))
        .collect();
    format!(
        "scale-down from {current} to {desired} brokers refused: {} would have more replicas than brokers; lower their replication factor first. No broker is removed.",
        topics.join(", ")
    )
}

/// Topics whose replication factor exceeds the brokers that would remain: (topic, RF).
pub type Blockers = Vec<(String, usize)>;

/// The brokers a scale-down from `current` to `desired` brokers removes: the highest
/// ordinals (a broker's node id is its ordinal).
pub fn removed(current: i32, desired: i32) -> BTreeSet<i32> {
    (desired.max(0)..current.max(0)).collect()
}

/// Replica and preferred-leader counts of `brokers`, from `targets`.
#[derive(Default)]
struct Load {
    replicas: BTreeMap<i32, usize>,
    leaders: BTreeMap<i32, usize>,
}

impl Load {
    fn of(brokers: &[i32], targets: &[Vec<i32>]) -> Load {
        let mut l = Load {
            replicas: brokers.iter().map(|b| (*b, 0)).collect(),
            leaders: brokers.iter().map(|b| (*b, 0)).collect(),
        };
        for t in targets {
            for (i, b) in t.iter().enumerate() {
                if let Some(n) = l.replicas.get_mut(b) {
                    *n += 1;
                }
                if i == 0 {
                    if let Some(n) = l.leaders.get_mut(b) {
                        *n += 1;
                    }
                }
            }
        }
        l
    }
    fn add(&mut self, broker: i32, leader: bool, delta: isize) {
        let bump = |m: &mut BTreeMap<i32, usize>| {
            if let Some(n) = m.get_mut(&broker) {
                *n = n.saturating_add_signed(delta);
            }
        };
        bump(&mut self.replicas);
        if leader {
            bump(&mut self.leaders);
        }
    }
}

/// Whether placing a replica on `candidate` next to `others` keeps racks distinct, as
/// far as racks are known (a broker without a rack never conflicts).
fn rack_free(racks: &BTreeMap<i32, String>, others: &[i32], candidate: i32) -> bool {
    match racks.get(&candidate) {
        None => true,
        Some(r) => others.iter().all(|o| racks.get(o) != Some(r)),
    }
}

/// The plan that moves every replica off `removing` onto `remaining`, or the topics
/// whose replication factor exceeds `remaining.len()` (then nothing may be removed).
/// Each replica on a removed broker is replaced in place (so a preferred leader's
/// replacement becomes the preferred leader) by the least-loaded remaining broker not
/// already in the partition, preferring a rack the partition does not use yet.
pub fn drain_plan(
    partitions: &[PartitionView],
    removing: &BTreeSet<i32>,
    remaining: &[i32],
    racks: &BTreeMap<i32, String>,
) -> Result<Vec<Move>, Blockers> {
    let mut blockers: BTreeMap<String, usize> = BTreeMap::new();
    for p in partitions {
        if p.replicas.len() > remaining.len() {
            let rf = blockers.entry(p.topic.clone()).or_default();
            *rf = (*rf).max(p.replicas.len());
        }
    }
    if !blockers.is_empty() {
        return Err(blockers.into_iter().collect());
    }
    let mut sorted: Vec<&PartitionView> = partitions.iter().collect();
    sorted.sort_by(|a, b| (&a.topic, a.partition).cmp(&(&b.topic, b.partition)));
    let mut to: Vec<Vec<i32>> = sorted.iter().map(|p| p.replicas.clone()).collect();
    let mut load = Load::of(remaining, &to);
    let moving: Vec<bool> = sorted
        .iter()
        .map(|p| p.replicas.iter().any(|r| removing.contains(r)))
        .collect();
    for (k, t) in to.iter_mut().enumerate() {
        if !moving[k] {
            continue;
        }
        for i in 0..t.len() {
            if !removing.contains(&t[i]) {
                continue;
            }
            let others: Vec<i32> = t
                .iter()
                .enumerate()
                .filter(|(j, b)| *j != i && !removing.contains(b))
                .map(|(_, b)| *b)
                .collect();
            let leader = i == 0;
            let pick = remaining
                .iter()
                .filter(|b| !t.contains(b))
                .min_by_key(|b| {
                    (
                        !rack_free(racks, &others, **b),
                        if leader { load.leaders[*b] } else { 0 },
                        load.replicas[*b],
                        if leader { 0 } else { load.leaders[*b] },
                        **b,
                    )
                })
                .copied();
            // (RF <= remaining.len() and the others are distinct, so one is free.)
            let Some(pick) = pick else { continue };
            t[i] = pick;
            load.add(pick, leader, 1);
        }
    }
    // Moving partitions may also change their order, to even out preferred leaders.
    balance_leaders(&mut to, &mut load, remaining, |k| moving[k]);
    let moves = sorted
        .iter()
        .zip(to)
        .zip(moving)
        .filter(|(_, moving)| *moving)
        .map(|((p, to), _)| {
            let gone: Vec<String> = p
                .replicas
                .iter()
                .filter(|r| removing.contains(r))
                .map(|r| r.to_string())
                .collect();
            Move {
                topic: p.topic.clone(),
                partition: p.partition,
                from: p.replicas.clone(),
                to,
                reason: format!(
                    "scale-down: broker(s) {} will be removed, so their replicas move first",
                    gone.join(",")
                ),
            }
        })
        .collect();
    Ok(moves)
}

/// Whether every partition already lives only on `remaining` brokers (the drain is done).
pub fn drained(partitions: &[PartitionView], removing: &BTreeSet<i32>) -> bool {
    partitions
        .iter()
        .all(|p| !p.replicas.iter().any(|r| removing.contains(r)))
}

/// The reassignment that balances `brokers`, topic by topic: a topic's replicas move
/// from its most- to its least-loaded broker until its replica counts differ by at most
/// one (as far as the
/// one-replica-per-broker and rack rules allow), then replicas are reordered so that
/// preferred-leader counts differ by at most one too. Partitions with a replica outside
/// `brokers` are left alone. Empty for a balanced cluster.
pub fn balance_plan(
    partitions: &[PartitionView],
    brokers: &[i32],
    racks: &BTreeMap<i32, String>,
) -> Vec<Move> {
    if brokers.is_empty() {
        return Vec::new();
    }
    let mut sorted: Vec<&PartitionView> = partitions
        .iter()
        .filter(|p| p.replicas.iter().all(|r| brokers.contains(r)))
        .collect();
    sorted.sort_by(|a, b| (&a.topic, a.partition).cmp(&(&b.topic, b.partition)));
    let mut to: Vec<Vec<i32>> = sorted.iter().map(|p| p.replicas.clone()).collect();
    let mut global = Load::of(brokers, &to);
    // Each topic on its own (so every topic spreads over the brokers), ties broken
    // towards the globally least-loaded broker.
    let mut start = 0;
    while start < sorted.len() {
        let topic = &sorted[start].topic;
        let end = start
            + sorted[start..]
                .iter()
                .take_while(|p| &p.topic == topic)
                .count();
        let group = &mut to[start..end];
        let original: Vec<&Vec<i32>> = sorted[start..end].iter().map(|p| &p.replicas).collect();
        let mut load = Load::of(brokers, group);
        balance_replicas(group, &original, &mut load, &mut global, brokers, racks);
        balance_leaders(group, &mut load, brokers, |_| true);
        start = end;
    }

    sorted
        .iter()
        .zip(to)
        .filter(|(p, t)| &p.replicas != t)
        .map(|(p, t)| {
            let added: Vec<String> = t
                .iter()
                .filter(|b| !p.replicas.contains(b))
                .map(|b| b.to_string())
                .collect();
            let reason = if added.is_empty() {
                "rebalance: preferred leader moves to balance leadership".to_string()
            } else {
                format!(
                    "rebalance: onto less-loaded broker(s) {} to even out replica counts",
                    added.join(",")
                )
            };
            Move {
                topic: p.topic.clone(),
                partition: p.partition,
                from: p.replicas.clone(),
                to: t,
                reason,
            }
        })
        .collect()
}

/// Moves replicas of one topic's partitions (`to`, `original` their current lists)
/// from its most- to its least-loaded broker (by `load`, ties by `global`) until its
/// counts differ by at most one, as far as the one-replica-per-broker and rack rules
/// allow.
fn balance_replicas(
    to: &mut [Vec<i32>],
    original: &[&Vec<i32>],
    load: &mut Load,
    global: &mut Load,
    brokers: &[i32],
    racks: &BTreeMap<i32, String>,
) {
    let total: usize = to.iter().map(Vec::len).sum();
    for _ in 0..=total {
        let mut order: Vec<i32> = brokers.to_vec();
        order.sort_by_key(|b| (load.replicas[b], global.replicas[b], *b));
        let mut moved = false;
        'pairs: for hi in order.iter().rev() {
            for lo in &order {
                if load.replicas[hi] <= load.replicas[lo] + 1 {
                    break;
                }
                // A partition on `hi` but not on `lo`, whose other replicas leave
                // `lo`'s rack free; prefer one not yet moved, then a non-leader slot.
                let cand = to
                    .iter()
                    .enumerate()
                    .filter_map(|(k, t)| {
                        let i = t.iter().position(|b| b == hi)?;
                        if t.contains(lo) {
                            return None;
                        }
                        let others: Vec<i32> = t.iter().copied().filter(|b| b != hi).collect();
                        if !rack_free(racks, &others, *lo) && racks.get(hi) != racks.get(lo) {
                            return None;
                        }
                        Some((t != original[k], i == 0, k, i))
                    })
                    .min();
                if let Some((_, leader, k, i)) = cand {
                    to[k][i] = *lo;
                    for l in [&mut *load, &mut *global] {
                        l.add(*hi, leader, -1);
                        l.add(*lo, leader, 1);
                    }
                    moved = true;
                    break 'pairs;
                }
            }
        }
        if !moved {
            break;
        }
    }
}

/// Reorders replicas of the partitions `movable` allows (by index into `to`) so that
/// preferred-leader counts differ by at most one where the replica sets permit: a
/// partition led by the most-led broker gets a less-led replica of its own first.
fn balance_leaders(
    to: &mut [Vec<i32>],
    load: &mut Load,
    brokers: &[i32],
    movable: impl Fn(usize) -> bool,
) {
    for _ in 0..=to.len() {
        let mut order: Vec<i32> = brokers.to_vec();
        order.sort_by_key(|b| (load.leaders[b], *b));
        let mut moved = false;
        'lead: for hi in order.iter().rev() {
            for lo in &order {
                if load.leaders[hi] <= load.leaders[lo] + 1 {
                    break;
                }
                if let Some((k, i)) = to.iter().enumerate().find_map(|(k, t)| {
                    (movable(k) && t.first() == Some(hi))
                        .then(|| t.iter().position(|b| b == lo))
                        .flatten()
                        .map(|i| (k, i))
                }) {
                    to[k].swap(0, i);
                    load.add(*hi, true, -1);
                    load.add(*lo, true, 1);
                    // (add counts the replica too: undo that)
                    load.add(*hi, false, 1);
                    load.add(*lo, false, -1);
                    moved = true;
                    break 'lead;
                }
            }
        }
        if !moved {
            break;
        }
    }
}

/// The reassignment that gives every partition of `topic` `rf` replicas on `brokers`:
/// an increase adds the least-loaded brokers (by replicas in `all`, a rack the partition
/// does not use first), a decrease drops the most-loaded replicas other than the
/// preferred leader. Refused (the message) when `rf` exceeds the brokers.
pub fn replication_factor_plan(
    topic: &str,
    rf: usize,
    all: &[PartitionView],
    brokers: &[i32],
    racks: &BTreeMap<i32, String>,
) -> Result<Vec<Move>, String> {
    if rf == 0 || rf > brokers.len() {
        return Err(format!(
            "replication factor {rf} of topic {topic} cannot be placed on the {} registered broker(s)",
            brokers.len()
        ));
    }
    let targets: Vec<Vec<i32>> = all.iter().map(|p| p.replicas.clone()).collect();
    let mut load = Load::of(brokers, &targets);
    let mut parts: Vec<&PartitionView> = all.iter().filter(|p| p.topic == topic).collect();
    parts.sort_by_key(|p| p.partition);
    let mut moves = Vec::new();
    for p in parts {
        let mut to = p.replicas.clone();
        while to.len() < rf {
            let pick = brokers
                .iter()
                .filter(|b| !to.contains(b))
                .min_by_key(|b| (!rack_free(racks, &to, **b), load.replicas[*b], **b))
                .copied();
            let Some(pick) = pick else { break };
            to.push(pick);
            load.add(pick, false, 1);
        }
        while to.len() > rf {
            let Some((i, b)) = to
                .iter()
                .enumerate()
                .skip(1)
                .max_by_key(|(i, b)| (load.replicas.get(b).copied().unwrap_or(usize::MAX), *i))
                .map(|(i, b)| (i, *b))
            else {
                break;
            };
            to.remove(i);
            load.add(b, false, -1);
        }
        if to != p.replicas {
            moves.push(Move {
                topic: p.topic.clone(),
                partition: p.partition,
                from: p.replicas.clone(),
                reason: format!(
                    "replication factor {} -> {rf} (KafkaTopic spec.replicas)",
                    p.replicas.len()
                ),
                to,
            });
        }
    }
    Ok(moves)
}

/// A short stable id of a plan (FNV-1a of its moves), for approving exactly the plan a
/// user reviewed: a changed plan has another id.
pub fn plan_id(moves: &[Move]) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for m in moves {
        let s = format!("{}:{:?}>{:?};", m.name(), m.from, m.to);
        for b in s.bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    format!("{:08x}", h >> 32)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn part(topic: &str, partition: i32, replicas: &[i32]) -> PartitionView {
        PartitionView {
            topic: topic.into(),
            partition,
            leader: replicas.first().copied(),
            replicas: replicas.to_vec(),
            isr: replicas.to_vec(),
            min_isr: 1,
        }
    }

    /// Applies `moves` to `parts`.
    pub(crate) fn after(parts: &[PartitionView], moves: &[Move]) -> Vec<PartitionView> {
        parts
            .iter()
            .map(|p| {
                let mut p = p.clone();
                if let Some(m) = moves
                    .iter()
                    .find(|m| m.topic == p.topic && m.partition == p.partition)
                {
                    assert_eq!(m.from, p.replicas);
                    p.replicas = m.to.clone();
                }
                p
            })
            .collect()
    }

    fn counts(parts: &[PartitionView], brokers: &[i32]) -> (Vec<usize>, Vec<usize>) {
        let l = Load::of(
            brokers,
            &parts.iter().map(|p| p.replicas.clone()).collect::<Vec<_>>(),
        );
        (
            l.replicas.values().copied().collect(),
            l.leaders.values().copied().collect(),
        )
    }

    fn spread(v: &[usize]) -> usize {
        v.iter().max().unwrap_or(&0) - v.iter().min().unwrap_or(&0)
    }

    /// RF=2, 8 partitions on brokers 0..4, as Kafka's round robin places them.
    pub(crate) fn four_brokers() -> Vec<PartitionView> {
        (0..8)
            .map(|i| part("t", i, &[i % 4, (i + 1) % 4]))
            .collect()
    }

    #[test]
    fn removed_are_the_highest_ordinals() {
        assert_eq!(removed(4, 2), [2, 3].into());
        assert!(removed(3, 3).is_empty());
        assert!(removed(2, 3).is_empty());
    }

    #[test]
    fn drain_keeps_rf_and_leaves_removed_brokers_empty() {
        let parts = four_brokers();
        let gone = removed(4, 2);
        let moves = drain_plan(&parts, &gone, &[0, 1], &BTreeMap::new()).expect("plan");
        let done = after(&parts, &moves);
        for (p, d) in parts.iter().zip(&done) {
            assert_eq!(p.replicas.len(), d.replicas.len(), "RF kept: {d:?}");
            let distinct: BTreeSet<_> = d.replicas.iter().collect();
            assert_eq!(distinct.len(), d.replicas.len(), "no duplicate: {d:?}");
            assert!(!d.replicas.iter().any(|r| gone.contains(r)), "{d:?}");
        }
        assert!(drained(&done, &gone));
        assert!(!drained(&parts, &gone));
        // Only partitions that touched brokers 2 and 3 move.
        let touched = parts
            .iter()
            .filter(|p| p.replicas.iter().any(|r| gone.contains(r)))
            .count();
        assert_eq!(moves.len(), touched);
        let (replicas, leaders) = counts(&done, &[0, 1]);
        assert_eq!(replicas, [8, 8]);
        assert!(spread(&leaders) <= 1, "{leaders:?}");
        assert!(moves[0].reason.contains("scale-down"), "{:?}", moves[0]);
        // Idempotent: nothing left to move once drained.
        assert_eq!(
            drain_plan(&done, &gone, &[0, 1], &BTreeMap::new()),
            Ok(vec![])
        );
    }

    #[test]
    fn drain_balances_over_three_remaining() {
        let parts: Vec<_> = (0..10)
            .map(|i| part("t", i, &[i % 5, (i + 1) % 5, (i + 2) % 5]))
            .collect();
        let moves = drain_plan(&parts, &removed(5, 3), &[0, 1, 2], &BTreeMap::new()).expect("plan");
        let done = after(&parts, &moves);
        let (replicas, leaders) = counts(&done, &[0, 1, 2]);
        assert_eq!(replicas, [10, 10, 10]);
        assert!(spread(&leaders) <= 1, "{leaders:?}");
    }

    #[test]
    fn drain_refused_when_rf_exceeds_remaining() {
        let parts = vec![
            part("a", 0, &[0, 1]),
            part("a", 1, &[1, 0]),
            part("b", 0, &[0]),
            part("c", 0, &[0, 1, 2]),
        ];
        assert_eq!(
            drain_plan(&parts, &removed(3, 1), &[0], &BTreeMap::new()),
            Err(vec![("a".to_string(), 2), ("c".to_string(), 3)])
        );
    }

    #[test]
    fn drain_respects_racks() {
        // Racks: 0,1 in "x"; 2,3 in "y"; 4 (removed) in "y". Partition [4,0] must
        // go to rack "y" (2 or 3), not onto 1 beside 0.
        let racks: BTreeMap<i32, String> = [(0, "x"), (1, "x"), (2, "y"), (3, "y"), (4, "y")]
            .into_iter()
            .map(|(b, r)| (b, r.to_string()))
            .collect();
        let parts = vec![part("t", 0, &[4, 0]), part("t", 1, &[0, 4])];
        let moves = drain_plan(&parts, &removed(5, 4), &[0, 1, 2, 3], &racks).expect("plan");
        for m in &moves {
            let r: BTreeSet<_> = m.to.iter().map(|b| &racks[b]).collect();
            assert_eq!(r.len(), 2, "{m:?}");
        }
    }

    #[test]
    fn balance_after_scale_up() {
        // 3 brokers, RF=2, 6 partitions; broker 3 is new and empty.
        let parts: Vec<_> = (0..6)
            .map(|i| part("t", i, &[i % 3, (i + 1) % 3]))
            .collect();
        let brokers = [0, 1, 2, 3];
        let moves = balance_plan(&parts, &brokers, &BTreeMap::new());
        assert!(!moves.is_empty());
        let done = after(&parts, &moves);
        let (replicas, leaders) = counts(&done, &brokers);
        assert!(spread(&replicas) <= 1, "{replicas:?}");
        assert!(spread(&leaders) <= 1, "{leaders:?}");
        assert!(replicas[3] >= 2, "broker 3 gets replicas: {replicas:?}");
        for (p, d) in parts.iter().zip(&done) {
            assert_eq!(p.replicas.len(), d.replicas.len());
            let distinct: BTreeSet<_> = d.replicas.iter().collect();
            assert_eq!(distinct.len(), d.replicas.len(), "{d:?}");
        }
        // Fewer moves than partitions: only what balancing needs.
        assert!(moves.len() <= 4, "{moves:?}");
        // Idempotent: the balanced result needs no further move.
        assert!(balance_plan(&done, &brokers, &BTreeMap::new()).is_empty());
    }

    #[test]
    fn balance_spreads_every_topic() {
        let mut parts: Vec<_> = (0..6)
            .map(|i| part("a", i, &[i % 3, (i + 1) % 3]))
            .collect();
        parts.extend((0..50).map(|i| part("b", i, &[i % 3, (i + 1) % 3])));
        let brokers = [0, 1, 2, 3];
        let moves = balance_plan(&parts, &brokers, &BTreeMap::new());
        let done = after(&parts, &moves);
        for topic in ["a", "b"] {
            let of: Vec<_> = done.iter().filter(|p| p.topic == topic).cloned().collect();
            let (replicas, leaders) = counts(&of, &brokers);
            assert!(spread(&replicas) <= 1, "{topic}: {replicas:?}");
            assert!(spread(&leaders) <= 1, "{topic}: {leaders:?}");
        }
        let (replicas, _) = counts(&done, &brokers);
        assert!(spread(&replicas) <= 2, "{replicas:?}");
        assert!(balance_plan(&done, &brokers, &BTreeMap::new()).is_empty());
    }

    #[test]
    fn balanced_cluster_has_an_empty_plan() {
        assert!(balance_plan(&four_brokers(), &[0, 1, 2, 3], &BTreeMap::new()).is_empty());
        assert!(balance_plan(&[], &[0, 1], &BTreeMap::new()).is_empty());
        // RF=1, 5 partitions on 2 brokers: 3 and 2 differ by one.
        let parts: Vec<_> = (0..5).map(|i| part("t", i, &[i % 2])).collect();
        assert!(balance_plan(&parts, &[0, 1], &BTreeMap::new()).is_empty());
    }

    #[test]
    fn balance_moves_leaders_by_reordering() {
        // Every partition led by 0: reordering alone balances leadership.
        let parts: Vec<_> = (0..4).map(|i| part("t", i, &[0, 1])).collect();
        let moves = balance_plan(&parts, &[0, 1], &BTreeMap::new());
        let done = after(&parts, &moves);
        let (replicas, leaders) = counts(&done, &[0, 1]);
        assert_eq!(replicas, [4, 4]);
        assert_eq!(leaders, [2, 2]);
        assert!(moves.iter().all(|m| m.reason.contains("preferred leader")));
    }

    #[test]
    fn replication_factor_plan_adds_and_removes() {
        let mut all: Vec<_> = (0..3).map(|i| part("t", i, &[i])).collect();
        all.push(part("other", 0, &[0, 1]));
        let moves =
            replication_factor_plan("t", 3, &all, &[0, 1, 2], &BTreeMap::new()).expect("plan");
        assert_eq!(moves.len(), 3);
        for (m, p) in moves.iter().zip(&all) {
            assert_eq!(m.to[0], p.replicas[0], "preferred leader kept");
            let d: BTreeSet<_> = m.to.iter().collect();
            assert_eq!(d.len(), 3);
        }
        let done = after(&all, &moves);
        assert!(
            replication_factor_plan("t", 3, &done, &[0, 1, 2], &BTreeMap::new())
                .expect("plan")
                .is_empty()
        );
        let down =
            replication_factor_plan("t", 1, &done, &[0, 1, 2], &BTreeMap::new()).expect("plan");
        for (m, p) in down.iter().zip(&all) {
            assert_eq!(m.to, p.replicas, "back to the preferred leader alone");
        }
        let err = replication_factor_plan("t", 4, &all, &[0, 1, 2], &BTreeMap::new())
            .expect_err("4 replicas on 3 brokers");
        assert!(err.contains("3 registered broker"), "{err}");
    }

    #[test]
    fn plan_id_is_stable_and_distinguishes() {
        let a = balance_plan(
            &[part("t", 0, &[0]), part("t", 1, &[0]), part("t", 2, &[0])],
            &[0, 1],
            &BTreeMap::new(),
        );
        assert_eq!(plan_id(&a), plan_id(&a.clone()));
        assert_ne!(plan_id(&a), plan_id(&[]));
        assert_eq!(plan_id(&a).len(), 8);
    }
}
