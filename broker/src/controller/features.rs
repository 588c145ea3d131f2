//! UpdateFeatures on the active controller (Kafka's `FeatureControlManager`
//! behind `QuorumController.updateFeatures`): the pure check and plan are
//! in `metadata::features`; this commits the result.

use tracing::{info, warn};

use super::Controller;
use crate::error::ApiError;
use crate::metadata::features::{self, FeatureUpdate};

impl Controller {
    /// The quorum's kraft.version: 1 when its voters are dynamic (KIP-853).
    pub(crate) fn kraft_version(&self) -> i16 {
        i16::from(self.quorum().is_dynamic())
    }

    /// Validates `updates` (all or nothing) and, unless `validate_only`,
    /// commits their FeatureLevel records.
    pub async fn update_features(
        &self,
        updates: Vec<FeatureUpdate>,
        validate_only: bool,
    ) -> Result<(), ApiError> {
        let _g = self.lock.lock().await;
        let image = self.quorum().image();
        let records = match features::plan_update(
            &image,
            self.config.node_id,
            &features::supported_features(),
            self.kraft_version(),
            &updates,
        ) {
            Ok(r) => r,
            Err(e) => {
                warn!(error = %e, "refused a feature update");
                return Err(e);
            }
        };
        if validate_only || records.is_empty() {
            return Ok(());
        }
        info!(?updates, "finalizing feature levels");
        self.commit(records).await
    }
}
