//! UpdateFeatures (57): finalizes feature levels (`kafka-features
//! upgrade/downgrade/disable`). A broker passes it to the active
//! controller, as Kafka's broker forwards it; the controller checks it all
//! or nothing (`metadata::features::plan_update`).

use std::sync::Arc;

use kafka_protocol::messages::update_features_response::UpdatableFeatureResult;
use kafka_protocol::messages::{ResponseKind, UpdateFeaturesResponse};

use super::sb;
use crate::body;
use crate::broker::BrokerState;
use crate::metadata::features::{FeatureUpdate, UpgradeType};
use crate::server::dispatch::{HandlerFuture, Request};

/// Handles UpdateFeatures.
pub fn handle(state: Arc<BrokerState>, req: Request) -> HandlerFuture {
    Box::pin(async move {
        let version = req.version;
        let body = body!(req, UpdateFeatures);
        let updates: Vec<FeatureUpdate> = body
            .feature_updates
            .iter()
            .map(|u| FeatureUpdate {
                feature: u.feature.to_string(),
                level: u.max_version_level,
                upgrade_type: UpgradeType::from_request(version, u.allow_downgrade, u.upgrade_type),
            })
            .collect();
        let result = state
            .controller
            .update_features(updates.clone(), body.validate_only)
            .await;
        if result.is_ok() && !body.validate_only && state.config.is_broker() {
            // The next ApiVersions on this connection shows the new levels.
            state.catch_up().await;
        }
        // Kafka's QuorumController: a failure fails the whole request with
        // its reason; v0-1 also carry one result per feature.
        let (code, message) = match &result {
            Ok(()) => (0, None),
            Err(e) => (
                e.code,
                Some(format!(
                    "The update failed for all features since the following feature had an error: {}",
                    e.message.as_deref().unwrap_or_default()
                )),
            ),
        };
        let mut resp = UpdateFeaturesResponse::default()
            .with_error_code(code)
            .with_error_message(message.as_deref().map(sb));
        if version <= 1 {
            resp = resp.with_results(
                updates
                    .iter()
                    .map(|u| {
                        UpdatableFeatureResult::default()
                            .with_feature(sb(&u.feature))
                            .with_error_code(code)
                    })
                    .collect(),
            );
        }
        Ok(Some(ResponseKind::UpdateFeatures(resp)))
    })
}
