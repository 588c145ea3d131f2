//! Server-side partition assignors of the KIP-848 consumer group protocol
//! (`group.protocol=consumer`).
//!
//! These match the behaviour of Kafka 4.0's group coordinator:
//!
//! * [`UniformAssignor`] (`"uniform"`, the default) — Kafka's
//!   `assignor/UniformAssignor.java`, which picks
//!   `UniformHomogeneousAssignmentBuilder` when every member subscribes to
//!   the same topics and `UniformHeterogeneousAssignmentBuilder` otherwise.
//!   Both put balance first (member sizes differ by at most one where the
//!   subscriptions allow it) and stickiness second (a member keeps as much
//!   of its previous *target* assignment as balance permits).
//! * [`RangeAssignor`] (`"range"`) — Kafka's server-side
//!   `assignor/RangeAssignor.java`: per topic, the subscribers sorted
//!   (static members first by instance id, then the rest by member id)
//!   receive contiguous ranges; the first `partitions % subscribers` get one
//!   extra. With identical subscriptions and equal partition counts this
//!   co-partitions the topics. Like Kafka's, it is not sticky beyond that
//!   ordering (static instance ids keep their ranges across restarts).
//!
//! Pure logic: no I/O, deterministic output for a given input.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use uuid::Uuid;

use super::consumer::TopicMeta;

/// A member as the assignor sees it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AssignorMember {
    pub member_id: String,
    /// `group.instance.id` of a static member; the range assignor orders
    /// static members by it (Kafka's `RangeAssignor.sortMemberIds`).
    pub instance_id: Option<String>,
    pub rack_id: Option<String>,
    /// Topic names the member is subscribed to (regexes already resolved).
    pub subscribed: BTreeSet<String>,
    /// The member's previous *target* assignment (what Kafka's
    /// `TargetAssignmentBuilder` hands the assignor), used for stickiness.
    pub current: BTreeMap<Uuid, Vec<i32>>,
}

/// The result of an assignment: member id → topic id → sorted partitions.
/// Every member given to [`Assignor::assign`] has an entry, possibly empty.
pub type GroupAssignment = BTreeMap<String, BTreeMap<Uuid, Vec<i32>>>;

pub trait Assignor {
    fn name(&self) -> &'static str;
    /// `topics` is the group's subscription metadata: name → topic. Topics a
    /// member subscribes to that are absent here are ignored.
    fn assign(
        &self,
        members: &[AssignorMember],
        topics: &BTreeMap<String, TopicMeta>,
    ) -> GroupAssignment;
}

/// The assignors this broker supports, in the order Kafka lists its
/// defaults (`group.consumer.assignors = uniform,range`).
pub const SUPPORTED_ASSIGNORS: [&str; 2] = ["uniform", "range"];

/// Looks an assignor up by the name a client sends in
/// `ConsumerGroupHeartbeat.ServerAssignor`.
pub fn assignor(name: &str) -> Option<Box<dyn Assignor + Send + Sync>> {
    match name {
        "uniform" => Some(Box::new(UniformAssignor)),
        "range" => Some(Box::new(RangeAssignor)),
        _ => None,
    }
}

type Tp = (Uuid, i32);

/// Resolves a member's subscribed names to the ids of topics that exist,
/// with their partition counts.
fn resolve(subscribed: &BTreeSet<String>, topics: &BTreeMap<String, TopicMeta>) -> BTreeSet<Uuid> {
    subscribed
        .iter()
        .filter_map(|name| topics.get(name))
        .filter(|t| t.partitions > 0)
        .map(|t| t.id)
        .collect()
}

fn partition_counts(topics: &BTreeMap<String, TopicMeta>) -> HashMap<Uuid, i32> {
    topics.values().map(|t| (t.id, t.partitions)).collect()
}

fn empty_result(members: &[AssignorMember]) -> GroupAssignment {
    members
        .iter()
        .map(|m| (m.member_id.clone(), BTreeMap::new()))
        .collect()
}

fn to_output(assigned: &[Vec<Tp>], members: &[AssignorMember]) -> GroupAssignment {
    let mut out = GroupAssignment::new();
    for (idx, member) in members.iter().enumerate() {
        let mut map: BTreeMap<Uuid, Vec<i32>> = BTreeMap::new();
        for &(topic, partition) in &assigned[idx] {
            map.entry(topic).or_default().push(partition);
        }
        for partitions in map.values_mut() {
            partitions.sort_unstable();
            partitions.dedup();
        }
        out.insert(member.member_id.clone(), map);
    }
    out
}

/// Each member's previous partitions that are still valid for it: the topic
/// exists, the member still subscribes to it, the partition is in range and
/// no earlier member (in slice order) already claimed it.
fn retained_partitions(
    members: &[AssignorMember],
    subscriptions: &[BTreeSet<Uuid>],
    counts: &HashMap<Uuid, i32>,
) -> Vec<Vec<Tp>> {
    let mut claimed: BTreeSet<Tp> = BTreeSet::new();
    members
        .iter()
        .enumerate()
        .map(|(idx, member)| {
            let mut kept = Vec::new();
            for (topic, partitions) in &member.current {
                if !subscriptions[idx].contains(topic) {
                    continue;
                }
                let Some(&count) = counts.get(topic) else {
                    continue;
                };
                let mut sorted: Vec<i32> = partitions.clone();
                sorted.sort_unstable();
                sorted.dedup();
                for p in sorted {
                    if p >= 0 && p < count && claimed.insert((*topic, p)) {
                        kept.push((*topic, p));
                    }
                }
            }
            kept
        })
        .collect()
}

/// `"uniform"`: balanced first, sticky second.
#[derive(Debug, Clone, Copy, Default)]
pub struct UniformAssignor;

impl Assignor for UniformAssignor {
    fn name(&self) -> &'static str {
        "uniform"
    }

    fn assign(
        &self,
        members: &[AssignorMember],
        topics: &BTreeMap<String, TopicMeta>,
    ) -> GroupAssignment {
        if members.is_empty() {
            return GroupAssignment::new();
        }
        let subscriptions: Vec<BTreeSet<Uuid>> = members
            .iter()
            .map(|m| resolve(&m.subscribed, topics))
            .collect();
        let counts = partition_counts(topics);
        let homogeneous = subscriptions.windows(2).all(|w| w[0] == w[1]);
        let assigned = if homogeneous {
            if subscriptions[0].is_empty() {
                return empty_result(members);
            }
            uniform_homogeneous(members, &subscriptions, &counts, topics)
        } else {
            uniform_heterogeneous(members, &subscriptions, &counts, topics)
        };
        to_output(&assigned, members)
    }
}

/// Topic ids in the order of their names (deterministic iteration).
fn topics_in_name_order(
    topics: &BTreeMap<String, TopicMeta>,
    wanted: &BTreeSet<Uuid>,
) -> Vec<Uuid> {
    topics
        .values()
        .filter(|t| wanted.contains(&t.id))
        .map(|t| t.id)
        .collect()
}

/// Kafka's `UniformHomogeneousAssignmentBuilder`: every member gets
/// `total / members` partitions and `total % members` of them one more;
/// members keep their previous partitions up to their quota, and the
/// partitions left over fill the members below quota.
///
/// Kafka hands the extra slots out in hash-map order; this gives them to
/// the members that already hold the most partitions, which never moves
/// more partitions than Kafka's choice would.
fn uniform_homogeneous(
    members: &[AssignorMember],
    subscriptions: &[BTreeSet<Uuid>],
    counts: &HashMap<Uuid, i32>,
    topics: &BTreeMap<String, TopicMeta>,
) -> Vec<Vec<Tp>> {
    let topic_order = topics_in_name_order(topics, &subscriptions[0]);
    let total: usize = topic_order
        .iter()
        .map(|t| counts.get(t).copied().unwrap_or(0).max(0) as usize)
        .sum();
    let n = members.len();
    let min_quota = total / n;
    let mut extra = total % n;

    let mut retained = retained_partitions(members, subscriptions, counts);
    // Members holding the most partitions get the extra slots first.
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&a, &b| {
        retained[b]
            .len()
            .cmp(&retained[a].len())
            .then_with(|| members[a].member_id.cmp(&members[b].member_id))
    });
    let mut quota = vec![min_quota; n];
    for &idx in &order {
        if extra == 0 {
            break;
        }
        quota[idx] += 1;
        extra -= 1;
    }
    let mut owned: BTreeSet<Tp> = BTreeSet::new();
    for idx in 0..n {
        retained[idx].truncate(quota[idx]);
        owned.extend(retained[idx].iter().copied());
    }
    let mut unassigned = topic_order.iter().flat_map(|&topic| {
        let count = counts.get(&topic).copied().unwrap_or(0);
        (0..count).map(move |p| (topic, p))
    });
    let mut unassigned_iter = std::iter::from_fn(|| unassigned.find(|tp| !owned.contains(tp)));
    // Fill the members below quota, in member order.
    let mut sorted: Vec<usize> = (0..n).collect();
    sorted.sort_by(|&a, &b| members[a].member_id.cmp(&members[b].member_id));
    for idx in sorted {
        while retained[idx].len() < quota[idx] {
            match unassigned_iter.next() {
                Some(tp) => retained[idx].push(tp),
                None => break,
            }
        }
    }
    retained
}

/// Kafka's `UniformHeterogeneousAssignmentBuilder`, simplified: keep the
/// previous partitions of still-subscribed topics, hand the unassigned
/// partitions (topics ordered by partitions per subscriber descending, then
/// subscriber count ascending, then id) to the least-loaded subscriber, then
/// repeatedly move partitions of each topic from its most-loaded owner to
/// its least-loaded subscriber while they differ by more than one (at most
/// 16 passes, as Kafka's `MAX_ITERATION_COUNT`).
fn uniform_heterogeneous(
    members: &[AssignorMember],
    subscriptions: &[BTreeSet<Uuid>],
    counts: &HashMap<Uuid, i32>,
    topics: &BTreeMap<String, TopicMeta>,
) -> Vec<Vec<Tp>> {
    let n = members.len();
    // Members in id order define the tie-breaking "member index".
    let mut index_order: Vec<usize> = (0..n).collect();
    index_order.sort_by(|&a, &b| members[a].member_id.cmp(&members[b].member_id));
    let mut rank = vec![0usize; n];
    for (r, &idx) in index_order.iter().enumerate() {
        rank[idx] = r;
    }

    let all_topics: BTreeSet<Uuid> = subscriptions.iter().flatten().copied().collect();
    let mut subscribers: HashMap<Uuid, Vec<usize>> = HashMap::new();
    for &idx in &index_order {
        for topic in &subscriptions[idx] {
            subscribers.entry(*topic).or_default().push(idx);
        }
    }
    let retained = retained_partitions(members, subscriptions, counts);
    // owner[topic][partition] = member index or usize::MAX.
    let mut owner: HashMap<Uuid, Vec<usize>> = all_topics
        .iter()
        .map(|t| {
            (
                *t,
                vec![usize::MAX; counts.get(t).copied().unwrap_or(0).max(0) as usize],
            )
        })
        .collect();
    let mut load = vec![0usize; n];
    for (idx, parts) in retained.iter().enumerate() {
        for &(topic, p) in parts {
            if let Some(owners) = owner.get_mut(&topic) {
                owners[p as usize] = idx;
                load[idx] += 1;
            }
        }
    }

    let mut topic_order = topics_in_name_order(topics, &all_topics);
    topic_order.sort_by(|a, b| {
        let (pa, sa) = (counts[a] as u64, subscribers[a].len() as u64);
        let (pb, sb) = (counts[b] as u64, subscribers[b].len() as u64);
        // pa/sa descending, via cross multiplication.
        (pb * sa).cmp(&(pa * sb)).then(sa.cmp(&sb)).then(a.cmp(b))
    });

    let least_loaded = |load: &[usize], subs: &[usize]| -> usize {
        let mut best = subs[0];
        for &m in subs {
            if (load[m], rank[m]) < (load[best], rank[best]) {
                best = m;
            }
        }
        best
    };

    // Assign the unassigned partitions.
    for topic in &topic_order {
        let subs = &subscribers[topic];
        let owners = owner
            .get_mut(topic)
            .expect("every subscribed topic has owners");
        for slot in owners.iter_mut() {
            if *slot == usize::MAX {
                let m = least_loaded(&load, subs);
                *slot = m;
                load[m] += 1;
            }
        }
    }

    // Balance.
    const MAX_ITERATION_COUNT: usize = 16;
    let movable: Vec<Uuid> = topic_order
        .iter()
        .copied()
        .filter(|t| subscribers[t].len() >= 2)
        .collect();
    for _ in 0..MAX_ITERATION_COUNT {
        let mut moved = 0usize;
        for topic in &movable {
            let subs = &subscribers[topic];
            let owners = owner
                .get_mut(topic)
                .expect("every subscribed topic has owners");
            loop {
                let least = least_loaded(&load, subs);
                // The most loaded subscriber that owns a partition of this topic.
                let most = subs
                    .iter()
                    .copied()
                    .filter(|&m| owners.contains(&m))
                    .max_by(|&a, &b| load[a].cmp(&load[b]).then(rank[b].cmp(&rank[a])));
                let Some(most) = most else { break };
                if load[most] <= load[least] + 1 {
                    break;
                }
                // Move its highest partition of this topic.
                let Some(p) = owners.iter().rposition(|&o| o == most) else {
                    break;
                };
                owners[p] = least;
                load[most] -= 1;
                load[least] += 1;
                moved += 1;
            }
        }
        if moved == 0 {
            break;
        }
    }

    let mut out = vec![Vec::new(); n];
    for topic in &topic_order {
        for (p, &m) in owner[topic].iter().enumerate() {
            if m != usize::MAX {
                out[m].push((*topic, p as i32));
            }
        }
    }
    out
}

/// `"range"`: contiguous ranges per topic, co-partitioned when possible.
#[derive(Debug, Clone, Copy, Default)]
pub struct RangeAssignor;

impl Assignor for RangeAssignor {
    fn name(&self) -> &'static str {
        "range"
    }

    fn assign(
        &self,
        members: &[AssignorMember],
        topics: &BTreeMap<String, TopicMeta>,
    ) -> GroupAssignment {
        if members.is_empty() {
            return GroupAssignment::new();
        }
        // Kafka's sortMemberIds: static members first, by instance id; then
        // dynamic members by member id.
        let mut sorted: Vec<usize> = (0..members.len()).collect();
        sorted.sort_by(|&a, &b| {
            let (ma, mb) = (&members[a], &members[b]);
            match (&ma.instance_id, &mb.instance_id) {
                (Some(ia), Some(ib)) => ia.cmp(ib).then_with(|| ma.member_id.cmp(&mb.member_id)),
                (Some(_), None) => std::cmp::Ordering::Less,
                (None, Some(_)) => std::cmp::Ordering::Greater,
                (None, None) => ma.member_id.cmp(&mb.member_id),
            }
        });
        let subscriptions: Vec<BTreeSet<Uuid>> = members
            .iter()
            .map(|m| resolve(&m.subscribed, topics))
            .collect();
        let mut assigned: Vec<Vec<Tp>> = vec![Vec::new(); members.len()];
        for topic in topics.values() {
            let subs: Vec<usize> = sorted
                .iter()
                .copied()
                .filter(|&idx| subscriptions[idx].contains(&topic.id))
                .collect();
            if subs.is_empty() || topic.partitions <= 0 {
                continue;
            }
            let n = subs.len() as i32;
            let min_quota = topic.partitions / n;
            let mut extra = topic.partitions % n;
            let mut next = 0;
            for idx in subs {
                let mut quota = min_quota;
                if extra > 0 {
                    quota += 1;
                    extra -= 1;
                }
                let end = (next + quota).min(topic.partitions);
                assigned[idx].extend((next..end).map(|p| (topic.id, p)));
                next = end;
            }
        }
        to_output(&assigned, members)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn topic(name: &str, n: u128, partitions: i32) -> (String, TopicMeta) {
        (
            name.to_string(),
            TopicMeta {
                id: Uuid::from_u128(n),
                name: name.to_string(),
                partitions,
            },
        )
    }

    fn member(id: &str, subs: &[&str]) -> AssignorMember {
        AssignorMember {
            member_id: id.to_string(),
            subscribed: subs.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        }
    }

    fn sizes(a: &GroupAssignment) -> Vec<usize> {
        a.values().map(|m| m.values().map(Vec::len).sum()).collect()
    }

    /// Every partition of every topic that has a subscriber is assigned
    /// exactly once, and only to a subscriber.
    fn assert_complete(
        a: &GroupAssignment,
        members: &[AssignorMember],
        topics: &BTreeMap<String, TopicMeta>,
    ) {
        let mut seen: BTreeSet<Tp> = BTreeSet::new();
        for m in members {
            for (t, ps) in &a[&m.member_id] {
                let name = &topics
                    .values()
                    .find(|x| x.id == *t)
                    .expect("known topic")
                    .name;
                assert!(
                    m.subscribed.contains(name),
                    "{} got unsubscribed {name}",
                    m.member_id
                );
                for p in ps {
                    assert!(seen.insert((*t, *p)), "partition {t}/{p} assigned twice");
                }
            }
        }
        for t in topics.values() {
            if members.iter().any(|m| m.subscribed.contains(&t.name)) {
                for p in 0..t.partitions {
                    assert!(seen.contains(&(t.id, p)), "{}-{p} unassigned", t.name);
                }
            }
        }
    }

    fn with_current(mut members: Vec<AssignorMember>, a: &GroupAssignment) -> Vec<AssignorMember> {
        for m in &mut members {
            m.current = a.get(&m.member_id).cloned().unwrap_or_default();
        }
        members
    }

    fn moved(before: &GroupAssignment, after: &GroupAssignment) -> usize {
        // Partitions whose owner changed (excluding ones that were unowned).
        let owner = |a: &GroupAssignment| -> BTreeMap<Tp, String> {
            a.iter()
                .flat_map(|(m, ts)| {
                    ts.iter()
                        .flat_map(move |(t, ps)| ps.iter().map(move |p| ((*t, *p), m.clone())))
                })
                .collect()
        };
        let (b, a) = (owner(before), owner(after));
        b.iter().filter(|(tp, m)| a.get(tp) != Some(m)).count()
    }

    #[test]
    fn lookup_by_name() {
        assert_eq!(assignor("uniform").map(|a| a.name()), Some("uniform"));
        assert_eq!(assignor("range").map(|a| a.name()), Some("range"));
        assert!(assignor("sticky").is_none());
    }

    #[test]
    fn uniform_homogeneous_is_balanced() {
        for (partitions, nmembers) in [(7, 3), (1, 4), (12, 5), (100, 7), (3, 3), (0, 2)] {
            let topics: BTreeMap<_, _> =
                [topic("a", 1, partitions), topic("b", 2, partitions / 2 + 1)]
                    .into_iter()
                    .collect();
            let members: Vec<_> = (0..nmembers)
                .map(|i| member(&format!("m{i}"), &["a", "b"]))
                .collect();
            let a = UniformAssignor.assign(&members, &topics);
            assert_eq!(a.len(), nmembers);
            assert_complete(&a, &members, &topics);
            let s = sizes(&a);
            let (max, min) = (s.iter().max().copied(), s.iter().min().copied());
            assert!(
                max.unwrap_or(0) - min.unwrap_or(0) <= 1,
                "{partitions}/{nmembers}: {s:?}"
            );
        }
    }

    #[test]
    fn uniform_homogeneous_join_moves_only_the_minimum() {
        let topics: BTreeMap<_, _> = [topic("t", 1, 12)].into_iter().collect();
        let three: Vec<_> = ["a", "b", "c"].iter().map(|m| member(m, &["t"])).collect();
        let first = UniformAssignor.assign(&three, &topics);
        assert_eq!(sizes(&first), vec![4, 4, 4]);

        // Stable when nothing changes.
        let again = UniformAssignor.assign(&with_current(three.clone(), &first), &topics);
        assert_eq!(again, first);

        // A fourth member joins: each of the three gives up exactly one.
        let mut four = with_current(three, &first);
        four.push(member("d", &["t"]));
        let second = UniformAssignor.assign(&four, &topics);
        assert_eq!(sizes(&second), vec![3, 3, 3, 3]);
        assert_eq!(moved(&first, &second), 3);
        for m in ["a", "b", "c"] {
            let kept: BTreeSet<_> = second[m][&Uuid::from_u128(1)].iter().collect();
            assert!(kept
                .iter()
                .all(|p| first[m][&Uuid::from_u128(1)].contains(p)));
        }

        // Uneven: 10 partitions over 3 (4,3,3), a fourth joins (3,3,2,2):
        // the minimum is the 2 partitions the newcomer needs.
        let topics: BTreeMap<_, _> = [topic("t", 1, 10)].into_iter().collect();
        let three: Vec<_> = ["a", "b", "c"].iter().map(|m| member(m, &["t"])).collect();
        let first = UniformAssignor.assign(&three, &topics);
        let mut four = with_current(three, &first);
        four.push(member("d", &["t"]));
        let second = UniformAssignor.assign(&four, &topics);
        assert_eq!(moved(&first, &second), 2);
        assert_eq!(second["d"].values().map(Vec::len).sum::<usize>(), 2);

        // A member leaves: only its partitions move.
        let remaining = with_current(
            vec![
                member("a", &["t"]),
                member("b", &["t"]),
                member("c", &["t"]),
            ],
            &second,
        );
        let third = UniformAssignor.assign(&remaining, &topics);
        let mut without_d = second.clone();
        without_d.remove("d");
        assert_eq!(moved(&without_d, &third), 0);
        assert_complete(&third, &remaining, &topics);
    }

    #[test]
    fn uniform_new_partitions_are_assigned_without_moving_others() {
        let mut topics: BTreeMap<_, _> = [topic("t", 1, 4)].into_iter().collect();
        let two: Vec<_> = ["a", "b"].iter().map(|m| member(m, &["t"])).collect();
        let first = UniformAssignor.assign(&two, &topics);
        topics.insert("t".into(), topic("t", 1, 8).1);
        let second = UniformAssignor.assign(&with_current(two.clone(), &first), &topics);
        assert_eq!(sizes(&second), vec![4, 4]);
        assert_eq!(moved(&first, &second), 0);
        assert_complete(&second, &two, &topics);
    }

    #[test]
    fn uniform_drops_unsubscribed_and_deleted_topics() {
        let topics: BTreeMap<_, _> = [topic("x", 1, 2), topic("y", 2, 2)].into_iter().collect();
        let mut m = member("a", &["y"]);
        m.current = [
            (Uuid::from_u128(1), vec![0, 1]),
            (Uuid::from_u128(9), vec![0]),
        ]
        .into_iter()
        .collect();
        let a = UniformAssignor.assign(&[m], &topics);
        assert_eq!(
            a["a"],
            [(Uuid::from_u128(2), vec![0, 1])].into_iter().collect()
        );
    }

    #[test]
    fn uniform_heterogeneous_is_complete_and_balanced_where_possible() {
        // a: t1 only; b: t1 + t2. Best: a gets t1 (3), b gets t2 (3).
        let topics: BTreeMap<_, _> = [topic("t1", 1, 3), topic("t2", 2, 3)].into_iter().collect();
        let members = vec![member("a", &["t1"]), member("b", &["t1", "t2"])];
        let a = UniformAssignor.assign(&members, &topics);
        assert_complete(&a, &members, &topics);
        assert_eq!(sizes(&a), vec![3, 3]);

        // Three members over overlapping subscriptions, many partitions.
        let topics: BTreeMap<_, _> = [topic("t1", 1, 10), topic("t2", 2, 7), topic("t3", 3, 5)]
            .into_iter()
            .collect();
        let members = vec![
            member("a", &["t1", "t2", "t3"]),
            member("b", &["t1", "t2"]),
            member("c", &["t1"]),
            member("d", &["t3"]),
        ];
        let first = UniformAssignor.assign(&members, &topics);
        assert_complete(&first, &members, &topics);
        let s = sizes(&first);
        assert!(
            s.iter().max().unwrap_or(&0) - s.iter().min().unwrap_or(&0) <= 1,
            "{s:?}"
        );

        // Sticky: the same input with the previous result is unchanged.
        let again = UniformAssignor.assign(&with_current(members.clone(), &first), &topics);
        assert_eq!(again, first);

        // A member subscribing to everything joins: balance restored with
        // fewer moves than a fresh assignment would need.
        let mut more = with_current(members.clone(), &first);
        more.push(member("e", &["t1", "t2", "t3"]));
        let second = UniformAssignor.assign(&more, &topics);
        assert_complete(&second, &more, &topics);
        let s = sizes(&second);
        assert!(
            s.iter().max().unwrap_or(&0) - s.iter().min().unwrap_or(&0) <= 1,
            "{s:?}"
        );
        // e has 22/5 ≈ 4 partitions: only those should have moved.
        assert_eq!(
            moved(&first, &second),
            second["e"].values().map(Vec::len).sum::<usize>()
        );
    }

    #[test]
    fn uniform_heterogeneous_unsatisfiable_balance_still_assigns_everything() {
        // Only a subscribes to the big topic: it must take all of it.
        let topics: BTreeMap<_, _> = [topic("big", 1, 9), topic("small", 2, 1)]
            .into_iter()
            .collect();
        let members = vec![member("a", &["big"]), member("b", &["small"])];
        let a = UniformAssignor.assign(&members, &topics);
        assert_complete(&a, &members, &topics);
        assert_eq!(sizes(&a), vec![9, 1]);
    }

    #[test]
    fn empty_inputs() {
        let topics: BTreeMap<_, _> = [topic("t", 1, 3)].into_iter().collect();
        assert!(UniformAssignor.assign(&[], &topics).is_empty());
        assert!(RangeAssignor.assign(&[], &topics).is_empty());
        // Subscribed to a topic that does not exist: member present, empty.
        let a = UniformAssignor.assign(&[member("a", &["nope"])], &topics);
        assert_eq!(a["a"], BTreeMap::new());
        let a = RangeAssignor.assign(&[member("a", &["nope"])], &topics);
        assert_eq!(a["a"], BTreeMap::new());
    }

    fn parts(a: &GroupAssignment, member: &str, topic: u128) -> Vec<i32> {
        a[member]
            .get(&Uuid::from_u128(topic))
            .cloned()
            .unwrap_or_default()
    }

    /// The example in Kafka's `RangeAssignor` javadoc: M0, M1; T1 and T2
    /// with three partitions each → M0: T1P0, T1P1, T2P0, T2P1; M1: T1P2, T2P2.
    #[test]
    fn range_kafka_documented_example() {
        let topics: BTreeMap<_, _> = [topic("T1", 1, 3), topic("T2", 2, 3)].into_iter().collect();
        let members = vec![member("M1", &["T1", "T2"]), member("M0", &["T1", "T2"])];
        let a = RangeAssignor.assign(&members, &topics);
        assert_eq!(parts(&a, "M0", 1), vec![0, 1]);
        assert_eq!(parts(&a, "M0", 2), vec![0, 1]);
        assert_eq!(parts(&a, "M1", 1), vec![2]);
        assert_eq!(parts(&a, "M1", 2), vec![2]);
    }

    /// The classic range example (ConsumerConfig docs / RangeAssignor):
    /// C0 subscribes t0, t1; C1 subscribes t0, t1; C2 only t1, 3 partitions
    /// each → t0 split over C0, C1; t1 over C0, C1, C2.
    #[test]
    fn range_heterogeneous_per_topic_ranges() {
        let topics: BTreeMap<_, _> = [topic("t0", 1, 3), topic("t1", 2, 3)].into_iter().collect();
        let members = vec![
            member("C0", &["t0", "t1"]),
            member("C1", &["t0", "t1"]),
            member("C2", &["t1"]),
        ];
        let a = RangeAssignor.assign(&members, &topics);
        assert_eq!(parts(&a, "C0", 1), vec![0, 1]);
        assert_eq!(parts(&a, "C1", 1), vec![2]);
        assert_eq!(parts(&a, "C2", 1), Vec::<i32>::new());
        assert_eq!(parts(&a, "C0", 2), vec![0]);
        assert_eq!(parts(&a, "C1", 2), vec![1]);
        assert_eq!(parts(&a, "C2", 2), vec![2]);
        assert_complete(&a, &members, &topics);
    }

    /// Static members sort before dynamic ones, by instance id, so a
    /// restarted static member (new member id) keeps its range.
    #[test]
    fn range_orders_static_members_by_instance_id() {
        let topics: BTreeMap<_, _> = [topic("t", 1, 4)].into_iter().collect();
        let mut zz = member("zz", &["t"]);
        zz.instance_id = Some("i0".into());
        let mut aa = member("aa", &["t"]);
        aa.instance_id = Some("i1".into());
        let dynamic = member("00", &["t"]);
        let a = RangeAssignor.assign(&[aa, dynamic, zz], &topics);
        assert_eq!(parts(&a, "zz", 1), vec![0, 1]);
        assert_eq!(parts(&a, "aa", 1), vec![2]);
        assert_eq!(parts(&a, "00", 1), vec![3]);
    }

    #[test]
    fn range_more_members_than_partitions() {
        let topics: BTreeMap<_, _> = [topic("t", 1, 2)].into_iter().collect();
        let members: Vec<_> = ["a", "b", "c"].iter().map(|m| member(m, &["t"])).collect();
        let a = RangeAssignor.assign(&members, &topics);
        assert_eq!(parts(&a, "a", 1), vec![0]);
        assert_eq!(parts(&a, "b", 1), vec![1]);
        assert!(a["c"].is_empty());
    }
}
