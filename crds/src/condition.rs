//! Status conditions shared by every Runnel resource.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::jiff::Timestamp;

/// Condition types Runnel sets.
pub mod types {
    /// The resource is fully reconciled and serving.
    pub const READY: &str = "Ready";
    /// The operator is working towards the spec.
    pub const RECONCILING: &str = "Reconciling";
    /// Something is wrong that the operator cannot fix alone.
    pub const DEGRADED: &str = "Degraded";
    /// A KafkaCluster scale-down is refused: some topic's replication factor exceeds the
    /// brokers that would remain.
    pub const SCALE_DOWN_BLOCKED: &str = "ScaleDownBlocked";
    /// A `metadata.version` change is refused (the brokers do not support the level, or
    /// Kafka refuses the downgrade).
    pub const METADATA_VERSION_BLOCKED: &str = "MetadataVersionBlocked";
    /// A KafkaCluster version downgrade is refused: the target version does not support
    /// the finalized `metadata.version` (or is unknown), so its brokers would not start.
    pub const DOWNGRADE_BLOCKED: &str = "DowngradeBlocked";
}

/// A condition that reports a refusal (`Refused`, True) once there has been one, and
/// then stays, False (`NotBlocked`, `resolved`), when it is resolved; `None` when
/// there never was one, so a resource that never hit the problem does not show it.
pub fn refusal_condition(
    previous: &[Condition],
    type_: &str,
    refused: Option<&str>,
    resolved: &str,
    observed_generation: Option<i64>,
    now: Timestamp,
) -> Option<Condition> {
    let was = previous.iter().any(|c| c.type_ == type_);
    if refused.is_none() && !was {
        return None;
    }
    Some(condition(
        previous,
        type_,
        refused.is_some(),
        if refused.is_some() {
            "Refused"
        } else {
            "NotBlocked"
        },
        refused.unwrap_or(resolved),
        observed_generation,
        now,
    ))
}

/// Builds a condition, keeping `lastTransitionTime` from `previous` when the status did not change
/// (so status patches stay quiet, as Kubernetes conventions ask).
pub fn condition(
    previous: &[Condition],
    type_: &str,
    status: bool,
    reason: &str,
    message: impl Into<String>,
    observed_generation: Option<i64>,
    now: Timestamp,
) -> Condition {
    let status_str = if status { "True" } else { "False" };
    let last = previous
        .iter()
        .find(|c| c.type_ == type_ && c.status == status_str)
        .map(|c| c.last_transition_time.clone())
        .unwrap_or(Time(now));
    Condition {
        type_: type_.to_string(),
        status: status_str.to_string(),
        reason: reason.to_string(),
        message: message.into(),
        observed_generation,
        last_transition_time: last,
    }
}

/// The condition of `type_` in `conditions`, if any.
pub fn find<'a>(conditions: &'a [Condition], type_: &str) -> Option<&'a Condition> {
    conditions.iter().find(|c| c.type_ == type_)
}

/// Whether the condition of `type_` is `True`.
pub fn is_true(conditions: &[Condition], type_: &str) -> bool {
    find(conditions, type_).is_some_and(|c| c.status == "True")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transition_time_kept_while_status_unchanged() {
        let t0: Timestamp = "2026-01-01T00:00:00Z".parse().expect("ts");
        let t1: Timestamp = "2026-01-01T00:05:00Z".parse().expect("ts");
        let c0 = condition(&[], types::READY, false, "Creating", "m", Some(1), t0);
        let c1 = condition(
            std::slice::from_ref(&c0),
            types::READY,
            false,
            "Creating",
            "m2",
            Some(2),
            t1,
        );
        assert_eq!(c1.last_transition_time, Time(t0));
        let c2 = condition(&[c1], types::READY, true, "Ready", "ok", Some(2), t1);
        assert_eq!(c2.last_transition_time, Time(t1));
        assert!(is_true(&[c2], types::READY));
    }
}
