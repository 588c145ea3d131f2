//! Listeners, connections and request dispatch.

mod connection;
mod dispatch;
pub mod handlers;

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
        let accepted = tokio::select! {
            r = listener.accept() => r,
            _ = shutdown.changed() => return,
        };
        match accepted {
            Ok((stream, peer)) => {
                let _ = stream.set_nodelay(true);
                debug!(%peer, "accepted connection");
                let st = state.clone();
                st.open_connections.fetch_add(1, Ordering::AcqRel);
                tokio::spawn(async move {
                    connection::serve(st.clone(), stream, peer).await;
                    st.open_connections.fetch_sub(1, Ordering::AcqRel);
                });
            }
            Err(e) => {
                warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
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
