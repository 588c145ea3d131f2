//! ListOffsets: earliest, latest, max-timestamp and offset-by-timestamp.

use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::{ListOffsetsResponse, ResponseKind};

use crate::body;
use crate::broker::BrokerState;
use crate::server::dispatch::{HandlerFuture, Request};

const LATEST: i64 = -1;
const EARLIEST: i64 = -2;
const MAX_TIMESTAMP: i64 = -3;
const EARLIEST_LOCAL: i64 = -4;
const EARLIEST_PENDING_UPLOAD: i64 = -5;
const LATEST_TIERED: i64 = -6;

/// Handles ListOffsets.
pub fn handle(state: Arc<BrokerState>, req: Request) -> HandlerFuture {
    Box::pin(run(state, req))
}

async fn run(state: Arc<BrokerState>, req: Request) -> Result<Option<ResponseKind>, String> {
    let version = req.version;
    let body = body!(req, ListOffsets);
    let image = state.image();
    let mut topics = Vec::with_capacity(body.topics.len());
    for t in body.topics {
        let name = t.name.0.to_string();
        let mut parts = Vec::with_capacity(t.partitions.len());
        for p in t.partitions {
            let resp = ListOffsetsPartitionResponse::default()
                .with_partition_index(p.partition_index)
                .with_timestamp(-1)
                .with_offset(-1)
                .with_leader_epoch(-1);
            let part = match state.replicas.leader_of(&image, &name, p.partition_index) {
                Ok(part) => part,
                Err(e) => {
                    parts.push(resp.with_error_code(e.code));
                    continue;
                }
            };
            if let Err(e) = part.check_leader_epoch(p.current_leader_epoch) {
                parts.push(resp.with_error_code(e.code));
                continue;
            }
            // read_committed (v2+): nothing past the last stable offset.
            let hw = if version >= 2 && body.isolation_level == 1 {
                part.last_stable_offset()
            } else {
                part.high_watermark()
            };
            let found = part.scan_log(
                |log| -> Result<Option<(i64, i64, i32)>, crate::log::LogError> {
                    Ok(match p.timestamp {
                        EARLIEST | EARLIEST_LOCAL => {
                            let s = log.start_offset();
                            Some((s, -1, log.epoch_for_offset(s)))
                        }
                        LATEST => Some((hw, -1, log.latest_epoch())),
                        LATEST_TIERED | EARLIEST_PENDING_UPLOAD => Some((-1, -1, -1)),
                        MAX_TIMESTAMP => log
                            .max_timestamp()?
                            .map(|(off, ts)| (off, ts, log.epoch_for_offset(off))),
                        ts if ts >= 0 => {
                            log.offset_for_timestamp(ts)?.filter(|(off, ..)| *off < hw)
                        }
                        _ => None,
                    })
                },
            );
            parts.push(match found {
                Ok(Some((offset, ts, epoch))) => {
                    let resp = resp.with_offset(offset).with_timestamp(ts);
                    // The leader epoch field exists from v4.
                    if version >= 4 {
                        resp.with_leader_epoch(epoch)
                    } else {
                        resp
                    }
                }
                Ok(None) if p.timestamp < 0 && p.timestamp != MAX_TIMESTAMP => {
                    resp.with_error_code(ResponseError::InvalidRequest.code())
                }
                Ok(None) => resp,
                Err(e) => {
                    tracing::error!(partition = %part.tp, error = %e, "list offsets failed");
                    resp.with_error_code(ResponseError::KafkaStorageError.code())
                }
            });
        }
        topics.push(
            ListOffsetsTopicResponse::default()
                .with_name(t.name)
                .with_partitions(parts),
        );
    }
    Ok(Some(ResponseKind::ListOffsets(
        ListOffsetsResponse::default().with_topics(topics),
    )))
}
