//! What OffsetCommit and TxnOffsetCommit check the same way, as Kafka's
//! `OffsetMetadataManager` does for both: a classic group member's identity
//! (static instance, member id, generation), and each partition's entry
//! (the topic and partition exist, the metadata fits
//! `offset.metadata.max.bytes`) with its `__consumer_offsets` record.

use kafka_protocol::error::ResponseError;

use super::classic::ClassicGroup;
use super::coordinator::{GroupCoordinator, GroupRecord};
use super::records::OffsetValue;
use crate::metadata::ClusterImage;

/// Kafka's member checks of `ClassicGroup.validateOffsetCommit`: a static
/// instance held by another member is fenced, then the member must belong
/// to the group in its current generation.
pub fn check_classic_member(
    g: &ClassicGroup,
    member_id: &str,
    instance_id: Option<&str>,
    generation: i32,
) -> Result<(), i16> {
    if let Some(inst) = instance_id {
        if let Some(m) = g
            .members
            .values()
            .find(|m| m.instance_id.as_deref() == Some(inst))
        {
            if m.member_id != member_id {
                return Err(ResponseError::FencedInstanceId.code());
            }
        }
    }
    if !g.has_member(member_id) {
        return Err(ResponseError::UnknownMemberId.code());
    }
    if generation != g.generation {
        return Err(ResponseError::IllegalGeneration.code());
    }
    Ok(())
}

/// One partition of a commit request.
pub struct CommitPartition<'a> {
    /// The topic.
    pub topic: &'a str,
    /// The partition.
    pub partition: i32,
    /// The committed offset.
    pub offset: i64,
    /// The leader epoch of the committed offset (-1 when unknown).
    pub leader_epoch: i32,
    /// The metadata string, if any.
    pub metadata: Option<&'a str>,
}

/// Checks one partition's commit and builds its value and record:
/// UNKNOWN_TOPIC_OR_PARTITION for a partition the image does not hold,
/// OFFSET_METADATA_TOO_LARGE past `max_meta` bytes.
pub fn commit_entry(
    image: &ClusterImage,
    group: &str,
    p: &CommitPartition<'_>,
    commit_timestamp: i64,
    max_meta: usize,
) -> Result<(OffsetValue, GroupRecord), i16> {
    let known = image
        .topics
        .get(p.topic)
        .is_some_and(|t| usize::try_from(p.partition).is_ok_and(|i| i < t.partitions.len()));
    if !known {
        return Err(ResponseError::UnknownTopicOrPartition.code());
    }
    let metadata = p.metadata.unwrap_or_default().to_string();
    if metadata.len() > max_meta {
        return Err(ResponseError::OffsetMetadataTooLarge.code());
    }
    let v = OffsetValue {
        offset: p.offset,
        leader_epoch: p.leader_epoch,
        metadata,
        commit_timestamp,
        expire_timestamp: None,
        topic_id: None,
    };
    let r = GroupCoordinator::offset_record(group, p.topic, p.partition, Some(&v))?;
    Ok((v, r))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metadata::{MetadataRecord, PartitionAssignment};

    fn image() -> ClusterImage {
        let mut img = ClusterImage::default();
        img.apply(&MetadataRecord::CreateTopic {
            name: "t".into(),
            topic_id: uuid::Uuid::new_v4(),
            partitions: vec![PartitionAssignment {
                partition: 0,
                replicas: vec![1],
            }],
            configs: Default::default(),
        });
        img
    }

    fn part<'a>(topic: &'a str, partition: i32, metadata: Option<&'a str>) -> CommitPartition<'a> {
        CommitPartition {
            topic,
            partition,
            offset: 42,
            leader_epoch: 3,
            metadata,
        }
    }

    #[test]
    fn a_commit_entry_is_checked_as_kafka_checks_it() {
        let img = image();
        let (v, _) = commit_entry(&img, "g", &part("t", 0, Some("m")), 7, 10).expect("entry");
        assert_eq!(
            (v.offset, v.leader_epoch, v.metadata.as_str()),
            (42, 3, "m")
        );
        assert_eq!(v.commit_timestamp, 7);
        let unknown = ResponseError::UnknownTopicOrPartition.code();
        for bad in [
            part("nope", 0, None),
            part("t", 1, None),
            part("t", -1, None),
        ] {
            assert_eq!(
                commit_entry(&img, "g", &bad, 7, 10).map(|_| ()),
                Err(unknown)
            );
        }
        assert_eq!(
            commit_entry(&img, "g", &part("t", 0, Some("0123456789x")), 7, 10).map(|_| ()),
            Err(ResponseError::OffsetMetadataTooLarge.code())
        );
    }
}
