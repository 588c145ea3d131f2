//! libFuzzer target: see `runnel_fuzz::validate_batch`.
#![no_main]
// `fuzz_target!` expands to the `#[no_mangle]` entry point libFuzzer calls.
#![allow(unsafe_code)]

libfuzzer_sys::fuzz_target!(|data: &[u8]| runnel_fuzz::validate_batch(data));
