//! The cluster-wide default broker config (`ConfigResource(BROKER, "")`): what
//! `kafka-configs.sh --entity-type brokers --entity-default` reads and changes.
//!
//! Any broker answers for the default resource (Kafka's admin client sends it to
//! any node); it is kept in the KRaft metadata log, so every broker, including one
//! started later, applies it.

use crate::client::{config_entries, describe_configs_request, RESOURCE_BROKER};
use crate::error::AdminError;
use crate::types::{AlterConfigOp, ConfigEntry};
use crate::AdminClient;

/// The resource name of the cluster-wide default broker config.
const DEFAULT: &str = "";

impl AdminClient {
    /// The configs set at the cluster-default level (source
    /// DYNAMIC_DEFAULT_BROKER_CONFIG), with DescribeConfigs of `BROKER ""`.
    pub async fn describe_default_broker_configs(&self) -> Result<Vec<ConfigEntry>, AdminError> {
        let (_, r) = self
            .call(0, |_| {
                Ok(describe_configs_request(RESOURCE_BROKER, DEFAULT))
            })
            .await?;
        config_entries(r.results, RESOURCE_BROKER, DEFAULT)
    }

    /// Changes cluster-default broker configs with IncrementalAlterConfigs on
    /// `BROKER ""`; configs not named in `ops` keep their values. A key Kafka
    /// cannot change at runtime fails with INVALID_REQUEST ("Cannot update these
    /// configs dynamically"), a bad value with INVALID_CONFIG.
    pub async fn incremental_alter_default_broker_configs(
        &self,
        ops: &[AlterConfigOp],
        validate_only: bool,
    ) -> Result<(), AdminError> {
        self.incremental_alter(RESOURCE_BROKER, DEFAULT, ops, validate_only)
            .await
    }
}
