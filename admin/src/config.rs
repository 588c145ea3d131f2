//! Client settings.

use std::time::Duration;

/// Settings of an [`AdminClient`](crate::AdminClient).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminConfig {
    /// The `client.id` sent in every request header.
    pub client_id: String,
    /// How long to wait for the response to one request (write plus read),
    /// and the `timeout_ms` given to the broker for CreateTopics,
    /// CreatePartitions and DeleteTopics.
    pub request_timeout: Duration,
    /// How long to wait for one TCP connection to be established.
    pub connect_timeout: Duration,
}

impl Default for AdminConfig {
    /// `client_id` "runnel-admin", 30 s request timeout, 10 s connect timeout.
    fn default() -> Self {
        AdminConfig {
            client_id: "runnel-admin".to_string(),
            request_timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(10),
        }
    }
}
