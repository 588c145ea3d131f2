//! Fetch: serve stored batches as they are on disk, with long polling
//! (`max_wait_ms` / `min_bytes`) and response and partition size limits.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
use kafka_protocol::messages::{FetchResponse, ResponseKind};
use tokio::sync::watch;
use uuid::Uuid;

use crate::body;
use crate::broker::BrokerState;
use crate::error::ApiError;
use crate::server::dispatch::{HandlerFuture, Request};

/// Handles Fetch.
pub fn handle(state: Arc<BrokerState>, req: Request) -> HandlerFuture {
    Box::pin(run(state, req))
}

struct Wanted {
    topic: kafka_protocol::messages::TopicName,
    topic_id: Uuid,
    name: Option<String>,
    partitions: Vec<(i32, i64, i32, i32)>, // index, offset, max bytes, current leader epoch
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
    let body = body!(req, Fetch);
    if body.session_id != 0 || body.session_epoch > 0 {
        // We never hand out fetch sessions, so an incremental fetch names an unknown one.
        return Ok(Some(ResponseKind::Fetch(
            FetchResponse::default().with_error_code(ResponseError::FetchSessionIdNotFound.code()),
        )));
    }
    let image = state.image();
    let wanted: Vec<Wanted> = body
        .topics
        .into_iter()
        .map(|t| {
            let name = if version >= 13 {
                image.topic_by_id(&t.topic_id).map(|x| x.name.clone())
            } else {
                Some(t.topic.0.to_string())
            };
            Wanted {
                topic: t.topic,
                topic_id: t.topic_id,
                name,
                partitions: t
                    .partitions
                    .iter()
                    .map(|p| {
                        (
                            p.partition,
                            p.fetch_offset,
                            p.partition_max_bytes,
                            p.current_leader_epoch,
                        )
                    })
                    .collect(),
            }
        })
        .collect();
    let max_wait = Duration::from_millis(body.max_wait_ms.max(0) as u64);
    let min_bytes = body.min_bytes.max(0) as usize;
    let max_bytes = if body.max_bytes <= 0 {
        i32::MAX as usize
    } else {
        body.max_bytes as usize
    };
    let deadline = tokio::time::Instant::now() + max_wait;
    // Subscribe before the first read, so no append between read and wait is missed.
    let mut watchers: Vec<watch::Receiver<i64>> = Vec::new();
    for w in &wanted {
        if let Some(name) = &w.name {
            for (p, ..) in &w.partitions {
                if let Some(part) = state.replicas.hosted(&image, name, *p) {
                    watchers.push(part.subscribe());
                }
            }
        }
    }
    loop {
        for w in &mut watchers {
            w.borrow_and_update();
        }
        let (resp, total, errors) = read_once(&state, &image, &wanted, version, max_bytes)?;
        let now = tokio::time::Instant::now();
        if total >= min_bytes
            || errors
            || now >= deadline
            || watchers.is_empty()
            || *state.shutdown.borrow()
        {
            return Ok(Some(ResponseKind::Fetch(resp)));
        }
        let changed =
            futures::future::select_all(watchers.iter_mut().map(|w| Box::pin(w.changed())));
        tokio::select! {
            _ = changed => {}
            _ = tokio::time::sleep_until(deadline) => {}
        }
    }
}

fn read_once(
    state: &BrokerState,
    image: &crate::metadata::ClusterImage,
    wanted: &[Wanted],
    version: i16,
    max_bytes: usize,
) -> Result<(FetchResponse, usize, bool), String> {
    let mut total = 0usize;
    let mut errors = false;
    let mut responses = Vec::with_capacity(wanted.len());
    for w in wanted {
        let mut parts = Vec::with_capacity(w.partitions.len());
        for &(index, offset, part_max, leader_epoch) in &w.partitions {
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
            let ours = part.leader_epoch();
            if leader_epoch >= 0 && leader_epoch != ours {
                errors = true;
                let code = if leader_epoch > ours {
                    ResponseError::UnknownLeaderEpoch
                } else {
                    ResponseError::FencedLeaderEpoch
                };
                parts.push(partition_error(index, &ApiError::code(code)));
                continue;
            }
            let budget = (part_max.max(0) as usize).min(max_bytes.saturating_sub(total));
            // KIP-74: the first partition with data returns at least one batch.
            let min_one = total == 0;
            let data = match part.read(offset, budget, min_one) {
                Ok(r) => r,
                Err(e) => {
                    errors = true;
                    let (hw, start) = part.with_log(|l| (l.end_offset(), l.start_offset()));
                    parts.push(
                        partition_error(index, &e)
                            .with_high_watermark(hw)
                            .with_last_stable_offset(hw)
                            .with_log_start_offset(start),
                    );
                    continue;
                }
            };
            let records = match &data.slice {
                Some(s) => match s.read() {
                    Ok(b) => {
                        total += b.len();
                        Bytes::from(b)
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
            parts.push(
                PartitionData::default()
                    .with_partition_index(index)
                    .with_high_watermark(data.high_watermark)
                    .with_last_stable_offset(data.high_watermark)
                    .with_log_start_offset(data.log_start_offset)
                    .with_aborted_transactions(if version >= 4 { Some(vec![]) } else { None })
                    .with_records(Some(records)),
            );
        }
        responses.push(
            FetchableTopicResponse::default()
                .with_topic(w.topic.clone())
                .with_topic_id(w.topic_id)
                .with_partitions(parts),
        );
    }
    Ok((
        FetchResponse::default().with_responses(responses),
        total,
        errors,
    ))
}
