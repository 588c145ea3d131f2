//! Connection and request-memory limits: the broker-wide and per-IP
//! connection caps (`max.connections`, `max.connections.per.ip`) and the
//! budget for bytes held by requests being read or served
//! (`queued.max.request.bytes`). Every client connection passes through
//! here before it is served and before each request frame is allocated.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tracing::warn;

use crate::broker::BrokerState;
use crate::config::TopicConfigResolver;

/// The request-memory budget when `queued.max.request.bytes` is `-1`
/// (Kafka's default, unbounded there). Runnel always bounds it, so many
/// connections announcing large frames cannot exhaust memory.
pub const DEFAULT_REQUEST_MEMORY_BYTES: usize = 512 * 1024 * 1024;

/// Shared limit state.
pub struct Limits {
    per_ip: Mutex<HashMap<IpAddr, usize>>,
    total: Mutex<usize>,
    memory: Arc<Semaphore>,
    memory_budget: usize,
}

/// A connection slot; frees itself on drop.
pub struct ConnectionSlot {
    limits: Arc<Limits>,
    ip: IpAddr,
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        let mut m = self.limits.per_ip.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = m.get_mut(&self.ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                m.remove(&self.ip);
            }
        }
        drop(m);
        let mut t = self.limits.total.lock().unwrap_or_else(|e| e.into_inner());
        *t = t.saturating_sub(1);
    }
}

/// Why a connection was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// `max.connections` reached.
    #[error("too many connections: max.connections={0} reached")]
    Total(i64),
    /// `max.connections.per.ip` reached for this address.
    #[error("too many connections from {ip}: max.connections.per.ip={limit} reached")]
    PerIp {
        /// The client's address.
        ip: IpAddr,
        /// The limit.
        limit: i64,
    },
}

/// The effective value of a broker config as DescribeConfigs resolves it:
/// this broker's dynamic override, the cluster-wide dynamic default,
/// `server.properties`, then Kafka's default.
pub fn broker_value(state: &BrokerState, key: &str) -> Option<String> {
    let image = state.image();
    TopicConfigResolver {
        static_props: &state.config.props,
        cluster: &image.cluster_configs,
        node: image.broker_configs.get(&state.node_id),
    }
    .broker_entry(key)
    .and_then(|e| e.value)
}

/// [`broker_value`] as a number, or `fallback`.
pub fn broker_i64(state: &BrokerState, key: &str, fallback: i64) -> i64 {
    broker_value(state, key)
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(fallback)
}

impl Limits {
    /// Limits with a request-memory budget from `queued.max.request.bytes`
    /// (`-1` or anything non-positive: [`DEFAULT_REQUEST_MEMORY_BYTES`]).
    pub fn new(queued_max_request_bytes: i64) -> Arc<Self> {
        let budget = usize::try_from(queued_max_request_bytes)
            .ok()
            .filter(|b| *b > 0)
            .unwrap_or(DEFAULT_REQUEST_MEMORY_BYTES)
            .min(Semaphore::MAX_PERMITS);
        Arc::new(Self {
            per_ip: Mutex::new(HashMap::new()),
            total: Mutex::new(0),
            memory: Arc::new(Semaphore::new(budget)),
            memory_budget: budget,
        })
    }

    /// Takes a connection slot for `ip`, or says why not. The limits are
    /// read per call, so dynamic changes apply to new connections.
    pub fn admit(
        self: &Arc<Self>,
        ip: IpAddr,
        max_total: i64,
        max_per_ip: i64,
    ) -> Result<ConnectionSlot, Refused> {
        let mut t = self.total.lock().unwrap_or_else(|e| e.into_inner());
        if (*t as i64) >= max_total {
            return Err(Refused::Total(max_total));
        }
        let mut m = self.per_ip.lock().unwrap_or_else(|e| e.into_inner());
        let n = m.entry(ip).or_insert(0);
        if (*n as i64) >= max_per_ip {
            if *n == 0 {
                m.remove(&ip);
            }
            return Err(Refused::PerIp {
                ip,
                limit: max_per_ip,
            });
        }
        *n += 1;
        *t += 1;
        Ok(ConnectionSlot {
            limits: self.clone(),
            ip,
        })
    }

    /// Reserves `bytes` of the request-memory budget before a frame of that
    /// size is allocated; waits while other requests hold it (Kafka mutes
    /// the channel the same way). A frame larger than the whole budget
    /// waits for all of it.
    pub async fn reserve(&self, bytes: usize) -> Option<OwnedSemaphorePermit> {
        let want = bytes.clamp(1, self.memory_budget);
        let n = u32::try_from(want).unwrap_or(u32::MAX);
        match self.memory.clone().acquire_many_owned(n).await {
            Ok(p) => Some(p),
            Err(e) => {
                warn!(error = %e, "request memory budget closed");
                None
            }
        }
    }

    /// Bytes of the budget not held by any request now.
    pub fn memory_available(&self) -> usize {
        self.memory.available_permits()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_ip_and_total_caps_are_enforced_and_released() {
        let l = Limits::new(-1);
        let a: IpAddr = "10.0.0.1".parse().expect("ip");
        let b: IpAddr = "10.0.0.2".parse().expect("ip");
        let s1 = l.admit(a, 3, 2).expect("first");
        let _s2 = l.admit(a, 3, 2).expect("second");
        assert_eq!(
            l.admit(a, 3, 2).err(),
            Some(Refused::PerIp { ip: a, limit: 2 })
        );
        let _s3 = l.admit(b, 3, 2).expect("other ip");
        assert_eq!(l.admit(b, 3, 2).err(), Some(Refused::Total(3)));
        drop(s1);
        let _s4 = l.admit(a, 3, 2).expect("slot released");
    }

    #[tokio::test]
    async fn request_memory_is_reserved_and_returned() {
        let l = Limits::new(1000);
        let p = l.reserve(600).await.expect("permit");
        assert_eq!(l.memory_available(), 400);
        // A second large request waits until the first is done.
        let l2 = l.clone();
        let waiter = tokio::spawn(async move { l2.reserve(600).await.map(|_| ()) });
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        assert!(!waiter.is_finished());
        drop(p);
        waiter.await.expect("join").expect("permit after release");
        // Larger than the whole budget: clamped, not refused forever.
        assert!(l.reserve(5000).await.is_some());
    }
}
