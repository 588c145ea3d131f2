//! Where new partition replicas go: only on live (unfenced, not shutting
//! down) brokers, spread across racks (`broker.rack`), leaders spread
//! round-robin. A pure function of the image and a start index (random per
//! request, as Kafka's placer starts at a random broker).

use std::collections::BTreeMap;

use crate::metadata::{ClusterImage, PartitionAssignment};

/// The brokers new replicas may go to, by id.
pub fn live_brokers(image: &ClusterImage) -> Vec<i32> {
    image
        .brokers
        .values()
        .filter(|b| b.usable())
        .map(|b| b.node_id)
        .collect()
}

/// The live brokers ordered so that neighbours are on different racks
/// when they can be: one from each rack in turn (racks and brokers in id
/// order; brokers without a rack form one rack of their own).
pub fn rack_alternated(image: &ClusterImage) -> Vec<i32> {
    let mut racks: BTreeMap<Option<&str>, Vec<i32>> = BTreeMap::new();
    for id in live_brokers(image) {
        let rack = image.brokers.get(&id).and_then(|b| b.rack.as_deref());
        racks.entry(rack).or_default().push(id);
    }
    let mut lists: Vec<std::collections::VecDeque<i32>> =
        racks.into_values().map(Into::into).collect();
    let mut out = Vec::new();
    while lists.iter().any(|l| !l.is_empty()) {
        for l in &mut lists {
            if let Some(b) = l.pop_front() {
                out.push(b);
            }
        }
    }
    out
}

/// Replicas for partitions `first..first + count` at replication factor
/// `rf`, or `None` when fewer than `rf` brokers are live. Partition `p`'s
/// leader is broker `(start + p) mod n` of the rack-alternated list, and
/// its followers the next ones, so a partition's replicas span as many
/// racks as there are. (Kafka's placer also varies which brokers share
/// partitions; this one does not yet.)
pub fn place(
    image: &ClusterImage,
    first: i32,
    count: i32,
    rf: usize,
    start: usize,
) -> Option<Vec<PartitionAssignment>> {
    let brokers = rack_alternated(image);
    let n = brokers.len();
    if rf == 0 || n < rf {
        return None;
    }
    Some(
        (first..first + count)
            .map(|p| {
                let lead = start.wrapping_add(p as usize) % n;
                let replicas = (0..rf).map(|r| brokers[(lead + r) % n]).collect();
                PartitionAssignment {
                    partition: p,
                    replicas,
                }
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metadata::MetadataRecord;
    use uuid::Uuid;

    fn image(brokers: &[(i32, Option<&str>, bool)]) -> ClusterImage {
        let mut img = ClusterImage::default();
        for (i, (id, rack, live)) in brokers.iter().enumerate() {
            img.last_applied = i as u64 + 1;
            img.apply(&MetadataRecord::RegisterBroker {
                node_id: *id,
                incarnation_id: Uuid::new_v4(),
                endpoints: vec![],
                rack: rack.map(str::to_string),
                features: Default::default(),
            });
            if *live {
                img.apply(&MetadataRecord::ChangeBroker {
                    node_id: *id,
                    epoch: i as i64 + 1,
                    fenced: false,
                    shutting_down: false,
                });
            }
        }
        img
    }

    #[test]
    fn replicas_are_distinct_live_and_leaders_spread() {
        let img = image(&[
            (1, None, true),
            (2, None, true),
            (3, None, false),
            (4, None, true),
        ]);
        assert!(place(&img, 0, 1, 4, 0).is_none(), "only 3 live");
        let a = place(&img, 0, 30, 3, 7).expect("placed");
        let mut leaders = BTreeMap::new();
        for x in &a {
            let mut r = x.replicas.clone();
            r.sort_unstable();
            r.dedup();
            assert_eq!(r.len(), 3);
            assert!(!x.replicas.contains(&3), "never on a fenced broker");
            *leaders.entry(x.replicas[0]).or_insert(0) += 1;
        }
        assert_eq!(
            leaders.values().copied().collect::<Vec<_>>(),
            vec![10, 10, 10]
        );
    }

    #[test]
    fn replicas_span_racks() {
        let img = image(&[
            (1, Some("a"), true),
            (2, Some("a"), true),
            (3, Some("b"), true),
            (4, Some("b"), true),
            (5, Some("c"), true),
            (6, Some("c"), true),
        ]);
        for x in place(&img, 0, 12, 3, 0).expect("placed") {
            let racks: std::collections::BTreeSet<_> = x
                .replicas
                .iter()
                .map(|r| img.brokers[r].rack.clone())
                .collect();
            assert_eq!(racks.len(), 3, "{:?}", x.replicas);
        }
    }
}
