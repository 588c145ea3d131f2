//! Feature versions (KIP-584, and KIP-778 as KRaft does it): the levels
//! this binary supports, Kafka's `metadata.version` table, and the pure
//! validation of an UpdateFeatures request against the cluster image
//! (Kafka's `FeatureControlManager` and `QuorumFeatures`).
//!
//! Runnel finalizes three features, and only these are advertised:
//! `transaction.version` (KIP-890, a `FeatureLevel` record: 2 on a new
//! cluster, changed by UpdateFeatures like any level), and
//! `metadata.version` (a [`MetadataRecord::FeatureLevel`] written when the
//! cluster is bootstrapped, changed by UpdateFeatures when every registered
//! broker supports the new level) and `kraft.version`, which is not a
//! record: it is 1 when the quorum is dynamic (KIP-853) and 0 when its
//! voters are static, fixed when the quorum is formatted.

use std::collections::BTreeMap;

use kafka_protocol::error::ResponseError;
use serde::{Deserialize, Serialize};

use super::{ClusterImage, MetadataRecord};
use crate::error::ApiError;

/// The name of the metadata version feature.
pub const METADATA_VERSION: &str = "metadata.version";
/// The name of the KRaft (quorum) version feature.
pub const KRAFT_VERSION: &str = "kraft.version";
/// The name of the transaction version feature (KIP-890): 2 lets clients
/// use transaction.version 2 (EndTxn v5, Produce v12's implicit add).
pub const TRANSACTION_VERSION: &str = "transaction.version";
/// The latest `transaction.version`, finalized on a new cluster as Kafka
/// 4.x's `kafka-storage format` does.
pub const LATEST_TRANSACTION_VERSION: i16 = 2;

/// An inclusive range of feature levels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeatureRange {
    /// Lowest supported level.
    pub min: i16,
    /// Highest supported level.
    pub max: i16,
}

impl FeatureRange {
    /// Whether `level` is in the range.
    pub fn contains(&self, level: i16) -> bool {
        self.min <= level && level <= self.max
    }
}

impl std::fmt::Display for FeatureRange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}", self.min, self.max)
    }
}

/// Kafka's `MetadataVersion` values from 3.3-IV3 (the first KRaft-only
/// level Kafka 4 accepts) to 4.1-IV1 (Kafka 4.1's latest production
/// level): `(feature level, name, did the metadata format change)`, as
/// Kafka 4.1.1's `MetadataVersion` enum reports them.
pub const METADATA_VERSIONS: &[(i16, &str, bool)] = &[
    (7, "3.3-IV3", true),
    (8, "3.4-IV0", true),
    (9, "3.5-IV0", false),
    (10, "3.5-IV1", false),
    (11, "3.5-IV2", true),
    (12, "3.6-IV0", false),
    (13, "3.6-IV1", true),
    (14, "3.6-IV2", true),
    (15, "3.7-IV0", true),
    (16, "3.7-IV1", false),
    (17, "3.7-IV2", true),
    (18, "3.7-IV3", false),
    (19, "3.7-IV4", false),
    (20, "3.8-IV0", false),
    (21, "3.9-IV0", false),
    (22, "4.0-IV0", false),
    (23, "4.0-IV1", true),
    (24, "4.0-IV2", false),
    (25, "4.0-IV3", false),
    (26, "4.1-IV0", false),
    (27, "4.1-IV1", false),
];

/// The lowest `metadata.version` level (3.3-IV3).
pub const MINIMUM_METADATA_VERSION: i16 = 7;
/// The latest `metadata.version` level this binary implements (4.1-IV1),
/// the level a new cluster is formatted at by default.
pub const LATEST_METADATA_VERSION: i16 = 27;

/// The name of a `metadata.version` level (`"4.1-IV1"`).
pub fn metadata_version_name(level: i16) -> Option<&'static str> {
    METADATA_VERSIONS.iter().find(|v| v.0 == level).map(|v| v.1)
}

/// Parses a release version as `kafka-storage format --release-version`
/// does: `"4.0-IV3"` exactly, or `"4.0"` for the latest level of 4.0.
pub fn parse_release_version(s: &str) -> Option<i16> {
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

/// Whether any level in `(low, high]` changed the metadata format (Kafka's
/// `MetadataVersion.checkIfMetadataChanged`): a downgrade across such a
/// level might lose metadata, and Kafka refuses it.
pub fn metadata_changed(a: i16, b: i16) -> bool {
    let (low, high) = if a <= b { (a, b) } else { (b, a) };
    METADATA_VERSIONS
        .iter()
        .any(|v| v.0 > low && v.0 <= high && v.2)
}

/// The feature ranges this binary supports, as it registers them and
/// advertises them in ApiVersions.
pub fn supported_features() -> BTreeMap<String, FeatureRange> {
    BTreeMap::from([
        (
            METADATA_VERSION.to_string(),
            FeatureRange {
                min: MINIMUM_METADATA_VERSION,
                max: LATEST_METADATA_VERSION,
            },
        ),
        (KRAFT_VERSION.to_string(), FeatureRange { min: 0, max: 1 }),
        (
            TRANSACTION_VERSION.to_string(),
            FeatureRange {
                min: 0,
                max: LATEST_TRANSACTION_VERSION,
            },
        ),
    ])
}

/// Kafka's `FeatureUpdate.UpgradeType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum UpgradeType {
    /// An upgrade (or no change).
    Upgrade,
    /// A downgrade that must not lose metadata.
    SafeDowngrade,
    /// A downgrade that may lose metadata (Kafka supports none).
    UnsafeDowngrade,
    /// A code Kafka does not know.
    Unknown,
}

impl UpgradeType {
    /// From the wire: v0 carries `allow_downgrade`, v1+ `upgrade_type`.
    pub fn from_request(version: i16, allow_downgrade: bool, code: i8) -> Self {
        if version == 0 {
            return if allow_downgrade {
                Self::SafeDowngrade
            } else {
                Self::Upgrade
            };
        }
        match code {
            1 => Self::Upgrade,
            2 => Self::SafeDowngrade,
            3 => Self::UnsafeDowngrade,
            _ => Self::Unknown,
        }
    }
}

/// One requested change: feature, new level, upgrade type.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeatureUpdate {
    /// The feature name.
    pub feature: String,
    /// The new level (0 disables the feature).
    pub level: i16,
    /// Upgrade or downgrade.
    pub upgrade_type: UpgradeType,
}

fn invalid_update(feature: &str, level: i16, why: &str) -> ApiError {
    ApiError::new(
        ResponseError::InvalidUpdateVersion,
        format!("Invalid update version {level} for feature {feature}. {why}"),
    )
}

fn invalid_metadata_version(level: i16, why: &str) -> ApiError {
    ApiError::new(
        ResponseError::InvalidUpdateVersion,
        format!("Invalid metadata.version {level}. {why}"),
    )
}

/// Kafka's `QuorumFeatures.reasonNotSupported`.
fn reason_not_supported(level: i16, who: &str, range: Option<&FeatureRange>) -> Option<String> {
    let range = range.copied().unwrap_or(FeatureRange { min: 0, max: 0 });
    if range.contains(level) {
        None
    } else if range.max == 0 {
        Some(format!("{who} does not support this feature."))
    } else {
        Some(format!("{who} only supports versions {range}"))
    }
}

/// The records that apply `updates` to `image`, or the first error (Kafka's
/// `FeatureControlManager.updateFeatures`: all or nothing). `local` is the
/// active controller's own support; every registered broker must support
/// each new level too. `kraft_version` is the quorum's current one.
pub fn plan_update(
    image: &ClusterImage,
    controller_id: i32,
    local: &BTreeMap<String, FeatureRange>,
    kraft_version: i16,
    updates: &[FeatureUpdate],
) -> Result<Vec<MetadataRecord>, ApiError> {
    let mut records = Vec::new();
    for u in updates {
        let (name, level) = (u.feature.as_str(), u.level);
        if u.upgrade_type == UpgradeType::Unknown {
            return Err(invalid_update(
                name,
                level,
                "The controller does not support the given upgrade type.",
            ));
        }
        let current = if name == METADATA_VERSION {
            image.metadata_version()
        } else if name == KRAFT_VERSION {
            kraft_version
        } else {
            image.features.get(name).copied().unwrap_or(0)
        };
        if level < 0 {
            return Err(invalid_update(
                name,
                level,
                "A feature version cannot be less than 0.",
            ));
        }
        let who = format!("Local controller {controller_id}");
        if let Some(why) = reason_not_supported(level, &who, local.get(name)) {
            return Err(invalid_update(name, level, &why));
        }
        for (id, b) in &image.brokers {
            if b.features.is_empty() {
                // Registered by a binary without feature support.
                return Err(invalid_update(
                    name,
                    level,
                    &format!("Broker {id} does not support this feature."),
                ));
            }
            let who = format!("Broker {id}");
            if let Some(why) = reason_not_supported(level, &who, b.features.get(name)) {
                return Err(invalid_update(name, level, &why));
            }
        }
        if level < current && u.upgrade_type == UpgradeType::Upgrade {
            return Err(invalid_update(
                name,
                level,
                "Can't downgrade the version of this feature without setting the upgrade type to either safe or unsafe downgrade.",
            ));
        }
        if level > current && u.upgrade_type != UpgradeType::Upgrade {
            return Err(invalid_update(
                name,
                level,
                "Can't downgrade to a newer version.",
            ));
        }
        if name == METADATA_VERSION {
            if metadata_version_name(level).is_none() {
                return Err(invalid_metadata_version(level, "Unknown metadata.version."));
            }
            if level < current && metadata_changed(current, level) {
                return Err(if u.upgrade_type == UpgradeType::UnsafeDowngrade {
                    invalid_metadata_version(
                        level,
                        "Unsafe metadata downgrade is not supported in this version.",
                    )
                } else {
                    invalid_metadata_version(
                        level,
                        "Refusing to perform the requested downgrade because it might delete metadata information.",
                    )
                });
            }
        } else if name == KRAFT_VERSION {
            if level < current {
                return Err(invalid_update(
                    name,
                    level,
                    "Can't downgrade the version of this feature.",
                ));
            }
            if level != current {
                // Kafka upgrades the quorum in place; Runnel fixes it when
                // the quorum is formatted (static voters or KIP-853).
                return Err(invalid_update(
                    name,
                    level,
                    "Runnel sets kraft.version when the quorum is formatted (controller.quorum.voters: 0, controller.quorum.bootstrap.servers: 1) and cannot change it.",
                ));
            }
            continue;
        }
        records.push(MetadataRecord::FeatureLevel {
            name: name.to_string(),
            level,
        });
    }
    Ok(records)
}

/// Kafka's registration check (`ClusterControlManager.registerBroker`): a
/// broker may join only if it supports the finalized `metadata.version`.
/// A registration without feature ranges comes from a binary that predates
/// them and is let in (it cannot say).
pub fn check_registration(
    image: &ClusterImage,
    features: &BTreeMap<String, FeatureRange>,
) -> Result<(), ApiError> {
    if features.is_empty() {
        return Ok(());
    }
    let mv = image.metadata_version();
    match features.get(METADATA_VERSION) {
        Some(r) if r.contains(mv) => Ok(()),
        other => {
            let (lo, hi) = other.map(|r| (r.min, r.max)).unwrap_or((0, 0));
            Err(ApiError::new(
                ResponseError::UnsupportedVersion,
                format!(
                    "Unable to register because the broker does not support finalized version {mv} of metadata.version. The broker wants a version between {lo} and {hi}, inclusive."
                ),
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metadata::BrokerImage;

    fn image(mv: i16, brokers: &[(i32, i16)]) -> ClusterImage {
        let mut img = ClusterImage::default();
        img.apply(&MetadataRecord::FeatureLevel {
            name: METADATA_VERSION.into(),
            level: mv,
        });
        for &(id, max) in brokers {
            img.brokers.insert(
                id,
                BrokerImage {
                    node_id: id,
                    incarnation_id: uuid::Uuid::nil(),
                    endpoints: vec![],
                    rack: None,
                    epoch: 0,
                    fenced: false,
                    shutting_down: false,
                    features: {
                        let mut f = supported_features();
                        f.insert(METADATA_VERSION.to_string(), FeatureRange { min: 7, max });
                        f
                    },
                },
            );
        }
        img
    }

    fn up(feature: &str, level: i16, t: UpgradeType) -> Vec<FeatureUpdate> {
        vec![FeatureUpdate {
            feature: feature.into(),
            level,
            upgrade_type: t,
        }]
    }

    fn plan(img: &ClusterImage, u: &[FeatureUpdate]) -> Result<Vec<MetadataRecord>, ApiError> {
        plan_update(img, 1, &supported_features(), 0, u)
    }

    #[test]
    fn release_versions_parse_like_kafka_storage() {
        assert_eq!(parse_release_version("4.1"), Some(27));
        assert_eq!(parse_release_version("4.0"), Some(25));
        assert_eq!(parse_release_version("3.9-IV0"), Some(21));
        assert_eq!(parse_release_version("3.3"), Some(7));
        assert_eq!(parse_release_version("4.2"), None);
        assert_eq!(metadata_version_name(27), Some("4.1-IV1"));
    }

    #[test]
    fn downgrades_across_a_metadata_change_are_refused() {
        // Kafka 4.1.1: 4.1-IV1 -> 4.0-IV3 is allowed, -> 3.9-IV0 is not (4.0-IV1 changed the metadata).
        assert!(!metadata_changed(27, 25));
        assert!(metadata_changed(27, 21));
        assert!(metadata_changed(23, 22));
        assert!(!metadata_changed(22, 21));
        let img = image(27, &[(1, 27), (2, 27)]);
        assert_eq!(
            plan(&img, &up(METADATA_VERSION, 25, UpgradeType::SafeDowngrade)).expect("planned"),
            vec![MetadataRecord::FeatureLevel {
                name: METADATA_VERSION.into(),
                level: 25
            }]
        );
        let e =
            plan(&img, &up(METADATA_VERSION, 21, UpgradeType::SafeDowngrade)).expect_err("refused");
        assert_eq!(e.code, ResponseError::InvalidUpdateVersion.code());
        assert_eq!(
            e.message.expect("message"),
            "Invalid metadata.version 21. Refusing to perform the requested downgrade because it might delete metadata information."
        );
        let e = plan(
            &img,
            &up(METADATA_VERSION, 21, UpgradeType::UnsafeDowngrade),
        )
        .expect_err("refused");
        assert!(e
            .message
            .expect("message")
            .contains("Unsafe metadata downgrade"));
        let e = plan(&img, &up(METADATA_VERSION, 25, UpgradeType::Upgrade)).expect_err("refused");
        assert!(e
            .message
            .expect("planned")
            .contains("without setting the upgrade type"));
    }

    #[test]
    fn an_upgrade_needs_every_registered_broker_to_support_it() {
        let img = image(21, &[(1, 27), (2, 21)]);
        let e = plan(&img, &up(METADATA_VERSION, 27, UpgradeType::Upgrade)).expect_err("refused");
        assert_eq!(
            e.message.expect("message"),
            "Invalid update version 27 for feature metadata.version. Broker 2 only supports versions 7-21"
        );
        let img = image(21, &[(1, 27), (2, 27)]);
        assert_eq!(
            plan(&img, &up(METADATA_VERSION, 27, UpgradeType::Upgrade))
                .expect("planned")
                .len(),
            1
        );
        let e = plan(&img, &up(METADATA_VERSION, 28, UpgradeType::Upgrade)).expect_err("refused");
        assert!(e
            .message
            .expect("planned")
            .ends_with("Local controller 1 only supports versions 7-27"));
    }

    #[test]
    fn unknown_features_and_kraft_version_changes_are_invalid() {
        let img = image(27, &[(1, 27)]);
        let e = plan(&img, &up("foo.version", 1, UpgradeType::Upgrade)).expect_err("refused");
        assert_eq!(
            e.message.expect("message"),
            "Invalid update version 1 for feature foo.version. Local controller 1 does not support this feature."
        );
        let e =
            plan(&img, &up(METADATA_VERSION, 0, UpgradeType::SafeDowngrade)).expect_err("refused");
        assert!(e
            .message
            .expect("message")
            .ends_with("only supports versions 7-27"));
        assert!(plan(&img, &up(KRAFT_VERSION, 0, UpgradeType::Upgrade))
            .expect("planned")
            .is_empty());
        // The broker's registration has no kraft.version range: it is the
        // quorum's, checked locally only.
        assert!(plan_update(
            &img,
            1,
            &supported_features(),
            1,
            &up(KRAFT_VERSION, 0, UpgradeType::SafeDowngrade)
        )
        .is_err());
        let e = plan(&img, &up(METADATA_VERSION, 27, UpgradeType::Unknown)).expect_err("refused");
        assert!(e.message.expect("message").contains("given upgrade type"));
    }

    #[test]
    fn registration_needs_the_finalized_metadata_version() {
        let img = image(27, &[]);
        let old = BTreeMap::from([(
            METADATA_VERSION.to_string(),
            FeatureRange { min: 7, max: 21 },
        )]);
        let e = check_registration(&img, &old).expect_err("refused");
        assert_eq!(e.code, ResponseError::UnsupportedVersion.code());
        assert!(check_registration(&img, &supported_features()).is_ok());
        assert!(check_registration(&img, &BTreeMap::new()).is_ok());
    }
}
