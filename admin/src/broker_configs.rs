//! Per-broker dynamic configs (`ConfigResource(BROKER, "<id>")`): what
//! `kafka-configs.sh --entity-type brokers --entity-name <id> --alter` changes,
//! e.g. the replication throttle rates `kafka-reassign-partitions --throttle`
//! sets on the brokers of a reassignment.

use kafka_protocol::messages::ApiKey;

use crate::client::{incremental_alter_request, incremental_alter_result, RESOURCE_BROKER};
use crate::error::AdminError;
use crate::types::AlterConfigOp;
use crate::AdminClient;

impl AdminClient {
    /// Changes broker `broker_id`'s own dynamic configs with
    /// IncrementalAlterConfigs, sent to that broker (Kafka's admin client
    /// routes a named broker resource to the broker it names); configs not in
    /// `ops` keep their values. A key Kafka cannot change at runtime fails with
    /// INVALID_REQUEST, an unknown one with INVALID_CONFIG.
    pub async fn incremental_alter_broker_configs(
        &self,
        broker_id: i32,
        ops: &[AlterConfigOp],
        validate_only: bool,
    ) -> Result<(), AdminError> {
        let name = broker_id.to_string();
        let mut conn = self.broker_connection(broker_id).await?;
        let version = conn.versions().pick(ApiKey::IncrementalAlterConfigs, 0)?;
        let r = conn
            .send(
                &incremental_alter_request(RESOURCE_BROKER, &name, ops, validate_only),
                version,
            )
            .await?;
        incremental_alter_result(r, RESOURCE_BROKER, &name)
    }
}
