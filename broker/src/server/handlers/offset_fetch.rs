//! OffsetFetch: committed offsets of one group (v0-7) or many (v8+).

use std::sync::Arc;

use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions,
    OffsetFetchResponseTopic, OffsetFetchResponseTopics,
};
use kafka_protocol::messages::{OffsetFetchResponse, ResponseKind, TopicName};

use super::sb;
use crate::body;
use crate::broker::BrokerState;
use crate::server::dispatch::{HandlerFuture, Request};

/// Handles OffsetFetch.
pub fn handle(state: Arc<BrokerState>, req: Request) -> HandlerFuture {
    Box::pin(run(state, req))
}

/// (topic, [(partition, offset, leader epoch, metadata)]) for a group.
type Fetched = Vec<(String, Vec<(i32, i64, i32, String)>)>;

async fn fetch(
    state: &BrokerState,
    group: &str,
    wanted: Option<Vec<(String, Vec<i32>)>>,
) -> Result<Fetched, i16> {
    state.groups.check_coordinator(state, group)?;
    let write = state.groups.writer(state, group);
    let groups = state.groups.lock().await;
    let g = groups.offsets.get(group);
    let lookup = |t: &str, p: i32| -> (i32, i64, i32, String) {
        match g.and_then(|g| g.get(&(t.to_string(), p))) {
            Some(v) => (p, v.offset, v.leader_epoch, v.metadata.clone()),
            None => (p, -1, -1, String::new()),
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
            let mut by_topic: std::collections::BTreeMap<String, Vec<(i32, i64, i32, String)>> =
                Default::default();
            if let Some(g) = g {
                for ((t, p), v) in g {
                    by_topic.entry(t.clone()).or_default().push((
                        *p,
                        v.offset,
                        v.leader_epoch,
                        v.metadata.clone(),
                    ));
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
            let entry = match fetch(&state, &gid, wanted).await {
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
                                            .map(|(p, o, e, m)| {
                                                OffsetFetchResponsePartitions::default()
                                                    .with_partition_index(p)
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
    let resp = match fetch(&state, body.group_id.as_str(), wanted).await {
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
                                .map(|(p, o, e, m)| {
                                    let part = OffsetFetchResponsePartition::default()
                                        .with_partition_index(p)
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
