//! OffsetFetch: committed offsets of one group (v0-7) or many (v8+).

use std::sync::Arc;

use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions,
    OffsetFetchResponseTopic, OffsetFetchResponseTopics,
};
use kafka_protocol::messages::{OffsetFetchResponse, ResponseKind, TopicName};

use kafka_protocol::error::ResponseError;

use super::sb;
use crate::body;
use crate::broker::BrokerState;
use crate::server::dispatch::{HandlerFuture, Request};

/// Handles OffsetFetch.
pub fn handle(state: Arc<BrokerState>, req: Request) -> HandlerFuture {
    Box::pin(run(state, req))
}

/// (topic, [(partition, offset, leader epoch, metadata, error)]) for a
/// group.
type Fetched = Vec<(String, Vec<FetchedPartition>)>;

/// (partition, offset, leader epoch, metadata, error code).
type FetchedPartition = (i32, i64, i32, String, i16);

/// With `require_stable` (KIP-447, read_committed consumers), a partition
/// a transaction holds a pending offset for answers UNSTABLE_OFFSET_COMMIT
/// and no offset (Kafka's `OffsetMetadataManager.fetchOffsets`); the
/// consumer retries until the transaction ended.
async fn fetch(
    state: &BrokerState,
    group: &str,
    wanted: Option<Vec<(String, Vec<i32>)>>,
    require_stable: bool,
) -> Result<Fetched, i16> {
    state.groups.check_coordinator(state, group)?;
    let write = state.groups.writer(state, group);
    let offsets_partition = state.groups.partition_for(group);
    let groups = state.groups.lock().await;
    let g = groups.offsets.get(group);
    let unstable =
        |t: &str, p: i32| require_stable && groups.has_pending_txn(offsets_partition, group, t, p);
    let lookup = |t: &str, p: i32| -> FetchedPartition {
        if unstable(t, p) {
            return (
                p,
                -1,
                -1,
                String::new(),
                ResponseError::UnstableOffsetCommit.code(),
            );
        }
        match g.and_then(|g| g.get(&(t.to_string(), p))) {
            Some(v) => (p, v.offset, v.leader_epoch, v.metadata.clone(), 0),
            None => (p, -1, -1, String::new(), 0),
        }
    };
    let fetched = match wanted {
        Some(list) => list
            .into_iter()
            .map(|(t, ps)| {
                let parts = ps.iter().map(|p| lookup(&t, *p)).collect();
                (t, parts)
            })
            .collect(),
        None => {
            let mut by_topic: std::collections::BTreeMap<String, Vec<FetchedPartition>> =
                Default::default();
            if let Some(g) = g {
                for (t, p) in g.keys() {
                    by_topic.entry(t.clone()).or_default().push(lookup(t, *p));
                }
            }
            by_topic.into_iter().collect()
        }
    };
    drop(groups);
    // Only committed offsets are answered: what was read is returned once
    // the partition's high watermark covers everything written before
    // (Kafka reads at the last committed offset).
    write.replicated().await?;
    Ok(fetched)
}

async fn run(state: Arc<BrokerState>, req: Request) -> Result<Option<ResponseKind>, String> {
    let version = req.version;
    let body = body!(req, OffsetFetch);
    if version >= 8 {
        let mut groups = Vec::with_capacity(body.groups.len());
        for g in body.groups {
            let wanted = g.topics.map(|ts| {
                ts.into_iter()
                    .map(|t| (t.name.0.to_string(), t.partition_indexes))
                    .collect()
            });
            let gid = g.group_id.0.to_string();
            let entry = match fetch(&state, &gid, wanted, body.require_stable).await {
                Err(code) => OffsetFetchResponseGroup::default()
                    .with_group_id(g.group_id)
                    .with_error_code(code),
                Ok(topics) => OffsetFetchResponseGroup::default()
                    .with_group_id(g.group_id)
                    .with_topics(
                        topics
                            .into_iter()
                            .map(|(t, ps)| {
                                OffsetFetchResponseTopics::default()
                                    .with_name(TopicName(sb(&t)))
                                    .with_partitions(
                                        ps.into_iter()
                                            .map(|(p, o, e, m, code)| {
                                                OffsetFetchResponsePartitions::default()
                                                    .with_partition_index(p)
                                                    .with_error_code(code)
                                                    .with_committed_offset(o)
                                                    .with_committed_leader_epoch(e)
                                                    .with_metadata(Some(sb(&m)))
                                            })
                                            .collect(),
                                    )
                            })
                            .collect(),
                    ),
            };
            groups.push(entry);
        }
        return Ok(Some(ResponseKind::OffsetFetch(
            OffsetFetchResponse::default().with_groups(groups),
        )));
    }
    let wanted = body.topics.map(|ts| {
        ts.into_iter()
            .map(|t| (t.name.0.to_string(), t.partition_indexes))
            .collect()
    });
    let require_stable = version >= 7 && body.require_stable;
    let resp = match fetch(&state, body.group_id.as_str(), wanted, require_stable).await {
        Err(code) => {
            OffsetFetchResponse::default().with_error_code(if version >= 2 { code } else { 0 })
        }
        Ok(topics) => OffsetFetchResponse::default().with_topics(
            topics
                .into_iter()
                .map(|(t, ps)| {
                    OffsetFetchResponseTopic::default()
                        .with_name(TopicName(sb(&t)))
                        .with_partitions(
                            ps.into_iter()
                                .map(|(p, o, e, m, code)| {
                                    let part = OffsetFetchResponsePartition::default()
                                        .with_partition_index(p)
                                        .with_error_code(code)
                                        .with_committed_offset(o)
                                        .with_metadata(Some(sb(&m)));
                                    if version >= 5 {
                                        part.with_committed_leader_epoch(e)
                                    } else {
                                        part
                                    }
                                })
                                .collect(),
                        )
                })
                .collect(),
        ),
    };
    Ok(Some(ResponseKind::OffsetFetch(resp)))
}
