//! One client connection: read a frame, dispatch it, write the response,
//! in order. Kafka processes a connection's requests one at a time, so
//! responses always come back in request order.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::{BufMut, BytesMut};
use kafka_protocol::messages::{ApiKey, ResponseHeader};
use kafka_protocol::protocol::Encodable;
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader, BufWriter};
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::TcpStream;
use tracing::{debug, error, warn};

use super::dispatch::{self, Request, Surface};
use super::file_region::{self, FileRegions, Piece, RegionSender};
use crate::broker::BrokerState;
use crate::log::ReadSlice;
use crate::protocol::request;

/// Why a connection is closed instead of answered, as Kafka closes it.
#[derive(Debug, thiserror::Error)]
enum Close {
    #[error("peer closed")]
    Eof,
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Invalid(String),
}

pub(super) async fn serve(
    state: Arc<BrokerState>,
    stream: TcpStream,
    peer: SocketAddr,
    surface: Surface,
) {
    let max = state
        .config
        .get_i64("socket.request.max.bytes", 104_857_600);
    let (r, w) = stream.into_split();
    let mut reader = BufReader::with_capacity(64 * 1024, r);
    let mut writer = BufWriter::with_capacity(64 * 1024, w);
    let mut sender = RegionSender::default();
    let mut shutdown = state.shutdown.clone();
    loop {
        let frame = tokio::select! {
            f = read_frame(&state, &mut reader, max) => f,
            _ = shutdown.changed() => break,
        };
        // The frame's share of the request-memory budget is held until its
        // response is written.
        let result = match frame {
            Ok((frame, _budget)) => {
                handle_frame(&state, frame, &mut writer, &mut sender, peer, surface).await
            }
            Err(e) => Err(e),
        };
        match result {
            Ok(()) => {}
            Err(Close::Eof) => break,
            Err(Close::Io(e)) => {
                debug!(%peer, error = %e, "connection I/O error");
                break;
            }
            Err(Close::Invalid(why)) => {
                warn!(%peer, "closing connection: {why}");
                break;
            }
        }
        if *state.shutdown.borrow() {
            break;
        }
    }
    let _ = writer.shutdown().await;
}

async fn read_frame<R: tokio::io::AsyncRead + Unpin>(
    state: &BrokerState,
    r: &mut R,
    max: i64,
) -> Result<(BytesMut, Option<tokio::sync::OwnedSemaphorePermit>), Close> {
    let size = match r.read_i32().await {
        Ok(s) => s,
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Err(Close::Eof),
        Err(e) => return Err(e.into()),
    };
    if size < 0 || i64::from(size) > max {
        return Err(Close::Invalid(format!(
            "request size {size} is outside [0, socket.request.max.bytes={max}]"
        )));
    }
    // Reserve the bytes before allocating them (Kafka's memory pool for
    // queued.max.request.bytes); wait while other requests hold the budget.
    let budget = state.limits.reserve(size as usize).await;
    let mut buf = BytesMut::zeroed(size as usize);
    r.read_exact(&mut buf).await?;
    Ok((buf, budget))
}

async fn handle_frame(
    state: &Arc<BrokerState>,
    frame: BytesMut,
    w: &mut Writer,
    sender: &mut RegionSender,
    peer: SocketAddr,
    surface: Surface,
) -> Result<(), Close> {
    let buf = frame.freeze();
    let p = request::prefix(&buf).map_err(|e| Close::Invalid(e.to_string()))?;
    let (version, correlation_id) = (p.version, p.correlation_id);
    let api_key = request::api_key(p.api_key).map_err(|e| Close::Invalid(e.to_string()))?;
    let Some(spec) = dispatch::find_in(surface, api_key) else {
        return Err(Close::Invalid(format!("unsupported API {api_key:?}")));
    };
    if version < spec.min || version > spec.max {
        if api_key == ApiKey::ApiVersions {
            // KIP-511: answer at v0 with UNSUPPORTED_VERSION and our ranges.
            let resp = dispatch::unsupported_api_versions(surface);
            return write_response(
                w,
                sender,
                correlation_id,
                ApiKey::ApiVersions,
                0,
                &resp,
                &[],
            )
            .await;
        }
        return Err(Close::Invalid(format!(
            "{api_key:?} v{version} is not supported (supported {}..={})",
            spec.min, spec.max
        )));
    }
    if version < spec.decode_min {
        return Err(Close::Invalid(format!(
            "{api_key:?} v{version} is too old (the oldest accepted is v{})",
            spec.decode_min
        )));
    }
    let (header, body) = match request::decode(api_key, version, buf) {
        Ok(x) => x,
        Err(e) => {
            if api_key == ApiKey::ApiVersions {
                // Kafka still answers a malformed ApiVersions with INVALID_REQUEST.
                let resp = dispatch::invalid_api_versions();
                return write_response(w, sender, correlation_id, api_key, version, &resp, &[])
                    .await;
            }
            return Err(Close::Invalid(e.to_string()));
        }
    };
    let regions = FileRegions::default();
    let req = Request {
        api_key,
        version,
        header,
        body,
        peer,
        regions: regions.clone(),
    };
    match (spec.handler)(state.clone(), req).await {
        Ok(Some(resp)) => {
            let regions = regions.take();
            write_response(w, sender, correlation_id, api_key, version, &resp, &regions).await
        }
        Ok(None) => Ok(()),
        Err(e) => {
            error!(api = ?api_key, version, error = %e, "request handler failed");
            Err(Close::Invalid(format!("{api_key:?} handler failed: {e}")))
        }
    }
}

type Writer = BufWriter<OwnedWriteHalf>;

async fn write_response(
    w: &mut Writer,
    sender: &mut RegionSender,
    correlation_id: i32,
    api_key: ApiKey,
    version: i16,
    resp: &kafka_protocol::messages::ResponseKind,
    regions: &[ReadSlice],
) -> Result<(), Close> {
    let mut out = BytesMut::with_capacity(256);
    out.put_i32(0);
    let header = ResponseHeader::default().with_correlation_id(correlation_id);
    let hv = if api_key == ApiKey::ApiVersions {
        0
    } else {
        api_key.response_header_version(version)
    };
    header
        .encode(&mut out, hv)
        .map_err(|e| Close::Invalid(format!("cannot encode response header: {e}")))?;
    // Large `bytes` fields (a fetch response's records) are not copied into
    // the response buffer: they are written from their own memory between
    // the encoded pieces, or, for placeholders, sent from their segment
    // files (`file_region.rs`).
    let (encoded, shared) = kafka_protocol::protocol::buf::encode_sharing(SHARE_FROM, || {
        resp.encode(&mut out, version)
    });
    encoded.map_err(|e| {
        Close::Invalid(format!(
            "cannot encode {api_key:?} v{version} response: {e}"
        ))
    })?;
    let size = out.len() - 4 + shared.iter().map(|(_, b)| b.len()).sum::<usize>();
    let len = i32::try_from(size).map_err(|_| {
        Close::Invalid(format!("{api_key:?} response of {size} bytes is too large"))
    })?;
    out[0..4].copy_from_slice(&len.to_be_bytes());
    if !regions.is_empty() || shared.iter().any(|(_, b)| file_region::is_placeholder(b)) {
        // Records sent from their files: the whole frame is written by
        // `RegionSender`, on the blocking pool.
        let pieces = pieces(out.freeze(), shared, regions)
            .map_err(|why| Close::Invalid(format!("{api_key:?} response: {why}")))?;
        w.flush().await?;
        if let Err(e) = sender.send(w.get_ref().as_ref(), pieces).await {
            error!(error = %e, "sending records from a segment file failed");
            return Err(e.into());
        }
        return Ok(());
    }
    let mut at = 0;
    for (offset, bytes) in &shared {
        w.write_all(&out[at..*offset]).await?;
        w.write_all(bytes).await?;
        at = *offset;
    }
    w.write_all(&out[at..]).await?;
    w.flush().await?;
    Ok(())
}

/// The frame in order: the encoded buffer cut where the shared `bytes`
/// fields go, each placeholder replaced by its file region (in order).
fn pieces(
    out: bytes::Bytes,
    shared: Vec<(usize, bytes::Bytes)>,
    regions: &[ReadSlice],
) -> Result<Vec<Piece>, String> {
    let mut regions = regions.iter();
    let mut pieces = Vec::with_capacity(shared.len() * 2 + 1);
    let mut at = 0;
    for (offset, bytes) in shared {
        pieces.push(Piece::Bytes(out.slice(at..offset)));
        if file_region::is_placeholder(&bytes) {
            match regions.next() {
                Some(r) if r.len == bytes.len() => pieces.push(Piece::Region(r.clone())),
                _ => return Err("a record placeholder does not match its file region".into()),
            }
        } else {
            pieces.push(Piece::Bytes(bytes));
        }
        at = offset;
    }
    if regions.next().is_some() {
        return Err("a file region has no record placeholder".into());
    }
    pieces.push(Piece::Bytes(out.slice(at..)));
    Ok(pieces)
}

/// `bytes` fields from this size on are written from their own buffers
/// rather than copied into the encoded response (the size from which fetch
/// records are sent from their files, so no placeholder is ever copied).
const SHARE_FROM: usize = file_region::MIN_REGION;
