//! runnel-broker: a Kafka-wire-compatible broker.
//!
//! See `ARCHITECTURE.md` at the repository root for the layer map.

pub mod config;
pub mod controller;
pub mod error;
pub mod log;
pub mod metadata;
pub mod protocol;
pub mod replication;
