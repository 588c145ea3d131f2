//! RecordBatch (magic v2) headers: parsing, validation and stamping.
//!
//! Batches are stored exactly as the producer sent them. The broker only
//! rewrites the base offset and the partition leader epoch, which lie outside
//! the CRC-32C (it covers attributes through the end of the batch), so the
//! stored bytes stay valid without re-encoding.

use bytes::Buf;

/// Size of the fixed RecordBatch v2 header.
pub const HEADER_LEN: usize = 61;
/// Bytes before `batchLength`'s payload: baseOffset (8) + batchLength (4).
pub const LOG_OVERHEAD: usize = 12;

const CRC_OFFSET: usize = 17;
const ATTR_OFFSET: usize = 21;
const MAX_TS_OFFSET: usize = 35;

/// Why a batch was rejected; each maps to a Kafka error code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BatchError {
    /// CRC mismatch, bad lengths or unparsable records (CORRUPT_MESSAGE).
    #[error("corrupt record batch: {0}")]
    Corrupt(String),
    /// Structurally valid but not acceptable (INVALID_RECORD).
    #[error("invalid record: {0}")]
    Invalid(String),
    /// Larger than `max.message.bytes` (MESSAGE_TOO_LARGE).
    #[error("record batch of {size} bytes exceeds the maximum of {max}")]
    TooLarge {
        /// The batch size.
        size: usize,
        /// The limit.
        max: i64,
    },
    /// A codec this broker does not know (UNSUPPORTED_COMPRESSION_TYPE).
    #[error("unsupported compression codec {0}")]
    UnsupportedCompression(i16),
    /// Records that fail the topic's per-record rules (Kafka's
    /// `RecordValidationException`): INVALID_TIMESTAMP when a timestamp is
    /// out of range, else INVALID_RECORD; `records` are (index in the batch,
    /// why), sent back as the produce response's record errors.
    #[error("{message}")]
    Records {
        /// A timestamp was out of range (INVALID_TIMESTAMP).
        timestamp: bool,
        /// Kafka's message for the partition response.
        message: String,
        /// (index in the batch, why) of each refused record.
        records: Vec<(i32, String)>,
    },
}

impl BatchError {
    /// The Kafka error code for this rejection.
    pub fn code(&self) -> i16 {
        match self {
            BatchError::Corrupt(_) => 2,
            BatchError::Invalid(_) => 87,
            BatchError::TooLarge { .. } => 10,
            BatchError::UnsupportedCompression(_) => 76,
            BatchError::Records {
                timestamp: true, ..
            } => 32,
            BatchError::Records { .. } => 87,
        }
    }
}

/// The fixed header of one RecordBatch v2.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchHeader {
    /// First offset in the batch.
    pub base_offset: i64,
    /// Length of the batch after the `batchLength` field.
    pub batch_length: i32,
    /// Partition leader epoch stamped by the leader.
    pub partition_leader_epoch: i32,
    /// Magic byte (2).
    pub magic: i8,
    /// CRC-32C of attributes..end.
    pub crc: u32,
    /// Attribute bits.
    pub attributes: i16,
    /// Offset of the last record relative to `base_offset`.
    pub last_offset_delta: i32,
    /// Timestamp of the first record.
    pub base_timestamp: i64,
    /// Largest timestamp in the batch.
    pub max_timestamp: i64,
    /// Producer id, or -1.
    pub producer_id: i64,
    /// Producer epoch, or -1.
    pub producer_epoch: i16,
    /// First sequence number, or -1.
    pub base_sequence: i32,
    /// Number of records.
    pub records_count: i32,
}

impl BatchHeader {
    /// Parses the header at the start of `b` (which must hold at least
    /// [`HEADER_LEN`] bytes).
    pub fn parse(b: &[u8]) -> Result<Self, BatchError> {
        if b.len() < HEADER_LEN {
            return Err(BatchError::Corrupt(format!(
                "batch header needs {HEADER_LEN} bytes, got {}",
                b.len()
            )));
        }
        let mut c = &b[..HEADER_LEN];
        Ok(Self {
            base_offset: c.get_i64(),
            batch_length: c.get_i32(),
            partition_leader_epoch: c.get_i32(),
            magic: c.get_i8(),
            crc: c.get_u32(),
            attributes: c.get_i16(),
            last_offset_delta: c.get_i32(),
            base_timestamp: c.get_i64(),
            max_timestamp: c.get_i64(),
            producer_id: c.get_i64(),
            producer_epoch: c.get_i16(),
            base_sequence: c.get_i32(),
            records_count: c.get_i32(),
        })
    }

    /// Total bytes of the batch including the offset and length fields.
    pub fn total_size(&self) -> usize {
        LOG_OVERHEAD + self.batch_length.max(0) as usize
    }

    /// The last offset in the batch.
    pub fn last_offset(&self) -> i64 {
        self.base_offset + i64::from(self.last_offset_delta)
    }

    /// The compression codec id (0 none, 1 gzip, 2 snappy, 3 lz4, 4 zstd).
    pub fn compression(&self) -> i16 {
        self.attributes & 0x07
    }

    /// Whether the batch carries LogAppendTime.
    pub fn log_append_time(&self) -> bool {
        self.attributes & 0x08 != 0
    }

    /// Whether the batch is part of a transaction.
    pub fn is_transactional(&self) -> bool {
        self.attributes & 0x10 != 0
    }

    /// Whether this is a control batch (transaction marker).
    pub fn is_control(&self) -> bool {
        self.attributes & 0x20 != 0
    }

    /// The last sequence number of the batch.
    pub fn last_sequence(&self) -> i32 {
        if self.base_sequence < 0 {
            return -1;
        }
        // Sequences wrap at i32::MAX, as in Kafka's DefaultRecordBatch.
        let last = i64::from(self.base_sequence) + i64::from(self.last_offset_delta);
        if last > i64::from(i32::MAX) {
            (last - i64::from(i32::MAX) - 1) as i32
        } else {
            last as i32
        }
    }
}

/// Splits `bytes` into complete batches, returning each header and its
/// range. Fails on a partial trailing batch.
pub fn split_batches(
    bytes: &[u8],
) -> Result<Vec<(BatchHeader, std::ops::Range<usize>)>, BatchError> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < bytes.len() {
        let rest = &bytes[pos..];
        if rest.len() < LOG_OVERHEAD + 5 {
            return Err(BatchError::Corrupt("truncated record batch".into()));
        }
        let magic = rest[16] as i8;
        if magic != 2 {
            return Err(BatchError::Invalid(format!(
                "record batches must use magic v2 (got magic v{magic}); message formats v0 and v1 are not supported"
            )));
        }
        let h = BatchHeader::parse(rest)?;
        if h.batch_length < (HEADER_LEN - LOG_OVERHEAD) as i32 {
            return Err(BatchError::Corrupt(format!(
                "batch length {} is too small",
                h.batch_length
            )));
        }
        let size = h.total_size();
        if size > rest.len() {
            return Err(BatchError::Corrupt(format!(
                "batch length {} exceeds the {} bytes remaining",
                h.batch_length,
                rest.len() - LOG_OVERHEAD
            )));
        }
        out.push((h, pos..pos + size));
        pos += size;
    }
    Ok(out)
}

/// Checks the CRC-32C of one whole batch.
pub fn check_crc(batch: &[u8], h: &BatchHeader) -> Result<(), BatchError> {
    let computed = crc32c::crc32c(&batch[ATTR_OFFSET..]);
    if computed != h.crc {
        return Err(BatchError::Corrupt(format!(
            "record batch CRC mismatch (stored {:#010x}, computed {computed:#010x})",
            h.crc
        )));
    }
    Ok(())
}

/// Validates one batch from a producer: CRC, size, offsets, records.
pub fn validate_produced(
    batch: &[u8],
    h: &BatchHeader,
    max_message_bytes: i64,
    checks: &RecordChecks<'_>,
) -> Result<(), BatchError> {
    if batch.len() as i64 > max_message_bytes {
        return Err(BatchError::TooLarge {
            size: batch.len(),
            max: max_message_bytes,
        });
    }
    check_crc(batch, h)?;
    if h.is_control() {
        return Err(BatchError::Invalid(
            "clients may not produce control batches".into(),
        ));
    }
    if h.records_count <= 0 {
        return Err(BatchError::Invalid(
            "a produced batch must hold at least one record".into(),
        ));
    }
    if h.last_offset_delta != h.records_count - 1 {
        return Err(BatchError::Invalid(format!(
            "last offset delta {} does not match {} records",
            h.last_offset_delta, h.records_count
        )));
    }
    let mut errors = RecordErrors::new(h, checks);
    if h.compression() == 0 {
        // The hot path: no copy for uncompressed batches.
        visit_records(&batch[HEADER_LEN..], h.records_count, &mut |r| {
            errors.check(r)
        })?;
    } else {
        let records = decompress_bounded(h.compression(), &batch[HEADER_LEN..], MAX_DECOMPRESSED)?;
        visit_records(&records, h.records_count, &mut |r| errors.check(r))?;
    }
    errors.into_result()
}

/// The per-record rules of a topic a produced batch is checked against
/// (Kafka's `LogValidator.validateRecord`).
#[derive(Debug, Clone, Default)]
pub struct RecordChecks<'a> {
    /// `cleanup.policy` has `compact`: every record needs a key.
    pub require_key: bool,
    /// With `message.timestamp.type=CreateTime`: the accepted range of record
    /// timestamps, `[now - message.timestamp.before.max.ms, now +
    /// message.timestamp.after.max.ms]`.
    pub timestamps: Option<(i64, i64)>,
    /// The partition, as Kafka names it in its messages (`topic-0`).
    pub partition: &'a str,
}

/// What [`visit_records`] reports of one record.
struct RecordView {
    index: i32,
    offset_delta: i64,
    timestamp_delta: i64,
    key_len: i64,
}

/// The record errors of one batch, collected as Kafka's validator does.
struct RecordErrors<'a> {
    h: &'a BatchHeader,
    checks: &'a RecordChecks<'a>,
    errors: Vec<(i32, String)>,
    timestamp: bool,
}

impl<'a> RecordErrors<'a> {
    fn new(h: &'a BatchHeader, checks: &'a RecordChecks<'a>) -> Self {
        Self {
            h,
            checks,
            errors: Vec::new(),
            timestamp: false,
        }
    }

    fn check(&mut self, r: &RecordView) {
        if self.checks.require_key && r.key_len < 0 {
            self.errors.push((
                r.index,
                format!(
                    "Compacted topic cannot accept message without key in topic partition {}",
                    self.checks.partition
                ),
            ));
            return;
        }
        // A producer's LogAppendTime batch, or a record without a
        // timestamp (-1), is not checked (as Kafka).
        let Some((lo, hi)) = self.checks.timestamps else {
            return;
        };
        if self.h.log_append_time() {
            return;
        }
        let ts = self.h.base_timestamp.wrapping_add(r.timestamp_delta);
        if ts != -1 && (ts < lo || ts > hi) {
            self.timestamp = true;
            self.errors.push((
                r.index,
                format!(
                    "Timestamp {ts} of message with offset {} is out of range. The timestamp should be within [{lo}, {hi}]",
                    self.h.base_offset.wrapping_add(r.offset_delta)
                ),
            ));
        }
    }

    fn into_result(self) -> Result<(), BatchError> {
        if self.errors.is_empty() {
            return Ok(());
        }
        let message = if self.timestamp {
            "One or more records have been rejected due to invalid timestamp".to_string()
        } else {
            let shown: Vec<String> = self
                .errors
                .iter()
                .take(3)
                .map(|(i, m)| format!("RecordError(batchIndex={i}, message='{m}')"))
                .collect();
            format!(
                "One or more records have been rejected due to {} record errors in total, and only showing the first three errors at most: [{}]",
                self.errors.len(),
                shown.join(", ")
            )
        };
        Err(BatchError::Records {
            timestamp: self.timestamp,
            message,
            records: self.errors,
        })
    }
}

/// The most a produced batch may decompress to. Kafka streams records out
/// of a compressed batch; we decompress whole batches, so the output is capped
/// to keep a small "decompression bomb" from exhausting memory.
pub const MAX_DECOMPRESSED: usize = 64 << 20;

/// No snappy element expands by more than 64/3 (a 3-byte copy of 64 bytes),
/// so an uncompressed length above this many times the block is corrupt.
const SNAPPY_MAX_EXPANSION: usize = 22;

/// Decompresses a batch payload with codec `codec`, refusing to produce more
/// than `limit` bytes.
pub fn decompress_bounded(codec: i16, payload: &[u8], limit: usize) -> Result<Vec<u8>, BatchError> {
    use std::io::Read;
    let too_big =
        || BatchError::Invalid(format!("the batch decompresses to more than {limit} bytes"));
    let corrupt =
        |e: std::io::Error| BatchError::Corrupt(format!("cannot decompress records: {e}"));
    let mut out = Vec::new();
    let read = |r: &mut dyn Read, out: &mut Vec<u8>| -> Result<(), BatchError> {
        r.take(limit as u64 + 1).read_to_end(out).map_err(corrupt)?;
        if out.len() > limit {
            return Err(too_big());
        }
        Ok(())
    };
    match codec {
        0 => out.extend_from_slice(payload),
        1 => read(&mut flate2::read::MultiGzDecoder::new(payload), &mut out)?,
        2 => {
            // Kafka's Java clients use xerial framing; others send raw snappy.
            const XERIAL: &[u8] = b"\x82SNAPPY\x00";
            let mut blocks: Vec<&[u8]> = Vec::new();
            if payload.len() >= 16 && &payload[..8] == XERIAL {
                let mut rest = &payload[16..];
                while !rest.is_empty() {
                    if rest.len() < 4 {
                        return Err(BatchError::Corrupt("truncated snappy block length".into()));
                    }
                    let n = u32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
                    rest = &rest[4..];
                    if n > rest.len() {
                        return Err(BatchError::Corrupt(
                            "snappy block overruns the batch".into(),
                        ));
                    }
                    blocks.push(&rest[..n]);
                    rest = &rest[n..];
                }
            } else {
                blocks.push(payload);
            }
            let mut dec = snap::raw::Decoder::new();
            for b in blocks {
                let n = snap::raw::decompress_len(b)
                    .map_err(|e| BatchError::Corrupt(format!("bad snappy block: {e}")))?;
                // The length is read off the wire: refuse one the block cannot
                // encode before zero-filling a buffer of that size.
                if n > b.len().saturating_mul(SNAPPY_MAX_EXPANSION) {
                    return Err(BatchError::Corrupt(format!(
                        "snappy block of {} bytes claims {n} uncompressed bytes, more than snappy can encode",
                        b.len()
                    )));
                }
                if out.len() + n > limit {
                    return Err(too_big());
                }
                let start = out.len();
                out.resize(start + n, 0);
                let written = dec
                    .decompress(b, &mut out[start..])
                    .map_err(|e| BatchError::Corrupt(format!("bad snappy block: {e}")))?;
                out.truncate(start + written);
            }
        }
        3 => read(&mut lz4_flex::frame::FrameDecoder::new(payload), &mut out)?,
        4 => {
            let mut d = zstd::stream::read::Decoder::new(payload).map_err(corrupt)?;
            read(&mut d, &mut out)?
        }
        other => return Err(BatchError::UnsupportedCompression(other)),
    }
    Ok(out)
}

/// The `(offset, timestamp)` of every record in a stored batch.
pub fn record_timestamps(batch: &[u8]) -> Result<Vec<(i64, i64)>, BatchError> {
    let h = BatchHeader::parse(batch)?;
    if batch.len() < h.total_size() {
        return Err(BatchError::Corrupt("truncated batch".into()));
    }
    let mut out = Vec::new();
    let mut f = |r: &RecordView| {
        // Wrapping, as Kafka's DefaultRecord does: hostile deltas must not panic.
        let ts = if h.log_append_time() {
            h.max_timestamp
        } else {
            h.base_timestamp.wrapping_add(r.timestamp_delta)
        };
        out.push((h.base_offset.wrapping_add(r.offset_delta), ts));
    };
    let records = decompress_bounded(
        h.compression(),
        &batch[HEADER_LEN..h.total_size()],
        MAX_DECOMPRESSED,
    )?;
    visit_records(&records, h.records_count, &mut f)?;
    Ok(out)
}

pub(crate) fn varint(b: &mut &[u8]) -> Result<i64, BatchError> {
    let mut value: u64 = 0;
    for shift in (0..70).step_by(7) {
        let Some((&byte, rest)) = b.split_first() else {
            return Err(BatchError::Corrupt("truncated varint in record".into()));
        };
        *b = rest;
        if shift == 63 && byte > 1 {
            return Err(BatchError::Corrupt("varint overflow in record".into()));
        }
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Ok(((value >> 1) as i64) ^ -((value & 1) as i64));
        }
    }
    Err(BatchError::Corrupt("varint too long in record".into()))
}

fn skip(b: &mut &[u8], n: i64, what: &str) -> Result<(), BatchError> {
    if n < -1 {
        return Err(BatchError::Corrupt(format!("negative {what} length {n}")));
    }
    if n > 0 {
        let n = n as usize;
        if n > b.len() {
            return Err(BatchError::Corrupt(format!(
                "{what} length {n} exceeds the record"
            )));
        }
        *b = &b[n..];
    }
    Ok(())
}

/// Walks the records of an uncompressed payload, checking lengths, offset
/// deltas and the record count, and calls `f` for each record.
fn visit_records(
    payload: &[u8],
    count: i32,
    f: &mut dyn FnMut(&RecordView),
) -> Result<(), BatchError> {
    let mut b = payload;
    for i in 0..count {
        let len = varint(&mut b)?;
        if len < 0 || len as usize > b.len() {
            return Err(BatchError::Corrupt(format!(
                "record {i} length {len} is out of bounds"
            )));
        }
        let (mut rec, rest) = b.split_at(len as usize);
        b = rest;
        if rec.is_empty() {
            return Err(BatchError::Corrupt(format!("record {i} is empty")));
        }
        rec = &rec[1..]; // attributes
        let ts_delta = varint(&mut rec)?;
        let offset_delta = varint(&mut rec)?;
        if offset_delta != i64::from(i) {
            return Err(BatchError::Invalid(format!(
                "record {i} has offset delta {offset_delta}; deltas must run 0, 1, 2, ..."
            )));
        }
        let klen = varint(&mut rec)?;
        f(&RecordView {
            index: i,
            offset_delta,
            timestamp_delta: ts_delta,
            key_len: klen,
        });
        skip(&mut rec, klen, "key")?;
        let vlen = varint(&mut rec)?;
        skip(&mut rec, vlen, "value")?;
        let headers = varint(&mut rec)?;
        if headers < 0 {
            return Err(BatchError::Corrupt(format!(
                "record {i} has negative header count"
            )));
        }
        for _ in 0..headers {
            let hk = varint(&mut rec)?;
            if hk < 0 {
                return Err(BatchError::Corrupt("null header key".into()));
            }
            skip(&mut rec, hk, "header key")?;
            let hv = varint(&mut rec)?;
            skip(&mut rec, hv, "header value")?;
        }
        if !rec.is_empty() {
            return Err(BatchError::Corrupt(format!(
                "record {i} has {} trailing bytes",
                rec.len()
            )));
        }
    }
    if !b.is_empty() {
        return Err(BatchError::Corrupt(format!(
            "{} bytes follow the {count} records the batch declares",
            b.len()
        )));
    }
    Ok(())
}

/// Stamps the base offset and partition leader epoch into a batch. With
/// `log_append_time` set, also sets the timestamp type and max timestamp and
/// recomputes the CRC (those fields are covered by it).
pub fn stamp(batch: &mut [u8], base_offset: i64, leader_epoch: i32, log_append_time: Option<i64>) {
    batch[0..8].copy_from_slice(&base_offset.to_be_bytes());
    batch[12..16].copy_from_slice(&leader_epoch.to_be_bytes());
    if let Some(now) = log_append_time {
        let attrs = i16::from_be_bytes([batch[ATTR_OFFSET], batch[ATTR_OFFSET + 1]]) | 0x08;
        batch[ATTR_OFFSET..ATTR_OFFSET + 2].copy_from_slice(&attrs.to_be_bytes());
        batch[MAX_TS_OFFSET..MAX_TS_OFFSET + 8].copy_from_slice(&now.to_be_bytes());
        let crc = crc32c::crc32c(&batch[ATTR_OFFSET..]);
        batch[CRC_OFFSET..CRC_OFFSET + 4].copy_from_slice(&crc.to_be_bytes());
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use bytes::{Bytes, BytesMut};
    use kafka_protocol::protocol::StrBytes;
    use kafka_protocol::records::{
        Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
    };

    /// Encodes a real batch with kafka-protocol's encoder.
    pub(crate) fn encode(n: i32, compression: Compression) -> Vec<u8> {
        let records: Vec<Record> = (0..n)
            .map(|i| Record {
                transactional: false,
                control: false,
                delete_horizon: false,
                partition_leader_epoch: 0,
                producer_id: -1,
                producer_epoch: -1,
                timestamp_type: TimestampType::Creation,
                offset: i64::from(i),
                sequence: i,
                timestamp: 1_000 + i64::from(i),
                key: Some(Bytes::from(format!("k{i}"))),
                value: if i % 2 == 0 {
                    Some(Bytes::from(vec![b'v'; 100]))
                } else {
                    None
                },
                headers: [(
                    StrBytes::from_static_str("h"),
                    Some(Bytes::from_static(b"x")),
                )]
                .into_iter()
                .collect(),
            })
            .collect();
        let mut buf = BytesMut::new();
        RecordBatchEncoder::encode(
            &mut buf,
            &records,
            &RecordEncodeOptions {
                version: 2,
                compression,
            },
        )
        .expect("encode");
        buf.to_vec()
    }

    #[test]
    fn validates_all_codecs_and_stamps() {
        for c in [
            Compression::None,
            Compression::Gzip,
            Compression::Snappy,
            Compression::Lz4,
            Compression::Zstd,
        ] {
            let mut b = encode(5, c);
            let parts = split_batches(&b).expect("split");
            assert_eq!(parts.len(), 1);
            let h = parts[0].0;
            assert_eq!(h.records_count, 5);
            validate_produced(&b, &h, 1 << 20, &RecordChecks::default()).expect("valid");
            stamp(&mut b, 42, 7, None);
            let h2 = BatchHeader::parse(&b).expect("parse");
            assert_eq!((h2.base_offset, h2.partition_leader_epoch), (42, 7));
            check_crc(&b, &h2).expect("crc still valid");
            stamp(&mut b, 42, 7, Some(99));
            let h3 = BatchHeader::parse(&b).expect("parse");
            assert!(h3.log_append_time() && h3.max_timestamp == 99);
            check_crc(&b, &h3).expect("crc recomputed");
        }
    }

    #[test]
    fn rejects_bad_batches() {
        let b = encode(3, Compression::None);
        let h = BatchHeader::parse(&b).expect("parse");
        let mut flipped = b.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 0xff;
        assert_eq!(
            validate_produced(&flipped, &h, 1 << 20, &RecordChecks::default())
                .map_err(|e| e.code()),
            Err(2)
        );
        assert_eq!(
            validate_produced(&b, &h, 10, &RecordChecks::default()).map_err(|e| e.code()),
            Err(10)
        );
        assert!(split_batches(&b[..b.len() - 1]).is_err());
        let mut magic1 = b.clone();
        magic1[16] = 1;
        assert_eq!(split_batches(&magic1).map_err(|e| e.code()), Err(87));
        // A lying record count is caught without trusting it for allocation.
        let mut lying = b.clone();
        lying[57..61].copy_from_slice(&1_000_000_000i32.to_be_bytes());
        lying[23..27].copy_from_slice(&999_999_999i32.to_be_bytes());
        let crc = crc32c::crc32c(&lying[21..]);
        lying[17..21].copy_from_slice(&crc.to_be_bytes());
        let h = BatchHeader::parse(&lying).expect("parse");
        assert!(validate_produced(&lying, &h, 1 << 20, &RecordChecks::default()).is_err());
    }
}

#[cfg(test)]
mod timestamp_tests {
    use super::tests::encode;
    use super::*;
    use kafka_protocol::records::Compression;

    #[test]
    fn record_timestamps_are_exact() {
        for c in [Compression::None, Compression::Gzip] {
            let b = encode(4, c);
            let ts = record_timestamps(&b).expect("walk");
            assert_eq!(
                ts,
                vec![(0, 1000), (1, 1001), (2, 1002), (3, 1003)],
                "{c:?}"
            );
        }
    }
}

#[cfg(test)]
mod bomb_tests {
    use super::*;

    #[test]
    fn decompression_is_bounded() {
        let zeros = vec![0u8; 3 * 1024 * 1024];
        let z = zstd::encode_all(&zeros[..], 19).expect("zstd");
        assert!(z.len() < 4096);
        assert!(matches!(
            decompress_bounded(4, &z, 1 << 20),
            Err(BatchError::Invalid(_))
        ));
        assert_eq!(
            decompress_bounded(4, &z, 4 << 20).expect("fits").len(),
            zeros.len()
        );
        // A snappy block whose header claims 4 GiB is refused before allocating.
        let mut lying = vec![0xff, 0xff, 0xff, 0xff, 0x0f];
        lying.extend_from_slice(&[0; 8]);
        assert!(decompress_bounded(2, &lying, 1 << 20).is_err());
        let mut framed = b"\x82SNAPPY\x00".to_vec();
        framed.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 5]);
        framed.extend_from_slice(&lying[..5]);
        assert!(decompress_bounded(2, &framed, 1 << 20).is_err());
    }

    #[test]
    fn snappy_length_is_bounded_by_the_block() {
        // A 9-byte raw snappy block claiming 60 MiB (under the 64 MiB cap):
        // refused from its size, before a 60 MiB buffer is zero-filled.
        let mut lying = vec![0x80, 0x80, 0x80, 0x1e];
        lying.extend_from_slice(&[0; 5]);
        match decompress_bounded(2, &lying, MAX_DECOMPRESSED) {
            Err(BatchError::Corrupt(m)) => {
                assert!(m.contains("more than snappy can encode"), "{m}")
            }
            other => panic!("expected a corrupt snappy block, got {other:?}"),
        }
        // A real block at the maximum ratio still decompresses.
        let zeros = vec![0u8; 1 << 20];
        let c = snap::raw::Encoder::new()
            .compress_vec(&zeros)
            .expect("snappy");
        assert_eq!(
            decompress_bounded(2, &c, MAX_DECOMPRESSED)
                .expect("fits")
                .len(),
            zeros.len()
        );
    }

    #[test]
    fn hostile_timestamp_deltas_wrap() {
        // Fuzz-found: a record timestamp delta that overflows base + delta.
        let b = hex("0000000000000000000000390000000002afb571530000000000007fffffffffffffffffffffffffffffffffffffffffffffffffffffffffff000000010e00020001027600");
        let _ = record_timestamps(&b);
    }

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
            .collect()
    }
}
