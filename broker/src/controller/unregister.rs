//! UnregisterBroker (64) on the active controller (Kafka's
//! `QuorumController.unregisterBroker`): the broker's registration is
//! removed, after its leaderships and ISR places moved away as for a fenced
//! broker. As with Kafka, a live broker is unregistered too; its heartbeats
//! then fail (STALE_BROKER_EPOCH) until it registers again on restart.

use kafka_protocol::error::ResponseError;
use tracing::{info, warn};

use super::Controller;
use crate::error::ApiError;
use crate::metadata::MetadataRecord;

impl Controller {
    /// Removes `node_id`'s registration.
    pub async fn unregister_broker(&self, node_id: i32) -> Result<(), ApiError> {
        let _g = self.lock.lock().await;
        let image = self.quorum().image();
        let Some(b) = image.brokers.get(&node_id) else {
            return Err(ApiError::new(
                ResponseError::BrokerIdNotRegistered,
                format!("Broker ID {node_id} is not currently registered"),
            ));
        };
        let epoch = b.epoch;
        if !b.fenced {
            // Kafka's handleBrokerUnregistered: leaderships and ISR places
            // move away first, as for a fenced broker.
            self.commit(vec![MetadataRecord::ChangeBroker {
                node_id,
                epoch,
                fenced: true,
                shutting_down: false,
            }])
            .await?;
            self.reconcile_partitions().await?;
        }
        info!(node_id, epoch, "unregistering broker");
        self.commit(vec![MetadataRecord::UnregisterBroker { node_id, epoch }])
            .await?;
        self.forget_session(node_id);
        // A broker-only node's raft learner goes too: the leader no longer
        // replicates to it (it asks to join again if it still runs).
        if let Err(e) = self.quorum().remove_observer(node_id).await {
            warn!(node_id, error = %e, "could not remove the unregistered broker's metadata observer");
        }
        self.reconcile_partitions().await
    }
}
