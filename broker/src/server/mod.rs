//! Listeners, connections and request dispatch.

mod connection;
mod dispatch;
pub mod fetch_sessions;
pub(crate) mod file_region;
pub mod handlers;
pub mod health;
mod limits;

pub use limits::{broker_i64, broker_value, Limits, DEFAULT_REQUEST_MEMORY_BYTES};

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tracing::{debug, warn};

use crate::broker::BrokerState;
pub use dispatch::{api_table, ApiSpec, Request};

/// Accepts connections until shutdown.
pub async fn accept_loop(state: Arc<BrokerState>, listener: TcpListener) {
    let mut shutdown = state.shutdown.clone();
    loop {
        // max.connections: like Kafka's acceptor, stop accepting (new
        // connections wait in the backlog) until a slot frees up.
        let max_total = broker_i64(&state, "max.connections", i64::from(i32::MAX));
        if state.open_connections.load(Ordering::Acquire) as i64 >= max_total {
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(20)) => continue,
                _ = shutdown.changed() => return,
            }
        }
        let accepted = tokio::select! {
            r = listener.accept() => r,
            _ = shutdown.changed() => return,
        };
        match accepted {
            Ok((stream, peer)) => {
                let per_ip = per_ip_limit(&state, peer.ip());
                let slot = match state.limits.admit(peer.ip(), max_total, per_ip) {
                    Ok(s) => s,
                    Err(e) => {
                        // Kafka closes a connection over max.connections.per.ip at once.
                        warn!(%peer, "rejected connection: {e}");
                        drop(stream);
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                debug!(%peer, "accepted connection");
                let st = state.clone();
                st.open_connections.fetch_add(1, Ordering::AcqRel);
                tokio::spawn(async move {
                    connection::serve(st.clone(), stream, peer, dispatch::Surface::Broker).await;
                    st.open_connections.fetch_sub(1, Ordering::AcqRel);
                    drop(slot);
                });
            }
            Err(e) => {
                warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// Serves one Kafka-protocol connection that arrived on the controller
/// listener (the quorum transport hands it over): only the controller APIs
/// (`CONTROLLER_APIS` in `dispatch.rs`).
pub async fn serve_controller_connection(
    state: Arc<BrokerState>,
    stream: tokio::net::TcpStream,
    peer: std::net::SocketAddr,
) {
    let _ = stream.set_nodelay(true);
    debug!(%peer, "accepted a Kafka connection on the controller listener");
    connection::serve(state, stream, peer, dispatch::Surface::Controller).await;
}

/// Waits until every connection has finished its in-flight request and
/// closed, or `timeout` passes.
pub async fn wait_for_connections(state: &BrokerState, timeout: Duration) {
    let deadline = tokio::time::Instant::now() + timeout;
    while state.open_connections.load(Ordering::Acquire) > 0
        && tokio::time::Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// `max.connections.per.ip`, or this address's entry in
/// `max.connections.per.ip.overrides` (`host:count,...`, as Kafka parses it).
fn per_ip_limit(state: &BrokerState, ip: std::net::IpAddr) -> i64 {
    let overrides = broker_value(state, "max.connections.per.ip.overrides").unwrap_or_default();
    for entry in overrides
        .split(',')
        .map(str::trim)
        .filter(|e| !e.is_empty())
    {
        if let Some((host, n)) = entry.rsplit_once(':') {
            let matches = host
                .trim()
                .trim_matches(|c| c == '[' || c == ']')
                .parse::<std::net::IpAddr>()
                .is_ok_and(|h| h == ip);
            if let (true, Ok(n)) = (matches, n.trim().parse::<i64>()) {
                return n;
            }
        }
    }
    broker_i64(state, "max.connections.per.ip", i64::from(i32::MAX))
}
