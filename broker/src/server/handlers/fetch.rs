//! Fetch: serve stored batches as they are on disk, with long polling
//! (`max_wait_ms` / `min_bytes`) and response and partition size limits.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::fetch_response::{
    AbortedTransaction, EpochEndOffset, FetchableTopicResponse, LeaderIdAndEpoch, NodeEndpoint,
    PartitionData,
};
use kafka_protocol::messages::{BrokerId, FetchResponse, ProducerId, ResponseKind};
use tokio::sync::watch;
use uuid::Uuid;

use crate::body;
use crate::broker::BrokerState;
use crate::error::ApiError;
use crate::log::ReadSlice;
use crate::replication::{FetchPosition, FollowerRead, HwState};
use crate::server::dispatch::{HandlerFuture, Request};
use crate::server::file_region;

use super::leader_hint::LeaderHints;
use super::sb;

/// Handles Fetch.
pub fn handle(state: Arc<BrokerState>, req: Request) -> HandlerFuture {
    Box::pin(run(state, req))
}

struct Wanted {
    topic: kafka_protocol::messages::TopicName,
    topic_id: Uuid,
    name: Option<String>,
    /// Index, offset, max bytes, current leader epoch, last fetched epoch.
    partitions: Vec<(i32, i64, i32, i32, i32)>,
}

fn partition_error(index: i32, e: &ApiError) -> PartitionData {
    PartitionData::default()
        .with_partition_index(index)
        .with_error_code(e.code)
        .with_high_watermark(-1)
        .with_last_stable_offset(-1)
        .with_log_start_offset(-1)
}

async fn run(state: Arc<BrokerState>, req: Request) -> Result<Option<ResponseKind>, String> {
    let version = req.version;
    let attached = req.regions.clone();
    let body = body!(req, Fetch);
    // What to fetch: the request's partitions, or (incremental) the
    // session's, with the request's changes applied.
    let (ctx, requested) = match state.fetch_sessions.begin(&body) {
        Ok(begun) => begun,
        Err(e) => {
            tracing::debug!(session = body.session_id, epoch = body.session_epoch, error = ?e, "fetch session refused");
            return Ok(Some(ResponseKind::Fetch(
                FetchResponse::default().with_error_code(e.code()),
            )));
        }
    };
    let image = state.image();
    let mut grouped: Vec<Wanted> = Vec::new();
    for p in &requested {
        let same = grouped
            .last()
            .is_some_and(|w| w.topic == p.topic && w.topic_id == p.topic_id);
        if !same {
            let name = if version >= 13 {
                image.topic_by_id(&p.topic_id).map(|x| x.name.clone())
            } else {
                Some(p.topic.0.to_string())
            };
            grouped.push(Wanted {
                topic: p.topic.clone(),
                topic_id: p.topic_id,
                name,
                partitions: Vec::new(),
            });
        }
        if let Some(w) = grouped.last_mut() {
            w.partitions.push((
                p.partition,
                p.fetch_offset,
                p.max_bytes,
                p.current_leader_epoch,
                p.last_fetched_epoch,
            ));
        }
    }
    let wanted: Arc<[Wanted]> = grouped.into();
    let max_wait = Duration::from_millis(body.max_wait_ms.max(0) as u64);
    let min_bytes = body.min_bytes.max(0) as usize;
    // read_committed (v4+): consumers read up to the last stable offset.
    let committed = version >= 4 && body.isolation_level == 1;
    // A follower's fetch (Kafka's replica fetch): `replica_id` names it.
    let replica = if version >= 15 {
        body.replica_state.replica_id.0
    } else {
        body.replica_id.0
    };
    let fetcher = (replica >= 0).then_some(replica);
    let mut max_bytes = if body.max_bytes <= 0 {
        i32::MAX as usize
    } else {
        body.max_bytes as usize
    };
    if fetcher.is_none() {
        // As Kafka's KafkaApis: a consumer's response is also capped by the
        // broker's fetch.max.bytes (a follower's is not).
        let cap = state.config.get_i64("fetch.max.bytes", 57_671_680).max(0);
        max_bytes = max_bytes.min(usize::try_from(cap).unwrap_or(usize::MAX));
    }
    let deadline = tokio::time::Instant::now() + max_wait;
    // Subscribe before the first read, so no append between read and wait
    // is missed: consumers wait for the high watermark, followers for the
    // log end.
    let mut watchers: Vec<Watcher> = Vec::new();
    for w in wanted.iter() {
        if let Some(name) = &w.name {
            for (p, ..) in &w.partitions {
                if let Some(part) = state.replicas.hosted(&image, name, *p) {
                    watchers.push(match fetcher {
                        Some(_) => Watcher::Leo(part.subscribe_leo()),
                        None => Watcher::Hw(part.subscribe()),
                    });
                }
            }
        }
    }
    loop {
        for w in &mut watchers {
            w.mark_seen();
        }
        // The reads (batch scans and file reads) run on a blocking thread;
        // each partition's lock is held only to plan its read, never
        // across the I/O.
        let (mut resp, total, errors, regions) = {
            let (state, image, wanted) = (state.clone(), image.clone(), wanted.clone());
            tokio::task::spawn_blocking(move || {
                read_once(
                    &state, &image, &wanted, version, max_bytes, fetcher, committed,
                )
            })
            .await
            .map_err(|e| format!("fetch read task failed: {e}"))??
        };
        let now = tokio::time::Instant::now();
        if total >= min_bytes
            || errors
            || now >= deadline
            || watchers.is_empty()
            || *state.shutdown.borrow()
        {
            // Only partitions without records are left out of an
            // incremental response, so `regions` keep their order.
            state.fetch_sessions.finish(&ctx, &requested, &mut resp);
            attached.attach(regions);
            return Ok(Some(ResponseKind::Fetch(resp)));
        }
        let changed = futures::future::select_all(watchers.iter_mut().map(Watcher::changed));
        tokio::select! {
            _ = changed => {}
            _ = tokio::time::sleep_until(deadline) => {}
        }
    }
}

/// What a long poll waits on.
enum Watcher {
    /// A consumer: the high watermark.
    Hw(watch::Receiver<HwState>),
    /// A follower: the log end.
    Leo(watch::Receiver<i64>),
}

impl Watcher {
    fn mark_seen(&mut self) {
        match self {
            Watcher::Hw(r) => {
                r.borrow_and_update();
            }
            Watcher::Leo(r) => {
                r.borrow_and_update();
            }
        }
    }

    fn changed(&mut self) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + '_>> {
        match self {
            Watcher::Hw(r) => Box::pin(async move {
                if r.changed().await.is_err() {
                    std::future::pending::<()>().await;
                }
            }),
            Watcher::Leo(r) => Box::pin(async move {
                if r.changed().await.is_err() {
                    std::future::pending::<()>().await;
                }
            }),
        }
    }
}

fn read_once(
    state: &Arc<BrokerState>,
    image: &crate::metadata::ClusterImage,
    wanted: &[Wanted],
    version: i16,
    max_bytes: usize,
    fetcher: Option<i32>,
    committed: bool,
) -> Result<(FetchResponse, usize, bool, Vec<ReadSlice>), String> {
    let mut total = 0usize;
    // Record sets sent from their segment files, in response order.
    let mut regions = Vec::new();
    let mut errors = false;
    let mut responses = Vec::with_capacity(wanted.len());
    // KIP-951 (Fetch v12+): where this broker does not lead, the leader it knows.
    let meta = state.image();
    let mut hints = LeaderHints::new(meta.clone(), state.node_id, state.stopping_self());
    for w in wanted {
        let mut parts = Vec::with_capacity(w.partitions.len());
        for &(index, offset, part_max, leader_epoch, last_epoch) in &w.partitions {
            let Some(name) = &w.name else {
                errors = true;
                parts.push(partition_error(
                    index,
                    &ApiError::code(ResponseError::UnknownTopicId),
                ));
                continue;
            };
            let part = match state.replicas.leader_of(image, name, index) {
                Ok(part) => part,
                Err(e) => {
                    errors = true;
                    parts.push(partition_error(index, &e));
                    continue;
                }
            };
            if let Err(e) = part.check_leader_epoch(leader_epoch) {
                errors = true;
                parts.push(partition_error(index, &e));
                continue;
            }
            let budget = (part_max.max(0) as usize).min(max_bytes.saturating_sub(total));
            // KIP-74: the first partition with data returns at least one batch.
            let min_one = total == 0;
            // read_committed: the LSO and the aborted transactions read.
            let mut txn_view: Option<(i64, Vec<AbortedTransaction>)> = None;
            let read = match fetcher {
                None if committed => part.read_committed(offset, budget, min_one).map(|r| {
                    let aborted = r
                        .aborted
                        .iter()
                        .map(|a| {
                            AbortedTransaction::default()
                                .with_producer_id(ProducerId(a.producer_id))
                                .with_first_offset(a.first_offset)
                        })
                        .collect();
                    txn_view = Some((r.last_stable_offset, aborted));
                    r.read
                }),
                None => part.read(offset, budget, min_one),
                Some(replica) => {
                    let pos = FetchPosition {
                        fetch_offset: offset,
                        last_fetched_epoch: last_epoch,
                        leader_epoch,
                        log_start_offset: -1,
                    };
                    let eligible = meta.broker_usable(replica);
                    match part.read_for_follower(replica, pos, budget, eligible) {
                        Ok(FollowerRead {
                            diverging: Some((epoch, end)),
                            ..
                        }) => {
                            errors = true;
                            parts.push(
                                PartitionData::default()
                                    .with_partition_index(index)
                                    .with_high_watermark(part.high_watermark())
                                    .with_last_stable_offset(part.high_watermark())
                                    .with_log_start_offset(part.read_log(|l| l.start_offset()))
                                    .with_diverging_epoch(
                                        EpochEndOffset::default()
                                            .with_epoch(epoch)
                                            .with_end_offset(end),
                                    )
                                    .with_records(Some(Bytes::new())),
                            );
                            continue;
                        }
                        Ok(r) => {
                            if let Some(isr) = r.expand_isr {
                                crate::replication::isr::request(state, part.clone(), isr);
                            }
                            // Kafka's shouldLeaderThrottle: an out-of-sync
                            // replica of a throttled partition gets no
                            // records while the leader's quota is exceeded
                            // (its position was still recorded above).
                            let quota = &state.replicas.quotas.leader;
                            let hold = quota.hold_back(
                                name,
                                index,
                                part.in_isr(replica),
                                std::time::Instant::now(),
                            );
                            r.read
                                .map(|mut read| {
                                    if hold {
                                        read.slice = None;
                                    }
                                    read
                                })
                                .ok_or_else(|| ApiError::code(ResponseError::UnknownServerError))
                        }
                        Err(e) => Err(e),
                    }
                }
            };
            let data = match read {
                Ok(r) => r,
                Err(e) => {
                    errors = true;
                    let (hw, start) = part.read_log(|l| (l.end_offset(), l.start_offset()));
                    parts.push(
                        partition_error(index, &e)
                            .with_high_watermark(hw)
                            .with_last_stable_offset(hw)
                            .with_log_start_offset(start),
                    );
                    continue;
                }
            };
            // Large record sets are sent from the file (sendfile) by the
            // connection; small ones are read here.
            let records = match &data.slice {
                Some(s) => match s.resolve().and_then(|slice| match slice {
                    Some(slice) if file_region::sendable(slice.len) => {
                        let b = file_region::placeholder(slice.len);
                        regions.push(slice);
                        Ok(b)
                    }
                    Some(slice) => slice.read(),
                    None => Ok(Bytes::new()),
                }) {
                    Ok(b) => {
                        total += b.len();
                        // Every throttled partition's bytes to a follower
                        // count toward the leader's rate, in sync or not.
                        let quota = &state.replicas.quotas.leader;
                        if fetcher.is_some() && quota.is_throttled(name, index) {
                            quota.record(b.len() as u64, std::time::Instant::now());
                        }
                        b
                    }
                    Err(e) => {
                        tracing::error!(partition = %part.tp, error = %e, "read failed");
                        errors = true;
                        parts.push(partition_error(
                            index,
                            &ApiError::code(ResponseError::KafkaStorageError),
                        ));
                        continue;
                    }
                },
                None => Bytes::new(),
            };
            let (lso, aborted) = match txn_view {
                Some((lso, aborted)) => (lso, aborted),
                None if fetcher.is_some() => (data.high_watermark, Vec::new()),
                None => (part.last_stable_offset(), Vec::new()),
            };
            parts.push(
                PartitionData::default()
                    .with_partition_index(index)
                    .with_high_watermark(data.high_watermark)
                    .with_last_stable_offset(lso)
                    .with_log_start_offset(data.log_start_offset)
                    .with_aborted_transactions((version >= 4).then_some(aborted))
                    .with_records(Some(records)),
            );
        }
        if let (true, Some(name)) = (version >= 12, &w.name) {
            let refused = [
                ResponseError::NotLeaderOrFollower.code(),
                ResponseError::FencedLeaderEpoch.code(),
            ];
            for p in parts.iter_mut().filter(|p| refused.contains(&p.error_code)) {
                let (leader, epoch) = hints.leader(name, p.partition_index);
                p.current_leader = LeaderIdAndEpoch::default()
                    .with_leader_id(BrokerId(leader))
                    .with_leader_epoch(epoch);
            }
        }
        responses.push(
            FetchableTopicResponse::default()
                .with_topic(w.topic.clone())
                .with_topic_id(w.topic_id)
                .with_partitions(parts),
        );
    }
    let node_endpoints = if version >= 16 {
        hints
            .endpoints()
            .into_iter()
            .map(|e| {
                NodeEndpoint::default()
                    .with_node_id(BrokerId(e.node_id))
                    .with_host(sb(&e.host))
                    .with_port(e.port)
                    .with_rack(e.rack.as_deref().map(sb))
            })
            .collect()
    } else {
        Vec::new()
    };
    Ok((
        FetchResponse::default()
            .with_responses(responses)
            .with_node_endpoints(node_endpoints),
        total,
        errors,
        regions,
    ))
}
