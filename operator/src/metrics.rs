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

/// Labels of one connector's (or its tasks') state.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ConnectorLabels {
    /// The KafkaConnector's namespace.
    pub namespace: String,
    /// The KafkaConnector's (and the connector's) name.
    pub connector: String,
    /// A Connect state: `UNASSIGNED`, `RUNNING`, `PAUSED`, `STOPPED`, `FAILED`, `RESTARTING`.
    pub state: String,
}

/// The states Kafka Connect reports for connectors and tasks (`AbstractStatus.State`);
/// each gets a series, 0 when not current, so a dashboard sees a state being left.
pub const CONNECT_STATES: [&str; 6] = [
    "UNASSIGNED",
    "RUNNING",
    "PAUSED",
    "STOPPED",
    "FAILED",
    "RESTARTING",
];

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
    /// Per KafkaConnector: 1 for the state Connect last reported, 0 for the others (all 0
    /// while Connect reports no state).
    pub connector_state: Family<ConnectorLabels, Gauge>,
    /// Per KafkaConnector: its tasks in each state.
    pub connector_tasks: Family<ConnectorLabels, Gauge>,
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
        let connector_state = Family::<ConnectorLabels, Gauge>::default();
        let connector_tasks = Family::<ConnectorLabels, Gauge>::default();
        registry.register(
            "connector_state",
            "KafkaConnector state as Kafka Connect last reported it (1 for the current state)",
            connector_state.clone(),
        );
        registry.register(
            "connector_tasks",
            "KafkaConnector tasks by the state Kafka Connect last reported",
            connector_tasks.clone(),
        );
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
            connector_state,
            connector_tasks,
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

    /// Records what Connect last reported for a connector: its state (`None`: unknown, e.g.
    /// Connect unreachable or the connector not created yet) and its tasks' states.
    pub fn connector(&self, namespace: &str, connector: &str, state: Option<&str>, tasks: &[&str]) {
        let labels = |s: &str| ConnectorLabels {
            namespace: namespace.into(),
            connector: connector.into(),
            state: s.into(),
        };
        // Connect's states are a fixed enum; another string counts as none of them.
        for s in CONNECT_STATES {
            let l = labels(s);
            self.connector_state
                .get_or_create(&l)
                .set(i64::from(state == Some(s)));
            self.connector_tasks
                .get_or_create(&l)
                .set(tasks.iter().filter(|t| **t == s).count() as i64);
        }
    }

    /// Drops a deleted connector's series.
    pub fn forget_connector(&self, namespace: &str, connector: &str) {
        for s in CONNECT_STATES {
            let l = ConnectorLabels {
                namespace: namespace.into(),
                connector: connector.into(),
                state: s.into(),
            };
            self.connector_state.remove(&l);
            self.connector_tasks.remove(&l);
        }
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

    #[test]
    fn connector_states_are_gauges_per_connector() {
        let m = Metrics::default();
        m.connector(
            "kafka",
            "src",
            Some("RUNNING"),
            &["RUNNING", "FAILED", "RUNNING"],
        );
        m.connector("kafka", "sink", Some("PAUSED"), &["PAUSED"]);
        let text = m.encode();
        let has = |s: &str| assert!(text.contains(s), "{s} missing in\n{text}");
        has("runnel_operator_connector_state{namespace=\"kafka\",connector=\"src\",state=\"RUNNING\"} 1");
        has("runnel_operator_connector_state{namespace=\"kafka\",connector=\"src\",state=\"FAILED\"} 0");
        has("runnel_operator_connector_tasks{namespace=\"kafka\",connector=\"src\",state=\"RUNNING\"} 2");
        has("runnel_operator_connector_tasks{namespace=\"kafka\",connector=\"src\",state=\"FAILED\"} 1");
        has("runnel_operator_connector_state{namespace=\"kafka\",connector=\"sink\",state=\"PAUSED\"} 1");
        // A state change moves the 1; an unknown state is all zeros.
        m.connector("kafka", "src", Some("FAILED"), &["FAILED"]);
        let text = m.encode();
        assert!(text.contains("runnel_operator_connector_state{namespace=\"kafka\",connector=\"src\",state=\"FAILED\"} 1"));
        assert!(text.contains("runnel_operator_connector_state{namespace=\"kafka\",connector=\"src\",state=\"RUNNING\"} 0"));
        assert!(text.contains("runnel_operator_connector_tasks{namespace=\"kafka\",connector=\"src\",state=\"RUNNING\"} 0"));
        m.connector("kafka", "sink", None, &[]);
        assert!(!m
            .encode()
            .contains("connector=\"sink\",state=\"PAUSED\"} 1"));
        // A deleted connector's series go.
        m.forget_connector("kafka", "src");
        let text = m.encode();
        assert!(!text.contains("connector=\"src\""), "{text}");
        assert!(text.contains("connector=\"sink\""));
    }
}
