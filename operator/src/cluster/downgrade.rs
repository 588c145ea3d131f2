//! Version downgrades refused where Kafka would refuse them (issue 11, item 5).
//!
//! A Kafka broker refuses to start when the cluster's finalized `metadata.version` is
//! newer than its software supports. Rolling such an image would take down every
//! broker it reached, one after the other. So before a roll to a lower version, the
//! operator looks the target up in [`VERSIONS`] (each Runnel version with the highest
//! `metadata.version` it supports, as Strimzi keeps its `kafka-versions.yaml`) and
//! refuses when the finalized level is higher, or when it does not know the version.
//! A refused downgrade keeps the running image in the pod templates (no pod restarts,
//! and a pod that restarts for another reason comes back on the running image), sets
//! the `DowngradeBlocked` condition and raises a warning event.
//!
//! Versions that are not `MAJOR.MINOR.PATCH` (a tag like `dev`) cannot be ordered:
//! they are not judged.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use k8s_openapi::jiff::Timestamp;
use runnel_admin::{metadata_version_name, parse_metadata_version};
use runnel_crds::condition::{refusal_condition, types};

/// Each Runnel version and the highest `metadata.version` its brokers support.
pub const VERSIONS: &[(&str, &str)] = &[("0.1.0", "4.1-IV1")];

/// `MAJOR.MINOR.PATCH` of `v` (a pre-release or build suffix ignored).
fn semver(v: &str) -> Option<(u64, u64, u64)> {
    let core = v.split(['-', '+']).next()?;
    let mut it = core.split('.').map(|p| p.parse::<u64>().ok());
    let t = (it.next()??, it.next()??, it.next()??);
    it.next().is_none().then_some(t)
}

/// Why moving from `running` to `desired` must be refused, given the finalized
/// `metadata.version` and a `versions` table; `None` when it may go ahead (not a
/// downgrade, or nothing known to judge it by). Pure.
pub fn refusal(
    versions: &[(&str, &str)],
    running: Option<&str>,
    desired: &str,
    finalized: Option<&str>,
) -> Option<String> {
    let running = running?;
    let (r, d) = (semver(running)?, semver(desired)?);
    if d >= r {
        return None;
    }
    let finalized = finalized?;
    let level = parse_metadata_version(finalized)?;
    let Some((_, max)) = versions.iter().find(|(v, _)| semver(v) == Some(d)) else {
        return Some(format!(
            "downgrade from {running} to {desired} refused: the operator does not know version {desired}, so it cannot tell whether it supports metadata.version {finalized}; the brokers keep running {running}"
        ));
    };
    let max_level = parse_metadata_version(max)?;
    (level > max_level).then(|| {
        format!(
            "downgrade from {running} to {desired} refused: {desired} supports metadata.version up to {max}, and the cluster finalized {}; its brokers would refuse to start. Lower spec.metadataVersion to {max} first (Kafka allows that only without a metadata format change in between); the brokers keep running {running}",
            metadata_version_name(level).unwrap_or(finalized)
        )
    })
}

/// The `DowngradeBlocked` condition for `refused`, once there has been one (it then
/// stays, False, when resolved); `None` otherwise.
pub fn blocked_condition(
    previous: &[Condition],
    refused: Option<&str>,
    generation: Option<i64>,
    now: Timestamp,
) -> Option<Condition> {
    refusal_condition(
        previous,
        types::DOWNGRADE_BLOCKED,
        refused,
        "no version change is refused",
        generation,
        now,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const TABLE: &[(&str, &str)] = &[("0.2.0", "4.1-IV1"), ("0.1.0", "4.0-IV3")];

    #[test]
    fn an_upgrade_or_the_same_version_is_never_refused() {
        assert_eq!(
            refusal(TABLE, Some("0.1.0"), "0.2.0", Some("4.1-IV1")),
            None
        );
        assert_eq!(
            refusal(TABLE, Some("0.2.0"), "0.2.0", Some("4.1-IV1")),
            None
        );
        assert_eq!(
            refusal(TABLE, Some("0.2.0"), "0.2.0-rc1", Some("4.1-IV1")),
            None
        );
    }

    #[test]
    fn a_downgrade_below_the_finalized_metadata_version_is_refused() {
        let why = refusal(TABLE, Some("0.2.0"), "0.1.0", Some("4.1-IV1")).expect("refused");
        assert!(
            why.contains("0.1.0 supports metadata.version up to 4.0-IV3"),
            "{why}"
        );
        assert!(why.contains("finalized 4.1-IV1"), "{why}");
        // Once metadata.version is lowered, the same downgrade goes ahead.
        assert_eq!(
            refusal(TABLE, Some("0.2.0"), "0.1.0", Some("4.0-IV3")),
            None
        );
        assert_eq!(
            refusal(TABLE, Some("0.2.0"), "0.1.0", Some("3.9-IV0")),
            None
        );
    }

    #[test]
    fn an_unknown_target_version_is_refused() {
        let why = refusal(TABLE, Some("0.2.0"), "0.0.9", Some("4.0-IV3")).expect("refused");
        assert!(why.contains("does not know version 0.0.9"), "{why}");
    }

    #[test]
    fn nothing_known_nothing_judged() {
        assert_eq!(refusal(TABLE, None, "0.1.0", Some("4.1-IV1")), None);
        assert_eq!(refusal(TABLE, Some("0.2.0"), "0.1.0", None), None);
        assert_eq!(refusal(TABLE, Some("dev"), "0.1.0", Some("4.1-IV1")), None);
        assert_eq!(
            refusal(TABLE, Some("0.2.0"), "latest", Some("4.1-IV1")),
            None
        );
    }

    #[test]
    fn the_table_names_this_operators_own_version_and_real_levels() {
        let own = env!("CARGO_PKG_VERSION");
        assert!(
            VERSIONS.iter().any(|(v, _)| *v == own),
            "{own} not in VERSIONS"
        );
        for (_, mv) in VERSIONS {
            assert!(parse_metadata_version(mv).is_some(), "{mv}");
        }
    }

    #[test]
    fn the_condition_appears_when_refused_and_stays_false_after() {
        let now = Timestamp::now();
        assert_eq!(blocked_condition(&[], None, Some(1), now), None);
        let c = blocked_condition(&[], Some("no"), Some(1), now).expect("condition");
        assert_eq!((c.status.as_str(), c.reason.as_str()), ("True", "Refused"));
        let c = blocked_condition(&[c], None, Some(2), now).expect("stays");
        assert_eq!(c.status, "False");
    }
}
