//! Replica fetchers: the follower side of replication. One task per leader
//! broker fetches, with Kafka's Fetch API (a replica fetch: `ReplicaState`
//! carries this broker's id and epoch), every partition this broker follows
//! on that leader, appends what comes back with the leader's offsets and
//! epochs, takes the leader's high watermark and log start, and truncates
//! where the leader reports a diverging epoch (KIP-320).
//!
//! Which partitions to follow comes only from the published metadata
//! image: the manager recomputes the sets on every image.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic, ReplicaState};
use kafka_protocol::messages::{
    ApiKey, BrokerId, FetchRequest, FetchResponse, RequestHeader, ResponseHeader,
};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, StrBytes};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tracing::{debug, info, warn};
use uuid::Uuid;

use super::{FetchPosition, Partition};
use crate::broker::BrokerState;

/// The Fetch version replica fetchers speak (15: `ReplicaState`, topic ids,
/// last fetched epoch and diverging epochs).
const FETCH_VERSION: i16 = 15;

/// The largest response a fetcher accepts (with `replica.fetch.response.max.bytes`
/// on top of it as the request's own cap).
const MAX_RESPONSE: usize = 256 * 1024 * 1024;

type Followed = Vec<Arc<Partition>>;

/// Keeps one fetcher task per leader this broker follows partitions of.
pub async fn run(state: Arc<BrokerState>) {
    let mut images = state.subscribe_published();
    let mut shutdown = state.shutdown.clone();
    let mut tasks: HashMap<i32, watch::Sender<Followed>> = HashMap::new();
    loop {
        let mut by_leader: BTreeMap<i32, Followed> = BTreeMap::new();
        for p in state.replicas.all() {
            if let Some(l) = p.following() {
                if l >= 0 && l != state.node_id {
                    by_leader.entry(l).or_default().push(p);
                }
            }
        }
        for (leader, tx) in &tasks {
            if !by_leader.contains_key(leader) {
                tx.send_replace(Vec::new());
            }
        }
        for (leader, parts) in by_leader {
            match tasks.get(&leader) {
                Some(tx) => {
                    tx.send_replace(parts);
                }
                None => {
                    let (tx, rx) = watch::channel(parts);
                    tokio::spawn(fetch_from(state.clone(), leader, rx));
                    tasks.insert(leader, tx);
                }
            }
        }
        tokio::select! {
            r = images.changed() => if r.is_err() { return },
            _ = shutdown.changed() => return,
        }
    }
}

/// A connection to one leader.
struct Conn {
    stream: TcpStream,
    correlation: i32,
}

impl Conn {
    async fn fetch(
        &mut self,
        req: &FetchRequest,
        timeout: Duration,
    ) -> Result<FetchResponse, String> {
        self.correlation = self.correlation.wrapping_add(1);
        let header = RequestHeader::default()
            .with_request_api_key(ApiKey::Fetch as i16)
            .with_request_api_version(FETCH_VERSION)
            .with_correlation_id(self.correlation)
            .with_client_id(Some(StrBytes::from_static_str("runnel-replica-fetcher")));
        let mut body = BytesMut::new();
        header
            .encode(&mut body, FetchRequest::header_version(FETCH_VERSION))
            .map_err(|e| format!("encode header: {e}"))?;
        req.encode(&mut body, FETCH_VERSION)
            .map_err(|e| format!("encode fetch: {e}"))?;
        let mut frame = BytesMut::with_capacity(body.len() + 4);
        frame.put_i32(body.len() as i32);
        frame.extend_from_slice(&body);
        let io = async {
            self.stream.write_all(&frame).await?;
            let len = self.stream.read_i32().await?;
            let len = usize::try_from(len)
                .ok()
                .filter(|l| *l <= MAX_RESPONSE)
                .ok_or_else(|| {
                    std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        format!("bad response size {len}"),
                    )
                })?;
            let mut buf = vec![0u8; len];
            self.stream.read_exact(&mut buf).await?;
            Ok::<_, std::io::Error>(buf)
        };
        let buf = tokio::time::timeout(timeout, io)
            .await
            .map_err(|_| "fetch timed out".to_string())?
            .map_err(|e| e.to_string())?;
        let mut b = Bytes::from(buf);
        let h = ResponseHeader::decode(&mut b, FetchResponse::header_version(FETCH_VERSION))
            .map_err(|e| format!("decode header: {e}"))?;
        if h.correlation_id != self.correlation {
            return Err(format!(
                "correlation id {} is not {}",
                h.correlation_id, self.correlation
            ));
        }
        let resp = FetchResponse::decode(&mut b, FETCH_VERSION)
            .map_err(|e| format!("decode fetch: {e}"))?;
        if b.has_remaining() {
            debug!(left = b.remaining(), "fetch response has trailing bytes");
        }
        Ok(resp)
    }
}

pub(crate) fn leader_address(state: &BrokerState, leader: i32) -> Option<String> {
    let image = state.image();
    let b = image.brokers.get(&leader)?;
    let name = state
        .config
        .props
        .get("inter.broker.listener.name")
        .cloned()
        .unwrap_or_else(|| "PLAINTEXT".into());
    let ep = b
        .endpoints
        .iter()
        .find(|e| e.listener == name)
        .or_else(|| b.endpoints.first())?;
    Some(format!("{}:{}", ep.host, ep.port))
}

/// Fetches from `leader` for as long as this broker follows partitions on it.
async fn fetch_from(state: Arc<BrokerState>, leader: i32, mut parts: watch::Receiver<Followed>) {
    let backoff = Duration::from_millis(
        state
            .config
            .get_i64("replica.fetch.backoff.ms", 1000)
            .clamp(0, 60_000) as u64,
    );
    let max_wait = state
        .config
        .get_i64("replica.fetch.wait.max.ms", 500)
        .clamp(0, 60_000) as i32;
    let min_bytes = state
        .config
        .get_i64("replica.fetch.min.bytes", 1)
        .clamp(0, i32::MAX as i64) as i32;
    let part_max = state
        .config
        .get_i64("replica.fetch.max.bytes", 1_048_576)
        .clamp(1, i32::MAX as i64) as i32;
    let resp_max = state
        .config
        .get_i64("replica.fetch.response.max.bytes", 10_485_760)
        .clamp(1, i32::MAX as i64) as i32;
    let mut shutdown = state.shutdown.clone();
    let mut conn: Option<Conn> = None;
    let mut delayed: HashMap<(Uuid, i32), tokio::time::Instant> = HashMap::new();
    // Consecutive failed fetches per partition (reset by a good one).
    let mut retries: HashMap<(Uuid, i32), u32> = HashMap::new();
    // The leader's high watermark per partition, as its last answer said.
    let mut leader_hw: HashMap<(Uuid, i32), i64> = HashMap::new();
    info!(leader, "replica fetcher started");
    loop {
        if *shutdown.borrow() {
            return;
        }
        let set: Followed = parts.borrow_and_update().clone();
        if set.is_empty() {
            conn = None;
            tokio::select! {
                r = parts.changed() => if r.is_err() { return },
                _ = shutdown.changed() => return,
            }
            continue;
        }
        if conn.is_none() {
            let Some(addr) = leader_address(&state, leader) else {
                tokio::time::sleep(backoff).await;
                continue;
            };
            match tokio::time::timeout(Duration::from_secs(5), TcpStream::connect(&addr)).await {
                Ok(Ok(s)) => {
                    let _ = s.set_nodelay(true);
                    conn = Some(Conn {
                        stream: s,
                        correlation: 0,
                    });
                }
                Ok(Err(e)) => {
                    debug!(leader, addr, error = %e, "cannot reach the leader");
                    tokio::select! {
                        _ = tokio::time::sleep(backoff) => {}
                        _ = shutdown.changed() => return,
                    }
                    continue;
                }
                Err(_) => continue,
            }
        }
        // What each partition fetches from, as of now; partitions whose
        // last fetch failed sit out `replica.fetch.backoff.ms` (until
        // metadata moves them on), as Kafka's fetcher delays them.
        let now = tokio::time::Instant::now();
        delayed.retain(|_, until| *until > now);
        // Kafka's shouldFollowerThrottle: while the follower quota is
        // exceeded, throttled partitions this broker is not in the ISR of
        // sit this fetch out.
        let quota = &state.replicas.quotas.follower;
        // A replica already at the leader's last reported high watermark
        // has nothing to take, and its fetch is what lets the leader add it
        // to the ISR: it is not held back.
        let held: Vec<bool> = if quota.any_throttled() {
            let image = state.image();
            let now = std::time::Instant::now();
            set.iter()
                .map(|p| {
                    let in_sync = image
                        .topics
                        .get(&p.tp.topic)
                        .and_then(|t| t.partitions.get(p.tp.partition as usize))
                        .is_some_and(|pi| pi.isr.contains(&state.node_id));
                    let behind = leader_hw
                        .get(&(p.topic_id, p.tp.partition))
                        .is_none_or(|hw| p.fetch_position().fetch_offset < *hw);
                    behind && quota.hold_back(&p.tp.topic, p.tp.partition, in_sync, now)
                })
                .collect()
        } else {
            vec![false; set.len()]
        };
        // Forget partitions no longer followed from this leader.
        if leader_hw.len() > set.len() || retries.len() > set.len() {
            let followed: std::collections::HashSet<(Uuid, i32)> =
                set.iter().map(|p| (p.topic_id, p.tp.partition)).collect();
            leader_hw.retain(|k, _| followed.contains(k));
            retries.retain(|k, _| followed.contains(k));
        }
        let throttled_out = held.iter().any(|h| *h);
        let positions: Vec<(Arc<Partition>, FetchPosition)> = set
            .iter()
            .zip(&held)
            .filter(|(p, h)| !**h && !delayed.contains_key(&(p.topic_id, p.tp.partition)))
            .map(|(p, _)| (p.clone(), p.fetch_position()))
            .collect();
        if positions.is_empty() && throttled_out {
            // As Kafka's fetcher with nothing to fetch: wait a backoff.
            tokio::select! {
                _ = tokio::time::sleep(backoff.min(Duration::from_millis(100)).max(Duration::from_millis(10))) => {}
                r = parts.changed() => { if r.is_err() { return } }
                _ = shutdown.changed() => return,
            }
            continue;
        }
        if positions.is_empty() {
            let next = delayed.values().min().copied().unwrap_or(now + backoff);
            tokio::select! {
                _ = tokio::time::sleep_until(next) => {}
                r = parts.changed() => { if r.is_err() { return } delayed.clear(); }
                _ = shutdown.changed() => return,
            }
            continue;
        }
        let mut topics: BTreeMap<Uuid, Vec<FetchPartition>> = BTreeMap::new();
        for (p, pos) in &positions {
            topics.entry(p.topic_id).or_default().push(
                FetchPartition::default()
                    .with_partition(p.tp.partition)
                    .with_current_leader_epoch(pos.leader_epoch)
                    .with_fetch_offset(pos.fetch_offset)
                    .with_last_fetched_epoch(pos.last_fetched_epoch)
                    .with_log_start_offset(pos.log_start_offset)
                    .with_partition_max_bytes(part_max),
            );
        }
        let req = FetchRequest::default()
            .with_replica_state(
                ReplicaState::default()
                    .with_replica_id(BrokerId(state.node_id))
                    .with_replica_epoch(state.broker_epoch()),
            )
            .with_max_wait_ms(max_wait)
            .with_min_bytes(min_bytes)
            .with_max_bytes(resp_max)
            .with_session_id(0)
            .with_session_epoch(-1)
            .with_topics(
                topics
                    .into_iter()
                    .map(|(id, ps)| FetchTopic::default().with_topic_id(id).with_partitions(ps))
                    .collect(),
            );
        let timeout = Duration::from_millis(max_wait as u64) + Duration::from_secs(30);
        let Some(c) = conn.as_mut() else { continue };
        let resp = tokio::select! {
            r = c.fetch(&req, timeout) => r,
            _ = shutdown.changed() => return,
        };
        let resp = match resp {
            Ok(r) => r,
            Err(e) => {
                warn!(leader, error = %e, "replica fetch failed; reconnecting");
                conn = None;
                tokio::time::sleep(backoff).await;
                continue;
            }
        };
        if resp.error_code != 0 {
            warn!(leader, code = resp.error_code, "replica fetch refused");
            tokio::time::sleep(backoff).await;
            continue;
        }
        for t in &resp.responses {
            for pd in &t.partitions {
                if pd.error_code == 0 {
                    leader_hw.insert((t.topic_id, pd.partition_index), pd.high_watermark);
                }
            }
        }
        // Every throttled partition's bytes count toward the follower rate.
        if quota.any_throttled() {
            let bytes: usize = resp
                .responses
                .iter()
                .flat_map(|t| t.partitions.iter().map(move |pd| (t.topic_id, pd)))
                .filter(|(id, pd)| {
                    positions.iter().any(|(p, _)| {
                        p.topic_id == *id
                            && p.tp.partition == pd.partition_index
                            && quota.is_throttled(&p.tp.topic, p.tp.partition)
                    })
                })
                .map(|(_, pd)| pd.records.as_ref().map_or(0, |r| r.len()))
                .sum();
            quota.record(bytes as u64, std::time::Instant::now());
        }
        let fetched: Vec<(Uuid, i32)> = positions
            .iter()
            .map(|(p, _)| (p.topic_id, p.tp.partition))
            .collect();
        let outcome =
            tokio::task::spawn_blocking(move || apply_response(leader, &positions, resp)).await;
        match outcome {
            Ok(failed) => {
                let now = tokio::time::Instant::now();
                let failed_keys: std::collections::HashSet<(Uuid, i32)> =
                    failed.iter().map(|(k, _)| *k).collect();
                for k in &fetched {
                    if !failed_keys.contains(k) {
                        retries.remove(k);
                    }
                }
                for (k, code) in failed {
                    let n = retries.entry(k).or_insert(0);
                    *n = n.saturating_add(1);
                    delayed.insert(k, now + retry_delay(code, *n, backoff));
                }
            }
            Err(e) => warn!(leader, error = %e, "applying a fetch response failed"),
        }
    }
}

/// How long a partition whose fetch failed with `code` (for the `n`th time
/// in a row) sits out: `replica.fetch.backoff.ms`, as Kafka's fetcher
/// delays it, except when the answer says the leader has not applied yet
/// the committed leader change this follower already follows in
/// (NOT_LEADER_OR_FOLLOWER or UNKNOWN_LEADER_EPOCH from the broker this
/// follower's metadata names as leader). That lasts milliseconds, and every
/// acks=all produce to the new leader waits for this follower's next fetch,
/// so it retries after 25, 50, then every 100 ms for about two seconds (a
/// leader that is late by a few hundred ms holds produce back by at most
/// 100 ms more), then doubles up to the backoff, should it last.
pub(crate) fn retry_delay(code: i16, n: u32, backoff: Duration) -> Duration {
    let leader_behind = code == ResponseError::UnknownLeaderEpoch.code()
        || code == ResponseError::NotLeaderOrFollower.code();
    if !leader_behind {
        return backoff;
    }
    let ms = match n {
        0..=3 => 25u64 << n.saturating_sub(1),
        4..=LEADER_BEHIND_STEADY_TRIES => 100,
        _ => 100u64 << (n - LEADER_BEHIND_STEADY_TRIES).min(10),
    };
    backoff.min(Duration::from_millis(ms))
}

/// The retries at 100 ms while a leader is behind on metadata (about 2 s).
const LEADER_BEHIND_STEADY_TRIES: u32 = 22;

/// Applies one fetch response (blocking: appends and truncations write the
/// disk). Returns the partitions that failed (to back off), with the error
/// code (0 when the failure was local).
fn apply_response(
    leader: i32,
    positions: &[(Arc<Partition>, FetchPosition)],
    resp: FetchResponse,
) -> Vec<((Uuid, i32), i16)> {
    let mut failed = Vec::new();
    for t in resp.responses {
        for pd in t.partitions {
            let Some((part, pos)) = positions
                .iter()
                .find(|(p, _)| p.topic_id == t.topic_id && p.tp.partition == pd.partition_index)
            else {
                continue;
            };
            let epoch = pos.leader_epoch;
            let result = if pd.error_code == 0 {
                if pd.diverging_epoch.epoch >= 0 {
                    let div = &pd.diverging_epoch;
                    let (ours, our_end) = part.end_offset_for_epoch(div.epoch);
                    let to = if ours == div.epoch {
                        our_end.min(div.end_offset)
                    } else if ours >= 0 {
                        our_end
                    } else {
                        div.end_offset.min(pos.fetch_offset)
                    };
                    info!(partition = %part.tp, leader, epoch = div.epoch, end = div.end_offset, truncate_to = to, "log diverged from the leader's: truncating");
                    part.truncate(epoch, to, false)
                } else {
                    let records = pd.records.as_deref().unwrap_or(&[]);
                    part.append_as_follower(epoch, records, pd.high_watermark, pd.log_start_offset)
                }
            } else if pd.error_code == ResponseError::OffsetOutOfRange.code() {
                // The leader's log start and end (a Runnel leader fills both in).
                let (start, end) = (pd.log_start_offset, pd.high_watermark);
                if start >= 0 && pos.fetch_offset < start {
                    warn!(partition = %part.tp, leader, start, "behind the leader's log start: starting over there");
                    part.truncate(epoch, start, true)
                } else if end >= 0 && pos.fetch_offset > end {
                    warn!(partition = %part.tp, leader, end, "ahead of the leader's log end: truncating");
                    part.truncate(epoch, end, false)
                } else {
                    Ok(false)
                }
            } else {
                debug!(partition = %part.tp, leader, code = pd.error_code, "replica fetch error");
                Ok(false)
            };
            let key = (part.topic_id, part.tp.partition);
            match result {
                Ok(true) => {}
                Ok(false) => failed.push((key, pd.error_code)),
                Err(e) => {
                    tracing::error!(partition = %part.tp, error = %e, "follower log write failed");
                    failed.push((key, 0));
                }
            }
        }
    }
    failed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_leader_behind_on_metadata_is_retried_soon_other_errors_back_off() {
        let backoff = Duration::from_millis(1000);
        for code in [
            ResponseError::UnknownLeaderEpoch.code(),
            ResponseError::NotLeaderOrFollower.code(),
        ] {
            let delays: Vec<u64> = (1..=26)
                .map(|n| retry_delay(code, n, backoff).as_millis() as u64)
                .collect();
            let mut want = vec![25, 50, 100];
            want.extend([100; 19]);
            want.extend([200, 400, 800, 1000]);
            assert_eq!(delays, want);
            let first_two_seconds: u64 = delays[..22].iter().sum();
            assert!(first_two_seconds >= 2000, "{first_two_seconds}");
            // Never longer than the configured backoff.
            assert_eq!(
                retry_delay(code, 1, Duration::from_millis(10)),
                Duration::from_millis(10)
            );
            assert_eq!(retry_delay(code, u32::MAX, backoff), backoff);
        }
        for code in [
            ResponseError::FencedLeaderEpoch.code(),
            ResponseError::UnknownTopicOrPartition.code(),
            0,
        ] {
            assert_eq!(retry_delay(code, 1, backoff), backoff);
        }
    }
}
