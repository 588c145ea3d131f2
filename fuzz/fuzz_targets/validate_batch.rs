//! Produce-path batch validation must reject, not panic on, any bytes.
#![no_main]
#![cfg_attr(runnel_fuzz_alloc_cap, feature(alloc_error_hook))]

#[path = "common/alloc_cap.rs"]
mod alloc_cap;

use libfuzzer_sys::fuzz_target;
use runnel_broker::protocol::batch;

fuzz_target!(|data: &[u8]| {
    if let Ok(batches) = batch::split_batches(data) {
        alloc_cap::run(|| {
            for (h, range) in batches {
                let _ = batch::validate_produced(&data[range.clone()], &h, 1 << 20);
                let _ = batch::record_timestamps(&data[range]);
            }
        });
    }
});
