//! Transaction markers: the control batches that end a transaction on a
//! data partition (Kafka's `EndTransactionMarker` and
//! `MemoryRecords.withEndTransactionMarker`).
//!
//! A marker batch is a RecordBatch v2 with the transactional (bit 4) and
//! control (bit 5) attributes, the producer's id and epoch, base sequence -1
//! and one record whose key is the control record key (`int16` version 0,
//! `int16` type: 0 = ABORT, 1 = COMMIT) and whose value is `int16` version 0
//! and the coordinator epoch (`int32`). Consumers skip these batches;
//! brokers use them to end the producer's ongoing transaction.

use bytes::BytesMut;
use kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};

/// Control record type of an abort marker.
pub const CONTROL_TYPE_ABORT: i16 = 0;
/// Control record type of a commit marker.
pub const CONTROL_TYPE_COMMIT: i16 = 1;

/// The end of a transaction as a marker carries it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EndTxnMarker {
    /// Commit (true) or abort (false).
    pub commit: bool,
    /// The coordinator epoch that wrote it (fences markers from an older
    /// coordinator).
    pub coordinator_epoch: i32,
}

/// Why a control record is not an end-transaction marker.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MarkerError {
    /// The key is shorter than 4 bytes or has a negative version.
    #[error("invalid control record key")]
    BadKey,
    /// A control record type other than COMMIT or ABORT.
    #[error("control record type {0} is not a transaction marker")]
    NotAMarker(i16),
    /// The value is shorter than 6 bytes or has a negative version.
    #[error("invalid end transaction marker value")]
    BadValue,
    /// The batch could not be encoded.
    #[error("cannot encode marker batch: {0}")]
    Encode(String),
}

/// The control record key of a marker.
pub fn marker_key(commit: bool) -> [u8; 4] {
    let t = if commit {
        CONTROL_TYPE_COMMIT
    } else {
        CONTROL_TYPE_ABORT
    };
    let mut k = [0u8; 4];
    k[2..].copy_from_slice(&t.to_be_bytes());
    k
}

/// The value of a marker (version 0).
pub fn marker_value(coordinator_epoch: i32) -> [u8; 6] {
    let mut v = [0u8; 6];
    v[2..].copy_from_slice(&coordinator_epoch.to_be_bytes());
    v
}

/// Decodes a control record's key and value as Kafka's
/// `EndTransactionMarker.deserialize` does: newer versions are read as
/// version 0.
pub fn decode_marker(key: &[u8], value: &[u8]) -> Result<EndTxnMarker, MarkerError> {
    if key.len() < 4 || i16::from_be_bytes([key[0], key[1]]) < 0 {
        return Err(MarkerError::BadKey);
    }
    let commit = match i16::from_be_bytes([key[2], key[3]]) {
        CONTROL_TYPE_ABORT => false,
        CONTROL_TYPE_COMMIT => true,
        t => return Err(MarkerError::NotAMarker(t)),
    };
    if value.len() < 6 || i16::from_be_bytes([value[0], value[1]]) < 0 {
        return Err(MarkerError::BadValue);
    }
    let coordinator_epoch = i32::from_be_bytes([value[2], value[3], value[4], value[5]]);
    Ok(EndTxnMarker {
        commit,
        coordinator_epoch,
    })
}

/// The marker a control batch carries, read from the batch's bytes (its
/// header and at least its first record; control batches are never
/// compressed). `None` for any other batch, or a control record that is
/// not a transaction marker.
pub fn marker_of_batch(batch: &[u8]) -> Option<EndTxnMarker> {
    use crate::protocol::batch::{varint, BatchHeader, HEADER_LEN};
    let h = BatchHeader::parse(batch).ok()?;
    if !h.is_control() || h.compression() != 0 {
        return None;
    }
    let mut b = batch.get(HEADER_LEN..)?;
    let _len = varint(&mut b).ok()?;
    let (_attributes, rest) = b.split_first()?;
    b = rest;
    let _ts_delta = varint(&mut b).ok()?;
    let _offset_delta = varint(&mut b).ok()?;
    let klen = usize::try_from(varint(&mut b).ok()?).ok()?;
    let key = b.get(..klen)?;
    b = &b[klen..];
    let vlen = usize::try_from(varint(&mut b).ok()?).ok()?;
    let value = b.get(..vlen)?;
    decode_marker(key, value).ok()
}

/// How many bytes of a control batch [`marker_of_batch`] needs at most
/// (the header and one marker record).
pub const MARKER_READ_BYTES: usize = 128;

/// A marker batch at base offset 0, ready to be stamped and appended.
pub fn marker_batch(
    producer_id: i64,
    producer_epoch: i16,
    marker: EndTxnMarker,
    partition_leader_epoch: i32,
    timestamp_ms: i64,
) -> Result<Vec<u8>, MarkerError> {
    let record = Record {
        transactional: true,
        control: true,
        delete_horizon: false,
        partition_leader_epoch,
        producer_id,
        producer_epoch,
        timestamp_type: TimestampType::Creation,
        offset: 0,
        sequence: -1,
        timestamp: timestamp_ms,
        key: Some(marker_key(marker.commit).to_vec().into()),
        value: Some(marker_value(marker.coordinator_epoch).to_vec().into()),
        headers: Default::default(),
    };
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut buf,
        std::slice::from_ref(&record),
        &RecordEncodeOptions {
            version: 2,
            compression: Compression::None,
        },
    )
    .map_err(|e| MarkerError::Encode(e.to_string()))?;
    Ok(buf.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_marker_batch_reads_back_as_its_marker() {
        for commit in [true, false] {
            let m = EndTxnMarker {
                commit,
                coordinator_epoch: 7,
            };
            let b = marker_batch(5, 2, m, 3, 1000).expect("batch");
            assert_eq!(marker_of_batch(&b), Some(m));
            assert_eq!(
                marker_of_batch(&b[..b.len().min(MARKER_READ_BYTES)]),
                Some(m)
            );
        }
    }
    use crate::protocol::batch::{check_crc, BatchHeader};

    fn unhex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
            .collect()
    }

    // Kafka 4.1.1: MemoryRecords.withEndTransactionMarker(0, 1700000000123,
    // leaderEpoch, 1000, (short) 3, new EndTransactionMarker(type, epoch)).
    const KAFKA_COMMIT: &str = "00000000000000000000004200000005021c3d16af0030000000000000018bcfe5687b0000018bcfe5687b00000000000003e80003ffffffff000000012000000008000000010c00000000000700";
    const KAFKA_ABORT: &str = "000000000000000000000042ffffffff02926e09a20030000000000000018bcfe5687b0000018bcfe5687b00000000000003e80003ffffffff000000012000000008000000000c00000000000000";

    #[test]
    fn marker_batches_match_kafka() {
        let commit = EndTxnMarker {
            commit: true,
            coordinator_epoch: 7,
        };
        let abort = EndTxnMarker {
            commit: false,
            coordinator_epoch: 0,
        };
        let ts = 1_700_000_000_123;
        assert_eq!(
            marker_batch(1000, 3, commit, 5, ts).expect("valid"),
            unhex(KAFKA_COMMIT)
        );
        assert_eq!(
            marker_batch(1000, 3, abort, -1, ts).expect("valid"),
            unhex(KAFKA_ABORT)
        );
        let b = unhex(KAFKA_COMMIT);
        let h = BatchHeader::parse(&b).expect("valid");
        check_crc(&b, &h).expect("valid");
        assert!(h.is_control() && h.is_transactional());
        assert_eq!(
            (h.producer_id, h.producer_epoch, h.base_sequence),
            (1000, 3, -1)
        );
    }

    #[test]
    fn decode_marker_as_kafka() {
        assert_eq!(
            decode_marker(&marker_key(true), &marker_value(9)).expect("valid"),
            EndTxnMarker {
                commit: true,
                coordinator_epoch: 9
            }
        );
        // A newer value version is read as version 0.
        assert_eq!(
            decode_marker(&[0, 0, 0, 0], &[0, 1, 0, 0, 0, 2, 0xff]).expect("valid"),
            EndTxnMarker {
                commit: false,
                coordinator_epoch: 2
            }
        );
        assert_eq!(
            decode_marker(&[0, 0, 0], &marker_value(1)),
            Err(MarkerError::BadKey)
        );
        assert_eq!(
            decode_marker(&[0xff, 0, 0, 1], &marker_value(1)),
            Err(MarkerError::BadKey)
        );
        assert_eq!(
            decode_marker(&[0, 0, 0, 5], &marker_value(1)),
            Err(MarkerError::NotAMarker(5))
        );
        assert_eq!(
            decode_marker(&marker_key(true), &[0, 0, 0]),
            Err(MarkerError::BadValue)
        );
    }
}
