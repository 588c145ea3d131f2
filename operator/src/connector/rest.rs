//! A small client of the Kafka Connect REST API (hyper, HTTP/1.1, JSON), covering what the
//! KafkaConnect and KafkaConnector controllers call.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::time::Duration;

/// Most bytes of a response body read (a status with long traces fits easily).
const MAX_BODY: usize = 4 << 20;
/// Per-request timeout.
const TIMEOUT: Duration = Duration::from_secs(30);

/// A failed REST call.
#[derive(Debug, thiserror::Error)]
pub enum RestError {
    /// No answer (connection refused, timeout, bad URL).
    #[error("Connect REST API unreachable: {0}")]
    Unreachable(String),
    /// An error status; `message` is Connect's `{"error_code","message"}` text.
    #[error("Connect REST API answered {status}: {message}")]
    Status {
        /// HTTP status.
        status: u16,
        /// Connect's message, or the body.
        message: String,
    },
    /// A body that is not the JSON expected.
    #[error("Connect REST API: unexpected body: {0}")]
    Body(String),
}

impl RestError {
    /// Whether the workers are rebalancing (the call is worth repeating shortly).
    pub fn is_rebalancing(&self) -> bool {
        match self {
            RestError::Status { status, message } => {
                *status == 409 || (*status == 500 && message.contains("rebalance"))
            }
            _ => false,
        }
    }

    /// Whether Connect refused the request itself (bad input), rather than failing to
    /// serve it. Connect 4.1.1 answers a validate of an unknown connector class with 500
    /// and a `BadRequestException` message, so the message counts too.
    pub fn is_refusal(&self) -> bool {
        match self {
            RestError::Status { status, message } => {
                ((400..500).contains(status) && *status != 409)
                    || message.contains("BadRequestException")
                    || message.contains("Failed to find any class that implements Connector")
            }
            _ => false,
        }
    }

    /// The HTTP status, if the API answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            RestError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// `GET /connectors/{name}/status`.
#[derive(Clone, Debug, Deserialize, PartialEq, Default)]
pub struct ConnectorStatus {
    /// Connector name.
    #[serde(default)]
    pub name: String,
    /// The connector instance.
    pub connector: StateInfo,
    /// Its tasks.
    #[serde(default)]
    pub tasks: Vec<TaskInfo>,
    /// `source` or `sink`.
    #[serde(default, rename = "type")]
    pub type_: Option<String>,
}

/// A connector's state.
#[derive(Clone, Debug, Deserialize, PartialEq, Default)]
pub struct StateInfo {
    /// RUNNING, PAUSED, STOPPED, FAILED, UNASSIGNED, RESTARTING.
    pub state: String,
    /// Worker running it.
    #[serde(default)]
    pub worker_id: Option<String>,
    /// The failure's stack trace.
    #[serde(default)]
    pub trace: Option<String>,
}

/// A task's state.
#[derive(Clone, Debug, Deserialize, PartialEq, Default)]
pub struct TaskInfo {
    /// Task id.
    pub id: i32,
    /// RUNNING, PAUSED, FAILED, ...
    pub state: String,
    /// Worker running it.
    #[serde(default)]
    pub worker_id: Option<String>,
    /// The failure's stack trace.
    #[serde(default)]
    pub trace: Option<String>,
}

/// `PUT /connector-plugins/{class}/config/validate`, reduced to the errors.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Validation {
    /// `key: message` for each config with errors.
    pub errors: Vec<String>,
}

/// A client of one Connect cluster's REST API.
#[derive(Clone)]
pub struct ConnectRest {
    base: String,
    client: Client<HttpConnector, Full<Bytes>>,
}

impl std::fmt::Debug for ConnectRest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectRest")
            .field("base", &self.base)
            .finish()
    }
}

/// Percent-encodes one path segment (connector and class names are mostly safe).
pub fn segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

impl ConnectRest {
    /// A client of the API at `base` (e.g. `http://conn-connect-api.kafka.svc:8083`).
    pub fn new(base: &str) -> Self {
        let mut http = HttpConnector::new();
        http.set_connect_timeout(Some(Duration::from_secs(5)));
        ConnectRest {
            base: base.trim_end_matches('/').to_string(),
            client: Client::builder(TokioExecutor::new()).build(http),
        }
    }

    /// The base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// One call; `Ok(None)` for 404, the JSON body (or `null`) otherwise. While the
    /// workers rebalance (409, or 500 "a rebalance is expected"), retried for up to 15 s.
    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Option<Value>, RestError> {
        let mut attempt = 0;
        loop {
            match self.call_once(method.clone(), path, body).await {
                Err(e) if e.is_rebalancing() && attempt < 30 => {
                    attempt += 1;
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
                r => return r,
            }
        }
    }

    async fn call_once(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Option<Value>, RestError> {
        let uri = format!("{}{path}", self.base);
        let bytes = match body {
            Some(v) => {
                Bytes::from(serde_json::to_vec(v).map_err(|e| RestError::Body(e.to_string()))?)
            }
            None => Bytes::new(),
        };
        let req = Request::builder()
            .method(method)
            .uri(&uri)
            .header("accept", "application/json")
            .header("content-type", "application/json")
            .body(Full::new(bytes))
            .map_err(|e| RestError::Unreachable(format!("{uri}: {e}")))?;
        let resp = tokio::time::timeout(TIMEOUT, self.client.request(req))
            .await
            .map_err(|_| RestError::Unreachable(format!("{uri}: timed out")))?
            .map_err(|e| RestError::Unreachable(format!("{uri}: {e}")))?;
        let status = resp.status().as_u16();
        let body = tokio::time::timeout(
            TIMEOUT,
            http_body_util::Limited::new(resp.into_body(), MAX_BODY).collect(),
        )
        .await
        .map_err(|_| RestError::Unreachable(format!("{uri}: body timed out")))?
        .map_err(|e| RestError::Unreachable(format!("{uri}: {e}")))?
        .to_bytes();
        if status == 404 {
            return Ok(None);
        }
        let json: Value = if body.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&body).unwrap_or_else(|_| {
                Value::String(String::from_utf8_lossy(&body).chars().take(2000).collect())
            })
        };
        if !(200..300).contains(&status) {
            let message = json
                .get("message")
                .and_then(Value::as_str)
                .map(str::to_string)
                .unwrap_or_else(|| json.to_string());
            return Err(RestError::Status { status, message });
        }
        Ok(Some(json))
    }

    fn parse<T: serde::de::DeserializeOwned>(v: Value) -> Result<T, RestError> {
        serde_json::from_value(v).map_err(|e| RestError::Body(e.to_string()))
    }

    /// `GET /`: the worker's version (REST is up).
    pub async fn version(&self) -> Result<String, RestError> {
        let v = self.call(Method::GET, "/", None).await?.unwrap_or_default();
        Ok(v.get("version")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string())
    }

    /// `GET /connector-plugins`.
    pub async fn plugins(&self) -> Result<Vec<runnel_crds::connect::ConnectorPlugin>, RestError> {
        let v = self
            .call(Method::GET, "/connector-plugins", None)
            .await?
            .unwrap_or(Value::Array(vec![]));
        Self::parse(v)
    }

    /// `GET /connectors/{name}/config`; `None` when the connector does not exist.
    pub async fn config(&self, name: &str) -> Result<Option<BTreeMap<String, String>>, RestError> {
        match self
            .call(
                Method::GET,
                &format!("/connectors/{}/config", segment(name)),
                None,
            )
            .await?
        {
            Some(v) => Ok(Some(Self::parse(v)?)),
            None => Ok(None),
        }
    }

    /// `PUT /connectors/{name}/config`: creates or updates.
    pub async fn put_config(
        &self,
        name: &str,
        config: &BTreeMap<String, String>,
    ) -> Result<(), RestError> {
        let body = serde_json::to_value(config).map_err(|e| RestError::Body(e.to_string()))?;
        self.call(
            Method::PUT,
            &format!("/connectors/{}/config", segment(name)),
            Some(&body),
        )
        .await?;
        Ok(())
    }

    /// `GET /connectors/{name}/status`; `None` when the connector does not exist.
    pub async fn status(&self, name: &str) -> Result<Option<ConnectorStatus>, RestError> {
        match self
            .call(
                Method::GET,
                &format!("/connectors/{}/status", segment(name)),
                None,
            )
            .await?
        {
            Some(v) => Ok(Some(Self::parse(v)?)),
            None => Ok(None),
        }
    }

    /// `PUT /connectors/{name}/{pause|resume|stop}`.
    pub async fn set_state(&self, name: &str, verb: &str) -> Result<(), RestError> {
        self.call(
            Method::PUT,
            &format!("/connectors/{}/{verb}", segment(name)),
            None,
        )
        .await?;
        Ok(())
    }

    /// `POST /connectors/{name}/restart?includeTasks=true&onlyFailed=...`.
    pub async fn restart(&self, name: &str, only_failed: bool) -> Result<(), RestError> {
        self.call(
            Method::POST,
            &format!(
                "/connectors/{}/restart?includeTasks=true&onlyFailed={only_failed}",
                segment(name)
            ),
            None,
        )
        .await?;
        Ok(())
    }

    /// `POST /connectors/{name}/tasks/{id}/restart`.
    pub async fn restart_task(&self, name: &str, task: i32) -> Result<(), RestError> {
        let found = self
            .call(
                Method::POST,
                &format!("/connectors/{}/tasks/{task}/restart", segment(name)),
                None,
            )
            .await?;
        match found {
            Some(_) => Ok(()),
            None => Err(RestError::Status {
                status: 404,
                message: format!("connector {name} has no task {task}"),
            }),
        }
    }

    /// `DELETE /connectors/{name}` (absent is fine).
    pub async fn delete(&self, name: &str) -> Result<(), RestError> {
        self.call(
            Method::DELETE,
            &format!("/connectors/{}", segment(name)),
            None,
        )
        .await?;
        Ok(())
    }

    /// `GET /connectors/{name}/offsets` (KIP-875).
    pub async fn offsets(&self, name: &str) -> Result<Option<Value>, RestError> {
        self.call(
            Method::GET,
            &format!("/connectors/{}/offsets", segment(name)),
            None,
        )
        .await
    }

    /// `DELETE /connectors/{name}/offsets` (KIP-875; the connector must be STOPPED).
    pub async fn reset_offsets(&self, name: &str) -> Result<(), RestError> {
        self.call(
            Method::DELETE,
            &format!("/connectors/{}/offsets", segment(name)),
            None,
        )
        .await?;
        Ok(())
    }

    /// `PATCH /connectors/{name}/offsets` (KIP-875; the connector must be STOPPED): sets
    /// `offsets` (`{"offsets": [...]}`); returns Connect's message.
    pub async fn alter_offsets(&self, name: &str, offsets: &Value) -> Result<String, RestError> {
        let v = self
            .call(
                Method::PATCH,
                &format!("/connectors/{}/offsets", segment(name)),
                Some(offsets),
            )
            .await?
            .ok_or_else(|| RestError::Status {
                status: 404,
                message: format!("no connector {name}"),
            })?;
        Ok(v.get("message")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string())
    }

    /// `GET /connectors?expand=status`: every connector's status.
    pub async fn all_statuses(&self) -> Result<Vec<ConnectorStatus>, RestError> {
        let v = self
            .call(Method::GET, "/connectors?expand=status", None)
            .await?
            .unwrap_or_default();
        let mut out = Vec::new();
        if let Some(m) = v.as_object() {
            for (name, entry) in m {
                if let Some(s) = entry.get("status") {
                    let mut st: ConnectorStatus = Self::parse(s.clone())?;
                    if st.name.is_empty() {
                        st.name = name.clone();
                    }
                    out.push(st);
                }
            }
        }
        Ok(out)
    }

    /// `GET /health` (KIP-1017, Kafka 3.9+): whether this worker has joined the group and
    /// its herder is serving.
    pub async fn healthy(&self) -> Result<bool, RestError> {
        match self.call_once(Method::GET, "/health", None).await {
            Ok(Some(v)) => Ok(v.get("status").and_then(Value::as_str) == Some("healthy")),
            Ok(None) => Ok(false),
            Err(RestError::Status { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// `PUT /connector-plugins/{class}/config/validate`.
    pub async fn validate(
        &self,
        class: &str,
        config: &BTreeMap<String, String>,
    ) -> Result<Validation, RestError> {
        let body = serde_json::to_value(config).map_err(|e| RestError::Body(e.to_string()))?;
        let v = self
            .call(
                Method::PUT,
                &format!("/connector-plugins/{}/config/validate", segment(class)),
                Some(&body),
            )
            .await?
            .ok_or_else(|| RestError::Status {
                status: 404,
                message: format!("no connector plugin {class}"),
            })?;
        Ok(validation_errors(&v))
    }
}

/// Makes one planned call for connector `name` whose desired config is `desired`.
pub async fn run_call(
    rest: &ConnectRest,
    name: &str,
    desired: &BTreeMap<String, String>,
    call: &super::plan::Call,
) -> Result<(), RestError> {
    use super::plan::Call;
    match call {
        Call::PutConfig => rest.put_config(name, desired).await,
        Call::Pause => rest.set_state(name, "pause").await,
        Call::Resume => rest.set_state(name, "resume").await,
        Call::Stop => rest.set_state(name, "stop").await,
        Call::Restart { only_failed } => rest.restart(name, *only_failed).await,
        Call::RestartTask(n) => rest.restart_task(name, *n).await,
        Call::ResetOffsets => rest.reset_offsets(name).await,
        // They need a ConfigMap: the controller makes them (`reconcile.rs`).
        Call::ListOffsets | Call::AlterOffsets => Err(RestError::Body(format!(
            "{call:?} is made by the controller with its ConfigMap"
        ))),
    }
}

/// The errors of a validate answer: `key: message` for every config value with errors.
pub fn validation_errors(v: &Value) -> Validation {
    let mut errors = Vec::new();
    for c in v
        .get("configs")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let Some(val) = c.get("value") else { continue };
        let name = val.get("name").and_then(Value::as_str).unwrap_or("?");
        for e in val
            .get("errors")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let Some(m) = e.as_str() {
                errors.push(format!("{name}: {m}"));
            }
        }
    }
    Validation { errors }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn validate_answer_reduced_to_errors() {
        let v = json!({"name": "x", "error_count": 1, "groups": [], "configs": [
            {"definition": {}, "value": {"name": "topic", "value": null, "recommended_values": [], "errors": ["Missing required configuration \"topic\" which has no default value."], "visible": true}},
            {"definition": {}, "value": {"name": "file", "value": "/tmp/x", "errors": [], "visible": true}}
        ]});
        assert_eq!(
            validation_errors(&v).errors,
            ["topic: Missing required configuration \"topic\" which has no default value."]
        );
        assert!(validation_errors(&json!({})).errors.is_empty());
    }

    #[test]
    fn status_parses_connects_answer() {
        let s: ConnectorStatus = serde_json::from_value(json!({
            "name": "src", "type": "source",
            "connector": {"state": "RUNNING", "worker_id": "10.0.0.1:8083"},
            "tasks": [{"id": 0, "state": "FAILED", "worker_id": "10.0.0.2:8083", "trace": "boom"}]
        }))
        .expect("parse");
        assert_eq!(s.connector.state, "RUNNING");
        assert_eq!(s.tasks[0].trace.as_deref(), Some("boom"));
        assert_eq!(s.type_.as_deref(), Some("source"));
    }

    #[test]
    fn unknown_class_answer_is_a_refusal() {
        let e = RestError::Status {
            status: 500,
            message: "org.apache.kafka.connect.runtime.rest.errors.BadRequestException: Failed to find any class that implements Connector and which name matches com.example.X".into(),
        };
        assert!(e.is_refusal());
        assert!(RestError::Status {
            status: 400,
            message: "bad".into()
        }
        .is_refusal());
        let busy = RestError::Status {
            status: 500,
            message: "Request cannot be completed because a rebalance is expected".into(),
        };
        assert!(busy.is_rebalancing() && !busy.is_refusal());
        assert!(!RestError::Status {
            status: 500,
            message: "Request timed out".into()
        }
        .is_refusal());
        assert!(!RestError::Unreachable("refused".into()).is_refusal());
    }

    #[test]
    fn segments_are_encoded() {
        assert_eq!(segment("file-source.1"), "file-source.1");
        assert_eq!(segment("a b/c"), "a%20b%2Fc");
    }
}
