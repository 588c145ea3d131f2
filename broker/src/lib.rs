//! runnel-broker: a Kafka-wire-compatible broker.
//!
//! See `ARCHITECTURE.md` at the repository root for the layer map.

pub mod config;
pub mod metadata;
