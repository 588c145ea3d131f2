//! One request/response round trip from this broker to another on a fresh
//! connection, as the transaction paths send them (WriteTxnMarkers to
//! partition leaders, AddPartitionsToTxn from a leader to a coordinator).

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, StrBytes};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tracing::debug;

/// Largest response accepted.
const MAX_RESPONSE: usize = 16 * 1024 * 1024;

/// Sends `req` as `key` at `version` to `addr` and reads its response.
pub async fn call<Req, Resp>(
    addr: &str,
    key: ApiKey,
    version: i16,
    client_id: &'static str,
    req: &Req,
) -> Result<Resp, String>
where
    Req: Encodable + HeaderVersion,
    Resp: Decodable + HeaderVersion,
{
    let mut stream = TcpStream::connect(addr)
        .await
        .map_err(|e| format!("connect {addr}: {e}"))?;
    let _ = stream.set_nodelay(true);
    let header = RequestHeader::default()
        .with_request_api_key(key as i16)
        .with_request_api_version(version)
        .with_correlation_id(1)
        .with_client_id(Some(StrBytes::from_static_str(client_id)));
    let mut body = BytesMut::new();
    header
        .encode(&mut body, Req::header_version(version))
        .map_err(|e| format!("encode header: {e}"))?;
    req.encode(&mut body, version)
        .map_err(|e| format!("encode {key:?}: {e}"))?;
    let mut frame = BytesMut::with_capacity(body.len() + 4);
    frame.put_i32(body.len() as i32);
    frame.extend_from_slice(&body);
    stream.write_all(&frame).await.map_err(|e| e.to_string())?;
    let len = stream.read_i32().await.map_err(|e| e.to_string())?;
    let len = usize::try_from(len)
        .ok()
        .filter(|l| *l <= MAX_RESPONSE)
        .ok_or_else(|| format!("bad response size {len}"))?;
    let mut buf = vec![0u8; len];
    stream
        .read_exact(&mut buf)
        .await
        .map_err(|e| e.to_string())?;
    let mut b = Bytes::from(buf);
    let h = ResponseHeader::decode(&mut b, Resp::header_version(version))
        .map_err(|e| format!("decode header: {e}"))?;
    if h.correlation_id != 1 {
        return Err(format!("correlation id {} is not 1", h.correlation_id));
    }
    let resp = Resp::decode(&mut b, version).map_err(|e| format!("decode {key:?}: {e}"))?;
    if b.has_remaining() {
        debug!(left = b.remaining(), "{key:?} response has trailing bytes");
    }
    Ok(resp)
}
