//! Broker registrations: every registered broker, fenced ones included
//! (DescribeCluster v2, KIP-1073), and UnregisterBroker.

use kafka_protocol::messages::{DescribeClusterRequest, UnregisterBrokerRequest};

use crate::client::message;
use crate::error::AdminError;
use crate::AdminClient;

impl AdminClient {
    /// Every registered broker id with whether it is fenced (DescribeCluster v2 with
    /// IncludeFencedBrokers).
    pub async fn registered_brokers(&self) -> Result<Vec<(i32, bool)>, AdminError> {
        let (_, r) = self
            .call(2, |_| {
                Ok(DescribeClusterRequest::default()
                    .with_endpoint_type(1)
                    .with_include_fenced_brokers(true))
            })
            .await?;
        if r.error_code != 0 {
            return Err(AdminError::kafka(
                "DescribeCluster",
                r.error_code,
                message(r.error_message),
            ));
        }
        let mut ids: Vec<(i32, bool)> = r
            .brokers
            .iter()
            .map(|b| (b.broker_id.0, b.is_fenced))
            .collect();
        ids.sort_unstable();
        Ok(ids)
    }

    /// UnregisterBroker: removes `broker_id`'s registration (BROKER_ID_NOT_REGISTERED
    /// when it has none).
    pub async fn unregister_broker(&self, broker_id: i32) -> Result<(), AdminError> {
        let (_, r) = self
            .call(0, |_| {
                Ok(UnregisterBrokerRequest::default()
                    .with_broker_id(kafka_protocol::messages::BrokerId(broker_id)))
            })
            .await?;
        if r.error_code != 0 {
            return Err(AdminError::kafka(
                "UnregisterBroker",
                r.error_code,
                message(r.error_message),
            ));
        }
        Ok(())
    }
}
