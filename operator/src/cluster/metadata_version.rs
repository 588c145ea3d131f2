//! `metadata.version` upgrades (issue 11, item 5): after a new version has
//! rolled onto every broker, finalize the highest `metadata.version` they all
//! support (or `spec.metadataVersion`), with UpdateFeatures. A lower level is
//! a downgrade, sent only after the controller validated it (Kafka refuses a
//! downgrade across a metadata format change); a refused change is a
//! `MetadataVersionBlocked` condition and a warning event, never a retry loop
//! that changes anything.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;
use runnel_admin::{metadata_version_name, parse_metadata_version, FeatureLevels, UpgradeType};
use runnel_crds::condition::{find, refusal_condition, types};
use runnel_crds::KafkaCluster;
use tracing::{info, warn};

use super::CONTROLLER;
use crate::context::Context;

const METADATA_VERSION: &str = "metadata.version";

/// What the operator should do about `metadata.version`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// The finalized level is the wanted one (or nothing is known).
    Keep,
    /// A change is due but waits (the new version is not on every broker yet).
    Wait(String),
    /// Finalize `level` (a downgrade when lower than the finalized level).
    Set {
        /// The new level.
        level: i16,
        /// Whether it lowers the finalized level.
        downgrade: bool,
    },
    /// The wanted level cannot be finalized.
    Refuse(String),
}

/// Decides from what a broker reports (`features`), the spec's
/// `metadataVersion` (`wanted`), and whether the cluster has settled: every
/// broker runs the requested version and no restart is pending. Pure.
pub fn decide(features: &FeatureLevels, wanted: Option<&str>, settled: bool) -> Decision {
    let Some(&finalized) = features.finalized.get(METADATA_VERSION) else {
        return Decision::Keep;
    };
    let supported = features.supported.get(METADATA_VERSION).copied();
    let target = match wanted {
        Some(w) => match parse_metadata_version(w) {
            Some(l) => l,
            None => return Decision::Refuse(format!("unknown metadata.version {w:?}")),
        },
        // By default only ever upgrade, to what the brokers support.
        None => match supported {
            Some((_, max)) if max > finalized => max,
            _ => return Decision::Keep,
        },
    };
    if target == finalized {
        return Decision::Keep;
    }
    if let Some((min, max)) = supported {
        if target < min || target > max {
            return Decision::Refuse(format!(
                "metadata.version {} is outside what the brokers support ({} to {})",
                name(target),
                name(min),
                name(max)
            ));
        }
    }
    if !settled {
        return Decision::Wait(format!(
            "metadata.version {} waits until every broker runs the requested version",
            name(target)
        ));
    }
    Decision::Set {
        level: target,
        downgrade: target < finalized,
    }
}

fn name(level: i16) -> String {
    metadata_version_name(level)
        .map(str::to_string)
        .unwrap_or_else(|| level.to_string())
}

/// The outcome of one reconcile: the finalized level's name (for
/// `status.metadataVersion`) and why a change is refused, if it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outcome {
    /// The finalized level, as the brokers report it after any change.
    pub finalized: Option<String>,
    /// Why the wanted level is refused.
    pub blocked: Option<String>,
}

/// Reads the levels, decides, and applies the decision (events on changes
/// and on newly refused ones). `None` when the brokers cannot be asked.
pub async fn reconcile(
    ctx: &Context,
    kc: &KafkaCluster,
    bootstrap: &str,
    settled: bool,
) -> Option<Outcome> {
    let admin = match ctx.kafka.get(bootstrap).await {
        Ok(a) => a,
        Err(e) => {
            ctx.kafka.on_error(bootstrap, &e).await;
            return None;
        }
    };
    let features = match admin.describe_features().await {
        Ok(f) => f,
        Err(e) => {
            warn!(cluster = %kc.name_any(), error = %e, "cannot read the feature levels");
            ctx.kafka.on_error(bootstrap, &e).await;
            return None;
        }
    };
    let finalized = features.finalized.get(METADATA_VERSION).copied();
    let previously_blocked = kc
        .status
        .as_ref()
        .and_then(|s| find(&s.conditions, types::METADATA_VERSION_BLOCKED))
        .filter(|c| c.status == "True")
        .map(|c| c.message.clone());
    let refuse = |why: String| async {
        if previously_blocked.as_deref() != Some(why.as_str()) {
            warn!(cluster = %kc.name_any(), why, "metadata.version change refused");
            ctx.event(
                kc,
                CONTROLLER,
                true,
                "MetadataVersionRefused",
                "UpdateFeatures",
                why.clone(),
            )
            .await;
        }
        why
    };
    let wanted = kc.spec.metadata_version.as_deref();
    let mut out = Outcome {
        finalized: finalized.map(name),
        blocked: None,
    };
    match decide(&features, wanted, settled) {
        Decision::Keep => {}
        Decision::Wait(why) => {
            info!(cluster = %kc.name_any(), why, "metadata.version change waits")
        }
        Decision::Refuse(why) => out.blocked = Some(refuse(why).await),
        Decision::Set { level, downgrade } => {
            let kind = if downgrade {
                UpgradeType::SafeDowngrade
            } else {
                UpgradeType::Upgrade
            };
            // A downgrade is validated first: Kafka's refusal is the answer.
            let checked = if downgrade {
                admin
                    .update_feature(METADATA_VERSION, level, kind, true)
                    .await
            } else {
                Ok(())
            };
            let done = match checked {
                Ok(()) => {
                    admin
                        .update_feature(METADATA_VERSION, level, kind, false)
                        .await
                }
                Err(e) => Err(e),
            };
            match done {
                Ok(()) => {
                    let verb = if downgrade { "downgraded" } else { "upgraded" };
                    let from = finalized.map(name).unwrap_or_default();
                    info!(cluster = %kc.name_any(), from, to = name(level), "metadata.version {verb}");
                    ctx.event(
                        kc,
                        CONTROLLER,
                        false,
                        "MetadataVersionFinalized",
                        "UpdateFeatures",
                        format!("metadata.version {verb} from {from} to {}", name(level)),
                    )
                    .await;
                    out.finalized = Some(name(level));
                }
                Err(e) if e.kafka_code().is_some() => {
                    let why = format!(
                        "metadata.version {} refused by the controller: {}",
                        name(level),
                        e.kafka_message().unwrap_or("no message")
                    );
                    out.blocked = Some(refuse(why).await);
                }
                Err(e) => {
                    warn!(cluster = %kc.name_any(), error = %e, "UpdateFeatures failed; retried on the next reconcile");
                    ctx.kafka.on_error(bootstrap, &e).await;
                }
            }
        }
    }
    Some(out)
}

/// The `MetadataVersionBlocked` condition for `blocked`, once there has
/// been one (it then stays, False, when resolved); `None` otherwise.
pub fn blocked_condition(
    previous: &[Condition],
    blocked: Option<&str>,
    generation: Option<i64>,
    now: Timestamp,
) -> Option<Condition> {
    refusal_condition(
        previous,
        types::METADATA_VERSION_BLOCKED,
        blocked,
        "no metadata.version change is refused",
        generation,
        now,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn levels(finalized: i16, max: i16) -> FeatureLevels {
        FeatureLevels {
            supported: [(METADATA_VERSION.to_string(), (7, max))].into(),
            finalized: [(METADATA_VERSION.to_string(), finalized)].into(),
            epoch: 10,
        }
    }

    #[test]
    fn upgrades_to_what_the_brokers_support_only_once_the_roll_is_done() {
        let f = levels(21, 27);
        assert_eq!(
            decide(&f, None, false),
            Decision::Wait(
                "metadata.version 4.1-IV1 waits until every broker runs the requested version"
                    .into()
            )
        );
        assert_eq!(
            decide(&f, None, true),
            Decision::Set {
                level: 27,
                downgrade: false
            }
        );
        // Nothing to do: no wait either, even mid-roll.
        assert_eq!(decide(&levels(27, 27), None, false), Decision::Keep);
        // By default a level above what the brokers support is never lowered.
        assert_eq!(decide(&levels(27, 25), None, true), Decision::Keep);
    }

    #[test]
    fn a_pinned_level_upgrades_or_downgrades_within_the_supported_range() {
        let f = levels(27, 27);
        assert_eq!(
            decide(&f, Some("4.0"), true),
            Decision::Set {
                level: 25,
                downgrade: true
            }
        );
        assert_eq!(decide(&f, Some("4.1-IV1"), true), Decision::Keep);
        assert_eq!(
            decide(&levels(21, 27), Some("4.0-IV3"), true),
            Decision::Set {
                level: 25,
                downgrade: false
            }
        );
    }

    #[test]
    fn unknown_or_unsupported_levels_are_refused() {
        let f = levels(21, 25);
        assert_eq!(
            decide(&f, Some("4.1"), true),
            Decision::Refuse(
                "metadata.version 4.1-IV1 is outside what the brokers support (3.3-IV3 to 4.0-IV3)"
                    .into()
            )
        );
        assert_eq!(
            decide(&f, Some("9.9"), true),
            Decision::Refuse("unknown metadata.version \"9.9\"".into())
        );
        // Brokers that report no feature levels: nothing to decide.
        assert_eq!(
            decide(&FeatureLevels::default(), Some("4.0"), true),
            Decision::Keep
        );
    }

    #[test]
    fn the_blocked_condition_appears_and_stays_false_once_resolved() {
        let now = Timestamp::now();
        assert!(blocked_condition(&[], None, Some(1), now).is_none());
        let c = blocked_condition(&[], Some("refused"), Some(1), now).expect("set");
        assert_eq!(c.status, "True");
        let c = blocked_condition(&[c], None, Some(2), now).expect("kept");
        assert_eq!(
            (c.status.as_str(), c.reason.as_str()),
            ("False", "NotBlocked")
        );
    }
}
