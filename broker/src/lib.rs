//! runnel-broker: a Kafka-wire-compatible broker.
//!
//! See `ARCHITECTURE.md` at the repository root for the layer map.

pub mod broker;
pub mod clock;
pub mod config;
pub mod controller;
pub mod error;
pub mod group;
pub mod log;
pub mod metadata;
pub mod protocol;
pub mod replication;
pub mod server;
pub mod txn;

pub use broker::{Broker, BrokerState, StartError};
