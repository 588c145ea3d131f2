//! Key and value codecs for the records of `__consumer_offsets`.
//!
//! The group coordinator keeps its durable state in the compacted internal
//! topic `__consumer_offsets`, in exactly the formats Apache Kafka uses, so
//! Kafka's own tools and our loader read the same bytes the same way.
//!
//! # Framing
//!
//! * A **key** is an `int16` record type followed by the key struct at its
//!   only version, 0 (non-flexible). Before Kafka 4.0 the `int16` was called
//!   the "key version"; the bytes are identical. Types used here:
//!   0 = `LegacyOffsetCommitKey` and 1 = `OffsetCommitKey` (same layout:
//!   group, topic, partition), 2 = `GroupMetadataKey` (group), and the
//!   KIP-848 consumer group keys 3 = `ConsumerGroupMetadataKey`,
//!   4 = `ConsumerGroupPartitionMetadataKey`, 6 =
//!   `ConsumerGroupTargetAssignmentMetadataKey` (group id) and
//!   5 = `ConsumerGroupMemberMetadataKey`, 7 =
//!   `ConsumerGroupTargetAssignmentMemberKey`, 8 =
//!   `ConsumerGroupCurrentMemberAssignmentKey` (group id, member id); their
//!   values are in [`super::consumer_records`]. Every other type belongs to
//!   records this codec does not model and decodes as [`RecordKey::Unknown`].
//! * A **value** is an `int16` version followed by the value struct at that
//!   version. Non-flexible versions use `int16`-length strings and
//!   `int32`-length bytes and arrays; flexible versions (4+ for both values
//!   here) use compact (unsigned-varint length + 1) strings, bytes and arrays
//!   and end every struct with a tagged-field section.
//!
//! # Versions Kafka 4.1 writes
//!
//! Read from `GroupCoordinatorRecordHelpers` in the 4.1.1 jars and confirmed
//! against records a real 4.1.1 broker wrote (see the `real_kafka_*` tests):
//!
//! * `OffsetCommitValue` **v4** (flexible) when the commit has no expire
//!   timestamp, **v1** when it has one (OffsetCommit v2–v4 requests with a
//!   retention time). v4 carries tagged field 0, `topicId` (UUID), written
//!   only when it is not the zero UUID.
//! * `GroupMetadataValue` **v3** (non-flexible; v4 exists but is not written).
//!
//! Tombstones (null values) are the loader's business, not this module's.
//! Decoding never panics and never allocates more than the input can hold.

use bytes::{BufMut, Bytes, BytesMut};
use uuid::Uuid;

/// Key record type (formerly "key version") of `LegacyOffsetCommitKey`.
pub const KEY_TYPE_LEGACY_OFFSET_COMMIT: i16 = 0;
/// Key record type of `OffsetCommitKey`.
pub const KEY_TYPE_OFFSET_COMMIT: i16 = 1;
/// Key record type of `GroupMetadataKey` (classic groups).
pub const KEY_TYPE_GROUP_METADATA: i16 = 2;
/// Key record type of `ConsumerGroupMetadataKey` (KIP-848 groups).
pub const KEY_TYPE_CONSUMER_GROUP_METADATA: i16 = 3;
/// Key record type of `ConsumerGroupPartitionMetadataKey` (Kafka 4.1 only
/// writes tombstones of it).
pub const KEY_TYPE_CONSUMER_GROUP_PARTITION_METADATA: i16 = 4;
/// Key record type of `ConsumerGroupMemberMetadataKey`.
pub const KEY_TYPE_CONSUMER_GROUP_MEMBER_METADATA: i16 = 5;
/// Key record type of `ConsumerGroupTargetAssignmentMetadataKey`.
pub const KEY_TYPE_CONSUMER_GROUP_TARGET_ASSIGNMENT_METADATA: i16 = 6;
/// Key record type of `ConsumerGroupTargetAssignmentMemberKey`.
pub const KEY_TYPE_CONSUMER_GROUP_TARGET_ASSIGNMENT_MEMBER: i16 = 7;
/// Key record type of `ConsumerGroupCurrentMemberAssignmentKey`.
pub const KEY_TYPE_CONSUMER_GROUP_CURRENT_MEMBER_ASSIGNMENT: i16 = 8;

/// Highest `OffsetCommitValue` version this codec reads.
pub const OFFSET_VALUE_MAX_VERSION: i16 = 4;
/// Highest `GroupMetadataValue` version this codec reads.
pub const GROUP_VALUE_MAX_VERSION: i16 = 4;
/// The `GroupMetadataValue` version Kafka 4.x writes, and so do we.
pub const GROUP_VALUE_WRITE_VERSION: i16 = 3;

/// Tag of `topicId` in flexible `OffsetCommitValue` versions.
const TAG_OFFSET_TOPIC_ID: u32 = 0;

/// The key of a `__consumer_offsets` record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordKey {
    /// A committed offset (`OffsetCommitKey`, key types 0 and 1).
    Offset {
        /// The group id.
        group: String,
        /// The topic name.
        topic: String,
        /// The partition index.
        partition: i32,
    },
    /// A classic group's metadata (`GroupMetadataKey`, key type 2).
    GroupMetadata {
        /// The group id.
        group: String,
    },
    /// A KIP-848 consumer group's epoch (`ConsumerGroupMetadataKey`,
    /// key type 3; value `ConsumerGroupMetadataValue`).
    ConsumerGroupMetadata {
        /// The group id.
        group: String,
    },
    /// A KIP-848 group's subscription metadata
    /// (`ConsumerGroupPartitionMetadataKey`, key type 4). Kafka 4.1 no
    /// longer writes its value, only tombstones.
    ConsumerGroupPartitionMetadata {
        /// The group id.
        group: String,
    },
    /// A KIP-848 member's subscription (`ConsumerGroupMemberMetadataKey`,
    /// key type 5).
    ConsumerGroupMemberMetadata {
        /// The group id.
        group: String,
        /// The member id.
        member: String,
    },
    /// A KIP-848 group's target assignment epoch
    /// (`ConsumerGroupTargetAssignmentMetadataKey`, key type 6).
    ConsumerGroupTargetAssignmentMetadata {
        /// The group id.
        group: String,
    },
    /// A KIP-848 member's target assignment
    /// (`ConsumerGroupTargetAssignmentMemberKey`, key type 7).
    ConsumerGroupTargetAssignmentMember {
        /// The group id.
        group: String,
        /// The member id.
        member: String,
    },
    /// A KIP-848 member's current assignment and epochs
    /// (`ConsumerGroupCurrentMemberAssignmentKey`, key type 8).
    ConsumerGroupCurrentMemberAssignment {
        /// The group id.
        group: String,
        /// The member id.
        member: String,
    },
    /// Any other record type; the loader skips it (Kafka does the same with
    /// types it does not know).
    Unknown {
        /// The record type (key version) read.
        version: i16,
    },
}

impl RecordKey {
    /// The group the record belongs to (`None` for [`RecordKey::Unknown`]).
    pub fn group(&self) -> Option<&str> {
        match self {
            RecordKey::Offset { group, .. }
            | RecordKey::GroupMetadata { group }
            | RecordKey::ConsumerGroupMetadata { group }
            | RecordKey::ConsumerGroupPartitionMetadata { group }
            | RecordKey::ConsumerGroupMemberMetadata { group, .. }
            | RecordKey::ConsumerGroupTargetAssignmentMetadata { group }
            | RecordKey::ConsumerGroupTargetAssignmentMember { group, .. }
            | RecordKey::ConsumerGroupCurrentMemberAssignment { group, .. } => Some(group),
            RecordKey::Unknown { .. } => None,
        }
    }
}

/// An `OffsetCommitValue`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetValue {
    /// The committed offset.
    pub offset: i64,
    /// The leader epoch of the last consumed record, or -1 for none
    /// (stored from v3 on; older versions decode as -1).
    pub leader_epoch: i32,
    /// The client's metadata string.
    pub metadata: String,
    /// When the commit was appended, in ms.
    pub commit_timestamp: i64,
    /// When the commit expires, in ms (v1 only; its presence selects v1).
    pub expire_timestamp: Option<i64>,
    /// The topic id (tagged field 0 in v4+, written when the commit named
    /// the topic by id; `None` stands for Kafka's zero UUID).
    pub topic_id: Option<Uuid>,
}

/// One member of a classic group, as stored in `GroupMetadataValue`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberMetadata {
    /// The member id.
    pub member_id: String,
    /// The static membership instance id (v3+; `None` before).
    pub group_instance_id: Option<String>,
    /// The client id.
    pub client_id: String,
    /// The client host, as Kafka formats it (e.g. `/127.0.0.1`).
    pub client_host: String,
    /// The rebalance timeout (v1+; v0 stores none and decodes as the
    /// session timeout, as Kafka does).
    pub rebalance_timeout_ms: i32,
    /// The session timeout.
    pub session_timeout_ms: i32,
    /// The member's subscription (the selected protocol's metadata).
    pub subscription: Bytes,
    /// The member's assignment.
    pub assignment: Bytes,
}

/// A `GroupMetadataValue` (classic groups).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupMetadataValue {
    /// The protocol type, e.g. `consumer` (empty when none).
    pub protocol_type: String,
    /// The generation id.
    pub generation: i32,
    /// The selected protocol, e.g. `range`.
    pub protocol: Option<String>,
    /// The leader's member id.
    pub leader: Option<String>,
    /// When the group last changed state, in ms; -1 if none (v2+).
    pub current_state_timestamp: i64,
    /// The members.
    pub members: Vec<MemberMetadata>,
}

/// Why a record could not be decoded or encoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    /// The input ended before the field did.
    #[error("record truncated: needed {needed} more bytes at offset {at}")]
    Truncated {
        /// Byte offset where the read started.
        at: usize,
        /// Bytes the read needed beyond the end of the input.
        needed: usize,
    },
    /// A value version outside the range this codec knows.
    #[error("unsupported {what} version {version}")]
    UnsupportedVersion {
        /// Which record part.
        what: &'static str,
        /// The version read.
        version: i16,
    },
    /// A length prefix that is negative where null is not allowed, or that
    /// cannot be valid.
    #[error("invalid length {len} for {field}")]
    InvalidLength {
        /// The field.
        field: &'static str,
        /// The length read.
        len: i64,
    },
    /// A non-nullable field was serialized as null.
    #[error("non-nullable field {0} was null")]
    UnexpectedNull(&'static str),
    /// A string field was not UTF-8.
    #[error("field {0} is not valid UTF-8")]
    InvalidUtf8(&'static str),
    /// An unsigned varint longer than 5 bytes.
    #[error("malformed varint at offset {0}")]
    BadVarint(usize),
    /// A tagged field that is known but malformed (wrong size).
    #[error("malformed tagged field {tag}")]
    BadTaggedField {
        /// The tag.
        tag: u32,
    },
    /// A value too long for the version being encoded (e.g. a string over
    /// 32767 bytes in a non-flexible version). Kafka refuses these too.
    #[error("field {field} is too long to serialize ({len} bytes)")]
    TooLong {
        /// The field.
        field: &'static str,
        /// Its length in bytes.
        len: usize,
    },
}

// ---------------------------------------------------------------------------
// Reading
// ---------------------------------------------------------------------------

/// A bounds-checked cursor over the input.
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    pub(crate) fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8], RecordError> {
        if n > self.remaining() {
            return Err(RecordError::Truncated {
                at: self.pos,
                needed: n - self.remaining(),
            });
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], RecordError> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }

    pub(crate) fn i16(&mut self) -> Result<i16, RecordError> {
        Ok(i16::from_be_bytes(self.array()?))
    }

    pub(crate) fn i32(&mut self) -> Result<i32, RecordError> {
        Ok(i32::from_be_bytes(self.array()?))
    }

    pub(crate) fn i64(&mut self) -> Result<i64, RecordError> {
        Ok(i64::from_be_bytes(self.array()?))
    }

    pub(crate) fn uvarint(&mut self) -> Result<u32, RecordError> {
        let start = self.pos;
        let mut value: u32 = 0;
        for i in 0..5 {
            let b = self.take(1)?[0];
            if i == 4 && b > 0x0f {
                return Err(RecordError::BadVarint(start));
            }
            value |= u32::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(RecordError::BadVarint(start))
    }

    fn utf8(&mut self, n: usize, field: &'static str) -> Result<String, RecordError> {
        let raw = self.take(n)?;
        std::str::from_utf8(raw)
            .map(str::to_owned)
            .map_err(|_| RecordError::InvalidUtf8(field))
    }

    /// `string` / `nullable string` (int16 length, -1 = null).
    fn nullable_string(&mut self, field: &'static str) -> Result<Option<String>, RecordError> {
        let len = self.i16()?;
        match len {
            -1 => Ok(None),
            n if n < -1 => Err(RecordError::InvalidLength {
                field,
                len: i64::from(n),
            }),
            n => self.utf8(n as usize, field).map(Some),
        }
    }

    fn string(&mut self, field: &'static str) -> Result<String, RecordError> {
        self.nullable_string(field)?
            .ok_or(RecordError::UnexpectedNull(field))
    }

    /// Compact (flexible) length: uvarint N+1, 0 = null.
    pub(crate) fn compact_len(&mut self) -> Result<Option<usize>, RecordError> {
        let n = self.uvarint()?;
        Ok(n.checked_sub(1).map(|n| n as usize))
    }

    pub(crate) fn compact_nullable_string(
        &mut self,
        field: &'static str,
    ) -> Result<Option<String>, RecordError> {
        match self.compact_len()? {
            None => Ok(None),
            Some(n) => {
                if n > i16::MAX as usize {
                    // Kafka's generated readers reject strings over 32767 bytes.
                    return Err(RecordError::InvalidLength {
                        field,
                        len: n as i64,
                    });
                }
                self.utf8(n, field).map(Some)
            }
        }
    }

    pub(crate) fn compact_string(&mut self, field: &'static str) -> Result<String, RecordError> {
        self.compact_nullable_string(field)?
            .ok_or(RecordError::UnexpectedNull(field))
    }

    pub(crate) fn string_v(
        &mut self,
        flexible: bool,
        field: &'static str,
    ) -> Result<String, RecordError> {
        if flexible {
            self.compact_string(field)
        } else {
            self.string(field)
        }
    }

    fn nullable_string_v(
        &mut self,
        flexible: bool,
        field: &'static str,
    ) -> Result<Option<String>, RecordError> {
        if flexible {
            self.compact_nullable_string(field)
        } else {
            self.nullable_string(field)
        }
    }

    /// Non-nullable `bytes` (int32 length, or compact when flexible).
    pub(crate) fn bytes_v(
        &mut self,
        flexible: bool,
        field: &'static str,
    ) -> Result<Bytes, RecordError> {
        let len = if flexible {
            self.compact_len()?
        } else {
            match self.i32()? {
                -1 => None,
                n if n < -1 => {
                    return Err(RecordError::InvalidLength {
                        field,
                        len: i64::from(n),
                    })
                }
                n => Some(n as usize),
            }
        };
        let len = len.ok_or(RecordError::UnexpectedNull(field))?;
        Ok(Bytes::copy_from_slice(self.take(len)?))
    }

    /// Non-nullable array length (int32, or compact when flexible).
    pub(crate) fn array_len_v(
        &mut self,
        flexible: bool,
        field: &'static str,
    ) -> Result<usize, RecordError> {
        let len = if flexible {
            self.compact_len()?
        } else {
            match self.i32()? {
                -1 => None,
                n if n < -1 => {
                    return Err(RecordError::InvalidLength {
                        field,
                        len: i64::from(n),
                    })
                }
                n => Some(n as usize),
            }
        };
        len.ok_or(RecordError::UnexpectedNull(field))
    }

    /// A tagged-field section. `on_tag` receives each (tag, payload) and
    /// returns whether the tag was known; unknown tags are skipped, as Kafka
    /// keeps them only as opaque raw fields.
    pub(crate) fn tagged_fields(
        &mut self,
        mut on_tag: impl FnMut(u32, &'a [u8]) -> Result<(), RecordError>,
    ) -> Result<(), RecordError> {
        let count = self.uvarint()?;
        for _ in 0..count {
            let tag = self.uvarint()?;
            let size = self.uvarint()? as usize;
            let payload = self.take(size)?;
            on_tag(tag, payload)?;
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------
// Writing
// ---------------------------------------------------------------------------

pub(crate) fn put_uvarint(out: &mut BytesMut, mut v: u32) {
    while v >= 0x80 {
        out.put_u8((v as u8 & 0x7f) | 0x80);
        v >>= 7;
    }
    out.put_u8(v as u8);
}

fn compact_len_prefix(field: &'static str, len: usize) -> Result<u32, RecordError> {
    u32::try_from(len)
        .ok()
        .and_then(|n| n.checked_add(1))
        .ok_or(RecordError::TooLong { field, len })
}

/// `string` / `nullable string`, int16 or compact length by `flexible`.
pub(crate) fn put_nullable_string(
    out: &mut BytesMut,
    flexible: bool,
    field: &'static str,
    s: Option<&str>,
) -> Result<(), RecordError> {
    // Kafka's generated writers refuse strings over 0x7fff bytes in every
    // version, compact ones included.
    if let Some(s) = s {
        if s.len() > i16::MAX as usize {
            return Err(RecordError::TooLong {
                field,
                len: s.len(),
            });
        }
    }
    match (flexible, s) {
        (false, None) => out.put_i16(-1),
        (false, Some(s)) => {
            out.put_i16(s.len() as i16);
            out.put_slice(s.as_bytes());
        }
        (true, None) => put_uvarint(out, 0),
        (true, Some(s)) => {
            put_uvarint(out, compact_len_prefix(field, s.len())?);
            out.put_slice(s.as_bytes());
        }
    }
    Ok(())
}

pub(crate) fn put_string(
    out: &mut BytesMut,
    flexible: bool,
    field: &'static str,
    s: &str,
) -> Result<(), RecordError> {
    put_nullable_string(out, flexible, field, Some(s))
}

pub(crate) fn put_bytes(
    out: &mut BytesMut,
    flexible: bool,
    field: &'static str,
    b: &[u8],
) -> Result<(), RecordError> {
    if flexible {
        put_uvarint(out, compact_len_prefix(field, b.len())?);
    } else {
        let n = i32::try_from(b.len()).map_err(|_| RecordError::TooLong {
            field,
            len: b.len(),
        })?;
        out.put_i32(n);
    }
    out.put_slice(b);
    Ok(())
}

pub(crate) fn put_array_len(
    out: &mut BytesMut,
    flexible: bool,
    field: &'static str,
    len: usize,
) -> Result<(), RecordError> {
    if flexible {
        put_uvarint(out, compact_len_prefix(field, len)?);
    } else {
        let n = i32::try_from(len).map_err(|_| RecordError::TooLong { field, len })?;
        out.put_i32(n);
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Keys
// ---------------------------------------------------------------------------

/// Encodes a key: `int16` record type + the key struct (version 0).
///
/// Offset keys are written with type 1 (`OffsetCommitKey`), as Kafka does.
/// [`RecordKey::Unknown`] encodes as just its type.
pub fn encode_key(k: &RecordKey) -> Result<Bytes, RecordError> {
    let mut out = BytesMut::with_capacity(64);
    match k {
        RecordKey::Offset {
            group,
            topic,
            partition,
        } => {
            out.put_i16(KEY_TYPE_OFFSET_COMMIT);
            put_string(&mut out, false, "group", group)?;
            put_string(&mut out, false, "topic", topic)?;
            out.put_i32(*partition);
        }
        RecordKey::GroupMetadata { group } => {
            out.put_i16(KEY_TYPE_GROUP_METADATA);
            put_string(&mut out, false, "group", group)?;
        }
        RecordKey::ConsumerGroupMetadata { group } => {
            out.put_i16(KEY_TYPE_CONSUMER_GROUP_METADATA);
            put_string(&mut out, false, "groupId", group)?;
        }
        RecordKey::ConsumerGroupPartitionMetadata { group } => {
            out.put_i16(KEY_TYPE_CONSUMER_GROUP_PARTITION_METADATA);
            put_string(&mut out, false, "groupId", group)?;
        }
        RecordKey::ConsumerGroupTargetAssignmentMetadata { group } => {
            out.put_i16(KEY_TYPE_CONSUMER_GROUP_TARGET_ASSIGNMENT_METADATA);
            put_string(&mut out, false, "groupId", group)?;
        }
        RecordKey::ConsumerGroupMemberMetadata { group, member } => {
            out.put_i16(KEY_TYPE_CONSUMER_GROUP_MEMBER_METADATA);
            put_string(&mut out, false, "groupId", group)?;
            put_string(&mut out, false, "memberId", member)?;
        }
        RecordKey::ConsumerGroupTargetAssignmentMember { group, member } => {
            out.put_i16(KEY_TYPE_CONSUMER_GROUP_TARGET_ASSIGNMENT_MEMBER);
            put_string(&mut out, false, "groupId", group)?;
            put_string(&mut out, false, "memberId", member)?;
        }
        RecordKey::ConsumerGroupCurrentMemberAssignment { group, member } => {
            out.put_i16(KEY_TYPE_CONSUMER_GROUP_CURRENT_MEMBER_ASSIGNMENT);
            put_string(&mut out, false, "groupId", group)?;
            put_string(&mut out, false, "memberId", member)?;
        }
        RecordKey::Unknown { version } => out.put_i16(*version),
    }
    Ok(out.freeze())
}

/// Decodes a key. Unknown record types decode as [`RecordKey::Unknown`]
/// without looking at the rest; bytes after a known key struct are ignored,
/// as Kafka's reader ignores them.
pub fn decode_key(b: &[u8]) -> Result<RecordKey, RecordError> {
    let mut r = Reader::new(b);
    let version = r.i16()?;
    match version {
        KEY_TYPE_LEGACY_OFFSET_COMMIT | KEY_TYPE_OFFSET_COMMIT => Ok(RecordKey::Offset {
            group: r.string("group")?,
            topic: r.string("topic")?,
            partition: r.i32()?,
        }),
        KEY_TYPE_GROUP_METADATA => Ok(RecordKey::GroupMetadata {
            group: r.string("group")?,
        }),
        KEY_TYPE_CONSUMER_GROUP_METADATA => Ok(RecordKey::ConsumerGroupMetadata {
            group: r.string("groupId")?,
        }),
        KEY_TYPE_CONSUMER_GROUP_PARTITION_METADATA => {
            Ok(RecordKey::ConsumerGroupPartitionMetadata {
                group: r.string("groupId")?,
            })
        }
        KEY_TYPE_CONSUMER_GROUP_TARGET_ASSIGNMENT_METADATA => {
            Ok(RecordKey::ConsumerGroupTargetAssignmentMetadata {
                group: r.string("groupId")?,
            })
        }
        KEY_TYPE_CONSUMER_GROUP_MEMBER_METADATA => Ok(RecordKey::ConsumerGroupMemberMetadata {
            group: r.string("groupId")?,
            member: r.string("memberId")?,
        }),
        KEY_TYPE_CONSUMER_GROUP_TARGET_ASSIGNMENT_MEMBER => {
            Ok(RecordKey::ConsumerGroupTargetAssignmentMember {
                group: r.string("groupId")?,
                member: r.string("memberId")?,
            })
        }
        KEY_TYPE_CONSUMER_GROUP_CURRENT_MEMBER_ASSIGNMENT => {
            Ok(RecordKey::ConsumerGroupCurrentMemberAssignment {
                group: r.string("groupId")?,
                member: r.string("memberId")?,
            })
        }
        other => Ok(RecordKey::Unknown { version: other }),
    }
}

// ---------------------------------------------------------------------------
// OffsetCommitValue
// ---------------------------------------------------------------------------

/// The version [`encode_offset_value`] writes for `v`, as Kafka 4.x chooses
/// it: v1 when an expire timestamp is present, else v4.
pub fn offset_value_version(v: &OffsetValue) -> i16 {
    if v.expire_timestamp.is_some() {
        1
    } else {
        4
    }
}

/// Encodes an `OffsetCommitValue` at the version Kafka 4.x writes (see
/// [`offset_value_version`]). In v1 the leader epoch and topic id are not
/// representable and are dropped, exactly as Kafka drops them.
pub fn encode_offset_value(v: &OffsetValue) -> Result<Bytes, RecordError> {
    encode_offset_value_version(v, offset_value_version(v))
}

/// Encodes an `OffsetCommitValue` at an explicit version 0..=4. Fields the
/// version lacks are dropped.
pub fn encode_offset_value_version(v: &OffsetValue, version: i16) -> Result<Bytes, RecordError> {
    if !(0..=OFFSET_VALUE_MAX_VERSION).contains(&version) {
        return Err(RecordError::UnsupportedVersion {
            what: "OffsetCommitValue",
            version,
        });
    }
    let flexible = version >= 4;
    let mut out = BytesMut::with_capacity(32 + v.metadata.len());
    out.put_i16(version);
    out.put_i64(v.offset);
    if version >= 3 {
        out.put_i32(v.leader_epoch);
    }
    put_string(&mut out, flexible, "metadata", &v.metadata)?;
    out.put_i64(v.commit_timestamp);
    if version == 1 {
        out.put_i64(v.expire_timestamp.unwrap_or(-1));
    }
    if flexible {
        match v.topic_id.filter(|id| !id.is_nil()) {
            Some(id) => {
                put_uvarint(&mut out, 1);
                put_uvarint(&mut out, TAG_OFFSET_TOPIC_ID);
                put_uvarint(&mut out, 16);
                out.put_slice(id.as_bytes());
            }
            None => put_uvarint(&mut out, 0),
        }
    }
    Ok(out.freeze())
}

/// Decodes an `OffsetCommitValue`, versions 0..=4.
///
/// v1's expire timestamp of -1 (Kafka's default) decodes as `None`.
pub fn decode_offset_value(b: &[u8]) -> Result<OffsetValue, RecordError> {
    let mut r = Reader::new(b);
    let version = r.i16()?;
    if !(0..=OFFSET_VALUE_MAX_VERSION).contains(&version) {
        return Err(RecordError::UnsupportedVersion {
            what: "OffsetCommitValue",
            version,
        });
    }
    let flexible = version >= 4;
    let offset = r.i64()?;
    let leader_epoch = if version >= 3 { r.i32()? } else { -1 };
    let metadata = r.string_v(flexible, "metadata")?;
    let commit_timestamp = r.i64()?;
    let expire_timestamp = if version == 1 {
        Some(r.i64()?).filter(|&t| t != -1)
    } else {
        None
    };
    let mut topic_id = None;
    if flexible {
        r.tagged_fields(|tag, payload| {
            if tag == TAG_OFFSET_TOPIC_ID {
                let raw: [u8; 16] = payload
                    .try_into()
                    .map_err(|_| RecordError::BadTaggedField { tag })?;
                topic_id = Some(Uuid::from_bytes(raw)).filter(|id| !id.is_nil());
            }
            Ok(())
        })?;
    }
    Ok(OffsetValue {
        offset,
        leader_epoch,
        metadata,
        commit_timestamp,
        expire_timestamp,
        topic_id,
    })
}

// ---------------------------------------------------------------------------
// GroupMetadataValue
// ---------------------------------------------------------------------------

/// Encodes a `GroupMetadataValue` at v3, the version Kafka 4.x writes.
pub fn encode_group_value(v: &GroupMetadataValue) -> Result<Bytes, RecordError> {
    encode_group_value_version(v, GROUP_VALUE_WRITE_VERSION)
}

/// Encodes a `GroupMetadataValue` at an explicit version 0..=4. Fields the
/// version lacks are dropped.
pub fn encode_group_value_version(
    v: &GroupMetadataValue,
    version: i16,
) -> Result<Bytes, RecordError> {
    if !(0..=GROUP_VALUE_MAX_VERSION).contains(&version) {
        return Err(RecordError::UnsupportedVersion {
            what: "GroupMetadataValue",
            version,
        });
    }
    let flexible = version >= 4;
    let size: usize = 64
        + v.members
            .iter()
            .map(|m| {
                64 + m.member_id.len()
                    + m.client_id.len()
                    + m.client_host.len()
                    + m.group_instance_id.as_ref().map_or(0, String::len)
                    + m.subscription.len()
                    + m.assignment.len()
            })
            .sum::<usize>();
    let mut out = BytesMut::with_capacity(size);
    out.put_i16(version);
    put_string(&mut out, flexible, "protocolType", &v.protocol_type)?;
    out.put_i32(v.generation);
    put_nullable_string(&mut out, flexible, "protocol", v.protocol.as_deref())?;
    put_nullable_string(&mut out, flexible, "leader", v.leader.as_deref())?;
    if version >= 2 {
        out.put_i64(v.current_state_timestamp);
    }
    put_array_len(&mut out, flexible, "members", v.members.len())?;
    for m in &v.members {
        put_string(&mut out, flexible, "memberId", &m.member_id)?;
        if version >= 3 {
            put_nullable_string(
                &mut out,
                flexible,
                "groupInstanceId",
                m.group_instance_id.as_deref(),
            )?;
        }
        put_string(&mut out, flexible, "clientId", &m.client_id)?;
        put_string(&mut out, flexible, "clientHost", &m.client_host)?;
        if version >= 1 {
            out.put_i32(m.rebalance_timeout_ms);
        }
        out.put_i32(m.session_timeout_ms);
        put_bytes(&mut out, flexible, "subscription", &m.subscription)?;
        put_bytes(&mut out, flexible, "assignment", &m.assignment)?;
        if flexible {
            put_uvarint(&mut out, 0);
        }
    }
    if flexible {
        put_uvarint(&mut out, 0);
    }
    Ok(out.freeze())
}

/// Decodes a `GroupMetadataValue`, versions 0..=4.
///
/// v0 has no rebalance timeout; like Kafka's loader, the session timeout
/// stands in for it. Versions before 2 decode `current_state_timestamp` as
/// -1, before 3 `group_instance_id` as `None`.
pub fn decode_group_value(b: &[u8]) -> Result<GroupMetadataValue, RecordError> {
    let mut r = Reader::new(b);
    let version = r.i16()?;
    if !(0..=GROUP_VALUE_MAX_VERSION).contains(&version) {
        return Err(RecordError::UnsupportedVersion {
            what: "GroupMetadataValue",
            version,
        });
    }
    let flexible = version >= 4;
    let protocol_type = r.string_v(flexible, "protocolType")?;
    let generation = r.i32()?;
    let protocol = r.nullable_string_v(flexible, "protocol")?;
    let leader = r.nullable_string_v(flexible, "leader")?;
    let current_state_timestamp = if version >= 2 { r.i64()? } else { -1 };
    let count = r.array_len_v(flexible, "members")?;
    // A member takes at least 14 bytes on the wire (flexible: 9), so the
    // count can never legitimately exceed the remaining input.
    let mut members = Vec::with_capacity(count.min(r.remaining() / 9));
    for _ in 0..count {
        let member_id = r.string_v(flexible, "memberId")?;
        let group_instance_id = if version >= 3 {
            r.nullable_string_v(flexible, "groupInstanceId")?
        } else {
            None
        };
        let client_id = r.string_v(flexible, "clientId")?;
        let client_host = r.string_v(flexible, "clientHost")?;
        let rebalance_timeout = if version >= 1 { Some(r.i32()?) } else { None };
        let session_timeout_ms = r.i32()?;
        let subscription = r.bytes_v(flexible, "subscription")?;
        let assignment = r.bytes_v(flexible, "assignment")?;
        if flexible {
            r.tagged_fields(|_, _| Ok(()))?;
        }
        members.push(MemberMetadata {
            member_id,
            group_instance_id,
            client_id,
            client_host,
            rebalance_timeout_ms: rebalance_timeout.unwrap_or(session_timeout_ms),
            session_timeout_ms,
            subscription,
            assignment,
        });
    }
    if flexible {
        r.tagged_fields(|_, _| Ok(()))?;
    }
    Ok(GroupMetadataValue {
        protocol_type,
        generation,
        protocol,
        leader,
        current_state_timestamp,
        members,
    })
}

// ---------------------------------------------------------------------------
// Partitioning
// ---------------------------------------------------------------------------

/// Java's `String.hashCode`: `s[0]*31^(n-1) + … + s[n-1]` over UTF-16 code
/// units, with `int` wrap-around.
pub fn java_string_hash(s: &str) -> i32 {
    s.encode_utf16().fold(0i32, |h, unit| {
        h.wrapping_mul(31).wrapping_add(i32::from(unit))
    })
}

/// The `__consumer_offsets` partition that owns `group`:
/// `Utils.abs(groupId.hashCode()) % partitions`, where Kafka's `Utils.abs`
/// maps `i32::MIN` to 0. Returns 0 when `partitions <= 0`.
pub fn partition_for(group: &str, partitions: i32) -> i32 {
    if partitions <= 0 {
        return 0;
    }
    let h = java_string_hash(group);
    let abs = if h == i32::MIN { 0 } else { h.abs() };
    abs % partitions
}

#[cfg(test)]
mod tests {
    use super::*;

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

    fn sample_offset() -> OffsetValue {
        OffsetValue {
            offset: 1234,
            leader_epoch: 7,
            metadata: "meta ✓".into(),
            commit_timestamp: 1_700_000_000_123,
            expire_timestamp: None,
            topic_id: None,
        }
    }

    fn sample_group() -> GroupMetadataValue {
        GroupMetadataValue {
            protocol_type: "consumer".into(),
            generation: 5,
            protocol: Some("range".into()),
            leader: Some("m-1".into()),
            current_state_timestamp: 1_700_000_000_999,
            members: vec![
                MemberMetadata {
                    member_id: "m-1".into(),
                    group_instance_id: Some("static-1".into()),
                    client_id: "client-a".into(),
                    client_host: "/127.0.0.1".into(),
                    rebalance_timeout_ms: 300_000,
                    session_timeout_ms: 45_000,
                    subscription: Bytes::from_static(b"\x00\x01sub"),
                    assignment: Bytes::from_static(b"\x00\x01asg"),
                },
                MemberMetadata {
                    member_id: "m-2".into(),
                    group_instance_id: None,
                    client_id: "client-b".into(),
                    client_host: "/10.0.0.2".into(),
                    rebalance_timeout_ms: 60_000,
                    session_timeout_ms: 10_000,
                    subscription: Bytes::new(),
                    assignment: Bytes::from_static(b""),
                },
            ],
        }
    }

    // --- keys ----------------------------------------------------------------

    #[test]
    fn key_round_trips() {
        let keys = [
            RecordKey::Offset {
                group: "g".into(),
                topic: "t".into(),
                partition: 3,
            },
            RecordKey::Offset {
                group: "日本語グループ".into(),
                topic: "topic.with-dots_".into(),
                partition: i32::MAX,
            },
            RecordKey::GroupMetadata { group: "".into() },
            RecordKey::GroupMetadata {
                group: "my-group".into(),
            },
            RecordKey::ConsumerGroupMetadata {
                group: "grüppe-ñ".into(),
            },
            RecordKey::ConsumerGroupPartitionMetadata { group: "g".into() },
            RecordKey::ConsumerGroupMemberMetadata {
                group: "g".into(),
                member: "m".into(),
            },
            RecordKey::ConsumerGroupTargetAssignmentMetadata { group: "g".into() },
            RecordKey::ConsumerGroupTargetAssignmentMember {
                group: "g".into(),
                member: "".into(),
            },
            RecordKey::ConsumerGroupCurrentMemberAssignment {
                group: "grüppe-ñ".into(),
                member: "P8QM6FzGT6+nn+j9CD987A".into(),
            },
            RecordKey::Unknown { version: 17 },
            RecordKey::Unknown { version: -3 },
        ];
        for k in keys {
            let b = encode_key(&k).expect("encode");
            assert_eq!(decode_key(&b).expect("decode"), k);
        }
    }

    #[test]
    fn key_exact_bytes() {
        let b = encode_key(&RecordKey::Offset {
            group: "g".into(),
            topic: "t".into(),
            partition: 2,
        })
        .expect("encode");
        assert_eq!(hex(&b), "000100016700017400000002");
        let b = encode_key(&RecordKey::GroupMetadata { group: "ab".into() }).expect("encode");
        assert_eq!(hex(&b), "000200026162");
        let b =
            encode_key(&RecordKey::ConsumerGroupMetadata { group: "ab".into() }).expect("encode");
        assert_eq!(hex(&b), "000300026162");
    }

    #[test]
    fn legacy_offset_key_type_0_decodes() {
        let b = unhex("0000 0001 67 0001 74 00000009");
        assert_eq!(
            decode_key(&b).expect("decode"),
            RecordKey::Offset {
                group: "g".into(),
                topic: "t".into(),
                partition: 9
            }
        );
    }

    #[test]
    fn unknown_key_types_ignore_the_body() {
        // Type 9 (ShareGroupMetadataKey) etc.: never parsed.
        assert_eq!(
            decode_key(&unhex("0009 ffff")).expect("decode"),
            RecordKey::Unknown { version: 9 }
        );
        assert_eq!(
            decode_key(&unhex("0010")).expect("decode"),
            RecordKey::Unknown { version: 16 }
        );
    }

    #[test]
    fn key_errors() {
        assert!(matches!(
            decode_key(&[]),
            Err(RecordError::Truncated { at: 0, needed: 2 })
        ));
        assert!(matches!(
            decode_key(&unhex("0002 ffff")),
            Err(RecordError::UnexpectedNull("group"))
        ));
        assert!(matches!(
            decode_key(&unhex("0002 fff0")),
            Err(RecordError::InvalidLength { .. })
        ));
        assert!(matches!(
            decode_key(&unhex("0002 0002 c328")),
            Err(RecordError::InvalidUtf8("group"))
        ));
        assert!(matches!(
            decode_key(&unhex("0001 0001 67 0001 74 0000")),
            Err(RecordError::Truncated { .. })
        ));
        let long = "x".repeat(40_000);
        assert!(matches!(
            encode_key(&RecordKey::GroupMetadata { group: long }),
            Err(RecordError::TooLong { field: "group", .. })
        ));
    }

    // --- offset values -------------------------------------------------------

    #[test]
    fn offset_value_writes_v4_without_expiry_and_v1_with() {
        let v = sample_offset();
        let b = encode_offset_value(&v).expect("encode");
        assert_eq!(&b[..2], &[0, 4]);
        assert_eq!(decode_offset_value(&b).expect("decode"), v);

        let mut e = sample_offset();
        e.expire_timestamp = Some(1_700_086_400_123);
        let b = encode_offset_value(&e).expect("encode");
        assert_eq!(&b[..2], &[0, 1]);
        // v1 has no leader epoch: it decodes as -1.
        let mut want = e.clone();
        want.leader_epoch = -1;
        assert_eq!(decode_offset_value(&b).expect("decode"), want);
    }

    #[test]
    fn offset_value_v4_exact_bytes() {
        let v = OffsetValue {
            offset: 5,
            leader_epoch: -1,
            metadata: "m".into(),
            commit_timestamp: 0x0102,
            expire_timestamp: None,
            topic_id: None,
        };
        let b = encode_offset_value(&v).expect("encode");
        assert_eq!(
            hex(&b),
            "0004 0000000000000005 ffffffff 026d 0000000000000102 00".replace(' ', "")
        );
    }

    #[test]
    fn offset_value_topic_id_tag_round_trips() {
        let mut v = sample_offset();
        v.topic_id = Some(Uuid::from_u128(0x0011_2233_4455_6677_8899_aabb_ccdd_eeff));
        let b = encode_offset_value(&v).expect("encode");
        assert!(hex(&b).ends_with("01001000112233445566778899aabbccddeeff"));
        assert_eq!(decode_offset_value(&b).expect("decode"), v);
        // A zero UUID is Kafka's default: not written, decodes as None.
        v.topic_id = Some(Uuid::nil());
        let b = encode_offset_value(&v).expect("encode");
        assert_eq!(b[b.len() - 1], 0);
        v.topic_id = None;
        assert_eq!(decode_offset_value(&b).expect("decode"), v);
    }

    #[test]
    fn offset_value_every_version_round_trips() {
        for version in 0..=4 {
            let mut v = sample_offset();
            if version == 1 {
                v.expire_timestamp = Some(99);
            }
            if version < 3 {
                v.leader_epoch = -1;
            }
            let b = encode_offset_value_version(&v, version).expect("encode");
            assert_eq!(i16::from_be_bytes([b[0], b[1]]), version);
            assert_eq!(decode_offset_value(&b).expect("decode"), v, "v{version}");
        }
    }

    #[test]
    fn offset_value_hand_built_old_versions() {
        // v0: offset, metadata, commit timestamp.
        let v0 = unhex("0000 000000000000002a 0002 6869 0000018bcfe56800");
        let d = decode_offset_value(&v0).expect("v0");
        assert_eq!(
            d,
            OffsetValue {
                offset: 42,
                leader_epoch: -1,
                metadata: "hi".into(),
                commit_timestamp: 0x18bcfe56800,
                expire_timestamp: None,
                topic_id: None
            }
        );
        // v1 with expire timestamp, and with the -1 default.
        let v1 = unhex("0001 0000000000000001 0000 0000000000000010 0000000000000020");
        let d = decode_offset_value(&v1).expect("v1");
        assert_eq!(d.expire_timestamp, Some(0x20));
        assert_eq!(d.metadata, "");
        let v1 = unhex("0001 0000000000000001 0000 0000000000000010 ffffffffffffffff");
        assert_eq!(decode_offset_value(&v1).expect("v1").expire_timestamp, None);
        // v2: as v0.
        let v2 = unhex("0002 0000000000000003 0001 78 0000000000000004");
        let d = decode_offset_value(&v2).expect("v2");
        assert_eq!(
            (d.offset, d.metadata.as_str(), d.commit_timestamp),
            (3, "x", 4)
        );
        // v3: leader epoch.
        let v3 = unhex("0003 0000000000000003 00000009 0001 78 0000000000000004");
        assert_eq!(decode_offset_value(&v3).expect("v3").leader_epoch, 9);
        // v4 with an unknown tagged field (tag 7, 3 bytes) that must be skipped.
        let v4 = unhex("0004 0000000000000003 00000009 0278 0000000000000004 01 07 03 aabbcc");
        let d = decode_offset_value(&v4).expect("v4");
        assert_eq!((d.offset, d.leader_epoch, d.metadata.as_str()), (3, 9, "x"));
    }

    #[test]
    fn offset_value_errors() {
        assert!(matches!(
            decode_offset_value(&unhex("0005 0000000000000000")),
            Err(RecordError::UnsupportedVersion { version: 5, .. })
        ));
        assert!(matches!(
            decode_offset_value(&unhex("ffff")),
            Err(RecordError::UnsupportedVersion { version: -1, .. })
        ));
        // null metadata, flexible and not.
        assert!(matches!(
            decode_offset_value(&unhex("0000 0000000000000000 ffff 0000000000000000")),
            Err(RecordError::UnexpectedNull("metadata"))
        ));
        assert!(matches!(
            decode_offset_value(&unhex(
                "0004 0000000000000000 ffffffff 00 0000000000000000 00"
            )),
            Err(RecordError::UnexpectedNull("metadata"))
        ));
        // topicId tag with the wrong size.
        assert!(matches!(
            decode_offset_value(&unhex(
                "0004 0000000000000000 ffffffff 01 0000000000000000 01 00 02 aabb"
            )),
            Err(RecordError::BadTaggedField { tag: 0 })
        ));
        // A six-byte varint.
        assert!(matches!(
            decode_offset_value(&unhex(
                "0004 0000000000000000 ffffffff 01 0000000000000000 ffffffffff01"
            )),
            Err(RecordError::BadVarint(_))
        ));
        // A huge compact length is a truncation, not an allocation.
        assert!(decode_offset_value(&unhex("0004 0000000000000000 ffffffff ffffffff0f")).is_err());
        // Tagged field claiming more bytes than exist.
        assert!(matches!(
            decode_offset_value(&unhex(
                "0004 0000000000000000 ffffffff 01 0000000000000000 01 05 ffffffff0f"
            )),
            Err(RecordError::Truncated { .. })
        ));
    }

    // --- group values --------------------------------------------------------

    #[test]
    fn group_value_writes_v3() {
        let v = sample_group();
        let b = encode_group_value(&v).expect("encode");
        assert_eq!(&b[..2], &[0, 3]);
        assert_eq!(decode_group_value(&b).expect("decode"), v);
    }

    #[test]
    fn group_value_every_version_round_trips() {
        for version in 0..=4 {
            let mut v = sample_group();
            if version < 3 {
                for m in &mut v.members {
                    m.group_instance_id = None;
                }
            }
            if version < 2 {
                v.current_state_timestamp = -1;
            }
            if version < 1 {
                for m in &mut v.members {
                    m.rebalance_timeout_ms = m.session_timeout_ms;
                }
            }
            let b = encode_group_value_version(&v, version).expect("encode");
            assert_eq!(i16::from_be_bytes([b[0], b[1]]), version);
            assert_eq!(decode_group_value(&b).expect("decode"), v, "v{version}");
        }
        // Empty group, null protocol and leader.
        let empty = GroupMetadataValue {
            protocol_type: "".into(),
            generation: 0,
            protocol: None,
            leader: None,
            current_state_timestamp: -1,
            members: vec![],
        };
        for version in 0..=4 {
            let b = encode_group_value_version(&empty, version).expect("encode");
            assert_eq!(decode_group_value(&b).expect("decode"), empty);
        }
    }

    #[test]
    fn group_value_hand_built_v0_and_v4() {
        // v0: no rebalance timeout, no state timestamp, no instance id.
        let v0 = unhex(
            "0000 0008 636f6e73756d6572 00000001 0005 72616e6765 0001 61
             00000001 0001 61 0001 63 0002 2f68 00002710 00000001 01 00000000",
        );
        let d = decode_group_value(&v0).expect("v0");
        assert_eq!(d.protocol_type, "consumer");
        assert_eq!(d.protocol.as_deref(), Some("range"));
        assert_eq!(d.leader.as_deref(), Some("a"));
        assert_eq!(d.current_state_timestamp, -1);
        let m = &d.members[0];
        assert_eq!(
            (
                m.member_id.as_str(),
                m.client_id.as_str(),
                m.client_host.as_str()
            ),
            ("a", "c", "/h")
        );
        assert_eq!(
            (m.session_timeout_ms, m.rebalance_timeout_ms),
            (10_000, 10_000)
        );
        assert_eq!(&m.subscription[..], &[1]);
        assert!(m.assignment.is_empty());
        assert_eq!(m.group_instance_id, None);

        // v4 (flexible): null protocol/leader, one member with tags to skip.
        let v4 = unhex(
            "0004 09 636f6e73756d6572 ffffffff 00 00 0000000000000001
             02 02 61 00 02 63 03 2f68 00000005 00000006 02 01 01 01 02 01 00
             01 09 00",
        );
        let d = decode_group_value(&v4).expect("v4");
        assert_eq!(d.generation, -1);
        assert_eq!((d.protocol.clone(), d.leader.clone()), (None, None));
        assert_eq!(d.current_state_timestamp, 1);
        let m = &d.members[0];
        assert_eq!(
            (
                m.rebalance_timeout_ms,
                m.session_timeout_ms,
                m.group_instance_id.clone()
            ),
            (5, 6, None)
        );
        assert_eq!(&m.subscription[..], &[1]);
        assert!(m.assignment.is_empty());
    }

    #[test]
    fn group_value_errors() {
        assert!(matches!(
            decode_group_value(&unhex("0005")),
            Err(RecordError::UnsupportedVersion { version: 5, .. })
        ));
        // Members count of 2^31-1 with nothing behind it: an error, and no
        // allocation of that size.
        assert!(matches!(
            decode_group_value(&unhex(
                "0003 0000 00000000 ffff ffff 0000000000000000 7fffffff"
            )),
            Err(RecordError::Truncated { .. })
        ));
        // Null members array.
        assert!(matches!(
            decode_group_value(&unhex(
                "0003 0000 00000000 ffff ffff 0000000000000000 ffffffff"
            )),
            Err(RecordError::UnexpectedNull("members"))
        ));
        // Null subscription bytes.
        assert!(matches!(
            decode_group_value(&unhex(
                "0000 0000 00000000 ffff ffff 00000001 0001 61 0001 63 0001 68 00000001 ffffffff"
            )),
            Err(RecordError::UnexpectedNull("subscription"))
        ));
        // Negative bytes length below -1.
        assert!(matches!(
            decode_group_value(&unhex(
                "0000 0000 00000000 ffff ffff 00000001 0001 61 0001 63 0001 68 00000001 fffffff0"
            )),
            Err(RecordError::InvalidLength { .. })
        ));
    }

    // --- byte-exact against Kafka's own serializers ---------------------------

    /// `MessageUtil.toVersionPrefixedBytes` output of Kafka 4.1.1's generated
    /// `OffsetCommitValue` for `sample_offset()` (leader epoch only from v3,
    /// expire timestamp 99 in v1, topic id 00112233-…-eeff), versions 0..=4.
    const JAVA_OFFSET_VALUES: [&str; 5] = [
        "000000000000000004d200086d65746120e29c930000018bcfe5687b",
        "000100000000000004d200086d65746120e29c930000018bcfe5687b0000000000000063",
        "000200000000000004d200086d65746120e29c930000018bcfe5687b",
        "000300000000000004d20000000700086d65746120e29c930000018bcfe5687b",
        "000400000000000004d200000007096d65746120e29c930000018bcfe5687b\
         01001000112233445566778899aabbccddeeff",
    ];

    /// The same for `GroupMetadataValue` and `sample_group()`, versions 0..=4
    /// (fields a version lacks left at their defaults).
    const JAVA_GROUP_VALUES: [&str; 5] = [
        "00000008636f6e73756d657200000005000572616e676500036d2d310000000200036d2d310008636c69\
         656e742d61000a2f3132372e302e302e310000afc800000005000173756200000005000161736700036d\
         2d320008636c69656e742d6200092f31302e302e302e32000027100000000000000000",
        "00010008636f6e73756d657200000005000572616e676500036d2d310000000200036d2d310008636c69\
         656e742d61000a2f3132372e302e302e31000493e00000afc800000005000173756200000005000161\
         736700036d2d320008636c69656e742d6200092f31302e302e302e320000ea6000002710000000000000\
         0000",
        "00020008636f6e73756d657200000005000572616e676500036d2d310000018bcfe56be70000000200\
         036d2d310008636c69656e742d61000a2f3132372e302e302e31000493e00000afc80000000500017375\
         6200000005000161736700036d2d320008636c69656e742d6200092f31302e302e302e320000ea600000\
         27100000000000000000",
        "00030008636f6e73756d657200000005000572616e676500036d2d310000018bcfe56be70000000200\
         036d2d3100087374617469632d310008636c69656e742d61000a2f3132372e302e302e31000493e00000\
         afc800000005000173756200000005000161736700036d2d32ffff0008636c69656e742d6200092f3130\
         2e302e302e320000ea60000027100000000000000000",
        "000409636f6e73756d6572000000050672616e6765046d2d310000018bcfe56be703046d2d3109737461\
         7469632d3109636c69656e742d610b2f3132372e302e302e31000493e00000afc8060001737562060001\
         61736700046d2d320009636c69656e742d620a2f31302e302e302e320000ea600000271001010000",
    ];

    #[test]
    fn encodings_match_kafka_generated_serializers() {
        for (version, want) in (0i16..).zip(JAVA_OFFSET_VALUES) {
            let mut v = sample_offset();
            v.topic_id = Some(Uuid::from_u128(0x0011_2233_4455_6677_8899_aabb_ccdd_eeff));
            v.expire_timestamp = (version == 1).then_some(99);
            let b = encode_offset_value_version(&v, version).expect("encode");
            assert_eq!(hex(&b), unhex_str(want), "OffsetCommitValue v{version}");
            let d = decode_offset_value(&unhex(want)).expect("decode");
            assert_eq!(d.offset, 1234);
            assert_eq!(d.leader_epoch, if version >= 3 { 7 } else { -1 });
            assert_eq!(d.topic_id.is_some(), version >= 4);
        }
        for (version, want) in (0i16..).zip(JAVA_GROUP_VALUES) {
            let b = encode_group_value_version(&sample_group(), version).expect("encode");
            assert_eq!(hex(&b), unhex_str(want), "GroupMetadataValue v{version}");
            let d = decode_group_value(&unhex(want)).expect("decode");
            assert_eq!(d.members.len(), 2);
            assert_eq!(d.members[1].client_host, "/10.0.0.2");
        }
    }

    /// Normalises a (possibly line-continued) hex literal.
    fn unhex_str(s: &str) -> String {
        s.chars().filter(|c| !c.is_whitespace()).collect()
    }

    // --- fuzz-ish ------------------------------------------------------------

    fn all_encodings() -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        for version in 0..=4 {
            let mut v = sample_offset();
            v.topic_id = Some(Uuid::from_u128(42));
            v.expire_timestamp = Some(7);
            out.push(
                encode_offset_value_version(&v, version)
                    .expect("enc")
                    .to_vec(),
            );
            out.push(
                encode_group_value_version(&sample_group(), version)
                    .expect("enc")
                    .to_vec(),
            );
        }
        for k in [
            RecordKey::Offset {
                group: "gg".into(),
                topic: "tt".into(),
                partition: 1,
            },
            RecordKey::GroupMetadata { group: "gg".into() },
            RecordKey::ConsumerGroupMetadata { group: "gg".into() },
        ] {
            out.push(encode_key(&k).expect("enc").to_vec());
        }
        out.extend(fixture::records().into_iter().flat_map(|(k, v)| [k, v]));
        out
    }

    fn decode_all_ways(b: &[u8]) {
        let _ = decode_key(b);
        let _ = decode_offset_value(b);
        let _ = decode_group_value(b);
    }

    #[test]
    fn truncations_and_mutations_never_panic() {
        let encodings = all_encodings();
        for full in &encodings {
            for cut in 0..full.len() {
                let b = &full[..cut];
                decode_all_ways(b);
            }
            // Flip every byte to a few values.
            let mut m = full.clone();
            for i in 0..m.len() {
                let orig = m[i];
                for x in [0x00, 0x7f, 0x80, 0xff, orig ^ 0x01] {
                    m[i] = x;
                    decode_all_ways(&m);
                }
                m[i] = orig;
            }
        }
        // Truncated valid values are errors, never a shorter success, for the
        // fixed-layout parts (every prefix of a value misses a field).
        for version in 0..=4 {
            let b = encode_group_value_version(&sample_group(), version).expect("enc");
            for cut in 0..b.len() {
                assert!(
                    decode_group_value(&b[..cut]).is_err(),
                    "v{version} cut {cut}"
                );
            }
            let b = encode_offset_value_version(&sample_offset(), version).expect("enc");
            for cut in 0..b.len() {
                assert!(
                    decode_offset_value(&b[..cut]).is_err(),
                    "v{version} cut {cut}"
                );
            }
        }
        // Pseudo-random inputs (xorshift), seeded for reproducibility.
        let mut s: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..20_000 {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            let len = (s % 64) as usize;
            let mut buf = Vec::with_capacity(len);
            let mut t = s;
            for _ in 0..len {
                t ^= t << 13;
                t ^= t >> 7;
                t ^= t << 17;
                buf.push(t as u8);
            }
            // Bias the first two bytes toward valid versions.
            if len >= 2 {
                buf[0] = 0;
                buf[1] = (s >> 32) as u8 % 6;
            }
            decode_all_ways(&buf);
        }
    }

    // --- partition_for -------------------------------------------------------

    #[test]
    fn partition_for_matches_java() {
        // (group, String.hashCode(), Utils.abs(h) % 50, Utils.abs(h) % 7),
        // computed with Java 17 and kafka-clients 4.1.1's Utils.abs.
        let cases: [(&str, i32, i32, i32); 10] = [
            ("my-group", -1_906_497_762, 12, 1),
            ("g", 103, 3, 5),
            ("consumer-group-1", 147_483_020, 20, 6),
            ("grüppe-ñ", 243_491_000, 0, 4),
            ("日本語グループ", -305_235_731, 31, 3),
            ("😀emoji", -1_233_692_477, 27, 3),
            ("polygenelubricants", i32::MIN, 0, 0),
            ("", 0, 0, 0),
            ("test-group-42", -559_024_281, 31, 4),
            ("a", 97, 47, 6),
        ];
        for (g, h, p50, p7) in cases {
            assert_eq!(java_string_hash(g), h, "{g}");
            assert_eq!(partition_for(g, 50), p50, "{g}");
            assert_eq!(partition_for(g, 7), p7, "{g}");
        }
        assert_eq!(partition_for("x", 0), 0);
        assert_eq!(partition_for("x", -3), 0);
        assert_eq!(partition_for("x", 1), 0);
    }

    // --- records written by a real Apache Kafka 4.1.1 ------------------------

    mod fixture {
        /// (key, value) pairs as a real Kafka 4.1.1 wrote them to
        /// `__consumer_offsets`; see `testdata/README.md`. Tombstones
        /// have an empty value.
        pub(super) fn records() -> Vec<(Vec<u8>, Vec<u8>)> {
            lines().into_iter().map(|(_, _, k, v)| (k, v)).collect()
        }

        /// (partition, offset, key, value) per fixture line.
        pub(super) fn lines() -> Vec<(i32, i64, Vec<u8>, Vec<u8>)> {
            include_str!("testdata/kafka-4.1.1-consumer-offsets.hex")
                .lines()
                .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
                .map(|l| {
                    let f: Vec<&str> = l.split_whitespace().collect();
                    assert_eq!(f.len(), 4, "fixture line {l}");
                    let v = if f[3] == "-" {
                        Vec::new()
                    } else {
                        super::unhex(f[3])
                    };
                    (
                        f[0].parse().expect("partition"),
                        f[1].parse().expect("offset"),
                        super::unhex(f[2]),
                        v,
                    )
                })
                .collect()
        }
    }

    /// Every record in the fixture decodes, lives in the partition
    /// `partition_for` names, and re-encodes byte for byte.
    #[test]
    fn real_kafka_fixture_decodes_and_reencodes_identically() {
        let lines = fixture::lines();
        assert!(lines.len() >= 10, "fixture too small");
        let (mut offsets, mut groups, mut cgm) = (0, 0, 0);
        for (partition, _, k, v) in &lines {
            let key = decode_key(k).expect("key");
            if !matches!(key, RecordKey::Unknown { .. }) {
                assert_eq!(
                    encode_key(&key).expect("re-encode key"),
                    &k[..],
                    "key {key:?}"
                );
            }
            if let Some(g) = key.group() {
                assert_eq!(partition_for(g, 50), *partition, "{g}");
            }
            if v.is_empty() {
                continue;
            }
            match key {
                RecordKey::Offset { .. } => {
                    offsets += 1;
                    let d = decode_offset_value(v).expect("offset value");
                    assert_eq!(encode_offset_value(&d).expect("re-encode"), &v[..]);
                }
                RecordKey::GroupMetadata { .. } => {
                    groups += 1;
                    let d = decode_group_value(v).expect("group value");
                    assert_eq!(encode_group_value(&d).expect("re-encode"), &v[..]);
                }
                RecordKey::ConsumerGroupMetadata { .. } => cgm += 1,
                _ => {}
            }
        }
        assert!(
            offsets >= 8 && groups >= 1 && cgm >= 1,
            "{offsets} {groups} {cgm}"
        );
    }

    /// Spot checks of what the clients did (crosscheck.py) against the
    /// fixture. confluent-kafka sends commit metadata with a trailing NUL
    /// (it passes the C string's terminator along), and Kafka stores it.
    #[test]
    fn real_kafka_fixture_matches_client_actions() {
        let decoded: Vec<(RecordKey, Vec<u8>)> = fixture::records()
            .into_iter()
            .map(|(k, v)| (decode_key(&k).expect("key"), v))
            .collect();
        let last_offset = |group: &str, partition: i32| -> (i16, OffsetValue) {
            let (_, v) = decoded
                .iter()
                .rev()
                .find(|(k, v)| {
                    !v.is_empty()
                        && *k
                            == RecordKey::Offset {
                                group: group.into(),
                                topic: "xc-topic".into(),
                                partition,
                            }
                })
                .expect("offset record");
            (
                i16::from_be_bytes([v[0], v[1]]),
                decode_offset_value(v).expect("value"),
            )
        };
        let (ver, v) = last_offset("日本語グループ", 0);
        assert_eq!(
            (ver, v.offset, v.metadata.as_str()),
            (4, 7, "メタデータ ✓\0")
        );
        assert_eq!(
            (v.leader_epoch, v.expire_timestamp, v.topic_id),
            (-1, None, None)
        );
        let (_, v) = last_offset("日本語グループ", 1);
        assert_eq!((v.offset, v.metadata.as_str()), (0, "\0"));
        let (_, v) = last_offset("日本語グループ", 2);
        assert_eq!((v.offset, v.metadata.len()), (123_456_789_012, 301));
        let (_, v) = last_offset("my-group", 0);
        assert_eq!((v.offset, v.leader_epoch), (3, 0));
        assert!(v.metadata.starts_with("meta-") && v.metadata.ends_with("-p0\0"));
        let (_, v) = last_offset("grüppe-ñ", 0);
        assert_eq!(
            (v.offset, v.metadata.as_str(), v.leader_epoch),
            (1, "kip848\0", 0)
        );
        // OffsetCommit v2 with a retention time: Kafka writes value v1.
        let (ver, v) = last_offset("expire-group", 1);
        assert_eq!((ver, v.offset, v.metadata.as_str()), (1, 42, "with-expiry"));
        assert_eq!(v.expire_timestamp, Some(v.commit_timestamp + 86_400_000));

        // The classic group once had both members, one of them static.
        let full = decoded
            .iter()
            .filter(|(k, v)| {
                !v.is_empty()
                    && *k
                        == RecordKey::GroupMetadata {
                            group: "my-group".into(),
                        }
            })
            .map(|(_, v)| {
                assert_eq!(&v[..2], &[0, 3], "Kafka 4.1 writes GroupMetadataValue v3");
                decode_group_value(v).expect("group value")
            })
            .find(|g| g.members.len() == 2)
            .expect("a GroupMetadata record with two members");
        assert_eq!(full.protocol_type, "consumer");
        assert_eq!(full.protocol.as_deref(), Some("range"));
        assert!(full.generation >= 1 && full.current_state_timestamp > 0);
        let leader = full.leader.clone().expect("leader");
        assert!(full.members.iter().any(|m| m.member_id == leader));
        let stat = full
            .members
            .iter()
            .find(|m| m.group_instance_id.as_deref() == Some("static-1"))
            .expect("static member");
        assert_eq!(stat.client_id, "xc-client-a");
        assert!(stat.member_id.starts_with("static-1-"));
        for m in &full.members {
            assert_eq!(m.client_host, "/127.0.0.1");
            assert_eq!(
                (m.session_timeout_ms, m.rebalance_timeout_ms),
                (12_345, 123_456)
            );
            assert!(m.subscription.windows(8).any(|w| w == b"xc-topic"));
            assert!(m.assignment.windows(8).any(|w| w == b"xc-topic"));
        }
        // The KIP-848 group wrote a ConsumerGroupMetadata record.
        assert!(decoded.iter().any(|(k, _)| *k
            == RecordKey::ConsumerGroupMetadata {
                group: "grüppe-ñ".into()
            }));
    }

    /// Reads the `__consumer_offsets` segments a real Kafka wrote (run by
    /// `testdata/crosscheck.sh`), checks them against the client actions in
    /// the expectations file, and optionally (re)writes the fixture.
    ///
    /// `RUNNEL_XCHECK_DATA` = Kafka's log.dirs, `RUNNEL_XCHECK_EXPECT` = the
    /// JSON crosscheck.py wrote, `RUNNEL_XCHECK_FIXTURE` = fixture to write.
    #[test]
    #[ignore = "needs a Kafka data dir; run by testdata/crosscheck.sh"]
    fn real_kafka_crosscheck() {
        use kafka_protocol::records::RecordBatchDecoder;
        use std::fmt::Write as _;

        let data = std::env::var("RUNNEL_XCHECK_DATA").expect("RUNNEL_XCHECK_DATA");
        let expect_path = std::env::var("RUNNEL_XCHECK_EXPECT").expect("RUNNEL_XCHECK_EXPECT");
        let expect: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(expect_path).expect("read expectations"))
                .expect("json");

        // (partition, offset, key, value) for every record in every segment.
        let mut recs: Vec<(i32, i64, Bytes, Option<Bytes>)> = Vec::new();
        let mut dirs: Vec<_> = std::fs::read_dir(&data)
            .expect("data dir")
            .map(|e| e.expect("entry").path())
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("__consumer_offsets-"))
            })
            .collect();
        dirs.sort();
        for dir in dirs {
            let name = dir.file_name().and_then(|n| n.to_str()).expect("name");
            let partition: i32 = name
                .trim_start_matches("__consumer_offsets-")
                .parse()
                .expect("partition");
            let mut segs: Vec<_> = std::fs::read_dir(&dir)
                .expect("partition dir")
                .map(|e| e.expect("entry").path())
                .filter(|p| p.extension().is_some_and(|x| x == "log"))
                .collect();
            segs.sort();
            for seg in segs {
                let mut buf = Bytes::from(std::fs::read(&seg).expect("segment"));
                while !buf.is_empty() {
                    let set = RecordBatchDecoder::decode(&mut buf).expect("record batch");
                    for r in set.records {
                        if r.control {
                            continue;
                        }
                        recs.push((partition, r.offset, r.key.expect("key"), r.value));
                    }
                }
            }
        }
        recs.sort_by_key(|r| (r.0, r.1));
        assert!(!recs.is_empty(), "no records in {data}");

        let start_ms = expect["start_ms"].as_i64().expect("start_ms");
        let end_ms = expect["end_ms"].as_i64().expect("end_ms");
        let mut counts = std::collections::BTreeMap::<String, usize>::new();
        let mut by_key: Vec<(RecordKey, Option<Bytes>, i32)> = Vec::new();
        for (partition, offset, k, v) in &recs {
            let key = decode_key(k).expect("every key decodes");
            if !matches!(key, RecordKey::Unknown { .. }) {
                assert_eq!(
                    encode_key(&key).expect("re-encode"),
                    k,
                    "key at {partition}/{offset}"
                );
            }
            let kind = match &key {
                RecordKey::Offset { .. } => "offset".to_string(),
                RecordKey::GroupMetadata { .. } => "group".to_string(),
                RecordKey::ConsumerGroupMetadata { .. } => "consumer-group".to_string(),
                RecordKey::Unknown { version } => format!("type-{version}"),
                _ => format!("consumer-group-type-{}", i16::from_be_bytes([k[0], k[1]])),
            };
            let vver = v
                .as_ref()
                .filter(|v| v.len() >= 2)
                .map_or(-1, |v| i16::from_be_bytes([v[0], v[1]]));
            *counts
                .entry(format!("{kind} value-v{vver} tombstone={}", v.is_none()))
                .or_default() += 1;
            match (&key, v) {
                (RecordKey::Offset { group, .. }, Some(v)) => {
                    assert_eq!(partition_for(group, 50), *partition, "{group}");
                    let d = decode_offset_value(v).expect("offset value");
                    assert_eq!(&encode_offset_value(&d).expect("enc"), v, "{d:?}");
                    assert!(d.commit_timestamp >= start_ms && d.commit_timestamp <= end_ms);
                }
                (RecordKey::GroupMetadata { group }, Some(v)) => {
                    assert_eq!(partition_for(group, 50), *partition, "{group}");
                    let d = decode_group_value(v).expect("group value");
                    assert_eq!(&encode_group_value(&d).expect("enc"), v, "{d:?}");
                }
                (RecordKey::Unknown { .. }, _) => {}
                (other, v) => {
                    let group = other.group().expect("group");
                    assert_eq!(partition_for(group, 50), *partition, "{group}");
                    // KIP-848 records: values decode and re-encode exactly.
                    if let Some(v) = v {
                        let d =
                            super::super::consumer_records::ConsumerRecordValue::decode(other, v)
                                .expect("consumer group value")
                                .expect("a consumer group value");
                        assert_eq!(&d.encode().expect("enc"), v, "{d:?}");
                    }
                }
            }
            by_key.push((key, v.clone(), *partition));
        }
        eprintln!("record kinds: {counts:#?}");

        for e in expect["offsets"].as_array().expect("offsets") {
            let group = e["group"].as_str().expect("group");
            let want_key = RecordKey::Offset {
                group: group.into(),
                topic: e["topic"].as_str().expect("topic").into(),
                partition: e["partition"].as_i64().expect("partition") as i32,
            };
            let (_, v, _) = by_key
                .iter()
                .rev()
                .find(|(k, v, _)| *k == want_key && v.is_some())
                .unwrap_or_else(|| panic!("no record for {want_key:?}"));
            let v = v.as_ref().expect("value");
            let d = decode_offset_value(v).expect("value");
            assert_eq!(
                d.offset,
                e["offset"].as_i64().expect("offset"),
                "{want_key:?}"
            );
            let want_md = e.get("metadata_wire").unwrap_or(&e["metadata"]);
            assert_eq!(
                d.metadata,
                want_md.as_str().expect("metadata"),
                "{want_key:?}"
            );
            assert_eq!(
                i64::from(d.leader_epoch),
                e["leader_epoch"].as_i64().expect("epoch")
            );
            match e["retention_ms"].as_i64() {
                Some(ret) => {
                    assert_eq!(&v[..2], &[0, 1]);
                    assert_eq!(d.expire_timestamp, Some(d.commit_timestamp + ret));
                }
                None => {
                    assert_eq!(&v[..2], &[0, 4]);
                    assert_eq!(d.expire_timestamp, None);
                }
            }
        }

        let cg = &expect["classic_group"];
        let group = cg["group"].as_str().expect("group");
        let values: Vec<GroupMetadataValue> = by_key
            .iter()
            .filter(|(k, v, _)| {
                v.is_some()
                    && *k
                        == RecordKey::GroupMetadata {
                            group: group.into(),
                        }
            })
            .map(|(_, v, _)| decode_group_value(v.as_ref().expect("v")).expect("value"))
            .collect();
        let want_members = cg["members"].as_array().expect("members");
        let full = values
            .iter()
            .find(|g| g.members.len() == want_members.len())
            .expect("a GroupMetadata record with every member");
        assert_eq!(
            full.protocol_type,
            cg["protocol_type"].as_str().expect("pt")
        );
        assert_eq!(full.protocol.as_deref(), cg["protocol"].as_str());
        for wm in want_members {
            let id = wm["member_id"].as_str().expect("member_id");
            let m = full
                .members
                .iter()
                .find(|m| m.member_id == id)
                .unwrap_or_else(|| panic!("member {id} missing from {full:?}"));
            assert_eq!(
                m.group_instance_id.as_deref(),
                wm["group_instance_id"].as_str()
            );
            assert_eq!(m.client_id, wm["client_id"].as_str().expect("client_id"));
            assert_eq!(
                i64::from(m.session_timeout_ms),
                wm["session_timeout_ms"].as_i64().expect("s")
            );
            assert_eq!(
                i64::from(m.rebalance_timeout_ms),
                wm["rebalance_timeout_ms"].as_i64().expect("r")
            );
            assert_eq!(m.client_host, "/127.0.0.1");
        }
        let g848 = expect["consumer_protocol_group"]
            .as_str()
            .expect("848 group");
        assert!(by_key
            .iter()
            .any(|(k, _, _)| *k == RecordKey::ConsumerGroupMetadata { group: g848.into() }));

        if let Ok(path) = std::env::var("RUNNEL_XCHECK_FIXTURE") {
            let mut out = String::from(
                "# __consumer_offsets records written by Apache Kafka 4.1.1\n\
                 # (broker/src/group/testdata/crosscheck.sh).\n\
                 # partition offset key-hex value-hex ('-' = tombstone)\n",
            );
            for (partition, offset, k, v) in &recs {
                let v = v.as_ref().map_or_else(|| "-".to_string(), |v| hex(v));
                writeln!(out, "{partition} {offset} {} {v}", hex(k)).expect("fmt");
            }
            std::fs::write(&path, out).expect("write fixture");
            eprintln!("wrote {} records to {path}", recs.len());
        }
    }
}
