//! AlterPartitionReassignments / ListPartitionReassignments against a real broker (see
//! `common` for which). One broker: a move onto itself completes at once, and a move
//! onto a broker that does not exist is refused per partition.

#![allow(clippy::unwrap_used)]

mod common;

use common::{unique_topic, wait_for_topic, TestBroker};
use runnel_admin::{AdminError, NewTopic};

/// The per-partition Kafka error code of `r`, or 0.
fn code(r: &Result<(), AdminError>) -> i16 {
    match r {
        Ok(()) => 0,
        Err(e) => e
            .kafka_code()
            .unwrap_or_else(|| panic!("not a Kafka error: {e}")),
    }
}

#[tokio::test]
async fn alter_and_list_partition_reassignments() {
    let b = TestBroker::start().await;
    let admin = b.client().await.unwrap();
    let topic = unique_topic("reassign");
    admin
        .create_topic(NewTopic::new(&topic, 3, 1), false)
        .await
        .unwrap();
    wait_for_topic(&admin, &topic).await;
    let me = b.node_id;

    // Nothing in progress.
    let all = admin.list_partition_reassignments(None).await.unwrap();
    assert!(
        all.keys().all(|(t, _)| t != &topic),
        "unexpected reassignment: {all:?}"
    );

    let missing = unique_topic("reassign-missing");
    let p = |t: &str, i: i32| (t.to_string(), i);
    let results = admin
        .alter_partition_reassignments(&[
            // onto itself: accepted, done at once
            (p(&topic, 0), Some(vec![me])),
            // a broker that is not registered
            (p(&topic, 1), Some(vec![me, 999])),
            // the same broker twice
            (p(&topic, 2), Some(vec![me, me])),
            // no such partition / topic
            (p(&topic, 7), Some(vec![me])),
            (p(&missing, 0), Some(vec![me])),
        ])
        .await
        .unwrap();
    let got: Vec<((String, i32), i16)> =
        results.iter().map(|(k, r)| (k.clone(), code(r))).collect();
    assert_eq!(
        got,
        vec![
            (p(&topic, 0), 0),
            (p(&topic, 1), 39), // INVALID_REPLICA_ASSIGNMENT
            (p(&topic, 2), 39),
            (p(&topic, 7), 3), // UNKNOWN_TOPIC_OR_PARTITION
            (p(&missing, 0), 3),
        ],
        "{results:?}"
    );
    if let Err(e) = &results[&p(&topic, 1)] {
        assert_eq!(
            e.to_string().split(':').next(),
            Some("AlterPartitionReassignments failed")
        );
    }

    // Cancelling when nothing moves: NO_REASSIGNMENT_IN_PROGRESS.
    let results = admin
        .alter_partition_reassignments(&[(p(&topic, 0), None)])
        .await
        .unwrap();
    assert_eq!(code(&results[&p(&topic, 0)]), 85, "{results:?}");

    // Listing given partitions (one that does not exist too): none in progress.
    let listed = admin
        .list_partition_reassignments(Some(&[p(&topic, 0), p(&topic, 1), p(&topic, 9)]))
        .await
        .unwrap();
    assert!(listed.is_empty(), "{listed:?}");
    let t = wait_for_topic(&admin, &topic).await;
    assert_eq!(t.partitions[0].replicas, vec![me]);

    // An empty request does nothing.
    assert!(admin
        .alter_partition_reassignments(&[])
        .await
        .unwrap()
        .is_empty());
}
