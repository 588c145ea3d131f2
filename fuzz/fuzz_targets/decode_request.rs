//! Request decoding must never panic or over-allocate, whatever the bytes.
#![no_main]
#![cfg_attr(runnel_fuzz_alloc_cap, feature(alloc_error_hook))]

#[path = "common/alloc_cap.rs"]
mod alloc_cap;

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use runnel_broker::protocol::request;
use runnel_broker::server::api_table;

fuzz_target!(|data: &[u8]| {
    let Ok(p) = request::prefix(data) else { return };
    let Ok(api) = request::api_key(p.api_key) else {
        return;
    };
    // Only versions the broker serves reach the decoder, as in the server.
    if let Some(spec) = api_table().iter().find(|a| a.key == api) {
        if p.version >= spec.decode_min && p.version <= spec.max {
            alloc_cap::run(|| {
                let _ = request::decode(api, p.version, Bytes::copy_from_slice(data));
            });
        }
    }
});
