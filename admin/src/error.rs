//! The error type of every [`AdminClient`](crate::AdminClient) operation.

use kafka_protocol::error::ResponseError;

/// What went wrong in an admin operation.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// Connecting, writing or reading failed (refused connection, reset, EOF, ...).
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),

    /// Connecting, or waiting for a response, took longer than configured
    /// ([`AdminConfig::connect_timeout`](crate::AdminConfig::connect_timeout) /
    /// [`AdminConfig::request_timeout`](crate::AdminConfig::request_timeout)).
    #[error("timed out")]
    Timeout,

    /// The peer does not speak the protocol as expected: undecodable frames,
    /// a mismatched correlation id, an API or version both sides lack, ...
    #[error("protocol error: {0}")]
    Protocol(String),

    /// An argument cannot be turned into a request (e.g. an empty bootstrap
    /// list, or a broker id that is not in the cluster).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),

    /// The broker answered with a Kafka error code.
    #[error("{api} failed: {name} ({code}){}", .message.as_deref().map(|m| format!(": {m}")).unwrap_or_default())]
    Kafka {
        /// The API that failed, e.g. `"CreateTopics"`.
        api: &'static str,
        /// Kafka's numeric error code, e.g. 37.
        code: i16,
        /// Kafka's name for the code, e.g. `"INVALID_PARTITIONS"`.
        name: String,
        /// The broker's error message, if it sent one.
        message: Option<String>,
    },
}

impl AdminError {
    /// Builds [`AdminError::Kafka`] from an error code and optional message.
    pub fn kafka(api: &'static str, code: i16, message: Option<String>) -> Self {
        AdminError::Kafka {
            api,
            code,
            name: error_name(code),
            message,
        }
    }

    /// The Kafka error code, if this is a [`AdminError::Kafka`].
    pub fn kafka_code(&self) -> Option<i16> {
        match self {
            AdminError::Kafka { code, .. } => Some(*code),
            _ => None,
        }
    }

    /// The broker's error message, if this is a [`AdminError::Kafka`] that carries one.
    pub fn kafka_message(&self) -> Option<&str> {
        match self {
            AdminError::Kafka { message, .. } => message.as_deref(),
            _ => None,
        }
    }

    /// Whether Kafka classifies the error as retriable (only for [`AdminError::Kafka`];
    /// I/O errors and timeouts are transient too, but are reported as `false` here).
    pub fn is_retriable_kafka_error(&self) -> bool {
        match self {
            AdminError::Kafka { code, .. } => {
                ResponseError::try_from_code(*code).is_some_and(|e| e.is_retriable())
            }
            _ => false,
        }
    }
}

/// Kafka's name for an error code, as in `Errors.java` and the protocol guide:
/// `0` is `"NONE"`, `37` is `"INVALID_PARTITIONS"`, `-1` is `"UNKNOWN_SERVER_ERROR"`;
/// codes this library does not know map to `"UNKNOWN_ERROR_CODE(<code>)"`.
pub fn error_name(code: i16) -> String {
    match ResponseError::try_from_code(code) {
        None => "NONE".to_string(),
        Some(ResponseError::Unknown(c)) => format!("UNKNOWN_ERROR_CODE({c})"),
        Some(known) => screaming_snake(&format!("{known:?}")),
    }
}

/// `UnknownTopicOrPartition` -> `UNKNOWN_TOPIC_OR_PARTITION`.
fn screaming_snake(camel: &str) -> String {
    let mut out = String::with_capacity(camel.len() + 8);
    for (i, ch) in camel.chars().enumerate() {
        if ch.is_ascii_uppercase() && i > 0 {
            out.push('_');
        }
        out.push(ch.to_ascii_uppercase());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_match_kafka() {
        assert_eq!(error_name(0), "NONE");
        assert_eq!(error_name(-1), "UNKNOWN_SERVER_ERROR");
        assert_eq!(error_name(3), "UNKNOWN_TOPIC_OR_PARTITION");
        assert_eq!(error_name(17), "INVALID_TOPIC_EXCEPTION");
        assert_eq!(error_name(35), "UNSUPPORTED_VERSION");
        assert_eq!(error_name(36), "TOPIC_ALREADY_EXISTS");
        assert_eq!(error_name(37), "INVALID_PARTITIONS");
        assert_eq!(error_name(40), "INVALID_CONFIG");
        assert_eq!(error_name(56), "KAFKA_STORAGE_ERROR");
        assert_eq!(error_name(106), "FETCH_SESSION_TOPIC_ID_ERROR");
        assert_eq!(error_name(-2), "UNKNOWN_ERROR_CODE(-2)");
        assert_eq!(error_name(30000), "UNKNOWN_ERROR_CODE(30000)");
    }

    #[test]
    fn kafka_error_display_and_accessors() {
        let e = AdminError::kafka("CreatePartitions", 37, Some("too few".into()));
        assert_eq!(e.kafka_code(), Some(37));
        assert_eq!(e.kafka_message(), Some("too few"));
        assert_eq!(
            e.to_string(),
            "CreatePartitions failed: INVALID_PARTITIONS (37): too few"
        );
        let e = AdminError::kafka("DeleteTopics", 3, None);
        assert_eq!(
            e.to_string(),
            "DeleteTopics failed: UNKNOWN_TOPIC_OR_PARTITION (3)"
        );
        assert!(e.is_retriable_kafka_error());
        assert_eq!(AdminError::Timeout.kafka_code(), None);
    }
}
