//! `runnel-operator`: reconciles `KafkaCluster` into brokers, `KafkaTopic` into topics,
//! `KafkaConnect` into Kafka Connect workers and `KafkaConnector` into connectors.
//!
//! The shape follows kube-rs's controller-rs: one `reconcile`/`error_policy` pair per
//! resource kind, a shared [`context::Context`], children rendered by pure functions
//! (`cluster::render`), status written with server-side apply, events for every action,
//! and Prometheus metrics.

pub mod cluster;
pub mod connect;
pub mod connector;
pub mod context;
pub mod error;
pub mod http;
pub mod kafka;
pub mod leader;
pub mod metrics;
pub mod topic;

pub use error::Error;

/// The operator's version (also the default broker image tag).
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
/// The default broker image.
pub const DEFAULT_BROKER_IMAGE: &str =
    concat!("ghcr.io/runnel-dev/runnel:", env!("CARGO_PKG_VERSION"));
/// The default Connect worker image (built by `e2e/image/build.py --connect`).
pub const DEFAULT_CONNECT_IMAGE: &str = "ghcr.io/runnel-dev/runnel-connect:kafka-4.1.1";
