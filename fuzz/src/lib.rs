//! The fuzz targets' bodies, as plain functions.
//!
//! `fuzz_targets/*.rs` wrap them in libFuzzer (`cargo +nightly fuzz`, see
//! `scripts/fuzz`); `tests/replay.rs` runs every file of `corpus/` and
//! `crashes/` through them on stable in `cargo test`.

use bytes::Bytes;
use runnel_broker::protocol::{batch, request};
use runnel_broker::server::api_table;

/// A fuzz target: its name (the directory under `corpus/` and `crashes/`)
/// and its body.
pub struct Target {
    /// The libFuzzer binary's name.
    pub name: &'static str,
    /// Runs one input.
    pub run: fn(&[u8]),
}

/// Every target.
pub const TARGETS: &[Target] = &[
    Target {
        name: "decode_request",
        run: decode_request,
    },
    Target {
        name: "validate_batch",
        run: validate_batch,
    },
];

/// Request framing, header and body decoding for every API and version the
/// broker serves, exactly as the server reaches the decoder: whatever the
/// bytes, it must return (an error at worst), never panic or over-allocate.
pub fn decode_request(data: &[u8]) {
    let Ok(p) = request::prefix(data) else { return };
    let Ok(api) = request::api_key(p.api_key) else {
        return;
    };
    // Only versions the broker serves reach the decoder, as in the server.
    if let Some(spec) = api_table().iter().find(|a| a.key == api) {
        if p.version >= spec.decode_min && p.version <= spec.max {
            let _ = request::decode(api, p.version, Bytes::copy_from_slice(data));
        }
    }
}

/// The produce path's RecordBatch splitting, validation (CRC, lengths, the
/// record walk, decompression) and timestamp scan: it must reject, never
/// panic on or over-allocate for, any bytes.
pub fn validate_batch(data: &[u8]) {
    if let Ok(batches) = batch::split_batches(data) {
        for (h, range) in batches {
            let _ = batch::validate_produced(
                &data[range.clone()],
                &h,
                1 << 20,
                &batch::RecordChecks {
                    require_key: true,
                    timestamps: Some((0, i64::MAX)),
                    partition: "t-0",
                },
            );
            let _ = batch::record_timestamps(&data[range]);
        }
    }
}
