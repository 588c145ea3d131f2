//! The health endpoint (`runnel-broker --health-port P`): plain HTTP for the
//! kubelet's probes, so that a pod is Ready only when it can serve, not when a
//! port is bound (the kernel completes TCP handshakes into the backlog as soon
//! as a listener exists, long before a broker is registered).
//!
//! - `GET /ready`: 200 when this node serves: a broker registered, unfenced,
//!   caught up with the metadata it was unfenced at, and not shutting down (as
//!   Kafka's broker state RUNNING); a controller-only node when its metadata
//!   quorum has a leader. Otherwise 503 with the reason.
//! - `GET /live`: 200 while the process answers.
//!
//! A request is read up to [`MAX_REQUEST`] bytes within [`READ_TIMEOUT`]; the
//! answer closes the connection. No length read off the wire sizes anything.

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tracing::{debug, warn};

use crate::broker::BrokerState;

/// The most of a request read (the request line and headers of a probe).
const MAX_REQUEST: usize = 2048;
/// How long a client may take to send its request.
const READ_TIMEOUT: Duration = Duration::from_secs(2);

/// What a path answers: status code and body.
pub fn answer(path: &str, ready: Result<(), String>) -> (u16, String) {
    match path {
        "/ready" => match ready {
            Ok(()) => (200, "ready\n".into()),
            Err(why) => (503, format!("not ready: {why}\n")),
        },
        "/live" | "/healthz" => (200, "live\n".into()),
        _ => (404, "not found: GET /ready or /live\n".into()),
    }
}

/// The path of a request's first line (`GET /ready HTTP/1.1`), if it is a GET.
pub fn request_path(head: &[u8]) -> Option<&str> {
    let line = head.split(|b| *b == b'\n').next()?;
    let line = std::str::from_utf8(line).ok()?.trim_end_matches('\r');
    let mut parts = line.split(' ');
    match (parts.next(), parts.next()) {
        (Some("GET"), Some(path)) => Some(path.split('?').next().unwrap_or(path)),
        _ => None,
    }
}

/// Serves probes on `listener` until shutdown.
pub async fn serve(state: Arc<BrokerState>, listener: TcpListener) {
    let mut shutdown = state.shutdown.clone();
    loop {
        if *shutdown.borrow() {
            return;
        }
        tokio::select! {
            r = shutdown.changed() => if r.is_err() { return },
            r = listener.accept() => match r {
                Ok((stream, _)) => {
                    let st = state.clone();
                    tokio::spawn(async move {
                        if let Err(e) = one(&st, stream).await {
                            debug!(error = %e, "health probe connection");
                        }
                    });
                }
                Err(e) => {
                    warn!(error = %e, "health endpoint: accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    }
}

async fn one(state: &BrokerState, mut stream: TcpStream) -> std::io::Result<()> {
    let mut buf = vec![0u8; MAX_REQUEST];
    let mut len = 0;
    let read = async {
        while len < buf.len() {
            let n = stream.read(&mut buf[len..]).await?;
            if n == 0 {
                break;
            }
            len += n;
            // Only the request line is needed.
            if buf[..len].contains(&b'\n') {
                break;
            }
        }
        Ok::<_, std::io::Error>(())
    };
    match tokio::time::timeout(READ_TIMEOUT, read).await {
        Ok(r) => r?,
        Err(_) => return Ok(()),
    }
    let (code, body) = match request_path(&buf[..len]) {
        Some(path) => answer(path, state.readiness()),
        None => (405, "only GET\n".to_string()),
    };
    let reason = match code {
        200 => "OK",
        404 => "Not Found",
        405 => "Method Not Allowed",
        _ => "Service Unavailable",
    };
    let response = format!(
        "HTTP/1.1 {code} {reason}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(response.as_bytes()).await?;
    stream.shutdown().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_and_answers() {
        assert_eq!(
            request_path(b"GET /ready HTTP/1.1\r\nHost: x\r\n\r\n"),
            Some("/ready")
        );
        assert_eq!(request_path(b"GET /ready?x=1 HTTP/1.1\r\n"), Some("/ready"));
        assert_eq!(request_path(b"POST /ready HTTP/1.1\r\n"), None);
        assert_eq!(request_path(b"\xff\xfe"), None);
        assert_eq!(answer("/ready", Ok(())).0, 200);
        let (code, body) = answer("/ready", Err("fenced".into()));
        assert_eq!((code, body.as_str()), (503, "not ready: fenced\n"));
        assert_eq!(answer("/live", Err("fenced".into())).0, 200);
        assert_eq!(answer("/x", Ok(())).0, 404);
    }
}
