//! The Kafka wire protocol: framing and record batches. No I/O.

pub mod batch;
pub mod request;

#[cfg(test)]
mod decode_limits_tests;
