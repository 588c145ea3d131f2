//! Key and value codecs for the records of `__transaction_state`.
//!
//! The transaction coordinator keeps one record per transactional id in the
//! compacted internal topic `__transaction_state`, in Apache Kafka's formats
//! (`TransactionLogKey` / `TransactionLogValue`, from the JSON schemas in
//! `kafka-transaction-coordinator-4.1.1.jar`), so Kafka's tools and our
//! loader read the same bytes the same way.
//!
//! # Framing
//!
//! * A **key** is an `int16` version (0, the only one) followed by
//!   `TransactionLogKey` v0: the transactional id as an `int16`-length string.
//! * A **value** is an `int16` version followed by `TransactionLogValue` at
//!   that version. v0 is non-flexible; v1 is flexible (compact strings and
//!   arrays, a tagged-field section per struct) and adds the tagged fields
//!   `PreviousProducerId` (0), `NextProducerId` (1), `ClientTransactionVersion`
//!   (2) and `NextProducerEpoch` (3), each written only when it differs from
//!   its default. Kafka writes v0 until the `transaction.version` feature is
//!   at least 1, then v1.
//! * `TransactionPartitions` is nullable: Kafka writes null for an `Empty`
//!   transaction and a list of (topic, partition ids) otherwise.
//!
//! Tombstones (null values) are the loader's business, not this module's.
//! Decoding never panics and never allocates more than the input can hold.

use bytes::{BufMut, Bytes, BytesMut};

use crate::group::records::{put_array_len, put_string, put_uvarint, Reader, RecordError};

use super::state::TransactionState;

/// The only `TransactionLogKey` version.
pub const KEY_VERSION: i16 = 0;
/// Highest `TransactionLogValue` version this codec reads and writes.
pub const VALUE_MAX_VERSION: i16 = 1;

const TAG_PREVIOUS_PRODUCER_ID: u32 = 0;
const TAG_NEXT_PRODUCER_ID: u32 = 1;
const TAG_CLIENT_TRANSACTION_VERSION: u32 = 2;
const TAG_NEXT_PRODUCER_EPOCH: u32 = 3;

/// The key of a `__transaction_state` record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TxnLogKey {
    /// A transactional id's record (`TransactionLogKey` v0).
    Transaction(String),
    /// A key version this codec does not know; Kafka's loader skips these.
    Unknown(i16),
}

/// The partitions of one topic in a transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnTopicPartitions {
    /// The topic.
    pub topic: String,
    /// Its partition ids in the transaction.
    pub partitions: Vec<i32>,
}

/// `TransactionLogValue`: one transactional id's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnLogValue {
    /// The producer id in use.
    pub producer_id: i64,
    /// The producer id of the last committed transaction (v1 tag 0; -1 = none).
    pub previous_producer_id: i64,
    /// The producer id handed out on an epoch overflow (v1 tag 1; -1 = none).
    pub next_producer_id: i64,
    /// The producer epoch.
    pub producer_epoch: i16,
    /// The epoch that goes with `next_producer_id` (v1 tag 3; -1 = none).
    pub next_producer_epoch: i16,
    /// The transaction timeout.
    pub transaction_timeout_ms: i32,
    /// The state, as [`TransactionState::id`].
    pub state: TransactionState,
    /// The partitions in the transaction; `None` is written as null.
    pub partitions: Option<Vec<TxnTopicPartitions>>,
    /// When the transaction was last updated.
    pub last_update_timestamp_ms: i64,
    /// When the transaction started (-1 when none is running).
    pub start_timestamp_ms: i64,
    /// The client's transaction version (v1 tag 2; default 0).
    pub client_transaction_version: i16,
}

impl TxnLogValue {
    /// A value with every tagged field at its default.
    pub fn new(producer_id: i64, producer_epoch: i16, state: TransactionState) -> Self {
        TxnLogValue {
            producer_id,
            previous_producer_id: -1,
            next_producer_id: -1,
            producer_epoch,
            next_producer_epoch: -1,
            transaction_timeout_ms: 60_000,
            state,
            partitions: None,
            last_update_timestamp_ms: -1,
            start_timestamp_ms: -1,
            client_transaction_version: 0,
        }
    }
}

/// Encodes a key.
pub fn encode_key(transactional_id: &str) -> Result<Bytes, RecordError> {
    let mut out = BytesMut::with_capacity(4 + transactional_id.len());
    out.put_i16(KEY_VERSION);
    put_string(&mut out, false, "transactional_id", transactional_id)?;
    Ok(out.freeze())
}

/// Decodes a key. An unknown version decodes as [`TxnLogKey::Unknown`].
pub fn decode_key(b: &[u8]) -> Result<TxnLogKey, RecordError> {
    let mut r = Reader::new(b);
    let version = r.i16()?;
    if version != KEY_VERSION {
        return Ok(TxnLogKey::Unknown(version));
    }
    Ok(TxnLogKey::Transaction(
        r.string_v(false, "transactional_id")?,
    ))
}

/// Encodes a value at `version` (0 or 1).
pub fn encode_value(v: &TxnLogValue, version: i16) -> Result<Bytes, RecordError> {
    if !(0..=VALUE_MAX_VERSION).contains(&version) {
        return Err(RecordError::UnsupportedVersion {
            what: "TransactionLogValue",
            version,
        });
    }
    let flexible = version >= 1;
    let mut out = BytesMut::with_capacity(64);
    out.put_i16(version);
    out.put_i64(v.producer_id);
    out.put_i16(v.producer_epoch);
    out.put_i32(v.transaction_timeout_ms);
    out.put_i8(v.state.id());
    match &v.partitions {
        None if flexible => put_uvarint(&mut out, 0),
        None => out.put_i32(-1),
        Some(topics) => {
            put_array_len(&mut out, flexible, "transaction_partitions", topics.len())?;
            for t in topics {
                put_string(&mut out, flexible, "topic", &t.topic)?;
                put_array_len(&mut out, flexible, "partition_ids", t.partitions.len())?;
                for p in &t.partitions {
                    out.put_i32(*p);
                }
                if flexible {
                    put_uvarint(&mut out, 0);
                }
            }
        }
    }
    out.put_i64(v.last_update_timestamp_ms);
    out.put_i64(v.start_timestamp_ms);
    if flexible {
        // Tagged fields in tag order, each only when not at its default.
        let mut tags: Vec<(u32, Vec<u8>)> = Vec::new();
        if v.previous_producer_id != -1 {
            tags.push((
                TAG_PREVIOUS_PRODUCER_ID,
                v.previous_producer_id.to_be_bytes().to_vec(),
            ));
        }
        if v.next_producer_id != -1 {
            tags.push((
                TAG_NEXT_PRODUCER_ID,
                v.next_producer_id.to_be_bytes().to_vec(),
            ));
        }
        if v.client_transaction_version != 0 {
            tags.push((
                TAG_CLIENT_TRANSACTION_VERSION,
                v.client_transaction_version.to_be_bytes().to_vec(),
            ));
        }
        if v.next_producer_epoch != -1 {
            tags.push((
                TAG_NEXT_PRODUCER_EPOCH,
                v.next_producer_epoch.to_be_bytes().to_vec(),
            ));
        }
        put_uvarint(&mut out, tags.len() as u32);
        for (tag, payload) in tags {
            put_uvarint(&mut out, tag);
            put_uvarint(&mut out, payload.len() as u32);
            out.put_slice(&payload);
        }
    }
    Ok(out.freeze())
}

fn fixed<const N: usize>(tag: u32, payload: &[u8]) -> Result<[u8; N], RecordError> {
    payload
        .try_into()
        .map_err(|_| RecordError::BadTaggedField { tag })
}

/// Decodes a (non-null) value of version 0 or 1.
pub fn decode_value(b: &[u8]) -> Result<TxnLogValue, RecordError> {
    let mut r = Reader::new(b);
    let version = r.i16()?;
    if !(0..=VALUE_MAX_VERSION).contains(&version) {
        return Err(RecordError::UnsupportedVersion {
            what: "TransactionLogValue",
            version,
        });
    }
    let flexible = version >= 1;
    let producer_id = r.i64()?;
    let producer_epoch = r.i16()?;
    let transaction_timeout_ms = r.i32()?;
    let status = r.take(1)?[0] as i8;
    let state = TransactionState::from_id(status).ok_or(RecordError::UnsupportedVersion {
        what: "TransactionStatus",
        version: i16::from(status),
    })?;
    let count = if flexible {
        r.compact_len()?
    } else {
        match r.i32()? {
            -1 => None,
            n if n < -1 => {
                return Err(RecordError::InvalidLength {
                    field: "transaction_partitions",
                    len: i64::from(n),
                })
            }
            n => Some(n as usize),
        }
    };
    let partitions = match count {
        None => None,
        Some(n) => {
            // Each entry takes at least 2 bytes (empty topic + empty array).
            let mut topics = Vec::with_capacity(n.min(r.remaining() / 2));
            for _ in 0..n {
                let topic = r.string_v(flexible, "topic")?;
                let m = r.array_len_v(flexible, "partition_ids")?;
                let mut ids = Vec::with_capacity(m.min(r.remaining() / 4));
                for _ in 0..m {
                    ids.push(r.i32()?);
                }
                if flexible {
                    r.tagged_fields(|_, _| Ok(()))?;
                }
                topics.push(TxnTopicPartitions {
                    topic,
                    partitions: ids,
                });
            }
            Some(topics)
        }
    };
    let last_update_timestamp_ms = r.i64()?;
    let start_timestamp_ms = r.i64()?;
    let mut v = TxnLogValue {
        producer_id,
        previous_producer_id: -1,
        next_producer_id: -1,
        producer_epoch,
        next_producer_epoch: -1,
        transaction_timeout_ms,
        state,
        partitions,
        last_update_timestamp_ms,
        start_timestamp_ms,
        client_transaction_version: 0,
    };
    if flexible {
        r.tagged_fields(|tag, payload| {
            match tag {
                TAG_PREVIOUS_PRODUCER_ID => {
                    v.previous_producer_id = i64::from_be_bytes(fixed(tag, payload)?)
                }
                TAG_NEXT_PRODUCER_ID => {
                    v.next_producer_id = i64::from_be_bytes(fixed(tag, payload)?)
                }
                TAG_CLIENT_TRANSACTION_VERSION => {
                    v.client_transaction_version = i16::from_be_bytes(fixed(tag, payload)?)
                }
                TAG_NEXT_PRODUCER_EPOCH => {
                    v.next_producer_epoch = i16::from_be_bytes(fixed(tag, payload)?)
                }
                _ => {}
            }
            Ok(())
        })?;
    }
    Ok(v)
}

/// The `__transaction_state` partition that owns `transactional_id`:
/// `Utils.abs(transactionalId.hashCode()) % partitions`, as Kafka's
/// `TransactionStateManager.partitionFor`.
pub fn partition_for(transactional_id: &str, partitions: i32) -> i32 {
    crate::group::records::partition_for(transactional_id, partitions)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unhex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
            .collect()
    }

    // Bytes written by Kafka 4.1.1's own generated serializer
    // (`MessageUtil.toVersionPrefixedBytes` on `TransactionLogKey` /
    // `TransactionLogValue` from kafka-transaction-coordinator-4.1.1.jar).
    const KAFKA_KEY: &str = "0000000474782d31";
    const KAFKA_V0_ONGOING: &str = "000000000000000003e800030000ea6001000000010001740000000200000000000000020000018bcfe5687b0000018bcfe56800";
    const KAFKA_V1_ONGOING: &str = "000100000000000003e800030000ea6001020274030000000000000002000000018bcfe5687b0000018bcfe5680000";
    const KAFKA_V0_EMPTY: &str =
        "000000000000000003e800040000ea6000ffffffff0000018bcfe5687bffffffffffffffff";
    const KAFKA_V1_TAGGED: &str = "000100000000000003e800050000ea6004010000018bcfe5687b0000018bcfe5680004000800000000000003e7010800000000000003e90202000203020000";

    fn ongoing() -> TxnLogValue {
        TxnLogValue {
            transaction_timeout_ms: 60_000,
            partitions: Some(vec![TxnTopicPartitions {
                topic: "t".into(),
                partitions: vec![0, 2],
            }]),
            last_update_timestamp_ms: 1_700_000_000_123,
            start_timestamp_ms: 1_700_000_000_000,
            ..TxnLogValue::new(1000, 3, TransactionState::Ongoing)
        }
    }

    #[test]
    fn key_matches_kafka() {
        assert_eq!(
            encode_key("tx-1").expect("valid").as_ref(),
            unhex(KAFKA_KEY)
        );
        assert_eq!(
            decode_key(&unhex(KAFKA_KEY)).expect("valid"),
            TxnLogKey::Transaction("tx-1".into())
        );
        assert_eq!(
            decode_key(&[0, 7, 0, 0]).expect("valid"),
            TxnLogKey::Unknown(7)
        );
    }

    #[test]
    fn values_match_kafka_both_ways() {
        let empty = TxnLogValue {
            last_update_timestamp_ms: 1_700_000_000_123,
            ..TxnLogValue::new(1000, 4, TransactionState::Empty)
        };
        let tagged = TxnLogValue {
            previous_producer_id: 999,
            next_producer_id: 1001,
            next_producer_epoch: 0,
            partitions: Some(vec![]),
            last_update_timestamp_ms: 1_700_000_000_123,
            start_timestamp_ms: 1_700_000_000_000,
            client_transaction_version: 2,
            ..TxnLogValue::new(1000, 5, TransactionState::CompleteCommit)
        };
        for (v, version, hex) in [
            (ongoing(), 0, KAFKA_V0_ONGOING),
            (ongoing(), 1, KAFKA_V1_ONGOING),
            (empty, 0, KAFKA_V0_EMPTY),
            (tagged, 1, KAFKA_V1_TAGGED),
        ] {
            let bytes = unhex(hex);
            assert_eq!(
                encode_value(&v, version).expect("valid").as_ref(),
                bytes,
                "{hex}"
            );
            assert_eq!(decode_value(&bytes).expect("valid"), v, "{hex}");
        }
    }

    #[test]
    fn bad_input_is_an_error_not_a_panic() {
        let full = unhex(KAFKA_V1_TAGGED);
        for n in 0..full.len() {
            assert!(decode_value(&full[..n]).is_err(), "prefix {n}");
        }
        let mut bad_state = unhex(KAFKA_V0_EMPTY);
        bad_state[16] = 9;
        assert!(decode_value(&bad_state).is_err());
        assert!(decode_value(&[0, 2]).is_err());
        // A huge partition count with no bytes behind it.
        let mut huge = unhex(KAFKA_V0_EMPTY)[..17].to_vec();
        huge.extend_from_slice(&[0x7f, 0xff, 0xff, 0xff]);
        assert!(decode_value(&huge).is_err());
        assert!(encode_value(&ongoing(), 2).is_err());
    }

    #[test]
    fn partition_for_is_kafkas() {
        // Java: "my-txn".hashCode() = -1061187895; Utils.abs(..) % 50 = 45.
        assert_eq!(partition_for("my-txn", 50), 45);
        assert_eq!(partition_for("", 50), 0);
    }
}
