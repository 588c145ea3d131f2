//! ApiVersions: the advertised API surface, straight from the dispatch
//! table, and (v3+) the supported and finalized feature levels (KIP-584).

use std::sync::Arc;

use kafka_protocol::messages::api_versions_response::{FinalizedFeatureKey, SupportedFeatureKey};
use kafka_protocol::messages::{ApiVersionsResponse, ResponseKind};

use super::sb;
use crate::broker::BrokerState;
use crate::metadata::features::{self, KRAFT_VERSION, METADATA_VERSION};
use crate::metadata::ClusterImage;
use crate::server::dispatch::{advertised, advertised_in, HandlerFuture, Request, Surface};

/// The feature fields: what this binary supports, and the levels finalized
/// in `image` as of its offset (Kafka's `FinalizedFeaturesEpoch`).
/// kraft.version is the quorum's; a feature at level 0 is not finalized.
/// Before v4 the supported features whose minimum is 0 are left out, as
/// Kafka does (older clients cannot parse a range starting at 0).
fn with_features(
    resp: ApiVersionsResponse,
    image: &ClusterImage,
    kraft_version: i16,
    version: i16,
) -> ApiVersionsResponse {
    let supported = features::supported_features()
        .into_iter()
        .filter(|(_, r)| version >= 4 || r.min > 0)
        .map(|(name, r)| {
            SupportedFeatureKey::default()
                .with_name(sb(&name))
                .with_min_version(r.min)
                .with_max_version(r.max)
        })
        .collect();
    let mut finalized: Vec<(String, i16)> = image
        .features
        .iter()
        .filter(|(n, l)| **l > 0 && n.as_str() != METADATA_VERSION)
        .map(|(n, l)| (n.clone(), *l))
        .collect();
    finalized.push((METADATA_VERSION.to_string(), image.metadata_version()));
    if kraft_version > 0 {
        finalized.push((KRAFT_VERSION.to_string(), kraft_version));
    }
    let finalized = finalized
        .into_iter()
        .map(|(name, level)| {
            FinalizedFeatureKey::default()
                .with_name(sb(&name))
                .with_min_version_level(level)
                .with_max_version_level(level)
        })
        .collect();
    resp.with_supported_features(supported)
        .with_finalized_features_epoch(i64::try_from(image.last_applied).unwrap_or(i64::MAX))
        .with_finalized_features(finalized)
}

fn kraft_version(state: &BrokerState) -> i16 {
    i16::from(state.quorum.is_dynamic())
}

/// Handles ApiVersions.
pub fn handle(state: Arc<BrokerState>, req: Request) -> HandlerFuture {
    Box::pin(async move {
        let resp = ApiVersionsResponse::default().with_api_keys(advertised());
        Ok(Some(ResponseKind::ApiVersions(with_features(
            resp,
            &state.image(),
            kraft_version(&state),
            req.version,
        ))))
    })
}

/// Handles ApiVersions on the controller listener: only its APIs, and the
/// features as of this node's copy of the metadata log.
pub fn handle_controller(state: Arc<BrokerState>, req: Request) -> HandlerFuture {
    Box::pin(async move {
        let resp = ApiVersionsResponse::default().with_api_keys(advertised_in(Surface::Controller));
        Ok(Some(ResponseKind::ApiVersions(with_features(
            resp,
            &state.quorum.image(),
            kraft_version(&state),
            req.version,
        ))))
    })
}
