//! Request decoding: header prefix, header and body. Pure, no I/O, so it can
//! be fuzzed directly.

use bytes::{Buf, Bytes};
use kafka_protocol::messages::{ApiKey, RequestHeader, RequestKind};
use kafka_protocol::protocol::Decodable;

/// The fixed prefix every request starts with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Prefix {
    /// The raw API key.
    pub api_key: i16,
    /// The API version.
    pub version: i16,
    /// The correlation id.
    pub correlation_id: i32,
}

/// Why a request could not be decoded.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// Fewer than 8 bytes.
    #[error("request of {0} bytes is too short for a header")]
    TooShort(usize),
    /// An API key Kafka does not define.
    #[error("unknown API key {0}")]
    UnknownApi(i16),
    /// The header or body does not parse at this version.
    #[error("malformed {api:?} v{version} request: {message}")]
    Malformed {
        /// The API.
        api: ApiKey,
        /// The version.
        version: i16,
        /// The decoder's complaint.
        message: String,
    },
}

/// Reads the prefix (api key, version, correlation id) of a frame.
pub fn prefix(frame: &[u8]) -> Result<Prefix, DecodeError> {
    if frame.len() < 8 {
        return Err(DecodeError::TooShort(frame.len()));
    }
    let mut b = &frame[..8];
    Ok(Prefix {
        api_key: b.get_i16(),
        version: b.get_i16(),
        correlation_id: b.get_i32(),
    })
}

/// Decodes the header and body of a frame whose API and version were
/// already checked against the served range.
pub fn decode(
    api: ApiKey,
    version: i16,
    frame: Bytes,
) -> Result<(RequestHeader, RequestKind), DecodeError> {
    let mut buf = frame;
    // `{:#}`: the decoder's whole chain of causes, down to the field.
    let malformed = |e: anyhow::Error| DecodeError::Malformed {
        api,
        version,
        message: format!("{e:#}"),
    };
    let header =
        RequestHeader::decode(&mut buf, api.request_header_version(version)).map_err(malformed)?;
    let body = RequestKind::decode(api, &mut buf, version).map_err(malformed)?;
    Ok((header, body))
}

/// Looks up an API key.
pub fn api_key(key: i16) -> Result<ApiKey, DecodeError> {
    ApiKey::try_from(key).map_err(|_| DecodeError::UnknownApi(key))
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BytesMut;
    use kafka_protocol::messages::MetadataRequest;
    use kafka_protocol::protocol::Encodable;

    #[test]
    fn decodes_and_rejects() {
        let mut b = BytesMut::new();
        let h = RequestHeader::default()
            .with_request_api_key(3)
            .with_request_api_version(12)
            .with_correlation_id(7);
        h.encode(&mut b, ApiKey::Metadata.request_header_version(12))
            .expect("header");
        MetadataRequest::default().encode(&mut b, 12).expect("body");
        let frame = b.freeze();
        let p = prefix(&frame).expect("prefix");
        assert_eq!((p.api_key, p.version, p.correlation_id), (3, 12, 7));
        let (h2, _) = decode(ApiKey::Metadata, 12, frame.clone()).expect("decode");
        assert_eq!(h2.correlation_id, 7);
        assert!(decode(ApiKey::Metadata, 12, frame.slice(..frame.len() - 2)).is_err());
        assert!(matches!(prefix(&[0, 1]), Err(DecodeError::TooShort(2))));
        assert!(matches!(api_key(-5), Err(DecodeError::UnknownApi(-5))));
    }
}
