//! Configuration: Kafka's `server.properties` keys and topic configs.

mod broker;
pub mod defs;
mod more_broker_defs;
mod properties;
mod topic;

pub use broker::{parse_listeners, BrokerConfig, Listener};
pub use properties::parse_properties;
pub use topic::{ConfigEntry, ConfigSource, LogConfig, TopicConfigResolver};

/// A configuration error, reported at start-up or to an admin request.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A key has a bad value.
    #[error("{message} (config key {key})")]
    Invalid {
        /// The key.
        key: String,
        /// What is wrong.
        message: String,
    },
    /// The config file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
}
