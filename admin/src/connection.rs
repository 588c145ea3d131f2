//! One TCP connection to one broker: framing, headers, correlation ids and
//! ApiVersions negotiation.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, ApiVersionsResponse, RequestHeader, ResponseHeader,
};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, Request, StrBytes};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tracing::{debug, warn};

use crate::config::AdminConfig;
use crate::error::AdminError;
use crate::versions::ApiVersionTable;

/// The largest response frame accepted (Kafka's default `socket.request.max.bytes`).
const MAX_RESPONSE_BYTES: usize = 100 * 1024 * 1024;

/// The ApiVersions version tried first.
const API_VERSIONS_FIRST: i16 = 3;

/// Kafka's UNSUPPORTED_VERSION error code.
const UNSUPPORTED_VERSION: i16 = 35;

/// A connection to one broker, after ApiVersions.
///
/// Requests are strictly sequential: one is written, its response read,
/// then the next. A connection that failed in any way mid-request must be
/// dropped, since the stream may be out of step.
#[derive(Debug)]
pub(crate) struct Connection {
    stream: TcpStream,
    peer: SocketAddr,
    client_id: StrBytes,
    request_timeout: Duration,
    next_correlation_id: i32,
    versions: ApiVersionTable,
}

impl Connection {
    /// Connects to `addr` (`host:port`), trying each address it resolves to,
    /// and negotiates API versions.
    pub(crate) async fn open(addr: &str, config: &AdminConfig) -> Result<Self, AdminError> {
        let resolved: Vec<SocketAddr> =
            tokio::time::timeout(config.connect_timeout, tokio::net::lookup_host(addr))
                .await
                .map_err(|_| AdminError::Timeout)??
                .collect();
        let mut last_err = AdminError::Io(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            format!("{addr} resolved to no address"),
        ));
        for peer in resolved {
            match tokio::time::timeout(config.connect_timeout, TcpStream::connect(peer)).await {
                Ok(Ok(stream)) => {
                    // Admin requests are small request/response pairs: no Nagle delay.
                    stream.set_nodelay(true)?;
                    let mut conn = Connection {
                        stream,
                        peer,
                        client_id: StrBytes::from_string(config.client_id.clone()),
                        request_timeout: config.request_timeout,
                        next_correlation_id: 0,
                        versions: ApiVersionTable::default(),
                    };
                    conn.negotiate_versions().await?;
                    return Ok(conn);
                }
                Ok(Err(e)) => {
                    debug!(%peer, error = %e, "connect failed");
                    last_err = AdminError::Io(e);
                }
                Err(_) => {
                    debug!(%peer, "connect timed out");
                    last_err = AdminError::Timeout;
                }
            }
        }
        Err(last_err)
    }

    /// The address this connection is connected to.
    pub(crate) fn peer(&self) -> SocketAddr {
        self.peer
    }

    /// The versions the broker advertised.
    pub(crate) fn versions(&self) -> &ApiVersionTable {
        &self.versions
    }

    /// Sends ApiVersions v3; on UNSUPPORTED_VERSION retries with the highest
    /// ApiVersions version the broker listed (or v0), as the Java client does.
    async fn negotiate_versions(&mut self) -> Result<(), AdminError> {
        let mut version = API_VERSIONS_FIRST;
        for _ in 0..2 {
            let request = if version >= 3 {
                ApiVersionsRequest::default()
                    .with_client_software_name(StrBytes::from_static_str("runnel-admin"))
                    .with_client_software_version(StrBytes::from_static_str(env!(
                        "CARGO_PKG_VERSION"
                    )))
            } else {
                ApiVersionsRequest::default()
            };
            let body = self.round_trip(&request, version).await?;
            let response = decode_api_versions(body, version)?;
            if response.error_code == UNSUPPORTED_VERSION && version > 0 {
                let broker_max = response
                    .api_keys
                    .iter()
                    .find(|k| k.api_key == ApiKey::ApiVersions as i16)
                    .map(|k| k.max_version)
                    .unwrap_or(0);
                let next = broker_max.min(version - 1).max(0);
                debug!(peer = %self.peer, version, next, "ApiVersions version unsupported; retrying");
                version = next;
                continue;
            }
            if response.error_code != 0 {
                return Err(AdminError::kafka("ApiVersions", response.error_code, None));
            }
            self.versions = ApiVersionTable::new(
                response
                    .api_keys
                    .iter()
                    .map(|k| (k.api_key, k.min_version, k.max_version)),
            );
            debug!(peer = %self.peer, version, apis = response.api_keys.len(), "negotiated API versions");
            return Ok(());
        }
        Err(AdminError::Protocol(
            "ApiVersions: the broker rejected every version tried".into(),
        ))
    }

    /// Sends `request` as `version` and decodes the response.
    pub(crate) async fn send<R: Request>(
        &mut self,
        request: &R,
        version: i16,
    ) -> Result<R::Response, AdminError> {
        let mut body = self.round_trip(request, version).await?;
        let response = R::Response::decode(&mut body, version).map_err(|e| {
            AdminError::Protocol(format!(
                "decoding {} v{version} response: {e}",
                api_name(R::KEY)
            ))
        })?;
        if body.has_remaining() {
            warn!(
                api = api_name(R::KEY),
                version,
                trailing = body.remaining(),
                "response has trailing bytes"
            );
        }
        Ok(response)
    }

    /// Writes one request frame and reads its response frame, within the
    /// request timeout. Returns the response body after its header.
    async fn round_trip<R: Request>(
        &mut self,
        request: &R,
        version: i16,
    ) -> Result<Bytes, AdminError> {
        let correlation_id = self.next_correlation_id;
        self.next_correlation_id = self.next_correlation_id.wrapping_add(1);
        let frame = encode_request(request, version, correlation_id, &self.client_id)?;
        let timeout = self.request_timeout;
        let mut frame_in = tokio::time::timeout(timeout, async {
            self.stream.write_all(&frame).await?;
            read_frame(&mut self.stream).await
        })
        .await
        .map_err(|_| AdminError::Timeout)??;

        let header_version = R::Response::header_version(version);
        let header = ResponseHeader::decode(&mut frame_in, header_version).map_err(|e| {
            AdminError::Protocol(format!(
                "decoding {} v{version} response header: {e}",
                api_name(R::KEY)
            ))
        })?;
        if header.correlation_id != correlation_id {
            return Err(AdminError::Protocol(format!(
                "{} v{version}: response correlation id {} does not match request {}",
                api_name(R::KEY),
                header.correlation_id,
                correlation_id
            )));
        }
        Ok(frame_in)
    }
}

/// Encodes the size-prefixed frame of one request.
fn encode_request<R: Request>(
    request: &R,
    version: i16,
    correlation_id: i32,
    client_id: &StrBytes,
) -> Result<Bytes, AdminError> {
    let header = RequestHeader::default()
        .with_request_api_key(R::KEY)
        .with_request_api_version(version)
        .with_correlation_id(correlation_id)
        .with_client_id(Some(client_id.clone()));
    let mut buf = BytesMut::with_capacity(256);
    buf.put_i32(0); // size, patched below
    header
        .encode(&mut buf, R::header_version(version))
        .and_then(|()| request.encode(&mut buf, version))
        .map_err(|e| {
            AdminError::Protocol(format!(
                "encoding {} v{version} request: {e}",
                api_name(R::KEY)
            ))
        })?;
    let size = i32::try_from(buf.len() - 4)
        .map_err(|_| AdminError::InvalidArgument("request larger than 2 GiB".into()))?;
    buf[..4].copy_from_slice(&size.to_be_bytes());
    Ok(buf.freeze())
}

/// Reads one size-prefixed frame.
async fn read_frame(stream: &mut TcpStream) -> Result<Bytes, AdminError> {
    let size = stream.read_i32().await?;
    let size = usize::try_from(size)
        .ok()
        .filter(|&s| s <= MAX_RESPONSE_BYTES)
        .ok_or_else(|| AdminError::Protocol(format!("invalid response frame size {size}")))?;
    let mut buf = vec![0u8; size];
    stream.read_exact(&mut buf).await?;
    Ok(Bytes::from(buf))
}

/// Decodes an ApiVersions response. A broker that does not support the
/// request's version answers with a v0 body carrying UNSUPPORTED_VERSION, so
/// the error code (first in every version) decides which version to decode;
/// a body that does not decode as `version` is retried as v0, as the Java
/// client does.
fn decode_api_versions(body: Bytes, version: i16) -> Result<ApiVersionsResponse, AdminError> {
    let error_code = body
        .get(..2)
        .map(|b| i16::from_be_bytes([b[0], b[1]]))
        .ok_or_else(|| AdminError::Protocol("empty ApiVersions response".into()))?;
    let as_v0 = |mut b: Bytes| {
        ApiVersionsResponse::decode(&mut b, 0)
            .map_err(|e| AdminError::Protocol(format!("decoding ApiVersions v0 response: {e}")))
    };
    if error_code == UNSUPPORTED_VERSION || version == 0 {
        return as_v0(body);
    }
    let mut b = body.clone();
    match ApiVersionsResponse::decode(&mut b, version) {
        Ok(r) => Ok(r),
        Err(e) => {
            debug!(version, error = %e, "ApiVersions response does not decode; trying v0");
            as_v0(body)
        }
    }
}

/// The API's name as Kafka spells it, e.g. `"CreateTopics"`.
pub(crate) fn api_name(key: i16) -> &'static str {
    match ApiKey::try_from(key) {
        Ok(ApiKey::ApiVersions) => "ApiVersions",
        Ok(ApiKey::Metadata) => "Metadata",
        Ok(ApiKey::DescribeCluster) => "DescribeCluster",
        Ok(ApiKey::CreateTopics) => "CreateTopics",
        Ok(ApiKey::CreatePartitions) => "CreatePartitions",
        Ok(ApiKey::DeleteTopics) => "DeleteTopics",
        Ok(ApiKey::DescribeConfigs) => "DescribeConfigs",
        Ok(ApiKey::IncrementalAlterConfigs) => "IncrementalAlterConfigs",
        Ok(ApiKey::AlterPartitionReassignments) => "AlterPartitionReassignments",
        Ok(ApiKey::ListPartitionReassignments) => "ListPartitionReassignments",
        _ => "other",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::MetadataRequest;

    #[test]
    fn flexible_request_header_is_v2_with_tagged_fields() {
        // Metadata v9+ is flexible: request header v2 (client id as a
        // non-compact nullable string, then an empty tagged-field section).
        let frame = encode_request(
            &MetadataRequest::default().with_topics(None),
            12,
            7,
            &StrBytes::from_static_str("ab"),
        )
        .expect("encode");
        let expected: &[u8] = &[
            0, 0, 0, 17, // size
            0, 3, // api key Metadata
            0, 12, // version
            0, 0, 0, 7, // correlation id
            0, 2, b'a', b'b', // client id
            0,    // header tagged fields
            0,    // topics: null compact array
            1,    // allow_auto_topic_creation
            0,    // include_topic_authorized_operations
            0,    // body tagged fields
        ];
        assert_eq!(&frame[..], expected);
    }

    #[test]
    fn non_flexible_request_header_is_v1() {
        let frame = encode_request(
            &MetadataRequest::default().with_topics(None),
            4,
            1,
            &StrBytes::from_static_str("x"),
        )
        .expect("encode");
        let expected: &[u8] = &[
            0, 0, 0, 16, 0, 3, 0, 4, 0, 0, 0, 1, 0, 1, b'x', // header v1
            0xff, 0xff, 0xff, 0xff, // topics: null array
            1,    // allow_auto_topic_creation
        ];
        assert_eq!(&frame[..], expected);
    }

    #[test]
    fn api_versions_unsupported_falls_back_to_v0_body() {
        // error 35, one api key (ApiVersions 0..2), as a v0 body
        let body = Bytes::from_static(&[0, 35, 0, 0, 0, 1, 0, 18, 0, 0, 0, 2]);
        let r = decode_api_versions(body, 3).expect("decode");
        assert_eq!(r.error_code, 35);
        assert_eq!(r.api_keys.len(), 1);
        assert_eq!(r.api_keys[0].max_version, 2);
    }

    #[test]
    fn truncated_api_versions_is_a_protocol_error() {
        assert!(matches!(
            decode_api_versions(Bytes::from_static(&[0]), 3),
            Err(AdminError::Protocol(_))
        ));
        assert!(matches!(
            decode_api_versions(Bytes::from_static(&[0, 0, 5]), 3),
            Err(AdminError::Protocol(_))
        ));
    }
}
