//! The error a request handler reports back to a client.

use kafka_protocol::error::ResponseError;

/// A Kafka error code with an optional message for the client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, serde::Serialize, serde::Deserialize)]
#[error("{} ({code}){}", name(*.code), .message.as_deref().map(|m| format!(": {m}")).unwrap_or_default())]
pub struct ApiError {
    /// The Kafka error code.
    pub code: i16,
    /// A human-readable message, where the API carries one.
    pub message: Option<String>,
    /// Produce only: the records that made a batch fail validation, as
    /// (index in the batch, why) (Kafka's `RecordError`s).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub record_errors: Vec<(i32, String)>,
}

fn name(code: i16) -> String {
    match ResponseError::try_from_code(code) {
        Some(e) => format!("{e:?}"),
        None => "NONE".into(),
    }
}

impl ApiError {
    /// An error with a message.
    pub fn new(e: ResponseError, message: impl Into<String>) -> Self {
        Self {
            code: e.code(),
            message: Some(message.into()),
            record_errors: Vec::new(),
        }
    }

    /// An error with Kafka's default message.
    pub fn code(e: ResponseError) -> Self {
        Self {
            code: e.code(),
            message: None,
            record_errors: Vec::new(),
        }
    }
}
