//! libFuzzer target: see `runnel_fuzz::decode_request`.
#![no_main]
// `fuzz_target!` expands to the `#[no_mangle]` entry point libFuzzer calls.
#![allow(unsafe_code)]

libfuzzer_sys::fuzz_target!(|data: &[u8]| runnel_fuzz::decode_request(data));
