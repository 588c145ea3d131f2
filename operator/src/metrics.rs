//! Prometheus metrics, served on `/metrics`.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use std::sync::Arc;
use std::time::Instant;

/// Labels naming a controller.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ControllerLabels {
    /// `kafkacluster` or `kafkatopic`.
    pub controller: String,
}

/// Labels of a failed reconcile.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ErrorLabels {
    /// `kafkacluster` or `kafkatopic`.
    pub controller: String,
    /// The error kind.
    pub error: String,
}

/// Labels of an action taken on Kafka or Kubernetes.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ActionLabels {
    /// `kafkacluster` or `kafkatopic`.
    pub controller: String,
    /// The action (event reason), e.g. `TopicCreated`.
    pub action: String,
}

/// Every metric the operator exports.
#[derive(Clone)]
pub struct Metrics {
    /// Reconciles started.
    pub reconciliations: Family<ControllerLabels, Counter>,
    /// Reconciles that failed.
    pub failures: Family<ErrorLabels, Counter>,
    /// Reconcile duration.
    pub duration: Family<ControllerLabels, Histogram>,
    /// Actions taken.
    pub actions: Family<ActionLabels, Counter>,
    /// 1 while this replica holds the leader lease (or runs without election).
    pub leader: Gauge,
    registry: Arc<Registry>,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("runnel_operator");
        let reconciliations = Family::<ControllerLabels, Counter>::default();
        let failures = Family::<ErrorLabels, Counter>::default();
        let duration = Family::<ControllerLabels, Histogram>::new_with_constructor(|| {
            Histogram::new([0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0])
        });
        let actions = Family::<ActionLabels, Counter>::default();
        let leader = Gauge::default();
        registry.register(
            "reconciliations",
            "Reconciles started",
            reconciliations.clone(),
        );
        registry.register(
            "reconcile_failures",
            "Reconciles that failed",
            failures.clone(),
        );
        registry.register(
            "reconcile_duration_seconds",
            "Reconcile duration",
            duration.clone(),
        );
        registry.register(
            "actions",
            "Actions taken on Kafka or Kubernetes",
            actions.clone(),
        );
        registry.register(
            "leader",
            "1 while this replica is the leader",
            leader.clone(),
        );
        Metrics {
            reconciliations,
            failures,
            duration,
            actions,
            leader,
            registry: Arc::new(registry),
        }
    }
}

impl Metrics {
    /// Counts a reconcile start and returns a guard that records its duration when dropped.
    pub fn reconcile(&self, controller: &str) -> DurationGuard {
        let labels = ControllerLabels {
            controller: controller.into(),
        };
        self.reconciliations.get_or_create(&labels).inc();
        DurationGuard {
            histogram: self.duration.get_or_create(&labels).clone(),
            start: Instant::now(),
        }
    }

    /// Counts a failed reconcile.
    pub fn failure(&self, controller: &str, error: &str) {
        self.failures
            .get_or_create(&ErrorLabels {
                controller: controller.into(),
                error: error.into(),
            })
            .inc();
    }

    /// Counts an action.
    pub fn action(&self, controller: &str, action: &str) {
        self.actions
            .get_or_create(&ActionLabels {
                controller: controller.into(),
                action: action.into(),
            })
            .inc();
    }

    /// The text exposition format.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &self.registry) {
            tracing::error!(error = %e, "cannot encode metrics");
        }
        out
    }
}

/// Records a reconcile's duration when dropped.
pub struct DurationGuard {
    histogram: Histogram,
    start: Instant,
}

impl Drop for DurationGuard {
    fn drop(&mut self) {
        self.histogram.observe(self.start.elapsed().as_secs_f64());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_counters() {
        let m = Metrics::default();
        drop(m.reconcile("kafkatopic"));
        m.failure("kafkatopic", "kafka");
        m.action("kafkatopic", "TopicCreated");
        let text = m.encode();
        assert!(
            text.contains("runnel_operator_reconciliations_total{controller=\"kafkatopic\"} 1"),
            "{text}"
        );
        assert!(text.contains(
            "runnel_operator_reconcile_failures_total{controller=\"kafkatopic\",error=\"kafka\"} 1"
        ));
        assert!(text.contains(
            "runnel_operator_actions_total{controller=\"kafkatopic\",action=\"TopicCreated\"} 1"
        ));
        assert!(text.contains(
            "runnel_operator_reconcile_duration_seconds_count{controller=\"kafkatopic\"} 1"
        ));
    }
}
