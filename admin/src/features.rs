//! Feature versions (KIP-584): the levels a broker supports and the
//! cluster's finalized ones (ApiVersions v3+), and UpdateFeatures.

use std::collections::BTreeMap;

use kafka_protocol::messages::update_features_request::FeatureUpdateKey;
use kafka_protocol::messages::{ApiVersionsRequest, UpdateFeaturesRequest};
use kafka_protocol::protocol::StrBytes;

use crate::client::message;
use crate::error::AdminError;
use crate::AdminClient;

/// Kafka's `metadata.version` names by feature level, 3.3-IV3 (7) to 4.1-IV1 (27), as
/// Kafka 4.1.1's `MetadataVersion` has them.
pub const METADATA_VERSIONS: &[(i16, &str)] = &[
    (7, "3.3-IV3"),
    (8, "3.4-IV0"),
    (9, "3.5-IV0"),
    (10, "3.5-IV1"),
    (11, "3.5-IV2"),
    (12, "3.6-IV0"),
    (13, "3.6-IV1"),
    (14, "3.6-IV2"),
    (15, "3.7-IV0"),
    (16, "3.7-IV1"),
    (17, "3.7-IV2"),
    (18, "3.7-IV3"),
    (19, "3.7-IV4"),
    (20, "3.8-IV0"),
    (21, "3.9-IV0"),
    (22, "4.0-IV0"),
    (23, "4.0-IV1"),
    (24, "4.0-IV2"),
    (25, "4.0-IV3"),
    (26, "4.1-IV0"),
    (27, "4.1-IV1"),
];

/// The name of a `metadata.version` level (`27` is `"4.1-IV1"`).
pub fn metadata_version_name(level: i16) -> Option<&'static str> {
    METADATA_VERSIONS.iter().find(|v| v.0 == level).map(|v| v.1)
}

/// The level of a `metadata.version` name: `"4.0-IV3"` exactly, or `"4.0"` for the
/// latest level of 4.0 (as `kafka-features --release-version`).
pub fn parse_metadata_version(s: &str) -> Option<i16> {
    let s = s.trim();
    if let Some(v) = METADATA_VERSIONS.iter().find(|v| v.1 == s) {
        return Some(v.0);
    }
    METADATA_VERSIONS
        .iter()
        .rev()
        .find(|v| v.1.split('-').next() == Some(s))
        .map(|v| v.0)
}

/// What a broker reports in ApiVersions about features.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FeatureLevels {
    /// The ranges the answering broker supports: feature to `(min, max)`.
    pub supported: BTreeMap<String, (i16, i16)>,
    /// The cluster's finalized levels, as of `epoch`.
    pub finalized: BTreeMap<String, i16>,
    /// The metadata offset the finalized levels are as of (-1: unknown).
    pub epoch: i64,
}

/// Kafka's `FeatureUpdate.UpgradeType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpgradeType {
    /// Raise (or keep) the level.
    Upgrade,
    /// Lower it without losing metadata.
    SafeDowngrade,
}

impl AdminClient {
    /// The feature levels through ApiVersions (v3+).
    pub async fn describe_features(&self) -> Result<FeatureLevels, AdminError> {
        let (version, r) = self
            .call(3, |_| {
                Ok(ApiVersionsRequest::default()
                    .with_client_software_name(StrBytes::from_static_str("runnel-admin"))
                    .with_client_software_version(StrBytes::from_static_str(env!(
                        "CARGO_PKG_VERSION"
                    ))))
            })
            .await?;
        if r.error_code != 0 {
            return Err(AdminError::kafka("ApiVersions", r.error_code, None));
        }
        let _ = version;
        Ok(FeatureLevels {
            supported: r
                .supported_features
                .iter()
                .map(|f| (f.name.to_string(), (f.min_version, f.max_version)))
                .collect(),
            finalized: r
                .finalized_features
                .iter()
                .map(|f| (f.name.to_string(), f.max_version_level))
                .collect(),
            epoch: r.finalized_features_epoch,
        })
    }

    /// UpdateFeatures: sets `feature` to `level` (all or nothing; the
    /// controller checks every broker supports it).
    pub async fn update_feature(
        &self,
        feature: &str,
        level: i16,
        upgrade_type: UpgradeType,
        validate_only: bool,
    ) -> Result<(), AdminError> {
        let (_, r) = self
            .call(1, |_| {
                Ok(UpdateFeaturesRequest::default()
                    .with_timeout_ms(30_000)
                    .with_validate_only(validate_only)
                    .with_feature_updates(vec![FeatureUpdateKey::default()
                        .with_feature(StrBytes::from_string(feature.to_string()))
                        .with_max_version_level(level)
                        .with_upgrade_type(match upgrade_type {
                            UpgradeType::Upgrade => 1,
                            UpgradeType::SafeDowngrade => 2,
                        })]))
            })
            .await?;
        if r.error_code != 0 {
            return Err(AdminError::kafka(
                "UpdateFeatures",
                r.error_code,
                message(r.error_message),
            ));
        }
        if let Some(f) = r.results.iter().find(|f| f.error_code != 0) {
            return Err(AdminError::kafka(
                "UpdateFeatures",
                f.error_code,
                message(f.error_message.clone()),
            ));
        }
        Ok(())
    }
}
