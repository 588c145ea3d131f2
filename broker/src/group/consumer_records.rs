//! Value codecs for the KIP-848 consumer group records of
//! `__consumer_offsets`, and the glue between them and
//! [`ConsumerGroup`]: snapshot records, member tombstones, and replay.
//!
//! The keys (record types 3–8) are [`RecordKey`] variants, encoded and
//! decoded by [`super::records`]; this module holds the values, in the
//! formats of Kafka's `group-coordinator/src/main/resources/common/message/`
//! schemas as the 4.1.1 jars compile them:
//!
//! | type | value                                         | fields |
//! |------|-----------------------------------------------|--------|
//! | 3    | `ConsumerGroupMetadataValue`                  | epoch, tag 0 `MetadataHash` (int64, KIP-1101, written when ≠ 0) |
//! | 4    | `ConsumerGroupPartitionMetadataValue`         | topics [id, name, partitions, racks per partition]; 4.1 writes only tombstones |
//! | 5    | `ConsumerGroupMemberMetadataValue`            | instance id, rack id, client id/host, topic names, regex, rebalance timeout, server assignor, tag 0 `ClassicMemberMetadata` |
//! | 6    | `ConsumerGroupTargetAssignmentMetadataValue`  | assignment epoch |
//! | 7    | `ConsumerGroupTargetAssignmentMemberValue`    | [topic id, partitions] |
//! | 8    | `ConsumerGroupCurrentMemberAssignmentValue`   | member epoch, previous epoch, state (int8), assigned and pending-revocation [topic id, partitions] |
//!
//! Every value is version **0** (the only valid version in 4.1.1) and
//! flexible: compact strings and arrays, a tagged-field section after every
//! struct. Unknown tagged fields are skipped on read (Kafka keeps them
//! opaque) and not written back.
//!
//! ## `ClassicMemberMetadata` (tag 0 of type 5)
//!
//! Kafka's generated code treats this nullable tagged struct peculiarly,
//! and we reproduce it byte for byte:
//!
//! * `None` (a member using the consumer protocol — what Kafka 4.1 writes
//!   for every such member) is written as tag 0 with the 1-byte payload
//!   `00` (a null marker);
//! * `Some` equal to the default struct (session timeout 0, no protocols) is
//!   not written at all, and an absent tag reads back as that default;
//! * any other `Some` is written as tag 0 with `01` followed by the struct.
//!
//! Decoding never panics and never allocates more than the input can hold.

use std::collections::BTreeMap;
use std::time::Instant;

use bytes::{BufMut, Bytes, BytesMut};
use indexmap::IndexMap;
use uuid::Uuid;

use super::consumer::{ConsumerGroup, ConsumerGroupConfig, ConsumerMember, MemberState};
use super::records::{
    encode_key, put_array_len, put_bytes, put_nullable_string, put_string, put_uvarint, Reader,
    RecordError, RecordKey,
};

/// The value version of every KIP-848 record: the only one Kafka 4.1.1
/// reads and writes.
pub const CONSUMER_VALUE_VERSION: i16 = 0;

/// Tag of `MetadataHash` in `ConsumerGroupMetadataValue`.
const TAG_METADATA_HASH: u32 = 0;
/// Tag of `ClassicMemberMetadata` in `ConsumerGroupMemberMetadataValue`.
const TAG_CLASSIC_MEMBER_METADATA: u32 = 0;

/// `MemberState` values as Kafka stores them (`modern/MemberState`).
pub const MEMBER_STATE_STABLE: i8 = 0;
/// See [`MEMBER_STATE_STABLE`].
pub const MEMBER_STATE_UNREVOKED_PARTITIONS: i8 = 1;
/// See [`MEMBER_STATE_STABLE`].
pub const MEMBER_STATE_UNRELEASED_PARTITIONS: i8 = 2;
/// See [`MEMBER_STATE_STABLE`].
pub const MEMBER_STATE_UNKNOWN: i8 = 127;

// ---------------------------------------------------------------------------
// Value types
// ---------------------------------------------------------------------------

/// `ConsumerGroupMetadataValue` (type 3): the group epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ConsumerGroupMetadataValue {
    /// The group epoch.
    pub epoch: i32,
    /// Hash of the subscribed topics' metadata (tag 0, KIP-1101, added in
    /// 4.1); 0 = none (not written).
    pub metadata_hash: i64,
}

/// One partition's racks in [`TopicMetadata`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PartitionRacks {
    /// The partition index.
    pub partition: i32,
    /// The racks of its replicas.
    pub racks: Vec<String>,
}

/// One topic of a [`ConsumerGroupPartitionMetadataValue`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TopicMetadata {
    /// The topic id.
    pub topic_id: Uuid,
    /// The topic name.
    pub topic_name: String,
    /// The partition count.
    pub num_partitions: i32,
    /// The racks per partition.
    pub partition_metadata: Vec<PartitionRacks>,
}

/// `ConsumerGroupPartitionMetadataValue` (type 4): the subscribed topics'
/// metadata. Kafka ≤ 4.0 wrote it; 4.1 replaced it with the metadata hash
/// and writes only tombstones of this key.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ConsumerGroupPartitionMetadataValue {
    /// The topics.
    pub topics: Vec<TopicMetadata>,
}

/// A protocol of a member using the classic protocol.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ClassicProtocol {
    /// The protocol (assignor) name.
    pub name: String,
    /// The protocol metadata.
    pub metadata: Bytes,
}

/// `ClassicMemberMetadata`: present for members of a consumer group that
/// still use the classic protocol (KIP-848 upgrade path).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ClassicMemberMetadata {
    /// The classic session timeout.
    pub session_timeout_ms: i32,
    /// The protocols the member supports.
    pub supported_protocols: Vec<ClassicProtocol>,
}

/// `ConsumerGroupMemberMetadataValue` (type 5): a member's subscription.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ConsumerGroupMemberMetadataValue {
    /// The static membership instance id.
    pub instance_id: Option<String>,
    /// The rack id.
    pub rack_id: Option<String>,
    /// The client id.
    pub client_id: String,
    /// The client host, as Kafka formats it (e.g. `/127.0.0.1`).
    pub client_host: String,
    /// The subscribed topic names (Kafka writes them sorted).
    pub subscribed_topic_names: Vec<String>,
    /// The subscribed regex (Kafka stores librdkafka's `""` as is).
    pub subscribed_topic_regex: Option<String>,
    /// The rebalance timeout.
    pub rebalance_timeout_ms: i32,
    /// The server assignor the member asked for.
    pub server_assignor: Option<String>,
    /// Tag 0; see the module docs for its null/default encoding.
    pub classic_member_metadata: Option<ClassicMemberMetadata>,
}

/// A topic's partitions, by topic id.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TopicPartitions {
    /// The topic id.
    pub topic_id: Uuid,
    /// The partition indexes.
    pub partitions: Vec<i32>,
}

/// `ConsumerGroupTargetAssignmentMetadataValue` (type 6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ConsumerGroupTargetAssignmentMetadataValue {
    /// The epoch of the target assignment.
    pub assignment_epoch: i32,
}

/// `ConsumerGroupTargetAssignmentMemberValue` (type 7): a member's target.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ConsumerGroupTargetAssignmentMemberValue {
    /// The target partitions.
    pub topic_partitions: Vec<TopicPartitions>,
}

/// `ConsumerGroupCurrentMemberAssignmentValue` (type 8).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ConsumerGroupCurrentMemberAssignmentValue {
    /// The member epoch.
    pub member_epoch: i32,
    /// The previous member epoch.
    pub previous_member_epoch: i32,
    /// The member state (`MEMBER_STATE_*`).
    pub state: i8,
    /// The partitions the member owns.
    pub assigned_partitions: Vec<TopicPartitions>,
    /// The partitions it must revoke.
    pub partitions_pending_revocation: Vec<TopicPartitions>,
}

/// Any KIP-848 value, as [`ConsumerRecordValue::decode`] picks it by key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConsumerRecordValue {
    /// Type 3.
    GroupMetadata(ConsumerGroupMetadataValue),
    /// Type 4.
    PartitionMetadata(ConsumerGroupPartitionMetadataValue),
    /// Type 5.
    MemberMetadata(ConsumerGroupMemberMetadataValue),
    /// Type 6.
    TargetAssignmentMetadata(ConsumerGroupTargetAssignmentMetadataValue),
    /// Type 7.
    TargetAssignmentMember(ConsumerGroupTargetAssignmentMemberValue),
    /// Type 8.
    CurrentMemberAssignment(ConsumerGroupCurrentMemberAssignmentValue),
}

impl ConsumerRecordValue {
    /// Decodes the value of a KIP-848 key; `Ok(None)` for other keys.
    pub fn decode(key: &RecordKey, b: &[u8]) -> Result<Option<Self>, RecordError> {
        Ok(Some(match key {
            RecordKey::ConsumerGroupMetadata { .. } => {
                Self::GroupMetadata(ConsumerGroupMetadataValue::decode(b)?)
            }
            RecordKey::ConsumerGroupPartitionMetadata { .. } => {
                Self::PartitionMetadata(ConsumerGroupPartitionMetadataValue::decode(b)?)
            }
            RecordKey::ConsumerGroupMemberMetadata { .. } => {
                Self::MemberMetadata(ConsumerGroupMemberMetadataValue::decode(b)?)
            }
            RecordKey::ConsumerGroupTargetAssignmentMetadata { .. } => {
                Self::TargetAssignmentMetadata(ConsumerGroupTargetAssignmentMetadataValue::decode(
                    b,
                )?)
            }
            RecordKey::ConsumerGroupTargetAssignmentMember { .. } => {
                Self::TargetAssignmentMember(ConsumerGroupTargetAssignmentMemberValue::decode(b)?)
            }
            RecordKey::ConsumerGroupCurrentMemberAssignment { .. } => {
                Self::CurrentMemberAssignment(ConsumerGroupCurrentMemberAssignmentValue::decode(b)?)
            }
            _ => return Ok(None),
        }))
    }

    /// Encodes the value.
    pub fn encode(&self) -> Result<Bytes, RecordError> {
        match self {
            Self::GroupMetadata(v) => v.encode(),
            Self::PartitionMetadata(v) => v.encode(),
            Self::MemberMetadata(v) => v.encode(),
            Self::TargetAssignmentMetadata(v) => v.encode(),
            Self::TargetAssignmentMember(v) => v.encode(),
            Self::CurrentMemberAssignment(v) => v.encode(),
        }
    }
}

// ---------------------------------------------------------------------------
// Shared pieces
// ---------------------------------------------------------------------------

/// Reads the value version and checks it is 0.
fn read_version(r: &mut Reader<'_>, what: &'static str) -> Result<(), RecordError> {
    let version = r.i16()?;
    if version != CONSUMER_VALUE_VERSION {
        return Err(RecordError::UnsupportedVersion { what, version });
    }
    Ok(())
}

/// A value buffer starting with the version.
fn value_buf(capacity: usize) -> BytesMut {
    let mut out = BytesMut::with_capacity(capacity);
    out.put_i16(CONSUMER_VALUE_VERSION);
    out
}

fn skip_tags(r: &mut Reader<'_>) -> Result<(), RecordError> {
    r.tagged_fields(|_, _| Ok(()))
}

/// Capacity for `count` elements of at least `min_size` bytes each, bounded
/// by what the input can still hold.
fn bounded(r: &Reader<'_>, count: usize, min_size: usize) -> usize {
    count.min(r.remaining() / min_size.max(1))
}

fn read_uuid(r: &mut Reader<'_>) -> Result<Uuid, RecordError> {
    let raw: [u8; 16] = r.take(16)?.try_into().expect("16 bytes");
    Ok(Uuid::from_bytes(raw))
}

fn read_i8(r: &mut Reader<'_>) -> Result<i8, RecordError> {
    Ok(r.take(1)?[0] as i8)
}

fn read_string_array(r: &mut Reader<'_>, field: &'static str) -> Result<Vec<String>, RecordError> {
    let count = r.array_len_v(true, field)?;
    let mut out = Vec::with_capacity(bounded(r, count, 1));
    for _ in 0..count {
        out.push(r.compact_string(field)?);
    }
    Ok(out)
}

fn put_string_array(
    out: &mut BytesMut,
    field: &'static str,
    items: &[String],
) -> Result<(), RecordError> {
    put_array_len(out, true, field, items.len())?;
    for s in items {
        put_string(out, true, field, s)?;
    }
    Ok(())
}

fn read_i32_array(r: &mut Reader<'_>, field: &'static str) -> Result<Vec<i32>, RecordError> {
    let count = r.array_len_v(true, field)?;
    let mut out = Vec::with_capacity(bounded(r, count, 4));
    for _ in 0..count {
        out.push(r.i32()?);
    }
    Ok(out)
}

fn put_i32_array(
    out: &mut BytesMut,
    field: &'static str,
    items: &[i32],
) -> Result<(), RecordError> {
    put_array_len(out, true, field, items.len())?;
    for p in items {
        out.put_i32(*p);
    }
    Ok(())
}

/// `[]TopicPartition(s)`: { topicId uuid, partitions []int32, tags }.
fn read_topic_partitions(
    r: &mut Reader<'_>,
    field: &'static str,
) -> Result<Vec<TopicPartitions>, RecordError> {
    let count = r.array_len_v(true, field)?;
    // uuid + array length + tag count.
    let mut out = Vec::with_capacity(bounded(r, count, 18));
    for _ in 0..count {
        let topic_id = read_uuid(r)?;
        let partitions = read_i32_array(r, "partitions")?;
        skip_tags(r)?;
        out.push(TopicPartitions {
            topic_id,
            partitions,
        });
    }
    Ok(out)
}

fn put_topic_partitions(
    out: &mut BytesMut,
    field: &'static str,
    items: &[TopicPartitions],
) -> Result<(), RecordError> {
    put_array_len(out, true, field, items.len())?;
    for tp in items {
        out.put_slice(tp.topic_id.as_bytes());
        put_i32_array(out, "partitions", &tp.partitions)?;
        put_uvarint(out, 0);
    }
    Ok(())
}

fn topic_partitions_size(items: &[TopicPartitions]) -> usize {
    items.iter().map(|t| 24 + 4 * t.partitions.len()).sum()
}

// ---------------------------------------------------------------------------
// Type 3: ConsumerGroupMetadataValue
// ---------------------------------------------------------------------------

impl ConsumerGroupMetadataValue {
    /// Encodes at v0; the metadata hash (tag 0) only when it is not 0.
    pub fn encode(&self) -> Result<Bytes, RecordError> {
        let mut out = value_buf(20);
        out.put_i32(self.epoch);
        if self.metadata_hash != 0 {
            put_uvarint(&mut out, 1);
            put_uvarint(&mut out, TAG_METADATA_HASH);
            put_uvarint(&mut out, 8);
            out.put_i64(self.metadata_hash);
        } else {
            put_uvarint(&mut out, 0);
        }
        Ok(out.freeze())
    }

    /// Decodes v0.
    pub fn decode(b: &[u8]) -> Result<Self, RecordError> {
        let mut r = Reader::new(b);
        read_version(&mut r, "ConsumerGroupMetadataValue")?;
        let epoch = r.i32()?;
        let mut metadata_hash = 0;
        r.tagged_fields(|tag, payload| {
            if tag == TAG_METADATA_HASH {
                let raw: [u8; 8] = payload
                    .try_into()
                    .map_err(|_| RecordError::BadTaggedField { tag })?;
                metadata_hash = i64::from_be_bytes(raw);
            }
            Ok(())
        })?;
        Ok(ConsumerGroupMetadataValue {
            epoch,
            metadata_hash,
        })
    }
}

// ---------------------------------------------------------------------------
// Type 4: ConsumerGroupPartitionMetadataValue
// ---------------------------------------------------------------------------

impl ConsumerGroupPartitionMetadataValue {
    /// Encodes at v0.
    pub fn encode(&self) -> Result<Bytes, RecordError> {
        let size: usize = 8 + self
            .topics
            .iter()
            .map(|t| {
                32 + t.topic_name.len()
                    + t.partition_metadata
                        .iter()
                        .map(|p| 8 + p.racks.iter().map(|r| 2 + r.len()).sum::<usize>())
                        .sum::<usize>()
            })
            .sum::<usize>();
        let mut out = value_buf(size);
        put_array_len(&mut out, true, "topics", self.topics.len())?;
        for t in &self.topics {
            out.put_slice(t.topic_id.as_bytes());
            put_string(&mut out, true, "topicName", &t.topic_name)?;
            out.put_i32(t.num_partitions);
            put_array_len(
                &mut out,
                true,
                "partitionMetadata",
                t.partition_metadata.len(),
            )?;
            for p in &t.partition_metadata {
                out.put_i32(p.partition);
                put_string_array(&mut out, "racks", &p.racks)?;
                put_uvarint(&mut out, 0);
            }
            put_uvarint(&mut out, 0);
        }
        put_uvarint(&mut out, 0);
        Ok(out.freeze())
    }

    /// Decodes v0.
    pub fn decode(b: &[u8]) -> Result<Self, RecordError> {
        let mut r = Reader::new(b);
        read_version(&mut r, "ConsumerGroupPartitionMetadataValue")?;
        let count = r.array_len_v(true, "topics")?;
        // uuid + name + int32 + array + tags.
        let mut topics = Vec::with_capacity(bounded(&r, count, 23));
        for _ in 0..count {
            let topic_id = read_uuid(&mut r)?;
            let topic_name = r.compact_string("topicName")?;
            let num_partitions = r.i32()?;
            let n = r.array_len_v(true, "partitionMetadata")?;
            let mut partition_metadata = Vec::with_capacity(bounded(&r, n, 6));
            for _ in 0..n {
                let partition = r.i32()?;
                let racks = read_string_array(&mut r, "racks")?;
                skip_tags(&mut r)?;
                partition_metadata.push(PartitionRacks { partition, racks });
            }
            skip_tags(&mut r)?;
            topics.push(TopicMetadata {
                topic_id,
                topic_name,
                num_partitions,
                partition_metadata,
            });
        }
        skip_tags(&mut r)?;
        Ok(ConsumerGroupPartitionMetadataValue { topics })
    }
}

// ---------------------------------------------------------------------------
// Type 5: ConsumerGroupMemberMetadataValue
// ---------------------------------------------------------------------------

impl ClassicMemberMetadata {
    fn encode_into(&self, out: &mut BytesMut) -> Result<(), RecordError> {
        out.put_i32(self.session_timeout_ms);
        put_array_len(
            out,
            true,
            "supportedProtocols",
            self.supported_protocols.len(),
        )?;
        for p in &self.supported_protocols {
            put_string(out, true, "name", &p.name)?;
            put_bytes(out, true, "metadata", &p.metadata)?;
            put_uvarint(out, 0);
        }
        put_uvarint(out, 0);
        Ok(())
    }

    fn decode_from(r: &mut Reader<'_>) -> Result<Self, RecordError> {
        let session_timeout_ms = r.i32()?;
        let count = r.array_len_v(true, "supportedProtocols")?;
        let mut supported_protocols = Vec::with_capacity(bounded(r, count, 3));
        for _ in 0..count {
            let name = r.compact_string("name")?;
            let metadata = r.bytes_v(true, "metadata")?;
            skip_tags(r)?;
            supported_protocols.push(ClassicProtocol { name, metadata });
        }
        skip_tags(r)?;
        Ok(ClassicMemberMetadata {
            session_timeout_ms,
            supported_protocols,
        })
    }
}

impl ConsumerGroupMemberMetadataValue {
    /// Encodes at v0 (see the module docs for tag 0).
    pub fn encode(&self) -> Result<Bytes, RecordError> {
        let classic = match &self.classic_member_metadata {
            None => Some(Bytes::from_static(&[0])),
            Some(c) if *c == ClassicMemberMetadata::default() => None,
            Some(c) => {
                let mut payload = BytesMut::with_capacity(
                    16 + c
                        .supported_protocols
                        .iter()
                        .map(|p| 8 + p.name.len() + p.metadata.len())
                        .sum::<usize>(),
                );
                put_uvarint(&mut payload, 1);
                c.encode_into(&mut payload)?;
                Some(payload.freeze())
            }
        };
        let str_len = |s: &Option<String>| s.as_ref().map_or(0, String::len);
        let size = 32
            + str_len(&self.instance_id)
            + str_len(&self.rack_id)
            + self.client_id.len()
            + self.client_host.len()
            + self
                .subscribed_topic_names
                .iter()
                .map(|t| 2 + t.len())
                .sum::<usize>()
            + str_len(&self.subscribed_topic_regex)
            + str_len(&self.server_assignor)
            + classic.as_ref().map_or(0, Bytes::len);
        let mut out = value_buf(size);
        put_nullable_string(&mut out, true, "instanceId", self.instance_id.as_deref())?;
        put_nullable_string(&mut out, true, "rackId", self.rack_id.as_deref())?;
        put_string(&mut out, true, "clientId", &self.client_id)?;
        put_string(&mut out, true, "clientHost", &self.client_host)?;
        put_string_array(
            &mut out,
            "subscribedTopicNames",
            &self.subscribed_topic_names,
        )?;
        put_nullable_string(
            &mut out,
            true,
            "subscribedTopicRegex",
            self.subscribed_topic_regex.as_deref(),
        )?;
        out.put_i32(self.rebalance_timeout_ms);
        put_nullable_string(
            &mut out,
            true,
            "serverAssignor",
            self.server_assignor.as_deref(),
        )?;
        match classic {
            None => put_uvarint(&mut out, 0),
            Some(payload) => {
                put_uvarint(&mut out, 1);
                put_uvarint(&mut out, TAG_CLASSIC_MEMBER_METADATA);
                let len = u32::try_from(payload.len()).map_err(|_| RecordError::TooLong {
                    field: "classicMemberMetadata",
                    len: payload.len(),
                })?;
                put_uvarint(&mut out, len);
                out.put_slice(&payload);
            }
        }
        Ok(out.freeze())
    }

    /// Decodes v0.
    pub fn decode(b: &[u8]) -> Result<Self, RecordError> {
        let mut r = Reader::new(b);
        read_version(&mut r, "ConsumerGroupMemberMetadataValue")?;
        let instance_id = r.compact_nullable_string("instanceId")?;
        let rack_id = r.compact_nullable_string("rackId")?;
        let client_id = r.compact_string("clientId")?;
        let client_host = r.compact_string("clientHost")?;
        let subscribed_topic_names = read_string_array(&mut r, "subscribedTopicNames")?;
        let subscribed_topic_regex = r.compact_nullable_string("subscribedTopicRegex")?;
        let rebalance_timeout_ms = r.i32()?;
        let server_assignor = r.compact_nullable_string("serverAssignor")?;
        // Absent tag: Kafka's reader leaves the default (empty) struct.
        let mut classic_member_metadata = Some(ClassicMemberMetadata::default());
        r.tagged_fields(|tag, payload| {
            if tag == TAG_CLASSIC_MEMBER_METADATA {
                let mut p = Reader::new(payload);
                classic_member_metadata = if p.uvarint()? == 0 {
                    None
                } else {
                    Some(ClassicMemberMetadata::decode_from(&mut p)?)
                };
                if p.remaining() != 0 {
                    return Err(RecordError::BadTaggedField { tag });
                }
            }
            Ok(())
        })?;
        Ok(ConsumerGroupMemberMetadataValue {
            instance_id,
            rack_id,
            client_id,
            client_host,
            subscribed_topic_names,
            subscribed_topic_regex,
            rebalance_timeout_ms,
            server_assignor,
            classic_member_metadata,
        })
    }
}

// ---------------------------------------------------------------------------
// Types 6, 7, 8: assignments
// ---------------------------------------------------------------------------

impl ConsumerGroupTargetAssignmentMetadataValue {
    /// Encodes at v0.
    pub fn encode(&self) -> Result<Bytes, RecordError> {
        let mut out = value_buf(8);
        out.put_i32(self.assignment_epoch);
        put_uvarint(&mut out, 0);
        Ok(out.freeze())
    }

    /// Decodes v0.
    pub fn decode(b: &[u8]) -> Result<Self, RecordError> {
        let mut r = Reader::new(b);
        read_version(&mut r, "ConsumerGroupTargetAssignmentMetadataValue")?;
        let assignment_epoch = r.i32()?;
        skip_tags(&mut r)?;
        Ok(ConsumerGroupTargetAssignmentMetadataValue { assignment_epoch })
    }
}

impl ConsumerGroupTargetAssignmentMemberValue {
    /// Encodes at v0.
    pub fn encode(&self) -> Result<Bytes, RecordError> {
        let mut out = value_buf(8 + topic_partitions_size(&self.topic_partitions));
        put_topic_partitions(&mut out, "topicPartitions", &self.topic_partitions)?;
        put_uvarint(&mut out, 0);
        Ok(out.freeze())
    }

    /// Decodes v0.
    pub fn decode(b: &[u8]) -> Result<Self, RecordError> {
        let mut r = Reader::new(b);
        read_version(&mut r, "ConsumerGroupTargetAssignmentMemberValue")?;
        let topic_partitions = read_topic_partitions(&mut r, "topicPartitions")?;
        skip_tags(&mut r)?;
        Ok(ConsumerGroupTargetAssignmentMemberValue { topic_partitions })
    }
}

impl ConsumerGroupCurrentMemberAssignmentValue {
    /// Encodes at v0.
    pub fn encode(&self) -> Result<Bytes, RecordError> {
        let mut out = value_buf(
            16 + topic_partitions_size(&self.assigned_partitions)
                + topic_partitions_size(&self.partitions_pending_revocation),
        );
        out.put_i32(self.member_epoch);
        out.put_i32(self.previous_member_epoch);
        out.put_i8(self.state);
        put_topic_partitions(&mut out, "assignedPartitions", &self.assigned_partitions)?;
        put_topic_partitions(
            &mut out,
            "partitionsPendingRevocation",
            &self.partitions_pending_revocation,
        )?;
        put_uvarint(&mut out, 0);
        Ok(out.freeze())
    }

    /// Decodes v0.
    pub fn decode(b: &[u8]) -> Result<Self, RecordError> {
        let mut r = Reader::new(b);
        read_version(&mut r, "ConsumerGroupCurrentMemberAssignmentValue")?;
        let member_epoch = r.i32()?;
        let previous_member_epoch = r.i32()?;
        let state = read_i8(&mut r)?;
        let assigned_partitions = read_topic_partitions(&mut r, "assignedPartitions")?;
        let partitions_pending_revocation =
            read_topic_partitions(&mut r, "partitionsPendingRevocation")?;
        skip_tags(&mut r)?;
        Ok(ConsumerGroupCurrentMemberAssignmentValue {
            member_epoch,
            previous_member_epoch,
            state,
            assigned_partitions,
            partitions_pending_revocation,
        })
    }
}

// ---------------------------------------------------------------------------
// Glue: ConsumerGroup ↔ records
// ---------------------------------------------------------------------------

/// A (key, value) pair for `__consumer_offsets`; `None` is a tombstone.
pub type KeyValue = (Bytes, Option<Bytes>);

/// Kafka's stored value of a [`MemberState`].
pub fn member_state_to_i8(state: MemberState) -> i8 {
    match state {
        MemberState::Stable => MEMBER_STATE_STABLE,
        MemberState::UnrevokedPartitions => MEMBER_STATE_UNREVOKED_PARTITIONS,
        MemberState::UnreleasedPartitions => MEMBER_STATE_UNRELEASED_PARTITIONS,
    }
}

/// The [`MemberState`] of a stored value. Kafka's `UNKNOWN` (127) and
/// anything else unrecognised map to `UnrevokedPartitions`: the member then
/// reconciles on its next heartbeat (and, like a member that is really
/// revoking, is bounded by its rebalance timeout).
pub fn member_state_from_i8(state: i8) -> MemberState {
    match state {
        MEMBER_STATE_STABLE => MemberState::Stable,
        MEMBER_STATE_UNRELEASED_PARTITIONS => MemberState::UnreleasedPartitions,
        _ => MemberState::UnrevokedPartitions,
    }
}

fn to_topic_partitions(map: &BTreeMap<Uuid, Vec<i32>>) -> Vec<TopicPartitions> {
    map.iter()
        .map(|(t, ps)| TopicPartitions {
            topic_id: *t,
            partitions: ps.clone(),
        })
        .collect()
}

fn from_topic_partitions(list: &[TopicPartitions]) -> BTreeMap<Uuid, Vec<i32>> {
    let mut map: BTreeMap<Uuid, Vec<i32>> = BTreeMap::new();
    for tp in list {
        map.entry(tp.topic_id)
            .or_default()
            .extend_from_slice(&tp.partitions);
    }
    for ps in map.values_mut() {
        ps.sort_unstable();
        ps.dedup();
    }
    map.retain(|_, ps| !ps.is_empty());
    map
}

fn group_key(group: &str) -> RecordKey {
    RecordKey::ConsumerGroupMetadata {
        group: group.to_string(),
    }
}

/// The type 5 value of a member: its subscription, as Kafka writes it
/// (topic names sorted; no classic member metadata — our members all use
/// the consumer protocol).
pub fn member_metadata_value(m: &ConsumerMember) -> ConsumerGroupMemberMetadataValue {
    ConsumerGroupMemberMetadataValue {
        instance_id: m.instance_id.clone(),
        rack_id: m.rack_id.clone(),
        client_id: m.client_id.clone(),
        client_host: m.client_host.clone(),
        subscribed_topic_names: m.subscribed_topic_names.iter().cloned().collect(),
        subscribed_topic_regex: m.subscribed_topic_regex.clone(),
        rebalance_timeout_ms: m.rebalance_timeout_ms,
        server_assignor: m.assignor.clone(),
        classic_member_metadata: None,
    }
}

/// The type 8 value of a member: its epochs, state and assignment.
pub fn current_assignment_value(m: &ConsumerMember) -> ConsumerGroupCurrentMemberAssignmentValue {
    ConsumerGroupCurrentMemberAssignmentValue {
        member_epoch: m.member_epoch,
        previous_member_epoch: m.previous_member_epoch,
        state: member_state_to_i8(m.state),
        assigned_partitions: to_topic_partitions(&m.assigned),
        partitions_pending_revocation: to_topic_partitions(&m.pending_revocation),
    }
}

/// All records that fully describe a consumer group's state (what Kafka
/// writes), for a snapshot-style persist, in the order Kafka writes them
/// when a member joins: every member's subscription (type 5), the group
/// epoch (3), every member's target (7), the target assignment epoch (6),
/// every member's current assignment (8). Members that left need
/// [`member_tombstones`] too; a snapshot does not cover them.
pub fn consumer_group_records(g: &ConsumerGroup) -> Result<Vec<KeyValue>, RecordError> {
    let group = g.group_id();
    let members: Vec<&ConsumerMember> = g.members().collect();
    let mut out = Vec::with_capacity(3 * members.len() + 2);
    for m in &members {
        out.push((
            encode_key(&RecordKey::ConsumerGroupMemberMetadata {
                group: group.to_string(),
                member: m.member_id.clone(),
            })?,
            Some(member_metadata_value(m).encode()?),
        ));
    }
    out.push((
        encode_key(&group_key(group))?,
        Some(
            ConsumerGroupMetadataValue {
                epoch: g.group_epoch(),
                metadata_hash: g.metadata_hash(),
            }
            .encode()?,
        ),
    ));
    for m in &members {
        out.push((
            encode_key(&RecordKey::ConsumerGroupTargetAssignmentMember {
                group: group.to_string(),
                member: m.member_id.clone(),
            })?,
            Some(
                ConsumerGroupTargetAssignmentMemberValue {
                    topic_partitions: to_topic_partitions(&m.target),
                }
                .encode()?,
            ),
        ));
    }
    out.push((
        encode_key(&RecordKey::ConsumerGroupTargetAssignmentMetadata {
            group: group.to_string(),
        })?,
        Some(
            ConsumerGroupTargetAssignmentMetadataValue {
                assignment_epoch: g.assignment_epoch(),
            }
            .encode()?,
        ),
    ));
    for m in &members {
        out.push((
            encode_key(&RecordKey::ConsumerGroupCurrentMemberAssignment {
                group: group.to_string(),
                member: m.member_id.clone(),
            })?,
            Some(current_assignment_value(m).encode()?),
        ));
    }
    Ok(out)
}

/// Tombstones for a member that left, in Kafka's order: its current
/// assignment (8), target assignment (7), then subscription (5).
pub fn member_tombstones(group: &str, member_id: &str) -> Result<Vec<KeyValue>, RecordError> {
    let (group, member) = (group.to_string(), member_id.to_string());
    Ok(vec![
        (
            encode_key(&RecordKey::ConsumerGroupCurrentMemberAssignment {
                group: group.clone(),
                member: member.clone(),
            })?,
            None,
        ),
        (
            encode_key(&RecordKey::ConsumerGroupTargetAssignmentMember {
                group: group.clone(),
                member: member.clone(),
            })?,
            None,
        ),
        (
            encode_key(&RecordKey::ConsumerGroupMemberMetadata { group, member })?,
            None,
        ),
    ])
}

/// Tombstones that delete a whole group (DeleteGroups), in Kafka's order
/// (`ConsumerGroup.createGroupTombstoneRecords`): every member's current
/// assignment (8), target (7) and subscription (5); the target assignment
/// epoch (6), the subscription metadata (4) and last the group epoch (3).
/// Kafka also tombstones the group's resolved regexes (type 16) between 5
/// and 4; we never write those. Offsets are separate records.
pub fn group_tombstones(group: &str, member_ids: &[&str]) -> Result<Vec<KeyValue>, RecordError> {
    let mut out = Vec::with_capacity(3 * member_ids.len() + 3);
    for m in member_ids {
        out.push((
            encode_key(&RecordKey::ConsumerGroupCurrentMemberAssignment {
                group: group.to_string(),
                member: m.to_string(),
            })?,
            None,
        ));
    }
    for m in member_ids {
        out.push((
            encode_key(&RecordKey::ConsumerGroupTargetAssignmentMember {
                group: group.to_string(),
                member: m.to_string(),
            })?,
            None,
        ));
    }
    out.push((
        encode_key(&RecordKey::ConsumerGroupTargetAssignmentMetadata {
            group: group.to_string(),
        })?,
        None,
    ));
    for m in member_ids {
        out.push((
            encode_key(&RecordKey::ConsumerGroupMemberMetadata {
                group: group.to_string(),
                member: m.to_string(),
            })?,
            None,
        ));
    }
    out.push((
        encode_key(&RecordKey::ConsumerGroupPartitionMetadata {
            group: group.to_string(),
        })?,
        None,
    ));
    out.push((encode_key(&group_key(group))?, None));
    Ok(out)
}

/// What the replayed records say about one member.
#[derive(Debug, Default)]
struct ReplayMember {
    subscription: Option<ConsumerGroupMemberMetadataValue>,
    target: Option<BTreeMap<Uuid, Vec<i32>>>,
    current: Option<ConsumerGroupCurrentMemberAssignmentValue>,
}

impl ReplayMember {
    fn is_empty(&self) -> bool {
        self.subscription.is_none() && self.target.is_none() && self.current.is_none()
    }
}

/// What the replayed records say about one group.
#[derive(Debug, Default)]
struct ReplayGroup {
    metadata: ConsumerGroupMetadataValue,
    assignment_epoch: i32,
    /// Members by first appearance, which preserves the join order of
    /// groups persisted with [`consumer_group_records`].
    members: IndexMap<String, ReplayMember>,
}

/// Rebuilds consumer groups from `__consumer_offsets` records replayed in
/// log order (Kafka's `GroupMetadataManager.replay` for record types 3–8).
///
/// * Any record with a value creates its group; the group epoch tombstone
///   (3) deletes the group with everything replayed for it so far.
/// * A member exists once its subscription (5) was replayed; its target
///   (7) and current assignment (8) may come in any order. A member whose
///   subscription was deleted is dropped at [`ConsumerGroupReplayer::finish`]
///   even if other records of it remain (Kafka writes the three tombstones
///   together).
/// * Type 4 values (Kafka ≤ 4.0) are decoded and ignored: the metadata
///   hash, or a rebalance, covers them. Other keys are ignored.
///
/// A malformed value is an error for the caller to log; the replayer's
/// state is unchanged by it.
#[derive(Debug, Default)]
pub struct ConsumerGroupReplayer {
    groups: IndexMap<String, ReplayGroup>,
}

impl ConsumerGroupReplayer {
    /// An empty replayer.
    pub fn new() -> Self {
        Self::default()
    }

    /// Applies one record; `value` `None` is a tombstone.
    pub fn apply(&mut self, key: &RecordKey, value: Option<&[u8]>) -> Result<(), RecordError> {
        let decoded = match value {
            Some(v) => match ConsumerRecordValue::decode(key, v)? {
                Some(d) => Some(d),
                None => return Ok(()),
            },
            None => None,
        };
        let Some(group_id) = key.group() else {
            return Ok(());
        };
        if matches!(
            key,
            RecordKey::Offset { .. } | RecordKey::GroupMetadata { .. }
        ) {
            return Ok(());
        }
        if decoded.is_none() && !self.groups.contains_key(group_id) {
            return Ok(());
        }
        if let RecordKey::ConsumerGroupMetadata { .. } = key {
            if decoded.is_none() {
                self.groups.shift_remove(group_id);
                return Ok(());
            }
        }
        let group = self.groups.entry(group_id.to_string()).or_default();
        let member_id = match key {
            RecordKey::ConsumerGroupMemberMetadata { member, .. }
            | RecordKey::ConsumerGroupTargetAssignmentMember { member, .. }
            | RecordKey::ConsumerGroupCurrentMemberAssignment { member, .. } => Some(member),
            _ => None,
        };
        match (decoded, member_id) {
            (Some(ConsumerRecordValue::GroupMetadata(v)), _) => group.metadata = v,
            (Some(ConsumerRecordValue::TargetAssignmentMetadata(v)), _) => {
                group.assignment_epoch = v.assignment_epoch;
            }
            (None, None) => {
                // Tombstones of type 4 and 6: back to the defaults.
                if let RecordKey::ConsumerGroupTargetAssignmentMetadata { .. } = key {
                    group.assignment_epoch = 0;
                }
            }
            (Some(ConsumerRecordValue::PartitionMetadata(_)), _) => {}
            (v, Some(member_id)) => {
                let member = group.members.entry(member_id.clone()).or_default();
                match (key, v) {
                    (_, Some(ConsumerRecordValue::MemberMetadata(v))) => {
                        member.subscription = Some(v);
                    }
                    (_, Some(ConsumerRecordValue::TargetAssignmentMember(v))) => {
                        member.target = Some(from_topic_partitions(&v.topic_partitions));
                    }
                    (_, Some(ConsumerRecordValue::CurrentMemberAssignment(v))) => {
                        member.current = Some(v);
                    }
                    (RecordKey::ConsumerGroupMemberMetadata { .. }, None) => {
                        member.subscription = None;
                    }
                    (RecordKey::ConsumerGroupTargetAssignmentMember { .. }, None) => {
                        member.target = None;
                    }
                    (RecordKey::ConsumerGroupCurrentMemberAssignment { .. }, None) => {
                        member.current = None;
                    }
                    _ => {}
                }
                if member.is_empty() {
                    group.members.shift_remove(member_id);
                }
            }
            (Some(_), None) => {}
        }
        Ok(())
    }

    /// The groups, in the order they first appeared. Members without a
    /// subscription record are dropped; a member without a current
    /// assignment record starts at epoch 0, `STABLE`, owning nothing (the
    /// defaults of Kafka's `ConsumerGroupMember.Builder`).
    pub fn finish(self, now: Instant, cfg: &ConsumerGroupConfig) -> Vec<ConsumerGroup> {
        self.finish_with(now, |_| cfg.clone())
    }

    /// [`finish`](Self::finish) with each group's own settings (its group
    /// config overrides).
    pub fn finish_with(
        self,
        now: Instant,
        cfg_of: impl Fn(&str) -> ConsumerGroupConfig,
    ) -> Vec<ConsumerGroup> {
        self.groups
            .into_iter()
            .map(|(group_id, g)| {
                let members = g
                    .members
                    .into_iter()
                    .filter_map(|(member_id, rm)| {
                        let sub = rm.subscription?;
                        let mut m = ConsumerMember::restored(member_id);
                        m.instance_id = sub.instance_id;
                        m.rack_id = sub.rack_id;
                        m.client_id = sub.client_id;
                        m.client_host = sub.client_host;
                        m.rebalance_timeout_ms = sub.rebalance_timeout_ms;
                        m.subscribed_topic_names = sub.subscribed_topic_names.into_iter().collect();
                        // Kafka stores librdkafka's "no regex" as "".
                        m.subscribed_topic_regex =
                            sub.subscribed_topic_regex.filter(|r| !r.is_empty());
                        m.assignor = sub.server_assignor;
                        m.target = rm.target.unwrap_or_default();
                        match rm.current {
                            Some(c) => {
                                m.member_epoch = c.member_epoch;
                                m.previous_member_epoch = c.previous_member_epoch;
                                m.state = member_state_from_i8(c.state);
                                m.assigned = from_topic_partitions(&c.assigned_partitions);
                                m.pending_revocation =
                                    from_topic_partitions(&c.partitions_pending_revocation);
                            }
                            None => {
                                m.member_epoch = 0;
                                m.previous_member_epoch = 0;
                            }
                        }
                        Some(m)
                    })
                    .collect();
                ConsumerGroup::restore(
                    &group_id,
                    g.metadata.epoch,
                    g.assignment_epoch,
                    g.metadata.metadata_hash,
                    members,
                    now,
                    &cfg_of(&group_id),
                )
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::group::records::decode_key;

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    fn unhex(s: &str) -> Vec<u8> {
        let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
            .collect()
    }

    /// (partition, offset, key, value or `None` for a tombstone).
    type FixtureLine = (i32, i64, Vec<u8>, Option<Vec<u8>>);

    /// Every fixture line (see `testdata/README.md`).
    fn fixture() -> Vec<FixtureLine> {
        include_str!("testdata/kafka-4.1.1-consumer-offsets.hex")
            .lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
            .map(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                assert_eq!(f.len(), 4, "fixture line {l}");
                (
                    f[0].parse().expect("partition"),
                    f[1].parse().expect("offset"),
                    unhex(f[2]),
                    (f[3] != "-").then(|| unhex(f[3])),
                )
            })
            .collect()
    }

    const G: &str = "grüppe-ñ";

    fn uuid(n: u128) -> Uuid {
        Uuid::from_u128(n)
    }

    fn tps(list: &[(u128, &[i32])]) -> Vec<TopicPartitions> {
        list.iter()
            .map(|(t, ps)| TopicPartitions {
                topic_id: uuid(*t),
                partitions: ps.to_vec(),
            })
            .collect()
    }

    fn every_value() -> Vec<ConsumerRecordValue> {
        vec![
            ConsumerRecordValue::GroupMetadata(ConsumerGroupMetadataValue {
                epoch: 7,
                metadata_hash: 0,
            }),
            ConsumerRecordValue::GroupMetadata(ConsumerGroupMetadataValue {
                epoch: i32::MAX,
                metadata_hash: -42,
            }),
            ConsumerRecordValue::PartitionMetadata(ConsumerGroupPartitionMetadataValue::default()),
            ConsumerRecordValue::PartitionMetadata(ConsumerGroupPartitionMetadataValue {
                topics: vec![
                    TopicMetadata {
                        topic_id: uuid(1),
                        topic_name: "orders".into(),
                        num_partitions: 2,
                        partition_metadata: vec![
                            PartitionRacks {
                                partition: 0,
                                racks: vec!["r1".into(), "r2".into()],
                            },
                            PartitionRacks {
                                partition: 1,
                                racks: vec![],
                            },
                        ],
                    },
                    TopicMetadata {
                        topic_id: uuid(2),
                        topic_name: "トピック".into(),
                        num_partitions: 0,
                        partition_metadata: vec![],
                    },
                ],
            }),
            ConsumerRecordValue::MemberMetadata(ConsumerGroupMemberMetadataValue {
                instance_id: Some("static-1".into()),
                rack_id: Some("rack-a".into()),
                client_id: "client".into(),
                client_host: "/10.0.0.1".into(),
                subscribed_topic_names: vec!["a".into(), "b".into()],
                subscribed_topic_regex: Some("orders-.*".into()),
                rebalance_timeout_ms: 60_000,
                server_assignor: Some("range".into()),
                classic_member_metadata: None,
            }),
            ConsumerRecordValue::MemberMetadata(ConsumerGroupMemberMetadataValue {
                classic_member_metadata: Some(ClassicMemberMetadata {
                    session_timeout_ms: 45_000,
                    supported_protocols: vec![
                        ClassicProtocol {
                            name: "range".into(),
                            metadata: Bytes::from_static(b"\x00\x03meta"),
                        },
                        ClassicProtocol {
                            name: "cooperative-sticky".into(),
                            metadata: Bytes::new(),
                        },
                    ],
                }),
                ..ConsumerGroupMemberMetadataValue::default()
            }),
            ConsumerRecordValue::MemberMetadata(ConsumerGroupMemberMetadataValue {
                classic_member_metadata: Some(ClassicMemberMetadata::default()),
                rebalance_timeout_ms: -1,
                ..ConsumerGroupMemberMetadataValue::default()
            }),
            ConsumerRecordValue::TargetAssignmentMetadata(
                ConsumerGroupTargetAssignmentMetadataValue {
                    assignment_epoch: 3,
                },
            ),
            ConsumerRecordValue::TargetAssignmentMember(ConsumerGroupTargetAssignmentMemberValue {
                topic_partitions: tps(&[(1, &[0, 1, 2]), (2, &[])]),
            }),
            ConsumerRecordValue::TargetAssignmentMember(
                ConsumerGroupTargetAssignmentMemberValue::default(),
            ),
            ConsumerRecordValue::CurrentMemberAssignment(
                ConsumerGroupCurrentMemberAssignmentValue {
                    member_epoch: 5,
                    previous_member_epoch: 4,
                    state: MEMBER_STATE_UNREVOKED_PARTITIONS,
                    assigned_partitions: tps(&[(1, &[0])]),
                    partitions_pending_revocation: tps(&[(1, &[1, 2]), (3, &[7])]),
                },
            ),
        ]
    }

    fn key_for(v: &ConsumerRecordValue) -> RecordKey {
        let (group, member) = ("g".to_string(), "m".to_string());
        match v {
            ConsumerRecordValue::GroupMetadata(_) => RecordKey::ConsumerGroupMetadata { group },
            ConsumerRecordValue::PartitionMetadata(_) => {
                RecordKey::ConsumerGroupPartitionMetadata { group }
            }
            ConsumerRecordValue::MemberMetadata(_) => {
                RecordKey::ConsumerGroupMemberMetadata { group, member }
            }
            ConsumerRecordValue::TargetAssignmentMetadata(_) => {
                RecordKey::ConsumerGroupTargetAssignmentMetadata { group }
            }
            ConsumerRecordValue::TargetAssignmentMember(_) => {
                RecordKey::ConsumerGroupTargetAssignmentMember { group, member }
            }
            ConsumerRecordValue::CurrentMemberAssignment(_) => {
                RecordKey::ConsumerGroupCurrentMemberAssignment { group, member }
            }
        }
    }

    #[test]
    fn every_value_round_trips() {
        for v in every_value() {
            let b = v.encode().expect("encode");
            assert_eq!(&b[..2], &[0, 0], "v0: {v:?}");
            let key = key_for(&v);
            let d = ConsumerRecordValue::decode(&key, &b)
                .expect("decode")
                .expect("a consumer value");
            assert_eq!(d, v);
            assert_eq!(d.encode().expect("re-encode"), b);
        }
        // Other keys have no consumer value.
        assert_eq!(
            ConsumerRecordValue::decode(&RecordKey::GroupMetadata { group: "g".into() }, &[0, 0])
                .expect("ok"),
            None
        );
    }

    #[test]
    fn exact_bytes() {
        let b = ConsumerGroupMetadataValue {
            epoch: 1,
            metadata_hash: 0x0102,
        }
        .encode()
        .expect("encode");
        assert_eq!(
            hex(&b),
            "0000 00000001 01 00 08 0000000000000102".replace(' ', "")
        );
        let b = ConsumerGroupMetadataValue {
            epoch: 2,
            metadata_hash: 0,
        }
        .encode()
        .expect("encode");
        assert_eq!(hex(&b), "00000000000200");
        let b = ConsumerGroupTargetAssignmentMemberValue {
            topic_partitions: tps(&[(0xff, &[3])]),
        }
        .encode()
        .expect("encode");
        assert_eq!(
            hex(&b),
            "0000 02 000000000000000000000000000000ff 02 00000003 00 00".replace(' ', "")
        );
        // Null classic member metadata: tag 0, size 1, null marker.
        let b = ConsumerGroupMemberMetadataValue {
            client_id: "c".into(),
            client_host: "h".into(),
            rebalance_timeout_ms: 1,
            ..ConsumerGroupMemberMetadataValue::default()
        }
        .encode()
        .expect("encode");
        assert_eq!(
            hex(&b),
            "0000 00 00 0263 0268 01 00 00000001 00 01 00 01 00".replace(' ', "")
        );
        // The default struct is not written, and reads back as itself.
        let v = ConsumerGroupMemberMetadataValue {
            classic_member_metadata: Some(ClassicMemberMetadata::default()),
            ..ConsumerGroupMemberMetadataValue::default()
        };
        let b = v.encode().expect("encode");
        assert_eq!(
            hex(&b),
            "0000 00 00 01 01 01 00 00000000 00 00".replace(' ', "")
        );
        assert_eq!(
            ConsumerGroupMemberMetadataValue::decode(&b).expect("decode"),
            v
        );
        // A present struct: tag 0, size, 01, struct.
        let v = ConsumerGroupMemberMetadataValue {
            classic_member_metadata: Some(ClassicMemberMetadata {
                session_timeout_ms: 0x10,
                supported_protocols: vec![ClassicProtocol {
                    name: "r".into(),
                    metadata: Bytes::from_static(b"\x07"),
                }],
            }),
            ..ConsumerGroupMemberMetadataValue::default()
        };
        let b = v.encode().expect("encode");
        assert_eq!(
            hex(&b),
            "0000 00 00 01 01 01 00 00000000 00 01 00 0c 01 00000010 02 0272 0207 00 00"
                .replace(' ', "")
        );
    }

    #[test]
    fn unknown_tags_are_skipped_and_versions_checked() {
        // Tag 1 (CreationTimeMs in later Kafkas) and tag 5: skipped.
        let b = unhex("0000 00000003 02 00 08 0000000000000009 01 02 abcd");
        assert_eq!(
            ConsumerGroupMetadataValue::decode(&b).expect("decode"),
            ConsumerGroupMetadataValue {
                epoch: 3,
                metadata_hash: 9
            }
        );
        assert!(matches!(
            ConsumerGroupMetadataValue::decode(&unhex("0000 00000003 01 00 04 00000009")),
            Err(RecordError::BadTaggedField { tag: 0 })
        ));
        assert!(matches!(
            ConsumerGroupTargetAssignmentMetadataValue::decode(&unhex("0001 00000003 00")),
            Err(RecordError::UnsupportedVersion { version: 1, .. })
        ));
        // Trailing garbage inside the classic member metadata payload.
        assert!(matches!(
            ConsumerGroupMemberMetadataValue::decode(&unhex(
                "0000 00 00 01 01 01 00 00000000 00 01 00 02 00 ff"
            )),
            Err(RecordError::BadTaggedField { tag: 0 })
        ));
        // Null where not nullable.
        assert!(matches!(
            ConsumerGroupMemberMetadataValue::decode(&unhex("0000 00 00 00")),
            Err(RecordError::UnexpectedNull("clientId"))
        ));
        assert!(matches!(
            ConsumerGroupTargetAssignmentMemberValue::decode(&unhex("0000 00 00")),
            Err(RecordError::UnexpectedNull("topicPartitions"))
        ));
    }

    // --- records written by a real Apache Kafka 4.1.1 ------------------------

    /// Every KIP-848 record in the fixture decodes and re-encodes byte for
    /// byte, key and value.
    #[test]
    fn real_kafka_records_reencode_identically() {
        let mut seen = std::collections::BTreeSet::new();
        for (partition, offset, k, v) in fixture() {
            let key = decode_key(&k).expect("key");
            let Some(v) = v else { continue };
            let Some(d) = ConsumerRecordValue::decode(&key, &v).expect("value") else {
                continue;
            };
            assert_eq!(
                encode_key(&key).expect("key"),
                &k[..],
                "{partition}/{offset}"
            );
            assert_eq!(
                d.encode().expect("value"),
                &v[..],
                "{partition}/{offset} {d:?}"
            );
            seen.insert(i16::from_be_bytes([k[0], k[1]]));
        }
        assert_eq!(seen.into_iter().collect::<Vec<_>>(), vec![3, 5, 6, 7, 8]);
    }

    /// The KIP-848 group crosscheck.py ran: `grüppe-ñ`, one member
    /// (`client.id=xc-client-848`, librdkafka's default 300000 ms
    /// max.poll.interval as rebalance timeout, subscribed to the 3
    /// partitions of `xc-topic`), which committed and left. Values as Kafka
    /// 4.1.1's own generated classes decode them.
    #[test]
    fn real_kafka_consumer_group_records_match_the_run() {
        let topic = Uuid::parse_str("bd638d8c-10f9-4b7c-97e6-0fe178b6d15d").expect("uuid");
        let member = "P8QM6FzGT6+nn+j9CD987A".to_string();
        let recs: Vec<(RecordKey, Option<Vec<u8>>)> = fixture()
            .into_iter()
            .filter(|(_, _, k, _)| (3..=8).contains(&i16::from_be_bytes([k[0], k[1]])))
            .map(|(p, _, k, v)| {
                let key = decode_key(&k).expect("key");
                assert_eq!(key.group(), Some(G));
                assert_eq!(p, 0, "{G} lives in partition 0");
                (key, v)
            })
            .collect();
        let keys: Vec<&RecordKey> = recs.iter().map(|(k, _)| k).collect();
        let (g, m) = (G.to_string(), member.clone());
        assert_eq!(
            keys,
            vec![
                &RecordKey::ConsumerGroupMemberMetadata {
                    group: g.clone(),
                    member: m.clone()
                },
                &RecordKey::ConsumerGroupMetadata { group: g.clone() },
                &RecordKey::ConsumerGroupTargetAssignmentMember {
                    group: g.clone(),
                    member: m.clone()
                },
                &RecordKey::ConsumerGroupTargetAssignmentMetadata { group: g.clone() },
                &RecordKey::ConsumerGroupCurrentMemberAssignment {
                    group: g.clone(),
                    member: m.clone()
                },
                // The member leaves: Kafka's tombstone order.
                &RecordKey::ConsumerGroupCurrentMemberAssignment {
                    group: g.clone(),
                    member: m.clone()
                },
                &RecordKey::ConsumerGroupTargetAssignmentMember {
                    group: g.clone(),
                    member: m.clone()
                },
                &RecordKey::ConsumerGroupMemberMetadata {
                    group: g.clone(),
                    member: m.clone()
                },
                &RecordKey::ConsumerGroupMetadata { group: g.clone() },
            ]
        );
        let value = |i: usize| -> ConsumerRecordValue {
            let (k, v) = &recs[i];
            ConsumerRecordValue::decode(k, v.as_deref().expect("value"))
                .expect("decode")
                .expect("consumer value")
        };
        assert_eq!(
            value(0),
            ConsumerRecordValue::MemberMetadata(ConsumerGroupMemberMetadataValue {
                instance_id: None,
                rack_id: None,
                client_id: "xc-client-848".into(),
                client_host: "/127.0.0.1".into(),
                subscribed_topic_names: vec!["xc-topic".into()],
                subscribed_topic_regex: Some(String::new()),
                rebalance_timeout_ms: 300_000,
                server_assignor: None,
                classic_member_metadata: None,
            })
        );
        assert_eq!(
            value(1),
            ConsumerRecordValue::GroupMetadata(ConsumerGroupMetadataValue {
                epoch: 1,
                metadata_hash: 6_500_327_042_021_532_015,
            })
        );
        assert_eq!(
            value(2),
            ConsumerRecordValue::TargetAssignmentMember(ConsumerGroupTargetAssignmentMemberValue {
                topic_partitions: vec![TopicPartitions {
                    topic_id: topic,
                    partitions: vec![0, 1, 2],
                }],
            })
        );
        assert_eq!(
            value(3),
            ConsumerRecordValue::TargetAssignmentMetadata(
                ConsumerGroupTargetAssignmentMetadataValue {
                    assignment_epoch: 1
                }
            )
        );
        assert_eq!(
            value(4),
            ConsumerRecordValue::CurrentMemberAssignment(
                ConsumerGroupCurrentMemberAssignmentValue {
                    member_epoch: 1,
                    previous_member_epoch: 0,
                    state: MEMBER_STATE_STABLE,
                    assigned_partitions: vec![TopicPartitions {
                        topic_id: topic,
                        partitions: vec![0, 1, 2],
                    }],
                    partitions_pending_revocation: vec![],
                }
            )
        );
        for (_, v) in &recs[5..8] {
            assert!(v.is_none(), "member tombstones");
        }
        // After the member left: epoch 2, no subscribed topics, hash 0.
        assert_eq!(
            value(8),
            ConsumerRecordValue::GroupMetadata(ConsumerGroupMetadataValue {
                epoch: 2,
                metadata_hash: 0,
            })
        );

        // Our tombstones for that member are Kafka's, byte for byte.
        let fx: Vec<Vec<u8>> = fixture()
            .into_iter()
            .filter(|(_, _, k, v)| v.is_none() && (5..=8).contains(&k[1]) && k[0] == 0)
            .map(|(_, _, k, _)| k)
            .collect();
        let ours: Vec<Vec<u8>> = member_tombstones(G, &member)
            .expect("tombstones")
            .into_iter()
            .map(|(k, v)| {
                assert!(v.is_none());
                k.to_vec()
            })
            .collect();
        assert_eq!(ours, fx);

        // Replaying the first five records: the group as Kafka had it.
        let cfg = ConsumerGroupConfig::default();
        let now = Instant::now();
        let mut rp = ConsumerGroupReplayer::new();
        for (k, v) in &recs[..5] {
            rp.apply(k, v.as_deref()).expect("apply");
        }
        let groups = rp.finish(now, &cfg);
        assert_eq!(groups.len(), 1);
        let grp = &groups[0];
        assert_eq!(
            (grp.group_id(), grp.group_epoch(), grp.assignment_epoch()),
            (G, 1, 1)
        );
        assert_eq!(grp.state_name(), "Stable");
        let mem = grp.member(&member).expect("member");
        assert_eq!(
            (mem.member_epoch, mem.previous_member_epoch, mem.state),
            (1, 0, MemberState::Stable)
        );
        assert_eq!(mem.client_id, "xc-client-848");
        assert_eq!(mem.subscribed_topic_regex, None, "\"\" means no regex");
        assert_eq!(mem.assigned, BTreeMap::from([(topic, vec![0, 1, 2])]));
        assert_eq!(mem.target, mem.assigned);
        assert_eq!(grp.metadata_hash(), 6_500_327_042_021_532_015);
        assert_eq!(
            grp.next_deadline(),
            Some(now + std::time::Duration::from_secs(45))
        );

        // Replaying everything: the member is gone, the group is empty.
        let mut rp = ConsumerGroupReplayer::new();
        for (k, v) in &recs {
            rp.apply(k, v.as_deref()).expect("apply");
        }
        let groups = rp.finish(now, &cfg);
        assert_eq!(groups.len(), 1);
        assert_eq!(
            (groups[0].group_epoch(), groups[0].assignment_epoch()),
            (2, 1)
        );
        assert!(groups[0].is_empty());
        assert_eq!(groups[0].state_name(), "Empty");
    }

    // --- glue ----------------------------------------------------------------

    fn member(id: &str) -> ConsumerMember {
        ConsumerMember::restored(id)
    }

    /// A group in the middle of a rebalance: one stable static member, one
    /// revoking, one waiting for partitions.
    fn sample_group(now: Instant, cfg: &ConsumerGroupConfig) -> ConsumerGroup {
        let (t1, t2) = (uuid(0x11), uuid(0x22));
        let mut a = member("a-1");
        a.instance_id = Some("static-a".into());
        a.rack_id = Some("rack-1".into());
        a.client_id = "client-a".into();
        a.client_host = "/10.0.0.1".into();
        a.member_epoch = 7;
        a.previous_member_epoch = 6;
        a.state = MemberState::Stable;
        a.rebalance_timeout_ms = 30_000;
        a.subscribed_topic_names = ["t1".to_string(), "t2".to_string()].into();
        a.assignor = Some("range".into());
        a.assigned = BTreeMap::from([(t1, vec![0]), (t2, vec![0, 1])]);
        a.target = a.assigned.clone();
        let mut b = member("b-2");
        b.client_id = "client-b".into();
        b.client_host = "/10.0.0.2".into();
        b.member_epoch = 6;
        b.previous_member_epoch = 5;
        b.state = MemberState::UnrevokedPartitions;
        b.rebalance_timeout_ms = 10_000;
        b.subscribed_topic_names = ["t1".to_string()].into();
        b.subscribed_topic_regex = Some("t.*".into());
        b.assigned = BTreeMap::from([(t1, vec![1])]);
        b.pending_revocation = BTreeMap::from([(t1, vec![2])]);
        b.target = BTreeMap::from([(t1, vec![1])]);
        let mut c = member("c-3");
        c.client_id = "client-c".into();
        c.client_host = "/10.0.0.3".into();
        c.member_epoch = 7;
        c.previous_member_epoch = 6;
        c.state = MemberState::UnreleasedPartitions;
        c.rebalance_timeout_ms = 20_000;
        c.subscribed_topic_names = ["t1".to_string()].into();
        c.target = BTreeMap::from([(t1, vec![2])]);
        ConsumerGroup::restore(G, 8, 7, 0x5eed, vec![a, b, c], now, cfg)
    }

    type MemberView = (
        String,
        Option<String>,
        Option<String>,
        String,
        String,
        (i32, i32, MemberState, i32),
        (Vec<String>, Option<String>, Option<String>),
        [BTreeMap<Uuid, Vec<i32>>; 3],
    );

    fn view(m: &ConsumerMember) -> MemberView {
        (
            m.member_id.clone(),
            m.instance_id.clone(),
            m.rack_id.clone(),
            m.client_id.clone(),
            m.client_host.clone(),
            (
                m.member_epoch,
                m.previous_member_epoch,
                m.state,
                m.rebalance_timeout_ms,
            ),
            (
                m.subscribed_topic_names.iter().cloned().collect(),
                m.subscribed_topic_regex.clone(),
                m.assignor.clone(),
            ),
            [
                m.assigned.clone(),
                m.pending_revocation.clone(),
                m.target.clone(),
            ],
        )
    }

    fn replay(records: &[KeyValue]) -> ConsumerGroupReplayer {
        let mut rp = ConsumerGroupReplayer::new();
        for (k, v) in records {
            rp.apply(&decode_key(k).expect("key"), v.as_deref())
                .expect("apply");
        }
        rp
    }

    #[test]
    fn snapshot_replays_to_an_equivalent_group() {
        let cfg = ConsumerGroupConfig::default();
        let now = Instant::now();
        let g = sample_group(now, &cfg);
        let records = consumer_group_records(&g).expect("records");
        // Kafka's order: 5 per member, 3, 7 per member, 6, 8 per member.
        let types: Vec<u8> = records.iter().map(|(k, _)| k[1]).collect();
        assert_eq!(types, vec![5, 5, 5, 3, 7, 7, 7, 6, 8, 8, 8]);
        assert!(records.iter().all(|(_, v)| v.is_some()));

        let later = now + std::time::Duration::from_secs(5);
        let back = replay(&records).finish(later, &cfg);
        assert_eq!(back.len(), 1);
        let r = &back[0];
        assert_eq!(
            (r.group_id(), r.group_epoch(), r.assignment_epoch()),
            (G, 8, 7)
        );
        assert_eq!(r.metadata_hash(), 0x5eed);
        assert_eq!(r.state_name(), g.state_name());
        let want: Vec<MemberView> = g.members().map(view).collect();
        let got: Vec<MemberView> = r.members().map(view).collect();
        assert_eq!(got, want);
        // Timers restart: the revoking member's rebalance timeout (10 s)
        // comes before every session timeout (45 s).
        assert_eq!(
            r.next_deadline(),
            Some(later + std::time::Duration::from_secs(10))
        );
        // The static member is known by its instance id again: a re-join
        // with that instance id replaces it (no fencing error).
        assert_eq!(
            consumer_group_records(r).expect("records"),
            records,
            "a restored group persists the same bytes"
        );
    }

    #[test]
    fn replayed_tombstones_remove_members_and_groups() {
        let cfg = ConsumerGroupConfig::default();
        let now = Instant::now();
        let g = sample_group(now, &cfg);
        let mut records = consumer_group_records(&g).expect("records");
        records.extend(member_tombstones(G, "b-2").expect("tombstones"));
        let back = replay(&records).finish(now, &cfg);
        let ids: Vec<&str> = back[0].members().map(|m| m.member_id.as_str()).collect();
        assert_eq!(ids, vec!["a-1", "c-3"]);

        // A member whose subscription is gone is dropped even if its
        // other records remain.
        let mut only_sub_gone = consumer_group_records(&g).expect("records");
        only_sub_gone.push(
            member_tombstones(G, "c-3")
                .expect("tombstones")
                .pop()
                .expect("type 5"),
        );
        let back = replay(&only_sub_gone).finish(now, &cfg);
        assert_eq!(back[0].members().count(), 2);

        // Deleting the group, then re-creating it from scratch.
        let ids = ["a-1", "b-2", "c-3"];
        let mut all = consumer_group_records(&g).expect("records");
        let tomb = group_tombstones(G, &ids).expect("tombstones");
        let types: Vec<u8> = tomb.iter().map(|(k, _)| k[1]).collect();
        assert_eq!(types, vec![8, 8, 8, 7, 7, 7, 6, 5, 5, 5, 4, 3]);
        all.extend(tomb);
        assert!(replay(&all).finish(now, &cfg).is_empty());
        let fresh = ConsumerGroup::new("other");
        all.extend(consumer_group_records(&fresh).expect("records"));
        let back = replay(&all).finish(now, &cfg);
        assert_eq!(back.len(), 1);
        assert_eq!(
            (
                back[0].group_id(),
                back[0].group_epoch(),
                back[0].is_empty()
            ),
            ("other", 0, true)
        );

        // Tombstones of unknown groups and unrelated keys are no-ops.
        let mut rp = ConsumerGroupReplayer::new();
        for (k, _) in member_tombstones("nope", "m").expect("tombstones") {
            rp.apply(&decode_key(&k).expect("key"), None)
                .expect("apply");
        }
        rp.apply(
            &RecordKey::Offset {
                group: "x".into(),
                topic: "t".into(),
                partition: 0,
            },
            Some(&[0, 4]),
        )
        .expect("ignored");
        rp.apply(&RecordKey::Unknown { version: 9 }, Some(&[1, 2, 3]))
            .expect("ignored");
        assert!(rp.finish(now, &cfg).is_empty());
    }

    #[test]
    fn member_state_mapping() {
        for s in [
            MemberState::Stable,
            MemberState::UnrevokedPartitions,
            MemberState::UnreleasedPartitions,
        ] {
            assert_eq!(member_state_from_i8(member_state_to_i8(s)), s);
        }
        assert_eq!(
            member_state_from_i8(MEMBER_STATE_UNKNOWN),
            MemberState::UnrevokedPartitions
        );
    }

    /// The first metadata refresh after a restore bumps the group epoch
    /// only when the subscribed topics changed while the group was away.
    #[test]
    fn restored_metadata_hash_decides_the_first_bump() {
        use crate::group::consumer::TopicMeta;
        let cfg = ConsumerGroupConfig::default();
        let now = Instant::now();
        let mut m = member("m");
        m.subscribed_topic_names = ["t1".to_string()].into();
        m.client_id = "c".into();
        let topics = |n: i32| {
            BTreeMap::from([(
                "t1".to_string(),
                TopicMeta {
                    id: uuid(0x11),
                    name: "t1".into(),
                    partitions: n,
                },
            )])
        };
        // Learn the hash the live group would persist for 3 partitions.
        let mut live = ConsumerGroup::restore(G, 1, 1, 0, vec![m.clone()], now, &cfg);
        live.on_metadata_change(&topics(3));
        assert_eq!(live.group_epoch(), 2, "hash 0 ≠ the hash of one topic");
        let hash = live.metadata_hash();
        assert_ne!(hash, 0);

        let restored = |g: &ConsumerGroup| {
            let back = replay(&consumer_group_records(g).expect("records")).finish(now, &cfg);
            back.into_iter().next().expect("group")
        };
        let mut same = restored(&live);
        assert_eq!(same.metadata_hash(), hash);
        same.on_metadata_change(&topics(3));
        assert_eq!(same.group_epoch(), 2, "unchanged topics: no bump");
        same.on_metadata_change(&topics(3));
        assert_eq!(same.group_epoch(), 2);
        same.on_metadata_change(&topics(4));
        assert_eq!(same.group_epoch(), 3, "later changes bump as usual");

        let mut grown = restored(&live);
        grown.on_metadata_change(&topics(4));
        assert_eq!(grown.group_epoch(), 3, "grew while away: bump");

        let mut gone = restored(&live);
        gone.on_metadata_change(&BTreeMap::new());
        assert_eq!(gone.group_epoch(), 3, "deleted while away: bump");
    }

    /// Truncations and random bytes never panic, whatever the key type.
    #[test]
    fn garbage_never_panics() {
        let keys: Vec<RecordKey> = every_value().iter().map(key_for).collect();
        let mut inputs: Vec<Vec<u8>> = every_value()
            .iter()
            .map(|v| v.encode().expect("encode").to_vec())
            .collect();
        inputs.extend(fixture().into_iter().filter_map(|(_, _, _, v)| v));
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut rnd = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for input in &inputs {
            for key in &keys {
                for cut in 0..input.len() {
                    let _ = ConsumerRecordValue::decode(key, &input[..cut]);
                }
                for _ in 0..64 {
                    let mut b = input.clone();
                    let n = 1 + (rnd() % 4) as usize;
                    for _ in 0..n {
                        let i = (rnd() as usize) % b.len();
                        b[i] = rnd() as u8;
                    }
                    let _ = ConsumerRecordValue::decode(key, &b);
                    let mut rp = ConsumerGroupReplayer::new();
                    let _ = rp.apply(key, Some(&b));
                    let _ = rp.finish(Instant::now(), &ConsumerGroupConfig::default());
                }
            }
        }
        for _ in 0..2000 {
            let len = (rnd() % 64) as usize;
            let mut b: Vec<u8> = (0..len).map(|_| rnd() as u8).collect();
            if b.len() >= 2 {
                b[0] = 0;
                b[1] = 0;
            }
            for key in &keys {
                let _ = ConsumerRecordValue::decode(key, &b);
            }
            let _ = decode_key(&b);
        }
        // Huge array counts do not allocate beyond the input.
        for key in &keys {
            let _ = ConsumerRecordValue::decode(key, &unhex("0000 ffffffff0f"));
            let _ = ConsumerRecordValue::decode(key, &unhex("0000 00000000 00000000 00 ffffff7f"));
        }
    }
}
