//! The operator's error type.

/// Why a reconcile failed (and will be retried by `error_policy`).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A Kubernetes API call failed.
    #[error("kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    /// The finalizer helper failed.
    #[error("finalizer: {0}")]
    Finalizer(String),
    /// A Kafka Admin API call failed.
    #[error("kafka: {0}")]
    Kafka(#[from] crate::kafka::KafkaError),
    /// A Kafka Connect REST call failed.
    #[error("connect: {0}")]
    Connect(#[from] crate::connector::rest::RestError),
    /// An object could not be serialized.
    #[error("serialization: {0}")]
    Serde(#[from] serde_json::Error),
    /// The object lacks a name or namespace.
    #[error("object has no {0}")]
    MissingField(&'static str),
}

impl Error {
    /// A short label for metrics.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Error::Kube(_) => "kube",
            Error::Finalizer(_) => "finalizer",
            Error::Kafka(_) => "kafka",
            Error::Connect(_) => "connect",
            Error::Serde(_) => "serde",
            Error::MissingField(_) => "missing_field",
        }
    }
}
