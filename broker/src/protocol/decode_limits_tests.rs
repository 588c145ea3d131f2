//! Counts and lengths read off the wire must not size allocations: the
//! decoders (kafka-protocol as patched in `vendor/kafka-protocol`) refuse a
//! count larger than the bytes left before allocating for it. Without the
//! patch each of these inputs asks for tens or hundreds of gigabytes and the
//! test process aborts.

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::ApiKey;
use kafka_protocol::records::{
    Compression, Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};

use super::request::{decode, prefix, DecodeError};

fn hex(s: &str) -> Bytes {
    Bytes::from(
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
            .collect::<Vec<u8>>(),
    )
}

fn refused(frame: Bytes) -> String {
    let p = prefix(&frame).expect("prefix");
    let api = ApiKey::try_from(p.api_key).expect("api key");
    match decode(api, p.version, frame) {
        Err(DecodeError::Malformed { message, .. }) => message,
        Err(e) => panic!("unexpected error {e}"),
        Ok(_) => panic!("decoded a frame with a 2^31-1 count"),
    }
}

#[test]
fn huge_array_counts_are_refused_before_allocating() {
    // Header (api key, version, correlation id, null client id[, tags]),
    // then the body up to an array count of 2^31-1 (2^32-1 for the last).
    for f in [
        "0000000300000001ffffffffffff000075307fffffff", // Produce v3 topic_data
        "0000000900000001ffff0000ffff000075308080808008", // Produce v9 topic_data
        "0003000100000001ffff7fffffff",                 // Metadata v1 topics
        "0003000c00000001ffff008080808008",             // Metadata v12 topics
        // JoinGroup v5 protocols
        "000b000500000001ffff0001670000afc8000493e00000ffff0008636f6e73756d65727fffffff",
        "0013000400000001ffff7fffffff",     // CreateTopics v4 topics
        "0013000500000001ffff00ffffffff0f", // CreateTopics v5 topics
    ] {
        let m = refused(hex(f));
        assert!(
            m.contains("Tried to allocate a collection of size"),
            "{f}: {m}"
        );
    }
}

/// A RecordBatch v2 holding `records` (already encoded) with `count` in its
/// header and a valid CRC.
fn batch(records: &[u8], count: i32) -> Bytes {
    batch_with(records, count, 0)
}

/// As [`batch`], with these attributes (the codec in the low 3 bits).
fn batch_with(records: &[u8], count: i32, attributes: i16) -> Bytes {
    let mut b = Vec::new();
    b.extend_from_slice(&0i64.to_be_bytes()); // base offset
    b.extend_from_slice(&((49 + records.len()) as i32).to_be_bytes()); // batch length
    b.extend_from_slice(&0i32.to_be_bytes()); // partition leader epoch
    b.push(2); // magic
    b.extend_from_slice(&[0; 4]); // crc, below
    b.extend_from_slice(&attributes.to_be_bytes());
    b.extend_from_slice(&0i32.to_be_bytes()); // last offset delta
    b.extend_from_slice(&0i64.to_be_bytes()); // base timestamp
    b.extend_from_slice(&0i64.to_be_bytes()); // max timestamp
    b.extend_from_slice(&(-1i64).to_be_bytes()); // producer id
    b.extend_from_slice(&(-1i16).to_be_bytes()); // producer epoch
    b.extend_from_slice(&(-1i32).to_be_bytes()); // base sequence
    b.extend_from_slice(&count.to_be_bytes());
    b.extend_from_slice(records);
    let crc = crc32c::crc32c(&b[21..]);
    b[17..21].copy_from_slice(&crc.to_be_bytes());
    Bytes::from(b)
}

#[test]
fn huge_record_count_is_refused_before_allocating() {
    // One real record, but a header claiming 2^31-1 of them.
    let mut enc = BytesMut::new();
    let r = Record {
        transactional: false,
        control: false,
        delete_horizon: false,
        partition_leader_epoch: 0,
        producer_id: -1,
        producer_epoch: -1,
        timestamp_type: TimestampType::Creation,
        offset: 0,
        sequence: -1,
        timestamp: 0,
        key: None,
        value: Some(Bytes::from_static(b"v")),
        headers: Default::default(),
    };
    RecordBatchEncoder::encode(
        &mut enc,
        [&r],
        &RecordEncodeOptions {
            version: 2,
            compression: Compression::None,
        },
    )
    .expect("encode");
    let real = enc.freeze();
    // The encoded batch decodes, and its records start after the header.
    assert_eq!(
        RecordBatchDecoder::decode(&mut real.clone())
            .expect("decode")
            .records
            .len(),
        1
    );
    let mut forged = batch(&real[61..], i32::MAX);
    let e = RecordBatchDecoder::decode(&mut forged)
        .expect_err("refused")
        .to_string();
    assert!(e.starts_with("Record count 2147483647 exceeds"), "{e}");
}

#[test]
fn huge_record_header_count_is_refused_before_allocating() {
    // A record: length 10, attributes 0, timestamp and offset delta 0, null
    // key and value, then a header count of 2^31-1 (zigzag varint).
    let records = hex("140000000101feffffff0f");
    let mut b = batch(&records, 1);
    let e = RecordBatchDecoder::decode(&mut b)
        .expect_err("refused")
        .to_string();
    assert!(
        e.starts_with("Record header count 2147483647 exceeds"),
        "{e}"
    );
}

#[test]
fn snappy_length_is_bounded_by_the_block() {
    // A snappy batch whose 9-byte raw block claims 4 GiB uncompressed, then
    // the same block in xerial framing.
    let lying = hex("ffffffff0f00000000");
    let mut xerial = hex("82534e4150505900000000010000000100000009").to_vec();
    xerial.extend_from_slice(&lying);
    for payload in [lying.clone(), Bytes::from(xerial)] {
        let mut b = batch_with(&payload, 1, 2);
        let e = format!(
            "{:#}",
            RecordBatchDecoder::decode(&mut b).expect_err("refused")
        );
        assert!(e.contains("more than snappy can encode"), "{e}");
    }
}
