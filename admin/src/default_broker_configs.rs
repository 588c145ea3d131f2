//! The cluster-wide default broker config (`ConfigResource(BROKER, "")`): what
//! `kafka-configs.sh --entity-type brokers --entity-default` reads and changes.
//!
//! Any broker answers for the default resource (Kafka's admin client sends it to
//! any node); it is kept in the KRaft metadata log, so every broker, including one
//! started later, applies it.

use kafka_protocol::messages::incremental_alter_configs_request::{
    AlterConfigsResource, AlterableConfig,
};
use kafka_protocol::messages::IncrementalAlterConfigsRequest;
use kafka_protocol::protocol::StrBytes;

use crate::client::{config_entries, describe_configs_request, message, missing, RESOURCE_BROKER};
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
        let configs: Vec<AlterableConfig> = ops
            .iter()
            .map(|op| {
                AlterableConfig::default()
                    .with_name(StrBytes::from_string(op.key().to_string()))
                    .with_config_operation(op.op_code())
                    .with_value(op.value().map(|v| StrBytes::from_string(v.to_string())))
            })
            .collect();
        let (_, r) = self
            .call(0, |_| {
                Ok(IncrementalAlterConfigsRequest::default()
                    .with_resources(vec![AlterConfigsResource::default()
                        .with_resource_type(RESOURCE_BROKER)
                        .with_resource_name(StrBytes::from_static_str(DEFAULT))
                        .with_configs(configs.clone())])
                    .with_validate_only(validate_only))
            })
            .await?;
        let result = r
            .responses
            .into_iter()
            .find(|t| t.resource_type == RESOURCE_BROKER && t.resource_name.as_str() == DEFAULT)
            .ok_or_else(|| missing("IncrementalAlterConfigs", "resource", "<default broker>"))?;
        if result.error_code != 0 {
            return Err(AdminError::kafka(
                "IncrementalAlterConfigs",
                result.error_code,
                message(result.error_message),
            ));
        }
        Ok(())
    }
}
